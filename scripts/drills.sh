#!/usr/bin/env bash
# Reliability drills against a running mesh (docs/reliability.md). Starts a mesh of its own the way up.sh
# does, on its own ports, data dir and Redis (so it never fights a running mesh, and stopping its Redis
# stops nobody else's), with the GitHub backend pointed at the fake GitHub (sre-github-fake), then breaks
# things on purpose and counts: webhooks accepted, runs completed, pull requests per run_key on the fake.
# 0 lost and 0 duplicated pull requests is the bar; the exit code is 1 when any drill's verdict fails.
#
#   scripts/drills.sh [--quick] [a b c d e f g h i j k l]
#     a  the orchestrator SIGKILLed mid-run, restarted: its runs resume within 60 s, one PR each
#     b  one failure delivered 50 times in parallel as workflow_job, workflow_run, check_run, check_suite
#     c  Redis stopped during a burst of webhooks, then started
#     d  each stage service (planner, policy, scanner, validator, pr) SIGKILLed in turn mid-run, restarted
#     e  three orchestrators on one consumer group, the one holding a run SIGKILLed for good
#     f  the fake GitHub answering 5xx and secondary rate limits for a while
#     g  Redis restarted EMPTY (its data lost) during a burst of webhooks
#     h  the OTLP collector absent, then black-holing (accepts, never answers): latency, RSS, dropped spans
#     i  PostgreSQL (a private cluster) restarted mid-traffic, the gateway and orchestrator on it
#     j  SQLite's disk full (a small tmpfs), then space back
#     k  the fake GitHub answering every call 20 s late for a minute
#     l  the orchestrator SIGKILLed between the push of a run's branch and its PR creation
#   --quick runs a and b only (scripts/test.sh runs it after the smoke test). i needs PostgreSQL's binaries
#   (/usr/lib/postgresql/*/bin) and the user postgres, j root (mount -t tmpfs).
#
#   SRE_DRILL_DATA      data dir (default $SRE_DATA_DIR/drills, i.e. data/drills); wiped at start
#   SRE_DRILL_PORT_BASE first port (default 18000): gateway +0, orchestrators +100.., gRPC +151..+155,
#                       their metrics +201..+205, fake GitHub +90..+93, Redis +379, OTLP +317/+318,
#                       PostgreSQL +432
#   SRE_DRILL_BIN_DIR   binaries (default target/release when every one is there, else target/debug)
#   SRE_DRILL_KEEP=1    leave the mesh running at the end (stop it with: scripts/drills.sh --down)
set -euo pipefail
# shellcheck source=scripts/lib/env.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/env.sh"
cd "$REPO"

QUICK=0
DOWN_ONLY=0
DRILLS=()
for arg in "$@"; do
  case "$arg" in
    --quick) QUICK=1 ;;
    --down) DOWN_ONLY=1 ;;
    a | b | c | d | e | f | g | h | i | j | k | l) DRILLS+=("$arg") ;;
    -h | --help) sed -n '2,31p' "$0"; exit 0 ;;
    *) die "unknown argument $arg (see --help)" ;;
  esac
done
if [ "${#DRILLS[@]}" -eq 0 ]; then
  if [ "$QUICK" = 1 ]; then DRILLS=(a b); else DRILLS=(a b c d e f g h i j k l); fi
fi

DD="${SRE_DRILL_DATA:-$DATA/drills}"
case "$DD" in /*) ;; *) DD="$PWD/$DD" ;; esac
DRUN="$DD/run"
DLOG="$DD/logs"
BASE="${SRE_DRILL_PORT_BASE:-18000}"
D_REDIS_PORT=$((BASE + 379))
D_REDIS_URL="redis://$HOST:$D_REDIS_PORT"
D_GATEWAY="http://$HOST:$BASE"
declare -A D_GRPC=([planner]=$((BASE + 151)) [policy]=$((BASE + 152)) [scanner]=$((BASE + 153))
  [validator]=$((BASE + 154)) [pr]=$((BASE + 155)))
declare -A D_HTTP=([planner]=$((BASE + 201)) [policy]=$((BASE + 202)) [scanner]=$((BASE + 203))
  [validator]=$((BASE + 204)) [pr]=$((BASE + 205)))
FAKE_API=$((BASE + 90))
FAKE_GIT=$((BASE + 91))
FAKE_BLOB=$((BASE + 92))
FAKE_CONTROL=$((BASE + 93))
SECRET=drill-webhook-secret
STATE="$DD/github-fake.json"
PY=(python3 "$REPO/scripts/lib/drills.py")
# The runs API token of the drills' gateway (it refuses to start without one).
API_TOKEN="$(openssl rand -hex 32)"
export DRILL_GATEWAY="$D_GATEWAY" DRILL_SECRET="$SECRET" DRILL_API_TOKEN="$API_TOKEN"

TARGET_DIR="${CARGO_TARGET_DIR:-$REPO/target}"
case "$TARGET_DIR" in /*) ;; *) TARGET_DIR="$REPO/$TARGET_DIR" ;; esac
if [ -n "${SRE_DRILL_BIN_DIR:-}" ]; then
  BIN="$SRE_DRILL_BIN_DIR"
else
  BIN="$TARGET_DIR/release"
  for b in sre-gateway sre-orchestrator sre-planner sre-policy sre-scanner sre-validator sre-pr sre-github-fake; do
    [ -x "$BIN/$b" ] || { BIN="$TARGET_DIR/debug"; break; }
  done
fi

now_ms() { date +%s%3N; }

# ---- processes (PID files in $DRUN, logs in $DLOG) ------------------------------------------------------
# dpid NAME: the live PID of NAME, if any
dpid() {
  local f="$DRUN/$1.pid" pid
  [ -f "$f" ] || return 1
  pid="$(tr -dc '0-9' <"$f")"
  [ -n "$pid" ] && alive "$pid" && echo "$pid"
}

# dstart NAME PROGRAM ARGS... (extra environment in the array DENV)
dstart() {
  local name="$1"
  shift
  printf '\n==== %s: starting %s\n' "$(date -u +%FT%TZ)" "$*" >>"$DLOG/$name.log"
  env "${DENV[@]}" "$@" >>"$DLOG/$name.log" 2>&1 </dev/null &
  echo $! >"$DRUN/$name.pid"
  disown $! # a SIGKILL drill is no job-control news
}

# dkill NAME SIGNAL: signals NAME and waits until it is gone
dkill() {
  local pid i
  pid="$(dpid "$1")" || return 0
  kill "-$2" "$pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do
    alive "$pid" || break
    sleep 0.1
  done
  alive "$pid" && { kill -KILL "$pid" 2>/dev/null || true; sleep 0.2; }
  rm -f "$DRUN/$1.pid"
}

grpc_ready() { grpcurl -plaintext -max-time 2 "$HOST:$1" grpc.health.v1.Health/Check 2>/dev/null | grep -q SERVING; }

# dwait NAME CHECK...: waits up to 60 s until CHECK succeeds while NAME is alive
dwait() {
  local name="$1" i
  shift
  for ((i = 0; i < 300; i++)); do
    "$@" && return 0
    dpid "$name" >/dev/null || { tail -n 20 "$DLOG/$name.log" >&2; die "$name exited during start-up"; }
    sleep 0.2
  done
  tail -n 20 "$DLOG/$name.log" >&2
  die "$name not ready after 60 s"
}

http_ok() { [ "$(http_code "$1")" = 200 ]; }

start_redis() {
  mkdir -p "$DD/redis"
  redis-server --daemonize yes --bind "$HOST" --port "$D_REDIS_PORT" --dir "$DD/redis" \
    --appendonly yes --appendfsync everysec --save "" \
    --logfile "$DLOG/redis.log" --pidfile "$DRUN/redis.pid" >/dev/null
  local i
  for ((i = 0; i < 50; i++)); do
    redis_ping "$D_REDIS_PORT" && return 0
    sleep 0.2
  done
  die "the drill's Redis did not start (see $DLOG/redis.log)"
}

# GitHub settings shared by the pr service and the orchestrator
github_env() {
  local app_id key_file
  app_id="$(jq -r .app_id "$STATE")"
  key_file="$(jq -r .key_file "$STATE")"
  GH_ENV=(
    "SRE_PR_BACKEND=github"
    "GITHUB_APP_ID=$app_id"
    "GITHUB_PRIVATE_KEY_FILE=$key_file"
    "SRE_GITHUB_API_URL=$(jq -r .api_url "$STATE")"
    "SRE_GITHUB_GIT_URL=$(jq -r .git_url "$STATE")"
  )
}

COMMON=()
STORE_ENV=() # DATABASE_URL of the gateway and the orchestrators, when a drill moves them off SQLite
GW_ENV=()    # more of the gateway's environment (OTEL_* in drill h)
start_service() {
  local name="$1"
  DENV=("${COMMON[@]}" "OTEL_SERVICE_NAME=$name" "SRE_GRPC_ADDR=$HOST:${D_GRPC[$name]}"
    "SRE_HTTP_ADDR=$HOST:${D_HTTP[$name]}")
  [ "$name" = pr ] && DENV+=("${GH_ENV[@]}")
  dstart "$name" "$BIN/${BINARY[$name]}"
}

# start_orchestrator N: orchestrator number N (1..3) as consumer drill-orchestrator-N
start_orchestrator() {
  local n="$1"
  DENV=("${COMMON[@]}" "${GH_ENV[@]}" "OTEL_SERVICE_NAME=orchestrator"
    "SRE_HTTP_ADDR=$HOST:$((BASE + 99 + n))" "REDIS_URL=$D_REDIS_URL" "SRE_CONSUMER_NAME=drill-orchestrator-$n"
    "SRE_WORKERS=2" "SRE_REPO_CONCURRENCY=64" "SRE_ORG_CONCURRENCY=64" "SRE_PRS_PER_HOUR=1000"
    "SRE_MAX_OPEN_PRS=1000" "SRE_RETRY_MAX_MS=10000" "${STORE_ENV[@]}")
  local svc upper
  for svc in "${GRPC_SERVICES[@]}"; do
    upper="$(printf '%s' "$svc" | tr '[:lower:]' '[:upper:]')"
    DENV+=("SRE_${upper}_URL=http://$HOST:${D_GRPC[$svc]}")
  done
  dstart "orchestrator-$n" "$BIN/sre-orchestrator"
}
orchestrator_ready() { http_ok "http://$HOST:$((BASE + 99 + $1))/ready"; }

start_gateway() {
  DENV=("${COMMON[@]}" "OTEL_SERVICE_NAME=gateway" "SRE_HTTP_ADDR=$HOST:$BASE" "REDIS_URL=$D_REDIS_URL"
    "GITHUB_WEBHOOK_SECRET=$SECRET" "SRE_API_TOKEN=$API_TOKEN" "${STORE_ENV[@]}" "${GW_ENV[@]}")
  dstart gateway "$BIN/sre-gateway"
}

# restart_front: the gateway and orchestrator-1 again (with STORE_ENV / GW_ENV as they are now), ready
restart_front() {
  dkill gateway TERM
  dkill orchestrator-1 TERM
  start_orchestrator 1
  start_gateway
  dwait orchestrator-1 orchestrator_ready 1
  dwait gateway http_ok "$D_GATEWAY/ready"
}

# fake_latency ROUTE MS [METHOD]: every answer of ROUTE (of METHOD only) MS late; 0 removes it
fake_latency() {
  local body
  body="$(jq -cn --arg r "$1" --argjson ms "$2" --arg m "${3:-}" '{route: $r, ms: $ms} + (if $m == "" then {} else {method: $m} end)')"
  curl -s -XPOST "$(jq -r .control_url "$STATE")/latency" -H 'content-type: application/json' -d "$body" >/dev/null
}

# redeliver NAME: every webhook of $DD/NAME.jsonl not answered 2xx, once more (GitHub's redelivery), into
# $DD/NAME-redelivered.jsonl
redeliver() {
  local again=()
  mapfile -t again < <(jq -r 'select(.status != 200 and .status != 202) | "\(.event):\(.job):\(.delivery)"' "$DD/$1.jsonl")
  if [ "${#again[@]}" -gt 0 ]; then
    log "redelivering ${#again[@]} webhook(s) not answered 2xx"
    "${PY[@]}" send "$STATE" "$DD/$1-redelivered.jsonl" "${again[@]}"
  fi
}

# the code of a GET, 000 when nothing answered
status_of() { curl -s -o /dev/null -m 3 -w '%{http_code}' "$1" || true; }
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

mesh_up() {
  mkdir -p "$DRUN" "$DLOG" "$DD/repos"
  log "drill mesh: binaries $BIN, data $DD, ports $BASE.., Redis $D_REDIS_URL"
  start_redis
  "${PY[@]}" seed "$DD/seed.json"
  # the App's key, made here: a prime search in a debug build of the fake can take a minute on a busy machine
  (umask 077 && openssl genrsa -traditional -out "$DD/app.pem" 2048 2>/dev/null)
  DENV=()
  dstart github-fake "$BIN/sre-github-fake" --seed "$DD/seed.json" --state-out "$STATE" --key-out "$DD/app.pem" \
    --api "$HOST:$FAKE_API" --git "$HOST:$FAKE_GIT" --blob "$HOST:$FAKE_BLOB" --control "$HOST:$FAKE_CONTROL"
  dwait github-fake test -s "$STATE"
  github_env
  COMMON=("SRE_DATA_DIR=$DD" "SRE_REPOS_DIR=$DD/repos" "RUST_LOG=${RUST_LOG:-info}" "OTEL_SDK_DISABLED=true"
    "PATH=$PATH")
  local svc
  for svc in "${GRPC_SERVICES[@]}"; do start_service "$svc"; done
  start_orchestrator 1
  start_gateway
  for svc in "${GRPC_SERVICES[@]}"; do dwait "$svc" grpc_ready "${D_GRPC[$svc]}"; done
  dwait orchestrator-1 orchestrator_ready 1
  dwait gateway http_ok "$D_GATEWAY/ready"
  log "drill mesh is up"
}

mesh_down() {
  local f name
  [ -d "$DRUN" ] || return 0
  for f in "$DRUN"/*.pid; do
    [ -e "$f" ] || continue
    name="$(basename "$f" .pid)"
    [ "$name" = redis ] && continue
    dkill "$name" TERM
  done
  if redis_ping "$D_REDIS_PORT"; then redis-cli -p "$D_REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true; fi
  rm -f "$DRUN/redis.pid"
  # what drills i and j leave when interrupted
  if [ -n "${PG_DIR:-}" ] && [ -d "$PG_DIR" ]; then
    runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PG_DIR" -m immediate -w stop >/dev/null 2>&1 || true
    rm -rf "$PG_DIR"
  fi
  if mountpoint -q "$DD/full" 2>/dev/null; then umount "$DD/full" || true; fi
}

if [ "$DOWN_ONLY" = 1 ]; then
  mesh_down
  log "drill mesh stopped"
  exit 0
fi

# ---- the drills ---------------------------------------------------------------------------------------
RESULTS=()
FAILED=0
verdict() { # verdict NAME RC
  if [ "$2" -eq 0 ]; then RESULTS+=("PASS  drill $1"); else RESULTS+=("FAIL  drill $1"); FAILED=$((FAILED + 1)); fi
}
jobs_of() { python3 -c "import sys; sys.path.insert(0, '$REPO/scripts/lib'); import drills; print(' '.join(drills.RUNS['$1'][2]))"; }

drill_a() {
  log "drill a: the orchestrator SIGKILLed mid-run, then restarted under the same consumer name"
  local jobs specs=() job running t_restart
  read -r -a jobs <<<"$(jobs_of a)"
  for job in "${jobs[@]}"; do specs+=("workflow_job:$job"); done
  # slow pull-request calls keep runs in flight long enough to be caught mid-run
  curl -s -XPOST "$(jq -r .control_url "$STATE")/latency" -d '{"route":"pulls","ms":1500}' -H 'content-type: application/json' >/dev/null
  "${PY[@]}" send "$STATE" "$DD/a.jsonl" "${specs[@]}"
  "${PY[@]}" wait-running "$STATE" "${jobs[@]}" --timeout 60 >/dev/null
  sleep 1
  dkill orchestrator-1 KILL
  running="$("${PY[@]}" wait-running "$STATE" "${jobs[@]}" --timeout 0 || true)"
  log "SIGKILLed orchestrator-1 with $(tr ',' '\n' <<<"$running" | grep -c . || true) run(s) running"
  sleep 2
  t_restart="$(now_ms)"
  start_orchestrator 1
  "${PY[@]}" report a "$STATE" "$DD/a.jsonl" "${jobs[@]}" --timeout 240 --restart-at "$t_restart" --watch "$running"
  local rc=$?
  curl -s -XPOST "$(jq -r .control_url "$STATE")/latency" -d '{"route":"pulls","ms":0}' -H 'content-type: application/json' >/dev/null
  return "$rc"
}

drill_b() {
  log "drill b: one failure delivered 50 times in parallel through the four event types"
  local events=(workflow_job workflow_run check_run check_suite) specs=() i
  for ((i = 0; i < 50; i++)); do specs+=("${events[$((i % 4))]}:b"); done
  "${PY[@]}" send "$STATE" "$DD/b.jsonl" "${specs[@]}"
  "${PY[@]}" report b "$STATE" "$DD/b.jsonl" b --timeout 180
}

drill_c() {
  log "drill c: Redis stopped during a burst of webhooks, then started"
  local jobs i
  read -r -a jobs <<<"$(jobs_of c)"
  (
    for ((i = 0; i < ${#jobs[@]}; i++)); do
      "${PY[@]}" send "$STATE" "$DD/c.jsonl" "workflow_job:${jobs[$i]}" >/dev/null
      sleep 0.5
    done
  ) &
  local sender=$!
  sleep 1.2
  redis-cli -p "$D_REDIS_PORT" shutdown >/dev/null 2>&1 || true
  log "Redis stopped"
  sleep 5
  start_redis
  log "Redis started again"
  wait "$sender"
  # GitHub redelivers what was not answered 2xx: do the same once for every 503
  local again=()
  mapfile -t again < <(jq -r 'select(.status != 200 and .status != 202) | "workflow_job:\(.job):\(.delivery)"' "$DD/c.jsonl")
  if [ "${#again[@]}" -gt 0 ]; then
    log "redelivering ${#again[@]} webhook(s) answered 503 while Redis was down"
    "${PY[@]}" send "$STATE" "$DD/c-redelivered.jsonl" "${again[@]}"
  fi
  "${PY[@]}" report c "$STATE" "$DD/c.jsonl" "${jobs[@]}" --timeout 240
}

drill_d() {
  log "drill d: each stage service SIGKILLed in turn mid-run, then restarted"
  local svc rc=0
  for svc in "${GRPC_SERVICES[@]}"; do
    "${PY[@]}" send "$STATE" "$DD/d.jsonl" "workflow_job:d-$svc" >/dev/null
    "${PY[@]}" wait-running "$STATE" "d-$svc" --timeout 60 >/dev/null
    dkill "$svc" KILL
    log "  $svc SIGKILLed with run d-$svc in flight; restarting it in 3 s"
    sleep 3
    start_service "$svc"
    dwait "$svc" grpc_ready "${D_GRPC[$svc]}"
    # one outage per run: the next kill must not land on a run still retrying this one (on a fast machine it
    # did, and three outages in a row exhausted SRE_MAX_ATTEMPTS)
    "${PY[@]}" wait-done "$STATE" "d-$svc" --timeout 180 || true
  done
  "${PY[@]}" report d "$STATE" "$DD/d.jsonl" d-planner d-policy d-scanner d-validator d-pr --timeout 240 || rc=$?
  return "$rc"
}

drill_e() {
  log "drill e: three orchestrators on one consumer group, the one holding a run SIGKILLed for good"
  local jobs specs=() job holder killed_at running
  read -r -a jobs <<<"$(jobs_of e)"
  start_orchestrator 2
  start_orchestrator 3
  dwait orchestrator-2 orchestrator_ready 2
  dwait orchestrator-3 orchestrator_ready 3
  curl -s -XPOST "$(jq -r .control_url "$STATE")/latency" -d '{"route":"pulls","ms":1500}' -H 'content-type: application/json' >/dev/null
  for job in "${jobs[@]}"; do specs+=("workflow_job:$job"); done
  "${PY[@]}" send "$STATE" "$DD/e.jsonl" "${specs[@]}"
  "${PY[@]}" wait-running "$STATE" "${jobs[@]}" --timeout 60 >/dev/null
  # the orchestrator whose consumer holds a pending job
  holder="$(redis-cli -p "$D_REDIS_PORT" XPENDING sre:pipeline:jobs orchestrator - + 10 | sed -n '2~4p' | head -n 1)"
  holder="${holder%-*}"
  holder="${holder#drill-}"
  [ -n "$holder" ] || holder=orchestrator-2
  running="$("${PY[@]}" wait-running "$STATE" "${jobs[@]}" --timeout 0 || true)"
  dkill "$holder" KILL
  killed_at="$(now_ms)"
  log "SIGKILLed $holder (holding a job), for good; the two others must take its jobs over"
  "${PY[@]}" report e "$STATE" "$DD/e.jsonl" "${jobs[@]}" --timeout 300 --restart-at "$killed_at" --watch "$running"
  local rc=$?
  curl -s -XPOST "$(jq -r .control_url "$STATE")/latency" -d '{"route":"pulls","ms":0}' -H 'content-type: application/json' >/dev/null
  dkill orchestrator-2 TERM
  dkill orchestrator-3 TERM
  dpid orchestrator-1 >/dev/null || { start_orchestrator 1; dwait orchestrator-1 orchestrator_ready 1; }
  return "$rc"
}

drill_f() {
  log "drill f: the fake GitHub answering 5xx and secondary rate limits for a while"
  local jobs specs=() job control
  read -r -a jobs <<<"$(jobs_of f)"
  control="$(jq -r .control_url "$STATE")"
  for body in '{"route":"pulls","count":4,"status":502}' \
    '{"route":"pulls","count":2,"status":403,"retry_after_secs":2}' \
    '{"route":"commits","count":3,"status":500}' \
    '{"route":"job_log","count":2,"status":503}' \
    '{"route":"check_runs","count":2,"status":429,"retry_after_secs":1}'; do
    curl -s -XPOST "$control/faults" -H 'content-type: application/json' -d "$body" >/dev/null
  done
  for job in "${jobs[@]}"; do specs+=("workflow_job:$job"); done
  "${PY[@]}" send "$STATE" "$DD/f.jsonl" "${specs[@]}"
  "${PY[@]}" report f "$STATE" "$DD/f.jsonl" "${jobs[@]}" --timeout 300
  local rc=$?
  echo "  fake GitHub answers (route status count): $(curl -s "$control/calls" | jq -r 'map(select(.status >= 400)) | map("\(.route) \(.status) x\(.count)") | join(", ")')"
  return "$rc"
}

drill_g() {
  log "drill g: Redis restarted EMPTY (its data lost) during a burst of webhooks"
  local jobs i sender requeued problems="$DD/g.problems"
  : >"$problems"
  read -r -a jobs <<<"$(jobs_of g)"
  fake_latency pulls 1500 # runs in every stage, and jobs waiting in the stream, at the loss
  (
    for ((i = 0; i < ${#jobs[@]}; i++)); do
      "${PY[@]}" send "$STATE" "$DD/g.jsonl" "workflow_job:${jobs[$i]}" >/dev/null
      sleep 0.5
    done
  ) &
  sender=$!
  sleep 2.2
  local before
  before="$(redis-cli -p "$D_REDIS_PORT" XLEN sre:pipeline:jobs 2>/dev/null || echo '?')"
  redis-cli -p "$D_REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
  rm -rf "$DD/redis" # its append-only file: the Redis that comes back is empty
  start_redis
  log "Redis restarted empty (stream had $before entries; now $(redis-cli -p "$D_REDIS_PORT" DBSIZE) keys)"
  wait "$sender"
  redeliver g
  "${PY[@]}" report g "$STATE" "$DD/g.jsonl" "${jobs[@]}" --timeout 300 --problems "$problems"
  local rc=$?
  fake_latency pulls 0
  requeued="$(grep -h 'enqueueing every queued run again' "$DLOG"/orchestrator-*.log | tail -n 1 | jq -r '"\(.runs) queued run(s), \(.pending_events) pending event(s)"' 2>/dev/null || true)"
  echo "  after the loss the orchestrator enqueued again: ${requeued:-nothing}"
  return "$rc"
}

# h_phase NAME: 200 more deliveries (8 at a time) of job h, whose run is done (so no run competes for the
# CPU); prints their latency, the gateway's RSS and its span counters
h_phase() {
  local name="$1" pid rss0 rss1 specs=() i m="$D_GATEWAY/metrics" failed0 failed1 full0 full1 exported0 exported1
  pid="$(dpid gateway)"
  rss0="$(rss_kb "$pid")"
  failed0="$("${PY[@]}" metric "$m" 'sre_agent_trace_spans_dropped_total{reason="export_failed"}')"
  full0="$("${PY[@]}" metric "$m" 'sre_agent_trace_spans_dropped_total{reason="queue_full"}')"
  exported0="$("${PY[@]}" metric "$m" sre_agent_trace_spans_exported_total)"
  for ((i = 0; i < 200; i++)); do specs+=("workflow_job:h"); done
  DRILL_PARALLEL=8 "${PY[@]}" send "$STATE" "$DD/h-$name.jsonl" "${specs[@]}" >/dev/null
  # a batch fails after the exporter's 5 s timeout at most: wait for the counters to settle
  for ((i = 0; i < 40; i++)); do
    sleep 0.5
    failed1="$("${PY[@]}" metric "$m" 'sre_agent_trace_spans_dropped_total{reason="export_failed"}')"
    exported1="$("${PY[@]}" metric "$m" sre_agent_trace_spans_exported_total)"
    [ "$name" = up ] && [ "$exported1" -gt "$exported0" ] && [ "$i" -ge 12 ] && break
    [ "$name" != up ] && [ "$failed1" -gt "$failed0" ] && [ "$i" -ge 12 ] && break
  done
  full1="$("${PY[@]}" metric "$m" 'sre_agent_trace_spans_dropped_total{reason="queue_full"}')"
  rss1="$(rss_kb "$pid")"
  "${PY[@]}" latency "$DD/h-$name.jsonl" "  collector $name" 2>"$DD/h-$name.stats"
  echo "    gateway RSS ${rss0} -> ${rss1} kB; spans exported +$((exported1 - exported0)), dropped export_failed +$((failed1 - failed0)), queue_full +$((full1 - full0))"
  echo "{\"rss0\": $rss0, \"rss1\": $rss1, \"exported\": $((exported1 - exported0)), \"failed\": $((failed1 - failed0)), \"full\": $((full1 - full0))}" >"$DD/h-$name.counts"
}

drill_h() {
  log "drill h: the OTLP collector up, then absent, then black-holing (accepts connections, never answers)"
  local otlp=$((BASE + 317)) problems="$DD/h.problems" base_p95 p95 phase
  : >"$problems"
  DENV=()
  dstart otlp-sink "$BIN/sre-otlp-sink" --listen "$HOST:$otlp" --out "$DD/traces.jsonl"
  dwait otlp-sink port_open "$otlp"
  GW_ENV=("OTEL_SDK_DISABLED=false" "OTEL_EXPORTER_OTLP_ENDPOINT=http://$HOST:$otlp")
  restart_front
  "${PY[@]}" send "$STATE" "$DD/h.jsonl" workflow_job:h
  "${PY[@]}" wait-done "$STATE" h --timeout 240 || echo "run h did not end" >>"$problems"
  h_phase up
  dkill otlp-sink KILL
  log "collector gone (nothing listens on $otlp)"
  h_phase absent
  DENV=()
  dstart blackhole python3 -c '
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(1024)
held = []
while True:
    held.append(s.accept()[0])  # accepted, never read, never answered
' "$HOST" "$otlp"
  dwait blackhole port_open "$otlp"
  log "collector black-holing on $otlp"
  h_phase blackhole
  base_p95="$(jq .p95 "$DD/h-up.stats")"
  for phase in absent blackhole; do
    p95="$(jq .p95 "$DD/h-$phase.stats")"
    # bound: the exporter's 5 s timeout must never reach a webhook; 250 ms over the collector-up p95
    [ "$p95" -le $((base_p95 + 250)) ] || echo "collector $phase: webhook p95 $p95 ms over $base_p95 + 250 ms" >>"$problems"
    jq -e '.rss1 - .rss0 <= 65536' "$DD/h-$phase.counts" >/dev/null || echo "collector $phase: gateway RSS grew over 64 MiB" >>"$problems"
    jq -e '.failed + .full > 0' "$DD/h-$phase.counts" >/dev/null || echo "collector $phase: no dropped span counted" >>"$problems"
    jq -e '.exported == 0' "$DD/h-$phase.counts" >/dev/null || echo "collector $phase: spans counted as exported" >>"$problems"
  done
  jq -e '.exported > 0' "$DD/h-up.counts" >/dev/null || echo "collector up: no span exported" >>"$problems"
  cat "$DD/h-up.jsonl" "$DD/h-absent.jsonl" "$DD/h-blackhole.jsonl" >>"$DD/h.jsonl"
  "${PY[@]}" report h "$STATE" "$DD/h.jsonl" h --timeout 240 --problems "$problems"
  local rc=$?
  dkill blackhole KILL
  GW_ENV=()
  restart_front
  return "$rc"
}

PG_DIR=""
pg_ctl_() { runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PG_DIR" "$@"; }
pg_up() { pg_ctl_ -l "$PG_DIR/postgres.log" -w -o "-p $PG_PORT -c listen_addresses=$HOST -k $PG_DIR" start >/dev/null; }

drill_i() {
  log "drill i: PostgreSQL restarted mid-traffic (a private cluster; the gateway and orchestrator on it)"
  PG_BIN="$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -n 1)"
  [ -x "$PG_BIN/initdb" ] || { echo "VERDICT drill i: FAIL - no PostgreSQL binaries under /usr/lib/postgresql"; return 1; }
  PG_PORT=$((BASE + 432))
  PG_DIR="$(mktemp -d /tmp/sre-drill-pg.XXXXXX)"
  chown postgres "$PG_DIR"
  runuser -u postgres -- "$PG_BIN/initdb" -D "$PG_DIR" -A trust -U postgres >/dev/null
  pg_up
  local jobs i sender problems="$DD/i.problems" down_at up_at ready_codes=() code t_ready=""
  : >"$problems"
  read -r -a jobs <<<"$(jobs_of i)"
  STORE_ENV=("DATABASE_URL=postgres://postgres@$HOST:$PG_PORT/postgres")
  restart_front
  (
    for ((i = 0; i < ${#jobs[@]}; i++)); do
      "${PY[@]}" send "$STATE" "$DD/i.jsonl" "workflow_job:${jobs[$i]}" >/dev/null
      sleep 0.5
    done
  ) &
  sender=$!
  sleep 1.2
  pg_ctl_ -m fast -w stop >/dev/null
  down_at="$(now_ms)"
  log "PostgreSQL stopped"
  for ((i = 0; i < 10; i++)); do
    ready_codes+=("$(status_of "$D_GATEWAY/ready")")
    sleep 0.5
  done
  echo "  /ready while PostgreSQL was down: $(printf '%s\n' "${ready_codes[@]}" | sort | uniq -c | awk '{printf "%s x%s ", $2, $1}')"
  echo "    $(curl -s -m 3 "$D_GATEWAY/ready")"
  printf '%s\n' "${ready_codes[@]}" | grep -qv '^200$' || echo "/ready stayed 200 while PostgreSQL was down" >>"$problems"
  pg_up
  up_at="$(now_ms)"
  log "PostgreSQL started again"
  for ((i = 0; i < 300; i++)); do
    code="$(status_of "$D_GATEWAY/ready")"
    if [ "$code" = 200 ]; then t_ready=$(($(now_ms) - up_at)); break; fi
    sleep 0.1
  done
  echo "  down $(((up_at - down_at) / 1000)) s; /ready 200 again ${t_ready:-never} ms after PostgreSQL answered (no restart of the gateway)"
  [ -n "$t_ready" ] || echo "/ready not 200 within 30 s of PostgreSQL's restart" >>"$problems"
  wait "$sender"
  echo "  answers that were not 2xx:"
  "${PY[@]}" answers "$DD/i.jsonl"
  jq -r 'select(.status != 200 and .status != 202 and .status != 503) | "webhook answered \(.status), not 2xx or 503"' "$DD/i.jsonl" >>"$problems"
  redeliver i
  "${PY[@]}" report i "$STATE" "$DD/i.jsonl" "${jobs[@]}" --timeout 300 --problems "$problems"
  local rc=$?
  STORE_ENV=()
  restart_front
  pg_ctl_ -m fast -w stop >/dev/null 2>&1 || true
  rm -rf "$PG_DIR"
  return "$rc"
}

drill_j() {
  log "drill j: SQLite's disk full (a 16 MiB tmpfs holds the database), then space back"
  local full="$DD/full" db problems="$DD/j.problems" jobs first rest j code ready
  : >"$problems"
  read -r -a jobs <<<"$(jobs_of j)"
  first=("${jobs[@]:0:3}")
  rest=("${jobs[@]:3}")
  mkdir -p "$full"
  if ! mount -t tmpfs -o size=16m tmpfs "$full" 2>"$DD/j.mount"; then
    echo "VERDICT drill j: FAIL - cannot mount a tmpfs here: $(cat "$DD/j.mount")"
    return 1
  fi
  db="$full/sre-agent.db"
  STORE_ENV=("DATABASE_URL=sqlite://$db")
  restart_front
  for j in "${first[@]}"; do "${PY[@]}" send "$STATE" "$DD/j.jsonl" "workflow_job:$j" >/dev/null; done
  "${PY[@]}" wait-done "$STATE" "${first[@]}" --timeout 240 || echo "the runs before the disk filled did not end" >>"$problems"
  # the WAL emptied first, so the next write must grow a file
  sqlite3 "$db" 'PRAGMA wal_checkpoint(TRUNCATE);' >/dev/null || true
  dd if=/dev/zero of="$full/filler" bs=64k 2>/dev/null || true
  log "disk full: $(df -k --output=avail "$full" | tail -n 1 | tr -d ' ') kB free"
  for j in "${rest[@]}"; do "${PY[@]}" send "$STATE" "$DD/j.jsonl" "workflow_job:$j" >/dev/null; done
  ready="$(status_of "$D_GATEWAY/ready")"
  echo "  while full: /ready $ready; the answers that were not 2xx:"
  "${PY[@]}" answers "$DD/j.jsonl"
  jq -e -s 'map(select(.status == 503)) | length > 0' "$DD/j.jsonl" >/dev/null || echo "no webhook met the full disk (none answered 503)" >>"$problems"
  jq -r 'select(.status != 200 and .status != 202 and .status != 503) | "webhook answered \(.status), not 2xx or 503"' "$DD/j.jsonl" >>"$problems"
  # no half rows: the database is intact, every 2xx delivery has its event and its run, no refused one has either
  local integrity refused_ids ok_ids n_events n_runs half
  integrity="$(sqlite3 "file:$db?mode=ro" 'PRAGMA integrity_check;' 2>&1 | head -n 1)"
  ok_ids="$(jq -r 'select(.status == 202) | "\u0027\(.delivery)\u0027"' "$DD/j.jsonl" | paste -sd, -)"
  refused_ids="$(jq -r 'select(.status != 200 and .status != 202) | "\u0027\(.delivery)\u0027"' "$DD/j.jsonl" | paste -sd, -)"
  n_events="$(sqlite3 "file:$db?mode=ro" "SELECT COUNT(*) FROM events WHERE delivery_id IN (${ok_ids:-''});")"
  n_runs="$(sqlite3 "file:$db?mode=ro" "SELECT COUNT(*) FROM runs WHERE delivery_id IN (${ok_ids:-''});")"
  half="$(sqlite3 "file:$db?mode=ro" "SELECT (SELECT COUNT(*) FROM events WHERE delivery_id IN (${refused_ids:-''})) + (SELECT COUNT(*) FROM runs WHERE delivery_id IN (${refused_ids:-''}));")"
  echo "  integrity_check: $integrity; 202 deliveries $(jq -s 'map(select(.status == 202)) | length' "$DD/j.jsonl"): events $n_events, runs $n_runs; rows of refused deliveries: $half"
  [ "$integrity" = ok ] || echo "integrity_check: $integrity" >>"$problems"
  [ "$n_events" = "$n_runs" ] || echo "accepted deliveries: $n_events events but $n_runs runs" >>"$problems"
  [ "$half" = 0 ] || echo "$half row(s) of refused deliveries stored" >>"$problems"
  rm -f "$full/filler"
  log "space back: $(df -k --output=avail "$full" | tail -n 1 | tr -d ' ') kB free"
  redeliver j
  "${PY[@]}" report j "$STATE" "$DD/j.jsonl" "${jobs[@]}" --timeout 300 --problems "$problems"
  local rc=$?
  STORE_ENV=()
  restart_front
  umount "$full" || true
  return "$rc"
}

GITHUB_ROUTES=(app_token installation_repos repo jobs job_log blob commits branches pulls issue_labels labels check_runs)
drill_k() {
  log "drill k: the fake GitHub answering every API call 20 s late for 60 s"
  local jobs specs=() job r control
  read -r -a jobs <<<"$(jobs_of k)"
  control="$(jq -r .control_url "$STATE")"
  for r in "${GITHUB_ROUTES[@]}"; do fake_latency "$r" 20000; done
  for job in "${jobs[@]}"; do specs+=("workflow_job:$job"); done
  "${PY[@]}" send "$STATE" "$DD/k.jsonl" "${specs[@]}"
  sleep 60
  for r in "${GITHUB_ROUTES[@]}"; do fake_latency "$r" 0; done
  log "the fake GitHub answers at once again"
  "${PY[@]}" report k "$STATE" "$DD/k.jsonl" "${jobs[@]}" --timeout 600
  local rc=$?
  echo "  fake GitHub calls (route status count): $(curl -s "$control/calls" | jq -r 'map("\(.route) \(.status) x\(.count)") | join(", ")')"
  return "$rc"
}

drill_l() {
  log "drill l: the orchestrator SIGKILLed between the push of a run's branch and its PR creation"
  local control problems="$DD/l.problems" i inflight=0 branches prs running t_restart git_dir
  : >"$problems"
  control="$(jq -r .control_url "$STATE")"
  git_dir="$(jq -r '.repo_paths["drill/app"]' "$STATE")"
  fake_latency pulls 60000 POST # the create-PR call waits a minute: the window, held open
  local before
  before="$(git --git-dir="$git_dir" for-each-ref --format='%(refname:short)' 'refs/heads/sre-agent/')"
  "${PY[@]}" send "$STATE" "$DD/l.jsonl" workflow_job:l1
  for ((i = 0; i < 600; i++)); do
    inflight="$(curl -s "$control/calls?route=pulls&method=POST" | jq '[.[] | select(.status == 0)] | length')"
    [ "$inflight" -gt 0 ] && break
    sleep 0.2
  done
  [ "$inflight" -gt 0 ] || echo "no create-PR call within 120 s" >>"$problems"
  # the branch pushed for l1: the one that was not there before (earlier drills left theirs)
  branches="$(git --git-dir="$git_dir" for-each-ref --format='%(refname:short)' 'refs/heads/sre-agent/' | grep -vxF -f <(printf '%s\n' "$before") | paste -sd' ' - || true)"
  prs="$(curl -s "$control/pulls?repo=drill/app" | jq --arg b "$branches" '[.[] | select(.head as $h | ($b | split(" ")) | index($h))] | length')"
  running="$("${PY[@]}" wait-running "$STATE" l1 --timeout 0 || true)"
  dkill orchestrator-1 KILL
  log "SIGKILLed orchestrator-1 with the create-PR call in flight: branch(es) on GitHub: ${branches:-none}; their PRs: $prs"
  [ -n "$branches" ] || echo "no branch pushed before the kill" >>"$problems"
  [ "$prs" = 0 ] || echo "the PR existed before the kill: the window was missed" >>"$problems"
  fake_latency pulls 0 POST
  sleep 2
  t_restart="$(now_ms)"
  start_orchestrator 1
  "${PY[@]}" report l "$STATE" "$DD/l.jsonl" l1 --timeout 240 --restart-at "$t_restart" --watch "$running" --problems "$problems"
  local rc=$?
  echo "  create-PR calls (status count): $(curl -s "$control/calls?route=pulls&method=POST" | jq -r 'map("\(.status) x\(.count)") | join(", ")')"
  echo "  branches pushed for l1: $(git --git-dir="$git_dir" for-each-ref --format='%(refname:short)' 'refs/heads/sre-agent/' | grep -cvxF -f <(printf '%s\n' "$before") || true)"
  return "$rc"
}

# ---- main ---------------------------------------------------------------------------------------------
for b in sre-gateway sre-orchestrator sre-planner sre-policy sre-scanner sre-validator sre-pr sre-github-fake; do
  [ -x "$BIN/$b" ] || die "$BIN/$b is missing: cargo build --workspace --bins (or --release)"
done
for port in "$BASE" "$D_REDIS_PORT" "$FAKE_API" "$FAKE_CONTROL" "${D_GRPC[@]}"; do
  if port_open "$port" && ! [ -f "$DRUN/gateway.pid" ]; then
    die "port $port is in use: another drill mesh? (scripts/drills.sh --down, or set SRE_DRILL_PORT_BASE)"
  fi
done
mesh_down
rm -rf "$DD"
mkdir -p "$DRUN" "$DLOG"
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ "${SRE_DRILL_KEEP:-0}" = 1 ]; then
    log "SRE_DRILL_KEEP=1: the drill mesh keeps running (scripts/drills.sh --down stops it)"
  else
    mesh_down
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'echo "interrupted" >&2; exit 130' INT TERM

started=$SECONDS
mesh_up
for d in "${DRILLS[@]}"; do
  t=$SECONDS
  rc=0
  "drill_$d" || rc=$?
  verdict "$d" "$rc"
  log "drill $d took $((SECONDS - t)) s"
done
printf '\n==== drills (%d s)\n' "$((SECONDS - started))"
printf '  %s\n' "${RESULTS[@]}"
[ "$FAILED" -eq 0 ] || exit 1
