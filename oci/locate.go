package oci

import (
	"context"
	"fmt"

	"github.com/containerd/errdefs"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// maxDocumentSize bounds an index or manifest read by [LocateWasm].
const maxDocumentSize = 4 << 20

// ReadBlob reads the blob a descriptor names from some content store (a
// containerd content store, an image layout, a registry).
type ReadBlob func(ctx context.Context, d ocispec.Descriptor) ([]byte, error)

// LocateWasm finds the Wasm layer of an artifact already in a content store,
// starting from its top descriptor (an index or a manifest): an index picks
// its manifest by platform (platforms as in PullOptions.Platforms, nil for
// [DefaultPlatforms]), and the manifest must be in one of the accepted
// layouts (see the package doc). It returns the layer's descriptor and the
// layout's name; an image in no accepted layout fails with
// *[UnsupportedError] (errdefs.ErrNotImplemented). name only labels errors.
func LocateWasm(ctx context.Context, name string, target ocispec.Descriptor, read ReadBlob, platforms []string) (layer ocispec.Descriptor, layout Format, err error) {
	top := target
	for range 2 { // an index, then its manifest
		if top.Size > maxDocumentSize {
			return layer, "", fmt.Errorf("%s: %s %s is %d bytes, more than %d: %w", name, top.MediaType, top.Digest, top.Size, maxDocumentSize, errdefs.ErrInvalidArgument)
		}
		b, err := read(ctx, top)
		if err != nil {
			return layer, "", fmt.Errorf("%s: read %s: %w", name, top.Digest, err)
		}
		mt := top.MediaType
		if mt == "" {
			mt = sniffMediaType(b)
		}
		switch {
		case isIndex(mt):
			if top, err = selectPlatform(name, mt, b, platforms, nil); err != nil {
				return layer, "", err
			}
		case isManifest(mt):
			m, f, err := classifyManifest(name, mt, b)
			if err != nil {
				return layer, "", err
			}
			return m.Layers[0], f.name, nil
		default:
			return layer, "", &UnsupportedError{Ref: name, ManifestMediaType: mt, Reason: "neither an image manifest nor an index"}
		}
	}
	return layer, "", &UnsupportedError{Ref: name, ManifestMediaType: top.MediaType, Reason: "an index inside an index"}
}
