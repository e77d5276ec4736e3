package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wasilet/wasilet/internal/benchreport"
	"github.com/wasilet/wasilet/internal/version"
	"github.com/wasilet/wasilet/runtime"
)

// BenchmarkModuleStart is the module start comparison of the benchmarks
// issue: the same Go wasip1 program (handlers/testprog, step "hello", about
// 3 MB) started by wasilet — `wasilet run` as a whole process and the runtime
// package in-process — and, in the same run, by the wasmtime CLI and by
// wazero (compiler mode, through tools/wazero's wazero-run). Both baselines
// come from hack/tools.sh (`hack/tools.sh wasmtime wazero-run`) in
// WASILET_TOOLS_DIR; without them the rows are recorded with the reason.
//
// Whole-process samples alternate wasilet and its baseline run by run, so a
// drift in the machine's speed moves both. Each is started by the small
// helper internal/benchreport/childrss, which reports the wall time from
// fork to reap and the child's ru_maxrss (peak RSS; floor about 2.5 MiB).
func BenchmarkModuleStart(b *testing.B) {
	if b.N > 1 {
		// The samples were all taken in the b.N = 1 round (which takes
		// seconds, so the harness rarely asks for more).
		return
	}
	ms := newModStart(b)
	ms.wholeProcessModule(b)
	ms.wholeProcessComponent(b)
	ms.inProcess(b)
	ms.tiered(b)
}

const (
	baselineWasmtime = "wasmtime"
	baselineWazero   = "wazero-run"
)

type modStart struct {
	bin, module, component string // wasilet binary, testprog module, its component build ("" if none)
	noComponent            string // why component is ""
	wasmtime, wazero       string // baseline binaries ("" if absent)
	noWasmtime, noWazero   string // why they are absent
	wasmtimeVersion        string
	wazeroVersion          string
	runs, coldRuns         int
	versions               map[string]string
	tmp                    string
}

func newModStart(b *testing.B) *modStart {
	bin, module := binaries(b)
	ms := &modStart{
		bin:      bin,
		module:   module,
		runs:     benchreport.Size("WASILET_BENCH_RUNS", 30, 3),
		coldRuns: benchreport.Size("WASILET_BENCH_COLD_RUNS", 5, 1),
		tmp:      b.TempDir(),
	}
	buildChildrss(b, b.TempDir())
	ms.component = filepath.Join(filepath.Dir(module), "testprog.component.wasm")
	if _, err := os.Stat(ms.component); err != nil {
		ms.noComponent = fmt.Sprintf("no component build of testprog beside %s (hack/wasm.sh makes it): %v", module, err)
		ms.component = ""
	}
	tools := os.Getenv("WASILET_TOOLS_DIR")
	find := func(name string) (string, string) {
		if tools == "" {
			return "", fmt.Sprintf("%s not measured: WASILET_TOOLS_DIR is not set (just bench sets it; `hack/tools.sh %s` builds it)", name, name)
		}
		p := filepath.Join(tools, name)
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Sprintf("%s not measured: not in WASILET_TOOLS_DIR (run `hack/tools.sh %s`): %v", name, name, err)
		}
		return p, ""
	}
	ms.wasmtime, ms.noWasmtime = find(baselineWasmtime)
	ms.wazero, ms.noWazero = find(baselineWazero)
	info := version.Get()
	ms.versions = map[string]string{"wasilet": info.Version, "wasmtime (linked by wasilet)": info.Wasmtime, "go": info.Go}
	if ms.wasmtime != "" {
		out, err := exec.Command(ms.wasmtime, "--version").Output()
		if err != nil {
			b.Fatalf("%s --version: %v", ms.wasmtime, err)
		}
		ms.wasmtimeVersion = strings.TrimPrefix(strings.Fields(string(out))[1], "v")
		ms.versions["wasmtime CLI"] = ms.wasmtimeVersion
	}
	if ms.wazero != "" {
		out, err := exec.Command(ms.wazero, "-version").Output()
		if err != nil {
			b.Fatalf("%s -version: %v", ms.wazero, err)
		}
		ms.wazeroVersion = strings.TrimSpace(strings.TrimPrefix(string(out), "wazero "))
		ms.versions["wazero"] = ms.wazeroVersion
	}
	return ms
}

// sample is one whole-process run.
type sample struct{ wallMs, peakMiB float64 }

// childrss is the helper that starts every whole-process run (see
// internal/benchreport/childrss: this process is too large to read a
// child's peak RSS itself), built once per benchmark run.
var childrss string

func buildChildrss(b *testing.B, dir string) {
	if childrss != "" {
		return
	}
	p := filepath.Join(dir, "childrss")
	out, err := exec.Command("go", "build", "-o", p, "github.com/wasilet/wasilet/internal/benchreport/childrss").CombinedOutput()
	if err != nil {
		b.Fatalf("build childrss: %v\n%s", err, out)
	}
	childrss = p
}

// proc runs argv to its end through childrss, with output discarded, and
// returns its wall time and peak RSS; a nonzero exit fails the benchmark.
func proc(b *testing.B, argv ...string) sample {
	b.Helper()
	devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer devnull.Close()
	report := filepath.Join(filepath.Dir(childrss), "report.json")
	cmd := exec.Command(childrss, append([]string{"-o", report, "--"}, argv...)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = devnull, devnull, devnull
	if err := cmd.Run(); err != nil {
		b.Fatalf("childrss %v: %v", argv, err)
	}
	raw, err := os.ReadFile(report)
	if err != nil {
		b.Fatal(err)
	}
	var r struct {
		WallNs    int64 `json:"wallNs"`
		MaxRSSKiB int64 `json:"maxRssKiB"`
		ExitCode  int   `json:"exitCode"`
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		b.Fatalf("childrss report %q: %v", raw, err)
	}
	if r.ExitCode != 0 {
		b.Fatalf("%v exited %d (rerun it by hand to see its output)", argv, r.ExitCode)
	}
	return sample{benchreport.Ms(time.Duration(r.WallNs)), float64(r.MaxRSSKiB) / 1024}
}

// pair runs a and then b (if b is not nil) n times in turn, calling prep
// before each run, and returns both sample sets.
func pair(b *testing.B, n int, prep func(), a, base []string) (wa, ba []sample) {
	b.Helper()
	for range n {
		if prep != nil {
			prep()
		}
		wa = append(wa, proc(b, a...))
		if base != nil {
			if prep != nil {
				prep()
			}
			ba = append(ba, proc(b, base...))
		}
	}
	return wa, ba
}

func walls(s []sample) []float64 { return pick(s, func(x sample) float64 { return x.wallMs }) }
func peaks(s []sample) []float64 { return pick(s, func(x sample) float64 { return x.peakMiB }) }
func pick(s []sample, f func(sample) float64) []float64 {
	out := make([]float64, len(s))
	for i, x := range s {
		out[i] = f(x)
	}
	return out
}

func (ms *modStart) record(b *testing.B, r benchreport.Result) {
	b.Helper()
	r.Group = "Module start"
	if r.Versions == nil {
		r.Versions = ms.versions
	}
	benchreport.Record(b, r)
}

// recordWhole records a whole-process comparison: the wall times, and the
// same runs' peak RSS as a row of its own.
func (ms *modStart) recordWhole(b *testing.B, metric string, wa, ba []sample, name string, target benchreport.Target, method string) {
	b.Helper()
	ms.record(b, benchreport.Result{Metric: metric, Unit: "ms", Wasilet: walls(wa), Baseline: walls(ba), BaselineName: name, Target: target, Method: method})
	ms.record(b, benchreport.Result{Metric: metric + ": peak RSS", Unit: "MiB", Wasilet: peaks(wa), Baseline: peaks(ba), BaselineName: name, Method: peakMethod})
}

const peakMethod = "peak RSS: ru_maxrss of the child, as counted by the childrss helper (floor about 2.5 MiB); same runs as the wall-time row"

var (
	targetWasmtime = benchreport.Target{MinRatio: 1, Text: "not slower than the wasmtime CLI"}
	targetWazero   = benchreport.Target{MinRatio: 5, Text: "≥ 5× faster warm start than wazero"}
)

// guestArgs is what every runner passes testprog.
var guestArgs = []string{"hello"}

func (ms *modStart) wasiletRun(cacheDir, wasm string) []string {
	return append([]string{ms.bin, "run", "--cache-dir", cacheDir, wasm, "--"}, guestArgs...)
}

// wasmtimeRun is `wasmtime run` with its cache in dir ("" = cache off).
func (ms *modStart) wasmtimeRun(dir, wasm string) []string {
	argv := []string{ms.wasmtime, "run", "-C", "cache=n"}
	if dir != "" {
		argv = []string{ms.wasmtime, "run", "-C", "cache-config=" + filepath.Join(dir, "cache.toml")}
	}
	return append(append(argv, wasm), guestArgs...)
}

func (ms *modStart) wasmtimeCacheDir(b *testing.B, name string) string {
	dir := filepath.Join(ms.tmp, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	toml := fmt.Sprintf("[cache]\ndirectory = %q\n", filepath.Join(dir, "modules"))
	if err := os.WriteFile(filepath.Join(dir, "cache.toml"), []byte(toml), 0o644); err != nil {
		b.Fatal(err)
	}
	return dir
}

func (ms *modStart) wazeroRun(cacheDir, wasm string) []string {
	argv := []string{ms.wazero}
	if cacheDir != "" {
		argv = append(argv, "-cache", cacheDir)
	}
	return append(append(argv, wasm), guestArgs...)
}

// emptyDir returns a function that empties dir, for cold starts.
func emptyDir(b *testing.B, dir string) func() {
	return func() {
		if err := os.RemoveAll(dir); err != nil {
			b.Fatal(err)
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			b.Fatal(err)
		}
	}
}

func (ms *modStart) wholeProcessModule(b *testing.B) {
	wCache := filepath.Join(ms.tmp, "wasilet-cache")
	proc(b, ms.wasiletRun(wCache, ms.module)...) // fill the cache
	const how = "whole process, fork to reap, output discarded, `testprog hello` (Go wasip1, %.1f MB); runs alternate with the baseline's"
	size := fileMB(b, ms.module)
	method := fmt.Sprintf(how, size)

	// Warm start (disk cache hit) against the wasmtime CLI with its cache.
	if ms.wasmtime == "" {
		ms.record(b, benchreport.Result{Metric: "whole process, warm (disk cache hit)", Unit: "ms",
			Wasilet: walls(must(pair(b, ms.runs, nil, ms.wasiletRun(wCache, ms.module), nil))), NoBaseline: ms.noWasmtime,
			Target: targetWasmtime, Method: method})
	} else {
		dir := ms.wasmtimeCacheDir(b, "wasmtime-cache")
		proc(b, ms.wasmtimeRun(dir, ms.module)...)
		wa, ba := pair(b, ms.runs, nil, ms.wiletArgs(wCache), ms.wasmtimeRun(dir, ms.module))
		name := fmt.Sprintf("wasmtime CLI %s (cache on)", ms.wasmtimeVersion)
		ms.recordWhole(b, "whole process, warm (disk cache hit)", wa, ba, name, targetWasmtime,
			method+": `wasilet run` with its compiled cache filled against `wasmtime run` with its cache filled")

		// wasmtime's fastest path: a precompiled .cwasm. wasilet has no
		// such input; its fastest whole-process path is the disk cache hit.
		cwasm := filepath.Join(ms.tmp, "testprog.cwasm")
		proc(b, ms.wasmtime, "compile", "-o", cwasm, ms.module)
		pre := append([]string{ms.wasmtime, "run", "--allow-precompiled", cwasm}, guestArgs...)
		wa, ba = pair(b, ms.runs, nil, ms.wiletArgs(wCache), pre)
		name = fmt.Sprintf("wasmtime CLI %s (precompiled .cwasm)", ms.wasmtimeVersion)
		ms.recordWhole(b, "whole process, warm: wasilet's disk cache hit vs a precompiled .cwasm", wa, ba, name, benchreport.Target{Text: "none (shown for reference: the best path of each)"},
			method+": `wasilet run` with its compiled cache filled (its fastest path: it takes no .cwasm) against `wasmtime run --allow-precompiled` of a `wasmtime compile` output")

		ms.cold(b, ms.module, "whole process, ", method, targetWasmtime, true)
	}

	// Against wazero.
	if ms.wazero == "" {
		ms.record(b, benchreport.Result{Metric: "whole process, warm (disk cache hit) vs wazero", Unit: "ms",
			Wasilet: walls(must(pair(b, ms.runs, nil, ms.wiletArgs(wCache), nil))), NoBaseline: ms.noWazero,
			Target: targetWazero, Method: method})
		return
	}
	zCache := filepath.Join(ms.tmp, "wazero-cache")
	proc(b, ms.wazeroRun(zCache, ms.module)...)
	wa, ba := pair(b, ms.runs, nil, ms.wiletArgs(wCache), ms.wazeroRun(zCache, ms.module))
	name := fmt.Sprintf("wazero %s (compiler, compilation cache on disk)", ms.wazeroVersion)
	ms.recordWhole(b, "whole process, warm (disk cache hit) vs wazero", wa, ba, name, targetWazero,
		method+": `wasilet run` with its compiled cache filled against `wazero-run -cache DIR` (tools/wazero) with its cache filled")
	wCold, zCold := filepath.Join(ms.tmp, "wasilet-cold"), filepath.Join(ms.tmp, "wazero-cold")
	emptyW, emptyZ := emptyDir(b, wCold), emptyDir(b, zCold)
	wa, ba = pair(b, ms.coldRuns, func() { emptyW(); emptyZ() }, ms.wasiletRun(wCold, ms.module), ms.wazeroRun(zCold, ms.module))
	ms.record(b, benchreport.Result{Metric: "whole process, cold compile vs wazero", Unit: "ms",
		Wasilet: walls(wa), Baseline: walls(ba), BaselineName: fmt.Sprintf("wazero %s (compiler, empty cache)", ms.wazeroVersion),
		Method: method + ": both with an empty compiled cache (each compiles and writes its artifact)"})
}

// cold records cold starts of wasm (nothing compiled yet) against the
// wasmtime CLI, configured alike on both sides: with the compiled-code cache
// off (`--cache-dir none`, `-C cache=n`: each compiles and writes nothing),
// and each with its cache on and empty (the default of both: each compiles
// and writes its artifact; the CLI compresses it). Then, cache off, with a
// time limit on both. peak says whether the rows get peak-RSS rows of their
// own.
func (ms *modStart) cold(b *testing.B, wasm, prefix, method string, target benchreport.Target, peak bool) {
	rec := func(metric string, wa, ba []sample, name, how string, target benchreport.Target) {
		if peak {
			ms.recordWhole(b, prefix+metric, wa, ba, name, target, method+how)
			return
		}
		ms.record(b, benchreport.Result{Metric: prefix + metric, Unit: "ms", Wasilet: walls(wa), Baseline: walls(ba),
			BaselineName: name, Target: target, Method: method + how})
	}
	noCache := ms.wasiletRun("none", wasm)
	wa, ba := pair(b, ms.coldRuns, nil, noCache, ms.wasmtimeRun("", wasm))
	rec("cold compile, compiled-code cache off on both", wa, ba, fmt.Sprintf("wasmtime CLI %s (cache off)", ms.wasmtimeVersion),
		": `wasilet run --cache-dir none` against `wasmtime run -C cache=n`: each compiles and writes nothing", target)

	wCold := filepath.Join(ms.tmp, "wasilet-cold")
	tDir := ms.wasmtimeCacheDir(b, "wasmtime-cold")
	emptyW, emptyT := emptyDir(b, wCold), emptyDir(b, filepath.Join(tDir, "modules"))
	wa, ba = pair(b, ms.coldRuns, func() { emptyW(); emptyT() }, ms.wasiletRun(wCold, wasm), ms.wasmtimeRun(tDir, wasm))
	rec("cold compile, each writing its compiled-code cache", wa, ba, fmt.Sprintf("wasmtime CLI %s (cache on, empty)", ms.wasmtimeVersion),
		": `wasilet run` and `wasmtime run` each with its compiled-code cache on (the default of both) and emptied before every run: each compiles and writes its artifact (wasilet the artifact as is, the CLI compressed)", target)

	// Both with a time limit, which both implement with epoch
	// interruption: the code then carries an epoch check on every loop
	// back-edge and function entry, which makes the compile slower.
	epoch := append([]string{ms.wasmtime, "run", "-C", "cache=n", "-W", "timeout=3600s", wasm}, guestArgs...)
	wa, ba = pair(b, ms.coldRuns, nil, slices.Insert(noCache, 2, "--timeout", "3600s"), epoch)
	rec("cold compile with a time limit (epoch interruption on both)", wa, ba,
		fmt.Sprintf("wasmtime CLI %s (cache off, -W timeout=3600s: epoch interruption on)", ms.wasmtimeVersion),
		": as the cache-off row, with a time limit on both (`wasilet run --timeout 3600s`, `wasmtime run -W timeout=3600s`), which both implement with epoch interruption: the code carries a load and compare on every loop back-edge and function entry. Without a time limit neither compiles them (`wasilet run` exits on a signal instead of stopping the guest); the node always does, so it can stop any guest at once", benchreport.Target{})
}

func (ms *modStart) wiletArgs(cacheDir string) []string { return ms.wasiletRun(cacheDir, ms.module) }

func (ms *modStart) wholeProcessComponent(b *testing.B) {
	const noWazero = "wazero runs core modules only: it does not implement the component model"
	if ms.component == "" {
		ms.record(b, benchreport.Result{Metric: "whole process, component, warm (disk cache hit)", Unit: "ms", NoBaseline: ms.noComponent})
		return
	}
	method := fmt.Sprintf("whole process, fork to reap, output discarded, the component build of testprog (%.1f MB) running `hello`", fileMB(b, ms.component))
	wCache := filepath.Join(ms.tmp, "wasilet-cache")
	proc(b, ms.wasiletRun(wCache, ms.component)...)
	// The core module beside it, for the component-vs-module row.
	proc(b, ms.wasiletRun(wCache, ms.module)...)
	wc, wm := pair(b, ms.runs, nil, ms.wasiletRun(wCache, ms.component), ms.wasiletRun(wCache, ms.module))
	ms.record(b, benchreport.Result{Metric: "whole process, warm: component vs core module", Unit: "ms",
		Wasilet: walls(wc), Baseline: walls(wm), BaselineName: "wasilet run of the core module build (same run)",
		Method: method + "; both `wasilet run` with their compiled cache filled"})
	if ms.wasmtime == "" {
		ms.record(b, benchreport.Result{Metric: "whole process, component, warm (disk cache hit)", Unit: "ms",
			Wasilet: walls(wc), NoBaseline: ms.noWasmtime + "; " + noWazero, Target: targetWasmtime, Method: method})
		return
	}
	dir := ms.wasmtimeCacheDir(b, "wasmtime-cache")
	proc(b, ms.wasmtimeRun(dir, ms.component)...)
	wa, ba := pair(b, ms.runs, nil, ms.wasiletRun(wCache, ms.component), ms.wasmtimeRun(dir, ms.component))
	name := fmt.Sprintf("wasmtime CLI %s (cache on)", ms.wasmtimeVersion)
	ms.recordWhole(b, "whole process, component, warm (disk cache hit)", wa, ba, name, targetWasmtime,
		method+"; `wasilet run` and `wasmtime run`, both caches filled. wazero: "+noWazero)
	ms.cold(b, ms.component, "whole process, component, ", method+". wazero: "+noWazero, targetWasmtime, false)
}

// inProcess times the runtime package itself (NewEngine, Load, Run) in this
// process, against wazero timed inside wazero-run.
func (ms *modStart) inProcess(b *testing.B) {
	ctx := context.Background()
	spec := runtime.Spec{Name: "testprog", Args: guestArgs, Stdout: io.Discard, Stderr: io.Discard}
	startOnce := func(e *runtime.Engine, wasm []byte, digest string) time.Duration {
		start := time.Now()
		p, err := e.Load(ctx, wasm, digest)
		if err != nil {
			b.Fatal(err)
		}
		res, err := p.Run(ctx, spec)
		if err != nil || res.ExitCode != 0 {
			b.Fatalf("run: %+v %v", res, err)
		}
		return time.Since(start)
	}
	newEngine := func(dir string) *runtime.Engine {
		e, err := runtime.NewEngine(runtime.Options{CacheDir: dir})
		if err != nil {
			b.Fatal(err)
		}
		return e
	}
	// measure returns cold, disk and warm samples for one wasm file. Cold
	// and disk include NewEngine, as a process starting up pays it.
	measure := func(path string) (cold, disk, warm []float64) {
		wasm, err := os.ReadFile(path)
		if err != nil {
			b.Fatal(err)
		}
		for range ms.coldRuns {
			start := time.Now()
			e := newEngine("")
			startOnce(e, wasm, "")
			cold = append(cold, benchreport.Ms(time.Since(start)))
			e.Close()
		}
		dir := b.TempDir()
		seed := newEngine(dir)
		startOnce(seed, wasm, "")
		seed.Close()
		for range ms.runs {
			start := time.Now()
			e := newEngine(dir)
			startOnce(e, wasm, "")
			disk = append(disk, benchreport.Ms(time.Since(start)))
			if s := e.Stats(); s.DiskHits != 1 {
				b.Fatalf("not a disk hit: %+v", s)
			}
			e.Close()
		}
		e := newEngine("")
		defer e.Close()
		startOnce(e, wasm, "")
		// The digest is known, as it is for an image from a registry (cold
		// and disk above hash the binary, as `wasilet run FILE` does).
		sum := sha256.Sum256(wasm)
		digest := "sha256:" + hex.EncodeToString(sum[:])
		for range ms.runs {
			warm = append(warm, benchreport.Ms(startOnce(e, wasm, digest)))
		}
		return cold, disk, warm
	}
	mCold, mDisk, mWarm := measure(ms.module)
	const how = "in-process, `testprog hello` (Go wasip1 core module): "
	type row struct {
		metric, mode, what string
		w                  []float64
		target             benchreport.Target
	}
	rows := []row{
		{"in-process, cold compile", "cold", "NewEngine + Load (compiles) + Run against a new wazero runtime without cache: CompileModule + InstantiateModule to exit", mCold, benchreport.Target{}},
		{"in-process, disk cache hit", "disk", "NewEngine + Load (deserializes the artifact) + Run against a new wazero runtime with its dir cache filled: CompileModule (cache hit) + InstantiateModule", mDisk, benchreport.Target{}},
		{"in-process, in-memory warm", "warm", "Load with the digest known (program held by the engine) + Run against InstantiateModule of a wazero CompiledModule kept in memory", mWarm, targetWazero},
	}
	for _, r := range rows {
		res := benchreport.Result{Metric: r.metric, Unit: "ms", Wasilet: r.w, Target: r.target, Method: how + r.what}
		if ms.wazero == "" {
			res.NoBaseline = ms.noWazero
		} else {
			z, err := ms.wazeroInProcess(r.mode)
			if err != nil {
				b.Fatal(err)
			}
			res.Baseline = z
			res.BaselineName = fmt.Sprintf("wazero %s (compiler, in-process)", ms.wazeroVersion)
		}
		ms.record(b, res)
	}
	if ms.component == "" {
		return
	}
	cCold, cDisk, cWarm := measure(ms.component)
	for _, r := range []struct {
		metric string
		c, m   []float64
	}{
		{"in-process, component vs core module: cold compile", cCold, mCold},
		{"in-process, component vs core module: disk cache hit", cDisk, mDisk},
		{"in-process, component vs core module: in-memory warm", cWarm, mWarm},
	} {
		ms.record(b, benchreport.Result{Metric: r.metric, Unit: "ms", Wasilet: r.c, Baseline: r.m,
			BaselineName: "wasilet, core module build (same run)",
			Method:       "in-process, the component build of testprog against its core module build, same states as the rows above; wazero has no component model, and the wasmtime CLI no in-process form"})
	}
}

// tiered compares the two compiles of --tiered-compilation on
// sqlite-hello: how long a cold load takes, and how fast the code runs.
func (ms *modStart) tiered(b *testing.B) {
	path := filepath.Join(filepath.Dir(ms.module), "sqlite-hello.wasm")
	wasm, err := os.ReadFile(path)
	if err != nil {
		b.Logf("tiered compilation rows skipped: %v (hack/wasm.sh builds sqlite-hello)", err)
		return
	}
	ctx := context.Background()
	const rows = "100000"
	spec := runtime.Spec{Name: "sqlite-hello", Args: []string{"work", rows}, Stdout: io.Discard, Stderr: io.Discard}
	// load compiles a copy of wasm no engine has seen, on a new engine.
	load := func(tiered bool, i int) (*runtime.Engine, *runtime.Program, float64) {
		e, err := runtime.NewEngine(runtime.Options{Tiered: tiered})
		if err != nil {
			b.Fatal(err)
		}
		w := append(append([]byte(nil), wasm...), 0, 3, 1, 'x', byte(i)) // a custom section
		start := time.Now()
		p, err := e.Load(ctx, w, "")
		if err != nil {
			b.Fatal(err)
		}
		d := benchreport.Ms(time.Since(start))
		if p.Baseline() != tiered {
			b.Fatalf("tiered %v: Baseline() = %v", tiered, p.Baseline())
		}
		return e, p, d
	}
	var quick, full, quickRun, fullRun []float64
	for i := range ms.coldRuns {
		e, _, d := load(true, i)
		quick = append(quick, d)
		e.Close() // waits for the optimizer's compile
		e, _, d = load(false, i)
		full = append(full, d)
		e.Close()
	}
	eq, pq, _ := load(true, 0)
	defer eq.Close()
	ef, pf, _ := load(false, 0)
	defer ef.Close()
	run := func(p *runtime.Program) float64 {
		start := time.Now()
		res, err := p.Run(ctx, spec)
		if err != nil || res.ExitCode != 0 {
			b.Fatalf("sqlite-hello work: %+v %v", res, err)
		}
		return benchreport.Ms(time.Since(start))
	}
	for range ms.coldRuns {
		quickRun = append(quickRun, run(pq))
		fullRun = append(fullRun, run(pf))
	}
	const name = "wasilet, full compile (the default)"
	ms.record(b, benchreport.Result{Metric: "in-process, --tiered-compilation: quick compile vs full compile (~1 MB module)", Unit: "ms",
		Wasilet: quick, Baseline: full, BaselineName: name,
		Method: fmt.Sprintf("in-process, sqlite-hello (%.2f MB of C) with a custom section no engine has seen: NewEngine, then Load (compile) alone; the tiered engine's Load is the quick compile (Cranelift's single-pass register allocator, no optimizer), its full compile follows on the optimizer thread (not timed; Close waits for it before the next sample)", fileMB(b, path))})
	ms.record(b, benchreport.Result{Metric: "in-process, --tiered-compilation: run time of the quick code vs the full code", Unit: "ms",
		Wasilet: quickRun, Baseline: fullRun, BaselineName: name,
		Method: "in-process, `sqlite-hello work " + rows + "` (SQLite: insert that many rows into an in-memory table, index them, query them) on the program of each compile, runs alternating: what a container started on the quick code pays for as long as it runs"})
}

// wazeroInProcess runs wazero-run in one of its timing modes and returns
// its per-run totals in milliseconds.
func (ms *modStart) wazeroInProcess(mode string) ([]float64, error) {
	n := ms.runs
	if mode == "cold" {
		n = ms.coldRuns
	}
	args := []string{"-mode", mode, "-n", fmt.Sprint(n), "-json", "-"}
	if mode == "disk" {
		args = append(args, "-cache", filepath.Join(ms.tmp, "wazero-inproc-cache"))
	}
	args = append(append(args, ms.module), guestArgs...)
	cmd := exec.Command(ms.wazero, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("wazero-run %s: %v: %s", strings.Join(args, " "), err, stderr.String())
	}
	// The guest's own output comes first on stdout; the JSON is the last line.
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	var t struct {
		TotalMs []float64 `json:"totalMs"`
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &t); err != nil {
		return nil, fmt.Errorf("wazero-run %s: its JSON: %w", mode, err)
	}
	if len(t.TotalMs) == 0 {
		return nil, errors.New("wazero-run: no samples")
	}
	return t.TotalMs, nil
}

func fileMB(b *testing.B, path string) float64 {
	fi, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	return float64(fi.Size()) / 1e6
}

func must[T any](a, _ T) T { return a }
