/* Graph utilities: shapes, topological order, freeing. */
#include "engine/graph.h"
#include "engine/engine-impl.h"
#include "gpuguard/error.h"
#include "gpuguard/memory.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const k_op_names[GG_OP_COUNT] = {
    [GG_OP_CONST] = "Const",
    [GG_OP_PLACEHOLDER] = "Placeholder",
    [GG_OP_IDENTITY] = "Identity",
    [GG_OP_CONV2D] = "Conv2D",
    [GG_OP_DEPTHWISE] = "DepthwiseConv2d",
    [GG_OP_MATMUL] = "MatMul",
    [GG_OP_ADD] = "Add",
    [GG_OP_SUB] = "Sub",
    [GG_OP_MUL] = "Mul",
    [GG_OP_MAXIMUM] = "Maximum",
    [GG_OP_MINIMUM] = "Minimum",
    [GG_OP_ABS] = "Abs",
    [GG_OP_SQUARE] = "Square",
    [GG_OP_RSQRT] = "Rsqrt",
    [GG_OP_RELU] = "Relu",
    [GG_OP_RELU6] = "Relu6",
    [GG_OP_LEAKY_RELU] = "LeakyRelu",
    [GG_OP_SIGMOID] = "Sigmoid",
    [GG_OP_SOFTMAX] = "Softmax",
    [GG_OP_SUM] = "Sum",
    [GG_OP_MEAN] = "Mean",
    [GG_OP_MAXPOOL] = "MaxPool",
    [GG_OP_PAD] = "Pad",
    [GG_OP_RESHAPE] = "Reshape",
    [GG_OP_SQUEEZE] = "Squeeze",
    [GG_OP_TRANSPOSE] = "Transpose",
    [GG_OP_CONCAT] = "ConcatV2",
    [GG_OP_SPLITV] = "SplitV",
    [GG_OP_RESIZE_BILINEAR] = "ResizeBilinear",
    [GG_OP_SPARSE_TO_DENSE] = "SparseToDense",
    [GG_OP_PRELU] = "Prelu",
    [GG_OP_DEPTH_TO_SPACE] = "DepthToSpace",
    [GG_OP_RESIZE_NEAREST] = "ResizeNearestNeighbor",
    [GG_OP_DIV] = "Div",
    [GG_OP_POW] = "Pow",
    [GG_OP_EQUAL] = "Equal",
    [GG_OP_GREATER] = "Greater",
    [GG_OP_LESS] = "Less",
    [GG_OP_NOT] = "Not",
    [GG_OP_WHERE] = "Where",
    [GG_OP_SQRT] = "Sqrt",
    [GG_OP_EXP] = "Exp",
    [GG_OP_LOG] = "Log",
    [GG_OP_NEG] = "Neg",
    [GG_OP_RECIPROCAL] = "Reciprocal",
    [GG_OP_ERF] = "Erf",
    [GG_OP_TANH] = "Tanh",
    [GG_OP_SOFTPLUS] = "Softplus",
    [GG_OP_HARD_SIGMOID] = "HardSigmoid",
    [GG_OP_HARD_SWISH] = "HardSwish",
    [GG_OP_GELU] = "Gelu",
    [GG_OP_CLIP] = "Clip",
    [GG_OP_CAST] = "Cast",
    [GG_OP_LOG_SOFTMAX] = "LogSoftmax",
    [GG_OP_REDUCE_MAX] = "ReduceMax",
    [GG_OP_REDUCE_MIN] = "ReduceMin",
    [GG_OP_REDUCE_L2] = "ReduceL2",
    [GG_OP_LAYER_NORM] = "LayerNormalization",
    [GG_OP_INSTANCE_NORM] = "InstanceNormalization",
    [GG_OP_GROUP_NORM] = "GroupNormalization",
    [GG_OP_BATCH_MATMUL] = "BatchMatMul",
    [GG_OP_SLICE] = "Slice",
    [GG_OP_GATHER] = "Gather",
    [GG_OP_EXPAND] = "Expand",
    [GG_OP_TILE] = "Tile",
    [GG_OP_SHAPE] = "Shape",
    [GG_OP_RANGE] = "Range",
    [GG_OP_CONSTANT_OF_SHAPE] = "ConstantOfShape",
    [GG_OP_AVGPOOL] = "AvgPool",
    [GG_OP_CONV_TRANSPOSE] = "ConvTranspose",
    [GG_OP_RESIZE] = "Resize",
    [GG_OP_MAXPOOL_ND] = "MaxPoolND",
    [GG_OP_AVGPOOL_ND] = "AvgPoolND",
    [GG_OP_CONV_ND] = "ConvND",
    [GG_OP_CONV_TRANSPOSE_ND] = "ConvTransposeND",
    [GG_OP_EINSUM] = "Einsum",
    [GG_OP_UNARY_X] = "UnaryX",
    [GG_OP_BINARY_X] = "BinaryX",
    [GG_OP_REDUCE_X] = "ReduceX",
    [GG_OP_ARG_X] = "ArgX",
    [GG_OP_CUMSUM] = "CumSum",
    [GG_OP_GATHER_ELEMENTS] = "GatherElements",
    [GG_OP_GATHER_ND] = "GatherND",
    [GG_OP_TRILU] = "Trilu",
    [GG_OP_HARDMAX] = "Hardmax",
    [GG_OP_LRN] = "LRN",
    [GG_OP_TOPK] = "TopK",
    [GG_OP_ONE_HOT] = "OneHot",
    [GG_OP_EYE_LIKE] = "EyeLike",
    [GG_OP_SCATTER_ND] = "ScatterND",
    [GG_OP_SCATTER_ELEMENTS] = "ScatterElements",
    [GG_OP_QUANTIZE] = "Quantize",
    [GG_OP_DEQUANTIZE] = "Dequantize",
};

const char *gg__op_name(gg_op op) {
  if ((int)op < 0 || op >= GG_OP_COUNT || !k_op_names[op]) return "?";
  return k_op_names[op];
}

void *gg__const_alloc(size_t nbytes) {
  void *p = gg_host_alloc("engine/weights", nbytes + GG_CONST_SLACK);
  if (p) memset(p, 0, nbytes + GG_CONST_SLACK);
  return p;
}

void gg__const_free(void *p) { gg_host_free(p); }

size_t gg__dtype_size(gg_dtype dt) {
  (void)dt;
  return 4; /* f32 and i32 */
}

int gg__shape_nelem(const int64_t *shape, int ndim, int64_t *out) {
  if (ndim < 0 || ndim > GG_MAX_DIMS) return GG_ERANGE;
  int64_t n = 1;
  for (int i = 0; i < ndim; i++) {
    if (shape[i] < 0) return GG_ERANGE;
    if (shape[i] == 0) {
      n = 0;
      continue;
    }
    if (n > GG_MAX_ELEMS / shape[i]) return GG_ERANGE;
    n *= shape[i];
  }
  /* A zero dim anywhere makes the count 0, but keep checking the rest. */
  for (int i = 0; i < ndim; i++)
    if (shape[i] > GG_MAX_ELEMS) return GG_ERANGE;
  *out = n;
  return 0;
}

const char *gg__shape_str(const int64_t *shape, int ndim, char *buf, size_t len) {
  size_t o = 0;
  if (!len) return buf;
  buf[0] = 0;
  o += (size_t)snprintf(buf + o, len - o, "[");
  for (int i = 0; i < ndim && o < len; i++)
    o += (size_t)snprintf(buf + o, len - o, "%s%lld", i ? "," : "", (long long)shape[i]);
  if (o < len) snprintf(buf + o, len - o, "]");
  return buf;
}

void gg__graph_free(gg_graph *g) {
  if (!g) return;
  for (int i = 0; i < g->n_tensors; i++) {
    free(g->tensors[i].name);
    if (g->tensors[i].is_const) gg__const_free(g->tensors[i].v.data);
  }
  for (int i = 0; i < g->n_nodes; i++) {
    free(g->nodes[i].name);
    free(g->nodes[i].in);
    free(g->nodes[i].out);
  }
  if (g->output_names)
    for (int i = 0; i < g->n_outputs; i++) free(g->output_names[i]);
  free(g->output_names);
  free(g->tensors);
  free(g->nodes);
  free(g->inputs);
  free(g->outputs);
  free(g->order);
  free(g->path);
  free(g);
}

int gg__graph_toposort(gg_graph *g, char *err, size_t errlen) {
  /* Kahn's algorithm over live non-const nodes; tensors produced by consts
   * or placeholders are ready from the start. */
  int n = g->n_nodes;
  int *indeg = calloc((size_t)n + 1, sizeof *indeg);
  int *queue = malloc(((size_t)n + 1) * sizeof *queue);
  int *order = malloc(((size_t)n + 1) * sizeof *order);
  if (!indeg || !queue || !order) {
    free(indeg), free(queue), free(order);
    return GG_ENOMEM;
  }
  /* consumers adjacency via CSR */
  int *cnt = calloc((size_t)g->n_tensors + 1, sizeof *cnt);
  int total = 0;
  for (int i = 0; i < n; i++) {
    gg_node *nd = &g->nodes[i];
    if (nd->dead) continue;
    for (int k = 0; k < nd->n_in; k++) {
      int p = g->tensors[nd->in[k]].producer;
      if (p >= 0 && !g->nodes[p].dead && g->nodes[p].op != GG_OP_CONST) {
        indeg[i]++;
        cnt[nd->in[k]]++;
        total++;
      }
    }
  }
  int *start = malloc(((size_t)g->n_tensors + 1) * sizeof *start);
  int *adj = malloc(((size_t)total + 1) * sizeof *adj);
  if (!cnt || !start || !adj) {
    free(indeg), free(queue), free(order), free(cnt), free(start), free(adj);
    return GG_ENOMEM;
  }
  int acc = 0;
  for (int t = 0; t < g->n_tensors; t++) {
    start[t] = acc;
    acc += cnt[t];
    cnt[t] = 0;
  }
  start[g->n_tensors] = acc;
  for (int i = 0; i < n; i++) {
    gg_node *nd = &g->nodes[i];
    if (nd->dead) continue;
    for (int k = 0; k < nd->n_in; k++) {
      int t = nd->in[k];
      int p = g->tensors[t].producer;
      if (p >= 0 && !g->nodes[p].dead && g->nodes[p].op != GG_OP_CONST)
        adj[start[t] + cnt[t]++] = i;
    }
  }
  int qh = 0, qt = 0, no = 0, live = 0;
  for (int i = 0; i < n; i++) {
    if (g->nodes[i].dead || g->nodes[i].op == GG_OP_CONST) continue;
    live++;
    if (indeg[i] == 0) queue[qt++] = i;
  }
  while (qh < qt) {
    int i = queue[qh++];
    if (g->nodes[i].op != GG_OP_PLACEHOLDER) order[no++] = i;
    for (int k = 0; k < g->nodes[i].n_out; k++) {
      int t = g->nodes[i].out[k];
      for (int j = start[t]; j < start[t + 1]; j++)
        if (--indeg[adj[j]] == 0) queue[qt++] = adj[j];
    }
  }
  int rc = 0;
  if (qt != live) {
    int bad = -1;
    for (int i = 0; i < n && bad < 0; i++)
      if (!g->nodes[i].dead && g->nodes[i].op != GG_OP_CONST && indeg[i] > 0) bad = i;
    snprintf(err, errlen, "%s: node '%s' is on a cycle (the graph must be acyclic)", g->path,
             bad >= 0 ? g->nodes[bad].name : "?");
    rc = GG_EPARSE;
    free(order);
  } else {
    free(g->order);
    g->order = order;
    g->n_order = no;
  }
  free(indeg), free(queue), free(cnt), free(start), free(adj);
  return rc;
}

/* Constants nothing live reads any more (folded-away inputs) are freed and
 * their Const nodes marked dead; weights_bytes counts the rest. */
static int drop_unused_consts(gg_graph *g) {
  char *used = calloc((size_t)g->n_tensors + 1, 1);
  if (!used) return GG_ENOMEM;
  for (int i = 0; i < g->n_nodes; i++)
    if (!g->nodes[i].dead)
      for (int k = 0; k < g->nodes[i].n_in; k++) used[g->nodes[i].in[k]] = 1;
  for (int i = 0; i < g->n_outputs; i++) used[g->outputs[i]] = 1;
  g->weights_bytes = 0;
  for (int t = 0; t < g->n_tensors; t++) {
    gg_tensor *tt = &g->tensors[t];
    if (!tt->is_const) continue;
    if (!used[t]) {
      gg__const_free(tt->v.data);
      tt->v.data = NULL;
      tt->is_const = 0;
      if (tt->producer >= 0) g->nodes[tt->producer].dead = 1;
      continue;
    }
    g->weights_bytes += GG_CONST_BYTES((uint64_t)tt->v.nelem * gg__dtype_size(tt->v.dtype));
  }
  free(used);
  return 0;
}

int gg__graph_finish(gg_graph *g, char *err, size_t errlen) {
  int rc;
  if ((rc = gg__graph_toposort(g, err, errlen))) return rc;
  if ((rc = gg__graph_fold_constants(g, err, errlen))) return rc;
  gg__graph_fuse(g);
  if ((rc = gg__graph_toposort(g, err, errlen))) return rc;
  return drop_unused_consts(g);
}
