#!/usr/bin/env bash
# The end-to-end speed tables of docs/BENCHMARKS.md, in markdown (`make speed` runs both):
#   stories  prefill and decode tokens/s of `rotor run` on stories260K per format and kernel
#            ISA: median of REPEAT runs (default 5), one thread.
#   synth    `rotor bench` on random-weight files with real shapes (`rotor synth`; SHAPES,
#            default "tinyllama-1.1b llama2-7b") in W4A8KV8 and W4A4KV4, at each of THREADS
#            (default "1 2"): prefill/decode tok/s, decode roofline fraction, peak memory.
#            The files are kept in models/cache/synth/ and reused.
# Usage: bench/run_speed.sh [stories] [synth]   (no argument: both)
set -euo pipefail
cd "$(dirname "$0")/.."
ROTOR=${ROTOR:-build/rotor}
SHARED=${SHARED:-../shared}
REPEAT=${REPEAT:-5}
SHAPES=${SHAPES:-tinyllama-1.1b llama2-7b}
THREADS=${THREADS:-1 2}
PROMPT_TOKENS=${PROMPT_TOKENS:-128}
DECODE_TOKENS=${DECODE_TOKENS:-32}
BENCH_REPEAT=${BENCH_REPEAT:-3}
tables=${*:-stories synth}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

stories_table() {
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
}

# The median of a {"median": x, ...} field, or a plain number field, of rotor bench --json.
json_median() { sed "s/.*\"$1\":{[^}]*\"median\":\([0-9.e+-]*\).*/\1/" <<<"$2"; }
json_number() { sed "s/.*\"$1\":\([0-9.e+-]*\).*/\1/" <<<"$2"; }

synth_table() {
  local cache=models/cache/synth
  mkdir -p "$cache"
  echo "rotor bench -p $PROMPT_TOKENS -n $DECODE_TOKENS -r $BENCH_REPEAT on rotor synth files (median)"
  echo
  printf '| model | format | ISA | threads | prefill tok/s | decode tok/s | decode roofline | peak MB |\n'
  printf '|---|---|---|---|---|---|---|---|\n'
  for shape in $SHAPES; do
    for fmt in "w4a8kv8 --a-bits 8 --kv-bits 8" "w4a4kv4 --a-bits 4 --kv-bits 4"; do
      read -r name flags <<<"$fmt"
      file=$cache/$shape-$name.rotor
      # shellcheck disable=SC2086  # flags are words
      [ -f "$file" ] || "$ROTOR" synth --shape "$shape" --w-bits 4 $flags -o "$file" >&2
      for t in $THREADS; do
        out=$("$ROTOR" bench -m "$file" -p "$PROMPT_TOKENS" -n "$DECODE_TOKENS" \
              -r "$BENCH_REPEAT" -t "$t" --json)
        isa=$(sed 's/.*"isa":"\([a-z0-9]*\)".*/\1/' <<<"$out")
        printf '| %s | %s | %s | %s | %.1f | %.2f | %.1f%% | %.0f |\n' "$shape" "$name" "$isa" "$t" \
          "$(json_median prefill_tok_s "$out")" "$(json_median decode_tok_s "$out")" \
          "$(awk -v r="$(json_number roofline_fraction "$out")" 'BEGIN { print 100 * r }')" \
          "$(awk -v b="$(json_number peak_rss_bytes "$out")" 'BEGIN { print b / 1e6 }')"
      done
    done
  done
}

for table in $tables; do
  case $table in
    stories) stories_table ;;
    synth) synth_table ;;
    *) echo "run_speed.sh: unknown table '$table' (stories, synth)" >&2; exit 2 ;;
  esac
  echo
done
