package podresources

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	podresourcesapi "k8s.io/kubelet/pkg/apis/podresources/v1"

	"github.com/wasilet/wasilet/internal/devicemanager"
	"github.com/wasilet/wasilet/internal/devicemanager/plugintest"
)

// TestWithDeviceManager serves PodResources over a real device manager fed
// by a real device plugin.
func TestWithDeviceManager(t *testing.T) {
	dir := shortDir(t, "prdm")
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	dm, err := devicemanager.New(devicemanager.Options{Dir: filepath.Join(dir, "device-plugins"), Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	if err := dm.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(dm.Stop)
	plugin := plugintest.New(dm.Dir(), "example.com/dev", "p.sock", nil, "d1", "d2", "d3")
	t.Cleanup(plugin.Stop)
	if err := plugin.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(90 * time.Second)
	for len(dm.AllocatableDevices()["example.com/dev"]) != 3 {
		if time.Now().After(deadline) {
			t.Fatal("plugin devices never became allocatable")
		}
		time.Sleep(50 * time.Millisecond)
	}

	p := pod("u1", "web", corev1.PodRunning, nil, "app")
	p.Spec.Containers[0].Resources.Limits = corev1.ResourceList{"example.com/dev": *resource.NewQuantity(2, resource.DecimalSI)}
	if err := dm.Admit(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	_, c := serve(t, Options{Dir: filepath.Join(dir, "pod-resources"), Pods: &fakePods{pods: []*corev1.Pod{p}}, Devices: dm, Logger: log})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	list, err := c.List(ctx, &podresourcesapi.ListPodResourcesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.PodResources) != 1 || len(list.PodResources[0].Containers) != 1 {
		t.Fatalf("List = %v", list)
	}
	got := list.PodResources[0].Containers[0].Devices
	if len(got) != 2 || got[0].DeviceIds[0] != "d1" || got[1].DeviceIds[0] != "d2" || got[0].ResourceName != "example.com/dev" {
		t.Fatalf("container devices = %v, want d1 and d2", got)
	}
	alloc, err := c.GetAllocatableResources(ctx, &podresourcesapi.AllocatableResourcesRequest{})
	if err != nil || len(alloc.Devices) != 3 {
		t.Fatalf("GetAllocatableResources = %v, %v", alloc, err)
	}
	dm.Release(p.UID)
	list, err = c.List(ctx, &podresourcesapi.ListPodResourcesRequest{})
	if err != nil || len(list.PodResources[0].Containers[0].Devices) != 0 {
		t.Fatalf("after Release: %v, %v", list, err)
	}
}
