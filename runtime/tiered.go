package runtime

import (
	goruntime "runtime"
	"syscall"

	"github.com/bytecodealliance/wasmtime-go/v39"
)

// Tiered compilation (Options.Tiered). A core module that no cache has is
// compiled by the baseline tier: the engine's configuration with
// Cranelift's single-pass register allocator and no optimization passes,
// which compiles in about half the time into code that runs about half as
// fast (measured in BenchmarkModuleStart's tiered rows: sqlite-hello, 1.1
// MB, compiles in ~0.5 s against ~0.9 s, and its SQLite work takes twice as
// long; the single-pass allocator alone costs that much speed, so skipping
// the optimizer as well costs nothing more). Winch, wasmtime's baseline
// compiler, would compile faster still, but wasmtime's C API v39 has no way
// to select it. The same module is then compiled as usual by the
// optimizer: one goroutine on an OS thread of the lowest priority, through
// the background tier (the engine's configuration without parallel
// compilation, so that the work stays on that thread), one module at a time
// — a node starting many new modules at once would otherwise queue full
// compiles in front of their quick ones. The optimizer writes the artifact
// and puts its program in the memory cache in place of the baseline one, so
// later loads get the optimized code; runs already started keep theirs
// (wasmtime cannot swap the code of a running instance), which is why it is
// an option: a long-running guest started on the quick code stays at half
// speed until its container restarts.

// optimizeJob is a module the optimizer is to compile fully.
type optimizeJob struct {
	ent  *loadEntry
	kind Kind
	key  string
	wasm []byte
}

// startTiers makes the baseline and background tiers and starts the
// optimizer.
func (e *Engine) startTiers() error {
	base := engineConfig(e.epoch)
	base.SetCraneliftFlag("regalloc_algorithm", "single_pass")
	base.SetCraneliftOptLevel(wasmtime.OptLevelNone)
	var err error
	if e.baseline, err = newTier(base); err != nil {
		return err
	}
	bg := engineConfig(e.epoch)
	bg.SetParallelCompilation(false)
	if e.background, err = newTier(bg); err != nil {
		e.baseline.close()
		e.baseline = nil
		return err
	}
	e.jobWake = make(chan struct{}, 1)
	e.optimizerDone = make(chan struct{})
	go e.optimizer()
	return nil
}

// optimizeLater queues a baseline-compiled module for the optimizer.
func (e *Engine) optimizeLater(ent *loadEntry, kind Kind, key string, wasm []byte) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return
	}
	e.jobs = append(e.jobs, optimizeJob{ent: ent, kind: kind, key: key, wasm: wasm})
	select {
	case e.jobWake <- struct{}{}:
	default:
	}
}

// optimizer compiles queued modules one at a time until the engine closes.
func (e *Engine) optimizer() {
	defer close(e.optimizerDone)
	// The thread is never unlocked: it ends with the goroutine, and its
	// priority with it.
	goruntime.LockOSThread()
	// Nice 19 for this thread alone (Linux: PRIO_PROCESS of a thread ID);
	// where that fails it runs at normal priority.
	_ = syscall.Setpriority(syscall.PRIO_PROCESS, syscall.Gettid(), 19)
	for {
		e.mu.Lock()
		for len(e.jobs) == 0 && !e.closed {
			e.mu.Unlock()
			<-e.jobWake
			e.mu.Lock()
		}
		if e.closed {
			e.jobs = nil
			e.mu.Unlock()
			return
		}
		job := e.jobs[0]
		e.jobs[0] = optimizeJob{}
		e.jobs = e.jobs[1:]
		e.mu.Unlock()
		e.optimize(job)
	}
}

// optimize compiles one module fully, writes its artifact and puts the
// program in the memory cache, unless its baseline entry was forgotten
// meanwhile (Forget, Close).
func (e *Engine) optimize(job optimizeJob) {
	defer e.optimized.Add(1)
	impl, err := moduleBackend{e, e.background}.compile(job.wasm)
	if err != nil {
		e.optimizeErrors.Add(1)
		return
	}
	e.compiles.Add(1)
	e.writeCache(job.key, job.kind, impl)
	next := &loadEntry{done: make(chan struct{}), prog: &Program{e: e, kind: job.kind, digest: job.ent.prog.digest, impl: impl}}
	close(next.done)
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed || e.programs[job.key] != job.ent {
		impl.close()
		return
	}
	// The baseline program is freed by its finalizer once no caller holds
	// it, as after Forget.
	e.programs[job.key] = next
}

// stopOptimizer ends the optimizer (a compile in progress cannot be
// cancelled: Close waits for it; queued ones are dropped). e.closed is set.
func (e *Engine) stopOptimizer() {
	if e.optimizerDone == nil {
		return
	}
	select {
	case e.jobWake <- struct{}{}:
	default:
	}
	<-e.optimizerDone
}
