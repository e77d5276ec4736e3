package wasmtimec

import (
	"slices"
	"strings"
	"testing"
)

func TestComponentImports(t *testing.T) {
	c, err := Compile(testEngine(t), []byte(`(component
	  (import "wasi:sockets/ip-name-lookup@0.2.0" (instance))
	  (import "akri:discovery/http@0.1.0" (instance (export "get" (func (param "url" string)))))
	  (import "f" (func))
	)`))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got, err := c.Imports()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"wasi:sockets/ip-name-lookup@0.2.0", "akri:discovery/http@0.1.0", "f"}
	if !slices.Equal(got, want) {
		t.Fatalf("imports: got %q, want %q", got, want)
	}

	if got, err := compileTestdata(t, "library.wat").Imports(); err != nil || len(got) != 0 {
		t.Fatalf("library.wat imports: %q, %v", got, err)
	}

	c.Close()
	if _, err := c.Imports(); err != ErrClosed {
		t.Fatalf("after Close: got %v, want ErrClosed", err)
	}
}

// TestHandlerImports lists what the Go-built component handlers
// (hack/wasm.sh) import: WASI 0.2 io, clocks, random, filesystem and cli
// through jco's preview1 adapter, and akri:discovery; never wasi:sockets.
func TestHandlerImports(t *testing.T) {
	for _, name := range []string{"debug-echo-component", "http-inventory-component", "hostile-component"} {
		t.Run(name, func(t *testing.T) {
			c, err := Compile(testEngine(t), handlerComponent(t, name))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			imps, err := c.Imports()
			if err != nil {
				t.Fatal(err)
			}
			if !slices.ContainsFunc(imps, func(s string) bool { return strings.HasPrefix(s, "wasi:filesystem/preopens@") }) {
				t.Errorf("no wasi:filesystem/preopens import in %q", imps)
			}
			for _, im := range imps {
				t.Log(im)
				if strings.HasPrefix(im, "wasi:sockets/") {
					t.Errorf("imports %s", im)
				}
			}
		})
	}
}
