package controller

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func TestBrokerPodReconciler(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	ago := func(d time.Duration) *metav1.Time { return &metav1.Time{Time: now.Add(-d)} }
	inst := testInstance("c-8120fe", "c", true, "n1")
	tests := []struct {
		name        string
		phase       corev1.PodPhase
		created     *metav1.Time
		started     *metav1.Time
		jobPod      bool
		wantDeleted bool
		wantRequeue time.Duration
		wantEvent   string
	}{
		{name: "running", phase: corev1.PodRunning, created: ago(time.Hour), started: ago(time.Hour)},
		{name: "pending within grace", phase: corev1.PodPending, created: ago(10 * time.Minute), started: ago(2 * time.Minute), wantRequeue: 3 * time.Minute},
		{name: "pending too long", phase: corev1.PodPending, created: ago(10 * time.Minute), started: ago(6 * time.Minute), wantDeleted: true, wantEvent: reasonBrokerPendingTimeout},
		// Upstream would wait forever for a pod that never starts.
		{name: "never started, young", phase: corev1.PodPending, created: ago(time.Minute), wantRequeue: 4 * time.Minute},
		{name: "never started, old", phase: "", created: ago(5 * time.Minute), wantDeleted: true, wantEvent: reasonBrokerPendingTimeout},
		{name: "failed", phase: corev1.PodFailed, created: ago(time.Minute), started: ago(time.Minute), wantDeleted: true, wantEvent: reasonBrokerEnded},
		{name: "succeeded", phase: corev1.PodSucceeded, created: ago(time.Minute), wantDeleted: true, wantEvent: reasonBrokerEnded},
		{name: "unknown", phase: corev1.PodUnknown, created: ago(time.Minute), wantDeleted: true, wantEvent: reasonBrokerEnded},
		{name: "a job's pod is the job's business", phase: corev1.PodFailed, created: ago(time.Hour), jobPod: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := testPod(inst, "n1", tt.phase)
			p.CreationTimestamp = *tt.created
			p.Status.StartTime = tt.started
			if tt.jobPod {
				p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "batch/v1", Kind: "Job", Name: "j", UID: "j", Controller: ptr.To(true)}}
			}
			c := fakeClient(t, inst, p)
			rec := newRecorder()
			r := &brokerPodReconciler{client: c, recorder: rec, pendingTimeout: DefaultPendingTimeout, now: func() time.Time { return now }}
			res, err := r.Reconcile(context.Background(), request(testNS, p.Name))
			if err != nil {
				t.Fatal(err)
			}
			if deleted := len(listPods(t, c)) == 0; deleted != tt.wantDeleted {
				t.Errorf("deleted = %v, want %v", deleted, tt.wantDeleted)
			}
			if res.RequeueAfter != tt.wantRequeue {
				t.Errorf("requeue after %s, want %s", res.RequeueAfter, tt.wantRequeue)
			}
			evs := drain(rec)
			if tt.wantEvent != "" && !hasEvent(evs, tt.wantEvent) || tt.wantEvent == "" && len(evs) > 0 {
				t.Errorf("events %q, want %q", evs, tt.wantEvent)
			}
		})
	}
}
