package wasmtimec

import (
	"strings"
	"testing"

	"github.com/bytecodealliance/wasmtime-go/v39"
)

// TestLayout fails loudly when wasmtime-go's Engine or Config no longer
// hold the C pointer as their only field.
func TestLayout(t *testing.T) {
	if err := checkLayout(); err != nil {
		t.Fatal(err)
	}
}

// TestEnginePointer proves that enginePtr yields the very engine: a module
// serialized by an epoch-interruption engine through wasmtime-go loads
// through the C API with that engine's pointer and is refused with the
// pointer of an engine configured differently.
func TestEnginePointer(t *testing.T) {
	epochCfg := wasmtime.NewConfig()
	epochCfg.SetEpochInterruption(true)
	epochEngine := wasmtime.NewEngineWithConfig(epochCfg)
	defer epochEngine.Close()
	plainEngine := wasmtime.NewEngine()
	defer plainEngine.Close()

	wasm, err := wasmtime.Wat2Wasm(`(module (func (export "f")))`)
	if err != nil {
		t.Fatal(err)
	}
	mod, err := wasmtime.NewModule(epochEngine, wasm)
	if err != nil {
		t.Fatal(err)
	}
	data, err := mod.Serialize()
	if err != nil {
		t.Fatal(err)
	}
	if err := deserializeModule(epochEngine, data); err != nil {
		t.Fatalf("the engine's own artifact was refused through its C pointer: %v", err)
	}
	err = deserializeModule(plainEngine, data)
	if err == nil {
		t.Fatal("an artifact of an epoch-interruption engine loaded into a plain engine: enginePtr does not return the engine it was given")
	}
	if !strings.Contains(err.Error(), "epoch") {
		t.Errorf("refusal does not mention the epoch setting: %v", err)
	}

	closed := wasmtime.NewEngine()
	closed.Close()
	if _, err := enginePtr(closed); err == nil {
		t.Error("enginePtr of a closed engine: no error")
	}
	if _, err := Compile(closed, []byte("x")); err == nil {
		t.Error("Compile with a closed engine: no error")
	}
}

// TestComponentModelDefault checks that a default wasmtime-go v39 Config
// compiles components, and that SetComponentModel reaches the C config.
func TestComponentModelDefault(t *testing.T) {
	wasm := readTestdata(t, "run-ok.wat")

	def := wasmtime.NewEngine()
	defer def.Close()
	c, err := Compile(def, wasm)
	if err != nil {
		t.Fatalf("component model is not on by default: %v", err)
	}
	c.Close()

	cfg := wasmtime.NewConfig()
	if err := SetComponentModel(cfg, false); err != nil {
		t.Fatal(err)
	}
	off := wasmtime.NewEngineWithConfig(cfg)
	defer off.Close()
	if c, err := Compile(off, wasm); err == nil {
		c.Close()
		t.Fatal("compiled a component with the component model switched off: SetComponentModel did not reach the config")
	} else {
		t.Logf("component model off: %v", err)
	}

	used := wasmtime.NewConfig()
	wasmtime.NewEngineWithConfig(used).Close()
	if err := SetComponentModel(used, true); err == nil {
		t.Error("SetComponentModel on a config already consumed by an engine: no error")
	}
}

// TestPooling runs components in an engine with the pooling allocator and a
// small memory reservation.
func TestPooling(t *testing.T) {
	cfg := wasmtime.NewConfig()
	cfg.SetEpochInterruption(true)
	if err := SetPooling(cfg, Pooling{
		TotalComponentInstances: 20,
		TotalCoreInstances:      100,
		TotalMemories:           40,
		TotalTables:             40,
		MaxMemorySize:           256 << 20,
		MaxMemoriesPerComponent: 10,
		MaxUnusedWarmSlots:      10,
	}); err != nil {
		t.Fatal(err)
	}
	if err := SetMemoryReservation(cfg, 256<<20, 64<<10); err != nil {
		t.Fatal(err)
	}
	e := wasmtime.NewEngineWithConfig(cfg)
	defer e.Close()
	c, err := Compile(e, readTestdata(t, "run-ok.wat"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := 0; i < 50; i++ { // more runs than slots: slots are reused
		res, err := c.Run(t.Context(), RunConfig{})
		if err != nil || res.Outcome != Returned || res.ExitCode != 0 {
			t.Fatalf("run %d: %+v, %v", i, res, err)
		}
	}
	big, err := Compile(e, readTestdata(t, "big-memory.wat"))
	if err != nil {
		t.Fatal(err)
	}
	defer big.Close()
	if res, err := big.Run(t.Context(), RunConfig{}); err != nil || res.ExitCode != 0 {
		t.Fatalf("64 MiB memory in a 256 MiB pool slot: %+v, %v", res, err)
	}
}
