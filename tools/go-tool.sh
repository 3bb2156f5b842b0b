#!/bin/sh
# Build one Go tool pinned by a wrapper module's go.mod/go.sum (checksum-verified by the Go
# toolchain against go.sum) into OUT, unless OUT exists. A lock file serialises concurrent
# builds (two `make` runs, parallel test workers); the binary is moved into place atomically.
# usage: go-tool.sh MODULE_DIR PACKAGE OUT [LDFLAGS]
set -eu
mod_dir=$1 package=$2 out=$3 ldflags=${4:-}
[ -x "$out" ] && exit 0
GO=${GO:-$(command -v go || echo /usr/local/go/bin/go)}
[ -x "$GO" ] || { echo "go-tool.sh: Go 1.24+ is needed to build $package (set GO=/path/to/go)" >&2; exit 1; }
mkdir -p "$(dirname "$out")"
exec 9>"$out.lock"
flock 9
[ -x "$out" ] && exit 0
echo "building $package into $out (a few minutes, once)" >&2
cd "$mod_dir"
CGO_ENABLED=0 GOFLAGS="-mod=readonly -buildvcs=false" "$GO" build -trimpath -ldflags "-s -w $ldflags" -o "$out.tmp" "$package"
mv "$out.tmp" "$out"
