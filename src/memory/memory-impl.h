/* Memory manager internals shared by pool.c, scope.c and host.c. */
#ifndef GG_MEMORY_IMPL_H
#define GG_MEMORY_IMPL_H

#include "gpuguard/memory.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

/* ---- owner table: tag -> live bytes/blocks; entries die at 0 blocks ---- */

typedef struct gg__owner {
  struct gg__owner *next; /* hash chain */
  uint64_t hash;
  uint64_t bytes, blocks;
  char name[GG_MEM_OWNER_MAX];
} gg__owner;

#define GG__OWNER_BUCKETS 256

typedef struct gg__owner_table {
  gg__owner *buckets[GG__OWNER_BUCKETS];
  size_t count;
} gg__owner_table;

/* Finds or creates the entry for `name` (NULL -> "unknown") and adds one
 * block of `bytes`. NULL when out of host memory. Caller holds the lock. */
gg__owner *gg__owner_acquire(gg__owner_table *t, const char *name, uint64_t bytes);
/* Removes one block of `bytes`; frees the entry when it holds no blocks. */
void gg__owner_release(gg__owner_table *t, gg__owner *o, uint64_t bytes);
/* Copies the top `max` owners by bytes into out (largest first); returns
 * how many were written. */
size_t gg__owner_top(const gg__owner_table *t, gg_mem_owner_stat *out, size_t max);
void gg__owner_table_clear(gg__owner_table *t);

/* ---- scope membership: embedded in every tracked allocation ------------ */

typedef enum gg__track_kind { GG__TRACK_BLOCK = 1, GG__TRACK_HOST = 2 } gg__track_kind;

typedef struct gg__track {
  struct gg__track *prev, *next;
  gg_mem_scope *scope; /* NULL when not tracked */
  int kind;            /* gg__track_kind */
} gg__track;

/* Links t into scope (may be NULL: then a no-op) counting `bytes`. */
void gg__scope_attach(gg_mem_scope *scope, gg__track *t, int kind, uint64_t bytes);
/* Unlinks t from its scope if it has one. Safe against a concurrent close. */
void gg__scope_detach(gg__track *t, uint64_t bytes);

/* Called by scope.c (holding the scope lock) for each allocation left when a
 * scope closes: counts the leak in the pool's / host stats and says what it
 * is. The allocation is live, so its owner name stays valid meanwhile. */
void gg__block_leaked(gg__track *t, const char **owner, uint64_t *bytes);
void gg__host_leaked(gg__track *t, const char **owner, uint64_t *bytes);

/* A FNV-1a hash of a tag truncated to GG_MEM_OWNER_MAX-1 bytes. */
uint64_t gg__owner_hash(const char *name);

/* Walks every segment and bin and checks the allocator's invariants
 * (contiguous blocks, coalesced free neighbours, bins and counters in
 * sync). Returns 0 or GG_ESTATE with the first violation in err. Tests. */
int gg__pool_check(gg_pool *pool, char *err, size_t errlen);

#endif
