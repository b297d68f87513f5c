/* TensorFlow.js graph-model importer: model.json (jansson) + weight shards.
 * Everything read here is untrusted: every count, offset and name is checked
 * before use, and each failure names the file and the node. */
#include "engine/engine-impl.h"
#include "engine/graph.h"
#include "gpuguard/error.h"
#include "gpuguard/log.h"

#include <jansson.h>

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_SHARD_BYTES ((size_t)1 << 31)
#define MAX_NODES 100000

__attribute__((format(printf, 4, 5))) static int fail(char *err, size_t errlen, int code,
                                                      const char *fmt, ...) {
  if (err && errlen) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
  }
  return code;
}

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

static int b64val(int c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+' || c == '-') return 62;
  if (c == '/' || c == '_') return 63;
  return -1;
}

/* Decodes base64 into out (NUL-terminated, truncated to outlen-1). */
static void b64dec(const char *s, char *out, size_t outlen) {
  size_t o = 0;
  unsigned acc = 0;
  int bits = 0;
  for (; *s && *s != '='; s++) {
    int v = b64val((unsigned char)*s);
    if (v < 0) break;
    acc = (acc << 6) | (unsigned)v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      if (o + 1 < outlen) out[o++] = (char)((acc >> bits) & 0xff);
    }
  }
  out[o] = 0;
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
#define BAD(...) fail(err, errlen, GG_EPARSE, __VA_ARGS__)
#define UNSUP(...) fail(err, errlen, GG_EUNSUPPORTED, __VA_ARGS__)
  if (attr_str(jn, "data_format", s, sizeof s)) return BAD("%s: node '%s': bad data_format", file, n->name);
  if (s[0] && strcmp(s, "NHWC"))
    return UNSUP("%s: node '%s' (%s): data_format '%s' is not supported (only NHWC)", file,
                 n->name, n->tf_op, s);
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
      return UNSUP("%s: node '%s' (%s): padding '%s' not supported", file, n->name, n->tf_op, s);
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
                       n->tf_op, s);
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

/* Reads the manifest and fills the data of the Const node tensors. */
static int load_weights(import_ctx *c, gg__shard_reader rd, void *user) {
  gg_graph *g = c->g;
  json_t *man = json_object_get(c->root, "weightsManifest");
  if (!man) return 0;
  if (!json_is_array(man)) return fail(c->err, c->errlen, GG_EPARSE, "%s: weightsManifest must be an array", c->file);
  for (size_t gi = 0; gi < json_array_size(man); gi++) {
    json_t *grp = json_array_get(man, gi);
    json_t *paths = json_object_get(grp, "paths"), *ws = json_object_get(grp, "weights");
    if (!json_is_array(paths) || !json_is_array(ws))
      return fail(c->err, c->errlen, GG_EPARSE, "%s: weightsManifest[%zu] needs 'paths' and 'weights' arrays", c->file, gi);
    /* Concatenate this group's shards. */
    uint8_t *buf = NULL;
    size_t len = 0;
    for (size_t pi = 0; pi < json_array_size(paths); pi++) {
      json_t *p = json_array_get(paths, pi);
      if (!json_is_string(p)) {
        free(buf);
        return fail(c->err, c->errlen, GG_EPARSE, "%s: weightsManifest[%zu].paths[%zu] is not a string", c->file, gi, pi);
      }
      uint8_t *d = NULL;
      size_t dl = 0;
      int rc = rd(user, json_string_value(p), &d, &dl, c->err, c->errlen);
      if (rc) {
        free(buf);
        return rc;
      }
      if (len + dl > MAX_SHARD_BYTES) {
        free(buf), free(d);
        return fail(c->err, c->errlen, GG_ETOO_LARGE, "%s: weight shards exceed %zu bytes", c->file, MAX_SHARD_BYTES);
      }
      uint8_t *nb = realloc(buf, len + dl + 1);
      if (!nb) {
        free(buf), free(d);
        return GG_ENOMEM;
      }
      buf = nb;
      if (dl) memcpy(buf + len, d, dl);
      len += dl;
      free(d);
    }
    size_t off = 0;
    for (size_t wi = 0; wi < json_array_size(ws); wi++) {
      json_t *w = json_array_get(ws, wi);
      json_t *jname = json_object_get(w, "name"), *jshape = json_object_get(w, "shape");
      json_t *jdt = json_object_get(w, "dtype"), *q = json_object_get(w, "quantization");
      int rc = GG_EPARSE;
      const char *wname = json_is_string(jname) ? json_string_value(jname) : "?";
      if (!json_is_string(jname) || !json_is_array(jshape) || !json_is_string(jdt)) {
        free(buf);
        return fail(c->err, c->errlen, GG_EPARSE, "%s: weight %zu ('%s') needs name, shape and dtype", c->file, wi, wname);
      }
      int ni = map_get(&c->nodes, wname);
      if (ni < 0 || g->nodes[ni].op != GG_OP_CONST) {
        free(buf);
        return fail(c->err, c->errlen, GG_EPARSE, "%s: weight '%s' has no Const node of that name", c->file, wname);
      }
      gg_tensor *t = &g->tensors[g->nodes[ni].out[0]];
      if (t->v.data || t->is_const) {
        free(buf);
        return fail(c->err, c->errlen, GG_EPARSE, "%s: weight '%s' appears twice in the manifest", c->file, wname);
      }
      int nd = (int)json_array_size(jshape);
      if (nd > GG_MAX_DIMS) {
        free(buf);
        return fail(c->err, c->errlen, GG_EUNSUPPORTED, "%s: weight '%s' has %d dims (max %d)", c->file, wname, nd, GG_MAX_DIMS);
      }
      for (int d = 0; d < nd; d++)
        if (json_to_i64(json_array_get(jshape, (size_t)d), &t->v.shape[d]) || t->v.shape[d] < 0) {
          free(buf);
          return fail(c->err, c->errlen, GG_EPARSE, "%s: weight '%s': bad shape", c->file, wname);
        }
      t->v.ndim = nd;
      if (gg__shape_nelem(t->v.shape, nd, &t->v.nelem)) {
        char sb[128];
        free(buf);
        return fail(c->err, c->errlen, GG_ERANGE, "%s: weight '%s': shape %s is too large (max %lld elements)",
                    c->file, wname, gg__shape_str(t->v.shape, nd, sb, sizeof sb), (long long)GG_MAX_ELEMS);
      }
      const char *dt = json_string_value(jdt);
      if (!strcmp(dt, "float32")) t->v.dtype = GG_DT_F32;
      else if (!strcmp(dt, "int32") || !strcmp(dt, "int64")) t->v.dtype = GG_DT_I32;
      else {
        free(buf);
        return fail(c->err, c->errlen, GG_EUNSUPPORTED, "%s: weight '%s': dtype '%s' not supported (float32, int32)", c->file, wname, dt);
      }
      int qbytes = 4; /* stored bytes per element */
      int qkind = 0;  /* 0 raw, 1 uint8, 2 uint16, 3 float16 */
      double scale = 1, mn = 0;
      if (q && !json_is_null(q)) {
        json_t *qd = json_object_get(q, "dtype");
        const char *qs = json_is_string(qd) ? json_string_value(qd) : "";
        if (!strcmp(qs, "uint8")) qkind = 1, qbytes = 1;
        else if (!strcmp(qs, "uint16")) qkind = 2, qbytes = 2;
        else if (!strcmp(qs, "float16")) qkind = 3, qbytes = 2;
        else {
          free(buf);
          return fail(c->err, c->errlen, GG_EUNSUPPORTED, "%s: weight '%s': quantization dtype '%s' not supported (uint8, uint16, float16)", c->file, wname, qs);
        }
        if (qkind != 3) {
          json_t *js = json_object_get(q, "scale"), *jm = json_object_get(q, "min");
          if (!json_is_number(js) || !json_is_number(jm)) {
            free(buf);
            return fail(c->err, c->errlen, GG_EPARSE, "%s: weight '%s': quantization needs numeric scale and min", c->file, wname);
          }
          scale = json_number_value(js), mn = json_number_value(jm);
        }
        if (t->v.dtype != GG_DT_F32 && qkind == 3) {
          free(buf);
          return fail(c->err, c->errlen, GG_EUNSUPPORTED, "%s: weight '%s': float16 quantization of an integer tensor", c->file, wname);
        }
      }
      uint64_t need = (uint64_t)t->v.nelem * (uint64_t)qbytes;
      if (off > len || need > len - off) {
        free(buf);
        return fail(c->err, c->errlen, GG_EPARSE,
                    "%s: weight '%s' needs %llu bytes at offset %zu but the shards of group %zu hold only %zu bytes (truncated or mismatched .bin)",
                    c->file, wname, (unsigned long long)need, off, gi, len);
      }
      size_t nbytes = (size_t)t->v.nelem * 4;
      t->v.data = gg__const_alloc(nbytes);
      if (!t->v.data) {
        free(buf);
        return GG_ENOMEM;
      }
      t->is_const = 1;
      const uint8_t *src = buf + off;
      if (qkind == 0) memcpy(t->v.data, src, nbytes);
      else {
        for (int64_t i = 0; i < t->v.nelem; i++) {
          double x;
          if (qkind == 1) x = src[i] * scale + mn;
          else if (qkind == 2) x = (src[2 * i] | (src[2 * i + 1] << 8)) * scale + mn;
          else x = gg__half_to_float((uint16_t)(src[2 * i] | (src[2 * i + 1] << 8)));
          if (t->v.dtype == GG_DT_F32) ((float *)t->v.data)[i] = (float)x;
          else ((int32_t *)t->v.data)[i] = (int32_t)(x < 0 ? x - 0.5 : x + 0.5);
        }
      }
      off += (size_t)need;
      (void)rc;
    }
    if (off != len) {
      free(buf);
      return fail(c->err, c->errlen, GG_EPARSE,
                  "%s: the shards of weight group %zu hold %zu bytes but the manifest describes %zu (mismatched .bin)",
                  c->file, gi, len, off);
    }
    free(buf);
  }
  return 0;
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
    return fail(err, errlen, GG_EPARSE, "%s: node '%s' (%s) has %d inputs, expected %s%d", file,
                n->name, n->tf_op, n->n_in, exact ? "" : "at least ", want);
  return 0;
}

int gg__tfjs_import(const char *json, size_t json_len, const char *label,
                    gg__shard_reader read_shard, void *user, gg_graph **out, char *err,
                    size_t errlen) {
  *out = NULL;
  if (err && errlen) err[0] = 0;
  import_ctx c = {.file = label ? label : "model.json", .err = err, .errlen = errlen};
  json_error_t je;
  c.root = json_loadb(json, json_len, JSON_REJECT_DUPLICATES, &je);
  if (!c.root)
    return fail(err, errlen, GG_EPARSE, "%s: not valid JSON (line %d: %s)", c.file, je.line, je.text);
  int rc = 0;
  gg_graph *g = calloc(1, sizeof *g);
  if (!g) {
    json_decref(c.root);
    return GG_ENOMEM;
  }
  c.g = g;
  g->path = xstrdup(c.file);
  json_t *topo = json_object_get(c.root, "modelTopology");
  json_t *jnodes = json_is_object(topo) ? json_object_get(topo, "node") : NULL;
  if (!json_is_object(c.root) || !json_is_array(jnodes)) {
    rc = fail(err, errlen, GG_EPARSE, "%s: expected a TF.js graph model (an object with modelTopology.node[])", c.file);
    goto out;
  }
  json_t *fmt = json_object_get(c.root, "format");
  if (json_is_string(fmt) && strcmp(json_string_value(fmt), "graph-model")) {
    rc = fail(err, errlen, GG_EUNSUPPORTED, "%s: format '%s' is not supported (graph-model only)", c.file, json_string_value(fmt));
    goto out;
  }
  size_t nn = json_array_size(jnodes);
  if (nn > MAX_NODES) {
    rc = fail(err, errlen, GG_ETOO_LARGE, "%s: %zu nodes (max %d)", c.file, nn, MAX_NODES);
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
      rc = fail(err, errlen, GG_EPARSE, "%s: node %zu needs a 'name' and an 'op' string", c.file, i);
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
      if (!strcmp(op, k_ops[k].tf)) n->op = k_ops[k].op, n->tf_op = k_ops[k].tf;
    if (n->op == GG_OP_COUNT) {
      rc = fail(err, errlen, GG_EUNSUPPORTED, "%s: node '%s' uses op '%s', which gpuguard does not implement", c.file, n->name, op);
      goto out;
    }
    if (map_put(&c.nodes, n->name, (int)i) >= 0) {
      rc = fail(err, errlen, GG_EPARSE, "%s: node name '%s' is used twice", c.file, n->name);
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
      rc = fail(err, errlen, GG_EPARSE, "%s: node '%s': 'input' must be an array", c.file, n->name);
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
        rc = fail(err, errlen, GG_EPARSE, "%s: node '%s': input %zu is not a string", c.file, n->name, k);
        goto out;
      }
      const char *ref = json_string_value(e);
      if (ref[0] == '^') continue; /* control dependency: order only */
      int t = resolve(&c, ref);
      if (t < 0) {
        rc = fail(err, errlen, GG_EPARSE, "%s: node '%s': input '%s' does not name a node output in the graph", c.file, n->name, ref);
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
        rc = fail(err, errlen, GG_EUNSUPPORTED, "%s: placeholder '%s' needs a known rank (at most %d dims)", c.file, n->name, GG_MAX_DIMS);
        goto out;
      }
      t->v.ndim = (int)json_array_size(dims);
      for (int d = 0; d < t->v.ndim; d++) {
        json_t *sz = json_object_get(json_array_get(dims, (size_t)d), "size");
        int64_t s = -1;
        if (sz && (json_to_i64(sz, &s) || s < -1 || s > GG_MAX_ELEMS)) {
          rc = fail(err, errlen, GG_EPARSE, "%s: placeholder '%s': bad dim %d", c.file, n->name, d);
          goto out;
        }
        t->v.shape[d] = s;
      }
    }
  }
  /* Weights. */
  if ((rc = load_weights(&c, read_shard, user))) goto out;
  for (int i = 0; i < g->n_nodes; i++)
    if (g->nodes[i].op == GG_OP_CONST && !g->tensors[g->nodes[i].out[0]].is_const) {
      rc = fail(err, errlen, GG_EPARSE, "%s: Const node '%s' has no entry in weightsManifest", c.file, g->nodes[i].name);
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
    rc = fail(err, errlen, GG_EPARSE, "%s: the graph has no Placeholder input", c.file);
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
        rc = fail(err, errlen, GG_EPARSE, "%s: signature output '%s' does not name a node output", c.file, ref);
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
    rc = fail(err, errlen, GG_EPARSE, "%s: the graph has no outputs", c.file);
    goto out;
  }
  if ((rc = gg__graph_toposort(g, err, errlen))) goto out;
  if ((rc = gg__graph_fold_constants(g, err, errlen))) goto out;
  gg__graph_fuse(g);
  if ((rc = gg__graph_toposort(g, err, errlen))) goto out;
  /* Drop constants nothing live reads any more (folded-away inputs). */
  {
    char *used = calloc((size_t)g->n_tensors + 1, 1);
    if (!used) {
      rc = GG_ENOMEM;
      goto out;
    }
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
  }
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

/* ------------------------------------------------------------ files */

typedef struct file_ctx {
  char dir[4096];
  const char *model;
} file_ctx;

static int read_whole(const char *path, size_t max, uint8_t **data, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return GG_EIO;
  struct stat st;
  if (fstat(fileno(f), &st) || !S_ISREG(st.st_mode)) {
    fclose(f);
    return GG_EIO;
  }
  if ((uint64_t)st.st_size > max) {
    fclose(f);
    return GG_ETOO_LARGE;
  }
  size_t n = (size_t)st.st_size;
  uint8_t *b = malloc(n + 1);
  if (!b) {
    fclose(f);
    return GG_ENOMEM;
  }
  size_t got = n ? fread(b, 1, n, f) : 0;
  fclose(f);
  if (got != n) {
    free(b);
    return GG_EIO;
  }
  b[n] = 0;
  *data = b;
  *len = n;
  return 0;
}

static int file_shard(void *user, const char *p, uint8_t **data, size_t *len, char *err,
                      size_t errlen) {
  file_ctx *fc = user;
  if (!p[0] || p[0] == '/' || strstr(p, "..") || strlen(p) > 1024)
    return fail(err, errlen, GG_EPARSE, "%s: weight path '%s' must be relative and stay in the model's folder", fc->model, p);
  char full[5200];
  snprintf(full, sizeof full, "%s/%s", fc->dir, p);
  int rc = read_whole(full, MAX_SHARD_BYTES, data, len);
  if (rc == GG_ETOO_LARGE)
    return fail(err, errlen, rc, "%s: weight shard '%s' is larger than %zu bytes", fc->model, full, MAX_SHARD_BYTES);
  if (rc)
    return fail(err, errlen, rc, "%s: cannot read weight shard '%s': %s (run scripts/fetch-models.sh?)", fc->model, full, strerror(errno));
  return 0;
}

int gg__tfjs_load_file(const char *path, gg_graph **out, char *err, size_t errlen) {
  *out = NULL;
  file_ctx fc = {.model = path};
  uint8_t *json = NULL;
  size_t len = 0;
  int rc = read_whole(path, (size_t)256 << 20, &json, &len);
  if (rc == GG_ETOO_LARGE) return fail(err, errlen, rc, "%s: model.json is larger than 256 MiB", path);
  if (rc) return fail(err, errlen, GG_EIO, "%s: cannot read: %s", path, strerror(errno));
  snprintf(fc.dir, sizeof fc.dir, "%s", path);
  char *slash = strrchr(fc.dir, '/');
  if (slash) *slash = 0;
  else snprintf(fc.dir, sizeof fc.dir, ".");
  rc = gg__tfjs_import((const char *)json, len, path, file_shard, &fc, out, err, errlen);
  free(json);
  return rc;
}
