package containerdtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/wasilet/wasilet/internal/cluster"
	"github.com/wasilet/wasilet/internal/clustertest"
	"github.com/wasilet/wasilet/internal/nodetest"
)

// Kubelet is the upstream kubelet (the pinned binary of hack/tools.sh)
// driving a Containerd of this package, registered as a node of the local
// cluster of internal/clustertest: the full Kubernetes node the pod-start
// and density benchmarks compare wasilet with.
//
// It is a benchmark harness, not a node to copy: it talks to the API server
// with the cluster's admin kubeconfig (no TLS bootstrap, no node
// authorizer), serves its API with a self-signed certificate, authenticates
// the API server's client certificate against the cluster CA and authorizes
// every authenticated request (AlwaysAllow).
type Kubelet struct {
	Env *clustertest.Env
	C   *Containerd

	Name        string // node name (--hostname-override), "kubelet-<random>"
	NodeIP      string // --node-ip: a non-loopback IPv4 address of this machine
	Port        int    // the kubelet API (HTTPS, on NodeIP)
	HealthzPort int    // /healthz on 127.0.0.1
	Dir         string // root-dir, cert-dir, config, pod logs, log
	LogPath     string // the kubelet's stdout and stderr
	// CgroupRoot is the kubelet's cgroupRoot (cgroupfs path), created in
	// every cgroup hierarchy; its kubepods tree lives below.
	CgroupRoot string
	Version    string // `kubelet --version`, e.g. "v1.37.2"

	cmd    *exec.Cmd
	exited chan struct{}
}

// KubeletTolerations are the tolerations a pod of the kubelet node needs:
// none, once StartKubelet has returned (the node is Ready and untainted).
func KubeletTolerations() []corev1.Toleration { return nil }

// StartKubelet runs the upstream kubelet as a node of env's cluster, on
// containerd c, and waits until the node is Ready with no taint that keeps
// pods away. Everything is undone when the test ends: the node's pods
// deleted, the kubelet stopped (SIGTERM, then SIGKILL), the Node object
// deleted, what is left in containerd removed, its cgroups and directory
// removed.
//
// It returns an *UnavailableError when the kubelet cannot run here (not
// root, binary missing) and another error, naming the problem with the end
// of the kubelet's log, when it does not become a Ready node; a benchmark
// records either as the baseline's absence.
func StartKubelet(tb testing.TB, env *clustertest.Env, c *Containerd) (*Kubelet, error) {
	tb.Helper()
	if os.Geteuid() != 0 {
		return nil, unavailable(fmt.Sprintf("the kubelet needs root (running as uid %d)", os.Geteuid()))
	}
	bin := env.Tool("kubelet")
	if fi, err := os.Stat(bin); err != nil || fi.IsDir() {
		return nil, unavailable(fmt.Sprintf("no kubelet binary at %s (run hack/tools.sh kubelet)", bin))
	}
	out, err := exec.Command(bin, "--version").CombinedOutput()
	if err != nil {
		return nil, unavailable(fmt.Sprintf("kubelet --version: %v: %s", err, strings.TrimSpace(string(out))))
	}
	version := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(string(out)), "Kubernetes"))
	ip, err := nodeIP()
	if err != nil {
		return nil, unavailable(err.Error())
	}
	ports, err := cluster.FreePorts(2)
	if err != nil {
		return nil, fmt.Errorf("kubelet baseline: free ports: %w", err)
	}
	// Short, as for containerd: the plugin sockets live under it.
	dir, err := os.MkdirTemp("/tmp", "kl-")
	if err != nil {
		return nil, fmt.Errorf("kubelet baseline: %w", err)
	}
	k := &Kubelet{
		Env:         env,
		C:           c,
		Name:        "kubelet-" + randHex(4),
		NodeIP:      ip,
		Port:        ports[0],
		HealthzPort: ports[1],
		Dir:         dir,
		LogPath:     filepath.Join(dir, "kubelet.log"),
		CgroupRoot:  "/" + filepath.Base(dir),
		Version:     version,
	}
	tb.Cleanup(func() { k.stop(tb) })

	if err := createCgroup(k.CgroupRoot); err != nil {
		return nil, fmt.Errorf("kubelet baseline: cgroupRoot %s: %w", k.CgroupRoot, err)
	}
	if err := c.writeCNIConfig(); err != nil {
		return nil, fmt.Errorf("kubelet baseline: CNI config: %w", err)
	}
	if err := k.writeConfig(); err != nil {
		return nil, fmt.Errorf("kubelet baseline: %w", err)
	}
	if err := k.launch(bin); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := k.waitReady(ctx); err != nil {
		return nil, err
	}
	return k, nil
}

// nodeIP is the first global IPv4 address of an interface that is up: the
// kubelet refuses a loopback --node-ip ("nodeIP can't be loopback
// address"), and the API server reaches the kubelet API there.
func nodeIP() (string, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return "", fmt.Errorf("list network interfaces: %w", err)
	}
	for _, i := range ifs {
		if i.Flags&net.FlagUp == 0 || i.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, _ := i.Addrs()
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && n.IP.IsGlobalUnicast() {
				return n.IP.String(), nil
			}
		}
	}
	return "", errors.New("no non-loopback IPv4 address on this machine: the kubelet refuses a loopback node IP")
}

// writeCNIConfig gives containerd a network config so that the CRI reports
// NetworkReady=true, without which the kubelet keeps its node NotReady
// (and tainted not-ready). The pods are host-network pods: containerd never
// calls a CNI plugin for them, so no plugin binary is installed.
func (c *Containerd) writeCNIConfig() error {
	conf := `{
  "cniVersion": "1.0.0",
  "name": "containerdtest-host-only",
  "plugins": [{"type": "loopback"}]
}
`
	p := filepath.Join(c.Dir, "cni", "net.d", "10-containerdtest.conflist")
	if err := os.WriteFile(p, []byte(conf), 0o644); err != nil {
		return err
	}
	// containerd watches the directory; wait until the CRI says so.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var last string
	for {
		st, err := c.Runtime.Status(ctx, &runtimeapi.StatusRequest{})
		if err == nil {
			last = ""
			for _, cond := range st.GetStatus().GetConditions() {
				if cond.GetType() == runtimeapi.NetworkReady {
					if cond.GetStatus() {
						return nil
					}
					last = cond.GetReason() + ": " + cond.GetMessage()
				}
			}
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("containerd still says NetworkReady=false after writing %s: %s", p, last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (k *Kubelet) writeConfig() error {
	for _, d := range []string{"root", "certs", "pod-logs", "volume-plugins"} {
		if err := os.MkdirAll(filepath.Join(k.Dir, d), 0o755); err != nil {
			return err
		}
	}
	p := func(name string) string { return strconv.Quote(filepath.Join(k.Dir, name)) }
	cfg := fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: %q
containerRuntimeEndpoint: %q
address: %q
port: %d
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: %d
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: false
  x509:
    clientCAFile: %q
authorization:
  mode: AlwaysAllow
serializeImagePulls: false
maxPods: 250
evictionHard:
  memory.available: 100Mi
  nodefs.available: 1%%
  nodefs.inodesFree: 1%%
  imagefs.available: 1%%
  imagefs.inodesFree: 1%%
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
failSwapOn: false
podLogsDir: %s
volumePluginDir: %s
`, k.CgroupRoot, "unix://"+k.C.Socket, k.NodeIP, k.Port, k.HealthzPort,
		filepath.Join(k.Env.Cluster.PKIDir(), cluster.CACert), p("pod-logs"), p("volume-plugins"))
	return os.WriteFile(filepath.Join(k.Dir, "config.yaml"), []byte(cfg), 0o644)
}

func (k *Kubelet) launch(bin string) error {
	logf, err := os.OpenFile(k.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("kubelet baseline: %w", err)
	}
	defer logf.Close()
	cmd := exec.Command(bin,
		"--config", filepath.Join(k.Dir, "config.yaml"),
		"--kubeconfig", k.Env.AdminKubeconfig,
		"--hostname-override", k.Name,
		"--node-ip", k.NodeIP,
		"--root-dir", filepath.Join(k.Dir, "root"),
		"--cert-dir", filepath.Join(k.Dir, "certs"),
		"--v", "2",
	)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("kubelet baseline: start the kubelet: %w", err)
	}
	k.cmd = cmd
	k.exited = make(chan struct{})
	go func() { _ = cmd.Wait(); close(k.exited) }()
	return nil
}

// Running says whether the kubelet process is alive.
func (k *Kubelet) Running() bool {
	if k.exited == nil {
		return false
	}
	select {
	case <-k.exited:
		return false
	default:
		return true
	}
}

// waitReady waits for the Node to be Ready and free of NoSchedule and
// NoExecute taints (the controller manager removes not-ready a moment
// after Ready).
func (k *Kubelet) waitReady(ctx context.Context) error {
	var last string
	for {
		if !k.Running() {
			return fmt.Errorf("kubelet baseline: the kubelet exited (%v) before its node was Ready; its log ends with:\n%s", k.cmd.ProcessState, k.LogTail(30))
		}
		no, err := k.Env.Client.CoreV1().Nodes().Get(ctx, k.Name, metav1.GetOptions{})
		switch {
		case err != nil:
			last = err.Error()
		default:
			last = "no Ready condition yet"
			for _, c := range no.Status.Conditions {
				if c.Type == corev1.NodeReady {
					last = fmt.Sprintf("Ready=%s (%s: %s)", c.Status, c.Reason, c.Message)
					if c.Status == corev1.ConditionTrue {
						last = ""
					}
				}
			}
			if last == "" {
				var taints []string
				for _, t := range no.Spec.Taints {
					if t.Effect != corev1.TaintEffectPreferNoSchedule {
						taints = append(taints, t.ToString())
					}
				}
				if len(taints) == 0 {
					return nil
				}
				last = "Ready, but tainted " + strings.Join(taints, ", ")
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("kubelet baseline: node %s not Ready and untainted: %s; the kubelet's log ends with:\n%s", k.Name, last, k.LogTail(30))
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// LogTail is the last n lines of the kubelet's log.
func (k *Kubelet) LogTail(n int) string { return fileTail(k.LogPath, n) }

// stop deletes the node's pods, stops the kubelet, deletes the Node,
// removes what the kubelet left in containerd, its cgroups, mounts and
// directory.
func (k *Kubelet) stop(tb testing.TB) {
	if k.Running() {
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		if err := k.DeleteAllPods(ctx); err != nil {
			tb.Errorf("kubelet baseline: %v", err)
		}
		cancel()
		_ = k.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-k.exited:
		case <-time.After(10 * time.Second):
			_ = k.cmd.Process.Kill()
			<-k.exited
		}
	}
	if tb.Failed() && k.cmd != nil {
		tb.Logf("kubelet log (%s), last lines:\n%s", k.LogPath, k.LogTail(60))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := k.Env.Client.CoreV1().Nodes().Delete(ctx, k.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		tb.Errorf("kubelet baseline: delete node %s: %v", k.Name, err)
	}
	// Whatever the kubelet did not stop (it was killed, or a pod would not
	// go) goes now, so that its cgroups are empty.
	if k.C.conn != nil {
		if err := k.C.RemoveAllPods(ctx); err != nil {
			tb.Errorf("kubelet baseline: remove leftover pods from containerd: %v", err)
		}
	}
	// The kubelet bind-mounts its root dir onto itself (rshared) and
	// leaves it; more than that one mount means pods' volumes were left.
	if n, err := unmountUnder(k.Dir); err != nil {
		tb.Errorf("kubelet baseline: %v", err)
	} else if n > 1 {
		tb.Logf("kubelet baseline: unmounted %d mounts under %s (the root dir's own bind mount and %d more)", n, k.Dir, n-1)
	}
	removeCgroups(k.CgroupRoot)
	if left := existingCgroups(k.CgroupRoot); len(left) > 0 {
		tb.Errorf("kubelet baseline: cgroups left behind: %s", strings.Join(left, ", "))
	}
	if err := os.RemoveAll(k.Dir); err != nil {
		tb.Errorf("kubelet baseline: %v", err)
	}
}

// DeleteAllPods deletes every pod bound to the node and waits until they
// are gone; pods still there after a minute are deleted with no grace.
func (k *Kubelet) DeleteAllPods(ctx context.Context) error {
	pods := k.Env.Client.CoreV1().Pods(metav1.NamespaceAll)
	sel := metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("spec.nodeName", k.Name).String()}
	l, err := pods.List(ctx, sel)
	if err != nil {
		return fmt.Errorf("list the pods of node %s: %w", k.Name, err)
	}
	for _, p := range l.Items {
		if err := k.Env.Client.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete pod %s/%s: %w", p.Namespace, p.Name, err)
		}
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		l, err := pods.List(ctx, sel)
		if err != nil {
			return fmt.Errorf("list the pods of node %s: %w", k.Name, err)
		}
		if len(l.Items) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			var names []string
			for _, p := range l.Items {
				names = append(names, p.Namespace+"/"+p.Name)
				zero := int64(0)
				_ = k.Env.Client.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero})
			}
			return fmt.Errorf("pods of node %s still there a minute after deletion (force-deleted): %s", k.Name, strings.Join(names, ", "))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("pods of node %s not gone: %w", k.Name, ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// Pid is the kubelet's process id (0 before it started).
func (k *Kubelet) Pid() int {
	if k.cmd == nil || k.cmd.Process == nil {
		return 0
	}
	return k.cmd.Process.Pid
}

// NodeProcesses are the processes of the kubelet node.
type NodeProcesses struct {
	Kubelet    int
	Containerd int
	Shims      []int // containerd-shim-runc-v2, one per pod
	Containers []int // the pods' processes (pause and workload)
}

// All is every pid, kubelet first.
func (p NodeProcesses) All() []int {
	return slices.Concat([]int{p.Kubelet, p.Containerd}, p.Shims, p.Containers)
}

// Processes lists the kubelet, containerd, its shims and their containers.
func (k *Kubelet) Processes() NodeProcesses {
	t := k.C.processes()
	return NodeProcesses{Kubelet: k.Pid(), Containerd: t.containerd, Shims: t.shims, Containers: t.containers}
}

// NodeUsage is what the kubelet node uses.
type NodeUsage struct {
	Pods                                   int // pods of the node (API server)
	Kubelet, Containerd, Shims, Containers Usage
	// IdleCPU is the CPU time of the kubelet, containerd and the shims over
	// Window, divided by Window: 0.01 is 1% of one core.
	IdleCPU float64
	// KubeletCPU, ContainerdCPU and ShimsCPU split IdleCPU.
	KubeletCPU, ContainerdCPU, ShimsCPU float64
	Window                              time.Duration
}

// Total is the sum of the four groups.
func (u NodeUsage) Total() Usage { return sum(u.Kubelet, u.Containerd, u.Shims, u.Containers) }

// String is the usage on one line.
func (u NodeUsage) String() string {
	t := u.Total()
	return fmt.Sprintf("%d pods: RSS %.1f MiB (kubelet %.1f, containerd %.1f, shims %.1f, containers %.1f), PSS %.1f MiB, %d processes, %d threads (kubelet %d, containerd %d, shims %d, containers %d), idle CPU %.2f%% of a core (kubelet %.2f, containerd %.2f, shims %.2f) over %s",
		u.Pods, mib(t.RSS), mib(u.Kubelet.RSS), mib(u.Containerd.RSS), mib(u.Shims.RSS), mib(u.Containers.RSS), mib(t.PSS),
		t.Processes, t.Threads, u.Kubelet.Threads, u.Containerd.Threads, u.Shims.Threads, u.Containers.Threads,
		100*u.IdleCPU, 100*u.KubeletCPU, 100*u.ContainerdCPU, 100*u.ShimsCPU, u.Window)
}

// Usage measures the node as it is: memory and threads of the kubelet,
// containerd, the shims and the containers, and the CPU the kubelet,
// containerd and the shims use over window (default 10 s).
func (k *Kubelet) Usage(ctx context.Context, window time.Duration) (NodeUsage, error) {
	u := NodeUsage{Window: orDefault(window, 10*time.Second)}
	l, err := k.Env.Client.CoreV1().Pods(metav1.NamespaceAll).List(ctx, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("spec.nodeName", k.Name).String()})
	if err != nil {
		return u, fmt.Errorf("list the pods of node %s: %w", k.Name, err)
	}
	u.Pods = len(l.Items)
	ps := k.Processes()
	if ps.Kubelet == 0 || !k.Running() {
		return u, errors.New("the kubelet is not running")
	}
	if ps.Containerd == 0 {
		return u, errors.New("containerd is not running")
	}
	for _, g := range []struct {
		u    *Usage
		pids []int
	}{{&u.Kubelet, []int{ps.Kubelet}}, {&u.Containerd, []int{ps.Containerd}}, {&u.Shims, ps.Shims}, {&u.Containers, ps.Containers}} {
		for _, pid := range g.pids {
			if p, err := readProc(pid, true); err == nil {
				g.u.add(p)
			}
		}
	}
	shares, wall, err := nodetest.CPUShares(ctx, u.Window, []int{ps.Kubelet}, []int{ps.Containerd}, ps.Shims)
	if err != nil {
		return u, err
	}
	u.Window = wall
	u.KubeletCPU, u.ContainerdCPU, u.ShimsCPU = shares[0], shares[1], shares[2]
	u.IdleCPU = u.KubeletCPU + u.ContainerdCPU + u.ShimsCPU
	return u, nil
}

// Pod is a pod for the kubelet node: pinned to it by nodeSelector
// kubernetes.io/hostname (the scheduler places it), host network (there is
// no pod network here), one container "main" running image (empty: the
// hello image) with args (none: "sleep", the hello image's run-until-
// SIGTERM mode), pulled IfNotPresent, BestEffort, no service account token
// (as the wasilet node's test pods).
func (k *Kubelet) Pod(ns, name, image string, args ...string) *corev1.Pod {
	if image == "" {
		image = k.C.HelloImage()
	}
	if len(args) == 0 && image == k.C.HelloImage() {
		args = []string{"sleep"}
	}
	no := false
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: corev1.PodSpec{
			NodeSelector:                 map[string]string{corev1.LabelHostname: k.Name},
			Tolerations:                  KubeletTolerations(),
			HostNetwork:                  true,
			DNSPolicy:                    corev1.DNSDefault,
			AutomountServiceAccountToken: &no,
			Containers: []corev1.Container{{
				Name:            "main",
				Image:           image,
				Args:            args,
				ImagePullPolicy: corev1.PullIfNotPresent,
			}},
		},
	}
}

// createCgroup creates the cgroupfs path in every cgroup hierarchy mounted
// under /sys/fs/cgroup (the kubelet wants its cgroupRoot in all of them),
// giving a new cpuset cgroup its parent's cpus and mems.
func createCgroup(path string) error {
	hier, err := cgroupHierarchies()
	if err != nil {
		return err
	}
	if len(hier) == 0 {
		return errors.New("no cgroup hierarchy mounted under /sys/fs/cgroup")
	}
	for _, h := range hier {
		d := filepath.Join(h, path)
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
		for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
			parent, err := os.ReadFile(filepath.Join(filepath.Dir(d), f))
			if err != nil {
				continue // not the cpuset hierarchy
			}
			if cur, _ := os.ReadFile(filepath.Join(d, f)); strings.TrimSpace(string(cur)) == "" {
				if err := os.WriteFile(filepath.Join(d, f), parent, 0o644); err != nil {
					return fmt.Errorf("%s: %w", filepath.Join(d, f), err)
				}
			}
		}
	}
	return nil
}

// existingCgroups lists the hierarchies where path still exists.
func existingCgroups(path string) []string {
	hier, _ := cgroupHierarchies()
	var out []string
	for _, h := range hier {
		if _, err := os.Stat(filepath.Join(h, path)); err == nil {
			out = append(out, filepath.Join(h, path))
		}
	}
	return out
}

// cgroupHierarchies are the mount points of cgroup and cgroup2 file
// systems under /sys/fs/cgroup.
func cgroupHierarchies() ([]string, error) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		// … mount point (5th) … " - " fstype source options
		pre, post, ok := strings.Cut(l, " - ")
		if !ok {
			continue
		}
		f, g := strings.Fields(pre), strings.Fields(post)
		if len(f) < 5 || len(g) < 1 || (g[0] != "cgroup" && g[0] != "cgroup2") {
			continue
		}
		mp := unescapeMount(f[4])
		if (mp == "/sys/fs/cgroup" || strings.HasPrefix(mp, "/sys/fs/cgroup/")) && !slices.Contains(out, mp) {
			out = append(out, mp)
		}
	}
	return out, nil
}

// PodStart creates n pods (k.Pod with the hello image, sleeping) in ns,
// one after the other (each Running before the next is created) or all at
// once (burst), and returns per pod the time from bound to Running as a
// user watching the namespace sees it: from the watch event that first
// shows spec.nodeName set to the event that first shows phase Running
// (client-side clocks). The pods are deleted, and gone, when it returns.
func (k *Kubelet) PodStart(ctx context.Context, ns string, n int, burst bool) ([]time.Duration, error) {
	n = max(n, 1)
	pods := k.Env.Client.CoreV1().Pods(ns)
	prefix := "start-" + randHex(3) + "-"
	type seen struct {
		bound, running time.Time
		done           chan struct{}
	}
	rec := make(map[string]*seen, n)
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("%s%d", prefix, i)
		rec[names[i]] = &seen{done: make(chan struct{})}
	}
	l, err := pods.List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list pods of %s: %w", ns, err)
	}
	w, err := pods.Watch(ctx, metav1.ListOptions{ResourceVersion: l.ResourceVersion})
	if err != nil {
		return nil, fmt.Errorf("watch pods of %s: %w", ns, err)
	}
	watchDone := make(chan error, 1)
	go func() {
		defer w.Stop()
		left := n
		for ev := range w.ResultChan() {
			now := time.Now()
			if ev.Type == watch.Error {
				watchDone <- fmt.Errorf("watch pods of %s: %v", ns, apierrors.FromObject(ev.Object))
				return
			}
			p, ok := ev.Object.(*corev1.Pod)
			if !ok {
				continue
			}
			s := rec[p.Name]
			if s == nil || !s.running.IsZero() {
				continue
			}
			if s.bound.IsZero() && p.Spec.NodeName != "" {
				s.bound = now
			}
			if p.Status.Phase == corev1.PodRunning {
				s.running = now
				close(s.done)
				if left--; left == 0 {
					watchDone <- nil
					return
				}
			}
		}
		watchDone <- errors.New("the watch ended early")
	}()
	defer func() {
		dctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		_ = k.DeleteAllPods(dctx)
	}()
	wait := func(name string) error {
		select {
		case <-rec[name].done:
			return nil
		case err := <-watchDone:
			watchDone <- err
			if err == nil {
				return nil
			}
			return err
		case <-ctx.Done():
			return fmt.Errorf("pod %s/%s not Running: %w", ns, name, ctx.Err())
		}
	}
	create := func(name string) error {
		if _, err := pods.Create(ctx, k.Pod(ns, name, ""), metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create pod %s/%s: %w", ns, name, err)
		}
		return nil
	}
	if burst {
		errs := make([]error, n)
		done := make(chan int, n)
		for i, name := range names {
			go func() { errs[i] = create(name); done <- i }()
		}
		for range n {
			<-done
		}
		if err := errors.Join(errs...); err != nil {
			return nil, err
		}
		for _, name := range names {
			if err := wait(name); err != nil {
				return nil, err
			}
		}
	} else {
		for _, name := range names {
			if err := create(name); err != nil {
				return nil, err
			}
			if err := wait(name); err != nil {
				return nil, err
			}
		}
	}
	out := make([]time.Duration, 0, n)
	for _, name := range names {
		s := rec[name]
		out = append(out, s.running.Sub(s.bound))
	}
	return out, nil
}
