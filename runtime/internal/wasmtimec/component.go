package wasmtimec

/*
#include <stdlib.h>
#include "shim.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"unsafe"

	"github.com/bytecodealliance/wasmtime-go/v39"
)

// ErrClosed is returned by methods of a Component after Close.
var ErrClosed = errors.New("wasmtimec: component is closed")

// Component is a compiled WASI p2 component ready to run any number of
// times, concurrently, each run in a store of its own. It owns its C handles
// (the component, a component linker with WASI p2 defined, the export index
// of wasi:cli/run#run); Close releases them once no run is in flight.
type Component struct {
	engine *wasmtime.Engine

	mu      sync.Mutex
	refs    int // runs and serializations in flight
	closed  bool
	ptr     *C.wasmtime_component_t
	linker  *C.wasmtime_component_linker_t
	runFunc *C.wasmtime_component_export_index_t // nil: no wasi:cli/run export
}

// Compile compiles a component (binary, or component text format: wasmtime
// parses WAT too) with engine; a core module is refused. The engine must have
// the component model enabled (wasmtime's default). Errors are *Error with
// wasmtime's message, wrapped.
func Compile(engine *wasmtime.Engine, wasm []byte) (*Component, error) {
	return load(engine, wasm, false)
}

// Deserialize loads a component from the output of Serialize, made by an
// engine with the same configuration and wasmtime version. Like wasmtime
// itself, it trusts data: pass only artifacts this process's cache wrote.
// Data from a different wasmtime version or engine configuration, or that is
// not a serialized component at all, fails with wasmtime's message.
func Deserialize(engine *wasmtime.Engine, data []byte) (*Component, error) {
	return load(engine, data, true)
}

// DeserializeFile is Deserialize of the artifact in a file, which wasmtime
// maps instead of copying (bytes after the artifact's image, like the
// cache's trailer, are ignored). The same trust applies.
func DeserializeFile(engine *wasmtime.Engine, path string) (*Component, error) {
	const what = "deserialize component"
	ep, err := enginePtr(engine)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	var ptr *C.wasmtime_component_t
	cerr := C.wasmtime_component_deserialize_file(ep, cpath, &ptr)
	return finish(engine, ep, ptr, cerr, what)
}

func load(engine *wasmtime.Engine, data []byte, serialized bool) (*Component, error) {
	what := "compile component"
	if serialized {
		what = "deserialize component"
	}
	ep, err := enginePtr(engine)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if len(data) == 0 {
		return nil, fmt.Errorf("%s: empty input", what)
	}
	// Go memory passed for the duration of the call only: allowed by the
	// cgo pointer rules (it holds no Go pointers).
	buf := (*C.uint8_t)(unsafe.Pointer(&data[0]))
	var ptr *C.wasmtime_component_t
	var cerr *C.wasmtime_error_t
	if serialized {
		cerr = C.wasmtime_component_deserialize(ep, buf, C.size_t(len(data)), &ptr)
	} else {
		cerr = C.wasmtime_component_new(ep, buf, C.size_t(len(data)), &ptr)
	}
	runtime.KeepAlive(data)
	return finish(engine, ep, ptr, cerr, what)
}

// finish wraps a component wasmtime made (or its error) with its linker.
func finish(engine *wasmtime.Engine, ep *C.wasm_engine_t, ptr *C.wasmtime_component_t, cerr *C.wasmtime_error_t, what string) (*Component, error) {
	if cerr != nil {
		runtime.KeepAlive(engine)
		return nil, fmt.Errorf("%s: %w", what, takeError(cerr))
	}
	var msg *C.char
	linker := C.wasmtimec_linker_new(ep, &msg)
	runtime.KeepAlive(engine)
	if linker == nil {
		C.wasmtime_component_delete(ptr)
		return nil, fmt.Errorf("%s: define WASI p2: %s", what, takeCString(msg))
	}
	c := &Component{
		engine:  engine,
		ptr:     ptr,
		linker:  linker,
		runFunc: C.wasmtimec_lookup_run(ptr),
	}
	// A safety net only: callers are expected to Close.
	runtime.SetFinalizer(c, (*Component).Close)
	return c, nil
}

// IsCommand reports whether the component exports wasi:cli/run (0.2.x), that
// is whether Run can run it.
func (c *Component) IsCommand() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.runFunc != nil
}

// Imports lists the names the component imports ("wasi:sockets/tcp@0.2.0",
// or a plain name for a function or type imported by itself), in the
// component's order: what a linker must define for it to instantiate. It
// reads the component's type only; nothing is instantiated.
func (c *Component) Imports() ([]string, error) {
	if err := c.acquire(); err != nil {
		return nil, err
	}
	defer c.release()
	ep, err := enginePtr(c.engine)
	if err != nil {
		return nil, err
	}
	defer runtime.KeepAlive(c.engine)
	ty := C.wasmtime_component_type(c.ptr)
	if ty == nil {
		return nil, errors.New("component imports: no type")
	}
	defer C.wasmtime_component_type_delete(ty)
	n := int(C.wasmtime_component_type_import_count(ty, ep))
	out := make([]string, 0, n)
	for i := range n {
		var name *C.char
		var size C.size_t
		var item C.wasmtime_component_item_t
		if !C.wasmtime_component_type_import_nth(ty, ep, C.size_t(i), &name, &size, &item) {
			return nil, fmt.Errorf("component imports: no import %d of %d", i, n)
		}
		// The name belongs to ty: copied before ty is deleted.
		out = append(out, C.GoStringN(name, C.int(size)))
		C.wasmtime_component_item_delete(&item)
	}
	return out, nil
}

// Serialize returns the compiled artifact, for Deserialize.
func (c *Component) Serialize() ([]byte, error) {
	if err := c.acquire(); err != nil {
		return nil, err
	}
	defer c.release()
	var vec C.wasm_byte_vec_t
	if cerr := C.wasmtime_component_serialize(c.ptr, &vec); cerr != nil {
		return nil, fmt.Errorf("serialize component: %w", takeError(cerr))
	}
	out := C.GoBytes(unsafe.Pointer(vec.data), C.int(vec.size))
	C.wasm_byte_vec_delete(&vec)
	return out, nil
}

// Close releases the component's C handles: at once if no run is in flight,
// else when the last one ends. Runs started after Close fail with ErrClosed.
// Close is idempotent.
func (c *Component) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	c.closed = true
	runtime.SetFinalizer(c, nil)
	if c.refs == 0 {
		c.free()
	}
}

func (c *Component) acquire() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return ErrClosed
	}
	c.refs++
	return nil
}

func (c *Component) release() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.refs--
	if c.refs == 0 && c.closed {
		c.free()
	}
}

// free deletes the C handles; c.mu is held.
func (c *Component) free() {
	if c.runFunc != nil {
		C.wasmtime_component_export_index_delete(c.runFunc)
		c.runFunc = nil
	}
	if c.linker != nil {
		C.wasmtime_component_linker_delete(c.linker)
		c.linker = nil
	}
	if c.ptr != nil {
		C.wasmtime_component_delete(c.ptr)
		c.ptr = nil
	}
}

// Error is an error reported by wasmtime.
type Error struct {
	// Message is wasmtime's message on one line (headline and causes).
	Message string
	// Detail is wasmtime's full text, without the host stack backtrace.
	Detail string
}

func (e *Error) Error() string { return e.Message }

// takeError turns a wasmtime_error_t into an *Error and deletes it.
func takeError(err *C.wasmtime_error_t) *Error {
	return newError(takeCString(C.wasmtimec_error_take(err)))
}

func newError(raw string) *Error {
	return &Error{Message: summarize(raw), Detail: cleanMessage(raw)}
}

// takeCString copies and frees a malloc'd C string (NULL gives "").
func takeCString(s *C.char) string {
	if s == nil {
		return ""
	}
	defer C.free(unsafe.Pointer(s))
	return C.GoString(s)
}
