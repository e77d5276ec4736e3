package runtime

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Compiled artifacts live at CacheDir/<fingerprint>/<sha256 of wasm>.<kind>.
// Each file is a header followed by wasmtime's serialized artifact:
//
//	magic "WASILETC" | format u32 LE | reserved u32 | payload length u64 LE |
//	sha256(payload) [32] | payload
//
// wasmtime's deserialization trusts its input (a crafted artifact is native
// code), and a truncated or bit-flipped one must not reach it: the length and
// checksum are verified first, and anything that fails is removed and
// recompiled. Files are written to a temporary name and renamed, so readers
// see whole files or none.

const artifactFormatVersion = 1

var artifactMagic = []byte("WASILETC")

const artifactHeaderSize = 8 + 4 + 4 + 8 + sha256.Size

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

// readArtifact returns the verified payload of the artifact at path. A
// missing file is a plain miss; an unreadable or invalid one is discarded.
func (e *Engine) readArtifact(path string) ([]byte, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			e.discardArtifact(path)
		}
		return nil, false
	}
	payload, err := decodeArtifact(b)
	if err != nil {
		e.discardArtifact(path)
		return nil, false
	}
	return payload, true
}

func decodeArtifact(b []byte) ([]byte, error) {
	if len(b) < artifactHeaderSize {
		return nil, fmt.Errorf("artifact truncated: %d bytes", len(b))
	}
	if !bytes.Equal(b[:8], artifactMagic) {
		return nil, errors.New("artifact has no wasilet header")
	}
	if v := binary.LittleEndian.Uint32(b[8:12]); v != artifactFormatVersion {
		return nil, fmt.Errorf("artifact format %d, want %d", v, artifactFormatVersion)
	}
	n := binary.LittleEndian.Uint64(b[16:24])
	payload := b[artifactHeaderSize:]
	if uint64(len(payload)) != n {
		return nil, fmt.Errorf("artifact payload is %d bytes, header says %d", len(payload), n)
	}
	if sum := sha256.Sum256(payload); !bytes.Equal(sum[:], b[24:artifactHeaderSize]) {
		return nil, errors.New("artifact checksum mismatch")
	}
	return payload, nil
}

func encodeArtifactHeader(payload []byte) []byte {
	h := make([]byte, artifactHeaderSize)
	copy(h, artifactMagic)
	binary.LittleEndian.PutUint32(h[8:12], artifactFormatVersion)
	binary.LittleEndian.PutUint64(h[16:24], uint64(len(payload)))
	sum := sha256.Sum256(payload)
	copy(h[24:], sum[:])
	return h
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
	if _, err := f.Write(encodeArtifactHeader(payload)); err != nil {
		return err
	}
	if _, err := f.Write(payload); err != nil {
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
