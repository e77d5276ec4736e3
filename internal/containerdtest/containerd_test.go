package containerdtest

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/wasilet/wasilet/internal/benchreport"
)

func TestContainerdRunsAPod(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test (runs containerd): skipped with -short")
	}
	c := Start(t, Options{})
	t.Logf("%s, snapshotter %s, registry %s", c.BaselineName(), c.Snapshotter, c.RegistryAddr)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// No CNI config: the network is not ready, host-network pods run anyway.
	st0, err := c.Runtime.Status(ctx, &runtimeapi.StatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, cond := range st0.GetStatus().GetConditions() {
		t.Logf("CRI condition %s=%v %s %s", cond.GetType(), cond.GetStatus(), cond.GetReason(), cond.GetMessage())
	}

	p, err := c.RunPod(ctx, PodOptions{Name: "hello", Args: []string{"exit"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("pod started in %s", p.StartLatency())
	st, err := c.WaitExited(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if st.GetExitCode() != 0 {
		t.Errorf("exit code %d (reason %q, message %q), want 0", st.GetExitCode(), st.GetReason(), st.GetMessage())
	}
	if st.GetLogPath() != p.LogPath {
		t.Errorf("CRI says the log is %s, want %s", st.GetLogPath(), p.LogPath)
	}
	// The CRI log format: <RFC3339Nano> stdout F <line>.
	var log string
	for deadline := time.Now().Add(10 * time.Second); ; {
		b, _ := os.ReadFile(p.LogPath)
		log = string(b)
		if strings.Contains(log, " stdout F "+HelloLine+"\n") || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(log, " stdout F "+HelloLine+"\n") {
		t.Errorf("log %s = %q, want a line %q", p.LogPath, log, "<time> stdout F "+HelloLine)
	}
	if err := c.RemovePod(ctx, p); err != nil {
		t.Fatal(err)
	}
}

// podsEnv sets how many pods the benchmarks start.
const podsEnv = "WASILET_BENCH_PODS"

// BenchmarkContainerdPodStart records the container baseline's pod start
// latency, serial and burst, image cached and cold, on its own (wasilet's
// side is for wasilet's benchmarks, which call PodStart themselves).
func BenchmarkContainerdPodStart(b *testing.B) {
	c := Start(b, Options{})
	n := benchreport.Size(podsEnv, 100, 3)
	for _, m := range []struct {
		name        string
		burst, cold bool
	}{
		{"serial-cached", false, false},
		{"burst-cached", true, false},
		{"serial-cold", false, true},
		{"burst-cold", true, true},
	} {
		b.Run(m.name, func(b *testing.B) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
			defer cancel()
			var all []time.Duration
			for b.Loop() {
				d, err := c.PodStart(ctx, PodStartOptions{Pods: n, Burst: m.burst, Cold: m.cold})
				if err != nil {
					b.Fatal(err)
				}
				all = append(all, d...)
			}
			how := "one after the other"
			if m.burst {
				how = "all at once"
			}
			img := "image cached"
			if m.cold {
				img = "image pulled (fresh tag, own layer, local registry)"
			}
			benchreport.Record(b, benchreport.Result{
				Group:        "Pod start (container baseline only)",
				Metric:       "pod start, " + m.name,
				Unit:         "ms",
				Baseline:     benchreport.MsOf(all),
				BaselineName: c.BaselineName(),
				Versions:     c.Versions(),
				Method: "CRI as the kubelet calls it (RunPodSandbox with host network, ImageStatus/PullImage, CreateContainer, StartContainer) " +
					"until ContainerStatus says RUNNING; " + strings.Join([]string{how, img}, ", ") + "." + notes(c),
			})
		})
	}
}

// BenchmarkContainerdDensity records the container baseline's cost of
// running N sleeping pods.
func BenchmarkContainerdDensity(b *testing.B) {
	c := Start(b, Options{})
	n := benchreport.Size(podsEnv, 100, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	var d DensityResult
	for b.Loop() {
		var err error
		if d, err = c.Density(ctx, DensityOptions{Pods: n}); err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("%s: %s", c.BaselineName(), d)
	t := d.Total()
	method := "containerd, its shims and the containers' processes (pause and workload), from /proc; " +
		"idle CPU is the utime+stime of containerd and the shims over the window."
	for _, r := range []struct {
		metric, unit string
		v            float64
	}{
		{"RSS (sum of VmRSS)", "MiB", mib(t.RSS)},
		{"RSS per pod", "MiB", mib(t.RSS) / float64(d.Pods)},
		{"PSS (sum of Pss)", "MiB", mib(t.PSS)},
		{"OS threads", "threads", float64(t.Threads)},
		{"idle CPU", "% of a core", 100 * d.IdleCPU},
	} {
		benchreport.Record(b, benchreport.Result{
			Group:        "Density (container baseline only)",
			Metric:       fmt.Sprintf("%s, %d pods", r.metric, d.Pods),
			Unit:         r.unit,
			Baseline:     []float64{r.v},
			BaselineName: c.BaselineName(),
			Versions:     c.Versions(),
			Method:       method + notes(c),
		})
	}
}

// notes are the machine's differences from a stock node, for a Method.
func notes(c *Containerd) string {
	if len(c.Notes) == 0 {
		return ""
	}
	return " Here: " + strings.Join(c.Notes, "; ") + "."
}
