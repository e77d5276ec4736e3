package pods

import (
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// PodInfo is a read-only view of one pod on the node, for the CRI endpoint
// (crictl pods/ps/inspect/logs). A PodInfo is a copy: later changes of the
// pod do not show in it.
type PodInfo struct {
	UID         string
	Namespace   string
	Name        string
	Labels      map[string]string
	Annotations map[string]string
	// CreatedAt is when the node started the pod.
	CreatedAt time.Time
	// Ready says the pod's "sandbox" is up: volumes set up and the pod not
	// terminated (CRI SANDBOX_READY, otherwise SANDBOX_NOTREADY).
	Ready bool
	Phase corev1.PodPhase
	IP    string
	// Containers are the current (or last) runs of the init and regular
	// containers, init containers first.
	Containers []ContainerInfo
}

// ContainerInfo is a container's current (or last) run.
type ContainerInfo struct {
	// ID is the container id without the "wasilet://" scheme; empty when
	// the container has never started.
	ID   string
	Name string
	Init bool
	// Image is the image reference of the pod spec; ImageID its digest
	// reference ("repo@sha256:...").
	Image   string
	ImageID string
	// State is "Waiting" (CRI CONTAINER_CREATED), "Running" or "Terminated"
	// (CONTAINER_EXITED); Reason and Message explain it.
	State        string
	Reason       string
	Message      string
	RestartCount int32
	CreatedAt    time.Time
	StartedAt    time.Time
	FinishedAt   time.Time
	ExitCode     int32
	// LogPath is the CRI-format log of this run.
	LogPath string
	// Annotations come from device plugin allocations.
	Annotations map[string]string
	// MemoryLimit is limits.memory in bytes (0: none).
	MemoryLimit int64
}

// Snapshot returns every pod the node runs, sorted by namespace and name.
func (p *Provider) Snapshot() []PodInfo {
	p.mu.Lock()
	ws := make([]*podWorker, 0, len(p.workers))
	for _, w := range p.workers {
		ws = append(ws, w)
	}
	p.mu.Unlock()
	out := make([]PodInfo, 0, len(ws))
	for _, w := range ws {
		out = append(out, w.info())
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Namespace != out[j].Namespace {
			return out[i].Namespace < out[j].Namespace
		}
		return out[i].Name < out[j].Name
	})
	return out
}

func (w *podWorker) info() PodInfo {
	w.mu.Lock()
	defer w.mu.Unlock()
	phase := podPhase(w.pod, w.rec)
	pi := PodInfo{
		UID: string(w.uid), Namespace: w.namespace, Name: w.name,
		Labels: copyMap(w.pod.Labels), Annotations: copyMap(w.pod.Annotations),
		CreatedAt: w.rec.StartTime,
		Ready:     w.rec.SandboxUp && phase != corev1.PodSucceeded && phase != corev1.PodFailed,
		Phase:     phase,
		IP:        w.p.cfg.NodeIP,
	}
	for _, c := range w.rec.Containers {
		ci := ContainerInfo{
			ID: strings.TrimPrefix(c.ContainerID, "wasilet://"), Name: c.Name, Init: c.Init,
			Image: c.Image, ImageID: c.ImageID, State: c.Phase, Reason: c.Reason, Message: c.Message,
			RestartCount: c.RestartCount, CreatedAt: c.StartedAt, StartedAt: c.StartedAt,
			LogPath: c.LogPath, Annotations: copyMap(w.annotations[c.Name]),
		}
		if c.Phase == phaseWaiting && c.Last != nil && ci.ID != "" {
			// Between runs the last run is what CRI shows (exited).
			ci.State = phaseTerminated
			ci.ExitCode = c.Last.ExitCode
			ci.Reason, ci.Message = c.Last.Reason, c.Last.Message
			ci.StartedAt, ci.FinishedAt = c.Last.StartedAt, c.Last.FinishedAt
		}
		if c.Term != nil {
			ci.ExitCode = c.Term.ExitCode
			ci.Reason, ci.Message = c.Term.Reason, c.Term.Message
			ci.FinishedAt = c.Term.FinishedAt
		}
		if spec := findContainer(w.pod, c.Name); spec != nil {
			if q, ok := spec.Resources.Limits[corev1.ResourceMemory]; ok {
				ci.MemoryLimit = q.Value()
			}
		}
		pi.Containers = append(pi.Containers, ci)
	}
	return pi
}

func copyMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
