package main

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wasilet/wasilet/proxy/exchange"
)

const (
	foo0Output = `{"devices":[{"id":"foo0","properties":{"DEBUG_ECHO_DESCRIPTION":"foo0"},"mounts":[],"device_specs":[]}]}`
	noDevices  = `{"devices":[]}`
)

// harness drives a watcher over a temporary exchange directory with a fake
// clock and collects its logs.
type harness struct {
	t              *testing.T
	dir            string
	w              *watcher
	now            time.Time
	stdout, stderr strings.Builder
}

func newHarness(t *testing.T) *harness {
	h := &harness{t: t, dir: t.TempDir(), now: time.Unix(1_000_000, 0)}
	h.w = newWatcher(h.dir, &h.stdout, &h.stderr)
	return h
}

func (h *harness) step() {
	h.t.Helper()
	h.now = h.now.Add(100 * time.Millisecond)
	h.w.step(h.now)
}

func (h *harness) path(rel string) string { return filepath.Join(h.dir, rel) }

func (h *harness) write(rel, content string) {
	h.t.Helper()
	if err := os.MkdirAll(filepath.Dir(h.path(rel)), 0o755); err != nil {
		h.t.Fatal(err)
	}
	if err := exchange.WriteFileAtomic(h.path(rel), []byte(content)); err != nil {
		h.t.Fatal(err)
	}
}

// out returns the content of rel, or "<missing>".
func (h *harness) out(rel string) string {
	h.t.Helper()
	b, err := os.ReadFile(h.path(rel))
	if os.IsNotExist(err) {
		return "<missing>"
	}
	if err != nil {
		h.t.Fatal(err)
	}
	return string(b)
}

func (h *harness) wantOut(rel, want string) {
	h.t.Helper()
	if got := h.out(rel); got != want {
		h.t.Fatalf("%s = %s, want %s", rel, got, want)
	}
}

// logs returns and clears what was logged.
func (h *harness) logs() (stdout, stderr string) {
	stdout, stderr = h.stdout.String(), h.stderr.String()
	h.stdout.Reset()
	h.stderr.Reset()
	return stdout, stderr
}

func (h *harness) wantLogs(stdoutHas, stderrHas string) {
	h.t.Helper()
	out, errs := h.logs()
	check := func(name, got, want string) {
		if want == "" && got != "" || !strings.Contains(got, want) {
			h.t.Fatalf("%s = %q, want %s", name, got, map[bool]string{true: "nothing", false: "it to contain " + want}[want == ""])
		}
	}
	check("stdout", out, stdoutHas)
	check("stderr", errs, stderrHas)
}

// stampOf is the identity of a file version, to tell a rewrite.
func (h *harness) stampOf(rel string) exchange.Stamp {
	h.t.Helper()
	st := exchange.StatFile(h.path(rel))
	if !st.Exists {
		h.t.Fatalf("%s is missing", rel)
	}
	return st
}

func TestWatcherSingleRequest(t *testing.T) {
	h := newHarness(t)
	h.step()
	h.wantOut(exchange.OutFile, "<missing>")
	h.wantLogs("", "")

	h.write(exchange.InFile, `{"descriptions":["foo0"]}`)
	h.step()
	h.wantOut(exchange.OutFile, foo0Output) // byte for byte the original's
	h.wantLogs("wrote "+h.path(exchange.OutFile)+": devices foo0", "")
	if _, err := os.Stat(h.path(exchange.AvailabilityFile)); !os.IsNotExist(err) {
		t.Fatalf("the handler created the availability file: %v", err)
	}

	// Idle: no rewrite, no log.
	st := h.stampOf(exchange.OutFile)
	for range 5 {
		h.step()
	}
	if h.stampOf(exchange.OutFile) != st {
		t.Fatal("out.out rewritten without a change")
	}
	h.wantLogs("", "")

	// Offline and back.
	h.write(exchange.AvailabilityFile, "OFFLINE\n")
	h.step()
	h.wantOut(exchange.OutFile, noDevices)
	h.wantLogs("holds OFFLINE", "")
	h.write(exchange.AvailabilityFile, "ONLINE")
	h.step()
	h.wantOut(exchange.OutFile, foo0Output)
	h.wantLogs("reporting devices again", "")
	if err := os.Remove(h.path(exchange.AvailabilityFile)); err != nil {
		t.Fatal(err)
	}
	h.step()
	h.wantOut(exchange.OutFile, foo0Output)
	h.wantLogs("", "")

	// A removed out.out is written again; an altered one is restored.
	if err := os.Remove(h.path(exchange.OutFile)); err != nil {
		t.Fatal(err)
	}
	h.step()
	h.wantOut(exchange.OutFile, foo0Output)
	h.write(exchange.OutFile, noDevices)
	h.step()
	h.wantOut(exchange.OutFile, foo0Output)
	h.logs()

	// A new request.
	h.write(exchange.InFile, `{"descriptions":["foo0","foo1"]}`)
	h.step()
	h.wantOut(exchange.OutFile, `{"devices":[{"id":"foo0","properties":{"DEBUG_ECHO_DESCRIPTION":"foo0"},"mounts":[],"device_specs":[]},`+
		`{"id":"foo1","properties":{"DEBUG_ECHO_DESCRIPTION":"foo1"},"mounts":[],"device_specs":[]}]}`)
	h.wantLogs("devices foo0, foo1", "")

	// in.in removed: the request is forgotten, out.out left alone.
	if err := os.Remove(h.path(exchange.InFile)); err != nil {
		t.Fatal(err)
	}
	h.step()
	h.wantLogs("no request any more", "")
	if len(h.w.requests) != 0 {
		t.Fatalf("requests = %v after in.in went", h.w.requests)
	}
}

func TestWatcherMalformedInput(t *testing.T) {
	h := newHarness(t)
	h.write(exchange.InFile, `{"descriptions":["foo0"]}`)
	h.step()
	h.wantOut(exchange.OutFile, foo0Output)
	h.logs()

	for _, bad := range []string{`{"descriptions":["foo1"`, `{"descriptions":"foo1"}`, ``, `{"other":[]}`, "\x00\xff"} {
		h.write(exchange.InFile, bad)
		for range 3 {
			h.step()
		}
		h.wantOut(exchange.OutFile, foo0Output) // the previous answer stays
		out, errs := h.logs()
		if out != "" || strings.Count(errs, "\n") != 1 || !strings.Contains(errs, h.path(exchange.InFile)) {
			t.Fatalf("in.in %q: stdout %q, stderr %q; want one line on stderr naming in.in", bad, out, errs)
		}
	}
	// The same problem again (a new file, same content) is not logged again.
	h.write(exchange.InFile, "\x00\xff")
	h.step()
	h.wantLogs("", "")

	// Availability changes write nothing while the request is bad, and a
	// missing out.out is not brought back from an older request.
	h.write(exchange.AvailabilityFile, "OFFLINE")
	if err := os.Remove(h.path(exchange.OutFile)); err != nil {
		t.Fatal(err)
	}
	h.step()
	h.wantOut(exchange.OutFile, "<missing>")
	h.logs()

	// Fixed: answered again (offline), and a recurring problem is logged.
	h.write(exchange.InFile, `{"descriptions":["foo0"]}`)
	h.step()
	h.wantOut(exchange.OutFile, noDevices)
	h.wantLogs("no devices (offline)", "")
	h.write(exchange.InFile, "\x00\xff")
	h.step()
	h.wantLogs("", "in.in")

	// Repeated and empty descriptions are dropped, with a note.
	h.write(exchange.AvailabilityFile, "")
	h.write(exchange.InFile, `{"descriptions":["a","","a","b"]}`)
	h.step()
	h.wantOut(exchange.OutFile, `{"devices":[{"id":"a","properties":{"DEBUG_ECHO_DESCRIPTION":"a"},"mounts":[],"device_specs":[]},`+
		`{"id":"b","properties":{"DEBUG_ECHO_DESCRIPTION":"b"},"mounts":[],"device_specs":[]}]}`)
	h.wantLogs("devices a, b", `ignoring empty or repeated descriptions "", "a"`)

	// YAML (a JSON superset) is accepted too, as the proxy may pass it on.
	h.write(exchange.InFile, "descriptions:\n- y0\n")
	h.step()
	h.wantLogs("devices y0", "")
}

func TestWatcherSubdirectories(t *testing.T) {
	h := newHarness(t)
	h.write(exchange.InFile, `{"descriptions":["foo0"]}`)
	sub := exchange.RequestID([]byte(`{"descriptions":["bar0","bar1"]}`))
	h.write(filepath.Join(sub, exchange.InFile), `{"descriptions":["bar0","bar1"]}`)
	h.write(filepath.Join("req-empty", exchange.InFile), `{"descriptions":[]}`)
	if err := os.Mkdir(h.path("not-yet"), 0o755); err != nil {
		t.Fatal(err)
	}
	h.write(exchange.AvailabilityFile, "ONLINE")
	h.write(filepath.Join(sub, exchange.AvailabilityFile), "OFFLINE") // top level only
	h.step()
	h.wantOut(exchange.OutFile, foo0Output)
	h.wantOut(filepath.Join(sub, exchange.OutFile), `{"devices":[{"id":"bar0","properties":{"DEBUG_ECHO_DESCRIPTION":"bar0"},"mounts":[],"device_specs":[]},`+
		`{"id":"bar1","properties":{"DEBUG_ECHO_DESCRIPTION":"bar1"},"mounts":[],"device_specs":[]}]}`)
	h.wantOut(filepath.Join("req-empty", exchange.OutFile), noDevices)
	h.wantOut(filepath.Join("not-yet", exchange.OutFile), "<missing>")
	h.wantLogs("devices bar0, bar1", "")
	h.checkSameAsRequestDirs()

	// An in.in appearing in a known sub-directory (the parent's mtime does
	// not change) is answered at the next step.
	h.write(filepath.Join("not-yet", exchange.InFile), `{"descriptions":["late"]}`)
	h.step()
	h.wantOut(filepath.Join("not-yet", exchange.OutFile), strings.ReplaceAll(foo0Output, "foo0", "late"))
	h.checkSameAsRequestDirs()

	// Offline applies to every request.
	h.write(exchange.AvailabilityFile, "OFFLINE")
	h.step()
	for _, d := range []string{"", sub, "req-empty", "not-yet"} {
		h.wantOut(filepath.Join(d, exchange.OutFile), noDevices)
	}
	h.write(exchange.AvailabilityFile, "")
	h.step()
	h.logs()

	// A sub-directory removed (the proxy ends a request) is forgotten.
	if err := os.RemoveAll(h.path(sub)); err != nil {
		t.Fatal(err)
	}
	h.step()
	h.wantLogs(h.path(sub)+": no request any more", "")
	if _, ok := h.w.requests[h.path(sub)]; ok {
		t.Fatal("removed sub-directory still tracked")
	}
	h.checkSameAsRequestDirs()

	// One created while the directory's modification time looks unchanged
	// (a coarse file system) is found by the periodic listing.
	fi, err := os.Stat(h.dir)
	if err != nil {
		t.Fatal(err)
	}
	h.write(filepath.Join("req-hidden", exchange.InFile), `{"descriptions":["h"]}`)
	if err := os.Chtimes(h.dir, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	h.now = h.now.Add(rescanEvery)
	h.step()
	h.wantOut(filepath.Join("req-hidden", exchange.OutFile), strings.ReplaceAll(foo0Output, "foo0", "h"))
	h.checkSameAsRequestDirs()
}

// checkSameAsRequestDirs checks that the watcher serves the directories the
// protocol says it should.
func (h *harness) checkSameAsRequestDirs() {
	h.t.Helper()
	want, err := exchange.RequestDirs(h.dir)
	if err != nil {
		h.t.Fatal(err)
	}
	var got []string
	for d := range h.w.requests {
		got = append(got, d)
	}
	for _, d := range want {
		if _, ok := h.w.requests[d]; !ok || len(got) != len(want) {
			h.t.Fatalf("watcher serves %v, RequestDirs says %v", got, want)
		}
	}
}

func TestWatcherKeepsMatchingOutput(t *testing.T) {
	h := newHarness(t)
	h.write(exchange.InFile, `{"descriptions":["foo0"]}`)
	h.write(exchange.OutFile, foo0Output) // from a previous run
	st := h.stampOf(exchange.OutFile)
	h.step()
	if h.stampOf(exchange.OutFile) != st {
		t.Fatal("a matching out.out was rewritten at start")
	}
	h.wantLogs("", "")
}

func TestWatcherOfflineAtStart(t *testing.T) {
	h := newHarness(t)
	h.write(exchange.AvailabilityFile, "OFFLINE")
	h.write(exchange.InFile, `{"descriptions":["foo0"]}`)
	h.step()
	h.wantOut(exchange.OutFile, noDevices)
	h.wantLogs("holds OFFLINE", "")
	if got := h.out(exchange.AvailabilityFile); got != "OFFLINE" {
		t.Fatalf("availability file changed to %q", got)
	}
}

func TestWatcherMissingDirectory(t *testing.T) {
	h := newHarness(t)
	h.w.dir = filepath.Join(h.dir, "wde-dir")
	for range 3 {
		h.step()
	}
	h.wantLogs("", "wde-dir is missing")
	h.write(filepath.Join("wde-dir", exchange.InFile), `{"descriptions":["foo0"]}`)
	h.step()
	h.wantOut(filepath.Join("wde-dir", exchange.OutFile), foo0Output)
	h.wantLogs("wrote", "")
}

func TestWatcherUnwritableDirectory(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root writes anywhere")
	}
	h := newHarness(t)
	h.write(filepath.Join("ro", exchange.InFile), `{"descriptions":["foo0"]}`)
	if err := os.Chmod(h.path("ro"), 0o555); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(h.path("ro"), 0o755) })
	for range 3 {
		h.step()
	}
	_, errs := h.logs()
	if strings.Count(errs, "\n") != 1 || !strings.Contains(errs, "permission denied") {
		t.Fatalf("stderr %q, want one line about the permission", errs)
	}
}

func TestParseConfig(t *testing.T) {
	env := func(kv map[string]string) func(string) string {
		return func(k string) string { return kv[k] }
	}
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		want    config
		wantErr string
	}{
		{name: "defaults", args: []string{"debug-echo"}, want: config{dir: "/tmp/wde-dir", interval: 100 * time.Millisecond}},
		{name: "no argv0", want: config{dir: "/tmp/wde-dir", interval: 100 * time.Millisecond}},
		{name: "env dir", args: []string{"x"}, env: map[string]string{"WDE_DIR": "/e"}, want: config{dir: "/e", interval: 100 * time.Millisecond}},
		{name: "arg wins", args: []string{"x", "/a"}, env: map[string]string{"WDE_DIR": "/e"}, want: config{dir: "/a", interval: 100 * time.Millisecond}},
		{name: "interval", args: []string{"x"}, env: map[string]string{"DEBUG_ECHO_POLL_INTERVAL": "2s"}, want: config{dir: "/tmp/wde-dir", interval: 2 * time.Second}},
		{name: "bad interval", args: []string{"x"}, env: map[string]string{"DEBUG_ECHO_POLL_INTERVAL": "soon"}, wantErr: "DEBUG_ECHO_POLL_INTERVAL"},
		{name: "zero interval", args: []string{"x"}, env: map[string]string{"DEBUG_ECHO_POLL_INTERVAL": "0s"}, wantErr: "not positive"},
		{name: "too many", args: []string{"x", "/a", "/b"}, wantErr: "too many arguments"},
		{name: "empty dir", args: []string{"x", ""}, wantErr: "empty directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseConfig(tt.args, env(tt.env))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parseConfig = %+v, %v; want an error containing %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("parseConfig = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

// syncBuilder is a strings.Builder safe for the test and run's goroutine.
type syncBuilder struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuilder) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuilder) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestRun(t *testing.T) {
	dir := t.TempDir()
	getenv := func(k string) string {
		return map[string]string{"DEBUG_ECHO_POLL_INTERVAL": "10ms"}[k]
	}
	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr syncBuilder
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"debug-echo", dir}, getenv, &stdout, &stderr) }()
	if err := exchange.WriteFileAtomic(filepath.Join(dir, exchange.InFile), []byte(`{"descriptions":["foo0"]}`)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(filepath.Join(dir, exchange.OutFile))
		if string(b) == foo0Output {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no out.out; stdout %q, stderr %q", stdout.String(), stderr.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("run = %d", code)
	}
	if want := "debugEcho discovery handler watching " + dir + " every 10ms\n"; !strings.HasPrefix(stdout.String(), want) {
		t.Errorf("stdout %q, want it to start with %q", stdout.String(), want)
	}

	var errs strings.Builder
	if code := run(context.Background(), []string{"debug-echo", "a", "b"}, getenv, &strings.Builder{}, &errs); code != 2 || !strings.Contains(errs.String(), "usage") {
		t.Errorf("bad arguments: code %d, stderr %q", code, errs.String())
	}
}
