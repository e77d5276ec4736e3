// Package early runs `wasilet run` of a local file from its init function,
// before the wasilet binary's large dependencies initialize (see package
// runcli for why and how), and exits with the guest's status. For any
// other command line it does nothing. Only the wasilet command imports it.
package early

import (
	"context"
	"os"

	"github.com/wasilet/wasilet/internal/runcli"
	"github.com/wasilet/wasilet/internal/startgc"
)

func init() {
	f, args, ok := runcli.Early(os.Args[1:])
	if !ok {
		return
	}
	startgc.Done() // the guest runs with the collector on
	err := runcli.Run(context.Background(), f, args, runcli.Stdio{In: os.Stdin, Out: os.Stdout, Err: os.Stderr}, nil)
	os.Exit(runcli.Report(os.Stderr, err))
}
