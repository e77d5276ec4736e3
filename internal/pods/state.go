package pods

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// Container run phases kept in the record.
const (
	phaseWaiting    = "Waiting"
	phaseRunning    = "Running"
	phaseTerminated = "Terminated"
)

// termination is how one run of a container ended.
type termination struct {
	ExitCode    int32     `json:"exitCode"`
	Reason      string    `json:"reason,omitempty"`
	Message     string    `json:"message,omitempty"`
	StartedAt   time.Time `json:"startedAt,omitzero"`
	FinishedAt  time.Time `json:"finishedAt,omitzero"`
	ContainerID string    `json:"containerID,omitempty"`
	// imageChanged: the node stopped the container because its image
	// changed (restart at once, whatever the restart policy). Set only by
	// the node itself, never read from anything a guest writes.
	imageChanged bool
}

// containerRecord is the node's memory of one container of a pod; it is
// persisted in state.json so a restarted node continues where it was.
type containerRecord struct {
	Name         string `json:"name"`
	Init         bool   `json:"init,omitempty"`
	Image        string `json:"image"`
	ImageID      string `json:"imageID,omitempty"`
	ContainerID  string `json:"containerID,omitempty"`
	RestartCount int32  `json:"restartCount"`
	// Phase is Waiting, Running or Terminated; Reason/Message describe the
	// waiting state, or the termination for Terminated (in Term).
	Phase     string       `json:"phase"`
	Reason    string       `json:"reason,omitempty"`
	Message   string       `json:"message,omitempty"`
	StartedAt time.Time    `json:"startedAt,omitzero"`
	Term      *termination `json:"term,omitempty"`
	Last      *termination `json:"last,omitempty"`
	// Done says the container will not run again (restart policy).
	Done bool `json:"done,omitempty"`
	// Sidecar marks a restartable init container (restartPolicy Always).
	Sidecar bool `json:"sidecar,omitempty"`
	// Started is true once the container has run at least once (a
	// restartable init container lets the next one start then).
	Started bool `json:"started,omitempty"`
	// LogPath of the current (or last) run.
	LogPath string `json:"logPath,omitempty"`
	// Crashes counts consecutive failed runs for the crash back-off.
	Crashes int `json:"crashes,omitempty"`
}

// podRecord is the node's memory of one pod.
type podRecord struct {
	UID         string             `json:"uid"`
	Namespace   string             `json:"namespace"`
	Name        string             `json:"name"`
	StartTime   time.Time          `json:"startTime"`
	SandboxUp   bool               `json:"sandboxUp,omitempty"`
	Initialized bool               `json:"initialized,omitempty"`
	Failed      bool               `json:"failed,omitempty"`
	Reason      string             `json:"reason,omitempty"`
	Message     string             `json:"message,omitempty"`
	Deleted     bool               `json:"deleted,omitempty"`
	Containers  []*containerRecord `json:"containers"`
	// Transitions remember when conditions last changed.
	Transitions map[string]time.Time `json:"transitions,omitempty"`
}

func (r *podRecord) container(name string, init bool) *containerRecord {
	for _, c := range r.Containers {
		if c.Name == name && c.Init == init {
			return c
		}
	}
	return nil
}

func newPodRecord(pod *corev1.Pod, now time.Time) *podRecord {
	r := &podRecord{UID: string(pod.UID), Namespace: pod.Namespace, Name: pod.Name, StartTime: now}
	r.syncContainers(pod)
	return r
}

// syncContainers adds records for containers of pod the record lacks and
// refreshes images (the only mutable container field).
func (r *podRecord) syncContainers(pod *corev1.Pod) {
	add := func(c *corev1.Container, init bool) {
		sidecar := init && c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways
		if cr := r.container(c.Name, init); cr != nil {
			cr.Image = c.Image
			cr.Sidecar = sidecar
			return
		}
		reason := "ContainerCreating"
		if init || len(pod.Spec.InitContainers) > 0 {
			reason = "PodInitializing"
		}
		r.Containers = append(r.Containers, &containerRecord{Name: c.Name, Init: init, Sidecar: sidecar, Image: c.Image, Phase: phaseWaiting, Reason: reason})
	}
	for i := range pod.Spec.InitContainers {
		add(&pod.Spec.InitContainers[i], true)
	}
	for i := range pod.Spec.Containers {
		add(&pod.Spec.Containers[i], false)
	}
}

func loadPodRecord(path string) (*podRecord, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r podRecord
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("decode %s: %w", path, err)
	}
	return &r, nil
}

// recoverRecord turns a record written by a node process that died into the
// starting point of this one: a container that was running died with the
// old process; it is reported as terminated with reason Unknown and exit
// code 255 (what the kubelet reports for containers lost with their
// runtime), and restarts at once when the restart policy allows.
func recoverRecord(r *podRecord, pod *corev1.Pod, now time.Time) {
	for _, c := range r.Containers {
		switch c.Phase {
		case phaseRunning:
			c.Last = &termination{
				ExitCode: 255, Reason: "Unknown",
				Message:   "the wasilet node process stopped while the container was running",
				StartedAt: c.StartedAt, FinishedAt: now, ContainerID: c.ContainerID,
			}
			c.Phase = phaseWaiting
			c.Reason = "ContainerCreating"
			c.Message = ""
			if !restartAfter(pod.Spec.RestartPolicy, c.Init, c.Last.ExitCode, isRestartableInit(pod, c)) {
				c.Phase = phaseTerminated
				c.Term = c.Last
				c.Last = nil
				c.Done = true
			}
		case phaseWaiting:
			c.Reason = "ContainerCreating"
			c.Message = ""
		}
	}
	r.Deleted = false
}

func isRestartableInit(pod *corev1.Pod, c *containerRecord) bool {
	if !c.Init {
		return false
	}
	for i := range pod.Spec.InitContainers {
		ic := &pod.Spec.InitContainers[i]
		if ic.Name == c.Name {
			return ic.RestartPolicy != nil && *ic.RestartPolicy == corev1.ContainerRestartPolicyAlways
		}
	}
	return false
}

// restartAfter says whether a container that ended with exitCode runs again.
func restartAfter(policy corev1.RestartPolicy, init bool, exitCode int32, restartableInit bool) bool {
	if restartableInit {
		return true
	}
	if init {
		return exitCode != 0 && policy != corev1.RestartPolicyNever
	}
	switch policy {
	case corev1.RestartPolicyNever:
		return false
	case corev1.RestartPolicyOnFailure:
		return exitCode != 0
	}
	return true
}

func removeState(dir string) error {
	err := os.RemoveAll(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

func statePath(podDir string) string { return filepath.Join(podDir, "state.json") }
