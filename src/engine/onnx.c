/* ONNX importer: reads a ModelProto (protobuf-c, code generated at build
 * time from onnx.proto) into the engine IR. Tensors keep ONNX's own layout
 * (NCHW); the NHWC-only IR ops (Conv, ConvTranspose, pools, Resize,
 * DepthToSpace) are wrapped in explicit Transpose nodes that the layout
 * pass (layout.c) then removes where it can. Weights are converted once
 * (OIHW -> HWIO). Every op, attribute value or input form not mapped here
 * is refused at load, naming the node: nothing is computed wrongly. */
#include "engine/engine-impl.h"
#include "engine/graph.h"
#include "gpuguard/error.h"
#include "gpuguard/log.h"

#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ONNX_MAX_FILE ((uint64_t)2 << 30) /* protobuf's own 2 GiB message limit */

#ifndef GG_HAVE_ONNX

int gg__onnx_import(const uint8_t *bytes, size_t len, const char *label, const char *dir,
                    gg_graph **out, char *err, size_t errlen) {
  (void)bytes, (void)len, (void)dir;
  *out = NULL;
  return gg_errf(err, errlen, GG_ENOTIMPL,
                 "%s: ONNX import is not part of this build (install libprotobuf-c-dev "
                 "protobuf-c-compiler libonnx-dev and rebuild)",
                 label ? label : "model");
}

int gg__onnx_load_file(const char *path, gg_graph **out, char *err, size_t errlen) {
  return gg__onnx_import(NULL, 0, path, NULL, out, err, errlen);
}

const char *gg__onnx_op_name(size_t i) {
  (void)i;
  return NULL;
}

#else

#include "onnx.pb-c.h"

typedef Onnx__NodeProto onode;
typedef Onnx__TensorProto otensor;
typedef Onnx__AttributeProto oattr;

#define MAX_NODES 200000
#define MAX_TENSORS 1000000

/* ------------------------------------------------------------ context */

typedef struct octx {
  gg_graph *g;
  int cap_t, cap_n;
  const char *file;
  char *err;
  size_t errlen;
  int64_t opset;
  const char *dir;     /* model's folder (external data), NULL: refused */
  char root[PATH_MAX]; /* the same, resolved */
  /* name -> tensor (open addressing) */
  char **hk;
  int *hv;
  size_t hcap;
  int *rank;     /* per tensor: known rank or -1 */
  int *conv_of;  /* per tensor: the IR conv whose output (via a transpose) it is */
  char *clamped; /* per tensor: an int64 constant clamped into int32 */
  int *dt;       /* per tensor: GG_DT_* when known, -1 */
  const Onnx__GraphProto *gp;
  const char *op_name; /* the node being mapped: its op's static name (src_op) */
} octx;

static char *xstrdup(const char *s) {
  size_t n = strlen(s) + 1;
  char *d = malloc(n);
  if (d) memcpy(d, s, n);
  return d;
}

static uint64_t fnv(const char *s) {
  uint64_t h = 1469598103934665603ull;
  for (; *s; s++)
    h = (h ^ (uint8_t)*s) * 1099511628211ull;
  return h;
}

static int map_get(const octx *c, const char *k) {
  if (!c->hcap) return -1;
  for (size_t i = fnv(k) & (c->hcap - 1);; i = (i + 1) & (c->hcap - 1)) {
    if (!c->hk[i]) return -1;
    if (!strcmp(c->hk[i], k)) return c->hv[i];
  }
}

static int map_put(octx *c, const char *k, int v) {
  size_t i = fnv(k) & (c->hcap - 1);
  for (; c->hk[i]; i = (i + 1) & (c->hcap - 1))
    if (!strcmp(c->hk[i], k)) {
      c->hv[i] = v;
      return 0;
    }
  c->hk[i] = xstrdup(k);
  if (!c->hk[i]) return GG_ENOMEM;
  c->hv[i] = v;
  return 0;
}

static int grow_tensors(octx *c) {
  if (c->g->n_tensors < c->cap_t) return 0;
  if (c->cap_t >= MAX_TENSORS)
    return gg_errf(c->err, c->errlen, GG_ETOO_LARGE, "%s: more than %d tensors", c->file,
                   MAX_TENSORS);
  int nc = c->cap_t ? c->cap_t * 2 : 256;
  gg_tensor *t = realloc(c->g->tensors, (size_t)nc * sizeof *t);
  if (t) c->g->tensors = t;
  int *r = realloc(c->rank, (size_t)nc * sizeof *r);
  if (r) c->rank = r;
  int *co = realloc(c->conv_of, (size_t)nc * sizeof *co);
  if (co) c->conv_of = co;
  char *cl = realloc(c->clamped, (size_t)nc);
  if (cl) c->clamped = cl;
  int *dt = realloc(c->dt, (size_t)nc * sizeof *dt);
  if (dt) c->dt = dt;
  if (!t || !r || !co || !cl || !dt) return GG_ENOMEM;
  c->cap_t = nc;
  return 0;
}

/* A new tensor named name (copied); -1 on failure (rc in *rc). */
static int new_tensor(octx *c, const char *name, int *rcp) {
  int rc = grow_tensors(c);
  if (rc) {
    *rcp = rc;
    return -1;
  }
  int t = c->g->n_tensors;
  gg_tensor *tt = &c->g->tensors[t];
  memset(tt, 0, sizeof *tt);
  tt->producer = -1;
  tt->name = xstrdup(name);
  if (!tt->name) {
    *rcp = GG_ENOMEM;
    return -1;
  }
  c->rank[t] = -1, c->conv_of[t] = -1, c->clamped[t] = 0, c->dt[t] = -1;
  c->g->n_tensors++;
  return t;
}

/* A new IR node with room for n_in inputs and n_out outputs (filled by the caller). */
static gg_node *new_node(octx *c, gg_op op, const char *src, const char *name, int n_in, int n_out,
                         int *idx) {
  if (c->g->n_nodes >= c->cap_n) {
    if (c->cap_n >= MAX_NODES * 8) return NULL;
    int nc = c->cap_n ? c->cap_n * 2 : 256;
    gg_node *nn = realloc(c->g->nodes, (size_t)nc * sizeof *nn);
    if (!nn) return NULL;
    c->g->nodes = nn;
    c->cap_n = nc;
  }
  int i = c->g->n_nodes;
  gg_node *n = &c->g->nodes[i];
  memset(n, 0, sizeof *n);
  n->name = xstrdup(name);
  n->in = calloc((size_t)n_in + 1, sizeof *n->in);
  n->out = calloc((size_t)n_out + 1, sizeof *n->out);
  c->g->n_nodes++;
  if (!n->name || !n->in || !n->out) return NULL;
  n->op = op;
  n->src_op = src;
  n->n_in = n_in;
  n->n_out = n_out;
  n->a.strides[0] = n->a.strides[1] = 1;
  n->a.dilations[0] = n->a.dilations[1] = 1;
  if (idx) *idx = i;
  return n;
}

/* A constant tensor (takes data, from gg__const_alloc) and its Const node. */
static int add_const(octx *c, const char *name, gg_dtype dt, const int64_t *shape, int ndim,
                     void *data, int *out) {
  int rc = 0;
  int64_t ne;
  if (gg__shape_nelem(shape, ndim, &ne)) {
    gg__const_free(data);
    return gg_errf(c->err, c->errlen, GG_ERANGE, "%s: constant '%s' is too large", c->file, name);
  }
  int t = new_tensor(c, name, &rc);
  if (t < 0) {
    gg__const_free(data);
    return rc;
  }
  gg_tensor *tt = &c->g->tensors[t];
  tt->is_const = 1;
  tt->v.dtype = dt;
  tt->v.ndim = ndim;
  for (int d = 0; d < ndim; d++)
    tt->v.shape[d] = shape[d];
  tt->v.nelem = ne;
  tt->v.data = data;
  c->rank[t] = ndim;
  c->dt[t] = (int)dt;
  int ni;
  gg_node *n = new_node(c, GG_OP_CONST, "Const", name, 0, 1, &ni);
  if (!n) return GG_ENOMEM;
  n->out[0] = t;
  c->g->tensors[t].producer = ni;
  *out = t;
  return 0;
}

static int const_i32v(octx *c, const char *name, const int32_t *v, int n, int *out) {
  int32_t *d = gg__const_alloc((size_t)n * 4); /* exactly what weights_bytes counts */
  if (!d) return GG_ENOMEM;
  if (n) memcpy(d, v, (size_t)n * 4);
  int64_t sh[1] = {n};
  return add_const(c, name, GG_DT_I32, sh, 1, d, out);
}

static int const_f32s(octx *c, const char *name, float v, int *out) {
  float *d = gg__const_alloc(4);
  if (!d) return GG_ENOMEM;
  d[0] = v;
  return add_const(c, name, GG_DT_F32, NULL, 0, d, out);
}

/* ------------------------------------------------------------ attributes */

static const oattr *attr(const onode *np, const char *name) {
  for (size_t i = 0; i < np->n_attribute; i++)
    if (np->attribute[i]->name && !strcmp(np->attribute[i]->name, name)) return np->attribute[i];
  return NULL;
}

static int64_t attr_i(const onode *np, const char *name, int64_t def) {
  const oattr *a = attr(np, name);
  return a && a->has_i ? a->i : def;
}

static float attr_f(const onode *np, const char *name, float def) {
  const oattr *a = attr(np, name);
  return a && a->has_f ? a->f : def;
}

/* String attribute into out (def when absent). */
static void attr_s(const onode *np, const char *name, const char *def, char *out, size_t len) {
  const oattr *a = attr(np, name);
  if (a && a->has_s) {
    size_t n = a->s.len < len - 1 ? a->s.len : len - 1;
    if (n) memcpy(out, a->s.data, n);
    out[n] = 0;
  } else
    snprintf(out, len, "%s", def);
}

/* INTS attribute: count (-1 when absent); more than max is an error (-2). */
static int attr_ints(const onode *np, const char *name, int64_t *out, int max) {
  const oattr *a = attr(np, name);
  if (!a) return -1;
  if (a->n_ints > (size_t)max) return -2;
  for (size_t i = 0; i < a->n_ints; i++)
    out[i] = a->ints[i];
  return (int)a->n_ints;
}

static const char *node_label(const onode *np) {
  if (np->name && *np->name) return np->name;
  if (np->n_output && np->output[0] && *np->output[0]) return np->output[0];
  return "?";
}

#define NODE_ERR(code, ...) node_err(c, np, code, __VA_ARGS__)
__attribute__((format(printf, 4, 5))) static int node_err(octx *c, const onode *np, int code,
                                                          const char *fmt, ...);
static int node_err(octx *c, const onode *np, int code, const char *fmt, ...) {
  char msg[600];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return gg_errf(c->err, c->errlen, code, "%s: node '%s' (%s): %s", c->file, node_label(np),
                 np->op_type ? np->op_type : "?", msg);
}

/* ------------------------------------------------------------ tensors */

static size_t onnx_elem_size(int dt) {
  switch (dt) {
  case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT:
  case ONNX__TENSOR_PROTO__DATA_TYPE__INT32: return 4;
  case ONNX__TENSOR_PROTO__DATA_TYPE__UINT32: return 4;
  case ONNX__TENSOR_PROTO__DATA_TYPE__INT64:
  case ONNX__TENSOR_PROTO__DATA_TYPE__UINT64:
  case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE: return 8;
  case ONNX__TENSOR_PROTO__DATA_TYPE__BFLOAT16:
  case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16:
  case ONNX__TENSOR_PROTO__DATA_TYPE__INT16:
  case ONNX__TENSOR_PROTO__DATA_TYPE__UINT16: return 2;
  case ONNX__TENSOR_PROTO__DATA_TYPE__INT8:
  case ONNX__TENSOR_PROTO__DATA_TYPE__UINT8:
  case ONNX__TENSOR_PROTO__DATA_TYPE__BOOL: return 1;
  default: return 0;
  }
}

static const char *onnx_dtype_name(int dt) {
  static const char *const k[] = {"UNDEFINED",  "FLOAT",   "UINT8",  "INT8",   "UINT16",
                                  "INT16",      "INT32",   "INT64",  "STRING", "BOOL",
                                  "FLOAT16",    "DOUBLE",  "UINT32", "UINT64", "COMPLEX64",
                                  "COMPLEX128", "BFLOAT16"};
  return dt >= 0 && dt < (int)(sizeof k / sizeof k[0]) ? k[dt] : "an unknown type";
}

/* Reads external data [offset, offset+len) of the file named by location,
 * which must stay inside the model's folder. */
static int read_external(octx *c, const otensor *tp, const char *name, uint64_t want,
                         uint8_t **data) {
  const char *loc = NULL;
  int64_t off = 0, len = -1;
  for (size_t i = 0; i < tp->n_external_data; i++) {
    const Onnx__StringStringEntryProto *e = tp->external_data[i];
    if (!e->key || !e->value) continue;
    char *end = NULL;
    if (!strcmp(e->key, "location"))
      loc = e->value;
    else if (!strcmp(e->key, "offset"))
      off = strtoll(e->value, &end, 10);
    else if (!strcmp(e->key, "length"))
      len = strtoll(e->value, &end, 10);
    if (end && (*end || off < 0 || (len < -1)))
      return gg_errf(c->err, c->errlen, GG_EPARSE,
                     "%s: tensor '%s': external data %s '%s' is not a valid number", c->file, name,
                     e->key, e->value);
  }
  if (!loc || !*loc)
    return gg_errf(c->err, c->errlen, GG_EPARSE,
                   "%s: tensor '%s': external data without a location", c->file, name);
  if (!c->dir)
    return gg_errf(c->err, c->errlen, GG_EUNSUPPORTED,
                   "%s: tensor '%s': external data ('%s') needs the model to be loaded from a file",
                   c->file, name, loc);
  if (loc[0] == '/' || strstr(loc, "..") || strlen(loc) > 1024)
    return gg_errf(
        c->err, c->errlen, GG_EPARSE,
        "%s: tensor '%s': external data path '%s' must be relative and stay in the model's folder",
        c->file, name, loc);
  if (len >= 0 && (uint64_t)len != want)
    return gg_errf(c->err, c->errlen, GG_EPARSE,
                   "%s: tensor '%s': external data length %lld, its shape needs %llu bytes",
                   c->file, name, (long long)len, (unsigned long long)want);
  char joined[PATH_MAX + 1100], full[PATH_MAX];
  snprintf(joined, sizeof joined, "%s/%s", c->dir, loc);
  if (!realpath(joined, full))
    return gg_errf(c->err, c->errlen, GG_EIO, "%s: tensor '%s': cannot read external data '%s': %s",
                   c->file, name, joined, strerror(errno));
  size_t rl = strcmp(c->root, "/") ? strlen(c->root) : 0;
  if (strncmp(full, c->root, rl) || full[rl] != '/')
    return gg_errf(c->err, c->errlen, GG_EPARSE,
                   "%s: tensor '%s': external data '%s' resolves to %s, outside the model's folder "
                   "%s (a symlink?)",
                   c->file, name, loc, full, c->root);
  int fd = open(full, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOFOLLOW);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) || !S_ISREG(st.st_mode)) {
    if (fd >= 0) close(fd);
    return gg_errf(c->err, c->errlen, GG_EIO,
                   "%s: tensor '%s': external data '%s' is not a readable regular file", c->file,
                   name, full);
  }
  if ((uint64_t)off > (uint64_t)st.st_size || want > (uint64_t)st.st_size - (uint64_t)off) {
    close(fd);
    return gg_errf(
        c->err, c->errlen, GG_EPARSE,
        "%s: tensor '%s': external data '%s' holds %lld bytes, %llu needed at offset %lld", c->file,
        name, loc, (long long)st.st_size, (unsigned long long)want, (long long)off);
  }
  uint8_t *b = malloc(want + 1);
  if (!b) {
    close(fd);
    return GG_ENOMEM;
  }
  size_t got = 0;
  while (got < want) {
    ssize_t r = pread(fd, b + got, want - got, off + (off_t)got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    got += (size_t)r;
  }
  close(fd);
  if (got != want) {
    free(b);
    return gg_errf(c->err, c->errlen, GG_EIO, "%s: tensor '%s': short read of external data '%s'",
                   c->file, name, full);
  }
  *data = b;
  return 0;
}

/* Whether ONNX element type dt is held as F32 (FLOAT, and FLOAT16, BFLOAT16,
 * DOUBLE converted to float32); the integer and bool types are held as I32. */
static int onnx_is_float(int dt) {
  return dt == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT ||
         dt == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16 ||
         dt == ONNX__TENSOR_PROTO__DATA_TYPE__BFLOAT16 ||
         dt == ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE;
}

/* A double as the nearest float (round to nearest even), +-inf past the
 * float range (C leaves the conversion of such values undefined). */
static float double_to_float(double d) {
  if (d >= 0x1.ffffffp127) return INFINITY;
  if (d <= -0x1.ffffffp127) return -INFINITY;
  return (float)d;
}

/* Converts a TensorProto into a constant tensor named name. int64 / uint32 /
 * uint64 values outside int32 are clamped and flagged (an error unless a
 * Slice reads them). */
static int tensor_const(octx *c, const otensor *tp, const char *name, int *out) {
  char sb[128];
  if (tp->n_dims > GG_MAX_DIMS)
    return gg_errf(c->err, c->errlen, GG_EUNSUPPORTED, "%s: tensor '%s' has %zu dims (at most %d)",
                   c->file, name, tp->n_dims, GG_MAX_DIMS);
  int64_t shape[GG_MAX_DIMS], ne = 1;
  int nd = (int)tp->n_dims;
  for (int d = 0; d < nd; d++) {
    shape[d] = tp->dims[d];
    if (shape[d] < 0)
      return gg_errf(c->err, c->errlen, GG_EPARSE, "%s: tensor '%s' has a negative dim", c->file,
                     name);
  }
  for (int d = 0; d < nd; d++) {
    if (shape[d] && ne > GG_MAX_ELEMS / shape[d]) {
      long double tot = 1;
      for (int k = 0; k < nd; k++)
        tot *= (long double)shape[k];
      return gg_errf(c->err, c->errlen, GG_ERANGE,
                     "%s: tensor '%s' has dims %s = %.4Lg elements (at most 2^31-1)", c->file, name,
                     gg__shape_str(shape, nd, sb, sizeof sb), tot);
    }
    ne *= shape[d];
  }
  int dt = tp->has_data_type ? tp->data_type : 0;
  size_t es = onnx_elem_size(dt);
  if (!es)
    return gg_errf(c->err, c->errlen, GG_EUNSUPPORTED,
                   "%s: tensor '%s' is %s (supported: FLOAT, FLOAT16, BFLOAT16, DOUBLE, INT64, "
                   "INT32, INT16, INT8, UINT64, UINT32, UINT16, UINT8, BOOL%s)",
                   c->file, name, onnx_dtype_name(dt),
                   dt == ONNX__TENSOR_PROTO__DATA_TYPE__STRING ? "; gpuguard has no string tensors"
                                                               : "");
  gg_dtype gdt = onnx_is_float(dt) ? GG_DT_F32 : GG_DT_I32;
  if (tp->segment)
    return gg_errf(c->err, c->errlen, GG_EUNSUPPORTED, "%s: tensor '%s' is segmented", c->file,
                   name);
  const uint8_t *raw = NULL;
  uint8_t *ext = NULL;
  size_t have = 0; /* values available */
  int rc = 0;
  if (tp->has_data_location && tp->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL) {
    if ((rc = read_external(c, tp, name, (uint64_t)ne * es, &ext))) return rc;
    raw = ext, have = (size_t)ne;
  } else if (tp->has_raw_data) {
    raw = tp->raw_data.data, have = tp->raw_data.len / es;
    if (tp->raw_data.len % es)
      return gg_errf(c->err, c->errlen, GG_EPARSE,
                     "%s: tensor '%s': raw_data has %zu bytes, not a multiple of %zu", c->file,
                     name, tp->raw_data.len, es);
  } else if (dt == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT)
    have = tp->n_float_data;
  else if (dt == ONNX__TENSOR_PROTO__DATA_TYPE__INT64)
    have = tp->n_int64_data;
  else if (dt == ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE)
    have = tp->n_double_data;
  else if (dt == ONNX__TENSOR_PROTO__DATA_TYPE__UINT32 ||
           dt == ONNX__TENSOR_PROTO__DATA_TYPE__UINT64)
    have = tp->n_uint64_data;
  else
    have = tp->n_int32_data;
  if ((int64_t)have != ne) {
    free(ext);
    return gg_errf(c->err, c->errlen, GG_EPARSE,
                   "%s: tensor '%s' holds %zu values, its shape %s needs %lld", c->file, name, have,
                   gg__shape_str(shape, nd, sb, sizeof sb), (long long)ne);
  }
  void *data = gg__const_alloc((size_t)ne * 4); /* exactly what weights_bytes counts */
  if (!data) {
    free(ext);
    return GG_ENOMEM;
  }
  float *f = data;
  int32_t *q = data;
  int clamped = 0;
  for (int64_t i = 0; i < ne; i++) {
    int64_t v = 0;
    switch (dt) {
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT:
      if (raw)
        memcpy(&f[i], raw + 4 * i, 4);
      else
        f[i] = tp->float_data[i];
      continue;
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16: {
      uint16_t h =
          raw ? (uint16_t)(raw[2 * i] | (raw[2 * i + 1] << 8)) : (uint16_t)tp->int32_data[i];
      f[i] = gg__half_to_float(h);
      continue;
    }
    case ONNX__TENSOR_PROTO__DATA_TYPE__BFLOAT16: {
      uint32_t b =
          raw ? (uint32_t)(raw[2 * i] | (raw[2 * i + 1] << 8)) : (uint16_t)tp->int32_data[i];
      b <<= 16;
      memcpy(&f[i], &b, 4);
      continue;
    }
    case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE: {
      double dv;
      if (raw)
        memcpy(&dv, raw + 8 * i, 8);
      else
        dv = tp->double_data[i];
      f[i] = double_to_float(dv);
      continue;
    }
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT32:
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT64: {
      uint64_t u = 0;
      if (raw && dt == ONNX__TENSOR_PROTO__DATA_TYPE__UINT32) {
        uint32_t w;
        memcpy(&w, raw + 4 * i, 4);
        u = w;
      } else if (raw)
        memcpy(&u, raw + 8 * i, 8);
      else
        u = tp->uint64_data[i];
      v = u > INT32_MAX ? (int64_t)INT32_MAX + 1 : (int64_t)u;
      break;
    }
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT64:
      if (raw)
        memcpy(&v, raw + 8 * i, 8);
      else
        v = tp->int64_data[i];
      break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT32:
      if (raw) {
        int32_t w;
        memcpy(&w, raw + 4 * i, 4);
        v = w;
      } else
        v = tp->int32_data[i];
      break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT16:
      v = raw ? (int16_t)(raw[2 * i] | (raw[2 * i + 1] << 8)) : (int16_t)tp->int32_data[i];
      break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT16:
      v = raw ? (uint16_t)(raw[2 * i] | (raw[2 * i + 1] << 8)) : (uint16_t)tp->int32_data[i];
      break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT8:
      v = raw ? (int8_t)raw[i] : (int8_t)tp->int32_data[i];
      break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT8: v = raw ? raw[i] : (uint8_t)tp->int32_data[i]; break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__BOOL: v = (raw ? raw[i] : tp->int32_data[i]) != 0; break;
    default: break;
    }
    if (v > INT32_MAX) v = INT32_MAX, clamped = 1;
    if (v < INT32_MIN) v = INT32_MIN, clamped = 1;
    if (clamped && (dt == ONNX__TENSOR_PROTO__DATA_TYPE__UINT32 ||
                    dt == ONNX__TENSOR_PROTO__DATA_TYPE__UINT64))
      clamped = 2;
    q[i] = (int32_t)v;
  }
  free(ext);
  if ((rc = add_const(c, name, gdt, shape, nd, data, out))) return rc;
  c->clamped[*out] = (char)clamped;
  c->g->tensors[*out].src_type = dt;
  return 0;
}

/* ------------------------------------------------------------ node helpers */

/* Input k of an ONNX node: its tensor, -1 when absent or empty (optional). */
static int in_t(octx *c, const onode *np, size_t k) {
  if (k >= np->n_input || !np->input[k] || !*np->input[k]) return -1;
  return map_get(c, np->input[k]);
}

static const gg_tensor *cst(octx *c, int t) {
  return t >= 0 && c->g->tensors[t].is_const ? &c->g->tensors[t] : NULL;
}

/* Whether tensor t holds one element: a constant of one value, or a tensor
 * this import made so (gg_tensor.scalar). */
static int is_scalar(octx *c, int t) {
  return t >= 0 && gg__tensor_one_elem(&c->g->tensors[t]);
}

/* A constant int vector input (values in out, count returned; -1 absent). */
static int const_ints_in(octx *c, const onode *np, size_t k, int64_t *out, int max, int *rcp) {
  int t = in_t(c, np, k);
  *rcp = 0;
  if (t < 0) return -1;
  const gg_tensor *tt = cst(c, t);
  if (!tt || tt->v.dtype != GG_DT_I32 || tt->v.nelem > max) {
    *rcp = NODE_ERR(GG_EUNSUPPORTED,
                    "input %zu ('%s') must be a constant integer vector of at most %d values", k,
                    np->input[k], max);
    return -2;
  }
  for (int64_t i = 0; i < tt->v.nelem; i++)
    out[i] = ((int32_t *)tt->v.data)[i];
  return (int)tt->v.nelem;
}

/* Emits a node: ins (n_in tensors) -> outs (n_out tensors, already created). */
static int emit(octx *c, gg_op op, const char *src, const char *name, const int *ins, int n_in,
                const int *outs, int n_out, const gg_attrs *a, int *idx) {
  int ni;
  gg_node *n = new_node(c, op, src, name, n_in, n_out, &ni);
  if (!n) return GG_ENOMEM;
  if (a) n->a = *a;
  for (int k = 0; k < n_in; k++)
    n->in[k] = ins[k];
  for (int k = 0; k < n_out; k++) {
    n->out[k] = outs[k];
    c->g->tensors[outs[k]].producer = ni;
  }
  if (idx) *idx = ni;
  return 0;
}

/* A new intermediate tensor named base + suffix. */
static int tmp_tensor(octx *c, const char *base, const char *suffix, int *rcp) {
  char nb[1200];
  snprintf(nb, sizeof nb, "%.1000s%s", base, suffix);
  return new_tensor(c, nb, rcp);
}

/* y = Transpose(x, perm) as a new tensor; *out gets it. */
static int transpose(octx *c, const char *base, const char *suffix, int x, const int32_t *perm,
                     int r, int *out) {
  int rc = 0, p, y = tmp_tensor(c, base, suffix, &rc);
  if (y < 0) return rc;
  char pn[1200];
  snprintf(pn, sizeof pn, "%.1000s%s/perm", base, suffix);
  if ((rc = const_i32v(c, pn, perm, r, &p))) return rc;
  int ins[2] = {x, p};
  if ((rc =
           emit(c, GG_OP_TRANSPOSE, "Transpose", c->g->tensors[y].name, ins, 2, &y, 1, NULL, NULL)))
    return rc;
  c->rank[y] = r;
  *out = y;
  return 0;
}

static const int32_t k_to_nhwc[4] = {0, 2, 3, 1}, k_to_nchw[4] = {0, 3, 1, 2};

/* Runs op in NHWC on an NCHW tensor: x -> T -> op(ins...) -> T -> out. ins[0]
 * is replaced by the transposed x. Returns the op node's index in *idx. */
static int nhwc_wrap(octx *c, const onode *np, gg_op op, int *ins, int n_in, int out,
                     const gg_attrs *a, int *idx) {
  const char *nm = node_label(np);
  int rc, xt = -1, yt;
  /* Parameters left to the session (exec.c resolve_params) must not meet
   * the import-time constant folding, which does not resolve them. */
  int deferred = a && ((a->padding == GG_PAD_EXPLICIT && a->pads[0] < 0) ||
                       (op == GG_OP_RESIZE && a->out_hw[0] < 0));
  if (deferred && cst(c, ins[0]))
    return NODE_ERR(GG_EUNSUPPORTED, "a constant input with a size known only at session time "
                                     "(auto_pad SAME_*, output_shape or scales) is not supported");
  if ((rc = transpose(c, nm, "/to_nhwc", ins[0], k_to_nhwc, 4, &xt))) return rc;
  ins[0] = xt;
  yt = tmp_tensor(c, nm, "/nhwc", &rc);
  if (yt < 0) return rc;
  if ((rc = emit(c, op, c->op_name, nm, ins, n_in, &yt, 1, a, idx))) return rc;
  c->rank[yt] = 4;
  /* the final transpose produces the ONNX output tensor */
  int p;
  char pn[1200];
  snprintf(pn, sizeof pn, "%.1000s/to_nchw/perm", nm);
  if ((rc = const_i32v(c, pn, k_to_nchw, 4, &p))) return rc;
  int ti[2] = {yt, p};
  snprintf(pn, sizeof pn, "%.1000s/to_nchw", nm);
  if ((rc = emit(c, GG_OP_TRANSPOSE, "Transpose", pn, ti, 2, &out, 1, NULL, NULL))) return rc;
  c->rank[out] = 4;
  return 0;
}

/* ------------------------------------------------------------ op handlers */

/* Largest constant a handler evaluates at import (fold_now). */
#define FOLD_NOW_MAX ((int64_t)1 << 24)
static int fold_now(octx *c, const onode *np, gg_op op, const int *ins, int n_in, const gg_attrs *a,
                    int *outs);

typedef struct opdef opdef;
typedef int (*handler)(octx *c, const onode *np, const opdef *d, int *outs);
struct opdef {
  const char *name;
  handler fn;
  gg_op op;
  const char *attrs; /* accepted attribute names, comma-separated */
};

static int X(octx *c, const onode *np, size_t k, int *t) {
  *t = in_t(c, np, k);
  if (*t < 0) return NODE_ERR(GG_EPARSE, "input %zu is missing", k);
  if (c->clamped[*t])
    return NODE_ERR(GG_ERANGE, "constant '%s' holds %s values outside the int32 range",
                    np->input[k], c->clamped[*t] == 2 ? "uint32/uint64" : "int64");
  return 0;
}

static int same_rank(octx *c, int x) {
  return x >= 0 ? c->rank[x] : -1;
}

/* An axis value that can name a dim of a tensor of at most GG_MAX_DIMS dims
 * (negative: from the end); the kernels check it against the real rank. */
static int axis_ok(int64_t v) {
  return v >= -GG_MAX_DIMS && v < GG_MAX_DIMS;
}
#define AXIS_CHECK(v)                                                                              \
  do {                                                                                             \
    if (!axis_ok(v)) return NODE_ERR(GG_ERANGE, "axis %lld out of range", (long long)(v));         \
  } while (0)

static int h_unary(octx *c, const onode *np, const opdef *d, int *outs) {
  int x, rc;
  if ((rc = X(c, np, 0, &x))) return rc;
  gg_attrs a;
  memset(&a, 0, sizeof a);
  gg_op op = d->op;
  if (!strcmp(d->name, "LeakyRelu")) a.alpha = attr_f(np, "alpha", 0.01f);
  if (!strcmp(d->name, "HardSigmoid"))
    a.alpha = attr_f(np, "alpha", 0.2f), a.beta = attr_f(np, "beta", 0.5f);
  if (!strcmp(d->name, "Gelu")) {
    char s[32];
    attr_s(np, "approximate", "none", s, sizeof s);
    if (!strcmp(s, "tanh"))
      a.approximate = 1;
    else if (strcmp(s, "none"))
      return NODE_ERR(GG_EUNSUPPORTED, "attribute approximate=%s not supported", s);
  }
  if (!strcmp(d->name, "Dropout")) {
    /* training_mode true drops at random, except with a constant ratio of 0
     * (nothing dropped, the mask all true: the same as inference) */
    int tm = in_t(c, np, 2), ra = in_t(c, np, 1);
    int zero_ratio = ra >= 0 && cst(c, ra) && cst(c, ra)->v.dtype == GG_DT_F32 &&
                     cst(c, ra)->v.nelem == 1 && ((float *)cst(c, ra)->v.data)[0] == 0.0f;
    if (tm >= 0 && (!cst(c, tm) || (((int32_t *)cst(c, tm)->v.data)[0] && !zero_ratio)))
      return NODE_ERR(GG_EUNSUPPORTED,
                      "training_mode must be a constant false, or the ratio a constant 0 (a "
                      "random mask is not run)");
    if (attr_i(np, "is_test", 1) == 0 && c->opset < 7)
      return NODE_ERR(GG_EUNSUPPORTED, "is_test=0");
    if (np->n_output > 2)
      return NODE_ERR(GG_EPARSE, "has %d outputs (at most 2)", (int)np->n_output);
  }
  int rc2 = emit(c, op, d->name, node_label(np), &x, 1, outs, 1, &a, NULL);
  c->rank[outs[0]] = same_rank(c, x);
  if (op == GG_OP_IDENTITY) c->g->tensors[outs[0]].src_type = c->g->tensors[x].src_type;
  if (rc2 || strcmp(d->name, "Dropout") || np->n_output < 2 || outs[1] < 0) return rc2;
  /* Inference: the mask is all true, ones (I32 stands for BOOL) of x's
   * shape, from Shape(x) folded at session time. */
  int shp;
  if ((shp = tmp_tensor(c, node_label(np), "/mask_shape", &rc)) < 0) return rc;
  if ((rc = emit(c, GG_OP_SHAPE, "Shape", node_label(np), &x, 1, &shp, 1, NULL, NULL))) return rc;
  c->rank[shp] = 1;
  memset(&a, 0, sizeof a);
  a.to = GG_DT_I32, a.fill = 1.0f;
  c->rank[outs[1]] = same_rank(c, x);
  c->dt[outs[1]] = GG_DT_I32;
  return emit(c, GG_OP_CONSTANT_OF_SHAPE, d->name, node_label(np), &shp, 1, &outs[1], 1, &a, NULL);
}

/* Mish (opset 18): x * tanh(softplus(x)), as the three ops it is defined by
 * (each runs on every backend). */
static int h_mish(octx *c, const onode *np, const opdef *d, int *outs) {
  int x, rc, sp, th;
  if ((rc = X(c, np, 0, &x))) return rc;
  int r = same_rank(c, x);
  if ((sp = tmp_tensor(c, node_label(np), "/softplus", &rc)) < 0 ||
      (rc = emit(c, GG_OP_SOFTPLUS, d->name, node_label(np), &x, 1, &sp, 1, NULL, NULL)) ||
      (th = tmp_tensor(c, node_label(np), "/tanh", &rc)) < 0 ||
      (rc = emit(c, GG_OP_TANH, d->name, node_label(np), &sp, 1, &th, 1, NULL, NULL)))
    return rc;
  c->rank[sp] = c->rank[th] = c->rank[outs[0]] = r;
  int ins[2] = {x, th};
  return emit(c, GG_OP_MUL, d->name, node_label(np), ins, 2, outs, 1, NULL, NULL);
}

static int h_binary(octx *c, const onode *np, const opdef *d, int *outs) {
  int n = (int)np->n_input, rc, ins[3];
  if (d->op == GG_OP_WHERE) {
    for (int k = 0; k < 3; k++)
      if ((rc = X(c, np, (size_t)k, &ins[k]))) return rc;
    int r = 0;
    for (int k = 0; k < 3; k++)
      r = c->rank[ins[k]] < 0 || r < 0 ? -1 : c->rank[ins[k]] > r ? c->rank[ins[k]] : r;
    c->rank[outs[0]] = r;
    return emit(c, GG_OP_WHERE, d->name, node_label(np), ins, 3, outs, 1, NULL, NULL);
  }
  if (n < 1 || (n != 2 && d->op != GG_OP_MAXIMUM && d->op != GG_OP_MINIMUM && d->op != GG_OP_ADD))
    return NODE_ERR(GG_EPARSE, "expects 2 inputs, has %d", n);
  int acc;
  if ((rc = X(c, np, 0, &acc))) return rc;
  if (n == 1) {
    c->rank[outs[0]] = c->rank[acc];
    return emit(c, GG_OP_IDENTITY, d->name, node_label(np), &acc, 1, outs, 1, NULL, NULL);
  }
  for (int k = 1; k < n; k++) {
    int b;
    if ((rc = X(c, np, (size_t)k, &b))) return rc;
    int y = outs[0];
    if (k < n - 1 && (y = tmp_tensor(c, node_label(np), "/acc", &rc)) < 0) return rc;
    ins[0] = acc, ins[1] = b;
    int ra = c->rank[acc], rb = c->rank[b];
    if ((rc = emit(c, d->op, d->name, node_label(np), ins, 2, &y, 1, NULL, NULL))) return rc;
    c->rank[y] = ra < 0 || rb < 0 ? -1 : ra > rb ? ra : rb;
    c->g->tensors[y].scalar = is_scalar(c, acc) && is_scalar(c, b); /* x_scale * w_scale */
    acc = y;
  }
  return 0;
}

static int h_clip(octx *c, const onode *np, const opdef *d, int *outs) {
  int x, rc;
  if ((rc = X(c, np, 0, &x))) return rc;
  gg_attrs a;
  memset(&a, 0, sizeof a);
  a.clip_min = -FLT_MAX, a.clip_max = FLT_MAX;
  if (c->opset < 11) {
    a.clip_min = attr_f(np, "min", -FLT_MAX);
    a.clip_max = attr_f(np, "max", FLT_MAX);
  } else
    for (int k = 1; k <= 2; k++) {
      int t = in_t(c, np, (size_t)k);
      if (t < 0) continue;
      const gg_tensor *tt = cst(c, t);
      if (!tt || tt->v.nelem != 1)
        return NODE_ERR(GG_EUNSUPPORTED, "input %d ('%s') must be a constant scalar", k,
                        np->input[k]);
      float v =
          tt->v.dtype == GG_DT_F32 ? ((float *)tt->v.data)[0] : (float)((int32_t *)tt->v.data)[0];
      if (k == 1)
        a.clip_min = v;
      else
        a.clip_max = v;
    }
  c->rank[outs[0]] = c->rank[x];
  if (c->dt[x] == GG_DT_I32 && c->opset >= 11) {
    /* Integer Clip: Max with min, then Min with max, exact in int32. */
    int cur = x, bound[2] = {in_t(c, np, 1), in_t(c, np, 2)};
    if (bound[0] < 0 && bound[1] < 0)
      return emit(c, GG_OP_IDENTITY, d->name, node_label(np), &x, 1, outs, 1, NULL, NULL);
    for (int k = 0; k < 2; k++) {
      if (bound[k] < 0) continue;
      if (cst(c, bound[k])->v.dtype != GG_DT_I32)
        return NODE_ERR(GG_EPARSE, "input %d ('%s') is not an integer like the input", k + 1,
                        np->input[k + 1]);
      int last = k == 1 || bound[1] < 0;
      int y = last ? outs[0] : tmp_tensor(c, node_label(np), "/lo", &rc);
      if (y < 0) return rc;
      c->rank[y] = c->rank[x], c->dt[y] = GG_DT_I32;
      int ins[2] = {cur, bound[k]};
      if ((rc = emit(c, k ? GG_OP_MINIMUM : GG_OP_MAXIMUM, d->name, node_label(np), ins, 2, &y, 1,
                     NULL, NULL)))
        return rc;
      cur = y;
    }
    return 0;
  }
  /* Clip(0, 6) is Relu6 and Clip(0, inf) is Relu: fusable into a conv. */
  if (a.clip_min == 0.0f && a.clip_max == 6.0f)
    return emit(c, GG_OP_RELU6, d->name, node_label(np), &x, 1, outs, 1, NULL, NULL);
  if (a.clip_min == 0.0f && a.clip_max == FLT_MAX)
    return emit(c, GG_OP_RELU, d->name, node_label(np), &x, 1, outs, 1, NULL, NULL);
  return emit(c, GG_OP_CLIP, d->name, node_label(np), &x, 1, outs, 1, &a, NULL);
}

static int h_cast(octx *c, const onode *np, const opdef *d, int *outs) {
  int x, rc;
  if ((rc = X(c, np, 0, &x))) return rc;
  int64_t to = attr_i(np, "to", -1);
  gg_attrs a;
  memset(&a, 0, sizeof a);
  switch (to) {
  case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16: a.cast_kind = GG_CAST_F16; break;
  case ONNX__TENSOR_PROTO__DATA_TYPE__BFLOAT16: a.cast_kind = GG_CAST_BF16; break;
  case ONNX__TENSOR_PROTO__DATA_TYPE__UINT8: a.cast_kind = GG_CAST_U8; break;
  case ONNX__TENSOR_PROTO__DATA_TYPE__INT8: a.cast_kind = GG_CAST_I8; break;
  case ONNX__TENSOR_PROTO__DATA_TYPE__UINT16: a.cast_kind = GG_CAST_U16; break;
  case ONNX__TENSOR_PROTO__DATA_TYPE__INT16: a.cast_kind = GG_CAST_I16; break;
  case ONNX__TENSOR_PROTO__DATA_TYPE__BOOL: a.cast_kind = GG_CAST_BOOL; break;
  default: break;
  }
  /* DOUBLE is held as float32 (a copy); UINT32 / UINT64 as int32 like INT64
   * (values past int32 saturate there, as for INT64). */
  if (to > 0 && to <= ONNX__TENSOR_PROTO__DATA_TYPE__BFLOAT16 && onnx_elem_size((int)to))
    a.to = onnx_is_float((int)to) ? GG_DT_F32 : GG_DT_I32;
  else
    return NODE_ERR(GG_EUNSUPPORTED,
                    "attribute to=%s not supported (float and integer types: gpuguard has no "
                    "%s tensors)",
                    onnx_dtype_name((int)to),
                    to == ONNX__TENSOR_PROTO__DATA_TYPE__STRING ? "string" : "such");
  if (attr_i(np, "saturate", 1) != 1)
    return NODE_ERR(GG_EUNSUPPORTED, "attribute saturate=0 not supported");
  c->rank[outs[0]] = c->rank[x];
  c->g->tensors[outs[0]].src_type = (int)to; /* e.g. a zero point made by a Cast to UINT8 */
  int p = c->g->tensors[x].producer;
  if (p >= 0 && a.to == GG_DT_F32 && a.cast_kind == GG_CAST_NONE &&
      c->g->nodes[p].op == GG_OP_CAST && (c->g->nodes[p].a.flags & 1))
    /* back to float from an integer op computed exactly in float: its input */
    return emit(c, GG_OP_IDENTITY, d->name, node_label(np), &c->g->nodes[p].in[0], 1, outs, 1,
                NULL, NULL);
  return emit(c, GG_OP_CAST, d->name, node_label(np), &x, 1, outs, 1, &a, NULL);
}

/* Softmax / LogSoftmax over one axis (opset >= 13), or the coerced-2-D
 * form of older opsets (equal to the last-axis op when axis is the last). */
static int h_softmax(octx *c, const onode *np, const opdef *d, int *outs) {
  int x, rc;
  if ((rc = X(c, np, 0, &x))) return rc;
  int r = c->rank[x];
  int64_t ax = attr_i(np, "axis", c->opset >= 13 ? -1 : 1);
  c->rank[outs[0]] = r;
  if (ax == -1 || (r >= 0 && ax == r - 1))
    return emit(c, d->op, d->name, node_label(np), &x, 1, outs, 1, NULL, NULL);
  if (r < 0 && (ax < 0 || c->opset >= 13))
    return NODE_ERR(GG_EUNSUPPORTED,
                    "attribute axis=%lld needs the input's rank, which is not known at import",
                    (long long)ax);
  if (r >= 0 && (ax < -r || ax >= r))
    return NODE_ERR(GG_EPARSE, "axis %lld out of range for rank %d", (long long)ax, r);
  if (ax < 0) ax += r;
  if (ax >= GG_MAX_DIMS) return NODE_ERR(GG_EUNSUPPORTED, "axis %lld", (long long)ax);
  if (c->opset < 13) {
    /* coerced 2-D: [d0..d(ax-1), prod(rest)] with ONNX's copy-zero Reshape. */
    int32_t sh[GG_MAX_DIMS];
    for (int i = 0; i < ax; i++)
      sh[i] = 0;
    sh[ax] = -1;
    int s1, t1, t2, shp;
    if ((rc = const_i32v(c, "softmax/shape2d", sh, (int)ax + 1, &s1))) return rc;
    if ((t1 = tmp_tensor(c, node_label(np), "/2d", &rc)) < 0) return rc;
    gg_attrs ra;
    memset(&ra, 0, sizeof ra);
    ra.axis = 1; /* ONNX Reshape: 0 copies the input dim */
    int ins[2] = {x, s1};
    if ((rc = emit(c, GG_OP_RESHAPE, "Reshape", node_label(np), ins, 2, &t1, 1, &ra, NULL)))
      return rc;
    if ((t2 = tmp_tensor(c, node_label(np), "/2d_out", &rc)) < 0) return rc;
    if ((rc = emit(c, d->op, d->name, node_label(np), &t1, 1, &t2, 1, NULL, NULL))) return rc;
    if ((shp = tmp_tensor(c, node_label(np), "/shape", &rc)) < 0) return rc;
    if ((rc = emit(c, GG_OP_SHAPE, "Shape", node_label(np), &x, 1, &shp, 1, NULL, NULL))) return rc;
    c->rank[shp] = 1;
    int ins2[2] = {t2, shp};
    return emit(c, GG_OP_RESHAPE, "Reshape", node_label(np), ins2, 2, outs, 1, NULL, NULL);
  }
  int32_t perm[GG_MAX_DIMS];
  for (int i = 0; i < r; i++)
    perm[i] = i;
  perm[ax] = r - 1, perm[r - 1] = (int32_t)ax;
  int t1, t2;
  if ((rc = transpose(c, node_label(np), "/axis_last", x, perm, r, &t1))) return rc;
  if ((t2 = tmp_tensor(c, node_label(np), "/last", &rc)) < 0) return rc;
  if ((rc = emit(c, d->op, d->name, node_label(np), &t1, 1, &t2, 1, NULL, NULL))) return rc;
  int p, ti[2];
  char pn[1200];
  snprintf(pn, sizeof pn, "%.1000s/axis_back/perm", node_label(np));
  if ((rc = const_i32v(c, pn, perm, r, &p))) return rc;
  ti[0] = t2, ti[1] = p;
  return emit(c, GG_OP_TRANSPOSE, "Transpose", node_label(np), ti, 2, outs, 1, NULL, NULL);
}

/* kernel_shape/strides/dilations/pads/auto_pad of a 2-D window op into a. */
/* kernel_shape/strides/dilations/pads/auto_pad of a window op into a. nd:
 * the op's spatial dims; a 1-D op (nd 1) runs as 2-D over [1, L], its
 * attributes mapped to the W dim. */
static int window_attrs(octx *c, const onode *np, gg_attrs *a, int64_t kh, int64_t kw, int nd) {
  int64_t v[8];
  int n;
  if ((n = attr_ints(np, "kernel_shape", v, 8)) >= 0) {
    if (n != nd)
      return NODE_ERR(GG_EUNSUPPORTED,
                      "only 1-D and 2-D windows are supported (kernel_shape has %d dims)", n);
    if (nd == 1) v[1] = v[0], v[0] = 1;
    if ((kh >= 0 && v[0] != kh) || (kw >= 0 && v[1] != kw))
      return NODE_ERR(GG_EPARSE, "kernel_shape does not match the weights");
    kh = v[0], kw = v[1];
  }
  if (kh < 1 || kw < 1 || kh > 4096 || kw > 4096)
    return NODE_ERR(GG_EPARSE, "bad or missing kernel_shape");
  a->ksize[0] = (int)kh, a->ksize[1] = (int)kw;
  if ((n = attr_ints(np, "strides", v, 8)) >= 0) {
    if (nd == 1 && n == 1) v[1] = v[0], v[0] = 1, n = 2;
    if (n != 2 || v[0] < 1 || v[1] < 1 || v[0] > 4096 || v[1] > 4096)
      return NODE_ERR(GG_EUNSUPPORTED, "attribute strides not supported");
    a->strides[0] = (int)v[0], a->strides[1] = (int)v[1];
  }
  if ((n = attr_ints(np, "dilations", v, 8)) >= 0) {
    if (nd == 1 && n == 1) v[1] = v[0], v[0] = 1, n = 2;
    if (n != 2 || v[0] < 1 || v[1] < 1 || v[0] > 4096 || v[1] > 4096)
      return NODE_ERR(GG_EUNSUPPORTED, "attribute dilations not supported");
    a->dilations[0] = (int)v[0], a->dilations[1] = (int)v[1];
  }
  char ap[32];
  attr_s(np, "auto_pad", "NOTSET", ap, sizeof ap);
  a->padding = GG_PAD_EXPLICIT;
  if ((n = attr_ints(np, "pads", v, 8)) >= 0) {
    if (nd == 1 && n == 2) v[3] = v[1], v[1] = v[0], v[0] = v[2] = 0, n = 4;
    if (n != 4) return NODE_ERR(GG_EUNSUPPORTED, "attribute pads has %d values (2-D: 4)", n);
    for (int i = 0; i < 4; i++)
      if (v[i] < 0 || v[i] > 65536)
        return NODE_ERR(GG_EUNSUPPORTED, "attribute pads=%lld not supported", (long long)v[i]);
    /* ONNX: h_begin, w_begin, h_end, w_end; IR: top, bottom, left, right */
    a->pads[0] = (int)v[0], a->pads[1] = (int)v[2], a->pads[2] = (int)v[1], a->pads[3] = (int)v[3];
  }
  if (!strcmp(ap, "VALID"))
    a->padding = GG_PAD_VALID;
  else if (!strcmp(ap, "SAME_UPPER"))
    a->padding = GG_PAD_SAME;
  else if (!strcmp(ap, "SAME_LOWER") && kh == 1 && kw == 1)
    a->padding = GG_PAD_VALID;
  else if (!strcmp(ap, "SAME_LOWER")) /* the odd pixel first: resolved at session time (exec.c) */
    a->pads[0] = a->pads[1] = a->pads[2] = a->pads[3] = -1;
  else if (strcmp(ap, "NOTSET"))
    return NODE_ERR(GG_EUNSUPPORTED, "attribute auto_pad=%s not supported", ap);
  return 0;
}

/* t = Shape(x)[start:end] (a new 1-D int tensor named node + suffix). */
static int shape_slice(octx *c, const onode *np, int x, int64_t start, int64_t end,
                       const char *suffix, int *t) {
  int rc;
  if ((*t = tmp_tensor(c, node_label(np), suffix, &rc)) < 0) return rc;
  gg_attrs sa;
  memset(&sa, 0, sizeof sa);
  sa.n_slice = 1, sa.slice_starts[0] = start, sa.slice_ends[0] = end;
  if ((rc = emit(c, GG_OP_SHAPE, "Shape", node_label(np), &x, 1, t, 1, &sa, NULL))) return rc;
  c->rank[*t] = 1;
  return 0;
}

/* x [N, C, L] as [N, C, 1, L] (a Reshape on Shape(x), resolved at session
 * time): 1-D window ops run as 2-D ones. */
static int to_4d(octx *c, const onode *np, int x, int *out) {
  int rc, pieces[4], axc, one;
  const char *nm = node_label(np);
  for (int k = 0; k < 2; k++)
    if ((rc = shape_slice(c, np, x, k ? 2 : 0, k ? 3 : 2, k ? "/len" : "/nc", &pieces[k ? 2 : 0])))
      return rc;
  int32_t v1 = 1, v0 = 0;
  char b[1200];
  snprintf(b, sizeof b, "%.1000s/one", nm);
  if ((rc = const_i32v(c, b, &v1, 1, &one))) return rc;
  snprintf(b, sizeof b, "%.1000s/concat_axis", nm);
  if ((rc = const_i32v(c, b, &v0, 1, &axc))) return rc;
  pieces[1] = one, pieces[3] = axc;
  int sh = tmp_tensor(c, nm, "/shape4d", &rc), y;
  if (sh < 0) return rc;
  if ((rc = emit(c, GG_OP_CONCAT, "Concat", nm, pieces, 4, &sh, 1, NULL, NULL))) return rc;
  if ((y = tmp_tensor(c, nm, "/4d", &rc)) < 0) return rc;
  int ins[2] = {x, sh};
  if ((rc = emit(c, GG_OP_RESHAPE, c->op_name, nm, ins, 2, &y, 1, NULL, NULL))) return rc;
  c->rank[y] = 4;
  *out = y;
  return 0;
}

/* y [N, C, 1, L] -> out [N, C, L]. */
static int from_4d(octx *c, const onode *np, int y, int out) {
  gg_attrs a;
  memset(&a, 0, sizeof a);
  a.n_axes = 1, a.axes[0] = 2;
  c->rank[out] = 3;
  return emit(c, GG_OP_SQUEEZE, c->op_name, node_label(np), &y, 1, &out, 1, &a, NULL);
}

/* What Conv and ConvTranspose share: input x, the constant weights
 * [A, B, (KH,) KW] (Conv: A = CO, B = CI/group; ConvTranspose: A = CI,
 * B = CO/group) of a 1-D or 2-D window, group, and attrs with unit strides
 * and dilations. 3-D windows (NCDHW, 5-D weights) do not come here: the
 * IR's NHWC window ops are 2-D, so those take conv_nd (the N-D ops). */
typedef struct win_in {
  int x, nd;
  const gg_tensor *wt;
  int64_t A, B, KH, KW, grp;
  gg_attrs a;
} win_in;

/* x, wi: the input and weight tensors (-1: the node's inputs 0 and 1). */
static int window_inputs(octx *c, const onode *np, const char *a_what, int x, int wi, win_in *w) {
  int rc;
  memset(w, 0, sizeof *w);
  w->x = x;
  if ((x < 0 && (rc = X(c, np, 0, &w->x))) || (wi < 0 && (rc = X(c, np, 1, &wi)))) return rc;
  const gg_tensor *wt = w->wt = cst(c, wi);
  if (c->rank[wi] == 5 || c->rank[w->x] == 5)
    return NODE_ERR(GG_EUNSUPPORTED,
                    "a 3-D window (5-D weights, NCDHW input) is not supported: 1-D and 2-D only");
  if (!wt || wt->v.dtype != GG_DT_F32)
    return NODE_ERR(GG_EUNSUPPORTED, "the weights (input 1) must be a constant float tensor");
  if (wt->v.ndim != 4 && wt->v.ndim != 3)
    return NODE_ERR(GG_EUNSUPPORTED, "%d-D weights: 3-D or 4-D expected (a 1-D or 2-D window)",
                    wt->v.ndim);
  int nd = w->nd = wt->v.ndim - 2;
  if (c->rank[w->x] >= 0 && c->rank[w->x] != nd + 2)
    return NODE_ERR(GG_EUNSUPPORTED, "a %d-D input for %d-D weights", c->rank[w->x], nd + 2);
  w->A = wt->v.shape[0], w->B = wt->v.shape[1];
  w->KH = nd == 2 ? wt->v.shape[2] : 1, w->KW = wt->v.shape[nd + 1];
  w->grp = attr_i(np, "group", 1);
  if (w->grp < 1 || w->A < 1 || w->B < 1 || w->A % w->grp)
    return NODE_ERR(GG_EPARSE, "group=%lld does not divide %lld %s channels", (long long)w->grp,
                    (long long)w->A, a_what);
  w->a.strides[0] = w->a.strides[1] = w->a.dilations[0] = w->a.dilations[1] = 1;
  w->a.groups = (int)w->grp;
  return 0;
}

/* The weights [A, B, KH, KW] as [KH, KW, B, A] (HWIO for Conv, HWOI for
 * ConvTranspose), a new constant named input 1 + suffix with shape sh (the
 * same elements; depthwise declares [KH, KW, group, mult]); then the bias
 * (tensor b, n_bias floats; -1: none) when there is one. ins gets x, the weights and
 * the bias; *nin their count. */
static int window_weights(octx *c, const onode *np, win_in *w, const char *suffix,
                          const int64_t sh[4], int64_t n_bias, int b, int ins[3], int *nin) {
  int64_t A = w->A, B = w->B, KH = w->KH, KW = w->KW;
  const float *src = w->wt->v.data;
  float *dst = gg__const_alloc((size_t)w->wt->v.nelem * 4);
  if (!dst) return GG_ENOMEM;
  for (int64_t i = 0; i < A; i++)
    for (int64_t o = 0; o < B; o++)
      for (int64_t kh = 0; kh < KH; kh++)
        for (int64_t kw = 0; kw < KW; kw++)
          dst[((kh * KW + kw) * B + o) * A + i] = src[((i * B + o) * KH + kh) * KW + kw];
  char wn[1200];
  snprintf(wn, sizeof wn, "%.1000s%s", np->input[1], suffix);
  int wh = -1, rc;
  if ((rc = add_const(c, wn, GG_DT_F32, sh, 4, dst, &wh))) return rc;
  ins[0] = w->x, ins[1] = wh, ins[2] = -1, *nin = 2;
  if (b < 0) return 0;
  const gg_tensor *bt = cst(c, b);
  if (!bt || bt->v.dtype != GG_DT_F32 || bt->v.nelem != n_bias)
    return NODE_ERR(GG_EUNSUPPORTED, "the bias must be a constant float vector of %lld values",
                    (long long)n_bias);
  ins[(*nin)++] = b;
  w->a.has_bias = 1;
  return 0;
}

/* Emits op on ins (NHWC, wrapped in transposes) into out; a 1-D window (nd
 * 1) runs as a 2-D one over [N, C, 1, L]. *ci (may be NULL): the op's node
 * index, as nhwc_wrap's idx. */
static int emit_window(octx *c, const onode *np, gg_op op, int *ins, int nin, int nd,
                       const gg_attrs *a, int out, int *ci) {
  int rc, y = out;
  if (nd == 1 && ((rc = to_4d(c, np, ins[0], &ins[0])) ||
                  (y = tmp_tensor(c, node_label(np), "/out4d", &rc)) < 0))
    return rc;
  if ((rc = nhwc_wrap(c, np, op, ins, nin, y, a, ci))) return rc;
  return nd == 1 ? from_4d(c, np, y, out) : 0;
}

/* 3-D windows and MaxPool's Indices output: the channel-first N-D ops
 * (group W, src/engine/ops-window.c) on the tensors as ONNX gives them (no
 * transposes, weights kept OIDHW), run by their naive kernels on the host.
 * Their attributes (nd spatial dims, ONNX order) go into a's nd_* fields as
 * they are; SAME_* and output_shape are resolved by the shape rule. kern:
 * the weights' kernel size, -1 where unknown (NULL for pools). */
static int window_attrs_nd(octx *c, const onode *np, gg_attrs *a, int nd, const int64_t *kern) {
  static const char *const names[3] = {"kernel_shape", "strides", "dilations"};
  int *dst[3] = {a->nd_k, a->nd_s, a->nd_d};
  int64_t v[8];
  int n;
  for (int k = 0; k < 3; k++) {
    if ((n = attr_ints(np, names[k], v, 8)) == -1) {
      if (k == 0 && !kern) return NODE_ERR(GG_EPARSE, "bad or missing kernel_shape");
      for (int i = 0; i < nd; i++)
        dst[k][i] = k == 0 ? (int)(kern[i] > 4096 ? 4097 : kern[i]) : 1; /* -1: unknown */
      continue;
    }
    if (n != nd)
      return NODE_ERR(GG_EUNSUPPORTED, "attribute %s has %d values for a %d-D window", names[k],
                      n, nd);
    for (int i = 0; i < nd; i++) {
      if (v[i] < 1 || v[i] > 4096)
        return NODE_ERR(GG_EUNSUPPORTED, "attribute %s=%lld not supported (1 to 4096)",
                        names[k], (long long)v[i]);
      if (k == 0 && kern && kern[i] >= 0 && v[i] != kern[i])
        return NODE_ERR(GG_EPARSE, "kernel_shape does not match the weights");
      dst[k][i] = (int)v[i];
    }
  }
  if ((n = attr_ints(np, "pads", v, 8)) != -1) {
    if (n != 2 * nd)
      return NODE_ERR(GG_EUNSUPPORTED, "attribute pads has %d values (a %d-D window: %d)", n, nd,
                      2 * nd);
    for (int i = 0; i < n; i++) {
      if (v[i] < 0 || v[i] > 65536)
        return NODE_ERR(GG_EUNSUPPORTED, "attribute pads=%lld not supported", (long long)v[i]);
      a->nd_pads[i] = (int)v[i];
    }
  }
  char ap[32];
  attr_s(np, "auto_pad", "NOTSET", ap, sizeof ap);
  if (!strcmp(ap, "NOTSET"))
    a->nd_auto = GG_AUTO_NOTSET;
  else if (!strcmp(ap, "VALID"))
    a->nd_auto = GG_AUTO_VALID;
  else if (!strcmp(ap, "SAME_UPPER"))
    a->nd_auto = GG_AUTO_SAME_UPPER;
  else if (!strcmp(ap, "SAME_LOWER"))
    a->nd_auto = GG_AUTO_SAME_LOWER;
  else
    return NODE_ERR(GG_EUNSUPPORTED, "attribute auto_pad=%s not supported", ap);
  return 0;
}

/* MaxPool / AveragePool over nd spatial dims of x as a MAXPOOL_ND /
 * AVGPOOL_ND node; MaxPool's Indices output (outs[1]) when it is used. */
static int pool_nd(octx *c, const onode *np, const opdef *d, int x, const int *outs, int nd) {
  gg_attrs a;
  int rc;
  memset(&a, 0, sizeof a);
  if (c->rank[x] >= 0 && c->rank[x] != nd + 2)
    return NODE_ERR(GG_EPARSE, "a %d-D input for a %d-D window", c->rank[x], nd);
  if ((rc = window_attrs_nd(c, np, &a, nd, NULL))) return rc;
  int64_t cm = attr_i(np, "ceil_mode", 0), so = attr_i(np, "storage_order", 0);
  if (cm != 0 && cm != 1)
    return NODE_ERR(GG_EUNSUPPORTED, "attribute ceil_mode=%lld not supported", (long long)cm);
  if (so != 0 && (so != 1 || nd > 2))
    return NODE_ERR(GG_EUNSUPPORTED, "attribute storage_order=%lld not supported with a %d-D "
                                     "window (0; 1 for 1-D and 2-D windows)",
                    (long long)so, nd);
  a.ceil_mode = (int)cm, a.storage_order = (int)so;
  a.count_include_pad = attr_i(np, "count_include_pad", 0) != 0;
  if (c->dt[x] == GG_DT_I32)
    return NODE_ERR(GG_EUNSUPPORTED,
                    "an integer input with a 3-D window or the Indices output is not supported");
  int o[2] = {outs[0], np->n_output > 1 ? outs[1] : -1}, nout = o[1] >= 0 ? 2 : 1;
  for (int k = 0; k < nout; k++)
    c->rank[o[k]] = nd + 2;
  if (nout == 2) c->dt[o[1]] = GG_DT_I32;
  return emit(c, d->op == GG_OP_MAXPOOL ? GG_OP_MAXPOOL_ND : GG_OP_AVGPOOL_ND, d->name,
              node_label(np), &x, 1, o, nout, &a, NULL);
}

/* Whether Conv / ConvTranspose np has a 3-D window (a 5-D input or weights,
 * or 3 kernel_shape values). */
static int conv_is_3d(octx *c, const onode *np) {
  int64_t v[8];
  int x = in_t(c, np, 0), w = in_t(c, np, 1);
  return (x >= 0 && c->rank[x] == 5) || (w >= 0 && c->rank[w] == 5) ||
         attr_ints(np, "kernel_shape", v, 8) == 3;
}

/* A 3-D Conv / ConvTranspose as a CONV_ND / CONV_TRANSPOSE_ND node. */
static int conv_nd(octx *c, const onode *np, const opdef *d, int *outs) {
  int x, wi, rc, tr = d->op == GG_OP_CONV_TRANSPOSE;
  if ((rc = X(c, np, 0, &x)) || (rc = X(c, np, 1, &wi))) return rc;
  if (c->rank[x] >= 0 && c->rank[x] != 5)
    return NODE_ERR(GG_EUNSUPPORTED, "a %d-D input with a 3-D window (5-D expected)", c->rank[x]);
  if (c->rank[wi] >= 0 && c->rank[wi] != 5)
    return NODE_ERR(GG_EUNSUPPORTED, "%d-D weights with a 3-D window (5-D expected)",
                    c->rank[wi]);
  if (c->dt[x] == GG_DT_I32 || c->dt[wi] == GG_DT_I32)
    return NODE_ERR(GG_EUNSUPPORTED, "integer inputs are not supported");
  const gg_tensor *wt = cst(c, wi);
  int64_t kern[3] = {-1, -1, -1}; /* weights computed at run time: checked by the shape rule */
  if (wt)
    for (int i = 0; i < 3; i++)
      kern[i] = wt->v.shape[2 + i];
  gg_attrs a;
  memset(&a, 0, sizeof a);
  if ((rc = window_attrs_nd(c, np, &a, 3, kern))) return rc;
  int64_t g = attr_i(np, "group", 1), v[8];
  if (g < 1 || g > 65536) return NODE_ERR(GG_EPARSE, "group=%lld", (long long)g);
  a.groups = (int)g;
  int n;
  if (tr && (n = attr_ints(np, "output_padding", v, 8)) != -1) {
    if (n != 3) return NODE_ERR(GG_EUNSUPPORTED, "attribute output_padding has %d values", n);
    for (int i = 0; i < 3; i++) {
      if (v[i] < 0 || v[i] > 4096)
        return NODE_ERR(GG_EUNSUPPORTED, "attribute output_padding not supported");
      a.nd_out_pad[i] = (int)v[i];
    }
  }
  if (tr && (n = attr_ints(np, "output_shape", v, 8)) != -1) {
    if (n != 3 && n != 5)
      return NODE_ERR(GG_EUNSUPPORTED, "attribute output_shape has %d values", n);
    for (int i = 0; i < 3; i++) {
      if (v[n - 3 + i] < 1 || v[n - 3 + i] > 65536)
        return NODE_ERR(GG_EUNSUPPORTED, "attribute output_shape out of range");
      a.nd_out_shape[i] = v[n - 3 + i];
    }
  }
  int ins[3] = {x, wi, -1}, nin = 2;
  if (in_t(c, np, 2) >= 0 && (rc = X(c, np, 2, &ins[nin++]))) return rc;
  c->rank[outs[0]] = 5;
  return emit(c, tr ? GG_OP_CONV_TRANSPOSE_ND : GG_OP_CONV_ND, d->name, node_label(np), ins, nin,
              outs, 1, &a, NULL);
}

/* A 1-D or 2-D Conv of x with the constant weights wi and bias b (-1: none)
 * into out, the node's attributes (Conv's, also QLinearConv's and
 * ConvInteger's). */
static int conv_build(octx *c, const onode *np, int x, int wi, int b, int out) {
  win_in w;
  int rc, ins[3], nin;
  if ((rc = window_inputs(c, np, "output", x, wi, &w))) return rc;
  if ((rc = window_attrs(c, np, &w.a, w.KH, w.KW, w.nd))) return rc;
  int dw = w.grp > 1 && w.B == 1; /* depthwise: CI = group, MULT = CO / group */
  int64_t sh[4] = {w.KH, w.KW, dw ? w.grp : w.B, dw ? w.A / w.grp : w.A};
  if ((rc = window_weights(c, np, &w, "/hwio", sh, w.A, b, ins, &nin))) return rc;
  int ci;
  if ((rc = emit_window(c, np, dw ? GG_OP_DEPTHWISE : GG_OP_CONV2D, ins, nin, w.nd, &w.a, out,
                        &ci)))
    return rc;
  if (w.nd == 2) c->conv_of[out] = ci;
  return 0;
}

static int h_conv(octx *c, const onode *np, const opdef *d, int *outs) {
  if (conv_is_3d(c, np)) return conv_nd(c, np, d, outs);
  return conv_build(c, np, -1, -1, in_t(c, np, 2), outs[0]);
}

static int h_conv_transpose(octx *c, const onode *np, const opdef *d, int *outs) {
  win_in w;
  int rc, ins[3], nin;
  if (conv_is_3d(c, np)) return conv_nd(c, np, d, outs);
  if ((rc = window_inputs(c, np, "input", -1, -1, &w))) return rc;
  gg_attrs *a = &w.a;
  char ap[32];
  attr_s(np, "auto_pad", "NOTSET", ap, sizeof ap);
  int64_t os[4];
  int nos = attr_ints(np, "output_shape", os, 4);
  if (w.nd == 1 && nos == 1) os[1] = os[0], os[0] = 1, nos = 2;
  if (w.nd == 1 && nos == 3) os[1] = os[2], os[0] = 1, nos = 2;
  if ((rc = window_attrs(c, np, a, w.KH, w.KW, w.nd))) return rc;
  if (nos >= 0 || a->padding == GG_PAD_SAME || a->pads[0] == -1) {
    /* the pads follow from the output size (output_shape, or input *
     * stride for SAME_*): resolved at session time (exec.c), marked -2 */
    if (nos >= 0 && nos != 2 && nos != 4)
      return NODE_ERR(GG_EUNSUPPORTED, "attribute output_shape has %d values", nos);
    if (nos == 4) os[0] = os[2], os[1] = os[3];
    if (nos >= 0 && (os[0] < 1 || os[1] < 1 || os[0] > 65536 || os[1] > 65536))
      return NODE_ERR(GG_EUNSUPPORTED, "attribute output_shape out of range");
    a->out_hw[0] = nos >= 0 ? os[0] : -1, a->out_hw[1] = nos >= 0 ? os[1] : -1;
    a->padding = GG_PAD_EXPLICIT;
    a->pads[0] = -2, a->pads[1] = !strcmp(ap, "SAME_UPPER"), a->pads[2] = a->pads[3] = 0;
  } else if (a->padding != GG_PAD_EXPLICIT)
    return NODE_ERR(GG_EUNSUPPORTED, "attribute auto_pad=%s not supported", ap);
  int64_t v[4];
  int n = attr_ints(np, "output_padding", v, 4);
  if (w.nd == 1 && n == 1) v[1] = v[0], v[0] = 0, n = 2;
  if (n >= 0) {
    if (n != 2 || v[0] < 0 || v[1] < 0 || v[0] > 4096 || v[1] > 4096)
      return NODE_ERR(GG_EUNSUPPORTED, "attribute output_padding not supported");
    a->output_padding[0] = (int)v[0], a->output_padding[1] = (int)v[1];
  }
  /* [CI, CO/g, KH, KW] -> HWOI [KH, KW, CO/g, CI] */
  int64_t sh[4] = {w.KH, w.KW, w.B, w.A};
  if ((rc = window_weights(c, np, &w, "/hwoi", sh, w.B * w.grp, in_t(c, np, 2), ins, &nin))) return rc;
  return emit_window(c, np, GG_OP_CONV_TRANSPOSE, ins, nin, w.nd, &w.a, outs[0], NULL);
}

static int h_pool(octx *c, const onode *np, const opdef *d, int *outs) {
  int x, rc;
  if ((rc = X(c, np, 0, &x))) return rc;
  int64_t kv[8];
  int nk = attr_ints(np, "kernel_shape", kv, 8);
  if ((np->n_output > 1 && outs[1] >= 0) || c->rank[x] == 5 || nk == 3)
    return pool_nd(c, np, d, x, outs,
                   nk >= 1 && nk <= 3 ? nk : c->rank[x] >= 3 ? c->rank[x] - 2 : 2);
  if (c->rank[x] >= 0 && c->rank[x] != 4 && c->rank[x] != 3)
    return NODE_ERR(GG_EUNSUPPORTED,
                    "a %d-D input: only 1-D, 2-D and 3-D pooling (a 3-D, 4-D or 5-D input) is "
                    "supported",
                    c->rank[x]);
  int nd = c->rank[x] == 3 ? 1 : 2; /* unknown: 2-D (the shape rule checks at session time) */
  gg_attrs a;
  memset(&a, 0, sizeof a);
  a.strides[0] = a.strides[1] = a.dilations[0] = a.dilations[1] = 1;
  if ((rc = window_attrs(c, np, &a, -1, -1, nd))) return rc;
  /* MaxPool dilations run on the naive kernel (exec.c naive_only) */
  if ((a.dilations[0] != 1 || a.dilations[1] != 1) &&
      (d->op != GG_OP_MAXPOOL || attr_i(np, "ceil_mode", 0)))
    return NODE_ERR(GG_EUNSUPPORTED, "attribute dilations not supported%s",
                    d->op == GG_OP_MAXPOOL ? " with ceil_mode=1" : "");
  if (attr_i(np, "storage_order", 0))
    return NODE_ERR(GG_EUNSUPPORTED, "attribute storage_order=1 not supported");
  a.ceil_mode = attr_i(np, "ceil_mode", 0) == 1 ? 1 : attr_i(np, "ceil_mode", 0) == 0 ? 0 : 2;
  if (a.ceil_mode != 0 && a.ceil_mode != 1)
    return NODE_ERR(GG_EUNSUPPORTED, "attribute ceil_mode=%d not supported", a.ceil_mode);
  a.count_include_pad = attr_i(np, "count_include_pad", 0) != 0;
  if (d->op == GG_OP_AVGPOOL && a.padding == GG_PAD_SAME && !a.count_include_pad) {
    /* IR AVGPOOL SAME: the window's in-image part, as ONNX counts it */
  }
  /* An integer input (ONNX allows int8 and uint8 for MaxPool; held as int32)
   * is pooled in float32, which holds those values exactly, and cast back. */
  int is_int = c->dt[x] == GG_DT_I32;
  if (is_int && d->op != GG_OP_MAXPOOL)
    return NODE_ERR(GG_EUNSUPPORTED, "an integer input is not supported");
  int ins[1] = {x}, res = outs[0];
  if (is_int) {
    gg_attrs ca;
    memset(&ca, 0, sizeof ca);
    ca.to = GG_DT_F32;
    char cn[1200];
    snprintf(cn, sizeof cn, "%.1000s/to_f32", node_label(np));
    if ((ins[0] = tmp_tensor(c, node_label(np), "/in_f32", &rc)) < 0 ||
        (res = tmp_tensor(c, node_label(np), "/out_f32", &rc)) < 0)
      return rc;
    c->rank[ins[0]] = c->rank[x], c->dt[ins[0]] = GG_DT_F32;
    if ((rc = emit(c, GG_OP_CAST, "Cast", cn, &x, 1, &ins[0], 1, &ca, NULL))) return rc;
  }
  if ((rc = emit_window(c, np, d->op, ins, 1, nd, &a, res, NULL))) return rc;
  if (!is_int) return 0;
  gg_attrs ca;
  memset(&ca, 0, sizeof ca);
  ca.to = GG_DT_I32;
  char cn[1200];
  snprintf(cn, sizeof cn, "%.1000s/to_i32", node_label(np));
  c->rank[outs[0]] = c->rank[x];
  return emit(c, GG_OP_CAST, "Cast", cn, &res, 1, outs, 1, &ca, NULL);
}

/* GlobalAveragePool / GlobalMaxPool: a reduction over the spatial axes. */
static int h_global_pool(octx *c, const onode *np, const opdef *d, int *outs) {
  int x, rc, ax;
  if ((rc = X(c, np, 0, &x))) return rc;
  int r = c->rank[x] < 0 ? 4 : c->rank[x];
  if (r < 3) return NODE_ERR(GG_EPARSE, "needs an input of rank >= 3");
  int32_t axes[GG_MAX_DIMS];
  for (int i = 2; i < r; i++)
    axes[i - 2] = i;
  char an[1200];
  snprintf(an, sizeof an, "%.1000s/axes", node_label(np));
  if ((rc = const_i32v(c, an, axes, r - 2, &ax))) return rc;
  gg_attrs a;
  memset(&a, 0, sizeof a);
  a.keep_dims = 1;
  int ins[2] = {x, ax};
  c->rank[outs[0]] = c->rank[x];
  return emit(c, d->op, d->name, node_label(np), ins, 2, outs, 1, &a, NULL);
}

static int reshape_const(octx *c, const onode *np, int x, const int32_t *sh, int n, int out);

/* A new temporary `suffix` of node np = op(a, b) (b < 0: op(a)), of rank r. */
static int bn_step(octx *c, const onode *np, gg_op op, int a, int b, const gg_attrs *at,
                   const char *suffix, int r, int *out) {
  int rc = 0;
  if (*out < 0 && (*out = tmp_tensor(c, node_label(np), suffix, &rc)) < 0) return rc;
  int ins[2] = {a, b};
  c->rank[*out] = r;
  return emit(c, op, "BatchNormalization", node_label(np), ins, b < 0 ? 1 : 2, out, 1, at, NULL);
}

/* BatchNormalization with training_mode=1 (opset 14+): the batch's own
 * statistics over every axis but 1, m = mean(x), v = mean((x - m)^2)
 * (biased, as ONNX's reference), y = (x - m) / sqrt(v + epsilon) * scale +
 * B, and the optional running_mean / running_var outputs input_mean *
 * momentum + m * (1 - momentum) (the same for var). scale, B and the input
 * statistics may be computed tensors ([C], reshaped to [C, 1, ...]). */
static int bn_training(octx *c, const onode *np, int x, int *outs) {
  int rc, r = c->rank[x], p[4];
  if (r < 2)
    return NODE_ERR(GG_EUNSUPPORTED, "training_mode=1 needs the input's rank at import (got %d)",
                    r);
  if (np->n_output > 3) return NODE_ERR(GG_EPARSE, "has %zu outputs (at most 3)", np->n_output);
  for (int k = 0; k < 4; k++)
    if ((rc = X(c, np, (size_t)k + 1, &p[k]))) return rc;
  float eps = attr_f(np, "epsilon", 1e-5f), mom = attr_f(np, "momentum", 0.9f);
  int32_t axes[GG_MAX_DIMS], col[GG_MAX_DIMS], flat = -1;
  int na = 0;
  for (int i = 0; i < r; i++)
    if (i != 1) axes[na++] = i;
  col[0] = -1;
  for (int i = 1; i < r - 1; i++)
    col[i] = 1;
  int at, ep, mt, om;
  char nm[1200];
  snprintf(nm, sizeof nm, "%.1000s/stat_axes", node_label(np));
  if ((rc = const_i32v(c, nm, axes, na, &at))) return rc;
  snprintf(nm, sizeof nm, "%.1000s/epsilon", node_label(np));
  if ((rc = const_f32s(c, nm, eps, &ep))) return rc;
  gg_attrs ka;
  memset(&ka, 0, sizeof ka);
  ka.keep_dims = 1;
  int m = -1, dv = -1, sq = -1, v = -1, ve = -1, sd = -1, nx = -1, sc = -1, bs = -1, y1 = -1;
  if ((rc = bn_step(c, np, GG_OP_MEAN, x, at, &ka, "/mean", r, &m)) ||
      (rc = bn_step(c, np, GG_OP_SUB, x, m, NULL, "/centered", r, &dv)) ||
      (rc = bn_step(c, np, GG_OP_MUL, dv, dv, NULL, "/squared", r, &sq)) ||
      (rc = bn_step(c, np, GG_OP_MEAN, sq, at, &ka, "/var", r, &v)) ||
      (rc = bn_step(c, np, GG_OP_ADD, v, ep, NULL, "/var_eps", r, &ve)) ||
      (rc = bn_step(c, np, GG_OP_SQRT, ve, -1, NULL, "/std", r, &sd)) ||
      (rc = bn_step(c, np, GG_OP_DIV, dv, sd, NULL, "/normalized", r, &nx)))
    return rc;
  /* scale and B as [C, 1, ...] (rank r - 1): they broadcast from axis 1 */
  if ((sc = tmp_tensor(c, node_label(np), "/scale_col", &rc)) < 0 ||
      (rc = reshape_const(c, np, p[0], col, r - 1, sc)) ||
      (bs = tmp_tensor(c, node_label(np), "/bias_col", &rc)) < 0 ||
      (rc = reshape_const(c, np, p[1], col, r - 1, bs)) ||
      (rc = bn_step(c, np, GG_OP_MUL, nx, sc, NULL, "/scaled", r, &y1)) ||
      (rc = bn_step(c, np, GG_OP_ADD, y1, bs, NULL, "", r, &outs[0])))
    return rc;
  if (np->n_output < 2) return 0;
  snprintf(nm, sizeof nm, "%.1000s/momentum", node_label(np));
  if ((rc = const_f32s(c, nm, mom, &mt))) return rc;
  snprintf(nm, sizeof nm, "%.1000s/one_minus_momentum", node_label(np));
  if ((rc = const_f32s(c, nm, 1.0f - mom, &om))) return rc;
  for (int k = 1; k < (int)np->n_output && k < 3; k++) {
    if (outs[k] < 0) continue;
    /* running = input_stat * momentum + batch_stat[C] * (1 - momentum) */
    int st = k == 1 ? m : v, sf = -1, a1 = -1, a2 = -1;
    if ((sf = tmp_tensor(c, node_label(np), k == 1 ? "/mean_c" : "/var_c", &rc)) < 0 ||
        (rc = reshape_const(c, np, st, &flat, 1, sf)) ||
        (rc = bn_step(c, np, GG_OP_MUL, p[k + 1], mt, NULL, k == 1 ? "/old_mean" : "/old_var", 1,
                      &a1)) ||
        (rc = bn_step(c, np, GG_OP_MUL, sf, om, NULL, k == 1 ? "/new_mean" : "/new_var", 1, &a2)) ||
        (rc = bn_step(c, np, GG_OP_ADD, a1, a2, NULL, "", 1, &outs[k])))
      return rc;
  }
  return 0;
}

static int h_batchnorm(octx *c, const onode *np, const opdef *d, int *outs) {
  int x, rc, p[4];
  (void)d;
  if ((rc = X(c, np, 0, &x))) return rc;
  if (attr_i(np, "training_mode", 0) == 1 && c->opset >= 14) return bn_training(c, np, x, outs);
  if (np->n_output > 1)
    for (size_t k = 1; k < np->n_output; k++)
      if (np->output[k] && *np->output[k])
        return NODE_ERR(GG_EUNSUPPORTED, "training outputs are not supported");
  if (attr_i(np, "training_mode", 0))
    return NODE_ERR(GG_EUNSUPPORTED, "attribute training_mode=1 not supported");
  if (attr_i(np, "spatial", 1) != 1)
    return NODE_ERR(GG_EUNSUPPORTED, "attribute spatial=0 not supported");
  if (attr_i(np, "is_test", 1) != 1)
    return NODE_ERR(GG_EUNSUPPORTED, "attribute is_test=0 not supported");
  float eps = attr_f(np, "epsilon", 1e-5f);
  int64_t C = -1;
  for (int k = 0; k < 4; k++) {
    if ((rc = X(c, np, (size_t)k + 1, &p[k]))) return rc;
    const gg_tensor *t = cst(c, p[k]);
    if (!t || t->v.dtype != GG_DT_F32 || (C >= 0 && t->v.nelem != C))
      return NODE_ERR(GG_EUNSUPPORTED,
                      "scale, B, mean and var must be constant float vectors of one length");
    C = t->v.nelem;
  }
  const float *sc = cst(c, p[0])->v.data, *bb = cst(c, p[1])->v.data, *mu = cst(c, p[2])->v.data,
              *var = cst(c, p[3])->v.data;
  float *s = gg__const_alloc((size_t)C * 4), *o = gg__const_alloc((size_t)C * 4);
  if (!s || !o) {
    gg__const_free(s), gg__const_free(o);
    return GG_ENOMEM;
  }
  for (int64_t i = 0; i < C; i++) {
    s[i] = sc[i] / sqrtf(var[i] + eps);
    o[i] = bb[i] - mu[i] * s[i];
  }
  /* Right after a conv nothing else reads: scale its weights, shift its bias. */
  int ci = c->conv_of[x], uses = 0;
  for (size_t i = 0; ci >= 0 && i < c->gp->n_node; i++)
    for (size_t k = 0; k < c->gp->node[i]->n_input; k++)
      uses += c->gp->node[i]->input[k] && !strcmp(c->gp->node[i]->input[k], np->input[0]);
  for (size_t i = 0; ci >= 0 && i < c->gp->n_output; i++)
    uses += c->gp->output[i]->name && !strcmp(c->gp->output[i]->name, np->input[0]);
  if (ci >= 0 && uses == 1) {
    gg_node *cv = &c->g->nodes[ci];
    gg_tensor *wt = &c->g->tensors[cv->in[1]];
    int64_t co = cv->op == GG_OP_CONV2D ? wt->v.shape[3] : wt->v.shape[2] * wt->v.shape[3];
    if (co == C) {
      float *w = wt->v.data;
      for (int64_t k = 0; k < wt->v.nelem; k++)
        w[k] *= s[k % C];
      float *nb = o; /* new bias = old bias * s + o */
      if (cv->a.has_bias) {
        const float *ob = c->g->tensors[cv->in[2]].v.data;
        for (int64_t i = 0; i < C; i++)
          nb[i] += ob[i] * s[i];
      }
      gg__const_free(s);
      char bn[1200];
      snprintf(bn, sizeof bn, "%.1000s/folded_bias", node_label(np));
      int bt;
      int64_t sh[1] = {C};
      if ((rc = add_const(c, bn, GG_DT_F32, sh, 1, nb, &bt))) return rc;
      cv = &c->g->nodes[ci]; /* nodes may have moved */
      if (cv->a.has_bias)
        cv->in[2] = bt;
      else {
        int *in = realloc(cv->in, 4 * sizeof *in);
        if (!in) return GG_ENOMEM;
        cv->in = in;
        cv->in[cv->n_in++] = bt;
        cv->a.has_bias = 1;
      }
      /* the BN's output is the conv's (transposed) output */
      int tr = c->g->tensors[x].producer;
      c->g->nodes[tr].out[0] = outs[0];
      c->g->tensors[outs[0]].producer = tr;
      c->g->tensors[x].producer = -1;
      c->conv_of[outs[0]] = ci;
      c->rank[outs[0]] = 4;
      return 0;
    }
  }
  /* elsewhere: y = x * s + o with [C, 1, ...] constants */
  int r = c->rank[x];
  if (r < 2) {
    gg__const_free(s), gg__const_free(o);
    return NODE_ERR(GG_EUNSUPPORTED, "the input's rank must be known at import (got %d)", r);
  }
  int64_t sh[GG_MAX_DIMS];
  sh[0] = C;
  for (int i = 1; i < r - 1; i++)
    sh[i] = 1;
  char nm[1200];
  int st, ot, t1;
  snprintf(nm, sizeof nm, "%.1000s/scale", node_label(np));
  if ((rc = add_const(c, nm, GG_DT_F32, sh, r - 1, s, &st))) {
    gg__const_free(o);
    return rc;
  }
  snprintf(nm, sizeof nm, "%.1000s/shift", node_label(np));
  if ((rc = add_const(c, nm, GG_DT_F32, sh, r - 1, o, &ot))) return rc;
  if ((t1 = tmp_tensor(c, node_label(np), "/scaled", &rc)) < 0) return rc;
  int i1[2] = {x, st}, i2[2] = {t1, ot};
  if ((rc = emit(c, GG_OP_MUL, "BatchNormalization", node_label(np), i1, 2, &t1, 1, NULL, NULL)))
    return rc;
  c->rank[t1] = r, c->rank[outs[0]] = r;
  return emit(c, GG_OP_ADD, "BatchNormalization", node_label(np), i2, 2, outs, 1, NULL, NULL);
}

static int h_gemm(octx *c, const onode *np, const opdef *d, int *outs) {
  int A, B, rc;
  if ((rc = X(c, np, 0, &A)) || (rc = X(c, np, 1, &B))) return rc;
  float alpha = attr_f(np, "alpha", 1.0f), beta = attr_f(np, "beta", 1.0f);
  gg_attrs a;
  memset(&a, 0, sizeof a);
  a.transpose_a = attr_i(np, "transA", 0) != 0;
  a.transpose_b = attr_i(np, "transB", 0) != 0;
  if (c->opset < 7 && attr(np, "broadcast"))
    return NODE_ERR(GG_EUNSUPPORTED, "attribute broadcast");
  const gg_tensor *bt = cst(c, B);
  if (alpha != 1.0f) {
    if (!bt || bt->v.dtype != GG_DT_F32)
      return NODE_ERR(GG_EUNSUPPORTED, "alpha=%g needs a constant B", (double)alpha);
    float *nb = gg__const_alloc((size_t)bt->v.nelem * 4);
    if (!nb) return GG_ENOMEM;
    for (int64_t i = 0; i < bt->v.nelem; i++)
      nb[i] = alpha * ((float *)bt->v.data)[i];
    char nm[1200];
    snprintf(nm, sizeof nm, "%.1000s/alpha_B", node_label(np));
    if ((rc = add_const(c, nm, GG_DT_F32, bt->v.shape, bt->v.ndim, nb, &B))) return rc;
    bt = cst(c, B);
  }
  int64_t N = -1;
  if (bt && bt->v.ndim == 2) N = a.transpose_b ? bt->v.shape[0] : bt->v.shape[1];
  int ins[3] = {A, B, -1}, nin = 2;
  int C = in_t(c, np, 2), extra = -1;
  c->rank[outs[0]] = 2;
  if (C >= 0 && beta != 0.0f) {
    const gg_tensor *ct = cst(c, C);
    if (!ct || ct->v.dtype != GG_DT_F32)
      return NODE_ERR(GG_EUNSUPPORTED, "input C must be a constant float tensor");
    int vec =
        N > 0 && ct->v.nelem == N && (ct->v.ndim == 1 || (ct->v.ndim == 2 && ct->v.shape[0] == 1));
    float *nc = gg__const_alloc((size_t)ct->v.nelem * 4);
    if (!nc) return GG_ENOMEM;
    for (int64_t i = 0; i < ct->v.nelem; i++)
      nc[i] = beta * ((float *)ct->v.data)[i];
    char nm[1200];
    snprintf(nm, sizeof nm, "%.1000s/beta_C", node_label(np));
    int64_t sh1[1] = {ct->v.nelem};
    if ((rc = add_const(c, nm, GG_DT_F32, vec ? sh1 : ct->v.shape, vec ? 1 : ct->v.ndim, nc, &C)))
      return rc;
    if (vec)
      ins[nin++] = C, a.has_bias = 1;
    else
      extra = C;
  }
  int y = outs[0];
  if (extra >= 0 && (y = tmp_tensor(c, node_label(np), "/ab", &rc)) < 0) return rc;
  if ((rc = emit(c, GG_OP_MATMUL, d->name, node_label(np), ins, nin, &y, 1, &a, NULL))) return rc;
  c->rank[y] = 2;
  if (extra < 0) return 0;
  int i2[2] = {y, extra};
  return emit(c, GG_OP_ADD, d->name, node_label(np), i2, 2, outs, 1, NULL, NULL);
}

/* A MatMul of a and b into out (the 2-D IR op when both are 2-D, else the
 * batched one), named after the node being mapped (MatMul's, also
 * MatMulInteger's and QLinearMatMul's). */
static int matmul_build(octx *c, const onode *np, int A, int B, int out) {
  int ra = c->rank[A], rb = c->rank[B], ins[2] = {A, B};
  c->rank[out] = ra < 0 || rb < 0     ? -1
                 : ra == 1 && rb == 1 ? 0
                 : ra == 1            ? rb - 1
                 : rb == 1            ? ra - 1
                 : ra > rb            ? ra
                                      : rb;
  gg_op op = ra == 2 && rb == 2 ? GG_OP_MATMUL : GG_OP_BATCH_MATMUL;
  return emit(c, op, c->op_name, node_label(np), ins, 2, &out, 1, NULL, NULL);
}

static int h_matmul(octx *c, const onode *np, const opdef *d, int *outs) {
  int A, B, rc;
  (void)d;
  if ((rc = X(c, np, 0, &A)) || (rc = X(c, np, 1, &B))) return rc;
  return matmul_build(c, np, A, B, outs[0]);
}

static int h_concat(octx *c, const onode *np, const opdef *d, int *outs) {
  int n = (int)np->n_input, rc, ax;
  if (n < 1) return NODE_ERR(GG_EPARSE, "needs inputs");
  const oattr *at = attr(np, "axis");
  if (!at || !at->has_i) return NODE_ERR(GG_EPARSE, "attribute axis is required");
  int *ins = calloc((size_t)n + 1, sizeof *ins);
  if (!ins) return GG_ENOMEM;
  for (int k = 0; k < n; k++)
    if ((rc = X(c, np, (size_t)k, &ins[k]))) {
      free(ins);
      return rc;
    }
  if (!axis_ok(at->i)) {
    free(ins);
    return NODE_ERR(GG_ERANGE, "axis %lld out of range", (long long)at->i);
  }
  int32_t axv = (int32_t)at->i;
  char an[1200];
  snprintf(an, sizeof an, "%.1000s/axis", node_label(np));
  if ((rc = const_i32v(c, an, &axv, 1, &ax))) {
    free(ins);
    return rc;
  }
  ins[n] = ax;
  c->rank[outs[0]] = c->rank[ins[0]];
  rc = emit(c, GG_OP_CONCAT, d->name, node_label(np), ins, n + 1, outs, 1, NULL, NULL);
  free(ins);
  return rc;
}

/* SplitV of x into outs[0..no) (absent outputs get unused tensors) by the
 * sizes tensor sz along axis. */
static int emit_splitv(octx *c, const onode *np, const opdef *d, int x, int sz, int64_t axis,
                       int *outs, int no) {
  int rc, ax;
  AXIS_CHECK(axis);
  int32_t axv = (int32_t)axis;
  char nm[1200];
  snprintf(nm, sizeof nm, "%.1000s/axis", node_label(np));
  if ((rc = const_i32v(c, nm, &axv, 1, &ax))) return rc;
  int ins[3] = {x, sz, ax};
  for (int k = 0; k < no; k++) {
    if (outs[k] < 0 && (outs[k] = tmp_tensor(c, node_label(np), "/unused", &rc)) < 0) return rc;
    c->rank[outs[k]] = c->rank[x];
  }
  return emit(c, GG_OP_SPLITV, d->name, node_label(np), ins, 3, outs, no, NULL, NULL);
}

static int h_split(octx *c, const onode *np, const opdef *d, int *outs) {
  int x, rc, sz;
  if ((rc = X(c, np, 0, &x))) return rc;
  int no = (int)np->n_output;
  int64_t sp[64];
  int ns = attr_ints(np, "split", sp, 64);
  if (ns == -2) return NODE_ERR(GG_EUNSUPPORTED, "more than 64 outputs");
  if (ns < 0 && c->opset >= 13) {
    ns = const_ints_in(c, np, 1, sp, 64, &rc);
    if (rc) return rc;
  }
  int64_t nout_attr = attr_i(np, "num_outputs", -1);
  if (ns < 0 && no > 1) {
    /* equal parts: sizes ceil(d / n) for all but the last, which takes the
     * rest; d = Shape(x)[axis], known at session time */
    if (nout_attr >= 0 && nout_attr != no)
      return NODE_ERR(GG_EPARSE, "num_outputs=%lld for %d outputs", (long long)nout_attr, no);
    if (no > 64) return NODE_ERR(GG_EUNSUPPORTED, "more than 64 outputs");
    int64_t axis = attr_i(np, "axis", 0);
    int dim, q, t2, cst_n, cst_n1, m1, axc;
    if ((dim = tmp_tensor(c, node_label(np), "/dim", &rc)) < 0) return rc;
    gg_attrs sa;
    memset(&sa, 0, sizeof sa);
    sa.n_slice = 1, sa.slice_starts[0] = axis, sa.slice_ends[0] = axis == -1 ? INT64_MAX : axis + 1;
    if ((rc = emit(c, GG_OP_SHAPE, "Shape", node_label(np), &x, 1, &dim, 1, &sa, NULL))) return rc;
    int32_t vn = no, vn1 = no - 1, vm1 = -1, zero = 0;
    char nm[1200];
    snprintf(nm, sizeof nm, "%.1000s/n", node_label(np));
    if ((rc = const_i32v(c, nm, &vn, 1, &cst_n))) return rc;
    snprintf(nm, sizeof nm, "%.1000s/n_minus_1", node_label(np));
    if ((rc = const_i32v(c, nm, &vn1, 1, &cst_n1))) return rc;
    snprintf(nm, sizeof nm, "%.1000s/minus1", node_label(np));
    if ((rc = const_i32v(c, nm, &vm1, 1, &m1))) return rc;
    snprintf(nm, sizeof nm, "%.1000s/concat_axis", node_label(np));
    if ((rc = const_i32v(c, nm, &zero, 1, &axc))) return rc;
    if ((t2 = tmp_tensor(c, node_label(np), "/dim_up", &rc)) < 0) return rc;
    int i2[2] = {dim, cst_n1};
    if ((rc = emit(c, GG_OP_ADD, "Split", node_label(np), i2, 2, &t2, 1, NULL, NULL))) return rc;
    if ((q = tmp_tensor(c, node_label(np), "/part", &rc)) < 0) return rc;
    i2[0] = t2, i2[1] = cst_n;
    if ((rc = emit(c, GG_OP_DIV, "Split", node_label(np), i2, 2, &q, 1, NULL, NULL))) return rc;
    int cin[66];
    for (int k = 0; k < no - 1; k++)
      cin[k] = q;
    cin[no - 1] = m1, cin[no] = axc;
    if ((sz = tmp_tensor(c, node_label(np), "/sizes", &rc)) < 0) return rc;
    if ((rc = emit(c, GG_OP_CONCAT, "Split", node_label(np), cin, no + 1, &sz, 1, NULL, NULL)))
      return rc;
    return emit_splitv(c, np, d, x, sz, axis, outs, no);
  }
  if (ns < 0) sp[0] = -1, ns = 1;
  if (ns != no) return NODE_ERR(GG_EPARSE, "split has %d sizes for %d outputs", ns, no);
  int32_t s32[64];
  for (int i = 0; i < ns; i++) {
    if (sp[i] < 0 || sp[i] > INT32_MAX) {
      if (!(ns == 1 && sp[i] == -1))
        return NODE_ERR(GG_EPARSE, "bad split size %lld", (long long)sp[i]);
    }
    s32[i] = (int32_t)sp[i];
  }
  char an[1200];
  snprintf(an, sizeof an, "%.1000s/sizes", node_label(np));
  if ((rc = const_i32v(c, an, s32, ns, &sz))) return rc;
  return emit_splitv(c, np, d, x, sz, attr_i(np, "axis", 0), outs, no);
}

static int h_reshape(octx *c, const onode *np, const opdef *d, int *outs) {
  int x, s, rc;
  if ((rc = X(c, np, 0, &x))) return rc;
  gg_attrs a;
  memset(&a, 0, sizeof a);
  if (c->opset < 5 || attr(np, "shape"))
    return NODE_ERR(GG_EUNSUPPORTED, "the shape attribute (opset < 5) is not supported");
  if ((rc = X(c, np, 1, &s))) return rc;
  a.axis = attr_i(np, "allowzero", 0) ? 0 : 1; /* 1: a 0 copies the input dim (see exec.c) */
  const gg_tensor *st = cst(c, s), *xc = cst(c, x);
  if (a.axis && st && xc && st->v.dtype == GG_DT_I32 && st->v.nelem <= GG_MAX_DIMS) {
    /* a constant input: its dims are known now (import-time folding
     * does not apply the copy-zero rule) */
    int32_t sh[GG_MAX_DIMS];
    int zeros = 0;
    for (int64_t i = 0; i < st->v.nelem; i++) {
      sh[i] = ((int32_t *)st->v.data)[i];
      if (sh[i]) continue;
      if (i >= xc->v.ndim)
        return NODE_ERR(GG_EPARSE, "shape value 0 at index %lld copies a dim the input lacks",
                        (long long)i);
      sh[i] = (int32_t)xc->v.shape[i], zeros++;
    }
    if (zeros) {
      char nm[1200];
      snprintf(nm, sizeof nm, "%.1000s/resolved_shape", node_label(np));
      if ((rc = const_i32v(c, nm, sh, (int)st->v.nelem, &s))) return rc;
      a.axis = 0;
      st = cst(c, s);
    }
  }
  c->rank[outs[0]] = st ? (int)st->v.nelem : -1;
  int ins[2] = {x, s};
  if (xc && st && xc->v.nelem <= FOLD_NOW_MAX)
    /* a constant reshaped (a bias made [1, C, 1, 1]): constant now, so that
     * the layout pass can permute it (it runs before the graph's folding) */
    return fold_now(c, np, GG_OP_RESHAPE, ins, 2, &a, outs);
  return emit(c, GG_OP_RESHAPE, d->name, node_label(np), ins, 2, outs, 1, &a, NULL);
}

/* Reshape(x, shape) with a new const shape (ONNX copy-zero semantics). */
static int reshape_const(octx *c, const onode *np, int x, const int32_t *sh, int n, int out) {
  int s, rc;
  char nm[1200];
  snprintf(nm, sizeof nm, "%.1000s/shape", node_label(np));
  if ((rc = const_i32v(c, nm, sh, n, &s))) return rc;
  gg_attrs a;
  memset(&a, 0, sizeof a);
  a.axis = 1;
  if (cst(c, x)) {
    const gg_tensor *xc = cst(c, x);
    int32_t *d = cst(c, s)->v.data;
    for (int i = 0; i < n; i++)
      if (!d[i]) {
        if (i >= xc->v.ndim) return NODE_ERR(GG_EPARSE, "input of rank %d too small", xc->v.ndim);
        d[i] = (int32_t)xc->v.shape[i];
      }
    a.axis = 0;
  }
  int ins[2] = {x, s};
  c->rank[out] = n;
  return emit(c, GG_OP_RESHAPE, c->op_name, node_label(np), ins, 2, &out, 1, &a, NULL);
}

static int h_flatten(octx *c, const onode *np, const opdef *d, int *outs) {
  int x, rc;
  (void)d;
  if ((rc = X(c, np, 0, &x))) return rc;
  int64_t ax = attr_i(np, "axis", 1);
  int r = c->rank[x];
  if (ax < 0) {
    if (r < 0)
      return NODE_ERR(GG_EUNSUPPORTED, "attribute axis=%lld needs the input's rank", (long long)ax);
    ax += r;
  }
  if (ax == 0) {
    int32_t sh[2] = {1, -1};
    return reshape_const(c, np, x, sh, 2, outs[0]);
  }
  if (ax > GG_MAX_DIMS || (r >= 0 && ax > r))
    return NODE_ERR(GG_EPARSE, "attribute axis=%lld out of range for rank %d", (long long)ax, r);
  /* [prod(d[:ax]), prod(d[ax:])]: the shape rule computes it from the input's
   * shape (a.flatten), exact for a zero-size dim where a -1 could not be
   * inferred; the target input is not read */
  int32_t sh[2] = {0, -1};
  int s;
  char nm[1200];
  snprintf(nm, sizeof nm, "%.1000s/shape", node_label(np));
  if ((rc = const_i32v(c, nm, sh, 2, &s))) return rc;
  gg_attrs a;
  memset(&a, 0, sizeof a);
  a.flatten = (int)ax;
  int ins[2] = {x, s};
  c->rank[outs[0]] = 2;
  return emit(c, GG_OP_RESHAPE, "Flatten", node_label(np), ins, 2, outs, 1, &a, NULL);
}

static int h_squeeze(octx *c, const onode *np, const opdef *d, int *outs) {
  int x, rc;
  if ((rc = X(c, np, 0, &x))) return rc;
  int64_t ax[GG_MAX_DIMS];
  int n = c->opset >= 13 ? const_ints_in(c, np, 1, ax, GG_MAX_DIMS, &rc)
                         : attr_ints(np, "axes", ax, GG_MAX_DIMS);
  if (rc) return rc;
  if (n == -2) return NODE_ERR(GG_EUNSUPPORTED, "too many axes");
  gg_attrs a;
  memset(&a, 0, sizeof a);
  a.n_axes = n < 0 ? 0 : n;
  for (int i = 0; i < a.n_axes; i++) {
    AXIS_CHECK(ax[i]);
    a.axes[i] = (int)ax[i];
  }
  c->rank[outs[0]] = c->rank[x] >= 0 && n > 0 ? c->rank[x] - n : -1;
  return emit(c, GG_OP_SQUEEZE, d->name, node_label(np), &x, 1, outs, 1, &a, NULL);
}

/* Unsqueeze: Reshape to Shape(x) with 1s inserted (folded at session time). */
static int h_unsqueeze(octx *c, const onode *np, const opdef *d, int *outs) {
  int x, rc;
  (void)d;
  if ((rc = X(c, np, 0, &x))) return rc;
  int64_t ax[GG_MAX_DIMS];
  int n = c->opset >= 13 ? const_ints_in(c, np, 1, ax, GG_MAX_DIMS, &rc)
                         : attr_ints(np, "axes", ax, GG_MAX_DIMS);
  if (rc) return rc;
  if (n <= 0)
    return NODE_ERR(GG_EUNSUPPORTED, "axes must be given (a constant of 1 to %d values)",
                    GG_MAX_DIMS);
  int r = c->rank[x];
  int R = r >= 0 ? r + n : -1;
  int ins_at[GG_MAX_DIMS + 1] = {0};
  for (int i = 0; i < n; i++) {
    if (ax[i] < 0) {
      if (R < 0)
        return NODE_ERR(GG_EUNSUPPORTED,
                        "negative axes need the input's rank, not known at import");
      ax[i] += R;
    }
    if (ax[i] < 0 || ax[i] > GG_MAX_DIMS - 1 || ins_at[ax[i]])
      return NODE_ERR(GG_EPARSE, "bad axes");
    ins_at[ax[i]] = 1;
  }
  int maxax = 0;
  for (int i = 0; i < n; i++)
    maxax = ax[i] > maxax ? (int)ax[i] : maxax;
  /* Scalar input with rank known: a const shape of 1s. */
  if (r == 0) {
    int32_t sh[GG_MAX_DIMS];
    for (int i = 0; i < n; i++)
      sh[i] = 1;
    return reshape_const(c, np, x, sh, n, outs[0]);
  }
  /* Pieces: Shape(x)[a:b] between inserted 1s. */
  int pieces[2 * GG_MAX_DIMS + 2], np_ = 0, src = 0, one = -1;
  int outpos = 0;
  while (outpos <= maxax) {
    if (ins_at[outpos]) {
      if (one < 0) {
        int32_t v = 1;
        char nm[1200];
        snprintf(nm, sizeof nm, "%.1000s/one", node_label(np));
        if ((rc = const_i32v(c, nm, &v, 1, &one))) return rc;
      }
      pieces[np_++] = one;
      outpos++;
      continue;
    }
    int start = src;
    while (outpos <= maxax && !ins_at[outpos])
      outpos++, src++;
    if ((rc = shape_slice(c, np, x, start, src, "/dims", &pieces[np_++]))) return rc;
  }
  /* the rest of x's dims */
  if ((rc = shape_slice(c, np, x, src, INT32_MAX, "/rest", &pieces[np_++]))) return rc;
  int axc, sh;
  int32_t zero = 0;
  char nm[1200];
  snprintf(nm, sizeof nm, "%.1000s/concat_axis", node_label(np));
  if ((rc = const_i32v(c, nm, &zero, 1, &axc))) return rc;
  pieces[np_++] = axc;
  if ((sh = tmp_tensor(c, node_label(np), "/shape", &rc)) < 0) return rc;
  if ((rc = emit(c, GG_OP_CONCAT, "Concat", node_label(np), pieces, np_, &sh, 1, NULL, NULL)))
    return rc;
  c->rank[sh] = 1;
  gg_attrs a;
  memset(&a, 0, sizeof a);
  int ins[2] = {x, sh};
  c->rank[outs[0]] = R;
  return emit(c, GG_OP_RESHAPE, "Unsqueeze", node_label(np), ins, 2, outs, 1, &a, NULL);
}

static int h_transpose(octx *c, const onode *np, const opdef *d, int *outs) {
  int x, rc, p;
  if ((rc = X(c, np, 0, &x))) return rc;
  int64_t pv[GG_MAX_DIMS];
  int n = attr_ints(np, "perm", pv, GG_MAX_DIMS);
  int32_t perm[GG_MAX_DIMS];
  if (n == -2) return NODE_ERR(GG_EUNSUPPORTED, "perm has more than %d entries", GG_MAX_DIMS);
  if (n < 0) {
    int r = c->rank[x];
    if (r < 0) return NODE_ERR(GG_EUNSUPPORTED, "a Transpose without perm needs the input's rank");
    for (int i = 0; i < r; i++)
      perm[i] = r - 1 - i;
    n = r;
  } else
    for (int i = 0; i < n; i++) {
      if (pv[i] < 0 || pv[i] >= n) return NODE_ERR(GG_EPARSE, "perm is not a permutation");
      perm[i] = (int32_t)pv[i];
    }
  char nm[1200];
  snprintf(nm, sizeof nm, "%.1000s/perm", node_label(np));
  if ((rc = const_i32v(c, nm, perm, n, &p))) return rc;
  int ins[2] = {x, p};
  c->rank[outs[0]] = n;
  return emit(c, GG_OP_TRANSPOSE, d->name, node_label(np), ins, 2, outs, 1, NULL, NULL);
}

static int xfn(const char *name);
static int h_reduce(octx *c, const onode *np, const opdef *d, int *outs) {
  int x, rc, at;
  if ((rc = X(c, np, 0, &x))) return rc;
  int64_t ax[GG_MAX_DIMS];
  int by_input = (d->op == GG_OP_SUM && c->opset >= 13) || c->opset >= 18;
  int n = by_input ? const_ints_in(c, np, 1, ax, GG_MAX_DIMS, &rc)
                   : attr_ints(np, "axes", ax, GG_MAX_DIMS);
  if (rc) return rc;
  if (n == -2) return NODE_ERR(GG_EUNSUPPORTED, "too many axes");
  gg_attrs a;
  memset(&a, 0, sizeof a);
  a.keep_dims = attr_i(np, "keepdims", 1) != 0;
  if (d->op == GG_OP_REDUCE_X) a.fn = xfn(d->name);
  int r = c->rank[x];
  if (n <= 0) {
    if (attr_i(np, "noop_with_empty_axes", 0)) {
      c->rank[outs[0]] = r;
      return emit(c, GG_OP_IDENTITY, d->name, node_label(np), &x, 1, outs, 1, NULL, NULL);
    }
    if (r < 0) {
      if (d->op == GG_OP_SUM || d->op == GG_OP_MEAN)
        return NODE_ERR(GG_EUNSUPPORTED,
                        "reducing all axes needs the input's rank, not known at import");
      n = 0; /* REDUCE_MAX/MIN/L2: empty axes = all */
    } else {
      for (int i = 0; i < r; i++)
        ax[i] = i;
      n = r;
    }
  }
  int32_t a32[GG_MAX_DIMS];
  for (int i = 0; i < n; i++) {
    AXIS_CHECK(ax[i]);
    a32[i] = (int32_t)ax[i];
  }
  char nm[1200];
  snprintf(nm, sizeof nm, "%.1000s/axes", node_label(np));
  if ((rc = const_i32v(c, nm, a32, n, &at))) return rc;
  int ins[2] = {x, at};
  c->rank[outs[0]] = r < 0 ? -1 : a.keep_dims ? r : n ? r - n : (a.keep_dims ? r : 0);
  return emit(c, d->op, d->name, node_label(np), ins, 2, outs, 1, &a, NULL);
}

static int h_pad(octx *c, const onode *np, const opdef *d, int *outs) {
  int x, rc, pt, vt = -1;
  if ((rc = X(c, np, 0, &x))) return rc;
  char mode[32];
  attr_s(np, "mode", "constant", mode, sizeof mode);
  gg_attrs a;
  memset(&a, 0, sizeof a);
  if (!strcmp(mode, "constant"))
    a.pad_mode = GG_PADMODE_CONSTANT;
  else if (!strcmp(mode, "reflect"))
    a.pad_mode = GG_PADMODE_REFLECT;
  else if (!strcmp(mode, "edge"))
    a.pad_mode = GG_PADMODE_EDGE;
  else
    return NODE_ERR(GG_EUNSUPPORTED, "attribute mode=%s not supported", mode);
  int64_t pads[2 * GG_MAX_DIMS];
  int n;
  float value = 0.0f;
  if (c->opset < 11) {
    n = attr_ints(np, "pads", pads, 2 * GG_MAX_DIMS);
    value = attr_f(np, "value", 0.0f);
  } else {
    n = const_ints_in(c, np, 1, pads, 2 * GG_MAX_DIMS, &rc);
    if (rc) return rc;
    if (in_t(c, np, 3) >= 0 && n >= 0 && n % 2 == 0) {
      /* opset 18's axes: the pads (begins, then ends) of those axes only */
      int64_t ax[GG_MAX_DIMS], full[2 * GG_MAX_DIMS] = {0};
      int na = const_ints_in(c, np, 3, ax, GG_MAX_DIMS, &rc), xr = c->rank[x];
      if (rc) return rc;
      if (na < 0 || xr < 0 || na != n / 2)
        return NODE_ERR(GG_EUNSUPPORTED, "the axes input must be a constant of %d values, with "
                                         "the input's rank known at import",
                        n / 2);
      int seen[GG_MAX_DIMS] = {0};
      for (int i = 0; i < na; i++) {
        int64_t a0 = ax[i] < 0 ? ax[i] + xr : ax[i];
        if (a0 < 0 || a0 >= xr || seen[a0]++)
          return NODE_ERR(GG_EPARSE, "axes value %lld out of range or repeated for rank %d",
                          (long long)ax[i], xr);
        full[a0] = pads[i], full[xr + a0] = pads[na + i];
      }
      memcpy(pads, full, sizeof full);
      n = 2 * xr;
    }
    int v = in_t(c, np, 2);
    if (v >= 0) {
      const gg_tensor *t = cst(c, v);
      if (!t || t->v.nelem != 1)
        return NODE_ERR(GG_EUNSUPPORTED, "constant_value must be a constant scalar");
      vt = v;
    }
  }
  if (n < 0 || n % 2)
    return NODE_ERR(GG_EUNSUPPORTED, "pads must be a constant of 2 x rank values");
  int r = n / 2;
  int32_t p32[2 * GG_MAX_DIMS];
  for (int i = 0; i < r; i++) {
    if (pads[i] < 0 || pads[r + i] < 0)
      return NODE_ERR(GG_EUNSUPPORTED, "negative pads not supported");
    if (pads[i] > (1 << 20) || pads[r + i] > (1 << 20))
      return NODE_ERR(GG_EUNSUPPORTED, "pads too large");
    p32[2 * i] = (int32_t)pads[i], p32[2 * i + 1] = (int32_t)pads[r + i];
  }
  char nm[1200];
  snprintf(nm, sizeof nm, "%.1000s/paddings", node_label(np));
  if ((rc = const_i32v(c, nm, p32, 2 * r, &pt))) return rc;
  if (c->opset < 11 && value != 0.0f) {
    snprintf(nm, sizeof nm, "%.1000s/value", node_label(np));
    if ((rc = const_f32s(c, nm, value, &vt))) return rc;
  }
  int ins[3] = {x, pt, vt};
  c->rank[outs[0]] = r;
  return emit(c, GG_OP_PAD, d->name, node_label(np), ins, vt >= 0 ? 3 : 2, outs, 1, &a, NULL);
}

static int h_constant(octx *c, const onode *np, const opdef *d, int *outs) {
  (void)d;
  int rc, t = -1;
  if (np->n_attribute != 1) return NODE_ERR(GG_EPARSE, "needs exactly one attribute");
  const oattr *a = np->attribute[0];
  const char *out = np->output[0];
  if (!strcmp(a->name, "value") && a->t) {
    if ((rc = tensor_const(c, a->t, out, &t))) return rc;
  } else if (!strcmp(a->name, "value_float") && a->has_f) {
    if ((rc = const_f32s(c, out, a->f, &t))) return rc;
  } else if (!strcmp(a->name, "value_int") && a->has_i) {
    int32_t v = (int32_t)a->i;
    if (a->i > INT32_MAX || a->i < INT32_MIN) return NODE_ERR(GG_ERANGE, "value_int outside int32");
    int32_t *dd = gg__const_alloc(4);
    if (!dd) return GG_ENOMEM;
    dd[0] = v;
    if ((rc = add_const(c, out, GG_DT_I32, NULL, 0, dd, &t))) return rc;
  } else if (!strcmp(a->name, "value_ints")) {
    int32_t *dd = gg__const_alloc(a->n_ints * 4);
    if (!dd) return GG_ENOMEM;
    for (size_t i = 0; i < a->n_ints; i++) {
      if (a->ints[i] > INT32_MAX || a->ints[i] < INT32_MIN) {
        gg__const_free(dd);
        return NODE_ERR(GG_ERANGE, "value_ints outside int32");
      }
      dd[i] = (int32_t)a->ints[i];
    }
    int64_t sh[1] = {(int64_t)a->n_ints};
    if ((rc = add_const(c, out, GG_DT_I32, sh, 1, dd, &t))) return rc;
  } else if (!strcmp(a->name, "value_floats")) {
    float *dd = gg__const_alloc(a->n_floats * 4);
    if (!dd) return GG_ENOMEM;
    if (a->n_floats) memcpy(dd, a->floats, a->n_floats * 4);
    int64_t sh[1] = {(int64_t)a->n_floats};
    if ((rc = add_const(c, out, GG_DT_F32, sh, 1, dd, &t))) return rc;
  } else
    return NODE_ERR(GG_EUNSUPPORTED, "attribute %s not supported", a->name);
  /* Later readers get the constant itself; a reader mapped before this
   * node (out of order) reads the pre-created tensor, which an Identity of
   * the constant produces (folded away at import). */
  c->rank[outs[0]] = c->rank[t];
  c->g->tensors[outs[0]].src_type = c->g->tensors[t].src_type;
  if ((rc = emit(c, GG_OP_IDENTITY, "Constant", node_label(np), &t, 1, outs, 1, NULL, NULL)))
    return rc;
  return map_put(c, out, t);
}

static int h_shape(octx *c, const onode *np, const opdef *d, int *outs) {
  int x, rc;
  if ((rc = X(c, np, 0, &x))) return rc;
  gg_attrs a;
  memset(&a, 0, sizeof a);
  const oattr *s = attr(np, "start"), *e = attr(np, "end");
  if (s || e) {
    a.n_slice = 1;
    a.slice_starts[0] = s && s->has_i ? s->i : 0;
    a.slice_ends[0] = e && e->has_i ? e->i : INT64_MAX;
  }
  c->rank[outs[0]] = 1;
  return emit(c, GG_OP_SHAPE, d->name, node_label(np), &x, 1, outs, 1, &a, NULL);
}

/* Size: the product of x's dims as an int32 scalar, built from one-dim
 * Shape slices and Muls, so that it folds at session time like Shape. */
static int h_size(octx *c, const onode *np, const opdef *d, int *outs) {
  int x, rc;
  (void)d;
  if ((rc = X(c, np, 0, &x))) return rc;
  int r = c->rank[x];
  if (r < 0) return NODE_ERR(GG_EUNSUPPORTED, "the input's rank must be known at import");
  const char *nm = node_label(np);
  c->rank[outs[0]] = 0;
  c->dt[outs[0]] = GG_DT_I32;
  if (r == 0) {
    /* a scalar has one element */
    int one;
    int32_t *v = gg__const_alloc(4);
    if (!v) return GG_ENOMEM;
    v[0] = 1;
    char cn[1200];
    snprintf(cn, sizeof cn, "%.1000s/one", nm);
    if ((rc = add_const(c, cn, GG_DT_I32, NULL, 0, v, &one))) return rc;
    return emit(c, GG_OP_IDENTITY, "Size", nm, &one, 1, outs, 1, NULL, NULL);
  }
  int acc = -1;
  for (int k = 0; k < r; k++) {
    int t = tmp_tensor(c, nm, "/dim", &rc);
    if (t < 0) return rc;
    gg_attrs sa;
    memset(&sa, 0, sizeof sa);
    sa.n_slice = 1, sa.slice_starts[0] = k, sa.slice_ends[0] = k + 1;
    if ((rc = emit(c, GG_OP_SHAPE, "Size", nm, &x, 1, &t, 1, &sa, NULL))) return rc;
    c->rank[t] = 1, c->dt[t] = GG_DT_I32;
    if (acc >= 0) {
      int p = tmp_tensor(c, nm, "/prod", &rc), ins[2] = {acc, t};
      if (p < 0) return rc;
      if ((rc = emit(c, GG_OP_MUL, "Size", nm, ins, 2, &p, 1, NULL, NULL))) return rc;
      c->rank[p] = 1, c->dt[p] = GG_DT_I32;
      t = p;
    }
    acc = t;
  }
  gg_attrs qa; /* [1] -> scalar: no axes squeezes every size-1 dim */
  memset(&qa, 0, sizeof qa);
  return emit(c, GG_OP_SQUEEZE, "Size", nm, &acc, 1, outs, 1, &qa, NULL);
}

static int h_slice(octx *c, const onode *np, const opdef *d, int *outs) {
  int x, rc;
  if ((rc = X(c, np, 0, &x))) return rc;
  int64_t st[GG_MAX_DIMS], en[GG_MAX_DIMS], ax[GG_MAX_DIMS], sp[GG_MAX_DIMS];
  int ns, ne, na, nsp;
  if (c->opset < 10) {
    ns = attr_ints(np, "starts", st, GG_MAX_DIMS);
    ne = attr_ints(np, "ends", en, GG_MAX_DIMS);
    na = attr_ints(np, "axes", ax, GG_MAX_DIMS);
    nsp = -1;
  } else {
    int rc1, rc2, rc3, rc4;
    ns = const_ints_in(c, np, 1, st, GG_MAX_DIMS, &rc1);
    ne = const_ints_in(c, np, 2, en, GG_MAX_DIMS, &rc2);
    na = const_ints_in(c, np, 3, ax, GG_MAX_DIMS, &rc3);
    nsp = const_ints_in(c, np, 4, sp, GG_MAX_DIMS, &rc4);
    if (rc1 || rc2 || rc3 || rc4) return rc1 ? rc1 : rc2 ? rc2 : rc3 ? rc3 : rc4;
  }
  if (ns < 0 || ne != ns || (na >= 0 && na != ns) || (nsp >= 0 && nsp != ns))
    return NODE_ERR(GG_EUNSUPPORTED,
                    "starts, ends, axes and steps must be constants of one length (at most %d)",
                    GG_MAX_DIMS);
  gg_attrs a;
  memset(&a, 0, sizeof a);
  a.n_slice = ns;
  for (int i = 0; i < ns; i++) {
    a.slice_starts[i] = st[i] == INT32_MAX ? INT64_MAX : st[i] == INT32_MIN ? INT64_MIN : st[i];
    a.slice_ends[i] = en[i] == INT32_MAX ? INT64_MAX : en[i] == INT32_MIN ? INT64_MIN : en[i];
    a.slice_axes[i] = na >= 0 ? ax[i] : i;
    a.slice_steps[i] = nsp >= 0 ? sp[i] : 1;
    if (!a.slice_steps[i]) return NODE_ERR(GG_EPARSE, "a step of 0");
  }
  c->rank[outs[0]] = c->rank[x];
  return emit(c, GG_OP_SLICE, d->name, node_label(np), &x, 1, outs, 1, &a, NULL);
}

static int h_gather(octx *c, const onode *np, const opdef *d, int *outs) {
  int x, i, rc;
  if ((rc = X(c, np, 0, &x)) || (rc = X(c, np, 1, &i))) return rc;
  gg_attrs a;
  memset(&a, 0, sizeof a);
  AXIS_CHECK(attr_i(np, "axis", 0));
  a.axis = (int)attr_i(np, "axis", 0);
  int ins[2] = {x, i};
  c->rank[outs[0]] = c->rank[x] < 0 || c->rank[i] < 0 ? -1 : c->rank[x] + c->rank[i] - 1;
  return emit(c, GG_OP_GATHER, d->name, node_label(np), ins, 2, outs, 1, &a, NULL);
}

/* Ops whose inputs map one to one (Expand, Tile, Range, ConstantOfShape). */
static int h_direct(octx *c, const onode *np, const opdef *d, int *outs) {
  int ins[4], rc, n = (int)np->n_input;
  int want = d->op == GG_OP_RANGE ? 3 : d->op == GG_OP_CONSTANT_OF_SHAPE ? 1 : 2;
  if (n != want) return NODE_ERR(GG_EPARSE, "expects %d inputs, has %d", want, n);
  for (int k = 0; k < n; k++)
    if ((rc = X(c, np, (size_t)k, &ins[k]))) return rc;
  gg_attrs a;
  memset(&a, 0, sizeof a);
  if (d->op == GG_OP_CONSTANT_OF_SHAPE) {
    a.to = GG_DT_F32, a.fill = 0.0f;
    const oattr *v = attr(np, "value");
    if (v) {
      int t;
      if (!v->t) return NODE_ERR(GG_EPARSE, "attribute value must be a tensor");
      char nm[1200];
      snprintf(nm, sizeof nm, "%.1000s/value", node_label(np));
      if ((rc = tensor_const(c, v->t, nm, &t))) return rc;
      const gg_tensor *tt = cst(c, t);
      if (tt->v.nelem != 1) return NODE_ERR(GG_EPARSE, "attribute value must hold one value");
      a.to = tt->v.dtype;
      a.fill =
          tt->v.dtype == GG_DT_F32 ? ((float *)tt->v.data)[0] : (float)((int32_t *)tt->v.data)[0];
    }
  }
  c->rank[outs[0]] = d->op == GG_OP_RANGE ? 1 : d->op == GG_OP_TILE ? c->rank[ins[0]] : -1;
  if (d->op == GG_OP_CONSTANT_OF_SHAPE && cst(c, ins[0]))
    c->rank[outs[0]] = (int)cst(c, ins[0])->v.nelem;
  return emit(c, d->op, d->name, node_label(np), ins, n, outs, 1, &a, NULL);
}

static int h_norm(octx *c, const onode *np, const opdef *d, int *outs) {
  int ins[3], rc, n = (int)np->n_input;
  if (n < 1 || n > 3) return NODE_ERR(GG_EPARSE, "expects 1 to 3 inputs, has %d", n);
  for (int k = 0; k < n && k < 3; k++)
    if ((rc = X(c, np, (size_t)k, &ins[k]))) return rc;
  int stats = 0;
  for (size_t k = 1; k < np->n_output; k++)
    if (np->output[k] && *np->output[k]) {
      if (d->op != GG_OP_LAYER_NORM)
        return NODE_ERR(GG_EUNSUPPORTED, "the Mean / InvStdDev outputs are not supported");
      stats = 1;
    }
  gg_attrs a;
  memset(&a, 0, sizeof a);
  a.epsilon = attr_f(np, "epsilon", 1e-5f);
  int r = c->rank[ins[0]];
  if (d->op == GG_OP_LAYER_NORM) {
    if (n < 2) return NODE_ERR(GG_EPARSE, "needs a scale input");
    int64_t ax = attr_i(np, "axis", -1);
    if (ax < 0) {
      if (r < 0)
        return NODE_ERR(GG_EUNSUPPORTED,
                        "attribute axis=%lld needs the input's rank, not known at import",
                        (long long)ax);
      ax += r;
    }
    if (ax < 0 || ax >= GG_MAX_DIMS || (r >= 0 && ax >= r))
      return NODE_ERR(GG_ERANGE, "axis %lld out of range for rank %d", (long long)ax, r);
    a.axis = (int)ax;
    if (attr_i(np, "stash_type", 1) != 1)
      return NODE_ERR(GG_EUNSUPPORTED, "attribute stash_type not supported");
  } else {
    if (n != 3) return NODE_ERR(GG_EPARSE, "needs scale and bias inputs");
    if (d->op == GG_OP_GROUP_NORM) {
      if (c->opset < 21)
        return NODE_ERR(GG_EUNSUPPORTED,
                        "GroupNormalization before opset 21 (per-group scale) is not supported");
      int64_t ng = attr_i(np, "num_groups", 0);
      a.groups = ng < 1 || ng > (1 << 20) ? 0 : (int)ng;
      if (a.groups < 1) return NODE_ERR(GG_EPARSE, "attribute num_groups is required");
      if (attr_i(np, "stash_type", 1) != 1)
        return NODE_ERR(GG_EUNSUPPORTED, "attribute stash_type not supported");
    }
  }
  c->rank[outs[0]] = r;
  if ((rc = emit(c, d->op, d->name, node_label(np), ins, n, outs, 1, &a, NULL)) || !stats)
    return rc;
  /* LayerNormalization's Mean and InvStdDev outputs (float, keep-dims over
   * [axis, rank)): mean(x), 1 / sqrt(mean((x - mean)^2) + epsilon) */
  if (r < 0)
    return NODE_ERR(GG_EUNSUPPORTED,
                    "the Mean / InvStdDev outputs need the input's rank, not known at import");
  int32_t axes[GG_MAX_DIMS];
  for (int i = a.axis; i < r; i++)
    axes[i - a.axis] = i;
  int at, mean = np->n_output > 1 && outs[1] >= 0 ? outs[1] : -1, dv, sq, var, ve, sd, ep;
  char nm[1200];
  snprintf(nm, sizeof nm, "%.1000s/stat_axes", node_label(np));
  if ((rc = const_i32v(c, nm, axes, r - a.axis, &at))) return rc;
  if (mean < 0 && (mean = tmp_tensor(c, node_label(np), "/mean", &rc)) < 0) return rc;
  gg_attrs ka;
  memset(&ka, 0, sizeof ka);
  ka.keep_dims = 1;
  int i2[2] = {ins[0], at};
  if ((rc = emit(c, GG_OP_MEAN, d->name, node_label(np), i2, 2, &mean, 1, &ka, NULL))) return rc;
  int inv = np->n_output > 2 && outs[2] >= 0 ? outs[2] : -1;
  if (inv < 0) return 0;
  if ((dv = tmp_tensor(c, node_label(np), "/centered", &rc)) < 0) return rc;
  i2[0] = ins[0], i2[1] = mean;
  if ((rc = emit(c, GG_OP_SUB, d->name, node_label(np), i2, 2, &dv, 1, NULL, NULL))) return rc;
  if ((sq = tmp_tensor(c, node_label(np), "/squared", &rc)) < 0) return rc;
  i2[0] = dv, i2[1] = dv;
  if ((rc = emit(c, GG_OP_MUL, d->name, node_label(np), i2, 2, &sq, 1, NULL, NULL))) return rc;
  if ((var = tmp_tensor(c, node_label(np), "/var", &rc)) < 0) return rc;
  i2[0] = sq, i2[1] = at;
  if ((rc = emit(c, GG_OP_MEAN, d->name, node_label(np), i2, 2, &var, 1, &ka, NULL))) return rc;
  snprintf(nm, sizeof nm, "%.1000s/epsilon", node_label(np));
  if ((rc = const_f32s(c, nm, a.epsilon, &ep))) return rc;
  if ((ve = tmp_tensor(c, node_label(np), "/var_eps", &rc)) < 0) return rc;
  i2[0] = var, i2[1] = ep;
  if ((rc = emit(c, GG_OP_ADD, d->name, node_label(np), i2, 2, &ve, 1, NULL, NULL))) return rc;
  if ((sd = tmp_tensor(c, node_label(np), "/std", &rc)) < 0) return rc;
  if ((rc = emit(c, GG_OP_SQRT, d->name, node_label(np), &ve, 1, &sd, 1, NULL, NULL))) return rc;
  return emit(c, GG_OP_RECIPROCAL, d->name, node_label(np), &sd, 1, &inv, 1, NULL, NULL);
}

static int h_resize(octx *c, const onode *np, const opdef *d, int *outs) {
  int x, rc;
  if ((rc = X(c, np, 0, &x))) return rc;
  gg_attrs a;
  memset(&a, 0, sizeof a);
  char s[48];
  int upsample = !strcmp(d->name, "Upsample");
  attr_s(np, "mode", "nearest", s, sizeof s);
  if (!strcmp(s, "nearest"))
    a.resize_mode = GG_RESIZE_NEAREST;
  else if (!strcmp(s, "linear") || !strcmp(s, "bilinear"))
    a.resize_mode = GG_RESIZE_LINEAR;
  else if (!strcmp(s, "cubic") && !upsample)
    a.resize_mode = GG_RESIZE_CUBIC;
  else
    return NODE_ERR(GG_EUNSUPPORTED, "attribute mode=%s not supported", s);
  int legacy = upsample || c->opset < 11;
  attr_s(np, "coordinate_transformation_mode", legacy ? "asymmetric" : "half_pixel", s, sizeof s);
  static const char *const k_coord[] = {
      "half_pixel",           "asymmetric",         "pytorch_half_pixel",  "align_corners",
      "tf_half_pixel_for_nn", "tf_crop_and_resize", "half_pixel_symmetric"};
  int cm = -1;
  for (int i = 0; i < 7; i++)
    if (!strcmp(s, k_coord[i])) cm = i;
  if (cm < 0)
    return NODE_ERR(GG_EUNSUPPORTED, "attribute coordinate_transformation_mode=%s not supported",
                    s);
  a.coord_mode = (gg_coord_mode)cm;
  attr_s(np, "nearest_mode", legacy ? "floor" : "round_prefer_floor", s, sizeof s);
  static const char *const k_near[] = {"round_prefer_floor", "round_prefer_ceil", "floor", "ceil"};
  int nm_ = -1;
  for (int i = 0; i < 4; i++)
    if (!strcmp(s, k_near[i])) nm_ = i;
  if (nm_ < 0) return NODE_ERR(GG_EUNSUPPORTED, "attribute nearest_mode=%s not supported", s);
  a.nearest_mode = (gg_nearest_mode)nm_;
  a.cubic_a = attr_f(np, "cubic_coeff_a", -0.75f);
  a.exclude_outside = attr_i(np, "exclude_outside", 0) != 0;
  a.extrapolation = attr_f(np, "extrapolation_value", 0.0f);
  if (attr_i(np, "antialias", 0))
    return NODE_ERR(GG_EUNSUPPORTED, "attribute antialias=1 not supported");
  if (attr(np, "axes")) return NODE_ERR(GG_EUNSUPPORTED, "attribute axes not supported");
  attr_s(np, "keep_aspect_ratio_policy", "stretch", s, sizeof s);
  if (strcmp(s, "stretch"))
    return NODE_ERR(GG_EUNSUPPORTED, "attribute keep_aspect_ratio_policy=%s not supported", s);
  /* scales / sizes: constants now, or resolved when the session knows them */
  int ts = -1, tz = -1;
  if (upsample) {
    if (c->opset < 9) {
      const oattr *sa = attr(np, "scales");
      if (!sa || sa->n_floats != 4 || sa->floats[0] != 1.0f || sa->floats[1] != 1.0f)
        return NODE_ERR(GG_EUNSUPPORTED, "attribute scales must be 4 values scaling H and W only");
      a.scale_hw[0] = sa->floats[2], a.scale_hw[1] = sa->floats[3];
      a.out_hw[0] = a.out_hw[1] = -1;
    } else
      ts = in_t(c, np, 1);
  } else if (c->opset < 11)
    ts = in_t(c, np, 1);
  else {
    ts = in_t(c, np, 2), tz = in_t(c, np, 3);
    int roi = in_t(c, np, 1);
    if (a.coord_mode == GG_COORD_TF_CROP_AND_RESIZE) {
      const gg_tensor *rt = cst(c, roi);
      if (!rt || rt->v.dtype != GG_DT_F32 || rt->v.nelem != 8)
        return NODE_ERR(GG_EUNSUPPORTED, "tf_crop_and_resize needs a constant roi of 8 values");
      const float *r = rt->v.data;
      if (r[0] != 0 || r[1] != 0 || r[4] != 1 || r[5] != 1)
        return NODE_ERR(GG_EUNSUPPORTED, "roi must cover N and C fully");
      a.roi[0] = r[2], a.roi[1] = r[3], a.roi[2] = r[6], a.roi[3] = r[7];
    }
  }
  if (ts >= 0 && cst(c, ts) && cst(c, ts)->v.nelem == 0) ts = -1;
  int dyn = -1;
  if (tz >= 0) {
    const gg_tensor *t = cst(c, tz);
    if (t) {
      if (t->v.dtype != GG_DT_I32 || t->v.nelem != 4)
        return NODE_ERR(GG_EUNSUPPORTED, "sizes must have 4 values");
      const int32_t *z = t->v.data;
      a.out_hw[0] = z[2], a.out_hw[1] = z[3];
      if (z[2] < 1 || z[3] < 1) return NODE_ERR(GG_EPARSE, "bad sizes");
      a.scale_hw[0] = a.scale_hw[1] = 0;
      /* N and C must stay: checked at session time by the shape rule on out_hw */
    } else
      dyn = tz, a.out_hw[0] = a.out_hw[1] = -3;
  } else if (ts >= 0) {
    const gg_tensor *t = cst(c, ts);
    if (t) {
      if (t->v.dtype != GG_DT_F32 || t->v.nelem != 4)
        return NODE_ERR(GG_EUNSUPPORTED, "scales must be 4 floats");
      const float *f = t->v.data;
      if (f[0] != 1.0f || f[1] != 1.0f)
        return NODE_ERR(GG_EUNSUPPORTED, "scaling N or C is not supported");
      if (!(f[2] > 0) || !(f[3] > 0)) return NODE_ERR(GG_EPARSE, "scales must be positive");
      a.scale_hw[0] = f[2], a.scale_hw[1] = f[3];
      a.out_hw[0] = a.out_hw[1] = -1;
    } else
      dyn = ts, a.out_hw[0] = a.out_hw[1] = -2;
  } else if (!upsample || c->opset >= 9)
    return NODE_ERR(GG_EPARSE, "needs scales or sizes");
  int ins[2] = {x, dyn};
  return nhwc_wrap(c, np, GG_OP_RESIZE, ins, dyn >= 0 ? 2 : 1, outs[0], &a, NULL);
}

/* t = a new 1-D I32 constant named node + suffix. */
static int node_i32v(octx *c, const onode *np, const char *suffix, const int32_t *v, int n,
                     int *t) {
  char nm[1200];
  snprintf(nm, sizeof nm, "%.1000s%s", node_label(np), suffix);
  return const_i32v(c, nm, v, n, t);
}

/* out (a new tensor named node + suffix when *out < 0) = Reshape(x,
 * Concat(pieces)): pieces are 1-D I32 tensors (Shape slices, constants)
 * that the session folds into the target shape. */
static int reshape_concat(octx *c, const onode *np, int x, int *pieces, int n, const char *suffix,
                          int rank, int *out) {
  int rc, ax, sh;
  int32_t zero = 0;
  char sfx[64];
  snprintf(sfx, sizeof sfx, "%s/axis", suffix);
  if ((rc = node_i32v(c, np, sfx, &zero, 1, &ax))) return rc;
  pieces[n] = ax;
  snprintf(sfx, sizeof sfx, "%s/shape", suffix);
  if ((sh = tmp_tensor(c, node_label(np), sfx, &rc)) < 0) return rc;
  if ((rc = emit(c, GG_OP_CONCAT, "Concat", node_label(np), pieces, n + 1, &sh, 1, NULL, NULL)))
    return rc;
  c->rank[sh] = 1;
  if (*out < 0 && (*out = tmp_tensor(c, node_label(np), suffix, &rc)) < 0) return rc;
  int ins[2] = {x, sh};
  if ((rc = emit(c, GG_OP_RESHAPE, c->op_name, node_label(np), ins, 2, out, 1, NULL, NULL)))
    return rc;
  c->rank[*out] = rank;
  return 0;
}

/* out = Reshape(x, sh) with ONNX copy-zero (sh: n constant values). */
static int reshape_zero(octx *c, const onode *np, int x, const int32_t *sh, int n,
                        const char *suffix, int *out) {
  int rc, s;
  char sfx[64];
  snprintf(sfx, sizeof sfx, "%s/shape", suffix);
  if ((rc = node_i32v(c, np, sfx, sh, n, &s))) return rc;
  if ((*out = tmp_tensor(c, node_label(np), suffix, &rc)) < 0) return rc;
  gg_attrs a;
  memset(&a, 0, sizeof a);
  a.axis = 1; /* ONNX Reshape: 0 copies the input dim */
  int ins[2] = {x, s};
  if ((rc = emit(c, GG_OP_RESHAPE, c->op_name, node_label(np), ins, 2, out, 1, &a, NULL)))
    return rc;
  c->rank[*out] = n;
  return 0;
}

/* DepthToSpace mode=CRD and SpaceToDepth, as ONNX defines them (NCHW):
 * Reshape to 6-D, Transpose, Reshape back to 4-D. The shapes are built
 * from Shape slices, so they are resolved at session time; each step keeps
 * one -1 (a block size that does not divide H, W or C is refused by the
 * Reshape then). */
static int crd_or_s2d(octx *c, const onode *np, int x, int bs, int s2d, int out) {
  int rc, p[5], t5, t6, tt;
  if (!s2d) { /* [b, c/bs², bs, bs, h, w] */
    int32_t mid[3] = {-1, bs, bs};
    if ((rc = shape_slice(c, np, x, 0, 1, "/crd/n", &p[0]))) return rc;
    if ((rc = node_i32v(c, np, "/crd/split", mid, 3, &p[1]))) return rc;
    if ((rc = shape_slice(c, np, x, 2, 4, "/crd/hw", &p[2]))) return rc;
    t6 = -1;
    if ((rc = reshape_concat(c, np, x, p, 3, "/crd/6d", 6, &t6))) return rc;
    static const int32_t perm[6] = {0, 1, 4, 2, 5, 3};
    if ((rc = transpose(c, node_label(np), "/crd/t", t6, perm, 6, &tt))) return rc;
    /* [b, c', h, bs, w, bs] -> [b, c', h, bs, w*bs]: its last dim is the output W */
    static const int32_t m5[5] = {0, 0, 0, 0, -1};
    if ((rc = reshape_zero(c, np, tt, m5, 5, "/crd/5d", &t5))) return rc;
    int32_t m1 = -1;
    if ((rc = shape_slice(c, np, t5, 0, 2, "/crd/nc", &p[0]))) return rc;
    if ((rc = node_i32v(c, np, "/crd/h", &m1, 1, &p[1]))) return rc;
    if ((rc = shape_slice(c, np, t5, 4, 5, "/crd/w", &p[2]))) return rc;
    return reshape_concat(c, np, t5, p, 3, "/crd/out", 4, &out);
  }
  int32_t mid[2] = {-1, bs}; /* [b, c, h/bs, bs, w] */
  if ((rc = shape_slice(c, np, x, 0, 2, "/s2d/nc", &p[0]))) return rc;
  if ((rc = node_i32v(c, np, "/s2d/split_h", mid, 2, &p[1]))) return rc;
  if ((rc = shape_slice(c, np, x, 3, 4, "/s2d/w", &p[2]))) return rc;
  t5 = -1;
  if ((rc = reshape_concat(c, np, x, p, 3, "/s2d/5d", 5, &t5))) return rc;
  const int32_t m6[6] = {0, 0, 0, 0, -1, bs}; /* [b, c, h/bs, bs, w/bs, bs] */
  if ((rc = reshape_zero(c, np, t5, m6, 6, "/s2d/6d", &t6))) return rc;
  static const int32_t perm[6] = {0, 3, 5, 1, 2, 4};
  if ((rc = transpose(c, node_label(np), "/s2d/t", t6, perm, 6, &tt))) return rc;
  int32_t m1 = -1; /* [b, bs, bs, c, h/bs, w/bs] -> [b, c*bs*bs, h/bs, w/bs] */
  if ((rc = shape_slice(c, np, tt, 0, 1, "/s2d/n", &p[0]))) return rc;
  if ((rc = node_i32v(c, np, "/s2d/c", &m1, 1, &p[1]))) return rc;
  if ((rc = shape_slice(c, np, tt, 4, 6, "/s2d/hw", &p[2]))) return rc;
  return reshape_concat(c, np, tt, p, 3, "/s2d/out", 4, &out);
}

static int h_depth_to_space(octx *c, const onode *np, const opdef *d, int *outs) {
  int x, rc;
  if ((rc = X(c, np, 0, &x))) return rc;
  int s2d = d->op != GG_OP_DEPTH_TO_SPACE;
  char m[16];
  attr_s(np, "mode", "DCR", m, sizeof m);
  if (strcmp(m, "DCR") && strcmp(m, "CRD"))
    return NODE_ERR(GG_EUNSUPPORTED, "attribute mode=%s not supported (DCR, CRD)", m);
  gg_attrs a;
  memset(&a, 0, sizeof a);
  int64_t bs = attr_i(np, "blocksize", 0);
  a.block_size = bs < 1 || bs > 64 ? 0 : (int)bs;
  if (a.block_size < 1 || a.block_size > 64) return NODE_ERR(GG_EPARSE, "bad blocksize");
  if (c->rank[x] >= 0 && c->rank[x] != 4)
    return NODE_ERR(GG_EPARSE, "input has rank %d (expects 4, NCHW)", c->rank[x]);
  c->rank[outs[0]] = 4;
  if (s2d || !strcmp(m, "CRD")) return crd_or_s2d(c, np, x, a.block_size, s2d, outs[0]);
  int ins[1] = {x};
  return nhwc_wrap(c, np, GG_OP_DEPTH_TO_SPACE, ins, 1, outs[0], &a, NULL);
}

/* Einsum label of a letter: a-z 0..25, A-Z 26..51; -1 for anything else.
 * The dims an ellipsis stands for get 52.. (aligned from the right, as
 * numpy broadcasts them). */
static int ein_label(char ch) {
  return ch >= 'a' && ch <= 'z' ? ch - 'a' : ch >= 'A' && ch <= 'Z' ? ch - 'A' + 26 : -1;
}

/* Every Einsum form of one or two operands that is not a batched matmul:
 * one GG_OP_EINSUM node (its naive kernel), labels resolved here. eq has no
 * spaces. */
static int einsum_general(octx *c, const onode *np, const char *eq, int *outs) {
  int x[2], rc, nin = (int)np->n_input;
  if (nin < 1 || nin > 2)
    return NODE_ERR(GG_EUNSUPPORTED, "equation=%s: %d operands (one or two supported)", eq, nin);
  for (int k = 0; k < nin; k++)
    if ((rc = X(c, np, (size_t)k, &x[k]))) return rc;
  const char *arrow = strstr(eq, "->");
  size_t lhs_len = arrow ? (size_t)(arrow - eq) : strlen(eq);
  gg_attrs a;
  memset(&a, 0, sizeof a);
  int cnt[52] = {0}, ell[3] = {-1, -1, -1}, max_ell = 0;
  /* the operands' terms */
  const char *p = eq;
  for (int k = 0; k < nin; k++) {
    const char *end = memchr(p, ',', lhs_len - (size_t)(p - eq));
    if (!end) end = eq + lhs_len;
    if ((k < nin - 1) != (*end == ','))
      return NODE_ERR(GG_EUNSUPPORTED, "equation=%s does not have %d operand terms", eq, nin);
    int nl = 0, has_ell = 0;
    for (const char *q = p; q < end; q++) {
      if (!strncmp(q, "...", 3) && !has_ell) {
        has_ell = 1, q += 2;
        continue;
      }
      if (ein_label(*q) < 0)
        return NODE_ERR(GG_EUNSUPPORTED, "equation=%s: '%c' is not a label", eq, *q);
      nl++;
    }
    int r = c->rank[x[k]];
    if (has_ell && r < 0)
      return NODE_ERR(GG_EUNSUPPORTED, "equation=%s: an ellipsis needs operand %d's rank", eq, k);
    if (r >= 0 && (has_ell ? r < nl : r != nl))
      return NODE_ERR(GG_EPARSE, "equation=%s: operand %d has %d dims for %d labels", eq, k, r, nl);
    int e = has_ell ? r - nl : 0;
    if (nl + e > GG_MAX_DIMS)
      return NODE_ERR(GG_EUNSUPPORTED, "equation=%s: more than %d dims", eq, GG_MAX_DIMS);
    ell[k] = has_ell ? e : -1;
    if (e > max_ell) max_ell = e;
    a.ein_n[k] = nl + e;
    p = end + 1;
  }
  /* labels, ellipsis dims aligned from the right */
  p = eq;
  for (int k = 0; k < nin; k++) {
    int d = 0;
    for (; *p && *p != ',' && p < eq + lhs_len; p++) {
      if (!strncmp(p, "...", 3)) {
        for (int j = 0; j < ell[k]; j++)
          a.ein_lab[k][d++] = (signed char)(52 + max_ell - ell[k] + j);
        p += 2;
        continue;
      }
      int l = ein_label(*p);
      cnt[l]++;
      a.ein_lab[k][d++] = (signed char)l;
    }
    p++;
  }
  int no = 0, seen[52] = {0};
  if (arrow) {
    int has_ell = 0;
    for (const char *q = arrow + 2; *q; q++) {
      if (!strncmp(q, "...", 3) && !has_ell) {
        has_ell = 1, q += 2;
        if (no + max_ell > GG_MAX_DIMS)
          return NODE_ERR(GG_EUNSUPPORTED, "equation=%s: more than %d dims", eq, GG_MAX_DIMS);
        for (int j = 0; j < max_ell; j++)
          a.ein_lab[2][no++] = (signed char)(52 + j);
        continue;
      }
      int l = ein_label(*q);
      if (l < 0 || !cnt[l] || seen[l]++)
        return NODE_ERR(GG_EUNSUPPORTED,
                        "equation=%s: output label '%c' is not a label of the operands, or "
                        "repeated",
                        eq, *q);
      if (no == GG_MAX_DIMS)
        return NODE_ERR(GG_EUNSUPPORTED, "equation=%s: more than %d dims", eq, GG_MAX_DIMS);
      a.ein_lab[2][no++] = (signed char)l;
    }
    if (max_ell && !has_ell)
      return NODE_ERR(GG_EUNSUPPORTED,
                      "equation=%s: the output must keep the ellipsis of the operands", eq);
  } else {
    /* implicit output: the ellipsis, then the labels seen once, sorted */
    for (int j = 0; j < max_ell; j++)
      a.ein_lab[2][no++] = (signed char)(52 + j);
    for (int i = 0; i < 52; i++) {
      int l = (i + 26) % 52; /* A-Z (26..51), then a-z: ASCII order */
      if (cnt[l] != 1) continue;
      if (no == GG_MAX_DIMS)
        return NODE_ERR(GG_EUNSUPPORTED, "equation=%s: more than %d dims", eq, GG_MAX_DIMS);
      a.ein_lab[2][no++] = (signed char)l;
    }
  }
  a.ein_n[2] = no;
  c->rank[outs[0]] = no;
  return emit(c, GG_OP_EINSUM, "Einsum", node_label(np), x, nin, outs, 1, &a, NULL);
}

/* Einsum, the batched-matmul forms of attention blocks ("bhid,bhjd->bhij"):
 * transposes to [batch..., m, k] x [batch..., k, n], BatchMatMul, transpose
 * to the output order; every other form, einsum_general. */
static int h_einsum(octx *c, const onode *np, const opdef *d, int *outs) {
  int A, B, rc;
  (void)d;
  char eq[256];
  const oattr *ea = attr(np, "equation");
  if (ea && ea->s.len >= sizeof eq)
    return NODE_ERR(GG_EUNSUPPORTED, "attribute equation is %zu bytes long (at most %zu)",
                    ea->s.len, sizeof eq - 1);
  attr_s(np, "equation", "", eq, sizeof eq);
  char in1[16] = "", in2[16] = "", ot[16] = "";
  char *p = eq, *q = eq;
  int k = 0;
  for (; *p; p++)
    if (*p != ' ') *q++ = *p;
  *q = 0;
  /* The batched-matmul forms (attention) become GG_OP_BATCH_MATMUL with
   * transposes; every other form, the general kernel. */
  if (np->n_input != 2 || sscanf(eq, "%15[a-z],%15[a-z]->%15[a-z]%n", in1, in2, ot, &k) != 3 ||
      eq[k])
    return einsum_general(c, np, eq, outs);
  if ((rc = X(c, np, 0, &A)) || (rc = X(c, np, 1, &B))) return rc;
  int la = (int)strlen(in1), lb = (int)strlen(in2), lo = (int)strlen(ot);
  char batch[8], m = 0, n = 0, kk = 0;
  int nb = 0;
  for (int i = 0; i < lo; i++) {
    int ia = strchr(in1, ot[i]) != NULL, ib = strchr(in2, ot[i]) != NULL;
    if (ia && ib)
      batch[nb++] = ot[i];
    else if (ia && !m)
      m = ot[i];
    else if (ib && !n)
      n = ot[i];
    else
      return einsum_general(c, np, eq, outs);
  }
  for (int i = 0; i < la; i++)
    if (!strchr(ot, in1[i])) {
      if (kk || !strchr(in2, in1[i])) return einsum_general(c, np, eq, outs);
      kk = in1[i];
    }
  if (!kk || !m || !n || la != nb + 2 || lb != nb + 2 || lo != nb + 2)
    return einsum_general(c, np, eq, outs);
  for (int i = 0; i < la; i++)
    for (int j = i + 1; j < la; j++)
      if (in1[i] == in1[j]) return einsum_general(c, np, eq, outs);
  for (int i = 0; i < lb; i++)
    for (int j = i + 1; j < lb; j++)
      if (in2[i] == in2[j]) return einsum_general(c, np, eq, outs);
  char wa[16], wb[16], wo[16];
  memcpy(wa, batch, (size_t)nb), wa[nb] = m, wa[nb + 1] = kk;
  memcpy(wb, batch, (size_t)nb), wb[nb] = kk, wb[nb + 1] = n;
  memcpy(wo, batch, (size_t)nb), wo[nb] = m, wo[nb + 1] = n;
  int32_t pa[8], pb[8], po[8];
  int ida = 1, idb = 1, ido = 1;
  for (int i = 0; i < nb + 2; i++) {
    pa[i] = (int32_t)(strchr(in1, wa[i]) - in1), ida &= pa[i] == i;
    pb[i] = (int32_t)(strchr(in2, wb[i]) - in2), idb &= pb[i] == i;
    po[i] = (int32_t)(memchr(wo, ot[i], (size_t)nb + 2) - (void *)wo), ido &= po[i] == i;
  }
  if (!ida && (rc = transpose(c, node_label(np), "/a", A, pa, nb + 2, &A))) return rc;
  if (!idb && (rc = transpose(c, node_label(np), "/b", B, pb, nb + 2, &B))) return rc;
  int y = outs[0];
  if (!ido && (y = tmp_tensor(c, node_label(np), "/mm", &rc)) < 0) return rc;
  int ins[2] = {A, B};
  if ((rc = emit(c, GG_OP_BATCH_MATMUL, "Einsum", node_label(np), ins, 2, &y, 1, NULL, NULL)))
    return rc;
  c->rank[y] = nb + 2, c->rank[outs[0]] = nb + 2;
  if (ido) return 0;
  int pt;
  char nm[1200];
  snprintf(nm, sizeof nm, "%.1000s/out_perm", node_label(np));
  if ((rc = const_i32v(c, nm, po, nb + 2, &pt))) return rc;
  int ti[2] = {y, pt};
  return emit(c, GG_OP_TRANSPOSE, "Einsum", node_label(np), ti, 2, outs, 1, NULL, NULL);
}

/* ------------------------------------------------------------ group X ops */

/* The ONNX op -> attrs.fn of its group X op (graph.h: GG_UX_*, GG_BX_*,
 * GG_RX_*; ArgMax 0, ArgMin 1). */
static const struct xfn_row {
  const char *name;
  int fn;
} k_xfn[] = {
    {"Sin", GG_UX_SIN},
    {"Cos", GG_UX_COS},
    {"Tan", GG_UX_TAN},
    {"Asin", GG_UX_ASIN},
    {"Acos", GG_UX_ACOS},
    {"Atan", GG_UX_ATAN},
    {"Sinh", GG_UX_SINH},
    {"Cosh", GG_UX_COSH},
    {"Asinh", GG_UX_ASINH},
    {"Acosh", GG_UX_ACOSH},
    {"Atanh", GG_UX_ATANH},
    {"Floor", GG_UX_FLOOR},
    {"Ceil", GG_UX_CEIL},
    {"Round", GG_UX_ROUND},
    {"Sign", GG_UX_SIGN},
    {"IsNaN", GG_UX_ISNAN},
    {"IsInf", GG_UX_ISINF},
    {"Elu", GG_UX_ELU},
    {"Selu", GG_UX_SELU},
    {"Celu", GG_UX_CELU},
    {"Softsign", GG_UX_SOFTSIGN},
    {"ThresholdedRelu", GG_UX_THRESHOLDED_RELU},
    {"Shrink", GG_UX_SHRINK},
    {"Mod", GG_BX_MOD},
    {"GreaterOrEqual", GG_BX_GE},
    {"LessOrEqual", GG_BX_LE},
    {"And", GG_BX_AND},
    {"Or", GG_BX_OR},
    {"Xor", GG_BX_XOR},
    {"ReduceProd", GG_RX_PROD},
    {"ReduceSumSquare", GG_RX_SUM_SQUARE},
    {"ReduceL1", GG_RX_L1},
    {"ReduceLogSum", GG_RX_LOG_SUM},
    {"ReduceLogSumExp", GG_RX_LOG_SUM_EXP},
    {"ArgMax", 0},
    {"ArgMin", 1},
};

static int xfn(const char *name) {
  for (size_t i = 0; i < sizeof k_xfn / sizeof k_xfn[0]; i++)
    if (!strcmp(name, k_xfn[i].name)) return k_xfn[i].fn;
  return 0;
}

static int h_xunary(octx *c, const onode *np, const opdef *d, int *outs) {
  int x, rc;
  if ((rc = X(c, np, 0, &x))) return rc;
  gg_attrs a;
  memset(&a, 0, sizeof a);
  a.fn = xfn(d->name);
  switch ((gg_ux_fn)a.fn) {
  case GG_UX_ELU:
  case GG_UX_CELU:
  case GG_UX_THRESHOLDED_RELU: a.alpha = attr_f(np, "alpha", 1.0f); break;
  case GG_UX_SELU:
    a.alpha = attr_f(np, "alpha", 1.67326319217681884765625f);
    a.gamma = attr_f(np, "gamma", 1.05070102214813232421875f);
    break;
  case GG_UX_SHRINK: a.alpha = attr_f(np, "bias", 0.0f), a.beta = attr_f(np, "lambd", 0.5f); break;
  case GG_UX_ISINF:
    a.flags = attr_i(np, "detect_negative", 1) != 0;
    a.flags |= (attr_i(np, "detect_positive", 1) != 0) << 1;
    break;
  default: break;
  }
  if (a.fn == GG_UX_CELU && a.alpha == 0.0f) return NODE_ERR(GG_EPARSE, "alpha must not be 0");
  c->rank[outs[0]] = c->rank[x];
  if (a.fn == GG_UX_ISNAN || a.fn == GG_UX_ISINF) c->dt[outs[0]] = GG_DT_I32;
  return emit(c, GG_OP_UNARY_X, d->name, node_label(np), &x, 1, outs, 1, &a, NULL);
}

static int h_xbinary(octx *c, const onode *np, const opdef *d, int *outs) {
  int ins[2], rc;
  if (np->n_input != 2) return NODE_ERR(GG_EPARSE, "expects 2 inputs, has %d", (int)np->n_input);
  for (int k = 0; k < 2; k++)
    if ((rc = X(c, np, (size_t)k, &ins[k]))) return rc;
  gg_attrs a;
  memset(&a, 0, sizeof a);
  a.fn = xfn(d->name);
  if (a.fn == GG_BX_MOD) {
    int64_t fm = attr_i(np, "fmod", 0);
    if (fm != 0 && fm != 1)
      return NODE_ERR(GG_EPARSE, "attribute fmod=%lld (0 or 1)", (long long)fm);
    if (fm)
      a.fn = GG_BX_FMOD;
    else if (c->dt[ins[0]] == GG_DT_F32)
      return NODE_ERR(GG_EUNSUPPORTED, "float operands need fmod=1 (ONNX Mod)");
  }
  int ra = c->rank[ins[0]], rb = c->rank[ins[1]];
  c->rank[outs[0]] = ra < 0 || rb < 0 ? -1 : ra > rb ? ra : rb;
  if (a.fn >= GG_BX_GE) c->dt[outs[0]] = GG_DT_I32;
  return emit(c, GG_OP_BINARY_X, d->name, node_label(np), ins, 2, outs, 1, &a, NULL);
}

/* Mean: the inputs' broadcast sum, divided by their count. */
static int h_mean(octx *c, const onode *np, const opdef *d, int *outs) {
  int n = (int)np->n_input, rc, acc, cnt;
  if (n < 1) return NODE_ERR(GG_EPARSE, "has no inputs");
  if ((rc = X(c, np, 0, &acc))) return rc;
  for (int k = 1; k < n; k++) {
    int b, y, ins[2];
    if ((rc = X(c, np, (size_t)k, &b))) return rc;
    if ((y = tmp_tensor(c, node_label(np), "/sum", &rc)) < 0) return rc;
    ins[0] = acc, ins[1] = b;
    int ra = c->rank[acc], rb = c->rank[b];
    if ((rc = emit(c, GG_OP_ADD, d->name, node_label(np), ins, 2, &y, 1, NULL, NULL))) return rc;
    c->rank[y] = ra < 0 || rb < 0 ? -1 : ra > rb ? ra : rb;
    acc = y;
  }
  char nm[1200];
  snprintf(nm, sizeof nm, "%.1000s/count", node_label(np));
  if ((rc = const_f32s(c, nm, (float)n, &cnt))) return rc;
  int ins[2] = {acc, cnt};
  c->rank[outs[0]] = c->rank[acc];
  return emit(c, GG_OP_DIV, d->name, node_label(np), ins, 2, outs, 1, NULL, NULL);
}

/* The group X ops whose inputs map one to one: ArgMax/ArgMin, CumSum,
 * GatherElements, GatherND, Trilu, Hardmax, LRN, TopK, OneHot, EyeLike,
 * ScatterND, ScatterElements (and Scatter, its opset 9 name). */
static int h_xdirect(octx *c, const onode *np, const opdef *d, int *outs) {
  int ins[3], rc, n = (int)np->n_input, lo = 1, hi = 1, nout = 1;
  switch (d->op) {
  case GG_OP_CUMSUM:
  case GG_OP_GATHER_ELEMENTS:
  case GG_OP_GATHER_ND: lo = hi = 2; break;
  case GG_OP_TRILU: hi = 2; break;
  case GG_OP_TOPK: lo = hi = c->opset >= 10 ? 2 : 1, nout = 2; break;
  case GG_OP_ONE_HOT:
  case GG_OP_SCATTER_ND:
  case GG_OP_SCATTER_ELEMENTS: lo = hi = 3; break;
  default: break;
  }
  if (n < lo || n > hi) return NODE_ERR(GG_EPARSE, "expects %d to %d inputs, has %d", lo, hi, n);
  for (int k = 0; k < n; k++)
    if ((rc = X(c, np, (size_t)k, &ins[k]))) return rc;
  gg_attrs a;
  memset(&a, 0, sizeof a);
  int r = c->rank[ins[0]], ro = r;
  a.keep_dims = attr_i(np, "keepdims", 1) != 0;
  char red[32];
  attr_s(np, "reduction", "none", red, sizeof red);
  a.fn = !strcmp(red, "add")   ? GG_SX_ADD
         : !strcmp(red, "mul") ? GG_SX_MUL
         : !strcmp(red, "max") ? GG_SX_MAX
         : !strcmp(red, "min") ? GG_SX_MIN
                               : GG_SX_NONE;
  if (a.fn == GG_SX_NONE && strcmp(red, "none"))
    return NODE_ERR(GG_EUNSUPPORTED, "attribute reduction=%s not supported", red);
  switch (d->op) {
  case GG_OP_ARG_X:
    AXIS_CHECK(attr_i(np, "axis", 0));
    a.axis = (int)attr_i(np, "axis", 0), a.fn = xfn(d->name);
    a.flags = attr_i(np, "select_last_index", 0) != 0;
    ro = r < 0 ? -1 : a.keep_dims ? r : r - 1;
    c->dt[outs[0]] = GG_DT_I32;
    break;
  case GG_OP_CUMSUM:
    a.flags = (attr_i(np, "exclusive", 0) != 0) | (attr_i(np, "reverse", 0) != 0) << 1;
    break;
  case GG_OP_GATHER_ELEMENTS:
  case GG_OP_SCATTER_ELEMENTS:
    AXIS_CHECK(attr_i(np, "axis", 0));
    a.axis = (int)attr_i(np, "axis", 0);
    if (d->op == GG_OP_GATHER_ELEMENTS) ro = c->rank[ins[1]];
    break;
  case GG_OP_GATHER_ND: {
    int64_t b = attr_i(np, "batch_dims", 0);
    if (b < 0 || b >= GG_MAX_DIMS) return NODE_ERR(GG_ERANGE, "batch_dims %lld", (long long)b);
    a.axis = (int)b, ro = -1;
    break;
  }
  case GG_OP_TRILU: a.flags = attr_i(np, "upper", 1) != 0; break;
  case GG_OP_HARDMAX:
    AXIS_CHECK(attr_i(np, "axis", c->opset >= 13 ? -1 : 1));
    a.axis = (int)attr_i(np, "axis", c->opset >= 13 ? -1 : 1);
    a.flags = c->opset < 13;
    break;
  case GG_OP_LRN: {
    int64_t size = attr_i(np, "size", 0);
    if (size < 1 || size > INT32_MAX) return NODE_ERR(GG_EPARSE, "attribute size must be >= 1");
    a.size = (int)size, a.alpha = attr_f(np, "alpha", 1e-4f), a.beta = attr_f(np, "beta", 0.75f);
    a.gamma = attr_f(np, "bias", 1.0f);
    break;
  }
  case GG_OP_TOPK:
    AXIS_CHECK(attr_i(np, "axis", -1));
    a.axis = (int)attr_i(np, "axis", -1), a.flags = attr_i(np, "largest", 1) != 0;
    if (c->opset < 10) { /* k an attribute: make it the input it became */
      int64_t k = attr_i(np, "k", -1);
      if (k < 0 || k > INT32_MAX) return NODE_ERR(GG_EPARSE, "attribute k is missing or negative");
      int32_t k32 = (int32_t)k;
      char nm[1200];
      snprintf(nm, sizeof nm, "%.1000s/k", node_label(np));
      if ((rc = const_i32v(c, nm, &k32, 1, &ins[1]))) return rc;
      n = 2;
    }
    if (np->n_output > 2) return NODE_ERR(GG_EPARSE, "has %d outputs (2)", (int)np->n_output);
    if (np->n_output < 2 || outs[1] < 0)
      if ((outs[1] = tmp_tensor(c, node_label(np), "/indices", &rc)) < 0) return rc;
    c->rank[outs[1]] = r, c->dt[outs[1]] = GG_DT_I32;
    break;
  case GG_OP_ONE_HOT:
    AXIS_CHECK(attr_i(np, "axis", -1));
    a.axis = (int)attr_i(np, "axis", -1), ro = r < 0 ? -1 : r + 1;
    break;
  case GG_OP_EYE_LIKE: {
    int64_t dt = attr_i(np, "dtype", -1), k = attr_i(np, "k", 0);
    if (k < INT32_MIN || k > INT32_MAX) return NODE_ERR(GG_ERANGE, "k %lld", (long long)k);
    a.axis = (int)k;
    if (dt < 0 && c->dt[ins[0]] < 0)
      return NODE_ERR(GG_EUNSUPPORTED, "without dtype, the input's type must be known at import");
    if (dt < 0)
      a.to = (gg_dtype)c->dt[ins[0]];
    else if (onnx_is_float((int)dt)) /* 0 and 1 are exact in float32 (as held) */
      a.to = GG_DT_F32;
    else if (onnx_elem_size((int)dt))
      a.to = GG_DT_I32;
    else
      return NODE_ERR(GG_EUNSUPPORTED,
                      "attribute dtype=%s not supported (float and integer types, BOOL)",
                      onnx_dtype_name((int)dt));
    c->dt[outs[0]] = (int)a.to;
    break;
  }
  default: break;
  }
  c->rank[outs[0]] = ro;
  return emit(c, d->op, d->name, node_label(np), ins, n, outs, nout, &a, NULL);
}

/* ------------------------------------------------------------ quantization
 *
 * ONNX's linear quantization, computed in float32 on the ops every backend
 * runs. QuantizeLinear / DequantizeLinear are GG_OP_QUANTIZE / DEQUANTIZE
 * (a DequantizeLinear of constants, a QDQ model's weights, is evaluated here
 * so that the Conv or MatMul it feeds sees constant float weights).
 * ConvInteger and MatMulInteger subtract the zero points and run the float
 * Conv / MatMul: every product and partial sum of 8-bit values is an integer
 * that float32 holds exactly below 2^24 (K <= 258 terms at the full range),
 * beyond which the sum is within float32 rounding of the int32 one. Their
 * int32 result goes through a Cast flagged exact, which a Cast back to float
 * (the dynamic-quantization pattern) reads through. QLinearConv and
 * QLinearMatMul are that Conv / MatMul plus the bias, requantized by a
 * GG_OP_QUANTIZE that multiplies by x_scale * w_scale / y_scale as ONNX
 * Runtime computes it. DynamicQuantizeLinear is the reductions and scalar
 * arithmetic of its definition, then a GG_OP_QUANTIZE. */

/* The GG_CAST_* kind of a quantized ONNX element type; -1 for others. */
static int quant_kind_of(int et) {
  switch (et) {
  case ONNX__TENSOR_PROTO__DATA_TYPE__UINT8: return GG_CAST_U8;
  case ONNX__TENSOR_PROTO__DATA_TYPE__INT8: return GG_CAST_I8;
  case ONNX__TENSOR_PROTO__DATA_TYPE__UINT16: return GG_CAST_U16;
  case ONNX__TENSOR_PROTO__DATA_TYPE__INT16: return GG_CAST_I16;
  default: return -1;
  }
}

/* The ONNX element type of tensor t, as far as the import knows it
 * (initializers, graph inputs, the outputs of quantizing nodes); 0 unknown. */
static int elem_type(octx *c, int t) {
  return t >= 0 ? c->g->tensors[t].src_type : 0;
}

/* Emits op(ins) into a new tensor base + suffix of dtype dt and rank r. */
static int emit_tmp(octx *c, const onode *np, gg_op op, const char *suffix, const int *ins, int n,
                    const gg_attrs *a, gg_dtype dt, int r, int *y) {
  int rc, in[3]; /* ins may point at *y */
  memcpy(in, ins, (size_t)n * sizeof *in);
  if ((*y = tmp_tensor(c, node_label(np), suffix, &rc)) < 0) return rc;
  c->dt[*y] = (int)dt, c->rank[*y] = r;
  int one = 1; /* one element in: one out (these are all elementwise or reductions to one) */
  for (int k = 0; k < n; k++)
    one &= is_scalar(c, in[k]);
  c->g->tensors[*y].scalar = one || (r == 0 && (op == GG_OP_REDUCE_MIN || op == GG_OP_REDUCE_MAX));
  return emit(c, op, c->op_name, node_label(np), in, n, y, 1, a, NULL);
}

/* Evaluates op(ins) now (all constants) into a constant holding output 0's
 * name; readers mapped later get it, outs[0] an Identity of it (as
 * h_constant does). */
static int fold_now(octx *c, const onode *np, gg_op op, const int *ins, int n_in, const gg_attrs *a,
                    int *outs) {
  gg_tval v[4];
  int in_ix[3] = {0, 1, 2}, out_ix = 3, rc, t;
  gg_node nd;
  memset(v, 0, sizeof v);
  memset(&nd, 0, sizeof nd);
  nd.op = op, nd.name = (char *)node_label(np), nd.src_op = c->op_name;
  nd.n_in = n_in, nd.n_out = 1, nd.in = in_ix, nd.out = &out_ix, nd.a = *a;
  for (int k = 0; k < n_in; k++)
    v[k] = c->g->tensors[ins[k]].v;
  char msg[400];
  if ((rc = gg__op_infer(&nd, v, msg, sizeof msg)))
    return gg_errf(c->err, c->errlen, rc, "%s: %s", c->file, msg);
  if (!(v[3].data = gg__const_alloc((size_t)v[3].nelem * 4))) return GG_ENOMEM;
  if ((rc = gg__op_run(&nd, v, NULL))) {
    gg__const_free(v[3].data);
    return NODE_ERR(rc, "evaluating it on its constant inputs failed");
  }
  if ((rc = add_const(c, np->output[0], v[3].dtype, v[3].shape, v[3].ndim, v[3].data, &t)))
    return rc;
  c->rank[outs[0]] = c->rank[t], c->dt[outs[0]] = c->dt[t];
  if ((rc = emit(c, GG_OP_IDENTITY, c->op_name, node_label(np), &t, 1, outs, 1, NULL, NULL)))
    return rc;
  return map_put(c, np->output[0], t);
}

/* Scale (input k) and zero point (input k + 1, optional) of a quantizing
 * node: tensors in *s, *z (-1 absent), both checked readable. */
static int quant_params(octx *c, const onode *np, size_t k, int *s, int *z) {
  int rc;
  *z = -1;
  if ((rc = X(c, np, k, s))) return rc;
  if (in_t(c, np, k + 1) >= 0 && (rc = X(c, np, k + 1, z))) return rc;
  if (c->dt[*s] == GG_DT_I32) return NODE_ERR(GG_EPARSE, "input %zu (the scale) is not float", k);
  if (*z >= 0 && c->dt[*z] == GG_DT_F32)
    return NODE_ERR(GG_EUNSUPPORTED, "input %zu (the zero point) is float: float 8 types are "
                                     "not supported",
                    k + 1);
  return 0;
}

/* The axis and block_size attributes QuantizeLinear / DequantizeLinear take. */
static int quant_axis_attr(octx *c, const onode *np, gg_attrs *a) {
  if (attr_i(np, "block_size", 0) != 0)
    return NODE_ERR(GG_EUNSUPPORTED, "blocked quantization (block_size) is not supported");
  AXIS_CHECK(attr_i(np, "axis", 1));
  a->axis = (int)attr_i(np, "axis", 1);
  return 0;
}

/* Float x (a Cast of it when it is an integer tensor), minus the zero point
 * z (-1: none) when there is one; *y gets the result. */
static int minus_zero_point(octx *c, const onode *np, int x, int z, const char *what, int *y) {
  int rc, r = c->rank[x];
  gg_attrs a;
  memset(&a, 0, sizeof a);
  a.to = GG_DT_F32;
  char sfx[64];
  snprintf(sfx, sizeof sfx, "/%s_float", what);
  int p = c->g->tensors[x].producer;
  const gg_node *qn = p >= 0 ? &c->g->nodes[p] : NULL;
  if (z >= 0 && qn && qn->op == GG_OP_QUANTIZE && qn->n_in == 3 && qn->in[2] == z &&
      !(qn->a.flags & 1)) {
    /* x = Quantize(v, scale, z) (DynamicQuantizeLinear's): x - z straight from
     * v, one pass; the Quantize itself stays only if something else reads x */
    int ins[3] = {qn->in[0], qn->in[1], qn->in[2]};
    gg_attrs qa = qn->a;
    qa.flags |= 4;
    return emit_tmp(c, np, GG_OP_QUANTIZE, sfx, ins, 3, &qa, GG_DT_F32, r, y);
  }
  if (z >= 0 && is_scalar(c, z) && c->dt[x] == GG_DT_I32) {
    /* one pass: Dequantize with scale 1, per tensor (flags bit 1: layout.c) */
    int one, ins[3] = {x, -1, z};
    char nm[1200];
    snprintf(nm, sizeof nm, "%.1000s/%s_unit_scale", node_label(np), what);
    if ((rc = const_f32s(c, nm, 1.0f, &one))) return rc;
    ins[1] = one;
    memset(&a, 0, sizeof a);
    a.flags = 2;
    return emit_tmp(c, np, GG_OP_DEQUANTIZE, sfx, ins, 3, &a, GG_DT_F32, r, y);
  }
  if ((rc = emit_tmp(c, np, GG_OP_CAST, sfx, &x, 1, &a, GG_DT_F32, r, y))) return rc;
  if (z < 0) return 0;
  int zf, ins[2];
  snprintf(sfx, sizeof sfx, "/%s_zero_point_float", what);
  if ((rc = emit_tmp(c, np, GG_OP_CAST, sfx, &z, 1, &a, GG_DT_F32, c->rank[z], &zf))) return rc;
  ins[0] = *y, ins[1] = zf;
  snprintf(sfx, sizeof sfx, "/%s_centered", what);
  return emit_tmp(c, np, GG_OP_SUB, sfx, ins, 2, NULL, GG_DT_F32, r, y);
}

/* The constant integer weights w less their zero point z (-1: none; one
 * value, or one per index of w's axis ax) as a new float constant *out. */
static int weights_minus_zero_point(octx *c, const onode *np, int w, int z, int ax,
                                    const char *what, int *out) {
  const gg_tensor *wt = cst(c, w), *zt = z >= 0 ? cst(c, z) : NULL;
  if (!wt || wt->v.dtype != GG_DT_I32 || (z >= 0 && (!zt || zt->v.dtype != GG_DT_I32)))
    return NODE_ERR(GG_EUNSUPPORTED, "the %s and their zero point must be constant integers",
                    what);
  int64_t ch = 1, inner = 1, nz = zt ? zt->v.nelem : 1;
  if (ax < 0) ax += wt->v.ndim;
  if (nz != 1) {
    if (ax < 0 || ax >= wt->v.ndim || zt->v.ndim != 1 || nz != wt->v.shape[ax])
      return NODE_ERR(GG_EPARSE, "the %s zero point has %lld values: 1 or one per index of axis "
                                 "%d expected",
                      what, (long long)nz, ax);
    ch = nz;
    for (int d = ax + 1; d < wt->v.ndim; d++)
      inner *= wt->v.shape[d];
  }
  float *dst = gg__const_alloc((size_t)wt->v.nelem * 4);
  if (!dst) return GG_ENOMEM;
  const int32_t *src = wt->v.data, *zp = zt ? zt->v.data : NULL;
  for (int64_t i = 0; i < wt->v.nelem; i++)
    dst[i] = (float)((int64_t)src[i] - (zp ? zp[ch > 1 ? (i / inner) % ch : 0] : 0));
  int64_t sh[GG_MAX_DIMS];
  int nd = wt->v.ndim;
  memcpy(sh, wt->v.shape, sizeof sh);
  char nm[1200];
  snprintf(nm, sizeof nm, "%.1000s/minus_zero_point", c->g->tensors[w].name);
  int rc = add_const(c, nm, GG_DT_F32, sh, nd, dst, out);
  return rc;
}

/* A scalar float constant, or one per channel, a[i] * b[i] / y (ONNX
 * Runtime's requantization multiplier, in float32 as it computes it). */
static int requant_scale(octx *c, const onode *np, int as, int bs, int ys, int *out) {
  const gg_tensor *at = cst(c, as), *bt = cst(c, bs), *yt = cst(c, ys);
  if (!at || !bt || !yt || at->v.nelem != 1 || yt->v.nelem != 1)
    return NODE_ERR(GG_EUNSUPPORTED, "the scales must be constants (one value each, the "
                                     "weights' may have one per channel)");
  int64_t n = bt->v.nelem, sh[1] = {n};
  float *m = gg__const_alloc((size_t)n * 4);
  if (!m) return GG_ENOMEM;
  float a = ((float *)at->v.data)[0], y = ((float *)yt->v.data)[0];
  for (int64_t i = 0; i < n; i++) {
    float ab = a * ((float *)bt->v.data)[i];
    m[i] = ab / y;
  }
  char nm[1200];
  snprintf(nm, sizeof nm, "%.1000s/requant_scale", node_label(np));
  return add_const(c, nm, GG_DT_F32, sh, bt->v.nelem == 1 ? 0 : 1, m, out);
}

/* The I32 result of an integer op computed in float: Cast flagged exact. */
static int exact_int(octx *c, const onode *np, int yf, int out) {
  gg_attrs a;
  memset(&a, 0, sizeof a);
  a.to = GG_DT_I32, a.flags = 1;
  c->dt[out] = GG_DT_I32, c->rank[out] = c->rank[yf];
  c->g->tensors[out].src_type = ONNX__TENSOR_PROTO__DATA_TYPE__INT32;
  return emit(c, GG_OP_CAST, c->op_name, node_label(np), &yf, 1, &out, 1, &a, NULL);
}

/* Requantizes the float accumulator yf into out: rint(yf * m) + zero point. */
static int requantize(octx *c, const onode *np, int yf, int m, int yz, int axis, int out) {
  int kind = quant_kind_of(elem_type(c, yz));
  if (kind < 0)
    return NODE_ERR(GG_EUNSUPPORTED, "the output zero point must be UINT8 or INT8, is %s",
                    onnx_dtype_name(elem_type(c, yz)));
  gg_attrs a;
  memset(&a, 0, sizeof a);
  a.cast_kind = kind, a.flags = 1 | (is_scalar(c, m) && is_scalar(c, yz)) << 1, a.axis = axis;
  int ins[3] = {yf, m, yz};
  c->dt[out] = GG_DT_I32, c->rank[out] = c->rank[yf];
  c->g->tensors[out].src_type = elem_type(c, yz);
  return emit(c, GG_OP_QUANTIZE, c->op_name, node_label(np), ins, 3, &out, 1, &a, NULL);
}

static int h_quantize(octx *c, const onode *np, const opdef *d, int *outs) {
  int x, s, z, rc;
  (void)d;
  if ((rc = X(c, np, 0, &x)) || (rc = quant_params(c, np, 1, &s, &z))) return rc;
  gg_attrs a;
  memset(&a, 0, sizeof a);
  if ((rc = quant_axis_attr(c, np, &a))) return rc;
  int64_t od = attr_i(np, "output_dtype", 0);
  int et = z >= 0 ? elem_type(c, z) : od ? (int)od : ONNX__TENSOR_PROTO__DATA_TYPE__UINT8;
  if (z >= 0 && od && od != et)
    return NODE_ERR(GG_EPARSE, "output_dtype %s differs from the zero point's type %s",
                    onnx_dtype_name((int)od), onnx_dtype_name(et));
  if ((a.cast_kind = quant_kind_of(et)) < 0)
    return NODE_ERR(GG_EUNSUPPORTED, "quantizing to %s is not supported (UINT8, INT8, UINT16, "
                                     "INT16)",
                    et ? onnx_dtype_name(et) : "a type the import cannot tell");
  if (c->dt[x] == GG_DT_I32 && (rc = minus_zero_point(c, np, x, -1, "x", &x))) return rc;
  if (is_scalar(c, s) && (z < 0 || is_scalar(c, z))) a.flags = 2; /* per tensor */
  int ins[3] = {x, s, z};
  c->rank[outs[0]] = c->rank[x], c->dt[outs[0]] = GG_DT_I32;
  c->g->tensors[outs[0]].src_type = et;
  return emit(c, GG_OP_QUANTIZE, c->op_name, node_label(np), ins, z >= 0 ? 3 : 2, outs, 1, &a,
              NULL);
}

static int h_dequantize(octx *c, const onode *np, const opdef *d, int *outs) {
  int x, s, z, rc;
  (void)d;
  if ((rc = X(c, np, 0, &x)) || (rc = quant_params(c, np, 1, &s, &z))) return rc;
  if (c->dt[x] == GG_DT_F32)
    return NODE_ERR(GG_EUNSUPPORTED, "input 0 is float: float 8 types are not supported");
  gg_attrs a;
  memset(&a, 0, sizeof a);
  if ((rc = quant_axis_attr(c, np, &a))) return rc;
  int ins[3] = {x, s, z}, n = z >= 0 ? 3 : 2;
  if (is_scalar(c, s) && (z < 0 || is_scalar(c, z))) a.flags = 2; /* per tensor */
  if (cst(c, x) && cst(c, s) && (z < 0 || cst(c, z)) && cst(c, x)->v.nelem <= FOLD_NOW_MAX)
    return fold_now(c, np, GG_OP_DEQUANTIZE, ins, n, &a, outs);
  c->rank[outs[0]] = c->rank[x], c->dt[outs[0]] = GG_DT_F32;
  return emit(c, GG_OP_DEQUANTIZE, c->op_name, node_label(np), ins, n, outs, 1, &a, NULL);
}

static int h_dynamic_quantize(octx *c, const onode *np, const opdef *d, int *outs) {
  int x, rc, mn, mx, zero, one, q255, rng, ins[3];
  (void)d;
  if ((rc = X(c, np, 0, &x))) return rc;
  if (np->n_output > 3) return NODE_ERR(GG_EPARSE, "has %d outputs (3)", (int)np->n_output);
  gg_attrs a;
  memset(&a, 0, sizeof a);
  char nm[1200];
  snprintf(nm, sizeof nm, "%.1000s/zero", node_label(np));
  if ((rc = const_f32s(c, nm, 0.0f, &zero))) return rc;
  snprintf(nm, sizeof nm, "%.1000s/one", node_label(np));
  if ((rc = const_f32s(c, nm, 1.0f, &one))) return rc;
  snprintf(nm, sizeof nm, "%.1000s/qmax", node_label(np));
  if ((rc = const_f32s(c, nm, 255.0f, &q255))) return rc;
  /* the range of x, widened to hold 0 */
  if ((rc = emit_tmp(c, np, GG_OP_REDUCE_MIN, "/min", &x, 1, &a, GG_DT_F32, 0, &mn)) ||
      (rc = emit_tmp(c, np, GG_OP_REDUCE_MAX, "/max", &x, 1, &a, GG_DT_F32, 0, &mx)))
    return rc;
  ins[0] = mn, ins[1] = zero;
  if ((rc = emit_tmp(c, np, GG_OP_MINIMUM, "/min0", ins, 2, NULL, GG_DT_F32, 0, &mn))) return rc;
  ins[0] = mx;
  if ((rc = emit_tmp(c, np, GG_OP_MAXIMUM, "/max0", ins, 2, NULL, GG_DT_F32, 0, &mx))) return rc;
  ins[0] = mx, ins[1] = mn;
  if ((rc = emit_tmp(c, np, GG_OP_SUB, "/range", ins, 2, NULL, GG_DT_F32, 0, &rng))) return rc;
  /* y_scale: range / 255, or 1 when x is all zeros (ONNX's reference, ONNX Runtime) */
  int sc, empty, s = np->n_output > 1 && outs[1] >= 0 ? outs[1] : -1;
  ins[0] = rng, ins[1] = q255;
  if ((rc = emit_tmp(c, np, GG_OP_DIV, "/range_255", ins, 2, NULL, GG_DT_F32, 0, &sc))) return rc;
  ins[0] = rng, ins[1] = zero;
  if ((rc = emit_tmp(c, np, GG_OP_EQUAL, "/empty", ins, 2, NULL, GG_DT_I32, 0, &empty))) return rc;
  ins[0] = empty, ins[1] = one, ins[2] = sc;
  if (s < 0 && (s = tmp_tensor(c, node_label(np), "/scale", &rc)) < 0) return rc;
  c->dt[s] = GG_DT_F32, c->rank[s] = 0, c->g->tensors[s].scalar = 1;
  if ((rc = emit(c, GG_OP_WHERE, c->op_name, node_label(np), ins, 3, &s, 1, NULL, NULL))) return rc;
  /* y_zero_point: rint(clip(0 - min / scale, 0, 255)) */
  int zf, z = np->n_output > 2 && outs[2] >= 0 ? outs[2] : -1;
  ins[0] = mn, ins[1] = s;
  if ((rc = emit_tmp(c, np, GG_OP_DIV, "/min_scaled", ins, 2, NULL, GG_DT_F32, 0, &zf)) ||
      (rc = emit_tmp(c, np, GG_OP_NEG, "/zp_initial", &zf, 1, NULL, GG_DT_F32, 0, &zf)))
    return rc;
  a.clip_min = 0.0f, a.clip_max = 255.0f;
  if ((rc = emit_tmp(c, np, GG_OP_CLIP, "/zp_clipped", &zf, 1, &a, GG_DT_F32, 0, &zf))) return rc;
  memset(&a, 0, sizeof a);
  a.fn = GG_UX_ROUND;
  if ((rc = emit_tmp(c, np, GG_OP_UNARY_X, "/zp_rounded", &zf, 1, &a, GG_DT_F32, 0, &zf)))
    return rc;
  memset(&a, 0, sizeof a);
  a.to = GG_DT_I32, a.cast_kind = GG_CAST_U8;
  if (z < 0 && (z = tmp_tensor(c, node_label(np), "/zero_point", &rc)) < 0) return rc;
  c->dt[z] = GG_DT_I32, c->rank[z] = 0, c->g->tensors[z].scalar = 1;
  c->g->tensors[z].src_type = ONNX__TENSOR_PROTO__DATA_TYPE__UINT8;
  if ((rc = emit(c, GG_OP_CAST, c->op_name, node_label(np), &zf, 1, &z, 1, &a, NULL))) return rc;
  /* y = clip(rint(x / scale) + zero point, 0, 255) */
  memset(&a, 0, sizeof a);
  a.cast_kind = GG_CAST_U8, a.flags = 2;
  ins[0] = x, ins[1] = s, ins[2] = z;
  c->dt[outs[0]] = GG_DT_I32, c->rank[outs[0]] = c->rank[x];
  c->g->tensors[outs[0]].src_type = ONNX__TENSOR_PROTO__DATA_TYPE__UINT8;
  return emit(c, GG_OP_QUANTIZE, c->op_name, node_label(np), ins, 3, outs, 1, &a, NULL);
}


/* Input k of an integer op as float less its zero point (input kz, may be
 * absent): weights (constant) become a float constant, zero point per index
 * of axis wax; a computed tensor a Cast and a Sub (its zero point one value,
 * or for a matrix's rows, [M] made [M, 1]). */
static int int_operand(octx *c, const onode *np, size_t k, size_t kz, int wax, const char *what,
                       int *out) {
  int v, z = -1, rc;
  if ((rc = X(c, np, k, &v))) return rc;
  if (in_t(c, np, kz) >= 0 && (rc = X(c, np, kz, &z))) return rc;
  if (c->dt[v] == GG_DT_F32 || (z >= 0 && c->dt[z] == GG_DT_F32))
    return NODE_ERR(GG_EPARSE, "input %zu ('%s') is float: an integer tensor expected", k,
                    np->input[k]);
  if (cst(c, v)) return weights_minus_zero_point(c, np, v, z, wax, what, out);
  const gg_tensor *zt = z >= 0 ? cst(c, z) : NULL;
  if (z >= 0 && wax == -1 && c->rank[z] == 1) /* [N] per column of a computed B: broadcasts */
    return minus_zero_point(c, np, v, z, what, out);
  if (z >= 0 && !zt && c->rank[z] == 0) /* a computed scalar (DynamicQuantizeLinear's) */
    return minus_zero_point(c, np, v, z, what, out);
  if (z >= 0 && (!zt || zt->v.nelem != 1)) {
    /* a per-row zero point of a MatMulInteger's A [M, K]: [M] -> [M, 1] */
    if (!zt || wax != -2 || zt->v.ndim != 1)
      return NODE_ERR(GG_EUNSUPPORTED, "the zero point of input %zu must be one constant value",
                      k);
    int32_t sh[2] = {(int32_t)zt->v.shape[0], 1};
    int zr;
    if ((zr = tmp_tensor(c, node_label(np), "/a_zero_point_rows", &rc)) < 0 ||
        (rc = reshape_const(c, np, z, sh, 2, zr)))
      return rc;
    c->dt[zr] = GG_DT_I32;
    z = zr;
  }
  return minus_zero_point(c, np, v, z, what, out);
}

static int h_conv_integer(octx *c, const onode *np, const opdef *d, int *outs) {
  int x, w, rc, yf;
  (void)d;
  if (conv_is_3d(c, np))
    return NODE_ERR(GG_EUNSUPPORTED, "a 3-D window is not supported (1-D and 2-D)");
  if (!cst(c, in_t(c, np, 1)))
    return NODE_ERR(GG_EUNSUPPORTED, "the weights (input 1) must be constant integers");
  if ((rc = int_operand(c, np, 0, 2, 0, "x", &x)) || (rc = int_operand(c, np, 1, 3, 0, "w", &w)))
    return rc;
  if ((yf = tmp_tensor(c, node_label(np), "/accumulator", &rc)) < 0) return rc;
  c->dt[yf] = GG_DT_F32;
  if ((rc = conv_build(c, np, x, w, -1, yf))) return rc;
  return exact_int(c, np, yf, outs[0]);
}

static int h_matmul_integer(octx *c, const onode *np, const opdef *d, int *outs) {
  int A, B, rc, yf;
  (void)d;
  if ((rc = int_operand(c, np, 0, 2, -2, "a", &A)) || (rc = int_operand(c, np, 1, 3, -1, "b", &B)))
    return rc;
  if ((yf = tmp_tensor(c, node_label(np), "/accumulator", &rc)) < 0) return rc;
  if ((rc = matmul_build(c, np, A, B, yf))) return rc;
  return exact_int(c, np, yf, outs[0]);
}

static int h_qlinear_conv(octx *c, const onode *np, const opdef *d, int *outs) {
  int x, w, b = -1, m, yf, rc;
  (void)d;
  if (conv_is_3d(c, np))
    return NODE_ERR(GG_EUNSUPPORTED, "a 3-D window is not supported (1-D and 2-D)");
  if (np->n_input < 8) return NODE_ERR(GG_EPARSE, "has %d inputs (8 or 9)", (int)np->n_input);
  if (!cst(c, in_t(c, np, 3)))
    return NODE_ERR(GG_EUNSUPPORTED, "the weights (input 3) must be constant integers");
  if ((rc = int_operand(c, np, 0, 2, 0, "x", &x)) || (rc = int_operand(c, np, 3, 5, 0, "w", &w)))
    return rc;
  int xs = in_t(c, np, 1), ws = in_t(c, np, 4), ys = in_t(c, np, 6), yz;
  if ((rc = X(c, np, 7, &yz)) || (rc = requant_scale(c, np, xs, ws, ys, &m))) return rc;
  int bi = in_t(c, np, 8);
  if (bi >= 0) { /* the int32 bias as float (exact below 2^24) */
    const gg_tensor *bt = cst(c, bi);
    if (!bt || bt->v.dtype != GG_DT_I32)
      return NODE_ERR(GG_EUNSUPPORTED, "the bias (input 8) must be a constant int32 vector");
    if ((rc = weights_minus_zero_point(c, np, bi, -1, 0, "bias", &b))) return rc;
  }
  if ((yf = tmp_tensor(c, node_label(np), "/accumulator", &rc)) < 0) return rc;
  c->dt[yf] = GG_DT_F32;
  if ((rc = conv_build(c, np, x, w, b, yf))) return rc;
  return requantize(c, np, yf, m, yz, 1, outs[0]);
}

static int h_qlinear_matmul(octx *c, const onode *np, const opdef *d, int *outs) {
  int A, B, m, yf, yz, rc;
  (void)d;
  if (np->n_input != 8) return NODE_ERR(GG_EPARSE, "has %d inputs (8)", (int)np->n_input);
  if ((rc = int_operand(c, np, 0, 2, -2, "a", &A)) || (rc = int_operand(c, np, 3, 5, -1, "b", &B)))
    return rc;
  if ((rc = X(c, np, 7, &yz)) ||
      (rc = requant_scale(c, np, in_t(c, np, 1), in_t(c, np, 4), in_t(c, np, 6), &m)))
    return rc;
  if ((yf = tmp_tensor(c, node_label(np), "/accumulator", &rc)) < 0) return rc;
  if ((rc = matmul_build(c, np, A, B, yf))) return rc;
  return requantize(c, np, yf, m, yz, -1, outs[0]);
}

static const opdef k_ops[] = {
    {"Relu", h_unary, GG_OP_RELU, ""},
    {"LeakyRelu", h_unary, GG_OP_LEAKY_RELU, "alpha"},
    {"Sigmoid", h_unary, GG_OP_SIGMOID, ""},
    {"Abs", h_unary, GG_OP_ABS, ""},
    {"Sqrt", h_unary, GG_OP_SQRT, ""},
    {"Exp", h_unary, GG_OP_EXP, ""},
    {"Log", h_unary, GG_OP_LOG, ""},
    {"Neg", h_unary, GG_OP_NEG, ""},
    {"Reciprocal", h_unary, GG_OP_RECIPROCAL, ""},
    {"Erf", h_unary, GG_OP_ERF, ""},
    {"Tanh", h_unary, GG_OP_TANH, ""},
    {"Softplus", h_unary, GG_OP_SOFTPLUS, ""},
    {"Mish", h_mish, GG_OP_MUL, ""},
    {"HardSigmoid", h_unary, GG_OP_HARD_SIGMOID, "alpha,beta"},
    {"HardSwish", h_unary, GG_OP_HARD_SWISH, ""},
    {"Gelu", h_unary, GG_OP_GELU, "approximate"},
    {"Not", h_unary, GG_OP_NOT, ""},
    {"Identity", h_unary, GG_OP_IDENTITY, ""},
    {"Dropout", h_unary, GG_OP_IDENTITY, "ratio,seed,is_test"},
    {"Add", h_binary, GG_OP_ADD, ""},
    {"Sum", h_binary, GG_OP_ADD, ""},
    {"Sub", h_binary, GG_OP_SUB, ""},
    {"Mul", h_binary, GG_OP_MUL, ""},
    {"Div", h_binary, GG_OP_DIV, ""},
    {"Pow", h_binary, GG_OP_POW, ""},
    {"Max", h_binary, GG_OP_MAXIMUM, ""},
    {"Min", h_binary, GG_OP_MINIMUM, ""},
    {"PRelu", h_binary, GG_OP_PRELU, ""},
    {"Equal", h_binary, GG_OP_EQUAL, ""},
    {"Greater", h_binary, GG_OP_GREATER, ""},
    {"Less", h_binary, GG_OP_LESS, ""},
    {"Where", h_binary, GG_OP_WHERE, ""},
    {"Clip", h_clip, GG_OP_CLIP, "min,max"},
    {"Cast", h_cast, GG_OP_CAST, "to,saturate"},
    {"Softmax", h_softmax, GG_OP_SOFTMAX, "axis"},
    {"LogSoftmax", h_softmax, GG_OP_LOG_SOFTMAX, "axis"},
    {"Conv", h_conv, GG_OP_CONV2D, "auto_pad,dilations,group,kernel_shape,pads,strides"},
    {"ConvTranspose", h_conv_transpose, GG_OP_CONV_TRANSPOSE,
     "auto_pad,dilations,group,kernel_shape,output_padding,output_shape,pads,strides"},
    {"MaxPool", h_pool, GG_OP_MAXPOOL,
     "auto_pad,ceil_mode,dilations,kernel_shape,pads,storage_order,strides"},
    {"AveragePool", h_pool, GG_OP_AVGPOOL,
     "auto_pad,ceil_mode,count_include_pad,dilations,kernel_shape,pads,strides"},
    {"GlobalAveragePool", h_global_pool, GG_OP_MEAN, ""},
    {"GlobalMaxPool", h_global_pool, GG_OP_REDUCE_MAX, ""},
    {"BatchNormalization", h_batchnorm, GG_OP_MUL,
     "epsilon,momentum,spatial,is_test,training_mode"},
    {"Gemm", h_gemm, GG_OP_MATMUL, "alpha,beta,transA,transB"},
    {"MatMul", h_matmul, GG_OP_BATCH_MATMUL, ""},
    {"Concat", h_concat, GG_OP_CONCAT, "axis"},
    {"Split", h_split, GG_OP_SPLITV, "axis,num_outputs,split"},
    {"Reshape", h_reshape, GG_OP_RESHAPE, "allowzero"},
    {"Flatten", h_flatten, GG_OP_RESHAPE, "axis"},
    {"Squeeze", h_squeeze, GG_OP_SQUEEZE, "axes"},
    {"Unsqueeze", h_unsqueeze, GG_OP_RESHAPE, "axes"},
    {"Transpose", h_transpose, GG_OP_TRANSPOSE, "perm"},
    {"ReduceMean", h_reduce, GG_OP_MEAN, "axes,keepdims,noop_with_empty_axes"},
    {"ReduceSum", h_reduce, GG_OP_SUM, "axes,keepdims,noop_with_empty_axes"},
    {"ReduceMax", h_reduce, GG_OP_REDUCE_MAX, "axes,keepdims,noop_with_empty_axes"},
    {"ReduceMin", h_reduce, GG_OP_REDUCE_MIN, "axes,keepdims,noop_with_empty_axes"},
    {"ReduceL2", h_reduce, GG_OP_REDUCE_L2, "axes,keepdims,noop_with_empty_axes"},
    {"Pad", h_pad, GG_OP_PAD, "mode,pads,value"},
    {"Constant", h_constant, GG_OP_CONST, "value,value_float,value_floats,value_int,value_ints"},
    {"Shape", h_shape, GG_OP_SHAPE, "start,end"},
    {"Size", h_size, GG_OP_SHAPE, ""},
    {"Slice", h_slice, GG_OP_SLICE, "starts,ends,axes"},
    {"Gather", h_gather, GG_OP_GATHER, "axis"},
    {"Expand", h_direct, GG_OP_EXPAND, ""},
    {"Tile", h_direct, GG_OP_TILE, ""},
    {"Range", h_direct, GG_OP_RANGE, ""},
    {"ConstantOfShape", h_direct, GG_OP_CONSTANT_OF_SHAPE, "value"},
    {"LayerNormalization", h_norm, GG_OP_LAYER_NORM, "axis,epsilon,stash_type"},
    {"InstanceNormalization", h_norm, GG_OP_INSTANCE_NORM, "epsilon"},
    {"GroupNormalization", h_norm, GG_OP_GROUP_NORM, "epsilon,num_groups,stash_type"},
    {"Resize", h_resize, GG_OP_RESIZE,
     "antialias,axes,coordinate_transformation_mode,cubic_coeff_a,exclude_outside,extrapolation_"
     "value,keep_aspect_ratio_policy,mode,nearest_mode"},
    {"Upsample", h_resize, GG_OP_RESIZE, "mode,scales"},
    {"DepthToSpace", h_depth_to_space, GG_OP_DEPTH_TO_SPACE, "blocksize,mode"},
    {"SpaceToDepth", h_depth_to_space, GG_OP_RESHAPE, "blocksize"},
    {"Einsum", h_einsum, GG_OP_BATCH_MATMUL, "equation"},
    {"Sin", h_xunary, GG_OP_UNARY_X, ""},
    {"Cos", h_xunary, GG_OP_UNARY_X, ""},
    {"Tan", h_xunary, GG_OP_UNARY_X, ""},
    {"Asin", h_xunary, GG_OP_UNARY_X, ""},
    {"Acos", h_xunary, GG_OP_UNARY_X, ""},
    {"Atan", h_xunary, GG_OP_UNARY_X, ""},
    {"Sinh", h_xunary, GG_OP_UNARY_X, ""},
    {"Cosh", h_xunary, GG_OP_UNARY_X, ""},
    {"Asinh", h_xunary, GG_OP_UNARY_X, ""},
    {"Acosh", h_xunary, GG_OP_UNARY_X, ""},
    {"Atanh", h_xunary, GG_OP_UNARY_X, ""},
    {"Floor", h_xunary, GG_OP_UNARY_X, ""},
    {"Ceil", h_xunary, GG_OP_UNARY_X, ""},
    {"Round", h_xunary, GG_OP_UNARY_X, ""},
    {"Sign", h_xunary, GG_OP_UNARY_X, ""},
    {"IsNaN", h_xunary, GG_OP_UNARY_X, ""},
    {"IsInf", h_xunary, GG_OP_UNARY_X, "detect_negative,detect_positive"},
    {"Elu", h_xunary, GG_OP_UNARY_X, "alpha"},
    {"Selu", h_xunary, GG_OP_UNARY_X, "alpha,gamma"},
    {"Celu", h_xunary, GG_OP_UNARY_X, "alpha"},
    {"Softsign", h_xunary, GG_OP_UNARY_X, ""},
    {"ThresholdedRelu", h_xunary, GG_OP_UNARY_X, "alpha"},
    {"Shrink", h_xunary, GG_OP_UNARY_X, "bias,lambd"},
    {"Mod", h_xbinary, GG_OP_BINARY_X, "fmod"},
    {"GreaterOrEqual", h_xbinary, GG_OP_BINARY_X, ""},
    {"LessOrEqual", h_xbinary, GG_OP_BINARY_X, ""},
    {"And", h_xbinary, GG_OP_BINARY_X, ""},
    {"Or", h_xbinary, GG_OP_BINARY_X, ""},
    {"Xor", h_xbinary, GG_OP_BINARY_X, ""},
    {"Mean", h_mean, GG_OP_DIV, ""},
    {"ReduceProd", h_reduce, GG_OP_REDUCE_X, "axes,keepdims,noop_with_empty_axes"},
    {"ReduceSumSquare", h_reduce, GG_OP_REDUCE_X, "axes,keepdims,noop_with_empty_axes"},
    {"ReduceL1", h_reduce, GG_OP_REDUCE_X, "axes,keepdims,noop_with_empty_axes"},
    {"ReduceLogSum", h_reduce, GG_OP_REDUCE_X, "axes,keepdims,noop_with_empty_axes"},
    {"ReduceLogSumExp", h_reduce, GG_OP_REDUCE_X, "axes,keepdims,noop_with_empty_axes"},
    {"ArgMax", h_xdirect, GG_OP_ARG_X, "axis,keepdims,select_last_index"},
    {"ArgMin", h_xdirect, GG_OP_ARG_X, "axis,keepdims,select_last_index"},
    {"CumSum", h_xdirect, GG_OP_CUMSUM, "exclusive,reverse"},
    {"GatherElements", h_xdirect, GG_OP_GATHER_ELEMENTS, "axis"},
    {"GatherND", h_xdirect, GG_OP_GATHER_ND, "batch_dims"},
    {"Trilu", h_xdirect, GG_OP_TRILU, "upper"},
    {"Hardmax", h_xdirect, GG_OP_HARDMAX, "axis"},
    {"LRN", h_xdirect, GG_OP_LRN, "alpha,beta,bias,size"},
    {"TopK", h_xdirect, GG_OP_TOPK, "axis,k,largest,sorted"},
    {"OneHot", h_xdirect, GG_OP_ONE_HOT, "axis"},
    {"EyeLike", h_xdirect, GG_OP_EYE_LIKE, "dtype,k"},
    {"ScatterND", h_xdirect, GG_OP_SCATTER_ND, "reduction"},
    {"ScatterElements", h_xdirect, GG_OP_SCATTER_ELEMENTS, "axis,reduction"},
    {"QuantizeLinear", h_quantize, GG_OP_QUANTIZE, "axis,block_size,output_dtype,saturate"},
    {"DequantizeLinear", h_dequantize, GG_OP_DEQUANTIZE, "axis,block_size"},
    {"DynamicQuantizeLinear", h_dynamic_quantize, GG_OP_QUANTIZE, ""},
    {"ConvInteger", h_conv_integer, GG_OP_CONV2D,
     "auto_pad,dilations,group,kernel_shape,pads,strides"},
    {"MatMulInteger", h_matmul_integer, GG_OP_BATCH_MATMUL, ""},
    {"QLinearConv", h_qlinear_conv, GG_OP_CONV2D,
     "auto_pad,dilations,group,kernel_shape,pads,strides"},
    {"QLinearMatMul", h_qlinear_matmul, GG_OP_BATCH_MATMUL, ""},
    {"Scatter", h_xdirect, GG_OP_SCATTER_ELEMENTS, "axis"},
};

const char *gg__onnx_op_name(size_t i) {
  return i < sizeof k_ops / sizeof k_ops[0] ? k_ops[i].name : NULL;
}

/* Parameters that moved from an attribute to an input at some opset: the
 * form that does not match the model's opset is refused, never ignored. */
static const struct moved {
  const char *op, *attr;
  int input, since;
} k_moved[] = {
    {"Clip", "min", 1, 11},       {"Clip", "max", 2, 11},        {"Pad", "pads", 1, 11},
    {"Pad", "value", 2, 11},      {"Slice", "starts", 1, 10},    {"Slice", "ends", 2, 10},
    {"Slice", "axes", 3, 10},     {"Squeeze", "axes", 1, 13},    {"Unsqueeze", "axes", 1, 13},
    {"ReduceSum", "axes", 1, 13}, {"ReduceMean", "axes", 1, 18}, {"ReduceMax", "axes", 1, 18},
    {"ReduceMin", "axes", 1, 18}, {"ReduceL2", "axes", 1, 18},   {"Split", "split", 1, 13},
    {"Upsample", "scales", 1, 9},
    {"ReduceProd", "axes", 1, 18},
    {"ReduceSumSquare", "axes", 1, 18},
    {"ReduceL1", "axes", 1, 18},
    {"ReduceLogSum", "axes", 1, 18},
    {"ReduceLogSumExp", "axes", 1, 18},
    {"TopK", "k", 1, 10},
};

static int check_moved(octx *c, const onode *np) {
  for (size_t i = 0; i < sizeof k_moved / sizeof k_moved[0]; i++) {
    const struct moved *m = &k_moved[i];
    if (strcmp(np->op_type, m->op)) continue;
    if (c->opset >= m->since && attr(np, m->attr))
      return NODE_ERR(GG_EUNSUPPORTED,
                      "attribute %s is an input since opset %d (model: opset %lld)", m->attr,
                      m->since, (long long)c->opset);
    if (c->opset < m->since && in_t(c, np, (size_t)m->input) >= 0)
      return NODE_ERR(GG_EUNSUPPORTED, "input %d (%s) needs opset %d (model: opset %lld)", m->input,
                      m->attr, m->since, (long long)c->opset);
  }
  return 0;
}

/* Models of opsets 1 to 6: the version of each op's definition that opset 7
 * selects (onnx/defs' since_version). A node whose op had that same
 * definition already at the model's opset maps as at opset 7; an op whose
 * definition at the model's opset is older (consumed_inputs, the broadcast
 * attribute, attributes that became inputs) or that did not exist yet is
 * refused, naming the node and op. */
static const struct since7 {
  const char *op;
  int since;
} k_since7[] = {
    {"Abs", 6},
    {"Cast", 6},
    {"Clip", 6},
    {"Concat", 4},
    {"Constant", 1},
    {"Conv", 1},
    {"ConvTranspose", 1},
    {"DepthToSpace", 1},
    {"Exp", 6},
    {"Flatten", 1},
    {"Gather", 1},
    {"GlobalAveragePool", 1},
    {"GlobalMaxPool", 1},
    {"HardSigmoid", 6},
    {"Identity", 1},
    {"InstanceNormalization", 6},
    {"LeakyRelu", 6},
    {"Log", 6},
    {"LogSoftmax", 1},
    {"MatMul", 1},
    {"Max", 6},
    {"MaxPool", 1},
    {"Min", 6},
    {"Neg", 6},
    {"Not", 1},
    {"Pad", 2},
    {"Reciprocal", 6},
    {"ReduceL2", 1},
    {"ReduceMax", 1},
    {"ReduceMean", 1},
    {"ReduceMin", 1},
    {"ReduceSum", 1},
    {"Relu", 6},
    {"Reshape", 5},
    {"Shape", 1},
    {"Sigmoid", 6},
    {"Size", 1},
    {"Slice", 1},
    {"Softmax", 1},
    {"Softplus", 1},
    {"SpaceToDepth", 1},
    {"Split", 2},
    {"Sqrt", 6},
    {"Squeeze", 1},
    {"Sum", 6},
    {"Tanh", 6},
    {"Tile", 6},
    {"Transpose", 1},
    {"Unsqueeze", 1},
    {"ArgMax", 1},
    {"ArgMin", 1},
    {"Ceil", 6},
    {"Elu", 6},
    {"Floor", 6},
    {"Hardmax", 1},
    {"LRN", 1},
    {"Mean", 6},
    {"ReduceL1", 1},
    {"ReduceLogSum", 1},
    {"ReduceLogSumExp", 1},
    {"ReduceProd", 1},
    {"ReduceSumSquare", 1},
    {"Selu", 6},
    {"Softsign", 1},
    {"TopK", 1},
};

static int check_old_opset(octx *c, const onode *np, const char *op) {
  if (c->opset >= 7) return 0;
  for (size_t i = 0; i < sizeof k_since7 / sizeof k_since7[0]; i++)
    if (!strcmp(op, k_since7[i].op)) {
      if (k_since7[i].since <= c->opset) return 0;
      return NODE_ERR(GG_EUNSUPPORTED,
                      "opset %lld selects an older definition of %s than the one gpuguard runs "
                      "(version %d, from opset %d on); convert the model with "
                      "onnx.version_converter",
                      (long long)c->opset, op, k_since7[i].since, k_since7[i].since);
    }
  return NODE_ERR(GG_EUNSUPPORTED,
                  "op %s at opset %lld is not supported (gpuguard runs it from opset 7 on; "
                  "convert the model with onnx.version_converter)",
                  op, (long long)c->opset);
}

static int attr_allowed(const char *list, const char *name) {
  size_t n = strlen(name);
  for (const char *p = list; *p;) {
    const char *e = strchr(p, ',');
    size_t l = e ? (size_t)(e - p) : strlen(p);
    if (l == n && !strncmp(p, name, n)) return 1;
    if (!e) break;
    p = e + 1;
  }
  return 0;
}

static void attr_value_str(const oattr *a, char *out, size_t len) {
  if (a->has_i)
    snprintf(out, len, "%lld", (long long)a->i);
  else if (a->has_f)
    snprintf(out, len, "%g", (double)a->f);
  else if (a->has_s)
    snprintf(out, len, "%.*s", (int)(a->s.len < 64 ? a->s.len : 64), (const char *)a->s.data);
  else if (a->n_ints)
    snprintf(out, len, "[%lld%s]", (long long)a->ints[0], a->n_ints > 1 ? ",..." : "");
  else
    snprintf(out, len, "(set)");
}

static int map_node(octx *c, const onode *np) {
  const char *op = np->op_type ? np->op_type : "";
  if (np->domain && *np->domain && strcmp(np->domain, "ai.onnx"))
    return NODE_ERR(GG_EUNSUPPORTED, "domain '%s' is not supported (only the default ONNX domain)",
                    np->domain);
  const opdef *d = NULL;
  for (size_t i = 0; i < sizeof k_ops / sizeof k_ops[0]; i++)
    if (!strcmp(op, k_ops[i].name)) d = &k_ops[i];
  if (!d)
    return NODE_ERR(GG_EUNSUPPORTED,
                    "op %s is not supported by gpuguard (docs/ONNX.md lists the ops it runs)", op);
  int rc0 = check_old_opset(c, np, op);
  if (rc0) return rc0;
  for (size_t i = 0; i < np->n_attribute; i++) {
    const oattr *a = np->attribute[i];
    if (!a->name || !attr_allowed(d->attrs, a->name)) {
      char v[96];
      attr_value_str(a, v, sizeof v);
      return NODE_ERR(GG_EUNSUPPORTED, "attribute %s=%s not supported", a->name ? a->name : "?", v);
    }
    if (a->ref_attr_name && *a->ref_attr_name)
      return NODE_ERR(GG_EUNSUPPORTED, "attribute references are not supported");
  }
  if (!np->n_output) return NODE_ERR(GG_EPARSE, "has no outputs");
  int outs[64];
  if (np->n_output > 64) return NODE_ERR(GG_EUNSUPPORTED, "more than 64 outputs");
  for (size_t k = 0; k < np->n_output; k++)
    outs[k] = np->output[k] && *np->output[k] ? map_get(c, np->output[k]) : -1;
  if (outs[0] < 0) return NODE_ERR(GG_EPARSE, "output 0 has no name");
  c->op_name = d->name;
  int rc = check_moved(c, np);
  return rc ? rc : d->fn(c, np, d, outs);
}

/* ------------------------------------------------------------ graph */

static int value_info_input(octx *c, const Onnx__ValueInfoProto *vi) {
  int rc = 0;
  const char *nm = vi->name;
  if (!vi->type || vi->type->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE ||
      !vi->type->tensor_type)
    return gg_errf(c->err, c->errlen, GG_EUNSUPPORTED, "%s: input '%s' is not a tensor", c->file,
                   nm);
  const Onnx__TypeProto__Tensor *tt = vi->type->tensor_type;
  int et = tt->has_elem_type ? tt->elem_type : 0;
  gg_dtype dt;
  if (onnx_is_float(et))
    /* FLOAT16, BFLOAT16 and DOUBLE are held (and computed) as float32: the
     * caller converts at the boundary, gg_tensor_info.src_type says which. */
    dt = GG_DT_F32;
  else if (onnx_elem_size(et))
    /* Narrow integers, uint32 and uint64 are held as int32 like int64: the
     * caller widens the values it feeds and narrows what it reads back (the
     * API says I32). Add, Sub and Mul then agree with the narrow type's
     * wrap-around once narrowed; the other ops do not wrap. */
    dt = GG_DT_I32;
  else
    return gg_errf(c->err, c->errlen, GG_EUNSUPPORTED,
                   "%s: input '%s' is %s (supported: FLOAT, FLOAT16, BFLOAT16, DOUBLE, INT64, "
                   "INT32, INT16, INT8, UINT64, UINT32, UINT16, UINT8, BOOL%s)",
                   c->file, nm, onnx_dtype_name(et),
                   et == ONNX__TENSOR_PROTO__DATA_TYPE__STRING ? "; gpuguard has no string tensors"
                                                               : "");
  if (!tt->shape)
    return gg_errf(c->err, c->errlen, GG_EUNSUPPORTED, "%s: input '%s' needs a known rank", c->file,
                   nm);
  if (tt->shape->n_dim > GG_MAX_DIMS)
    return gg_errf(c->err, c->errlen, GG_EUNSUPPORTED, "%s: input '%s' has %zu dims (at most %d)",
                   c->file, nm, tt->shape->n_dim, GG_MAX_DIMS);
  int t = map_get(c, nm);
  if (t < 0 && (t = new_tensor(c, nm, &rc)) < 0) return rc;
  if ((rc = map_put(c, nm, t))) return rc;
  gg_tensor *tn = &c->g->tensors[t];
  tn->is_input = 1;
  tn->src_type = et;
  tn->v.dtype = dt;
  tn->v.ndim = (int)tt->shape->n_dim;
  for (int d = 0; d < tn->v.ndim; d++) {
    const Onnx__TensorShapeProto__Dimension *dm = tt->shape->dim[d];
    int64_t s =
        dm->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE ? dm->dim_value : -1;
    if (s > GG_MAX_ELEMS || s < -1)
      return gg_errf(c->err, c->errlen, GG_ERANGE, "%s: input '%s': dim %d = %lld is out of range",
                     c->file, nm, d, (long long)s);
    if (s == 0) s = -1; /* 0 as unknown (some exporters write it) */
    tn->v.shape[d] = s;
  }
  c->rank[t] = tn->v.ndim;
  c->dt[t] = (int)dt;
  int ni;
  gg_node *n = new_node(c, GG_OP_PLACEHOLDER, "Input", nm, 0, 1, &ni);
  if (!n) return GG_ENOMEM;
  n->out[0] = t;
  c->g->tensors[t].producer = ni;
  int *ins = realloc(c->g->inputs, ((size_t)c->g->n_inputs + 1) * sizeof *ins);
  if (!ins) return GG_ENOMEM;
  c->g->inputs = ins;
  ins[c->g->n_inputs++] = t;
  return 0;
}

static int build(octx *c, const Onnx__ModelProto *mp) {
  int rc = 0;
  gg_graph *g = c->g;
  const Onnx__GraphProto *gp = mp->graph;
  if (!gp) return gg_errf(c->err, c->errlen, GG_EPARSE, "%s: the model has no graph", c->file);
  c->gp = gp;
  /* opsets */
  int have = 0;
  for (size_t i = 0; i < mp->n_opset_import; i++) {
    const Onnx__OperatorSetIdProto *o = mp->opset_import[i];
    const char *dom = o->domain ? o->domain : "";
    if (!*dom || !strcmp(dom, "ai.onnx")) {
      c->opset = o->has_version ? o->version : 0;
      have = 1;
    } else {
      /* other domains are fine while no node uses them (map_node refuses) */
    }
  }
  if (!have) c->opset = mp->n_opset_import ? 0 : 1;
  /* Opsets 1 to 6: each node is checked against k_since7 (map_node). */
  if (c->opset < 1 || c->opset > 21)
    return gg_errf(c->err, c->errlen, GG_EUNSUPPORTED,
                   "%s: opset %lld of the default domain is not supported (gpuguard reads opsets 7 "
                   "to 21, and 1 to 6 where every op is defined as at opset 7; convert the model "
                   "with onnx.version_converter)",
                   c->file, (long long)c->opset);
  if (gp->n_node > MAX_NODES)
    return gg_errf(c->err, c->errlen, GG_ETOO_LARGE, "%s: %zu nodes (max %d)", c->file, gp->n_node,
                   MAX_NODES);
  size_t nnames = gp->n_initializer + gp->n_input + 16;
  for (size_t i = 0; i < gp->n_node; i++)
    nnames += gp->node[i]->n_output;
  c->hcap = 64;
  while (c->hcap < nnames * 2)
    c->hcap *= 2;
  c->hk = calloc(c->hcap, sizeof *c->hk);
  c->hv = calloc(c->hcap, sizeof *c->hv);
  if (!c->hk || !c->hv) return GG_ENOMEM;
  /* initializers */
  for (size_t i = 0; i < gp->n_initializer; i++) {
    const otensor *tp = gp->initializer[i];
    if (!tp->name || !*tp->name)
      return gg_errf(c->err, c->errlen, GG_EPARSE, "%s: initializer %zu has no name", c->file, i);
    if (map_get(c, tp->name) >= 0)
      return gg_errf(c->err, c->errlen, GG_EPARSE, "%s: initializer '%s' is defined twice", c->file,
                     tp->name);
    int t;
    if ((rc = tensor_const(c, tp, tp->name, &t))) return rc;
    if ((rc = map_put(c, tp->name, t))) return rc;
  }
  if (gp->n_sparse_initializer)
    return gg_errf(c->err, c->errlen, GG_EUNSUPPORTED, "%s: sparse initializers are not supported",
                   c->file);
  /* inputs that are not initializers */
  for (size_t i = 0; i < gp->n_input; i++) {
    const Onnx__ValueInfoProto *vi = gp->input[i];
    if (!vi->name || !*vi->name)
      return gg_errf(c->err, c->errlen, GG_EPARSE, "%s: graph input %zu has no name", c->file, i);
    if (map_get(c, vi->name) >= 0) continue; /* an initializer: a constant */
    if ((rc = value_info_input(c, vi))) return rc;
  }
  /* every node output, so that forward references resolve (toposort then
   * orders them, or finds the cycle) */
  for (size_t i = 0; i < gp->n_node; i++) {
    const onode *np = gp->node[i];
    for (size_t k = 0; k < np->n_output; k++) {
      const char *o = np->output[k];
      if (!o || !*o) continue;
      if (map_get(c, o) >= 0)
        return gg_errf(c->err, c->errlen, GG_EPARSE,
                       "%s: node '%s' (%s): output '%s' is already defined (ONNX graphs are "
                       "single-assignment)",
                       c->file, node_label(np), np->op_type ? np->op_type : "?", o);
      int t = new_tensor(c, o, &rc);
      if (t < 0) return rc;
      if ((rc = map_put(c, o, t))) return rc;
    }
  }
  for (size_t i = 0; i < gp->n_node; i++) {
    const onode *np = gp->node[i];
    for (size_t k = 0; k < np->n_input; k++)
      if (np->input[k] && *np->input[k] && map_get(c, np->input[k]) < 0)
        return gg_errf(
            c->err, c->errlen, GG_EPARSE,
            "%s: node '%s' (%s): input '%s' is not a graph input, an initializer or a node output",
            c->file, node_label(np), np->op_type ? np->op_type : "?", np->input[k]);
    if ((rc = map_node(c, np))) return rc;
  }
  for (int t = 0; t < g->n_tensors; t++)
    if (g->tensors[t].producer < 0 && !g->tensors[t].is_const && !g->tensors[t].is_input) {
      /* a node output the mapping did not produce: only legal when unused */
      for (int i = 0; i < g->n_nodes; i++)
        for (int k = 0; k < g->nodes[i].n_in; k++)
          if (g->nodes[i].in[k] == t)
            return gg_errf(c->err, c->errlen, GG_EPARSE,
                           "%s: tensor '%s' is read but never produced", c->file,
                           g->tensors[t].name);
    }
  if (!gp->n_output)
    return gg_errf(c->err, c->errlen, GG_EPARSE, "%s: the graph has no outputs", c->file);
  g->outputs = calloc(gp->n_output + 1, sizeof *g->outputs);
  g->output_names = calloc(gp->n_output + 1, sizeof *g->output_names);
  if (!g->outputs || !g->output_names) return GG_ENOMEM;
  for (size_t i = 0; i < gp->n_output; i++) {
    const char *nm = gp->output[i]->name;
    int t = nm ? map_get(c, nm) : -1;
    if (t < 0 || (g->tensors[t].producer < 0 && !g->tensors[t].is_input && !g->tensors[t].is_const))
      return gg_errf(c->err, c->errlen, GG_EPARSE,
                     "%s: graph output '%s' is not produced by any node", c->file, nm ? nm : "?");
    g->tensors[t].is_output = 1;
    const Onnx__TypeProto *ty = gp->output[i]->type;
    if (ty && ty->value_case == ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE && ty->tensor_type &&
        ty->tensor_type->has_elem_type) {
      int et = ty->tensor_type->elem_type;
      if (et && !onnx_elem_size(et))
        return gg_errf(c->err, c->errlen, GG_EUNSUPPORTED,
                       "%s: graph output '%s' is %s (gpuguard computes float and integer "
                       "tensors only%s)",
                       c->file, nm, onnx_dtype_name(et),
                       et == ONNX__TENSOR_PROTO__DATA_TYPE__STRING ? "; no string tensors" : "");
      g->tensors[t].src_type = et;
    }
    g->outputs[g->n_outputs] = t;
    g->output_names[g->n_outputs++] = xstrdup(nm);
    if (!g->output_names[g->n_outputs - 1]) return GG_ENOMEM;
  }
  return 0;
}

int gg__onnx_import(const uint8_t *bytes, size_t len, const char *label, const char *dir,
                    gg_graph **out, char *err, size_t errlen) {
  char tmp[8];
  if (!err) err = tmp, errlen = sizeof tmp;
  *out = NULL;
  label = label ? label : "model.onnx";
  if (!bytes || !len)
    return gg_errf(err, errlen, GG_EPARSE, "%s: empty file (expected an ONNX ModelProto)", label);
  Onnx__ModelProto *mp = onnx__model_proto__unpack(NULL, len, bytes);
  if (!mp)
    return gg_errf(err, errlen, GG_EPARSE,
                   "%s: not a valid ONNX protobuf (%zu bytes; truncated or not an .onnx file?)",
                   label, len);
  octx c;
  memset(&c, 0, sizeof c);
  c.file = label, c.err = err, c.errlen = errlen, c.dir = dir;
  int rc = 0;
  c.g = calloc(1, sizeof *c.g);
  if (!c.g) {
    onnx__model_proto__free_unpacked(mp, NULL);
    return GG_ENOMEM;
  }
  c.g->path = xstrdup(label);
  if (!c.g->path) rc = GG_ENOMEM;
  if (!rc && dir && !realpath(dir, c.root))
    rc = gg_errf(err, errlen, GG_EIO, "%s: cannot resolve the model's folder: %s", label,
                 strerror(errno));
  if (!rc) rc = build(&c, mp);
  onnx__model_proto__free_unpacked(mp, NULL);
  int quantized = 0;
  for (int i = 0; !rc && i < c.g->n_nodes; i++)
    quantized |= c.g->nodes[i].op == GG_OP_QUANTIZE;
  for (int i = 0; quantized && i < c.g->n_nodes; i++)
    c.g->nodes[i].a.quantized = 1;
  const char *nl = getenv("GG_ONNX_NO_LAYOUT"); /* tests: the pass's oracle */
  /* cycles are refused before any rewrite (the layout pass assumes a DAG) */
  if (!rc) rc = gg__graph_toposort(c.g, err, errlen);
  if (!rc && !(nl && *nl && strcmp(nl, "0"))) {
    int removed = gg__layout_pass(c.g);
    if (removed < 0)
      rc = removed;
    else
      GG_DEBUG("ENG", "%s: layout pass removed %d transposes", label, removed);
  }
  if (!rc) rc = gg__graph_finish(c.g, err, errlen);
  for (size_t i = 0; i < c.hcap; i++)
    free(c.hk[i]);
  free(c.hk), free(c.hv), free(c.rank), free(c.conv_of), free(c.clamped), free(c.dt);
  if (rc) {
    gg__graph_free(c.g);
    return rc;
  }
  *out = c.g;
  return 0;
}

int gg__onnx_load_file(const char *path, gg_graph **out, char *err, size_t errlen) {
  *out = NULL;
  uint8_t *b = NULL;
  size_t n = 0;
  int rc = gg__file_read(path, ONNX_MAX_FILE, 0, &b, &n);
  if (rc == GG_ETOO_LARGE)
    return gg_errf(err, errlen, rc,
                   "%s: larger than 2 GiB (put the weights in external data files)", path);
  if (rc == GG_EIO)
    return gg_errf(err, errlen, rc, "%s: cannot read: %s", path,
                   errno == EINVAL ? "not a regular file" : strerror(errno));
  if (rc) return rc;
  char dir[PATH_MAX];
  gg__file_dir(path, dir, sizeof dir);
  rc = gg__onnx_import(b, n, path, dir, out, err, errlen);
  free(b);
  return rc;
}

#endif
