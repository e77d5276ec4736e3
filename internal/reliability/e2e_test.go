package reliability_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	podresourcesv1 "k8s.io/kubelet/pkg/apis/podresources/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	akri "github.com/wasilet/wasilet/agent/apis/akri/v0"
	"github.com/wasilet/wasilet/internal/akritest"
	"github.com/wasilet/wasilet/internal/cluster"
	"github.com/wasilet/wasilet/internal/clustertest"
	"github.com/wasilet/wasilet/internal/nodetest"
	"github.com/wasilet/wasilet/internal/reliability"
)

func TestMain(m *testing.M) { nodetest.Main(m) }

// TestKillNodeWith100Pods: `kill -9` of a node running 100 pods, ten of them
// Akri brokers (`wasilet controller`) holding devices of the node's
// in-process agent. After the restart every pod runs again with exactly one
// restart, the device allocations are the same (PodResources), the brokers
// are the same ten pods (none recreated, none added), no pod runs twice, and
// the node holds no more open files than before the kill.
func TestKillNodeWith100Pods(t *testing.T) {
	const pods, withDevice = 100, 10
	env := clustertest.Require(t)
	c := akritest.Client(t, env)
	dir := akritest.ShortDir(t)
	n := nodetest.Start(t, nodetest.Options{Args: []string{"--discovery-handlers-directory", dir}})
	akritest.StartDebugEcho(t, dir, "debugEcho", true)
	akritest.Controller(t, env)
	ref := nodetest.PushWasm(t, env, nodetest.WasmFile(t, "testprog.wasm"), "testprog:kill9")
	ns := env.Namespace(t)
	ctx := context.Background()

	details := "descriptions:\n"
	for i := range withDevice {
		details += fmt.Sprintf("- dev%d\n", i)
	}
	brokerSpec := akritest.WasmPodSpec(ref, corev1.ResourceList{"{{PLACEHOLDER}}": resource.MustParse("1")}, "echo", "up", ";", "sleep", "1h")
	cfg := &akri.Configuration{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "kill"},
		Spec: akri.ConfigurationSpec{
			DiscoveryHandler: akri.DiscoveryHandlerInfo{Name: "debugEcho", DiscoveryDetails: details},
			Capacity:         1,
			BrokerSpec:       &akri.BrokerSpec{BrokerPodSpec: &brokerSpec},
		},
	}
	if err := c.Create(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	res := corev1.ResourceName("akri.sh/" + cfg.Name)
	// Each device's own resource, by capacity: brokers take the slots as
	// soon as they are scheduled (and with them the Configuration's).
	clustertest.Eventually(t, time.Minute, fmt.Sprintf("%d device resources %s-*", withDevice, res), func() error {
		found := 0
		for r, q := range n.Object(t).Status.Capacity {
			if strings.HasPrefix(string(r), string(res)+"-") && q.Value() == 1 {
				found++
			}
		}
		if found != withDevice {
			return fmt.Errorf("%d of them", found)
		}
		return nil
	})

	start := time.Now()
	for i := range pods - withDevice {
		n.CreatePod(t, n.Pod(ns, fmt.Sprintf("p%03d", i), ref, func(p *corev1.Pod) {
			p.Spec.Containers[0].Args = []string{"echo", "up", ";", "sleep", "1h"}
		}))
	}
	brokerUIDs := func() map[string]string {
		list, err := env.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "akri.sh/configuration=" + cfg.Name})
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		for _, p := range list.Items {
			out[p.Name] = string(p.UID)
		}
		return out
	}
	// Pod times have whole seconds.
	running := func(after time.Time, restarts int32) error {
		since := metav1.NewTime(after.Truncate(time.Second))
		list, err := env.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		ok := 0
		var off []string
		for _, p := range list.Items {
			if len(p.Status.ContainerStatuses) == 1 {
				cs := p.Status.ContainerStatuses[0]
				if p.Status.Phase == corev1.PodRunning && cs.State.Running != nil && !cs.State.Running.StartedAt.Before(&since) && cs.RestartCount == restarts {
					ok++
					continue
				}
				if len(off) < 5 {
					off = append(off, fmt.Sprintf("%s: %s restarts %d state %+v last %+v", p.Name, p.Status.Phase, cs.RestartCount, cs.State, cs.LastTerminationState))
				}
			} else if len(off) < 5 {
				off = append(off, fmt.Sprintf("%s: %s %s %s", p.Name, p.Status.Phase, p.Status.Reason, p.Status.Message))
			}
		}
		if ok != pods {
			return fmt.Errorf("%d of %d pods running with %d restarts since %s; e.g. %s", ok, pods, restarts, since.Format(time.TimeOnly), strings.Join(off, "; "))
		}
		return nil
	}
	clustertest.Eventually(t, 3*time.Minute, "all pods running (brokers included)", func() error { return running(start.Add(-time.Second), 0) })
	firstStart := time.Since(start)
	brokersBefore := brokerUIDs()
	if len(brokersBefore) != withDevice {
		t.Fatalf("%d brokers, want %d: %v", len(brokersBefore), withDevice, brokersBefore)
	}
	before := allocations(t, n)
	if got := countDevices(before); got != withDevice {
		t.Fatalf("%d devices allocated before the kill, want %d: %v", got, withDevice, before)
	}
	fdsBefore := nodetest.OpenFiles(n.Pid())

	n.Kill(t)
	restarted := time.Now()
	n.Restart(t)
	ready := time.Since(restarted)
	clustertest.Eventually(t, 3*time.Minute, "all pods running again with one restart", func() error {
		return running(restarted, 1)
	})
	allRunning := time.Since(restarted)
	if b := brokerUIDs(); fmt.Sprint(b) != fmt.Sprint(brokersBefore) {
		t.Errorf("brokers changed across the kill:\nbefore %v\nafter  %v", brokersBefore, b)
	}
	after := allocations(t, n)
	if fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("allocations changed across the kill:\nbefore %v\nafter  %v", before, after)
	}
	// No pod runs twice: each logs "up" once per run, so the current log
	// of every pod is exactly one line.
	list, err := env.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range list.Items {
		name := p.Name
		raw, err := env.Client.CoreV1().Pods(ns).GetLogs(name, &corev1.PodLogOptions{}).DoRaw(ctx)
		if err != nil {
			t.Fatalf("logs of %s: %v", name, err)
		}
		if string(raw) != "up\n" {
			t.Errorf("pod %s logged %q since the restart, want one run", name, raw)
		}
	}
	// Let the restarted node settle, then compare its open files.
	time.Sleep(2 * time.Second)
	fdsAfter := nodetest.OpenFiles(n.Pid())
	if fdsAfter > fdsBefore+fdsBefore/2 {
		t.Errorf("open files %d after the restart, %d before the kill", fdsAfter, fdsBefore)
	}
	reliability.Record(t, reliability.Entry{
		Fault: fmt.Sprintf("SIGKILL of the node process running %d pods (%d of them Akri brokers holding a device of its in-process agent), then a restart on the same data directory", pods, withDevice),
		Kept: []string{
			fmt.Sprintf("all %d pods Running again, each with restartCount 1", pods),
			"device allocations identical before and after (PodResources List)",
			fmt.Sprintf("the same %d broker pods (UIDs) before and after: none recreated, none added", withDevice),
			"no pod running twice (one run's log per pod)",
			fmt.Sprintf("open files of the node: %d before the kill, %d after", fdsBefore, fdsAfter),
		},
		Figures: []reliability.Figure{
			{Name: "first start of all pods", Value: firstStart.Round(time.Millisecond).String()},
			{Name: "restart → node Ready", Value: ready.Round(time.Millisecond).String()},
			reliability.Duration("restart → all pods Running again", allRunning, 10*time.Second),
		},
	})
}

// allocations lists the node's device allocations from PodResources:
// "pod/container" → sorted "resource=id" entries.
func allocations(t *testing.T, n *nodetest.Node) map[string][]string {
	t.Helper()
	sock := filepath.Join(n.DataDir, "pod-resources", "kubelet.sock")
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := podresourcesv1.NewPodResourcesListerClient(conn).List(ctx, &podresourcesv1.ListPodResourcesRequest{})
	if err != nil {
		t.Fatalf("PodResources List: %v", err)
	}
	out := map[string][]string{}
	for _, p := range resp.GetPodResources() {
		for _, c := range p.GetContainers() {
			var devs []string
			for _, d := range c.GetDevices() {
				for _, id := range d.GetDeviceIds() {
					devs = append(devs, d.GetResourceName()+"="+id)
				}
			}
			if len(devs) > 0 {
				slices.Sort(devs)
				out[p.GetName()+"/"+c.GetName()] = devs
			}
		}
	}
	return out
}

func countDevices(m map[string][]string) int {
	n := 0
	for _, d := range m {
		n += len(d)
	}
	return n
}

// TestRegistryOutage: the registry is killed; a pod whose image the node has
// not pulled shows ErrImagePull/ImagePullBackOff with the cause within
// seconds; the registry comes back and the pod runs (the node watches an
// unreachable registry instead of waiting out its back-off); pods already
// running never notice.
func TestRegistryOutage(t *testing.T) {
	env := clustertest.Require(t)
	n := nodetest.Start(t, nodetest.Options{})
	ns := env.Namespace(t)
	ctx := context.Background()
	cached := nodetest.PushWasm(t, env, nodetest.WasmFile(t, "testprog.wasm"), "testprog:cached")
	fresh := nodetest.PushWasm(t, env, nodetest.WasmFile(t, "testprog.component.wasm"), "testprog:outage")
	n.CreatePod(t, n.Pod(ns, "before", cached, func(p *corev1.Pod) { p.Spec.Containers[0].Args = []string{"sleep", "1h"} }))
	n.WaitPodPhase(t, ns, "before", corev1.PodRunning, 2*time.Minute)

	kill(t, env, cluster.RegistryComponent)
	clustertest.Eventually(t, 30*time.Second, "registry down", func() error {
		if c, err := net.DialTimeout("tcp", env.RegistryAddr, time.Second); err == nil {
			c.Close()
			return fmt.Errorf("still listening")
		}
		return nil
	})
	created := time.Now()
	n.CreatePod(t, n.Pod(ns, "during", fresh, func(p *corev1.Pod) {
		p.Spec.RestartPolicy = corev1.RestartPolicyNever
		p.Spec.Containers[0].Args = []string{"echo", "pulled"}
	}))
	var reason string
	n.WaitPod(t, ns, "during", time.Minute, "ErrImagePull or ImagePullBackOff with the cause", func(p *corev1.Pod) (bool, error) {
		for _, cs := range p.Status.ContainerStatuses {
			if w := cs.State.Waiting; w != nil && (w.Reason == "ErrImagePull" || w.Reason == "ImagePullBackOff") {
				if !strings.Contains(w.Message, env.RegistryAddr) || !strings.Contains(w.Message, "connection refused") {
					return false, fmt.Errorf("%s without the cause: %q", w.Reason, w.Message)
				}
				reason = w.Reason + ": " + w.Message
				return true, nil
			}
		}
		return false, nil
	})
	toReason := time.Since(created)
	// Stay down long enough for the back-off to grow past 10 s.
	time.Sleep(25 * time.Second)

	back := time.Now() // the registry's restart begins
	restart(t, env, cluster.RegistryComponent)
	n.WaitPod(t, ns, "during", 2*time.Minute, "pulled and run once the registry is back", func(p *corev1.Pod) (bool, error) {
		return p.Status.Phase == corev1.PodSucceeded, nil
	})
	toRun := time.Since(back)
	p, err := env.Client.CoreV1().Pods(ns).Get(ctx, "before", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if cs := p.Status.ContainerStatuses[0]; cs.RestartCount != 0 || cs.State.Running == nil {
		t.Errorf("the running pod noticed the outage: %+v", cs)
	}
	reliability.Record(t, reliability.Entry{
		Fault: "SIGKILL of the registry for about 30 s while a pod needs an image the node has not pulled; then a restart",
		Kept: []string{
			"the pod shows " + reason,
			"a pod already running keeps running (restartCount 0)",
			"the pod pulls and runs once the registry is back",
		},
		Figures: []reliability.Figure{
			reliability.Duration("pod created → pull error with the cause", toReason, 5*time.Second),
			reliability.Duration("registry restarted → pod pulled and run", toRun, 10*time.Second),
		},
	})
}

// kill sends SIGKILL to a component of the local cluster.
func kill(t *testing.T, env *clustertest.Env, component string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(env.StateDir, "run", component+".pid"))
	if err != nil {
		t.Fatalf("%s pid: %v", component, err)
	}
	pid, err := strconv.Atoi(strings.Fields(string(b))[0])
	if err != nil {
		t.Fatalf("%s pid file %q: %v", component, b, err)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill %s: %v", component, err)
	}
	// Wait until it is gone (or a zombie): restarting it before would find
	// it still "running" and start nothing.
	clustertest.Eventually(t, 10*time.Second, component+" gone", func() error {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return nil
		}
		if i := strings.LastIndexByte(string(b), ')'); i >= 0 && len(b) > i+2 && (b[i+2] == 'Z' || b[i+2] == 'X') {
			return nil
		}
		return fmt.Errorf("pid %d still running", pid)
	})
}

// restart starts a killed component of the local cluster again, alone.
func restart(t *testing.T, env *clustertest.Env, component string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := cluster.StartComponent(ctx, env.StateDir, component, os.Getenv(clustertest.StateEnv) == ""); err != nil {
		t.Fatalf("restart %s: %v", component, err)
	}
}

// TestComponentsKilled: with a broker of the reference kind running on a
// wasilet node (in-process agent, `wasilet controller`, the native debugEcho
// handler), each of etcd, kube-apiserver, kube-controller-manager,
// kube-scheduler, the registry, the controller and the discovery handler is
// killed with SIGKILL and restarted in turn. After each: the node is Ready,
// a new pod is scheduled and runs, the broker is the same pod (not
// recreated), and its Instance is the same object.
func TestComponentsKilled(t *testing.T) {
	env := clustertest.Require(t)
	c := akritest.Client(t, env)
	dir := akritest.ShortDir(t)
	n := nodetest.Start(t, nodetest.Options{Args: []string{"--discovery-handlers-directory", dir}})
	ctrl := akritest.Controller(t, env)
	h := akritest.StartDebugEcho(t, dir, "debugEcho", true)
	ref := nodetest.PushWasm(t, env, nodetest.WasmFile(t, "testprog.wasm"), "testprog:components")
	ns := env.Namespace(t)
	ctx := context.Background()

	spec := akritest.WasmPodSpec(ref, corev1.ResourceList{"{{PLACEHOLDER}}": resource.MustParse("1")}, "sleep", "1h")
	cfg := &akri.Configuration{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "survive"},
		Spec: akri.ConfigurationSpec{
			DiscoveryHandler: akri.DiscoveryHandlerInfo{Name: "debugEcho", DiscoveryDetails: "descriptions:\n- foo0\n"},
			Capacity:         1,
			BrokerSpec:       &akri.BrokerSpec{BrokerPodSpec: &spec},
		},
	}
	if err := c.Create(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	broker := n.Name + "-" + cfg.Name + "-8120fe-pod"
	n.WaitPodPhase(t, ns, broker, corev1.PodRunning, 2*time.Minute)
	first, err := env.Client.CoreV1().Pods(ns).Get(ctx, broker, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var inst akri.Instance
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: cfg.Name + "-8120fe"}, &inst); err != nil {
		t.Fatal(err)
	}

	others := map[string]func(){
		"akri controller":   func() { ctrl.Kill(); ctrl.Restart(t) },
		"discovery handler": func() { h.Kill(); h.Restart(t) },
	}
	var figures []reliability.Figure
	var kept []string
	for i, comp := range []string{cluster.EtcdComponent, cluster.APIServerComponent, cluster.ControllerManagerComponent,
		cluster.SchedulerComponent, cluster.RegistryComponent, "akri controller", "discovery handler"} {
		if r, ok := others[comp]; ok {
			r()
		} else {
			kill(t, env, comp)
			time.Sleep(2 * time.Second) // down for a moment: the node's requests fail
			restart(t, env, comp)
		}
		back := time.Now()
		t.Logf("%s back at %s", comp, back.Format(time.TimeOnly))
		// A new pod through the whole path: API, scheduler, node.
		name := fmt.Sprintf("after-%d", i)
		clustertest.Eventually(t, 2*time.Minute, "pod created after "+comp+" returned", func() error {
			_, err := env.Client.CoreV1().Pods(ns).Create(ctx, n.Pod(ns, name, ref, func(p *corev1.Pod) {
				p.Spec.NodeSelector = map[string]string{"kubernetes.io/hostname": n.Name}
				p.Spec.Containers[0].Args = []string{"sleep", "1h"}
			}), metav1.CreateOptions{})
			return err
		})
		n.WaitPodPhase(t, ns, name, corev1.PodRunning, 2*time.Minute)
		toPod := time.Since(back)
		if toPod > 10*time.Second {
			// Say where the time went: the pod's events and the node's state.
			evs, _ := env.Client.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=" + name})
			for _, e := range evs.Items {
				t.Logf("after %s: event %s %s %s: %s", comp, e.LastTimestamp.Format(time.TimeOnly), e.Type, e.Reason, e.Message)
			}
			no := n.Object(t)
			t.Logf("after %s: node taints %v conditions %v", comp, no.Spec.Taints, no.Status.Conditions)
		}
		n.WaitReady(t, time.Minute)
		got, err := env.Client.CoreV1().Pods(ns).Get(ctx, broker, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("after %s: broker: %v", comp, err)
		}
		if got.UID != first.UID || got.Status.Phase != corev1.PodRunning || got.Status.ContainerStatuses[0].RestartCount != 0 {
			t.Errorf("after %s: the broker was disturbed: uid %s (first %s), phase %s, restarts %d", comp, got.UID, first.UID, got.Status.Phase, got.Status.ContainerStatuses[0].RestartCount)
		}
		var now akri.Instance
		if err := c.Get(ctx, client.ObjectKeyFromObject(&inst), &now); err != nil || now.UID != inst.UID {
			t.Errorf("after %s: Instance %s: %v (uid %s, first %s)", comp, inst.Name, err, now.UID, inst.UID)
		}
		figures = append(figures, reliability.Duration(comp+" back → new pod Running", toPod, 10*time.Second))
		kept = append(kept, comp+": node Ready, broker and Instance untouched, a new pod runs")
	}
	reliability.Record(t, reliability.Entry{
		Fault: "SIGKILL, one after the other, of etcd, kube-apiserver, kube-controller-manager, kube-scheduler, the registry, `wasilet controller` and the discovery handler, each restarted at once, with an Akri broker running",
		Kept:  kept, Figures: figures,
	})
}

// TestHostileGuests runs, on one node, guests that recurse without end,
// allocate 4 GiB under a 128 MiB limit, flood stdout, open files without
// end, spin past a 1 s activeDeadlineSeconds and write the text the node
// once used for "image changed" as their termination message. Each ends the
// way the kubelet would report it (or is held to its bound), the node keeps
// its open files and disk in check, and other pods still start: their start
// latency is measured before and during.
func TestHostileGuests(t *testing.T) {
	env := clustertest.Require(t)
	n := nodetest.Start(t, nodetest.Options{})
	ref := nodetest.PushWasm(t, env, nodetest.WasmFile(t, "testprog.wasm"), "testprog:hostile")
	ns := env.Namespace(t)
	ctx := context.Background()
	pods := env.Client.CoreV1().Pods(ns)

	probe := func(round string, k int) []time.Duration {
		var out []time.Duration
		for i := range k {
			name := fmt.Sprintf("probe-%s-%d", round, i)
			start := time.Now()
			n.CreatePod(t, n.Pod(ns, name, ref, func(p *corev1.Pod) { p.Spec.Containers[0].Args = []string{"sleep", "1h"} }))
			clustertest.Eventually(t, time.Minute, name+" running", func() error {
				p, err := pods.Get(ctx, name, metav1.GetOptions{})
				if err != nil {
					return err
				}
				if p.Status.Phase != corev1.PodRunning {
					return fmt.Errorf("phase %s", p.Status.Phase)
				}
				return nil
			})
			out = append(out, time.Since(start))
			_ = pods.Delete(ctx, name, metav1.DeleteOptions{})
		}
		return out
	}
	before := probe("before", 5)
	fdsBefore := nodetest.OpenFiles(n.Pid())

	hostile := map[string]func(*corev1.Pod){
		"recurse": func(p *corev1.Pod) {
			p.Spec.RestartPolicy = corev1.RestartPolicyNever
			p.Spec.Containers[0].Args = []string{"recurse"}
		},
		"alloc": func(p *corev1.Pod) {
			p.Spec.RestartPolicy = corev1.RestartPolicyNever
			p.Spec.Containers[0].Args = []string{"alloc", "4G"}
			p.Spec.Containers[0].Resources.Limits = corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("128Mi")}
		},
		"flood": func(p *corev1.Pod) { p.Spec.Containers[0].Args = []string{"flood"} },
		"files": func(p *corev1.Pod) {
			p.Spec.RestartPolicy = corev1.RestartPolicyNever
			p.Spec.Containers[0].Args = []string{"open-files", "30000", "/data"}
			p.Spec.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
			p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}
		},
		"spin": func(p *corev1.Pod) {
			p.Spec.RestartPolicy = corev1.RestartPolicyNever
			p.Spec.ActiveDeadlineSeconds = ptrTo[int64](1)
			p.Spec.Containers[0].Args = []string{"spin"}
		},
		"liar": func(p *corev1.Pod) {
			p.Spec.Containers[0].Args = []string{"fail", "container image changed"}
		},
	}
	started := time.Now()
	for name, mut := range hostile {
		n.CreatePod(t, n.Pod(ns, name, ref, mut))
	}
	during := probe("during", 5)

	terminated := func(name string) *corev1.ContainerStateTerminated {
		var term *corev1.ContainerStateTerminated
		n.WaitPod(t, ns, name, 2*time.Minute, "terminated", func(p *corev1.Pod) (bool, error) {
			if len(p.Status.ContainerStatuses) == 1 {
				term = p.Status.ContainerStatuses[0].State.Terminated
			}
			return term != nil, nil
		})
		return term
	}
	var kept []string
	if term := terminated("recurse"); term.ExitCode != 134 || !strings.Contains(term.Message, "call stack exhausted") {
		t.Errorf("recurse: %+v", term)
	} else {
		kept = append(kept, fmt.Sprintf("unbounded recursion: a trap, exit %d, %q", term.ExitCode, firstLine(term.Message)))
	}
	if term := terminated("alloc"); term.Reason != "OOMKilled" || term.ExitCode != 137 {
		t.Errorf("alloc: %+v", term)
	} else {
		kept = append(kept, "4 GiB allocation under a 128 MiB limit: OOMKilled, exit 137")
	}
	if term := terminated("files"); term.Reason != "TooManyOpenFiles" {
		t.Errorf("files: %+v", term)
	} else {
		kept = append(kept, "30,000 files opened: stopped with reason TooManyOpenFiles: "+term.Message)
	}
	n.WaitPod(t, ns, "spin", time.Minute, "DeadlineExceeded", func(p *corev1.Pod) (bool, error) {
		return p.Status.Phase == corev1.PodFailed && p.Status.Reason == "DeadlineExceeded", nil
	})
	kept = append(kept, "a guest spinning forever with activeDeadlineSeconds 1: Failed, DeadlineExceeded")

	// Let the flood and the liar run a while.
	time.Sleep(time.Until(started.Add(30 * time.Second)))
	flood, err := pods.Get(ctx, "flood", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	logBytes := dirSize(filepath.Join(n.DataDir, "pods", string(flood.UID)))
	const logBound = 5*10<<20 + 16<<20 // five 10 MiB files, and the one being written past its limit
	if logBytes > logBound {
		t.Errorf("flooding pod's directory holds %d MiB, over the rotation bound", logBytes>>20)
	} else {
		kept = append(kept, fmt.Sprintf("stdout flood for 30 s: its logs hold %d MiB on disk (rotation: 5 files of 10 MiB)", logBytes>>20))
	}
	liar, err := pods.Get(ctx, "liar", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if r := liar.Status.ContainerStatuses[0].RestartCount; r > 4 {
		t.Errorf("a guest claiming \"container image changed\" restarted %d times in 30 s: no back-off", r)
	} else {
		kept = append(kept, fmt.Sprintf("a guest writing \"container image changed\" as its termination message: %d restarts in 30 s (back-off kept)", r))
	}
	fdsAfter := nodetest.OpenFiles(n.Pid())
	if fdsAfter > fdsBefore+200 {
		t.Errorf("the node holds %d open files, %d before the hostile guests", fdsAfter, fdsBefore)
	} else {
		kept = append(kept, fmt.Sprintf("node open files %d before, %d after", fdsBefore, fdsAfter))
	}
	if !n.Running() {
		t.Fatal("the node exited")
	}
	med := func(ds []time.Duration) time.Duration { return akritest.Percentile(ds, 50) }
	reliability.Record(t, reliability.Entry{
		Fault: "hostile guests on one node: unbounded recursion, a 4 GiB allocation under a 128 MiB limit, a stdout flood, 30,000 open files, a spin past activeDeadlineSeconds 1, a termination message faking \"image changed\"",
		Kept:  kept,
		Figures: []reliability.Figure{
			{Name: "other pods' create → Running, before (median of 5)", Value: med(before).Round(time.Millisecond).String()},
			{Name: "other pods' create → Running, during (median of 5)", Value: med(during).Round(time.Millisecond).String()},
		},
	})
}

func ptrTo[T any](v T) *T { return &v }

func firstLine(s string) string {
	l, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return l
}

// dirSize is the bytes of the regular files under dir.
func dirSize(dir string) int64 {
	var total int64
	_ = filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				total += fi.Size()
			}
		}
		return nil
	})
	return total
}

// TestCertificateRotation: the controller-manager signs 3-minute
// certificates; a node bootstrapped with them rotates its client and its
// serving certificate while a pod runs, and requests to its kubelet API and
// its own requests to the API server (status, lease) never fail meanwhile.
func TestCertificateRotation(t *testing.T) {
	env := clustertest.Require(t)
	ctx := context.Background()
	const lifetime = 3 * time.Minute
	setSigning := func(d time.Duration) {
		t.Helper()
		kill(t, env, cluster.ControllerManagerComponent)
		if err := cluster.SetSigningDuration(env.StateDir, d); err != nil {
			t.Fatal(err)
		}
		restart(t, env, cluster.ControllerManagerComponent)
	}
	setSigning(lifetime)
	t.Cleanup(func() { setSigning(0) })

	n := nodetest.Start(t, nodetest.Options{})
	ref := nodetest.PushWasm(t, env, nodetest.WasmFile(t, "testprog.wasm"), "testprog:rotation")
	ns := env.Namespace(t)
	n.CreatePod(t, n.Pod(ns, "ticker", ref, func(p *corev1.Pod) { p.Spec.Containers[0].Args = []string{"tick", "1s"} }))
	n.WaitPodPhase(t, ns, "ticker", corev1.PodRunning, 2*time.Minute)

	// Approve the node's serving CSRs as they come (no controller does).
	actx, stopApprover := context.WithCancel(ctx)
	defer stopApprover()
	go func() {
		for actx.Err() == nil {
			list, err := env.Client.CertificatesV1().CertificateSigningRequests().List(actx, metav1.ListOptions{})
			if err == nil {
				for _, csr := range list.Items {
					if csr.Spec.Username == "system:node:"+n.Name && csr.Spec.SignerName == "kubernetes.io/kubelet-serving" && len(csr.Status.Conditions) == 0 {
						_, _ = env.Kubectl(actx, "certificate", "approve", csr.Name)
					}
				}
			}
			time.Sleep(500 * time.Millisecond)
		}
	}()

	serial := func() string {
		conn, err := tls.Dial("tcp", n.Addr, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // reading the certificate is the point
		if err != nil {
			return "dial: " + err.Error()
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].SerialNumber.String()
	}
	clientCerts := func() int {
		m, _ := filepath.Glob(filepath.Join(n.DataDir, "pki", "kubelet-client-2*.pem"))
		return len(m)
	}
	firstServing, firstClients := serial(), clientCerts()
	var requests, failures int
	var lastErr string
	deadline := time.Now().Add(lifetime + 3*time.Minute)
	for {
		resp, err := n.Get(ctx, "/containerLogs/"+ns+"/ticker/main?tailLines=1")
		requests++
		if err != nil {
			failures++
			lastErr = err.Error()
		} else {
			if resp.StatusCode != http.StatusOK {
				failures++
				lastErr = resp.Status
			}
			resp.Body.Close()
		}
		if serial() != firstServing && clientCerts() > firstClients {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no rotation within %s: serving %s → %s, client certificates %d → %d", lifetime+3*time.Minute, firstServing, serial(), firstClients, clientCerts())
		}
		time.Sleep(200 * time.Millisecond)
	}
	if failures > 0 {
		t.Errorf("%d of %d kubelet API requests failed across the rotation (last: %s)", failures, requests, lastErr)
	}
	// The node kept talking to the API server with its new client
	// certificate: it is Ready and the pod still runs, never restarted.
	n.WaitReady(t, time.Minute)
	p, err := env.Client.CoreV1().Pods(ns).Get(ctx, "ticker", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if cs := p.Status.ContainerStatuses[0]; cs.State.Running == nil || cs.RestartCount != 0 {
		t.Errorf("the pod was disturbed: %+v", cs)
	}
	reliability.Record(t, reliability.Entry{
		Fault: fmt.Sprintf("the controller-manager signs %s certificates; the node rotates its client and serving certificates while a pod runs", lifetime),
		Kept: []string{
			fmt.Sprintf("serving certificate rotated (serial %s → %s) and client certificate rotated (%d → %d files)", firstServing, serial(), firstClients, clientCerts()),
			fmt.Sprintf("%d of %d kubelet API requests (every 200 ms) failed", failures, requests),
			"the node stayed Ready; the pod kept running with restartCount 0",
		},
	})
}

// TestDeviceManagerSocketRemoved: someone removes the node's device-plugin
// registration socket (kubelet.sock). The node says so — Ready False naming
// the device manager — serves the socket again and is Ready once more; the
// Akri agent's plugin registers again and its device is allocatable again.
func TestDeviceManagerSocketRemoved(t *testing.T) {
	env := clustertest.Require(t)
	c := akritest.Client(t, env)
	dir := akritest.ShortDir(t)
	n := nodetest.Start(t, nodetest.Options{Args: []string{"--discovery-handlers-directory", dir}})
	akritest.StartDebugEcho(t, dir, "debugEcho", true)
	ns := env.Namespace(t)
	ctx := context.Background()
	cfg := &akri.Configuration{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "sock"},
		Spec: akri.ConfigurationSpec{
			DiscoveryHandler: akri.DiscoveryHandlerInfo{Name: "debugEcho", DiscoveryDetails: "descriptions:\n- foo0\n"},
			Capacity:         1,
		},
	}
	if err := c.Create(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	res := corev1.ResourceName("akri.sh/" + cfg.Name + "-8120fe")
	allocatable := func() error {
		if q := n.Object(t).Status.Allocatable[res]; q.Value() != 1 {
			return fmt.Errorf("%s = %s", res, q.String())
		}
		return nil
	}
	clustertest.Eventually(t, time.Minute, "device allocatable", allocatable)

	sock := filepath.Join(n.DataDir, "device-plugins", "kubelet.sock")
	if err := os.Remove(sock); err != nil {
		t.Fatal(err)
	}
	removed := time.Now()
	var message string
	ready := func() corev1.NodeCondition { return readyCondition(t, n) }
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if r := ready(); r.Status == corev1.ConditionFalse {
			message = r.Message
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Ready never went False after kubelet.sock was removed")
		}
	}
	toFalse := time.Since(removed)
	if !strings.Contains(message, "device manager") || !strings.Contains(message, "kubelet.sock") {
		t.Errorf("Ready False without the cause: %q", message)
	}
	clustertest.Eventually(t, 30*time.Second, "Ready again", func() error {
		if r := ready(); r.Status != corev1.ConditionTrue {
			return fmt.Errorf("Ready %s %q", r.Status, r.Message)
		}
		return nil
	})
	toTrue := time.Since(removed)
	if _, err := os.Stat(sock); err != nil {
		t.Fatalf("kubelet.sock not served again: %v", err)
	}
	clustertest.Eventually(t, time.Minute, "device allocatable again", allocatable)
	toDevice := time.Since(removed)
	reliability.Record(t, reliability.Entry{
		Fault: "the node's device-plugin registration socket (device-plugins/kubelet.sock) removed from under it",
		Kept: []string{
			"Ready False: " + message,
			"the socket served again and Ready True",
			"the Akri agent's plugin registered again: the device is allocatable again",
		},
		Figures: []reliability.Figure{
			reliability.Duration("socket removed → Ready False", toFalse, 10*time.Second),
			reliability.Duration("socket removed → Ready True again", toTrue, 10*time.Second),
			reliability.Duration("socket removed → device allocatable again", toDevice, 10*time.Second),
		},
	})
}

// TestRuntimeCacheReadOnly: the runtime's compiled-module cache becomes
// read-only under the node (a read-only filesystem mounted over it). Ready
// goes False naming the runtime, pods still start (compiled in memory), and
// Ready is True again once the cache is writable.
func TestRuntimeCacheReadOnly(t *testing.T) {
	env := clustertest.Require(t)
	n := nodetest.Start(t, nodetest.Options{})
	ref := nodetest.PushWasm(t, env, nodetest.WasmFile(t, "testprog.wasm"), "testprog:rocache")
	ns := env.Namespace(t)
	cache := filepath.Join(n.DataDir, "cache")
	if err := os.MkdirAll(cache, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", cache).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a read-only filesystem here (needs root): %v: %s", err, out)
	}
	mounted := true
	unmount := func() {
		if mounted {
			if out, err := exec.Command("umount", cache).CombinedOutput(); err != nil {
				t.Errorf("umount %s: %v: %s", cache, err, out)
			}
			mounted = false
		}
	}
	t.Cleanup(unmount)
	broken := time.Now()
	ready := func() corev1.NodeCondition { return readyCondition(t, n) }
	var message string
	clustertest.Eventually(t, 30*time.Second, "Ready False naming the runtime", func() error {
		r := ready()
		if r.Status != corev1.ConditionFalse || !strings.Contains(r.Message, "runtime: compiled-module cache") {
			return fmt.Errorf("Ready %s %q", r.Status, r.Message)
		}
		message = r.Message
		return nil
	})
	toFalse := time.Since(broken)
	// Bind a pod directly (the not-ready taint keeps the scheduler away):
	// it compiles in memory and runs.
	n.CreatePod(t, n.Pod(ns, "meanwhile", ref, func(p *corev1.Pod) {
		p.Spec.NodeName = n.Name
		p.Spec.Containers[0].Args = []string{"sleep", "1h"}
	}))
	n.WaitPodPhase(t, ns, "meanwhile", corev1.PodRunning, 2*time.Minute)

	unmount()
	fixed := time.Now()
	clustertest.Eventually(t, 30*time.Second, "Ready again", func() error {
		if r := ready(); r.Status != corev1.ConditionTrue {
			return fmt.Errorf("Ready %s %q", r.Status, r.Message)
		}
		return nil
	})
	toTrue := time.Since(fixed)
	reliability.Record(t, reliability.Entry{
		Fault: "the runtime's compiled-module cache made read-only (a read-only tmpfs mounted over it), then writable again",
		Kept: []string{
			"Ready False: " + message,
			"a pod bound meanwhile compiles in memory and runs",
			"Ready True once the cache is writable",
		},
		Figures: []reliability.Figure{
			reliability.Duration("cache read-only → Ready False", toFalse, 10*time.Second),
			reliability.Duration("cache writable → Ready True", toTrue, 10*time.Second),
		},
	})
}

// readyCondition is the node's Ready condition as the API server has it.
func readyCondition(t *testing.T, n *nodetest.Node) corev1.NodeCondition {
	t.Helper()
	return nodetest.Condition(n.Object(t), corev1.NodeReady)
}
