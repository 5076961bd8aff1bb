#!/usr/bin/env bash
# Failure-context benchmark on LogChunks: builds cilog-bench (release), extracts a context from every labelled
# log, and prints the scorer's table (recall and mean context size, per language and overall).
#
#   scripts/bench-logchunks.sh [DIR] [--min-recall X] [--misses]
#
#   DIR            a LogChunks-format folder (labels.jsonl + logs/); default ../shared/benchmarks/logchunks
#                  beside the repository. When it is absent: "skipped: no benchmark folder at ...", exit 0.
#   --min-recall X exit 1 when the overall recall is below X (CI's floor; see docs/diagnosis.md)
#   --misses       also list the logs whose chunk was not found
# The predictions are left in $DATA/bench/logchunks-predictions.jsonl.
set -euo pipefail
# shellcheck source=scripts/lib/env.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/env.sh"
cd "$REPO"

DIR=""
MIN_RECALL=""
MISSES=()
while [ "$#" -gt 0 ]; do
  case "$1" in
    --min-recall) [ "$#" -ge 2 ] || die "--min-recall needs a value"; MIN_RECALL="$2"; shift 2 ;;
    --misses) MISSES=(--misses); shift ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    -*) die "unknown option $1" ;;
    *) [ -z "$DIR" ] || die "one DIR only"; DIR="$1"; shift ;;
  esac
done
DIR="${DIR:-$REPO/../shared/benchmarks/logchunks}"
if [ ! -f "$DIR/labels.jsonl" ]; then
  echo "skipped: no benchmark folder at $DIR (it needs labels.jsonl and logs/)"
  exit 0
fi
if [ -n "$MIN_RECALL" ] && ! python3 -c "import sys; x=float(sys.argv[1]); assert 0 <= x <= 1" "$MIN_RECALL" 2>/dev/null; then
  die "--min-recall wants a number between 0 and 1, not '$MIN_RECALL'"
fi

log "building cilog-bench (release)"
cargo build --release --locked -q -p sre-cilog --bin cilog-bench
BIN="${CARGO_TARGET_DIR:-$REPO/target}/release/cilog-bench"
OUT_DIR="$DATA/bench"
mkdir -p "$OUT_DIR"
PRED="$OUT_DIR/logchunks-predictions.jsonl"
"$BIN" "$DIR" "$PRED"
SCORE="$REPO/benchmarks/logchunks/score.py"
python3 "$SCORE" "$PRED" --labels "$DIR/labels.jsonl" "${MISSES[@]}"
if [ -n "$MIN_RECALL" ]; then
  recall="$(python3 "$SCORE" "$PRED" --labels "$DIR/labels.jsonl" --json \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["overall"]["recall"])')"
  if python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) >= float(sys.argv[2]) else 1)" "$recall" "$MIN_RECALL"; then
    log "recall $recall >= floor $MIN_RECALL"
  else
    echo "FAIL: overall recall $recall is below the floor $MIN_RECALL" >&2
    exit 1
  fi
fi
