#!/usr/bin/env bash
# Runs the whole mesh natively, in one command, on a fresh machine:
#   tools (scripts/install-tools.sh) -> Redis (unless one answers) -> cargo build --release -> the five gRPC
#   services, the orchestrator, the gateway -> Prometheus -> waits until all of them are ready.
#
#   scripts/up.sh            SRE_SKIP_BUILD=1 skips the cargo build; SRE_UP_TIMEOUT (s, default 60) bounds the wait
#
# Everything it starts gets a PID file in $DATA/run/<name>.pid and a log in $DATA/logs/<name>.log;
# scripts/down.sh stops exactly that. A process whose PID file is live is not started twice.
# Every OTEL_* variable of the caller reaches every process; OTEL_SERVICE_NAME is set per process.
set -euo pipefail
# shellcheck source=scripts/lib/env.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/env.sh"
cd "$REPO"

TIMEOUT="${SRE_UP_TIMEOUT:-60}"
TARGET_DIR="${CARGO_TARGET_DIR:-$REPO/target}"
case "$TARGET_DIR" in /*) ;; *) TARGET_DIR="$REPO/$TARGET_DIR" ;; esac
BIN_DIR="$TARGET_DIR/release"
REDIS_URL="${REDIS_URL:-redis://$HOST:$REDIS_PORT}"

# ---- 1. tools ------------------------------------------------------------------------------------------
bash "$REPO/scripts/install-tools.sh"
hash -r
mkdir -p "$RUN_DIR" "$LOG_DIR" "$DATA/repos" "$DATA/prometheus"

# ---- 2. the webhook secret and the runs API token, shared with smoke.sh through $DATA/run/env (0600) ------
SECRET="${GITHUB_WEBHOOK_SECRET:-$DEFAULT_WEBHOOK_SECRET}"
API_TOKEN="${SRE_API_TOKEN:-$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')}"
if pid_of gateway "$(expected_program gateway)" >/dev/null && [ -f "$ENV_FILE" ]; then
  # the running gateway keeps the secret it was started with: keep the env file that says which
  running_secret="$(bash -c '. "$1" && printf %s "${GITHUB_WEBHOOK_SECRET:-}"' _ "$ENV_FILE")"
  if [ "$running_secret" != "$SECRET" ]; then
    warn "the running gateway uses the secret in $ENV_FILE, not the one in GITHUB_WEBHOOK_SECRET; run scripts/down.sh first to change it"
  fi
  SECRET="$running_secret"
  API_TOKEN="$(bash -c '. "$1" && printf %s "${SRE_API_TOKEN:-}"' _ "$ENV_FILE")"
else
  umask_old="$(umask)"
  umask 077
  {
    echo "# written by scripts/up.sh; read by scripts/smoke.sh"
    printf 'export GITHUB_WEBHOOK_SECRET=%q\n' "$SECRET"
    printf 'export SRE_API_TOKEN=%q\n' "$API_TOKEN"
    printf 'export SRE_DATA_DIR=%q\n' "$DATA"
    printf 'export SRE_REPOS_DIR=%q\n' "$DATA/repos"
  } >"$ENV_FILE"
  chmod 600 "$ENV_FILE"
  umask "$umask_old"
fi

# ---- 3. Redis --------------------------------------------------------------------------------------------
ensure_redis

# ---- 4. build --------------------------------------------------------------------------------------------
if [ "${SRE_SKIP_BUILD:-0}" = 1 ]; then
  log "SRE_SKIP_BUILD=1: not building"
else
  command -v cargo >/dev/null || die "cargo is not on PATH"
  log "cargo build --release --workspace --locked"
  cargo build --release --workspace --locked || die "cargo build --release --workspace --locked failed"
fi
for name in "${PROCESSES[@]}" otlp-sink; do
  [ -x "$BIN_DIR/${BINARY[$name]}" ] \
    || die "$BIN_DIR/${BINARY[$name]} is missing (build it, or unset SRE_SKIP_BUILD)"
done

# ---- 5. processes ----------------------------------------------------------------------------------------
# every port of a process that is not running yet must be free before anything starts
busy=()
for name in "${PROCESSES[@]}"; do
  pid_of "$name" "$(expected_program "$name")" >/dev/null && continue
  for port in ${GRPC_PORT[$name]:-} "${HTTP_PORT[$name]}"; do
    port_open "$port" && busy+=("$HOST:$port ($name)")
  done
done
if [ "${#busy[@]}" -gt 0 ]; then
  die "already in use by processes up.sh did not start: ${busy[*]}. Stop them (or scripts/down.sh, with the SRE_DATA_DIR of the mesh that holds them) and run up.sh again"
fi

# start NAME PORT PROGRAM ARGS... (with the extra environment in the array ENV_EXTRA)
start() {
  local name="$1" port="$2" pid
  shift 2
  if pid="$(pid_of "$name" "$(expected_program "$name")")"; then
    log "$name already running (pid $pid); not starting it again"
    return 0
  fi
  rm -f "$RUN_DIR/$name.pid"
  if port_open "$port"; then
    die "port $HOST:$port is already in use by a process up.sh did not start; cannot start $name (stop that process, or run scripts/down.sh if it is a mesh started with another SRE_DATA_DIR)"
  fi
  printf '\n==== %s: starting %s\n' "$(date -u +%FT%TZ)" "$*" >>"$LOG_DIR/$name.log"
  env "${ENV_EXTRA[@]}" nohup "$@" >>"$LOG_DIR/$name.log" 2>&1 </dev/null &
  pid=$!
  echo "$pid" >"$RUN_DIR/$name.pid"
  log "started $name (pid $pid, log $LOG_DIR/$name.log)"
}

# Traces: to the caller's OTLP endpoint if set; otherwise to a local sink that appends them to
# $DATA/traces.jsonl (smoke.sh reads the webhook's whole trace from it).
WITH_SINK=0
if [ -z "${OTEL_EXPORTER_OTLP_ENDPOINT:-}${OTEL_EXPORTER_OTLP_TRACES_ENDPOINT:-}" ] && [ "${OTEL_SDK_DISABLED:-}" != true ]; then
  if pid_of otlp-sink sre-otlp-sink >/dev/null || ! port_open "$OTLP_PORT"; then
    WITH_SINK=1
    ENV_EXTRA=()
    start otlp-sink "$OTLP_PORT" "$BIN_DIR/sre-otlp-sink" --listen "$HOST:$OTLP_PORT" --out "$TRACES_FILE"
  else
    warn "port $OTLP_PORT is taken by a process up.sh did not start (a collector?): traces go there"
  fi
fi

COMMON_ENV=(
  "SRE_DATA_DIR=$DATA"
  "SRE_REPOS_DIR=$DATA/repos"
  "RUST_LOG=${RUST_LOG:-info}"
)
for name in "${GRPC_SERVICES[@]}"; do
  ENV_EXTRA=("${COMMON_ENV[@]}"
    "OTEL_SERVICE_NAME=$name"
    "SRE_GRPC_ADDR=$HOST:${GRPC_PORT[$name]}"
    "SRE_HTTP_ADDR=$HOST:${HTTP_PORT[$name]}")
  start "$name" "${GRPC_PORT[$name]}" "$BIN_DIR/${BINARY[$name]}"
done

ENV_EXTRA=("${COMMON_ENV[@]}"
  "OTEL_SERVICE_NAME=orchestrator"
  "SRE_HTTP_ADDR=$HOST:${HTTP_PORT[orchestrator]}"
  "REDIS_URL=$REDIS_URL")
for name in "${GRPC_SERVICES[@]}"; do
  upper="$(printf '%s' "$name" | tr '[:lower:]' '[:upper:]')"
  ENV_EXTRA+=("SRE_${upper}_URL=http://$HOST:${GRPC_PORT[$name]}")
done
start orchestrator "${HTTP_PORT[orchestrator]}" "$BIN_DIR/${BINARY[orchestrator]}"

ENV_EXTRA=("${COMMON_ENV[@]}"
  "OTEL_SERVICE_NAME=gateway"
  "SRE_HTTP_ADDR=$HOST:${HTTP_PORT[gateway]}"
  "REDIS_URL=$REDIS_URL"
  "GITHUB_WEBHOOK_SECRET=$SECRET"
  "SRE_API_TOKEN=$API_TOKEN")
start gateway "${HTTP_PORT[gateway]}" "$BIN_DIR/${BINARY[gateway]}"

WITH_PROMETHEUS=0
if [ ! -f "$PROMETHEUS_CONFIG" ]; then
  warn "$PROMETHEUS_CONFIG is missing: not starting Prometheus"
elif ! pid_of prometheus prometheus >/dev/null && port_open "$PROMETHEUS_PORT"; then
  warn "port $PROMETHEUS_PORT is taken by a process up.sh did not start: not starting Prometheus (and not waiting for it)"
else
  WITH_PROMETHEUS=1
  ENV_EXTRA=()
  start prometheus "$PROMETHEUS_PORT" "$(command -v prometheus)" \
    "--config.file=$PROMETHEUS_CONFIG" \
    "--storage.tsdb.path=$DATA/prometheus" \
    "--web.listen-address=$HOST:$PROMETHEUS_PORT" \
    --enable-feature=exemplar-storage \
    --web.enable-remote-write-receiver
fi

# ---- 6. wait until everything is ready -----------------------------------------------------------------
# check NAME: true when NAME answers its readiness check
check() {
  local name="$1"
  case "$name" in
    gateway) [ "$(http_code "$GATEWAY_URL/ready")" = 200 ] ;;
    orchestrator) [ "$(http_code "http://$HOST:${HTTP_PORT[orchestrator]}/health")" = 200 ] ;;
    prometheus) [ "$(http_code "$PROMETHEUS_URL/-/ready")" = 200 ] ;;
    otlp-sink) port_open "$OTLP_PORT" ;;
    *) grpcurl -plaintext -max-time 3 "$HOST:${GRPC_PORT[$name]}" grpc.health.v1.Health/Check 2>/dev/null \
         | grep -q '"SERVING"' ;;
  esac
}
describe() {
  case "$1" in
    gateway) echo "GET $GATEWAY_URL/ready = 200" ;;
    orchestrator) echo "GET http://$HOST:${HTTP_PORT[orchestrator]}/health = 200" ;;
    prometheus) echo "GET $PROMETHEUS_URL/-/ready = 200" ;;
    otlp-sink) echo "OTLP receiver listening on $HOST:$OTLP_PORT" ;;
    *) echo "grpc.health.v1.Health/Check on $HOST:${GRPC_PORT[$1]} = SERVING" ;;
  esac
}
fail_with_logs() {
  local name
  for name in "$@"; do
    printf '\n---- %s not ready: %s; last lines of %s:\n' "$name" "$(describe "$name")" "$LOG_DIR/$name.log" >&2
    tail -n 30 "$LOG_DIR/$name.log" >&2 2>/dev/null || echo "(no log)" >&2
  done
  die "not ready: $*. What was started is still running: scripts/down.sh stops it."
}

WAIT_FOR=("${PROCESSES[@]}")
[ "$WITH_SINK" = 1 ] && WAIT_FOR+=(otlp-sink)
[ "$WITH_PROMETHEUS" = 1 ] && WAIT_FOR+=(prometheus)
log "waiting up to ${TIMEOUT}s for: ${WAIT_FOR[*]}"
deadline=$((SECONDS + TIMEOUT))
pending=("${WAIT_FOR[@]}")
while :; do
  still=()
  for name in "${pending[@]}"; do
    if ! pid_of "$name" >/dev/null; then   # alive? (no argv[0] check: it may still be exec'ing)
      printf '\n---- %s exited; last lines of %s:\n' "$name" "$LOG_DIR/$name.log" >&2
      tail -n 30 "$LOG_DIR/$name.log" >&2 2>/dev/null || true
      die "$name exited during start-up"
    fi
    check "$name" || still+=("$name")
  done
  [ "${#still[@]}" -eq 0 ] && break
  pending=("${still[@]}")
  [ "$SECONDS" -lt "$deadline" ] || fail_with_logs "${pending[@]}"
  sleep 1
done

# ---- 7. where things are -------------------------------------------------------------------------------
cat <<EOF

sre-agent mesh is up (data: $DATA, logs: $LOG_DIR)
  API / webhooks   $GATEWAY_URL  (POST /webhooks/github, POST|GET /api/v1/runs[/{run_id}], /health, /ready, /metrics)
  command line     $BIN_DIR/sre-agent  (repositories in $DATA/repos/OWNER/NAME; --help on every verb)
                     sre-agent run --repo OWNER/NAME --sha HEAD --command 'make test'   a local failure, followed to its PR
                     sre-agent runs [RUN_ID] [--artifact diff]                          the runs, one run, its patch
                     sre-agent diagnose LOG_FILE                                        a job log explained, offline
  orchestrator     http://$HOST:${HTTP_PORT[orchestrator]}/metrics
EOF
for name in "${GRPC_SERVICES[@]}"; do
  printf '  %-16s grpc %s:%s  metrics http://%s:%s/metrics\n' "$name" "$HOST" "${GRPC_PORT[$name]}" "$HOST" "${HTTP_PORT[$name]}"
done
if [ "$WITH_PROMETHEUS" = 1 ]; then
  echo "  Prometheus       $PROMETHEUS_URL"
else
  echo "  Prometheus       not started ($PROMETHEUS_CONFIG missing or port taken)"
fi
if [ "$WITH_SINK" = 1 ]; then
  echo "  traces           OTLP $HOST:$OTLP_PORT -> $TRACES_FILE (set OTEL_EXPORTER_OTLP_ENDPOINT to use a collector)"
else
  echo "  traces           OTEL_EXPORTER_OTLP_ENDPOINT=${OTEL_EXPORTER_OTLP_ENDPOINT:-${OTEL_EXPORTER_OTLP_TRACES_ENDPOINT:-(SDK disabled)}}"
fi
cat <<EOF
  Redis            redis://$HOST:$REDIS_PORT
  webhook secret   in $ENV_FILE, with the runs API token (. $ENV_FILE before sre-agent runs)
  grpcurl          PATH="$PYVENV_DIR/bin:\$PATH" grpcurl -plaintext $HOST:${GRPC_PORT[planner]} list
                   grpcurl -plaintext $HOST:${GRPC_PORT[planner]} grpc.health.v1.Health/Check
  next             scripts/smoke.sh, or $BIN_DIR/sre-agent runs   (stop: scripts/down.sh)
EOF
