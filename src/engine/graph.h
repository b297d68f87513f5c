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
  GG_OP_RESHAPE,     /* in x, shape (const, may hold one -1) */
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
  GG_OP_COUNT
} gg_op;

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
} gg_attrs;

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
} gg_tensor;

typedef struct gg_node {
  char *name;
  gg_op op;
  const char *tf_op; /* the op name as in model.json (static string) */
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

#endif
