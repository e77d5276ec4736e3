package pods_test

// End-to-end tests of the pod lifecycle: real `wasilet node` processes
// (internal/nodetest) against the real control plane and registry
// (internal/clustertest), running the test program handlers/testprog as a
// core module and as a component. They skip under -short.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/wasilet/wasilet/internal/nodetest"
)

func TestMain(m *testing.M) { nodetest.Main(m) }

const podTimeout = 2 * time.Minute

var pushed sync.Map // file → ref

// wasmDir is where hack/wasm.sh puts the test programs.
func wasmDir(t *testing.T) string {
	t.Helper()
	if d := os.Getenv("WASILET_WASM_DIR"); d != "" {
		return d
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(wd, "..", "..", "bin", "wasm")
}

// testprog pushes the test program of the given kind ("module" or
// "component") once per test binary and returns its reference.
func testprog(t *testing.T, n *nodetest.Node, kind string) string {
	t.Helper()
	file := "testprog.wasm"
	if kind == "component" {
		file = "testprog.component.wasm"
	}
	path := filepath.Join(wasmDir(t), file)
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("%s not found (%v): build it with hack/wasm.sh or set WASILET_WASM_DIR", path, err)
	}
	if ref, ok := pushed.Load(path); ok {
		return ref.(string)
	}
	ref := nodetest.PushWasm(t, n.Env, path, "testprog-"+kind+":v1")
	pushed.Store(path, ref)
	return ref
}

var kinds = []string{"module", "component"}

// eachKind runs f as a subtest for each build of testprog (module and
// component) on the shared node, in a namespace of its own, with the build
// pushed to the cluster registry as ref.
func eachKind(t *testing.T, f func(t *testing.T, kind string, n *nodetest.Node, ns, ref string)) {
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			n := nodetest.Shared(t)
			f(t, kind, n, n.Env.Namespace(t), testprog(t, n, kind))
		})
	}
}

func args(a ...string) func(*corev1.Pod) {
	return func(p *corev1.Pod) { p.Spec.Containers[0].Args = a }
}

func never(p *corev1.Pod) { p.Spec.RestartPolicy = corev1.RestartPolicyNever }

func terminated(t *testing.T, p *corev1.Pod, name string) *corev1.ContainerStateTerminated {
	t.Helper()
	for _, cs := range append(append([]corev1.ContainerStatus{}, p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...) {
		if cs.Name == name {
			if cs.State.Terminated == nil {
				t.Fatalf("container %s is not terminated: %+v", name, cs.State)
			}
			return cs.State.Terminated
		}
	}
	t.Fatalf("no status for container %s", name)
	return nil
}

func logs(t *testing.T, n *nodetest.Node, ns, pod string, extra ...string) string {
	t.Helper()
	return n.Kubectl(t, append([]string{"logs", "-n", ns, pod}, extra...)...)
}

func TestE2EHelloAndArgs(t *testing.T) {
	eachKind(t, func(t *testing.T, kind string, n *nodetest.Node, ns, ref string) {

		n.CreatePod(t, n.Pod(ns, "hello", ref, args("hello"), never))
		p := n.WaitPodPhase(t, ns, "hello", corev1.PodSucceeded, podTimeout)
		if term := terminated(t, p, "main"); term.ExitCode != 0 || term.Reason != "Completed" {
			t.Fatalf("hello: %+v", term)
		}
		if got := logs(t, n, ns, "hello"); got != "Hello, world!\n" {
			t.Fatalf("kubectl logs hello: %q", got)
		}

		// argv[0] is the container name; args follow.
		n.CreatePod(t, n.Pod(ns, "args", ref, args("args", "a b", "c"), never))
		n.WaitPodPhase(t, ns, "args", corev1.PodSucceeded, podTimeout)
		if got := logs(t, n, ns, "args"); got != "main\nargs\na b\nc\n" {
			t.Fatalf("argv: %q", got)
		}
		// With a command, command[0] is argv[0].
		n.CreatePod(t, n.Pod(ns, "cmd", ref, func(p *corev1.Pod) {
			p.Spec.Containers[0].Command = []string{"prog0", "args"}
			p.Spec.Containers[0].Args = []string{"x"}
		}, never))
		n.WaitPodPhase(t, ns, "cmd", corev1.PodSucceeded, podTimeout)
		if got := logs(t, n, ns, "cmd"); got != "prog0\nargs\nx\n" {
			t.Fatalf("argv with command: %q", got)
		}
	})
}

func TestE2EFailingModule(t *testing.T) {
	eachKind(t, func(t *testing.T, kind string, n *nodetest.Node, ns, ref string) {
		n.CreatePod(t, n.Pod(ns, "fail", ref, args("fail", "something went wrong"), never))
		p := n.WaitPodPhase(t, ns, "fail", corev1.PodFailed, podTimeout)
		term := terminated(t, p, "main")
		if term.ExitCode != 1 || term.Reason != "Error" || term.Message != "something went wrong" {
			t.Fatalf("terminated: %+v", term)
		}
		// Other exit codes come through as they are.
		n.CreatePod(t, n.Pod(ns, "exit3", ref, args("exit", "3"), never))
		p = n.WaitPodPhase(t, ns, "exit3", corev1.PodFailed, podTimeout)
		// WASI 0.2's wasi:cli/exit carries only success or failure, so a
		// component's exit(3) arrives as 1; core modules keep the code.
		want := int32(3)
		if kind == "component" {
			want = 1
		}
		if term := terminated(t, p, "main"); term.ExitCode != want {
			t.Fatalf("exit 3: %+v", term)
		}
	})
}

func TestE2EVolumes(t *testing.T) {
	eachKind(t, func(t *testing.T, kind string, n *nodetest.Node, ns, ref string) {
		ctx := context.Background()
		host := t.TempDir()
		os.Chmod(host, 0o777)
		if err := os.WriteFile(filepath.Join(host, "in.txt"), []byte("from host"), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := n.Env.Client.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: "cfg"}, Data: map[string]string{"greeting": "hello from configmap"},
		}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := n.Env.Client.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: "sec"}, Data: map[string][]byte{"password": []byte("s3cret")},
		}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		volumes := func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{
				{Name: "host", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: host, Type: ptr(corev1.HostPathDirectory)}}},
				{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
				{Name: "cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}}}},
				{Name: "sec", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "sec"}}},
			}
			p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{
				{Name: "host", MountPath: "/host"},
				{Name: "scratch", MountPath: "/scratch"},
				{Name: "cfg", MountPath: "/cfg"},
				{Name: "sec", MountPath: "/sec"},
			}
			p.Spec.Containers[0].TerminationMessagePolicy = corev1.TerminationMessageFallbackToLogsOnError
		}
		n.CreatePod(t, n.Pod(ns, "files", ref, volumes, never, args(
			"read", "/host/in.txt", ";", "echo", ";",
			"write", "/host/out.txt", "written by "+kind, ";",
			"write", "/scratch/x", "scratch data", ";", "read", "/scratch/x", ";", "echo", ";",
			"read", "/cfg/greeting", ";", "echo", ";",
			"read", "/sec/password", ";", "echo", ";",
			"cannot-write", "/cfg/greeting", ";",
			"absent", "/host/never-created",
		)))
		n.WaitPodPhase(t, ns, "files", corev1.PodSucceeded, podTimeout)
		// cannot-write reports how the write was refused on the last line.
		want := "from host\nscratch data\nhello from configmap\ns3cret\nrefused: "
		if got := logs(t, n, ns, "files"); !strings.HasPrefix(got, want) {
			t.Fatalf("logs %q, want %q...", got, want)
		}
		if b, err := os.ReadFile(filepath.Join(host, "out.txt")); err != nil || string(b) != "written by "+kind {
			t.Fatalf("hostPath write: %q %v", b, err)
		}

		// A file that must exist but does not is reported.
		n.CreatePod(t, n.Pod(ns, "missing", ref, volumes, never, args("exists", "/cfg/no-such-key")))
		p := n.WaitPodPhase(t, ns, "missing", corev1.PodFailed, podTimeout)
		if term := terminated(t, p, "main"); term.ExitCode != 1 || !strings.Contains(term.Message, "/cfg/no-such-key") {
			t.Fatalf("missing file: %+v", term)
		}
	})
}

func TestE2EHostPathTypeCheck(t *testing.T) {
	n := nodetest.Shared(t)
	ns := n.Env.Namespace(t)
	ref := testprog(t, n, "module")
	missing := filepath.Join(t.TempDir(), "does-not-exist")
	n.CreatePod(t, n.Pod(ns, "badmount", ref, args("hello"), func(p *corev1.Pod) {
		p.Spec.Volumes = []corev1.Volume{{Name: "h", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: missing, Type: ptr(corev1.HostPathDirectory)}}}}
		p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "h", MountPath: "/h"}}
	}))
	p := n.WaitPod(t, ns, "badmount", podTimeout, "FailedMount message", func(p *corev1.Pod) (bool, error) {
		for _, cs := range p.Status.ContainerStatuses {
			if w := cs.State.Waiting; w != nil && strings.Contains(w.Message, "is not a directory") {
				return true, nil
			}
		}
		return false, nil
	})
	if p.Status.Phase != corev1.PodPending {
		t.Fatalf("phase %s", p.Status.Phase)
	}
	waitEvent(t, n, ns, "badmount", "FailedMount")
}

func waitEvent(t *testing.T, n *nodetest.Node, ns, pod, reason string) {
	t.Helper()
	deadline := time.Now().Add(podTimeout)
	for {
		evs, err := n.Env.Client.CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{})
		if err == nil {
			for _, e := range evs.Items {
				if e.InvolvedObject.Name == pod && e.Reason == reason {
					return
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s event for pod %s", reason, pod)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func TestE2EInitContainers(t *testing.T) {
	n := nodetest.Shared(t)
	ns := n.Env.Namespace(t)
	ref := testprog(t, n, "module")
	work := func(p *corev1.Pod) {
		p.Spec.Volumes = []corev1.Volume{{Name: "work", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
		for i := range p.Spec.InitContainers {
			p.Spec.InitContainers[i].VolumeMounts = []corev1.VolumeMount{{Name: "work", MountPath: "/work"}}
		}
		p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "work", MountPath: "/work"}}
	}
	n.CreatePod(t, n.Pod(ns, "ordered", ref, never, func(p *corev1.Pod) {
		p.Spec.InitContainers = []corev1.Container{
			{Name: "first", Image: ref, Args: []string{"append", "/work/order", "first,"}},
			{Name: "second", Image: ref, Args: []string{"append", "/work/order", "second,"}},
			{Name: "third", Image: ref, Args: []string{"append", "/work/order", "third"}},
		}
		p.Spec.Containers[0].Args = []string{"read", "/work/order"}
	}, work))
	n.WaitPodPhase(t, ns, "ordered", corev1.PodSucceeded, podTimeout)
	// The last line has no newline; like every CRI log line it is served with one.
	if got := logs(t, n, ns, "ordered", "-c", "main"); got != "first,second,third\n" {
		t.Fatalf("init order: %q", got)
	}

	n.CreatePod(t, n.Pod(ns, "blocked", ref, never, func(p *corev1.Pod) {
		p.Spec.InitContainers = []corev1.Container{{Name: "setup", Image: ref, Args: []string{"fail", "setup failed"}}}
		p.Spec.Containers[0].Args = []string{"write", "/work/main-ran", "yes"}
	}, work))
	p := n.WaitPodPhase(t, ns, "blocked", corev1.PodFailed, podTimeout)
	if term := terminated(t, p, "setup"); term.ExitCode != 1 || term.Message != "setup failed" {
		t.Fatalf("init container: %+v", term)
	}
	if w := p.Status.ContainerStatuses[0].State.Waiting; w == nil || w.Reason != "PodInitializing" {
		t.Fatalf("main container ran or has a wrong state: %+v", p.Status.ContainerStatuses[0].State)
	}
	if out := n.Kubectl(t, "get", "pod", "-n", ns, "blocked"); !strings.Contains(out, "Init:Error") {
		t.Fatalf("kubectl get pod does not say Init:Error:\n%s", out)
	}
}

func TestE2EEnv(t *testing.T) {
	n := nodetest.Shared(t)
	ns := n.Env.Namespace(t)
	ref := testprog(t, n, "module")
	ctx := context.Background()
	n.Env.Client.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cm"}, Data: map[string]string{"COLOR": "blue", "SIZE": "L"}}, metav1.CreateOptions{})
	n.Env.Client.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "sec"}, Data: map[string][]byte{"TOKEN": []byte("t0k3n")}}, metav1.CreateOptions{})
	n.CreatePod(t, n.Pod(ns, "env", ref, never, args("env"), func(p *corev1.Pod) {
		c := &p.Spec.Containers[0]
		c.Resources.Limits = corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi")}
		c.EnvFrom = []corev1.EnvFromSource{{Prefix: "CM_", ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cm"}}}}
		c.Env = []corev1.EnvVar{
			{Name: "PLAIN", Value: "value"},
			{Name: "EXPANDED", Value: "$(PLAIN)-$(CM_COLOR)"},
			{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
			{Name: "POD_NS", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}},
			{Name: "NODE", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "spec.nodeName"}}},
			{Name: "POD_IP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"}}},
			{Name: "MEM_MI", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "limits.memory", Divisor: resource.MustParse("1Mi")}}},
			{Name: "FROM_CM", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "cm"}, Key: "SIZE"}}},
			{Name: "FROM_SECRET", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "sec"}, Key: "TOKEN"}}},
			{Name: "OPTIONAL", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "nope"}, Key: "x", Optional: ptr(true)}}},
		}
	}))
	n.WaitPodPhase(t, ns, "env", corev1.PodSucceeded, podTimeout)
	out := logs(t, n, ns, "env")
	for _, want := range []string{
		"PLAIN=value", "EXPANDED=value-blue", "CM_COLOR=blue", "CM_SIZE=L",
		"POD_NAME=env", "POD_NS=" + ns, "NODE=" + n.Name, "POD_IP=127.0.0.1",
		"MEM_MI=64", "FROM_CM=L", "FROM_SECRET=t0k3n",
	} {
		if !strings.Contains("\n"+out, "\n"+want+"\n") {
			t.Errorf("env lacks %s:\n%s", want, out)
		}
	}
	if strings.Contains(out, "OPTIONAL=") {
		t.Errorf("optional missing secret produced a variable:\n%s", out)
	}
}

func TestE2ERestartBackOff(t *testing.T) {
	n := nodetest.Shared(t)
	ns := n.Env.Namespace(t)
	ref := testprog(t, n, "module")
	n.CreatePod(t, n.Pod(ns, "crash", ref, args("echo", "run", ";", "exit", "3")))
	p := n.WaitPod(t, ns, "crash", 3*time.Minute, "two restarts in CrashLoopBackOff", func(p *corev1.Pod) (bool, error) {
		if len(p.Status.ContainerStatuses) == 0 {
			return false, nil
		}
		cs := p.Status.ContainerStatuses[0]
		return cs.RestartCount >= 2 && cs.State.Waiting != nil && cs.State.Waiting.Reason == "CrashLoopBackOff", nil
	})
	cs := p.Status.ContainerStatuses[0]
	if last := cs.LastTerminationState.Terminated; last == nil || last.ExitCode != 3 {
		t.Fatalf("last state: %+v", cs.LastTerminationState)
	}
	if p.Status.Phase != corev1.PodRunning {
		t.Fatalf("phase %s", p.Status.Phase)
	}
	// The wait grows: "back-off 20s" (or more) after the second crash.
	if msg := cs.State.Waiting.Message; !strings.Contains(msg, "back-off 20s") && !strings.Contains(msg, "back-off 40s") && !strings.Contains(msg, "back-off 1m20s") {
		t.Fatalf("back-off message %q", msg)
	}
	waitEvent(t, n, ns, "crash", "BackOff")
	if got := logs(t, n, ns, "crash", "--previous"); got != "run\n" {
		t.Fatalf("--previous: %q", got)
	}
}

func TestE2EOOMKilled(t *testing.T) {
	eachKind(t, func(t *testing.T, kind string, n *nodetest.Node, ns, ref string) {
		n.CreatePod(t, n.Pod(ns, "oom", ref, never, args("alloc", "200Mi"), func(p *corev1.Pod) {
			p.Spec.Containers[0].Resources.Limits = corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("32Mi")}
		}))
		p := n.WaitPodPhase(t, ns, "oom", corev1.PodFailed, podTimeout)
		if term := terminated(t, p, "main"); term.Reason != "OOMKilled" || term.ExitCode != 137 {
			t.Fatalf("terminated: %+v", term)
		}
	})
}

func TestE2EDeleteSpinning(t *testing.T) {
	eachKind(t, func(t *testing.T, kind string, n *nodetest.Node, ns, ref string) {
		const grace = 60
		n.CreatePod(t, n.Pod(ns, "spin", ref, args("spin"), func(p *corev1.Pod) {
			p.Spec.TerminationGracePeriodSeconds = ptr(int64(grace))
		}))
		n.WaitPodCondition(t, ns, "spin", corev1.PodReady, podTimeout)
		if err := n.Env.Client.CoreV1().Pods(ns).Delete(context.Background(), "spin", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		// Gone within its grace period (the guest is stopped at once).
		deadline := time.Now().Add(grace * time.Second)
		for {
			_, err := n.Env.Client.CoreV1().Pods(ns).Get(context.Background(), "spin", metav1.GetOptions{})
			if err != nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("pod still exists after its %ds grace period", grace)
			}
			time.Sleep(250 * time.Millisecond)
		}
	})
}

func TestE2ELogs(t *testing.T) {
	n := nodetest.Shared(t)
	ns := n.Env.Namespace(t)
	ref := testprog(t, n, "module")
	const ticks = 15
	n.CreatePod(t, n.Pod(ns, "ticker", ref, never, args("tick", "1s", fmt.Sprint(ticks))))
	// (On a busy machine the status may only show up once it has ended;
	// -f must then return the whole log at once.)
	n.WaitPod(t, ns, "ticker", podTimeout, "started", func(p *corev1.Pod) (bool, error) {
		return len(p.Status.ContainerStatuses) > 0 && (p.Status.ContainerStatuses[0].State.Running != nil || p.Status.ContainerStatuses[0].State.Terminated != nil), nil
	})
	// -f follows until the container ends.
	got := logs(t, n, ns, "ticker", "-f")
	var want strings.Builder
	for i := 1; i <= ticks; i++ {
		fmt.Fprintf(&want, "tick %d\n", i)
	}
	if got != want.String() {
		t.Fatalf("logs -f: %q, want %q", got, want.String())
	}
	n.WaitPodPhase(t, ns, "ticker", corev1.PodSucceeded, podTimeout)
	full := strings.Split(strings.TrimSpace(logs(t, n, ns, "ticker")), "\n")
	tail := logs(t, n, ns, "ticker", "--tail=2")
	if tail != strings.Join(full[len(full)-2:], "\n")+"\n" {
		t.Fatalf("--tail=2: %q (full %q)", tail, full)
	}
	ts := strings.Split(strings.TrimSpace(logs(t, n, ns, "ticker", "--timestamps", "--tail=1")), " ")
	if len(ts) < 2 {
		t.Fatalf("--timestamps: %q", ts)
	}
	if _, err := time.Parse(time.RFC3339Nano, ts[0]); err != nil {
		t.Fatalf("--timestamps prefix %q: %v", ts[0], err)
	}
}

func TestE2ENonWasmImage(t *testing.T) {
	n := nodetest.Shared(t)
	ns := n.Env.Namespace(t)
	ref := testprog(t, n, "module")
	// A container-image-like artifact: a tar+gzip layer, no Wasm.
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "layer.tar.gz"), []byte("not wasm"), 0o644)
	bad := n.Env.RegistryAddr + "/not-wasm:v1"
	cmd := exec.Command(n.Env.Tool("oras"), "push", "--plain-http", bad, "layer.tar.gz:application/vnd.oci.image.layer.v1.tar+gzip")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("oras push: %v\n%s", err, out)
	}
	n.CreatePod(t, n.Pod(ns, "notwasm", bad))
	p := n.WaitPod(t, ns, "notwasm", podTimeout, "image pull error", func(p *corev1.Pod) (bool, error) {
		for _, cs := range p.Status.ContainerStatuses {
			if w := cs.State.Waiting; w != nil && (w.Reason == "ErrImagePull" || w.Reason == "ImagePullBackOff") {
				return true, nil
			}
		}
		return false, nil
	})
	msg := p.Status.ContainerStatuses[0].State.Waiting.Message
	if !strings.Contains(msg, "application/vnd.oci.image.layer.v1.tar+gzip") && !strings.Contains(strings.ToLower(msg), "media type") {
		t.Fatalf("message does not name the media types: %q", msg)
	}
	// The node keeps serving other pods.
	n.CreatePod(t, n.Pod(ns, "hello", ref, args("hello"), never))
	n.WaitPodPhase(t, ns, "hello", corev1.PodSucceeded, podTimeout)
	n.WaitPod(t, ns, "notwasm", podTimeout, "ImagePullBackOff", func(p *corev1.Pod) (bool, error) {
		w := p.Status.ContainerStatuses[0].State.Waiting
		return w != nil && w.Reason == "ImagePullBackOff", nil
	})
}

func TestE2ENodeRestart(t *testing.T) {
	n := nodetest.Start(t, nodetest.Options{})
	ns := n.Env.Namespace(t)
	ref := testprog(t, n, "module")
	n.CreatePod(t, n.Pod(ns, "survivor", ref, args("echo", "up", ";", "spin")))
	n.CreatePod(t, n.Pod(ns, "done", ref, args("echo", "once"), func(p *corev1.Pod) { p.Spec.RestartPolicy = corev1.RestartPolicyOnFailure }))
	n.WaitPodCondition(t, ns, "survivor", corev1.PodReady, podTimeout)
	n.WaitPodPhase(t, ns, "done", corev1.PodSucceeded, podTimeout)

	n.Kill(t)
	n.Restart(t)

	p := n.WaitPod(t, ns, "survivor", podTimeout, "running again with one restart", func(p *corev1.Pod) (bool, error) {
		cs := p.Status.ContainerStatuses[0]
		return p.Status.Phase == corev1.PodRunning && cs.State.Running != nil && cs.RestartCount == 1, nil
	})
	last := p.Status.ContainerStatuses[0].LastTerminationState.Terminated
	if last == nil || last.Reason != "Unknown" {
		t.Fatalf("last state: %+v", p.Status.ContainerStatuses[0].LastTerminationState)
	}
	if got := logs(t, n, ns, "survivor"); got != "up\n" {
		t.Fatalf("logs after restart: %q", got)
	}
	if got := logs(t, n, ns, "survivor", "--previous"); got != "up\n" {
		t.Fatalf("--previous after restart: %q", got)
	}
	if p := n.WaitPodPhase(t, ns, "done", corev1.PodSucceeded, podTimeout); p.Status.ContainerStatuses[0].RestartCount != 0 {
		t.Fatalf("completed pod ran again: %+v", p.Status.ContainerStatuses[0])
	}
	if got := logs(t, n, ns, "done"); got != "once\n" {
		t.Fatalf("logs of the completed pod after restart: %q", got)
	}
}

func ptr[T any](v T) *T { return &v }
