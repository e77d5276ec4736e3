#!/usr/bin/env bash
# Runs the comparison benchmarks (each measures wasilet and what a user would
# run instead, in the same run, and records both through
# internal/benchreport.Record), prints the summary table and renders
# docs/benchmarks.md with its plots.
#
# Usage: hack/bench.sh [--smoke]
#   --smoke  every benchmark at its smallest size ($WASILET_BENCH_SMOKE=1),
#            the table only (docs/ untouched): CI runs it so the harness
#            cannot rot; nothing about time is asserted.
# Needs WASILET_TOOLS_DIR, WASILET_WASM_DIR and WASILET_BIN like `just test`.
# Full output: /tmp/wasilet-bench.log. The exit status is non-zero when a
# benchmark failed or recorded nothing.
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
smoke=false
case "${1:-}" in
  --smoke) smoke=true; export WASILET_BENCH_SMOKE=1 ;;
  "") ;;
  *) echo "bench.sh: unknown argument $1" >&2; exit 2 ;;
esac
records="$(mktemp)"
trap 'rm -f "$records"' EXIT
log=/tmp/wasilet-bench.log
: >"$log"
status=0
# The module start baselines (wasmtime CLI, wazero-run), cached beside the
# other tools; containerd and runc for the container baseline.
hack/tools.sh wasmtime wazero-run >/dev/null || status=1

# bench PACKAGE REGEXP: one package's benchmarks, each run once (each
# benchmark takes its own samples, sized by benchreport.Size).
bench() {
  echo "== $1 $2" >&2
  WASILET_BENCH_REPORT="$records" go test -count=1 -p 1 -timeout 60m -run '^$' -bench "$2" -benchtime 1x "$1" \
    >>"$log" 2>&1
  local s=$?
  if [ "$s" -ne 0 ]; then
    echo "bench.sh: $1 $2 failed (exit $s); see $log" >&2
    grep -E -- '--- FAIL|FAIL|panic:|_test.go:[0-9]+:' "$log" | tail -20 >&2
    status=1
  fi
}

bench ./internal/nodebench '^(BenchmarkPodStart|BenchmarkDensity)$'
bench ./cmd/wasilet '^BenchmarkModuleStart$'
bench ./proxy/e2e '^(BenchmarkDevicePath|BenchmarkComponentHandler)$'
bench ./agent/e2e '^BenchmarkAgentScale$'
bench ./shim '^(BenchmarkStartExit|BenchmarkRSS)$'

if $smoke; then
  go run ./hack/bench "$records" || status=1
else
  # The records stay beside the report (not in docs/benchmarks/, which the
  # renderer empties), so it can be rendered again after a change to the
  # renderer: go run ./hack/bench docs/benchmarks.records.json docs/benchmarks.md
  cp "$records" docs/benchmarks.records.json
  go run ./hack/bench "$records" docs/benchmarks.md || status=1
fi
exit "$status"
