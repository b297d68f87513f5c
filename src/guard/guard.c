/* The resilience policy: per request admission, retries with backoff and
 * cache trims, a circuit breaker per device, the fallback chain, worker
 * restarts, device switching and counters. Executors (exec.c) do the work;
 * this file decides what to do when it fails. */
#include "gpuguard/core.h"
#include "gpuguard/error.h"
#include "gpuguard/log.h"
#include "guard/guard-impl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct gdev_model {
  char name[GG__MODEL_NAME];
  uint64_t weights;
  uint64_t last_used;
  /* the last planned peak and its input shape (a plan is deterministic) */
  int peak_ndim;
  int64_t peak_dims[GG_GUARD_MAX_DIMS];
  uint64_t peak;
  uint64_t peak_held; /* pool bytes that planning it took (a session prepared on the device) */
} gdev_model;

typedef struct gdev {
  gg__exec ex;
  char spec[128]; /* as configured, faults included */
  char name[64];  /* "sim", "cpu" */
  int is_cpu;
  int conf_idx;     /* index in the configured chain (never evicted); -1 for a
                       device switched to at run time */
  int users;        /* requests whose chain snapshot holds it (under g->mu) */
  int up;           /* executor started and validated */
  int starts;       /* executor starts so far */
  int faults_armed; /* next start gets the spec's faults */
  int faults_live;  /* the current context got them (published under g->mu) */
  gdev_model models[GG__MAX_MODELS];
  int n_models;
  gg__breaker br;
  /* what status readers see: published under g->mu by the slot holder */
  gg__dev_stats snap;
  int snap_up, snap_pid;
  int busy, waiting;
  pthread_cond_t cv;
  uint64_t served, restarts, leaked, trims_seen;
} gdev;

/* The configured devices plus one switched to at run time. */
#define CHAIN_MAX (GG_GUARD_MAX_DEVICES + 1)

/* A request's view of the chain: a switch may swap g->devs meanwhile; the
 * devices it holds stay alive until it leaves (gdev.users). */
typedef struct chain {
  gdev *d[CHAIN_MAX];
  int n;
} chain;

struct gg_guard {
  gg_guard_config cfg;
  char runner[32];
  char runner_arg[512];
  char exe[1024];
  char conf[GG_GUARD_MAX_DEVICES][128]; /* the configured chain's specs */
  pthread_mutex_t mu;
  pthread_cond_t cv; /* drain, device users, switch state */
  gdev *devs[CHAIN_MAX];
  int n; /* written under mu with __atomic_store_n */
  int inflight, switching;
  gg_guard_stats st;
  uint64_t rng;
  uint64_t use_clock;
  /* the latest device switch (under mu); sw_mu serialises starting one and
   * joining its thread */
  gg_guard_switch_status sw;
  int64_t sw_t0;
  int closing;
  atomic_int cancel; /* set while closing: workers' waits end early */
  pthread_mutex_t sw_mu;
  pthread_t sw_thread;
  int sw_thread_live;
};

/* ---- small helpers ------------------------------------------------------ */

void gg_guard_config_init(gg_guard_config *cfg) {
  memset(cfg, 0, sizeof *cfg);
  cfg->runner = "engine";
  cfg->retries = 2;
  cfg->backoff_ms = 25;
  cfg->backoff_max_ms = 1000;
  cfg->breaker_failures = 3;
  cfg->breaker_window_ms = 30000;
  cfg->breaker_cooldown_ms = 10000;
  cfg->isolate = 1;
  cfg->watchdog_ms = 10000;
  cfg->load_timeout_ms = 60000;
  cfg->cleanup_every = 5;
  cfg->queue_max = 16;
  cfg->queue_wait_ms = 5000;
  cfg->seed = 1;
}

/* Appends spec to the chain (copied into store) unless empty or already in it. */
static int chain_add(gg_guard_config *cfg, const char *spec, size_t n, char *store, size_t len,
                     size_t *used) {
  if (!n || cfg->n_devices >= GG_GUARD_MAX_DEVICES) return 0;
  for (int i = 0; i < cfg->n_devices; i++)
    if (strlen(cfg->devices[i]) == n && !strncmp(cfg->devices[i], spec, n)) return 0;
  if (*used + n + 1 > len) return GG_ERANGE;
  memcpy(store + *used, spec, n);
  store[*used + n] = 0;
  cfg->devices[cfg->n_devices++] = store + *used;
  *used += n + 1;
  return 0;
}

int gg_guard_config_chain(gg_guard_config *cfg, const char *device, const char *faults,
                          const char *fallback, char *store, size_t len) {
  if (!cfg || !device || !store || !len) return GG_EINVAL;
  cfg->n_devices = 0;
  size_t used = 0;
  char primary[512];
  if (faults && *faults && !strstr(device, "faults="))
    gg_guard_spec_with_faults(device, faults, primary, sizeof primary);
  else
    snprintf(primary, sizeof primary, "%s", device);
  int rc = chain_add(cfg, primary, strlen(primary), store, len, &used);
  for (const char *p = fallback ? fallback : ""; !rc && *p;) {
    size_t n = strcspn(p, ",");
    rc = chain_add(cfg, p, n, store, len, &used);
    p += n + (p[n] == ',');
  }
  return rc;
}

static void cond_init_mono(pthread_cond_t *cv) {
  pthread_condattr_t a;
  pthread_condattr_init(&a);
  pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
  pthread_cond_init(cv, &a);
  pthread_condattr_destroy(&a);
}

static void deadline_ts(int64_t deadline_ms, struct timespec *ts) {
  ts->tv_sec = (time_t)(deadline_ms / 1000);
  ts->tv_nsec = (long)(deadline_ms % 1000) * 1000000L;
}

static uint64_t rng_next(gg_guard *g) {
  uint64_t x = g->rng;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return g->rng = x;
}

/* Exponential backoff with +-50% jitter: base * 2^try, capped. */
static void backoff(gg_guard *g, int attempt) {
  int64_t ms = (int64_t)g->cfg.backoff_ms << (attempt < 20 ? attempt : 20);
  if (ms > g->cfg.backoff_max_ms) ms = g->cfg.backoff_max_ms;
  if (ms <= 0) return;
  pthread_mutex_lock(&g->mu);
  uint64_t r = rng_next(g);
  pthread_mutex_unlock(&g->mu);
  ms = ms / 2 + (int64_t)(r % (uint64_t)(ms + 1));
  usleep((useconds_t)ms * 1000);
}

static gdev_model *dev_model(gdev *d, const char *model) {
  for (int i = 0; i < d->n_models; i++)
    if (!strcmp(d->models[i].name, model)) return &d->models[i];
  return NULL;
}

/* Publishes the executor's state for status readers (the slot holder owns
 * d->ex; readers only see d->snap) and folds its cadence-trim counter into
 * the guard's cleanup count. */
static void absorb_stats(gg_guard *g, gdev *d) {
  pthread_mutex_lock(&g->mu);
  uint64_t t = d->ex.stats.cleanups;
  if (t < d->trims_seen) d->trims_seen = 0; /* a new worker */
  g->st.cleanups += t - d->trims_seen;
  d->trims_seen = t;
  d->snap = d->ex.stats;
  d->snap_up = d->up;
  d->snap_pid = d->up ? gg__exec_pid(&d->ex) : 0;
  pthread_mutex_unlock(&g->mu);
}

/* ---- device lifecycle (caller holds the device slot, not g->mu) -------- */

static void dev_down(gg_guard *g, gdev *d) {
  uint64_t leaked = 0;
  if (d->up || gg__exec_alive(&d->ex)) gg__exec_stop(&d->ex, &leaked);
  d->up = 0;
  d->trims_seen = 0;
  pthread_mutex_lock(&g->mu);
  d->leaked += leaked;
  g->st.leaked_bytes += leaked;
  d->snap_up = 0;
  d->snap_pid = 0;
  pthread_mutex_unlock(&g->mu);
}

/* A failure that killed the executor (hang, crash) leaves it down. */
static void note_exec_state(gdev *d) {
  if (!gg__exec_alive(&d->ex)) {
    d->up = 0;
    d->trims_seen = 0;
  }
}

/* Starts the executor if it is down: spawn/open, validate, then reload and
 * re-warm the models that were loaded before. The first start of a device
 * gets its spec's faults; later starts get a fresh, fault-free context. */
static int dev_start(gg_guard *g, gdev *d, char *err, size_t errlen) {
  if (d->up) return 0;
  if (gg__exec_alive(&d->ex)) gg__exec_stop(&d->ex, NULL);
  int faults = d->faults_armed;
  if (faults)
    snprintf(d->ex.spec, sizeof d->ex.spec, "%s", d->spec);
  else
    gg__spec_strip_faults(d->spec, d->ex.spec, sizeof d->ex.spec);
  d->ex.env_faults = faults;
  gg_validation v;
  int rc = gg__exec_start(&d->ex, &v, err, errlen);
  pthread_mutex_lock(&g->mu);
  d->faults_armed = 0; /* a burst: only this context gets them */
  d->faults_live = faults && rc == 0;
  g->st.worker_starts++;
  if (d->starts++ > 0) {
    g->st.worker_restarts++;
    d->restarts++;
  }
  pthread_mutex_unlock(&g->mu);
  if (rc) {
    if (!v.passed && v.reason[0])
      GG_ERROR("GPU", "GPU validation failed on %s: %s", d->spec, v.reason);
    else
      GG_ERROR("GPU", "GPU validation failed on %s: could not start it: %s", d->spec, err);
    note_exec_state(d);
    if (gg__exec_alive(&d->ex)) gg__exec_stop(&d->ex, NULL);
    return rc;
  }
  d->up = 1;
  if (d->starts > 1)
    GG_INFO("GPU", "worker for %s restarted (pid %d), validated in %.1f ms", d->spec,
            gg__exec_pid(&d->ex), v.elapsed_ms);
  for (int i = 0; i < d->n_models; i++) {
    rc = gg__exec_load(&d->ex, d->models[i].name, &d->models[i].weights, err, errlen);
    if (rc == 0) rc = gg__exec_warmup(&d->ex, d->models[i].name, err, errlen);
    if (rc) {
      GG_ERROR("GPU", "re-warming %s on %s failed: %s", d->models[i].name, d->spec, err);
      note_exec_state(d);
      return rc;
    }
  }
  absorb_stats(g, d);
  return 0;
}

static int known_kind(const char *spec) {
  static const char *const kinds[] = {"cpu", "sim", "cuda", "opencl"};
  size_t n = strcspn(spec, ":");
  for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
    if (strlen(kinds[i]) == n && !strncmp(kinds[i], spec, n)) return 1;
  return 0;
}

/* A device of the chain for `spec`, not started. conf_idx: its index in the
 * configured chain, -1 for one switched to at run time. NULL on OOM. */
static gdev *dev_new(gg_guard *g, const char *spec, int conf_idx) {
  gdev *d = calloc(1, sizeof *d);
  if (!d) return NULL;
  snprintf(d->spec, sizeof d->spec, "%s", spec);
  snprintf(d->name, sizeof d->name, "%.*s", (int)strcspn(spec, ":"), spec);
  d->is_cpu = !strcmp(d->name, "cpu");
  d->conf_idx = conf_idx;
  d->faults_armed = 1;
  cond_init_mono(&d->cv);
  const gg_guard_config *cfg = &g->cfg;
  gg__breaker_init(&d->br, cfg->breaker_failures, cfg->breaker_window_ms, cfg->breaker_cooldown_ms);
  gg__exec *e = &d->ex;
  e->isolated = cfg->isolate >= 2 || (cfg->isolate && !d->is_cpu);
  e->sock = e->shm = -1;
  e->exe = g->exe;
  e->cancel = &g->cancel;
  e->watchdog_ms = cfg->watchdog_ms;
  e->load_timeout_ms = cfg->load_timeout_ms;
  snprintf(e->runner, sizeof e->runner, "%s", g->runner);
  snprintf(e->runner_arg, sizeof e->runner_arg, "%s", g->runner_arg);
  e->hcfg.spec = e->spec;
  e->hcfg.runner = e->runner;
  e->hcfg.runner_arg = e->runner_arg[0] ? e->runner_arg : NULL;
  e->hcfg.budget = d->is_cpu ? 0 : cfg->mem_budget;
  e->hcfg.cleanup_every = cfg->cleanup_every;
  return d;
}

/* Stops and frees a device no request can reach any more. */
static void dev_free(gg_guard *g, gdev *d) {
  dev_down(g, d);
  pthread_cond_destroy(&d->cv);
  free(d);
}

/* ---- failure handling ---------------------------------------------------- */

enum { NEXT_RETRY = 0, NEXT_DEVICE, NEXT_REJECT };

/* Classifies a failure, counts it, feeds the breaker, and says what next. */
static int on_failure_(gg_guard *g, gdev *d, int rc, const char *what, const char *err);
static int on_failure(gg_guard *g, gdev *d, int rc, const char *what, const char *err) {
  int next = on_failure_(g, d, rc, what, err);
  absorb_stats(g, d);
  return next;
}

static int on_failure_(gg_guard *g, gdev *d, int rc, const char *what, const char *err) {
  gg_fail_class cls = gg_classify_err(rc);
  if (cls == GG_FAIL_BAD_INPUT) {
    pthread_mutex_lock(&g->mu);
    g->st.bad_input++;
    pthread_mutex_unlock(&g->mu);
    return NEXT_REJECT;
  }
  char reason[256];
  snprintf(reason, sizeof reason, "%s on %s: %s (%s, class %s)", what, d->spec,
           err && *err ? err : gg_strerror(rc), gg_err_name(rc), gg_fail_class_name(cls));
  GG_WARN("GPU", "%s", reason);
  int64_t now = gg__mono_ms();
  pthread_mutex_lock(&g->mu);
  switch (cls) {
  case GG_FAIL_OOM: g->st.ooms++; break;
  case GG_FAIL_LAUNCH:
  case GG_FAIL_OUT_OF_RESOURCES: g->st.launch_failures++; break;
  case GG_FAIL_DEVICE_LOST:
    g->st.device_lost++;
    if (d->ex.isolated && !gg__exec_alive(&d->ex) && d->ex.dead_reason == GG_EDEVICE_LOST)
      g->st.worker_crashes++;
    break;
  case GG_FAIL_HANG: g->st.timeouts++; break;
  default: g->st.other_failures++; break;
  }
  int opened;
  if (cls == GG_FAIL_COMPILE || cls == GG_FAIL_DRIVER)
    opened = gg__breaker_trip(&d->br, now, rc, reason);
  else if (cls == GG_FAIL_UNSUPPORTED || rc == GG_EBUDGET)
    opened = 0; /* the op, or a request bigger than the configured budget: not the
                   device's health, so other requests keep using it */
  else
    opened = gg__breaker_failure(&d->br, now, rc, reason);
  if (opened) g->st.breaker_opened++;
  int open = d->br.state == GG_BREAKER_OPEN;
  int is_last = 1;
  const char *next = "nothing";
  for (int i = 0; i < g->n; i++)
    if (g->devs[i] == d && i + 1 < g->n) {
      is_last = 0;
      next = g->devs[i + 1]->spec;
    }
  pthread_mutex_unlock(&g->mu);
  if (opened) {
    if (cls == GG_FAIL_OOM && !strcmp(next, "cpu"))
      GG_ERROR("GPU", "Persistent GPU memory errors, falling back to CPU (%s: breaker open)",
               d->spec);
    else
      GG_ERROR("GPU", "Persistent GPU errors on %s (%s), falling back to %s (breaker open)",
               d->spec, gg_fail_class_name(cls), next);
  }
  (void)is_last;
  if (gg_fail_class_is_sticky(cls)) {
    /* The context is poisoned (or the worker already killed): drop it; the
     * next use restarts, re-validates and re-warms it. */
    dev_down(g, d);
    return NEXT_DEVICE;
  }
  note_exec_state(d);
  if (open) {
    dev_down(g, d); /* give all its memory back while it rests */
    return NEXT_DEVICE;
  }
  if (cls == GG_FAIL_COMPILE || cls == GG_FAIL_DRIVER || cls == GG_FAIL_UNSUPPORTED)
    return NEXT_DEVICE;
  /* Over budget: the pool already gave its cache back before failing, so a
   * retry here would fail the same way. */
  if (rc == GG_EBUDGET) return NEXT_DEVICE;
  if (cls == GG_FAIL_OOM && d->up) {
    uint64_t released = 0;
    gg__exec_trim(&d->ex, &released);
    note_exec_state(d);
    pthread_mutex_lock(&g->mu);
    g->st.cache_trims++;
    pthread_mutex_unlock(&g->mu);
  }
  return d->up ? NEXT_RETRY : NEXT_DEVICE;
}

static int evict_lru(gg_guard *g, gdev *d, const char *keep, char *err, size_t errlen);

/* Loads and warms `model` on d (lazily), with the retry policy. */
static int dev_prepare(gg_guard *g, gdev *d, const char *model, char *err, size_t errlen,
                       int *rejected, gg_guard_result *res) {
  *rejected = 0;
  for (int attempt = 0;; attempt++) {
    int rc = dev_start(g, d, err, errlen);
    if (rc) {
      pthread_mutex_lock(&g->mu);
      if (gg__breaker_trip(&d->br, gg__mono_ms(), rc, err)) g->st.breaker_opened++;
      pthread_mutex_unlock(&g->mu);
      dev_down(g, d);
      if (res) {
        res->failures++;
        res->last_error = rc;
      }
      return rc;
    }
    gdev_model *m = dev_model(d, model);
    if (m) return 0;
    if (d->n_models == GG__MAX_MODELS) {
      snprintf(err, errlen, "too many models on %s (max %d)", d->spec, GG__MAX_MODELS);
      return GG_EBUSY;
    }
    uint64_t weights = 0;
    const char *what = "model load";
    rc = gg__exec_load(&d->ex, model, &weights, err, errlen);
    if (rc == 0) {
      what = "model warmup";
      rc = gg__exec_warmup(&d->ex, model, err, errlen);
      if (rc && d->up && gg__exec_alive(&d->ex)) gg__exec_unload(&d->ex, model);
    }
    if (rc == 0) {
      pthread_mutex_lock(&g->mu);
      m = &d->models[d->n_models++];
      snprintf(m->name, sizeof m->name, "%s", model);
      m->weights = weights;
      m->last_used = ++g->use_clock;
      g->st.loads++;
      pthread_mutex_unlock(&g->mu);
      absorb_stats(g, d);
      GG_INFO("GPU", "loaded %s on %s (%llu weight bytes), warmed up", model, d->spec,
              (unsigned long long)weights);
      return 0;
    }
    if (rc == GG_ECANCELED) return rc; /* the guard is closing: not the device's doing */
    /* Over budget with other models loaded: unload the least recently used
     * one and try again (not a failure of the device). */
    if (rc == GG_EBUDGET && d->up) {
      char why[256];
      int ev = evict_lru(g, d, model, why, sizeof why);
      if (ev == 0) {
        attempt--;
        continue;
      }
    }
    int next = on_failure(g, d, rc, what, err);
    if (next == NEXT_REJECT) {
      *rejected = 1;
      return rc;
    }
    if (res) {
      res->failures++;
      res->last_error = rc;
    }
    if (next == NEXT_DEVICE || attempt >= g->cfg.retries) return rc;
    pthread_mutex_lock(&g->mu);
    g->st.retries++;
    pthread_mutex_unlock(&g->mu);
    backoff(g, attempt);
  }
}

/* Unloads the least recently used model of d other than `keep` and trims
 * the pool, to make room under the budget. GG_ENOTFOUND when there is none
 * to unload, GG_EDEVICE_LOST when the worker died on the way. */
static int evict_lru(gg_guard *g, gdev *d, const char *keep, char *err, size_t errlen) {
  gdev_model *lru = NULL;
  for (int i = 0; i < d->n_models; i++)
    if (strcmp(d->models[i].name, keep) && (!lru || d->models[i].last_used < lru->last_used))
      lru = &d->models[i];
  if (!lru) return GG_ENOTFOUND;
  GG_INFO("GPU", "unloading %s from %s to make room for %s", lru->name, d->spec, keep);
  gg__exec_unload(&d->ex, lru->name);
  gg__exec_trim(&d->ex, NULL);
  pthread_mutex_lock(&g->mu);
  int i = (int)(lru - d->models);
  memmove(&d->models[i], &d->models[i + 1], (size_t)(d->n_models - i - 1) * sizeof *lru);
  d->n_models--;
  pthread_mutex_unlock(&g->mu);
  note_exec_state(d);
  if (d->up) return 0;
  snprintf(err, errlen, "the %s worker died while making room", d->spec);
  return GG_EDEVICE_LOST;
}

/* Admission: never start a run that is known not to fit. Evicts other
 * models from d (least recently used first) to make room. */
static int admit(gg_guard *g, gdev *d, const char *model, const gg_gtensor *in, uint64_t *peak,
                 char *err, size_t errlen, int *device_failed) {
  *device_failed = 0;
  gdev_model *pm = dev_model(d, model);
  uint64_t held = 0;
  if (pm && pm->peak && pm->peak_ndim == in->ndim &&
      !memcmp(pm->peak_dims, in->dims, sizeof(int64_t) * (size_t)in->ndim)) {
    *peak = pm->peak;
    held = pm->peak_held;
  } else {
    /* An engine that computes on the device prepares the session for a new
     * input shape (weights copy and arena) while planning it, so those bytes
     * are already taken when planning returns; the run then allocates
     * nothing. Count them as held, not as still needed. */
    uint64_t before = d->ex.stats.pool_allocated;
    int rc = gg__exec_peak(&d->ex, model, in, peak);
    if (rc) {
      snprintf(err, errlen, "planning %s on %s failed: %s", model, d->spec, gg_strerror(rc));
      *device_failed = 1; /* on_failure() tells a bad input from a device failure */
      return rc;
    }
    uint64_t after = d->ex.stats.pool_allocated;
    held = after > before ? after - before : 0;
    if (held > *peak) held = *peak;
    if (pm) {
      pthread_mutex_lock(&g->mu);
      pm->peak_held = held;
      pm->peak = *peak;
      pm->peak_ndim = in->ndim;
      memcpy(pm->peak_dims, in->dims, sizeof pm->peak_dims);
      pthread_mutex_unlock(&g->mu);
    }
  }
  uint64_t budget = d->ex.stats.budget;
  if (!budget) return 0;
  if (*peak > budget) {
    snprintf(err, errlen, "planned peak %llu bytes for %s exceeds the %llu-byte budget of %s",
             (unsigned long long)*peak, model, (unsigned long long)budget, d->spec);
    return GG_EBUDGET;
  }
  int trimmed = 0;
  for (;;) {
    gdev_model *m = dev_model(d, model);
    uint64_t weights = m ? m->weights : 0;
    uint64_t need = *peak > weights + held ? *peak - weights - held : 0;
    /* The run allocates `need` bytes as one block: from a cached free block
     * that fits, or from a new segment under the budget. What the pool holds
     * from the driver counts, not only what it handed out: its segments are
     * rounded up and a partly used one cannot hold a bigger block. */
    const gg__dev_stats *s = &d->ex.stats;
    uint64_t free_b = budget > s->pool_reserved ? budget - s->pool_reserved : 0;
    if (need <= free_b || need <= s->pool_largest_free) return 0;
    if (!trimmed && s->pool_reserved > s->pool_allocated) {
      gg__exec_trim(&d->ex, NULL); /* give cached segments back, then look again */
      note_exec_state(d);
      trimmed = 1;
      if (d->up) continue;
      *device_failed = 1;
      snprintf(err, errlen, "the %s worker died while trimming its cache", d->spec);
      return GG_EDEVICE_LOST;
    }
    int rc = evict_lru(g, d, model, err, errlen);
    if (rc == GG_ENOTFOUND) {
      snprintf(err, errlen, "%s needs %llu more bytes on %s but only %llu of its budget are free",
               model, (unsigned long long)need, d->spec, (unsigned long long)free_b);
      return GG_EBUDGET;
    }
    if (rc) {
      *device_failed = 1;
      return rc;
    }
    trimmed = 1; /* evict_lru trims */
  }
}

/* ---- device slots: one request at a time per device ------------------- */

static int slot_acquire(gg_guard *g, gdev *d, int wait_ms) {
  pthread_mutex_lock(&g->mu);
  if (d->busy && wait_ms <= 0) {
    pthread_mutex_unlock(&g->mu);
    return GG_EBUSY;
  }
  if (d->busy) {
    if (d->waiting >= g->cfg.queue_max) {
      g->st.admission_rejects++;
      pthread_mutex_unlock(&g->mu);
      return GG_EBUSY;
    }
    g->st.admission_waits++;
    d->waiting++;
    struct timespec ts;
    deadline_ts(gg__mono_ms() + wait_ms, &ts);
    int r = 0;
    while (d->busy && r != ETIMEDOUT)
      r = pthread_cond_timedwait(&d->cv, &g->mu, &ts);
    d->waiting--;
    if (d->busy) {
      g->st.admission_rejects++;
      pthread_mutex_unlock(&g->mu);
      return GG_EBUSY;
    }
  }
  d->busy = 1;
  pthread_mutex_unlock(&g->mu);
  return 0;
}

static void slot_release(gg_guard *g, gdev *d) {
  pthread_mutex_lock(&g->mu);
  d->busy = 0;
  pthread_cond_signal(&d->cv);
  pthread_mutex_unlock(&g->mu);
}

/* A request starts: waits while the guard is drained (shutdown), then takes
 * a snapshot of the chain and holds its devices. */
static void enter(gg_guard *g, chain *c) {
  pthread_mutex_lock(&g->mu);
  while (g->switching)
    pthread_cond_wait(&g->cv, &g->mu);
  g->inflight++;
  c->n = g->n;
  for (int i = 0; i < c->n; i++) {
    c->d[i] = g->devs[i];
    c->d[i]->users++;
  }
  pthread_mutex_unlock(&g->mu);
}

static void leave(gg_guard *g, chain *c) {
  pthread_mutex_lock(&g->mu);
  for (int i = 0; i < c->n; i++)
    c->d[i]->users--;
  g->inflight--;
  pthread_cond_broadcast(&g->cv);
  pthread_mutex_unlock(&g->mu);
}

/* Half-open probe: a fresh context, validation, warmup of its models. */
static int probe(gg_guard *g, gdev *d, char *err, size_t errlen) {
  GG_INFO("GPU", "probing %s (breaker half-open)", d->spec);
  dev_down(g, d);
  int rc = dev_start(g, d, err, errlen);
  pthread_mutex_lock(&g->mu);
  if (rc == 0) {
    if (gg__breaker_success(&d->br)) g->st.breaker_closed++;
  } else {
    if (gg__breaker_trip(&d->br, gg__mono_ms(), rc, err)) g->st.breaker_opened++;
  }
  pthread_mutex_unlock(&g->mu);
  if (rc == 0)
    GG_INFO("GPU", "Recovered, back on %s", d->spec);
  else
    dev_down(g, d);
  return rc;
}

/* Breaker gate: 0 skip, 1 use, after probing when half-open. */
static int gate(gg_guard *g, gdev *d, char *err, size_t errlen) {
  pthread_mutex_lock(&g->mu);
  gg_breaker_state before = d->br.state;
  int a = gg__breaker_allow(&d->br, gg__mono_ms());
  if (before == GG_BREAKER_OPEN && d->br.state == GG_BREAKER_HALF_OPEN) g->st.breaker_half_opened++;
  pthread_mutex_unlock(&g->mu);
  if (a == 0) return 0;
  if (a == 2) return probe(g, d, err, errlen) == 0;
  return 1;
}

/* ---- public API --------------------------------------------------------- */

int gg_guard_new(const gg_guard_config *cfg, gg_guard **out) {
  if (!cfg || !out || cfg->n_devices < 1 || cfg->n_devices > GG_GUARD_MAX_DEVICES) {
    GG_ERROR("GPU", "guard: need 1..%d devices in the fallback chain", GG_GUARD_MAX_DEVICES);
    return GG_EINVAL;
  }
  *out = NULL;
  gg_guard *g = calloc(1, sizeof *g);
  if (!g) return GG_ENOMEM;
  g->cfg = *cfg;
  snprintf(g->runner, sizeof g->runner, "%s", cfg->runner ? cfg->runner : "engine");
  snprintf(g->runner_arg, sizeof g->runner_arg, "%s", cfg->runner_arg ? cfg->runner_arg : "");
  const char *exe = cfg->worker_exe;
  if (!exe || !*exe) exe = getenv("GPUGUARD_WORKER_EXE");
  if (exe && *exe) {
    snprintf(g->exe, sizeof g->exe, "%s", exe);
  } else {
    ssize_t n = readlink("/proc/self/exe", g->exe, sizeof g->exe - 1);
    g->exe[n > 0 ? n : 0] = 0;
  }
  if (g->cfg.retries < 0) g->cfg.retries = 0;
  if (g->cfg.watchdog_ms <= 0) g->cfg.watchdog_ms = 10000;
  if (g->cfg.load_timeout_ms <= 0) g->cfg.load_timeout_ms = 60000;
  if (g->cfg.queue_max < 0) g->cfg.queue_max = 0;
  g->rng = cfg->seed ? cfg->seed : 1;
  pthread_mutex_init(&g->mu, NULL);
  pthread_mutex_init(&g->sw_mu, NULL);
  atomic_init(&g->cancel, 0);
  cond_init_mono(&g->cv);
  for (int i = 0; i < cfg->n_devices; i++) {
    const char *spec = cfg->devices[i];
    if (!spec || !*spec || strlen(spec) >= 128) {
      GG_ERROR("GPU", "guard: device %d of the chain is empty or too long", i);
      gg_guard_free(g);
      return GG_EINVAL;
    }
    /* Unknown device kinds are a configuration error, not a fault. */
    if (!known_kind(spec)) {
      GG_ERROR("GPU", "guard: unknown device '%s' (cpu, sim:..., cuda:N, opencl:P.D)", spec);
      gg_guard_free(g);
      return GG_ENODEV;
    }
    gdev *d = dev_new(g, spec, i);
    if (!d) {
      gg_guard_free(g);
      return GG_ENOMEM;
    }
    snprintf(g->conf[i], sizeof g->conf[i], "%s", spec);
    g->devs[g->n++] = d;
    char err[256] = "";
    int rc = dev_start(g, d, err, sizeof err);
    if (rc) {
      if (gg__breaker_trip(&d->br, gg__mono_ms(), rc, err)) g->st.breaker_opened++;
      GG_WARN("GPU", "%s is not usable now (%s); requests go to the next device", spec, err);
    }
  }
  *out = g;
  return 0;
}

static void switch_settle(gg_guard *g);

void gg_guard_free(gg_guard *g) {
  if (!g) return;
  pthread_mutex_lock(&g->mu);
  g->closing = 1;
  pthread_mutex_unlock(&g->mu);
  atomic_store(&g->cancel, 1); /* a pending switch ends now, as a failure */
  switch_settle(g);
  for (int i = 0; i < g->n; i++)
    dev_free(g, g->devs[i]);
  pthread_cond_destroy(&g->cv);
  pthread_mutex_destroy(&g->sw_mu);
  pthread_mutex_destroy(&g->mu);
  free(g);
}

static int infer_or_load(gg_guard *g, const chain *c, const char *model, const gg_gtensor *input,
                         gg_guard_result *res) {
  char err[256] = "";
  int last = GG_ENODEV;
  for (int i = 0; i < c->n; i++) {
    gdev *d = c->d[i];
    if (i > 0) GG_DEBUG("GPU", "trying %s for %s", d->spec, model);
    if (slot_acquire(g, d, g->cfg.queue_wait_ms)) {
      res->last_error = last = GG_EBUSY;
      continue;
    }
    if (!gate(g, d, err, sizeof err)) {
      /* Breaker open (or its probe failed): answer with the failure that
       * opened it, not a made-up one. */
      pthread_mutex_lock(&g->mu);
      int why = d->br.last_err ? d->br.last_err : GG_EDEVICE_LOST;
      if (!err[0])
        snprintf(err, sizeof err, "%.80s is out of service (circuit breaker open): %.120s", d->spec,
                 d->br.reason[0] ? d->br.reason : gg_strerror(why));
      pthread_mutex_unlock(&g->mu);
      slot_release(g, d);
      if (!res->last_error) last = why;
      continue;
    }
    int rejected = 0;
    int rc = dev_prepare(g, d, model, err, sizeof err, &rejected, res);
    if (rc) {
      slot_release(g, d);
      res->last_error = last = rc;
      if (rejected) goto reject;
      continue;
    }
    if (!input) { /* gg_guard_load */
      slot_release(g, d);
      snprintf(res->device, sizeof res->device, "%s", d->spec);
      res->device_index = i;
      return 0;
    }
    uint64_t peak = 0;
    int dev_failed = 0;
    rc = admit(g, d, model, input, &peak, err, sizeof err, &dev_failed);
    if (rc && dev_failed) {
      res->last_error = last = rc;
      int next = on_failure(g, d, rc, "planning", err);
      if (next != NEXT_REJECT) res->failures++;
      slot_release(g, d);
      if (next == NEXT_REJECT) goto reject;
      continue;
    }
    if (rc) {
      slot_release(g, d);
      res->last_error = last = rc;
      pthread_mutex_lock(&g->mu);
      g->st.admission_rejects++;
      pthread_mutex_unlock(&g->mu);
      GG_WARN("GPU", "admission: %s", err);
      continue;
    }
    for (int attempt = 0;; attempt++) {
      res->attempts++;
      pthread_mutex_lock(&g->mu);
      g->st.attempts++;
      gdev_model *m = dev_model(d, model);
      if (m) m->last_used = ++g->use_clock;
      pthread_mutex_unlock(&g->mu);
      rc = gg__exec_run(&d->ex, model, input, res, err, sizeof err);
      if (rc == 0) {
        absorb_stats(g, d);
        pthread_mutex_lock(&g->mu);
        if (gg__breaker_success(&d->br)) g->st.breaker_closed++;
        d->served++;
        g->st.served++;
        if (i > 0) g->st.fallbacks++;
        pthread_mutex_unlock(&g->mu);
        if (i > 0)
          GG_INFO("GPU", "%s served by fallback %s after %d attempt%s", model, d->spec,
                  res->attempts, res->attempts == 1 ? "" : "s");
        slot_release(g, d);
        snprintf(res->device, sizeof res->device, "%s", d->spec);
        res->device_index = i;
        res->fell_back = i > 0;
        res->planned_peak = peak;
        return 0;
      }
      res->last_error = last = rc;
      int next = on_failure(g, d, rc, "inference", err);
      if (next != NEXT_REJECT) res->failures++;
      if (next == NEXT_REJECT) {
        slot_release(g, d);
        goto reject;
      }
      if (next == NEXT_DEVICE || attempt >= g->cfg.retries) break;
      pthread_mutex_lock(&g->mu);
      g->st.retries++;
      pthread_mutex_unlock(&g->mu);
      backoff(g, attempt);
      /* a retry after a dropped context would need a restart: next device */
      if (!d->up) break;
    }
    slot_release(g, d);
  }
  /* Every device failed. The request still gets an answer: this error. */
  GG_ERROR("GPU", "%s: no device could serve the request (last error %s: %s)", model,
           gg_err_name(last), err);
  return last;
reject:
  GG_WARN("GPU", "%s: rejected, not retried: %s", model, err[0] ? err : gg_strerror(last));
  return last;
}

int gg_guard_load(gg_guard *g, const char *model) {
  if (!g || !model || !*model || strlen(model) >= GG__MODEL_NAME) return GG_EINVAL;
  gg_guard_result res;
  memset(&res, 0, sizeof res);
  chain c;
  enter(g, &c);
  int rc = infer_or_load(g, &c, model, NULL, &res);
  leave(g, &c);
  return rc;
}

int gg_guard_infer(gg_guard *g, const char *model, const gg_gtensor *input, gg_guard_result *res) {
  if (!res) return GG_EINVAL;
  memset(res, 0, sizeof *res);
  res->device_index = -1;
  if (!g) return GG_EINVAL;
  uint64_t t0 = gg_now_ns();
  char err[256];
  int rc = 0;
  if (!model || !*model || strlen(model) >= GG__MODEL_NAME) {
    snprintf(err, sizeof err, "model name missing or longer than %d bytes", GG__MODEL_NAME - 1);
    rc = GG_EINVAL;
  } else {
    rc = gg__tensor_check(input, err, sizeof err);
  }
  pthread_mutex_lock(&g->mu);
  g->st.requests++;
  if (rc) g->st.bad_input++;
  pthread_mutex_unlock(&g->mu);
  if (rc) {
    GG_WARN("GPU", "request rejected: %s", err);
    res->last_error = rc;
    return rc;
  }
  chain c;
  enter(g, &c);
  rc = infer_or_load(g, &c, model, input, res);
  leave(g, &c);
  pthread_mutex_lock(&g->mu);
  if (rc) g->st.failed++;
  pthread_mutex_unlock(&g->mu);
  res->elapsed_ms = (double)(gg_now_ns() - t0) / 1e6;
  return rc;
}

void gg_guard_result_release(gg_guard_result *res) {
  if (!res) return;
  for (int i = 0; i < res->n_outputs && i < GG_GUARD_MAX_OUTPUTS; i++)
    gg_gtensor_release(&res->outputs[i]);
  res->n_outputs = 0;
}

/* Drain: no new request starts; wait for those in flight. */
static void drain(gg_guard *g) {
  pthread_mutex_lock(&g->mu);
  while (g->switching)
    pthread_cond_wait(&g->cv, &g->mu);
  g->switching = 1;
  while (g->inflight > 0)
    pthread_cond_wait(&g->cv, &g->mu);
  pthread_mutex_unlock(&g->mu);
}

static void undrain(gg_guard *g) {
  pthread_mutex_lock(&g->mu);
  g->switching = 0;
  pthread_cond_broadcast(&g->cv);
  pthread_mutex_unlock(&g->mu);
}

/* ---- device switching ---------------------------------------------------- */

const char *gg_switch_state_name(gg_switch_state s) {
  static const char *const names[GG_SWITCH_STATE_COUNT] = {"none", "preparing", "done", "failed"};
  return s >= 0 && s < GG_SWITCH_STATE_COUNT ? names[s] : "?";
}

/* Claims the (single) switch for `spec`; the caller holds sw_mu. The thread
 * of the previous switch, finished by now, is joined here. */
static int switch_claim(gg_guard *g, const char *spec, uint64_t *id) {
  if (!spec || !*spec || strlen(spec) >= sizeof g->sw.to) return GG_EINVAL;
  if (!known_kind(spec)) {
    GG_ERROR("GPU", "switch: unknown device '%s' (cpu, sim:..., cuda:N, opencl:P.D)", spec);
    return GG_ENODEV;
  }
  char why[192] = "";
  pthread_mutex_lock(&g->mu);
  /* A switch that is done may still be releasing the old primary (bounded by
   * the runs in flight there): wait for that rather than refuse. */
  while (g->sw.busy && g->sw.state != GG_SWITCH_PREPARING && !g->switching && !g->closing)
    pthread_cond_wait(&g->cv, &g->mu);
  if (g->sw.busy)
    snprintf(why, sizeof why, "the switch to %.120s is still in progress", g->sw.to);
  else if (g->switching || g->closing)
    snprintf(why, sizeof why, "the guard is shutting down");
  pthread_mutex_unlock(&g->mu);
  if (why[0]) {
    GG_WARN("GPU", "switch to %s refused: %s", spec, why);
    return GG_EBUSY;
  }
  if (g->sw_thread_live) {
    pthread_join(g->sw_thread, NULL);
    g->sw_thread_live = 0;
  }
  pthread_mutex_lock(&g->mu);
  gg_guard_switch_status *w = &g->sw;
  uint64_t next = w->id + 1;
  memset(w, 0, sizeof *w);
  w->id = next;
  w->state = GG_SWITCH_PREPARING;
  w->busy = 1;
  snprintf(w->to, sizeof w->to, "%s", spec);
  snprintf(w->from, sizeof w->from, "%s", g->devs[0]->spec);
  g->sw_t0 = gg__mono_ms();
  g->st.device_switches++;
  pthread_mutex_unlock(&g->mu);
  if (id) *id = next;
  GG_INFO("GPU", "switching primary device %s -> %s: preparing it while %s serves", w->from, spec,
          w->from);
  return 0;
}

/* Records how the switch ended. Caller holds g->mu. */
static void switch_outcome(gg_guard *g, int rc, const char *err) {
  gg_guard_switch_status *w = &g->sw;
  w->state = rc ? GG_SWITCH_FAILED : GG_SWITCH_DONE;
  w->error = rc;
  snprintf(w->reason, sizeof w->reason, "%s", rc ? (err && *err ? err : gg_strerror(rc)) : "");
  w->elapsed_ms = (double)(gg__mono_ms() - g->sw_t0);
  pthread_cond_broadcast(&g->cv);
}

/* Starts nd off the chain and loads + warms each model, with the retry
 * policy; a sticky fault or a hang gets one more try on a fresh context. */
static int switch_prepare(gg_guard *g, gdev *nd, const gdev_model *models, int n_models, char *err,
                          size_t errlen) {
  if (!n_models) return dev_start(g, nd, err, errlen);
  for (int i = 0; i < n_models; i++) {
    if (atomic_load(&g->cancel)) {
      snprintf(err, errlen, "canceled: the guard is shutting down");
      return GG_ECANCELED;
    }
    int rejected = 0;
    int rc = dev_prepare(g, nd, models[i].name, err, errlen, &rejected, NULL);
    if (rc && !nd->up && !rejected && nd->br.state != GG_BREAKER_OPEN)
      rc = dev_prepare(g, nd, models[i].name, err, errlen, &rejected, NULL);
    if (rc) return rc;
  }
  return 0;
}

/* Swaps in the chain after a switch to nd: nd, then the configured devices
 * in configured order except the one nd replaces. The devices that leave
 * the chain go to left[]; returns their count. Caller holds g->mu. */
static int chain_commit(gg_guard *g, gdev *nd, gdev **left) {
  gdev *next[CHAIN_MAX];
  int n = 0, n_left = 0;
  next[n++] = nd;
  for (int k = 0; k < GG_GUARD_MAX_DEVICES; k++)
    for (int i = 0; i < g->n; i++)
      if (g->devs[i]->conf_idx == k && k != nd->conf_idx) next[n++] = g->devs[i];
  for (int i = 0; i < g->n; i++) {
    int kept = 0;
    for (int j = 1; j < n; j++)
      kept |= next[j] == g->devs[i];
    if (!kept) left[n_left++] = g->devs[i];
  }
  memcpy(g->devs, next, sizeof(gdev *) * (size_t)n);
  __atomic_store_n(&g->n, n, __ATOMIC_RELEASE);
  return n_left;
}

/* Takes d's slot for housekeeping, outside the request queue: waits as long
 * as the holder runs (every step of a run has a watchdog). */
static void slot_take(gg_guard *g, gdev *d) {
  pthread_mutex_lock(&g->mu);
  while (d->busy)
    pthread_cond_wait(&d->cv, &g->mu);
  d->busy = 1;
  pthread_mutex_unlock(&g->mu);
}

/* After the commit: the old primary, if it stays as a configured fallback,
 * gives its models and memory back (it restarts when used); the devices
 * that left the chain are freed once no request holds them. */
static void switch_release(gg_guard *g, gdev *old, gdev **left, int n_left) {
  int old_left = 0;
  for (int i = 0; i < n_left; i++)
    old_left |= left[i] == old;
  if (!old_left) {
    slot_take(g, old);
    for (int i = 0; i < old->n_models && old->up; i++)
      gg__exec_unload(&old->ex, old->models[i].name);
    if (old->up) gg__exec_trim(&old->ex, NULL);
    pthread_mutex_lock(&g->mu);
    old->n_models = 0;
    pthread_mutex_unlock(&g->mu);
    dev_down(g, old);
    slot_release(g, old);
  }
  for (int i = 0; i < n_left; i++) {
    pthread_mutex_lock(&g->mu);
    while (left[i]->users > 0)
      pthread_cond_wait(&g->cv, &g->mu);
    pthread_mutex_unlock(&g->mu);
    dev_free(g, left[i]);
  }
}

/* The switch claimed by switch_claim: prepare, commit or roll back, release. */
static int switch_run(gg_guard *g) {
  char spec[128];
  gdev_model models[GG__MAX_MODELS];
  pthread_mutex_lock(&g->mu);
  snprintf(spec, sizeof spec, "%s", g->sw.to);
  gdev *old = g->devs[0];
  int n_models = old->n_models;
  memcpy(models, old->models, sizeof models);
  pthread_mutex_unlock(&g->mu);
  int conf_idx = -1;
  for (int k = GG_GUARD_MAX_DEVICES - 1; k >= 0; k--)
    if (g->conf[k][0] && !strcmp(g->conf[k], spec)) conf_idx = k;
  gdev *nd = dev_new(g, spec, conf_idx);
  char err[256] = "";
  int rc = nd ? switch_prepare(g, nd, models, n_models, err, sizeof err) : GG_ENOMEM;
  if (rc) {
    /* Rollback: only the new device was touched. */
    GG_ERROR("GPU", "switch to %s failed (%s: %s); rolled back: still on %s", spec, gg_err_name(rc),
             err, old->spec);
    if (nd) dev_free(g, nd);
    pthread_mutex_lock(&g->mu);
    g->st.switch_rollbacks++;
    switch_outcome(g, rc, err);
    g->sw.busy = 0;
    pthread_mutex_unlock(&g->mu);
    return rc;
  }
  gdev *left[CHAIN_MAX];
  int loaded = nd->n_models; /* nd is still this thread's alone */
  pthread_mutex_lock(&g->mu);
  int n_left = chain_commit(g, nd, left);
  switch_outcome(g, 0, NULL);
  pthread_mutex_unlock(&g->mu);
  GG_INFO("GPU", "now on %s (%d model%s loaded)", spec, loaded, loaded == 1 ? "" : "s");
  switch_release(g, old, left, n_left);
  pthread_mutex_lock(&g->mu);
  g->sw.busy = 0;
  pthread_cond_broadcast(&g->cv);
  pthread_mutex_unlock(&g->mu);
  return 0;
}

static void *switch_thread(void *p) {
  switch_run(p);
  return NULL;
}

int gg_guard_switch_start(gg_guard *g, const char *spec, uint64_t *id) {
  if (!g) return GG_EINVAL;
  pthread_mutex_lock(&g->sw_mu);
  int rc = switch_claim(g, spec, id);
  if (rc == 0) {
    if (pthread_create(&g->sw_thread, NULL, switch_thread, g) == 0) {
      g->sw_thread_live = 1;
    } else {
      rc = GG_EOUT_OF_RESOURCES;
      pthread_mutex_lock(&g->mu);
      switch_outcome(g, rc, "cannot start a thread for the switch");
      g->sw.busy = 0;
      pthread_mutex_unlock(&g->mu);
    }
  }
  pthread_mutex_unlock(&g->sw_mu);
  return rc;
}

int gg_guard_switch_device(gg_guard *g, const char *spec) {
  if (!g) return GG_EINVAL;
  pthread_mutex_lock(&g->sw_mu);
  int rc = switch_claim(g, spec, NULL);
  pthread_mutex_unlock(&g->sw_mu);
  return rc ? rc : switch_run(g);
}

static void switch_status_locked(gg_guard *g, gg_guard_switch_status *st) {
  *st = g->sw;
  if (st->state == GG_SWITCH_PREPARING) st->elapsed_ms = (double)(gg__mono_ms() - g->sw_t0);
}

int gg_guard_switch_status_get(gg_guard *g, gg_guard_switch_status *st) {
  if (!g || !st) return GG_EINVAL;
  pthread_mutex_lock(&g->mu);
  switch_status_locked(g, st);
  pthread_mutex_unlock(&g->mu);
  return 0;
}

int gg_guard_switch_wait(gg_guard *g, uint64_t id, int timeout_ms, gg_guard_switch_status *st) {
  if (!g) return GG_EINVAL;
  struct timespec ts;
  deadline_ts(gg__mono_ms() + (timeout_ms > 0 ? timeout_ms : 0), &ts);
  pthread_mutex_lock(&g->mu);
  int r = 0;
  while (g->sw.id == id && g->sw.state == GG_SWITCH_PREPARING && r != ETIMEDOUT)
    r = timeout_ms < 0 ? pthread_cond_wait(&g->cv, &g->mu)
                       : pthread_cond_timedwait(&g->cv, &g->mu, &ts);
  int pending = g->sw.id == id && g->sw.state == GG_SWITCH_PREPARING;
  if (st) switch_status_locked(g, st);
  pthread_mutex_unlock(&g->mu);
  return pending ? GG_ETIMEOUT : 0;
}

/* Waits until no switch is busy and joins its thread. New switches are
 * refused meanwhile because the caller set g->switching or g->closing. */
static void switch_settle(gg_guard *g) {
  pthread_mutex_lock(&g->sw_mu);
  pthread_mutex_lock(&g->mu);
  while (g->sw.busy)
    pthread_cond_wait(&g->cv, &g->mu);
  pthread_mutex_unlock(&g->mu);
  if (g->sw_thread_live) {
    pthread_join(g->sw_thread, NULL);
    g->sw_thread_live = 0;
  }
  pthread_mutex_unlock(&g->sw_mu);
}

int gg_guard_shutdown(gg_guard *g) {
  if (!g) return GG_EINVAL;
  drain(g);
  /* A pending switch is canceled (it fails and changes nothing); then the
   * chain is final. */
  atomic_store(&g->cancel, 1);
  switch_settle(g);
  atomic_store(&g->cancel, 0);
  for (int i = 0; i < g->n; i++)
    dev_down(g, g->devs[i]);
  undrain(g);
  return 0;
}

int gg_guard_inject_faults(gg_guard *g, int idx, const char *faults) {
  if (!g || idx < 0 || !faults) return GG_EINVAL;
  chain c;
  enter(g, &c);
  gdev *d = idx < c.n ? c.d[idx] : NULL;
  int rc = d ? slot_acquire(g, d, g->cfg.queue_wait_ms) : GG_EINVAL;
  if (rc) {
    leave(g, &c);
    return rc;
  }
  char spec[128];
  gg__spec_set_faults(d->spec, faults, spec, sizeof spec);
  dev_down(g, d);
  pthread_mutex_lock(&g->mu);
  snprintf(d->spec, sizeof d->spec, "%s", spec);
  d->faults_armed = 1;
  pthread_mutex_unlock(&g->mu);
  GG_INFO("GPU", "injecting faults '%s' into %s: next worker start gets them", faults, spec);
  slot_release(g, d);
  leave(g, &c);
  return 0;
}

int gg_guard_tick(gg_guard *g) {
  if (!g) return 0;
  int closed = 0;
  chain c;
  enter(g, &c);
  for (int i = 0; i < c.n; i++) {
    gdev *d = c.d[i];
    pthread_mutex_lock(&g->mu);
    int due =
        d->br.state == GG_BREAKER_HALF_OPEN ||
        (d->br.state == GG_BREAKER_OPEN && gg__mono_ms() - d->br.opened_at >= d->br.cooldown_ms);
    pthread_mutex_unlock(&g->mu);
    if (!due || slot_acquire(g, d, 0)) continue;
    char err[256];
    closed += gate(g, d, err, sizeof err);
    slot_release(g, d);
  }
  leave(g, &c);
  return closed;
}

/* ---- state -------------------------------------------------------------- */

int gg_guard_device_count(const gg_guard *g) {
  return g ? __atomic_load_n(&g->n, __ATOMIC_ACQUIRE) : 0;
}

int gg_guard_device_status_get(gg_guard *g, int idx, gg_guard_device_status *st) {
  if (!g || !st) return GG_EINVAL;
  memset(st, 0, sizeof *st);
  pthread_mutex_lock(&g->mu);
  if (idx < 0 || idx >= g->n) {
    pthread_mutex_unlock(&g->mu);
    return GG_ERANGE;
  }
  gdev *d = g->devs[idx];
  snprintf(st->spec, sizeof st->spec, "%s", d->spec);
  snprintf(st->name, sizeof st->name, "%s", d->name);
  st->index = idx;
  int64_t now = gg__mono_ms();
  st->breaker = d->br.state;
  if (st->breaker == GG_BREAKER_OPEN && now - d->br.opened_at >= d->br.cooldown_ms)
    st->breaker = GG_BREAKER_OPEN; /* becomes half-open at the next request or tick */
  st->failures_in_window = gg__breaker_failures_in_window(&d->br, now);
  st->last_failure_unix_ms = d->br.last_failure_unix_ms;
  st->last_failure_error = d->br.last_err;
  snprintf(st->last_failure_reason, sizeof st->last_failure_reason, "%s", d->br.reason);
  st->isolated = d->ex.isolated; /* fixed at creation */
  st->worker_pid = d->snap_up ? d->snap_pid : 0;
  st->worker_restarts = d->restarts;
  st->served = d->served;
  st->budget = d->snap.budget;
  st->pool_allocated = d->snap_up ? d->snap.pool_allocated : 0;
  st->pool_reserved = d->snap_up ? d->snap.pool_reserved : 0;
  st->raw_in_use = d->snap_up ? d->snap.raw_in_use : 0;
  st->leaked_bytes = d->leaked + (d->snap_up ? d->snap.leaked_bytes : 0);
  st->raw_allocs = d->snap.raw_allocs;
  st->launches = d->snap.launches;
  st->faults_fired = d->snap.faults_fired;
  st->n_models = d->n_models;
  gg__spec_strip_faults(d->spec, st->effective_spec, sizeof st->effective_spec);
  st->faults_active =
      strcmp(st->effective_spec, d->spec) && (d->faults_armed || (d->snap_up && d->faults_live));
  if (st->faults_active) snprintf(st->effective_spec, sizeof st->effective_spec, "%s", d->spec);
  st->configured = d->conf_idx >= 0;
  pthread_mutex_unlock(&g->mu);
  return 0;
}

int gg_guard_gpu_failed(gg_guard *g) {
  if (!g) return 0;
  pthread_mutex_lock(&g->mu);
  int failed = g->devs[0]->br.state != GG_BREAKER_CLOSED;
  pthread_mutex_unlock(&g->mu);
  return failed;
}

int gg_guard_stats_get(gg_guard *g, gg_guard_stats *st) {
  if (!g || !st) return GG_EINVAL;
  pthread_mutex_lock(&g->mu);
  *st = g->st;
  pthread_mutex_unlock(&g->mu);
  return 0;
}
