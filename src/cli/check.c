/* gpuguard check-backend: verifies a device's engine backend against the
 * CPU backend in one process. For each model and each sample image it runs
 * the same preprocessed input through a CPU session and a session in the
 * device's pool (gg_session_new_on, as `gpuguard bench --device` does) and
 * reports, per model: the worst |device - cpu| of each output as a fraction
 * of the CPU output's range (pass <= 1e-3), the cosine similarity of the
 * face embeddings (pass >= 0.9999), the device bytes predicted vs measured
 * (pass only when equal), the plan (fast/lean), the ops on the device and on
 * the host, and the median run time on the device and on the CPU.
 *
 * --fault-checks adds the checks that need a device: a budget between the
 * lean and the fast plan, a device filled by another process (--hog), and a
 * worker recycle after a sticky error where one can be provoked safely.
 * scripts/gpu-verify.sh runs this on a lent GPU and writes the summary. */
#include "cli/cli.h"
#include "core/opts.h"
#include "gpuguard/catalog.h"
#include "gpuguard/core.h"
#include "gpuguard/device.h"
#include "gpuguard/engine.h"
#include "gpuguard/error.h"
#include "gpuguard/guard.h"
#include "gpuguard/image.h"
#include "gpuguard/log.h"
#include "gpuguard/memory.h"

#include <jansson.h>

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CHECK_MAX_IMAGES 16
#define CHECK_MAX_MODELS 8
#define CHECK_MAX_OUTPUTS 16
#define CHECK_ERR_TOL 1e-3    /* max |device - cpu| <= this x the CPU output's range */
#define CHECK_COS_MIN 0.9999  /* embeddings: cosine(device, cpu) >= this */
#define CHECK_LEAN_SECONDS 20 /* per model, the budget search of the lean-plan check */
#define CHECK_HOG_READY_MS 60000

typedef struct check_opts {
  const char *device;
  const char *models;
  const char *only;
  const char *images;
  const char *json;
  uint64_t budget;
  int runs;
  int warmup;
  int threads;
  int fault_checks;
  int all_on_device;
  double perturb;
  uint64_t hog;
  int hog_seconds;
  const char *oom_hog;
} check_opts;

#define CO(f) offsetof(check_opts, f)
static const gg_opt k_check_opts[] = {
    {"device", NULL, GG_OPT_STR, CO(device), "cuda:0",
     "the device to check: cuda:N, opencl:P.D, sim:mem=1G", "SPEC"},
    {"models", NULL, GG_OPT_STR, CO(models), "",
     "folder with the model packages (sets GPUGUARD_MODELS_DIR); default: where the other "
     "commands find them ($GPUGUARD_MODELS_DIR, else the fetched cache)",
     "DIR"},
    {"only", NULL, GG_OPT_STR, CO(only), GG_CATALOG_MODELS,
     "comma-separated model names (or model.json paths) to check", "LIST"},
    {"images", NULL, GG_OPT_STR, CO(images), "",
     "comma-separated JPEG/PNG files, or a folder (its .jpg/.jpeg/.png files, at most 16); "
     "default: the sample photos the tests use ($GPUGUARD_CACHE/models/face-api-1.7.15/demo/"
     "sample1..6.jpg)",
     "LIST|DIR"},
    {"runs", NULL, GG_OPT_INT, CO(runs), "50", "timed runs per model on the device and on the CPU",
     "N"},
    {"warmup", NULL, GG_OPT_INT, CO(warmup), "5", "untimed runs before them", "N"},
    {"threads", "GPUGUARD_THREADS", GG_OPT_INT, CO(threads), "1",
     "CPU threads of both sessions (host ops of the device session too)", "N"},
    {"budget", NULL, GG_OPT_SIZE, CO(budget), "",
     "memory budget of the device pool (e.g. 3.5G); default: none", "BYTES"},
    {"json", NULL, GG_OPT_STR, CO(json), "",
     "also write the results as JSON (schema gpuguard.check-backend/1) to FILE", "FILE"},
    {"fault-checks", NULL, GG_OPT_BOOL, CO(fault_checks), "false",
     "also run the checks that need a device: a budget below the fast plan, a device filled by "
     "another process, a recycle after a sticky error",
     NULL},
    {"all-on-device", NULL, GG_OPT_BOOL, CO(all_on_device), "false",
     "fail a model when any of its ops runs on the host", NULL},
    {"perturb", NULL, GG_OPT_DOUBLE, CO(perturb), "0",
     "for tests: add +-X x range to every device output value before comparing (X > 1e-3 must "
     "fail)",
     "X"},
    {"hog", NULL, GG_OPT_SIZE, CO(hog), "",
     "helper mode: allocate up to BYTES on --device, print 'ready HELD', hold them until stdin "
     "closes or --hog-seconds pass, then exit",
     "BYTES"},
    {"hog-seconds", NULL, GG_OPT_INT, CO(hog_seconds), "120", "--hog: hold at most this long", "S"},
    {"oom-hog", NULL, GG_OPT_STR, CO(oom_hog), "auto",
     "who fills the device in the out-of-memory check: process (a --hog helper), inline (a "
     "second pool here), auto (inline on sim, whose memory is per process; process on cuda)",
     "HOW"},
    {0},
};

/* ---- small helpers -------------------------------------------------------- */

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double ms_since(uint64_t t0) {
  return (double)(gg_now_ns() - t0) / 1e6;
}

/* For the catalog's face embedders, the substring of the embedding
 * output's name (as tests/test-reference.c names them); NULL otherwise. */
static const char *embedding_output(const char *path) {
  const gg_model_entry *e = gg_catalog_find_path(path);
  if (!e) return NULL;
  if (e->kind == GG_MODEL_FACE_EMBEDDER) return "embeddings";      /* mobilefacenet */
  if (e->kind == GG_MODEL_FACE_DESCRIBER) return "global_pooling"; /* faceres */
  return NULL;
}

/* Ops of the session on the host backends (naive, xnnpack) and elsewhere. */
static void count_ops(const gg_engine_mem *mem, int *on_dev, int *on_host, char *by, size_t bylen) {
  *on_dev = *on_host = 0;
  size_t w = 0;
  if (bylen) by[0] = 0;
  for (int b = 0; b < mem->n_backends; b++) {
    const gg_engine_backend_ops *o = &mem->ops[b];
    if (!strcmp(o->name, "naive") || !strcmp(o->name, "xnnpack"))
      *on_host += o->n_ops;
    else
      *on_dev += o->n_ops;
    if (o->n_ops > 0 && w < bylen)
      w += (size_t)snprintf(by + w, bylen - w, "%s%s %d", w ? " " : "", o->name, o->n_ops);
  }
}

/* ---- one model: CPU reference and device session -------------------------- */

typedef struct out_stat {
  char name[64];
  int64_t elems;
  double max_err; /* worst over images (NaN sticks) */
  double range;   /* of the CPU output where the worst error was seen */
  double ratio;   /* max over images of max_err / range */
  double cosine;  /* min over images */
  int embedding;
  int pass;
} out_stat;

/* Compares every output of s with ref's (same model, same input). perturb
 * (tests) shifts the device values by +-perturb x range first. Updates
 * st[0..n) (worst over calls) and returns 1 when this input passed. */
static int compare_outputs(gg_session *ref, gg_session *s, const char *emb, double perturb,
                           out_stat *st, int n) {
  int ok = 1;
  for (int i = 0; i < n; i++) {
    gg_tensor_info ti;
    const float *r = gg_session_output(ref, i, &ti), *d = gg_session_output(s, i, NULL);
    int64_t ne = gg_session_output_elems(ref, i);
    out_stat *o = &st[i];
    if (!o->name[0]) {
      snprintf(o->name, sizeof o->name, "%s", ti.name ? ti.name : "");
      o->elems = ne;
      o->cosine = 1;
      o->embedding = emb && ti.name && strstr(ti.name, emb);
      o->pass = 1;
    }
    if (!r || !d || gg_session_output_elems(s, i) != ne) {
      o->pass = 0, o->max_err = o->ratio = NAN;
      ok = 0;
      continue;
    }
    double lo = INFINITY, hi = -INFINITY;
    for (int64_t k = 0; k < ne; k++)
      lo = fmin(lo, r[k]), hi = fmax(hi, r[k]);
    /* One-element outputs (a score) have no spread: use |value|. */
    double range = ne > 1 ? hi - lo : fabs(hi);
    if (!(range >= 1e-6)) range = 1e-6;
    double err = 0, dot = 0, na = 0, nb = 0;
    int nan = 0;
    for (int64_t k = 0; k < ne; k++) {
      double a = d[k], b = r[k];
      if (perturb != 0) a += (k % 2 ? -perturb : perturb) * range;
      double e = fabs(a - b);
      if (isnan(e))
        nan = 1;
      else if (e > err)
        err = e;
      dot += a * b, na += a * a, nb += b * b;
    }
    if (nan) err = NAN;
    double cosine = na > 0 && nb > 0 ? dot / sqrt(na * nb) : (na == nb ? 1 : 0);
    double ratio = err / range;
    if (isnan(ratio) || isnan(o->ratio)) {
      if (!isnan(o->ratio)) o->ratio = NAN, o->max_err = NAN, o->range = range;
    } else if (ratio >= o->ratio) {
      o->ratio = ratio, o->max_err = err, o->range = range;
    }
    if (!(cosine >= o->cosine)) o->cosine = cosine;
    int pass = ratio <= CHECK_ERR_TOL && (!o->embedding || cosine >= CHECK_COS_MIN);
    if (!pass) o->pass = 0, ok = 0;
  }
  return ok;
}

typedef struct model_ctx {
  char name[64];
  char path[PATH_MAX];
  const char *emb;
  gg_model *m;
  gg_preprocess pp;
  int64_t dims[4];
  gg_session *cpu;
} model_ctx;

static void model_ctx_close(model_ctx *c) {
  gg_session_free(c->cpu);
  gg_model_free(c->m);
  c->cpu = NULL, c->m = NULL;
}

/* Resolves and loads the model and prepares its CPU session. */
static int model_ctx_open(model_ctx *c, const char *name, int threads, char *err, size_t errlen) {
  memset(c, 0, sizeof *c);
  snprintf(c->name, sizeof c->name, "%s", name);
  if (gg_catalog_resolve(name, c->path, sizeof c->path)) {
    snprintf(err, errlen,
             "model '%.100s' not found (looked for %.300s); run scripts/fetch-models.sh", name,
             c->path);
    return GG_ENOTFOUND;
  }
  c->emb = embedding_output(c->path);
  int rc = gg_model_image_input(c->path, &c->pp, c->dims, err, errlen);
  if (!rc) rc = gg_model_load(c->path, &c->m, err, errlen);
  gg_session_opts so = {threads, GG_ENGINE_AUTO, 0};
  if (!rc) rc = gg_session_new(c->m, c->dims, 4, &so, &c->cpu, err, errlen);
  if (rc) model_ctx_close(c);
  return rc;
}

/* A session of c's model in pool (NULL: on the host). */
static int model_ctx_session(model_ctx *c, gg_pool *pool, int threads, gg_session **out, char *err,
                             size_t errlen) {
  gg_session_opts so = {threads, GG_ENGINE_AUTO, 0};
  return gg_session_new_on(c->m, c->dims, 4, &so, pool, out, err, errlen);
}

/* Writes img into the session's input and runs it. */
static int run_image(model_ctx *c, gg_session *s, const gg_image *img, char *err, size_t errlen) {
  int rc = gg_image_to_tensor(img, &c->pp, gg_session_input(s, 0, NULL));
  if (rc) {
    snprintf(err, errlen, "cannot preprocess the image for %s", c->name);
    return rc;
  }
  return gg_session_run(s, err, errlen);
}

/* Median and p90 of `runs` runs after `warmup` ones, on the input in place. */
static int time_session(gg_session *s, int warmup, int runs, double *median, double *p90, char *err,
                        size_t errlen) {
  double *ts = calloc((size_t)runs, sizeof *ts);
  if (!ts) return GG_ENOMEM;
  int rc = 0;
  for (int i = 0; i < warmup + runs && !rc; i++) {
    uint64_t a = gg_now_ns();
    rc = gg_session_run(s, err, errlen);
    if (i >= warmup) ts[i - warmup] = ms_since(a);
  }
  if (!rc) {
    qsort(ts, (size_t)runs, sizeof *ts, cmp_double);
    *median = runs % 2 ? ts[runs / 2] : (ts[runs / 2 - 1] + ts[runs / 2]) / 2;
    *p90 = ts[(int)(0.9 * (runs - 1))];
  }
  free(ts);
  return rc;
}

typedef struct check_image {
  char path[PATH_MAX];
  gg_image img;
} check_image;

typedef struct model_result {
  char name[64];
  int pass, ran;
  char error[512];
  int n_out;
  out_stat out[CHECK_MAX_OUTPUTS];
  double worst_ratio, min_cosine; /* min_cosine over embedding outputs; 2 when none */
  int outputs_pass, bytes_pass, ops_pass;
  gg_engine_mem mem;
  int ops_dev, ops_host;
  char ops_by[96];
  double dev_ms, dev_p90, cpu_ms, cpu_p90;
  int images;
} model_result;

static json_t *model_json(const model_result *r) {
  json_t *outs = json_array();
  for (int i = 0; i < r->n_out; i++) {
    const out_stat *o = &r->out[i];
    json_array_append_new(
        outs, json_pack("{s:s,s:I,s:f,s:f,s:f,s:f,s:b,s:b}", "name", o->name, "elems",
                        (json_int_t)o->elems, "max_abs_err", isnan(o->max_err) ? -1.0 : o->max_err,
                        "range", o->range, "err_over_range", isnan(o->ratio) ? -1.0 : o->ratio,
                        "cosine", o->cosine, "embedding", o->embedding, "pass", o->pass));
  }
  const gg_engine_mem *m = &r->mem;
  json_t *devs = json_array();
  for (int i = 0; i < m->n_devices; i++)
    json_array_append_new(
        devs, json_pack("{s:s,s:I,s:I,s:I,s:I,s:I,s:b}", "device", m->dev[i].device, "weights",
                        (json_int_t)m->dev[i].weights, "arena", (json_int_t)m->dev[i].arena,
                        "workspace", (json_int_t)m->dev[i].workspace, "predicted",
                        (json_int_t)m->dev[i].predicted, "measured", (json_int_t)m->dev[i].measured,
                        "equal", m->dev[i].predicted == m->dev[i].measured));
  const gg_engine_dev_mem *dm = m->n_devices > 1 ? &m->dev[1] : NULL;
  json_t *j = json_pack(
      "{s:s,s:b,s:i,s:o,s:f,s:f,s:b,s:b,s:b,s:{s:I,s:I,s:b,s:o},s:{s:s,s:I,s:I,s:i},"
      "s:{s:i,s:i,s:s},s:{s:f,s:f,s:f,s:f,s:f}}",
      "model", r->name, "pass", r->pass, "images", r->images, "outputs", outs,
      "worst_err_over_range", isnan(r->worst_ratio) ? -1.0 : r->worst_ratio, "min_cosine",
      r->min_cosine > 1.5 ? 1.0 : r->min_cosine, "outputs_pass", r->outputs_pass, "bytes_pass",
      r->bytes_pass, "ops_pass", r->ops_pass, "device_bytes", "predicted",
      (json_int_t)(dm ? dm->predicted : 0), "measured", (json_int_t)(dm ? dm->measured : 0),
      "equal", dm && dm->predicted == dm->measured, "per_device", devs, "plan", "name", m->plan,
      "fast", (json_int_t)m->plan_fast, "lean", (json_int_t)m->plan_lean, "lean_ops", m->n_lean_ops,
      "ops", "device", r->ops_dev, "host", r->ops_host, "by_backend", r->ops_by, "time_ms",
      "device_median", r->dev_ms, "device_p90", r->dev_p90, "cpu_median", r->cpu_ms, "cpu_p90",
      r->cpu_p90, "cpu_over_device", r->dev_ms > 0 ? r->cpu_ms / r->dev_ms : 0.0);
  if (r->error[0]) json_object_set_new(j, "error", json_string(r->error));
  return j;
}

/* Checks one model on the device: every image through both sessions, then
 * the timing on the first image. Fills *r; returns r->pass. */
static int check_model(const char *name, gg_device *dev, const check_opts *o,
                       const check_image *imgs, int n_img, model_result *r) {
  memset(r, 0, sizeof *r);
  snprintf(r->name, sizeof r->name, "%s", name);
  r->min_cosine = 2;
  char err[512] = "";
  model_ctx c;
  gg_pool *pool = NULL;
  gg_session *ds = NULL;
  int rc = model_ctx_open(&c, name, o->threads, err, sizeof err);
  const char *stage = "load";
  if (!rc && (rc = gg_pool_new(dev, NULL, &pool)))
    snprintf(err, sizeof err, "cannot create a memory pool on %s", o->device);
  if (!rc && o->budget) gg_pool_set_budget(pool, o->budget);
  if (!rc)
    stage = "device session", rc = model_ctx_session(&c, pool, o->threads, &ds, err, sizeof err);
  r->n_out = rc ? 0 : gg_model_n_outputs(c.m);
  if (r->n_out > CHECK_MAX_OUTPUTS) r->n_out = CHECK_MAX_OUTPUTS;
  r->outputs_pass = 1;
  for (int i = 0; i < n_img && !rc; i++) {
    stage = "cpu run";
    rc = run_image(&c, c.cpu, &imgs[i].img, err, sizeof err);
    if (!rc) stage = "device run", rc = run_image(&c, ds, &imgs[i].img, err, sizeof err);
    if (!rc && !compare_outputs(c.cpu, ds, c.emb, o->perturb, r->out, r->n_out))
      r->outputs_pass = 0;
    if (!rc) r->images++;
  }
  /* Timing: the same input (the first image) on both. */
  if (!rc) stage = "device timing", rc = run_image(&c, ds, &imgs[0].img, err, sizeof err);
  if (!rc) rc = time_session(ds, o->warmup, o->runs, &r->dev_ms, &r->dev_p90, err, sizeof err);
  if (!rc) stage = "cpu timing", rc = run_image(&c, c.cpu, &imgs[0].img, err, sizeof err);
  if (!rc) rc = time_session(c.cpu, o->warmup, o->runs, &r->cpu_ms, &r->cpu_p90, err, sizeof err);
  if (ds) {
    gg_session_memory(ds, &r->mem);
    count_ops(&r->mem, &r->ops_dev, &r->ops_host, r->ops_by, sizeof r->ops_by);
  }
  r->ran = rc == 0;
  if (rc)
    snprintf(r->error, sizeof r->error, "%s: %s (%s)", stage, err[0] ? err : gg_strerror(rc),
             gg_err_name(rc));
  r->worst_ratio = 0;
  for (int i = 0; i < r->n_out; i++) {
    if (isnan(r->out[i].ratio) || r->out[i].ratio > r->worst_ratio)
      r->worst_ratio = r->out[i].ratio;
    if (r->out[i].embedding && r->out[i].cosine < r->min_cosine) r->min_cosine = r->out[i].cosine;
  }
  /* predicted == measured on every device of the session, and the session
   * must have one: a device without an engine backend runs all on the host. */
  r->bytes_pass = r->mem.n_devices > 1;
  for (int i = 0; i < r->mem.n_devices; i++)
    if (r->mem.dev[i].predicted != r->mem.dev[i].measured) r->bytes_pass = 0;
  if (r->ran && r->mem.n_devices < 2 && !r->error[0])
    snprintf(r->error, sizeof r->error,
             "no engine backend for %s: every op ran on the host and nothing was checked on the "
             "device",
             o->device);
  r->ops_pass = r->ops_dev > 0 && (!o->all_on_device || r->ops_host == 0);
  r->pass = r->ran && r->outputs_pass && r->bytes_pass && r->ops_pass;
  gg_session_free(ds);
  gg_pool_free(pool);
  model_ctx_close(&c);
  return r->pass;
}

/* ---- fault checks ---------------------------------------------------------- */

typedef enum { FC_PASS, FC_FAIL, FC_SKIP } fc_status;
static const char *const k_fc_names[] = {"PASS", "FAIL", "SKIP"};

typedef struct fault_result {
  const char *name;
  fc_status status;
  char reason[1024];
  json_t *detail; /* owned */
} fault_result;

static void fc_set(fault_result *f, fc_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void fc_set(fault_result *f, fc_status st, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  f->status = st;
  vsnprintf(f->reason, sizeof f->reason, fmt, ap);
  va_end(ap);
}

/* Runs image 0 through c's CPU session and through s; 1 when they match. */
static int matches_cpu(model_ctx *c, gg_session *s, const gg_image *img, double *worst, char *err,
                       size_t errlen) {
  out_stat st[CHECK_MAX_OUTPUTS];
  memset(st, 0, sizeof st);
  int n = gg_model_n_outputs(c->m);
  if (n > CHECK_MAX_OUTPUTS) n = CHECK_MAX_OUTPUTS;
  int rc = run_image(c, c->cpu, img, err, errlen);
  if (!rc) rc = run_image(c, s, img, err, errlen);
  if (rc) return 0;
  int ok = compare_outputs(c->cpu, s, c->emb, 0, st, n);
  *worst = 0;
  for (int i = 0; i < n; i++)
    if (isnan(st[i].ratio) || st[i].ratio > *worst) *worst = st[i].ratio;
  return ok;
}

/* (a) One model: a pool budget under what its fast plan reserves must give
 * the lean plan, which must match the CPU with predicted == measured. The
 * pool's budget bounds reserved segments, not blocks, so the budget is
 * found from above as tests/test-engine-lean.c does: one byte under what
 * the fast session reserved, stepping down by 1/16 of the plans' gap. */
static json_t *lean_one(const char *name, gg_device *dev, const check_opts *o, const gg_image *img,
                        fc_status *st, char *why, size_t whylen) {
  char err[512] = "";
  model_ctx c;
  int rc = model_ctx_open(&c, name, o->threads, err, sizeof err);
  if (rc) {
    *st = FC_FAIL;
    snprintf(why, whylen, "%s: %s", name, err);
    return json_pack("{s:s,s:s,s:s}", "model", name, "status", "FAIL", "reason", why);
  }
  gg_pool_config cfg;
  gg_pool_config_default(&cfg);
  cfg.large_segment = 1; /* every large block its own segment: repeatable reservations */
  gg_pool *pool = NULL;
  gg_session *fast = NULL, *lean = NULL;
  gg_engine_mem fm = {0}, lm = {0};
  rc = gg_pool_new(dev, &cfg, &pool);
  if (!rc) rc = model_ctx_session(&c, pool, o->threads, &fast, err, sizeof err);
  if (!rc) gg_session_memory(fast, &fm);
  gg_pool_stats ps = {0};
  if (!rc) gg_pool_get_stats(pool, &ps);
  gg_session_free(fast);
  uint64_t budget = ps.reserved ? ps.reserved - 1 : 0, found = 0;
  int tries = 0, sess_rc = 0;
  double worst = 0;
  if (rc) {
    *st = FC_FAIL;
    snprintf(why, whylen, "%s: the unbudgeted session failed: %s (%s)", name, err, gg_err_name(rc));
  } else if (fm.plan_fast <= fm.plan_lean) {
    *st = FC_SKIP;
    snprintf(why, whylen, "%s: one plan only on this device (fast = lean = %llu bytes)", name,
             (unsigned long long)fm.plan_fast);
  } else {
    uint64_t gap = fm.plan_fast - fm.plan_lean;
    uint64_t step = gap / 16 > (64u << 10) ? gap / 16 : (64u << 10);
    uint64_t t0 = gg_now_ns();
    for (; tries < 80 && budget > step && ms_since(t0) < CHECK_LEAN_SECONDS * 1e3;
         tries++, budget -= step) {
      gg_session_free(lean);
      lean = NULL;
      gg_pool_trim(pool, NULL);
      gg_pool_set_budget(pool, budget);
      sess_rc = model_ctx_session(&c, pool, o->threads, &lean, err, sizeof err);
      if (sess_rc) break;
      gg_session_memory(lean, &lm);
      if (!strcmp(lm.plan, "lean")) {
        found = budget;
        break;
      }
    }
    if (!found && sess_rc && budget >= fm.plan_lean) {
      *st = FC_SKIP;
      snprintf(why, whylen,
               "%s: no budget separates the plans under the pool's segment rounding: at %llu "
               "bytes (lean plan %llu, fast %llu) the session failed with %s",
               name, (unsigned long long)budget, (unsigned long long)fm.plan_lean,
               (unsigned long long)fm.plan_fast, gg_err_name(sess_rc));
    } else if (!found) {
      *st = FC_FAIL;
      snprintf(why, whylen,
               "%s: no lean plan under any of %d budgets down to %llu bytes (lean plan %llu, fast "
               "%llu)%s%s",
               name, tries, (unsigned long long)budget, (unsigned long long)fm.plan_lean,
               (unsigned long long)fm.plan_fast, sess_rc ? "; last session: " : "",
               sess_rc ? err : "");
    } else {
      int eq = 1;
      for (int i = 0; i < lm.n_devices; i++)
        eq &= lm.dev[i].predicted == lm.dev[i].measured;
      int match = matches_cpu(&c, lean, img, &worst, err, sizeof err);
      gg_session_memory(lean, &lm);
      *st = match && eq ? FC_PASS : FC_FAIL;
      snprintf(why, whylen,
               "%s: budget %llu bytes (fast plan reserved %llu) -> plan %s, %d op(s) leaner, "
               "device predicted %llu measured %llu, worst error %.3g x range%s%s",
               name, (unsigned long long)found, (unsigned long long)ps.reserved, lm.plan,
               lm.n_lean_ops, (unsigned long long)(lm.n_devices > 1 ? lm.dev[1].predicted : 0),
               (unsigned long long)(lm.n_devices > 1 ? lm.dev[1].measured : 0), worst,
               match ? "" : " (DOES NOT MATCH THE CPU)", eq ? "" : " (BYTES DIFFER)");
    }
  }
  json_t *j =
      json_pack("{s:s,s:s,s:s,s:I,s:I,s:I,s:I,s:i,s:s,s:f}", "model", name, "status",
                k_fc_names[*st], "reason", why, "plan_fast", (json_int_t)fm.plan_fast, "plan_lean",
                (json_int_t)fm.plan_lean, "fast_reserved", (json_int_t)ps.reserved, "budget",
                (json_int_t)found, "tries", tries, "plan", lm.plan, "worst_err_over_range", worst);
  gg_session_free(lean);
  gg_pool_free(pool);
  model_ctx_close(&c);
  return j;
}

static void fault_lean(gg_device *dev, const check_opts *o, const char *const *names, int n,
                       const gg_image *img, fault_result *f) {
  f->name = "budget_below_fast_plan";
  f->detail = json_array();
  int pass = 0, fail = 0;
  size_t w = 0;
  for (int i = 0; i < n; i++) {
    fc_status st;
    char why[512];
    json_array_append_new(f->detail, lean_one(names[i], dev, o, img, &st, why, sizeof why));
    pass += st == FC_PASS, fail += st == FC_FAIL;
    if (w < sizeof f->reason)
      w += (size_t)snprintf(f->reason + w, sizeof f->reason - w, "%s%s %s", w ? "; " : "",
                            k_fc_names[st], why);
  }
  f->status = fail ? FC_FAIL : pass ? FC_PASS : FC_SKIP;
}

/* The path of this executable, for the --hog helper. */
static int self_exe(char *out, size_t len) {
  ssize_t n = readlink("/proc/self/exe", out, len - 1);
  if (n <= 0) return GG_EIO;
  out[n] = 0;
  return 0;
}

#define CHECK_HOG_BLOCKS 1024

typedef struct hog {
  pid_t pid; /* the helper process (cuda), 0 when none */
  int to_child, from_child;
  gg_pool *pool; /* the blocks' pool (the helper's, or this process's on sim) */
  gg_block *blocks[CHECK_HOG_BLOCKS];
  int n_blocks;
  uint64_t held;
} hog;

/* Allocates up to `bytes` from h->pool in blocks of at most 1 GiB, halving
 * a block that does not fit down to 1 MiB. Quiet: a refusal is expected. */
static void hog_fill(hog *h, uint64_t bytes) {
  uint64_t chunk = 1ull << 30;
  while (h->held < bytes && chunk >= (1u << 20) && h->n_blocks < CHECK_HOG_BLOCKS) {
    uint64_t want = bytes - h->held < chunk ? bytes - h->held : chunk;
    if (gg_pool_try_alloc(h->pool, (size_t)want, "check/hog", &h->blocks[h->n_blocks]) == 0)
      h->held += want, h->n_blocks++;
    else
      chunk /= 2;
  }
}

/* Frees the blocks and the pool. */
static void hog_release(hog *h) {
  for (int i = 0; i < h->n_blocks; i++)
    gg_block_free(h->blocks[i]);
  h->n_blocks = 0;
  gg_pool_free(h->pool);
  h->pool = NULL;
}

/* --hog: the helper process of the forced out-of-memory check. */
static int hog_main(const check_opts *o) {
  gg_log_set_level(GG_LOG_ERROR);
  gg_device *dev = NULL;
  static hog h;
  if (gg_device_open(o->device, &dev) || gg_pool_new(dev, NULL, &h.pool)) {
    printf("error cannot open %s\n", o->device);
    gg_device_free(dev);
    return 1;
  }
  hog_fill(&h, o->hog);
  printf("ready %llu\n", (unsigned long long)h.held);
  fflush(stdout);
  alarm((unsigned)(o->hog_seconds > 0 ? o->hog_seconds : 120)); /* never outlive a lost parent */
  char buf[64];
  while (read(0, buf, sizeof buf) > 0) {
  }
  hog_release(&h);
  gg_device_free(dev);
  return 0;
}

/* Starts `gpuguard check-backend --device SPEC --hog BYTES` and waits for
 * its "ready HELD" line. */
static int hog_spawn(hog *h, const char *spec, uint64_t bytes, char *err, size_t errlen) {
  char exe[PATH_MAX], nb[32];
  if (self_exe(exe, sizeof exe)) {
    snprintf(err, errlen, "cannot read /proc/self/exe");
    return GG_EIO;
  }
  snprintf(nb, sizeof nb, "%llu", (unsigned long long)bytes);
  int in[2], out[2];
  if (pipe(in)) return GG_EIO;
  if (pipe(out)) {
    close(in[0]), close(in[1]);
    return GG_EIO;
  }
  fflush(NULL);
  h->pid = fork();
  if (h->pid == 0) {
    dup2(in[0], 0), dup2(out[1], 1);
    close(in[0]), close(in[1]), close(out[0]), close(out[1]);
    execl(exe, exe, "check-backend", "--device", spec, "--hog", nb, (char *)NULL);
    _exit(127);
  }
  close(in[0]), close(out[1]);
  h->to_child = in[1], h->from_child = out[0];
  if (h->pid < 0) {
    snprintf(err, errlen, "fork failed: %s", strerror(errno));
    return GG_EIO;
  }
  char line[128];
  size_t got = 0;
  uint64_t t0 = gg_now_ns();
  while (got < sizeof line - 1 && !memchr(line, '\n', got)) {
    struct pollfd p = {h->from_child, POLLIN, 0};
    int left = CHECK_HOG_READY_MS - (int)ms_since(t0);
    if (left <= 0 || poll(&p, 1, left) <= 0) break;
    ssize_t n = read(h->from_child, line + got, sizeof line - 1 - got);
    if (n <= 0) break;
    got += (size_t)n;
  }
  line[got] = 0;
  unsigned long long held = 0;
  if (sscanf(line, "ready %llu", &held) != 1) {
    snprintf(err, errlen, "the hog process did not get ready in %d s (it said '%.100s')",
             CHECK_HOG_READY_MS / 1000, line);
    return GG_ETIMEOUT;
  }
  h->held = held;
  return 0;
}

/* Ends the hog: closes its stdin, waits up to 10 s, then kills it. */
static void hog_stop(hog *h) {
  if (h->pid <= 0) {
    hog_release(h);
    return;
  }
  close(h->to_child), close(h->from_child);
  int st;
  for (int i = 0; i < 100; i++) {
    if (waitpid(h->pid, &st, WNOHANG) == h->pid) {
      h->pid = 0;
      return;
    }
    struct timespec ts = {0, 100000000L};
    nanosleep(&ts, NULL);
  }
  kill(h->pid, SIGKILL);
  waitpid(h->pid, &st, 0);
  h->pid = 0;
}

/* (b) Another process holds the device nearly full: a session of the first
 * model must fail with GG_EDEV_OOM (and not crash), and succeed and match
 * the CPU once the hog is gone. A sim device's memory belongs to its
 * process, so there the hog is a second pool in this process. */
static void fault_oom(gg_device *dev, const check_opts *o, const char *name, const gg_image *img,
                      fault_result *f) {
  f->name = "forced_out_of_memory";
  gg_device_kind kind = gg_device_get_kind(dev);
  int inline_hog =
      !strcmp(o->oom_hog, "inline") || (!strcmp(o->oom_hog, "auto") && kind == GG_DEVICE_SIM);
  if (kind != GG_DEVICE_CUDA && kind != GG_DEVICE_SIM) {
    fc_set(f, FC_SKIP,
           "not provoked on %s: its memory may be host memory (PoCL's CPU device: it is) and "
           "gg_device_info does not say the device type, so filling it is not safe here",
           o->device);
    return;
  }
  char err[512] = "";
  model_ctx c;
  if (model_ctx_open(&c, name, o->threads, err, sizeof err)) {
    fc_set(f, FC_FAIL, "%s", err);
    return;
  }
  gg_pool *pool = NULL;
  gg_session *s = NULL;
  gg_engine_mem mem = {0};
  /* What the model needs: an unbudgeted session, then nothing held. */
  int rc = gg_pool_new(dev, NULL, &pool);
  if (!rc) rc = model_ctx_session(&c, pool, o->threads, &s, err, sizeof err);
  if (!rc) gg_session_memory(s, &mem);
  gg_session_free(s), s = NULL;
  gg_pool_free(pool), pool = NULL;
  uint64_t need = mem.plan_lean ? mem.plan_lean : mem.predicted, free0 = 0, total = 0, free1 = 0;
  if (rc) {
    fc_set(f, FC_FAIL, "%s: the session failed before the hog: %s (%s)", name, err,
           gg_err_name(rc));
    model_ctx_close(&c);
    return;
  }
  gg_device_get_memory(dev, &free0, &total);
  uint64_t leave = need / 4, bytes = free0 > leave ? free0 - leave : 0;
  static hog h;
  memset(&h, 0, sizeof h);
  if (inline_hog) {
    rc = gg_pool_new(dev, NULL, &h.pool);
    if (!rc) hog_fill(&h, bytes);
  } else {
    rc = hog_spawn(&h, o->device, bytes, err, sizeof err);
  }
  gg_device_get_memory(dev, &free1, &total);
  int rc_new = 0, rc_run = 0;
  char err2[512] = "";
  if (!rc) {
    rc = gg_pool_new(dev, NULL, &pool);
    if (!rc) rc_new = model_ctx_session(&c, pool, o->threads, &s, err2, sizeof err2);
    if (!rc && !rc_new) rc_run = run_image(&c, s, img, err2, sizeof err2);
    gg_session_free(s), s = NULL;
    gg_pool_free(pool), pool = NULL;
  }
  hog_stop(&h);
  /* After the hog: a fresh pool must serve again. */
  double worst = 0;
  int rc_after = 0, match = 0;
  char err3[512] = "";
  if (!rc) {
    rc_after = gg_pool_new(dev, NULL, &pool);
    if (!rc_after) rc_after = model_ctx_session(&c, pool, o->threads, &s, err3, sizeof err3);
    if (!rc_after) match = matches_cpu(&c, s, img, &worst, err3, sizeof err3);
    gg_session_free(s);
    gg_pool_free(pool);
  }
  model_ctx_close(&c);
  int failed_with = rc_new ? rc_new : rc_run;
  char fb[32], nb[32], hb[32];
  gg_format_size(free1, fb, sizeof fb);
  gg_format_size(need, nb, sizeof nb);
  gg_format_size(h.held, hb, sizeof hb);
  if (rc)
    fc_set(f, FC_FAIL, "%s: could not set up the hog: %s (%s)", name, err[0] ? err : "",
           gg_err_name(rc));
  else if (!failed_with && free1 >= need)
    fc_set(f, FC_SKIP, "%s: the hog%s held %s but left %s free here, enough for the model (%s)%s",
           name, inline_hog ? "" : " process", hb, fb, nb,
           kind == GG_DEVICE_SIM && !inline_hog ? ": a sim device's memory belongs to its process"
                                                : "");
  else if (!failed_with)
    fc_set(f, FC_FAIL, "%s: served with %s free although it needs %s (hog held %s)", name, fb, nb,
           hb);
  else if (failed_with != GG_EDEV_OOM)
    fc_set(f, FC_FAIL,
           "%s: with the device full (%s free) the %s failed with %s, not GG_EDEV_OOM: %s", name,
           fb, rc_new ? "session" : "run", gg_err_name(failed_with), err2);
  else if (rc_after || !match)
    fc_set(f, FC_FAIL, "%s: GG_EDEV_OOM while full, but after the hog exited: %s%s", name,
           rc_after ? gg_err_name(rc_after) : "outputs differ from the CPU ", rc_after ? err3 : "");
  else
    fc_set(f, FC_PASS,
           "%s: hog%s held %s, %s left free: the %s failed with GG_EDEV_OOM (%.200s); after the "
           "hog exited it served again and matched the CPU (worst error %.3g x range)",
           name, inline_hog ? " (a second pool in this process)" : " process", hb, fb,
           rc_new ? "session" : "run", err2, worst);
  f->detail =
      json_pack("{s:s,s:I,s:I,s:I,s:I,s:s,s:s,s:b}", "model", name, "need", (json_int_t)need,
                "free_before", (json_int_t)free0, "hog_held", (json_int_t)h.held, "free_with_hog",
                (json_int_t)free1, "error_while_full", failed_with ? gg_err_name(failed_with) : "",
                "error_after", rc_after ? gg_err_name(rc_after) : "", "matched_after", match);
}

/* (c) A sticky error through the guard's fault injection, which only the
 * sim device has: the worker must be recycled and the device serve again,
 * matching the CPU. Elsewhere nothing can provoke one safely. */
static void fault_sticky(const check_opts *o, const char *name, const gg_image *img,
                         fault_result *f) {
  f->name = "sticky_error_recycle";
  if (strncmp(o->device, "sim", 3)) {
    fc_set(f, FC_SKIP, "not provoked (no safe way on this device)");
    return;
  }
  char err[512] = "";
  model_ctx c;
  if (model_ctx_open(&c, name, o->threads, err, sizeof err)) {
    fc_set(f, FC_FAIL, "%s", err);
    return;
  }
  gg_gtensor in = {.ndim = 4};
  memcpy(in.dims, c.dims, sizeof c.dims);
  in.data = malloc(gg_gtensor_count(&in) * sizeof(float));
  int rc = in.data ? gg_image_to_tensor(img, &c.pp, in.data) : GG_ENOMEM;
  if (!rc) rc = run_image(&c, c.cpu, img, err, sizeof err);
  gg_guard_config gc;
  gg_guard_config_init(&gc);
  char store[512], arg[32];
  /* sticky@3: the warm-up's third launch (one launch per op on sim). */
  if (!rc) rc = gg_guard_config_chain(&gc, o->device, "sticky@3", "", store, sizeof store);
  snprintf(arg, sizeof arg, "threads=%d", o->threads);
  gc.runner = "engine", gc.runner_arg = arg, gc.isolate = 1;
  gg_guard *g = NULL;
  if (!rc) rc = gg_guard_new(&gc, &g);
  int served = 0, lost = 0, match = 1;
  double worst = 0;
  json_t *reqs = json_array();
  for (int r = 0; r < 3 && !rc; r++) {
    gg_guard_result res;
    memset(&res, 0, sizeof res);
    int rr = gg_guard_infer(g, c.path, &in, &res);
    lost += res.last_error == GG_EDEVICE_LOST || rr == GG_EDEVICE_LOST;
    if (rr == 0) {
      served++;
      for (int i = 0; i < res.n_outputs && i < gg_model_n_outputs(c.m); i++) {
        const float *ref = gg_session_output(c.cpu, i, NULL);
        int64_t n = gg_session_output_elems(c.cpu, i);
        if ((int64_t)gg_gtensor_count(&res.outputs[i]) != n) {
          match = 0;
          continue;
        }
        double lo = INFINITY, hi = -INFINITY, e = 0;
        for (int64_t k = 0; k < n; k++) {
          lo = fmin(lo, ref[k]), hi = fmax(hi, ref[k]);
          double d = fabs((double)res.outputs[i].data[k] - ref[k]);
          e = isnan(d) || isnan(e) ? NAN : fmax(e, d);
        }
        double range = n > 1 ? hi - lo : fabs(hi);
        if (!(range >= 1e-6)) range = 1e-6;
        if (!(e / range <= CHECK_ERR_TOL)) match = 0;
        if (isnan(e) || e / range > worst) worst = e / range;
      }
    }
    json_array_append_new(reqs, json_pack("{s:i,s:s,s:s,s:s}", "request", r + 1, "result",
                                          rr ? gg_err_name(rr) : "served", "device", res.device,
                                          "last_error",
                                          res.last_error ? gg_err_name(res.last_error) : ""));
    gg_guard_result_release(&res);
  }
  gg_guard_stats st = {0};
  if (g) {
    gg_guard_shutdown(g);
    gg_guard_stats_get(g, &st);
    gg_guard_free(g);
  }
  free(in.data);
  model_ctx_close(&c);
  if (rc)
    fc_set(f, FC_FAIL, "%s: cannot set up the guard: %s (%s)", name, err, gg_err_name(rc));
  else if (!lost || st.worker_restarts < 1)
    fc_set(f, FC_FAIL, "%s: sticky@3 gave %d device-lost error(s) and %llu worker restart(s)", name,
           lost, (unsigned long long)st.worker_restarts);
  else if (served < 2 || !match)
    fc_set(f, FC_FAIL, "%s: after the recycle %d of 3 requests served%s", name, served,
           match ? "" : ", outputs differ from the CPU");
  else
    fc_set(f, FC_PASS,
           "%s: sticky@3 (guard fault injection) -> GG_EDEVICE_LOST, %llu worker restart(s), then "
           "%d of 3 requests served on %s, matching the CPU (worst error %.3g x range)",
           name, (unsigned long long)st.worker_restarts, served, o->device, worst);
  f->detail =
      json_pack("{s:s,s:o,s:I,s:I}", "model", name, "requests", reqs, "worker_restarts",
                (json_int_t)st.worker_restarts, "leaked_bytes", (json_int_t)st.leaked_bytes);
}

/* ---- images, output --------------------------------------------------------- */

static int has_image_ext(const char *n) {
  const char *d = strrchr(n, '.');
  return d && (!strcasecmp(d, ".jpg") || !strcasecmp(d, ".jpeg") || !strcasecmp(d, ".png"));
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Fills imgs from --images (files, or a folder), or the tests' sample photos. */
static int load_images(const char *spec, check_image *imgs, int *n, char *err, size_t errlen) {
  char list[CHECK_MAX_IMAGES][PATH_MAX];
  int k = 0;
  if (!spec || !*spec) {
    const char *cache = getenv("GPUGUARD_CACHE"), *home = getenv("HOME");
    char base[PATH_MAX];
    if (cache && *cache)
      snprintf(base, sizeof base, "%s", cache);
    else
      snprintf(base, sizeof base, "%s/.cache/gpuguard", home ? home : "/root");
    for (int i = 1; i <= 6; i++)
      snprintf(list[k++], PATH_MAX, "%.3900s/models/face-api-1.7.15/demo/sample%d.jpg", base, i);
  } else {
    DIR *d = opendir(spec);
    if (d) {
      char *names[256];
      int nn = 0;
      for (struct dirent *e; (e = readdir(d)) && nn < 256;)
        if (e->d_name[0] != '.' && has_image_ext(e->d_name)) names[nn++] = strdup(e->d_name);
      closedir(d);
      qsort(names, (size_t)nn, sizeof *names, cmp_str);
      for (int i = 0; i < nn; i++) {
        if (k < CHECK_MAX_IMAGES && names[i])
          snprintf(list[k++], PATH_MAX, "%.2000s/%.2000s", spec, names[i]);
        free(names[i]);
      }
    } else {
      char buf[8192];
      snprintf(buf, sizeof buf, "%s", spec);
      char *save = NULL;
      for (char *p = strtok_r(buf, ",", &save); p && k < CHECK_MAX_IMAGES;
           p = strtok_r(NULL, ",", &save))
        snprintf(list[k++], PATH_MAX, "%s", p);
    }
  }
  *n = 0;
  for (int i = 0; i < k; i++) {
    snprintf(imgs[*n].path, PATH_MAX, "%.4000s", list[i]);
    char e[256] = "";
    int rc = gg_image_load(list[i], &imgs[*n].img, e, sizeof e);
    if (rc) {
      snprintf(err, errlen, "cannot read image %.700s: %.200s%s", list[i], e,
               spec && *spec ? "" : " (run scripts/fetch-models.sh, or pass --images)");
      return rc;
    }
    (*n)++;
  }
  if (!*n) {
    snprintf(err, errlen, "no images in '%s'", spec);
    return GG_ENOTFOUND;
  }
  return 0;
}

/* Writes root to path through a temporary file, so a reader never sees half. */
static void write_json(json_t *root, const char *path) {
  if (!path || !*path) return;
  char tmp[PATH_MAX];
  snprintf(tmp, sizeof tmp, "%.4000s.tmp", path);
  if (json_dump_file(root, tmp, JSON_INDENT(2)) || rename(tmp, path))
    fprintf(stderr, "gpuguard check-backend: cannot write %s: %s\n", path, strerror(errno));
}

static void print_model_row(const model_result *r) {
  char err[32], cos[32], bytes[64], ratio[32];
  if (isnan(r->worst_ratio))
    snprintf(err, sizeof err, "NaN");
  else
    snprintf(err, sizeof err, "%.2e", r->worst_ratio);
  if (r->min_cosine > 1.5)
    snprintf(cos, sizeof cos, "-");
  else
    snprintf(cos, sizeof cos, "%.6f", r->min_cosine);
  const gg_engine_dev_mem *dm = r->mem.n_devices > 1 ? &r->mem.dev[1] : NULL;
  if (dm)
    snprintf(bytes, sizeof bytes, "%llu %s %llu", (unsigned long long)dm->predicted,
             dm->predicted == dm->measured ? "==" : "!=", (unsigned long long)dm->measured);
  else
    snprintf(bytes, sizeof bytes, "(no device memory)");
  if (r->dev_ms > 0)
    snprintf(ratio, sizeof ratio, "%.2fx", r->cpu_ms / r->dev_ms);
  else
    snprintf(ratio, sizeof ratio, "-");
  printf("%-14s %-4s %9s %9s %-24s %-4s %4d/%-4d %9.3f %9.3f %7s\n", r->name,
         r->pass ? "PASS" : "FAIL", err, cos, bytes, r->mem.plan[0] ? r->mem.plan : "-", r->ops_dev,
         r->ops_host, r->dev_ms, r->cpu_ms, ratio);
  for (int i = 0; i < r->n_out; i++)
    if (!r->out[i].pass)
      printf("    output %d %s: max |err| %.4g, range %.4g (%.2e of it), cosine %.6f%s\n", i,
             r->out[i].name, r->out[i].max_err, r->out[i].range, r->out[i].ratio, r->out[i].cosine,
             r->out[i].embedding ? " (embedding)" : "");
  if (r->error[0]) printf("    error: %s\n", r->error);
  if (r->ran && !r->bytes_pass && dm) printf("    device bytes predicted != measured\n");
  if (r->ran && !r->ops_pass)
    printf("    ops: %s (%s)\n", r->ops_by,
           r->ops_dev ? "host ops with --all-on-device" : "none on the device");
  fflush(stdout);
}

int gg_cli_check_backend(int argc, char **argv) {
  check_opts o;
  memset(&o, 0, sizeof o);
  static const char usage[] =
      "Usage: gpuguard check-backend --device SPEC [options]\n\n"
      "Checks a device's engine backend against the CPU backend in one process. For each\n"
      "model and each image it runs a CPU session and a session in the device's pool and\n"
      "reports per model: the worst |device - cpu| of each output as a fraction of the\n"
      "CPU output's range (pass <= 1e-3), the cosine of the face embeddings (mobilefacenet,\n"
      "faceres: pass >= 0.9999), the device bytes predicted vs measured (pass when equal),\n"
      "the plan (fast/lean), ops on the device/host, and the median run time on the device\n"
      "and on the CPU (first image, --runs after --warmup) with the ratio cpu/device.\n"
      "--fault-checks adds: a pool budget below the fast plan (must give the lean plan and\n"
      "match), a device filled by another process (must fail with GG_EDEV_OOM, then serve\n"
      "again), a worker recycle after a sticky error (sim only: guard fault injection).\n"
      "Exit status: 0 when everything passed (SKIPs are not failures), 1 otherwise, 2 for\n"
      "bad options. scripts/gpu-verify.sh runs it on a GPU and writes docs/gpu-runs/.\n\n";
  int rc = gg_opts_cli("check-backend", usage, k_check_opts, &o, argc, argv);
  if (rc >= 0) return rc;
  if (o.runs < 1 || o.runs > 100000 || o.warmup < 0 || o.warmup > 1000 || o.threads < 1 ||
      o.threads > 256 || !(o.perturb >= 0)) {
    fprintf(stderr, "gpuguard check-backend: --runs 1..100000, --warmup 0..1000, --threads "
                    "1..256, --perturb >= 0\n");
    return 2;
  }
  if (strcmp(o.oom_hog, "auto") && strcmp(o.oom_hog, "inline") && strcmp(o.oom_hog, "process")) {
    fprintf(stderr, "gpuguard check-backend: --oom-hog must be auto, inline or process\n");
    return 2;
  }
  if (o.hog) return hog_main(&o);
  uint64_t t_start = gg_now_ns();
  gg_log_set_level(GG_LOG_ERROR);
  if (*o.models) setenv("GPUGUARD_MODELS_DIR", o.models, 1);
  char names_buf[1024];
  const char *names[CHECK_MAX_MODELS];
  int n_models = 0;
  snprintf(names_buf, sizeof names_buf, "%s", o.only);
  char *save = NULL;
  for (char *p = strtok_r(names_buf, ",", &save); p && n_models < CHECK_MAX_MODELS;
       p = strtok_r(NULL, ",", &save))
    names[n_models++] = p;
  if (!n_models) {
    fprintf(stderr, "gpuguard check-backend: --only names no model\n");
    return 2;
  }
  static check_image imgs[CHECK_MAX_IMAGES];
  int n_img = 0;
  char err[1024] = "";
  json_t *root =
      json_pack("{s:s,s:s,s:i,s:i,s:i,s:I,s:f,s:f}", "schema", "gpuguard.check-backend/1", "device",
                o.device, "runs", o.runs, "warmup", o.warmup, "threads", o.threads, "budget",
                (json_int_t)o.budget, "err_tolerance", CHECK_ERR_TOL, "cosine_min", CHECK_COS_MIN);
  gg_device *dev = NULL;
  int failed = 0;
  if ((rc = load_images(o.images, imgs, &n_img, err, sizeof err))) {
    fprintf(stderr, "gpuguard check-backend: %s\n", err);
    json_object_set_new(root, "error", json_string(err));
    failed = 1;
  } else if ((rc = gg_device_open(o.device, &dev))) {
    snprintf(err, sizeof err, "cannot open device %s: %s (%s); 'gpuguard doctor' says why",
             o.device, gg_strerror(rc), gg_err_name(rc));
    fprintf(stderr, "gpuguard check-backend: %s\n", err);
    json_object_set_new(root, "error", json_string(err));
    failed = 1;
  }
  json_t *jimgs = json_array();
  for (int i = 0; i < n_img; i++)
    json_array_append_new(jimgs, json_string(imgs[i].path));
  json_object_set_new(root, "images", jimgs);
  json_t *jmodels = json_array();
  json_object_set_new(root, "models", jmodels);
  if (dev) {
    gg_device_info info;
    memset(&info, 0, sizeof info);
    gg_device_get_info(dev, &info);
    json_object_set_new(
        root, "device_info",
        json_pack("{s:s,s:s,s:s,s:s,s:I,s:I,s:i,s:i}", "name", info.name, "description",
                  info.description, "vendor", info.vendor, "driver_version", info.driver_version,
                  "total_mem", (json_int_t)info.total_mem, "free_mem", (json_int_t)info.free_mem,
                  "compute_major", info.compute_major, "compute_minor", info.compute_minor));
    printf("gpuguard check-backend: %s (%s), %d model(s) x %d image(s); timing: median of %d "
           "run(s) after %d warm-up, %d CPU thread(s)\n"
           "pass: max |device - cpu| <= %g x the CPU output's range, embedding cosine >= %g, "
           "device bytes predicted == measured\n\n",
           o.device, info.description, n_models, n_img, o.runs, o.warmup, o.threads, CHECK_ERR_TOL,
           CHECK_COS_MIN);
    printf("%-14s %-4s %9s %9s %-24s %-4s %9s %9s %9s %7s\n", "model", "", "err/range", "cosine",
           "device bytes pred/meas", "plan", "ops d/h", "device ms", "cpu ms", "cpu/dev");
    fflush(stdout);
  }
  for (int i = 0; dev && i < n_models; i++) {
    model_result r;
    if (!check_model(names[i], dev, &o, imgs, n_img, &r)) failed = 1;
    print_model_row(&r);
    json_array_append_new(jmodels, model_json(&r));
    json_object_set_new(root, "wall_s", json_real(ms_since(t_start) / 1e3));
    write_json(root, o.json);
  }
  if (dev && o.fault_checks) {
    json_t *jf = json_array();
    json_object_set_new(root, "fault_checks", jf);
    printf("\nfault checks on %s:\n", o.device);
    fflush(stdout);
    for (int k = 0; k < 3; k++) {
      fault_result f;
      memset(&f, 0, sizeof f);
      if (k == 0) fault_lean(dev, &o, names, n_models, &imgs[0].img, &f);
      if (k == 1) fault_oom(dev, &o, names[0], &imgs[0].img, &f);
      if (k == 2) fault_sticky(&o, names[0], &imgs[0].img, &f);
      failed |= f.status == FC_FAIL;
      printf("  %-24s %s  %s\n", f.name, k_fc_names[f.status], f.reason);
      fflush(stdout);
      json_t *e = json_pack("{s:s,s:s,s:s}", "name", f.name, "status", k_fc_names[f.status],
                            "reason", f.reason);
      if (f.detail) json_object_set_new(e, "detail", f.detail);
      json_array_append_new(jf, e);
      json_object_set_new(root, "wall_s", json_real(ms_since(t_start) / 1e3));
      write_json(root, o.json);
    }
  }
  double wall = ms_since(t_start) / 1e3;
  json_object_set_new(root, "pass", json_boolean(!failed));
  json_object_set_new(root, "wall_s", json_real(wall));
  write_json(root, o.json);
  json_decref(root);
  printf("\n%s in %.1f s%s%s\n", failed ? "FAILED" : "all passed", wall,
         *o.json ? "; JSON in " : "", o.json);
  for (int i = 0; i < n_img; i++)
    gg_image_free(&imgs[i].img);
  gg_device_free(dev);
  return failed ? 1 : 0;
}
