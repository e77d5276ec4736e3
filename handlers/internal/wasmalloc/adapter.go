//go:build wasip1 && (wasicomponent || wasireactor)

package wasmalloc

import "unsafe"

// pageSize is a Wasm page; the adapter asks for whole pages.
const pageSize = 64 << 10

// arenaSize is what the adapter may take: its stack and its state are one
// page each; two more pages leave room for adapter versions that ask for more.
const arenaSize = 4 * pageSize

var (
	// arena holds the adapter's pages. The extra 8 bytes let the first
	// allocation be aligned to 8 wherever the linker puts the array.
	arena [arenaSize + 8]byte
	// used is how many bytes of arena have been handed out.
	used uintptr
)

// reallocForAdapter is the Canonical ABI realloc the preview1 adapter calls
// for its own memory. It only allocates (never resizes or frees): the adapter
// only ever allocates, once per instance. It runs re-entrantly inside a WASI
// host call made by the Go runtime, possibly before the runtime is fully up,
// so it must not split the stack, allocate or touch goroutine state; on a
// request it cannot meet it panics, which traps the instance.
//
//go:wasmexport cabi_realloc_adapter
//go:nosplit
func reallocForAdapter(oldPtr, oldSize, align, newSize uint32) uint32 {
	if oldPtr != 0 || oldSize != 0 {
		panic("wasmalloc: the preview1 adapter asked to resize memory")
	}
	if align == 0 || align&(align-1) != 0 || align > 8 {
		panic("wasmalloc: the preview1 adapter asked for an unsupported alignment")
	}
	base := uintptr(unsafe.Pointer(&arena[0]))
	a := uintptr(align)
	p := (base + used + a - 1) &^ (a - 1)
	if p+uintptr(newSize) > base+uintptr(len(arena)) {
		panic("wasmalloc: the preview1 adapter needs more memory than reserved")
	}
	used = p + uintptr(newSize) - base
	return uint32(p)
}
