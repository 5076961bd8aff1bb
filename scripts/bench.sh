#!/usr/bin/env bash
# The whole benchmark on loopback, in one go (docs/benchmarks.md):
#   (a) gateway ingest, orchestrator stopped, at 16/64/256 connections (wrk, 2 threads, every request its own
#       X-GitHub-Delivery, the same signed ~17 KB workflow_run failure payload);
#   (b) the same against Probot 14 (verify + no-op handler) and adnanh/webhook 2.8 (HMAC-SHA256 trigger rule,
#       no-op command), started and stopped here; ratios ours/peer;
#   (c) telemetry overhead: the gateway with no traces and no per-request logs, with JSON logs, and with traces
#       at 100% sampling exported to a local OTLP receiver (sre-otlp-sink);
#   (d) orchestration overhead: N pipeline runs of a trivial failing step (the full mesh), per run total minus
#       the sandboxed commands' own time, p50 and p99, from what the store records;
#   (e) /metrics scrape latency and size per process after load; RSS of every process idle and under load;
#   (f) (a) and (d) on SQLite and on PostgreSQL;
#   profile: where the gateway's CPU goes at 64 connections (SQLite, 100% traces): `perf record` of the gateway
#       during one more wrk level, frame shares by scripts/bench/perf-shares.py (needs perf; skipped, and said
#       so in the report, where perf cannot record).
# Everything it starts listens on 127.0.0.1 ports from BENCH_PORT_BASE (default 18700), uses its own data dir
# and Redis stream, and is stopped at the end. Results: target/bench/<stamp>.md (and latest.md), raw rows in
# target/bench/<stamp>.jsonl.
#
#   scripts/bench.sh [--quick] [--duration S] [--runs N] [--levels "16 64 256"] [--db "sqlite postgres"]
#                    [--sections "ingest peers telemetry pipeline profile"]
#
# --quick: 2 s per level and 3 pipeline runs, no profile, for checking the script. SRE_SKIP_BUILD=1 skips the release build;
# BENCH_BIN_DIR runs the binaries of another dir (target/debug: checks the script, measures nothing useful).
# PostgreSQL: BENCH_PG_ADMIN_URL (default postgres://postgres@127.0.0.1:5432/postgres); a database is created
# for the run and dropped after. Redis: REDIS_URL (default redis://127.0.0.1:6379).
set -euo pipefail
# shellcheck source=scripts/lib/env.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/env.sh"
cd "$REPO"

DURATION=10
RUNS=20
LEVELS="16 64 256"
DBS="sqlite postgres"
SECTIONS="ingest peers telemetry pipeline profile"
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) DURATION=2; RUNS=3; SECTIONS="ingest peers telemetry pipeline" ;;
    --duration) DURATION="$2"; shift ;;
    --runs) RUNS="$2"; shift ;;
    --levels) LEVELS="$2"; shift ;;
    --db) DBS="$2"; shift ;;
    --sections) SECTIONS="$2"; shift ;;
    -h | --help) sed -n '2,25p' "$0"; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
  shift
done
has() { case " $SECTIONS " in *" $1 "*) true ;; *) false ;; esac; }

TARGET_DIR="${CARGO_TARGET_DIR:-$REPO/target}"
case "$TARGET_DIR" in /*) ;; *) TARGET_DIR="$REPO/$TARGET_DIR" ;; esac
BIN="${BENCH_BIN_DIR:-$TARGET_DIR/release}"   # BENCH_BIN_DIR=target/debug (with SRE_SKIP_BUILD=1) checks the script only
OUT_DIR="$TARGET_DIR/bench"
STAMP="$(date -u +%Y%m%dT%H%M%SZ)"
WORK="$OUT_DIR/work-$STAMP"
RESULTS="$OUT_DIR/$STAMP.jsonl"
PY="python3 $REPO/scripts/bench/bench.py"
REDIS_URL="${REDIS_URL:-redis://$HOST:$REDIS_PORT}"
PG_ADMIN="${BENCH_PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
SECRET="bench-$(openssl rand -hex 8)"
# The runs API token of the benchmark's gateway (it refuses to start without one).
API_TOKEN="$(openssl rand -hex 32)"
BASE="${BENCH_PORT_BASE:-18700}"
PORT_GATEWAY=$BASE PORT_PROBOT=$((BASE + 1)) PORT_WEBHOOK=$((BASE + 2)) PORT_OTLP=$((BASE + 3))
PORT_ORCH=$((BASE + 10))
declare -A BGRPC=([planner]=$((BASE + 21)) [policy]=$((BASE + 22)) [scanner]=$((BASE + 23)) [validator]=$((BASE + 24)) [pr]=$((BASE + 25)))
declare -A BHTTP=([planner]=$((BASE + 31)) [policy]=$((BASE + 32)) [scanner]=$((BASE + 33)) [validator]=$((BASE + 34)) [pr]=$((BASE + 35)))
mkdir -p "$WORK"

# ---- tools and peers (idempotent) ------------------------------------------------------------------------
apt_install() {   # apt_install COMMAND PACKAGE
  command -v "$1" >/dev/null && return 0
  log "installing $2 (apt)"
  apt-get install -y -q "$2" >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -q "$2" >/dev/null; }
}
apt_install wrk wrk
if has peers; then
  apt_install webhook webhook
  command -v node >/dev/null || die "node is not installed (Probot needs Node.js)"
  PROBOT_DIR="$TOOLS_DIR/probot"
  if [ ! -f "$PROBOT_DIR/node_modules/probot/package.json" ]; then
    log "installing probot@14 into $PROBOT_DIR (npm)"
    mkdir -p "$PROBOT_DIR"
    [ -f "$PROBOT_DIR/package.json" ] || echo '{"name":"sre-bench-probot","private":true}' >"$PROBOT_DIR/package.json"
    (cd "$PROBOT_DIR" && npm install --no-audit --no-fund --silent probot@14 >/dev/null) || die "npm install probot@14 failed"
  fi
fi
redis_ping "$REDIS_PORT" || die "Redis does not answer on $HOST:$REDIS_PORT (scripts/up.sh starts one)"

NEEDED=()   # the release binaries the chosen sections run
if has ingest || has telemetry || has profile; then NEEDED=(sre-gateway sre-otlp-sink); fi
if has pipeline; then NEEDED=(sre-gateway sre-otlp-sink sre-orchestrator sre-planner sre-policy sre-scanner sre-validator sre-pr); fi
if [ "${#NEEDED[@]}" -gt 0 ]; then
  if [ "${SRE_SKIP_BUILD:-0}" != 1 ]; then
    log "cargo build --release (the binaries the benchmark runs: ${NEEDED[*]})"
    cargo build --release --locked "${NEEDED[@]/#/-p}" || die "release build failed"
  fi
  for b in "${NEEDED[@]}"; do
    [ -x "$BIN/$b" ] || die "$BIN/$b is missing (unset SRE_SKIP_BUILD)"
  done
fi

# ---- process bookkeeping: everything started here is stopped here, by PID --------------------------------
declare -A PIDS=()
STREAMS=()
PG_DBS=()
stop() {   # stop NAME: SIGTERM, then SIGKILL after 10 s
  local name="$1" pid="${PIDS[$1]:-}" i
  [ -n "$pid" ] || return 0
  unset "PIDS[$name]"
  kill "$pid" 2>/dev/null || return 0
  for i in $(seq 1 100); do alive "$pid" || return 0; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
}
cleanup() {
  local name s d
  for name in "${!PIDS[@]}"; do stop "$name"; done
  for s in "${STREAMS[@]}"; do redis-cli -u "$REDIS_URL" DEL "$s" "$s:delayed" >/dev/null 2>&1 || true; done
  for d in "${PG_DBS[@]}"; do psql -q "$PG_ADMIN" -c "DROP DATABASE IF EXISTS $d WITH (FORCE)" >/dev/null 2>&1 || true; done
  [ "${BENCH_KEEP_WORK:-0}" = 1 ] || rm -rf "$WORK"
}
trap cleanup EXIT

# spawn NAME PORT CMD...: starts CMD (environment from the array ENV_EXTRA) with its log in $WORK/NAME.log
spawn() {
  local name="$1" port="$2"
  shift 2
  port_open "$port" && die "port $HOST:$port is in use (set BENCH_PORT_BASE to a free range)"
  env "${ENV_EXTRA[@]}" "$@" >>"$WORK/$name.log" 2>&1 </dev/null &
  PIDS[$name]=$!
}
wait_http() {   # wait_http NAME URL [CODE]: until URL answers CODE (default 200), 60 s at most
  local name="$1" url="$2" want="${3:-200}" i
  for i in $(seq 1 600); do
    [ "$(http_code "$url")" = "$want" ] && return 0
    alive "${PIDS[$name]}" || { tail -n 20 "$WORK/$name.log" >&2; die "$name exited during start-up"; }
    sleep 0.1
  done
  tail -n 20 "$WORK/$name.log" >&2
  die "$name not ready at $url within 60 s"
}

wait_grpc() {   # wait_grpc NAME ADDR: until grpc.health.v1 says SERVING, 60 s at most
  local name="$1" addr="$2" i
  for i in $(seq 1 300); do
    grpcurl -plaintext -max-time 2 "$addr" grpc.health.v1.Health/Check 2>/dev/null | grep -q '"SERVING"' && return 0
    alive "${PIDS[$name]}" || { tail -n 20 "$WORK/$name.log" >&2; die "$name exited during start-up"; }
    sleep 0.2
  done
  tail -n 20 "$WORK/$name.log" >&2
  die "$name not SERVING at $addr within 60 s"
}
new_db() {   # new_db sqlite|postgres DATADIR: a fresh database, its URL in DB_URL
  case "$1" in
    sqlite) DB_URL="sqlite://$2/sre-agent.db" ;;
    postgres)
      local d="sre_bench_${STAMP,,}_$RANDOM$RANDOM"
      d="${d//[^a-z0-9_]/_}"
      psql -q "$PG_ADMIN" -c "CREATE DATABASE $d" >/dev/null || die "cannot create database $d at $PG_ADMIN"
      PG_DBS+=("$d")
      DB_URL="${PG_ADMIN%/*}/$d" ;;
    *) die "unknown store $1" ;;
  esac
}

# start_gateway DB TELEMETRY: the gateway alone (no orchestrator) on a fresh store and stream.
#   TELEMETRY: off (no traces, logs at warn), logs (no traces, JSON logs at info), traces (logs + traces at
#   100% sampling to sre-otlp-sink)
start_gateway() {
  local db="$1" mode="$2" dir stream
  dir="$(mktemp -d "$WORK/gateway.XXXX")"
  stream="sre:bench:$STAMP:$RANDOM"
  STREAMS+=("$stream")
  new_db "$db" "$dir"
  ENV_EXTRA=("SRE_HTTP_ADDR=$HOST:$PORT_GATEWAY" "GITHUB_WEBHOOK_SECRET=$SECRET" "SRE_API_TOKEN=$API_TOKEN" "DATABASE_URL=$DB_URL"
    "REDIS_URL=$REDIS_URL" "SRE_QUEUE_STREAM=$stream" "SRE_DATA_DIR=$dir" "OTEL_SERVICE_NAME=gateway")
  case "$mode" in
    off) ENV_EXTRA+=("OTEL_SDK_DISABLED=true" "RUST_LOG=warn") ;;
    logs) ENV_EXTRA+=("OTEL_SDK_DISABLED=true" "RUST_LOG=info") ;;
    traces) ENV_EXTRA+=("OTEL_TRACES_SAMPLER=always_on" "OTEL_EXPORTER_OTLP_ENDPOINT=http://$HOST:$PORT_OTLP" "RUST_LOG=info") ;;
  esac
  spawn gateway "$PORT_GATEWAY" "$BIN/sre-gateway"
  wait_http gateway "http://$HOST:$PORT_GATEWAY/ready"
}
start_sink() {
  ENV_EXTRA=()
  spawn otlp-sink "$PORT_OTLP" "$BIN/sre-otlp-sink" --listen "$HOST:$PORT_OTLP" --out "$WORK/traces.jsonl"
  local i
  for i in $(seq 1 100); do port_open "$PORT_OTLP" && return 0; sleep 0.1; done
  die "sre-otlp-sink did not listen on $PORT_OTLP"
}

# ---- the payload ------------------------------------------------------------------------------------------
BODY="$WORK/body.json"
BODY_BYTES="$($PY body "$BODY")"
SIG="sha256=$(openssl dgst -sha256 -hmac "$SECRET" -r <"$BODY" | cut -d' ' -f1)"

# signed_check NAME URL: the receiver accepts the signed body and refuses a bad signature (it really verifies)
signed_check() {
  local url="$2" good bad
  good="$(curl -s -o /dev/null -w '%{http_code}' -m 5 -XPOST "$url" -H 'Content-Type: application/json' \
    -H 'X-GitHub-Event: workflow_run' -H "X-GitHub-Delivery: check-$RANDOM$RANDOM" -H "X-Hub-Signature-256: $SIG" \
    --data-binary "@$BODY")"
  bad="$(curl -s -o /dev/null -w '%{http_code}' -m 5 -XPOST "$url" -H 'Content-Type: application/json' \
    -H 'X-GitHub-Event: workflow_run' -H "X-GitHub-Delivery: check-$RANDOM$RANDOM" \
    -H "X-Hub-Signature-256: sha256=$(printf '0%.0s' $(seq 64))" --data-binary "@$BODY")"
  case "$good" in 2??) ;; *) die "$1 answered $good to a signed delivery" ;; esac
  case "$bad" in 2??) die "$1 accepted a bad signature ($bad): it does not verify" ;; esac
}

# measure NAME URL CONNS KEY=VAL...: one wrk level (1 s warm-up first) with the receiver's CPU and RSS sampled
measure() {
  local name="$1" url="$2" conns="$3" pid="${PIDS[$1]}" out="$WORK/wrk.$RANDOM"
  shift 3
  BENCH_BODY_FILE="$BODY" BENCH_SIGNATURE="$SIG" BENCH_PREFIX="warm-$STAMP-$RANDOM" \
    wrk -t2 -c"$conns" -d1s -s "$REPO/scripts/bench/webhook.lua" "$url" >/dev/null 2>&1 || true
  rm -f "$out.stop"
  $PY sample "$pid" "$out.stop" "$out.sample" &
  local sampler=$!
  BENCH_BODY_FILE="$BODY" BENCH_SIGNATURE="$SIG" BENCH_PREFIX="bench-$STAMP-$RANDOM" \
    wrk -t2 -c"$conns" -d"${DURATION}s" --timeout 10s -s "$REPO/scripts/bench/webhook.lua" "$url" >"$out.wrk" 2>&1 \
    || { cat "$out.wrk" >&2; die "wrk failed against $name"; }
  touch "$out.stop"
  wait "$sampler"
  $PY wrk "$out.wrk" "$out.sample" "conns=$conns" "$@" >>"$RESULTS"
  log "$(tail -n 1 "$RESULTS")"
}

printf '{"section":"meta","date":"%s","machine":"%s","load":"%s","duration":%s,"body_bytes":%s}\n' \
  "$(date -u '+%Y-%m-%d %H:%M UTC')" "$(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GB", $2/1048576}' /proc/meminfo), $(uname -r)" \
  "load average $(cut -d' ' -f1-3 /proc/loadavg) at start" "$DURATION" "$BODY_BYTES" >"$RESULTS"

# ---- (a, f) the gateway, orchestrator stopped; (b) the peers ---------------------------------------------------
if has ingest || has peers; then
  if has peers; then
    openssl genrsa -out "$WORK/probot-key.pem" 2048 2>/dev/null
    printf '[{"id":"github","execute-command":"/bin/true","trigger-rule-mismatch-http-response-code":401,"trigger-rule":{"match":{"type":"payload-hmac-sha256","secret":"%s","parameter":{"source":"header","name":"X-Hub-Signature-256"}}}}]\n' \
      "$SECRET" >"$WORK/hooks.json"
  fi
  for conns in $LEVELS; do
    if has ingest; then
      for db in $DBS; do
        start_sink
        start_gateway "$db" traces
        signed_check gateway "http://$HOST:$PORT_GATEWAY/webhooks/github"
        measure gateway "http://$HOST:$PORT_GATEWAY/webhooks/github" "$conns" section=ingest "receiver=sre-gateway ($db)"
        stop gateway
        stop otlp-sink
        rm -rf "$WORK"/gateway.* "$WORK/traces.jsonl"
      done
    fi
    if has peers; then
      ENV_EXTRA=("PROBOT_DIR=$PROBOT_DIR" "WEBHOOK_SECRET=$SECRET" "PRIVATE_KEY_PATH=$WORK/probot-key.pem" "PORT=$PORT_PROBOT" "NODE_ENV=production")
      spawn probot "$PORT_PROBOT" node "$REPO/scripts/bench/probot-app.mjs"
      wait_http probot "http://$HOST:$PORT_PROBOT/webhooks/github" 404   # GET: not a webhook
      signed_check probot "http://$HOST:$PORT_PROBOT/webhooks/github"
      measure probot "http://$HOST:$PORT_PROBOT/webhooks/github" "$conns" section=ingest "receiver=Probot 14.3.2"
      stop probot
      ENV_EXTRA=()
      spawn webhook "$PORT_WEBHOOK" webhook -hooks "$WORK/hooks.json" -ip "$HOST" -port "$PORT_WEBHOOK" -urlprefix webhooks
      wait_http webhook "http://$HOST:$PORT_WEBHOOK/" 200
      signed_check webhook "http://$HOST:$PORT_WEBHOOK/webhooks/github"
      measure webhook "http://$HOST:$PORT_WEBHOOK/webhooks/github" "$conns" section=ingest "receiver=adnanh/webhook 2.8"
      stop webhook
    fi
  done
fi

# ---- (c) telemetry overhead --------------------------------------------------------------------------------
if has telemetry; then
  conns=64
  for mode in off logs traces; do
    case "$mode" in
      off) label="metrics only (no traces, logs at warn)" ;;
      logs) label="metrics + JSON log per delivery" ;;
      traces) label="metrics + logs + traces, 100% sampled, OTLP to sre-otlp-sink" ;;
    esac
    start_sink
    start_gateway sqlite "$mode"
    measure gateway "http://$HOST:$PORT_GATEWAY/webhooks/github" "$conns" section=telemetry "mode=$mode" "mode_label=$label"
    stop gateway
    stop otlp-sink
    rm -rf "$WORK"/gateway.* "$WORK/traces.jsonl"
  done
fi

# ---- profile: perf of the gateway during one more level (64 connections, SQLite, 100% traces) -------------------
if has profile; then
  if ! command -v perf >/dev/null || ! perf record -q -o "$WORK/perf.probe" -- true >/dev/null 2>&1; then
    log "profile: perf cannot record here; skipped"
    printf '{"section":"profile","skipped":"perf cannot record on this machine"}\n' >>"$RESULTS"
  else
    start_sink
    start_gateway sqlite traces
    secs=$((DURATION < 8 ? DURATION : 8))
    # perf starts after wrk's warm-up and the first second of the level, and stops before the level ends
    ( sleep 2; perf record -q -F 499 -g --call-graph dwarf -p "${PIDS[gateway]}" -o "$WORK/perf.data" -- sleep "$secs" \
        >"$WORK/perf.log" 2>&1 ) &
    perf_pid=$!
    measure gateway "http://$HOST:$PORT_GATEWAY/webhooks/github" 64 section=profile_level "receiver=sre-gateway (sqlite, under perf)"
    wait "$perf_pid" || true
    stop gateway
    stop otlp-sink
    log "profile: perf script (unwinding the samples takes a while)"
    shares="$(perf script -i "$WORK/perf.data" -F comm,tid,period,ip,sym 2>/dev/null | python3 "$REPO/scripts/bench/perf-shares.py" --top 25 --json)" \
      || shares='{"skipped":"perf recorded no samples"}'
    printf '%s\n' "${shares%\}},\"section\":\"profile\",\"seconds\":$secs}" >>"$RESULTS"
    rm -rf "$WORK"/gateway.* "$WORK/traces.jsonl"
    [ "${BENCH_KEEP_WORK:-0}" = 1 ] || rm -f "$WORK/perf.data"
  fi
fi

# ---- (d, e, f) the full mesh: pipeline runs, scrapes, RSS --------------------------------------------------------
MESH=(planner policy scanner validator pr orchestrator gateway otlp-sink)
rss_mb() { awk '/VmRSS/ {printf "%.1f", $2/1024}' "/proc/$1/status" 2>/dev/null || echo 0; }

start_mesh() {   # start_mesh DB
  local db="$1" dir name url stream
  dir="$(mktemp -d "$WORK/mesh.XXXX")"
  new_db "$db" "$dir"
  url="$DB_URL"
  stream="sre:bench:$STAMP:$RANDOM"
  STREAMS+=("$stream")
  MESH_REPOS="$dir/repos"
  mkdir -p "$MESH_REPOS"
  start_sink
  local common=("SRE_DATA_DIR=$dir" "SRE_REPOS_DIR=$MESH_REPOS" "RUST_LOG=info" "OTEL_EXPORTER_OTLP_ENDPOINT=http://$HOST:$PORT_OTLP")
  for name in "${GRPC_SERVICES[@]}"; do
    ENV_EXTRA=("${common[@]}" "OTEL_SERVICE_NAME=$name" "SRE_GRPC_ADDR=$HOST:${BGRPC[$name]}" "SRE_HTTP_ADDR=$HOST:${BHTTP[$name]}")
    spawn "$name" "${BGRPC[$name]}" "$BIN/${BINARY[$name]}"
  done
  ENV_EXTRA=("${common[@]}" "OTEL_SERVICE_NAME=orchestrator" "SRE_HTTP_ADDR=$HOST:$PORT_ORCH" "REDIS_URL=$REDIS_URL"
    "DATABASE_URL=$url" "SRE_QUEUE_STREAM=$stream" "SRE_PRS_PER_HOUR=100000" "SRE_CHECK_RUNS=false")
  for name in "${GRPC_SERVICES[@]}"; do
    ENV_EXTRA+=("SRE_${name^^}_URL=http://$HOST:${BGRPC[$name]}")
  done
  spawn orchestrator "$PORT_ORCH" "$BIN/sre-orchestrator"
  ENV_EXTRA=("${common[@]}" "OTEL_SERVICE_NAME=gateway" "SRE_HTTP_ADDR=$HOST:$PORT_GATEWAY" "REDIS_URL=$REDIS_URL"
    "DATABASE_URL=$url" "SRE_QUEUE_STREAM=$stream" "GITHUB_WEBHOOK_SECRET=$SECRET" "SRE_API_TOKEN=$API_TOKEN")
  spawn gateway "$PORT_GATEWAY" "$BIN/sre-gateway"
  for name in "${GRPC_SERVICES[@]}"; do wait_grpc "$name" "$HOST:${BGRPC[$name]}"; done
  wait_http orchestrator "http://$HOST:$PORT_ORCH/ready"
  wait_http gateway "http://$HOST:$PORT_GATEWAY/ready"
}

# fixture REPO_DIR: a repository whose CI step `make test` fails on trailing whitespace (trivial to run and fix)
fixture() {
  local repo="$1"
  mkdir -p "$repo/.github/workflows"
  git -C "$repo" init -q -b main
  git -C "$repo" config user.name "Bench Fixture"
  git -C "$repo" config user.email "bench-fixture@example.invalid"
  git -C "$repo" config commit.gpgsign false
  # the smoke test's lint job (scripts/smoke.sh): trailing whitespace and a missing final newline
  printf 'def add(a, b):   \n    return a + b  \n\n\ndef sub(a, b):\t\n    return a - b' >"$repo/app.py"
  printf 'test:\n\t! grep -nE "[[:space:]]+$$" app.py\n\ttest -z "$$(tail -c1 app.py)"\n' >"$repo/Makefile"
  printf 'name: CI\non: [push]\njobs:\n  lint:\n    runs-on: ubuntu-latest\n    steps:\n      - uses: actions/checkout@v4\n      - name: Lint\n        run: make test\n' \
    >"$repo/.github/workflows/ci.yml"
  git -C "$repo" add -A
  git -C "$repo" commit -q -m "app"
  git -C "$repo" rev-parse HEAD
}

if has pipeline; then
  for db in $DBS; do
    start_mesh "$db"
    declare -A IDLE=() PEAK=()
    for name in "${MESH[@]}"; do IDLE[$name]="$(rss_mb "${PIDS[$name]}")"; PEAK[$name]="${IDLE[$name]}"; done
    log "pipeline: $RUNS runs on $db, one at a time"
    for i in $(seq 1 "$RUNS"); do
      repo_name="fix-$i"
      sha="$(fixture "$MESH_REPOS/bench/$repo_name")"
      printf '{"action":"completed","workflow_job":{"id":%s,"run_id":%s,"run_attempt":1,"name":"lint","workflow_name":"CI","head_sha":"%s","head_branch":"main","conclusion":"failure"},"repository":{"full_name":"bench/%s"}}' \
        "$((7000 + i))" "$((9000 + i))" "$sha" "$repo_name" >"$WORK/job.json"
      sig="sha256=$(openssl dgst -sha256 -hmac "$SECRET" -r <"$WORK/job.json" | cut -d' ' -f1)"
      curl -s -m 15 -o "$WORK/accepted.json" -XPOST "http://$HOST:$PORT_GATEWAY/webhooks/github" \
        -H 'Content-Type: application/json' -H 'X-GitHub-Event: workflow_job' \
        -H "X-GitHub-Delivery: run-$STAMP-$db-$i" -H "X-Hub-Signature-256: $sig" --data-binary "@$WORK/job.json"
      run_id="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["run_id"])' "$WORK/accepted.json")" \
        || die "no run_id in $(cat "$WORK/accepted.json")"
      status=""
      for t in $(seq 1 1200); do
        for name in "${MESH[@]}"; do
          r="$(rss_mb "${PIDS[$name]}")"
          awk -v a="$r" -v b="${PEAK[$name]}" 'BEGIN {exit !(a > b)}' && PEAK[$name]="$r"
        done
        curl -fsS -m 5 -H "Authorization: Bearer $API_TOKEN" -o "$WORK/run.json" "http://$HOST:$PORT_GATEWAY/api/v1/runs/$run_id" 2>/dev/null || { sleep 0.05; continue; }
        status="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["status"])' "$WORK/run.json")"
        case "$status" in success | fail | blocked | skipped) break ;; esac
        sleep 0.05
      done
      case "$status" in success | fail | blocked | skipped) ;; *) die "run $run_id not finished after 60 s (status $status)" ;; esac
      curl -fsS -m 5 -H "Authorization: Bearer $API_TOKEN" -o "$WORK/validation.json" "http://$HOST:$PORT_GATEWAY/api/v1/runs/$run_id/artifacts/validation" 2>/dev/null \
        || echo '{}' >"$WORK/validation.json"
      row="$($PY run "$WORK/run.json" "$WORK/validation.json")"
      printf '%s\n' "${row%\}},\"section\":\"pipeline\",\"db\":\"$db\"}" >>"$RESULTS"
      log "run $i/$RUNS on $db: $status, $(tail -n 1 "$RESULTS" | python3 -c 'import json,sys; r=json.load(sys.stdin); print(r["total_ms"], "ms total,", r["sandboxed_ms"], "ms sandboxed")')"
    done
    for name in "${MESH[@]}"; do
      case "$name" in
        gateway) url="http://$HOST:$PORT_GATEWAY/metrics" ;;
        orchestrator) url="http://$HOST:$PORT_ORCH/metrics" ;;
        otlp-sink) continue ;;
        *) url="http://$HOST:${BHTTP[$name]}/metrics" ;;
      esac
      row="$($PY scrape "$url" 20)"
      printf '%s\n' "${row%\}},\"section\":\"scrape\",\"process\":\"${BINARY[$name]}\",\"db\":\"$db\",\"rss_idle_mb\":${IDLE[$name]},\"rss_load_mb\":${PEAK[$name]}}" >>"$RESULTS"
    done
    for name in "${MESH[@]}"; do stop "$name"; done
    rm -rf "$WORK"/mesh.* "$WORK/traces.jsonl"
  done
fi

cp "$RESULTS" "$OUT_DIR/latest.jsonl"
$PY report "$RESULTS" "$OUT_DIR/$STAMP.md"
cp "$OUT_DIR/$STAMP.md" "$OUT_DIR/latest.md"
log "results: $OUT_DIR/$STAMP.md (raw rows: $RESULTS)"
