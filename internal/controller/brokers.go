package controller

import (
	"context"
	"errors"
	"fmt"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	akriv0 "github.com/wasilet/wasilet/agent/apis/akri/v0"
)

// brokerReconciler keeps the brokers of one Instance (request: the Instance)
// as its Configuration asks: a Pod per node in spec.nodes, or a Job. It only
// creates missing brokers and deletes those that no longer belong; replacing
// unhealthy ones is brokerPodReconciler's job, which deletes them so that
// this one creates them again.
type brokerReconciler struct {
	client   client.Client // cached reads, writes
	live     client.Reader // uncached reads, to tell cache lag from a foreign object
	recorder events.EventRecorder
}

var _ reconcile.Reconciler = (*brokerReconciler)(nil)

func (r *brokerReconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	var inst akriv0.Instance
	if err := r.client.Get(ctx, req.NamespacedName, &inst); err != nil {
		if apierrors.IsNotFound(err) {
			// Garbage collection removes what the Instance owned; do it now
			// too, so that brokers go even where no garbage collector runs.
			return reconcile.Result{}, r.removeAll(ctx, nil, req.NamespacedName, "")
		}
		return reconcile.Result{}, err
	}
	if inst.DeletionTimestamp != nil {
		// Agents hold Instances with finalizers while they stop their
		// device plugins; the device is going, so are its brokers.
		return reconcile.Result{}, r.removeAll(ctx, &inst, req.NamespacedName, inst.UID)
	}

	var cfg akriv0.Configuration
	if err := r.client.Get(ctx, types.NamespacedName{Namespace: inst.Namespace, Name: inst.Spec.ConfigurationName}, &cfg); err != nil {
		if apierrors.IsNotFound(err) {
			// Agents make Instances only for Configurations they see, so
			// this is a race or a hand-made Instance; the Configuration
			// watch brings the Instance back here when it appears.
			r.recorder.Eventf(&inst, nil, warning, reasonConfigurationNotFound, actionObserve,
				"Configuration %s not found: no broker", inst.Spec.ConfigurationName)
			return reconcile.Result{}, nil
		}
		return reconcile.Result{}, err
	}
	if spec := cfg.Spec.BrokerPodSpec(); spec != nil {
		wait, err := r.reconcilePods(ctx, &inst, &cfg, spec)
		return reconcile.Result{RequeueAfter: wait}, err
	}
	if spec := cfg.Spec.BrokerJobSpec(); spec != nil {
		return reconcile.Result{}, r.reconcileJob(ctx, &inst, &cfg, spec)
	}
	return reconcile.Result{}, nil // no broker wanted
}

// Broker pods wait, for at most resourceWait after the Instance appeared,
// until their node advertises the Instance's resource (allocatable > 0): a pod the scheduler
// sees first is marked unschedulable and retried with back-off (1 s up to
// 10 s), which made an occasional broker take 10 s instead of 0.3 s.
const (
	resourceWait      = 10 * time.Second
	resourceWaitCheck = 20 * time.Millisecond
)

// resourceReady says whether node advertises resource (or cannot be
// waited for: unknown node, too late, or the spec does not ask for it).
func (r *brokerReconciler) resourceReady(ctx context.Context, inst *akriv0.Instance, spec *corev1.PodSpec, node string) bool {
	if time.Since(inst.CreationTimestamp.Time) > resourceWait || !asksPlaceholder(spec) {
		return true
	}
	var n corev1.Node
	if err := r.client.Get(ctx, types.NamespacedName{Name: node}, &n); err != nil {
		return true
	}
	// Present with 0 while the node's plugin (re-)registers: wait too.
	q, ok := n.Status.Allocatable[corev1.ResourceName(akriv0.ResourceName(inst.Name))]
	return ok && !q.IsZero()
}

func asksPlaceholder(spec *corev1.PodSpec) bool {
	for _, cs := range [][]corev1.Container{spec.Containers, spec.InitContainers} {
		for _, c := range cs {
			if _, ok := c.Resources.Limits[Placeholder]; ok {
				return true
			}
			if _, ok := c.Resources.Requests[Placeholder]; ok {
				return true
			}
		}
	}
	return false
}

func (r *brokerReconciler) reconcilePods(ctx context.Context, inst *akriv0.Instance, cfg *akriv0.Configuration, spec *corev1.PodSpec) (time.Duration, error) {
	log := logger(ctx)
	var wait time.Duration
	var pods corev1.PodList
	if err := r.client.List(ctx, &pods, client.InNamespace(inst.Namespace), client.MatchingLabels{LabelInstance: inst.Name}); err != nil {
		return 0, err
	}
	wanted := make(map[string]bool, len(inst.Spec.Nodes))
	for _, n := range inst.Spec.Nodes {
		wanted[n] = true
	}
	covered := map[string]bool{}
	var errs []error
	for i := range pods.Items {
		p := &pods.Items[i]
		if !controlledByInstance(p, inst.Name) {
			continue // a Job's pod, or not ours
		}
		node := p.Labels[LabelTargetNode]
		if p.DeletionTimestamp != nil {
			// Its deletion event brings us back to create the successor
			// (same name, so not before it is gone).
			covered[node] = true
			continue
		}
		var why string
		switch {
		case controllerRef(p).UID != inst.UID:
			why = "it belongs to an earlier Instance of the same name"
		case !wanted[node]:
			why = fmt.Sprintf("node %s left the Instance", node)
		case p.Name != BrokerPodName(inst.Name, node, inst.Spec.Shared):
			why = "its name no longer matches the Instance (shared changed)"
		default:
			covered[node] = true
			continue
		}
		log.Info("delete broker pod", "pod", p.Name, "reason", why)
		if err := deletePod(ctx, r.client, p, nil); err != nil {
			r.recorder.Eventf(inst, p, warning, reasonBrokerFailed, actionDelete, "delete broker pod %s: %v", p.Name, err)
			errs = append(errs, err)
			continue
		}
		r.recorder.Eventf(inst, p, normal, reasonBrokerDeleted, actionDelete, "deleted broker pod %s: %s", p.Name, why)
	}

	for _, node := range inst.Spec.Nodes {
		if covered[node] {
			continue
		}
		if !r.resourceReady(ctx, inst, spec, node) {
			wait = resourceWaitCheck
			continue
		}
		covered[node] = true // once per node even if listed twice
		pod := newBrokerPod(inst, spec, node)
		if err := validateMeta(pod, false); err != nil {
			r.invalid(inst, cfg, "broker pod", err)
			continue
		}
		err := r.client.Create(ctx, pod)
		switch {
		case err == nil:
			log.Info("created broker pod", "pod", pod.Name, "node", node)
			r.recorder.Eventf(inst, pod, normal, reasonBrokerCreated, actionCreate, "created broker pod %s for node %s", pod.Name, node)
		case apierrors.IsAlreadyExists(err):
			errs = append(errs, r.checkTaken(ctx, inst, &corev1.Pod{}, pod.Name))
		case apierrors.IsInvalid(err):
			// The spec is at fault, so every node's broker would be
			// refused alike: one report is enough.
			r.invalid(inst, cfg, "broker pod", err)
			return wait, errors.Join(errs...)
		default:
			r.recorder.Eventf(inst, nil, warning, reasonBrokerFailed, actionCreate, "create broker pod %s: %v", pod.Name, err)
			errs = append(errs, err)
		}
	}
	return wait, errors.Join(errs...)
}

// reconcileJob makes sure the Job of the Configuration's current generation
// exists. As upstream, Jobs of earlier generations are left alone (they may
// hold the only record of work done) and a Job is never re-run: it retries
// within itself (backoffLimit).
func (r *brokerReconciler) reconcileJob(ctx context.Context, inst *akriv0.Instance, cfg *akriv0.Configuration, spec *batchv1.JobSpec) error {
	job := newBrokerJob(inst, cfg.Generation, spec)
	var existing batchv1.Job
	err := r.client.Get(ctx, client.ObjectKeyFromObject(job), &existing)
	if err == nil {
		if !controlledByInstance(&existing, inst.Name) {
			r.recorder.Eventf(inst, nil, warning, reasonBrokerNameTaken, actionCreate, "job %s exists and is not this Instance's broker", job.Name)
		}
		return nil
	}
	if !apierrors.IsNotFound(err) {
		return err
	}
	if err := validateMeta(job, false); err != nil {
		r.invalid(inst, cfg, "broker job", err)
		return nil
	}
	err = r.client.Create(ctx, job)
	switch {
	case err == nil:
		logger(ctx).Info("created broker job", "job", job.Name)
		r.recorder.Eventf(inst, job, normal, reasonBrokerCreated, actionCreate, "created broker job %s", job.Name)
		return nil
	case apierrors.IsAlreadyExists(err):
		return r.checkTaken(ctx, inst, &batchv1.Job{}, job.Name)
	case apierrors.IsInvalid(err):
		r.invalid(inst, cfg, "broker job", err)
		return nil
	default:
		r.recorder.Eventf(inst, nil, warning, reasonBrokerFailed, actionCreate, "create broker job %s: %v", job.Name, err)
		return err
	}
}

// invalid reports a broker the API server will never accept as it is: on the
// Configuration, whose spec is at fault, and on the Instance. It is not
// retried; a change of either brings the Instance back.
func (r *brokerReconciler) invalid(inst *akriv0.Instance, cfg *akriv0.Configuration, what string, err error) {
	r.recorder.Eventf(cfg, inst, warning, reasonInvalidBrokerSpec, actionCreate, "%s for Instance %s: %v", what, inst.Name, err)
	r.recorder.Eventf(inst, cfg, warning, reasonInvalidBrokerSpec, actionCreate, "%s: %v", what, err)
}

// checkTaken handles AlreadyExists on create: either the cache had not seen
// our own object yet (fine) or something else has the name (an event; the
// controller does not delete what it did not make).
func (r *brokerReconciler) checkTaken(ctx context.Context, inst *akriv0.Instance, obj client.Object, name string) error {
	err := r.live.Get(ctx, types.NamespacedName{Namespace: inst.Namespace, Name: name}, obj)
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("%s was there at create and is gone: retry", name) // retried by the queue
	}
	if err != nil {
		return err
	}
	if !controlledByInstance(obj, inst.Name) {
		r.recorder.Eventf(inst, nil, warning, reasonBrokerNameTaken, actionCreate,
			"%s %s exists and is not this Instance's broker", kindOf(obj), name)
	}
	return nil
}

// removeAll deletes the broker Pods and Jobs of the Instance key: those
// controlled by an Instance of that name (and uid, when given). inst, when
// not nil, receives the events.
func (r *brokerReconciler) removeAll(ctx context.Context, inst *akriv0.Instance, key types.NamespacedName, uid types.UID) error {
	ours := func(o metav1.Object) bool {
		return controlledByInstance(o, key.Name) && (uid == "" || controllerRef(o).UID == uid)
	}
	sel := []client.ListOption{client.InNamespace(key.Namespace), client.MatchingLabels{LabelInstance: key.Name}}
	var errs []error
	var jobs batchv1.JobList
	if err := r.client.List(ctx, &jobs, sel...); err != nil {
		return err
	}
	for i := range jobs.Items {
		j := &jobs.Items[i]
		if !ours(j) || j.DeletionTimestamp != nil {
			continue
		}
		// Background, as upstream: the Job's pods follow it.
		err := r.client.Delete(ctx, j, client.PropagationPolicy(metav1.DeletePropagationBackground), client.Preconditions{UID: &j.UID})
		if err := ignoreGone(err); err != nil {
			errs = append(errs, err)
		}
	}
	var pods corev1.PodList
	if err := r.client.List(ctx, &pods, sel...); err != nil {
		return err
	}
	for i := range pods.Items {
		p := &pods.Items[i]
		if !ours(p) || p.DeletionTimestamp != nil {
			continue
		}
		if err := deletePod(ctx, r.client, p, nil); err != nil {
			errs = append(errs, err)
			continue
		}
		logger(ctx).Info("deleted broker pod of a deleted Instance", "pod", p.Name)
		if inst != nil {
			r.recorder.Eventf(inst, p, normal, reasonBrokerDeleted, actionDelete, "deleted broker pod %s: the Instance is being deleted", p.Name)
		}
	}
	return errors.Join(errs...)
}

// deletePod deletes p if it is still the same pod (uid precondition), with
// grace seconds when not nil. A pod already gone is not an error.
func deletePod(ctx context.Context, c client.Writer, p *corev1.Pod, grace *int64) error {
	opts := []client.DeleteOption{client.Preconditions{UID: ptr.To(p.UID)}}
	if grace != nil {
		opts = append(opts, client.GracePeriodSeconds(*grace))
	}
	return ignoreGone(c.Delete(ctx, p, opts...))
}

// ignoreGone drops NotFound, and Conflict from a uid precondition: both mean
// the object we meant is gone.
func ignoreGone(err error) error {
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil
	}
	return err
}

func kindOf(obj client.Object) string {
	switch obj.(type) {
	case *corev1.Pod:
		return "pod"
	case *batchv1.Job:
		return "job"
	case *corev1.Service:
		return "service"
	}
	return fmt.Sprintf("%T", obj)
}
