package oci

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry/remote"
)

// PullPolicy is Kubernetes' imagePullPolicy.
type PullPolicy string

const (
	// PullAlways asks the registry what the reference names now (one
	// manifest HEAD request) and downloads only blobs the store lacks.
	PullAlways PullPolicy = "Always"
	// PullIfNotPresent uses the store if it has the reference, else pulls.
	PullIfNotPresent PullPolicy = "IfNotPresent"
	// PullNever uses the store only; a missing reference is [ErrNotPresent].
	PullNever PullPolicy = "Never"
)

// PullOptions tunes [Store.Pull]. The zero value pulls with Kubernetes'
// default policy for the reference, docker credentials and the default
// platform preference.
type PullOptions struct {
	// Policy is the pull policy; empty means [DefaultPullPolicy] of the
	// reference (Always for :latest, IfNotPresent otherwise).
	Policy PullPolicy
	// Remote says how to reach the registry and with which credentials.
	Remote RemoteOptions
	// Platforms is the OS preference (architecture wasm) when the reference
	// names an image index; empty means [DefaultPlatforms].
	Platforms []string
	// MaxLayerSize bounds the declared size of the Wasm layer, so a registry
	// cannot fill the node's disk; 0 means [DefaultMaxLayerSize]. A larger
	// layer fails with errdefs.ErrResourceExhausted before any download.
	MaxLayerSize int64
	// Progress, if set, sees every blob the pull moves or skips.
	Progress func(Progress)
}

// DefaultMaxLayerSize is the largest Wasm layer Pull accepts by default.
const DefaultMaxLayerSize = 1 << 30

// Artifact is a Wasm artifact in the store.
type Artifact struct {
	// Ref is the normalized reference it was pulled or resolved as.
	Ref string
	// Digest is the digest the reference resolved to: the manifest's, or
	// the index's when the reference names an index.
	Digest digest.Digest
	// RepoDigest is HOST/REPO@Digest, the immutable name of this content
	// (what a pod status reports as imageID).
	RepoDigest string
	// MediaType is the media type of what the reference names (manifest or
	// index).
	MediaType string
	// Manifest is the image manifest used; for an index, the one chosen
	// for the platform.
	Manifest ocispec.Descriptor
	// Format is the layout the manifest was recognised as.
	Format Format
	// Config is the config descriptor; ConfigMediaType repeats its type.
	Config          ocispec.Descriptor
	ConfigMediaType string
	// Platform is the platform from the index entry or else from the config
	// (os wasip1/wasip2, architecture wasm); nil if neither says.
	Platform *ocispec.Platform
	// Layer is the Wasm layer (media type, digest, size).
	Layer ocispec.Descriptor
	// Kind says whether the layer is a core module or a component, read
	// from its binary header (authoritative over Platform).
	Kind Kind
	// Path is the layer's file in the store: read-only, verified, and
	// stable until a GC removes the last reference reaching it.
	Path string
	// Annotations are the manifest's annotations.
	Annotations map[string]string
	// Cached is true when the pull downloaded no blob.
	Cached bool
}

// Open opens the Wasm layer for reading.
func (a *Artifact) Open() (*os.File, error) { return os.Open(a.Path) }

// ReadWasm returns the Wasm bytes.
func (a *Artifact) ReadWasm() ([]byte, error) { return os.ReadFile(a.Path) }

// WriteFile copies the Wasm layer to path atomically (a temporary file in
// the same directory, renamed when complete), mode 0644.
func (a *Artifact) WriteFile(path string) (retErr error) {
	src, err := a.Open()
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer src.Close()
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer func() {
		if retErr != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err := io.Copy(tmp, src); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// Pull makes the artifact ref names available in the store and returns it.
//
// Under PullIfNotPresent and PullNever a reference already recorded is
// answered from the store without network. Otherwise the manifest is
// resolved with one HEAD request; if the store already has everything that
// digest needs, nothing more is fetched. Else the manifest (and, for an
// index, the manifest of the preferred platform), the config and the Wasm
// layer are downloaded, verified against their digests, and stored; then
// the reference (and HOST/REPO@DIGEST) is recorded. Concurrent pulls of one
// digest share one download. Errors are classed as described in errors.go
// (errdefs.IsNotFound, IsUnauthorized, IsNotImplemented, IsDataLoss, …).
func (s *Store) Pull(ctx context.Context, ref string, opts PullOptions) (*Artifact, error) {
	r, err := ParseReference(ref)
	if err != nil {
		return nil, fmt.Errorf("pull: %w", err)
	}
	a, err := s.pull(ctx, r, opts)
	if err != nil {
		return nil, fmt.Errorf("pull %s: %w", r, err)
	}
	return a, nil
}

func (s *Store) pull(ctx context.Context, r Reference, opts PullOptions) (*Artifact, error) {
	if err := s.rlock(); err != nil {
		return nil, err
	}
	defer s.mu.RUnlock()

	policy := opts.Policy
	if policy == "" {
		policy = DefaultPullPolicy(r.String())
	}
	switch policy {
	case PullAlways:
	case PullIfNotPresent, PullNever:
		a, err := s.resolveLocal(ctx, r, opts.Platforms, true)
		if err == nil {
			a.Cached = true
			return a, nil
		}
		if !errors.Is(err, ErrNotPresent) {
			return nil, err
		}
		if policy == PullNever {
			return nil, fmt.Errorf("pull policy is Never: %w", err)
		}
	default:
		return nil, fmt.Errorf("unknown pull policy %q (want Always, IfNotPresent or Never): %w", policy, errdefs.ErrInvalidArgument)
	}

	repo, err := opts.Remote.repository(r)
	if err != nil {
		return nil, err
	}
	top, err := repo.Resolve(ctx, r.Reference.Reference)
	if err != nil {
		if errors.Is(err, errdef.ErrNotFound) {
			return nil, fmt.Errorf("registry %s has no manifest %s in %s: %w", r.Registry, r.Reference.Reference, r.Repository, errdefs.ErrNotFound)
		}
		return nil, classify(r.Registry, err)
	}
	if err := checkDescriptor(top); err != nil {
		return nil, err
	}
	// Callers of one digest share the download. Each has proven its own
	// access with the HEAD above (made with its own credentials), so sharing
	// the leader's transfer leaks nothing.
	key := fmt.Sprintf("pull\x00%s\x00%s\x00%d", top.Digest, strings.Join(opts.Platforms, ","), opts.MaxLayerSize)
	v, err := s.once(ctx, key, func(ctx context.Context) (any, error) {
		return s.fetch(ctx, repo, r, top, opts)
	})
	if err != nil {
		return nil, err
	}
	shared := v.(*Artifact)
	for _, name := range []string{r.String(), r.WithDigest(top.Digest)} {
		if d, err := s.layout.Resolve(ctx, name); err == nil && d.Digest == top.Digest {
			continue // already recorded: spare the index.json rewrite
		}
		if err := s.layout.Tag(ctx, top, name); err != nil {
			return nil, fmt.Errorf("record reference %s: %w", name, err)
		}
	}
	a := *shared
	a.Ref = r.String()
	a.RepoDigest = r.WithDigest(top.Digest)
	return &a, nil
}

// once runs fn for key at most once at a time; callers arriving meanwhile
// share its result. If the running call fails only because its own caller
// went away, a caller whose context is still live runs fn again.
func (s *Store) once(ctx context.Context, key string, fn func(context.Context) (any, error)) (any, error) {
	for {
		ch := s.flight.DoChan(key, func() (any, error) { return fn(ctx) })
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case res := <-ch:
			if res.Err != nil && ctx.Err() == nil &&
				(errors.Is(res.Err, context.Canceled) || errors.Is(res.Err, context.DeadlineExceeded)) {
				continue
			}
			return res.Val, res.Err
		}
	}
}

// fetch stores everything top needs and returns the artifact.
func (s *Store) fetch(ctx context.Context, repo *remote.Repository, r Reference, top ocispec.Descriptor, opts PullOptions) (*Artifact, error) {
	if a, err := s.load(ctx, r, top, opts.Platforms, true); err == nil {
		a.Cached = true
		return a, nil
	}
	topBytes, err := s.fetchManifest(ctx, repo, r, top)
	if err != nil {
		return nil, err
	}
	mt := top.MediaType
	if !isIndex(mt) && !isManifest(mt) {
		mt = sniffMediaType(topBytes)
	}
	manifest, manifestBytes := top, topBytes
	manifest.MediaType = mt
	switch {
	case isIndex(mt):
		child, err := selectPlatform(r.String(), mt, topBytes, opts.Platforms, nil)
		if err != nil {
			return nil, err
		}
		manifest = child
		if manifestBytes, err = s.fetchManifest(ctx, repo, r, child); err != nil {
			return nil, err
		}
	case isManifest(mt):
	default:
		return nil, &UnsupportedError{Ref: r.String(), ManifestMediaType: orNone(top.MediaType)}
	}
	m, f, err := classifyManifest(r.String(), manifest.MediaType, manifestBytes)
	if err != nil {
		return nil, err
	}
	configBytes, err := s.fetchSmallBlob(ctx, repo, r, m.Config, opts.Progress)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if _, err := configPlatform(r.String(), f, configBytes); err != nil {
		return nil, err
	}
	limit := opts.MaxLayerSize
	if limit <= 0 {
		limit = DefaultMaxLayerSize
	}
	if size := m.Layers[0].Size; size > limit {
		return nil, fmt.Errorf("layer %s is %d bytes, more than the limit of %d: %w", m.Layers[0].Digest, size, limit, errdefs.ErrResourceExhausted)
	}
	if err := s.fetchLayer(ctx, repo, r, m.Layers[0], opts.Progress); err != nil {
		return nil, fmt.Errorf("layer: %w", err)
	}
	// Manifests go in last: the graph of the layout then finds their
	// blobs, and a reference never names content that is not all there.
	if err := s.put(ctx, manifest, manifestBytes); err != nil {
		return nil, err
	}
	if manifest.Digest != top.Digest {
		if err := s.put(ctx, top, topBytes); err != nil {
			return nil, err
		}
	}
	return s.load(ctx, r, top, opts.Platforms, true)
}

// fetchManifest reads a manifest or index from the store, or else from the
// registry (verified).
func (s *Store) fetchManifest(ctx context.Context, repo *remote.Repository, r Reference, d ocispec.Descriptor) ([]byte, error) {
	if s.exists(d.Digest) {
		return s.readLocal(ctx, d)
	}
	if d.Size > maxMetadataSize {
		return nil, fmt.Errorf("manifest %s is %d bytes, more than %d: %w", d.Digest, d.Size, maxMetadataSize, errdefs.ErrInvalidArgument)
	}
	b, err := content.FetchAll(ctx, repo.Manifests(), d)
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", d.Digest, classify(r.Registry, err))
	}
	return b, nil
}

// fetchSmallBlob returns a config blob from the store, or downloads,
// verifies and stores it.
func (s *Store) fetchSmallBlob(ctx context.Context, repo *remote.Repository, r Reference, d ocispec.Descriptor, progress func(Progress)) ([]byte, error) {
	if s.exists(d.Digest) {
		report(progress, d, ProgressSkipped)
		return s.readLocal(ctx, d)
	}
	if d.Size > maxMetadataSize {
		return nil, fmt.Errorf("%s is %d bytes, more than %d: %w", d.Digest, d.Size, maxMetadataSize, errdefs.ErrInvalidArgument)
	}
	rc, err := repo.Blobs().Fetch(ctx, d)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", d.Digest, classify(r.Registry, err))
	}
	defer rc.Close()
	b, err := content.ReadAll(trackProgress(rc, d, progress), d)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", d.Digest, classify(r.Registry, err))
	}
	if err := s.put(ctx, d, b); err != nil {
		return nil, err
	}
	report(progress, d, ProgressDone)
	return b, nil
}

// fetchLayer downloads the Wasm layer into the store unless it is there.
// Concurrent calls for one digest share a single download. The bytes are
// verified against the digest while written to ingest/; the first eight are
// checked to be a Wasm header, so a non-Wasm blob is refused early.
func (s *Store) fetchLayer(ctx context.Context, repo *remote.Repository, r Reference, d ocispec.Descriptor, progress func(Progress)) error {
	if s.exists(d.Digest) {
		report(progress, d, ProgressSkipped)
		return nil
	}
	_, err := s.once(ctx, "blob\x00"+d.Digest.String(), func(ctx context.Context) (any, error) {
		if s.exists(d.Digest) {
			report(progress, d, ProgressSkipped)
			return nil, nil
		}
		rc, err := repo.Blobs().Fetch(ctx, d)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", d.Digest, classify(r.Registry, err))
		}
		defer rc.Close()
		body := &wasmHeaderReader{r: trackProgress(rc, d, progress)}
		if err := s.layout.Push(ctx, d, body); err != nil {
			if errors.Is(err, errdef.ErrAlreadyExists) {
				return nil, nil
			}
			s.removeIngest(d.Digest)
			if body.err != nil {
				return nil, fmt.Errorf("%s: %w", d.Digest, body.err)
			}
			return nil, fmt.Errorf("%s: %w", d.Digest, classify(r.Registry, err))
		}
		report(progress, d, ProgressDone)
		return nil, nil
	})
	return err
}

// removeIngest deletes what a failed download of d left in ingest/.
// oras-go v2.7.0's content/oci does not: its ingest clears the named result
// holding the temporary path before the deferred cleanup reads it. Callers
// hold the download of d exclusively (see fetchLayer), so no other
// download's file is touched.
func (s *Store) removeIngest(d digest.Digest) {
	left, _ := filepath.Glob(filepath.Join(s.root, "ingest", d.Encoded()+"_*"))
	for _, f := range left {
		os.Remove(f)
	}
}

// put stores a verified small blob or manifest; already there is fine.
func (s *Store) put(ctx context.Context, d ocispec.Descriptor, b []byte) error {
	if err := s.layout.Push(ctx, d, bytes.NewReader(b)); err != nil && !errors.Is(err, errdef.ErrAlreadyExists) {
		return fmt.Errorf("store %s: %w", d.Digest, classify("", err))
	}
	return nil
}

// wasmHeaderReader fails the read stream as soon as its first eight bytes
// are known not to be a Wasm header (or the stream ends before eight).
type wasmHeaderReader struct {
	r      io.Reader
	header []byte
	err    error
}

func (w *wasmHeaderReader) Read(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	n, err := w.r.Read(p)
	if len(w.header) < 8 {
		w.header = append(w.header, p[:min(n, 8-len(w.header))]...)
		if len(w.header) == 8 {
			if _, kerr := DetectKind(w.header); kerr != nil {
				w.err = fmt.Errorf("layer is not a wasm binary: %w", kerr)
				return 0, w.err
			}
		} else if err == io.EOF {
			w.err = fmt.Errorf("layer of %d bytes is too short for a wasm binary: %w", len(w.header), errdefs.ErrInvalidArgument)
			return 0, w.err
		}
	}
	return n, err
}
