package runtime

/*
#include <stdint.h>
#include <stdlib.h>
#include <stddef.h>
#include <string.h>

// Declared here rather than included from wasmtime's headers (which live in
// the wasmtime-go module, not at a path cgo can name): the symbols come from
// the libwasmtime.a that wasmtime-go links, the one library in the binary.
typedef struct wasmtime_store wasmtime_store_t;
typedef struct wasmtime_context wasmtime_context_t;
typedef struct wasmtime_error wasmtime_error_t;
// wasmtime_memory_t as in wasmtime/extern.h (v39); checkMemoryLayout
// compares its size with the one wasmtime-go's Memory holds.
typedef struct wasmtime_memory {
	struct {
		uint64_t store_id;
		uint32_t __private1;
	};
	uint32_t __private2;
} wasmtime_memory_t;
extern wasmtime_error_t *wasmtime_error_new(const char *);
extern void wasmtime_store_epoch_deadline_callback(
    wasmtime_store_t *store,
    wasmtime_error_t *(*func)(wasmtime_context_t *, void *, uint64_t *, uint8_t *),
    void *data, void (*finalizer)(void *));
extern size_t wasmtime_memory_data_size(const wasmtime_context_t *store,
                                        const wasmtime_memory_t *memory);

// wasilet_epoch is the callback's data, owned by the store. interrupted is
// set from any thread; the other fields are written by the run's goroutine
// only while the guest is not running (before and after calls into it), and
// read by the callback on that same thread.
typedef struct {
	int32_t interrupted;
	int32_t has_memory;
	wasmtime_memory_t memory;
	// memory_out, when set, is a pinned Go int64 (Usage.memory) that gets
	// the guest's linear memory size at each tick.
	int64_t *memory_out;
} wasilet_epoch;

// wasilet_epoch_deadline runs on the guest's thread each time the store's
// epoch deadline passes (every tick of the engine's ticker): it stops the
// guest once its flag is set and otherwise records the guest's memory size
// (when asked to) and lets it run one more tick.
static wasmtime_error_t *wasilet_epoch_deadline(wasmtime_context_t *cx, void *data,
                                                uint64_t *delta, uint8_t *kind) {
	wasilet_epoch *e = data;
	if (__atomic_load_n(&e->interrupted, __ATOMIC_SEQ_CST)) {
		return wasmtime_error_new("wasilet: guest interrupted");
	}
	if (e->memory_out != NULL && e->has_memory) {
		size_t n = wasmtime_memory_data_size(cx, &e->memory);
		__atomic_store_n(e->memory_out, (int64_t)n, __ATOMIC_RELAXED);
	}
	*delta = 1;
	*kind = 0; // WASMTIME_UPDATE_DEADLINE_CONTINUE
	return NULL;
}

// wasilet_install_interrupt gives the store its callback data in C memory,
// freed by the store when it is deleted, and the callback above.
static wasilet_epoch *wasilet_install_interrupt(void *store) {
	wasilet_epoch *e = calloc(1, sizeof(wasilet_epoch));
	if (e == NULL) {
		return NULL;
	}
	wasmtime_store_epoch_deadline_callback((wasmtime_store_t *)store,
	                                       wasilet_epoch_deadline, e, free);
	return e;
}

static void wasilet_interrupt(wasilet_epoch *e) {
	__atomic_store_n(&e->interrupted, 1, __ATOMIC_SEQ_CST);
}

static void wasilet_track_memory(wasilet_epoch *e, const void *memory, int64_t *out) {
	memcpy(&e->memory, memory, sizeof(wasmtime_memory_t));
	e->has_memory = 1;
	e->memory_out = out;
}

static void wasilet_untrack_memory(wasilet_epoch *e) {
	e->memory_out = NULL;
	e->has_memory = 0;
}

static size_t wasilet_memory_size(void) { return sizeof(wasmtime_memory_t); }
*/
import "C"

import (
	"errors"
	"fmt"
	"reflect"
	goruntime "runtime"
	"unsafe"

	"github.com/bytecodealliance/wasmtime-go/v39"
)

// The Go API of wasmtime-go has epoch deadlines but not the deadline callback
// that lets a store keep running across ticks until the host asks it to stop.
// Without the callback the only way to stop a running store at an arbitrary
// moment would be to change its deadline from another thread, which races
// with the guest. So the callback is installed here through the C API of the
// same library, which needs the store's C pointer: wasmtime-go keeps it in the
// unexported first field of Store. checkStoreLayout verifies that assumption
// (NewEngine fails if it breaks, and TestStoreLayout fails loudly).

// interrupter stops one store's guest from another goroutine.
type interrupter struct {
	e      *C.wasilet_epoch
	engine *wasmtime.Engine // the store's, whose epoch a stop advances
}

// checkStoreLayout reports whether wasmtime.Store still starts with the C
// store pointer this file reads.
func checkStoreLayout() error {
	t := reflect.TypeOf(wasmtime.Store{})
	if t.NumField() == 0 {
		return errors.New("wasmtime.Store has no fields")
	}
	f := t.Field(0)
	if f.Name != "_ptr" || f.Offset != 0 || f.Type.Kind() != reflect.Pointer {
		return fmt.Errorf("wasmtime.Store layout changed: first field is %s %s at offset %d, want the C pointer _ptr at 0",
			f.Name, f.Type, f.Offset)
	}
	return nil
}

// installInterrupt arms store (of engine) with the epoch-deadline callback
// and a deadline of 0: the guest's first epoch check calls the callback,
// which sees a stop flag set before this point (the epoch increment that
// came with it may have preceded the deadline), then extends it by a tick.
// The store must be alive for as long as the interrupter is used; the flag
// memory is owned and freed by the store.
func installInterrupt(engine *wasmtime.Engine, store *wasmtime.Store) (*interrupter, error) {
	ptr := *(*unsafe.Pointer)(unsafe.Pointer(store))
	if ptr == nil {
		return nil, errors.New("store is closed")
	}
	e := C.wasilet_install_interrupt(ptr)
	goruntime.KeepAlive(store)
	if e == nil {
		return nil, errors.New("allocate interrupt flag: out of memory")
	}
	store.SetEpochDeadline(0)
	return &interrupter{e: e, engine: engine}, nil
}

// interrupt sets the guest's stop flag and advances the engine's epoch, so
// a guest running Wasm code traps at its next epoch check rather than at the
// engine ticker's next tick. Safe to call from any goroutine while the store
// is alive.
func (i *interrupter) interrupt() {
	C.wasilet_interrupt(i.e)
	i.engine.IncrementEpoch()
}

// memoryLayoutOK says whether wasmtime.Memory is the C wasmtime_memory_t
// this file declares, so trackMemory may copy it; if a wasmtime-go upgrade
// changes that, memory is simply not tracked per tick (see Usage).
var memoryLayoutOK = checkMemoryLayout() == nil

// checkMemoryLayout reports whether wasmtime.Memory is exactly one field,
// the C wasmtime_memory_t, of the size declared above.
func checkMemoryLayout() error {
	t := reflect.TypeOf(wasmtime.Memory{})
	want := uintptr(C.wasilet_memory_size())
	if t.NumField() != 1 || t.Field(0).Name != "val" || t.Field(0).Offset != 0 || t.Size() != want {
		return fmt.Errorf("wasmtime.Memory layout changed: %d fields, size %d, want one field val of the C wasmtime_memory_t (%d bytes)",
			t.NumField(), t.Size(), want)
	}
	return nil
}

// trackMemory makes the epoch callback store mem's size in bytes into *out
// at every tick. out must stay pinned (runtime.Pinner) until untrackMemory
// or the store's end. Call it only from the run's goroutine while the guest
// is not running (the callback reads these fields on the guest's thread).
func (i *interrupter) trackMemory(mem *wasmtime.Memory, out *int64) {
	if !memoryLayoutOK || mem == nil || out == nil {
		return
	}
	C.wasilet_track_memory(i.e, unsafe.Pointer(mem), (*C.int64_t)(unsafe.Pointer(out)))
}

// untrackMemory stops the callback from writing the memory size; same
// rules as trackMemory.
func (i *interrupter) untrackMemory() { C.wasilet_untrack_memory(i.e) }
