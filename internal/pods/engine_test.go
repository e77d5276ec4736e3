package pods

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/virtual-kubelet/virtual-kubelet/node/api"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/wasilet/wasilet/runtime"
)

// fileImages serves one wasm file for every reference.
type fileImages struct{ img *Image }

func (f fileImages) Resolve(ctx context.Context, ref string) (*Image, error) { return f.img, nil }
func (f fileImages) Pull(ctx context.Context, ref string, s []corev1.Secret) (*Image, error) {
	return f.img, nil
}

// forEachRealBuild runs f, as a subtest per build of the test program
// (module and component, from bin/wasm), with a Provider over the real
// wasmtime engine whose every image is that build.
func forEachRealBuild(t *testing.T, f func(t *testing.T, file string, p *Provider)) {
	t.Helper()
	if testing.Short() {
		t.Skip("needs bin/wasm (hack/wasm.sh): skipped with -short")
	}
	dir := os.Getenv("WASILET_WASM_DIR")
	if dir == "" {
		dir = filepath.Join("..", "..", "bin", "wasm")
	}
	eng, err := runtime.NewEngine(runtime.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	for _, file := range []string{"testprog.wasm", "testprog.component.wasm"} {
		t.Run(file, func(t *testing.T) {
			wasm, err := os.ReadFile(filepath.Join(dir, file))
			if err != nil {
				t.Fatalf("%v: build the test programs with hack/wasm.sh or set WASILET_WASM_DIR", err)
			}
			p, err := New(Config{
				NodeName: "node1", NodeIP: "127.0.0.1", DataDir: t.TempDir(),
				Runtime: EngineRuntime{Engine: eng},
				Images:  fileImages{img: &Image{Wasm: wasm, ID: "testprog@sha256:x"}},
			})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			f(t, file, p)
		})
	}
}

// TestWithRealRuntime runs the test program through the real wasmtime
// engine (module and component builds): argv, the termination log preopen,
// volumes and the memory limit, without a cluster.
func TestWithRealRuntime(t *testing.T) {
	forEachRealBuild(t, func(t *testing.T, file string, p *Provider) {
		h := &harness{t: t, p: p}
		host := t.TempDir()
		pod := testPod("real", corev1.RestartPolicyNever,
			ctr("hello", "hello", ";", "args", ";", "write", "/data/out", "ok", ";", "read", "/cfg/in"),
			ctr("fail", "fail", "it failed"),
		)
		os.WriteFile(filepath.Join(host, "in"), []byte("input"), 0o644)
		pod.Spec.Volumes = []corev1.Volume{
			{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
			{Name: "cfg", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: host}}},
		}
		pod.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/data"}, {Name: "cfg", MountPath: "/cfg", ReadOnly: true}}
		oom := ctr("oom", "alloc", "100Mi")
		oom.Resources.Limits = corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("16Mi")}
		pod.Spec.Containers = append(pod.Spec.Containers, oom)
		p.CreatePod(context.Background(), pod)
		got := h.waitFor(pod, "Failed", phaseIs(corev1.PodFailed))
		byName := map[string]*corev1.ContainerStateTerminated{}
		for _, cs := range got.Status.ContainerStatuses {
			byName[cs.Name] = cs.State.Terminated
		}
		if tm := byName["hello"]; tm == nil || tm.ExitCode != 0 {
			t.Fatalf("hello: %+v (log %q)", tm, h.logs(pod, "hello", api.ContainerLogOpts{}))
		}
		if l := h.logs(pod, "hello", api.ContainerLogOpts{}); l != "Hello, world!\nhello\nhello\n;\nargs\n;\nwrite\n/data/out\nok\n;\nread\n/cfg/in\ninput\n" {
			t.Fatalf("hello logs %q", l)
		}
		if tm := byName["fail"]; tm == nil || tm.ExitCode != 1 || tm.Message != "it failed" {
			t.Fatalf("fail: %+v", tm)
		}
		if tm := byName["oom"]; tm == nil || tm.Reason != "OOMKilled" || tm.ExitCode != 137 {
			t.Fatalf("oom: %+v", tm)
		}
		if !strings.Contains(byName["oom"].Message, "memory") {
			t.Fatalf("oom message %q", byName["oom"].Message)
		}
	})
}
