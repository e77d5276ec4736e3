package podresources

import (
	"context"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	podresourcesapi "k8s.io/kubelet/pkg/apis/podresources/v1"

	"github.com/wasilet/wasilet/internal/devicemanager"
	"github.com/wasilet/wasilet/internal/grpcsock/grpcsocktest"
)

type fakePods struct {
	mu   sync.Mutex
	pods []*corev1.Pod
}

func (f *fakePods) GetPods(context.Context) ([]*corev1.Pod, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.pods, nil
}

type fakeDevices struct {
	held        map[types.UID]map[string]map[string][]devicemanager.Device
	allocatable map[string][]devicemanager.Device
}

func (f *fakeDevices) ContainerDevices(uid types.UID, c string) map[string][]devicemanager.Device {
	return f.held[uid][c]
}
func (f *fakeDevices) AllocatableDevices() map[string][]devicemanager.Device { return f.allocatable }

func pod(uid, name string, phase corev1.PodPhase, init []corev1.Container, cs ...string) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{UID: types.UID(uid), Name: name, Namespace: "ns"}}
	p.Spec.InitContainers = init
	for _, c := range cs {
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: c})
	}
	p.Status.Phase = phase
	return p
}

// shortDir is a fresh directory under /tmp (short enough for a unix socket
// path), removed when the test ends.
func shortDir(t *testing.T, prefix string) string {
	t.Helper()
	dir, err := os.MkdirTemp("/tmp", prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// serve starts a Server with opts, stopped when the test ends, and returns it
// and a client connected to its socket.
func serve(t *testing.T, opts Options) (*Server, podresourcesapi.PodResourcesListerClient) {
	t.Helper()
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	conn, err := grpc.NewClient("unix://"+s.SocketPath(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return s, podresourcesapi.NewPodResourcesListerClient(conn)
}

func TestPodResourcesOverSocket(t *testing.T) {
	dir := shortDir(t, "pr")
	always := corev1.ContainerRestartPolicyAlways
	pods := &fakePods{pods: []*corev1.Pod{
		pod("u1", "web", corev1.PodRunning, []corev1.Container{{Name: "setup"}, {Name: "sidecar", RestartPolicy: &always}}, "app", "idle"),
		pod("u2", "done", corev1.PodSucceeded, nil, "app"),
	}}
	devs := &fakeDevices{
		held: map[types.UID]map[string]map[string][]devicemanager.Device{
			"u1": {
				"app":     {"example.com/dev": {{ID: "d1", Healthy: true}, {ID: "d3", Healthy: true, NUMANodes: []int64{1}}}},
				"sidecar": {"example.com/other": {{ID: "o1", Healthy: true}}},
			},
		},
		allocatable: map[string][]devicemanager.Device{
			"example.com/dev":   {{ID: "d1", Healthy: true}, {ID: "d2", Healthy: true}, {ID: "d3", Healthy: true, NUMANodes: []int64{1}}},
			"example.com/other": {{ID: "o1", Healthy: true}},
		},
	}
	// A stale socket from a previous run is replaced.
	os.WriteFile(dir+"/"+Socket, nil, 0o600)
	_, c := serve(t, Options{Dir: dir, Pods: pods, Devices: devs, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	wantWeb := &podresourcesapi.PodResources{Name: "web", Namespace: "ns", Containers: []*podresourcesapi.ContainerResources{
		{Name: "sidecar", Devices: []*podresourcesapi.ContainerDevices{{ResourceName: "example.com/other", DeviceIds: []string{"o1"}}}},
		{Name: "app", Devices: []*podresourcesapi.ContainerDevices{
			{ResourceName: "example.com/dev", DeviceIds: []string{"d1"}},
			{ResourceName: "example.com/dev", DeviceIds: []string{"d3"}, Topology: &podresourcesapi.TopologyInfo{Nodes: []*podresourcesapi.NUMANode{{ID: 1}}}},
		}},
		{Name: "idle"},
	}}

	list, err := c.List(ctx, &podresourcesapi.ListPodResourcesRequest{})
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	wantList := &podresourcesapi.ListPodResourcesResponse{PodResources: []*podresourcesapi.PodResources{wantWeb}}
	if !proto.Equal(list, wantList) {
		t.Fatalf("List =\n%s\nwant\n%s", prototext.Format(list), prototext.Format(wantList))
	}

	get, err := c.Get(ctx, &podresourcesapi.GetPodResourcesRequest{PodName: "web", PodNamespace: "ns"})
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if !proto.Equal(get.PodResources, wantWeb) {
		t.Fatalf("Get =\n%s", prototext.Format(get))
	}
	_, err = c.Get(ctx, &podresourcesapi.GetPodResourcesRequest{PodName: "nope", PodNamespace: "ns"})
	if status.Code(err) != codes.NotFound || status.Convert(err).Message() != "pod nope in namespace ns not found" {
		t.Fatalf("Get of a missing pod = %v, want NotFound", err)
	}

	alloc, err := c.GetAllocatableResources(ctx, &podresourcesapi.AllocatableResourcesRequest{})
	if err != nil {
		t.Fatalf("GetAllocatableResources: %v", err)
	}
	var ids []string
	for _, d := range alloc.Devices {
		ids = append(ids, d.ResourceName+"="+d.DeviceIds[0])
	}
	want := []string{"example.com/dev=d1", "example.com/dev=d2", "example.com/dev=d3", "example.com/other=o1"}
	if len(ids) != len(want) {
		t.Fatalf("allocatable = %v, want %v", ids, want)
	}
	for i := range want {
		if ids[i] != want[i] {
			t.Fatalf("allocatable = %v, want %v", ids, want)
		}
	}
}

// TestStartStop checks the start/stop contract (grpcsocktest) and that New
// refuses a directory too long for a unix socket path.
func TestStartStop(t *testing.T) {
	opts := Options{Dir: shortDir(t, "pr"), Pods: &fakePods{}, Devices: &fakeDevices{}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	s, _ := serve(t, opts)
	grpcsocktest.CheckLifecycle(t, s, "podresources")
	opts.Dir = "/tmp/" + strings.Repeat("x", 100)
	_, err := New(opts)
	if want := "podresources: socket path " + opts.Dir + "/kubelet.sock is longer than 107 bytes"; err == nil || err.Error() != want {
		t.Fatalf("New with a long Dir = %v, want %q", err, want)
	}
}
