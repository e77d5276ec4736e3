package exchange

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
)

// File and directory names of the protocol.
const (
	// InFile is the request the proxy writes in a request directory.
	InFile = "in.in"
	// OutFile is the device list the handler writes next to InFile.
	OutFile = "out.out"
	// AvailabilityFile, at the top of the exchange directory only, takes
	// debugEcho's devices offline while it contains OfflineText.
	AvailabilityFile = "debug-echo-availability.txt"
	// DefaultDir is the exchange directory of the demo, a hostPath volume
	// mounted at the same path in the handler's pod.
	DefaultDir = "/tmp/wde-dir"
	// OfflineText, anywhere in AvailabilityFile, means offline.
	OfflineText = "OFFLINE"
	// RequestIDPrefix starts every RequestID.
	RequestIDPrefix = "req-"
)

// Offline reports whether content, the content of AvailabilityFile, takes
// the devices offline: whether it contains OfflineText anywhere (case
// matters), as the original handler checked. Empty content is online.
func Offline(content []byte) bool {
	return bytes.Contains(content, []byte(OfflineText))
}

// RequestID names the sub-directory of a request whose in.in content is in:
// RequestIDPrefix followed by the first 12 hex digits of the SHA-256 of in.
// Equal requests get equal ids, so the proxy must marshal a request the same
// way every time (encoding/json sorts object keys).
func RequestID(in []byte) string {
	sum := sha256.Sum256(in)
	return RequestIDPrefix + hex.EncodeToString(sum[:6])
}

// RequestDirs returns the request directories of the exchange directory dir:
// dir itself if it holds an InFile, then every immediate sub-directory that
// holds one, in name order (dir, being a prefix of the others, comes first).
// Sub-directories whose name starts with a dot are skipped, and so are
// symbolic links. An error reading dir is returned (wrapping fs.ErrNotExist
// when dir is missing); a sub-directory that vanishes meanwhile is left out.
func RequestDirs(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var dirs []string
	if hasInput(dir) {
		dirs = append(dirs, dir)
	}
	for _, e := range entries {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		sub := filepath.Join(dir, e.Name())
		if hasInput(sub) {
			dirs = append(dirs, sub)
		}
	}
	return dirs, nil // os.ReadDir sorts by name
}

func hasInput(dir string) bool {
	fi, err := os.Stat(filepath.Join(dir, InFile))
	return err == nil && fi.Mode().IsRegular()
}

// WriteFileAtomic replaces the file at path with data: it writes a
// temporary file in the same directory (named "."+base+".tmp-" and random
// digits, mode 0644 before the umask) and renames it over path, so a
// concurrent reader sees either the old content or the new one. The
// temporary file is removed on failure. It does not sync: the point is
// atomicity for readers, not durability across a host crash.
func WriteFileAtomic(path string, data []byte) (retErr error) {
	dir, base := filepath.Split(path)
	if base == "" {
		return fmt.Errorf("write %s: not a file name", path)
	}
	var (
		f   *os.File
		tmp string
		err error
	)
	for range 100 {
		tmp = filepath.Join(dir, fmt.Sprintf(".%s.tmp-%d", base, rand.Uint32()))
		f, err = os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if !errors.Is(err, fs.ErrExist) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer func() {
		if retErr != nil {
			_ = os.Remove(tmp)
		}
	}()
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
