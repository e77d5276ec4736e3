package shim_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wasilet/wasilet/internal/benchreport"
	"github.com/wasilet/wasilet/internal/containerdtest"
	"github.com/wasilet/wasilet/shim"
)

// BenchmarkStartExit is container start → exit of a hello program with
// `ctr run --rm`, the same run for both: testprog.wasm `hello` through this
// shim, and the baseline's static Go hello binary through runc
// (containerd-shim-runc-v2). Each sample is one whole ctr run (ctr's own
// start included, the same for both); runs alternate between the two.
func BenchmarkStartExit(b *testing.B) {
	e := start(b)
	e.pull(b, e.module)
	e.pull(b, e.c.HelloImage())
	runs := benchreport.Size("WASILET_BENCH_RUNS", 20, 2)
	cases := []struct {
		name, runtime, ref string
		args               []string
		want               string
	}{
		{"wasilet", shim.RuntimeType, e.module, []string{"/testprog.wasm", "hello"}, "Hello, world!"},
		{"runc", "io.containerd.runc.v2", e.c.HelloImage(), []string{"/hello", "exit"}, containerdtest.HelloLine},
	}
	took := make([][]time.Duration, len(cases))
	n := 0
	// runCase is one whole `ctr run --rm` of case i, checked, and its time.
	runCase := func(i int, timeout time.Duration) time.Duration {
		tc := cases[i]
		n++
		args := append([]string{"run", "--rm", "--runtime", tc.runtime, tc.ref, fmt.Sprintf("b%d", n)}, tc.args...)
		t0 := time.Now()
		r := e.run(b, timeout, args...)
		d := time.Since(t0)
		if r.code != 0 || !strings.Contains(r.stdout, tc.want) {
			b.Fatalf("ctr run %s: exit %d, stdout %q, stderr %q", tc.name, r.code, r.stdout, r.stderr)
		}
		return d
	}
	// One untimed run of each first: the shim's first run of testprog
	// compiles it into the compiled-code cache (a cold compile, which
	// Module start measures), and runc's first run warms its own caches.
	for i := range cases {
		runCase(i, 2*time.Minute)
	}
	for b.Loop() {
		for range runs {
			for i := range cases {
				took[i] = append(took[i], runCase(i, time.Minute))
			}
		}
	}
	b.ReportMetric(0, "ns/op")
	benchreport.Record(b, benchreport.Result{
		Group: "containerd shim", Metric: "`ctr run --rm` of a hello program: start → exit", Unit: "ms",
		Wasilet: benchreport.MsOf(took[0]), Baseline: benchreport.MsOf(took[1]), BaselineName: fmt.Sprintf("containerd %s + runc %s (containerd-shim-runc-v2, a static Go hello)", e.c.ContainerdVersion, e.c.RuncVersion),
		Versions: e.c.Versions(),
		Method:   "A private containerd with containerd-shim-wasilet-v1 on its PATH; each sample is one whole `ctr run --rm` (ctr's start included for both): testprog.wasm `hello` through the shim (a new shim process per run: ctr gives no sandbox to group by; its compiled code cached by an untimed first run) against the static hello binary through runc (also run once untimed first), alternating.",
	})
}

// BenchmarkRSS runs N sleeping containers three ways and records the RSS
// per container of what each way adds to the node (shims and container
// processes; containerd itself excluded): this shim with all N in one
// group (one shim process, as the pods of one sandbox or an explicit
// group), this shim with one shim per container (ctr without a group), and
// runc (one containerd-shim-runc-v2 and one process per container).
func BenchmarkRSS(b *testing.B) {
	n := benchreport.Size("WASILET_BENCH_SHIM_CONTAINERS", 20, 3)
	e := start(b)
	e.pull(b, e.module)
	e.pull(b, e.c.HelloImage())
	perContainer := map[string]float64{}
	for _, tc := range []struct {
		name, runtime, ref string
		opts, args         []string
	}{
		{"wasilet-one-shim", shim.RuntimeType, e.module, []string{"--annotation", shim.GroupAnnotation + "=bench"}, []string{"/testprog.wasm", "sleep", "1h"}},
		{"wasilet-shim-per-container", shim.RuntimeType, e.module, nil, []string{"/testprog.wasm", "sleep", "1h"}},
		{"runc", "io.containerd.runc.v2", e.c.HelloImage(), nil, []string{"/hello", "sleep"}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				var ids []string
				for i := range n {
					id := fmt.Sprintf("%s-%d", tc.name, i)
					args := append([]string{"run", "-d", "--null-io", "--runtime", tc.runtime}, tc.opts...)
					args = append(append(args, tc.ref, id), tc.args...)
					if r := e.run(b, time.Minute, args...); r.code != 0 {
						b.Fatalf("ctr run -d: exit %d: %s", r.code, r.stderr)
					}
					ids = append(ids, id)
				}
				time.Sleep(time.Second) // let them settle
				rss, procs := shimTreeRSS(b, e)
				perContainer[tc.name] = float64(rss) / float64(n) / (1 << 20)
				b.ReportMetric(perContainer[tc.name], "MiB/container")
				b.ReportMetric(float64(procs), "processes")
				b.Logf("%s: %d containers: %d processes, RSS %.1f MiB in all, %.2f MiB per container",
					tc.name, n, procs, float64(rss)/(1<<20), perContainer[tc.name])
				for _, id := range ids {
					e.run(b, time.Minute, "task", "kill", "--signal", "SIGKILL", id)
				}
				for _, id := range ids {
					for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
						if r := e.run(b, time.Minute, "task", "delete", id); r.code == 0 || strings.Contains(r.stderr, "not found") {
							break
						}
					}
					e.run(b, time.Minute, "container", "delete", id)
				}
			}
		})
	}
	method := fmt.Sprintf("%d sleeping containers started with `ctr run -d`; the VmRSS of every shim process and its descendants (the containers), summed and divided by %d; containerd's own not counted.", n, n)
	one, per, runc := perContainer["wasilet-one-shim"], perContainer["wasilet-shim-per-container"], perContainer["runc"]
	benchreport.Record(b, benchreport.Result{
		Group: "containerd shim", Metric: "RSS per sleeping container, one wasilet shim for the group", Unit: "MiB",
		Wasilet: []float64{one}, Baseline: []float64{runc}, BaselineName: fmt.Sprintf("containerd %s + runc %s (a shim and a process per container)", e.c.ContainerdVersion, e.c.RuncVersion),
		Versions: e.c.Versions(), Method: method,
	})
	benchreport.Record(b, benchreport.Result{
		Group: "containerd shim", Metric: "RSS per sleeping container: one shim for the group vs one wasilet shim per container", Unit: "MiB",
		Wasilet: []float64{one}, Baseline: []float64{per}, BaselineName: "containerd-shim-wasilet-v1, one shim per container",
		Method: method,
	})
}

// shimTreeRSS sums the RSS of every shim process (wasilet's and runc's)
// and their descendants (the containers).
func shimTreeRSS(tb testing.TB, e *env) (rss int64, procs int) {
	tb.Helper()
	shims := map[string]bool{filepath.Join(e.shimBin, shim.BinaryName): true}
	if p, err := filepath.EvalSymlinks(filepath.Join(os.Getenv("WASILET_TOOLS_DIR"), "containerd-shim-runc-v2")); err == nil {
		shims[p] = true
	}
	parent := map[int]int{}
	in := map[int]bool{}
	ents, _ := os.ReadDir("/proc")
	for _, ent := range ents {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil {
			continue
		}
		st, err := os.ReadFile(filepath.Join("/proc", ent.Name(), "stat"))
		if err != nil {
			continue
		}
		f := strings.Fields(string(st[strings.LastIndexByte(string(st), ')')+1:]))
		if len(f) > 2 {
			parent[pid], _ = strconv.Atoi(f[1])
		}
		if exe, err := os.Readlink(filepath.Join("/proc", ent.Name(), "exe")); err == nil && shims[exe] {
			in[pid] = true
		}
	}
	for changed := true; changed; {
		changed = false
		for pid, pp := range parent {
			if !in[pid] && in[pp] {
				in[pid], changed = true, true
			}
		}
	}
	for pid := range in {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
				kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
				rss += kb << 10
				procs++
			}
		}
	}
	return rss, procs
}
