package controller

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	akriv0 "github.com/wasilet/wasilet/agent/apis/akri/v0"
)

func TestUsedBy(t *testing.T) {
	for v, want := range map[string]string{
		"":                    "",
		"node-a":              "node-a",
		"C:cfg-0:node-a":      "node-a",
		"C:cfg-0:node-a:more": "node-a:more", // upstream splits at the first colon
		"C:cfg-0":             "",
		"C:cfg-0:":            "",
	} {
		if got := usedBy(v); got != want {
			t.Errorf("usedBy(%q) = %q, want %q", v, got, want)
		}
	}
}

func TestNodeCleanupPatch(t *testing.T) {
	inst := testInstance("c-1", "c", true, "n1", "n2", "n1")
	inst.Finalizers = []string{"n2", "n1"}
	inst.Spec.DeviceUsage = map[string]string{
		"c-1-0": "n1", "c-1-1": "C:c-0:n1", "c-1-2": "n2", "c-1-3": "", "c-1/4~": "n1",
	}
	ops, freed := nodeCleanupPatch(inst, "n1")
	got, _ := json.Marshal(ops)
	want := `[` +
		`{"op":"test","path":"/spec/nodes/2","value":"n1"},{"op":"remove","path":"/spec/nodes/2"},` +
		`{"op":"test","path":"/spec/nodes/0","value":"n1"},{"op":"remove","path":"/spec/nodes/0"},` +
		`{"op":"test","path":"/spec/deviceUsage/c-1-0","value":"n1"},{"op":"replace","path":"/spec/deviceUsage/c-1-0","value":""},` +
		`{"op":"test","path":"/spec/deviceUsage/c-1-1","value":"C:c-0:n1"},{"op":"replace","path":"/spec/deviceUsage/c-1-1","value":""},` +
		`{"op":"test","path":"/spec/deviceUsage/c-1~14~0","value":"n1"},{"op":"replace","path":"/spec/deviceUsage/c-1~14~0","value":""},` +
		`{"op":"test","path":"/metadata/finalizers/1","value":"n1"},{"op":"remove","path":"/metadata/finalizers/1"}]`
	if string(got) != want {
		t.Errorf("patch\n got %s\nwant %s", got, want)
	}
	if diff := cmp.Diff([]string{"c-1-0", "c-1-1", "c-1/4~"}, freed); diff != "" {
		t.Errorf("freed (-want +got):\n%s", diff)
	}
	if ops, _ := nodeCleanupPatch(inst, "n3"); len(ops) != 0 {
		t.Errorf("patch for an unknown node: %+v", ops)
	}
}

func TestDisown(t *testing.T) {
	ours := func(fields string) metav1.ManagedFieldsEntry {
		return metav1.ManagedFieldsEntry{Manager: FieldManager, Operation: metav1.ManagedFieldsOperationUpdate, APIVersion: "akri.sh/v0", FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: []byte(fields)}}
	}
	agent := metav1.ManagedFieldsEntry{Manager: "dp-n2", Operation: metav1.ManagedFieldsOperationApply, FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:spec":{"f:deviceUsage":{"f:i-2":{}}}}`)}}
	usage := map[string]string{"i-0": "", "i-1": "", "i-2": "n2"}

	mf, changed := disown([]metav1.ManagedFieldsEntry{agent, ours(`{"f:spec":{"f:deviceUsage":{"f:i-0":{},"f:i-1":{}}}}`)}, FieldManager, []string{"i-0", "i-1"}, usage)
	if !changed || len(mf) != 1 || mf[0].Manager != "dp-n2" {
		t.Errorf("entry owning only freed slots not dropped: %+v", mf)
	}

	mf, changed = disown([]metav1.ManagedFieldsEntry{ours(`{"f:metadata":{"f:labels":{"f:x":{}}},"f:spec":{"f:deviceUsage":{"f:i-0":{},"f:i-2":{}}}}`)}, FieldManager, []string{"i-0", "i-2"}, usage)
	if !changed || len(mf) != 1 {
		t.Fatalf("mf %+v", mf)
	}
	// i-2 is held again (by n2): our ownership of it is not ours to drop
	// silently; only the free slot goes.
	if got, want := string(mf[0].FieldsV1.Raw), `{"f:metadata":{"f:labels":{"f:x":{}}},"f:spec":{"f:deviceUsage":{"f:i-2":{}}}}`; got != want {
		t.Errorf("fields\n got %s\nwant %s", got, want)
	}

	if _, changed := disown([]metav1.ManagedFieldsEntry{agent}, FieldManager, []string{"i-0"}, usage); changed {
		t.Error("changed without an entry of ours")
	}
}

func readyNode(name string, status corev1.ConditionStatus) *corev1.Node {
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Status:     corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: status}}},
	}
}

func TestNodeReconcilerDeletedNode(t *testing.T) {
	ctx := context.Background()
	shared := testInstance("c-1", "c", true, "n1", "n2")
	shared.Finalizers = []string{"n1", "n2"}
	shared.Spec.DeviceUsage = map[string]string{"c-1-0": "n1", "c-1-1": "n2"}
	only := testInstance("c-2", "c", true, "n1")
	only.Spec.DeviceUsage = map[string]string{"c-2-0": "C:c-0:n1", "c-2-1": ""}
	other := testInstance("c-3", "c", true, "n2")
	c := fakeClient(t, shared, only, other, testPod(shared, "n1", corev1.PodRunning), testPod(shared, "n2", corev1.PodRunning))
	rec := newRecorder()
	r := &nodeReconciler{client: c, live: c, recorder: rec}

	if _, err := r.Reconcile(ctx, request("", "n1")); err != nil { // no Node n1: deleted
		t.Fatal(err)
	}

	var got akriv0.Instance
	if err := c.Get(ctx, client.ObjectKeyFromObject(shared), &got); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"n2"}, got.Spec.Nodes); diff != "" {
		t.Errorf("nodes (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]string{"c-1-0": "", "c-1-1": "n2"}, got.Spec.DeviceUsage); diff != "" {
		t.Errorf("deviceUsage (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"n2"}, got.Finalizers); diff != "" {
		t.Errorf("finalizers (-want +got):\n%s", diff)
	}
	if err := c.Get(ctx, client.ObjectKeyFromObject(only), &got); !apierrors.IsNotFound(err) {
		t.Errorf("Instance left with no node not deleted: %v %+v", err, got.Spec)
	}
	if err := c.Get(ctx, client.ObjectKeyFromObject(other), &got); err != nil || len(got.Spec.Nodes) != 1 {
		t.Errorf("unrelated Instance changed: %v %+v", err, got.Spec)
	}
	if pods := podNames(listPods(t, c)); len(pods) != 1 || pods[0] != "n2-c-1-pod" {
		t.Errorf("pods %v, want n1's broker gone", pods)
	}
	if evs := drain(rec); !hasEvent(evs, reasonNodeGone) {
		t.Errorf("events %q", evs)
	}
}

func TestNodeReconcilerReadiness(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name        string
		states      []corev1.ConditionStatus // successive Ready statuses seen
		wantCleaned bool
	}{
		{"ready", []corev1.ConditionStatus{corev1.ConditionTrue}, false},
		{"never ready (registering)", []corev1.ConditionStatus{corev1.ConditionFalse}, false},
		{"no condition yet", []corev1.ConditionStatus{""}, false},
		{"ready then not ready", []corev1.ConditionStatus{corev1.ConditionTrue, corev1.ConditionFalse}, true},
		{"stopped reporting", []corev1.ConditionStatus{corev1.ConditionUnknown}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inst := testInstance("c-1", "c", true, "n1", "n2")
			node := readyNode("n1", tt.states[0])
			if tt.states[0] == "" {
				node.Status.Conditions = nil
			}
			c := fakeClient(t, inst, node)
			r := &nodeReconciler{client: c, live: c, recorder: newRecorder()}
			for i, s := range tt.states {
				if i > 0 {
					node.Status.Conditions[0].Status = s
					if err := c.Status().Update(ctx, node); err != nil {
						t.Fatal(err)
					}
				}
				if _, err := r.Reconcile(ctx, request("", "n1")); err != nil {
					t.Fatal(err)
				}
			}
			var got akriv0.Instance
			if err := c.Get(ctx, types.NamespacedName{Namespace: testNS, Name: "c-1"}, &got); err != nil {
				t.Fatal(err)
			}
			if cleaned := len(got.Spec.Nodes) == 1; cleaned != tt.wantCleaned {
				t.Errorf("nodes %v: cleaned = %v, want %v", got.Spec.Nodes, cleaned, tt.wantCleaned)
			}
		})
	}
}

// Once cleaned up after, a NotReady node's agent may add it back (upstream
// cleans once per transition too): no fight until it is Ready again.
func TestNodeReconcilerCleansOncePerTransition(t *testing.T) {
	ctx := context.Background()
	inst := testInstance("c-1", "c", true, "n1", "n2")
	node := readyNode("n1", corev1.ConditionUnknown)
	c := fakeClient(t, inst, node)
	r := &nodeReconciler{client: c, live: c, recorder: newRecorder()}
	if _, err := r.Reconcile(ctx, request("", "n1")); err != nil {
		t.Fatal(err)
	}
	var got akriv0.Instance
	if err := c.Get(ctx, client.ObjectKeyFromObject(inst), &got); err != nil {
		t.Fatal(err)
	}
	got.Spec.Nodes = append(got.Spec.Nodes, "n1") // the agent re-joins
	if err := c.Update(ctx, &got); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Reconcile(ctx, request("", "n1")); err != nil {
		t.Fatal(err)
	}
	if err := c.Get(ctx, client.ObjectKeyFromObject(inst), &got); err != nil || len(got.Spec.Nodes) != 2 {
		t.Errorf("nodes %v (%v): cleaned up twice for one transition", got.Spec.Nodes, err)
	}
}
