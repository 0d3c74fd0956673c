#!/usr/bin/env bash
# Builds kube-apiserver, kube-controller-manager (garbage collector and namespace controller), kubectl and etcd from the Go modules pinned in e2e/controlplane/{kube,etcd}
# and caches them keyed by the pins, so a second run takes seconds.
#
#   e2e/build-controlplane.sh        # prints the directory holding the control-plane binaries
#   e2e/build-controlplane.sh helm   # prints the path of helm, built from e2e/controlplane/helm (the chart tests)
#
# Cache: $SYNCRET_CACHE_DIR (default ${XDG_CACHE_HOME:-~/.cache}/syncret)/controlplane/<hash of go.mod+go.sum>
# (helm: .../tools/helm-<version>-<hash>, its own key, so adding it rebuilds nothing else).
# A failed build fails loudly and leaves no half-filled cache entry.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache_root=${SYNCRET_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/syncret}

if [ "${1:-}" = helm ]; then
  mod="$here/controlplane/helm"
  key=$(cat "$mod/go.mod" "$mod/go.sum" | sha256sum | cut -c1-16)
  ver=$(awk '$1 == "helm.sh/helm/v3" && $2 ~ /^v/ { print $2; exit } $2 == "helm.sh/helm/v3" { print $3; exit }' "$mod/go.mod")
  out="$cache_root/tools/helm-${ver:-v3}-$key"
  if [ -x "$out/helm" ]; then
    echo "$out/helm"
    exit 0
  fi
  command -v go >/dev/null || { echo "build-controlplane: Go is required (https://go.dev/dl)" >&2; exit 1; }
  mkdir -p "$cache_root/tools"
  tmp=$(mktemp -d "$cache_root/tools/.build.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  . "$here/go-env.sh"
  echo "build-controlplane: building helm ${ver} into $out (first run takes a few minutes)" >&2
  # The Kubernetes version helm assumes offline (`helm template`, lint's deprecation checks): its client-go's.
  cgo=$(cd "$mod" && go list -m -f '{{.Version}}' k8s.io/client-go)
  minor=${cgo#v0.}; minor=${minor%%.*}
  ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=${ver} -X helm.sh/helm/v3/internal/version.metadata="
  for pkg in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
    ldflags="$ldflags -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=${minor}"
  done
  ( cd "$mod" && go build -trimpath -ldflags "$ldflags" -o "$tmp/helm" helm.sh/helm/v3/cmd/helm ) ||
    { echo "build-controlplane: FAILED to build helm" >&2; exit 1; }
  "$tmp/helm" version --short >&2
  rm -rf "$out"
  mv "$tmp" "$out"
  trap - EXIT
  echo "$out/helm"
  exit 0
fi
key=$(cat "$here"/controlplane/kube/go.mod "$here"/controlplane/kube/go.sum \
          "$here"/controlplane/etcd/go.mod "$here"/controlplane/etcd/go.sum | sha256sum | cut -c1-16)
k8s=$(awk '$1 == "k8s.io/kubernetes" && $2 ~ /^v/ { print $2; exit }' "$here/controlplane/kube/go.mod")
out="$cache_root/controlplane/${k8s:-k8s}-$key"

bins="kube-apiserver kube-controller-manager kubectl etcd"
complete=1
for b in $bins; do [ -x "$out/$b" ] || complete=0; done
if [ "$complete" = 1 ]; then
  echo "$out"
  exit 0
fi

command -v go >/dev/null || { echo "build-controlplane: Go is required (https://go.dev/dl)" >&2; exit 1; }
mkdir -p "$cache_root/controlplane"
tmp=$(mktemp -d "$cache_root/controlplane/.build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
. "$here/go-env.sh"
start=$(date +%s)
echo "build-controlplane: building kubernetes ${k8s} and etcd into $out (first run takes several minutes)" >&2
( cd "$here/controlplane/etcd" && go build -trimpath -ldflags "-s -w" -o "$tmp/etcd" go.etcd.io/etcd/server/v3 ) ||
  { echo "build-controlplane: FAILED to build etcd" >&2; exit 1; }
# The version stamp the release build would set (discovery and kubectl show it).
minor=${k8s#v1.}; minor=${minor%%.*}
ldflags="-s -w -X k8s.io/component-base/version.gitVersion=${k8s} -X k8s.io/component-base/version.gitMajor=1"
ldflags="$ldflags -X k8s.io/component-base/version.gitMinor=${minor} -X k8s.io/component-base/version.gitTreeState=clean"
ldflags="$ldflags -X k8s.io/client-go/pkg/version.gitVersion=${k8s} -X k8s.io/client-go/pkg/version.gitMajor=1"
ldflags="$ldflags -X k8s.io/client-go/pkg/version.gitMinor=${minor}"
( cd "$here/controlplane/kube" && go build -trimpath -ldflags "$ldflags" -o "$tmp/" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kubectl ) ||
  { echo "build-controlplane: FAILED to build kube-apiserver/kube-controller-manager/kubectl" >&2; exit 1; }
"$tmp/kube-apiserver" --version >&2
"$tmp/etcd" --version | head -1 >&2
rm -rf "$out"
mv "$tmp" "$out"
trap - EXIT
echo "build-controlplane: built in $(( $(date +%s) - start ))s" >&2
echo "$out"
