package node

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/wasilet/wasilet/internal/atomicfile"
	"github.com/wasilet/wasilet/internal/version"
)

// Thresholds of the pressure conditions: the kubelet's default hard eviction
// thresholds (memory.available<100Mi, nodefs.available<10%,
// nodefs.inodesFree<5%) and pid.available<10%.
const (
	memoryPressureBytes   = 100 << 20
	diskPressureFraction  = 0.10
	inodePressureFraction = 0.05
	pidPressureFraction   = 0.10
)

// statusInterval is how often conditions are recomputed (health checks,
// pressure); a change is sent to the node controller at once, and the
// controller also re-posts the status with its own heartbeat. One second
// so that a node that breaks or recovers says so within a second; the
// checks are cheap (a statfs, a small file written and removed).
const statusInterval = time.Second

// kubeVersion is the Kubernetes version wasilet speaks: that of the client-go
// it is built with (client-go v0.X.Y is Kubernetes v1.X.Y).
func kubeVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, m := range bi.Deps {
			if m.Path == "k8s.io/client-go" && strings.HasPrefix(m.Version, "v0.") {
				return "v1." + strings.TrimPrefix(m.Version, "v0.")
			}
		}
	}
	return "v1.37.2"
}

// KubeletVersion is what `kubectl get nodes` shows in its VERSION column:
// the Kubernetes version wasilet implements, a "wasilet" pre-release tag and
// wasilet's own version as semver build metadata, e.g.
// v1.37.2-wasilet+v0.1.0-dev. Tools that parse it as semver see v1.37.2-wasilet.
func KubeletVersion() string {
	return kubeVersion() + "-wasilet+" + semverBuild(version.Get().Version)
}

// semverBuild keeps only the characters semver allows in build metadata.
func semverBuild(s string) string {
	s = strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '.':
			return r
		}
		return '-'
	}, s)
	s = strings.Trim(s, ".")
	if s == "" {
		return "unknown"
	}
	return s
}

// ContainerRuntimeVersion is wasmtime://<version of the linked libwasmtime>.
func ContainerRuntimeVersion() string { return RuntimeName + "://" + version.Get().Wasmtime }

// baseNode is the node object wasilet registers (status without conditions).
func baseNode(c *Config) *corev1.Node {
	labels := map[string]string{}
	for k, v := range c.Labels {
		labels[k] = v
	}
	labels[LabelArch] = Arch
	labels[LabelOS] = Arch
	labels[LabelHostname] = c.NodeName
	labels[LabelInstanceType] = Arch
	labels[LabelRuntime] = RuntimeName

	hostname, err := os.Hostname()
	if err != nil || hostname == "" {
		hostname = c.NodeName
	}
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name:   c.NodeName,
			Labels: labels,
			Annotations: map[string]string{
				// Like the kubelet: controllers may manage the node's volumes.
				"volumes.kubernetes.io/controller-managed-attach-detach": "true",
			},
		},
		Spec: corev1.NodeSpec{
			Taints: []corev1.Taint{
				{Key: TaintKey, Value: Arch, Effect: corev1.TaintEffectNoSchedule},
				{Key: TaintKey, Value: Arch, Effect: corev1.TaintEffectNoExecute},
			},
		},
		Status: corev1.NodeStatus{
			Phase: corev1.NodeRunning,
			Addresses: []corev1.NodeAddress{
				{Type: corev1.NodeInternalIP, Address: c.NodeIP},
				{Type: corev1.NodeHostName, Address: hostname},
			},
			DaemonEndpoints: corev1.NodeDaemonEndpoints{
				KubeletEndpoint: corev1.DaemonEndpoint{Port: int32(c.Port)},
			},
			NodeInfo: corev1.NodeSystemInfo{
				MachineID:               machineID(),
				KernelVersion:           kernelVersion(),
				OSImage:                 "wasilet " + version.Get().Version + " (" + Arch + ")",
				ContainerRuntimeVersion: ContainerRuntimeVersion(),
				KubeletVersion:          KubeletVersion(),
				OperatingSystem:         Arch,
				Architecture:            Arch,
			},
		},
	}
}

func machineID() string {
	b, err := os.ReadFile("/etc/machine-id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// statusProvider is wasilet's node.NodeProvider: it computes the node's
// capacity and conditions from the host and the data directory, and hands a
// new node object to the node controller whenever they change.
type statusProvider struct {
	cfg  *Config
	base *corev1.Node

	mu     sync.Mutex
	health []string     // failed health checks, from checkHealth
	last   *corev1.Node // last status handed out (for transition times)
	notify func(*corev1.Node)

	pace *rate.Limiter // status updates for resource changes
}

func newStatusProvider(cfg *Config) *statusProvider {
	p := &statusProvider{cfg: cfg, base: baseNode(cfg),
		pace: rate.NewLimiter(rate.Every(resourceUpdateSpacing), resourceUpdateBurst)}
	p.checkHealth()
	p.last = p.compute(time.Now())
	return p
}

// initial is the node object to register.
func (p *statusProvider) initial() *corev1.Node {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.last.DeepCopy()
}

// Ping implements node.NodeProvider: the node is healthy while its data
// directory is reachable.
func (p *statusProvider) Ping(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if _, err := os.Stat(p.cfg.DataDir); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	return nil
}

// NotifyNodeStatus implements node.NodeProvider; it starts the loop that
// recomputes the status and must not block.
func (p *statusProvider) NotifyNodeStatus(ctx context.Context, cb func(*corev1.Node)) {
	p.mu.Lock()
	p.notify = cb
	p.mu.Unlock()
	go p.loop(ctx)
}

// Status updates that resource changes trigger are paced by a token
// bucket: the first resourceUpdateBurst changes after a quiet spell are sent
// at once — a device plugin registering (its resource with no devices yet)
// and its first device list, which follows within milliseconds, are two
// changes, and the second is what makes the resource schedulable; an Akri
// Configuration brings two plugins, and its deletion as many changes again
// — while a storm of them (an agent serving thousands of plugins) is sent
// in batches resourceUpdateSpacing apart, because each update carries the
// whole status, whose size grows with the number of resources. A bucket of
// 8 refilled every 250 ms ran dry when Configurations came and went a few
// times a second (a benchmark's pace), delaying a new resource by up to a
// refill.
const (
	resourceUpdateSpacing = 100 * time.Millisecond
	resourceUpdateBurst   = 16
)

func (p *statusProvider) loop(ctx context.Context) {
	t := time.NewTicker(statusInterval)
	defer t.Stop()
	var due <-chan time.Time // a batched resource update is pending
	for {
		force := false
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			p.checkHealth()
		case <-due:
			due = nil
			force = true
		case _, ok := <-p.cfg.ResourceUpdates: // nil channel: never ready
			if !ok {
				p.cfg.ResourceUpdates = nil
			}
			if due != nil {
				continue // already pending: it will carry this change too
			}
			if wait := p.pace.Reserve().Delay(); wait > 0 {
				due = time.After(wait)
				continue
			}
			force = true
		}
		p.refresh(ctx, force)
	}
}

// refresh recomputes the status and sends it when it changed (or force).
func (p *statusProvider) refresh(ctx context.Context, force bool) {
	n := p.compute(time.Now())
	p.mu.Lock()
	changed := !equality.Semantic.DeepEqual(stripTimes(n.Status), stripTimes(p.last.Status))
	p.last = n
	cb := p.notify
	p.mu.Unlock()
	if (changed || force) && cb != nil {
		select {
		case <-ctx.Done():
		default:
			cb(n.DeepCopy())
		}
	}
}

func stripTimes(s corev1.NodeStatus) corev1.NodeStatus {
	s = *s.DeepCopy()
	for i := range s.Conditions {
		s.Conditions[i].LastHeartbeatTime = metav1.Time{}
		s.Conditions[i].LastTransitionTime = metav1.Time{}
	}
	return s
}

// compute builds the full node object for now.
func (p *statusProvider) compute(now time.Time) *corev1.Node {
	n := p.base.DeepCopy()
	c := p.cfg
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:    c.CPU.DeepCopy(),
		corev1.ResourceMemory: c.Memory.DeepCopy(),
		corev1.ResourcePods:   *resource.NewQuantity(int64(c.MaxPods), resource.DecimalSI),
	}
	fs, fsErr := statFS(existingParent(c.DataDir))
	if fsErr == nil {
		capacity[corev1.ResourceEphemeralStorage] = *resource.NewQuantity(fs.capacity, resource.BinarySI)
	}
	allocatable := capacity.DeepCopy()
	if c.ExtendedResources != nil {
		ec, ea := c.ExtendedResources()
		for k, v := range ec {
			capacity[k] = v.DeepCopy()
		}
		for k, v := range ea {
			allocatable[k] = v.DeepCopy()
		}
	}
	n.Status.Capacity = capacity
	n.Status.Allocatable = allocatable

	ts := metav1.NewTime(now)
	cond := func(t corev1.NodeConditionType, pressure bool, reason, msg string) corev1.NodeCondition {
		st := corev1.ConditionFalse
		if pressure {
			st = corev1.ConditionTrue
		}
		return corev1.NodeCondition{Type: t, Status: st, Reason: reason, Message: msg, LastHeartbeatTime: ts, LastTransitionTime: ts}
	}

	var conds []corev1.NodeCondition
	if avail, err := memAvailable(); err != nil {
		conds = append(conds, corev1.NodeCondition{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionUnknown,
			Reason: "KubeletMemoryUnknown", Message: err.Error(), LastHeartbeatTime: ts, LastTransitionTime: ts})
	} else if avail < memoryPressureBytes {
		conds = append(conds, cond(corev1.NodeMemoryPressure, true, "KubeletHasInsufficientMemory",
			fmt.Sprintf("kubelet has insufficient memory available (%d MiB < 100 MiB)", avail>>20)))
	} else {
		conds = append(conds, cond(corev1.NodeMemoryPressure, false, "KubeletHasSufficientMemory", "kubelet has sufficient memory available"))
	}

	switch {
	case fsErr != nil:
		conds = append(conds, corev1.NodeCondition{Type: corev1.NodeDiskPressure, Status: corev1.ConditionUnknown,
			Reason: "KubeletDiskUnknown", Message: fsErr.Error(), LastHeartbeatTime: ts, LastTransitionTime: ts})
	case fs.capacity > 0 && float64(fs.available) < diskPressureFraction*float64(fs.capacity):
		conds = append(conds, cond(corev1.NodeDiskPressure, true, "KubeletHasDiskPressure",
			fmt.Sprintf("kubelet has disk pressure: %s has less than 10%% free space", c.DataDir)))
	case fs.inodes > 0 && float64(fs.inodesFree) < inodePressureFraction*float64(fs.inodes):
		conds = append(conds, cond(corev1.NodeDiskPressure, true, "KubeletHasDiskPressure",
			fmt.Sprintf("kubelet has disk pressure: %s has less than 5%% free inodes", c.DataDir)))
	default:
		conds = append(conds, cond(corev1.NodeDiskPressure, false, "KubeletHasNoDiskPressure", "kubelet has no disk pressure"))
	}

	if used, max, err := pidUsage(); err != nil {
		conds = append(conds, corev1.NodeCondition{Type: corev1.NodePIDPressure, Status: corev1.ConditionUnknown,
			Reason: "KubeletPIDUnknown", Message: err.Error(), LastHeartbeatTime: ts, LastTransitionTime: ts})
	} else if max > 0 && float64(max-used) < pidPressureFraction*float64(max) {
		conds = append(conds, cond(corev1.NodePIDPressure, true, "KubeletHasInsufficientPID", "kubelet has insufficient PID available"))
	} else {
		conds = append(conds, cond(corev1.NodePIDPressure, false, "KubeletHasSufficientPID", "kubelet has sufficient PID available"))
	}

	p.mu.Lock()
	problems := p.health
	p.mu.Unlock()
	if len(problems) > 0 {
		c := cond(corev1.NodeReady, true, "KubeletNotReady", strings.Join(problems, "; "))
		c.Status = corev1.ConditionFalse
		conds = append(conds, c)
	} else {
		conds = append(conds, cond(corev1.NodeReady, true, "KubeletReady", "wasilet is posting ready status"))
	}

	// Keep transition times of conditions whose status did not change.
	if p.last != nil {
		for i := range conds {
			for _, old := range p.last.Status.Conditions {
				if old.Type == conds[i].Type && old.Status == conds[i].Status {
					conds[i].LastTransitionTime = old.LastTransitionTime
				}
			}
		}
	}
	n.Status.Conditions = conds
	return n
}

// checkHealth runs the health checks once a status period (not at every
// status update: resource changes may come by the thousand), so that a
// problem shows for at least a period even when the check repairs it.
func (p *statusProvider) checkHealth() {
	problems := p.problems()
	p.mu.Lock()
	p.health = problems
	p.mu.Unlock()
}

// problems runs the health checks: the data directory's, then the
// configured ones; each failure is "<name>: <error>".
func (p *statusProvider) problems() []string {
	var out []string
	if err := dataDirWritable(p.cfg.DataDir); err != nil {
		out = append(out, "data directory: "+err.Error())
	}
	for _, hc := range p.cfg.HealthChecks {
		if err := hc.Check(); err != nil {
			out = append(out, hc.Name+": "+err.Error())
		}
	}
	return out
}

// dataDirWritable probes dir; a directory not created yet passes (the
// node creates it before it registers).
func dataDirWritable(dir string) error {
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return atomicfile.ProbeWritable(dir)
}

// existingParent is dir or its nearest existing ancestor (the data dir may
// not exist yet when the first status is computed).
func existingParent(dir string) string {
	for d := dir; ; {
		if _, err := os.Stat(d); err == nil {
			return d
		}
		parent := d[:max(strings.LastIndex(d, "/"), 0)]
		if parent == "" {
			return "/"
		}
		d = parent
	}
}
