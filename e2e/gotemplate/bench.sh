#!/usr/bin/env bash
# The template engine's micro benchmark: parse + execute of typical ESO templates (dockerconfigjson, a JDBC URL,
# PKCS#12 to PEM, a config file with range) by syncret's engine (release build) and by Go's text/template with
# ESO's function map (e2e/gotemplate, built by build.sh), on the same templates and data. Prints a Markdown table
# (docs/benchmarks.md, "Template engine").
#
#   e2e/gotemplate/bench.sh [--n 20000]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
bin=$("$root/e2e/gotemplate/build.sh")
cd "$root"
cargo build --release --locked -p syncret-template --example bench >&2
exec target/release/examples/bench --go "$bin" "$@"
