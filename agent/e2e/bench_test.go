package e2e

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
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
	"github.com/wasilet/wasilet/internal/benchreport"
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
	if !pollFor(timeout, f) {
		b.Fatalf("%s: not within %s", what, timeout)
	}
	return time.Now()
}

// pollFor is poll without failing: false when f was not true within timeout.
func pollFor(timeout time.Duration, f func(ctx context.Context) bool) bool {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for !f(ctx) {
		if ctx.Err() != nil {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
	return true
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

// agentScaleSizes are the device counts of BenchmarkAgentScale.
func agentScaleSizes() []int {
	// WASILET_BENCH_AGENT_SIZES=30,60 measures those device counts instead.
	if v := os.Getenv("WASILET_BENCH_AGENT_SIZES"); v != "" {
		var sizes []int
		for _, f := range strings.Split(v, ",") {
			if n, err := strconv.Atoi(strings.TrimSpace(f)); err == nil && n > 0 {
				sizes = append(sizes, n)
			}
		}
		if len(sizes) > 0 {
			return sizes
		}
	}
	if benchreport.Smoke() {
		return []int{1, 10}
	}
	return []int{1, 100, 1000}
}

// scaleFigures is what one agent did with one handler's devices.
type scaleFigures struct {
	took         time.Duration // Configuration created → every plugin allocatable
	callsPerDev  float64       // API requests per device (-1: not known)
	settled      float64       // API requests per second once settled
	rssPerDevice float64       // bytes
}

// BenchmarkAgentScale: a handler (the native `wasilet debug-echo`) reports
// 1, 100 and 1,000 devices to a standalone agent beside a wasilet node —
// wasilet's, and upstream Akri's in the same run; for each, the time from
// the Configuration's creation until every device plugin is allocatable on
// the node, the agent's resident memory per device, and (wasilet only) the
// API requests per device, from client-go's rest_client_requests_total.
func BenchmarkAgentScale(b *testing.B) {
	sizes := agentScaleSizes()
	got := map[string]map[int]scaleFigures{"wasilet": {}, "upstream": {}}
	_, missing := akritest.Upstream()
	stalled := map[int]string{} // upstream's agent did not finish: why
	for _, devices := range sizes {
		for _, who := range []string{"wasilet", "upstream"} {
			if who == "upstream" && (missing != "" || devices > upstreamScaleMax) {
				continue
			}
			b.Run(fmt.Sprintf("%s/devices=%d", who, devices), func(b *testing.B) {
				for b.Loop() {
					f, why := agentScale(b, devices, who == "upstream")
					if why != "" {
						// A baseline that does not finish is reported, not
						// a failure of wasilet's benchmark.
						stalled[devices] = why
						b.Skip(why)
					}
					got[who][devices] = f
				}
				f := got[who][devices]
				b.ReportMetric(0, "ns/op")
				b.ReportMetric(f.took.Seconds(), "s-to-all-plugins")
				b.ReportMetric(f.rssPerDevice/1024, "agent-KiB/device")
				if f.callsPerDev >= 0 {
					b.ReportMetric(f.callsPerDev, "api-calls/device")
					b.ReportMetric(f.settled, "api-calls/s-settled")
				}
			})
		}
	}
	const method = "A standalone agent beside a wasilet node (whose own agent is off), the native debugEcho handler reporting N devices; " +
		"time from the Configuration's creation until all N device plugins are allocatable in the node's status, " +
		"and the agent's VmRSS growth over that time divided by N. Upstream's agent runs in a private mount namespace " +
		"with the node's device-plugin directory at its compiled-in kubelet path. Wasilet's agent keeps to its client's 50 requests/s " +
		"(burst 100, `--kube-api-qps`/`--kube-api-burst`), as the kubelet does, so past ~50 devices its time is about " +
		"requests ÷ 50 s; upstream's agent (kube-rs) has no client-side limit."
	upstreamName := "upstream Akri " + akritest.UpstreamVersion + " agent"
	curve := func(who string, f func(scaleFigures) float64) [][2]float64 {
		var pts [][2]float64
		for _, n := range sizes {
			if v, ok := got[who][n]; ok {
				pts = append(pts, [2]float64{float64(n), f(v)})
			}
		}
		return pts
	}
	secs := func(f scaleFigures) float64 { return f.took.Seconds() }
	kib := func(f scaleFigures) float64 { return f.rssPerDevice / 1024 }
	largest := sizes[len(sizes)-1]
	for _, n := range sizes {
		w, ok := got["wasilet"][n]
		if !ok {
			continue
		}
		r := benchreport.Result{
			Group: "Agent scale", Metric: fmt.Sprintf("%d devices → all Instances and plugins", n), Unit: "s",
			Wasilet: []float64{w.took.Seconds()}, BaselineName: upstreamName, Method: method,
			Target:   benchreport.Target{MinRatio: 1, Text: "ahead of upstream Akri"},
			Versions: map[string]string{"Akri (upstream)": akritest.UpstreamVersion},
		}
		if u, ok := got["upstream"][n]; ok {
			r.Baseline = []float64{u.took.Seconds()}
		} else {
			r.NoBaseline = upstreamMissing(missing, stalled[n], n, got["upstream"])
		}
		if n == largest {
			r.Curves = []benchreport.Curve{
				{Name: "wasilet", X: "devices", Y: "seconds to all plugins", Points: curve("wasilet", secs)},
				{Name: upstreamName, X: "devices", Y: "seconds to all plugins", Points: curve("upstream", secs)},
			}
		}
		benchreport.Record(b, r)
	}
	if w, ok := got["wasilet"][largest]; ok {
		r := benchreport.Result{
			Group: "Agent scale", Metric: fmt.Sprintf("agent RSS per device at %d devices", largest), Unit: "KiB",
			Wasilet: []float64{kib(w)}, BaselineName: upstreamName, Method: method,
			Curves: []benchreport.Curve{
				{Name: "wasilet", X: "devices", Y: "agent KiB per device", Points: curve("wasilet", kib)},
				{Name: upstreamName, X: "devices", Y: "agent KiB per device", Points: curve("upstream", kib)},
			},
		}
		if u, ok := got["upstream"][largest]; ok {
			r.Baseline = []float64{kib(u)}
		} else {
			r.NoBaseline = upstreamMissing(missing, stalled[largest], largest, got["upstream"])
		}
		benchreport.Record(b, r)
		benchreport.Record(b, benchreport.Result{
			Group: "Agent scale", Metric: fmt.Sprintf("API requests per device at %d devices", largest), Unit: "requests",
			Wasilet: []float64{w.callsPerDev}, Method: "client-go's rest_client_requests_total of the agent's /metrics, before and after; settled rate over the next 10 s: " + fmt.Sprintf("%.2f/s", w.settled),
			NoBaseline: "upstream's agent exports only Akri's own metrics (instance_count, discovery_response_*), no count of its API requests",
		})
	}
}

// upstreamScaleMax is the most devices upstream's agent is given: it brings
// up about one device plugin a second (10 devices took 10.6 s here), so
// 1,000 would hold `just bench` for a quarter of an hour.
const upstreamScaleMax = 100

// upstreamMissing says why upstream's agent has no figure at n devices.
func upstreamMissing(missing, stalled string, n int, got map[int]scaleFigures) string {
	if missing != "" {
		return missing
	}
	if stalled != "" {
		return stalled
	}
	if n <= upstreamScaleMax {
		return fmt.Sprintf("upstream's agent was not measured at %d devices (its benchmark failed; see the benchmark log)", n)
	}
	s := fmt.Sprintf("not run past %d devices: upstream's agent brings up about one device plugin a second", upstreamScaleMax)
	if f, ok := got[upstreamScaleMax]; ok {
		s += fmt.Sprintf(" (%d devices took %s in this run)", upstreamScaleMax, f.took.Round(100*time.Millisecond))
	}
	return s
}

// agentScale runs one agent (wasilet's or upstream's) against a fresh node
// with a handler reporting devices devices. For upstream's agent, not
// finishing within upstreamWait is no failure: the second result says what
// it did instead.
func agentScale(b *testing.B, devices int, upstream bool) (scaleFigures, string) {
	env := clustertest.Require(b)
	c := akritest.Client(b, env)
	dir := akritest.ShortDir(b)
	n := nodetest.Start(b, nodetest.Options{Args: []string{"--akri-agent=false"}})
	port, err := cluster.FreePort()
	if err != nil {
		b.Fatal(err)
	}
	var agent *akritest.Proc
	if upstream {
		agent, _ = akritest.StartUpstreamAkri(b, env, n, dir)
	} else {
		agent = akritest.Start(b, "agent", []string{"AGENT_NODE_NAME=" + n.Name, "DISCOVERY_HANDLERS_DIRECTORY=" + dir}, "agent",
			"--kubeconfig", env.AdminKubeconfig,
			"--device-plugins-dir", filepath.Join(n.DataDir, "device-plugins"),
			"--pod-resources-socket", filepath.Join(n.DataDir, "pod-resources", "kubelet.sock"),
			"--metrics-bind-address", fmt.Sprintf("127.0.0.1:%d", port))
	}
	akritest.StartDebugEcho(b, dir, "debugEcho", true)
	ns := env.Namespace(b)
	var descs []string
	for i := range devices {
		descs = append(descs, fmt.Sprintf("dev%04d", i))
	}
	metrics := func() map[string]float64 {
		if upstream {
			return nil
		}
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
	rssBefore := nodetest.RSS(agent.Pid())
	before := metrics()
	// Each run has a Configuration name of its own. Instance names are a
	// hash of it and the device (shared devices), and upstream's agent keys
	// its device plugins by Instance and Configuration name alone across
	// namespaces: an Instance of an earlier run's namespace that is being
	// deleted stops this run's plugin of the same name (seen: all ten
	// plugins of a 10-device run torn down and two never back, after a
	// 1-device run in another namespace).
	cfg := configuration(ns, fmt.Sprintf("scale-%04x", rand.Uint32()&0xffff), "debugEcho", descs, 1, "unused")
	cfg.Spec.BrokerSpec, cfg.Spec.InstanceServiceSpec, cfg.Spec.ConfigurationServiceSpec = nil, nil, nil
	start := time.Now()
	if err := c.Create(context.Background(), cfg); err != nil {
		b.Fatal(err)
	}
	prefix := "akri.sh/" + cfg.Name + "-"
	// The Configuration and its Instances go before the agent stops (it
	// removes its finalizers), so no run leaves Instances behind.
	defer func() {
		_ = c.Delete(context.Background(), cfg)
		if !pollFor(time.Minute, func(ctx context.Context) bool {
			is, err := akritest.Instances(ctx, c, ns, cfg.Name)
			return err == nil && len(is) == 0
		}) {
			b.Logf("the Instances of %s/%s were not deleted within a minute", ns, cfg.Name)
		}
	}()
	count := 0
	allUp := func(ctx context.Context) bool {
		node := n.Object(b)
		count = 0
		for r, q := range node.Status.Allocatable {
			if strings.HasPrefix(string(r), prefix) && q.Value() == 1 {
				count++
			}
		}
		return count == devices
	}
	if upstream {
		if wait := upstreamWait(devices); !pollFor(wait, allUp) {
			return scaleFigures{}, fmt.Sprintf("upstream's agent had %d of %d device plugins allocatable after %s in this run", count, devices, wait)
		}
	} else {
		poll(b, 10*time.Minute, fmt.Sprintf("%d Instances with plugins", devices), allUp)
	}
	f := scaleFigures{took: time.Since(start), callsPerDev: -1}
	f.rssPerDevice = float64(nodetest.RSS(agent.Pid())-rssBefore) / float64(devices)
	if !upstream {
		mid := metrics()
		time.Sleep(10 * time.Second)
		after := metrics()
		var total, idle float64
		for m, v := range mid {
			total += v - before[m]
		}
		for m, v := range after {
			idle += v - mid[m]
		}
		f.callsPerDev, f.settled = total/float64(devices), idle/10
		b.Logf("requests by method %v", diff(mid, before))
	}
	b.Logf("%d devices (upstream %v): all Instances and plugins in %s; agent RSS +%d KiB/device",
		devices, upstream, f.took.Round(time.Millisecond), int64(f.rssPerDevice)>>10)
	return f, ""
}

// upstreamWait is how long upstream's agent is given for n devices: a
// minute plus three times its usual second a plugin.
func upstreamWait(n int) time.Duration { return time.Minute + time.Duration(n)*3*time.Second }

func diff(a, b map[string]float64) map[string]float64 {
	out := map[string]float64{}
	for k, v := range a {
		out[k] = v - b[k]
	}
	return out
}
