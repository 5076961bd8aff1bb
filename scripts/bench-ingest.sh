#!/usr/bin/env bash
# Webhook ingest benchmark against the running mesh (scripts/up.sh first): wrk sends signed ~17 KB
# workflow_run failure deliveries, each with a new X-GitHub-Delivery, so every request verifies the
# signature, stores the event and its run, and enqueues a job. Loopback only; bounded in time.
#
#   scripts/bench-ingest.sh [DURATION_S=10] [CONNECTIONS=16]
#
# The runs it creates name a repository that does not exist, so the orchestrator fails them at the plan
# stage (quickly); run scripts/down.sh and remove $SRE_DATA_DIR afterwards to drop them.
set -euo pipefail
# shellcheck source=scripts/lib/env.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/env.sh"
# shellcheck source=/dev/null
[ -f "$ENV_FILE" ] && . "$ENV_FILE"
DURATION="${1:-10}"
CONNS="${2:-16}"
SECRET="${GITHUB_WEBHOOK_SECRET:-$DEFAULT_WEBHOOK_SECRET}"

command -v wrk >/dev/null || { log "installing wrk (apt)"; apt-get install -y -q wrk >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -q wrk >/dev/null; }; }
[ "$(http_code "$GATEWAY_URL/ready")" = 200 ] || die "the gateway at $GATEWAY_URL is not ready: run scripts/up.sh"

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
# A workflow_run payload padded to GitHub's usual size with the fields GitHub sends (here: a long
# display_title and pull_requests list) so parsing and storage see a realistic body.
python3 - "$TMP/body.json" <<'PY'
import json, sys
payload = {
    "action": "completed",
    "workflow_run": {
        "id": 9876543210, "name": "lint", "head_branch": "main",
        "head_sha": "0123456789abcdef0123456789abcdef01234567", "conclusion": "failure", "run_attempt": 1,
        "display_title": "x" * 200,
        "pull_requests": [{"id": i, "number": i, "url": "https://api.github.com/repos/bench/none/pulls/%d" % i} for i in range(215)],
    },
    "repository": {"full_name": "bench/none", "name": "none", "owner": {"login": "bench"}},
}
body = json.dumps(payload, separators=(",", ":"))
open(sys.argv[1], "w").write(body)
print(len(body), "bytes", file=sys.stderr)
PY
SIG="sha256=$(openssl dgst -sha256 -hmac "$SECRET" -r <"$TMP/body.json" | cut -d' ' -f1)"
log "wrk: ${DURATION}s, 2 threads, $CONNS connections -> POST $GATEWAY_URL/webhooks/github"
BENCH_BODY_FILE="$TMP/body.json" BENCH_SIGNATURE="$SIG" BENCH_PREFIX="bench-$(date +%s)" \
  wrk -t2 -c"$CONNS" -d"${DURATION}s" -s "$REPO/scripts/bench/webhook.lua" "$GATEWAY_URL/webhooks/github"
