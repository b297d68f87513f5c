/* Static memory planner: lifetimes from the execution order, then greedy
 * placement by size (largest first, best-fitting gap among the tensors whose
 * lifetimes overlap), as TFLite's arena planner and ggml-alloc do. */
#include "engine/engine-impl.h"
#include "engine/graph.h"
#include "gpuguard/error.h"

#include <stdlib.h>
#include <string.h>

void gg__plan_free(gg__plan *p) {
  if (!p) return;
  free(p->offset);
  free(p->size);
  free(p->first);
  free(p->last);
  memset(p, 0, sizeof *p);
}

static int by_size_desc(const void *a, const void *b, void *ctx) {
  const gg__plan *p = ctx;
  int x = *(const int *)a, y = *(const int *)b;
  if (p->size[x] != p->size[y]) return p->size[x] > p->size[y] ? -1 : 1;
  if (p->first[x] != p->first[y]) return p->first[x] < p->first[y] ? -1 : 1;
  return x < y ? -1 : (x > y);
}

static int by_offset(const void *a, const void *b, void *ctx) {
  const gg__plan *p = ctx;
  int x = *(const int *)a, y = *(const int *)b;
  if (p->offset[x] != p->offset[y]) return p->offset[x] < p->offset[y] ? -1 : 1;
  return x < y ? -1 : (x > y);
}

int gg__plan_init(gg__plan *p, int nt) {
  memset(p, 0, sizeof *p);
  p->n_tensors = nt;
  p->offset = malloc(((size_t)nt + 1) * sizeof *p->offset);
  p->size = calloc((size_t)nt + 1, sizeof *p->size);
  p->first = malloc(((size_t)nt + 1) * sizeof *p->first);
  p->last = malloc(((size_t)nt + 1) * sizeof *p->last);
  if (!p->offset || !p->size || !p->first || !p->last) {
    gg__plan_free(p);
    return GG_ENOMEM;
  }
  for (int t = 0; t < nt; t++) p->offset[t] = -1, p->first[t] = p->last[t] = -1;
  return 0;
}

int gg__plan_memory(const gg_graph *g, const gg_tval *vals, int reuse, gg__plan *p) {
  int nt = g->n_tensors, end = g->n_order;
  int rc = gg__plan_init(p, nt);
  if (rc) return rc;
  /* Lifetimes. */
  for (int i = 0; i < g->n_inputs; i++) p->first[g->inputs[i]] = 0, p->last[g->inputs[i]] = end;
  for (int s = 0; s < g->n_order; s++) {
    const gg_node *n = &g->nodes[g->order[s]];
    for (int k = 0; k < n->n_out; k++) {
      int t = n->out[k];
      if (g->tensors[t].is_const) continue;
      p->first[t] = s;
      if (p->last[t] < s) p->last[t] = s;
    }
    for (int k = 0; k < n->n_in; k++) {
      int t = n->in[k];
      if (g->tensors[t].is_const || p->first[t] < 0) continue;
      if (p->last[t] < s) p->last[t] = s;
    }
  }
  for (int i = 0; i < g->n_outputs; i++) {
    int t = g->outputs[i];
    if (!g->tensors[t].is_const && p->first[t] >= 0) p->last[t] = end;
  }
  for (int t = 0; t < nt; t++)
    if (g->tensors[t].is_const) p->first[t] = -1;
  rc = gg__plan_place(p, vals, reuse);
  if (rc) gg__plan_free(p);
  return rc;
}

int gg__plan_place(gg__plan *p, const gg_tval *vals, int reuse) {
  int nt = p->n_tensors;
  int *ids = malloc(((size_t)nt + 1) * sizeof *ids);
  int *placed = malloc(((size_t)nt + 1) * sizeof *placed);
  if (!ids || !placed) {
    free(ids), free(placed);
    return GG_ENOMEM;
  }
  p->peak = p->sum = 0;
  int n = 0;
  for (int t = 0; t < nt; t++) {
    if (p->first[t] < 0) continue;
    uint64_t b = (uint64_t)vals[t].nelem * gg__dtype_size(vals[t].dtype);
    b = (b + GG_ARENA_ALIGN - 1) / GG_ARENA_ALIGN * GG_ARENA_ALIGN;
    if (!b) b = GG_ARENA_ALIGN; /* every tensor gets a distinct address */
    p->size[t] = (int64_t)b;
    p->sum += b;
    ids[n++] = t;
  }
  qsort_r(ids, (size_t)n, sizeof *ids, by_size_desc, p);
  int np = 0;
  for (int i = 0; i < n; i++) {
    int t = ids[i];
    int64_t best = -1, best_gap = INT64_MAX, cur = 0;
    if (reuse) {
      /* placed[] is kept sorted by offset; walk gaps between the ranges of
       * tensors alive at the same time as t. */
      for (int j = 0; j < np; j++) {
        int u = placed[j];
        if (p->last[u] < p->first[t] || p->last[t] < p->first[u]) continue;
        int64_t gap = p->offset[u] - cur;
        if (gap >= p->size[t] && gap < best_gap) best = cur, best_gap = gap;
        if (p->offset[u] + p->size[u] > cur) cur = p->offset[u] + p->size[u];
      }
      if (best < 0) best = cur;
    } else {
      for (int j = 0; j < np; j++)
        if (p->offset[placed[j]] + p->size[placed[j]] > cur)
          cur = p->offset[placed[j]] + p->size[placed[j]];
      best = cur;
    }
    p->offset[t] = best;
    if ((uint64_t)(best + p->size[t]) > p->peak) p->peak = (uint64_t)(best + p->size[t]);
    placed[np++] = t;
    qsort_r(placed, (size_t)np, sizeof *placed, by_offset, p);
  }
  free(ids);
  free(placed);
  return 0;
}
