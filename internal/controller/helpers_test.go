package controller

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	akriv0 "github.com/wasilet/wasilet/agent/apis/akri/v0"
)

const testNS = "ns"

func testScheme(t testing.TB) *runtime.Scheme {
	t.Helper()
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	if err := akriv0.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	return s
}

func fakeClient(t testing.TB, objs ...client.Object) client.WithWatch {
	t.Helper()
	return fake.NewClientBuilder().
		WithScheme(testScheme(t)).
		WithObjects(objs...).
		WithIndex(&akriv0.Instance{}, indexConfiguration, instanceConfiguration).
		Build()
}

func testInstance(name, cfg string, shared bool, nodes ...string) *akriv0.Instance {
	return &akriv0.Instance{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: testNS, UID: types.UID("uid-" + name)},
		Spec: akriv0.InstanceSpec{
			ConfigurationName: cfg,
			CDIName:           akriv0.CDIName(cfg, "abc123"),
			Capacity:          2,
			Shared:            shared,
			Nodes:             nodes,
		},
	}
}

// brokerSpec is a broker PodSpec asking for {{PLACEHOLDER}}: 1.
func brokerSpec() *corev1.PodSpec {
	q := resource.MustParse("1")
	return &corev1.PodSpec{Containers: []corev1.Container{{
		Name:  "broker",
		Image: "example.test/broker:1",
		Resources: corev1.ResourceRequirements{
			Limits:   corev1.ResourceList{Placeholder: q},
			Requests: corev1.ResourceList{Placeholder: q},
		},
	}}}
}

func testConfiguration(name string, pod *corev1.PodSpec) *akriv0.Configuration {
	c := &akriv0.Configuration{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: testNS, UID: types.UID("uid-" + name), Generation: 3},
		Spec:       akriv0.ConfigurationSpec{DiscoveryHandler: akriv0.DiscoveryHandlerInfo{Name: "debugEcho"}},
	}
	if pod != nil {
		c.Spec.BrokerSpec = &akriv0.BrokerSpec{BrokerPodSpec: pod}
	}
	return c
}

func testPod(inst *akriv0.Instance, node string, phase corev1.PodPhase) *corev1.Pod {
	p := newBrokerPod(inst, brokerSpec(), node)
	p.UID = types.UID("pod-" + p.Name)
	p.Status.Phase = phase
	return p
}

func request(ns, name string) reconcile.Request {
	return reconcile.Request{NamespacedName: types.NamespacedName{Namespace: ns, Name: name}}
}

func newRecorder() *events.FakeRecorder { return events.NewFakeRecorder(100) }

// drain returns the events recorded so far.
func drain(r *events.FakeRecorder) []string {
	var out []string
	for {
		select {
		case e := <-r.Events:
			out = append(out, e)
		default:
			return out
		}
	}
}

func hasEvent(evs []string, reason string) bool {
	for _, e := range evs {
		if strings.Contains(e, " "+reason+" ") {
			return true
		}
	}
	return false
}

func listPods(t testing.TB, c client.Client) []corev1.Pod {
	t.Helper()
	var l corev1.PodList
	if err := c.List(context.Background(), &l); err != nil {
		t.Fatal(err)
	}
	return l.Items
}

func podNames(pods []corev1.Pod) []string {
	var out []string
	for _, p := range pods {
		out = append(out, p.Name)
	}
	return out
}
