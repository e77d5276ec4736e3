package pods

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/virtual-kubelet/virtual-kubelet/errdefs"
	"github.com/virtual-kubelet/virtual-kubelet/log"
	"github.com/virtual-kubelet/virtual-kubelet/node/api"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	corev1listers "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/record"

	"github.com/wasilet/wasilet/internal/devicemanager"
)

// Config configures a Provider.
type Config struct {
	// NodeName is the node's name (spec.nodeName of its pods).
	NodeName string
	// NodeIP is reported as hostIP and podIP: Wasm pods share the node's
	// network.
	NodeIP string
	// DataDir is the node's data directory; pods live under DataDir/pods.
	DataDir string
	// Client reads ConfigMaps, Secrets and pull secrets, issues service
	// account tokens and deletes terminated pods (as the kubelet does).
	Client kubernetes.Interface
	// Recorder receives the pod events (Pulling, Started, BackOff, ...).
	Recorder record.EventRecorder
	// Runtime runs containers; Images finds and pulls their Wasm images.
	Runtime Runtime
	Images  ImageService
	// Devices allocates device-plugin resources (nil: none).
	Devices devicemanager.PodDevices
	// ConfigMaps and Secrets are optional listers tried before Client.
	ConfigMaps corev1listers.ConfigMapLister
	Secrets    corev1listers.SecretLister
	// Allocatable is the node's allocatable resources, used by
	// resourceFieldRef when a container sets no limit.
	Allocatable corev1.ResourceList

	// MaxOpenFiles is how many files one container may hold open (they are
	// the node's): a container past it is stopped (reason
	// TooManyOpenFiles). Default DefaultMaxOpenFiles.
	MaxOpenFiles int
	// BackOff tunes the crash and image-pull back-off (zero: the kubelet's
	// 10 s doubling to 300 s, reset after 10 min of running).
	BackOff BackOff
	// Now is the clock (nil: time.Now).
	Now func() time.Time
}

// BackOff is the kubelet's back-off for crashed containers and failed pulls.
type BackOff struct {
	Initial time.Duration
	Max     time.Duration
	// Reset: a container that ran at least this long starts its back-off over.
	Reset time.Duration
}

func (b BackOff) withDefaults() BackOff {
	if b.Initial <= 0 {
		b.Initial = 10 * time.Second
	}
	if b.Max <= 0 {
		b.Max = 300 * time.Second
	}
	if b.Reset <= 0 {
		b.Reset = 10 * time.Minute
	}
	return b
}

// delay is the wait before attempt n+1 after n consecutive failures (n >= 1).
func (b BackOff) delay(n int) time.Duration {
	if n <= 0 {
		return 0
	}
	d := b.Initial
	for i := 1; i < n; i++ {
		d *= 2
		if d >= b.Max {
			return b.Max
		}
	}
	if d > b.Max {
		d = b.Max
	}
	return d
}

// Provider is the virtual-kubelet provider of a wasilet node: it runs every
// pod bound to the node in wasmtime. It implements node.Provider (internal/node) and
// node.PodNotifier.
type Provider struct {
	cfg       Config
	get       objectGetter
	startTime time.Time

	mu      sync.Mutex
	workers map[string]*podWorker // namespace/name
	closed  bool

	notifyMu sync.Mutex
	notifyFn func(*corev1.Pod)
	dirty    map[*podWorker]struct{}
	wake     chan struct{}

	progMu   sync.Mutex
	programs map[string]Program // by wasm digest

	baseCtx context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// New creates a Provider. Pods start when virtual-kubelet calls CreatePod.
func New(cfg Config) (*Provider, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("pods: DataDir is required")
	}
	if cfg.Runtime == nil || cfg.Images == nil {
		return nil, errors.New("pods: Runtime and Images are required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Recorder == nil {
		cfg.Recorder = &record.FakeRecorder{}
	}
	cfg.BackOff = cfg.BackOff.withDefaults()
	if cfg.MaxOpenFiles == 0 {
		cfg.MaxOpenFiles = DefaultMaxOpenFiles
	}
	if err := os.MkdirAll(filepath.Join(cfg.DataDir, "pods"), 0o750); err != nil {
		return nil, fmt.Errorf("pods: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Provider{
		cfg:       cfg,
		get:       clientGetter{client: cfg.Client, configMaps: cfg.ConfigMaps, secrets: cfg.Secrets},
		startTime: cfg.Now(),
		workers:   map[string]*podWorker{},
		dirty:     map[*podWorker]struct{}{},
		programs:  map[string]Program{},
		wake:      make(chan struct{}, 1),
		baseCtx:   ctx,
		cancel:    cancel,
	}
	p.wg.Add(3)
	go p.notifyLoop()
	go func() {
		defer p.wg.Done()
		p.watchFiles()
	}()
	go func() {
		defer p.wg.Done()
		p.collectOrphans()
	}()
	return p, nil
}

// Close stops every pod's guests without reporting them terminated (the
// pods keep running on a restarted node: see restart recovery) and waits
// for the workers to end.
func (p *Provider) Close() error {
	p.mu.Lock()
	p.closed = true
	ws := make([]*podWorker, 0, len(p.workers))
	for _, w := range p.workers {
		ws = append(ws, w)
	}
	p.mu.Unlock()
	p.cancel()
	for _, w := range ws {
		<-w.done
	}
	p.wg.Wait()
	return nil
}

func key(ns, name string) string { return ns + "/" + name }

func (p *Provider) podDir(uid types.UID) string {
	return filepath.Join(p.cfg.DataDir, "pods", string(uid))
}

// CreatePod starts the pod's worker. A pod this node ran before a restart
// continues from its saved state.
func (p *Provider) CreatePod(ctx context.Context, pod *corev1.Pod) error {
	if pod == nil || pod.UID == "" {
		return errdefs.InvalidInput("pod without UID")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return errors.New("pods: provider closed")
	}
	k := key(pod.Namespace, pod.Name)
	if w, ok := p.workers[k]; ok {
		if w.uid == pod.UID {
			w.update(pod)
			return nil
		}
		// A new pod with the name of one still being torn down.
		w.stop(stopDeleted)
	}
	w, err := newPodWorker(p, pod.DeepCopy())
	if err != nil {
		return err
	}
	p.workers[k] = w
	go w.run()
	return nil
}

// UpdatePod applies changes to a running pod (container images,
// activeDeadlineSeconds, labels and annotations).
func (p *Provider) UpdatePod(ctx context.Context, pod *corev1.Pod) error {
	p.mu.Lock()
	w, ok := p.workers[key(pod.Namespace, pod.Name)]
	p.mu.Unlock()
	if !ok || w.uid != pod.UID {
		return p.CreatePod(ctx, pod)
	}
	w.update(pod.DeepCopy())
	return nil
}

// DeletePod stops the pod's guests at once (Wasm guests cannot receive
// SIGTERM, so there is nothing to wait the grace period for), reports every
// container terminated, frees its devices, deletes the pod object like the
// kubelet does once it has terminated, and then removes the pod's directory.
func (p *Provider) DeletePod(ctx context.Context, pod *corev1.Pod) error {
	p.mu.Lock()
	w, ok := p.workers[key(pod.Namespace, pod.Name)]
	p.mu.Unlock()
	if !ok || (pod.UID != "" && w.uid != pod.UID) {
		return errdefs.NotFoundf("pod %s/%s is not known to this node", pod.Namespace, pod.Name)
	}
	w.stop(stopDeleted)
	select {
	case <-w.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	w.startCleanup()
	return nil
}

func (p *Provider) forget(w *podWorker) {
	p.mu.Lock()
	defer p.mu.Unlock()
	k := key(w.namespace, w.name)
	if p.workers[k] == w {
		delete(p.workers, k)
	}
}

func (p *Provider) lookup(ns, name string) (*podWorker, error) {
	p.mu.Lock()
	w, ok := p.workers[key(ns, name)]
	p.mu.Unlock()
	if !ok {
		return nil, errdefs.NotFoundf("pod %s/%s is not known to this node", ns, name)
	}
	return w, nil
}

// GetPod returns the pod with its current status.
func (p *Provider) GetPod(ctx context.Context, namespace, name string) (*corev1.Pod, error) {
	w, err := p.lookup(namespace, name)
	if err != nil {
		return nil, err
	}
	return w.podWithStatus(), nil
}

// GetPodStatus returns the pod's current status.
func (p *Provider) GetPodStatus(ctx context.Context, namespace, name string) (*corev1.PodStatus, error) {
	w, err := p.lookup(namespace, name)
	if err != nil {
		return nil, err
	}
	return &w.podWithStatus().Status, nil
}

// GetPods returns every pod the node runs.
func (p *Provider) GetPods(ctx context.Context) ([]*corev1.Pod, error) {
	p.mu.Lock()
	ws := make([]*podWorker, 0, len(p.workers))
	for _, w := range p.workers {
		ws = append(ws, w)
	}
	p.mu.Unlock()
	out := make([]*corev1.Pod, 0, len(ws))
	for _, w := range ws {
		out = append(out, w.podWithStatus())
	}
	return out, nil
}

// NotifyPods registers virtual-kubelet's status callback.
func (p *Provider) NotifyPods(ctx context.Context, fn func(*corev1.Pod)) {
	p.notifyMu.Lock()
	p.notifyFn = fn
	p.notifyMu.Unlock()
	p.kick()
}

func (p *Provider) changed(w *podWorker) {
	p.notifyMu.Lock()
	p.dirty[w] = struct{}{}
	p.notifyMu.Unlock()
	p.kick()
}

// startHold is how long the status of a starting pod may be held back.
// With a cached module a pod goes from CreatePod to a running container in
// a few milliseconds; sending its Pending (ContainerCreating) status first
// costs a status write that the Running one then queues behind, and often
// an update conflict and a retry as well (virtual-kubelet writes with the
// resource version of its pod lister, which has not seen the first write
// yet) — the difference between a p50 and a p99 of pod start. So a new
// worker's status is first sent when a container runs, when the pod meets
// an error or ends (changedNow), or after startHold, whichever comes first.
const startHold = 200 * time.Millisecond

// changedNow is changed, ending w's start hold: its status goes out now.
func (p *Provider) changedNow(w *podWorker) {
	p.notifyMu.Lock()
	w.holdUntil = time.Time{}
	p.dirty[w] = struct{}{}
	p.notifyMu.Unlock()
	p.kick()
}

func (p *Provider) kick() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// statusResync is how often every pod's status is sent again, spread over
// statusResyncSlices ticks (virtual-kubelet compares each with the pod it
// has, which costs CPU with a thousand pods: better a little each second).
const (
	statusResync       = time.Minute
	statusResyncSlices = 60
)

// notifyLoop sends the latest status of every changed pod to virtual-kubelet,
// coalescing bursts, so workers never block on the callback.
//
// Every statusResync it also re-sends every pod's status: virtual-kubelet
// drops a status update after its retries (an apiserver that was down for
// a while), and re-sending an unchanged status lets its informer resync
// notice the difference and write it again, so statuses converge.
func (p *Provider) notifyLoop() {
	defer p.wg.Done()
	resync := time.NewTicker(statusResync / statusResyncSlices)
	defer resync.Stop()
	// hold fires when the earliest start hold of a dirty pod ends.
	hold := time.NewTimer(0)
	hold.Stop()
	defer hold.Stop()
	slice := uint32(0)
	for {
		select {
		case <-p.baseCtx.Done():
			return
		case <-p.wake:
		case <-hold.C:
		case <-resync.C:
			slice = (slice + 1) % statusResyncSlices
			p.mu.Lock()
			p.notifyMu.Lock()
			for key, w := range p.workers {
				if resyncSlice(key) == slice {
					p.dirty[w] = struct{}{}
				}
			}
			p.notifyMu.Unlock()
			p.mu.Unlock()
		}
		p.notifyMu.Lock()
		fn := p.notifyFn
		if fn == nil {
			p.notifyMu.Unlock()
			continue
		}
		batch := make([]*podWorker, 0, len(p.dirty))
		now := time.Now()
		var next time.Time // the earliest end of a hold still running
		for w := range p.dirty {
			if !w.holdUntil.IsZero() {
				if now.Before(w.holdUntil) {
					if next.IsZero() || w.holdUntil.Before(next) {
						next = w.holdUntil
					}
					continue // stays dirty
				}
				w.holdUntil = time.Time{}
			}
			batch = append(batch, w)
			delete(p.dirty, w)
		}
		p.notifyMu.Unlock()
		if !next.IsZero() {
			hold.Reset(next.Sub(now))
		}
		for _, w := range batch {
			fn(w.podWithStatus())
		}
	}
}

// resyncSlice is the tick of the status resync a pod's status is re-sent
// in, from its namespace/name.
func resyncSlice(key string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(key))
	return h.Sum32() % statusResyncSlices
}

var errNotSupported = "is not supported on wasm32-wasi nodes: Wasm containers have no processes, terminals or network namespaces"

// RunInContainer answers exec with a clear error.
func (p *Provider) RunInContainer(ctx context.Context, namespace, podName, containerName string, cmd []string, attach api.AttachIO) error {
	return errdefs.InvalidInputf("exec %s", errNotSupported)
}

// AttachToContainer answers attach with a clear error.
func (p *Provider) AttachToContainer(ctx context.Context, namespace, podName, containerName string, attach api.AttachIO) error {
	return errdefs.InvalidInputf("attach %s", errNotSupported)
}

// PortForward answers port-forward with a clear error.
func (p *Provider) PortForward(ctx context.Context, namespace, pod string, port int32, stream io.ReadWriteCloser) error {
	return errdefs.InvalidInputf("port-forward %s", errNotSupported)
}

// serviceAccountToken requests a token bound to pod for a projected volume,
// as the kubelet does.
func (p *Provider) serviceAccountToken(ctx context.Context, pod *corev1.Pod, audience string, exp int64) (string, error) {
	if p.cfg.Client == nil {
		return "", errors.New("no Kubernetes client for service account tokens")
	}
	sa := pod.Spec.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	tr := &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{
			ExpirationSeconds: &exp,
			BoundObjectRef:    &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID},
		},
	}
	if audience != "" {
		tr.Spec.Audiences = []string{audience}
	}
	out, err := p.cfg.Client.CoreV1().ServiceAccounts(pod.Namespace).CreateToken(ctx, sa, tr, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("request token for service account %s/%s: %w", pod.Namespace, sa, err)
	}
	return out.Status.Token, nil
}

func logger(ctx context.Context, w *podWorker) log.Logger {
	return log.G(ctx).WithField("pod", w.namespace+"/"+w.name).WithField("uid", w.uid)
}

// orphanGracePeriod is how long after start the provider waits before
// removing directories of pods it was not given back: virtual-kubelet
// hands every pod bound to the node to CreatePod once its informer synced.
const orphanGracePeriod = 5 * time.Minute

// collectOrphans periodically removes the directories of pods that no
// longer exist: deleted while the node was down, or ended before a node
// restart (virtual-kubelet does not hand finished pods back, so their
// deletion is not seen) — their state and logs would otherwise stay forever.
func (p *Provider) collectOrphans() {
	if p.cfg.Client == nil || p.cfg.NodeName == "" {
		return
	}
	for sleep(p.baseCtx, orphanGracePeriod) {
		p.collectOrphansOnce()
	}
}

func (p *Provider) collectOrphansOnce() {
	ctx, cancel := context.WithTimeout(p.baseCtx, time.Minute)
	defer cancel()
	list, err := p.cfg.Client.CoreV1().Pods("").List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=" + p.cfg.NodeName})
	if err != nil {
		log.G(ctx).WithError(err).Warn("list pods to collect orphaned pod directories")
		return
	}
	keep := map[string]bool{}
	active := make([]types.UID, 0, len(list.Items))
	for _, pod := range list.Items {
		keep[string(pod.UID)] = true
		active = append(active, pod.UID)
	}
	// Devices of pods deleted while the node was down are freed here: no
	// DeletePod ever comes for them.
	if r, ok := p.cfg.Devices.(interface {
		ReleaseInactive(active []types.UID) []types.UID
	}); ok {
		if freed := r.ReleaseInactive(active); len(freed) > 0 {
			log.G(ctx).Infof("released devices of %d pods no longer on the node", len(freed))
		}
	}
	root := filepath.Join(p.cfg.DataDir, "pods")
	entries, err := os.ReadDir(root)
	if err != nil {
		return
	}
	for _, e := range entries {
		if !e.IsDir() || keep[e.Name()] {
			continue
		}
		// Under p.mu: CreatePod (which creates a worker and its directory)
		// cannot run in between.
		p.mu.Lock()
		known := false
		for _, w := range p.workers {
			known = known || string(w.uid) == e.Name()
		}
		if !known {
			if err := os.RemoveAll(filepath.Join(root, e.Name())); err != nil {
				log.G(ctx).WithError(err).Warnf("remove orphaned pod directory %s", e.Name())
			}
		}
		p.mu.Unlock()
	}
}
