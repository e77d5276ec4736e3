package wasmtimec

import (
	"context"
	"errors"
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

// blockWAT calls the host function test:host/block#wait from its run
// export and returns what the host returned.
const blockWAT = `(component
  (import "test:host/block@0.1.0" (instance $h (export "wait" (func (result u32)))))
  (core func $wait (canon lower (func $h "wait")))
  (core module $m
    (import "host" "wait" (func $wait (result i32)))
    (func (export "run") (result i32) call $wait))
  (core instance $i (instantiate $m (with "host" (instance (export "wait" (func $wait))))))
  (func $run (result u32) (canon lift (core func $i "run")))
  (instance $e (export "run" (func $run)))
  (export "test:guest/run@0.1.0" (instance $e)))`

// TestHostFuncGetsCallContext: a host function gets the context of the
// call in progress, so one that blocks ends with the call's time limit
// instead of keeping the guest (which cannot be stopped meanwhile) past it.
func TestHostFuncGetsCallContext(t *testing.T) {
	e := testEngine(t)
	c, err := Compile(e, []byte(blockWAT))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ended := make(chan error, 1)
	l, err := NewLinker(e, []HostDef{{Interface: "test:host/block@0.1.0", Func: "wait", Fn: func(ctx context.Context, store any, _ []Val) ([]Val, error) {
		if store != "data" {
			return nil, errors.New("wrong store data")
		}
		select {
		case <-ctx.Done():
			ended <- ctx.Err()
			return []Val{U32(1)}, nil
		case <-time.After(10 * time.Second):
			ended <- nil
			return []Val{U32(0)}, nil
		}
	}}})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	inst, err := c.Instantiate(l, InstanceConfig{StoreData: "data"})
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = inst.Call(ctx, "test:guest/run@0.1.0", "run", nil, 1)
	var ce *CallError
	if !errors.As(err, &ce) || ce.Outcome != Cancelled {
		t.Fatalf("call: got %v, want a Cancelled CallError", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("call returned after %v, not with its 200ms limit", d)
	}
	if got := <-ended; !errors.Is(got, context.DeadlineExceeded) {
		t.Fatalf("host function's context ended with %v, want the call's deadline", got)
	}
}
