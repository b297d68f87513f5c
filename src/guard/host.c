/* The device side of the guard: one device, its budgeted pool, a runner and
 * the models loaded on it. A worker process runs exactly one host; cpu
 * devices run one in-process. Also the runner registry and small helpers. */
#include "gpuguard/core.h"
#include "gpuguard/error.h"
#include "gpuguard/log.h"
#include "guard/guard-impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int gg__runner_synthetic(gg_runner *out);
int gg__runner_engine(const char *arg, gg_runner *out);

/* ---- tensors ------------------------------------------------------------ */

size_t gg_gtensor_count(const gg_gtensor *t) {
  if (!t || t->ndim < 0 || t->ndim > GG_GUARD_MAX_DIMS) return 0;
  size_t n = 1;
  for (int i = 0; i < t->ndim; i++) {
    if (t->dims[i] <= 0) return 0;
    if ((uint64_t)t->dims[i] > SIZE_MAX / sizeof(float) / n) return 0;
    n *= (size_t)t->dims[i];
  }
  return n;
}

void gg_gtensor_release(gg_gtensor *t) {
  if (!t) return;
  free(t->data);
  memset(t, 0, sizeof *t);
}

#define GG__MAX_INPUT_ELEMS ((size_t)256 << 20) /* 1 GiB of floats */

int gg__tensor_check(const gg_gtensor *t, char *err, size_t errlen) {
  if (!t) {
    snprintf(err, errlen, "no input tensor given");
    return GG_EINVAL;
  }
  if (t->ndim < 1 || t->ndim > GG_GUARD_MAX_DIMS) {
    snprintf(err, errlen, "input rank %d is not in 1..%d", t->ndim, GG_GUARD_MAX_DIMS);
    return GG_EINVAL;
  }
  for (int i = 0; i < t->ndim; i++) {
    if (t->dims[i] <= 0) {
      snprintf(err, errlen, "input dimension %d is %lld; every dimension must be >= 1", i,
               (long long)t->dims[i]);
      return GG_EINVAL;
    }
  }
  size_t n = gg_gtensor_count(t);
  if (n == 0 || n > GG__MAX_INPUT_ELEMS) {
    snprintf(err, errlen, "input has too many elements (limit %zu); send a smaller tensor",
             GG__MAX_INPUT_ELEMS);
    return GG_ETOO_LARGE;
  }
  if (!t->data) {
    snprintf(err, errlen, "input tensor has a shape but no data");
    return GG_EINVAL;
  }
  return 0;
}

/* ---- runners ------------------------------------------------------------ */

int gg_runner_create(const char *kind, const char *arg, gg_runner *out) {
  if (!kind || !out) return GG_EINVAL;
  memset(out, 0, sizeof *out);
  if (!strcmp(kind, "synthetic")) return gg__runner_synthetic(out);
  if (!strcmp(kind, "engine")) return gg__runner_engine(arg, out);
  GG_ERROR("GPU", "unknown runner '%s' (known: engine, synthetic)", kind);
  return GG_ENOTFOUND;
}

void gg_runner_free(gg_runner *r) {
  if (!r || !r->iface) return;
  if (r->iface->destroy)
    r->iface->destroy(r->ctx);
  else
    free(r->ctx);
  memset(r, 0, sizeof *r);
}

/* ---- clocks, specs ------------------------------------------------------ */

int64_t gg__mono_ms(void) {
  return (int64_t)(gg_now_ns() / 1000000u);
}

int64_t gg__unix_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int is_fault_token(const char *t, size_t n) {
  static const char *const kinds[] = {"oom", "launch", "sticky", "hang"};
  for (size_t i = 0; i < 4; i++) {
    size_t kl = strlen(kinds[i]);
    if (n > kl && !strncmp(t, kinds[i], kl) && (t[kl] == '@' || t[kl] == '%')) return 1;
  }
  return 0;
}

void gg__spec_set_faults(const char *spec, const char *faults, char *out, size_t len) {
  /* "sim:mem=4560M,faults=oom@3,launch%0.1,seed=7": the fault list runs from
   * "faults=" over every following KIND@N / KIND%P token. */
  size_t o = 0;
  out[0] = 0;
  const char *colon = strchr(spec, ':');
  if (!colon) {
    snprintf(out, len, "%s", spec);
    if (faults && *faults && !strcmp(spec, "sim")) snprintf(out, len, "sim:faults=%s", faults);
    return;
  }
  o = (size_t)snprintf(out, len, "%.*s:", (int)(colon - spec), spec);
  int first = 1, in_faults = 0;
  const char *p = colon + 1;
  while (*p && o < len) {
    size_t n = strcspn(p, ",");
    int drop = 0;
    if (n >= 7 && !strncmp(p, "faults=", 7)) {
      drop = 1;
      in_faults = 1;
    } else if (in_faults && is_fault_token(p, n)) {
      drop = 1;
    } else {
      in_faults = 0;
    }
    if (!drop) {
      o += (size_t)snprintf(out + o, len - o, "%s%.*s", first ? "" : ",", (int)n, p);
      first = 0;
    }
    p += n;
    if (*p == ',') p++;
  }
  if (faults && *faults && o < len)
    o += (size_t)snprintf(out + o, len - o, "%sfaults=%s", first ? "" : ",", faults);
  if (o < len && o > 0 && out[o - 1] == ':') out[o - 1] = 0;
}

void gg_guard_spec_with_faults(const char *spec, const char *faults, char *out, size_t len) {
  if (!out || !len) return;
  if (!spec) {
    out[0] = 0;
    return;
  }
  gg__spec_set_faults(spec, faults ? faults : "", out, len);
}

void gg__spec_strip_faults(const char *spec, char *out, size_t len) {
  gg__spec_set_faults(spec, "", out, len);
}

/* ---- host --------------------------------------------------------------- */

static gg__host_model *find_model(gg__host *h, const char *name) {
  for (int i = 0; i < h->n_models; i++)
    if (!strcmp(h->models[i].name, name)) return &h->models[i];
  return NULL;
}

int gg__host_open(const gg__host_config *cfg, gg__host **out, char *err, size_t errlen) {
  gg__host *h = calloc(1, sizeof *h);
  if (!h) return GG_ENOMEM;
  int rc = gg_device_open(cfg->spec, &h->dev);
  if (rc) {
    snprintf(err, errlen, "cannot open device '%s': %s", cfg->spec, gg_strerror(rc));
    goto fail;
  }
  gg_pool_config pc;
  gg_pool_config_default(&pc);
  char budget[32] = "";
  if (cfg->budget) {
    snprintf(budget, sizeof budget, "%llu", (unsigned long long)cfg->budget);
    pc.budget = budget;
  } else if (gg_device_get_kind(h->dev) != GG_DEVICE_CPU) {
    pc.budget = "1.0"; /* never more than the device has */
  }
  pc.trim_every = cfg->cleanup_every > 0 ? (unsigned)cfg->cleanup_every : 0;
  rc = gg_pool_new(h->dev, &pc, &h->pool);
  if (rc) {
    snprintf(err, errlen, "cannot create the memory pool on '%s': %s", cfg->spec, gg_strerror(rc));
    goto fail;
  }
  rc = gg_runner_create(cfg->runner, cfg->runner_arg, &h->runner);
  if (rc) {
    snprintf(err, errlen, "cannot create runner '%s': %s", cfg->runner, gg_strerror(rc));
    goto fail;
  }
  *out = h;
  return 0;
fail:
  gg_pool_free(h->pool);
  gg_device_free(h->dev);
  free(h);
  return rc;
}

void gg__host_close(gg__host *h, uint64_t *leaked) {
  if (leaked) *leaked = 0;
  if (!h) return;
  for (int i = h->n_models - 1; i >= 0; i--)
    h->runner.iface->unload(h->runner.ctx, h->models[i].handle);
  h->n_models = 0;
  gg_runner_free(&h->runner);
  uint64_t leak = h->leaked_bytes;
  if (h->pool) {
    gg_pool_stats ps;
    gg_pool_get_stats(h->pool, &ps);
    leak += ps.allocated; /* live blocks with nobody left to free them */
    gg_pool_trim(h->pool, NULL);
    gg_pool_free(h->pool);
  }
  if (h->dev) {
    leak += gg_device_mem_in_use(h->dev);
    gg_device_free(h->dev);
  }
  if (leak) GG_WARN("MEM", "device host closed with %llu bytes leaked", (unsigned long long)leak);
  if (leaked) *leaked = leak;
  free(h);
}

int gg__host_validate(gg__host *h, gg_validation *v) {
  /* Validation takes raw memory; give the pool's cache back first so a
   * device full of cached blocks does not fail it. */
  gg_pool_stats ps;
  gg_pool_get_stats(h->pool, &ps);
  if (ps.cached) gg_pool_trim(h->pool, NULL);
  int rc = gg_device_validate(h->dev, v);
  if (rc) return rc;
  return v->passed ? 0 : (v->error ? v->error : GG_EDRIVER);
}

int gg__host_load(gg__host *h, const char *model, uint64_t *weights) {
  gg__host_model *m = find_model(h, model);
  if (m) {
    if (weights) *weights = m->weights;
    return 0;
  }
  if (h->n_models == GG__MAX_MODELS) return GG_EBUSY;
  if (strlen(model) >= GG__MODEL_NAME) return GG_EINVAL;
  gg_pool_stats before, after;
  gg_pool_get_stats(h->pool, &before);
  void *handle = NULL;
  int rc = h->runner.iface->load(h->runner.ctx, model, h->dev, h->pool, &handle);
  if (rc) return rc;
  gg_pool_get_stats(h->pool, &after);
  m = &h->models[h->n_models++];
  snprintf(m->name, sizeof m->name, "%s", model);
  m->handle = handle;
  m->weights = after.allocated > before.allocated ? after.allocated - before.allocated : 0;
  if (weights) *weights = m->weights;
  return 0;
}

/* Runs fn inside a leak scope: anything a run leaves allocated is counted. */
static void check_leaks(gg__host *h, uint64_t allocated_before) {
  gg_pool_stats ps;
  gg_pool_get_stats(h->pool, &ps);
  if (ps.allocated > allocated_before) {
    uint64_t leak = ps.allocated - allocated_before;
    h->leaked_bytes += leak;
    GG_WARN("MEM", "a run on %s left %llu bytes allocated", gg_device_name(h->dev),
            (unsigned long long)leak);
  }
}

int gg__host_warmup(gg__host *h, const char *model) {
  gg__host_model *m = find_model(h, model);
  if (!m) return GG_ENOTFOUND;
  if (!h->runner.iface->warmup) return 0;
  gg_pool_stats ps;
  gg_pool_get_stats(h->pool, &ps);
  int rc = h->runner.iface->warmup(h->runner.ctx, m->handle);
  check_leaks(h, ps.allocated);
  return rc;
}

int gg__host_peak(gg__host *h, const char *model, const gg_gtensor *shape, uint64_t *peak) {
  gg__host_model *m = find_model(h, model);
  if (!m) return GG_ENOTFOUND;
  return h->runner.iface->planned_peak(h->runner.ctx, m->handle, shape, peak);
}

int gg__host_run(gg__host *h, const char *model, const gg_gtensor *in, gg_gtensor *outs,
                 int *n_outs) {
  gg__host_model *m = find_model(h, model);
  if (!m) return GG_ENOTFOUND;
  *n_outs = 0;
  gg_pool_stats ps;
  gg_pool_get_stats(h->pool, &ps);
  int rc = h->runner.iface->run(h->runner.ctx, m->handle, in, outs, GG_GUARD_MAX_OUTPUTS, n_outs);
  check_leaks(h, ps.allocated);
  h->n_last_ops = 0;
  if (rc == 0 && h->runner.iface->ops_by_backend)
    h->n_last_ops = h->runner.iface->ops_by_backend(h->runner.ctx, m->handle, in, h->last_ops,
                                                    GG_GUARD_MAX_BACKENDS);
  if (rc == 0 && gg_pool_request_done(h->pool, NULL) == 1) h->cleanups++;
  return rc;
}

int gg__host_unload(gg__host *h, const char *model) {
  gg__host_model *m = find_model(h, model);
  if (!m) return GG_ENOTFOUND;
  h->runner.iface->unload(h->runner.ctx, m->handle);
  int i = (int)(m - h->models);
  memmove(&h->models[i], &h->models[i + 1], (size_t)(h->n_models - i - 1) * sizeof *m);
  h->n_models--;
  return 0;
}

int gg__host_trim(gg__host *h, uint64_t *released) {
  return gg_pool_trim(h->pool, released);
}

void gg__host_stats(gg__host *h, gg__dev_stats *st) {
  memset(st, 0, sizeof *st);
  if (!h) return;
  gg_pool_stats ps;
  gg_pool_get_stats(h->pool, &ps);
  st->budget = ps.budget;
  st->pool_allocated = ps.allocated;
  st->pool_reserved = ps.reserved;
  st->pool_largest_free = ps.largest_free;
  st->raw_in_use = gg_device_mem_in_use(h->dev);
  st->leaked_bytes = h->leaked_bytes + ps.leaked_bytes;
  st->raw_allocs = ps.n_segment_allocs;
  gg_sim_stats ss;
  if (gg_device_get_kind(h->dev) == GG_DEVICE_SIM && gg_sim_get_stats(h->dev, &ss) == 0) {
    st->raw_allocs = ss.allocs;
    st->launches = ss.launches;
    for (int k = 0; k < GG_FAULT_KIND_COUNT; k++)
      st->faults_fired += ss.faults_fired[k];
  }
  st->cleanups = h->cleanups;
  st->trims = ps.n_trims;
  st->bytes_trimmed = ps.bytes_trimmed;
}
