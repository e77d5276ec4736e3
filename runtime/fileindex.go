package runtime

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path"
	"strings"
	"syscall"
)

// The file index maps a .wasm file's identity to the digest and kind of its
// content, so LoadFile can find a cached artifact without reading the file:
// CacheDir/<fingerprint>/files/<sha256 of the absolute path, 32 hex> holds
// one line "v1 <dev> <ino> <size> <mtime ns> <ctime ns> <kind> <sha256 hex>".
// A file whose identity differs in anything is read and hashed again; the
// change time (ctime) moves on every write, rename over or metadata change
// and cannot be set by a program, so touch -d or a copy keeping times does
// not fool it. Entries are written to a temporary name and renamed.

// fileID is what identifies a file's content without reading it.
type fileID struct {
	dev, ino     uint64
	size         int64
	mtime, ctime int64 // nanoseconds
}

func identify(f *os.File) (fileID, error) {
	fi, err := f.Stat()
	if err != nil {
		return fileID{}, err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || !fi.Mode().IsRegular() {
		return fileID{}, fmt.Errorf("%s: not a regular file", f.Name())
	}
	return fileID{
		dev: uint64(st.Dev), ino: st.Ino, size: st.Size,
		mtime: st.Mtim.Nano(), ctime: st.Ctim.Nano(),
	}, nil
}

func (id fileID) String() string {
	return fmt.Sprintf("v1 %d %d %d %d %d", id.dev, id.ino, id.size, id.mtime, id.ctime)
}

// fileIndexPath is the index entry of file ("" without a CacheDir).
func (e *Engine) fileIndexPath(file string) string {
	if e.cacheDir == "" {
		return ""
	}
	abs, err := absPath(file)
	if err != nil {
		return ""
	}
	sum := sha256.Sum256([]byte(abs))
	return path.Join(e.cacheDir, e.fingerprint, "files", hex.EncodeToString(sum[:16]))
}

// absPath is filepath.Abs on Linux. This package joins paths with package
// path, not path/filepath (wasilet runs on Linux only): importing
// path/filepath would hold `wasilet run`'s early start behind most of the
// binary's package initialization (see cmd/wasilet/internal/early).
func absPath(file string) (string, error) {
	if path.IsAbs(file) {
		return path.Clean(file), nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	return path.Join(wd, file), nil
}

// readFileIndex returns the kind and key recorded for id at index.
func readFileIndex(index string, id fileID) (Kind, string, bool) {
	b, err := os.ReadFile(index)
	if err != nil || len(b) > 512 {
		return 0, "", false
	}
	line := strings.TrimSuffix(string(b), "\n")
	rest, ok := strings.CutPrefix(line, id.String()+" ")
	if !ok {
		return 0, "", false
	}
	kindName, key, ok := strings.Cut(rest, " ")
	if !ok || len(key) != 2*sha256.Size {
		return 0, "", false
	}
	if _, err := hex.DecodeString(key); err != nil || strings.ToLower(key) != key {
		return 0, "", false
	}
	for _, k := range []Kind{KindModule, KindComponent} {
		if k.String() == kindName {
			return k, key, true
		}
	}
	return 0, "", false
}

// writeFileIndex records id → kind, key at index; failures only cost the
// next LoadFile a read and a hash.
func writeFileIndex(index string, id fileID, kind Kind, key string) {
	dir := path.Dir(index)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return
	}
	f, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return
	}
	_, werr := fmt.Fprintf(f, "%s %s %s\n", id, kind, key)
	if cerr := f.Close(); werr != nil || cerr != nil {
		os.Remove(f.Name())
		return
	}
	if err := os.Rename(f.Name(), index); err != nil {
		os.Remove(f.Name())
	}
}
