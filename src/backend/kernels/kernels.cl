/* The kernels of gpuguard's GPU backends, written in OpenCL C and compiled
 * twice: by the OpenCL driver at run time (embedded in the binary by
 * cmake/opencl-backend.cmake) and by nvcc at build time as CUDA C++
 * (src/backend/cuda/kernels.cu includes this file after cl-compat.cuh,
 * which maps the OpenCL built-ins used here onto CUDA's). So: only the
 * built-ins cl-compat.cuh maps, helper functions declared GG_FN,
 * work-group size attributes through GG_REQD_WG, and a helper's pointer to
 * local memory declared GG_LOCAL_PARAM. Every tensor is a (buffer,
 * element offset) pair so tensors can live anywhere in an arena buffer.
 * Layout as the engine stores it: NHWC activations, HWIO conv filters,
 * [KH,KW,CI,MULT] depthwise filters. The arithmetic follows the reference
 * kernels in src/engine/ops.c; accumulation order may differ. Shapes of up to
 * 6 dims travel as int8 vectors (unused lanes 1 or 0). */

/* Test hooks: tests/test-opencl-ops.c builds with -DGG_MUTATE to show that a
 * wrong kernel fails the comparison, and -DGG_BREAK_BUILD to see a build
 * failure classified with its log. */
#ifdef GG_BREAK_BUILD
#error "GG_BREAK_BUILD: deliberate build failure (test hook)"
#endif
#ifdef GG_MUTATE
#define GG_ADD(a, b) ((a) + (b) * 1.001f)
#else
#define GG_ADD(a, b) ((a) + (b))
#endif

#ifndef GG_FN /* OpenCL C; cl-compat.cuh defines these for CUDA */
#define GG_FN inline
#define GG_REQD_WG(x, y, z) __attribute__((reqd_work_group_size(x, y, z)))
#define GG_LOCAL_PARAM __local /* a helper's pointer into local memory */
#endif

/* Double where the device has it (CUDA; OpenCL with cl_khr_fp64): for the
 * few kernels whose reference computes in double (Resize's coordinates,
 * LogSoftmax's sum, ReduceL2, the norms' moments); float otherwise. */
#if defined(__CUDACC__) || defined(cl_khr_fp64)
#ifndef __CUDACC__
#pragma OPENCL EXTENSION cl_khr_fp64 : enable
#endif
typedef double greal;
#else
typedef float greal;
#endif

#define ACT_NONE 0
#define ACT_RELU 1
#define ACT_RELU6 2
#define ACT_LEAKY 3
#define ACT_PRELU 4

GG_FN float gg_act(float v, int act, float alpha, __global const float *pa, ulong pao, int pan,
                    int c) {
  switch (act) {
  case ACT_RELU: return v > 0.0f ? v : 0.0f;
  case ACT_RELU6: return v < 0.0f ? 0.0f : (v > 6.0f ? 6.0f : v);
  case ACT_LEAKY: return v > 0.0f ? v : v * alpha;
  case ACT_PRELU: return v > 0.0f ? v : v * pa[pao + (pan == 1 ? 0 : c)];
  default: return v;
  }
}

/* Epilogue of the 4-channel conv kernels: bias, activation and the store of
 * the first n (<= 4) lanes of acc to channels c .. c+n-1 at yp. */
GG_FN void gg_store4(__global float *yp, float4 acc, int n, int c, __global const float *bias,
                      ulong bo, int has_bias, int act, float alpha, __global const float *pa,
                      ulong pao, int pan) {
  float r[4];
  vstore4(acc, 0, r);
  for (int j = 0; j < n; j++) {
    float v = r[j] + (has_bias ? bias[bo + c + j] : 0.0f);
    yp[j] = gg_act(v, act, alpha, pa, pao, pan, c + j);
  }
}

/* Direct convolution, 4 output channels per work item (the input value is
 * loaded once for all 4). global = (ceil(CO/4), OW, N*OH). Groups are allowed
 * when each group's channel count is a multiple of 4 (the host checks). */
__kernel void gg_conv2d(__global const float *x, ulong xo, __global const float *w, ulong wo,
                        __global const float *bias, ulong bo, int has_bias,
                        __global const float *pa, ulong pao, int pan, __global float *y, ulong yo,
                        int H, int W, int CI, int OH, int OW, int CO, int KH, int KW, int cig,
                        int cog, int sh, int sw, int dh, int dw, int pt, int pl, int act,
                        float alpha) {
  int co = get_global_id(0) * 4, ox = get_global_id(1), row = get_global_id(2);
  if (co >= CO || ox >= OW) return;
  int b = row / OH, oy = row % OH;
  int g = co / cog, nco = CO - co < 4 ? CO - co : 4;
  float4 acc = (float4)(0.0f);
  __global const float *wb = w + wo + co;
  for (int ky = 0; ky < KH; ky++) {
    int iy = oy * sh - pt + ky * dh;
    if (iy < 0 || iy >= H) continue;
    for (int kx = 0; kx < KW; kx++) {
      int ix = ox * sw - pl + kx * dw;
      if (ix < 0 || ix >= W) continue;
      __global const float *xin = x + xo + ((long)(b * H + iy) * W + ix) * CI + g * cig;
      __global const float *wk = wb + (long)(ky * KW + kx) * cig * CO;
      if (nco == 4) {
        for (int ci = 0; ci < cig; ci++) acc += xin[ci] * vload4(0, wk + (long)ci * CO);
      } else {
        for (int ci = 0; ci < cig; ci++) {
          float xv = xin[ci];
          __global const float *wr = wk + (long)ci * CO;
          acc.s0 += xv * wr[0];
          if (nco > 1) acc.s1 += xv * wr[1];
          if (nco > 2) acc.s2 += xv * wr[2];
        }
      }
    }
  }
  gg_store4(y + yo + ((long)(b * OH + oy) * OW + ox) * CO + co, acc, nco, co, bias, bo, has_bias,
            act, alpha, pa, pao, pan);
}

/* Depthwise convolution: output channel oc = ci * MULT + m. Four output
 * channels per work item; with MULT 1 they read 4 adjacent input channels
 * and weights as float4. global = (ceil(CO/4), OW, N*OH). */
__kernel void gg_depthwise(__global const float *x, ulong xo, __global const float *w, ulong wo,
                           __global const float *bias, ulong bo, int has_bias,
                           __global const float *pa, ulong pao, int pan, __global float *y,
                           ulong yo, int H, int W, int CI, int OH, int OW, int CO, int KH, int KW,
                           int mult, int sh, int sw, int dh, int dw, int pt, int pl, int act,
                           float alpha) {
  int oc = get_global_id(0) * 4, ox = get_global_id(1), row = get_global_id(2);
  if (oc >= CO || ox >= OW) return;
  int b = row / OH, oy = row % OH, n = CO - oc < 4 ? CO - oc : 4;
  int vec = mult == 1 && n == 4;
  float4 acc = (float4)(0.0f);
  for (int ky = 0; ky < KH; ky++) {
    int iy = oy * sh - pt + ky * dh;
    if (iy < 0 || iy >= H) continue;
    for (int kx = 0; kx < KW; kx++) {
      int ix = ox * sw - pl + kx * dw;
      if (ix < 0 || ix >= W) continue;
      __global const float *xp = x + xo + ((long)(b * H + iy) * W + ix) * CI;
      __global const float *wp = w + wo + (long)(ky * KW + kx) * CO + oc;
      if (vec) {
        acc += vload4(0, xp + oc) * vload4(0, wp);
      } else {
        acc.s0 += xp[oc / mult] * wp[0];
        if (n > 1) acc.s1 += xp[(oc + 1) / mult] * wp[1];
        if (n > 2) acc.s2 += xp[(oc + 2) / mult] * wp[2];
        if (n > 3) acc.s3 += xp[(oc + 3) / mult] * wp[3];
      }
    }
  }
  gg_store4(y + yo + ((long)(b * OH + oy) * OW + ox) * CO + oc, acc, n, oc, bias, bo, has_bias,
            act, alpha, pa, pao, pan);
}

/* C[M,N] = op(A) op(B) (+ bias, activation), row-major, 16x16 tiles through
 * local memory. A is [M,K] (lda) or [K,M] with ta; B is [K,N] (ldb) or [N,K]
 * with tb. global = (roundup(N,16), roundup(M,16)), local = (16,16). */
#define GT 16
__kernel GG_REQD_WG(GT, GT, 1) void
gg_gemm(__global const float *A, ulong ao, int lda, int ta, __global const float *B, ulong bo,
        int ldb, int tb, __global float *C, ulong co, int ldc, int M, int N, int K,
        __global const float *bias, ulong biaso, int has_bias, __global const float *pa,
        ulong pao, int pan, int act, float alpha) {
  __local float As[GT][GT + 1], Bs[GT][GT + 1];
  int tx = get_local_id(0), ty = get_local_id(1);
  int col = get_group_id(0) * GT + tx, row = get_group_id(1) * GT + ty;
  float acc = 0.0f;
  for (int k0 = 0; k0 < K; k0 += GT) {
    int ka = k0 + tx, kb = k0 + ty;
    As[ty][tx] = (row < M && ka < K) ? A[ao + (ta ? (long)ka * lda + row : (long)row * lda + ka)] : 0.0f;
    Bs[ty][tx] = (col < N && kb < K) ? B[bo + (tb ? (long)col * ldb + kb : (long)kb * ldb + col)] : 0.0f;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int k = 0; k < GT; k++) acc += As[ty][k] * Bs[k][tx];
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  if (row < M && col < N) {
    float v = acc + (has_bias ? bias[biaso + col] : 0.0f);
    C[co + (long)row * ldc + col] = gg_act(v, act, alpha, pa, pao, pan, col);
  }
}

/* Bias and activation over the rows of C[M,N] in place (after CLBlast's
 * GEMM). global = (N, M). */
__kernel void gg_bias_act(__global float *C, ulong co, int N, int M, __global const float *bias,
                          ulong biaso, int has_bias, __global const float *pa, ulong pao,
                          int pan, int act, float alpha) {
  int col = get_global_id(0), row = get_global_id(1);
  if (col >= N || row >= M) return;
  long i = co + (long)row * N + col;
  C[i] = gg_act(C[i] + (has_bias ? bias[biaso + col] : 0.0f), act, alpha, pa, pao, pan, col);
}

/* Lane d of an int8 (d < 8). */
GG_FN int lane(int8 v, int d) {
  int t[8];
  vstore8(v, 0, t);
  return t[d];
}

/* Offset in an operand with strides st (0 on broadcast dims) of the output
 * element i of shape shp (nd dims). */
GG_FN long bcast_off(int i, int nd, int8 shp, int8 st) {
  int s[8], t[8];
  vstore8(shp, 0, s);
  vstore8(st, 0, t);
  long off = 0;
  for (int d = nd - 1; d >= 0; d--) {
    off += (long)(i % s[d]) * t[d];
    i /= s[d];
  }
  return off;
}

#define OP_ADD 0
#define OP_SUB 1
#define OP_MUL 2
#define OP_MAX 3
#define OP_MIN 4
#define OP_PRELU 5
#define OP_DIV 6
#define OP_POW 7

/* Elementwise binary with NumPy broadcasting and a fused Relu/Relu6.
 * mode bit 0: a is the full output shape (index i), bit 1: b is. */
__kernel void gg_binary(__global const float *a, ulong ao, __global const float *b, ulong bo,
                        __global float *y, ulong yo, int n, int nd, int8 shp, int8 sa, int8 sb,
                        int mode, int op, int act, float alpha) {
  int i = get_global_id(0);
  if (i >= n) return;
  float av = a[ao + ((mode & 1) ? (long)i : bcast_off(i, nd, shp, sa))];
  float bv = b[bo + ((mode & 2) ? (long)i : bcast_off(i, nd, shp, sb))];
  float r;
  switch (op) {
  case OP_ADD: r = GG_ADD(av, bv); break;
  case OP_SUB: r = av - bv; break;
  case OP_MUL: r = av * bv; break;
  case OP_MAX: r = av > bv ? av : bv; break;
  case OP_MIN: r = av < bv ? av : bv; break;
  case OP_DIV: r = av / bv; break;
  case OP_POW: r = pow(av, bv); break;
  default: r = av > 0.0f ? av : av * bv; break;
  }
  y[yo + i] = gg_act(r, act, alpha, b, 0, 1, 0);
}

#define U_ABS 0
#define U_SQUARE 1
#define U_RSQRT 2
#define U_RELU 3
#define U_RELU6 4
#define U_LEAKY 5
#define U_SIGMOID 6
#define U_SQRT 7
#define U_EXP 8
#define U_LOG 9
#define U_NEG 10
#define U_RECIP 11
#define U_ERF 12
#define U_TANH 13
#define U_SOFTPLUS 14
#define U_HSIGMOID 15
#define U_HSWISH 16
#define U_GELU 17
#define U_GELU_TANH 18
#define U_CLIP 19

/* min(max(v, lo), hi) as ops-elem.c's clampf: NaN passes, lo > hi gives hi. */
GG_FN float gg_clampf(float v, float lo, float hi) {
  v = v < lo ? lo : v;
  return v > hi ? hi : v;
}

/* Float unary ops; alpha and beta are the op's attributes (LeakyRelu's
 * slope, HardSigmoid's alpha/beta, Clip's bounds). */
__kernel void gg_unary(__global const float *x, ulong xo, __global float *y, ulong yo, int n,
                       int op, float alpha, float beta) {
  int i = get_global_id(0);
  if (i >= n) return;
  float v = x[xo + i], r;
  switch (op) {
  case U_SQRT: r = sqrt(v); break;
  case U_EXP: r = exp(v); break;
  case U_LOG: r = log(v); break;
  case U_NEG: r = -v; break;
  case U_RECIP: r = 1.0f / v; break;
  case U_ERF: r = erf(v); break;
  case U_TANH: r = tanh(v); break;
  case U_SOFTPLUS: r = v > 0.0f ? v + log1p(exp(-v)) : log1p(exp(v)); break;
  case U_HSIGMOID: r = gg_clampf(alpha * v + beta, 0.0f, 1.0f); break;
  case U_HSWISH: r = v * gg_clampf(v / 6.0f + 0.5f, 0.0f, 1.0f); break;
  case U_GELU: r = 0.5f * v * (1.0f + erf(v * 0.7071067811865476f)); break;
  case U_GELU_TANH:
    r = 0.5f * v * (1.0f + tanh(0.7978845608028654f * (v + 0.044715f * v * v * v)));
    break;
  case U_CLIP: r = gg_clampf(v, alpha, beta); break;
  case U_ABS: r = fabs(v); break;
  case U_SQUARE: r = v * v; break;
  case U_RSQRT: r = 1.0f / sqrt(v); break;
  case U_RELU: r = v > 0.0f ? v : 0.0f; break;
  case U_RELU6: r = v < 0.0f ? 0.0f : (v > 6.0f ? 6.0f : v); break;
  case U_LEAKY: r = v > 0.0f ? v : v * alpha; break;
  default: r = 1.0f / (1.0f + exp(-v)); break;
  }
  y[yo + i] = r;
}

/* Softmax over the last axis, one row per work item. */
__kernel void gg_softmax(__global const float *x, ulong xo, __global float *y, ulong yo, int rows,
                         int inner) {
  int r = get_global_id(0);
  if (r >= rows) return;
  __global const float *xr = x + xo + (long)r * inner;
  __global float *yr = y + yo + (long)r * inner;
  float mx = -INFINITY, s = 0.0f;
  for (int i = 0; i < inner; i++) mx = fmax(mx, xr[i]);
  for (int i = 0; i < inner; i++) s += (yr[i] = exp(xr[i] - mx));
  float inv = 1.0f / s;
  for (int i = 0; i < inner; i++) yr[i] *= inv;
}

#define R_SUM 0
#define R_MEAN 1
#define R_MAX 2
#define R_MIN 3
#define R_L2 4

/* Sum / mean / max / min / L2 norm over the axes marked in red (1 =
 * reduced). Output element o is addressed in keep-dims form (reduced dims of
 * size 1); cnt = elements per output. Max and min propagate NaN, L2 sums in
 * greal, as ops-elem.c. */
__kernel void gg_reduce(__global const float *x, ulong xo, __global float *y, ulong yo, int nout,
                        int nd, int8 xshape, int8 red, int cnt, int mean) {
  int o = get_global_id(0);
  if (o >= nout) return;
  int s[8], rd[8], st[8], base = 0;
  vstore8(xshape, 0, s);
  vstore8(red, 0, rd);
  for (int d = nd - 1, acc = 1; d >= 0; d--) st[d] = acc, acc *= s[d];
  int t = o;
  for (int d = nd - 1; d >= 0; d--) {
    if (rd[d]) continue;
    base += (t % s[d]) * st[d];
    t /= s[d];
  }
  float sum = mean == R_MAX ? -INFINITY : mean == R_MIN ? INFINITY : 0.0f;
  greal sq = (greal)0;
  for (int r = 0; r < cnt; r++) {
    int off = base, q = r;
    for (int d = nd - 1; d >= 0; d--) {
      if (!rd[d]) continue;
      off += (q % s[d]) * st[d];
      q /= s[d];
    }
    float v = x[xo + off];
    if (mean == R_L2) {
      sq += (greal)v * (greal)v;
    } else if (mean == R_MAX || mean == R_MIN) {
      if (v != v || (mean == R_MAX ? v > sum : v < sum)) sum = v;
      if (sum != sum) break;
    } else {
      sum += v;
    }
  }
  if (mean == R_L2) sum = (float)sqrt(sq);
  y[yo + o] = mean == R_MEAN ? sum / (float)cnt : sum;
}

/* MaxPool (NHWC). global = (C, OW, N*OH). */
__kernel void gg_maxpool(__global const float *x, ulong xo, __global float *y, ulong yo, int H,
                         int W, int C, int OH, int OW, int kh, int kw, int sh, int sw, int pt,
                         int pl) {
  int c = get_global_id(0), ox = get_global_id(1), row = get_global_id(2);
  if (c >= C || ox >= OW) return;
  int b = row / OH, oy = row % OH;
  float m = -INFINITY;
  for (int ky = 0; ky < kh; ky++) {
    int iy = oy * sh - pt + ky;
    if (iy < 0 || iy >= H) continue;
    for (int kx = 0; kx < kw; kx++) {
      int ix = ox * sw - pl + kx;
      if (ix < 0 || ix >= W) continue;
      float v = x[xo + ((long)(b * H + iy) * W + ix) * C + c];
      m = v > m ? v : m;
    }
  }
  y[yo + ((long)(b * OH + oy) * OW + ox) * C + c] = m;
}

/* Constant pad of any rank: output element i reads the input at its
 * coordinates minus the leading pads, or the fill value (bits). */
__kernel void gg_pad(__global const uint *x, ulong xo, __global uint *y, ulong yo, int n, int nd,
                     int8 yshape, int8 xshape, int8 before, uint fill) {
  int i = get_global_id(0);
  if (i >= n) return;
  int ys[8], xs[8], pb[8];
  vstore8(yshape, 0, ys);
  vstore8(xshape, 0, xs);
  vstore8(before, 0, pb);
  long off = 0, st = 1;
  int t = i, inside = 1;
  for (int d = nd - 1; d >= 0; d--) {
    int c = t % ys[d] - pb[d];
    t /= ys[d];
    if (c < 0 || c >= xs[d]) inside = 0;
    off += (long)c * st;
    st *= xs[d];
  }
  y[yo + i] = inside ? x[xo + off] : fill;
}

/* Transpose of any rank: st[d] is the input stride of output dim d. */
__kernel void gg_transpose(__global const uint *x, ulong xo, __global uint *y, ulong yo, int n,
                           int nd, int8 yshape, int8 st) {
  int i = get_global_id(0);
  if (i >= n) return;
  y[yo + i] = x[xo + bcast_off(i, nd, yshape, st)];
}

/* rows x cols block copy between row strides (concat, split, reshape).
 * global = (cols, rows). */
__kernel void gg_copy2d(__global const uint *x, ulong xo, int xrow, __global uint *y, ulong yo,
                        int yrow, int cols, int rows) {
  int c = get_global_id(0), r = get_global_id(1);
  if (c >= cols || r >= rows) return;
  y[yo + (long)r * yrow + c] = x[xo + (long)r * xrow + c];
}

/* TF ResizeBilinear (legacy, align_corners, half_pixel_centers), as
 * bilinear_coord in src/engine/ops.c. */
GG_FN void bl_coord(int dst, int in, int out, int ac, int hp, int *lo, int *hi, float *frac) {
  float scale = (ac && out > 1) ? (float)(in - 1) / (float)(out - 1) : (float)in / (float)out;
  float src = hp ? ((float)dst + 0.5f) * scale - 0.5f : (float)dst * scale;
  float fl = floor(src);
  int l = (int)fl, h = (int)ceil(src);
  l = clamp(l, 0, in - 1);
  h = clamp(h, 0, in - 1);
  *lo = l;
  *hi = h;
  *frac = src - (fl < 0.0f ? 0.0f : fl);
}

/* global = (C, OW, N*OH). */
__kernel void gg_resize_bilinear(__global const float *x, ulong xo, __global float *y, ulong yo,
                                 int H, int W, int C, int OH, int OW, int ac, int hp) {
  int c = get_global_id(0), ox = get_global_id(1), row = get_global_id(2);
  if (c >= C || ox >= OW) return;
  int b = row / OH, oy = row % OH, y0, y1, x0, x1;
  float fy, fx;
  bl_coord(oy, H, OH, ac, hp, &y0, &y1, &fy);
  bl_coord(ox, W, OW, ac, hp, &x0, &x1, &fx);
  __global const float *r0 = x + xo + (long)(b * H + y0) * W * C;
  __global const float *r1 = x + xo + (long)(b * H + y1) * W * C;
  float tl = r0[x0 * C + c], tr = r0[x1 * C + c], bl = r1[x0 * C + c], br = r1[x1 * C + c];
  float top = tl + (tr - tl) * fx, bot = bl + (br - bl) * fx;
  y[yo + ((long)(b * OH + oy) * OW + ox) * C + c] = top + (bot - top) * fy;
}

/* im2col for a chunk of output pixels: col[r][(ky*KW+kx)*CI+ci] for output
 * rows r = row0 .. row0+rows-1 (row = (b*OH+oy)*OW+ox), zero where the window
 * is outside the image. Row-major [rows, KH*KW*CI] is GEMM's A, and the HWIO
 * filter is already B = [KH*KW*CI, CO]. global = (KH*KW*CI, rows). */
__kernel void gg_im2col(__global const float *x, ulong xo, __global float *col, ulong co, int H,
                        int W, int CI, int OH, int OW, int KW, int sh, int sw, int dh, int dw,
                        int pt, int pl, int row0, int rows, int K) {
  int k = get_global_id(0), r = get_global_id(1);
  if (k >= K || r >= rows) return;
  int row = row0 + r, ox = row % OW, t = row / OW, oy = t % OH, b = t / OH;
  int ci = k % CI, kk = k / CI, kx = kk % KW, ky = kk / KW;
  int iy = oy * sh - pt + ky * dh, ix = ox * sw - pl + kx * dw;
  float v = 0.0f;
  if (iy >= 0 && iy < H && ix >= 0 && ix < W) v = x[xo + ((long)(b * H + iy) * W + ix) * CI + ci];
  col[co + (long)r * K + k] = v;
}

/* Batched 2-D transpose x[B][R][C] -> y[B][C][R] through 16x16 local tiles
 * (NHWC <-> NCHW), so both the reads and the writes are row-contiguous.
 * global = (roundup(C,16), roundup(R,16), B), local = (16,16,1). */
#define TT 16
__kernel GG_REQD_WG(TT, TT, 1) void
gg_transpose2d(__global const uint *x, ulong xo, __global uint *y, ulong yo, int R, int C) {
  __local uint tile[TT][TT + 1];
  int tx = get_local_id(0), ty = get_local_id(1), b = get_global_id(2);
  int c0 = get_group_id(0) * TT, r0 = get_group_id(1) * TT;
  long base = (long)b * R * C;
  if (r0 + ty < R && c0 + tx < C) tile[ty][tx] = x[xo + base + (long)(r0 + ty) * C + c0 + tx];
  barrier(CLK_LOCAL_MEM_FENCE);
  if (c0 + ty < C && r0 + tx < R) y[yo + base + (long)(c0 + ty) * R + r0 + tx] = tile[tx][ty];
}

/* ---- ONNX-era elementwise ops on 4-byte values of either dtype (F32 or
 * I32, read as bits): comparisons, Where, Not, Cast and the int forms of
 * Neg and Clip, as src/engine/ops-elem.c computes them. */
#define C_EQUAL 0
#define C_GREATER 1
#define C_LESS 2

/* a OP b -> int 0/1 with NumPy broadcasting (gg_binary's mode and strides);
 * isint: the operands are I32, else F32. */
__kernel void gg_compare(__global const uint *a, ulong ao, __global const uint *b, ulong bo,
                         __global int *y, ulong yo, int n, int nd, int8 shp, int8 sa, int8 sb,
                         int mode, int op, int isint) {
  int i = get_global_id(0);
  if (i >= n) return;
  uint au = a[ao + ((mode & 1) ? (long)i : bcast_off(i, nd, shp, sa))];
  uint bu = b[bo + ((mode & 2) ? (long)i : bcast_off(i, nd, shp, sb))];
  int r;
  if (isint) {
    int av = (int)au, bv = (int)bu;
    r = op == C_EQUAL ? av == bv : op == C_GREATER ? av > bv : av < bv;
  } else {
    float av = as_float(au), bv = as_float(bu);
    r = op == C_EQUAL ? av == bv : op == C_GREATER ? av > bv : av < bv;
  }
  y[yo + i] = r;
}

/* y = cond ? a : b, three-way broadcast (strides 0 on broadcast dims). */
__kernel void gg_where(__global const int *c, ulong co, __global const uint *a, ulong ao,
                       __global const uint *b, ulong bo, __global uint *y, ulong yo, int n,
                       int nd, int8 shp, int8 sc, int8 sa, int8 sb) {
  int i = get_global_id(0);
  if (i >= n) return;
  y[yo + i] = c[co + bcast_off(i, nd, shp, sc)] ? a[ao + bcast_off(i, nd, shp, sa)]
                                                 : b[bo + bcast_off(i, nd, shp, sb)];
}

#define B_NOT 0
#define B_NEG_I 1
#define B_CLIP_I 2
#define B_F2I 3
#define B_I2F 4
#define B_F16 5

/* Unary ops on I32 or across dtypes; lo, hi: Clip's int bounds. */
__kernel void gg_unary_bits(__global const uint *x, ulong xo, __global uint *y, ulong yo, int n,
                            int op, int lo, int hi) {
  int i = get_global_id(0);
  if (i >= n) return;
  uint u = x[xo + i];
  int v = (int)u;
  switch (op) {
  case B_NOT: y[yo + i] = v == 0 ? 1u : 0u; break;
  case B_NEG_I: y[yo + i] = 0u - u; break;
  case B_CLIP_I: v = v < lo ? lo : v, y[yo + i] = (uint)(v > hi ? hi : v); break;
  case B_F2I: { /* truncation toward 0, saturating, NaN -> 0 (ops-elem.c sat_i32) */
    float f = as_float(u);
    int r = f != f ? 0 : f >= 2147483648.0f ? 2147483647 : f <= -2147483648.0f ? (-2147483647 - 1) : (int)f;
    y[yo + i] = (uint)r;
    break;
  }
  case B_F16: { /* float -> the nearest float16 value, ties to even, held in float:
                   ops-elem.c round_f16_row, the same bits */
    uint s = u & 0x80000000u, a = u & 0x7fffffffu;
    uint r = (a + 0xfffu + ((a >> 13) & 1u)) & ~0x1fffu;
    if (a >= 0x477ff000u) r = 0x7f800000u;                /* from 65520 up: inf */
    if (a > 0x7f800000u) r = (a | 0x400000u) & ~0x1fffu;  /* NaN, quieted */
    if (a < 0x38800000u) r = as_uint((as_float(a) + 0.75f) - 0.75f); /* subnormal: 2^-24 steps */
    y[yo + i] = r | s;
    break;
  }
  default: y[yo + i] = as_uint((float)v); break;
  }
}

/* ---- ONNX-era shape and window ops (the reference kernels are in
 * src/engine/ops-shape.c). */

/* Gather along an axis: y[o][j][k] = x[o][idx[j]][k] (inner = elements
 * after the axis, nidx = index count, dim = the axis' size). The host
 * checked every index against dim (constant indices only). */
__kernel void gg_gather(__global const uint *x, ulong xo, __global const int *idx, ulong io,
                        __global uint *y, ulong yo, int n, int inner, int nidx, int dim) {
  int i = get_global_id(0);
  if (i >= n) return;
  int in = i % inner, t = i / inner, j = t % nidx, o = t / nidx, k = idx[io + j];
  if (k < 0) k += dim;
  y[yo + i] = x[xo + ((long)o * dim + k) * inner + in];
}

/* AveragePool (NHWC), ONNX rules: pt/pl lead, pb/pr trail (what
 * count_include_pad counts), ceil_mode already in OH/OW. global = (C, OW,
 * N*OH). */
__kernel void gg_avgpool(__global const float *x, ulong xo, __global float *y, ulong yo, int H,
                         int W, int C, int OH, int OW, int kh, int kw, int sh, int sw, int pt,
                         int pl, int pb, int pr, int include_pad) {
  int c = get_global_id(0), ox = get_global_id(1), row = get_global_id(2);
  if (c >= C || ox >= OW) return;
  int b = row / OH, oy = row % OH;
  int y0 = oy * sh - pt, y1 = y0 + kh, x0 = ox * sw - pl, x1 = x0 + kw;
  int py1 = y1 < H + pb ? y1 : H + pb, px1 = x1 < W + pr ? x1 : W + pr;
  int cy0 = y0 < 0 ? 0 : y0, cy1 = y1 < H ? y1 : H, cx0 = x0 < 0 ? 0 : x0, cx1 = x1 < W ? x1 : W;
  float s = 0.0f;
  for (int iy = cy0; iy < cy1; iy++)
    for (int ix = cx0; ix < cx1; ix++) s += x[xo + ((long)(b * H + iy) * W + ix) * C + c];
  int cnt = include_pad ? (py1 - y0) * (px1 - x0)
                        : (cy1 > cy0 ? cy1 - cy0 : 0) * (cx1 > cx0 ? cx1 - cx0 : 0);
  y[yo + ((long)(b * OH + oy) * OW + ox) * C + c] = cnt > 0 ? s / (float)cnt : 0.0f;
}

/* ConvTranspose (NHWC, filter [KH, KW, CO/groups, CI]) gathered per output:
 * output pixel (oy, ox) is (oy + pt, ox + pl) of the uncropped output, which
 * input pixel iy reaches through tap ky when iy * sh + ky * dh equals it.
 * act: ACT_NONE, ACT_RELU or ACT_RELU6. global = (CO, OW, N*OH). */
__kernel void gg_conv_transpose(__global const float *x, ulong xo, __global const float *w,
                                ulong wo, __global const float *bias, ulong bo, int has_bias,
                                __global float *y, ulong yo, int H, int W, int CI, int OH, int OW,
                                int CO, int KH, int KW, int cig, int cog, int sh, int sw, int dh,
                                int dw, int pt, int pl, int act) {
  int co = get_global_id(0), ox = get_global_id(1), row = get_global_id(2);
  if (co >= CO || ox >= OW) return;
  int b = row / OH, oy = row % OH, fy = oy + pt, fx = ox + pl, g = co / cog, o = co % cog;
  float v = has_bias ? bias[bo + co] : 0.0f;
  for (int ky = 0; ky < KH; ky++) {
    int ty = fy - ky * dh;
    if (ty < 0 || ty % sh) continue;
    int iy = ty / sh;
    if (iy >= H) continue;
    for (int kx = 0; kx < KW; kx++) {
      int tx = fx - kx * dw;
      if (tx < 0 || tx % sw) continue;
      int ix = tx / sw;
      if (ix >= W) continue;
      __global const float *xg = x + xo + ((long)(b * H + iy) * W + ix) * CI + g * cig;
      __global const float *wr = w + wo + ((long)(ky * KW + kx) * cog + o) * CI + g * cig;
      float acc = 0.0f;
      for (int ci = 0; ci < cig; ci++) acc += xg[ci] * wr[ci];
      v += acc;
    }
  }
  y[yo + ((long)(b * OH + oy) * OW + ox) * CO + co] = gg_act(v, act, 0.0f, y, 0, 1, 0);
}

/* Batched C[b] = A[b] B[b] ([M,K] x [K,N], row-major), batch b of the
 * output's nb batch dims bshape; sa / sb: element strides of A's and B's
 * matrices per batch dim (0 where broadcast). 16x16 tiles as gg_gemm.
 * global = (roundup(N,16), roundup(M,16), batches), local = (16,16,1). */
__kernel GG_REQD_WG(GT, GT, 1) void
gg_bmm(__global const float *A, ulong ao, __global const float *B, ulong bo, __global float *C,
       ulong co, int M, int N, int K, int nb, int8 bshape, int8 sa, int8 sb) {
  __local float As[GT][GT + 1], Bs[GT][GT + 1];
  int tx = get_local_id(0), ty = get_local_id(1), b = get_global_id(2);
  int col = get_group_id(0) * GT + tx, row = get_group_id(1) * GT + ty;
  ulong a0 = ao + bcast_off(b, nb, bshape, sa), b0 = bo + bcast_off(b, nb, bshape, sb);
  float acc = 0.0f;
  for (int k0 = 0; k0 < K; k0 += GT) {
    int ka = k0 + tx, kb = k0 + ty;
    As[ty][tx] = (row < M && ka < K) ? A[a0 + (long)row * K + ka] : 0.0f;
    Bs[ty][tx] = (col < N && kb < K) ? B[b0 + (long)kb * N + col] : 0.0f;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int k = 0; k < GT; k++) acc += As[ty][k] * Bs[k][tx];
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  if (row < M && col < N) C[co + ((long)b * M + row) * N + col] = acc;
}

/* Sum over the NW work items of a work-group (all of them call it): the
 * total, in every work item. red: NW entries of local memory. */
#define NW 64
GG_FN greal wg_sum(greal v, GG_LOCAL_PARAM greal *red) {
  int l = get_local_id(0);
  red[l] = v;
  barrier(CLK_LOCAL_MEM_FENCE);
  for (int k = NW / 2; k > 0; k >>= 1) {
    if (l < k) red[l] += red[l + k];
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  greal t = red[0];
  barrier(CLK_LOCAL_MEM_FENCE); /* red is reused by the next call */
  return t;
}

/* LayerNormalization, one row of m elements per work-group of NW (the
 * moments summed in greal across the group; the reference uses double).
 * Scale and bias index the normalized dims shp (nd of them) through strides
 * sst / bst (0 where broadcast). Optional outputs: the row's mean and
 * 1/sqrt(var + eps). global = (rows * NW), local = (NW). */
__kernel GG_REQD_WG(NW, 1, 1) void
gg_layer_norm(__global const float *x, ulong xo, __global const float *sc, ulong so,
              __global const float *bias, ulong bo, int has_bias, __global float *y, ulong yo,
              __global float *mean, ulong mo, int has_mean, __global float *inv, ulong io,
              int has_inv, int rows, int m, int nd, int8 shp, int8 sst, int8 bst, float eps) {
  __local greal red[NW];
  int r = get_group_id(0), l = get_local_id(0);
  if (r >= rows) return; /* the whole group */
  __global const float *xr = x + xo + (long)r * m;
  __global float *yr = y + yo + (long)r * m;
  greal s = (greal)0, q = (greal)0;
  for (int i = l; i < m; i += NW) s += (greal)xr[i];
  greal mu = m ? wg_sum(s, red) / (greal)m : (greal)0;
  for (int i = l; i < m; i += NW) q += ((greal)xr[i] - mu) * ((greal)xr[i] - mu);
  greal var = wg_sum(q, red);
  greal iv = (greal)1 / sqrt((m ? var / (greal)m : (greal)0) + (greal)eps);
  if (l == 0 && has_mean) mean[mo + r] = (float)mu;
  if (l == 0 && has_inv) inv[io + r] = (float)iv;
  for (int i = l; i < m; i += NW) {
    float v = (float)(((greal)xr[i] - mu) * iv) * sc[so + bcast_off(i, nd, shp, sst)];
    if (has_bias) v += bias[bo + bcast_off(i, nd, shp, bst)];
    yr[i] = v;
  }
}

/* ONNX Resize (NHWC, H and W), nearest and linear, every coordinate mode,
 * as src/engine/ops-shape.c: the source coordinate in double where the
 * device has it (the reference computes in double; without fp64 a nearest
 * tie may round the other way), then taps clamped to the image. */

#define RS_NEAREST 0
#define RS_LINEAR 1

/* coordinate modes (gg_coord_mode) */
#define CM_HALF_PIXEL 0
#define CM_ASYMMETRIC 1
#define CM_PYTORCH 2
#define CM_ALIGN_CORNERS 3
#define CM_TF_NN 4
#define CM_TF_CROP 5
#define CM_SYMMETRIC 6

/* Source coordinate of output o; sc: the scale ONNX gave (0: out / in). */
GG_FN greal rs_coord(int cm, int o, int in, int out, float sc, float roi0, float roi1) {
  greal x = (greal)o, fin = (greal)in, h = (greal)0.5f, one = (greal)1;
  greal scale = sc > 0.0f ? (greal)sc : (greal)out / fin;
  greal len = sc > 0.0f ? (greal)sc * fin : (greal)out;
  switch (cm) {
  case CM_ALIGN_CORNERS: return len == one ? (greal)0 : x * (fin - one) / (len - one);
  case CM_ASYMMETRIC: return x / scale;
  case CM_TF_NN: return (x + h) / scale;
  case CM_PYTORCH: return len == one ? -h : (x + h) / scale - h;
  case CM_TF_CROP: {
    greal r0 = (greal)roi0, r1 = (greal)roi1;
    greal r = len == one ? (r1 - r0) * (fin - one) / (greal)2
                         : x * (r1 - r0) * (fin - one) / (len - one);
    return r + r0 * (fin - one);
  }
  case CM_SYMMETRIC: {
    greal adj = (greal)out / len, off = fin / (greal)2 * (one - adj);
    return off + (x + h) / scale - h;
  }
  default: return (x + h) / scale - h;
  }
}

/* Up to 2 taps of output o along one dim: index (clamped), weight; returns
 * the tap count, 0 when outside (tf_crop_and_resize extrapolation). */
GG_FN int rs_taps(int mode, int cm, int nm, int excl, int o, int in, int out, float sc,
                  float roi0, float roi1, int *i0, int *i1, float *w0, float *w1) {
  greal xo = rs_coord(cm, o, in, out, sc, roi0, roi1);
  xo = xo < (greal)-1e9f ? (greal)-1e9f : (xo > (greal)1e9f ? (greal)1e9f : xo);
  if (cm == CM_TF_CROP && (xo < (greal)0 || xo > (greal)(in - 1))) return 0;
  greal fl = floor(xo), r = xo - fl;
  long x0 = (long)fl;
  if (mode == RS_NEAREST) {
    long s = x0;
    if (r != (greal)0) {
      greal h = (greal)0.5f;
      if (nm == 1) s = r >= h ? x0 + 1 : x0;      /* round_prefer_ceil */
      else if (nm == 2) s = x0;                   /* floor */
      else if (nm == 3) s = x0 + 1;               /* ceil */
      else s = r > h ? x0 + 1 : x0;               /* round_prefer_floor */
    }
    *i0 = (int)(s < 0 ? 0 : (s > in - 1 ? in - 1 : s)), *w0 = 1.0f;
    return 1;
  }
  greal a = (greal)1 - r, b = r;
  if (excl) {
    if (x0 < 0 || x0 >= in) a = (greal)0;
    if (x0 + 1 < 0 || x0 + 1 >= in) b = (greal)0;
    greal sum = a + b;
    a = sum != (greal)0 ? a / sum : (greal)0;
    b = sum != (greal)0 ? b / sum : (greal)0;
  }
  *i0 = (int)(x0 < 0 ? 0 : (x0 > in - 1 ? in - 1 : x0));
  *i1 = (int)(x0 + 1 < 0 ? 0 : (x0 + 1 > in - 1 ? in - 1 : x0 + 1));
  *w0 = (float)a, *w1 = (float)b;
  return 2;
}

/* Four channels per work item, so the coordinate math (double) is shared.
 * global = (ceil(C/4), OW, N*OH). */
__kernel void gg_resize(__global const float *x, ulong xo, __global float *y, ulong yo, int H,
                        int W, int C, int OH, int OW, int mode, int cm, int nm, int excl,
                        float sch, float scw, float roi_y0, float roi_x0, float roi_y1,
                        float roi_x1, float extrap) {
  int c0 = get_global_id(0) * 4, ox = get_global_id(1), row = get_global_id(2);
  if (c0 >= C || ox >= OW) return;
  int b = row / OH, oy = row % OH, yi[2] = {0, 0}, xi[2] = {0, 0}, nc = C - c0 < 4 ? C - c0 : 4;
  float yw[2] = {0.0f, 0.0f}, xw[2] = {0.0f, 0.0f};
  int ny = rs_taps(mode, cm, nm, excl, oy, H, OH, sch, roi_y0, roi_y1, &yi[0], &yi[1], &yw[0],
                   &yw[1]);
  int nx = rs_taps(mode, cm, nm, excl, ox, W, OW, scw, roi_x0, roi_x1, &xi[0], &xi[1], &xw[0],
                   &xw[1]);
  __global float *dst = y + yo + ((long)(b * OH + oy) * OW + ox) * C + c0;
  for (int j = 0; j < nc; j++) {
    float v = 0.0f;
    if (!ny || !nx) v = extrap;
    for (int ky = 0; ky < ny; ky++)
      for (int kx = 0; kx < nx; kx++) {
        float wt = yw[ky] * xw[kx];
        if (wt == 0.0f) continue;
        v += wt * x[xo + ((long)(b * H + yi[ky]) * W + xi[kx]) * C + c0 + j];
      }
    dst[j] = v;
  }
}

/* LogSoftmax over the last axis, one row per work item (NaN propagates
 * through the max, the sum in greal as the reference's double). */
__kernel void gg_log_softmax(__global const float *x, ulong xo, __global float *y, ulong yo,
                             int rows, int inner) {
  int r = get_global_id(0);
  if (r >= rows) return;
  __global const float *xr = x + xo + (long)r * inner;
  __global float *yr = y + yo + (long)r * inner;
  float mx = -INFINITY;
  for (int i = 0; i < inner; i++) mx = xr[i] > mx || xr[i] != xr[i] ? xr[i] : mx;
  greal s = (greal)0;
  for (int i = 0; i < inner; i++) s += exp((greal)xr[i] - (greal)mx);
  float lse = (float)log(s);
  for (int i = 0; i < inner; i++) yr[i] = (xr[i] - mx) - lse;
}

/* Tile: output coordinate c reads the input at c modulo its dims. */
__kernel void gg_tile(__global const uint *x, ulong xo, __global uint *y, ulong yo, int n, int nd,
                      int8 yshape, int8 xshape) {
  int i = get_global_id(0);
  if (i >= n) return;
  int ys[8], xs[8];
  vstore8(yshape, 0, ys);
  vstore8(xshape, 0, xs);
  long off = 0, st = 1;
  int t = i;
  for (int d = nd - 1; d >= 0; d--) {
    off += (long)((t % ys[d]) % xs[d]) * st;
    t /= ys[d];
    st *= xs[d];
  }
  y[yo + i] = x[xo + off];
}

/* GroupNormalization (InstanceNormalization: groups == C) on x [N, C, S...]:
 * one (n, group) per work-group of NW, its cpg channels x spatial elements
 * contiguous; moments summed in greal (the reference uses double).
 * global = (units * NW), local = (NW). */
__kernel GG_REQD_WG(NW, 1, 1) void
gg_group_norm(__global const float *x, ulong xo, __global const float *sc, ulong so,
              __global const float *bias, ulong bo, __global float *y, ulong yo, int units, int C,
              int spatial, int groups, float eps) {
  __local greal red[NW];
  int u = get_group_id(0), l = get_local_id(0);
  if (u >= units) return; /* the whole group */
  int cpg = C / groups, b = u / groups, g = u % groups;
  long m = (long)cpg * spatial, base = ((long)b * C + (long)g * cpg) * spatial;
  __global const float *xg = x + xo + base;
  greal s = (greal)0, q = (greal)0;
  for (long i = l; i < m; i += NW) s += (greal)xg[i];
  greal mu = m ? wg_sum(s, red) / (greal)m : (greal)0;
  for (long i = l; i < m; i += NW) q += ((greal)xg[i] - mu) * ((greal)xg[i] - mu);
  greal var = wg_sum(q, red);
  greal inv = (greal)1 / sqrt((m ? var / (greal)m : (greal)0) + (greal)eps);
  for (long k = l; k < m; k += NW) {
    int ch = g * cpg + (int)(k / spatial);
    y[yo + base + k] = (float)(((greal)xg[k] - mu) * inv) * sc[so + ch] + bias[bo + ch];
  }
}

/* TF DepthToSpace (NHWC, DCR): y[b, h*bs+i, w*bs+j, c] = x[b, h, w,
 * (i*bs+j)*OC + c]. One element per work item; any 4-byte dtype. */
__kernel void gg_depth_to_space(__global const uint *x, ulong xo, __global uint *y, ulong yo,
                                int n, int H, int W, int IC, int OC, int bs) {
  int e = get_global_id(0);
  if (e >= n) return;
  int OW = W * bs, OH = H * bs, c = e % OC, t = e / OC, ox = t % OW, r = t / OW, oy = r % OH,
      b = r / OH;
  int h = oy / bs, i = oy % bs, w = ox / bs, j = ox % bs;
  y[yo + e] = x[xo + ((long)(b * H + h) * W + w) * IC + (i * bs + j) * OC + c];
}

/* TF.js ResizeNearestNeighbor (ops.c nearest_src): floor (round with
 * align_corners) of (in/out) * dst (dst + 0.5 with half-pixel centers), the
 * ratio in greal (the reference computes in double, as JavaScript does). */
GG_FN int nn_src(int dst, int in, int out, int ac, int hp) {
  greal ei = (ac && out > 1) ? (greal)(in - 1) : (greal)in;
  greal eo = (ac && out > 1) ? (greal)(out - 1) : (greal)out;
  greal f = (ei / eo) * (hp ? (greal)dst + (greal)0.5f : (greal)dst);
  long s = ac ? (long)round(f) : (long)floor(f);
  if (s > in - 1) s = in - 1;
  if (s < 0) s = 0;
  return (int)s;
}

/* global = (C, OW, N*OH); any 4-byte dtype. */
__kernel void gg_resize_nearest(__global const uint *x, ulong xo, __global uint *y, ulong yo, int H,
                                int W, int C, int OH, int OW, int ac, int hp) {
  int c = get_global_id(0), ox = get_global_id(1), row = get_global_id(2);
  if (c >= C || ox >= OW) return;
  int b = row / OH, oy = row % OH, sy = nn_src(oy, H, OH, ac, hp), sx = nn_src(ox, W, OW, ac, hp);
  y[yo + ((long)(b * OH + oy) * OW + ox) * C + c] = x[xo + ((long)(b * H + sy) * W + sx) * C + c];
}

/* ---- ONNX linear quantization (the reference kernels: ops-extra.c
 * run_quant; the same results, bit for bit). mode bit 0: x * k instead of
 * x / k (requantization); bit 2: the quantized value less the zero point,
 * as float; bit 3: DequantizeLinear, (x - zero point) * k. k and the zero
 * point: one value, or one per index of an axis (ch of them, each covering
 * runs of `inner` elements); nz zero points (0: none). */

/* The correctly rounded float quotient v / k whatever the device's division
 * (OpenCL's may be 2.5 ulp off): of the device's quotient and its four
 * nearest floats, the one whose remainder v - q k (exact through fma) is the
 * smallest. A quotient of two floats is never halfway between two floats,
 * so there is no tie. */
GG_FN float gg_div_rn(float v, float k) {
  float q = v / k;
  if (!(fabs(q) > 1e-30f && fabs(q) < 1e30f)) return q;
  float best = q, br = fabs(fma(-q, k, v));
  uint u = as_uint(q);
  for (int d = -2; d <= 2; d++) {
    float c = as_float(u + (uint)d);
    float r = fabs(fma(-c, k, v));
    if (r < br) best = c, br = r;
  }
  return best;
}

__kernel void gg_quant(__global const uint *x, ulong xo, __global const float *s, ulong so,
                       __global const int *z, ulong zo, int nz, __global uint *y, ulong yo, int n,
                       int ch, int inner, int mode, float lo, float hi) {
  int i = get_global_id(0);
  if (i >= n) return;
  int c = ch > 1 ? (i / inner) % ch : 0;
  float k = s[so + c];
  int zp = nz ? z[zo + (nz == 1 ? 0 : c)] : 0;
  if (mode & 8) {
    y[yo + i] = as_uint((float)((long)(int)x[xo + i] - zp) * k);
    return;
  }
  float v = as_float(x[xo + i]);
  float q = (mode & 1) ? v * k : gg_div_rn(v, k);
  q = q == q ? q : 0.0f; /* NaN: the zero point */
  q = q < -4194304.0f ? -4194304.0f : q > 4194304.0f ? 4194304.0f : q;
  float zf = (float)zp, w = rint(q) + zf;
  w = w < lo ? lo : w > hi ? hi : w;
  y[yo + i] = (mode & 4) ? as_uint(w - zf) : (uint)(int)w;
}
