#!/usr/bin/env bash
# Perplexity of quantized stories260K and stories260K-outliers (EVAL.md protocol, ctx 256)
# for every format × rounding: prints the markdown table of docs/QUALITY.md.
# Usage: bench/quality.sh [TEXT]   (ROTOR=build/rotor, SHARED=../shared by default)
set -euo pipefail
cd "$(dirname "$0")/.."
ROTOR=${ROTOR:-build/rotor}
SHARED=${SHARED:-../shared}
TEXT=${1:-$SHARED/data/tinystories_val_dev.txt}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

models=(stories260K stories260K-outliers)
formats=("W8A8KV8:--w-bits 8 --a-bits 8 --kv-bits 8" "W4A16:--a-bits 16 --kv-bits 16"
         "W4A8KV8:--a-bits 8 --kv-bits 8" "W4A4KV8:--a-bits 4 --kv-bits 8"
         "W4A4KV4:--a-bits 4 --kv-bits 4")

ppl() { "$ROTOR" ppl -m "$1" -f "$TEXT" --ctx 256 --threads 1 --json | sed 's/.*"ppl":\([0-9.]*\).*/\1/'; }

# One model's column: fp32 first, then every format and rounding, one value per line.
column() {
  local name=$1 src="$SHARED/models/$1/$1.bin"
  ppl "$src"
  for f in "${formats[@]}"; do
    for w in rtn gptq; do
      # shellcheck disable=SC2086
      "$ROTOR" quantize -m "$src" -o "$work/$name.$w.rotor" --weights "$w" ${f#*:} >/dev/null
      echo "$(ppl "$work/$name.$w.rotor") $(stat -c %s "$work/$name.$w.rotor")"
    done
  done
}

for m in "${models[@]}"; do column "$m" > "$work/$m.col" & done
wait

fp=$(head -1 "$work/stories260K.col"); fo=$(head -1 "$work/stories260K-outliers.col")
printf '| format | weights | stories260K ppl | × fp32 | stories260K-outliers ppl | × fp32 | file bytes |\n'
printf '|---|---|---|---|---|---|---|\n'
printf '| fp32 | – | %.4f | 1.000 | %.4f | 1.000 | %s |\n' "$fp" "$fo" "$(stat -c %s "$SHARED/models/stories260K/stories260K.bin")"
i=2
for f in "${formats[@]}"; do
  for w in rtn gptq; do
    read -r ps size < <(sed -n "${i}p" "$work/stories260K.col")
    read -r po _ < <(sed -n "${i}p" "$work/stories260K-outliers.col")
    awk -v f="${f%%:*}" -v w="$w" -v ps="$ps" -v po="$po" -v fp="$fp" -v fo="$fo" -v s="$size" \
      'BEGIN { printf "| %s | %s | %.4f | %.3f | %.4f | %.3f | %s |\n", f, w, ps, ps/fp, po, po/fo, s }'
    i=$((i + 1))
  done
done
