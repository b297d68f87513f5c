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
} gdev_model;

typedef struct gdev {
  gg__exec ex;
  char spec[128]; /* as configured, faults included */
  char name[64];  /* "sim", "cpu" */
  int is_cpu;
  int up;           /* executor started and validated */
  int starts;       /* executor starts so far */
  int faults_armed; /* next start gets the spec's faults */
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

struct gg_guard {
  gg_guard_config cfg;
  char runner[32];
  char runner_arg[512];
  char exe[1024];
  pthread_mutex_t mu;
  pthread_cond_t cv; /* drain / switch */
  gdev *devs[GG_GUARD_MAX_DEVICES];
  int n;
  int inflight, switching;
  gg_guard_stats st;
  uint64_t rng;
  uint64_t use_clock;
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
  if (d->faults_armed) {
    snprintf(d->ex.spec, sizeof d->ex.spec, "%s", d->spec);
    d->ex.env_faults = 1;
  } else {
    gg__spec_strip_faults(d->spec, d->ex.spec, sizeof d->ex.spec);
    d->ex.env_faults = 0;
  }
  d->faults_armed = 0;
  gg_validation v;
  int rc = gg__exec_start(&d->ex, &v, err, errlen);
  pthread_mutex_lock(&g->mu);
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
  if (pm && pm->peak && pm->peak_ndim == in->ndim &&
      !memcmp(pm->peak_dims, in->dims, sizeof(int64_t) * (size_t)in->ndim)) {
    *peak = pm->peak;
  } else {
    int rc = gg__exec_peak(&d->ex, model, in, peak);
    if (rc) {
      snprintf(err, errlen, "planning %s on %s failed: %s", model, d->spec, gg_strerror(rc));
      *device_failed = 1; /* on_failure() tells a bad input from a device failure */
      return rc;
    }
    if (pm) {
      pthread_mutex_lock(&g->mu);
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
    uint64_t need = *peak > weights ? *peak - weights : 0;
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

static void enter(gg_guard *g) {
  pthread_mutex_lock(&g->mu);
  while (g->switching)
    pthread_cond_wait(&g->cv, &g->mu);
  g->inflight++;
  pthread_mutex_unlock(&g->mu);
}

static void leave(gg_guard *g) {
  pthread_mutex_lock(&g->mu);
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
  cond_init_mono(&g->cv);
  for (int i = 0; i < cfg->n_devices; i++) {
    const char *spec = cfg->devices[i];
    if (!spec || !*spec || strlen(spec) >= 128) {
      GG_ERROR("GPU", "guard: device %d of the chain is empty or too long", i);
      gg_guard_free(g);
      return GG_EINVAL;
    }
    gdev *d = calloc(1, sizeof *d);
    if (!d) {
      gg_guard_free(g);
      return GG_ENOMEM;
    }
    g->devs[g->n++] = d;
    snprintf(d->spec, sizeof d->spec, "%s", spec);
    snprintf(d->name, sizeof d->name, "%.*s", (int)strcspn(spec, ":"), spec);
    d->is_cpu = !strcmp(d->name, "cpu");
    d->faults_armed = 1;
    cond_init_mono(&d->cv);
    gg__breaker_init(&d->br, cfg->breaker_failures, cfg->breaker_window_ms,
                     cfg->breaker_cooldown_ms);
    gg__exec *e = &d->ex;
    e->isolated = cfg->isolate >= 2 || (cfg->isolate && !d->is_cpu);
    e->sock = e->shm = -1;
    e->exe = g->exe;
    e->watchdog_ms = g->cfg.watchdog_ms;
    e->load_timeout_ms = g->cfg.load_timeout_ms;
    snprintf(e->runner, sizeof e->runner, "%s", g->runner);
    snprintf(e->runner_arg, sizeof e->runner_arg, "%s", g->runner_arg);
    e->hcfg.spec = e->spec;
    e->hcfg.runner = e->runner;
    e->hcfg.runner_arg = e->runner_arg[0] ? e->runner_arg : NULL;
    e->hcfg.budget = d->is_cpu ? 0 : cfg->mem_budget;
    e->hcfg.cleanup_every = cfg->cleanup_every;
    /* Unknown device kinds are a configuration error, not a fault. */
    if (strcmp(d->name, "cpu") && strcmp(d->name, "sim") && strcmp(d->name, "cuda") &&
        strcmp(d->name, "opencl")) {
      GG_ERROR("GPU", "guard: unknown device '%s' (cpu, sim:..., cuda:N, opencl:P.D)", spec);
      gg_guard_free(g);
      return GG_ENODEV;
    }
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

void gg_guard_free(gg_guard *g) {
  if (!g) return;
  for (int i = 0; i < g->n; i++) {
    gdev *d = g->devs[i];
    dev_down(g, d);
    pthread_cond_destroy(&d->cv);
    free(d);
  }
  pthread_cond_destroy(&g->cv);
  pthread_mutex_destroy(&g->mu);
  free(g);
}

static int infer_or_load(gg_guard *g, const char *model, const gg_gtensor *input,
                         gg_guard_result *res) {
  char err[256] = "";
  int last = GG_ENODEV;
  for (int i = 0; i < g->n; i++) {
    gdev *d = g->devs[i];
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
  enter(g);
  int rc = infer_or_load(g, model, NULL, &res);
  leave(g);
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
  enter(g);
  rc = infer_or_load(g, model, input, res);
  leave(g);
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

static gdev *dev_new_like(gg_guard *g, const gdev *proto, const char *spec) {
  gdev *d = calloc(1, sizeof *d);
  if (!d) return NULL;
  snprintf(d->spec, sizeof d->spec, "%s", spec);
  snprintf(d->name, sizeof d->name, "%.*s", (int)strcspn(spec, ":"), spec);
  d->is_cpu = !strcmp(d->name, "cpu");
  d->faults_armed = 1;
  cond_init_mono(&d->cv);
  gg__breaker_init(&d->br, g->cfg.breaker_failures, g->cfg.breaker_window_ms,
                   g->cfg.breaker_cooldown_ms);
  d->ex = proto->ex;
  d->ex.host = NULL;
  d->ex.pid = 0;
  d->ex.sock = d->ex.shm = -1;
  d->ex.isolated = g->cfg.isolate >= 2 || (g->cfg.isolate && !d->is_cpu);
  d->ex.hcfg.spec = d->ex.spec;
  d->ex.hcfg.runner = d->ex.runner;
  d->ex.hcfg.runner_arg = d->ex.runner_arg[0] ? d->ex.runner_arg : NULL;
  d->ex.hcfg.budget = d->is_cpu ? 0 : g->cfg.mem_budget;
  memset(&d->ex.stats, 0, sizeof d->ex.stats);
  return d;
}

int gg_guard_switch_device(gg_guard *g, const char *spec) {
  if (!g || !spec || !*spec || strlen(spec) >= 128) return GG_EINVAL;
  char name[64];
  snprintf(name, sizeof name, "%.*s", (int)strcspn(spec, ":"), spec);
  if (strcmp(name, "cpu") && strcmp(name, "sim") && strcmp(name, "cuda") &&
      strcmp(name, "opencl")) {
    GG_ERROR("GPU", "switch: unknown device '%s'", spec);
    return GG_ENODEV;
  }
  drain(g);
  gdev *old = g->devs[0];
  GG_INFO("GPU", "switching primary device %s -> %s", old->spec, spec);
  /* 1. unload from the old device, free and trim it */
  gdev_model models[GG__MAX_MODELS];
  int n_models = old->n_models;
  memcpy(models, old->models, sizeof models);
  for (int i = 0; i < old->n_models && old->up; i++)
    gg__exec_unload(&old->ex, old->models[i].name);
  if (old->up) gg__exec_trim(&old->ex, NULL);
  old->n_models = 0;
  dev_down(g, old);
  /* 2. open the new one, load and warm every model (with the policy) */
  gdev *nd = dev_new_like(g, old, spec);
  int rc = nd ? 0 : GG_ENOMEM;
  char err[256] = "";
  for (int i = 0; rc == 0 && i < (n_models ? n_models : 1); i++) {
    if (!n_models) {
      rc = dev_start(g, nd, err, sizeof err);
      break;
    }
    int rejected = 0;
    rc = dev_prepare(g, nd, models[i].name, err, sizeof err, &rejected, NULL);
    if (rc == 0) continue;
    /* one more try on a fresh context (a sticky fault, a hang) */
    if (!nd->up && !rejected && nd->br.state != GG_BREAKER_OPEN)
      rc = dev_prepare(g, nd, models[i].name, err, sizeof err, &rejected, NULL);
  }
  pthread_mutex_lock(&g->mu);
  g->st.device_switches++;
  pthread_mutex_unlock(&g->mu);
  if (rc) {
    /* 3. roll back: the old device gets its models back */
    GG_ERROR("GPU", "switch to %s failed (%s: %s); rolling back to %s", spec, gg_err_name(rc), err,
             old->spec);
    if (nd) {
      dev_down(g, nd);
      pthread_mutex_lock(&g->mu);
      g->st.leaked_bytes += 0;
      pthread_mutex_unlock(&g->mu);
      pthread_cond_destroy(&nd->cv);
      free(nd);
    }
    for (int i = 0; i < n_models; i++) {
      int rejected = 0;
      char e2[256];
      if (dev_prepare(g, old, models[i].name, e2, sizeof e2, &rejected, NULL))
        GG_ERROR("GPU", "rollback: reloading %s on %s failed: %s", models[i].name, old->spec, e2);
    }
    pthread_mutex_lock(&g->mu);
    g->st.switch_rollbacks++;
    pthread_mutex_unlock(&g->mu);
    undrain(g);
    return rc;
  }
  /* 4. new chain: the new device, then the old chain without duplicates */
  pthread_mutex_lock(&g->mu);
  gdev *chain[GG_GUARD_MAX_DEVICES + 1];
  int n = 0;
  chain[n++] = nd;
  gdev *dropped[GG_GUARD_MAX_DEVICES + 1];
  int nd_ = 0;
  for (int i = 0; i < g->n; i++) {
    gdev *d = g->devs[i];
    if (!strcmp(d->spec, spec) || n == GG_GUARD_MAX_DEVICES)
      dropped[nd_++] = d;
    else
      chain[n++] = d;
  }
  memcpy(g->devs, chain, sizeof(gdev *) * (size_t)n);
  g->n = n;
  pthread_mutex_unlock(&g->mu);
  for (int i = 0; i < nd_; i++) {
    dev_down(g, dropped[i]);
    pthread_cond_destroy(&dropped[i]->cv);
    free(dropped[i]);
  }
  GG_INFO("GPU", "now on %s (%d model%s loaded)", spec, nd->n_models, nd->n_models == 1 ? "" : "s");
  undrain(g);
  return 0;
}

int gg_guard_shutdown(gg_guard *g) {
  if (!g) return GG_EINVAL;
  drain(g);
  for (int i = 0; i < g->n; i++)
    dev_down(g, g->devs[i]);
  undrain(g);
  return 0;
}

int gg_guard_inject_faults(gg_guard *g, int idx, const char *faults) {
  if (!g || idx < 0 || idx >= g->n || !faults) return GG_EINVAL;
  enter(g);
  gdev *d = g->devs[idx];
  int rc = slot_acquire(g, d, g->cfg.queue_wait_ms);
  if (rc) {
    leave(g);
    return rc;
  }
  char spec[128];
  gg__spec_set_faults(d->spec, faults, spec, sizeof spec);
  snprintf(d->spec, sizeof d->spec, "%s", spec);
  dev_down(g, d);
  d->faults_armed = 1;
  GG_INFO("GPU", "injecting faults '%s' into %s: next worker start gets them", faults, d->spec);
  slot_release(g, d);
  leave(g);
  return 0;
}

int gg_guard_tick(gg_guard *g) {
  if (!g) return 0;
  int closed = 0;
  enter(g);
  for (int i = 0; i < g->n; i++) {
    gdev *d = g->devs[i];
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
  leave(g);
  return closed;
}

/* ---- state -------------------------------------------------------------- */

int gg_guard_device_count(const gg_guard *g) {
  return g ? g->n : 0;
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
