package controller

import (
	"fmt"
	"strings"

	"github.com/containerd/errdefs"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"

	akriv0 "github.com/wasilet/wasilet/agent/apis/akri/v0"
)

// newBrokerPod builds the broker Pod of inst for node from the
// Configuration's PodSpec, which it does not modify. Like upstream it adds no
// environment, annotations or restart policy of its own: the device plugin
// gives the broker its environment when the kubelet allocates the resource.
func newBrokerPod(inst *akriv0.Instance, spec *corev1.PodSpec, node string) *corev1.Pod {
	name := BrokerPodName(inst.Name, node, inst.Spec.Shared)
	s := spec.DeepCopy()
	replacePlaceholder(s, corev1.ResourceName(akriv0.ResourceName(inst.Name)))
	requireNode(s, node)
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:      name,
			Namespace: inst.Namespace,
			Labels: map[string]string{
				LabelApp:           name,
				LabelController:    ControllerValue,
				LabelConfiguration: inst.Spec.ConfigurationName,
				LabelInstance:      inst.Name,
				LabelTargetNode:    node,
			},
			OwnerReferences: []metav1.OwnerReference{ownerRef(inst, "Instance")},
		},
		Spec: *s,
	}
}

// newBrokerJob builds the broker Job of inst from the Configuration's
// JobSpec (generation is the Configuration's). The Job's pods get the
// configuration and instance labels but, as upstream, no node affinity and no
// controller label.
func newBrokerJob(inst *akriv0.Instance, generation int64, spec *batchv1.JobSpec) *batchv1.Job {
	name := BrokerJobName(inst.Name, generation)
	s := spec.DeepCopy()
	replacePlaceholder(&s.Template.Spec, corev1.ResourceName(akriv0.ResourceName(inst.Name)))
	if s.Template.Labels == nil {
		s.Template.Labels = map[string]string{}
	}
	s.Template.Labels[LabelConfiguration] = inst.Spec.ConfigurationName
	s.Template.Labels[LabelInstance] = inst.Name
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{
			Name:      name,
			Namespace: inst.Namespace,
			Labels: map[string]string{
				LabelApp:           name,
				LabelController:    ControllerValue,
				LabelConfiguration: inst.Spec.ConfigurationName,
				LabelInstance:      inst.Name,
			},
			OwnerReferences: []metav1.OwnerReference{ownerRef(inst, "Instance")},
		},
		Spec: *s,
	}
}

// ownerRef is the controlling owner reference upstream puts on everything it
// creates: controller and blockOwnerDeletion both true.
func ownerRef(obj metav1.Object, kind string) metav1.OwnerReference {
	return metav1.OwnerReference{
		APIVersion:         akriv0.SchemeGroupVersion.String(),
		Kind:               kind,
		Name:               obj.GetName(),
		UID:                obj.GetUID(),
		Controller:         ptr.To(true),
		BlockOwnerDeletion: ptr.To(true),
	}
}

// replacePlaceholder renames the [Placeholder] resource to resource in the
// limits and requests of every container and init container, keeping its
// quantity. Upstream rebuilds each container's resources and so drops its
// resource claims; they are kept here.
func replacePlaceholder(spec *corev1.PodSpec, resource corev1.ResourceName) {
	rename := func(l corev1.ResourceList) {
		if q, ok := l[Placeholder]; ok {
			delete(l, Placeholder)
			l[resource] = q
		}
	}
	for _, cs := range [][]corev1.Container{spec.Containers, spec.InitContainers} {
		for i := range cs {
			rename(cs[i].Resources.Limits)
			rename(cs[i].Resources.Requests)
		}
	}
}

// requireNode restricts spec to node with the required node affinity
// `matchFields metadata.name In [node]`.
//
// Upstream appends this as one more node selector term. Terms are ORed, so
// when the broker spec has required terms of its own the broker may land on
// any node matching those instead of its device's node. Here the requirement
// is added to every existing term (requirements within a term are ANDed), or
// forms the only term when there is none.
func requireNode(spec *corev1.PodSpec, node string) {
	req := corev1.NodeSelectorRequirement{
		Key:      metav1.ObjectNameField,
		Operator: corev1.NodeSelectorOpIn,
		Values:   []string{node},
	}
	if spec.Affinity == nil {
		spec.Affinity = &corev1.Affinity{}
	}
	if spec.Affinity.NodeAffinity == nil {
		spec.Affinity.NodeAffinity = &corev1.NodeAffinity{}
	}
	na := spec.Affinity.NodeAffinity
	if na.RequiredDuringSchedulingIgnoredDuringExecution == nil {
		na.RequiredDuringSchedulingIgnoredDuringExecution = &corev1.NodeSelector{}
	}
	sel := na.RequiredDuringSchedulingIgnoredDuringExecution
	if len(sel.NodeSelectorTerms) == 0 {
		sel.NodeSelectorTerms = []corev1.NodeSelectorTerm{{}}
	}
	for i := range sel.NodeSelectorTerms {
		sel.NodeSelectorTerms[i].MatchFields = append(sel.NodeSelectorTerms[i].MatchFields, req)
	}
}

// errInvalidBroker wraps what makes a broker impossible to create whatever
// the cluster's state: a bad name or label made from odd Instance, node or
// Configuration names.
var errInvalidBroker = fmt.Errorf("invalid broker: %w", errdefs.ErrInvalidArgument)

// validateMeta checks the name and labels the controller made for obj, so
// that names the API server would refuse give one clear event instead of a
// create error on every retry. The spec is left to the API server.
func validateMeta(obj metav1.Object, dns1035 bool) error {
	var msgs []string
	if dns1035 {
		msgs = validation.IsDNS1035Label(obj.GetName())
	} else {
		msgs = validation.IsDNS1123Subdomain(obj.GetName())
	}
	for _, e := range metav1validation.ValidateLabels(obj.GetLabels(), field.NewPath("metadata", "labels")) {
		msgs = append(msgs, e.Error())
	}
	if len(msgs) > 0 {
		return fmt.Errorf("%s %q: %s: %w", "name or labels of", obj.GetName(), strings.Join(msgs, "; "), errInvalidBroker)
	}
	return nil
}
