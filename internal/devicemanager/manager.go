package devicemanager

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/types"
	pluginapi "k8s.io/kubelet/pkg/apis/deviceplugin/v1beta1"

	"github.com/wasilet/wasilet/internal/atomicfile"
	"github.com/wasilet/wasilet/internal/grpcsock"
)

// KubeletSocket is the file name of the registration socket in Options.Dir.
const KubeletSocket = "kubelet.sock"

// DefaultStopGracePeriod is how long a resource whose plugin went away keeps
// its capacity (with allocatable 0) before it is removed, as in the kubelet.
const DefaultStopGracePeriod = 5 * time.Minute

// Options configure a Manager. Dir is required; the rest have defaults.
type Options struct {
	// Dir is the device-plugin directory (<data-dir>/device-plugins): the
	// registration socket kubelet.sock is served there and plugin endpoints
	// are socket names relative to it.
	Dir string
	// CheckpointPath is the allocation checkpoint; default
	// <Dir>/kubelet_internal_checkpoint.
	CheckpointPath string
	// StopGracePeriod: a resource whose plugin disconnected keeps its
	// capacity (allocatable drops to 0 at once) for this long, then it is
	// removed and reported as deleted. Default DefaultStopGracePeriod.
	StopGracePeriod time.Duration
	// DialTimeout bounds the connection to a registering plugin; default 10s.
	DialTimeout time.Duration
	// RPCTimeout bounds GetPreferredAllocation and Allocate, so a hung
	// plugin cannot hold every admission forever; default 2m.
	// (PreStartContainer has the kubelet's fixed 30s.)
	RPCTimeout time.Duration
	// Logger; default slog.Default().
	Logger *slog.Logger
}

// Device is one device as PodResources reports it.
type Device struct {
	ID        string
	Healthy   bool
	NUMANodes []int64
}

// Manager is the node's device-plugin manager: the registration server, one
// endpoint per resource and the allocation of devices to pods. It implements
// PodDevices.
type Manager struct {
	opts     Options
	log      *slog.Logger
	sockPath string

	admitMu sync.Mutex // serializes Admit (device choice + Allocate RPCs)

	mu        sync.Mutex
	resources map[string]*resourceState
	removed   map[string]struct{} // resources deleted after their grace period, until they come back
	pods      map[types.UID]*podAllocation
	started   bool
	stopped   bool
	ctx       context.Context // lives from Start to Stop; parent of the endpoint streams
	cancel    context.CancelFunc
	reg       *grpcsock.Server // the registration server
	wg        sync.WaitGroup   // endpoint goroutines
	timers    []*time.Timer

	updates chan struct{}
}

var _ PodDevices = (*Manager)(nil)

// resourceState is what the manager knows about one resource.
type resourceState struct {
	ep      *endpoint // nil until a plugin registers (restored from a checkpoint)
	opts    *pluginapi.DevicePluginOptions
	devices map[string]*pluginapi.Device
	// stoppedAt is set when the plugin disconnected (or, restored from the
	// checkpoint, has not re-registered yet); zero while a plugin serves it.
	stoppedAt time.Time
}

func (rs *resourceState) live() bool { return rs.ep != nil && rs.stoppedAt.IsZero() }

// healthy returns the ids of the devices that can be allocated.
func (rs *resourceState) healthy() map[string]bool {
	out := map[string]bool{}
	if !rs.live() {
		return out
	}
	for id, d := range rs.devices {
		if d.Health == pluginapi.Healthy {
			out[id] = true
		}
	}
	return out
}

// podAllocation is what one pod holds: container → resource → devices.
type podAllocation struct {
	namespace, name string
	containers      map[string]map[string]*allocEntry
}

type allocEntry struct {
	ids  []string // sorted
	resp *pluginapi.ContainerAllocateResponse
}

// New returns a Manager; Start serves it.
func New(opts Options) (*Manager, error) {
	if opts.Dir == "" {
		return nil, errors.New("device manager: Options.Dir is required")
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("device manager: %w", err)
	}
	opts.Dir = dir
	if opts.CheckpointPath == "" {
		opts.CheckpointPath = filepath.Join(dir, CheckpointFile)
	}
	if opts.StopGracePeriod <= 0 {
		opts.StopGracePeriod = DefaultStopGracePeriod
	}
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = 10 * time.Second
	}
	if opts.RPCTimeout <= 0 {
		opts.RPCTimeout = 2 * time.Minute
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	sock := filepath.Join(dir, KubeletSocket)
	if err := grpcsock.CheckPath(sock); err != nil {
		return nil, fmt.Errorf("device manager: %w", err)
	}
	return &Manager{
		opts:      opts,
		log:       opts.Logger.With("component", "devicemanager"),
		sockPath:  sock,
		resources: map[string]*resourceState{},
		removed:   map[string]struct{}{},
		pods:      map[types.UID]*podAllocation{},
		updates:   make(chan struct{}, 1),
	}, nil
}

// SocketPath is the registration socket (<Dir>/kubelet.sock).
func (m *Manager) SocketPath() string { return m.sockPath }

// Dir is the device-plugin directory.
func (m *Manager) Dir() string { return m.opts.Dir }

// Start restores the checkpoint, removes stale sockets from Dir (the
// kubelet does this so that plugins notice the restart and re-register) and
// serves the registration socket. Stop ends it.
func (m *Manager) Start() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.started {
		return errors.New("device manager: already started")
	}
	if err := os.MkdirAll(m.opts.Dir, 0o750); err != nil {
		return fmt.Errorf("device manager: create %s: %w", m.opts.Dir, err)
	}
	if err := m.restoreLocked(); err != nil {
		// Like the kubelet: go on without the allocations rather than refuse
		// to run; the error is visible in the log, and the corrupt file is
		// kept aside (the next checkpoint would overwrite it).
		aside, aerr := atomicfile.SetAside(m.opts.CheckpointPath)
		if aerr != nil {
			aside = "(could not move it: " + aerr.Error() + ")"
		}
		m.log.Error("device allocations not restored: checkpoint set aside", "path", m.opts.CheckpointPath, "aside", aside, "err", err)
	}
	if err := m.cleanupSockets(); err != nil {
		return fmt.Errorf("device manager: clean %s: %w", m.opts.Dir, err)
	}
	ln, err := net.Listen("unix", m.sockPath)
	if err != nil {
		return fmt.Errorf("device manager: listen on %s: %w", m.sockPath, err)
	}
	m.ctx, m.cancel = context.WithCancel(context.Background())
	srv := grpc.NewServer()
	pluginapi.RegisterRegistrationServer(srv, &registrationServer{m: m})
	m.started = true
	m.reg = grpcsock.Serve(srv, ln, m.sockPath, m.log, "device plugin registration server")
	m.log.Info("device plugin registration server listening", "socket", m.sockPath)
	m.notify()
	return nil
}

// Check reports what keeps the device manager from taking plugin
// registrations: not started, stopped, or its registration socket gone
// (removed by someone else: plugins could no longer find the node).
func (m *Manager) Check() error {
	m.mu.Lock()
	started, stopped := m.started, m.stopped
	m.mu.Unlock()
	switch {
	case !started:
		return errors.New("registration server not started")
	case stopped:
		return errors.New("registration server stopped")
	}
	if _, err := os.Stat(m.sockPath); errors.Is(err, fs.ErrNotExist) {
		// Someone removed it: plugins could not register any more. Serve
		// it again (plugins that watch the directory register again) and
		// report it this time.
		if serr := m.serveAgain(); serr != nil {
			return fmt.Errorf("registration socket %s was removed and cannot be served again: %w", m.sockPath, serr)
		}
		return fmt.Errorf("registration socket %s was removed; serving it again", m.sockPath)
	} else if err != nil {
		return fmt.Errorf("registration socket: %w", err)
	}
	return nil
}

// serveAgain replaces the registration server with one on a new socket.
func (m *Manager) serveAgain() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.started || m.stopped {
		return errors.New("not running")
	}
	if err := m.reg.Stop(); err != nil {
		m.log.Warn("stop the old registration server", "err", err)
	}
	ln, err := net.Listen("unix", m.sockPath)
	if err != nil {
		return err
	}
	srv := grpc.NewServer()
	pluginapi.RegisterRegistrationServer(srv, &registrationServer{m: m})
	m.reg = grpcsock.Serve(srv, ln, m.sockPath, m.log, "device plugin registration server")
	m.log.Warn("device plugin registration socket was removed: serving it again", "socket", m.sockPath)
	return nil
}

// Stop closes the registration server and every plugin connection. The
// allocations stay in the checkpoint. Stop is safe to call more than once.
func (m *Manager) Stop() {
	m.mu.Lock()
	if !m.started || m.stopped {
		m.mu.Unlock()
		return
	}
	m.stopped = true
	m.cancel()
	reg := m.reg
	var eps []*endpoint
	for _, rs := range m.resources {
		if rs.ep != nil {
			eps = append(eps, rs.ep)
		}
	}
	for _, t := range m.timers {
		t.Stop()
	}
	m.mu.Unlock()

	if err := reg.Stop(); err != nil {
		m.log.Warn("remove registration socket", "socket", m.sockPath, "err", err)
	}
	for _, ep := range eps {
		ep.close()
	}
	m.wg.Wait()
}

// cleanupSockets removes every socket in Dir, as the kubelet does at start.
func (m *Manager) cleanupSockets() error {
	entries, err := os.ReadDir(m.opts.Dir)
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		if e.Type()&fs.ModeSocket == 0 {
			continue
		}
		p := filepath.Join(m.opts.Dir, e.Name())
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
			continue
		}
		m.log.Debug("removed stale socket", "path", p)
	}
	return errors.Join(errs...)
}

// Updates signals (coalesced) whenever Resources may have changed: a plugin
// registered or went away, its device list changed, a grace period ended.
func (m *Manager) Updates() <-chan struct{} { return m.updates }

func (m *Manager) notify() {
	select {
	case m.updates <- struct{}{}:
	default:
	}
}

// Resources reports the device-plugin resources for the node status, like
// the kubelet's GetCapacity: capacity counts every device a plugin lists,
// allocatable only the healthy devices of a connected plugin (0 once it
// disconnected). A resource whose plugin has been gone for longer than the
// grace period is removed; its name is returned in deleted (the node should
// set its capacity and allocatable to 0) until a plugin registers it again.
func (m *Manager) Resources() (capacity, allocatable corev1.ResourceList, deleted []string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	capacity, allocatable = corev1.ResourceList{}, corev1.ResourceList{}
	changed := false
	for name, rs := range m.resources {
		if !rs.stoppedAt.IsZero() && time.Since(rs.stoppedAt) > m.opts.StopGracePeriod {
			m.log.Info("device plugin resource removed after grace period", "resource", name, "grace", m.opts.StopGracePeriod)
			delete(m.resources, name)
			m.removed[name] = struct{}{}
			changed = true
			continue
		}
		capacity[corev1.ResourceName(name)] = *resource.NewQuantity(int64(len(rs.devices)), resource.DecimalSI)
		allocatable[corev1.ResourceName(name)] = *resource.NewQuantity(int64(len(rs.healthy())), resource.DecimalSI)
	}
	deleted = slices.Sorted(maps.Keys(m.removed))
	if changed {
		m.checkpointLocked()
	}
	return capacity, allocatable, deleted
}

// ExtendedResources is Resources in the shape of the node's status hook
// (node.Config.ExtendedResources): a deleted resource is reported with
// capacity and allocatable 0, as the kubelet does, so it disappears from
// scheduling even where the node object still lists it.
func (m *Manager) ExtendedResources() (capacity, allocatable corev1.ResourceList) {
	capacity, allocatable, deleted := m.Resources()
	for _, name := range deleted {
		capacity[corev1.ResourceName(name)] = *resource.NewQuantity(0, resource.DecimalSI)
		allocatable[corev1.ResourceName(name)] = *resource.NewQuantity(0, resource.DecimalSI)
	}
	return capacity, allocatable
}

// AllocatableDevices returns the healthy devices of every connected plugin,
// per resource, sorted by id (PodResources GetAllocatableResources).
func (m *Manager) AllocatableDevices() map[string][]Device {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string][]Device{}
	for name, rs := range m.resources {
		h := rs.healthy()
		if len(h) == 0 {
			continue
		}
		for _, id := range slices.Sorted(maps.Keys(h)) {
			out[name] = append(out[name], deviceInfo(rs.devices[id], id, true))
		}
	}
	return out
}

// ContainerDevices returns the devices allocated to one container, per
// resource, sorted by id (PodResources List/Get). Nil when it has none.
func (m *Manager) ContainerDevices(podUID types.UID, container string) map[string][]Device {
	m.mu.Lock()
	defer m.mu.Unlock()
	pa := m.pods[podUID]
	if pa == nil || len(pa.containers[container]) == 0 {
		return nil
	}
	out := map[string][]Device{}
	for res, e := range pa.containers[container] {
		var known map[string]*pluginapi.Device
		if rs := m.resources[res]; rs != nil {
			known = rs.devices
		}
		for _, id := range e.ids {
			d := known[id]
			out[res] = append(out[res], deviceInfo(d, id, d != nil && d.Health == pluginapi.Healthy))
		}
	}
	return out
}

// AllocatedPods returns the UIDs of the pods holding devices.
func (m *Manager) AllocatedPods() []types.UID {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Sorted(maps.Keys(m.pods))
}

func deviceInfo(d *pluginapi.Device, id string, healthy bool) Device {
	out := Device{ID: id, Healthy: healthy}
	if d != nil && d.Topology != nil {
		for _, n := range d.Topology.Nodes {
			if n != nil {
				out.NUMANodes = append(out.NUMANodes, n.ID)
			}
		}
	}
	return out
}

// allocatedLocked returns the devices held by pods, per resource.
func (m *Manager) allocatedLocked() map[string]map[string]bool {
	out := map[string]map[string]bool{}
	for _, pa := range m.pods {
		for _, res := range pa.containers {
			for name, e := range res {
				if out[name] == nil {
					out[name] = map[string]bool{}
				}
				for _, id := range e.ids {
					out[name][id] = true
				}
			}
		}
	}
	return out
}

// checkpointLocked writes the current allocations; errors are logged (the
// allocation in memory stays authoritative, as in the kubelet).
func (m *Manager) checkpointLocked() {
	d := checkpointData{RegisteredDevices: map[string][]string{}}
	for name, rs := range m.resources {
		d.RegisteredDevices[name] = slices.Sorted(maps.Keys(rs.healthy()))
		if len(rs.devices) > 0 && len(d.RegisteredDevices[name]) == 0 {
			d.RegisteredDevices[name] = []string{}
		}
	}
	for _, uid := range slices.Sorted(maps.Keys(m.pods)) {
		pa := m.pods[uid]
		for _, c := range slices.Sorted(maps.Keys(pa.containers)) {
			for _, res := range slices.Sorted(maps.Keys(pa.containers[c])) {
				e := pa.containers[c][res]
				b, err := proto.Marshal(e.resp)
				if err != nil {
					m.log.Error("encode allocation for checkpoint", "pod", pa.namespace+"/"+pa.name, "container", c, "resource", res, "err", err)
					continue
				}
				d.PodDeviceEntries = append(d.PodDeviceEntries, checkpointEntry{
					PodUID: string(uid), PodNamespace: pa.namespace, PodName: pa.name,
					ContainerName: c, ResourceName: res, DeviceIDs: e.ids, AllocResp: b,
				})
			}
		}
	}
	if err := writeCheckpoint(m.opts.CheckpointPath, d); err != nil {
		m.log.Error("device allocation checkpoint not written", "err", err)
	}
}

// restoreLocked loads the checkpoint: the pods' devices, and every
// registered resource as stopped (capacity 0) until its plugin registers.
func (m *Manager) restoreLocked() error {
	d, err := readCheckpoint(m.opts.CheckpointPath)
	if errors.Is(err, errNoCheckpoint) {
		return nil
	}
	if err != nil {
		return err
	}
	now := time.Now()
	for name := range d.RegisteredDevices {
		if err := validateResourceName(name); err != nil {
			// A hand-edited file: the checksum holds but no plugin could
			// ever have registered this.
			m.log.Error("checkpoint resource skipped", "resource", name, "err", err)
			delete(d.RegisteredDevices, name)
			continue
		}
		if _, ok := m.resources[name]; !ok {
			m.resources[name] = &resourceState{devices: map[string]*pluginapi.Device{}, stoppedAt: now}
		}
	}
	if len(d.RegisteredDevices) > 0 {
		m.timers = append(m.timers, time.AfterFunc(m.opts.StopGracePeriod+time.Second, m.notify))
	}
	for _, e := range d.PodDeviceEntries {
		if err := validateResourceName(e.ResourceName); err != nil {
			m.log.Error("checkpoint entry skipped", "podUID", e.PodUID, "container", e.ContainerName, "resource", e.ResourceName, "err", err)
			continue
		}
		resp := &pluginapi.ContainerAllocateResponse{}
		if err := proto.Unmarshal(e.AllocResp, resp); err != nil {
			m.log.Error("checkpoint entry skipped: bad allocation response", "podUID", e.PodUID, "container", e.ContainerName, "resource", e.ResourceName, "err", err)
			continue
		}
		uid := types.UID(e.PodUID)
		pa := m.pods[uid]
		if pa == nil {
			pa = &podAllocation{namespace: e.PodNamespace, name: e.PodName, containers: map[string]map[string]*allocEntry{}}
			m.pods[uid] = pa
		}
		if pa.containers[e.ContainerName] == nil {
			pa.containers[e.ContainerName] = map[string]*allocEntry{}
		}
		ids := slices.Clone(e.DeviceIDs)
		slices.Sort(ids)
		pa.containers[e.ContainerName][e.ResourceName] = &allocEntry{ids: ids, resp: resp}
	}
	m.log.Info("device allocations restored", "pods", len(m.pods), "resources", len(d.RegisteredDevices))
	return nil
}
