// End-to-end tests of the reference scenario (design §5): `wasilet proxy`
// bridges the Wasm debugEcho handler (a pod on a wasilet node, exchanging
// files through a hostPath directory) to the node's in-process Akri agent;
// `wasilet controller` runs the Wasm broker. Real control plane, registry,
// node and kubectl.
package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
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
	"github.com/wasilet/wasilet/proxy/exchange"
)

func TestMain(m *testing.M) { nodetest.Main(m) }

const wantLine = `Pod is running and using debugEcho device named: "foo0"`

// scenario is one run of the reference scenario's parts.
type scenario struct {
	env    *clustertest.Env
	c      client.Client
	node   *nodetest.Node
	ns     string
	wde    string // exchange directory
	dir    string // discovery handlers directory (the agent's registration socket)
	proxy  *akritest.Proc
	broker string // image references
	dh     string
}

func setup(t *testing.T) *scenario { return setupWith(t, setupOptions{}) }

type setupOptions struct {
	proxyArgs []string // extra flags of `wasilet proxy`
	upstream  bool     // upstream Akri's agent and controller instead of wasilet's
	nodeArgs  []string // extra flags of `wasilet node` (wasilet's agent only)
}

// setupWith starts the node, the Akri agent and controller (wasilet's, or
// upstream's) and the proxy, and pushes the handler and broker images.
func setupWith(t testing.TB, o setupOptions) *scenario {
	t.Helper()
	env := clustertest.Require(t)
	s := &scenario{env: env, c: akritest.Client(t, env), ns: env.Namespace(t)}
	dir := akritest.ShortDir(t)
	s.dir, s.wde = dir, filepath.Join(dir, "wde")
	if err := os.MkdirAll(s.wde, 0o755); err != nil {
		t.Fatal(err)
	}
	if o.upstream {
		s.node = nodetest.Start(t, nodetest.Options{Args: []string{"--akri-agent=false"}})
		akritest.StartUpstreamAkri(t, env, s.node, dir)
	} else {
		s.node = nodetest.Start(t, nodetest.Options{Args: append([]string{"--discovery-handlers-directory", dir}, o.nodeArgs...)})
		akritest.Controller(t, env)
	}
	s.proxy = akritest.Start(t, "proxy", []string{"DEBUG_ECHO_INSTANCES_SHARED=true", "AGENT_NODE_NAME=" + s.node.Name},
		append([]string{"proxy", "--discovery-handlers-directory", dir, "--exchange-dir", s.wde, "--register-retry", "1s", "--log-level", "debug"}, o.proxyArgs...)...)
	s.dh = nodetest.PushWasm(t, env, nodetest.WasmFile(t, "debug-echo.wasm"), "debug-echo-handler:e2e")
	s.broker = nodetest.PushWasm(t, env, nodetest.WasmFile(t, "debug-echo-broker.wasm"), "debug-echo-broker:e2e")
	return s
}

// handlerPod runs the Wasm handler (deploy/examples/wasi-debug-echo.yaml
// with this test's image, exchange directory and node).
func (s *scenario) handlerPod(t testing.TB) { s.handlerPodEnv(t, "") }

// handlerPodEnv runs the handler pod, with DEBUG_ECHO_POLL_INTERVAL set to
// poll when not empty.
func (s *scenario) handlerPodEnv(t testing.TB, poll string) {
	t.Helper()
	y, err := deploy.Example("wasi-debug-echo.yaml")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.ReplaceAll(string(y), "127.0.0.1:5000/debug-echo-handler:latest", s.dh)
	text = strings.ReplaceAll(text, "path: /tmp/wde-dir", "path: "+s.wde)
	text = strings.Replace(text, "\n  nodeSelector:\n", "\n  nodeSelector:\n    kubernetes.io/hostname: "+s.node.Name+"\n", 1)
	if poll != "" {
		text = strings.Replace(text, "    volumeMounts:\n", "    env:\n    - {name: DEBUG_ECHO_POLL_INTERVAL, value: \""+poll+"\"}\n    volumeMounts:\n", 1)
	}
	s.apply(t, text)
	akritest.Eventually(t, 60*time.Second, "handler pod Running", func(ctx context.Context) error {
		var p corev1.Pod
		if err := s.c.Get(ctx, types.NamespacedName{Namespace: s.ns, Name: "wasi-debug-echo"}, &p); err != nil {
			return err
		}
		if p.Status.Phase != corev1.PodRunning {
			return fmt.Errorf("phase %s", p.Status.Phase)
		}
		return nil
	})
}

func (s *scenario) apply(t testing.TB, yaml string) {
	t.Helper()
	f := filepath.Join(t.TempDir(), "m.yaml")
	if err := os.WriteFile(f, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := s.env.Kubectl(context.Background(), "apply", "--validate=strict", "-n", s.ns, "-f", f); err != nil {
		t.Fatalf("kubectl apply: %v\n%s", err, out)
	}
}

// configuration applies deploy/examples/akri-debug-echo.yaml (the original
// layout) under name with these descriptions.
func (s *scenario) configuration(t testing.TB, name string, descriptions ...string) {
	t.Helper()
	s.apply(t, s.configurationText(t, name, descriptions...))
}

func (s *scenario) configurationText(t testing.TB, name string, descriptions ...string) string {
	t.Helper()
	y, err := deploy.Example("akri-debug-echo.yaml")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.ReplaceAll(string(y), "127.0.0.1:5000/debug-echo-broker:latest", s.broker)
	text = strings.Replace(text, "name: akri-debug-echo\n", "name: "+name+"\n", 1)
	return strings.Replace(text, "      - foo0\n", "      - "+strings.Join(descriptions, "\n      - ")+"\n", 1)
}

// brokerSpecLayout moves spec.brokerPodSpec of a Configuration in the
// original layout under spec.brokerSpec, the layout of Akri 0.8 and later
// (what upstream's controller reads).
func brokerSpecLayout(text string) string {
	var out []string
	in := false
	for _, line := range strings.Split(text, "\n") {
		switch {
		case line == "  brokerPodSpec:":
			out = append(out, "  brokerSpec:", "    brokerPodSpec:")
			in = true
			continue
		case in && strings.HasPrefix(line, "    "):
			line = "  " + line
		case in:
			in = false
		}
		out = append(out, line)
	}
	return strings.Join(out, "\n")
}

func (s *scenario) brokers(ctx context.Context, cfg string) ([]corev1.Pod, error) {
	pods, err := akritest.Pods(ctx, s.c, s.ns, map[string]string{"akri.sh/configuration": cfg})
	if err != nil {
		return nil, err
	}
	var running []corev1.Pod
	for _, p := range pods {
		if p.Status.Phase == corev1.PodRunning {
			running = append(running, p)
		}
	}
	if len(running) != len(pods) {
		return nil, fmt.Errorf("%d of %d brokers running", len(running), len(pods))
	}
	return running, nil
}

func (s *scenario) waitBrokers(t *testing.T, cfg string, n int) []corev1.Pod {
	t.Helper()
	var got []corev1.Pod
	akritest.Eventually(t, 90*time.Second, fmt.Sprintf("%d running brokers of %s", n, cfg), func(ctx context.Context) error {
		pods, err := s.brokers(ctx, cfg)
		if err != nil {
			return err
		}
		if len(pods) != n {
			return fmt.Errorf("%d brokers", len(pods))
		}
		got = pods
		return nil
	})
	return got
}

func (s *scenario) logs(ctx context.Context, pod string) (string, error) {
	out, err := s.env.Kubectl(ctx, "logs", "-n", s.ns, pod)
	return string(out), err
}

func (s *scenario) availability(t *testing.T, text string) {
	t.Helper()
	if err := exchange.WriteFileAtomic(filepath.Join(s.wde, exchange.AvailabilityFile), []byte(text)); err != nil {
		t.Fatal(err)
	}
}

// TestReferenceScenario is the scenario exactly: Instance
// akri-debug-echo-8120fe, broker <node>-akri-debug-echo-8120fe-pod Running
// with akri.sh/akri-debug-echo-8120fe: 1 in limits and requests, its log line,
// both env names; OFFLINE removes the broker and ONLINE brings it back; the
// proxy rides out malformed and half-written output and a handler restart.
func TestReferenceScenario(t *testing.T) {
	s := setup(t)
	ctx := context.Background()
	s.handlerPod(t)
	s.configuration(t, "akri-debug-echo", "foo0")

	const instance = "akri-debug-echo-8120fe"
	podName := s.node.Name + "-" + instance + "-pod"
	s.waitBrokers(t, "akri-debug-echo", 1)
	var pod corev1.Pod
	if err := s.c.Get(ctx, types.NamespacedName{Namespace: s.ns, Name: podName}, &pod); err != nil {
		t.Fatalf("broker pod %s: %v", podName, err)
	}
	res := corev1.ResourceName("akri.sh/" + instance)
	ct := pod.Spec.Containers[0]
	if ct.Resources.Limits[res] != resource.MustParse("1") || ct.Resources.Requests[res] != resource.MustParse("1") {
		t.Errorf("broker resources %+v, want %s: 1 in both", ct.Resources, res)
	}
	akritest.Eventually(t, 30*time.Second, "broker log line and env", func(ctx context.Context) error {
		out, err := s.logs(ctx, podName)
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		if first, _, _ := strings.Cut(out, "\n"); first != wantLine {
			return fmt.Errorf("first log line %q", first)
		}
		if !strings.Contains(out, "DEBUG_ECHO_DESCRIPTION_8120FE=foo0") {
			return fmt.Errorf("the broker does not report DEBUG_ECHO_DESCRIPTION_8120FE: %s", out)
		}
		return nil
	})

	// Malformed and half-written output: the proxy keeps the last good list.
	out := filepath.Join(s.wde, exchange.OutFile)
	good, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"not json at all", string(good[:len(good)/2])} {
		if err := os.WriteFile(out, []byte(bad), 0o644); err != nil {
			t.Fatal(err)
		}
		time.Sleep(1500 * time.Millisecond)
		if pods, err := s.brokers(ctx, "akri-debug-echo"); err != nil || len(pods) != 1 {
			t.Fatalf("after bad output %q: brokers %d, %v", bad, len(pods), err)
		}
	}
	if !strings.Contains(s.proxy.Log(), "malformed") {
		t.Errorf("the proxy did not report the malformed output:\n%s", s.proxy.Log())
	}
	// The handler rewrites out.out (it notices the file changed under it).
	akritest.Eventually(t, 10*time.Second, "handler rewrites out.out", func(ctx context.Context) error {
		b, _ := os.ReadFile(out)
		if _, err := exchange.ParseOutput(b); err != nil {
			return err
		}
		return nil
	})

	s.availability(t, "OFFLINE")
	s.waitBrokers(t, "akri-debug-echo", 0)
	akritest.Eventually(t, 30*time.Second, "instance gone", func(ctx context.Context) error {
		ins, err := akritest.Instances(ctx, s.c, s.ns, "akri-debug-echo")
		if err != nil || len(ins) != 0 {
			return fmt.Errorf("instances %d, %v", len(ins), err)
		}
		return nil
	})
	s.availability(t, "ONLINE")
	s.waitBrokers(t, "akri-debug-echo", 1)

	// The handler pod restarts: the device stays, the broker is untouched.
	before := s.waitBrokers(t, "akri-debug-echo", 1)[0].UID
	if err := s.c.Delete(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: s.ns, Name: "wasi-debug-echo"}}); err != nil {
		t.Fatal(err)
	}
	akritest.Eventually(t, 60*time.Second, "handler pod gone", func(ctx context.Context) error {
		var p corev1.Pod
		if err := s.c.Get(ctx, types.NamespacedName{Namespace: s.ns, Name: "wasi-debug-echo"}, &p); err == nil {
			return fmt.Errorf("still there")
		}
		return nil
	})
	s.handlerPod(t)
	time.Sleep(2 * time.Second)
	after := s.waitBrokers(t, "akri-debug-echo", 1)[0].UID
	if after != before {
		t.Errorf("broker replaced across a handler restart (%s → %s)", before, after)
	}
}

// TestSeveralDevicesAndConfigurations: descriptions foo0..foo2 give three
// brokers, and a second Configuration using debugEcho at the same time gets
// its own devices without disturbing the first.
func TestSeveralDevicesAndConfigurations(t *testing.T) {
	s := setup(t)
	ctx := context.Background()
	s.handlerPod(t)
	s.configuration(t, "three", "foo0", "foo1", "foo2")
	s.waitBrokers(t, "three", 3)
	s.configuration(t, "other", "bar0")
	s.waitBrokers(t, "other", 1)
	s.waitBrokers(t, "three", 3)

	names := func(cfg string) []string {
		ins, err := akritest.Instances(ctx, s.c, s.ns, cfg)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, in := range ins {
			out = append(out, in.Spec.BrokerProperties["DEBUG_ECHO_DESCRIPTION"])
		}
		slices.Sort(out)
		return out
	}
	if got := names("three"); !slices.Equal(got, []string{"foo0", "foo1", "foo2"}) {
		t.Errorf("three: %v", got)
	}
	if got := names("other"); !slices.Equal(got, []string{"bar0"}) {
		t.Errorf("other: %v", got)
	}
	if want := akri.InstanceName("other", "bar0", true, ""); !slices.ContainsFunc(mustInstances(t, s, "other"), func(in akri.Instance) bool { return in.Name == want }) {
		t.Errorf("instance %s missing", want)
	}
	// Each request has its own files (other tests' Configurations, still
	// in terminating namespaces, may add theirs): nothing overwrote either.
	dirs, err := exchange.RequestDirs(s.wde)
	if err != nil {
		t.Fatal(err)
	}
	inputs := map[string]bool{}
	for _, d := range dirs {
		b, _ := os.ReadFile(filepath.Join(d, exchange.InFile))
		inputs[string(b)] = true
	}
	for _, want := range []string{`{"descriptions":["foo0","foo1","foo2"]}`, `{"descriptions":["bar0"]}`} {
		if !inputs[want] {
			t.Errorf("no request directory holds %s (have %v)", want, inputs)
		}
	}
}

func mustInstances(t *testing.T, s *scenario, cfg string) []akri.Instance {
	t.Helper()
	ins, err := akritest.Instances(context.Background(), s.c, s.ns, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return ins
}

// TestProxyKilled: the proxy (the gRPC face of the Wasm handler) is killed
// with SIGKILL and restarted mid-run. The broker stays the same pod (the
// agent keeps a lost handler's devices while it reconnects), and the device
// path works again: OFFLINE removes the broker, ONLINE brings one back.
func TestProxyKilled(t *testing.T) {
	s := setup(t)
	s.handlerPod(t)
	s.configuration(t, "akri-debug-echo", "foo0")
	before := s.waitBrokers(t, "akri-debug-echo", 1)[0].UID

	s.proxy.Kill()
	killed := time.Now()
	s.proxy.Restart(t)
	// Past the proxy's re-registration and the agent's reconnect.
	time.Sleep(3 * time.Second)
	if after := s.waitBrokers(t, "akri-debug-echo", 1)[0].UID; after != before {
		t.Errorf("broker replaced across a proxy kill (%s → %s)", before, after)
	}
	s.availability(t, "OFFLINE")
	s.waitBrokers(t, "akri-debug-echo", 0)
	offline := time.Since(killed)
	s.availability(t, "ONLINE")
	s.waitBrokers(t, "akri-debug-echo", 1)
	reliability.Record(t, reliability.Entry{
		Fault: "SIGKILL of `wasilet proxy` (between the Wasm debugEcho handler pod and the agent), then a restart",
		Kept: []string{
			"the broker stays the same pod across the kill",
			"OFFLINE afterwards removes the broker, ONLINE brings one back: the device path works again",
		},
		Figures: []reliability.Figure{
			{Name: "proxy killed → OFFLINE seen through it (incl. a 3 s wait)", Value: offline.Round(time.Millisecond).String()},
		},
	})
}
