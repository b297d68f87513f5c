/* The engine-backed runner: real TF.js graph models through the engine
 * (include/gpuguard/engine.h). Until the engine is part of the build this
 * reports GG_ENOTIMPL, so callers fall back to the synthetic test workload
 * only when they ask for it by name. */
#include "gpuguard/error.h"
#include "gpuguard/log.h"
#include "guard/guard-impl.h"

int gg__runner_engine(const char *arg, gg_runner *out);
int gg__runner_engine(const char *arg, gg_runner *out) {
  (void)arg;
  (void)out;
  GG_ERROR("GPU", "the engine runner is not part of this build yet; use runner 'synthetic'");
  return GG_ENOTIMPL;
}
