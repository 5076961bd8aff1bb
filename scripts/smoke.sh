#!/usr/bin/env bash
# End-to-end smoke test against the running mesh (scripts/up.sh first):
#   (a) a throwaway git repo whose `make test` (its CI workflow's Lint step) fails on trailing whitespace / a
#       missing final newline
#   (b) counters before   (c) a signed workflow_run webhook -> 202 accepted   (d) the same delivery -> 200 duplicate
#   (e) a bad signature -> 401   (f) the run finishes with success, a create_pr stage and a PR branch that exists
#       in the repo and passes `make test`, validation verdict reproduced_and_fixed   (g) every counter of (b)
#       went up   (h) gRPC health and reflection   (i) promtool check metrics on every /metrics   (j) with up.sh's
#       local OTLP sink: the webhook's trace holds spans of the gateway, the orchestrator and all five services
#       (k) a repository with a leaked key and a CI workflow to fix: the run is blocked at run_scans, labelled
#       needs-review, opens no PR, leaks no key
# Any failed check prints "FAIL (<check>): <why>" and exits 1.
#
#   SMOKE_TIMEOUT   seconds to wait for the run to finish (default 120)
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
TERMINAL_STATUSES="success fail blocked skipped"

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

# py CODE ARGS...: python3 (stdlib only), with scripts/lib importable (promtext)
py() { PYTHONPATH="$REPO/scripts/lib${PYTHONPATH:+:$PYTHONPATH}" python3 -c "$@"; }

# json_get FILE PATH: value at a dotted path (strings raw, others as JSON); exit 1 if absent or not JSON
json_get() {
  py '
import json, sys
try:
    v = json.load(open(sys.argv[1]))
except Exception:
    sys.exit(1)
for k in sys.argv[2].split("."):
    if isinstance(v, dict) and k in v:
        v = v[k]
    else:
        sys.exit(1)
print(v if isinstance(v, str) else json.dumps(v))
' "$1" "$2"
}

# sign FILE SECRET: prints sha256=<hex HMAC-SHA256 of the file bytes>
sign() {
  py '
import hashlib, hmac, sys
print("sha256=" + hmac.new(sys.argv[2].encode(), open(sys.argv[1], "rb").read(), hashlib.sha256).hexdigest())
' "$1" "$2"
}

# metric_sum PORT NAME: the sum of every sample of NAME on http://127.0.0.1:PORT/metrics (0 when absent)
metric_sum() {
  local port="$1" name="$2" out="$TMP/metrics-$1.txt"
  if ! curl -fsS -m 5 -o "$out" "http://$HOST:$port/metrics" 2>"$TMP/curl.err"; then
    fail "metrics" "GET http://$HOST:$port/metrics failed: $(cat "$TMP/curl.err")"
  fi
  py '
import sys
from promtext import labels_end
name, total = sys.argv[2], 0.0
for line in open(sys.argv[1], encoding="utf-8"):
    line = line.strip()
    if not line or line.startswith("#"):
        continue
    i = 0
    while i < len(line) and (line[i].isalnum() or line[i] in "_:"):
        i += 1
    if line[:i] != name:
        continue
    if line[i:i + 1] == "{":
        i = labels_end(line, i)
    total += float(line[i:].split()[0])
print(repr(total))
' "$out" "$name"
}

# openmetrics_to_text FILE: OpenMetrics -> Prometheus text format 0.0.4, which is all promtool 2.42 reads:
# exemplars, "# UNIT" and "# EOF" dropped; a counter family "x" (samples x_total) becomes "x_total"; info
# families become gauges "x_info"; _created samples dropped. Anything else is passed through for promtool to judge.
openmetrics_to_text() {
  py '
import re, sys
from promtext import labels_end
types = {}
lines = open(sys.argv[1], encoding="utf-8").read().splitlines()
for line in lines:
    m = re.match(r"# TYPE (\S+) (\S+)$", line)
    if m:
        types[m.group(1)] = m.group(2)
rename = {}
for fam, typ in types.items():
    if typ == "counter" and not fam.endswith("_total"):
        rename[fam] = fam + "_total"
    elif typ == "info":
        rename[fam] = fam + "_info"
created = {f + "_created" for f, t in types.items() if t in ("counter", "histogram", "summary")}
for line in lines:
    if line in ("# EOF", "") or line.startswith("# UNIT "):
        continue
    m = re.match(r"# (HELP|TYPE) (\S+)(.*)$", line)
    if m:
        kind, fam, rest = m.groups()
        if kind == "TYPE":
            rest = {"info": " gauge", "unknown": " untyped", "stateset": " gauge", "gaugehistogram": " untyped"}.get(rest.strip(), rest)
        print("# %s %s%s" % (kind, rename.get(fam, fam), rest))
        continue
    if line.startswith("#"):
        continue
    name = re.match(r"[A-Za-z_:][A-Za-z0-9_:]*", line).group(0)
    if name in created:
        continue
    j = len(name)
    if line[j:j + 1] == "{":
        j = labels_end(line, j)
    print(line[:j] + line[j:].split(" # ", 1)[0])   # drop the exemplar
' "$1"
}

gt() { py 'import sys; sys.exit(0 if float(sys.argv[1]) > float(sys.argv[2]) else 1)' "$1" "$2"; }

# post_webhook BODY_FILE DELIVERY SIGNATURE OUT_FILE: prints the HTTP status (000: no answer)
post_webhook() {
  curl -sS -m 15 -o "$4" -w '%{http_code}' -X POST "$GATEWAY_URL/webhooks/github" \
    -H "X-GitHub-Event: workflow_run" \
    -H "X-GitHub-Delivery: $2" \
    -H "X-Hub-Signature-256: $3" \
    -H "Content-Type: application/json" \
    -H "User-Agent: GitHub-Hookshot/sre-smoke" \
    --data-binary "@$1" 2>"$TMP/curl.err" || true
}

uuid() { py 'import uuid; print(uuid.uuid4())'; }

# write_body FILE FULL_NAME NAME SHA: a workflow_run "completed/failure" payload as GitHub sends it
write_body() {
  py '
import json, random, sys
full_name, name, sha = sys.argv[2], sys.argv[3], sys.argv[4]
body = {
    "action": "completed",
    "workflow_run": {
        "id": random.randint(10**9, 10**10),
        "name": "lint",
        "head_branch": "main",
        "head_sha": sha,
        "conclusion": "failure",
        "run_attempt": 1,
        "html_url": "https://github.com/%s/actions/runs/1" % full_name,
    },
    "repository": {
        "full_name": full_name,
        "name": name,
        "owner": {"login": full_name.split("/")[0]},
        "default_branch": "main",
    },
}
open(sys.argv[1], "w").write(json.dumps(body, separators=(",", ":")))
' "$@"
}

# wait_for_run RUN_ID OUT: polls GET /api/v1/runs/RUN_ID into OUT until a terminal status; prints the status
wait_for_run() {
  local url="$GATEWAY_URL/api/v1/runs/$1" out="$2" code="" status="" deadline=$((SECONDS + TIMEOUT))
  while :; do
    code="$(curl -sS -m 5 -o "$out" -w '%{http_code}' "$url" 2>"$TMP/curl.err" || true)"
    if [ "$code" = 200 ]; then
      status="$(json_get "$out" status || true)"
      case " $TERMINAL_STATUSES " in *" $status "*) printf '%s\n' "$status"; return 0 ;; esac
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "GET $url: no terminal status within ${TIMEOUT}s (last HTTP $code, status '$status'); see $LOG_DIR/orchestrator.log" >&2
      return 1
    fi
    sleep 1
  done
}

# new_repo DIR NAME: a throwaway repository whose `make test` (the lint job) fails on trailing whitespace
# and a missing final newline in app.py; files are written, not committed
new_repo() {
  local dir="$1" name="$2"
  mkdir -p "$dir"
  git -C "$dir" init -q -b main
  git -C "$dir" config user.name "sre-agent smoke"
  git -C "$dir" config user.email "smoke@sre-agent.invalid"
  git -C "$dir" config commit.gpgsign false
  # trailing spaces and a tab on several lines, and no final newline
  printf 'def add(a, b):   \n    return a + b  \n\n\ndef sub(a, b):\t\n    return a - b' >"$dir/app.py"
  printf '# %s\n\nThrowaway repository made by sre-agent scripts/smoke.sh.\n' "$name" >"$dir/README.md"
  cat >"$dir/Makefile" <<'MAKEFILE'
# `make test` is the lint job: it fails when a tracked Python file has trailing whitespace
# or does not end with a newline.
PY_FILES := $(shell git ls-files '*.py' 2>/dev/null || find . -name '*.py' -not -path './.git/*')

.PHONY: test
test:
	@status=0; \
	for f in $(PY_FILES); do \
	  if grep -nE '[[:space:]]+$$' "$$f"; then echo "$$f: trailing whitespace"; status=1; fi; \
	  if [ -s "$$f" ] && [ -n "$$(tail -c1 "$$f")" ]; then echo "$$f: no newline at end of file"; status=1; fi; \
	done; \
	exit $$status
MAKEFILE
}

# ---- pre-flight ------------------------------------------------------------------------------------------
for tool in curl git python3 make; do
  command -v "$tool" >/dev/null || fail "pre-flight" "$tool is not installed"
done
command -v grpcurl >/dev/null || fail "pre-flight" "grpcurl is not installed (scripts/install-tools.sh grpcurl)"
[ "$(http_code "$GATEWAY_URL/health")" = 200 ] \
  || fail "pre-flight" "the gateway does not answer $GATEWAY_URL/health: start the mesh with scripts/up.sh"

# ---- (a) throwaway repository ------------------------------------------------------------------------------
OWNER=smoke
NAME="repo-$(py 'import secrets; print(secrets.token_hex(4))')"
FULL_NAME="$OWNER/$NAME"
SMOKE_REPO="$REPOS_DIR/$OWNER/$NAME"
new_repo "$SMOKE_REPO" "$NAME"
# Its CI workflow (the webhook's workflow_run is named "lint"): the validator re-runs this step without and
# with the patch, so the fix is proven.
mkdir -p "$SMOKE_REPO/.github/workflows"
printf 'name: lint\non: [push]\njobs:\n  lint:\n    runs-on: ubuntu-latest\n    steps:\n      - uses: actions/checkout@v4\n      - name: Lint\n        run: make test\n' \
  >"$SMOKE_REPO/.github/workflows/lint.yml"
git -C "$SMOKE_REPO" add -A
git -C "$SMOKE_REPO" commit -q -m "app: add and sub"
HEAD_SHA="$(git -C "$SMOKE_REPO" rev-parse HEAD)"
if make -s -C "$SMOKE_REPO" test >"$TMP/make-before.log" 2>&1; then
  fail "a: repo" "make test passes on the unfixed repo: the fixture is wrong" "$TMP/make-before.log"
fi
pass "a: repo" "$SMOKE_REPO at $HEAD_SHA; make test fails as it should"

# ---- (b) counters before -----------------------------------------------------------------------------------
COUNTER_KEYS=(gateway orchestrator "${GRPC_SERVICES[@]}")
declare -A COUNTER_PORT COUNTER_NAME BEFORE AFTER
COUNTER_PORT[gateway]="${HTTP_PORT[gateway]}"
COUNTER_NAME[gateway]=sre_agent_http_requests_total
COUNTER_PORT[orchestrator]="${HTTP_PORT[orchestrator]}"
COUNTER_NAME[orchestrator]=sre_agent_pipeline_runs_total
for name in "${GRPC_SERVICES[@]}"; do
  COUNTER_PORT[$name]="${HTTP_PORT[$name]}"
  COUNTER_NAME[$name]=sre_agent_grpc_server_requests_total
done
for key in "${COUNTER_KEYS[@]}"; do
  BEFORE[$key]="$(metric_sum "${COUNTER_PORT[$key]}" "${COUNTER_NAME[$key]}")"
done
pass "b: counters" "$(for key in "${COUNTER_KEYS[@]}"; do printf '%s=%s ' "$key" "${BEFORE[$key]}"; done)"

# ---- (c) signed workflow_run webhook -----------------------------------------------------------------------
BODY="$TMP/body.json"
write_body "$BODY" "$FULL_NAME" "$NAME" "$HEAD_SHA"
DELIVERY="$(uuid)"
SIGNATURE="$(sign "$BODY" "$SECRET")"
code="$(post_webhook "$BODY" "$DELIVERY" "$SIGNATURE" "$TMP/accepted.json")"
[ "$code" = 202 ] || fail "c: webhook accepted" "POST /webhooks/github answered $code, want 202 (curl: $(cat "$TMP/curl.err"))" "$TMP/accepted.json"
[ "$(json_get "$TMP/accepted.json" status || true)" = accepted ] \
  || fail "c: webhook accepted" 'want JSON {"status":"accepted",...}' "$TMP/accepted.json"
RUN_ID="$(json_get "$TMP/accepted.json" run_id || true)"
RUN_KEY="$(json_get "$TMP/accepted.json" run_key || true)"
case "$RUN_ID" in "" | null) fail "c: webhook accepted" "no run_id in the answer" "$TMP/accepted.json" ;; esac
case "$RUN_KEY" in "" | null) fail "c: webhook accepted" "no run_key in the answer" "$TMP/accepted.json" ;; esac
case "$RUN_ID" in *[!A-Za-z0-9._:-]*) fail "c: webhook accepted" "run_id '$RUN_ID' is not URL-safe" ;; esac
pass "c: webhook accepted" "202 run_id=$RUN_ID run_key=$RUN_KEY delivery=$DELIVERY"

# ---- (d) the same delivery again -------------------------------------------------------------------------
code="$(post_webhook "$BODY" "$DELIVERY" "$SIGNATURE" "$TMP/duplicate.json")"
[ "$code" = 200 ] || fail "d: duplicate" "the same delivery again answered $code, want 200" "$TMP/duplicate.json"
[ "$(json_get "$TMP/duplicate.json" status || true)" = duplicate ] \
  || fail "d: duplicate" 'want JSON {"status":"duplicate",...}' "$TMP/duplicate.json"
dup_run_id="$(json_get "$TMP/duplicate.json" run_id || true)"
[ "$dup_run_id" = "$RUN_ID" ] \
  || fail "d: duplicate" "duplicate names run_id '$dup_run_id', want the first delivery's '$RUN_ID'" "$TMP/duplicate.json"
pass "d: duplicate" "200 duplicate, same run_id"

# ---- (e) bad signature ---------------------------------------------------------------------------------------
code="$(post_webhook "$BODY" "$(uuid)" "$(sign "$BODY" "$SECRET-but-wrong")" "$TMP/badsig.json")"
[ "$code" = 401 ] || fail "e: bad signature" "a wrongly signed delivery answered $code, want 401" "$TMP/badsig.json"
pass "e: bad signature" "401"

# ---- (f) the run finishes with a PR ----------------------------------------------------------------------
status="$(wait_for_run "$RUN_ID" "$TMP/run.json" 2>"$TMP/wait.err")" \
  || fail "f: run finished" "$(cat "$TMP/wait.err")" "$TMP/run.json"
[ "$status" = success ] || fail "f: run succeeded" "run $RUN_ID ended with status '$status', want success" "$TMP/run.json"
if ! py '
import json, sys
run = json.load(open(sys.argv[1]))
stages = run.get("stages")
if not isinstance(stages, list) or not all(isinstance(s, dict) for s in stages):
    sys.exit("stages is not a list of objects")
if not any(s.get("stage") == "create_pr" and s.get("status") == "ok" for s in stages):
    sys.exit("stages has no {\"stage\":\"create_pr\",\"status\":\"ok\"}: " + json.dumps(stages))
' "$TMP/run.json" 2>"$TMP/check.err"; then
  fail "f: create_pr stage" "$(cat "$TMP/check.err")" "$TMP/run.json"
fi
if ! PR_BRANCH="$(py '
import json, sys
pr = json.load(open(sys.argv[1])).get("pr")
if not isinstance(pr, dict):
    sys.exit("no pr object")
n = pr.get("number")
if not isinstance(n, int) or isinstance(n, bool) or n < 1:
    sys.exit("pr.number is %r, want an integer >= 1" % (n,))
b = pr.get("branch")
if not isinstance(b, str) or not b:
    sys.exit("pr.branch is %r, want a branch name" % (b,))
print(b)
' "$TMP/run.json" 2>"$TMP/check.err")"; then
  fail "f: pr" "$(cat "$TMP/check.err")" "$TMP/run.json"
fi
PR_NUMBER="$(json_get "$TMP/run.json" pr.number)"
PR_REF="refs/heads/${PR_BRANCH#refs/heads/}"
git -C "$SMOKE_REPO" rev-parse --verify --quiet "$PR_REF^{commit}" >/dev/null \
  || fail "f: pr branch" "pr.branch '$PR_BRANCH' does not exist in $SMOKE_REPO (branches: $(git -C "$SMOKE_REPO" branch --format='%(refname:short)' | tr '\n' ' '))"
[ "$(git -C "$SMOKE_REPO" rev-list --count "main..$PR_REF")" -ge 1 ] \
  || fail "f: pr branch" "branch '$PR_BRANCH' has no commit that main lacks"
git -C "$SMOKE_REPO" worktree add -q --detach "$TMP/pr-worktree" "$PR_REF" >/dev/null 2>&1 \
  || fail "f: pr branch" "cannot check out '$PR_BRANCH' in a worktree"
if ! make -s -C "$TMP/pr-worktree" test >"$TMP/make-after.log" 2>&1; then
  git -C "$SMOKE_REPO" worktree remove --force "$TMP/pr-worktree" || true
  fail "f: fix is real" "make test still fails on the PR branch '$PR_BRANCH'" "$TMP/make-after.log"
fi
git -C "$SMOKE_REPO" worktree remove --force "$TMP/pr-worktree"
curl -fsS -m 5 -o "$TMP/validation.json" "$GATEWAY_URL/api/v1/runs/$RUN_ID/artifacts/validation" 2>"$TMP/curl.err" \
  || fail "f: validation" "GET the run's validation artifact failed: $(cat "$TMP/curl.err")"
verdict="$(json_get "$TMP/validation.json" verdict || true)"
[ "$verdict" = reproduced_and_fixed ] \
  || fail "f: validation" "verdict '$verdict', want reproduced_and_fixed (the Lint step fails without the patch, passes with it)" "$TMP/validation.json"
pass "f: run finished" "status=success, create_pr ok, PR #$PR_NUMBER on branch $PR_BRANCH; make test passes there; validation: $verdict in $(json_get "$TMP/validation.json" sandbox)"

# ---- (g) counters went up ----------------------------------------------------------------------------------
# the run's outcome may be counted a moment after it is stored: allow a few seconds
deadline=$((SECONDS + 15))
while :; do
  not_up=()
  for key in "${COUNTER_KEYS[@]}"; do
    AFTER[$key]="$(metric_sum "${COUNTER_PORT[$key]}" "${COUNTER_NAME[$key]}")"
    gt "${AFTER[$key]}" "${BEFORE[$key]}" || not_up+=("$key ${COUNTER_NAME[$key]} ${BEFORE[$key]} -> ${AFTER[$key]}")
  done
  [ "${#not_up[@]}" -eq 0 ] && break
  [ "$SECONDS" -lt "$deadline" ] || fail "g: counters" "did not increase: $(printf '[%s] ' "${not_up[@]}")"
  sleep 1
done
pass "g: counters" "$(for key in "${COUNTER_KEYS[@]}"; do printf '%s %s->%s ' "$key" "${BEFORE[$key]}" "${AFTER[$key]}"; done)"

# ---- (h) gRPC health and reflection ------------------------------------------------------------------------
for name in "${GRPC_SERVICES[@]}"; do
  addr="$HOST:${GRPC_PORT[$name]}"
  grpcurl -plaintext -max-time 5 "$addr" grpc.health.v1.Health/Check >"$TMP/health.out" 2>&1 || true
  grep -q '"SERVING"' "$TMP/health.out" \
    || fail "h: grpc health $name" "grpc.health.v1.Health/Check on $addr is not SERVING" "$TMP/health.out"
  grpcurl -plaintext -max-time 5 "$addr" list >"$TMP/list.out" 2>&1 \
    || fail "h: grpc reflection $name" "grpcurl list on $addr failed" "$TMP/list.out"
  for want in "${GRPC_SERVICE[$name]}" grpc.health.v1.Health; do
    grep -qx "$want" "$TMP/list.out" \
      || fail "h: grpc reflection $name" "grpcurl list on $addr does not show $want" "$TMP/list.out"
  done
  grep -q '^grpc\.reflection\.' "$TMP/list.out" \
    || fail "h: grpc reflection $name" "grpcurl list on $addr does not show grpc.reflection.*" "$TMP/list.out"
  grpcurl -plaintext -max-time 5 "$addr" describe "${GRPC_SERVICE[$name]}" >"$TMP/describe.out" 2>&1 \
    && grep -q "rpc " "$TMP/describe.out" \
    || fail "h: grpc describe $name" "grpcurl describe ${GRPC_SERVICE[$name]} on $addr shows no methods" "$TMP/describe.out"
done
# A method call through reflection alone (no .proto at hand): the policy scores a one-line whitespace fix.
call_diff='diff --git a/a.py b/a.py\n--- a/a.py\n+++ b/a.py\n@@ -1 +1 @@\n-x = 1 \n+x = 1\n'
grpcurl -plaintext -max-time 5 -d "{\"diff\":\"$call_diff\"}" "$HOST:${GRPC_PORT[policy]}" sre.v1.Policy/CheckPatch \
  >"$TMP/call.out" 2>&1 || fail "h: grpc call" "grpcurl sre.v1.Policy/CheckPatch failed" "$TMP/call.out"
grep -q '"allowed": true' "$TMP/call.out" && grep -q '"label": "safe"' "$TMP/call.out" \
  || fail "h: grpc call" "sre.v1.Policy/CheckPatch did not allow a one-line whitespace fix" "$TMP/call.out"
pass "h: grpc" "SERVING, list/describe ${GRPC_SERVICE[*]}, health and reflection on ports ${GRPC_PORT[planner]}-${GRPC_PORT[pr]}; CheckPatch call ok"

# ---- (i) promtool check metrics --------------------------------------------------------------------------
if command -v promtool >/dev/null; then
  lint_warnings=0
  for name in gateway orchestrator "${GRPC_SERVICES[@]}"; do
    url="http://$HOST:${HTTP_PORT[$name]}/metrics"
    # Ask for the classic text format: promtool 2.42 cannot parse OpenMetrics exemplars.
    ctype="$(curl -fsS -m 5 -o "$TMP/m.txt" -w '%{content_type}' -H 'Accept: text/plain;version=0.0.4' "$url" 2>"$TMP/curl.err")" \
      || fail "i: promtool $name" "GET $url failed: $(cat "$TMP/curl.err")"
    case "$ctype" in
      application/openmetrics-text*)
        openmetrics_to_text "$TMP/m.txt" >"$TMP/m.checked"
        log "note ($name): /metrics answered '$ctype' to Accept: text/plain; converted to the text format for promtool" ;;
      *) cp "$TMP/m.txt" "$TMP/m.checked" ;;
    esac
    rc=0
    promtool check metrics <"$TMP/m.checked" >"$TMP/promtool.out" 2>&1 || rc=$?
    case "$rc" in
      0) ;;
      3)
        lint_warnings=$((lint_warnings + 1))
        printf '[smoke.sh] WARNING (i: promtool %s): lint problems in %s:\n' "$name" "$url" >&2
        sed 's/^/    /' "$TMP/promtool.out" >&2
        [ "${SMOKE_STRICT_LINT:-0}" = 1 ] && fail "i: promtool $name" "lint problems (SMOKE_STRICT_LINT=1)" ;;
      *) fail "i: promtool $name" "promtool check metrics rejects $url (exit $rc)" "$TMP/promtool.out" ;;
    esac
  done
  pass "i: promtool" "7 /metrics endpoints parse ($lint_warnings with lint warnings)"
else
  log "skip (i: promtool): promtool not installed (scripts/install-tools.sh prometheus)"
fi

# ---- (j) one webhook, one trace across every process ------------------------------------------------------
# Only when up.sh runs the local OTLP sink (no OTEL_EXPORTER_OTLP_ENDPOINT): the batch exporters flush
# within ~5 s; wait for the gateway's, the orchestrator's and all five services' spans of this run.
if pid_of otlp-sink sre-otlp-sink >/dev/null && [ -f "$TRACES_FILE" ]; then
  trace_report() {
    py '
import json, sys
run_id, path = sys.argv[1], sys.argv[2]
spans = []
with open(path) as f:
    for line in f:
        try:
            spans.append(json.loads(line))
        except ValueError:
            pass
roots = [s for s in spans if s["name"] == "ingest_webhook" and s["attributes"].get("run_id") == run_id]
if not roots:
    print("no ingest_webhook span with run_id " + run_id); sys.exit(1)
tid = roots[0]["trace_id"]
by_service = {}
for s in spans:
    if s["trace_id"] == tid:
        by_service.setdefault(s["service"], []).append(s["name"])
want = ["gateway", "orchestrator", "planner", "policy", "scanner", "validator", "pr"]
missing = [w for w in want if w not in by_service]
print("trace_id " + tid)
for svc in want + sorted(set(by_service) - set(want)):
    if svc in by_service:
        print("  %-12s %s" % (svc, ", ".join(sorted(set(by_service[svc])))))
if missing:
    print("missing services: " + ", ".join(missing)); sys.exit(1)
' "$RUN_ID" "$TRACES_FILE"
  }
  deadline=$((SECONDS + 20))
  until trace_report >"$TMP/trace.out" 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || fail "j: trace" "the run's trace does not span all seven processes in $TRACES_FILE" "$TMP/trace.out"
    sleep 1
  done
  pass "j: trace" "one trace across gateway, orchestrator and the five services"
  sed 's/^/    /' "$TMP/trace.out"
else
  log "skip (j: trace): no local OTLP sink (traces go to OTEL_EXPORTER_OTLP_ENDPOINT)"
fi

# ---- (k) the unsafe path: a protected path needs review, a leaked key blocks the PR ----------------------
# The same lint failure, in a repository that also has a CI workflow with trailing whitespace (policy:
# path.protected, needs review) and a committed AWS key (gitleaks and trivy: blocking). The run must end
# "blocked" at run_scans, and no PR branch may appear.
LEAK_NAME="$NAME-leak"
LEAK_REPO="$REPOS_DIR/$OWNER/$LEAK_NAME"
new_repo "$LEAK_REPO" "$LEAK_NAME"
mkdir -p "$LEAK_REPO/.github/workflows"
printf 'name: lint   \non: [push]\njobs:\n  lint:\n    runs-on: ubuntu-latest\n    steps:\n      - run: make test  \n' \
  >"$LEAK_REPO/.github/workflows/lint.yml"
# Built here so that no key sits in this script: AKIA + 16 random base32 characters.
leak_key="AKIA$(py 'import secrets; print("".join(secrets.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") for _ in range(16)))')"
printf 'AWS_ACCESS_KEY_ID = "%s"\nAWS_SECRET_ACCESS_KEY = "%s"\n' "$leak_key" \
  "$(py 'import secrets; print(secrets.token_urlsafe(30))')" >"$LEAK_REPO/settings.py"
git -C "$LEAK_REPO" add -A
git -C "$LEAK_REPO" commit -q -m "app, CI workflow and settings"
LEAK_BODY="$TMP/leak-body.json"
write_body "$LEAK_BODY" "$OWNER/$LEAK_NAME" "$LEAK_NAME" "$(git -C "$LEAK_REPO" rev-parse HEAD)"
code="$(post_webhook "$LEAK_BODY" "$(uuid)" "$(sign "$LEAK_BODY" "$SECRET")" "$TMP/leak-accepted.json")"
[ "$code" = 202 ] || fail "k: unsafe run" "POST /webhooks/github answered $code, want 202" "$TMP/leak-accepted.json"
LEAK_RUN_ID="$(json_get "$TMP/leak-accepted.json" run_id || true)"
status="$(wait_for_run "$LEAK_RUN_ID" "$TMP/leak-run.json" 2>"$TMP/wait.err")" \
  || fail "k: unsafe run" "$(cat "$TMP/wait.err")" "$TMP/leak-run.json"
[ "$status" = blocked ] || fail "k: unsafe run" "run $LEAK_RUN_ID ended '$status', want blocked" "$TMP/leak-run.json"
if ! py '
import json, sys
run = json.load(open(sys.argv[1]))
last = run["stages"][-1]
if (last.get("stage"), last.get("status")) != ("run_scans", "blocked"):
    sys.exit("last stage is %r, want run_scans blocked" % (last,))
if run.get("label") != "needs-review":
    sys.exit("label is %r, want needs-review (the patch touches .github/workflows)" % (run.get("label"),))
if run.get("pr") is not None:
    sys.exit("a blocked run has a PR: %r" % (run["pr"],))
' "$TMP/leak-run.json" 2>"$TMP/check.err"; then
  fail "k: unsafe run" "$(cat "$TMP/check.err")" "$TMP/leak-run.json"
fi
if git -C "$LEAK_REPO" for-each-ref --format='%(refname)' refs/heads/sre-agent | grep -q .; then
  fail "k: unsafe run" "a PR branch was created in $LEAK_REPO for a blocked run"
fi
if grep -q "$leak_key" "$LOG_DIR"/*.log "$TRACES_FILE" 2>/dev/null; then
  fail "k: no secret in logs or spans" "the leaked key appears in $LOG_DIR or $TRACES_FILE"
fi
pass "k: unsafe run" "blocked at run_scans, label needs-review, no PR; the key is in no log or span"

cat <<EOF

smoke OK: $PASSED checks passed
  run_id   $RUN_ID
  run_key  $RUN_KEY
  repo     $SMOKE_REPO (PR #$PR_NUMBER, branch $PR_BRANCH)
EOF
