/* Property test for gg_pool: seeded random alloc/free/trim sequences checked
 * against a reference model after every step. Deterministic: the same seeds
 * give the same sequences. */
#include "gpuguard/device.h"
#include "gpuguard/error.h"
#include "gpuguard/log.h"
#include "gpuguard/memory.h"
#include "memory/memory-impl.h"
#include "test.h"

/* ASan poisons the shadow of every multi-MiB segment it hands out; the
 * sequences are the same, only fewer and shorter under it. */
#if defined(__SANITIZE_ADDRESS__)
#define SCALE 4
#define SHORT_SEEDS 150
#else
#define SCALE 1
#define SHORT_SEEDS 2000
#endif

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)
#define MAX_LIVE 256
#define NOWNERS 4

static const char *const k_owners[NOWNERS] = {"model:blazeface/weights", "request:1/activations",
                                              "workspace", "request:2/activations"};

typedef struct live {
  gg_block *b;
  const gg_devmem *seg;
  size_t off, cap, req;
  int owner;
  unsigned char tag;
} live;

typedef struct model {
  live items[MAX_LIVE];
  int n;
  uint64_t allocated, requested, peak_allocated, peak_reserved;
  uint64_t owner_bytes[NOWNERS];
} model;

static uint64_t rng_next(uint64_t *s) {
  uint64_t x = *s;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  *s = x;
  return x * 2685821657736338717ull;
}

static size_t rand_size(uint64_t *s) {
  uint64_t r = rng_next(s), k = r % 100, v = rng_next(s);
  if (k < 50) return 1 + v % (16 * KiB);
  if (k < 75) return 16 * KiB + v % (1 * MiB - 16 * KiB + 1);
  if (k < 95) return 1 * MiB + 1 + v % (7 * MiB);
  return 8 * MiB + v % (16 * MiB);
}

static int cmp_live(const void *a, const void *b) {
  const live *x = a, *y = b;
  if (x->seg != y->seg) return (uintptr_t)x->seg < (uintptr_t)y->seg ? -1 : 1;
  return x->off < y->off ? -1 : x->off > y->off;
}

static void fill(live *l) {
  unsigned char *p = gg_block_host_ptr(l->b);
  size_t n = l->req < 64 ? l->req : 64;
  memset(p, l->tag, n);
  memset(p + l->req - n, l->tag, n);
}

static int intact(const live *l) {
  const unsigned char *p = gg_block_host_ptr(l->b);
  size_t n = l->req < 64 ? l->req : 64;
  for (size_t i = 0; i < n; i++)
    if (p[i] != l->tag || p[l->req - 1 - i] != l->tag) return 0;
  return 1;
}

/* Every invariant, after every step. Returns 0 when all hold. */
static int check_all(gg_pool *p, gg_device *dev, model *m, uint64_t budget, int step) {
  gg_pool_stats s;
  gg_pool_get_stats(p, &s);
  char err[256];
  if (gg__pool_check(p, err, sizeof err)) {
    fprintf(stderr, "  step %d: internal invariant: %s\n", step, err);
    return -1;
  }
  if (s.allocated != m->allocated || s.requested != m->requested || s.blocks != (uint64_t)m->n) {
    fprintf(stderr, "  step %d: stats allocated %llu/%llu requested %llu/%llu blocks %llu/%d\n",
            step, (unsigned long long)s.allocated, (unsigned long long)m->allocated,
            (unsigned long long)s.requested, (unsigned long long)m->requested,
            (unsigned long long)s.blocks, m->n);
    return -1;
  }
  if (s.reserved != gg_device_mem_in_use(dev)) {
    fprintf(stderr, "  step %d: reserved %llu but the device holds %llu\n", step,
            (unsigned long long)s.reserved, (unsigned long long)gg_device_mem_in_use(dev));
    return -1;
  }
  if (budget && s.reserved > budget) {
    fprintf(stderr, "  step %d: reserved %llu over budget %llu\n", step,
            (unsigned long long)s.reserved, (unsigned long long)budget);
    return -1;
  }
  if (s.reserved > m->peak_reserved) m->peak_reserved = s.reserved;
  if (m->allocated > m->peak_allocated) m->peak_allocated = m->allocated;
  if (s.peak_allocated != m->peak_allocated || s.peak_reserved != m->peak_reserved) {
    fprintf(stderr, "  step %d: peaks %llu/%llu (allocated) %llu/%llu (reserved)\n", step,
            (unsigned long long)s.peak_allocated, (unsigned long long)m->peak_allocated,
            (unsigned long long)s.peak_reserved, (unsigned long long)m->peak_reserved);
    return -1;
  }
  double frag = s.cached ? 1.0 - (double)s.largest_free / (double)s.cached : 0.0;
  if (s.cached != s.reserved - s.allocated || s.largest_free > s.cached ||
      !gg_t_near(frag, s.fragmentation, 1e-12)) {
    fprintf(stderr, "  step %d: cached/largest/fragmentation inconsistent\n", step);
    return -1;
  }
  uint64_t owner_sum = 0;
  for (int o = 0; o < NOWNERS; o++) {
    uint64_t got = gg_pool_owner_bytes(p, k_owners[o]);
    owner_sum += got;
    if (got != m->owner_bytes[o]) {
      fprintf(stderr, "  step %d: owner %s holds %llu, model says %llu\n", step, k_owners[o],
              (unsigned long long)got, (unsigned long long)m->owner_bytes[o]);
      return -1;
    }
  }
  if (owner_sum != s.allocated) return -1;
  /* No two live blocks overlap; alignment; inside their segment. */
  live sorted[MAX_LIVE];
  memcpy(sorted, m->items, (size_t)m->n * sizeof *sorted);
  qsort(sorted, (size_t)m->n, sizeof *sorted, cmp_live);
  for (int i = 0; i < m->n; i++) {
    const live *l = &sorted[i];
    if (l->off % GG_POOL_ALIGN || l->cap < l->req || l->off + l->cap > l->seg->size) {
      fprintf(stderr, "  step %d: block at %zu (+%zu) misplaced in a %zu-byte segment\n", step,
              l->off, l->cap, l->seg->size);
      return -1;
    }
    if (i && sorted[i - 1].seg == l->seg && sorted[i - 1].off + sorted[i - 1].cap > l->off) {
      fprintf(stderr, "  step %d: blocks overlap: [%zu,+%zu) and [%zu,+%zu)\n", step,
              sorted[i - 1].off, sorted[i - 1].cap, l->off, l->cap);
      return -1;
    }
  }
  return 0;
}

/* Bytes in segments that hold at least one live block. */
static uint64_t live_segment_bytes(const model *m) {
  const gg_devmem *seen[MAX_LIVE];
  int n = 0;
  uint64_t sum = 0;
  for (int i = 0; i < m->n; i++) {
    int dup = 0;
    for (int k = 0; k < n && !dup; k++)
      dup = seen[k] == m->items[i].seg;
    if (dup) continue;
    seen[n++] = m->items[i].seg;
    sum += m->items[i].seg->size;
  }
  return sum;
}

static void model_remove(model *m, int i) {
  live *l = &m->items[i];
  m->allocated -= l->cap;
  m->requested -= l->req;
  m->owner_bytes[l->owner] -= l->cap;
  m->items[i] = m->items[--m->n];
}

/* One seeded run; returns the number of failed allocations (budget runs). */
static int run_seed(uint64_t seed, int steps, const char *budget_spec, uint64_t budget,
                    int *failed_check) {
  gg_device *dev = NULL;
  *failed_check = 1;
  if (gg_device_open("cpu", &dev)) return 0;
  gg_pool_config cfg;
  gg_pool_config_default(&cfg);
  cfg.budget = budget_spec;
  cfg.trim_every = 7;
  gg_pool *p = NULL;
  if (gg_pool_new(dev, &cfg, &p)) return 0;
  static model m;
  memset(&m, 0, sizeof m);
  uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
  int fails = 0, target = 8 + (int)(rng_next(&s) % 120);
  for (int step = 0; step < steps; step++) {
    uint64_t r = rng_next(&s) % 1000;
    if (step % 500 == 0) target = 4 + (int)(rng_next(&s) % 200);
    if (r < 10) {
      gg_pool_trim(p, NULL);
    } else if (r < 30) {
      gg_pool_request_done(p, NULL);
    } else if (r < 35) {
      gg_pool_reset_peaks(p);
      gg_pool_stats st;
      gg_pool_get_stats(p, &st);
      m.peak_allocated = m.allocated;
      m.peak_reserved = st.reserved;
    } else if (m.n < MAX_LIVE &&
               (m.n == 0 || (int)(rng_next(&s) % (unsigned)(2 * target)) >= m.n)) {
      size_t size = rand_size(&s);
      int owner = (int)(rng_next(&s) % NOWNERS);
      gg_block *b = NULL;
      gg_oom_report rep;
      uint64_t footprint = gg_pool_footprint(p, size);
      int rc = gg_pool_alloc_ex(p, size, k_owners[owner], NULL, &b, &rep);
      if (rc) {
        gg_pool_stats st;
        gg_pool_get_stats(p, &st);
        size_t rounded = (size + GG_POOL_ROUND - 1) / GG_POOL_ROUND * GG_POOL_ROUND;
        /* Only the budget may refuse on the cpu, and only after every cached
         * segment went back (reserved == segments with live blocks) and even
         * an exact segment would still not fit. */
        if (rc != GG_EBUDGET || !budget || rep.requested != size || rep.budget != budget ||
            st.reserved != live_segment_bytes(&m) || st.reserved + rounded <= budget) {
          fprintf(stderr, "  step %d: alloc %zu failed: %s (reserved %llu, budget %llu)\n", step,
                  size, gg_err_name(rc), (unsigned long long)st.reserved,
                  (unsigned long long)budget);
          goto out;
        }
        fails++;
      } else {
        live *l = &m.items[m.n++];
        l->b = b;
        l->seg = gg_block_devmem(b);
        l->off = gg_block_offset(b);
        l->cap = gg_block_capacity(b);
        l->req = gg_block_size(b);
        l->owner = owner;
        l->tag = (unsigned char)(rng_next(&s) | 1);
        if (l->req != size || strcmp(gg_block_owner(b), k_owners[owner])) goto out;
        /* The pool said beforehand what it would count, tail included. */
        if (l->cap != footprint) {
          fprintf(stderr, "  step %d: alloc %zu took %zu bytes, gg_pool_footprint said %llu\n",
                  step, size, l->cap, (unsigned long long)footprint);
          goto out;
        }
        fill(l);
        m.allocated += l->cap;
        m.requested += l->req;
        m.owner_bytes[owner] += l->cap;
      }
    } else if (m.n) {
      int i = (int)(rng_next(&s) % (unsigned)m.n);
      if (!intact(&m.items[i])) {
        fprintf(stderr, "  step %d: block contents overwritten (overlap)\n", step);
        goto out;
      }
      gg_block_free(m.items[i].b);
      model_remove(&m, i);
    }
    if (check_all(p, dev, &m, budget, step)) goto out;
  }
  while (m.n) {
    if (!intact(&m.items[m.n - 1])) goto out;
    gg_block_free(m.items[m.n - 1].b);
    model_remove(&m, m.n - 1);
    if (check_all(p, dev, &m, budget, -1)) goto out;
  }
  gg_pool_trim(p, NULL);
  gg_pool_stats st;
  gg_pool_get_stats(p, &st);
  if (gg_device_mem_in_use(dev) != 0 || st.reserved || st.segments || st.free_blocks ||
      st.n_owners || st.n_allocs != st.n_frees) {
    fprintf(stderr, "  seed %llu: after free-all + trim the device still holds %llu bytes\n",
            (unsigned long long)seed, (unsigned long long)gg_device_mem_in_use(dev));
    goto out;
  }
  *failed_check = 0;
out:
  while (m.n) { /* after a failure: release what is left */
    gg_block_free(m.items[m.n - 1].b);
    m.n--;
  }
  gg_pool_free(p);
  gg_device_free(dev);
  return fails;
}

static void test_random_unbounded(void) {
  for (uint64_t seed = 1; seed <= 8; seed++) {
    int bad = 0;
    int fails = run_seed(seed, 5000 / SCALE, NULL, 0, &bad);
    if (bad) GG_T_FAIL("seed %llu violated an invariant (see above)", (unsigned long long)seed);
    ASSERT_EQ(fails, 0);
  }
}

/* Thousands of short sequences: each starts from an empty pool, so the
 * growth path, first splits and the final trim are exercised many times. */
static void test_random_many_short(void) {
  for (uint64_t seed = 1000; seed < 1000 + SHORT_SEEDS; seed++) {
    int bad = 0;
    int fails = run_seed(seed, 150, NULL, 0, &bad);
    if (bad) GG_T_FAIL("seed %llu violated an invariant (see above)", (unsigned long long)seed);
    ASSERT_EQ(fails, 0);
  }
}

static void test_random_budget(void) {
  int total_fails = 0;
  for (uint64_t seed = 100; seed < 108; seed++) {
    int bad = 0;
    total_fails += run_seed(seed, 3000 / (SCALE > 1 ? 2 : 1), "96M", 96 * MiB, &bad);
    if (bad) GG_T_FAIL("seed %llu violated an invariant (see above)", (unsigned long long)seed);
  }
  /* The budget is tight enough that the sequences do hit it. */
  ASSERT_GE(total_fails, 1);
  printf("  budget runs: %d allocations refused by the 96 MiB budget\n", total_fails);
}

int main(int argc, char **argv) {
  gg_log_set_level(GG_LOG_ERROR);
  if (SCALE > 1)
    printf("  (AddressSanitizer build: %d short sequences instead of 2000, long ones "
           "divided by %d)\n",
           SHORT_SEEDS, SCALE);
  static const gg_test_case cases[] = {
      {"random_unbounded", test_random_unbounded},
      {"random_many_short", test_random_many_short},
      {"random_budget", test_random_budget},
      {0},
  };
  return gg_test_main(argc, argv, cases);
}
