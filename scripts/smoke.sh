#!/usr/bin/env bash
# Smoke test of the real processes (scripts/up.sh first): only what needs the seven binaries themselves. The
# pipeline's behaviour in detail (stages, artifacts, redeliveries, retries, one trace, the observability
# contract, cardinality under hostile traffic) is proven in Rust: tests/e2e and each crate's tests.
#   (a) first scrape: every process's /metrics, before this script's traffic, matches the contract of
#       docs/observability.md (every family it owns, every seed series at 0, labels inside their sets)
#   (b) gRPC: health SERVING, reflection list/describe on all five services, a CheckPatch call by reflection
#   (c) one signed workflow_job webhook -> 202 -> the run succeeds -> its PR branch exists and passes make test
#   (d) promtool check metrics on every /metrics after the traffic, and the contract still holds
#   (e) with up.sh's local OTLP sink: the webhook's trace spans all seven processes, each span coming from
#       the process the contract names
# Any failed check prints "FAIL (<check>): <why>" and exits 1.
#
#   SMOKE_TIMEOUT        seconds to wait for the run to finish (default 120)
#   SMOKE_STRICT_LINT=1  promtool lint warnings (e.g. missing HELP) fail the smoke test instead of being printed
set -euo pipefail
# shellcheck source=scripts/lib/env.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/env.sh"
# the secret and directories the running mesh was started with (written by up.sh)
if [ -f "$ENV_FILE" ]; then
  # shellcheck source=/dev/null
  . "$ENV_FILE"
fi
SECRET="${GITHUB_WEBHOOK_SECRET:-$DEFAULT_WEBHOOK_SECRET}"
REPOS_DIR="${SRE_REPOS_DIR:-$DATA/repos}"
TIMEOUT="${SMOKE_TIMEOUT:-120}"
CONTRACT="${CARGO_TARGET_DIR:-$REPO/target}/release/sre-contract"
METRICS_PROCESSES=(gateway orchestrator "${GRPC_SERVICES[@]}")

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
PASSED=0

pass() { PASSED=$((PASSED + 1)); log "ok   ($1) ${*:2}"; }
# fail CHECK MESSAGE [FILE...]: prints the message and the files, exits 1
fail() {
  local check="$1" msg="$2" f
  shift 2
  printf '[smoke.sh] FAIL (%s): %s\n' "$check" "$msg" >&2
  for f in "$@"; do
    [ -s "$f" ] && { printf -- '---- %s\n' "$(basename "$f")" >&2; head -c 4000 "$f" >&2; echo >&2; }
  done
  exit 1
}

# json_get FILE PATH: the value at a dotted path (strings raw, others as JSON); exit 1 when absent
json_get() {
  python3 -c '
import json, sys
v = json.load(open(sys.argv[1]))
for k in sys.argv[2].split("."):
    if not isinstance(v, dict) or k not in v:
        sys.exit(1)
    v = v[k]
print(v if isinstance(v, str) else json.dumps(v))
' "$1" "$2" 2>/dev/null
}

# scrape_all SUFFIX: every process's /metrics (Prometheus text) into $TMP/<process>.SUFFIX
scrape_all() {
  local name url
  for name in "${METRICS_PROCESSES[@]}"; do
    url="http://$HOST:${HTTP_PORT[$name]}/metrics"
    curl -fsS -m 5 -H 'Accept: text/plain;version=0.0.4' -o "$TMP/$name.$1" "$url" 2>"$TMP/curl.err" \
      || fail "metrics" "GET $url failed: $(cat "$TMP/curl.err")"
  done
}

# contract_args SUFFIX: process=file arguments for sre-contract
contract_args() {
  local name
  for name in "${METRICS_PROCESSES[@]}"; do printf '%s=%s\n' "$name" "$TMP/$name.$1"; done
}

# ---- pre-flight ------------------------------------------------------------------------------------------
for tool in curl git python3 make openssl; do
  command -v "$tool" >/dev/null || fail "pre-flight" "$tool is not installed"
done
command -v grpcurl >/dev/null || fail "pre-flight" "grpcurl is not installed (scripts/install-tools.sh grpcurl)"
[ -x "$CONTRACT" ] || fail "pre-flight" "$CONTRACT is missing: scripts/up.sh builds it"
[ "$(curl -s -o /dev/null -w '%{http_code}' -m 5 "$GATEWAY_URL/health")" = 200 ] \
  || fail "pre-flight" "the gateway does not answer $GATEWAY_URL/health: start the mesh with scripts/up.sh"

# ---- (a) first scrape --------------------------------------------------------------------------------------
scrape_all first
mapfile -t args < <(contract_args first)
"$CONTRACT" metrics --first-scrape "${args[@]}" >"$TMP/contract.out" 2>&1 \
  || fail "a: first scrape" "a process's first scrape disagrees with the contract" "$TMP/contract.out"
pass "a: first scrape" "$(cat "$TMP/contract.out")"

# ---- (b) gRPC health and reflection ------------------------------------------------------------------------
for name in "${GRPC_SERVICES[@]}"; do
  addr="$HOST:${GRPC_PORT[$name]}"
  grpcurl -plaintext -max-time 5 "$addr" grpc.health.v1.Health/Check >"$TMP/health.out" 2>&1 || true
  grep -q '"SERVING"' "$TMP/health.out" \
    || fail "b: grpc health $name" "grpc.health.v1.Health/Check on $addr is not SERVING" "$TMP/health.out"
  grpcurl -plaintext -max-time 5 "$addr" list >"$TMP/list.out" 2>&1 \
    || fail "b: grpc reflection $name" "grpcurl list on $addr failed" "$TMP/list.out"
  for want in "${GRPC_SERVICE[$name]}" grpc.health.v1.Health; do
    grep -qx "$want" "$TMP/list.out" \
      || fail "b: grpc reflection $name" "grpcurl list on $addr does not show $want" "$TMP/list.out"
  done
  grep -q '^grpc\.reflection\.' "$TMP/list.out" \
    || fail "b: grpc reflection $name" "grpcurl list on $addr does not show grpc.reflection.*" "$TMP/list.out"
  grpcurl -plaintext -max-time 5 "$addr" describe "${GRPC_SERVICE[$name]}" >"$TMP/describe.out" 2>&1 \
    && grep -q "rpc " "$TMP/describe.out" \
    || fail "b: grpc describe $name" "grpcurl describe ${GRPC_SERVICE[$name]} on $addr shows no methods" "$TMP/describe.out"
done
# A method call through reflection alone (no .proto at hand): the policy scores a one-line whitespace fix.
call_diff='diff --git a/a.py b/a.py\n--- a/a.py\n+++ b/a.py\n@@ -1 +1 @@\n-x = 1 \n+x = 1\n'
grpcurl -plaintext -max-time 5 -d "{\"diff\":\"$call_diff\"}" "$HOST:${GRPC_PORT[policy]}" sre.v1.Policy/CheckPatch \
  >"$TMP/call.out" 2>&1 || fail "b: grpc call" "grpcurl sre.v1.Policy/CheckPatch failed" "$TMP/call.out"
grep -q '"allowed": true' "$TMP/call.out" && grep -q '"label": "safe"' "$TMP/call.out" \
  || fail "b: grpc call" "sre.v1.Policy/CheckPatch did not allow a one-line whitespace fix" "$TMP/call.out"
pass "b: grpc" "SERVING, list/describe, health and reflection on ${GRPC_SERVICE[*]}; CheckPatch by reflection"

# ---- (c) one failure, one run, one PR ------------------------------------------------------------------------
OWNER=smoke
NAME="repo-$(openssl rand -hex 4)"
SMOKE_REPO="$REPOS_DIR/$OWNER/$NAME"
mkdir -p "$SMOKE_REPO"
git -C "$SMOKE_REPO" init -q -b main
git -C "$SMOKE_REPO" config user.name "Smoke Tester"
git -C "$SMOKE_REPO" config user.email "smoke-tester@example.invalid"
git -C "$SMOKE_REPO" config commit.gpgsign false
# `make test` is the lint job: it fails on trailing whitespace or a missing final newline in app.py.
printf 'def add(a, b):   \n    return a + b  \n\n\ndef sub(a, b):\t\n    return a - b' >"$SMOKE_REPO/app.py"
printf 'test:\n\t! grep -nE "[[:space:]]+$$" app.py\n\ttest -z "$$(tail -c1 app.py)"\n' >"$SMOKE_REPO/Makefile"
# Its CI workflow: the validator re-runs this job's step without and with the patch, so the fix is proven.
mkdir -p "$SMOKE_REPO/.github/workflows"
printf 'name: CI\non: [push]\njobs:\n  lint:\n    runs-on: ubuntu-latest\n    steps:\n      - uses: actions/checkout@v4\n      - name: Lint\n        run: make test\n' \
  >"$SMOKE_REPO/.github/workflows/ci.yml"
git -C "$SMOKE_REPO" add -A
git -C "$SMOKE_REPO" commit -q -m "app: add and sub"
HEAD_SHA="$(git -C "$SMOKE_REPO" rev-parse HEAD)"
make -s -C "$SMOKE_REPO" test >/dev/null 2>&1 && fail "c: repo" "make test passes on the unfixed repo: the fixture is wrong"
JOB_ID="$((RANDOM * 32768 + RANDOM))"
printf '{"action":"completed","workflow_job":{"id":%s,"run_id":%s,"run_attempt":1,"name":"lint","workflow_name":"CI","head_sha":"%s","head_branch":"main","conclusion":"failure"},"repository":{"full_name":"%s/%s"}}' \
  "$JOB_ID" "$((JOB_ID + 1))" "$HEAD_SHA" "$OWNER" "$NAME" >"$TMP/body.json"
SIGNATURE="sha256=$(openssl dgst -sha256 -hmac "$SECRET" -r <"$TMP/body.json" | cut -d' ' -f1)"
code="$(curl -sS -m 15 -o "$TMP/accepted.json" -w '%{http_code}' -X POST "$GATEWAY_URL/webhooks/github" \
  -H "X-GitHub-Event: workflow_job" -H "X-GitHub-Delivery: $(cat /proc/sys/kernel/random/uuid)" \
  -H "X-Hub-Signature-256: $SIGNATURE" -H "Content-Type: application/json" \
  --data-binary "@$TMP/body.json" 2>"$TMP/curl.err" || true)"
[ "$code" = 202 ] || fail "c: webhook" "POST /webhooks/github answered $code, want 202 ($(cat "$TMP/curl.err"))" "$TMP/accepted.json"
RUN_ID="$(json_get "$TMP/accepted.json" run_id)" || fail "c: webhook" "no run_id in the answer" "$TMP/accepted.json"
deadline=$((SECONDS + TIMEOUT))
status=""
until case "$status" in success | fail | blocked | skipped) true ;; *) false ;; esac; do
  [ "$SECONDS" -lt "$deadline" ] || fail "c: run" "run $RUN_ID not finished after ${TIMEOUT}s (status '$status'); see $LOG_DIR/orchestrator.log" "$TMP/run.json"
  sleep 1
  curl -fsS -m 5 -H "Authorization: Bearer ${SRE_API_TOKEN:-}" -o "$TMP/run.json" "$GATEWAY_URL/api/v1/runs/$RUN_ID" 2>/dev/null || continue
  status="$(json_get "$TMP/run.json" status || true)"
done
[ "$status" = success ] || fail "c: run" "run $RUN_ID ended '$status', want success" "$TMP/run.json"
PR_BRANCH="$(json_get "$TMP/run.json" pr.branch)" || fail "c: pr" "a successful run without pr.branch" "$TMP/run.json"
git -C "$SMOKE_REPO" worktree add -q --detach "$TMP/pr" "refs/heads/$PR_BRANCH" >/dev/null 2>&1 \
  || fail "c: pr" "branch '$PR_BRANCH' does not exist in $SMOKE_REPO"
make -s -C "$TMP/pr" test >"$TMP/make.log" 2>&1 || fail "c: pr" "make test fails on the PR branch $PR_BRANCH" "$TMP/make.log"
git -C "$SMOKE_REPO" worktree remove --force "$TMP/pr"
curl -fsS -m 5 -H "Authorization: Bearer ${SRE_API_TOKEN:-}" -o "$TMP/validation.json" "$GATEWAY_URL/api/v1/runs/$RUN_ID/artifacts/validation" \
  || fail "c: validation" "the run has no validation artifact"
VERDICT="$(json_get "$TMP/validation.json" verdict)" || fail "c: validation" "no verdict" "$TMP/validation.json"
[ "$VERDICT" = reproduced_and_fixed ] || fail "c: validation" "verdict '$VERDICT', want reproduced_and_fixed" "$TMP/validation.json"
pass "c: run" "202 -> run $RUN_ID success (validation $VERDICT) -> PR branch $PR_BRANCH, make test passes there"

# ---- (d) promtool and the contract after traffic ---------------------------------------------------------
scrape_all after
if command -v promtool >/dev/null; then
  lint_warnings=0
  for name in "${METRICS_PROCESSES[@]}"; do
    rc=0
    promtool check metrics <"$TMP/$name.after" >"$TMP/promtool.out" 2>&1 || rc=$?
    case "$rc" in
      0) ;;
      3)
        lint_warnings=$((lint_warnings + 1))
        printf '[smoke.sh] WARNING (d: promtool %s): lint problems:\n' "$name" >&2
        sed 's/^/    /' "$TMP/promtool.out" >&2
        [ "${SMOKE_STRICT_LINT:-0}" = 1 ] && fail "d: promtool $name" "lint problems (SMOKE_STRICT_LINT=1)" ;;
      *) fail "d: promtool $name" "promtool check metrics rejects $name's /metrics (exit $rc)" "$TMP/promtool.out" ;;
    esac
  done
  promtool_note="promtool: ${#METRICS_PROCESSES[@]} endpoints parse ($lint_warnings with lint warnings)"
else
  promtool_note="promtool not installed (scripts/install-tools.sh prometheus): not run"
fi
mapfile -t args < <(contract_args after)
"$CONTRACT" metrics "${args[@]}" >"$TMP/contract.out" 2>&1 \
  || fail "d: contract" "a process's metrics after traffic disagree with the contract" "$TMP/contract.out"
pass "d: metrics" "$promtool_note; $(cat "$TMP/contract.out")"

# ---- (e) one webhook, one trace across every process ------------------------------------------------------
# Only when up.sh runs the local OTLP sink (no OTEL_EXPORTER_OTLP_ENDPOINT): the batch exporters flush
# within ~5 s.
if pid_of otlp-sink sre-otlp-sink >/dev/null && [ -f "$TRACES_FILE" ]; then
  deadline=$((SECONDS + 20))
  until "$CONTRACT" trace "$TRACES_FILE" "$RUN_ID" >"$TMP/trace.out" 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || fail "e: trace" "the run's trace disagrees with the contract" "$TMP/trace.out"
    sleep 1
  done
  pass "e: trace" "one trace across the seven processes, every span from its owner"
  sed 's/^/    /' "$TMP/trace.out"
else
  log "skip (e: trace): no local OTLP sink (traces go to OTEL_EXPORTER_OTLP_ENDPOINT)"
fi

printf '\nsmoke OK: %d checks passed (run %s, repo %s, PR branch %s)\n' "$PASSED" "$RUN_ID" "$SMOKE_REPO" "$PR_BRANCH"
