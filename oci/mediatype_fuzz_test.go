package oci

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

const fuzzRef = "registry.example/fuzz/app:v1"

// FuzzManifest feeds a manifest or index document, with the media type a
// registry announced for it, through what a pull does with it: sniff the
// type when the announced one is neither, pick the Wasm platform of an index
// (default and component-first preferences), or check the manifest's layout.
// Nothing panics; every refusal names the reference, says what is wrong and
// is classed invalid-argument or not-implemented; what is accepted is what
// the layout table allows, with valid digests and sizes.
func FuzzManifest(f *testing.F) {
	f.Add(ocispec.MediaTypeImageManifest, []byte(`{"schemaVersion":2,"config":{"mediaType":"application/vnd.wasm.config.v0+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[{"mediaType":"application/wasm","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2}]}`))
	f.Add("", []byte(`{"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2,"platform":{"os":"wasip1","architecture":"wasm"}}]}`))
	f.Add("application/octet-stream", []byte(`{}`))
	f.Add(ocispec.MediaTypeImageIndex, []byte(`[`))
	f.Fuzz(func(t *testing.T, mediaType string, doc []byte) {
		mt := mediaType
		if !isIndex(mt) && !isManifest(mt) {
			mt = sniffMediaType(doc)
		}
		switch {
		case isIndex(mt):
			for _, prefs := range [][]string{nil, {OSWasip2, OSWasip1}} {
				d, err := selectPlatform(fuzzRef, mt, doc, prefs, nil)
				if err != nil {
					checkPullError(t, doc, err)
					continue
				}
				if prefs == nil {
					prefs = DefaultPlatforms
				}
				if d.Platform == nil || !slices.Contains(prefs, d.Platform.OS) || d.Platform.Architecture != ArchWasm {
					t.Fatalf("index %q: picked %+v, not a platform of %v/%s", doc, d.Platform, prefs, ArchWasm)
				}
				if !isManifest(d.MediaType) || d.Digest.Validate() != nil || d.Size < 0 {
					t.Fatalf("index %q: picked a bad descriptor %+v", doc, d)
				}
			}
		case isManifest(mt):
			m, form, err := classifyManifest(fuzzRef, mt, doc)
			if err != nil {
				checkPullError(t, doc, err)
				return
			}
			if !slices.Contains(formats, form) || len(m.Layers) != 1 ||
				m.Config.MediaType != form.config || m.Layers[0].MediaType != form.layer {
				t.Fatalf("manifest %q: accepted as %+v: config %q, layers %+v", doc, form, m.Config.MediaType, m.Layers)
			}
			for _, d := range []ocispec.Descriptor{m.Config, m.Layers[0]} {
				if d.Digest.Validate() != nil || d.Size < 0 {
					t.Fatalf("manifest %q: accepted a bad descriptor %+v", doc, d)
				}
			}
		default:
			checkPullError(t, doc, &UnsupportedError{Ref: fuzzRef, ManifestMediaType: orNone(mediaType)})
		}
	})
}

// FuzzConfigPlatform: the config blob of any accepted layout is either
// refused with a reason or yields no platform or one of architecture wasm.
func FuzzConfigPlatform(f *testing.F) {
	f.Add(uint8(0), []byte(`{"architecture":"wasm","os":"wasip1","layerDigests":["sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"]}`))
	f.Add(uint8(1), []byte(`{}`))
	f.Add(uint8(2), []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`))
	f.Add(uint8(0), []byte(`null`))
	f.Fuzz(func(t *testing.T, layout uint8, config []byte) {
		form := formats[int(layout)%len(formats)]
		p, err := configPlatform(fuzzRef, form, config)
		if err != nil {
			checkPullError(t, config, err)
			return
		}
		if form.name == FormatWasmToOCI && p != nil {
			t.Fatalf("wasm-to-oci config %q gave platform %+v", config, p)
		}
		if p != nil && p.Architecture != "" && p.Architecture != ArchWasm {
			t.Fatalf("%s config %q: accepted platform %+v", form.name, config, p)
		}
	})
}

// checkPullError checks that a refusal names the reference, says why and
// carries a class a node can turn into a pod reason.
func checkPullError(t *testing.T, doc []byte, err error) {
	t.Helper()
	msg := err.Error()
	if !strings.Contains(msg, fuzzRef) {
		t.Fatalf("%q: error %q does not name the reference", doc, msg)
	}
	if !errdefs.IsInvalidArgument(err) && !errdefs.IsNotImplemented(err) {
		t.Fatalf("%q: error %q is neither invalid-argument nor not-implemented", doc, msg)
	}
	var ue *UnsupportedError
	if errors.As(err, &ue) {
		if !strings.Contains(msg, "; accepted: ") || strings.Contains(msg, "found  ") {
			t.Fatalf("%q: unsupported-artifact error %q does not say what was found and what is accepted", doc, msg)
		}
		return
	}
	if len(msg) <= len(fuzzRef)+len("decode manifest of : ") {
		t.Fatalf("%q: error %q does not say what is wrong", doc, msg)
	}
}
