// Package e2e_test holds the end-to-end tests of the node-local APIs
// through a real `wasilet node` (internal/nodetest, real control plane and
// registry): device plugins (the upstream sample-device-plugin and the Go
// test plugin) against the node's device manager, Wasm pods getting their
// devices, UnexpectedAdmissionError, allocations across a node restart,
// PodResources over the node's socket, and crictl against the node's CRI
// endpoint. They need `wasilet node` to wire internal/devicemanager,
// internal/podresources and internal/cri (see the package docs). They skip
// under -short.
package e2e_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	pluginapi "k8s.io/kubelet/pkg/apis/deviceplugin/v1beta1"
	podresourcesapi "k8s.io/kubelet/pkg/apis/podresources/v1"

	"github.com/wasilet/wasilet/internal/clustertest"
	"github.com/wasilet/wasilet/internal/devicemanager/plugintest"
	"github.com/wasilet/wasilet/internal/nodetest"
)

func TestMain(m *testing.M) { nodetest.Main(m) }

const podTimeout = 2 * time.Minute

var pushed sync.Map // env registry → ref

// testprog pushes handlers/testprog (bin/wasm/testprog.wasm) once.
func testprog(t *testing.T, n *nodetest.Node) string {
	t.Helper()
	dir := os.Getenv("WASILET_WASM_DIR")
	if dir == "" {
		wd, err := os.Getwd()
		if err != nil {
			t.Fatal(err)
		}
		dir = filepath.Join(wd, "..", "..", "..", "bin", "wasm")
	}
	path := filepath.Join(dir, "testprog.wasm")
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("%s not found (%v): build it with hack/wasm.sh or set WASILET_WASM_DIR", path, err)
	}
	if ref, ok := pushed.Load(n.Env.RegistryAddr); ok {
		return ref.(string)
	}
	ref := nodetest.PushWasm(t, n.Env, path, "devices-testprog:v1")
	pushed.Store(n.Env.RegistryAddr, ref)
	return ref
}

func devicePluginDir(n *nodetest.Node) string { return filepath.Join(n.DataDir, "device-plugins") }

// steps sets the container's testprog steps and extended-resource limits.
func steps(limits map[string]int64, args ...string) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		c := &p.Spec.Containers[0]
		c.Args = args
		if len(limits) > 0 {
			c.Resources.Limits = corev1.ResourceList{}
			for r, q := range limits {
				c.Resources.Limits[corev1.ResourceName(r)] = *resource.NewQuantity(q, resource.DecimalSI)
			}
		}
	}
}

// waitNodeResource polls the Node object until the resource has the given
// capacity and allocatable.
func waitNodeResource(t *testing.T, n *nodetest.Node, name string, capacity, allocatable int64) {
	t.Helper()
	deadline := time.Now().Add(podTimeout)
	last := ""
	for time.Now().Before(deadline) {
		node, err := n.Env.Client.CoreV1().Nodes().Get(context.Background(), n.Name, metav1.GetOptions{})
		if err == nil {
			c, cok := node.Status.Capacity[corev1.ResourceName(name)]
			a, aok := node.Status.Allocatable[corev1.ResourceName(name)]
			if cok && aok && c.Value() == capacity && a.Value() == allocatable {
				return
			}
			last = fmt.Sprintf("capacity=%v (%v) allocatable=%v (%v)", c.String(), cok, a.String(), aok)
		} else {
			last = err.Error()
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Fatalf("node %s: %s never reached capacity %d allocatable %d; last: %s\nnode log:\n%s", n.Name, name, capacity, allocatable, last, tailLog(n))
}

func tailLog(n *nodetest.Node) string {
	lines := strings.Split(n.Log(), "\n")
	if len(lines) > 40 {
		lines = lines[len(lines)-40:]
	}
	return strings.Join(lines, "\n")
}

// waitLog waits for the pod's log to contain want.
func waitLog(t *testing.T, n *nodetest.Node, ns, pod, want string) string {
	t.Helper()
	deadline := time.Now().Add(podTimeout)
	var out []byte
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		out, _ = n.Env.Kubectl(ctx, "-n", ns, "logs", pod)
		cancel()
		if strings.Contains(string(out), want) {
			return string(out)
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Fatalf("log of %s/%s never contained %q; last:\n%s", ns, pod, want, out)
	return ""
}

// podResources lists the node's PodResources over its socket.
func podResources(t *testing.T, n *nodetest.Node) *podresourcesapi.ListPodResourcesResponse {
	t.Helper()
	sock := filepath.Join(n.DataDir, "pod-resources", "kubelet.sock")
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	resp, err := podresourcesapi.NewPodResourcesListerClient(conn).List(ctx, &podresourcesapi.ListPodResourcesRequest{}, grpc.WaitForReady(true))
	if err != nil {
		t.Fatalf("PodResources List on %s: %v", sock, err)
	}
	return resp
}

// podDevices returns "container resource=id,id" lines of one pod in a
// PodResources listing, sorted; nil if the pod is not listed.
func podDevices(list *podresourcesapi.ListPodResourcesResponse, ns, name string) []string {
	for _, pr := range list.PodResources {
		if pr.Namespace != ns || pr.Name != name {
			continue
		}
		out := []string{}
		for _, c := range pr.Containers {
			byRes := map[string][]string{}
			for _, d := range c.Devices {
				byRes[d.ResourceName] = append(byRes[d.ResourceName], d.DeviceIds...)
			}
			for r, ids := range byRes {
				slices.Sort(ids)
				out = append(out, c.Name+" "+r+"="+strings.Join(ids, ","))
			}
		}
		slices.Sort(out)
		return out
	}
	return nil
}

// TestSampleDevicePlugin: the upstream sample plugin registers with the
// node, its resource shows in the node status, a Wasm pod requesting both
// devices starts with the files the plugin mounts, PodResources lists them,
// a pod bound past the scheduler that cannot be satisfied fails with
// UnexpectedAdmissionError, the allocation survives kill -9 of the node
// (the plugin re-registers) and is freed when the pod is deleted.
func TestSampleDevicePlugin(t *testing.T) {
	n := nodetest.Start(t, nodetest.Options{})
	ns := n.Env.Namespace(t)
	ref := testprog(t, n)
	plugintest.StartSample(t, n.Env.Tool("sample-device-plugin"), devicePluginDir(n))
	res := plugintest.SampleResource
	waitNodeResource(t, n, res, 2, 2)

	n.CreatePod(t, n.Pod(ns, "dev", ref, steps(map[string]int64{res: 2},
		"exists", "/tmp/Dev-1", ";", "exists", "/tmp/Dev-2", ";", "echo", "devices-ok", ";", "sleep", "1h")))
	n.WaitPodPhase(t, ns, "dev", corev1.PodRunning, podTimeout)
	waitLog(t, n, ns, "dev", "devices-ok")
	want := []string{"main " + res + "=Dev-1,Dev-2"}
	if got := podDevices(podResources(t, n), ns, "dev"); !slices.Equal(got, want) {
		t.Fatalf("PodResources devices of dev = %v, want %v", got, want)
	}

	// Bound to the node directly (no scheduler): the node must reject it.
	n.CreatePod(t, n.Pod(ns, "greedy", ref, steps(map[string]int64{res: 1}, "hello"), func(p *corev1.Pod) {
		p.Spec.NodeSelector = nil
		p.Spec.NodeName = n.Name
	}))
	p := n.WaitPodPhase(t, ns, "greedy", corev1.PodFailed, podTimeout)
	if p.Status.Reason != "UnexpectedAdmissionError" || !strings.Contains(p.Status.Message, "Requested: 1, Available: 0") {
		t.Fatalf("greedy pod: reason %q message %q, want UnexpectedAdmissionError with the kubelet's message", p.Status.Reason, p.Status.Message)
	}

	// kill -9 and restart: same devices, plugin back.
	n.Kill(t)
	n.Restart(t)
	waitNodeResource(t, n, res, 2, 2)
	// The pod's status says Running from before the kill: wait for the
	// restarted node to have brought it back before asking PodResources.
	clustertest.Eventually(t, podTimeout, "PodResources devices of dev after the restart", func() error {
		if got := podDevices(podResources(t, n), ns, "dev"); !slices.Equal(got, want) {
			return fmt.Errorf("PodResources devices of dev = %v, want %v", got, want)
		}
		return nil
	})

	// Deleting the pod frees its devices for the next one.
	n.Kubectl(t, "-n", ns, "delete", "pod", "dev", "--wait=true", "--timeout=2m")
	n.CreatePod(t, n.Pod(ns, "next", ref, steps(map[string]int64{res: 2}, "echo", "next-ok", ";", "sleep", "1h")))
	n.WaitPodPhase(t, ns, "next", corev1.PodRunning, podTimeout)
	list := podResources(t, n)
	if podDevices(list, ns, "dev") != nil {
		t.Fatalf("deleted pod still listed by PodResources: %v", list)
	}
	if got := podDevices(list, ns, "next"); !slices.Equal(got, want) {
		t.Fatalf("PodResources devices of next = %v, want %v", got, want)
	}
}

// TestGoPluginPreferredAllocationAndPreStart: a Go plugin offering
// GetPreferredAllocation and requiring PreStartContainer sees both called;
// the env and read-only mount it returns reach the guest; when it dies the
// node's allocatable drops to 0 while capacity is kept.
func TestGoPluginPreferredAllocationAndPreStart(t *testing.T) {
	n := nodetest.Shared(t)
	ns := n.Env.Namespace(t)
	ref := testprog(t, n)
	res := "wasilet.test/gpu-" + strings.ToLower(ns[len(ns)-5:])
	share := t.TempDir()
	if err := os.WriteFile(filepath.Join(share, "hello.txt"), []byte("from-plugin"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := plugintest.New(devicePluginDir(n), res, "gotest-"+ns[len(ns)-5:]+".sock",
		&pluginapi.DevicePluginOptions{PreStartRequired: true, GetPreferredAllocationAvailable: true}, "g1", "g2", "g3")
	p.PreferFunc = func(*pluginapi.ContainerPreferredAllocationRequest) []string { return []string{"g3"} }
	p.AllocFunc = func(ids []string) *pluginapi.ContainerAllocateResponse {
		return &pluginapi.ContainerAllocateResponse{
			Envs:   map[string]string{"GPU_IDS": strings.Join(ids, ",")},
			Mounts: []*pluginapi.Mount{{ContainerPath: "/gpu", HostPath: share, ReadOnly: true}},
		}
	}
	t.Cleanup(p.Stop)
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	waitNodeResource(t, n, res, 3, 3)

	n.CreatePod(t, n.Pod(ns, "gpu", ref, steps(map[string]int64{res: 1},
		"env", "GPU_IDS", ";", "read", "/gpu/hello.txt", ";", "cannot-write", "/gpu/x", ";", "echo", "gpu-ok", ";", "sleep", "1h")))
	n.WaitPodPhase(t, ns, "gpu", corev1.PodRunning, podTimeout)
	log := waitLog(t, n, ns, "gpu", "gpu-ok")
	if !strings.Contains(log, "GPU_IDS=g3") || !strings.Contains(log, "from-plugin") {
		t.Fatalf("guest did not get the plugin's env and mount:\n%s", log)
	}
	pref, _, pre := p.Calls()
	if len(pref) == 0 {
		t.Fatal("GetPreferredAllocation was not called")
	}
	if len(pre) != 1 || !slices.Equal(pre[0].DevicesIds, []string{"g3"}) {
		t.Fatalf("PreStartContainer calls = %v, want one for g3", pre)
	}
	if got := podDevices(podResources(t, n), ns, "gpu"); !slices.Equal(got, []string{"main " + res + "=g3"}) {
		t.Fatalf("PodResources devices of gpu = %v", got)
	}

	p.Stop()
	waitNodeResource(t, n, res, 3, 0)
}

// TestCrictl: crictl pods/ps/inspect/logs/images work against the node's
// CRI socket, and a mutating call is refused.
func TestCrictl(t *testing.T) {
	n := nodetest.Shared(t)
	ns := n.Env.Namespace(t)
	ref := testprog(t, n)
	created := n.CreatePod(t, n.Pod(ns, "cri", ref, steps(nil, "echo", "crictl-hello", ";", "sleep", "1h")))
	n.WaitPodPhase(t, ns, "cri", corev1.PodRunning, podTimeout)
	waitLog(t, n, ns, "cri", "crictl-hello")

	sock := filepath.Join(n.DataDir, "cri.sock")
	cfg := filepath.Join(t.TempDir(), "crictl.yaml")
	if err := os.WriteFile(cfg, []byte("runtime-endpoint: unix://"+sock+"\nimage-endpoint: unix://"+sock+"\ntimeout: 60\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	crictl := func(args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, n.Env.Tool("crictl"), append([]string{"--config", cfg}, args...)...).CombinedOutput()
		return string(out), err
	}
	run := func(args ...string) string {
		t.Helper()
		out, err := crictl(args...)
		if err != nil {
			t.Fatalf("crictl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	if out := run("version"); !strings.Contains(out, "RuntimeName:  wasilet") {
		t.Fatalf("crictl version:\n%s", out)
	}
	sandbox := strings.TrimSpace(run("pods", "--namespace", ns, "--name", "cri", "-q"))
	if sandbox != string(created.UID) {
		t.Fatalf("crictl pods -q = %q, want the pod UID %s", sandbox, created.UID)
	}
	id := strings.TrimSpace(run("ps", "-a", "--pod", sandbox, "-q"))
	if id == "" || strings.Contains(id, "\n") {
		t.Fatalf("crictl ps --pod = %q, want one container", id)
	}
	if out := run("ps", "--pod", sandbox); !strings.Contains(out, "Running") || !strings.Contains(out, "main") {
		t.Fatalf("crictl ps:\n%s", out)
	}
	if out := run("inspect", id); !strings.Contains(out, `"logPath"`) || !strings.Contains(out, "CONTAINER_RUNNING") {
		t.Fatalf("crictl inspect:\n%s", out)
	}
	if out := run("logs", id); !strings.Contains(out, "crictl-hello") {
		t.Fatalf("crictl logs:\n%s", out)
	}
	repo := ref[:strings.LastIndex(ref, ":")]
	if out := run("images"); !strings.Contains(out, repo) {
		t.Fatalf("crictl images lacks %s:\n%s", repo, out)
	}
	out, err := crictl("stopp", sandbox)
	if err == nil || !strings.Contains(out, "Kubernetes API") {
		t.Fatalf("crictl stopp: err=%v\n%s", err, out)
	}
}
