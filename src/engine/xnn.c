/* XNNPACK operator wrappers (see xnn.h): create once, bind once, run often. */
#include "engine/xnn.h"

#include "gpuguard/error.h"
#include "gpuguard/log.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

size_t gg_xnn_out_dim(size_t in, uint32_t k, uint32_t stride, uint32_t dilation,
                      uint32_t pad0, uint32_t pad1) {
  if (stride == 0) stride = 1;
  if (dilation == 0) dilation = 1;
  if (k == 0) return 0;
  size_t eff = (size_t)(k - 1) * dilation + 1;
  size_t padded = in + pad0 + pad1;
  if (padded < eff) return 0;
  return (padded - eff) / stride + 1;
}

void gg_xnn_same_pads(size_t in, uint32_t k, uint32_t stride, uint32_t dilation,
                      uint32_t *pad0, uint32_t *pad1) {
  if (stride == 0) stride = 1;
  if (dilation == 0) dilation = 1;
  size_t out = (in + stride - 1) / stride;
  size_t eff = k ? (size_t)(k - 1) * dilation + 1 : 0;
  size_t need = out ? (out - 1) * stride + eff : 0;
  size_t total = need > in ? need - in : 0;
  if (pad0) *pad0 = (uint32_t)(total / 2);
  if (pad1) *pad1 = (uint32_t)(total - total / 2);
}

#ifdef GG_HAVE_XNNPACK

#include <pthread.h>
#include <pthreadpool.h>
#include <stdatomic.h>
#include <xnnpack.h>

#define TAG "ENG"

/* ---------------------------------------------------------------- allocator */

/* Every block carries its size in a header so frees can be counted. Plain
 * blocks use a 16-byte header; aligned blocks a header of `alignment` bytes
 * (>= 16) with the size in the 16 bytes right before the returned pointer. */
#define HDR 16

static _Atomic uint64_t g_in_use, g_peak;

static void count_add(size_t n) {
  uint64_t now = atomic_fetch_add(&g_in_use, (uint64_t)n) + n;
  uint64_t p = atomic_load(&g_peak);
  while (now > p && !atomic_compare_exchange_weak(&g_peak, &p, now)) {
  }
}
static void count_sub(size_t n) { atomic_fetch_sub(&g_in_use, (uint64_t)n); }

static void *xa_alloc(void *ctx, size_t size) {
  (void)ctx;
  unsigned char *b = malloc(size + HDR);
  if (!b) return NULL;
  memcpy(b, &size, sizeof size);
  count_add(size);
  return b + HDR;
}

static void *xa_realloc(void *ctx, void *ptr, size_t size) {
  if (!ptr) return xa_alloc(ctx, size);
  unsigned char *b = (unsigned char *)ptr - HDR;
  size_t old;
  memcpy(&old, b, sizeof old);
  unsigned char *nb = realloc(b, size + HDR);
  if (!nb) return NULL;
  memcpy(nb, &size, sizeof size);
  count_sub(old);
  count_add(size);
  return nb + HDR;
}

static void xa_free(void *ctx, void *ptr) {
  (void)ctx;
  if (!ptr) return;
  unsigned char *b = (unsigned char *)ptr - HDR;
  size_t old;
  memcpy(&old, b, sizeof old);
  count_sub(old);
  free(b);
}

static void *xa_aligned_alloc(void *ctx, size_t alignment, size_t size) {
  (void)ctx;
  if (alignment < HDR) alignment = HDR;
  void *b = NULL;
  if (posix_memalign(&b, alignment, size + alignment)) return NULL;
  unsigned char *p = (unsigned char *)b + alignment;
  size_t meta[2] = {size, alignment};
  memcpy(p - HDR, meta, sizeof meta);
  count_add(size);
  return p;
}

static void xa_aligned_free(void *ctx, void *ptr) {
  (void)ctx;
  if (!ptr) return;
  unsigned char *p = ptr;
  size_t meta[2];
  memcpy(meta, p - HDR, sizeof meta);
  count_sub(meta[0]);
  free(p - meta[1]);
}

static const struct xnn_allocator g_allocator = {
    .context = NULL,
    .allocate = xa_alloc,
    .reallocate = xa_realloc,
    .deallocate = xa_free,
    .aligned_allocate = xa_aligned_alloc,
    .aligned_deallocate = xa_aligned_free,
};

/* ---------------------------------------------------------------- init */

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static enum xnn_status g_init_status = xnn_status_uninitialized;

static void init_once(void) {
  g_init_status = xnn_initialize(&g_allocator);
  if (g_init_status != xnn_status_success)
    GG_ERROR(TAG, "xnn_initialize failed (status %d): this CPU lacks what XNNPACK needs; "
                  "run with the naive kernels (build with -DGG_XNNPACK=OFF)",
             (int)g_init_status);
}

int gg_xnn_available(void) { return 1; }

int gg_xnn_init(void) {
  pthread_once(&g_once, init_once);
  if (g_init_status == xnn_status_success) return 0;
  return g_init_status == xnn_status_out_of_memory ? GG_ENOMEM : GG_EUNSUPPORTED;
}

void gg_xnn_mem_stats(uint64_t *in_use, uint64_t *peak) {
  if (in_use) *in_use = atomic_load(&g_in_use);
  if (peak) *peak = atomic_load(&g_peak);
}

static int map_status(enum xnn_status st, const char *what) {
  switch (st) {
  case xnn_status_success: return 0;
  case xnn_status_out_of_memory:
    GG_ERROR(TAG, "%s: XNNPACK is out of host memory", what);
    return GG_ENOMEM;
  case xnn_status_invalid_parameter:
    GG_ERROR(TAG, "%s: XNNPACK rejected a parameter (shape or attribute out of range)", what);
    return GG_EINVAL;
  case xnn_status_unsupported_parameter:
    GG_ERROR(TAG, "%s: XNNPACK does not support these parameters", what);
    return GG_EUNSUPPORTED;
  case xnn_status_unsupported_hardware:
    GG_ERROR(TAG, "%s: XNNPACK does not support this CPU", what);
    return GG_EUNSUPPORTED;
  case xnn_status_uninitialized:
  case xnn_status_invalid_state:
  default:
    GG_ERROR(TAG, "%s: XNNPACK failed (status %d)", what, (int)st);
    return GG_ESTATE;
  }
}

/* ---------------------------------------------------------------- threadpool */

struct gg_xnn_threadpool {
  pthreadpool_t tp; /* NULL = run on the caller's thread */
  int threads;
};

int gg_xnn_threadpool_new(int threads, gg_xnn_threadpool **out) {
  if (!out) return GG_EINVAL;
  *out = NULL;
  int rc = gg_xnn_init();
  if (rc) return rc;
  gg_xnn_threadpool *p = calloc(1, sizeof *p);
  if (!p) return GG_ENOMEM;
  p->threads = threads > 1 ? threads : 1;
  if (p->threads > 1) {
    p->tp = pthreadpool_create((size_t)p->threads);
    if (!p->tp) {
      free(p);
      GG_ERROR(TAG, "cannot create a pool of %d threads", threads);
      return GG_ENOMEM;
    }
  }
  *out = p;
  return 0;
}

void gg_xnn_threadpool_free(gg_xnn_threadpool *pool) {
  if (!pool) return;
  if (pool->tp) pthreadpool_destroy(pool->tp);
  free(pool);
}

int gg_xnn_threadpool_threads(const gg_xnn_threadpool *pool) { return pool ? pool->threads : 1; }

static pthreadpool_t tp_of(const gg_xnn_threadpool *pool) { return pool ? pool->tp : NULL; }

struct pthreadpool *gg_xnn_threadpool_get(const gg_xnn_threadpool *pool) { return tp_of(pool); }

static void rest_task(void *arg, size_t i) { (void)arg, (void)i; }

void gg_xnn_threadpool_rest(gg_xnn_threadpool *pool) {
  if (!pool || !pool->tp) return;
  /* one item per thread so that every worker takes the command; the yield
   * flag sends them to a kernel wait after it */
  pthreadpool_parallelize_1d(pool->tp, rest_task, NULL, (size_t)pool->threads,
                             PTHREADPOOL_FLAG_YIELD_WORKERS);
}

/* ---------------------------------------------------------------- ops */

typedef enum op_kind {
  K_CONV,
  K_FC,
  K_MAXPOOL,
  K_AVGPOOL,
  K_GAP,
  K_BINARY,
  K_UNARY,
  K_SOFTMAX,
  K_PRELU,
  K_RESIZE,
  K_PAD,
  K_DECONV,
} op_kind;

struct gg_xnn_op {
  op_kind kind;
  const char *name;
  xnn_operator_t xop;
  gg_xnn_threadpool *pool;
  size_t n, h, w;       /* batch / input spatial size (conv, pools, resize, gap) */
  size_t oh, ow;        /* resize output */
  uint32_t adj_h, adj_w; /* deconvolution output_padding */
  size_t ndim_a, shape_a[GG_XNN_MAX_DIMS];
  size_t ndim_b, shape_b[GG_XNN_MAX_DIMS];
  size_t pre[GG_XNN_MAX_DIMS], post[GG_XNN_MAX_DIMS];
  int binop;
  int unop;
  size_t out_elems;
  uint64_t work;  /* rough cost: elements, or multiply-adds / 16; 0 = out_elems */
  uint64_t bytes; /* XNNPACK bytes for this op (create + last bind) */
  uint64_t bind_bytes;
  int bound;
  /* Pool or caller's thread, chosen by measurement (see op_pick_pool):
   * smoothed run times in ns of each way (0: not measured yet) and runs. */
  uint64_t ns_pool, ns_alone;
  uint32_t runs;
};

static uint64_t mem_now(void) { return atomic_load(&g_in_use); }

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Ops cheaper than this (in gg_xnn_op.work units, about a nanosecond each
 * on one core) run on the caller's thread: a fork-join of the pool costs
 * microseconds on a quiet machine, and a whole scheduler time slice when
 * another process holds a worker's core. PP-OCR rec at 2 threads runs
 * most of its ~220 ops below it. */
#define SERIAL_WORK 16384

static pthreadpool_t tp_for(const gg_xnn_op *op) {
  uint64_t w = op->work ? op->work : op->out_elems;
  return w < SERIAL_WORK ? NULL : tp_of(op->pool);
}

static int act_range(gg_xnn_act act, float cmin, float cmax, float *lo, float *hi,
                     const char *what) {
  switch (act) {
  case GG_XNN_ACT_NONE: *lo = -INFINITY; *hi = INFINITY; return 0;
  case GG_XNN_ACT_RELU: *lo = 0.0f; *hi = INFINITY; return 0;
  case GG_XNN_ACT_RELU6: *lo = 0.0f; *hi = 6.0f; return 0;
  case GG_XNN_ACT_CLAMP:
    if (!(cmin < cmax)) {
      GG_ERROR(TAG, "%s: clamp range [%g, %g] is empty; need clamp_min < clamp_max", what,
               (double)cmin, (double)cmax);
      return GG_EINVAL;
    }
    *lo = cmin;
    *hi = cmax;
    return 0;
  default:
    GG_ERROR(TAG, "%s: unknown activation %d", what, (int)act);
    return GG_EINVAL;
  }
}

/* Multiplies sizes, failing on overflow or a zero factor. */
static int mul_sizes(size_t *acc, size_t v) {
  if (v == 0 || *acc > SIZE_MAX / v) return GG_EINVAL;
  *acc *= v;
  return 0;
}

static gg_xnn_op *op_alloc(op_kind kind, const char *name, gg_xnn_threadpool *pool) {
  gg_xnn_op *op = calloc(1, sizeof *op);
  if (!op) return NULL;
  op->kind = kind;
  op->name = name;
  op->pool = pool;
  return op;
}

/* Common tail of every *_new: maps the status, records bytes, hands out op. */
static int op_finish(gg_xnn_op *op, enum xnn_status st, uint64_t mem0, gg_xnn_op **out) {
  int rc = map_status(st, op->name);
  if (rc) {
    if (op->xop) xnn_delete_operator(op->xop);
    free(op);
    return rc;
  }
  uint64_t now = mem_now();
  op->bytes = now > mem0 ? now - mem0 : 0;
  *out = op;
  return 0;
}

#define CHECK_NEW(p, pool, out)                                                \
  do {                                                                         \
    if (!(out)) return GG_EINVAL;                                              \
    *(out) = NULL;                                                             \
    if (!(p)) return GG_EINVAL;                                                \
    int _rc = gg_xnn_init();                                                   \
    if (_rc) return _rc;                                                       \
  } while (0)

int gg_xnn_conv2d_new(const gg_xnn_conv2d_params *p, const float *filter, const float *bias,
                      gg_xnn_threadpool *pool, gg_xnn_op **out) {
  CHECK_NEW(p, pool, out);
  if (!filter) {
    GG_ERROR(TAG, "conv2d: filter is NULL");
    return GG_EINVAL;
  }
  uint32_t groups = p->groups ? p->groups : 1;
  uint32_t sh = p->stride_h ? p->stride_h : 1, sw = p->stride_w ? p->stride_w : 1;
  uint32_t dh = p->dilation_h ? p->dilation_h : 1, dw = p->dilation_w ? p->dilation_w : 1;
  if (!p->batch || !p->in_h || !p->in_w || !p->in_c || !p->out_c || !p->kernel_h ||
      !p->kernel_w || p->in_c % groups || p->out_c % groups) {
    GG_ERROR(TAG, "conv2d: bad shape: input [%zu,%zu,%zu,%zu], kernel %ux%u, out_c %zu, groups %u "
                  "(all must be > 0 and groups must divide in_c and out_c)",
             p->batch, p->in_h, p->in_w, p->in_c, p->kernel_h, p->kernel_w, p->out_c, groups);
    return GG_EINVAL;
  }
  size_t oh = gg_xnn_out_dim(p->in_h, p->kernel_h, sh, dh, p->pad_top, p->pad_bottom);
  size_t ow = gg_xnn_out_dim(p->in_w, p->kernel_w, sw, dw, p->pad_left, p->pad_right);
  size_t out_elems = p->batch;
  if (!oh || !ow || mul_sizes(&out_elems, oh) || mul_sizes(&out_elems, ow) ||
      mul_sizes(&out_elems, p->out_c)) {
    GG_ERROR(TAG, "conv2d: kernel %ux%u (dilation %ux%u) does not fit input %zux%zu with pads "
                  "%u,%u,%u,%u, or the output is too large",
             p->kernel_h, p->kernel_w, dh, dw, p->in_h, p->in_w, p->pad_top, p->pad_left,
             p->pad_bottom, p->pad_right);
    return GG_EINVAL;
  }
  float lo, hi;
  int rc = act_range(p->act, p->clamp_min, p->clamp_max, &lo, &hi, "conv2d");
  if (rc) return rc;

  size_t gin = p->in_c / groups, gout = p->out_c / groups;
  size_t khw = (size_t)p->kernel_h * p->kernel_w;
  int depthwise = groups > 1 && gin == 1;
  uint32_t flags = depthwise ? XNN_FLAG_DEPTHWISE_CONVOLUTION : 0;
  const float *kernel = filter;
  float *packed = NULL;
  if (!depthwise) {
    /* TF HWIO [kh][kw][gin][groups*gout] -> XNNPACK GOHWI. */
    size_t total = khw * gin * p->out_c;
    packed = malloc(total * sizeof *packed);
    if (!packed) return GG_ENOMEM;
    for (size_t g = 0; g < groups; g++)
      for (size_t o = 0; o < gout; o++)
        for (size_t k = 0; k < khw; k++)
          for (size_t i = 0; i < gin; i++)
            packed[((g * gout + o) * khw + k) * gin + i] =
                filter[(k * gin + i) * p->out_c + g * gout + o];
    kernel = packed;
  }
  gg_xnn_op *op = op_alloc(K_CONV, depthwise ? "dwconv2d" : "conv2d", pool);
  if (!op) {
    free(packed);
    return GG_ENOMEM;
  }
  op->n = p->batch;
  op->h = p->in_h;
  op->w = p->in_w;
  op->out_elems = out_elems;
  op->work = (uint64_t)out_elems * khw * gin / 16 + 1;
  uint64_t mem0 = mem_now();
  enum xnn_status st = xnn_create_convolution2d_nhwc_f32(
      p->pad_top, p->pad_right, p->pad_bottom, p->pad_left, p->kernel_h, p->kernel_w, sh, sw, dh,
      dw, groups, gin, gout, p->in_c, p->out_c, kernel, bias, lo, hi, flags, &op->xop);
  free(packed);
  return op_finish(op, st, mem0, out);
}

int gg_xnn_fc_new(const gg_xnn_fc_params *p, const float *weights, const float *bias,
                  gg_xnn_threadpool *pool, gg_xnn_op **out) {
  CHECK_NEW(p, pool, out);
  size_t out_elems = p->rows;
  if (!weights || !p->in_ch || mul_sizes(&out_elems, p->out_ch)) {
    GG_ERROR(TAG, "fc: bad params: rows %zu, in_ch %zu, out_ch %zu, weights %s", p->rows,
             p->in_ch, p->out_ch, weights ? "set" : "NULL");
    return GG_EINVAL;
  }
  float lo, hi;
  int rc = act_range(p->act, p->clamp_min, p->clamp_max, &lo, &hi, "fc");
  if (rc) return rc;
  gg_xnn_op *op = op_alloc(K_FC, "fc", pool);
  if (!op) return GG_ENOMEM;
  op->n = p->rows;
  op->out_elems = out_elems;
  op->work = (uint64_t)out_elems * p->in_ch / 16 + 1;
  uint64_t mem0 = mem_now();
  enum xnn_status st = xnn_create_fully_connected_nc_f32(
      p->in_ch, p->out_ch, p->in_ch, p->out_ch, weights, bias, lo, hi,
      p->transpose_b ? 0 : XNN_FLAG_TRANSPOSE_WEIGHTS, &op->xop);
  return op_finish(op, st, mem0, out);
}

int gg_xnn_deconv2d_new(const gg_xnn_deconv2d_params *p, const float *filter, const float *bias,
                        gg_xnn_threadpool *pool, gg_xnn_op **out) {
  CHECK_NEW(p, pool, out);
  uint32_t groups = p->groups ? p->groups : 1;
  uint32_t sh = p->stride_h ? p->stride_h : 1, sw = p->stride_w ? p->stride_w : 1;
  uint32_t dh = p->dilation_h ? p->dilation_h : 1, dw = p->dilation_w ? p->dilation_w : 1;
  if (!filter || !p->batch || !p->in_h || !p->in_w || !p->in_c || !p->out_c || !p->kernel_h ||
      !p->kernel_w || p->in_c % groups || p->out_c % groups || p->adj_h >= sh || p->adj_w >= sw) {
    GG_ERROR(TAG, "deconv2d: bad params: input [%zu,%zu,%zu,%zu], kernel %ux%u, out_c %zu, "
                  "groups %u, output_padding %u,%u for strides %u,%u (all sizes > 0, groups "
                  "divide the channels, output_padding < stride, filter set)",
             p->batch, p->in_h, p->in_w, p->in_c, p->kernel_h, p->kernel_w, p->out_c, groups,
             p->adj_h, p->adj_w, sh, sw);
    return GG_EINVAL;
  }
  /* Full output size minus the crop; must stay positive. */
  int64_t oh = (int64_t)(p->in_h - 1) * sh + (int64_t)(p->kernel_h - 1) * dh + 1 + p->adj_h -
               p->pad_top - p->pad_bottom;
  int64_t ow = (int64_t)(p->in_w - 1) * sw + (int64_t)(p->kernel_w - 1) * dw + 1 + p->adj_w -
               p->pad_left - p->pad_right;
  size_t out_elems = p->batch;
  if (oh < 1 || ow < 1 || mul_sizes(&out_elems, (size_t)oh) ||
      mul_sizes(&out_elems, (size_t)ow) || mul_sizes(&out_elems, p->out_c)) {
    GG_ERROR(TAG, "deconv2d: pads %u,%u,%u,%u leave no output of input %zux%zu, or it is too large",
             p->pad_top, p->pad_bottom, p->pad_left, p->pad_right, p->in_h, p->in_w);
    return GG_EINVAL;
  }
  float lo, hi;
  int rc = act_range(p->act, p->clamp_min, p->clamp_max, &lo, &hi, "deconv2d");
  if (rc) return rc;
  size_t gin = p->in_c / groups, gout = p->out_c / groups, khw = (size_t)p->kernel_h * p->kernel_w;
  /* HWOI [kh][kw][gout][in_c] -> XNNPACK GOKI [g][gout][kh][kw][gin]. */
  float *packed = malloc(khw * gout * p->in_c * sizeof *packed);
  if (!packed) return GG_ENOMEM;
  for (size_t g = 0; g < groups; g++)
    for (size_t o = 0; o < gout; o++)
      for (size_t k = 0; k < khw; k++)
        for (size_t i = 0; i < gin; i++)
          packed[((g * gout + o) * khw + k) * gin + i] = filter[(k * gout + o) * p->in_c + g * gin + i];
  gg_xnn_op *op = op_alloc(K_DECONV, "deconv2d", pool);
  if (!op) {
    free(packed);
    return GG_ENOMEM;
  }
  op->n = p->batch, op->h = p->in_h, op->w = p->in_w;
  op->adj_h = p->adj_h, op->adj_w = p->adj_w;
  op->out_elems = out_elems;
  uint64_t mem0 = mem_now();
  enum xnn_status st = xnn_create_deconvolution2d_nhwc_f32(
      p->pad_top, p->pad_right, p->pad_bottom, p->pad_left, p->kernel_h, p->kernel_w, sh, sw, dh,
      dw, groups, gin, gout, p->in_c, p->out_c, packed, bias, lo, hi, 0, &op->xop);
  free(packed);
  return op_finish(op, st, mem0, out);
}

static int pool2d_new(const gg_xnn_pool2d_params *p, int is_max, gg_xnn_threadpool *pool,
                      gg_xnn_op **out) {
  CHECK_NEW(p, pool, out);
  const char *name = is_max ? "max_pool2d" : "avg_pool2d";
  uint32_t sh = p->stride_h ? p->stride_h : 1, sw = p->stride_w ? p->stride_w : 1;
  size_t oh = gg_xnn_out_dim(p->in_h, p->kernel_h, sh, 1, p->pad_top, p->pad_bottom);
  size_t ow = gg_xnn_out_dim(p->in_w, p->kernel_w, sw, 1, p->pad_left, p->pad_right);
  size_t out_elems = p->batch;
  if (!p->in_h || !p->in_w || !oh || !ow || mul_sizes(&out_elems, oh) ||
      mul_sizes(&out_elems, ow) || mul_sizes(&out_elems, p->channels)) {
    GG_ERROR(TAG, "%s: bad shape: input [%zu,%zu,%zu,%zu], window %ux%u, pads %u,%u,%u,%u", name,
             p->batch, p->in_h, p->in_w, p->channels, p->kernel_h, p->kernel_w, p->pad_top,
             p->pad_left, p->pad_bottom, p->pad_right);
    return GG_EINVAL;
  }
  float lo, hi;
  int rc = act_range(p->act, p->clamp_min, p->clamp_max, &lo, &hi, name);
  if (rc) return rc;
  gg_xnn_op *op = op_alloc(is_max ? K_MAXPOOL : K_AVGPOOL, name, pool);
  if (!op) return GG_ENOMEM;
  op->n = p->batch;
  op->h = p->in_h;
  op->w = p->in_w;
  op->out_elems = out_elems;
  uint64_t mem0 = mem_now();
  enum xnn_status st;
  if (is_max)
    st = xnn_create_max_pooling2d_nhwc_f32(p->pad_top, p->pad_right, p->pad_bottom, p->pad_left,
                                           p->kernel_h, p->kernel_w, sh, sw, 1, 1, p->channels,
                                           p->channels, p->channels, lo, hi, 0, &op->xop);
  else
    st = xnn_create_average_pooling2d_nhwc_f32(p->pad_top, p->pad_right, p->pad_bottom,
                                               p->pad_left, p->kernel_h, p->kernel_w, sh, sw,
                                               p->channels, p->channels, p->channels, lo, hi, 0,
                                               &op->xop);
  return op_finish(op, st, mem0, out);
}

int gg_xnn_max_pool2d_new(const gg_xnn_pool2d_params *p, gg_xnn_threadpool *pool,
                          gg_xnn_op **out) {
  return pool2d_new(p, 1, pool, out);
}

int gg_xnn_avg_pool2d_new(const gg_xnn_pool2d_params *p, gg_xnn_threadpool *pool,
                          gg_xnn_op **out) {
  return pool2d_new(p, 0, pool, out);
}

int gg_xnn_global_avg_pool_new(size_t batch, size_t hw, size_t channels,
                               gg_xnn_threadpool *pool, gg_xnn_op **out) {
  if (!out) return GG_EINVAL;
  *out = NULL;
  int rc = gg_xnn_init();
  if (rc) return rc;
  size_t out_elems = batch;
  if (!hw || mul_sizes(&out_elems, channels)) {
    GG_ERROR(TAG, "global_avg_pool: bad shape [%zu,%zu,%zu]", batch, hw, channels);
    return GG_EINVAL;
  }
  gg_xnn_op *op = op_alloc(K_GAP, "global_avg_pool", pool);
  if (!op) return GG_ENOMEM;
  op->n = batch;
  op->w = hw;
  op->out_elems = out_elems;
  uint64_t mem0 = mem_now();
  enum xnn_status st = xnn_create_global_average_pooling_nwc_f32(
      channels, channels, channels, -INFINITY, INFINITY, 0, &op->xop);
  return op_finish(op, st, mem0, out);
}

static const char *const k_binary_names[GG_XNN_BINARY_COUNT] = {
    "add", "sub", "mul", "div", "max", "min", "sqdiff"};

int gg_xnn_binary_new(const gg_xnn_binary_params *p, gg_xnn_threadpool *pool, gg_xnn_op **out) {
  CHECK_NEW(p, pool, out);
  if ((unsigned)p->op >= GG_XNN_BINARY_COUNT || p->a_ndim > GG_XNN_MAX_DIMS ||
      p->b_ndim > GG_XNN_MAX_DIMS) {
    GG_ERROR(TAG, "binary: bad op %d or rank (a %zu, b %zu; at most %d dims)", (int)p->op,
             p->a_ndim, p->b_ndim, GG_XNN_MAX_DIMS);
    return GG_EINVAL;
  }
  const char *name = k_binary_names[p->op];
  /* Broadcast shape, aligned at the right. */
  size_t nd = p->a_ndim > p->b_ndim ? p->a_ndim : p->b_ndim;
  size_t out_elems = 1;
  for (size_t i = 0; i < nd; i++) {
    size_t da = i < p->a_ndim ? p->a_shape[p->a_ndim - 1 - i] : 1;
    size_t db = i < p->b_ndim ? p->b_shape[p->b_ndim - 1 - i] : 1;
    if (da != db && da != 1 && db != 1) {
      GG_ERROR(TAG, "%s: shapes do not broadcast: dim -%zu is %zu vs %zu", name, i + 1, da, db);
      return GG_EINVAL;
    }
    if (mul_sizes(&out_elems, da > db ? da : db)) {
      GG_ERROR(TAG, "%s: zero-sized or overflowing shape", name);
      return GG_EINVAL;
    }
  }
  float lo = -INFINITY, hi = INFINITY;
  int rc = act_range(p->act, p->clamp_min, p->clamp_max, &lo, &hi, name);
  if (rc) return rc;
  int fusable = p->op == GG_XNN_ADD || p->op == GG_XNN_SUB || p->op == GG_XNN_MUL ||
                p->op == GG_XNN_DIV;
  if (p->act != GG_XNN_ACT_NONE && !fusable) {
    GG_ERROR(TAG, "%s: a fused activation is only supported for add, sub, mul, div", name);
    return GG_EINVAL;
  }
  gg_xnn_op *op = op_alloc(K_BINARY, name, pool);
  if (!op) return GG_ENOMEM;
  op->binop = p->op;
  op->ndim_a = p->a_ndim;
  op->ndim_b = p->b_ndim;
  memcpy(op->shape_a, p->a_shape, sizeof op->shape_a);
  memcpy(op->shape_b, p->b_shape, sizeof op->shape_b);
  op->out_elems = out_elems;
  uint64_t mem0 = mem_now();
  enum xnn_status st;
  switch (p->op) {
  case GG_XNN_ADD: st = xnn_create_add_nd_f32(lo, hi, 0, &op->xop); break;
  case GG_XNN_SUB: st = xnn_create_subtract_nd_f32(lo, hi, 0, &op->xop); break;
  case GG_XNN_MUL: st = xnn_create_multiply_nd_f32(lo, hi, 0, &op->xop); break;
  case GG_XNN_DIV: st = xnn_create_divide_nd_f32(lo, hi, 0, &op->xop); break;
  case GG_XNN_MAX: st = xnn_create_maximum_nd_f32(0, &op->xop); break;
  case GG_XNN_MIN: st = xnn_create_minimum_nd_f32(0, &op->xop); break;
  case GG_XNN_SQDIFF: st = xnn_create_squared_difference_nd_f32(0, &op->xop); break;
  default: st = xnn_status_invalid_parameter; break;
  }
  return op_finish(op, st, mem0, out);
}

static const char *const k_unary_names[GG_XNN_UNARY_COUNT] = {
    "copy", "relu", "relu6", "clamp", "leaky_relu", "elu", "sigmoid", "abs",
    "neg",  "square", "sqrt", "floor", "ceil", "round", "hardswish"};

int gg_xnn_unary_new(const gg_xnn_unary_params *p, gg_xnn_threadpool *pool, gg_xnn_op **out) {
  CHECK_NEW(p, pool, out);
  if ((unsigned)p->op >= GG_XNN_UNARY_COUNT || !p->count) {
    GG_ERROR(TAG, "unary: bad op %d or count %zu", (int)p->op, p->count);
    return GG_EINVAL;
  }
  const char *name = k_unary_names[p->op];
  if (p->op == GG_XNN_CLAMP && !(p->clamp_min <= p->clamp_max)) {
    GG_ERROR(TAG, "clamp: clamp_min %g > clamp_max %g", (double)p->clamp_min,
             (double)p->clamp_max);
    return GG_EINVAL;
  }
  gg_xnn_op *op = op_alloc(K_UNARY, name, pool);
  if (!op) return GG_ENOMEM;
  op->unop = p->op;
  op->n = p->count;
  op->out_elems = p->count;
  uint64_t mem0 = mem_now();
  enum xnn_status st;
  xnn_operator_t *x = &op->xop;
  switch (p->op) {
  case GG_XNN_COPY: st = xnn_create_copy_nc_x32(1, 1, 1, 0, x); break;
  case GG_XNN_RELU: st = xnn_create_clamp_nc_f32(1, 1, 1, 0.0f, INFINITY, 0, x); break;
  case GG_XNN_RELU6: st = xnn_create_clamp_nc_f32(1, 1, 1, 0.0f, 6.0f, 0, x); break;
  case GG_XNN_CLAMP:
    st = xnn_create_clamp_nc_f32(1, 1, 1, p->clamp_min, p->clamp_max, 0, x);
    break;
  case GG_XNN_LEAKY_RELU: st = xnn_create_leaky_relu_nc_f32(1, 1, 1, p->alpha, 0, x); break;
  case GG_XNN_ELU: st = xnn_create_elu_nc_f32(1, 1, 1, p->alpha, 0, x); break;
  case GG_XNN_SIGMOID: st = xnn_create_sigmoid_nc_f32(1, 1, 1, 0, x); break;
  case GG_XNN_ABS: st = xnn_create_abs_nc_f32(1, 1, 1, 0, x); break;
  case GG_XNN_NEG: st = xnn_create_negate_nc_f32(1, 1, 1, 0, x); break;
  case GG_XNN_SQUARE: st = xnn_create_square_nc_f32(1, 1, 1, 0, x); break;
  case GG_XNN_SQRT: st = xnn_create_square_root_nc_f32(1, 1, 1, 0, x); break;
  case GG_XNN_FLOOR: st = xnn_create_floor_nc_f32(1, 1, 1, 0, x); break;
  case GG_XNN_CEIL: st = xnn_create_ceiling_nc_f32(1, 1, 1, 0, x); break;
  case GG_XNN_ROUND: st = xnn_create_bankers_rounding_nc_f32(1, 1, 1, 0, x); break;
  case GG_XNN_HARDSWISH: st = xnn_create_hardswish_nc_f32(1, 1, 1, 0, x); break;
  default: st = xnn_status_invalid_parameter; break;
  }
  return op_finish(op, st, mem0, out);
}

int gg_xnn_copy_strided_new(size_t rows, size_t channels, size_t in_stride, size_t out_stride,
                            gg_xnn_threadpool *pool, gg_xnn_op **out) {
  if (!out) return GG_EINVAL;
  *out = NULL;
  int rc = gg_xnn_init();
  if (rc) return rc;
  size_t out_elems = rows;
  if (!channels || in_stride < channels || out_stride < channels ||
      mul_sizes(&out_elems, out_stride)) {
    GG_ERROR(TAG, "copy: bad shape: %zu rows of %zu channels, strides in %zu out %zu (need "
                  "strides >= channels)", rows, channels, in_stride, out_stride);
    return GG_EINVAL;
  }
  gg_xnn_op *op = op_alloc(K_UNARY, "copy_strided", pool);
  if (!op) return GG_ENOMEM;
  op->unop = GG_XNN_COPY;
  op->n = rows;
  op->out_elems = rows * channels;
  uint64_t mem0 = mem_now();
  enum xnn_status st = xnn_create_copy_nc_x32(channels, in_stride, out_stride, 0, &op->xop);
  return op_finish(op, st, mem0, out);
}

int gg_xnn_softmax_new(size_t rows, size_t channels, gg_xnn_threadpool *pool, gg_xnn_op **out) {
  if (!out) return GG_EINVAL;
  *out = NULL;
  int rc = gg_xnn_init();
  if (rc) return rc;
  size_t out_elems = rows;
  if (mul_sizes(&out_elems, channels)) {
    GG_ERROR(TAG, "softmax: bad shape [%zu,%zu]", rows, channels);
    return GG_EINVAL;
  }
  gg_xnn_op *op = op_alloc(K_SOFTMAX, "softmax", pool);
  if (!op) return GG_ENOMEM;
  op->n = rows;
  op->out_elems = out_elems;
  uint64_t mem0 = mem_now();
  enum xnn_status st = xnn_create_softmax_nc_f32(channels, channels, channels, 0, &op->xop);
  return op_finish(op, st, mem0, out);
}

int gg_xnn_prelu_new(size_t rows, size_t channels, const float *alpha, gg_xnn_threadpool *pool,
                     gg_xnn_op **out) {
  if (!out) return GG_EINVAL;
  *out = NULL;
  int rc = gg_xnn_init();
  if (rc) return rc;
  size_t out_elems = rows;
  if (!alpha || mul_sizes(&out_elems, channels)) {
    GG_ERROR(TAG, "prelu: bad shape [%zu,%zu] or NULL alpha", rows, channels);
    return GG_EINVAL;
  }
  gg_xnn_op *op = op_alloc(K_PRELU, "prelu", pool);
  if (!op) return GG_ENOMEM;
  op->n = rows;
  op->out_elems = out_elems;
  uint64_t mem0 = mem_now();
  enum xnn_status st =
      xnn_create_prelu_nc_f32(channels, channels, channels, alpha, 0, &op->xop);
  return op_finish(op, st, mem0, out);
}

int gg_xnn_resize_bilinear_new(const gg_xnn_resize_params *p, gg_xnn_threadpool *pool,
                               gg_xnn_op **out) {
  CHECK_NEW(p, pool, out);
  size_t out_elems = p->batch;
  if (!p->in_h || !p->in_w || mul_sizes(&out_elems, p->out_h) ||
      mul_sizes(&out_elems, p->out_w) || mul_sizes(&out_elems, p->channels)) {
    GG_ERROR(TAG, "resize_bilinear: bad shape [%zu,%zu,%zu,%zu] -> %zux%zu", p->batch, p->in_h,
             p->in_w, p->channels, p->out_h, p->out_w);
    return GG_EINVAL;
  }
  if (p->align_corners && p->half_pixel_centers) {
    GG_ERROR(TAG, "resize_bilinear: align_corners and half_pixel_centers cannot both be set");
    return GG_EINVAL;
  }
  uint32_t flags = p->align_corners        ? XNN_FLAG_ALIGN_CORNERS
                   : p->half_pixel_centers ? 0
                                           : XNN_FLAG_TENSORFLOW_LEGACY_MODE;
  gg_xnn_op *op = op_alloc(K_RESIZE, "resize_bilinear", pool);
  if (!op) return GG_ENOMEM;
  op->n = p->batch;
  op->h = p->in_h;
  op->w = p->in_w;
  op->oh = p->out_h;
  op->ow = p->out_w;
  op->out_elems = out_elems;
  uint64_t mem0 = mem_now();
  enum xnn_status st = xnn_create_resize_bilinear2d_nhwc_f32(p->channels, p->channels,
                                                             p->channels, flags, &op->xop);
  return op_finish(op, st, mem0, out);
}

int gg_xnn_pad_new(size_t ndim, const size_t *shape, const size_t *pre, const size_t *post,
                   float value, gg_xnn_threadpool *pool, gg_xnn_op **out) {
  if (!out) return GG_EINVAL;
  *out = NULL;
  int rc = gg_xnn_init();
  if (rc) return rc;
  if (!ndim || ndim > GG_XNN_MAX_DIMS || !shape || !pre || !post) {
    GG_ERROR(TAG, "pad: bad rank %zu (1..%d) or NULL shape/pads", ndim, GG_XNN_MAX_DIMS);
    return GG_EINVAL;
  }
  size_t out_elems = 1;
  for (size_t i = 0; i < ndim; i++) {
    if (!shape[i] || pre[i] > SIZE_MAX / 4 || post[i] > SIZE_MAX / 4 || shape[i] > SIZE_MAX / 4 ||
        mul_sizes(&out_elems, shape[i] + pre[i] + post[i])) {
      GG_ERROR(TAG, "pad: bad dim %zu: size %zu, pads %zu/%zu", i, shape[i], pre[i], post[i]);
      return GG_EINVAL;
    }
  }
  gg_xnn_op *op = op_alloc(K_PAD, "pad", pool);
  if (!op) return GG_ENOMEM;
  op->ndim_a = ndim;
  memcpy(op->shape_a, shape, ndim * sizeof *shape);
  memcpy(op->pre, pre, ndim * sizeof *pre);
  memcpy(op->post, post, ndim * sizeof *post);
  op->out_elems = out_elems;
  uint64_t mem0 = mem_now();
  uint32_t bits;
  memcpy(&bits, &value, sizeof bits);
  enum xnn_status st = xnn_create_constant_pad_nd_x32(&bits, 0, &op->xop);
  return op_finish(op, st, mem0, out);
}

int gg_xnn_op_bind(gg_xnn_op *op, const float *a, const float *b, float *out) {
  if (!op || !a || !out || (op->kind == K_BINARY) != (b != NULL)) {
    GG_ERROR(TAG, "%s: bind needs input a and out%s", op ? op->name : "?",
             op && op->kind == K_BINARY ? " and input b" : " (and b NULL)");
    return GG_EINVAL;
  }
  pthreadpool_t tp = tp_for(op); /* the run may still choose the caller's thread */
  uint64_t mem0 = mem_now();
  enum xnn_status st;
  switch (op->kind) {
  case K_CONV:
    st = xnn_setup_convolution2d_nhwc_f32(op->xop, op->n, op->h, op->w, a, out, tp);
    break;
  case K_FC: st = xnn_setup_fully_connected_nc_f32(op->xop, op->n, a, out, tp); break;
  case K_DECONV:
    st = xnn_setup_deconvolution2d_nhwc_f32(op->xop, op->n, op->h, op->w, op->adj_h, op->adj_w, a,
                                            out, tp);
    break;
  case K_MAXPOOL:
    st = xnn_setup_max_pooling2d_nhwc_f32(op->xop, op->n, op->h, op->w, a, out, tp);
    break;
  case K_AVGPOOL:
    st = xnn_setup_average_pooling2d_nhwc_f32(op->xop, op->n, op->h, op->w, a, out, tp);
    break;
  case K_GAP:
    st = xnn_setup_global_average_pooling_nwc_f32(op->xop, op->n, op->w, a, out, tp);
    break;
  case K_BINARY: {
    /* XNNPACK wants rank >= 1: treat a scalar as shape {1}. */
    static const size_t one[1] = {1};
    size_t na = op->ndim_a ? op->ndim_a : 1, nb = op->ndim_b ? op->ndim_b : 1;
    const size_t *sa = op->ndim_a ? op->shape_a : one, *sb = op->ndim_b ? op->shape_b : one;
    switch (op->binop) {
    case GG_XNN_ADD: st = xnn_setup_add_nd_f32(op->xop, na, sa, nb, sb, a, b, out, tp); break;
    case GG_XNN_SUB:
      st = xnn_setup_subtract_nd_f32(op->xop, na, sa, nb, sb, a, b, out, tp);
      break;
    case GG_XNN_MUL:
      st = xnn_setup_multiply_nd_f32(op->xop, na, sa, nb, sb, a, b, out, tp);
      break;
    case GG_XNN_DIV: st = xnn_setup_divide_nd_f32(op->xop, na, sa, nb, sb, a, b, out, tp); break;
    case GG_XNN_MAX:
      st = xnn_setup_maximum_nd_f32(op->xop, na, sa, nb, sb, a, b, out, tp);
      break;
    case GG_XNN_MIN:
      st = xnn_setup_minimum_nd_f32(op->xop, na, sa, nb, sb, a, b, out, tp);
      break;
    case GG_XNN_SQDIFF:
      st = xnn_setup_squared_difference_nd_f32(op->xop, na, sa, nb, sb, a, b, out, tp);
      break;
    default: st = xnn_status_invalid_parameter; break;
    }
    break;
  }
  case K_UNARY: {
    size_t n = op->n;
    switch (op->unop) {
    case GG_XNN_COPY: st = xnn_setup_copy_nc_x32(op->xop, n, a, out, tp); break;
    case GG_XNN_RELU:
    case GG_XNN_RELU6:
    case GG_XNN_CLAMP: st = xnn_setup_clamp_nc_f32(op->xop, n, a, out, tp); break;
    case GG_XNN_LEAKY_RELU: st = xnn_setup_leaky_relu_nc_f32(op->xop, n, a, out, tp); break;
    case GG_XNN_ELU: st = xnn_setup_elu_nc_f32(op->xop, n, a, out, tp); break;
    case GG_XNN_SIGMOID: st = xnn_setup_sigmoid_nc_f32(op->xop, n, a, out, tp); break;
    case GG_XNN_ABS: st = xnn_setup_abs_nc_f32(op->xop, n, a, out, tp); break;
    case GG_XNN_NEG: st = xnn_setup_negate_nc_f32(op->xop, n, a, out, tp); break;
    case GG_XNN_SQUARE: st = xnn_setup_square_nc_f32(op->xop, n, a, out, tp); break;
    case GG_XNN_SQRT: st = xnn_setup_square_root_nc_f32(op->xop, n, a, out, tp); break;
    case GG_XNN_FLOOR: st = xnn_setup_floor_nc_f32(op->xop, n, a, out, tp); break;
    case GG_XNN_CEIL: st = xnn_setup_ceiling_nc_f32(op->xop, n, a, out, tp); break;
    case GG_XNN_ROUND: st = xnn_setup_bankers_rounding_nc_f32(op->xop, n, a, out, tp); break;
    case GG_XNN_HARDSWISH: st = xnn_setup_hardswish_nc_f32(op->xop, n, a, out, tp); break;
    default: st = xnn_status_invalid_parameter; break;
    }
    break;
  }
  case K_SOFTMAX: st = xnn_setup_softmax_nc_f32(op->xop, op->n, a, out, tp); break;
  case K_PRELU: st = xnn_setup_prelu_nc_f32(op->xop, op->n, a, out, tp); break;
  case K_RESIZE:
    st = xnn_setup_resize_bilinear2d_nhwc_f32(op->xop, op->n, op->h, op->w, op->oh, op->ow, a,
                                              out, tp);
    break;
  case K_PAD:
    st = xnn_setup_constant_pad_nd_x32(op->xop, op->ndim_a, op->shape_a, op->pre, op->post, a,
                                       out, tp);
    break;
  default: st = xnn_status_invalid_state; break;
  }
  int rc = map_status(st, op->name);
  if (rc) {
    op->bound = 0;
    return rc;
  }
  uint64_t now = mem_now();
  if (now > mem0) {
    op->bind_bytes += now - mem0;
    op->bytes += now - mem0;
  }
  op->bound = 1;
  return 0;
}

int gg_xnn_op_run(gg_xnn_op *op) {
  if (!op) return GG_EINVAL;
  if (!op->bound) {
    GG_ERROR(TAG, "%s: run before a successful gg_xnn_op_bind", op->name);
    return GG_ESTATE;
  }
  pthreadpool_t tp = tp_for(op);
  if (!tp) return map_status(xnn_run_operator(op->xop, NULL), op->name);
  /* A fork-join of the pool waits for every worker to check in, even one
   * that has no work left; when another process holds a worker's core that
   * is a scheduler time slice per op (PP-OCR det at 2 threads on a loaded
   * 2-core machine: 1072 ms median against 147 ms min). So each op times
   * both ways (smoothed) and runs the faster, trying the other way every
   * 32nd run to notice the load changing (on a quiet machine that probe
   * costs ~1.5 % at 2 threads). Same results either way: XNNPACK's tiles
   * do not depend on the thread count. */
  int alone = op->runs < 2                ? (int)op->runs
              : (op->runs & 31) == 31     ? op->ns_pool <= op->ns_alone
                                          : op->ns_alone < op->ns_pool;
  uint64_t t0 = now_ns();
  int rc = map_status(xnn_run_operator(op->xop, alone ? NULL : tp), op->name);
  uint64_t dt = now_ns() - t0, *avg = alone ? &op->ns_alone : &op->ns_pool;
  *avg = *avg ? (*avg + dt) / 2 : dt;
  op->runs++;
  return rc;
}

size_t gg_xnn_op_out_elems(const gg_xnn_op *op) { return op ? op->out_elems : 0; }
uint64_t gg_xnn_op_bytes(const gg_xnn_op *op) { return op ? op->bytes : 0; }
const char *gg_xnn_op_name(const gg_xnn_op *op) { return op ? op->name : "?"; }

void gg_xnn_op_free(gg_xnn_op *op) {
  if (!op) return;
  if (op->xop) xnn_delete_operator(op->xop);
  free(op);
}

#else /* !GG_HAVE_XNNPACK: stubs so the engine builds and falls back. */

int gg_xnn_available(void) { return 0; }
int gg_xnn_init(void) { return GG_ENOTIMPL; }
void gg_xnn_mem_stats(uint64_t *in_use, uint64_t *peak) {
  if (in_use) *in_use = 0;
  if (peak) *peak = 0;
}
int gg_xnn_threadpool_new(int threads, gg_xnn_threadpool **out) {
  if (out) *out = NULL;
  return GG_ENOTIMPL;
}
void gg_xnn_threadpool_free(gg_xnn_threadpool *pool) { (void)pool; }
int gg_xnn_threadpool_threads(const gg_xnn_threadpool *pool) { return 1; }
struct pthreadpool *gg_xnn_threadpool_get(const gg_xnn_threadpool *pool) { return NULL; }
void gg_xnn_threadpool_rest(gg_xnn_threadpool *pool) { (void)pool; }
#define STUB_NEW(out)                                                          \
  do {                                                                         \
    if (out) *(out) = NULL;                                                    \
    return GG_ENOTIMPL;                                                        \
  } while (0)
int gg_xnn_conv2d_new(const gg_xnn_conv2d_params *p, const float *filter, const float *bias,
                      gg_xnn_threadpool *pool, gg_xnn_op **out) {
  STUB_NEW(out);
}
int gg_xnn_fc_new(const gg_xnn_fc_params *p, const float *weights, const float *bias,
                  gg_xnn_threadpool *pool, gg_xnn_op **out) {
  STUB_NEW(out);
}
int gg_xnn_max_pool2d_new(const gg_xnn_pool2d_params *p, gg_xnn_threadpool *pool,
                          gg_xnn_op **out) {
  STUB_NEW(out);
}
int gg_xnn_avg_pool2d_new(const gg_xnn_pool2d_params *p, gg_xnn_threadpool *pool,
                          gg_xnn_op **out) {
  STUB_NEW(out);
}
int gg_xnn_global_avg_pool_new(size_t batch, size_t hw, size_t channels,
                               gg_xnn_threadpool *pool, gg_xnn_op **out) {
  STUB_NEW(out);
}
int gg_xnn_binary_new(const gg_xnn_binary_params *p, gg_xnn_threadpool *pool, gg_xnn_op **out) {
  STUB_NEW(out);
}
int gg_xnn_unary_new(const gg_xnn_unary_params *p, gg_xnn_threadpool *pool, gg_xnn_op **out) {
  STUB_NEW(out);
}
int gg_xnn_softmax_new(size_t rows, size_t channels, gg_xnn_threadpool *pool, gg_xnn_op **out) {
  STUB_NEW(out);
}
int gg_xnn_prelu_new(size_t rows, size_t channels, const float *alpha, gg_xnn_threadpool *pool,
                     gg_xnn_op **out) {
  STUB_NEW(out);
}
int gg_xnn_copy_strided_new(size_t rows, size_t channels, size_t in_stride, size_t out_stride,
                            gg_xnn_threadpool *pool, gg_xnn_op **out) {
  STUB_NEW(out);
}
int gg_xnn_resize_bilinear_new(const gg_xnn_resize_params *p, gg_xnn_threadpool *pool,
                               gg_xnn_op **out) {
  STUB_NEW(out);
}
int gg_xnn_pad_new(size_t ndim, const size_t *shape, const size_t *pre, const size_t *post,
                   float value, gg_xnn_threadpool *pool, gg_xnn_op **out) {
  STUB_NEW(out);
}
int gg_xnn_deconv2d_new(const gg_xnn_deconv2d_params *p, const float *filter, const float *bias,
                        gg_xnn_threadpool *pool, gg_xnn_op **out) {
  STUB_NEW(out);
}
int gg_xnn_op_bind(gg_xnn_op *op, const float *a, const float *b, float *out) {
  return GG_ENOTIMPL;
}
int gg_xnn_op_run(gg_xnn_op *op) { return GG_ENOTIMPL; }
size_t gg_xnn_op_out_elems(const gg_xnn_op *op) { return 0; }
uint64_t gg_xnn_op_bytes(const gg_xnn_op *op) { return 0; }
const char *gg_xnn_op_name(const gg_xnn_op *op) { return "?"; }
void gg_xnn_op_free(gg_xnn_op *op) { (void)op; }

#endif
