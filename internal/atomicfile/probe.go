package atomicfile

import (
	"errors"
	"fmt"
	"os"
)

// ProbeWritable creates, writes and removes a small file in dir: a full or
// read-only filesystem fails it.
func ProbeWritable(dir string) error {
	f, err := os.CreateTemp(dir, ".probe-*")
	if err != nil {
		return fmt.Errorf("not writable: %w", err)
	}
	_, werr := f.Write([]byte("ok"))
	cerr := f.Close()
	os.Remove(f.Name())
	if err := errors.Join(werr, cerr); err != nil {
		return fmt.Errorf("not writable: %w", err)
	}
	return nil
}
