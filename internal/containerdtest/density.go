package containerdtest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"github.com/wasilet/wasilet/internal/nodetest"
	"sync"
	"time"
)

// DensityOptions configure Density.
type DensityOptions struct {
	// Pods is how many sleeping pods to run (default 100).
	Pods int
	// Settle is the wait after the last pod started, before measuring
	// (default 2 s).
	Settle time.Duration
	// Window is the idle-CPU window (default 10 s).
	Window time.Duration
	// Parallel is how many pods start at a time while filling up (default
	// 4); their start is not measured.
	Parallel int
	// Keep leaves the pods running when Density returns (removed at the
	// end of the test); by default they are removed.
	Keep bool
}

// Usage is what one group of processes uses.
type Usage struct {
	Processes int
	RSS       int64 // bytes, sum of VmRSS (shared pages count once per process)
	PSS       int64 // bytes, sum of Pss (shared pages split between processes)
	Threads   int
}

func (u *Usage) add(p proc) {
	u.Processes++
	u.RSS += p.rss
	u.PSS += p.pss
	u.Threads += p.threads
}

// DensityResult is the cost of running Pods sleeping pods.
type DensityResult struct {
	Pods       int
	Containerd Usage // the daemon
	Shims      Usage // containerd-shim-runc-v2 processes (one per pod)
	Containers Usage // the pods' processes (pause and workload)
	// IdleCPU is the CPU time of containerd and its shims over Window,
	// divided by Window: 0.01 is 1% of one core.
	IdleCPU float64
	Window  time.Duration
}

// Total is the sum of the three groups.
func (d DensityResult) Total() Usage { return sum(d.Containerd, d.Shims, d.Containers) }

// sum adds usages up.
func sum(us ...Usage) Usage {
	var t Usage
	for _, u := range us {
		t.Processes += u.Processes
		t.RSS += u.RSS
		t.PSS += u.PSS
		t.Threads += u.Threads
	}
	return t
}

// String is the result on one line.
func (d DensityResult) String() string {
	t := d.Total()
	return fmt.Sprintf("%d pods: RSS %.1f MiB (containerd %.1f, shims %.1f, containers %.1f), PSS %.1f MiB, %d processes, %d threads, idle CPU %.2f%% of a core over %s",
		d.Pods, mib(t.RSS), mib(d.Containerd.RSS), mib(d.Shims.RSS), mib(d.Containers.RSS), mib(t.PSS), t.Processes, t.Threads, 100*d.IdleCPU, d.Window)
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// Density runs Pods sleeping hello pods, lets them settle, then measures
// the memory and threads of containerd, its shims and the containers, and
// the CPU containerd and the shims use while idle over Window.
func (c *Containerd) Density(ctx context.Context, o DensityOptions) (DensityResult, error) {
	n := o.Pods
	if n <= 0 {
		n = 100
	}
	res := DensityResult{Pods: n, Window: orDefault(o.Window, 10*time.Second)}
	if err := c.PullImage(ctx, c.helloImage); err != nil {
		return res, err
	}
	var (
		mu   sync.Mutex
		ids  []string
		errs []error
		wg   sync.WaitGroup
		sem  = make(chan struct{}, cmp.Or(max(o.Parallel, 0), 4))
	)
	for range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			p, err := c.RunPod(ctx, PodOptions{Args: []string{"sleep"}})
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			ids = append(ids, p.SandboxID)
		}()
	}
	wg.Wait()
	if !o.Keep {
		defer func() {
			rctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			_ = c.removeSandboxes(rctx, ids)
		}()
	}
	if err := errors.Join(errs...); err != nil {
		return res, fmt.Errorf("start %d pods (%d started): %w", n, len(ids), err)
	}
	select {
	case <-ctx.Done():
		return res, ctx.Err()
	case <-time.After(orDefault(o.Settle, 2*time.Second)):
	}

	t := c.processes()
	if t.containerd == 0 {
		return res, errors.New("containerd is not running")
	}
	if len(t.shims) == 0 {
		return res, errors.New("no shim process found")
	}
	for _, g := range []struct {
		u    *Usage
		pids []int
	}{{&res.Containerd, []int{t.containerd}}, {&res.Shims, t.shims}, {&res.Containers, t.containers}} {
		for _, pid := range g.pids {
			if p, err := readProc(pid, true); err == nil {
				g.u.add(p)
			}
		}
	}

	shares, wall, err := nodetest.CPUShares(ctx, res.Window, append([]int{t.containerd}, t.shims...))
	if err != nil {
		return res, err
	}
	res.Window, res.IdleCPU = wall, shares[0]
	return res, nil
}
