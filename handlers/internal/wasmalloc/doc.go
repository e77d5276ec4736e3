// Package wasmalloc lets a Go program run as a WASI p2 command component and
// still grow its heap. Every Go handler imports it for its side effect:
//
//	import _ "github.com/wasilet/wasilet/handlers/internal/wasmalloc"
//
// The package is empty except in the component build that hack/wasm.sh makes:
// GOOS=wasip1 GOARCH=wasm -buildmode=c-shared -tags wasicomponent, wrapped by
// `jco new x.wasm --wasi-command`. The plain wasip1 command module (run as a
// WASI p1 module) and native builds do not change.
//
// The problem: the WASI preview1 adapter that `jco new` (wit-component) links
// into the component has no memory of its own. It keeps its stack and its
// state, one 64 KiB page each, in the main module's linear memory. When the
// main module exports no allocator, wit-component gives the adapter one built
// on memory.grow: the stack page is grown in a start function before Go's
// _start, the state page at the first WASI call. The Go runtime assumes all
// linear memory is its own (it takes the size at start-up as its break and
// later grows from where it thinks memory ends), so its heap and the adapter's
// pages overlap, and the first large allocation dies with "fatal error: grew
// heap, but no adequate free space found" (compare fastly/Viceroy#498).
//
// The fix has two parts:
//
//   - The module exports cabi_realloc_adapter, which wit-component imports
//     into the adapter instead of its memory.grow allocator. It hands out
//     pages of a static array in the data segment, below the Go heap, where
//     the Go allocator never looks. The adapter calls it twice, from inside
//     the first WASI call the Go runtime makes, so it is a nosplit bump
//     allocator that uses no heap, no goroutine state and no stack growth.
//   - With an allocator to call, wit-component allocates the adapter's stack
//     lazily at the entry of every adapter function, including wasi:cli/run,
//     which runs before _start; a Go wasmexport called before the runtime has
//     started aborts ("wasmexport function called before runtime
//     initialization"). So the component is built as a Go WASI reactor: its
//     _initialize, which wit-component calls when the component is
//     instantiated, starts the runtime and runs package initialisers, and
//     this package exports _start, which runs main.
//
// Differences from a command build that a handler may notice: package
// initialisers run when the component is instantiated; and, as in any Go
// c-shared build, an unrecovered panic or fatal error aborts (a Wasm trap)
// after printing its traceback instead of exiting with status 2.
package wasmalloc
