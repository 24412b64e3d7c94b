#!/usr/bin/env bash
# The docs/QUALITY.md table: perplexity (EVAL.md protocol, ctx 256) of stories260K,
# stories260K-outliers and aidreams260K quantized by every rotation × BDQ × rounding × format,
# relative to each model's fp32 perplexity on the same text (ctx 128 for aidreams260K, its max
# positions), plus file sizes. Rows are without the end-to-end weight tuning (--tune-epochs 0)
# except the last two of each format, the default recipe (psot + BDQ + GPTQ + tuning) per
# channel and in groups of 32.
# Usage: bench/quality.sh [TEXT] [JOBS]
#   TEXT  text to score (default: ../shared/data/tinystories_val_dev.txt)
#   JOBS  quantize+score jobs run at once (default 2)
# Environment: ROTOR=build/rotor, SHARED=../shared.
set -euo pipefail
cd "$(dirname "$0")/.."
ROTOR=${ROTOR:-build/rotor}
SHARED=${SHARED:-../shared}
TEXT=${1:-$SHARED/data/tinystories_val_dev.txt}
JOBS=${2:-2}
export ROTOR SHARED TEXT
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export work

models=(stories260K stories260K-outliers aidreams260K)
formats=("W4A4KV4:--a-bits 4 --kv-bits 4" "W4A8KV8:--a-bits 8 --kv-bits 8" "W4A4KV16:--a-bits 4 --kv-bits 16")
rotations=(none hadamard psot psot-layer)

# ctx 256, or 128 for aidreams260K (its max positions).
ppl() {
  local ctx=256
  case $1 in *aidreams*) ctx=128 ;; esac
  "$ROTOR" ppl -m "$1" -f "$TEXT" --ctx "$ctx" --threads 1 --json | sed 's/.*"ppl":\([0-9.]*\).*/\1/'
}
export -f ppl

# One job: model, row key, quantize flags -> "$work/<model>.<key>" holding "ppl bytes".
job() {
  local model=$1 key=$2; shift 2
  local src="$SHARED/models/$model/$model.bin" out="$work/$model.$key.rotor"
  # shellcheck disable=SC2068
  "$ROTOR" quantize -m "$src" -o "$out" --threads 1 --kv-k-group 32 $@ >/dev/null 2>&1
  echo "$(ppl "$out") $(stat -c %s "$out")" > "$work/$model.$key"
  rm -f "$out"
}
export -f job

{
  for m in "${models[@]}"; do echo "$m fp32"; done
  for f in "${formats[@]}"; do
    for rot in "${rotations[@]}"; do
      for bdq in no-bdq bdq; do
        for w in rtn gptq; do
          for m in "${models[@]}"; do
            echo "$m ${f%%:*}.$rot.$bdq.$w ${f#*:} --rotation $rot --$bdq --weights $w --tune-epochs 0"
          done
        done
      done
    done
    # The headline configuration: weights in groups of 32 columns, then with tuning.
    for m in "${models[@]}"; do
      echo "$m ${f%%:*}.psot.bdq.gptq-g32 ${f#*:} --rotation psot --bdq --weights gptq --group 32 --tune-epochs 0"
      echo "$m ${f%%:*}.psot.bdq.gptq+tune ${f#*:} --rotation psot --bdq --weights gptq"
      echo "$m ${f%%:*}.psot.bdq.gptq-g32+tune ${f#*:} --rotation psot --bdq --weights gptq --group 32"
    done
  done
} > "$work/jobs"
xargs -P "$JOBS" -L 1 bash -c '
  if [ "$1" = fp32 ] || [ "$2" = fp32 ]; then
    echo "$(ppl "$SHARED/models/$0/$0.bin") $(stat -c %s "$SHARED/models/$0/$0.bin")" > "$work/$0.fp32"
  else job "$0" "$@"; fi' < "$work/jobs"

cell() { cat "$work/$1.$2"; }
printf '| format | rotation | BDQ | weights | stories260K ppl (× fp32) | stories260K-outliers ppl (× fp32) | aidreams260K × fp32 | file bytes (stories260K) |\n'
printf '|---|---|---|---|---|---|---|---|\n'
read -r fs _ < <(cell stories260K fp32); read -r fo _ < <(cell stories260K-outliers fp32)
read -r fa _ < <(cell aidreams260K fp32); read -r _ bytes < <(cell stories260K fp32)
printf '| fp32 | – | – | – | %.4f | %.4f | 1.000 (%.4f) | %s |\n' "$fs" "$fo" "$fa" "$bytes"
rows() {
  for f in "${formats[@]}"; do
    for rot in "${rotations[@]}"; do
      for bdq in no-bdq bdq; do
        for w in rtn gptq; do echo "${f%%:*} $rot $bdq $w"; done
      done
    done
    echo "${f%%:*} psot bdq gptq-g32"
    echo "${f%%:*} psot bdq gptq+tune"
    echo "${f%%:*} psot bdq gptq-g32+tune"
  done
}
rows | while read -r f rot bdq w; do
  key="$f.$rot.$bdq.$w"
  read -r ps size < <(cell stories260K "$key"); read -r po _ < <(cell stories260K-outliers "$key")
  read -r pa _ < <(cell aidreams260K "$key")
  awk -v f="$f" -v r="$rot" -v b="$bdq" -v w="$w" -v ps="$ps" -v po="$po" -v pa="$pa" \
      -v fs="$fs" -v fo="$fo" -v fa="$fa" -v s="$size" \
    'BEGIN { printf "| %s | %s | %s | %s | %.4f (%.3f) | %.4f (%.3f) | %.3f | %s |\n",
                   f, r, (b == "bdq" ? "on" : "off"), w, ps, ps / fs, po, po / fo, pa / fa, s }'
done
