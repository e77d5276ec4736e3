#!/usr/bin/env bash
# Runs every code generator of the repository, with the versions pinned by
# tools/protogen/go.mod (no system protoc needed):
#   - proto/**/*.proto -> *.pb.go and *_grpc.pb.go beside each file
#     (protocompile + protoc-gen-go + protoc-gen-go-grpc);
#   - deepcopy for the Kubernetes API types (zz_generated.deepcopy.go).
# Output goes into the repository, or under the directory given by --out DIR
# (or $WASILET_GENERATE_OUT) with the same layout, which is how
# proto/v0/generate_test.go checks that the checked-in files are current.
# Fast once the module and build caches are warm: `go run` caches the binaries.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="${WASILET_GENERATE_OUT:-}"
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out="$2"; shift 2 ;;
    --out=*) out="${1#--out=}"; shift ;;
    *) echo "usage: $0 [--out DIR]" >&2; exit 2 ;;
  esac
done
out="${out:-$root}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"

# Every .proto under proto/, named relative to it (its import root).
mapfile -t protos < <(cd "$root/proto" && find . -name '*.proto' -printf '%P\n' | LC_ALL=C sort)
# Packages with deepcopy-gen tags.
deepcopy=(./agent/apis/akri/v0)

gen() { go run -C "$root/tools/protogen" . "$@"; }
gen proto -root "$root" -out "$out" -I proto "${protos[@]}"
gen deepcopy -root "$root" -out "$out" "${deepcopy[@]}"
