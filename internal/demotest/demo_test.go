package demotest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/wasilet/wasilet/internal/cluster"
	"github.com/wasilet/wasilet/internal/nodetest"
)

const wantLine = `kubectl logs: Pod is running and using debugEcho device named: "foo0"`

// One timing per act: the Wasm handler pod behind the proxy, then the
// debugEcho component hosted by the agent.
var elapsed = regexp.MustCompile(`Configuration applied → broker log line: ([0-9.]+)s \(handler (\w+):`)

func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole demo: skipped with -short")
	}
	bin := nodetest.Bin(t)
	nodetest.WasmFile(t, "debug-echo.wasm")
	nodetest.WasmFile(t, "debug-echo-component.component.wasm")
	tools := os.Getenv("WASILET_TOOLS_DIR")
	if tools == "" {
		t.Skip("WASILET_TOOLS_DIR is not set (run through ./just test)")
	}
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	state := t.TempDir()
	ports, err := cluster.FreeClusterPorts()
	if err != nil {
		t.Fatal(err)
	}
	args := fmt.Sprintf("--apiserver-port %d --etcd-port %d --etcd-peer-port %d --controller-manager-port %d --scheduler-port %d --registry-port %d",
		ports.APIServer, ports.Etcd, ports.EtcdPeer, ports.ControllerManager, ports.Scheduler, ports.Registry)
	run := func(extra ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, filepath.Join(root, "hack", "demo.sh"), append([]string{state}, extra...)...)
		cmd.Env = append(os.Environ(), "WASILET_BIN="+bin, "WASILET_TOOLS_DIR="+tools,
			"WASILET_DEMO_CLUSTER_ARGS="+args, "WASILET_DEMO_WDE_DIR="+filepath.Join(state, "wde-dir"))
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("hack/demo.sh %v: %v\n%s", extra, err, out)
		}
		return string(out)
	}
	t.Cleanup(func() { run("--down") })
	for i := 1; i <= 2; i++ {
		out := run()
		for _, want := range []string{
			"instance.akri.sh/akri-debug-echo-8120fe",
			`limits:   {"akri.sh/akri-debug-echo-8120fe":"1"}`,
			`requests: {"akri.sh/akri-debug-echo-8120fe":"1"}`,
			"instance.akri.sh/akri-debug-echo-component-8120fe",
			`limits:   {"akri.sh/akri-debug-echo-component-8120fe":"1"}`,
			"./just demo-down",
		} {
			if !strings.Contains(out, want) {
				t.Fatalf("run %d: output lacks %q:\n%s", i, want, out)
			}
		}
		if n := strings.Count(out, wantLine); n != 2 {
			t.Fatalf("run %d: %d broker lines, want one per act:\n%s", i, n, out)
		}
		m := elapsed.FindAllStringSubmatch(out, -1)
		if len(m) != 2 || m[0][2] != "debugEcho" || m[1][2] != "debugEchoComponent" {
			t.Fatalf("run %d: want the timings of both acts (debugEcho, then debugEchoComponent) in the output:\n%s", i, out)
		}
		t.Logf("run %d: Configuration applied → broker log line: proxy + Wasm pod %ss, component %ss", i, m[0][1], m[1][1])
		if i == 2 && !strings.Contains(out, "reusing running node") {
			t.Errorf("second run did not reuse the node:\n%s", out)
		}
	}
}
