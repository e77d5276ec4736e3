package pods

import (
	"bytes"
	"context"
	"os"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	statsv1alpha1 "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
)

// GetStatsSummary reports the node (this process: CPU time and resident
// memory, all guests included) and one entry per pod with its running
// containers. Per-container CPU and memory usage are not reported: guests
// share the process and the runtime exposes no per-guest accounting, so the
// fields stay empty rather than invented (metrics-server then shows the node
// but no pod usage).
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
	for _, pi := range p.Snapshot() {
		ps := statsv1alpha1.PodStats{
			PodRef:    statsv1alpha1.PodReference{Name: pi.Name, Namespace: pi.Namespace, UID: pi.UID},
			StartTime: metav1.NewTime(pi.CreatedAt),
		}
		for _, c := range pi.Containers {
			if c.State != phaseRunning {
				continue
			}
			ps.Containers = append(ps.Containers, statsv1alpha1.ContainerStats{Name: c.Name, StartTime: metav1.NewTime(c.StartedAt)})
		}
		s.Pods = append(s.Pods, ps)
	}
	return s, nil
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
