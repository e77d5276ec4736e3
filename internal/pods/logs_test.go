package pods

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/virtual-kubelet/virtual-kubelet/node/api"
)

func fixedClock(start time.Time) func() time.Time {
	var n atomic.Int64
	return func() time.Time { return start.Add(time.Duration(n.Add(1)) * time.Millisecond) }
}

func TestLogFileFormat(t *testing.T) {
	path := filepath.Join(t.TempDir(), "0.log")
	lf, err := createLogFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lf.now = fixedClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	io.WriteString(lf.Stream(0), "hello\nwor")
	io.WriteString(lf.Stream(1), "oops\n")
	io.WriteString(lf.Stream(0), "ld\nno newline")
	if err := lf.Close(); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	want := "2026-01-02T03:04:05.001Z stdout F hello\n" +
		"2026-01-02T03:04:05.002Z stderr F oops\n" +
		"2026-01-02T03:04:05.003Z stdout F world\n" +
		"2026-01-02T03:04:05.004Z stdout F no newline\n"
	if string(data) != want {
		t.Fatalf("log file:\n%s\nwant:\n%s", data, want)
	}
	if _, err := lf.Stream(0).Write([]byte("x")); err == nil {
		t.Fatal("write after close succeeded")
	}
}

func TestLogFilePartialLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "0.log")
	lf, err := createLogFile(path)
	if err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("a", maxLogLine) + strings.Repeat("b", 100)
	io.WriteString(lf.Stream(0), long+"\n")
	lf.Close()
	data, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("got %d records, want 2", len(lines))
	}
	r0, err := parseLogRecord([]byte(lines[0]))
	if err != nil || !r0.Partial || len(r0.Content) != maxLogLine {
		t.Fatalf("first record: partial=%v len=%d err=%v", r0.Partial, len(r0.Content), err)
	}
	r1, _ := parseLogRecord([]byte(lines[1]))
	if r1.Partial || string(r1.Content) != strings.Repeat("b", 100) {
		t.Fatalf("second record: %+v", r1)
	}
	// The reader joins them into one line.
	var out bytes.Buffer
	if err := (&logReader{path: path}).stream(context.Background(), &out); err != nil {
		t.Fatal(err)
	}
	if out.String() != long+"\n" {
		t.Fatalf("joined line has %d bytes, want %d", out.Len(), len(long)+1)
	}
}

func writeLog(t *testing.T, lines ...string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "0.log")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLogReaderOptions(t *testing.T) {
	path := writeLog(t,
		"2026-01-02T03:04:05.1Z stdout F one",
		"2026-01-02T03:04:06.2Z stderr F two",
		"garbage line",
		"2026-01-02T03:04:07.3Z stdout P thr",
		"2026-01-02T03:04:07.4Z stdout F ee",
		"2026-01-02T03:04:08.5Z stdout F four",
	)
	cases := []struct {
		name string
		opts api.ContainerLogOpts
		want string
	}{
		{"all", api.ContainerLogOpts{}, "one\ntwo\nthree\nfour\n"},
		{"tail", api.ContainerLogOpts{Tail: 2}, "three\nfour\n"},
		{"timestamps", api.ContainerLogOpts{Tail: 1, Timestamps: true}, "2026-01-02T03:04:08.5Z four\n"},
		{"limit", api.ContainerLogOpts{LimitBytes: 6}, "one\ntw"},
		{"since", api.ContainerLogOpts{SinceTime: time.Date(2026, 1, 2, 3, 4, 7, 0, time.UTC)}, "three\nfour\n"},
	}
	for _, c := range cases {
		var out bytes.Buffer
		if err := (&logReader{path: path, opts: c.opts}).stream(context.Background(), &out); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if out.String() != c.want {
			t.Errorf("%s: got %q, want %q", c.name, out.String(), c.want)
		}
	}
}

func TestLogReaderFollow(t *testing.T) {
	path := filepath.Join(t.TempDir(), "0.log")
	lf, err := createLogFile(path)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(lf.Stream(0), "first\n")
	var running atomic.Bool
	running.Store(true)
	pr, pw := io.Pipe()
	r := &logReader{path: path, opts: api.ContainerLogOpts{Follow: true}, running: running.Load, poll: 10 * time.Millisecond}
	done := make(chan error, 1)
	go func() { err := r.stream(context.Background(), pw); pw.CloseWithError(err); done <- err }()
	buf := make([]byte, 100)
	n, _ := io.ReadAtLeast(pr, buf, len("first\n"))
	if string(buf[:n]) != "first\n" {
		t.Fatalf("got %q", buf[:n])
	}
	io.WriteString(lf.Stream(1), "second")
	lf.Close() // flushes "second" as a full line
	running.Store(false)
	rest, err := io.ReadAll(pr)
	if err != nil {
		t.Fatal(err)
	}
	if string(rest) != "second\n" {
		t.Fatalf("followed %q, want %q", rest, "second\n")
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("follow did not end after the container stopped")
	}
}

func TestTailForTermination(t *testing.T) {
	var lines []string
	for i := 0; i < 100; i++ {
		lines = append(lines, "2026-01-02T03:04:05Z stderr F line")
	}
	lines = append(lines, "2026-01-02T03:04:05Z stderr F last")
	got := tailForTermination(writeLog(t, lines...))
	if strings.Count(got, "\n") != 80 || !strings.HasSuffix(got, "last\n") {
		t.Fatalf("tail has %d lines: %q", strings.Count(got, "\n"), got)
	}
}

func TestLogRotation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "0.log")
	lf, err := createLogFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lf.maxSize, lf.maxFiles = 200, 3
	lf.now = fixedClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	var running atomic.Bool
	running.Store(true)
	pr, pw := io.Pipe()
	r := &logReader{path: path, opts: api.ContainerLogOpts{Follow: true}, running: running.Load, poll: 5 * time.Millisecond}
	done := make(chan error, 1)
	go func() { err := r.stream(context.Background(), pw); pw.CloseWithError(err); done <- err }()
	// Each line is read back before the next is written, so the follower
	// is never more than one rotation behind (as with the kubelet, lines
	// of a file rotated twice before a follower looks are not followed).
	for i := 0; i < 40; i++ {
		line := fmt.Sprintf("line %02d\n", i)
		io.WriteString(lf.Stream(0), line)
		buf := make([]byte, len(line))
		if _, err := io.ReadFull(pr, buf); err != nil || string(buf) != line {
			t.Fatalf("line %d: got %q (%v), want %q", i, buf, err, line)
		}
	}
	lf.Close()
	running.Store(false)
	if rest, _ := io.ReadAll(pr); len(rest) != 0 {
		t.Fatalf("extra output %q", rest)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	rotated, _ := filepath.Glob(path + ".*")
	if len(rotated) != 2 {
		t.Fatalf("rotated files: %v, want 2 kept", rotated)
	}
	// A plain read serves the current file.
	var out bytes.Buffer
	if err := (&logReader{path: path}).stream(context.Background(), &out); err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(out.String(), "line 39\n") || strings.Contains(out.String(), "line 00") {
		t.Fatalf("current file: %q", out.String())
	}
}
