package pods

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	statsv1alpha1 "k8s.io/kubelet/pkg/apis/stats/v1alpha1"

	"github.com/wasilet/wasilet/runtime"
)

func TestCPURate(t *testing.T) {
	start := time.Unix(1000, 0)
	var r cpuRate
	// First sample: the average since the run started (half a core).
	if got := r.update(runtime.UsageSample{StartTime: start, Time: start.Add(2 * time.Second), CPU: time.Second}); got != 500_000_000 {
		t.Fatalf("first rate %d", got)
	}
	// Too soon after the previous sample: the last rate again.
	if got := r.update(runtime.UsageSample{StartTime: start, Time: start.Add(2100 * time.Millisecond), CPU: 2 * time.Second}); got != 500_000_000 {
		t.Fatalf("rate within the window %d", got)
	}
	// A full core over the next 2 s.
	if got := r.update(runtime.UsageSample{StartTime: start, Time: start.Add(4 * time.Second), CPU: 3 * time.Second}); got != 1_000_000_000 {
		t.Fatalf("second rate %d", got)
	}
	// Not started yet: no rate, no panic.
	var z cpuRate
	if got := z.update(runtime.UsageSample{Time: start}); got != 0 {
		t.Fatalf("unstarted rate %d", got)
	}
}

func TestPodUsageSums(t *testing.T) {
	now := time.Now()
	c1, m1 := containerStats(now, 100, 10, 1000)
	c2, _ := containerStats(now.Add(time.Second), 50, 5, 0)
	cpu, mem := podUsage([]statsv1alpha1.ContainerStats{
		{Name: "a", CPU: c1, Memory: m1},
		{Name: "b", CPU: c2}, // a component: memory unknown
		{Name: "c"},          // not started by the runtime yet
	})
	if cpu == nil || *cpu.UsageCoreNanoSeconds != 150 || *cpu.UsageNanoCores != 15 || !cpu.Time.Time.Equal(now.Add(time.Second)) {
		t.Fatalf("pod cpu %+v", cpu)
	}
	if mem == nil || *mem.WorkingSetBytes != 1000 || *mem.UsageBytes != 1000 {
		t.Fatalf("pod memory %+v", mem)
	}
	if cpu, mem := podUsage([]statsv1alpha1.ContainerStats{{Name: "c"}}); cpu != nil || mem != nil {
		t.Fatalf("pod without usage: %+v %+v", cpu, mem)
	}
}

func containerStats(t time.Time, cpu, nanoCores, mem uint64) (*statsv1alpha1.CPUStats, *statsv1alpha1.MemoryStats) {
	mt := metav1.NewTime(t)
	return &statsv1alpha1.CPUStats{Time: mt, UsageCoreNanoSeconds: &cpu, UsageNanoCores: &nanoCores},
		&statsv1alpha1.MemoryStats{Time: mt, UsageBytes: &mem, WorkingSetBytes: ptrTo(mem)}
}

// TestStatsWithRealRuntime runs guests through the real wasmtime engine and
// reads their usage from GetStatsSummary and GetMetricsResource while they
// run: the module's memory after allocating 20 MiB and a spinning guest's
// CPU; for the component build CPU only (its memory is not observable).
func TestStatsWithRealRuntime(t *testing.T) {
	forEachRealBuild(t, func(t *testing.T, file string, p *Provider) {
		module := file == "testprog.wasm"
		// A component's linear memory is not observable through the C API
		// (runtime.Usage reports -1), so the component only spins.
		containers := []corev1.Container{ctr("spin", "spin")}
		if module {
			containers = append(containers, ctr("mem", "alloc", "20Mi", ";", "sleep", "1h"))
		}
		pod := testPod("stats", corev1.RestartPolicyNever, containers...)
		p.CreatePod(context.Background(), pod)

		var last *statsv1alpha1.PodStats
		ok := func(ps *statsv1alpha1.PodStats) bool {
			byName := map[string]statsv1alpha1.ContainerStats{}
			for _, c := range ps.Containers {
				byName[c.Name] = c
			}
			spin := byName["spin"]
			if spin.CPU == nil || *spin.CPU.UsageCoreNanoSeconds == 0 || spin.CPU.UsageNanoCores == nil || ps.CPU == nil {
				return false
			}
			if !module {
				return spin.Memory == nil && ps.Memory == nil
			}
			mem := byName["mem"]
			return mem.Memory != nil && *mem.Memory.WorkingSetBytes >= 20<<20 && *mem.Memory.UsageBytes >= 20<<20 &&
				ps.Memory != nil && *ps.Memory.WorkingSetBytes >= *mem.Memory.WorkingSetBytes+*spin.Memory.WorkingSetBytes &&
				*ps.CPU.UsageCoreNanoSeconds >= *spin.CPU.UsageCoreNanoSeconds
		}
		deadline := time.Now().Add(90 * time.Second)
		for {
			s, err := p.GetStatsSummary(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			last = nil
			for i := range s.Pods {
				if s.Pods[i].PodRef.UID == string(pod.UID) {
					last = &s.Pods[i]
				}
			}
			if last != nil && ok(last) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no usage within 90s; last pod stats %s", describe(last))
			}
			time.Sleep(50 * time.Millisecond)
		}

		fams, err := p.GetMetricsResource(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		enc := expfmt.NewEncoder(&buf, expfmt.NewFormat(expfmt.TypeTextPlain))
		for _, f := range fams {
			if err := enc.Encode(f); err != nil {
				t.Fatal(err)
			}
		}
		text := buf.String()
		want := []string{
			"node_cpu_usage_seconds_total ", "node_memory_working_set_bytes ",
			`container_cpu_usage_seconds_total{container="spin",namespace="default",pod="stats"} `,
			`container_start_time_seconds{container="spin",namespace="default",pod="stats"} `,
			`pod_cpu_usage_seconds_total{namespace="default",pod="stats"} `,
			"scrape_error 0",
		}
		if module {
			want = append(want, `container_memory_working_set_bytes{container="mem",namespace="default",pod="stats"} `,
				`pod_memory_working_set_bytes{namespace="default",pod="stats"} `)
		} else if strings.Contains(text, "container_memory_working_set_bytes") {
			t.Errorf("component memory reported though unknown:\n%s", text)
		}
		for _, w := range want {
			if !strings.Contains(text, w) {
				t.Errorf("metrics lack %q:\n%s", w, text)
			}
		}
	})
}

func describe(ps *statsv1alpha1.PodStats) string {
	if ps == nil {
		return "<no pod>"
	}
	var b strings.Builder
	for _, c := range ps.Containers {
		b.WriteString(c.Name + ":")
		if c.CPU != nil {
			b.WriteString(" cpu " + time.Duration(*c.CPU.UsageCoreNanoSeconds).String())
		}
		if c.Memory != nil {
			b.WriteString(" memory " + runtime.FormatBytes(int64(*c.Memory.WorkingSetBytes)))
		}
		b.WriteString("; ")
	}
	return b.String()
}
