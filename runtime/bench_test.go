package runtime_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/wasilet/wasilet/runtime"
)

// Start = Load + one Run of `testprog exit 0` (a ~3 MB Go wasip1 module),
// from three states of the compiled cache:
//   - cold: a fresh engine without an artifact, so Load compiles;
//   - disk: a fresh engine (a restarted node) with the artifact on disk;
//   - warm: the engine already holds the program in memory.
func BenchmarkStart(b *testing.B) {
	wasm, key := readTestprog(b)
	benchStart(b, wasm, key)
}

// BenchmarkStartComponent is BenchmarkStart for the component build of
// testprog, for comparison with the core module in the same run.
func BenchmarkStartComponent(b *testing.B) {
	wasm, err := os.ReadFile(componentWasm(b))
	if err != nil {
		b.Fatal(err)
	}
	sum := sha256.Sum256(wasm)
	benchStart(b, wasm, hex.EncodeToString(sum[:]))
}

func benchStart(b *testing.B, wasm []byte, key string) {
	spec := runtime.Spec{Name: "testprog", Args: []string{"exit", "0"}}
	ctx := context.Background()
	start := func(b *testing.B, e *runtime.Engine, digest string) {
		p, err := e.Load(ctx, wasm, digest)
		if err != nil {
			b.Fatal(err)
		}
		res, err := p.Run(ctx, spec)
		if err != nil || res.Reason != runtime.ReasonCompleted {
			b.Fatalf("run: %+v %v", res, err)
		}
	}
	b.Run("cold", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			e, err := runtime.NewEngine(runtime.Options{})
			if err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			start(b, e, "")
			b.StopTimer()
			e.Close()
			b.StartTimer()
		}
	})
	b.Run("disk", func(b *testing.B) {
		dir := b.TempDir()
		seed, err := runtime.NewEngine(runtime.Options{CacheDir: dir})
		if err != nil {
			b.Fatal(err)
		}
		start(b, seed, "")
		seed.Close()
		for b.Loop() {
			b.StopTimer()
			e, err := runtime.NewEngine(runtime.Options{CacheDir: dir})
			if err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			start(b, e, "sha256:"+key)
			b.StopTimer()
			if s := e.Stats(); s.DiskHits != 1 {
				b.Fatalf("not a disk hit: %+v", s)
			}
			e.Close()
			b.StartTimer()
		}
	})
	b.Run("warm", func(b *testing.B) {
		e := newEngine(b, "")
		start(b, e, "")
		for b.Loop() {
			start(b, e, "sha256:"+key)
		}
	})
	b.Run("warm-hashing", func(b *testing.B) {
		// As warm, but Load hashes the 3 MB binary to find its key.
		e := newEngine(b, "")
		start(b, e, "")
		for b.Loop() {
			start(b, e, "")
		}
	})
}

// BenchmarkRun is instantiate + run of `testprog exit 0` with a loaded
// program: the per-container cost once the image is cached.
func BenchmarkRun(b *testing.B) {
	b.Run("module", func(b *testing.B) { benchRun(b, testprog(b)) })
	b.Run("component", func(b *testing.B) { benchRun(b, testprogComponent(b)) })
}

func benchRun(b *testing.B, p *runtime.Program) {
	spec := runtime.Spec{Name: "testprog", Args: []string{"exit", "0"}}
	for b.Loop() {
		res, err := p.Run(context.Background(), spec)
		if err != nil || res.Reason != runtime.ReasonCompleted {
			b.Fatalf("run: %+v %v", res, err)
		}
	}
}

// BenchmarkRunWAT is the same for a module that only returns from _start,
// isolating the runtime's per-run overhead (store, WASI context, pipes,
// goroutines) from the Go guest's own start-up.
func BenchmarkRunWAT(b *testing.B) {
	e := newEngine(b, "")
	p, err := e.Load(context.Background(), watModule(b, `(module (func (export "_start")))`), "")
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := p.Run(context.Background(), runtime.Spec{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStopLatency measures how long a running guest takes to stop after
// its context is cancelled (ns/op is the latency): spinning in wasm code and
// sleeping in the host, for both kinds.
func BenchmarkStopLatency(b *testing.B) {
	for _, kind := range []string{"module", "component"} {
		for _, step := range []string{"spin", "sleep"} {
			b.Run(kind+"/"+step, func(b *testing.B) {
				p := testprog(b)
				if kind == "component" {
					p = testprogComponent(b)
				}
				args := []string{"echo", "up", ";", step}
				if step == "sleep" {
					args = append(args, "1h")
				}
				var total time.Duration
				for b.Loop() {
					b.StopTimer()
					ctx, cancel := context.WithCancel(context.Background())
					started := make(chan struct{})
					done := make(chan time.Time, 1)
					go func() {
						p.Run(ctx, runtime.Spec{Args: args, Stdout: &signalWriter{started: started}})
						done <- time.Now()
					}()
					<-started
					time.Sleep(20 * time.Millisecond)
					t0 := time.Now()
					cancel()
					total += (<-done).Sub(t0)
					b.StartTimer()
				}
				b.ReportMetric(float64(total.Microseconds())/float64(b.N)/1000, "ms/stop")
			})
		}
	}
}

// signalWriter closes started on the first write.
type signalWriter struct {
	started chan struct{}
	once    sync.Once
}

func (w *signalWriter) Write(p []byte) (int, error) {
	w.once.Do(func() { close(w.started) })
	return len(p), nil
}
