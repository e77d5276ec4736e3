package nodetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/wasilet/wasilet/internal/cluster"
	"github.com/wasilet/wasilet/internal/clustertest"
	"github.com/wasilet/wasilet/internal/node"
)

// BinEnv names the wasilet binary the tests run.
const BinEnv = "WASILET_BIN"

// Main runs the package's tests (call it from TestMain); it is
// clustertest.Main. The shared node (see Shared) dies with the test binary;
// its data directory and log live in the cluster's state directory
// (nodes/<name>), removed with it when the tests pass and kept otherwise.
func Main(m *testing.M) { clustertest.Main(m) }

// Options configure Start.
type Options struct {
	// Name of the node; default "wasilet-<random>".
	Name string
	// DataDir; default a fresh directory removed when the test passes.
	DataDir string
	// Args are extra flags for `wasilet node`.
	Args []string
	// NoApprove leaves the serving CSR pending and does not wait for Ready
	// (tests of TLS bootstrap approve it themselves).
	NoApprove bool
	// ReadyTimeout bounds the wait for the node to be Ready (default 2 min).
	ReadyTimeout time.Duration
}

// Node is a running (or stopped) `wasilet node` process.
type Node struct {
	Env     *clustertest.Env
	Name    string
	DataDir string
	Port    int
	// Addr is 127.0.0.1:<Port>, where the kubelet API listens.
	Addr string
	// LogPath is the process's combined stdout and stderr (appended across
	// restarts).
	LogPath string
	args    []string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

var shared struct {
	once sync.Once
	node *Node
	err  error
}

// Shared returns the node shared by the tests of this binary, started (and
// approved, and Ready) on first use and stopped by Main. Tests must not stop
// or restart it; use Start for that.
func Shared(t testing.TB) *Node {
	t.Helper()
	env := clustertest.Require(t)
	shared.once.Do(func() {
		name := "wasilet-shared-" + randHex(3)
		shared.node, shared.err = start(env, Options{Name: name, DataDir: filepath.Join(env.StateDir, "nodes", name)})
	})
	if shared.err != nil {
		t.Fatalf("nodetest: shared node: %v", shared.err)
	}
	return shared.node
}

// Start runs a node for this test: started, serving CSR approved, Ready
// (unless NoApprove). It is stopped, and its node object deleted, when the
// test ends; its data directory is removed if the test passed.
func Start(t testing.TB, o Options) *Node {
	t.Helper()
	env := clustertest.Require(t)
	keep := o.DataDir != ""
	if o.DataDir == "" {
		dir, err := os.MkdirTemp("", "wasilet-node-")
		if err != nil {
			t.Fatal(err)
		}
		o.DataDir = dir
	}
	n, err := start(env, o)
	if n != nil {
		t.Cleanup(func() {
			n.stop(10 * time.Second)
			n.deleteNodeObject()
			if t.Failed() {
				t.Logf("nodetest: node %s log (%s):\n%s", n.Name, n.LogPath, Tail(n.Log(), 100))
			} else if !keep {
				_ = os.RemoveAll(n.DataDir)
			}
		})
	}
	if err != nil {
		t.Fatalf("nodetest: %v", err)
	}
	return n
}

func start(env *clustertest.Env, o Options) (*Node, error) {
	bin, err := wasiletBin()
	if err != nil {
		return nil, err
	}
	if o.Name == "" {
		o.Name = "wasilet-" + randHex(4)
	}
	if err := os.MkdirAll(o.DataDir, 0o755); err != nil {
		return nil, err
	}
	port, err := cluster.FreePort()
	if err != nil {
		return nil, err
	}
	n := &Node{
		Env:     env,
		Name:    o.Name,
		DataDir: o.DataDir,
		Port:    port,
		Addr:    net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		LogPath: filepath.Join(o.DataDir, "wasilet-node.log"),
	}
	n.args = append([]string{bin, "node",
		"--node-name", n.Name,
		"--node-ip", "127.0.0.1",
		"--address", "127.0.0.1",
		"--port", strconv.Itoa(port),
		"--data-dir", n.DataDir,
		"--bootstrap-kubeconfig", env.BootstrapKubeconfig,
		"--log-level", "debug",
	}, o.Args...)
	if err := n.launch(); err != nil {
		return n, err
	}
	if o.NoApprove {
		return n, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), orDefault(o.ReadyTimeout, 2*time.Minute))
	defer cancel()
	if err := n.approve(ctx); err != nil {
		return n, err
	}
	if err := n.waitReady(ctx); err != nil {
		return n, err
	}
	if err := n.waitServing(ctx); err != nil {
		return n, err
	}
	return n, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Bin is the wasilet binary the tests run ($WASILET_BIN, or built; see
// Main). It skips the test under -short.
func Bin(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test (runs the wasilet binary): skipped with -short")
	}
	p, err := wasiletBin()
	if err != nil {
		t.Fatalf("nodetest: %v", err)
	}
	return p
}

var built struct {
	once sync.Once
	path string
	err  error
}

// wasiletBin is $WASILET_BIN, or <module>/bin/wasilet built once per test
// binary with `go build -o bin/wasilet ./cmd/wasilet` (serialized across
// test binaries by a lock file; the Go build cache makes it quick).
func wasiletBin() (string, error) {
	if p := os.Getenv(BinEnv); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%s=%s: %w (build it with `go build -o bin/wasilet ./cmd/wasilet`)", BinEnv, p, err)
		}
		return filepath.Abs(p)
	}
	built.once.Do(func() {
		root, err := moduleRoot()
		if err != nil {
			built.err = err
			return
		}
		if err := os.MkdirAll(filepath.Join(root, "bin"), 0o755); err != nil {
			built.err = err
			return
		}
		lock, err := os.OpenFile(filepath.Join(root, "bin", ".wasilet.build.lock"), os.O_CREATE|os.O_RDWR, 0o644)
		if err != nil {
			built.err = err
			return
		}
		defer lock.Close()
		if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
			built.err = err
			return
		}
		built.path = filepath.Join(root, "bin", "wasilet")
		cmd := exec.Command("go", "build", "-o", built.path, "./cmd/wasilet")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			built.err = fmt.Errorf("%s is unset and `go build -o bin/wasilet ./cmd/wasilet` failed: %w\n%s", BinEnv, err, out)
		}
	})
	return built.path, built.err
}

func moduleRoot() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", errors.New("nodetest: cannot locate the module root")
	}
	return filepath.Abs(filepath.Join(filepath.Dir(file), "..", ".."))
}

// launch starts the process (appending to the log).
func (n *Node) launch() error {
	logf, err := os.OpenFile(n.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("node log: %w", err)
	}
	fmt.Fprintf(logf, "=== nodetest: %s\n", strings.Join(n.args, " "))
	cmd := exec.Command(n.args[0], n.args[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// The node dies with the test binary.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s: %w", n.args[0], err)
	}
	done := make(chan struct{})
	n.mu.Lock()
	n.cmd, n.done, n.err = cmd, done, nil
	n.mu.Unlock()
	go func() {
		err := cmd.Wait()
		logf.Close()
		n.mu.Lock()
		n.err = err
		n.mu.Unlock()
		close(done)
	}()
	return nil
}

// Running reports whether the process runs.
func (n *Node) Running() bool {
	n.mu.Lock()
	done := n.done
	n.mu.Unlock()
	if done == nil {
		return false
	}
	select {
	case <-done:
		return false
	default:
		return true
	}
}

// Pid is the node process's id (0 when it is not running).
func (n *Node) Pid() int {
	if !n.Running() {
		return 0
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil || n.cmd.Process == nil {
		return 0
	}
	return n.cmd.Process.Pid
}

// ExitErr is the process's exit error once it has stopped (nil for exit 0).
func (n *Node) ExitErr() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.err
}

func (n *Node) signal(sig os.Signal) {
	n.mu.Lock()
	cmd := n.cmd
	n.mu.Unlock()
	if cmd != nil && cmd.Process != nil {
		_ = cmd.Process.Signal(sig)
	}
}

// stop sends SIGTERM, then SIGKILL after grace.
func (n *Node) stop(grace time.Duration) {
	if !n.Running() {
		return
	}
	n.mu.Lock()
	done := n.done
	n.mu.Unlock()
	n.signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(grace):
		n.signal(syscall.SIGKILL)
		<-done
	}
}

// Stop stops the node gracefully (SIGTERM; SIGKILL after 30 s).
func (n *Node) Stop(t testing.TB) {
	t.Helper()
	n.stop(30 * time.Second)
}

// Kill kills the node with SIGKILL and waits for it to be gone.
func (n *Node) Kill(t testing.TB) {
	t.Helper()
	if !n.Running() {
		return
	}
	n.mu.Lock()
	done := n.done
	n.mu.Unlock()
	n.signal(syscall.SIGKILL)
	<-done
}

// Restart starts the node again with the same name, port and data
// directory (stopping it first if it runs) and waits for it to be Ready
// and serving.
func (n *Node) Restart(t testing.TB) {
	t.Helper()
	n.Stop(t)
	if err := n.launch(); err != nil {
		t.Fatalf("nodetest: restart %s: %v", n.Name, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := n.waitServing(ctx); err != nil {
		t.Fatalf("nodetest: restart %s: %v\n%s", n.Name, err, Tail(n.Log(), 60))
	}
	n.WaitReady(t, 2*time.Minute)
}

// Log is the node's output so far.
func (n *Node) Log() string {
	b, _ := os.ReadFile(n.LogPath)
	return string(b)
}

// Tail is the last lines of s.
func Tail(s string, lines int) string {
	ls := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(ls) > lines {
		ls = ls[len(ls)-lines:]
	}
	return strings.Join(ls, "\n")
}

// ServingCSRName is the name of the node's first serving CSR.
func (n *Node) ServingCSRName() string { return n.Name + "-tls" }

// ApproveServingCSR waits for the node's serving CSR and approves it with
// the real kubectl (`kubectl certificate approve <node>-tls`).
func (n *Node) ApproveServingCSR(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := n.approve(ctx); err != nil {
		t.Fatalf("nodetest: %v", err)
	}
}

func (n *Node) approve(ctx context.Context) error {
	name := n.ServingCSRName()
	err := poll(ctx, func() error {
		if !n.Running() {
			return errStop{fmt.Errorf("node %s exited (%v) before filing its serving CSR:\n%s", n.Name, n.ExitErr(), Tail(n.Log(), 40))}
		}
		_, err := n.Env.Client.CertificatesV1().CertificateSigningRequests().Get(ctx, name, metav1.GetOptions{})
		return err
	})
	if err != nil {
		return fmt.Errorf("serving CSR %s: %w\nnode log:\n%s", name, err, Tail(n.Log(), 40))
	}
	if out, err := n.Env.Kubectl(ctx, "certificate", "approve", name); err != nil {
		return fmt.Errorf("approve %s: %w: %s", name, err, out)
	}
	return nil
}

// WaitReady waits until the node object exists with condition Ready=True.
func (n *Node) WaitReady(t testing.TB, timeout time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := n.waitReady(ctx); err != nil {
		t.Fatalf("nodetest: %v", err)
	}
}

func (n *Node) waitReady(ctx context.Context) error {
	err := poll(ctx, func() error {
		if !n.Running() {
			return errStop{fmt.Errorf("node process exited: %v", n.ExitErr())}
		}
		no, err := n.Env.Client.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		for _, c := range no.Status.Conditions {
			if c.Type == corev1.NodeReady {
				if c.Status == corev1.ConditionTrue {
					return nil
				}
				return fmt.Errorf("Ready=%s (%s)", c.Status, c.Message)
			}
		}
		return errors.New("no Ready condition yet")
	})
	if err != nil {
		return fmt.Errorf("node %s not Ready: %w\nnode log:\n%s", n.Name, err, Tail(n.Log(), 40))
	}
	return nil
}

// waitServing waits until the kubelet API answers /healthz over TLS.
func (n *Node) waitServing(ctx context.Context) error {
	err := poll(ctx, func() error {
		if !n.Running() {
			return errStop{fmt.Errorf("node process exited: %v", n.ExitErr())}
		}
		resp, err := n.Get(ctx, "/healthz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("/healthz: %s", resp.Status)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("kubelet API of %s at %s: %w", n.Name, n.Addr, err)
	}
	return nil
}

// errStop ends a poll early.
type errStop struct{ error }

func poll(ctx context.Context, f func() error) error {
	for {
		err := f()
		if err == nil {
			return nil
		}
		var stop errStop
		if errors.As(err, &stop) {
			return stop.error
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), err)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func (n *Node) deleteNodeObject() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := n.Env.Client.CoreV1().Nodes().Delete(ctx, n.Name, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		fmt.Fprintf(os.Stderr, "nodetest: delete node %s: %v\n", n.Name, err)
	}
}

// Object returns the node object.
func (n *Node) Object(t testing.TB) *corev1.Node {
	t.Helper()
	no, err := n.Env.Client.CoreV1().Nodes().Get(context.Background(), n.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get node %s: %v", n.Name, err)
	}
	return no
}

// AdminTLS is a TLS configuration presenting the cluster's admin client
// certificate (the same identity as kubectl), not verifying the node's
// serving certificate.
func (n *Node) AdminTLS() (*tls.Config, error) {
	cfg, err := rest.TLSConfigFor(n.Env.Config)
	if err != nil {
		return nil, err
	}
	cfg = cfg.Clone()
	cfg.InsecureSkipVerify = true //nolint:gosec // tests inspect the serving cert themselves
	cfg.RootCAs = nil
	cfg.ServerName = ""
	return cfg, nil
}

// Get sends GET https://<Addr><path> to the kubelet API as the cluster admin.
func (n *Node) Get(ctx context.Context, path string) (*http.Response, error) {
	cfg, err := n.AdminTLS()
	if err != nil {
		return nil, err
	}
	return n.Do(ctx, &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}, http.MethodGet, path, "")
}

// Do sends a request to the kubelet API with the given client, and a bearer
// token when token is not empty.
func (n *Node) Do(ctx context.Context, c *http.Client, method, path, token string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, "https://"+n.Addr+path, nil)
	if err != nil {
		return nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return c.Do(req)
}

// Pod builds a pod for this node: it tolerates both wasm32-wasi taints and
// selects the node by kubernetes.io/hostname, so the real scheduler places
// it here. Its one container "main" runs image; mutate adjusts the rest.
func (n *Node) Pod(namespace, name, image string, mutate ...func(*corev1.Pod)) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Spec: corev1.PodSpec{
			NodeSelector: map[string]string{node.LabelHostname: n.Name},
			Tolerations:  Tolerations(),
			Containers:   []corev1.Container{{Name: "main", Image: image}},
			// No token to mount: wasm pods rarely need one, and tests stay fast.
			AutomountServiceAccountToken: ptr(false),
		},
	}
	for _, m := range mutate {
		m(p)
	}
	return p
}

func ptr[T any](v T) *T { return &v }

// Tolerations tolerate both wasm32-wasi taints.
func Tolerations() []corev1.Toleration {
	return []corev1.Toleration{
		{Key: node.TaintKey, Operator: corev1.TolerationOpEqual, Value: node.Arch, Effect: corev1.TaintEffectNoSchedule},
		{Key: node.TaintKey, Operator: corev1.TolerationOpEqual, Value: node.Arch, Effect: corev1.TaintEffectNoExecute},
	}
}

// CreatePod creates the pod (failing the test on error) and returns it.
func (n *Node) CreatePod(t testing.TB, p *corev1.Pod) *corev1.Pod {
	t.Helper()
	out, err := n.Env.Client.CoreV1().Pods(p.Namespace).Create(context.Background(), p, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create pod %s/%s: %v", p.Namespace, p.Name, err)
	}
	return out
}

// WaitPod polls the pod until cond returns true (or an error, which fails
// the test at once), failing after timeout with the pod's last status.
func (n *Node) WaitPod(t testing.TB, namespace, name string, timeout time.Duration, what string, cond func(*corev1.Pod) (bool, error)) *corev1.Pod {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var last *corev1.Pod
	var lastErr error
	for {
		p, err := n.Env.Client.CoreV1().Pods(namespace).Get(ctx, name, metav1.GetOptions{})
		if err == nil {
			last = p
			ok, cerr := cond(p)
			if cerr != nil {
				t.Fatalf("pod %s/%s: %s: %v\nstatus: %s", namespace, name, what, cerr, describe(p))
			}
			if ok {
				return p
			}
		} else {
			lastErr = err
		}
		select {
		case <-ctx.Done():
			if last == nil {
				t.Fatalf("pod %s/%s: %s: not done after %s: %v", namespace, name, what, timeout, lastErr)
			}
			t.Fatalf("pod %s/%s: %s: not done after %s\nstatus: %s\nnode log:\n%s", namespace, name, what, timeout, describe(last), Tail(n.Log(), 30))
			return nil
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// WaitPodPhase waits for the pod to reach phase.
func (n *Node) WaitPodPhase(t testing.TB, namespace, name string, phase corev1.PodPhase, timeout time.Duration) *corev1.Pod {
	t.Helper()
	return n.WaitPod(t, namespace, name, timeout, "phase "+string(phase), func(p *corev1.Pod) (bool, error) {
		return p.Status.Phase == phase, nil
	})
}

// WaitPodCondition waits for the pod condition to be True.
func (n *Node) WaitPodCondition(t testing.TB, namespace, name string, cond corev1.PodConditionType, timeout time.Duration) *corev1.Pod {
	t.Helper()
	return n.WaitPod(t, namespace, name, timeout, "condition "+string(cond), func(p *corev1.Pod) (bool, error) {
		for _, c := range p.Status.Conditions {
			if c.Type == cond && c.Status == corev1.ConditionTrue {
				return true, nil
			}
		}
		return false, nil
	})
}

func describe(p *corev1.Pod) string {
	var b bytes.Buffer
	fmt.Fprintf(&b, "node=%q phase=%s reason=%q message=%q", p.Spec.NodeName, p.Status.Phase, p.Status.Reason, p.Status.Message)
	for _, c := range p.Status.Conditions {
		fmt.Fprintf(&b, "\n  condition %s=%s %s %s", c.Type, c.Status, c.Reason, c.Message)
	}
	for _, cs := range append(append([]corev1.ContainerStatus{}, p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...) {
		fmt.Fprintf(&b, "\n  container %s ready=%v restarts=%d state=%+v last=%+v", cs.Name, cs.Ready, cs.RestartCount, cs.State, cs.LastTerminationState)
	}
	return b.String()
}

// Kubectl runs the real kubectl as the cluster admin, failing the test on
// error; it returns the combined output.
func (n *Node) Kubectl(t testing.TB, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := n.Env.Kubectl(ctx, args...)
	if err != nil {
		t.Fatalf("%v", err)
	}
	return string(out)
}

// WasmDirEnv names the directory of the Wasm test programs (bin/wasm, built
// by hack/wasm.sh).
const WasmDirEnv = "WASILET_WASM_DIR"

// WasmFile is the path of a Wasm test program, e.g. "testprog.wasm", in
// $WASILET_WASM_DIR. It skips the test under -short and fails it when the
// file is missing.
func WasmFile(t testing.TB, name string) string {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test (needs the Wasm test programs): skipped with -short")
	}
	dir := os.Getenv(WasmDirEnv)
	if dir == "" {
		t.Fatalf("%s is not set: run `./just wasm` and `export %s=$PWD/bin/wasm`", WasmDirEnv, WasmDirEnv)
	}
	p := filepath.Join(dir, name)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("%s: %v (run `./just wasm`)", name, err)
	}
	return p
}

// PushWasm pushes a Wasm file to the cluster registry as repo:tag (e.g.
// "hello:v1") with the real oras CLI, in the CNCF Wasm artifact layout
// (config application/vnd.wasm.config.v0+json, layer application/wasm), and
// returns the reference to put in a pod.
func PushWasm(t testing.TB, env *clustertest.Env, file, repoTag string) string {
	t.Helper()
	ref := env.RegistryAddr + "/" + repoTag
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.json")
	if err := os.WriteFile(cfg, []byte(`{"architecture":"wasm","os":"wasip1"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	abs, err := filepath.Abs(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := copyFile(abs, filepath.Join(dir, "module.wasm")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, env.Tool("oras"), "push", "--plain-http",
		"--artifact-type", "application/vnd.wasm.config.v0+json",
		"--config", "config.json:application/vnd.wasm.config.v0+json",
		ref, "module.wasm:application/wasm")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("oras push %s: %v\n%s", ref, err, out)
	}
	return ref
}

func copyFile(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, 0o644)
}

// Condition is the node's condition of type typ (the zero condition when
// it has none).
func Condition(no *corev1.Node, typ corev1.NodeConditionType) corev1.NodeCondition {
	for _, c := range no.Status.Conditions {
		if c.Type == typ {
			return c
		}
	}
	return corev1.NodeCondition{}
}
