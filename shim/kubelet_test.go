package shim_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/wasilet/wasilet/internal/clustertest"
	"github.com/wasilet/wasilet/internal/containerdtest"
	"github.com/wasilet/wasilet/oci"
	"github.com/wasilet/wasilet/shim"
)

// TestKubeletRuntimeClass: the upstream kubelet, joined to the local
// control plane on a containerd that has this shim as runtime handler
// "wasilet", runs pods that pick it with runtimeClassName — a Wasm module
// beside ordinary containers on one node: its output in kubectl logs, its
// exit code in the pod's status, a CNCF Wasm artifact, and a sleeping guest stopped when its pod
// is deleted.
func TestKubeletRuntimeClass(t *testing.T) {
	env := clustertest.Require(t)
	if reason := containerdtest.Unavailable(""); reason != "" {
		t.Skip(reason)
	}
	mod := wasmFile(t, "testprog.wasm")
	c := containerdtest.Start(t, containerdtest.Options{
		RegistryAddr: env.RegistryAddr,
		ExtraPath:    []string{buildShim(t)},
		Env:          []string{shim.CacheDirEnv + "=" + t.TempDir()},
		Runtimes:     map[string]string{"wasilet": shim.RuntimeType},
	})
	k, err := containerdtest.StartKubelet(t, env, c)
	var u *containerdtest.UnavailableError
	switch {
	case errors.As(err, &u):
		t.Skip(u.Error())
	case err != nil:
		t.Fatal(err)
	}
	ctx := context.Background()
	// containerd's CRI unpacks only the node's platform (shim/doc.go).
	ref := env.RegistryAddr + "/shimtest/testprog:kubelet-" + goruntime.GOARCH
	if err := containerdtest.PushFileImage(ctx, ref, containerdtest.FileImage{
		Path: "testprog.wasm", Data: mod, Entrypoint: []string{"/testprog.wasm"},
		Platform: ocispec.Platform{OS: "linux", Architecture: goruntime.GOARCH},
	}); err != nil {
		t.Fatal(err)
	}
	rc := fmt.Sprintf("wasilet-%d", time.Now().UnixNano()%1e6)
	if _, err := env.Client.NodeV1().RuntimeClasses().Create(ctx, &nodev1.RuntimeClass{ObjectMeta: metav1.ObjectMeta{Name: rc}, Handler: "wasilet"}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = env.Client.NodeV1().RuntimeClasses().Delete(context.Background(), rc, metav1.DeleteOptions{})
	})
	ns := env.Namespace(t)
	pods := env.Client.CoreV1().Pods(ns)

	once := k.Pod(ns, "wasm-once", ref, "echo", "hello from a RuntimeClass pod", ";", "exit", "3")
	once.Spec.RuntimeClassName = &rc
	once.Spec.RestartPolicy = corev1.RestartPolicyNever
	if _, err := pods.Create(ctx, once, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	clustertest.Eventually(t, 2*time.Minute, "wasm-once Failed with exit code 3", func() error {
		p, err := pods.Get(ctx, once.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if p.Status.Phase != corev1.PodFailed || len(p.Status.ContainerStatuses) != 1 {
			return fmt.Errorf("phase %s, %+v; kubelet log:\n%s", p.Status.Phase, p.Status.ContainerStatuses, k.LogTail(10))
		}
		if term := p.Status.ContainerStatuses[0].State.Terminated; term == nil || term.ExitCode != 3 {
			return fmt.Errorf("container state %+v", p.Status.ContainerStatuses[0].State)
		}
		return nil
	})
	out, err := env.Kubectl(ctx, "logs", "-n", ns, once.Name)
	if err != nil || !strings.Contains(string(out), "hello from a RuntimeClass pod") {
		t.Errorf("kubectl logs: %v: %q", err, out)
	}

	// A CNCF Wasm artifact, as `wasilet push` makes it: containerd fetches
	// its layer without unpacking it and the shim reads it from the
	// content store. It has no entrypoint, so the args are the whole argv.
	artifactRef := env.RegistryAddr + "/shimtest/testprog:kubelet-artifact"
	f := filepath.Join(t.TempDir(), "testprog.wasm")
	if err := os.WriteFile(f, mod, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := oci.Push(ctx, f, artifactRef, oci.PushOptions{}); err != nil {
		t.Fatal(err)
	}
	artifact := k.Pod(ns, "wasm-artifact", artifactRef, "app.wasm", "echo", "hello from an artifact")
	artifact.Spec.RuntimeClassName = &rc
	artifact.Spec.RestartPolicy = corev1.RestartPolicyNever
	if _, err := pods.Create(ctx, artifact, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	clustertest.Eventually(t, 2*time.Minute, "wasm-artifact Succeeded", func() error {
		p, err := pods.Get(ctx, artifact.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if p.Status.Phase != corev1.PodSucceeded {
			return fmt.Errorf("phase %s, %+v; kubelet log:\n%s", p.Status.Phase, p.Status.ContainerStatuses, k.LogTail(10))
		}
		return nil
	})
	if out, err := env.Kubectl(ctx, "logs", "-n", ns, artifact.Name); err != nil || string(out) != "hello from an artifact\n" {
		t.Errorf("kubectl logs of the artifact pod: %v: %q", err, out)
	}

	sleeper := k.Pod(ns, "wasm-sleeper", ref, "echo", "up", ";", "sleep", "1h")
	sleeper.Spec.RuntimeClassName = &rc
	if _, err := pods.Create(ctx, sleeper, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	clustertest.Eventually(t, 2*time.Minute, "wasm-sleeper Running", func() error {
		p, err := pods.Get(ctx, sleeper.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if p.Status.Phase != corev1.PodRunning {
			return fmt.Errorf("phase %s", p.Status.Phase)
		}
		return nil
	})
	if err := pods.Delete(ctx, sleeper.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	clustertest.Eventually(t, 2*time.Minute, "wasm-sleeper gone", func() error {
		if _, err := pods.Get(ctx, sleeper.Name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("still there (%v)", err)
		}
		return nil
	})
	t.Logf("a sleeping Wasm pod deleted in %s (the kubelet's 30 s grace: the shim stops the guest at SIGTERM)", time.Since(start).Round(time.Millisecond))
}
