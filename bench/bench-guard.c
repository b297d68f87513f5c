/* bench-guard: what process isolation costs per request. Runs the same
 * requests through the guard in-process and through a supervised worker
 * (socketpair + shared memory), for the synthetic test workload (a tiny
 * tensor: pure round-trip cost) and for a real model (blazeface, 1x256x256x3).
 * Usage: bench-guard [GPUGUARD_BIN] (default: ./gpuguard next to this binary,
 * else $GPUGUARD_WORKER_EXE). Prints median and p90 per configuration. */
#include "gpuguard/core.h"
#include "gpuguard/engine.h"
#include "gpuguard/guard.h"
#include "gpuguard/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static void run(const char *exe, const char *dev, int isolate, const char *runner,
                const char *model, gg_gtensor *in, int n) {
  gg_guard_config c;
  gg_guard_config_init(&c);
  c.devices[0] = dev;
  c.n_devices = 1;
  c.isolate = isolate;
  c.runner = runner;
  c.worker_exe = exe;
  gg_guard *g;
  if (gg_guard_new(&c, &g)) {
    printf("%s: guard_new failed\n", dev);
    return;
  }
  double *t = calloc((size_t)n, sizeof *t);
  gg_guard_result r;
  int fails = gg_guard_infer(g, model, in, &r) != 0; /* load + warmup */
  gg_guard_result_release(&r);
  for (int i = 0; i < n; i++) {
    uint64_t t0 = gg_now_ns();
    fails += gg_guard_infer(g, model, in, &r) != 0;
    gg_guard_result_release(&r);
    t[i] = (double)(gg_now_ns() - t0) / 1e6;
  }
  qsort(t, (size_t)n, sizeof *t, cmp);
  printf("| %-6s | %-9s | %-28s | %-14s | %8.3f | %8.3f | %d%s |\n", dev, runner,
         isolate ? "worker process" : "in-process", model, t[n / 2], t[n * 9 / 10], n,
         fails ? " (failures!)" : "");
  free(t);
  gg_guard_free(g);
}

int main(int argc, char **argv) {
  gg_log_set_level(GG_LOG_ERROR);
  char exe[1024];
  if (argc > 1) {
    snprintf(exe, sizeof exe, "%s", argv[1]);
  } else {
    ssize_t k = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[k > 0 ? k : 0] = 0;
    char *slash = strrchr(exe, '/');
    if (slash) snprintf(slash + 1, sizeof exe - (size_t)(slash + 1 - exe), "gpuguard");
  }
  size_t n = 256 * 256 * 3;
  float *x = malloc(n * sizeof(float));
  if (!x) return 1;
  for (size_t i = 0; i < n; i++) x[i] = (float)(i % 255) / 127.5f - 1.0f;
  gg_gtensor small = {.ndim = 1, .dims = {1024}, .data = x};
  gg_gtensor img = {.ndim = 4, .dims = {1, 256, 256, 3}, .data = x};
  printf("| device | runner | where | model | median ms | p90 ms | n |\n|---|---|---|---|---|---|---|\n");
  for (int round = 0; round < 2; round++) {
    run(exe, "cpu", 0, "synthetic", "synthetic:1:4", &small, 400);
    run(exe, "cpu", 2, "synthetic", "synthetic:1:4", &small, 400);
    run(exe, "sim", 1, "synthetic", "synthetic:1:4", &small, 400);
  }
  char path[1024];
  if (gg_model_resolve("blazeface", path, sizeof path) == 0) {
    for (int round = 0; round < 2; round++) {
      run(exe, "cpu", 0, "engine", "blazeface", &img, 60);
      run(exe, "cpu", 2, "engine", "blazeface", &img, 60);
      run(exe, "sim", 1, "engine", "blazeface", &img, 60);
    }
  } else {
    printf("SKIP blazeface: not found (%s)\n", path);
  }
  free(x);
  return 0;
}
