package nodebench

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/wasilet/wasilet/internal/benchreport"
	"github.com/wasilet/wasilet/internal/clustertest"
	"github.com/wasilet/wasilet/internal/containerdtest"
)

// containerd starts the container baseline for b, or says why it cannot
// run here (an *UnavailableError's reason; a harness failure fails b).
func containerd(b *testing.B, env *clustertest.Env) (*containerdtest.Containerd, string) {
	b.Helper()
	c, err := containerdtest.TryStart(b, containerdtest.Options{RegistryAddr: env.RegistryAddr})
	var u *containerdtest.UnavailableError
	switch {
	case errors.As(err, &u):
		return nil, u.Reason
	case err != nil:
		b.Fatalf("container baseline: %v", err)
	}
	return c, ""
}

// method is the container baseline's part of a record's method.
func method(c *containerdtest.Containerd) string {
	s := "Baseline: a private containerd driven through the CRI as the kubelet calls it (RunPodSandbox with host network and the RuntimeDefault seccomp profile, ImageStatus/PullImage, CreateContainer, StartContainer, then ContainerStatus polled until RUNNING), " +
		"running a minimal static Linux binary; pause and hello images built locally and served by the same registry. It does less than wasilet's path: no API server, no scheduler, no status write."
	if len(c.Notes) > 0 {
		s += " On this machine: " + strings.Join(c.Notes, "; ") + "."
	}
	return s
}

// podStartBaseline is the container side of BenchmarkPodStart.
type podStartBaseline struct {
	name, missing, method string
	versions              map[string]string
	serial, burst, cold   []time.Duration
}

func containerPodStarts(b *testing.B, env *clustertest.Env, count, cold int) podStartBaseline {
	c, missing := containerd(b, env)
	if c == nil {
		return podStartBaseline{missing: missing}
	}
	out := podStartBaseline{name: c.BaselineName(), versions: c.Versions(), method: method(c)}
	ctx := context.Background()
	for _, m := range []struct {
		dst  *[]time.Duration
		opts containerdtest.PodStartOptions
	}{
		{&out.serial, containerdtest.PodStartOptions{Pods: count}},
		{&out.burst, containerdtest.PodStartOptions{Pods: count, Burst: true}},
		{&out.cold, containerdtest.PodStartOptions{Pods: cold, Cold: true}},
	} {
		ds, err := c.PodStart(ctx, m.opts)
		if err != nil {
			b.Fatalf("container baseline %+v: %v", m.opts, err)
		}
		*m.dst = ds
	}
	return out
}

// densityBaseline is the container side of BenchmarkDensity.
type densityBaseline struct {
	name, missing, method                   string
	versions                                map[string]string
	pods                                    int
	rssPerPod, threadsPerPod, idleCPUPer100 *float64
}

func containerDensity(b *testing.B, env *clustertest.Env) densityBaseline {
	c, missing := containerd(b, env)
	if c == nil {
		return densityBaseline{missing: missing}
	}
	pods := benchreport.Size("WASILET_BENCH_CONTAINER_PODS", 100, 3)
	d, err := c.Density(context.Background(), containerdtest.DensityOptions{Pods: pods, Window: 30 * time.Second})
	if err != nil {
		b.Fatalf("container baseline density: %v", err)
	}
	b.Logf("container baseline: %v", d)
	rss := float64(d.Shims.RSS+d.Containers.RSS) / (1 << 20) / float64(pods)
	threads := float64(d.Shims.Threads+d.Containers.Threads) / float64(pods)
	cpu := 100 * d.IdleCPU * 100 / float64(pods)
	return densityBaseline{
		name: fmt.Sprintf("%d container pods, %s", pods, c.BaselineName()), versions: c.Versions(), pods: pods,
		method:    method(c) + fmt.Sprintf(" Container figures: %d sleeping pods; per pod, the shims' and the containers' (pause + hello) VmRSS and threads (containerd's own %.0f MiB not counted); idle CPU of containerd and the shims over %s.", pods, float64(d.Containerd.RSS)/(1<<20), d.Window),
		rssPerPod: &rss, threadsPerPod: &threads, idleCPUPer100: &cpu,
	}
}
