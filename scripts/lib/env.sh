# shellcheck shell=bash
# shellcheck disable=SC2034  # this file only defines variables for the scripts that source it
#
# Common environment for scripts/*.sh. Source it; do not run it.
#   REPO       repository root (absolute)
#   TOOLS_DIR  repo-local tool dir (.tools, gitignored), override with SRE_TOOLS_DIR
#   DATA       data dir: ${SRE_DATA_DIR:-$REPO/data}, made absolute
#   RUN_DIR    $DATA/run  (PID files, the env file smoke.sh reads)
#   LOG_DIR    $DATA/logs (one log per process)
#   PATH       gains .tools/pyvenv/bin, .tools/node/node_modules/.bin (prettier, eslint: the planner's
#              fixers) and .tools/prometheus/usr/bin (after the caller's PATH, so a tool already installed
#              on the machine wins)
# and the port table of docs/conventions.md.

if [ -z "${BASH_VERSION:-}" ] || [ "${BASH_VERSINFO[0]}" -lt 4 ]; then
  echo "scripts/lib/env.sh: bash >= 4 is required" >&2
  # shellcheck disable=SC2317
  return 1 2>/dev/null || exit 1
fi

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
TOOLS_DIR="${SRE_TOOLS_DIR:-$REPO/.tools}"
case "$TOOLS_DIR" in /*) ;; *) TOOLS_DIR="$PWD/$TOOLS_DIR" ;; esac
PYVENV_DIR="$TOOLS_DIR/pyvenv"
PROM_DIR="$TOOLS_DIR/prometheus"
CARGO_TOOLS_DIR="$TOOLS_DIR/cargo"

DATA="${SRE_DATA_DIR:-$REPO/data}"
case "$DATA" in /*) ;; *) DATA="$PWD/$DATA" ;; esac
RUN_DIR="$DATA/run"
LOG_DIR="$DATA/logs"
ENV_FILE="$RUN_DIR/env"

case ":$PATH:" in *":$PYVENV_DIR/bin:"*) ;; *) PATH="$PATH:$PYVENV_DIR/bin" ;; esac
case ":$PATH:" in *":$TOOLS_DIR/node/node_modules/.bin:"*) ;; *) PATH="$PATH:$TOOLS_DIR/node/node_modules/.bin" ;; esac
case ":$PATH:" in *":$PROM_DIR/usr/bin:"*) ;; *) PATH="$PATH:$PROM_DIR/usr/bin" ;; esac
case ":$PATH:" in *":$CARGO_TOOLS_DIR/bin:"*) ;; *) PATH="$PATH:$CARGO_TOOLS_DIR/bin" ;; esac
export PATH

# ---- port table (docs/conventions.md) --------------------------------------------------------------
HOST=127.0.0.1
GRPC_SERVICES=(planner policy scanner validator pr)   # the five gRPC services, start order
PROCESSES=(planner policy scanner validator pr orchestrator gateway)   # everything up.sh starts, in order
declare -A BINARY=(
  [gateway]=sre-gateway [orchestrator]=sre-orchestrator [planner]=sre-planner [policy]=sre-policy
  [scanner]=sre-scanner [validator]=sre-validator [pr]=sre-pr [otlp-sink]=sre-otlp-sink
)
declare -A GRPC_PORT=([planner]=50051 [policy]=50052 [scanner]=50053 [validator]=50054 [pr]=50055)
declare -A HTTP_PORT=(
  [gateway]=8000 [orchestrator]=9100 [planner]=9101 [policy]=9102 [scanner]=9103 [validator]=9104 [pr]=9105
)
declare -A GRPC_SERVICE=(
  [planner]=sre.v1.Planner [policy]=sre.v1.Policy [scanner]=sre.v1.Scanner
  [validator]=sre.v1.Validator [pr]=sre.v1.PullRequests
)
PROMETHEUS_PORT=9090
OTLP_PORT=4317                       # sre-otlp-sink, started by up.sh when no OTLP endpoint is configured
TRACES_FILE="$DATA/traces.jsonl"
REDIS_PORT=6379
GATEWAY_URL="http://$HOST:${HTTP_PORT[gateway]}"
PROMETHEUS_URL="http://$HOST:$PROMETHEUS_PORT"
PROMETHEUS_CONFIG="${SRE_PROMETHEUS_CONFIG:-$REPO/observability/prometheus/prometheus.native.yml}"
DEFAULT_WEBHOOK_SECRET=dev-webhook-secret

# ---- small helpers -----------------------------------------------------------------------------------
_script_name="$(basename "${0:-sre}")"
log()  { printf '[%s] %s\n' "$_script_name" "$*"; }
warn() { printf '[%s] WARNING: %s\n' "$_script_name" "$*" >&2; }
die()  { printf '[%s] ERROR: %s\n' "$_script_name" "$*" >&2; exit 1; }

# port_open PORT [HOST]: true when something accepts a TCP connection there.
port_open() {
  (exec 3<>"/dev/tcp/${2:-$HOST}/$1") 2>/dev/null
}

# redis_ping PORT: true when a Redis server answers PING with PONG on 127.0.0.1.
redis_ping() {
  local reply=""
  # shellcheck disable=SC2016
  reply="$(timeout 3 bash -c 'exec 3<>"/dev/tcp/$0/$1" || exit 1; printf "PING\r\n" >&3; IFS= read -r -t 2 l <&3; printf %s "$l"' \
    "$HOST" "$1" 2>/dev/null)" || return 1
  [ "${reply%$'\r'}" = "+PONG" ]
}

# http_code URL: prints the HTTP status code (000 when nothing answers).
http_code() {
  curl -s -o /dev/null -m 3 -w '%{http_code}' "$1" 2>/dev/null || true
}

# alive PID: true when the process exists and is not a zombie (an orphan's zombie can linger until
# PID 1 reaps it, and kill -0 still succeeds on it)
alive() {
  kill -0 "$1" 2>/dev/null || return 1
  local state=""
  if [ -r "/proc/$1/stat" ]; then
    state="$(sed -E 's/^.*\) ([A-Za-z]).*$/\1/' "/proc/$1/stat" 2>/dev/null || true)"
  fi
  [ "$state" != Z ]
}

# pid_of NAME: prints the PID recorded in $RUN_DIR/NAME.pid when that process is alive and is the expected
# program (guards against a recycled PID); returns 1 otherwise.
pid_of() {
  local name="$1" expect="${2:-}" pidfile="$RUN_DIR/$1.pid" pid argv0
  [ -f "$pidfile" ] || return 1
  pid="$(tr -dc '0-9' <"$pidfile")"
  [ -n "$pid" ] || return 1
  alive "$pid" || return 1
  if [ -n "$expect" ] && [ -r "/proc/$pid/cmdline" ]; then
    argv0="$(tr '\0' ' ' <"/proc/$pid/cmdline" | awk '{print $1}')"
    [ "$(basename "$argv0")" = "$expect" ] || return 1
  fi
  printf '%s\n' "$pid"
}

# expected program name for each PID file (what pid_of compares argv[0] with)
expected_program() {
  case "$1" in
    redis) echo redis-server ;;
    prometheus) echo prometheus ;;
    *) echo "${BINARY[$1]}" ;;
  esac
}

# ensure_redis: start Redis on 127.0.0.1:6379 unless something answers there; when this starts it, the PID
# file $RUN_DIR/redis.pid and the marker $RUN_DIR/redis.started-by-up make down.sh stop it later.
ensure_redis() {
  mkdir -p "$RUN_DIR" "$LOG_DIR" "$DATA/redis"
  if [ -f "$RUN_DIR/redis.started-by-up" ] && ! pid_of redis redis-server >/dev/null; then
    rm -f "$RUN_DIR/redis.started-by-up" "$RUN_DIR/redis.pid"   # stale: it died since
  fi
  if redis_ping "$REDIS_PORT"; then
    if [ -f "$RUN_DIR/redis.started-by-up" ]; then
      log "Redis already answers on $HOST:$REDIS_PORT (started earlier by these scripts)"
    else
      log "Redis already answers on $HOST:$REDIS_PORT (not ours; down.sh leaves it alone)"
    fi
    return 0
  fi
  port_open "$REDIS_PORT" && die "port $REDIS_PORT is taken by something that does not answer Redis PING"
  command -v redis-server >/dev/null || die "redis-server is not installed (run scripts/install-tools.sh redis)"
  log "starting Redis on $HOST:$REDIS_PORT (log: $LOG_DIR/redis.log)"
  redis-server --daemonize yes --bind "$HOST" --port "$REDIS_PORT" --save "" --appendonly no \
    --dir "$DATA/redis" --logfile "$LOG_DIR/redis.log" --pidfile "$RUN_DIR/redis.pid" \
    || die "redis-server failed to start; see $LOG_DIR/redis.log"
  touch "$RUN_DIR/redis.started-by-up"
  local i
  for i in $(seq 1 50); do
    redis_ping "$REDIS_PORT" && { log "Redis is up"; return 0; }
    sleep 0.2
  done
  tail -n 20 "$LOG_DIR/redis.log" >&2 || true
  die "Redis did not answer PING within 10 s"
}
