package clustertest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/wasilet/wasilet/internal/cluster"
)

// StateEnv names a state directory whose cluster the tests should use and
// leave running instead of starting their own.
const StateEnv = "WASILET_E2E_STATE"

// Env is the shared cluster of a test binary.
type Env struct {
	Cluster             *cluster.Cluster
	StateDir            string // the cluster's state directory (logs in StateDir/logs)
	ToolsDir            string // directory of the pinned binaries
	AdminKubeconfig     string // path of the admin (system:masters) kubeconfig
	BootstrapKubeconfig string // path of the bootstrap-token kubeconfig for nodes
	APIServerURL        string // https://127.0.0.1:<port>
	RegistryAddr        string // 127.0.0.1:<port> of the registry (plain HTTP, no auth)
	Config              *rest.Config
	Client              kubernetes.Interface
}

var shared struct {
	mainCalled bool
	once       sync.Once
	env        *Env
	err        error
	own        bool // started by this binary: stop it at the end
}

// Main runs the tests of a package (call it from TestMain) and stops the
// shared cluster, if a test started it, once they are done.
func Main(m *testing.M) {
	os.Exit(run(m, nil))
}

// MainThen is Main with after run once the tests are done (before the
// cluster stops), for a package's own cleanup.
func MainThen(m *testing.M, after func()) {
	os.Exit(run(m, after))
}

func run(m *testing.M, after func()) int {
	if !flag.Parsed() {
		flag.Parse()
	}
	shared.mainCalled = true
	code := m.Run()
	if after != nil {
		after()
	}
	if shared.env != nil && shared.own {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := cluster.Down(ctx, shared.env.StateDir); err != nil {
			fmt.Fprintf(os.Stderr, "clustertest: stop cluster: %v\n", err)
			if code == 0 {
				code = 1
			}
		}
		if code == 0 {
			_ = os.RemoveAll(shared.env.StateDir)
		} else {
			// Keep the logs (small), not the data.
			_ = os.RemoveAll(filepath.Join(shared.env.StateDir, "etcd"))
			_ = os.RemoveAll(filepath.Join(shared.env.StateDir, "registry"))
			fmt.Fprintf(os.Stderr, "clustertest: tests failed; cluster logs kept in %s\n", filepath.Join(shared.env.StateDir, "logs"))
		}
	}
	return code
}

// Require returns the shared cluster, starting it on first use. It skips the
// test under -short and fails it when the cluster cannot run (no tools, …).
func Require(t testing.TB) *Env {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test (needs the local cluster): skipped with -short")
	}
	if !shared.mainCalled {
		t.Fatal("clustertest: the package needs `func TestMain(m *testing.M) { clustertest.Main(m) }`")
	}
	shared.once.Do(func() { shared.env, shared.err = start() })
	if shared.err != nil {
		t.Fatalf("clustertest: %v", shared.err)
	}
	return shared.env
}

func start() (*Env, error) {
	tools, err := toolsDir(append([]string{"kubectl"}, cluster.Tools...)...)
	if err != nil {
		return nil, err
	}
	o := cluster.Options{ToolsDir: tools, Log: prefixWriter{}}
	if dir := os.Getenv(StateEnv); dir != "" {
		o.StateDir = dir
	} else {
		dir, err := os.MkdirTemp("", "wasilet-e2e-")
		if err != nil {
			return nil, err
		}
		o.StateDir = dir
		o.DieWithParent = true
		if o.Ports, err = cluster.FreeClusterPorts(); err != nil {
			return nil, err
		}
		shared.own = true
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c, err := cluster.Up(ctx, o)
	if err != nil {
		if shared.own {
			fmt.Fprintf(os.Stderr, "clustertest: cluster logs in %s\n", filepath.Join(o.StateDir, "logs"))
		}
		return nil, fmt.Errorf("start the local cluster: %w", err)
	}
	cfg, err := c.RESTConfig()
	if err != nil {
		return nil, err
	}
	// Tests create many objects quickly; the client's default 5 qps would
	// make them wait.
	cfg.QPS, cfg.Burst = 100, 200
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return &Env{
		Cluster:             c,
		StateDir:            c.StateDir,
		ToolsDir:            tools,
		AdminKubeconfig:     c.AdminKubeconfig,
		BootstrapKubeconfig: c.BootstrapKubeconfig,
		APIServerURL:        c.APIServerURL,
		RegistryAddr:        c.RegistryAddr,
		Config:              cfg,
		Client:              cs,
	}, nil
}

type prefixWriter struct{}

func (prefixWriter) Write(p []byte) (int, error) {
	return fmt.Fprintf(os.Stderr, "clustertest: %s", p)
}

// Tool is the path of a pinned binary (kubectl, crictl, oras, kubelet,
// sample-device-plugin, …).
func (e *Env) Tool(name string) string { return filepath.Join(e.ToolsDir, name) }

// Kubectl runs the real kubectl with the admin kubeconfig and returns its
// combined output.
func (e *Env) Kubectl(ctx context.Context, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, e.Tool("kubectl"), append([]string{"--kubeconfig", e.AdminKubeconfig}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("kubectl %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return out, nil
}

var nonDNS = regexp.MustCompile(`[^a-z0-9-]+`)

// Namespace creates a namespace for the test, named after it, waits for its
// default service account (pods need it) and deletes it when the test ends.
func (e *Env) Namespace(t testing.TB) string {
	t.Helper()
	base := strings.Trim(nonDNS.ReplaceAllString(strings.ToLower(t.Name()), "-"), "-")
	if len(base) > 50 {
		base = strings.TrimRight(base[:50], "-")
	}
	suffix := make([]byte, 3)
	_, _ = rand.Read(suffix)
	name := base + "-" + hex.EncodeToString(suffix)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"wasilet.io/e2e": "true"}}}
	if _, err := e.Client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create namespace %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := e.Client.CoreV1().Namespaces().Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
			t.Logf("delete namespace %s: %v", name, err)
		}
	})
	if err := cluster.WaitForServiceAccount(ctx, e.Client, name, "default"); err != nil {
		t.Fatalf("namespace %s: %v", name, err)
	}
	return name
}

// Namespace is Require(t).Namespace(t).
func Namespace(t testing.TB) string {
	t.Helper()
	return Require(t).Namespace(t)
}

// RequireTools returns the tools directory, checking that the named binaries
// are in it. It skips under -short and fails, saying how to build them, when
// they are missing. For tests that run tools without the shared cluster.
func RequireTools(t testing.TB, names ...string) string {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test (needs the pinned tools): skipped with -short")
	}
	dir, err := toolsDir(names...)
	if err != nil {
		t.Fatalf("clustertest: %v", err)
	}
	return dir
}

// Tool is the path of a pinned binary, failing the test (or skipping under
// -short) when it is missing.
func Tool(t testing.TB, name string) string {
	t.Helper()
	return filepath.Join(RequireTools(t, name), name)
}

func toolsDir(names ...string) (string, error) {
	dir := os.Getenv(cluster.ToolsDirEnv)
	if dir == "" {
		return "", fmt.Errorf("%s is not set: run `./just tools` and `export %s=$(hack/tools.sh --dir)` (or run the tests with -short to skip end-to-end tests)", cluster.ToolsDirEnv, cluster.ToolsDirEnv)
	}
	var missing []string
	for _, n := range names {
		if fi, err := os.Stat(filepath.Join(dir, n)); err != nil || fi.IsDir() {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		return "", fmt.Errorf("%s missing in %s=%s: run `./just tools` (or run the tests with -short to skip end-to-end tests)", strings.Join(missing, ", "), cluster.ToolsDirEnv, dir)
	}
	return filepath.Abs(dir)
}

// Eventually polls f every 250 ms until it returns nil, failing the test with
// f's last error after timeout. Use generous timeouts: the machine is shared.
func Eventually(t testing.TB, timeout time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not done after %s: %v", what, timeout, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// RequirePortClosed fails the test when something still accepts connections
// on addr (host:port) after a grace of a few seconds, naming the listener.
func RequirePortClosed(t testing.TB, addr string) {
	t.Helper()
	var err error
	for deadline := time.Now().Add(5 * time.Second); ; {
		if err = portClosed(addr); err == nil {
			return
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	_, port, _ := net.SplitHostPort(addr)
	out, _ := exec.Command("ss", "-Htlnp", "sport = :"+port).CombinedOutput()
	t.Fatalf("%v; listeners: %s", err, strings.TrimSpace(string(out)))
}

func portClosed(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err == nil {
		c.Close()
		return fmt.Errorf("%s still accepts connections", addr)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("%s: dial timed out (something listens but does not answer?)", addr)
	}
	return nil
}
