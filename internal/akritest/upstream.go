package akritest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/wasilet/wasilet/internal/clustertest"
	"github.com/wasilet/wasilet/internal/nodetest"
)

// UpstreamVersion is the release of the upstream Akri binaries in
// ../shared/peers.
const UpstreamVersion = "0.13.26"

// Upstream finds upstream Akri's binaries (agent, controller,
// debug-echo-discovery-handler) in shared/peers/akri-<UpstreamVersion>
// beside the repository; without them it returns "" and the reason.
func Upstream() (dir, missing string) {
	_, file, _, _ := runtime.Caller(0)
	// internal/akritest/upstream.go → <repo>/../shared/peers/…
	dir = filepath.Join(filepath.Dir(file), "..", "..", "..", "shared", "peers", "akri-"+UpstreamVersion)
	for _, bin := range []string{"agent", "controller", "debug-echo-discovery-handler"} {
		if _, err := os.Stat(filepath.Join(dir, bin)); err != nil {
			return "", fmt.Sprintf("upstream Akri %s binaries are not on this machine (%v)", UpstreamVersion, err)
		}
	}
	if os.Geteuid() != 0 {
		return "", "upstream's agent has the kubelet's paths compiled in; pointing it at a wasilet node needs a private mount namespace, so root"
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		return "", "unshare (util-linux) not found: upstream's agent cannot be given the node's kubelet paths"
	}
	return dir, ""
}

// StartUpstreamAkri runs upstream Akri's agent and controller for node n
// (whose own agent must be off), with the discovery-handler registration
// socket in handlers. The agent's kubelet paths are constants, so it runs in
// a private mount namespace with the node's device-plugin and PodResources
// directories bind-mounted onto /var/lib/kubelet/…. The test is skipped
// when Upstream says the binaries cannot run here.
func StartUpstreamAkri(t testing.TB, env *clustertest.Env, n *nodetest.Node, handlers string) (agent, controller *Proc) {
	t.Helper()
	up, missing := Upstream()
	if up == "" {
		t.Skip(missing)
	}
	script := fmt.Sprintf(`set -e
mount --make-rprivate /
mkdir -p /var/lib/kubelet/device-plugins /var/lib/kubelet/pod-resources
mount --bind %q /var/lib/kubelet/device-plugins
mount --bind %q /var/lib/kubelet/pod-resources
exec %q`, filepath.Join(n.DataDir, "device-plugins"), filepath.Join(n.DataDir, "pod-resources"), filepath.Join(up, "agent"))
	kube := "KUBECONFIG=" + env.AdminKubeconfig
	agent = StartCommand(t, "upstream-agent", []string{kube, "AGENT_NODE_NAME=" + n.Name, "DISCOVERY_HANDLERS_DIRECTORY=" + handlers, "METRICS_PORT=0", "RUST_LOG=info"},
		"unshare", "--mount", "--propagation", "private", "sh", "-c", script)
	controller = StartCommand(t, "upstream-controller", []string{kube, "METRICS_PORT=0", "RUST_LOG=info"}, filepath.Join(up, "controller"))
	return agent, controller
}
