package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"google.golang.org/grpc"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/record"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/source"

	akri "github.com/wasilet/wasilet/agent/apis/akri/v0"
	"github.com/wasilet/wasilet/internal/grpcsock"
	v0 "github.com/wasilet/wasilet/proto/v0"
)

// Defaults of Options. The kubelet paths are those of a stock kubelet; the
// discovery-handler directory is the one Akri's chart mounts.
const (
	DefaultDiscoveryHandlersDir = "/var/lib/akri"
	DefaultDevicePluginsDir     = "/var/lib/kubelet/device-plugins"
	DefaultPodResourcesSocket   = "/var/lib/kubelet/pod-resources/kubelet.sock"
	DefaultReclaimInterval      = 10 * time.Second
	DefaultReclaimAfter         = 20 * time.Second
	DefaultLostGrace            = 30 * time.Second
)

// Options configure an Agent.
type Options struct {
	// NodeName is this node (AGENT_NODE_NAME): the field manager of its
	// Instance writes, its finalizer and its entry in Instance.spec.nodes.
	NodeName string
	// DiscoveryHandlersDir holds agent-registration.sock and the handlers'
	// sockets (DISCOVERY_HANDLERS_DIRECTORY).
	DiscoveryHandlersDir string
	// DevicePluginsDir is the kubelet's device-plugin directory: kubelet.sock
	// and the plugins' sockets.
	DevicePluginsDir string
	// PodResourcesSocket is the kubelet's PodResources v1 socket, read by
	// the slot reclaimer.
	PodResourcesSocket string
	// Config reaches the API server.
	Config *rest.Config
	// OfflineGrace keeps a shared device that is no longer discovered for
	// this long before the node leaves its Instance (0, as upstream 0.13:
	// leave at once).
	OfflineGrace time.Duration
	// LostGrace keeps the devices of a handler whose Discover stream broke
	// for this long while the stream is reopened (default 30 s), so that a
	// handler restart does not remove and recreate every broker.
	LostGrace time.Duration
	// ReclaimInterval and ReclaimAfter drive the slot reclaimer (10 s and
	// 20 s, as upstream).
	ReclaimInterval, ReclaimAfter time.Duration
	// MetricsBindAddress serves Prometheus metrics (controller-runtime's,
	// with client-go's rest_client_requests_total) at /metrics, e.g.
	// ":8080"; "" or "0" serves none.
	MetricsBindAddress string
	// MaxDevicePlugins caps the Instance device plugins this agent serves at
	// once. Each takes open files (its socket, the kubelet's connection, and
	// the kubelet's end of it when the kubelet is this process); a handler
	// reporting more devices than the process may open files for would
	// otherwise starve the node. Instances past the cap get a Warning Event
	// and are served as soon as others go. Default: what the open-file limit
	// allows (see DefaultMaxDevicePlugins).
	MaxDevicePlugins int
	// ComponentHandlers are discovery handlers that are Wasm components of
	// the akri:discovery world (proto/wit), hosted in-process through
	// ComponentHost and registered under their names at start.
	ComponentHandlers []ComponentHandler
	ComponentHost     ComponentHost
	Logger            *slog.Logger
}

// DefaultMaxDevicePlugins is the cap on device plugins when
// Options.MaxDevicePlugins is 0: the soft open-file limit, less 1,024 for
// everything else, over three files a plugin.
func DefaultMaxDevicePlugins() int {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil || lim.Cur > 1<<30 {
		return 1 << 20
	}
	return max(16, (int(lim.Cur)-1024)/3)
}

func (o *Options) complete() error {
	if o.NodeName == "" {
		return errors.New("agent: no node name (set AGENT_NODE_NAME)")
	}
	if o.Config == nil {
		return errors.New("agent: no API server configuration")
	}
	if o.DiscoveryHandlersDir == "" {
		o.DiscoveryHandlersDir = DefaultDiscoveryHandlersDir
	}
	if o.DevicePluginsDir == "" {
		o.DevicePluginsDir = DefaultDevicePluginsDir
	}
	if o.PodResourcesSocket == "" {
		o.PodResourcesSocket = DefaultPodResourcesSocket
	}
	if o.LostGrace == 0 {
		o.LostGrace = DefaultLostGrace
	}
	if o.ReclaimInterval == 0 {
		o.ReclaimInterval = DefaultReclaimInterval
	}
	if o.ReclaimAfter == 0 {
		o.ReclaimAfter = DefaultReclaimAfter
	}
	if o.MaxDevicePlugins == 0 {
		o.MaxDevicePlugins = DefaultMaxDevicePlugins()
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if len(o.ComponentHandlers) > 0 && (o.ComponentHost.Engine == nil || o.ComponentHost.Fetch == nil) {
		return errors.New("agent: component handlers need a ComponentHost (engine and fetch)")
	}
	return nil
}

// Agent is the Akri agent of one node.
type Agent struct {
	opts     Options
	log      *slog.Logger
	registry *Registry

	mgr      manager.Manager
	cache    client.Reader // informer-backed: Configurations, Instances
	api      client.Reader // uncached: Secrets and ConfigMaps of discoveryProperties
	dyn      dynamic.Interface
	recorder record.EventRecorder

	configs *configurations
	plugins *plugins

	configEvents   chan event.GenericEvent
	instanceEvents chan event.GenericEvent
}

// instanceWorkers is how many Instances the agent reconciles at once (a
// finalizer write, a plugin registration): enough to keep up with a
// handler that reports thousands of devices at once.
const instanceWorkers = 8

// New builds an agent; Run starts it.
func New(opts Options) (*Agent, error) {
	if err := opts.complete(); err != nil {
		return nil, err
	}
	log := opts.Logger.With("component", "akri-agent", "node", opts.NodeName)
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, err
	}
	if err := akri.AddToScheme(scheme); err != nil {
		return nil, err
	}
	cfg := rest.CopyConfig(opts.Config)
	if cfg.QPS == 0 {
		cfg.QPS, cfg.Burst = 50, 100
	}
	mgr, err := ctrl.NewManager(cfg, manager.Options{
		Scheme:                 scheme,
		Logger:                 logr.FromSlogHandler(log.Handler()),
		Metrics:                metricsserver.Options{BindAddress: orZero(opts.MetricsBindAddress)},
		HealthProbeBindAddress: "0",
		Cache: cache.Options{ByObject: map[client.Object]cache.ByObject{
			&akri.Configuration{}: {},
			&akri.Instance{}:      {},
		}},
	})
	if err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	kc, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	eb := record.NewBroadcaster()
	eb.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: kc.CoreV1().Events("")})
	a := &Agent{
		opts:           opts,
		log:            log,
		registry:       NewRegistry(log),
		mgr:            mgr,
		cache:          mgr.GetClient(),
		api:            mgr.GetAPIReader(),
		dyn:            dyn,
		recorder:       eb.NewRecorder(scheme, corev1.EventSource{Component: "akri-agent", Host: opts.NodeName}),
		configEvents:   make(chan event.GenericEvent, 256),
		instanceEvents: make(chan event.GenericEvent, 1024),
	}
	a.configs = newConfigurations(a)
	a.plugins = newPlugins(a)
	for _, ch := range opts.ComponentHandlers {
		src, err := newComponentSource(ch, opts.ComponentHost)
		if err != nil {
			return nil, err
		}
		a.registry.Register(src.handler())
	}

	skipNameValidation := true
	if err := ctrl.NewControllerManagedBy(mgr).
		Named("akri-agent-configuration").
		For(&akri.Configuration{}).
		WatchesRawSource(source.Channel(a.configEvents, &handler.EnqueueRequestForObject{})).
		WithOptions(controller.Options{SkipNameValidation: &skipNameValidation, MaxConcurrentReconciles: 2}).
		Complete(a.configs); err != nil {
		return nil, err
	}
	if err := ctrl.NewControllerManagedBy(mgr).
		Named("akri-agent-instance").
		For(&akri.Instance{}).
		WatchesRawSource(source.Channel(a.instanceEvents, &handler.EnqueueRequestForObject{})).
		WithOptions(controller.Options{SkipNameValidation: &skipNameValidation, MaxConcurrentReconciles: instanceWorkers}).
		Complete(a.plugins); err != nil {
		return nil, err
	}
	return a, nil
}

// Registry is the agent's discovery-handler registry (handlers reach it
// through the registration socket; in-process sources may register too).
func (a *Agent) Registry() *Registry { return a.registry }

// Run serves the registration socket, discovers, writes Instances and serves
// device plugins until ctx ends.
func (a *Agent) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	sock := filepath.Join(a.opts.DiscoveryHandlersDir, RegistrationSocket)
	if err := grpcsock.CheckPath(sock); err != nil {
		return err
	}
	ln, err := grpcsock.Listen(sock)
	if err != nil {
		return fmt.Errorf("agent: registration socket: %w", err)
	}
	gs := grpc.NewServer()
	v0.RegisterRegistrationServer(gs, &registrationServer{reg: a.registry})
	srv := grpcsock.Serve(gs, ln, sock, a.log, "registration server")
	defer srv.Stop()
	a.log.Info("akri agent serving", "registration", sock, "device-plugins", a.opts.DevicePluginsDir)

	if err := os.MkdirAll(a.opts.DevicePluginsDir, 0o750); err != nil {
		return fmt.Errorf("agent: device-plugin directory: %w", err)
	}
	go a.watchRegistry(ctx)
	go a.plugins.watchKubelet(ctx)
	go a.plugins.reclaimLoop(ctx)
	defer a.plugins.stopAll()
	defer a.configs.stopAll()
	return a.mgr.Start(ctx)
}

// watchRegistry wakes the Configurations that use a handler whenever one of
// its endpoints registers (upstream misses Configurations created before
// their handler).
func (a *Agent) watchRegistry(ctx context.Context) {
	ch, stop := a.registry.Subscribe()
	defer stop()
	for {
		select {
		case <-ctx.Done():
			return
		case name := <-ch:
			var list akri.ConfigurationList
			if err := a.cache.List(ctx, &list); err != nil {
				a.log.Warn("list configurations", "err", err)
				continue
			}
			for i := range list.Items {
				if list.Items[i].Spec.DiscoveryHandler.Name == name {
					a.enqueueConfig(list.Items[i].Namespace, list.Items[i].Name)
				}
			}
		}
	}
}

func (a *Agent) enqueueConfig(namespace, name string) {
	c := &akri.Configuration{}
	c.Namespace, c.Name = namespace, name
	send(a.configEvents, event.GenericEvent{Object: c})
}

func (a *Agent) enqueueInstance(namespace, name string) {
	in := &akri.Instance{}
	in.Namespace, in.Name = namespace, name
	send(a.instanceEvents, event.GenericEvent{Object: in})
}

// send queues ev without blocking the caller (a Discover stream, a
// reconciler): when the buffer is full, a goroutine waits to deliver it.
func send(ch chan event.GenericEvent, ev event.GenericEvent) {
	select {
	case ch <- ev:
	default:
		go func() { ch <- ev }()
	}
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func orZero(addr string) string {
	if addr == "" {
		return "0"
	}
	return addr
}
