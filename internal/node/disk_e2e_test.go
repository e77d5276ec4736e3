package node_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/wasilet/wasilet/internal/clustertest"
	"github.com/wasilet/wasilet/internal/nodetest"
	"github.com/wasilet/wasilet/internal/reliability"
)

// The node's data directory fills up (a small tmpfs): DiskPressure goes True,
// Ready goes False naming the data directory, the controller-manager taints
// the node, a pod whose image must be pulled fails with the reason; space
// returns and everything recovers — the pod runs, the node was never down.
func TestE2EDiskFull(t *testing.T) {
	env := clustertest.Require(t)
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a small filesystem here (needs root): %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", dir).Run() })
	ref := nodetest.PushWasm(t, env, nodetest.WasmFile(t, "testprog.wasm"), "testprog:diskfull")
	n := nodetest.Start(t, nodetest.Options{DataDir: filepath.Join(dir, "node")})
	ctx := context.Background()

	fill := filepath.Join(dir, "fill")
	if err := fillUp(fill); err != nil {
		t.Fatal(err)
	}
	filled := time.Now()
	clustertest.Eventually(t, time.Minute, "DiskPressure True, Ready False, disk-pressure taint", func() error {
		no := n.Object(t)
		dp, ready := nodetest.Condition(no, corev1.NodeDiskPressure), nodetest.Condition(no, corev1.NodeReady)
		if dp.Status != corev1.ConditionTrue {
			return fmt.Errorf("DiskPressure %s", dp.Status)
		}
		if ready.Status != corev1.ConditionFalse || ready.Reason != "KubeletNotReady" || !strings.Contains(ready.Message, "data directory") || !strings.Contains(ready.Message, "no space left") {
			return fmt.Errorf("Ready %s %s %q", ready.Status, ready.Reason, ready.Message)
		}
		for _, taint := range no.Spec.Taints {
			if taint.Key == corev1.TaintNodeDiskPressure {
				return nil
			}
		}
		return fmt.Errorf("taints %v", no.Spec.Taints)
	})
	toPressure := time.Since(filled)
	notReady := nodetest.Condition(n.Object(t), corev1.NodeReady).Message

	// The scheduler keeps pods off a tainted node; bind one directly, as a
	// DaemonSet would, with an image the node has not pulled.
	ns := env.Namespace(t)
	p := n.Pod(ns, "needs-space", ref, func(p *corev1.Pod) {
		p.Spec.NodeName = n.Name
		p.Spec.Containers[0].Args = []string{"sleep", "1h"}
	})
	n.CreatePod(t, p)
	n.WaitPod(t, ns, p.Name, time.Minute, "image pull failing for lack of space", func(p *corev1.Pod) (bool, error) {
		for _, cs := range p.Status.ContainerStatuses {
			if w := cs.State.Waiting; w != nil && (w.Reason == "ErrImagePull" || w.Reason == "ImagePullBackOff") {
				if !strings.Contains(w.Message, "no space left") {
					return false, fmt.Errorf("%s without the cause: %q", w.Reason, w.Message)
				}
				return true, nil
			}
		}
		return false, nil
	})

	if err := os.Remove(fill); err != nil {
		t.Fatal(err)
	}
	freed := time.Now()
	clustertest.Eventually(t, time.Minute, "DiskPressure False, Ready True", func() error {
		no := n.Object(t)
		if dp := nodetest.Condition(no, corev1.NodeDiskPressure); dp.Status != corev1.ConditionFalse {
			return fmt.Errorf("DiskPressure %s", dp.Status)
		}
		if r := nodetest.Condition(no, corev1.NodeReady); r.Status != corev1.ConditionTrue {
			return fmt.Errorf("Ready %s %q", r.Status, r.Message)
		}
		return nil
	})
	toReady := time.Since(freed)
	n.WaitPodPhase(t, ns, p.Name, corev1.PodRunning, 3*time.Minute)
	toRunning := time.Since(freed)
	if !n.Running() {
		t.Fatal("the node exited")
	}
	reliability.Record(t, reliability.Entry{
		Fault: "the node's data directory (a 64 MiB tmpfs) filled to the last byte, then emptied",
		Kept: []string{
			"DiskPressure True and the node tainted " + corev1.TaintNodeDiskPressure + " by the controller-manager",
			"Ready False: " + notReady,
			"a pod needing a pull fails with ErrImagePull/ImagePullBackOff naming \"no space left on device\"",
			"the node process keeps running; DiskPressure False and Ready True once space returns; the pod runs",
		},
		Figures: []reliability.Figure{
			reliability.Duration("disk full → DiskPressure, Ready False, taint", toPressure, 10*time.Second),
			reliability.Duration("space back → Ready", toReady, 10*time.Second),
			{Name: "space back → pod Running", Value: toRunning.Round(time.Millisecond).String()},
		},
	})
	_ = env.Client.CoreV1().Pods(ns).Delete(ctx, p.Name, metav1.DeleteOptions{})
}

// fillUp writes path until its filesystem is full.
func fillUp(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	for {
		if _, err := f.Write(buf); err != nil {
			if errors.Is(err, syscall.ENOSPC) {
				return nil
			}
			return err
		}
	}
}
