/* JSON (/api/device) and Prometheus text (/metrics) renderings of the
 * memory pools' and the guard's state. Moved here from src/memory/json.c
 * and src/guard/stats.c: those modules fill plain structs, the service
 * decides how they look. */
#include "gpuguard/render.h"
#include "gpuguard/error.h"
#include "server/sbuf.h"

#include <jansson.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- memory pools: JSON -------------------------------------------------- */

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

/* ---- memory pools: Prometheus text ------------------------------------- */

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

/* ---- the guard ------------------------------------------------------------- */

void *gg_guard_json(gg_guard *g) {
  if (!g) return NULL;
  gg_guard_stats st;
  gg_guard_stats_get(g, &st);
  json_t *js = json_object();
  json_t *devs = json_array();
  if (!js || !devs) {
    json_decref(js);
    json_decref(devs);
    return NULL;
  }
#define X(name, help) json_object_set_new(js, #name, json_integer((json_int_t)st.name));
  GG_GUARD_STAT_FIELDS(X)
#undef X
  int n = gg_guard_device_count(g);
  for (int i = 0; i < n; i++) {
    gg_guard_device_status ds;
    if (gg_guard_device_status_get(g, i, &ds)) continue;
    json_t *d =
        json_pack("{s:s,s:s,s:i,s:s,s:b,s:i,s:b,s:i,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:i}", "spec",
                  ds.spec, "name", ds.name, "index", ds.index, "breaker",
                  gg_breaker_state_name(ds.breaker), "gpu_failed", ds.breaker != GG_BREAKER_CLOSED,
                  "failures_in_window", ds.failures_in_window, "isolated", ds.isolated,
                  "worker_pid", ds.worker_pid, "worker_restarts", (json_int_t)ds.worker_restarts,
                  "served", (json_int_t)ds.served, "budget_bytes", (json_int_t)ds.budget,
                  "pool_allocated_bytes", (json_int_t)ds.pool_allocated, "pool_reserved_bytes",
                  (json_int_t)ds.pool_reserved, "raw_bytes_in_use", (json_int_t)ds.raw_in_use,
                  "leaked_bytes", (json_int_t)ds.leaked_bytes, "models", ds.n_models);
    if (!d) continue;
    json_object_set_new(d, "effective_spec", json_string(ds.effective_spec));
    json_object_set_new(d, "faults_active", json_boolean(ds.faults_active));
    json_object_set_new(d, "configured", json_boolean(ds.configured));
    if (ds.last_failure_unix_ms) {
      json_object_set_new(d, "last_failure",
                          json_pack("{s:I,s:s,s:s}", "unix_ms", (json_int_t)ds.last_failure_unix_ms,
                                    "error", gg_err_name(ds.last_failure_error), "reason",
                                    ds.last_failure_reason));
    } else {
      json_object_set_new(d, "last_failure", json_null());
    }
    json_array_append_new(devs, d);
  }
  json_t *root = json_pack("{s:b,s:o,s:o}", "gpu_failed", gg_guard_gpu_failed(g), "stats", js,
                           "devices", devs);
  gg_guard_switch_status sw;
  if (root && gg_guard_switch_status_get(g, &sw) == 0)
    json_object_set_new(root, "switch", gg_guard_switch_json(&sw));
  return root;
}

void *gg_guard_switch_json(const gg_guard_switch_status *sw) {
  if (!sw || !sw->id) return json_null();
  json_t *j =
      json_pack("{s:I,s:s,s:s,s:s,s:f}", "id", (json_int_t)sw->id, "to", sw->to, "from", sw->from,
                "state", gg_switch_state_name(sw->state), "elapsed_ms", sw->elapsed_ms);
  if (j && sw->state == GG_SWITCH_FAILED) {
    json_object_set_new(j, "error", json_string(sw->reason));
    json_object_set_new(j, "error_name", json_string(gg_err_name(sw->error)));
  }
  return j;
}

void gg__sb_printf(gg_sbuf *b, const char *fmt, ...) {
  if (b->oom) return;
  for (;;) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
      b->oom = 1;
      return;
    }
    if (b->p && b->len + (size_t)n < b->cap) {
      b->len += (size_t)n;
      return;
    }
    size_t cap = (b->cap ? b->cap * 2 : 4096) + (size_t)n;
    char *q = realloc(b->p, cap);
    if (!q) {
      b->oom = 1;
      return;
    }
    b->p = q;
    b->cap = cap;
  }
}

char *gg_guard_prometheus(gg_guard *g) {
  if (!g) return NULL;
  gg_guard_stats st;
  gg_guard_stats_get(g, &st);
  gg_sbuf b = {0};
#define X(name, help)                                                                              \
  gg__sb_printf(&b,                                                                                \
                "# HELP gpuguard_guard_%s_total %s\n# TYPE gpuguard_guard_%s_total counter\n"      \
                "gpuguard_guard_%s_total %llu\n",                                                  \
                #name, help, #name, #name, (unsigned long long)st.name);
  GG_GUARD_STAT_FIELDS(X)
#undef X
  gg__sb_printf(&b, "# HELP gpuguard_guard_breaker_state circuit breaker: 0 closed, 1 open, 2 "
                    "half-open\n# TYPE gpuguard_guard_breaker_state gauge\n");
  int n = gg_guard_device_count(g);
  for (int i = 0; i < n; i++) {
    gg_guard_device_status ds;
    if (gg_guard_device_status_get(g, i, &ds)) continue;
    gg__sb_printf(&b, "gpuguard_guard_breaker_state{device=\"%s\",index=\"%d\"} %d\n", ds.name, i,
                  (int)ds.breaker);
  }
  gg__sb_printf(&b, "# HELP gpuguard_guard_worker_restarts device worker restarts per device\n"
                    "# TYPE gpuguard_guard_worker_restarts counter\n");
  for (int i = 0; i < n; i++) {
    gg_guard_device_status ds;
    if (gg_guard_device_status_get(g, i, &ds)) continue;
    gg__sb_printf(&b, "gpuguard_guard_worker_restarts{device=\"%s\",index=\"%d\"} %llu\n", ds.name,
                  i, (unsigned long long)ds.worker_restarts);
  }
  gg__sb_printf(&b,
                "# HELP gpuguard_guard_gpu_failed 1 when the primary device is not serving\n"
                "# TYPE gpuguard_guard_gpu_failed gauge\ngpuguard_guard_gpu_failed %d\n",
                gg_guard_gpu_failed(g));
  if (b.oom) {
    free(b.p);
    return NULL;
  }
  return b.p;
}
