/* Thin, IR-independent C wrappers over XNNPACK operators for the CPU engine.
 *
 * Life cycle (nothing is allocated on the hot path):
 *
 *   gg_xnn_init();                                  once per process (idempotent)
 *   gg_xnn_threadpool_new(threads, &pool);          once, shared by all ops
 *   gg_xnn_conv2d_new(&params, filter, bias, pool, &op);
 *                                                   once per model + input shape;
 *                                                   weights are packed (copied),
 *                                                   the caller may free them
 *   gg_xnn_op_bind(op, in, NULL, out);              once, when the arena is
 *                                                   placed (call again only if a
 *                                                   pointer changes)
 *   gg_xnn_op_run(op);                              per request; allocates nothing
 *   gg_xnn_op_free(op); gg_xnn_threadpool_free(pool);
 *
 * All tensors are float32, dense, row-major, NHWC where 4D (as TensorFlow.js
 * models store them). XNNPACK may READ (never write) up to
 * GG_XNN_EXTRA_BYTES past the end of any input array: the arena and every
 * constant passed to bind must have that much readable slack after each
 * tensor (simplest: add GG_XNN_EXTRA_BYTES to the arena size and to each
 * constant's allocation).
 *
 * Activations: every params struct with an `act` field fuses an output clamp
 * into the op. A zero-initialised struct means no activation.
 *
 * Threading: an op may run on one thread at a time. All ops created with a
 * pool must be bound and run with that pool (they keep a pointer to it), so
 * the pool must outlive them. threads <= 1 runs on the caller's thread.
 *
 * Without XNNPACK in the build (GG_HAVE_XNNPACK undefined) every function
 * except gg_xnn_available() returns GG_ENOTIMPL and the engine must use its
 * own kernels. */
#ifndef GG_ENGINE_XNN_H
#define GG_ENGINE_XNN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bytes XNNPACK may read past the end of an input array (XNN_EXTRA_BYTES). */
#define GG_XNN_EXTRA_BYTES 16
/* Most dimensions a binary-op or pad shape may have (XNN_MAX_TENSOR_DIMS). */
#define GG_XNN_MAX_DIMS 6

typedef struct gg_xnn_threadpool gg_xnn_threadpool;
typedef struct gg_xnn_op gg_xnn_op;

/* Fused output activation. RELU = clamp to [0, +inf), RELU6 = [0, 6],
 * CLAMP = [clamp_min, clamp_max] from the params struct. */
typedef enum gg_xnn_act {
  GG_XNN_ACT_NONE = 0,
  GG_XNN_ACT_RELU,
  GG_XNN_ACT_RELU6,
  GG_XNN_ACT_CLAMP,
  GG_XNN_ACT_COUNT
} gg_xnn_act;

/* 1 if this build links XNNPACK (GG_HAVE_XNNPACK), else 0. Never fails. */
int gg_xnn_available(void);

/* Initialises XNNPACK once per process with a counting allocator (see
 * gg_xnn_mem_stats). Thread-safe and idempotent; the *_new functions call it
 * themselves. Returns 0, GG_ENOTIMPL (not built) or GG_EUNSUPPORTED (CPU
 * lacks what XNNPACK needs). */
int gg_xnn_init(void);

/* Bytes XNNPACK holds right now (packed weights, indirection buffers,
 * operator structs, all ops together) and the most it ever held. Either
 * pointer may be NULL. Zero before init or without XNNPACK. */
void gg_xnn_mem_stats(uint64_t *in_use, uint64_t *peak);

/* Creates a pool that runs ops on `threads` threads in total (the caller's
 * thread counts as one). threads <= 1 gives a pool that runs on the caller
 * only (no worker threads). *out owned by the caller: gg_xnn_threadpool_free.
 * Returns 0, GG_EINVAL (out NULL), GG_ENOMEM, GG_ENOTIMPL. */
int gg_xnn_threadpool_new(int threads, gg_xnn_threadpool **out);
/* Frees a pool; NULL is a no-op. All ops using it must be freed first. */
void gg_xnn_threadpool_free(gg_xnn_threadpool *pool);
/* Threads the pool runs ops on (>= 1); 1 for NULL. */
int gg_xnn_threadpool_threads(const gg_xnn_threadpool *pool);
/* Puts the pool's worker threads to sleep until the next parallel op (they
 * spin-wait between ops otherwise, taking a core from the other processes
 * on the machine and from the caller's own serial ops). Call at the end of
 * a run. No-op for NULL or a 1-thread pool. */
void gg_xnn_threadpool_rest(gg_xnn_threadpool *pool);
/* The underlying pthreadpool (borrowed; NULL for a 1-thread pool, a NULL
 * pool or a build without XNNPACK), so the engine's own kernels can run on
 * the same worker threads instead of a second pool competing for the cores. */
struct pthreadpool *gg_xnn_threadpool_get(const gg_xnn_threadpool *pool);

/* ---------------------------------------------------------------- shapes */

/* Output size of a convolution/pool along one axis for explicit pads:
 * (in + pad0 + pad1 - ((k - 1) * dilation + 1)) / stride + 1, or 0 when
 * the window does not fit. stride/dilation 0 are treated as 1. */
size_t gg_xnn_out_dim(size_t in, uint32_t k, uint32_t stride, uint32_t dilation,
                      uint32_t pad0, uint32_t pad1);
/* TensorFlow "SAME" padding along one axis: out = ceil(in / stride),
 * total = max(0, (out - 1) * stride + (k - 1) * dilation + 1 - in),
 * *pad0 (top/left) = total / 2, *pad1 (bottom/right) = total - total / 2. */
void gg_xnn_same_pads(size_t in, uint32_t k, uint32_t stride, uint32_t dilation,
                      uint32_t *pad0, uint32_t *pad1);

/* ---------------------------------------------------------------- convolution */

/* 2D convolution, NHWC in and out, optional bias and fused activation.
 *   input  [batch][in_h][in_w][in_c]
 *   filter [kernel_h][kernel_w][in_c / groups][out_c]   (TensorFlow Conv2D
 *          HWIO; a TF DepthwiseConv2dNative filter [kh][kw][C][M] is the same
 *          memory with groups = C, out_c = C * M)
 *   bias   [out_c] or NULL
 *   output [batch][out_h][out_w][out_c], out_h = gg_xnn_out_dim(in_h,
 *          kernel_h, stride_h, dilation_h, pad_top, pad_bottom), same for w.
 * groups 0 or 1: ordinary conv; groups == in_c: depthwise (channel
 * multiplier out_c / in_c); anything dividing in_c and out_c: grouped. Pads are
 * explicit: for TF SAME call gg_xnn_same_pads per axis, for VALID use 0. */
typedef struct gg_xnn_conv2d_params {
  size_t batch, in_h, in_w, in_c;
  size_t out_c;
  uint32_t kernel_h, kernel_w;
  uint32_t stride_h, stride_w;     /* 0 = 1 */
  uint32_t dilation_h, dilation_w; /* 0 = 1 */
  uint32_t pad_top, pad_left, pad_bottom, pad_right;
  uint32_t groups; /* 0 = 1 */
  gg_xnn_act act;
  float clamp_min, clamp_max; /* only for GG_XNN_ACT_CLAMP */
} gg_xnn_conv2d_params;

/* Creates a convolution; filter and bias are packed into XNNPACK's layout
 * (copied) so the caller keeps ownership of them. Returns 0, GG_EINVAL (bad
 * shape or params; logged with the reason), GG_ENOMEM, GG_EUNSUPPORTED,
 * GG_ENOTIMPL. Bind: a = input, b = NULL, out = output. */
int gg_xnn_conv2d_new(const gg_xnn_conv2d_params *p, const float *filter, const float *bias,
                      gg_xnn_threadpool *pool, gg_xnn_op **out);

/* ---------------------------------------------------------------- fully connected */

/* Matrix multiply out[rows][out_ch] = act(in[rows][in_ch] x W + bias), the
 * TF MatMul / _FusedMatMul with transpose_a = false.
 *   transpose_b = 0: W is [in_ch][out_ch] (TF MatMul default)
 *   transpose_b = 1: W is [out_ch][in_ch]
 *   bias [out_ch] or NULL. Bind: a = input, b = NULL. */
typedef struct gg_xnn_fc_params {
  size_t rows, in_ch, out_ch;
  int transpose_b;
  gg_xnn_act act;
  float clamp_min, clamp_max;
} gg_xnn_fc_params;
int gg_xnn_fc_new(const gg_xnn_fc_params *p, const float *weights, const float *bias,
                  gg_xnn_threadpool *pool, gg_xnn_op **out);

/* ---------------------------------------------------------------- pooling */

/* Max or average pooling, NHWC. Padding is explicit (SAME: gg_xnn_same_pads
 * with dilation 1). Average pooling divides by the number of input pixels
 * inside the window, padding excluded (TensorFlow AvgPool semantics).
 * Output [batch][out_h][out_w][channels]. Bind: a = input, b = NULL. */
typedef struct gg_xnn_pool2d_params {
  size_t batch, in_h, in_w, channels;
  uint32_t kernel_h, kernel_w;
  uint32_t stride_h, stride_w; /* 0 = 1 */
  uint32_t pad_top, pad_left, pad_bottom, pad_right;
  gg_xnn_act act;
  float clamp_min, clamp_max;
} gg_xnn_pool2d_params;
int gg_xnn_max_pool2d_new(const gg_xnn_pool2d_params *p, gg_xnn_threadpool *pool,
                          gg_xnn_op **out);
int gg_xnn_avg_pool2d_new(const gg_xnn_pool2d_params *p, gg_xnn_threadpool *pool,
                          gg_xnn_op **out);

/* Mean over the spatial positions: in [batch][hw][channels] (an NHWC tensor
 * with hw = H * W) -> out [batch][channels]. This is TF Mean over axes
 * {1, 2} of an NHWC tensor. Bind: a = input, b = NULL. */
int gg_xnn_global_avg_pool_new(size_t batch, size_t hw, size_t channels,
                               gg_xnn_threadpool *pool, gg_xnn_op **out);

/* ---------------------------------------------------------------- elementwise */

typedef enum gg_xnn_binary_op {
  GG_XNN_ADD = 0,  /* a + b  (AddV2, Add, BiasAdd) */
  GG_XNN_SUB,      /* a - b */
  GG_XNN_MUL,      /* a * b */
  GG_XNN_DIV,      /* a / b  (RealDiv) */
  GG_XNN_MAX,      /* max(a, b)  (Maximum) */
  GG_XNN_MIN,      /* min(a, b)  (Minimum) */
  GG_XNN_SQDIFF,   /* (a - b)^2  (SquaredDifference) */
  GG_XNN_BINARY_COUNT
} gg_xnn_binary_op;

/* Elementwise binary op with NumPy/TensorFlow broadcasting: shapes are
 * aligned at the right, each dimension pair must be equal or one of them 1.
 * Up to GG_XNN_MAX_DIMS dims each; a scalar is ndim 0 (or shape {1}). The
 * output shape is the broadcast shape (see gg_xnn_op_out_elems). A fused
 * activation is applied for ADD, SUB, MUL and DIV only (GG_EINVAL for the
 * others). Bind: a = first input, b = second input, out = output. */
typedef struct gg_xnn_binary_params {
  gg_xnn_binary_op op;
  size_t a_ndim, a_shape[GG_XNN_MAX_DIMS];
  size_t b_ndim, b_shape[GG_XNN_MAX_DIMS];
  gg_xnn_act act;
  float clamp_min, clamp_max;
} gg_xnn_binary_params;
int gg_xnn_binary_new(const gg_xnn_binary_params *p, gg_xnn_threadpool *pool, gg_xnn_op **out);

typedef enum gg_xnn_unary_op {
  GG_XNN_COPY = 0,     /* y = x (Identity into another buffer) */
  GG_XNN_RELU,         /* max(x, 0) */
  GG_XNN_RELU6,        /* min(max(x, 0), 6) */
  GG_XNN_CLAMP,        /* min(max(x, clamp_min), clamp_max) */
  GG_XNN_LEAKY_RELU,   /* x >= 0 ? x : alpha * x */
  GG_XNN_ELU,          /* x >= 0 ? x : alpha * (exp(x) - 1) */
  GG_XNN_SIGMOID,      /* 1 / (1 + exp(-x)) */
  GG_XNN_ABS,
  GG_XNN_NEG,
  GG_XNN_SQUARE,       /* x * x */
  GG_XNN_SQRT,
  GG_XNN_FLOOR,
  GG_XNN_CEIL,
  GG_XNN_ROUND,        /* round half to even (TF Round) */
  GG_XNN_HARDSWISH,    /* x * min(max(x + 3, 0), 6) / 6 */
  GG_XNN_UNARY_COUNT
} gg_xnn_unary_op;

/* Elementwise unary op over `count` contiguous floats. alpha is the
 * LeakyRelu slope or the Elu alpha; clamp_min/max are for GG_XNN_CLAMP.
 * In-place (a == out at bind) is allowed. Bind: a = input, b = NULL. */
typedef struct gg_xnn_unary_params {
  gg_xnn_unary_op op;
  size_t count;
  float alpha;
  float clamp_min, clamp_max;
} gg_xnn_unary_params;
int gg_xnn_unary_new(const gg_xnn_unary_params *p, gg_xnn_threadpool *pool, gg_xnn_op **out);

/* PReLU over the last axis: in/out [rows][channels],
 * y = x >= 0 ? x : alpha[c] * x with alpha [channels] (copied; the caller
 * keeps it). In-place allowed. Bind: a = input, b = NULL. */
int gg_xnn_prelu_new(size_t rows, size_t channels, const float *alpha, gg_xnn_threadpool *pool,
                     gg_xnn_op **out);

/* Strided row copy: for r < rows, out[r * out_stride + c] = in[r * in_stride + c]
 * for c < channels (strides in floats, >= channels). ConcatV2 / SplitV along
 * the last axis are one such copy per part: concat part i of width C_i into
 * an output of width C is (rows, C_i, C_i, C) bound to out + offset_i; a
 * split is (rows, C_i, C, C_i) bound to in + offset_i. Bind: a, NULL, out. */
int gg_xnn_copy_strided_new(size_t rows, size_t channels, size_t in_stride, size_t out_stride,
                            gg_xnn_threadpool *pool, gg_xnn_op **out);

/* Softmax over the last axis: in/out [rows][channels]. Bind: a, NULL, out. */
int gg_xnn_softmax_new(size_t rows, size_t channels, gg_xnn_threadpool *pool, gg_xnn_op **out);

/* ---------------------------------------------------------------- resize, pad */

/* Bilinear resize NHWC [batch][in_h][in_w][c] -> [batch][out_h][out_w][c]
 * with TensorFlow ResizeBilinear semantics for its two attributes:
 * align_corners, half_pixel_centers (both 0 = TF legacy mode; both 1 is
 * rejected, as TF does). Bind: a = input, b = NULL. */
typedef struct gg_xnn_resize_params {
  size_t batch, in_h, in_w, channels, out_h, out_w;
  int align_corners, half_pixel_centers;
} gg_xnn_resize_params;
int gg_xnn_resize_bilinear_new(const gg_xnn_resize_params *p, gg_xnn_threadpool *pool,
                               gg_xnn_op **out);

/* Transposed convolution (ONNX ConvTranspose), NHWC. filter is HWOI
 * [kernel_h][kernel_w][out_c/groups][in_c] (output channel within its group,
 * then every input channel; group g reads input channels g*in_c/groups..),
 * bias [out_c] or NULL; both are packed (copied). pad_* crop the full output
 * (ONNX pads), adj_h/adj_w are ONNX's output_padding (rows/columns added at
 * the bottom/right; each must be < its stride, as XNNPACK requires). Output
 * [batch][out_h][out_w][out_c], out_h = (in_h-1)*stride_h + (kernel_h-1)*
 * dilation_h + 1 - pad_top - pad_bottom + adj_h. Bind: a = input, b = NULL. */
typedef struct gg_xnn_deconv2d_params {
  size_t batch, in_h, in_w, in_c, out_c;
  uint32_t kernel_h, kernel_w;
  uint32_t stride_h, stride_w;     /* 0 = 1 */
  uint32_t dilation_h, dilation_w; /* 0 = 1 */
  uint32_t groups;                 /* 0 = 1 */
  uint32_t pad_top, pad_bottom, pad_left, pad_right;
  uint32_t adj_h, adj_w;
  gg_xnn_act act;
  float clamp_min, clamp_max;
} gg_xnn_deconv2d_params;
int gg_xnn_deconv2d_new(const gg_xnn_deconv2d_params *p, const float *filter, const float *bias,
                        gg_xnn_threadpool *pool, gg_xnn_op **out);

/* Constant pad (TF Pad / PadV2 with mode CONSTANT) of an ndim (1..6) tensor:
 * out dim i = shape[i] + pre[i] + post[i], filled with `value` outside.
 * Bind: a = input, b = NULL. */
int gg_xnn_pad_new(size_t ndim, const size_t *shape, const size_t *pre, const size_t *post,
                   float value, gg_xnn_threadpool *pool, gg_xnn_op **out);

/* ---------------------------------------------------------------- all ops */

/* Binds the data pointers: a = (first) input, b = second input for binary
 * ops (NULL for all others), out = output. Computes XNNPACK's per-shape state
 * (indirection buffers; may allocate). Call once after planning, and again
 * only when a pointer changes. Inputs need GG_XNN_EXTRA_BYTES of readable
 * slack. Returns 0 or GG_EINVAL (NULL/missing pointer), GG_ENOMEM. */
int gg_xnn_op_bind(gg_xnn_op *op, const float *a, const float *b, float *out);

/* Runs a bound op on its pool; allocates nothing. Returns 0, GG_ESTATE (not
 * bound) or GG_EINVAL. */
int gg_xnn_op_run(gg_xnn_op *op);

/* Number of floats the op writes (the output tensor's element count). */
size_t gg_xnn_op_out_elems(const gg_xnn_op *op);

/* Bytes XNNPACK allocated for this op (packed weights, operator state,
 * indirection buffers after bind), measured through the counting allocator.
 * Exact when ops are created and bound from one thread at a time. */
uint64_t gg_xnn_op_bytes(const gg_xnn_op *op);

/* Short name of the op kind ("conv2d", "fc", "add", ...); "?" for NULL. */
const char *gg_xnn_op_name(const gg_xnn_op *op);

/* Frees the op and everything XNNPACK holds for it; NULL is a no-op. */
void gg_xnn_op_free(gg_xnn_op *op);

#ifdef __cplusplus
}
#endif
#endif
