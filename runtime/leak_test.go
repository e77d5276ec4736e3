package runtime_test

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wasilet/wasilet/runtime"
)

// TestNoLeakAcrossRuns: thousands of sequential runs (each a store, a WASI
// context, three pipes and their goroutines) keep descriptors and RSS flat.
func TestNoLeakAcrossRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	e := newEngine(t, "")
	wat := `(module
	  (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))
	  (memory (export "memory") 1)
	  (data (i32.const 16) "x\n")
	  (func (export "_start")
	    (i32.store (i32.const 0) (i32.const 16))
	    (i32.store (i32.const 4) (i32.const 2))
	    (drop (call $w (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))`
	p, err := e.Load(context.Background(), watModule(t, wat), "")
	if err != nil {
		t.Fatal(err)
	}
	run := func(n int) {
		for range n {
			var out strings.Builder
			res, err := p.Run(context.Background(), runtime.Spec{Stdout: &out, Stdin: strings.NewReader("in")})
			if err != nil || res.Reason != runtime.ReasonCompleted || out.String() != "x\n" {
				t.Fatalf("run: %+v %v %q", res, err, out.String())
			}
		}
	}
	run(300)
	fds, rss := settledFDs(t, 0), rssBytes(t)
	run(5000)
	now := settledFDs(t, fds+10)
	t.Logf("after 300 runs: %d fds, %d MiB RSS; after 5300: %d fds, %d MiB", fds, rss>>20, now, rssBytes(t)>>20)
	if now > fds+10 {
		t.Errorf("open descriptors grew from %d to %d over 5000 runs", fds, now)
	}
	if now := rssBytes(t); now > rss+96<<20 {
		t.Errorf("RSS grew from %d MiB to %d MiB over 5000 runs", rss>>20, now>>20)
	}
}

// settledFDs is the smallest count of open descriptors seen within 5 s,
// returning as soon as it is at most want: descriptors of the test binary's
// other goroutines (and pipes whose last close is still in flight) come and
// go, while a leak of one per run would stay in the thousands.
func settledFDs(t *testing.T, want int) int {
	least := openFDs(t)
	for deadline := time.Now().Add(5 * time.Second); least > want && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
		least = min(least, openFDs(t))
	}
	return least
}

func openFDs(t *testing.T) int {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}

func rssBytes(t *testing.T) int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b))
	pages, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return pages * int64(os.Getpagesize())
}
