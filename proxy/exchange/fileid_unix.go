//go:build unix || wasip1

package exchange

import (
	"os"
	"syscall"
)

// fileID returns the file's inode number, or 0 if the platform has none. An
// atomic replacement (a rename over the file) changes it even when the size
// and the modification time, at the file system's granularity, stay equal.
func fileID(fi os.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Ino)
	}
	return 0
}
