/* The engine backends a test case runs on: host sessions (naive, auto =
 * XNNPACK when built), then sessions on a device's pool (the sim device,
 * OpenCL when it opens). Test-only helper (test-onnx-empty.c,
 * test-onnx-quant.c); open_devices first, close_devices at the end. */
#ifndef GG_TEST_BACKENDS_H
#define GG_TEST_BACKENDS_H

#include "gpuguard/device.h"
#include "gpuguard/engine.h"
#include "gpuguard/memory.h"

#include <stdio.h>

typedef struct test_be {
  const char *name, *spec; /* spec: the device to open, NULL for a host session */
  gg_engine_backend be;
  gg_device *dev;
  gg_pool *pool; /* NULL when the device did not open: its cases are skipped */
} test_be;

static test_be g_be[] = {
    {"naive", NULL, GG_ENGINE_NAIVE, NULL, NULL},
    {"auto", NULL, GG_ENGINE_AUTO, NULL, NULL},
    {"sim", "sim", GG_ENGINE_AUTO, NULL, NULL},
    {"opencl", "opencl:0.0", GG_ENGINE_AUTO, NULL, NULL},
};
enum { N_BE = (int)(sizeof g_be / sizeof g_be[0]) };

static inline void open_devices(void) {
  for (int b = 0; b < N_BE; b++) {
    if (!g_be[b].spec) continue;
    if (gg_device_open(g_be[b].spec, &g_be[b].dev) ||
        gg_pool_new(g_be[b].dev, NULL, &g_be[b].pool)) {
      printf("  (%s does not open here: its cases run on the other backends)\n", g_be[b].spec);
      gg_device_free(g_be[b].dev);
      g_be[b].dev = NULL, g_be[b].pool = NULL;
    }
  }
}

static inline void close_devices(void) {
  for (int b = 0; b < N_BE; b++) {
    gg_pool_free(g_be[b].pool);
    gg_device_free(g_be[b].dev);
  }
}

#endif
