package runtime

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"runtime/debug"
	"syscall"
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
	return filepath.Join(e.cacheDir, e.fingerprint, key+"."+kind.String())
}

// ArtifactPath is where the compiled artifact of the wasm binary with the
// given sha256 hex digest and kind lives ("" without a CacheDir). Exposed for
// tests and cache tooling.
func (e *Engine) ArtifactPath(sha256Hex string, kind Kind) string {
	return e.artifactPath(sha256Hex, kind)
}

// readArtifact returns the verified payload of the artifact at path and a
// function that releases it (call it once the payload is no longer used). A
// missing file is a plain miss; an unreadable or invalid one is discarded.
//
// The file is mapped rather than read: the check reads every byte either
// way, but a mapping costs no 10 MB heap buffer and copy (page faults on
// fresh memory and a garbage collection in a short-lived `wasilet run`), and
// it leaves the pages in the page cache that wasmtime's own mapping of the
// same file uses next.
func (e *Engine) readArtifact(path string) ([]byte, func(), bool) {
	b, release, err := mapFile(path)
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			e.discardArtifact(path)
		}
		return nil, nil, false
	}
	payload, err := decodeMapped(b)
	if err != nil {
		release()
		e.discardArtifact(path)
		return nil, nil, false
	}
	return payload, release, true
}

// mapFile maps path read-only. Cache files are never written in place
// (written under a temporary name and renamed; removed by unlinking), so
// the mapping cannot shrink under the reader.
func mapFile(path string) ([]byte, func(), error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	size := fi.Size()
	if size < artifactTrailerSize || size != int64(int(size)) {
		return nil, nil, fmt.Errorf("artifact %s: %d bytes", path, size)
	}
	b, err := syscall.Mmap(int(f.Fd()), 0, int(size), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return nil, nil, fmt.Errorf("map %s: %w", path, err)
	}
	return b, func() { _ = syscall.Munmap(b) }, nil
}

// decodeMapped is decodeArtifact on mapped memory: should the file shrink
// after all (someone truncating the cache by hand), the fault is an invalid
// artifact instead of a crash.
func decodeMapped(b []byte) (payload []byte, err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			payload, err = nil, fmt.Errorf("artifact unreadable: %v", r)
		}
	}()
	return decodeArtifact(b)
}

func decodeArtifact(b []byte) ([]byte, error) {
	if len(b) < artifactTrailerSize {
		return nil, fmt.Errorf("artifact truncated: %d bytes", len(b))
	}
	payload, t := b[:len(b)-artifactTrailerSize], b[len(b)-artifactTrailerSize:]
	if !bytes.Equal(t[:8], artifactMagic) {
		return nil, errors.New("artifact has no wasilet trailer")
	}
	if v := binary.LittleEndian.Uint32(t[8:12]); v != artifactFormatVersion {
		return nil, fmt.Errorf("artifact format %d, want %d", v, artifactFormatVersion)
	}
	if n := binary.LittleEndian.Uint64(t[16:24]); uint64(len(payload)) != n {
		return nil, fmt.Errorf("artifact payload is %d bytes, trailer says %d", len(payload), n)
	}
	if sum := crc32.Checksum(payload, castagnoli); sum != binary.LittleEndian.Uint32(t[12:16]) {
		return nil, errors.New("artifact checksum mismatch")
	}
	return payload, nil
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
func writeArtifact(path string, payload []byte) (retErr error) {
	dir := filepath.Dir(path)
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
	return os.Rename(f.Name(), path)
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
	removed := 0
	for _, ent := range entries {
		if !ent.IsDir() || !isFingerprint(ent.Name()) {
			continue // not ours: leave it
		}
		dir := filepath.Join(e.cacheDir, ent.Name())
		if ent.Name() != e.fingerprint {
			if err := os.RemoveAll(dir); err != nil {
				return removed, fmt.Errorf("prune compiled cache: %w", err)
			}
			removed++
			continue
		}
		tmps, _ := filepath.Glob(filepath.Join(dir, ".tmp-*"))
		more, _ := filepath.Glob(filepath.Join(dir, "files", ".tmp-*"))
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
