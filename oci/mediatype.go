package oci

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/containerd/errdefs"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Media types of the Wasm artifact layouts wasilet reads and writes.
const (
	// MediaTypeWasmConfig is the config of the CNCF Wasm OCI artifact
	// (TAG Runtime Wasm working group), the layout [Push] writes.
	MediaTypeWasmConfig = "application/vnd.wasm.config.v0+json"
	// MediaTypeWasmLayer is the layer of the CNCF Wasm OCI artifact: the raw
	// module or component bytes.
	MediaTypeWasmLayer = "application/wasm"

	// MediaTypeWasmToOCIConfig is the config of the legacy wasm-to-oci layout
	// that Krustlet used.
	MediaTypeWasmToOCIConfig = "application/vnd.wasm.config.v1+json"
	// MediaTypeWasmToOCILayer is the layer of the legacy wasm-to-oci layout.
	MediaTypeWasmToOCILayer = "application/vnd.wasm.content.layer.v1+wasm"

	// MediaTypeRunwasiComponentLayer is the layer containerd's runwasi puts a
	// component in, beside an ordinary OCI image config.
	MediaTypeRunwasiComponentLayer = "application/vnd.bytecodealliance.wasm.component.layer.v0+wasm"

	// Docker's schema 2 manifest and manifest list are accepted as containers
	// of the same layouts: they are the OCI ones under other names.
	mediaTypeDockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
	mediaTypeDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
)

// Platform names of Wasm artifacts in an image index or a config.
const (
	// ArchWasm is the architecture of every Wasm artifact.
	ArchWasm = "wasm"
	// OSWasip1 marks a core module targeting WASI preview 1.
	OSWasip1 = "wasip1"
	// OSWasip2 marks a component targeting WASI preview 2.
	OSWasip2 = "wasip2"
)

// Format names the artifact layout a manifest was recognised as.
type Format string

const (
	// FormatCNCF is the CNCF Wasm OCI artifact: config
	// application/vnd.wasm.config.v0+json, one layer application/wasm.
	FormatCNCF Format = "cncf"
	// FormatWasmToOCI is the wasm-to-oci/Krustlet layout: config
	// application/vnd.wasm.config.v1+json, one layer
	// application/vnd.wasm.content.layer.v1+wasm.
	FormatWasmToOCI Format = "wasm-to-oci"
	// FormatRunwasi is runwasi's layout: an OCI image config
	// (application/vnd.oci.image.config.v1+json) and one layer
	// application/vnd.bytecodealliance.wasm.component.layer.v0+wasm.
	FormatRunwasi Format = "runwasi"
)

// format is one accepted (config, layer) pair.
type format struct {
	name   Format
	config string
	layer  string
	label  string
}

// formats lists every accepted manifest layout. A manifest is accepted when
// its config media type and its only layer's media type match one row.
var formats = []format{
	{FormatCNCF, MediaTypeWasmConfig, MediaTypeWasmLayer, "CNCF Wasm artifact"},
	{FormatWasmToOCI, MediaTypeWasmToOCIConfig, MediaTypeWasmToOCILayer, "wasm-to-oci/Krustlet"},
	{FormatRunwasi, ocispec.MediaTypeImageConfig, MediaTypeRunwasiComponentLayer, "runwasi component"},
}

// acceptedDescription says in one clause what a manifest must look like.
func acceptedDescription() string {
	var b strings.Builder
	for i, f := range formats {
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "%s (config %s, layer %s)", f.label, f.config, f.layer)
	}
	fmt.Fprintf(&b, "; or an image index with a platform %s/%s or %s/%s", OSWasip1, ArchWasm, OSWasip2, ArchWasm)
	return b.String()
}

// UnsupportedError reports an artifact that is not in an accepted Wasm layout.
// It names what was found and what is accepted, and it is classed as
// [errdefs.ErrNotImplemented] (errdefs.IsNotImplemented is true), which a node
// can turn into a pod reason.
type UnsupportedError struct {
	// Ref is the reference being pulled.
	Ref string
	// ManifestMediaType is the media type of the manifest (or index) read.
	ManifestMediaType string
	// ConfigMediaType is the config media type found, if any.
	ConfigMediaType string
	// LayerMediaTypes are the layer media types found, in manifest order.
	LayerMediaTypes []string
	// Platforms are the platforms an index offered (os/arch), if the
	// reference named an index without a Wasm platform.
	Platforms []string
	// Reason says what is wrong, when it is more than a media type mismatch.
	Reason string
}

func (e *UnsupportedError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "unsupported artifact %s: ", e.Ref)
	if e.Reason != "" {
		b.WriteString(e.Reason)
		b.WriteString("; ")
	}
	switch {
	case e.Platforms != nil:
		fmt.Fprintf(&b, "found %s with platforms [%s]", e.ManifestMediaType, strings.Join(e.Platforms, ", "))
	case e.ConfigMediaType != "" || e.LayerMediaTypes != nil:
		fmt.Fprintf(&b, "found %s with config %s and layers [%s]",
			e.ManifestMediaType, orNone(e.ConfigMediaType), strings.Join(e.LayerMediaTypes, ", "))
	default:
		fmt.Fprintf(&b, "found media type %s", orNone(e.ManifestMediaType))
	}
	b.WriteString("; accepted: ")
	b.WriteString(acceptedDescription())
	return b.String()
}

// Unwrap classes the error as not implemented.
func (e *UnsupportedError) Unwrap() error { return errdefs.ErrNotImplemented }

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// isIndex reports whether a media type is an image index or manifest list.
func isIndex(mediaType string) bool {
	return mediaType == ocispec.MediaTypeImageIndex || mediaType == mediaTypeDockerManifestList
}

// isManifest reports whether a media type is an image manifest.
func isManifest(mediaType string) bool {
	return mediaType == ocispec.MediaTypeImageManifest || mediaType == mediaTypeDockerManifest
}

// sniffMediaType returns the media type a manifest document declares, for
// registries that answer without a usable Content-Type.
func sniffMediaType(b []byte) string {
	var probe struct {
		MediaType string              `json:"mediaType"`
		Manifests json.RawMessage     `json:"manifests"`
		Config    *ocispec.Descriptor `json:"config"`
	}
	if json.Unmarshal(b, &probe) != nil {
		return ""
	}
	switch {
	case probe.MediaType != "":
		return probe.MediaType
	case probe.Manifests != nil:
		return ocispec.MediaTypeImageIndex
	case probe.Config != nil:
		return ocispec.MediaTypeImageManifest
	}
	return ""
}

// classifyManifest checks that a manifest is in one accepted layout and
// returns the layout, the config descriptor and the Wasm layer descriptor.
func classifyManifest(ref, mediaType string, b []byte) (*ocispec.Manifest, format, error) {
	var m ocispec.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, format{}, fmt.Errorf("decode manifest of %s: %v: %w", ref, err, errdefs.ErrInvalidArgument)
	}
	layers := make([]string, len(m.Layers))
	for i, l := range m.Layers {
		layers[i] = l.MediaType
	}
	unsupported := &UnsupportedError{
		Ref:               ref,
		ManifestMediaType: mediaType,
		ConfigMediaType:   m.Config.MediaType,
		LayerMediaTypes:   layers,
	}
	var wasm []int
	for i, l := range m.Layers {
		if slices.ContainsFunc(formats, func(f format) bool { return f.layer == l.MediaType }) {
			wasm = append(wasm, i)
		}
	}
	switch {
	case len(wasm) == 0:
		return nil, format{}, unsupported
	case len(m.Layers) != 1:
		unsupported.Reason = fmt.Sprintf("want exactly one layer, found %d", len(m.Layers))
		return nil, format{}, unsupported
	}
	for _, f := range formats {
		if f.config == m.Config.MediaType && f.layer == m.Layers[0].MediaType {
			if err := checkDescriptor(m.Config); err != nil {
				return nil, format{}, fmt.Errorf("config of %s: %w", ref, err)
			}
			if err := checkDescriptor(m.Layers[0]); err != nil {
				return nil, format{}, fmt.Errorf("layer of %s: %w", ref, err)
			}
			return &m, f, nil
		}
	}
	unsupported.Reason = "config media type does not match the layer's layout"
	return nil, format{}, unsupported
}

// checkDescriptor rejects descriptors a registry should never send.
func checkDescriptor(d ocispec.Descriptor) error {
	if err := d.Digest.Validate(); err != nil {
		return fmt.Errorf("descriptor digest %q: %v: %w", d.Digest, err, errdefs.ErrInvalidArgument)
	}
	if d.Size < 0 {
		return fmt.Errorf("descriptor %s has negative size %d: %w", d.Digest, d.Size, errdefs.ErrInvalidArgument)
	}
	return nil
}

// DefaultPlatforms is the order in which [Store.Pull] prefers the platforms of
// an image index when PullOptions.Platforms is empty: a WASI preview 1 module
// first, because every execution path of the runtime (limits, epoch
// cancellation, the compiled cache) supports core modules, then a WASI
// preview 2 component. wasilet runs both; a node that prefers components
// passes {wasip2, wasip1}.
var DefaultPlatforms = []string{OSWasip1, OSWasip2}

// selectPlatform picks the manifest of an index for the first OS in prefs
// (architecture wasm), skipping entries for which skip returns true.
func selectPlatform(ref string, mediaType string, b []byte, prefs []string, skip func(ocispec.Descriptor) bool) (ocispec.Descriptor, error) {
	var idx ocispec.Index
	if err := json.Unmarshal(b, &idx); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("decode index of %s: %v: %w", ref, err, errdefs.ErrInvalidArgument)
	}
	if len(prefs) == 0 {
		prefs = DefaultPlatforms
	}
	for _, os := range prefs {
		for _, d := range idx.Manifests {
			if d.Platform == nil || d.Platform.OS != os || d.Platform.Architecture != ArchWasm {
				continue
			}
			if skip != nil && skip(d) {
				continue
			}
			if !isManifest(d.MediaType) {
				return ocispec.Descriptor{}, &UnsupportedError{
					Ref: ref, ManifestMediaType: d.MediaType,
					Reason: fmt.Sprintf("platform %s/%s of the index is not an image manifest", os, ArchWasm),
				}
			}
			if err := checkDescriptor(d); err != nil {
				return ocispec.Descriptor{}, fmt.Errorf("index of %s: %w", ref, err)
			}
			return d, nil
		}
	}
	platforms := []string{}
	for _, d := range idx.Manifests {
		if d.Platform == nil {
			platforms = append(platforms, "(none)")
			continue
		}
		platforms = append(platforms, d.Platform.OS+"/"+d.Platform.Architecture)
	}
	return ocispec.Descriptor{}, &UnsupportedError{
		Ref: ref, ManifestMediaType: mediaType, Platforms: platforms,
		Reason: fmt.Sprintf("no platform %s with architecture %s", strings.Join(prefs, " or "), ArchWasm),
	}
}

// Kind says whether a Wasm binary is a core module or a component.
type Kind string

const (
	// KindModule is a core Wasm module (binary version 1).
	KindModule Kind = "module"
	// KindComponent is a component (binary version 0x0d, layer 1).
	KindComponent Kind = "component"
)

var (
	wasmMagic        = []byte{0x00, 'a', 's', 'm'}
	moduleVersion    = []byte{0x01, 0x00, 0x00, 0x00}
	componentVersion = []byte{0x0d, 0x00, 0x01, 0x00}
)

// DetectKind reads the 8-byte header of a Wasm binary: "\0asm" then the
// version 01 00 00 00 for a core module or 0d 00 01 00 for a component.
// Anything else is an error classed as [errdefs.ErrInvalidArgument].
func DetectKind(header []byte) (Kind, error) {
	if len(header) < 8 || !bytes.Equal(header[:4], wasmMagic) {
		return "", fmt.Errorf("not a wasm binary (no \\0asm header): %w", errdefs.ErrInvalidArgument)
	}
	switch v := header[4:8]; {
	case bytes.Equal(v, moduleVersion):
		return KindModule, nil
	case bytes.Equal(v, componentVersion):
		return KindComponent, nil
	default:
		return "", fmt.Errorf("unknown wasm binary version % x: %w", v, errdefs.ErrInvalidArgument)
	}
}

// OS returns the platform OS an artifact of this kind is published under.
func (k Kind) OS() string {
	if k == KindComponent {
		return OSWasip2
	}
	return OSWasip1
}

// WasmConfig is the config blob of the CNCF Wasm artifact. Runwasi's OCI
// image config shares the os and architecture fields.
type WasmConfig struct {
	Created      string   `json:"created,omitempty"`
	Author       string   `json:"author,omitempty"`
	Architecture string   `json:"architecture"`
	OS           string   `json:"os"`
	LayerDigests []string `json:"layerDigests,omitempty"`
}

// configPlatform reads the platform a config declares, if it is a config
// that declares one. wasm-to-oci configs carry nothing wasilet needs.
func configPlatform(ref string, f format, b []byte) (*ocispec.Platform, error) {
	if f.name == FormatWasmToOCI {
		return nil, nil
	}
	var c WasmConfig
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("decode config %s of %s: %v: %w", f.config, ref, err, errdefs.ErrInvalidArgument)
	}
	if c.Architecture == "" && c.OS == "" {
		return nil, nil
	}
	if c.Architecture != "" && c.Architecture != ArchWasm {
		return nil, &UnsupportedError{
			Ref: ref, ManifestMediaType: ocispec.MediaTypeImageManifest, ConfigMediaType: f.config,
			LayerMediaTypes: []string{f.layer},
			Reason:          fmt.Sprintf("config architecture is %q, not %q", c.Architecture, ArchWasm),
		}
	}
	return &ocispec.Platform{OS: c.OS, Architecture: c.Architecture}, nil
}
