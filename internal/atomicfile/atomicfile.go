package atomicfile

import (
	"os"
	"path"
	"time"
)

// WriteFile writes data with permissions perm to file through a temporary
// file (.<name>.tmp-*) in the same directory and a rename. The directory must
// exist. Errors are the os package's, which name the file; callers wrap them
// with what they were writing.
func WriteFile(file string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(path.Dir(file), "."+path.Base(file)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after a successful rename
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, file)
}

// SetAside renames a file that could not be read (corrupt state) to
// <path>.corrupt-<UTC time>, so that it is kept for inspection and the next
// write starts afresh. It returns the new path.
func SetAside(path string) (string, error) {
	aside := path + ".corrupt-" + time.Now().UTC().Format("20060102T150405.000000000Z")
	if err := os.Rename(path, aside); err != nil {
		return "", err
	}
	return aside, nil
}
