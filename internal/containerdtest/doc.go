// Package containerdtest owns the container baseline of the pod-start and
// density benchmarks: a real containerd 2.x with runc (the pinned binaries
// of hack/tools.sh), driven through the CRI (k8s.io/cri-api runtime v1 over
// containerd's socket) with the calls, in the order and with the security
// settings the kubelet uses (sandbox seccomp RuntimeDefault, containers
// Unconfined with BestEffort resources, cgroupfs parents per pod).
//
// Start runs a private containerd as root: its root, state, runc and shim
// socket directories and its socket live under one short temporary
// directory; its config.toml (generated) enables the CRI plugin with runc as
// io.containerd.runc.v2 (cgroupfs driver, SystemdCgroup=false), the
// overlayfs snapshotter (native when an overlay mount fails here, see
// Containerd.SnapshotterNote), plain-HTTP pulls from the local registry
// (hosts.toml under config_path) and a pause image built locally. Pods use
// the host network, so no CNI plugin or config is needed. Where this machine
// forces a difference from a stock node it is said in Containerd.Notes.
//
// Everything is stopped, unmounted and removed when the test ends.
// containerd also dies with the test binary; the shims and containers of a
// binary killed with -9 are left behind, as a crashed node would leave them.
// When containerd cannot run (not root, tools missing, containerd failing to
// start) Start skips the test with the exact reason; TryStart returns it as
// an *UnavailableError instead, for a benchmark that measures wasilet anyway
// and records the reason as the baseline's absence
// (benchreport.Result.NoBaseline).
//
// The images are built here, never pulled from the internet: a pause image
// (images/pause) and a hello image (images/hello: prints HelloLine, then
// exits or sleeps), static Go programs packed as OCI images (linux, one
// gzip layer) and pushed with oras-go to the registry of Options.RegistryAddr
// or, when empty, to a registry of the package's own.
//
// Measurements:
//
//	c := containerdtest.Start(b, containerdtest.Options{RegistryAddr: env.RegistryAddr})
//	d, err := c.PodStart(ctx, containerdtest.PodStartOptions{Pods: 10, Burst: true, Cold: true})
//	dens, err := c.Density(ctx, containerdtest.DensityOptions{Pods: 100})
//	// benchreport.Result{…, Baseline: benchreport.MsOf(d), BaselineName: c.BaselineName(), …}
//
// PodStart returns, per pod, the time from RunPodSandbox to the container
// being reported RUNNING by ContainerStatus; Density runs N sleeping pods and
// sums RSS, threads and idle CPU of containerd, its shims and the containers.
//
// The full-node baseline is the upstream kubelet (hack/tools.sh's kubelet)
// on that containerd, joined to the clustertest cluster as a node:
//
//	c := containerdtest.Start(b, containerdtest.Options{RegistryAddr: env.RegistryAddr})
//	k, err := containerdtest.StartKubelet(b, env, c) // Ready, untainted
//	_, err = env.Client.CoreV1().Pods(ns).Create(ctx, k.Pod(ns, "p", ""), metav1.CreateOptions{})
//	d, err := k.PodStart(ctx, ns, 10, true) // bound → Running, as a watch sees it
//	u, err := k.Usage(ctx, 10*time.Second) // kubelet + containerd + shims + containers
//
// It uses the admin kubeconfig (a benchmark harness, not a node to copy),
// the machine's first non-loopback IPv4 address as node IP (the kubelet
// refuses a loopback one), its own cgroupRoot in every hierarchy, and a CNI
// config without plugin binaries so that the CRI reports NetworkReady (the
// pods use the host network; no plugin is ever called).
// The benchmarks of this package record them as the baseline alone;
// wasilet's own benchmarks call the same helpers to put both in one row.
package containerdtest
