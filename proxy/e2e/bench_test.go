package e2e

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"

	akri "github.com/wasilet/wasilet/agent/apis/akri/v0"
	"github.com/wasilet/wasilet/internal/akritest"
	"github.com/wasilet/wasilet/internal/nodetest"
)

// BenchmarkScenario times the reference scenario as its user sees it:
// Configuration applied (kubectl apply) → the broker's line visible in
// kubectl logs, over $WASILET_BENCH_AKRI_RUNS runs (default 10), for wasilet
// (proxy on fsnotify, handler checking every 100 ms) and for the original's
// timing reproduced by configuration (proxy reading out.out every 4 s,
// handler every 5 s), in the same run. Target: ≤ 1 s and ≥ 10× faster.
func BenchmarkScenario(b *testing.B) {
	runs := 10
	if n, err := strconv.Atoi(os.Getenv("WASILET_BENCH_AKRI_RUNS")); err == nil && n > 0 {
		runs = n
	}
	modes := []struct {
		name, proxyPoll, handlerPoll string
	}{
		{"wasilet", "", ""},
		{"original-timing", "4s", "5s"},
	}
	p50 := map[string]time.Duration{}
	for _, m := range modes {
		b.Run(m.name, func(b *testing.B) {
			var extra []string
			if m.proxyPoll != "" {
				extra = []string{"--poll", m.proxyPoll}
			}
			s := setupWith(b, extra)
			s.handlerPodEnv(b, m.handlerPoll)
			akritest.Warm(b, s.c, s.node.Name, s.ns, s.broker)
			var ds []time.Duration
			for b.Loop() {
				for i := range runs {
					// A new device each run: the handler must answer a
					// request it has not seen (as on a first apply).
					name, device := fmt.Sprintf("run-%d", i), fmt.Sprintf("%s-%d", m.name, i)
					line := fmt.Sprintf("Pod is running and using debugEcho device named: %q", device)
					start := time.Now()
					s.configuration(b, name, device)
					pod := s.node.Name + "-" + akri.InstanceName(name, device, true, "") + "-pod"
					for {
						out, _ := s.env.Kubectl(context.Background(), "logs", "-n", s.ns, pod)
						if strings.HasPrefix(string(out), line) {
							break
						}
						if time.Since(start) > 2*time.Minute {
							b.Fatalf("%s: no broker line after 2 min", name)
						}
						time.Sleep(10 * time.Millisecond)
					}
					ds = append(ds, time.Since(start))
					if d := time.Since(start); d > 3*time.Second && os.Getenv("WASILET_BENCH_DEBUG") != "" {
						b.Logf("slow run %s (%s); proxy log:\n%s\nnode log:\n%s", name, d, nodetest.Tail(s.proxy.Log(), 40), nodetest.Tail(s.node.Log(), 200))
					}
					if out, err := s.env.Kubectl(context.Background(), "delete", "-n", s.ns, "akric", name, "--wait=true"); err != nil {
						b.Fatalf("%v: %s", err, out)
					}
					s.waitGone(b, pod)
				}
			}
			p50[m.name] = akritest.Percentile(ds, 50)
			b.ReportMetric(0, "ns/op")
			b.ReportMetric(akritest.Ms(akritest.Percentile(ds, 50)), "applied→log-p50-ms")
			b.ReportMetric(akritest.Ms(akritest.Percentile(ds, 99)), "applied→log-p99-ms")
			b.ReportMetric(float64(len(ds)), "runs")
			b.Logf("%s: Configuration applied → broker log line: %v", m.name, ds)
		})
	}
	if a, o := p50["wasilet"], p50["original-timing"]; a > 0 && o > 0 {
		b.Logf("p50 speed-up over the original's timing: %.1f×", float64(o)/float64(a))
	}
}

func (s *scenario) waitGone(b *testing.B, pod string) {
	b.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		var p corev1.Pod
		if apierrors.IsNotFound(s.c.Get(context.Background(), types.NamespacedName{Namespace: s.ns, Name: pod}, &p)) {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("broker %s still there", pod)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
