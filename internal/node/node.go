package node

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	vklog "github.com/virtual-kubelet/virtual-kubelet/log"
	vkslog "github.com/virtual-kubelet/virtual-kubelet/log/slog"
	vknode "github.com/virtual-kubelet/virtual-kubelet/node"
	"golang.org/x/time/rate"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"

	"github.com/wasilet/wasilet/internal/version"
)

// podWorkers is the number of pods the pod controller syncs at once. The
// provider's CreatePod is expected to return quickly (pulls and runs happen
// in the background), so this bounds API traffic more than work.
const podWorkers = 10

// Run registers the node and runs it until ctx ends: TLS bootstrap (when a
// bootstrap kubeconfig is given), node registration and status, Lease
// heartbeats, the pod controller driving cfg.NewProvider's provider, and
// the kubelet HTTP API. It returns nil when ctx is cancelled, and an error
// when the node cannot start or a controller fails.
func Run(ctx context.Context, cfg Config) (retErr error) {
	if err := cfg.Complete(); err != nil {
		return err
	}
	logger := cfg.Logger.With("node", cfg.NodeName)
	cfg.Logger = logger
	klog.SetSlogLogger(logger)

	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	// Nobody else may write where the node keeps pods, images and sockets.
	if fi, err := os.Stat(cfg.DataDir); err == nil && fi.Mode().Perm()&0o022 != 0 {
		perm := fi.Mode().Perm() &^ 0o022
		logger.Warn("data directory writable by others: tightening its mode", "dir", cfg.DataDir, "from", fmt.Sprintf("%04o", fi.Mode().Perm()), "to", fmt.Sprintf("%04o", perm))
		if err := os.Chmod(cfg.DataDir, perm); err != nil {
			return fmt.Errorf("data dir: %w", err)
		}
	}
	if err := os.MkdirAll(cfg.pkiDir(), 0o700); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	creds := &credentials{}
	defer creds.Stop()
	if err := loadClient(ctx, &cfg, creds); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	creds.rest.UserAgent = version.Get().String()
	// The kubelet's defaults (--kube-api-qps 50, --kube-api-burst 100):
	// client-go's 5/10 throttles status updates of a node with many pods.
	creds.rest.QPS, creds.rest.Burst = cmp.Or(cfg.KubeAPIQPS, 50), cmp.Or(cfg.KubeAPIBurst, 100)
	client, err := kubernetes.NewForConfig(creds.rest)
	if err != nil {
		return fmt.Errorf("node client: %w", err)
	}
	// Two more clients, each with a rate limiter of its own, as the
	// kubelet has: events (Scheduled pods post three each) would otherwise
	// spend the token bucket that pod status writes wait on — a node
	// starting pods a few dozen times a second saw each Running status
	// queue ~25 ms behind the events of the pods before it — and the
	// heartbeats (node status, Lease) are not limited at all, so a busy
	// node never looks dead for want of a token.
	eventClient, err := kubernetes.NewForConfig(limited(creds.rest, cmp.Or(cfg.EventQPS, 50), cmp.Or(cfg.EventBurst, 100)))
	if err != nil {
		return fmt.Errorf("node event client: %w", err)
	}
	heartbeatClient, err := kubernetes.NewForConfig(limited(creds.rest, -1, 0))
	if err != nil {
		return fmt.Errorf("node heartbeat client: %w", err)
	}
	ca, err := clientCA(&cfg, creds.rest)
	if err != nil {
		return err
	}
	if err := servingCertificate(ctx, &cfg, client, creds); err != nil {
		return err
	}

	status := newStatusProvider(&cfg)
	eb := record.NewBroadcaster(record.WithContext(ctx))
	eb.StartRecordingToSink(&corev1client.EventSinkImpl{Interface: eventClient.CoreV1().Events("")})
	defer eb.Shutdown()
	recorder := eb.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "wasilet", Host: cfg.NodeName})

	vklog.L = vkslog.FromSlog(logger)
	ctx = vklog.WithLogger(ctx, vklog.L)

	// virtual-kubelet's controllers, assembled as its nodeutil.NewNode
	// would (informers of this node's pods and of config maps, secrets and
	// services; a Lease; the provider's asynchronous status), without that
	// package: its auth helpers link k8s.io/apiserver's delegating
	// authentication, which every wasilet process would pay for at start.
	kc := nodeScopedClient{client}
	podInformers := informers.NewSharedInformerFactoryWithOptions(kc, informerResync,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", cfg.NodeName).String()
		}))
	objInformers := informers.NewSharedInformerFactoryWithOptions(kc, informerResync)
	podInformer := podInformers.Core().V1().Pods()
	secretInformer := objInformers.Core().V1().Secrets()
	configMapInformer := objInformers.Core().V1().ConfigMaps()
	serviceInformer := objInformers.Core().V1().Services()

	initial := status.initial()
	p, err := cfg.NewProvider(ctx, ProviderConfig{
		Pods:          podInformer.Lister(),
		ConfigMaps:    configMapInformer.Lister(),
		Secrets:       secretInformer.Lister(),
		Services:      serviceInformer.Lister(),
		Node:          initial,
		Client:        client,
		EventRecorder: recorder,
		NodeName:      cfg.NodeName,
		NodeIP:        cfg.NodeIP,
		DataDir:       cfg.DataDir,
		Logger:        logger,
	})
	if err == nil && p == nil {
		err = errors.New("provider factory returned nil")
	}
	if err != nil {
		return fmt.Errorf("pod provider: %w", err)
	}
	handler, err := newHandler(p, func(context.Context) ([]*corev1.Pod, error) {
		return podInformer.Lister().List(labels.Everything())
	}, authConfig{client: client, nodeName: cfg.NodeName, clientCA: ca, logger: logger})
	if err != nil {
		return err
	}

	hb := nodeScopedClient{heartbeatClient}
	nc, err := vknode.NewNodeController(status, initial, hb.CoreV1().Nodes(),
		vknode.WithNodeEnableLeaseV1(hb.CoordinationV1().Leases(corev1.NamespaceNodeLease), vknode.DefaultLeaseDuration),
		vknode.WithNodeStatusUpdateErrorHandler(func(ctx context.Context, err error) error {
			if !apierrors.IsNotFound(err) {
				return err
			}
			// Someone deleted the node object: register again, like the kubelet.
			logger.Warn("node object was deleted; registering again")
			_, cerr := client.CoreV1().Nodes().Create(ctx, status.initial(), metav1.CreateOptions{})
			if cerr != nil && !apierrors.IsAlreadyExists(cerr) {
				return fmt.Errorf("re-register node: %w", cerr)
			}
			return nil
		}))
	if err != nil {
		return fmt.Errorf("node controller: %w", err)
	}
	pcc := vknode.PodControllerConfig{
		PodClient:         kc.CoreV1(),
		EventRecorder:     recorder,
		Provider:          p,
		PodInformer:       podInformer,
		SecretInformer:    secretInformer,
		ConfigMapInformer: configMapInformer,
		ServiceInformer:   serviceInformer,
		// The provider resolves env from config maps and secrets itself (see
		// nodeScopedClient).
		SkipDownwardAPIResolution: true,
	}
	podQueueRateLimits(&pcc)
	pc, err := vknode.NewPodController(pcc)
	if err != nil {
		return fmt.Errorf("pod controller: %w", err)
	}

	// The kubelet API.
	l, err := tls.Listen("tcp", net.JoinHostPort(cfg.Address, strconv.Itoa(cfg.Port)), &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: creds.serving,
		// Client certificates are verified by the authenticator against
		// the client CA; a request without one may carry a token.
		ClientAuth: tls.RequestClientCert,
	})
	if err != nil {
		return fmt.Errorf("kubelet API listener: %w", err)
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 30 * time.Second}
	go func() { _ = srv.Serve(l) }()
	defer srv.Close()

	go podInformers.Start(ctx.Done())
	go objInformers.Start(ctx.Done())
	defer podInformers.Shutdown()
	defer objInformers.Shutdown()
	go func() { _ = pc.Run(ctx, podWorkers) }()
	defer func() {
		cancel()
		<-pc.Done()
	}()
	select {
	case <-ctx.Done():
		return nil
	case <-pc.Ready():
	case <-pc.Done():
		return controllerErr("pod controller", pc.Err(), ctx)
	}
	go func() { _ = nc.Run(ctx) }()
	defer func() {
		cancel()
		<-nc.Done()
	}()
	select {
	case <-ctx.Done():
		return nil
	case <-nc.Ready():
	case <-nc.Done():
		return controllerErr("node controller", nc.Err(), ctx)
	}

	logger.Info("node registered and ready",
		"ip", cfg.NodeIP, "kubelet-api", net.JoinHostPort(cfg.Address, strconv.Itoa(cfg.Port)),
		"version", KubeletVersion(), "runtime", ContainerRuntimeVersion(),
		"cpu", cfg.CPU.String(), "memory", cfg.Memory.String(), "pods", cfg.MaxPods)
	companionErr := make(chan error, len(cfg.Companions))
	for _, c := range cfg.Companions {
		go func() {
			if err := c(ctx, CompanionConfig{NodeName: cfg.NodeName, DataDir: cfg.DataDir, Rest: rest.CopyConfig(creds.rest), Logger: logger}); err != nil && ctx.Err() == nil {
				companionErr <- err
				cancel()
			}
		}()
	}
	select {
	case <-ctx.Done():
	case <-pc.Done():
		err = controllerErr("pod controller", pc.Err(), ctx)
	case <-nc.Done():
		err = controllerErr("node controller", nc.Err(), ctx)
	}
	select {
	case cerr := <-companionErr:
		return cerr
	default:
	}
	return err
}

// informerResync is the informers' full resync period (nodeutil's default).
const informerResync = time.Minute

// limited is a copy of c whose clients get a rate limiter of their own:
// qps requests a second with bursts of burst; a negative qps, none.
func limited(c *rest.Config, qps float32, burst int) *rest.Config {
	c = rest.CopyConfig(c)
	c.QPS, c.Burst, c.RateLimiter = qps, burst, nil
	return c
}

// controllerErr is what Run returns when a controller stopped: nil when ctx
// was cancelled (a clean stop, whatever the controller said on the way
// out).
func controllerErr(name string, err error, ctx context.Context) error {
	if ctx.Err() != nil {
		return nil
	}
	if err == nil {
		return fmt.Errorf("%s stopped", name)
	}
	return fmt.Errorf("%s: %w", name, err)
}

// podQueueRateLimits replaces virtual-kubelet's default pod queue limiters
// (client-go's controller default: an overall bucket of 10 items/s, burst
// 100), which every status notification passes through and which capped a
// burst of new pods at about 5 pods/s. Per-item exponential back-off on
// failures stays; the overall bucket is raised to what the apiserver client
// (QPS 50, burst 100) and the pod workers can carry.
func podQueueRateLimits(pc *vknode.PodControllerConfig) error {
	limiter := func() workqueue.TypedRateLimiter[any] {
		return workqueue.NewTypedMaxOfRateLimiter[any](
			firstTryFree{workqueue.NewTypedItemExponentialFailureRateLimiter[any](5*time.Millisecond, 10*time.Second)},
			&workqueue.TypedBucketRateLimiter[any]{Limiter: rate.NewLimiter(rate.Limit(500), 1000)},
		)
	}
	pc.SyncPodsFromKubernetesRateLimiter = limiter()
	pc.SyncPodStatusFromProviderRateLimiter = limiter()
	pc.DeletePodsFromKubernetesRateLimiter = limiter()
	return nil
}

// firstTryFree lets an item's first try through at once: virtual-kubelet
// enqueues every pod sync and every status update rate-limited, so the
// per-item back-off's 5 ms base delayed each new pod twice (its sync and its
// Running status: half of the median bound → Running). Retries after a
// failure keep the exponential back-off; virtual-kubelet forgets an item
// once it succeeds.
type firstTryFree struct {
	workqueue.TypedRateLimiter[any]
}

func (l firstTryFree) When(item any) time.Duration {
	first := l.NumRequeues(item) == 0
	d := l.TypedRateLimiter.When(item) // counts the try
	if first {
		return 0
	}
	return d
}
