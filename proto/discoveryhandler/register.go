package discoveryhandler

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	v0 "github.com/wasilet/wasilet/proto/v0"
)

// registerTimeout bounds one registration call; the agent answers at once.
const registerTimeout = 10 * time.Second

// Register makes one attempt at registering req with the agent whose
// registration socket is socket. [Run] calls it, retrying; it is exported for
// programs that serve the DiscoveryHandler service themselves.
func Register(ctx context.Context, socket string, req *v0.RegisterDiscoveryHandlerRequest) error {
	// The address is only used to pick the unix resolver; the authority the
	// agent sees is "localhost".
	conn, err := grpc.NewClient("unix://"+socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, registerTimeout)
	defer cancel()
	if _, err := v0.NewRegistrationClient(conn).RegisterDiscoveryHandler(ctx, req); err != nil {
		return fmt.Errorf("register with agent at %s: %w", socket, err)
	}
	return nil
}

// registrar keeps the DH registered: it registers until the agent answers,
// and again when asked (a Discover stream was dropped) or when the agent's
// socket is replaced (the agent restarted).
type registrar struct {
	socket   string
	req      *v0.RegisterDiscoveryHandlerRequest
	retry    time.Duration
	interval time.Duration
	log      *slog.Logger
	wake     chan struct{}
}

func newRegistrar(opts Options, log *slog.Logger) *registrar {
	return &registrar{
		socket:   opts.RegistrationSocket(),
		req:      opts.registration(),
		retry:    opts.RegisterRetry,
		interval: opts.WatchInterval,
		log:      log,
		wake:     make(chan struct{}, 1),
	}
}

// again asks for a new registration; it never blocks, and requests made
// before the registrar gets to them count once.
func (r *registrar) again() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// run registers now and whenever needed, until ctx ends.
func (r *registrar) run(ctx context.Context) {
	watch := time.NewTicker(r.interval)
	defer watch.Stop()
	retry := time.NewTimer(0) // the first attempt is now
	defer retry.Stop()
	var (
		pending    = true      // a registration is due
		registered os.FileInfo // the agent socket we last registered with
		tried      os.FileInfo // the agent socket of the last failed attempt
		failures   int
	)
	attempt := func() {
		fi, _ := os.Stat(r.socket) // taken before the call: a change after it is seen next tick
		err := Register(ctx, r.socket, r.req)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			failures++
			// The first failure is worth an Info line; the agent may simply be
			// starting. Later ones repeat every retry period.
			lvl := slog.LevelDebug
			if failures == 1 {
				lvl = slog.LevelInfo
			}
			r.log.Log(ctx, lvl, "agent not reachable; will retry", "socket", r.socket, "retry", r.retry, "error", err)
			next := r.retry
			if fi != nil && (tried == nil || !sameSocket(fi, tried)) {
				// The first failure against a socket that is there: the agent
				// may have bound it and not yet listened (connection refused
				// in between), so try once more at the next watch tick rather
				// than a whole retry period later.
				next = min(r.interval, r.retry)
			}
			tried = fi
			retry.Reset(next)
			return
		}
		r.log.Info("registered with agent", "endpoint", r.req.GetEndpoint(), "endpointType", r.req.GetEndpointType().String(), "shared", r.req.GetShared())
		pending, failures, registered, tried = false, 0, fi, nil
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-retry.C:
			if pending {
				attempt()
			}
		case <-r.wake:
			pending = true
			retry.Stop()
			attempt()
		case <-watch.C:
			fi, err := os.Stat(r.socket)
			if err != nil {
				continue // no agent now; its new socket will show up here
			}
			switch {
			case !pending && (registered == nil || !sameSocket(fi, registered)):
				r.log.Info("agent registration socket replaced; registering again")
				pending = true
				attempt()
			case pending && (tried == nil || !sameSocket(fi, tried)):
				// The agent's socket appeared or changed while we waited to
				// retry: try now rather than at the end of the retry period.
				retry.Stop()
				attempt()
			}
		}
	}
}

// sameSocket tells whether a and b describe the same socket file. The inode
// alone is not enough: a socket recreated at once after removal often gets
// the freed inode number back, but not the same modification time.
func sameSocket(a, b os.FileInfo) bool {
	return os.SameFile(a, b) && a.ModTime().Equal(b.ModTime())
}
