package runtime_test

import (
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
