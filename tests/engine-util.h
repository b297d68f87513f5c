/* Helpers shared by the engine tests that drive whole sessions. */
#ifndef GG_TEST_ENGINE_UTIL_H
#define GG_TEST_ENGINE_UTIL_H

#include "gpuguard/engine.h"

#include <stdint.h>

/* Fills the session's first input with a fixed, image-like pattern in [0, 1]
 * (the same bytes on every backend, so outputs can be compared). */
static inline void gg_t_fill_input(gg_session *s) {
  gg_tensor_info in;
  float *x = gg_session_input(s, 0, &in);
  int64_t n = 1;
  for (int d = 0; d < in.ndim; d++)
    n *= in.shape[d];
  for (int64_t i = 0; i < n; i++)
    x[i] = (float)((i * 7919) % 255) / 255.0f;
}

#endif
