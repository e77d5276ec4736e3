package cri

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/wasilet/wasilet/internal/grpcsock/grpcsocktest"
)

type fakePods struct{ pods []Pod }

func (f fakePods) Snapshot() []Pod {
	out := make([]Pod, len(f.pods))
	copy(out, f.pods)
	return out
}

type fakeImages []Image

func (f fakeImages) Images() []Image { return append([]Image(nil), f...) }

const (
	webUID    = "0b5a6c1e-7f44-4b1e-9d7e-2f7d1c9a0001"
	jobUID    = "7c1d2e3f-aaaa-4bbb-8ccc-000000000002"
	imgID     = "sha256:4e1f0c7d9b2a8e6f3c5d7a9b1e3f5a7c9d1b3e5f7a9c1d3e5f7a9b1c3d5e7f9a"
	webC1     = "b2c0ffee00000000000000000000000000000000000000000000000000000001"
	webC0     = "a1c0ffee00000000000000000000000000000000000000000000000000000000"
	jobC      = "dead000000000000000000000000000000000000000000000000000000000002"
	testImage = "127.0.0.1:5000/wasm/hello:v1"
)

func fixture(t *testing.T, dir string) (fakePods, fakeImages) {
	t.Helper()
	logDir := filepath.Join(dir, "pods", webUID, "hello")
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name, content string) string {
		p := filepath.Join(logDir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	prev := write("0.log", "2026-11-25T10:00:00.000000001Z stdout F first attempt\n")
	cur := write("1.log", "2026-11-25T10:00:05.000000001Z stdout F Hello, world!\n"+
		"2026-11-25T10:00:05.100000001Z stderr P part one \n"+
		"2026-11-25T10:00:05.100000002Z stderr F and two\n")
	created := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	pods := fakePods{pods: []Pod{
		{
			UID: webUID, Name: "web", Namespace: "default", Labels: map[string]string{"app": "web"},
			CreatedAt: created, Ready: true, IP: "10.0.0.7",
			Containers: []Container{
				{ID: webC0, Name: "hello", Image: testImage, ImageRef: "127.0.0.1:5000/wasm/hello@" + imgID, ImageID: imgID,
					State: ContainerExited, CreatedAt: created, StartedAt: created, FinishedAt: created.Add(time.Second),
					ExitCode: 1, Reason: "Error", Message: "trap", LogPath: prev, RestartCount: 0},
				{ID: webC1, Name: "hello", Image: testImage, ImageRef: "127.0.0.1:5000/wasm/hello@" + imgID, ImageID: imgID,
					State: ContainerRunning, CreatedAt: created.Add(5 * time.Second), StartedAt: created.Add(5 * time.Second),
					LogPath: cur, RestartCount: 1, Annotations: map[string]string{"example.com/dev": "d1"},
					Mounts:        []Mount{{ContainerPath: "/data", HostPath: filepath.Join(dir, "data"), ReadOnly: true}},
					CPUUsageNanos: 12345678, MemoryBytes: 1 << 20, StatsAt: time.Now()},
			},
		},
		{
			UID: jobUID, Name: "job", Namespace: "batch", CreatedAt: created.Add(time.Minute), Ready: false,
			Containers: []Container{{ID: jobC, Name: "task", Image: testImage, ImageID: imgID, State: ContainerExited,
				CreatedAt: created.Add(time.Minute), FinishedAt: created.Add(2 * time.Minute), ExitCode: 0, Reason: "Completed",
				LogPath: filepath.Join(dir, "pods", jobUID, "task", "0.log")}},
		},
	}}
	images := fakeImages{{ID: imgID, RepoTags: []string{testImage}, RepoDigests: []string{"127.0.0.1:5000/wasm/hello@" + imgID}, Size: 123456}}
	return pods, images
}

func startServer(t *testing.T) (*Server, string) {
	t.Helper()
	dir, err := os.MkdirTemp("/tmp", "cri")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	pods, images := fixture(t, dir)
	os.MkdirAll(filepath.Join(dir, "oci", "blobs"), 0o755)
	os.WriteFile(filepath.Join(dir, "oci", "blobs", "x"), make([]byte, 1000), 0o644)
	s, err := New(Options{Socket: filepath.Join(dir, "cri.sock"), Pods: pods, Images: images, ImageFsDir: filepath.Join(dir, "oci"),
		RuntimeVersion: "1.2.3", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s, dir
}

func crictlPath(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("WASILET_TOOLS_DIR")
	if dir == "" {
		if testing.Short() {
			t.Skip("WASILET_TOOLS_DIR not set (-short)")
		}
		t.Fatal("WASILET_TOOLS_DIR is not set: point it at the output of `hack/tools.sh --dir` (needs crictl)")
	}
	p := filepath.Join(dir, "crictl")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("crictl not found in WASILET_TOOLS_DIR=%s: %v", dir, err)
	}
	return p
}

// crictl runs the real crictl against the server.
func crictl(t *testing.T, bin, dir, sock string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	cfg := filepath.Join(dir, "crictl.yaml")
	if err := os.WriteFile(cfg, []byte("runtime-endpoint: unix://"+sock+"\nimage-endpoint: unix://"+sock+"\ntimeout: 60\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	full := append([]string{"--config", cfg, "--runtime-endpoint", "unix://" + sock, "--image-endpoint", "unix://" + sock, "--timeout", "60s"}, args...)
	cmd := exec.CommandContext(ctx, bin, full...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

func TestCrictl(t *testing.T) {
	bin := crictlPath(t)
	s, dir := startServer(t)
	run := func(args ...string) string {
		t.Helper()
		out, err := crictl(t, bin, dir, s.SocketPath(), args...)
		if err != nil {
			t.Fatalf("crictl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	contains := func(what, out string, want ...string) {
		t.Helper()
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Fatalf("crictl %s output lacks %q:\n%s", what, w, out)
			}
		}
	}

	contains("version", run("version"), "RuntimeName:  wasilet", "RuntimeVersion:  1.2.3", "RuntimeApiVersion:  v1")
	contains("info", run("info"), `"type": "RuntimeReady"`, `"type": "NetworkReady"`)

	pods := run("pods")
	contains("pods", pods, "web", "default", "job", "batch", "Ready", "NotReady", webUID[:13])
	readyOnly := run("pods", "--state", "ready")
	if strings.Contains(readyOnly, "job") {
		t.Fatalf("crictl pods --state ready lists the terminated pod:\n%s", readyOnly)
	}
	contains("pods --label", run("pods", "--label", "app=web", "-q"), webUID)

	psAll := run("ps", "-a")
	contains("ps -a", psAll, "hello", "task", "Running", "Exited", "web", webC1[:13], webC0[:13], jobC[:13])
	ps := run("ps")
	if strings.Contains(ps, "Exited") || !strings.Contains(ps, "Running") {
		t.Fatalf("crictl ps (running only):\n%s", ps)
	}
	contains("ps --pod", run("ps", "-a", "--pod", jobUID[:8], "-q"), jobC)

	// inspect prints JSON: status and the verbose info.
	var inspected struct {
		Status struct {
			ID       string `json:"id"`
			State    string `json:"state"`
			LogPath  string `json:"logPath"`
			ExitCode int    `json:"exitCode"`
			Metadata struct {
				Name    string `json:"name"`
				Attempt int    `json:"attempt"`
			} `json:"metadata"`
			Mounts []struct {
				ContainerPath string `json:"containerPath"`
				Readonly      bool   `json:"readonly"`
			} `json:"mounts"`
		} `json:"status"`
		Info map[string]any `json:"info"`
	}
	out := run("inspect", webC1[:13])
	if err := json.Unmarshal([]byte(out), &inspected); err != nil {
		t.Fatalf("crictl inspect output is not JSON: %v\n%s", err, out)
	}
	if inspected.Status.ID != webC1 || inspected.Status.State != "CONTAINER_RUNNING" || !strings.HasSuffix(inspected.Status.LogPath, "/hello/1.log") ||
		inspected.Status.Metadata.Name != "hello" || inspected.Status.Metadata.Attempt != 1 || len(inspected.Status.Mounts) != 1 || !inspected.Status.Mounts[0].Readonly {
		t.Fatalf("crictl inspect status: %+v\n%s", inspected.Status, out)
	}
	if inspected.Info["sandboxID"] != webUID || inspected.Info["runtimeHandler"] != "wasmtime" {
		t.Fatalf("crictl inspect info: %v", inspected.Info)
	}
	contains("inspect exited", run("inspect", jobC), `"exitCode": 0`, `"reason": "Completed"`, "CONTAINER_EXITED")
	contains("inspectp", run("inspectp", webUID), `"state": "SANDBOX_READY"`, `"ip": "10.0.0.7"`, `"io.kubernetes.pod.name": "web"`)

	contains("images", run("images"), "127.0.0.1:5000/wasm/hello", "v1", "4e1f0c7d9b2a8", "123kB")
	contains("inspecti", run("inspecti", testImage), imgID, `"size": "123456"`)
	contains("imagefsinfo", run("imagefsinfo"), `"usedBytes"`, `"1000"`)

	logs := run("logs", webC1)
	if want := "Hello, world!\npart one and two\n"; logs != want {
		t.Fatalf("crictl logs = %q, want %q", logs, want)
	}
	contains("logs --timestamps", run("logs", "--timestamps", webC1), "2026-11-25T10:00:05.000000001Z Hello, world!")
	if tail := run("logs", "--tail", "1", webC1); strings.Contains(tail, "Hello") || !strings.Contains(tail, "and two") {
		t.Fatalf("crictl logs --tail 1 = %q", tail)
	}
	if prev := run("logs", "--previous", webC1); prev != "first attempt\n" {
		t.Fatalf("crictl logs --previous = %q", prev)
	}

	contains("stats", run("stats", "-o", "json"), webC1, `"workingSetBytes"`, "1048576")
	contains("statsp", run("statsp", "-o", "json"), webUID)

	// Mutating calls are refused with a pointer to the Kubernetes API.
	for _, args := range [][]string{{"stopp", webUID}, {"rmp", jobUID}, {"stop", webC1}, {"rm", jobC}, {"pull", testImage}, {"exec", webC1, "true"}} {
		out, err := crictl(t, bin, dir, s.SocketPath(), args...)
		if err == nil {
			t.Fatalf("crictl %s succeeded:\n%s", strings.Join(args, " "), out)
		}
		if !strings.Contains(out, "Unimplemented") || !strings.Contains(out, "Kubernetes API") {
			t.Fatalf("crictl %s: want Unimplemented pointing to the Kubernetes API, got:\n%s", strings.Join(args, " "), out)
		}
	}
}

func TestGRPCEdges(t *testing.T) {
	s, _ := startServer(t)
	conn, err := grpc.NewClient("unix://"+s.SocketPath(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	rt := runtimeapi.NewRuntimeServiceClient(conn)
	im := runtimeapi.NewImageServiceClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// A method the server does not implement gets a helpful message.
	_, err = rt.RuntimeConfig(ctx, &runtimeapi.RuntimeConfigRequest{})
	if status.Code(err) != codes.Unimplemented || !strings.Contains(err.Error(), "RuntimeConfig is not supported by wasilet") {
		t.Fatalf("RuntimeConfig = %v", err)
	}
	_, err = rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: webUID})
	if status.Code(err) != codes.Unimplemented || !strings.Contains(err.Error(), "Kubernetes API") {
		t.Fatalf("StopPodSandbox = %v", err)
	}
	// Missing objects.
	if _, err := rt.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: "nope"}); status.Code(err) != codes.NotFound {
		t.Fatalf("ContainerStatus of a missing container = %v", err)
	}
	if r, err := im.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: "127.0.0.1:5000/other:v1"}}); err != nil || r.Image != nil {
		t.Fatalf("ImageStatus of a missing image = %v, %v; want empty response", r, err)
	}
	// Streaming list calls.
	st, err := rt.StreamContainers(ctx, &runtimeapi.StreamContainersRequest{Filter: &runtimeapi.ContainerFilter{PodSandboxId: webUID}})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for {
		r, err := st.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		n += len(r.Containers)
	}
	if n != 2 {
		t.Fatalf("StreamContainers for pod web: %d containers, want 2", n)
	}
}

// TestStartStop checks the start/stop contract (grpcsocktest) and that New
// refuses a socket path too long for a unix socket.
func TestStartStop(t *testing.T) {
	s, _ := startServer(t)
	grpcsocktest.CheckLifecycle(t, s, "cri")
	long := "/tmp/" + strings.Repeat("x", 100) + ".sock"
	_, err := New(Options{Socket: long, Pods: s.opts.Pods})
	if err == nil || err.Error() != "cri: socket path "+long+" is longer than 107 bytes" {
		t.Fatalf("New with a %d-byte socket path = %v", len(long), err)
	}
}
