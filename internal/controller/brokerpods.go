package controller

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	akriv0 "github.com/wasilet/wasilet/agent/apis/akri/v0"
)

// brokerPodReconciler retires unhealthy broker Pods (request: the Pod):
// those that ended and those Pending for longer than pendingTimeout. It
// deletes them; brokerReconciler, which watches the Pods its Instances own,
// creates the successor. Only Pods controlled by an Instance are retired:
// a Job's pods are the Job's business (upstream's BrokerPodOwnerKind).
type brokerPodReconciler struct {
	client         client.Client
	recorder       events.EventRecorder
	pendingTimeout time.Duration
	now            func() time.Time
}

var _ reconcile.Reconciler = (*brokerPodReconciler)(nil)

func (r *brokerPodReconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	var p corev1.Pod
	if err := r.client.Get(ctx, req.NamespacedName, &p); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	ref := controllerRef(&p)
	if p.DeletionTimestamp != nil || ref == nil || ref.Kind != "Instance" || !isAkriGroup(ref.APIVersion) {
		return reconcile.Result{}, nil
	}

	var (
		reason, why string
		grace       *int64
	)
	switch p.Status.Phase {
	case corev1.PodRunning:
		return reconcile.Result{}, nil
	case corev1.PodSucceeded, corev1.PodFailed:
		// Nothing runs any more, so the pod can go at once and its
		// successor (same name) need not wait for a grace period, nor for
		// a kubelet that may be gone.
		reason, why, grace = reasonBrokerEnded, "ended ("+string(p.Status.Phase)+endReason(&p)+")", ptr.To[int64](0)
	case corev1.PodUnknown:
		// Upstream treats Unknown as ended. Its containers may still run
		// on a node we cannot reach, so the pod gets its normal grace.
		reason, why = reasonBrokerEnded, "is in phase Unknown"
	default: // Pending, or no phase yet
		// Upstream measures from status.startTime only, which the kubelet
		// sets, so a pod that is never scheduled is never retried there.
		// Fall back to the creation time.
		since := p.CreationTimestamp.Time
		if p.Status.StartTime != nil {
			since = p.Status.StartTime.Time
		}
		if left := since.Add(r.pendingTimeout).Sub(r.now()); left > 0 {
			return reconcile.Result{RequeueAfter: left}, nil
		}
		reason, why = reasonBrokerPendingTimeout, "was Pending for more than "+r.pendingTimeout.String()
	}

	if err := deletePod(ctx, r.client, &p, grace); err != nil {
		return reconcile.Result{}, err
	}
	logger(ctx).Info("deleted broker pod to replace it", "pod", p.Name, "reason", why)
	var inst akriv0.Instance
	if err := r.client.Get(ctx, types.NamespacedName{Namespace: p.Namespace, Name: ref.Name}, &inst); err == nil {
		kind := normal
		if reason == reasonBrokerPendingTimeout || p.Status.Phase == corev1.PodFailed {
			kind = warning
		}
		r.recorder.Eventf(&inst, &p, kind, reason, actionDelete, "broker pod %s %s: replacing it", p.Name, why)
	} else if !apierrors.IsNotFound(err) {
		logger(ctx).Warn("get the Instance of a replaced broker pod", "pod", p.Name, "error", err)
	}
	return reconcile.Result{}, nil
}

func endReason(p *corev1.Pod) string {
	if p.Status.Reason != "" {
		return ": " + p.Status.Reason
	}
	return ""
}
