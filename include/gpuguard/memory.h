/* gpuguard memory manager: the only way the rest of the code gets device
 * memory. A caching allocator per device with a hard budget, owner
 * accounting, trim, out-of-memory reports and leak scopes; plus accounted
 * host allocations and a pinned staging pool interface. */
#ifndef GPUGUARD_MEMORY_H
#define GPUGUARD_MEMORY_H

#include "gpuguard/device.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Every block starts at an offset that is a multiple of this inside its
 * segment (sizes are rounded to GG_POOL_ROUND, which is a multiple of it). */
#define GG_POOL_ALIGN 256
/* Request sizes are rounded up to a multiple of this (PyTorch's 512). */
#define GG_POOL_ROUND 512
/* Requests up to this size come from the small pool (2 MiB segments); larger
 * ones from the large pool, so small blocks never fragment large segments. */
#define GG_POOL_SMALL_MAX (1u << 20)
/* Owner tags longer than this are truncated. */
#define GG_MEM_OWNER_MAX 64
/* Owners listed in a stats snapshot / an OOM report (largest first). */
#define GG_MEM_SNAPSHOT_OWNERS 16
#define GG_MEM_REPORT_OWNERS 5

typedef struct gg_pool gg_pool;
typedef struct gg_block gg_block;
typedef struct gg_mem_scope gg_mem_scope;

/* ---- budget ----------------------------------------------------------- */

typedef enum gg_budget_kind {
  GG_BUDGET_NONE = 0, /* no cap beyond what the driver gives */
  GG_BUDGET_BYTES,    /* "3.5G", "4560M", "1073741824" */
  GG_BUDGET_OF_TOTAL, /* "0.8", "80%": fraction of the device's total */
  GG_BUDGET_OF_FREE,  /* "0.8free", "80%free": fraction free at pool creation */
  GG_BUDGET_KIND_COUNT
} gg_budget_kind;

typedef struct gg_mem_budget {
  gg_budget_kind kind;
  uint64_t bytes;  /* GG_BUDGET_BYTES */
  double fraction; /* GG_BUDGET_OF_TOTAL / GG_BUDGET_OF_FREE, in (0, 1] */
} gg_mem_budget;

/* Parses a budget spec:
 *   "" / "0" / "none" / "unlimited"   no budget
 *   "3.5G", "4560M", "512MiB", "1048576"   bytes (gg_parse_size units)
 *   "0.8"  (a plain number <= 1)    fraction of the device's total memory
 *   "80%"                            percentage of the device's total memory
 *   "80%free" / "0.8free"            fraction of what is free when the pool is made
 * Returns 0, or GG_EINVAL with a message in err naming what was wrong. */
int gg_mem_budget_parse(const char *spec, gg_mem_budget *out, char *err, size_t errlen);
/* Bytes the budget allows on a device with `total` bytes of which `free_now`
 * are free; 0 means unlimited. */
uint64_t gg_mem_budget_resolve(const gg_mem_budget *b, uint64_t total, uint64_t free_now);

/* ---- pool ------------------------------------------------------------- */

typedef struct gg_pool_config {
  const char *budget;   /* budget spec (see above); NULL = none */
  unsigned trim_every;  /* trim every N gg_pool_request_done(); 0 = never */
  size_t small_segment; /* small-pool segment size, default 2 MiB */
  size_t large_segment; /* large-pool segment for requests < 10 MiB, default 20 MiB */
} gg_pool_config;

/* Fills the defaults: no budget, trim_every 0, 2 MiB / 20 MiB segments. */
void gg_pool_config_default(gg_pool_config *cfg);

/* Creates a caching pool on `dev` (borrowed; must outlive the pool). Takes no
 * device memory up front. cfg may be NULL for defaults. Returns 0, GG_EINVAL
 * (bad budget spec: logged with the reason), GG_ENOMEM, or the device's
 * error when a fractional budget needs its memory size and it cannot tell. */
int gg_pool_new(gg_device *dev, const gg_pool_config *cfg, gg_pool **out);
/* Releases every segment to the driver and frees the pool. Blocks still
 * live are reported as leaks (owner, size) and their gg_block handles become
 * invalid. gg_pool_free(NULL) is a no-op. */
void gg_pool_free(gg_pool *pool);

gg_device *gg_pool_device(const gg_pool *pool);
/* Current budget in bytes (0 = unlimited). */
uint64_t gg_pool_budget(gg_pool *pool);
/* Changes the budget (0 = unlimited). A lower budget than what is reserved
 * trims cached segments; live blocks stay, but no new segment is taken until
 * reserved fits. Returns 0. */
int gg_pool_set_budget(gg_pool *pool, uint64_t bytes);

/* Out-of-memory report: filled when an allocation fails. */
typedef struct gg_mem_owner_stat {
  char owner[GG_MEM_OWNER_MAX];
  uint64_t bytes;  /* block bytes held by this owner */
  uint64_t blocks; /* live allocations */
} gg_mem_owner_stat;

typedef struct gg_oom_report {
  int error; /* GG_EDEV_OOM or GG_EBUDGET */
  char device[64];
  char owner[GG_MEM_OWNER_MAX]; /* who asked */
  uint64_t requested;           /* bytes asked for */
  uint64_t allocated;           /* bytes in live blocks when it failed */
  uint64_t reserved;            /* bytes held from the driver when it failed */
  uint64_t budget;              /* 0 = unlimited */
  uint64_t largest_free;        /* largest cached free block */
  uint64_t released;            /* cached bytes given back before the retry */
  size_t n_owners;
  gg_mem_owner_stat owners[GG_MEM_REPORT_OWNERS]; /* top owners by bytes */
  char text[1024];                                /* one human-readable paragraph with all of it */
} gg_oom_report;

/* Allocates `size` bytes for `owner` (a tag such as "model:blazeface/weights",
 * "request:42/activations", "workspace"; NULL means "unknown"). Best fit from
 * the cache, else a new segment from the driver. When the driver says
 * GG_EDEV_OOM or the budget would be exceeded, cached free segments are given
 * back and the allocation is retried once; only then does it fail with
 * GG_EDEV_OOM or GG_EBUDGET, logging the report once as a [MEM] warning and
 * remembering it (gg_pool_last_oom). Other driver errors are returned as they
 * are. GG_EINVAL for size 0. On success *out is owned by the caller; free it
 * with gg_block_free(). Thread-safe. */
int gg_pool_alloc(gg_pool *pool, size_t size, const char *owner, gg_block **out);
/* Same, with the allocation recorded in `scope` (may be NULL) and the OOM
 * report copied to *report (may be NULL) when it fails. */
int gg_pool_alloc_ex(gg_pool *pool, size_t size, const char *owner, gg_mem_scope *scope,
                     gg_block **out, gg_oom_report *report);
/* A probe: the same allocation (cache, budget, free-cache-and-retry), but
 * running out returns GG_EDEV_OOM / GG_EBUDGET without counting an OOM,
 * remembering a report or logging one. For planners asking "does this fit?"
 * (the engine's memory-aware plan); free the block at once. */
int gg_pool_try_alloc(gg_pool *pool, size_t size, const char *owner, gg_block **out);
/* The bytes gg_pool_alloc(pool, size) would take from the device now, as
 * the pool counts them (stats.allocated, owner bytes, a session's measured
 * peak): the request rounded to GG_POOL_ROUND, or the whole block it is cut
 * from when the pool keeps the tail inside it (a cached block, or a new
 * segment rounded to 2 MiB, whose remainder is GG_POOL_SMALL_MAX or less).
 * Allocates nothing. Exact when nothing else allocates or frees in between
 * and the device grants what it reports free; planners add it up for a
 * sequence of allocations made one after the other on a fresh pool. 0 for a
 * NULL pool or size 0; when the allocation would fail, the bytes it would
 * have taken. Thread-safe. docs/memory.md. */
uint64_t gg_pool_footprint(gg_pool *pool, size_t size);
/* Copies the most recent OOM report. Returns 0, or GG_ENOTFOUND if none. */
int gg_pool_last_oom(gg_pool *pool, gg_oom_report *out);

/* Returns a block to the pool's cache (coalescing with free neighbours).
 * The driver is not called; gg_pool_trim gives memory back. gg_block_free(NULL)
 * is a no-op. Thread-safe. */
void gg_block_free(gg_block *block);

/* The segment holding the block (borrowed; valid while the block is live), or
 * NULL after gg_pool_drop_all. Address bytes as (segment, offset). */
gg_devmem *gg_block_devmem(const gg_block *block);
size_t gg_block_offset(const gg_block *block);
/* Bytes requested. */
size_t gg_block_size(const gg_block *block);
/* Bytes the block occupies (rounded; >= size). */
size_t gg_block_capacity(const gg_block *block);
const char *gg_block_owner(const gg_block *block);
gg_pool *gg_block_pool(const gg_block *block);
/* Host pointer to the block's first byte on host-memory devices (cpu, sim);
 * NULL elsewhere. */
void *gg_block_host_ptr(const gg_block *block);
/* Copies into / out of the block at `offset`; GG_ERANGE past its size. */
int gg_block_copy_to(gg_block *block, size_t offset, const void *src, size_t n);
int gg_block_copy_from(gg_block *block, void *dst, size_t offset, size_t n);

/* Gives every fully free cached segment back to the driver. *released (may
 * be NULL) gets the bytes released. Logs "[GPU] Memory cleanup completed:
 * released X bytes". Returns 0 or the first driver error (the segment is
 * dropped from the pool either way). */
int gg_pool_trim(gg_pool *pool, uint64_t *released);
/* Counts one completed request; every cfg.trim_every requests it trims.
 * Returns 1 when it trimmed (bytes in *released, may be NULL), else 0. */
int gg_pool_request_done(gg_pool *pool, uint64_t *released);

/* After gg_device_reset(): forgets every segment and block. On devices whose
 * memory lives in the driver's context (cuda, opencl) the reset already freed
 * it and the handles are stale, so the driver is NOT called: the raw
 * accounting is dropped instead. On host-memory devices (cpu, sim) the
 * memory survives a reset, so segments are released normally. Live gg_block
 * handles stay valid as tombstones: accessors return NULL/0, copies fail with
 * GG_EDEVICE_LOST, gg_block_free() just frees the handle. Returns the number
 * of live blocks invalidated. */
int gg_pool_drop_all(gg_pool *pool);

/* ---- statistics --------------------------------------------------------- */

typedef struct gg_pool_stats {
  char device[64];
  uint64_t budget;    /* 0 = unlimited */
  uint64_t allocated; /* bytes in live blocks (rounded sizes) */
  uint64_t requested; /* bytes asked for by live blocks */
  uint64_t reserved;  /* bytes held from the driver (all segments) */
  uint64_t reserved_small, reserved_large;
  uint64_t peak_allocated, peak_reserved; /* since creation or gg_pool_reset_peaks */
  uint64_t cached;                        /* reserved - allocated */
  uint64_t largest_free;                  /* largest cached free block */
  double fragmentation;                   /* 1 - largest_free / cached; 0 when nothing cached */
  uint64_t segments;                      /* segments held */
  uint64_t blocks;                        /* live blocks */
  uint64_t free_blocks;                   /* cached free blocks */
  uint64_t n_allocs, n_frees, n_ooms, n_trims;
  uint64_t n_cache_hits;   /* served from cached blocks */
  uint64_t n_cache_misses; /* needed a new segment */
  uint64_t n_segment_allocs, n_segment_frees;
  uint64_t n_leaks, leaked_bytes; /* reported by closed scopes */
  uint64_t bytes_trimmed;         /* total given back by trims and OOM retries */
  uint64_t requests_done;
  size_t n_owners;                                  /* distinct live owners (may exceed the list) */
  size_t n_owners_listed;                           /* entries filled in owners[] */
  gg_mem_owner_stat owners[GG_MEM_SNAPSHOT_OWNERS]; /* largest first */
} gg_pool_stats;

/* Fills a consistent snapshot (taken under the pool lock). Returns 0. */
int gg_pool_get_stats(gg_pool *pool, gg_pool_stats *out);
/* Resets peak_allocated/peak_reserved to the current values. */
void gg_pool_reset_peaks(gg_pool *pool);
/* Bytes held by `owner` now (0 if none). */
uint64_t gg_pool_owner_bytes(gg_pool *pool, const char *owner);

/* ---- leak scopes ----------------------------------------------------- */

/* Opens a scope (e.g. one per request). Allocations made with it (pool
 * blocks via gg_pool_alloc_ex, host memory via gg_host_alloc_ex) are tracked
 * until freed. Returns NULL when out of host memory. Thread-safe; a scope
 * may collect allocations from several pools and threads. */
gg_mem_scope *gg_mem_scope_open(const char *name);

typedef struct gg_mem_leaks {
  uint64_t count, bytes;
  uint64_t peak_bytes; /* peak of the scope's live bytes while open */
} gg_mem_leaks;

/* Closes the scope: every allocation still live is reported with a [MEM]
 * warning (scope name, owner tag, size), counted in its pool's (or the host)
 * leak statistics and detached (it stays allocated; freeing it later is
 * fine). Fills *out (may be NULL) and frees the scope. Returns the number of
 * leaks (0 = clean). gg_mem_scope_close(NULL, ...) returns 0. */
int gg_mem_scope_close(gg_mem_scope *scope, gg_mem_leaks *out);
/* Live allocations / bytes in the scope now. */
uint64_t gg_mem_scope_live_bytes(gg_mem_scope *scope);

/* ---- host allocations ------------------------------------------------ */

/* malloc with accounting: 64-byte aligned, owner-tagged, counted in the
 * process-wide host stats. Returns NULL on failure or size 0. Free with
 * gg_host_free(). */
void *gg_host_alloc(const char *owner, size_t size);
/* Same, tracked in `scope` (may be NULL). */
void *gg_host_alloc_ex(const char *owner, size_t size, gg_mem_scope *scope);
/* Frees memory from gg_host_alloc*; NULL is a no-op. */
void gg_host_free(void *p);

typedef struct gg_host_stats {
  uint64_t allocated, peak_allocated;
  uint64_t blocks;
  uint64_t n_allocs, n_frees, n_failed;
  uint64_t n_leaks, leaked_bytes;
  size_t n_owners, n_owners_listed;
  gg_mem_owner_stat owners[GG_MEM_SNAPSHOT_OWNERS];
} gg_host_stats;

int gg_host_get_stats(gg_host_stats *out);
void gg_host_reset_peaks(void);

/* ---- pinned staging pool --------------------------------------------- */

/* How a backend provides page-locked host memory. The CUDA backend will
 * implement it with cuMemHostAlloc/cuMemFreeHost; the default uses malloc. */
typedef struct gg_pinned_i {
  int (*alloc)(void *ctx, size_t size, void **out); /* required: 0 or GG_E* */
  void (*free)(void *ctx, void *p);                 /* required */
  void (*destroy)(void *ctx);                       /* optional */
} gg_pinned_i;

typedef struct gg_staging gg_staging;

/* Creates a staging pool caching up to `max_cached` bytes of released
 * buffers. iface NULL = malloc-backed default (ctx ignored). The pool owns
 * ctx when iface->destroy is set. */
gg_staging *gg_staging_new(const gg_pinned_i *iface, void *ctx, size_t max_cached);
/* Frees cached buffers and the pool; buffers still acquired are released
 * too (reported). NULL is a no-op. */
void gg_staging_free(gg_staging *st);
/* Gets a buffer of at least `size` bytes (smallest cached fit, else new).
 * Returns 0, GG_EINVAL, or the allocator's error. */
int gg_staging_acquire(gg_staging *st, size_t size, void **out);
/* Returns a buffer; cached while under max_cached, else freed. GG_EINVAL for
 * a pointer this pool did not hand out. */
int gg_staging_release(gg_staging *st, void *p);

typedef struct gg_staging_stats {
  uint64_t in_use, cached; /* bytes */
  uint64_t n_acquire, n_hits, n_allocs;
} gg_staging_stats;
void gg_staging_get_stats(gg_staging *st, gg_staging_stats *out);

/* JSON and Prometheus renderings of these stats: gpuguard/render.h (the
 * HTTP service's). */

#ifdef __cplusplus
}
#endif
#endif
