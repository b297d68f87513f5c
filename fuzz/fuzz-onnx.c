/* libFuzzer target: the bytes are an ONNX ModelProto. External data is
 * refused (no folder), so the reader, the node mapping, the layout pass,
 * folding and fusion see hostile graphs; whatever imports is then prepared
 * (shape inference, session-time folding, the planner) and, when small, run
 * on the naive kernels. Build: CC=clang cmake -B build-fuzz -DGG_FUZZ=ON.
 * Seeds: fuzz/corpus/onnx (small valid models). */
#include "engine/engine-impl.h"
#include "engine/graph.h"
#include "gpuguard/engine.h"
#include "gpuguard/log.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static int init;
  if (!init) gg_log_set_level(GG_LOG_OFF), gg__arena_limit = (uint64_t)64 << 20, init = 1;
  gg_graph *g = NULL;
  char err[512];
  if (gg__onnx_import(data, size, "fuzz.onnx", NULL, &g, err, sizeof err)) return 0;
  gg_model *m = NULL;
  if (gg__model_from_graph(g, "fuzz.onnx", &m)) {
    gg__graph_free(g);
    return 0;
  }
  /* Keep runs cheap: only small inputs are executed. */
  int64_t n = 1;
  for (int i = 0; i < gg_model_n_inputs(m); i++) {
    gg_tensor_info in;
    if (gg_model_input(m, i, &in) == 0)
      for (int d = 0; d < in.ndim; d++)
        n *= in.shape[d] < 1 ? 1 : in.shape[d] > 4096 ? 4096 : in.shape[d];
    if (n > 4096) break;
  }
  /* The input shapes: unknown dims as 1, or as 0 (zero-size tensors) when
   * the input's size is odd, so both are explored. */
  int64_t shp[8][GG_MAX_DIMS];
  const int64_t *shapes[8];
  int nds[8], ni = gg_model_n_inputs(m) < 8 ? gg_model_n_inputs(m) : 8;
  for (int i = 0; i < ni; i++) {
    gg_tensor_info in;
    shapes[i] = NULL, nds[i] = 0;
    if (gg_model_input(m, i, &in) || in.ndim > GG_MAX_DIMS) continue;
    for (int d = 0; d < in.ndim; d++)
      shp[i][d] = in.shape[d] >= 0 ? in.shape[d] : (size & 1) ? 0 : 1;
    shapes[i] = shp[i], nds[i] = in.ndim;
  }
  gg_session *s = NULL;
  gg_session_opts o = {1, GG_ENGINE_NAIVE, 0};
  if (n <= 4096 &&
      gg_session_new_shapes(m, ni, shapes, nds, &o, NULL, &s, err, sizeof err) == 0) {
    gg_engine_mem mem;
    gg_session_memory(s, &mem);
    if (mem.arena <= ((uint64_t)16 << 20)) {
      for (int i = 0; i < gg_model_n_inputs(m); i++) {
        gg_tensor_info ti;
        void *p = gg_session_input_data(s, i, &ti);
        int64_t ne = 1;
        for (int d = 0; d < ti.ndim; d++)
          ne *= ti.shape[d];
        if (p) memset(p, 0, (size_t)ne * 4);
      }
      gg_session_run(s, err, sizeof err);
    }
    gg_session_free(s);
  }
  gg_model_free(m);
  return 0;
}
