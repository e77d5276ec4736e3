package runtime

import (
	"context"
	"errors"
	"fmt"
	"os"
	goruntime "runtime"
	"strings"
	"time"
	"unsafe"

	"github.com/bytecodealliance/wasmtime-go/v39"
	"github.com/containerd/errdefs"
)

// Exit codes for ends that are not the guest's own exit.
const (
	// ExitCodeTrap is reported for a trap, like `wasmtime run` on Unix and a
	// native process aborting (128+SIGABRT).
	ExitCodeTrap = 134
	// ExitCodeKilled is reported for OOMKilled and Killed (128+SIGKILL), as
	// the kubelet reports a container killed by the OOM killer or a signal.
	ExitCodeKilled = 137
)

// oomHeadroom: a failed guest whose linear memory ended within this many
// bytes of Spec.MemoryLimit is taken to have been refused memory (see
// classifyOOM).
const oomHeadroom = 8 << 20

// moduleBackend compiles core modules with one of the engine's tiers.
type moduleBackend struct {
	e *Engine
	t *tier
}

func (b moduleBackend) compile(wasm []byte) (compiledImpl, error) {
	m, err := wasmtime.NewModule(b.t.engine, wasm)
	if err != nil {
		return nil, err
	}
	return &moduleProgram{e: b.e, t: b.t, module: m}, nil
}

func (b moduleBackend) deserialize(path string) (compiledImpl, error) {
	m, err := wasmtime.NewModuleDeserializeFile(b.t.engine, path)
	if err != nil {
		return nil, err
	}
	return &moduleProgram{e: b.e, t: b.t, module: m}, nil
}

// moduleProgram runs a WASI p1 core module.
type moduleProgram struct {
	e      *Engine
	t      *tier // the wasmtime engine the module was compiled for
	module *wasmtime.Module
}

func (m *moduleProgram) serialize() ([]byte, error) { return m.module.Serialize() }
func (m *moduleProgram) close()                     { m.module.Close() }

func (m *moduleProgram) run(ctx context.Context, spec Spec) (Result, error) {
	ctx, cancel := runContext(ctx, spec.Timeout)
	defer cancel()

	wasi, err := wasiConfig(spec)
	if err != nil {
		return Result{}, err
	}
	defer wasi.Close() // no-op once the store has taken it

	var streams stdio
	defer streams.releaseGuestEnds()
	defer streams.closeStdin()
	stderrOOM := new(oomWatch)
	if err := streams.configure(spec, stderrOOM, wasi.SetStdinFile, wasi.SetStdoutFile, wasi.SetStderrFile); err != nil {
		return Result{}, err
	}
	streams.releaseGuestEnds() // wasmtime has opened them

	// With a Usage, the whole run stays on one OS thread, whose CPU clock
	// is the guest's; ended after the store is closed (deferred before it).
	defer spec.Usage.begin(true)()
	var pin goruntime.Pinner
	defer pin.Unpin() // after closeStore: the callback writes no more

	rs := &runState{done: ctx.Done(), monotonicStart: time.Now(), usage: spec.Usage}
	store := wasmtime.NewStoreWithData(m.t.engine, rs)
	storeClosed := false
	closeStore := func() {
		if !storeClosed {
			storeClosed = true
			store.Close()
			streams.wait()
		}
	}
	defer closeStore()
	if spec.MemoryLimit > 0 {
		store.Limiter(spec.MemoryLimit, -1, -1, -1, -1)
	}
	store.SetWasi(wasi)
	intr, err := installInterrupt(m.t.engine, store)
	if err != nil {
		return Result{}, err
	}

	// Stop the guest when ctx ends. The watcher is finished before the store
	// is deleted, since the interrupt flag belongs to the store.
	watchDone := make(chan struct{})
	watcherExited := make(chan struct{})
	go func() {
		defer close(watcherExited)
		select {
		case <-ctx.Done():
			intr.interrupt()
			streams.closeStdin()
		case <-watchDone:
		}
	}()
	stopWatcher := func() {
		close(watchDone)
		<-watcherExited
	}

	var callErr error
	inst, err := m.t.linker.Instantiate(store, m.module)
	if err != nil {
		var trap *wasmtime.Trap
		if !errors.As(err, &trap) {
			stopWatcher()
			if spec.MemoryLimit > 0 && strings.Contains(err.Error(), "exceeds memory limits") {
				// The initial memory alone is over the limit.
				return oomResult(spec, trapMessage(err)), nil
			}
			return Result{}, fmt.Errorf("instantiate: %w: %w", err, errdefs.ErrInvalidArgument)
		}
		callErr = err // a start function trapped or exited
	} else {
		if u := spec.Usage; u != nil {
			if ext := inst.GetExport(store, "memory"); ext != nil && ext.Memory() != nil {
				mem := ext.Memory()
				u.setMemory(int64(mem.DataSize(store)))
				pin.Pin(u)
				intr.trackMemory(mem, (*int64)(unsafe.Pointer(&u.memory)))
			}
		}
		start := inst.GetFunc(store, "_start")
		if start == nil {
			stopWatcher()
			return Result{}, fmt.Errorf("module exports no _start function (not a WASI command): %w", errdefs.ErrInvalidArgument)
		}
		_, callErr = start.Call(store)
	}
	stopWatcher()

	var memSize int64 = -1
	if inst != nil {
		if ext := inst.GetExport(store, "memory"); ext != nil && ext.Memory() != nil {
			memSize = int64(ext.Memory().DataSize(store))
		}
	}
	if spec.Usage != nil {
		intr.untrackMemory()
		if memSize >= 0 {
			spec.Usage.setMemory(memSize)
		}
	}
	closeStore() // flushes stdout/stderr to the Spec's writers

	res := classify(callErr, rs, ctx, spec)
	if spec.MemoryLimit > 0 && res.Reason == ReasonError && isOOM(memSize, spec.MemoryLimit, stderrOOM.Seen()) {
		res = oomResult(spec, res.Message)
	}
	return res, nil
}

// runContext adds spec's timeout to ctx.
func runContext(ctx context.Context, timeout time.Duration) (context.Context, context.CancelFunc) {
	if timeout > 0 {
		return context.WithTimeoutCause(ctx, timeout, fmt.Errorf("stopped after %s", timeout))
	}
	return context.WithCancel(ctx)
}

// classify turns how _start returned into a Result.
func classify(callErr error, rs *runState, ctx context.Context, spec Spec) Result {
	switch {
	case rs.exited:
		return exitResult(rs.exitCode)
	case callErr == nil:
		return Result{ExitCode: 0, Reason: ReasonCompleted}
	case ctx.Err() != nil:
		return Result{ExitCode: ExitCodeKilled, Reason: ReasonKilled, Message: stoppedMessage(ctx, spec)}
	}
	var werr *wasmtime.Error
	if errors.As(callErr, &werr) {
		if code, ok := werr.ExitStatus(); ok {
			return exitResult(uint32(code))
		}
	}
	return Result{ExitCode: ExitCodeTrap, Reason: ReasonError, Message: trapMessage(callErr)}
}

// exitResult reports a guest's own exit status, modulo 256 like POSIX.
func exitResult(status uint32) Result {
	code := int(status & 0xff)
	if code == 0 {
		return Result{ExitCode: 0, Reason: ReasonCompleted}
	}
	return Result{ExitCode: code, Reason: ReasonError, Message: fmt.Sprintf("exit code %d", code)}
}

// stoppedMessage says why a run's context ended.
func stoppedMessage(ctx context.Context, spec Spec) string {
	cause := context.Cause(ctx)
	switch {
	case errors.Is(cause, context.Canceled):
		return "stopped: run cancelled"
	case spec.Timeout > 0 && !errors.Is(cause, context.DeadlineExceeded):
		return cause.Error() // "stopped after <Timeout>"
	}
	return "stopped: " + cause.Error()
}

// oomResult reports a guest that needed more memory than its limit.
func oomResult(spec Spec, detail string) Result {
	msg := "out of memory: limit " + FormatBytes(spec.MemoryLimit)
	if detail != "" {
		msg += " (" + detail + ")"
	}
	return Result{ExitCode: ExitCodeKilled, Reason: ReasonOOMKilled, Message: msg}
}

// trapMessage makes a short text of a trap or error: wasmtime's messages
// read "error while executing at wasm backtrace: <frames> Caused by: <cause>
// Stack backtrace: <host frames>"; keep the cause and the innermost wasm
// frame.
func trapMessage(err error) string {
	msg := err.Error()
	var frame string
	if _, bt, ok := strings.Cut(msg, "wasm backtrace:"); ok {
		for _, line := range strings.Split(bt, "\n") {
			f := strings.Fields(line)
			if len(f) > 0 && strings.HasSuffix(f[0], ":") {
				f = f[1:]
			}
			if len(f) > 0 {
				frame = strings.Join(f, " ")
				break
			}
		}
	}
	if _, cause, ok := strings.Cut(msg, "Caused by:"); ok {
		cause, _, _ = strings.Cut(cause, "Stack backtrace:")
		var parts []string
		for _, line := range strings.Split(cause, "\n") {
			if line = strings.TrimSpace(line); line != "" {
				parts = append(parts, line)
			}
		}
		msg = strings.Join(parts, ": ")
	} else if i := strings.Index(msg, "\nwasm backtrace:"); i >= 0 {
		msg = msg[:i]
	}
	msg = strings.TrimSpace(msg)
	if msg == "" {
		msg = "trap"
	}
	if frame != "" {
		msg += " (at " + frame + ")"
	}
	return msg
}

// isOOM decides whether a failed guest ran out of its memory limit. wasmtime
// does not report refused memory.grow requests (the guest just gets -1 and
// decides what to do), so this is inferred, and only for a guest that failed
// (non-zero exit or trap) under a MemoryLimit:
//   - its linear memory ended within oomHeadroom (8 MiB) of the limit: a
//     guest that grows gradually (the Go runtime grows in 4 MiB arenas) was
//     refused its next growth; or
//   - its stderr carried a language runtime's out-of-memory message
//     (hasOOMMessage), which also covers one large allocation far over the
//     limit.
func isOOM(memSize, limit int64, oomMessage bool) bool {
	if memSize >= 0 && limit-memSize < oomHeadroom {
		return true
	}
	return oomMessage
}

// argv0 is spec.Name, or "main.wasm" when empty.
func argv0(spec Spec) string {
	if spec.Name == "" {
		return "main.wasm"
	}
	return spec.Name
}

// wasiConfig builds argv, environment and preopens.
func wasiConfig(spec Spec) (*wasmtime.WasiConfig, error) {
	wasi := wasmtime.NewWasiConfig()
	wasi.SetArgv(append([]string{argv0(spec)}, spec.Args...))
	keys, values, err := splitEnv(spec.Env)
	if err != nil {
		wasi.Close()
		return nil, err
	}
	wasi.SetEnv(keys, values)
	for _, mnt := range spec.Mounts {
		if err := checkMount(mnt); err != nil {
			wasi.Close()
			return nil, err
		}
		dirPerms, filePerms := wasmtime.DIR_READ|wasmtime.DIR_WRITE, wasmtime.FILE_READ|wasmtime.FILE_WRITE
		if mnt.ReadOnly {
			dirPerms, filePerms = wasmtime.DIR_READ, wasmtime.FILE_READ
		}
		if err := wasi.PreopenDir(mnt.HostPath, mnt.GuestPath, dirPerms, filePerms); err != nil {
			wasi.Close()
			return nil, fmt.Errorf("preopen %s at %s: %w", mnt.HostPath, mnt.GuestPath, err)
		}
	}
	return wasi, nil
}

func checkMount(m Mount) error {
	if m.GuestPath == "" {
		return fmt.Errorf("mount of %s has no guest path: %w", m.HostPath, errdefs.ErrInvalidArgument)
	}
	fi, err := os.Stat(m.HostPath)
	if err != nil {
		return fmt.Errorf("preopen %s: %w", m.HostPath, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("preopen %s: not a directory: %w", m.HostPath, errdefs.ErrInvalidArgument)
	}
	return nil
}

// splitEnv splits KEY=VALUE pairs; a later duplicate key replaces the value
// of the earlier one in its position.
func splitEnv(env []string) (keys, values []string, err error) {
	index := make(map[string]int, len(env))
	for _, kv := range env {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, nil, fmt.Errorf("environment entry %q is not KEY=VALUE: %w", kv, errdefs.ErrInvalidArgument)
		}
		if i, dup := index[k]; dup {
			values[i] = v
			continue
		}
		index[k] = len(keys)
		keys = append(keys, k)
		values = append(values, v)
	}
	return keys, values, nil
}
