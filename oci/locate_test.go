package oci_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/wasilet/wasilet/oci"
)

// blobs is an in-memory content store for LocateWasm.
type blobs map[digest.Digest][]byte

func (b blobs) add(t *testing.T, mediaType string, v any) ocispec.Descriptor {
	t.Helper()
	p, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	d := digest.FromBytes(p)
	b[d] = p
	return ocispec.Descriptor{MediaType: mediaType, Digest: d, Size: int64(len(p))}
}

func (b blobs) read(_ context.Context, d ocispec.Descriptor) ([]byte, error) {
	p, ok := b[d.Digest]
	if !ok {
		return nil, errdefs.ErrNotFound
	}
	return p, nil
}

func TestLocateWasm(t *testing.T) {
	ctx := context.Background()
	b := blobs{}
	wasm := []byte("\x00asm\x01\x00\x00\x00")
	layer := ocispec.Descriptor{MediaType: oci.MediaTypeWasmLayer, Digest: digest.FromBytes(wasm), Size: int64(len(wasm))}
	cfg := b.add(t, oci.MediaTypeWasmConfig, oci.WasmConfig{Architecture: "wasm", OS: "wasip1"})
	manifest := func(config ocispec.Descriptor, layers ...ocispec.Descriptor) ocispec.Descriptor {
		return b.add(t, ocispec.MediaTypeImageManifest, ocispec.Manifest{
			Versioned: specsVersioned(), MediaType: ocispec.MediaTypeImageManifest, Config: config, Layers: layers,
		})
	}
	cncf := manifest(cfg, layer)
	runwasiLayer := ocispec.Descriptor{MediaType: oci.MediaTypeRunwasiComponentLayer, Digest: layer.Digest, Size: layer.Size}
	runwasi := manifest(b.add(t, ocispec.MediaTypeImageConfig, oci.WasmConfig{Architecture: "wasm", OS: "wasip2"}), runwasiLayer)
	tarImage := manifest(b.add(t, ocispec.MediaTypeImageConfig, map[string]any{"os": "linux"}),
		ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: layer.Digest, Size: layer.Size})
	plat := func(d ocispec.Descriptor, os, arch string) ocispec.Descriptor {
		d.Platform = &ocispec.Platform{OS: os, Architecture: arch}
		return d
	}
	index := b.add(t, ocispec.MediaTypeImageIndex, ocispec.Index{
		Versioned: specsVersioned(), MediaType: ocispec.MediaTypeImageIndex,
		Manifests: []ocispec.Descriptor{plat(tarImage, "linux", "amd64"), plat(runwasi, "wasip2", "wasm"), plat(cncf, "wasip1", "wasm")},
	})
	linuxOnly := b.add(t, ocispec.MediaTypeImageIndex, ocispec.Index{
		Versioned: specsVersioned(), MediaType: ocispec.MediaTypeImageIndex,
		Manifests: []ocispec.Descriptor{plat(tarImage, "linux", "amd64")},
	})
	unsniffed := cncf
	unsniffed.MediaType = ""

	for _, tc := range []struct {
		name      string
		target    ocispec.Descriptor
		platforms []string
		layer     string
		layout    oci.Format
		err       string
	}{
		{name: "cncf manifest", target: cncf, layer: oci.MediaTypeWasmLayer, layout: oci.FormatCNCF},
		{name: "media type sniffed", target: unsniffed, layer: oci.MediaTypeWasmLayer, layout: oci.FormatCNCF},
		{name: "runwasi manifest", target: runwasi, layer: oci.MediaTypeRunwasiComponentLayer, layout: oci.FormatRunwasi},
		{name: "index prefers wasip1", target: index, layer: oci.MediaTypeWasmLayer, layout: oci.FormatCNCF},
		{name: "index with wasip2 first", target: index, platforms: []string{oci.OSWasip2}, layer: oci.MediaTypeRunwasiComponentLayer, layout: oci.FormatRunwasi},
		{name: "plain image", target: tarImage, err: "application/vnd.oci.image.layer.v1.tar+gzip"},
		{name: "index without wasm", target: linuxOnly, err: "no platform wasip1 or wasip2"},
		{name: "missing blob", target: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString("gone"), Size: 4}, err: "not found"},
		{name: "oversized manifest", target: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: cncf.Digest, Size: 64 << 20}, err: "more than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, layout, err := oci.LocateWasm(ctx, "example/app:v1", tc.target, b.read, tc.platforms)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want one containing %q", err, tc.err)
				}
				var ue *oci.UnsupportedError
				if strings.Contains(tc.name, "image") && !errors.As(err, &ue) {
					t.Errorf("err %T, want *oci.UnsupportedError", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if l.MediaType != tc.layer || l.Digest != layer.Digest || layout != tc.layout {
				t.Errorf("layer %s %s, layout %s; want %s %s, %s", l.MediaType, l.Digest, layout, tc.layer, layer.Digest, tc.layout)
			}
		})
	}
}

func specsVersioned() specs.Versioned { return specs.Versioned{SchemaVersion: 2} }
