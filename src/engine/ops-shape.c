/* ONNX-era ops, group S (see src/engine/graph.h): shape rules and
 * reference kernels. Placeholder until the group lands: every op is refused. */
#include "engine/engine-impl.h"
#include "gpuguard/error.h"

int gg__shape_infer(const gg_node *n, gg_tval *vals, char *err, size_t errlen) {
  (void)vals;
  return gg_errf(err, errlen, GG_EUNSUPPORTED, "node '%s': op %s has no shape rule yet", n->name,
                 n->src_op);
}

int gg__shape_run(const gg_node *n, gg_tval *vals, const struct gg__kctx *ctx) {
  (void)n, (void)vals, (void)ctx;
  return GG_EUNSUPPORTED;
}
