package wasmtimec

/*
#include "shim.h"
*/
import "C"

import (
	"runtime"
	"unsafe"

	"github.com/bytecodealliance/wasmtime-go/v39"
)

// deserializeModule loads a serialized core module through the C API with
// the engine pointer enginePtr extracts. engine_test.go uses it to prove that
// the pointer is the engine itself: wasmtime accepts the artifact only from
// an engine whose configuration matches the one that compiled it. (cgo is not
// allowed in _test.go files, hence this helper here.)
func deserializeModule(engine *wasmtime.Engine, data []byte) error {
	ep, err := enginePtr(engine)
	if err != nil {
		return err
	}
	var m *C.wasmtime_module_t
	cerr := C.wasmtime_module_deserialize(ep, (*C.uint8_t)(unsafe.Pointer(&data[0])), C.size_t(len(data)), &m)
	runtime.KeepAlive(engine)
	runtime.KeepAlive(data)
	if cerr != nil {
		return takeError(cerr)
	}
	C.wasmtime_module_delete(m)
	return nil
}
