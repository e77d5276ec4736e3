package devicemanager

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// ContainerAllocation is what device plugins asked the node to give one
// container: the merged result of their Allocate responses.
type ContainerAllocation struct {
	// Envs are added to the container's environment (they win over the pod spec's, as in the kubelet).
	Envs map[string]string
	// Mounts are host paths preopened for the guest at ContainerPath.
	Mounts []Mount
	// Devices are device nodes; wasilet preopens HostPath at ContainerPath.
	Devices []DeviceSpec
	// Annotations are recorded on the container (CRI annotations).
	Annotations map[string]string
	// DeviceIDs maps resource name to the device ids given to this container.
	DeviceIDs map[string][]string
}

// Mount is one mount from an Allocate response.
type Mount struct {
	ContainerPath string
	HostPath      string
	ReadOnly      bool
}

// DeviceSpec is one device from an Allocate response.
type DeviceSpec struct {
	ContainerPath string
	HostPath      string
	Permissions   string
}

// PodDevices is the contract between the pod lifecycle and the device
// manager. The pod lifecycle calls Admit once before any container of a pod
// starts, PrepareContainer right before each container starts, and Release
// when the pod has terminated or is deleted.
type PodDevices interface {
	// Admit chooses and allocates devices for every container of pod that
	// requests extended resources served by device plugins. It is idempotent
	// (a pod admitted before a restart keeps its devices). A pod that cannot be
	// satisfied gets an *AdmissionError.
	Admit(ctx context.Context, pod *corev1.Pod) error
	// PrepareContainer calls PreStartContainer where a plugin requires it and
	// returns what to apply to the container (nil when it has no devices).
	PrepareContainer(ctx context.Context, pod *corev1.Pod, container string) (*ContainerAllocation, error)
	// Release frees every device held by the pod.
	Release(podUID types.UID)
}

// AdmissionError is returned by Admit when a pod cannot get its devices; the
// pod fails with Reason (the kubelet's "UnexpectedAdmissionError").
type AdmissionError struct {
	Reason  string
	Message string
}

func (e *AdmissionError) Error() string { return e.Reason + ": " + e.Message }
