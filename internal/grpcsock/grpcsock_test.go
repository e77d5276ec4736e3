package grpcsock

import (
	"bytes"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc"
)

func TestCheckPath(t *testing.T) {
	if err := CheckPath("/" + strings.Repeat("a", MaxPathLen-1)); err != nil {
		t.Fatalf("107-byte path: %v", err)
	}
	long := "/" + strings.Repeat("a", MaxPathLen)
	err := CheckPath(long)
	if err == nil || err.Error() != "socket path "+long+" is longer than 107 bytes" {
		t.Fatalf("108-byte path: got %v", err)
	}
}

func TestListenServeStop(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "sub")
	path := filepath.Join(dir, "x.sock")
	// A stale file at the socket path is replaced.
	if err := os.MkdirAll(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("stale"), 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := Listen(path)
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	s := Serve(grpc.NewServer(), ln, path, slog.New(slog.DiscardHandler), "test server")
	fi, err := os.Stat(path)
	if err != nil || fi.Mode()&fs.ModeSocket == 0 {
		t.Fatalf("socket at %s: %v, %v", path, fi, err)
	}
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	c.Close()
	if err := s.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("socket still there after Stop: %v", err)
	}
}

func TestListenErrors(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	// The directory cannot be created: the mkdir error comes back unwrapped.
	_, err := Listen(filepath.Join(file, "x.sock"))
	if err == nil || !strings.HasPrefix(err.Error(), "mkdir "+file+": ") {
		t.Fatalf("mkdir under a file: got %v", err)
	}
	// A directory at the socket path is not removed as a stale socket.
	sub := filepath.Join(dir, "sub.sock")
	if err := os.MkdirAll(filepath.Join(sub, "child"), 0o750); err != nil {
		t.Fatal(err)
	}
	_, err = Listen(sub)
	if err == nil || !strings.HasPrefix(err.Error(), "remove stale socket: ") {
		t.Fatalf("non-empty directory at the socket path: got %v", err)
	}
}

func TestServeLogsError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.sock")
	ln, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	ln.Close() // Serve fails at once
	var logs bytes.Buffer
	s := Serve(grpc.NewServer(), ln, path, slog.New(slog.NewTextHandler(&logs, nil)), "test server")
	if err := s.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if !strings.Contains(logs.String(), `msg="test server ended"`) {
		t.Fatalf("Serve error not logged: %q", logs.String())
	}
}

func TestEndpoint(t *testing.T) {
	path := filepath.Join(t.TempDir(), "e.sock")
	e := &Endpoint{Path: path, Name: "test endpoint", Log: slog.New(slog.DiscardHandler)}
	if err := e.Stop(); err != nil {
		t.Fatalf("Stop before Start: %v", err)
	}
	calls := 0
	newServer := func() *grpc.Server { calls++; return grpc.NewServer() }
	if err := e.Start(newServer); err != nil {
		t.Fatalf("Start: %v", err)
	}
	if err := e.Start(newServer); err != ErrStarted {
		t.Fatalf("second Start = %v, want ErrStarted", err)
	}
	if calls != 1 {
		t.Fatalf("newServer called %d times, want 1", calls)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode()&fs.ModeSocket == 0 {
		t.Fatalf("socket at %s: %v, %v", path, fi, err)
	}
	if err := e.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("socket still there after Stop: %v", err)
	}
	if err := e.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	// Stopped, it can serve again.
	if err := e.Start(newServer); err != nil {
		t.Fatalf("Start after Stop: %v", err)
	}
	if err := e.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	// A failed listen leaves it stopped and never builds a server.
	bad := &Endpoint{Path: filepath.Join(path, "x", "y.sock"), Name: "bad", Log: slog.New(slog.DiscardHandler)}
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := bad.Start(newServer); err == nil || calls != 2 {
		t.Fatalf("Start under a file = %v (newServer calls %d), want an error and 2", err, calls)
	}
}
