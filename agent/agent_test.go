package agent

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	pluginapi "k8s.io/kubelet/pkg/apis/deviceplugin/v1beta1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	akri "github.com/wasilet/wasilet/agent/apis/akri/v0"
	v0 "github.com/wasilet/wasilet/proto/v0"
)

func TestClaimNode(t *testing.T) {
	for v, want := range map[string]string{
		"":                     "",
		"node-a":               "node-a",
		"C:cfg-0:node-a":       "node-a",
		"C:my.cfg-12:node.b.c": "node.b.c",
	} {
		if got := claimNode(v); got != want {
			t.Errorf("claimNode(%q) = %q, want %q", v, got, want)
		}
	}
}

func TestInstancePluginHealth(t *testing.T) {
	ip := &instancePlugin{
		key:      types.NamespacedName{Name: "cfg-8120fe"},
		capacity: 4,
		usage: map[string]string{
			"cfg-8120fe-0": "other",
			"cfg-8120fe-1": "me",
			"cfg-8120fe-2": "C:cfg-0:me",
		},
		mine: map[string]string{},
	}
	got := map[string]string{}
	for _, d := range ip.deviceList("me") {
		got[d.ID] = d.Health
	}
	want := map[string]string{
		"cfg-8120fe-0": pluginapi.Unhealthy, // another node holds it
		"cfg-8120fe-1": pluginapi.Healthy,   // this node holds it (the kubelet may re-allocate)
		"cfg-8120fe-2": pluginapi.Unhealthy, // a configuration-level claim
		"cfg-8120fe-3": pluginapi.Healthy,   // free
	}
	for id, h := range want {
		if got[id] != h {
			t.Errorf("%s: %s, want %s", id, got[id], h)
		}
	}
	// This node's own claims win over a stale read of deviceUsage.
	ip.mine["cfg-8120fe-3"] = "me"
	if v := ip.value(3); v != "me" {
		t.Errorf("value(3) = %q", v)
	}
}

func TestConfigPluginSlots(t *testing.T) {
	a := &instancePlugin{key: types.NamespacedName{Name: "cfg-aaaaaa"}, cfgName: "cfg", capacity: 2, usage: map[string]string{}, mine: map[string]string{}}
	b := &instancePlugin{key: types.NamespacedName{Name: "cfg-bbbbbb"}, cfgName: "cfg", capacity: 1, usage: map[string]string{"cfg-bbbbbb-0": "other"}, mine: map[string]string{}}
	cp := &configPlugin{key: types.NamespacedName{Name: "cfg"}, slots: map[string]configSlot{}}
	cp.rebuild([]*instancePlugin{a, b}, "me")
	// One free id for a (b has no free slot).
	if len(cp.slots) != 1 || cp.slots["cfg-0"].instance != a.key || cp.slots["cfg-0"].slot != -1 {
		t.Fatalf("slots %+v", cp.slots)
	}
	// cfg-0 gets claimed at slot 0 of a: it keeps its id and a's second slot
	// is offered under the next free number at once.
	a.mine["cfg-aaaaaa-0"] = "C:cfg-0:me"
	cp.rebuild([]*instancePlugin{a, b}, "me")
	if len(cp.slots) != 2 || cp.slots["cfg-0"].slot != 0 || cp.slots["cfg-1"].slot != -1 {
		t.Fatalf("slots after a claim %+v", cp.slots)
	}
	a.mine["cfg-aaaaaa-1"] = "C:cfg-1:me"
	cp.rebuild([]*instancePlugin{a, b}, "me")
	if len(cp.slots) != 2 || cp.slots["cfg-1"].slot != 1 {
		t.Fatalf("slots when full %+v", cp.slots)
	}
	if n := len(cp.deviceList()); n != 2 {
		t.Errorf("%d devices listed", n)
	}
}

func TestResolveProperties(t *testing.T) {
	s := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(s)
	c := fake.NewClientBuilder().WithScheme(s).WithObjects(
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "creds"}, Data: map[string][]byte{"password": []byte("s3cret")}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "other", Name: "cm"}, Data: map[string]string{"k": "v"}, BinaryData: map[string][]byte{"bin": {0, 1}}},
	).Build()
	sel := func(name, key, ns string, optional bool) *akri.DiscoveryPropertyKeySelector {
		return &akri.DiscoveryPropertyKeySelector{Name: name, Key: key, Namespace: ns, Optional: ptr.To(optional)}
	}
	props := []akri.DiscoveryProperty{
		{Name: "inline", Value: ptr.To("x")},
		{Name: "secret", ValueFrom: &akri.DiscoveryPropertySource{SecretKeyRef: sel("creds", "password", "", false)}},
		{Name: "cm", ValueFrom: &akri.DiscoveryPropertySource{ConfigMapKeyRef: sel("cm", "k", "other", false)}},
		{Name: "bin", ValueFrom: &akri.DiscoveryPropertySource{ConfigMapKeyRef: sel("cm", "bin", "other", false)}},
		{Name: "missing-optional", ValueFrom: &akri.DiscoveryPropertySource{SecretKeyRef: sel("nope", "k", "", true)}},
	}
	got, err := resolveProperties(context.Background(), c, props)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]*v0.ByteData{"inline": {Vec: []byte("x")}, "secret": {Vec: []byte("s3cret")}, "cm": {Vec: []byte("v")}, "bin": {Vec: []byte{0, 1}}, "missing-optional": {}}
	for k, w := range want {
		if g := got[k]; g == nil || string(g.Vec) != string(w.Vec) || (g.Vec == nil) != (w.Vec == nil) {
			t.Errorf("%s = %v, want %v", k, g, w)
		}
	}
	// A required key that is missing names the property and the object.
	_, err = resolveProperties(context.Background(), c, []akri.DiscoveryProperty{{Name: "p", ValueFrom: &akri.DiscoveryPropertySource{SecretKeyRef: sel("creds", "user", "", false)}}})
	if err == nil || err.Error() != `discovery property "p": secret default/creds: has no key "user"` {
		t.Errorf("err = %v", err)
	}
}

func TestRequestHashChangesWithDetailsAndProperties(t *testing.T) {
	a := requestHash(&v0.DiscoverRequest{DiscoveryDetails: "descriptions: [foo0]"})
	b := requestHash(&v0.DiscoverRequest{DiscoveryDetails: "descriptions: [foo1]"})
	c := requestHash(&v0.DiscoverRequest{DiscoveryDetails: "descriptions: [foo0]", DiscoveryProperties: map[string]*v0.ByteData{"k": {}}})
	d := requestHash(&v0.DiscoverRequest{DiscoveryDetails: "descriptions: [foo0]", DiscoveryProperties: map[string]*v0.ByteData{"k": {Vec: []byte{}}}})
	if a == b || a == c || c == d {
		t.Errorf("hashes collide: %s %s %s %s", a, b, c, d)
	}
}

func TestDesiredMergesEndpoints(t *testing.T) {
	cfg := &akri.Configuration{ObjectMeta: metav1.ObjectMeta{Name: "cfg"}}
	st := &configState{sessions: map[string]*session{}, lists: map[string]*endpointList{}, vanished: map[string]time.Time{}}
	h1 := Handler{Name: "h", Endpoint: "/a.sock", Shared: true}
	h2 := Handler{Name: "h", Endpoint: "/b.sock", Shared: false}
	st.sessions[h1.UID()] = &session{handler: h1}
	st.sessions[h2.UID()] = &session{handler: h2}
	st.report(streamResult{handler: h1, devices: []*v0.Device{{Id: "foo0"}}})
	if _, settled, _ := st.desired(cfg, "n", DefaultLostGrace); settled {
		t.Error("settled before every stream reported")
	}
	st.report(streamResult{handler: h2, devices: []*v0.Device{{Id: "my_local_device"}}})
	got, settled, _ := st.desired(cfg, "my_node", DefaultLostGrace)
	if !settled || got["cfg-8120fe"] == nil || got["cfg-e77db4"] == nil || len(got) != 2 {
		t.Errorf("desired %v settled %v", got, settled)
	}
	// A broken stream keeps its devices for the grace, then drops them.
	st.report(streamResult{handler: h2, lost: true})
	if got, _, next := st.desired(cfg, "my_node", DefaultLostGrace); len(got) != 2 || next <= 0 {
		t.Errorf("within grace: %v next %v", got, next)
	}
	if got, _, _ := st.desired(cfg, "my_node", 0); len(got) != 1 {
		t.Errorf("after grace: %v", got)
	}
}

func TestCheckResourceName(t *testing.T) {
	if err := checkResourceName("akri-debug-echo-8120fe"); err != nil {
		t.Errorf("valid name refused: %v", err)
	}
	long := strings.Repeat("c", 57) + "-8120fe" // a 57-character Configuration
	err := checkResourceName(long)
	if err == nil || !strings.Contains(err.Error(), "akri.sh/"+long) || !strings.Contains(err.Error(), "63") {
		t.Errorf("checkResourceName(%d chars) = %v", len(long), err)
	}
}
