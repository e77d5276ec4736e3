package runtime

import (
	"context"
	"errors"
	"fmt"

	"github.com/containerd/errdefs"

	"github.com/wasilet/wasilet/runtime/internal/wasmtimec"
)

// Value is a component model value (string, list, record, option, result,
// …) passed to and returned by Instance.Call and host functions; see the
// constructors below and wasmtimec.Val for which fields each kind uses.
type Value = wasmtimec.Val

// Component value constructors and kinds, for callers of Instance.Call.
var (
	String = wasmtimec.String
	U32    = wasmtimec.U32
	U16    = wasmtimec.U16
	Bool   = wasmtimec.Bool
	List   = wasmtimec.List
	Tuple  = wasmtimec.Tuple
	None   = wasmtimec.None
	Some   = wasmtimec.Some
	OK     = wasmtimec.OK
	Err    = wasmtimec.Err
	Bytes  = wasmtimec.Bytes
	Record = wasmtimec.Record
)

// Value kinds.
const (
	KindBool   = wasmtimec.KindBool
	KindU8     = wasmtimec.KindU8
	KindU16    = wasmtimec.KindU16
	KindU32    = wasmtimec.KindU32
	KindString = wasmtimec.KindString
	KindList   = wasmtimec.KindList
	KindRecord = wasmtimec.KindRecord
	KindTuple  = wasmtimec.KindTuple
	KindOption = wasmtimec.KindOption
	KindResult = wasmtimec.KindResult
)

// HostFunc serves an imported function for instances. ctx is the context of
// the Instance.Call in progress (context.Background() during
// Instantiate): its deadline is the call's time limit, and a guest in a host
// function cannot be stopped until the function returns, so one that may
// block must end with ctx. data is the InstanceSpec.Data of the calling
// instance. An error traps the call.
type HostFunc func(ctx context.Context, data any, args []Value) ([]Value, error)

// Import is a definition an instance may import beyond WASI p2: an
// interface of types only (Func empty) or one function of an interface.
type Import struct {
	Interface, Func string
	Fn              HostFunc
}

// Linker holds the imports of instances (WASI p2 plus Imports); make one
// per set of imports and share it. Close it when no instance will be made
// with it any more.
type Linker struct{ l *wasmtimec.Linker }

// NewLinker defines WASI p2 and imports.
func (e *Engine) NewLinker(imports []Import) (*Linker, error) {
	defs := make([]wasmtimec.HostDef, len(imports))
	for i, im := range imports {
		defs[i] = wasmtimec.HostDef{Interface: im.Interface, Func: im.Func, Fn: wasmtimec.HostFunc(im.Fn)}
	}
	l, err := wasmtimec.NewLinker(e.opt.engine, defs)
	if err != nil {
		return nil, err
	}
	return &Linker{l}, nil
}

// Close releases the linker.
func (l *Linker) Close() { l.l.Close() }

// InstanceSpec is the environment of a long-lived component instance. Only
// what is listed is granted: no args, no stdin, output discarded, no
// network (WASI sockets allow no address), Env and Mounts only.
type InstanceSpec struct {
	Linker      *Linker
	Env         []string
	Mounts      []Mount
	MemoryLimit int64
	// Data is given to host functions this instance calls.
	Data any
}

// Instance is a component instance kept across typed calls (a plugin, as
// opposed to a command run once by Program.Run). Calls are serialized. A
// call that traps, exceeds its time limit or exits kills the instance: the
// error is a *CallError and later calls fail; make a new instance.
type Instance struct {
	e    *Engine
	inst *wasmtimec.Instance
}

// CallError is how a call ended when it did not return: Outcome is
// wasmtimec's Trapped, Cancelled (time limit) or Exited.
type CallError = wasmtimec.CallError

// Imports lists the names a component program imports (interfaces such as
// "wasi:filesystem/types@0.2.0", or plain names), so that a host can vet
// them before instantiating: the WASI p2 a Linker defines includes
// interfaces (wasi:sockets) that not every host means to grant. A core
// module is an errdefs.ErrInvalidArgument error.
func (p *Program) Imports() ([]string, error) {
	cp, ok := p.impl.(*componentProgram)
	if !ok {
		return nil, fmt.Errorf("imports of %s: not a component: %w", p.digest, errdefs.ErrInvalidArgument)
	}
	imps, err := cp.c.Imports()
	if err != nil {
		return nil, fmt.Errorf("imports of %s: %w", p.digest, err)
	}
	return imps, nil
}

// Instantiate makes an instance of a component program.
func (p *Program) Instantiate(spec InstanceSpec) (*Instance, error) {
	cp, ok := p.impl.(*componentProgram)
	if !ok {
		return nil, fmt.Errorf("instantiate %s: a core module cannot be instantiated for typed calls: %w", p.digest, errdefs.ErrInvalidArgument)
	}
	if spec.Linker == nil {
		return nil, errors.New("instantiate: no linker")
	}
	pre := make([]wasmtimec.Preopen, len(spec.Mounts))
	for i, m := range spec.Mounts {
		pre[i] = wasmtimec.Preopen{HostPath: m.HostPath, GuestPath: m.GuestPath, ReadOnly: m.ReadOnly}
	}
	// Instantiation runs guest code (the reactor's initialisers): keep the
	// epoch ticker awake for it.
	p.e.runStarted()
	defer p.e.runDone()
	inst, err := cp.c.Instantiate(spec.Linker.l, wasmtimec.InstanceConfig{
		Env: spec.Env, Preopens: pre, MemoryLimit: spec.MemoryLimit, StoreData: spec.Data,
	})
	if err != nil {
		return nil, err
	}
	return &Instance{e: p.e, inst: inst}, nil
}

// Call calls fn of the exported interface iface with args and returns its
// nresults results. ctx's deadline is the call's time limit: the guest is
// stopped at once (a guest in a host call, when
// the call returns; host functions get ctx to return with it).
func (i *Instance) Call(ctx context.Context, iface, fn string, args []Value, nresults int) (res []Value, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("call %s#%s: internal error: %v", iface, fn, r)
		}
	}()
	i.e.runStarted()
	defer i.e.runDone()
	return i.inst.Call(ctx, iface, fn, args, nresults)
}

// Close releases the instance (stopping a call in flight).
func (i *Instance) Close() { i.inst.Close() }
