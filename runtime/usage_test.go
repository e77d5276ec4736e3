package runtime_test

import (
	"context"
	"testing"
	"time"

	"github.com/bytecodealliance/wasmtime-go/v39"

	"github.com/wasilet/wasilet/runtime"
)

func TestMemoryLayout(t *testing.T) {
	if err := runtime.CheckMemoryLayoutForTest(); err != nil {
		t.Fatal(err)
	}
}

// startUsage runs spec with a fresh Usage in the background; stop cancels
// the run and returns its result and the usage at its end.
func startUsage(t *testing.T, p *runtime.Program, spec runtime.Spec) (*runtime.Usage, func() (runtime.Result, runtime.UsageSample)) {
	t.Helper()
	u := new(runtime.Usage)
	spec.Usage = u
	ctx, cancel := context.WithCancel(context.Background())
	type ret struct {
		res runtime.Result
		err error
	}
	ch := make(chan ret, 1)
	go func() {
		res, err := p.Run(ctx, spec)
		ch <- ret{res, err}
	}()
	stopped := false
	stop := func() (runtime.Result, runtime.UsageSample) {
		t.Helper()
		stopped = true
		cancel()
		select {
		case r := <-ch:
			if r.err != nil {
				t.Fatalf("Run: %v", r.err)
			}
			return r.res, u.Sample()
		case <-time.After(60 * time.Second):
			t.Fatal("run was not stopped within 60s")
		}
		return runtime.Result{}, runtime.UsageSample{}
	}
	t.Cleanup(func() {
		if !stopped {
			cancel()
			<-ch
		}
	})
	return u, stop
}

// waitUsage polls u until ok accepts a sample of the running guest.
func waitUsage(t *testing.T, u *runtime.Usage, what string, ok func(runtime.UsageSample) bool) runtime.UsageSample {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var s runtime.UsageSample
	for time.Now().Before(deadline) {
		s = u.Sample()
		if s.Running && ok(s) {
			return s
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s: not seen within 60s; last sample %+v", what, s)
	return s
}

func TestUsageMemoryOfSleepingGuest(t *testing.T) {
	// The guest allocates, then sleeps in the host (poll_oneoff).
	u, stop := startUsage(t, testprog(t), runtime.Spec{Args: []string{"alloc", "20Mi", ";", "sleep", "1h"}})
	s := waitUsage(t, u, "memory >= 20Mi", func(s runtime.UsageSample) bool { return s.Memory >= 20<<20 })
	if s.StartTime.IsZero() || s.Time.Before(s.StartTime) {
		t.Fatalf("sample times: %+v", s)
	}
	res, end := stop()
	if res.Reason != runtime.ReasonKilled || end.Running || end.Memory < 20<<20 || end.CPU <= 0 {
		t.Fatalf("after the run: %+v, usage %+v", res, end)
	}
}

func TestUsageCPUOfSpinningGuest(t *testing.T) {
	u, stop := startUsage(t, testprog(t), runtime.Spec{Args: []string{"spin"}})
	first := waitUsage(t, u, "CPU > 0", func(s runtime.UsageSample) bool { return s.CPU > 0 })
	// CPU keeps growing while the guest spins.
	waitUsage(t, u, "CPU growing", func(s runtime.UsageSample) bool { return s.CPU >= first.CPU+50*time.Millisecond })
	_, end := stop()
	if end.Running || end.CPU < first.CPU+50*time.Millisecond || end.Memory <= 0 {
		t.Fatalf("after the run: %+v", end)
	}
	// A spinning guest cannot use more CPU than the time it ran on one thread.
	if wall := end.Time.Sub(end.StartTime); end.CPU > wall {
		t.Fatalf("CPU %s exceeds wall time %s of a single-threaded guest", end.CPU, wall)
	}
}

// TestUsageMemoryGrownInWasm: a guest that grows its memory and then loops
// without ever calling the host is seen through the epoch callback.
func TestUsageMemoryGrownInWasm(t *testing.T) {
	wasm, err := wasmtime.Wat2Wasm(`(module
		(memory (export "memory") 1)
		(func (export "_start")
			(drop (memory.grow (i32.const 512)))
			(loop $spin (br $spin))))`)
	if err != nil {
		t.Fatal(err)
	}
	e := newEngine(t, "")
	p, err := e.Load(context.Background(), wasm, "")
	if err != nil {
		t.Fatal(err)
	}
	const want = 513 << 16 // pages of 64 KiB
	u, stop := startUsage(t, p, runtime.Spec{})
	waitUsage(t, u, "memory of 513 pages", func(s runtime.UsageSample) bool { return s.Memory == want && s.CPU > 0 })
	if _, end := stop(); end.Memory != want || end.Running {
		t.Fatalf("after the run: %+v", end)
	}
}

func TestUsageComponent(t *testing.T) {
	e := newEngine(t, "")
	p, err := e.LoadFile(context.Background(), componentWasm(t))
	if err != nil {
		t.Fatal(err)
	}
	u, stop := startUsage(t, p, runtime.Spec{Args: []string{"spin"}})
	s := waitUsage(t, u, "component CPU > 0", func(s runtime.UsageSample) bool { return s.CPU > 0 })
	if s.Memory != -1 {
		t.Fatalf("component memory %d, want -1 (unknown)", s.Memory)
	}
	if _, end := stop(); end.Running || end.CPU < s.CPU {
		t.Fatalf("after the run: %+v", end)
	}
}

func TestUsageNil(t *testing.T) {
	// Without a Usage nothing is tracked and runs behave as before.
	if out := run(t, "alloc", "1Mi"); out.res.Reason != runtime.ReasonCompleted {
		t.Fatalf("got %+v", out.res)
	}
	var u runtime.Usage
	if s := u.Sample(); s.Running || s.CPU != 0 || s.Memory != 0 || !s.StartTime.IsZero() {
		t.Fatalf("zero Usage: %+v", s)
	}
}
