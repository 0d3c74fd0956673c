#!/usr/bin/env bash
# Starts a real local Kubernetes control plane (etcd + kube-apiserver + kube-controller-manager running the
# garbage collector and namespace controller) on loopback.
#
#   e2e/controlplane.sh [--dir DIR] [--watch-pid PID] [--keep] [-- COMMAND ARGS...]
#
# - Free ports and a fresh data dir (DIR, default a new temp dir) per run.
# - A CA, a serving certificate, a service-account signing key and issuer (TokenRequest and TokenReview
#   work), RBAC authorization, and an admin kubeconfig at DIR/kubeconfig (user `admin` in system:masters).
# - When ready it writes DIR/ready and prints `export KUBECONFIG=DIR/kubeconfig`.
# - With COMMAND, runs it with KUBECONFIG set and exits with its status; otherwise waits for Ctrl-C/SIGTERM,
#   or for PID (--watch-pid) to exit. Either way etcd and kube-apiserver are stopped and DIR is removed
#   (unless --keep or DIR was given).
# - SIGUSR1 restarts kube-apiserver, SIGUSR2 restarts etcd (same ports and data): used by the reliability suite.
#
# Binaries come from e2e/build-controlplane.sh (built from Go modules and cached), or from $SYNCRET_CONTROLPLANE_BIN.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

dir="" watch_pid="" keep=0
while [ $# -gt 0 ]; do
  case "$1" in
    --dir) dir=$2; shift 2 ;;
    --watch-pid) watch_pid=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    --) shift; break ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "controlplane: unknown argument $1" >&2; exit 2 ;;
  esac
done

bin=${SYNCRET_CONTROLPLANE_BIN:-$("$here/build-controlplane.sh")}
for b in etcd kube-apiserver kube-controller-manager; do
  [ -x "$bin/$b" ] || { echo "controlplane: $bin/$b is missing" >&2; exit 1; }
done

if [ -z "$dir" ]; then
  dir=$(mktemp -d "${TMPDIR:-/tmp}/syncret-cp.XXXXXX")
  [ "$keep" = 1 ] || remove_dir=1
else
  mkdir -p "$dir"
fi
dir=$(cd "$dir" && pwd)
log() { echo "controlplane: $*" >&2; }

free_ports() {
  python3 - "$1" <<'PY'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
}
read -r etcd_client etcd_peer api_port < <(free_ports 3)

etcd_pid="" api_pid="" kcm_pid=""
stop_pid() { # pid name
  local pid=$1 i
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  log "$2 did not stop in 10s; killing"
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
cleanup() {
  trap - EXIT INT TERM USR1 USR2
  stop_pid "$kcm_pid" kube-controller-manager
  stop_pid "$api_pid" kube-apiserver
  stop_pid "$etcd_pid" etcd
  if [ "${remove_dir:-0}" = 1 ]; then rm -rf "$dir"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- certificates and keys -------------------------------------------------------------------
pki=$dir/pki
mkdir -p "$pki"
(
  cd "$pki"
  openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=syncret-test-ca" \
    -keyout ca.key -out ca.crt 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=kube-apiserver" -keyout apiserver.key -out apiserver.csr 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc\n' > san.ext
  openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 30 -extfile san.ext \
    -out apiserver.crt 2>/dev/null
  openssl genrsa -out sa.key 2048 2>/dev/null
  openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
  token=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
  echo "$token,admin,admin,system:masters" > tokens.csv
  echo "$token" > admin.token
)
token=$(cat "$pki/admin.token")

# --- etcd ------------------------------------------------------------------------------------
start_etcd() {
  "$bin/etcd" --name default --data-dir "$dir/etcd" \
    --listen-client-urls "http://127.0.0.1:$etcd_client" --advertise-client-urls "http://127.0.0.1:$etcd_client" \
    --listen-peer-urls "http://127.0.0.1:$etcd_peer" --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer" \
    --initial-cluster "default=http://127.0.0.1:$etcd_peer" --unsafe-no-fsync --log-level warn \
    --quota-backend-bytes 8589934592 >>"$dir/etcd.log" 2>&1 &
  etcd_pid=$!
  local i
  for i in $(seq 1 300); do
    curl -sf "http://127.0.0.1:$etcd_client/health" >/dev/null 2>&1 && return 0
    kill -0 "$etcd_pid" 2>/dev/null || { tail -20 "$dir/etcd.log" >&2; log "etcd exited"; exit 1; }
    sleep 0.1
  done
  tail -20 "$dir/etcd.log" >&2; log "etcd not healthy after 30s"; exit 1
}

# --- kube-apiserver --------------------------------------------------------------------------
start_apiserver() {
  "$bin/kube-apiserver" \
    --etcd-servers "http://127.0.0.1:$etcd_client" \
    --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$api_port" \
    --cert-dir "$dir/apiserver-certs" --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
    --client-ca-file "$pki/ca.crt" --token-auth-file "$pki/tokens.csv" \
    --service-cluster-ip-range 10.96.0.0/16 \
    --authorization-mode RBAC \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-account-key-file "$pki/sa.pub" --service-account-signing-key-file "$pki/sa.key" \
    --api-audiences https://kubernetes.default.svc.cluster.local \
    --disable-admission-plugins ServiceAccount --endpoint-reconciler-type none \
    --max-requests-inflight 1000 --max-mutating-requests-inflight 500 \
    --profiling=false --v 0 >>"$dir/apiserver.log" 2>&1 &
  api_pid=$!
  local i
  for i in $(seq 1 600); do
    curl -sf --cacert "$pki/ca.crt" -H "Authorization: Bearer $token" "https://127.0.0.1:$api_port/readyz" >/dev/null 2>&1 && return 0
    kill -0 "$api_pid" 2>/dev/null || { tail -30 "$dir/apiserver.log" >&2; log "kube-apiserver exited"; exit 1; }
    sleep 0.1
  done
  tail -30 "$dir/apiserver.log" >&2; log "kube-apiserver not ready after 60s"; exit 1
}

start_etcd
start_apiserver

cat > "$dir/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: syncret-test
  cluster:
    server: https://127.0.0.1:$api_port
    certificate-authority-data: $(base64 -w0 "$pki/ca.crt")
users:
- name: admin
  user:
    token: $token
contexts:
- name: syncret-test
  context: {cluster: syncret-test, user: admin, namespace: default}
current-context: syncret-test
EOF
# --- kube-controller-manager: only the garbage collector (ownerReferences cascade, as in a real cluster) and
# the namespace controller (namespace deletion finishes). No scheduler, no kubelet: pods never run.
"$bin/kube-controller-manager" --kubeconfig "$dir/kubeconfig" --leader-elect=false \
  --controllers garbage-collector-controller,namespace-controller \
  --secure-port 0 --use-service-account-credentials=false --v 0 >>"$dir/controller-manager.log" 2>&1 &
kcm_pid=$!

cat > "$dir/env" <<EOF
KUBECONFIG=$dir/kubeconfig
SYNCRET_APISERVER_PID=$api_pid
SYNCRET_ETCD_PID=$etcd_pid
SYNCRET_ETCD_URL=http://127.0.0.1:$etcd_client
SYNCRET_APISERVER_URL=https://127.0.0.1:$api_port
SYNCRET_CONTROLPLANE_PID=$$
EOF
touch "$dir/ready"
log "ready: https://127.0.0.1:$api_port (etcd 127.0.0.1:$etcd_client), logs in $dir"
echo "export KUBECONFIG=$dir/kubeconfig"

restart_apiserver() { log "restarting kube-apiserver"; stop_pid "$api_pid" kube-apiserver; start_apiserver; log "kube-apiserver restarted"; }
restart_etcd() { log "restarting etcd"; stop_pid "$etcd_pid" etcd; start_etcd; log "etcd restarted"; }

restart_requested=""
trap 'restart_requested=api' USR1
trap 'restart_requested=etcd' USR2
handle_restart() {
  case "$restart_requested" in
    api) restart_requested=""; restart_apiserver ;;
    etcd) restart_requested=""; restart_etcd ;;
  esac
}

if [ $# -gt 0 ]; then
  KUBECONFIG="$dir/kubeconfig" SYNCRET_CONTROLPLANE_DIR="$dir" "$@" &
  cmd_pid=$!
  while :; do
    set +e; wait "$cmd_pid"; status=$?; set -e
    if [ -n "$restart_requested" ]; then handle_restart; continue; fi
    kill -0 "$cmd_pid" 2>/dev/null && continue
    exit "$status"
  done
fi

while :; do
  handle_restart
  if [ -n "$watch_pid" ] && ! kill -0 "$watch_pid" 2>/dev/null; then exit 0; fi
  kill -0 "$api_pid" 2>/dev/null || { log "kube-apiserver died"; tail -20 "$dir/apiserver.log" >&2; exit 1; }
  kill -0 "$etcd_pid" 2>/dev/null || { log "etcd died"; exit 1; }
  kill -0 "$kcm_pid" 2>/dev/null || { log "kube-controller-manager died"; tail -20 "$dir/controller-manager.log" >&2; exit 1; }
  sleep 0.5 &
  wait $! 2>/dev/null || true
done
