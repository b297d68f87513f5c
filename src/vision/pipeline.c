/* The recognition pipeline: nanodet persons, BlazeFace faces inside them,
 * the quality gate, faceres embeddings and the optional extras, with every
 * model run through an injected runner (docs/pipeline.md). */
#include "gpuguard/pipeline.h"

#include "gpuguard/catalog.h"
#include "gpuguard/core.h"
#include "gpuguard/engine.h"
#include "gpuguard/error.h"
#include "gpuguard/log.h"
#include "vision/face.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_OUTS 8

/* ------------------------------------------------------------ model specs */

/* How an image is fed to a model the pipeline runs. Catalog models come
 * from the catalog; the variants below (other embedders and detectors of the
 * same package, for `embedder=` experiments) live here. */
typedef struct model_spec {
  int size; /* square input side */
  int nchw; /* 1: [1,3,S,S] */
  float scale, offset;
} model_spec;

static const struct {
  const char *name;
  model_spec spec;
} k_local_models[] = {
    {"faceres-deep", {224, 0, 1.0f, 0.0f}},
    {"mobileface", {112, 0, 1.0f, 0.0f}},
    {"blazeface-front", {128, 0, 1.0f / 127.5f, -1.0f}},
    {"blazeface-back", {256, 0, 1.0f / 127.5f, -1.0f}},
};

static int model_spec_for(const char *name, model_spec *s) {
  const gg_model_entry *e = gg_catalog_find(name);
  if (e) {
    s->size = e->pp.width;
    s->nchw = e->pp.nchw;
    s->scale = e->pp.scale;
    s->offset = e->pp.offset;
    return 0;
  }
  for (size_t i = 0; i < sizeof k_local_models / sizeof k_local_models[0]; i++)
    if (!strcmp(name, k_local_models[i].name)) {
      *s = k_local_models[i].spec;
      return 0;
    }
  return GG_ENOTFOUND;
}

/* ------------------------------------------------------------ engine runner */

#define ENGINE_MAX_SESSIONS 16

typedef struct engine_slot {
  char name[64];
  int64_t shape[4];
  int ndim;
  gg_model *model;
  gg_session *sess;
} engine_slot;

struct gg_pipeline_engine {
  char models_dir[512];
  int threads;
  pthread_mutex_t mu;
  int n;
  engine_slot slots[ENGINE_MAX_SESSIONS];
};

int gg_pipeline_engine_new(const char *models_dir, int threads, gg_pipeline_engine **out) {
  *out = NULL;
  gg_pipeline_engine *e = calloc(1, sizeof *e);
  if (!e) return GG_ENOMEM;
  if (models_dir) snprintf(e->models_dir, sizeof e->models_dir, "%s", models_dir);
  e->threads = threads;
  pthread_mutex_init(&e->mu, NULL);
  *out = e;
  return 0;
}

void gg_pipeline_engine_free(gg_pipeline_engine *e) {
  if (!e) return;
  for (int i = 0; i < e->n; i++) {
    gg_session_free(e->slots[i].sess);
    gg_model_free(e->slots[i].model);
  }
  pthread_mutex_destroy(&e->mu);
  free(e);
}

int gg_pipeline_engine_sessions(const gg_pipeline_engine *e) {
  return e ? e->n : 0;
}

static int file_ok(char *out, size_t len, const char *a, const char *b, const char *c) {
  int n = snprintf(out, len, "%s%s%s", a, b, c);
  return n > 0 && (size_t)n < len && access(out, R_OK) == 0;
}

/* A model name to its model.json: the catalog, else the package. */
static int engine_resolve(const gg_pipeline_engine *e, const char *name, char *out, size_t len) {
  const gg_model_entry *ce = gg_catalog_find(name);
  if (!e->models_dir[0])
    return ce ? gg_catalog_path(ce, NULL, out, len) : gg_model_resolve(name, out, len);
  if (ce && !gg_catalog_path(ce, e->models_dir, out, len)) return 0;
  char dir[600];
  snprintf(dir, sizeof dir, "%s/", e->models_dir);
  if (file_ok(out, len, dir, name, ".json")) return 0;
  snprintf(dir, sizeof dir, "%s/human-models-3.0.4/models/", e->models_dir);
  return file_ok(out, len, dir, name, ".json") ? 0 : GG_ENOTFOUND;
}

static int engine_slot_get(gg_pipeline_engine *e, const char *model, const gg_gtensor *in,
                           engine_slot **out, char *err, size_t errlen) {
  for (int i = 0; i < e->n; i++) {
    engine_slot *s = &e->slots[i];
    if (!strcmp(s->name, model) && s->ndim == in->ndim &&
        !memcmp(s->shape, in->dims, sizeof(int64_t) * (size_t)in->ndim)) {
      *out = s;
      return 0;
    }
  }
  if (in->ndim != 4)
    return gg_errf(err, errlen, GG_EINVAL, "input must be 4-D, got %d-D", in->ndim);
  if (e->n == ENGINE_MAX_SESSIONS)
    return gg_errf(err, errlen, GG_EBUSY, "engine runner holds %d sessions already",
                   ENGINE_MAX_SESSIONS);
  char path[1024];
  int rc = engine_resolve(e, model, path, sizeof path);
  if (rc)
    return gg_errf(err, errlen, rc, "not installed (looked for %s); run scripts/fetch-models.sh",
                   path);
  engine_slot *s = &e->slots[e->n];
  memset(s, 0, sizeof *s);
  rc = gg_model_load(path, &s->model, err, errlen);
  if (rc) return rc;
  gg_session_opts so = {e->threads, GG_ENGINE_AUTO, 0};
  rc = gg_session_new(s->model, in->dims, 4, &so, &s->sess, err, errlen);
  if (rc) {
    gg_model_free(s->model);
    s->model = NULL;
    return rc;
  }
  snprintf(s->name, sizeof s->name, "%s", model);
  memcpy(s->shape, in->dims, sizeof s->shape);
  s->ndim = 4;
  e->n++;
  *out = s;
  return 0;
}

static int engine_run(void *ctx, const char *model, const gg_gtensor *in, gg_gtensor *outs,
                      int max_outs, int *n_outs, char *device, size_t device_len, char *err,
                      size_t errlen) {
  gg_pipeline_engine *e = ctx;
  *n_outs = 0;
  if (device && device_len) snprintf(device, device_len, "cpu");
  pthread_mutex_lock(&e->mu);
  engine_slot *s = NULL;
  int rc = engine_slot_get(e, model, in, &s, err, errlen);
  if (!rc) {
    gg_tensor_info ii;
    float *x = gg_session_input(s->sess, 0, &ii);
    memcpy(x, in->data, sizeof(float) * gg_gtensor_count(in));
    rc = gg_session_run(s->sess, err, errlen);
  }
  int n = rc ? 0 : gg_model_n_outputs(s->model);
  for (int i = 0; i < n && i < max_outs; i++) {
    gg_tensor_info info;
    const float *v = gg_session_output(s->sess, i, &info);
    gg_gtensor *t = &outs[i];
    memset(t, 0, sizeof *t);
    t->ndim = info.ndim < GG_GUARD_MAX_DIMS ? info.ndim : GG_GUARD_MAX_DIMS;
    for (int d = 0; d < t->ndim; d++)
      t->dims[d] = info.shape[d];
    size_t cnt = (size_t)gg_session_output_elems(s->sess, i);
    t->data = malloc(sizeof(float) * (cnt ? cnt : 1));
    if (!t->data || !v) {
      for (int j = 0; j <= i; j++)
        gg_gtensor_release(&outs[j]);
      rc = gg_errf(err, errlen, GG_ENOMEM, "no memory for output %d", i);
      break;
    }
    memcpy(t->data, v, sizeof(float) * cnt);
    *n_outs = i + 1;
  }
  if (rc) *n_outs = 0;
  pthread_mutex_unlock(&e->mu);
  return rc;
}

gg_pipeline_runner gg_pipeline_engine_runner(gg_pipeline_engine *e) {
  gg_pipeline_runner r = {engine_run, e};
  return r;
}

/* ------------------------------------------------------------ guard runner */

static int guard_run(void *ctx, const char *model, const gg_gtensor *in, gg_gtensor *outs,
                     int max_outs, int *n_outs, char *device, size_t device_len, char *err,
                     size_t errlen) {
  gg_guard_result res;
  memset(&res, 0, sizeof res);
  *n_outs = 0;
  int rc = gg_guard_infer(ctx, model, in, &res);
  if (device && device_len) snprintf(device, device_len, "%s", res.device);
  if (rc) {
    /* The guard logged the chain's story; this names the outcome. */
    gg_errf(err, errlen, rc, "%s (%d run attempt(s), %d device failure(s)%s%s)", gg_strerror(rc),
            res.attempts, res.failures, res.device[0] ? ", last on " : "", res.device);
    gg_guard_result_release(&res);
    return rc;
  }
  int n = res.n_outputs < max_outs ? res.n_outputs : max_outs;
  for (int i = 0; i < n; i++) {
    outs[i] = res.outputs[i]; /* moved: the result no longer owns it */
    res.outputs[i].data = NULL;
  }
  *n_outs = n;
  gg_guard_result_release(&res);
  return 0;
}

gg_pipeline_runner gg_pipeline_runner_guard(gg_guard *g) {
  gg_pipeline_runner r = {guard_run, g};
  return r;
}

/* ------------------------------------------------------------ names */

static const char *const k_coco[80] = {"person",        "bicycle",      "car",
                                       "motorcycle",    "airplane",     "bus",
                                       "train",         "truck",        "boat",
                                       "traffic light", "fire hydrant", "stop sign",
                                       "parking meter", "bench",        "bird",
                                       "cat",           "dog",          "horse",
                                       "sheep",         "cow",          "elephant",
                                       "bear",          "zebra",        "giraffe",
                                       "backpack",      "umbrella",     "handbag",
                                       "tie",           "suitcase",     "frisbee",
                                       "skis",          "snowboard",    "sports ball",
                                       "kite",          "baseball bat", "baseball glove",
                                       "skateboard",    "surfboard",    "tennis racket",
                                       "bottle",        "wine glass",   "cup",
                                       "fork",          "knife",        "spoon",
                                       "bowl",          "banana",       "apple",
                                       "sandwich",      "orange",       "broccoli",
                                       "carrot",        "hot dog",      "pizza",
                                       "donut",         "cake",         "chair",
                                       "couch",         "potted plant", "bed",
                                       "dining table",  "toilet",       "tv",
                                       "laptop",        "mouse",        "remote",
                                       "keyboard",      "cell phone",   "microwave",
                                       "oven",          "toaster",      "sink",
                                       "refrigerator",  "book",         "clock",
                                       "vase",          "scissors",     "teddy bear",
                                       "hair drier",    "toothbrush"};

const char *gg_object_label(int cls) {
  return cls >= 0 && cls < 80 ? k_coco[cls] : "unknown";
}

const char *gg_face_reject_name(unsigned bit) {
  switch (bit) {
  case GG_FACE_REJECT_SMALL: return "small";
  case GG_FACE_REJECT_EYES: return "eyes_close";
  case GG_FACE_REJECT_BLUR: return "blur";
  case GG_FACE_REJECT_YAW: return "yaw";
  case GG_FACE_REJECT_ROLL: return "roll";
  case GG_FACE_REJECT_SCORE: return "score";
  default: return "unknown";
  }
}

const char *gg_face_reject_format(unsigned mask, char *buf, size_t len) {
  size_t used = 0;
  if (!buf || !len) return buf;
  buf[0] = 0;
  for (int b = 0; b < GG_FACE_REJECT_COUNT; b++)
    if (mask & (1u << b) && used < len) {
      int n =
          snprintf(buf + used, len - used, "%s%s", used ? "," : "", gg_face_reject_name(1u << b));
      if (n > 0) used += (size_t)n;
    }
  return buf;
}

const char *gg_pipeline_stage_name(gg_pipeline_stage s) {
  static const char *const names[GG_STAGE_COUNT] = {"persons", "faces",      "quality",
                                                    "embed",   "attributes", "liveness"};
  return (unsigned)s < GG_STAGE_COUNT ? names[s] : "unknown";
}

/* ------------------------------------------------------------ options */

void gg_face_quality_defaults(gg_face_quality_preset preset, gg_face_quality_opts *o) {
  /* Measured on the 22 sample faces and their blurred and shrunk views:
   * docs/pipeline.md, "Quality thresholds". */
  if (preset == GG_FACE_QUALITY_STRICT) {
    *o = (gg_face_quality_opts){.min_box_px = 112,
                                .min_eye_px = 40,
                                .min_sharpness = 100,
                                .max_yaw_deg = 45,
                                .max_roll_deg = 50,
                                .min_score = 0.6f};
  } else {
    *o = (gg_face_quality_opts){.min_box_px = 40,
                                .min_eye_px = 12,
                                .min_sharpness = 15,
                                .max_yaw_deg = 60,
                                .max_roll_deg = 60,
                                .min_score = 0.5f};
  }
}

void gg_pipeline_opts_default(gg_pipeline_opts *o) {
  *o = (gg_pipeline_opts){.object_detector = "nanodet",
                          .face_detector = "blazeface",
                          .embedder = GG_FACE_EMBED_MODEL,
                          .object_min_score = 0.25f,
                          .object_iou = 0.5f,
                          .face_min_score = 0.5f,
                          .person_margin = 0.1f,
                          .rate_per_s = 0,
                          .rate_burst = 0};
}

void gg_pipeline_request_default(gg_pipeline_request *r) {
  memset(r, 0, sizeof *r);
  r->persons_first = 1;
  r->embed = 1;
  gg_face_quality_defaults(GG_FACE_QUALITY_LOOSE, &r->quality);
}

/* ------------------------------------------------------------ pipeline */

#define MAX_STREAMS 256

typedef struct bucket {
  char id[64];
  double tokens;
  uint64_t last_ns;
} bucket;

struct gg_pipeline {
  gg_pipeline_runner runner;
  gg_pipeline_opts o;
  char object_detector[64], face_detector[64], embedder[64];
  model_spec od, fd, em;
  gg__face_embed_prep prep;
  pthread_mutex_t mu; /* the buckets */
  int n_buckets;
  bucket buckets[MAX_STREAMS];
};

int gg_pipeline_new(const gg_pipeline_runner *runner, const gg_pipeline_opts *o, gg_pipeline **out,
                    char *err, size_t errlen) {
  *out = NULL;
  if (!runner || !runner->run) return gg_errf(err, errlen, GG_EINVAL, "pipeline: no runner");
  gg_pipeline *p = calloc(1, sizeof *p);
  if (!p) return gg_errf(err, errlen, GG_ENOMEM, "pipeline: out of memory");
  p->runner = *runner;
  if (o)
    p->o = *o;
  else
    gg_pipeline_opts_default(&p->o);
  gg_pipeline_opts def;
  gg_pipeline_opts_default(&def);
  snprintf(p->object_detector, sizeof p->object_detector, "%s",
           p->o.object_detector ? p->o.object_detector : def.object_detector);
  snprintf(p->face_detector, sizeof p->face_detector, "%s",
           p->o.face_detector ? p->o.face_detector : def.face_detector);
  snprintf(p->embedder, sizeof p->embedder, "%s", p->o.embedder ? p->o.embedder : def.embedder);
  const char *names[3] = {p->object_detector, p->face_detector, p->embedder};
  model_spec *specs[3] = {&p->od, &p->fd, &p->em};
  for (int i = 0; i < 3; i++)
    if (model_spec_for(names[i], specs[i])) {
      int rc = gg_errf(err, errlen, GG_EINVAL,
                       "pipeline: model '%s' has no known input (catalog or pipeline.c's list)",
                       names[i]);
      free(p);
      return rc;
    }
  /* faceres: the measured default (docs/face-embedder.md); the mobile
   * embedders get the same 0..255 range in RGB, their best row there. */
  if (!strncmp(p->embedder, "faceres", 7))
    p->prep = (gg__face_embed_prep){GG_FACE_EMBED_SCALE, GG_FACE_EMBED_OFFSET, GG_FACE_EMBED_BGR};
  else
    p->prep = (gg__face_embed_prep){1.0f, 0.0f, 0};
  /* Over the catalog's convention (human's): the measured one. */
  p->em.scale = p->prep.scale;
  p->em.offset = p->prep.offset;
  pthread_mutex_init(&p->mu, NULL);
  *out = p;
  return 0;
}

void gg_pipeline_free(gg_pipeline *p) {
  if (!p) return;
  pthread_mutex_destroy(&p->mu);
  free(p);
}

int gg_pipeline_admit(gg_pipeline *p, const char *stream, uint64_t now_ns) {
  if (!stream || !(p->o.rate_per_s > 0)) return 0;
  double burst = p->o.rate_burst > 0 ? p->o.rate_burst : fmax(1.0, p->o.rate_per_s);
  pthread_mutex_lock(&p->mu);
  bucket *b = NULL;
  for (int i = 0; i < p->n_buckets && !b; i++)
    if (!strncmp(p->buckets[i].id, stream, sizeof b->id - 1)) b = &p->buckets[i];
  if (!b) {
    if (p->n_buckets < MAX_STREAMS) {
      b = &p->buckets[p->n_buckets++];
    } else { /* the stream idle longest makes room */
      b = &p->buckets[0];
      for (int i = 1; i < p->n_buckets; i++)
        if (p->buckets[i].last_ns < b->last_ns) b = &p->buckets[i];
    }
    snprintf(b->id, sizeof b->id, "%s", stream);
    b->tokens = burst;
    b->last_ns = now_ns;
  }
  if (now_ns > b->last_ns)
    b->tokens = fmin(burst, b->tokens + (double)(now_ns - b->last_ns) * 1e-9 * p->o.rate_per_s);
  b->last_ns = now_ns > b->last_ns ? now_ns : b->last_ns;
  int rc = 0;
  if (b->tokens >= 1.0)
    b->tokens -= 1.0;
  else
    rc = GG_EBUSY;
  pthread_mutex_unlock(&p->mu);
  return rc;
}

void gg_pipeline_result_release(gg_pipeline_result *r) {
  if (!r) return;
  for (int i = 0; i < GG_PIPELINE_MAX_FACES; i++)
    free(r->faces[i].embedding);
  memset(r, 0, sizeof *r);
}

/* One model call: the input built by the caller, outputs into outs. Counts
 * the run, keeps the device the runner reports, and on failure names the
 * model in err and in r->failed_model. */
static int call_model(gg_pipeline *p, const char *model, const gg_gtensor *in, gg_gtensor *outs,
                      int *n_outs, gg_pipeline_result *r, char *err, size_t errlen) {
  char dev[128] = "", e2[384] = "";
  *n_outs = 0;
  if (r) r->model_runs++;
  int rc = p->runner.run(p->runner.ctx, model, in, outs, MAX_OUTS, n_outs, dev, sizeof dev, e2,
                         sizeof e2);
  if (dev[0] && r) snprintf(r->device, sizeof r->device, "%s", dev);
  if (rc) {
    *n_outs = 0;
    if (r) snprintf(r->failed_model, sizeof r->failed_model, "%s", model);
    gg_log(GG_LOG_WARN, "pipeline", "model '%s' failed: %s (%s)", model, e2, gg_err_name(rc));
    return gg_errf(err, errlen, rc, "model '%s' failed: %s (%s)", model,
                   e2[0] ? e2 : gg_strerror(rc), gg_err_name(rc));
  }
  if (*n_outs < 1) return gg_errf(err, errlen, GG_EPARSE, "model '%s' returned no outputs", model);
  return 0;
}

static void release_outs(gg_gtensor *outs, int n) {
  for (int i = 0; i < n; i++)
    gg_gtensor_release(&outs[i]);
}

static double ms_since(uint64_t t0) {
  return (double)(gg_now_ns() - t0) / 1e6;
}

/* Builds a square model input from img (stretched), value = px * scale +
 * offset, NHWC or NCHW. in->data malloc'd. */
static int image_input(const gg_image *img, const model_spec *s, gg_gtensor *in) {
  memset(in, 0, sizeof *in);
  in->ndim = 4;
  in->dims[0] = 1;
  if (s->nchw)
    in->dims[1] = 3, in->dims[2] = s->size, in->dims[3] = s->size;
  else
    in->dims[1] = s->size, in->dims[2] = s->size, in->dims[3] = 3;
  in->data = malloc(sizeof(float) * gg_gtensor_count(in));
  if (!in->data) return GG_ENOMEM;
  gg_preprocess pp = {.width = s->size, .height = s->size, .scale = s->scale, .offset = s->offset, .nchw = s->nchw, .why = "pipeline"};
  int rc = gg_image_to_tensor(img, &pp, in->data);
  if (rc) gg_gtensor_release(in);
  return rc;
}

/* ------------------------------------------------------------ nanodet */

static float obj_iou(const gg_object *a, const gg_object *b) {
  float ix = fminf(a->x1, b->x1) - fmaxf(a->x0, b->x0);
  float iy = fminf(a->y1, b->y1) - fmaxf(a->y0, b->y0);
  if (ix <= 0 || iy <= 0) return 0;
  float inter = ix * iy;
  float u = (a->x1 - a->x0) * (a->y1 - a->y0) + (b->x1 - b->x0) * (b->y1 - b->y0) - inter;
  return u > 0 ? inter / u : 0;
}

static int cmp_obj_desc(const void *pa, const void *pb) {
  const gg_object *a = pa, *b = pb;
  return a->score < b->score ? 1 : a->score > b->score ? -1 : a->cls - b->cls;
}

/* Expected distance of a side from its 11-bin distribution (softmax). */
static float dfl_side(const float *v, int bins) {
  float mx = v[0];
  for (int i = 1; i < bins; i++)
    mx = fmaxf(mx, v[i]);
  double s = 0, e = 0;
  for (int i = 0; i < bins; i++) {
    double w = exp((double)(v[i] - mx));
    s += w;
    e += w * i;
  }
  return (float)(e / s);
}

/* Decodes nanodet's outputs: per stride level one [1,G*G,80] class-score
 * output and one [1,G*G,4*B] box-distribution output (B bins per side:
 * left, top, right, bottom). Candidates scoring >= min_score (classes all,
 * or person only), per-class NMS, best first, mapped to the source by
 * (sx, sy). */
static int nanodet_decode(const gg_gtensor *outs, int n, int input, float sx, float sy, float W,
                          float H, float min_score, float iou, int all, gg_object *out, int max) {
  int cap = 4096, nc = 0;
  gg_object *cand = malloc(sizeof *cand * (size_t)cap);
  if (!cand) return GG_ENOMEM;
  int levels = 0;
  for (int i = 0; i < n; i++) {
    const gg_gtensor *sc = &outs[i];
    if (sc->ndim != 3 || sc->dims[2] != 80) continue;
    int64_t rows = sc->dims[1];
    const gg_gtensor *bx = NULL;
    for (int j = 0; j < n && !bx; j++)
      if (outs[j].ndim == 3 && outs[j].dims[1] == rows && outs[j].dims[2] != 80 &&
          outs[j].dims[2] % 4 == 0)
        bx = &outs[j];
    int grid = (int)lround(sqrt((double)rows));
    if (!bx || (int64_t)grid * grid != rows) continue;
    levels++;
    int bins = (int)(bx->dims[2] / 4);
    float stride = (float)input / (float)grid;
    int ncls = all ? 80 : 1;
    for (int64_t c = 0; c < rows; c++) {
      const float *s = sc->data + c * 80;
      float box[4] = {-1, 0, 0, 0};
      for (int k = 0; k < ncls; k++) {
        if (!(s[k] >= min_score)) continue;
        if (box[0] < 0)
          for (int side = 0; side < 4; side++)
            box[side] = dfl_side(bx->data + c * bx->dims[2] + side * bins, bins) * stride;
        if (nc == cap) {
          gg_object *g = realloc(cand, sizeof *cand * (size_t)cap * 2);
          if (!g) {
            free(cand);
            return GG_ENOMEM;
          }
          cand = g, cap *= 2;
        }
        float cx = ((float)(c % grid) + 0.5f) * stride, cy = ((float)(c / grid) + 0.5f) * stride;
        gg_object *o = &cand[nc++];
        o->x0 = fmaxf(0, (cx - box[0]) * sx);
        o->y0 = fmaxf(0, (cy - box[1]) * sy);
        o->x1 = fminf(W, (cx + box[2]) * sx);
        o->y1 = fminf(H, (cy + box[3]) * sy);
        o->score = s[k];
        o->cls = k;
        o->label = gg_object_label(k);
      }
    }
  }
  if (!levels) {
    free(cand);
    return GG_EUNSUPPORTED;
  }
  qsort(cand, (size_t)nc, sizeof *cand, cmp_obj_desc);
  int m = 0;
  for (int i = 0; i < nc && m < max; i++) {
    int dup = 0;
    for (int k = 0; k < m && !dup; k++)
      dup = out[k].cls == cand[i].cls && obj_iou(&out[k], &cand[i]) > iou;
    if (!dup) out[m++] = cand[i];
  }
  free(cand);
  return m;
}

static int detect_objects(gg_pipeline *p, const gg_image *img, int all, gg_object *out, int max,
                          gg_pipeline_result *r, char *err, size_t errlen) {
  gg_gtensor in, outs[MAX_OUTS];
  int n = 0, rc = image_input(img, &p->od, &in);
  if (rc)
    return gg_errf(err, errlen, rc, "pipeline: cannot prepare the %s input", p->object_detector);
  rc = call_model(p, p->object_detector, &in, outs, &n, r, err, errlen);
  gg_gtensor_release(&in);
  if (rc) return rc;
  float sx = (float)img->width / (float)p->od.size, sy = (float)img->height / (float)p->od.size;
  rc = nanodet_decode(outs, n, p->od.size, sx, sy, (float)img->width, (float)img->height,
                      p->o.object_min_score, p->o.object_iou, all, out, max);
  release_outs(outs, n);
  if (rc < 0)
    return gg_errf(err, errlen, rc,
                   "model '%s': outputs are not nanodet's (want [1,G*G,80] scores and "
                   "[1,G*G,4*bins] boxes per level)",
                   p->object_detector);
  return rc;
}

int gg_pipeline_detect_objects(gg_pipeline *p, const gg_image *img, int all_classes, gg_object *out,
                               int max, char *device, size_t device_len, char *err, size_t errlen) {
  if (!img || !img->rgb || img->width < 1 || img->height < 1 || !out || max < 0)
    return gg_errf(err, errlen, GG_EINVAL, "pipeline: no image");
  gg_pipeline_result *r = calloc(1, sizeof *r);
  if (!r) return GG_ENOMEM;
  int rc = detect_objects(p, img, all_classes, out, max, r, err, errlen);
  if (device && device_len) snprintf(device, device_len, "%s", r->device);
  free(r);
  return rc;
}

/* ------------------------------------------------------------ faces */

/* BlazeFace on the region (x0, y0, x1, y1) of img (clamped to it); faces
 * in source pixels appended to out (at most max). Returns the count. */
static int detect_faces_in(gg_pipeline *p, const gg_image *img, float rx0, float ry0, float rx1,
                           float ry1, gg__face_box *out, int max, gg_pipeline_result *r, char *err,
                           size_t errlen) {
  int x0 = (int)fmaxf(0, floorf(rx0)), y0 = (int)fmaxf(0, floorf(ry0));
  int x1 = (int)fminf((float)img->width, ceilf(rx1)),
      y1 = (int)fminf((float)img->height, ceilf(ry1));
  if (x1 - x0 < 8 || y1 - y0 < 8) return 0;
  gg_image crop = {0};
  const gg_image *src = img;
  int rc = 0;
  if (x0 || y0 || x1 != img->width || y1 != img->height) {
    rc = gg__image_crop(img, x0, y0, x1 - x0, y1 - y0, &crop);
    if (rc) return gg_errf(err, errlen, rc, "pipeline: cannot crop a person");
    src = &crop;
  }
  int S = p->fd.size;
  gg_gtensor in = {.ndim = 4, .dims = {1, S, S, 3}};
  in.data = malloc(sizeof(float) * (size_t)S * (size_t)S * 3);
  float map[4];
  rc = in.data ? gg__face_detect_input(src, S, in.data, map) : GG_ENOMEM;
  gg_image_free(&crop);
  if (rc) {
    free(in.data);
    return gg_errf(err, errlen, rc, "pipeline: cannot prepare the %s input", p->face_detector);
  }
  gg_gtensor outs[MAX_OUTS];
  int n = 0;
  rc = call_model(p, p->face_detector, &in, outs, &n, r, err, errlen);
  free(in.data);
  if (rc) return rc;
  const float *data[MAX_OUTS];
  int64_t shape[MAX_OUTS][3];
  int k = 0;
  for (int i = 0; i < n; i++)
    if (outs[i].ndim == 3) {
      data[k] = outs[i].data;
      memcpy(shape[k], outs[i].dims, sizeof shape[k]);
      k++;
    }
  float *logits = malloc(sizeof(float) * GG_FACE_ANCHORS * 17);
  if (!logits) {
    release_outs(outs, n);
    return GG_ENOMEM;
  }
  float *regs = logits + GG_FACE_ANCHORS;
  rc = gg__blazeface_gather(k, data, (const int64_t(*)[3])shape, logits, regs);
  release_outs(outs, n);
  if (rc) {
    free(logits);
    return gg_errf(err, errlen, rc, "model '%s': outputs are not BlazeFace's", p->face_detector);
  }
  map[2] += (float)x0;
  map[3] += (float)y0;
  gg__face_detect_opts fo = {p->o.face_min_score, 0.3f, 1};
  rc = gg__blazeface_decode(logits, regs, S, map, &fo, out, max);
  free(logits);
  return rc;
}

static float box_iou4(const gg__face_box *a, const gg__face_box *b) {
  float ix = fminf(a->x1, b->x1) - fmaxf(a->x0, b->x0);
  float iy = fminf(a->y1, b->y1) - fmaxf(a->y0, b->y0);
  if (ix <= 0 || iy <= 0) return 0;
  float inter = ix * iy;
  float u = (a->x1 - a->x0) * (a->y1 - a->y0) + (b->x1 - b->x0) * (b->y1 - b->y0) - inter;
  return u > 0 ? inter / u : 0;
}

/* ------------------------------------------------------------ quality */

/* Variance of the 4-neighbour Laplacian of the grey image (interior). */
static float laplacian_variance(const gg_image *g) {
  int w = g->width, h = g->height;
  if (w < 3 || h < 3) return 0;
  float *grey = malloc(sizeof(float) * (size_t)w * (size_t)h);
  if (!grey) return 0;
  for (size_t i = 0; i < (size_t)w * (size_t)h; i++)
    grey[i] = 0.299f * g->rgb[3 * i] + 0.587f * g->rgb[3 * i + 1] + 0.114f * g->rgb[3 * i + 2];
  double s = 0, ss = 0;
  size_t n = 0;
  for (int y = 1; y < h - 1; y++)
    for (int x = 1; x < w - 1; x++) {
      size_t i = (size_t)y * (size_t)w + (size_t)x;
      double l =
          grey[i - 1] + grey[i + 1] + grey[i - (size_t)w] + grey[i + (size_t)w] - 4.0 * grey[i];
      s += l, ss += l * l, n++;
    }
  free(grey);
  double m = s / (double)n;
  return (float)(ss / (double)n - m * m);
}

int gg_face_quality_measure(const gg_image *img, const float box[4], float score,
                            const float kp[6][2], gg_face_quality *q) {
  memset(q, 0, sizeof *q);
  if (!img || !img->rgb || !box || !kp) return GG_EINVAL;
  gg__face_box f;
  f.x0 = box[0], f.y0 = box[1], f.x1 = box[2], f.y1 = box[3], f.score = score;
  memcpy(f.kp, kp, sizeof f.kp);
  q->score = score;
  q->box_px = fminf(f.x1 - f.x0, f.y1 - f.y0);
  const float *l = kp[GG_FACE_KP_EYE_L], *rr = kp[GG_FACE_KP_EYE_R];
  float dx = rr[0] - l[0], dy = rr[1] - l[1];
  q->eye_px = sqrtf(dx * dx + dy * dy);
  q->roll_deg = (float)(atan2(dy, dx) * 180.0 / M_PI);
  /* Yaw: the nose tip's offset from the eyes' midpoint along the eye line,
   * in eye distances (r). The tip stands about 0.55 eye distances in front
   * of the eyes, so r = 0.55 tan(yaw). The ear keypoints would give a
   * longer lever but are not usable: on a turned face the hidden ear's
   * keypoint lands next to the near eye (sample1, first face). A face
   * turned so far that the eyes collapse (gg__face_align_box's profile
   * test) is reported as 90 degrees. */
  float ux = 1, uy = 0;
  if (q->eye_px > 1e-3f) ux = dx / q->eye_px, uy = dy / q->eye_px;
  const float *no = kp[GG_FACE_KP_NOSE];
  float mx = 0.5f * (l[0] + rr[0]), my = 0.5f * (l[1] + rr[1]);
  float off = (no[0] - mx) * ux + (no[1] - my) * uy;
  if (q->eye_px >= GG_FACE_PROFILE_EYES * (f.x1 - f.x0) && dx > 0)
    q->yaw_deg = (float)(atan2(off / q->eye_px, 0.55) * 180.0 / M_PI);
  else
    q->yaw_deg = off < 0 ? -90.0f : 90.0f;
  /* Sharpness on the aligned crop, so it does not depend on the face size
   * in the frame (a small face upscaled is blurry, as it should be). */
  const gg__face_align_spec spec = {GG_FACE_ALIGN_EYE_DIST, GG_FACE_ALIGN_EYE_Y};
  gg_image crop;
  int rc = gg__face_align_box(img, &f, 112, 112, &spec, &crop, NULL);
  if (rc) return rc;
  q->sharpness = laplacian_variance(&crop);
  gg_image_free(&crop);
  return 0;
}

void gg_face_quality_judge(const gg_face_quality_opts *o, gg_face_quality *q) {
  unsigned r = 0;
  if (!(q->box_px >= o->min_box_px)) r |= GG_FACE_REJECT_SMALL;
  if (!(q->eye_px >= o->min_eye_px)) r |= GG_FACE_REJECT_EYES;
  if (!(q->sharpness >= o->min_sharpness)) r |= GG_FACE_REJECT_BLUR;
  if (!(fabsf(q->yaw_deg) <= o->max_yaw_deg)) r |= GG_FACE_REJECT_YAW;
  if (!(fabsf(q->roll_deg) <= o->max_roll_deg)) r |= GG_FACE_REJECT_ROLL;
  if (!(q->score >= o->min_score)) r |= GG_FACE_REJECT_SCORE;
  q->rejected = r;
}

/* ------------------------------------------------------------ embedding */

static const gg_gtensor *largest_output(const gg_gtensor *outs, int n) {
  const gg_gtensor *best = NULL;
  for (int i = 0; i < n; i++)
    if (!best || gg_gtensor_count(&outs[i]) > gg_gtensor_count(best)) best = &outs[i];
  return best;
}

/* faceres's extras: the [1,1] gender sigmoid (male) and the [1,100] age
 * softmax (years = its expectation). Returns 1 when both were found. */
static int faceres_attributes(const gg_gtensor *outs, int n, float *age, float *male) {
  int got = 0;
  for (int i = 0; i < n; i++) {
    size_t c = gg_gtensor_count(&outs[i]);
    if (c == 1) *male = outs[i].data[0], got |= 1;
    if (c == 100) {
      double e = 0;
      for (int k = 0; k < 100; k++)
        e += k * (double)outs[i].data[k];
      *age = (float)e, got |= 2;
    }
  }
  return got == 3;
}

/* Runs `model` on an aligned or framed crop; outputs into outs. */
static int run_crop(gg_pipeline *p, const char *model, const model_spec *s, const gg_image *crop,
                    int bgr, gg_gtensor *outs, int *n, gg_pipeline_result *r, char *err,
                    size_t errlen) {
  gg_gtensor in;
  int rc = image_input(crop, s, &in);
  if (rc) return gg_errf(err, errlen, rc, "pipeline: cannot prepare the %s input", model);
  if (bgr)
    for (size_t i = 0; i < (size_t)s->size * (size_t)s->size; i++) {
      float t = in.data[3 * i];
      in.data[3 * i] = in.data[3 * i + 2];
      in.data[3 * i + 2] = t;
    }
  rc = call_model(p, model, &in, outs, n, r, err, errlen);
  gg_gtensor_release(&in);
  return rc;
}

static int embed_face(gg_pipeline *p, const gg_image *img, const gg__face_box *f,
                      const gg_pipeline_request *rq, gg_face_result *fr, gg_pipeline_result *r,
                      char *err, size_t errlen) {
  const gg__face_align_spec spec = {GG_FACE_ALIGN_EYE_DIST, GG_FACE_ALIGN_EYE_Y};
  gg_image crop;
  int rc = gg__face_align_box(img, f, p->em.size, p->em.size, &spec, &crop, NULL);
  if (rc) return gg_errf(err, errlen, rc, "pipeline: cannot align a face");
  gg_gtensor outs[MAX_OUTS];
  int n = 0;
  uint64_t t0 = gg_now_ns();
  rc = run_crop(p, p->embedder, &p->em, &crop, p->prep.bgr, outs, &n, r, err, errlen);
  r->stage_ms[GG_STAGE_EMBED] += ms_since(t0);
  if (rc) {
    gg_image_free(&crop);
    return rc;
  }
  const gg_gtensor *e = largest_output(outs, n);
  int dim = (int)gg_gtensor_count(e);
  fr->embedding = malloc(sizeof(float) * (size_t)dim);
  if (!fr->embedding) {
    release_outs(outs, n);
    gg_image_free(&crop);
    return gg_errf(err, errlen, GG_ENOMEM, "pipeline: out of memory");
  }
  memcpy(fr->embedding, e->data, sizeof(float) * (size_t)dim);
  gg__vec_l2_normalize(fr->embedding, dim);
  fr->dim = dim;
  if (rq->attributes && !strncmp(p->embedder, "faceres", 7))
    fr->has_attributes = faceres_attributes(outs, n, &fr->age, &fr->male);
  release_outs(outs, n);
  if (rq->attributes && !fr->has_attributes) {
    /* Another embedder: faceres for age and gender, its own run. */
    model_spec fs;
    t0 = gg_now_ns();
    rc = model_spec_for("faceres", &fs);
    if (!rc) {
      gg_image c2;
      rc = gg__face_align_box(img, f, fs.size, fs.size, &spec, &c2, NULL);
      if (!rc) {
        rc = run_crop(p, "faceres", &fs, &c2, GG_FACE_EMBED_BGR, outs, &n, r, err, errlen);
        gg_image_free(&c2);
        if (!rc) {
          fr->has_attributes = faceres_attributes(outs, n, &fr->age, &fr->male);
          release_outs(outs, n);
        }
      }
    }
    r->stage_ms[GG_STAGE_ATTRIBUTES] += ms_since(t0);
  }
  gg_image_free(&crop);
  return rc;
}

static int liveness_face(gg_pipeline *p, const gg_image *img, const gg__face_box *f,
                         gg_face_result *fr, gg_pipeline_result *r, char *err, size_t errlen) {
  static const char *const models[2] = {"antispoof", "liveness"};
  float *dst[2] = {&fr->antispoof, &fr->liveness};
  for (int m = 0; m < 2; m++) {
    model_spec s = {0};
    if (model_spec_for(models[m], &s)) return GG_ENOTFOUND;
    gg_image crop;
    /* human feeds both the face box crop in [0,1]; eyes levelled here. */
    int rc = gg__face_align_framed(img, f, s.size, s.size, 1.0f, &crop);
    if (rc) return gg_errf(err, errlen, rc, "pipeline: cannot crop a face");
    gg_gtensor outs[MAX_OUTS];
    int n = 0;
    rc = run_crop(p, models[m], &s, &crop, 0, outs, &n, r, err, errlen);
    gg_image_free(&crop);
    if (rc) return rc;
    *dst[m] = outs[0].data && gg_gtensor_count(&outs[0]) ? outs[0].data[0] : 0;
    release_outs(outs, n);
  }
  fr->has_liveness = 1;
  return 0;
}

/* ------------------------------------------------------------ the run */

int gg_pipeline_run(gg_pipeline *p, const gg_image *img, const gg_pipeline_request *rq_in,
                    gg_pipeline_result *out, char *err, size_t errlen) {
  memset(out, 0, sizeof *out);
  uint64_t t_all = gg_now_ns();
  gg_pipeline_request rq;
  if (rq_in)
    rq = *rq_in;
  else
    gg_pipeline_request_default(&rq);
  if (!img || !img->rgb || img->width < 1 || img->height < 1)
    return gg_errf(err, errlen, GG_EINVAL, "pipeline: no image");
  if (gg_pipeline_admit(p, rq.stream, gg_now_ns()))
    return gg_errf(err, errlen, GG_EBUSY,
                   "stream '%s' is over its rate of %.3g passes per second; retry later", rq.stream,
                   (double)p->o.rate_per_s);
  int rc = 0;
  uint64_t t0 = gg_now_ns();
  if (rq.persons_first || rq.all_classes) {
    rc = detect_objects(p, img, rq.all_classes, out->persons, GG_PIPELINE_MAX_OBJECTS, out, err,
                        errlen);
    if (rc < 0) goto done;
    out->n_persons = rc;
    rc = 0;
  }
  out->stage_ms[GG_STAGE_PERSONS] = ms_since(t0);

  /* Faces: inside each person box (grown by the margin), else the frame. */
  t0 = gg_now_ns();
  gg__face_box *faces = calloc(GG_PIPELINE_MAX_FACES * 2, sizeof *faces);
  int *owner = calloc(GG_PIPELINE_MAX_FACES * 2, sizeof *owner);
  int nf = 0, searched = 0;
  if (!faces || !owner) {
    free(faces);
    free(owner);
    rc = gg_errf(err, errlen, GG_ENOMEM, "pipeline: out of memory");
    goto done;
  }
  for (int i = 0; i < out->n_persons && rq.persons_first && !rc; i++) {
    const gg_object *o = &out->persons[i];
    if (o->cls != 0) continue;
    searched++;
    float mw = p->o.person_margin * (o->x1 - o->x0), mh = p->o.person_margin * (o->y1 - o->y0);
    gg__face_box found[GG_PIPELINE_MAX_FACES];
    int n = detect_faces_in(p, img, o->x0 - mw, o->y0 - mh, o->x1 + mw, o->y1 + mh, found,
                            GG_PIPELINE_MAX_FACES, out, err, errlen);
    if (n < 0) {
      rc = n;
      break;
    }
    /* One face seen from two overlapping person boxes: keep the better. */
    for (int k = 0; k < n; k++) {
      int dup = -1;
      for (int j = 0; j < nf && dup < 0; j++)
        if (box_iou4(&faces[j], &found[k]) > 0.3f) dup = j;
      if (dup >= 0) {
        if (found[k].score > faces[dup].score) faces[dup] = found[k], owner[dup] = i;
      } else if (nf < GG_PIPELINE_MAX_FACES * 2) {
        faces[nf] = found[k], owner[nf] = i, nf++;
      }
    }
  }
  if (!rc && !searched) {
    nf = detect_faces_in(p, img, 0, 0, (float)img->width, (float)img->height, faces,
                         GG_PIPELINE_MAX_FACES, out, err, errlen);
    if (nf < 0) rc = nf, nf = 0;
    for (int k = 0; k < nf; k++)
      owner[k] = -1;
  } else if (!rc && rq.also_frame) {
    /* The frame as well, for the people nanodet missed: faces not found
     * in a person box are added with person -1. */
    gg__face_box found[GG_PIPELINE_MAX_FACES];
    int n = detect_faces_in(p, img, 0, 0, (float)img->width, (float)img->height, found,
                            GG_PIPELINE_MAX_FACES, out, err, errlen);
    if (n < 0) rc = n;
    for (int k = 0; k < n && nf < GG_PIPELINE_MAX_FACES * 2; k++) {
      int dup = 0;
      for (int j = 0; j < nf && !dup; j++)
        dup = box_iou4(&faces[j], &found[k]) > 0.3f;
      if (!dup) faces[nf] = found[k], owner[nf] = -1, nf++;
    }
  }
  out->stage_ms[GG_STAGE_FACES] = ms_since(t0);
  if (rc) {
    free(faces);
    free(owner);
    goto done;
  }
  /* Best first, as many as the result holds. */
  for (int i = 1; i < nf; i++)
    for (int j = i; j > 0 && faces[j].score > faces[j - 1].score; j--) {
      gg__face_box t = faces[j];
      faces[j] = faces[j - 1], faces[j - 1] = t;
      int o = owner[j];
      owner[j] = owner[j - 1], owner[j - 1] = o;
    }
  if (nf > GG_PIPELINE_MAX_FACES) nf = GG_PIPELINE_MAX_FACES;

  for (int i = 0; i < nf && !rc; i++) {
    gg_face_result *fr = &out->faces[i];
    const gg__face_box *f = &faces[i];
    fr->x0 = f->x0, fr->y0 = f->y0, fr->x1 = f->x1, fr->y1 = f->y1, fr->score = f->score;
    memcpy(fr->kp, f->kp, sizeof fr->kp);
    fr->person = owner[i];
    out->n_faces = i + 1;
    t0 = gg_now_ns();
    float box[4] = {f->x0, f->y0, f->x1, f->y1};
    rc = gg_face_quality_measure(img, box, f->score, f->kp, &fr->quality);
    if (rc) {
      gg_errf(err, errlen, rc, "pipeline: cannot measure face %d", i);
      break;
    }
    gg_face_quality_judge(&rq.quality, &fr->quality);
    out->stage_ms[GG_STAGE_QUALITY] += ms_since(t0);
    if (fr->quality.rejected) continue;
    if (rq.embed || rq.attributes) rc = embed_face(p, img, f, &rq, fr, out, err, errlen);
    if (!rc && rq.liveness) {
      t0 = gg_now_ns();
      rc = liveness_face(p, img, f, fr, out, err, errlen);
      out->stage_ms[GG_STAGE_LIVENESS] += ms_since(t0);
    }
  }
  free(faces);
  free(owner);
done:
  out->total_ms = ms_since(t_all);
  return rc;
}
