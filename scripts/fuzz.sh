#!/usr/bin/env bash
# Fuzzes the parsers of untrusted input (cargo-fuzz, libFuzzer, nightly Rust), one target at a time, for a
# bounded time each, and prints per target: executions, coverage, crashes, verdict. See docs/fuzzing.md.
#
#   scripts/fuzz.sh [--seconds N] [--sanitizer none|address] [TARGET ...]
#
#   --seconds N    time per target (default 60)
#   --sanitizer S  none (default: safe Rust, twice the executions) or address (for the unsafe code below:
#                  the YAML parser is a translation of libyaml)
#   TARGET         targets to run (default all: the [[bin]]s of fuzz/Cargo.toml)
# Installs cargo-fuzz into .tools/cargo when it is missing. Exit 1 when any target crashed, hung or ran out
# of memory; the input that did is in fuzz/artifacts/TARGET/, the full output in $DATA/fuzz/TARGET.log.
# New corpus entries accumulate in fuzz/corpus/TARGET (gitignored); fuzz/seeds/TARGET is the committed seed.
set -euo pipefail
# shellcheck source=scripts/lib/env.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/env.sh"
cd "$REPO"

CARGO_FUZZ_VERSION=0.13.2
SECONDS_EACH=60
SANITIZER=none
TARGETS=()
while [ "$#" -gt 0 ]; do
  case "$1" in
    --seconds) [ "$#" -ge 2 ] || die "--seconds needs a value"; SECONDS_EACH="$2"; shift 2 ;;
    --sanitizer) [ "$#" -ge 2 ] || die "--sanitizer needs a value"; SANITIZER="$2"; shift 2 ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    -*) die "unknown option $1" ;;
    *) TARGETS+=("$1"); shift ;;
  esac
done
case "$SECONDS_EACH" in ''|*[!0-9]*|0) die "--seconds wants a positive whole number, not '$SECONDS_EACH'" ;; esac
case "$SANITIZER" in none|address) ;; *) die "--sanitizer is none or address, not '$SANITIZER'" ;; esac

rustup toolchain list | grep -q '^nightly' || die "cargo-fuzz needs a nightly toolchain: rustup toolchain install nightly"
if ! cargo fuzz --version >/dev/null 2>&1; then
  log "installing cargo-fuzz $CARGO_FUZZ_VERSION into $CARGO_TOOLS_DIR (cargo install --locked)"
  mkdir -p "$DATA"
  cargo install --locked --quiet --root "$CARGO_TOOLS_DIR" "cargo-fuzz@$CARGO_FUZZ_VERSION" >"$DATA/cargo-fuzz-install.log" 2>&1 \
    || { cat "$DATA/cargo-fuzz-install.log" >&2; die "cargo install cargo-fuzz failed"; }
fi
mapfile -t ALL < <(cargo fuzz list)
[ "${#TARGETS[@]}" -gt 0 ] || TARGETS=("${ALL[@]}")
for t in "${TARGETS[@]}"; do
  printf '%s\n' "${ALL[@]}" | grep -qx "$t" || die "no fuzz target '$t' (targets: ${ALL[*]})"
done

mkdir -p "$DATA/fuzz"
BUILD=(-s "$SANITIZER" --debug-assertions --codegen-units 16)
log "building ${#TARGETS[@]} target(s) (nightly, sanitizer $SANITIZER, debug assertions)"
cargo +nightly fuzz build "${BUILD[@]}" >"$DATA/fuzz-build.log" 2>&1 \
  || { tail -40 "$DATA/fuzz-build.log" >&2; die "cargo fuzz build failed (full output: $DATA/fuzz-build.log)"; }

mkdir -p "$DATA/fuzz"
failed=0
rows=()
for t in "${TARGETS[@]}"; do
  # Logs and whole webhook bodies are longer than libFuzzer's 4 KB default.
  case "$t" in cilog_*) max_len=65536 ;; *) max_len=8192 ;; esac
  mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t"
  before="$(find "fuzz/artifacts/$t" -type f | wc -l)"
  out="$DATA/fuzz/$t.log"
  log "fuzzing $t for ${SECONDS_EACH}s (output: $out)"
  rc=0
  cargo +nightly fuzz run "${BUILD[@]}" "$t" "fuzz/corpus/$t" "fuzz/seeds/$t" -- \
    -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 -max_len="$max_len" \
    -print_final_stats=1 >"$out" 2>&1 || rc=$?
  runs="$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$out" | grep -o '[0-9]*$' | tail -1)"
  speed="$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$out" | grep -o '[0-9]*$' | tail -1)"
  cov="$(grep -o 'cov: [0-9]*' "$out" | tail -1 | grep -o '[0-9]*')"
  ft="$(grep -o 'ft: [0-9]*' "$out" | tail -1 | grep -o '[0-9]*')"
  corpus="$(find "fuzz/corpus/$t" -type f | wc -l)"
  new="$(( $(find "fuzz/artifacts/$t" -type f | wc -l) - before ))"
  if [ "$rc" -eq 0 ] && [ "$new" -eq 0 ]; then
    verdict=ok
  else
    verdict="FAIL (exit $rc)"
    failed=1
    grep -m1 -E '^(==[0-9]+== ?ERROR|thread .* panicked|ALARM|.*out-of-memory)' "$out" >&2 || tail -5 "$out" >&2
    find "fuzz/artifacts/$t" -type f -newer "$DATA/fuzz-build.log" -printf '  input: %p\n' >&2
  fi
  rows+=("$(printf '%-18s %12s %9s %7s %7s %7s %8s  %s' "$t" "${runs:-?}" "${speed:-?}" "${cov:-?}" "${ft:-?}" \
    "$corpus" "$new" "$verdict")")
done

printf '\n%-18s %12s %9s %7s %7s %7s %8s  %s\n' target runs execs/s cov ft corpus crashes verdict
printf '%s\n' "${rows[@]}"
if [ "$failed" -ne 0 ]; then
  echo "FAIL: a target crashed, hung or ran out of memory; reproduce with cargo +nightly fuzz run TARGET INPUT" >&2
  exit 1
fi
