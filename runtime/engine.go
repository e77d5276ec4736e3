package runtime

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	goruntime "runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bytecodealliance/wasmtime-go/v39"

	"github.com/wasilet/wasilet/internal/atomicfile"
)

// DefaultEpochInterval is how often the engine's ticker advances the epoch
// while guests run. A stop does not wait for it: whoever sets a guest's stop
// flag advances the epoch at once, and every store starts with a deadline
// of 0, so its first epoch check already looks at the flag. The ticker
// samples a running module's memory size (Usage) and is a backstop; at
// 10 ms it was a hundred wake-ups a second, most of an idle node's CPU.
const DefaultEpochInterval = 100 * time.Millisecond

// WasmtimeVersion is the version of the wasmtime-go module (and so of the
// libwasmtime) this package is built with: go.mod pins it, and
// TestWasmtimeVersion checks the two agree. A constant rather than the
// build information (runtime/debug), which `wasilet run`'s early start must
// not import (see cmd/wasilet/internal/early).
const WasmtimeVersion = "39.0.1"

// Options configure an Engine. The zero value is usable: no disk cache and
// the default epoch interval.
type Options struct {
	// CacheDir holds compiled artifacts, so a module is compiled once per
	// machine rather than once per process. Empty: compile in memory only.
	CacheDir string
	// EpochInterval overrides DefaultEpochInterval (0: the default).
	EpochInterval time.Duration
	// Tiered starts a core module that is in neither cache on a quick
	// compile (about half the compile time, code about half as fast) while
	// the module is compiled as usual in the background; the artifact
	// written then serves every later load, but runs already started keep
	// the quick code. See tiered.go.
	Tiered bool
	// Uninterruptible compiles guests without epoch checks, as the wasmtime
	// CLI does unless given a timeout: a few per cent less to compile
	// (testprog, 3 MB: ~5 %) and no check on every loop back-edge and
	// function entry, but a guest running Wasm code can no longer be
	// stopped. Cancelling a run's context then closes the guest's stdin and
	// ends a core module's sleep; otherwise Run waits for the guest to end
	// by itself (a component's too). A Spec with a Timeout is refused, and Usage sees a
	// module's memory only at the start and end. Meant for a process that
	// runs one guest and ends itself on a signal (`wasilet run` without
	// --timeout). Its artifacts live beside the interruptible ones, under a
	// fingerprint of their own.
	Uninterruptible bool
}

// Stats counts how Engine.Load found its programs. Tests use it to assert
// cache behaviour without timing.
type Stats struct {
	// MemoryHits counts loads served by a program already in memory.
	MemoryHits uint64
	// DiskHits counts loads served by deserializing a compiled artifact
	// from CacheDir.
	DiskHits uint64
	// Compiles counts full compiles of wasm binaries (a load's, or the
	// background one of a tiered load).
	Compiles uint64
	// BaselineCompiles counts loads that compiled a core module with the
	// quicker baseline settings (Options.Tiered).
	BaselineCompiles uint64
	// OptimizeErrors counts background compiles that failed after a
	// baseline compile succeeded; the baseline program stays in use.
	OptimizeErrors uint64
	// Discarded counts artifacts in CacheDir found corrupt, truncated or
	// incompatible with this engine, removed and then recompiled.
	Discarded uint64
	// CacheWriteErrors counts compiled artifacts that could not be written
	// to CacheDir (the load itself still succeeds).
	CacheWriteErrors uint64
}

// Engine is the one wasmtime engine of a process: it compiles programs, keeps
// them in memory and on disk, and drives cancellation of every running guest
// with one epoch ticker. All methods are safe for concurrent use.
//
// Engine configuration, chosen deliberately:
//   - Cranelift at OptLevelSpeed: the code runs for a pod's lifetime, and the
//     compiled cache pays the compile cost once per machine.
//   - Epoch interruption on (not fuel; off with Options.Uninterruptible):
//     it costs a load and compare per loop back-edge and function entry,
//     while fuel costs a counter update per basic block. A ticker goroutine
//     increments the epoch every EpochInterval, and a stop advances it at
//     once; each store gets a deadline of 0 ticks (its first check calls the
//     callback) and a C callback that either extends it by one tick or stops
//     the guest when asked.
//   - Parallel compilation on; debug info off; NaN canonicalization off.
//   - On-demand instance allocation, not the pooling allocator (which
//     runtime/internal/wasmtimec could switch on): pooling fixes the total
//     number of live instances and memories and reserves address space for
//     every slot up front, while a node's pod count and guest sizes are not
//     known in advance; with copy-on-write memory initialization (the
//     default) on-demand instantiation already takes microseconds.
//   - Default memory reservation (4 GiB of address space per linear memory,
//     with guard pages, so bounds checks are free): 1,000 guests use 4 TiB
//     of the 128 TiB user address space.
type Engine struct {
	opt         *tier // every artifact, component and instance
	epoch       bool  // compiled code checks the epoch (not Options.Uninterruptible)
	cacheDir    string
	writes      sync.WaitGroup // artifacts being written (see load)
	fingerprint string

	// With Options.Tiered: the quick tier, the background tier and the
	// optimizer's queue (see tiered.go); nil otherwise.
	baseline, background *tier

	mu       sync.Mutex
	programs map[string]*loadEntry
	closed   bool
	jobs     []optimizeJob // queued for the optimizer, oldest first

	jobWake       chan struct{}
	optimizerDone chan struct{}

	stopTicker chan struct{}
	tickerDone chan struct{}
	// active counts runs in flight; the ticker sleeps while it is zero and
	// wake rouses it.
	active atomic.Int64
	wake   chan struct{}

	memoryHits, diskHits, compiles, discarded, cacheWriteErrors atomic.Uint64
	baselineCompiles, optimizeErrors                            atomic.Uint64
	optimized                                                   atomic.Uint64 // optimizer jobs ended
}

// tier is one wasmtime engine and the WASI p1 linker of its core modules.
// Code compiled by one tier's engine runs only in stores of that engine.
type tier struct {
	engine *wasmtime.Engine
	linker *wasmtime.Linker
}

// engineConfig is the configuration described on Engine; epoch says
// whether compiled code checks the epoch (Options.Uninterruptible).
func engineConfig(epoch bool) *wasmtime.Config {
	cfg := wasmtime.NewConfig()
	cfg.SetStrategy(wasmtime.StrategyCranelift)
	cfg.SetCraneliftOptLevel(wasmtime.OptLevelSpeed)
	cfg.SetEpochInterruption(epoch)
	cfg.SetParallelCompilation(true)
	cfg.SetDebugInfo(false)
	cfg.SetCraneliftNanCanonicalization(false)
	return cfg
}

// newTier creates the engine of cfg (which it consumes) and its linker.
func newTier(cfg *wasmtime.Config) (*tier, error) {
	engine := wasmtime.NewEngineWithConfig(cfg)
	linker, err := newWASILinker(engine)
	if err != nil {
		engine.Close()
		return nil, err
	}
	return &tier{engine: engine, linker: linker}, nil
}

func (t *tier) close() {
	t.linker.Close()
	t.engine.Close()
}

// NewEngine creates the engine and starts its epoch ticker. Call Close when
// done with it.
func NewEngine(opts Options) (*Engine, error) {
	if err := checkStoreLayout(); err != nil {
		return nil, fmt.Errorf("new engine: %w", err)
	}
	interval := opts.EpochInterval
	if interval <= 0 {
		interval = DefaultEpochInterval
	}
	epoch := !opts.Uninterruptible
	opt, err := newTier(engineConfig(epoch))
	if err != nil {
		return nil, fmt.Errorf("new engine: %w", err)
	}
	e := &Engine{
		opt:         opt,
		epoch:       epoch,
		cacheDir:    opts.CacheDir,
		fingerprint: configFingerprint(epoch),
		programs:    make(map[string]*loadEntry),
		stopTicker:  make(chan struct{}),
		tickerDone:  make(chan struct{}),
		wake:        make(chan struct{}, 1),
	}
	if opts.Tiered {
		if err := e.startTiers(); err != nil {
			opt.close()
			return nil, fmt.Errorf("new engine: %w", err)
		}
	}
	go e.tick(interval)
	return e, nil
}

// configFingerprint names everything a compiled artifact depends on besides
// the wasm itself: the wasmtime version, the engine settings above and the
// platform. It changes whenever an old artifact could not be loaded, so old
// artifacts are simply never looked up (they sit in their own directory).
func configFingerprint(epoch bool) string {
	checks := "on"
	if !epoch {
		checks = "off"
	}
	desc := fmt.Sprintf("wasmtime=%s;strategy=cranelift;opt=speed;epoch=%s;nan-canon=off;debug=off;platform=%s/%s;format=%d",
		WasmtimeVersion, checks, goruntime.GOOS, goruntime.GOARCH, artifactFormatVersion)
	sum := sha256.Sum256([]byte(desc))
	return hex.EncodeToString(sum[:8])
}

// tick advances the epoch every interval while runs are in flight, and
// sleeps (no wake-ups at all) while none are.
func (e *Engine) tick(interval time.Duration) {
	defer close(e.tickerDone)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if e.active.Load() == 0 {
			select {
			case <-e.stopTicker:
				return
			case <-e.wake:
				continue
			}
		}
		select {
		case <-e.stopTicker:
			return
		case <-t.C:
			for _, t := range []*tier{e.opt, e.baseline, e.background} {
				if t != nil {
					t.engine.IncrementEpoch()
				}
			}
		}
	}
}

// runStarted and runDone bracket every run, keeping the ticker going.
func (e *Engine) runStarted() {
	e.active.Add(1)
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

func (e *Engine) runDone() { e.active.Add(-1) }

// Stats returns the load counters.
func (e *Engine) Stats() Stats {
	return Stats{
		MemoryHits:       e.memoryHits.Load(),
		DiskHits:         e.diskHits.Load(),
		Compiles:         e.compiles.Load(),
		BaselineCompiles: e.baselineCompiles.Load(),
		OptimizeErrors:   e.optimizeErrors.Load(),
		Discarded:        e.discarded.Load(),
		CacheWriteErrors: e.cacheWriteErrors.Load(),
	}
}

// Fingerprint identifies the engine configuration in compiled-cache paths
// (CacheDir/<fingerprint>/...).
func (e *Engine) Fingerprint() string { return e.fingerprint }

// Check reports what keeps the engine from running programs: closed, or
// its compiled-module cache not writable.
func (e *Engine) Check() error {
	e.mu.Lock()
	closed := e.closed
	e.mu.Unlock()
	if closed {
		return errors.New("wasmtime engine closed")
	}
	if e.cacheDir == "" {
		return nil
	}
	// The cache is created at the first compile; create it now if needed.
	if err := os.MkdirAll(e.cacheDir, 0o755); err != nil {
		return fmt.Errorf("compiled-module cache: %w", err)
	}
	if err := atomicfile.ProbeWritable(e.cacheDir); err != nil {
		return fmt.Errorf("compiled-module cache: %w", err)
	}
	return nil
}

// Close stops the ticker and frees the engine and every program it loaded.
// No Run may be in flight and no Program may be used afterwards. Close may
// be called more than once.
func (e *Engine) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	programs := e.programs
	e.programs = nil
	e.mu.Unlock()

	e.stopOptimizer()
	e.writes.Wait()
	close(e.stopTicker)
	<-e.tickerDone
	for _, ent := range programs {
		select {
		case <-ent.done:
			if ent.prog != nil {
				ent.prog.impl.close()
			}
		default:
		}
	}
	for _, t := range []*tier{e.opt, e.baseline, e.background} {
		if t != nil {
			t.close()
		}
	}
	return nil
}

var errClosed = errors.New("engine is closed")
