package cri

import (
	"context"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func (s *Server) images() []Image {
	if s.opts.Images == nil {
		return nil
	}
	imgs := s.opts.Images.Images()
	slices.SortFunc(imgs, func(a, b Image) int { return strings.Compare(a.ID, b.ID) })
	return imgs
}

func toImage(i *Image) *runtimeapi.Image {
	return &runtimeapi.Image{
		Id:          i.ID,
		RepoTags:    slices.Clone(i.RepoTags),
		RepoDigests: slices.Clone(i.RepoDigests),
		Size:        i.Size,
		Pinned:      i.Pinned,
		Spec:        &runtimeapi.ImageSpec{Image: i.ID},
	}
}

// matchImage reports whether ref names img: its id (with or without the
// "sha256:" prefix, or a unique-enough prefix of it), a tag or a digest
// reference. A reference without a tag matches its ":latest" tag.
func matchImage(img *Image, ref string) bool {
	if ref == "" {
		return false
	}
	if img.ID == ref || strings.TrimPrefix(img.ID, "sha256:") == ref {
		return true
	}
	if len(ref) >= 6 && (strings.HasPrefix(img.ID, ref) || strings.HasPrefix(strings.TrimPrefix(img.ID, "sha256:"), ref)) {
		return true
	}
	for _, t := range img.RepoTags {
		if t == ref || t == ref+":latest" {
			return true
		}
	}
	return slices.Contains(img.RepoDigests, ref)
}

func (s *Server) listImages(f *runtimeapi.ImageFilter) []*runtimeapi.Image {
	out := []*runtimeapi.Image{}
	imgs := s.images()
	for i := range imgs {
		if ref := f.GetImage().GetImage(); ref != "" && !matchImage(&imgs[i], ref) {
			continue
		}
		out = append(out, toImage(&imgs[i]))
	}
	return out
}

// ListImages lists the pulled images.
func (s *Server) ListImages(_ context.Context, r *runtimeapi.ListImagesRequest) (*runtimeapi.ListImagesResponse, error) {
	return &runtimeapi.ListImagesResponse{Images: s.listImages(r.GetFilter())}, nil
}

// StreamImages is ListImages as a stream.
func (s *Server) StreamImages(r *runtimeapi.StreamImagesRequest, ss grpc.ServerStreamingServer[runtimeapi.StreamImagesResponse]) error {
	return sendChunks(s.listImages(r.GetFilter()), func(c []*runtimeapi.Image) error {
		return ss.Send(&runtimeapi.StreamImagesResponse{Images: c})
	})
}

// ImageStatus reports one image; an image that is not present is answered
// with an empty response, as CRI requires.
func (s *Server) ImageStatus(_ context.Context, r *runtimeapi.ImageStatusRequest) (*runtimeapi.ImageStatusResponse, error) {
	imgs := s.images()
	for i := range imgs {
		if matchImage(&imgs[i], r.GetImage().GetImage()) {
			resp := &runtimeapi.ImageStatusResponse{Image: toImage(&imgs[i])}
			if r.Verbose {
				resp.Info = map[string]string{"info": mustJSON(map[string]any{
					"id": imgs[i].ID, "repoTags": imgs[i].RepoTags, "repoDigests": imgs[i].RepoDigests,
					"size": imgs[i].Size, "mediaType": "application/wasm",
				})}
			}
			return resp, nil
		}
	}
	return &runtimeapi.ImageStatusResponse{}, nil
}

// ImageFsInfo reports the space used by the image store directory.
func (s *Server) ImageFsInfo(context.Context, *runtimeapi.ImageFsInfoRequest) (*runtimeapi.ImageFsInfoResponse, error) {
	resp := &runtimeapi.ImageFsInfoResponse{}
	if s.opts.ImageFsDir == "" {
		return resp, nil
	}
	var used, inodes uint64
	filepath.WalkDir(s.opts.ImageFsDir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		inodes++
		if info, err := d.Info(); err == nil && info.Mode().IsRegular() {
			used += uint64(info.Size())
		}
		return nil
	})
	resp.ImageFilesystems = []*runtimeapi.FilesystemUsage{{
		Timestamp:  time.Now().UnixNano(),
		FsId:       &runtimeapi.FilesystemIdentifier{Mountpoint: s.opts.ImageFsDir},
		UsedBytes:  &runtimeapi.UInt64Value{Value: used},
		InodesUsed: &runtimeapi.UInt64Value{Value: inodes},
	}}
	return resp, nil
}
