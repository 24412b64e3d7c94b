#!/usr/bin/env bash
# The end-to-end speed tables of docs/BENCHMARKS.md, in markdown (`make speed` runs them all):
#   stories  prefill and decode tokens/s on stories260K per format and kernel ISA, one thread,
#            medians of REPEAT runs (default 5): of `rotor run` (a ~200-token prompt, then 256
#            tokens), and of `rotor bench` in llama-bench's conditions (prefill 512 tokens;
#            decode 128 from an empty context).
#   synth    `rotor bench` on random-weight files with real shapes (`rotor synth`; SHAPES,
#            default "tinyllama-1.1b llama2-7b") in W4A8KV8 and W4A4KV4, at each of THREADS
#            (default "1 2"): prefill/decode tok/s, decode roofline fraction, peak memory, the
#            share of the file mapped in 2 MB pages (each file leaves the page cache first); and
#            prefill of LONG_PROMPT_TOKENS (default 512, the issue's and llama-bench's length)
#            in a run of its own; and decode again with the file read into memory (--no-mmap).
#   online   decode at ONLINE_SHAPE (default llama2-7b), W4A4KV4, without and with each
#            rotation recipe's online steps, and their share of decode time (--no-mmap).
#   head     decode per shape, W4A4KV4, with an 8-bit and a 4-bit classifier
#            (--no-mmap): the bytes per token each reads, tok/s and roofline share.
#   depth    decode at ONLINE_SHAPE from an empty context and after 4096 − DECODE_TOKENS
#            cached positions, per K cache layout (--no-mmap).
# The synthetic files are kept in models/cache/synth/ and reused (llama2-7b: 3.6 GB each) while
# their format version is the one this build writes; after a change to what `rotor synth`
# writes within one format version, delete them.
# Usage: bench/run_speed.sh [stories] [synth] [online] [head] [depth]   (no argument: all)
set -euo pipefail
cd "$(dirname "$0")/.."
ROTOR=${ROTOR:-build/rotor}
SHARED=${SHARED:-../shared}
REPEAT=${REPEAT:-5}
SHAPES=${SHAPES:-tinyllama-1.1b llama2-7b}
THREADS=${THREADS:-1 2}
PROMPT_TOKENS=${PROMPT_TOKENS:-128}
LONG_PROMPT_TOKENS=${LONG_PROMPT_TOKENS:-512}
DECODE_TOKENS=${DECODE_TOKENS:-32}
BENCH_REPEAT=${BENCH_REPEAT:-3}
ONLINE_SHAPE=${ONLINE_SHAPE:-llama2-7b}
tables=${*:-stories synth online head depth}
FORMAT_VERSION=$("$ROTOR" --version | sed -n 's/.*writes rotor file format version \([0-9]*\).*/\1/p')
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The median of a {"median": x, ...} field, or a plain number field, of rotor bench --json.
json_median() { sed "s/.*\"$1\":{[^}]*\"median\":\([0-9.e+-]*\).*/\1/" <<<"$2"; }
json_number() { sed "s/.*\"$1\":\([0-9.e+-]*\).*/\1/" <<<"$2"; }

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

  # llama-bench's conditions: prefill of 512 tokens, and 128 tokens decoded from an empty context.
  bench_pair() {  # model isa -> "prefill(512) decode(128)"
    pre=$(ROTOR_ISA=$2 "$ROTOR" bench -m "$1" -p 512 -n 0 -r "$REPEAT" -t 1 --json)
    dec=$(ROTOR_ISA=$2 "$ROTOR" bench -m "$1" -p 1 -n 128 -r "$REPEAT" -t 1 --json)
    echo "$(json_median prefill_tok_s "$pre") $(json_median decode_tok_s "$dec")"
  }

  isas=$(grep -o -w -E 'avx2|avx512_vnni' /proc/cpuinfo | sort -u | sed 's/avx512_vnni/avx512/' | tr '\n' ' ')
  printf '| format | ISA | run: prefill tok/s | run: decode tok/s | bench: prefill (512) | bench: decode (128) |\n'
  printf '|---|---|---|---|---|---|\n'
  read -r p d < <(measure "$src" scalar)
  read -r bp bd < <(bench_pair "$src" scalar)
  printf '| fp32 (OpenBLAS) | – | %.0f | %.0f | %.0f | %.0f |\n' "$p" "$d" "$bp" "$bd"
  for f in w8a8kv8 w4a8kv8 w4a4kv4; do
    for isa in scalar $isas; do
      read -r p d < <(measure "$work/$f.rotor" "$isa")
      read -r bp bd < <(bench_pair "$work/$f.rotor" "$isa")
      printf '| %s | %s | %.0f | %.0f | %.0f | %.0f |\n' "$f" "$isa" "$p" "$d" "$bp" "$bd"
    done
  done
}

synth_table() {
  echo "rotor bench -p $PROMPT_TOKENS -n $DECODE_TOKENS -r $BENCH_REPEAT on rotor synth files (median);"
  echo "prefill ($LONG_PROMPT_TOKENS): rotor bench -p $LONG_PROMPT_TOKENS -n 0 -r $BENCH_REPEAT"
  echo "decode --no-mmap: the first command with the file read into memory (its roofline share)"
  echo
  printf '| model | format | ISA | threads | prefill tok/s (%d) | prefill tok/s (%d) | decode tok/s | decode roofline | peak MB | file in 2 MB pages | decode tok/s --no-mmap |\n' \
    "$PROMPT_TOKENS" "$LONG_PROMPT_TOKENS"
  printf '|---|---|---|---|---|---|---|---|---|---|---|\n'
  for shape in $SHAPES; do
    for fmt in "w4a8kv8 --a-bits 8 --kv-bits 8" "w4a4kv4 --a-bits 4 --kv-bits 4"; do
      read -r name flags <<<"$fmt"
      # shellcheck disable=SC2086  # flags are words
      file=$(synth_file "$shape-$name-kivi32" --shape "$shape" $flags)
      for t in $THREADS; do
        out=$("$ROTOR" bench -m "$file" -p "$PROMPT_TOKENS" -n "$DECODE_TOKENS" \
              -r "$BENCH_REPEAT" -t "$t" --json)
        long=$("$ROTOR" bench -m "$file" -p "$LONG_PROMPT_TOKENS" -n 0 \
               -r "$BENCH_REPEAT" -t "$t" --json)
        unmapped=$("$ROTOR" bench -m "$file" -p "$PROMPT_TOKENS" -n "$DECODE_TOKENS" \
                   -r "$BENCH_REPEAT" -t "$t" --no-mmap --json)
        isa=$(sed 's/.*"isa":"\([a-z0-9]*\)".*/\1/' <<<"$out")
        printf '| %s | %s | %s | %s | %.1f | %.1f | %.2f | %.1f%% | %.0f | %.0f%% | %.2f (%.1f%%) |\n' \
          "$shape" "$name" "$isa" "$t" \
          "$(json_median prefill_tok_s "$out")" "$(json_median prefill_tok_s "$long")" \
          "$(json_median decode_tok_s "$out")" \
          "$(awk -v r="$(json_number roofline_fraction "$out")" 'BEGIN { print 100 * r }')" \
          "$(awk -v b="$(json_number peak_rss_bytes "$out")" 'BEGIN { print b / 1e6 }')" \
          "$(awk -v h="$(json_number model_file_in_2mb_pages "$out")" 'BEGIN { print 100 * h }')" \
          "$(json_median decode_tok_s "$unmapped")" \
          "$(awk -v r="$(json_number roofline_fraction "$unmapped")" 'BEGIN { print 100 * r }')"
      done
    done
  done
}

# A synthetic file in the cache, written on first use and again when its format version is
# older than the one this build writes: synth_file NAME SYNTH-FLAGS...
synth_file() {
  local file=models/cache/synth/$1.rotor
  shift
  mkdir -p models/cache/synth
  if [ -f "$file" ]; then
    local has
    has=$({ "$ROTOR" info "$file" --json 2>/dev/null || true; } |
          sed -n 's/.*"format_version":\([0-9]*\).*/\1/p')
    [ "${has:-0}" = "$FORMAT_VERSION" ] || rm -f "$file"
  fi
  [ -f "$file" ] || "$ROTOR" synth "$@" -o "$file" >&2
  # Out of the page cache, so that the first load reads it through the engine's hinted mapping
  # and later ones map it in 2 MB pages where the kernel can: the pages another reader or the
  # writer left decoded up to ~13% slower (docs/BENCHMARKS.md). The tables report the share.
  dd if="$file" iflag=nocache count=0 status=none
  echo "$file"
}

# Decode tok/s median of rotor bench at ONLINE_SHAPE in W4A4KV4 without and with each recipe's
# online steps (rotor synth --rotation/--bdq), and the share of decode time they take. Each
# file is read into memory (--no-mmap): mapped, how the host backs each file's page cache moved
# decode by more than the steps cost (docs/BENCHMARKS.md).
online_table() {
  local shape=$ONLINE_SHAPE t=${THREADS##* }
  echo "Online steps at $shape, W4A4KV4, $t threads: rotor bench -p 1 -n $DECODE_TOKENS -r $BENCH_REPEAT --no-mmap (median)"
  echo
  printf '| online steps | synth flags | decode tok/s | share of decode time |\n|---|---|---|---|\n'
  local base=""
  while IFS='|' read -r label key flags; do
    # shellcheck disable=SC2086  # flags are words
    file=$(synth_file "$shape-w4a4kv4-$key" --shape "$shape" --a-bits 4 --kv-bits 4 $flags)
    out=$("$ROTOR" bench -m "$file" -p 1 -n "$DECODE_TOKENS" -r "$BENCH_REPEAT" -t "$t" \
          --no-mmap --json)
    dec=$(json_median decode_tok_s "$out")
    [ -n "$base" ] || base=$dec
    printf '| %s | `%s` | %.2f | %s |\n' "$label" "${flags:-(none)}" "$dec" \
      "$(awk -v b="$base" -v d="$dec" 'BEGIN { printf "%.1f%%", 100 * (1 - d / b) }')"
  done <<'ROWS'
none|kivi32|
R4 + BDQ scale (KIVI K cache)|hadamard-bdq|--rotation hadamard --bdq
R3 + R4 + BDQ scale (per-token K cache)|hadamard-bdq-k0|--rotation hadamard --bdq --kv-k-group 0
R4 + BDQ scale + psot-layer residual blocks|psot-layer-bdq|--rotation psot-layer --bdq
ROWS
}

# Decode tok/s median of rotor bench per shape in W4A4KV4 with the 8-bit classifier and with a
# 4-bit one (rotor synth --classifier-bits 4), and the bytes each decoded token reads;
# the file read into memory, as in online_table.
head_table() {
  local t=${THREADS##* }
  echo "Classifier bits, W4A4KV4, $t threads: rotor bench -p 1 -n $DECODE_TOKENS -r $BENCH_REPEAT --no-mmap (median)"
  echo
  printf '| model | classifier | MB read per token | decode tok/s | decode roofline |\n|---|---|---|---|---|\n'
  for shape in $SHAPES; do
    for bits in 8 4; do
      file=$(synth_file "$shape-w4a4kv4-kivi32$([ "$bits" = 4 ] && echo -c4)" --shape "$shape" \
             --a-bits 4 --kv-bits 4 --classifier-bits "$bits")
      out=$("$ROTOR" bench -m "$file" -p 1 -n "$DECODE_TOKENS" -r "$BENCH_REPEAT" -t "$t" \
            --no-mmap --json)
      printf '| %s | %s-bit | %.1f | %.2f | %.1f%% |\n' "$shape" "$bits" \
        "$(awk -v b="$(json_number weight_bytes_per_token "$out")" 'BEGIN { print b / 1e6 }')" \
        "$(json_median decode_tok_s "$out")" \
        "$(awk -v r="$(json_number roofline_fraction "$out")" 'BEGIN { print 100 * r }')"
    done
  done
}

# Decode at an empty context and after DEPTH cached positions (rotor bench --depth), W4A4KV4
# with each K cache layout, at ONLINE_SHAPE; the file read into memory, as in online_table.
depth_table() {
  local shape=$ONLINE_SHAPE t=${THREADS##* } depth=$((4096 - DECODE_TOKENS))
  echo "Context depth at $shape, W4A4KV4, $t threads: rotor bench -p 1 -n $DECODE_TOKENS --depth $depth -r $BENCH_REPEAT --no-mmap (median)"
  echo
  printf '| K cache | decode tok/s, empty | decode tok/s at %d | slowdown (median of paired repeats) |\n|---|---|---|---|\n' "$depth"
  for k in 32 0; do
    file=$(synth_file "$shape-w4a4kv4-kivi$k" --shape "$shape" --a-bits 4 --kv-bits 4 --kv-k-group "$k")
    out=$("$ROTOR" bench -m "$file" -p 1 -n "$DECODE_TOKENS" -r "$BENCH_REPEAT" -t "$t" \
          --depth "$depth" --no-mmap --json)
    printf '| %s | %.2f | %.2f | %.1f%% |\n' "$([ "$k" = 0 ] && echo "per token" || echo "KIVI, groups of $k")" \
      "$(json_median decode_tok_s "$out")" "$(json_median decode_at_depth_tok_s "$out")" \
      "$(awk -v s="$(json_number depth_slowdown "$out")" 'BEGIN { print 100 * s }')"
  done
}

for table in $tables; do
  case $table in
    stories) stories_table ;;
    synth) synth_table ;;
    online) online_table ;;
    head) head_table ;;
    depth) depth_table ;;
    *) echo "run_speed.sh: unknown table '$table' (stories, synth, online, head, depth)" >&2; exit 2 ;;
  esac
  echo
done
