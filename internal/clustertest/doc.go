// Package clustertest gives end-to-end test binaries one shared local cluster
// (internal/cluster: etcd, kube-apiserver, kube-controller-manager,
// kube-scheduler, registry — real binaries from hack/tools.sh) and each test
// its own namespace, so that tests only say what they check.
//
// Use it from TestMain:
//
//	func TestMain(m *testing.M) { clustertest.Main(m) }
//
//	func TestSomething(t *testing.T) {
//		env := clustertest.Require(t) // skips under -short
//		ns := env.Namespace(t)        // deleted when the test ends
//		_, err := env.Client.CoreV1().Pods(ns).Create(…)
//	}
//
// The cluster starts on the first Require (so unit tests of the same binary
// never wait for it), on free ports in a temporary state directory, and is
// stopped when m.Run returns, pass or fail; its processes also die with the
// test binary if that is killed. When tests fail, the components' logs are
// kept and their directory printed.
//
// The binaries come from $WASILET_TOOLS_DIR (`export
// WASILET_TOOLS_DIR=$(hack/tools.sh --dir)`, which `./just test` does). When
// it is unset or a binary is missing, end-to-end tests fail saying so, except
// under `go test -short`, where they skip.
//
// Setting WASILET_E2E_STATE=<dir> makes the tests use (and start if needed,
// with the default ports) the cluster of that state directory, e.g. the one
// of `./just cluster-up`, and leave it running: handy while iterating.
package clustertest
