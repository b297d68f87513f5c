/* Owner tables and leak scopes. */
#include "gpuguard/error.h"
#include "gpuguard/log.h"
#include "memory/memory-impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- owner table -------------------------------------------------------- */

uint64_t gg__owner_hash(const char *name) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; name[i] && i < GG_MEM_OWNER_MAX - 1; i++) {
    h ^= (unsigned char)name[i];
    h *= 1099511628211ull;
  }
  return h;
}

gg__owner *gg__owner_acquire(gg__owner_table *t, const char *name, uint64_t bytes) {
  if (!name || !*name) name = "unknown";
  uint64_t h = gg__owner_hash(name);
  gg__owner **head = &t->buckets[h % GG__OWNER_BUCKETS];
  gg__owner *o = *head;
  while (o && !(o->hash == h && !strncmp(o->name, name, GG_MEM_OWNER_MAX - 1)))
    o = o->next;
  if (!o) {
    o = calloc(1, sizeof *o);
    if (!o) return NULL;
    o->hash = h;
    snprintf(o->name, sizeof o->name, "%s", name);
    o->next = *head;
    *head = o;
    t->count++;
  }
  o->bytes += bytes;
  o->blocks++;
  return o;
}

void gg__owner_release(gg__owner_table *t, gg__owner *o, uint64_t bytes) {
  if (!o) return;
  o->bytes -= bytes;
  if (--o->blocks) return;
  gg__owner **pp = &t->buckets[o->hash % GG__OWNER_BUCKETS];
  while (*pp != o)
    pp = &(*pp)->next;
  *pp = o->next;
  t->count--;
  free(o);
}

static int owner_cmp(const void *a, const void *b) {
  const gg_mem_owner_stat *x = a, *y = b;
  if (x->bytes != y->bytes) return x->bytes < y->bytes ? 1 : -1;
  return strcmp(x->owner, y->owner);
}

size_t gg__owner_top(const gg__owner_table *t, gg_mem_owner_stat *out, size_t max) {
  /* Keep the best `max` in out with insertion: owners are few, max is small. */
  size_t n = 0;
  for (size_t b = 0; b < GG__OWNER_BUCKETS; b++) {
    for (const gg__owner *o = t->buckets[b]; o; o = o->next) {
      gg_mem_owner_stat s;
      memset(&s, 0, sizeof s);
      snprintf(s.owner, sizeof s.owner, "%s", o->name);
      s.bytes = o->bytes;
      s.blocks = o->blocks;
      if (n < max) {
        out[n++] = s;
      } else if (max && owner_cmp(&s, &out[max - 1]) < 0) {
        out[max - 1] = s;
      } else {
        continue;
      }
      /* bubble the new entry up to its place */
      for (size_t i = n - 1; i > 0 && owner_cmp(&out[i], &out[i - 1]) < 0; i--) {
        gg_mem_owner_stat tmp = out[i];
        out[i] = out[i - 1];
        out[i - 1] = tmp;
      }
    }
  }
  return n;
}

void gg__owner_table_clear(gg__owner_table *t) {
  for (size_t b = 0; b < GG__OWNER_BUCKETS; b++) {
    gg__owner *o = t->buckets[b];
    while (o) {
      gg__owner *next = o->next;
      free(o);
      o = next;
    }
    t->buckets[b] = NULL;
  }
  t->count = 0;
}

/* ---- scopes ------------------------------------------------------------- */

/* One process-wide lock for scope membership. Pools take it after their own
 * lock (pool -> scope); scope close takes only this one, so a close racing a
 * free never sees a half-freed allocation. */
static pthread_mutex_t g_scope_lock = PTHREAD_MUTEX_INITIALIZER;

struct gg_mem_scope {
  char name[GG_MEM_OWNER_MAX];
  gg__track head; /* circular list sentinel */
  uint64_t live_count, live_bytes, peak_bytes;
};

gg_mem_scope *gg_mem_scope_open(const char *name) {
  gg_mem_scope *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  snprintf(s->name, sizeof s->name, "%s", name && *name ? name : "scope");
  s->head.prev = s->head.next = &s->head;
  return s;
}

void gg__scope_attach(gg_mem_scope *scope, gg__track *t, int kind, uint64_t bytes) {
  t->kind = kind;
  if (!scope) {
    t->scope = NULL;
    t->prev = t->next = NULL;
    return;
  }
  pthread_mutex_lock(&g_scope_lock);
  t->scope = scope;
  t->next = &scope->head;
  t->prev = scope->head.prev;
  scope->head.prev->next = t;
  scope->head.prev = t;
  scope->live_count++;
  scope->live_bytes += bytes;
  if (scope->live_bytes > scope->peak_bytes) scope->peak_bytes = scope->live_bytes;
  pthread_mutex_unlock(&g_scope_lock);
}

void gg__scope_detach(gg__track *t, uint64_t bytes) {
  pthread_mutex_lock(&g_scope_lock);
  gg_mem_scope *s = t->scope;
  if (s) {
    t->prev->next = t->next;
    t->next->prev = t->prev;
    t->prev = t->next = NULL;
    t->scope = NULL;
    s->live_count--;
    s->live_bytes -= bytes;
  }
  pthread_mutex_unlock(&g_scope_lock);
}

uint64_t gg_mem_scope_live_bytes(gg_mem_scope *scope) {
  if (!scope) return 0;
  pthread_mutex_lock(&g_scope_lock);
  uint64_t v = scope->live_bytes;
  pthread_mutex_unlock(&g_scope_lock);
  return v;
}

int gg_mem_scope_close(gg_mem_scope *scope, gg_mem_leaks *out) {
  if (out) memset(out, 0, sizeof *out);
  if (!scope) return 0;
  gg_mem_leaks lk = {0, 0, 0};
  pthread_mutex_lock(&g_scope_lock);
  lk.peak_bytes = scope->peak_bytes;
  gg__track *t = scope->head.next;
  while (t != &scope->head) {
    gg__track *next = t->next;
    const char *owner = "unknown";
    uint64_t bytes = 0;
    if (t->kind == GG__TRACK_BLOCK)
      gg__block_leaked(t, &owner, &bytes);
    else
      gg__host_leaked(t, &owner, &bytes);
    GG_WARN("MEM", "leak in scope '%s': %s allocation of %llu bytes owned by '%s' was not freed",
            scope->name, t->kind == GG__TRACK_BLOCK ? "device" : "host", (unsigned long long)bytes,
            owner);
    lk.count++;
    lk.bytes += bytes;
    t->prev = t->next = NULL;
    t->scope = NULL;
    t = next;
  }
  pthread_mutex_unlock(&g_scope_lock);
  if (lk.count)
    GG_WARN("MEM", "scope '%s' closed with %llu leaked allocations (%llu bytes)", scope->name,
            (unsigned long long)lk.count, (unsigned long long)lk.bytes);
  free(scope);
  if (out) *out = lk;
  return lk.count > (uint64_t)0x7fffffff ? 0x7fffffff : (int)lk.count;
}
