package exchange_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/wasilet/wasilet/proxy/exchange"
)

func TestOffline(t *testing.T) {
	for content, want := range map[string]bool{
		"":             false,
		"ONLINE":       false,
		"offline":      false, // case matters, as in the original
		"OFFLINE":      true,
		"OFFLINE\n":    true,
		"  OFFLINE  ":  true,
		"now OFFLINE!": true, // the original looks for the word anywhere
	} {
		if got := exchange.Offline([]byte(content)); got != want {
			t.Errorf("Offline(%q) = %v, want %v", content, got, want)
		}
	}
}

func TestRequestID(t *testing.T) {
	for in, want := range map[string]string{
		`{"descriptions":["foo0"]}`:        "req-d48198dfba4a",
		`{"descriptions":["bar0","bar1"]}`: "req-c17fd9f7de5c",
	} {
		if got := exchange.RequestID([]byte(in)); got != want {
			t.Errorf("RequestID(%s) = %s, want %s", in, got, want)
		}
	}
}

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, exchange.OutFile)
	for _, content := range []string{"first", "second, longer", ""} {
		if err := exchange.WriteFileAtomic(path, []byte(content)); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(path)
		if err != nil || string(b) != content {
			t.Fatalf("read back %q, %v; want %q", b, err, content)
		}
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm()&0o044 == 0 {
		t.Errorf("mode %v: not readable by others (the other side may run as another user)", fi.Mode())
	}
	assertOnly(t, dir, exchange.OutFile)

	// A failure leaves nothing behind.
	if err := exchange.WriteFileAtomic(filepath.Join(dir, "missing", "f"), []byte("x")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("write into a missing directory: %v, want ErrNotExist", err)
	}
	if err := os.Mkdir(filepath.Join(dir, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := exchange.WriteFileAtomic(filepath.Join(dir, "d"), []byte("x")); err == nil {
		t.Error("writing over a directory succeeded")
	}
	assertOnly(t, dir, "d", exchange.OutFile)
}

// TestWriteFileAtomicReaders has a reader see only whole contents while a
// writer replaces the file.
func TestWriteFileAtomicReaders(t *testing.T) {
	path := filepath.Join(t.TempDir(), exchange.InFile)
	a, b := strings.Repeat("a", 64<<10), strings.Repeat("b", 32<<10)
	if err := exchange.WriteFileAtomic(path, []byte(a)); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			c := a
			if i%2 == 1 {
				c = b
			}
			if err := exchange.WriteFileAtomic(path, []byte(c)); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	for range 500 {
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if s := string(got); s != a && s != b {
			t.Fatalf("read a mixed or partial file of %d bytes", len(got))
		}
	}
	close(stop)
	wg.Wait()
}

func TestRequestDirs(t *testing.T) {
	dir := t.TempDir()
	mk := func(rel string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Join(dir, rel), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	put := func(rel string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, rel), []byte(`{"descriptions":[]}`), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := exchange.RequestDirs(dir)
	if err != nil || len(got) != 0 {
		t.Fatalf("empty directory: %v, %v; want none", got, err)
	}
	mk("req-b")
	mk("req-a")
	mk("empty")
	mk(".hidden")
	mk("req-c/deeper")
	put("req-b/" + exchange.InFile)
	put("req-a/" + exchange.InFile)
	put(".hidden/" + exchange.InFile)
	put("req-c/deeper/" + exchange.InFile)
	put(exchange.AvailabilityFile)
	mk("req-dir-as-input/" + exchange.InFile) // in.in is a directory: not a request
	if err := os.Symlink(filepath.Join(dir, "req-a"), filepath.Join(dir, "req-link")); err != nil {
		t.Fatal(err)
	}

	got, err = exchange.RequestDirs(dir)
	want := []string{filepath.Join(dir, "req-a"), filepath.Join(dir, "req-b")}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("RequestDirs = %v, %v; want %v", got, err, want)
	}
	put(exchange.InFile)
	got, err = exchange.RequestDirs(dir)
	want = append([]string{dir}, want...)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("RequestDirs = %v, %v; want %v", got, err, want)
	}

	if _, err := exchange.RequestDirs(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing directory: %v, want ErrNotExist", err)
	}
}

func assertOnly(t *testing.T, dir string, names ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	if !reflect.DeepEqual(got, names) {
		t.Errorf("%s holds %v, want %v", dir, got, names)
	}
}
