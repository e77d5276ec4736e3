package oci

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"

	"github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/singleflight"
	"oras.land/oras-go/v2/content"
	orasoci "oras.land/oras-go/v2/content/oci"
	"oras.land/oras-go/v2/errdef"
)

// Store is a content-addressed local store of Wasm artifacts: an OCI image
// layout (oras-go's content/oci) under its root directory, with
//
//	root/oci-layout, root/index.json   the layout and its references
//	root/blobs/sha256/<hex>             manifests, configs and Wasm layers
//	root/ingest/                        downloads in progress
//	root/wasilet.lock                   held while a process has the store open
//
// Every blob is written to ingest/, verified against its digest and size,
// then renamed into blobs/ read-only, so blobs/ never holds a partial or
// unverified file. References ("HOST/REPO:TAG" and "HOST/REPO@DIGEST") are
// recorded in index.json, so [Store.Resolve] works offline. One process at
// a time may open a store (NewStore fails with errdefs.ErrUnavailable
// otherwise); within it, a Store is safe for concurrent use.
type Store struct {
	root   string
	layout *orasoci.Store
	lock   *os.File

	// mu is held shared by Pull and Resolve and exclusively by GC, so GC
	// never sees a blob that a pull has stored but not yet referenced.
	mu     sync.RWMutex
	closed bool
	flight singleflight.Group
}

// NewStore opens (creating if needed) the store under root. The node uses
// <data-dir>/oci; the CLI uses [DefaultStoreDir] unless told otherwise.
func NewStore(root string) (*Store, error) {
	s, err := openStore(root)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", root, err)
	}
	return s, nil
}

func openStore(root string) (_ *Store, retErr error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return nil, err
	}
	lock, err := os.OpenFile(filepath.Join(abs, "wasilet.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	defer func() {
		if retErr != nil {
			lock.Close()
		}
	}()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("in use by another process: %w", errdefs.ErrUnavailable)
		}
		return nil, fmt.Errorf("lock: %w", err)
	}
	// Nothing else has the store open: whatever is in ingest/ is left over
	// from a process that died mid-download.
	if err := os.RemoveAll(filepath.Join(abs, "ingest")); err != nil {
		return nil, fmt.Errorf("clean ingest: %w", err)
	}
	layout, err := orasoci.NewWithContext(context.Background(), abs)
	if err != nil {
		return nil, fmt.Errorf("%v: %w", err, errdefs.ErrDataLoss)
	}
	return &Store{root: abs, layout: layout, lock: lock}, nil
}

// DefaultStoreDir is the store the CLI verbs use by default:
// $XDG_CACHE_HOME/wasilet/oci or ~/.cache/wasilet/oci.
func DefaultStoreDir() (string, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("default store directory: %w", err)
	}
	return filepath.Join(dir, "wasilet", "oci"), nil
}

// Root returns the store's directory.
func (s *Store) Root() string { return s.root }

// Close releases the store for other processes. Artifacts already returned
// stay readable by path.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	return s.lock.Close()
}

// rlock takes the shared lock, failing on a closed store.
func (s *Store) rlock() error {
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return fmt.Errorf("store %s is closed: %w", s.root, errdefs.ErrFailedPrecondition)
	}
	return nil
}

// blobPath returns where a blob lives in the store.
func (s *Store) blobPath(d digest.Digest) string {
	return filepath.Join(s.root, ocispec.ImageBlobsDir, d.Algorithm().String(), d.Encoded())
}

// Resolve returns the artifact a reference was last pulled as, from the store
// alone (no network). A reference never pulled, or whose content is gone,
// gives an error matching [ErrNotPresent] (errdefs.IsNotFound). For an index,
// the first platform of [DefaultPlatforms] present in the store is used.
func (s *Store) Resolve(ctx context.Context, ref string) (*Artifact, error) {
	r, err := ParseReference(ref)
	if err != nil {
		return nil, err
	}
	if err := s.rlock(); err != nil {
		return nil, err
	}
	defer s.mu.RUnlock()
	return s.resolveLocal(ctx, r, nil, false)
}

// resolveLocal finds r in the store; see load for prefs and strict.
func (s *Store) resolveLocal(ctx context.Context, r Reference, prefs []string, strict bool) (*Artifact, error) {
	top, err := s.layout.Resolve(ctx, r.String())
	if err != nil {
		if errors.Is(err, errdef.ErrNotFound) {
			return nil, fmt.Errorf("resolve %s: %w", r, ErrNotPresent)
		}
		return nil, fmt.Errorf("resolve %s: %w", r, err)
	}
	return s.load(ctx, r, top, prefs, strict)
}

// maxMetadataSize bounds manifests, indexes and configs read from anywhere.
const maxMetadataSize = 4 << 20

// readLocal reads a small blob from the store, verified.
func (s *Store) readLocal(ctx context.Context, d ocispec.Descriptor) ([]byte, error) {
	if d.Size > maxMetadataSize {
		return nil, fmt.Errorf("%s is %d bytes, more than the %d allowed for metadata: %w", d.Digest, d.Size, maxMetadataSize, errdefs.ErrInvalidArgument)
	}
	b, err := content.FetchAll(ctx, s.layout, d)
	switch {
	case err == nil:
		return b, nil
	case errors.Is(err, errdef.ErrNotFound) || errors.Is(err, os.ErrNotExist):
		return nil, fmt.Errorf("%s: %w", d.Digest, ErrNotPresent)
	case errors.Is(err, content.ErrMismatchedDigest) || errors.Is(err, content.ErrTrailingData) ||
		errors.Is(err, io.ErrUnexpectedEOF):
		// Damaged on disk after it was verified: drop it so the next pull
		// fetches it again instead of failing on it forever.
		if rmErr := os.Remove(s.blobPath(d.Digest)); rmErr != nil && !os.IsNotExist(rmErr) {
			return nil, fmt.Errorf("%s is damaged in the store (%v) and cannot be removed: %w", d.Digest, err, rmErr)
		}
		return nil, fmt.Errorf("%s was damaged in the store (%v) and was removed: %w", d.Digest, err, ErrNotPresent)
	}
	return nil, classify("", err)
}

// exists reports whether a blob is in the store.
func (s *Store) exists(d digest.Digest) bool {
	if d.Validate() != nil {
		return false
	}
	_, err := os.Stat(s.blobPath(d))
	return err == nil
}

// load assembles an artifact from the store alone; anything missing is
// ErrNotPresent. For an index, strict picks the platform by prefs alone (a
// pull: the preferred platform or nothing); otherwise the first preferred
// platform that is stored (Resolve).
func (s *Store) load(ctx context.Context, r Reference, top ocispec.Descriptor, prefs []string, strict bool) (*Artifact, error) {
	b, err := s.readLocal(ctx, top)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", r, err)
	}
	mt := top.MediaType
	if !isIndex(mt) && !isManifest(mt) {
		mt = sniffMediaType(b)
	}
	a := &Artifact{
		Ref:        r.String(),
		Digest:     top.Digest,
		RepoDigest: r.WithDigest(top.Digest),
		MediaType:  mt,
	}
	manifest := top
	manifest.MediaType = mt
	mb := b
	switch {
	case isIndex(mt):
		var skip func(ocispec.Descriptor) bool
		if !strict {
			skip = func(d ocispec.Descriptor) bool { return !s.exists(d.Digest) }
		}
		child, err := selectPlatform(r.String(), mt, b, prefs, skip)
		if err != nil {
			var ue *UnsupportedError
			if errors.As(err, &ue) {
				return nil, fmt.Errorf("load %s: no wasm platform of the index is stored: %w", r, ErrNotPresent)
			}
			return nil, fmt.Errorf("load %s: %w", r, err)
		}
		manifest = child
		a.Platform = child.Platform
		if mb, err = s.readLocal(ctx, child); err != nil {
			return nil, fmt.Errorf("load %s: %w", r, err)
		}
	case isManifest(mt):
	default:
		return nil, &UnsupportedError{Ref: r.String(), ManifestMediaType: top.MediaType}
	}
	m, f, err := classifyManifest(r.String(), manifest.MediaType, mb)
	if err != nil {
		return nil, err
	}
	cb, err := s.readLocal(ctx, m.Config)
	if err != nil {
		return nil, fmt.Errorf("load %s: config: %w", r, err)
	}
	p, err := configPlatform(r.String(), f, cb)
	if err != nil {
		return nil, err
	}
	if a.Platform == nil {
		a.Platform = p
	}
	layer := m.Layers[0]
	path := s.blobPath(layer.Digest)
	kind, err := readKind(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("load %s: layer %s: %w", r, layer.Digest, ErrNotPresent)
		}
		return nil, fmt.Errorf("load %s: layer %s: %w", r, layer.Digest, err)
	}
	a.Manifest = manifest
	a.Format = f.name
	a.ConfigMediaType = m.Config.MediaType
	a.Config = m.Config
	a.Layer = layer
	a.Kind = kind
	a.Path = path
	a.Annotations = m.Annotations
	return a, nil
}

// readKind reads the Wasm header of a stored layer.
func readKind(path string) (Kind, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	var h [8]byte
	if _, err := io.ReadFull(f, h[:]); err != nil {
		return "", fmt.Errorf("read wasm header: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	return DetectKind(h[:])
}

// Image is one artifact recorded in the store.
type Image struct {
	// Refs are the references that resolve to it (tags and repo digests).
	Refs []string
	// Digest is the manifest (or index) digest the references name.
	Digest digest.Digest
	// Size is the bytes of its manifests, config and Wasm layer in the
	// store, 0 if part of it is missing.
	Size int64
}

// List returns the artifacts recorded in the store, sorted by digest.
func (s *Store) List(ctx context.Context) ([]Image, error) {
	if err := s.rlock(); err != nil {
		return nil, err
	}
	defer s.mu.RUnlock()
	byDigest := map[digest.Digest]*Image{}
	refs, err := s.refs(ctx)
	if err != nil {
		return nil, err
	}
	for ref, desc := range refs {
		img, ok := byDigest[desc.Digest]
		if !ok {
			img = &Image{Digest: desc.Digest}
			if r, err := ParseReference(ref); err == nil {
				if a, err := s.load(ctx, r, desc, nil, false); err == nil {
					img.Size = a.Layer.Size + a.Config.Size + a.Manifest.Size
					if a.Manifest.Digest != desc.Digest {
						img.Size += desc.Size
					}
				}
			}
			byDigest[desc.Digest] = img
		}
		img.Refs = append(img.Refs, ref)
	}
	out := make([]Image, 0, len(byDigest))
	for _, img := range byDigest {
		slices.Sort(img.Refs)
		out = append(out, *img)
	}
	slices.SortFunc(out, func(a, b Image) int { return strings.Compare(string(a.Digest), string(b.Digest)) })
	return out, nil
}

// refs returns the named references of the layout (not the bare digests
// oras-go records for every manifest).
func (s *Store) refs(ctx context.Context) (map[string]ocispec.Descriptor, error) {
	var names []string
	if err := s.layout.Tags(ctx, "", func(tags []string) error {
		names = append(names, tags...)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("list references: %w", err)
	}
	out := map[string]ocispec.Descriptor{}
	for _, n := range names {
		if !strings.Contains(n, "/") {
			continue // a bare digest
		}
		d, err := s.layout.Resolve(ctx, n)
		if err != nil {
			return nil, fmt.Errorf("list references: resolve %s: %w", n, err)
		}
		out[n] = d
	}
	return out, nil
}

// Remove forgets references (as given to Pull or listed by [Store.List]).
// The content stays until a [Store.GC] finds nothing else reaching it; note
// that pulling a tag records the repo digest reference too. Removing a
// reference the store does not have is not an error.
func (s *Store) Remove(ctx context.Context, refs ...string) error {
	if err := s.rlock(); err != nil {
		return err
	}
	defer s.mu.RUnlock()
	for _, ref := range refs {
		r, err := ParseReference(ref)
		if err != nil {
			return err
		}
		if err := s.layout.Untag(ctx, r.String()); err != nil && !errors.Is(err, errdef.ErrNotFound) {
			return fmt.Errorf("remove %s: %w", r, err)
		}
	}
	return nil
}

// GCStats says what a garbage collection removed.
type GCStats struct {
	// RemovedRefs are the references dropped because keep returned false.
	RemovedRefs []string
	// RemovedBlobs and RemovedBytes count the blob files deleted.
	RemovedBlobs int
	RemovedBytes int64
}

// GC removes from the store every blob that no reference reaches. If keep is
// not nil, it is asked first about each reference (with the manifest or
// index digest it names) and references it returns false for are removed, so
// a node passes "is an image of a pod on this node". Leftover downloads in
// ingest/ are removed too. GC waits for pulls in flight and blocks new ones
// while it runs.
func (s *Store) GC(ctx context.Context, keep func(ref string, d digest.Digest) bool) (GCStats, error) {
	var st GCStats
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return st, fmt.Errorf("gc: store %s is closed: %w", s.root, errdefs.ErrFailedPrecondition)
	}
	if keep != nil {
		refs, err := s.refs(ctx)
		if err != nil {
			return st, fmt.Errorf("gc: %w", err)
		}
		for ref, d := range refs {
			if keep(ref, d.Digest) {
				continue
			}
			if err := s.layout.Untag(ctx, ref); err != nil {
				return st, fmt.Errorf("gc: remove %s: %w", ref, err)
			}
			st.RemovedRefs = append(st.RemovedRefs, ref)
		}
		slices.Sort(st.RemovedRefs)
	}
	before := s.blobs()
	if err := s.layout.GC(ctx); err != nil {
		return st, fmt.Errorf("gc: %w", err)
	}
	if err := s.layout.SaveIndex(); err != nil {
		return st, fmt.Errorf("gc: save index: %w", err)
	}
	if err := os.RemoveAll(filepath.Join(s.root, "ingest")); err != nil {
		return st, fmt.Errorf("gc: clean ingest: %w", err)
	}
	after := s.blobs()
	for d, size := range before {
		if _, ok := after[d]; !ok {
			st.RemovedBlobs++
			st.RemovedBytes += size
		}
	}
	return st, nil
}

// blobs maps every blob file to its size.
func (s *Store) blobs() map[string]int64 {
	out := map[string]int64{}
	dir := filepath.Join(s.root, ocispec.ImageBlobsDir)
	algs, _ := os.ReadDir(dir)
	for _, alg := range algs {
		entries, _ := os.ReadDir(filepath.Join(dir, alg.Name()))
		for _, e := range entries {
			if info, err := e.Info(); err == nil && info.Mode().IsRegular() {
				out[alg.Name()+":"+e.Name()] = info.Size()
			}
		}
	}
	return out
}
