/* ONNX Einsum of one or two operands (GG_OP_EINSUM, see the enum in
 * src/engine/graph.h): shape rule and naive reference kernel. The importer
 * resolves the equation (ellipsis included) into one label per dim; here a
 * label repeated within an operand walks its diagonal (its strides add up),
 * a label missing from the output is summed, a dim of size 1 broadcasts.
 * Every output element is one loop over the summed labels, in double (F32)
 * or wrapping int32 (I32). The attention forms never get here: the importer
 * turns them into GG_OP_BATCH_MATMUL. */
#include "engine/engine-impl.h"
#include "engine/graph.h"
#include "gpuguard/error.h"

#include <stdint.h>
#include <string.h>

#define EIN_LABELS (52 + GG_MAX_DIMS) /* letters, then ellipsis dims */
/* Output elements x summed combinations: the naive loop's work, refused
 * past this (a few seconds) rather than stalling a load's constant folding
 * or a session on a hostile model. */
#define EIN_MAX_ITER ((int64_t)1 << 32)

typedef struct ein_plan {
  int n_lab;                          /* distinct labels: output ones first, then summed */
  int n_out;                          /* how many of them are the output's */
  int64_t size[3 * GG_MAX_DIMS];      /* per label */
  int64_t stride[2][3 * GG_MAX_DIMS]; /* per operand and label, in elements (0: broadcast) */
} ein_plan;

/* Sizes and strides of every label; GG_EPARSE with a message when the
 * operands do not fit the labels. */
static int ein_plan_make(const gg_node *n, const gg_tval *vals, ein_plan *p, char *err,
                         size_t errlen) {
  const gg_attrs *a = &n->a;
  int idx[EIN_LABELS];
  for (int l = 0; l < EIN_LABELS; l++)
    idx[l] = -1;
  memset(p, 0, sizeof *p);
  if (n->n_in < 1 || n->n_in > 2 || a->ein_n[2] < 0 || a->ein_n[2] > GG_MAX_DIMS)
    return gg_errf(err, errlen, GG_EPARSE, "node '%s' (%s): %d operands (Einsum takes 1 or 2)",
                   n->name, n->src_op, n->n_in);
  /* output labels first (their order is the output's), then the summed ones */
  for (int pass = 0; pass < 2; pass++)
    for (int k = pass ? 0 : 2; pass ? k < n->n_in : k == 2; k++)
      for (int d = 0; d < a->ein_n[k]; d++) {
        int l = a->ein_lab[k][d];
        if (l < 0 || l >= EIN_LABELS)
          return gg_errf(err, errlen, GG_EPARSE, "node '%s' (%s): bad label %d", n->name, n->src_op,
                         l);
        if (idx[l] < 0) {
          idx[l] = p->n_lab++;
          p->size[idx[l]] = -1;
        } else if (!pass)
          return gg_errf(err, errlen, GG_EPARSE, "node '%s' (%s): output label %d repeated",
                         n->name, n->src_op, l);
      }
  p->n_out = a->ein_n[2];
  for (int k = 0; k < n->n_in; k++) {
    const gg_tval *x = &vals[n->in[k]];
    if (x->ndim != a->ein_n[k] || a->ein_n[k] > GG_MAX_DIMS)
      return gg_errf(err, errlen, GG_EPARSE,
                     "node '%s' (%s): operand %d has %d dims, the equation gives it %d labels",
                     n->name, n->src_op, k, x->ndim, a->ein_n[k]);
    if (x->dtype != vals[n->in[0]].dtype)
      return gg_errf(err, errlen, GG_EPARSE, "node '%s' (%s): operands of different types", n->name,
                     n->src_op);
    for (int d = 0; d < x->ndim; d++) {
      int64_t *s = &p->size[idx[a->ein_lab[k][d]]], v = x->shape[d];
      if (*s < 0 || *s == 1)
        *s = v;
      else if (v != *s && v != 1)
        return gg_errf(err, errlen, GG_EPARSE, "node '%s' (%s): label %c has sizes %lld and %lld",
                       n->name, n->src_op,
                       a->ein_lab[k][d] < 26   ? 'a' + a->ein_lab[k][d]
                       : a->ein_lab[k][d] < 52 ? 'A' + a->ein_lab[k][d] - 26
                                               : '.',
                       (long long)*s, (long long)v);
    }
  }
  for (int l = 0; l < p->n_lab; l++)
    if (p->size[l] < 0)
      return gg_errf(err, errlen, GG_EPARSE, "node '%s' (%s): an output label is in no operand",
                     n->name, n->src_op);
  for (int k = 0; k < n->n_in; k++) {
    const gg_tval *x = &vals[n->in[k]];
    int64_t st = 1;
    for (int d = x->ndim - 1; d >= 0; d--) {
      int l = idx[a->ein_lab[k][d]];
      if (x->shape[d] != 1 || p->size[l] == 1) p->stride[k][l] += st;
      st *= x->shape[d];
    }
  }
  long double iter = 1;
  for (int l = 0; l < p->n_lab; l++)
    iter *= (long double)p->size[l];
  if (iter > (long double)EIN_MAX_ITER)
    return gg_errf(err, errlen, GG_ETOO_LARGE,
                   "node '%s' (%s): %.3Lg multiply-adds (the Einsum kernel runs at most 2^32)",
                   n->name, n->src_op, iter);
  return 0;
}

int gg__einsum_infer(const gg_node *n, gg_tval *vals, char *err, size_t errlen) {
  ein_plan p;
  int rc = ein_plan_make(n, vals, &p, err, errlen);
  if (rc) return rc;
  const gg_tval *x = &vals[n->in[0]];
  if (x->dtype != GG_DT_F32 && x->dtype != GG_DT_I32)
    return gg_errf(err, errlen, GG_EPARSE, "node '%s' (%s): operands must be float or int", n->name,
                   n->src_op);
  gg_tval *o = &vals[n->out[0]];
  o->dtype = x->dtype;
  o->ndim = p.n_out;
  for (int d = 0; d < p.n_out; d++)
    o->shape[d] = p.size[d];
  return gg__shape_nelem(o->shape, o->ndim, &o->nelem);
}

int gg__einsum_run(const gg_node *n, gg_tval *vals) {
  ein_plan p;
  char err[8];
  if (ein_plan_make(n, vals, &p, err, sizeof err)) return GG_EPARSE;
  const gg_tval *x = &vals[n->in[0]], *y = n->n_in > 1 ? &vals[n->in[1]] : NULL;
  gg_tval *o = &vals[n->out[0]];
  int is_f = x->dtype == GG_DT_F32;
  int64_t inner = 1;
  for (int l = p.n_out; l < p.n_lab; l++)
    inner *= p.size[l];
  /* oi: output element e's index per output label, base: its operands'
   * offsets; si / off the same over the summed labels. All kept
   * incrementally, odometer style. */
  int64_t oi[3 * GG_MAX_DIMS] = {0}, base[2] = {0, 0};
  for (int64_t e = 0; e < o->nelem; e++) {
    double accf = 0;
    uint32_t acci = 0;
    int64_t si[3 * GG_MAX_DIMS] = {0}, off[2] = {base[0], base[1]};
    for (int64_t r = 0; r < inner; r++) {
      if (is_f) {
        double v = ((const float *)x->data)[off[0]];
        if (y) v *= ((const float *)y->data)[off[1]];
        accf += v;
      } else {
        uint32_t v = (uint32_t)((const int32_t *)x->data)[off[0]];
        if (y) v *= (uint32_t)((const int32_t *)y->data)[off[1]];
        acci += v;
      }
      for (int l = p.n_lab - 1; l >= p.n_out; l--) { /* next summed index */
        off[0] += p.stride[0][l], off[1] += p.stride[1][l];
        if (++si[l] < p.size[l]) break;
        off[0] -= p.stride[0][l] * p.size[l], off[1] -= p.stride[1][l] * p.size[l];
        si[l] = 0;
      }
    }
    if (is_f)
      ((float *)o->data)[e] = (float)accf;
    else
      ((int32_t *)o->data)[e] = (int32_t)acci;
    for (int l = p.n_out - 1; l >= 0; l--) { /* next output index */
      base[0] += p.stride[0][l], base[1] += p.stride[1][l];
      if (++oi[l] < p.size[l]) break;
      base[0] -= p.stride[0][l] * p.size[l], base[1] -= p.stride[1][l] * p.size[l];
      oi[l] = 0;
    }
  }
  return 0;
}
