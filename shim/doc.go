// Package shim owns wasilet's containerd shim: the shim API v2 task service
// (ttrpc, task API v3) behind the runtime type io.containerd.wasilet.v1,
// served by containerd's own shim library (containerd/v2/pkg/shim) so that
// containerd — and through its CRI plugin, the kubelet — runs Wasm
// containers beside runc containers on an ordinary node, picked by a
// RuntimeClass. cmd/containerd-shim-wasilet-v1 is its thin main.
//
// What it does with a task:
//
//   - Create mounts the rootfs containerd prepared (the snapshotter's mounts)
//     at <bundle>/rootfs, reads the OCI spec (config.json), finds the Wasm
//     binary at process.args[0] inside that rootfs (a plain image whose layer
//     holds the .wasm file and names it as its entrypoint, as runwasi
//     accepts), and compiles it with the process's one runtime.Engine, whose
//     compiled cache on disk (DefaultCacheDir, or $WASILET_SHIM_CACHE_DIR) is
//     shared by every shim process of the node;
//   - Start runs it with package runtime: argv from process.args, env from
//     process.env, the rootfs preopened at "/", every bind mount of a
//     directory preopened at its destination (read-only with "ro"), the
//     memory limit of linux.resources.memory.limit, stdout and stderr into
//     containerd's FIFOs (so ctr and kubectl logs work), stdin from its FIFO;
//   - Kill stops the guest (epoch interruption) and reports 128+signal
//     (137 for SIGKILL, 143 for SIGTERM); Wait, State, Delete and the
//     TaskCreate/Start/Exit/Delete events follow containerd's task model;
//   - Stats answers cgroup v1 metrics built from runtime.Usage: the CPU time
//     of the guest's thread and, for core modules, its linear memory.
//
// The CRI's sandbox (pause) container of a pod whose RuntimeClass names this
// shim is not run at all: the shim holds it as a task that lives until it is
// killed, as the pause process would, with no process of its own.
//
// Grouping: the `start` subcommand puts every container of one pod (the
// annotation io.kubernetes.cri.sandbox-id, or io.containerd.wasilet.v1.group
// for ctr) into one long-lived shim process, so a node with hundreds of Wasm
// pods runs one shim per pod with one engine each, not one per container.
//
// Images: the Wasm binary must be a file in the container's rootfs, so
// the image is a plain OCI image (tar layers) whose entrypoint names the
// .wasm file. Through the CRI, containerd 2.4 fetches and unpacks only the
// node's platform (platforms.DefaultSpec() in its CRI image service), so
// such an image must carry the node's platform (e.g. linux/amd64) or an
// index entry for it; `ctr images pull` also unpacks a single-manifest
// wasip1/wasm image. The CNCF Wasm artifact layout (one application/wasm
// layer, which `wasilet push` produces) is not supported here: containerd
// does not unpack non-tar layers, so the CRI cannot create a container from
// it at all (no snapshot) and the shim would have to read the layer from
// containerd's content store instead, as runwasi does; not done.
//
// Every task reports the shim's own pid (a Wasm guest has no process).
// Not supported (ErrNotImplemented): exec, pause/resume, checkpoint, update,
// terminals, and stdio URIs other than FIFOs and plain files. It imports
// runtime, never agent/ or oci/.
package shim
