#!/usr/bin/env bash
# Prefill and decode tokens/s of `rotor run` on stories260K per format and kernel ISA:
# median of REPEAT runs (default 5), one thread. Prints the markdown table of docs/BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
ROTOR=${ROTOR:-build/rotor}
SHARED=${SHARED:-../shared}
REPEAT=${REPEAT:-5}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
src=$SHARED/models/stories260K/stories260K.bin
# A prompt of about 200 tokens: the first lines of the evaluation text.
prompt=$(head -c 700 "$SHARED/data/tinystories_val_dev.txt")

"$ROTOR" quantize -m "$src" -o "$work/w8a8kv8.rotor" --w-bits 8 --a-bits 8 --kv-bits 8 >/dev/null
"$ROTOR" quantize -m "$src" -o "$work/w4a8kv8.rotor" --a-bits 8 --kv-bits 8 >/dev/null
"$ROTOR" quantize -m "$src" -o "$work/w4a4kv4.rotor" --a-bits 4 --kv-bits 4 >/dev/null

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }

measure() {  # model isa -> "prefill decode"
  local pre=() dec=()
  for _ in $(seq "$REPEAT"); do
    out=$(ROTOR_ISA=$2 "$ROTOR" run -m "$1" -p "$prompt" -n 256 --temp 0 --threads 1 --json)
    pre+=("$(sed 's/.*"prefill_tok_s":\([0-9.e+]*\).*/\1/' <<<"$out")")
    dec+=("$(sed 's/.*"decode_tok_s":\([0-9.e+]*\).*/\1/' <<<"$out")")
  done
  echo "$(printf '%s\n' "${pre[@]}" | median) $(printf '%s\n' "${dec[@]}" | median)"
}

isas=$(grep -o -w -E 'avx2|avx512_vnni' /proc/cpuinfo | sort -u | sed 's/avx512_vnni/avx512/' | tr '\n' ' ')
printf '| format | ISA | prefill tok/s | decode tok/s |\n|---|---|---|---|\n'
read -r p d < <(measure "$src" scalar)
printf '| fp32 (OpenBLAS) | – | %.0f | %.0f |\n' "$p" "$d"
for f in w8a8kv8 w4a8kv8 w4a4kv4; do
  for isa in scalar $isas; do
    read -r p d < <(measure "$work/$f.rotor" "$isa")
    printf '| %s | %s | %.0f | %.0f |\n' "$f" "$isa" "$p" "$d"
  done
done
