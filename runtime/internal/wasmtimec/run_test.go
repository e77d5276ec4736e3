package wasmtimec

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bytecodealliance/wasmtime-go/v39"
)

func wantExit(t *testing.T, res RunResult, code int) {
	t.Helper()
	if res.Outcome != Exited && res.Outcome != Returned || res.ExitCode != code {
		t.Fatalf("got %+v, want exit code %d", res, code)
	}
}

func TestRunHello(t *testing.T) {
	res, out, _ := output(t, testprog(t), RunConfig{Args: args("hello")})
	wantExit(t, res, 0)
	if out != "Hello, world!\n" {
		t.Errorf("stdout %q", out)
	}
}

func TestRunArgs(t *testing.T) {
	argv := []string{"my-prog", "args", "with space", "ünïcode", ""}
	res, out, _ := output(t, testprog(t), RunConfig{Args: argv})
	wantExit(t, res, 0)
	if want := strings.Join(argv, "\n") + "\n"; out != want {
		t.Errorf("stdout %q, want %q", out, want)
	}
	if _, err := testprog(t).Run(t.Context(), RunConfig{Args: []string{"a\x00b"}}); err == nil {
		t.Error("argument with a NUL byte: no error")
	}
}

func TestRunEnv(t *testing.T) {
	env := []string{"A=1", "B=x=y", "EMPTY=", "A=2"}
	res, out, _ := output(t, testprog(t), RunConfig{Args: args("env"), Env: env})
	wantExit(t, res, 0)
	// Only what was given (nothing of the host's), a repeated key once with
	// its last value.
	if want := "A=2\nB=x=y\nEMPTY=\n"; out != want {
		t.Errorf("stdout %q, want %q", out, want)
	}
	for _, bad := range []string{"NOEQUALS", "=v", "A=b\x00c"} {
		if _, err := testprog(t).Run(t.Context(), RunConfig{Args: args("hello"), Env: []string{bad}}); err == nil {
			t.Errorf("env %q: no error", bad)
		}
	}
}

func TestRunPreopens(t *testing.T) {
	rw, ro := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(ro, "f"), []byte("original"), 0o644); err != nil {
		t.Fatal(err)
	}
	pre := []Preopen{{HostPath: rw, GuestPath: "/data"}, {HostPath: ro, GuestPath: "/ro", ReadOnly: true}}
	steps := "write /data/x hi ; read /data/x ; mkdir /data/d/e ; read /ro/f ; ls /ro ; " +
		"cannot-write /ro/f ; cannot-write /ro/new ; cannot-read /etc/passwd ; cannot-read /data/../../etc/passwd"
	res, out, errout := output(t, testprog(t), RunConfig{Args: args(steps), Preopens: pre})
	wantExit(t, res, 0)
	t.Logf("stdout:\n%s", out)
	if !strings.HasPrefix(out, "hioriginalf\nrefused: ") || strings.Count(out, "refused: ") != 4 {
		t.Errorf("stdout %q, stderr %q", out, errout)
	}
	if b, err := os.ReadFile(filepath.Join(rw, "x")); err != nil || string(b) != "hi" {
		t.Errorf("host file written through /data: %q, %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(rw, "d", "e")); err != nil {
		t.Errorf("directory made through /data: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(ro, "f")); string(b) != "original" {
		t.Errorf("read-only file changed: %q", b)
	}
	if _, err := os.Stat(filepath.Join(ro, "new")); err == nil {
		t.Error("a file was created in a read-only preopen")
	}

	_, err := testprog(t).Run(t.Context(), RunConfig{Args: args("hello"), Preopens: []Preopen{{HostPath: filepath.Join(rw, "nope"), GuestPath: "/x"}}})
	if err == nil || !strings.Contains(err.Error(), "nope") {
		t.Errorf("missing host directory: %v", err)
	}
}

func TestRunStdio(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in")
	if err := os.WriteFile(in, []byte("line 1\nline 2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	res, out, errout := output(t, testprog(t), RunConfig{Args: args("cat ; stderr oops"), Stdin: in})
	wantExit(t, res, 0)
	if out != "line 1\nline 2\n" || errout != "oops\n" {
		t.Errorf("stdout %q, stderr %q", out, errout)
	}
	// No stdin: empty. No stdout: discarded.
	res, err := testprog(t).Run(t.Context(), RunConfig{Args: args("cat ; hello")})
	if err != nil {
		t.Fatal(err)
	}
	wantExit(t, res, 0)

	// Pipes, the way the runtime passes them.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan string)
	go func() {
		var b strings.Builder
		buf := make([]byte, 4096)
		for {
			n, err := r.Read(buf)
			b.Write(buf[:n])
			if err != nil {
				break
			}
		}
		done <- b.String()
	}()
	res, err = testprog(t).Run(t.Context(), RunConfig{Args: args("echo via pipe"), Stdout: fmt.Sprintf("/proc/self/fd/%d", w.Fd())})
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	wantExit(t, res, 0)
	if got := <-done; got != "via pipe\n" {
		t.Errorf("pipe got %q", got)
	}
	r.Close()

	// Stdin from a pipe, fed while the guest runs.
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for i := 0; i < 3; i++ {
			fmt.Fprintf(pw, "chunk %d\n", i)
			time.Sleep(20 * time.Millisecond)
		}
		pw.Close()
	}()
	res, out, _ = output(t, testprog(t), RunConfig{Args: args("cat"), Stdin: fmt.Sprintf("/proc/self/fd/%d", pr.Fd())})
	pr.Close()
	wantExit(t, res, 0)
	if out != "chunk 0\nchunk 1\nchunk 2\n" {
		t.Errorf("stdin pipe: stdout %q", out)
	}

	for _, cfg := range []RunConfig{
		{Stdin: filepath.Join(dir, "missing")},
		{Stdout: dir + "/a\x00b"},
		{Preopens: []Preopen{{HostPath: dir, GuestPath: "/x\x00y"}}},
		{Stdout: filepath.Join(dir, "no", "such", "dir")},
		{Stderr: filepath.Join(dir, "no", "such", "dir")},
	} {
		cfg.Args = args("hello")
		if _, err := testprog(t).Run(t.Context(), cfg); err == nil {
			t.Errorf("%+v: no error", cfg)
		}
	}
}

// TestRunExitCodes: a command component ends through wasi:cli/exit (Go's
// runtime always calls it) or by returning from run. WASI 0.2.0's exit takes
// result<_, _>, so a code other than 0 arrives as 1.
func TestRunExitCodes(t *testing.T) {
	for _, c := range []struct {
		steps string
		code  int
	}{{"exit 0", 0}, {"exit 1", 1}, {"exit 42", 1}, {"exit 2", 1}, {"fail bad", 1}, {"hello", 0}} {
		res, _, _ := output(t, testprog(t), RunConfig{Args: args(c.steps)})
		if res.Outcome != Exited || res.ExitCode != c.code {
			t.Errorf("%s: got %+v, want exited with %d", c.steps, res, c.code)
		}
	}
	for name, code := range map[string]int{"run-ok.wat": 0, "run-err.wat": 1, "run-newer.wat": 0} {
		res, err := compileTestdata(t, name).Run(t.Context(), RunConfig{})
		if err != nil || res.Outcome != Returned || res.ExitCode != code {
			t.Errorf("%s: got %+v, %v; want returned %d", name, res, err, code)
		}
	}
}

func TestRunTrap(t *testing.T) {
	res, err := compileTestdata(t, "trap.wat").Run(t.Context(), RunConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != Trapped || res.ExitCode == 0 {
		t.Fatalf("got %+v", res)
	}
	if res.Message != "wasm trap: wasm `unreachable` instruction executed" {
		t.Errorf("message %q", res.Message)
	}
	if !strings.Contains(res.Detail, "boom") || strings.Contains(res.Detail, "Stack backtrace") {
		t.Errorf("detail lacks the guest frame or has the host stack: %q", res.Detail)
	}
}

func TestRunMissingImport(t *testing.T) {
	_, err := compileTestdata(t, "missing-import.wat").Run(t.Context(), RunConfig{})
	var ie *InstantiateError
	if !errors.As(err, &ie) || ie.MemoryLimit {
		t.Fatalf("got %v, want an InstantiateError not about memory", err)
	}
	if !strings.Contains(err.Error(), "wasilet:test/missing@0.1.0") {
		t.Errorf("error does not name the import: %v", err)
	}
	t.Log(err)
}

func TestRunNotCommand(t *testing.T) {
	c := compileTestdata(t, "library.wat")
	if c.IsCommand() {
		t.Error("library component reported as a command")
	}
	if !testprog(t).IsCommand() {
		t.Error("testprog not reported as a command")
	}
	if _, err := c.Run(t.Context(), RunConfig{}); !errors.Is(err, ErrNotCommand) {
		t.Errorf("got %v, want ErrNotCommand", err)
	}
}

func TestCorrupt(t *testing.T) {
	e := testEngine(t)
	component, err := os.ReadFile(filepath.Join(wasmDir(t), "testprog.component.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	core, err := wasmtime.Wat2Wasm(`(module (func (export "_start")))`)
	if err != nil {
		t.Fatal(err)
	}
	serialized, err := testprog(t).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	flipped := append([]byte(nil), component...)
	for i := len(flipped) / 2; i < len(flipped)/2+64; i++ {
		flipped[i] ^= 0xff
	}
	for name, data := range map[string][]byte{
		"empty":            nil,
		"garbage":          []byte("this is not wasm at all"),
		"truncated":        component[:len(component)/3],
		"flipped bytes":    flipped,
		"core module":      core,
		"serialized bytes": serialized,
	} {
		c, err := Compile(e, data)
		if err == nil {
			c.Close()
			t.Errorf("Compile(%s): no error", name)
			continue
		}
		t.Logf("Compile(%s): %v", name, err)
	}
	for name, data := range map[string][]byte{
		"empty":     nil,
		"garbage":   []byte("this is not an artifact"),
		"component": component,
		"truncated": serialized[:len(serialized)/2],
	} {
		c, err := Deserialize(e, data)
		if err == nil {
			c.Close()
			t.Errorf("Deserialize(%s): no error", name)
			continue
		}
		t.Logf("Deserialize(%s): %v", name, err)
	}
}

func TestSerializeRoundTrip(t *testing.T) {
	data, err := testprog(t).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	c, err := Deserialize(testEngine(t), data)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	res, out, _ := output(t, c, RunConfig{Args: args("echo round trip")})
	wantExit(t, res, 0)
	if out != "round trip\n" {
		t.Errorf("stdout %q", out)
	}
	again, err := c.Serialize()
	if err != nil || len(again) == 0 {
		t.Fatalf("serialize a deserialized component: %d bytes, %v", len(again), err)
	}

	// An engine configured differently refuses the artifact.
	other := wasmtime.NewEngine() // no epoch interruption
	defer other.Close()
	if c, err := Deserialize(other, data); err == nil {
		c.Close()
		t.Error("artifact accepted by an engine with another configuration")
	} else {
		t.Logf("other engine: %v", err)
	}
}

func TestMemoryLimit(t *testing.T) {
	// The limiter refuses growth: the guest sees memory.grow fail.
	grow := compileTestdata(t, "grow.wat")
	for limit, code := range map[int64]int{8 << 20: 1, 64 << 20: 0, 0: 0} {
		res, err := grow.Run(t.Context(), RunConfig{MemoryLimit: limit})
		if err != nil || res.Outcome != Returned || res.ExitCode != code {
			t.Errorf("grow to 32 MiB under a limit of %d: %+v, %v; want exit %d", limit, res, err, code)
		}
	}
	// An initial memory above the limit: instantiation fails.
	big := compileTestdata(t, "big-memory.wat")
	_, err := big.Run(t.Context(), RunConfig{MemoryLimit: 8 << 20})
	var ie *InstantiateError
	if !errors.As(err, &ie) || !ie.MemoryLimit || !strings.Contains(err.Error(), "exceeds memory limits") {
		t.Errorf("64 MiB memory under an 8 MiB limit: %v", err)
	}
	if res, err := big.Run(t.Context(), RunConfig{MemoryLimit: 128 << 20}); err != nil || res.ExitCode != 0 {
		t.Errorf("64 MiB memory under a 128 MiB limit: %+v, %v", res, err)
	}
}

// runAsync starts c.Run and returns a channel with its outcome.
func runAsync(ctx context.Context, c *Component, cfg RunConfig) <-chan RunResult {
	ch := make(chan RunResult, 1)
	go func() {
		res, err := c.Run(ctx, cfg)
		if err != nil {
			res = RunResult{Message: "error: " + err.Error()}
		}
		ch <- res
	}()
	return ch
}

// waitResult waits (generously) for a run to end.
func waitResult(t *testing.T, ch <-chan RunResult) RunResult {
	t.Helper()
	select {
	case res := <-ch:
		return res
	case <-time.After(60 * time.Second):
		t.Fatal("run did not end within 60s of being cancelled")
	}
	return RunResult{}
}

func TestCancelSpinning(t *testing.T) {
	for _, c := range []struct {
		name string
		comp *Component
		cfg  RunConfig
	}{
		{"spin.wat", compileTestdata(t, "spin.wat"), RunConfig{}},
		{"testprog spin", testprog(t), RunConfig{Args: args("spin")}},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			ch := runAsync(ctx, c.comp, c.cfg)
			select {
			case res := <-ch:
				t.Fatalf("spinning guest ended by itself: %+v", res)
			case <-time.After(300 * time.Millisecond):
			}
			start := time.Now()
			cancel()
			res := waitResult(t, ch)
			t.Logf("stopped %v after cancel: %+v", time.Since(start), res.Message)
			if res.Outcome != Cancelled || res.ExitCode == 0 || !strings.Contains(res.Message, "cancelled") {
				t.Errorf("got %+v", res)
			}
		})
	}
	// Stores are independent: a run after the cancellations is unaffected.
	res, _, _ := output(t, testprog(t), RunConfig{Args: args("hello")})
	wantExit(t, res, 0)
}

func TestCancelBeforeStart(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	dir := t.TempDir()
	res, err := testprog(t).Run(ctx, RunConfig{Args: args("write /d/x y"), Preopens: []Preopen{{HostPath: dir, GuestPath: "/d"}}})
	if err != nil || res.Outcome != Cancelled {
		t.Fatalf("got %+v, %v", res, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "x")); err == nil {
		t.Error("a cancelled run ran")
	}
}

// TestCancelSleeping documents that a guest blocked in a host call (here
// wasi:io/poll for time.Sleep) stops only when the call returns.
func TestCancelSleeping(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	start := time.Now()
	ch := runAsync(ctx, testprog(t), RunConfig{Args: args("sleep 1s ; hello")})
	time.Sleep(100 * time.Millisecond)
	cancel()
	res := waitResult(t, ch)
	t.Logf("sleeping guest ended %v after start: %+v", time.Since(start), res)
	if res.Outcome != Cancelled {
		t.Errorf("got %+v", res)
	}
}

func TestClose(t *testing.T) {
	c, err := Compile(testEngine(t), readTestdata(t, "spin.wat"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	ch := runAsync(ctx, c, RunConfig{})
	time.Sleep(100 * time.Millisecond)
	c.Close() // in flight: freed when the run ends
	c.Close()
	if _, err := c.Run(t.Context(), RunConfig{}); !errors.Is(err, ErrClosed) {
		t.Errorf("Run after Close: %v", err)
	}
	if _, err := c.Serialize(); !errors.Is(err, ErrClosed) {
		t.Errorf("Serialize after Close: %v", err)
	}
	cancel()
	if res := waitResult(t, ch); res.Outcome != Cancelled {
		t.Errorf("in-flight run: %+v", res)
	}
	c.mu.Lock()
	freed := c.ptr == nil && c.linker == nil && c.runFunc == nil
	c.mu.Unlock()
	if !freed {
		t.Error("handles not freed after the last run")
	}
}

func TestConcurrentRuns(t *testing.T) {
	c := testprog(t)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 10; i++ {
				want := fmt.Sprintf("g%d-i%d", g, i)
				res, out, _ := output(t, c, RunConfig{Args: args("echo " + want), Env: []string{"N=" + want}})
				if res.ExitCode != 0 || out != want+"\n" {
					errs <- fmt.Errorf("%s: %+v %q", want, res, out)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
