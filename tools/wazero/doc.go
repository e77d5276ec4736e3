// Command wazero-run is the wazero baseline of wasilet's module start
// benchmark: it runs a WASI p1 command module with wazero's compiler
// (never the interpreter), optionally with wazero's on-disk compilation
// cache, the way `wasmtime run` and `wasilet run` run one.
//
// Usage:
//
//	wazero-run [-cache DIR] [-mode once|cold|disk|warm] [-n N] [-json FILE] FILE [ARGS...]
//
// The guest gets ARGS after argv[0] (the file's base name), the process's
// stdin, stdout and stderr, the host's clocks, sleep and random source, and
// no files or environment. In the default mode (once) the process exits
// with the guest's exit code, so it can be timed as a whole process.
//
// The other modes time wazero in-process, N times, and write the samples as
// one JSON object to FILE (- for stdout, the default being stderr):
//
//   - cold: a new runtime without a cache for every run (compile + run);
//   - disk: a new runtime for every run, with the compilation cache in
//     -cache (filled by a first, uncounted run);
//   - warm: one runtime and one compiled module for all runs, the way a
//     long-lived host keeps a compiled module in memory (instantiate + run).
//
// Each sample splits into compile (CompileModule, including the cache
// lookup) and run (instantiate, which runs _start, to exit) milliseconds.
// The exit status is 0 when every run exited 0, else the last nonzero code.
//
// It lives in its own module (tools/wazero) so that wazero is not a
// dependency of wasilet itself; hack/tools.sh builds it.
package main
