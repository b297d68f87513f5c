/* Engine internals shared by the importer, the planner, the kernels and the
 * executor. Not a public header. */
#ifndef GG_ENGINE_IMPL_H
#define GG_ENGINE_IMPL_H

#include "engine/graph.h"

#include <stddef.h>
#include <stdint.h>

struct pthreadpool;

/* What a kernel may use while it runs: a thread pool (NULL = serial). */
typedef struct gg__kctx {
  struct pthreadpool *pool;
} gg__kctx;

/* Shape inference for one node (src/engine/shape.c): reads the input values' shapes (and the
 * data of constant parameter inputs such as Reshape's shape), writes the
 * outputs' dtype/ndim/shape/nelem. vals is indexed by tensor id. Returns 0,
 * GG_EPARSE/GG_EUNSUPPORTED/GG_ERANGE with a message naming the node. */
int gg__op_infer(const gg_node *n, gg_tval *vals, char *err, size_t errlen);
/* Shape helpers shared by shape.c and the kernels. gg__norm_axis maps an
 * axis in [-ndim, ndim) to [0, ndim) (GG_ERANGE otherwise); gg__window gives
 * a conv/pool window's output size and leading pad for one spatial dim
 * (TF's SAME/VALID/EXPLICIT rules; GG_ERANGE when the window does not fit). */
int gg__norm_axis(int64_t ax, int ndim, int *out);
int gg__window(int64_t in, int k, int s, int d, gg_padding p, int pb, int pa, int64_t *out,
               int *pad_before);
/* Runs fn(arg, i) for i in [0, range) on ctx's thread pool, or on the
 * calling thread when there is none (ctx or its pool NULL, or range <= 1).
 * Shared by the reference kernels of ops.c, ops-elem.c and ops-shape.c. */
void gg__par1d(const gg__kctx *ctx, void (*fn)(void *, size_t), void *arg, size_t range);
/* Runs one node with the naive reference kernels (data pointers set). */
int gg__op_run(const gg_node *n, gg_tval *vals, const gg__kctx *ctx);
/* Whether op is one of group E's elementwise unary ops (ops-elem.c runs them
 * one element at a time; the layout pass moves transposes through them). */
int gg__elem_is_unary(gg_op op);

/* Static memory plan: every non-constant tensor gets an offset into one
 * arena. first/last are the steps (indices into g->order) where the tensor
 * is produced and last read; inputs are live from step 0 and outputs until
 * the end. */
#define GG_ARENA_ALIGN 64
typedef struct gg__plan {
  int n_tensors;
  int64_t *offset;   /* per tensor; -1 for constants and unused tensors */
  int64_t *size;     /* aligned bytes per tensor (0 for constants) */
  int *first, *last; /* lifetime in steps; -1 when not planned */
  uint64_t peak;     /* arena bytes: max(offset + size) */
  uint64_t sum;      /* bytes without any reuse (sum of sizes) */
} gg__plan;

/* Plans the arena for the shapes in vals. reuse=0 gives every tensor its own
 * range (the no-reuse baseline used by tests). Returns 0 or GG_ENOMEM. */
int gg__plan_memory(const gg_graph *g, const gg_tval *vals, int reuse, gg__plan *plan);
void gg__plan_free(gg__plan *plan);
/* The two halves of gg__plan_memory, for the scheduler's per-domain plans:
 * gg__plan_init allocates the arrays for nt tensors (first/last/offset -1);
 * the caller sets first/last of every tensor the arena holds, and
 * gg__plan_place sizes them from vals and places them (tensors with
 * first < 0 are skipped). Both return 0 or GG_ENOMEM. */
int gg__plan_init(gg__plan *plan, int nt);
int gg__plan_place(gg__plan *plan, const gg_tval *vals, int reuse);

/* Constant data lives in accounted host memory (owner "engine/weights")
 * with GG_CONST_SLACK zeroed bytes after it, because backends (XNNPACK) may
 * read a little past the end of an input. gg__const_alloc returns NULL on
 * failure; gg__const_free(NULL) is a no-op. */
#define GG_CONST_SLACK 64
void *gg__const_alloc(size_t nbytes);
void gg__const_free(void *p);
/* Bytes gg__const_alloc(nbytes) accounts for. */
#define GG_CONST_BYTES(nbytes) ((uint64_t)(nbytes) + GG_CONST_SLACK)

struct gg_model;
/* The graph behind a model (borrowed). */
const gg_graph *gg__model_graph(const struct gg_model *m);
/* Wraps an imported graph as a model (takes ownership of g; tests). Its
 * weights count as measured by construction. */
int gg__model_from_graph(gg_graph *g, const char *label, struct gg_model **out);

/* Set to 1 (tests) or GG_ENGINE_NO_FUSE=1 (env) to import without fusion,
 * as the oracle the fused graph is checked against. */
extern int gg__fuse_disabled;

/* Half -> float (IEEE 754 binary16). */
float gg__half_to_float(uint16_t h);
/* Float -> bfloat16 bits, round to nearest even, overflow to +-inf, NaN
 * kept (quiet) (ops-elem.c, Cast). */
uint16_t gg__float_to_bf16(float f);

#endif
