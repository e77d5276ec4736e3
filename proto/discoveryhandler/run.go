package discoveryhandler

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"

	"google.golang.org/grpc"

	v0 "github.com/wasilet/wasilet/proto/v0"
)

// Run serves d as the DH described by opts and keeps it registered with the
// agent until ctx ends; then it stops serving, cancelling the context of open
// Discover calls and waiting for them to return, removes its socket and
// returns nil. It returns an error if opts are invalid
// or the DH cannot listen or serve.
func Run(ctx context.Context, opts Options, d Discoverer) (retErr error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	log := opts.Logger.With("handler", opts.Name)
	lis, sock, err := listen(opts)
	if err != nil {
		return err
	}
	reg := newRegistrar(opts, log)
	// WaitForHandlers: Stop returns once every Discover call has returned.
	srv := grpc.NewServer(grpc.WaitForHandlers(true))
	v0.RegisterDiscoveryHandlerServer(srv, &server{
		ctx: ctx, d: d, log: log, lost: reg.again,
	})
	log.Info("serving discovery handler", "endpoint", opts.registration().GetEndpoint())

	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	regDone := make(chan struct{})
	go func() {
		defer close(regDone)
		reg.run(ctx)
	}()

	select {
	case <-ctx.Done():
	case err := <-served:
		retErr = fmt.Errorf("serve discovery handler: %w", err)
	}
	cancel()
	// Stop, not GracefulStop: Discover streams last until the agent ends them.
	srv.Stop()
	<-regDone
	if retErr == nil {
		<-served
	}
	if sock != nil {
		removeOwnSocket(opts.SocketPath(), sock, log)
	}
	log.Info("discovery handler stopped")
	return retErr
}

// listen opens the DH's endpoint. In UDS mode it creates the directory,
// removes whatever a previous run left at the socket path, as upstream does,
// and returns the identity of the socket it created.
func listen(opts Options) (net.Listener, os.FileInfo, error) {
	network, addr := opts.listenAddress()
	if network != "unix" {
		lis, err := net.Listen(network, addr)
		return lis, nil, err
	}
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, nil, err
	}
	if err := os.Remove(addr); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, nil, fmt.Errorf("remove stale socket: %w", err)
	}
	lis, err := net.Listen(network, addr)
	if err != nil {
		return nil, nil, err
	}
	// Run removes the socket itself, only if it is still ours.
	lis.(*net.UnixListener).SetUnlinkOnClose(false)
	fi, err := os.Stat(addr)
	if err != nil {
		lis.Close()
		return nil, nil, err
	}
	return lis, fi, nil
}

// removeOwnSocket removes path unless another process has replaced it with a
// socket of its own since we listened (a new DH of the same name took over).
func removeOwnSocket(path string, ours os.FileInfo, log *slog.Logger) {
	fi, err := os.Stat(path)
	if err != nil || !sameSocket(fi, ours) {
		return
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		log.Warn("remove socket", "path", path, "error", err)
	}
}
