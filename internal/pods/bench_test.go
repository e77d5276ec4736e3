package pods

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
)

// BenchmarkCreateToRunning measures the provider's own share of pod start
// latency: CreatePod until the container is reported Running (fake image
// service and runtime; state files written for real).
func BenchmarkCreateToRunning(b *testing.B) {
	p, err := New(Config{
		NodeName: "node1", NodeIP: "127.0.0.1", DataDir: b.TempDir(),
		Recorder: record.NewFakeRecorder(1 << 20), Runtime: &fakeRuntime{},
		Images: &fakeImages{present: map[string]bool{"127.0.0.1:5000/test:v1": true}, fail: map[string]error{}},
	})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	running := make(chan string, 1024)
	p.NotifyPods(context.Background(), func(pod *corev1.Pod) {
		if len(pod.Status.ContainerStatuses) > 0 && pod.Status.ContainerStatuses[0].State.Running != nil {
			select {
			case running <- pod.Name:
			default:
			}
		}
	})
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		name := fmt.Sprintf("p%d", i)
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: types.UID("uid-" + name)},
			Spec:       corev1.PodSpec{RestartPolicy: corev1.RestartPolicyAlways, Containers: []corev1.Container{ctr("c", "spin")}},
		}
		if err := p.CreatePod(context.Background(), pod); err != nil {
			b.Fatal(err)
		}
		deadline := time.After(30 * time.Second)
	wait:
		for {
			select {
			case n := <-running:
				if n == name {
					break wait
				}
			case <-deadline:
				b.Fatalf("pod %s not running", name)
			}
		}
	}
}
