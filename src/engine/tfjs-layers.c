/* TensorFlow.js layers-model importer: the Keras topology of a model.json
 * with "format": "layers-model" (modelTopology.model_config) turned into the
 * engine's graph IR. tfjs.c reads the file and, after this builds the nodes,
 * loads the weights by name exactly as for graph models (the same checks on
 * the manifest and the shards). Everything read here is untrusted: each
 * layer is checked before use and each failure names the layer's class and
 * name. Supported layers and what they become: docs/layers-models.md. */
#include "engine/engine-impl.h"
#include "engine/graph.h"
#include "gpuguard/error.h"

#include <jansson.h>

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LAYERS 100000
#define MAX_LAYER_INPUTS 1024

/* The ESRGAN packages' MultiplyBeta multiplies by a constant it does not
 * read from the config (@upscalerjs packages/shared/src/esrgan/esrgan.ts). */
#define MULTIPLY_BETA 0.2f

/* Name -> int, open addressing, grown at half full: a hostile model with
 * 100,000 layers must not make every lookup a scan. Keys are borrowed. */
typedef struct nmap {
  size_t cap, n;
  const char **keys;
  int *vals;
} nmap;

static uint64_t fnv(const char *s) {
  uint64_t h = 1469598103934665603ull;
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 1099511628211ull;
  return h;
}

static void nmap_free(nmap *m) {
  free(m->keys);
  free(m->vals);
  memset(m, 0, sizeof *m);
}

static int nmap_get(const nmap *m, const char *k) {
  if (!m->cap) return -1;
  for (size_t i = fnv(k) & (m->cap - 1); m->keys[i]; i = (i + 1) & (m->cap - 1))
    if (!strcmp(m->keys[i], k)) return m->vals[i];
  return -1;
}

/* Inserts k (not present yet). Returns 0 or GG_ENOMEM. */
static int nmap_put(nmap *m, const char *k, int v) {
  if (2 * (m->n + 1) > m->cap) {
    nmap old = *m, nm = {.cap = m->cap ? m->cap * 2 : 64};
    nm.keys = calloc(nm.cap, sizeof *nm.keys);
    nm.vals = calloc(nm.cap, sizeof *nm.vals);
    if (!nm.keys || !nm.vals) {
      nmap_free(&nm);
      return GG_ENOMEM;
    }
    *m = nm;
    for (size_t i = 0; i < old.cap; i++)
      if (old.keys[i]) nmap_put(m, old.keys[i], old.vals[i]);
    nmap_free(&old);
  }
  size_t i = fnv(k) & (m->cap - 1);
  while (m->keys[i])
    i = (i + 1) & (m->cap - 1);
  m->keys[i] = k, m->vals[i] = v, m->n++;
  return 0;
}

typedef struct builder {
  gg_graph *g;
  const char *file;
  char *err;
  size_t errlen;
  int cap_nodes, cap_tensors;
  nmap nodes;  /* node name (owned by the graph) -> node index */
  nmap layers; /* layer name (borrowed from the JSON) -> its output tensor */
} builder;

static char *dupstr(const char *s) {
  size_t n = strlen(s) + 1;
  char *d = malloc(n);
  if (d) memcpy(d, s, n);
  return d;
}

static int node_exists(const builder *b, const char *name) {
  return nmap_get(&b->nodes, name) >= 0;
}

/* Appends a node with one output tensor of the same name; returns the
 * output tensor's index or a negative error. ins: n_in tensor indices. */
static int add_node(builder *b, const char *name, gg_op op, const char *src_op, const int *ins,
                    int n_in) {
  gg_graph *g = b->g;
  if (node_exists(b, name))
    return gg_errf(b->err, b->errlen, GG_EPARSE, "%s: layer name '%s' is used twice", b->file,
                   name);
  if (g->n_nodes == b->cap_nodes) {
    int nc = b->cap_nodes ? b->cap_nodes * 2 : 64;
    gg_node *nn = realloc(g->nodes, (size_t)nc * sizeof *nn);
    if (!nn) return GG_ENOMEM;
    memset(nn + b->cap_nodes, 0, (size_t)(nc - b->cap_nodes) * sizeof *nn);
    g->nodes = nn, b->cap_nodes = nc;
  }
  if (g->n_tensors == b->cap_tensors) {
    int nc = b->cap_tensors ? b->cap_tensors * 2 : 64;
    gg_tensor *nt = realloc(g->tensors, (size_t)nc * sizeof *nt);
    if (!nt) return GG_ENOMEM;
    memset(nt + b->cap_tensors, 0, (size_t)(nc - b->cap_tensors) * sizeof *nt);
    g->tensors = nt, b->cap_tensors = nc;
  }
  gg_node *n = &g->nodes[g->n_nodes];
  gg_tensor *t = &g->tensors[g->n_tensors];
  n->name = dupstr(name);
  n->in = malloc(((size_t)n_in + 1) * sizeof *n->in);
  n->out = malloc(sizeof *n->out);
  t->name = dupstr(name);
  if (!n->name || !n->in || !n->out || !t->name) {
    free(n->name), free(n->in), free(n->out), free(t->name);
    memset(n, 0, sizeof *n);
    memset(t, 0, sizeof *t);
    return GG_ENOMEM;
  }
  n->op = op;
  n->src_op = src_op;
  n->n_in = n_in;
  n->n_out = 1;
  for (int k = 0; k < n_in; k++)
    n->in[k] = ins[k];
  n->out[0] = g->n_tensors;
  n->a.strides[0] = n->a.strides[1] = 1;
  n->a.dilations[0] = n->a.dilations[1] = 1;
  n->a.ksize[0] = n->a.ksize[1] = 1;
  t->producer = g->n_nodes;
  g->n_nodes++;
  g->n_tensors++;
  if (nmap_put(&b->nodes, n->name, g->n_nodes - 1)) return GG_ENOMEM;
  return g->n_tensors - 1;
}

/* A weight the manifest must provide ("layer/kernel"): a Const node whose
 * data tfjs.c fills by name. */
static int add_weight(builder *b, const char *layer, const char *what) {
  char name[1100];
  snprintf(name, sizeof name, "%.1000s/%s", layer, what);
  return add_node(b, name, GG_OP_CONST, "Const", NULL, 0);
}

/* A constant of our own: float32 (dt F32) or int32 values, shape [n]
 * (ndim 0 when scalar). */
static int add_const(builder *b, const char *layer, const char *what, gg_dtype dt, const void *vals,
                     int n, int scalar) {
  char name[1100];
  snprintf(name, sizeof name, "%.1000s/gg_%s", layer, what);
  int t = add_node(b, name, GG_OP_CONST, "Const", NULL, 0);
  if (t < 0) return t;
  gg_tensor *tt = &b->g->tensors[t];
  tt->v.data = gg__const_alloc((size_t)n * 4);
  if (!tt->v.data) return GG_ENOMEM;
  memcpy(tt->v.data, vals, (size_t)n * 4);
  tt->is_const = 1;
  tt->v.dtype = dt;
  tt->v.ndim = scalar ? 0 : 1;
  tt->v.shape[0] = n;
  tt->v.nelem = n;
  return t;
}

/* ------------------------------------------------------------ config */

typedef struct layer {
  const char *cls, *name;
  json_t *cfg;
  int in[MAX_LAYER_INPUTS];
  int n_in;
} layer;

#define LBAD(l, ...) lerr(b, l, GG_EPARSE, __VA_ARGS__)
#define LUNSUP(l, ...) lerr(b, l, GG_EUNSUPPORTED, __VA_ARGS__)

__attribute__((format(printf, 4, 5))) static int lerr(builder *b, const layer *l, int code,
                                                      const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return gg_errf(b->err, b->errlen, code, "%s: layer '%s' (%s): %s", b->file, l->name, l->cls, msg);
}

/* Two ints from [a, b] or a single int (Keras accepts both). */
static int cfg_pair(json_t *cfg, const char *key, int def, int lo, int hi, int out[2]) {
  json_t *v = json_object_get(cfg, key);
  out[0] = out[1] = def;
  if (!v || json_is_null(v)) return 0;
  if (json_is_integer(v)) {
    json_int_t a = json_integer_value(v);
    if (a < lo || a > hi) return -1;
    out[0] = out[1] = (int)a;
  } else if (json_is_array(v) && json_array_size(v) == 2 && json_is_integer(json_array_get(v, 0)) &&
             json_is_integer(json_array_get(v, 1))) {
    json_int_t a = json_integer_value(json_array_get(v, 0)),
               c = json_integer_value(json_array_get(v, 1));
    if (a < lo || a > hi || c < lo || c > hi) return -1;
    out[0] = (int)a, out[1] = (int)c;
  } else {
    return -1;
  }
  return out[0] < lo || out[0] > hi || out[1] < lo || out[1] > hi ? -1 : 0;
}

/* A string option: def when absent or null, "(not a string)" when it is
 * something else, so that no comparison accepts it. */
static const char *cfg_str(json_t *cfg, const char *key, const char *def) {
  json_t *v = json_object_get(cfg, key);
  if (!v || json_is_null(v)) return def;
  return json_is_string(v) ? json_string_value(v) : "(not a string)";
}

/* Keras data_format must be channels_last (NHWC) where the layer has one. */
static int check_channels_last(builder *b, const layer *l) {
  const char *df = cfg_str(l->cfg, "data_format", "channels_last");
  if (strcmp(df, "channels_last"))
    return LUNSUP(l, "data_format '%s' is not supported (only channels_last)", df);
  return 0;
}

/* An activation by its Keras name applied to tensor x as node `name`;
 * "linear" returns x itself. */
static int add_activation(builder *b, const layer *l, const char *name, const char *act, int x) {
  static const struct {
    const char *keras;
    gg_op op;
    const char *tf;
  } k_acts[] = {
      {"relu", GG_OP_RELU, "Relu"},
      {"relu6", GG_OP_RELU6, "Relu6"},
      {"sigmoid", GG_OP_SIGMOID, "Sigmoid"},
      {"softmax", GG_OP_SOFTMAX, "Softmax"},
  };
  if (!strcmp(act, "linear")) return x;
  for (size_t i = 0; i < sizeof k_acts / sizeof k_acts[0]; i++)
    if (!strcmp(act, k_acts[i].keras)) return add_node(b, name, k_acts[i].op, k_acts[i].tf, &x, 1);
  return LUNSUP(l, "activation '%s' is not supported (linear, relu, relu6, sigmoid, softmax)", act);
}

static int build_input(builder *b, const layer *l) {
  json_t *shp = json_object_get(l->cfg, "batch_input_shape");
  if (!shp) shp = json_object_get(l->cfg, "batchInputShape");
  if (!shp) shp = json_object_get(l->cfg, "batch_shape");
  if (!json_is_array(shp) || json_array_size(shp) < 1 || json_array_size(shp) > GG_MAX_DIMS)
    return LBAD(l, "needs batch_input_shape with 1..%d dims", GG_MAX_DIMS);
  const char *dt = cfg_str(l->cfg, "dtype", "float32");
  if (strcmp(dt, "float32")) return LUNSUP(l, "input dtype '%s' is not supported (float32)", dt);
  if (json_is_true(json_object_get(l->cfg, "sparse")) ||
      json_is_true(json_object_get(l->cfg, "ragged")))
    return LUNSUP(l, "sparse and ragged inputs are not supported");
  int t = add_node(b, l->name, GG_OP_PLACEHOLDER, "InputLayer", NULL, 0);
  if (t < 0) return t;
  gg_tensor *tt = &b->g->tensors[t];
  tt->is_input = 1;
  tt->v.dtype = GG_DT_F32;
  tt->v.ndim = (int)json_array_size(shp);
  for (int d = 0; d < tt->v.ndim; d++) {
    json_t *e = json_array_get(shp, (size_t)d);
    if (json_is_null(e))
      tt->v.shape[d] = -1;
    else if (json_is_integer(e) && json_integer_value(e) >= 1 &&
             json_integer_value(e) <= GG_MAX_ELEMS)
      tt->v.shape[d] = json_integer_value(e);
    else
      return LBAD(l, "bad batch_input_shape dim %d", d);
  }
  return t;
}

static int build_conv(builder *b, const layer *l) {
  json_t *c = l->cfg;
  int rc;
  if ((rc = check_channels_last(b, l))) return rc;
  int ks[2], st[2], dl[2];
  if (cfg_pair(c, "kernel_size", 1, 1, 4096, ks)) return LBAD(l, "bad kernel_size");
  if (cfg_pair(c, "strides", 1, 1, 1024, st)) return LUNSUP(l, "strides must be 1..1024");
  if (cfg_pair(c, "dilation_rate", 1, 1, 1024, dl))
    return LUNSUP(l, "dilation_rate must be 1..1024");
  if ((st[0] > 1 || st[1] > 1) && (dl[0] > 1 || dl[1] > 1))
    return LUNSUP(l, "strides and dilation_rate both above 1 (Keras refuses it too)");
  json_t *groups = json_object_get(c, "groups");
  if (groups && !json_is_null(groups) &&
      (!json_is_integer(groups) || json_integer_value(groups) != 1))
    return LUNSUP(l, "groups other than 1 are not supported");
  const char *pad = cfg_str(c, "padding", "valid");
  json_t *ub = json_object_get(c, "use_bias");
  int use_bias = !ub || json_is_true(ub);
  if (ub && !json_is_boolean(ub)) return LBAD(l, "use_bias must be a boolean");
  json_t *jf = json_object_get(c, "filters");
  if (!json_is_integer(jf) || json_integer_value(jf) < 1 || json_integer_value(jf) > 65536)
    return LBAD(l, "filters must be 1..65536");
  int ins[3];
  ins[0] = l->in[0];
  if ((ins[1] = add_weight(b, l->name, "kernel")) < 0) return ins[1];
  if (use_bias && (ins[2] = add_weight(b, l->name, "bias")) < 0) return ins[2];
  const char *act = cfg_str(c, "activation", "linear");
  int linear = !strcmp(act, "linear");
  char cname[1100];
  snprintf(cname, sizeof cname, "%.1000s/Conv2D", l->name);
  int y = add_node(b, linear ? l->name : cname, GG_OP_CONV2D, "Conv2D", ins, 2 + use_bias);
  if (y < 0) return y;
  gg_node *n = &b->g->nodes[b->g->tensors[y].producer];
  n->a.has_bias = use_bias;
  n->a.strides[0] = st[0], n->a.strides[1] = st[1];
  n->a.dilations[0] = dl[0], n->a.dilations[1] = dl[1];
  if (!strcmp(pad, "same"))
    n->a.padding = GG_PAD_SAME;
  else if (!strcmp(pad, "valid"))
    n->a.padding = GG_PAD_VALID;
  else
    return LUNSUP(l, "padding '%s' is not supported (same, valid)", pad);
  return linear ? y : add_activation(b, l, l->name, act, y);
}

static int build_relu(builder *b, const layer *l) {
  json_t *mv = json_object_get(l->cfg, "max_value"),
         *ns = json_object_get(l->cfg, "negative_slope");
  json_t *th = json_object_get(l->cfg, "threshold");
  double max_v = json_is_number(mv) ? json_number_value(mv) : -1;
  double slope = json_is_number(ns) ? json_number_value(ns) : 0;
  double thr = json_is_number(th) ? json_number_value(th) : 0;
  if ((mv && !json_is_null(mv) && !json_is_number(mv)) || (ns && !json_is_number(ns)) ||
      (th && !json_is_number(th)))
    return LBAD(l, "max_value, negative_slope and threshold must be numbers");
  if (thr != 0) return LUNSUP(l, "threshold %g is not supported (0 only)", thr);
  if (max_v < 0 && slope == 0) return add_node(b, l->name, GG_OP_RELU, "Relu", l->in, 1);
  if (max_v == 6 && slope == 0) return add_node(b, l->name, GG_OP_RELU6, "Relu6", l->in, 1);
  if (max_v < 0 && slope > 0) {
    int y = add_node(b, l->name, GG_OP_LEAKY_RELU, "LeakyRelu", l->in, 1);
    if (y >= 0) b->g->nodes[b->g->tensors[y].producer].a.alpha = (float)slope;
    return y;
  }
  return LUNSUP(l, "max_value %g with negative_slope %g is not supported", max_v, slope);
}

static int build_leaky(builder *b, const layer *l) {
  json_t *a = json_object_get(l->cfg, "alpha");
  if (!a) a = json_object_get(l->cfg, "negative_slope");
  if (a && !json_is_number(a)) return LBAD(l, "alpha must be a number");
  float alpha = a ? (float)json_number_value(a) : 0.3f; /* Keras / TF.js default */
  int y = add_node(b, l->name, GG_OP_LEAKY_RELU, "LeakyRelu", l->in, 1);
  if (y >= 0) b->g->nodes[b->g->tensors[y].producer].a.alpha = alpha;
  return y;
}

static int build_concat(builder *b, const layer *l) {
  json_t *ja = json_object_get(l->cfg, "axis");
  if (ja && !json_is_integer(ja)) return LBAD(l, "axis must be an integer");
  json_int_t ax = ja ? json_integer_value(ja) : -1;
  if (ax < -GG_MAX_DIMS || ax >= GG_MAX_DIMS)
    return LBAD(l, "axis %lld out of range", (long long)ax);
  int32_t axis = (int32_t)ax;
  if (l->n_in < 2) return LBAD(l, "needs at least 2 inputs, has %d", l->n_in);
  int ins[MAX_LAYER_INPUTS + 1];
  memcpy(ins, l->in, (size_t)l->n_in * sizeof *ins);
  if ((ins[l->n_in] = add_const(b, l->name, "axis", GG_DT_I32, &axis, 1, 1)) < 0)
    return ins[l->n_in];
  return add_node(b, l->name, GG_OP_CONCAT, "Concatenate", ins, l->n_in + 1);
}

/* Add of n inputs: a left-to-right chain of binary adds, as tfjs-layers'
 * Add layer sums them. */
static int build_add(builder *b, const layer *l) {
  if (l->n_in < 2) return LBAD(l, "needs at least 2 inputs, has %d", l->n_in);
  int acc = l->in[0];
  for (int k = 1; k < l->n_in; k++) {
    char name[1100];
    if (k < l->n_in - 1)
      snprintf(name, sizeof name, "%.1000s/add%d", l->name, k);
    else
      snprintf(name, sizeof name, "%s", l->name);
    int ins[2] = {acc, l->in[k]};
    if ((acc = add_node(b, name, GG_OP_ADD, "Add", ins, 2)) < 0) return acc;
  }
  return acc;
}

static int build_upsample(builder *b, const layer *l) {
  int rc, sz[2];
  if ((rc = check_channels_last(b, l))) return rc;
  if (cfg_pair(l->cfg, "size", 2, 1, 64, sz)) return LUNSUP(l, "size must be 1..64");
  const char *interp = cfg_str(l->cfg, "interpolation", "nearest");
  if (strcmp(interp, "nearest"))
    return LUNSUP(l, "interpolation '%s' is not supported (nearest)", interp);
  int y = add_node(b, l->name, GG_OP_RESIZE_NEAREST, "UpSampling2D", l->in, 1);
  if (y >= 0) {
    gg_node *n = &b->g->nodes[b->g->tensors[y].producer];
    n->a.scale[0] = sz[0], n->a.scale[1] = sz[1];
  }
  return y;
}

static int build_multiply_beta(builder *b, const layer *l) {
  json_t *jb = json_object_get(l->cfg, "beta");
  if (jb && (!json_is_number(jb) || fabs(json_number_value(jb) - MULTIPLY_BETA) > 1e-7))
    return LUNSUP(l, "beta %g differs from the %g the ESRGAN packages multiply by",
                  json_is_number(jb) ? json_number_value(jb) : NAN, (double)MULTIPLY_BETA);
  float beta = MULTIPLY_BETA;
  int ins[2] = {l->in[0], 0};
  if ((ins[1] = add_const(b, l->name, "beta", GG_DT_F32, &beta, 1, 1)) < 0) return ins[1];
  return add_node(b, l->name, GG_OP_MUL, "MultiplyBeta", ins, 2);
}

/* PixelShuffle<N>x: tf.depthToSpace(x, N, 'NHWC') in the packages. */
static int build_pixel_shuffle(builder *b, const layer *l, int scale) {
  json_t *js = json_object_get(l->cfg, "scale");
  if (js && (!json_is_integer(js) || json_integer_value(js) != scale))
    return LBAD(l, "config scale does not match the class name's %dx", scale);
  int y = add_node(b, l->name, GG_OP_DEPTH_TO_SPACE, "PixelShuffle", l->in, 1);
  if (y >= 0) b->g->nodes[b->g->tensors[y].producer].a.block_size = scale;
  return y;
}

/* ------------------------------------------------------------ topology */

static int find_layer(const builder *b, const char *name) {
  return nmap_get(&b->layers, name);
}

/* Resolves inbound_nodes (one call of the layer, Keras 2 form
 * [[["name", 0, 0, {}], ...]]) into l->in. */
static int parse_inbound(builder *b, layer *l, json_t *jl) {
  json_t *ib = json_object_get(jl, "inbound_nodes");
  l->n_in = 0;
  if (!ib || (json_is_array(ib) && !json_array_size(ib))) return 0;
  if (!json_is_array(ib)) return LBAD(l, "inbound_nodes must be an array");
  if (json_array_size(ib) > 1)
    return LUNSUP(l, "the layer is called %zu times (shared layers are not supported)",
                  json_array_size(ib));
  json_t *call = json_array_get(ib, 0);
  if (!json_is_array(call))
    return LUNSUP(l, "inbound_nodes[0] is not a list of [layer, node, tensor, kwargs] (Keras 3 "
                     "topologies are not supported)");
  if (json_array_size(call) > MAX_LAYER_INPUTS)
    return LUNSUP(l, "%zu inputs (max %d)", json_array_size(call), MAX_LAYER_INPUTS);
  for (size_t k = 0; k < json_array_size(call); k++) {
    json_t *e = json_array_get(call, k);
    json_t *nm = json_array_get(e, 0), *ni = json_array_get(e, 1), *ti = json_array_get(e, 2);
    if (!json_is_array(e) || !json_is_string(nm) || !json_is_integer(ni) || !json_is_integer(ti))
      return LBAD(l, "inbound %zu must be [layer name, node index, tensor index, kwargs]", k);
    if (json_integer_value(ni) != 0 || json_integer_value(ti) != 0)
      return LUNSUP(l,
                    "inbound '%s' uses node %lld tensor %lld (only single-call, single-output "
                    "layers are supported)",
                    json_string_value(nm), (long long)json_integer_value(ni),
                    (long long)json_integer_value(ti));
    json_t *kw = json_array_get(e, 3);
    if (kw && json_is_object(kw) && json_object_size(kw))
      return LUNSUP(l, "inbound '%s' passes call arguments (not supported)", json_string_value(nm));
    int t = find_layer(b, json_string_value(nm));
    if (t < 0)
      return LBAD(l, "inbound layer '%s' is not defined before this layer", json_string_value(nm));
    l->in[l->n_in++] = t;
  }
  return 0;
}

/* Input and output lists: [["name", 0, 0], ...]; marks the tensors. */
static int io_list(builder *b, json_t *cfg, const char *key, int is_out) {
  gg_graph *g = b->g;
  json_t *lst = json_object_get(cfg, key);
  if (!json_is_array(lst) || !json_array_size(lst))
    return gg_errf(b->err, b->errlen, GG_EPARSE,
                   "%s: model_config.config.%s must be a non-empty list", b->file, key);
  size_t n = json_array_size(lst);
  if (n > 1024) return gg_errf(b->err, b->errlen, GG_EPARSE, "%s: too many %s", b->file, key);
  int *arr = calloc(n + 1, sizeof *arr);
  char **names = is_out ? calloc(n + 1, sizeof *names) : NULL;
  if (!arr || (is_out && !names)) {
    free(arr), free(names);
    return GG_ENOMEM;
  }
  if (is_out)
    g->outputs = arr, g->output_names = names;
  else
    g->inputs = arr;
  for (size_t i = 0; i < n; i++) {
    json_t *e = json_array_get(lst, i), *nm = json_array_get(e, 0);
    if (!json_is_string(nm))
      return gg_errf(b->err, b->errlen, GG_EPARSE, "%s: %s[%zu] must be [layer name, 0, 0]",
                     b->file, key, i);
    int t = find_layer(b, json_string_value(nm));
    if (t < 0)
      return gg_errf(b->err, b->errlen, GG_EPARSE,
                     "%s: %s names layer '%s', which the model does not define", b->file, key,
                     json_string_value(nm));
    if (is_out) {
      if (!(names[i] = dupstr(json_string_value(nm)))) return GG_ENOMEM;
      g->tensors[t].is_output = 1;
      g->outputs[g->n_outputs++] = t;
    } else {
      if (!g->tensors[t].is_input)
        return gg_errf(b->err, b->errlen, GG_EPARSE, "%s: input '%s' is not an InputLayer", b->file,
                       json_string_value(nm));
      g->inputs[g->n_inputs++] = t;
    }
  }
  return 0;
}

/* The tensor of the Const node named name (consts: name -> node), or NULL. */
static const gg_tensor *const_named(const gg_graph *g, const nmap *consts, const char *name) {
  int i = nmap_get(consts, name);
  return i >= 0 ? &g->tensors[g->nodes[i].out[0]] : NULL;
}

int gg__layers_check_weights(json_t *root, const char *file, const gg_graph *g, char *err,
                             size_t errlen) {
  json_t *topo = json_object_get(root, "modelTopology");
  json_t *mc = json_is_object(topo) ? json_object_get(topo, "model_config") : NULL;
  if (!mc) mc = topo;
  json_t *jlayers = json_object_get(json_object_get(mc, "config"), "layers");
  builder bb = {.g = (gg_graph *)g, .file = file, .err = err, .errlen = errlen}, *b = &bb;
  nmap consts = {0};
  int rc = 0;
  for (int i = 0; !rc && i < g->n_nodes; i++)
    if (g->nodes[i].op == GG_OP_CONST) rc = nmap_put(&consts, g->nodes[i].name, i);
  for (size_t i = 0; !rc && i < json_array_size(jlayers); i++) {
    json_t *jl = json_array_get(jlayers, i);
    layer l = {.cls = json_string_value(json_object_get(jl, "class_name")),
               .cfg = json_object_get(jl, "config")};
    json_t *jn = json_object_get(jl, "name");
    if (!json_is_string(jn)) jn = json_object_get(l.cfg, "name");
    l.name = json_string_value(jn);
    if (!l.cls || !l.name || strcmp(l.cls, "Conv2D")) continue;
    char wn[1100];
    int ks[2];
    int64_t filters = json_integer_value(json_object_get(l.cfg, "filters"));
    cfg_pair(l.cfg, "kernel_size", 1, 1, 4096, ks);
    snprintf(wn, sizeof wn, "%.1000s/kernel", l.name);
    const gg_tensor *k = const_named(g, &consts, wn);
    if (k && (k->v.ndim != 4 || k->v.shape[0] != ks[0] || k->v.shape[1] != ks[1] ||
              k->v.shape[3] != filters)) {
      char sb[96];
      rc = lerr(
          b, &l, GG_EPARSE, "weight '%s' has shape %s, the layer's config wants [%d,%d,*,%lld]", wn,
          gg__shape_str(k->v.shape, k->v.ndim, sb, sizeof sb), ks[0], ks[1], (long long)filters);
      break;
    }
    snprintf(wn, sizeof wn, "%.1000s/bias", l.name);
    const gg_tensor *bt = const_named(g, &consts, wn);
    if (bt && bt->v.nelem != filters)
      rc = lerr(b, &l, GG_EPARSE, "weight '%s' has %lld values, the layer has %lld filters", wn,
                (long long)bt->v.nelem, (long long)filters);
  }
  nmap_free(&consts);
  return rc;
}

int gg__layers_build(json_t *root, const char *file, gg_graph *g, char *err, size_t errlen) {
  builder bb = {.g = g, .file = file, .err = err, .errlen = errlen}, *b = &bb;
  json_t *topo = json_object_get(root, "modelTopology");
  json_t *mc = json_is_object(topo) ? json_object_get(topo, "model_config") : NULL;
  if (!mc && json_is_object(topo) && json_object_get(topo, "class_name")) mc = topo;
  json_t *cls = json_object_get(mc, "class_name"), *cfg = json_object_get(mc, "config");
  json_t *jlayers = json_is_object(cfg) ? json_object_get(cfg, "layers") : NULL;
  if (!json_is_string(cls) || !json_is_array(jlayers))
    return gg_errf(err, errlen, GG_EPARSE,
                   "%s: expected a TF.js layers model (modelTopology.model_config with class_name "
                   "and config.layers[])",
                   file);
  const char *mcls = json_string_value(cls);
  if (strcmp(mcls, "Functional") && strcmp(mcls, "Model"))
    return gg_errf(err, errlen, GG_EUNSUPPORTED,
                   "%s: model class '%s' is not supported (Functional / Model topologies only)",
                   file, mcls);
  size_t nl = json_array_size(jlayers);
  if (nl > MAX_LAYERS)
    return gg_errf(err, errlen, GG_ETOO_LARGE, "%s: %zu layers (max %d)", file, nl, MAX_LAYERS);
  layer *l = calloc(1, sizeof *l);
  int rc = !l ? GG_ENOMEM : 0;
  for (size_t i = 0; !rc && i < nl; i++) {
    json_t *jl = json_array_get(jlayers, i);
    json_t *jc = json_object_get(jl, "class_name"), *jcfg = json_object_get(jl, "config");
    json_t *jn = json_object_get(jl, "name");
    if (!json_is_string(jn) && json_is_object(jcfg)) jn = json_object_get(jcfg, "name");
    if (!json_is_string(jc) || !json_is_object(jcfg) || !json_is_string(jn) ||
        !json_string_length(jn)) {
      rc = gg_errf(err, errlen, GG_EPARSE,
                   "%s: layer %zu needs class_name, name and a config object", file, i);
      break;
    }
    l->cls = json_string_value(jc), l->name = json_string_value(jn), l->cfg = jcfg;
    if (find_layer(b, l->name) >= 0) {
      rc = LBAD(l, "the layer name is used twice");
      break;
    }
    if ((rc = parse_inbound(b, l, jl))) break;
    int is_input = !strcmp(l->cls, "InputLayer");
    if (!is_input && l->n_in < 1) {
      rc = LBAD(l, "has no inbound layer");
      break;
    }
    int single = !strcmp(l->cls, "Concatenate") || !strcmp(l->cls, "Add") ? 0 : 1;
    if (!is_input && single && l->n_in != 1) {
      rc = LBAD(l, "takes 1 input, has %d", l->n_in);
      break;
    }
    int t;
    /* PixelShuffle2x .. PixelShuffle8x: the packages name the class by scale */
    int scale = strlen(l->cls) == 14 && !strncmp(l->cls, "PixelShuffle", 12) && l->cls[13] == 'x' &&
                        l->cls[12] >= '2' && l->cls[12] <= '8'
                    ? l->cls[12] - '0'
                    : 0;
    if (is_input)
      t = build_input(b, l);
    else if (!strcmp(l->cls, "Conv2D"))
      t = build_conv(b, l);
    else if (!strcmp(l->cls, "Activation"))
      t = add_activation(b, l, l->name, cfg_str(jcfg, "activation", "linear"), l->in[0]);
    else if (!strcmp(l->cls, "ReLU"))
      t = build_relu(b, l);
    else if (!strcmp(l->cls, "LeakyReLU"))
      t = build_leaky(b, l);
    else if (!strcmp(l->cls, "Concatenate"))
      t = build_concat(b, l);
    else if (!strcmp(l->cls, "Add"))
      t = build_add(b, l);
    else if (!strcmp(l->cls, "UpSampling2D"))
      t = build_upsample(b, l);
    else if (!strcmp(l->cls, "MultiplyBeta"))
      t = build_multiply_beta(b, l);
    else if (scale)
      t = build_pixel_shuffle(b, l, scale);
    else
      t = LUNSUP(
          l,
          "unknown layer class '%s': gpuguard implements InputLayer, Conv2D, Activation, "
          "ReLU, LeakyReLU, Concatenate, Add, UpSampling2D, MultiplyBeta, PixelShuffle2x..8x "
          "(docs/layers-models.md)",
          l->cls);
    if (t < 0) {
      rc = t;
      break;
    }
    /* "linear" activations return their input: the layer's name then refers to it */
    if ((rc = nmap_put(&b->layers, l->name, t))) break;
  }
  if (!rc) rc = io_list(b, cfg, "input_layers", 0);
  if (!rc) rc = io_list(b, cfg, "output_layers", 1);
  nmap_free(&b->nodes);
  nmap_free(&b->layers);
  free(l);
  return rc;
}
