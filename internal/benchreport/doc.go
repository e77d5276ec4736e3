// Package benchreport owns the benchmarks' record: each benchmark that
// compares wasilet with what a user would run instead (containerd + runc, the
// wasmtime CLI, wazero, upstream Akri, the original demo's timing) measures
// both sides in the same run and hands the raw samples to Record, which
// appends them to the file named by $WASILET_BENCH_REPORT when set.
// `just bench` runs the benchmarks and renders the records with Render into
// one summary table and docs/benchmarks.md (with plots, see Plot);
// `just bench-smoke` runs every benchmark at its smallest size
// ($WASILET_BENCH_SMOKE=1, see Size) so the harness cannot rot.
//
// A baseline that cannot run on the machine is recorded with the reason
// (Result.NoBaseline) and shown as such: never a made-up figure.
package benchreport
