// Package akriguest is the guest side of the akri:discovery@0.1.0 world
// (proto/wit/discovery.wit) for discovery handlers written in Go and built
// as WebAssembly components by hack/wasm.sh: a Go WASI reactor
// (GOOS=wasip1 -buildmode=c-shared -tags wasireactor) whose core module gets
// the world's type section (`jco embed`) and the WASI preview1 reactor
// adapter (`jco new --wasi-reactor`).
//
// A handler implements Handler and calls Serve from an init function:
//
//	func init() { akriguest.Serve(myHandler{}) }
//	func main() {}
//
// Why hand-written bindings: wit-bindgen-go (go.bytecodealliance.org)
// generates bindings for TinyGo only; the standard Go compiler refuses its
// //go:wasmexport signatures (pointers to records holding strings), and
// TinyGo cannot be installed here. The standard toolchain's wasm port has
// 64-bit pointers and ints, so Canonical ABI values (32-bit pointers and
// lengths) are laid out by hand: this package lifts the arguments, lowers
// the results into a return area, and exports cabi_realloc (backed by the
// Go heap) and the post-return functions that free it. The world is small
// and versioned; wasmtime checks every lowered value (bounds, UTF-8,
// discriminants) when the host lifts it, so a mistake here is a clear error
// on the host, never memory corruption.
//
// HTTPGet calls the world's akri:discovery/http import.
//
// Outside GOOS=wasip1 the package has only its types (Serve records the
// handler, HTTPGet fails), so handlers' logic can be unit-tested natively;
// the layout constants are checked natively too (layout_test.go).
package akriguest
