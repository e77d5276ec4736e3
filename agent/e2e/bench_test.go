package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"

	"github.com/wasilet/wasilet/internal/akritest"
	"github.com/wasilet/wasilet/internal/cluster"
	"github.com/wasilet/wasilet/internal/clustertest"
	"github.com/wasilet/wasilet/internal/nodetest"
)

// benchRuns is how many times each reaction is measured
// ($WASILET_BENCH_AKRI_RUNS, default 10).
func benchRuns() int {
	if n, err := strconv.Atoi(os.Getenv("WASILET_BENCH_AKRI_RUNS")); err == nil && n > 0 {
		return n
	}
	return 10
}

// poll checks f every 5 ms (a tight loop against the API server, as a user
// watching would see it) until it is true.
func poll(b *testing.B, timeout time.Duration, what string, f func(ctx context.Context) bool) time.Time {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for !f(ctx) {
		if ctx.Err() != nil {
			b.Fatalf("%s: not within %s", what, timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Now()
}

// BenchmarkAkriReaction measures, with the native debugEcho handler and the
// agent in the node: Configuration applied → broker Running, and device
// OFFLINE → broker gone (deleted from the API), each over benchRuns runs.
// Targets (issue): both ≤ 1 s on the local cluster.
func BenchmarkAkriReaction(b *testing.B) {
	env := clustertest.Require(b)
	c := akritest.Client(b, env)
	ref := nodetest.PushWasm(b, env, nodetest.WasmFile(b, "testprog.wasm"), "akri-bench-broker:v1")
	dir := akritest.ShortDir(b)
	n := nodetest.Start(b, nodetest.Options{Args: []string{"--discovery-handlers-directory", dir}})
	akritest.Controller(b, env)
	h := akritest.StartDebugEcho(b, dir, "debugEcho", true)
	ns := env.Namespace(b)
	akritest.Warm(b, c, n.Name, ns, ref)
	runs := benchRuns()
	var toRunning, toGone []time.Duration
	for b.Loop() {
		for i := range runs {
			name := fmt.Sprintf("bench-%d", i)
			cfg := configuration(ns, name, "debugEcho", []string{"foo0"}, 1, ref)
			cfg.Spec.InstanceServiceSpec, cfg.Spec.ConfigurationServiceSpec = nil, nil
			podName := n.Name + "-" + name + "-8120fe-pod"
			h.SetOnline(b, true)
			start := time.Now()
			if err := c.Create(context.Background(), cfg); err != nil {
				b.Fatal(err)
			}
			end := poll(b, 60*time.Second, "broker Running", func(ctx context.Context) bool {
				var p corev1.Pod
				return c.Get(ctx, types.NamespacedName{Namespace: ns, Name: podName}, &p) == nil && p.Status.Phase == corev1.PodRunning
			})
			toRunning = append(toRunning, end.Sub(start))
			start = time.Now()
			h.SetOnline(b, false)
			end = poll(b, 60*time.Second, "broker gone", func(ctx context.Context) bool {
				var p corev1.Pod
				err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: podName}, &p)
				return apierrors.IsNotFound(err)
			})
			toGone = append(toGone, end.Sub(start))
			_ = c.Delete(context.Background(), cfg)
			time.Sleep(500 * time.Millisecond)
		}
	}
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(akritest.Ms(akritest.Percentile(toRunning, 50)), "applied→running-p50-ms")
	b.ReportMetric(akritest.Ms(akritest.Percentile(toRunning, 99)), "applied→running-p99-ms")
	b.ReportMetric(akritest.Ms(akritest.Percentile(toGone, 50)), "offline→gone-p50-ms")
	b.ReportMetric(akritest.Ms(akritest.Percentile(toGone, 99)), "offline→gone-p99-ms")
	b.Logf("%d runs; Configuration applied → broker Running: %v; OFFLINE → broker gone: %v", len(toRunning), toRunning, toGone)
}

// BenchmarkAgentScale: a handler reports 1, 100 and 1,000 devices to a
// standalone agent beside a wasilet node; for each, the time from the
// Configuration's creation until every Instance exists and every device
// plugin is allocatable on the node, the API requests the agent made per
// device (client-go's rest_client_requests_total from its /metrics) and
// per second once settled, and the agent's resident memory per device.
func BenchmarkAgentScale(b *testing.B) {
	for _, devices := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("devices=%d", devices), func(b *testing.B) { agentScale(b, devices) })
	}
}

func agentScale(b *testing.B, devices int) {
	env := clustertest.Require(b)
	c := akritest.Client(b, env)
	dir := akritest.ShortDir(b)
	n := nodetest.Start(b, nodetest.Options{Args: []string{"--akri-agent=false"}})
	port, err := cluster.FreePort()
	if err != nil {
		b.Fatal(err)
	}
	agent := akritest.Start(b, "agent", []string{"AGENT_NODE_NAME=" + n.Name, "DISCOVERY_HANDLERS_DIRECTORY=" + dir}, "agent",
		"--kubeconfig", env.AdminKubeconfig,
		"--device-plugins-dir", filepath.Join(n.DataDir, "device-plugins"),
		"--pod-resources-socket", filepath.Join(n.DataDir, "pod-resources", "kubelet.sock"),
		"--metrics-bind-address", fmt.Sprintf("127.0.0.1:%d", port))
	akritest.StartDebugEcho(b, dir, "debugEcho", true)
	ns := env.Namespace(b)
	var descs []string
	for i := range devices {
		descs = append(descs, fmt.Sprintf("dev%04d", i))
	}
	metrics := func() map[string]float64 {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
		if err != nil {
			b.Fatal(err)
		}
		defer resp.Body.Close()
		out := map[string]float64{}
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			line := sc.Text()
			if !strings.HasPrefix(line, "rest_client_requests_total{") {
				continue
			}
			i := strings.Index(line, `method="`)
			j := strings.LastIndex(line, " ")
			if i < 0 || j < 0 {
				continue
			}
			method := line[i+8:]
			method = method[:strings.Index(method, `"`)]
			v, _ := strconv.ParseFloat(line[j+1:], 64)
			out[method] += v
		}
		return out
	}
	time.Sleep(2 * time.Second)
	var perDevice, settled, rssPerDevice float64
	var took time.Duration
	round := 0
	for b.Loop() {
		round++
		rssBefore := nodetest.RSS(agent.Pid())
		before := metrics()
		cfg := configuration(ns, fmt.Sprintf("scale%d", round), "debugEcho", descs, 1, "unused")
		cfg.Spec.BrokerSpec, cfg.Spec.InstanceServiceSpec, cfg.Spec.ConfigurationServiceSpec = nil, nil, nil
		start := time.Now()
		if err := c.Create(context.Background(), cfg); err != nil {
			b.Fatal(err)
		}
		prefix := "akri.sh/" + cfg.Name + "-"
		poll(b, 10*time.Minute, fmt.Sprintf("%d Instances with plugins", devices), func(ctx context.Context) bool {
			node := n.Object(b)
			count := 0
			for r, q := range node.Status.Allocatable {
				if strings.HasPrefix(string(r), prefix) && q.Value() == 1 {
					count++
				}
			}
			return count == devices
		})
		took = time.Since(start)
		mid := metrics()
		rssPerDevice = float64(nodetest.RSS(agent.Pid())-rssBefore) / float64(devices)
		time.Sleep(10 * time.Second)
		after := metrics()
		var total, idle float64
		for m, v := range mid {
			total += v - before[m]
		}
		for m, v := range after {
			idle += v - mid[m]
		}
		perDevice, settled = total/float64(devices), idle/10
		b.Logf("%d devices: all Instances and plugins in %s; requests by method %v; agent RSS +%d KiB/device",
			devices, took.Round(time.Millisecond), diff(mid, before), int64(rssPerDevice)>>10)
		_ = c.Delete(context.Background(), cfg)
	}
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(took.Seconds(), "s-to-all-plugins")
	b.ReportMetric(perDevice, "api-calls/device")
	b.ReportMetric(settled, "api-calls/s-settled")
	b.ReportMetric(rssPerDevice/1024, "agent-KiB/device")
}

func diff(a, b map[string]float64) map[string]float64 {
	out := map[string]float64{}
	for k, v := range a {
		out[k] = v - b[k]
	}
	return out
}
