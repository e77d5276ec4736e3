#!/usr/bin/env bash
# Fuzzes every Go fuzz target (func FuzzXxx(*testing.F)) of the module, one
# after the other, for SECONDS_PER_TARGET seconds each (default 30), and
# prints one summary line per target. It stops at the first failure and
# prints where go test wrote the failing input
# (<package>/testdata/fuzz/<FuzzName>/<id>): keep it as a regression seed.
#
# Plain `go test ./...` already runs every seed corpus entry (f.Add and
# testdata/fuzz) as an ordinary test; this is the longer search.
#
# Environment:
#   FUZZ_RUN       only targets whose name matches this extended regexp
#   FUZZ_PARALLEL  fuzzing workers per target (go test -parallel; default GOMAXPROCS)
#   FUZZ_MINIMIZE  go test -fuzzminimizetime (default 100x: an input that
#                  finds new coverage is minimized for 100 runs, not 60 s,
#                  so that short runs mostly fuzz)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

usage() { echo "usage: $0 [SECONDS_PER_TARGET]" >&2; exit 2; }
[ $# -le 1 ] || usage
secs="${1:-30}"
[[ "$secs" =~ ^[1-9][0-9]*$ ]] || usage
minimize="${FUZZ_MINIMIZE:-100x}"
parallel=()
if [ -n "${FUZZ_PARALLEL:-}" ]; then parallel=(-parallel "$FUZZ_PARALLEL"); fi

log="$(mktemp)"
trap 'rm -f "$log"' EXIT

# Packages of this module with a test file declaring a fuzz target, then the
# targets go test itself lists (build tags respected).
pkgs=() dirs=() names=()
while read -r pkg dir; do
  grep -qsE '^func Fuzz[[:alnum:]_]*\([[:alnum:]_]+ \*testing\.F\)' "$dir"/*_test.go || continue
  while read -r name; do
    if [ -n "${FUZZ_RUN:-}" ] && ! [[ "$name" =~ $FUZZ_RUN ]]; then continue; fi
    pkgs+=("$pkg") dirs+=("${dir#"$root"/}") names+=("$name")
  done < <(go test -list '^Fuzz' "$pkg" | grep -E '^Fuzz')
done < <(go list -f '{{if or .TestGoFiles .XTestGoFiles}}{{.ImportPath}} {{.Dir}}{{end}}' ./...)

if [ ${#names[@]} -eq 0 ]; then
  echo "fuzz: no fuzz targets${FUZZ_RUN:+ matching $FUZZ_RUN}" >&2
  exit 1
fi
echo "fuzz: ${#names[@]} targets, ${secs}s each"

for i in "${!names[@]}"; do
  pkg="${pkgs[$i]}" dir="${dirs[$i]}" name="${names[$i]}"
  start=$SECONDS
  if go test -run '^$' -fuzz "^${name}\$" -fuzztime "${secs}s" -fuzzminimizetime "$minimize" \
    "${parallel[@]}" "$pkg" >"$log" 2>&1; then
    last="$(grep -E '^fuzz: elapsed' "$log" | tail -n 1 || true)"
    execs="$(sed -nE 's/.*execs: ([0-9]+).*/\1/p' <<<"$last")"
    corpus="$(sed -nE 's/.*\(total: ([0-9]+)\).*/\1/p' <<<"$last")"
    printf 'ok    %-40s %-24s %4ds  %9s execs  corpus %s\n' "$dir" "$name" $((SECONDS - start)) "${execs:-?}" "${corpus:-?}"
    continue
  fi
  # Go before 1.27 may end a run with a bare "context deadline exceeded" when
  # -fuzztime expires while a worker is busy (go.dev/issue/75804): no input
  # was written and no test failed, so it is not a finding.
  if [ "$(grep -cE '^\s*--- FAIL' "$log")" = 1 ] && grep -A1 -E "^--- FAIL: ${name} " "$log" | grep -qx '    context deadline exceeded' &&
    ! grep -qE 'Failing input written|failure while testing seed corpus' "$log"; then
    printf 'ok    %-40s %-24s %4ds  (stopped by go.dev/issue/75804, not a finding)\n' "$dir" "$name" $((SECONDS - start))
    continue
  fi
  printf 'FAIL  %-40s %-24s %4ds\n' "$dir" "$name" $((SECONDS - start))
  grep -vE '^fuzz: elapsed' "$log" >&2 || true
  input="$(sed -nE 's/.*Failing input written to (.*)$/\1/p' "$log" | tail -n 1)"
  if [ -n "$input" ]; then
    echo "fuzz: failing input: $dir/$input" >&2
    echo "fuzz: re-run: go test -run '^${name}/${input##*/}\$' ./$dir" >&2
  else
    echo "fuzz: $name failed before writing an input (a seed corpus entry, or the build; see above)" >&2
  fi
  exit 1
done
echo "fuzz: all ${#names[@]} targets passed"
