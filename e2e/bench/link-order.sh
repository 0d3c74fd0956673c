#!/usr/bin/env bash
# Regenerates operator/link-order.txt, the order in which the release build lays out the functions it runs:
#
#   e2e/bench/link-order.sh [DIR]        (DIR: release binaries of this tree already built, instead of building them)
#
# Builds the release binaries, starts a local control plane (e2e/controlplane.sh) and runs a small benchmark (both
# providers, refresh waves, new ExternalSecrets during a wave, a hung store beside) with the operator under
# valgrind's callgrind, then writes every function of the syncret binary that ran, the busiest first.
# operator/build.rs hands the file to the linker (`--symbol-ordering-file`), so those functions sit together at the
# start of `.text` instead of among the provider and generator code a deployment never calls.
#
# Why: code pages are part of the operator's resident memory. The kernel maps a code page fault's whole 64 KB
# neighbourhood, so resident code is the number of distinct 64 KB windows the run touches; with fat LTO the hot
# functions are spread over the whole ~36 MB `.text` (docs/benchmarks.md, "Where the extra ~10 MB goes").
#
# The names are mangled symbols; their hashes depend on the crate and its dependencies' versions, not on function
# bodies, so the file stays useful across ordinary changes. Symbols that no longer exist are ignored by the linker;
# rerun this after dependency upgrades or large changes (the bench's peak RSS shows when it is stale).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
command -v valgrind >/dev/null || { echo "link-order.sh needs valgrind (apt-get install valgrind)" >&2; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/syncret-link-order.XXXXXX")
trap 'rm -rf "$work"' EXIT
if [ -n "${1:-}" ]; then
  # A directory holding release binaries of this tree already built (syncret, syncret-bench).
  cp "$1/syncret" "$1/syncret-bench" "$work/"
else
  echo "==> building syncret and syncret-bench (release)" >&2
  cargo build --release --locked -p syncret -p syncret-bench --quiet
  target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
  cp "$target_dir/release/syncret" "$target_dir/release/syncret-bench" "$work/"
fi
export SYNCRET_CONTROLPLANE_BIN
SYNCRET_CONTROLPLANE_BIN=$(e2e/build-controlplane.sh)
# callgrind writes its profile when the operator exits (the bench stops it with SIGTERM and waits 30 s).
e2e/controlplane.sh -- "$work/syncret-bench" \
  --operator "$(command -v valgrind) --tool=callgrind --callgrind-out-file=$work/callgrind.%p --dump-instr=no --compress-strings=no --compress-pos=no --demangle=no $work/syncret" \
  --operator-version "link-order profile" \
  --n 300 --new-es 20 --hung 5 --refresh-interval 60s --no-floor --out "$work/report" >&2
nm --defined-only "$work/syncret" | awk '$2 ~ /^[tTwW]$/ { print $3 }' | sort -u >"$work/symbols"
python3 - "$work/symbols" "$work"/callgrind.* >operator/link-order.txt <<'EOF'
import sys
# Self cost per function from callgrind's uncompressed output: the cost lines after `fn=` are the function's own;
# the one line after each `calls=` is a callee's inclusive cost and is skipped.
symbols = set(open(sys.argv[1]).read().split())
cost = {}
for path in sys.argv[2:]:
    fn, skip = None, False
    for line in open(path, errors="replace"):
        if line.startswith("fn="):
            fn = line[3:].strip()
        elif line.startswith("calls="):
            skip = True
        elif line[:1].isdigit() or line[:1] in "+-*":
            if skip:
                skip = False
            elif fn in symbols:
                parts = line.split()
                cost[fn] = cost.get(fn, 0) + (int(parts[1]) if len(parts) > 1 else 0)
for name in sorted(cost, key=lambda n: (-cost[n], n)):
    print(name)
EOF
echo "==> operator/link-order.txt: $(wc -l <operator/link-order.txt) functions" >&2
