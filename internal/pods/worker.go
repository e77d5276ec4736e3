package pods

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/virtual-kubelet/virtual-kubelet/log"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/wasilet/wasilet/internal/atomicfile"
	"github.com/wasilet/wasilet/internal/devicemanager"
	"github.com/wasilet/wasilet/oci"
	"github.com/wasilet/wasilet/runtime"
)

type stopReason int

const (
	stopNone stopReason = iota
	stopDeleted
	stopFailed
)

var errImageChanged = errors.New("container image changed")

// maxTerminationMessage is the kubelet's cap on a termination message.
const maxTerminationMessage = 4096

type activeRun struct {
	cancel context.CancelCauseFunc
	image  string
	// mounts are the host directories the guest sees (its open files lie
	// there: see files.go).
	mounts []string
	// usage is the run's runtime.Usage and cpu its CPU rate (see stats.go).
	usage *runtime.Usage
	cpu   *cpuRate
}

// podWorker owns one pod: its record, its goroutines and its directory.
type podWorker struct {
	p         *Provider
	uid       types.UID
	namespace string
	name      string
	dir       string

	mu          sync.Mutex
	pod         *corev1.Pod
	rec         *podRecord
	stopReason  stopReason
	runs        map[string]*activeRun
	annotations map[string]map[string]string
	released    bool

	// holdUntil, guarded by p.notifyMu: until then the pod's status is not
	// sent unless something calls changedNow (see startHold); zero: no hold.
	holdUntil time.Time

	ctx     context.Context
	cancel  context.CancelFunc
	done    chan struct{}
	updated chan struct{}
	cleanup sync.Once
}

func newPodWorker(p *Provider, pod *corev1.Pod) (*podWorker, error) {
	w := &podWorker{
		p: p, uid: pod.UID, namespace: pod.Namespace, name: pod.Name,
		dir:         p.podDir(pod.UID),
		pod:         pod,
		runs:        map[string]*activeRun{},
		annotations: map[string]map[string]string{},
		done:        make(chan struct{}),
		updated:     make(chan struct{}, 1),
		holdUntil:   time.Now().Add(startHold),
	}
	if err := os.MkdirAll(w.dir, 0o750); err != nil {
		return nil, fmt.Errorf("create pod directory: %w", err)
	}
	now := p.cfg.Now()
	rec, err := loadPodRecord(statePath(w.dir))
	switch {
	case err == nil && rec.UID == string(pod.UID):
		recoverRecord(rec, pod, now)
		rec.Namespace, rec.Name = pod.Namespace, pod.Name
		rec.syncContainers(pod)
		w.rec = rec
	case err != nil && !errors.Is(err, os.ErrNotExist):
		// A corrupt state.json is kept aside for inspection and the pod
		// starts from its spec: never fatal.
		aside, aerr := atomicfile.SetAside(statePath(w.dir))
		if aerr != nil {
			aside = "(could not move it: " + aerr.Error() + ")"
		}
		log.G(p.baseCtx).WithError(err).Warnf("pod %s/%s: unreadable saved state set aside as %s; starting from the pod spec", pod.Namespace, pod.Name, aside)
		fallthrough
	default:
		w.rec = newPodRecord(pod, now)
	}
	w.ctx, w.cancel = context.WithCancel(p.baseCtx)
	w.mu.Lock()
	w.save()
	w.mu.Unlock()
	return w, nil
}

func (w *podWorker) now() time.Time { return w.p.cfg.Now() }

// save writes the record; w.mu must be held.
func (w *podWorker) save() {
	if err := writeJSONAtomic(statePath(w.dir), w.rec); err != nil {
		log.G(w.p.baseCtx).WithError(err).Warnf("pod %s/%s: save state", w.namespace, w.name)
	}
}

func (w *podWorker) changed() { w.p.changed(w) }

// changedNow is changed for a status the user should see at once (a
// container running, an error, the end): it ends the start hold.
func (w *podWorker) changedNow() { w.p.changedNow(w) }

// podWithStatus returns a copy of the pod with the status computed now.
func (w *podWorker) podWithStatus() *corev1.Pod {
	w.mu.Lock()
	defer w.mu.Unlock()
	pod := w.pod.DeepCopy()
	pod.Status = buildStatus(w.pod, w.rec, w.p.cfg.NodeIP, w.now())
	return pod
}

func (w *podWorker) podCopy() *corev1.Pod {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.pod.DeepCopy()
}

func (w *podWorker) objectRef(name string, init bool) *corev1.ObjectReference {
	ref := &corev1.ObjectReference{Kind: "Pod", APIVersion: "v1", Namespace: w.namespace, Name: w.name, UID: w.uid}
	if name != "" {
		if init {
			ref.FieldPath = fmt.Sprintf("spec.initContainers{%s}", name)
		} else {
			ref.FieldPath = fmt.Sprintf("spec.containers{%s}", name)
		}
	}
	return ref
}

func (w *podWorker) event(name string, init bool, typ, reason, format string, args ...any) {
	w.p.cfg.Recorder.Eventf(w.objectRef(name, init), typ, reason, format, args...)
}

// sleep waits d or until ctx ends; it reports whether d elapsed.
func sleep(ctx context.Context, d time.Duration) bool { return sleepUnless(ctx, d, nil) }

// sleepUnless is sleep, cut short when wake is closed (a nil wake never is).
func sleepUnless(ctx context.Context, d time.Duration, wake <-chan struct{}) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
	case <-wake:
	}
	return true
}

// registryProbeInterval is how often an unreachable registry is dialled
// while a pull backs off.
const registryProbeInterval = time.Second

// registryBack returns a channel closed once the registry of image accepts
// a TCP connection again, when err says it could not be reached (a dial
// error); else nil. The probe stops with ctx.
func registryBack(ctx context.Context, image string, err error) <-chan struct{} {
	var op *net.OpError
	if err == nil || !errors.As(err, &op) || op.Op != "dial" {
		return nil
	}
	ref, perr := oci.ParseReference(image)
	if perr != nil {
		return nil
	}
	addr := ref.Registry
	if _, _, serr := net.SplitHostPort(addr); serr != nil {
		addr = net.JoinHostPort(addr, "443")
	}
	ch := make(chan struct{})
	go func() {
		t := time.NewTicker(registryProbeInterval)
		defer t.Stop()
		var d net.Dialer
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			dctx, cancel := context.WithTimeout(ctx, registryProbeInterval)
			conn, derr := d.DialContext(dctx, "tcp", addr)
			cancel()
			if derr == nil {
				conn.Close()
				close(ch)
				return
			}
		}
	}()
	return ch
}

func (w *podWorker) update(pod *corev1.Pod) {
	w.mu.Lock()
	w.pod = pod
	w.rec.syncContainers(pod)
	var killed []string
	for _, c := range append(append([]corev1.Container{}, pod.Spec.InitContainers...), pod.Spec.Containers...) {
		if r, ok := w.runs[c.Name]; ok && r.image != c.Image {
			r.cancel(errImageChanged)
			killed = append(killed, c.Name)
		}
	}
	w.mu.Unlock()
	for _, n := range killed {
		w.event(n, false, corev1.EventTypeNormal, "Killing", "Container %s definition changed, will be restarted", n)
	}
	select {
	case w.updated <- struct{}{}:
	default:
	}
	w.changed()
}

// stop ends the pod: deleted, or failed (rec.Failed set by the caller).
func (w *podWorker) stop(reason stopReason) {
	w.mu.Lock()
	if w.stopReason != stopNone {
		w.mu.Unlock()
		return
	}
	w.stopReason = reason
	if reason == stopDeleted {
		w.rec.Deleted = true
	}
	running := len(w.runs) > 0
	w.save()
	w.mu.Unlock()
	if running && reason == stopDeleted {
		w.event("", false, corev1.EventTypeNormal, "Killing", "Stopping containers of pod %s (Wasm guests cannot receive SIGTERM: stopped at once)", w.name)
	}
	w.cancel()
}

func (w *podWorker) spec(name string, init bool) *corev1.Container {
	w.mu.Lock()
	defer w.mu.Unlock()
	list := w.pod.Spec.Containers
	if init {
		list = w.pod.Spec.InitContainers
	}
	for i := range list {
		if list[i].Name == name {
			return list[i].DeepCopy()
		}
	}
	return nil
}

func (w *podWorker) isShutdown() bool {
	return w.stopReason == stopNone && w.p.baseCtx.Err() != nil
}

// run drives the pod from admission to its end.
func (w *podWorker) run() {
	defer close(w.done)
	ctx := w.ctx
	w.changed()
	if w.alreadyTerminal() {
		w.finish()
		return
	}
	if !w.admit(ctx) {
		w.finish()
		return
	}
	vols, ok := w.mountVolumes(ctx)
	if !ok {
		w.finish()
		return
	}
	pod := w.podCopy()
	w.mu.Lock()
	w.rec.SandboxUp = true
	if len(pod.Spec.InitContainers) == 0 {
		// Initialized at once, as the kubelet reports a pod without init
		// containers; and one state write less before the containers start.
		w.rec.Initialized = true
	}
	w.save()
	w.mu.Unlock()
	w.changed()
	w.warnUnsupported()
	go w.watchDeadline(ctx)

	sideCtx, stopSide := context.WithCancel(ctx)
	defer stopSide()
	var side sync.WaitGroup
	w.mu.Lock()
	initialized := w.rec.Initialized
	w.mu.Unlock()
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		w.mu.Lock()
		cr := w.rec.container(c.Name, true)
		done := cr.Done && cr.Term != nil && cr.Term.ExitCode == 0
		w.mu.Unlock()
		if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			started := make(chan struct{})
			side.Add(1)
			go func() {
				defer side.Done()
				w.containerLoop(sideCtx, c.Name, true, vols, started)
			}()
			if !initialized {
				select {
				case <-started:
				case <-ctx.Done():
				}
			}
			continue
		}
		if initialized || done {
			continue
		}
		w.containerLoop(ctx, c.Name, true, vols, nil)
		if ctx.Err() != nil {
			break
		}
		w.mu.Lock()
		failed := !(cr.Done && cr.Term != nil && cr.Term.ExitCode == 0)
		w.mu.Unlock()
		if failed {
			w.event(c.Name, true, corev1.EventTypeWarning, "Failed", "Init container %s failed; the pod will not start (restartPolicy Never)", c.Name)
			stopSide()
			side.Wait()
			w.finish()
			return
		}
	}
	if ctx.Err() == nil {
		w.mu.Lock()
		if !w.rec.Initialized {
			w.rec.Initialized = true
			for _, cr := range w.rec.Containers {
				if !cr.Init && cr.Phase == phaseWaiting && cr.Reason == "PodInitializing" {
					cr.Reason = "ContainerCreating"
				}
			}
			w.save()
		}
		w.mu.Unlock()
		w.changed()
		var wg sync.WaitGroup
		for i := range pod.Spec.Containers {
			name := pod.Spec.Containers[i].Name
			w.mu.Lock()
			done := w.rec.container(name, false).Done
			w.mu.Unlock()
			if done {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				w.containerLoop(ctx, name, false, vols, nil)
			}()
		}
		wg.Wait()
	}
	stopSide()
	side.Wait()
	w.finish()
}

// warnUnsupported tells, once per pod start, which parts of the spec a
// Wasm node ignores.
func (w *podWorker) warnUnsupported() {
	pod := w.podCopy()
	for i, c := range append(append([]corev1.Container{}, pod.Spec.InitContainers...), pod.Spec.Containers...) {
		init := i < len(pod.Spec.InitContainers)
		var ignored []string
		if c.LivenessProbe != nil {
			ignored = append(ignored, "livenessProbe")
		}
		if c.ReadinessProbe != nil {
			ignored = append(ignored, "readinessProbe")
		}
		if c.StartupProbe != nil {
			ignored = append(ignored, "startupProbe")
		}
		if c.Lifecycle != nil && (c.Lifecycle.PostStart != nil || c.Lifecycle.PreStop != nil) {
			ignored = append(ignored, "lifecycle hooks")
		}
		if len(ignored) > 0 {
			w.event(c.Name, init, corev1.EventTypeWarning, "Unsupported",
				"%s ignored on wasm32-wasi nodes (no exec or pod network for Wasm guests); the container is ready while it runs", strings.Join(ignored, ", "))
		}
	}
}

// alreadyTerminal: a restored pod whose containers had all ended.
func (w *podWorker) alreadyTerminal() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.rec.Failed {
		return true
	}
	if !w.rec.Initialized {
		for _, c := range w.rec.Containers {
			if c.Init && c.Done && c.Term != nil && c.Term.ExitCode != 0 {
				return true
			}
		}
		return false
	}
	for _, c := range w.rec.Containers {
		if !c.Init && !c.Done {
			return false
		}
	}
	return true
}

// finish records the end of the pod's goroutines: on deletion, containers
// that never ended are reported terminated; devices are freed.
func (w *podWorker) finish() {
	w.mu.Lock()
	if w.isShutdown() {
		w.mu.Unlock()
		return
	}
	now := w.now()
	if w.rec.Deleted {
		for _, c := range w.rec.Containers {
			if c.Phase == phaseTerminated {
				c.Done = true
				continue
			}
			if c.Last != nil {
				t := *c.Last
				c.Term = &t
			} else {
				c.Term = &termination{ExitCode: 137, Reason: "ContainerStatusUnknown",
					Message: "The container could not be located when the pod was terminated", FinishedAt: now}
			}
			c.Phase = phaseTerminated
			c.Done = true
		}
	}
	w.save()
	release := !w.released && w.p.cfg.Devices != nil
	w.released = true
	w.mu.Unlock()
	if release {
		w.p.cfg.Devices.Release(w.uid)
	}
	w.changedNow()
}

func (w *podWorker) admit(ctx context.Context) bool {
	if w.p.cfg.Devices == nil {
		return true
	}
	fails := 0
	for {
		err := w.p.cfg.Devices.Admit(ctx, w.podCopy())
		if err == nil {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		var ae *devicemanager.AdmissionError
		if errors.As(err, &ae) {
			reason := ae.Reason
			if reason == "" {
				reason = "UnexpectedAdmissionError"
			}
			w.mu.Lock()
			w.rec.Failed = true
			w.rec.Reason = reason
			w.rec.Message = "Pod was rejected: " + ae.Message
			w.save()
			w.mu.Unlock()
			w.event("", false, corev1.EventTypeWarning, reason, "%s", ae.Message)
			return false
		}
		fails++
		logger(ctx, w).WithError(err).Warn("device admission failed; retrying")
		w.event("", false, corev1.EventTypeWarning, "FailedAdmission", "device allocation failed, will retry: %v", err)
		if !sleep(ctx, w.p.cfg.BackOff.delay(fails)) {
			return false
		}
	}
}

func (w *podWorker) mountVolumes(ctx context.Context) (map[string]volume, bool) {
	fails := 0
	for {
		pod := w.podCopy()
		vols, err := setupVolumes(ctx, pod, filepath.Join(w.dir, "volumes"), volumeDeps{
			get:   w.p.get,
			token: w.p.serviceAccountToken,
			ec:    w.envContext(),
		})
		if err == nil {
			w.mu.Lock()
			for _, c := range w.rec.Containers {
				if c.Phase == phaseWaiting && (c.Reason == "ContainerCreating" || c.Reason == "PodInitializing") {
					c.Message = ""
				}
			}
			w.mu.Unlock()
			return vols, true
		}
		if ctx.Err() != nil {
			return nil, false
		}
		fails++
		w.event("", false, corev1.EventTypeWarning, "FailedMount", "%v", err)
		w.mu.Lock()
		for _, c := range w.rec.Containers {
			if c.Phase == phaseWaiting {
				c.Message = err.Error()
			}
		}
		w.mu.Unlock()
		w.changedNow()
		if !sleep(ctx, w.p.cfg.BackOff.delay(fails)) {
			return nil, false
		}
	}
}

func (w *podWorker) envContext() envContext {
	return envContext{hostIP: w.p.cfg.NodeIP, podIP: w.p.cfg.NodeIP, allocatable: w.p.cfg.Allocatable}
}

func (w *podWorker) watchDeadline(ctx context.Context) {
	// One timer, re-armed on every pod update (since Go 1.23 Reset and Stop
	// leave no stale tick in t.C).
	t := time.NewTimer(0)
	t.Stop()
	defer t.Stop()
	for {
		w.mu.Lock()
		ads := w.pod.Spec.ActiveDeadlineSeconds
		start := w.rec.StartTime
		w.mu.Unlock()
		var timer <-chan time.Time
		if ads != nil {
			d := time.Until(start.Add(time.Duration(*ads) * time.Second))
			t.Reset(max(d, 0))
			timer = t.C
		} else {
			t.Stop()
		}
		select {
		case <-ctx.Done():
			return
		case <-w.updated:
			continue
		case <-timer:
			msg := fmt.Sprintf("Pod was active on the node longer than the specified deadline (%ds)", *ads)
			w.mu.Lock()
			w.rec.Failed = true
			w.rec.Reason = "DeadlineExceeded"
			w.rec.Message = msg
			w.mu.Unlock()
			w.event("", false, corev1.EventTypeWarning, "DeadlineExceeded", "%s", msg)
			w.stop(stopFailed)
			return
		}
	}
}

func (w *podWorker) setWaiting(name string, init bool, reason, msg string) {
	w.mu.Lock()
	cr := w.rec.container(name, init)
	if cr != nil {
		cr.Phase = phaseWaiting
		cr.Reason = reason
		cr.Message = msg
	}
	w.mu.Unlock()
	w.changedNow()
}

// containerLoop runs one container until the restart policy says it is done
// or the pod ends. started is closed when the first run starts.
func (w *podWorker) containerLoop(ctx context.Context, name string, init bool, vols map[string]volume, started chan struct{}) {
	createFails := 0
	var startedOnce sync.Once
	for ctx.Err() == nil {
		c := w.spec(name, init)
		if c == nil {
			return
		}
		t0 := time.Now()
		img, ok := w.pullImage(ctx, c, init)
		if !ok {
			return
		}
		t1 := time.Now()
		prog, spec, termPath, err := w.prepare(ctx, c, init, img, vols)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			reason := "CreateContainerError"
			var ce *configError
			if errors.As(err, &ce) {
				reason = "CreateContainerConfigError"
			}
			createFails++
			w.setWaiting(name, init, reason, err.Error())
			w.event(name, init, corev1.EventTypeWarning, "Failed", "Error: %v", err)
			if !sleep(ctx, w.p.cfg.BackOff.delay(createFails)) {
				return
			}
			continue
		}
		createFails = 0
		// Where a start's time goes (the image, then the program: a cold
		// one is compiled here), for anyone tracing a slow start.
		logger(ctx, w).WithField("container", name).Debugf("image ready in %s, program and spec in %s", t1.Sub(t0).Round(time.Microsecond), time.Since(t1).Round(time.Microsecond))
		imageID := img.ID
		img = nil // the wasm bytes are not kept while the guest runs
		term, stopped := w.runOnce(ctx, c, init, prog, spec, termPath, imageID, func() {
			if started != nil {
				startedOnce.Do(func() { close(started) })
			}
		})
		if stopped {
			return
		}
		w.mu.Lock()
		pod := w.pod
		cr := w.rec.container(name, init)
		restartable := isRestartableInit(pod, cr)
		imageChanged := term.imageChanged
		if !imageChanged && !restartAfter(pod.Spec.RestartPolicy, init, term.ExitCode, restartable) {
			cr.Phase = phaseTerminated
			cr.Term = term
			cr.Done = true
			w.save()
			w.mu.Unlock()
			w.changed()
			return
		}
		if term.FinishedAt.Sub(term.StartedAt) >= w.p.cfg.BackOff.Reset {
			cr.Crashes = 0
		}
		var delay time.Duration
		if !imageChanged {
			cr.Crashes++
			delay = w.p.cfg.BackOff.delay(cr.Crashes)
		}
		cr.Last = term
		cr.Term = nil
		cr.Phase = phaseWaiting
		cr.Reason = "CrashLoopBackOff"
		cr.Message = fmt.Sprintf("back-off %s restarting failed container=%s pod=%s_%s(%s)", delay, name, w.name, w.namespace, w.uid)
		if imageChanged {
			cr.Reason = "ContainerCreating"
			cr.Message = ""
		}
		w.save()
		w.mu.Unlock()
		w.changed()
		if delay > 0 {
			w.event(name, init, corev1.EventTypeWarning, "BackOff", "Back-off restarting failed container %s in pod %s_%s(%s)", name, w.name, w.namespace, w.uid)
		}
		if !sleep(ctx, delay) {
			return
		}
	}
}

// pullImage applies imagePullPolicy and the pull back-off; it returns false
// when the pod ends first.
func (w *podWorker) pullImage(ctx context.Context, c *corev1.Container, init bool) (*Image, bool) {
	fails := 0
	images := w.p.cfg.Images
	for {
		policy := c.ImagePullPolicy
		if policy == "" {
			policy = defaultPullPolicy(c.Image)
		}
		if policy != corev1.PullAlways {
			if img, err := images.Resolve(ctx, c.Image); err == nil && img != nil {
				w.event(c.Name, init, corev1.EventTypeNormal, "Pulled", "Container image %q already present on machine", c.Image)
				return img, true
			}
		}
		var reason, msg string
		var err error
		if policy == corev1.PullNever {
			reason = "ErrImageNeverPull"
			msg = fmt.Sprintf("Container image %q is not present with pull policy of Never", c.Image)
			w.event(c.Name, init, corev1.EventTypeWarning, reason, "%s", msg)
			w.setWaiting(c.Name, init, reason, msg)
		} else {
			w.event(c.Name, init, corev1.EventTypeNormal, "Pulling", "Pulling image %q", c.Image)
			start := time.Now()
			var img *Image
			img, err = images.Pull(ctx, c.Image, w.pullSecrets(ctx))
			if ctx.Err() != nil {
				return nil, false
			}
			if err == nil && img != nil {
				w.event(c.Name, init, corev1.EventTypeNormal, "Pulled", "Successfully pulled image %q in %s", c.Image, time.Since(start).Round(time.Millisecond))
				return img, true
			}
			if err == nil {
				err = errors.New("image service returned no image")
			}
			reason = "ErrImagePull"
			msg = err.Error()
			w.event(c.Name, init, corev1.EventTypeWarning, "Failed", "Failed to pull image %q: %v", c.Image, err)
			w.event(c.Name, init, corev1.EventTypeWarning, "Failed", "Error: ErrImagePull")
			w.setWaiting(c.Name, init, reason, msg)
		}
		fails++
		d := w.p.cfg.BackOff.delay(fails)
		first := d / 5 // ErrImagePull shows for a fifth of the wait, then ImagePullBackOff
		// A registry that could not be reached is watched: its return ends
		// the back-off (the kubelet would wait up to 5 minutes more).
		wake := registryBack(ctx, c.Image, err)
		if !sleepUnless(ctx, first, wake) {
			return nil, false
		}
		if reason == "ErrImagePull" {
			w.setWaiting(c.Name, init, "ImagePullBackOff", fmt.Sprintf("Back-off pulling image %q: ErrImagePull: %s", c.Image, msg))
			w.event(c.Name, init, corev1.EventTypeNormal, "BackOff", "Back-off pulling image %q", c.Image)
		}
		if !sleepUnless(ctx, d-first, wake) {
			return nil, false
		}
		if c2 := w.spec(c.Name, init); c2 != nil {
			c = c2
		}
	}
}

func (w *podWorker) pullSecrets(ctx context.Context) []corev1.Secret {
	pod := w.podCopy()
	var out []corev1.Secret
	var missing []string
	for _, ref := range pod.Spec.ImagePullSecrets {
		s, err := w.p.get.Secret(ctx, pod.Namespace, ref.Name)
		if err != nil {
			missing = append(missing, fmt.Sprintf("%s/%s", pod.Namespace, ref.Name))
			continue
		}
		out = append(out, *s)
	}
	if len(missing) > 0 {
		w.event("", false, corev1.EventTypeWarning, "FailedToRetrieveImagePullSecret",
			"Unable to retrieve some image pull secrets (%s); attempting to pull the image may not succeed.", strings.Join(missing, ", "))
	}
	return out
}

// prepare loads the program and computes the run spec of c.
func (w *podWorker) prepare(ctx context.Context, c *corev1.Container, init bool, img *Image, vols map[string]volume) (Program, runtime.Spec, string, error) {
	var spec runtime.Spec
	prog, err := w.p.load(ctx, img)
	if err != nil {
		return nil, spec, "", fmt.Errorf("load Wasm image %q: %w", c.Image, err)
	}
	pod := w.podCopy()
	env, invalid, err := resolveEnv(ctx, w.p.get, pod, c, w.envContext())
	if err != nil {
		return nil, spec, "", err
	}
	// Like container runtimes, set HOSTNAME to the pod's host name; the
	// container's own env wins.
	hostname := pod.Name
	if pod.Spec.Hostname != "" {
		hostname = pod.Spec.Hostname
	}
	env = append([]string{"HOSTNAME=" + hostname}, env...)
	if len(invalid) > 0 {
		w.event(c.Name, init, corev1.EventTypeWarning, "InvalidEnvironmentVariableNames",
			"Keys [%s] from the EnvFrom were skipped since they are considered invalid environment variable names.", strings.Join(invalid, ", "))
	}
	var alloc *devicemanager.ContainerAllocation
	if w.p.cfg.Devices != nil {
		alloc, err = w.p.cfg.Devices.PrepareContainer(ctx, pod, c.Name)
		if err != nil {
			return nil, spec, "", fmt.Errorf("prepare devices: %w", err)
		}
	}
	if alloc != nil {
		for _, k := range sortedKeys(alloc.Envs) {
			env = append(env, k+"="+alloc.Envs[k])
		}
		w.mu.Lock()
		w.annotations[c.Name] = alloc.Annotations
		w.mu.Unlock()
	}
	em := envMap(env)
	runDir := filepath.Join(w.dir, "containers", c.Name)
	if err := os.MkdirAll(runDir, 0o750); err != nil {
		return nil, spec, "", err
	}
	mounts, termPath, err := containerMounts(c, vols, em, runDir, alloc)
	if err != nil {
		return nil, spec, "", err
	}
	argv0, args := argv(c, em)
	spec = runtime.Spec{Name: argv0, Args: args, Env: env, Mounts: mounts}
	if q, ok := c.Resources.Limits[corev1.ResourceMemory]; ok {
		spec.MemoryLimit = q.Value()
	}
	return prog, spec, termPath, nil
}

// argv: command overrides the entrypoint and args the defaults, as in
// Kubernetes. A Wasm image has neither, so argv[0] is command[0] when a
// command is given and the container name otherwise; the rest of command
// and then args follow. $(VAR) references are expanded.
func argv(c *corev1.Container, env map[string]string) (string, []string) {
	var args []string
	name := c.Name
	if len(c.Command) > 0 {
		name = expand(c.Command[0], env)
		for _, a := range c.Command[1:] {
			args = append(args, expand(a, env))
		}
	}
	for _, a := range c.Args {
		args = append(args, expand(a, env))
	}
	return name, args
}

func newContainerID() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	return hex.EncodeToString(b[:])
}

// runOnce starts one run of c and waits for it. stopped reports that the
// pod ended (deletion, deadline, node shutdown) during the run.
func (w *podWorker) runOnce(ctx context.Context, c *corev1.Container, init bool, prog Program, spec runtime.Spec, termPath string, imageID string, onStart func()) (*termination, bool) {
	w.mu.Lock()
	cr := w.rec.container(c.Name, init)
	if cr.ContainerID != "" || cr.Last != nil {
		cr.RestartCount++
	}
	logDir := filepath.Join(w.dir, c.Name)
	logPath := filepath.Join(logDir, fmt.Sprintf("%d.log", cr.RestartCount))
	w.mu.Unlock()
	start := w.now()
	id := "wasilet://" + newContainerID()
	var lf *logFile
	err := os.MkdirAll(logDir, 0o750)
	if err == nil {
		lf, err = createLogFile(logPath)
	}
	if err != nil {
		term := &termination{ExitCode: 128, Reason: "StartError", Message: err.Error(), StartedAt: start, FinishedAt: start, ContainerID: id}
		w.mu.Lock()
		cr.ContainerID = id
		cr.LogPath = ""
		w.mu.Unlock()
		return term, ctx.Err() != nil
	}
	spec.Stdout = lf.Stream(0)
	spec.Stderr = lf.Stream(1)
	spec.Usage = new(runtime.Usage)
	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	w.mu.Lock()
	cr.ContainerID = id
	cr.Phase = phaseRunning
	cr.StartedAt = start
	cr.Reason, cr.Message = "", ""
	cr.Term = nil
	cr.LogPath = logPath
	cr.ImageID = imageID
	cr.Started = true
	mounts := make([]string, 0, len(spec.Mounts))
	for _, m := range spec.Mounts {
		if abs, err := filepath.EvalSymlinks(m.HostPath); err == nil {
			mounts = append(mounts, abs) // /proc/self/fd shows resolved paths
		} else {
			mounts = append(mounts, m.HostPath)
		}
	}
	w.runs[c.Name] = &activeRun{cancel: cancel, image: c.Image, mounts: mounts, usage: spec.Usage, cpu: &cpuRate{}}
	w.save()
	w.mu.Unlock()
	w.changedNow()
	w.event(c.Name, init, corev1.EventTypeNormal, "Created", "Created container: %s", c.Name)
	w.event(c.Name, init, corev1.EventTypeNormal, "Started", "Started container %s", c.Name)
	onStart()

	res, rerr := prog.Run(runCtx, spec)
	if cerr := lf.Close(); cerr != nil {
		logger(ctx, w).WithError(cerr).Warn("close container log")
	}
	cause := context.Cause(runCtx)
	fin := w.now()

	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.runs, c.Name)
	if w.isShutdown() {
		// The node process is stopping: the record keeps the container
		// Running so the restarted node counts it as a restart.
		return nil, true
	}
	term := &termination{StartedAt: start, FinishedAt: fin, ContainerID: id}
	switch {
	case rerr != nil:
		term.ExitCode, term.Reason, term.Message = 128, "StartError", rerr.Error()
	case res.Reason == runtime.ReasonOOMKilled:
		term.ExitCode, term.Reason = 137, "OOMKilled"
	case res.Reason == runtime.ReasonKilled:
		term.ExitCode, term.Reason = 137, "Error"
		switch {
		case errors.Is(cause, errImageChanged):
			term.Message = errImageChanged.Error()
			term.imageChanged = true
		case errors.Is(cause, errTooManyFiles):
			term.Reason, term.Message = "TooManyOpenFiles", "stopped: "+cause.Error()
		case w.stopReason == stopDeleted:
			term.Message = "stopped when the pod was deleted (Wasm guests cannot receive SIGTERM)"
		case w.stopReason == stopFailed:
			term.Message = "stopped: " + w.rec.Message
		}
	case res.ExitCode == 0:
		term.ExitCode, term.Reason = 0, "Completed"
	default:
		term.ExitCode, term.Reason = int32(res.ExitCode), "Error"
	}
	if term.Message == "" {
		term.Message = terminationMessage(c, termPath, logPath, term.ExitCode, res.Message)
	}
	stopped := ctx.Err() != nil
	if stopped {
		cr.Phase = phaseTerminated
		cr.Term = term
		cr.Done = true
		w.save()
		go w.changed()
	}
	return term, stopped
}

var plainExit = regexp.MustCompile(`^(exit code|exit status|exited with code) -?\d+$`)

func terminationMessage(c *corev1.Container, termPath, logPath string, exitCode int32, runtimeMsg string) string {
	var msg string
	if termPath != "" {
		if f, err := os.Open(termPath); err == nil {
			buf := make([]byte, maxTerminationMessage)
			n, _ := f.Read(buf)
			f.Close()
			msg = string(buf[:n])
		}
	}
	if msg == "" && exitCode != 0 && c.TerminationMessagePolicy == corev1.TerminationMessageFallbackToLogsOnError {
		msg = tailForTermination(logPath)
	}
	if msg == "" && exitCode != 0 && !plainExit.MatchString(runtimeMsg) {
		// A trap or running out of memory has no guest-written message;
		// the runtime's description is the most useful one. A plain exit
		// code says nothing the status does not.
		msg = runtimeMsg
	}
	return msg
}

// startCleanup deletes the pod object once its containers are stopped (as
// the kubelet's status manager does, with grace period 0 and a UID
// precondition), then removes the pod directory (logs included) and forgets
// the pod. A delete that finds the object gone (NotFound; Forbidden, which
// is how the node authorizer answers for a pod no longer bound to the node;
// Conflict: a new pod with the same name) counts as done; other errors are
// retried a few times without polling the API further, so a busy node's
// request budget goes to status updates.
func (w *podWorker) startCleanup() {
	w.cleanup.Do(func() {
		go func() {
			if client := w.p.cfg.Client; client != nil {
				ctx, cancel := context.WithTimeout(w.p.baseCtx, 2*time.Minute)
				defer cancel()
				// Give virtual-kubelet a moment to write the terminated status
				// (it does within tens of milliseconds; a whole second here
				// was most of the time a deleted pod took to disappear).
				sleep(ctx, 150*time.Millisecond)
				opts := metav1.DeleteOptions{GracePeriodSeconds: new(int64), Preconditions: metav1.NewUIDPreconditions(string(w.uid))}
				for attempt := 1; ; attempt++ {
					err := client.CoreV1().Pods(w.namespace).Delete(ctx, w.name, opts)
					if err == nil || apierrors.IsNotFound(err) || apierrors.IsConflict(err) || apierrors.IsForbidden(err) {
						break
					}
					if attempt == 5 || !sleep(ctx, time.Duration(attempt)*2*time.Second) {
						logger(ctx, w).WithError(err).Warn("delete terminated pod; virtual-kubelet deletes it after its grace period")
						break
					}
				}
			}
			if w.p.baseCtx.Err() != nil {
				// Node shutting down: keep the directory; the restarted
				// node's orphan collection removes it once the pod is gone.
				return
			}
			if err := removeState(w.dir); err != nil {
				log.G(w.p.baseCtx).WithError(err).Warnf("remove pod directory %s", w.dir)
			}
			w.p.forget(w)
		}()
	})
}
