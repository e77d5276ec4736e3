package devicemanager

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	pluginapi "k8s.io/kubelet/pkg/apis/deviceplugin/v1beta1"

	"github.com/wasilet/wasilet/internal/devicemanager/plugintest"
)

const res = "example.com/dev"

func startManager(t *testing.T, dir string, grace time.Duration) *Manager {
	t.Helper()
	m, err := New(Options{Dir: dir, StopGracePeriod: grace, Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Stop)
	return m
}

func testLogger() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

type ctr struct {
	name string
	init bool
	req  map[string]int64
}

func testPod(uid string, cs ...ctr) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "pod-" + uid, Namespace: "default", UID: types.UID(uid)}}
	for _, c := range cs {
		k := corev1.Container{Name: c.name, Image: "example/wasm:1"}
		if len(c.req) > 0 {
			k.Resources.Limits = corev1.ResourceList{}
			for r, n := range c.req {
				k.Resources.Limits[corev1.ResourceName(r)] = *resource.NewQuantity(n, resource.DecimalSI)
			}
		}
		if c.init {
			p.Spec.InitContainers = append(p.Spec.InitContainers, k)
		} else {
			p.Spec.Containers = append(p.Spec.Containers, k)
		}
	}
	return p
}

func counts(m *Manager, name string) (int64, int64, bool) {
	c, a, _ := m.Resources()
	cq, ok := c[corev1.ResourceName(name)]
	aq := a[corev1.ResourceName(name)]
	return cq.Value(), aq.Value(), ok
}

func waitCounts(t *testing.T, m *Manager, name string, wantCap, wantAlloc int64) {
	t.Helper()
	eventually(t, fmt.Sprintf("%s capacity %d allocatable %d", name, wantCap, wantAlloc), func() (bool, string) {
		c, a, ok := counts(m, name)
		return ok && c == wantCap && a == wantAlloc, fmt.Sprintf("present=%v capacity=%d allocatable=%d", ok, c, a)
	})
}

func TestRegisterAndListAndWatch(t *testing.T) {
	dir := shortDir(t)
	m := startManager(t, dir, time.Hour)
	// drain the start notification
	select {
	case <-m.Updates():
	default:
	}
	p := newPlugin(t, dir, res, "p.sock", nil, "d1", "d2", "d3")
	start(t, p)
	waitCounts(t, m, res, 3, 3)
	select {
	case <-m.Updates():
	case <-time.After(60 * time.Second):
		t.Fatal("no update notification after registration")
	}

	// One device turns unhealthy, one disappears: the full list wins.
	p.SetDevices(&pluginapi.Device{ID: "d1", Health: pluginapi.Healthy}, &pluginapi.Device{ID: "d2", Health: pluginapi.Unhealthy})
	waitCounts(t, m, res, 2, 1)
	if got := m.AllocatableDevices()[res]; len(got) != 1 || got[0].ID != "d1" {
		t.Fatalf("AllocatableDevices = %+v, want only d1", got)
	}
	p.SetDevices(plugintest.Healthy("d1", "d2", "d3", "d4")...)
	waitCounts(t, m, res, 4, 4)
}

func TestRegisterRejects(t *testing.T) {
	dir := shortDir(t)
	startManager(t, dir, time.Hour)
	kubelet := filepath.Join(dir, KubeletSocket)
	for _, tc := range []struct {
		name string
		req  *pluginapi.RegisterRequest
		want string
	}{
		{"version", &pluginapi.RegisterRequest{Version: "v1alpha1", Endpoint: "x.sock", ResourceName: res}, `requested API version "v1alpha1" is not supported`},
		{"no domain", &pluginapi.RegisterRequest{Version: pluginapi.Version, Endpoint: "x.sock", ResourceName: "gpu"}, "needs a domain prefix"},
		{"kubernetes.io", &pluginapi.RegisterRequest{Version: pluginapi.Version, Endpoint: "x.sock", ResourceName: "kubernetes.io/gpu"}, "reserved for native resources"},
		{"bad chars", &pluginapi.RegisterRequest{Version: pluginapi.Version, Endpoint: "x.sock", ResourceName: "example.com/bad name"}, `"example.com/bad name" is invalid`},
		{"endpoint path", &pluginapi.RegisterRequest{Version: pluginapi.Version, Endpoint: "../x.sock", ResourceName: res}, "must be the name of a socket"},
		{"no plugin", &pluginapi.RegisterRequest{Version: pluginapi.Version, Endpoint: "missing.sock", ResourceName: res}, "get device plugin options"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := plugintest.RegisterAt(kubelet, tc.req)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Register error = %v, want it to contain %q", err, tc.want)
			}
			if tc.name != "no plugin" && status.Code(err) != codes.InvalidArgument {
				t.Fatalf("code = %v, want InvalidArgument", status.Code(err))
			}
		})
	}
}

func TestAdmitPreferredAllocationAndPreStart(t *testing.T) {
	dir := shortDir(t)
	m := startManager(t, dir, time.Hour)
	p := newPlugin(t, dir, res, "p.sock", &pluginapi.DevicePluginOptions{PreStartRequired: true, GetPreferredAllocationAvailable: true}, "d1", "d2", "d3", "d4")
	p.PreferFunc = func(r *pluginapi.ContainerPreferredAllocationRequest) []string { return []string{"d4", "d2"} }
	start(t, p)
	// A second plugin with its own envs, mounts, devices and annotations.
	q := newPlugin(t, dir, "example.com/other", "q.sock", nil, "o1")
	q.AllocFunc = func(ids []string) *pluginapi.ContainerAllocateResponse {
		return &pluginapi.ContainerAllocateResponse{
			Envs:        map[string]string{"OTHER": strings.Join(ids, ","), "DEV_d4": "conflict-loses"},
			Mounts:      []*pluginapi.Mount{{ContainerPath: "/other", HostPath: "/host/other", ReadOnly: true}},
			Devices:     []*pluginapi.DeviceSpec{{ContainerPath: "/dev/other", HostPath: "/dev/null", Permissions: "rw"}},
			Annotations: map[string]string{"example.com/other": "yes"},
		}
	}
	start(t, q)
	waitCounts(t, m, res, 4, 4)
	waitCounts(t, m, "example.com/other", 1, 1)

	pod := testPod("u1", ctr{name: "app", req: map[string]int64{res: 2, "example.com/other": 1, "cpu": 1}})
	if err := m.Admit(context.Background(), pod); err != nil {
		t.Fatalf("Admit: %v", err)
	}
	pref, allocs, _ := p.Calls()
	if len(pref) != 1 {
		t.Fatalf("GetPreferredAllocation called %d times, want 1", len(pref))
	}
	cr := pref[0].ContainerRequests[0]
	if cr.AllocationSize != 2 || !reflect.DeepEqual(sorted(cr.AvailableDeviceIDs), []string{"d1", "d2", "d3", "d4"}) {
		t.Fatalf("GetPreferredAllocation request = %v", cr)
	}
	if len(allocs) != 1 || !reflect.DeepEqual(sorted(allocs[0].ContainerRequests[0].DevicesIds), []string{"d2", "d4"}) {
		t.Fatalf("Allocate requests = %v, want the preferred d2,d4", allocs)
	}
	if _, _, pre := p.Calls(); len(pre) != 0 {
		t.Fatalf("PreStartContainer called at admission: %v", pre)
	}

	alloc, err := m.PrepareContainer(context.Background(), pod, "app")
	if err != nil {
		t.Fatalf("PrepareContainer: %v", err)
	}
	_, _, pre := p.Calls()
	if len(pre) != 1 || !reflect.DeepEqual(sorted(pre[0].DevicesIds), []string{"d2", "d4"}) {
		t.Fatalf("PreStartContainer calls = %v, want one with d2,d4", pre)
	}
	if _, _, qpre := q.Calls(); len(qpre) != 0 {
		t.Fatalf("PreStartContainer called on a plugin that does not require it")
	}
	want := &ContainerAllocation{
		Envs: map[string]string{"DEV_d2": "d2", "DEV_d4": "d4", "OTHER": "o1"},
		Mounts: []Mount{
			{ContainerPath: "/other", HostPath: "/host/other", ReadOnly: true},
			{ContainerPath: "/dev-d2", HostPath: filepath.Join(dir, "host-d2")},
			{ContainerPath: "/dev-d4", HostPath: filepath.Join(dir, "host-d4")},
		},
		Devices:     []DeviceSpec{{ContainerPath: "/dev/other", HostPath: "/dev/null", Permissions: "rw"}},
		Annotations: map[string]string{"example.com/other": "yes"},
		DeviceIDs:   map[string][]string{res: {"d2", "d4"}, "example.com/other": {"o1"}},
	}
	// "example.com/dev" sorts before "example.com/other": its env wins the conflict.
	want.Mounts = []Mount{want.Mounts[1], want.Mounts[2], want.Mounts[0]}
	if !reflect.DeepEqual(alloc, want) {
		t.Fatalf("PrepareContainer =\n%+v\nwant\n%+v", alloc, want)
	}
	if got, _ := m.PrepareContainer(context.Background(), pod, "missing"); got != nil {
		t.Fatalf("PrepareContainer of a container without devices = %+v, want nil", got)
	}
	if got := m.ContainerDevices(pod.UID, "app")[res]; len(got) != 2 || got[0].ID != "d2" || got[1].ID != "d4" {
		t.Fatalf("ContainerDevices = %+v", got)
	}
}

func TestAdmitRejects(t *testing.T) {
	dir := shortDir(t)
	m := startManager(t, dir, time.Hour)
	p := newPlugin(t, dir, res, "p.sock", nil, "d1", "d2")
	start(t, p)
	waitCounts(t, m, res, 2, 2)

	for _, tc := range []struct {
		name string
		pod  *corev1.Pod
		want string
	}{
		{"too many", testPod("u1", ctr{name: "app", req: map[string]int64{res: 3}}),
			"Allocate failed due to requested number of devices unavailable for example.com/dev. Requested: 3, Available: 2, which is unexpected"},
		{"unregistered", testPod("u2", ctr{name: "app", req: map[string]int64{"example.com/nothing": 1}}),
			"Allocate failed due to cannot allocate unregistered device example.com/nothing, which is unexpected"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := m.Admit(context.Background(), tc.pod)
			var ae *AdmissionError
			if !errors.As(err, &ae) {
				t.Fatalf("Admit error = %v, want *AdmissionError", err)
			}
			if ae.Reason != "UnexpectedAdmissionError" || ae.Message != tc.want {
				t.Fatalf("AdmissionError = %q / %q, want UnexpectedAdmissionError / %q", ae.Reason, ae.Message, tc.want)
			}
			if len(m.AllocatedPods()) != 0 {
				t.Fatalf("a rejected pod holds devices: %v", m.AllocatedPods())
			}
		})
	}
	// A pod without extended resources is admitted without any call.
	if err := m.Admit(context.Background(), testPod("u3", ctr{name: "app", req: map[string]int64{"cpu": 1}})); err != nil {
		t.Fatal(err)
	}
	if _, allocs, _ := p.Calls(); len(allocs) != 0 {
		t.Fatalf("Allocate called for rejected or device-less pods: %v", allocs)
	}
}

func TestAllocateFailureRejectsPod(t *testing.T) {
	dir := shortDir(t)
	m := startManager(t, dir, time.Hour)
	p := newPlugin(t, dir, res, "p.sock", nil, "d1", "d2")
	p.AllocateError = errors.New("device on fire")
	start(t, p)
	waitCounts(t, m, res, 2, 2)
	err := m.Admit(context.Background(), testPod("u", ctr{name: "c", req: map[string]int64{res: 1}}))
	var ae *AdmissionError
	if !errors.As(err, &ae) || ae.Reason != ReasonUnexpectedAdmissionError || !strings.Contains(ae.Message, "device on fire") {
		t.Fatalf("Admit with a failing plugin = %v", err)
	}
	if len(m.AllocatedPods()) != 0 {
		t.Fatal("a pod whose Allocate failed holds devices")
	}
}

func TestNoDeviceHandedOutTwiceAndRelease(t *testing.T) {
	dir := shortDir(t)
	m := startManager(t, dir, time.Hour)
	p := newPlugin(t, dir, res, "p.sock", nil, "d1", "d2", "d3")
	start(t, p)
	waitCounts(t, m, res, 3, 3)
	ctx := context.Background()

	a := testPod("a", ctr{name: "c1", req: map[string]int64{res: 1}}, ctr{name: "c2", req: map[string]int64{res: 1}})
	if err := m.Admit(ctx, a); err != nil {
		t.Fatal(err)
	}
	b := testPod("b", ctr{name: "c", req: map[string]int64{res: 2}})
	if err := m.Admit(ctx, b); !IsAdmissionError(err) {
		t.Fatalf("second pod admitted with only 1 free device: %v", err)
	}
	// Admit is idempotent: no new Allocate for a pod that holds its devices.
	_, before, _ := p.Calls()
	if err := m.Admit(ctx, a); err != nil {
		t.Fatal(err)
	}
	if _, after, _ := p.Calls(); len(after) != len(before) {
		t.Fatalf("re-Admit called Allocate again")
	}
	held := devIDs(m, a)
	if len(held) != 2 || held[0] == held[1] {
		t.Fatalf("containers of pod a share or lack devices: %v", held)
	}
	c := testPod("c", ctr{name: "c", req: map[string]int64{res: 1}})
	if err := m.Admit(ctx, c); err != nil {
		t.Fatal(err)
	}
	if got := devIDs(m, c); slices.Contains(held, got[0]) {
		t.Fatalf("device %s handed out twice (pod a holds %v)", got[0], held)
	}

	m.Release(a.UID)
	if err := m.Admit(ctx, b); err != nil {
		t.Fatalf("Admit after Release: %v", err)
	}
	if got := devIDs(m, b); !reflect.DeepEqual(got, held) {
		t.Fatalf("pod b got %v, want the released %v", got, held)
	}
	if freed := m.ReleaseInactive([]types.UID{"b"}); !reflect.DeepEqual(freed, []types.UID{"c"}) {
		t.Fatalf("ReleaseInactive freed %v, want [c]", freed)
	}
}

func TestInitContainerDevicesReused(t *testing.T) {
	dir := shortDir(t)
	m := startManager(t, dir, time.Hour)
	p := newPlugin(t, dir, res, "p.sock", nil, "d1", "d2")
	start(t, p)
	waitCounts(t, m, res, 2, 2)
	pod := testPod("u", ctr{name: "init", init: true, req: map[string]int64{res: 2}}, ctr{name: "app", req: map[string]int64{res: 2}})
	if err := m.Admit(context.Background(), pod); err != nil {
		t.Fatalf("Admit with init container reuse: %v", err)
	}
	i := m.ContainerDevices(pod.UID, "init")[res]
	a := m.ContainerDevices(pod.UID, "app")[res]
	if !reflect.DeepEqual(i, a) || len(a) != 2 {
		t.Fatalf("init devices %v, app devices %v: want the same two", i, a)
	}
	// Without reuse (two app containers) the same pod could not fit.
	pod2 := testPod("u2", ctr{name: "a", req: map[string]int64{res: 1}}, ctr{name: "b", req: map[string]int64{res: 1}})
	m.Release(pod.UID)
	if err := m.Admit(context.Background(), pod2); err != nil {
		t.Fatal(err)
	}
}

func TestCheckpointRestoreAndReregistration(t *testing.T) {
	dir := shortDir(t)
	m, err := New(Options{Dir: dir, StopGracePeriod: time.Hour, Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(); err != nil {
		t.Fatal(err)
	}
	p := newPlugin(t, dir, res, "p.sock", &pluginapi.DevicePluginOptions{PreStartRequired: true}, "d1", "d2", "d3")
	start(t, p)
	if err := p.WatchKubeletRestart(); err != nil {
		t.Fatal(err)
	}
	waitCounts(t, m, res, 3, 3)
	pod := testPod("u1", ctr{name: "app", req: map[string]int64{res: 2}})
	ctx := context.Background()
	if err := m.Admit(ctx, pod); err != nil {
		t.Fatal(err)
	}
	before, err := m.PrepareContainer(ctx, pod, "app")
	if err != nil {
		t.Fatal(err)
	}
	m.Stop()

	// A new manager on the same directory: allocations come back from the
	// checkpoint, the plugin notices kubelet.sock and registers again.
	m2 := startManager(t, dir, time.Hour)
	if got := m2.AllocatedPods(); !reflect.DeepEqual(got, []types.UID{"u1"}) {
		t.Fatalf("restored pods = %v", got)
	}
	waitCounts(t, m2, res, 3, 3)
	_, allocsBefore, _ := p.Calls()
	if err := m2.Admit(ctx, pod); err != nil {
		t.Fatalf("re-Admit after restart: %v", err)
	}
	after, err := m2.PrepareContainer(ctx, pod, "app")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(before, after) {
		t.Fatalf("allocation changed across restart:\n%+v\n%+v", before, after)
	}
	if _, allocsAfter, _ := p.Calls(); len(allocsAfter) != len(allocsBefore) {
		t.Fatalf("restored pod was allocated again")
	}
	// The restored devices are not free.
	other := testPod("u2", ctr{name: "app", req: map[string]int64{res: 2}})
	if err := m2.Admit(ctx, other); !IsAdmissionError(err) {
		t.Fatalf("devices held before the restart were handed out again: %v", err)
	}
}

func TestRestoredAllocationWithoutPlugin(t *testing.T) {
	dir := shortDir(t)
	m := startManager(t, dir, time.Hour)
	p := newPlugin(t, dir, res, "p.sock", nil, "d1")
	start(t, p)
	waitCounts(t, m, res, 1, 1)
	pod := testPod("u1", ctr{name: "app", req: map[string]int64{res: 1}})
	if err := m.Admit(context.Background(), pod); err != nil {
		t.Fatal(err)
	}
	m.Stop()
	p.Stop()

	m2 := startManager(t, dir, time.Hour)
	// Known resource, plugin not back: present with 0 until the grace ends.
	if c, a, ok := counts(m2, res); !ok || c != 0 || a != 0 {
		t.Fatalf("restored resource: present=%v capacity=%d allocatable=%d, want present 0/0", ok, c, a)
	}
	// The admitted pod keeps its devices while the plugin is away.
	if err := m2.Admit(context.Background(), pod); err != nil {
		t.Fatalf("re-Admit of a restored pod without its plugin: %v", err)
	}
	alloc, err := m2.PrepareContainer(context.Background(), pod, "app")
	if err != nil || alloc == nil || !reflect.DeepEqual(alloc.DeviceIDs[res], []string{"d1"}) {
		t.Fatalf("PrepareContainer = %+v, %v", alloc, err)
	}
}

func TestCorruptCheckpointIgnored(t *testing.T) {
	dir := shortDir(t)
	if err := os.WriteFile(filepath.Join(dir, CheckpointFile), []byte(`{"Data":{"PodDeviceEntries":[]},"Checksum":1}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := readCheckpoint(filepath.Join(dir, CheckpointFile)); err == nil || !strings.Contains(err.Error(), "checksum mismatch") {
		t.Fatalf("readCheckpoint = %v, want checksum mismatch", err)
	}
	m := startManager(t, dir, time.Hour)
	if len(m.AllocatedPods()) != 0 {
		t.Fatal("pods restored from a corrupt checkpoint")
	}
	// The corrupt file is kept aside for inspection, not overwritten.
	aside, _ := filepath.Glob(filepath.Join(dir, CheckpointFile+".corrupt-*"))
	if len(aside) != 1 {
		t.Fatalf("corrupt checkpoint not set aside: %v", aside)
	}
	if b, _ := os.ReadFile(aside[0]); !strings.Contains(string(b), `"Checksum":1`) {
		t.Errorf("set-aside file holds %q", b)
	}
}

// A checkpoint edited by hand with its checksum recomputed may hold names no
// plugin could register: those entries are dropped, the valid ones kept.
func TestCheckpointInvalidResourceNamesSkipped(t *testing.T) {
	dir := shortDir(t)
	resp, _ := proto.Marshal(&pluginapi.ContainerAllocateResponse{})
	d := checkpointData{
		PodDeviceEntries: []checkpointEntry{
			{PodUID: "u1", ContainerName: "app", ResourceName: res, DeviceIDs: []string{"d1"}, AllocResp: resp},
			{PodUID: "u2", ContainerName: "app", ResourceName: "not a resource/../x", DeviceIDs: []string{"d1"}, AllocResp: resp},
		},
		RegisteredDevices: map[string][]string{res: {"d1"}, "cpu": {"x"}},
	}
	if err := writeCheckpoint(filepath.Join(dir, CheckpointFile), d); err != nil {
		t.Fatal(err)
	}
	m := startManager(t, dir, time.Hour)
	if got := m.AllocatedPods(); len(got) != 1 || got[0] != "u1" {
		t.Fatalf("restored pods %v, want only u1", got)
	}
	if _, _, ok := counts(m, "cpu"); ok {
		t.Fatal("a checkpointed resource named cpu was restored")
	}
	if _, _, ok := counts(m, res); !ok {
		t.Fatalf("the valid resource %s was not restored", res)
	}
}

func TestPluginDeathDropsAllocatable(t *testing.T) {
	dir := shortDir(t)
	m := startManager(t, dir, time.Hour)
	p := newPlugin(t, dir, res, "p.sock", nil, "d1", "d2", "d3")
	start(t, p)
	waitCounts(t, m, res, 3, 3)
	p.Stop()
	// Allocatable drops at once; capacity is kept during the grace period.
	waitCounts(t, m, res, 3, 0)
	if err := m.Admit(context.Background(), testPod("u", ctr{name: "c", req: map[string]int64{res: 1}})); !IsAdmissionError(err) {
		t.Fatalf("Admit with a dead plugin: %v", err)
	}
	// It comes back.
	start(t, p)
	waitCounts(t, m, res, 3, 3)
}

func TestPluginDeathGracePeriodRemovesResource(t *testing.T) {
	dir := shortDir(t)
	m := startManager(t, dir, 200*time.Millisecond)
	p := newPlugin(t, dir, res, "p.sock", nil, "d1", "d2")
	start(t, p)
	waitCounts(t, m, res, 2, 2)
	p.Stop()
	select {
	case <-m.Updates():
	case <-time.After(60 * time.Second):
	}
	eventually(t, "resource removed after the grace period", func() (bool, string) {
		c, a, deleted := m.Resources()
		_, present := c[res]
		return !present && slices.Contains(deleted, res), fmt.Sprintf("capacity=%v allocatable=%v deleted=%v", c, a, deleted)
	})
	if c, a := m.ExtendedResources(); c.Name(res, resource.DecimalSI).Value() != 0 || a.Name(res, resource.DecimalSI).Value() != 0 {
		t.Fatalf("ExtendedResources after deletion: %v %v", c, a)
	} else if _, ok := c[res]; !ok {
		t.Fatalf("ExtendedResources does not zero the deleted resource: %v", c)
	}
	// Reported as deleted until it registers again.
	if _, _, deleted := m.Resources(); !slices.Contains(deleted, res) {
		t.Fatalf("deleted no longer reported: %v", deleted)
	}
	start(t, p)
	waitCounts(t, m, res, 2, 2)
	if _, _, deleted := m.Resources(); slices.Contains(deleted, res) {
		t.Fatalf("re-registered resource still reported deleted")
	}
}

func TestReregistrationReplacesEndpoint(t *testing.T) {
	dir := shortDir(t)
	m := startManager(t, dir, time.Hour)
	old := newPlugin(t, dir, res, "old.sock", nil, "d1", "d2")
	start(t, old)
	waitCounts(t, m, res, 2, 2)
	nu := newPlugin(t, dir, res, "new.sock", nil, "n1", "n2", "n3")
	start(t, nu)
	waitCounts(t, m, res, 3, 3)
	// The old plugin going away no longer matters.
	old.Stop()
	old.SetDevices()
	pod := testPod("u", ctr{name: "c", req: map[string]int64{res: 3}})
	if err := m.Admit(context.Background(), pod); err != nil {
		t.Fatal(err)
	}
	if c, a, _ := counts(m, res); c != 3 || a != 3 {
		t.Fatalf("after old plugin stopped: capacity %d allocatable %d", c, a)
	}
	if _, allocs, _ := nu.Calls(); len(allocs) != 1 {
		t.Fatalf("new plugin Allocate calls = %d", len(allocs))
	}
}

func devIDs(m *Manager, pod *corev1.Pod) []string {
	var out []string
	for _, c := range append(pod.Spec.InitContainers, pod.Spec.Containers...) {
		for _, d := range m.ContainerDevices(pod.UID, c.Name)[res] {
			out = append(out, d.ID)
		}
	}
	return out
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}
