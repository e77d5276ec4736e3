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
// Grouping: the `start` subcommand returns the address of the shim process
// that serves a container's group, starting it if the group has none. By
// default every container of a CRI pod (annotation
// io.kubernetes.cri.sandbox-id) of the containerd namespace is in one group,
// so one long-lived shim with one engine and one compiled cache serves all
// the node's Wasm pods — hundreds of pods, one shim. WASILET_SHIM_GROUPING=pod
// in containerd's environment gives each pod its own shim instead (as the
// runc shim does: a crash ends only that pod's guests);
// io.containerd.wasilet.v1.group names a group explicitly (ctr run
// --annotation, or a pod annotation the CRI passes on when the runtime lists
// it in pod_annotations); other containers (plain ctr) get a shim each. A
// shared shim stays up 3 s after its last container, so that the next pod
// does not meet it on its way out.
//
// Images: the guest's binary is process.args[0] when that is a file of the
// rootfs (a plain OCI image whose tar layer holds the .wasm file and whose
// entrypoint names it, as runwasi accepts); otherwise, when the container's
// image is a Wasm artifact in a layout package oci accepts (the CNCF layout
// `wasilet push` makes: config application/vnd.wasm.config.v0+json, one
// application/wasm layer; runwasi's; wasm-to-oci's), the shim reads that
// layer from containerd's content store over containerd's gRPC API (the
// address containerd passes the shim): containerd fetches a layer it does
// not know without unpacking it, so the container's rootfs is empty. The
// process's args are then the guest's whole argv. Through the CRI,
// containerd 2.4 unpacks plain images only for the node's platform
// (platforms.DefaultSpec()), so a plain image must carry it; `ctr run`
// refuses the CNCF layout in its own client (it reads only OCI image
// configs), so with ctr use runwasi's layout or a plain image.
//
// Every task reports the shim's own pid (a Wasm guest has no process).
// Not supported (ErrNotImplemented): exec, pause/resume, checkpoint, update,
// terminals, and stdio URIs other than FIFOs and plain files. It imports
// runtime and oci (to recognise artifact layouts), never agent/.
package shim
