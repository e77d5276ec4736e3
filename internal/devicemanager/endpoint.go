package devicemanager

import (
	"context"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	pluginapi "k8s.io/kubelet/pkg/apis/deviceplugin/v1beta1"
)

// endpoint is the connection to one registered device plugin.
type endpoint struct {
	resource string
	socket   string
	conn     *grpc.ClientConn
	client   pluginapi.DevicePluginClient
	opts     *pluginapi.DevicePluginOptions
	cancel   context.CancelFunc
	done     chan struct{} // closed when the ListAndWatch loop ended
}

func (e *endpoint) close() {
	e.cancel()
	e.conn.Close()
}

// registrationServer serves pluginapi.Registration on kubelet.sock.
type registrationServer struct {
	pluginapi.UnimplementedRegistrationServer
	m *Manager
}

// Register checks the request like the kubelet (API version, extended
// resource name), connects to the plugin's endpoint socket in Dir, asks for
// its options and starts following its ListAndWatch stream. A plugin
// registering a resource that is already registered replaces the old one.
func (s *registrationServer) Register(ctx context.Context, r *pluginapi.RegisterRequest) (*pluginapi.Empty, error) {
	m := s.m
	log := m.log.With("resource", r.ResourceName, "endpoint", r.Endpoint)
	if !slices.Contains(pluginapi.SupportedVersions[:], r.Version) {
		err := fmt.Sprintf("requested API version %q is not supported by wasilet: supported versions are %q", r.Version, pluginapi.SupportedVersions[:])
		log.Warn("device plugin registration rejected", "reason", err)
		return nil, status.Error(codes.InvalidArgument, err)
	}
	if err := validateResourceName(r.ResourceName); err != nil {
		log.Warn("device plugin registration rejected", "reason", err)
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	if r.Endpoint == "" || r.Endpoint != filepath.Base(r.Endpoint) || r.Endpoint == "." || r.Endpoint == ".." || strings.ContainsRune(r.Endpoint, 0) {
		err := fmt.Sprintf("endpoint %q is invalid: it must be the name of a socket in %s", r.Endpoint, m.opts.Dir)
		log.Warn("device plugin registration rejected", "reason", err)
		return nil, status.Error(codes.InvalidArgument, err)
	}
	if r.Endpoint == KubeletSocket {
		err := fmt.Sprintf("endpoint %q is the registration socket itself", r.Endpoint)
		return nil, status.Error(codes.InvalidArgument, err)
	}
	if err := m.connect(ctx, r.ResourceName, filepath.Join(m.opts.Dir, r.Endpoint)); err != nil {
		log.Warn("device plugin registration failed", "err", err)
		return nil, status.Error(codes.Unavailable, err.Error())
	}
	log.Info("device plugin registered")
	return &pluginapi.Empty{}, nil
}

// connect dials the plugin, reads its options and installs the endpoint.
func (m *Manager) connect(ctx context.Context, resourceName, socket string) error {
	m.mu.Lock()
	if m.stopped {
		m.mu.Unlock()
		return fmt.Errorf("device manager is stopping")
	}
	parent := m.ctx
	m.mu.Unlock()

	conn, err := grpc.NewClient("unix://"+socket,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithAuthority("localhost"))
	if err != nil {
		return fmt.Errorf("dial device plugin %s: %w", socket, err)
	}
	dctx, cancel := context.WithTimeout(ctx, m.opts.DialTimeout)
	defer cancel()
	opts, err := pluginapi.NewDevicePluginClient(conn).GetDevicePluginOptions(dctx, &pluginapi.Empty{})
	if err != nil {
		conn.Close()
		return fmt.Errorf("get device plugin options from %s: %w", socket, err)
	}

	ectx, ecancel := context.WithCancel(parent)
	ep := &endpoint{
		resource: resourceName,
		socket:   socket,
		conn:     conn,
		client:   pluginapi.NewDevicePluginClient(conn),
		opts:     opts,
		cancel:   ecancel,
		done:     make(chan struct{}),
	}

	m.mu.Lock()
	if m.stopped {
		m.mu.Unlock()
		ep.close()
		return fmt.Errorf("device manager is stopping")
	}
	rs := m.resources[resourceName]
	var old *endpoint
	if rs == nil {
		rs = &resourceState{devices: map[string]*pluginapi.Device{}}
		m.resources[resourceName] = rs
	} else {
		old = rs.ep
	}
	rs.ep = ep
	rs.opts = opts
	rs.stoppedAt = time.Time{}
	delete(m.removed, resourceName)
	m.wg.Add(1)
	m.mu.Unlock()

	if old != nil {
		m.log.Info("device plugin re-registered: replacing the previous endpoint", "resource", resourceName, "old", old.socket, "new", socket)
		old.close()
	}
	go m.listAndWatch(ectx, ep)
	m.notify()
	return nil
}

// listAndWatch follows the plugin's device list until the stream ends.
func (m *Manager) listAndWatch(ctx context.Context, ep *endpoint) {
	defer m.wg.Done()
	defer close(ep.done)
	log := m.log.With("resource", ep.resource, "endpoint", ep.socket)
	stream, err := ep.client.ListAndWatch(ctx, &pluginapi.Empty{})
	if err == nil {
		for {
			var resp *pluginapi.ListAndWatchResponse
			resp, err = stream.Recv()
			if err != nil {
				break
			}
			m.updateDevices(ep, resp.Devices)
		}
	}
	if ctx.Err() == nil {
		log.Warn("device plugin ListAndWatch ended", "err", err)
	}
	m.endpointStopped(ep)
}

// updateDevices installs a full device list from ep (if it is still the
// resource's endpoint).
func (m *Manager) updateDevices(ep *endpoint, devs []*pluginapi.Device) {
	m.mu.Lock()
	defer m.mu.Unlock()
	rs := m.resources[ep.resource]
	if rs == nil || rs.ep != ep {
		return
	}
	before := rs.healthy()
	beforeTotal := len(rs.devices)
	next := make(map[string]*pluginapi.Device, len(devs))
	for _, d := range devs {
		if d == nil || d.ID == "" {
			m.log.Warn("device plugin sent a device without id; ignored", "resource", ep.resource)
			continue
		}
		if _, dup := next[d.ID]; dup {
			m.log.Warn("device plugin sent a duplicate device id; first kept", "resource", ep.resource, "device", d.ID)
			continue
		}
		next[d.ID] = d
	}
	rs.devices = next
	after := rs.healthy()
	m.log.Debug("device list updated", "resource", ep.resource, "devices", len(next), "healthy", len(after))
	if len(next) != beforeTotal || !maps.Equal(before, after) {
		m.checkpointLocked()
		m.notify()
	}
}

// endpointStopped marks the resource as stopped when ep was still serving
// it: allocatable drops to 0 now, capacity stays until the grace period ends.
func (m *Manager) endpointStopped(ep *endpoint) {
	ep.conn.Close()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.stopped {
		return
	}
	rs := m.resources[ep.resource]
	if rs == nil || rs.ep != ep {
		return // replaced by a newer registration
	}
	rs.stoppedAt = time.Now()
	m.log.Warn("device plugin disconnected: allocatable set to 0 until it re-registers", "resource", ep.resource, "grace", m.opts.StopGracePeriod)
	m.timers = append(m.timers, time.AfterFunc(m.opts.StopGracePeriod+time.Second, m.notify))
	m.checkpointLocked()
	m.notify()
}
