# wasilet — every workflow of the project. Run through ./just, which installs
# a pinned `just` on first use. `./just --list` shows the recipes.

set shell := ["bash", "-euo", "pipefail", "-c"]
set positional-arguments

version := `git describe --tags --always --dirty 2>/dev/null || echo v0.1.0-dev`
commit  := `git rev-parse HEAD 2>/dev/null || echo unknown`
ldflags := "-X github.com/wasilet/wasilet/internal/version.version=" + version + " -X github.com/wasilet/wasilet/internal/version.commit=" + commit
state   := env_var_or_default("WASILET_STATE", justfile_directory() / ".state")

# List the recipes.
default:
    @./just --list

# Build (or reuse from the cache) the pinned control plane, registry and CLIs; prints their directory.
tools:
    @hack/tools.sh

# Build the wasilet binary into bin/.
build:
    go build -ldflags '{{ldflags}}' -o bin/wasilet ./cmd/wasilet

# Build the containerd shim (runtime type io.containerd.wasilet.v1) into bin/; put it on containerd's PATH (deploy/shim/).
shim:
    go build -ldflags '{{ldflags}}' -o bin/containerd-shim-wasilet-v1 ./cmd/containerd-shim-wasilet-v1

# Build the Wasm programs under handlers/ (wasip1 modules and WASI p2 components) into bin/wasm/.
wasm:
    hack/wasm.sh

# Regenerate the checked-in generated code (proto Go code, deepcopy) with pinned generators.
generate:
    hack/generate.sh

# Run the whole test suite: unit and end-to-end tests against a real control plane and registry, then 3 s of fuzzing per target and the benchmarks' smoke run.
test: tools wasm build
    WASILET_TOOLS_DIR="$(hack/tools.sh --dir)" WASILET_WASM_DIR="$PWD/bin/wasm" WASILET_BIN="$PWD/bin/wasilet" \
      go test -count=1 -timeout 40m ./... 2>&1 | tee /tmp/wasilet-test.log
    # A brief fuzzing pass over every target (`./just fuzz` searches longer).
    hack/fuzz.sh 3
    # Every benchmark once at its smallest size, so the harness cannot rot.
    WASILET_TOOLS_DIR="$(hack/tools.sh --dir)" WASILET_WASM_DIR="$PWD/bin/wasm" WASILET_BIN="$PWD/bin/wasilet" \
      hack/bench.sh --smoke

# Start the local cluster (etcd, kube-apiserver, controller-manager, scheduler, registry); idempotent.
cluster-up: tools build
    WASILET_TOOLS_DIR="$(hack/tools.sh --dir)" bin/wasilet cluster up --state '{{state}}'

# Stop the local cluster, the nodes `just demo` started on it, and everything else it started.
cluster-down: build
    hack/demo.sh '{{state}}' --down

# Start a wasilet node against the local cluster (data in <state>/node); approve the serving CSR it prints.
node *args: cluster-up
    bin/wasilet node --cluster-state '{{state}}' --data-dir '{{state}}/node' "$@"

# `just run node` starts a node; `just run <anything else>` runs `wasilet run …`.
run what *args: build
    if [ "{{what}}" = node ]; then ./just node "${@:2}"; else bin/wasilet run "$@"; fi

# The reference scenario, end to end, on an embedded local cluster.
demo: tools wasm build
    WASILET_TOOLS_DIR="$(hack/tools.sh --dir)" hack/demo.sh '{{state}}'

# Stop everything `just demo` started (controller, proxy, node, cluster); the state stays.
demo-down: build
    hack/demo.sh '{{state}}' --down

# Benchmarks against real baselines in the same run: prints the summary table and regenerates docs/benchmarks.md with plots (figures are reported, never asserted).
bench: tools wasm build
    WASILET_TOOLS_DIR="$(hack/tools.sh --dir)" WASILET_WASM_DIR="$PWD/bin/wasm" WASILET_BIN="$PWD/bin/wasilet" \
      hack/bench.sh

# Every benchmark at its smallest size, table only (CI runs it through `just test` so the harness cannot rot).
bench-smoke: tools wasm build
    WASILET_TOOLS_DIR="$(hack/tools.sh --dir)" WASILET_WASM_DIR="$PWD/bin/wasm" WASILET_BIN="$PWD/bin/wasilet" \
      hack/bench.sh --smoke

# Run the fault scenarios (node killed with 100 pods, registry outage, full disk, …) and regenerate docs/reliability.md.
reliability: tools wasm build
    WASILET_TOOLS_DIR="$(hack/tools.sh --dir)" WASILET_WASM_DIR="$PWD/bin/wasm" WASILET_BIN="$PWD/bin/wasilet" \
      hack/reliability.sh

# Fuzz every Go fuzz target for `seconds` each, one after the other; stops at the first failure (seed corpora already run in `go test`).
fuzz seconds="30":
    hack/fuzz.sh '{{seconds}}'
