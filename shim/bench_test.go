package shim_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wasilet/wasilet/internal/containerdtest"
	"github.com/wasilet/wasilet/shim"
)

// BenchmarkStartExit is container start → exit of a hello program with
// `ctr run --rm`, the same run for both: testprog.wasm `hello` through this
// shim, and the baseline's static Go hello binary through runc
// (containerd-shim-runc-v2). Each op is one whole ctr run (ctr's own start
// included, the same for both).
func BenchmarkStartExit(b *testing.B) {
	e := start(b)
	e.pull(b, e.module)
	e.pull(b, e.c.HelloImage())
	n := 0
	for _, tc := range []struct {
		name, runtime, ref string
		args               []string
		want               string
	}{
		{"wasilet", shim.RuntimeType, e.module, []string{"/testprog.wasm", "hello"}, "Hello, world!"},
		{"runc", "io.containerd.runc.v2", e.c.HelloImage(), []string{"/hello", "exit"}, containerdtest.HelloLine},
	} {
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				n++
				args := append([]string{"run", "--rm", "--runtime", tc.runtime, tc.ref, fmt.Sprintf("b%d", n)}, tc.args...)
				r := e.run(b, time.Minute, args...)
				if r.code != 0 || !strings.Contains(r.stdout, tc.want) {
					b.Fatalf("ctr run: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
				}
			}
		})
	}
}

// BenchmarkRSS runs N sleeping containers three ways and reports the RSS
// per container of what each way adds to the node (shims and container
// processes; containerd itself excluded): this shim with all N in one
// group (one shim process, as the pods of one sandbox or an explicit
// group), this shim with one shim per container (ctr without a group), and
// runc (one containerd-shim-runc-v2 and one process per container).
func BenchmarkRSS(b *testing.B) {
	const n = 20
	e := start(b)
	e.pull(b, e.module)
	e.pull(b, e.c.HelloImage())
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
				b.ReportMetric(float64(rss)/n/(1<<20), "MiB/container")
				b.ReportMetric(float64(procs), "processes")
				b.Logf("%s: %d containers: %d processes, RSS %.1f MiB in all, %.2f MiB per container",
					tc.name, n, procs, float64(rss)/(1<<20), float64(rss)/n/(1<<20))
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
