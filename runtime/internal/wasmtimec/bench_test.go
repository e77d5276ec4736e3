package wasmtimec

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/bytecodealliance/wasmtime-go/v39"
)

func testprogBytes(b *testing.B) []byte {
	path := filepath.Join(wasmDir(b), "testprog.component.wasm")
	data, err := os.ReadFile(path)
	if err != nil {
		b.Fatalf("the component build of the test program is missing (%v): run hack/wasm.sh or set WASILET_WASM_DIR", err)
	}
	return data
}

// BenchmarkCompile: cold compile of the test program component.
func BenchmarkCompile(b *testing.B) {
	data := testprogBytes(b)
	e := testEngine(b)
	for b.Loop() {
		c, err := Compile(e, data)
		if err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
	b.ReportMetric(float64(len(data))/1e6, "MB")
}

// BenchmarkDeserialize: loading the compiled artifact (a cache hit).
func BenchmarkDeserialize(b *testing.B) {
	data, err := testprog(b).Serialize()
	if err != nil {
		b.Fatal(err)
	}
	e := testEngine(b)
	for b.Loop() {
		c, err := Deserialize(e, data)
		if err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
}

// BenchmarkRun: instantiate and run a loaded component (warm).
func BenchmarkRun(b *testing.B) {
	b.Run("testprog-exit0", func(b *testing.B) {
		c := testprog(b)
		cfg := RunConfig{Args: args("exit 0")}
		for b.Loop() {
			if res, err := c.Run(b.Context(), cfg); err != nil || res.ExitCode != 0 {
				b.Fatalf("%+v %v", res, err)
			}
		}
	})
	b.Run("testprog-hello", func(b *testing.B) {
		c := testprog(b)
		cfg := RunConfig{Args: args("hello"), Stdout: os.DevNull}
		for b.Loop() {
			if res, err := c.Run(b.Context(), cfg); err != nil || res.ExitCode != 0 {
				b.Fatalf("%+v %v", res, err)
			}
		}
	})
	b.Run("wat-run-ok", func(b *testing.B) {
		c := compileTestdata(b, "run-ok.wat")
		for b.Loop() {
			if res, err := c.Run(b.Context(), RunConfig{}); err != nil || res.ExitCode != 0 {
				b.Fatalf("%+v %v", res, err)
			}
		}
	})
}

// BenchmarkModuleRun is the same test program as a WASI p1 core module run
// through wasmtime-go's Go API, for comparison with BenchmarkRun.
func BenchmarkModuleRun(b *testing.B) {
	path := filepath.Join(wasmDir(b), "testprog.wasm")
	data, err := os.ReadFile(path)
	if err != nil {
		b.Fatalf("the module build of the test program is missing (%v): run hack/wasm.sh or set WASILET_WASM_DIR", err)
	}
	e := testEngine(b)
	mod, err := wasmtime.NewModule(e, data)
	if err != nil {
		b.Fatal(err)
	}
	linker := wasmtime.NewLinker(e)
	if err := linker.DefineWasi(); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		store := wasmtime.NewStore(e)
		store.SetEpochDeadline(1 << 40)
		wasi := wasmtime.NewWasiConfig()
		wasi.SetArgv(args("exit 0"))
		store.SetWasi(wasi)
		inst, err := linker.Instantiate(store, mod)
		if err != nil {
			b.Fatal(err)
		}
		_, err = inst.GetFunc(store, "_start").Call(store)
		var werr *wasmtime.Error
		if code, ok := 0, errors.As(err, &werr); ok {
			if c, isExit := werr.ExitStatus(); isExit {
				code = int(c)
			}
			if code != 0 {
				b.Fatal(err)
			}
		} else if err != nil {
			b.Fatal(err)
		}
		store.Close()
	}
}
