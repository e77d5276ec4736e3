package containerdtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// PodOptions describe a one-container pod.
type PodOptions struct {
	// Name of the pod (metadata); empty picks a unique one.
	Name string
	// Image of the container; empty is HelloImage.
	Image string
	// Args of the container: "exit" (the default) or "sleep" for the
	// hello image.
	Args []string
}

// Pod is a pod run through the CRI.
type Pod struct {
	Name        string
	UID         string
	SandboxID   string
	ContainerID string
	ImageRef    string // the image id the container was created from
	LogPath     string // the container's log file (CRI log format)
	// Started is when RunPodSandbox was called, Running when
	// ContainerStatus first said RUNNING (or EXITED, for a container that
	// was done before the first look).
	Started, Running time.Time
}

// StartLatency is the pod's start time as the benchmarks count it.
func (p *Pod) StartLatency() time.Duration { return p.Running.Sub(p.Started) }

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// RunPod starts a pod as the kubelet does — RunPodSandbox (host network),
// ImageStatus and PullImage when the image is absent, CreateContainer,
// StartContainer — and waits until ContainerStatus says the container
// runs (or has run). The pod stays until RemovePod or the end of the test.
func (c *Containerd) RunPod(ctx context.Context, o PodOptions) (*Pod, error) {
	uid := randHex(8)
	p := &Pod{Name: o.Name, UID: uid}
	if p.Name == "" {
		p.Name = "pod-" + uid
	}
	img := o.Image
	if img == "" {
		img = c.helloImage
	}
	args := o.Args
	if len(args) == 0 {
		args = []string{"exit"}
	}
	logDir := filepath.Join(c.Dir, "pods", uid)
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return nil, err
	}
	ns := &runtimeapi.NamespaceOption{
		Network: runtimeapi.NamespaceMode_NODE,
		Pid:     runtimeapi.NamespaceMode_CONTAINER,
		Ipc:     runtimeapi.NamespaceMode_POD,
	}
	sandboxCfg := &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: p.Name, Uid: uid, Namespace: "containerdtest"},
		LogDirectory: logDir,
		Labels:       map[string]string{"io.kubernetes.pod.name": p.Name, "io.kubernetes.pod.uid": uid},
		Linux: &runtimeapi.LinuxPodSandboxConfig{
			// The kubelet's cgroupfs layout is /kubepods/<qos>/pod<uid>.
			CgroupParent:    c.cgroup + "/pod" + uid,
			SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{NamespaceOptions: ns, Seccomp: c.sandboxSeccomp()},
		},
	}

	p.Started = time.Now()
	rs, err := c.Runtime.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: sandboxCfg})
	if err != nil {
		return nil, fmt.Errorf("pod %s: RunPodSandbox: %w", p.Name, err)
	}
	p.SandboxID = rs.GetPodSandboxId()
	fail := func(err error) (*Pod, error) {
		c.removePod(p)
		return nil, fmt.Errorf("pod %s: %w", p.Name, err)
	}
	ref, err := c.ensureImage(ctx, img)
	if err != nil {
		return fail(err)
	}
	p.ImageRef = ref
	cc, err := c.Runtime.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{
		PodSandboxId: p.SandboxID,
		Config: &runtimeapi.ContainerConfig{
			Metadata: &runtimeapi.ContainerMetadata{Name: "main"},
			Image:    &runtimeapi.ImageSpec{Image: ref, UserSpecifiedImage: img},
			Args:     args,
			LogPath:  "main/0.log",
			Linux: &runtimeapi.LinuxContainerConfig{
				// A BestEffort pod's container, as the kubelet configures it
				// (cgroup v1; no seccompDefault).
				Resources: &runtimeapi.LinuxContainerResources{CpuShares: 2, OomScoreAdj: 1000},
				SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
					NamespaceOptions: ns,
					Seccomp:          &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Unconfined},
				},
			},
		},
		SandboxConfig: sandboxCfg,
	})
	if err != nil {
		return fail(fmt.Errorf("CreateContainer: %w", err))
	}
	p.ContainerID = cc.GetContainerId()
	p.LogPath = filepath.Join(logDir, "main", "0.log")
	if _, err := c.Runtime.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: p.ContainerID}); err != nil {
		return fail(fmt.Errorf("StartContainer: %w", err))
	}
	for {
		st, err := c.Runtime.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: p.ContainerID})
		if err != nil {
			return fail(fmt.Errorf("ContainerStatus: %w", err))
		}
		switch st.GetStatus().GetState() {
		case runtimeapi.ContainerState_CONTAINER_RUNNING, runtimeapi.ContainerState_CONTAINER_EXITED:
			p.Running = time.Now()
			return p, nil
		}
		select {
		case <-ctx.Done():
			return fail(fmt.Errorf("container not running: %w", ctx.Err()))
		case <-time.After(time.Millisecond):
		}
	}
}

// sandboxSeccomp is what the kubelet asks for every pod sandbox
// (RuntimeDefault), unless this runc has no seccomp (see Notes).
func (c *Containerd) sandboxSeccomp() *runtimeapi.SecurityProfile {
	if !c.runcSeccomp {
		return nil
	}
	return &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault}
}

// ensureImage is the kubelet's IfNotPresent: ImageStatus, PullImage when
// absent. It returns the image id to create the container from.
func (c *Containerd) ensureImage(ctx context.Context, img string) (string, error) {
	st, err := c.Images.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: img}})
	if err != nil {
		return "", fmt.Errorf("ImageStatus %s: %w", img, err)
	}
	if id := st.GetImage().GetId(); id != "" {
		return id, nil
	}
	pr, err := c.Images.PullImage(ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: img}})
	if err != nil {
		return "", fmt.Errorf("PullImage %s: %w", img, err)
	}
	return pr.GetImageRef(), nil
}

// PullImage pulls img unless containerd has it already.
func (c *Containerd) PullImage(ctx context.Context, img string) error {
	_, err := c.ensureImage(ctx, img)
	return err
}

// RemoveImage removes img from containerd (absent is fine).
func (c *Containerd) RemoveImage(ctx context.Context, img string) error {
	if _, err := c.Images.RemoveImage(ctx, &runtimeapi.RemoveImageRequest{Image: &runtimeapi.ImageSpec{Image: img}}); err != nil {
		return fmt.Errorf("RemoveImage %s: %w", img, err)
	}
	return nil
}

// WaitExited waits until the pod's container has exited and returns its
// status (exit code, reason, times).
func (c *Containerd) WaitExited(ctx context.Context, p *Pod) (*runtimeapi.ContainerStatus, error) {
	for {
		st, err := c.Runtime.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: p.ContainerID})
		if err != nil {
			return nil, fmt.Errorf("pod %s: ContainerStatus: %w", p.Name, err)
		}
		if st.GetStatus().GetState() == runtimeapi.ContainerState_CONTAINER_EXITED {
			return st.GetStatus(), nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("pod %s: container still %s: %w", p.Name, st.GetStatus().GetState(), ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// RemovePod stops and removes the pod (its containers go with it), as the
// kubelet does once a pod is deleted.
func (c *Containerd) RemovePod(ctx context.Context, p *Pod) error {
	return c.removeSandbox(ctx, p.SandboxID)
}

func (c *Containerd) removePod(p *Pod) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = c.removeSandbox(ctx, p.SandboxID)
}

func (c *Containerd) removeSandbox(ctx context.Context, id string) error {
	if _, err := c.Runtime.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: id}); err != nil {
		return fmt.Errorf("StopPodSandbox %s: %w", id, err)
	}
	if _, err := c.Runtime.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: id}); err != nil {
		return fmt.Errorf("RemovePodSandbox %s: %w", id, err)
	}
	return nil
}

// RemoveAllPods stops and removes every pod of this containerd, a few at a
// time.
func (c *Containerd) RemoveAllPods(ctx context.Context) error {
	l, err := c.Runtime.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		return fmt.Errorf("ListPodSandbox: %w", err)
	}
	ids := make([]string, 0, len(l.GetItems()))
	for _, s := range l.GetItems() {
		ids = append(ids, s.GetId())
	}
	return c.removeSandboxes(ctx, ids)
}

func (c *Containerd) removeSandboxes(ctx context.Context, ids []string) error {
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
		sem  = make(chan struct{}, 8)
	)
	for _, id := range ids {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := c.removeSandbox(ctx, id); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// PodStartOptions configure PodStart.
type PodStartOptions struct {
	// Pods is how many pods to start (default 1).
	Pods int
	// Burst starts them all at once (one goroutine each, parallel image
	// pulls as with the kubelet's serializeImagePulls=false); otherwise one
	// after the other.
	Burst bool
	// Cold gives each pod an image containerd has never seen (a fresh tag
	// with a layer of its own, pushed beforehand), so the pull — manifest,
	// config and layer from the local registry, unpack — is part of the
	// measure. Otherwise the hello image is pulled once before and every
	// pod finds it (the kubelet's IfNotPresent with a cached image). The
	// pause image is always cached, as on a node.
	Cold bool
	// Args of the containers (default "sleep": they keep running).
	Args []string
}

// PodStart starts pods as the kubelet would and returns, per pod, the time
// from RunPodSandbox to ContainerStatus saying RUNNING. Serial pods stay
// running while the next ones start; all are removed before it returns.
func (c *Containerd) PodStart(ctx context.Context, o PodStartOptions) ([]time.Duration, error) {
	n := max(o.Pods, 1)
	args := o.Args
	if len(args) == 0 {
		args = []string{"sleep"}
	}
	images := make([]string, n)
	if o.Cold {
		refs, err := c.PushColdImages(ctx, n)
		if err != nil {
			return nil, err
		}
		copy(images, refs)
	} else {
		if err := c.PullImage(ctx, c.helloImage); err != nil {
			return nil, err
		}
		for i := range images {
			images[i] = c.helloImage
		}
	}
	pods := make([]*Pod, n)
	errs := make([]error, n)
	runOne := func(i int) {
		pods[i], errs[i] = c.RunPod(ctx, PodOptions{Image: images[i], Args: args})
	}
	if o.Burst {
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() { defer wg.Done(); runOne(i) }()
		}
		wg.Wait()
	} else {
		for i := range n {
			if runOne(i); errs[i] != nil {
				break
			}
		}
	}
	var ids []string
	out := make([]time.Duration, 0, n)
	for _, p := range pods {
		if p != nil {
			ids = append(ids, p.SandboxID)
			out = append(out, p.StartLatency())
		}
	}
	rctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rerr := c.removeSandboxes(rctx, ids)
	if o.Cold {
		for _, img := range images {
			if img != "" {
				rerr = errors.Join(rerr, c.RemoveImage(rctx, img))
			}
		}
	}
	if err := errors.Join(errors.Join(errs...), rerr); err != nil {
		return out, err
	}
	return out, nil
}
