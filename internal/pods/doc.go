// Package pods owns the pod lifecycle of a wasilet node: the
// virtual-kubelet provider (node.Provider (internal/node) and node.PodNotifier) that
// runs every pod bound to the node in wasmtime, in-process, one goroutine
// per container.
//
// Per pod, a worker admits devices, sets up volumes under
// <data-dir>/pods/<uid>/volumes, runs init containers in order and then all
// containers concurrently, applies imagePullPolicy with the kubelet's pull
// back-off (ErrImagePull, ImagePullBackOff: 10 s doubling to 300 s) and
// restartPolicy with its crash back-off (CrashLoopBackOff: 10 s doubling to
// 300 s, reset after 10 min of running), reports container and pod status
// like the kubelet, and emits the kubelet's events. Logs are written in the
// CRI format to <data-dir>/pods/<uid>/<container>/<restartCount>.log
// (rotated like the kubelet's at 10 MiB, 5 files; lines over 16 KiB split
// into partial records; an unterminated last line written as a full one),
// and served by GetContainerLogs. State is persisted to
// <data-dir>/pods/<uid>/state.json so a restarted node continues its pods.
//
// Choices where Wasm differs from Linux containers:
//
//   - argv: argv[0] is command[0] when the container has a command, else the
//     container name; the rest of command, then args, follow.
//   - Every volumeMount is a preopened directory at its mountPath. A file
//     (a configMap key with subPath, a hostPath of type File) is reached by
//     preopening its directory at the parent of mountPath when the names
//     match, or otherwise a private copy of the file (writes do not reach
//     the original). configMap, secret, downwardAPI and projected volumes
//     are written when the pod starts and are read-only; they are not
//     refreshed while the pod runs.
//   - emptyDir with medium Memory is a directory under the data directory
//     too (the guest cannot tell the difference); sizeLimit is not enforced.
//   - The termination log: the directory of terminationMessagePath (default
//     /dev) is a writable per-container preopen holding an empty file, read
//     when the run ends (4096 bytes at most); FallbackToLogsOnError uses the
//     log tail (80 lines, 2048 bytes); a trap or OOM without a message gets
//     the runtime's description.
//   - limits.memory caps the guest's linear memory (→ OOMKilled, exit code
//     137). CPU requests and limits are used for scheduling only; they are
//     not enforced (wasmtime's fuel is off for speed; guests are preempted
//     only by the epoch ticker for cancellation).
//   - Deletion: Wasm guests cannot receive SIGTERM, so there is no graceful
//     phase to wait for: DeletePod stops the guests at once by epoch
//     interruption and reports them terminated with exit code 137 (the
//     SIGKILL code) and reason Error; the pod object is then deleted with
//     grace period 0 (as the kubelet does once a pod has terminated) and the
//     pod directory, logs included, is removed once the object is gone.
//   - Restart recovery: a container that was running when the node process
//     died counts as a restart: its last state is Terminated, reason
//     Unknown, exit code 255 (what the kubelet reports for containers lost
//     with their runtime), and it starts again at once if its restart policy
//     allows (restartPolicy Never: it stays terminated and the pod fails).
//     Completed containers and init containers are not run again.
//   - Probes and lifecycle hooks are not run (there is no exec and no pod
//     network namespace; a Warning event "Unsupported" says so); a
//     container is ready while it runs. HOSTNAME is set to the pod's host
//     name, as container runtimes do.
//   - exec, attach and port-forward answer "not supported on wasm32-wasi
//     nodes".
//   - Service account tokens of projected volumes are requested once, when
//     the pod starts (WASI preview 1 guests have no sockets to use them).
//   - Stats (/stats/summary and /metrics/resource): the node entry is this
//     process (CPU time, RSS); each running container reports its guest
//     thread's CPU time and rate and, for core modules, its linear memory
//     as usage and working set (runtime.Usage); pods report the sums.
//     Components report CPU only: their memory is not observable.
//
// Snapshot gives the CRI endpoint a read-only view of pods and containers.
package pods
