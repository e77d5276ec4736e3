package agent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	"google.golang.org/protobuf/proto"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	akri "github.com/wasilet/wasilet/agent/apis/akri/v0"
	v0 "github.com/wasilet/wasilet/proto/v0"
)

// device is one device this node discovered for a Configuration, under the
// Instance name it maps to.
type device struct {
	instance string
	hash     string
	shared   bool
	dev      *v0.Device
}

func (d *device) equal(o *device) bool {
	return o != nil && d.instance == o.instance && d.shared == o.shared && proto.Equal(d.dev, o.dev)
}

// endpointList is the latest report of one handler endpoint.
type endpointList struct {
	handler Handler
	devices []*v0.Device
	got     bool      // a list arrived since the stream (re)started
	lostAt  time.Time // when the stream broke (zero while it is healthy)
}

// configState is what the agent runs for one Configuration: a Discover
// stream per handler endpoint and the lists they reported.
type configState struct {
	key     types.NamespacedName
	started time.Time

	mu       sync.Mutex
	reqHash  string
	sessions map[string]*session // by handler UID
	lists    map[string]*endpointList
	vanished map[string]time.Time // instance → when its device stopped being discovered
	warned   string               // last discovery error reported as an Event
	pending  string               // discovery error not yet reported
}

type session struct {
	handler Handler
	cancel  context.CancelFunc
	kick    chan struct{} // the endpoint registered again: retry now if waiting
}

// applyParallelism is how many Instances one Configuration writes at once.
const applyParallelism = 8

// configurations reconciles Configurations: discovery, Instances and the
// Configuration finalizer.
type configurations struct {
	a *Agent

	mu     sync.Mutex
	states map[types.NamespacedName]*configState
}

func newConfigurations(a *Agent) *configurations {
	return &configurations{a: a, states: map[types.NamespacedName]*configState{}}
}

func (c *configurations) state(key types.NamespacedName) *configState {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.states[key]
	if s == nil {
		s = &configState{key: key, started: time.Now(), sessions: map[string]*session{}, lists: map[string]*endpointList{}, vanished: map[string]time.Time{}}
		c.states[key] = s
	}
	return s
}

func (c *configurations) drop(key types.NamespacedName) {
	c.mu.Lock()
	s := c.states[key]
	delete(c.states, key)
	c.mu.Unlock()
	if s != nil {
		s.stopSessions()
	}
}

func (c *configurations) stopAll() {
	c.mu.Lock()
	states := slices.Collect(maps.Values(c.states))
	c.states = map[types.NamespacedName]*configState{}
	c.mu.Unlock()
	for _, s := range states {
		s.stopSessions()
	}
}

func (s *configState) stopSessions() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for uid, ss := range s.sessions {
		ss.cancel()
		delete(s.sessions, uid)
	}
}

// Reconcile brings one Configuration's discovery and Instances in line.
func (c *configurations) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	a := c.a
	var cfg akri.Configuration
	if err := a.cache.Get(ctx, req.NamespacedName, &cfg); err != nil {
		if apierrors.IsNotFound(err) {
			c.drop(req.NamespacedName)
			a.plugins.configGone(req.NamespacedName)
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, err
	}
	if cfg.DeletionTimestamp != nil {
		// Stop discovering; the Instances go with the Configuration
		// (ownerReferences) once every node has released its finalizer.
		c.drop(req.NamespacedName)
		a.plugins.configGone(req.NamespacedName)
		if slices.Contains(cfg.Finalizers, a.opts.NodeName) {
			if err := a.removeFinalizer(ctx, akri.ConfigurationsResource, cfg.Namespace, cfg.Name); err != nil {
				return ctrl.Result{}, err
			}
		}
		return ctrl.Result{}, nil
	}

	st := c.state(req.NamespacedName)
	endpoints := a.registry.Endpoints(cfg.Spec.DiscoveryHandler.Name)
	if len(endpoints) > 0 && !slices.Contains(cfg.Finalizers, a.opts.NodeName) {
		if err := a.addFinalizer(ctx, akri.ConfigurationsResource, "Configuration", cfg.Namespace, cfg.Name); err != nil {
			return ctrl.Result{}, err
		}
	}

	var requeue time.Duration
	props, err := resolveProperties(ctx, a.api, cfg.Spec.DiscoveryHandler.DiscoveryProperties)
	if err != nil {
		a.recorder.Event(&cfg, corev1.EventTypeWarning, "DiscoveryPropertyError", err.Error())
		st.stopSessions()
		// Secrets and ConfigMaps are not watched: look again soon.
		return ctrl.Result{RequeueAfter: 10 * time.Second}, nil
	}
	dreq := &v0.DiscoverRequest{DiscoveryDetails: cfg.Spec.DiscoveryHandler.DiscoveryDetails, DiscoveryProperties: props}
	st.sync(c, &cfg, dreq, endpoints)

	desired, settled, next := st.desired(&cfg, a.opts.NodeName, a.opts.LostGrace)
	for _, h := range st.gone(a.opts.LostGrace) {
		// A handler whose socket is gone and that has not come back within
		// the grace is forgotten (it registers again when it returns), so
		// that no stream keeps dialling it.
		if h.source == nil && (h.Network || !fileExists(h.Endpoint)) {
			a.registry.Remove(h.UID())
		}
	}
	if next > 0 {
		requeue = next
	}
	if msg := st.takeWarning(); msg != "" {
		a.recorder.Event(&cfg, corev1.EventTypeWarning, "DiscoveryFailed", msg)
	}

	a.plugins.setDevices(cfg.Namespace, cfg.Name, desired)

	// Apply the Instances a few at a time: a handler may report thousands
	// of devices, and one at a time a round trip each is the limit, not the
	// client's QPS.
	var (
		errs        []error
		beingDelete bool
		terminating bool
		emu         sync.Mutex
		g           errgroup.Group
	)
	g.SetLimit(applyParallelism)
	for _, name := range slices.Sorted(maps.Keys(desired)) {
		g.Go(func() error {
			err := a.applyInstance(ctx, &cfg, desired[name])
			emu.Lock()
			defer emu.Unlock()
			switch {
			case errors.Is(err, errBeingDeleted):
				beingDelete = true
			case apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause):
				terminating = true
			case err != nil:
				errs = append(errs, err)
			}
			return nil
		})
	}
	_ = g.Wait()
	if terminating {
		// The namespace is going, and the Configuration with it: its
		// deletion ends this; retrying only adds noise.
		a.log.Debug("not creating Instances in a terminating namespace", "namespace", cfg.Namespace)
		return ctrl.Result{}, nil
	}
	if beingDelete {
		// Not a failure: no back-off. The deletion wakes us, and a short
		// requeue covers a missed event.
		requeue = minPositive(requeue, 200*time.Millisecond)
	}

	// Leave the Instances of this Configuration this node no longer sees:
	// only once every stream has reported (an agent that just started
	// must not drop what it will rediscover in a moment).
	if settled || time.Since(st.started) > a.opts.LostGrace {
		var list akri.InstanceList
		if err := a.cache.List(ctx, &list, client.InNamespace(cfg.Namespace)); err != nil {
			return ctrl.Result{}, err
		}
		for i := range list.Items {
			in := &list.Items[i]
			if !ownedBy(in, &cfg) || !slices.Contains(in.Spec.Nodes, a.opts.NodeName) || desired[in.Name] != nil {
				continue
			}
			if in.Spec.Shared && a.opts.OfflineGrace > 0 {
				if wait := st.offline(in.Name, a.opts.OfflineGrace); wait > 0 {
					requeue = minPositive(requeue, wait)
					continue
				}
			}
			g.Go(func() error {
				if err := a.leaveInstance(ctx, &cfg, in); err != nil {
					emu.Lock()
					errs = append(errs, err)
					emu.Unlock()
				}
				return nil
			})
		}
		_ = g.Wait()
	} else {
		requeue = minPositive(requeue, time.Second)
	}
	st.clearOffline(desired)
	if err := errors.Join(errs...); err != nil {
		return ctrl.Result{}, err
	}
	return ctrl.Result{RequeueAfter: requeue}, nil
}

func minPositive(a, b time.Duration) time.Duration {
	if a <= 0 || (b > 0 && b < a) {
		return b
	}
	return a
}

// ownedBy says whether the Instance belongs to the Configuration (its
// controller ownerReference, or the same name for Instances written before
// the Configuration was recreated).
func ownedBy(in *akri.Instance, cfg *akri.Configuration) bool {
	for _, o := range in.OwnerReferences {
		if o.Kind == "Configuration" && o.Name == cfg.Name {
			return o.UID == cfg.UID
		}
	}
	return in.Spec.ConfigurationName == cfg.Name
}

// sync starts, restarts and stops Discover streams so that there is one per
// handler endpoint with the current request.
func (st *configState) sync(c *configurations, cfg *akri.Configuration, req *v0.DiscoverRequest, endpoints []Handler) {
	hash := requestHash(req)
	st.mu.Lock()
	defer st.mu.Unlock()
	if hash != st.reqHash {
		// New details or property values: every stream starts over (upstream
		// keeps the first request until the agent restarts).
		for uid, ss := range st.sessions {
			ss.cancel()
			delete(st.sessions, uid)
		}
		for uid := range st.lists {
			st.lists[uid].got = false
		}
		st.reqHash = hash
		st.warned = ""
	}
	want := map[string]Handler{}
	for _, h := range endpoints {
		want[h.UID()] = h
	}
	for uid, ss := range st.sessions {
		h, ok := want[uid]
		switch {
		case !ok || h.Shared != ss.handler.Shared:
			// Gone, or registered again as something else: start over.
			ss.cancel()
			delete(st.sessions, uid)
		case h.Generation != ss.handler.Generation:
			// Registered again as before. A live stream stays: closing it
			// would make the handler register again, and so on forever. A
			// stream waiting to reopen tries now.
			ss.handler = h
			select {
			case ss.kick <- struct{}{}:
			default:
			}
		}
	}
	for uid := range st.lists {
		if _, ok := want[uid]; !ok {
			delete(st.lists, uid)
		}
	}
	for uid, h := range want {
		if _, ok := st.sessions[uid]; ok {
			continue
		}
		ctx, cancel := context.WithCancel(context.Background())
		kick := make(chan struct{}, 1)
		st.sessions[uid] = &session{handler: h, cancel: cancel, kick: kick}
		if l := st.lists[uid]; l != nil {
			l.got = false
		}
		key := st.key
		log := c.a.log.With("configuration", key.String())
		go stream(ctx, h, req, kick, func(r streamResult) {
			if ctx.Err() != nil {
				return
			}
			st.report(r)
			c.a.enqueueConfig(key.Namespace, key.Name)
		}, log)
	}
}

func (st *configState) report(r streamResult) {
	st.mu.Lock()
	defer st.mu.Unlock()
	uid := r.handler.UID()
	l := st.lists[uid]
	if l == nil {
		l = &endpointList{handler: r.handler}
		st.lists[uid] = l
	}
	switch {
	case r.err != nil:
		st.pending = r.handler.UID() + ": " + r.err.Error()
	case r.lost:
		if l.lostAt.IsZero() {
			l.lostAt = time.Now()
		}
	default:
		l.handler = r.handler
		l.devices = r.devices
		l.got = true
		l.lostAt = time.Time{}
	}
}

func (st *configState) takeWarning() string {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.pending == "" || st.pending == st.warned {
		st.pending = ""
		return ""
	}
	msg := st.pending
	st.warned, st.pending = msg, ""
	return msg
}

// desired merges the endpoints' lists into the Instances this node should be
// in (first endpoint in UID order wins a name). settled says every stream
// has reported since it started; next, when positive, is when a lost
// stream's devices expire.
func (st *configState) desired(cfg *akri.Configuration, node string, lostGrace time.Duration) (map[string]*device, bool, time.Duration) {
	st.mu.Lock()
	defer st.mu.Unlock()
	out := map[string]*device{}
	settled := len(st.sessions) > 0
	var next time.Duration
	uids := slices.Sorted(maps.Keys(st.lists))
	for uid := range st.sessions {
		if l := st.lists[uid]; l == nil || !l.got {
			settled = false
		}
	}
	for _, uid := range uids {
		l := st.lists[uid]
		if !l.lostAt.IsZero() {
			left := lostGrace - time.Since(l.lostAt)
			if left <= 0 {
				continue
			}
			next = minPositive(next, left)
		}
		for _, d := range l.devices {
			if d == nil {
				continue
			}
			hash := akri.DeviceHash(d.GetId(), l.handler.Shared, node)
			name := cfg.Name + "-" + hash
			if prev, dup := out[name]; dup {
				if prev.dev.GetId() != d.GetId() {
					// Akri's 24-bit names collide now and then (about 3
					// pairs among 10,000 devices): say so rather than lose a
					// device silently.
					st.pending = fmt.Sprintf("devices %q and %q both map to Instance %s (Akri's 6-hex-digit name); %q is not exposed", prev.dev.GetId(), d.GetId(), name, d.GetId())
				}
				continue
			}
			out[name] = &device{instance: name, hash: hash, shared: l.handler.Shared, dev: d}
		}
	}
	return out, settled, next
}

// gone lists the endpoints whose stream has been broken for longer than
// grace (network endpoints: ten times longer).
func (st *configState) gone(grace time.Duration) []Handler {
	st.mu.Lock()
	defer st.mu.Unlock()
	var out []Handler
	for _, l := range st.lists {
		g := grace
		if l.handler.Network {
			g *= 10
		}
		if !l.lostAt.IsZero() && time.Since(l.lostAt) > g {
			out = append(out, l.handler)
		}
	}
	return out
}

// offline returns how long a vanished shared device still stays (0: leave).
func (st *configState) offline(instance string, grace time.Duration) time.Duration {
	st.mu.Lock()
	defer st.mu.Unlock()
	since, ok := st.vanished[instance]
	if !ok {
		since = time.Now()
		st.vanished[instance] = since
	}
	return grace - time.Since(since)
}

func (st *configState) clearOffline(desired map[string]*device) {
	st.mu.Lock()
	defer st.mu.Unlock()
	for name := range st.vanished {
		if desired[name] != nil {
			delete(st.vanished, name)
		}
	}
}

func requestHash(req *v0.DiscoverRequest) string {
	h := sha256.New()
	fmt.Fprintf(h, "%d:%s", len(req.DiscoveryDetails), req.DiscoveryDetails)
	keys := make([]string, 0, len(req.DiscoveryProperties))
	for k := range req.DiscoveryProperties {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := req.DiscoveryProperties[k]
		fmt.Fprintf(h, "|%d:%s=", len(k), k)
		if v.Vec == nil {
			h.Write([]byte("-"))
		} else {
			fmt.Fprintf(h, "%d:%s", len(v.Vec), v.Vec)
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}
