package pods

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestFileWatchListsAndResolves(t *testing.T) {
	var fw fileWatch
	defer fw.close()
	dir := t.TempDir()
	f, err := os.Create(filepath.Join(dir, "held"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fds, err := fw.fds()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(fds, int(f.Fd())) {
		t.Fatalf("fds %v lack the open file's %d", fds, f.Fd())
	}
	if slices.Contains(fds, int(fw.dir.Fd())) {
		t.Errorf("fds %v include the watch's own directory descriptor", fds)
	}
	target, ok := fw.target(int(f.Fd()))
	if !ok || string(target) != f.Name() {
		t.Errorf("target %q, %v; want %q", target, ok, f.Name())
	}
	dirs := map[string]int{dir: 1, dir + "x": 2, filepath.Dir(dir): 3}
	if i, ok := holderOf(target, dirs); !ok || i != 1 {
		t.Errorf("holderOf(%q) = %d, %v; want the longest mount, %s (1)", target, i, ok, dir)
	}
	if i, ok := holderOf([]byte(dir), dirs); !ok || i != 1 {
		t.Errorf("holderOf(the mount itself) = %d, %v", i, ok)
	}
	if _, ok := holderOf([]byte("/elsewhere/file"), dirs); ok {
		t.Error("holderOf found a holder for a path outside every mount")
	}
	if n := fw.count(); n != -1 && n < len(fds)-1 {
		t.Errorf("count %d, but %d descriptors listed", n, len(fds))
	}
	// A second listing (the directory is read again from the start) sees a
	// closed descriptor gone.
	fd := int(f.Fd())
	f.Close()
	if fds, err = fw.fds(); err != nil || slices.Contains(fds, fd) {
		t.Errorf("after close: %v, %v still lists %d", fds, err, fd)
	}
}

func TestAtoi(t *testing.T) {
	for in, want := range map[string]int{"0\x00": 0, "17\x00\x00": 17, "1234": 1234} {
		if got, ok := atoi([]byte(in)); !ok || got != want {
			t.Errorf("atoi(%q) = %d, %v", in, got, ok)
		}
	}
	for _, in := range []string{".\x00", "..\x00", "\x00", "1a"} {
		if _, ok := atoi([]byte(in)); ok {
			t.Errorf("atoi(%q) accepted", in)
		}
	}
}
