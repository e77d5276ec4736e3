package grpcsock

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"

	"google.golang.org/grpc"
)

// MaxPathLen is the longest unix socket path Linux accepts (sun_path is 108
// bytes including the terminating NUL).
const MaxPathLen = 107

// CheckPath fails if path is too long to be a unix socket.
func CheckPath(path string) error {
	if len(path) > MaxPathLen {
		return fmt.Errorf("socket path %s is longer than %d bytes", path, MaxPathLen)
	}
	return nil
}

// Listen creates path's directory (0750), removes a stale socket left at
// path and listens there. A failed mkdir is returned as is; the other
// errors say which step failed.
func Listen(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, err
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("remove stale socket: %w", err)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	return ln, nil
}

// Server is a grpc.Server serving a unix socket in the background.
type Server struct {
	srv  *grpc.Server
	path string
	done chan struct{}
}

// Serve serves srv on ln (listening on the socket path) in a goroutine. If
// srv.Serve ends with an error, it is logged on log as "<name> ended".
func Serve(srv *grpc.Server, ln net.Listener, path string, log *slog.Logger, name string) *Server {
	s := &Server{srv: srv, path: path, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		if err := srv.Serve(ln); err != nil {
			log.Error(name+" ended", "err", err)
		}
	}()
	return s
}

// Stop stops the gRPC server (closing its listener and connections and
// cancelling running calls), waits for Serve to return and removes the
// socket file. It returns the removal's error, if any other than the file
// being gone already. Call it once.
func (s *Server) Stop() error {
	s.srv.Stop()
	<-s.done
	if err := os.Remove(s.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// ErrStarted is Endpoint.Start's answer while the endpoint is serving.
var ErrStarted = errors.New("already started")

// Endpoint is a gRPC server on the unix socket Path that can be started and
// stopped from any goroutine; Start fails with ErrStarted while it serves.
type Endpoint struct {
	Path string
	// Name and Log say where a failing Serve is logged ("<Name> ended").
	Name string
	Log  *slog.Logger

	mu  sync.Mutex
	srv *Server
}

// Start listens on Path (see Listen) and serves the server newServer
// returns; newServer is called only once the socket is listening.
func (e *Endpoint) Start(newServer func() *grpc.Server) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.srv != nil {
		return ErrStarted
	}
	ln, err := Listen(e.Path)
	if err != nil {
		return err
	}
	e.srv = Serve(newServer(), ln, e.Path, e.Log, e.Name)
	return nil
}

// Stop stops a started endpoint (see Server.Stop) and does nothing
// otherwise.
func (e *Endpoint) Stop() error {
	e.mu.Lock()
	srv := e.srv
	e.srv = nil
	e.mu.Unlock()
	if srv == nil {
		return nil
	}
	return srv.Stop()
}
