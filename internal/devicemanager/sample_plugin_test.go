package devicemanager

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/wasilet/wasilet/internal/devicemanager/plugintest"
)

const sampleResource = plugintest.SampleResource

// toolsDir returns WASILET_TOOLS_DIR (hack/tools.sh --dir); end-to-end tests
// skip without it under -short and fail otherwise.
func toolsDir(t *testing.T, tool string) string {
	t.Helper()
	dir := os.Getenv("WASILET_TOOLS_DIR")
	if dir == "" {
		if testing.Short() {
			t.Skip("WASILET_TOOLS_DIR not set (-short)")
		}
		t.Fatal("WASILET_TOOLS_DIR is not set: point it at the output of `hack/tools.sh --dir` (needs " + tool + ")")
	}
	if _, err := os.Stat(filepath.Join(dir, tool)); err != nil {
		if testing.Short() {
			t.Skipf("%s not in WASILET_TOOLS_DIR (-short): %v", tool, err)
		}
		t.Fatalf("%s not found in WASILET_TOOLS_DIR=%s: %v (run `hack/tools.sh %s`)", tool, dir, err, tool)
	}
	return dir
}

func TestSampleDevicePlugin(t *testing.T) {
	tools := toolsDir(t, "sample-device-plugin")
	dir := shortDir(t)
	m := startManager(t, dir, time.Hour)
	plugintest.StartSample(t, filepath.Join(tools, "sample-device-plugin"), dir)
	waitCounts(t, m, sampleResource, 2, 2)

	pod := testPod("s1", ctr{name: "app", req: map[string]int64{sampleResource: 1}})
	ctx := context.Background()
	if err := m.Admit(ctx, pod); err != nil {
		t.Fatalf("Admit: %v", err)
	}
	alloc, err := m.PrepareContainer(ctx, pod, "app")
	if err != nil {
		t.Fatalf("PrepareContainer: %v", err)
	}
	ids := alloc.DeviceIDs[sampleResource]
	if len(ids) != 1 || !slices.Contains([]string{"Dev-1", "Dev-2"}, ids[0]) {
		t.Fatalf("device ids = %v", ids)
	}
	// The sample plugin mounts /tmp/<device id> at the same path.
	want := Mount{ContainerPath: "/tmp/" + ids[0], HostPath: "/tmp/" + ids[0]}
	if len(alloc.Mounts) != 1 || alloc.Mounts[0] != want {
		t.Fatalf("mounts = %+v, want [%+v]", alloc.Mounts, want)
	}
	if err := m.Admit(ctx, testPod("s2", ctr{name: "app", req: map[string]int64{sampleResource: 2}})); !IsAdmissionError(err) {
		t.Fatalf("over-request admitted: %v", err)
	}

	// Restart the manager: kubelet.sock is recreated, the plugin notices,
	// restarts its server and registers again; the allocation survives.
	m.Stop()
	m2 := startManager(t, dir, time.Hour)
	waitCounts(t, m2, sampleResource, 2, 2)
	again, err := m2.PrepareContainer(ctx, pod, "app")
	if err != nil || again == nil || !slices.Equal(again.DeviceIDs[sampleResource], ids) {
		t.Fatalf("after restart: %+v, %v; want device %v", again, err, ids)
	}
	if err := m2.Admit(ctx, testPod("s3", ctr{name: "app", req: map[string]int64{sampleResource: 1}})); err != nil {
		t.Fatalf("the other device is free: %v", err)
	}
	if err := m2.Admit(ctx, testPod("s4", ctr{name: "app", req: map[string]int64{sampleResource: 1}})); !IsAdmissionError(err) {
		t.Fatalf("a third device was handed out: %v", err)
	}
}
