package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"github.com/tetratelabs/wazero/sys"
)

// timings is what the in-process modes write.
type timings struct {
	Wazero    string    `json:"wazero"`
	Mode      string    `json:"mode"`
	Cache     bool      `json:"cache"`
	CompileMs []float64 `json:"compileMs"`
	RunMs     []float64 `json:"runMs"`
	TotalMs   []float64 `json:"totalMs"`
}

func main() {
	code, err := run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "wazero-run:", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	fs := flag.NewFlagSet("wazero-run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cacheDir := fs.String("cache", "", "wazero compilation cache directory (default: none)")
	mode := fs.String("mode", "once", "once (run and exit with the guest's code), or time in-process: cold, disk, warm")
	n := fs.Int("n", 10, "runs to time in the in-process modes")
	jsonOut := fs.String("json", "", "where the in-process modes write their JSON (- for stdout; default stderr)")
	showVersion := fs.Bool("version", false, "print wazero's version and exit")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: wazero-run [-cache DIR] [-mode once|cold|disk|warm] [-n N] [-json FILE] FILE [ARGS...]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2, nil
	}
	if *showVersion {
		fmt.Fprintln(stdout, "wazero", wazeroVersion())
		return 0, nil
	}
	if fs.NArg() < 1 {
		fs.Usage()
		return 2, errors.New("no wasm file given")
	}
	if *n < 1 {
		return 2, fmt.Errorf("-n %d: want at least 1", *n)
	}
	file := fs.Arg(0)
	wasm, err := os.ReadFile(file)
	if err != nil {
		return 1, err
	}
	g := guest{
		wasm: wasm,
		argv: append([]string{filepath.Base(file)}, fs.Args()[1:]...),
		in:   stdin, out: stdout, err: stderr,
	}
	var cache wazero.CompilationCache
	if *cacheDir != "" {
		if cache, err = wazero.NewCompilationCacheWithDir(*cacheDir); err != nil {
			return 1, fmt.Errorf("-cache: %w", err)
		}
		defer cache.Close(ctx)
	}

	switch *mode {
	case "once":
		code, _, _, err := g.runFresh(ctx, cache)
		return code, err
	case "cold", "disk", "warm":
	default:
		return 2, fmt.Errorf("-mode %q: want once, cold, disk or warm", *mode)
	}
	if *mode == "disk" && cache == nil {
		return 2, errors.New("-mode disk needs -cache DIR")
	}
	if *mode == "cold" {
		cache = nil
	}
	t := timings{Wazero: wazeroVersion(), Mode: *mode, Cache: cache != nil}
	last := 0
	record := func(code int, compile, exec time.Duration) {
		if code != 0 {
			last = code
		}
		t.CompileMs = append(t.CompileMs, ms(compile))
		t.RunMs = append(t.RunMs, ms(exec))
		t.TotalMs = append(t.TotalMs, ms(compile+exec))
	}
	switch *mode {
	case "cold", "disk":
		if *mode == "disk" {
			// Fill the cache; not counted.
			if _, _, _, err := g.runFresh(ctx, cache); err != nil {
				return 1, err
			}
		}
		for range *n {
			code, compile, exec, err := g.runFresh(ctx, cache)
			if err != nil {
				return 1, err
			}
			record(code, compile, exec)
		}
	case "warm":
		r := newRuntime(ctx, nil)
		defer r.Close(ctx)
		start := time.Now()
		compiled, err := r.CompileModule(ctx, g.wasm)
		if err != nil {
			return 1, fmt.Errorf("compile: %w", err)
		}
		compile := time.Since(start)
		for range *n {
			start := time.Now()
			code, err := g.instantiate(ctx, r, compiled)
			if err != nil {
				return 1, err
			}
			record(code, 0, time.Since(start))
		}
		// The one compilation, for reference (not a per-run cost).
		t.CompileMs = []float64{ms(compile)}
	}
	if err := writeJSON(*jsonOut, stdout, stderr, t); err != nil {
		return 1, err
	}
	return last, nil
}

// guest is the module to run and its stdio.
type guest struct {
	wasm     []byte
	argv     []string
	in       io.Reader
	out, err io.Writer
}

func newRuntime(ctx context.Context, cache wazero.CompilationCache) wazero.Runtime {
	cfg := wazero.NewRuntimeConfigCompiler()
	if cache != nil {
		cfg = cfg.WithCompilationCache(cache)
	}
	r := wazero.NewRuntimeWithConfig(ctx, cfg)
	wasi_snapshot_preview1.MustInstantiate(ctx, r)
	return r
}

// runFresh compiles (or loads from cache) and runs the guest in a runtime
// of its own, as a process starting up would.
func (g guest) runFresh(ctx context.Context, cache wazero.CompilationCache) (code int, compile, exec time.Duration, err error) {
	start := time.Now()
	r := newRuntime(ctx, cache)
	defer r.Close(ctx)
	compiled, err := r.CompileModule(ctx, g.wasm)
	if err != nil {
		return 1, 0, 0, fmt.Errorf("compile: %w", err)
	}
	compile = time.Since(start)
	start = time.Now()
	code, err = g.instantiate(ctx, r, compiled)
	return code, compile, time.Since(start), err
}

// instantiate runs the guest's _start to its end and returns its exit code.
func (g guest) instantiate(ctx context.Context, r wazero.Runtime, compiled wazero.CompiledModule) (int, error) {
	cfg := wazero.NewModuleConfig().
		WithName(""). // anonymous: one runtime may hold many instances
		WithArgs(g.argv...).
		WithStdin(g.in).WithStdout(g.out).WithStderr(g.err).
		WithSysWalltime().WithSysNanotime().WithSysNanosleep().
		WithRandSource(rand.Reader)
	mod, err := r.InstantiateModule(ctx, compiled, cfg)
	if err != nil {
		var exit *sys.ExitError
		if errors.As(err, &exit) {
			return int(exit.ExitCode()), nil
		}
		return 1, fmt.Errorf("run: %w", err)
	}
	return 0, mod.Close(ctx)
}

func writeJSON(path string, stdout, stderr io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	b = append(b, '\n')
	switch path {
	case "":
		_, err = stderr.Write(b)
	case "-":
		_, err = stdout.Write(b)
	default:
		err = os.WriteFile(path, b, 0o644)
	}
	return err
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// wazeroVersion is the wazero module version linked in.
func wazeroVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "github.com/tetratelabs/wazero" {
				return d.Version
			}
		}
	}
	return "unknown"
}
