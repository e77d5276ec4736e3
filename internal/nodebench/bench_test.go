package nodebench

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/wasilet/wasilet/internal/clustertest"
	"github.com/wasilet/wasilet/internal/nodetest"
)

func TestMain(m *testing.M) { nodetest.Main(m) }

// PodsEnv overrides the number of pods per batch (default 100).
const PodsEnv = "WASILET_BENCH_PODS"

const defaultPods = 100

// serialBudget bounds the serial mode: once it has run this long, no new pod
// is started and the figures cover the pods measured so far (a slow node
// must not make `just bench` time out).
const serialBudget = 3 * time.Minute

// settle is how long the RSS benchmark watches the node's memory for a
// reading, sampling every settleEvery: the reading is the sample with the
// smallest VmRSS, the one least inflated by garbage the Go heap has not
// collected yet.
const (
	settle      = 10 * time.Second
	settleEvery = 250 * time.Millisecond
)

func settledMem(pid int) (memStatus, error) {
	var best memStatus
	for deadline := time.Now().Add(settle); ; {
		m, err := readMem(pid)
		if err != nil {
			return m, err
		}
		if best.vmRSS == 0 || m.vmRSS < best.vmRSS {
			best = m
		}
		if time.Now().After(deadline) {
			return best, nil
		}
		time.Sleep(settleEvery)
	}
}

type kind struct{ name, file string }

var kinds = []kind{{"module", "testprog.wasm"}, {"component", "testprog.component.wasm"}}

// stayArgs keep a testprog container running for the whole benchmark.
var stayArgs = []string{"sleep", "1h"}

func podCount(b *testing.B) int {
	b.Helper()
	s := os.Getenv(PodsEnv)
	if s == "" {
		return defaultPods
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		b.Fatalf("%s=%q: want a positive number of pods", PodsEnv, s)
	}
	return n
}

var pushed sync.Map // kind name → image reference

// testprog pushes the test program of kind k to the cluster registry (once
// per test binary) and returns its reference.
func testprog(b *testing.B, env *clustertest.Env, k kind) string {
	b.Helper()
	file := nodetest.WasmFile(b, k.file)
	if ref, ok := pushed.Load(k.name); ok {
		return ref.(string)
	}
	ref := nodetest.PushWasm(b, env, file, "nodebench-testprog-"+k.name+":v1")
	pushed.Store(k.name, ref)
	return ref
}

// warm runs one pod of ref to completion on n, so the image is in the node's
// content store and the program in its compiled cache, then deletes it.
func warm(b *testing.B, n *nodetest.Node, ns, ref string) {
	b.Helper()
	start := time.Now()
	p := n.Pod(ns, "warm", ref, func(p *corev1.Pod) {
		p.Spec.RestartPolicy = corev1.RestartPolicyNever
		p.Spec.Containers[0].Args = []string{"hello"}
	})
	n.CreatePod(b, p)
	n.WaitPodPhase(b, ns, "warm", corev1.PodSucceeded, 3*time.Minute)
	b.Logf("warm-up pod (pull + compile + run) done in %s", time.Since(start).Round(time.Millisecond))
	deleteAll(b, n.Env.Client, ns, 1)
}

// deleteAll deletes every pod of ns and waits until they are gone (the node
// stops the guests and removes the objects).
func deleteAll(b *testing.B, client kubernetes.Interface, ns string, count int) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute+time.Duration(count)*time.Second)
	defer cancel()
	if err := client.CoreV1().Pods(ns).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil {
		b.Fatalf("delete pods in %s: %v", ns, err)
	}
	for {
		list, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err == nil && len(list.Items) == 0 {
			return
		}
		select {
		case <-ctx.Done():
			left := "?"
			if list != nil {
				left = strconv.Itoa(len(list.Items))
			}
			b.Fatalf("pods of %s not gone after deletion: %s left (%v)", ns, left, err)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// createPods creates the pods with 16 concurrent creators, registering each
// with r just before its Create call.
// startPods creates pods and waits, up to timeout, until r has seen each
// of them running; on failure it stops b with the tail of the node's log.
func startPods(b *testing.B, n *nodetest.Node, r *recorder, pods []*corev1.Pod, timeout time.Duration) {
	b.Helper()
	startPodsOn(b, n.Env.Client, func() string { return tail(n.Log(), 30) }, r, pods, timeout)
}

// startPodsOn is startPods for any node: logs is the tail of its log.
func startPodsOn(b *testing.B, client kubernetes.Interface, logs func() string, r *recorder, pods []*corev1.Pod, timeout time.Duration) {
	b.Helper()
	if err := createPods(context.Background(), client, r, pods); err != nil {
		b.Fatal(err)
	}
	names := make([]string, len(pods))
	for i, p := range pods {
		names[i] = p.Name
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := r.wait(ctx, names...); err != nil {
		b.Fatalf("%v\nnode log:\n%s", err, logs())
	}
}

// batchTimeout is how long a batch of pods may take to start.
func batchTimeout(pods int) time.Duration { return 5*time.Minute + time.Duration(pods)*2*time.Second }

func createPods(ctx context.Context, client kubernetes.Interface, r *recorder, pods []*corev1.Pod) error {
	work := make(chan *corev1.Pod)
	errs := make(chan error, len(pods))
	var wg sync.WaitGroup
	for range min(16, len(pods)) {
		wg.Go(func() {
			for p := range work {
				r.expect(p.Name)
				if _, err := client.CoreV1().Pods(p.Namespace).Create(ctx, p, metav1.CreateOptions{}); err != nil {
					errs <- fmt.Errorf("create pod %s/%s: %w", p.Namespace, p.Name, err)
				}
			}
		})
	}
	for _, p := range pods {
		work <- p
	}
	close(work)
	wg.Wait()
	close(errs)
	return <-errs // nil when closed and empty
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown (" + err.Error() + ")"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return strings.TrimSpace(string(b))
	}
	return strings.Join(f[:3], " ")
}

// BenchmarkScheduledToRunning measures, for pods created on one node, the
// time from the watch seeing a pod bound to the watch seeing it Running.
// See the package documentation.
func BenchmarkScheduledToRunning(b *testing.B) {
	pods := podCount(b)
	n := nodetest.Start(b, nodetest.Options{})
	for _, k := range kinds {
		b.Run(k.name, func(b *testing.B) {
			ref := testprog(b, n.Env, k)
			ns := n.Env.Namespace(b)
			warm(b, n, ns, ref)
			// Serial first: it should see a quiet node, and a burst leaves
			// the node busy (deleting 100 pods) for a while after its pods
			// are gone.
			for _, mode := range []string{"serial", "burst"} {
				b.Run(mode, func(b *testing.B) { benchLatency(b, n, ns, ref, mode, pods) })
			}
		})
	}
}

func benchLatency(b *testing.B, n *nodetest.Node, ns, ref, mode string, pods int) {
	load := loadavg()
	client := n.Env.Client
	r, err := watchPods(context.Background(), client, ns)
	if err != nil {
		b.Fatal(err)
	}
	defer r.stop()
	var all []string
	var elapsed time.Duration
	iter := 0
	for b.Loop() {
		iter++
		objs := make([]*corev1.Pod, pods)
		names := make([]string, pods)
		for i := range objs {
			names[i] = fmt.Sprintf("%s-%d-%03d", mode, iter, i)
			objs[i] = n.Pod(ns, names[i], ref, func(p *corev1.Pod) { p.Spec.Containers[0].Args = stayArgs })
		}
		start := time.Now()
		switch mode {
		case "serial":
			for i, p := range objs {
				if time.Since(start) > serialBudget {
					b.Logf("serial budget of %s spent: stopped after %d of %d pods", serialBudget, i, pods)
					names = names[:i]
					break
				}
				startPods(b, n, r, []*corev1.Pod{p}, 2*time.Minute)
			}
		default:
			startPods(b, n, r, objs, batchTimeout(pods))
		}
		elapsed += time.Since(start)
		all = append(all, names...)
		b.StopTimer()
		deleteAll(b, client, ns, len(names))
		b.StartTimer()
	}
	toScheduled, toRunning, total := r.latencies(all)
	s := summarize(toRunning)
	b.ReportMetric(ms(s.p50), "p50-ms")
	b.ReportMetric(ms(s.p99), "p99-ms")
	b.ReportMetric(ms(s.max), "max-ms")
	b.ReportMetric(float64(len(all))/elapsed.Seconds(), "pods/s")
	// At most 10 lines survive in the benchmark's output.
	b.Logf("%d pods in %d batch(es) of %d (%s), %.1f pods/s; load average %s at start, %s at end",
		len(all), iter, pods, mode, float64(len(all))/elapsed.Seconds(), load, loadavg())
	b.Logf("Scheduled → Running: %v [%s]", s, histogram(toRunning))
	b.Logf("Created → Scheduled: %v", summarize(toScheduled))
	b.Logf("Created → Running:   %v", summarize(total))
}

// BenchmarkRSSPerPod measures the node process's resident memory per
// running pod. See the package documentation.
func BenchmarkRSSPerPod(b *testing.B) {
	pods := podCount(b)
	for _, k := range kinds {
		b.Run(k.name, func(b *testing.B) {
			n := nodetest.Start(b, nodetest.Options{})
			pid := n.Pid()
			if pid == 0 {
				b.Fatalf("node %s is not running", n.Name)
			}
			ref := testprog(b, n.Env, k)
			ns := n.Env.Namespace(b)
			warm(b, n, ns, ref)
			benchRSS(b, n, pid, ns, ref, pods)
		})
	}
}

func benchRSS(b *testing.B, n *nodetest.Node, pid int, ns, ref string, pods int) {
	load := loadavg()
	client := n.Env.Client
	r, err := watchPods(context.Background(), client, ns)
	if err != nil {
		b.Fatal(err)
	}
	defer r.stop()
	var perPod memStatus // sums of (with N pods − with none) / N, in KB
	var before, after memStatus
	iter := 0
	// The timer runs through the settle times, so that with the default
	// -benchtime one iteration is enough: a second one would start from a
	// heap that has held N pods.
	for b.Loop() {
		iter++
		if before, err = settledMem(pid); err != nil {
			b.Fatal(err)
		}
		objs := make([]*corev1.Pod, pods)
		names := make([]string, pods)
		for i := range objs {
			names[i] = fmt.Sprintf("rss-%d-%03d", iter, i)
			objs[i] = n.Pod(ns, names[i], ref, func(p *corev1.Pod) { p.Spec.Containers[0].Args = stayArgs })
		}
		startPods(b, n, r, objs, batchTimeout(pods))
		if after, err = settledMem(pid); err != nil {
			b.Fatal(err)
		}
		perPod = perPod.add(after.sub(before).div(int64(pods)))
		b.Logf("iteration %d: with 0 pods %v; with %d running pods %v", iter, before, pods, after)
		b.StopTimer()
		deleteAll(b, client, ns, pods)
		b.StartTimer()
	}
	perPod = perPod.div(int64(iter))
	// ns/op would be the time to start the pods, which the other benchmark
	// reports; hide it here.
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(float64(perPod.vmRSS), "rss-KB/pod")
	b.ReportMetric(float64(before.vmRSS)/1024, "rss0-MB")
	b.ReportMetric(float64(after.vmRSS)/1024, "rssN-MB")
	b.Logf("per running pod (N=%d, %d iteration(s)): VmRSS %d KB = RssAnon %d KB + RssShmem %d KB + RssFile %d KB; load average %s at start, %s at end",
		pods, iter, perPod.vmRSS, perPod.rssAnon, perPod.rssShmem, perPod.rssFile, load, loadavg())
}

func tail(s string, lines int) string {
	ls := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(ls) > lines {
		ls = ls[len(ls)-lines:]
	}
	return strings.Join(ls, "\n")
}
