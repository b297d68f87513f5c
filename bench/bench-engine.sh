#!/usr/bin/env bash
# Engine speed, side by side: for each model, median latency of one inference
# on the CPU with gpuguard's engine (XNNPACK, in-process: gpuguard bench) at 1
# and 2 threads, and with TensorFlow.js on @tensorflow/tfjs-backend-wasm
# (XNNPACK compiled to WebAssembly, SIMD) in the same run. Prints a Markdown
# table (paste it into bench/README.md) and writes raw JSON lines.
#
# Usage: bench/bench-engine.sh [--build DIR] [--runs R] [--warmup W] [--rounds K]
#                              [--models "blazeface mobilefacenet nanodet faceres"]
#                              [--json FILE]
# Needs: the build (gpuguard target), scripts/fetch-models.sh and
# scripts/fetch-reference.sh (tfjs 4.22.0 in tests/reference/node_modules).
# Note: tfjs 4.x turns wasm threads off under Node (tfjs issue #3830), so the
# tfjs-wasm column always runs on 1 thread whatever is asked.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build="$root/build"
runs=30
warmup=5
rounds=3
models="blazeface mobilefacenet nanodet faceres"
json=""
while [ $# -gt 0 ]; do
  case "$1" in
    --build) build=$2; shift ;;
    --runs) runs=$2; shift ;;
    --warmup) warmup=$2; shift ;;
    --rounds) rounds=$2; shift ;;
    --models) models=$2; shift ;;
    --json) json=$2; shift ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "bench-engine.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
  shift
done
cache=${GPUGUARD_CACHE:-$HOME/.cache/gpuguard}
mdir="$cache/models/human-models-3.0.4/models"
bin="$build/gpuguard"
[ -x "$bin" ] || { echo "bench-engine.sh: $bin not built (cmake --build $build --target gpuguard)" >&2; exit 1; }
[ -f "$root/tests/reference/node_modules/@tensorflow/tfjs-backend-wasm/package.json" ] ||
  { echo "bench-engine.sh: tfjs not installed: run scripts/fetch-reference.sh" >&2; exit 1; }
[ -n "$json" ] || json=$(mktemp /tmp/gg-bench-engine-XXXXXX.jsonl)
: > "$json"

# One JSON line for our side: gpuguard bench's row for the model, tagged.
ours() { # model.json threads
  "$bin" bench --models "$1" --threads "$2" --runs "$runs" --warmup "$warmup" --peer none --json 2>/dev/null |
    node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const o=JSON.parse(s);console.log(JSON.stringify({impl:"gpuguard",threads:o.threads,...o.models[0]}))})'
}
field() { node -e 'const o=JSON.parse(process.argv[1]); console.log(o[process.argv[2]])' "$1" "$2"; }
minf() { node -e 'console.log(Math.min(+process.argv[1], +process.argv[2]))' "$1" "$2"; }
medf() { node -e 'const a=process.argv.slice(1).map(Number).sort((x,y)=>x-y); const n=a.length; console.log((n%2?a[(n-1)/2]:(a[n/2-1]+a[n/2])/2).toFixed(3))' "$@"; }

rows=()
load0=$(cut -d' ' -f1-3 /proc/loadavg)
for m in $models; do
  mj="$mdir/$m.json"
  [ -f "$mj" ] || { echo "bench-engine.sh: $mj missing: run scripts/fetch-models.sh" >&2; exit 1; }
  echo "bench: $m ..." >&2
  # Interleave the three configurations over several rounds so that load
  # from elsewhere on the machine hits all of them alike; report the median
  # of the round medians and the overall minimum.
  g1s=(); g2s=(); w1s=(); g1m=1e9; g2m=1e9; w1m=1e9
  for r in $(seq "$rounds"); do
    o1=$(ours "$mj" 1)
    o2=$(ours "$mj" 2)
    tw=$(node "$root/bench/tfjs/bench.js" "$mj" --backend wasm --threads 1 --runs "$runs" --warmup "$warmup" | tail -1)
    printf '%s\n%s\n%s\n' "$o1" "$o2" "$tw" >> "$json"
    g1s+=("$(field "$o1" median_ms)"); g2s+=("$(field "$o2" median_ms)"); w1s+=("$(field "$tw" median_ms)")
    g1m=$(minf "$g1m" "$(field "$o1" min_ms)"); g2m=$(minf "$g2m" "$(field "$o2" min_ms)")
    w1m=$(minf "$w1m" "$(field "$tw" min_ms)")
  done
  g1=$(medf "${g1s[@]}"); g2=$(medf "${g2s[@]}"); w1=$(medf "${w1s[@]}")
  xo=$(field "$o1" n_ops_xnnpack); no=$(field "$o1" n_ops)
  r1=$(node -e "console.log(($w1/$g1).toFixed(2))"); r2=$(node -e "console.log(($w1/$g2).toFixed(2))")
  rows+=("| $m | $g1 ($g1m) | $g2 ($g2m) | $w1 ($w1m) | ${r1}x | ${r2}x | $xo/$no |")
done

cpu=$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1)
echo
echo "Machine: ${cpu:-unknown CPU}, $(nproc) CPUs, $(uname -sr); node $(node --version); tfjs 4.22.0 (wasm, SIMD, 1 thread); XNNPACK $(dpkg-query -W -f='${Version}' libxnnpack0 2>/dev/null || echo '?')"
echo "Command: bench/bench-engine.sh --build ${build#$root/} --runs $runs --warmup $warmup --rounds $rounds ($(date -u +%Y-%m-%d))"
echo
echo "Load average before/after: $load0 / $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| model | gpuguard 1 thread, ms median (min) | gpuguard 2 threads | tfjs-wasm 1 thread | speedup 1t | speedup 2t | ops on XNNPACK |"
echo "|---|---:|---:|---:|---:|---:|---:|"
printf '%s\n' "${rows[@]}"
echo
echo "Each cell: median over $rounds interleaved rounds of the median of $runs timed runs (after $warmup warm-up runs), and in parentheses the fastest single run; speedup = tfjs-wasm median / gpuguard median (> 1: we are faster). Raw JSON lines: $json"
