package shim_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wasilet/wasilet/shim"
)

func (e *env) crictlCmd(args ...string) *exec.Cmd {
	return exec.Command(e.crictlPath, append([]string{"--runtime-endpoint", "unix://" + e.c.Socket, "--image-endpoint", "unix://" + e.c.Socket, "--timeout", "60s"}, args...)...)
}

// crictl runs crictl against the test's containerd.
func (e *env) crictl(t *testing.T, args ...string) string {
	t.Helper()
	out, err := e.crictlCmd(args...).Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("crictl %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr)
	}
	return strings.TrimSpace(string(out))
}

// writePod writes the CRI pod sandbox config of a pod on the node's
// network, as hostNetwork pods are.
func writePod(t *testing.T, path, name, logDir string) string {
	return writeJSON(t, path, map[string]any{
		"metadata":      map[string]any{"name": name, "namespace": "shimtest", "uid": "uid-" + name, "attempt": 0},
		"log_directory": logDir,
		"linux": map[string]any{"security_context": map[string]any{
			"namespace_options": map[string]any{"network": 2, "pid": 1, "ipc": 0}, // NODE network
		}},
	})
}

// waitExited waits up to 30 s for a container to exit and returns
// "<state> <exit code> <reason>" as crictl inspect reports them last.
func (e *env) waitExited(t *testing.T, cid string) string {
	t.Helper()
	var status string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		status = e.crictl(t, "inspect", "-o", "go-template", "--template", "{{.status.state}} {{.status.exitCode}} {{.status.reason}}", cid)
		if strings.HasPrefix(status, "CONTAINER_EXITED ") {
			break
		}
	}
	return status
}

func writeJSON(t *testing.T, path string, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// shimPids lists the running processes of the shim binary under test.
func (e *env) shimPids(t testing.TB) []int {
	t.Helper()
	want := filepath.Join(e.shimBin, shim.BinaryName)
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, ent := range ents {
		var pid int
		if _, err := fmt.Sscan(ent.Name(), &pid); err != nil {
			continue
		}
		if exe, err := os.Readlink(filepath.Join("/proc", ent.Name(), "exe")); err == nil && exe == want {
			pids = append(pids, pid)
		}
	}
	return pids
}

// TestCRI runs a Wasm pod through the CRI with crictl, as the kubelet
// would with runtimeClassName: wasilet (runtime handler "wasilet").
func TestCRI(t *testing.T) {
	e := start(t)
	if _, err := os.Stat(e.crictlPath); err != nil {
		t.Skipf("no crictl: %v", err)
	}
	dir := t.TempDir()
	logDir := filepath.Join(dir, "logs")
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		t.Fatal(err)
	}
	pod := writePod(t, filepath.Join(dir, "pod.json"), "wasm-pod", logDir)
	ctrCfg := writeJSON(t, filepath.Join(dir, "container.json"), map[string]any{
		"metadata": map[string]any{"name": "main"},
		"image":    map[string]any{"image": e.moduleNode},
		// The image's entrypoint is /testprog.wasm; CRI args follow it.
		"args":     []string{"echo", "hello from the CRI", ";", "env", "FROM_POD", ";", "write", "/data/out.txt", "written", ";", "sleep", "1h"},
		"envs":     []map[string]string{{"key": "FROM_POD", "value": "yes"}},
		"mounts":   []map[string]any{{"container_path": "/data", "host_path": data}},
		"log_path": "main.log",
		"linux":    map[string]any{"resources": map[string]any{"memory_limit_in_bytes": 64 << 20}},
	})

	podID := e.crictl(t, "runp", "--runtime", "wasilet", pod)
	t.Logf("crictl runp: %s", podID)
	e.crictl(t, "pull", e.moduleNode)
	cid := e.crictl(t, "create", podID, ctrCfg, pod)
	e.crictl(t, "start", cid)

	var logs string
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		logs = e.crictl(t, "logs", cid)
		if strings.Contains(logs, "FROM_POD=yes") || time.Now().After(deadline) {
			break
		}
	}
	if want := "hello from the CRI\nFROM_POD=yes"; logs != want {
		t.Errorf("crictl logs: %q, want %q", logs, want)
	}
	if b, err := os.ReadFile(filepath.Join(data, "out.txt")); err != nil || string(b) != "written" {
		t.Errorf("the guest's write through the pod's mount: %q, %v", b, err)
	}
	if st := e.crictl(t, "inspect", "-o", "go-template", "--template", "{{.status.state}}", cid); st != "CONTAINER_RUNNING" {
		t.Errorf("state %s, want CONTAINER_RUNNING", st)
	}
	stats := e.crictl(t, "stats", "-o", "json", "--id", cid)
	t.Logf("crictl stats: %s", strings.Join(strings.Fields(stats), " "))
	if !strings.Contains(stats, `"memory"`) || !strings.Contains(stats, `"cpu"`) {
		t.Errorf("crictl stats: no cpu or memory: %s", stats)
	}
	if pids := e.shimPids(t); len(pids) != 1 {
		t.Errorf("%d shim processes for one pod (sandbox and container), want 1: %v", len(pids), pids)
	}
	// A second pod joins the same shim process (GroupingNode).
	pod2 := writePod(t, filepath.Join(dir, "pod2.json"), "wasm-pod-2", logDir)
	ctr2 := writeJSON(t, filepath.Join(dir, "container2.json"), map[string]any{
		"metadata": map[string]any{"name": "second"},
		"image":    map[string]any{"image": e.moduleNode},
		"args":     []string{"echo", "second pod", ";", "sleep", "1h"},
		"log_path": "second.log",
	})
	pod2ID := e.crictl(t, "runp", "--runtime", "wasilet", pod2)
	cid2 := e.crictl(t, "create", pod2ID, ctr2, pod2)
	e.crictl(t, "start", cid2)
	for deadline := time.Now().Add(30 * time.Second); e.crictl(t, "logs", cid2) != "second pod" && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
	}
	if logs := e.crictl(t, "logs", cid2); logs != "second pod" {
		t.Errorf("second pod's logs %q", logs)
	}
	if pids := e.shimPids(t); len(pids) != 1 {
		t.Errorf("%d shim processes for two pods, want 1 (one shim serves the node's Wasm pods): %v", len(pids), pids)
	}
	e.crictl(t, "stopp", pod2ID)
	e.crictl(t, "rmp", pod2ID)
	if pids := e.shimPids(t); len(pids) != 1 {
		t.Errorf("%d shim processes after the second pod was removed, want 1 (the first pod's guest still runs): %v", len(pids), pids)
	}

	began := time.Now()
	e.crictl(t, "stop", "--timeout", "10", cid)
	t.Logf("crictl stop took %s", time.Since(began).Round(time.Millisecond))
	if code := e.crictl(t, "inspect", "-o", "go-template", "--template", "{{.status.exitCode}}", cid); code != "143" {
		t.Errorf("exit code after crictl stop: %s, want 143 (SIGTERM)", code)
	}
	e.crictl(t, "rm", cid)
	e.crictl(t, "stopp", podID)
	e.crictl(t, "rmp", podID)
	for deadline := time.Now().Add(10 * time.Second); len(e.shimPids(t)) > 0 && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
	}
	if pids := e.shimPids(t); len(pids) != 0 {
		t.Errorf("shim still running after the pod was removed: %v", pids)
	}
}

// TestCRIOOMKilled: a guest that needs more than its container's memory
// limit ends as the kernel's OOM killer would leave a runc container —
// exit code 137 and reason OOMKilled in the CRI's status (the shim sends
// containerd the TaskOOM event) — with the reason on its stderr.
func TestCRIOOMKilled(t *testing.T) {
	e := start(t)
	if _, err := os.Stat(e.crictlPath); err != nil {
		t.Skipf("no crictl: %v", err)
	}
	dir := t.TempDir()
	pod := writePod(t, filepath.Join(dir, "pod.json"), "oom-pod", dir)
	cfg := writeJSON(t, filepath.Join(dir, "container.json"), map[string]any{
		"metadata": map[string]any{"name": "oom"},
		"image":    map[string]any{"image": e.moduleNode},
		"args":     []string{"echo", "allocating", ";", "alloc", "200Mi"},
		"log_path": "oom.log",
		"linux":    map[string]any{"resources": map[string]any{"memory_limit_in_bytes": 32 << 20}},
	})
	podID := e.crictl(t, "runp", "--runtime", "wasilet", pod)
	e.crictl(t, "pull", e.moduleNode)
	cid := e.crictl(t, "create", podID, cfg, pod)
	e.crictl(t, "start", cid)
	if status := e.waitExited(t, cid); status != "CONTAINER_EXITED 137 OOMKilled" {
		t.Errorf("status %q, want CONTAINER_EXITED 137 OOMKilled", status)
	}
	// The CRI log file: "<time> <stream> F <line>" lines.
	b, err := os.ReadFile(filepath.Join(dir, "oom.log"))
	if logs := string(b); err != nil || !strings.Contains(logs, " stdout F allocating\n") || !strings.Contains(logs, " stderr F "+shim.BinaryName+": out of memory: limit 32Mi") {
		t.Errorf("container log %q, %v: want the guest's line on stdout, then the out-of-memory reason on stderr", logs, err)
	}
	e.crictl(t, "rm", cid)
	e.crictl(t, "stopp", podID)
	e.crictl(t, "rmp", podID)
}
