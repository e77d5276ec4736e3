package runtime_test

import (
	"os"
	"strconv"
	"testing"

	"github.com/bytecodealliance/wasmtime-go/v39"
)

func itoa(n int) string { return strconv.Itoa(n) }

func watModule(t testing.TB, wat string) []byte {
	t.Helper()
	wasm, err := wasmtime.Wat2Wasm(wat)
	if err != nil {
		t.Fatalf("wat2wasm: %v", err)
	}
	return wasm
}

// endlessStdin is a stdin that never ends: its writer stays open until the
// test ends.
func endlessStdin(t testing.TB) *os.File {
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		pw.Close()
		pr.Close()
	})
	return pr
}
