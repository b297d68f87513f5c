/* Engine IR: tensors, nodes and the graph a TF.js model is imported into.
 * Internal to src/engine (and its tests, and backend wrappers such as xnn.c).
 *
 * Layout conventions (as the TF.js models store them, nothing is re-laid out):
 *   activations      NHWC, float32
 *   Conv2D filter    [KH, KW, CI, CO]             (HWIO)
 *   Depthwise filter [KH, KW, CI, MULT]           (output channel = ci*MULT+m)
 *   MatMul           A [M, K] (or [K, M] with transpose_a), B [K, N] (or [N, K])
 * Integer tensors from the models (int32 and int64) are stored as int32:
 * TF.js itself stores int64 weights as int32. */
#ifndef GG_ENGINE_GRAPH_H
#define GG_ENGINE_GRAPH_H

#include <stddef.h>
#include <stdint.h>

#define GG_MAX_DIMS 6
/* Largest element count of one tensor we accept (2^31-1): bounds every index
 * computation to int64 without overflow and refuses absurd model shapes. */
#define GG_MAX_ELEMS ((int64_t)INT32_MAX)

typedef enum gg_dtype {
  GG_DT_F32 = 0,
  GG_DT_I32,
  GG_DT_COUNT
} gg_dtype;

typedef enum gg_op {
  GG_OP_CONST = 0,
  GG_OP_PLACEHOLDER,
  GG_OP_IDENTITY,
  GG_OP_CONV2D,      /* Conv2D, _FusedConv2D: in x, filter [, bias [, prelu alpha]] */
  GG_OP_DEPTHWISE,   /* DepthwiseConv2dNative, FusedDepthwiseConv2dNative */
  GG_OP_MATMUL,      /* MatMul, _FusedMatMul: in a, b [, bias] */
  GG_OP_ADD,         /* Add, AddV2 (broadcasting) */
  GG_OP_SUB,
  GG_OP_MUL,
  GG_OP_MAXIMUM,
  GG_OP_MINIMUM,
  GG_OP_ABS,
  GG_OP_SQUARE,
  GG_OP_RSQRT,
  GG_OP_RELU,
  GG_OP_RELU6,
  GG_OP_LEAKY_RELU,  /* attrs.alpha */
  GG_OP_SIGMOID,
  GG_OP_SOFTMAX,     /* over the last axis */
  GG_OP_SUM,         /* in x, axes (const); attrs.keep_dims */
  GG_OP_MEAN,
  GG_OP_MAXPOOL,     /* attrs.ksize, strides, padding */
  GG_OP_PAD,         /* Pad, PadV2: in x, paddings [rank,2] (const) [, value] */
  GG_OP_RESHAPE,     /* in x, shape (const, may hold one -1; not read with a.flatten) */
  GG_OP_SQUEEZE,     /* attrs.axes (empty: all size-1 dims) */
  GG_OP_TRANSPOSE,   /* in x, perm (const) */
  GG_OP_CONCAT,      /* ConcatV2: in x0..xN-1, axis (const) */
  GG_OP_SPLITV,      /* in x, size_splits (const), axis (const); n_out outputs */
  GG_OP_RESIZE_BILINEAR, /* in x, size [2] (const); align_corners, half_pixel */
  GG_OP_SPARSE_TO_DENSE, /* in indices, output_shape, values, default (all const) */
  GG_OP_PRELU,       /* in x, alpha (broadcast); produced by fusion */
  GG_OP_DEPTH_TO_SPACE, /* NHWC, attrs.block_size; TF's DCR channel order (tf.depthToSpace) */
  GG_OP_RESIZE_NEAREST, /* in x [, size [2] (const)]; align_corners, half_pixel (TF.js
                           rules); without size: attrs.scale (Keras UpSampling2D) */

  /* ---- ONNX-era ops, group E (src/engine/ops-elem.c: shape rules and reference
   * kernels). Any rank, row-major, no layout meaning. Binary ops broadcast with
   * numpy rules (as GG_OP_ADD does). F32 unless stated; "int" = GG_DT_I32. */
  GG_OP_DIV,         /* a / b; F32, and I32 (C truncation; x/0 gives 0, never traps) */
  GG_OP_POW,         /* powf(a, b); F32 (an I32 exponent input is accepted); an I32 base
                        gives I32 (pow in double, then Cast's rule), as ONNX Pow on ints */
  GG_OP_EQUAL,       /* a == b -> I32 0/1; inputs F32 or I32 (same dtype) */
  GG_OP_GREATER,     /* a > b  -> I32 0/1 */
  GG_OP_LESS,        /* a < b  -> I32 0/1 */
  GG_OP_NOT,         /* I32: x == 0 -> 1, else 0 */
  GG_OP_WHERE,       /* in cond (I32), a, b: 3-way broadcast; dtype of a (a, b same dtype) */
  GG_OP_SQRT,
  GG_OP_EXP,
  GG_OP_LOG,
  GG_OP_NEG,         /* F32 and I32 */
  GG_OP_RECIPROCAL,
  GG_OP_ERF,
  GG_OP_TANH,
  GG_OP_SOFTPLUS,    /* log(1 + exp(x)), overflow-safe */
  GG_OP_HARD_SIGMOID,/* max(0, min(1, alpha*x + beta)): attrs.alpha, attrs.beta */
  GG_OP_HARD_SWISH,  /* x * max(0, min(1, x/6 + 0.5)) */
  GG_OP_GELU,        /* attrs.approximate: 0 = erf form, 1 = tanh form */
  GG_OP_CLIP,        /* min(max(x, attrs.clip_min), attrs.clip_max); F32 and I32 (rounded
                        bounds); the importer puts -FLT_MAX/FLT_MAX for a missing bound */
  GG_OP_CAST,        /* to attrs.to (F32 <-> I32: F32 -> I32 truncates toward 0, saturating;
                        NaN -> 0); same dtype: a copy. attrs.flags bit 0 (set by onnx.c on the
                        F32 -> I32 Cast that ends an integer op it computes in float, e.g.
                        ConvInteger): the input holds integers exactly, so a Cast of the result
                        back to float reads the input instead */
  GG_OP_LOG_SOFTMAX, /* over the last axis, like GG_OP_SOFTMAX */
  GG_OP_REDUCE_MAX,  /* in x, axes (const I32, may be empty = all axes); attrs.keep_dims.
                        F32 and I32. Like GG_OP_SUM / GG_OP_MEAN */
  GG_OP_REDUCE_MIN,
  GG_OP_REDUCE_L2,   /* sqrt(sum(x^2)) */
  GG_OP_LAYER_NORM,  /* in x, scale, bias (bias optional: n_in 2): normalize over dims
                        [attrs.axis, rank) (axis normalized at import, >= 0); scale and bias
                        broadcast against those trailing dims; attrs.epsilon. Optional
                        outputs 1, 2: ONNX's Mean and InvStdDev, x's dims before axis then 1s */
  GG_OP_INSTANCE_NORM, /* in x [N, C, ...], scale [C], bias [C]: per (n, c) over the rest;
                          attrs.epsilon. Channels-first (ONNX) */
  GG_OP_GROUP_NORM,  /* in x [N, C, ...], scale [C], bias [C]: C split into attrs.groups
                        groups, each normalized over (its channels x the rest); attrs.epsilon */

  /* ---- ONNX-era ops, group S (src/engine/ops-shape.c: shape rules and reference
   * kernels). Index/shape inputs are I32 (the importer stores int64 as I32). */
  GG_OP_BATCH_MATMUL, /* a [..., M, K], b [..., K, N] -> [..., M, N]; batch dims broadcast;
                         a 1-D a is [1, K] with that dim dropped after, a 1-D b is [K, 1]
                         likewise (numpy matmul rules); F32 */
  GG_OP_SLICE,       /* in x; attrs.n_slice entries of slice_axes/starts/ends/steps (int64,
                        ONNX rules: negative indices count from the end, clamped; steps may be
                        negative, never 0). Any dtype */
  GG_OP_GATHER,      /* in data, indices (I32; negative counts from the end; out of range is
                        an error at run, GG_ERANGE): attrs.axis; out rank = r + q - 1 */
  GG_OP_EXPAND,      /* in x, shape (const I32 1-D): broadcast x to max(shape, x.shape) per
                        numpy rules (ONNX Expand) */
  GG_OP_TILE,        /* in x, repeats (const I32 1-D, rank entries) */
  GG_OP_SHAPE,       /* in x -> I32 [rank]: x's shape; attrs.slice_starts[0], slice_ends[0]
                        give ONNX's start/end (n_slice 0: the whole shape) */
  GG_OP_RANGE,       /* in start, limit, delta (scalars, const, F32 or I32) -> 1-D */
  GG_OP_CONSTANT_OF_SHAPE, /* in shape (const I32 1-D) -> that shape filled with attrs.fill
                              (dtype attrs.to) */
  GG_OP_AVGPOOL,     /* NHWC like GG_OP_MAXPOOL: ksize, strides, padding, pads; attrs.
                        count_include_pad (ONNX: 0 = divide by the in-image window part);
                        attrs.ceil_mode (ONNX ceil_mode; also for GG_OP_MAXPOOL when set) */
  GG_OP_CONV_TRANSPOSE, /* NHWC: in x [N,H,W,CI], filter [KH, KW, CO/groups, CI] (HWOI:
                           out channel within group, then in channel) [, bias [CO]];
                           attrs.strides, dilations, pads (top, bottom, left, right: what is
                           cut off the full output), output_padding[2] (added at bottom /
                           right), groups; attrs.act NONE, RELU or RELU6 (fused by fold.c).
                           Output H = (H-1)*s + (KH-1)*d + 1 - pt - pb + op */
  GG_OP_RESIZE,      /* NHWC spatial resize (ONNX Resize on H, W): in x; output H, W in
                        attrs.out_hw; attrs.resize_mode (GG_RESIZE_*), coord_mode
                        (GG_COORD_*), nearest_mode (GG_NEAREST_*), cubic_a, exclude_outside,
                        extrapolation (tf_crop_and_resize: roi in attrs.roi[4] = y1, x1, y2,
                        x2 normalized) and attrs.scale_hw (the scales ONNX gives, float;
                        0 = out/in) used by the coordinate transform as ONNX specifies.
                        out_hw -1: floor(in * scale_hw); -2: input 1 is ONNX's scales
                        [N,C,H,W] (F32, constant at session time); -3: input 1 is ONNX's
                        sizes [N,C,H,W] (I32, likewise) */

  /* ---- N-D window ops, group W (src/engine/ops-window.c): channel-first (ONNX
   * layout) x [N, C, S1..Sk], k = 1..3 spatial dims, F32, naive reference kernels
   * (host-only). The importer uses them for 3-D windows (NCDHW) and for MaxPool's
   * Indices output; 1-D and 2-D windows otherwise take the NHWC ops above. Per
   * spatial axis i < k, ONNX order: attrs.nd_k (pools), nd_s, nd_d (0 reads as 1),
   * nd_pads (begins, then ends), nd_auto (GG_AUTO_*: SAME_* resolved by the shape
   * rule from the input's shape, VALID ignores nd_pads). */
  GG_OP_MAXPOOL_ND,  /* -> y [, indices (I32, same shape): flat index into x, spatial part
                        row-major (attrs.storage_order 0) or column-major (1, k <= 2)];
                        ceil_mode; NaN ignored as GG_OP_MAXPOOL does; ties: the first */
  GG_OP_AVGPOOL_ND,  /* ceil_mode, count_include_pad (as GG_OP_AVGPOOL: 1 counts the cells
                        inside the padded input, 0 those inside the input) */
  GG_OP_CONV_ND,     /* in x, w [CO, CI/groups, K1..Kk] (ONNX OI..) [, bias [CO]]; groups */
  GG_OP_CONV_TRANSPOSE_ND, /* in x, w [CI, CO/groups, K1..Kk] [, bias [CO]]; groups,
                              nd_out_pad (output_padding), nd_out_shape (ONNX output_shape,
                              0: none; with it or SAME_*, the pads follow as ONNX says) */
  GG_OP_EINSUM,      /* in x [, y]: ONNX Einsum, any form of one or two operands (src/engine/
                        ops-einsum.c). attrs.ein_n[k] labels in attrs.ein_lab[k] (0..51) for
                        input k's dims and (k = 2) the output's; a label repeated in one input
                        takes its diagonal, labels missing from the output are summed. Dims
                        of one label must match or be 1 (broadcast). F32 (sums in double) and
                        I32 (wrapping int32 sums) */
  /* ---- ONNX-era ops, group X (src/engine/ops-extra.c: shape rules and naive reference
   * kernels; no backend other than the host's runs them). Bool is I32 0/1, int64 is I32.
   * One op per family, the ONNX op in attrs.fn; attrs.flags holds per-op bits. */
  GG_OP_UNARY_X,     /* y = f(x), attrs.fn (GG_UX_*), x F32 (Sign: also I32).
                        IsNaN / IsInf give I32 0/1 (IsInf: flags bit 0 detects -inf, bit 1
                        +inf); the rest keep x's dtype. Elu, Celu, ThresholdedRelu: alpha;
                        Selu: alpha, gamma; Shrink: bias in alpha, lambd in beta */
  GG_OP_BINARY_X,    /* a, b with numpy broadcasting, attrs.fn (GG_BX_*). MOD: I32, sign of
                        the divisor (Python); FMOD: F32 fmodf or I32 C remainder; x mod 0 is
                        0 for I32. GE / LE: F32 or I32 (same dtype) -> I32. AND / OR / XOR:
                        I32 (nonzero is true) -> I32 0/1 */
  GG_OP_REDUCE_X,    /* in x, axes (const I32, empty = all axes); attrs.fn (GG_RX_*),
                        keep_dims; F32, and I32 for PROD, SUM_SQUARE, L1 (wrapping) */
  GG_OP_ARG_X,       /* ArgMax (fn 0) / ArgMin (fn 1) along attrs.axis -> I32; keep_dims;
                        flags bit 0 select_last_index; F32 or I32; a NaN wins (numpy) */
  GG_OP_CUMSUM,      /* in x, axis (I32 scalar or [1], read at run: any tensor); flags bit 0
                        exclusive, bit 1 reverse; F32 or I32 */
  GG_OP_GATHER_ELEMENTS, /* in data, indices (I32, data's rank; negative counts from the end,
                            out of range is GG_ERANGE at run); attrs.axis; y: indices' shape */
  GG_OP_GATHER_ND,   /* in data, indices (I32 [..., k]); attrs.axis holds batch_dims;
                        y: indices.shape[:-1] + data.shape[batch_dims + k:] */
  GG_OP_TRILU,       /* in x (rank >= 2) [, k (I32 scalar, read at run)]; flags bit 0 upper:
                        keeps col - row >= k (upper) or <= k (lower), zeroes the rest */
  GG_OP_HARDMAX,     /* F32: 1 at the first max along attrs.axis, 0 elsewhere; flags bit 0:
                        ONNX's coerced 2-D form before opset 13 (all dims from axis as one) */
  GG_OP_LRN,         /* x [N, C, ...] F32, across channels: y = x / (gamma + alpha / size *
                        sum of x^2 over the size-window of channels)^beta; attrs.size */
  GG_OP_TOPK,        /* in x, K (I32 scalar or [1], constant at session time) -> values,
                        indices (I32) along attrs.axis; flags bit 0 largest; always sorted
                        (largest: descending), ties: the lower index first; NaN largest */
  GG_OP_ONE_HOT,     /* in indices (F32 or I32), depth (scalar, constant at session time),
                        values [off, on] -> values' dtype, depth inserted at attrs.axis;
                        negative indices count from depth, out of range: all off */
  GG_OP_EYE_LIKE,    /* in x (2-D) -> x's shape, attrs.to, 1 where col - row == attrs.axis */
  GG_OP_SCATTER_ND,  /* in data, indices (I32 [..., k]), updates -> data's shape and dtype
                        with the slices at indices replaced, or reduced when attrs.fn is
                        GG_SX_ADD / MUL / MAX / MIN; out of range: GG_ERANGE at run */
  GG_OP_SCATTER_ELEMENTS, /* in data, indices (I32, data's rank), updates (indices' shape);
                             attrs.axis, attrs.fn reduction as GG_OP_SCATTER_ND */
  GG_OP_QUANTIZE,    /* in x (F32), scale (F32) [, zero_point (I32: one, or one per scale)] -> I32:
                        clamp(rint(x / scale) + zero_point) to attrs.cast_kind's range (GG_CAST_
                        U8, I8, U16, I16; ONNX QuantizeLinear); flags bit 0: x * scale instead
                        of x / scale (the requantization of QLinearConv / QLinearMatMul). scale
                        one value (per tensor) or a 1-D [x.shape[attrs.axis]] (per axis, axis
                        may be negative). rint rounds half to even; NaN gives the zero point.
                        flags bit 1 (both ops): the importer knows the scale and the zero point
                        hold one value each, so the op is elementwise (layout.c). flags bit 2:
                        the output is F32, the quantized value less the zero point (what
                        ConvInteger / MatMulInteger multiply) */
  GG_OP_DEQUANTIZE,  /* in x (I32), scale (F32) [, zero_point (I32)] -> F32:
                        (float)(x - zero_point) * scale, scale and zero_point as GG_OP_QUANTIZE's
                        (ONNX DequantizeLinear) */
  GG_OP_COUNT
} gg_op;

/* Group X functions (attrs.fn). */
typedef enum gg_ux_fn {
  GG_UX_SIN = 0, GG_UX_COS, GG_UX_TAN, GG_UX_ASIN, GG_UX_ACOS, GG_UX_ATAN, GG_UX_SINH,
  GG_UX_COSH, GG_UX_ASINH, GG_UX_ACOSH, GG_UX_ATANH, GG_UX_FLOOR, GG_UX_CEIL, GG_UX_ROUND,
  GG_UX_SIGN, GG_UX_ISNAN, GG_UX_ISINF, GG_UX_ELU, GG_UX_SELU, GG_UX_CELU, GG_UX_SOFTSIGN,
  GG_UX_THRESHOLDED_RELU, GG_UX_SHRINK, GG_UX_COUNT
} gg_ux_fn;
typedef enum gg_bx_fn {
  GG_BX_MOD = 0, GG_BX_FMOD, GG_BX_GE, GG_BX_LE, GG_BX_AND, GG_BX_OR, GG_BX_XOR, GG_BX_COUNT
} gg_bx_fn;
typedef enum gg_rx_fn {
  GG_RX_PROD = 0, GG_RX_SUM_SQUARE, GG_RX_L1, GG_RX_LOG_SUM, GG_RX_LOG_SUM_EXP, GG_RX_COUNT
} gg_rx_fn;
typedef enum gg_sx_fn { GG_SX_NONE = 0, GG_SX_ADD, GG_SX_MUL, GG_SX_MAX, GG_SX_MIN } gg_sx_fn;

typedef enum gg_resize_mode { GG_RESIZE_NEAREST = 0, GG_RESIZE_LINEAR, GG_RESIZE_CUBIC } gg_resize_mode;
typedef enum gg_coord_mode {
  GG_COORD_HALF_PIXEL = 0,
  GG_COORD_ASYMMETRIC,
  GG_COORD_PYTORCH_HALF_PIXEL,
  GG_COORD_ALIGN_CORNERS,
  GG_COORD_TF_HALF_PIXEL_FOR_NN,
  GG_COORD_TF_CROP_AND_RESIZE,
  GG_COORD_HALF_PIXEL_SYMMETRIC
} gg_coord_mode;
typedef enum gg_nearest_mode {
  GG_NEAREST_ROUND_PREFER_FLOOR = 0,
  GG_NEAREST_ROUND_PREFER_CEIL,
  GG_NEAREST_FLOOR,
  GG_NEAREST_CEIL
} gg_nearest_mode;
/* GG_OP_PAD modes (attrs.pad_mode); ONNX Pad's constant, reflect, edge. */
typedef enum gg_pad_mode { GG_PADMODE_CONSTANT = 0, GG_PADMODE_REFLECT, GG_PADMODE_EDGE } gg_pad_mode;

/* ONNX auto_pad of the N-D window ops (attrs.nd_auto). */
typedef enum gg_auto_pad {
  GG_AUTO_NOTSET = 0,
  GG_AUTO_VALID,
  GG_AUTO_SAME_UPPER,
  GG_AUTO_SAME_LOWER
} gg_auto_pad;

typedef enum gg_padding {
  GG_PAD_VALID = 0,
  GG_PAD_SAME,
  GG_PAD_EXPLICIT
} gg_padding;

/* Activation fused into a conv / depthwise / matmul. */
typedef enum gg_act {
  GG_ACT_NONE = 0,
  GG_ACT_RELU,
  GG_ACT_RELU6,
  GG_ACT_LEAKY,  /* attrs.alpha */
  GG_ACT_PRELU,  /* per-channel alpha: the node's input 3 */
  GG_ACT_COUNT
} gg_act;

typedef struct gg_attrs {
  int strides[2];     /* H, W */
  int dilations[2];   /* H, W */
  int ksize[2];       /* MaxPool H, W */
  gg_padding padding;
  int pads[4];        /* EXPLICIT: top, bottom, left, right */
  int has_bias;       /* fused BiasAdd: input 2 is the bias [CO] */
  gg_act act;
  float alpha;        /* LeakyRelu / GG_ACT_LEAKY slope */
  float epsilon;
  int transpose_a, transpose_b;
  int keep_dims;
  int align_corners, half_pixel_centers;
  int n_axes;         /* Squeeze dims */
  int axes[GG_MAX_DIMS];
  int num_split;
  int block_size;     /* DepthToSpace */
  int scale[2];       /* ResizeNearest with one input: output H, W = input * scale */
  /* ONNX-era attributes (see each op above). */
  int axis;
  float beta;
  float clip_min, clip_max;
  int approximate;
  gg_dtype to;
  float fill;
  int groups;
  int count_include_pad, ceil_mode;
  int output_padding[2];
  gg_pad_mode pad_mode;
  int n_slice;
  int64_t slice_axes[GG_MAX_DIMS], slice_starts[GG_MAX_DIMS], slice_ends[GG_MAX_DIMS],
      slice_steps[GG_MAX_DIMS];
  int64_t out_hw[2];
  float scale_hw[2];
  gg_resize_mode resize_mode;
  gg_coord_mode coord_mode;
  gg_nearest_mode nearest_mode;
  float cubic_a;
  int exclude_outside;
  float extrapolation;
  float roi[4];
  int flatten; /* RESHAPE: > 0 is ONNX Flatten at this axis: [prod(dims before), prod(rest)] from
                * the input's shape (exact for a zero-size dim); input 1 is then not read */
  /* N-D window ops (group W), per spatial axis in ONNX order. */
  int nd_k[3], nd_s[3], nd_d[3];
  int nd_pads[6];     /* begin of each axis, then end of each axis */
  int nd_auto;        /* gg_auto_pad */
  int nd_out_pad[3];
  int64_t nd_out_shape[3];
  int storage_order;
  /* GG_OP_CAST: the narrower ONNX type the values are rounded to within
   * attrs.to (GG_CAST_*; GG_CAST_NONE: attrs.to as is). */
  int cast_kind;
  /* GG_OP_EINSUM: labels of input 0, input 1 and the output (see the op). */
  int ein_n[3];
  signed char ein_lab[3][GG_MAX_DIMS];
  /* Group X (see each op): the ONNX function, per-op flag bits, a third float
   * parameter (Selu gamma, LRN bias) and LRN's size. */
  int fn;
  int flags;
  float gamma;
  int size;
  /* Set on every node of a graph that quantizes (onnx.c: GG_OP_QUANTIZE):
   * rounding to 8 bits turns a last-bit difference into a whole quantization
   * step, so a fast kernel known to round differently from the reference
   * kernel (which computes ONNX Runtime's formula) declines such a node:
   * XNNPACK's bilinear resize. */
  int quantized;
} gg_attrs;

/* GG_OP_CAST's attrs.cast_kind: to F32 (FLOAT16, BFLOAT16: round to nearest
 * even, overflow to +-inf, NaN kept; the F32 result is exactly that type's
 * value) or to I32 (after Cast's F32 -> I32 rule, wrapped to the narrow
 * integer as C converts; BOOL: x != 0, NaN included). */
typedef enum gg_cast_kind {
  GG_CAST_NONE = 0,
  GG_CAST_F16,
  GG_CAST_BF16,
  GG_CAST_U8,
  GG_CAST_I8,
  GG_CAST_U16,
  GG_CAST_I16,
  GG_CAST_BOOL
} gg_cast_kind;

/* A tensor's value: what kernels read and write. */
typedef struct gg_tval {
  gg_dtype dtype;
  int ndim;
  int64_t shape[GG_MAX_DIMS];
  int64_t nelem;
  void *data; /* borrowed: weights block, arena slice or a test buffer; NULL
                in a device backend's view of device memory (use buf/offs) */
  struct gg_backend_buffer *buf; /* where it lives (src/engine/backend.h); NULL for
                                    host data outside any backend buffer */
  uint64_t offs;                 /* byte offset in buf */
  int is_const;                  /* a model constant (set in a session's views) */
} gg_tval;

typedef struct gg_tensor {
  char *name;     /* "node" for output 0, "node:k" for output k */
  gg_tval v;      /* shape known for consts and placeholders at import */
  int is_const;   /* data lives in the graph's weights (never in the arena) */
  int producer;   /* node index, -1 for none */
  int is_output;  /* a graph output: lives until the end of a run */
  int is_input;   /* a graph input (placeholder) */
  int scalar;     /* the importer knows it holds one element (onnx.c: quantization scales
                     and zero points): broadcasts the same in any layout (layout.c) */
  int src_type;   /* graph input/output: the element type the model declares (ONNX
                     TensorProto.DataType, e.g. 10 FLOAT16, 11 DOUBLE); 0 unknown (TF.js) */
} gg_tensor;

typedef struct gg_node {
  char *name;
  gg_op op;
  const char *src_op; /* the op name in the source model, TF.js op or ONNX op_type (static string) */
  int n_in, n_out;
  int *in;   /* tensor indices */
  int *out;  /* tensor indices */
  gg_attrs a;
  int dead;  /* removed by folding / fusion; skipped by everything */
} gg_node;

/* An imported model. All arrays and names are owned by the graph. */
typedef struct gg_graph {
  int n_tensors, n_nodes;
  gg_tensor *tensors;
  gg_node *nodes;
  int n_inputs, n_outputs;
  int *inputs;   /* tensor indices of placeholders, model order */
  int *outputs;  /* tensor indices: signature.outputs order, else terminal nodes by name */
  char **output_names; /* as TF.js names them ("Identity_2:0", "global_pooling/Mean") */
  int n_order;
  int *order;    /* executable (non-const, live) nodes in topological order */
  uint64_t weights_bytes; /* bytes of constant data held (after dequantize + folding) */
  char *path;    /* model.json path or a label for in-memory models */
} gg_graph;

/* Whether t holds one element, so it broadcasts the same in any layout: a
 * constant of one value (rank 0 or 1), or a tensor the importer marked
 * (gg_tensor.scalar). onnx.c and layout.c. */
static inline int gg__tensor_one_elem(const gg_tensor *t) {
  return t->is_const ? t->v.nelem == 1 && t->v.ndim <= 1 : t->scalar;
}

/* The saturation range of a GG_OP_QUANTIZE output (attrs.cast_kind: U8, I8,
 * U16, I16); -1 for another kind. ops-extra.c, also for the device kernel. */
int gg__quant_range(int kind, float *lo, float *hi);
/* A Quantize / Dequantize node's scale s against its input x: one value (per
 * tensor: *ch 1, *inner 1) or one per index of x's axis attrs.axis (*ch of
 * them, each covering runs of *inner elements); -1 otherwise. ops-extra.c. */
int gg__quant_axis(const gg_node *n, const gg_tval *x, const gg_tval *s, int64_t *ch,
                   int64_t *inner);

/* Bytes of one element of dtype. */
size_t gg__dtype_size(gg_dtype dt);
/* Product of dims with overflow/limit checks: GG_ERANGE when the count
 * exceeds GG_MAX_ELEMS or a dim is negative. */
int gg__shape_nelem(const int64_t *shape, int ndim, int64_t *out);
/* Formats a shape as "[1,256,256,3]" into buf; returns buf. */
const char *gg__shape_str(const int64_t *shape, int ndim, char *buf, size_t len);

/* Frees a graph and everything it owns; NULL is a no-op. */
void gg__graph_free(gg_graph *g);
/* Builds g->order (topological, live non-const nodes). GG_EPARSE on a cycle,
 * naming a node on it. */
int gg__graph_toposort(gg_graph *g, char *err, size_t errlen);
/* Evaluates every node whose inputs are all constant and turns its outputs
 * into constants (shape constants for Reshape, SparseToDense, ...). */
int gg__graph_fold_constants(gg_graph *g, char *err, size_t errlen);
/* Fuses patterns worth fusing (conv/matmul + Relu/Relu6/LeakyRelu, the
 * Relu/Abs/Sub/Mul/Add PReLU decomposition into one PReLU node). */
void gg__graph_fuse(gg_graph *g);
/* The post-import pipeline every importer ends with (graph.c): toposort,
 * constant folding, fusion, toposort, dropping constants nothing reads, and
 * weights_bytes. GG_EPARSE on a cycle; the folding's errors. */
int gg__graph_finish(gg_graph *g, char *err, size_t errlen);
/* Layout pass (layout.c): removes Transpose nodes where provably equivalent
 * (inverse pairs, through elementwise ops, Concat, Pad, reductions). Returns
 * how many Transpose nodes it removed, or a negative GG_E* code. */
int gg__layout_pass(gg_graph *g);
/* Reads an ONNX ModelProto (onnx.c). bytes/len: the file; dir: the model's
 * folder for external data (NULL: external data refused). GG_ENOTIMPL when
 * built without protobuf-c. Same errors and ownership as gg__tfjs_import. */
int gg__onnx_import(const uint8_t *bytes, size_t len, const char *label, const char *dir,
                    gg_graph **out, char *err, size_t errlen);
/* Loads an .onnx file (external data resolved in its folder). */
int gg__onnx_load_file(const char *path, gg_graph **out, char *err, size_t errlen);
/* Reads the regular file path (at most max bytes; oflags: extra open flags
 * such as O_NOFOLLOW) into *data (malloc'd, NUL-terminated past *len; the
 * caller frees). GG_ETOO_LARGE past max, GG_ENOMEM, or GG_EIO with errno
 * saying why (EINVAL: not a regular file, EIO: a short read). tfjs.c. */
int gg__file_read(const char *path, uint64_t max, int oflags, uint8_t **data, size_t *len);
/* The folder of a file path ("." when path has no slash) into dir. tfjs.c. */
void gg__file_dir(const char *path, char *dir, size_t len);
/* The i-th ONNX op_type the importer maps (onnx.c's table; a borrowed static
 * string), NULL past the last one or when built without ONNX import. */
const char *gg__onnx_op_name(size_t i);
/* Largest activation arena a session may allocate, in bytes (0: no limit;
 * fuzz targets set it so that hostile shapes fail cleanly, GG_ETOO_LARGE,
 * instead of allocating gigabytes). exec.c. */
extern uint64_t gg__arena_limit;

/* Reads a TF.js graph model (model.json text + shards). The shard reader
 * gets a path from weightsManifest and returns malloc'd bytes (caller frees)
 * or a negative code. Errors: GG_EPARSE (malformed, names file and node),
 * GG_EUNSUPPORTED (op/attr we do not run, names both), GG_EIO (missing
 * shard), GG_ERANGE (shape overflow), GG_ENOMEM. On success *out owns all. */
typedef int (*gg__shard_reader)(void *user, const char *path, uint8_t **data, size_t *len,
                                char *err, size_t errlen);
int gg__tfjs_import(const char *json, size_t json_len, const char *label,
                    gg__shard_reader read_shard, void *user, gg_graph **out, char *err,
                    size_t errlen);
/* Loads model.json at path, shards resolved relative to its directory. */
int gg__tfjs_load_file(const char *path, gg_graph **out, char *err, size_t errlen);

/* The layers-model half of the importer (src/engine/tfjs-layers.c): builds
 * the nodes and tensors of a TF.js layers model (Keras topology, root is the
 * parsed model.json) into the empty graph g: one Const node per weight it
 * expects, named as the weightsManifest names it ("conv/kernel"), with no
 * data yet (tfjs.c then loads the weights by name), constants of its own
 * (concat axes, scales) already filled, inputs and outputs set. Errors:
 * GG_EUNSUPPORTED naming the layer class and name, GG_EPARSE for malformed
 * topology, GG_ENOMEM. On error g holds what was built (the caller frees). */
struct json_t;
int gg__layers_build(struct json_t *root, const char *file, gg_graph *g, char *err,
                     size_t errlen);
/* After the weights are loaded: each Conv2D's kernel and bias have the shape
 * its config declares (kernel_size, filters), as TF.js checks. GG_EPARSE
 * naming the layer and the weight otherwise. */
int gg__layers_check_weights(struct json_t *root, const char *file, const gg_graph *g, char *err,
                             size_t errlen);

/* Name of an op for messages. */
const char *gg__op_name(gg_op op);

/* The two ONNX-era op groups (see the enum): shape rule and reference kernel
 * for every op from GG_OP_DIV to GG_OP_GROUP_NORM (group E, ops-elem.c) and
 * from GG_OP_BATCH_MATMUL to GG_OP_RESIZE (group S, ops-shape.c). Same
 * contract as gg__op_infer / gg__op_run (src/engine/engine-impl.h). */
#define GG_OP_IS_GROUP_E(op) ((op) >= GG_OP_DIV && (op) <= GG_OP_GROUP_NORM)
#define GG_OP_IS_GROUP_S(op) ((op) >= GG_OP_BATCH_MATMUL && (op) <= GG_OP_RESIZE)
struct gg__kctx;
int gg__elem_infer(const gg_node *n, gg_tval *vals, char *err, size_t errlen);
int gg__elem_run(const gg_node *n, gg_tval *vals, const struct gg__kctx *ctx);
int gg__shape_infer(const gg_node *n, gg_tval *vals, char *err, size_t errlen);
int gg__shape_run(const gg_node *n, gg_tval *vals, const struct gg__kctx *ctx);
/* Group W (ops-window.c): GG_OP_MAXPOOL_ND to GG_OP_CONV_TRANSPOSE_ND, same contract. */
#define GG_OP_IS_GROUP_W(op) ((op) >= GG_OP_MAXPOOL_ND && (op) <= GG_OP_CONV_TRANSPOSE_ND)
int gg__window_infer(const gg_node *n, gg_tval *vals, char *err, size_t errlen);
int gg__window_run(const gg_node *n, gg_tval *vals, const struct gg__kctx *ctx);
/* GG_OP_EINSUM (ops-einsum.c), same contract. */
int gg__einsum_infer(const gg_node *n, gg_tval *vals, char *err, size_t errlen);
int gg__einsum_run(const gg_node *n, gg_tval *vals);
/* Group X (ops-extra.c): GG_OP_UNARY_X to GG_OP_DEQUANTIZE, same contract. */
#define GG_OP_IS_GROUP_X(op) ((op) >= GG_OP_UNARY_X && (op) <= GG_OP_DEQUANTIZE)
int gg__extra_infer(const gg_node *n, gg_tval *vals, char *err, size_t errlen);
int gg__extra_run(const gg_node *n, gg_tval *vals, const struct gg__kctx *ctx);

#endif
