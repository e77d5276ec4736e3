package nodesource

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/wasilet/wasilet/internal/cri"
	"github.com/wasilet/wasilet/internal/pods"
	"github.com/wasilet/wasilet/oci"
)

type snap []pods.PodInfo

func (s snap) Snapshot() []pods.PodInfo { return s }

type lister struct {
	imgs []oci.Image
	err  error
}

func (l lister) List(context.Context) ([]oci.Image, error) { return l.imgs, l.err }

func TestPods(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	got := Pods(snap{{
		UID: "u", Name: "web", Namespace: "ns", Ready: true, CreatedAt: t0, IP: "127.0.0.1",
		Containers: []pods.ContainerInfo{
			{ID: "c1", Name: "init", Init: true, Image: "r/x:1", ImageID: "r/x@sha256:ab", State: "Terminated", Reason: "Completed", CreatedAt: t0, FinishedAt: t0, LogPath: "/l/0.log"},
			{ID: "c2", Name: "app", Image: "r/x:1", ImageID: "r/x@sha256:ab", State: "Running", RestartCount: 2, StartedAt: t0, CreatedAt: t0},
			{Name: "never", State: "Waiting"},
		},
	}}).Snapshot()
	want := []cri.Pod{{
		UID: "u", Name: "web", Namespace: "ns", Ready: true, CreatedAt: t0, IP: "127.0.0.1",
		Containers: []cri.Container{
			{ID: "c1", Name: "init", Image: "r/x:1", ImageRef: "r/x@sha256:ab", ImageID: "sha256:ab", State: cri.ContainerExited, Reason: "Completed", CreatedAt: t0, FinishedAt: t0, LogPath: "/l/0.log"},
			{ID: "c2", Name: "app", Image: "r/x:1", ImageRef: "r/x@sha256:ab", ImageID: "sha256:ab", State: cri.ContainerRunning, RestartCount: 2, StartedAt: t0, CreatedAt: t0},
		},
	}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Pods =\n%+v\nwant\n%+v", got, want)
	}
}

func TestImages(t *testing.T) {
	got := Images(lister{imgs: []oci.Image{{Refs: []string{"h/r:v1", "h/r@sha256:ab"}, Digest: "sha256:ab", Size: 42}}}, nil).Images()
	want := []cri.Image{{ID: "sha256:ab", RepoTags: []string{"h/r:v1"}, RepoDigests: []string{"h/r@sha256:ab"}, Size: 42}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Images = %+v", got)
	}
	if got := Images(lister{err: errors.New("boom")}, nil).Images(); len(got) != 0 {
		t.Fatalf("Images on error = %+v", got)
	}
}

var (
	_ Snapshotter = (*pods.Provider)(nil)
	_ Lister      = (*oci.Store)(nil)
)
