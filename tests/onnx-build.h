/* Builds small ONNX models in memory with the generated protobuf-c structs
 * (tests/test-onnx*.c, fuzz seeds): nodes, attributes, initializers and
 * value infos, packed to bytes and written to a file. Everything allocated
 * is kept in one list and freed by ob_free. Test-only helper. */
#ifndef GG_TEST_ONNX_BUILD_H
#define GG_TEST_ONNX_BUILD_H

#include "onnx.pb-c.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OB_MAX 64

typedef struct ob_model {
  Onnx__ModelProto m;
  Onnx__GraphProto g;
  Onnx__OperatorSetIdProto opset;
  Onnx__OperatorSetIdProto *opsets[1];
  Onnx__NodeProto *nodes[OB_MAX];
  Onnx__TensorProto *inits[OB_MAX];
  Onnx__ValueInfoProto *ins[OB_MAX], *outs[OB_MAX];
  void *keep[4096];
  int n_keep;
} ob_model;

static inline void *ob_keep(ob_model *b, void *p) {
  if (!p || b->n_keep >= 4096) abort();
  b->keep[b->n_keep++] = p;
  return p;
}

static inline void *ob_alloc(ob_model *b, size_t n) {
  return ob_keep(b, calloc(1, n ? n : 1));
}

static inline char *ob_str(ob_model *b, const char *s) {
  char *d = ob_alloc(b, strlen(s) + 1);
  memcpy(d, s, strlen(s) + 1);
  return d;
}

static inline void ob_init(ob_model *b, int64_t opset) {
  memset(b, 0, sizeof *b);
  onnx__model_proto__init(&b->m);
  onnx__graph_proto__init(&b->g);
  onnx__operator_set_id_proto__init(&b->opset);
  b->opset.domain = ob_str(b, "");
  b->opset.has_version = 1;
  b->opset.version = opset;
  b->opsets[0] = &b->opset;
  b->m.n_opset_import = 1;
  b->m.opset_import = b->opsets;
  b->m.has_ir_version = 1;
  b->m.ir_version = 8;
  b->m.graph = &b->g;
  b->g.node = b->nodes;
  b->g.initializer = b->inits;
  b->g.input = b->ins;
  b->g.output = b->outs;
  b->g.name = ob_str(b, "test");
}

static inline void ob_free(ob_model *b) {
  for (int i = 0; i < b->n_keep; i++)
    free(b->keep[i]);
  b->n_keep = 0;
}

/* Splits "a,b,,c" into strings (empty entries kept). */
static inline size_t ob_list(ob_model *b, const char *csv, char ***out) {
  size_t n = *csv ? 1 : 0;
  for (const char *p = csv; *p; p++)
    n += *p == ',';
  char **v = ob_alloc(b, (n + 1) * sizeof *v);
  const char *p = csv;
  for (size_t i = 0; i < n; i++) {
    const char *e = strchr(p, ',');
    size_t l = e ? (size_t)(e - p) : strlen(p);
    v[i] = ob_alloc(b, l + 1);
    memcpy(v[i], p, l);
    p = e ? e + 1 : p + l;
  }
  *out = v;
  return n;
}

static inline Onnx__NodeProto *ob_node(ob_model *b, const char *op, const char *name,
                                       const char *ins, const char *outs) {
  Onnx__NodeProto *n = ob_alloc(b, sizeof *n);
  onnx__node_proto__init(n);
  n->op_type = ob_str(b, op);
  n->name = ob_str(b, name);
  n->n_input = ob_list(b, ins, &n->input);
  n->n_output = ob_list(b, outs, &n->output);
  n->attribute = ob_alloc(b, 16 * sizeof *n->attribute);
  b->nodes[b->g.n_node++] = n;
  return n;
}

static inline Onnx__AttributeProto *ob_attr(ob_model *b, Onnx__NodeProto *n, const char *name,
                                            int type) {
  Onnx__AttributeProto *a = ob_alloc(b, sizeof *a);
  onnx__attribute_proto__init(a);
  a->name = ob_str(b, name);
  a->has_type = 1;
  a->type = (Onnx__AttributeProto__AttributeType)type;
  n->attribute[n->n_attribute++] = a;
  return a;
}

static inline void ob_attr_i(ob_model *b, Onnx__NodeProto *n, const char *name, int64_t v) {
  Onnx__AttributeProto *a = ob_attr(b, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
  a->has_i = 1, a->i = v;
}

static inline void ob_attr_f(ob_model *b, Onnx__NodeProto *n, const char *name, float v) {
  Onnx__AttributeProto *a = ob_attr(b, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);
  a->has_f = 1, a->f = v;
}

static inline void ob_attr_s(ob_model *b, Onnx__NodeProto *n, const char *name, const char *v) {
  Onnx__AttributeProto *a = ob_attr(b, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING);
  a->has_s = 1;
  a->s.data = (uint8_t *)ob_str(b, v);
  a->s.len = strlen(v);
}

static inline void ob_attr_ints(ob_model *b, Onnx__NodeProto *n, const char *name, int cnt,
                                const int64_t *v) {
  Onnx__AttributeProto *a = ob_attr(b, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
  a->n_ints = (size_t)cnt;
  a->ints = ob_alloc(b, (size_t)cnt * sizeof *a->ints);
  memcpy(a->ints, v, (size_t)cnt * sizeof *v);
}

static inline Onnx__TensorProto *ob_tensor(ob_model *b, const char *name, int dtype, int ndim,
                                           const int64_t *dims) {
  Onnx__TensorProto *t = ob_alloc(b, sizeof *t);
  onnx__tensor_proto__init(t);
  t->name = ob_str(b, name);
  t->has_data_type = 1;
  t->data_type = dtype;
  t->n_dims = (size_t)ndim;
  t->dims = ob_alloc(b, (size_t)(ndim ? ndim : 1) * sizeof *t->dims);
  if (ndim) memcpy(t->dims, dims, (size_t)ndim * sizeof *dims);
  return t;
}

/* A float initializer with n values (typed field). */
static inline Onnx__TensorProto *ob_init_f(ob_model *b, const char *name, int ndim,
                                           const int64_t *dims, const float *v, size_t n) {
  Onnx__TensorProto *t = ob_tensor(b, name, ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, ndim, dims);
  t->n_float_data = n;
  t->float_data = ob_alloc(b, n * sizeof(float));
  if (n) memcpy(t->float_data, v, n * sizeof(float));
  b->inits[b->g.n_initializer++] = t;
  return t;
}

/* An int64 initializer in raw_data (little-endian, as exporters write it). */
static inline Onnx__TensorProto *ob_init_i64(ob_model *b, const char *name, int ndim,
                                             const int64_t *dims, const int64_t *v, size_t n) {
  Onnx__TensorProto *t = ob_tensor(b, name, ONNX__TENSOR_PROTO__DATA_TYPE__INT64, ndim, dims);
  t->has_raw_data = 1;
  t->raw_data.len = n * 8;
  t->raw_data.data = ob_alloc(b, n * 8);
  if (n) memcpy(t->raw_data.data, v, n * 8);
  b->inits[b->g.n_initializer++] = t;
  return t;
}

/* An initializer of any element type from its little-endian bytes (raw_data). */
static inline Onnx__TensorProto *ob_init_raw(ob_model *b, const char *name, int dtype, int ndim,
                                             const int64_t *dims, const void *bytes, size_t len) {
  Onnx__TensorProto *t = ob_tensor(b, name, dtype, ndim, dims);
  t->has_raw_data = 1;
  t->raw_data.len = len;
  t->raw_data.data = ob_alloc(b, len);
  if (len) memcpy(t->raw_data.data, bytes, len);
  b->inits[b->g.n_initializer++] = t;
  return t;
}

static inline Onnx__ValueInfoProto *ob_vinfo(ob_model *b, const char *name, int dtype, int ndim,
                                             const int64_t *dims) {
  Onnx__ValueInfoProto *v = ob_alloc(b, sizeof *v);
  onnx__value_info_proto__init(v);
  v->name = ob_str(b, name);
  Onnx__TypeProto *tp = ob_alloc(b, sizeof *tp);
  onnx__type_proto__init(tp);
  Onnx__TypeProto__Tensor *tt = ob_alloc(b, sizeof *tt);
  onnx__type_proto__tensor__init(tt);
  tt->has_elem_type = 1;
  tt->elem_type = dtype;
  Onnx__TensorShapeProto *sp = ob_alloc(b, sizeof *sp);
  onnx__tensor_shape_proto__init(sp);
  sp->n_dim = (size_t)ndim;
  sp->dim = ob_alloc(b, (size_t)(ndim ? ndim : 1) * sizeof *sp->dim);
  for (int i = 0; i < ndim; i++) {
    Onnx__TensorShapeProto__Dimension *d = ob_alloc(b, sizeof *d);
    onnx__tensor_shape_proto__dimension__init(d);
    if (dims[i] >= 0) {
      d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
      d->dim_value = dims[i];
    } else {
      d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
      d->dim_param = ob_str(b, "N");
    }
    sp->dim[i] = d;
  }
  tt->shape = sp;
  tp->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
  tp->tensor_type = tt;
  v->type = tp;
  return v;
}

static inline void ob_input(ob_model *b, const char *name, int ndim, const int64_t *dims) {
  b->ins[b->g.n_input++] = ob_vinfo(b, name, ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, ndim, dims);
}

static inline void ob_input_t(ob_model *b, const char *name, int dtype, int ndim,
                              const int64_t *dims) {
  b->ins[b->g.n_input++] = ob_vinfo(b, name, dtype, ndim, dims);
}

static inline void ob_output(ob_model *b, const char *name) {
  b->outs[b->g.n_output++] = ob_vinfo(b, name, ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, 0, NULL);
}

/* Packs the model; *len bytes, malloc'd (caller frees). */
static uint8_t *ob_pack(ob_model *b, size_t *len) {
  size_t n = onnx__model_proto__get_packed_size(&b->m);
  uint8_t *buf = malloc(n + 1);
  if (!buf) abort();
  *len = onnx__model_proto__pack(&b->m, buf);
  return buf;
}

/* Packs and writes to path; 0 or -1. keep: bytes to write (0: all). */
static inline int ob_write(ob_model *b, const char *path, size_t keep) {
  size_t n;
  uint8_t *buf = ob_pack(b, &n);
  if (keep && keep < n) n = keep;
  FILE *f = fopen(path, "wb");
  int rc = f && fwrite(buf, 1, n, f) == n ? 0 : -1;
  if (f) fclose(f);
  free(buf);
  return rc;
}

/* One temporary folder per test program (created on first use, under
 * /tmp/PREFIX-XXXXXX) for the models it writes: ob_tmp_dir() is its path
 * ("" before the first ob_tmp_path), ob_tmp_path(name) a path inside it (a
 * static buffer, valid until the next call), ob_tmp_cleanup(rc) removes it
 * and returns rc (test programs end with return ob_tmp_cleanup(rc)). */
static inline char *ob_tmp_dir(void) {
  static char dir[64];
  return dir;
}

static inline const char *ob_tmp_path(const char *prefix, const char *name) {
  static char p[160];
  char *dir = ob_tmp_dir();
  if (!dir[0]) {
    snprintf(dir, 64, "/tmp/%.40s-XXXXXX", prefix);
    if (!mkdtemp(dir)) abort();
  }
  snprintf(p, sizeof p, "%s/%.90s", dir, name);
  return p;
}

static inline int ob_tmp_cleanup(int rc) {
  const char *dir = ob_tmp_dir();
  if (!dir[0]) return rc;
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  if (system(cmd)) fprintf(stderr, "cannot remove %s\n", dir);
  return rc;
}

#endif
