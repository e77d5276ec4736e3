package v0_test

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestGeneratedCodeIsCurrent runs hack/generate.sh into a temporary directory
// and fails, naming the file, if any generated file differs from the one
// checked in, or if a checked-in generated file under proto/ has no source
// any more. Fix with `just generate`.
func TestGeneratedCodeIsCurrent(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the code generators; skipped with -short")
	}
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	// The generators come from the module cache or the module proxy; without
	// either there is nothing to check against.
	dl := exec.Command("go", "mod", "download")
	dl.Dir = filepath.Join(root, "tools", "protogen")
	if out, err := dl.CombinedOutput(); err != nil {
		t.Skipf("generator modules not available: %v: %s", err, out)
	}

	out := t.TempDir()
	cmd := exec.Command("bash", filepath.Join(root, "hack", "generate.sh"), "--out", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("hack/generate.sh: %v\n%s", err, b)
	}

	generated := map[string]bool{}
	err = filepath.WalkDir(out, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(out, p)
		generated[filepath.ToSlash(rel)] = true
		want, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		got, err := os.ReadFile(filepath.Join(root, rel))
		switch {
		case err != nil:
			t.Errorf("%s: generated but not checked in (%v); run `just generate`", rel, err)
		case !bytes.Equal(got, want):
			t.Errorf("%s: differs from what hack/generate.sh writes; run `just generate`", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(generated) == 0 {
		t.Fatal("hack/generate.sh wrote nothing")
	}
	// A generated file left over from a removed or renamed .proto.
	err = filepath.WalkDir(filepath.Join(root, "proto"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".pb.go") {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if !generated[filepath.ToSlash(rel)] {
			t.Errorf("%s: checked in but no longer generated; delete it", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
