package nodebench

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

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

// kubelet joins the upstream kubelet on c to env's cluster, or says why it
// cannot run here.
func kubelet(b *testing.B, env *clustertest.Env, c *containerdtest.Containerd) (*containerdtest.Kubelet, string) {
	b.Helper()
	k, err := containerdtest.StartKubelet(b, env, c)
	var u *containerdtest.UnavailableError
	switch {
	case errors.As(err, &u):
		return nil, u.Reason
	case err != nil:
		return nil, "the upstream kubelet did not become a Ready node here: " + err.Error()
	}
	return k, ""
}

// criMethod is the CRI-only baseline's part of a record's method.
func criMethod(c *containerdtest.Containerd) string {
	s := "Baseline: a private containerd driven through the CRI as the kubelet calls it (RunPodSandbox with host network and the RuntimeDefault seccomp profile, ImageStatus/PullImage, CreateContainer, StartContainer, then ContainerStatus polled until RUNNING), " +
		"running a minimal static Linux binary; pause and hello images built locally and served by the same registry. It does less than wasilet's path: no API server, no scheduler, no status write."
	return s + notes(c)
}

// kubeletMethod is the kubelet baseline's part of a record's method.
func kubeletMethod(k *containerdtest.Kubelet) string {
	return fmt.Sprintf("Baseline: the upstream kubelet %s joined to the same control plane as a second node, on a private containerd (CRI) with runc, "+
		"measured on the same kind of watch: host-network pods pinned to it by hostname, running a minimal static Linux binary that sleeps (pause and hello images built locally, same registry, pulled before).", k.Version) + notes(k.C) +
		" cgroup v1 here: the kubelet runs with failCgroupV1=false and the cgroupfs driver."
}

func notes(c *containerdtest.Containerd) string {
	if len(c.Notes) == 0 {
		return ""
	}
	return " On this machine: " + strings.Join(c.Notes, "; ") + "."
}

func kubeletName(k *containerdtest.Kubelet) string {
	return fmt.Sprintf("kubelet %s + containerd %s + runc %s", k.Version, k.C.ContainerdVersion, k.C.RuncVersion)
}

// podStartBaseline is the container side of BenchmarkPodStart: the
// kubelet (bound → Running, as wasilet is measured) and containerd alone
// (CRI calls only, and the cold pull).
type podStartBaseline struct {
	kubeName, kubeMissing, kubeMethod string
	criName, criMissing, criMethod    string
	versions                          map[string]string
	kubeSerial, kubeBurst             []time.Duration
	criSerial, criCold                []time.Duration
}

func containerPodStarts(b *testing.B, env *clustertest.Env, count, cold int) podStartBaseline {
	c, missing := containerd(b, env)
	if c == nil {
		return podStartBaseline{kubeMissing: missing, criMissing: missing}
	}
	out := podStartBaseline{criName: c.BaselineName(), versions: c.Versions(), criMethod: criMethod(c)}
	ctx := context.Background()
	for _, m := range []struct {
		dst  *[]time.Duration
		opts containerdtest.PodStartOptions
	}{
		{&out.criSerial, containerdtest.PodStartOptions{Pods: count}},
		{&out.criCold, containerdtest.PodStartOptions{Pods: cold, Cold: true}},
	} {
		ds, err := c.PodStart(ctx, m.opts)
		if err != nil {
			b.Fatalf("container baseline %+v: %v", m.opts, err)
		}
		*m.dst = ds
	}
	k, missing := kubelet(b, env, c)
	if k == nil {
		out.kubeMissing = missing
		return out
	}
	out.kubeName, out.kubeMethod = kubeletName(k), kubeletMethod(k)
	out.versions["kubelet"] = k.Version
	if err := c.PullImage(ctx, c.HelloImage()); err != nil {
		b.Fatal(err)
	}
	ns := env.Namespace(b)
	logs := func() string { return k.LogTail(30) }
	for _, mode := range []string{"serial", "burst"} {
		objs := make([]*corev1.Pod, count)
		for i := range objs {
			objs[i] = k.Pod(ns, fmt.Sprintf("kubelet-%s-%03d", mode, i), "")
		}
		ds := measureStarts(b, env.Client, logs, ns, objs, mode == "burst")
		if mode == "serial" {
			out.kubeSerial = ds
		} else {
			out.kubeBurst = ds
		}
	}
	return out
}

// densityBaseline is the container side of BenchmarkDensity.
type densityBaseline struct {
	name, missing, method                             string
	versions                                          map[string]string
	pods                                              int
	rssPerPod, threadsPerPod, idleCPUPer100, podsPerS *float64
}

// containerDensity runs the baseline's sleeping pods: on the upstream
// kubelet when it runs here (pods through the API server, as wasilet's), else
// through the CRI alone.
func containerDensity(b *testing.B, env *clustertest.Env) densityBaseline {
	c, missing := containerd(b, env)
	if c == nil {
		return densityBaseline{missing: missing}
	}
	pods := benchreport.Size("WASILET_BENCH_CONTAINER_PODS", 100, 3)
	window := time.Duration(benchreport.Size("", 30, 5)) * time.Second
	k, kubeMissing := kubelet(b, env, c)
	if k == nil {
		d, err := c.Density(context.Background(), containerdtest.DensityOptions{Pods: pods, Window: window})
		if err != nil {
			b.Fatalf("container baseline density: %v", err)
		}
		b.Logf("container baseline (CRI only; %s): %v", kubeMissing, d)
		rss := float64(d.Shims.RSS+d.Containers.RSS) / (1 << 20) / float64(pods)
		threads := float64(d.Shims.Threads+d.Containers.Threads) / float64(pods)
		cpu := 100 * d.IdleCPU * 100 / float64(pods)
		return densityBaseline{
			name: fmt.Sprintf("%d container pods, %s", pods, c.BaselineName()), versions: c.Versions(), pods: pods,
			method:    criMethod(c) + fmt.Sprintf(" The kubelet could not run (%s), so the container figures come from %d sleeping pods started through the CRI alone: per pod the shims' and the containers' (pause + hello) VmRSS and threads (containerd's own %.0f MiB not counted); idle CPU of containerd and the shims over %s.", kubeMissing, pods, float64(d.Containerd.RSS)/(1<<20), d.Window),
			rssPerPod: &rss, threadsPerPod: &threads, idleCPUPer100: &cpu,
		}
	}
	ctx := context.Background()
	if err := c.PullImage(ctx, c.HelloImage()); err != nil {
		b.Fatal(err)
	}
	ns := env.Namespace(b)
	objs := make([]*corev1.Pod, pods)
	for i := range objs {
		objs[i] = k.Pod(ns, fmt.Sprintf("kubelet-density-%03d", i), "")
	}
	r, err := watchPods(ctx, env.Client, ns)
	if err != nil {
		b.Fatal(err)
	}
	defer r.stop()
	start := time.Now()
	startPodsOn(b, env.Client, func() string { return k.LogTail(30) }, r, objs, batchTimeout(pods))
	took := time.Since(start)
	time.Sleep(5 * time.Second) // settle, as the wasilet node's reading
	u, err := k.Usage(ctx, window)
	if err != nil {
		b.Fatalf("kubelet baseline usage: %v", err)
	}
	b.Logf("kubelet baseline: %d pods Running after %s; %v", pods, took.Round(time.Millisecond), u)
	rss := float64(u.Shims.RSS+u.Containers.RSS) / (1 << 20) / float64(pods)
	threads := float64(u.Shims.Threads+u.Containers.Threads) / float64(pods)
	cpu := 100 * u.IdleCPU * 100 / float64(pods)
	rate := float64(pods) / took.Seconds()
	versions := c.Versions()
	versions["kubelet"] = k.Version
	return densityBaseline{
		name: fmt.Sprintf("%d container pods, %s", pods, kubeletName(k)), versions: versions, pods: pods,
		method: kubeletMethod(k) + fmt.Sprintf(" Container figures: %d sleeping pods created at once; per pod the shims' and the containers' (pause + hello) VmRSS and threads (the kubelet's %.0f MiB and containerd's %.0f MiB not counted); idle CPU of the kubelet, containerd and the shims over %s.",
			pods, float64(u.Kubelet.RSS)/(1<<20), float64(u.Containerd.RSS)/(1<<20), u.Window),
		rssPerPod: &rss, threadsPerPod: &threads, idleCPUPer100: &cpu, podsPerS: &rate,
	}
}
