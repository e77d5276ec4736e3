package runtime

import (
	"os"
	"time"
)

// Test hooks for the external test package.

func WriteArtifactForTest(path string, payload []byte) error { return writeArtifact(path, payload) }

func CheckStoreLayoutForTest() error { return checkStoreLayout() }

func CheckMemoryLayoutForTest() error { return checkMemoryLayout() }

// CountFileReadsForTest counts LoadFile's reads of .wasm files until the
// returned function restores the reader.
func CountFileReadsForTest(n *int) func() {
	orig := readAll
	readAll = func(f *os.File) ([]byte, error) { *n++; return orig(f) }
	return func() { readAll = orig }
}

// WaitCacheWritesForTest waits until the artifacts of e's compiles so far
// are written.
func WaitCacheWritesForTest(e *Engine) { e.writes.Wait() }

// WaitBackgroundForTest waits until e's optimizer has ended a job for
// every baseline compile.
func WaitBackgroundForTest(e *Engine) {
	for {
		if e.optimized.Load() >= e.baselineCompiles.Load() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}
