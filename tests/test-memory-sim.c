/* gg_pool on the simulated constrained GPU: the driver's own out-of-memory
 * (sim capacity) and injected raw-allocation faults. Skips visibly when the
 * sim device is not in this build. */
#include "gpuguard/device.h"
#include "gpuguard/error.h"
#include "gpuguard/log.h"
#include "gpuguard/memory.h"
#include "test.h"

#define MiB ((size_t)1 << 20)

static gg_device *open_sim(const char *spec) {
  gg_device *dev = NULL;
  int rc = gg_device_open(spec, &dev);
  if (rc) {
    fprintf(stderr, "  gg_device_open(\"%s\") -> %s\n", spec, gg_err_name(rc));
    return NULL;
  }
  return dev;
}

static gg_pool_stats stats_of(gg_pool *p) {
  gg_pool_stats s;
  gg_pool_get_stats(p, &s);
  return s;
}

/* The 4.56 GB card with a detector and an embedder: the sequence exceeds the
 * device, and the caller gets the pool's report, not a failure inside the
 * driver. Then a cached segment is given back to make room. */
static void test_sim_capacity_report(void) {
  gg_device *dev = open_sim("sim:mem=4560M");
  if (!dev) SKIP("sim device not available in this build");
  gg_pool *p = NULL;
  ASSERT_OK(gg_pool_new(dev, NULL, &p));
  gg_block *det, *emb, *r1, *r2 = NULL, *r3;
  ASSERT_OK(gg_pool_alloc(p, 1500 * MiB, "model:detector/weights", &det));
  ASSERT_OK(gg_pool_alloc(p, 2000 * MiB, "model:embedder/weights", &emb));
  ASSERT_OK(gg_pool_alloc(p, 600 * MiB, "request:1/activations", &r1));
  ASSERT_U64_EQ(gg_device_mem_in_use(dev), 4100 * MiB);
  gg_oom_report r;
  ASSERT_EQ(gg_pool_alloc_ex(p, 600 * MiB, "request:2/activations", NULL, &r2, &r), GG_EDEV_OOM);
  ASSERT_TRUE(r2 == NULL);
  ASSERT_EQ(r.error, GG_EDEV_OOM);
  ASSERT_STREQ(r.device, "sim");
  ASSERT_U64_EQ(r.requested, 600 * MiB);
  ASSERT_U64_EQ(r.allocated, 4100 * MiB);
  ASSERT_U64_EQ(r.reserved, 4100 * MiB);
  ASSERT_U64_EQ(r.budget, 0);
  ASSERT_U64_EQ(r.released, 0);
  ASSERT_EQ(r.n_owners, 3);
  ASSERT_STREQ(r.owners[0].owner, "model:embedder/weights");
  ASSERT_U64_EQ(r.owners[0].bytes, 2000 * MiB);
  ASSERT_STREQ(r.owners[1].owner, "model:detector/weights");
  ASSERT_STREQ(r.owners[2].owner, "request:1/activations");
  ASSERT_CONTAINS(r.text,
                  "device out of memory on sim: request:2/activations requested 600.00 MiB");
  ASSERT_CONTAINS(r.text, "reserved 4.00 GiB");
  ASSERT_CONTAINS(r.text, "model:embedder/weights 1.95 GiB");
  ASSERT_U64_EQ(gg_device_mem_in_use(dev), 4100 * MiB); /* nothing leaked by the failure */
  /* With request 1 finished its 600 MiB segment is cached; 800 MiB does not
   * fit in it (nor next to it on the device): the pool gives the too-small
   * cached segment back before asking the driver, and the request fits. */
  gg_block_free(r1);
  ASSERT_OK(gg_pool_alloc(p, 800 * MiB, "request:3/activations", &r3));
  gg_pool_stats s = stats_of(p);
  ASSERT_U64_EQ(s.n_ooms, 1);
  ASSERT_U64_EQ(s.bytes_trimmed, 600 * MiB);
  ASSERT_U64_EQ(s.reserved, 4300 * MiB);
  ASSERT_U64_EQ(gg_device_mem_in_use(dev), 4300 * MiB);
  ASSERT_LE(s.peak_reserved, 4560 * MiB);
  gg_block_free(det);
  gg_block_free(emb);
  gg_block_free(r3);
  ASSERT_OK(gg_pool_trim(p, NULL));
  ASSERT_U64_EQ(gg_device_mem_in_use(dev), 0);
  gg_pool_free(p);
  gg_device_free(dev);
}

/* An injected raw failure (3rd raw allocation) is absorbed by giving the
 * cached segment back and retrying. */
static void test_sim_fault_recovered(void) {
  gg_device *dev = open_sim("sim:mem=64M,faults=oom@3");
  if (!dev) SKIP("sim device with fault injection not available in this build");
  gg_pool *p = NULL;
  ASSERT_OK(gg_pool_new(dev, NULL, &p));
  gg_block *a, *b1, *b2, *c;
  ASSERT_OK(gg_pool_alloc(p, 1000, "request:1/activations", &a));     /* raw #1: 2 MiB */
  ASSERT_OK(gg_pool_alloc(p, 1 * MiB, "request:1/activations", &b1)); /* same segment */
  ASSERT_OK(gg_pool_alloc(p, 1 * MiB, "request:1/activations", &b2)); /* raw #2: 2 MiB */
  ASSERT_TRUE(gg_block_devmem(b2) != gg_block_devmem(a));
  gg_block_free(b2); /* its 2 MiB segment is cached */
  ASSERT_OK(gg_pool_alloc(p, 30 * MiB, "request:2/activations", &c)); /* raw #3 fails, #4 ok */
  gg_pool_stats s = stats_of(p);
  ASSERT_U64_EQ(s.n_ooms, 0);
  ASSERT_U64_EQ(s.bytes_trimmed, 2 * MiB);
  ASSERT_U64_EQ(s.n_segment_allocs, 3);
  ASSERT_U64_EQ(s.reserved, 32 * MiB);
  ASSERT_U64_EQ(gg_device_mem_in_use(dev), 32 * MiB);
  ASSERT_OK(gg_block_copy_to(c, 30 * MiB - 4, "abcd", 4));
  gg_block_free(a);
  gg_block_free(b1);
  gg_block_free(c);
  gg_pool_free(p);
  ASSERT_U64_EQ(gg_device_mem_in_use(dev), 0);
  gg_device_free(dev);
}

/* With nothing cached there is nothing to retry with: the injected failure
 * becomes the report; the next allocation works. 30 MiB gets a segment of
 * exactly its size, so there is no smaller segment to fall back to. */
static void test_sim_fault_without_cache(void) {
  gg_device *dev = open_sim("sim:mem=64M,faults=oom@1");
  if (!dev) SKIP("sim device with fault injection not available in this build");
  gg_pool *p = NULL;
  ASSERT_OK(gg_pool_new(dev, NULL, &p));
  gg_block *a = NULL;
  gg_oom_report r;
  ASSERT_EQ(gg_pool_alloc_ex(p, 30 * MiB, "workspace", NULL, &a, &r), GG_EDEV_OOM);
  ASSERT_TRUE(a == NULL);
  ASSERT_U64_EQ(r.requested, 30 * MiB);
  ASSERT_U64_EQ(r.reserved, 0);
  ASSERT_U64_EQ(r.released, 0);
  ASSERT_STREQ(r.owner, "workspace");
  ASSERT_CONTAINS(r.text, "device out of memory on sim: workspace requested 30.00 MiB");
  ASSERT_OK(gg_pool_alloc(p, 30 * MiB, "workspace", &a));
  ASSERT_U64_EQ(stats_of(p).n_ooms, 1);
  gg_block_free(a);
  gg_pool_free(p);
  gg_device_free(dev);
}

/* A small request whose preferred 2 MiB segment is refused falls back to a
 * segment of just its rounded size before reporting anything. */
static void test_sim_fault_small_fallback(void) {
  gg_device *dev = open_sim("sim:mem=64M,faults=oom@1");
  if (!dev) SKIP("sim device with fault injection not available in this build");
  gg_pool *p = NULL;
  ASSERT_OK(gg_pool_new(dev, NULL, &p));
  gg_block *a = NULL;
  ASSERT_OK(gg_pool_alloc(p, 4000, "workspace", &a));
  gg_pool_stats s = stats_of(p);
  ASSERT_U64_EQ(s.n_ooms, 0);
  ASSERT_U64_EQ(s.reserved, 4096);
  ASSERT_U64_EQ(gg_device_mem_in_use(dev), 4096);
  gg_block_free(a);
  gg_pool_free(p);
  gg_device_free(dev);
}

/* Fractional budgets resolve against what the sim device reports. */
static void test_sim_fraction_budget(void) {
  gg_device *dev = open_sim("sim:mem=64M");
  if (!dev) SKIP("sim device not available in this build");
  gg_pool_config cfg;
  gg_pool_config_default(&cfg);
  cfg.budget = "80%";
  gg_pool *p = NULL;
  ASSERT_OK(gg_pool_new(dev, &cfg, &p));
  ASSERT_U64_EQ(gg_pool_budget(p), (uint64_t)((double)(64 * MiB) * 0.8));
  gg_pool_free(p);
  /* Something else holds 16 MiB: "50%free" is half of the 48 MiB left. */
  gg_devmem other;
  ASSERT_OK(gg_device_mem_alloc(dev, 16 * MiB, &other));
  cfg.budget = "50%free";
  ASSERT_OK(gg_pool_new(dev, &cfg, &p));
  ASSERT_U64_EQ(gg_pool_budget(p), 24 * MiB);
  gg_block *a = NULL;
  ASSERT_EQ(gg_pool_alloc(p, 25 * MiB, "too-big", &a), GG_EBUDGET);
  ASSERT_OK(gg_pool_alloc(p, 24 * MiB, "fits", &a));
  gg_block_free(a);
  gg_pool_free(p);
  ASSERT_OK(gg_device_mem_release(dev, &other));
  gg_device_free(dev);
}

/* After a device reset the pool forgets its blocks; sim memory is host
 * memory, so it is released and the device's raw count returns to zero. */
static void test_sim_reset_drop(void) {
  gg_device *dev = open_sim("sim:mem=64M");
  if (!dev) SKIP("sim device not available in this build");
  gg_pool *p = NULL;
  ASSERT_OK(gg_pool_new(dev, NULL, &p));
  gg_block *a;
  ASSERT_OK(gg_pool_alloc(p, 5 * MiB, "model:x/weights", &a));
  ASSERT_OK(gg_device_reset(dev));
  ASSERT_EQ(gg_pool_drop_all(p), 1);
  ASSERT_U64_EQ(gg_device_mem_in_use(dev), 0);
  uint64_t free_b = 0, total = 0;
  ASSERT_OK(gg_device_get_memory(dev, &free_b, &total));
  ASSERT_U64_EQ(free_b, total);
  gg_block_free(a);
  gg_pool_free(p);
  gg_device_free(dev);
}

int main(int argc, char **argv) {
  gg_log_set_level(GG_LOG_ERROR);
  static const gg_test_case cases[] = {
      {"sim_capacity_report", test_sim_capacity_report},
      {"sim_fault_recovered", test_sim_fault_recovered},
      {"sim_fault_without_cache", test_sim_fault_without_cache},
      {"sim_fault_small_fallback", test_sim_fault_small_fallback},
      {"sim_fraction_budget", test_sim_fraction_budget},
      {"sim_reset_drop", test_sim_reset_drop},
      {0},
  };
  return gg_test_main(argc, argv, cases);
}
