package oci

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"time"

	"github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/registry/remote"
)

// PushOptions tunes [Push]. The zero value pushes with docker credentials,
// the creation time now, and the OS read from the binary.
type PushOptions struct {
	// Remote says how to reach the registry and with which credentials.
	Remote RemoteOptions
	// Tags are extra tags given to the pushed manifest, besides the one in
	// the reference (a digest reference is refused: it names existing
	// content).
	Tags []string
	// Annotations are added to the manifest's annotations; they override
	// the ones Push sets.
	Annotations map[string]string
	// Source, if set, is recorded as org.opencontainers.image.source.
	Source string
	// Created is the creation time recorded in the config and as
	// org.opencontainers.image.created; zero means now.
	Created time.Time
	// OS overrides the config's os; empty means wasip2 for a component and
	// wasip1 for a core module, read from the binary header.
	OS string
	// Progress, if set, sees every blob pushed or skipped.
	Progress func(Progress)
}

// PushResult describes what [Push] wrote.
type PushResult struct {
	// Ref is the normalized reference pushed to.
	Ref string
	// Manifest is the manifest descriptor; Manifest.Digest is what to pin.
	Manifest ocispec.Descriptor
	// RepoDigest is HOST/REPO@DIGEST of the manifest.
	RepoDigest string
	// Config and Layer are the blobs the manifest names.
	Config ocispec.Descriptor
	Layer  ocispec.Descriptor
	// Kind is what the binary header says; OS what the config records.
	Kind Kind
	OS   string
	// Tags are all the tags the manifest got (the reference's and extras).
	Tags []string
}

// Push uploads a Wasm module or component file to ref in the CNCF Wasm
// artifact layout: an OCI image manifest whose config
// (application/vnd.wasm.config.v0+json) records created, architecture
// "wasm", os "wasip1" or "wasip2" and layerDigests, and whose one layer
// (application/wasm, titled with the file name so `oras pull` writes it
// under that name) is the file. The manifest is annotated with
// org.opencontainers.image.created, .source (if given) and opts.Annotations,
// then tagged with the reference's tag (default "latest") and opts.Tags.
// Blobs the registry already has are not uploaded again.
func Push(ctx context.Context, wasmFile, ref string, opts PushOptions) (*PushResult, error) {
	res, err := push(ctx, wasmFile, ref, opts)
	if err != nil {
		return nil, fmt.Errorf("push %s to %s: %w", wasmFile, ref, err)
	}
	return res, nil
}

func push(ctx context.Context, wasmFile, ref string, opts PushOptions) (*PushResult, error) {
	r, err := ParseReference(ref)
	if err != nil {
		return nil, err
	}
	if r.IsDigest() {
		return nil, fmt.Errorf("reference names a digest; push needs a tag: %w", errdefs.ErrInvalidArgument)
	}
	for _, t := range opts.Tags {
		tr := r
		tr.Reference.Reference = t
		if err := tr.ValidateReferenceAsTag(); err != nil {
			return nil, fmt.Errorf("tag %q: %v: %w", t, err, errdefs.ErrInvalidArgument)
		}
	}

	f, err := os.Open(wasmFile)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var header [8]byte
	if _, err := io.ReadFull(f, header[:]); err != nil {
		return nil, fmt.Errorf("read wasm header: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	kind, err := DetectKind(header[:])
	if err != nil {
		return nil, err
	}
	osName := opts.OS
	if osName == "" {
		osName = kind.OS()
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	h := sha256.New()
	size, err := io.Copy(h, f)
	if err != nil {
		return nil, err
	}
	layer := ocispec.Descriptor{
		MediaType:   MediaTypeWasmLayer,
		Digest:      digest.NewDigest(digest.SHA256, h),
		Size:        size,
		Annotations: map[string]string{ocispec.AnnotationTitle: filepath.Base(wasmFile)},
	}

	created := opts.Created
	if created.IsZero() {
		created = time.Now()
	}
	createdText := created.UTC().Format(time.RFC3339)
	configBytes, err := json.Marshal(WasmConfig{
		Created:      createdText,
		Architecture: ArchWasm,
		OS:           osName,
		LayerDigests: []string{layer.Digest.String()},
	})
	if err != nil {
		return nil, err
	}
	config := ocispec.Descriptor{
		MediaType: MediaTypeWasmConfig,
		Digest:    digest.FromBytes(configBytes),
		Size:      int64(len(configBytes)),
	}
	annotations := map[string]string{ocispec.AnnotationCreated: createdText}
	if opts.Source != "" {
		annotations[ocispec.AnnotationSource] = opts.Source
	}
	maps.Copy(annotations, opts.Annotations)
	manifestBytes, err := json.Marshal(ocispec.Manifest{
		Versioned:   specs.Versioned{SchemaVersion: 2},
		MediaType:   ocispec.MediaTypeImageManifest,
		Config:      config,
		Layers:      []ocispec.Descriptor{layer},
		Annotations: annotations,
	})
	if err != nil {
		return nil, err
	}
	manifest := ocispec.Descriptor{
		MediaType: ocispec.MediaTypeImageManifest,
		Digest:    digest.FromBytes(manifestBytes),
		Size:      int64(len(manifestBytes)),
	}

	repo, err := opts.Remote.repository(r)
	if err != nil {
		return nil, err
	}
	if err := pushBlob(ctx, repo, r, layer, func() (io.Reader, error) {
		_, err := f.Seek(0, io.SeekStart)
		return f, err
	}, opts.Progress); err != nil {
		return nil, fmt.Errorf("layer: %w", err)
	}
	if err := pushBlob(ctx, repo, r, config, func() (io.Reader, error) {
		return bytes.NewReader(configBytes), nil
	}, opts.Progress); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	tags := append([]string{r.Tag()}, opts.Tags...)
	for _, t := range tags {
		if err := repo.PushReference(ctx, manifest, bytes.NewReader(manifestBytes), t); err != nil {
			return nil, fmt.Errorf("manifest %s as %s: %w", manifest.Digest, t, classify(r.Registry, err))
		}
	}
	return &PushResult{
		Ref:        r.String(),
		Manifest:   manifest,
		RepoDigest: r.WithDigest(manifest.Digest),
		Config:     config,
		Layer:      layer,
		Kind:       kind,
		OS:         osName,
		Tags:       tags,
	}, nil
}

// pushBlob uploads a blob unless the registry has it.
func pushBlob(ctx context.Context, repo *remote.Repository, r Reference, d ocispec.Descriptor, open func() (io.Reader, error), progress func(Progress)) error {
	ok, err := repo.Blobs().Exists(ctx, d)
	if err != nil {
		return fmt.Errorf("%s: %w", d.Digest, classify(r.Registry, err))
	}
	if ok {
		report(progress, d, ProgressSkipped)
		return nil
	}
	body, err := open()
	if err != nil {
		return err
	}
	if err := repo.Blobs().Push(ctx, d, trackProgress(body, d, progress)); err != nil {
		return fmt.Errorf("%s: %w", d.Digest, classify(r.Registry, err))
	}
	report(progress, d, ProgressDone)
	return nil
}
