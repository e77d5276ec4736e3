package e2e

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
)

// timeline records when the broker pods and Instances of a namespace change
// (local receive times on two watches), so a slow device path can be broken
// down: apply → Instance → pod created → bound → Running. A debugging aid
// of the benchmark: with WASILET_BENCH_TIMELINE=FILE each run's timeline is
// appended to FILE (benchmark logs are cut short); nothing it sees is reported.
type timeline struct {
	mu     sync.Mutex
	events []tlEvent
}

type tlEvent struct {
	at   time.Time
	what string
}

func (tl *timeline) add(what string) {
	tl.mu.Lock()
	tl.events = append(tl.events, tlEvent{time.Now(), what})
	tl.mu.Unlock()
}

// since renders the events after start as offsets from it, and forgets them.
func (tl *timeline) since(start time.Time) string {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	sort.SliceStable(tl.events, func(i, j int) bool { return tl.events[i].at.Before(tl.events[j].at) })
	var b strings.Builder
	for _, e := range tl.events {
		if !e.at.Before(start) {
			fmt.Fprintf(&b, "  +%4d ms %s\n", e.at.Sub(start).Milliseconds(), e.what)
		}
	}
	tl.events = nil
	return b.String()
}

func (tl *timeline) write(b testing.TB, text string) {
	f, err := os.OpenFile(os.Getenv("WASILET_BENCH_TIMELINE"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(text + "\n"); err != nil {
		b.Fatal(err)
	}
}

func watchTimeline(b testing.TB, s *scenario) *timeline {
	tl := new(timeline)
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	cs := kubernetes.NewForConfigOrDie(s.env.Config)
	w, err := cs.CoreV1().Pods(s.ns).Watch(ctx, metav1.ListOptions{})
	if err != nil {
		b.Fatal(err)
	}
	go func() {
		for ev := range w.ResultChan() {
			p, ok := ev.Object.(*corev1.Pod)
			if !ok {
				continue
			}
			ready := ""
			for _, c := range p.Status.ContainerStatuses {
				if c.State.Running != nil {
					ready = " container running"
				}
			}
			tl.add(fmt.Sprintf("pod %s %s node=%q phase=%s%s", p.Name, ev.Type, p.Spec.NodeName, p.Status.Phase, ready))
		}
	}()
	dc := dynamic.NewForConfigOrDie(s.env.Config)
	for _, r := range []string{"configurations", "instances"} {
		w, err := dc.Resource(schema.GroupVersionResource{Group: "akri.sh", Version: "v0", Resource: r}).Namespace(s.ns).Watch(ctx, metav1.ListOptions{})
		if err != nil {
			b.Fatal(err)
		}
		go func() {
			for ev := range w.ResultChan() {
				if u, ok := ev.Object.(*unstructured.Unstructured); ok {
					tl.add(fmt.Sprintf("%s %s %s rv=%s", u.GetKind(), u.GetName(), ev.Type, u.GetResourceVersion()))
				}
			}
		}()
	}
	nw, err := cs.CoreV1().Nodes().Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + s.node.Name})
	if err != nil {
		b.Fatal(err)
	}
	go func() {
		for ev := range nw.ResultChan() {
			n, ok := ev.Object.(*corev1.Node)
			if !ok {
				continue
			}
			var rs []string
			for r, q := range n.Status.Allocatable {
				if strings.Contains(string(r), "/") {
					rs = append(rs, fmt.Sprintf("%s=%s", r, q.String()))
				}
			}
			sort.Strings(rs)
			tl.add(fmt.Sprintf("node %s allocatable %v", ev.Type, rs))
		}
	}()
	return tl
}
