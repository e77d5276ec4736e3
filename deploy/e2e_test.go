package deploy_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	akriv0 "github.com/wasilet/wasilet/agent/apis/akri/v0"
	"github.com/wasilet/wasilet/deploy"
	"github.com/wasilet/wasilet/internal/clustertest"
)

var installed struct {
	once sync.Once
	err  error
}

// install gives the test the shared cluster with the CRDs and RBAC
// installed (twice, to show that installing again is harmless).
func install(t *testing.T) *clustertest.Env {
	t.Helper()
	env := clustertest.Require(t)
	installed.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		for range 2 {
			if installed.err = deploy.InstallCRDs(ctx, env.Config); installed.err != nil {
				return
			}
			if installed.err = deploy.ApplyRBAC(ctx, env.Config); installed.err != nil {
				return
			}
		}
	})
	if installed.err != nil {
		t.Fatal(installed.err)
	}
	return env
}

// kubectl runs the real kubectl in namespace ns (unless "") with a discovery
// cache of the test's own, returning its combined output.
type kubectl struct {
	env   *clustertest.Env
	ns    string
	cache string
}

func newKubectl(t *testing.T, env *clustertest.Env, ns string) *kubectl {
	return &kubectl{env: env, ns: ns, cache: t.TempDir()}
}

func (k *kubectl) run(ctx context.Context, args ...string) (string, error) {
	pre := []string{"--cache-dir", k.cache}
	if k.ns != "" {
		pre = append(pre, "-n", k.ns)
	}
	out, err := k.env.Kubectl(ctx, append(pre, args...)...)
	return string(out), err
}

func (k *kubectl) must(t *testing.T, ctx context.Context, args ...string) string {
	t.Helper()
	out, err := k.run(ctx, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// table splits kubectl's table output into the header's and the rows'
// fields.
func table(t *testing.T, out string) (header []string, rows map[string][]string) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) < 2 {
		t.Fatalf("no rows:\n%s", out)
	}
	rows = map[string][]string{}
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		rows[f[0]] = f
	}
	return strings.Fields(lines[0]), rows
}

// The reference scenario's Configuration, in its pre-0.8 layout, is accepted
// as written by `kubectl apply --validate=strict`; the API keeps it whole,
// prints upstream's columns, defaults what upstream defaults and refuses a
// change of discovery handler.
func TestConfigurationAPI(t *testing.T) {
	env := install(t)
	ns := env.Namespace(t)
	k := newKubectl(t, env, ns)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	k.must(t, ctx, "apply", "--validate=strict", "-f", filepath.Join("examples", "akri-debug-echo.yaml"))

	out := k.must(t, ctx, "get", "akric")
	t.Logf("kubectl get akric:\n%s", out)
	header, rows := table(t, out)
	if !slices.Equal(header, []string{"NAME", "CAPACITY", "AGE"}) {
		t.Errorf("kubectl get akric: header %q", header)
	}
	if r := rows["akri-debug-echo"]; len(r) != 3 || r[1] != "2" {
		t.Errorf("kubectl get akric: row %q", r)
	}
	if out := k.must(t, ctx, "get", "all"); !strings.Contains(out, "configuration.akri.sh/akri-debug-echo") {
		t.Errorf("kubectl get all does not list the Configuration:\n%s", out)
	}

	c := getConfiguration(t, ctx, k, "akri-debug-echo")
	ps := c.Spec.BrokerPodSpec()
	if ps == nil || len(ps.Containers) != 1 || ps.Containers[0].Image != "127.0.0.1:5000/debug-echo-broker:latest" ||
		len(ps.Tolerations) != 2 || ps.NodeSelector["kubernetes.io/arch"] != "wasm32-wasi" {
		t.Fatalf("stored brokerPodSpec: %+v", ps)
	}
	// What the controller will make of it is a valid Pod.
	spec := ps.DeepCopy()
	r := spec.Containers[0].Resources
	for _, l := range []corev1.ResourceList{r.Limits, r.Requests} {
		l[corev1.ResourceName(akriv0.ResourceName("akri-debug-echo-8120fe"))] = l["{{PLACEHOLDER}}"]
		delete(l, "{{PLACEHOLDER}}")
	}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "akri-debug-echo-8120fe-pod"}, Spec: *spec}
	if _, err := env.Client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
		t.Errorf("broker pod from the example: %v", err)
	}

	// Strict validation is real: a field the schema lacks is refused.
	bogus := writeFile(t, "bogus.yaml", `apiVersion: akri.sh/v0
kind: Configuration
metadata:
  name: bogus
spec:
  discoveryHandler:
    name: debugEcho
  brokerPodSpecs: {}
`)
	if out, err := k.run(ctx, "apply", "--validate=strict", "-f", bogus); err == nil || !strings.Contains(out, `unknown field "spec.brokerPodSpecs"`) {
		t.Errorf("unknown field accepted or refused for another reason: %v", err)
	}

	// discoveryHandler may change, as with upstream's chart CRD (the agent
	// restarts discovery with the new details).
	k.must(t, ctx, "patch", "akric", "akri-debug-echo", "--type=merge",
		"-p", `{"spec":{"discoveryHandler":{"discoveryDetails":"descriptions: [bar0]"}}}`)
	k.must(t, ctx, "patch", "akric", "akri-debug-echo", "--type=merge", "-p", `{"spec":{"capacity":3}}`)
	if c := getConfiguration(t, ctx, k, "akri-debug-echo"); c.Spec.Capacity != 3 || c.Spec.DiscoveryHandler.DiscoveryDetails != "descriptions: [bar0]" {
		t.Errorf("after patches: capacity %d, details %q", c.Spec.Capacity, c.Spec.DiscoveryHandler.DiscoveryDetails)
	}

	// Defaults: capacity 1, a key selector's namespace "default".
	k.must(t, ctx, "apply", "--validate=strict", "-f", writeFile(t, "defaults.yaml", `apiVersion: akri.sh/v0
kind: Configuration
metadata:
  name: defaults
spec:
  discoveryHandler:
    name: debugEcho
    discoveryDetails: "descriptions: [bar0, bar1]"
    discoveryProperties:
    - name: TOKEN
      valueFrom:
        secretKeyRef:
          name: debug-echo-token
          key: token
    - name: LEVEL
      value: high
`))
	d := getConfiguration(t, ctx, k, "defaults")
	if d.Spec.Capacity != 1 {
		t.Errorf("capacity defaulted to %d, want 1", d.Spec.Capacity)
	}
	if p := d.Spec.DiscoveryHandler.DiscoveryProperties; len(p) != 2 || p[0].ValueFrom == nil || p[0].ValueFrom.SecretKeyRef == nil ||
		p[0].ValueFrom.SecretKeyRef.Namespace != "default" {
		t.Errorf("discoveryProperties %+v", p)
	}
	if _, rows := table(t, k.must(t, ctx, "get", "akric")); len(rows["defaults"]) < 2 || rows["defaults"][1] != "1" {
		t.Errorf("kubectl get akric: defaults row %q", rows["defaults"])
	}

	// A property is a value or a reference, not both.
	both := writeFile(t, "both.yaml", `apiVersion: akri.sh/v0
kind: Configuration
metadata:
  name: both
spec:
  discoveryHandler:
    name: debugEcho
    discoveryProperties:
    - name: X
      value: "1"
      valueFrom:
        configMapKeyRef: {name: x, key: x}
`)
	if _, err := k.run(ctx, "apply", "--validate=strict", "-f", both); err == nil {
		t.Error("a discovery property with both value and valueFrom was accepted")
	}
}

func getConfiguration(t *testing.T, ctx context.Context, k *kubectl, name string) *akriv0.Configuration {
	t.Helper()
	var c akriv0.Configuration
	if err := json.Unmarshal([]byte(k.must(t, ctx, "get", "akric", name, "-o", "json")), &c); err != nil {
		t.Fatal(err)
	}
	return &c
}

// Instances print upstream's columns, and server-side applies from several
// nodes merge nodes as a set and deviceUsage key by key, each node owning
// its own entries, with the node's own credentials.
func TestInstanceAPI(t *testing.T) {
	env := install(t)
	ns := env.Namespace(t)
	k := newKubectl(t, env, ns)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	k.must(t, ctx, "apply", "--validate=strict", "-f", writeFile(t, "instance.yaml", `apiVersion: akri.sh/v0
kind: Instance
metadata:
  name: akri-debug-echo-8120fe
spec:
  configurationName: akri-debug-echo
  cdiName: akri.sh/akri-debug-echo=8120fe
  capacity: 2
  shared: true
  nodes: [node-a]
  brokerProperties:
    DEBUG_ECHO_DESCRIPTION: foo0
  deviceUsage:
    akri-debug-echo-8120fe-0: ""
    akri-debug-echo-8120fe-1: ""
`))
	out := k.must(t, ctx, "get", "akrii")
	t.Logf("kubectl get akrii:\n%s", out)
	header, rows := table(t, out)
	if !slices.Equal(header, []string{"NAME", "CONFIG", "SHARED", "NODES", "AGE"}) {
		t.Errorf("kubectl get akrii: header %q", header)
	}
	if r := rows["akri-debug-echo-8120fe"]; len(r) != 5 || !slices.Equal(r[1:4], []string{"akri-debug-echo", "true", `["node-a"]`}) {
		t.Errorf("kubectl get akrii: row %q", r)
	}

	// Required fields are required.
	if _, err := k.run(ctx, "apply", "--validate=strict", "-f", writeFile(t, "bad.yaml", `apiVersion: akri.sh/v0
kind: Instance
metadata:
  name: no-capacity
spec:
  configurationName: akri-debug-echo
  cdiName: akri.sh/akri-debug-echo=000000
`)); err == nil {
		t.Error("an Instance without capacity was accepted")
	}

	name := akriv0.InstanceName("akri-debug-echo", "bar0", true, "")
	apply := func(node string, nodes []string, usage map[string]string) error {
		inst := &akriv0.Instance{
			TypeMeta:   metav1.TypeMeta{APIVersion: akriv0.SchemeGroupVersion.String(), Kind: "Instance"},
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
			Spec: akriv0.InstanceSpec{
				ConfigurationName: "akri-debug-echo",
				CDIName:           akriv0.CDIName("akri-debug-echo", akriv0.DeviceHash("bar0", true, "")),
				Capacity:          2,
				Shared:            true,
				Nodes:             nodes,
				DeviceUsage:       usage,
			},
		}
		u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(inst)
		if err != nil {
			return err
		}
		delete(u["metadata"].(map[string]any), "creationTimestamp")
		_, err = asNode(t, env, node).Resource(akriv0.InstancesResource).Namespace(ns).
			Apply(ctx, name, &unstructured.Unstructured{Object: u}, metav1.ApplyOptions{FieldManager: node})
		return err
	}
	if err := apply("node-a", []string{"node-a"}, map[string]string{name + "-0": "node-a"}); err != nil {
		t.Fatal(err)
	}
	if err := apply("node-b", []string{"node-b"}, map[string]string{name + "-1": "node-b"}); err != nil {
		t.Fatal(err)
	}
	// Slot 0 is node-a's: node-c cannot take it without forcing.
	if err := apply("node-c", []string{"node-c"}, map[string]string{name + "-0": "node-c"}); !apierrors.IsConflict(err) {
		t.Errorf("taking another node's slot: %v, want a conflict", err)
	}
	var got akriv0.Instance
	if err := json.Unmarshal([]byte(k.must(t, ctx, "get", "akrii", name, "-o", "json")), &got); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.Spec.Nodes, []string{"node-a", "node-b"}) ||
		!reflect.DeepEqual(got.Spec.DeviceUsage, map[string]string{name + "-0": "node-a", name + "-1": "node-b"}) {
		t.Errorf("merged Instance: nodes %q, deviceUsage %v", got.Spec.Nodes, got.Spec.DeviceUsage)
	}
	out = k.must(t, ctx, "get", "akrii")
	t.Logf("kubectl get akrii after two nodes applied:\n%s", out)
	if _, rows := table(t, out); len(rows[name]) != 5 || rows[name][3] != `["node-a","node-b"]` {
		t.Errorf("kubectl get akrii: row %q", rows[name])
	}
	// node-a leaves: its entries go, node-b's stay.
	if err := apply("node-a", nil, nil); err != nil {
		t.Fatal(err)
	}
	got = akriv0.Instance{}
	if err := json.Unmarshal([]byte(k.must(t, ctx, "get", "akrii", name, "-o", "json")), &got); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.Spec.Nodes, []string{"node-b"}) || !reflect.DeepEqual(got.Spec.DeviceUsage, map[string]string{name + "-1": "node-b"}) {
		t.Errorf("after node-a left: nodes %q, deviceUsage %v", got.Spec.Nodes, got.Spec.DeviceUsage)
	}
}

// asNode is a dynamic client with the credentials of node `node` (what
// `wasilet node` uses for its in-process agent), by impersonation.
func asNode(t *testing.T, env *clustertest.Env, node string) dynamic.Interface {
	return impersonating(t, env, "system:node:"+node, "system:nodes", "system:authenticated")
}

func impersonating(t *testing.T, env *clustertest.Env, user string, groups ...string) dynamic.Interface {
	t.Helper()
	cfg := rest.CopyConfig(env.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: groups}
	// The API server advises domain-qualified finalizers; the agent's is the
	// bare node name, as upstream's.
	cfg.WarningHandlerWithContext = rest.NoWarnings{}
	c, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

type subject struct {
	name   string
	user   string
	groups []string
}

var (
	agentSA      = subject{"agent", "system:serviceaccount:" + deploy.Namespace + ":" + deploy.AgentServiceAccount, []string{"system:serviceaccounts", "system:serviceaccounts:" + deploy.Namespace, "system:authenticated"}}
	node         = subject{"node", "system:node:node-x", []string{"system:nodes", "system:authenticated"}}
	controllerSA = subject{"controller", "system:serviceaccount:" + deploy.Namespace + ":" + deploy.ControllerServiceAccount, []string{"system:serviceaccounts", "system:serviceaccounts:" + deploy.Namespace, "system:authenticated"}}
)

// Each identity may do what its component does, and not more than it needs
// where that matters (Secrets, deleting what it does not own).
func TestRBAC(t *testing.T) {
	env := install(t)
	ns := env.Namespace(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	type rule struct {
		group, resource string
		verbs           []string
		namespace       string // "" for cluster-scoped
		allowed         bool
	}
	all := func(verbs ...string) []string { return verbs }
	read := all("get", "list", "watch")
	agentRules := []rule{
		{"akri.sh", "configurations", all("get", "list", "watch", "update", "patch"), ns, true},
		{"akri.sh", "instances", all("get", "list", "watch", "create", "update", "patch", "delete"), ns, true},
		{"", "pods", read, ns, true},
		{"", "nodes", read, "", true},
		{"", "secrets", read, "default", true},
		{"", "configmaps", read, ns, true},
		{"", "events", all("create", "patch"), ns, true},
	}
	for _, c := range []struct {
		subject
		rules []rule
	}{
		{agentSA, append(slices.Clone(agentRules),
			rule{"akri.sh", "configurations", all("create", "delete"), ns, false},
			rule{"", "pods", all("create", "delete"), ns, false},
			rule{"", "secrets", all("create", "update", "delete"), ns, false},
		)},
		{node, agentRules},
		{controllerSA, []rule{
			{"akri.sh", "configurations", all("get", "list", "watch", "update", "patch"), ns, true},
			{"akri.sh", "instances", all("get", "list", "watch", "update", "patch", "delete"), ns, true},
			{"akri.sh", "configurations/finalizers", all("update"), ns, true},
			{"akri.sh", "instances/finalizers", all("update"), ns, true},
			{"", "pods", all("get", "list", "watch", "create", "update", "patch", "delete"), ns, true},
			{"", "services", all("get", "list", "watch", "create", "update", "patch", "delete"), ns, true},
			{"batch", "jobs", all("get", "list", "watch", "create", "update", "patch", "delete"), ns, true},
			{"", "nodes", read, "", true},
			{"", "events", all("create", "patch"), ns, true},
			{"coordination.k8s.io", "leases", all("get", "create", "update"), deploy.Namespace, true},
			{"", "secrets", all("get", "list"), ns, false},
			{"akri.sh", "instances", all("create"), ns, false},
			{"akri.sh", "configurations", all("create", "delete"), ns, false},
			{"", "nodes", all("update", "delete"), "", false},
		}},
	} {
		for _, r := range c.rules {
			for _, verb := range r.verbs {
				resource, sub, _ := strings.Cut(r.resource, "/")
				sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
					User: c.user, Groups: c.groups,
					ResourceAttributes: &authorizationv1.ResourceAttributes{
						Namespace: r.namespace, Verb: verb, Group: r.group, Resource: resource, Subresource: sub,
					},
				}}
				res, err := env.Client.AuthorizationV1().SubjectAccessReviews().Create(ctx, sar, metav1.CreateOptions{})
				if err != nil {
					t.Fatal(err)
				}
				if res.Status.Allowed != r.allowed {
					t.Errorf("%s: %s %s (group %q, namespace %q): allowed=%v, want %v (%s)", c.name, verb, r.resource, r.group, r.namespace, res.Status.Allowed, r.allowed, res.Status.Reason)
				}
			}
		}
	}

	// The same through the real kubectl, for the key verbs.
	k := newKubectl(t, env, ns)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"get", "secrets", "--as", node.user, "--as-group", "system:nodes"}, "yes"},
		{[]string{"patch", "instances.akri.sh", "--as", node.user, "--as-group", "system:nodes"}, "yes"},
		{[]string{"get", "secrets", "--as", agentSA.user}, "yes"},
		{[]string{"patch", "instances.akri.sh", "--as", agentSA.user}, "yes"},
		{[]string{"patch", "configurations.akri.sh", "--as", agentSA.user}, "yes"},
		{[]string{"create", "pods", "--as", controllerSA.user}, "yes"},
		{[]string{"delete", "jobs.batch", "--as", controllerSA.user}, "yes"},
		{[]string{"get", "secrets", "--as", controllerSA.user}, "no"},
	} {
		// can-i exits 1 for "no": judge by the output.
		out, _ := k.run(ctx, append([]string{"auth", "can-i"}, c.args...)...)
		if got := strings.TrimSpace(out); got != c.want {
			t.Errorf("kubectl auth can-i %s: %q, want %q", strings.Join(c.args, " "), got, c.want)
		}
	}

	// And for real, as the node: read a Secret of another namespace (the Node
	// authorizer alone would refuse: no pod of the node uses it), and put the
	// node's finalizer on a Configuration and take it off again, as the agent
	// does (server-side apply of metadata, upstream's field manager).
	if _, err := env.Client.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "token"}, StringData: map[string]string{"token": "t"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	nodeClient := asNode(t, env, "node-x")
	secrets := nodeClient.Resource(corev1.SchemeGroupVersion.WithResource("secrets")).Namespace(ns)
	if _, err := secrets.Get(ctx, "token", metav1.GetOptions{}); err != nil {
		t.Errorf("node reads a discoveryProperties Secret: %v", err)
	}
	b, err := deploy.Example("akri-debug-echo")
	if err != nil {
		t.Fatal(err)
	}
	k.must(t, ctx, "apply", "--validate=strict", "-f", writeFile(t, "c.yaml", string(b)))
	configs := nodeClient.Resource(akriv0.ConfigurationsResource).Namespace(ns)
	setFinalizers := func(ctx context.Context, f ...string) error {
		u := &unstructured.Unstructured{}
		u.SetAPIVersion(akriv0.SchemeGroupVersion.String())
		u.SetKind("Configuration")
		u.SetName("akri-debug-echo")
		u.SetFinalizers(f)
		_, err := configs.Apply(ctx, "akri-debug-echo", u, metav1.ApplyOptions{FieldManager: "node-x-fin"})
		return err
	}
	if err := setFinalizers(ctx, "node-x"); err != nil {
		t.Errorf("node sets its finalizer on a Configuration: %v", err)
	}
	t.Cleanup(func() { // or the namespace never goes
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = setFinalizers(ctx)
	})
	u, err := configs.Get(ctx, "akri-debug-echo", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(u.GetFinalizers(), []string{"node-x"}) {
		t.Errorf("finalizers %q", u.GetFinalizers())
	}
	if err := setFinalizers(ctx); err != nil {
		t.Errorf("node removes its finalizer: %v", err)
	}
	// The controller may not read Secrets even where the node may.
	ctrl := impersonating(t, env, controllerSA.user, controllerSA.groups...)
	if _, err := ctrl.Resource(corev1.SchemeGroupVersion.WithResource("secrets")).Namespace(ns).Get(ctx, "token", metav1.GetOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("controller reads a Secret: %v, want forbidden", err)
	}
}

// Every manifest of the directory passes the API's strict validation as
// documented (namespace first), without changing anything (server dry run).
func TestManifestsDryRun(t *testing.T) {
	env := install(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dry := []string{"apply", "--validate=strict", "--dry-run=server"}
	newKubectl(t, env, "").must(t, ctx, append(dry, "-f", "crds", "-f", "rbac.yaml", "-f", "controller.yaml", "-f", "agent.yaml")...)
	newKubectl(t, env, env.Namespace(t)).must(t, ctx, append(dry, "-f", filepath.Join("examples", "wasi-debug-echo.yaml"))...)
}
