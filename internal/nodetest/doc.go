// Package nodetest is the end-to-end harness for tests of `wasilet node`: it
// runs real wasilet node PROCESSES against the shared local cluster of
// internal/clustertest (real kube-apiserver, scheduler, controller-manager,
// registry), each with a bootstrap kubeconfig, its own data directory, a
// free kubelet port and a unique name; approves its serving CSR with the
// real kubectl; waits for it to be Ready; and helps tests build pods the
// real scheduler places on it, wait for their status, read the node's log,
// stop, kill -9 and restart it with its data directory kept, call its
// kubelet API, and push Wasm files to the cluster registry.
//
// Use it from TestMain (it includes clustertest.Main):
//
//	func TestMain(m *testing.M) { nodetest.Main(m) }
//
//	func TestHello(t *testing.T) {
//		n := nodetest.Shared(t)          // one node per test binary
//		ns := n.Env.Namespace(t)
//		ref := nodetest.PushWasm(t, n.Env, wasmFile, "hello:v1")
//		pod := n.Pod(ns, "hello", ref)
//		n.CreatePod(t, pod)
//		n.WaitPodPhase(t, ns, "hello", corev1.PodSucceeded, 2*time.Minute)
//	}
//
// Start(t, Options{…}) starts a node of the test's own (stopped when the test
// ends). The wasilet binary is $WASILET_BIN, or built once per test binary
// (go build ./cmd/wasilet) when unset. Under `go test -short` every helper
// that needs the cluster skips the test.
package nodetest
