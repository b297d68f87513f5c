/* Memory manager benchmark: gg_pool against the raw device allocator.
 *   1. throughput on a random alloc/free mix (64 live slots);
 *   2. a replayed CNN-like inference trace (weights resident, activations
 *      allocated/freed layer by layer, varying input sizes, many requests):
 *      throughput, and peak reserved bytes against the trace's true peak.
 * Times are the median of 5 runs of the same deterministic sequence.
 * Usage: bench-memory [--ops N] [--requests N] [--seed N] [DEVICE...]
 * Devices default to "cpu" and "sim:mem=4560M" (skipped if absent). */
#include "gpuguard/core.h"
#include "gpuguard/device.h"
#include "gpuguard/error.h"
#include "gpuguard/log.h"
#include "gpuguard/memory.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)

static uint64_t rng(uint64_t *s) {
  uint64_t x = *s;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  *s = x;
  return x * 2685821657736338717ull;
}

/* ---- workload 1: random mix ------------------------------------------- */

#define SLOTS 64

typedef struct mix_op {
  int slot;
  size_t size; /* 0: free the slot */
} mix_op;

static mix_op *make_mix(size_t n, uint64_t seed) {
  mix_op *ops = malloc(n * sizeof *ops);
  int live[SLOTS] = {0};
  uint64_t s = seed;
  for (size_t i = 0; i < n; i++) {
    int k = (int)(rng(&s) % SLOTS);
    ops[i].slot = k;
    if (live[k]) {
      ops[i].size = 0;
      live[k] = 0;
    } else {
      uint64_t c = rng(&s) % 100, v = rng(&s);
      ops[i].size = c < 60   ? 256 + v % (64 * KiB)
                    : c < 90 ? 64 * KiB + v % (960 * KiB)
                             : 1 * MiB + v % (7 * MiB);
      live[k] = 1;
    }
  }
  return ops;
}

/* ---- workload 2: CNN-like trace --------------------------------------- */

typedef struct trace_op {
  int id;      /* tensor id; -1: a request ends */
  size_t size; /* 0: free id */
} trace_op;

typedef struct trace {
  trace_op *ops;
  size_t n, cap;
  int ids;
  uint64_t true_peak, live;
  size_t *sizes; /* by id */
  size_t sizes_cap;
} trace;

static int t_alloc(trace *t, size_t size) {
  if (t->n == t->cap) {
    t->cap = t->cap ? t->cap * 2 : 4096;
    t->ops = realloc(t->ops, t->cap * sizeof *t->ops);
  }
  if ((size_t)t->ids == t->sizes_cap) {
    t->sizes_cap = t->sizes_cap ? t->sizes_cap * 2 : 4096;
    t->sizes = realloc(t->sizes, t->sizes_cap * sizeof *t->sizes);
  }
  int id = t->ids++;
  t->sizes[id] = size;
  t->ops[t->n++] = (trace_op){id, size};
  t->live += size;
  if (t->live > t->true_peak) t->true_peak = t->live;
  return id;
}

static void t_free(trace *t, int id) {
  if (t->n == t->cap) {
    t->cap *= 2;
    t->ops = realloc(t->ops, t->cap * sizeof *t->ops);
  }
  t->ops[t->n++] = (trace_op){id, 0};
  if (id >= 0) t->live -= t->sizes[id];
}

/* A MobileNet-like stack: (output channels, stride, residual). */
typedef struct layer {
  int ch, stride, residual;
} layer;
static const layer k_net[] = {
    {32, 2, 0},  {32, 1, 0},  {16, 1, 0},  {96, 2, 0},  {24, 1, 0},   {144, 1, 0},
    {24, 1, 1},  {144, 2, 0}, {32, 1, 0},  {192, 1, 0}, {32, 1, 1},   {192, 1, 0},
    {32, 1, 1},  {192, 2, 0}, {64, 1, 0},  {384, 1, 0}, {64, 1, 1},   {384, 1, 0},
    {64, 1, 1},  {384, 1, 0}, {96, 1, 0},  {576, 1, 0}, {96, 1, 1},   {576, 2, 0},
    {160, 1, 0}, {960, 1, 0}, {160, 1, 1}, {320, 1, 0}, {1280, 1, 0},
};
#define NLAYERS ((int)(sizeof k_net / sizeof k_net[0]))

static trace *make_trace(int requests, uint64_t seed, int max_batch) {
  trace *t = calloc(1, sizeof *t);
  uint64_t s = seed;
  /* Weights: resident for the whole trace (a detector's ~3.5M params). */
  int in_ch = 3;
  for (int l = 0; l < NLAYERS; l++) {
    t_alloc(t, (size_t)k_net[l].ch * (size_t)in_ch * 9 * 4 / (k_net[l].ch > 200 ? 3 : 1));
    t_alloc(t, (size_t)k_net[l].ch * 4); /* bias */
    in_ch = k_net[l].ch;
  }
  static const int sides[] = {128, 160, 192, 224, 256, 320};
  for (int r = 0; r < requests; r++) {
    int side = sides[rng(&s) % (sizeof sides / sizeof sides[0])];
    int batch = 1 + (int)(rng(&s) % (uint64_t)max_batch);
    int h = side, c = 3;
    int cur = t_alloc(t, (size_t)batch * (size_t)h * (size_t)h * (size_t)c * 4); /* input */
    int pre = t_alloc(t, (size_t)batch * (size_t)h * (size_t)h * (size_t)c * 4); /* normalized */
    t_free(t, cur);
    cur = pre;
    int skip = -1;
    for (int l = 0; l < NLAYERS; l++) {
      const layer *L = &k_net[l];
      int oh = (h + L->stride - 1) / L->stride;
      size_t out_bytes = (size_t)batch * (size_t)oh * (size_t)oh * (size_t)L->ch * 4;
      /* im2col-style scratch for strided / wide convolutions */
      int ws = -1;
      if (L->stride == 2 || L->ch >= 384)
        ws = t_alloc(t, (size_t)batch * (size_t)oh * (size_t)oh * (size_t)c * 9 * 4 / 2);
      int out = t_alloc(t, out_bytes);
      if (ws >= 0) t_free(t, ws);
      if (L->residual && skip >= 0) { /* out += skip */
        t_free(t, skip);
        skip = -1;
      }
      /* keep this layer's input alive as the next residual source */
      if (l + 1 < NLAYERS && k_net[l + 1].residual && L->ch == k_net[l + 1].ch) {
        if (skip >= 0) t_free(t, skip);
        skip = out;
        int copy = t_alloc(t, out_bytes);
        t_free(t, cur);
        cur = copy;
      } else {
        t_free(t, cur);
        cur = out;
      }
      h = oh;
      c = L->ch;
    }
    if (skip >= 0) t_free(t, skip);
    int pooled = t_alloc(t, (size_t)batch * (size_t)c * 4);
    t_free(t, cur);
    int logits = t_alloc(t, (size_t)batch * 1000 * 4);
    t_free(t, pooled);
    t_free(t, logits); /* copied to the host */
    t_free(t, -1);     /* request done */
  }
  return t;
}

/* ---- runners ---------------------------------------------------------- */

typedef struct result {
  double ns_per_op;
  uint64_t peak_reserved, failed;
  double hit_rate;
  uint64_t segments;
} result;

static int run_raw_mix(gg_device *dev, const mix_op *ops, size_t n, result *out) {
  gg_devmem live[SLOTS];
  memset(live, 0, sizeof live);
  uint64_t peak = 0, t0 = gg_now_ns();
  for (size_t i = 0; i < n; i++) {
    gg_devmem *m = &live[ops[i].slot];
    if (ops[i].size) {
      if (gg_device_mem_alloc(dev, ops[i].size, m)) out->failed++;
      uint64_t u = gg_device_mem_in_use(dev);
      if (u > peak) peak = u;
    } else if (m->handle) {
      gg_device_mem_release(dev, m);
    }
  }
  out->ns_per_op = (double)(gg_now_ns() - t0) / (double)n;
  for (int k = 0; k < SLOTS; k++)
    if (live[k].handle) gg_device_mem_release(dev, &live[k]);
  out->peak_reserved = peak;
  return 0;
}

static int run_pool_mix(gg_device *dev, const mix_op *ops, size_t n, result *out) {
  gg_pool *p = NULL;
  if (gg_pool_new(dev, NULL, &p)) return -1;
  gg_block *live[SLOTS] = {0};
  uint64_t t0 = gg_now_ns();
  for (size_t i = 0; i < n; i++) {
    gg_block **b = &live[ops[i].slot];
    if (ops[i].size) {
      if (gg_pool_alloc(p, ops[i].size, "bench", b)) out->failed++;
    } else {
      gg_block_free(*b);
      *b = NULL;
    }
  }
  out->ns_per_op = (double)(gg_now_ns() - t0) / (double)n;
  for (int k = 0; k < SLOTS; k++)
    gg_block_free(live[k]);
  gg_pool_stats s;
  gg_pool_get_stats(p, &s);
  out->peak_reserved = s.peak_reserved;
  out->hit_rate = (double)s.n_cache_hits / (double)(s.n_cache_hits + s.n_cache_misses);
  out->segments = s.n_segment_allocs;
  gg_pool_free(p);
  return 0;
}

static int run_raw_trace(gg_device *dev, const trace *t, result *out) {
  gg_devmem *m = calloc((size_t)t->ids, sizeof *m);
  uint64_t peak = 0, t0 = gg_now_ns();
  for (size_t i = 0; i < t->n; i++) {
    const trace_op *op = &t->ops[i];
    if (op->id < 0) continue;
    if (op->size) {
      if (gg_device_mem_alloc(dev, op->size, &m[op->id])) out->failed++;
      uint64_t u = gg_device_mem_in_use(dev);
      if (u > peak) peak = u;
    } else if (m[op->id].handle) {
      gg_device_mem_release(dev, &m[op->id]);
    }
  }
  out->ns_per_op = (double)(gg_now_ns() - t0) / (double)t->n;
  for (int i = 0; i < t->ids; i++)
    if (m[i].handle) gg_device_mem_release(dev, &m[i]);
  free(m);
  out->peak_reserved = peak;
  return 0;
}

static int run_pool_trace(gg_device *dev, const trace *t, unsigned trim_every, result *out) {
  gg_pool_config cfg;
  gg_pool_config_default(&cfg);
  cfg.trim_every = trim_every;
  gg_pool *p = NULL;
  if (gg_pool_new(dev, &cfg, &p)) return -1;
  gg_block **b = calloc((size_t)t->ids, sizeof *b);
  uint64_t t0 = gg_now_ns();
  for (size_t i = 0; i < t->n; i++) {
    const trace_op *op = &t->ops[i];
    if (op->id < 0) {
      gg_pool_request_done(p, NULL);
    } else if (op->size) {
      if (gg_pool_alloc(p, op->size, "bench", &b[op->id])) out->failed++;
    } else {
      gg_block_free(b[op->id]);
      b[op->id] = NULL;
    }
  }
  out->ns_per_op = (double)(gg_now_ns() - t0) / (double)t->n;
  for (int i = 0; i < t->ids; i++)
    gg_block_free(b[i]);
  free(b);
  gg_pool_stats s;
  gg_pool_get_stats(p, &s);
  out->peak_reserved = s.peak_reserved;
  out->hit_rate = (double)s.n_cache_hits / (double)(s.n_cache_hits + s.n_cache_misses);
  out->segments = s.n_segment_allocs;
  gg_pool_free(p);
  return 0;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* Runs fn `reps` times and keeps the median ns/op (the machine is shared;
 * one run is noisy). Peaks and counts are deterministic: the last run's. */
#define REPS 5
#define MEDIAN_OF(res, call)                                                                       \
  do {                                                                                             \
    double t_[REPS];                                                                               \
    for (int r_ = 0; r_ < REPS; r_++) {                                                            \
      memset(&(res), 0, sizeof(res));                                                              \
      call;                                                                                        \
      t_[r_] = (res).ns_per_op;                                                                    \
    }                                                                                              \
    qsort(t_, REPS, sizeof t_[0], cmp_double);                                                     \
    (res).ns_per_op = t_[REPS / 2];                                                                \
  } while (0)

static void bench_trace(gg_device *dev, int requests, uint64_t seed, int max_batch) {
  trace *t = make_trace(requests, seed + 1, max_batch);
  result rt = {0}, pt = {0}, pt2 = {0};
  MEDIAN_OF(rt, run_raw_trace(dev, t, &rt));
  MEDIAN_OF(pt, run_pool_trace(dev, t, 0, &pt));
  MEDIAN_OF(pt2, run_pool_trace(dev, t, 50, &pt2));
  char a[32], b[32], c[32];
  printf("CNN-like trace, batch 1-%d: %d requests, %zu ops, %d tensors, true peak live %s, median "
         "of %d runs:\n",
         max_batch, requests, t->n, t->ids, gg_format_size(t->true_peak, a, sizeof a), REPS);
  printf("  raw device alloc/free : %8.1f ns/op, peak held %s (%.3fx true peak)\n", rt.ns_per_op,
         gg_format_size(rt.peak_reserved, b, sizeof b),
         (double)rt.peak_reserved / (double)t->true_peak);
  printf("  gg_pool               : %8.1f ns/op, peak reserved %s (%.3fx true peak), hit rate "
         "%.4f, %" PRIu64 " segments\n",
         pt.ns_per_op, gg_format_size(pt.peak_reserved, c, sizeof c),
         (double)pt.peak_reserved / (double)t->true_peak, pt.hit_rate, pt.segments);
  printf("  gg_pool, trim every 50: %8.1f ns/op, peak reserved %s (%.3fx true peak), hit rate "
         "%.4f, %" PRIu64 " segments\n",
         pt2.ns_per_op, gg_format_size(pt2.peak_reserved, c, sizeof c),
         (double)pt2.peak_reserved / (double)t->true_peak, pt2.hit_rate, pt2.segments);
  printf("  throughput ratio pool/raw: %.2fx\n", rt.ns_per_op / pt.ns_per_op);
  if (rt.failed || pt.failed || pt2.failed)
    printf("  failed allocations: raw %" PRIu64 ", pool %" PRIu64 "/%" PRIu64 "\n", rt.failed,
           pt.failed, pt2.failed);
  free(t->ops);
  free(t->sizes);
  free(t);
}

static void bench_device(const char *spec, size_t nops, int requests, uint64_t seed) {
  gg_device *dev = NULL;
  int rc = gg_device_open(spec, &dev);
  if (rc) {
    printf("\n[%s] SKIP: cannot open device (%s)\n", spec, gg_err_name(rc));
    return;
  }
  printf("\n[%s]\n", spec);
  mix_op *ops = make_mix(nops, seed);
  result raw = {0}, pool = {0};
  MEDIAN_OF(raw, run_raw_mix(dev, ops, nops, &raw));
  MEDIAN_OF(pool, run_pool_mix(dev, ops, nops, &pool));
  printf("random mix, %zu ops (64 live slots, 256 B - 8 MiB), median of %d runs:\n", nops, REPS);
  printf("  raw device alloc/free : %8.1f ns/op  (%.2f M ops/s)\n", raw.ns_per_op,
         1e3 / raw.ns_per_op);
  printf("  gg_pool alloc/free    : %8.1f ns/op  (%.2f M ops/s), cache hit rate %.4f, %" PRIu64
         " segments\n",
         pool.ns_per_op, 1e3 / pool.ns_per_op, pool.hit_rate, pool.segments);
  printf("  throughput ratio pool/raw: %.2fx\n", raw.ns_per_op / pool.ns_per_op);
  if (raw.failed || pool.failed)
    printf("  failed allocations: raw %" PRIu64 ", pool %" PRIu64 "\n", raw.failed, pool.failed);
  free(ops);

  for (int max_batch = 2; max_batch <= 8; max_batch *= 4)
    bench_trace(dev, requests, seed, max_batch);
  if (gg_device_mem_in_use(dev))
    printf("  WARNING: %" PRIu64 " bytes still held\n", gg_device_mem_in_use(dev));
  gg_device_free(dev);
}

int main(int argc, char **argv) {
  size_t nops = 100000;
  int requests = 2000;
  uint64_t seed = 42;
  const char *devs[16];
  int ndev = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--ops") && i + 1 < argc)
      nops = strtoull(argv[++i], NULL, 10);
    else if (!strcmp(argv[i], "--requests") && i + 1 < argc)
      requests = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--seed") && i + 1 < argc)
      seed = strtoull(argv[++i], NULL, 10);
    else if (argv[i][0] == '-') {
      fprintf(stderr, "usage: %s [--ops N] [--requests N] [--seed N] [DEVICE...]\n", argv[0]);
      return 2;
    } else if (ndev < 16)
      devs[ndev++] = argv[i];
  }
  if (!nops || requests <= 0) {
    fprintf(stderr, "bench-memory: --ops and --requests must be positive\n");
    return 2;
  }
  if (!ndev) {
    devs[ndev++] = "cpu";
    devs[ndev++] = "sim:mem=4560M";
  }
  gg_log_set_level(GG_LOG_WARN);
  printf("bench-memory: seed %" PRIu64 "\n", seed);
  for (int i = 0; i < ndev; i++)
    bench_device(devs[i], nops, requests, seed);
  return 0;
}
