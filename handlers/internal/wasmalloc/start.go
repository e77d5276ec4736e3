//go:build wasip1 && wasicomponent

package wasmalloc

import _ "unsafe" // for go:linkname

// mainMain is the program's main function.
//
//go:linkname mainMain main.main
func mainMain()

// start is the entry point the preview1 adapter's wasi:cli/run calls; by
// then _initialize has started the runtime and run package initialisers.
// Returning from main exits with status 0, as in a command; os.Exit exits
// with its code (of which WASI 0.2's exit keeps only zero or non-zero).
//
//go:wasmexport _start
func start() {
	mainMain()
}
