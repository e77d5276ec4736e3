package containerdtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/wasilet/wasilet/internal/cluster"
	"github.com/wasilet/wasilet/internal/clustertest"
)

func TestMain(m *testing.M) { clustertest.Main(m) }

// requireKubeletBaseline skips the test unless it can run the kubelet
// baseline here (root, the tools), then starts the cluster, containerd and
// the kubelet node.
func requireKubeletBaseline(t *testing.T) (*clustertest.Env, *Kubelet) {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test (runs the cluster, containerd and the kubelet): skipped with -short")
	}
	if r := Unavailable(""); r != "" {
		t.Skip(r)
	}
	tools := os.Getenv(cluster.ToolsDirEnv)
	if _, err := os.Stat(filepath.Join(tools, "kubelet")); err != nil {
		t.Skipf("kubelet baseline unavailable: no kubelet in %s (run hack/tools.sh)", tools)
	}
	env := clustertest.Require(t)
	c := Start(t, Options{RegistryAddr: env.RegistryAddr})
	t0 := time.Now()
	k, err := StartKubelet(t, env, c)
	var u *UnavailableError
	switch {
	case errors.As(err, &u):
		t.Skip(u.Error())
	case err != nil:
		t.Fatal(err)
	}
	t.Logf("kubelet %s node %s (IP %s) Ready in %s on %s", k.Version, k.Name, k.NodeIP, time.Since(t0).Round(time.Millisecond), c.BaselineName())
	return env, k
}

func TestKubeletRunsAPod(t *testing.T) {
	env, k := requireKubeletBaseline(t)
	ns := env.Namespace(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	out, err := env.Kubectl(ctx, "get", "node", k.Name, "-o", "wide")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("kubectl get node:\n%s", out)

	pods := env.Client.CoreV1().Pods(ns)
	if _, err := pods.Create(ctx, k.Pod(ns, "hello", ""), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var p *corev1.Pod
	clustertest.Eventually(t, 2*time.Minute, "pod hello Running", func() error {
		var err error
		if p, err = pods.Get(ctx, "hello", metav1.GetOptions{}); err != nil {
			return err
		}
		if p.Status.Phase != corev1.PodRunning {
			return fmt.Errorf("phase %s, node %q, conditions %v, containers %v", p.Status.Phase, p.Spec.NodeName, p.Status.Conditions, p.Status.ContainerStatuses)
		}
		return nil
	})
	if p.Spec.NodeName != k.Name {
		t.Errorf("pod on node %q, want %q", p.Spec.NodeName, k.Name)
	}
	clustertest.Eventually(t, 30*time.Second, "kubectl logs shows the hello line", func() error {
		out, err := env.Kubectl(ctx, "logs", "-n", ns, "hello")
		if err != nil {
			return err
		}
		if !strings.Contains(string(out), HelloLine) {
			return fmt.Errorf("kubectl logs = %q, want %q", out, HelloLine)
		}
		return nil
	})
	ps := k.Processes()
	if len(ps.Shims) == 0 || len(ps.Containers) == 0 {
		t.Errorf("processes %+v: want a shim and containers", ps)
	}
	if slices.Contains(ps.All(), 0) {
		t.Errorf("processes %+v: a pid is missing", ps)
	}

	if err := pods.Delete(ctx, "hello", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	clustertest.Eventually(t, time.Minute, "pod hello gone", func() error {
		_, err := pods.Get(ctx, "hello", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err == nil {
			return errors.New("still there")
		}
		return err
	})
}

// measureEnv turns on TestKubeletMeasure.
const measureEnv = "WASILET_KUBELET_MEASURE"

// TestKubeletMeasure logs the kubelet baseline's figures: bound → Running
// of 10 pods one after the other and 10 at once, and the node's memory,
// threads and idle CPU with 20 sleeping pods. Only with
// WASILET_KUBELET_MEASURE=1 (it takes a minute or two).
func TestKubeletMeasure(t *testing.T) {
	if os.Getenv(measureEnv) != "1" {
		t.Skipf("set %s=1 to measure the kubelet baseline", measureEnv)
	}
	env, k := requireKubeletBaseline(t)
	ns := env.Namespace(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := k.C.PullImage(ctx, k.C.HelloImage()); err != nil {
		t.Fatal(err)
	}
	for _, burst := range []bool{false, true} {
		d, err := k.PodStart(ctx, ns, 10, burst)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("bound → Running, 10 pods, burst=%v: %s", burst, summary(d))
	}
	for i := range 20 {
		if _, err := env.Client.CoreV1().Pods(ns).Create(ctx, k.Pod(ns, fmt.Sprintf("idle-%d", i), ""), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	clustertest.Eventually(t, 3*time.Minute, "20 pods Running", func() error {
		l, err := env.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		running := 0
		for _, p := range l.Items {
			if p.Status.Phase == corev1.PodRunning {
				running++
			}
		}
		if running < 20 {
			return fmt.Errorf("%d of 20 Running", running)
		}
		return nil
	})
	time.Sleep(10 * time.Second) // settle: status updates, PLEG
	u, err := k.Usage(ctx, 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("kubelet node usage: %s", u)
}

func summary(d []time.Duration) string {
	s := slices.Clone(d)
	slices.Sort(s)
	var sum time.Duration
	for _, x := range s {
		sum += x
	}
	ms := func(x time.Duration) string { return fmt.Sprintf("%.0f ms", float64(x)/float64(time.Millisecond)) }
	return fmt.Sprintf("min %s, median %s, mean %s, max %s (all: %v)", ms(s[0]), ms(s[len(s)/2]), ms(sum/time.Duration(len(s))), ms(s[len(s)-1]), s)
}
