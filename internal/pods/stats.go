package pods

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	statsv1alpha1 "k8s.io/kubelet/pkg/apis/stats/v1alpha1"

	"github.com/wasilet/wasilet/runtime"
)

// GetStatsSummary reports the node (this process: CPU time and resident
// memory, all guests included) and one entry per pod with its running
// containers and their usage, from the runtime's per-run accounting
// (runtime.Usage):
//   - CPU: usageCoreNanoSeconds is the CPU time of the guest's thread since
//     the container (re)started; usageNanoCores the rate between this
//     sample and the previous one kept for the run (at least minRateWindow
//     apart; the first is the average since the start);
//   - memory: usageBytes and workingSetBytes are the guest's linear memory,
//     what a Wasm guest can touch (wasmtime reserves address space beyond
//     it, but that is not usage). A component's memory is not observable
//     through wasmtime's C API: its Memory stays empty.
//
// Pod CPU and memory are the sums over its running containers (memory only
// when some container's is known).
func (p *Provider) GetStatsSummary(ctx context.Context) (*statsv1alpha1.Summary, error) {
	now := metav1.NewTime(time.Now())
	s := &statsv1alpha1.Summary{
		Node: statsv1alpha1.NodeStats{
			NodeName:  p.cfg.NodeName,
			StartTime: metav1.NewTime(p.startTime),
		},
	}
	if cpu, ok := processCPU(); ok {
		s.Node.CPU = &statsv1alpha1.CPUStats{Time: now, UsageCoreNanoSeconds: &cpu}
	}
	if rss, ok := processRSS(); ok {
		s.Node.Memory = &statsv1alpha1.MemoryStats{Time: now, UsageBytes: &rss, WorkingSetBytes: &rss, RSSBytes: &rss}
	}
	runs := p.activeRuns()
	for _, pi := range p.Snapshot() {
		ps := statsv1alpha1.PodStats{
			PodRef:    statsv1alpha1.PodReference{Name: pi.Name, Namespace: pi.Namespace, UID: pi.UID},
			StartTime: metav1.NewTime(pi.CreatedAt),
		}
		for _, c := range pi.Containers {
			if c.State != phaseRunning {
				continue
			}
			cs := statsv1alpha1.ContainerStats{Name: c.Name, StartTime: metav1.NewTime(c.StartedAt)}
			if r := runs[pi.UID][c.Name]; r != nil && r.usage != nil {
				cs.CPU, cs.Memory = containerUsage(r)
			}
			ps.Containers = append(ps.Containers, cs)
		}
		ps.CPU, ps.Memory = podUsage(ps.Containers)
		s.Pods = append(s.Pods, ps)
	}
	return s, nil
}

// activeRuns returns the runs in progress by pod UID and container name.
func (p *Provider) activeRuns() map[string]map[string]*activeRun {
	p.mu.Lock()
	ws := make([]*podWorker, 0, len(p.workers))
	for _, w := range p.workers {
		ws = append(ws, w)
	}
	p.mu.Unlock()
	out := make(map[string]map[string]*activeRun, len(ws))
	for _, w := range ws {
		w.mu.Lock()
		if len(w.runs) > 0 {
			m := make(map[string]*activeRun, len(w.runs))
			for name, r := range w.runs {
				m[name] = r
			}
			out[string(w.uid)] = m
		}
		w.mu.Unlock()
	}
	return out
}

// containerUsage samples one run; nothing before the runtime started it.
func containerUsage(r *activeRun) (*statsv1alpha1.CPUStats, *statsv1alpha1.MemoryStats) {
	u := r.usage.Sample()
	if u.StartTime.IsZero() {
		return nil, nil
	}
	t := metav1.NewTime(u.Time)
	cpu := uint64(max(u.CPU, 0))
	nanoCores := r.cpu.update(u)
	cs := &statsv1alpha1.CPUStats{Time: t, UsageCoreNanoSeconds: &cpu, UsageNanoCores: &nanoCores}
	if u.Memory < 0 {
		return cs, nil
	}
	mem := uint64(u.Memory)
	return cs, &statsv1alpha1.MemoryStats{Time: t, UsageBytes: &mem, WorkingSetBytes: ptrTo(mem)}
}

// podUsage sums the usage of a pod's containers.
func podUsage(cs []statsv1alpha1.ContainerStats) (*statsv1alpha1.CPUStats, *statsv1alpha1.MemoryStats) {
	var cpu *statsv1alpha1.CPUStats
	var mem *statsv1alpha1.MemoryStats
	for _, c := range cs {
		if c.CPU != nil {
			if cpu == nil {
				cpu = &statsv1alpha1.CPUStats{Time: c.CPU.Time, UsageCoreNanoSeconds: ptrTo(uint64(0)), UsageNanoCores: ptrTo(uint64(0))}
			}
			*cpu.UsageCoreNanoSeconds += *c.CPU.UsageCoreNanoSeconds
			*cpu.UsageNanoCores += *c.CPU.UsageNanoCores
			if c.CPU.Time.After(cpu.Time.Time) {
				cpu.Time = c.CPU.Time
			}
		}
		if c.Memory != nil {
			if mem == nil {
				mem = &statsv1alpha1.MemoryStats{Time: c.Memory.Time, UsageBytes: ptrTo(uint64(0)), WorkingSetBytes: ptrTo(uint64(0))}
			}
			*mem.UsageBytes += *c.Memory.UsageBytes
			*mem.WorkingSetBytes += *c.Memory.WorkingSetBytes
			if c.Memory.Time.After(mem.Time.Time) {
				mem.Time = c.Memory.Time
			}
		}
	}
	return cpu, mem
}

func ptrTo[T any](v T) *T { return &v }

// minRateWindow is the shortest interval usageNanoCores is computed over;
// scrapes closer together than that get the last rate again, so that
// frequent scrapers do not turn the rate into noise.
const minRateWindow = time.Second

// cpuRate turns a run's cumulative CPU time into a rate in nanocores,
// keeping the previous sample.
type cpuRate struct {
	mu        sync.Mutex
	prevTime  time.Time     // zero: none yet (the run's start is used)
	prevCPU   time.Duration // CPU time at prevTime
	nanoCores uint64
	have      bool
}

func (r *cpuRate) update(s runtime.UsageSample) uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.prevTime.IsZero() {
		r.prevTime, r.prevCPU = s.StartTime, 0
	}
	dt := s.Time.Sub(r.prevTime)
	if r.prevTime.IsZero() || dt <= 0 || (r.have && dt < minRateWindow) {
		return r.nanoCores
	}
	used := max(s.CPU-r.prevCPU, 0)
	r.nanoCores = uint64(float64(used) / float64(dt) * 1e9)
	r.prevTime, r.prevCPU, r.have = s.Time, s.CPU, true
	return r.nanoCores
}

// GetMetricsResource serves the kubelet's /metrics/resource metrics that
// metrics-server reads, from the same samples as GetStatsSummary: node_*
// for this process, container_* for each running container with known
// usage (labels container, pod, namespace) and pod_* for their sums.
// container_memory_working_set_bytes is left out where memory is unknown
// (components).
func (p *Provider) GetMetricsResource(ctx context.Context) ([]*dto.MetricFamily, error) {
	s, err := p.GetStatsSummary(ctx)
	if err != nil {
		return nil, err
	}
	fams := map[string]*dto.MetricFamily{}
	var order []string
	add := func(name, help string, typ dto.MetricType, value float64, t metav1.Time, labels ...string) {
		f, ok := fams[name]
		if !ok {
			f = &dto.MetricFamily{Name: ptrTo(name), Help: ptrTo(help), Type: typ.Enum()}
			fams[name] = f
			order = append(order, name)
		}
		m := &dto.Metric{}
		if !t.IsZero() {
			m.TimestampMs = ptrTo(t.UnixMilli())
		}
		for i := 0; i+1 < len(labels); i += 2 {
			m.Label = append(m.Label, &dto.LabelPair{Name: ptrTo(labels[i]), Value: ptrTo(labels[i+1])})
		}
		if typ == dto.MetricType_COUNTER {
			m.Counter = &dto.Counter{Value: ptrTo(value)}
		} else {
			m.Gauge = &dto.Gauge{Value: ptrTo(value)}
		}
		f.Metric = append(f.Metric, m)
	}
	const (
		cpuHelp   = "Cumulative cpu time consumed by the %s in core-seconds"
		memHelp   = "Current working set of the %s in bytes"
		startHelp = "Start time of the container since unix epoch in seconds"
	)
	if c := s.Node.CPU; c != nil && c.UsageCoreNanoSeconds != nil {
		add("node_cpu_usage_seconds_total", fmt.Sprintf(cpuHelp, "node"), dto.MetricType_COUNTER, float64(*c.UsageCoreNanoSeconds)/1e9, c.Time)
	}
	if m := s.Node.Memory; m != nil && m.WorkingSetBytes != nil {
		add("node_memory_working_set_bytes", fmt.Sprintf(memHelp, "node"), dto.MetricType_GAUGE, float64(*m.WorkingSetBytes), m.Time)
	}
	for _, ps := range s.Pods {
		for _, c := range ps.Containers {
			labels := []string{"container", c.Name, "namespace", ps.PodRef.Namespace, "pod", ps.PodRef.Name}
			if c.CPU != nil {
				add("container_cpu_usage_seconds_total", fmt.Sprintf(cpuHelp, "container"), dto.MetricType_COUNTER, float64(*c.CPU.UsageCoreNanoSeconds)/1e9, c.CPU.Time, labels...)
			}
			if c.Memory != nil {
				add("container_memory_working_set_bytes", fmt.Sprintf(memHelp, "container"), dto.MetricType_GAUGE, float64(*c.Memory.WorkingSetBytes), c.Memory.Time, labels...)
			}
			if c.CPU != nil || c.Memory != nil {
				add("container_start_time_seconds", startHelp, dto.MetricType_GAUGE, float64(c.StartTime.UnixNano())/1e9, c.StartTime, labels...)
			}
		}
		labels := []string{"namespace", ps.PodRef.Namespace, "pod", ps.PodRef.Name}
		if ps.CPU != nil {
			add("pod_cpu_usage_seconds_total", fmt.Sprintf(cpuHelp, "pod"), dto.MetricType_COUNTER, float64(*ps.CPU.UsageCoreNanoSeconds)/1e9, ps.CPU.Time, labels...)
		}
		if ps.Memory != nil {
			add("pod_memory_working_set_bytes", fmt.Sprintf(memHelp, "pod"), dto.MetricType_GAUGE, float64(*ps.Memory.WorkingSetBytes), ps.Memory.Time, labels...)
		}
	}
	add("scrape_error", "1 if there was an error while getting container metrics, 0 otherwise", dto.MetricType_GAUGE, 0, metav1.Time{})
	out := make([]*dto.MetricFamily, 0, len(order))
	for _, name := range order {
		out = append(out, fams[name])
	}
	return out, nil
}

// processCPU is the process's user+system CPU time in nanoseconds.
func processCPU() (uint64, bool) {
	data, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return 0, false
	}
	// Fields after the command name (which may hold spaces) in parentheses.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 13 {
		return 0, false
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	const clkTck = 100 // USER_HZ on Linux
	return (ut + st) * uint64(time.Second/clkTck), true
}

// processRSS is the process's resident set size in bytes.
func processRSS() (uint64, bool) {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(v)
			if len(f) == 0 {
				return 0, false
			}
			kb, err := strconv.ParseUint(f[0], 10, 64)
			if err != nil {
				return 0, false
			}
			return kb * 1024, true
		}
	}
	return 0, false
}
