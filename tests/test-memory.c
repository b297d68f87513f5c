/* Unit tests for src/memory: split/merge, bins, budget, trim, stats, owners,
 * leak scopes, OOM reports, host accounting, staging, device reset. The
 * randomized property test lives in test-memory-property.c. */
#include "gpuguard/core.h"
#include "gpuguard/device.h"
#include "gpuguard/error.h"
#include "gpuguard/log.h"
#include "gpuguard/render.h"
#include "gpuguard/memory.h"
#include "test.h"

#include <jansson.h>
#include <pthread.h>

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)

/* The OOM test asks for more than any machine has; under ASan that must be
 * a NULL return, not an abort. */
const char *__asan_default_options(void);
const char *__asan_default_options(void) {
  return "allocator_may_return_null=1";
}

static char g_log[16384];
static void capture(gg_log_level level, const char *line, void *user) {
  strncat(g_log, line, sizeof g_log - strlen(g_log) - 1);
}
static void capture_start(void) {
  g_log[0] = 0;
  gg_log_set_sink(capture, NULL);
}
static void capture_stop(void) {
  gg_log_set_sink(NULL, NULL);
}

static gg_device *open_cpu(void) {
  gg_device *dev = NULL;
  if (gg_device_open("cpu", &dev)) return NULL;
  return dev;
}

static gg_pool *new_pool(gg_device *dev, const char *budget, unsigned trim_every) {
  gg_pool_config cfg;
  gg_pool_config_default(&cfg);
  cfg.budget = budget;
  cfg.trim_every = trim_every;
  gg_pool *p = NULL;
  if (gg_pool_new(dev, &cfg, &p)) return NULL;
  return p;
}

static gg_pool_stats stats_of(gg_pool *p) {
  gg_pool_stats s;
  gg_pool_get_stats(p, &s);
  return s;
}

/* ---- budget specs ------------------------------------------------------- */

static void test_budget_parse(void) {
  gg_mem_budget b;
  char err[256];
  ASSERT_OK(gg_mem_budget_parse("3.5G", &b, err, sizeof err));
  ASSERT_EQ(b.kind, GG_BUDGET_BYTES);
  ASSERT_U64_EQ(b.bytes, 3584ull << 20);
  ASSERT_OK(gg_mem_budget_parse("4560M", &b, err, sizeof err));
  ASSERT_U64_EQ(gg_mem_budget_resolve(&b, 1ull << 40, 0), 4560ull << 20);
  ASSERT_OK(gg_mem_budget_parse("0.8", &b, err, sizeof err));
  ASSERT_EQ(b.kind, GG_BUDGET_OF_TOTAL);
  ASSERT_U64_EQ(gg_mem_budget_resolve(&b, 1000, 500), 800);
  ASSERT_OK(gg_mem_budget_parse(" 80% ", &b, err, sizeof err));
  ASSERT_EQ(b.kind, GG_BUDGET_OF_TOTAL);
  ASSERT_U64_EQ(gg_mem_budget_resolve(&b, 1000, 500), 800);
  ASSERT_OK(gg_mem_budget_parse("80%free", &b, err, sizeof err));
  ASSERT_EQ(b.kind, GG_BUDGET_OF_FREE);
  ASSERT_U64_EQ(gg_mem_budget_resolve(&b, 1000, 500), 400);
  ASSERT_OK(gg_mem_budget_parse("0.5free", &b, err, sizeof err));
  ASSERT_U64_EQ(gg_mem_budget_resolve(&b, 1000, 500), 250);
  ASSERT_OK(gg_mem_budget_parse("100%", &b, err, sizeof err));
  ASSERT_U64_EQ(gg_mem_budget_resolve(&b, 1000, 500), 1000);
  ASSERT_OK(gg_mem_budget_parse("none", &b, err, sizeof err));
  ASSERT_EQ(b.kind, GG_BUDGET_NONE);
  ASSERT_OK(gg_mem_budget_parse("", &b, err, sizeof err));
  ASSERT_EQ(b.kind, GG_BUDGET_NONE);
  ASSERT_OK(gg_mem_budget_parse("2", &b, err, sizeof err)); /* > 1: bytes */
  ASSERT_EQ(b.kind, GG_BUDGET_BYTES);
  ASSERT_U64_EQ(b.bytes, 2);
  ASSERT_EQ(gg_mem_budget_parse("150%", &b, err, sizeof err), GG_EINVAL);
  ASSERT_CONTAINS(err, "percentage must be in (0, 100]");
  ASSERT_EQ(gg_mem_budget_parse("1.5free", &b, err, sizeof err), GG_EINVAL);
  ASSERT_EQ(gg_mem_budget_parse("lots", &b, err, sizeof err), GG_EINVAL);
  ASSERT_CONTAINS(err, "invalid memory budget 'lots'");
  ASSERT_CONTAINS(err, "3.5G");
  ASSERT_EQ(gg_mem_budget_parse("-1G", &b, err, sizeof err), GG_EINVAL);
  ASSERT_EQ(gg_mem_budget_parse("abc%", &b, err, sizeof err), GG_EINVAL);

  /* A pool resolves fractions against the device. */
  gg_device *dev = open_cpu();
  ASSERT_TRUE(dev != NULL);
  uint64_t free_b = 0, total = 0;
  ASSERT_OK(gg_device_get_memory(dev, &free_b, &total));
  gg_pool *p = new_pool(dev, "50%", 0);
  ASSERT_TRUE(p != NULL);
  ASSERT_U64_EQ(gg_pool_budget(p), (uint64_t)((double)total * 0.5));
  gg_pool_free(p);
  gg_pool *bad = NULL;
  gg_pool_config cfg;
  gg_pool_config_default(&cfg);
  cfg.budget = "12 parsecs";
  capture_start();
  ASSERT_EQ(gg_pool_new(dev, &cfg, &bad), GG_EINVAL);
  capture_stop();
  ASSERT_TRUE(bad == NULL);
  ASSERT_CONTAINS(g_log, "invalid memory budget '12 parsecs'");
  gg_device_free(dev);
}

/* ---- split / merge / bins ----------------------------------------------- */

static void test_split_merge(void) {
  gg_device *dev = open_cpu();
  gg_pool *p = new_pool(dev, NULL, 0);
  ASSERT_TRUE(p != NULL);
  gg_block *a, *b, *c;
  ASSERT_OK(gg_pool_alloc(p, 1000, "t", &a));
  ASSERT_EQ(gg_block_size(a), 1000);
  ASSERT_EQ(gg_block_capacity(a), 1024); /* rounded to 512 */
  ASSERT_EQ(gg_block_offset(a), 0);
  ASSERT_OK(gg_pool_alloc(p, 512, "t", &b));
  ASSERT_OK(gg_pool_alloc(p, 4096, "t", &c));
  /* Carved from the same 2 MiB small segment, back to back. */
  ASSERT_TRUE(gg_block_devmem(a) == gg_block_devmem(b));
  ASSERT_TRUE(gg_block_devmem(a) == gg_block_devmem(c));
  ASSERT_EQ(gg_block_offset(b), 1024);
  ASSERT_EQ(gg_block_offset(c), 1536);
  gg_pool_stats s = stats_of(p);
  ASSERT_U64_EQ(s.reserved, 2 * MiB);
  ASSERT_U64_EQ(s.reserved_small, 2 * MiB);
  ASSERT_U64_EQ(s.segments, 1);
  ASSERT_U64_EQ(s.blocks, 3);
  ASSERT_U64_EQ(s.free_blocks, 1); /* the tail */
  ASSERT_U64_EQ(s.allocated, 1024 + 512 + 4096);
  ASSERT_U64_EQ(s.requested, 1000 + 512 + 4096);
  ASSERT_U64_EQ(s.n_cache_misses, 1);
  ASSERT_U64_EQ(s.n_cache_hits, 2);
  ASSERT_U64_EQ(gg_device_mem_in_use(dev), 2 * MiB);
  /* Free the middle: a hole that does not merge (neighbours live). */
  gg_block_free(b);
  s = stats_of(p);
  ASSERT_U64_EQ(s.free_blocks, 2);
  ASSERT_U64_EQ(s.largest_free, 2 * MiB - 1024 - 512 - 4096);
  /* Free a: merges with the hole into [0, 1536). */
  gg_block_free(a);
  s = stats_of(p);
  ASSERT_U64_EQ(s.free_blocks, 2);
  /* Reuse: 1536 bytes fit exactly at offset 0 (best fit over the tail). */
  ASSERT_OK(gg_pool_alloc(p, 1536, "t", &a));
  ASSERT_EQ(gg_block_offset(a), 0);
  gg_block_free(a);
  /* Free c: everything coalesces into one block covering the segment. */
  gg_block_free(c);
  s = stats_of(p);
  ASSERT_U64_EQ(s.free_blocks, 1);
  ASSERT_U64_EQ(s.largest_free, 2 * MiB);
  ASSERT_U64_EQ(s.allocated, 0);
  ASSERT_NEAR(s.fragmentation, 0.0, 1e-12);
  ASSERT_U64_EQ(s.reserved, 2 * MiB); /* cached, not given back */
  gg_pool_free(p);
  ASSERT_U64_EQ(gg_device_mem_in_use(dev), 0);
  gg_device_free(dev);
}

static void test_best_fit(void) {
  gg_device *dev = open_cpu();
  gg_pool *p = new_pool(dev, NULL, 0);
  /* Holes of 16K, 4K, 8K separated by live 512-byte fences. */
  size_t holes[3] = {16 * KiB, 4 * KiB, 8 * KiB};
  gg_block *h[3], *fence[3];
  for (int i = 0; i < 3; i++) {
    ASSERT_OK(gg_pool_alloc(p, holes[i], "hole", &h[i]));
    ASSERT_OK(gg_pool_alloc(p, 512, "fence", &fence[i]));
  }
  size_t off8k = gg_block_offset(h[2]), off4k = gg_block_offset(h[1]);
  for (int i = 0; i < 3; i++)
    gg_block_free(h[i]);
  /* 6K: the smallest hole that fits is the 8K one, not the 16K one nor the tail. */
  gg_block *x, *y, *z;
  ASSERT_OK(gg_pool_alloc(p, 6 * KiB, "x", &x));
  ASSERT_EQ(gg_block_offset(x), off8k);
  /* 4K exactly: the 4K hole. */
  ASSERT_OK(gg_pool_alloc(p, 4 * KiB, "y", &y));
  ASSERT_EQ(gg_block_offset(y), off4k);
  /* 2K: the 2K remainder of the 8K hole (split off behind x). */
  ASSERT_OK(gg_pool_alloc(p, 2 * KiB, "z", &z));
  ASSERT_EQ(gg_block_offset(z), off8k + 6 * KiB);
  gg_block_free(x);
  gg_block_free(y);
  gg_block_free(z);
  for (int i = 0; i < 3; i++)
    gg_block_free(fence[i]);
  ASSERT_U64_EQ(stats_of(p).free_blocks, 1);
  gg_pool_free(p);
  gg_device_free(dev);
}

static void test_small_large_pools(void) {
  gg_device *dev = open_cpu();
  gg_pool *p = new_pool(dev, NULL, 0);
  gg_block *small, *large, *huge, *big2;
  ASSERT_OK(gg_pool_alloc(p, 1 * MiB, "s", &small)); /* 1 MiB is still small */
  ASSERT_OK(gg_pool_alloc(p, 1 * MiB + 1, "l", &large));
  gg_pool_stats s = stats_of(p);
  ASSERT_U64_EQ(s.reserved_small, 2 * MiB);
  ASSERT_U64_EQ(s.reserved_large, 20 * MiB); /* shared large segment */
  ASSERT_TRUE(gg_block_devmem(small) != gg_block_devmem(large));
  /* 11 MiB fits the cached tail of the shared segment: a cache hit. */
  ASSERT_OK(gg_pool_alloc(p, 11 * MiB + 5, "h", &huge));
  ASSERT_TRUE(gg_block_devmem(huge) == gg_block_devmem(large));
  ASSERT_U64_EQ(stats_of(p).n_cache_hits, 1);
  gg_block_free(huge);
  /* Over 10 MiB and no fit: own segment rounded to 2 MiB. The pool says so
   * beforehand (gg_pool_footprint): the whole 26 MiB, not the 25 MiB + 512
   * asked, and for a cached block with a short tail, the whole block. */
  ASSERT_U64_EQ(gg_pool_footprint(p, 25 * MiB + 5), 26 * MiB);
  ASSERT_U64_EQ(gg_pool_footprint(p, 3 * MiB + 5), 3 * MiB + 512); /* tail split off */
  ASSERT_U64_EQ(gg_pool_footprint(p, 100), 512);
  ASSERT_OK(gg_pool_alloc(p, 25 * MiB + 5, "h", &huge));
  s = stats_of(p);
  ASSERT_U64_EQ(s.reserved_large, 20 * MiB + 26 * MiB);
  /* Large-pool tails of <= 1 MiB are not split off: they stay in the block. */
  ASSERT_EQ(gg_block_capacity(huge), 26 * MiB);
  gg_block_free(large); /* the 20 MiB segment is whole again */
  ASSERT_U64_EQ(gg_pool_footprint(p, 19 * MiB + 512 * KiB), 20 * MiB);
  ASSERT_OK(gg_pool_alloc(p, 19 * MiB + 512 * KiB, "l2", &big2));
  ASSERT_EQ(gg_block_capacity(big2), 20 * MiB); /* 512 KiB tail kept inside */
  ASSERT_EQ(stats_of(p).segments, 3);
  gg_block_free(big2);
  gg_block_free(small);
  gg_block_free(huge);
  uint64_t released = 0;
  ASSERT_OK(gg_pool_trim(p, &released));
  ASSERT_U64_EQ(released, 2 * MiB + 20 * MiB + 26 * MiB);
  ASSERT_U64_EQ(gg_device_mem_in_use(dev), 0);
  /* 23.25 MiB takes a 24 MiB segment, its 0.75 MiB tail kept inside; under
   * a 23.5 MiB budget the segment is cut to the request, and the footprint
   * says which. */
  const size_t odd = 23 * MiB + 256 * KiB + 5, odd_rounded = 23 * MiB + 256 * KiB + 512;
  ASSERT_U64_EQ(gg_pool_footprint(p, odd), 24 * MiB);
  gg_pool_free(p);
  p = new_pool(dev, "24641536", 0); /* 23.5 MiB */
  ASSERT_U64_EQ(gg_pool_footprint(p, odd), odd_rounded);
  ASSERT_OK(gg_pool_alloc(p, odd, "odd", &big2));
  ASSERT_EQ(gg_block_capacity(big2), odd_rounded);
  gg_block_free(big2);
  gg_pool_free(p);
  gg_device_free(dev);
}

/* ---- budget and OOM ----------------------------------------------------- */

/* A probe that does not fit answers GG_EBUDGET without an OOM event: no
 * count, no remembered report, no warning; a real allocation still gets all
 * three. The engine's memory-aware plan asks this way. */
static void test_try_alloc_is_quiet(void) {
  gg_device *dev = open_cpu();
  gg_pool *p = new_pool(dev, "8M", 0);
  ASSERT_TRUE(p != NULL);
  gg_block *a = NULL, *b = NULL, *c = NULL;
  ASSERT_OK(gg_pool_alloc(p, 6 * MiB, "model:m/weights", &a));
  ASSERT_OK(gg_pool_try_alloc(p, 1 * MiB, "engine/plan-probe", &b));
  ASSERT_TRUE(b != NULL);
  gg_block_free(b);
  capture_start();
  int rc = gg_pool_try_alloc(p, 4 * MiB, "engine/plan-probe", &c);
  capture_stop();
  ASSERT_EQ(rc, GG_EBUDGET);
  ASSERT_TRUE(c == NULL);
  ASSERT_FALSE(strstr(g_log, "budget exceeded"));
  ASSERT_U64_EQ(stats_of(p).n_ooms, 0);
  gg_oom_report r;
  ASSERT_EQ(gg_pool_last_oom(p, &r), GG_ENOTFOUND);
  capture_start();
  rc = gg_pool_alloc(p, 4 * MiB, "request:1/activations", &c);
  capture_stop();
  ASSERT_EQ(rc, GG_EBUDGET);
  ASSERT_CONTAINS(g_log, "budget exceeded");
  ASSERT_U64_EQ(stats_of(p).n_ooms, 1);
  ASSERT_OK(gg_pool_last_oom(p, &r));
  gg_block_free(a);
  gg_pool_free(p);
  gg_device_free(dev);
}

static void test_budget_enforced(void) {
  gg_device *dev = open_cpu();
  gg_pool *p = new_pool(dev, "8M", 0);
  ASSERT_TRUE(p != NULL);
  ASSERT_U64_EQ(gg_pool_budget(p), 8 * MiB);
  gg_block *a, *b, *c = NULL;
  /* 3 MiB would like a 20 MiB segment; the budget makes it exact. */
  ASSERT_OK(gg_pool_alloc(p, 3 * MiB, "model:m/weights", &a));
  ASSERT_U64_EQ(stats_of(p).reserved, 3 * MiB);
  ASSERT_OK(gg_pool_alloc(p, 4 * MiB, "request:1/activations", &b));
  ASSERT_U64_EQ(stats_of(p).reserved, 7 * MiB);
  gg_oom_report r;
  capture_start();
  ASSERT_EQ(gg_pool_alloc_ex(p, 2 * MiB, "request:2/activations", NULL, &c, &r), GG_EBUDGET);
  capture_stop();
  ASSERT_TRUE(c == NULL);
  ASSERT_EQ(r.error, GG_EBUDGET);
  ASSERT_U64_EQ(r.requested, 2 * MiB);
  ASSERT_U64_EQ(r.allocated, 7 * MiB);
  ASSERT_U64_EQ(r.reserved, 7 * MiB);
  ASSERT_U64_EQ(r.budget, 8 * MiB);
  ASSERT_U64_EQ(r.largest_free, 0);
  ASSERT_STREQ(r.owner, "request:2/activations");
  ASSERT_EQ(r.n_owners, 2);
  ASSERT_STREQ(r.owners[0].owner, "request:1/activations");
  ASSERT_U64_EQ(r.owners[0].bytes, 4 * MiB);
  ASSERT_STREQ(r.owners[1].owner, "model:m/weights");
  ASSERT_CONTAINS(r.text, "memory budget exceeded on cpu");
  ASSERT_CONTAINS(r.text, "request:2/activations requested 2.00 MiB (2097152 bytes)");
  ASSERT_CONTAINS(r.text, "allocated 7.00 MiB, reserved 7.00 MiB, budget 8.00 MiB");
  ASSERT_CONTAINS(r.text, "largest free block 0 B");
  ASSERT_CONTAINS(r.text, "request:1/activations 4.00 MiB (1 blocks), model:m/weights 3.00 MiB");
  ASSERT_CONTAINS(g_log, "WARN  [MEM] memory budget exceeded on cpu");
  gg_oom_report last;
  ASSERT_OK(gg_pool_last_oom(p, &last));
  ASSERT_STREQ(last.text, r.text);
  gg_pool_stats s = stats_of(p);
  ASSERT_U64_EQ(s.n_ooms, 1);
  ASSERT_LE(s.peak_reserved, 8 * MiB);
  /* A freed block is reused from the cache within the budget. */
  gg_block_free(b);
  ASSERT_OK(gg_pool_alloc(p, 2 * MiB, "request:2/activations", &c));
  ASSERT_TRUE(gg_block_devmem(c) != gg_block_devmem(a));
  s = stats_of(p);
  ASSERT_U64_EQ(s.reserved, 7 * MiB);
  gg_block_free(c);
  /* 4 MiB cached segment + 3 MiB live; 5 MiB needs a new segment: the
   * cached one is too small for it ("outgrown") and goes back first. */
  ASSERT_OK(gg_pool_alloc(p, 5 * MiB, "request:3/activations", &b));
  s = stats_of(p);
  ASSERT_U64_EQ(s.n_ooms, 1); /* no new OOM */
  ASSERT_U64_EQ(s.reserved, 8 * MiB);
  ASSERT_U64_EQ(s.bytes_trimmed, 4 * MiB);
  ASSERT_U64_EQ(gg_device_mem_in_use(dev), 8 * MiB);
  /* Larger than the whole budget. */
  ASSERT_EQ(gg_pool_alloc_ex(p, 9 * MiB, "x", NULL, &c, &r), GG_EBUDGET);
  ASSERT_U64_EQ(r.requested, 9 * MiB);
  gg_block_free(a);
  gg_block_free(b);
  /* Lowering the budget trims what no longer fits. */
  ASSERT_OK(gg_pool_set_budget(p, 1 * MiB));
  ASSERT_U64_EQ(gg_device_mem_in_use(dev), 0);
  gg_pool_free(p);
  gg_device_free(dev);
}

/* The OOM path proper: the budget refuses, the cached (small-pool) segment
 * goes back, the retry fits. */
static void test_budget_free_and_retry(void) {
  gg_device *dev = open_cpu();
  gg_pool *p = new_pool(dev, "4M", 0);
  gg_block *s1, *big;
  ASSERT_OK(gg_pool_alloc(p, 1 * MiB, "workspace", &s1)); /* 2 MiB small segment */
  gg_block_free(s1);
  ASSERT_U64_EQ(stats_of(p).reserved, 2 * MiB);
  ASSERT_OK(gg_pool_alloc(p, 3 * MiB, "model:m/weights", &big)); /* 2 + 3 > 4 */
  gg_pool_stats s = stats_of(p);
  ASSERT_U64_EQ(s.n_ooms, 0);
  ASSERT_U64_EQ(s.bytes_trimmed, 2 * MiB);
  ASSERT_U64_EQ(s.reserved, 3 * MiB);
  ASSERT_U64_EQ(s.reserved_small, 0);
  ASSERT_U64_EQ(gg_device_mem_in_use(dev), 3 * MiB);
  gg_block_free(big);
  gg_pool_free(p);
  gg_device_free(dev);
}

/* Varying big tensors: a cached segment too small for the next one is given
 * back before the pool grows, so reserved tracks the live peak. */
static void test_release_outgrown(void) {
  gg_device *dev = open_cpu();
  gg_pool *p = new_pool(dev, NULL, 0);
  gg_block *b;
  for (size_t mb = 12; mb <= 40; mb += 4) {
    ASSERT_OK(gg_pool_alloc(p, mb * MiB, "request:x/activations", &b));
    gg_block_free(b);
    gg_pool_stats s = stats_of(p);
    ASSERT_U64_EQ(s.reserved, mb * MiB); /* only the latest segment */
    ASSERT_U64_EQ(s.segments, 1);
  }
  /* A smaller one reuses the cached 40 MiB segment (a hit, no growth). */
  ASSERT_OK(gg_pool_alloc(p, 20 * MiB, "request:y/activations", &b));
  ASSERT_U64_EQ(stats_of(p).reserved, 40 * MiB);
  gg_block_free(b);
  gg_pool_free(p);
  gg_device_free(dev);
}

static void test_device_oom_report(void) {
  gg_device *dev = open_cpu();
  gg_pool *p = new_pool(dev, NULL, 0);
  gg_block *w, *x = NULL;
  ASSERT_OK(gg_pool_alloc(p, 5 * MiB, "model:blazeface/weights", &w));
  gg_oom_report r;
  size_t huge = (size_t)1 << 52; /* 4 PiB: no host has it */
  capture_start();
  ASSERT_EQ(gg_pool_alloc_ex(p, huge, "request:9/activations", NULL, &x, &r), GG_EDEV_OOM);
  capture_stop();
  ASSERT_TRUE(x == NULL);
  ASSERT_EQ(r.error, GG_EDEV_OOM);
  ASSERT_U64_EQ(r.requested, huge);
  ASSERT_U64_EQ(r.reserved, 20 * MiB);
  ASSERT_U64_EQ(r.allocated, 5 * MiB);
  ASSERT_U64_EQ(r.largest_free, 15 * MiB);
  ASSERT_U64_EQ(r.budget, 0);
  ASSERT_CONTAINS(r.text, "device out of memory on cpu");
  ASSERT_CONTAINS(r.text, "budget unlimited");
  ASSERT_CONTAINS(r.text, "model:blazeface/weights 5.00 MiB");
  ASSERT_CONTAINS(g_log, "device out of memory on cpu");
  ASSERT_U64_EQ(stats_of(p).n_ooms, 1);
  gg_block_free(w);
  gg_pool_free(p);
  gg_device_free(dev);
}

/* ---- trim --------------------------------------------------------------- */

static void test_trim_cadence(void) {
  gg_device *dev = open_cpu();
  gg_pool *p = new_pool(dev, NULL, 3);
  gg_block *keep, *tmp[4];
  ASSERT_OK(gg_pool_alloc(p, 4 * KiB, "keep", &keep));
  for (int i = 0; i < 4; i++)
    ASSERT_OK(gg_pool_alloc(p, 3 * MiB * (size_t)(i + 4), "tmp", &tmp[i]));
  gg_pool_stats s = stats_of(p);
  uint64_t reserved = s.reserved;
  ASSERT_U64_EQ(reserved, gg_device_mem_in_use(dev));
  for (int i = 0; i < 4; i++)
    gg_block_free(tmp[i]);
  ASSERT_U64_EQ(stats_of(p).reserved, reserved); /* cached */
  uint64_t released = 99;
  ASSERT_EQ(gg_pool_request_done(p, &released), 0);
  ASSERT_U64_EQ(released, 0);
  ASSERT_EQ(gg_pool_request_done(p, NULL), 0);
  gg_log_set_level(GG_LOG_INFO);
  capture_start();
  ASSERT_EQ(gg_pool_request_done(p, &released), 1);
  capture_stop();
  gg_log_set_level(GG_LOG_WARN);
  /* Everything except the small segment holding `keep` went back. */
  ASSERT_U64_EQ(released, reserved - 2 * MiB);
  ASSERT_U64_EQ(gg_device_mem_in_use(dev), 2 * MiB);
  char want[128];
  snprintf(want, sizeof want, "INFO  [GPU] Memory cleanup completed: released %llu bytes",
           (unsigned long long)released);
  ASSERT_CONTAINS(g_log, want);
  s = stats_of(p);
  ASSERT_U64_EQ(s.n_trims, 1);
  ASSERT_U64_EQ(s.requests_done, 3);
  ASSERT_U64_EQ(s.segments, 1);
  ASSERT_U64_EQ(s.peak_reserved, reserved);
  gg_pool_reset_peaks(p);
  ASSERT_U64_EQ(stats_of(p).peak_reserved, 2 * MiB);
  ASSERT_U64_EQ(stats_of(p).peak_allocated, 4 * KiB);
  gg_block_free(keep);
  ASSERT_OK(gg_pool_trim(p, &released));
  ASSERT_U64_EQ(released, 2 * MiB);
  ASSERT_U64_EQ(gg_device_mem_in_use(dev), 0);
  gg_pool_free(p);
  gg_device_free(dev);
}

/* ---- stats, owners, JSON ------------------------------------------------ */

static void test_owner_stats_json(void) {
  gg_device *dev = open_cpu();
  gg_pool *p = new_pool(dev, NULL, 0);
  gg_block *w[3], *a[2], *ws;
  for (int i = 0; i < 3; i++)
    ASSERT_OK(gg_pool_alloc(p, 100 * KiB, "model:blazeface/weights", &w[i]));
  for (int i = 0; i < 2; i++)
    ASSERT_OK(gg_pool_alloc(p, 3 * MiB, "request:42/activations", &a[i]));
  ASSERT_OK(gg_pool_alloc(p, 700, "workspace", &ws));
  ASSERT_U64_EQ(gg_pool_owner_bytes(p, "model:blazeface/weights"), 3 * 100 * KiB);
  ASSERT_U64_EQ(gg_pool_owner_bytes(p, "request:42/activations"), 6 * MiB);
  ASSERT_U64_EQ(gg_pool_owner_bytes(p, "workspace"), 1024);
  ASSERT_U64_EQ(gg_pool_owner_bytes(p, "nobody"), 0);
  gg_pool_stats s = stats_of(p);
  ASSERT_EQ(s.n_owners, 3);
  ASSERT_EQ(s.n_owners_listed, 3);
  ASSERT_STREQ(s.owners[0].owner, "request:42/activations");
  ASSERT_U64_EQ(s.owners[0].blocks, 2);
  ASSERT_STREQ(s.owners[1].owner, "model:blazeface/weights");
  ASSERT_STREQ(s.owners[2].owner, "workspace");
  uint64_t sum = 0;
  for (size_t i = 0; i < s.n_owners_listed; i++)
    sum += s.owners[i].bytes;
  ASSERT_U64_EQ(sum, s.allocated);
  ASSERT_U64_EQ(s.n_allocs, 6);
  /* Fragmentation: free w[1] makes a 100K hole in the small segment. */
  gg_block_free(w[1]);
  s = stats_of(p);
  uint64_t cached = s.reserved - s.allocated;
  ASSERT_U64_EQ(s.cached, cached);
  ASSERT_U64_EQ(s.largest_free, 20 * MiB - 6 * MiB); /* large segment tail */
  ASSERT_NEAR(s.fragmentation, 1.0 - (double)(14 * MiB) / (double)cached, 1e-12);
  ASSERT_GT_F(s.fragmentation, 0.0);
  json_t *j = gg_pool_stats_to_json(&s);
  ASSERT_TRUE(j != NULL);
  ASSERT_STREQ(json_string_value(json_object_get(j, "device")), "cpu");
  ASSERT_U64_EQ(json_integer_value(json_object_get(j, "allocated")), s.allocated);
  ASSERT_U64_EQ(json_integer_value(json_object_get(j, "reserved")), s.reserved);
  ASSERT_U64_EQ(json_integer_value(json_object_get(j, "largest_free")), 14 * MiB);
  ASSERT_NEAR(json_real_value(json_object_get(j, "fragmentation")), s.fragmentation, 1e-12);
  ASSERT_U64_EQ(json_integer_value(json_object_get(json_object_get(j, "counts"), "frees")), 1);
  ASSERT_U64_EQ(
      json_integer_value(json_object_get(json_object_get(j, "owners"), "model:blazeface/weights")),
      200 * KiB);
  json_decref(j);
  /* Prometheus text: measured values, escaped labels, size reporting. */
  char prom[8192];
  size_t need = gg_pool_stats_to_prometheus(&s, 1, prom, sizeof prom);
  ASSERT_TRUE(need > 0 && need < sizeof prom);
  ASSERT_EQ(strlen(prom), need);
  char line[256];
  snprintf(line, sizeof line, "\ngpuguard_mem_allocated_bytes{device=\"cpu\"} %llu\n",
           (unsigned long long)s.allocated);
  ASSERT_CONTAINS(prom, line);
  ASSERT_CONTAINS(prom, "# TYPE gpuguard_mem_frees_total counter\n"
                        "gpuguard_mem_frees_total{device=\"cpu\"} 1\n");
  ASSERT_CONTAINS(
      prom, "gpuguard_mem_owner_bytes{device=\"cpu\",owner=\"model:blazeface/weights\"} 204800\n");
  char small[64];
  ASSERT_EQ(gg_pool_stats_to_prometheus(&s, 1, small, sizeof small), need);
  ASSERT_EQ(strlen(small), sizeof small - 1);
  gg_pool_stats q = s;
  snprintf(q.owners[0].owner, sizeof q.owners[0].owner, "a\"b\\c");
  gg_pool_stats_to_prometheus(&q, 0, prom, sizeof prom);
  ASSERT_CONTAINS(prom, "owner=\"a\\\"b\\\\c\"}");
  ASSERT_TRUE(strstr(prom, "# HELP") == NULL);
  gg_block_free(w[0]);
  gg_block_free(w[2]);
  gg_block_free(a[0]);
  gg_block_free(a[1]);
  gg_block_free(ws);
  s = stats_of(p);
  ASSERT_EQ(s.n_owners, 0);
  ASSERT_U64_EQ(s.allocated, 0);
  ASSERT_U64_EQ(s.n_frees, 6);
  ASSERT_U64_EQ(s.peak_allocated, 3 * 100 * KiB + 6 * MiB + 1024);
  /* Long owner tags are truncated, not overflowed. */
  char longtag[200];
  memset(longtag, 'x', sizeof longtag - 1);
  longtag[sizeof longtag - 1] = 0;
  ASSERT_OK(gg_pool_alloc(p, 10, longtag, &ws));
  ASSERT_EQ(strlen(gg_block_owner(ws)), GG_MEM_OWNER_MAX - 1);
  gg_block_free(ws);
  ASSERT_OK(gg_pool_alloc(p, 10, NULL, &ws));
  ASSERT_STREQ(gg_block_owner(ws), "unknown");
  gg_block_free(ws);
  ASSERT_EQ(gg_pool_alloc(p, 0, "zero", &ws), GG_EINVAL);
  gg_pool_free(p);
  gg_device_free(dev);
}

static void test_copy_roundtrip(void) {
  gg_device *dev = open_cpu();
  gg_pool *p = new_pool(dev, NULL, 0);
  gg_block *pad, *b;
  ASSERT_OK(gg_pool_alloc(p, 3000, "pad", &pad));
  ASSERT_OK(gg_pool_alloc(p, 1000, "data", &b));
  ASSERT_EQ(gg_block_offset(b) % GG_POOL_ALIGN, 0);
  unsigned char in[1000], out[1000];
  for (int i = 0; i < 1000; i++)
    in[i] = (unsigned char)(i * 7);
  ASSERT_OK(gg_block_copy_to(b, 0, in, sizeof in));
  memset(out, 0, sizeof out);
  ASSERT_OK(gg_block_copy_from(b, out, 0, sizeof out));
  ASSERT_TRUE(memcmp(in, out, sizeof in) == 0);
  /* host_ptr addresses (segment, offset), not the segment start. */
  unsigned char *hp = gg_block_host_ptr(b);
  ASSERT_TRUE(hp != NULL);
  ASSERT_EQ(hp[999], (unsigned char)(999 * 7));
  ASSERT_EQ(gg_block_copy_to(b, 900, in, 101), GG_ERANGE);
  ASSERT_OK(gg_block_copy_from(b, out, 900, 100));
  ASSERT_EQ(out[0], (unsigned char)(900 * 7));
  gg_block_free(b);
  gg_block_free(pad);
  gg_block_free(NULL);
  gg_pool_free(p);
  gg_pool_free(NULL);
  gg_device_free(dev);
}

/* ---- leak scopes -------------------------------------------------------- */

static void test_leak_scope(void) {
  gg_device *dev = open_cpu();
  gg_pool *p = new_pool(dev, NULL, 0);
  gg_host_stats hs0;
  ASSERT_OK(gg_host_get_stats(&hs0));
  gg_mem_scope *sc = gg_mem_scope_open("request:7");
  ASSERT_TRUE(sc != NULL);
  gg_block *a, *b, *c, *outside;
  ASSERT_OK(gg_pool_alloc_ex(p, 1000, "request:7/activations", sc, &a, NULL));
  ASSERT_OK(gg_pool_alloc_ex(p, 2 * MiB, "request:7/workspace", sc, &b, NULL));
  ASSERT_OK(gg_pool_alloc_ex(p, 300, "request:7/activations", sc, &c, NULL));
  ASSERT_OK(gg_pool_alloc(p, 300, "model:x/weights", &outside));
  void *h = gg_host_alloc_ex("request:7/decode", 5000, sc);
  void *h2 = gg_host_alloc_ex("request:7/tmp", 64, sc);
  ASSERT_TRUE(h != NULL && h2 != NULL);
  ASSERT_U64_EQ(gg_mem_scope_live_bytes(sc), 1000 + 2 * MiB + 300 + 5000 + 64);
  gg_block_free(c);
  gg_host_free(h2);
  capture_start();
  gg_mem_leaks lk;
  int n = gg_mem_scope_close(sc, &lk);
  capture_stop();
  ASSERT_EQ(n, 3);
  ASSERT_U64_EQ(lk.count, 3);
  ASSERT_U64_EQ(lk.bytes, 1000 + 2 * MiB + 5000);
  ASSERT_U64_EQ(lk.peak_bytes, 1000 + 2 * MiB + 300 + 5000 + 64);
  ASSERT_CONTAINS(g_log, "leak in scope 'request:7': device allocation of 1000 bytes owned by "
                         "'request:7/activations'");
  ASSERT_CONTAINS(g_log, "device allocation of 2097152 bytes owned by 'request:7/workspace'");
  ASSERT_CONTAINS(g_log, "host allocation of 5000 bytes owned by 'request:7/decode'");
  ASSERT_TRUE(strstr(g_log, "model:x/weights") == NULL);
  gg_pool_stats s = stats_of(p);
  ASSERT_U64_EQ(s.n_leaks, 2);
  ASSERT_U64_EQ(s.leaked_bytes, 1000 + 2 * MiB);
  gg_host_stats hs;
  ASSERT_OK(gg_host_get_stats(&hs));
  ASSERT_U64_EQ(hs.n_leaks - hs0.n_leaks, 1);
  ASSERT_U64_EQ(hs.leaked_bytes - hs0.leaked_bytes, 5000);
  /* Leaked allocations stay valid and can still be freed after the close. */
  gg_block_free(a);
  gg_block_free(b);
  gg_host_free(h);
  /* A clean scope reports nothing. */
  sc = gg_mem_scope_open("request:8");
  ASSERT_OK(gg_pool_alloc_ex(p, 1000, "request:8/activations", sc, &a, NULL));
  gg_block_free(a);
  ASSERT_EQ(gg_mem_scope_close(sc, &lk), 0);
  ASSERT_U64_EQ(lk.bytes, 0);
  ASSERT_EQ(gg_mem_scope_close(NULL, NULL), 0);
  gg_block_free(outside);
  gg_pool_free(p);
  gg_device_free(dev);
}

/* ---- host accounting and staging ---------------------------------------- */

static void test_host_accounting(void) {
  gg_host_stats s0, s;
  ASSERT_OK(gg_host_get_stats(&s0));
  gg_host_reset_peaks();
  char *a = gg_host_alloc("engine:weights-host", 10000);
  char *b = gg_host_alloc("engine:weights-host", 2000);
  char *c = gg_host_alloc("decode", 300);
  ASSERT_TRUE(a && b && c);
  ASSERT_EQ((uintptr_t)a % 64, 0);
  memset(a, 1, 10000);
  ASSERT_OK(gg_host_get_stats(&s));
  ASSERT_U64_EQ(s.allocated - s0.allocated, 12300);
  ASSERT_U64_EQ(s.blocks - s0.blocks, 3);
  ASSERT_U64_EQ(s.n_allocs - s0.n_allocs, 3);
  ASSERT_GE(s.peak_allocated, s.allocated);
  int found = 0;
  for (size_t i = 0; i < s.n_owners_listed; i++)
    if (!strcmp(s.owners[i].owner, "engine:weights-host")) {
      found = 1;
      ASSERT_U64_EQ(s.owners[i].bytes, 12000);
      ASSERT_U64_EQ(s.owners[i].blocks, 2);
    }
  ASSERT_TRUE(found);
  gg_host_free(a);
  gg_host_free(b);
  gg_host_free(c);
  gg_host_free(NULL);
  ASSERT_TRUE(gg_host_alloc("x", 0) == NULL);
  ASSERT_OK(gg_host_get_stats(&s));
  ASSERT_U64_EQ(s.allocated, s0.allocated);
  ASSERT_U64_EQ(s.n_frees - s0.n_frees, 3);
  ASSERT_GE(s.peak_allocated, s0.allocated + 12300);
  json_t *j = gg_host_stats_to_json(&s);
  ASSERT_TRUE(j != NULL);
  ASSERT_U64_EQ(json_integer_value(json_object_get(j, "frees")), s.n_frees);
  json_decref(j);
}

typedef struct counting_pinned {
  int allocs, frees, destroyed;
} counting_pinned;
static int cp_alloc(void *ctx, size_t size, void **out) {
  ((counting_pinned *)ctx)->allocs++;
  *out = malloc(size);
  return *out ? 0 : GG_ENOMEM;
}
static void cp_free(void *ctx, void *p) {
  ((counting_pinned *)ctx)->frees++;
  free(p);
}
static void cp_destroy(void *ctx) {
  ((counting_pinned *)ctx)->destroyed++;
}

static void test_staging(void) {
  /* Default (malloc-backed) implementation, counted as host memory. */
  gg_staging *st = gg_staging_new(NULL, NULL, 1 * MiB);
  ASSERT_TRUE(st != NULL);
  void *a, *b, *c;
  ASSERT_OK(gg_staging_acquire(st, 1000, &a));
  ASSERT_OK(gg_staging_acquire(st, 4000, &b));
  ASSERT_OK(gg_staging_release(st, a));
  ASSERT_OK(gg_staging_release(st, b));
  ASSERT_OK(gg_staging_acquire(st, 900, &c)); /* smallest fit: a */
  ASSERT_TRUE(c == a);
  gg_staging_stats ss;
  gg_staging_get_stats(st, &ss);
  ASSERT_U64_EQ(ss.n_hits, 1);
  ASSERT_U64_EQ(ss.n_allocs, 2);
  ASSERT_U64_EQ(ss.in_use, 1000);
  ASSERT_U64_EQ(ss.cached, 4000);
  int x;
  ASSERT_EQ(gg_staging_release(st, &x), GG_EINVAL);
  ASSERT_OK(gg_staging_release(st, c));
  gg_staging_free(st);
  /* A backend implementation: the cap decides what is cached. */
  counting_pinned cp = {0, 0, 0};
  static const gg_pinned_i iface = {cp_alloc, cp_free, cp_destroy};
  st = gg_staging_new(&iface, &cp, 5000);
  ASSERT_OK(gg_staging_acquire(st, 4000, &a));
  ASSERT_OK(gg_staging_acquire(st, 4000, &b));
  ASSERT_OK(gg_staging_release(st, a)); /* cached */
  ASSERT_OK(gg_staging_release(st, b)); /* over the cap: freed */
  ASSERT_EQ(cp.allocs, 2);
  ASSERT_EQ(cp.frees, 1);
  gg_staging_free(st);
  ASSERT_EQ(cp.frees, 2);
  ASSERT_EQ(cp.destroyed, 1);
}

/* ---- device reset ------------------------------------------------------- */

static void test_drop_all(void) {
  gg_device *dev = open_cpu();
  gg_pool *p = new_pool(dev, NULL, 0);
  gg_mem_scope *sc = gg_mem_scope_open("req");
  gg_block *a, *b, *c;
  ASSERT_OK(gg_pool_alloc(p, 1000, "w", &a));
  ASSERT_OK(gg_pool_alloc_ex(p, 3 * MiB, "act", sc, &b, NULL));
  ASSERT_OK(gg_pool_alloc(p, 2000, "w", &c));
  gg_block_free(c);
  capture_start();
  ASSERT_EQ(gg_pool_drop_all(p), 2);
  capture_stop();
  ASSERT_CONTAINS(g_log, "2 live blocks invalidated");
  ASSERT_U64_EQ(gg_device_mem_in_use(dev), 0);
  gg_pool_stats s = stats_of(p);
  ASSERT_U64_EQ(s.reserved, 0);
  ASSERT_U64_EQ(s.allocated, 0);
  ASSERT_U64_EQ(s.segments, 0);
  ASSERT_EQ(s.n_owners, 0);
  ASSERT_TRUE(gg_block_devmem(a) == NULL);
  ASSERT_TRUE(gg_block_host_ptr(a) == NULL);
  char buf[8] = {0};
  ASSERT_EQ(gg_block_copy_to(a, 0, buf, sizeof buf), GG_EDEVICE_LOST);
  /* The pool works after the reset. */
  ASSERT_OK(gg_pool_alloc(p, 1000, "w", &c));
  ASSERT_OK(gg_block_copy_to(c, 0, buf, sizeof buf));
  gg_block_free(a);
  gg_block_free(b);
  gg_block_free(c);
  ASSERT_EQ(gg_mem_scope_close(sc, NULL), 0);
  gg_pool_free(p);
  gg_device_free(dev);
}

/* ---- threads ------------------------------------------------------------ */

typedef struct thr_arg {
  gg_pool *pool;
  unsigned seed;
  int failures;
} thr_arg;

static void *thr_main(void *p) {
  thr_arg *t = p;
  gg_block *live[64] = {0};
  unsigned x = t->seed;
  for (int i = 0; i < 20000; i++) {
    x = x * 1103515245u + 12345u;
    int k = (int)((x >> 8) % 64);
    if (live[k]) {
      unsigned char *hp = gg_block_host_ptr(live[k]);
      if (hp[0] != (unsigned char)k) t->failures++;
      gg_block_free(live[k]);
      live[k] = NULL;
    } else {
      size_t sz = 1 + (x >> 12) % (x & 1 ? 64 * KiB : 3 * MiB);
      if (gg_pool_alloc(t->pool, sz, t->seed & 1 ? "thread:a" : "thread:b", &live[k])) {
        t->failures++;
        continue;
      }
      unsigned char *hp = gg_block_host_ptr(live[k]);
      hp[0] = (unsigned char)k;
    }
  }
  for (int k = 0; k < 64; k++)
    gg_block_free(live[k]);
  return NULL;
}

static void test_threads(void) {
  gg_device *dev = open_cpu();
  gg_pool *p = new_pool(dev, NULL, 0);
  pthread_t th[4];
  thr_arg args[4];
  for (int i = 0; i < 4; i++) {
    args[i] = (thr_arg){p, (unsigned)i + 1, 0};
    ASSERT_EQ(pthread_create(&th[i], NULL, thr_main, &args[i]), 0);
  }
  for (int i = 0; i < 4; i++)
    pthread_join(th[i], NULL);
  for (int i = 0; i < 4; i++)
    ASSERT_EQ(args[i].failures, 0);
  gg_pool_stats s = stats_of(p);
  ASSERT_U64_EQ(s.allocated, 0);
  ASSERT_U64_EQ(s.blocks, 0);
  ASSERT_U64_EQ(s.n_allocs, s.n_frees);
  ASSERT_U64_EQ(s.free_blocks, s.segments); /* everything coalesced */
  ASSERT_OK(gg_pool_trim(p, NULL));
  ASSERT_U64_EQ(gg_device_mem_in_use(dev), 0);
  gg_pool_free(p);
  gg_device_free(dev);
}

int main(int argc, char **argv) {
  gg_log_set_level(GG_LOG_WARN);
  static const gg_test_case cases[] = {
      {"budget_parse", test_budget_parse},
      {"split_merge", test_split_merge},
      {"best_fit", test_best_fit},
      {"small_large_pools", test_small_large_pools},
      {"budget_enforced", test_budget_enforced},
      {"try_alloc_is_quiet", test_try_alloc_is_quiet},
      {"budget_free_and_retry", test_budget_free_and_retry},
      {"release_outgrown", test_release_outgrown},
      {"device_oom_report", test_device_oom_report},
      {"trim_cadence", test_trim_cadence},
      {"owner_stats_json", test_owner_stats_json},
      {"copy_roundtrip", test_copy_roundtrip},
      {"leak_scope", test_leak_scope},
      {"host_accounting", test_host_accounting},
      {"staging", test_staging},
      {"drop_all", test_drop_all},
      {"threads", test_threads},
      {0},
  };
  return gg_test_main(argc, argv, cases);
}
