package shim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	containersapi "github.com/containerd/containerd/api/services/containers/v1"
	contentapi "github.com/containerd/containerd/api/services/content/v1"
	imagesapi "github.com/containerd/containerd/api/services/images/v1"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/errdefs"
	"github.com/containerd/errdefs/pkg/errgrpc"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/wasilet/wasilet/oci"
)

// imageStore reads a container's image from containerd's own stores over
// its gRPC API (the address containerd passes every shim): the container
// record names the image, the image names its top descriptor, and the
// content store holds the manifest and the Wasm layer. It is how a Wasm
// artifact runs: containerd fetches a layer it does not know how to unpack
// into its content store and gives the container an empty rootfs.
type imageStore struct {
	address string

	once sync.Once
	conn *grpc.ClientConn
	err  error
}

func (s *imageStore) dial() (*grpc.ClientConn, error) {
	s.once.Do(func() {
		if s.address == "" {
			s.err = fmt.Errorf("containerd did not pass its gRPC address to the shim: %w", errdefs.ErrUnavailable)
			return
		}
		target := s.address
		if !strings.Contains(target, "://") {
			target = "unix://" + target
		}
		s.conn, s.err = grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()))
	})
	return s.conn, s.err
}

func (s *imageStore) close() error {
	if s.conn != nil {
		return s.conn.Close()
	}
	return nil
}

// wasmOf returns the Wasm binary of container id's image when that image
// is a Wasm artifact in one of the layouts package oci accepts, with the
// layer's digest. An image that is not such an artifact fails with
// *oci.UnsupportedError.
func (s *imageStore) wasmOf(ctx context.Context, id string) ([]byte, string, error) {
	ns, err := namespaces.NamespaceRequired(ctx)
	if err != nil {
		return nil, "", err
	}
	conn, err := s.dial()
	if err != nil {
		return nil, "", err
	}
	ctx, cancel := context.WithTimeout(namespaces.WithNamespace(context.WithoutCancel(ctx), ns), time.Minute)
	defer cancel()
	c, err := containersapi.NewContainersClient(conn).Get(ctx, &containersapi.GetContainerRequest{ID: id})
	if err != nil {
		return nil, "", fmt.Errorf("container %s: %w", id, errgrpc.ToNative(err))
	}
	name := c.GetContainer().GetImage()
	if name == "" {
		return nil, "", fmt.Errorf("container %s names no image: %w", id, errdefs.ErrNotFound)
	}
	im, err := imagesapi.NewImagesClient(conn).Get(ctx, &imagesapi.GetImageRequest{Name: name})
	if err != nil {
		return nil, "", fmt.Errorf("image %s: %w", name, errgrpc.ToNative(err))
	}
	t := im.GetImage().GetTarget()
	target := ocispec.Descriptor{MediaType: t.GetMediaType(), Digest: digest.Digest(t.GetDigest()), Size: t.GetSize()}
	read := func(ctx context.Context, d ocispec.Descriptor) ([]byte, error) {
		return readContent(ctx, contentapi.NewContentClient(conn), d)
	}
	layer, _, err := oci.LocateWasm(ctx, name, target, read, nil)
	if err != nil {
		return nil, "", err
	}
	if layer.Size > maxWasmSize {
		return nil, "", fmt.Errorf("the Wasm layer of %s is %d bytes, more than %d: %w", name, layer.Size, maxWasmSize, errdefs.ErrInvalidArgument)
	}
	b, err := read(ctx, layer)
	if err != nil {
		return nil, "", fmt.Errorf("the Wasm layer of %s: %w", name, err)
	}
	return b, layer.Digest.String(), nil
}

// readContent reads a whole blob from the content store and checks it
// against its descriptor.
func readContent(ctx context.Context, cc contentapi.ContentClient, d ocispec.Descriptor) ([]byte, error) {
	if err := d.Digest.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w: %w", d.Digest, err, errdefs.ErrInvalidArgument)
	}
	stream, err := cc.Read(ctx, &contentapi.ReadContentRequest{Digest: d.Digest.String()})
	if err != nil {
		return nil, errgrpc.ToNative(err)
	}
	b := make([]byte, 0, max(d.Size, 0))
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, errgrpc.ToNative(err)
		}
		if int64(len(b)+len(resp.Data)) > d.Size {
			return nil, fmt.Errorf("%s: more than its %d bytes: %w", d.Digest, d.Size, errdefs.ErrDataLoss)
		}
		b = append(b, resp.Data...)
	}
	if int64(len(b)) != d.Size || d.Digest.Algorithm().FromBytes(b) != d.Digest {
		return nil, fmt.Errorf("%s: content does not match its descriptor: %w", d.Digest, errdefs.ErrDataLoss)
	}
	return b, nil
}
