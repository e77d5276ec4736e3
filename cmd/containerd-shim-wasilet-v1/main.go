// Command containerd-shim-wasilet-v1 is the containerd shim of runtime type
// io.containerd.wasilet.v1: it runs Wasm containers with wasilet's runtime
// (see package shim). containerd starts it; install it on containerd's PATH.
package main

import (
	"context"

	"github.com/wasilet/wasilet/shim"
)

func main() { shim.Run(context.Background()) }
