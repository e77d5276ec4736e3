package deploy

import (
	"encoding/json"
	"os"
	"reflect"
	"slices"
	"testing"

	"github.com/containerd/errdefs"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	akriv0 "github.com/wasilet/wasilet/agent/apis/akri/v0"
)

func TestCRDs(t *testing.T) {
	crds, err := CRDs()
	if err != nil {
		t.Fatal(err)
	}
	if len(crds) != 2 {
		t.Fatalf("got %d CRDs, want 2", len(crds))
	}
	type column struct{ name, typ, path string }
	for i, want := range []struct {
		name, kind, plural, singular, short string
		columns                             []column
	}{
		{"configurations.akri.sh", "Configuration", "configurations", "configuration", "akric", []column{
			{"Capacity", "string", ".spec.capacity"},
			{"Age", "date", ".metadata.creationTimestamp"},
		}},
		{"instances.akri.sh", "Instance", "instances", "instance", "akrii", []column{
			{"Config", "string", ".spec.configurationName"},
			{"Shared", "boolean", ".spec.shared"},
			{"Nodes", "string", ".spec.nodes"},
			{"Age", "date", ".metadata.creationTimestamp"},
		}},
	} {
		crd := crds[i]
		if crd.APIVersion != "apiextensions.k8s.io/v1" || crd.Kind != "CustomResourceDefinition" {
			t.Errorf("%s: %s %s", want.name, crd.APIVersion, crd.Kind)
		}
		n := crd.Spec.Names
		if crd.Name != want.name || crd.Spec.Group != akriv0.GroupName || crd.Spec.Scope != apiextensionsv1.NamespaceScoped ||
			n.Kind != want.kind || n.Plural != want.plural || n.Singular != want.singular ||
			!slices.Equal(n.ShortNames, []string{want.short}) || !slices.Equal(n.Categories, []string{"all"}) {
			t.Errorf("%s: metadata/names: %s %+v scope %s", want.name, crd.Name, n, crd.Spec.Scope)
		}
		if len(crd.Spec.Versions) != 1 {
			t.Fatalf("%s: %d versions", want.name, len(crd.Spec.Versions))
		}
		v := crd.Spec.Versions[0]
		if v.Name != akriv0.Version || !v.Served || !v.Storage || v.Schema == nil || v.Schema.OpenAPIV3Schema == nil {
			t.Fatalf("%s: version %s served=%v storage=%v", want.name, v.Name, v.Served, v.Storage)
		}
		var got []column
		for _, c := range v.AdditionalPrinterColumns {
			got = append(got, column{c.Name, c.Type, c.JSONPath})
		}
		if !slices.Equal(got, want.columns) {
			t.Errorf("%s: printer columns %v, want %v", want.name, got, want.columns)
		}
	}

	conf := crds[0].Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"]
	dh := conf.Properties["discoveryHandler"]
	if len(dh.XValidations) != 0 {
		// Upstream's chart CRD lets discoveryHandler change (the agent
		// restarts discovery); an immutability rule would refuse edits.
		t.Errorf("discoveryHandler validations: %+v", dh.XValidations)
	}
	if d := conf.Properties["capacity"].Default; d == nil || string(d.Raw) != "1" {
		t.Errorf("capacity default: %v", d)
	}
	vf := dh.Properties["discoveryProperties"].Items.Schema.Properties["valueFrom"]
	for _, ref := range []string{"secretKeyRef", "configMapKeyRef"} {
		if d := vf.Properties[ref].Properties["namespace"].Default; d == nil || string(d.Raw) != `"default"` {
			t.Errorf("%s.namespace default: %v", ref, d)
		}
	}
	for _, p := range []string{"brokerPodSpec", "instanceServiceSpec", "configurationServiceSpec"} {
		if s := conf.Properties[p]; s.XPreserveUnknownFields == nil || !*s.XPreserveUnknownFields || !s.Nullable {
			t.Errorf("spec.%s: not a nullable preserved object", p)
		}
	}
	for _, p := range []string{"brokerPodSpec", "brokerJobSpec"} {
		if s := conf.Properties["brokerSpec"].Properties[p]; s.XPreserveUnknownFields == nil || !*s.XPreserveUnknownFields {
			t.Errorf("spec.brokerSpec.%s: unknown fields not preserved", p)
		}
	}
	// The pre-0.8 field is the current one moved up, nothing else.
	legacy, current := conf.Properties["brokerPodSpec"], conf.Properties["brokerSpec"].Properties["brokerPodSpec"]
	legacy.Description, current.Description = "", ""
	if !reflect.DeepEqual(legacy, current) {
		t.Errorf("spec.brokerPodSpec %+v differs from spec.brokerSpec.brokerPodSpec %+v", legacy, current)
	}

	inst := crds[1].Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"]
	if !slices.Equal(inst.Required, []string{"capacity", "cdiName", "configurationName"}) {
		t.Errorf("Instance spec required %v", inst.Required)
	}
	if s := inst.Properties["nodes"]; s.XListType == nil || *s.XListType != "set" {
		t.Errorf("nodes list type: %v", s.XListType)
	}
	if s := inst.Properties["deviceUsage"]; s.XMapType == nil || *s.XMapType != "granular" {
		t.Errorf("deviceUsage map type: %v", s.XMapType)
	}
}

// The reference scenario's Configuration decodes into the Go types with no
// field left over, the legacy brokerPodSpec is what BrokerPodSpec returns,
// and encoding it again gives back the same document.
func TestExampleConfiguration(t *testing.T) {
	b, err := Example("akri-debug-echo")
	if err != nil {
		t.Fatal(err)
	}
	docs, err := splitYAML("akri-debug-echo.yaml", b)
	if err != nil || len(docs) != 1 {
		t.Fatalf("%d documents, %v", len(docs), err)
	}
	var c akriv0.Configuration
	if err := decodeStrict(docs[0].json, &c); err != nil {
		t.Fatal(err)
	}
	if c.APIVersion != "akri.sh/v0" || c.Kind != "Configuration" || c.Name != "akri-debug-echo" {
		t.Errorf("%s %s %s", c.APIVersion, c.Kind, c.Name)
	}
	s := c.Spec
	if s.DiscoveryHandler.Name != "debugEcho" || s.DiscoveryHandler.DiscoveryDetails != "descriptions:\n- foo0\n" {
		t.Errorf("discoveryHandler %+v", s.DiscoveryHandler)
	}
	if s.Capacity != 2 || s.EffectiveCapacity() != 2 || s.BrokerSpec != nil || s.BrokerJobSpec() != nil {
		t.Errorf("capacity %d, brokerSpec %+v", s.Capacity, s.BrokerSpec)
	}
	ps := s.BrokerPodSpec()
	if ps == nil || ps != s.BrokerPodSpecLegacy {
		t.Fatalf("BrokerPodSpec() = %p, legacy %p", ps, s.BrokerPodSpecLegacy)
	}
	if len(ps.Containers) != 1 || ps.Containers[0].Image != "127.0.0.1:5000/debug-echo-broker:latest" {
		t.Fatalf("containers %+v", ps.Containers)
	}
	one := resource.MustParse("1")
	for what, rl := range map[string]corev1.ResourceList{"limits": ps.Containers[0].Resources.Limits, "requests": ps.Containers[0].Resources.Requests} {
		if q, ok := rl["{{PLACEHOLDER}}"]; len(rl) != 1 || !ok || q.Cmp(one) != 0 {
			t.Errorf("%s: %v", what, rl)
		}
	}
	if !reflect.DeepEqual(ps.NodeSelector, map[string]string{"kubernetes.io/arch": "wasm32-wasi"}) {
		t.Errorf("nodeSelector %v", ps.NodeSelector)
	}
	checkWasmTolerations(t, ps.Tolerations)
	for what, svc := range map[string]*corev1.ServiceSpec{"instanceServiceSpec": s.InstanceServiceSpec, "configurationServiceSpec": s.ConfigurationServiceSpec} {
		if svc == nil || len(svc.Ports) != 1 {
			t.Errorf("%s: %+v", what, svc)
			continue
		}
		p := svc.Ports[0]
		if p.Name != "grpc" || p.Port != 6052 || p.Protocol != corev1.ProtocolTCP || p.TargetPort.IntValue() != 6052 {
			t.Errorf("%s port %+v", what, p)
		}
	}

	again, err := json.Marshal(&c)
	if err != nil {
		t.Fatal(err)
	}
	var want, got map[string]any
	if err := json.Unmarshal(docs[0].json, &want); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(again, &got); err != nil {
		t.Fatal(err)
	}
	got = prune(got).(map[string]any)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("round trip changed the document:\n got %s\nwant %s", again, docs[0].json)
	}
}

// prune drops what encoding/json adds for zero values the document leaves
// out: nulls and empty objects.
func prune(v any) any {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			e = prune(e)
			if m, ok := e.(map[string]any); e == nil || ok && len(m) == 0 {
				delete(v, k)
				continue
			}
			v[k] = e
		}
		return v
	case []any:
		for i := range v {
			v[i] = prune(v[i])
		}
	}
	return v
}

func checkWasmTolerations(t *testing.T, got []corev1.Toleration) {
	t.Helper()
	want := []corev1.Toleration{
		{Key: "kubernetes.io/arch", Operator: corev1.TolerationOpEqual, Value: "wasm32-wasi", Effect: corev1.TaintEffectNoSchedule},
		{Key: "kubernetes.io/arch", Operator: corev1.TolerationOpEqual, Value: "wasm32-wasi", Effect: corev1.TaintEffectNoExecute},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("tolerations %+v, want %+v", got, want)
	}
}

func TestExampleHandlerPod(t *testing.T) {
	b, err := Example("wasi-debug-echo.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var p corev1.Pod
	decodeFile(t, "wasi-debug-echo.yaml", b, &p)
	if p.Kind != "Pod" || p.Name != "wasi-debug-echo" || len(p.Spec.Containers) != 1 || len(p.Spec.Volumes) != 1 {
		t.Fatalf("%+v", p)
	}
	c, v := p.Spec.Containers[0], p.Spec.Volumes[0]
	if c.Image != "127.0.0.1:5000/debug-echo-handler:latest" {
		t.Errorf("image %s", c.Image)
	}
	if v.HostPath == nil || v.HostPath.Path != "/tmp/wde-dir" ||
		len(c.VolumeMounts) != 1 || c.VolumeMounts[0].Name != v.Name || c.VolumeMounts[0].MountPath != "/tmp/wde-dir" {
		t.Errorf("volume %+v mounts %+v", v, c.VolumeMounts)
	}
	if p.Spec.NodeSelector["kubernetes.io/arch"] != "wasm32-wasi" {
		t.Errorf("nodeSelector %v", p.Spec.NodeSelector)
	}
	checkWasmTolerations(t, p.Spec.Tolerations)
}

func TestExampleNotFound(t *testing.T) {
	for _, name := range []string{"nope", "../rbac.yaml", "/etc/passwd", ""} {
		if _, err := Example(name); !errdefs.IsNotFound(err) {
			t.Errorf("Example(%q): %v, want not found", name, err)
		}
	}
}

// decodeFile decodes a one-document manifest strictly.
func decodeFile(t *testing.T, name string, b []byte, v any) {
	t.Helper()
	docs, err := splitYAML(name, b)
	if err != nil || len(docs) != 1 {
		t.Fatalf("%s: %d documents, %v", name, len(docs), err)
	}
	if err := decodeStrict(docs[0].json, v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

// rbac.yaml holds only known kinds without stray fields, every binding names a
// role and service accounts defined there, and the agent's role is also
// granted to the node group.
func TestRBACManifest(t *testing.T) {
	docs, err := splitYAML("rbac.yaml", rbacYAML)
	if err != nil {
		t.Fatal(err)
	}
	roles := map[string]bool{}
	accounts := map[string]bool{}
	var bindings []rbacv1.RoleBinding // ClusterRoleBindings too (same fields)
	for _, d := range docs {
		var tm metav1.TypeMeta
		if err := json.Unmarshal(d.json, &tm); err != nil {
			t.Fatal(err)
		}
		switch tm.Kind {
		case "Namespace":
			var o corev1.Namespace
			mustDecode(t, d, &o)
			if o.Name != Namespace {
				t.Errorf("namespace %s", o.Name)
			}
		case "ServiceAccount":
			var o corev1.ServiceAccount
			mustDecode(t, d, &o)
			accounts[o.Namespace+"/"+o.Name] = true
		case "ClusterRole", "Role":
			var o rbacv1.ClusterRole
			mustDecode(t, d, &o)
			roles[tm.Kind+"/"+o.Name] = true
		case "ClusterRoleBinding", "RoleBinding":
			var o rbacv1.RoleBinding
			mustDecode(t, d, &o)
			bindings = append(bindings, o)
		default:
			t.Errorf("%s: unexpected kind %s", d.source, tm.Kind)
		}
	}
	for _, sa := range []string{AgentServiceAccount, ControllerServiceAccount} {
		if !accounts[Namespace+"/"+sa] {
			t.Errorf("no service account %s/%s", Namespace, sa)
		}
	}
	nodes := false
	for _, b := range bindings {
		if !roles[b.RoleRef.Kind+"/"+b.RoleRef.Name] {
			t.Errorf("binding %s: no %s %s in rbac.yaml", b.Name, b.RoleRef.Kind, b.RoleRef.Name)
		}
		for _, s := range b.Subjects {
			switch {
			case s.Kind == "ServiceAccount" && !accounts[s.Namespace+"/"+s.Name]:
				t.Errorf("binding %s: no service account %s/%s", b.Name, s.Namespace, s.Name)
			case s.Kind == "Group" && s.Name == "system:nodes" && b.RoleRef.Name == AgentServiceAccount:
				nodes = true
			}
		}
	}
	if !nodes {
		t.Error("the agent's role is not bound to group system:nodes")
	}
}

func mustDecode(t *testing.T, d document, v any) {
	t.Helper()
	if err := decodeStrict(d.json, v); err != nil {
		t.Fatalf("%s: %v", d.source, err)
	}
}

// agent.yaml and controller.yaml decode strictly and use the identities,
// flags, variables and host directories the components expect.
func TestWorkloadManifests(t *testing.T) {
	var ds appsv1.DaemonSet
	decodeFile(t, "agent.yaml", readFile(t, "agent.yaml"), &ds)
	ps := ds.Spec.Template.Spec
	if ds.Namespace != Namespace || ps.ServiceAccountName != AgentServiceAccount || len(ps.Containers) != 1 {
		t.Fatalf("agent: %s %s %d containers", ds.Namespace, ps.ServiceAccountName, len(ps.Containers))
	}
	c := ps.Containers[0]
	if !slices.Equal(c.Command, []string{"wasilet", "agent",
		"--device-plugins-dir=/var/lib/kubelet/device-plugins",
		"--pod-resources-socket=/var/lib/kubelet/pod-resources/kubelet.sock"}) {
		t.Errorf("agent command %q", c.Command)
	}
	env := map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		env[e.Name] = e
	}
	if e := env["AGENT_NODE_NAME"]; e.ValueFrom == nil || e.ValueFrom.FieldRef == nil || e.ValueFrom.FieldRef.FieldPath != "spec.nodeName" {
		t.Errorf("AGENT_NODE_NAME %+v", e)
	}
	if e := env["DISCOVERY_HANDLERS_DIRECTORY"]; e.Value != "/var/lib/akri" {
		t.Errorf("DISCOVERY_HANDLERS_DIRECTORY %+v", e)
	}
	hostPaths := map[string]string{}
	for _, v := range ps.Volumes {
		if v.HostPath != nil {
			hostPaths[v.Name] = v.HostPath.Path
		}
	}
	mounts := map[string]bool{}
	for _, m := range c.VolumeMounts {
		if hostPaths[m.Name] != m.MountPath {
			t.Errorf("mount %s at %s: host path %q", m.Name, m.MountPath, hostPaths[m.Name])
		}
		mounts[m.MountPath] = true
	}
	for _, p := range []string{"/var/lib/akri", "/var/lib/kubelet/device-plugins", "/var/lib/kubelet/pod-resources"} {
		if !mounts[p] {
			t.Errorf("agent does not mount %s", p)
		}
	}

	var d appsv1.Deployment
	decodeFile(t, "controller.yaml", readFile(t, "controller.yaml"), &d)
	if d.Namespace != Namespace || d.Spec.Replicas == nil || *d.Spec.Replicas != 1 ||
		d.Spec.Template.Spec.ServiceAccountName != ControllerServiceAccount || len(d.Spec.Template.Spec.Containers) != 1 ||
		!slices.Equal(d.Spec.Template.Spec.Containers[0].Command, []string{"wasilet", "controller"}) {
		t.Errorf("controller: %+v", d.Spec)
	}
}

func readFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
