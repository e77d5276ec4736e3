package nodesource

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"github.com/wasilet/wasilet/internal/cri"
	"github.com/wasilet/wasilet/internal/pods"
	"github.com/wasilet/wasilet/oci"
)

// Snapshotter is what *pods.Provider offers the CRI endpoint.
type Snapshotter interface {
	Snapshot() []pods.PodInfo
}

// Pods adapts a pod lifecycle to cri.PodSource.
func Pods(s Snapshotter) cri.PodSource { return podSource{s} }

type podSource struct{ s Snapshotter }

func (p podSource) Snapshot() []cri.Pod {
	infos := p.s.Snapshot()
	out := make([]cri.Pod, 0, len(infos))
	for _, pi := range infos {
		out = append(out, Pod(pi))
	}
	return out
}

// Pod converts one pods.PodInfo. Containers that never started (no id) are
// not CRI containers yet and are left out.
func Pod(pi pods.PodInfo) cri.Pod {
	p := cri.Pod{
		UID: pi.UID, Name: pi.Name, Namespace: pi.Namespace,
		Labels: pi.Labels, Annotations: pi.Annotations,
		CreatedAt: pi.CreatedAt, Ready: pi.Ready, IP: pi.IP,
	}
	for _, ci := range pi.Containers {
		if ci.ID == "" {
			continue
		}
		c := cri.Container{
			ID: ci.ID, Name: ci.Name,
			Image: ci.Image, ImageRef: ci.ImageID,
			Reason: ci.Reason, Message: ci.Message,
			CreatedAt: ci.CreatedAt, StartedAt: ci.StartedAt, FinishedAt: ci.FinishedAt,
			ExitCode: ci.ExitCode, LogPath: ci.LogPath, Annotations: ci.Annotations,
		}
		if ci.RestartCount > 0 {
			c.RestartCount = uint32(ci.RestartCount)
		}
		if _, d, ok := strings.Cut(ci.ImageID, "@"); ok {
			c.ImageID = d
		}
		switch ci.State {
		case "Waiting":
			c.State = cri.ContainerCreated
		case "Running":
			c.State = cri.ContainerRunning
		case "Terminated":
			c.State = cri.ContainerExited
		default:
			c.State = cri.ContainerUnknown
		}
		p.Containers = append(p.Containers, c)
	}
	return p
}

// Lister is what *oci.Store offers the CRI endpoint.
type Lister interface {
	List(ctx context.Context) ([]oci.Image, error)
}

// Images adapts the OCI store to cri.ImageSource; errors are logged and
// answered with no images.
func Images(l Lister, log *slog.Logger) cri.ImageSource {
	if log == nil {
		log = slog.Default()
	}
	return imageSource{l: l, log: log}
}

type imageSource struct {
	l   Lister
	log *slog.Logger
}

func (s imageSource) Images() []cri.Image {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	imgs, err := s.l.List(ctx)
	if err != nil {
		s.log.Warn("list images for CRI", "err", err)
		return nil
	}
	out := make([]cri.Image, 0, len(imgs))
	for _, i := range imgs {
		out = append(out, Image(i))
	}
	return out
}

// Image converts one stored artifact: references with a digest are repo
// digests, the others tags.
func Image(i oci.Image) cri.Image {
	c := cri.Image{ID: string(i.Digest)}
	if i.Size > 0 {
		c.Size = uint64(i.Size)
	}
	for _, r := range i.Refs {
		if strings.Contains(r, "@") {
			c.RepoDigests = append(c.RepoDigests, r)
		} else {
			c.RepoTags = append(c.RepoTags, r)
		}
	}
	return c
}
