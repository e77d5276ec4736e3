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
	"sync/atomic"
	"time"

	vklog "github.com/virtual-kubelet/virtual-kubelet/log"
	vkslog "github.com/virtual-kubelet/virtual-kubelet/log/slog"
	vknode "github.com/virtual-kubelet/virtual-kubelet/node"
	"github.com/virtual-kubelet/virtual-kubelet/node/nodeutil"
	"golang.org/x/time/rate"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
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
	ca, err := clientCA(&cfg, creds.rest)
	if err != nil {
		return err
	}
	if err := servingCertificate(ctx, &cfg, client, creds); err != nil {
		return err
	}

	status := newStatusProvider(&cfg)
	eb := record.NewBroadcaster(record.WithContext(ctx))
	eb.StartRecordingToSink(&corev1client.EventSinkImpl{Interface: client.CoreV1().Events("")})
	defer eb.Shutdown()
	recorder := eb.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "wasilet", Host: cfg.NodeName})

	// The handler needs the provider, which NewNode builds; it is plugged in
	// before the HTTP server starts (in n.Run).
	var handler lazyHandler
	var providerErr error
	newProvider := func(pc nodeutil.ProviderConfig) (nodeutil.Provider, vknode.NodeProvider, error) {
		p, err := cfg.NewProvider(ctx, ProviderConfig{
			ProviderConfig: pc,
			Client:         client,
			EventRecorder:  recorder,
			NodeName:       cfg.NodeName,
			NodeIP:         cfg.NodeIP,
			DataDir:        cfg.DataDir,
			Logger:         logger,
		})
		if err != nil {
			providerErr = err
			return nil, nil, err
		}
		if p == nil {
			providerErr = errors.New("provider factory returned nil")
			return nil, nil, providerErr
		}
		h, err := newHandler(p, func(context.Context) ([]*corev1.Pod, error) {
			return pc.Pods.List(labels.Everything())
		}, authConfig{client: client, nodeName: cfg.NodeName, clientCA: ca, logger: logger})
		if err != nil {
			return nil, nil, err
		}
		handler.set(h)
		return p, status, nil
	}

	initial := status.initial()
	// virtual-kubelet's logger stays the default no-op until NewNode is done:
	// NewNode warns about a missing in-cluster config before our client
	// replaces its default one, which would only confuse an operator.
	n, err := nodeutil.NewNode(cfg.NodeName, newProvider, func(nc *nodeutil.NodeConfig) error {
		nc.Client = nodeScopedClient{client}
		nc.NodeSpec = *initial
		nc.HTTPListenAddr = net.JoinHostPort(cfg.Address, strconv.Itoa(cfg.Port))
		nc.Handler = &handler
		nc.TLSConfig = &tls.Config{
			MinVersion:     tls.VersionTLS12,
			GetCertificate: creds.serving,
			// Client certificates are verified by the authenticator against
			// the client CA; a request without one may carry a token.
			ClientAuth: tls.RequestClientCert,
		}
		nc.EventRecorder = recorder
		nc.NumWorkers = podWorkers
		nc.PodControllerConfigOpts = append(nc.PodControllerConfigOpts, podQueueRateLimits)
		// The provider resolves env from config maps and secrets itself (see
		// nodeScopedClient).
		nc.SkipDownwardAPIResolution = true
		nc.NodeStatusUpdateErrorHandler = func(ctx context.Context, err error) error {
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
		}
		return nil
	})
	if err != nil {
		if providerErr != nil {
			return fmt.Errorf("pod provider: %w", providerErr)
		}
		return fmt.Errorf("node: %w", err)
	}

	vklog.L = vkslog.FromSlog(logger)
	ctx = vklog.WithLogger(ctx, vklog.L)

	companionErr := make(chan error, len(cfg.Companions))
	go func() {
		if err := n.WaitReady(ctx, 0); err != nil {
			return
		}
		logger.Info("node registered and ready",
			"ip", cfg.NodeIP, "kubelet-api", net.JoinHostPort(cfg.Address, strconv.Itoa(cfg.Port)),
			"version", KubeletVersion(), "runtime", ContainerRuntimeVersion(),
			"cpu", cfg.CPU.String(), "memory", cfg.Memory.String(), "pods", cfg.MaxPods)
		for _, c := range cfg.Companions {
			go func() {
				if err := c(ctx, CompanionConfig{NodeName: cfg.NodeName, DataDir: cfg.DataDir, Rest: rest.CopyConfig(creds.rest), Logger: logger}); err != nil && ctx.Err() == nil {
					companionErr <- err
					cancel()
				}
			}()
		}
	}()
	err = n.Run(ctx)
	select {
	case cerr := <-companionErr:
		return cerr
	default:
	}
	if ctx.Err() != nil {
		// Cancelled: a clean stop, whatever the controllers said on the way out.
		return nil
	}
	if err == nil {
		err = errors.New("node controllers stopped")
	}
	return err
}

// lazyHandler serves with a handler set after construction.
type lazyHandler struct{ h atomic.Pointer[http.Handler] }

func (l *lazyHandler) set(h http.Handler) { l.h.Store(&h) }

func (l *lazyHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := l.h.Load()
	if h == nil {
		writeStatus(w, http.StatusServiceUnavailable, metav1.StatusReasonServiceUnavailable, "the node is starting")
		return
	}
	(*h).ServeHTTP(w, r)
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
			workqueue.NewTypedItemExponentialFailureRateLimiter[any](5*time.Millisecond, 10*time.Second),
			&workqueue.TypedBucketRateLimiter[any]{Limiter: rate.NewLimiter(rate.Limit(500), 1000)},
		)
	}
	pc.SyncPodsFromKubernetesRateLimiter = limiter()
	pc.SyncPodStatusFromProviderRateLimiter = limiter()
	pc.DeletePodsFromKubernetesRateLimiter = limiter()
	return nil
}
