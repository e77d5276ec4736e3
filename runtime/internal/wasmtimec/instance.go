package wasmtimec

/*
#include <stdlib.h>
#include "shim.h"
*/
import "C"

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"runtime/cgo"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/bytecodealliance/wasmtime-go/v39"
)

// HostFunc serves a function the component imports. ctx is the context of
// the Instance.Call in progress (its deadline is the call's time limit; a
// host function that blocks should end with it: the guest cannot be stopped
// while the host function runs), or context.Background() during
// instantiation. store is the InstanceConfig.StoreData of the calling
// instance. An error traps the guest's call (the instance is dead
// afterwards); errors the guest should see belong in the results (e.g. a
// result<_, string>).
type HostFunc func(ctx context.Context, store any, args []Val) ([]Val, error)

// HostDef is one import a Linker defines beyond WASI p2: an interface of
// types only (Func empty) or an interface with one function.
type HostDef struct {
	Interface string // e.g. "akri:discovery/http@0.1.0"
	Func      string // e.g. "get"; "" for an interface of types only
	Fn        HostFunc
}

// Linker is a component linker with WASI p2 and host definitions, for
// Component.Instantiate. It may be shared by any number of instances (of
// any component of the same engine) and goroutines; Close it when none is
// left.
type Linker struct {
	engine  *wasmtime.Engine
	mu      sync.Mutex
	ptr     *C.wasmtime_component_linker_t
	handles []cgo.Handle
}

// NewLinker creates a linker with WASI p2 and defs.
func NewLinker(engine *wasmtime.Engine, defs []HostDef) (*Linker, error) {
	ep, err := enginePtr(engine)
	if err != nil {
		return nil, err
	}
	var msg *C.char
	ptr := C.wasmtimec_linker_new(ep, &msg)
	runtime.KeepAlive(engine)
	if ptr == nil {
		return nil, fmt.Errorf("define WASI p2: %s", takeCString(msg))
	}
	l := &Linker{engine: engine, ptr: ptr}
	for _, d := range defs {
		iface := C.CString(d.Interface)
		var fname *C.char
		var data uintptr
		if d.Func != "" {
			fname = C.CString(d.Func)
			h := cgo.NewHandle(d.Fn)
			l.handles = append(l.handles, h)
			data = uintptr(h)
		}
		var cerr *C.char
		if d.Func == "" {
			cerr = C.wasmtimec_linker_define(ptr, iface, nil, nil, C.uintptr_t(data))
		} else {
			cerr = C.wasmtimec_linker_define(ptr, nil, iface, fname, C.uintptr_t(data))
		}
		C.free(unsafe.Pointer(iface))
		if fname != nil {
			C.free(unsafe.Pointer(fname))
		}
		if cerr != nil {
			l.Close()
			return nil, fmt.Errorf("define %s %s: %s", d.Interface, d.Func, takeCString(cerr))
		}
	}
	return l, nil
}

// Close releases the linker. Instances already made keep working.
func (l *Linker) Close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ptr != nil {
		C.wasmtime_component_linker_delete(l.ptr)
		l.ptr = nil
	}
	for _, h := range l.handles {
		h.Delete()
	}
	l.handles = nil
}

//export wasmtimecHostCall
func wasmtimecHostCall(fn C.uintptr_t, store C.uintptr_t, args *C.uint8_t, n C.size_t, out *C.wasmtimec_buf_t) *C.char {
	f, ok := cgo.Handle(fn).Value().(HostFunc)
	if !ok {
		return C.CString("wasilet: unknown host function")
	}
	var data any
	ctx := context.Background()
	if store != 0 {
		sd := cgo.Handle(store).Value().(*storeData)
		data = sd.v
		if sd.ctx != nil {
			ctx = sd.ctx
		}
	}
	in, err := decodeVals(C.GoBytes(unsafe.Pointer(args), C.int(n)), -1)
	if err != nil {
		return C.CString("wasilet: " + err.Error())
	}
	res, err := callHost(ctx, f, data, in)
	if err != nil {
		return C.CString(err.Error())
	}
	var b []byte
	for _, v := range res {
		if b, err = encodeVal(b, v); err != nil {
			return C.CString("wasilet: host function result: " + err.Error())
		}
	}
	if len(b) > 0 {
		p := C.malloc(C.size_t(len(b)))
		copy(unsafe.Slice((*byte)(p), len(b)), b)
		out.data = (*C.uint8_t)(p)
		out.len = C.size_t(len(b))
	}
	return nil
}

func callHost(ctx context.Context, f HostFunc, data any, in []Val) (res []Val, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("wasilet: host function panicked: %v", r)
		}
	}()
	return f(ctx, data, in)
}

// storeData is what host functions of an instance are called with: its
// StoreData, and the context of the call in progress (set by Call, which
// holds the instance's lock; host functions run on Call's goroutine, inside
// its C call).
type storeData struct {
	v   any
	ctx context.Context
}

// InstanceConfig is the environment of a long-lived instance.
type InstanceConfig struct {
	// Env, Preopens, Stdout, Stderr and MemoryLimit as in RunConfig (Args
	// and Stdin unused). Nothing else is granted: WASI p2 sockets allow no
	// address and no name lookup unless a host grants them, and this
	// package never does.
	Env            []string
	Preopens       []Preopen
	Stdout, Stderr string
	MemoryLimit    int64
	// StoreData is passed to host functions called by this instance.
	StoreData any
}

// Instance is one instance of a component in a store of its own, for
// typed calls (Call) that keep state between them. Calls are serialized.
// A call that traps, is cancelled or exits leaves the instance dead: later
// calls fail with ErrDead.
type Instance struct {
	comp   *Component
	closed atomic.Bool // Close was called
	mu     sync.Mutex
	ptr    *C.wasmtimec_instance_t
	cancel *C.wasmtimec_cancel_t
	handle cgo.Handle
	data   *storeData
	dead   error
}

// ErrDead is returned by Call on an instance that trapped, was cancelled or
// closed.
var ErrDead = errors.New("wasmtimec: instance is dead")

// CallError is how a call ended when it did not return.
type CallError struct {
	Outcome Outcome // Trapped, Cancelled or Exited
	Message string
	Detail  string
}

func (e *CallError) Error() string {
	switch e.Outcome {
	case Cancelled:
		return "guest call stopped (time limit or cancellation): " + e.Message
	case Exited:
		return e.Message
	}
	return "guest trapped: " + e.Message
}

// Instantiate makes an instance of c with l's definitions.
func (c *Component) Instantiate(l *Linker, cfg InstanceConfig) (*Instance, error) {
	if err := c.acquire(); err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			c.release()
		}
	}()
	ep, err := enginePtr(c.engine)
	if err != nil {
		return nil, err
	}
	wasi, err := newWASIConfig(RunConfig{Env: cfg.Env, Preopens: cfg.Preopens, Stdout: cfg.Stdout, Stderr: cfg.Stderr})
	if err != nil {
		return nil, err
	}
	cancel := C.wasmtimec_cancel_new()
	if cancel == nil {
		C.wasi_config_delete(wasi)
		return nil, errors.New("instantiate: out of memory")
	}
	sd := &storeData{v: cfg.StoreData}
	h := cgo.NewHandle(sd)
	l.mu.Lock()
	if l.ptr == nil {
		l.mu.Unlock()
		C.wasi_config_delete(wasi)
		C.wasmtimec_cancel_free(cancel)
		h.Delete()
		return nil, errors.New("instantiate: linker is closed")
	}
	var status C.int
	var msg *C.char
	ptr := C.wasmtimec_instance_new(ep, c.ptr, l.ptr, wasi, C.int64_t(cfg.MemoryLimit), cancel, C.uintptr_t(h), &status, &msg)
	l.mu.Unlock()
	runtime.KeepAlive(c.engine)
	if ptr == nil {
		C.wasmtimec_cancel_free(cancel)
		h.Delete()
		e := newError(takeCString(msg))
		if status == C.WASILET_RUN_INSTANTIATE {
			return nil, &InstantiateError{Err: e, MemoryLimit: cfg.MemoryLimit > 0 && containsLimit(e.Message)}
		}
		return nil, fmt.Errorf("instantiate component: %w", e)
	}
	ok = true
	inst := &Instance{comp: c, ptr: ptr, cancel: cancel, handle: h, data: sd}
	runtime.SetFinalizer(inst, (*Instance).Close)
	return inst, nil
}

// Call calls function fn of the exported interface iface ("" for a root
// export) with args and returns its nresults results. Cancelling ctx (its
// deadline is the call's time limit) stops the guest at its next epoch check
// and kills the instance; a guest blocked in a host call stops when the call
// returns (host functions get ctx, to return with it).
func (i *Instance) Call(ctx context.Context, iface, fn string, args []Val, nresults int) ([]Val, error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.dead != nil {
		return nil, i.dead
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var enc []byte
	for _, a := range args {
		var err error
		if enc, err = encodeVal(enc, a); err != nil {
			return nil, fmt.Errorf("call %s#%s: argument: %w", iface, fn, err)
		}
	}
	var cIface *C.char
	if iface != "" {
		cIface = C.CString(iface)
		defer C.free(unsafe.Pointer(cIface))
	}
	cFn := C.CString(fn)
	defer C.free(unsafe.Pointer(cFn))
	var argp *C.uint8_t
	if len(enc) > 0 {
		argp = (*C.uint8_t)(C.CBytes(enc))
		defer C.free(unsafe.Pointer(argp))
	}
	stop := context.AfterFunc(ctx, i.stop)
	var out C.wasmtimec_buf_t
	var msg *C.char
	i.data.ctx = ctx
	status := C.wasmtimec_instance_call(i.ptr, cIface, cFn, argp, C.size_t(len(enc)), C.size_t(len(args)), C.size_t(nresults), &out, &msg)
	i.data.ctx = nil
	if !stop() {
		// The flag may have been set after the call returned: the store
		// can no longer be trusted to run, so the instance dies with it.
		if status == C.WASILET_RUN_RETURNED {
			C.free(unsafe.Pointer(out.data))
			i.dead = &CallError{Outcome: Cancelled, Message: "call cancelled: " + context.Cause(ctx).Error()}
			return nil, i.dead
		}
	}
	switch status {
	case C.WASILET_RUN_RETURNED:
		b := C.GoBytes(unsafe.Pointer(out.data), C.int(out.len))
		C.free(unsafe.Pointer(out.data))
		res, err := decodeVals(b, nresults)
		if err != nil {
			return nil, fmt.Errorf("call %s#%s: results: %w", iface, fn, err)
		}
		return res, nil
	case C.WASILET_RUN_SETUP:
		return nil, fmt.Errorf("call %s#%s: %s", iface, fn, takeCString(msg))
	}
	e := newError(takeCString(msg))
	ce := &CallError{Message: e.Message, Detail: e.Detail}
	switch status {
	case C.WASILET_RUN_CANCELLED:
		ce.Outcome = Cancelled
	case C.WASILET_RUN_EXITED:
		ce.Outcome = Exited
	default:
		ce.Outcome = Trapped
	}
	i.dead = ce
	return nil, ce
}

// stop stops the instance's call in flight (stopGuest).
func (i *Instance) stop() { stopGuest(i.cancel, i.comp.engine) }

// stopGuest sets a store's stop flag and advances engine's epoch, so a guest
// running Wasm code sees the flag at its next epoch check rather than at the
// next tick of the engine's ticker.
func stopGuest(cancel *C.wasmtimec_cancel_t, engine *wasmtime.Engine) {
	C.wasmtimec_cancel_set(cancel)
	engine.IncrementEpoch()
}

// Close releases the instance and its store. Idempotent.
func (i *Instance) Close() {
	if i.closed.Swap(true) {
		return // the flag is freed below: a second Close must not set it
	}
	// Stop a call in flight first, then wait for it.
	i.stop()
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.ptr == nil {
		return
	}
	runtime.SetFinalizer(i, nil)
	C.wasmtimec_instance_delete(i.ptr)
	i.ptr = nil
	C.wasmtimec_cancel_free(i.cancel)
	i.handle.Delete()
	i.dead = ErrDead
	i.comp.release()
}
