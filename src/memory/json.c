/* Memory statistics as JSON (/api/device) and Prometheus text (/metrics). */
#include "gpuguard/memory.h"

#include <jansson.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

static json_t *owners_json(const gg_mem_owner_stat *o, size_t n) {
  json_t *obj = json_object();
  for (size_t i = 0; obj && i < n; i++)
    json_object_set_new(obj, o[i].owner, json_integer((json_int_t)o[i].bytes));
  return obj;
}

#define U(v) json_integer((json_int_t)(v))

json_t *gg_pool_stats_to_json(const gg_pool_stats *s) {
  if (!s) return NULL;
  json_t *counts =
      json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "allocs",
                U(s->n_allocs), "frees", U(s->n_frees), "ooms", U(s->n_ooms), "trims",
                U(s->n_trims), "cache_hits", U(s->n_cache_hits), "cache_misses",
                U(s->n_cache_misses), "segment_allocs", U(s->n_segment_allocs), "segment_frees",
                U(s->n_segment_frees), "leaks", U(s->n_leaks), "leaked_bytes", U(s->leaked_bytes),
                "bytes_trimmed", U(s->bytes_trimmed), "requests_done", U(s->requests_done));
  json_t *j = json_pack(
      "{s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:f, s:o, s:o, "
      "s:o, s:o, s:o, s:o}",
      "device", s->device, "budget", U(s->budget), "allocated", U(s->allocated), "requested",
      U(s->requested), "reserved", U(s->reserved), "reserved_small", U(s->reserved_small),
      "reserved_large", U(s->reserved_large), "peak_allocated", U(s->peak_allocated),
      "peak_reserved", U(s->peak_reserved), "cached", U(s->cached), "largest_free",
      U(s->largest_free), "fragmentation", s->fragmentation, "segments", U(s->segments), "blocks",
      U(s->blocks), "free_blocks", U(s->free_blocks), "owner_count", U(s->n_owners), "counts",
      counts ? counts : json_null(), "owners", owners_json(s->owners, s->n_owners_listed));
  return j;
}

json_t *gg_host_stats_to_json(const gg_host_stats *s) {
  if (!s) return NULL;
  return json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "allocated",
                   U(s->allocated), "peak_allocated", U(s->peak_allocated), "blocks", U(s->blocks),
                   "allocs", U(s->n_allocs), "frees", U(s->n_frees), "failed", U(s->n_failed),
                   "leaks", U(s->n_leaks), "leaked_bytes", U(s->leaked_bytes), "owner_count",
                   U(s->n_owners), "owners", owners_json(s->owners, s->n_owners_listed));
}

/* ---- Prometheus text ---------------------------------------------------- */

typedef struct pbuf {
  char *buf;
  size_t len, used;
} pbuf;

static void pput(pbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void pput(pbuf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  size_t room = b->used < b->len ? b->len - b->used : 0;
  int n = vsnprintf(room ? b->buf + b->used : NULL, room, fmt, ap);
  va_end(ap);
  if (n > 0) b->used += (size_t)n;
}

/* Label value escaping per the exposition format: \\ \" \n. */
static void escape_label(const char *in, char *out, size_t outlen) {
  size_t o = 0;
  for (; *in && o + 3 < outlen; in++) {
    if (*in == '\\' || *in == '"') {
      out[o++] = '\\';
      out[o++] = *in;
    } else if (*in == '\n') {
      out[o++] = '\\';
      out[o++] = 'n';
    } else {
      out[o++] = *in;
    }
  }
  out[o] = 0;
}

size_t gg_pool_stats_to_prometheus(const gg_pool_stats *s, int with_help, char *buf, size_t len) {
  pbuf b = {buf, len, 0};
  if (buf && len) buf[0] = 0;
  if (!s) return 0;
  char dev[2 * sizeof s->device];
  escape_label(s->device, dev, sizeof dev);
  static const struct {
    const char *name, *type, *help;
    size_t off;
    int is_double;
  } k_metrics[] = {
#define M(n, t, h, f) {n, t, h, offsetof(gg_pool_stats, f), 0}
      M("gpuguard_mem_allocated_bytes", "gauge", "Bytes in live blocks", allocated),
      M("gpuguard_mem_reserved_bytes", "gauge", "Bytes held from the driver", reserved),
      M("gpuguard_mem_peak_allocated_bytes", "gauge", "Peak of allocated since reset",
        peak_allocated),
      M("gpuguard_mem_peak_reserved_bytes", "gauge", "Peak of reserved since reset", peak_reserved),
      M("gpuguard_mem_cached_bytes", "gauge", "Reserved but not allocated", cached),
      M("gpuguard_mem_largest_free_bytes", "gauge", "Largest cached free block", largest_free),
      M("gpuguard_mem_budget_bytes", "gauge", "Memory budget (0 = unlimited)", budget),
      {"gpuguard_mem_fragmentation", "gauge", "1 - largest free / cached",
       offsetof(gg_pool_stats, fragmentation), 1},
      M("gpuguard_mem_segments", "gauge", "Segments held from the driver", segments),
      M("gpuguard_mem_blocks", "gauge", "Live blocks", blocks),
      M("gpuguard_mem_allocs_total", "counter", "Allocations", n_allocs),
      M("gpuguard_mem_frees_total", "counter", "Frees", n_frees),
      M("gpuguard_mem_ooms_total", "counter", "Allocations refused (out of memory or budget)",
        n_ooms),
      M("gpuguard_mem_trims_total", "counter", "Trims", n_trims),
      M("gpuguard_mem_cache_hits_total", "counter", "Allocations served from the cache",
        n_cache_hits),
      M("gpuguard_mem_cache_misses_total", "counter", "Allocations that needed a new segment",
        n_cache_misses),
      M("gpuguard_mem_leaks_total", "counter", "Allocations left when a scope closed", n_leaks),
#undef M
  };
  for (size_t i = 0; i < sizeof k_metrics / sizeof k_metrics[0]; i++) {
    if (with_help)
      pput(&b, "# HELP %s %s\n# TYPE %s %s\n", k_metrics[i].name, k_metrics[i].help,
           k_metrics[i].name, k_metrics[i].type);
    const char *field = (const char *)s + k_metrics[i].off;
    if (k_metrics[i].is_double) {
      double v;
      memcpy(&v, field, sizeof v);
      pput(&b, "%s{device=\"%s\"} %.6f\n", k_metrics[i].name, dev, v);
    } else {
      uint64_t v;
      memcpy(&v, field, sizeof v);
      pput(&b, "%s{device=\"%s\"} %llu\n", k_metrics[i].name, dev, (unsigned long long)v);
    }
  }
  if (with_help)
    pput(&b, "# HELP gpuguard_mem_owner_bytes Bytes held per owner tag\n"
             "# TYPE gpuguard_mem_owner_bytes gauge\n");
  for (size_t i = 0; i < s->n_owners_listed; i++) {
    char owner[2 * GG_MEM_OWNER_MAX];
    escape_label(s->owners[i].owner, owner, sizeof owner);
    pput(&b, "gpuguard_mem_owner_bytes{device=\"%s\",owner=\"%s\"} %llu\n", dev, owner,
         (unsigned long long)s->owners[i].bytes);
  }
  return b.used;
}
