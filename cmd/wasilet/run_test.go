package main

import (
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wasilet/wasilet/internal/cluster"
)

// These tests drive the real binary: WASILET_BIN if set, else one built
// here, with handlers/testprog built for wasip1 (or WASILET_WASM_DIR's).

var (
	buildOnce         sync.Once
	builtBin, builtTP string
	buildErr          error
	buildDir          string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

func binaries(t testing.TB) (bin, testprog string) {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "wasilet-run-test-")
		if buildErr != nil {
			return
		}
		builtBin = os.Getenv("WASILET_BIN")
		if builtBin == "" {
			builtBin = filepath.Join(buildDir, "wasilet")
			out, err := exec.Command("go", "build", "-o", builtBin, ".").CombinedOutput()
			if err != nil {
				buildErr = errors.New("build wasilet: " + err.Error() + "\n" + string(out))
				return
			}
		}
		if dir := os.Getenv("WASILET_WASM_DIR"); dir != "" {
			builtTP = filepath.Join(dir, "testprog.wasm")
			return
		}
		builtTP = filepath.Join(buildDir, "testprog.wasm")
		cmd := exec.Command("go", "build", "-o", builtTP, "github.com/wasilet/wasilet/handlers/testprog")
		cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = errors.New("build testprog: " + err.Error() + "\n" + string(out))
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtBin, builtTP
}

// wasilet runs the binary and returns stdout, stderr and the exit code.
func wasilet(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	bin, _ := binaries(t)
	cmd := exec.Command(bin, args...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run %v: %v", args, err)
	}
	return stdout.String(), stderr.String(), code
}

func TestRunExitCodes(t *testing.T) {
	_, tp := binaries(t)
	cache := t.TempDir()
	for _, code := range []string{"0", "1", "42"} {
		_, stderr, got := wasilet(t, "run", "--cache-dir", cache, tp, "--", "exit", code)
		if strconv.Itoa(got) != code {
			t.Errorf("exit %s: wasilet exited %d (stderr %q)", code, got, stderr)
		}
	}
}

func TestRunArgsEnvDirs(t *testing.T) {
	_, tp := binaries(t)
	data, ro := t.TempDir(), t.TempDir()
	os.WriteFile(filepath.Join(ro, "in"), []byte("ro-content"), 0o644)
	stdout, stderr, code := wasilet(t, "run", "--cache-dir", "none",
		"--env", "GREETING=hi", "--dir", data+":/data", "--dir", ro+":/ro:ro", tp, "--",
		"args", ";", "env", "GREETING", ";", "write", "/data/out", "x", ";", "read", "/ro/in", ";", "cannot-write", "/ro/in")
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	want := "testprog.wasm\nargs\n;\nenv\nGREETING\n;\nwrite\n/data/out\nx\n;\nread\n/ro/in\n;\ncannot-write\n/ro/in\nGREETING=hi\nro-content"
	if !strings.HasPrefix(stdout, want) || !strings.Contains(stdout, "refused:") {
		t.Fatalf("stdout %q", stdout)
	}
	if b, _ := os.ReadFile(filepath.Join(data, "out")); string(b) != "x" {
		t.Fatalf("out: %q", b)
	}
}

func TestRunTimeoutAndMemory(t *testing.T) {
	_, tp := binaries(t)
	_, stderr, code := wasilet(t, "run", "--cache-dir", "none", "--timeout", "300ms", tp, "--", "spin")
	if code != 137 || !strings.Contains(stderr, "stopped after 300ms") {
		t.Fatalf("spin with --timeout: exit %d, stderr %q", code, stderr)
	}
	_, stderr, code = wasilet(t, "run", "--cache-dir", "none", "--memory", "64Mi", tp, "--", "alloc", "100Mi")
	if code != 137 || !strings.Contains(stderr, "OOMKilled") || !strings.Contains(stderr, "out of memory") {
		t.Fatalf("alloc past --memory: exit %d, stderr %q", code, stderr)
	}
}

func TestRunBadInput(t *testing.T) {
	for _, args := range [][]string{
		{"run", "/does/not/exist.wasm"},
		{"run", os.Args[0]}, // a file that is not wasm
		{"run", "--memory", "lots", "x.wasm"},
		{"run", "--dir", "a:b:rx", "x.wasm"},
	} {
		_, stderr, code := wasilet(t, args...)
		if code == 0 || !strings.HasPrefix(stderr, "wasilet: ") {
			t.Errorf("%v: exit %d, stderr %q", args, code, stderr)
		}
	}
}

// TestRunReference pushes testprog (module and component builds) to the
// pinned registry with `wasilet push` and runs it by reference.
func TestRunReference(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping a test that needs the registry binary")
	}
	_, tp := binaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	reg, err := cluster.StartRegistry(ctx, cluster.RegistryOptions{Dir: t.TempDir()})
	if err != nil {
		t.Fatalf("start registry: %v", err)
	}
	t.Cleanup(func() {
		if err := reg.Stop(); err != nil {
			t.Errorf("stop registry: %v", err)
		}
	})
	store, cache := t.TempDir(), t.TempDir()

	ref := reg.Addr + "/test/testprog:v1"
	if _, stderr, code := wasilet(t, "push", tp, ref); code != 0 {
		t.Fatalf("push: exit %d, stderr %q", code, stderr)
	}
	for i := range 2 { // the second run finds the image in the store
		stdout, stderr, code := wasilet(t, "run", "--store", store, "--cache-dir", cache, ref, "--", "args", ";", "exit", "42")
		if code != 42 || !strings.HasPrefix(stdout, "testprog\nargs\n") {
			t.Fatalf("run %d of %s: exit %d, stdout %q, stderr %q", i, ref, code, stdout, stderr)
		}
	}

	comp := filepath.Join(filepath.Dir(tp), "testprog.component.wasm")
	if _, err := os.Stat(comp); err != nil {
		comp = filepath.Join("..", "..", "bin", "wasm", "testprog.component.wasm")
	}
	if _, err := os.Stat(comp); err != nil {
		t.Fatalf("no component build of testprog (%v): run hack/wasm.sh or set WASILET_WASM_DIR", err)
	}
	cref := reg.Addr + "/test/testprog-component:v1"
	if _, stderr, code := wasilet(t, "push", comp, cref); code != 0 {
		t.Fatalf("push component: exit %d, stderr %q", code, stderr)
	}
	stdout, stderr, code := wasilet(t, "run", "--store", store, "--cache-dir", cache, cref, "--", "hello")
	if code != 0 || stdout != "Hello, world!\n" {
		t.Fatalf("run %s: exit %d, stdout %q, stderr %q", cref, code, stdout, stderr)
	}

	if _, stderr, code := wasilet(t, "run", "--store", store, reg.Addr+"/test/missing:v1"); code == 0 || !strings.Contains(stderr, "missing") {
		t.Fatalf("missing reference: exit %d, stderr %q", code, stderr)
	}
}

// TestRunInterrupted: SIGINT ends `wasilet run` with 130 and says so, both
// without --timeout (the guest compiled without epoch checks, the process
// exits) and with one (the guest is stopped through the engine).
func TestRunInterrupted(t *testing.T) {
	bin, tp := binaries(t)
	for _, flags := range [][]string{nil, {"--timeout", "1h"}} {
		t.Run(strings.Join(append([]string{"flags"}, flags...), " "), func(t *testing.T) {
			args := append([]string{"run", "--cache-dir", "none"}, flags...)
			cmd := exec.Command(bin, append(args, tp, "--", "echo", "up", ";", "sleep", "1h")...)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer cmd.Process.Kill()
			buf := make([]byte, 3)
			if _, err := io.ReadFull(stdout, buf); err != nil || string(buf) != "up\n" {
				t.Fatalf("guest did not start: %q %v", buf, err)
			}
			if err := cmd.Process.Signal(os.Interrupt); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case err := <-done:
				var ee *exec.ExitError
				if !errors.As(err, &ee) || ee.ExitCode() != 130 || !strings.Contains(stderr.String(), "wasilet: interrupted") {
					t.Fatalf("wait: %v, stderr %q; want exit 130 and wasilet: interrupted", err, stderr.String())
				}
			case <-time.After(60 * time.Second):
				t.Fatal("wasilet run did not stop within 60s of SIGINT")
			}
		})
	}
}

// TestRunEarly checks that `wasilet run FILE` runs the guest before the
// binary's Kubernetes libraries initialize (package early), and that what
// early declines still reaches the full command: help, and a flag error.
func TestRunEarly(t *testing.T) {
	bin, tp := binaries(t)
	heavy := "init k8s.io/client-go/kubernetes/scheme @"
	trace := func(args ...string) (string, string, int) {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "GODEBUG=inittrace=1")
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatalf("%v: %v", args, err)
		}
		return stdout.String(), stderr.String(), cmd.ProcessState.ExitCode()
	}
	cache := t.TempDir()
	stdout, stderr, code := trace("run", "--cache-dir", cache, "-e", "A=1", tp, "--argv0", "x", "--", "args", ";", "env", "A")
	if code != 0 || stdout != "x\nargs\n;\nenv\nA\nA=1\n" {
		t.Fatalf("run: exit %d, stdout %q", code, stdout)
	}
	if strings.Contains(stderr, heavy) {
		t.Errorf("run of a file initialized the Kubernetes client libraries first (%q in its init trace)", heavy)
	}
	// Nor the packages that sort before runtime/debug and path/filepath
	// (their initializers took half of a cached run's 14 ms while early
	// waited for those two: see package early).
	for _, p := range []string{"init go.opencensus.io/resource @", "init github.com/google/go-cmp/cmp @", "init k8s.io/apimachinery/pkg/version @"} {
		if strings.Contains(stderr, p) {
			t.Errorf("run of a file initialized %q first: something early imports waits for a package that sorts late", p)
		}
	}
	if !strings.Contains(stderr, "init github.com/wasilet/wasilet/runtime @") {
		t.Errorf("no init trace from the runtime package: %q", stderr)
	}
	// Declined: the full command (with the libraries) handles these.
	stdout, stderr, code = trace("run", "--help")
	if code != 0 || !strings.Contains(stdout, "wasilet run FILE|REF") || !strings.Contains(stderr, heavy) {
		t.Errorf("run --help: exit %d, stdout %q", code, stdout)
	}
	_, stderr, code = trace("run", "--no-such-flag", tp)
	if code != 1 || !strings.Contains(stderr, "wasilet: unknown flag: --no-such-flag") {
		t.Errorf("run --no-such-flag: exit %d, stderr %q", code, stderr)
	}
}
