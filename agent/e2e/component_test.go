package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	akri "github.com/wasilet/wasilet/agent/apis/akri/v0"
	"github.com/wasilet/wasilet/internal/akritest"
	"github.com/wasilet/wasilet/internal/clustertest"
	"github.com/wasilet/wasilet/internal/nodetest"
)

// TestComponentReferenceScenario is the reference scenario with debugEcho
// as a Wasm component hosted by the node's in-process agent (no proxy, no
// handler pod, no exchanged files): pulled from the registry, registered as
// debugEcho by --component-handler, the Configuration unchanged. Instance
// akri-debug-echo-8120fe, the broker's log line; OFFLINE in the
// availability file (the directory the handler sees as /tmp) removes it,
// ONLINE brings it back.
func TestComponentReferenceScenario(t *testing.T) {
	env, c, ns, n, avail := componentRig(t)
	ctx := context.Background()
	brokerImg := nodetest.PushWasm(t, env, nodetest.WasmFile(t, "debug-echo-broker.wasm"), "debug-echo-broker:v1")

	cfg := configuration(ns, "akri-debug-echo", "debugEcho", []string{"foo0"}, 2, brokerImg)
	cfg.Spec.BrokerSpec.BrokerPodSpec.Containers[0].Args = nil
	start := time.Now()
	if err := c.Create(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	const instance = "akri-debug-echo-8120fe"
	podName := n.Name + "-" + instance + "-pod"
	akritest.Eventually(t, 60*time.Second, "instance "+instance, func(ctx context.Context) error {
		var in akri.Instance
		if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: instance}, &in); err != nil {
			return err
		}
		if in.Spec.BrokerProperties["DEBUG_ECHO_DESCRIPTION"] != "foo0" || !slices.Contains(in.Spec.Nodes, n.Name) {
			return fmt.Errorf("instance spec %+v", in.Spec)
		}
		return nil
	})
	akritest.WaitLog(t, env, 60*time.Second, ns, podName, `Pod is running and using debugEcho device named: "foo0"`)
	t.Logf("Configuration applied → broker log line: %v", time.Since(start))
	var p corev1.Pod
	if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: podName}, &p); err != nil {
		t.Fatal(err)
	}
	if q := p.Spec.Containers[0].Resources.Limits[corev1.ResourceName("akri.sh/"+instance)]; q != resource.MustParse("1") {
		t.Fatalf("broker limits %v", p.Spec.Containers[0].Resources.Limits)
	}

	setAvailability(t, avail, "OFFLINE")
	waitCounts(t, c, ns, "akri-debug-echo", 0, 0, 0, 60*time.Second)
	setAvailability(t, avail, "ONLINE")
	waitCounts(t, c, ns, "akri-debug-echo", 1, 1, 2, 60*time.Second)
}

// TestComponentHandlerContainment: handlers that trap, loop forever,
// allocate past their memory limit, read a file outside their preopens or
// reach a host they were not granted are stopped or refused, reported as
// Events on their Configuration, and neither the agent nor another
// component handler (debugEcho, serving meanwhile) is affected; a handler
// component built for another WIT version, or importing wasi:sockets, is
// refused with a clear Event.
func TestComponentHandlerContainment(t *testing.T) {
	hostile := nodetest.WasmFile(t, "hostile-component.component.wasm")
	other := filepath.Join(t.TempDir(), "v02.component.wasm")
	b, err := os.ReadFile(hostile)
	if err != nil {
		t.Fatal(err)
	}
	// The same component claiming akri:discovery@0.2.0 (same length, so the
	// binary stays valid only in its names: the agent refuses it before
	// compiling).
	if err := os.WriteFile(other, []byte(strings.NewReplacer("akri:discovery/handler@0.1.0", "akri:discovery/handler@0.2.0", "akri:discovery/types@0.1.0", "akri:discovery/types@0.2.0").Replace(string(b))), 0o644); err != nil {
		t.Fatal(err)
	}
	// The same component importing wasi:sockets/network in place of
	// wasi:cli/environment (same length; it would not even link, but the
	// agent refuses it by its imports first).
	sockets := filepath.Join(t.TempDir(), "sockets.component.wasm")
	if err := os.WriteFile(sockets, []byte(strings.ReplaceAll(string(b), "wasi:cli/environment@", "wasi:sockets/network@")), 0o644); err != nil {
		t.Fatal(err)
	}
	secret := filepath.Join(t.TempDir(), "secret.txt")
	if err := os.WriteFile(secret, []byte("s3cr3t"), 0o644); err != nil {
		t.Fatal(err)
	}
	env, c, ns, n, _ := componentRig(t,
		"--component-handler", "hostile="+hostile+",memory=64Mi,timeout=2s,watch=1s",
		"--component-handler", "versioned="+other,
		"--component-handler", "sockets="+sockets)
	_ = n
	ctx := context.Background()
	brokerImg := broker(t, env)

	// debugEcho keeps serving throughout.
	good := configuration(ns, "good", "debugEcho", []string{"foo0"}, 1, brokerImg)
	if err := c.Create(ctx, good); err != nil {
		t.Fatal(err)
	}
	waitCounts(t, c, ns, "good", 1, 1, 2, 60*time.Second)

	cases := []struct{ name, details, event string }{
		{"trap", "trap", "guest trapped"},
		{"loop", "loop", "time limit"},
		{"alloc", "alloc", "component handler hostile"},
		{"file", "file " + secret, "read " + secret},
		{"http", "http http://127.0.0.1:1/x", "not granted"},
	}
	for _, tc := range cases {
		cfg := configuration(ns, "hostile-"+tc.name, "hostile", nil, 1, brokerImg)
		cfg.Spec.DiscoveryHandler.DiscoveryDetails = tc.details
		if err := c.Create(ctx, cfg); err != nil {
			t.Fatal(err)
		}
		waitEvent(t, c, ns, cfg.Name, "DiscoveryFailed", tc.event)
	}
	v := configuration(ns, "versioned", "versioned", nil, 1, brokerImg)
	v.Spec.DiscoveryHandler.DiscoveryDetails = "ok"
	if err := c.Create(ctx, v); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, c, ns, "versioned", "DiscoveryFailed", "WIT version mismatch: the component is built for akri:discovery@0.2.0, this agent hosts akri:discovery@0.1.0")
	so := configuration(ns, "sockets", "sockets", nil, 1, brokerImg)
	so.Spec.DiscoveryHandler.DiscoveryDetails = "ok"
	if err := c.Create(ctx, so); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, c, ns, "sockets", "DiscoveryFailed", "component handler sockets: import wasi:sockets/network@0.2")

	// The good handler was never disturbed, and the agent still answers.
	waitCounts(t, c, ns, "good", 1, 1, 2, 30*time.Second)
}

// componentRig: cluster, controller, a node whose agent hosts the debugEcho
// component (pushed to the registry) with a availability directory seen as
// /tmp, plus extra node args.
func componentRig(t *testing.T, extra ...string) (env *clustertest.Env, c client.Client, ns string, n *nodetest.Node, avail string) {
	t.Helper()
	env = clustertest.Require(t)
	c = akritest.Client(t, env)
	ref := nodetest.PushWasm(t, env, nodetest.WasmFile(t, "debug-echo-component.component.wasm"), "debug-echo-component:v1")
	avail = t.TempDir()
	dir := akritest.ShortDir(t)
	args := append([]string{"--component-handler", "debugEcho=" + ref + ",shared,dir=" + avail + ":/tmp:ro,watch=2s"}, extra...)
	n = akriNode(t, dir, args...)
	akritest.Controller(t, env)
	return env, c, env.Namespace(t), n, avail
}

func setAvailability(t *testing.T, dir, v string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "debug-echo-availability.txt"), []byte(v+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

// waitEvent waits for an Event on the Configuration with reason and a
// message containing want.
func waitEvent(t *testing.T, c client.Client, ns, cfg, reason, want string) {
	t.Helper()
	akritest.Eventually(t, 90*time.Second, fmt.Sprintf("event %s %q on %s", reason, want, cfg), func(ctx context.Context) error {
		var evs corev1.EventList
		if err := c.List(ctx, &evs, client.InNamespace(ns)); err != nil {
			return err
		}
		var seen []string
		for _, e := range evs.Items {
			if e.InvolvedObject.Name == cfg && e.Reason == reason {
				if strings.Contains(e.Message, want) {
					return nil
				}
				seen = append(seen, e.Message)
			}
		}
		return fmt.Errorf("events %q", seen)
	})
}

// TestComponentTenThousandDevices: a component handler returning 10,000
// devices in one list (about 1.3 MB of component values) is served through
// the same pipeline as a gRPC handler's: 10,000 Instances.
func TestComponentTenThousandDevices(t *testing.T) {
	hostile := nodetest.WasmFile(t, "hostile-component.component.wasm")
	env, c, ns, n, _ := componentRig(t, "--component-handler", "hostile="+hostile,
		"--kube-api-qps", "1000", "--kube-api-burst", "2000", "--max-device-plugins", "64")
	many := configuration(ns, "hostile-many", "hostile", nil, 1, broker(t, env))
	many.Spec.DiscoveryHandler.DiscoveryDetails = "many 10000"
	many.Spec.BrokerSpec = nil
	many.Spec.InstanceServiceSpec, many.Spec.ConfigurationServiceSpec = nil, nil
	if err := c.Create(context.Background(), many); err != nil {
		t.Fatal(err)
	}
	// The handler is not shared: names hash the node's (random) name too,
	// and the 3-byte hash collides now and then (as upstream's), so the
	// Instances are the distinct names of the 10,000 devices.
	names := map[string]bool{}
	for i := range 10000 {
		names[akri.InstanceName(many.Name, fmt.Sprintf("dev%05d", i), false, n.Name)] = true
	}
	want := len(names)
	t.Logf("10,000 devices → %d distinct Instance names on node %s", want, n.Name)
	// Listing 10,000 objects is itself heavy on a busy 2-core machine: look
	// every 5 s, and give the agent 10 minutes (TestTenThousandDevices, the
	// same pipeline fed by a gRPC handler, takes about one on a quiet one).
	deadline := time.Now().Add(10 * time.Minute)
	for {
		var list metav1.PartialObjectMetadataList
		list.SetGroupVersionKind(akri.SchemeGroupVersion.WithKind("InstanceList"))
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		err := c.List(ctx, &list, client.InNamespace(ns))
		cancel()
		if err == nil && len(list.Items) == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d instances: not within 10 min: %d instances (%v)", want, len(list.Items), err)
		}
		time.Sleep(5 * time.Second)
	}
}

// inventoryServer is an HTTP inventory on 127.0.0.1 serving
// {"devices":[{"id","properties"}]} at /devices; Set replaces the list.
type inventoryServer struct {
	*httptest.Server
	mu   sync.Mutex
	body []byte
	gets atomic.Int64
}

type inventoryDevice struct {
	ID         string            `json:"id"`
	Properties map[string]string `json:"properties"`
}

func newInventoryServer(t *testing.T, devs ...inventoryDevice) *inventoryServer {
	t.Helper()
	s := &inventoryServer{}
	s.Set(t, devs...)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /devices", func(w http.ResponseWriter, _ *http.Request) {
		s.gets.Add(1)
		s.mu.Lock()
		b := s.body
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(b)
	})
	s.Server = httptest.NewServer(mux) // 127.0.0.1:<free port>
	t.Cleanup(s.Close)
	return s
}

func (s *inventoryServer) Set(t *testing.T, devs ...inventoryDevice) {
	t.Helper()
	b, err := json.Marshal(map[string]any{"devices": append([]inventoryDevice{}, devs...)})
	if err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	s.body = b
	s.mu.Unlock()
}

// waitInventory waits for the Configuration's Instances to carry exactly
// these devices' properties (one Instance per device, matched by the DEVICE_ID
// property every device of the test carries).
func waitInventory(t *testing.T, c client.Client, ns, cfg string, timeout time.Duration, want ...inventoryDevice) {
	t.Helper()
	var ids []string
	for _, d := range want {
		ids = append(ids, d.ID)
	}
	akritest.Eventually(t, timeout, fmt.Sprintf("instances of %s for %v", cfg, ids), func(ctx context.Context) error {
		ins, err := akritest.Instances(ctx, c, ns, cfg)
		if err != nil {
			return err
		}
		got := map[string]map[string]string{}
		for _, in := range ins {
			got[in.Spec.BrokerProperties["DEVICE_ID"]] = in.Spec.BrokerProperties
		}
		if len(got) != len(want) || len(ins) != len(want) {
			return fmt.Errorf("%d instances %v", len(ins), got)
		}
		for _, d := range want {
			for k, v := range d.Properties {
				if got[d.ID][k] != v {
					return fmt.Errorf("device %s: properties %v, want %v", d.ID, got[d.ID], d.Properties)
				}
			}
		}
		return nil
	})
}

// TestComponentHTTPInventory: the http-inventory component (pulled from the
// registry) asks a local HTTP inventory for its devices through the
// world's http import, granted only the inventory's host:port. Its devices
// become Instances with their properties; when the inventory's list
// changes the Instances follow (a device added, one removed) within a
// couple of seconds although the handler's watch deadline is a minute: the
// component's own watch notices the change and returns, the agent does not
// poll. A second handler, the same component granted another host only, is
// refused the inventory: a DiscoveryFailed Event, no Instance.
func TestComponentHTTPInventory(t *testing.T) {
	env := clustertest.Require(t)
	ref := nodetest.PushWasm(t, env, nodetest.WasmFile(t, "http-inventory-component.component.wasm"), "http-inventory-component:v1")
	dev := func(id, model string) inventoryDevice {
		return inventoryDevice{ID: id, Properties: map[string]string{"DEVICE_ID": id, "MODEL": model, "LOCATION": "rack-" + id}}
	}
	inv := newInventoryServer(t, dev("cam-1", "x100"), dev("cam-2", "x200"))
	host := strings.TrimPrefix(inv.URL, "http://")
	url := inv.URL + "/devices"

	_, c, ns, _, _ := componentRig(t,
		"--component-handler", "httpInventory="+ref+",http="+host+",watch=60s",
		"--component-handler", "otherInventory="+ref+",http=inventory.example:8080;127.0.0.1:1,watch=60s")
	ctx := context.Background()

	cfg := configuration(ns, "inventory", "httpInventory", nil, 1, "")
	cfg.Spec.DiscoveryHandler.DiscoveryDetails = "url: " + url + "\n"
	cfg.Spec.BrokerSpec = nil
	cfg.Spec.InstanceServiceSpec, cfg.Spec.ConfigurationServiceSpec = nil, nil
	if err := c.Create(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	waitInventory(t, c, ns, "inventory", 60*time.Second, dev("cam-1", "x100"), dev("cam-2", "x200"))

	// The list changes: cam-3 added, cam-1 removed, cam-2's model changed.
	// The watch deadline is 60 s; the Instances follow well before it.
	before := inv.gets.Load()
	changed := time.Now()
	inv.Set(t, dev("cam-2", "x250"), dev("cam-3", "x300"))
	waitInventory(t, c, ns, "inventory", 15*time.Second, dev("cam-2", "x250"), dev("cam-3", "x300"))
	t.Logf("inventory changed → Instances follow: %v (watch deadline 60 s; the component GET the inventory %d times meanwhile)",
		time.Since(changed).Round(time.Millisecond), inv.gets.Load()-before)
	inv.Set(t, dev("cam-3", "x300"))
	waitInventory(t, c, ns, "inventory", 15*time.Second, dev("cam-3", "x300"))

	// The same component, not granted the inventory's host:port.
	refused := configuration(ns, "inventory-refused", "otherInventory", nil, 1, "")
	refused.Spec.DiscoveryHandler.DiscoveryDetails = "url: " + url + "\n"
	refused.Spec.BrokerSpec = nil
	refused.Spec.InstanceServiceSpec, refused.Spec.ConfigurationServiceSpec = nil, nil
	if err := c.Create(ctx, refused); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, c, ns, "inventory-refused", "DiscoveryFailed", "host "+host+" is not granted to discovery handler otherInventory")
	if ins, err := akritest.Instances(ctx, c, ns, "inventory-refused"); err != nil || len(ins) != 0 {
		t.Fatalf("refused handler: instances %v, %v", instanceNames(ins), err)
	}
	// The granted handler is undisturbed.
	waitInventory(t, c, ns, "inventory", 15*time.Second, dev("cam-3", "x300"))
}
