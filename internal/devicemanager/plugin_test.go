package devicemanager

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"
	pluginapi "k8s.io/kubelet/pkg/apis/deviceplugin/v1beta1"
)

// testPlugin is a real v1beta1 device plugin served on a unix socket in the
// device-plugin directory. It records the calls it gets and, like the
// upstream sample plugin, re-registers when kubelet.sock is created again.
type testPlugin struct {
	pluginapi.UnimplementedDevicePluginServer

	t        *testing.T
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
	// preferFunc answers GetPreferredAllocation (default: no preference).
	preferFunc func(*pluginapi.ContainerPreferredAllocationRequest) []string
	// allocFunc answers one container request (default: env + mount per device).
	allocFunc func(ids []string) *pluginapi.ContainerAllocateResponse
	watcher   *fsnotify.Watcher
}

func newTestPlugin(t *testing.T, dir, resource, sockName string, opts *pluginapi.DevicePluginOptions, ids ...string) *testPlugin {
	p := &testPlugin{t: t, dir: dir, resource: resource, sockName: sockName, opts: opts, streams: map[chan struct{}]bool{}}
	if p.opts == nil {
		p.opts = &pluginapi.DevicePluginOptions{}
	}
	for _, id := range ids {
		p.devs = append(p.devs, &pluginapi.Device{ID: id, Health: pluginapi.Healthy})
	}
	t.Cleanup(p.stop)
	return p
}

func (p *testPlugin) socket() string { return filepath.Join(p.dir, p.sockName) }

// serve starts (or restarts) the gRPC server on the plugin socket.
func (p *testPlugin) serve() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.server != nil {
		p.server.Stop()
	}
	os.Remove(p.socket())
	ln, err := net.Listen("unix", p.socket())
	if err != nil {
		return fmt.Errorf("test plugin listen: %w", err)
	}
	s := grpc.NewServer()
	pluginapi.RegisterDevicePluginServer(s, p)
	p.server = s
	go s.Serve(ln)
	return nil
}

// start serves the plugin and registers it.
func (p *testPlugin) start() {
	p.t.Helper()
	if err := p.serve(); err != nil {
		p.t.Fatal(err)
	}
	if err := p.register(pluginapi.Version); err != nil {
		p.t.Fatalf("register %s: %v", p.resource, err)
	}
}

// register calls Register on kubelet.sock.
func (p *testPlugin) register(version string) error {
	return registerAt(filepath.Join(p.dir, KubeletSocket), &pluginapi.RegisterRequest{
		Version: version, Endpoint: p.sockName, ResourceName: p.resource, Options: p.opts,
	})
}

func registerAt(kubeletSock string, req *pluginapi.RegisterRequest) error {
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

// watchKubeletRestart re-serves and re-registers whenever kubelet.sock is
// created, as the upstream sample device plugin does.
func (p *testPlugin) watchKubeletRestart() {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		p.t.Fatal(err)
	}
	if err := w.Add(p.dir); err != nil {
		p.t.Fatal(err)
	}
	p.mu.Lock()
	p.watcher = w
	p.mu.Unlock()
	go func() {
		for ev := range w.Events {
			if filepath.Base(ev.Name) == KubeletSocket && ev.Op&fsnotify.Create != 0 {
				if err := p.serve(); err != nil {
					fmt.Fprintln(os.Stderr, "test plugin restart:", err)
					continue
				}
				if err := p.register(pluginapi.Version); err != nil {
					fmt.Fprintln(os.Stderr, "test plugin re-register:", err)
				}
			}
		}
	}()
}

func (p *testPlugin) stop() {
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

// setDevices replaces the device list and pushes it to every stream.
func (p *testPlugin) setDevices(devs ...*pluginapi.Device) {
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

func (p *testPlugin) GetDevicePluginOptions(context.Context, *pluginapi.Empty) (*pluginapi.DevicePluginOptions, error) {
	return proto.Clone(p.opts).(*pluginapi.DevicePluginOptions), nil
}

func (p *testPlugin) ListAndWatch(_ *pluginapi.Empty, s grpc.ServerStreamingServer[pluginapi.ListAndWatchResponse]) error {
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

func (p *testPlugin) GetPreferredAllocation(_ context.Context, r *pluginapi.PreferredAllocationRequest) (*pluginapi.PreferredAllocationResponse, error) {
	p.mu.Lock()
	p.preferred = append(p.preferred, r)
	f := p.preferFunc
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

func (p *testPlugin) Allocate(_ context.Context, r *pluginapi.AllocateRequest) (*pluginapi.AllocateResponse, error) {
	p.mu.Lock()
	p.allocs = append(p.allocs, r)
	f := p.allocFunc
	p.mu.Unlock()
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

func (p *testPlugin) PreStartContainer(_ context.Context, r *pluginapi.PreStartContainerRequest) (*pluginapi.PreStartContainerResponse, error) {
	p.mu.Lock()
	p.prestarts = append(p.prestarts, r)
	p.mu.Unlock()
	return &pluginapi.PreStartContainerResponse{}, nil
}

func (p *testPlugin) calls() (preferred []*pluginapi.PreferredAllocationRequest, allocs []*pluginapi.AllocateRequest, prestarts []*pluginapi.PreStartContainerRequest) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]*pluginapi.PreferredAllocationRequest(nil), p.preferred...),
		append([]*pluginapi.AllocateRequest(nil), p.allocs...),
		append([]*pluginapi.PreStartContainerRequest(nil), p.prestarts...)
}

// shortDir returns a temporary directory with a short path (unix socket
// paths are limited to 107 bytes).
func shortDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("/tmp", "dm")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

// eventually polls cond until it holds or a generous deadline passes.
func eventually(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	last := ""
	for time.Now().Before(deadline) {
		ok, s := cond()
		if ok {
			return
		}
		last = s
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s; last state: %s", what, last)
}

func healthy(ids ...string) []*pluginapi.Device {
	var out []*pluginapi.Device
	for _, id := range ids {
		out = append(out, &pluginapi.Device{ID: id, Health: pluginapi.Healthy})
	}
	return out
}
