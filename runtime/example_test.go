package runtime_test

import (
	"context"
	"fmt"
	"os"

	"github.com/bytecodealliance/wasmtime-go/v39"

	"github.com/wasilet/wasilet/runtime"
)

// A WASI command that writes "hi\n" to stdout and exits with code 3.
const exampleWAT = `(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "hi\n")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 16)) ;; iovec.buf
    (i32.store (i32.const 4) (i32.const 3))  ;; iovec.len
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
    (call $exit (i32.const 3))))`

func Example() {
	wasm, err := wasmtime.Wat2Wasm(exampleWAT)
	if err != nil {
		panic(err)
	}
	e, err := runtime.NewEngine(runtime.Options{})
	if err != nil {
		panic(err)
	}
	defer e.Close()
	ctx := context.Background()
	prog, err := e.Load(ctx, wasm, "")
	if err != nil {
		panic(err)
	}
	res, err := prog.Run(ctx, runtime.Spec{Name: "example", Stdout: os.Stdout})
	if err != nil {
		panic(err)
	}
	fmt.Println(prog.Kind(), res.ExitCode, res.Reason)
	// Output:
	// hi
	// module 3 Error
}
