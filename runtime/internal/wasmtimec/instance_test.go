package wasmtimec

import (
	"context"
	"os"
	"testing"
	"time"
)

// handlerComponent is the debugEcho component handler built by hack/wasm.sh
// (WASILET_WASM_DIR); tests that need it skip without it.
func handlerComponent(t *testing.T, name string) []byte {
	t.Helper()
	dir := os.Getenv("WASILET_WASM_DIR")
	if dir == "" {
		t.Skip("WASILET_WASM_DIR not set (run hack/wasm.sh)")
	}
	b, err := os.ReadFile(dir + "/" + name + ".component.wasm")
	if err != nil {
		t.Skipf("component handler not built: %v", err)
	}
	return b
}

func TestInstanceCallTyped(t *testing.T) {
	wasm := handlerComponent(t, "debug-echo-component")
	e := testEngine(t)
	c, err := Compile(e, wasm)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	l, err := NewLinker(e, []HostDef{{Interface: "akri:discovery/types@0.1.0"}})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	inst, err := c.Instantiate(l, InstanceConfig{MemoryLimit: 256 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Close()
	props := List(Tuple(String("k"), Some(Bytes([]byte("v")))), Tuple(String("n"), None()))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := inst.Call(ctx, "akri:discovery/handler@0.1.0", "discover", []Val{String("descriptions: [foo0]"), props}, 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", res)
}
