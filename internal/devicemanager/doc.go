// Package devicemanager owns the node's kubelet-compatible device-plugin
// manager (deviceplugin v1beta1): the registration server, one endpoint per
// plugin with ListAndWatch, node capacity and allocatable per resource,
// admission and allocation of devices to pods (GetPreferredAllocation,
// Allocate, PreStartContainer), and the checkpoint of allocations on disk.
//
// Behaviour follows the kubelet's pkg/kubelet/cm/devicemanager:
//
//   - Start removes every socket in Dir (plugins watching the directory see
//     kubelet.sock created again and re-register) and serves kubelet.sock.
//   - Register checks the API version (v1beta1) and that the resource is an
//     extended resource name (domain/name outside kubernetes.io), dials the
//     endpoint socket in Dir, reads GetDevicePluginOptions and follows
//     ListAndWatch (every message is the full list). Registering a resource
//     again replaces the previous endpoint.
//   - Capacity is every listed device, allocatable the healthy devices of a
//     connected plugin. When a plugin's stream ends, allocatable drops to 0
//     at once and capacity stays for StopGracePeriod (5 min); then the
//     resource is removed and reported as deleted (ExtendedResources zeroes
//     it) until a plugin registers it again.
//   - Admit allocates for init containers first, then app containers;
//     devices of finished (non-restartable) init containers are reused by
//     later containers. Devices come from the plugin's preference when it
//     offers GetPreferredAllocation, else in id order; Allocate is called
//     per container and resource. Any failure (unregistered resource, not
//     enough healthy free devices, RPC error) rejects the pod with
//     *AdmissionError{Reason: "UnexpectedAdmissionError", Message:
//     "Allocate failed due to …, which is unexpected"} and leaves it without
//     devices. A device is never held by two pods.
//   - PrepareContainer calls PreStartContainer when the plugin requires it
//     and merges the container's Allocate responses (envs, mounts, devices,
//     annotations: first resource by name wins a conflict).
//   - Allocations are checkpointed atomically (temp file, fsync, rename) as
//     JSON with a checksum in <Dir>/kubelet_internal_checkpoint and restored
//     on Start: a pod admitted before a restart keeps its devices (Admit is
//     idempotent) even before its plugin re-registers.
//
// Unlike the kubelet, a restored pod is re-admitted without asking its
// plugin (Wasm containers restart in-process after a node restart; their
// allocation responses are in the checkpoint), and PreStartContainer is
// skipped while the plugin has not re-registered.
//
// plugintest is a real gRPC device plugin for tests, and can run the
// upstream sample-device-plugin against any directory.
package devicemanager
