// Package early runs `wasilet run` of a local file from its init function,
// before the wasilet binary's large dependencies initialize (see package
// runcli for why and how), and exits with the guest's status. For any
// other command line it does nothing. Only the wasilet command imports it.
//
// Go initializes packages in import-path order among those whose imports
// are initialized, so early runs only once everything it imports has, and
// every ready package that sorts before the last of those goes first. Its
// imports therefore avoid late-sorting standard packages that the
// binary's large dependencies do not need first — runtime/debug and
// path/filepath (runtime and runcli join paths with package path; the
// wasmtime version is a constant; startgc, which needs runtime/debug, is not
// imported and leaves the collector on for `wasilet run`) — otherwise
// Kubernetes', OpenCensus' and gRPC's initializers all run first (half of
// a cached 14 ms run). TestRunEarly checks the init trace.
package early

import (
	"context"
	"os"

	"github.com/wasilet/wasilet/internal/runcli"
)

func init() {
	f, args, ok := runcli.Early(os.Args[1:])
	if !ok {
		return
	}
	err := runcli.Run(context.Background(), f, args, runcli.Stdio{In: os.Stdin, Out: os.Stdout, Err: os.Stderr}, nil)
	os.Exit(runcli.Report(os.Stderr, err))
}
