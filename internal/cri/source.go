package cri

import "time"

// PodSource is what the pod lifecycle exposes about the pods it runs. The
// CRI server calls Snapshot on every request, so it must be cheap and safe
// for concurrent use, and return copies.
type PodSource interface {
	Snapshot() []Pod
}

// ImageSource lists the images (Wasm artifacts) the node has pulled.
type ImageSource interface {
	Images() []Image
}

// Pod is one pod as a CRI sandbox.
type Pod struct {
	UID, Name, Namespace string
	Labels, Annotations  map[string]string
	CreatedAt            time.Time
	// Ready is true while the pod runs or may run containers again; false
	// once it has terminated (sandbox NOTREADY).
	Ready bool
	// IP is the pod IP, if any.
	IP         string
	Containers []Container
}

// ContainerState is the CRI state of a container.
type ContainerState int

const (
	ContainerUnknown ContainerState = iota
	ContainerCreated
	ContainerRunning
	ContainerExited
)

// Container is one container instance (one restart attempt) of a pod.
type Container struct {
	// ID is unique on the node and stable for this attempt.
	ID   string
	Name string
	// Image is the image reference of the pod spec; ImageRef the resolved
	// one (repo@sha256:…); ImageID the image's id (its manifest digest).
	Image, ImageRef, ImageID string
	State                    ContainerState
	CreatedAt                time.Time
	StartedAt, FinishedAt    time.Time
	ExitCode                 int32
	Reason, Message          string
	// LogPath is the absolute path of this attempt's log file in the CRI
	// log format (pods/<uid>/<container>/<restart>.log).
	LogPath      string
	RestartCount uint32
	// Annotations for the container (device plugin annotations, …).
	Annotations map[string]string
	// Mounts are the directories preopened for the guest.
	Mounts []Mount
	// Usage: cumulative CPU time and current memory of the guest; zero
	// when not measured. StatsAt is when they were taken.
	CPUUsageNanos uint64
	MemoryBytes   uint64
	StatsAt       time.Time
}

// Mount is one preopened directory.
type Mount struct {
	ContainerPath, HostPath string
	ReadOnly                bool
}

// Image is one pulled image.
type Image struct {
	// ID is the image id, the manifest digest ("sha256:…").
	ID string
	// RepoTags are the references it was pulled by (registry/repo:tag);
	// RepoDigests the digest references (registry/repo@sha256:…).
	RepoTags, RepoDigests []string
	Size                  uint64
	Pinned                bool
}
