#!/usr/bin/env bash
# Builds gotemplate (Go's text/template with ESO v2.9's function map: the oracle of syncret's template engine) into
# a cache, and prints the binary's path on stdout.
#
#   e2e/gotemplate/build.sh
#
# Cache: ${SYNCRET_CACHE_DIR:-${XDG_CACHE_HOME:-~/.cache}/syncret}/tools/gotemplate-<hash of go.mod, go.sum, *.go>.
# The modules come from the Go module proxy (pinned in go.mod/go.sum beside this script); the build uses syncret's
# own Go caches (e2e/go-env.sh). Cold: about a minute (module download and compile); cached: instant. Builds are
# serialised by a lock, so parallel test binaries can call this.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache_root=${SYNCRET_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/syncret}
tools=$cache_root/tools
key=$(cat "$here/go.mod" "$here/go.sum" "$here"/*.go | sha256sum | cut -c1-12)
dir=$tools/gotemplate-$key
log() { echo "gotemplate: $*" >&2; }

mkdir -p "$tools"
exec 9>"$tools/.gotemplate.lock"
flock 9
if [ ! -x "$dir/gotemplate" ]; then
  command -v go >/dev/null || { log "Go is required"; exit 1; }
  start=$SECONDS
  log "building into $dir"
  tmp=$(mktemp -d "$tools/.build.XXXXXX")
  ( . "$here/../go-env.sh" && cd "$here" && go build -trimpath -o "$tmp/gotemplate" . ) \
    || { rm -rf "$tmp"; log "FAILED: go build in e2e/gotemplate"; exit 1; }
  rm -rf "$dir"
  mv "$tmp" "$dir"
  log "built in $((SECONDS - start))s"
fi
echo "$dir/gotemplate"
