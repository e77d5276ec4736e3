package wasmtimec

// This is the only file that reaches inside wasmtime-go's types. Engine and
// Config of wasmtime-go v39.0.1 are structs whose single field is the C
// pointer (engine.go: `type Engine struct { _ptr *C.wasm_engine_t }`,
// config.go: `type Config struct { _ptr *C.wasm_config_t }`). checkLayout
// verifies that shape through reflection before any pointer is read, and
// engine_test.go checks the pointer's behaviour, so an upgrade that changes
// the layout fails loudly instead of corrupting memory.

/*
#include "shim.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"sync"
	"unsafe"

	"github.com/bytecodealliance/wasmtime-go/v39"
)

var (
	layoutOnce sync.Once
	layoutErr  error
)

// checkLayout reports whether wasmtime.Engine and wasmtime.Config still hold
// exactly one field, a pointer to the C object, named _ptr.
func checkLayout() error {
	layoutOnce.Do(func() {
		for _, c := range []struct {
			t    reflect.Type
			elem string
		}{
			{reflect.TypeFor[wasmtime.Engine](), "_Ctype_struct_wasm_engine_t"},
			{reflect.TypeFor[wasmtime.Config](), "_Ctype_struct_wasm_config_t"},
		} {
			if c.t.NumField() != 1 {
				layoutErr = fmt.Errorf("wasmtimec: %s has %d fields, want 1 (wasmtime-go layout changed)", c.t, c.t.NumField())
				return
			}
			f := c.t.Field(0)
			if f.Name != "_ptr" || f.Offset != 0 || f.Type.Kind() != reflect.Pointer || f.Type.Elem().Name() != c.elem {
				layoutErr = fmt.Errorf("wasmtimec: %s field %s %s, want _ptr *%s (wasmtime-go layout changed)", c.t, f.Name, f.Type, c.elem)
				return
			}
		}
	})
	return layoutErr
}

// enginePtr returns the wasm_engine_t of a wasmtime-go Engine. The caller
// keeps engine alive (runtime.KeepAlive) while it uses the pointer.
func enginePtr(engine *wasmtime.Engine) (*C.wasm_engine_t, error) {
	if engine == nil {
		return nil, errors.New("wasmtimec: nil engine")
	}
	if err := checkLayout(); err != nil {
		return nil, err
	}
	p := *(**C.wasm_engine_t)(unsafe.Pointer(engine))
	if p == nil {
		return nil, errors.New("wasmtimec: engine is closed")
	}
	return p, nil
}

// configPtr returns the wasm_config_t of a wasmtime-go Config.
func configPtr(cfg *wasmtime.Config) (*C.wasm_config_t, error) {
	if cfg == nil {
		return nil, errors.New("wasmtimec: nil config")
	}
	if err := checkLayout(); err != nil {
		return nil, err
	}
	p := *(**C.wasm_config_t)(unsafe.Pointer(cfg))
	if p == nil {
		return nil, errors.New("wasmtimec: config already used to create an engine")
	}
	return p, nil
}

// SetComponentModel turns the component model on or off in cfg. It is on by
// default in wasmtime v39 (TestComponentModelDefault checks that), so this
// is only needed to turn it off or to say so explicitly.
func SetComponentModel(cfg *wasmtime.Config, enabled bool) error {
	p, err := configPtr(cfg)
	if err != nil {
		return err
	}
	C.wasmtime_config_wasm_component_model_set(p, C.bool(enabled))
	runtime.KeepAlive(cfg)
	return nil
}

// SetMemoryReservation sets how much virtual address space each linear
// memory reserves up front (wasmtime_config_memory_reservation_set) and the
// guard region after it (wasmtime_config_memory_guard_size_set). Zero leaves
// a value at wasmtime's default. Smaller reservations let many more
// instances live in one process at the price of memory moves on growth.
func SetMemoryReservation(cfg *wasmtime.Config, reservation, guard uint64) error {
	p, err := configPtr(cfg)
	if err != nil {
		return err
	}
	if reservation > 0 {
		C.wasmtime_config_memory_reservation_set(p, C.uint64_t(reservation))
	}
	if guard > 0 {
		C.wasmtime_config_memory_guard_size_set(p, C.uint64_t(guard))
	}
	runtime.KeepAlive(cfg)
	return nil
}

// Pooling configures wasmtime's pooling instance allocator. Zero fields keep
// wasmtime's defaults.
type Pooling struct {
	TotalComponentInstances uint32 // component instances alive at once
	TotalCoreInstances      uint32 // core instances alive at once
	TotalMemories           uint32 // linear memories alive at once
	TotalTables             uint32 // tables alive at once
	MaxMemorySize           uint64 // bytes, per linear memory
	MaxMemoriesPerComponent uint32
	MaxUnusedWarmSlots      uint32
}

// SetPooling switches cfg to the pooling allocator with the given limits
// (wasmtime_pooling_allocation_strategy_set).
func SetPooling(cfg *wasmtime.Config, pool Pooling) error {
	p, err := configPtr(cfg)
	if err != nil {
		return err
	}
	pc := C.wasmtime_pooling_allocation_config_new()
	defer C.wasmtime_pooling_allocation_config_delete(pc)
	if pool.TotalComponentInstances > 0 {
		C.wasmtime_pooling_allocation_config_total_component_instances_set(pc, C.uint32_t(pool.TotalComponentInstances))
	}
	if pool.TotalCoreInstances > 0 {
		C.wasmtime_pooling_allocation_config_total_core_instances_set(pc, C.uint32_t(pool.TotalCoreInstances))
	}
	if pool.TotalMemories > 0 {
		C.wasmtime_pooling_allocation_config_total_memories_set(pc, C.uint32_t(pool.TotalMemories))
	}
	if pool.TotalTables > 0 {
		C.wasmtime_pooling_allocation_config_total_tables_set(pc, C.uint32_t(pool.TotalTables))
	}
	if pool.MaxMemorySize > 0 {
		C.wasmtime_pooling_allocation_config_max_memory_size_set(pc, C.size_t(pool.MaxMemorySize))
	}
	if pool.MaxMemoriesPerComponent > 0 {
		C.wasmtime_pooling_allocation_config_max_memories_per_component_set(pc, C.uint32_t(pool.MaxMemoriesPerComponent))
	}
	if pool.MaxUnusedWarmSlots > 0 {
		C.wasmtime_pooling_allocation_config_max_unused_warm_slots_set(pc, C.uint32_t(pool.MaxUnusedWarmSlots))
	}
	C.wasmtime_pooling_allocation_strategy_set(p, pc)
	runtime.KeepAlive(cfg)
	return nil
}
