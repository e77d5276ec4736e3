package akritest

import (
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	akri "github.com/wasilet/wasilet/agent/apis/akri/v0"
	"github.com/wasilet/wasilet/internal/clustertest"
	"github.com/wasilet/wasilet/internal/nodetest"
)

// quietClients gives controller-runtime a logger: without one, its first
// log line prints a stack trace into the test output.
var quietClients sync.Once

// Client is an admin controller-runtime client that knows Akri's types.
func Client(t testing.TB, env *clustertest.Env) client.Client {
	t.Helper()
	quietClients.Do(func() { ctrllog.SetLogger(logr.Discard()) })
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	if err := akri.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	c, err := client.New(env.Config, client.Options{Scheme: s})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Proc is a wasilet subprocess of a test (controller, debug-echo, agent),
// killed when the test ends and with the test binary.
type Proc struct {
	Name    string
	LogPath string
	args    []string
	env     []string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// Pid is the process id of the running process (0 if none).
func (p *Proc) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// Start runs `wasilet <args>` with extra environment env (KEY=VALUE).
func Start(t testing.TB, name string, env []string, args ...string) *Proc {
	t.Helper()
	return StartCommand(t, name, env, append([]string{nodetest.Bin(t)}, args...)...)
}

// StartCommand runs argv (any program) like Start.
func StartCommand(t testing.TB, name string, env []string, argv ...string) *Proc {
	t.Helper()
	p := &Proc{Name: name, LogPath: filepath.Join(t.TempDir(), name+".log"), args: argv, env: env}
	if err := p.launch(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			t.Logf("akritest: %s log:\n%s", name, nodetest.Tail(p.Log(), 60))
		}
	})
	return p
}

func (p *Proc) launch() error {
	logf, err := os.OpenFile(p.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	fmt.Fprintf(logf, "=== akritest: %s\n", strings.Join(p.args, " "))
	cmd := exec.Command(p.args[0], p.args[1:]...)
	cmd.Env = append(os.Environ(), p.env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s: %w", p.Name, err)
	}
	done := make(chan struct{})
	p.mu.Lock()
	p.cmd, p.done = cmd, done
	p.mu.Unlock()
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(done)
	}()
	return nil
}

// Stop ends the process (SIGTERM, then SIGKILL after 10 s).
func (p *Proc) Stop() { p.signal(syscall.SIGTERM, 10*time.Second) }

// Kill ends the process with SIGKILL.
func (p *Proc) Kill() { p.signal(syscall.SIGKILL, 10*time.Second) }

// Restart stops and starts the process again.
func (p *Proc) Restart(t testing.TB) {
	t.Helper()
	p.Stop()
	if err := p.launch(); err != nil {
		t.Fatal(err)
	}
}

func (p *Proc) signal(sig syscall.Signal, grace time.Duration) {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-done:
	case <-time.After(grace):
		_ = cmd.Process.Kill()
		<-done
	}
}

// Log is the process's output so far.
func (p *Proc) Log() string {
	b, _ := os.ReadFile(p.LogPath)
	return string(b)
}

// Controller runs `wasilet controller` with the admin kubeconfig.
func Controller(t testing.TB, env *clustertest.Env) *Proc {
	return Start(t, "controller", nil, "controller", "--kubeconfig", env.AdminKubeconfig, "--log-level", "debug")
}

// DebugEcho is a native debugEcho discovery handler registering in dir.
type DebugEcho struct {
	*Proc
	Dir              string
	AvailabilityFile string
}

// StartDebugEcho runs `wasilet debug-echo` registering as name in dir.
func StartDebugEcho(t testing.TB, dir, name string, shared bool) *DebugEcho {
	t.Helper()
	avail := filepath.Join(t.TempDir(), "availability.txt")
	p := Start(t, "debug-echo-"+name, nil, "debug-echo",
		"--name", name,
		"--discovery-handlers-directory", dir,
		fmt.Sprintf("--shared=%v", shared),
		"--availability-file", avail,
		"--poll-interval", "100ms",
		"--register-retry", "1s",
		"--log-level", "debug")
	return &DebugEcho{Proc: p, Dir: dir, AvailabilityFile: avail}
}

// SetOnline writes ONLINE or OFFLINE to the availability file.
func (d *DebugEcho) SetOnline(t testing.TB, online bool) {
	t.Helper()
	s := "OFFLINE"
	if online {
		s = "ONLINE"
	}
	tmp := d.AvailabilityFile + ".tmp"
	if err := os.WriteFile(tmp, []byte(s+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, d.AvailabilityFile); err != nil {
		t.Fatal(err)
	}
}

// ShortDir is a fresh short directory (unix socket paths are limited to
// 107 bytes), removed when the test ends.
func ShortDir(t testing.TB) string {
	t.Helper()
	d, err := os.MkdirTemp("/tmp", "akri-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

// Eventually polls f every 100 ms until it returns nil or timeout passes,
// then fails the test with f's last error.
func Eventually(t testing.TB, timeout time.Duration, what string, f func(ctx context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var last error
	for {
		if last = f(ctx); last == nil {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: not within %s: %v", what, timeout, last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Instances lists the Instances of a Configuration in namespace ns.
func Instances(ctx context.Context, c client.Client, ns, cfg string) ([]akri.Instance, error) {
	var list akri.InstanceList
	if err := c.List(ctx, &list, client.InNamespace(ns)); err != nil {
		return nil, err
	}
	var out []akri.Instance
	for _, in := range list.Items {
		if in.Spec.ConfigurationName == cfg && in.DeletionTimestamp == nil {
			out = append(out, in)
		}
	}
	return out, nil
}

// Pods lists the pods of namespace ns with the given labels.
func Pods(ctx context.Context, c client.Client, ns string, labels map[string]string) ([]corev1.Pod, error) {
	var list corev1.PodList
	if err := c.List(ctx, &list, client.InNamespace(ns), client.MatchingLabels(labels)); err != nil {
		return nil, err
	}
	var out []corev1.Pod
	for _, p := range list.Items {
		if p.DeletionTimestamp == nil {
			out = append(out, p)
		}
	}
	return out, nil
}

// WasmPodSpec is a pod spec for a wasilet node: the Wasm arch selector and
// tolerations, one container running image with args.
func WasmPodSpec(image string, resources corev1.ResourceList, args ...string) corev1.PodSpec {
	return corev1.PodSpec{
		NodeSelector: map[string]string{"kubernetes.io/arch": "wasm32-wasi"},
		Tolerations: []corev1.Toleration{
			{Key: "kubernetes.io/arch", Operator: corev1.TolerationOpEqual, Value: "wasm32-wasi", Effect: corev1.TaintEffectNoSchedule},
			{Key: "kubernetes.io/arch", Operator: corev1.TolerationOpEqual, Value: "wasm32-wasi", Effect: corev1.TaintEffectNoExecute},
		},
		Containers: []corev1.Container{{
			Name:      "broker",
			Image:     image,
			Args:      args,
			Resources: corev1.ResourceRequirements{Limits: resources, Requests: resources},
		}},
	}
}

// Percentile is the nearest-rank p-th percentile of ds (0 when empty).
func Percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

// Ms is d in milliseconds, for benchmark metrics.
func Ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// WaitLog waits until `kubectl logs` of pod in ns holds every line of want.
func WaitLog(t testing.TB, env *clustertest.Env, timeout time.Duration, ns, pod string, want ...string) {
	t.Helper()
	Eventually(t, timeout, "log of "+pod, func(ctx context.Context) error {
		out, err := env.Kubectl(ctx, "logs", "-n", ns, pod)
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		for _, w := range want {
			if !strings.Contains(string(out), w+"\n") {
				return fmt.Errorf("log lacks %q:\n%s", w, out)
			}
		}
		return nil
	})
}

// Warm runs image once on node (a pod named "warm" in ns, deleted once
// Running), so that what is measured next does not include pulling and
// compiling its module, as an image pre-pull would.
func Warm(t testing.TB, c client.Client, node, ns, image string) {
	t.Helper()
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "warm"},
		Spec: WasmPodSpec(image, nil, "sleep", "1h")}
	p.Spec.NodeSelector["kubernetes.io/hostname"] = node
	if err := c.Create(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	Eventually(t, 2*time.Minute, "warm-up pod Running", func(ctx context.Context) error {
		var got corev1.Pod
		if err := c.Get(ctx, client.ObjectKeyFromObject(p), &got); err != nil {
			return err
		}
		if got.Status.Phase != corev1.PodRunning {
			return fmt.Errorf("phase %s", got.Status.Phase)
		}
		return nil
	})
	_ = c.Delete(context.Background(), p)
}
