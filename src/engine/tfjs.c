/* TensorFlow.js graph-model importer: model.json (jansson) + weight shards.
 * Everything read here is untrusted: every count, offset and name is checked
 * before use, and each failure names the file and the node. */
#include "engine/engine-impl.h"
#include "engine/graph.h"
#include "gpuguard/core.h"
#include "gpuguard/error.h"
#include "gpuguard/log.h"

#include <jansson.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_WEIGHT_BYTES ((uint64_t)1 << 31) /* stored bytes of all shards together */
#define MAX_SHARDS 16384                     /* 2 GiB in TF.js's usual 4 MB shards: 512 */
#define MAX_NODES 100000

/* ------------------------------------------------------------ name map */

typedef struct strmap {
  size_t cap;
  const char **keys;
  int *vals;
} strmap;

static uint64_t fnv(const char *s) {
  uint64_t h = 1469598103934665603ull;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
  return h;
}

static int map_init(strmap *m, size_t n) {
  m->cap = 16;
  while (m->cap < n * 2 + 2) m->cap <<= 1;
  m->keys = calloc(m->cap, sizeof *m->keys);
  m->vals = calloc(m->cap, sizeof *m->vals);
  return m->keys && m->vals ? 0 : GG_ENOMEM;
}
static void map_free(strmap *m) {
  free(m->keys);
  free(m->vals);
}
/* Returns the existing value or -1 after inserting. */
static int map_put(strmap *m, const char *k, int v) {
  size_t i = fnv(k) & (m->cap - 1);
  while (m->keys[i]) {
    if (!strcmp(m->keys[i], k)) return m->vals[i];
    i = (i + 1) & (m->cap - 1);
  }
  m->keys[i] = k;
  m->vals[i] = v;
  return -1;
}
static int map_get(const strmap *m, const char *k) {
  size_t i = fnv(k) & (m->cap - 1);
  while (m->keys[i]) {
    if (!strcmp(m->keys[i], k)) return m->vals[i];
    i = (i + 1) & (m->cap - 1);
  }
  return -1;
}

/* ------------------------------------------------------------ attrs */

/* Decodes a base64 string attribute (gg_base64_decode) into out,
 * NUL-terminated and truncated to outlen-1; "" when it is not base64, which
 * the attribute's own check then refuses. */
static void b64dec(const char *s, char *out, size_t outlen) {
  unsigned char *d = NULL;
  size_t n = 0;
  out[0] = 0;
  if (gg_base64_decode(s, 1u << 20, &d, &n, NULL, 0)) return;
  if (n > outlen - 1) n = outlen - 1;
  memcpy(out, d, n);
  out[n] = 0;
  free(d);
}

static json_t *attr(json_t *node, const char *name) {
  json_t *a = json_object_get(node, "attr");
  return json_is_object(a) ? json_object_get(a, name) : NULL;
}

/* Integers in TF.js JSON are strings ("1") or numbers. */
static int json_to_i64(json_t *v, int64_t *out) {
  if (json_is_integer(v)) {
    *out = (int64_t)json_integer_value(v);
    return 0;
  }
  if (json_is_string(v)) {
    const char *s = json_string_value(v);
    char *end = NULL;
    errno = 0;
    long long x = strtoll(s, &end, 10);
    if (end == s || *end || errno) return GG_EPARSE;
    *out = x;
    return 0;
  }
  return GG_EPARSE;
}

static int attr_str(json_t *node, const char *name, char *out, size_t outlen) {
  json_t *a = attr(node, name);
  out[0] = 0;
  if (!a) return 0;
  json_t *s = json_object_get(a, "s");
  if (!json_is_string(s)) return GG_EPARSE;
  b64dec(json_string_value(s), out, outlen);
  return 0;
}

static int attr_bool(json_t *node, const char *name, int *out) {
  json_t *a = attr(node, name);
  if (!a) return 0;
  json_t *b = json_object_get(a, "b");
  if (!b) return 0;
  if (!json_is_boolean(b)) return GG_EPARSE;
  *out = json_is_true(b);
  return 0;
}

static int attr_float(json_t *node, const char *name, float *out) {
  json_t *a = attr(node, name);
  if (!a) return 0;
  json_t *f = json_object_get(a, "f");
  if (!f) return 0;
  if (!json_is_number(f)) return GG_EPARSE;
  *out = (float)json_number_value(f);
  return 0;
}

static int attr_int(json_t *node, const char *name, int64_t *out) {
  json_t *a = attr(node, name);
  if (!a) return 0;
  json_t *i = json_object_get(a, "i");
  if (!i) return 0;
  return json_to_i64(i, out);
}

/* Reads list.i into out; returns count or negative. Missing = 0. */
static int attr_ints(json_t *node, const char *name, int64_t *out, int max) {
  json_t *a = attr(node, name);
  if (!a) return 0;
  json_t *l = json_object_get(a, "list");
  if (!l) return 0;
  if (!json_is_object(l)) return GG_EPARSE;
  json_t *arr = json_object_get(l, "i");
  if (!arr) return 0;
  if (!json_is_array(arr) || (int)json_array_size(arr) > max) return GG_EPARSE;
  for (size_t k = 0; k < json_array_size(arr); k++)
    if (json_to_i64(json_array_get(arr, k), &out[k])) return GG_EPARSE;
  return (int)json_array_size(arr);
}

/* ------------------------------------------------------------ op table */

typedef struct op_map {
  const char *tf;
  gg_op op;
} op_map;

static const op_map k_ops[] = {
    {"Const", GG_OP_CONST},
    {"Placeholder", GG_OP_PLACEHOLDER},
    {"Identity", GG_OP_IDENTITY},
    {"Conv2D", GG_OP_CONV2D},
    {"_FusedConv2D", GG_OP_CONV2D},
    {"DepthwiseConv2dNative", GG_OP_DEPTHWISE},
    {"FusedDepthwiseConv2dNative", GG_OP_DEPTHWISE},
    {"MatMul", GG_OP_MATMUL},
    {"_FusedMatMul", GG_OP_MATMUL},
    {"Add", GG_OP_ADD},
    {"AddV2", GG_OP_ADD},
    {"Sub", GG_OP_SUB},
    {"Mul", GG_OP_MUL},
    {"Maximum", GG_OP_MAXIMUM},
    {"Minimum", GG_OP_MINIMUM},
    {"Abs", GG_OP_ABS},
    {"Square", GG_OP_SQUARE},
    {"Rsqrt", GG_OP_RSQRT},
    {"Relu", GG_OP_RELU},
    {"Relu6", GG_OP_RELU6},
    {"LeakyRelu", GG_OP_LEAKY_RELU},
    {"Sigmoid", GG_OP_SIGMOID},
    {"Softmax", GG_OP_SOFTMAX},
    {"Sum", GG_OP_SUM},
    {"Mean", GG_OP_MEAN},
    {"MaxPool", GG_OP_MAXPOOL},
    {"Pad", GG_OP_PAD},
    {"PadV2", GG_OP_PAD},
    {"Reshape", GG_OP_RESHAPE},
    {"Squeeze", GG_OP_SQUEEZE},
    {"Transpose", GG_OP_TRANSPOSE},
    {"ConcatV2", GG_OP_CONCAT},
    {"SplitV", GG_OP_SPLITV},
    {"ResizeBilinear", GG_OP_RESIZE_BILINEAR},
    {"SparseToDense", GG_OP_SPARSE_TO_DENSE},
    {"Prelu", GG_OP_PRELU},
};

/* Parses the attributes of one node; errors name the node. */
static int parse_attrs(json_t *jn, gg_node *n, const char *file, char *err, size_t errlen) {
  gg_attrs *a = &n->a;
  char s[64];
  int64_t v[16];
  int k;
  a->strides[0] = a->strides[1] = 1;
  a->dilations[0] = a->dilations[1] = 1;
  a->ksize[0] = a->ksize[1] = 1;
  a->alpha = 0.2f; /* TF's LeakyRelu default */
  n->n_out = 1;
#define BAD(...) gg_errf(err, errlen, GG_EPARSE, __VA_ARGS__)
#define UNSUP(...) gg_errf(err, errlen, GG_EUNSUPPORTED, __VA_ARGS__)
  if (attr_str(jn, "data_format", s, sizeof s)) return BAD("%s: node '%s': bad data_format", file, n->name);
  if (s[0] && strcmp(s, "NHWC"))
    return UNSUP("%s: node '%s' (%s): data_format '%s' is not supported (only NHWC)", file,
                 n->name, n->src_op, s);
  switch (n->op) {
  case GG_OP_CONV2D:
  case GG_OP_DEPTHWISE:
  case GG_OP_MAXPOOL: {
    if ((k = attr_ints(jn, "strides", v, 16)) < 0 || (k && k != 4))
      return BAD("%s: node '%s': strides must be a list of 4", file, n->name);
    if (k) {
      if (v[0] != 1 || v[3] != 1 || v[1] < 1 || v[2] < 1 || v[1] > 1024 || v[2] > 1024)
        return UNSUP("%s: node '%s': strides [%lld,%lld,%lld,%lld] not supported", file, n->name,
                     (long long)v[0], (long long)v[1], (long long)v[2], (long long)v[3]);
      a->strides[0] = (int)v[1], a->strides[1] = (int)v[2];
    }
    if ((k = attr_ints(jn, "dilations", v, 16)) < 0 || (k && k != 4))
      return BAD("%s: node '%s': dilations must be a list of 4", file, n->name);
    if (k) {
      if (v[0] != 1 || v[3] != 1 || v[1] < 1 || v[2] < 1 || v[1] > 1024 || v[2] > 1024)
        return UNSUP("%s: node '%s': dilations not supported", file, n->name);
      a->dilations[0] = (int)v[1], a->dilations[1] = (int)v[2];
    }
    if (n->op == GG_OP_MAXPOOL) {
      if ((k = attr_ints(jn, "ksize", v, 16)) != 4)
        return BAD("%s: node '%s': ksize must be a list of 4", file, n->name);
      if (v[0] != 1 || v[3] != 1 || v[1] < 1 || v[2] < 1 || v[1] > 4096 || v[2] > 4096)
        return UNSUP("%s: node '%s': ksize not supported", file, n->name);
      a->ksize[0] = (int)v[1], a->ksize[1] = (int)v[2];
    }
    if (attr_str(jn, "padding", s, sizeof s)) return BAD("%s: node '%s': bad padding", file, n->name);
    if (!strcmp(s, "SAME")) a->padding = GG_PAD_SAME;
    else if (!strcmp(s, "VALID")) a->padding = GG_PAD_VALID;
    else if (!strcmp(s, "EXPLICIT")) {
      a->padding = GG_PAD_EXPLICIT;
      if ((k = attr_ints(jn, "explicit_paddings", v, 16)) != 8)
        return BAD("%s: node '%s': EXPLICIT padding needs 8 explicit_paddings", file, n->name);
      for (int i = 0; i < 8; i++)
        if (v[i] < 0 || v[i] > 65536) return BAD("%s: node '%s': bad explicit_paddings", file, n->name);
      if (v[0] || v[1] || v[6] || v[7])
        return UNSUP("%s: node '%s': padding on batch/channels", file, n->name);
      a->pads[0] = (int)v[2], a->pads[1] = (int)v[3], a->pads[2] = (int)v[4], a->pads[3] = (int)v[5];
    } else
      return UNSUP("%s: node '%s' (%s): padding '%s' not supported", file, n->name, n->src_op, s);
    break;
  }
  default:
    break;
  }
  if (n->op == GG_OP_CONV2D || n->op == GG_OP_DEPTHWISE || n->op == GG_OP_MATMUL) {
    json_t *fa = attr(jn, "fused_ops");
    int64_t num_args = 0;
    if (attr_int(jn, "num_args", &num_args)) return BAD("%s: node '%s': bad num_args", file, n->name);
    attr_float(jn, "epsilon", &a->epsilon);
    attr_float(jn, "leakyrelu_alpha", &a->alpha);
    if (fa) {
      json_t *l = json_object_get(fa, "list");
      json_t *arr = json_is_object(l) ? json_object_get(l, "s") : NULL;
      if (arr && !json_is_array(arr)) return BAD("%s: node '%s': bad fused_ops", file, n->name);
      size_t na = arr ? json_array_size(arr) : 0;
      for (size_t i = 0; i < na; i++) {
        json_t *e = json_array_get(arr, i);
        if (!json_is_string(e)) return BAD("%s: node '%s': bad fused_ops", file, n->name);
        b64dec(json_string_value(e), s, sizeof s);
        if (i == 0 && !strcmp(s, "BiasAdd")) a->has_bias = 1;
        else if (i == 1 && !strcmp(s, "Relu")) a->act = GG_ACT_RELU;
        else if (i == 1 && !strcmp(s, "Relu6")) a->act = GG_ACT_RELU6;
        else if (i == 1 && !strcmp(s, "Prelu")) a->act = GG_ACT_PRELU;
        else if (i == 1 && !strcmp(s, "LeakyRelu")) a->act = GG_ACT_LEAKY;
        else
          return UNSUP("%s: node '%s' (%s): fused op '%s' is not supported", file, n->name,
                       n->src_op, s);
      }
      int want = a->has_bias + (a->act == GG_ACT_PRELU);
      if (na && num_args != want)
        return BAD("%s: node '%s': num_args %lld does not match fused_ops", file, n->name,
                   (long long)num_args);
    }
    if (n->op == GG_OP_MATMUL) {
      if (attr_bool(jn, "transpose_a", &a->transpose_a) ||
          attr_bool(jn, "transpose_b", &a->transpose_b))
        return BAD("%s: node '%s': bad transpose_a/b", file, n->name);
    }
  }
  switch (n->op) {
  case GG_OP_LEAKY_RELU:
    if (attr_float(jn, "alpha", &a->alpha)) return BAD("%s: node '%s': bad alpha", file, n->name);
    break;
  case GG_OP_SUM:
  case GG_OP_MEAN:
    if (attr_bool(jn, "keep_dims", &a->keep_dims)) return BAD("%s: node '%s': bad keep_dims", file, n->name);
    break;
  case GG_OP_RESIZE_BILINEAR:
    if (attr_bool(jn, "align_corners", &a->align_corners) ||
        attr_bool(jn, "half_pixel_centers", &a->half_pixel_centers))
      return BAD("%s: node '%s': bad align_corners/half_pixel_centers", file, n->name);
    if (a->align_corners && a->half_pixel_centers)
      return BAD("%s: node '%s': align_corners and half_pixel_centers are exclusive", file, n->name);
    break;
  case GG_OP_SQUEEZE:
    if ((k = attr_ints(jn, "squeeze_dims", v, GG_MAX_DIMS)) < 0)
      return BAD("%s: node '%s': bad squeeze_dims", file, n->name);
    if (!k && (k = attr_ints(jn, "axis", v, GG_MAX_DIMS)) < 0)
      return BAD("%s: node '%s': bad axis", file, n->name);
    a->n_axes = k;
    for (int i = 0; i < k; i++) {
      if (v[i] < -GG_MAX_DIMS || v[i] >= GG_MAX_DIMS) return BAD("%s: node '%s': bad squeeze axis", file, n->name);
      a->axes[i] = (int)v[i];
    }
    break;
  case GG_OP_SPLITV: {
    int64_t ns = 0;
    if (attr_int(jn, "num_split", &ns) || ns < 1 || ns > 1024)
      return BAD("%s: node '%s': num_split must be 1..1024", file, n->name);
    a->num_split = (int)ns;
    n->n_out = (int)ns;
    break;
  }
  default:
    break;
  }
#undef BAD
#undef UNSUP
  return 0;
}

/* ------------------------------------------------------------ weights */

float gg__half_to_float(uint16_t h) {
  uint32_t sign = (uint32_t)(h >> 15) << 31;
  uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ff, bits;
  if (exp == 0) {
    if (mant == 0) bits = sign;
    else { /* subnormal */
      int e = -1;
      do {
        e++;
        mant <<= 1;
      } while (!(mant & 0x400));
      mant &= 0x3ff;
      bits = sign | ((uint32_t)(127 - 15 - e) << 23) | (mant << 13);
    }
  } else if (exp == 31) bits = sign | 0x7f800000u | (mant << 13);
  else bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  float f;
  memcpy(&f, &bits, 4);
  return f;
}

typedef struct import_ctx {
  const char *file;
  gg_graph *g;
  strmap nodes; /* node name -> node index */
  json_t *root;
  char *err;
  size_t errlen;
} import_ctx;

/* Where the shards come from. size (optional) reports a shard's size and
 * identity without reading it, so that the whole manifest is checked against
 * the file system before any weight is read. */
typedef struct shard_src {
  gg__shard_reader read;
  int (*size)(void *user, const char *path, uint64_t *bytes, uint64_t id[2], char *err,
              size_t errlen);
  void *user;
} shard_src;

/* One weightsManifest entry, parsed and checked before any shard is read. */
typedef struct weight_spec {
  const char *name;
  gg_tensor *t;     /* its Const node's output: shape and dtype already set */
  int qkind;        /* 0 raw, 1 uint8, 2 uint16, 3 float16 */
  double scale, mn; /* uint8/uint16 dequantization */
  uint64_t bytes;   /* bytes it takes in the shards */
} weight_spec;

/* One group of the manifest: its shards are concatenated, its weights laid
 * out one after the other in them. */
typedef struct weight_group {
  json_t *paths;        /* borrowed from the manifest */
  size_t first, count;  /* its entries in the spec array */
  uint64_t bytes;       /* what its weights declare */
} weight_group;

typedef struct manifest {
  weight_spec *specs;
  weight_group *groups;
  size_t nspecs, ngroups;
  uint64_t bytes; /* all groups */
} manifest;

static void manifest_free(manifest *m) {
  free(m->specs);
  free(m->groups);
}

/* Parses one weight entry into *ws and sets its tensor's shape and dtype. */
static int parse_weight(import_ctx *c, json_t *w, size_t wi, weight_spec *ws) {
  gg_graph *g = c->g;
  json_t *jname = json_object_get(w, "name"), *jshape = json_object_get(w, "shape");
  json_t *jdt = json_object_get(w, "dtype"), *q = json_object_get(w, "quantization");
  const char *wname = json_is_string(jname) ? json_string_value(jname) : "?";
  if (!json_is_string(jname) || !json_is_array(jshape) || !json_is_string(jdt))
    return gg_errf(c->err, c->errlen, GG_EPARSE, "%s: weight %zu ('%s') needs name, shape and dtype", c->file, wi, wname);
  int ni = map_get(&c->nodes, wname);
  if (ni < 0 || g->nodes[ni].op != GG_OP_CONST)
    return gg_errf(c->err, c->errlen, GG_EPARSE, "%s: weight '%s' has no Const node of that name", c->file, wname);
  gg_tensor *t = &g->tensors[g->nodes[ni].out[0]];
  if (t->v.data || t->is_const)
    return gg_errf(c->err, c->errlen, GG_EPARSE, "%s: weight '%s' appears twice in the manifest", c->file, wname);
  int nd = (int)json_array_size(jshape);
  if (nd > GG_MAX_DIMS)
    return gg_errf(c->err, c->errlen, GG_EUNSUPPORTED, "%s: weight '%s' has %d dims (max %d)", c->file, wname, nd, GG_MAX_DIMS);
  for (int d = 0; d < nd; d++)
    if (json_to_i64(json_array_get(jshape, (size_t)d), &t->v.shape[d]) || t->v.shape[d] < 0)
      return gg_errf(c->err, c->errlen, GG_EPARSE, "%s: weight '%s': bad shape", c->file, wname);
  t->v.ndim = nd;
  if (gg__shape_nelem(t->v.shape, nd, &t->v.nelem)) {
    char sb[128];
    return gg_errf(c->err, c->errlen, GG_ERANGE, "%s: weight '%s': shape %s is too large (max %lld elements)",
                c->file, wname, gg__shape_str(t->v.shape, nd, sb, sizeof sb), (long long)GG_MAX_ELEMS);
  }
  const char *dt = json_string_value(jdt);
  if (!strcmp(dt, "float32")) t->v.dtype = GG_DT_F32;
  else if (!strcmp(dt, "int32") || !strcmp(dt, "int64")) t->v.dtype = GG_DT_I32;
  else
    return gg_errf(c->err, c->errlen, GG_EUNSUPPORTED, "%s: weight '%s': dtype '%s' not supported (float32, int32)", c->file, wname, dt);
  int qbytes = 4; /* stored bytes per element */
  ws->qkind = 0;
  ws->scale = 1, ws->mn = 0;
  if (q && !json_is_null(q)) {
    json_t *qd = json_object_get(q, "dtype");
    const char *qs = json_is_string(qd) ? json_string_value(qd) : "";
    if (!strcmp(qs, "uint8")) ws->qkind = 1, qbytes = 1;
    else if (!strcmp(qs, "uint16")) ws->qkind = 2, qbytes = 2;
    else if (!strcmp(qs, "float16")) ws->qkind = 3, qbytes = 2;
    else
      return gg_errf(c->err, c->errlen, GG_EUNSUPPORTED, "%s: weight '%s': quantization dtype '%s' not supported (uint8, uint16, float16)", c->file, wname, qs);
    if (ws->qkind != 3) {
      json_t *js = json_object_get(q, "scale"), *jm = json_object_get(q, "min");
      if (!json_is_number(js) || !json_is_number(jm))
        return gg_errf(c->err, c->errlen, GG_EPARSE, "%s: weight '%s': quantization needs numeric scale and min", c->file, wname);
      ws->scale = json_number_value(js), ws->mn = json_number_value(jm);
    }
    if (t->v.dtype != GG_DT_F32 && ws->qkind == 3)
      return gg_errf(c->err, c->errlen, GG_EUNSUPPORTED, "%s: weight '%s': float16 quantization of an integer tensor", c->file, wname);
  }
  ws->name = wname;
  ws->t = t;
  ws->bytes = (uint64_t)t->v.nelem * (uint64_t)qbytes;
  t->is_const = 1; /* has its entry; the data comes with the shards */
  return 0;
}

/* Checks the manifest's structure: at most MAX_SHARDS paths, each a
 * non-empty string listed once, every weight parsed, the total under
 * MAX_WEIGHT_BYTES. Nothing is read. */
static int parse_manifest(import_ctx *c, json_t *man, manifest *m) {
  size_t nw = 0, np = 0;
  for (size_t gi = 0; gi < json_array_size(man); gi++) {
    json_t *grp = json_array_get(man, gi);
    json_t *paths = json_object_get(grp, "paths"), *ws = json_object_get(grp, "weights");
    if (!json_is_array(paths) || !json_is_array(ws))
      return gg_errf(c->err, c->errlen, GG_EPARSE, "%s: weightsManifest[%zu] needs 'paths' and 'weights' arrays", c->file, gi);
    np += json_array_size(paths);
    nw += json_array_size(ws);
  }
  if (np > MAX_SHARDS)
    return gg_errf(c->err, c->errlen, GG_ETOO_LARGE, "%s: weightsManifest lists %zu shard files (limit %d)", c->file, np, MAX_SHARDS);
  m->ngroups = json_array_size(man);
  m->groups = calloc(m->ngroups + 1, sizeof *m->groups);
  m->specs = calloc(nw + 1, sizeof *m->specs);
  strmap seen = {0};
  int rc = !m->groups || !m->specs || map_init(&seen, np) ? GG_ENOMEM : 0;
  for (size_t gi = 0; !rc && gi < m->ngroups; gi++) {
    json_t *grp = json_array_get(man, gi);
    weight_group *wg = &m->groups[gi];
    wg->paths = json_object_get(grp, "paths");
    for (size_t pi = 0; !rc && pi < json_array_size(wg->paths); pi++) {
      json_t *p = json_array_get(wg->paths, pi);
      if (!json_is_string(p) || !json_string_value(p)[0])
        rc = gg_errf(c->err, c->errlen, GG_EPARSE, "%s: weightsManifest[%zu].paths[%zu] is not a file name", c->file, gi, pi);
      else if (map_put(&seen, json_string_value(p), 1) >= 0)
        rc = gg_errf(c->err, c->errlen, GG_EPARSE, "%s: weight shard '%s' is listed more than once in weightsManifest (each shard once, in order)", c->file, json_string_value(p));
    }
    json_t *ws = json_object_get(grp, "weights");
    wg->first = m->nspecs;
    for (size_t wi = 0; !rc && wi < json_array_size(ws); wi++) {
      weight_spec *spec = &m->specs[m->nspecs++];
      rc = parse_weight(c, json_array_get(ws, wi), wi, spec);
      wg->bytes += spec->bytes;
      m->bytes += spec->bytes;
      wg->count++;
    }
  }
  map_free(&seen);
  if (!rc && m->bytes > MAX_WEIGHT_BYTES)
    rc = gg_errf(c->err, c->errlen, GG_ETOO_LARGE, "%s: the weights declare %llu bytes, over the limit of %llu (a model this large is not supported)",
              c->file, (unsigned long long)m->bytes, (unsigned long long)MAX_WEIGHT_BYTES);
  return rc;
}

/* The error for a group whose shards hold `have` bytes instead of the
 * declared ones: names the first weight that does not fit when short. */
static int group_size_error(import_ctx *c, const manifest *m, size_t gi, uint64_t have) {
  const weight_group *wg = &m->groups[gi];
  if (have > wg->bytes)
    return gg_errf(c->err, c->errlen, GG_EPARSE,
                "%s: the shards of weight group %zu hold %llu bytes but the manifest describes %llu (mismatched .bin)",
                c->file, gi, (unsigned long long)have, (unsigned long long)wg->bytes);
  uint64_t off = 0;
  const weight_spec *ws = &m->specs[wg->first];
  for (size_t i = 0; i + 1 < wg->count && off + ws->bytes <= have; i++) off += ws++->bytes;
  return gg_errf(c->err, c->errlen, GG_EPARSE,
              "%s: weight '%s' needs %llu bytes at offset %llu but the shards of group %zu hold only %llu bytes (truncated or mismatched .bin)",
              c->file, ws->name, (unsigned long long)ws->bytes, (unsigned long long)off, gi, (unsigned long long)have);
}

typedef struct shard_id {
  uint64_t id[2];
  const char *name;
} shard_id;

static int cmp_shard_id(const void *a, const void *b) {
  const shard_id *x = a, *y = b;
  if (x->id[0] != y->id[0]) return x->id[0] < y->id[0] ? -1 : 1;
  return x->id[1] < y->id[1] ? -1 : x->id[1] > y->id[1];
}

/* Sizes every shard from the file system (nothing read): each group's
 * shards must add up to what its weights declare, and no file may appear
 * twice under different names ("./a.bin", a symlink). */
static int check_shard_sizes(import_ctx *c, const manifest *m, const shard_src *src) {
  size_t np = 0;
  for (size_t gi = 0; gi < m->ngroups; gi++) np += json_array_size(m->groups[gi].paths);
  shard_id *ids = calloc(np + 1, sizeof *ids);
  if (!ids) return GG_ENOMEM;
  int rc = 0;
  size_t k = 0;
  for (size_t gi = 0; !rc && gi < m->ngroups; gi++) {
    uint64_t have = 0;
    for (size_t pi = 0; !rc && pi < json_array_size(m->groups[gi].paths); pi++, k++) {
      ids[k].name = json_string_value(json_array_get(m->groups[gi].paths, pi));
      uint64_t sz = 0;
      rc = src->size(src->user, ids[k].name, &sz, ids[k].id, c->err, c->errlen);
      have += sz;
      if (!rc && have > MAX_WEIGHT_BYTES) rc = group_size_error(c, m, gi, have);
    }
    if (!rc && have != m->groups[gi].bytes) rc = group_size_error(c, m, gi, have);
  }
  if (!rc) qsort(ids, np, sizeof *ids, cmp_shard_id);
  for (size_t i = 1; !rc && i < np; i++)
    if (!cmp_shard_id(&ids[i - 1], &ids[i]))
      rc = gg_errf(c->err, c->errlen, GG_EPARSE, "%s: weight shards '%s' and '%s' are the same file (list each shard once, in order)", c->file, ids[i - 1].name, ids[i].name);
  free(ids);
  return rc;
}

/* Decodes one weight from its stored bytes into its tensor. */
static int decode_weight(const weight_spec *ws, const uint8_t *src) {
  gg_tensor *t = ws->t;
  size_t nbytes = (size_t)t->v.nelem * 4;
  t->v.data = gg__const_alloc(nbytes);
  if (!t->v.data) return GG_ENOMEM;
  if (ws->qkind == 0) {
    memcpy(t->v.data, src, nbytes);
    return 0;
  }
  for (int64_t i = 0; i < t->v.nelem; i++) {
    double x;
    if (ws->qkind == 1) x = src[i] * ws->scale + ws->mn;
    else if (ws->qkind == 2) x = (src[2 * i] | (src[2 * i + 1] << 8)) * ws->scale + ws->mn;
    else x = gg__half_to_float((uint16_t)(src[2 * i] | (src[2 * i + 1] << 8)));
    if (t->v.dtype == GG_DT_F32) ((float *)t->v.data)[i] = (float)x;
    else ((int32_t *)t->v.data)[i] = (int32_t)(x < 0 ? x - 0.5 : x + 0.5);
  }
  return 0;
}

/* Reads one group's shards into one buffer, never more than its weights
 * declare (a shard that would overflow it is refused), and decodes them. */
static int load_group(import_ctx *c, const manifest *m, size_t gi, const shard_src *src) {
  const weight_group *wg = &m->groups[gi];
  uint8_t *buf = NULL;
  uint64_t len = 0;
  int rc = 0;
  for (size_t pi = 0; !rc && pi < json_array_size(wg->paths); pi++) {
    uint8_t *d = NULL;
    size_t dl = 0;
    rc = src->read(src->user, json_string_value(json_array_get(wg->paths, pi)), &d, &dl, c->err, c->errlen);
    if (!rc && dl > wg->bytes - len) rc = group_size_error(c, m, gi, len + dl);
    /* grown with what was read, so a lying manifest costs no allocation */
    uint8_t *nb = rc ? NULL : realloc(buf, (size_t)(len + dl) + 1);
    if (!rc && !nb) rc = GG_ENOMEM;
    if (!rc) {
      buf = nb;
      if (dl) memcpy(buf + len, d, dl);
      len += dl;
    }
    free(d);
  }
  if (!rc && len != wg->bytes) rc = group_size_error(c, m, gi, len);
  uint64_t off = 0;
  for (size_t i = 0; !rc && i < wg->count; i++) {
    rc = decode_weight(&m->specs[wg->first + i], buf + off);
    off += m->specs[wg->first + i].bytes;
  }
  free(buf);
  return rc;
}

/* Reads the manifest and fills the data of the Const node tensors: first
 * the whole manifest is checked (structure, duplicates, declared total, and
 * with src->size the shard files' sizes), then the shards are read. */
static int load_weights(import_ctx *c, const shard_src *src) {
  json_t *man = json_object_get(c->root, "weightsManifest");
  if (!man) return 0;
  if (!json_is_array(man)) return gg_errf(c->err, c->errlen, GG_EPARSE, "%s: weightsManifest must be an array", c->file);
  manifest m = {0};
  int rc = parse_manifest(c, man, &m);
  if (!rc && src->size) rc = check_shard_sizes(c, &m, src);
  for (size_t gi = 0; !rc && gi < m.ngroups; gi++) rc = load_group(c, &m, gi, src);
  manifest_free(&m);
  return rc;
}

/* ------------------------------------------------------------ import */

static char *xstrdup(const char *s) {
  size_t n = strlen(s) + 1;
  char *d = malloc(n);
  if (d) memcpy(d, s, n);
  return d;
}

/* Resolves "name", "name:k"; returns tensor index or -1. */
static int resolve(import_ctx *c, const char *ref) {
  char tmp[1024];
  size_t n = strlen(ref);
  if (n >= sizeof tmp) return -1;
  memcpy(tmp, ref, n + 1);
  int k = 0;
  char *colon = strrchr(tmp, ':');
  if (colon) {
    char *end = NULL;
    long kk = strtol(colon + 1, &end, 10);
    if (end != colon + 1 && !*end && kk >= 0 && kk < 1024) {
      k = (int)kk;
      *colon = 0;
    }
  }
  int ni = map_get(&c->nodes, tmp);
  if (ni < 0 || k >= c->g->nodes[ni].n_out) return -1;
  return c->g->nodes[ni].out[k];
}

static int cmp_names(const void *a, const void *b, void *g) {
  const gg_graph *gr = g;
  return strcmp(gr->tensors[*(const int *)a].name, gr->tensors[*(const int *)b].name);
}

/* Minimum input counts per op (beyond what the attrs require). */
static int check_arity(const gg_node *n, const char *file, char *err, size_t errlen) {
  int want = 1, exact = 1;
  switch (n->op) {
  case GG_OP_CONST:
  case GG_OP_PLACEHOLDER: want = 0; break;
  case GG_OP_CONV2D:
  case GG_OP_DEPTHWISE:
  case GG_OP_MATMUL: want = 2 + n->a.has_bias + (n->a.act == GG_ACT_PRELU); break;
  case GG_OP_ADD:
  case GG_OP_SUB:
  case GG_OP_MUL:
  case GG_OP_MAXIMUM:
  case GG_OP_MINIMUM:
  case GG_OP_PRELU:
  case GG_OP_SUM:
  case GG_OP_MEAN:
  case GG_OP_RESHAPE:
  case GG_OP_TRANSPOSE:
  case GG_OP_RESIZE_BILINEAR: want = 2; break;
  case GG_OP_PAD: want = 2, exact = 0; break;
  case GG_OP_CONCAT: want = 2, exact = 0; break;
  case GG_OP_SPLITV: want = 3; break;
  case GG_OP_SPARSE_TO_DENSE: want = 4; break;
  default: want = 1; break;
  }
  if (n->op == GG_OP_PAD && n->n_in > 3) exact = 1, want = 3;
  if (exact ? n->n_in != want : n->n_in < want)
    return gg_errf(err, errlen, GG_EPARSE, "%s: node '%s' (%s) has %d inputs, expected %s%d", file,
                n->name, n->src_op, n->n_in, exact ? "" : "at least ", want);
  return 0;
}

static int import_model(const char *json, size_t json_len, const char *label,
                        const shard_src *src, gg_graph **out, char *err, size_t errlen) {
  *out = NULL;
  if (err && errlen) err[0] = 0;
  import_ctx c = {.file = label ? label : "model.json", .err = err, .errlen = errlen};
  json_error_t je;
  c.root = json_loadb(json, json_len, JSON_REJECT_DUPLICATES, &je);
  if (!c.root)
    return gg_errf(err, errlen, GG_EPARSE, "%s: not valid JSON (line %d: %s)", c.file, je.line, je.text);
  int rc = 0;
  gg_graph *g = calloc(1, sizeof *g);
  if (!g) {
    json_decref(c.root);
    return GG_ENOMEM;
  }
  c.g = g;
  g->path = xstrdup(c.file);
  json_t *fmt = json_object_get(c.root, "format");
  json_t *mtopo = json_object_get(c.root, "modelTopology");
  if ((json_is_string(fmt) && !strcmp(json_string_value(fmt), "layers-model")) ||
      (!fmt && json_is_object(mtopo) && json_object_get(mtopo, "model_config"))) {
    /* Keras topology (tfjs-layers.c builds the nodes; older converters
     * wrote no "format"), weights read here as for graph models. */
    if ((rc = gg__layers_build(c.root, c.file, g, err, errlen))) goto out;
    if ((rc = map_init(&c.nodes, (size_t)g->n_nodes))) goto out;
    for (int i = 0; i < g->n_nodes; i++) map_put(&c.nodes, g->nodes[i].name, i);
    if ((rc = load_weights(&c, src))) goto out;
    for (int i = 0; i < g->n_nodes; i++)
      if (g->nodes[i].op == GG_OP_CONST && !g->tensors[g->nodes[i].out[0]].is_const) {
        rc = gg_errf(err, errlen, GG_EPARSE, "%s: weight '%s' is missing from weightsManifest", c.file, g->nodes[i].name);
        goto out;
      }
    if ((rc = gg__layers_check_weights(c.root, c.file, g, err, errlen))) goto out;
    goto graph_done;
  }
  json_t *topo = json_object_get(c.root, "modelTopology");
  json_t *jnodes = json_is_object(topo) ? json_object_get(topo, "node") : NULL;
  if (!json_is_object(c.root) || !json_is_array(jnodes)) {
    rc = gg_errf(err, errlen, GG_EPARSE, "%s: expected a TF.js graph model (an object with modelTopology.node[])", c.file);
    goto out;
  }
  if (json_is_string(fmt) && strcmp(json_string_value(fmt), "graph-model")) {
    rc = gg_errf(err, errlen, GG_EUNSUPPORTED, "%s: format '%s' is not supported (graph-model, layers-model)", c.file, json_string_value(fmt));
    goto out;
  }
  size_t nn = json_array_size(jnodes);
  if (nn > MAX_NODES) {
    rc = gg_errf(err, errlen, GG_ETOO_LARGE, "%s: %zu nodes (max %d)", c.file, nn, MAX_NODES);
    goto out;
  }
  g->nodes = calloc(nn + 1, sizeof *g->nodes);
  if (!g->nodes || map_init(&c.nodes, nn)) {
    rc = GG_ENOMEM;
    goto out;
  }
  /* Pass 1: nodes, ops, attrs, output tensor counts. */
  int n_tensors = 0;
  for (size_t i = 0; i < nn; i++) {
    json_t *jn = json_array_get(jnodes, i);
    json_t *jname = json_object_get(jn, "name"), *jop = json_object_get(jn, "op");
    if (!json_is_string(jname) || !json_is_string(jop) || !json_string_length(jname)) {
      rc = gg_errf(err, errlen, GG_EPARSE, "%s: node %zu needs a 'name' and an 'op' string", c.file, i);
      goto out;
    }
    gg_node *n = &g->nodes[g->n_nodes];
    n->name = xstrdup(json_string_value(jname));
    if (!n->name) {
      rc = GG_ENOMEM;
      goto out;
    }
    g->n_nodes++;
    const char *op = json_string_value(jop);
    n->op = GG_OP_COUNT;
    for (size_t k = 0; k < sizeof k_ops / sizeof k_ops[0]; k++)
      if (!strcmp(op, k_ops[k].tf)) n->op = k_ops[k].op, n->src_op = k_ops[k].tf;
    if (n->op == GG_OP_COUNT) {
      rc = gg_errf(err, errlen, GG_EUNSUPPORTED, "%s: node '%s' uses op '%s', which gpuguard does not implement", c.file, n->name, op);
      goto out;
    }
    if (map_put(&c.nodes, n->name, (int)i) >= 0) {
      rc = gg_errf(err, errlen, GG_EPARSE, "%s: node name '%s' is used twice", c.file, n->name);
      goto out;
    }
    if ((rc = parse_attrs(jn, n, c.file, err, errlen))) goto out;
    n_tensors += n->n_out;
  }
  g->tensors = calloc((size_t)n_tensors + 1, sizeof *g->tensors);
  if (!g->tensors) {
    rc = GG_ENOMEM;
    goto out;
  }
  for (int i = 0; i < g->n_nodes; i++) {
    gg_node *n = &g->nodes[i];
    n->out = calloc((size_t)n->n_out, sizeof *n->out);
    if (!n->out) {
      rc = GG_ENOMEM;
      goto out;
    }
    for (int k = 0; k < n->n_out; k++) {
      gg_tensor *t = &g->tensors[g->n_tensors];
      char nb[1100];
      if (k) snprintf(nb, sizeof nb, "%.1000s:%d", n->name, k);
      t->name = xstrdup(k ? nb : n->name);
      if (!t->name) {
        rc = GG_ENOMEM;
        goto out;
      }
      t->producer = i;
      n->out[k] = g->n_tensors++;
    }
  }
  /* Pass 2: inputs. */
  for (int i = 0; i < g->n_nodes; i++) {
    gg_node *n = &g->nodes[i];
    json_t *jin = json_object_get(json_array_get(jnodes, (size_t)i), "input");
    if (jin && !json_is_array(jin)) {
      rc = gg_errf(err, errlen, GG_EPARSE, "%s: node '%s': 'input' must be an array", c.file, n->name);
      goto out;
    }
    size_t ni = jin ? json_array_size(jin) : 0;
    n->in = calloc(ni + 1, sizeof *n->in);
    if (!n->in) {
      rc = GG_ENOMEM;
      goto out;
    }
    for (size_t k = 0; k < ni; k++) {
      json_t *e = json_array_get(jin, k);
      if (!json_is_string(e)) {
        rc = gg_errf(err, errlen, GG_EPARSE, "%s: node '%s': input %zu is not a string", c.file, n->name, k);
        goto out;
      }
      const char *ref = json_string_value(e);
      if (ref[0] == '^') continue; /* control dependency: order only */
      int t = resolve(&c, ref);
      if (t < 0) {
        rc = gg_errf(err, errlen, GG_EPARSE, "%s: node '%s': input '%s' does not name a node output in the graph", c.file, n->name, ref);
        goto out;
      }
      n->in[n->n_in++] = t;
    }
    if ((rc = check_arity(n, c.file, err, errlen))) goto out;
    if (n->op == GG_OP_PLACEHOLDER) {
      gg_tensor *t = &g->tensors[n->out[0]];
      t->is_input = 1;
      t->v.dtype = GG_DT_F32;
      json_t *sh = attr(json_array_get(jnodes, (size_t)i), "shape");
      json_t *shp = sh ? json_object_get(sh, "shape") : NULL;
      json_t *dims = shp ? json_object_get(shp, "dim") : NULL;
      if (!json_is_array(dims) || json_array_size(dims) > GG_MAX_DIMS) {
        rc = gg_errf(err, errlen, GG_EUNSUPPORTED, "%s: placeholder '%s' needs a known rank (at most %d dims)", c.file, n->name, GG_MAX_DIMS);
        goto out;
      }
      t->v.ndim = (int)json_array_size(dims);
      for (int d = 0; d < t->v.ndim; d++) {
        json_t *sz = json_object_get(json_array_get(dims, (size_t)d), "size");
        int64_t s = -1;
        if (sz && (json_to_i64(sz, &s) || s < -1 || s > GG_MAX_ELEMS)) {
          rc = gg_errf(err, errlen, GG_EPARSE, "%s: placeholder '%s': bad dim %d", c.file, n->name, d);
          goto out;
        }
        t->v.shape[d] = s;
      }
    }
  }
  /* Weights. */
  if ((rc = load_weights(&c, src))) goto out;
  for (int i = 0; i < g->n_nodes; i++)
    if (g->nodes[i].op == GG_OP_CONST && !g->tensors[g->nodes[i].out[0]].is_const) {
      rc = gg_errf(err, errlen, GG_EPARSE, "%s: Const node '%s' has no entry in weightsManifest", c.file, g->nodes[i].name);
      goto out;
    }
  /* Inputs: placeholders in node order. */
  g->inputs = calloc((size_t)g->n_nodes + 1, sizeof *g->inputs);
  if (!g->inputs) {
    rc = GG_ENOMEM;
    goto out;
  }
  for (int i = 0; i < g->n_nodes; i++)
    if (g->nodes[i].op == GG_OP_PLACEHOLDER) g->inputs[g->n_inputs++] = g->nodes[i].out[0];
  if (!g->n_inputs) {
    rc = gg_errf(err, errlen, GG_EPARSE, "%s: the graph has no Placeholder input", c.file);
    goto out;
  }
  /* Outputs: signature.outputs in file order, else terminal nodes by name. */
  g->outputs = calloc((size_t)n_tensors + 1, sizeof *g->outputs);
  g->output_names = calloc((size_t)n_tensors + 1, sizeof *g->output_names);
  if (!g->outputs || !g->output_names) {
    rc = GG_ENOMEM;
    goto out;
  }
  json_t *sig = json_object_get(c.root, "signature");
  json_t *souts = json_is_object(sig) ? json_object_get(sig, "outputs") : NULL;
  if (json_is_object(souts) && json_object_size(souts)) {
    const char *key;
    json_t *val;
    json_object_foreach(souts, key, val) {
      json_t *nm = json_object_get(val, "name");
      const char *ref = json_is_string(nm) ? json_string_value(nm) : key;
      int t = resolve(&c, ref);
      if (t < 0) {
        rc = gg_errf(err, errlen, GG_EPARSE, "%s: signature output '%s' does not name a node output", c.file, ref);
        goto out;
      }
      g->tensors[t].is_output = 1;
      g->outputs[g->n_outputs] = t;
      g->output_names[g->n_outputs++] = xstrdup(ref);
    }
  } else {
    char *used = calloc((size_t)n_tensors + 1, 1);
    if (!used) {
      rc = GG_ENOMEM;
      goto out;
    }
    for (int i = 0; i < g->n_nodes; i++)
      for (int k = 0; k < g->nodes[i].n_in; k++) used[g->nodes[i].in[k]] = 1;
    for (int t = 0; t < n_tensors; t++) {
      gg_op op = g->nodes[g->tensors[t].producer].op;
      if (!used[t] && op != GG_OP_CONST && op != GG_OP_PLACEHOLDER) g->outputs[g->n_outputs++] = t;
    }
    free(used);
    qsort_r(g->outputs, (size_t)g->n_outputs, sizeof *g->outputs, cmp_names, g);
    for (int i = 0; i < g->n_outputs; i++) {
      g->tensors[g->outputs[i]].is_output = 1;
      g->output_names[i] = xstrdup(g->tensors[g->outputs[i]].name);
    }
  }
  for (int i = 0; i < g->n_outputs; i++)
    if (!g->output_names[i]) {
      rc = GG_ENOMEM;
      goto out;
    }
  if (!g->n_outputs) {
    rc = gg_errf(err, errlen, GG_EPARSE, "%s: the graph has no outputs", c.file);
    goto out;
  }
graph_done:
  rc = gg__graph_finish(g, err, errlen);
out:
  map_free(&c.nodes);
  json_decref(c.root);
  if (rc) {
    gg__graph_free(g);
    return rc;
  }
  *out = g;
  return 0;
}

int gg__tfjs_import(const char *json, size_t json_len, const char *label,
                    gg__shard_reader read_shard, void *user, gg_graph **out, char *err,
                    size_t errlen) {
  shard_src src = {read_shard, NULL, user};
  return import_model(json, json_len, label, &src, out, err, errlen);
}

/* ------------------------------------------------------------ files */

typedef struct file_ctx {
  char dir[4096];      /* the model's folder as given */
  char root[PATH_MAX]; /* the same, resolved: every shard must lie under it */
  const char *model;
  uint64_t budget;     /* bytes the checked shards hold; reads may not exceed it */
} file_ctx;

/* Reads a regular file of at most max bytes (oflags: extra open flags).
 * O_NONBLOCK: a FIFO must be refused, not waited on. Shared with onnx.c
 * (graph.h). */
int gg__file_read(const char *path, uint64_t max, int oflags, uint8_t **data, size_t *len) {
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | oflags);
  if (fd < 0) return GG_EIO;
  struct stat st;
  if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
    close(fd);
    errno = EINVAL;
    return GG_EIO;
  }
  if ((uint64_t)st.st_size > max) {
    close(fd);
    return GG_ETOO_LARGE;
  }
  size_t n = (size_t)st.st_size, got = 0;
  uint8_t *b = malloc(n + 1);
  if (!b) {
    close(fd);
    return GG_ENOMEM;
  }
  while (got < n) {
    ssize_t r = read(fd, b + got, n - got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    got += (size_t)r;
  }
  close(fd);
  if (got != n) {
    free(b);
    errno = EIO;
    return GG_EIO;
  }
  b[n] = 0;
  *data = b;
  *len = n;
  return 0;
}

/* The folder of path ("." when it has no slash) into dir. Shared with
 * onnx.c (graph.h). */
void gg__file_dir(const char *path, char *dir, size_t len) {
  snprintf(dir, len, "%s", path);
  char *slash = strrchr(dir, '/');
  if (slash)
    *slash = 0;
  else
    snprintf(dir, len, ".");
}

/* Resolves a manifest path to a regular file inside the model's folder:
 * relative, no "..", and after following symlinks still under fc->root.
 * full (PATH_MAX) gets the resolved path, st its stat. */
static int shard_resolve(file_ctx *fc, const char *p, char *full, struct stat *st, char *err,
                         size_t errlen) {
  if (!p[0] || p[0] == '/' || strstr(p, "..") || strlen(p) > 1024)
    return gg_errf(err, errlen, GG_EPARSE, "%s: weight path '%s' must be relative and stay in the model's folder", fc->model, p);
  char joined[5200];
  snprintf(joined, sizeof joined, "%s/%s", fc->dir, p);
  if (!realpath(joined, full) || stat(full, st))
    return gg_errf(err, errlen, GG_EIO, "%s: cannot read weight shard '%s': %s (run scripts/fetch-models.sh?)", fc->model, joined, strerror(errno));
  size_t rl = strcmp(fc->root, "/") ? strlen(fc->root) : 0;
  if (strncmp(full, fc->root, rl) || full[rl] != '/')
    return gg_errf(err, errlen, GG_EPARSE, "%s: weight shard '%s' resolves to %s, outside the model's folder %s (a symlink?)", fc->model, p, full, fc->root);
  if (!S_ISREG(st->st_mode))
    return gg_errf(err, errlen, GG_EIO, "%s: weight shard '%s' is not a regular file", fc->model, joined);
  return 0;
}

static int file_shard_size(void *user, const char *p, uint64_t *bytes, uint64_t id[2], char *err,
                           size_t errlen) {
  file_ctx *fc = user;
  char full[PATH_MAX];
  struct stat st;
  int rc = shard_resolve(fc, p, full, &st, err, errlen);
  if (rc) return rc;
  *bytes = (uint64_t)st.st_size;
  id[0] = (uint64_t)st.st_dev;
  id[1] = (uint64_t)st.st_ino;
  if (*bytes > MAX_WEIGHT_BYTES)
    return gg_errf(err, errlen, GG_ETOO_LARGE, "%s: weight shard '%s' is larger than the %llu bytes limit", fc->model, full, (unsigned long long)MAX_WEIGHT_BYTES);
  fc->budget += *bytes;
  return 0;
}

static int file_shard(void *user, const char *p, uint8_t **data, size_t *len, char *err,
                      size_t errlen) {
  file_ctx *fc = user;
  char full[PATH_MAX];
  struct stat st;
  int rc = shard_resolve(fc, p, full, &st, err, errlen);
  if (rc) return rc;
  /* O_NOFOLLOW and the budget: a file swapped after the check is refused */
  rc = gg__file_read(full, fc->budget, O_NOFOLLOW, data, len);
  if (rc == GG_ETOO_LARGE)
    return gg_errf(err, errlen, GG_EPARSE, "%s: weight shard '%s' grew while the model was loading", fc->model, full);
  if (rc)
    return gg_errf(err, errlen, rc, "%s: cannot read weight shard '%s': %s", fc->model, full, strerror(errno));
  fc->budget -= *len;
  return 0;
}

int gg__tfjs_load_file(const char *path, gg_graph **out, char *err, size_t errlen) {
  *out = NULL;
  file_ctx *fc = calloc(1, sizeof *fc);
  if (!fc) return GG_ENOMEM;
  fc->model = path;
  uint8_t *json = NULL;
  size_t len = 0;
  int rc = gg__file_read(path, (uint64_t)256 << 20, 0, &json, &len);
  if (rc == GG_ETOO_LARGE) rc = gg_errf(err, errlen, rc, "%s: model.json is larger than 256 MiB", path);
  else if (rc) rc = gg_errf(err, errlen, GG_EIO, "%s: cannot read: %s", path, strerror(errno));
  gg__file_dir(path, fc->dir, sizeof fc->dir);
  if (!rc && !realpath(fc->dir, fc->root))
    rc = gg_errf(err, errlen, GG_EIO, "%s: cannot resolve the model's folder: %s", path, strerror(errno));
  shard_src src = {file_shard, file_shard_size, fc};
  if (!rc) rc = import_model((const char *)json, len, path, &src, out, err, errlen);
  free(json);
  free(fc);
  return rc;
}
