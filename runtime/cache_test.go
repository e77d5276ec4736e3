package runtime_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/wasilet/wasilet/runtime"
)

func readTestprog(t testing.TB) ([]byte, string) {
	t.Helper()
	wasm, err := os.ReadFile(testprogWasm)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(wasm)
	return wasm, hex.EncodeToString(sum[:])
}

// mustLoad loads wasm and waits for its artifact to be written.
func mustLoad(t testing.TB, e *runtime.Engine, wasm []byte) *runtime.Program {
	t.Helper()
	p, err := e.Load(context.Background(), wasm, "")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	runtime.WaitCacheWritesForTest(e)
	return p
}

func wantStats(t testing.TB, e *runtime.Engine, want runtime.Stats) {
	t.Helper()
	if got := e.Stats(); got != want {
		t.Fatalf("stats %+v, want %+v", got, want)
	}
}

func TestCacheMemoryAndDisk(t *testing.T) {
	wasm, key := readTestprog(t)
	dir := t.TempDir()

	e1 := newEngine(t, dir)
	p1 := mustLoad(t, e1, wasm)
	wantStats(t, e1, runtime.Stats{Compiles: 1})
	if p1.Kind() != runtime.KindModule || p1.Digest() != "sha256:"+key {
		t.Fatalf("program %v %s", p1.Kind(), p1.Digest())
	}
	path := e1.ArtifactPath(key, runtime.KindModule)
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("artifact not written: %v", err)
	}
	// Second load in the same engine: memory, even when the digest is given.
	p2, err := e1.Load(context.Background(), wasm, "sha256:"+key)
	if err != nil {
		t.Fatal(err)
	}
	if p2 != p1 {
		t.Fatal("second load returned another program")
	}
	wantStats(t, e1, runtime.Stats{Compiles: 1, MemoryHits: 1})

	// A new engine (a restarted node) finds the artifact on disk.
	e2 := newEngine(t, dir)
	p3 := mustLoad(t, e2, wasm)
	wantStats(t, e2, runtime.Stats{DiskHits: 1})
	if out := runSpec(t, p3, runtime.Spec{Args: []string{"hello"}}); out.stdout != "Hello, world!\n" {
		t.Fatalf("deserialized program: %+v %q", out.res, out.stdout)
	}
}

func TestCacheCorruptArtifactsRecompiled(t *testing.T) {
	wasm, key := readTestprog(t)
	dir := t.TempDir()
	seed := newEngine(t, dir)
	mustLoad(t, seed, wasm)
	path := seed.ArtifactPath(key, runtime.KindModule)
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}

	// A valid wasilet header around a payload wasmtime must refuse.
	badPayload := append([]byte(nil), good...)
	for i := len(good) / 2; i < len(good)/2+64; i++ {
		badPayload[i] ^= 0xff
	}

	cases := map[string][]byte{
		"empty":           {},
		"truncated":       good[:len(good)/2],
		"trailer only":    good[len(good)-24:],
		"garbage":         []byte("this is not a compiled module at all"),
		"flipped payload": badPayload,
	}
	for name, content := range cases {
		t.Run(name, func(t *testing.T) {
			if err := os.WriteFile(path, content, 0o644); err != nil {
				t.Fatal(err)
			}
			e := newEngine(t, dir)
			p := mustLoad(t, e, wasm)
			wantStats(t, e, runtime.Stats{Discarded: 1, Compiles: 1})
			if out := runSpec(t, p, runtime.Spec{Args: []string{"exit", "42"}}); out.res.ExitCode != 42 {
				t.Fatalf("recompiled program: %+v", out.res)
			}
			// The rewritten artifact is good again.
			e2 := newEngine(t, dir)
			mustLoad(t, e2, wasm)
			wantStats(t, e2, runtime.Stats{DiskHits: 1})
		})
	}
}

func TestCacheWasmtimeRejectsArtifact(t *testing.T) {
	// An artifact with a correct wasilet header and checksum whose payload
	// wasmtime refuses (as after a CPU or wasmtime change) is discarded too.
	wasm, key := readTestprog(t)
	dir := t.TempDir()
	e := newEngine(t, dir)
	path := e.ArtifactPath(key, runtime.KindModule)
	if err := runtime.WriteArtifactForTest(path, []byte("\x7fELF not really")); err != nil {
		t.Fatal(err)
	}
	p := mustLoad(t, e, wasm)
	wantStats(t, e, runtime.Stats{Discarded: 1, Compiles: 1})
	if out := runSpec(t, p, runtime.Spec{Args: []string{"hello"}}); out.res.Reason != runtime.ReasonCompleted {
		t.Fatalf("got %+v", out.res)
	}
}

func TestConcurrentLoadsCompileOnce(t *testing.T) {
	wasm, _ := readTestprog(t)
	e := newEngine(t, t.TempDir())
	var wg sync.WaitGroup
	progs := make([]*runtime.Program, 8)
	for i := range progs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, err := e.Load(context.Background(), wasm, "")
			if err != nil {
				t.Error(err)
			}
			progs[i] = p
		}()
	}
	wg.Wait()
	for _, p := range progs[1:] {
		if p != progs[0] {
			t.Fatal("concurrent loads returned different programs")
		}
	}
	wantStats(t, e, runtime.Stats{Compiles: 1, MemoryHits: 7})
}

func TestStoreLayout(t *testing.T) {
	// NewEngine refuses to start if wasmtime-go's Store no longer begins with
	// its C pointer (see interrupt.go); make that failure loud here too.
	if err := runtime.CheckStoreLayoutForTest(); err != nil {
		t.Fatal(err)
	}
}

func TestPruneCache(t *testing.T) {
	wasm, key := readTestprog(t)
	dir := t.TempDir()
	e := newEngine(t, dir)
	mustLoad(t, e, wasm)
	old := filepath.Join(dir, "0123456789abcdef")
	foreign := filepath.Join(dir, "not-ours")
	staleTmp := filepath.Join(dir, e.Fingerprint(), ".tmp-123")
	freshTmp := filepath.Join(dir, e.Fingerprint(), ".tmp-456")
	for _, d := range []string{old, foreign} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{staleTmp, freshTmp} {
		os.WriteFile(f, []byte("partial"), 0o644)
	}
	long := time.Now().Add(-2 * time.Hour)
	os.Chtimes(staleTmp, long, long)
	n, err := e.PruneCache()
	if err != nil || n != 2 {
		t.Fatalf("PruneCache = %d, %v; want 2", n, err)
	}
	for path, want := range map[string]bool{
		old: false, staleTmp: false, foreign: true, freshTmp: true,
		e.ArtifactPath(key, runtime.KindModule): true,
	} {
		if _, err := os.Stat(path); (err == nil) != want {
			t.Errorf("%s: exists=%v, want %v", path, err == nil, want)
		}
	}
}

func TestForget(t *testing.T) {
	wasm, key := readTestprog(t)
	e := newEngine(t, t.TempDir())
	p := mustLoad(t, e, wasm)
	if !e.Forget("sha256:"+key) || e.Forget("sha256:"+key) {
		t.Fatal("Forget should report true once")
	}
	// The forgotten program still runs; the next load comes from disk.
	if out := runSpec(t, p, runtime.Spec{Args: []string{"hello"}}); out.res.Reason != runtime.ReasonCompleted {
		t.Fatalf("forgotten program: %+v", out.res)
	}
	mustLoad(t, e, wasm)
	wantStats(t, e, runtime.Stats{Compiles: 1, DiskHits: 1})
}

// A tiered engine starts a module no cache has on its quick compile,
// compiles it fully in the background, writes the artifact and serves the
// optimized program from then on; the baseline program keeps working.
func TestTieredLoad(t *testing.T) {
	wasm, key := readTestprog(t)
	dir := t.TempDir()
	e, err := runtime.NewEngine(runtime.Options{CacheDir: dir, Tiered: true})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	base := mustLoad(t, e, wasm)
	if !base.Baseline() {
		t.Fatalf("first load is not baseline code; stats %+v", e.Stats())
	}
	runtime.WaitBackgroundForTest(e)
	wantStats(t, e, runtime.Stats{Compiles: 1, BaselineCompiles: 1})
	if _, err := os.Stat(e.ArtifactPath(key, runtime.KindModule)); err != nil {
		t.Fatalf("the optimizing compile wrote no artifact: %v", err)
	}
	opt := mustLoad(t, e, wasm)
	if opt.Baseline() || opt == base {
		t.Fatalf("second load: baseline %v, same program %v", opt.Baseline(), opt == base)
	}
	wantStats(t, e, runtime.Stats{Compiles: 1, BaselineCompiles: 1, MemoryHits: 1})
	for _, p := range []*runtime.Program{base, opt} {
		if out := runSpec(t, p, runtime.Spec{Args: []string{"hello"}}); out.stdout != "Hello, world!\n" {
			t.Fatalf("baseline %v: %+v %q %q", p.Baseline(), out.res, out.stdout, out.stderr)
		}
	}

	// Another tiered engine on the same cache: the artifact, no compile.
	e2, err := runtime.NewEngine(runtime.Options{CacheDir: dir, Tiered: true})
	if err != nil {
		t.Fatal(err)
	}
	defer e2.Close()
	if p := mustLoad(t, e2, wasm); p.Baseline() {
		t.Fatal("a cached module was loaded as baseline code")
	}
	wantStats(t, e2, runtime.Stats{DiskHits: 1})

	// Close while the optimizing compile runs: it waits for it, and the
	// compile frees what it made.
	e3, err := runtime.NewEngine(runtime.Options{Tiered: true})
	if err != nil {
		t.Fatal(err)
	}
	if p := mustLoad(t, e3, wasm); !p.Baseline() {
		t.Fatal("first load of a cacheless tiered engine is not baseline code")
	}
	if err := e3.Close(); err != nil {
		t.Fatal(err)
	}
}

// WasmtimeVersion (in the cache fingerprint) is the wasmtime-go version
// go.mod pins.
func TestWasmtimeVersion(t *testing.T) {
	mod, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\s*github\.com/bytecodealliance/wasmtime-go/v\d+ v(\S+)`).FindSubmatch(mod)
	if m == nil {
		t.Fatal("go.mod requires no github.com/bytecodealliance/wasmtime-go")
	}
	if got := string(m[1]); got != runtime.WasmtimeVersion {
		t.Fatalf("go.mod pins wasmtime-go %s, runtime.WasmtimeVersion is %s: update the constant", got, runtime.WasmtimeVersion)
	}
}
