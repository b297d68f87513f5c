#!/usr/bin/env bash
# Mutation check: proves the numeric tests can fail. Copies the working tree
# to a temporary folder, builds it once (Release), then for each mutation
# below makes one small wrong edit to an engine source file there, rebuilds
# incrementally, runs the numeric test cases and expects the ones listed for
# that mutation to FAIL. The product sources are never touched: every edit
# happens in the copy, and the file is restored before the next mutation.
#
# Prints a table mutation -> test -> caught/MISSED/passed and exits non-zero
# if an expected test missed a mutation, if a mutation's pattern no longer
# matches its file exactly once (the source moved on: update the mutation),
# if the unmutated build fails a test or skips one (models not fetched), or
# if a mutated tree does not build.
#
# Usage: tests/mutation.sh [-k] [MUTATION...]   (-k keeps the temp folder)
# Needs an OpenCL platform (PoCL: pocl-opencl-icd, as in CI) for the
# opencl-conv test, and the fetched models (scripts/fetch-models.sh; GPUGUARD_CACHE or
# ~/.cache/gpuguard). Uses perl (perl-base, always on Debian) for the edits.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
keep=0
if [ "${1:-}" = "-k" ]; then keep=1; shift; fi
jobs=${GG_MUTATION_JOBS:-2}

# ------------------------------------------------------------------ tests
# name|binary|case names (empty: all cases). Each runs on every mutation so
# the table shows everything a mutation trips, not only what it must trip.
tests=(
  "engine-ops|test-engine-ops|"
  "engine-xnn|test-engine-xnn|ops_xnn_vs_naive"
  "fusion-small|test-engine-xnn|fusion_vs_unfused"
  "xnn|test-xnn|"
  "models-xnn-vs-naive|test-engine|xnnpack_vs_naive_models"
  "models-fused-vs-unfused|test-engine|fusion_preserves_results"
  "backend-ops|test-backend-ops|naive xnnpack sim"
  "opencl-conv|test-opencl-ops|conv2d conv2d_direct"
  "opencl-onnx|test-opencl-ops|onnx_ops"
  "ops-elem|test-ops-elem|"
  "onnx-types|test-onnx|cast_f16 cast_ints cast_bypass einsum"
  "ops-extra|test-ops-extra|"
  "onnx-quant|test-onnx-quant|"
)

# -------------------------------------------------------------- mutations
# Each is: name, file, exact original text (must occur exactly once), the
# replacement, and the tests (by name above, space separated) that must fail.
m_names=() m_files=() m_orig=() m_repl=() m_expect=()
mutation() {
  m_names+=("$1") m_files+=("$2") m_orig+=("$3") m_repl+=("$4") m_expect+=("$5")
}

# The naive conv kernel: the first output of every conv is 0.01 too large.
mutation conv-naive-nudge src/engine/ops.c \
  'for (int64_t c = 0; c < j->CO; c++) y[c] = j->bias ? j->bias[c] : 0.0f;' \
  'for (int64_t c = 0; c < j->CO; c++) y[c] = j->bias ? j->bias[c] : 0.0f;
    if (row == 0 && ox == 0) y[0] += 1e-2f;' \
  "engine-ops engine-xnn models-xnn-vs-naive"
# The XNNPACK conv as the engine runs it: output 0 of every conv 0.01 too large.
mutation conv-xnn-nudge src/engine/backend-cpu.c \
  'if (!rc) rc = gg_xnn_op_run(ex->xnn);' \
  'if (!rc) rc = gg_xnn_op_run(ex->xnn);
  if (!rc && (n->op == GG_OP_CONV2D || n->op == GG_OP_DEPTHWISE))
    ((float *)vals[n->out[0]].data)[0] += 1e-2f;' \
  "engine-xnn models-xnn-vs-naive backend-ops"
# The sim backend's kernel path: every op's first output value 0.01 too
# large (a wrong kernel on the device; only test-backend-ops runs the sim).
mutation sim-kernel-nudge src/engine/backend.c \
  'return j->inner->iface->run_node(j->inner, j->n, j->vals, j->state);' \
  'int rc = j->inner->iface->run_node(j->inner, j->n, j->vals, j->state);
  gg_tval *y = &j->vals[j->n->out[0]];
  if (!rc && y->dtype == GG_DT_F32 && y->nelem) ((float *)y->data)[0] += 1e-2f;
  return rc;' \
  "backend-ops"
# The XNNPACK wrapper's fused ReLU6 clamps at 5.
mutation relu6-xnn-clamp-5 src/engine/xnn.c \
  'case GG_XNN_ACT_RELU6: *lo = 0.0f; *hi = 6.0f; return 0;' \
  'case GG_XNN_ACT_RELU6: *lo = 0.0f; *hi = 5.0f; return 0;' \
  "xnn engine-xnn models-xnn-vs-naive"
# The XNNPACK wrapper's stand-alone Relu6 op clamps at 5.
mutation relu6-xnn-unary-clamp-5 src/engine/xnn.c \
  'case GG_XNN_RELU6: st = xnn_create_clamp_nc_f32(1, 1, 1, 0.0f, 6.0f, 0, x); break;' \
  'case GG_XNN_RELU6: st = xnn_create_clamp_nc_f32(1, 1, 1, 0.0f, 5.0f, 0, x); break;' \
  "xnn engine-xnn"
# The naive kernels' fused ReLU6 clamps at 5.
mutation relu6-naive-clamp-5 src/engine/ops.c \
  'case GG_ACT_RELU6: return v < 0 ? 0 : (v > 6 ? 6 : v);' \
  'case GG_ACT_RELU6: return v < 0 ? 0 : (v > 5 ? 5 : v);' \
  "engine-ops engine-xnn models-xnn-vs-naive"
# The naive fused leaky ReLU uses 0.9 of its slope.
mutation leaky-naive-slope src/engine/ops.c \
  'case GG_ACT_LEAKY: return v > 0 ? v : v * alpha;' \
  'case GG_ACT_LEAKY: return v > 0 ? v : v * alpha * 0.9f;' \
  "engine-ops models-xnn-vs-naive"
# Fusion: "PReLU after ReLU is the identity" also applied after a conv with
# no activation, where the PReLU is not the identity.
mutation fuse-prelu-dropped src/engine/fold.c \
  'if ((p->a.act == GG_ACT_RELU || p->a.act == GG_ACT_RELU6) && cn->op == GG_OP_PRELU &&' \
  'if ((p->a.act == GG_ACT_RELU || p->a.act == GG_ACT_RELU6 || p->a.act == GG_ACT_NONE) && cn->op == GG_OP_PRELU &&' \
  "models-fused-vs-unfused fusion-small"
# Fusion: a LeakyRelu folded into the conv before it loses its slope.
mutation fuse-leaky-slope-lost src/engine/fold.c \
  'if (cn->op == GG_OP_LEAKY_RELU) p->a.alpha = cn->a.alpha;' \
  'if (cn->op == GG_OP_LEAKY_RELU) p->a.alpha = 0.0f;' \
  "models-fused-vs-unfused fusion-small"
# Fusion: a conv whose output has a second reader still absorbs its Relu
# (the other reader then sees a tensor nobody writes).
mutation fuse-despite-second-reader src/engine/fold.c \
  'if (g->tensors[t].is_output || consumers(g, t, &c) != 1) return -1;' \
  'if (g->tensors[t].is_output || consumers(g, t, &c) < 1) return -1;' \
  "fusion-small"
# Fusion: a per-channel Mul folded into the filter of a conv that has a bias
# (the bias is not scaled).
mutation fuse-mul-into-biased-conv src/engine/fold.c \
  'b[k] *= affine_at(s, k);' \
  'b[k] *= 1.0f;' \
  "fusion-small"
# Fusion: Relu6 after a conv fused as a plain Relu.
mutation fuse-conv-relu6-as-relu src/engine/fold.c \
  ': cn->op == GG_OP_RELU6 ? GG_ACT_RELU6' \
  ': cn->op == GG_OP_RELU6 ? GG_ACT_RELU' \
  "fusion-small"
# Fusion: a Pad with a non-zero fill value folded into the conv's zero padding.
mutation fuse-nonzero-pad src/engine/fold.c \
  '(p->n_in > 2 && !scalar_is(&g->tensors[p->in[2]], 0.0f)))' \
  '0)' \
  "fusion-small"
# The naive bilinear resize ignores half_pixel_centers (a half-pixel shift).
mutation resize-half-pixel-dropped src/engine/ops.c \
  'float src = hp ? ((float)dst + 0.5f) * scale - 0.5f : (float)dst * scale;' \
  'float src = (float)dst * scale;' \
  "engine-ops engine-xnn"
# The OpenCL direct convolution kernel (test-opencl-ops runs it on random
# shapes; needs an OpenCL platform such as PoCL): every output 0.01 too large.
mutation opencl-conv-nudge src/backend/kernels/kernels.cl \
  'gg_store4(y + yo + ((long)(b * OH + oy) * OW + ox) * CO + co, acc, nco, co, bias, bo, has_bias,' \
  'gg_store4(y + yo + ((long)(b * OH + oy) * OW + ox) * CO + co, acc + 1e-2f, nco, co, bias, bo, has_bias,' \
  "opencl-conv"

# The GPU kernel of the ONNX-era unary ops (test-opencl-ops onnx_ops, PoCL):
# HardSwish's gate at x/5 + 0.5 instead of x/6 + 0.5.
mutation opencl-hardswish-gate src/backend/kernels/kernels.cl \
  'case U_HSWISH: r = v * gg_clampf(v / 6.0f + 0.5f, 0.0f, 1.0f); break;' \
  'case U_HSWISH: r = v * gg_clampf(v / 5.0f + 0.5f, 0.0f, 1.0f); break;' \
  "opencl-onnx"

# The group E kernels (ops-elem.c), checked by test-ops-elem against values
# computed independently. Div with its operands swapped:
mutation div-operands-swapped src/engine/ops-elem.c \
  'if (isf) BIN_LOOP(float, float, fa, fb, fy, a / b);' \
  'if (isf) BIN_LOOP(float, float, fa, fb, fy, b / a);' \
  "ops-elem"
# The normalizations (layer, instance, group) without their epsilon.
mutation norm-epsilon-dropped src/engine/ops-elem.c \
  '*inv = 1.0 / sqrt((m ? q / (double)m : 0.0) + eps);' \
  '*inv = 1.0 / sqrt((m ? q / (double)m : 0.0));' \
  "ops-elem"
# Softplus as the naive log(1 + exp(x)), which overflows to inf for large x.
mutation softplus-overflows src/engine/ops-elem.c \
  'return x > 0 ? x + log1pf(expf(-x)) : log1pf(expf(x));' \
  'return log1pf(expf(x));' \
  "ops-elem"
# The broadcast iterator forgets to rewind an operand's offset at the end of
# a row (every broadcast binary op and Where read the wrong elements).
mutation broadcast-carry src/engine/ops-elem.c \
  'for (int k = 0; k < it->nop; k++) off[k] += it->st[k][d - 1] - it->shape[d] * it->st[k][d];' \
  'for (int k = 0; k < it->nop; k++) off[k] += it->st[k][d - 1];' \
  "ops-elem"
# Cast to float16 rounding a tie away from even, in the vectorised row
# (test-onnx cast_f16 computes the expected values by scaling in double).
mutation f16-tie-rounds-up src/engine/ops-elem.c \
  'uint32_t n = (a + 0xfffu + ((a >> 13) & 1u)) & ~0x1fffu;' \
  'uint32_t n = (a + 0x1000u) & ~0x1fffu;' \
  "onnx-types"
# Float16 subnormals rounded with the wrong quantum (2^-25: adding 0.25
# instead of 0.75, whose ulp is 2^-24).
mutation f16-subnormal-quantum src/engine/ops-elem.c \
  'sub = (af + 0.75f) - 0.75f;' \
  'sub = (af + 0.25f) - 0.25f;' \
  "onnx-types"
# Cast to bfloat16 truncating (what ONNX 1.12's test data did).
mutation bf16-truncates src/engine/ops-elem.c \
  'return (uint16_t)((x + 0x7fffu + ((x >> 16) & 1)) >> 16);' \
  'return (uint16_t)(x >> 16);' \
  "onnx-types"
# The Einsum kernel forgetting that a repeated label's strides add up (its
# diagonal), and that a size-1 dim broadcasts.
mutation einsum-diagonal-lost src/engine/ops-einsum.c \
  'if (x->shape[d] != 1 || p->size[l] == 1) p->stride[k][l] += st;' \
  'p->stride[k][l] = st;' \
  "onnx-types"
# The device's float16 rounding (kernels.cl B_F16, OpenCL and CUDA) with
# ties rounding up (test-onnx cast_f16 runs it on opencl):
mutation device-f16-ties-up src/backend/kernels/kernels.cl \
  'uint r = (a + 0xfffu + ((a >> 13) & 1u)) & ~0x1fffu;' \
  'uint r = (a + 0x1000u) & ~0x1fffu;' \
  "onnx-types"
# QuantizeLinear rounding ties up instead of to even (the float trick in
# quant_row: its tests put values exactly on .5):
mutation quant-ties-up src/engine/ops-extra.c \
  'q = (q + magic) - magic;' \
  'q = floorf(q + 0.5f);' \
  "onnx-quant"
# Per-axis scales and zero points read as per tensor (channel 0 for all):
mutation quant-axis-ignored src/engine/ops-extra.c \
  'int64_t c = j->ch > 1 ? (i / j->inner) % j->ch : 0;' \
  'int64_t c = 0;' \
  "onnx-quant"
# The requantization of QLinearConv / QLinearMatMul dividing by its
# multiplier instead of multiplying:
mutation requant-divides src/engine/ops-extra.c \
  'QUANT_LOOP(x[r] * k, yi[r] = (int32_t)v)' \
  'QUANT_LOOP(x[r] / k, yi[r] = (int32_t)v)' \
  "onnx-quant"
# ConvInteger / MatMulInteger weights keeping their zero point:
mutation weights-zero-point-lost src/engine/onnx.c \
  'dst[i] = (float)((int64_t)src[i] - (zp ? zp[ch > 1 ? (i / inner) % ch : 0] : 0));' \
  'dst[i] = (float)src[i];' \
  "onnx-quant"
# DynamicQuantizeLinear's fused path (the quantized value less the zero
# point, what ConvInteger multiplies) forgetting the zero point:
mutation dynamic-fused-zero-point src/engine/ops-extra.c \
  'QUANT_LOOP(x[r] / k, yf[r] = v - zf)' \
  'QUANT_LOOP(x[r] / k, yf[r] = v)' \
  "onnx-quant"
# XNNPACK's bilinear resize taking the nodes of a quantized graph:
mutation quantized-resize-xnn src/engine/backend-cpu.c \
  'return !n->a.quantized && xnn_resize_ok(n, v, &ac, &hp);' \
  'return xnn_resize_ok(n, v, &ac, &hp);' \
  "onnx-quant"
# The device kernels (OpenCL, CUDA, the sim device) taking a quantized
# graph's Resize and Div:
mutation quantized-resize-device src/backend/kernels/kx-ops.c \
  'if (!w && n->a.quantized &&' \
  'if (0 && !w && n->a.quantized &&' \
  "onnx-quant"
# The device Quantize (kernels.cl gg_quant) rounding ties away from zero:
mutation device-quant-ties-away src/backend/kernels/kernels.cl \
  'float zf = (float)zp, w = rint(q) + zf;' \
  'float zf = (float)zp, w = round(q) + zf;' \
  "onnx-quant"
# The session-time Cast bypass taking a rounding Cast for a no-op:
mutation cast-bypass-rounding src/engine/exec.c \
  'if (nd->op != GG_OP_CAST || nd->a.cast_kind != GG_CAST_NONE || nd->n_in != 1 ||' \
  'if (nd->op != GG_OP_CAST || nd->n_in != 1 ||' \
  "onnx-types"

# The group X kernels (ops-extra.c), checked by test-ops-extra. Round with
# halves away from zero (ONNX: to even):
mutation round-half-away src/engine/ops-extra.c \
  'y[i] = rintf(x[i]);' \
  'y[i] = roundf(x[i]);' \
  "ops-extra"
# Integer Mod with C's sign (the dividend's) instead of the divisor's.
mutation mod-c-sign src/engine/ops-extra.c \
  'if (python && r != 0 && ((r < 0) != (b < 0))) r += b;' \
  'if (0 && python && r != 0 && ((r < 0) != (b < 0))) r += b;' \
  "ops-extra"
# ReduceLogSumExp without adding back the max it subtracted.
mutation logsumexp-max-dropped src/engine/ops-extra.c \
  'acc = isinf(mx) || mx != mx ? mx : mx + log(acc);' \
  'acc = isinf(mx) || mx != mx ? mx : log(acc);' \
  "ops-extra"
# ArgMax / ArgMin ignoring select_last_index.
mutation arg-select-last-ignored src/engine/ops-extra.c \
  'I32(OUT(0))[u] = (int32_t)arg_pick(j, off, n->a.fn == 1, n->a.flags & 1);' \
  'I32(OUT(0))[u] = (int32_t)arg_pick(j, off, n->a.fn == 1, 0);' \
  "ops-extra"

# ---------------------------------------------------------------- helpers
die() { echo "mutation.sh: $*" >&2; exit 2; }
command -v perl >/dev/null || die "perl is needed for the source edits"

# count FILE TEXT: how many times TEXT occurs in FILE.
count() { ORIG=$2 perl -0ne '$c = () = /\Q$ENV{ORIG}\E/g; print $c' "$1"; }
# apply FILE ORIG REPL: replaces the single occurrence.
apply() { ORIG=$2 REPL=$3 perl -0pi -e 's/\Q$ENV{ORIG}\E/$ENV{REPL}/' "$1"; }

# Select mutations named on the command line.
if [ $# -gt 0 ]; then
  for want in "$@"; do
    found=0
    for n in "${m_names[@]}"; do [ "$n" = "$want" ] && found=1; done
    [ $found = 1 ] || die "no mutation named '$want' (have: ${m_names[*]})"
  done
fi
sel=" $* "
selected() { [ "$sel" = "  " ] || [[ "$sel" == *" $1 "* ]]; }

# Every pattern must match before anything is built: a stale mutation is an
# error, never a silent pass.
bad=0
for i in "${!m_names[@]}"; do
  c=$(count "$root/${m_files[$i]}" "${m_orig[$i]}")
  if [ "$c" != 1 ]; then
    echo "mutation ${m_names[$i]}: its pattern occurs $c times in ${m_files[$i]} (want exactly 1):" >&2
    echo "  ${m_orig[$i]}" >&2
    bad=1
  fi
done
[ $bad = 0 ] || die "update the stale mutations above to the current source"

work=$(mktemp -d /tmp/gg-mutation.XXXXXX)
cleanup() { if [ $keep = 1 ]; then echo "kept $work"; else rm -rf "$work"; fi; }
trap cleanup EXIT

start=$(date +%s)
# The working tree as it is (tracked and untracked, not ignored files); a
# tree that is not a git checkout is copied without its build folders.
if git -C "$root" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  (cd "$root" && git ls-files -z --cached --others --exclude-standard |
    grep -zv '^tests/reference/' | tar --null -T - --ignore-failed-read -cf - 2>/dev/null) |
    tar -xf - -C "$work"
else
  tar -C "$root" --exclude='./build*' --exclude='./tests/reference' --exclude='./.git' -cf - . |
    tar -xf - -C "$work"
fi
bins=()
for t in "${tests[@]}"; do
  b=$(echo "$t" | cut -d'|' -f2)
  case " ${bins[*]:-} " in *" $b "*) ;; *) bins+=("$b") ;; esac
done
build() {
  cmake --build "$work/build" -j"$jobs" --target "${bins[@]}" >"$work/build.log" 2>&1
}
echo "== building $work (Release, -j$jobs: ${bins[*]})"
cmake -S "$work" -B "$work/build" -DCMAKE_BUILD_TYPE=Release >"$work/cmake.log" 2>&1 ||
  { cat "$work/cmake.log"; die "cmake failed"; }
build || { tail -40 "$work/build.log"; die "the unmutated tree does not build"; }

# run_test SPEC LOG: runs one test spec; returns its exit status.
run_test() {
  local bin cases
  bin=$(echo "$1" | cut -d'|' -f2)
  cases=$(echo "$1" | cut -d'|' -f3)
  # shellcheck disable=SC2086 # case names are words
  (cd "$work/build" && timeout 120 "./$bin" $cases) >"$2" 2>&1
}

echo "== unmutated: every test must pass without skips"
for t in "${tests[@]}"; do
  name=${t%%|*}
  if ! run_test "$t" "$work/base-$name.log"; then
    tail -20 "$work/base-$name.log"
    die "test $name fails on the unmutated tree: fix that first"
  fi
  if grep -q '^SKIP ' "$work/base-$name.log"; then
    grep -B3 '^SKIP ' "$work/base-$name.log" | head
    die "test $name skips on the unmutated tree (models not fetched?): a skip cannot catch anything"
  fi
done

rows=() missed=0
for i in "${!m_names[@]}"; do
  m=${m_names[$i]} f=$work/${m_files[$i]}
  selected "$m" || continue
  cp -p "$f" "$work/orig"
  apply "$f" "${m_orig[$i]}" "${m_repl[$i]}"
  cmp -s "$f" "$work/orig" && die "mutation $m changed nothing in ${m_files[$i]}"
  if ! build; then
    tail -30 "$work/build.log"
    die "mutation $m does not build"
  fi
  # The tests run side by side (GG_MUTATION_JOBS at a time), each writing
  # its exit status next to its log; verdicts after all have finished.
  for t in "${tests[@]}"; do
    name=${t%%|*}
    while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do sleep 0.2; done
    (
      rc=0
      run_test "$t" "$work/$m-$name.log" || rc=$?
      echo $rc >"$work/$m-$name.rc"
    ) 2>/dev/null & # the log has the details; keep the shell's crash notice out of the table
  done
  wait
  for t in "${tests[@]}"; do
    name=${t%%|*}
    expect=0
    case " ${m_expect[$i]} " in *" $name "*) expect=1 ;; esac
    rc=$(cat "$work/$m-$name.rc")
    if [ "$rc" = 0 ]; then
      verdict=passed
      [ $expect = 1 ] && verdict=MISSED && missed=$((missed + 1))
    else
      verdict="caught"
      [ $expect = 0 ] && verdict="caught (extra)"
      # How: a failed assert exits 1; a crash or the time limit says so.
      if [ "$rc" = 124 ]; then verdict="$verdict, timed out"
      elif [ "$rc" -gt 128 ]; then verdict="$verdict, crashed (signal $((rc - 128)))"; fi
    fi
    rows+=("$(printf '%-26s %-24s %s' "$m" "$name" "$verdict")")
  done
  # Restore with a fresh mtime so make rebuilds the file.
  cp "$work/orig" "$f"
  touch "$f"
done
# Leave the copy buildable as it was (and prove the restore worked).
build || die "the restored tree does not build"

echo
printf '%-26s %-24s %s\n' mutation test verdict
printf '%-26s %-24s %s\n' -------- ---- -------
printf '%s\n' "${rows[@]}"
echo
echo "$(( $(date +%s) - start )) s; missed: $missed"
[ $missed = 0 ]
