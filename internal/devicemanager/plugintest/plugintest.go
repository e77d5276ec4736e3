package plugintest

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"
	pluginapi "k8s.io/kubelet/pkg/apis/deviceplugin/v1beta1"
)

// KubeletSocket is the registration socket's name in the directory.
const KubeletSocket = "kubelet.sock"

// Plugin is one test device plugin.
type Plugin struct {
	pluginapi.UnimplementedDevicePluginServer

	dir      string
	resource string
	sockName string
	opts     *pluginapi.DevicePluginOptions

	mu        sync.Mutex
	devs      []*pluginapi.Device
	streams   map[chan struct{}]bool
	server    *grpc.Server
	preferred []*pluginapi.PreferredAllocationRequest
	allocs    []*pluginapi.AllocateRequest
	prestarts []*pluginapi.PreStartContainerRequest
	// PreferFunc answers GetPreferredAllocation (default: no preference).
	// Set it before Start.
	PreferFunc func(*pluginapi.ContainerPreferredAllocationRequest) []string
	// AllocFunc answers one container request (default: env DEV_<id>=<id>
	// and a mount /dev-<id> of <dir>/host-<id> per device). Set it before Start.
	AllocFunc func(ids []string) *pluginapi.ContainerAllocateResponse
	// AllocateError, when set, fails every Allocate (after recording it).
	AllocateError error
	watcher       *fsnotify.Watcher
}

// New returns a plugin for resource serving <dir>/<sockName> with healthy
// devices ids. Call Start, and Stop when done.
func New(dir, resource, sockName string, opts *pluginapi.DevicePluginOptions, ids ...string) *Plugin {
	p := &Plugin{dir: dir, resource: resource, sockName: sockName, opts: opts, streams: map[chan struct{}]bool{}}
	if p.opts == nil {
		p.opts = &pluginapi.DevicePluginOptions{}
	}
	for _, id := range ids {
		p.devs = append(p.devs, &pluginapi.Device{ID: id, Health: pluginapi.Healthy})
	}
	return p
}

// Socket is the plugin's socket path.
func (p *Plugin) Socket() string { return filepath.Join(p.dir, p.sockName) }

// Serve starts (or restarts) the gRPC server on the plugin socket.
func (p *Plugin) Serve() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.server != nil {
		p.server.Stop()
	}
	os.Remove(p.Socket())
	ln, err := net.Listen("unix", p.Socket())
	if err != nil {
		return fmt.Errorf("test plugin listen: %w", err)
	}
	s := grpc.NewServer()
	pluginapi.RegisterDevicePluginServer(s, p)
	p.server = s
	go s.Serve(ln)
	return nil
}

// Start serves the plugin and registers it.
func (p *Plugin) Start() error {
	if err := p.Serve(); err != nil {
		return err
	}
	if err := p.Register(pluginapi.Version); err != nil {
		return fmt.Errorf("register %s: %w", p.resource, err)
	}
	return nil
}

// Register calls Register on <dir>/kubelet.sock with the given API version.
func (p *Plugin) Register(version string) error {
	return RegisterAt(filepath.Join(p.dir, KubeletSocket), &pluginapi.RegisterRequest{
		Version: version, Endpoint: p.sockName, ResourceName: p.resource, Options: p.opts,
	})
}

// RegisterAt sends req to the registration socket kubeletSock.
func RegisterAt(kubeletSock string, req *pluginapi.RegisterRequest) error {
	conn, err := grpc.NewClient("unix://"+kubeletSock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err = pluginapi.NewRegistrationClient(conn).Register(ctx, req, grpc.WaitForReady(true))
	return err
}

// WatchKubeletRestart re-serves and re-registers whenever kubelet.sock is
// created, as the upstream sample device plugin does.
func (p *Plugin) WatchKubeletRestart() error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	if err := w.Add(p.dir); err != nil {
		w.Close()
		return err
	}
	p.mu.Lock()
	p.watcher = w
	p.mu.Unlock()
	go func() {
		for ev := range w.Events {
			if filepath.Base(ev.Name) == KubeletSocket && ev.Op&fsnotify.Create != 0 {
				if err := p.Serve(); err != nil {
					fmt.Fprintln(os.Stderr, "test plugin restart:", err)
					continue
				}
				if err := p.Register(pluginapi.Version); err != nil {
					fmt.Fprintln(os.Stderr, "test plugin re-register:", err)
				}
			}
		}
	}()
	return nil
}

// Stop stops the watcher and the server (the plugin "dies"); Start brings it back.
func (p *Plugin) Stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.watcher != nil {
		p.watcher.Close()
		p.watcher = nil
	}
	if p.server != nil {
		p.server.Stop()
		p.server = nil
	}
}

// SetDevices replaces the device list and pushes it to every stream.
func (p *Plugin) SetDevices(devs ...*pluginapi.Device) {
	p.mu.Lock()
	p.devs = devs
	for ch := range p.streams {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	p.mu.Unlock()
}

func (p *Plugin) GetDevicePluginOptions(context.Context, *pluginapi.Empty) (*pluginapi.DevicePluginOptions, error) {
	return proto.Clone(p.opts).(*pluginapi.DevicePluginOptions), nil
}

func (p *Plugin) ListAndWatch(_ *pluginapi.Empty, s grpc.ServerStreamingServer[pluginapi.ListAndWatchResponse]) error {
	ch := make(chan struct{}, 1)
	ch <- struct{}{}
	p.mu.Lock()
	p.streams[ch] = true
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.streams, ch)
		p.mu.Unlock()
	}()
	for {
		select {
		case <-s.Context().Done():
			return nil
		case <-ch:
			p.mu.Lock()
			devs := p.devs
			p.mu.Unlock()
			if err := s.Send(&pluginapi.ListAndWatchResponse{Devices: devs}); err != nil {
				return err
			}
		}
	}
}

func (p *Plugin) GetPreferredAllocation(_ context.Context, r *pluginapi.PreferredAllocationRequest) (*pluginapi.PreferredAllocationResponse, error) {
	p.mu.Lock()
	p.preferred = append(p.preferred, r)
	f := p.PreferFunc
	p.mu.Unlock()
	resp := &pluginapi.PreferredAllocationResponse{}
	for _, cr := range r.ContainerRequests {
		var ids []string
		if f != nil {
			ids = f(cr)
		}
		resp.ContainerResponses = append(resp.ContainerResponses, &pluginapi.ContainerPreferredAllocationResponse{DeviceIDs: ids})
	}
	return resp, nil
}

func (p *Plugin) Allocate(_ context.Context, r *pluginapi.AllocateRequest) (*pluginapi.AllocateResponse, error) {
	p.mu.Lock()
	p.allocs = append(p.allocs, r)
	f := p.AllocFunc
	aerr := p.AllocateError
	p.mu.Unlock()
	if aerr != nil {
		return nil, aerr
	}
	resp := &pluginapi.AllocateResponse{}
	for _, cr := range r.ContainerRequests {
		if f != nil {
			resp.ContainerResponses = append(resp.ContainerResponses, f(cr.DevicesIds))
			continue
		}
		c := &pluginapi.ContainerAllocateResponse{Envs: map[string]string{}}
		for _, id := range cr.DevicesIds {
			c.Envs["DEV_"+id] = id
			c.Mounts = append(c.Mounts, &pluginapi.Mount{ContainerPath: "/dev-" + id, HostPath: filepath.Join(p.dir, "host-"+id)})
		}
		resp.ContainerResponses = append(resp.ContainerResponses, c)
	}
	return resp, nil
}

func (p *Plugin) PreStartContainer(_ context.Context, r *pluginapi.PreStartContainerRequest) (*pluginapi.PreStartContainerResponse, error) {
	p.mu.Lock()
	p.prestarts = append(p.prestarts, r)
	p.mu.Unlock()
	return &pluginapi.PreStartContainerResponse{}, nil
}

// Calls returns the requests received so far.
func (p *Plugin) Calls() (preferred []*pluginapi.PreferredAllocationRequest, allocs []*pluginapi.AllocateRequest, prestarts []*pluginapi.PreStartContainerRequest) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]*pluginapi.PreferredAllocationRequest(nil), p.preferred...),
		append([]*pluginapi.AllocateRequest(nil), p.allocs...),
		append([]*pluginapi.PreStartContainerRequest(nil), p.prestarts...)
}

// Healthy returns healthy devices with the given ids.
func Healthy(ids ...string) []*pluginapi.Device {
	var out []*pluginapi.Device
	for _, id := range ids {
		out = append(out, &pluginapi.Device{ID: id, Health: pluginapi.Healthy})
	}
	return out
}
