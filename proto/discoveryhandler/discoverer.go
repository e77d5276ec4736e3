package discoveryhandler

import (
	"context"

	v0 "github.com/wasilet/wasilet/proto/v0"
)

// Discoverer finds the devices one Configuration asks for. The agent opens one
// Discover stream per Configuration naming the DH, so Discover may be called
// concurrently.
type Discoverer interface {
	// Discover sends the complete current device list with send (each call
	// replaces the previous list; an empty list means no device), first as
	// soon as it is known and then whenever it changes, until ctx ends (the
	// agent closed the stream, or Run is stopping) or send fails.
	//
	// It returns ctx.Err() or the error of send when those end it. Any other
	// error becomes the stream's gRPC status through [ToGRPC]; return an
	// error marked as invalid argument (see ToGRPC) for discovery details
	// that cannot be used. send must not be called after Discover returns.
	Discover(ctx context.Context, req *v0.DiscoverRequest, send func([]*v0.Device) error) error
}

// Validator is an optional interface of a [Discoverer]. When a Discoverer has
// it, Validate is called before Discover: an error fails the stream at once,
// and success sends the response headers before the first device list. The
// Rust agent waits for those headers before it handles the next
// Configuration, so a Discoverer whose first list can take long should
// implement Validator.
type Validator interface {
	Validate(req *v0.DiscoverRequest) error
}

// DiscovererFunc adapts a function to a [Discoverer].
type DiscovererFunc func(ctx context.Context, req *v0.DiscoverRequest, send func([]*v0.Device) error) error

// Discover calls f.
func (f DiscovererFunc) Discover(ctx context.Context, req *v0.DiscoverRequest, send func([]*v0.Device) error) error {
	return f(ctx, req, send)
}

var _ Discoverer = DiscovererFunc(nil)
