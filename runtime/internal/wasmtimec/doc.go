// Package wasmtimec runs WASI p2 components through the C component API of
// the libwasmtime that wasmtime-go v39 bundles (wasmtime-go has no Go
// component API). It owns: compiling, serializing and deserializing
// components (Compile, Deserialize, Component.Serialize), listing a
// component's imports (Component.Imports), running a command
// component's wasi:cli/run export with a WASI p2 environment
// (Component.Run: argv, env, preopens with read-only honoured, stdio files,
// a memory limit, cancellation), long-lived instances called through typed
// exports with component values and host functions (Instance, Linker,
// instance.c; values cross cgo in one flat encoding, see shim.h), and the
// few engine settings wasmtime-go's
// Go API lacks (SetComponentModel, SetPooling, SetMemoryReservation). The
// runtime package wires it in; nothing else should import it.
//
// # Headers and linking
//
// There is exactly one libwasmtime in the binary: the static library
// wasmtime-go links with its own cgo LDFLAGS. This package only declares the
// C functions it calls; importing wasmtime-go brings the library in, and no
// extra link flags are needed.
//
// The declarations live in decls.h, copied by hand from the headers of
// wasmtime-go v39.0.1 (<module>/build/include), because a cgo file cannot
// name the module cache (#cgo CFLAGS: -I takes a fixed or ${SRCDIR}-relative
// path, and the module cache is neither), and a vendored header copy or a
// CGO_CFLAGS build script would be fragile on a fresh clone. Plain
// `go build` and `go test` therefore work with nothing set up. TestDecls
// guards the copy: it finds the module with `go list -m`, compiles
// testdata/check.c against the real headers plus decls.h, and fails on any
// incompatible prototype, struct layout, constant, or function the headers
// do not declare. Run it after every wasmtime-go upgrade.
//
// # Reaching into wasmtime-go
//
// The engine is the process's shared wasmtime-go *Engine; the C API needs
// its wasm_engine_t pointer, which wasmtime-go keeps in the unexported only
// field of Engine (likewise Config). engine.go is the one file that reads
// those fields through unsafe, after checking their shape by reflection
// (TestLayout), and TestEnginePointer proves the pointer is the engine by
// behaviour (an artifact of an epoch-interruption engine loads through it
// and is refused through the pointer of a differently configured engine).
//
// # Semantics the runtime relies on
//
//   - The component model is on by default in wasmtime-go v39 configs
//     (TestComponentModelDefault).
//   - Exit codes: a Go program adapted with the WASI preview1 command adapter
//     (jco new --wasi-command) always ends through wasi:cli/exit, which in
//     WASI 0.2 carries only result<_, _>: os.Exit(0) gives 0 and every other
//     code gives 1 (Outcome Exited). A component whose run returns gives 0
//     for ok, 1 for err (Outcome Returned). Traps give Outcome Trapped with
//     wasmtime's message.
//   - Memory: MemoryLimit caps each linear memory through the store limiter;
//     growth beyond it fails inside the guest (memory.grow returns -1) and an
//     initial memory above it makes instantiation fail (InstantiateError
//     with MemoryLimit set). What the guest does after a refused growth is up
//     to it (Go: a runtime "fatal error" and exit 1; Rust: abort, a trap).
//     The C API offers no way to observe a refused growth or a component's
//     memory size, so Run cannot tell an out-of-memory death from other
//     failures by itself; the caller has the guest's stderr.
//   - Go programs adapted with the preview1 adapter cannot grow their heap
//     at all, with or without a limit: the adapter claims pages of the main
//     module's memory with memory.grow before Go starts, and Go's wasm
//     runtime assumes it owns all memory above its data, so the first heap
//     growth dies with "fatal error: grew heap, but no adequate free space
//     found" (the same under jco run; an upstream Go/adapter limitation, not
//     this host's). Such components work while their heap fits the initial
//     memory.
//   - Cancellation: every store gets an epoch-deadline callback that checks a
//     flag set when the context is done, which also advances the engine's
//     epoch, so the guest stops at its next epoch check (the engine needs
//     epoch interruption; no ticker is needed for stops). A guest blocked in
//     a host call (stdin read, sleep) stops when the call returns.
//   - Stdout/Stderr paths are opened with create+truncate; Stdin is opened
//     for reading.
//   - Concurrency: a Component may be run from many goroutines at once; each
//     Run has its own store and WASI context; the component's linker is
//     shared read-only. No Go pointer is retained by C.
package wasmtimec
