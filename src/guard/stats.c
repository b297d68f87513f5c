/* Guard state for /api/device (jansson) and /metrics (Prometheus text). */
#include "gpuguard/error.h"
#include "guard/guard-impl.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STAT_FIELDS(X)                                                                             \
  X(requests, "requests received")                                                                 \
  X(served, "requests answered with a result")                                                     \
  X(failed, "requests no device could serve")                                                      \
  X(bad_input, "requests rejected as bad input (never retried)")                                   \
  X(attempts, "inference runs started")                                                            \
  X(retries, "retries on the same device")                                                         \
  X(fallbacks, "requests served by a fallback device")                                             \
  X(ooms, "device out-of-memory failures")                                                         \
  X(launch_failures, "kernel launch / out-of-resources failures")                                  \
  X(device_lost, "sticky device-lost failures and worker crashes")                                 \
  X(timeouts, "watchdog timeouts (hung kernels)")                                                  \
  X(other_failures, "other device failures")                                                       \
  X(breaker_opened, "circuit breaker transitions to open")                                         \
  X(breaker_half_opened, "circuit breaker transitions to half-open")                               \
  X(breaker_closed, "circuit breaker transitions to closed (recovered)")                           \
  X(worker_starts, "device worker starts")                                                         \
  X(worker_restarts, "device worker restarts")                                                     \
  X(worker_crashes, "device worker crashes")                                                       \
  X(cache_trims, "pool cache trims before a retry")                                                \
  X(cleanups, "periodic pool cleanups")                                                            \
  X(admission_waits, "requests that waited for a busy device")                                     \
  X(admission_rejects, "requests a device could not admit (budget, queue)")                        \
  X(device_switches, "device switches")                                                            \
  X(switch_rollbacks, "device switches rolled back")                                               \
  X(loads, "model loads")                                                                          \
  X(leaked_bytes, "device bytes leaked (reported by leak checks)")

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
  STAT_FIELDS(X)
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

typedef struct sbuf {
  char *p;
  size_t len, cap;
  int oom;
} sbuf;

__attribute__((format(printf, 2, 3))) static void sb_printf(sbuf *b, const char *fmt, ...) {
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
  sbuf b = {0};
#define X(name, help)                                                                              \
  sb_printf(&b,                                                                                    \
            "# HELP gpuguard_guard_%s_total %s\n# TYPE gpuguard_guard_%s_total counter\n"          \
            "gpuguard_guard_%s_total %llu\n",                                                      \
            #name, help, #name, #name, (unsigned long long)st.name);
  STAT_FIELDS(X)
#undef X
  sb_printf(&b, "# HELP gpuguard_guard_breaker_state circuit breaker: 0 closed, 1 open, 2 "
                "half-open\n# TYPE gpuguard_guard_breaker_state gauge\n");
  int n = gg_guard_device_count(g);
  for (int i = 0; i < n; i++) {
    gg_guard_device_status ds;
    if (gg_guard_device_status_get(g, i, &ds)) continue;
    sb_printf(&b, "gpuguard_guard_breaker_state{device=\"%s\",index=\"%d\"} %d\n", ds.name, i,
              (int)ds.breaker);
  }
  sb_printf(&b, "# HELP gpuguard_guard_worker_restarts device worker restarts per device\n"
                "# TYPE gpuguard_guard_worker_restarts counter\n");
  for (int i = 0; i < n; i++) {
    gg_guard_device_status ds;
    if (gg_guard_device_status_get(g, i, &ds)) continue;
    sb_printf(&b, "gpuguard_guard_worker_restarts{device=\"%s\",index=\"%d\"} %llu\n", ds.name, i,
              (unsigned long long)ds.worker_restarts);
  }
  sb_printf(&b,
            "# HELP gpuguard_guard_gpu_failed 1 when the primary device is not serving\n"
            "# TYPE gpuguard_guard_gpu_failed gauge\ngpuguard_guard_gpu_failed %d\n",
            gg_guard_gpu_failed(g));
  if (b.oom) {
    free(b.p);
    return NULL;
  }
  return b.p;
}
