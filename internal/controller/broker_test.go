package controller

import (
	"errors"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	"github.com/google/go-cmp/cmp"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func TestNewBrokerPod(t *testing.T) {
	inst := testInstance("akri-debug-echo-8120fe", "akri-debug-echo", true, "n1", "n2")
	spec := brokerSpec()
	spec.InitContainers = []corev1.Container{{
		Name: "init",
		Resources: corev1.ResourceRequirements{
			Limits: corev1.ResourceList{Placeholder: resource.MustParse("2"), corev1.ResourceCPU: resource.MustParse("100m")},
			Claims: []corev1.ResourceClaim{{Name: "gpu"}},
		},
	}}
	orig := spec.DeepCopy()

	p := newBrokerPod(inst, spec, "n2")

	if diff := cmp.Diff(orig, spec); diff != "" {
		t.Errorf("the Configuration's spec was modified (-before +after):\n%s", diff)
	}
	if p.Name != "n2-akri-debug-echo-8120fe-pod" || p.Namespace != testNS {
		t.Errorf("pod %s/%s", p.Namespace, p.Name)
	}
	wantLabels := map[string]string{
		"app":                   "n2-akri-debug-echo-8120fe-pod",
		"controller":            "akri.sh",
		"akri.sh/configuration": "akri-debug-echo",
		"akri.sh/instance":      "akri-debug-echo-8120fe",
		"akri.sh/target-node":   "n2",
	}
	if diff := cmp.Diff(wantLabels, p.Labels); diff != "" {
		t.Errorf("labels (-want +got):\n%s", diff)
	}
	if len(p.Annotations) != 0 {
		t.Errorf("annotations %v: upstream adds none", p.Annotations)
	}
	wantRef := []metav1.OwnerReference{{
		APIVersion: "akri.sh/v0", Kind: "Instance", Name: inst.Name, UID: inst.UID,
		Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true),
	}}
	if diff := cmp.Diff(wantRef, p.OwnerReferences); diff != "" {
		t.Errorf("owner references (-want +got):\n%s", diff)
	}

	res := corev1.ResourceName("akri.sh/akri-debug-echo-8120fe")
	c := p.Spec.Containers[0].Resources
	if q := c.Limits[res]; q.String() != "1" {
		t.Errorf("container limit %s = %s, want 1", res, q.String())
	}
	if q := c.Requests[res]; q.String() != "1" {
		t.Errorf("container request %s = %s, want 1", res, q.String())
	}
	if _, ok := c.Limits[Placeholder]; ok {
		t.Error("placeholder left in limits")
	}
	ic := p.Spec.InitContainers[0].Resources
	if q := ic.Limits[res]; q.String() != "2" {
		t.Errorf("init container limit = %s, want the placeholder's 2", q.String())
	}
	if q := ic.Limits[corev1.ResourceCPU]; q.String() != "100m" {
		t.Errorf("other limits changed: cpu %s", q.String())
	}
	if ic.Requests != nil {
		t.Errorf("requests appeared: %v", ic.Requests)
	}
	if len(ic.Claims) != 1 {
		t.Errorf("resource claims dropped: %v", ic.Claims)
	}
	if p.Spec.RestartPolicy != "" || len(p.Spec.Containers[0].Env) != 0 {
		t.Error("restart policy or env added: upstream adds neither")
	}

	wantAffinity := &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
		RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
			MatchFields: []corev1.NodeSelectorRequirement{{Key: "metadata.name", Operator: corev1.NodeSelectorOpIn, Values: []string{"n2"}}},
		}}},
	}}
	if diff := cmp.Diff(wantAffinity, p.Spec.Affinity); diff != "" {
		t.Errorf("affinity (-want +got):\n%s", diff)
	}
}

// The spec's own required terms each get the node requirement (ANDed), so
// none of them lets the broker leave its node; preferences stay as they are.
func TestRequireNodeKeepsOwnAffinity(t *testing.T) {
	spec := brokerSpec()
	pref := []corev1.PreferredSchedulingTerm{{Weight: 1, Preference: corev1.NodeSelectorTerm{
		MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "zone", Operator: corev1.NodeSelectorOpIn, Values: []string{"a"}}},
	}}}
	spec.Affinity = &corev1.Affinity{
		NodeAffinity: &corev1.NodeAffinity{
			RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{
				{MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "kubernetes.io/arch", Operator: corev1.NodeSelectorOpIn, Values: []string{"wasm32-wasi"}}}},
				{MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "gpu", Operator: corev1.NodeSelectorOpExists}}},
			}},
			PreferredDuringSchedulingIgnoredDuringExecution: pref,
		},
		PodAntiAffinity: &corev1.PodAntiAffinity{},
	}
	p := newBrokerPod(testInstance("i", "c", false, "n1"), spec, "n1")

	na := p.Spec.Affinity.NodeAffinity
	terms := na.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms
	if len(terms) != 2 {
		t.Fatalf("%d terms, want the spec's 2", len(terms))
	}
	for i, term := range terms {
		if len(term.MatchExpressions) != 1 {
			t.Errorf("term %d lost its expressions: %+v", i, term)
		}
		want := []corev1.NodeSelectorRequirement{{Key: "metadata.name", Operator: corev1.NodeSelectorOpIn, Values: []string{"n1"}}}
		if diff := cmp.Diff(want, term.MatchFields); diff != "" {
			t.Errorf("term %d matchFields (-want +got):\n%s", i, diff)
		}
	}
	if diff := cmp.Diff(pref, na.PreferredDuringSchedulingIgnoredDuringExecution); diff != "" {
		t.Errorf("preferences changed:\n%s", diff)
	}
	if p.Spec.Affinity.PodAntiAffinity == nil {
		t.Error("pod anti-affinity dropped")
	}
	if len(spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms[0].MatchFields) != 0 {
		t.Error("the Configuration's spec was modified")
	}
}

func TestBrokerPodFromLegacySpec(t *testing.T) {
	cfg := testConfiguration("c", nil)
	cfg.Spec.BrokerPodSpecLegacy = brokerSpec()
	spec := cfg.Spec.BrokerPodSpec()
	if spec == nil {
		t.Fatal("legacy spec.brokerPodSpec not read")
	}
	p := newBrokerPod(testInstance("c-aae70c", "c", true, "n"), spec, "n")
	if _, ok := p.Spec.Containers[0].Resources.Limits["akri.sh/c-aae70c"]; !ok {
		t.Errorf("limits %v", p.Spec.Containers[0].Resources.Limits)
	}
}

func TestNewBrokerJob(t *testing.T) {
	inst := testInstance("cfg.x-8120fe", "cfg.x", true, "n1")
	spec := &batchv1.JobSpec{
		BackoffLimit: ptr.To[int32](2),
		Template: corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"mine": "yes", LabelInstance: "spoofed"}},
			Spec:       *brokerSpec(),
		},
	}
	orig := spec.DeepCopy()
	j := newBrokerJob(inst, 4, spec)
	if diff := cmp.Diff(orig, spec); diff != "" {
		t.Errorf("the Configuration's spec was modified:\n%s", diff)
	}
	if j.Name != "cfg-x-8120fe-4-job" {
		t.Errorf("name %s", j.Name)
	}
	wantLabels := map[string]string{
		"app": "cfg-x-8120fe-4-job", "controller": "akri.sh",
		"akri.sh/configuration": "cfg.x", "akri.sh/instance": "cfg.x-8120fe",
	}
	if diff := cmp.Diff(wantLabels, j.Labels); diff != "" {
		t.Errorf("labels (-want +got):\n%s", diff)
	}
	wantTemplate := map[string]string{"mine": "yes", "akri.sh/configuration": "cfg.x", "akri.sh/instance": "cfg.x-8120fe"}
	if diff := cmp.Diff(wantTemplate, j.Spec.Template.Labels); diff != "" {
		t.Errorf("template labels (-want +got):\n%s", diff)
	}
	if _, ok := j.Spec.Template.Spec.Containers[0].Resources.Requests["akri.sh/cfg.x-8120fe"]; !ok {
		t.Errorf("placeholder not replaced: %v", j.Spec.Template.Spec.Containers[0].Resources.Requests)
	}
	if j.Spec.Template.Spec.Affinity != nil {
		t.Error("a Job's pods get no node affinity (upstream)")
	}
	if ref := j.OwnerReferences; len(ref) != 1 || ref[0].Kind != "Instance" || !*ref[0].Controller {
		t.Errorf("owner %+v", ref)
	}
}

func TestValidateMeta(t *testing.T) {
	long := strings.Repeat("n", 60)
	p := newBrokerPod(testInstance("c-abcdef", "c", true, long), brokerSpec(), long)
	err := validateMeta(p, false)
	if !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("app label of %d chars: err = %v", len(p.Name), err)
	}
	if err := validateMeta(newBrokerPod(testInstance("c-abcdef", "c", true, "n1"), brokerSpec(), "n1"), false); err != nil {
		t.Fatal(err)
	}
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "9-svc"}}
	if err := validateMeta(svc, true); err == nil {
		t.Error("service name starting with a digit accepted")
	}
}
