/* bench-engine: in-process latency of the engine's run stage for one model.
 *
 *   bench-engine MODEL_JSON [--threads N] [--runs R] [--warmup W] [--naive]
 *
 * Loads the model, prepares one session (plan, arena, XNNPACK operators),
 * fills the input with fixed pseudo-random values in [0, 1), runs W warm-up
 * runs, then times R runs of gg_session_run (the whole graph, outputs in the
 * arena: the same work as tfjs's execute + dataSync). Prints one JSON line:
 * {"impl","model","threads","runs","median_ms","min_ms","p90_ms","load_ms",
 *  "prepare_ms","n_ops","n_ops_xnnpack"}. Exit 0, 1 on failure, 2 on usage. */
#include "gpuguard/engine.h"
#include "gpuguard/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static int usage(void) {
  fprintf(stderr, "usage: bench-engine MODEL_JSON [--threads N] [--runs R] [--warmup W] [--naive]\n");
  return 2;
}

int main(int argc, char **argv) {
  const char *path = NULL;
  int threads = 1, runs = 20, warmup = 3, naive = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--runs") && i + 1 < argc) runs = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--warmup") && i + 1 < argc) warmup = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--naive")) naive = 1;
    else if (argv[i][0] == '-' || path) return usage();
    else path = argv[i];
  }
  if (!path || runs < 1 || runs > 100000 || warmup < 0 || threads < 1) return usage();

  char err[512] = "";
  gg_model *m = NULL;
  double t0 = now_ms();
  int rc = gg_model_load(path, &m, err, sizeof err);
  double load_ms = now_ms() - t0;
  if (rc) {
    fprintf(stderr, "bench-engine: cannot load %s: %s (%s)\n", path, err, gg_err_name(rc));
    return 1;
  }
  gg_session_opts opts;
  memset(&opts, 0, sizeof opts);
  opts.threads = threads;
  opts.backend = naive ? GG_ENGINE_NAIVE : GG_ENGINE_AUTO;
  gg_session *s = NULL;
  t0 = now_ms();
  rc = gg_session_new(m, NULL, 0, &opts, &s, err, sizeof err);
  double prep_ms = now_ms() - t0;
  if (rc) {
    fprintf(stderr, "bench-engine: cannot prepare %s: %s (%s)\n", path, err, gg_err_name(rc));
    gg_model_free(m);
    return 1;
  }
  gg_tensor_info in;
  float *x = gg_session_input(s, 0, &in);
  int64_t n = 1;
  for (int d = 0; d < in.ndim; d++) n *= in.shape[d] > 0 ? in.shape[d] : 1;
  uint32_t r = 12345;
  for (int64_t i = 0; i < n; i++) {
    r = r * 1664525u + 1013904223u;
    x[i] = (float)r / 4294967296.0f;
  }
  double *t = calloc((size_t)runs, sizeof *t);
  if (!t) return 1;
  for (int i = 0; i < warmup + runs && !rc; i++) {
    double a = now_ms();
    rc = gg_session_run(s, err, sizeof err);
    if (i >= warmup) t[i - warmup] = now_ms() - a;
  }
  if (rc) {
    fprintf(stderr, "bench-engine: run failed on %s: %s (%s)\n", path, err, gg_err_name(rc));
  } else {
    qsort(t, (size_t)runs, sizeof *t, cmp_double);
    double med = runs % 2 ? t[runs / 2] : (t[runs / 2 - 1] + t[runs / 2]) / 2;
    int p90 = (int)(0.9 * runs);
    if (p90 >= runs) p90 = runs - 1;
    gg_engine_mem mem;
    gg_session_memory(s, &mem);
    printf("{\"impl\":\"gpuguard\",\"backend\":\"%s\",\"model\":\"%s\",\"threads\":%d,\"runs\":%d,"
           "\"median_ms\":%.3f,\"min_ms\":%.3f,\"p90_ms\":%.3f,\"load_ms\":%.1f,"
           "\"prepare_ms\":%.1f,\"n_ops\":%d,\"n_ops_xnnpack\":%d}\n",
           naive ? "naive" : "auto", path, threads, runs, med, t[0], t[p90], load_ms, prep_ms,
           mem.n_ops, mem.n_ops_xnnpack);
  }
  free(t);
  gg_session_free(s);
  gg_model_free(m);
  return rc ? 1 : 0;
}
