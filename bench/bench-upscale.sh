#!/usr/bin/env bash
# Upscalers, side by side (issue 15): for each ESRGAN model, scale and input
# size, one whole-image upscale on the CPU with gpuguard (bench-upscale on the
# cpu device, in-process engine, one tile the size of the image: untiled) and
# the same picture through TensorFlow.js on @tensorflow/tfjs-backend-wasm
# (tests/reference/layers-bench.js: model loaded once, one warm-up run, then
# R timed runs) in the same run. Both sides on the same thread count
# (tfjs 4.x runs wasm on 1 thread under Node whatever is asked, tfjs #3830,
# so the default and the fair comparison is 1). Prints a Markdown table.
#
# Usage: bench/bench-upscale.sh [--build DIR] [--runs R] [--threads T]
#                               [--models "esrgan-slim esrgan-medium esrgan-thick"]
#                               [--scales "2 3 4 8"] [--sizes "256 512 1024"]
#                               [--cells "model:scale:size[:tile] ..."] [--json FILE]
# --cells replaces the grid by a list of cells; a cell's tile (pixels, or
# "auto": the budget's choice) makes our side tiled instead of one tile the
# size of the image (for outputs whose untiled arena does not fit in RAM). Needs: the build (targets
# bench-upscale gpuguard), scripts/fetch-models.sh (esrgan models),
# scripts/fetch-reference.sh (tfjs in tests/reference/node_modules).
#
# Ours: R processes of bench-upscale, each one upscale from a cold start
# (tile planning + session preparation + the run: "wall"); median of R.
# Peak memory: the engine's planned peak for the tile (= what it measured),
# and the process's max RSS (getrusage). TF.js: median of R warm runs (the
# warm-up run, which includes its setup, is reported apart), and the node
# process's max RSS. Ratio = tfjs median / our median (> 1: we are faster).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build="$root/build"
runs=3
threads=1
models="esrgan-slim esrgan-medium esrgan-thick"
scales="2 3 4 8"
sizes="256 512 1024"
cells=""
json=""
while [ $# -gt 0 ]; do
  case "$1" in
    --build) build=$2; shift ;;
    --runs) runs=$2; shift ;;
    --threads) threads=$2; shift ;;
    --models) models=$2; shift ;;
    --scales) scales=$2; shift ;;
    --sizes) sizes=$2; shift ;;
    --cells) cells=$2; shift ;;
    --json) json=$2; shift ;;
    -h|--help) sed -n '2,26p' "$0"; exit 0 ;;
    *) echo "bench-upscale.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
  shift
done
cache=${GPUGUARD_CACHE:-$HOME/.cache/gpuguard}
bin="$build/bench-upscale"
[ -x "$bin" ] || { echo "bench-upscale.sh: $bin not built (cmake --build $build --target bench-upscale gpuguard)" >&2; exit 1; }
[ -f "$root/tests/reference/node_modules/@tensorflow/tfjs-backend-wasm/package.json" ] ||
  { echo "bench-upscale.sh: tfjs not installed: run scripts/fetch-reference.sh" >&2; exit 1; }
[ -n "$json" ] || json=$(mktemp /tmp/gg-bench-upscale-XXXXXX.jsonl)
: > "$json"
if [ -z "$cells" ]; then
  for m in $models; do for s in $scales; do for z in $sizes; do cells="$cells $m:$s:$z"; done; done; done
fi

medf() { node -e 'const a=process.argv.slice(1).map(Number).sort((x,y)=>x-y); const n=a.length; console.log((n%2?a[(n-1)/2]:(a[n/2-1]+a[n/2])/2).toFixed(0))' "$@"; }
field() { node -e 'const o=JSON.parse(process.argv[1]); console.log(o[process.argv[2]])' "$1" "$2"; }
mib() { node -e 'console.log((+process.argv[1]/1048576).toFixed(0))' "$1"; }

rows=()
load0=$(cut -d' ' -f1-3 /proc/loadavg)
for cell in $cells; do
  IFS=: read -r m s z tile <<< "$cell"
  tile=${tile:-$z}
  [ "$tile" = auto ] && tile=0
  mj="$cache/models/$m-1.0.0/models/x$s/model.json"
  [ -f "$mj" ] || { echo "bench-upscale.sh: $mj missing: run scripts/fetch-models.sh" >&2; exit 1; }
  range=255; [ "$m" = esrgan-thick ] && range=1
  echo "bench: $m x$s ${z}x$z ($(date -u +%H:%M:%S)) ..." >&2
  walls=(); rss=0; peak=""; steps=(); ours_failed=""
  for r in $(seq "$runs"); do
    if [ "$tile" = 0 ]; then tileargs=(); else tileargs=(--tile "$tile" --max-tile "$tile"); fi
    # Our failure (a tile too large for the engine's limits) is a row, not
    # the end of the bench; the cell's TF.js side is then not run.
    if ! out=$("$bin" --device cpu --model "$m" --scale "$s" --size "$z" "${tileargs[@]}" \
      --threads "$threads" 2>/dev/null); then
      ours_failed=$(sed -n 's/^error *//p' <<< "$out" | head -1 | tr '|' '/' | cut -c1-90)
      echo "bench-upscale.sh: bench-upscale failed: ${ours_failed:-$out}" >&2
      break
    fi
    tl=$(sed -n 's/^tile *\([0-9]*\) (overlap.*= \([0-9]*\) tiles.*/\1 px, \2 tiles/p' <<< "$out")
    w=$(sed -n 's/^time *\([0-9.]*\) s wall.*/\1/p' <<< "$out")
    st=$(sed -n 's/^time .*steps \([0-9.]*\) s.*/\1/p' <<< "$out")
    walls+=("$(node -e "console.log($w*1000)")"); steps+=("$(node -e "console.log($st*1000)")")
    peak=$(sed -n 's/^device peak *planned \([0-9]*\),.*/\1/p' <<< "$out")
    k=$(sed -n 's/.*max RSS \([0-9]*\) KiB.*/\1/p' <<< "$out"); [ "$k" -gt "$rss" ] && rss=$k
    echo "{\"impl\":\"gpuguard\",\"model\":\"$m\",\"scale\":$s,\"size\":$z,\"threads\":$threads,\"wall_ms\":${walls[-1]},\"steps_ms\":${steps[-1]},\"planned_peak\":$peak,\"max_rss_kib\":$k}" >> "$json"
  done
  if [ -n "$ours_failed" ]; then
    echo "{\"impl\":\"gpuguard\",\"model\":\"$m\",\"scale\":$s,\"size\":$z,\"failed\":\"$ours_failed\"}" >> "$json"
    rows+=("| $m | x$s | ${z}x$z | fails: $ours_failed | not run | - | - | - | - |")
    continue
  fi
  g=$(medf "${walls[@]}"); gs=$(medf "${steps[@]}")
  tiles=""; [ "$tile" != "$z" ] && tiles=", tile $tl"
  # TF.js cannot run every cell: its wasm heap stops at 4 GiB. A failure is
  # reported in the row (with its message), not as a failed bench.
  if tw=$(node "$root/tests/reference/layers-bench.js" "$mj" "$z" --backend wasm --threads "$threads" \
            --runs "$runs" --range "$range" 2>/tmp/gg-bench-upscale-tfjs.err | tail -1) && [ -n "$tw" ]; then
    echo "$tw" >> "$json"
    t=$(field "$tw" median_ms); tu=$(field "$tw" warmup_ms); trss=$(field "$tw" max_rss_kib)
    ratio=$(node -e "console.log(($t/$g).toFixed(2))")
    rows+=("| $m | x$s | ${z}x$z | $g ($gs$tiles) | $t ($tu) | ${ratio}x | $(mib "$peak") | $((rss / 1024)) | $((trss / 1024)) |")
  else
    msg=$(tail -1 /tmp/gg-bench-upscale-tfjs.err | tr '|' '/' | cut -c1-80)
    echo "{\"impl\":\"tfjs-wasm\",\"model\":\"$m\",\"scale\":$s,\"size\":$z,\"failed\":\"$msg\"}" >> "$json"
    rows+=("| $m | x$s | ${z}x$z | $g ($gs$tiles) | fails: $msg | - | $(mib "$peak") | $((rss / 1024)) | - |")
  fi
done

cpu=$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1)
echo
echo "Machine: ${cpu:-unknown CPU}, $(nproc) CPUs, $(uname -sr); node $(node --version); tfjs $(node -p 'require("'"$root"'/tests/reference/node_modules/@tensorflow/tfjs/package.json").version') (wasm); threads: $threads both sides"
echo "Command: bench/bench-upscale.sh --build ${build#$root/} --runs $runs --threads $threads --cells \"${cells# }\" ($(date -u +%Y-%m-%d))"
echo "Load average before/after: $load0 / $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| model | scale | input | gpuguard ms: median wall (steps) | tfjs-wasm ms: median (warm-up run) | tfjs / ours | our planned peak MiB | our max RSS MiB | tfjs max RSS MiB |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
printf '%s\n' "${rows[@]}"
echo
echo "Ours: median of $runs cold processes (wall = plan + session + run; steps = the tile's run). TF.js: median of $runs warm runs after one warm-up. Raw JSON lines: $json"
