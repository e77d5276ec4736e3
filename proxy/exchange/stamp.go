package exchange

import "os"

// Stamp identifies a version of an exchange file without reading it: both
// sides replace files by renaming a new one over them, so the inode tells a
// rewrite even where timestamps are coarse. The zero Stamp is a missing file.
type Stamp struct {
	Exists bool
	Mod    int64 // UnixNano
	Size   int64
	ID     uint64 // inode, or 0 where the platform has none
}

// StatFile returns the Stamp of path (zero when it cannot be stat'ed).
func StatFile(path string) Stamp {
	fi, err := os.Stat(path)
	if err != nil {
		return Stamp{}
	}
	return StampOf(fi)
}

// StampOf is the Stamp of an existing file.
func StampOf(fi os.FileInfo) Stamp {
	return Stamp{Exists: true, Mod: fi.ModTime().UnixNano(), Size: fi.Size(), ID: fileID(fi)}
}
