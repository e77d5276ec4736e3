package runtime_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/wasilet/wasilet/runtime"
)

// testprogWasm is handlers/testprog built for wasip1 by TestMain.
var testprogWasm string

// componentWasm finds the WASI p2 component build of testprog:
// WASILET_WASM_DIR/testprog.component.wasm, else the repository's
// bin/wasm/testprog.component.wasm (both made by hack/wasm.sh, `just wasm`).
// Missing, the test fails (skips under -short).
func componentWasm(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("WASILET_WASM_DIR")
	if dir == "" {
		dir = filepath.Join("..", "bin", "wasm")
	}
	path := filepath.Join(dir, "testprog.component.wasm")
	if _, err := os.Stat(path); err != nil {
		if testing.Short() {
			t.Skipf("no component build of testprog (%v); run hack/wasm.sh", err)
		}
		t.Fatalf("no component build of testprog: %v; run hack/wasm.sh (just wasm) or set WASILET_WASM_DIR", err)
	}
	return path
}

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "wasilet-runtime-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	testprogWasm = filepath.Join(dir, "testprog.wasm")
	cmd := exec.Command("go", "build", "-trimpath", "-o", testprogWasm, "github.com/wasilet/wasilet/handlers/testprog")
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build testprog for wasip1: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

func newEngine(t testing.TB, cacheDir string) *runtime.Engine {
	t.Helper()
	e, err := runtime.NewEngine(runtime.Options{CacheDir: cacheDir})
	if err != nil {
		t.Fatalf("NewEngine: %v", err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// onceProgram is a program loaded once per test binary by an engine of
// its own, shared by the tests that do not look at cache counters (as in
// the node: one engine, many runs).
type onceProgram struct {
	once sync.Once
	eng  *runtime.Engine
	prog *runtime.Program
	err  error
}

func (o *onceProgram) get(t testing.TB, opts runtime.Options, path string) *runtime.Program {
	t.Helper()
	o.once.Do(func() {
		o.eng, o.err = runtime.NewEngine(opts)
		if o.err == nil {
			o.prog, o.err = o.eng.LoadFile(context.Background(), path)
		}
	})
	if o.err != nil {
		t.Fatalf("load %s: %v", path, o.err)
	}
	return o.prog
}

var shared onceProgram

func testprog(t testing.TB) *runtime.Program {
	t.Helper()
	return shared.get(t, runtime.Options{}, testprogWasm)
}

type output struct {
	res            runtime.Result
	stdout, stderr string
}

func runSpec(t testing.TB, p *runtime.Program, spec runtime.Spec) output {
	t.Helper()
	var stdout, stderr bytes.Buffer
	spec.Stdout, spec.Stderr = &stdout, &stderr
	if spec.Name == "" {
		spec.Name = "testprog"
	}
	res, err := p.Run(context.Background(), spec)
	if err != nil {
		t.Fatalf("Run %v: %v", spec.Args, err)
	}
	return output{res, stdout.String(), stderr.String()}
}

func run(t testing.TB, args ...string) output {
	t.Helper()
	return runSpec(t, testprog(t), runtime.Spec{Args: args})
}
