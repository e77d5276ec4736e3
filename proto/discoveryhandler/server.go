package discoveryhandler

import (
	"context"
	"log/slog"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	v0 "github.com/wasilet/wasilet/proto/v0"
)

// server is the DiscoveryHandler service: one Discoverer call per stream.
type server struct {
	v0.UnimplementedDiscoveryHandlerServer
	ctx  context.Context // Run's: done when the DH is stopping
	d    Discoverer
	log  *slog.Logger
	lost func() // asks for a new registration
}

var _ v0.DiscoveryHandlerServer = (*server)(nil)

func (s *server) Discover(req *v0.DiscoverRequest, stream grpc.ServerStreamingServer[v0.DiscoverResponse]) error {
	ctx := stream.Context()
	log := s.log.With("details", req.GetDiscoveryDetails())
	if v, ok := s.d.(Validator); ok {
		if err := v.Validate(req); err != nil {
			log.Info("discover: rejected request", "error", err)
			return ToGRPC(err)
		}
		// Answer at once: the agent waits for the headers before going on.
		if err := stream.SendHeader(nil); err != nil {
			return err
		}
	}
	log.Debug("discover: stream opened")
	var (
		mu   sync.Mutex
		done bool
		sent int
	)
	send := func(devices []*v0.Device) error {
		mu.Lock()
		defer mu.Unlock()
		if done {
			return status.Error(codes.Internal, "discovery handler sent after Discover returned")
		}
		if err := stream.Send(&v0.DiscoverResponse{Devices: devices}); err != nil {
			return err
		}
		sent++
		log.Debug("discover: sent devices", "devices", len(devices), "update", sent)
		return nil
	}
	err := s.d.Discover(ctx, req, send)
	mu.Lock()
	done = true
	mu.Unlock()
	switch {
	case s.ctx.Err() != nil:
		log.Debug("discover: stream ended: discovery handler stopping")
		return status.Error(codes.Unavailable, "discovery handler stopping")
	case ctx.Err() != nil:
		// The agent dropped the stream: it may have restarted or be about to
		// forget the DH, so register again, as upstream DHs do.
		log.Info("discover: agent closed the stream; registering again")
		s.lost()
		return status.FromContextError(ctx.Err()).Err()
	case err != nil:
		log.Info("discover: stream failed", "error", err)
		return ToGRPC(err)
	}
	log.Debug("discover: stream ended")
	return nil
}
