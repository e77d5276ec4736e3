package agent

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	pluginapi "k8s.io/kubelet/pkg/apis/deviceplugin/v1beta1"

	"github.com/wasilet/wasilet/internal/grpcsock"
)

// KubeletSocket is the kubelet's registration socket in the plugin directory.
const KubeletSocket = "kubelet.sock"

// allocator answers one container's Allocate for the device ids the kubelet
// chose from the plugin's list.
type allocator func(ctx context.Context, ids []string) (*pluginapi.ContainerAllocateResponse, error)

// pluginServer is one device plugin (deviceplugin v1beta1) for one extended
// resource: a gRPC server on <dir>/<name>-<unixSecs>.sock registered at the
// kubelet's socket, streaming its device list on every change.
type pluginServer struct {
	name     string // instance or configuration name, the socket's prefix
	resource string // akri.sh/<name>
	dir      string
	alloc    allocator
	log      *slog.Logger

	mu      sync.Mutex
	devices []*pluginapi.Device
	changed chan struct{} // closed and replaced when devices change
	srv     *grpcsock.Server
	sock    string
	stopped bool
}

func newPluginServer(dir, name string, alloc allocator, log *slog.Logger) *pluginServer {
	return &pluginServer{
		name:     name,
		resource: resourceName(name),
		dir:      dir,
		alloc:    alloc,
		log:      log.With("resource", resourceName(name)),
		changed:  make(chan struct{}),
	}
}

// socketName is <name>-<unixSecs>.sock, as Akri names its plugin sockets,
// unless that path in p.dir would be longer than a unix socket path may be
// (a long Instance name in a deep device-plugins directory): then the name
// is cut to fit and followed by a hash of the whole name, <prefix>-<fnv32
// hex>-<unixSecs>.sock, still unique per resource.
func (p *pluginServer) socketName(now time.Time) string {
	tail := "-" + strconv.FormatInt(now.Unix(), 10) + ".sock"
	name := p.name
	if room := grpcsock.MaxPathLen - len(p.dir) - 1 - len(tail); len(name) > room {
		h := fnv.New32a()
		h.Write([]byte(name))
		sum := fmt.Sprintf("-%08x", h.Sum32())
		if keep := room - len(sum); keep > 0 {
			name = name[:keep] + sum
		}
	}
	return name + tail
}

// errPluginStopped is serve's answer once the plugin was stopped.
var errPluginStopped = errors.New("device plugin stopped")

// serve (re)starts the gRPC server on a new socket unless one is serving and
// its file still exists (the kubelet removes plugin sockets when it starts).
func (p *pluginServer) serve() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return errPluginStopped
	}
	if p.srv != nil {
		if fileExists(p.sock) {
			return nil
		}
		_ = p.srv.Stop()
		p.srv = nil
	}
	sock := filepath.Join(p.dir, p.socketName(time.Now()))
	if err := grpcsock.CheckPath(sock); err != nil {
		return err
	}
	ln, err := grpcsock.Listen(sock)
	if err != nil {
		return err
	}
	gs := grpc.NewServer()
	pluginapi.RegisterDevicePluginServer(gs, &pluginRPC{p: p})
	p.srv = grpcsock.Serve(gs, ln, sock, p.log, "device plugin server")
	p.sock = sock
	return nil
}

// register serves (if needed) and registers with the kubelet.
func (p *pluginServer) register(ctx context.Context) error {
	if err := p.serve(); err != nil {
		return fmt.Errorf("serve %s: %w", p.resource, err)
	}
	p.mu.Lock()
	endpoint := filepath.Base(p.sock)
	p.mu.Unlock()
	conn, err := grpc.NewClient("unix://"+filepath.Join(p.dir, KubeletSocket), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err = pluginapi.NewRegistrationClient(conn).Register(ctx, &pluginapi.RegisterRequest{
		Version:      pluginapi.Version,
		Endpoint:     endpoint,
		ResourceName: p.resource,
		Options:      &pluginapi.DevicePluginOptions{},
	})
	if err != nil {
		return fmt.Errorf("register %s with the kubelet: %w", p.resource, err)
	}
	p.log.Debug("device plugin registered", "endpoint", endpoint)
	return nil
}

// setDevices replaces the device list; streams see it at once.
func (p *pluginServer) setDevices(devs []*pluginapi.Device) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if slices.EqualFunc(p.devices, devs, func(a, b *pluginapi.Device) bool { return proto.Equal(a, b) }) {
		return
	}
	p.devices = devs
	close(p.changed)
	p.changed = make(chan struct{})
}

// stop ends the server (the kubelet sees the stream end and makes the
// resource unallocatable) and removes its socket.
func (p *pluginServer) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stopped = true
	if p.srv != nil {
		_ = p.srv.Stop()
		p.srv = nil
	}
}

func (p *pluginServer) snapshot() ([]*pluginapi.Device, <-chan struct{}, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.devices, p.changed, p.stopped
}

// pluginRPC is the gRPC face of a pluginServer.
type pluginRPC struct {
	pluginapi.UnimplementedDevicePluginServer
	p *pluginServer
}

func (r *pluginRPC) GetDevicePluginOptions(context.Context, *pluginapi.Empty) (*pluginapi.DevicePluginOptions, error) {
	return &pluginapi.DevicePluginOptions{}, nil
}

func (r *pluginRPC) ListAndWatch(_ *pluginapi.Empty, s grpc.ServerStreamingServer[pluginapi.ListAndWatchResponse]) error {
	p := r.p
	for {
		devs, changed, stopped := p.snapshot()
		if stopped {
			return nil
		}
		if err := s.Send(&pluginapi.ListAndWatchResponse{Devices: devs}); err != nil {
			return err
		}
		select {
		case <-changed:
		case <-s.Context().Done():
			return nil
		}
	}
}

func (r *pluginRPC) GetPreferredAllocation(context.Context, *pluginapi.PreferredAllocationRequest) (*pluginapi.PreferredAllocationResponse, error) {
	return nil, status.Error(codes.Unimplemented, "GetPreferredAllocation is not offered")
}

func (r *pluginRPC) Allocate(ctx context.Context, req *pluginapi.AllocateRequest) (*pluginapi.AllocateResponse, error) {
	p := r.p
	resp := &pluginapi.AllocateResponse{}
	for _, c := range req.GetContainerRequests() {
		cr, err := p.alloc(ctx, c.GetDevicesIds())
		if err != nil {
			p.log.Warn("allocate refused", "devices", c.GetDevicesIds(), "err", err)
			if _, ok := status.FromError(err); ok {
				return nil, err
			}
			return nil, status.Error(codes.Unknown, err.Error())
		}
		resp.ContainerResponses = append(resp.ContainerResponses, cr)
	}
	return resp, nil
}

func (r *pluginRPC) PreStartContainer(context.Context, *pluginapi.PreStartContainerRequest) (*pluginapi.PreStartContainerResponse, error) {
	return &pluginapi.PreStartContainerResponse{}, nil
}

func resourceName(name string) string { return "akri.sh/" + name }
