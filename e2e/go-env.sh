# Sourced by the scripts that build Go programs (the control plane and helm: e2e/build-controlplane.sh; the
# provider fakes: e2e/providers/install.sh). Their Go build and module caches are syncret's own, under the cache
# dir, not the user's ~/.cache/go-build and ~/go: the Kubernetes build leaves ~4.5 GB of build cache and ~1.2 GB of
# modules that nothing needs once the binaries are cached, and e2e/test.sh removes them after set-up
# (`e2e/go-env.sh --clean`; SYNCRET_KEEP_GO_CACHE=1 keeps them, e.g. while changing the pins).
syncret_go_dir=${SYNCRET_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/syncret}/go
export GOCACHE=$syncret_go_dir/build GOMODCACHE=$syncret_go_dir/mod
export CGO_ENABLED=0 GOFLAGS=-mod=mod GOTOOLCHAIN=local

if [ "${1:-}" = --clean ] && [ "${BASH_SOURCE[0]}" = "$0" ]; then
  [ "${SYNCRET_KEEP_GO_CACHE:-0}" = 1 ] && exit 0
  [ -d "$syncret_go_dir" ] || exit 0
  echo "go-env: removing the Go build caches in $syncret_go_dir ($(du -sh "$syncret_go_dir" 2>/dev/null | cut -f1))" >&2
  # Module files are read-only; go clean knows how to remove them.
  if [ -d "$GOMODCACHE" ] && command -v go >/dev/null; then go clean -modcache || true; fi
  chmod -R u+w "$syncret_go_dir" 2>/dev/null || true
  rm -rf "$syncret_go_dir"
fi
