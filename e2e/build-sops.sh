#!/usr/bin/env bash
# Builds the `sops` and `age` / `age-keygen` command-line tools from the Go modules pinned in e2e/sops/go.mod
# (SOPS from its Go module github.com/getsops/sops/v3, age from filippo.io/age: the same age module SOPS itself
# links), and caches them keyed by the pins, so a second run takes a second. The sops provider's tests encrypt
# their documents with these real tools and check that `syncret seal` output decrypts with the real `sops`.
#
#   e2e/build-sops.sh        # prints the directory holding sops, age and age-keygen
#
# Cache: $SYNCRET_CACHE_DIR (default ${XDG_CACHE_HOME:-~/.cache}/syncret)/tools/sops-<version>-<hash of go.mod+go.sum>.
# A failed build fails loudly and leaves no half-filled cache entry.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache_root=${SYNCRET_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/syncret}
mod="$here/sops"
key=$(cat "$mod/go.mod" "$mod/go.sum" | sha256sum | cut -c1-16)
ver=$(awk '$1 == "github.com/getsops/sops/v3" { print $2; exit }' "$mod/go.mod")
out="$cache_root/tools/sops-${ver:-v3}-$key"

complete=1
for b in sops age age-keygen; do [ -x "$out/$b" ] || complete=0; done
if [ "$complete" = 1 ]; then
  echo "$out"
  exit 0
fi

command -v go >/dev/null || { echo "build-sops: Go is required (https://go.dev/dl)" >&2; exit 1; }
mkdir -p "$cache_root/tools"
tmp=$(mktemp -d "$cache_root/tools/.build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
. "$here/go-env.sh"
echo "build-sops: building sops ${ver} and age into $out (first run takes a few minutes)" >&2
( cd "$mod" && go build -trimpath -ldflags "-s -w" -o "$tmp/" \
    github.com/getsops/sops/v3/cmd/sops filippo.io/age/cmd/age filippo.io/age/cmd/age-keygen ) ||
  { echo "build-sops: FAILED to build sops/age" >&2; exit 1; }
"$tmp/sops" --version --disable-version-check 2>/dev/null | head -1 >&2 || true
rm -rf "$out"
mv "$tmp" "$out"
trap - EXIT
echo "$out"
