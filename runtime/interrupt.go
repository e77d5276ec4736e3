package runtime

/*
#include <stdint.h>
#include <stdlib.h>

// Declared here rather than included from wasmtime's headers (which live in
// the wasmtime-go module, not at a path cgo can name): the symbols come from
// the libwasmtime.a that wasmtime-go links, the one library in the binary.
typedef struct wasmtime_store wasmtime_store_t;
typedef struct wasmtime_context wasmtime_context_t;
typedef struct wasmtime_error wasmtime_error_t;
extern wasmtime_error_t *wasmtime_error_new(const char *);
extern void wasmtime_store_epoch_deadline_callback(
    wasmtime_store_t *store,
    wasmtime_error_t *(*func)(wasmtime_context_t *, void *, uint64_t *, uint8_t *),
    void *data, void (*finalizer)(void *));

// wasilet_epoch_deadline runs on the guest's thread each time the store's
// epoch deadline passes (every tick of the engine's ticker): it stops the
// guest once its flag is set and otherwise lets it run one more tick.
static wasmtime_error_t *wasilet_epoch_deadline(wasmtime_context_t *cx, void *data,
                                                uint64_t *delta, uint8_t *kind) {
	(void)cx;
	if (__atomic_load_n((int32_t *)data, __ATOMIC_SEQ_CST)) {
		return wasmtime_error_new("wasilet: guest interrupted");
	}
	*delta = 1;
	*kind = 0; // WASMTIME_UPDATE_DEADLINE_CONTINUE
	return NULL;
}

// wasilet_install_interrupt gives the store a flag in C memory, freed by the
// store when it is deleted, and the callback above.
static int32_t *wasilet_install_interrupt(void *store) {
	int32_t *flag = calloc(1, sizeof(int32_t));
	if (flag == NULL) {
		return NULL;
	}
	wasmtime_store_epoch_deadline_callback((wasmtime_store_t *)store,
	                                       wasilet_epoch_deadline, flag, free);
	return flag;
}

static void wasilet_interrupt(int32_t *flag) {
	__atomic_store_n(flag, 1, __ATOMIC_SEQ_CST);
}
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
type interrupter struct{ flag *C.int32_t }

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

// installInterrupt arms store with the epoch-deadline callback. The store
// must be alive for as long as the interrupter is used; the flag memory is
// owned and freed by the store.
func installInterrupt(store *wasmtime.Store) (*interrupter, error) {
	ptr := *(*unsafe.Pointer)(unsafe.Pointer(store))
	if ptr == nil {
		return nil, errors.New("store is closed")
	}
	flag := C.wasilet_install_interrupt(ptr)
	goruntime.KeepAlive(store)
	if flag == nil {
		return nil, errors.New("allocate interrupt flag: out of memory")
	}
	return &interrupter{flag: flag}, nil
}

// interrupt makes the guest trap at its next epoch check (within one tick).
// Safe to call from any goroutine while the store is alive.
func (i *interrupter) interrupt() { C.wasilet_interrupt(i.flag) }
