/* Memory statistics as JSON, for /api/device and the metrics endpoint. */
#include "gpuguard/memory.h"

#include <jansson.h>

static json_t *owners_json(const gg_mem_owner_stat *o, size_t n) {
  json_t *obj = json_object();
  for (size_t i = 0; obj && i < n; i++) json_object_set_new(obj, o[i].owner, json_integer((json_int_t)o[i].bytes));
  return obj;
}

#define U(v) json_integer((json_int_t)(v))

json_t *gg_pool_stats_to_json(const gg_pool_stats *s) {
  if (!s) return NULL;
  json_t *counts = json_pack(
      "{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "allocs", U(s->n_allocs),
      "frees", U(s->n_frees), "ooms", U(s->n_ooms), "trims", U(s->n_trims), "cache_hits",
      U(s->n_cache_hits), "cache_misses", U(s->n_cache_misses), "segment_allocs",
      U(s->n_segment_allocs), "segment_frees", U(s->n_segment_frees), "leaks", U(s->n_leaks),
      "leaked_bytes", U(s->leaked_bytes), "bytes_trimmed", U(s->bytes_trimmed), "requests_done",
      U(s->requests_done));
  json_t *j = json_pack("{s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:f, s:o, s:o, "
                        "s:o, s:o, s:o, s:o}",
                        "device", s->device, "budget", U(s->budget), "allocated", U(s->allocated),
                        "requested", U(s->requested), "reserved", U(s->reserved),
                        "reserved_small", U(s->reserved_small), "reserved_large",
                        U(s->reserved_large), "peak_allocated", U(s->peak_allocated),
                        "peak_reserved", U(s->peak_reserved), "cached", U(s->cached),
                        "largest_free", U(s->largest_free), "fragmentation", s->fragmentation,
                        "segments", U(s->segments), "blocks", U(s->blocks), "free_blocks",
                        U(s->free_blocks), "owner_count", U(s->n_owners), "counts",
                        counts ? counts : json_null(), "owners",
                        owners_json(s->owners, s->n_owners_listed));
  return j;
}

json_t *gg_host_stats_to_json(const gg_host_stats *s) {
  if (!s) return NULL;
  return json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "allocated",
                   U(s->allocated), "peak_allocated", U(s->peak_allocated), "blocks",
                   U(s->blocks), "allocs", U(s->n_allocs), "frees", U(s->n_frees), "failed",
                   U(s->n_failed), "leaks", U(s->n_leaks), "leaked_bytes", U(s->leaked_bytes),
                   "owner_count", U(s->n_owners), "owners",
                   owners_json(s->owners, s->n_owners_listed));
}
