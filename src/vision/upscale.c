/* Generators (include/gpuguard/upscale.h) and the tiled ESRGAN upscaler.
 *
 * The upscaler cuts the image into equal square tiles that overlap by
 * `overlap` input pixels (the last tile of a row or column is moved back
 * inside the image, so every tile has the same shape and the guard's engine
 * runner keeps one session for all of them). Each tile is one step: one
 * gg_guard_infer. Its output is blended into a float strip with separable
 * linear feathering weights, normalised per pixel so they sum to 1; rows no
 * later tile touches are converted to 8-bit into the result as soon as a
 * tile row is done, so the float buffer never exceeds one tile row of output.
 *
 * A tile that fails with an out-of-memory (the device's, or the admission's
 * budget) is split: the same region is upscaled by tiles of half the side
 * (blended the same way) and the result takes the tile's place. Only that
 * tile is redone; later tiles try the full size again. docs/upscale.md. */
#include "gpuguard/upscale.h"

#include "gpuguard/classify.h"
#include "gpuguard/core.h"
#include "gpuguard/device.h"
#include "gpuguard/engine.h"
#include "gpuguard/error.h"
#include "gpuguard/image.h"
#include "gpuguard/log.h"
#include "gpuguard/memory.h"

#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- generators --------------------------------------------------------- */

struct gg_generator {
  const gg_generator_i *iface;
  void *ctx;
  int total, done;
  int state; /* 0 running, 1 finished, 2 failed, 3 canceled */
  atomic_int cancel;
};

enum { GEN_RUNNING = 0, GEN_DONE, GEN_FAILED, GEN_CANCELED };

int gg_generator_new(const gg_generator_i *iface, void *ctx, int total_steps, gg_generator **out) {
  if (out) *out = NULL;
  if (!iface || !iface->step || !iface->image || total_steps < 1 || !out) {
    if (iface && ctx) {
      if (iface->destroy)
        iface->destroy(ctx);
      else
        free(ctx);
    }
    return GG_EINVAL;
  }
  gg_generator *g = calloc(1, sizeof *g);
  if (!g) {
    if (iface->destroy)
      iface->destroy(ctx);
    else
      free(ctx);
    return GG_ENOMEM;
  }
  g->iface = iface;
  g->ctx = ctx;
  g->total = total_steps;
  atomic_init(&g->cancel, 0);
  *out = g;
  return 0;
}

void gg_generator_free(gg_generator *g) {
  if (!g) return;
  if (g->iface->destroy)
    g->iface->destroy(g->ctx);
  else
    free(g->ctx);
  free(g);
}

int gg_generator_total_steps(const gg_generator *g) {
  return g ? g->total : 0;
}
int gg_generator_current_step(const gg_generator *g) {
  return g ? g->done : 0;
}
void *gg_generator_ctx(const gg_generator *g) {
  return g ? g->ctx : NULL;
}
const gg_generator_i *gg_generator_iface(const gg_generator *g) {
  return g ? g->iface : NULL;
}

void gg_generator_cancel(gg_generator *g) {
  if (g) atomic_store(&g->cancel, 1);
}

static void gen_release(gg_generator *g) {
  if (g->iface->release) g->iface->release(g->ctx);
}

int gg_generator_step(gg_generator *g, char *err, size_t errlen) {
  char dummy[8];
  if (!err) err = dummy, errlen = sizeof dummy;
  err[0] = 0;
  if (!g) return GG_EINVAL;
  if (g->state == GEN_CANCELED) {
    snprintf(err, errlen, "the generation was canceled after %d of %d steps", g->done, g->total);
    return GG_ECANCELED;
  }
  if (g->state != GEN_RUNNING) {
    snprintf(err, errlen, "the generation has %s", g->state == GEN_DONE ? "finished" : "failed");
    return GG_ESTATE;
  }
  if (atomic_load(&g->cancel)) {
    g->state = GEN_CANCELED;
    gen_release(g);
    snprintf(err, errlen, "the generation was canceled after %d of %d steps", g->done, g->total);
    return GG_ECANCELED;
  }
  int rc = g->iface->step(g->ctx, g->done, err, errlen);
  if (rc) {
    g->state = GEN_FAILED;
    gen_release(g);
    return rc;
  }
  if (++g->done == g->total) g->state = GEN_DONE;
  return 0;
}

int gg_generator_run(gg_generator *g, gg_gen_progress_fn progress, void *user, char *err,
                     size_t errlen) {
  if (!g) return GG_EINVAL;
  while (g->state == GEN_RUNNING || g->state == GEN_CANCELED) {
    int rc = gg_generator_step(g, err, errlen);
    if (rc) return rc;
    if (progress) progress(user, g->done, g->total);
  }
  return g->state == GEN_DONE ? 0 : GG_ESTATE;
}

int gg_generator_image(gg_generator *g, gg_gen_image *out) {
  if (!g || !out) return GG_EINVAL;
  memset(out, 0, sizeof *out);
  if (g->state != GEN_DONE) return GG_ESTATE;
  return g->iface->image(g->ctx, out);
}

/* ---- models ------------------------------------------------------------- */

/* range: what a pixel of 255 is fed as (the packages' own preprocessing);
 * the upscaler, `gpuguard infer` and gg_model_image_input all read it here. */
static const struct {
  const char *name, *dir;
  float range;
  const char *why; /* gg_preprocess.why */
} k_models[] = {
    {"esrgan-slim", "esrgan-slim-1.0.0", 255.0f,
     "upscaler esrgan-slim: pixels in [0,255] (src/vision/upscale.c)"},
    {"esrgan-medium", "esrgan-medium-1.0.0", 255.0f,
     "upscaler esrgan-medium: pixels in [0,255] (src/vision/upscale.c)"},
    {"esrgan-thick", "esrgan-thick-1.0.0", 1.0f,
     "upscaler esrgan-thick: pixels in [0,1] (src/vision/upscale.c)"},
};
#define N_MODELS (sizeof k_models / sizeof k_models[0])

int gg_upscale_model_path(const char *model, int scale, char *out, size_t len, float *range,
                          char *err, size_t errlen) {
  char dummy[8];
  if (!err) err = dummy, errlen = sizeof dummy;
  if (!out || !len) return GG_EINVAL;
  out[0] = 0;
  size_t i = 0;
  while (i < N_MODELS && !(model && !strcmp(model, k_models[i].name)))
    i++;
  if (i == N_MODELS) {
    snprintf(err, errlen, "unknown upscaler '%s'; known: esrgan-slim, esrgan-medium, esrgan-thick",
             model ? model : "(none)");
    return GG_EINVAL;
  }
  if (scale != 2 && scale != 3 && scale != 4 && scale != 8) {
    snprintf(err, errlen, "%s has no x%d model; scales are 2, 3, 4 and 8", model, scale);
    return GG_EINVAL;
  }
  const char *cache = getenv("GPUGUARD_CACHE"), *home = getenv("HOME");
  int n;
  if (cache && *cache)
    n = snprintf(out, len, "%s/models/%s/models/x%d/model.json", cache, k_models[i].dir, scale);
  else
    n = snprintf(out, len, "%s/.cache/gpuguard/models/%s/models/x%d/model.json",
                 home ? home : "/root", k_models[i].dir, scale);
  if (n < 0 || (size_t)n >= len) {
    snprintf(err, errlen, "model path too long");
    return GG_ERANGE;
  }
  if (range) *range = k_models[i].range;
  if (access(out, R_OK)) {
    snprintf(err, errlen, "%s x%d is not fetched (%s missing); run scripts/fetch-models.sh", model,
             scale, out);
    return GG_ENOTFOUND;
  }
  return 0;
}

int gg_upscale_preprocess(const char *model_path, gg_preprocess *pp) {
  if (!model_path || !pp) return 0;
  for (size_t i = 0; i < N_MODELS; i++) {
    char key[64];
    snprintf(key, sizeof key, "%s/models/x", k_models[i].dir);
    if (!strstr(model_path, key)) continue;
    pp->scale = k_models[i].range / 255.0f;
    pp->offset = 0.0f;
    pp->why = k_models[i].why;
    return 1;
  }
  return 0;
}

/* ---- tiling ------------------------------------------------------------- */

/* Tile positions along one axis of `len` pixels: tiles of `t` (<= len)
 * with stride t - overlap, the last one moved back to end at len. */
typedef struct axis {
  int n, t;
  int *pos;  /* n input offsets */
  float **w; /* n arrays of t*scale normalised weights (output pixels) */
} axis;

static void axis_free(axis *a) {
  if (a->w)
    for (int i = 0; i < a->n; i++)
      free(a->w[i]);
  free(a->w);
  free(a->pos);
  memset(a, 0, sizeof *a);
}

/* Linear ramp over the middle half of a band of `ov` output pixels, at
 * distance d (pixels) from the tile's edge: 0 in the outer quarter, where
 * the tile's missing context shows most, 1 past three quarters. */
static float ramp(int d, int ov) {
  float x = ((float)d + 0.5f - 0.25f * (float)ov) / (0.5f * (float)ov);
  return x <= 0.0f ? 0.0f : x >= 1.0f ? 1.0f : x;
}

/* Raw feather weight of output pixel u (0..t*s-1) of tile i: 1 inside,
 * ramping to 0 across the part it shares with each neighbour. */
static float feather(const axis *a, int i, int u, int s) {
  float w = 1.0f;
  if (i > 0) {
    int ov = (a->pos[i - 1] + a->t - a->pos[i]) * s; /* shared with the previous tile */
    if (ov > 0 && u < ov) w *= ramp(u, ov);
  }
  if (i + 1 < a->n) {
    int ov = (a->pos[i] + a->t - a->pos[i + 1]) * s;
    int r = a->t * s - 1 - u; /* distance from the right edge */
    if (ov > 0 && r < ov) w *= ramp(r, ov);
  }
  /* Never exactly 0, so every pixel's weights have a positive sum to
   * normalise by, whatever the tile positions. */
  return w > 1e-6f ? w : 1e-6f;
}

static int axis_init(axis *a, int len, int t, int overlap, int s) {
  memset(a, 0, sizeof *a);
  if (t > len) t = len;
  if (overlap > t / 2) overlap = t / 2;
  int stride = t - overlap;
  a->t = t;
  a->n = len <= t ? 1 : (len - t + stride - 1) / stride + 1;
  a->pos = calloc((size_t)a->n, sizeof *a->pos);
  a->w = calloc((size_t)a->n, sizeof *a->w);
  float *sum = calloc((size_t)len * (size_t)s, sizeof *sum);
  int rc = a->pos && a->w && sum ? 0 : GG_ENOMEM;
  for (int i = 0; !rc && i < a->n; i++) {
    a->pos[i] = i * stride;
    if (a->pos[i] + t > len) a->pos[i] = len - t;
    if (!(a->w[i] = malloc((size_t)t * (size_t)s * sizeof(float)))) rc = GG_ENOMEM;
  }
  for (int i = 0; !rc && i < a->n; i++)
    for (int u = 0; u < t * s; u++) {
      a->w[i][u] = feather(a, i, u, s);
      sum[a->pos[i] * s + u] += a->w[i][u];
    }
  for (int i = 0; !rc && i < a->n; i++)
    for (int u = 0; u < t * s; u++)
      a->w[i][u] /= sum[a->pos[i] * s + u];
  free(sum);
  if (rc) axis_free(a);
  return rc;
}

/* dst (row stride dst_w pixels, RGB floats) += wy[y] * wx[x] * src (tw x th
 * output pixels) at (ox, oy) of dst. */
static void blend(float *dst, int dst_w, int ox, int oy, const float *src, int tw, int th,
                  const float *wx, const float *wy) {
  for (int y = 0; y < th; y++) {
    float *d = dst + ((size_t)(oy + y) * (size_t)dst_w + (size_t)ox) * 3;
    const float *p = src + (size_t)y * (size_t)tw * 3;
    for (int x = 0; x < tw; x++) {
      float w = wy[y] * wx[x];
      d[3 * x + 0] += w * p[3 * x + 0];
      d[3 * x + 1] += w * p[3 * x + 1];
      d[3 * x + 2] += w * p[3 * x + 2];
    }
  }
}

/* ---- the upscaler ------------------------------------------------------- */

typedef struct upscaler {
  gg_guard *guard;
  gg_upscale_opts o;
  gg_upscale_info info;
  uint8_t *src;   /* input copy, w*h*3 */
  uint8_t *out;   /* result, out_w*out_h*3 (gg_host_alloc) */
  float *strip;   /* one tile row of output, t*s rows of out_w RGB floats */
  int strip_base; /* output row of strip's first row */
  axis ax, ay;
  double *step_ms;
} upscaler;

static void ups_release(void *ctx) {
  upscaler *u = ctx;
  gg_host_free(u->src);
  gg_host_free(u->out);
  gg_host_free(u->strip);
  u->src = u->out = NULL;
  u->strip = NULL;
  axis_free(&u->ax);
  axis_free(&u->ay);
}

static void ups_destroy(void *ctx) {
  upscaler *u = ctx;
  if (!u) return;
  ups_release(u);
  free(u->step_ms);
  free(u);
}

static int is_oom(int rc) {
  return rc == GG_EDEV_OOM || rc == GG_EBUDGET || gg_classify_err(rc) == GG_FAIL_OOM;
}

/* One model run of the input region (x, y, w, h) into dst (w*s x h*s RGB
 * floats in the model's range). */
static int run_once(upscaler *u, int x, int y, int w, int h, float *dst, char *err, size_t errlen) {
  int s = u->o.scale;
  float k = u->info.range / 255.0f;
  gg_gtensor in = {4, {1, h, w, 3}, NULL};
  in.data = malloc((size_t)w * (size_t)h * 3 * sizeof(float));
  if (!in.data) return GG_ENOMEM;
  for (int r = 0; r < h; r++) {
    const uint8_t *p = u->src + ((size_t)(y + r) * (size_t)u->info.in_w + (size_t)x) * 3;
    float *q = in.data + (size_t)r * (size_t)w * 3;
    for (int i = 0; i < w * 3; i++)
      q[i] = (float)p[i] * k;
  }
  gg_guard_result res;
  int rc = gg_guard_infer(u->guard, u->info.model_path, &in, &res);
  free(in.data);
  if (rc) {
    snprintf(err, errlen, "tile at (%d,%d) size %dx%d: %s (%s)", x, y, w, h, gg_strerror(rc),
             gg_err_name(rc));
    gg_guard_result_release(&res);
    return rc;
  }
  const gg_gtensor *t = &res.outputs[0];
  if (res.n_outputs < 1 || t->ndim != 4 || t->dims[1] != (int64_t)h * s ||
      t->dims[2] != (int64_t)w * s || t->dims[3] != 3) {
    snprintf(err, errlen, "the model returned an output of an unexpected shape for a %dx%d tile", w,
             h);
    gg_guard_result_release(&res);
    return GG_ESTATE;
  }
  memcpy(dst, t->data, (size_t)w * s * (size_t)h * s * 3 * sizeof(float));
  if (w == u->ax.t && h == u->ay.t && !u->info.guard_planned_peak)
    u->info.guard_planned_peak = res.planned_peak;
  snprintf(u->info.served_by, sizeof u->info.served_by, "%s", res.device);
  u->info.runs++;
  int side = w < h ? w : h;
  if (!u->info.smallest_tile || side < u->info.smallest_tile) u->info.smallest_tile = side;
  gg_guard_result_release(&res);
  return 0;
}

/* The region (x, y, w, h) upscaled into dst (w*s x h*s), by one run when it
 * fits in `tile`, else by tiles of `tile` blended together; a run that
 * fails with an out-of-memory is redone as tiles of half its side. */
static int run_region(upscaler *u, int x, int y, int w, int h, int tile, float *dst, char *err,
                      size_t errlen) {
  int s = u->o.scale;
  if (w <= tile && h <= tile) {
    int rc = run_once(u, x, y, w, h, dst, err, errlen);
    if (!rc || !is_oom(rc)) return rc;
    int half = (w > h ? w : h) / 2;
    if (half < u->o.min_tile) {
      size_t n = strlen(err);
      snprintf(err + n, errlen - n, "; a %d-pixel tile is below the %d-pixel minimum, giving up",
               half, u->o.min_tile);
      return rc;
    }
    GG_WARN("UPS", "%s; retrying this tile as tiles of %d pixels", err, half);
    u->info.halvings++;
    tile = half;
  }
  axis ax, ay;
  int rc = axis_init(&ax, w, tile, u->o.overlap, s);
  if (rc) return rc;
  if ((rc = axis_init(&ay, h, tile, u->o.overlap, s))) {
    axis_free(&ax);
    return rc;
  }
  memset(dst, 0, (size_t)w * s * (size_t)h * s * 3 * sizeof(float));
  float *sub = malloc((size_t)ax.t * s * (size_t)ay.t * s * 3 * sizeof(float));
  if (!sub) rc = GG_ENOMEM;
  for (int j = 0; !rc && j < ay.n; j++)
    for (int i = 0; !rc && i < ax.n; i++) {
      rc = run_region(u, x + ax.pos[i], y + ay.pos[j], ax.t, ay.t, tile, sub, err, errlen);
      if (!rc)
        blend(dst, w * s, ax.pos[i] * s, ay.pos[j] * s, sub, ax.t * s, ay.t * s, ax.w[i], ay.w[j]);
    }
  free(sub);
  axis_free(&ax);
  axis_free(&ay);
  return rc;
}

/* Converts output rows [from, to) of the strip into the 8-bit result. */
static void flush_rows(upscaler *u, int from, int to) {
  float k = 255.0f / u->info.range;
  size_t row = (size_t)u->info.out_w * 3;
  for (int r = from; r < to; r++) {
    const float *p = u->strip + (size_t)(r - u->strip_base) * row;
    uint8_t *q = u->out + (size_t)r * row;
    for (size_t i = 0; i < row; i++) {
      float v = p[i] * k + 0.5f;
      q[i] = v <= 0.0f ? 0 : v >= 255.0f ? 255 : (uint8_t)v;
    }
  }
}

static int ups_step(void *ctx, int index, char *err, size_t errlen) {
  upscaler *u = ctx;
  int s = u->o.scale;
  int i = index % u->ax.n, j = index / u->ax.n;
  int tw = u->ax.t, th = u->ay.t;
  uint64_t t0 = gg_now_ns();
  float *buf = malloc((size_t)tw * s * (size_t)th * s * 3 * sizeof(float));
  if (!buf) return GG_ENOMEM;
  int rc = run_region(u, u->ax.pos[i], u->ay.pos[j], tw, th, u->info.tile, buf, err, errlen);
  if (rc) {
    free(buf);
    return rc;
  }
  int oy = u->ay.pos[j] * s - u->strip_base;
  blend(u->strip, u->info.out_w, u->ax.pos[i] * s, oy, buf, tw * s, th * s, u->ax.w[i], u->ay.w[j]);
  free(buf);
  if (i == u->ax.n - 1) {
    /* A tile row is done: rows above the next row's first are final. */
    int next = j + 1 < u->ay.n ? u->ay.pos[j + 1] * s : u->info.out_h;
    flush_rows(u, u->strip_base, next);
    size_t row = (size_t)u->info.out_w * 3;
    size_t keep = (size_t)(u->strip_base + th * s - next);
    if (j + 1 < u->ay.n) {
      memmove(u->strip, u->strip + (size_t)(next - u->strip_base) * row,
              keep * row * sizeof(float));
      memset(u->strip + keep * row, 0, ((size_t)th * s - keep) * row * sizeof(float));
      u->strip_base = next;
    }
  }
  double ms = (double)(gg_now_ns() - t0) / 1e6;
  u->step_ms[index] = ms;
  u->info.total_ms += ms;
  if (index == 0 || ms < u->info.step_ms_min) u->info.step_ms_min = ms;
  if (ms > u->info.step_ms_max) u->info.step_ms_max = ms;
  u->info.step_ms_mean = u->info.total_ms / (index + 1);
  return 0;
}

static int ups_image(void *ctx, gg_gen_image *out) {
  upscaler *u = ctx;
  if (!u->out) return GG_ESTATE;
  out->width = u->info.out_w;
  out->height = u->info.out_h;
  out->rgb = u->out;
  return 0;
}

static const gg_generator_i k_esrgan = {
    .name = "esrgan",
    .step = ups_step,
    .image = ups_image,
    .release = ups_release,
    .destroy = ups_destroy,
};

int gg_upscale_info_get(const gg_generator *gen, gg_upscale_info *out) {
  if (!gen || !out || gg_generator_iface(gen) != &k_esrgan) return GG_EINVAL;
  const upscaler *u = gg_generator_ctx(gen);
  *out = u->info;
  out->step_ms = u->step_ms;
  return 0;
}

/* ---- tile choice -------------------------------------------------------- */

/* Host bytes a tile side needs: the float input and output of one tile (the
 * guard's output copy and ours, and a halving's sub-tile), and the strip. */
static uint64_t host_bytes(int tw, int th, int s, int out_w) {
  uint64_t tin = (uint64_t)tw * (uint64_t)th * 3 * sizeof(float);
  uint64_t tout = tin * (uint64_t)s * (uint64_t)s;
  uint64_t strip = (uint64_t)th * (uint64_t)s * (uint64_t)out_w * 3 * sizeof(float);
  return tin + 3 * tout + strip;
}

/* The engine's planned peak for input [1,th,tw,3] on a device like the
 * guard's primary: a sim spec is planned on a private sim of the same budget
 * (the device share, as the guard's runner reports it); other devices on
 * the host (weights + arena + workspace, what the host-computing runner
 * reserves). The session is freed again. */
static int plan_peak(gg_model *m, gg_pool *pool, int tw, int th, uint64_t *peak, uint64_t *measured,
                     char *err, size_t errlen) {
  int64_t shape[4] = {1, th, tw, 3};
  gg_session_opts so = {1, GG_ENGINE_AUTO, 0};
  gg_session *s = NULL;
  int rc = gg_session_new_on(m, shape, 4, &so, pool, &s, err, errlen);
  if (rc) return rc;
  gg_engine_mem mem;
  gg_session_memory(s, &mem);
  *peak = mem.n_devices > 1 ? mem.dev[1].predicted : mem.predicted;
  *measured = mem.n_devices > 1 ? mem.dev[1].measured : mem.measured;
  gg_session_free(s);
  return 0;
}

static int choose_tile(upscaler *u, char *err, size_t errlen) {
  gg_upscale_info *in = &u->info;
  gg_guard_device_status st;
  int rc = gg_guard_device_status_get(u->guard, 0, &st);
  if (rc) return rc;
  snprintf(in->device, sizeof in->device, "%s", st.spec);
  in->device_budget = st.budget;
  in->device_free = st.budget > st.pool_allocated ? st.budget - st.pool_allocated : 0;
  gg_model *m = NULL;
  gg_device *dev = NULL;
  gg_pool *pool = NULL;
  char perr[256] = "";
  rc = gg_model_load(in->model_path, &m, perr, sizeof perr);
  if (rc) {
    snprintf(err, errlen, "planning: %s", perr);
    return rc;
  }
  if (!strncmp(st.spec, "sim", 3)) {
    char spec[160];
    gg_guard_spec_with_faults(st.spec, "", spec, sizeof spec);
    char budget[32];
    snprintf(budget, sizeof budget, "%llu", (unsigned long long)st.budget);
    gg_pool_config pc;
    gg_pool_config_default(&pc);
    pc.budget = st.budget ? budget : NULL;
    if ((rc = gg_device_open(spec, &dev)) || (rc = gg_pool_new(dev, &pc, &pool))) {
      snprintf(err, errlen, "planning: cannot open a private %s to plan on: %s", spec,
               gg_strerror(rc));
      gg_device_free(dev);
      gg_model_free(m);
      return rc;
    }
  }
  static const int k_cand[] = {1024, 768, 640, 512, 448, 384, 320, 256, 224, 192,
                               160,  128, 96,  64,  48,  32,  24,  16,  8};
  int longest = in->in_w > in->in_h ? in->in_w : in->in_h;
  int chosen = 0;
  uint64_t chosen_peak = 0, chosen_host = 0;
  for (size_t c = 0; c < sizeof k_cand / sizeof k_cand[0] && !chosen; c++) {
    int t = u->o.tile ? u->o.tile : k_cand[c];
    if (!u->o.tile && (t > u->o.max_tile || t < u->o.min_tile)) continue;
    if (!u->o.tile && t > longest && c + 1 < sizeof k_cand / sizeof k_cand[0] &&
        k_cand[c + 1] >= longest && k_cand[c + 1] >= u->o.min_tile)
      continue; /* the next candidate covers the image as well */
    int tw = t < in->in_w ? t : in->in_w, th = t < in->in_h ? t : in->in_h;
    gg_upscale_candidate *cd =
        in->n_candidates < GG_UPSCALE_MAX_CANDIDATES ? &in->candidates[in->n_candidates++] : NULL;
    gg_upscale_candidate tmp;
    if (!cd) cd = &tmp;
    memset(cd, 0, sizeof *cd);
    cd->tile = t;
    cd->host_bytes = host_bytes(tw, th, u->o.scale, in->out_w);
    if (cd->host_bytes <= u->o.host_limit) {
      cd->rc =
          plan_peak(m, pool, tw, th, &cd->device_peak, &cd->device_measured, perr, sizeof perr);
      if (pool) gg_pool_trim(pool, NULL);
      /* The engine predicts what the pool will count, block tails included
       * (gg_pool_footprint): measured == planned, asserted by the tests. */
      cd->fits = !cd->rc && (!st.budget || cd->device_peak <= in->device_free);
    }
    if (cd->fits || u->o.tile) {
      chosen = t;
      chosen_peak = cd->device_peak;
      in->planned_measured = cd->device_measured;
      chosen_host = cd->host_bytes;
    }
  }
  gg_pool_free(pool);
  gg_device_free(dev);
  gg_model_free(m);
  if (!chosen) {
    snprintf(err, errlen,
             "no tile from %d down to %d pixels fits: %llu bytes free of the %llu-byte budget of "
             "%s, host limit %llu bytes (smallest tried needs %llu device, %llu host bytes)",
             u->o.max_tile, u->o.min_tile, (unsigned long long)in->device_free,
             (unsigned long long)in->device_budget, st.spec, (unsigned long long)u->o.host_limit,
             in->n_candidates ? (unsigned long long)in->candidates[in->n_candidates - 1].device_peak
                              : 0ull,
             in->n_candidates ? (unsigned long long)in->candidates[in->n_candidates - 1].host_bytes
                              : 0ull);
    return GG_EBUDGET;
  }
  in->tile = chosen;
  in->planned_peak = chosen_peak;
  in->host_bytes = chosen_host;
  return 0;
}

int gg_upscale_new(gg_guard *g, const gg_upscale_opts *opts, const uint8_t *rgb, int width,
                   int height, gg_generator **out, char *err, size_t errlen) {
  char dummy[8];
  if (!err) err = dummy, errlen = sizeof dummy;
  err[0] = 0;
  if (out) *out = NULL;
  if (!g || !opts || !out) {
    snprintf(err, errlen, "gg_upscale_new needs a guard, options and an output");
    return GG_EINVAL;
  }
  if (!rgb || width <= 0 || height <= 0) {
    snprintf(err, errlen, "the image is %dx%d%s; it needs at least one pixel", width, height,
             rgb ? "" : " with no pixels");
    return GG_EINVAL;
  }
  upscaler *u = calloc(1, sizeof *u);
  if (!u) return GG_ENOMEM;
  u->guard = g;
  u->o = *opts;
  if (!u->o.overlap) u->o.overlap = 16;
  if (!u->o.max_tile) u->o.max_tile = 512;
  if (!u->o.min_tile) u->o.min_tile = 16;
  if (!u->o.max_output) u->o.max_output = GG_UPSCALE_MAX_OUTPUT;
  if (!u->o.host_limit) u->o.host_limit = (uint64_t)2 << 30;
  gg_upscale_info *in = &u->info;
  int rc = 0;
  if (u->o.overlap < 0 || u->o.tile < 0 || u->o.min_tile < 1 || u->o.max_tile < u->o.min_tile) {
    snprintf(err, errlen, "bad options: overlap %d, tile %d, min_tile %d, max_tile %d",
             u->o.overlap, u->o.tile, u->o.min_tile, u->o.max_tile);
    rc = GG_EINVAL;
    goto fail;
  }
  if ((rc = gg_upscale_model_path(opts->model, opts->scale, in->model_path, sizeof in->model_path,
                                  &in->range, err, errlen)))
    goto fail;
  snprintf(in->model, sizeof in->model, "%s", opts->model);
  in->scale = opts->scale;
  in->in_w = width;
  in->in_h = height;
  if ((int64_t)width * opts->scale > u->o.max_output ||
      (int64_t)height * opts->scale > u->o.max_output) {
    snprintf(err, errlen, "a %dx%d image at x%d gives %lldx%lld, beyond the %dx%d output limit",
             width, height, opts->scale, (long long)width * opts->scale,
             (long long)height * opts->scale, u->o.max_output, u->o.max_output);
    rc = GG_ETOO_LARGE;
    goto fail;
  }
  in->out_w = width * opts->scale;
  in->out_h = height * opts->scale;
  in->overlap = u->o.overlap;
  if ((rc = gg_guard_load(g, in->model_path))) {
    snprintf(err, errlen, "loading %s x%d on the guard failed: %s", opts->model, opts->scale,
             gg_strerror(rc));
    goto fail;
  }
  uint64_t t0 = gg_now_ns();
  rc = choose_tile(u, err, errlen);
  in->plan_ms = (double)(gg_now_ns() - t0) / 1e6;
  if (rc) goto fail;
  int s = opts->scale;
  if ((rc = axis_init(&u->ax, width, in->tile, u->o.overlap, s)) ||
      (rc = axis_init(&u->ay, height, in->tile, u->o.overlap, s)))
    goto fail;
  in->tiles_x = u->ax.n;
  in->tiles_y = u->ay.n;
  in->tiles = u->ax.n * u->ay.n;
  size_t src_b = (size_t)width * height * 3;
  size_t out_b = (size_t)in->out_w * in->out_h * 3;
  size_t strip_b = (size_t)u->ay.t * s * (size_t)in->out_w * 3 * sizeof(float);
  u->src = gg_host_alloc("upscale/input", src_b);
  u->out = gg_host_alloc("upscale/result", out_b);
  u->strip = gg_host_alloc("upscale/strip", strip_b);
  u->step_ms = calloc((size_t)in->tiles, sizeof *u->step_ms);
  if (!u->src || !u->out || !u->strip || !u->step_ms) {
    snprintf(err, errlen, "out of host memory for a %dx%d result", in->out_w, in->out_h);
    rc = GG_ENOMEM;
    goto fail;
  }
  memcpy(u->src, rgb, src_b);
  memset(u->strip, 0, strip_b);
  GG_INFO("UPS",
          "%s x%d: %dx%d -> %dx%d, tile %d (%d x %d tiles, overlap %d), planned peak %llu "
          "bytes of %llu free on %s",
          in->model, s, width, height, in->out_w, in->out_h, in->tile, in->tiles_x, in->tiles_y,
          in->overlap, (unsigned long long)in->planned_peak, (unsigned long long)in->device_free,
          in->device);
  return gg_generator_new(&k_esrgan, u, in->tiles, out);
fail:
  ups_destroy(u);
  return rc;
}
