package nodebench

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	watchtools "k8s.io/client-go/tools/watch"
)

// podTimes are the local times at which one pod was created (just before
// the Create call) and first seen bound and running by the watch.
type podTimes struct {
	created, scheduled, running time.Time
	failure                     string // why the pod will not run, if it will not
	last                        string // its last observed status, for errors
}

// recorder follows the pods of a namespace through one watch (a
// RetryWatcher, so a closed watch resumes) and records when the pods it
// expects are bound and running. Other pods (warm-up) are ignored.
type recorder struct {
	rw *watchtools.RetryWatcher

	mu      sync.Mutex
	pods    map[string]*podTimes
	err     error         // the watch failed
	changed chan struct{} // signalled (non-blocking) on every recorded change
	done    chan struct{}
}

type podWatcher struct {
	client    kubernetes.Interface
	namespace string
}

func (w podWatcher) WatchWithContext(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
	return w.client.CoreV1().Pods(w.namespace).Watch(ctx, o)
}

// watchPods starts a recorder on namespace; stop it with stop.
func watchPods(ctx context.Context, client kubernetes.Interface, namespace string) (*recorder, error) {
	list, err := client.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list pods in %s: %w", namespace, err)
	}
	rw, err := watchtools.NewRetryWatcherWithContext(ctx, list.ResourceVersion, podWatcher{client, namespace})
	if err != nil {
		return nil, fmt.Errorf("watch pods in %s: %w", namespace, err)
	}
	r := &recorder{rw: rw, pods: map[string]*podTimes{}, changed: make(chan struct{}, 1), done: make(chan struct{})}
	go r.loop()
	return r, nil
}

func (r *recorder) stop() {
	r.rw.Stop()
	<-r.done
}

func (r *recorder) loop() {
	defer close(r.done)
	for ev := range r.rw.ResultChan() {
		now := time.Now()
		switch ev.Type {
		case watch.Added, watch.Modified:
			if p, ok := ev.Object.(*corev1.Pod); ok {
				r.observe(p, now)
			}
		case watch.Error:
			r.mu.Lock()
			r.err = fmt.Errorf("pod watch: %v", ev.Object)
			r.mu.Unlock()
			r.signal()
		}
	}
}

func (r *recorder) signal() {
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

// expect registers a pod about to be created, with its creation time now.
func (r *recorder) expect(name string) {
	r.mu.Lock()
	r.pods[name] = &podTimes{created: time.Now()}
	r.mu.Unlock()
}

func (r *recorder) observe(p *corev1.Pod, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	t, ok := r.pods[p.Name]
	if !ok {
		return
	}
	if t.scheduled.IsZero() && p.Spec.NodeName != "" {
		t.scheduled = now
	}
	if t.running.IsZero() && running(p) {
		t.running = now
	}
	if t.running.IsZero() && t.failure == "" {
		t.failure = failure(p)
	}
	t.last = brief(p)
	r.signal()
}

// running: phase Running with a running container.
func running(p *corev1.Pod) bool {
	if p.Status.Phase != corev1.PodRunning {
		return false
	}
	for _, cs := range p.Status.ContainerStatuses {
		if cs.State.Running != nil {
			return true
		}
	}
	return false
}

// failure says why a pod that should run forever will not run, or "".
func failure(p *corev1.Pod) string {
	switch p.Status.Phase {
	case corev1.PodFailed, corev1.PodSucceeded:
		return fmt.Sprintf("phase %s: %s %s", p.Status.Phase, p.Status.Reason, p.Status.Message)
	}
	for _, cs := range p.Status.ContainerStatuses {
		if w := cs.State.Waiting; w != nil {
			switch w.Reason {
			case "ErrImagePull", "ImagePullBackOff", "CrashLoopBackOff", "InvalidImageName",
				"CreateContainerError", "CreateContainerConfigError", "RunContainerError":
				return fmt.Sprintf("container %s waiting: %s: %s", cs.Name, w.Reason, w.Message)
			}
		}
		if term := cs.State.Terminated; term != nil {
			return fmt.Sprintf("container %s terminated: exit %d %s: %s", cs.Name, term.ExitCode, term.Reason, term.Message)
		}
	}
	return ""
}

func brief(p *corev1.Pod) string {
	var b strings.Builder
	fmt.Fprintf(&b, "node=%q phase=%s", p.Spec.NodeName, p.Status.Phase)
	for _, cs := range p.Status.ContainerStatuses {
		fmt.Fprintf(&b, " %s:", cs.Name)
		switch s := cs.State; {
		case s.Running != nil:
			b.WriteString("running")
		case s.Waiting != nil:
			fmt.Fprintf(&b, "waiting(%s)", s.Waiting.Reason)
		case s.Terminated != nil:
			fmt.Fprintf(&b, "terminated(%d %s)", s.Terminated.ExitCode, s.Terminated.Reason)
		}
	}
	return b.String()
}

// wait blocks until every named pod has been seen running. It fails as soon
// as one of them cannot run or the watch fails, and at the deadline of ctx,
// naming the pods still missing.
func (r *recorder) wait(ctx context.Context, names ...string) error {
	for {
		r.mu.Lock()
		err := r.err
		var missing []string
		for _, n := range names {
			t := r.pods[n]
			if t == nil {
				r.mu.Unlock()
				return fmt.Errorf("pod %s was never expected", n)
			}
			if t.failure != "" && err == nil {
				err = fmt.Errorf("pod %s will not run: %s", n, t.failure)
			}
			if t.running.IsZero() {
				missing = append(missing, n+" ("+orNone(t.last)+")")
			}
		}
		r.mu.Unlock()
		if err != nil {
			return err
		}
		if len(missing) == 0 {
			return nil
		}
		select {
		case <-r.changed:
		case <-ctx.Done():
			sort.Strings(missing)
			count := len(missing)
			if count > 10 {
				missing = append(missing[:10], fmt.Sprintf("and %d more", count-10))
			}
			return fmt.Errorf("%d of %d pods not seen running: %w; missing: %s",
				count, len(names), ctx.Err(), strings.Join(missing, ", "))
		case <-r.done:
			return errors.New("pod watch ended")
		}
	}
}

func orNone(s string) string {
	if s == "" {
		return "no event yet"
	}
	return s
}

// latencies returns, for the named pods, Created → Scheduled, Scheduled →
// Running and Created → Running (pods not seen scheduled or running are
// left out).
func (r *recorder) latencies(names []string) (toScheduled, toRunning, total []time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, n := range names {
		t := r.pods[n]
		if t == nil || t.scheduled.IsZero() || t.running.IsZero() {
			continue
		}
		toScheduled = append(toScheduled, t.scheduled.Sub(t.created))
		toRunning = append(toRunning, t.running.Sub(t.scheduled))
		total = append(total, t.running.Sub(t.created))
	}
	return toScheduled, toRunning, total
}

// countRunning is how many expected pods have been seen running.
func (r *recorder) countRunning() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, t := range r.pods {
		if !t.running.IsZero() {
			n++
		}
	}
	return n
}
