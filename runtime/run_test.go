package runtime_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bytecodealliance/wasmtime-go/v39"
	"github.com/containerd/errdefs"

	"github.com/wasilet/wasilet/runtime"
)

func TestHello(t *testing.T) {
	out := run(t, "hello")
	if out.res != (runtime.Result{ExitCode: 0, Reason: runtime.ReasonCompleted}) || out.stdout != "Hello, world!\n" {
		t.Fatalf("got %+v stdout %q stderr %q", out.res, out.stdout, out.stderr)
	}
}

func TestExitCodes(t *testing.T) {
	for _, code := range []int{0, 1, 42, 125, 126, 200, 255} {
		out := run(t, "exit", itoa(code))
		want := runtime.ReasonError
		if code == 0 {
			want = runtime.ReasonCompleted
		}
		if out.res.ExitCode != code || out.res.Reason != want {
			t.Errorf("exit %d: got %+v (stderr %q)", code, out.res, out.stderr)
		}
	}
}

func TestArgsAfterArgv0(t *testing.T) {
	out := runSpec(t, testprog(t), runtime.Spec{Name: "my-container", Args: []string{"args", "a b", "", "c"}})
	want := "my-container\nargs\na b\n\nc\n"
	if out.stdout != want || out.res.Reason != runtime.ReasonCompleted {
		t.Fatalf("got %+v stdout %q, want %q", out.res, out.stdout, want)
	}
}

func TestEnv(t *testing.T) {
	out := runSpec(t, testprog(t), runtime.Spec{
		Args: []string{"env", "GREETING", ";", "env", "DUP", ";", "env", "EMPTY", ";", "env"},
		Env:  []string{"GREETING=hello=world", "DUP=first", "EMPTY=", "DUP=second"},
	})
	want := "GREETING=hello=world\nDUP=second\nEMPTY=\nDUP=second\nEMPTY=\nGREETING=hello=world\n"
	if out.stdout != want {
		t.Fatalf("got %+v stdout %q stderr %q, want %q", out.res, out.stdout, out.stderr, want)
	}

	_, err := testprog(t).Run(context.Background(), runtime.Spec{Env: []string{"NOEQUALS"}})
	if !errdefs.IsInvalidArgument(err) {
		t.Fatalf("env without '=': got %v, want invalid argument", err)
	}
}

func TestStdin(t *testing.T) {
	out := runSpec(t, testprog(t), runtime.Spec{Args: []string{"cat"}, Stdin: strings.NewReader("line 1\nline 2\n")})
	if out.stdout != "line 1\nline 2\n" || out.res.Reason != runtime.ReasonCompleted {
		t.Fatalf("got %+v stdout %q stderr %q", out.res, out.stdout, out.stderr)
	}
	// Without Stdin the guest reads EOF at once.
	out = run(t, "cat", ";", "echo", "done")
	if out.stdout != "done\n" {
		t.Fatalf("no stdin: got %+v stdout %q", out.res, out.stdout)
	}
}

func TestStdoutStderrFlushedBeforeReturn(t *testing.T) {
	// 2 MB of output through a 64 KiB pipe, then an exit code.
	out := run(t, "alloc", "1Mi", ";", "tick", "1ms", "3", ";", "stderr", strings.Repeat("x", 100000), ";", "exit", "3")
	if out.res.ExitCode != 3 {
		t.Fatalf("got %+v", out.res)
	}
	if out.stdout != "allocated 1048576 bytes\ntick 1\ntick 2\ntick 3\n" {
		t.Fatalf("stdout %q", out.stdout)
	}
	if len(out.stderr) != 100001 {
		t.Fatalf("stderr has %d bytes, want 100001", len(out.stderr))
	}
}

func TestPreopenReadWrite(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "in.txt"), []byte("from host"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := runSpec(t, testprog(t), runtime.Spec{
		Args:   []string{"read", "/data/in.txt", ";", "write", "/data/out.txt", "from guest", ";", "mkdir", "/data/sub/dir", ";", "exists", "/data/sub/dir"},
		Mounts: []runtime.Mount{{HostPath: dir, GuestPath: "/data"}},
	})
	if out.res.Reason != runtime.ReasonCompleted || out.stdout != "from host" {
		t.Fatalf("got %+v stdout %q stderr %q", out.res, out.stdout, out.stderr)
	}
	b, err := os.ReadFile(filepath.Join(dir, "out.txt"))
	if err != nil || string(b) != "from guest" {
		t.Fatalf("out.txt: %q, %v", b, err)
	}
}

func TestPreopenReadOnly(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "in.txt"), []byte("ro"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := runSpec(t, testprog(t), runtime.Spec{
		Args: []string{
			"read", "/ro/in.txt",
			";", "cannot-write", "/ro/in.txt",
			";", "cannot-write", "/ro/new.txt",
			";", "write", "/rw/ok.txt", "ok",
		},
		Mounts: []runtime.Mount{{HostPath: dir, GuestPath: "/ro", ReadOnly: true}, {HostPath: t.TempDir(), GuestPath: "/rw"}},
	})
	if out.res.Reason != runtime.ReasonCompleted {
		t.Fatalf("got %+v stdout %q stderr %q", out.res, out.stdout, out.stderr)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "in.txt")); string(b) != "ro" {
		t.Fatalf("read-only file changed to %q", b)
	}
	if _, err := os.Stat(filepath.Join(dir, "new.txt")); err == nil {
		t.Fatal("new.txt was created in a read-only preopen")
	}
}

func TestPreopenEscapesRefused(t *testing.T) {
	root := t.TempDir()
	data := filepath.Join(root, "data")
	secret := filepath.Join(root, "secret")
	for _, d := range []string{data, secret} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(secret, "key"), []byte("s3cret"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(secret, filepath.Join(data, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(secret, "key"), filepath.Join(data, "keylink")); err != nil {
		t.Fatal(err)
	}
	out := runSpec(t, testprog(t), runtime.Spec{
		Args: []string{
			"cannot-write", "/data/../escaped.txt",
			";", "cannot-write", "/data/../secret/key",
			";", "cannot-read", "/data/../secret/key",
			";", "cannot-write", root + "/escaped.txt",
			";", "cannot-write", "/escaped.txt",
			";", "cannot-write", "/data/link/key",
			";", "cannot-read", "/data/link/key",
			";", "cannot-read", "/data/keylink",
			";", "cannot-write", "/data/keylink",
			";", "write", "/data/inside.txt", "fine",
		},
		Mounts: []runtime.Mount{{HostPath: data, GuestPath: "/data"}},
	})
	if out.res.Reason != runtime.ReasonCompleted {
		t.Fatalf("got %+v stdout %q stderr %q", out.res, out.stdout, out.stderr)
	}
	if n := strings.Count(out.stdout, "refused:"); n != 9 {
		t.Fatalf("%d refusals, want 9:\n%s", n, out.stdout)
	}
	if b, _ := os.ReadFile(filepath.Join(secret, "key")); string(b) != "s3cret" {
		t.Fatalf("file outside the preopen changed to %q", b)
	}
	for _, p := range []string{filepath.Join(root, "escaped.txt"), "/escaped.txt"} {
		if _, err := os.Stat(p); err == nil {
			t.Fatalf("%s was created outside the preopen", p)
		}
	}
}

func TestMountErrors(t *testing.T) {
	p := testprog(t)
	file := filepath.Join(t.TempDir(), "f")
	os.WriteFile(file, nil, 0o644)
	for _, m := range []runtime.Mount{
		{HostPath: "/does/not/exist", GuestPath: "/x"},
		{HostPath: file, GuestPath: "/x"},
		{HostPath: t.TempDir()},
	} {
		if _, err := p.Run(context.Background(), runtime.Spec{Args: []string{"hello"}, Mounts: []runtime.Mount{m}}); err == nil {
			t.Errorf("mount %+v: no error", m)
		}
	}
}

// waitRun runs spec in the background and returns its result, failing if it
// has not returned within a generous deadline.
func waitRun(t *testing.T, ctx context.Context, p *runtime.Program, spec runtime.Spec) runtime.Result {
	t.Helper()
	type ret struct {
		res runtime.Result
		err error
	}
	ch := make(chan ret, 1)
	go func() {
		res, err := p.Run(ctx, spec)
		ch <- ret{res, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("Run: %v", r.err)
		}
		return r.res
	case <-time.After(60 * time.Second):
		t.Fatal("guest was not stopped within 60s")
	}
	return runtime.Result{}
}

func TestSpinStoppedByTimeout(t *testing.T) {
	res := waitRun(t, context.Background(), testprog(t), runtime.Spec{Args: []string{"spin"}, Timeout: 200 * time.Millisecond})
	if res.Reason != runtime.ReasonKilled || res.ExitCode != 137 || !strings.Contains(res.Message, "200ms") {
		t.Fatalf("got %+v", res)
	}
}

func TestSpinStoppedByCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	res := waitRun(t, ctx, testprog(t), runtime.Spec{Args: []string{"spin"}})
	if res.Reason != runtime.ReasonKilled || res.ExitCode != 137 {
		t.Fatalf("got %+v", res)
	}
}

func TestSleepStoppedByCancel(t *testing.T) {
	// A sleeping guest waits in the host (poll_oneoff), not in wasm code.
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	res := waitRun(t, ctx, testprog(t), runtime.Spec{Args: []string{"sleep", "1h"}})
	if res.Reason != runtime.ReasonKilled || res.ExitCode != 137 {
		t.Fatalf("got %+v", res)
	}
}

func TestStdinReaderStoppedByCancel(t *testing.T) {
	// A guest blocked reading a stdin that never ends.
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	res := waitRun(t, ctx, testprog(t), runtime.Spec{Args: []string{"cat", ";", "spin"}, Stdin: endlessStdin(t)})
	if res.Reason != runtime.ReasonKilled {
		t.Fatalf("got %+v", res)
	}
}

func TestSleepAndTickWork(t *testing.T) {
	start := time.Now()
	out := run(t, "sleep", "50ms", ";", "tick", "10ms", "3")
	if out.res.Reason != runtime.ReasonCompleted || out.stdout != "tick 1\ntick 2\ntick 3\n" {
		t.Fatalf("got %+v stdout %q stderr %q", out.res, out.stdout, out.stderr)
	}
	if time.Since(start) < 50*time.Millisecond {
		t.Fatal("sleep 50ms returned early")
	}
}

func TestOOMKilled(t *testing.T) {
	out := runSpec(t, testprog(t), runtime.Spec{Args: []string{"alloc", "100Mi"}, MemoryLimit: 64 << 20})
	if out.res.Reason != runtime.ReasonOOMKilled || out.res.ExitCode != 137 || !strings.Contains(out.res.Message, "64Mi") {
		t.Fatalf("got %+v stderr %q", out.res, out.stderr)
	}
	t.Logf("%+v", out.res)
	// Within the limit the same allocation works.
	out = runSpec(t, testprog(t), runtime.Spec{Args: []string{"alloc", "16Mi"}, MemoryLimit: 64 << 20})
	if out.res.Reason != runtime.ReasonCompleted {
		t.Fatalf("16Mi under 64Mi: got %+v stderr %q", out.res, out.stderr)
	}
	// A failure unrelated to memory is not OOM.
	out = runSpec(t, testprog(t), runtime.Spec{Args: []string{"exit", "1"}, MemoryLimit: 64 << 20})
	if out.res.Reason != runtime.ReasonError || out.res.ExitCode != 1 {
		t.Fatalf("exit 1 under a limit: got %+v", out.res)
	}
}

func TestTrapReportedWithMessage(t *testing.T) {
	wasm, err := wasmtime.Wat2Wasm(`(module (func (export "_start") unreachable))`)
	if err != nil {
		t.Fatal(err)
	}
	e := newEngine(t, "")
	p, err := e.Load(context.Background(), wasm, "")
	if err != nil {
		t.Fatal(err)
	}
	out := runSpec(t, p, runtime.Spec{})
	if out.res.Reason != runtime.ReasonError || out.res.ExitCode != runtime.ExitCodeTrap || !strings.Contains(out.res.Message, "unreachable") {
		t.Fatalf("got %+v", out.res)
	}
	t.Logf("trap: %+v", out.res)
	if strings.Contains(out.res.Message, "backtrace") || strings.Contains(out.res.Message, "\n") {
		t.Fatalf("message keeps the backtrace: %q", out.res.Message)
	}
}

func TestWATExitAndMissingStart(t *testing.T) {
	e := newEngine(t, "")
	ctx := context.Background()
	exit7, _ := wasmtime.Wat2Wasm(`(module
	  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
	  (memory (export "memory") 1)
	  (func (export "_start") (call $exit (i32.const 7))))`)
	p, err := e.Load(ctx, exit7, "")
	if err != nil {
		t.Fatal(err)
	}
	if out := runSpec(t, p, runtime.Spec{}); out.res.ExitCode != 7 || out.res.Reason != runtime.ReasonError {
		t.Fatalf("exit 7: got %+v", out.res)
	}
	returns, _ := wasmtime.Wat2Wasm(`(module (func (export "_start")))`)
	p, err = e.Load(ctx, returns, "")
	if err != nil {
		t.Fatal(err)
	}
	if out := runSpec(t, p, runtime.Spec{}); out.res != (runtime.Result{Reason: runtime.ReasonCompleted}) {
		t.Fatalf("returning _start: got %+v", out.res)
	}
	noStart, _ := wasmtime.Wat2Wasm(`(module (func (export "main")))`)
	p, err = e.Load(ctx, noStart, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Run(ctx, runtime.Spec{}); err == nil || !strings.Contains(err.Error(), "_start") {
		t.Fatalf("no _start: got %v", err)
	}
	badImport, _ := wasmtime.Wat2Wasm(`(module (import "env" "nope" (func)) (func (export "_start")))`)
	p, err = e.Load(ctx, badImport, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Run(ctx, runtime.Spec{}); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Fatalf("unknown import: got %v", err)
	}
}

func TestLoadRejectsNonWasm(t *testing.T) {
	e := newEngine(t, "")
	for name, b := range map[string][]byte{
		"empty":   nil,
		"text":    []byte("#!/bin/sh\necho hi\n"),
		"version": {0, 'a', 's', 'm', 2, 0, 0, 0},
		"short":   {0, 'a', 's'},
		"garbage": append([]byte{0, 'a', 's', 'm', 1, 0, 0, 0}, 0xff, 0xff, 0xff),
	} {
		if _, err := e.Load(context.Background(), b, ""); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := e.Load(context.Background(), []byte{0, 'a', 's', 'm', 1, 0, 0, 0}, "md5:abc"); !errdefs.IsInvalidArgument(err) {
		t.Errorf("bad digest: got %v", err)
	}
}

func TestConcurrentRuns(t *testing.T) {
	p := testprog(t)
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for i := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var spec runtime.Spec
			want := runtime.Result{Reason: runtime.ReasonCompleted}
			switch i % 4 {
			case 0:
				spec.Args = []string{"hello"}
			case 1:
				spec.Args = []string{"exit", "42"}
				want = runtime.Result{ExitCode: 42, Reason: runtime.ReasonError, Message: "exit code 42"}
			case 2:
				spec.Args = []string{"spin"}
				spec.Timeout = 100 * time.Millisecond
				want = runtime.Result{ExitCode: 137, Reason: runtime.ReasonKilled, Message: "stopped after 100ms"}
			case 3:
				spec.Args = []string{"alloc", "8Mi"}
			}
			res, err := p.Run(context.Background(), spec)
			if err != nil {
				errs <- err
			} else if res != want {
				errs <- errors.New(strings.Join(spec.Args, " ") + ": got " + res.Message + " " + string(res.Reason))
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestRunWithDoneContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res, err := testprog(t).Run(ctx, runtime.Spec{Args: []string{"hello"}})
	if err != nil || res.Reason != runtime.ReasonKilled || res.ExitCode != 137 {
		t.Fatalf("got %+v, %v", res, err)
	}
}
