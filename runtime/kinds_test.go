package runtime_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/containerd/errdefs"

	"github.com/wasilet/wasilet/runtime"
)

// The same scenarios through both kinds of program: the core module and the
// component build of testprog, loaded and run through the same API.

var component, baseline, uninterruptible, uninterruptibleComponent onceProgram

func testprogComponent(t testing.TB) *runtime.Program {
	t.Helper()
	return component.get(t, runtime.Options{}, componentWasm(t))
}

// testprogBaseline is testprog as a tiered engine first loads it: its quick
// compile. The program stays that code for as long as it is held, whatever
// the background compile does.
func testprogBaseline(t testing.TB) *runtime.Program {
	t.Helper()
	p := baseline.get(t, runtime.Options{Tiered: true}, testprogWasm)
	if !p.Baseline() {
		t.Fatalf("a tiered engine's first load of testprog is not baseline code (stats %+v)", baseline.eng.Stats())
	}
	return p
}

// forKinds runs f on every kind of program, those of an uninterruptible
// engine too.
func forKinds(t *testing.T, f func(t *testing.T, p *runtime.Program)) {
	forStoppableKinds(t, f)
	opts := runtime.Options{Uninterruptible: true}
	t.Run("module-uninterruptible", func(t *testing.T) { f(t, uninterruptible.get(t, opts, testprogWasm)) })
	t.Run("component-uninterruptible", func(t *testing.T) { f(t, uninterruptibleComponent.get(t, opts, componentWasm(t))) })
}

// forStoppableKinds runs f on the kinds of program whose running guest can
// be stopped: all but an uninterruptible engine's.
func forStoppableKinds(t *testing.T, f func(t *testing.T, p *runtime.Program)) {
	t.Run("module", func(t *testing.T) { f(t, testprog(t)) })
	t.Run("module-baseline", func(t *testing.T) { f(t, testprogBaseline(t)) })
	t.Run("component", func(t *testing.T) {
		p := testprogComponent(t)
		if p.Kind() != runtime.KindComponent {
			t.Fatalf("kind %v", p.Kind())
		}
		f(t, p)
	})
}

func TestKindsHelloArgsEnv(t *testing.T) {
	forKinds(t, func(t *testing.T, p *runtime.Program) {
		out := runSpec(t, p, runtime.Spec{
			Name: "ctr",
			Args: []string{"hello", ";", "args", ";", "env", "A"},
			Env:  []string{"A=1", "A=2"},
		})
		want := "Hello, world!\nctr\nhello\n;\nargs\n;\nenv\nA\nA=2\n"
		if out.res.Reason != runtime.ReasonCompleted || out.stdout != want {
			t.Fatalf("got %+v stdout %q stderr %q", out.res, out.stdout, out.stderr)
		}
	})
}

func TestKindsExitCodes(t *testing.T) {
	forKinds(t, func(t *testing.T, p *runtime.Program) {
		for _, code := range []int{0, 1, 42} {
			out := runSpec(t, p, runtime.Spec{Args: []string{"exit", itoa(code)}})
			want := code
			if p.Kind() == runtime.KindComponent && code > 1 {
				// WASI 0.2 exit carries only ok/err (see wasmtimec's doc).
				want = 1
			}
			if out.res.ExitCode != want {
				t.Errorf("exit %d: got %+v", code, out.res)
			}
		}
	})
}

func TestKindsFiles(t *testing.T) {
	forKinds(t, func(t *testing.T, p *runtime.Program) {
		rw, ro, outside := t.TempDir(), t.TempDir(), t.TempDir()
		os.WriteFile(filepath.Join(ro, "in"), []byte("ro"), 0o644)
		os.WriteFile(filepath.Join(outside, "secret"), []byte("s"), 0o644)
		os.Symlink(outside, filepath.Join(rw, "link"))
		out := runSpec(t, p, runtime.Spec{
			Args: []string{
				"write", "/rw/f", "data", ";", "read", "/rw/f", ";", "read", "/ro/in",
				";", "cannot-write", "/ro/in", ";", "cannot-write", "/ro/new",
				";", "cannot-write", "/rw/../x", ";", "cannot-read", "/rw/link/secret",
				";", "cannot-write", outside + "/x",
			},
			Mounts: []runtime.Mount{{HostPath: rw, GuestPath: "/rw"}, {HostPath: ro, GuestPath: "/ro", ReadOnly: true}},
		})
		if out.res.Reason != runtime.ReasonCompleted || !strings.HasPrefix(out.stdout, "dataro") || strings.Count(out.stdout, "refused") != 5 {
			t.Fatalf("got %+v stdout %q stderr %q", out.res, out.stdout, out.stderr)
		}
		if b, _ := os.ReadFile(filepath.Join(rw, "f")); string(b) != "data" {
			t.Fatalf("f: %q", b)
		}
		if _, err := os.Stat(filepath.Join(outside, "x")); err == nil {
			t.Fatal("wrote outside the preopens")
		}
	})
}

func TestKindsStdin(t *testing.T) {
	forKinds(t, func(t *testing.T, p *runtime.Program) {
		out := runSpec(t, p, runtime.Spec{Args: []string{"cat"}, Stdin: strings.NewReader("abc\n")})
		if out.stdout != "abc\n" {
			t.Fatalf("got %+v stdout %q stderr %q", out.res, out.stdout, out.stderr)
		}
	})
}

func TestKindsStopped(t *testing.T) {
	forStoppableKinds(t, func(t *testing.T, p *runtime.Program) {
		res := waitRun(t, context.Background(), p, runtime.Spec{Args: []string{"spin"}, Timeout: 200 * time.Millisecond})
		if res.Reason != runtime.ReasonKilled || res.ExitCode != 137 {
			t.Fatalf("spin: got %+v", res)
		}
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(200*time.Millisecond, cancel)
		res = waitRun(t, ctx, p, runtime.Spec{Args: []string{"tick", "10ms"}})
		if res.Reason != runtime.ReasonKilled || res.ExitCode != 137 {
			t.Fatalf("tick: got %+v", res)
		}
		ctx, cancel = context.WithCancel(context.Background())
		time.AfterFunc(200*time.Millisecond, cancel)
		res = waitRun(t, ctx, p, runtime.Spec{Args: []string{"sleep", "1h"}})
		if res.Reason != runtime.ReasonKilled || res.ExitCode != 137 {
			t.Fatalf("sleep: got %+v", res)
		}
	})
}

func TestKindsOOM(t *testing.T) {
	forKinds(t, func(t *testing.T, p *runtime.Program) {
		if p.Kind() == runtime.KindComponent {
			// Go components grow their heap (handlers/internal/wasmalloc).
			out := runSpec(t, p, runtime.Spec{Args: []string{"alloc", "100Mi"}})
			if out.res.Reason != runtime.ReasonCompleted {
				t.Fatalf("without a limit: got %+v stderr %q", out.res, out.stderr)
			}
			// Under a limit (below), Go's "fatal error: out of memory" is
			// followed by every goroutine's traceback and an abort (a trap):
			// still OOMKilled, since the whole stderr stream is watched.
		}
		out := runSpec(t, p, runtime.Spec{Args: []string{"alloc", "100Mi"}, MemoryLimit: 64 << 20})
		if out.res.Reason != runtime.ReasonOOMKilled || out.res.ExitCode != 137 {
			t.Fatalf("got %+v stderr %q", out.res, out.stderr)
		}
	})
}

// TestInitialMemoryOverLimit: a program whose initial memory alone exceeds
// MemoryLimit is OOMKilled, for both kinds.
func TestInitialMemoryOverLimit(t *testing.T) {
	e := newEngine(t, "")
	for name, wat := range map[string]string{
		"module": `(module (memory (export "memory") 2000) (func (export "_start")))`,
		"component": `(component
		  (core module $m (memory (export "memory") 2000) (func (export "run") (result i32) i32.const 0))
		  (core instance $i (instantiate $m))
		  (func $run (result (result)) (canon lift (core func $i "run")))
		  (instance $ri (export "run" (func $run)))
		  (export "wasi:cli/run@0.2.0" (instance $ri)))`,
	} {
		t.Run(name, func(t *testing.T) {
			p, err := e.Load(context.Background(), watModule(t, wat), "")
			if err != nil {
				t.Fatal(err)
			}
			out := runSpec(t, p, runtime.Spec{MemoryLimit: 64 << 20})
			if out.res.Reason != runtime.ReasonOOMKilled || out.res.ExitCode != 137 {
				t.Fatalf("got %+v", out.res)
			}
			if out = runSpec(t, p, runtime.Spec{}); out.res.Reason != runtime.ReasonCompleted {
				t.Fatalf("without a limit: got %+v", out.res)
			}
		})
	}
}

func TestComponentCache(t *testing.T) {
	wasm, err := os.ReadFile(componentWasm(t))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	e1 := newEngine(t, dir)
	mustLoad(t, e1, wasm)
	mustLoad(t, e1, wasm)
	wantStats(t, e1, runtime.Stats{Compiles: 1, MemoryHits: 1})
	e2 := newEngine(t, dir)
	p := mustLoad(t, e2, wasm)
	wantStats(t, e2, runtime.Stats{DiskHits: 1})
	if out := runSpec(t, p, runtime.Spec{Args: []string{"hello"}}); out.stdout != "Hello, world!\n" {
		t.Fatalf("deserialized component: %+v %q", out.res, out.stdout)
	}
	// A corrupted artifact is discarded and recompiled.
	matches, _ := filepath.Glob(filepath.Join(dir, "*", "*.component"))
	if len(matches) != 1 {
		t.Fatalf("artifacts: %v", matches)
	}
	// Replaced, not rewritten in place: e2 still maps the artifact, and
	// writers of the cache only ever rename over a file (see cache.go).
	b, _ := os.ReadFile(matches[0])
	if err := os.WriteFile(matches[0]+".new", b[:len(b)/3], 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(matches[0]+".new", matches[0]); err != nil {
		t.Fatal(err)
	}
	e3 := newEngine(t, dir)
	p = mustLoad(t, e3, wasm)
	wantStats(t, e3, runtime.Stats{Discarded: 1, Compiles: 1})
	if out := runSpec(t, p, runtime.Spec{Args: []string{"hello"}}); out.stdout != "Hello, world!\n" {
		t.Fatalf("recompiled component: %+v %q", out.res, out.stdout)
	}
}

func TestComponentBadInput(t *testing.T) {
	e := newEngine(t, "")
	ctx := context.Background()
	// A component header followed by garbage.
	if _, err := e.Load(ctx, []byte{0, 'a', 's', 'm', 0x0d, 0, 1, 0, 0xff, 0xff}, ""); err == nil {
		t.Fatal("corrupt component loaded")
	}
	// A component that is not a command (exports nothing).
	p, err := e.Load(ctx, watModule(t, `(component)`), "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Run(ctx, runtime.Spec{}); !errdefs.IsInvalidArgument(err) {
		t.Fatalf("non-command component: got %v", err)
	}
	// A component importing something the host does not provide.
	p, err = e.Load(ctx, watModule(t, `(component
	  (import "wasi:nope/missing@0.1.0" (instance (export "f" (func))))
	  (core module $m (func (export "run") (result i32) i32.const 0))
	  (core instance $i (instantiate $m))
	  (func $run (result (result)) (canon lift (core func $i "run")))
	  (instance $ri (export "run" (func $run)))
	  (export "wasi:cli/run@0.2.0" (instance $ri)))`), "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Run(ctx, runtime.Spec{}); err == nil || !strings.Contains(err.Error(), "wasi:nope/missing") {
		t.Fatalf("missing import: got %v", err)
	}
}

func TestProgramImports(t *testing.T) {
	cache := t.TempDir()
	wasm := watModule(t, `(component
	  (import "wasi:sockets/tcp@0.2.0" (instance))
	  (import "wasi:clocks/wall-clock@0.2.0" (instance)))`)
	want := []string{"wasi:sockets/tcp@0.2.0", "wasi:clocks/wall-clock@0.2.0"}
	// Compiled, then (a new engine on the same cache) deserialized.
	for _, from := range []string{"compiled", "cached"} {
		p, err := newEngine(t, cache).Load(context.Background(), wasm, "")
		if err != nil {
			t.Fatal(err)
		}
		got, err := p.Imports()
		if err != nil || !slices.Equal(got, want) {
			t.Fatalf("%s: imports %q, %v; want %q", from, got, err, want)
		}
	}
	mod, err := newEngine(t, "").Load(context.Background(), watModule(t, `(module)`), "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mod.Imports(); !errdefs.IsInvalidArgument(err) {
		t.Fatalf("core module: got %v, want an invalid-argument error", err)
	}
}

// TestKindsStoppedWithoutTicker: a stop does not wait for the engine's
// epoch ticker. With a ticker that would first tick after an hour, a
// spinning guest is still stopped by its timeout and by cancellation (the
// stop advances the epoch itself).
func TestKindsStoppedWithoutTicker(t *testing.T) {
	for _, c := range []struct {
		path   string
		tiered bool
	}{{testprogWasm, false}, {testprogWasm, true}, {componentWasm(t), false}} {
		// An engine per program: a tiered one's first load is baseline code.
		e, err := runtime.NewEngine(runtime.Options{EpochInterval: time.Hour, Tiered: c.tiered})
		if err != nil {
			t.Fatal(err)
		}
		defer e.Close()
		p, err := e.LoadFile(context.Background(), c.path)
		if err != nil {
			t.Fatal(err)
		}
		name := p.Kind().String()
		if p.Baseline() {
			name += "-baseline"
		}
		if p.Baseline() != c.tiered {
			t.Fatalf("%s: Baseline() = %v", name, p.Baseline())
		}
		t.Run(name, func(t *testing.T) {
			res := waitRun(t, context.Background(), p, runtime.Spec{Args: []string{"spin"}, Timeout: 200 * time.Millisecond})
			if res.Reason != runtime.ReasonKilled || res.ExitCode != 137 {
				t.Fatalf("spin with a timeout: got %+v", res)
			}
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(200*time.Millisecond, cancel)
			res = waitRun(t, ctx, p, runtime.Spec{Args: []string{"spin"}})
			if res.Reason != runtime.ReasonKilled || res.ExitCode != 137 {
				t.Fatalf("spin, cancelled: got %+v", res)
			}
		})
	}
}

// TestUninterruptible: an uninterruptible engine refuses a timeout, a
// cancelled run closes the guest's stdin and waits for the guest to end (a
// component's too, past componentDetachGrace), and its artifacts live under
// a fingerprint of their own, which PruneCache keeps beside the
// interruptible one.
func TestUninterruptible(t *testing.T) {
	dir := t.TempDir()
	e, err := runtime.NewEngine(runtime.Options{CacheDir: dir, Uninterruptible: true})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	for _, wasm := range []string{testprogWasm, componentWasm(t)} {
		p, err := e.LoadFile(context.Background(), wasm)
		if err != nil {
			t.Fatal(err)
		}
		t.Run(p.Kind().String(), func(t *testing.T) {
			if _, err := p.Run(context.Background(), runtime.Spec{Args: []string{"hello"}, Timeout: time.Second}); !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), "timeout") {
				t.Fatalf("run with a timeout: %v, want an invalid-argument error about the timeout", err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(200*time.Millisecond, cancel)
			args := []string{"cat", ";", "echo", "after"}
			if p.Kind() == runtime.KindComponent {
				// Longer than componentDetachGrace: not detached.
				args = []string{"cat", ";", "sleep", "300ms", ";", "echo", "after"}
			}
			var stdout strings.Builder
			res, err := p.Run(ctx, runtime.Spec{Args: args, Stdin: endlessStdin(t), Stdout: &stdout})
			if err != nil || stdout.String() != "after\n" {
				t.Fatalf("cancelled while reading stdin: got %+v (%v), stdout %q", res, err, stdout.String())
			}
		})
	}

	interruptible := newEngine(t, dir)
	if interruptible.Fingerprint() == e.Fingerprint() {
		t.Fatalf("both engines have fingerprint %s", e.Fingerprint())
	}
	if _, err := interruptible.LoadFile(context.Background(), testprogWasm); err != nil {
		t.Fatal(err)
	}
	runtime.WaitCacheWritesForTest(e)
	runtime.WaitCacheWritesForTest(interruptible)
	if n, err := interruptible.PruneCache(); err != nil || n != 0 {
		t.Fatalf("PruneCache removed %d (%v), want 0", n, err)
	}
	for _, fp := range []string{e.Fingerprint(), interruptible.Fingerprint()} {
		if ents, err := os.ReadDir(filepath.Join(dir, fp)); err != nil || len(ents) == 0 {
			t.Fatalf("cache dir %s: %d entries, %v", fp, len(ents), err)
		}
	}
	if st := interruptible.Stats(); st.Compiles != 1 || st.DiskHits != 0 {
		t.Fatalf("the interruptible engine used the other's artifact: %+v", st)
	}
}
