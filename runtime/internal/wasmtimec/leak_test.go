package wasmtimec

import (
	"bufio"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
)

// rssBytes reads VmRSS from /proc/self/status.
func rssBytes(t *testing.T) int64 {
	t.Helper()
	debug.FreeOSMemory()
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmRSS in /proc/self/status")
	return 0
}

// TestRSSFlat instantiates and runs the test program 10,000 times in a row,
// with every kind of WASI setting and outcome, and checks that the resident
// set stays flat: a leaked store, instance, linker, WASI context, error or
// string would add up to far more than the bound.
func TestRSSFlat(t *testing.T) {
	const runs = 10000
	const bound = 100 << 20
	c := testprog(t)
	dir := t.TempDir()
	data := t.TempDir()
	cfg := RunConfig{
		Args:     args("echo hi ; env A ; write /data/f x ; read /data/f"),
		Env:      []string{"A=1", "B=2"},
		Preopens: []Preopen{{HostPath: data, GuestPath: "/data"}, {HostPath: dir, GuestPath: "/ro", ReadOnly: true}},
		Stdout:   filepath.Join(dir, "out"),
		Stderr:   filepath.Join(dir, "err"),
	}
	trap := compileTestdata(t, "trap.wat")
	missing := compileTestdata(t, "missing-import.wat")
	one := func(i int) {
		switch i % 100 {
		case 0: // a trap: error and message freed
			if res, err := trap.Run(t.Context(), RunConfig{}); err != nil || res.Outcome != Trapped {
				t.Fatalf("run %d: %+v %v", i, res, err)
			}
		case 1: // an instantiation failure
			if _, err := missing.Run(t.Context(), RunConfig{}); err == nil {
				t.Fatalf("run %d: missing import instantiated", i)
			}
		default:
			if res, err := c.Run(t.Context(), cfg); err != nil || res.ExitCode != 0 {
				t.Fatalf("run %d: %+v %v", i, res, err)
			}
		}
	}
	for i := 0; i < 500; i++ { // warm up allocator pools and caches
		one(i)
	}
	before := rssBytes(t)
	for i := 0; i < runs; i++ {
		one(i)
	}
	after := rssBytes(t)
	t.Logf("RSS before %d MiB, after %d runs %d MiB (growth %d KiB)", before>>20, runs, after>>20, (after-before)>>10)
	if after-before > bound {
		t.Errorf("RSS grew by %d MiB over %d runs (bound %d MiB): a handle leaks", (after-before)>>20, runs, bound>>20)
	}
	if b, _ := os.ReadFile(cfg.Stdout); string(b) != "hi\nA=1\nx" {
		t.Errorf("last run's stdout %q", b)
	}
}

// TestLoadCloseFlat deserializes and closes the test program many times:
// component, linker and export index must all be freed.
func TestLoadCloseFlat(t *testing.T) {
	const loads = 300
	const bound = 100 << 20
	data, err := testprog(t).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	load := func() {
		c, err := Deserialize(testEngine(t), data)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Run(t.Context(), RunConfig{Args: args("hello")}); err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	for i := 0; i < 20; i++ {
		load()
	}
	before := rssBytes(t)
	for i := 0; i < loads; i++ {
		load()
	}
	after := rssBytes(t)
	t.Logf("RSS before %d MiB, after %d loads %d MiB (growth %d KiB)", before>>20, loads, after>>20, (after-before)>>10)
	if after-before > bound {
		t.Errorf("RSS grew by %d MiB over %d loads (bound %d MiB): a handle leaks", (after-before)>>20, loads, bound>>20)
	}
}
