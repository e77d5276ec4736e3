// Command protogen runs the code generators of wasilet with versions pinned by
// this module's go.mod, and without a system protoc:
//
//	protogen proto -root REPO -out OUT -I proto v0/discovery.proto
//	protogen deepcopy -root REPO -out OUT ./agent/apis/akri/v0
//
// proto compiles .proto files (relative to the -I directory) with
// github.com/bufbuild/protocompile, hands the descriptors to protoc-gen-go and
// protoc-gen-go-grpc (the tools of this module, run with `go tool`) in a
// CodeGeneratorRequest, as protoc would, with paths=source_relative, and
// writes what they return under OUT/<-I dir>.
//
// deepcopy runs the deepcopy generator of k8s.io/code-generator on Go packages
// of the module at REPO, writing zz_generated.deepcopy.go into the package's
// directory under OUT instead of under REPO; the output is byte for byte what
// `deepcopy-gen --go-header-file <empty file> --output-file
// zz_generated.deepcopy.go` writes.
//
// OUT defaults to REPO. hack/generate.sh is the one caller; a test regenerates
// into a temporary OUT and compares.
//
// protogen must run in this module's directory (`go run -C tools/protogen .`),
// where `go tool` finds the pinned plugins.
package main

import (
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: protogen proto|deepcopy [flags] ARGS...")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "proto":
		err = runProto(os.Args[2:])
	case "deepcopy":
		err = runDeepcopy(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q (want proto or deepcopy)", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "protogen:", err)
		os.Exit(1)
	}
}
