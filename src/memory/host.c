/* Accounted host allocations (gg_host_alloc) and the pinned staging pool. */
#include "gpuguard/error.h"
#include "gpuguard/log.h"
#include "memory/memory-impl.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HOST_ALIGN 64
#define HOST_MAGIC 0x67674d454d484f53ull /* "ggMEMHOS" */

/* Sits in front of every gg_host_alloc block; padded to HOST_ALIGN so the
 * user pointer keeps the alignment. */
typedef struct host_hdr {
  gg__track track;
  gg__owner *owner;
  size_t size;
  uint64_t magic;
} host_hdr;

#define HDR_SIZE ((sizeof(host_hdr) + HOST_ALIGN - 1) / HOST_ALIGN * HOST_ALIGN)

static pthread_mutex_t g_host_lock = PTHREAD_MUTEX_INITIALIZER;
static gg__owner_table g_host_owners;
static uint64_t g_allocated, g_peak, g_blocks, g_allocs, g_frees, g_failed;
static _Atomic uint64_t g_leaks, g_leaked_bytes;

void *gg_host_alloc(const char *owner, size_t size) {
  return gg_host_alloc_ex(owner, size, NULL);
}

void *gg_host_alloc_ex(const char *owner, size_t size, gg_mem_scope *scope) {
  if (size == 0 || size > SIZE_MAX - 2 * HDR_SIZE) return NULL;
  size_t total = (HDR_SIZE + size + HOST_ALIGN - 1) / HOST_ALIGN * HOST_ALIGN;
  host_hdr *h = aligned_alloc(HOST_ALIGN, total);
  pthread_mutex_lock(&g_host_lock);
  gg__owner *o = h ? gg__owner_acquire(&g_host_owners, owner, size) : NULL;
  if (!o) {
    g_failed++;
    pthread_mutex_unlock(&g_host_lock);
    free(h);
    GG_WARN("MEM", "host allocation of %zu bytes for '%s' failed", size,
            owner && *owner ? owner : "unknown");
    return NULL;
  }
  h->owner = o;
  h->size = size;
  h->magic = HOST_MAGIC;
  g_allocated += size;
  if (g_allocated > g_peak) g_peak = g_allocated;
  g_blocks++;
  g_allocs++;
  gg__scope_attach(scope, &h->track, GG__TRACK_HOST, size);
  pthread_mutex_unlock(&g_host_lock);
  return (char *)h + HDR_SIZE;
}

void gg_host_free(void *p) {
  if (!p) return;
  host_hdr *h = (host_hdr *)((char *)p - HDR_SIZE);
  if (h->magic != HOST_MAGIC) {
    GG_ERROR("MEM", "%s: %p was not allocated by gg_host_alloc (or was freed twice)", __func__, p);
    return;
  }
  pthread_mutex_lock(&g_host_lock);
  gg__scope_detach(&h->track, h->size);
  gg__owner_release(&g_host_owners, h->owner, h->size);
  g_allocated -= h->size;
  g_blocks--;
  g_frees++;
  h->magic = 0;
  pthread_mutex_unlock(&g_host_lock);
  free(h);
}

void gg__host_leaked(gg__track *t, const char **owner, uint64_t *bytes) {
  host_hdr *h = (host_hdr *)((char *)t - offsetof(host_hdr, track));
  *owner = h->owner->name;
  *bytes = h->size;
  atomic_fetch_add(&g_leaks, 1);
  atomic_fetch_add(&g_leaked_bytes, h->size);
}

int gg_host_get_stats(gg_host_stats *s) {
  if (!s) return GG_EINVAL;
  memset(s, 0, sizeof *s);
  pthread_mutex_lock(&g_host_lock);
  s->allocated = g_allocated;
  s->peak_allocated = g_peak;
  s->blocks = g_blocks;
  s->n_allocs = g_allocs;
  s->n_frees = g_frees;
  s->n_failed = g_failed;
  s->n_owners = g_host_owners.count;
  s->n_owners_listed = gg__owner_top(&g_host_owners, s->owners, GG_MEM_SNAPSHOT_OWNERS);
  pthread_mutex_unlock(&g_host_lock);
  s->n_leaks = atomic_load(&g_leaks);
  s->leaked_bytes = atomic_load(&g_leaked_bytes);
  return 0;
}

void gg_host_reset_peaks(void) {
  pthread_mutex_lock(&g_host_lock);
  g_peak = g_allocated;
  pthread_mutex_unlock(&g_host_lock);
}

/* ---- pinned staging pool ------------------------------------------------ */

typedef struct staging_buf {
  struct staging_buf *next;
  void *ptr;
  size_t size;
} staging_buf;

struct gg_staging {
  pthread_mutex_t lock;
  gg_pinned_i iface;
  void *ctx;
  size_t max_cached;
  staging_buf *cached; /* free buffers */
  staging_buf *in_use; /* handed out */
  gg_staging_stats st;
};

static int malloc_alloc(void *ctx, size_t size, void **out) {
  *out = gg_host_alloc("staging", size);
  return *out ? 0 : GG_ENOMEM;
}

static void malloc_free(void *ctx, void *p) {
  gg_host_free(p);
}

static const gg_pinned_i k_malloc_pinned = {malloc_alloc, malloc_free, NULL};

gg_staging *gg_staging_new(const gg_pinned_i *iface, void *ctx, size_t max_cached) {
  if (iface && (!iface->alloc || !iface->free)) return NULL;
  gg_staging *st = calloc(1, sizeof *st);
  if (!st) return NULL;
  pthread_mutex_init(&st->lock, NULL);
  st->iface = iface ? *iface : k_malloc_pinned;
  st->ctx = iface ? ctx : NULL;
  st->max_cached = max_cached;
  return st;
}

static void free_list(gg_staging *st, staging_buf *b) {
  while (b) {
    staging_buf *next = b->next;
    st->iface.free(st->ctx, b->ptr);
    free(b);
    b = next;
  }
}

void gg_staging_free(gg_staging *st) {
  if (!st) return;
  size_t live = 0;
  for (staging_buf *b = st->in_use; b; b = b->next)
    live++;
  if (live) GG_WARN("MEM", "staging pool freed with %zu buffers still acquired", live);
  free_list(st, st->cached);
  free_list(st, st->in_use);
  if (st->iface.destroy) st->iface.destroy(st->ctx);
  pthread_mutex_destroy(&st->lock);
  free(st);
}

int gg_staging_acquire(gg_staging *st, size_t size, void **out) {
  if (!st || !out || !size) return GG_EINVAL;
  *out = NULL;
  pthread_mutex_lock(&st->lock);
  st->st.n_acquire++;
  staging_buf **best = NULL;
  for (staging_buf **pp = &st->cached; *pp; pp = &(*pp)->next)
    if ((*pp)->size >= size && (!best || (*pp)->size < (*best)->size)) best = pp;
  staging_buf *b = NULL;
  if (best) {
    b = *best;
    *best = b->next;
    st->st.cached -= b->size;
    st->st.n_hits++;
  } else {
    b = calloc(1, sizeof *b);
    int rc = b ? st->iface.alloc(st->ctx, size, &b->ptr) : GG_ENOMEM;
    if (rc) {
      free(b);
      pthread_mutex_unlock(&st->lock);
      return rc;
    }
    b->size = size;
    st->st.n_allocs++;
  }
  b->next = st->in_use;
  st->in_use = b;
  st->st.in_use += b->size;
  *out = b->ptr;
  pthread_mutex_unlock(&st->lock);
  return 0;
}

int gg_staging_release(gg_staging *st, void *p) {
  if (!st || !p) return GG_EINVAL;
  pthread_mutex_lock(&st->lock);
  staging_buf **pp = &st->in_use;
  while (*pp && (*pp)->ptr != p)
    pp = &(*pp)->next;
  staging_buf *b = *pp;
  if (!b) {
    pthread_mutex_unlock(&st->lock);
    GG_ERROR("MEM", "%s: %p was not acquired from this staging pool", __func__, p);
    return GG_EINVAL;
  }
  *pp = b->next;
  st->st.in_use -= b->size;
  if (st->st.cached + b->size <= st->max_cached) {
    b->next = st->cached;
    st->cached = b;
    st->st.cached += b->size;
    b = NULL;
  }
  pthread_mutex_unlock(&st->lock);
  if (b) {
    st->iface.free(st->ctx, b->ptr);
    free(b);
  }
  return 0;
}

void gg_staging_get_stats(gg_staging *st, gg_staging_stats *out) {
  memset(out, 0, sizeof *out);
  if (!st) return;
  pthread_mutex_lock(&st->lock);
  *out = st->st;
  pthread_mutex_unlock(&st->lock);
}
