package shim_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"sync"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/wasilet/wasilet/internal/clustertest"
	"github.com/wasilet/wasilet/internal/containerdtest"
	"github.com/wasilet/wasilet/shim"
)

// env is one containerd with the wasilet shim, for one test.
type env struct {
	c          *containerdtest.Containerd
	ctr        string
	crictlPath string
	module     string // image ref: testprog.wasm as a plain image
	component  string // image ref: testprog.component.wasm as a plain image
	// moduleNode is testprog.wasm as a plain image for the node's platform
	// (linux/GOARCH): the CRI of containerd 2.4 unpacks only images of the
	// node's platform (see the package doc).
	moduleNode string
	shimBin    string
	cacheDir   string
}

// wasmFile is bin/wasm/<name> from $WASILET_WASM_DIR or the repository.
func wasmFile(t testing.TB, name string) []byte {
	t.Helper()
	dir := os.Getenv("WASILET_WASM_DIR")
	if dir == "" {
		dir = filepath.Join("..", "bin", "wasm")
	}
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Skipf("no %s: %v (run ./just wasm or set WASILET_WASM_DIR)", name, err)
	}
	return b
}

var buildOnce struct {
	sync.Once
	dir string
	err error
}

// buildShim builds containerd-shim-wasilet-v1 once per test binary into a
// directory to put first in containerd's PATH.
func buildShim(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "wasilet-shim-bin-")
		if err != nil {
			buildOnce.err = err
			return
		}
		buildOnce.dir = dir
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, shim.BinaryName), "github.com/wasilet/wasilet/cmd/containerd-shim-wasilet-v1")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildOnce.err = fmt.Errorf("go build the shim: %v\n%s", err, out)
		}
	})
	if buildOnce.err != nil {
		t.Fatal(buildOnce.err)
	}
	return buildOnce.dir
}

func TestMain(m *testing.M) {
	clustertest.MainThen(m, func() {
		if buildOnce.dir != "" {
			os.RemoveAll(buildOnce.dir)
		}
	})
}

// start runs a private containerd with the shim as runtime handler
// "wasilet" and pushes the test images.
func start(t testing.TB) *env {
	t.Helper()
	if reason := containerdtest.Unavailable(""); reason != "" {
		t.Skip(reason)
	}
	tools := os.Getenv("WASILET_TOOLS_DIR")
	e := &env{ctr: filepath.Join(tools, "ctr"), crictlPath: filepath.Join(tools, "crictl")}
	if _, err := os.Stat(e.ctr); err != nil {
		t.Skipf("no ctr in %s (run hack/tools.sh containerd runc)", tools)
	}
	mod := wasmFile(t, "testprog.wasm")
	comp := wasmFile(t, "testprog.component.wasm")
	e.shimBin = buildShim(t)
	e.cacheDir = t.TempDir()
	e.c = containerdtest.Start(t, containerdtest.Options{
		ExtraPath: []string{e.shimBin},
		Env:       []string{shim.CacheDirEnv + "=" + e.cacheDir},
		Runtimes:  map[string]string{"wasilet": shim.RuntimeType},
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	e.module = e.c.RegistryAddr + "/shimtest/testprog:module"
	e.component = e.c.RegistryAddr + "/shimtest/testprog:component"
	e.moduleNode = e.c.RegistryAddr + "/shimtest/testprog:module-" + goruntime.GOARCH
	for _, im := range []struct {
		ref, os, arch string
		wasm          []byte
	}{{e.module, "wasip1", "wasm", mod}, {e.component, "wasip2", "wasm", comp}, {e.moduleNode, "linux", goruntime.GOARCH, mod}} {
		err := containerdtest.PushFileImage(ctx, im.ref, containerdtest.FileImage{
			Path: "testprog.wasm", Data: im.wasm, Entrypoint: []string{"/testprog.wasm"},
			Platform: ocispec.Platform{OS: im.os, Architecture: im.arch},
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return e
}

// ctrResult is how a ctr command ended.
type ctrResult struct {
	stdout, stderr string
	code           int
}

// run runs ctr against the test's containerd in namespace "shimtest".
func (e *env) run(t testing.TB, timeout time.Duration, args ...string) ctrResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.ctr, append([]string{"--address", e.c.Socket, "--namespace", "shimtest"}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := ctrResult{stdout: out.String(), stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		t.Fatalf("ctr %s: %v", strings.Join(args, " "), err)
	}
	if ctx.Err() != nil {
		t.Fatalf("ctr %s: timed out after %s; stderr: %s", strings.Join(args, " "), timeout, r.stderr)
	}
	return r
}

func (e *env) pull(t testing.TB, ref string) {
	t.Helper()
	if r := e.run(t, time.Minute, "images", "pull", "--plain-http", ref); r.code != 0 {
		t.Fatalf("ctr images pull %s: exit %d: %s", ref, r.code, r.stderr)
	}
}

func TestCtrRun(t *testing.T) {
	e := start(t)
	e.pull(t, e.module)
	e.pull(t, e.component)
	data := t.TempDir()
	if err := os.WriteFile(filepath.Join(data, "in.txt"), []byte("from the host"), 0o644); err != nil {
		t.Fatal(err)
	}

	n := 0
	ctrRun := func(t *testing.T, ref string, opts []string, args ...string) ctrResult {
		t.Helper()
		n++
		a := append([]string{"run", "--rm", "--runtime", shim.RuntimeType}, opts...)
		// ctr's arguments replace the whole command, entrypoint included.
		a = append(a, ref, fmt.Sprintf("t%d", n), "/testprog.wasm")
		return e.run(t, time.Minute, append(a, args...)...)
	}
	for _, tc := range []struct {
		name       string
		ref        string
		opts, args []string
		want       string
		code       int
	}{
		{name: "module hello", ref: e.module, args: []string{"hello"}, want: "Hello, world!\n"},
		{name: "component hello", ref: e.component, args: []string{"hello"}, want: "Hello, world!\n"},
		{name: "module exit code", ref: e.module, args: []string{"echo", "bye", ";", "exit", "3"}, want: "bye\n", code: 3},
		{name: "component exit code", ref: e.component, args: []string{"exit", "3"}, code: 1},
		{name: "args", ref: e.module, args: []string{"args"}, want: "/testprog.wasm\nargs\n"},
		{name: "env", ref: e.module, opts: []string{"--env", "GREETING=hi there"}, args: []string{"env", "GREETING"}, want: "GREETING=hi there\n"},
		{name: "rootfs", ref: e.module, args: []string{"exists", "/testprog.wasm", ";", "echo", "ok"}, want: "ok\n"},
		{name: "bind mount", ref: e.module,
			opts: []string{"--mount", "type=bind,src=" + data + ",dst=/data,options=rbind:rw"},
			args: []string{"read", "/data/in.txt", ";", "write", "/data/out.txt", "from the guest"}, want: "from the host"},
		{name: "read-only bind mount", ref: e.module,
			opts: []string{"--mount", "type=bind,src=" + data + ",dst=/data,options=rbind:ro"},
			args: []string{"cannot-write", "/data/nope.txt"}, want: "refused: open /data/nope.txt: Operation not permitted\n"},
		{name: "stderr", ref: e.component, args: []string{"stderr", "to stderr", ";", "echo", "to stdout"}, want: "to stdout\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := ctrRun(t, tc.ref, tc.opts, tc.args...)
			if r.code != tc.code || r.stdout != tc.want {
				t.Errorf("ctr run … %s: exit %d, stdout %q; want exit %d, stdout %q (stderr %q)",
					strings.Join(tc.args, " "), r.code, r.stdout, tc.code, tc.want, r.stderr)
			}
		})
	}
	if b, err := os.ReadFile(filepath.Join(data, "out.txt")); err != nil || string(b) != "from the guest" {
		t.Errorf("the guest's write through the bind mount: %q, %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(data, "nope.txt")); err == nil {
		t.Error("the guest wrote through a read-only bind mount")
	}
	if ents, _ := os.ReadDir(e.cacheDir); len(ents) == 0 {
		t.Errorf("nothing in the shim's compiled cache %s", e.cacheDir)
	}

	for _, k := range []struct {
		signal string
		code   int
	}{{"SIGTERM", 143}, {"SIGKILL", 137}} {
		t.Run("kill "+k.signal, func(t *testing.T) {
			n++
			id := fmt.Sprintf("t%d", n)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, e.ctr, "--address", e.c.Socket, "--namespace", "shimtest",
				"run", "--rm", "--runtime", shim.RuntimeType, e.module, id, "/testprog.wasm", "echo", "sleeping", ";", "sleep", "1h")
			var out bytes.Buffer
			cmd.Stdout = &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			// Wait for the task to run.
			for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
				r := e.run(t, 10*time.Second, "task", "ls")
				if strings.Contains(r.stdout, id) && strings.Contains(r.stdout, "RUNNING") {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("task %s not running: %s", id, r.stdout)
				}
			}
			began := time.Now()
			if r := e.run(t, 10*time.Second, "task", "kill", "--signal", k.signal, id); r.code != 0 {
				t.Fatalf("ctr task kill: exit %d: %s", r.code, r.stderr)
			}
			err := cmd.Wait()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != k.code {
				t.Errorf("ctr run of a guest killed with %s: %v; want exit %d", k.signal, err, k.code)
			}
			t.Logf("killed with %s: ctr run ended %s after the kill", k.signal, time.Since(began).Round(time.Millisecond))
			if out.String() != "sleeping\n" {
				t.Errorf("stdout %q", out.String())
			}
		})
	}
}
