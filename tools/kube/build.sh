#!/usr/bin/env bash
# Builds the local cluster's binaries from the Go modules pinned here (go.mod + go.sum)
# into the cache, outside the repository, and only those that are missing:
#   $CACHE/kube/<kubernetes version>/bin/{kube-apiserver,kube-controller-manager,kube-scheduler,etcd}
#   $CACHE/kwok/<kwok version>/bin/kwok and $CACHE/kwok/<kwok version>/stages.yaml
# CACHE is $STACKWRIGHT_CACHE, else $XDG_CACHE_HOME/stackwright, else ~/.cache/stackwright.
# Concurrent callers (make, pytest workers) wait on one lock; the loser finds it built.
# Without Go it says what is missing and exits 0: the cluster tests then skip (or fail in CI).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cache=${STACKWRIGHT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/stackwright}
go_bin=${GO:-$(command -v go || echo /usr/local/go/bin/go)}

if ! [ -x "$go_bin" ]; then
  echo "kube-tools: Go not found (set GO=/path/to/go); the local cluster tests will skip" >&2
  exit 0
fi

pinned() {  # pinned <go.mod> <module>: the version go.mod requires
  awk -v m="$2" '$1 == m { print $2 } $1 == "require" && $2 == m { print $3 }' "$1" | head -n1
}

kube_version=$(pinned "$here/server/go.mod" k8s.io/kubernetes)
kwok_version=$(pinned "$here/kwok/go.mod" sigs.k8s.io/kwok)
kube_bin=$cache/kube/$kube_version/bin
kwok_dir=$cache/kwok/$kwok_version

missing() {  # missing <file>...: true when any is absent
  for f in "$@"; do [ -x "$f" ] || [ -f "$f" ] || return 0; done
  return 1
}

build() {  # build <module dir> <out dir> <ldflags> <package>...: into a scratch dir, then moved in place
  local module=$1 out=$2 ldflags=$3
  shift 3
  local scratch
  scratch=$(mktemp -d "$out.tmp.XXXXXX")
  trap "rm -rf '$scratch'" EXIT  # a failed or interrupted build leaves nothing behind
  (cd "$module" && "$go_bin" build -mod=readonly -trimpath -ldflags="$ldflags" -o "$scratch/" "$@")
  mv "$scratch"/* "$out/"
  rmdir "$scratch"
}

kube_ldflags() {  # what Kubernetes' own build stamps in, so /version and --version name the release
  local major minor flags=""
  major=$(echo "${kube_version#v}" | cut -d. -f1)
  minor=$(echo "$kube_version" | cut -d. -f2)
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    flags+=" -X $pkg.gitVersion=$kube_version -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
    flags+=" -X $pkg.gitTreeState=clean -X $pkg.gitCommit="
  done
  echo "$flags"
}

unstamped() {  # an older build of this script did not stamp the version
  [ "$("$kube_bin/kube-apiserver" --version 2>/dev/null)" != "Kubernetes $kube_version" ]
}

stages() {  # kwok ships its default stages as YAML in its module; the controller needs them as config
  local src
  src=$(cd "$here/kwok" && "$go_bin" list -mod=readonly -m -f '{{.Dir}}' sigs.k8s.io/kwok)
  local stage=$src/kustomize/stage
  {
    for f in node/fast/node-initialize.yaml node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
             pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml; do
      echo "---"
      cat "$stage/$f"
    done
  } > "$kwok_dir/stages.yaml.tmp"
  mv "$kwok_dir/stages.yaml.tmp" "$kwok_dir/stages.yaml"
}

mkdir -p "$kube_bin" "$kwok_dir/bin"
exec 9>"$cache/.kube-tools.lock"
flock 9

if missing "$kube_bin/kube-apiserver" "$kube_bin/kube-controller-manager" "$kube_bin/kube-scheduler" "$kube_bin/etcd" \
    || unstamped; then
  echo "kube-tools: building Kubernetes $kube_version and etcd into $kube_bin (first time: many minutes)" >&2
  build "$here/server" "$kube_bin" "$(kube_ldflags)" k8s.io/kubernetes/cmd/kube-apiserver \
    k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kube-scheduler ./etcd
fi
if missing "$kwok_dir/bin/kwok"; then
  echo "kube-tools: building kwok $kwok_version into $kwok_dir/bin" >&2
  build "$here/kwok" "$kwok_dir/bin" "" sigs.k8s.io/kwok/cmd/kwok
fi
if missing "$kwok_dir/stages.yaml"; then
  stages
fi
