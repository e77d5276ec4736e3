//go:build !(unix || wasip1)

package exchange

import "os"

// fileID returns 0: this platform's FileInfo carries no inode number.
func fileID(os.FileInfo) uint64 { return 0 }
