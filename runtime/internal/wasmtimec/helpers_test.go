package wasmtimec

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bytecodealliance/wasmtime-go/v39"
)

// testEngine is the engine of the tests: like the runtime's, it has epoch
// interruption on and a ticker.
var (
	engineOnce sync.Once
	engine     *wasmtime.Engine
)

func testEngine(t testing.TB) *wasmtime.Engine {
	t.Helper()
	engineOnce.Do(func() {
		cfg := wasmtime.NewConfig()
		cfg.SetEpochInterruption(true)
		engine = wasmtime.NewEngineWithConfig(cfg)
		go func() {
			for range time.Tick(10 * time.Millisecond) {
				engine.IncrementEpoch()
			}
		}()
	})
	return engine
}

// readTestdata reads testdata/name.
func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// compileTestdata compiles testdata/name and closes it at the end of the test.
func compileTestdata(t testing.TB, name string) *Component {
	t.Helper()
	c, err := Compile(testEngine(t), readTestdata(t, name))
	if err != nil {
		t.Fatalf("compile %s: %v", name, err)
	}
	t.Cleanup(c.Close)
	return c
}

// wasmDir is where hack/wasm.sh puts the test programs: $WASILET_WASM_DIR,
// else bin/wasm of this checkout.
func wasmDir(t testing.TB) string {
	t.Helper()
	if d := os.Getenv("WASILET_WASM_DIR"); d != "" {
		return d
	}
	return filepath.Join("..", "..", "..", "bin", "wasm")
}

var (
	testprogMu    sync.Mutex
	testprogCache *Component
)

// testprog returns the component build of handlers/testprog, compiled once
// per test binary. It fails (not skips) when the file is missing.
func testprog(t testing.TB) *Component {
	t.Helper()
	testprogMu.Lock()
	defer testprogMu.Unlock()
	if testprogCache != nil {
		return testprogCache
	}
	path := filepath.Join(wasmDir(t), "testprog.component.wasm")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("the component build of the test program is missing (%v): run hack/wasm.sh (just wasm) or set WASILET_WASM_DIR", err)
	}
	c, err := Compile(testEngine(t), b)
	if err != nil {
		t.Fatalf("compile %s: %v", path, err)
	}
	testprogCache = c
	return c
}

// output runs c with cfg, Stdout and Stderr going to files, and returns the
// result and both outputs.
func output(t testing.TB, c *Component, cfg RunConfig) (RunResult, string, string) {
	t.Helper()
	dir := t.TempDir()
	cfg.Stdout = filepath.Join(dir, "stdout")
	cfg.Stderr = filepath.Join(dir, "stderr")
	res, err := c.Run(context.Background(), cfg)
	if err != nil {
		t.Fatalf("run %q: %v", cfg.Args, err)
	}
	stdout, _ := os.ReadFile(cfg.Stdout)
	stderr, _ := os.ReadFile(cfg.Stderr)
	return res, string(stdout), string(stderr)
}

func args(s string) []string { return append([]string{"testprog"}, strings.Fields(s)...) }
