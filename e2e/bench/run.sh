#!/usr/bin/env bash
# The scale benchmark on a fresh local control plane:
#
#   e2e/bench/run.sh [syncret-bench flags...]        e.g.  e2e/bench/run.sh --n 10000 --write-doc docs/benchmarks.md
#
# Builds syncret and syncret-bench in release mode, starts etcd + kube-apiserver + kube-controller-manager on
# loopback (e2e/controlplane.sh), installs the CRDs and runs the benchmark against it; the control plane is stopped
# and removed afterwards. The syncret binary is copied out of the target directory first so a parallel build cannot
# replace it mid-run. Another implementation runs side by side with
#   --other-operator "/path/to/external-secrets --loglevel=error" --other-name eso --other-version "v2.9.0 (commit …)"
# See e2e/bench/README.md for what is measured.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
echo "==> building syncret and syncret-bench (release)" >&2
cargo build --release --locked -p syncret -p syncret-bench --quiet
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
bin_dir=$(mktemp -d "${TMPDIR:-/tmp}/syncret-bench-bin.XXXXXX")
trap 'rm -rf "$bin_dir"' EXIT
cp "$target_dir/release/syncret" "$target_dir/release/syncret-bench" "$bin_dir/"
export SYNCRET_CONTROLPLANE_BIN
SYNCRET_CONTROLPLANE_BIN=$(e2e/build-controlplane.sh)
command="e2e/bench/run.sh $*"
operator=(--operator "$bin_dir/syncret" --operator-version "$("$bin_dir/syncret" --version) at $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . ':!docs' || echo -dirty)")
case " $* " in *" --operator "*|*" --operator="*) operator=() ;; esac
e2e/controlplane.sh -- "$bin_dir/syncret-bench" "${operator[@]}" --command "$command" "$@"
