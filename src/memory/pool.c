/* The caching device allocator (gg_pool): segments taken from the driver on
 * demand, carved into blocks with best-fit, split and coalesce, a small and
 * a large sub-pool, a hard budget and an OOM path that frees the cache and
 * retries once. Design notes: docs/memory.md. */
#include "device/device-impl.h"
#include "gpuguard/core.h"
#include "gpuguard/error.h"
#include "gpuguard/log.h"
#include "memory/memory-impl.h"

#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* TLSF-like bins: 4 sub-bins per power of two. Bins are ordered, so any
 * block in a higher bin is larger than any in a lower one. */
#define NBINS 256
#define BITMAP_WORDS (NBINS / 64)
/* Large requests below this share a large_segment; above it they get their
 * own segment rounded to LARGE_ROUND (PyTorch: kMinLargeAlloc, kRoundLarge). */
#define LARGE_SHARED_MAX (10u << 20)
#define LARGE_ROUND (2u << 20)
#define SPARE_MAX 4096

typedef struct gg__segment gg__segment;

struct gg_block {
  gg__track track; /* scope membership */
  gg_pool *pool;
  gg__segment *seg;        /* NULL: tombstone (dropped by gg_pool_drop_all) */
  size_t offset;           /* inside seg */
  size_t size;             /* bytes the block occupies */
  size_t req;              /* bytes asked for (allocated blocks) */
  gg_block *prev, *next;   /* address-order neighbours in seg; tombstone list */
  gg_block *fprev, *fnext; /* bin list (free blocks) */
  gg__owner *owner;        /* allocated blocks */
  int allocated;
  int bin;
};

struct gg__segment {
  gg_devmem mem;
  gg__segment *prev, *next;
  gg_block *head;
  int small;
};

typedef struct subpool {
  gg_block *bins[NBINS];
  uint64_t bitmap[BITMAP_WORDS];
  uint64_t reserved;
  int small;
} subpool;

struct gg_pool {
  pthread_mutex_t lock;
  gg_device *dev;
  gg_pool_config cfg;
  uint64_t budget;
  subpool small, large;
  gg__segment *segments;
  gg__owner_table owners;
  gg_block *spare; /* recycled block structs (singly linked on next) */
  size_t n_spare;
  gg_block *tombstones; /* live handles dropped by gg_pool_drop_all */
  /* statistics */
  uint64_t allocated, requested, reserved, peak_allocated, peak_reserved;
  uint64_t n_segments, n_blocks, n_free_blocks;
  uint64_t n_allocs, n_frees, n_ooms, n_trims, n_hits, n_misses;
  uint64_t n_seg_allocs, n_seg_frees, bytes_trimmed, requests_done;
  _Atomic uint64_t n_leaks, leaked_bytes;
  int have_oom;
  gg_oom_report last_oom;
};

/* ---- helpers ------------------------------------------------------------ */

static int bin_index(size_t size) {
  int fl = 63 - __builtin_clzll((unsigned long long)size);
  int sl = fl >= 2 ? (int)((size >> (fl - 2)) & 3) : 0;
  return fl * 4 + sl;
}

static void bin_insert(subpool *sp, gg_block *b) {
  int i = bin_index(b->size);
  b->bin = i;
  b->fprev = NULL;
  b->fnext = sp->bins[i];
  if (b->fnext) b->fnext->fprev = b;
  sp->bins[i] = b;
  sp->bitmap[i / 64] |= 1ull << (i % 64);
}

static void bin_remove(subpool *sp, gg_block *b) {
  int i = b->bin;
  if (b->fprev)
    b->fprev->fnext = b->fnext;
  else
    sp->bins[i] = b->fnext;
  if (b->fnext) b->fnext->fprev = b->fprev;
  b->fprev = b->fnext = NULL;
  if (!sp->bins[i]) sp->bitmap[i / 64] &= ~(1ull << (i % 64));
}

/* First non-empty bin >= i, or -1. */
static int next_bin(const subpool *sp, int i) {
  while (i < NBINS) {
    uint64_t w = sp->bitmap[i / 64] & (~0ull << (i % 64));
    if (w) return (i / 64) * 64 + __builtin_ctzll(w);
    i = (i / 64 + 1) * 64;
  }
  return -1;
}

/* Best fit: the smallest free block >= size. Bins are ordered, so the
 * first bin holding a large enough block holds the best one. */
static gg_block *find_fit(const subpool *sp, size_t size) {
  for (int i = next_bin(sp, bin_index(size)); i >= 0; i = next_bin(sp, i + 1)) {
    gg_block *best = NULL;
    for (gg_block *b = sp->bins[i]; b; b = b->fnext) {
      if (b->size >= size && (!best || b->size < best->size)) {
        best = b;
        if (b->size == size) break;
      }
    }
    if (best) return best;
  }
  return NULL;
}

static size_t largest_in(const subpool *sp) {
  for (int i = NBINS - 1; i >= 0; i--) {
    if (!(sp->bitmap[i / 64] & (1ull << (i % 64)))) continue;
    size_t m = 0;
    for (const gg_block *b = sp->bins[i]; b; b = b->fnext)
      if (b->size > m) m = b->size;
    return m;
  }
  return 0;
}

static size_t largest_free(const gg_pool *p) {
  size_t a = largest_in(&p->small), b = largest_in(&p->large);
  return a > b ? a : b;
}

static gg_block *block_new(gg_pool *p) {
  gg_block *b = p->spare;
  if (b) {
    p->spare = b->next;
    p->n_spare--;
  } else {
    b = malloc(sizeof *b);
    if (!b) return NULL;
  }
  memset(b, 0, sizeof *b);
  b->pool = p;
  return b;
}

static void block_recycle(gg_pool *p, gg_block *b) {
  if (p->n_spare >= SPARE_MAX) {
    free(b);
    return;
  }
  b->next = p->spare;
  p->spare = b;
  p->n_spare++;
}

static void note_peaks(gg_pool *p) {
  if (p->allocated > p->peak_allocated) p->peak_allocated = p->allocated;
  if (p->reserved > p->peak_reserved) p->peak_reserved = p->reserved;
}

static int seg_fully_free(const gg__segment *s) {
  return s->head && !s->head->allocated && !s->head->next;
}

/* Unlinks and frees a segment's memory and structs. `call_driver` 0 forgets
 * a stale handle instead (after a device reset). */
static int segment_destroy(gg_pool *p, gg__segment *s, int call_driver) {
  int rc = 0;
  subpool *sp = s->small ? &p->small : &p->large;
  size_t size = s->mem.size;
  if (call_driver) {
    rc = gg_device_mem_release(p->dev, &s->mem);
  } else {
    /* The context that owned the handle is gone; only the device's raw
     * accounting still counts it. */
    atomic_fetch_sub(&p->dev->mem_in_use, (uint64_t)size);
    atomic_fetch_sub(&p->dev->mem_allocs, 1);
  }
  sp->reserved -= size;
  p->reserved -= size;
  p->n_segments--;
  p->n_seg_frees++;
  if (s->prev)
    s->prev->next = s->next;
  else
    p->segments = s->next;
  if (s->next) s->next->prev = s->prev;
  free(s);
  return rc;
}

/* Gives every fully free segment back to the driver. Caller holds the lock. */
static uint64_t release_cached(gg_pool *p, int *err) {
  uint64_t released = 0;
  gg__segment *s = p->segments;
  while (s) {
    gg__segment *next = s->next;
    if (seg_fully_free(s)) {
      subpool *sp = s->small ? &p->small : &p->large;
      gg_block *b = s->head;
      bin_remove(sp, b);
      p->n_free_blocks--;
      block_recycle(p, b);
      released += s->mem.size;
      int rc = segment_destroy(p, s, 1);
      if (rc && err && !*err) *err = rc;
    }
    s = next;
  }
  p->bytes_trimmed += released;
  return released;
}

/* A large request found no cached block: fully free large segments
 * too small for it (made for smaller tensors that a varying input size has
 * outgrown) are given back before growing, so reserved follows the live
 * peak instead of the sum of every size ever seen. */
static void release_outgrown(gg_pool *p, size_t size) {
  uint64_t released = 0;
  gg__segment *s = p->segments;
  while (s) {
    gg__segment *next = s->next;
    if (!s->small && s->mem.size < size && seg_fully_free(s)) {
      gg_block *b = s->head;
      bin_remove(&p->large, b);
      p->n_free_blocks--;
      block_recycle(p, b);
      released += s->mem.size;
      segment_destroy(p, s, 1);
    }
    s = next;
  }
  p->bytes_trimmed += released;
}

/* Takes one segment of `want` bytes (or `min` if `want` does not fit) from
 * the driver, within the budget. Returns 0, GG_EBUDGET, GG_EDEV_OOM or
 * another driver error. Caller holds the lock. */
static int segment_new(gg_pool *p, subpool *sp, size_t want, size_t min, gg__segment **out) {
  int rc = GG_EDEV_OOM;
  gg_devmem mem = {0, 0};
  size_t sizes[2] = {want, min};
  for (int i = 0; i < 2; i++) {
    size_t sz = sizes[i];
    if (i == 1 && sz == want) break;
    if (p->budget && (sz > p->budget || p->reserved > p->budget - sz)) {
      rc = GG_EBUDGET;
      continue;
    }
    rc = gg_device_mem_alloc(p->dev, sz, &mem);
    if (rc == 0) break;
    if (rc != GG_EDEV_OOM) return rc;
  }
  if (rc) return rc;
  gg__segment *s = calloc(1, sizeof *s);
  gg_block *b = s ? block_new(p) : NULL;
  if (!b) {
    free(s);
    gg_device_mem_release(p->dev, &mem);
    return GG_ENOMEM;
  }
  s->mem = mem;
  s->small = sp->small;
  s->head = b;
  s->next = p->segments;
  if (s->next) s->next->prev = s;
  p->segments = s;
  b->seg = s;
  b->offset = 0;
  b->size = mem.size;
  bin_insert(sp, b);
  p->n_free_blocks++;
  sp->reserved += mem.size;
  p->reserved += mem.size;
  p->n_segments++;
  p->n_seg_allocs++;
  note_peaks(p);
  *out = s;
  return 0;
}

/* Small requests share small_segment; large ones under LARGE_SHARED_MAX
 * share large_segment; bigger ones get their own segment rounded up to
 * LARGE_ROUND. (Rounding those to quarter powers of two for more reuse was
 * measured: 1.61x instead of 1.53x the true peak on bench-memory's trace.) */
static size_t segment_size_for(const gg_pool *p, const subpool *sp, size_t rounded) {
  if (sp->small) return rounded > p->cfg.small_segment ? rounded : p->cfg.small_segment;
  if (rounded < LARGE_SHARED_MAX && rounded <= p->cfg.large_segment) return p->cfg.large_segment;
  size_t r = (rounded + LARGE_ROUND - 1) / LARGE_ROUND * LARGE_ROUND;
  return r < rounded ? rounded : r;
}

/* Splits `b` (free, already out of the bins) so it is `size` bytes, putting
 * the remainder back in the bins when it is worth keeping separately: any
 * remainder in the small pool, only more than GG_POOL_SMALL_MAX in the large
 * pool (smaller tails stay inside the block, as in PyTorch). */
static void split(gg_pool *p, subpool *sp, gg_block *b, size_t size) {
  size_t rest = b->size - size;
  if (sp->small ? rest < GG_POOL_ROUND : rest <= GG_POOL_SMALL_MAX) return;
  gg_block *n = block_new(p);
  if (!n) return; /* keep the block whole: correct, only less tight */
  n->seg = b->seg;
  n->offset = b->offset + size;
  n->size = rest;
  n->prev = b;
  n->next = b->next;
  if (b->next) b->next->prev = n;
  b->next = n;
  b->size = size;
  bin_insert(sp, n);
  p->n_free_blocks++;
}

static void fill_report(gg_pool *p, gg_oom_report *r, int err, size_t size, const char *owner,
                        uint64_t released) {
  memset(r, 0, sizeof *r);
  r->error = err;
  snprintf(r->device, sizeof r->device, "%s", gg_device_name(p->dev));
  snprintf(r->owner, sizeof r->owner, "%s", owner && *owner ? owner : "unknown");
  r->requested = size;
  r->allocated = p->allocated;
  r->reserved = p->reserved;
  r->budget = p->budget;
  r->largest_free = largest_free(p);
  r->released = released;
  r->n_owners = gg__owner_top(&p->owners, r->owners, GG_MEM_REPORT_OWNERS);
  char a[32], b[32], c[32], d[32], e[32];
  int n =
      snprintf(r->text, sizeof r->text,
               "%s on %s: %s requested %s (%zu bytes); allocated %s, reserved %s, budget %s, "
               "largest free block %s, cached bytes released before retry %" PRIu64 "; top owners:",
               err == GG_EBUDGET ? "memory budget exceeded" : "device out of memory", r->device,
               r->owner, gg_format_size(size, a, sizeof a), size,
               gg_format_size(r->allocated, b, sizeof b), gg_format_size(r->reserved, c, sizeof c),
               r->budget ? gg_format_size(r->budget, d, sizeof d) : "unlimited",
               gg_format_size(r->largest_free, e, sizeof e), released);
  for (size_t i = 0; i < r->n_owners && n > 0 && (size_t)n < sizeof r->text; i++)
    n += snprintf(r->text + n, sizeof r->text - (size_t)n, "%s %s %s (%" PRIu64 " blocks)",
                  i ? "," : "", r->owners[i].owner, gg_format_size(r->owners[i].bytes, a, sizeof a),
                  r->owners[i].blocks);
  if (n > 0 && (size_t)n < sizeof r->text) {
    if (!r->n_owners) n += snprintf(r->text + n, sizeof r->text - (size_t)n, " none");
    snprintf(r->text + n, sizeof r->text - (size_t)n, ". %s",
             err == GG_EBUDGET ? "Raise --mem-limit or unload a model."
                               : "Free memory on the device, lower --mem-limit or use a smaller "
                                 "model.");
  }
}

/* ---- pool lifecycle ------------------------------------------------------- */

void gg_pool_config_default(gg_pool_config *cfg) {
  memset(cfg, 0, sizeof *cfg);
  cfg->small_segment = 2u << 20;
  cfg->large_segment = 20u << 20;
}

int gg_pool_new(gg_device *dev, const gg_pool_config *cfg, gg_pool **out) {
  if (!dev || !out) return GG_EINVAL;
  *out = NULL;
  gg_pool_config c;
  gg_pool_config_default(&c);
  if (cfg) {
    c.budget = cfg->budget;
    c.trim_every = cfg->trim_every;
    if (cfg->small_segment) c.small_segment = cfg->small_segment;
    if (cfg->large_segment) c.large_segment = cfg->large_segment;
  }
  c.small_segment = (c.small_segment + GG_POOL_ROUND - 1) / GG_POOL_ROUND * GG_POOL_ROUND;
  c.large_segment = (c.large_segment + GG_POOL_ROUND - 1) / GG_POOL_ROUND * GG_POOL_ROUND;
  uint64_t budget = 0;
  if (c.budget) {
    gg_mem_budget b;
    char err[160];
    int rc = gg_mem_budget_parse(c.budget, &b, err, sizeof err);
    if (rc) {
      GG_ERROR("MEM", "%s", err);
      return rc;
    }
    uint64_t free_now = 0, total = 0;
    if (b.kind == GG_BUDGET_OF_TOTAL || b.kind == GG_BUDGET_OF_FREE) {
      rc = gg_device_get_memory(dev, &free_now, &total);
      if (rc || !total) {
        GG_ERROR("MEM",
                 "budget '%s' is relative but device %s does not report its memory (%s); "
                 "give the budget in bytes, e.g. 3.5G",
                 c.budget, gg_device_name(dev), rc ? gg_err_name(rc) : "total 0");
        return rc ? rc : GG_EUNSUPPORTED;
      }
    }
    budget = gg_mem_budget_resolve(&b, total, free_now);
    if (!budget && b.kind != GG_BUDGET_NONE) budget = 1; /* a fraction of nothing */
  }
  c.budget = NULL; /* the spec string is borrowed; not kept */
  gg_pool *p = calloc(1, sizeof *p);
  if (!p) return GG_ENOMEM;
  pthread_mutex_init(&p->lock, NULL);
  p->dev = dev;
  p->cfg = c;
  p->budget = budget;
  p->small.small = 1;
  char bs[32];
  GG_INFO("MEM", "memory pool on %s: budget %s, trim every %u requests", gg_device_name(dev),
          budget ? gg_format_size(budget, bs, sizeof bs) : "unlimited", c.trim_every);
  *out = p;
  return 0;
}

void gg_pool_free(gg_pool *p) {
  if (!p) return;
  pthread_mutex_lock(&p->lock);
  uint64_t live = 0, live_bytes = 0;
  while (p->segments) {
    gg__segment *s = p->segments;
    gg_block *b = s->head;
    while (b) {
      gg_block *next = b->next;
      if (b->allocated) {
        live++;
        live_bytes += b->req;
        GG_WARN("MEM", "pool on %s freed with a live block: %zu bytes owned by '%s'",
                gg_device_name(p->dev), b->req, b->owner ? b->owner->name : "unknown");
        gg__scope_detach(&b->track, b->req);
      }
      free(b);
      b = next;
    }
    segment_destroy(p, s, 1);
  }
  while (p->tombstones) {
    gg_block *b = p->tombstones;
    p->tombstones = b->next;
    gg__scope_detach(&b->track, b->req);
    free(b);
  }
  while (p->spare) {
    gg_block *b = p->spare;
    p->spare = b->next;
    free(b);
  }
  if (live)
    GG_WARN("MEM", "pool on %s: %" PRIu64 " blocks (%" PRIu64 " bytes) were never freed",
            gg_device_name(p->dev), live, live_bytes);
  gg__owner_table_clear(&p->owners);
  pthread_mutex_unlock(&p->lock);
  pthread_mutex_destroy(&p->lock);
  free(p);
}

gg_device *gg_pool_device(const gg_pool *pool) {
  return pool ? pool->dev : NULL;
}

uint64_t gg_pool_budget(gg_pool *p) {
  pthread_mutex_lock(&p->lock);
  uint64_t b = p->budget;
  pthread_mutex_unlock(&p->lock);
  return b;
}

int gg_pool_set_budget(gg_pool *p, uint64_t bytes) {
  if (!p) return GG_EINVAL;
  pthread_mutex_lock(&p->lock);
  p->budget = bytes;
  if (bytes && p->reserved > bytes) release_cached(p, NULL);
  pthread_mutex_unlock(&p->lock);
  return 0;
}

/* ---- alloc / free --------------------------------------------------------- */

static int pool_alloc(gg_pool *p, size_t size, const char *owner, gg_mem_scope *scope,
                      gg_block **out, gg_oom_report *report, int quiet);

int gg_pool_alloc(gg_pool *pool, size_t size, const char *owner, gg_block **out) {
  return pool_alloc(pool, size, owner, NULL, out, NULL, 0);
}

int gg_pool_alloc_ex(gg_pool *p, size_t size, const char *owner, gg_mem_scope *scope,
                     gg_block **out, gg_oom_report *report) {
  return pool_alloc(p, size, owner, scope, out, report, 0);
}

int gg_pool_try_alloc(gg_pool *pool, size_t size, const char *owner, gg_block **out) {
  return pool_alloc(pool, size, owner, NULL, out, NULL, 1);
}

/* quiet: a probe (gg_pool_try_alloc): running out is an answer, not an
 * event, so it is neither counted, remembered nor logged. */
static int pool_alloc(gg_pool *p, size_t size, const char *owner, gg_mem_scope *scope,
                      gg_block **out, gg_oom_report *report, int quiet) {
  if (!p || !out) return GG_EINVAL;
  *out = NULL;
  if (size == 0) return GG_EINVAL;
  pthread_mutex_lock(&p->lock);
  int rc = 0;
  uint64_t released = 0;
  gg_block *b = NULL;
  size_t rounded = (size + GG_POOL_ROUND - 1) / GG_POOL_ROUND * GG_POOL_ROUND;
  subpool *sp = rounded <= GG_POOL_SMALL_MAX ? &p->small : &p->large;
  gg__owner *o = NULL;
  if (rounded < size) {
    rc = GG_EDEV_OOM; /* no device has SIZE_MAX bytes */
    goto fail;
  }
  o = gg__owner_acquire(&p->owners, owner, 0);
  if (!o) {
    pthread_mutex_unlock(&p->lock);
    return GG_ENOMEM;
  }
  b = find_fit(sp, rounded);
  if (b) {
    p->n_hits++;
  } else {
    p->n_misses++;
    size_t want = segment_size_for(p, sp, rounded);
    if (!sp->small) release_outgrown(p, rounded);
    gg__segment *s = NULL;
    rc = segment_new(p, sp, want, rounded, &s);
    if (rc == GG_EDEV_OOM || rc == GG_EBUDGET) {
      /* Give the cache back and retry once; without anything released a
       * retry would only fail the same way. */
      int terr = 0;
      released = release_cached(p, &terr);
      if (released) {
        GG_DEBUG("MEM", "%s: released %" PRIu64 " cached bytes on %s, retrying %zu", __func__,
                 released, gg_device_name(p->dev), size);
        rc = segment_new(p, sp, want, rounded, &s);
      }
    }
    if (rc) goto fail;
    b = s->head;
  }
  bin_remove(sp, b);
  p->n_free_blocks--;
  split(p, sp, b, rounded);
  b->allocated = 1;
  b->req = size;
  b->owner = o;
  o->bytes += b->size;
  p->allocated += b->size;
  p->requested += size;
  p->n_blocks++;
  p->n_allocs++;
  note_peaks(p);
  gg__scope_attach(scope, &b->track, GG__TRACK_BLOCK, size);
  pthread_mutex_unlock(&p->lock);
  *out = b;
  return 0;

fail:
  if (o) gg__owner_release(&p->owners, o, 0);
  if (rc != GG_EDEV_OOM && rc != GG_EBUDGET) {
    pthread_mutex_unlock(&p->lock);
    GG_ERROR("MEM", "%s: raw allocation of %zu bytes on %s failed: %s (%s)", __func__, size,
             gg_device_name(p->dev), gg_strerror(rc), gg_err_name(rc));
    return rc;
  }
  if (quiet) {
    pthread_mutex_unlock(&p->lock);
    return rc;
  }
  p->n_ooms++;
  fill_report(p, &p->last_oom, rc, size, owner, released);
  p->have_oom = 1;
  if (report) *report = p->last_oom;
  char text[sizeof p->last_oom.text];
  memcpy(text, p->last_oom.text, sizeof text);
  pthread_mutex_unlock(&p->lock);
  GG_WARN("MEM", "%s", text);
  return rc;
}

/* Bytes of fully free segments in `sp` (all of them, or only those smaller
 * than `below` when it is not 0): what release_outgrown / release_cached
 * would give back. Caller holds the lock. */
static uint64_t releasable(const gg_pool *p, const subpool *sp, size_t below) {
  uint64_t n = 0;
  for (const gg__segment *s = p->segments; s; s = s->next)
    if ((!sp || s->small == sp->small) && (!below || s->mem.size < below) && seg_fully_free(s))
      n += s->mem.size;
  return n;
}

/* The segment size segment_new would get for (want, min) with `reserved`
 * bytes held and `dev_free` free on the device; 0 when neither fits. */
static size_t segment_fit(const gg_pool *p, size_t want, size_t min, uint64_t reserved,
                          uint64_t dev_free) {
  size_t sizes[2] = {want, min};
  for (int i = 0; i < 2; i++) {
    size_t sz = sizes[i];
    if (p->budget && (sz > p->budget || reserved > p->budget - sz)) continue;
    if (sz > dev_free) continue;
    return sz;
  }
  return 0;
}

/* pool_alloc's decisions (best fit, else a new segment within the budget
 * and the device's free memory, after the same releases; then the split)
 * without allocating: the bytes `allocated` would grow by. */
uint64_t gg_pool_footprint(gg_pool *p, size_t size) {
  if (!p || !size) return 0;
  size_t rounded = (size + GG_POOL_ROUND - 1) / GG_POOL_ROUND * GG_POOL_ROUND;
  if (rounded < size) return UINT64_MAX;
  uint64_t dev_free = UINT64_MAX, dev_total = 0, f = 0;
  if (!gg_device_get_memory(p->dev, &f, &dev_total) && dev_total) dev_free = f;
  pthread_mutex_lock(&p->lock);
  subpool *sp = rounded <= GG_POOL_SMALL_MAX ? &p->small : &p->large;
  const gg_block *b = find_fit(sp, rounded);
  size_t have = b ? b->size : 0;
  if (!b) {
    size_t want = segment_size_for(p, sp, rounded);
    /* release_outgrown first (large requests), then, when that was not
     * enough, every fully free segment (the free-the-cache-and-retry path) */
    for (int pass = 0; pass < 2 && !have; pass++) {
      uint64_t gone = pass ? releasable(p, NULL, 0) : sp->small ? 0 : releasable(p, sp, rounded);
      have = segment_fit(p, want, rounded, p->reserved - gone,
                         dev_free == UINT64_MAX ? dev_free : dev_free + gone);
    }
    if (!have) have = rounded; /* it fails: nothing is taken, but say what was asked */
  }
  pthread_mutex_unlock(&p->lock);
  size_t rest = have - rounded;
  int keeps_tail = sp->small ? rest < GG_POOL_ROUND : rest <= GG_POOL_SMALL_MAX;
  return keeps_tail ? have : rounded;
}

int gg_pool_last_oom(gg_pool *p, gg_oom_report *out) {
  if (!p || !out) return GG_EINVAL;
  pthread_mutex_lock(&p->lock);
  int have = p->have_oom;
  if (have) *out = p->last_oom;
  pthread_mutex_unlock(&p->lock);
  return have ? 0 : GG_ENOTFOUND;
}

void gg_block_free(gg_block *b) {
  if (!b) return;
  gg_pool *p = b->pool;
  pthread_mutex_lock(&p->lock);
  gg__scope_detach(&b->track, b->req);
  p->n_frees++;
  if (!b->seg) { /* tombstone: its memory went with the device reset */
    if (b->prev)
      b->prev->next = b->next;
    else
      p->tombstones = b->next;
    if (b->next) b->next->prev = b->prev;
    block_recycle(p, b);
    pthread_mutex_unlock(&p->lock);
    return;
  }
  if (!b->allocated) {
    pthread_mutex_unlock(&p->lock);
    GG_ERROR("MEM", "%s: block at offset %zu freed twice", __func__, b->offset);
    return;
  }
  subpool *sp = b->seg->small ? &p->small : &p->large;
  gg__owner_release(&p->owners, b->owner, b->size);
  b->owner = NULL;
  b->allocated = 0;
  p->allocated -= b->size;
  p->requested -= b->req;
  p->n_blocks--;
  b->req = 0;
  gg_block *prev = b->prev, *next = b->next;
  if (prev && !prev->allocated) { /* absorb b into prev */
    bin_remove(sp, prev);
    p->n_free_blocks--;
    prev->size += b->size;
    prev->next = next;
    if (next) next->prev = prev;
    block_recycle(p, b);
    b = prev;
  }
  if (next && !next->allocated) { /* absorb next into b */
    bin_remove(sp, next);
    p->n_free_blocks--;
    b->size += next->size;
    b->next = next->next;
    if (next->next) next->next->prev = b;
    block_recycle(p, next);
  }
  bin_insert(sp, b);
  p->n_free_blocks++;
  pthread_mutex_unlock(&p->lock);
}

void gg__block_leaked(gg__track *t, const char **owner, uint64_t *bytes) {
  gg_block *b = (gg_block *)((char *)t - offsetof(gg_block, track));
  *owner = b->owner ? b->owner->name : "unknown (device reset)";
  *bytes = b->req;
  atomic_fetch_add(&b->pool->n_leaks, 1);
  atomic_fetch_add(&b->pool->leaked_bytes, b->req);
}

/* ---- block accessors -------------------------------------------------- */

gg_devmem *gg_block_devmem(const gg_block *b) {
  return b && b->seg ? &b->seg->mem : NULL;
}
size_t gg_block_offset(const gg_block *b) {
  return b && b->seg ? b->offset : 0;
}
size_t gg_block_size(const gg_block *b) {
  return b && b->seg ? b->req : 0;
}
size_t gg_block_capacity(const gg_block *b) {
  return b && b->seg ? b->size : 0;
}
const char *gg_block_owner(const gg_block *b) {
  return b && b->owner ? b->owner->name : "unknown";
}
gg_pool *gg_block_pool(const gg_block *b) {
  return b ? b->pool : NULL;
}

void *gg_block_host_ptr(const gg_block *b) {
  if (!b || !b->seg) return NULL;
  return gg_device_host_ptr(b->pool->dev, &b->seg->mem, b->offset);
}

int gg_block_copy_to(gg_block *b, size_t offset, const void *src, size_t n) {
  if (!b || (!src && n)) return GG_EINVAL;
  if (!b->seg) return GG_EDEVICE_LOST;
  if (offset > b->req || n > b->req - offset) return GG_ERANGE;
  return gg_device_copy_to(b->pool->dev, &b->seg->mem, b->offset + offset, src, n);
}

int gg_block_copy_from(gg_block *b, void *dst, size_t offset, size_t n) {
  if (!b || (!dst && n)) return GG_EINVAL;
  if (!b->seg) return GG_EDEVICE_LOST;
  if (offset > b->req || n > b->req - offset) return GG_ERANGE;
  return gg_device_copy_from(b->pool->dev, dst, &b->seg->mem, b->offset + offset, n);
}

/* ---- trim, requests, reset ------------------------------------------------ */

static int trim_locked(gg_pool *p, uint64_t *released) {
  int err = 0;
  *released = release_cached(p, &err);
  p->n_trims++;
  return err;
}

static void log_trim(gg_pool *p, uint64_t released, uint64_t reserved) {
  char a[32];
  GG_INFO("GPU", "Memory cleanup completed: released %" PRIu64 " bytes on %s (%s still reserved)",
          released, gg_device_name(p->dev), gg_format_size(reserved, a, sizeof a));
}

int gg_pool_trim(gg_pool *p, uint64_t *released) {
  if (!p) return GG_EINVAL;
  uint64_t r = 0;
  pthread_mutex_lock(&p->lock);
  int rc = trim_locked(p, &r);
  uint64_t reserved = p->reserved;
  pthread_mutex_unlock(&p->lock);
  log_trim(p, r, reserved);
  if (released) *released = r;
  return rc;
}

int gg_pool_request_done(gg_pool *p, uint64_t *released) {
  if (released) *released = 0;
  if (!p) return 0;
  uint64_t r = 0;
  pthread_mutex_lock(&p->lock);
  p->requests_done++;
  int due = p->cfg.trim_every && p->requests_done % p->cfg.trim_every == 0;
  if (due) trim_locked(p, &r);
  uint64_t reserved = p->reserved;
  pthread_mutex_unlock(&p->lock);
  if (!due) return 0;
  log_trim(p, r, reserved);
  if (released) *released = r;
  return 1;
}

int gg_pool_drop_all(gg_pool *p) {
  if (!p) return 0;
  gg_device_kind kind = gg_device_get_kind(p->dev);
  /* cpu and sim memory is host memory a reset does not free. */
  int call_driver = kind == GG_DEVICE_CPU || kind == GG_DEVICE_SIM;
  int dropped = 0;
  pthread_mutex_lock(&p->lock);
  while (p->segments) {
    gg__segment *s = p->segments;
    subpool *sp = s->small ? &p->small : &p->large;
    gg_block *b = s->head;
    while (b) {
      gg_block *next = b->next;
      if (b->allocated) {
        gg__owner_release(&p->owners, b->owner, b->size);
        b->owner = NULL;
        b->allocated = 0;
        b->seg = NULL;
        b->prev = NULL;
        b->next = p->tombstones;
        if (b->next) b->next->prev = b;
        p->tombstones = b;
        dropped++;
      } else {
        bin_remove(sp, b);
        p->n_free_blocks--;
        block_recycle(p, b);
      }
      b = next;
    }
    segment_destroy(p, s, call_driver);
  }
  p->allocated = p->requested = 0;
  p->n_blocks = 0;
  pthread_mutex_unlock(&p->lock);
  GG_WARN("MEM", "dropped all memory of %s after a device reset: %d live blocks invalidated (%s)",
          gg_device_name(p->dev), dropped,
          call_driver ? "host memory released" : "stale handles forgotten, driver not called");
  return dropped;
}

/* ---- statistics --------------------------------------------------------- */

int gg_pool_get_stats(gg_pool *p, gg_pool_stats *s) {
  if (!p || !s) return GG_EINVAL;
  memset(s, 0, sizeof *s);
  snprintf(s->device, sizeof s->device, "%s", gg_device_name(p->dev));
  pthread_mutex_lock(&p->lock);
  s->budget = p->budget;
  s->allocated = p->allocated;
  s->requested = p->requested;
  s->reserved = p->reserved;
  s->reserved_small = p->small.reserved;
  s->reserved_large = p->large.reserved;
  s->peak_allocated = p->peak_allocated;
  s->peak_reserved = p->peak_reserved;
  s->cached = p->reserved - p->allocated;
  s->largest_free = largest_free(p);
  s->fragmentation = s->cached ? 1.0 - (double)s->largest_free / (double)s->cached : 0.0;
  s->segments = p->n_segments;
  s->blocks = p->n_blocks;
  s->free_blocks = p->n_free_blocks;
  s->n_allocs = p->n_allocs;
  s->n_frees = p->n_frees;
  s->n_ooms = p->n_ooms;
  s->n_trims = p->n_trims;
  s->n_cache_hits = p->n_hits;
  s->n_cache_misses = p->n_misses;
  s->n_segment_allocs = p->n_seg_allocs;
  s->n_segment_frees = p->n_seg_frees;
  s->bytes_trimmed = p->bytes_trimmed;
  s->requests_done = p->requests_done;
  s->n_owners = p->owners.count;
  s->n_owners_listed = gg__owner_top(&p->owners, s->owners, GG_MEM_SNAPSHOT_OWNERS);
  pthread_mutex_unlock(&p->lock);
  s->n_leaks = atomic_load(&p->n_leaks);
  s->leaked_bytes = atomic_load(&p->leaked_bytes);
  return 0;
}

void gg_pool_reset_peaks(gg_pool *p) {
  if (!p) return;
  pthread_mutex_lock(&p->lock);
  p->peak_allocated = p->allocated;
  p->peak_reserved = p->reserved;
  pthread_mutex_unlock(&p->lock);
}

uint64_t gg_pool_owner_bytes(gg_pool *p, const char *owner) {
  if (!p || !owner) return 0;
  uint64_t h = gg__owner_hash(owner), v = 0;
  pthread_mutex_lock(&p->lock);
  for (gg__owner *o = p->owners.buckets[h % GG__OWNER_BUCKETS]; o; o = o->next)
    if (o->hash == h && !strncmp(o->name, owner, GG_MEM_OWNER_MAX - 1)) v = o->bytes;
  pthread_mutex_unlock(&p->lock);
  return v;
}

/* ---- self-check (tests) ---------------------------------------------------- */

int gg__pool_check(gg_pool *p, char *err, size_t errlen) {
  int rc = 0;
  pthread_mutex_lock(&p->lock);
  uint64_t reserved = 0, allocated = 0, requested = 0, nseg = 0, nblk = 0, nfree = 0;
  uint64_t res_small = 0, res_large = 0;
#define CHECK(cond, ...)                                                                           \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      snprintf(err, errlen, __VA_ARGS__);                                                          \
      rc = GG_ESTATE;                                                                              \
      goto out;                                                                                    \
    }                                                                                              \
  } while (0)
  for (gg__segment *s = p->segments; s; s = s->next) {
    nseg++;
    reserved += s->mem.size;
    *(s->small ? &res_small : &res_large) += s->mem.size;
    size_t off = 0;
    CHECK(s->head && !s->head->prev, "segment without a proper head");
    for (gg_block *b = s->head; b; b = b->next) {
      CHECK(b->seg == s, "block points at the wrong segment");
      CHECK(b->offset == off, "gap or overlap at offset %zu (block at %zu)", off, b->offset);
      CHECK(b->offset % GG_POOL_ALIGN == 0, "misaligned block at %zu", b->offset);
      CHECK(b->size && b->size % GG_POOL_ROUND == 0, "block size %zu not rounded", b->size);
      CHECK(!b->next || b->next->prev == b, "broken neighbour links");
      if (b->allocated) {
        nblk++;
        allocated += b->size;
        requested += b->req;
        CHECK(b->req <= b->size, "request %zu larger than block %zu", b->req, b->size);
      } else {
        nfree++;
        CHECK(!b->next || b->next->allocated, "two adjacent free blocks at %zu (not coalesced)",
              b->offset);
        subpool *sp = s->small ? &p->small : &p->large;
        CHECK(b->bin == bin_index(b->size), "free block in the wrong bin");
        int found = 0;
        for (gg_block *f = sp->bins[b->bin]; f; f = f->fnext)
          found |= f == b;
        CHECK(found, "free block of %zu bytes missing from its bin", b->size);
      }
      off += b->size;
    }
    CHECK(off == s->mem.size, "blocks cover %zu of a %zu-byte segment", off, s->mem.size);
  }
  for (int k = 0; k < 2; k++) {
    subpool *sp = k ? &p->large : &p->small;
    for (int i = 0; i < NBINS; i++) {
      int bit = (sp->bitmap[i / 64] >> (i % 64)) & 1;
      CHECK(bit == (sp->bins[i] != NULL), "bin bitmap out of sync at %d", i);
      for (gg_block *f = sp->bins[i]; f; f = f->fnext)
        CHECK(!f->allocated && f->seg && f->seg->small == sp->small, "bad block in a bin");
    }
  }
  CHECK(reserved == p->reserved, "reserved %" PRIu64 " != sum of segments %" PRIu64, p->reserved,
        reserved);
  CHECK(res_small == p->small.reserved && res_large == p->large.reserved, "sub-pool reserved");
  CHECK(allocated == p->allocated, "allocated %" PRIu64 " != sum %" PRIu64, p->allocated,
        allocated);
  CHECK(requested == p->requested, "requested counter drifted");
  CHECK(nseg == p->n_segments && nblk == p->n_blocks && nfree == p->n_free_blocks,
        "counts drifted: segments %" PRIu64 "/%" PRIu64 " blocks %" PRIu64 "/%" PRIu64
        " free %" PRIu64 "/%" PRIu64,
        nseg, p->n_segments, nblk, p->n_blocks, nfree, p->n_free_blocks);
#undef CHECK
out:
  pthread_mutex_unlock(&p->lock);
  return rc;
}
