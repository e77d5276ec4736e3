package wasmtimec

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestDecls compiles testdata/check.c, which includes the real headers of
// the wasmtime-go module in the module cache and then decls.h, and checks
// that decls.h agrees with them: the compile fails on any incompatible
// prototype, struct layout or constant (static assertions), and
// -Wredundant-decls must flag every function decls.h declares, proving the
// real headers declare it too.
func TestDecls(t *testing.T) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/bytecodealliance/wasmtime-go/v39").Output()
	if err != nil {
		t.Fatalf("locate the wasmtime-go module: %v", err)
	}
	include := filepath.Join(strings.TrimSpace(string(out)), "build", "include")
	if _, err := os.Stat(filepath.Join(include, "wasmtime.h")); err != nil {
		t.Fatalf("wasmtime headers: %v", err)
	}
	cc := os.Getenv("CC")
	if cc == "" {
		cc = "cc"
	}
	cmd := exec.Command(cc, "-std=gnu11", "-fsyntax-only", "-Wredundant-decls", "-I", include, filepath.Join("testdata", "check.c"))
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	diag, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("decls.h disagrees with the headers in %s: %v\n%s", include, err, diag)
	}

	src, err := os.ReadFile("decls.h")
	if err != nil {
		t.Fatal(err)
	}
	funcs := regexp.MustCompile(`\b((?:wasm|wasi|wasmtime)_[a-z0-9_]+)\(`).FindAllStringSubmatch(string(src), -1)
	if len(funcs) < 40 {
		t.Fatalf("found only %d function declarations in decls.h", len(funcs))
	}
	for _, f := range funcs {
		if !strings.Contains(string(diag), "redundant redeclaration of '"+f[1]+"'") {
			t.Errorf("%s is declared in decls.h but not in the wasmtime headers", f[1])
		}
	}
}
