/* The web pages (/webcam, /identities, /dashboard: web/<page>.html; docs/web.md)
 * and the memory history the dashboard plots: a sampler thread records the
 * process's resident memory and each device's pool bytes once a second into
 * a ring that GET /api/history serves. */
#include "gpuguard/core.h"
#include "gpuguard/log.h"
#include "server/app.h"
#include "server/http-impl.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* One sample a second for an hour. */
#define HISTORY_INTERVAL_MS 1000
#define HISTORY_CAP 3600
/* The configured chain plus a device switched to at run time. */
#define HISTORY_DEVS (GG_GUARD_MAX_DEVICES + 1)
/* Distinct device specs remembered; later ones share the last slot. */
#define HISTORY_SPECS 32

typedef struct history_dev {
  uint64_t allocated; /* pool bytes handed out */
  uint64_t reserved;  /* pool bytes held from the driver */
  uint16_t spec;      /* index into gg_app_history.specs */
  uint8_t breaker;    /* gg_breaker_state */
} history_dev;

typedef struct history_sample {
  int64_t t_ms;   /* Unix time, milliseconds */
  uint64_t rss;   /* resident set of the server, bytes */
  int8_t serving; /* chain index serving now, -1 none */
  uint8_t n_dev;
  history_dev dev[HISTORY_DEVS];
} history_sample;

struct gg_app_history {
  pthread_mutex_t mu; /* guards everything below */
  pthread_cond_t cv;  /* signalled by gg__app_pages_stop */
  pthread_t thread;
  int stop;
  history_sample *ring; /* HISTORY_CAP samples; the oldest at (head + cap - n) % cap */
  size_t head, n;
  char specs[HISTORY_SPECS][128];
  int n_specs;
};

static int64_t unix_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The index of spec in the table, added when new. Call with mu held. */
static uint16_t spec_index(struct gg_app_history *h, const char *spec) {
  for (int i = 0; i < h->n_specs; i++)
    if (!strcmp(h->specs[i], spec)) return (uint16_t)i;
  if (h->n_specs == HISTORY_SPECS) return HISTORY_SPECS - 1;
  char *dst = h->specs[h->n_specs];
  if (h->n_specs == HISTORY_SPECS - 1)
    snprintf(dst, sizeof h->specs[0], "(other devices)");
  else
    snprintf(dst, sizeof h->specs[0], "%.127s", spec);
  return (uint16_t)h->n_specs++;
}

static void history_record(gg_app *app, struct gg_app_history *h) {
  history_sample s;
  memset(&s, 0, sizeof s);
  gg_proc_mem pm;
  if (gg_proc_mem_read(&pm) == 0) s.rss = (uint64_t)(pm.rss_mb * 1024 * 1024);
  gg_guard_device_status st[HISTORY_DEVS];
  int n = gg_guard_device_count(app->guard);
  for (int i = 0; i < n && s.n_dev < HISTORY_DEVS; i++)
    if (gg_guard_device_status_get(app->guard, i, &st[s.n_dev]) == 0) s.n_dev++;
  gg_guard_device_status serving;
  s.serving = (int8_t)gg__app_serving_index(app, &serving);
  s.t_ms = unix_ms();
  pthread_mutex_lock(&h->mu);
  for (int i = 0; i < s.n_dev; i++)
    s.dev[i] = (history_dev){.allocated = st[i].pool_allocated,
                             .reserved = st[i].pool_reserved,
                             .spec = spec_index(h, st[i].spec),
                             .breaker = (uint8_t)st[i].breaker};
  h->ring[h->head] = s;
  h->head = (h->head + 1) % HISTORY_CAP;
  if (h->n < HISTORY_CAP) h->n++;
  pthread_mutex_unlock(&h->mu);
}

static void *history_main(void *arg) {
  gg_app *app = arg;
  struct gg_app_history *h = app->history;
  struct timespec next;
  clock_gettime(CLOCK_MONOTONIC, &next);
  for (;;) {
    history_record(app, h);
    next.tv_sec += HISTORY_INTERVAL_MS / 1000;
    next.tv_nsec += (long)(HISTORY_INTERVAL_MS % 1000) * 1000000L;
    if (next.tv_nsec >= 1000000000L) next.tv_sec++, next.tv_nsec -= 1000000000L;
    /* Fell behind (a stalled process, a suspended machine): no burst of
     * catch-up samples, just the next one an interval from now. */
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (now.tv_sec > next.tv_sec + 1) {
      next = now;
      next.tv_sec += HISTORY_INTERVAL_MS / 1000;
    }
    pthread_mutex_lock(&h->mu);
    int rc = 0;
    while (!h->stop && rc != ETIMEDOUT)
      rc = pthread_cond_timedwait(&h->cv, &h->mu, &next);
    int stop = h->stop;
    pthread_mutex_unlock(&h->mu);
    if (stop) return NULL;
  }
}

/* Starts the sampler; without it (out of memory, no thread) the server runs
 * and /api/history answers 503. */
static void history_start(gg_app *app) {
  struct gg_app_history *h = calloc(1, sizeof *h);
  if (h) h->ring = calloc(HISTORY_CAP, sizeof *h->ring);
  if (!h || !h->ring) {
    GG_WARN("HTTP", "%s: out of memory; the memory history is off", __func__);
    if (h) free(h);
    return;
  }
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&h->cv, &ca);
  pthread_condattr_destroy(&ca);
  pthread_mutex_init(&h->mu, NULL);
  app->history = h;
  if (pthread_create(&h->thread, NULL, history_main, app) != 0) {
    GG_WARN("HTTP", "%s: cannot start the sampler thread; the memory history is off", __func__);
    app->history = NULL;
    pthread_cond_destroy(&h->cv);
    pthread_mutex_destroy(&h->mu);
    free(h->ring);
    free(h);
  }
}

void gg__app_pages_stop(gg_app *app) {
  struct gg_app_history *h = app ? app->history : NULL;
  if (!h) return;
  pthread_mutex_lock(&h->mu);
  h->stop = 1;
  pthread_cond_signal(&h->cv);
  pthread_mutex_unlock(&h->mu);
  pthread_join(h->thread, NULL);
  app->history = NULL;
  pthread_cond_destroy(&h->cv);
  pthread_mutex_destroy(&h->mu);
  free(h->ring);
  free(h);
}

static const char *breaker_name(int b) {
  switch (b) {
  case GG_BREAKER_CLOSED: return "closed";
  case GG_BREAKER_OPEN: return "open";
  case GG_BREAKER_HALF_OPEN: return "half_open";
  default: return "unknown";
  }
}

/* GET /api/history[?since_ms=T]: the samples taken after T (Unix ms), oldest
 * first; all of the last hour without it. */
static void h_history(gg_server *srv, const gg_http_req *req, gg_http_resp *resp, void *user) {
  (void)srv;
  gg_app *app = user;
  struct gg_app_history *h = app->history;
  long long since = 0;
  const char *v = gg_http_query(req, "since_ms");
  if (v) {
    char *end = NULL;
    errno = 0;
    since = strtoll(v, &end, 10);
    if (!*v || *end || errno || since < 0) {
      gg_http_error_named(resp, 400, "bad_parameter",
                          "query parameter 'since_ms' must be a Unix time in milliseconds "
                          "(an integer >= 0), got '%.40s'",
                          v);
      return;
    }
  }
  if (!h) {
    gg_http_error(resp, 503,
                  "the memory history is off (its sampler could not start; see the "
                  "server log)");
    return;
  }
  json_t *a = json_array();
  pthread_mutex_lock(&h->mu);
  for (size_t k = 0; k < h->n; k++) {
    const history_sample *s = &h->ring[(h->head + HISTORY_CAP - h->n + k) % HISTORY_CAP];
    if (s->t_ms <= since) continue;
    json_t *devs = json_array();
    for (int i = 0; i < s->n_dev; i++)
      json_array_append_new(devs, json_pack("{s:s,s:I,s:I,s:s}", "spec", h->specs[s->dev[i].spec],
                                            "pool_allocated_bytes", (json_int_t)s->dev[i].allocated,
                                            "pool_reserved_bytes", (json_int_t)s->dev[i].reserved,
                                            "breaker", breaker_name(s->dev[i].breaker)));
    json_array_append_new(a,
                          json_pack("{s:I,s:I,s:i,s:o}", "t_ms", (json_int_t)s->t_ms, "rss_bytes",
                                    (json_int_t)s->rss, "serving", s->serving, "devices", devs));
  }
  pthread_mutex_unlock(&h->mu);
  gg_http_json(resp, 200,
               json_pack("{s:i,s:i,s:I,s:o}", "interval_ms", HISTORY_INTERVAL_MS, "capacity",
                         HISTORY_CAP, "now_ms", (json_int_t)unix_ms(), "samples", a));
}

/* GET /webcam, /identities, /dashboard: web/<name>.html, served with the
 * static pages' checks (no links, regular files only). */
static void h_page(gg_server *srv, const gg_http_req *req, gg_http_resp *resp, void *user) {
  (void)srv;
  char rel[64];
  snprintf(rel, sizeof rel, "%.40s.html", req->path + 1);
  gg__app_serve_file(user, rel, resp);
}

void gg__app_register_pages(gg_app *app) {
  static const char *const pages[] = {"/webcam", "/identities", "/dashboard", "/generate"};
  for (size_t i = 0; i < sizeof pages / sizeof pages[0]; i++)
    gg_server_add_route(app->srv, "GET", pages[i], h_page, app);
  gg_server_add_route(app->srv, "GET", "/api/history", h_history, app);
  history_start(app);
}
