package runtime

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path"
	"slices"
	"strings"
	"sync"
	"time"
)

// Compiled artifacts live at CacheDir/<fingerprint>/<sha256 of wasm>.<kind>.
// Each file is wasmtime's serialized artifact followed by a trailer:
//
//	payload | magic "WASILETC" | format u32 LE | crc32c(payload) u32 LE |
//	payload length u64 LE
//
// wasmtime rejects truncated or malformed artifacts by itself (verified:
// "failed to parse precompiled artifact as an ELF"), but it trusts the code
// inside a well-formed one, so a flipped bit in machine code could crash the
// process. The trailer's length and CRC-32C (hardware-accelerated, ~1 ms for
// a 10 MB artifact, where SHA-256 takes ~7 ms; it guards against corruption,
// not against someone able to write the cache directory, who could replace
// the binary anyway) are verified before wasmtime sees the file, and
// anything that fails is removed and recompiled. The trailer sits at the end
// so that core modules can be loaded with wasmtime's file deserializer, which
// maps the file instead of copying it (~0.3 ms instead of ~6 ms; wasmtime
// ignores bytes after the ELF image, and TestCacheMemoryAndDisk fails if that
// changes); components are loaded the same way
// (wasmtime_component_deserialize_file). Files are written to a temporary
// name and renamed, so readers see whole files or none, and never changed in
// place: a mapped artifact shrunk or overwritten under a running engine (a
// `cp` or `truncate` over it by hand) would fault in wasmtime's code, which
// is why the cache directory belongs to the node alone.

const artifactFormatVersion = 2

var artifactMagic = []byte("WASILETC")

const artifactTrailerSize = 8 + 4 + 4 + 8

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func (e *Engine) artifactPath(key string, kind Kind) string {
	if e.cacheDir == "" {
		return ""
	}
	return path.Join(e.cacheDir, e.fingerprint, key+"."+kind.String())
}

// ArtifactPath is where the compiled artifact of the wasm binary with the
// given sha256 hex digest and kind lives ("" without a CacheDir). Exposed for
// tests and cache tooling.
func (e *Engine) ArtifactPath(sha256Hex string, kind Kind) string {
	return e.artifactPath(sha256Hex, kind)
}

// verifyArtifact reports whether the artifact at path is whole and
// uncorrupted (trailer and checksum). A missing file is a plain miss; an
// unreadable or invalid one is discarded.
//
// The file is read in chunks into a small buffer, not into one buffer of
// its size (a 10 MB heap allocation and a garbage collection in a
// short-lived `wasilet run`) and not mapped (a file shrinking under the
// mapping would fault, and recovering from that needs runtime/debug, which
// `wasilet run`'s early start must not import: see
// cmd/wasilet/internal/early). The pages read stay in the page cache for
// wasmtime's own mapping of the file, which follows.
func (e *Engine) verifyArtifact(path string) bool {
	err := checkArtifactFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		e.discardArtifact(path)
	}
	return err == nil
}

// artifactChunk is how much of an artifact checkArtifactFile reads at once.
const artifactChunk = 256 << 10

var chunkPool = sync.Pool{New: func() any { return new([artifactChunk]byte) }}

// checkArtifactFile checks the trailer and checksum of the artifact at
// path, reading it in chunks.
func checkArtifactFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	size := fi.Size()
	if size < artifactTrailerSize {
		return fmt.Errorf("artifact truncated: %d bytes", size)
	}
	t := make([]byte, artifactTrailerSize)
	if _, err := f.ReadAt(t, size-artifactTrailerSize); err != nil {
		return fmt.Errorf("artifact trailer: %w", err)
	}
	n, sum, err := checkTrailer(t, size-artifactTrailerSize)
	if err != nil {
		return err
	}
	buf := chunkPool.Get().(*[artifactChunk]byte)
	defer chunkPool.Put(buf)
	crc := uint32(0)
	for off := int64(0); off < n; {
		chunk := buf[:min(int64(artifactChunk), n-off)]
		if _, err := f.ReadAt(chunk, off); err != nil {
			return fmt.Errorf("artifact payload: %w", err)
		}
		crc = crc32.Update(crc, castagnoli, chunk)
		off += int64(len(chunk))
	}
	if crc != sum {
		return errors.New("artifact checksum mismatch")
	}
	return nil
}

// checkTrailer checks the trailer of an artifact whose payload is payloadLen
// bytes and returns the payload length and checksum it records.
func checkTrailer(t []byte, payloadLen int64) (int64, uint32, error) {
	if !bytes.Equal(t[:8], artifactMagic) {
		return 0, 0, errors.New("artifact has no wasilet trailer")
	}
	if v := binary.LittleEndian.Uint32(t[8:12]); v != artifactFormatVersion {
		return 0, 0, fmt.Errorf("artifact format %d, want %d", v, artifactFormatVersion)
	}
	if n := binary.LittleEndian.Uint64(t[16:24]); uint64(payloadLen) != n {
		return 0, 0, fmt.Errorf("artifact payload is %d bytes, trailer says %d", payloadLen, n)
	}
	return payloadLen, binary.LittleEndian.Uint32(t[12:16]), nil
}

func encodeArtifactTrailer(payload []byte) []byte {
	t := make([]byte, artifactTrailerSize)
	copy(t, artifactMagic)
	binary.LittleEndian.PutUint32(t[8:12], artifactFormatVersion)
	binary.LittleEndian.PutUint32(t[12:16], crc32.Checksum(payload, castagnoli))
	binary.LittleEndian.PutUint64(t[16:24], uint64(len(payload)))
	return t
}

func (e *Engine) discardArtifact(path string) {
	e.discarded.Add(1)
	_ = os.Remove(path)
}

// writeArtifact writes payload with its header to path atomically.
func writeArtifact(file string, payload []byte) (retErr error) {
	dir := path.Dir(file)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if retErr != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if _, err := f.Write(payload); err != nil {
		return err
	}
	if _, err := f.Write(encodeArtifactTrailer(payload)); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), file)
}

// PruneCache removes what this engine will never read from CacheDir: the
// directories of other engine fingerprints (artifacts of older wasmtime
// versions or settings) and temporary files left by interrupted writes more
// than an hour old. It returns how many entries it removed. Safe to call
// while the engine is in use; meant for node start-up.
func (e *Engine) PruneCache() (int, error) {
	if e.cacheDir == "" {
		return 0, nil
	}
	entries, err := os.ReadDir(e.cacheDir)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	} else if err != nil {
		return 0, fmt.Errorf("prune compiled cache: %w", err)
	}
	// Both fingerprints of this build are current: an interruptible and an
	// uninterruptible engine may share a CacheDir.
	current := []string{configFingerprint(true), configFingerprint(false)}
	removed := 0
	for _, ent := range entries {
		if !ent.IsDir() || !isFingerprint(ent.Name()) {
			continue // not ours: leave it
		}
		dir := path.Join(e.cacheDir, ent.Name())
		if !slices.Contains(current, ent.Name()) {
			if err := os.RemoveAll(dir); err != nil {
				return removed, fmt.Errorf("prune compiled cache: %w", err)
			}
			removed++
			continue
		}
		tmps := tmpFiles(dir)
		more := tmpFiles(path.Join(dir, "files"))
		tmps = append(tmps, more...)
		for _, tmp := range tmps {
			if fi, err := os.Stat(tmp); err == nil && time.Since(fi.ModTime()) > time.Hour {
				if os.Remove(tmp) == nil {
					removed++
				}
			}
		}
	}
	return removed, nil
}

func isFingerprint(s string) bool {
	if len(s) != 16 {
		return false
	}
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// tmpFiles lists the paths of the .tmp-* files in dir (interrupted writes).
func tmpFiles(dir string) []string {
	entries, _ := os.ReadDir(dir)
	var out []string
	for _, ent := range entries {
		if strings.HasPrefix(ent.Name(), ".tmp-") {
			out = append(out, path.Join(dir, ent.Name()))
		}
	}
	return out
}
