#!/usr/bin/env bash
# Records wgpt's speed on the machine's GPU in one go, from a prebuilt release binary:
# `wgpt info`, then `wgpt bench` on gpt-oss-20b (synthetic weights: pp512 and tg128 at depth 0,
# tg at depth 4096, with --profile and --kernels), gpt-oss-120b with as many layers as fit, and
# SmolLM2-135M Q4_1 when its file is present — each with the adapter's optional shader features
# and with the portable paths only (WGPT_FEATURES=none). Prints the BENCHMARKS.md rows at the
# end; every JSON report is kept in the output folder.
#
#   scripts/gpu-report.sh [WGPT_BINARY] [OUT_DIR]
#
# Needs no network, Python or model download (SmolLM2 is used only if WGPT_SMOLLM2 or the model
# cache holds it). Each run has a time limit, so the whole report stays under ~8 minutes.
set -uo pipefail

bin="${1:-target/release/wgpt}"
out="${2:-gpu-report}"
mkdir -p "$out"
[ -x "$bin" ] || { echo "no wgpt binary at $bin (build with: cargo build --release)" >&2; exit 1; }
smollm2="${WGPT_SMOLLM2:-${WGPT_MODELS:-${XDG_CACHE_HOME:-$HOME/.cache}/wgpt/models}/SmolLM2-135M-Instruct.Q4_1.gguf}"
started=$(date +%s)

"$bin" info | tee "$out/info.txt"

# bench NAME FEATURES TIMEOUT ARGS...: one JSON report in $out/NAME.FEATURES.json (empty on failure).
bench() {
  local name=$1 features=$2 limit=$3
  shift 3
  local file="$out/$name.$features.json"
  local env_features=()
  [ "$features" = none ] && env_features=(WGPT_FEATURES=none)
  echo "== $name ($features): wgpt bench $* --json" >&2
  if ! env "${env_features[@]}" timeout "$limit" "$bin" bench "$@" --json > "$file" 2> "$out/$name.$features.log"; then
    echo "   failed or timed out; see $out/$name.$features.log" >&2
    : > "$file"
    return 1
  fi
  echo "   pp $(field "$file" prefill_tok_s) tok/s, tg $(field "$file" decode_tok_s) tok/s, roofline $(field "$file" roofline_fraction)" >&2
}

# field FILE KEY: a number or string value of a top-level key of a JSON report.
field() {
  tr -d '\n' < "$1" | grep -o "\"$2\": *\(\"[^\"]*\"\|[^,}]*\)" | head -n1 | sed 's/^[^:]*: *//; s/^"//; s/"$//'
}

for features in all none; do
  bench gpt-oss-20b.pp512-tg128 "$features" 150 --synthetic gpt-oss-20b -p 512 -n 128 --profile --kernels
  bench gpt-oss-20b.tg64-d4096 "$features" 90 --synthetic gpt-oss-20b -p 0 -n 64 --ctx 4096 --profile
  # gpt-oss-120b: all 36 layers where memory allows, else fewer.
  for layers in 36 24 12 4; do
    bench "gpt-oss-120b.L$layers" "$features" 120 --synthetic gpt-oss-120b --layers "$layers" -p 512 -n 64 && break
  done
  if [ -f "$smollm2" ]; then
    bench smollm2-135m-q4_1 "$features" 60 "$smollm2" -p 512 -n 128 --profile
  fi
done

echo
echo "| model | features | device | pp tok/s | tg tok/s | depth | roofline | dispatches/tok | host µs/tok |"
echo "|---|---|---|---:|---:|---:|---:|---:|---:|"
for f in "$out"/*.json; do
  [ -s "$f" ] || continue
  base=$(basename "$f" .json)
  printf '| %s | %s | %s | %.0f | %.1f | %s | %.3f | %.0f | %.0f |\n' \
    "${base%.*}" "${base##*.}" "$(field "$f" device)" "$(field "$f" prefill_tok_s)" "$(field "$f" decode_tok_s)" \
    "$(field "$f" depth)" "$(field "$f" roofline_fraction)" "$(field "$f" dispatches_per_token)" "$(field "$f" host_us_per_token)"
done
echo
echo "reports in $out/ ($(( $(date +%s) - started )) s)"
