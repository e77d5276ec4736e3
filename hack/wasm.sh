#!/usr/bin/env bash
# Builds every Go program under handlers/ (a directory with a main package) to
# a WASI p1 core module, bin/wasm/<name>.wasm, and to a WASI p2 command
# component, bin/wasm/<name>.component.wasm: a second, reactor build of the
# program wrapped with jco (installed on first use from npm into the user's
# cache). Rebuilds only what changed. handlers/sqlite-hello, the one C
# program, is built with zig cc to bin/wasm/sqlite-hello.wasm (below).
#
# A program that imports handlers/internal/akriguest is a discovery handler
# for the agent's akri:discovery world (proto/wit) instead: it is built only
# as a component, bin/wasm/<name>.component.wasm — a Go WASI reactor with
# the wasireactor tag, the world's type section embedded
# (hack/embed-wit.mjs) and jco's preview1 reactor adapter.
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
wasmalloc=github.com/wasilet/wasilet/handlers/internal/wasmalloc
akriguest=github.com/wasilet/wasilet/handlers/internal/akriguest
mkdir -p "$out"
for main in $(grep -l '^package main' handlers/*/*.go 2>/dev/null | xargs -r -n1 dirname | sort -u); do
  name=$(basename "$main")
  mod="$out/$name.wasm"
  comp="$out/$name.component.wasm"
  # Rebuild when any Go file of the program or of a package of this module it
  # imports (handlers/debugecho, proxy/exchange, …), or go.mod, is newer than
  # the output.
  deps=$(GOOS=wasip1 GOARCH=wasm go list -deps -f '{{if and (not .Standard) .Module}}{{if .Module.Main}}{{.Dir}}{{end}}{{end}}' "./$main")
  if GOOS=wasip1 GOARCH=wasm go list -deps -tags wasireactor "./$main" | grep -qx "$akriguest"; then
    # shellcheck disable=SC2086
    if [ ! -f "$comp" ] || [ -n "$(find $deps proto/wit -maxdepth 1 -newer "$comp" \( -name '*.go' -o -name '*.wit' \) | head -1)" ] || [ go.mod -nt "$comp" ]; then
      echo ">> wasm: $name (akri:discovery component)" >&2
      GOOS=wasip1 GOARCH=wasm go build -trimpath -buildmode=c-shared -tags wasireactor -o "$comp.core.tmp" "./$main"
      node hack/embed-wit.mjs "$jco_dir" proto/wit/discovery.wit discovery-handler "$comp.core.tmp" "$comp.embed.tmp"
      "$jco" new "$comp.embed.tmp" --wasi-reactor -o "$comp.tmp"
      rm -f "$comp.core.tmp" "$comp.embed.tmp"
      mv "$comp.tmp" "$comp"
    fi
    continue
  fi
  # shellcheck disable=SC2086
  if [ ! -f "$mod" ] || [ -n "$(find $deps -maxdepth 1 -newer "$mod" -name '*.go' | head -1)" ] || [ go.mod -nt "$mod" ]; then
    echo ">> wasm: $name (wasip1 module)" >&2
    GOOS=wasip1 GOARCH=wasm go build -trimpath -o "$mod.tmp" "./$main"
    mv "$mod.tmp" "$mod"
    rm -f "$comp"
  fi
  if [ ! -f "$comp" ]; then
    # The component is made from a second build of the program: a Go WASI
    # reactor (-buildmode=c-shared) with the wasicomponent tag, under which
    # handlers/internal/wasmalloc exports _start (running main) and an
    # allocator for the preview1 adapter. From the plain command module the
    # adapter would take its memory with memory.grow behind the Go runtime's
    # back, and Go could no longer grow its heap (see that package's doc).
    echo ">> wasm: $name (WASI p2 component)" >&2
    if ! GOOS=wasip1 GOARCH=wasm go list -deps -tags wasicomponent "./$main" | grep -qx "$wasmalloc"; then
      echo "hack/wasm.sh: $main must import _ \"$wasmalloc\" to be built as a component" >&2
      exit 1
    fi
    GOOS=wasip1 GOARCH=wasm go build -trimpath -buildmode=c-shared -tags wasicomponent -o "$comp.core.tmp" "./$main"
    "$jco" new "$comp.core.tmp" --wasi-command -o "$comp.tmp"
    rm -f "$comp.core.tmp"
    mv "$comp.tmp" "$comp"
  fi
done

# handlers/sqlite-hello: a WASI p1 module built from C (SQLite and a main),
# with zig cc and the SQLite amalgamation that hack/tools.sh fetches. SQLite
# is configured for one thread, no extensions and no shared memory, which
# wasi-libc does not provide.
c_main=handlers/sqlite-hello/main.c
c_mod="$out/sqlite-hello.wasm"
if [ ! -f "$c_mod" ] || [ "$c_main" -nt "$c_mod" ] || [ tools/cmodule.env -nt "$c_mod" ] || [ "$0" -nt "$c_mod" ]; then
  tools=$(hack/tools.sh --dir zig sqlite3-src)
  echo ">> wasm: sqlite-hello (wasip1 module, C)" >&2
  "$tools/zig" cc -target wasm32-wasi -O2 -s \
    -DSQLITE_THREADSAFE=0 -DSQLITE_OMIT_LOAD_EXTENSION -DSQLITE_OMIT_WAL -DSQLITE_MAX_MMAP_SIZE=0 \
    -DSQLITE_OMIT_SHARED_CACHE -DSQLITE_OMIT_DEPRECATED -DSQLITE_DEFAULT_MEMSTATUS=0 \
    -I "$tools/sqlite3-src" "$c_main" "$tools/sqlite3-src/sqlite3.c" -o "$c_mod.tmp"
  mv "$c_mod.tmp" "$c_mod"
fi
echo ">> wasm programs in $out" >&2
