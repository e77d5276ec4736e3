// End-to-end tests of the Akri agent and controller: a real control plane
// (internal/clustertest), a real `wasilet node` with the agent in-process
// (or a standalone `wasilet agent`), `wasilet controller`, and debugEcho
// handlers (the native `wasilet debug-echo`, and upstream's Rust handler where
// ../shared/peers has it). They follow upstream's e2e (test/e2e/test_core.py)
// and add the reference scenario's YAML and the defects upstream 0.13 has.
package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	akri "github.com/wasilet/wasilet/agent/apis/akri/v0"
	"github.com/wasilet/wasilet/deploy"
	"github.com/wasilet/wasilet/internal/akritest"
	"github.com/wasilet/wasilet/internal/clustertest"
	"github.com/wasilet/wasilet/internal/nodetest"
	"github.com/wasilet/wasilet/internal/reliability"
)

func TestMain(m *testing.M) { nodetest.Main(m) }

// akriNode starts a wasilet node whose in-process agent takes discovery
// handlers in dir.
func akriNode(t *testing.T, dir string, args ...string) *nodetest.Node {
	t.Helper()
	return nodetest.Start(t, nodetest.Options{Args: append([]string{"--discovery-handlers-directory", dir}, args...)})
}

// standard is the usual rig: a node with the agent in-process, the
// controller, a shared debugEcho handler and a namespace.
func standard(t *testing.T) (*clustertest.Env, client.Client, string, *nodetest.Node, *akritest.DebugEcho, string) {
	t.Helper()
	env := clustertest.Require(t)
	c := akritest.Client(t, env)
	ref := broker(t, env)
	dir := akritest.ShortDir(t)
	n := akriNode(t, dir)
	akritest.Controller(t, env)
	h := akritest.StartDebugEcho(t, dir, "debugEcho", true)
	return env, c, ref, n, h, env.Namespace(t)
}

var brokerRef string

// broker pushes the test program once; brokers run `env` then sleep, so
// their logs show the environment the device plugins gave them.
func broker(t *testing.T, env *clustertest.Env) string {
	t.Helper()
	if brokerRef == "" {
		brokerRef = nodetest.PushWasm(t, env, nodetest.WasmFile(t, "testprog.wasm"), "akri-broker:v1")
	}
	return brokerRef
}

func configuration(ns, name, handler string, descriptions []string, capacity int, image string) *akri.Configuration {
	details := "descriptions:\n"
	for _, d := range descriptions {
		details += "- " + d + "\n"
	}
	spec := akritest.WasmPodSpec(image, corev1.ResourceList{"{{PLACEHOLDER}}": resource.MustParse("1")}, "env", "--", "sleep", "1h")
	ports := []corev1.ServicePort{{Name: "grpc", Port: 6052, Protocol: corev1.ProtocolTCP}}
	return &akri.Configuration{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: akri.ConfigurationSpec{
			DiscoveryHandler:         akri.DiscoveryHandlerInfo{Name: handler, DiscoveryDetails: details},
			Capacity:                 capacity,
			BrokerSpec:               &akri.BrokerSpec{BrokerPodSpec: &spec},
			InstanceServiceSpec:      &corev1.ServiceSpec{Ports: ports},
			ConfigurationServiceSpec: &corev1.ServiceSpec{Ports: ports},
		},
	}
}

func instanceNames(ins []akri.Instance) []string {
	var out []string
	for _, in := range ins {
		out = append(out, in.Name)
	}
	slices.Sort(out)
	return out
}

// waitCounts waits for the Configuration's Instances, Running brokers and
// Services to be exactly these numbers.
func waitCounts(t *testing.T, c client.Client, ns, cfg string, instances, brokers, services int, timeout time.Duration) {
	t.Helper()
	akritest.Eventually(t, timeout, fmt.Sprintf("%d instances, %d running brokers, %d services", instances, brokers, services), func(ctx context.Context) error {
		ins, err := akritest.Instances(ctx, c, ns, cfg)
		if err != nil {
			return err
		}
		pods, err := akritest.Pods(ctx, c, ns, map[string]string{"akri.sh/configuration": cfg})
		if err != nil {
			return err
		}
		running := 0
		for _, p := range pods {
			if p.Status.Phase == corev1.PodRunning {
				running++
			}
		}
		var svcs corev1.ServiceList
		if err := c.List(ctx, &svcs, client.InNamespace(ns)); err != nil {
			return err
		}
		nsvc := 0
		for _, s := range svcs.Items {
			if s.DeletionTimestamp == nil && strings.HasSuffix(s.Name, "-svc") {
				nsvc++
			}
		}
		if len(ins) != instances || running != brokers || len(pods) != brokers || nsvc != services {
			return fmt.Errorf("instances %v, pods %d (%d running), services %d", instanceNames(ins), len(pods), running, nsvc)
		}
		return nil
	})
}

// TestUpstreamE2E is upstream's core e2e with the native handler: bar0 and
// bar1 with capacity 2 give 2 Instances, 2 brokers, 2 instance Services and
// a configuration Service; brokers see DEBUG_ECHO_DESCRIPTION (plain and
// hash-suffixed); OFFLINE removes everything, ONLINE brings it back; a
// deleted broker is recreated; a third pod on a capacity-2 Instance stays
// Pending; deleting the Configuration removes everything.
func TestUpstreamE2E(t *testing.T) {
	env, c, ref, n, h, ns := standard(t)
	ctx := context.Background()

	cfg := configuration(ns, "akri-debug-echo-foo", "debugEcho", []string{"bar0", "bar1"}, 2, ref)
	if err := c.Create(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	waitCounts(t, c, ns, cfg.Name, 2, 2, 3, 90*time.Second)

	ins, _ := akritest.Instances(ctx, c, ns, cfg.Name)
	if got, want := instanceNames(ins), []string{cfg.Name + "-ab76e6", cfg.Name + "-d46b65"}; !slices.Equal(got, want) {
		t.Fatalf("instances %v, want %v", got, want)
	}
	for _, in := range ins {
		if !in.Spec.Shared || in.Spec.Capacity != 2 || !slices.Equal(in.Spec.Nodes, []string{n.Name}) ||
			in.Spec.CDIName != "akri.sh/"+cfg.Name+"="+strings.TrimPrefix(in.Name, cfg.Name+"-") {
			t.Errorf("instance %s spec %+v", in.Name, in.Spec)
		}
		if !slices.Contains(in.Finalizers, n.Name) {
			t.Errorf("instance %s finalizers %v, want %s", in.Name, in.Finalizers, n.Name)
		}
	}
	// The broker of bar0 got both env names from the device plugin.
	bar0 := cfg.Name + "-d46b65"
	podName := n.Name + "-" + bar0 + "-pod"
	akritest.WaitLog(t, env, 30*time.Second, ns, podName, "DEBUG_ECHO_DESCRIPTION=bar0", "DEBUG_ECHO_DESCRIPTION_D46B65=bar0")
	var pod corev1.Pod
	if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: podName}, &pod); err != nil {
		t.Fatal(err)
	}
	res := corev1.ResourceName("akri.sh/" + bar0)
	if q := pod.Spec.Containers[0].Resources.Limits[res]; q.Value() != 1 {
		t.Errorf("broker limits %v, want %s: 1", pod.Spec.Containers[0].Resources.Limits, res)
	}

	// Capacity 2: the broker holds one slot of bar0; of two more pods
	// asking for it exactly one runs and one stays Pending.
	for i := range 2 {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("extra-%d", i)},
			Spec: akritest.WasmPodSpec(ref, corev1.ResourceList{res: resource.MustParse("1")}, "sleep", "1h")}
		if err := c.Create(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	akritest.Eventually(t, 60*time.Second, "one extra pod Running, one Pending", func(ctx context.Context) error {
		var phases []string
		for i := range 2 {
			var p corev1.Pod
			if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: fmt.Sprintf("extra-%d", i)}, &p); err != nil {
				return err
			}
			phases = append(phases, string(p.Status.Phase))
		}
		slices.Sort(phases)
		if !slices.Equal(phases, []string{"Pending", "Running"}) {
			return fmt.Errorf("phases %v", phases)
		}
		return nil
	})
	var in akri.Instance
	if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: bar0}, &in); err != nil {
		t.Fatal(err)
	}
	if in.Spec.DeviceUsage[bar0+"-0"] != n.Name || in.Spec.DeviceUsage[bar0+"-1"] != n.Name {
		t.Errorf("deviceUsage %v: want both slots held by %s", in.Spec.DeviceUsage, n.Name)
	}
	for i := range 2 {
		_ = c.Delete(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("extra-%d", i)}})
	}

	// A deleted broker comes back with a new uid.
	old := pod.UID
	if err := c.Delete(ctx, &pod); err != nil {
		t.Fatal(err)
	}
	akritest.Eventually(t, 60*time.Second, "deleted broker recreated and Running", func(ctx context.Context) error {
		var p corev1.Pod
		if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: podName}, &p); err != nil {
			return err
		}
		if p.UID == old || p.Status.Phase != corev1.PodRunning {
			return fmt.Errorf("uid %s (old %s), phase %s", p.UID, old, p.Status.Phase)
		}
		return nil
	})

	h.SetOnline(t, false)
	waitCounts(t, c, ns, cfg.Name, 0, 0, 0, 60*time.Second)
	h.SetOnline(t, true)
	waitCounts(t, c, ns, cfg.Name, 2, 2, 3, 90*time.Second)

	if err := c.Delete(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	waitCounts(t, c, ns, cfg.Name, 0, 0, 0, 60*time.Second)
	akritest.Eventually(t, 30*time.Second, "configuration gone (finalizers released)", func(ctx context.Context) error {
		var got akri.Configuration
		err := c.Get(ctx, client.ObjectKeyFromObject(cfg), &got)
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("still there (finalizers %v, err %v)", got.Finalizers, err)
	})
}

// TestReferenceYAML applies the reference scenario's Configuration (pre-0.8
// layout) unchanged with kubectl's strict validation: the agent creates
// Instance akri-debug-echo-8120fe and the controller a broker pod
// <node>-akri-debug-echo-8120fe-pod asking for akri.sh/akri-debug-echo-8120fe.
// The handler registers after the Configuration exists (upstream waits for
// a back-off retry; wasilet starts discovery at once).
func TestReferenceYAML(t *testing.T) {
	env := clustertest.Require(t)
	c := akritest.Client(t, env)
	dir := akritest.ShortDir(t)
	n := akriNode(t, dir)
	akritest.Controller(t, env)
	ns := env.Namespace(t)
	ctx := context.Background()

	y, err := deploy.Example("akri-debug-echo.yaml")
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "akri-debug-echo.yaml")
	if err := os.WriteFile(file, y, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := env.Kubectl(ctx, "apply", "--validate=strict", "-n", ns, "-f", file); err != nil {
		t.Fatalf("kubectl apply: %v\n%s", err, out)
	}
	time.Sleep(time.Second) // the Configuration is seen before its handler exists
	akritest.StartDebugEcho(t, dir, "debugEcho", true)

	const instance = "akri-debug-echo-8120fe"
	podName := n.Name + "-" + instance + "-pod"
	akritest.Eventually(t, 60*time.Second, "instance and broker pod", func(ctx context.Context) error {
		var in akri.Instance
		if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: instance}, &in); err != nil {
			return err
		}
		if in.Spec.BrokerProperties["DEBUG_ECHO_DESCRIPTION"] != "foo0" || !slices.Contains(in.Spec.Nodes, n.Name) {
			return fmt.Errorf("instance spec %+v", in.Spec)
		}
		var p corev1.Pod
		if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: podName}, &p); err != nil {
			return err
		}
		res := corev1.ResourceName("akri.sh/" + instance)
		ct := p.Spec.Containers[0]
		if ct.Resources.Limits[res] != resource.MustParse("1") || ct.Resources.Requests[res] != resource.MustParse("1") {
			return fmt.Errorf("broker resources %+v", ct.Resources)
		}
		return nil
	})
	// The node advertises the Instance's two slots.
	nodeCapacity := func(instance string, want int64) {
		t.Helper()
		akritest.Eventually(t, 30*time.Second, fmt.Sprintf("node capacity akri.sh/%s = %d", instance, want), func(ctx context.Context) error {
			node := n.Object(t)
			if q := node.Status.Capacity[corev1.ResourceName("akri.sh/"+instance)]; q.Value() != want {
				return fmt.Errorf("capacity %v", node.Status.Capacity)
			}
			return nil
		})
	}
	nodeCapacity(instance, 2)

	// A capacity change reaches the Instance and the node (upstream keeps
	// the old slot count in its plugins).
	if out, err := env.Kubectl(ctx, "patch", "-n", ns, "akric", "akri-debug-echo", "--type=merge", "-p", `{"spec":{"capacity":3}}`); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	nodeCapacity(instance, 3)
	// New discoveryDetails restart discovery (upstream ignores the edit).
	if out, err := env.Kubectl(ctx, "patch", "-n", ns, "akric", "akri-debug-echo", "--type=merge", "-p", `{"spec":{"discoveryHandler":{"discoveryDetails":"descriptions: [foo1]"}}}`); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	foo1 := akri.InstanceName("akri-debug-echo", "foo1", true, "")
	akritest.Eventually(t, 30*time.Second, "instance of foo1 replaces foo0's", func(ctx context.Context) error {
		ins, err := akritest.Instances(ctx, c, ns, "akri-debug-echo")
		if err != nil {
			return err
		}
		if got := instanceNames(ins); !slices.Equal(got, []string{foo1}) {
			return fmt.Errorf("instances %v", got)
		}
		return nil
	})
	nodeCapacity(foo1, 3)
}

// TestUnsharedInvalidAndLateHandler: an unshared handler names Instances per
// node and brokers <instance>-pod; invalid discoveryDetails become an Event
// on the Configuration while the agent carries on.
func TestUnsharedInvalidAndLateHandler(t *testing.T) {
	env := clustertest.Require(t)
	c := akritest.Client(t, env)
	ref := broker(t, env)
	dir := akritest.ShortDir(t)
	n := akriNode(t, dir)
	akritest.Controller(t, env)
	ns := env.Namespace(t)
	ctx := context.Background()

	bad := configuration(ns, "bad-details", "localEcho", nil, 1, ref)
	bad.Spec.DiscoveryHandler.DiscoveryDetails = "descriptions: [unclosed"
	if err := c.Create(ctx, bad); err != nil {
		t.Fatal(err)
	}
	cfg := configuration(ns, "local", "localEcho", []string{"my_local_device"}, 1, ref)
	if err := c.Create(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	akritest.StartDebugEcho(t, dir, "localEcho", false)

	instance := akri.InstanceName(cfg.Name, "my_local_device", false, n.Name)
	akritest.Eventually(t, 60*time.Second, "unshared instance and its broker", func(ctx context.Context) error {
		var in akri.Instance
		if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: instance}, &in); err != nil {
			return err
		}
		if in.Spec.Shared {
			return fmt.Errorf("instance is shared")
		}
		var p corev1.Pod
		return c.Get(ctx, types.NamespacedName{Namespace: ns, Name: instance + "-pod"}, &p)
	})
	akritest.Eventually(t, 30*time.Second, "an Event on the Configuration with invalid details", func(ctx context.Context) error {
		var evs corev1.EventList
		if err := c.List(ctx, &evs, client.InNamespace(ns)); err != nil {
			return err
		}
		for _, e := range evs.Items {
			if e.InvolvedObject.Name == bad.Name && e.Type == corev1.EventTypeWarning && strings.Contains(e.Message, "invalid discovery details") {
				return nil
			}
		}
		return fmt.Errorf("no warning event among %d", len(evs.Items))
	})
	if ins, _ := akritest.Instances(ctx, c, ns, bad.Name); len(ins) != 0 {
		t.Errorf("invalid configuration has instances %v", instanceNames(ins))
	}

	// A 57-character Configuration name makes akri.sh/<instance> too long
	// for any kubelet: the Instance is written, no plugin is served, and an
	// Event says why.
	long := configuration(ns, strings.Repeat("c", 57), "localEcho", []string{"dev"}, 1, ref)
	long.Spec.BrokerSpec, long.Spec.InstanceServiceSpec, long.Spec.ConfigurationServiceSpec = nil, nil, nil
	if err := c.Create(ctx, long); err != nil {
		t.Fatal(err)
	}
	akritest.Eventually(t, 30*time.Second, "a warning that the Instance gets no device plugin", func(ctx context.Context) error {
		var evs corev1.EventList
		if err := c.List(ctx, &evs, client.InNamespace(ns)); err != nil {
			return err
		}
		for _, e := range evs.Items {
			if e.Reason == "DevicePluginNotServed" && strings.HasPrefix(e.InvolvedObject.Name, long.Name+"-") {
				return nil
			}
		}
		return fmt.Errorf("no DevicePluginNotServed event among %d", len(evs.Items))
	})
}

// TestNodeRestartKeepsBroker: a restart of the node (and its in-process
// agent) keeps the Instance, the broker's slot and the broker itself; the
// broker's container comes back with its device's environment. A handler
// that is killed and started again is streamed from again.
func TestNodeRestartKeepsBroker(t *testing.T) {
	env, c, ref, n, h, ns := standard(t)
	ctx := context.Background()

	cfg := configuration(ns, "restart", "debugEcho", []string{"foo0"}, 1, ref)
	cfg.Spec.InstanceServiceSpec, cfg.Spec.ConfigurationServiceSpec = nil, nil
	if err := c.Create(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	instance := cfg.Name + "-8120fe"
	podName := n.Name + "-" + instance + "-pod"
	var in akri.Instance
	var pod corev1.Pod
	running := func(what string) {
		t.Helper()
		akritest.Eventually(t, 90*time.Second, what, func(ctx context.Context) error {
			if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: podName}, &pod); err != nil {
				return err
			}
			if pod.Status.Phase != corev1.PodRunning || len(pod.Status.ContainerStatuses) == 0 || pod.Status.ContainerStatuses[0].State.Running == nil {
				return fmt.Errorf("phase %s", pod.Status.Phase)
			}
			if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: instance}, &in); err != nil {
				return err
			}
			if in.Spec.DeviceUsage[instance+"-0"] != n.Name {
				return fmt.Errorf("deviceUsage %v", in.Spec.DeviceUsage)
			}
			return nil
		})
	}
	running("broker Running with its slot claimed")
	podUID, instUID := pod.UID, in.UID

	n.Restart(t)
	n.WaitReady(t, 2*time.Minute)
	time.Sleep(3 * time.Second)
	running("broker Running again after the node restart")
	if pod.UID != podUID || in.UID != instUID {
		t.Errorf("after the node restart: pod uid %s (was %s), instance uid %s (was %s)", pod.UID, podUID, in.UID, instUID)
	}
	akritest.Eventually(t, 30*time.Second, "broker's container has its device env after the restart", func(ctx context.Context) error {
		out, err := env.Kubectl(ctx, "logs", "-n", ns, podName)
		if err != nil || !strings.Contains(string(out), "DEBUG_ECHO_DESCRIPTION_8120FE=foo0\n") {
			return fmt.Errorf("%v: %s", err, out)
		}
		return nil
	})
	if pods, _ := akritest.Pods(ctx, c, ns, map[string]string{"akri.sh/configuration": cfg.Name}); len(pods) != 1 {
		t.Errorf("%d brokers after the restart", len(pods))
	}

	// The handler dies and comes back: the Instance stays meanwhile (the
	// agent keeps a lost stream's devices for a while) and discovery goes on
	// with the new process.
	h.Kill()
	time.Sleep(2 * time.Second)
	if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: instance}, &in); err != nil || in.UID != instUID {
		t.Fatalf("instance lost while its handler restarts: %v", err)
	}
	h.Restart(t)
	h.SetOnline(t, false)
	akritest.Eventually(t, 60*time.Second, "OFFLINE through the restarted handler removes the instance", func(ctx context.Context) error {
		ins, err := akritest.Instances(ctx, c, ns, cfg.Name)
		if err != nil || len(ins) != 0 {
			return fmt.Errorf("instances %v, %v", instanceNames(ins), err)
		}
		return nil
	})
}

// TestTwoNodesShareAndConfigurationSlots: two nodes whose handlers see the
// same shared device write one Instance with both in spec.nodes and get a
// broker each; a pod asking for the Configuration's resource gets a slot
// through the Configuration-level plugin (claim C:<cfg>-<n>:<node>); when
// one node stops seeing the device it leaves spec.nodes and its broker goes.
// The second handler serves over the network (POD_IP mode).
func TestTwoNodesShareAndConfigurationSlots(t *testing.T) {
	env := clustertest.Require(t)
	c := akritest.Client(t, env)
	ref := broker(t, env)
	dirA, dirB := akritest.ShortDir(t), akritest.ShortDir(t)
	a, b := akriNode(t, dirA), akriNode(t, dirB)
	akritest.Controller(t, env)
	ha := akritest.StartDebugEcho(t, dirA, "debugEcho", true)
	hb := akritest.Start(t, "debug-echo-network", nil, "debug-echo", "--name", "debugEcho",
		"--discovery-handlers-directory", dirB, "--shared=true", "--pod-ip", "127.0.0.1",
		"--availability-file", filepath.Join(t.TempDir(), "availability.txt"), "--poll-interval", "100ms", "--register-retry", "1s")
	_ = hb
	ns := env.Namespace(t)
	ctx := context.Background()

	cfg := configuration(ns, "shared", "debugEcho", []string{"foo0"}, 3, ref)
	cfg.Spec.InstanceServiceSpec, cfg.Spec.ConfigurationServiceSpec = nil, nil
	if err := c.Create(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	instance := cfg.Name + "-8120fe"
	akritest.Eventually(t, 90*time.Second, "one instance on both nodes, a broker on each", func(ctx context.Context) error {
		var in akri.Instance
		if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: instance}, &in); err != nil {
			return err
		}
		nodes := slices.Sorted(slices.Values(in.Spec.Nodes))
		if want := slices.Sorted(slices.Values([]string{a.Name, b.Name})); !slices.Equal(nodes, want) {
			return fmt.Errorf("nodes %v", nodes)
		}
		for _, n := range []string{a.Name, b.Name} {
			var p corev1.Pod
			if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: n + "-" + instance + "-pod"}, &p); err != nil {
				return err
			}
			if p.Status.Phase != corev1.PodRunning || p.Spec.NodeName != n {
				return fmt.Errorf("broker on %s: phase %s on %q", n, p.Status.Phase, p.Spec.NodeName)
			}
		}
		return nil
	})

	// A pod asking for akri.sh/<configuration> on node a.
	user := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "any-device"},
		Spec: akritest.WasmPodSpec(ref, corev1.ResourceList{corev1.ResourceName("akri.sh/" + cfg.Name): resource.MustParse("1")}, "env", "--", "sleep", "1h")}
	user.Spec.NodeSelector["kubernetes.io/hostname"] = a.Name
	if err := c.Create(ctx, user); err != nil {
		t.Fatal(err)
	}
	akritest.Eventually(t, 60*time.Second, "configuration-level slot claimed and used", func(ctx context.Context) error {
		out, err := env.Kubectl(ctx, "logs", "-n", ns, user.Name)
		if err != nil || !strings.Contains(string(out), "DEBUG_ECHO_DESCRIPTION_8120FE=foo0\n") {
			return fmt.Errorf("%v: %s", err, out)
		}
		var in akri.Instance
		if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: instance}, &in); err != nil {
			return err
		}
		for _, v := range in.Spec.DeviceUsage {
			if strings.HasPrefix(v, "C:"+cfg.Name+"-") && strings.HasSuffix(v, ":"+a.Name) {
				return nil
			}
		}
		return fmt.Errorf("deviceUsage %v has no configuration-level claim of %s", in.Spec.DeviceUsage, a.Name)
	})

	// Node a's handler stops seeing the device: a leaves, b stays.
	ha.SetOnline(t, false)
	akritest.Eventually(t, 60*time.Second, "node a left the instance, its broker gone", func(ctx context.Context) error {
		var in akri.Instance
		if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: instance}, &in); err != nil {
			return err
		}
		if !slices.Equal(in.Spec.Nodes, []string{b.Name}) {
			return fmt.Errorf("nodes %v", in.Spec.Nodes)
		}
		var p corev1.Pod
		if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: a.Name + "-" + instance + "-pod"}, &p); err == nil && p.DeletionTimestamp == nil {
			return fmt.Errorf("broker on %s still there", a.Name)
		}
		return nil
	})
}

// peers is ../shared/peers/akri-0.13.26 (upstream's binaries), or the test
// is skipped.
func peers(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", "..", "..", "shared", "peers", "akri-0.13.26"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "debug-echo-discovery-handler")); err != nil {
		t.Skipf("upstream Akri binaries not here (%v)", err)
	}
	return dir
}

// TestUpstreamHandlerInterop: upstream's Rust debug-echo handler registering
// with wasilet's agent yields exactly the Instances the native handler does.
func TestUpstreamHandlerInterop(t *testing.T) {
	up := peers(t)
	env := clustertest.Require(t)
	c := akritest.Client(t, env)
	ref := broker(t, env)
	dir := akritest.ShortDir(t)
	akriNode(t, dir)
	ns := env.Namespace(t)
	ctx := context.Background()

	specs := func(handler string) map[string]akri.InstanceSpec {
		cfg := configuration(ns, "interop-"+strings.ToLower(handler), "debugEcho", []string{"foo0", "foo1"}, 2, ref)
		cfg.Spec.BrokerSpec = nil
		if err := c.Create(ctx, cfg); err != nil {
			t.Fatal(err)
		}
		out := map[string]akri.InstanceSpec{}
		akritest.Eventually(t, 60*time.Second, handler+" instances", func(ctx context.Context) error {
			ins, err := akritest.Instances(ctx, c, ns, cfg.Name)
			if err != nil {
				return err
			}
			if len(ins) != 2 {
				return fmt.Errorf("instances %v", instanceNames(ins))
			}
			for _, in := range ins {
				s := in.Spec
				s.ConfigurationName = ""
				s.CDIName = strings.TrimPrefix(s.CDIName, "akri.sh/"+cfg.Name)
				out[strings.TrimPrefix(in.Name, cfg.Name)] = s
			}
			return nil
		})
		if err := c.Delete(ctx, cfg); err != nil {
			t.Fatal(err)
		}
		waitCounts(t, c, ns, cfg.Name, 0, 0, 0, 60*time.Second)
		return out
	}

	cmd := exec.Command(filepath.Join(up, "debug-echo-discovery-handler"))
	cmd.Env = append(os.Environ(), "DEBUG_ECHO_INSTANCES_SHARED=true", "DISCOVERY_HANDLERS_DIRECTORY="+dir, "RUST_LOG=info")
	logPath := filepath.Join(t.TempDir(), "upstream-dh.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	upstream := specs("upstream")
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	logf.Close()

	akritest.StartDebugEcho(t, dir, "debugEcho", true)
	native := specs("native")
	if fmt.Sprint(upstream) != fmt.Sprint(native) {
		b, _ := os.ReadFile(logPath)
		t.Fatalf("upstream handler's instances %v\nnative handler's %v\nupstream log:\n%s", upstream, native, b)
	}
	if _, ok := native["-8120fe"]; !ok {
		t.Errorf("instances %v lack -8120fe (foo0)", native)
	}
}

// TestUpstreamAgentOnWasiletNode: upstream's Rust agent and controller
// against a wasilet node (its own agent off) bring a broker up as they would
// on a kubelet: the agent registers its device plugins at the node's
// kubelet.sock (bind-mounted onto the agent's compiled-in
// /var/lib/kubelet paths in a private mount namespace) and the node gives the
// broker the device's environment.
func TestUpstreamAgentOnWasiletNode(t *testing.T) {
	env := clustertest.Require(t)
	c := akritest.Client(t, env)
	ref := broker(t, env)
	dir := akritest.ShortDir(t)
	n := nodetest.Start(t, nodetest.Options{Args: []string{"--akri-agent=false"}})
	ns := env.Namespace(t)
	ctx := context.Background()
	akritest.StartUpstreamAkri(t, env, n, dir)
	akritest.StartDebugEcho(t, dir, "debugEcho", true)

	cfg := configuration(ns, "upstream-agent", "debugEcho", []string{"foo0"}, 1, ref)
	cfg.Spec.InstanceServiceSpec, cfg.Spec.ConfigurationServiceSpec = nil, nil
	if err := c.Create(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	podName := n.Name + "-" + cfg.Name + "-8120fe-pod"
	// The upstream broker runs on the wasilet node with the device's env.
	akritest.WaitLog(t, env, 120*time.Second, ns, podName, "DEBUG_ECHO_DESCRIPTION=foo0", "DEBUG_ECHO_DESCRIPTION_8120FE=foo0")
}

// TestStandaloneAgentRestarts runs `wasilet agent` beside a node without its
// in-process agent: its plugins register again when the node (the kubelet)
// restarts and recreates kubelet.sock (upstream never does), and an agent
// restart, clean or after SIGKILL, neither duplicates the Instance nor loses
// the claimed slot.
func TestStandaloneAgentRestarts(t *testing.T) {
	env := clustertest.Require(t)
	c := akritest.Client(t, env)
	ref := broker(t, env)
	dir := akritest.ShortDir(t)
	n := nodetest.Start(t, nodetest.Options{Args: []string{"--akri-agent=false"}})
	ag := akritest.Start(t, "agent", []string{"AGENT_NODE_NAME=" + n.Name, "DISCOVERY_HANDLERS_DIRECTORY=" + dir}, "agent",
		"--kubeconfig", env.AdminKubeconfig,
		"--device-plugins-dir", filepath.Join(n.DataDir, "device-plugins"),
		"--pod-resources-socket", filepath.Join(n.DataDir, "pod-resources", "kubelet.sock"),
		"--log-level", "debug")
	akritest.StartDebugEcho(t, dir, "debugEcho", true)
	ns := env.Namespace(t)
	ctx := context.Background()

	cfg := configuration(ns, "standalone", "debugEcho", []string{"foo0"}, 2, ref)
	cfg.Spec.BrokerSpec = nil
	if err := c.Create(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	instance := cfg.Name + "-8120fe"
	res := corev1.ResourceName("akri.sh/" + instance)
	capacity := func(want int64) {
		t.Helper()
		akritest.Eventually(t, 60*time.Second, fmt.Sprintf("node allocatable %s = %d", res, want), func(ctx context.Context) error {
			node := n.Object(t)
			if q := node.Status.Allocatable[res]; q.Value() != want {
				return fmt.Errorf("allocatable %v", node.Status.Allocatable)
			}
			return nil
		})
	}
	capacity(2)
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "user"},
		Spec: akritest.WasmPodSpec(ref, corev1.ResourceList{res: resource.MustParse("1")}, "env", "--", "sleep", "1h")}
	if err := c.Create(ctx, p); err != nil {
		t.Fatal(err)
	}
	var before akri.Instance
	akritest.Eventually(t, 60*time.Second, "pod Running with a claimed slot", func(ctx context.Context) error {
		var got corev1.Pod
		if err := c.Get(ctx, client.ObjectKeyFromObject(p), &got); err != nil {
			return err
		}
		if got.Status.Phase != corev1.PodRunning {
			return fmt.Errorf("phase %s", got.Status.Phase)
		}
		if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: instance}, &before); err != nil {
			return err
		}
		if len(before.Spec.DeviceUsage) != 1 {
			return fmt.Errorf("deviceUsage %v", before.Spec.DeviceUsage)
		}
		return nil
	})

	n.Restart(t)
	n.WaitReady(t, 2*time.Minute)
	capacity(2)

	var after akri.Instance
	// A clean restart (SIGTERM), then a crash (SIGKILL: no cleanup at all).
	// (No timing figure: the node's allocatable may not even have dropped
	// before the agent is back, so a time from here would measure nothing.)
	for _, crash := range []bool{false, true} {
		if crash {
			ag.Kill()
		}
		ag.Restart(t)
		time.Sleep(3 * time.Second)
		capacity(2)
		if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: instance}, &after); err != nil {
			t.Fatal(err)
		}
		if after.UID != before.UID || fmt.Sprint(after.Spec.DeviceUsage) != fmt.Sprint(before.Spec.DeviceUsage) {
			t.Errorf("after agent restart (killed: %v): uid %s deviceUsage %v; before: uid %s deviceUsage %v", crash, after.UID, after.Spec.DeviceUsage, before.UID, before.Spec.DeviceUsage)
		}
	}
	ins, _ := akritest.Instances(ctx, c, ns, cfg.Name)
	if len(ins) != 1 {
		t.Errorf("instances after restarts: %v", instanceNames(ins))
	}
	reliability.Record(t, reliability.Entry{
		Fault: "a standalone `wasilet agent` restarted cleanly, then killed with SIGKILL and restarted, beside a node with a pod holding one of its slots (and the node restarted too)",
		Kept: []string{
			"the same Instance (uid) and its deviceUsage claim after each restart",
			"its plugins registered again with the restarted node (kubelet.sock recreated)",
			"capacity 2 allocatable again; one Instance, no duplicate",
		},
	})
	// The pod still runs and its slot stays claimed past the reclaimer's
	// grace; once the pod is gone the slot is reclaimed (instance level,
	// which upstream never frees).
	time.Sleep(25 * time.Second)
	if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: instance}, &after); err != nil {
		t.Fatal(err)
	}
	if len(after.Spec.DeviceUsage) != 1 {
		t.Errorf("slot of a running pod was freed: %v", after.Spec.DeviceUsage)
	}
	if err := c.Delete(ctx, p); err != nil {
		t.Fatal(err)
	}
	akritest.Eventually(t, 60*time.Second, "instance-level slot reclaimed", func(ctx context.Context) error {
		var in akri.Instance
		if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: instance}, &in); err != nil {
			return err
		}
		for k, v := range in.Spec.DeviceUsage {
			if v != "" {
				return fmt.Errorf("still claimed: %s=%s", k, v)
			}
		}
		return nil
	})
}
