package grpcsocktest

import (
	"os"
	"testing"
)

// Server is what such a component offers.
type Server interface {
	Start() error
	Stop()
	SocketPath() string
}

// CheckLifecycle checks the contract on s, which must be started; s is left
// started (the caller's cleanup stops it).
func CheckLifecycle(t testing.TB, s Server, component string) {
	t.Helper()
	if err := s.Start(); err == nil || err.Error() != component+": already started" {
		t.Fatalf("second Start = %v, want %q", err, component+": already started")
	}
	s.Stop()
	if _, err := os.Stat(s.SocketPath()); !os.IsNotExist(err) {
		t.Fatalf("socket %s after Stop: %v", s.SocketPath(), err)
	}
	s.Stop()
	if err := s.Start(); err != nil {
		t.Fatalf("Start after Stop: %v", err)
	}
	if _, err := os.Stat(s.SocketPath()); err != nil {
		t.Fatalf("socket after the restart: %v", err)
	}
}
