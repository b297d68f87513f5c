/* The generation API (issue 15): POST /api/generate queues an ESRGAN
 * upscale, one worker thread runs the queue through the guard one
 * generation at a time, GET /api/progress/:id streams its progress as
 * Server-Sent Events, POST /api/stop/:id cancels it between tiles, and the
 * result is served as a PNG. docs/generate.md describes the routes. */
#include "gpuguard/core.h"
#include "gpuguard/error.h"
#include "gpuguard/image.h"
#include "gpuguard/log.h"
#include "gpuguard/upscale.h"
#include "server/app.h"
#include "server/http-impl.h"
#include "server/multipart.h"

#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef GG_HAVE_PNG
#include <png.h>
#endif

#define GEN_MAX_OUTPUT 8192 /* output width and height at most */
#define GEN_MAX_INPUT_PIXELS (4096u * 4096u)
#define GEN_QUEUE_MAX 8     /* queued (not yet running) generations */
#define GEN_KEEP 16         /* finished generations kept in memory */
#define GEN_RETRY_AFTER_S 5 /* what a 429 says */
#define GEN_JSON_MAX_BYTES (24u << 20)
#define GEN_DEFAULT_MODEL "esrgan-slim"
#define GEN_DEFAULT_SCALE 4

static const char *const k_models[] = {"esrgan-slim", "esrgan-medium", "esrgan-thick"};
static const int k_scales[] = {2, 3, 4, 8};

typedef enum gen_status { GEN_QUEUED, GEN_RUNNING, GEN_DONE, GEN_STOPPED, GEN_FAILED } gen_status;
static const char *const k_status[] = {"queued", "running", "done", "stopped", "error"};

typedef struct gen_sub gen_sub;

/* One generation. Fields after `lock`-guarded ones are written by the
 * worker and read under the module lock. */
typedef struct gen {
  int refs; /* the module's list, each subscriber, the worker while it runs */
  int64_t seq;
  char id[32];
  char model[32];
  int scale, tile;
  int in_w, in_h, out_w, out_h;
  gen_status status;
  int stop_requested;
  uint8_t *rgb;       /* the input until it runs */
  gg_generator *gen;  /* while running (cancel target) */
  int current, total; /* steps done, steps in all (0 until planned) */
  unsigned char *png; /* the result once done */
  size_t png_len;
  json_t *info;   /* tile, tiles, timings once planned/done */
  int err_status; /* HTTP status of the error, 0 none */
  char err_name[48];
  char err_msg[300];
  uint64_t created_ns, started_ns, finished_ns;
  int64_t created_ms; /* Unix time */
  gen_sub *subs;      /* SSE readers */
  struct gen *next;   /* the module's list (newest first) */
  struct gen *qnext;  /* the queue */
} gen;

/* One SSE reader of a generation. */
struct gen_sub {
  struct gg_app_generate *m;
  gen *g;
  gg_http_stream *stream;
  int sent_connected, sent_step, sent_final, sent_done;
  char pend[2048];
  size_t pend_len, pend_off;
  gen_sub *next;
};

typedef struct gg_app_generate {
  gg_app *app;
  pthread_mutex_t lock;
  pthread_cond_t cond;
  pthread_t worker;
  int worker_started, stopping;
  int64_t next_seq;
  gen *all;           /* every generation kept, newest first */
  gen *qhead, *qtail; /* queued */
  int queued, finished;
} gg_app_generate;

/* ---- generations --------------------------------------------------------- */

/* Frees g's memory; call with the last reference gone. */
static void gen_destroy(gen *g) {
  free(g->rgb);
  gg_generator_free(g->gen);
  free(g->png);
  json_decref(g->info);
  free(g);
}

/* Drops a reference; the module lock is held. */
static void gen_unref(gen *g) {
  if (--g->refs == 0) gen_destroy(g);
}

static void gen_wake_subs(gen *g) {
  for (gen_sub *s = g->subs; s; s = s->next)
    gg_http_stream_wake(s->stream);
}

static gen *gen_find(gg_app_generate *m, const char *id) {
  for (gen *g = m->all; id && g; g = g->next)
    if (!strcmp(g->id, id)) return g;
  return NULL;
}

/* The generation the route's :id names, with m->lock held; NULL (lock
 * released, 404 written) when there is none. */
static gen *gen_lock_find(gg_app_generate *m, const gg_http_req *req, gg_http_resp *resp) {
  const char *id = gg_http_param(req, "id");
  pthread_mutex_lock(&m->lock);
  gen *g = gen_find(m, id);
  if (!g) {
    pthread_mutex_unlock(&m->lock);
    gg_http_error(resp, 404, "no generation '%.40s' (finished ones are kept %d at most)",
                  id ? id : "", GEN_KEEP);
  }
  return g;
}

/* Keeps the last GEN_KEEP finished generations; older ones leave the list
 * (freed when no SSE reader holds them). Lock held. */
static void gen_evict(gg_app_generate *m) {
  int seen = 0;
  for (gen **pp = &m->all; *pp;) {
    gen *g = *pp;
    if (g->status >= GEN_DONE && ++seen > GEN_KEEP) {
      *pp = g->next;
      m->finished--;
      gen_unref(g);
      continue;
    }
    pp = &g->next;
  }
}

/* Marks g finished with status st (lock held) and wakes its readers. */
static void gen_finish(gg_app_generate *m, gen *g, gen_status st) {
  g->status = st;
  g->finished_ns = gg_now_ns();
  free(g->rgb);
  g->rgb = NULL;
  m->finished++;
  gen_wake_subs(g);
  gen_evict(m);
}

static void gen_set_error(gen *g, int status, const char *name, const char *msg) {
  g->err_status = status;
  snprintf(g->err_name, sizeof g->err_name, "%s", name);
  snprintf(g->err_msg, sizeof g->err_msg, "%s", msg);
}

static double ms_between(uint64_t a, uint64_t b) {
  return a && b && b >= a ? (double)(b - a) / 1e6 : 0;
}

/* The status JSON of g (lock held). */
static json_t *gen_json(const gen *g) {
  json_t *j = json_pack("{s:s,s:s,s:s,s:i,s:{s:i,s:i},s:{s:i,s:i},s:I}", "id", g->id, "status",
                        k_status[g->status], "model", g->model, "scale", g->scale, "input", "w",
                        g->in_w, "h", g->in_h, "output", "w", g->out_w, "h", g->out_h, "created_ms",
                        (json_int_t)g->created_ms);
  if (!j) return NULL;
  if (g->tile) json_object_set_new(j, "tile_requested", json_integer(g->tile));
  json_object_set_new(j, "current_step", json_integer(g->current));
  json_object_set_new(j, "total_steps", json_integer(g->total));
  uint64_t now = gg_now_ns();
  json_object_set_new(j, "queued_ms",
                      json_real(ms_between(g->created_ns, g->started_ns ? g->started_ns : now)));
  if (g->started_ns)
    json_object_set_new(
        j, "run_ms", json_real(ms_between(g->started_ns, g->finished_ns ? g->finished_ns : now)));
  if (g->info) json_object_set(j, "info", g->info);
  if (g->status == GEN_DONE) {
    char url[96];
    snprintf(url, sizeof url, "/api/generate/%s/image", g->id);
    json_object_set_new(j, "image", json_string(url));
    json_object_set_new(j, "png_bytes", json_integer((json_int_t)g->png_len));
  }
  if (g->err_status)
    json_object_set_new(j, "error",
                        json_pack("{s:i,s:s,s:s}", "code", g->err_status, "name", g->err_name,
                                  "message", g->err_msg));
  return j;
}

/* ---- PNG ----------------------------------------------------------------- */

/* Encodes w x h RGB into a malloc'd PNG. 0, GG_ENOTIMPL without libpng,
 * GG_ENOMEM. */
static int png_encode(const uint8_t *rgb, int w, int h, unsigned char **out, size_t *len) {
#ifdef GG_HAVE_PNG
  png_image im;
  memset(&im, 0, sizeof im);
  im.version = PNG_IMAGE_VERSION;
  im.width = (png_uint_32)w;
  im.height = (png_uint_32)h;
  im.format = PNG_FORMAT_RGB;
  png_alloc_size_t n = 0;
  if (!png_image_write_to_memory(&im, NULL, &n, 0, rgb, 0, NULL) || !n) {
    png_image_free(&im);
    return GG_ENOMEM;
  }
  unsigned char *p = malloc(n);
  if (!p) return GG_ENOMEM;
  memset(&im, 0, sizeof im);
  im.version = PNG_IMAGE_VERSION;
  im.width = (png_uint_32)w;
  im.height = (png_uint_32)h;
  im.format = PNG_FORMAT_RGB;
  if (!png_image_write_to_memory(&im, p, &n, 0, rgb, 0, NULL)) {
    png_image_free(&im);
    free(p);
    return GG_ENOMEM;
  }
  *out = p;
  *len = n;
  return 0;
#else
  (void)rgb, (void)w, (void)h, (void)out, (void)len;
  return GG_ENOTIMPL;
#endif
}

/* ---- the worker ------------------------------------------------------------ */

typedef struct run_ctx {
  gg_app_generate *m;
  gen *g;
} run_ctx;

static void on_progress(void *user, int step, int total) {
  run_ctx *c = user;
  pthread_mutex_lock(&c->m->lock);
  c->g->current = step;
  c->g->total = total;
  gen_wake_subs(c->g);
  pthread_mutex_unlock(&c->m->lock);
}

static json_t *info_json(const gg_upscale_info *in) {
  return json_pack("{s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:s,s:s,s:{s:f,s:f,s:f,s:f,s:f}}", "tile",
                   in->tile, "overlap", in->overlap, "tiles", in->tiles, "tiles_x", in->tiles_x,
                   "tiles_y", in->tiles_y, "halvings", in->halvings, "smallest_tile",
                   in->smallest_tile, "runs", in->runs, "device", in->device, "served_by",
                   in->served_by, "timings", "plan_ms", in->plan_ms, "total_ms", in->total_ms,
                   "step_ms_min", in->step_ms_min, "step_ms_max", in->step_ms_max, "step_ms_mean",
                   in->step_ms_mean);
}

/* Runs one generation start to end (called without the lock). */
static void run_one(gg_app_generate *m, gen *g) {
  char err[300] = "";
  pthread_mutex_lock(&m->lock);
  uint8_t *rgb = g->rgb;
  g->rgb = NULL;
  gg_upscale_opts o = {
      .model = g->model, .scale = g->scale, .tile = g->tile, .max_output = GEN_MAX_OUTPUT};
  int w = g->in_w, h = g->in_h;
  pthread_mutex_unlock(&m->lock);

  gg_generator *gn = NULL;
  int rc = gg_upscale_new(m->app->guard, &o, rgb, w, h, &gn, err, sizeof err);
  free(rgb);
  gg_upscale_info info;
  pthread_mutex_lock(&m->lock);
  if (!rc) {
    g->gen = gn;
    g->total = gg_generator_total_steps(gn);
    if (gg_upscale_info_get(gn, &info) == 0) {
      json_decref(g->info);
      g->info = info_json(&info);
    }
    if (g->stop_requested) gg_generator_cancel(gn);
  }
  pthread_mutex_unlock(&m->lock);

  if (!rc) {
    run_ctx c = {m, g};
    rc = gg_generator_run(gn, on_progress, &c, err, sizeof err);
  }
  unsigned char *png = NULL;
  size_t png_len = 0;
  json_t *ij = NULL;
  if (gn && gg_upscale_info_get(gn, &info) == 0) ij = info_json(&info);
  if (!rc) {
    gg_gen_image im;
    rc = gg_generator_image(gn, &im);
    if (!rc) rc = png_encode(im.rgb, im.width, im.height, &png, &png_len);
    if (rc)
      snprintf(err, sizeof err, "the finished image could not be encoded as PNG: %s",
               gg_strerror(rc));
  }
  pthread_mutex_lock(&m->lock);
  g->gen = NULL;
  pthread_mutex_unlock(&m->lock);
  gg_generator_free(gn); /* outside the lock: frees the result image */
  atomic_fetch_add(&m->app->generation_count, 1);

  pthread_mutex_lock(&m->lock);
  if (ij) {
    json_decref(g->info);
    g->info = ij;
  }
  if (!rc) {
    g->png = png;
    g->png_len = png_len;
    gen_finish(m, g, GEN_DONE);
  } else if (rc == GG_ECANCELED) {
    gen_set_error(g, 409, "stopped", err[0] ? err : "the generation was stopped");
    gen_finish(m, g, GEN_STOPPED);
  } else {
    char msg[300];
    snprintf(msg, sizeof msg, "%s", err[0] ? err : gg_strerror(rc));
    gen_set_error(g, gg_http_status_for(rc), gg_err_name(rc), msg);
    gen_finish(m, g, GEN_FAILED);
  }
  GG_INFO("HTTP", "generation %s %s x%d %dx%d: %s in %.0f ms", g->id, g->model, g->scale, g->in_w,
          g->in_h, k_status[g->status], ms_between(g->started_ns, g->finished_ns));
  pthread_mutex_unlock(&m->lock);
}

static void *worker_main(void *arg) {
  gg_app_generate *m = arg;
  pthread_mutex_lock(&m->lock);
  for (;;) {
    while (!m->stopping && !m->qhead)
      pthread_cond_wait(&m->cond, &m->lock);
    if (m->stopping) break;
    gen *g = m->qhead;
    m->qhead = g->qnext;
    if (!m->qhead) m->qtail = NULL;
    g->qnext = NULL;
    m->queued--;
    g->status = GEN_RUNNING;
    g->started_ns = gg_now_ns();
    g->refs++;
    gen_wake_subs(g);
    pthread_mutex_unlock(&m->lock);
    run_one(m, g);
    pthread_mutex_lock(&m->lock);
    gen_unref(g);
  }
  pthread_mutex_unlock(&m->lock);
  return NULL;
}

/* ---- SSE ------------------------------------------------------------------- */

/* Formats the next event of s into s->pend (lock held). 1 when one was
 * made, 0 when there is none yet, -1 when the stream is over. */
static int sub_next_event(gen_sub *s) {
  gen *g = s->g;
  json_t *d = NULL;
  const char *ev = NULL;
  if (!s->sent_connected) {
    ev = "connected";
    d = json_pack("{s:s,s:s,s:s,s:i}", "id", g->id, "status", k_status[g->status], "model",
                  g->model, "scale", g->scale);
    s->sent_connected = 1;
  } else if (s->sent_step < g->current) {
    ev = "progress";
    s->sent_step++;
    int total = g->total ? g->total : s->sent_step;
    d = json_pack("{s:i,s:i,s:f}", "current_step", s->sent_step, "total_steps", total, "percentage",
                  100.0 * s->sent_step / total);
  } else if (g->status >= GEN_DONE && !s->sent_final) {
    s->sent_final = 1;
    if (g->status == GEN_DONE) {
      ev = "complete";
      d = gen_json(g);
    } else {
      ev = "error";
      d = json_pack("{s:s,s:s,s:{s:i,s:s,s:s}}", "id", g->id, "status", k_status[g->status],
                    "error", "code", g->err_status, "name", g->err_name, "message", g->err_msg);
    }
  } else if (s->sent_final && !s->sent_done) {
    s->sent_done = 1;
    ev = "done";
    d = json_pack("{s:s,s:s}", "id", g->id, "status", k_status[g->status]);
  } else {
    return s->sent_done ? -1 : 0;
  }
  char *txt = d ? json_dumps(d, JSON_COMPACT | JSON_REAL_PRECISION(6)) : NULL;
  json_decref(d);
  int n = snprintf(s->pend, sizeof s->pend, "event: %s\ndata: %s\n\n", ev, txt ? txt : "{}");
  free(txt);
  if (n < 0 || (size_t)n >= sizeof s->pend) n = (int)strlen(s->pend);
  s->pend_len = (size_t)n;
  s->pend_off = 0;
  return 1;
}

static long sub_read(void *user, char *buf, size_t max) {
  gen_sub *s = user;
  pthread_mutex_lock(&s->m->lock);
  size_t out = 0;
  int over = 0;
  while (out < max) {
    if (s->pend_off == s->pend_len) {
      int r = sub_next_event(s);
      if (r <= 0) {
        over = r < 0;
        break;
      }
    }
    size_t take = s->pend_len - s->pend_off;
    if (take > max - out) take = max - out;
    memcpy(buf + out, s->pend + s->pend_off, take);
    s->pend_off += take;
    out += take;
  }
  pthread_mutex_unlock(&s->m->lock);
  if (out) return (long)out;
  return over ? -1 : 0;
}

static void sub_close(void *user) {
  gen_sub *s = user;
  gg_app_generate *m = s->m;
  pthread_mutex_lock(&m->lock);
  for (gen_sub **pp = &s->g->subs; *pp; pp = &(*pp)->next)
    if (*pp == s) {
      *pp = s->next;
      break;
    }
  gen_unref(s->g);
  pthread_mutex_unlock(&m->lock);
  free(s);
}

/* ---- routes ---------------------------------------------------------------- */

static int known_model(const char *s) {
  for (size_t i = 0; s && i < sizeof k_models / sizeof k_models[0]; i++)
    if (!strcmp(s, k_models[i])) return 1;
  return 0;
}

static int known_scale(int x) {
  for (size_t i = 0; i < sizeof k_scales / sizeof k_scales[0]; i++)
    if (x == k_scales[i]) return 1;
  return 0;
}

/* Parses a decimal integer field; -1 when it is not one. */
static int parse_int(const char *s, size_t n, int *out) {
  char tmp[16];
  if (n == 0 || n >= sizeof tmp) return -1;
  memcpy(tmp, s, n);
  tmp[n] = 0;
  char *end = NULL;
  long v = strtol(tmp, &end, 10);
  if (*end || v < -1000000 || v > 1000000) return -1;
  *out = (int)v;
  return 0;
}

typedef struct gen_params {
  char model[32];
  int scale, tile;
  unsigned char *bytes; /* the encoded image (owned when owned = 1) */
  const void *data;
  size_t len;
} gen_params;

/* Reads the request's fields (multipart or JSON). 0, or -1 with resp set. */
static int read_params(const gg_http_req *req, gg_http_resp *resp, gen_params *p) {
  snprintf(p->model, sizeof p->model, "%s", GEN_DEFAULT_MODEL);
  p->scale = GEN_DEFAULT_SCALE;
  p->tile = 0;
  const char *ct = gg_http_header(req, "Content-Type");
  char err[200] = "";
  if (gg__multipart_is_form(ct)) {
    const void *d;
    size_t n;
    int rc = gg__multipart_find(req->body, req->body_len, ct, "image", 0, &p->data, &p->len, err,
                                sizeof err);
    if (rc == GG_ENOTFOUND) {
      gg_http_error_named(resp, 400, "missing_image",
                          "the form has no 'image' field: send the picture as the multipart "
                          "field 'image'");
      return -1;
    }
    if (rc) {
      gg_http_error_named(resp, 400, "bad_multipart", "the multipart body is malformed: %s", err);
      return -1;
    }
    if (gg__multipart_find(req->body, req->body_len, ct, "model", 64, &d, &n, err, sizeof err) ==
        0) {
      if (n >= sizeof p->model) n = sizeof p->model - 1;
      memcpy(p->model, d, n);
      p->model[n] = 0;
    }
    static const char *const ints[] = {"scale", "tile"};
    int *dst[] = {&p->scale, &p->tile};
    for (int i = 0; i < 2; i++) {
      if (gg__multipart_find(req->body, req->body_len, ct, ints[i], 32, &d, &n, err, sizeof err))
        continue;
      if (parse_int(d, n, dst[i])) {
        gg_http_error_named(resp, 400, "bad_parameter", "field '%s' must be an integer, got '%.*s'",
                            ints[i], (int)(n > 20 ? 20 : n), (const char *)d);
        return -1;
      }
    }
    return 0;
  }
  if (!gg__http_is_json_type(ct)) {
    gg_http_error_named(resp, 415, "unsupported_media_type",
                        "POST /api/generate takes multipart/form-data (fields image, model, "
                        "scale) or application/json ({\"image\": base64, \"model\", \"scale\"})");
    return -1;
  }
  json_t *j = NULL;
  if (gg_http_read_json(req, resp, GEN_JSON_MAX_BYTES, (void **)&j)) return -1;
  json_t *im = json_object_get(j, "image"), *mo = json_object_get(j, "model");
  json_t *sc = json_object_get(j, "scale"), *ti = json_object_get(j, "tile");
  int bad = 0;
  if (mo && !json_is_string(mo)) bad = 1;
  if ((sc && !json_is_integer(sc)) || (ti && !json_is_integer(ti))) bad = 1;
  if (bad) {
    json_decref(j);
    gg_http_error_named(resp, 400, "bad_parameter",
                        "'model' must be a string, 'scale' and 'tile' integers");
    return -1;
  }
  if (!json_is_string(im)) {
    json_decref(j);
    gg_http_error_named(resp, 400, "missing_image",
                        "the JSON body has no 'image' string: send the picture base64-encoded");
    return -1;
  }
  if (mo) snprintf(p->model, sizeof p->model, "%s", json_string_value(mo));
  if (sc) p->scale = (int)json_integer_value(sc);
  if (ti) p->tile = (int)json_integer_value(ti);
  int rc = gg_base64_decode(json_string_value(im), GG_IMAGE_MAX_BYTES, &p->bytes, &p->len, err,
                            sizeof err);
  json_decref(j);
  if (rc) {
    gg_http_error_named(resp, rc == GG_ETOO_LARGE ? 413 : 400, "bad_image",
                        "'image' is not valid base64: %s", err);
    return -1;
  }
  p->data = p->bytes;
  return 0;
}

static void h_generate(gg_server *srv, const gg_http_req *req, gg_http_resp *resp, void *user) {
  (void)srv;
  gg_app_generate *m = user;
  gen_params p;
  memset(&p, 0, sizeof p);
  if (read_params(req, resp, &p)) return;
  if (!known_model(p.model)) {
    free(p.bytes);
    gg_http_error_named(resp, 400, "unknown_model",
                        "unknown model '%s'; use esrgan-slim, esrgan-medium or esrgan-thick",
                        p.model);
    return;
  }
  if (!known_scale(p.scale)) {
    free(p.bytes);
    gg_http_error_named(resp, 400, "bad_scale", "scale %d is not offered; use 2, 3, 4 or 8",
                        p.scale);
    return;
  }
  if (p.tile && (p.tile < 16 || p.tile > 1024)) {
    free(p.bytes);
    gg_http_error_named(resp, 400, "bad_tile",
                        "tile %d is out of range: 16 to 1024 input pixels, or 0 to let the "
                        "server choose",
                        p.tile);
    return;
  }
  char err[300];
  if (gg_upscale_model_path(p.model, p.scale, err, sizeof err, NULL, err, sizeof err) ==
      GG_ENOTFOUND) {
    free(p.bytes);
    gg_http_error_named(resp, 503, "model_not_fetched",
                        "model %s x%d is not in the model cache: run scripts/fetch-models.sh",
                        p.model, p.scale);
    return;
  }
  if (p.len == 0) {
    free(p.bytes);
    gg_http_error_named(resp, 400, "missing_image", "the image is empty");
    return;
  }
  uint64_t max_px = m->app->max_pixels && m->app->max_pixels < GEN_MAX_INPUT_PIXELS
                        ? m->app->max_pixels
                        : GEN_MAX_INPUT_PIXELS;
  gg_image img = {0};
  int rc = gg_image_decode(p.data, p.len, max_px, &img, err, sizeof err);
  free(p.bytes);
  if (rc == GG_ETOO_LARGE) {
    gg_http_error_named(resp, 413, "image_too_large",
                        "%s (the generation input limit is %" PRIu64 " pixels)", err, max_px);
    return;
  }
  if (rc) {
    gg_http_error_named(resp, 400, "bad_image", "the image cannot be decoded: %s", err);
    return;
  }
  int64_t ow = (int64_t)img.width * p.scale, oh = (int64_t)img.height * p.scale;
  if (ow > GEN_MAX_OUTPUT || oh > GEN_MAX_OUTPUT) {
    gg_http_error_named(resp, 413, "output_too_large",
                        "%dx%d at x%d would be %" PRId64 "x%" PRId64
                        ", more than the %dx%d output limit; send a smaller image or a "
                        "smaller scale",
                        img.width, img.height, p.scale, ow, oh, GEN_MAX_OUTPUT, GEN_MAX_OUTPUT);
    gg_image_free(&img);
    return;
  }
  gen *g = calloc(1, sizeof *g);
  if (!g) {
    gg_image_free(&img);
    gg_http_error(resp, 503, "out of memory");
    return;
  }
  snprintf(g->model, sizeof g->model, "%s", p.model);
  g->scale = p.scale;
  g->tile = p.tile;
  g->in_w = img.width;
  g->in_h = img.height;
  g->out_w = (int)ow;
  g->out_h = (int)oh;
  g->rgb = img.rgb;
  g->created_ns = gg_now_ns();
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  g->created_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
  g->refs = 1;

  pthread_mutex_lock(&m->lock);
  if (m->queued >= GEN_QUEUE_MAX || m->stopping) {
    int q = m->queued;
    pthread_mutex_unlock(&m->lock);
    free(g->rgb);
    free(g);
    gg_http_error_named(resp, 429, "queue_full",
                        "%d generations are already queued (at most %d); retry in %d s", q,
                        GEN_QUEUE_MAX, GEN_RETRY_AFTER_S);
    resp->retry_after_s = GEN_RETRY_AFTER_S;
    return;
  }
  g->seq = ++m->next_seq;
  snprintf(g->id, sizeof g->id, "g%" PRId64 "-%04x", g->seq,
           (unsigned)((g->created_ns / 1000) & 0xffff));
  g->next = m->all;
  m->all = g;
  if (m->qtail)
    m->qtail->qnext = g;
  else
    m->qhead = g;
  m->qtail = g;
  m->queued++;
  json_t *j = json_pack("{s:s,s:s,s:i,s:{s:i,s:i},s:{s:i,s:i},s:s,s:s}", "id", g->id, "model",
                        g->model, "scale", g->scale, "input", "w", g->in_w, "h", g->in_h, "output",
                        "w", g->out_w, "h", g->out_h, "status", "queued", "progress", "");
  char url[96];
  snprintf(url, sizeof url, "/api/progress/%s", g->id);
  if (j) json_object_set_new(j, "progress", json_string(url));
  pthread_cond_signal(&m->cond);
  pthread_mutex_unlock(&m->lock);
  gg_http_json(resp, 202, j);
}

static void h_progress(gg_server *srv, const gg_http_req *req, gg_http_resp *resp, void *user) {
  (void)srv;
  gg_app_generate *m = user;
  gen *g = gen_lock_find(m, req, resp);
  if (!g) return;
  gen_sub *s = calloc(1, sizeof *s);
  if (!s) {
    pthread_mutex_unlock(&m->lock);
    gg_http_error(resp, 503, "out of memory");
    return;
  }
  s->m = m;
  s->g = g;
  g->refs++;
  /* Linked before the stream exists: a wake before then is a no-op, and
   * the first read sends everything that happened so far. */
  s->next = g->subs;
  g->subs = s;
  pthread_mutex_unlock(&m->lock);
  gg_http_stream *st = NULL;
  if (gg_http_stream_begin(resp, "text/event-stream", sub_read, sub_close, s, &st)) return;
  pthread_mutex_lock(&m->lock);
  s->stream = st;
  pthread_mutex_unlock(&m->lock);
}

static void h_stop(gg_server *srv, const gg_http_req *req, gg_http_resp *resp, void *user) {
  (void)srv;
  gg_app_generate *m = user;
  gen *g = gen_lock_find(m, req, resp);
  if (!g) return;
  if (g->status >= GEN_DONE) {
    const char *st = k_status[g->status];
    pthread_mutex_unlock(&m->lock);
    gg_http_error_named(resp, 409, "already_finished", "generation %.40s has already ended (%s)",
                        gg_http_param(req, "id"), st);
    return;
  }
  g->stop_requested = 1;
  if (g->status == GEN_QUEUED) {
    for (gen **pp = &m->qhead; *pp; pp = &(*pp)->qnext)
      if (*pp == g) {
        *pp = g->qnext;
        break;
      }
    m->qtail = NULL;
    for (gen *q = m->qhead; q; q = q->qnext)
      m->qtail = q;
    m->queued--;
    gen_set_error(g, 409, "stopped", "the generation was stopped before it started");
    gen_finish(m, g, GEN_STOPPED);
  } else if (g->gen) {
    gg_generator_cancel(g->gen);
  }
  json_t *j = json_pack("{s:s,s:s}", "id", g->id, "status",
                        g->status == GEN_STOPPED ? "stopped" : "stopping");
  pthread_mutex_unlock(&m->lock);
  gg_http_json(resp, 202, j);
}

static void h_status(gg_server *srv, const gg_http_req *req, gg_http_resp *resp, void *user) {
  (void)srv;
  gg_app_generate *m = user;
  gen *g = gen_lock_find(m, req, resp);
  if (!g) return;
  json_t *j = gen_json(g);
  pthread_mutex_unlock(&m->lock);
  gg_http_json(resp, 200, j);
}

static void h_image(gg_server *srv, const gg_http_req *req, gg_http_resp *resp, void *user) {
  (void)srv;
  gg_app_generate *m = user;
  gen *g = gen_lock_find(m, req, resp);
  if (!g) return;
  if (g->status != GEN_DONE || !g->png) {
    const char *st = k_status[g->status];
    pthread_mutex_unlock(&m->lock);
    gg_http_error_named(resp, 409, "not_done",
                        "generation %.40s is %s: the image exists once it is done",
                        gg_http_param(req, "id"), st);
    return;
  }
  char *copy = malloc(g->png_len);
  if (copy) memcpy(copy, g->png, g->png_len);
  size_t n = g->png_len;
  pthread_mutex_unlock(&m->lock);
  if (!copy) {
    gg_http_error(resp, 503, "out of memory copying the image");
    return;
  }
  free(resp->body);
  resp->status = 200;
  resp->content_type = "image/png";
  resp->body = copy;
  resp->body_len = n;
}

static void h_config(gg_server *srv, const gg_http_req *req, gg_http_resp *resp, void *user) {
  (void)srv, (void)req;
  gg_app_generate *m = user;
  json_t *models = json_array(), *scales = json_array();
  for (size_t i = 0; i < sizeof k_models / sizeof k_models[0]; i++) {
    char path[1024], err[200];
    int fetched =
        gg_upscale_model_path(k_models[i], 2, path, sizeof path, NULL, err, sizeof err) == 0;
    json_array_append_new(models, json_pack("{s:s,s:b}", "name", k_models[i], "fetched", fetched));
  }
  for (size_t i = 0; i < sizeof k_scales / sizeof k_scales[0]; i++)
    json_array_append_new(scales, json_integer(k_scales[i]));
  uint64_t max_px = m->app->max_pixels && m->app->max_pixels < GEN_MAX_INPUT_PIXELS
                        ? m->app->max_pixels
                        : GEN_MAX_INPUT_PIXELS;
  pthread_mutex_lock(&m->lock);
  int queued = m->queued;
  pthread_mutex_unlock(&m->lock);
  gg_http_json(resp, 200,
               json_pack("{s:o,s:o,s:{s:s,s:i},s:{s:i,s:i,s:I,s:i,s:i,s:i,s:i},s:i}", "models",
                         models, "scales", scales, "defaults", "model", GEN_DEFAULT_MODEL, "scale",
                         GEN_DEFAULT_SCALE, "limits", "max_output_w", GEN_MAX_OUTPUT,
                         "max_output_h", GEN_MAX_OUTPUT, "max_input_pixels", (json_int_t)max_px,
                         "queue", GEN_QUEUE_MAX, "keep", GEN_KEEP, "min_tile", 16, "max_tile", 1024,
                         "queued", queued));
}

void gg__app_register_generate(gg_app *app) {
  gg_app_generate *m = calloc(1, sizeof *m);
  if (!m) {
    GG_ERROR("HTTP", "out of memory: the generation API is not available");
    return;
  }
  m->app = app;
  pthread_mutex_init(&m->lock, NULL);
  pthread_cond_init(&m->cond, NULL);
  app->generate = m;
  if (pthread_create(&m->worker, NULL, worker_main, m) == 0)
    m->worker_started = 1;
  else
    GG_ERROR("HTTP", "cannot start the generation worker thread; generations stay queued");
  gg_server *s = app->srv;
  gg__server_add_route_access(s, "POST", "/api/generate", GG_ACCESS_SPENDING, h_generate, m);
  gg_server_add_route(s, "GET", "/api/generate/:id", h_status, m);
  gg_server_add_route(s, "GET", "/api/generate/:id/image", h_image, m);
  gg_server_add_route(s, "GET", "/api/progress/:id", h_progress, m);
  gg__server_add_route_access(s, "POST", "/api/stop/:id", GG_ACCESS_MUTATING, h_stop, m);
  gg_server_add_route(s, "GET", "/api/config", h_config, m);
}

void gg__app_generate_stop(gg_app *app) {
  gg_app_generate *m = app ? app->generate : NULL;
  if (!m) return;
  pthread_mutex_lock(&m->lock);
  m->stopping = 1;
  for (gen *g = m->all; g; g = g->next)
    if (g->gen) gg_generator_cancel(g->gen);
  pthread_cond_broadcast(&m->cond);
  pthread_mutex_unlock(&m->lock);
  if (m->worker_started) pthread_join(m->worker, NULL);
  /* The daemon has stopped: no SSE reader is left (the core closed them). */
  while (m->all) {
    gen *g = m->all;
    m->all = g->next;
    gen_unref(g);
  }
  pthread_cond_destroy(&m->cond);
  pthread_mutex_destroy(&m->lock);
  free(m);
  app->generate = NULL;
}
