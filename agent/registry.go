package agent

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	v0 "github.com/wasilet/wasilet/proto/v0"
)

// RegistrationSocket is the agent's registration socket in the discovery
// handlers directory.
const RegistrationSocket = "agent-registration.sock"

// Handler is one registered discovery-handler endpoint.
type Handler struct {
	Name     string
	Endpoint string // a socket path (UDS) or a URL such as http://10.0.0.5:10000 (NETWORK)
	Network  bool
	Shared   bool
	// Generation increases each time the endpoint registers again, so
	// that a stream to the previous registration is restarted.
	Generation uint64
	// source is set for an in-process handler (a Wasm component): its
	// device lists come from it instead of a Discover stream; the rest of
	// the pipeline is the same.
	source *componentSource
}

// UID is <name>@<endpoint>, the key of a registration (registering again
// replaces).
func (h Handler) UID() string { return h.Name + "@" + h.Endpoint }

// dial connects to the handler's Discover service.
func (h Handler) dial() (*grpc.ClientConn, error) {
	target := h.Endpoint
	if h.Network {
		u, err := url.Parse(h.Endpoint)
		if err != nil || u.Host == "" {
			return nil, fmt.Errorf("network endpoint %q is not a URL", h.Endpoint)
		}
		target = "passthrough:///" + u.Host
	} else {
		target = "unix://" + h.Endpoint
	}
	return grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()))
}

// Registry holds the registered discovery handlers and tells subscribers
// when the endpoints of a name change.
type Registry struct {
	log *slog.Logger

	mu       sync.Mutex
	handlers map[string]Handler // by UID
	gen      uint64
	subs     map[int]chan<- string
	nextSub  int
}

// NewRegistry returns an empty registry.
func NewRegistry(log *slog.Logger) *Registry {
	return &Registry{log: log, handlers: map[string]Handler{}, subs: map[int]chan<- string{}}
}

// Register adds or replaces a handler endpoint.
func (r *Registry) Register(h Handler) {
	r.mu.Lock()
	r.gen++
	h.Generation = r.gen
	_, again := r.handlers[h.UID()]
	r.handlers[h.UID()] = h
	subs := r.subscribersLocked()
	r.mu.Unlock()
	r.log.Info("discovery handler registered", "name", h.Name, "endpoint", h.Endpoint, "network", h.Network, "shared", h.Shared, "again", again)
	notify(subs, h.Name)
}

// Remove drops a handler endpoint (when it is known to be gone for good).
func (r *Registry) Remove(uid string) {
	r.mu.Lock()
	h, ok := r.handlers[uid]
	delete(r.handlers, uid)
	subs := r.subscribersLocked()
	r.mu.Unlock()
	if ok {
		r.log.Info("discovery handler removed", "name", h.Name, "endpoint", h.Endpoint)
		notify(subs, h.Name)
	}
}

// Endpoints returns the current endpoints registered under name, in UID
// order.
func (r *Registry) Endpoints(name string) []Handler {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Handler
	for _, h := range r.handlers {
		if h.Name == name {
			out = append(out, h)
		}
	}
	slices.SortFunc(out, func(a, b Handler) int { return strings.Compare(a.UID(), b.UID()) })
	return out
}

// Subscribe returns a channel that receives a handler name each time an
// endpoint of that name registers or goes; cancel stops it.
func (r *Registry) Subscribe() (<-chan string, func()) {
	ch := make(chan string, 64)
	r.mu.Lock()
	id := r.nextSub
	r.nextSub++
	r.subs[id] = ch
	r.mu.Unlock()
	return ch, func() {
		r.mu.Lock()
		delete(r.subs, id)
		r.mu.Unlock()
	}
}

func (r *Registry) subscribersLocked() []chan<- string {
	out := make([]chan<- string, 0, len(r.subs))
	for _, c := range r.subs {
		out = append(out, c)
	}
	return out
}

// notify never blocks: a subscriber whose buffer is full has a name queued
// already and re-reads the registry anyway.
func notify(subs []chan<- string, name string) {
	for _, c := range subs {
		select {
		case c <- name:
		default:
		}
	}
}

// registrationServer is the gRPC face of the registry (service
// v0.Registration on agent-registration.sock).
type registrationServer struct {
	v0.UnimplementedRegistrationServer
	reg *Registry
}

func (s *registrationServer) RegisterDiscoveryHandler(_ context.Context, req *v0.RegisterDiscoveryHandlerRequest) (*v0.Empty, error) {
	if req.GetName() == "" {
		return nil, status.Error(codes.InvalidArgument, "discovery handler name is empty")
	}
	if req.GetEndpoint() == "" {
		return nil, status.Error(codes.InvalidArgument, "discovery handler endpoint is empty")
	}
	h := Handler{Name: req.GetName(), Endpoint: req.GetEndpoint(), Shared: req.GetShared()}
	switch req.GetEndpointType() {
	case v0.RegisterDiscoveryHandlerRequest_UDS:
	case v0.RegisterDiscoveryHandlerRequest_NETWORK:
		h.Network = true
		if u, err := url.Parse(h.Endpoint); err != nil || u.Host == "" {
			return nil, status.Errorf(codes.InvalidArgument, "network endpoint %q is not a URL such as http://10.0.0.5:10000", h.Endpoint)
		}
	default:
		return nil, status.Errorf(codes.InvalidArgument, "unknown endpoint type %d", req.GetEndpointType())
	}
	s.reg.Register(h)
	return &v0.Empty{}, nil
}
