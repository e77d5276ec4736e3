#!/usr/bin/env bash
# Runs the fault scenarios (end-to-end tests that call
# internal/reliability.Record) and renders their records into
# docs/reliability.md, even when some fail (they show as FAILED there); the
# exit status is the tests'. Needs WASILET_TOOLS_DIR, WASILET_WASM_DIR and
# WASILET_BIN like `just test`. Full output: /tmp/wasilet-reliability.log.
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
mkdir -p docs
records="$(mktemp)"
trap 'rm -f "$records"' EXIT
: >/tmp/wasilet-reliability.log
status=0

# scenarios PACKAGE RUN-REGEXP
scenarios() {
  WASILET_RELIABILITY_REPORT="$records" go test -count=1 -timeout 40m -v -run "$2" "$1" \
    2>&1 | tee -a /tmp/wasilet-reliability.log
  status=$(( status | PIPESTATUS[0] ))
}

# Every test of internal/reliability, and the scenarios that live beside the
# code they exercise.
scenarios ./internal/reliability '.'
scenarios ./internal/node '^TestE2EDiskFull$'
scenarios ./proxy/e2e '^TestProxyKilled$'
scenarios ./agent/e2e '^TestStandaloneAgentRestarts$'
go run ./hack/reliability "$records" docs/reliability.md || status=1
exit "$status"
