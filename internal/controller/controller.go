package controller

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/containerd/errdefs"
	"github.com/go-logr/logr"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/selection"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	crcontroller "sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	akriv0 "github.com/wasilet/wasilet/agent/apis/akri/v0"
)

// DefaultPendingTimeout is how long a broker Pod may stay Pending before it
// is replaced (upstream's PENDING_POD_GRACE_PERIOD_MINUTES).
const DefaultPendingTimeout = 5 * time.Minute

// Options configure a [Controller]. The zero value is valid: every field
// documents what its zero value means.
type Options struct {
	// Logger receives the controller's logs. If nil, they are discarded.
	Logger *slog.Logger
	// PendingTimeout is how long a broker Pod may stay Pending (counted
	// from its start, or its creation when it never started) before it is
	// deleted and created again. If zero, DefaultPendingTimeout is used.
	PendingTimeout time.Duration
	// Namespaces restricts the controller to Configurations, Instances and
	// brokers in these namespaces. If empty, all namespaces are served, as
	// upstream does. Nodes are cluster-wide either way.
	Namespaces []string
	// MetricsBindAddress is the address of the Prometheus /metrics endpoint
	// (controller-runtime's metrics plus akri_broker_pod_count), e.g.
	// ":8080". If "" or "0", there is none.
	MetricsBindAddress string
	// HealthProbeBindAddress is the address serving /healthz and /readyz
	// (ready once the caches are synced). If "" or "0", there is none.
	HealthProbeBindAddress string
	// LeaderElection makes several replicas elect one to act, through a
	// Lease named LeaderElectionID in LeaderElectionNamespace (if empty: the
	// namespace the process runs in, as controller-runtime finds it). If
	// false, the process acts alone, as upstream's single replica does.
	LeaderElection          bool
	LeaderElectionNamespace string
}

// LeaderElectionID is the name of the Lease used with
// [Options.LeaderElection].
const LeaderElectionID = "wasilet-controller"

// DefaultOptions are the options of `wasilet controller` without flags.
func DefaultOptions() Options {
	return Options{PendingTimeout: DefaultPendingTimeout}
}

// Controller is the Akri controller: a controller-runtime manager running one
// controller per concern (see the package documentation).
type Controller struct {
	mgr     manager.Manager
	metrics *brokerPodCollector
	ready   chan struct{}
}

// indexConfiguration indexes Instances by spec.configurationName.
const indexConfiguration = "spec.configurationName"

func instanceConfiguration(o client.Object) []string {
	return []string{o.(*akriv0.Instance).Spec.ConfigurationName}
}

// New builds a Controller talking to the cluster of cfg. Nothing runs before
// [Controller.Run]. Errors about opts wrap errdefs.ErrInvalidArgument.
func New(cfg *rest.Config, opts Options) (*Controller, error) {
	if cfg == nil {
		return nil, fmt.Errorf("new controller: no rest config: %w", errdefs.ErrInvalidArgument)
	}
	if opts.PendingTimeout < 0 {
		return nil, fmt.Errorf("new controller: negative pending timeout %s: %w", opts.PendingTimeout, errdefs.ErrInvalidArgument)
	}
	if opts.PendingTimeout == 0 {
		opts.PendingTimeout = DefaultPendingTimeout
	}
	log := logr.Discard()
	if opts.Logger != nil {
		log = logr.FromSlogHandler(opts.Logger.Handler())
	}

	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, err
	}
	if err := akriv0.AddToScheme(scheme); err != nil {
		return nil, err
	}

	metricsAddr := opts.MetricsBindAddress
	if metricsAddr == "" {
		metricsAddr = "0"
	}
	probeAddr := opts.HealthProbeBindAddress
	if probeAddr == "" {
		probeAddr = "0"
	}
	mgr, err := ctrl.NewManager(cfg, manager.Options{
		Scheme:                        scheme,
		Logger:                        log,
		Cache:                         cacheOptions(opts.Namespaces),
		Metrics:                       metricsserver.Options{BindAddress: metricsAddr},
		HealthProbeBindAddress:        probeAddr,
		LeaderElection:                opts.LeaderElection,
		LeaderElectionID:              LeaderElectionID,
		LeaderElectionNamespace:       opts.LeaderElectionNamespace,
		LeaderElectionReleaseOnCancel: true,
		// Tests run several controllers in one process.
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		return nil, fmt.Errorf("new controller: %w", err)
	}
	c := &Controller{mgr: mgr, metrics: &brokerPodCollector{reader: mgr.GetClient()}, ready: make(chan struct{})}
	if err := c.setup(opts); err != nil {
		return nil, fmt.Errorf("new controller: %w", err)
	}
	return c, nil
}

// cacheOptions keep only what the controller looks at: Pods with an Akri
// configuration label (brokers, including Jobs' pods), Jobs with an instance
// label, Services with the controller label, and no managedFields (Nodes
// also without their image lists).
func cacheOptions(namespaces []string) cache.Options {
	exists := func(key string) labels.Selector {
		r, err := labels.NewRequirement(key, selection.Exists, nil)
		if err != nil {
			panic(err) // constant keys: unreachable
		}
		return labels.NewSelector().Add(*r)
	}
	o := cache.Options{
		DefaultTransform: cache.TransformStripManagedFields(),
		ByObject: map[client.Object]cache.ByObject{
			&corev1.Pod{}:     {Label: exists(LabelConfiguration)},
			&batchv1.Job{}:    {Label: exists(LabelInstance)},
			&corev1.Service{}: {Label: labels.SelectorFromSet(labels.Set{LabelController: ControllerValue})},
			&corev1.Node{}: {Transform: func(o any) (any, error) {
				if n, ok := o.(*corev1.Node); ok {
					n.ManagedFields = nil
					n.Status.Images = nil
				}
				return o, nil
			}},
		},
	}
	if len(namespaces) > 0 {
		o.DefaultNamespaces = map[string]cache.Config{}
		for _, ns := range namespaces {
			o.DefaultNamespaces[ns] = cache.Config{}
		}
	}
	return o
}

func (c *Controller) setup(opts Options) error {
	mgr := c.mgr
	ctx := context.Background()
	if err := mgr.GetFieldIndexer().IndexField(ctx, &akriv0.Instance{}, indexConfiguration, instanceConfiguration); err != nil {
		return err
	}
	cl, live := mgr.GetClient(), mgr.GetAPIReader()
	recorder := mgr.GetEventRecorder("akri-controller")
	workers := crcontroller.Options{MaxConcurrentReconciles: 4}

	// Configuration → its Instances.
	instancesOf := handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []reconcile.Request {
		var list akriv0.InstanceList
		if err := cl.List(ctx, &list, client.InNamespace(o.GetNamespace()), client.MatchingFields{indexConfiguration: o.GetName()}); err != nil {
			logger(ctx).Error("list the Instances of a Configuration", "configuration", o.GetName(), "error", err)
			return nil
		}
		reqs := make([]reconcile.Request, len(list.Items))
		for i := range list.Items {
			reqs[i] = reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])}
		}
		return reqs
	})
	// Pod → the Instance or Configuration named by one of its labels.
	byLabel := func(key string) handler.EventHandler {
		return handler.EnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []reconcile.Request {
			if v := o.GetLabels()[key]; v != "" {
				return []reconcile.Request{{NamespacedName: client.ObjectKey{Namespace: o.GetNamespace(), Name: v}}}
			}
			return nil
		})
	}

	err := ctrl.NewControllerManagedBy(mgr).Named("instance-brokers").
		For(&akriv0.Instance{}).
		Owns(&corev1.Pod{}).
		Owns(&batchv1.Job{}).
		Watches(&akriv0.Configuration{}, instancesOf).
		WithOptions(workers).
		Complete(&brokerReconciler{client: cl, live: live, recorder: recorder})
	if err != nil {
		return err
	}

	err = ctrl.NewControllerManagedBy(mgr).Named("broker-pods").
		For(&corev1.Pod{}, builder.WithPredicates(predicate.NewPredicateFuncs(func(o client.Object) bool {
			ref := controllerRef(o)
			return ref != nil && ref.Kind == "Instance" && isAkriGroup(ref.APIVersion)
		}))).
		WithOptions(workers).
		Complete(&brokerPodReconciler{client: cl, recorder: recorder, pendingTimeout: opts.PendingTimeout, now: time.Now})
	if err != nil {
		return err
	}

	err = ctrl.NewControllerManagedBy(mgr).Named("instance-services").
		For(&akriv0.Instance{}).
		Owns(&corev1.Service{}).
		Watches(&corev1.Pod{}, byLabel(LabelInstance)).
		Watches(&akriv0.Configuration{}, instancesOf).
		WithOptions(workers).
		Complete(&serviceReconciler{client: cl, live: live, recorder: recorder, perInstance: true})
	if err != nil {
		return err
	}

	err = ctrl.NewControllerManagedBy(mgr).Named("configuration-services").
		For(&akriv0.Configuration{}).
		Owns(&corev1.Service{}).
		Watches(&corev1.Pod{}, byLabel(LabelConfiguration)).
		WithOptions(workers).
		Complete(&serviceReconciler{client: cl, live: live, recorder: recorder})
	if err != nil {
		return err
	}

	err = ctrl.NewControllerManagedBy(mgr).Named("nodes").
		For(&corev1.Node{}, builder.WithPredicates(predicate.Funcs{
			UpdateFunc: func(e event.UpdateEvent) bool {
				return readyCondition(e.ObjectOld.(*corev1.Node)) != readyCondition(e.ObjectNew.(*corev1.Node))
			},
		})).
		Complete(&nodeReconciler{client: cl, live: live, recorder: recorder})
	if err != nil {
		return err
	}

	// Closes ready once this replica leads (at once without leader
	// election) and the informers of every watched kind have synced.
	// Events from then on reach the controllers' queues.
	err = mgr.Add(manager.RunnableFunc(func(ctx context.Context) error {
		for _, obj := range []client.Object{&akriv0.Instance{}, &akriv0.Configuration{}, &corev1.Pod{}, &batchv1.Job{}, &corev1.Service{}, &corev1.Node{}} {
			inf, err := mgr.GetCache().GetInformer(ctx, obj)
			if err != nil {
				return fmt.Errorf("informer of %T: %w", obj, err)
			}
			if !toolscache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
				return nil // ctx done
			}
		}
		close(c.ready)
		return nil
	}))
	if err != nil {
		return err
	}

	if err := mgr.AddHealthzCheck("ping", func(*http.Request) error { return nil }); err != nil {
		return err
	}
	return mgr.AddReadyzCheck("caches", func(req *http.Request) error {
		ctx, cancel := context.WithTimeout(req.Context(), time.Second)
		defer cancel()
		if !mgr.GetCache().WaitForCacheSync(ctx) {
			return fmt.Errorf("caches not synced: %w", errdefs.ErrUnavailable)
		}
		return nil
	})
}

// Ready is closed once the controller acts: it leads (see
// [Options.LeaderElection]) and the informers of every kind it watches have
// synced. Changes from then on are queued for its controllers, whose workers
// may take up to about 100 ms more to start (they poll their caches).
func (c *Controller) Ready() <-chan struct{} { return c.ready }

// Run runs the controller until ctx is done, then returns nil, or returns
// the first error that stops it earlier. Run may be called once.
func (c *Controller) Run(ctx context.Context) error {
	// The metric reads c's cache, so it is registered for as long as c
	// runs. Another Controller in the same process (tests) keeps the first
	// one's.
	if err := crmetrics.Registry.Register(c.metrics); err == nil {
		defer crmetrics.Registry.Unregister(c.metrics)
	}
	return c.mgr.Start(ctx)
}
