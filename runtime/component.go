package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/containerd/errdefs"

	"github.com/wasilet/wasilet/runtime/internal/wasmtimec"
)

// componentDetachGrace bounds how long Run waits, after its context ends,
// for a component run to return. wasmtime's WASI p2 host calls (a sleep, a
// blocking read) cannot be interrupted from outside, unlike core modules
// (see wasi.go), so a component sleeping in the host is left to finish in
// the background: Run reports it Killed, its later output is discarded, and
// its store is freed when the host call returns and the guest traps at the
// next epoch check.
const componentDetachGrace = 100 * time.Millisecond

// componentBackend compiles WASI p2 components through wasmtimec.
type componentBackend struct{ e *Engine }

func (e *Engine) componentBackend() (backend, error) { return componentBackend{e}, nil }

func (b componentBackend) compile(wasm []byte) (compiledImpl, error) {
	c, err := wasmtimec.Compile(b.e.opt.engine, wasm)
	if err != nil {
		return nil, err
	}
	return &componentProgram{e: b.e, c: c}, nil
}

func (b componentBackend) deserialize(path string) (compiledImpl, error) {
	c, err := wasmtimec.DeserializeFile(b.e.opt.engine, path)
	if err != nil {
		return nil, err
	}
	return &componentProgram{e: b.e, c: c}, nil
}

// componentProgram runs a WASI p2 command component.
type componentProgram struct {
	e *Engine
	c *wasmtimec.Component
}

func (p *componentProgram) serialize() ([]byte, error) { return p.c.Serialize() }
func (p *componentProgram) close()                     { p.c.Close() }

func (p *componentProgram) run(ctx context.Context, spec Spec) (Result, error) {
	if !p.c.IsCommand() {
		return Result{}, fmt.Errorf("%w: %w", wasmtimec.ErrNotCommand, errdefs.ErrInvalidArgument)
	}
	ctx, cancel := runContext(ctx, spec.Timeout)
	defer cancel()
	if _, _, err := splitEnv(spec.Env); err != nil {
		return Result{}, err
	}
	cfg := wasmtimec.RunConfig{
		Args:        append([]string{argv0(spec)}, spec.Args...),
		Env:         spec.Env,
		MemoryLimit: spec.MemoryLimit,
	}
	for _, m := range spec.Mounts {
		if err := checkMount(m); err != nil {
			return Result{}, err
		}
		cfg.Preopens = append(cfg.Preopens, wasmtimec.Preopen{HostPath: m.HostPath, GuestPath: m.GuestPath, ReadOnly: m.ReadOnly})
	}

	// Output goes through gates so that a detached run (see
	// componentDetachGrace) cannot write after Run returned.
	stdout, stderr := newGate(spec.Stdout), newGate(writerOr(spec.Stderr))
	if spec.Stdout != nil {
		spec.Stdout = stdout
	}
	spec.Stderr = stderr
	streams := &stdio{}
	stderrOOM := new(oomWatch)
	set := func(dst *string) func(string) error {
		return func(path string) error { *dst = path; return nil }
	}
	if err := streams.configure(spec, stderrOOM, set(&cfg.Stdin), set(&cfg.Stdout), set(&cfg.Stderr)); err != nil {
		streams.releaseGuestEnds()
		streams.closeStdin()
		return Result{}, err
	}

	type ret struct {
		r   wasmtimec.RunResult
		err error
	}
	done := make(chan ret, 1)
	// The run may outlive Run (detached, see componentDetachGrace): it keeps
	// the engine's ticker going itself, so that it still stops at an epoch
	// tick once its host call returns.
	p.e.runStarted()
	usage := spec.Usage
	go func() {
		var r ret
		defer p.e.runDone()
		defer func() {
			if v := recover(); v != nil {
				r.err = fmt.Errorf("run component: internal error: %v", v)
			}
			// wasmtime has closed its descriptors with the store.
			streams.releaseGuestEnds()
			streams.closeStdin()
			streams.wait()
			done <- r
		}()
		// With a Usage this goroutine stays on one OS thread, the one
		// wasmtime runs the guest on; ended before done is sent.
		defer usage.begin(false)()
		r.r, r.err = p.c.Run(ctx, cfg)
	}()

	var r ret
	select {
	case r = <-done:
	case <-ctx.Done():
		streams.closeStdin() // a guest blocked reading stdin gets EOF
		// An uninterruptible engine's guest would never trap once detached:
		// Run waits for it to end, as for a core module.
		var grace <-chan time.Time
		if p.e.epoch {
			grace = time.After(componentDetachGrace)
		}
		select {
		case r = <-done:
		case <-grace:
			stdout.close()
			stderr.close()
			return Result{ExitCode: ExitCodeKilled, Reason: ReasonKilled, Message: stoppedMessage(ctx, spec)}, nil
		}
	}
	if r.err != nil {
		var ie *wasmtimec.InstantiateError
		switch {
		case errors.As(r.err, &ie) && ie.MemoryLimit:
			return oomResult(spec, ie.Err.Message), nil
		case errors.As(r.err, &ie):
			return Result{}, fmt.Errorf("%w: %w", r.err, errdefs.ErrInvalidArgument)
		}
		return Result{}, r.err
	}

	var res Result
	switch r.r.Outcome {
	case wasmtimec.Returned, wasmtimec.Exited:
		res = exitResult(uint32(r.r.ExitCode))
	case wasmtimec.Cancelled:
		res = Result{ExitCode: ExitCodeKilled, Reason: ReasonKilled, Message: stoppedMessage(ctx, spec)}
	default: // Trapped
		if ctx.Err() != nil {
			res = Result{ExitCode: ExitCodeKilled, Reason: ReasonKilled, Message: stoppedMessage(ctx, spec)}
		} else {
			res = Result{ExitCode: ExitCodeTrap, Reason: ReasonError, Message: r.r.Message}
		}
	}
	if spec.MemoryLimit > 0 && res.Reason == ReasonError && isOOM(-1, spec.MemoryLimit, stderrOOM.Seen()) {
		res = oomResult(spec, res.Message)
	}
	return res, nil
}

// gate is an io.Writer that can be shut: writes after close are discarded.
type gate struct {
	mu     sync.Mutex
	w      io.Writer
	closed bool
}

func newGate(w io.Writer) *gate { return &gate{w: w} }

func (g *gate) Write(p []byte) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed || g.w == nil {
		return len(p), nil
	}
	return g.w.Write(p)
}

func (g *gate) close() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
}
