package controller

import (
	"context"
	"maps"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	akriv0 "github.com/wasilet/wasilet/agent/apis/akri/v0"
)

// serviceReconciler keeps one kind of broker Service: with perInstance, the
// <instance>-svc of an Instance (request: the Instance), else the
// <configuration>-svc of a Configuration (request: the Configuration).
//
// A Service exists exactly while its spec is in the Configuration and at
// least one of its brokers (pods labelled with the Instance, or with the
// Configuration) is Running and not being deleted. Upstream creates the
// Services when a broker turns Running and removes them when a broker ends or
// goes and no other broker is left that has not ended, so a Pending
// successor keeps them there; here they follow Running brokers only, and
// also go when the spec leaves the Configuration.
type serviceReconciler struct {
	client      client.Client
	live        client.Reader
	recorder    events.EventRecorder
	perInstance bool
}

var _ reconcile.Reconciler = (*serviceReconciler)(nil)

// serviceTarget is what one reconcile works on.
type serviceTarget struct {
	key        types.NamespacedName // of the Service
	labelKey   string               // LabelInstance or LabelConfiguration
	labelValue string               // the Instance's or the Configuration's name
	owner      client.Object        // nil when gone
	ownerKind  string
	cfg        *akriv0.Configuration // nil when gone
}

func (r *serviceReconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	t := serviceTarget{labelValue: req.Name}
	var spec *corev1.ServiceSpec
	if r.perInstance {
		t.key = types.NamespacedName{Namespace: req.Namespace, Name: InstanceServiceName(req.Name)}
		t.labelKey, t.ownerKind = LabelInstance, "Instance"
		var inst akriv0.Instance
		if err := r.client.Get(ctx, req.NamespacedName, &inst); err != nil {
			if apierrors.IsNotFound(err) {
				return reconcile.Result{}, r.remove(ctx, t, "the Instance is gone")
			}
			return reconcile.Result{}, err
		}
		t.owner = &inst
		if inst.DeletionTimestamp != nil {
			return reconcile.Result{}, r.remove(ctx, t, "the Instance is being deleted")
		}
		cfg, err := r.configuration(ctx, req.Namespace, inst.Spec.ConfigurationName)
		if err != nil || cfg == nil {
			return reconcile.Result{}, orRemove(err, func() error { return r.remove(ctx, t, "its Configuration is gone") })
		}
		t.cfg, spec = cfg, cfg.Spec.InstanceServiceSpec
	} else {
		t.key = types.NamespacedName{Namespace: req.Namespace, Name: ConfigurationServiceName(req.Name)}
		t.labelKey, t.ownerKind = LabelConfiguration, "Configuration"
		cfg, err := r.configuration(ctx, req.Namespace, req.Name)
		if err != nil || cfg == nil {
			return reconcile.Result{}, orRemove(err, func() error { return r.remove(ctx, t, "the Configuration is gone") })
		}
		t.owner, t.cfg, spec = cfg, cfg, cfg.Spec.ConfigurationServiceSpec
	}
	if spec == nil {
		return reconcile.Result{}, r.remove(ctx, t, "the Configuration asks for no such Service")
	}
	running, err := r.anyRunning(ctx, req.Namespace, t.labelKey, t.labelValue)
	if err != nil {
		return reconcile.Result{}, err
	}
	if !running {
		return reconcile.Result{}, r.remove(ctx, t, "no broker is running")
	}
	return reconcile.Result{}, r.ensure(ctx, t, newService(t, spec))
}

// configuration is the Configuration ns/name, or nil when it does not exist
// or is being deleted.
func (r *serviceReconciler) configuration(ctx context.Context, ns, name string) (*akriv0.Configuration, error) {
	var cfg akriv0.Configuration
	if err := r.client.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, &cfg); err != nil {
		return nil, client.IgnoreNotFound(err)
	}
	if cfg.DeletionTimestamp != nil {
		return nil, nil
	}
	return &cfg, nil
}

func orRemove(err error, remove func() error) error {
	if err != nil {
		return err
	}
	return remove()
}

func (r *serviceReconciler) anyRunning(ctx context.Context, ns, key, value string) (bool, error) {
	var pods corev1.PodList
	if err := r.client.List(ctx, &pods, client.InNamespace(ns), client.MatchingLabels{key: value}); err != nil {
		return false, err
	}
	for i := range pods.Items {
		if p := &pods.Items[i]; p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil {
			return true, nil
		}
	}
	return false, nil
}

// newService is upstream's create_new_service_from_spec: the Configuration's
// spec with controller=akri.sh and the Instance or Configuration label added
// to its selector and to the Service's labels, owned by the Instance or
// Configuration.
func newService(t serviceTarget, spec *corev1.ServiceSpec) *corev1.Service {
	s := spec.DeepCopy()
	if s.Selector == nil {
		s.Selector = map[string]string{}
	}
	s.Selector[LabelController] = ControllerValue
	s.Selector[t.labelKey] = t.labelValue
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{
			Name:      t.key.Name,
			Namespace: t.key.Namespace,
			Labels: map[string]string{
				LabelApp:        t.key.Name,
				LabelController: ControllerValue,
				t.labelKey:      t.labelValue,
			},
			OwnerReferences: []metav1.OwnerReference{ownerRef(t.owner, t.ownerKind)},
		},
		Spec: *s,
	}
}

func (t serviceTarget) ours(svc *corev1.Service) bool {
	return svc.Labels[LabelController] == ControllerValue && svc.Labels[t.labelKey] == t.labelValue
}

// ensure creates want, or gives an existing Service of ours the owner
// reference and labels it should have (upstream replaces the owner
// references of an existing Service the same way). The spec of an existing
// Service is left alone: several of its fields are immutable or allocated by
// the cluster.
func (r *serviceReconciler) ensure(ctx context.Context, t serviceTarget, want *corev1.Service) error {
	var cur corev1.Service
	err := r.client.Get(ctx, t.key, &cur)
	if err == nil {
		if !t.ours(&cur) {
			r.event(t, warning, reasonServiceNameTaken, actionCreate, "service %s exists and is not this %s's", t.key.Name, t.ownerKind)
			return nil
		}
		labels := maps.Clone(cur.Labels)
		maps.Copy(labels, want.Labels)
		if equality.Semantic.DeepEqual(cur.OwnerReferences, want.OwnerReferences) && maps.Equal(labels, cur.Labels) {
			return nil
		}
		patch := client.MergeFrom(cur.DeepCopy())
		cur.OwnerReferences, cur.Labels = want.OwnerReferences, labels
		return r.client.Patch(ctx, &cur, patch)
	}
	if !apierrors.IsNotFound(err) {
		return err
	}
	if err := validateMeta(want, true); err != nil {
		r.invalidSpec(t, err)
		return nil
	}
	err = r.client.Create(ctx, want)
	switch {
	case err == nil:
		logger(ctx).Info("created service", "service", want.Name)
		r.event(t, normal, reasonServiceCreated, actionCreate, "created service %s", want.Name)
		return nil
	case apierrors.IsAlreadyExists(err):
		// The cache only holds Services labelled controller=akri.sh.
		if err := r.live.Get(ctx, t.key, &cur); err != nil {
			return err
		}
		if !t.ours(&cur) {
			r.event(t, warning, reasonServiceNameTaken, actionCreate, "service %s exists and is not this %s's", t.key.Name, t.ownerKind)
		}
		return nil
	case apierrors.IsInvalid(err):
		r.invalidSpec(t, err)
		return nil
	default:
		r.event(t, warning, reasonServiceFailed, actionCreate, "create service %s: %v", want.Name, err)
		return err
	}
}

func (r *serviceReconciler) invalidSpec(t serviceTarget, err error) {
	if t.cfg != nil {
		r.recorder.Eventf(t.cfg, nilIfSame(t.owner, t.cfg), warning, reasonInvalidServiceSpec, actionCreate, "service %s: %v", t.key.Name, err)
	}
	if t.ownerKind == "Instance" {
		r.event(t, warning, reasonInvalidServiceSpec, actionCreate, "service %s: %v", t.key.Name, err)
	}
}

// remove deletes the Service of t if it is ours.
func (r *serviceReconciler) remove(ctx context.Context, t serviceTarget, why string) error {
	var cur corev1.Service
	if err := r.client.Get(ctx, t.key, &cur); err != nil {
		return client.IgnoreNotFound(err)
	}
	if !t.ours(&cur) || cur.DeletionTimestamp != nil {
		return nil
	}
	if err := ignoreGone(r.client.Delete(ctx, &cur, client.Preconditions{UID: ptr.To(cur.UID)})); err != nil {
		r.event(t, warning, reasonServiceFailed, actionDelete, "delete service %s: %v", cur.Name, err)
		return err
	}
	logger(ctx).Info("deleted service", "service", cur.Name, "reason", why)
	r.event(t, normal, reasonServiceDeleted, actionDelete, "deleted service %s: %s", cur.Name, why)
	return nil
}

func (r *serviceReconciler) event(t serviceTarget, kind, reason, action, note string, args ...any) {
	if t.owner != nil {
		r.recorder.Eventf(t.owner, nil, kind, reason, action, note, args...)
	}
}

func nilIfSame(a client.Object, b runtime.Object) runtime.Object {
	if any(a) == any(b) {
		return nil
	}
	return a
}
