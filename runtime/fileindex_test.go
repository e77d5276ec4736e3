package runtime_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/wasilet/wasilet/runtime"
)

// TestLoadFileIndex: an unchanged file whose artifact is cached is loaded
// without being read; any change to it, even one that puts its
// modification time back, makes LoadFile read and hash it again.
func TestLoadFileIndex(t *testing.T) {
	ctx := context.Background()
	cache := t.TempDir()
	dir := t.TempDir()
	file := filepath.Join(dir, "app.wasm")
	module, err := os.ReadFile(testprogWasm)
	if err != nil {
		t.Fatal(err)
	}
	component, err := os.ReadFile(componentWasm(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, module, 0o644); err != nil {
		t.Fatal(err)
	}
	reads := 0
	defer runtime.CountFileReadsForTest(&reads)()
	load := func(want runtime.Kind) (*runtime.Engine, *runtime.Program) {
		t.Helper()
		e := newEngine(t, cache)
		p, err := e.LoadFile(ctx, file)
		if err != nil {
			t.Fatal(err)
		}
		runtime.WaitCacheWritesForTest(e)
		if p.Kind() != want {
			t.Fatalf("kind %s, want %s", p.Kind(), want)
		}
		return e, p
	}

	_, first := load(runtime.KindModule)
	if reads != 1 {
		t.Fatalf("first load: %d reads, want 1", reads)
	}
	e, again := load(runtime.KindModule)
	if reads != 1 || e.Stats().DiskHits != 1 || again.Digest() != first.Digest() {
		t.Errorf("unchanged file: %d reads (want 1), %d disk hits (want 1), digest %s (want %s)", reads, e.Stats().DiskHits, again.Digest(), first.Digest())
	}
	if out := runSpec(t, again, runtime.Spec{Name: "app.wasm", Args: []string{"hello"}}); out.stdout != "Hello, world!\n" {
		t.Errorf("the program loaded through the index printed %q", out.stdout)
	}

	// New content of the same size in the same inode, with the old
	// modification time put back: only the change time tells.
	rewrite := func(content []byte) {
		t.Helper()
		fi, err := os.Stat(file)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(file, content, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(file, time.Time{}, fi.ModTime()); err != nil {
			t.Fatal(err)
		}
	}
	rewrite(withCustomSection(module, "AAAA"))
	_, marked := load(runtime.KindModule)
	rewrite(withCustomSection(module, "BBBB"))
	_, remarked := load(runtime.KindModule)
	if reads != 3 || marked.Digest() == first.Digest() || remarked.Digest() == marked.Digest() {
		t.Errorf("rewritten file, same size and mtime: %d reads (want 3), digests %s, %s (the first %s)", reads, marked.Digest(), remarked.Digest(), first.Digest())
	}
	rewrite(component)
	_, changed := load(runtime.KindComponent)
	if reads != 4 || changed.Digest() == first.Digest() {
		t.Errorf("changed file: %d reads (want 4), digest %s (the old one was %s)", reads, changed.Digest(), first.Digest())
	}

	// The artifact gone: read and compiled again, not a failure.
	sum := changed.Digest()[len("sha256:"):]
	if err := os.Remove(e.ArtifactPath(sum, runtime.KindComponent)); err != nil {
		t.Fatal(err)
	}
	e, _ = load(runtime.KindComponent)
	if reads != 5 || e.Stats().Compiles != 1 {
		t.Errorf("artifact removed: %d reads (want 5), %d compiles (want 1)", reads, e.Stats().Compiles)
	}

	// A damaged index entry is a miss.
	entries, _ := filepath.Glob(filepath.Join(cache, "*", "files", "*"))
	if len(entries) != 1 { // one file, one entry however often it changed
		t.Fatalf("index entries %v, want one", entries)
	}
	if err := os.WriteFile(entries[0], []byte("v1 garbage\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	load(runtime.KindComponent)
	if reads != 6 {
		t.Errorf("damaged index: %d reads, want 6", reads)
	}
	load(runtime.KindComponent)
	if reads != 6 {
		t.Errorf("index rewritten after the damaged one: %d reads, want 6", reads)
	}
}

// withCustomSection appends a custom section "wasilet-test" holding payload
// to a core module.
func withCustomSection(module []byte, payload string) []byte {
	const name = "wasilet-test"
	body := append([]byte{byte(len(name))}, name...)
	body = append(body, payload...)
	out := append([]byte{}, module...)
	return append(append(out, 0, byte(len(body))), body...)
}
