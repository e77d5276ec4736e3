package controller

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"

	akriv0 "github.com/wasilet/wasilet/agent/apis/akri/v0"
)

func serviceConfiguration() *akriv0.Configuration {
	cfg := testConfiguration("c", brokerSpec())
	port := []corev1.ServicePort{{Name: "grpc", Port: 6052}}
	cfg.Spec.InstanceServiceSpec = &corev1.ServiceSpec{Ports: port, Selector: map[string]string{"extra": "x"}}
	cfg.Spec.ConfigurationServiceSpec = &corev1.ServiceSpec{Ports: port}
	return cfg
}

func getService(t *testing.T, c client.Client, name string) *corev1.Service {
	t.Helper()
	var s corev1.Service
	err := c.Get(context.Background(), types.NamespacedName{Namespace: testNS, Name: name}, &s)
	if err != nil {
		if client.IgnoreNotFound(err) != nil {
			t.Fatal(err)
		}
		return nil
	}
	return &s
}

func reconcileServices(t *testing.T, c client.Client, rec *events.FakeRecorder, inst string) {
	t.Helper()
	ri := &serviceReconciler{client: c, live: c, recorder: rec, perInstance: true}
	if _, err := ri.Reconcile(context.Background(), request(testNS, inst)); err != nil {
		t.Fatal(err)
	}
	rc := &serviceReconciler{client: c, live: c, recorder: rec}
	if _, err := rc.Reconcile(context.Background(), request(testNS, "c")); err != nil {
		t.Fatal(err)
	}
}

func TestServicesFollowRunningBrokers(t *testing.T) {
	ctx := context.Background()
	inst := testInstance("c.x-8120fe", "c", true, "n1")
	cfg := serviceConfiguration()
	pod := testPod(inst, "n1", corev1.PodPending)
	c := fakeClient(t, inst, cfg, pod)
	rec := newRecorder()

	reconcileServices(t, c, rec, inst.Name)
	if getService(t, c, "c-x-8120fe-svc") != nil || getService(t, c, "c-svc") != nil {
		t.Fatal("services exist while no broker runs")
	}

	pod.Status.Phase = corev1.PodRunning
	if err := c.Status().Update(ctx, pod); err != nil {
		t.Fatal(err)
	}
	reconcileServices(t, c, rec, inst.Name)
	is := getService(t, c, "c-x-8120fe-svc")
	if is == nil {
		t.Fatal("no instance service")
	}
	if diff := cmp.Diff(map[string]string{"extra": "x", "controller": "akri.sh", "akri.sh/instance": "c.x-8120fe"}, is.Spec.Selector); diff != "" {
		t.Errorf("instance service selector (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]string{"app": "c-x-8120fe-svc", "controller": "akri.sh", "akri.sh/instance": "c.x-8120fe"}, is.Labels); diff != "" {
		t.Errorf("instance service labels (-want +got):\n%s", diff)
	}
	if ref := is.OwnerReferences; len(ref) != 1 || ref[0].Kind != "Instance" || ref[0].UID != inst.UID || !*ref[0].Controller || !*ref[0].BlockOwnerDeletion {
		t.Errorf("instance service owner %+v", ref)
	}
	cs := getService(t, c, "c-svc")
	if cs == nil {
		t.Fatal("no configuration service")
	}
	if diff := cmp.Diff(map[string]string{"controller": "akri.sh", "akri.sh/configuration": "c"}, cs.Spec.Selector); diff != "" {
		t.Errorf("configuration service selector (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]string{"app": "c-svc", "controller": "akri.sh", "akri.sh/configuration": "c"}, cs.Labels); diff != "" {
		t.Errorf("configuration service labels (-want +got):\n%s", diff)
	}
	if ref := cs.OwnerReferences; len(ref) != 1 || ref[0].Kind != "Configuration" || ref[0].UID != cfg.UID {
		t.Errorf("configuration service owner %+v", ref)
	}
	if evs := drain(rec); !hasEvent(evs, reasonServiceCreated) {
		t.Errorf("events %q", evs)
	}

	pod.Status.Phase = corev1.PodFailed
	if err := c.Status().Update(ctx, pod); err != nil {
		t.Fatal(err)
	}
	reconcileServices(t, c, rec, inst.Name)
	if getService(t, c, "c-x-8120fe-svc") != nil || getService(t, c, "c-svc") != nil {
		t.Fatal("services outlive the running brokers")
	}
	if evs := drain(rec); !hasEvent(evs, reasonServiceDeleted) {
		t.Errorf("events %q", evs)
	}
}

func TestServicesNotWanted(t *testing.T) {
	inst := testInstance("c-8120fe", "c", true, "n1")
	cfg := testConfiguration("c", brokerSpec()) // no service specs
	c := fakeClient(t, inst, cfg, testPod(inst, "n1", corev1.PodRunning))
	reconcileServices(t, c, newRecorder(), inst.Name)
	var l corev1.ServiceList
	if err := c.List(context.Background(), &l); err != nil || len(l.Items) != 0 {
		t.Errorf("services %v %v", l.Items, err)
	}
}

// A Service of the same name that is not ours is reported and left alone,
// also when no broker runs.
func TestServicesForeignNameTaken(t *testing.T) {
	inst := testInstance("c-8120fe", "c", true, "n1")
	foreign := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "c-svc", Namespace: testNS, UID: "foreign"}}
	c := fakeClient(t, inst, serviceConfiguration(), testPod(inst, "n1", corev1.PodRunning), foreign)
	rec := newRecorder()
	reconcileServices(t, c, rec, inst.Name)
	if s := getService(t, c, "c-svc"); s == nil || s.UID != "foreign" || len(s.OwnerReferences) != 0 {
		t.Errorf("foreign service touched: %+v", s)
	}
	if evs := drain(rec); !hasEvent(evs, reasonServiceNameTaken) {
		t.Errorf("events %q", evs)
	}
}

// An existing Service of ours gets its owner back (upstream re-owns too).
func TestServicesReowned(t *testing.T) {
	inst := testInstance("c-8120fe", "c", true, "n1")
	old := &corev1.Service{ObjectMeta: metav1.ObjectMeta{
		Name: "c-8120fe-svc", Namespace: testNS,
		Labels:          map[string]string{LabelController: ControllerValue, LabelInstance: inst.Name, "keep": "me"},
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "akri.sh/v0", Kind: "Instance", Name: inst.Name, UID: "earlier"}},
	}}
	c := fakeClient(t, inst, serviceConfiguration(), testPod(inst, "n1", corev1.PodRunning), old)
	reconcileServices(t, c, newRecorder(), inst.Name)
	s := getService(t, c, "c-8120fe-svc")
	if s == nil || len(s.OwnerReferences) != 1 || s.OwnerReferences[0].UID != inst.UID {
		t.Fatalf("service %+v", s)
	}
	if s.Labels["keep"] != "me" || s.Labels[LabelApp] != "c-8120fe-svc" {
		t.Errorf("labels %v", s.Labels)
	}
}
