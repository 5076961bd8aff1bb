#!/usr/bin/env bash
# Checks the observability stack without Docker, Grafana or Tempo binaries.
#
#   scripts/check-observability.sh          static checks (CI)
#   scripts/check-observability.sh --live   static checks, then every dashboard query against the real
#                                           Prometheus at ${PROM_URL:-http://127.0.0.1:9090}; run it right
#                                           after smoke traffic (scripts/up.sh; scripts/smoke.sh)
#
# Static checks:
#   - promtool check config: observability/prometheus/prometheus.yml and prometheus.native.yml
#     (this also parses the rule file and the file_sd target files)
#   - promtool check rules + promtool test rules (observability/prometheus/tests/*.yml)
#   - alert rules: severity, annotations, runbook anchors in docs/observability.md, a firing and a
#     quiet test per alert, metric names from docs/observability.md (scripts/lib/check_alerts.py)
#   - docker-compose.yml against the Compose JSON schema plus project rules (scripts/lib/check_compose.py)
#   - otel-collector and Tempo configs, structurally                    (scripts/lib/check_trace_configs.py)
#   - dashboards and Grafana provisioning                               (scripts/lib/check_dashboards.py)
# Every check runs; the script exits 1 if any failed.
#
# Needs: promtool (PATH, or .tools/prometheus/usr/bin, else `scripts/install-tools.sh prometheus`),
# python3 with venv; jsonschema and PyYAML are installed once into .tools/pyvenv.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LIB="$REPO/scripts/lib"
PROM_DIR="$REPO/observability/prometheus"
PROM_URL="${PROM_URL:-http://127.0.0.1:9090}"
COMPOSE_SCHEMA="${COMPOSE_SCHEMA:-$REPO/observability/schemas/compose-spec.json}"
VENV="$REPO/.tools/pyvenv"
export PYTHONDONTWRITEBYTECODE=1

LIVE=0
for arg in "$@"; do
  case "$arg" in
    --live) LIVE=1 ;;
    -h|--help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "check-observability: unknown argument '$arg' (try --help)" >&2; exit 2 ;;
  esac
done

FAILED=()
step() { printf '\n==> %s\n' "$1"; }
run_check() {
  # run_check "description" cmd args...: runs the command, records a failure, never aborts the script
  local what="$1"; shift
  if "$@"; then
    echo "  PASS $what"
  else
    echo "  FAIL $what"
    FAILED+=("$what")
  fi
}

find_promtool() {
  if command -v promtool >/dev/null 2>&1; then command -v promtool; return 0; fi
  if [[ -x "$REPO/.tools/prometheus/usr/bin/promtool" ]]; then echo "$REPO/.tools/prometheus/usr/bin/promtool"; return 0; fi
  return 1
}

step "promtool"
if ! PROMTOOL="$(find_promtool)"; then
  echo "  promtool not found on PATH nor in .tools/prometheus/usr/bin; running scripts/install-tools.sh prometheus"
  if [[ -x "$REPO/scripts/install-tools.sh" ]] && "$REPO/scripts/install-tools.sh" prometheus >&2 && PROMTOOL="$(find_promtool)"; then
    :
  else
    echo "  FAIL promtool is unavailable: install Debian's prometheus package or run scripts/install-tools.sh prometheus" >&2
    exit 1
  fi
fi
echo "  using $PROMTOOL ($("$PROMTOOL" --version 2>&1 | head -n1))"

step "python venv for jsonschema + PyYAML (.tools/pyvenv)"
if [[ ! -x "$VENV/bin/python" ]]; then
  echo "  creating $VENV"
  python3 -m venv "$VENV"
fi
PY="$VENV/bin/python"
if ! "$PY" -c 'import jsonschema, yaml' >/dev/null 2>&1; then
  echo "  installing jsonschema and PyYAML into $VENV"
  "$PY" -m pip install --quiet --disable-pip-version-check 'jsonschema>=4.17,<5' 'PyYAML>=6,<7'
fi
echo "  using $("$PY" -c 'import sys; from importlib.metadata import version as v; print("python", sys.version.split()[0] + ", jsonschema", v("jsonschema") + ", PyYAML", v("PyYAML"))')"

step "Prometheus configuration"
run_check "promtool check config prometheus.yml (compose)" "$PROMTOOL" check config "$PROM_DIR/prometheus.yml"
run_check "promtool check config prometheus.native.yml" "$PROMTOOL" check config "$PROM_DIR/prometheus.native.yml"

step "Alert and recording rules"
run_check "promtool check rules alerts.yml" "$PROMTOOL" check rules "$PROM_DIR/alerts.yml"
shopt -s nullglob
RULE_TESTS=("$PROM_DIR"/tests/*.yml)
shopt -u nullglob
if (( ${#RULE_TESTS[@]} == 0 )); then
  echo "  FAIL no rule unit tests in observability/prometheus/tests/"
  FAILED+=("rule unit tests present")
else
  run_check "promtool test rules (${#RULE_TESTS[@]} file(s))" "$PROMTOOL" test rules "${RULE_TESTS[@]}"
fi
run_check "alert conventions (labels, annotations, runbooks, tests per alert)" "$PY" "$LIB/check_alerts.py" --repo "$REPO"

step "docker-compose.yml"
if [[ -f "$COMPOSE_SCHEMA" ]]; then
  run_check "compose schema + project rules" "$PY" "$LIB/check_compose.py" --repo "$REPO" --schema "$COMPOSE_SCHEMA"
else
  echo "  FAIL Compose JSON schema not found at $COMPOSE_SCHEMA (observability/schemas/ in the repository; set COMPOSE_SCHEMA)"
  FAILED+=("compose schema present")
fi

step "OpenTelemetry Collector and Tempo configs"
run_check "collector + Tempo structure" "$PY" "$LIB/check_trace_configs.py" --repo "$REPO"

step "Grafana dashboards and provisioning"
run_check "dashboards + provisioning (static)" "$PY" "$LIB/check_dashboards.py" static --repo "$REPO" --promtool "$PROMTOOL"

if (( LIVE )); then
  step "Dashboard queries against $PROM_URL"
  run_check "every panel query accepted and non-empty (or allowed empty)" \
    "$PY" "$LIB/check_dashboards.py" live --repo "$REPO" --prom-url "$PROM_URL"
fi

echo
if (( ${#FAILED[@]} )); then
  echo "check-observability: ${#FAILED[@]} check(s) failed:"
  printf '  - %s\n' "${FAILED[@]}"
  exit 1
fi
echo "check-observability: all checks passed$( (( LIVE )) && echo ' (including live queries)' || true )"
