package pods

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/virtual-kubelet/virtual-kubelet/errdefs"
	"github.com/virtual-kubelet/virtual-kubelet/node/api"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/record"

	"github.com/wasilet/wasilet/internal/devicemanager"
	"github.com/wasilet/wasilet/runtime"
)

// fakeImages serves images from a map; refs in fail get that error.
type fakeImages struct {
	mu      sync.Mutex
	present map[string]bool
	fail    map[string]error
	pulls   int
	// gate, when set, holds every Pull until it is closed.
	gate chan struct{}
	// resolveDelay slows Resolve down (a start that takes a moment).
	resolveDelay time.Duration
}

func (f *fakeImages) image(ref string) *Image {
	return &Image{Wasm: []byte("fake"), Digest: "sha256:" + strings.Repeat("a", 64), ID: ref + "@sha256:" + strings.Repeat("b", 64)}
}

func (f *fakeImages) Resolve(ctx context.Context, ref string) (*Image, error) {
	time.Sleep(f.resolveDelay)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.present[ref] {
		return f.image(ref), nil
	}
	return nil, errors.New("not present")
}

func (f *fakeImages) Pull(ctx context.Context, ref string, secrets []corev1.Secret) (*Image, error) {
	f.mu.Lock()
	gate := f.gate
	f.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pulls++
	if err := f.fail[ref]; err != nil {
		return nil, err
	}
	if f.present == nil {
		f.present = map[string]bool{}
	}
	f.present[ref] = true
	return f.image(ref), nil
}

// fakeRuntime runs a tiny command language in spec.Args, like testprog:
// "echo TEXT", "stderr TEXT", "exit N", "fail MSG" (termination log + exit
// 1), "spin" (until cancelled), "oom", "write PATH TEXT" (through mounts),
// separated by ";".
type fakeRuntime struct {
	mu    sync.Mutex
	runs  []runtime.Spec
	loads int
}

func (f *fakeRuntime) Load(ctx context.Context, wasm []byte, digest string) (Program, error) {
	f.mu.Lock()
	f.loads++
	f.mu.Unlock()
	if string(wasm) != "fake" {
		return nil, errors.New("not wasm")
	}
	return f, nil
}

func hostPath(spec runtime.Spec, guest string) (string, bool) {
	best := ""
	var host string
	for _, m := range spec.Mounts {
		if (guest == m.GuestPath || strings.HasPrefix(guest, m.GuestPath+"/")) && len(m.GuestPath) > len(best) {
			best = m.GuestPath
			host = filepath.Join(m.HostPath, strings.TrimPrefix(guest, m.GuestPath))
		}
	}
	return host, best != ""
}

func (f *fakeRuntime) Run(ctx context.Context, spec runtime.Spec) (runtime.Result, error) {
	f.mu.Lock()
	f.runs = append(f.runs, spec)
	f.mu.Unlock()
	var steps [][]string
	var cur []string
	for _, a := range spec.Args {
		if a == ";" {
			steps = append(steps, cur)
			cur = nil
			continue
		}
		cur = append(cur, a)
	}
	steps = append(steps, cur)
	for _, s := range steps {
		if len(s) == 0 {
			continue
		}
		switch s[0] {
		case "echo":
			fmt.Fprintln(spec.Stdout, strings.Join(s[1:], " "))
		case "stderr":
			fmt.Fprintln(spec.Stderr, strings.Join(s[1:], " "))
		case "argv":
			fmt.Fprintln(spec.Stdout, spec.Name, strings.Join(spec.Args, " "))
		case "exit":
			n, _ := strconv.Atoi(s[1])
			if n == 0 {
				return runtime.Result{Reason: runtime.ReasonCompleted}, nil
			}
			return runtime.Result{ExitCode: n, Reason: runtime.ReasonError}, nil
		case "fail":
			if p, ok := hostPath(spec, "/dev/termination-log"); ok {
				os.WriteFile(p, []byte(strings.Join(s[1:], " ")), 0o644)
			}
			fmt.Fprintln(spec.Stderr, strings.Join(s[1:], " "))
			return runtime.Result{ExitCode: 1, Reason: runtime.ReasonError}, nil
		case "write":
			p, ok := hostPath(spec, s[1])
			if !ok {
				fmt.Fprintln(spec.Stderr, "no mount for", s[1])
				return runtime.Result{ExitCode: 1, Reason: runtime.ReasonError}, nil
			}
			if err := os.WriteFile(p, []byte(s[2]), 0o644); err != nil {
				return runtime.Result{ExitCode: 1, Reason: runtime.ReasonError, Message: err.Error()}, nil
			}
		case "oom":
			return runtime.Result{ExitCode: 1, Reason: runtime.ReasonOOMKilled, Message: "out of memory: limit " + strconv.FormatInt(spec.MemoryLimit, 10)}, nil
		case "spin":
			<-ctx.Done()
			return runtime.Result{ExitCode: 137, Reason: runtime.ReasonKilled, Message: "stopped"}, nil
		}
	}
	return runtime.Result{Reason: runtime.ReasonCompleted}, nil
}

type notifications struct {
	mu   sync.Mutex
	last map[string]*corev1.Pod
	n    int
	// all are every notification of each pod, with when it came.
	all map[string][]notification
}

type notification struct {
	pod *corev1.Pod
	at  time.Time
}

func (n *notifications) fn(p *corev1.Pod) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.last == nil {
		n.last = map[string]*corev1.Pod{}
	}
	n.last[p.Name] = p
	n.n++
	if n.all == nil {
		n.all = map[string][]notification{}
	}
	n.all[p.Name] = append(n.all[p.Name], notification{p, time.Now()})
}

// of returns the notifications of pod name so far.
func (n *notifications) of(name string) []notification {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]notification(nil), n.all[name]...)
}

type harness struct {
	t      *testing.T
	p      *Provider
	images *fakeImages
	rt     *fakeRuntime
	rec    *record.FakeRecorder
	notes  *notifications
	dir    string
}

func newHarness(t *testing.T, dir string, devices devicemanager.PodDevices) *harness {
	t.Helper()
	h := &harness{t: t, images: &fakeImages{fail: map[string]error{}}, rt: &fakeRuntime{}, rec: record.NewFakeRecorder(10000), notes: &notifications{}, dir: dir}
	p, err := New(Config{
		NodeName: "node1", NodeIP: "127.0.0.1", DataDir: dir, Client: nil,
		Recorder: h.rec, Runtime: h.rt, Images: h.images, Devices: devices,
		BackOff: BackOff{Initial: 50 * time.Millisecond, Max: 200 * time.Millisecond, Reset: time.Hour},
	})
	if err != nil {
		t.Fatal(err)
	}
	p.NotifyPods(context.Background(), h.notes.fn)
	h.p = p
	t.Cleanup(func() { p.Close() })
	return h
}

var podSeq int

func testPod(name string, policy corev1.RestartPolicy, containers ...corev1.Container) *corev1.Pod {
	podSeq++
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: types.UID(fmt.Sprintf("uid-%s-%d", name, podSeq))},
		Spec:       corev1.PodSpec{NodeName: "node1", RestartPolicy: policy, Containers: containers},
	}
}

func ctr(name string, args ...string) corev1.Container {
	return corev1.Container{Name: name, Image: "127.0.0.1:5000/test:v1", Args: args, TerminationMessagePolicy: corev1.TerminationMessageReadFile}
}

// waitFor polls the provider's view of a pod until cond holds.
func (h *harness) waitFor(pod *corev1.Pod, what string, cond func(*corev1.Pod) bool) *corev1.Pod {
	h.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var last *corev1.Pod
	for time.Now().Before(deadline) {
		got, err := h.p.GetPod(context.Background(), pod.Namespace, pod.Name)
		if err == nil {
			last = got
			if cond(got) {
				return got
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	h.t.Fatalf("pod %s: timed out waiting for %s; last status: %+v", pod.Name, what, last.Status)
	return nil
}

func phaseIs(ph corev1.PodPhase) func(*corev1.Pod) bool {
	return func(p *corev1.Pod) bool { return p.Status.Phase == ph }
}

func (h *harness) logs(pod *corev1.Pod, c string, opts api.ContainerLogOpts) string {
	h.t.Helper()
	rc, err := h.p.GetContainerLogs(context.Background(), pod.Namespace, pod.Name, c, opts)
	if err != nil {
		h.t.Fatal(err)
	}
	defer rc.Close()
	b, _ := io.ReadAll(rc)
	return string(b)
}

func (h *harness) events() []string {
	var out []string
	for {
		select {
		case e := <-h.rec.Events:
			out = append(out, e)
		default:
			return out
		}
	}
}

func TestPodSucceeds(t *testing.T) {
	h := newHarness(t, t.TempDir(), nil)
	pod := testPod("hello", corev1.RestartPolicyNever, ctr("c", "echo", "Hello, world!", ";", "argv"))
	if err := h.p.CreatePod(context.Background(), pod); err != nil {
		t.Fatal(err)
	}
	got := h.waitFor(pod, "Succeeded", phaseIs(corev1.PodSucceeded))
	cs := got.Status.ContainerStatuses[0]
	if cs.State.Terminated == nil || cs.State.Terminated.Reason != "Completed" || cs.State.Terminated.ExitCode != 0 {
		t.Fatalf("container state: %+v", cs.State)
	}
	if !strings.HasPrefix(cs.ContainerID, "wasilet://") || cs.ImageID == "" {
		t.Fatalf("ids: %q %q", cs.ContainerID, cs.ImageID)
	}
	if got.Status.PodIP != "127.0.0.1" || got.Status.HostIP != "127.0.0.1" || got.Status.StartTime == nil {
		t.Fatalf("pod status: %+v", got.Status)
	}
	if l := h.logs(pod, "c", api.ContainerLogOpts{}); l != "Hello, world!\nc echo Hello, world! ; argv\n" {
		t.Fatalf("logs: %q", l)
	}
	if l := h.logs(pod, "c", api.ContainerLogOpts{Timestamps: true, Tail: 1}); !strings.HasSuffix(l, "Z c echo Hello, world! ; argv\n") {
		t.Fatalf("timestamped logs: %q", l)
	}
	var ready bool
	for _, c := range got.Status.Conditions {
		if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
			ready = true
		}
	}
	if ready {
		t.Fatal("succeeded pod is Ready")
	}
	ev := strings.Join(h.events(), "\n")
	for _, want := range []string{"Pulling", "Pulled", "Created", "Started"} {
		if !strings.Contains(ev, want) {
			t.Errorf("no %s event in:\n%s", want, ev)
		}
	}
	// The status reaches virtual-kubelet asynchronously (the provider's
	// notify loop), so the callback may come after GetPodStatus says
	// Succeeded: wait for it.
	deadline := time.Now().Add(30 * time.Second)
	for {
		h.notes.mu.Lock()
		n := h.notes.last["hello"]
		h.notes.mu.Unlock()
		if n != nil && n.Status.Phase == corev1.PodSucceeded {
			break
		}
		if time.Now().After(deadline) {
			last := "none"
			if n != nil {
				last = string(n.Status.Phase)
			}
			t.Fatalf("no notification of the Succeeded status (last: %s)", last)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestPodFailsWithTerminationMessage(t *testing.T) {
	h := newHarness(t, t.TempDir(), nil)
	pod := testPod("fail", corev1.RestartPolicyNever, ctr("c", "fail", "it broke"))
	h.p.CreatePod(context.Background(), pod)
	got := h.waitFor(pod, "Failed", phaseIs(corev1.PodFailed))
	term := got.Status.ContainerStatuses[0].State.Terminated
	if term == nil || term.ExitCode != 1 || term.Reason != "Error" || term.Message != "it broke" {
		t.Fatalf("terminated: %+v", term)
	}
	// FallbackToLogsOnError uses the log tail when no message was written.
	c := ctr("c", "stderr", "from the log", ";", "exit", "3")
	c.TerminationMessagePolicy = corev1.TerminationMessageFallbackToLogsOnError
	pod2 := testPod("fallback", corev1.RestartPolicyNever, c)
	h.p.CreatePod(context.Background(), pod2)
	got = h.waitFor(pod2, "Failed", phaseIs(corev1.PodFailed))
	term = got.Status.ContainerStatuses[0].State.Terminated
	if term.ExitCode != 3 || term.Message != "from the log\n" {
		t.Fatalf("fallback: %+v", term)
	}
}

// A guest that writes the node's own "image changed" text as its
// termination message is an ordinary failure: restartPolicy Never holds,
// and under Always it backs off (the node once restarted it at once,
// thousands of times in 30 s).
func TestGuestCannotFakeImageChange(t *testing.T) {
	h := newHarness(t, t.TempDir(), nil)
	pod := testPod("fake", corev1.RestartPolicyNever, ctr("c", "fail", errImageChanged.Error()))
	h.p.CreatePod(context.Background(), pod)
	got := h.waitFor(pod, "Failed", phaseIs(corev1.PodFailed))
	if st := got.Status.ContainerStatuses[0]; st.RestartCount != 0 || st.State.Terminated == nil || st.State.Terminated.Message != errImageChanged.Error() {
		t.Fatalf("status: %+v", st)
	}
	loop := testPod("fakeloop", corev1.RestartPolicyAlways, ctr("c", "fail", errImageChanged.Error()))
	h.p.CreatePod(context.Background(), loop)
	got = h.waitFor(loop, "CrashLoopBackOff", func(p *corev1.Pod) bool {
		cs := p.Status.ContainerStatuses
		return len(cs) == 1 && cs[0].State.Waiting != nil && cs[0].State.Waiting.Reason == "CrashLoopBackOff"
	})
	time.Sleep(500 * time.Millisecond)
	h.p.mu.Lock()
	w := h.p.workers[key(loop.Namespace, loop.Name)]
	h.p.mu.Unlock()
	w.mu.Lock()
	restarts := w.rec.container("c", false).RestartCount
	w.mu.Unlock()
	// Back-off 50 ms doubling to 200 ms: a handful of restarts in 0.5 s,
	// not hundreds.
	if restarts > 10 {
		t.Errorf("%d restarts in about 0.5 s: no back-off", restarts)
	}
}

// A corrupt state.json is set aside with a warning and the pod starts from
// its spec: never fatal.
func TestCorruptStateSetAside(t *testing.T) {
	dir := t.TempDir()
	h := newHarness(t, dir, nil)
	pod := testPod("corrupt", corev1.RestartPolicyNever, ctr("c", "echo", "hi"))
	pdir := filepath.Join(dir, "pods", string(pod.UID))
	if err := os.MkdirAll(pdir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(statePath(pdir), []byte(`{"uid": "half-writ`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := h.p.CreatePod(context.Background(), pod); err != nil {
		t.Fatal(err)
	}
	h.waitFor(pod, "Succeeded", phaseIs(corev1.PodSucceeded))
	aside, _ := filepath.Glob(statePath(pdir) + ".corrupt-*")
	if len(aside) != 1 {
		t.Fatalf("corrupt state not set aside: %v", aside)
	}
}

func TestOOMKilled(t *testing.T) {
	h := newHarness(t, t.TempDir(), nil)
	c := ctr("c", "oom")
	c.Resources.Limits = corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("16Mi")}
	pod := testPod("oom", corev1.RestartPolicyNever, c)
	h.p.CreatePod(context.Background(), pod)
	got := h.waitFor(pod, "Failed", phaseIs(corev1.PodFailed))
	term := got.Status.ContainerStatuses[0].State.Terminated
	if term.ExitCode != 137 || term.Reason != "OOMKilled" || !strings.Contains(term.Message, "16777216") {
		t.Fatalf("terminated: %+v", term)
	}
}

func TestCrashLoopBackOff(t *testing.T) {
	h := newHarness(t, t.TempDir(), nil)
	pod := testPod("crash", corev1.RestartPolicyAlways, ctr("c", "echo", "run", ";", "exit", "2"))
	h.p.CreatePod(context.Background(), pod)
	got := h.waitFor(pod, "restartCount 3", func(p *corev1.Pod) bool {
		return p.Status.ContainerStatuses[0].RestartCount >= 3
	})
	if got.Status.Phase != corev1.PodRunning {
		t.Fatalf("phase %s", got.Status.Phase)
	}
	got = h.waitFor(pod, "CrashLoopBackOff", func(p *corev1.Pod) bool {
		w := p.Status.ContainerStatuses[0].State.Waiting
		return w != nil && w.Reason == "CrashLoopBackOff"
	})
	last := got.Status.ContainerStatuses[0].LastTerminationState.Terminated
	if last == nil || last.ExitCode != 2 || last.Reason != "Error" {
		t.Fatalf("last state: %+v", got.Status.ContainerStatuses[0].LastTerminationState)
	}
	if l := h.logs(pod, "c", api.ContainerLogOpts{Previous: true}); l != "run\n" {
		t.Fatalf("previous logs: %q", l)
	}
	if !strings.Contains(strings.Join(h.events(), "\n"), "BackOff") {
		t.Fatal("no BackOff event")
	}
	h.rt.mu.Lock()
	loads := h.rt.loads
	h.rt.mu.Unlock()
	if loads != 1 {
		t.Fatalf("the program was loaded %d times, want once per digest", loads)
	}
	// The back-off grows: the gaps between starts are not shrinking to 0.
	d1, d3 := h.p.cfg.BackOff.delay(1), h.p.cfg.BackOff.delay(3)
	if d3 <= d1 || h.p.cfg.BackOff.delay(10) != h.p.cfg.BackOff.Max {
		t.Fatalf("back-off delays %s %s", d1, d3)
	}
}

func TestOnFailureStopsAfterSuccess(t *testing.T) {
	h := newHarness(t, t.TempDir(), nil)
	pod := testPod("onfail", corev1.RestartPolicyOnFailure, ctr("c", "exit", "0"))
	h.p.CreatePod(context.Background(), pod)
	got := h.waitFor(pod, "Succeeded", phaseIs(corev1.PodSucceeded))
	if got.Status.ContainerStatuses[0].RestartCount != 0 {
		t.Fatalf("restarts: %d", got.Status.ContainerStatuses[0].RestartCount)
	}
}

func TestInitContainers(t *testing.T) {
	dir := t.TempDir()
	h := newHarness(t, dir, nil)
	shared := t.TempDir()
	pod := testPod("init", corev1.RestartPolicyNever, ctr("main", "echo", "main"))
	pod.Spec.Volumes = []corev1.Volume{{Name: "v", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: shared}}}}
	for i, name := range []string{"first", "second"} {
		c := ctr(name, "write", "/v/"+name, strconv.Itoa(i))
		c.VolumeMounts = []corev1.VolumeMount{{Name: "v", MountPath: "/v"}}
		pod.Spec.InitContainers = append(pod.Spec.InitContainers, c)
	}
	h.p.CreatePod(context.Background(), pod)
	h.waitFor(pod, "Succeeded", phaseIs(corev1.PodSucceeded))
	for _, n := range []string{"first", "second"} {
		if _, err := os.Stat(filepath.Join(shared, n)); err != nil {
			t.Fatalf("init container %s did not run: %v", n, err)
		}
	}
	h.rt.mu.Lock()
	var order []string
	for _, r := range h.rt.runs {
		order = append(order, r.Name)
	}
	h.rt.mu.Unlock()
	if strings.Join(order, ",") != "first,second,main" {
		t.Fatalf("run order %v", order)
	}

	// A failing init container with restartPolicy Never fails the pod and
	// the app container never runs.
	bad := testPod("badinit", corev1.RestartPolicyNever, ctr("main", "echo", "never"))
	bad.Spec.InitContainers = []corev1.Container{ctr("setup", "fail", "no config")}
	h.p.CreatePod(context.Background(), bad)
	got := h.waitFor(bad, "Failed", phaseIs(corev1.PodFailed))
	is := got.Status.InitContainerStatuses[0]
	if is.State.Terminated == nil || is.State.Terminated.ExitCode != 1 {
		t.Fatalf("init status: %+v", is)
	}
	if w := got.Status.ContainerStatuses[0].State.Waiting; w == nil || w.Reason != "PodInitializing" {
		t.Fatalf("app container: %+v", got.Status.ContainerStatuses[0].State)
	}
	for _, c := range got.Status.Conditions {
		if c.Type == corev1.PodInitialized && c.Status != corev1.ConditionFalse {
			t.Fatal("Initialized is true")
		}
	}

	// With restartPolicy Always a failing init container is retried and
	// blocks the pod in Pending.
	loop := testPod("loopinit", corev1.RestartPolicyAlways, ctr("main", "spin"))
	loop.Spec.InitContainers = []corev1.Container{ctr("setup", "exit", "1")}
	h.p.CreatePod(context.Background(), loop)
	got = h.waitFor(loop, "init restarts", func(p *corev1.Pod) bool {
		return len(p.Status.InitContainerStatuses) == 1 && p.Status.InitContainerStatuses[0].RestartCount >= 2
	})
	if got.Status.Phase != corev1.PodPending {
		t.Fatalf("phase %s", got.Status.Phase)
	}
}

func TestImagePullBackOff(t *testing.T) {
	h := newHarness(t, t.TempDir(), nil)
	h.images.fail["127.0.0.1:5000/notwasm:v1"] = errors.New(`manifest has no Wasm layer (media types: application/vnd.oci.image.layer.v1.tar+gzip)`)
	c := ctr("c", "spin")
	c.Image = "127.0.0.1:5000/notwasm:v1"
	bad := testPod("notwasm", corev1.RestartPolicyAlways, c)
	good := testPod("good", corev1.RestartPolicyAlways, ctr("c", "spin"))
	h.p.CreatePod(context.Background(), bad)
	h.p.CreatePod(context.Background(), good)
	got := h.waitFor(bad, "ImagePullBackOff", func(p *corev1.Pod) bool {
		w := p.Status.ContainerStatuses[0].State.Waiting
		return w != nil && w.Reason == "ImagePullBackOff"
	})
	if msg := got.Status.ContainerStatuses[0].State.Waiting.Message; !strings.Contains(msg, "media types") {
		t.Fatalf("message %q", msg)
	}
	if got.Status.Phase != corev1.PodPending {
		t.Fatalf("phase %s", got.Status.Phase)
	}
	h.waitFor(good, "Running", phaseIs(corev1.PodRunning))
	h.waitFor(bad, "ErrImagePull again", func(p *corev1.Pod) bool {
		w := p.Status.ContainerStatuses[0].State.Waiting
		return w != nil && w.Reason == "ErrImagePull"
	})

	// IfNotPresent with the image present does not pull; Never without it waits.
	h.images.mu.Lock()
	h.images.present = map[string]bool{"127.0.0.1:5000/cached:v1": true}
	pulls := h.images.pulls
	h.images.mu.Unlock()
	c2 := ctr("c", "exit", "0")
	c2.Image = "127.0.0.1:5000/cached:v1"
	cached := testPod("cached", corev1.RestartPolicyNever, c2)
	h.p.CreatePod(context.Background(), cached)
	h.waitFor(cached, "Succeeded", phaseIs(corev1.PodSucceeded))
	c3 := ctr("c", "exit", "0")
	c3.Image = "127.0.0.1:5000/absent:v1"
	c3.ImagePullPolicy = corev1.PullNever
	never := testPod("never", corev1.RestartPolicyNever, c3)
	h.p.CreatePod(context.Background(), never)
	h.waitFor(never, "ErrImageNeverPull", func(p *corev1.Pod) bool {
		w := p.Status.ContainerStatuses[0].State.Waiting
		return w != nil && w.Reason == "ErrImageNeverPull"
	})
	h.images.mu.Lock()
	defer h.images.mu.Unlock()
	// Only the failing image is pulled again (its retries); the cached and
	// the Never images are not pulled.
	if h.images.present["127.0.0.1:5000/absent:v1"] {
		t.Fatal("image with pull policy Never was pulled")
	}
	_ = pulls
}

func TestDeleteSpinningPod(t *testing.T) {
	dir := t.TempDir()
	h := newHarness(t, dir, nil)
	pod := testPod("spin", corev1.RestartPolicyAlways, ctr("c", "echo", "spinning", ";", "spin"))
	pod.Spec.TerminationGracePeriodSeconds = ptr(int64(30))
	h.p.CreatePod(context.Background(), pod)
	h.waitFor(pod, "Running", func(p *corev1.Pod) bool {
		return p.Status.Phase == corev1.PodRunning && p.Status.ContainerStatuses[0].Ready
	})
	start := time.Now()
	if err := h.p.DeletePod(context.Background(), pod); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Fatalf("DeletePod took %s", d)
	}
	// virtual-kubelet is told the containers terminated.
	for deadline := time.Now().Add(30 * time.Second); ; {
		h.notes.mu.Lock()
		last := h.notes.last["spin"]
		h.notes.mu.Unlock()
		if last != nil && last.Status.ContainerStatuses[0].State.Terminated != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("last notification is not terminated: %+v", last.Status)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The pod directory goes away with the pod (no API client here).
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(dir, "pods", string(pod.UID))); os.IsNotExist(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("pod directory not removed")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The provider forgets the pod right after removing its directory.
	for {
		_, err := h.p.GetPod(context.Background(), "default", "spin")
		if errdefs.IsNotFound(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("GetPod after delete: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := h.p.DeletePod(context.Background(), pod); !errdefs.IsNotFound(err) {
		t.Fatalf("second DeletePod: %v", err)
	}
}

func TestDeleteReportsTerminated(t *testing.T) {
	h := newHarness(t, t.TempDir(), nil)
	pod := testPod("spin2", corev1.RestartPolicyAlways, ctr("c", "spin"))
	h.p.CreatePod(context.Background(), pod)
	h.waitFor(pod, "Running", phaseIs(corev1.PodRunning))
	w, _ := h.p.lookup("default", "spin2")
	w.stop(stopDeleted)
	<-w.done
	got := w.podWithStatus()
	term := got.Status.ContainerStatuses[0].State.Terminated
	if term == nil || term.ExitCode != 137 || !strings.Contains(term.Message, "SIGTERM") {
		t.Fatalf("state after delete: %+v", got.Status.ContainerStatuses[0].State)
	}
	if got.Status.Phase != corev1.PodFailed {
		t.Fatalf("phase %s", got.Status.Phase)
	}
}

func TestRestartRecovery(t *testing.T) {
	dir := t.TempDir()
	h := newHarness(t, dir, nil)
	pod := testPod("recover", corev1.RestartPolicyAlways, ctr("c", "echo", "up", ";", "spin"))
	done := testPod("done", corev1.RestartPolicyOnFailure, ctr("c", "echo", "once"))
	h.p.CreatePod(context.Background(), pod)
	h.p.CreatePod(context.Background(), done)
	h.waitFor(pod, "Running", phaseIs(corev1.PodRunning))
	h.waitFor(done, "Succeeded", phaseIs(corev1.PodSucceeded))
	h.p.Close()

	h2 := newHarness(t, dir, nil)
	// virtual-kubelet does not hand back pods that had ended; their logs
	// are still served.
	if l := h2.logs(done, "c", api.ContainerLogOpts{}); l != "once\n" {
		t.Fatalf("logs of an ended pod after restart: %q", l)
	}
	h2.p.CreatePod(context.Background(), pod)
	h2.p.CreatePod(context.Background(), done)
	got := h2.waitFor(pod, "Running again", func(p *corev1.Pod) bool {
		cs := p.Status.ContainerStatuses[0]
		return p.Status.Phase == corev1.PodRunning && cs.State.Running != nil && cs.RestartCount == 1
	})
	last := got.Status.ContainerStatuses[0].LastTerminationState.Terminated
	if last == nil || last.Reason != "Unknown" || last.ExitCode != 255 {
		t.Fatalf("last state: %+v", got.Status.ContainerStatuses[0].LastTerminationState)
	}
	if l := h2.logs(pod, "c", api.ContainerLogOpts{Previous: true}); l != "up\n" {
		t.Fatalf("previous logs after restart: %q", l)
	}
	h2.waitFor(done, "still Succeeded", phaseIs(corev1.PodSucceeded))
	// Running is recorded just before the runtime is called: wait for the run.
	for deadline := time.Now().Add(30 * time.Second); ; {
		h2.rt.mu.Lock()
		var runs [][]string
		for _, r := range h2.rt.runs {
			runs = append(runs, r.Args)
		}
		h2.rt.mu.Unlock()
		if len(runs) > 0 {
			for _, a := range runs {
				if strings.Join(a, " ") != "echo up ; spin" {
					t.Fatalf("restarted node ran %q: the completed pod must not run again", a)
				}
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the recovered container never ran")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

type fakeDevices struct {
	mu       sync.Mutex
	admitErr error
	released []types.UID
}

func (f *fakeDevices) Admit(ctx context.Context, pod *corev1.Pod) error { return f.admitErr }
func (f *fakeDevices) PrepareContainer(ctx context.Context, pod *corev1.Pod, c string) (*devicemanager.ContainerAllocation, error) {
	return &devicemanager.ContainerAllocation{Envs: map[string]string{"DEVICE": "dev0"}, Annotations: map[string]string{"a": "b"}}, nil
}
func (f *fakeDevices) Release(uid types.UID) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.released = append(f.released, uid)
}

func TestDevices(t *testing.T) {
	dev := &fakeDevices{}
	h := newHarness(t, t.TempDir(), dev)
	pod := testPod("dev", corev1.RestartPolicyNever, ctr("c", "exit", "0"))
	h.p.CreatePod(context.Background(), pod)
	h.waitFor(pod, "Succeeded", phaseIs(corev1.PodSucceeded))
	h.rt.mu.Lock()
	env := h.rt.runs[0].Env
	h.rt.mu.Unlock()
	if env[len(env)-1] != "DEVICE=dev0" {
		t.Fatalf("env %q", env)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		dev.mu.Lock()
		n := len(dev.released)
		dev.mu.Unlock()
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("devices not released after the pod ended")
		}
		time.Sleep(10 * time.Millisecond)
	}
	snap := h.p.Snapshot()
	if len(snap) != 1 || snap[0].Containers[0].Annotations["a"] != "b" || snap[0].Containers[0].State != "Terminated" {
		t.Fatalf("snapshot %+v", snap)
	}

	dev2 := &fakeDevices{admitErr: &devicemanager.AdmissionError{Reason: "UnexpectedAdmissionError", Message: "requested 3 of akri.sh/x, 1 available"}}
	h2 := newHarness(t, t.TempDir(), dev2)
	pod2 := testPod("reject", corev1.RestartPolicyAlways, ctr("c", "spin"))
	h2.p.CreatePod(context.Background(), pod2)
	got := h2.waitFor(pod2, "Failed", phaseIs(corev1.PodFailed))
	if got.Status.Reason != "UnexpectedAdmissionError" || !strings.Contains(got.Status.Message, "1 available") {
		t.Fatalf("status %q %q", got.Status.Reason, got.Status.Message)
	}
}

func TestMountFailureKeepsPending(t *testing.T) {
	h := newHarness(t, t.TempDir(), nil)
	pod := testPod("mount", corev1.RestartPolicyAlways, ctr("c", "spin"))
	pod.Spec.Volumes = []corev1.Volume{{Name: "hp", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{
		Path: filepath.Join(t.TempDir(), "missing"), Type: ptr(corev1.HostPathDirectory)}}}}
	h.p.CreatePod(context.Background(), pod)
	got := h.waitFor(pod, "FailedMount message", func(p *corev1.Pod) bool {
		w := p.Status.ContainerStatuses[0].State.Waiting
		return w != nil && strings.Contains(w.Message, "is not a directory")
	})
	if got.Status.Phase != corev1.PodPending {
		t.Fatalf("phase %s", got.Status.Phase)
	}
	if !strings.Contains(strings.Join(h.events(), "\n"), "FailedMount") {
		t.Fatal("no FailedMount event")
	}
}

func TestUnsupportedOperations(t *testing.T) {
	h := newHarness(t, t.TempDir(), nil)
	err := h.p.RunInContainer(context.Background(), "ns", "p", "c", []string{"sh"}, nil)
	if err == nil || !strings.Contains(err.Error(), "not supported on wasm32-wasi") {
		t.Fatalf("exec: %v", err)
	}
	if _, err := h.p.GetContainerLogs(context.Background(), "ns", "nope", "c", api.ContainerLogOpts{}); !errdefs.IsNotFound(err) {
		t.Fatalf("logs of unknown pod: %v", err)
	}
	s, err := h.p.GetStatsSummary(context.Background())
	if err != nil || s.Node.NodeName != "node1" || s.Node.Memory == nil || s.Node.CPU == nil {
		t.Fatalf("stats: %+v %v", s, err)
	}
}

func TestTerminationMessageFallbacks(t *testing.T) {
	c := &corev1.Container{TerminationMessagePolicy: corev1.TerminationMessageReadFile}
	if m := terminationMessage(c, "", "", 1, "exit code 1"); m != "" {
		t.Errorf("plain exit code became a message: %q", m)
	}
	if m := terminationMessage(c, "", "", 134, "wasm trap: unreachable"); m != "wasm trap: unreachable" {
		t.Errorf("trap message: %q", m)
	}
	if m := terminationMessage(c, "", "", 0, "anything"); m != "" {
		t.Errorf("success message: %q", m)
	}
	p := filepath.Join(t.TempDir(), "termination-log")
	os.WriteFile(p, []byte(strings.Repeat("x", 5000)), 0o644)
	if m := terminationMessage(c, p, "", 1, ""); len(m) != maxTerminationMessage {
		t.Errorf("termination message not capped: %d bytes", len(m))
	}
}

func TestActiveDeadline(t *testing.T) {
	h := newHarness(t, t.TempDir(), nil)
	pod := testPod("deadline", corev1.RestartPolicyAlways, ctr("c", "spin"))
	pod.Spec.ActiveDeadlineSeconds = ptr(int64(1))
	h.p.CreatePod(context.Background(), pod)
	got := h.waitFor(pod, "Failed", phaseIs(corev1.PodFailed))
	if got.Status.Reason != "DeadlineExceeded" {
		t.Fatalf("reason %q", got.Status.Reason)
	}
	if term := got.Status.ContainerStatuses[0].State.Terminated; term == nil || term.ExitCode != 137 {
		t.Fatalf("container: %+v", got.Status.ContainerStatuses[0].State)
	}
}

func TestImageUpdateRestartsContainer(t *testing.T) {
	h := newHarness(t, t.TempDir(), nil)
	pod := testPod("upd", corev1.RestartPolicyAlways, ctr("c", "spin"))
	h.p.CreatePod(context.Background(), pod)
	h.waitFor(pod, "Running", phaseIs(corev1.PodRunning))
	pod2 := pod.DeepCopy()
	pod2.Spec.Containers[0].Image = "127.0.0.1:5000/test:v2"
	if err := h.p.UpdatePod(context.Background(), pod2); err != nil {
		t.Fatal(err)
	}
	got := h.waitFor(pod, "restarted with the new image", func(p *corev1.Pod) bool {
		cs := p.Status.ContainerStatuses[0]
		return cs.RestartCount == 1 && cs.State.Running != nil && cs.Image == "127.0.0.1:5000/test:v2"
	})
	if last := got.Status.ContainerStatuses[0].LastTerminationState.Terminated; last == nil || last.ExitCode != 137 {
		t.Fatalf("last state %+v", got.Status.ContainerStatuses[0].LastTerminationState)
	}
	if !strings.Contains(strings.Join(h.events(), "\n"), "Killing") {
		t.Fatal("no Killing event")
	}
}

func TestSidecarInitContainer(t *testing.T) {
	h := newHarness(t, t.TempDir(), nil)
	pod := testPod("sidecar", corev1.RestartPolicyNever, ctr("main", "echo", "main"))
	side := ctr("side", "echo", "side up", ";", "spin")
	side.RestartPolicy = ptr(corev1.ContainerRestartPolicyAlways)
	pod.Spec.InitContainers = []corev1.Container{side}
	h.p.CreatePod(context.Background(), pod)
	got := h.waitFor(pod, "Succeeded", phaseIs(corev1.PodSucceeded))
	if term := got.Status.ContainerStatuses[0].State.Terminated; term == nil || term.ExitCode != 0 {
		t.Fatalf("main: %+v", got.Status.ContainerStatuses[0].State)
	}
	if got.Status.InitContainerStatuses[0].State.Terminated == nil {
		t.Fatalf("sidecar not stopped when the pod completed: %+v", got.Status.InitContainerStatuses[0].State)
	}
	if l := h.logs(pod, "side", api.ContainerLogOpts{}); l != "side up\n" {
		t.Fatalf("sidecar logs %q", l)
	}
}

// inactiveDevices records ReleaseInactive calls, as *devicemanager.Manager has.
type inactiveDevices struct {
	fakeDevices
	active [][]types.UID
}

func (f *inactiveDevices) ReleaseInactive(active []types.UID) []types.UID {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.active = append(f.active, active)
	return nil
}

// TestOrphanDevicesReleased: devices of pods deleted while the node was down
// are freed by the orphan collection, which tells the device manager which
// pods are still bound to the node.
func TestOrphanDevicesReleased(t *testing.T) {
	dir := t.TempDir()
	on := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "on", Namespace: "default", UID: "uid-on"}, Spec: corev1.PodSpec{NodeName: "node1"}}
	cs := fake.NewClientset(on)
	dev := &inactiveDevices{}
	p, err := New(Config{NodeName: "node1", NodeIP: "127.0.0.1", DataDir: dir, Client: cs,
		Runtime: &fakeRuntime{}, Images: &fakeImages{fail: map[string]error{}}, Devices: dev})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	gone := filepath.Join(dir, "pods", "uid-gone")
	if err := os.MkdirAll(gone, 0o755); err != nil {
		t.Fatal(err)
	}
	p.collectOrphansOnce()
	dev.mu.Lock()
	defer dev.mu.Unlock()
	if len(dev.active) != 1 || !reflect.DeepEqual(dev.active[0], []types.UID{"uid-on"}) {
		t.Fatalf("ReleaseInactive calls %v, want one with [uid-on]", dev.active)
	}
	if _, err := os.Stat(gone); !os.IsNotExist(err) {
		t.Fatalf("orphaned pod directory kept: %v", err)
	}
}

// A pod that starts at once is reported once, Running: no Pending status
// first for the Running one to queue behind (see startHold).
func TestQuickStartSendsRunningFirst(t *testing.T) {
	h := newHarness(t, t.TempDir(), nil)
	h.images.present = map[string]bool{"127.0.0.1:5000/test:v1": true}
	// Long enough for a Pending status to go out first without the hold.
	h.images.resolveDelay = 30 * time.Millisecond
	pod := testPod("quick", corev1.RestartPolicyAlways, ctr("c", "spin"))
	created := time.Now()
	if err := h.p.CreatePod(context.Background(), pod); err != nil {
		t.Fatal(err)
	}
	var first notification
	deadline := time.Now().Add(30 * time.Second)
	for {
		if ns := h.notes.of("quick"); len(ns) > 0 {
			first = ns[0]
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no notification")
		}
		time.Sleep(time.Millisecond)
	}
	st := first.pod.Status
	if st.Phase == corev1.PodRunning {
		if cs := st.ContainerStatuses; len(cs) != 1 || cs[0].State.Running == nil || !cs[0].Ready || st.StartTime == nil || st.StartTime.IsZero() {
			t.Fatalf("first status: %+v", st)
		}
		return
	}
	// Only a machine too busy to start the pod within the hold may send
	// Pending first, and not before the hold is over.
	if waited := first.at.Sub(created); waited < startHold {
		t.Fatalf("first status %s after %s, within the start hold of %s: %+v", st.Phase, waited, startHold, st)
	}
}

// A pod that does not start quickly (here: a pull that takes its time) is
// reported Pending once the start hold is over, without waiting for the pull.
func TestSlowStartSendsPendingAfterHold(t *testing.T) {
	h := newHarness(t, t.TempDir(), nil)
	h.images.gate = make(chan struct{})
	pod := testPod("slow", corev1.RestartPolicyAlways, ctr("c", "spin"))
	created := time.Now()
	if err := h.p.CreatePod(context.Background(), pod); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	var ns []notification
	for len(ns) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no notification while the pull hangs")
		}
		time.Sleep(5 * time.Millisecond)
		ns = h.notes.of("slow")
	}
	st := ns[0].pod.Status
	if waited := ns[0].at.Sub(created); waited < startHold {
		t.Fatalf("Pending sent after %s, within the start hold of %s", waited, startHold)
	}
	if cs := st.ContainerStatuses; st.Phase != corev1.PodPending || len(cs) != 1 || cs[0].State.Waiting == nil || cs[0].State.Waiting.Reason != "ContainerCreating" {
		t.Fatalf("first status: %+v", st)
	}
	close(h.images.gate)
	h.waitFor(pod, "Running", phaseIs(corev1.PodRunning))
	for time.Now().Before(deadline) {
		ns = h.notes.of("slow")
		if ns[len(ns)-1].pod.Status.Phase == corev1.PodRunning {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("Running never notified")
}

// TestPhaseWaitsForSidecars: the regular containers' terminal phase is
// reported only once the sidecar has stopped too (the kubelet since 1.27);
// TestSidecarInitContainer met the moment between the two once.
func TestPhaseWaitsForSidecars(t *testing.T) {
	pod := testPod("sidecar", corev1.RestartPolicyNever, ctr("main", "echo", "main"))
	side := &containerRecord{Name: "side", Init: true, Sidecar: true, Started: true, Phase: phaseRunning}
	main := &containerRecord{Name: "main", Phase: phaseTerminated, Done: true, Term: &termination{ExitCode: 0}}
	r := &podRecord{Initialized: true, Containers: []*containerRecord{side, main}}
	if got := podPhase(pod, r); got != corev1.PodRunning {
		t.Fatalf("sidecar running, main succeeded: phase %s, want Running", got)
	}
	r.Failed = true
	if got := podPhase(pod, r); got != corev1.PodRunning {
		t.Fatalf("sidecar running, pod failed: phase %s, want Running", got)
	}
	r.Failed = false
	side.Phase, side.Term = phaseTerminated, &termination{ExitCode: 137}
	if got := podPhase(pod, r); got != corev1.PodSucceeded {
		t.Fatalf("both stopped: phase %s, want Succeeded", got)
	}
}
