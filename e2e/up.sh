#!/usr/bin/env bash
# Brings up a local control plane (etcd + kube-apiserver + kube-controller-manager on loopback), installs the
# CRDs, applies examples/quickstart.yaml (a fake SecretStore and an ExternalSecret), runs syncret against it and
# shows the synced Secret. syncret keeps running (edit the example with the printed KUBECONFIG and watch it
# sync); Ctrl-C stops syncret and the control plane and removes everything.
#
#   e2e/up.sh [extra syncret flags...]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
echo "==> building syncret" >&2
cargo build -p syncret --quiet
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
export SYNCRET_BIN="$target_dir/debug/syncret"
export SYNCRET_CONTROLPLANE_BIN
SYNCRET_CONTROLPLANE_BIN=$(e2e/build-controlplane.sh)
exec e2e/controlplane.sh -- bash -c '
  set -euo pipefail
  kubectl() { "$SYNCRET_CONTROLPLANE_BIN/kubectl" "$@"; }
  echo "==> installing CRDs, admission policies and the quick-start manifests" >&2
  kubectl apply --server-side -f deploy/crds/ >/dev/null
  kubectl wait --for condition=established --timeout=60s crd --all >/dev/null
  kubectl apply --server-side -f deploy/admission/validating-admission-policies.yaml >/dev/null
  kubectl apply --server-side -f examples/quickstart.yaml >/dev/null
  echo "==> starting syncret (metrics on 127.0.0.1:18080/metrics)" >&2
  "$SYNCRET_BIN" --metrics-addr 127.0.0.1:18080 "$@" &
  syncret=$!
  for _ in $(seq 1 300); do
    kubectl -n demo get secret db-credentials >/dev/null 2>&1 && break
    kill -0 "$syncret" 2>/dev/null || { echo "syncret exited" >&2; exit 1; }
    sleep 0.2
  done
  kubectl -n demo get secretstores,externalsecrets,secrets
  echo
  echo "db-credentials (decoded):"
  kubectl -n demo get secret db-credentials -o go-template="{{range \$k, \$v := .data}}  {{\$k}}={{\$v | base64decode}}{{\"\\n\"}}{{end}}"
  echo
  echo "syncret is running. In another shell: export KUBECONFIG=$KUBECONFIG   (Ctrl-C here stops everything)"
  wait "$syncret"
' up "$@"
