package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	pluginapi "k8s.io/kubelet/pkg/apis/deviceplugin/v1beta1"
	ctrl "sigs.k8s.io/controller-runtime"

	akri "github.com/wasilet/wasilet/agent/apis/akri/v0"
)

// instancePlugin serves akri.sh/<instance>: one device per capacity slot,
// <instance>-<slot>.
type instancePlugin struct {
	key      types.NamespacedName
	cfgName  string
	hash     string
	capacity int
	srv      *pluginServer
	// usage is the Instance's deviceUsage as last read, with this node's
	// own claims (mine) laid over it: mine is authoritative for this node.
	usage map[string]string
	mine  map[string]string
	// stalled remembers since when a claim of this node has not been seen
	// in PodResources (slot reclaimer).
	stalled map[string]time.Time
}

func slotKey(instance string, slot int) string { return instance + "-" + strconv.Itoa(slot) }

func (ip *instancePlugin) value(slot int) string {
	k := slotKey(ip.key.Name, slot)
	if v, ok := ip.mine[k]; ok {
		return v
	}
	return ip.usage[k]
}

// configSlot is one device of a Configuration plugin.
type configSlot struct {
	instance types.NamespacedName
	slot     int // -1: free (a slot of instance will be claimed on Allocate)
}

// configPlugin serves akri.sh/<configuration>: one device per slot this
// node holds through it, plus one free device per Instance with a free slot.
type configPlugin struct {
	key   types.NamespacedName
	srv   *pluginServer
	slots map[string]configSlot // by id <configuration>-<n>
}

// plugins reconciles Instances into device plugins and owns the slot claims.
type plugins struct {
	a *Agent

	mu      sync.Mutex
	devices map[types.NamespacedName]*device             // discovered here, by Instance
	configs map[types.NamespacedName]*akri.Configuration // last seen, for Allocate envs
	inst    map[types.NamespacedName]*instancePlugin
	cfgp    map[types.NamespacedName]*configPlugin
	// waiting are Instances not served for Options.MaxDevicePlugins, in
	// the order they came; one is woken each time a plugin goes.
	waiting []types.NamespacedName
	warned  map[types.NamespacedName]bool

	smu   sync.Mutex
	syncs map[types.NamespacedName]*configSync
}

func newPlugins(a *Agent) *plugins {
	return &plugins{
		a:       a,
		devices: map[types.NamespacedName]*device{},
		configs: map[types.NamespacedName]*akri.Configuration{},
		inst:    map[types.NamespacedName]*instancePlugin{},
		cfgp:    map[types.NamespacedName]*configPlugin{},
		warned:  map[types.NamespacedName]bool{},
		syncs:   map[types.NamespacedName]*configSync{},
	}
}

// setDevices records what this node discovers for a Configuration and wakes
// the Instances whose device changed.
func (p *plugins) setDevices(namespace, cfgName string, desired map[string]*device) {
	p.mu.Lock()
	var changed []types.NamespacedName
	for key := range p.devices {
		if key.Namespace == namespace && akri.InstanceHash(cfgName, key.Name) != "" && desired[key.Name] == nil {
			delete(p.devices, key)
			changed = append(changed, key)
		}
	}
	for name, d := range desired {
		key := types.NamespacedName{Namespace: namespace, Name: name}
		if !d.equal(p.devices[key]) {
			p.devices[key] = d
			changed = append(changed, key)
		}
	}
	p.mu.Unlock()
	for _, k := range changed {
		p.a.enqueueInstance(k.Namespace, k.Name)
	}
}

// configGone forgets a deleted Configuration's devices.
func (p *plugins) configGone(key types.NamespacedName) {
	p.setDevices(key.Namespace, key.Name, nil)
}

// Reconcile keeps the device plugin of one Instance in line with it.
func (p *plugins) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	a := p.a
	node := a.opts.NodeName
	var in akri.Instance
	err := a.cache.Get(ctx, req.NamespacedName, &in)
	if err != nil && !apierrors.IsNotFound(err) {
		return ctrl.Result{}, err
	}
	exists := err == nil
	p.mu.Lock()
	d := p.devices[req.NamespacedName]
	p.mu.Unlock()
	serve := exists && in.DeletionTimestamp == nil && slices.Contains(in.Spec.Nodes, node) && d != nil
	if !exists || in.DeletionTimestamp != nil {
		// Its Configuration may want it back (a device that went and came
		// back while the Instance was being deleted).
		if cfg := configOf(req.Name, in.Spec.ConfigurationName); cfg != "" {
			a.enqueueConfig(req.Namespace, cfg)
		}
	}
	if !serve {
		p.removeInstance(req.NamespacedName)
		if exists && slices.Contains(in.Finalizers, node) {
			if err := a.removeFinalizer(ctx, akri.InstancesResource, in.Namespace, in.Name); err != nil {
				return ctrl.Result{}, err
			}
		}
		if exists && in.DeletionTimestamp == nil && !slices.Contains(in.Spec.Nodes, node) && p.holdsClaims(&in) {
			// This node left a device others still share: give its slots
			// back.
			if err := p.applyUsage(ctx, req.NamespacedName, nil); err != nil {
				return ctrl.Result{}, err
			}
		}
		return ctrl.Result{}, nil
	}
	if err := checkResourceName(in.Name); err != nil {
		// A Configuration name of 57+ characters: no kubelet accepts
		// akri.sh/<instance>. Say so once; the Instance stays for the record.
		a.recorder.Eventf(&in, corev1.EventTypeWarning, "DevicePluginNotServed", "no device plugin for this Instance: %v (shorten the Configuration's name)", err)
		p.removeInstance(req.NamespacedName)
		return ctrl.Result{}, nil
	}
	if !slices.Contains(in.Finalizers, node) {
		if err := a.addFinalizer(ctx, akri.InstancesResource, "Instance", in.Namespace, in.Name); err != nil {
			return ctrl.Result{}, err
		}
	}
	var cfg akri.Configuration
	if err := a.cache.Get(ctx, types.NamespacedName{Namespace: in.Namespace, Name: in.Spec.ConfigurationName}, &cfg); err == nil {
		p.mu.Lock()
		p.configs[types.NamespacedName{Namespace: in.Namespace, Name: cfg.Name}] = cfg.DeepCopy()
		p.mu.Unlock()
	}

	p.mu.Lock()
	ip := p.inst[req.NamespacedName]
	created := false
	if ip == nil && len(p.inst) >= a.opts.MaxDevicePlugins {
		first := !p.warned[req.NamespacedName]
		if first {
			p.warned[req.NamespacedName] = true
			p.waiting = append(p.waiting, req.NamespacedName)
		}
		p.mu.Unlock()
		if first {
			a.log.Warn("device plugin cap reached: Instance waits", "instance", req.NamespacedName, "max", a.opts.MaxDevicePlugins)
			a.recorder.Eventf(&in, corev1.EventTypeWarning, "DevicePluginNotServed",
				"node %s already serves %d device plugins (--max-device-plugins, from its open-file limit); this Instance is served when another goes", node, a.opts.MaxDevicePlugins)
		}
		// Woken when a plugin goes; the requeue is a safety net.
		return ctrl.Result{RequeueAfter: time.Minute}, nil
	}
	if ip == nil {
		if p.warned[req.NamespacedName] {
			delete(p.warned, req.NamespacedName)
			p.waiting = slices.DeleteFunc(p.waiting, func(k types.NamespacedName) bool { return k == req.NamespacedName })
		}
		ip = &instancePlugin{
			key:     req.NamespacedName,
			cfgName: in.Spec.ConfigurationName,
			hash:    akri.InstanceHash(in.Spec.ConfigurationName, in.Name),
			mine:    map[string]string{},
			stalled: map[string]time.Time{},
		}
		key := req.NamespacedName
		ip.srv = newPluginServer(a.opts.DevicePluginsDir, in.Name, func(ctx context.Context, ids []string) (*pluginapi.ContainerAllocateResponse, error) {
			return p.allocateInstance(ctx, key, ids)
		}, a.log)
		p.inst[req.NamespacedName] = ip
		created = true
	}
	ip.capacity = in.Spec.Capacity
	ip.usage = maps.Clone(in.Spec.DeviceUsage)
	for k, v := range in.Spec.DeviceUsage {
		// Adopt this node's claims found on the Instance (agent restart).
		if claimNode(v) == node {
			ip.mine[k] = v
		} else if _, ok := ip.mine[k]; ok && v != "" {
			delete(ip.mine, k) // another node holds it now
		}
	}
	ip.srv.setDevices(ip.deviceList(node))
	srv := ip.srv
	p.mu.Unlock()

	if created {
		if err := srv.register(ctx); err != nil {
			p.removeInstance(req.NamespacedName)
			return ctrl.Result{}, err
		}
	}
	p.queueConfigSync(types.NamespacedName{Namespace: in.Namespace, Name: in.Spec.ConfigurationName})
	return ctrl.Result{}, nil
}

// configSyncSpacing is the least time between two rebuilds of one
// Configuration plugin that Instance changes trigger: each rebuild sends the
// kubelet the Configuration's whole slot list, and a handler reporting
// thousands of devices changes thousands of Instances at once.
const configSyncSpacing = 100 * time.Millisecond

// configSync paces the rebuilds of one Configuration plugin.
type configSync struct {
	last    time.Time
	pending bool
}

// queueConfigSync rebuilds a Configuration plugin now if none was rebuilt
// in the last configSyncSpacing, else once when that time is up (however
// many Instances changed meanwhile). A failed rebuild is tried again.
func (p *plugins) queueConfigSync(key types.NamespacedName) {
	p.smu.Lock()
	st := p.syncs[key]
	if st == nil {
		st = &configSync{}
		p.syncs[key] = st
	}
	if st.pending {
		p.smu.Unlock()
		return
	}
	run := func() {
		p.smu.Lock()
		st.pending, st.last = false, time.Now()
		p.smu.Unlock()
		if err := p.syncConfigPlugin(context.Background(), key); err != nil {
			p.a.log.Warn("configuration device plugin; will try again", "configuration", key.String(), "err", err)
			time.AfterFunc(time.Second, func() { p.queueConfigSync(key) })
			return
		}
		p.mu.Lock()
		_, serving := p.cfgp[key]
		p.mu.Unlock()
		if !serving { // forget Configurations whose plugin went
			p.smu.Lock()
			if !st.pending && p.syncs[key] == st {
				delete(p.syncs, key)
			}
			p.smu.Unlock()
		}
	}
	wait := configSyncSpacing - time.Since(st.last)
	st.pending = true
	p.smu.Unlock()
	if wait <= 0 {
		run()
		return
	}
	time.AfterFunc(wait, run)
}

// claimNode is the node a deviceUsage value names: "<node>" or
// "C:<configuration>-<n>:<node>" ("" when free).
func claimNode(v string) string {
	if strings.HasPrefix(v, "C:") {
		if i := strings.LastIndex(v, ":"); i > 1 {
			return v[i+1:]
		}
		return ""
	}
	return v
}

func (p *plugins) holdsClaims(in *akri.Instance) bool {
	for _, v := range in.Spec.DeviceUsage {
		if claimNode(v) == p.a.opts.NodeName {
			return true
		}
	}
	return false
}

// deviceList is the plugin's ListAndWatch list: a slot is healthy when it
// is free or held by this node at instance level; a slot another node holds,
// or that a Configuration-level claim holds, is unhealthy.
func (ip *instancePlugin) deviceList(node string) []*pluginapi.Device {
	out := make([]*pluginapi.Device, 0, ip.capacity)
	for s := 0; s < ip.capacity; s++ {
		v := ip.value(s)
		health := pluginapi.Healthy
		if v != "" && (strings.HasPrefix(v, "C:") || v != node) {
			health = pluginapi.Unhealthy
		}
		out = append(out, &pluginapi.Device{ID: slotKey(ip.key.Name, s), Health: health})
	}
	return out
}

func (p *plugins) removeInstance(key types.NamespacedName) {
	p.mu.Lock()
	ip := p.inst[key]
	delete(p.inst, key)
	if p.warned[key] {
		delete(p.warned, key)
		p.waiting = slices.DeleteFunc(p.waiting, func(k types.NamespacedName) bool { return k == key })
	}
	// A plugin went, or a waiting Instance did: the next in line may fit.
	var wake *types.NamespacedName
	if len(p.inst) < p.a.opts.MaxDevicePlugins && len(p.waiting) > 0 {
		k := p.waiting[0]
		wake = &k
	}
	p.mu.Unlock()
	if wake != nil {
		p.a.enqueueInstance(wake.Namespace, wake.Name)
	}
	if ip == nil {
		return
	}
	ip.srv.stop()
	p.queueConfigSync(types.NamespacedName{Namespace: key.Namespace, Name: ip.cfgName})
}

// syncConfigPlugin rebuilds the device list of a Configuration plugin from
// its Instances' slots, and starts or stops it.
func (p *plugins) syncConfigPlugin(ctx context.Context, key types.NamespacedName) error {
	node := p.a.opts.NodeName
	p.mu.Lock()
	var members []*instancePlugin
	for _, ip := range p.inst {
		if ip.key.Namespace == key.Namespace && ip.cfgName == key.Name {
			members = append(members, ip)
		}
	}
	cp := p.cfgp[key]
	if len(members) == 0 {
		delete(p.cfgp, key)
		p.mu.Unlock()
		if cp != nil {
			cp.srv.stop()
		}
		return nil
	}
	created := false
	if cp == nil {
		cp = &configPlugin{key: key, slots: map[string]configSlot{}}
		cp.srv = newPluginServer(p.a.opts.DevicePluginsDir, key.Name, func(ctx context.Context, ids []string) (*pluginapi.ContainerAllocateResponse, error) {
			return p.allocateConfig(ctx, key, ids)
		}, p.a.log)
		p.cfgp[key] = cp
		created = true
	}
	cp.rebuild(members, node)
	cp.srv.setDevices(cp.deviceList())
	srv := cp.srv
	p.mu.Unlock()
	if created {
		if err := srv.register(ctx); err != nil {
			p.mu.Lock()
			if p.cfgp[key] == cp {
				delete(p.cfgp, key)
			}
			p.mu.Unlock()
			srv.stop()
			return err
		}
	}
	return nil
}

// rebuild recomputes the slots (p.mu held): this node's C:<id>:<node>
// claims keep their ids; each Instance with a free slot gets one free id
// (kept across rebuilds, else the smallest unused number).
func (cp *configPlugin) rebuild(members []*instancePlugin, node string) {
	next := map[string]configSlot{}
	for _, ip := range members {
		for s := 0; s < ip.capacity; s++ {
			if id, ok := configClaimID(ip.value(s), node); ok {
				next[id] = configSlot{instance: ip.key, slot: s}
			}
		}
	}
	slices.SortFunc(members, func(a, b *instancePlugin) int { return strings.Compare(a.key.Name, b.key.Name) })
	// The free id each Instance had, to keep it.
	freeID := map[types.NamespacedName]string{}
	for old, cs := range cp.slots {
		if cs.slot < 0 {
			if _, taken := next[old]; !taken {
				freeID[cs.instance] = old
			}
		}
	}
	// Candidates for new ids only ever get taken as the loop goes on, so
	// the search resumes where it stopped (linear, not quadratic, in the
	// number of Instances: a handler may report thousands).
	n := 0
	for _, ip := range members {
		free := false
		for s := 0; s < ip.capacity; s++ {
			if ip.value(s) == "" {
				free = true
				break
			}
		}
		if !free {
			continue
		}
		id, ok := freeID[ip.key]
		if _, taken := next[id]; !ok || taken {
			for ; ; n++ {
				cand := cp.key.Name + "-" + strconv.Itoa(n)
				if _, taken := next[cand]; !taken {
					if old, was := cp.slots[cand]; !was || old.instance == ip.key {
						id = cand
						break
					}
				}
			}
		}
		next[id] = configSlot{instance: ip.key, slot: -1}
	}
	cp.slots = next
}

func (cp *configPlugin) deviceList() []*pluginapi.Device {
	ids := slices.Sorted(maps.Keys(cp.slots))
	out := make([]*pluginapi.Device, 0, len(ids))
	for _, id := range ids {
		out = append(out, &pluginapi.Device{ID: id, Health: pluginapi.Healthy})
	}
	return out
}

// applyUsage applies, as dp-<node>, the deviceUsage entries this node holds
// on an Instance: every one of them (a slot left out is released).
func (p *plugins) applyUsage(ctx context.Context, key types.NamespacedName, mine map[string]string) error {
	usage := make(map[string]any, len(mine))
	for k, v := range mine {
		usage[k] = v
	}
	body := map[string]any{
		"apiVersion": apiVersion,
		"kind":       "Instance",
		"metadata":   map[string]any{"name": key.Name, "namespace": key.Namespace},
		"spec":       map[string]any{"deviceUsage": usage},
	}
	return p.a.apply(ctx, akri.InstancesResource, key.Namespace, key.Name, body, "dp-"+p.a.opts.NodeName, false)
}

// configClaimID is the Configuration-plugin device id <configuration>-<n> of
// a deviceUsage value C:<configuration>-<n>:<node> that names node.
func configClaimID(v, node string) (string, bool) {
	if !strings.HasPrefix(v, "C:") || claimNode(v) != node {
		return "", false
	}
	return strings.TrimSuffix(strings.TrimPrefix(v, "C:"), ":"+node), true
}

// claim takes slot of an Instance for value (this node's name, or
// C:<id>:<node>) by server-side apply as dp-<node>: a conflict means another
// node holds it. p.mu is held by the caller and kept across the call so
// that claims of this node are serialised.
func (p *plugins) claimLocked(ctx context.Context, ip *instancePlugin, slot int, value string) error {
	node := p.a.opts.NodeName
	if slot < 0 || slot >= ip.capacity {
		return status.Errorf(codes.InvalidArgument, "slot %d of %s out of range (capacity %d)", slot, ip.key.Name, ip.capacity)
	}
	cur := ip.value(slot)
	if cur != "" && !(cur == value && value == node) {
		return status.Errorf(codes.ResourceExhausted, "slot %s is in use (%s)", slotKey(ip.key.Name, slot), cur)
	}
	next := maps.Clone(ip.mine)
	next[slotKey(ip.key.Name, slot)] = value
	err := p.applyUsage(ctx, ip.key, next)
	if apierrors.IsConflict(err) {
		return status.Errorf(codes.ResourceExhausted, "slot %s is taken by another node", slotKey(ip.key.Name, slot))
	}
	if err != nil {
		return status.Errorf(codes.Unavailable, "claim slot %s: %v", slotKey(ip.key.Name, slot), err)
	}
	ip.mine = next
	delete(ip.stalled, slotKey(ip.key.Name, slot))
	ip.srv.setDevices(ip.deviceList(node))
	return nil
}

// release gives back this node's claim on slot key k.
func (p *plugins) releaseLocked(ctx context.Context, ip *instancePlugin, k string) error {
	next := maps.Clone(ip.mine)
	delete(next, k)
	if err := p.applyUsage(ctx, ip.key, next); err != nil {
		return err
	}
	ip.mine = next
	if ip.usage != nil {
		delete(ip.usage, k)
	}
	delete(ip.stalled, k)
	ip.srv.setDevices(ip.deviceList(p.a.opts.NodeName))
	return nil
}

// containerResponse is what a container using the device of Instance key
// gets: every property both as K and as K_<HASH>, mounts and device specs.
func (p *plugins) containerResponseLocked(key types.NamespacedName, ip *instancePlugin) (*pluginapi.ContainerAllocateResponse, error) {
	d := p.devices[key]
	if d == nil {
		return nil, status.Errorf(codes.Unavailable, "device of %s is no longer discovered on this node", key.Name)
	}
	props := map[string]string{}
	maps.Copy(props, d.dev.GetProperties())
	if cfg := p.configs[types.NamespacedName{Namespace: key.Namespace, Name: ip.cfgName}]; cfg != nil {
		maps.Copy(props, cfg.Spec.BrokerProperties)
	}
	resp := &pluginapi.ContainerAllocateResponse{Envs: map[string]string{}}
	suffix := akri.EnvSuffix(ip.hash)
	for k, v := range props {
		resp.Envs[k] = v
		resp.Envs[k+suffix] = v
	}
	for _, m := range d.dev.GetMounts() {
		resp.Mounts = append(resp.Mounts, &pluginapi.Mount{ContainerPath: m.GetContainerPath(), HostPath: m.GetHostPath(), ReadOnly: m.GetReadOnly()})
	}
	for _, s := range d.dev.GetDeviceSpecs() {
		resp.Devices = append(resp.Devices, &pluginapi.DeviceSpec{ContainerPath: s.GetContainerPath(), HostPath: s.GetHostPath(), Permissions: s.GetPermissions()})
	}
	return resp, nil
}

func mergeResponse(dst, src *pluginapi.ContainerAllocateResponse) *pluginapi.ContainerAllocateResponse {
	if dst == nil {
		return src
	}
	maps.Copy(dst.Envs, src.Envs)
	dst.Mounts = append(dst.Mounts, src.Mounts...)
	dst.Devices = append(dst.Devices, src.Devices...)
	return dst
}

func (p *plugins) allocateInstance(ctx context.Context, key types.NamespacedName, ids []string) (*pluginapi.ContainerAllocateResponse, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	ip := p.inst[key]
	if ip == nil {
		return nil, status.Errorf(codes.Unavailable, "instance %s is not served on this node", key.Name)
	}
	var resp *pluginapi.ContainerAllocateResponse
	for _, id := range ids {
		i := strings.LastIndex(id, "-")
		slot, err := strconv.Atoi(id[i+1:])
		if i < 0 || err != nil || id[:i] != key.Name {
			return nil, status.Errorf(codes.InvalidArgument, "invalid device id %q", id)
		}
		if err := p.claimLocked(ctx, ip, slot, p.a.opts.NodeName); err != nil {
			return nil, err
		}
		r, err := p.containerResponseLocked(key, ip)
		if err != nil {
			return nil, err
		}
		resp = mergeResponse(resp, r)
	}
	if resp == nil {
		resp = &pluginapi.ContainerAllocateResponse{}
	}
	return resp, nil
}

func (p *plugins) allocateConfig(ctx context.Context, key types.NamespacedName, ids []string) (*pluginapi.ContainerAllocateResponse, error) {
	node := p.a.opts.NodeName
	p.mu.Lock()
	cp := p.cfgp[key]
	if cp == nil {
		p.mu.Unlock()
		return nil, status.Errorf(codes.Unavailable, "configuration %s is not served on this node", key.Name)
	}
	var resp *pluginapi.ContainerAllocateResponse
	var err error
	for _, id := range ids {
		cs, ok := cp.slots[id]
		if !ok {
			err = status.Errorf(codes.InvalidArgument, "unknown device id %q", id)
			break
		}
		ip := p.inst[cs.instance]
		if ip == nil {
			err = status.Errorf(codes.Unavailable, "instance %s of %s is gone", cs.instance.Name, id)
			break
		}
		if cs.slot < 0 {
			// A free id: claim the Instance's first free slot.
			claimed := false
			for s := 0; s < ip.capacity && !claimed; s++ {
				if ip.value(s) != "" {
					continue
				}
				if cerr := p.claimLocked(ctx, ip, s, "C:"+id+":"+node); cerr == nil {
					cp.slots[id] = configSlot{instance: cs.instance, slot: s}
					claimed = true
				} else if status.Code(cerr) != codes.ResourceExhausted {
					err = cerr
					break
				}
			}
			if err != nil {
				break
			}
			if !claimed {
				err = status.Errorf(codes.ResourceExhausted, "no free slot left on %s for %s", cs.instance.Name, id)
				break
			}
		}
		// An id this node holds already: the kubelet re-allocates it (restart).
		r, rerr := p.containerResponseLocked(cs.instance, ip)
		if rerr != nil {
			err = rerr
			break
		}
		resp = mergeResponse(resp, r)
	}
	p.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if serr := p.syncConfigPlugin(ctx, key); serr != nil {
		p.a.log.Warn("configuration plugin", "configuration", key.String(), "err", serr)
	}
	if resp == nil {
		resp = &pluginapi.ContainerAllocateResponse{}
	}
	return resp, nil
}

// stopAll stops every plugin server (agent shutdown).
func (p *plugins) stopAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for k, ip := range p.inst {
		ip.srv.stop()
		delete(p.inst, k)
	}
	for k, cp := range p.cfgp {
		cp.srv.stop()
		delete(p.cfgp, k)
	}
}

// servers lists the running plugin servers.
func (p *plugins) servers() []*pluginServer {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []*pluginServer
	for _, ip := range p.inst {
		out = append(out, ip.srv)
	}
	for _, cp := range p.cfgp {
		out = append(out, cp.srv)
	}
	return out
}

// watchKubelet re-serves and re-registers every plugin when kubelet.sock is
// created again (a kubelet restart removes the plugins' sockets and forgets
// them; upstream's agent never registers again).
func (p *plugins) watchKubelet(ctx context.Context) {
	log := p.a.log
	w, err := fsnotify.NewWatcher()
	if err != nil {
		log.Error("watch the kubelet socket: plugins will not re-register after a kubelet restart", "err", err)
		return
	}
	defer w.Close()
	if err := w.Add(p.a.opts.DevicePluginsDir); err != nil {
		log.Error("watch the kubelet socket: plugins will not re-register after a kubelet restart", "dir", p.a.opts.DevicePluginsDir, "err", err)
		return
	}
	kubeletSock := filepath.Join(p.a.opts.DevicePluginsDir, KubeletSocket)
	// Each creation starts a re-registration that supersedes the previous.
	stopPrev := context.CancelFunc(func() {})
	defer func() { stopPrev() }()
	for {
		select {
		case <-ctx.Done():
			return
		case err := <-w.Errors:
			log.Warn("kubelet socket watch", "err", err)
		case ev := <-w.Events:
			if ev.Name != kubeletSock || !ev.Has(fsnotify.Create) {
				continue
			}
			log.Info("kubelet socket created again: re-registering device plugins")
			stopPrev()
			rctx, cancel := context.WithCancel(ctx)
			stopPrev = cancel
			go p.reregister(rctx)
		}
	}
}

// Back-off between attempts to re-register with a kubelet whose socket was
// just created: the file exists a moment before the kubelet listens on it.
const (
	reregisterMin = 50 * time.Millisecond
	reregisterMax = 5 * time.Second
)

// reregister registers every plugin again, retrying those the kubelet did not
// take with back-off until all are registered or ctx ends (the socket was
// created once more, or the agent is stopping).
func (p *plugins) reregister(ctx context.Context) {
	todo := p.servers()
	delay := reregisterMin
	for attempt := 1; len(todo) > 0; attempt++ {
		var failed []*pluginServer
		for _, s := range todo {
			if err := s.register(ctx); err != nil {
				if ctx.Err() != nil {
					return
				}
				if errors.Is(err, errPluginStopped) {
					continue // its Instance or Configuration went meanwhile
				}
				failed = append(failed, s)
				// The first failure is expected (the kubelet is starting);
				// later ones are worth a warning.
				lvl := slog.LevelDebug
				if attempt > 3 {
					lvl = slog.LevelWarn
				}
				p.a.log.Log(ctx, lvl, "re-register device plugin; will retry", "resource", s.resource, "attempt", attempt, "in", delay, "err", err)
			}
		}
		todo = failed
		if len(todo) == 0 {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		delay = min(delay*2, reregisterMax)
	}
}

// usedSet is what PodResources lists: device ids in use, by resource name.
type usedSet map[string]map[string]bool

// reclaimLoop frees, every ReclaimInterval, the slots this node claimed that
// no container has used for ReclaimAfter (read from PodResources List).
// Both instance- and Configuration-level slots are reclaimed (upstream
// never frees instance-level ones).
func (p *plugins) reclaimLoop(ctx context.Context) {
	t := time.NewTicker(p.a.opts.ReclaimInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		used, err := listUsed(ctx, p.a.opts.PodResourcesSocket)
		if err != nil {
			p.a.log.Debug("slot reclaimer: pod resources", "err", err)
			continue
		}
		p.reclaim(ctx, used, time.Now())
	}
}

func (p *plugins) reclaim(ctx context.Context, used usedSet, now time.Time) {
	node := p.a.opts.NodeName
	p.mu.Lock()
	defer p.mu.Unlock()
	var touched []types.NamespacedName
	for _, ip := range p.inst {
		for k, v := range ip.mine {
			inUse := used[resourceName(ip.key.Name)][k]
			if id, ok := configClaimID(v, node); ok {
				inUse = used[resourceName(ip.cfgName)][id]
			}
			if inUse {
				delete(ip.stalled, k)
				continue
			}
			since, ok := ip.stalled[k]
			if !ok {
				ip.stalled[k] = now
				continue
			}
			if now.Sub(since) < p.a.opts.ReclaimAfter {
				continue
			}
			if err := p.releaseLocked(ctx, ip, k); err != nil {
				p.a.log.Warn("slot reclaimer: free slot; will try again", "slot", k, "err", err)
				continue
			}
			p.a.log.Info("slot reclaimer: freed unused slot", "slot", k, "claim", v)
			touched = append(touched, types.NamespacedName{Namespace: ip.key.Namespace, Name: ip.cfgName})
		}
	}
	if len(touched) > 0 {
		go func() {
			for _, k := range touched {
				_ = p.syncConfigPlugin(ctx, k)
			}
		}()
	}
}

// configOf is the Configuration of an Instance: spec.configurationName when
// known, else the name without its -<hash> suffix.
func configOf(instance, configuration string) string {
	if configuration != "" {
		return configuration
	}
	if i := strings.LastIndex(instance, "-"); i > 0 && akri.InstanceHash(instance[:i], instance) != "" {
		return instance[:i]
	}
	return ""
}

// checkResourceName says why akri.sh/<name> cannot be an extended resource
// (the part after the slash must be a qualified name: at most 63
// characters, alphanumerics, '-', '_', '.').
func checkResourceName(name string) error {
	if errs := validation.IsQualifiedName(name); len(errs) > 0 {
		return fmt.Errorf("resource %s is not a valid extended resource name: %s", resourceName(name), strings.Join(errs, "; "))
	}
	return nil
}
