#!/usr/bin/env bash
# The whole test suite, on a fresh machine or a warm one:
#
#   e2e/test.sh [extra cargo test args...]
#
# 1. formatting and clippy (warnings are errors);
# 2. builds (or takes from the cache) the control plane: etcd, kube-apiserver, kube-controller-manager from Go
#    modules, and helm for the chart tests, and installs the provider API servers the integration tests talk to;
# 3. starts one real control plane on loopback and runs every unit and integration test against it
#    (SYNCRET_TEST_KUBECONFIG); the control plane is stopped afterwards, whatever happens.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
start=$(date +%s)
# Each step line also says how much disk is left where the build writes (a full disk fails the linker with a bus error).
free() { df -Pk "$root" 2>/dev/null | awk 'NR == 2 { printf "%.1f GB free", $4 / 1048576 }'; }
step() { echo "==> [$(( $(date +%s) - start ))s, $(free)] $*" >&2; }
# No incremental state: a clean clone (CI) never reuses it, and for this workspace it is ~1.5 GB on top of the
# ~2 GB of a debug test build. Set CARGO_INCREMENTAL=1 to keep it between local runs.
export CARGO_INCREMENTAL=${CARGO_INCREMENTAL:-0}

step "cargo fmt --check"
cargo fmt --all -- --check
step "cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings
step "control plane binaries"
e2e/build-controlplane.sh >/dev/null
step "helm (chart tests)"
e2e/build-controlplane.sh helm >/dev/null
if [ -x e2e/providers/install.sh ]; then
  step "provider API servers"
  e2e/providers/install.sh all >/dev/null
fi
step "sops and age CLIs (the sops provider's tests)"
e2e/build-sops.sh >/dev/null
step "Go build caches (not needed once the binaries are cached)"
e2e/go-env.sh --clean
step "build tests"
cargo test --workspace --locked --no-run
step "run tests against a real control plane"
e2e/controlplane.sh -- bash -c 'SYNCRET_TEST_KUBECONFIG="$KUBECONFIG" cargo test --workspace --locked "$@"' cargo-test "$@"
step "all tests passed"
