#!/usr/bin/env bash
# Stops exactly what scripts/up.sh started (the PID files in $DATA/run), Redis only if up.sh started it:
# SIGTERM, up to 10 s (SRE_DOWN_GRACE) to exit, then SIGKILL. Removes the PID files. Safe to run again.
set -euo pipefail
# shellcheck source=scripts/lib/env.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/env.sh"

GRACE="${SRE_DOWN_GRACE:-10}"

# stop NAME: stops the process of $RUN_DIR/NAME.pid if it is alive and is the program up.sh started
stop() {
  local name="$1" pidfile="$RUN_DIR/$1.pid" pid i
  [ -f "$pidfile" ] || return 0
  if ! pid="$(pid_of "$name" "$(expected_program "$name")")"; then
    log "$name: not running (stale PID file removed)"
    rm -f "$pidfile"
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < GRACE * 10; i++)); do
    alive "$pid" || break
    sleep 0.1
  done
  if alive "$pid"; then
    warn "$name (pid $pid) still running after ${GRACE}s: SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
      alive "$pid" || break
      sleep 0.1
    done
  fi
  rm -f "$pidfile"
  log "$name stopped (pid $pid)"
}

[ -d "$RUN_DIR" ] || { log "nothing to stop ($RUN_DIR does not exist)"; exit 0; }

# reverse start order: the gateway first (no new work), the gRPC services last
stop prometheus
for ((n = ${#PROCESSES[@]} - 1; n >= 0; n--)); do
  stop "${PROCESSES[$n]}"
done
# last: the services flush their spans to it while they stop
stop otlp-sink
if [ -f "$RUN_DIR/redis.started-by-up" ]; then
  stop redis
  rm -f "$RUN_DIR/redis.started-by-up"
fi
log "down"
