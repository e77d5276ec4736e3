package controller

import (
	"context"
	"slices"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	akriv0 "github.com/wasilet/wasilet/agent/apis/akri/v0"
)

func TestBrokerReconcilerCreatesPodPerNode(t *testing.T) {
	ctx := context.Background()
	inst := testInstance("c-8120fe", "c", true, "n1", "n2")
	c := fakeClient(t, inst, testConfiguration("c", brokerSpec()))
	rec := newRecorder()
	r := &brokerReconciler{client: c, live: c, recorder: rec}

	for range 2 { // idempotent
		if _, err := r.Reconcile(ctx, request(testNS, inst.Name)); err != nil {
			t.Fatal(err)
		}
	}
	got := podNames(listPods(t, c))
	slices.Sort(got)
	if want := []string{"n1-c-8120fe-pod", "n2-c-8120fe-pod"}; !slices.Equal(got, want) {
		t.Errorf("pods %v, want %v", got, want)
	}
	if evs := drain(rec); !hasEvent(evs, reasonBrokerCreated) || len(evs) != 2 {
		t.Errorf("events %q", evs)
	}
}

func TestBrokerReconcilerUnshared(t *testing.T) {
	inst := testInstance("c-e77db4", "c", false, "n1")
	c := fakeClient(t, inst, testConfiguration("c", brokerSpec()))
	r := &brokerReconciler{client: c, live: c, recorder: newRecorder()}
	if _, err := r.Reconcile(context.Background(), request(testNS, inst.Name)); err != nil {
		t.Fatal(err)
	}
	if got := podNames(listPods(t, c)); !slices.Equal(got, []string{"c-e77db4-pod"}) {
		t.Errorf("pods %v", got)
	}
}

func TestBrokerReconcilerNothingToDo(t *testing.T) {
	tests := []struct {
		name      string
		objs      []client.Object
		wantEvent string
	}{
		{"no configuration", nil, reasonConfigurationNotFound},
		{"no broker spec", []client.Object{testConfiguration("c", nil)}, ""},
		{"no instance", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs := tt.objs
			if tt.name != "no instance" {
				objs = append(objs, testInstance("c-1", "c", true, "n1"))
			}
			c := fakeClient(t, objs...)
			rec := newRecorder()
			r := &brokerReconciler{client: c, live: c, recorder: rec}
			if _, err := r.Reconcile(context.Background(), request(testNS, "c-1")); err != nil {
				t.Fatal(err)
			}
			if pods := listPods(t, c); len(pods) != 0 {
				t.Errorf("pods %v", podNames(pods))
			}
			evs := drain(rec)
			if tt.wantEvent != "" && !hasEvent(evs, tt.wantEvent) || tt.wantEvent == "" && len(evs) != 0 {
				t.Errorf("events %q, want %q", evs, tt.wantEvent)
			}
		})
	}
}

func TestBrokerReconcilerRemovesWhatDoesNotBelong(t *testing.T) {
	ctx := context.Background()
	inst := testInstance("c-8120fe", "c", true, "n1")
	keep := testPod(inst, "n1", corev1.PodRunning)
	left := testPod(inst, "n2", corev1.PodRunning) // n2 left spec.nodes
	old := inst.DeepCopy()
	old.UID = "earlier"
	stale := testPod(old, "n3", corev1.PodRunning) // an earlier Instance's
	stale.Name = "n1-stale"
	jobPod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{
		Name: "job-pod", Namespace: testNS,
		Labels:          map[string]string{LabelInstance: inst.Name, LabelConfiguration: "c"},
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "batch/v1", Kind: "Job", Name: "j", UID: "j", Controller: ptr.To(true)}},
	}}
	c := fakeClient(t, inst, testConfiguration("c", brokerSpec()), keep, left, stale, jobPod)
	rec := newRecorder()
	r := &brokerReconciler{client: c, live: c, recorder: rec}
	if _, err := r.Reconcile(ctx, request(testNS, inst.Name)); err != nil {
		t.Fatal(err)
	}
	got := podNames(listPods(t, c))
	slices.Sort(got)
	if want := []string{"job-pod", "n1-c-8120fe-pod"}; !slices.Equal(got, want) {
		t.Errorf("pods %v, want %v", got, want)
	}
	var kept corev1.Pod
	if err := c.Get(ctx, client.ObjectKeyFromObject(keep), &kept); err != nil || kept.UID != keep.UID {
		t.Errorf("the running broker was replaced: %v", err)
	}
	if evs := drain(rec); !hasEvent(evs, reasonBrokerDeleted) {
		t.Errorf("events %q", evs)
	}
}

func TestBrokerReconcilerInstanceGone(t *testing.T) {
	inst := testInstance("c-8120fe", "c", true, "n1", "n2")
	c := fakeClient(t, testPod(inst, "n1", corev1.PodRunning), testPod(inst, "n2", corev1.PodPending),
		&batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "c-8120fe-3-job", Namespace: testNS,
			Labels: map[string]string{LabelInstance: inst.Name}, OwnerReferences: newBrokerPod(inst, brokerSpec(), "x").OwnerReferences}})
	r := &brokerReconciler{client: c, live: c, recorder: newRecorder()}
	if _, err := r.Reconcile(context.Background(), request(testNS, inst.Name)); err != nil {
		t.Fatal(err)
	}
	if pods := listPods(t, c); len(pods) != 0 {
		t.Errorf("pods left: %v", podNames(pods))
	}
	var jobs batchv1.JobList
	if err := c.List(context.Background(), &jobs); err != nil || len(jobs.Items) != 0 {
		t.Errorf("jobs left: %v %v", jobs.Items, err)
	}
}

func TestBrokerReconcilerInstanceBeingDeleted(t *testing.T) {
	inst := testInstance("c-8120fe", "c", true, "n1")
	inst.Finalizers = []string{"n1"}
	inst.DeletionTimestamp = ptr.To(metav1.Now())
	c := fakeClient(t, inst, testConfiguration("c", brokerSpec()), testPod(inst, "n1", corev1.PodRunning))
	r := &brokerReconciler{client: c, live: c, recorder: newRecorder()}
	if _, err := r.Reconcile(context.Background(), request(testNS, inst.Name)); err != nil {
		t.Fatal(err)
	}
	if pods := listPods(t, c); len(pods) != 0 {
		t.Errorf("pods left: %v", podNames(pods))
	}
}

func TestBrokerReconcilerJob(t *testing.T) {
	ctx := context.Background()
	inst := testInstance("c-8120fe", "c", true, "n1", "n2")
	cfg := testConfiguration("c", nil)
	cfg.Spec.BrokerSpec = &akriv0.BrokerSpec{BrokerJobSpec: &batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: *brokerSpec()}}}
	c := fakeClient(t, inst, cfg)
	r := &brokerReconciler{client: c, live: c, recorder: newRecorder()}
	for range 2 {
		if _, err := r.Reconcile(ctx, request(testNS, inst.Name)); err != nil {
			t.Fatal(err)
		}
	}
	var jobs batchv1.JobList
	if err := c.List(ctx, &jobs); err != nil {
		t.Fatal(err)
	}
	if len(jobs.Items) != 1 || jobs.Items[0].Name != "c-8120fe-3-job" {
		t.Fatalf("jobs %+v", jobs.Items)
	}
	if pods := listPods(t, c); len(pods) != 0 {
		t.Errorf("a Job broker made pods: %v", podNames(pods))
	}
}

func TestBrokerReconcilerInvalidBroker(t *testing.T) {
	long := strings.Repeat("n", 70) // a node name too long for the target-node label
	inst := testInstance("c-8120fe", "c", true, long)
	c := fakeClient(t, inst, testConfiguration("c", brokerSpec()))
	rec := newRecorder()
	r := &brokerReconciler{client: c, live: c, recorder: rec}
	if _, err := r.Reconcile(context.Background(), request(testNS, inst.Name)); err != nil {
		t.Fatalf("an invalid broker is reported, not retried: %v", err)
	}
	if evs := drain(rec); !hasEvent(evs, reasonInvalidBrokerSpec) {
		t.Errorf("events %q", evs)
	}
}

// A foreign pod with the broker's name is reported, never deleted.
func TestBrokerReconcilerNameTaken(t *testing.T) {
	inst := testInstance("c-8120fe", "c", true, "n1")
	foreign := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "n1-c-8120fe-pod", Namespace: testNS, UID: "foreign"}}
	c := fakeClient(t, inst, testConfiguration("c", brokerSpec()), foreign)
	rec := newRecorder()
	r := &brokerReconciler{client: c, live: c, recorder: rec}
	if _, err := r.Reconcile(context.Background(), request(testNS, inst.Name)); err != nil {
		t.Fatal(err)
	}
	var p corev1.Pod
	if err := c.Get(context.Background(), types.NamespacedName{Namespace: testNS, Name: foreign.Name}, &p); err != nil || p.UID != "foreign" {
		t.Errorf("foreign pod touched: %v", err)
	}
	if evs := drain(rec); !hasEvent(evs, reasonBrokerNameTaken) {
		t.Errorf("events %q", evs)
	}
}

// A spec the API server refuses is reported once on the Configuration (and
// the Instance) and not retried.
func TestBrokerReconcilerRefusedSpec(t *testing.T) {
	inst := testInstance("c-8120fe", "c", true, "n1", "n2")
	creates := 0
	c := fake.NewClientBuilder().WithScheme(testScheme(t)).
		WithObjects(inst, testConfiguration("c", brokerSpec())).
		WithInterceptorFuncs(interceptor.Funcs{Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
			creates++
			return apierrors.NewInvalid(schema.GroupKind{Kind: "Pod"}, obj.GetName(), field.ErrorList{field.Required(field.NewPath("spec", "containers").Index(0).Child("image"), "")})
		}}).Build()
	rec := newRecorder()
	r := &brokerReconciler{client: c, live: c, recorder: rec}
	if _, err := r.Reconcile(context.Background(), request(testNS, inst.Name)); err != nil {
		t.Fatalf("a refused spec is reported, not retried: %v", err)
	}
	evs := drain(rec)
	if creates != 1 || len(evs) != 2 || !hasEvent(evs, reasonInvalidBrokerSpec) {
		t.Errorf("%d creates, events %q", creates, evs)
	}
}
