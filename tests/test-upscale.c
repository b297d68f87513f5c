/* The tiled ESRGAN upscaler (include/gpuguard/upscale.h) through the guard:
 * tiled equals untiled within 1e-2 of the range, the tile choice follows the
 * device budget and the plan's peak is what the pool measures, an injected
 * OOM halves only the failed tile, cancellation frees everything, progress
 * comes in order, bad input gets clear errors. Also the guard with a model
 * whose input size is free. Uses esrgan-slim x2 (skipped when not fetched). */
#include "test.h"

#include "gpuguard/device.h"
#include "gpuguard/engine.h"
#include "gpuguard/error.h"
#include "gpuguard/image.h"
#include "gpuguard/memory.h"
#include "gpuguard/upscale.h"

#include <jansson.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#if __has_include(<png.h>)
#include <png.h>
#define HAVE_PNG 1
#endif

static char g_model[1024];

static int have_model(void) {
  return gg_upscale_model_path("esrgan-slim", 2, g_model, sizeof g_model, NULL, NULL, 0) == 0;
}

/* A textured test picture: waves, edges and noise, deterministic. */
static uint8_t *picture(int w, int h) {
  uint8_t *p = malloc((size_t)w * h * 3);
  uint32_t r = 12345;
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++)
      for (int c = 0; c < 3; c++) {
        r = r * 1103515245u + 12345u;
        double v = 120 + 60 * sin(x * 0.21 + c) * cos(y * 0.17) + ((x / 9 + y / 13) % 2) * 40 +
                   (double)((r >> 16) % 24);
        p[((size_t)y * w + x) * 3 + c] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
      }
  return p;
}

static gg_guard *guard_on(const char *spec, int isolate) {
  gg_guard_config cfg;
  gg_guard_config_init(&cfg);
  cfg.devices[0] = spec;
  cfg.n_devices = 1;
  cfg.isolate = isolate;
  cfg.worker_exe = GG_BIN;
  cfg.retries = 0;
  cfg.backoff_ms = 1;
  gg_guard *g = NULL;
  return gg_guard_new(&cfg, &g) ? NULL : g;
}

/* Runs an upscale to the end; returns 0 and a malloc'd copy of the result. */
static int upscale(gg_guard *g, const gg_upscale_opts *o, const uint8_t *img, int w, int h,
                   uint8_t **out, gg_upscale_info *info) {
  gg_generator *gen = NULL;
  char err[512] = "";
  int rc = gg_upscale_new(g, o, img, w, h, &gen, err, sizeof err);
  if (!rc) rc = gg_generator_run(gen, NULL, NULL, err, sizeof err);
  if (rc) fprintf(stderr, "  upscale: %s (%s)\n", err, gg_err_name(rc));
  gg_gen_image im;
  if (!rc && !(rc = gg_generator_image(gen, &im))) {
    *out = malloc((size_t)im.width * im.height * 3);
    memcpy(*out, im.rgb, (size_t)im.width * im.height * 3);
  }
  if (gen && info) gg_upscale_info_get(gen, info);
  gg_generator_free(gen);
  return rc;
}

/* Largest difference in 8-bit levels, over pixels at least `margin` output
 * pixels from the border. */
static int max_diff(const uint8_t *a, const uint8_t *b, int w, int h, int margin, double *mean) {
  int m = 0;
  double sum = 0;
  size_t n = 0;
  for (int y = margin; y < h - margin; y++)
    for (int x = margin; x < w - margin; x++)
      for (int c = 0; c < 3; c++) {
        size_t i = ((size_t)y * w + x) * 3 + c;
        int d = abs((int)a[i] - (int)b[i]);
        if (d > m) m = d;
        sum += d;
        n++;
      }
  if (mean) *mean = n ? sum / (double)n : 0;
  return m;
}

/* 1e-2 of the range (255 levels), as 8-bit levels: 2.55. */
#define SEAM_TOL 2.55

static void tiled_matches_untiled(void) {
  if (!have_model()) SKIP("esrgan-slim x2 not fetched (scripts/fetch-models.sh)");
  const int w = 112, h = 96;
  uint8_t *img = picture(w, h), *one = NULL, *tiled = NULL;
  gg_guard *g = guard_on("cpu", 0);
  ASSERT_TRUE(g);
  gg_upscale_opts o = {.model = "esrgan-slim", .scale = 2, .tile = 128};
  gg_upscale_info i1, i2;
  ASSERT_OK(upscale(g, &o, img, w, h, &one, &i1));
  ASSERT_EQ(i1.tiles, 1);
  o.tile = 40;
  o.overlap = 16;
  ASSERT_OK(upscale(g, &o, img, w, h, &tiled, &i2));
  ASSERT_EQ(i2.tile, 40);
  ASSERT_EQ(i2.tiles_x, 4); /* stride 24: 0, 24, 48, 72 */
  ASSERT_EQ(i2.tiles_y, 4); /* 0, 24, 48, then 56 */
  double mean = 0;
  int m = max_diff(one, tiled, w * 2, h * 2, 8, &mean);
  fprintf(stderr,
          "  tiled (40 px, overlap 16, %d tiles) vs untiled: max %d levels (%.4f of "
          "range), mean %.4f levels\n",
          i2.tiles, m, m / 255.0, mean);
  ASSERT_LE_F((double)m, SEAM_TOL);
  ASSERT_LE_F(mean, 0.1); /* measured 0.0115 levels */
  free(one);
  free(tiled);
  free(img);
  gg_guard_free(g);
}

static void tile_choice_follows_budget(void) {
  if (!have_model()) SKIP("esrgan-slim x2 not fetched (scripts/fetch-models.sh)");
  const int w = 256, h = 256;
  uint8_t *img = picture(w, h);
  int tiles[3];
  const char *specs[3] = {"sim:mem=512M", "sim:mem=40M", "sim:mem=16M"};
  for (int k = 0; k < 3; k++) {
    gg_guard *g = guard_on(specs[k], 1);
    ASSERT_TRUE(g);
    ASSERT_OK(gg_guard_load(g, g_model));
    gg_guard_device_status st0, st1;
    ASSERT_OK(gg_guard_device_status_get(g, 0, &st0));
    gg_upscale_opts o = {.model = "esrgan-slim", .scale = 2};
    gg_generator *gen = NULL;
    char err[512];
    ASSERT_OK(gg_upscale_new(g, &o, img, w, h, &gen, err, sizeof err));
    gg_upscale_info in;
    ASSERT_OK(gg_upscale_info_get(gen, &in));
    tiles[k] = in.tile;
    fprintf(stderr, "  %s: free %llu, tile %d (%d tiles), planned peak %llu\n", specs[k],
            (unsigned long long)in.device_free, in.tile, in.tiles,
            (unsigned long long)in.planned_peak);
    ASSERT_LE(in.planned_peak, in.device_free);
    /* the next larger candidate did not fit */
    if (in.n_candidates > 1) ASSERT_EQ(in.candidates[in.n_candidates - 2].fits, 0);
    if (k == 1) {
      ASSERT_OK(gg_generator_run(gen, NULL, NULL, err, sizeof err));
      ASSERT_OK(gg_upscale_info_get(gen, &in));
      ASSERT_OK(gg_guard_device_status_get(g, 0, &st1));
      fprintf(stderr, "  ran: %d runs, %d halvings, pool %llu -> %llu, guard planned %llu\n",
              in.runs, in.halvings, (unsigned long long)st0.pool_allocated,
              (unsigned long long)st1.pool_allocated, (unsigned long long)in.guard_planned_peak);
      /* The guard planned the same peak, and the pool measured exactly it:
       * the tile's session is all that was added on the device. */
      ASSERT_U64_EQ(in.guard_planned_peak, in.planned_peak);
      /* What the guard's pool took for the tiles is what planning predicted
       * and measured on a private sim of the same budget, to the byte: the
       * engine asks the pool (gg_pool_footprint) what each buffer will
       * count, the tail a large block keeps (up to GG_POOL_SMALL_MAX)
       * included (docs/upscale.md). */
      ASSERT_U64_EQ(st1.pool_allocated - st0.pool_allocated, in.planned_measured);
      ASSERT_U64_EQ(in.planned_measured, in.planned_peak);
      /* The engine's own count for that session, on a sim of the same
       * budget: the same two numbers. */
      gg_device *dev = NULL;
      gg_pool *pool = NULL;
      gg_model *m = NULL;
      gg_session *sess = NULL;
      gg_pool_config pc;
      gg_pool_config_default(&pc);
      pc.budget = "40M";
      ASSERT_OK(gg_device_open("sim:mem=40M", &dev));
      ASSERT_OK(gg_pool_new(dev, &pc, &pool));
      ASSERT_OK(gg_model_load(g_model, &m, err, sizeof err));
      int64_t shape[4] = {1, in.tile, in.tile, 3};
      gg_session_opts so = {1, GG_ENGINE_AUTO, 0};
      ASSERT_OK(gg_session_new_on(m, shape, 4, &so, pool, &sess, err, sizeof err));
      gg_engine_mem mem;
      gg_session_memory(sess, &mem);
      ASSERT_EQ(mem.n_devices, 2);
      ASSERT_U64_EQ(mem.dev[1].predicted, in.planned_peak);
      ASSERT_U64_EQ(mem.dev[1].measured, in.planned_measured);
      ASSERT_U64_EQ(mem.dev[1].measured, mem.dev[1].predicted);
      fprintf(stderr, "  tile %d session on sim: predicted %llu, measured %llu\n", in.tile,
              (unsigned long long)mem.dev[1].predicted, (unsigned long long)mem.dev[1].measured);
      gg_session_free(sess);
      gg_model_free(m);
      gg_pool_free(pool);
      gg_device_free(dev);
      ASSERT_EQ(in.halvings, 0);
      ASSERT_EQ(in.runs, in.tiles);
    }
    gg_generator_free(gen);
    gg_guard_free(g);
  }
  ASSERT_EQ(tiles[0], 256); /* the whole image */
  ASSERT_LT_F((double)tiles[1], (double)tiles[0]);
  ASSERT_LT_F((double)tiles[2], (double)tiles[1]);
  ASSERT_GE(tiles[2], 16);
  free(img);
}

static void oom_halves_the_tile(void) {
  if (!have_model()) SKIP("esrgan-slim x2 not fetched (scripts/fetch-models.sh)");
  const int w = 96, h = 96;
  uint8_t *img = picture(w, h), *ref = NULL, *got = NULL;
  gg_upscale_opts o = {.model = "esrgan-slim", .scale = 2, .tile = 128};
  gg_upscale_info in;
  /* Reference (one tile) and calibration: raw device allocations before the
   * first tile's session is prepared. */
  gg_guard *g = guard_on("sim:mem=256M", 1);
  ASSERT_TRUE(g);
  ASSERT_OK(upscale(g, &o, img, w, h, &ref, &in));
  gg_guard_free(g);
  g = guard_on("sim:mem=256M", 1);
  ASSERT_TRUE(g);
  ASSERT_OK(gg_guard_load(g, g_model));
  gg_guard_device_status st;
  ASSERT_OK(gg_guard_device_status_get(g, 0, &st));
  uint64_t a = st.raw_allocs;
  gg_guard_free(g);
  /* The first tile's session allocation fails, and the pool's own retry. */
  char spec[256];
  snprintf(spec, sizeof spec, "sim:mem=256M,faults=oom@%llu,oom@%llu", (unsigned long long)a + 1,
           (unsigned long long)a + 2);
  g = guard_on(spec, 1);
  ASSERT_TRUE(g);
  o.tile = 64; /* 2 x 2 tiles */
  ASSERT_OK(upscale(g, &o, img, w, h, &got, &in));
  gg_guard_stats gs;
  ASSERT_OK(gg_guard_stats_get(g, &gs));
  fprintf(stderr, "  faults %s: %d halving(s), smallest tile %d, %d runs for %d tiles, %llu OOMs\n",
          spec, in.halvings, in.smallest_tile, in.runs, in.tiles, (unsigned long long)gs.ooms);
  ASSERT_EQ(in.tiles, 4);
  ASSERT_EQ(in.halvings, 1);
  ASSERT_EQ(in.smallest_tile, 32);
  ASSERT_EQ(in.runs, 3 + 9); /* three full tiles, the failed one as 3 x 3 (overlap 16) */
  ASSERT_GE(gs.ooms, 1);
  double mean = 0;
  int m = max_diff(ref, got, w * 2, h * 2, 8, &mean);
  fprintf(stderr, "  vs untiled: max %d levels, mean %.4f\n", m, mean);
  ASSERT_LE_F((double)m, SEAM_TOL);
  free(ref);
  free(got);
  free(img);
  gg_guard_free(g);
}

static void cancel_frees_everything(void) {
  if (!have_model()) SKIP("esrgan-slim x2 not fetched (scripts/fetch-models.sh)");
  const int w = 96, h = 64;
  uint8_t *img = picture(w, h), *res = NULL;
  gg_guard *g = guard_on("sim:mem=256M", 1);
  ASSERT_TRUE(g);
  gg_upscale_opts o = {.model = "esrgan-slim", .scale = 2, .tile = 48};
  ASSERT_OK(upscale(g, &o, img, w, h, &res, NULL)); /* the tile's session is cached now */
  free(res);
  gg_guard_device_status st0, st1;
  ASSERT_OK(gg_guard_device_status_get(g, 0, &st0));
  gg_host_stats hs0, hs1;
  ASSERT_OK(gg_host_get_stats(&hs0));
  gg_generator *gen = NULL;
  char err[512];
  ASSERT_OK(gg_upscale_new(g, &o, img, w, h, &gen, err, sizeof err));
  ASSERT_GE(gg_generator_total_steps(gen), 4);
  ASSERT_OK(gg_generator_step(gen, err, sizeof err));
  ASSERT_OK(gg_generator_step(gen, err, sizeof err));
  ASSERT_OK(gg_host_get_stats(&hs1));
  ASSERT_GE(hs1.allocated, hs0.allocated + (uint64_t)w * 2 * h * 2 * 3); /* result held */
  gg_generator_cancel(gen);
  ASSERT_EQ(gg_generator_step(gen, err, sizeof err), GG_ECANCELED);
  ASSERT_CONTAINS(err, "canceled after 2 of");
  ASSERT_EQ(gg_generator_current_step(gen), 2);
  ASSERT_EQ(gg_generator_step(gen, err, sizeof err), GG_ECANCELED);
  gg_gen_image im;
  ASSERT_EQ(gg_generator_image(gen, &im), GG_ESTATE);
  ASSERT_OK(gg_host_get_stats(&hs1));
  ASSERT_U64_EQ(hs1.allocated, hs0.allocated); /* released on cancel, before the free */
  ASSERT_OK(gg_guard_device_status_get(g, 0, &st1));
  ASSERT_U64_EQ(st1.pool_allocated, st0.pool_allocated);
  gg_generator_free(gen);
  ASSERT_OK(gg_host_get_stats(&hs1));
  ASSERT_U64_EQ(hs1.allocated, hs0.allocated);
  free(img);
  gg_guard_free(g);
}

typedef struct prog {
  int n, total, in_order;
  int last;
} prog;

static void on_progress(void *user, int step, int total) {
  prog *p = user;
  if (step != p->last + 1) p->in_order = 0;
  p->last = step;
  p->total = total;
  p->n++;
}

static void progress_in_order(void) {
  if (!have_model()) SKIP("esrgan-slim x2 not fetched (scripts/fetch-models.sh)");
  const int w = 80, h = 72;
  uint8_t *img = picture(w, h);
  gg_guard *g = guard_on("cpu", 0);
  ASSERT_TRUE(g);
  gg_upscale_opts o = {.model = "esrgan-slim", .scale = 2, .tile = 32};
  gg_generator *gen = NULL;
  char err[512];
  ASSERT_OK(gg_upscale_new(g, &o, img, w, h, &gen, err, sizeof err));
  prog p = {0, 0, 1, 0};
  ASSERT_OK(gg_generator_run(gen, on_progress, &p, err, sizeof err));
  gg_upscale_info in;
  ASSERT_OK(gg_upscale_info_get(gen, &in));
  ASSERT_EQ(in.tiles, gg_generator_total_steps(gen));
  ASSERT_EQ(p.n, in.tiles);
  ASSERT_EQ(p.last, in.tiles);
  ASSERT_EQ(p.total, in.tiles);
  ASSERT_EQ(p.in_order, 1);
  ASSERT_GE(in.tiles, 9);
  for (int i = 0; i < in.tiles; i++)
    ASSERT_GT_F(in.step_ms[i], 0.0);
  ASSERT_EQ(gg_generator_step(gen, err, sizeof err), GG_ESTATE); /* finished */
  gg_gen_image im;
  ASSERT_OK(gg_generator_image(gen, &im));
  ASSERT_EQ(im.width, 160);
  ASSERT_EQ(im.height, 144);
  gg_generator_free(gen);
  free(img);
  gg_guard_free(g);
}

static void bad_input(void) {
  if (!have_model()) SKIP("esrgan-slim x2 not fetched (scripts/fetch-models.sh)");
  gg_guard *g = guard_on("cpu", 0);
  ASSERT_TRUE(g);
  uint8_t px[3 * 16] = {0};
  gg_generator *gen = NULL;
  char err[512];
  gg_upscale_opts o = {.model = "esrgan-huge", .scale = 2};
  ASSERT_EQ(gg_upscale_new(g, &o, px, 4, 4, &gen, err, sizeof err), GG_EINVAL);
  ASSERT_CONTAINS(err, "unknown upscaler 'esrgan-huge'");
  ASSERT_CONTAINS(err, "esrgan-slim");
  o.model = "esrgan-slim";
  o.scale = 5;
  ASSERT_EQ(gg_upscale_new(g, &o, px, 4, 4, &gen, err, sizeof err), GG_EINVAL);
  ASSERT_CONTAINS(err, "scales are 2, 3, 4 and 8");
  o.scale = 2;
  ASSERT_EQ(gg_upscale_new(g, &o, px, 0, 4, &gen, err, sizeof err), GG_EINVAL);
  ASSERT_CONTAINS(err, "at least one pixel");
  ASSERT_EQ(gg_upscale_new(g, &o, NULL, 4, 4, &gen, err, sizeof err), GG_EINVAL);
  o.scale = 8; /* 4096 x 8 = 32768 > 16384; refused before anything is allocated */
  ASSERT_EQ(gg_upscale_new(g, &o, px, 4096, 1024, &gen, err, sizeof err), GG_ETOO_LARGE);
  ASSERT_CONTAINS(err, "beyond the 16384x16384 output limit");
  ASSERT_TRUE(gen == NULL);
  o.scale = 2;
  o.max_tile = 8;
  o.min_tile = 16;
  ASSERT_EQ(gg_upscale_new(g, &o, px, 4, 4, &gen, err, sizeof err), GG_EINVAL);
  gg_guard_free(g);
}

/* The guard itself with a model whose H, W are free: any shape runs (one
 * session per shape), a shape it cannot take is a clear bad-input error. */
static void guard_free_input_shapes(void) {
  if (!have_model()) SKIP("esrgan-slim x2 not fetched (scripts/fetch-models.sh)");
  gg_guard *g = guard_on("sim:mem=256M", 1);
  ASSERT_TRUE(g);
  int sizes[3][2] = {{16, 24}, {33, 7}, {16, 24}};
  for (int k = 0; k < 3; k++) {
    int h = sizes[k][0], w = sizes[k][1];
    gg_gtensor in = {4, {1, h, w, 3}, calloc((size_t)h * w * 3, sizeof(float))};
    gg_guard_result res;
    ASSERT_OK(gg_guard_infer(g, g_model, &in, &res));
    ASSERT_EQ(res.n_outputs, 1);
    ASSERT_EQ(res.outputs[0].dims[1], h * 2);
    ASSERT_EQ(res.outputs[0].dims[2], w * 2);
    ASSERT_EQ(res.outputs[0].dims[3], 3);
    gg_guard_result_release(&res);
    gg_gtensor_release(&in);
  }
  gg_gtensor bad = {4, {1, 16, 16, 4}, calloc(16 * 16 * 4, sizeof(float))};
  gg_guard_result res;
  ASSERT_EQ(gg_guard_infer(g, g_model, &bad, &res), GG_EINVAL);
  gg_guard_result_release(&res);
  gg_gtensor_release(&bad);
  gg_guard_stats gs;
  ASSERT_OK(gg_guard_stats_get(g, &gs));
  ASSERT_EQ(gs.bad_input, 1);
  ASSERT_EQ(gs.other_failures, 0);
  gg_guard_free(g);
}

/* On a device, a new shape whose session does not fit next to a cached
 * session of another shape (the failed size of a halving) still runs: the
 * engine runner frees its sessions of other shapes and tries again. */
static void guard_drops_other_shapes_on_oom(void) {
  if (!have_model()) SKIP("esrgan-slim x2 not fetched (scripts/fetch-models.sh)");
  gg_guard *g = guard_on("sim:mem=40M", 1);
  ASSERT_TRUE(g);
  int sizes[2] = {160, 96}; /* 40736768 planned bytes, then 15570944: not both in 40M */
  for (int k = 0; k < 2; k++) {
    int n = sizes[k];
    gg_gtensor in = {4, {1, n, n, 3}, calloc((size_t)n * n * 3, sizeof(float))};
    gg_guard_result res;
    ASSERT_OK(gg_guard_infer(g, g_model, &in, &res));
    ASSERT_EQ(res.outputs[0].dims[1], n * 2);
    gg_guard_result_release(&res);
    gg_gtensor_release(&in);
  }
  gg_guard_stats gs;
  ASSERT_OK(gg_guard_stats_get(g, &gs));
  ASSERT_EQ(gs.failed, 0);
  gg_guard_free(g);
}

#ifdef HAVE_PNG
/* Runs `gpuguard infer --model MODEL --image IMG --json ARGS`; returns the
 * parsed report (NULL when the output is not JSON) and the exit status. */
static json_t *run_infer(const char *img, const char *args, int *status) {
  char cmd[4096];
  snprintf(cmd, sizeof cmd, "%s infer --model %s --image %s --json --log-level error %s 2>/dev/null",
           GG_BIN, g_model, img, args);
  FILE *f = popen(cmd, "r");
  if (!f) return NULL;
  json_error_t je;
  json_t *r = json_loadf(f, 0, &je);
  int st = pclose(f);
  *status = WIFEXITED(st) ? WEXITSTATUS(st) : 128;
  if (!r) fprintf(stderr, "  not JSON from: %s (%s)\n", cmd, je.text);
  return r;
}
#endif

/* `gpuguard infer` on an upscaler model feeds it what the upscaler does:
 * pixels in the model's range (esrgan-slim: [0,255], not [0,1]), the image
 * at its own size; so its output is the upscaler's, within 1 level. Both
 * the direct path (cpu) and the guarded one (sim). */
static void infer_feeds_the_model_range(void) {
  gg_preprocess pp = {.width = 0, .height = 0, .scale = 0.5f, .offset = 0.25f, .nchw = 0, .why = "untouched"};
  ASSERT_EQ(gg_upscale_preprocess("/m/blazeface.json", &pp), 0);
  ASSERT_NEAR(pp.scale, 0.5f, 0.0f);
  ASSERT_EQ(gg_upscale_preprocess("/c/models/esrgan-thick-1.0.0/models/x4/model.json", &pp), 1);
  ASSERT_NEAR(pp.scale, 1.0f / 255.0f, 1e-9f);
  ASSERT_NEAR(pp.offset, 0.0f, 0.0f);
  ASSERT_EQ(gg_upscale_preprocess("/c/models/esrgan-slim-1.0.0/models/x2/model.json", &pp), 1);
  ASSERT_NEAR(pp.scale, 1.0f, 0.0f);
  if (!have_model()) SKIP("esrgan-slim x2 not fetched (scripts/fetch-models.sh)");
#ifndef HAVE_PNG
  SKIP("no png.h to write the test image");
#else
  const int w = 24, h = 16;
  uint8_t *img = picture(w, h);
  char dir[] = "/tmp/gg-upscale-infer-XXXXXX", png[128], args[256];
  ASSERT_TRUE(mkdtemp(dir) != NULL);
  snprintf(png, sizeof png, "%s/in.png", dir);
  png_image pi;
  memset(&pi, 0, sizeof pi);
  pi.version = PNG_IMAGE_VERSION, pi.width = (png_uint_32)w, pi.height = (png_uint_32)h;
  pi.format = PNG_FORMAT_RGB;
  ASSERT_TRUE(png_image_write_to_file(&pi, png, 0, img, 0, NULL));
  /* the upscaler's result for the same picture, one tile */
  gg_guard *g = guard_on("cpu", 0);
  ASSERT_TRUE(g);
  gg_upscale_opts o = {.model = "esrgan-slim", .scale = 2};
  uint8_t *up = NULL;
  gg_upscale_info info;
  ASSERT_OK(upscale(g, &o, img, w, h, &up, &info));
  ASSERT_EQ(info.tiles, 1);
  gg_guard_free(g);
  /* direct path: the input as fed, and the output dumped */
  int st = -1;
  snprintf(args, sizeof args, "--dump-dir %s/d", dir);
  json_t *r = run_infer(png, args, &st);
  ASSERT_TRUE(r != NULL);
  ASSERT_EQ(st, 0);
  json_t *in = json_object_get(r, "input");
  ASSERT_NEAR(json_real_value(json_object_get(in, "scale")), 1.0, 0.0);
  json_t *shape = json_object_get(in, "shape");
  ASSERT_EQ(json_integer_value(json_array_get(shape, 1)), h);
  ASSERT_EQ(json_integer_value(json_array_get(shape, 2)), w);
  double direct_max = json_real_value(json_object_get(json_array_get(json_object_get(r, "outputs"), 0), "max"));
  json_decref(r);
  char path[192];
  snprintf(path, sizeof path, "%s/d/out0.f32", dir);
  size_t n = (size_t)w * 2 * (size_t)h * 2 * 3;
  float *out = malloc(n * sizeof *out);
  FILE *f = fopen(path, "rb");
  ASSERT_TRUE(f != NULL);
  ASSERT_EQ(fread(out, sizeof *out, n, f), n);
  ASSERT_EQ(fgetc(f), EOF);
  fclose(f);
  int worst = 0;
  for (size_t i = 0; i < n; i++) {
    float v = out[i] + 0.5f; /* the model's range is 255: values are levels */
    int q = v <= 0.0f ? 0 : v >= 255.0f ? 255 : (int)v;
    int d = abs(q - (int)up[i]);
    if (d > worst || out[i] != out[i]) worst = out[i] != out[i] ? 999 : d;
  }
  fprintf(stderr, "  infer (direct) vs upscaler: max %d levels over %zu values, output max %.1f\n",
          worst, n, direct_max);
  ASSERT_LE(worst, 1);
  /* guarded path (a sim device): the same input, the same output range */
  r = run_infer(png, "--device sim:mem=256M", &st);
  ASSERT_TRUE(r != NULL);
  ASSERT_EQ(st, 0);
  json_t *o0 = json_array_get(
      json_object_get(json_array_get(json_object_get(r, "requests"), 0), "outputs"), 0);
  ASSERT_TRUE(o0 != NULL);
  ASSERT_EQ(json_integer_value(json_array_get(json_object_get(o0, "shape"), 1)), 2 * h);
  ASSERT_NEAR(json_real_value(json_object_get(o0, "max")), direct_max, 1e-3 * 255);
  json_decref(r);
  free(out);
  free(up);
  free(img);
  snprintf(args, sizeof args, "rm -rf %s", dir);
  ASSERT_EQ(system(args), 0);
#endif
}

int main(int argc, char **argv) {
  static const gg_test_case cases[] = {
      {"tiled_matches_untiled", tiled_matches_untiled},
      {"tile_choice_follows_budget", tile_choice_follows_budget},
      {"oom_halves_the_tile", oom_halves_the_tile},
      {"cancel_frees_everything", cancel_frees_everything},
      {"progress_in_order", progress_in_order},
      {"bad_input", bad_input},
      {"guard_free_input_shapes", guard_free_input_shapes},
      {"guard_drops_other_shapes_on_oom", guard_drops_other_shapes_on_oom},
      {"infer_feeds_the_model_range", infer_feeds_the_model_range},
      {NULL, NULL},
  };
  return gg_test_main(argc, argv, cases);
}
