package controller_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	akriv0 "github.com/wasilet/wasilet/agent/apis/akri/v0"
	"github.com/wasilet/wasilet/deploy"
	"github.com/wasilet/wasilet/internal/clustertest"
	"github.com/wasilet/wasilet/internal/controller"
)

func TestMain(m *testing.M) {
	// controller-runtime complains when its global logger is never set.
	ctrllog.SetLogger(logr.FromSlogHandler(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	clustertest.Main(m)
}

var crds struct {
	once sync.Once
	err  error
}

// e2e is one end-to-end test's world: the shared cluster with the Akri CRDs,
// a namespace of its own and a controller serving only that namespace.
type e2e struct {
	env *clustertest.Env
	ns  string
	c   client.Client
}

func start(t *testing.T, opts controller.Options) *e2e {
	t.Helper()
	env := clustertest.Require(t)
	crds.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		crds.err = deploy.InstallCRDs(ctx, env.Config)
	})
	if crds.err != nil {
		t.Fatal(crds.err)
	}
	ns := env.Namespace(t)

	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	if err := akriv0.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	c, err := client.New(env.Config, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}

	tl := &testLog{t: t}
	t.Cleanup(tl.stop) // runs after the controller has stopped (cleanups run last first)
	opts.Namespaces = []string{ns}
	opts.Logger = slog.New(slog.NewTextHandler(tl, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctl, err := controller.New(env.Config, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ctl.Run(ctx) }()
	select {
	case <-ctl.Ready():
	case err := <-done:
		t.Fatalf("controller: %v", err)
	case <-time.After(time.Minute):
		t.Fatal("controller not ready within a minute")
	}
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("controller: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("controller did not stop within 30 s")
		}
	})
	return &e2e{env: env, ns: ns, c: c}
}

// testLog sends the controller's logs to the test's log until the test ends.
type testLog struct {
	mu   sync.Mutex
	t    *testing.T
	done bool
}

func (l *testLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.done {
		l.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func (l *testLog) stop() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.done = true
}

var _ io.Writer = (*testLog)(nil)

// applyAs does what an agent does: server-side apply of a partial Instance
// as manager, without force.
func (e *e2e) applyAs(ctx context.Context, manager, name, body string) error {
	obj := &akriv0.Instance{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: e.ns}}
	patch := fmt.Sprintf(`{"apiVersion":"akri.sh/v0","kind":"Instance","metadata":{"name":%q,"namespace":%q%s}`, name, e.ns, body)
	return e.c.Patch(ctx, obj, client.RawPatch(types.ApplyPatchType, []byte(patch)), client.FieldOwner(manager))
}

// joinInstance is what node's agent writes for a shared device: the
// Instance with nodes [node] (manager node) and its finalizer (manager
// node-fin).
func (e *e2e) joinInstance(t *testing.T, cfg, name, node string) {
	t.Helper()
	e.applyInstance(t, cfg, name, node)
	if err := e.applyAs(context.Background(), node+"-fin", name, fmt.Sprintf(`,"finalizers":[%q]}}`, node)); err != nil {
		t.Fatalf("finalizer of %s: %v", node, err)
	}
}

func (e *e2e) applyInstance(t *testing.T, cfg, name, node string) {
	t.Helper()
	spec := fmt.Sprintf(`},"spec":{"configurationName":%q,"cdiName":"akri.sh/%s=8120fe","capacity":2,"shared":true,"brokerProperties":{},"deviceUsage":{},"nodes":[%q]}}`, cfg, cfg, node)
	if err := e.applyAs(context.Background(), node, name, spec); err != nil {
		t.Fatalf("apply Instance as %s: %v", node, err)
	}
}

// claim is a device plugin taking a slot: apply of deviceUsage as dp-<node>,
// without force, so that any other owner of the slot is a conflict.
func (e *e2e) claim(ctx context.Context, name, node string, slots map[string]string) error {
	var b strings.Builder
	for k, v := range slots {
		if b.Len() > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, "%q:%q", k, v)
	}
	return e.applyAs(ctx, "dp-"+node, name, `},"spec":{"deviceUsage":{`+b.String()+`}}}`)
}

func (e *e2e) createConfiguration(t *testing.T, name string, services bool) *akriv0.Configuration {
	t.Helper()
	one := resource.MustParse("1")
	cfg := &akriv0.Configuration{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: e.ns},
		Spec: akriv0.ConfigurationSpec{
			DiscoveryHandler: akriv0.DiscoveryHandlerInfo{Name: "debugEcho", DiscoveryDetails: "descriptions: [foo0]"},
			Capacity:         2,
			BrokerSpec: &akriv0.BrokerSpec{BrokerPodSpec: &corev1.PodSpec{
				Containers: []corev1.Container{{
					Name:  "broker",
					Image: "registry.invalid/akri/debug-echo-broker:1",
					Resources: corev1.ResourceRequirements{
						Limits:   corev1.ResourceList{controller.Placeholder: one},
						Requests: corev1.ResourceList{controller.Placeholder: one},
					},
				}},
			}},
		},
	}
	if services {
		ports := []corev1.ServicePort{{Name: "grpc", Port: 6052}}
		cfg.Spec.InstanceServiceSpec = &corev1.ServiceSpec{Ports: ports}
		cfg.Spec.ConfigurationServiceSpec = &corev1.ServiceSpec{Ports: ports}
	}
	if err := e.c.Create(context.Background(), cfg); err != nil {
		t.Fatalf("create Configuration: %v", err)
	}
	return cfg
}

func (e *e2e) pod(ctx context.Context, name string) (*corev1.Pod, error) {
	var p corev1.Pod
	if err := e.c.Get(ctx, types.NamespacedName{Namespace: e.ns, Name: name}, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// setPhase does what the scheduler and kubelet would: set the pod's phase
// through the status subresource.
func (e *e2e) setPhase(t *testing.T, name string, phase corev1.PodPhase) *corev1.Pod {
	t.Helper()
	ctx := context.Background()
	var p *corev1.Pod
	// The scheduler writes the pod's status too (PodScheduled).
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		var err error
		if p, err = e.pod(ctx, name); err != nil {
			return err
		}
		p.Status.Phase = phase
		if phase == corev1.PodRunning {
			now := metav1.Now()
			p.Status.StartTime = &now
		}
		return e.c.Status().Update(ctx, p)
	})
	if err != nil {
		t.Fatalf("set pod %s %s: %v", name, phase, err)
	}
	return p
}

func (e *e2e) serviceExists(ctx context.Context, name string) (*corev1.Service, error) {
	var s corev1.Service
	err := e.c.Get(ctx, types.NamespacedName{Namespace: e.ns, Name: name}, &s)
	if err != nil {
		return nil, err
	}
	return &s, nil
}

func (e *e2e) serviceGone(ctx context.Context, name string) error {
	s, err := e.serviceExists(ctx, name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	return fmt.Errorf("service %s still there (deleting: %v)", name, s.DeletionTimestamp != nil)
}

// logControllerTime logs the time requests of the named controller spent
// queued and being reconciled so far (controller-runtime's metrics).
func logControllerTime(t *testing.T, name string) {
	t.Helper()
	families, err := crmetrics.Registry.Gather()
	if err != nil {
		t.Log(err)
		return
	}
	for _, f := range families {
		var label string
		switch f.GetName() {
		case "controller_runtime_reconcile_time_seconds":
			label = "controller"
		case "workqueue_queue_duration_seconds":
			label = "name"
		default:
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == name {
					h := m.GetHistogram()
					t.Logf("%s{%s}: %d, total %s", f.GetName(), name, h.GetSampleCount(), time.Duration(h.GetSampleSum()*float64(time.Second)))
				}
			}
		}
	}
}

// The broker lifecycle of upstream's e2e (test_core.py) on one Instance: a
// broker Pod as specified, Services while it runs, replacement when it ends
// or is deleted, a broker per node the Instance gains.
func TestE2EBrokers(t *testing.T) {
	e := start(t, controller.DefaultOptions())
	ctx := context.Background()
	node1 := e.ns + "-n1"
	node2 := e.ns + "-n2"
	cfg := e.createConfiguration(t, "akri-debug-echo", true)
	inst := "akri-debug-echo-8120fe"
	pod1 := node1 + "-" + inst + "-pod"

	e.joinInstance(t, cfg.Name, inst, node1)
	var p *corev1.Pod
	clustertest.Eventually(t, 30*time.Second, "broker pod", func() (err error) {
		p, err = e.pod(ctx, pod1)
		return err
	})
	var instance akriv0.Instance
	if err := e.c.Get(ctx, types.NamespacedName{Namespace: e.ns, Name: inst}, &instance); err != nil {
		t.Fatal(err)
	}
	wantLabels := map[string]string{
		"app": pod1, "controller": "akri.sh", "akri.sh/configuration": cfg.Name,
		"akri.sh/instance": inst, "akri.sh/target-node": node1,
	}
	for k, v := range wantLabels {
		if p.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, p.Labels[k], v)
		}
	}
	if ref := metav1.GetControllerOf(p); ref == nil || ref.Kind != "Instance" || ref.UID != instance.UID || ref.BlockOwnerDeletion == nil || !*ref.BlockOwnerDeletion {
		t.Errorf("owner %+v", p.OwnerReferences)
	}
	terms := p.Spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms
	if len(terms) != 1 || len(terms[0].MatchFields) != 1 || terms[0].MatchFields[0].Key != "metadata.name" || terms[0].MatchFields[0].Values[0] != node1 {
		t.Errorf("affinity %+v", terms)
	}
	res := corev1.ResourceName("akri.sh/" + inst)
	lim, req := p.Spec.Containers[0].Resources.Limits[res], p.Spec.Containers[0].Resources.Requests[res]
	if lim.String() != "1" || req.String() != "1" {
		t.Errorf("resources %+v", p.Spec.Containers[0].Resources)
	}

	// No Service while nothing runs; both once the broker runs.
	time.Sleep(time.Second)
	for _, s := range []string{inst + "-svc", cfg.Name + "-svc"} {
		if err := e.serviceGone(ctx, s); err != nil {
			t.Errorf("before any broker runs: %v", err)
		}
	}
	e.setPhase(t, pod1, corev1.PodRunning)
	clustertest.Eventually(t, 30*time.Second, "services of a running broker", func() error {
		is, err := e.serviceExists(ctx, inst+"-svc")
		if err != nil {
			return err
		}
		cs, err := e.serviceExists(ctx, cfg.Name+"-svc")
		if err != nil {
			return err
		}
		if is.Spec.Selector["akri.sh/instance"] != inst || is.Spec.Selector["controller"] != "akri.sh" {
			return fmt.Errorf("instance service selector %v", is.Spec.Selector)
		}
		if cs.Spec.Selector["akri.sh/configuration"] != cfg.Name {
			return fmt.Errorf("configuration service selector %v", cs.Spec.Selector)
		}
		if ref := metav1.GetControllerOf(is); ref == nil || ref.UID != instance.UID {
			return fmt.Errorf("instance service owner %+v", is.OwnerReferences)
		}
		if ref := metav1.GetControllerOf(cs); ref == nil || ref.Kind != "Configuration" || ref.UID != cfg.UID {
			return fmt.Errorf("configuration service owner %+v", cs.OwnerReferences)
		}
		return nil
	})

	// The broker ends: replaced (new uid), and the Services go with it.
	ended := e.setPhase(t, pod1, corev1.PodFailed)
	clustertest.Eventually(t, 30*time.Second, "ended broker replaced", func() error {
		p, err := e.pod(ctx, pod1)
		if err != nil {
			return err
		}
		if p.UID == ended.UID {
			return errors.New("still the ended pod")
		}
		return nil
	})
	clustertest.Eventually(t, 30*time.Second, "services gone with the running broker", func() error {
		return errors.Join(e.serviceGone(ctx, inst+"-svc"), e.serviceGone(ctx, cfg.Name+"-svc"))
	})

	// A deleted broker comes back with a new uid.
	before, err := e.pod(ctx, pod1)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.c.Delete(ctx, before); err != nil {
		t.Fatal(err)
	}
	clustertest.Eventually(t, 30*time.Second, "deleted broker recreated", func() error {
		p, err := e.pod(ctx, pod1)
		if err != nil {
			return err
		}
		if p.UID == before.UID {
			return errors.New("still the deleted pod")
		}
		return nil
	})

	// A second node joins: a broker for it too, timed from the apply to
	// the pod's watch event.
	pod2 := node2 + "-" + inst + "-pod"
	w, err := e.env.Client.CoreV1().Pods(e.ns).Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + pod2})
	if err != nil {
		t.Fatal(err)
	}
	e.applyInstance(t, cfg.Name, inst, node2)
	applied := time.Now()
	select {
	case ev := <-w.ResultChan():
		if ev.Type != watch.Added {
			t.Fatalf("first event of %s: %s", pod2, ev.Type)
		}
		// Also counts the Instance's trip from the API server to the
		// controller and the pod's to this watch.
		t.Logf("broker pod seen %s after the Instance apply returned", time.Since(applied))
		logControllerTime(t, "instance-brokers")
	case <-time.After(30 * time.Second):
		t.Fatalf("no pod %s within 30 s", pod2)
	}
	w.Stop()
	e.joinInstance(t, cfg.Name, inst, node2) // and the agent's finalizer

	// The Instance goes (its agents drop their finalizers): brokers and
	// Services with it.
	e.setPhase(t, pod2, corev1.PodRunning)
	clustertest.Eventually(t, 30*time.Second, "instance service", func() error {
		_, err := e.serviceExists(ctx, inst+"-svc")
		return err
	})
	if err := e.c.Delete(ctx, &instance); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{node1, node2} {
		if err := e.applyAs(ctx, n+"-fin", inst, `,"finalizers":[]}}`); err != nil {
			t.Fatal(err)
		}
	}
	clustertest.Eventually(t, 60*time.Second, "brokers and services of a deleted Instance gone", func() error {
		var pods corev1.PodList
		if err := e.c.List(ctx, &pods, client.InNamespace(e.ns), client.MatchingLabels{"akri.sh/instance": inst}); err != nil {
			return err
		}
		var left []string
		for _, p := range pods.Items {
			left = append(left, p.Name)
		}
		if len(left) > 0 {
			return fmt.Errorf("pods left: %v", left)
		}
		return errors.Join(e.serviceGone(ctx, inst+"-svc"), e.serviceGone(ctx, cfg.Name+"-svc"))
	})
}

// A node that is deleted leaves the Instances: nodes, deviceUsage and its
// finalizer; its broker goes; an Instance left with no node is deleted. The
// freed slot can be claimed by another node's device plugin without force,
// so the controller kept no ownership of it.
func TestE2ENodeDeleted(t *testing.T) {
	e := start(t, controller.DefaultOptions())
	ctx := context.Background()
	node1 := e.ns + "-n1"
	node2 := e.ns + "-n2" // never a Node object: the controller leaves it alone
	cfg := e.createConfiguration(t, "cfg", false)

	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: node1}}
	if err := e.c.Create(ctx, node); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.c.Delete(context.Background(), node) })

	shared, only := "cfg-8120fe", "cfg-d46b65"
	e.joinInstance(t, cfg.Name, shared, node1)
	e.joinInstance(t, cfg.Name, shared, node2)
	e.joinInstance(t, cfg.Name, only, node1)
	if err := e.claim(ctx, shared, node1, map[string]string{shared + "-0": node1}); err != nil {
		t.Fatal(err)
	}
	if err := e.claim(ctx, shared, node2, map[string]string{shared + "-1": node2}); err != nil {
		t.Fatal(err)
	}
	if err := e.claim(ctx, only, node1, map[string]string{only + "-0": "C:cfg-0:" + node1}); err != nil {
		t.Fatal(err)
	}
	pod1 := node1 + "-" + shared + "-pod"
	clustertest.Eventually(t, 30*time.Second, "brokers", func() error {
		for _, n := range []string{pod1, node2 + "-" + shared + "-pod", node1 + "-" + only + "-pod"} {
			if _, err := e.pod(ctx, n); err != nil {
				return err
			}
		}
		return nil
	})

	if err := e.c.Delete(ctx, node); err != nil {
		t.Fatal(err)
	}
	clustertest.Eventually(t, 30*time.Second, "node removed from the shared Instance", func() error {
		var i akriv0.Instance
		if err := e.c.Get(ctx, types.NamespacedName{Namespace: e.ns, Name: shared}, &i); err != nil {
			return err
		}
		if len(i.Spec.Nodes) != 1 || i.Spec.Nodes[0] != node2 {
			return fmt.Errorf("nodes %v", i.Spec.Nodes)
		}
		if v, ok := i.Spec.DeviceUsage[shared+"-0"]; !ok || v != "" {
			return fmt.Errorf("deviceUsage %v", i.Spec.DeviceUsage)
		}
		if i.Spec.DeviceUsage[shared+"-1"] != node2 {
			return fmt.Errorf("deviceUsage %v: another node's slot changed", i.Spec.DeviceUsage)
		}
		if len(i.Finalizers) != 1 || i.Finalizers[0] != node2 {
			return fmt.Errorf("finalizers %v", i.Finalizers)
		}
		for _, mf := range i.ManagedFields {
			if mf.Manager == controller.FieldManager && mf.FieldsV1 != nil && strings.Contains(string(mf.FieldsV1.Raw), "deviceUsage") {
				return fmt.Errorf("the controller still owns slots: %s", mf.FieldsV1.Raw)
			}
		}
		return nil
	})
	clustertest.Eventually(t, 30*time.Second, "Instance left with no node deleted", func() error {
		var i akriv0.Instance
		err := e.c.Get(ctx, types.NamespacedName{Namespace: e.ns, Name: only}, &i)
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		return fmt.Errorf("still there: nodes %v, finalizers %v, deleting %v", i.Spec.Nodes, i.Finalizers, i.DeletionTimestamp != nil)
	})
	clustertest.Eventually(t, 30*time.Second, "brokers of the deleted node gone", func() error {
		for _, n := range []string{pod1, node1 + "-" + only + "-pod"} {
			if _, err := e.pod(ctx, n); !apierrors.IsNotFound(err) {
				return fmt.Errorf("pod %s: %v", n, err)
			}
		}
		_, err := e.pod(ctx, node2+"-"+shared+"-pod")
		return err
	})
	// The freed slot is free for everyone: no conflict without force.
	if err := e.claim(ctx, shared, node2, map[string]string{shared + "-0": node2, shared + "-1": node2}); err != nil {
		t.Errorf("claim the freed slot: %v", err)
	}
}

// A broker Pending longer than the timeout is replaced, with an event.
func TestE2EPendingTimeout(t *testing.T) {
	opts := controller.DefaultOptions()
	opts.PendingTimeout = 2 * time.Second
	e := start(t, opts)
	ctx := context.Background()
	node := e.ns + "-n1"
	cfg := e.createConfiguration(t, "cfg", false)
	inst := "cfg-8120fe"
	e.joinInstance(t, cfg.Name, inst, node)
	name := node + "-" + inst + "-pod"
	var first types.UID
	clustertest.Eventually(t, 30*time.Second, "broker", func() error {
		p, err := e.pod(ctx, name)
		if err == nil {
			first = p.UID
		}
		return err
	})
	clustertest.Eventually(t, 60*time.Second, "pending broker replaced", func() error {
		p, err := e.pod(ctx, name)
		if err != nil {
			return err
		}
		if p.UID == first {
			return errors.New("same pod")
		}
		return nil
	})
	clustertest.Eventually(t, 30*time.Second, "event on the Instance", func() error {
		evs, err := e.env.Client.EventsV1().Events(e.ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		for _, ev := range evs.Items {
			if ev.Reason == "BrokerPendingTimeout" && ev.Regarding.Kind == "Instance" && ev.Regarding.Name == inst {
				return nil
			}
		}
		return fmt.Errorf("no BrokerPendingTimeout event among %d", len(evs.Items))
	})
}
