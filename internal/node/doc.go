// Package node is the kubelet half of `wasilet node` that is not the pod
// lifecycle: it turns a process into a Kubernetes node. It owns
//
//   - registration: the node object (labels kubernetes.io/arch and
//     kubernetes.io/os = wasm32-wasi, kubernetes.io/hostname,
//     node.kubernetes.io/instance-type=wasm32-wasi,
//     wasilet.dev/runtime=wasmtime; taints kubernetes.io/arch=wasm32-wasi
//     NoSchedule and NoExecute; InternalIP and Hostname addresses; capacity
//     and allocatable cpu, memory, pods, ephemeral-storage plus extended
//     resources from Config.ExtendedResources; nodeInfo with architecture and
//     OS wasm32-wasi, kubelet version v1.37.2-wasilet+<wasilet version>,
//     runtime wasmtime://<version>; the kubelet endpoint port);
//   - node status: conditions Ready, MemoryPressure (MemAvailable < 100 MiB),
//     DiskPressure (data dir filesystem < 10 % free space or < 5 % free
//     inodes) and PIDPressure (< 10 % of pid_max free), recomputed every
//     10 s and posted when they change, and Lease heartbeats in
//     kube-node-lease;
//   - TLS bootstrap like the kubelet's (certs.go): client certificate through
//     a CSR with the bootstrap kubeconfig, written kubeconfig, serving
//     certificate through a CSR named <node>-tls that an admin approves, both
//     rotated before expiry by client-go's certificate manager and stored
//     under <data-dir>/pki;
//   - the kubelet HTTP API (server.go) with the kubelet's authentication
//     (client certificates, TokenReview) and authorization
//     (SubjectAccessReview).
//
// The pod lifecycle is a Provider built by Config.NewProvider
// (internal/pods in the binary); this package runs it.
//
// # Why virtual-kubelet
//
// The node and pod controllers are virtual-kubelet v1.14.1's node package
// (node.NodeController with v1 Leases, node.PodController, assembled in
// node.go as its nodeutil.NewNode would) and its api.PodHandler routes.
// Authentication and authorization of the kubelet API are webhookauth.go's
// TokenReview, client-certificate and SubjectAccessReview checks with the
// kubelet's cache times, on client-go alone: nodeutil's WebhookAuth builds
// k8s.io/apiserver's delegating factories, which linked 450 more packages
// (CEL, admission, encryption config) and cost every wasilet process, `run`
// and `version` included, about 8 ms of package initialisation. They behave like the kubelet's own
// loops (informer on the pods bound to the node, workqueues with retries,
// three-way status patches, lease renewal every 10 s with a 40 s duration,
// re-registration) and are maintained upstream against current
// client-go, so wasilet does not carry its own copy of that machinery and
// keeps to what is specific to Wasm.
//
// Two adaptations: virtual-kubelet's cluster-wide config map and secret
// informers get an empty source (a node may only read its own pods'
// objects; see nodeScopedClient), and exec, attach and port-forward are
// answered here, before any stream upgrade, with 501 and a Status message
// "… is not supported on wasm32-wasi nodes …".
//
// # Choices
//
//   - Default pods capacity 250 (DefaultMaxPods), against the kubelet's 110:
//     a Wasm pod costs a goroutine and a wasmtime store, not a process.
//   - Allocatable equals capacity: no system or kube reservations.
//   - Serving certificate: by CSR by default, also with a plain --kubeconfig;
//     --self-signed-serving-cert or --tls-cert-file/--tls-private-key-file
//     instead. Until the CSR is approved, TLS handshakes fail with an error
//     naming the command to run, and the node prints it every minute.
//   - /healthz is served on the kubelet port and, like every route there,
//     needs authentication (nodes/healthz or nodes/proxy); there is no
//     read-only port.
package node
