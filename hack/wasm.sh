#!/usr/bin/env bash
# Builds every Go program under handlers/ (a directory with a main package) to
# a WASI p1 core module, bin/wasm/<name>.wasm, and wraps it as a WASI p2
# command component, bin/wasm/<name>.component.wasm, with jco (installed on
# first use from npm into the user's cache). Rebuilds only what changed.
set -euo pipefail
cd "$(dirname "$0")/.."
JCO_VERSION=1.35.0
cache="${WASILET_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/wasilet}"
jco_dir="$cache/tools/jco-$JCO_VERSION"
jco="$jco_dir/node_modules/.bin/jco"
if [ ! -x "$jco" ]; then
  echo ">> installing jco $JCO_VERSION into $jco_dir" >&2
  mkdir -p "$jco_dir"
  npm install --silent --no-audit --no-fund --prefix "$jco_dir" "@bytecodealliance/jco@$JCO_VERSION" >&2
fi
out=bin/wasm
mkdir -p "$out"
for main in $(grep -l '^package main' handlers/*/*.go 2>/dev/null | xargs -r -n1 dirname | sort -u); do
  name=$(basename "$main")
  mod="$out/$name.wasm"
  comp="$out/$name.component.wasm"
  # Rebuild when any Go file of the program, or go.mod, is newer than the output.
  if [ ! -f "$mod" ] || [ -n "$(find "$main" go.mod -newer "$mod" -name '*.go' -o -newer "$mod" -name go.mod | head -1)" ]; then
    echo ">> wasm: $name (wasip1 module)" >&2
    GOOS=wasip1 GOARCH=wasm go build -trimpath -o "$mod.tmp" "./$main"
    mv "$mod.tmp" "$mod"
    rm -f "$comp"
  fi
  if [ ! -f "$comp" ]; then
    echo ">> wasm: $name (WASI p2 component)" >&2
    "$jco" new "$mod" --wasi-command -o "$comp.tmp"
    mv "$comp.tmp" "$comp"
  fi
done
echo ">> wasm programs in $out" >&2
