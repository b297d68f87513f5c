/* libFuzzer target: the bytes are a model.json. Weight shards come from a
 * fixed 4 KiB pattern of small int32 words, so manifests that fit it load their weights too.
 * Whatever imports is then prepared and run on the naive kernels, so shape
 * inference, folding, fusion, the planner and the kernels see hostile
 * graphs as well. Build: CC=clang cmake -B build-fuzz -DGG_FUZZ=ON. */
#include "engine/engine-impl.h"
#include "engine/graph.h"
#include "gpuguard/engine.h"
#include "gpuguard/log.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static int shard(void *user, const char *path, uint8_t **data, size_t *len, char *err,
                 size_t errlen) {
  (void)user, (void)path, (void)err, (void)errlen;
  size_t n = 4096;
  *data = malloc(n);
  if (!*data) return -1;
  /* Little int32 words 0..3: valid axes, perms, paddings and sizes
   * often, tiny floats otherwise. */
  for (size_t i = 0; i < n; i++) (*data)[i] = (uint8_t)(i % 4 ? 0 : (i / 4) % 4);
  *len = n;
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static int init;
  if (!init) gg_log_set_level(GG_LOG_OFF), init = 1;
  gg_graph *g = NULL;
  char err[512];
  if (gg__tfjs_import((const char *)data, size, "fuzz.json", shard, NULL, &g, err, sizeof err))
    return 0;
  gg_model *m = NULL;
  if (gg__model_from_graph(g, "fuzz.json", &m)) {
    gg__graph_free(g);
    return 0;
  }
  /* Keep runs cheap: only small inputs are executed. */
  gg_tensor_info in;
  int64_t n = 1;
  if (gg_model_input(m, 0, &in) == 0)
    for (int d = 0; d < in.ndim; d++) n *= in.shape[d] < 1 ? 1 : in.shape[d];
  gg_session *s = NULL;
  gg_session_opts o = {1, GG_ENGINE_NAIVE, 0};
  if (n <= 4096 && gg_session_new(m, NULL, 0, &o, &s, err, sizeof err) == 0) {
    gg_engine_mem mem;
    gg_session_memory(s, &mem);
    if (mem.arena <= ((uint64_t)16 << 20)) gg_session_run(s, err, sizeof err);
    gg_session_free(s);
  }
  gg_model_free(m);
  return 0;
}
