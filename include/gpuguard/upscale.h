/* gpuguard generators: multi-step image generation with progress and
 * cancellation between steps, and the first generator, a tiled ESRGAN
 * upscaler that runs every tile through the guard within a memory budget. */
#ifndef GPUGUARD_UPSCALE_H
#define GPUGUARD_UPSCALE_H

#include "gpuguard/guard.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- generators ----------------------------------------------------------
 * A generator produces one image in total_steps steps (an upscaler: one
 * tile per step; a diffusion model: one denoising step each). The caller
 * drives it step by step, or with gg_generator_run; a cancel from any thread
 * is seen before the next step starts. */
typedef struct gg_generator gg_generator;

/* The final image: tightly packed 8-bit RGB rows. Borrowed from the
 * generator (valid until gg_generator_free). */
typedef struct gg_gen_image {
  int width, height;
  const uint8_t *rgb;
} gg_gen_image;

/* Called after each finished step with step = 1..total_steps, in order. */
typedef void (*gg_gen_progress_fn)(void *user, int step, int total_steps);

/* What an implementation provides: a struct of functions plus its ctx. */
typedef struct gg_generator_i {
  const char *name; /* "esrgan", ... */
  /* Runs step `index` (0-based, called in order, once each). Returns 0 or
   * a GG_E* error with a message in err. Required. */
  int (*step)(void *ctx, int index, char *err, size_t errlen);
  /* The image after the last step. Required. */
  int (*image)(void *ctx, gg_gen_image *out);
  /* Frees the working memory (tiles, device sessions are the guard's) after a
   * cancel or a failed step, keeping what info calls read. Optional. */
  void (*release)(void *ctx);
  /* Frees ctx. Optional: NULL means free(ctx). */
  void (*destroy)(void *ctx);
} gg_generator_i;

/* Wraps an implementation (iface borrowed, must outlive the generator; ctx
 * owned from here on, also on failure). Returns 0, GG_EINVAL (no step or
 * image function, total_steps < 1) or GG_ENOMEM. */
int gg_generator_new(const gg_generator_i *iface, void *ctx, int total_steps, gg_generator **out);
/* Frees the generator and its ctx; NULL is a no-op. */
void gg_generator_free(gg_generator *g);

int gg_generator_total_steps(const gg_generator *g);
/* Steps finished so far (0..total_steps). */
int gg_generator_current_step(const gg_generator *g);
/* The implementation's ctx and interface (borrowed), for its own info calls. */
void *gg_generator_ctx(const gg_generator *g);
const gg_generator_i *gg_generator_iface(const gg_generator *g);

/* Asks the generator to stop. Thread-safe and async-signal-safe: sets a flag
 * the next gg_generator_step reads. */
void gg_generator_cancel(gg_generator *g);

/* Runs the next step. Returns 0; GG_ECANCELED when a cancel came first (the
 * working memory is freed then, and every later call says GG_ECANCELED);
 * GG_ESTATE when every step is done or an earlier step failed; or the
 * step's error (the working memory is freed, the generator is failed). */
int gg_generator_step(gg_generator *g, char *err, size_t errlen);

/* Runs the remaining steps, calling progress (may be NULL) after each.
 * Returns 0 once the last step is done, else what gg_generator_step
 * returned. */
int gg_generator_run(gg_generator *g, gg_gen_progress_fn progress, void *user, char *err,
                     size_t errlen);

/* The final image once every step is done: 0, else GG_ESTATE. */
int gg_generator_image(gg_generator *g, gg_gen_image *out);

/* ---- the ESRGAN upscaler ---------------------------------------------------
 * Models "esrgan-slim", "esrgan-medium", "esrgan-thick" (the
 * @upscalerjs/esrgan-* 1.0.0 layers models, fetched by
 * scripts/fetch-models.sh) at scale 2, 3, 4 or 8. The image is cut into
 * overlapping square tiles (every tile the same size, the last ones moved
 * back inside the image), each run through gg_guard_infer and blended into
 * the output with linear feathering over the overlap. docs/upscale.md. */

#define GG_UPSCALE_MAX_CANDIDATES 16
#define GG_UPSCALE_MAX_OUTPUT 16384 /* default limit on the output's longer side */

typedef struct gg_upscale_opts {
  const char *model; /* "esrgan-slim", "esrgan-medium", "esrgan-thick" */
  int scale;         /* 2, 3, 4 or 8 */
  int tile;          /* input tile side; 0 = the largest the plan says fits */
  int overlap;       /* input pixels neighbouring tiles share; 0 = 16 */
  int max_tile;      /* largest candidate when choosing; 0 = 512 */
  int min_tile;      /* halving after an OOM stops below this; 0 = 16 */
  int max_output;    /* limit on the output's width and height; 0 = 16384 */
  /* Host bytes the tile buffers and the blend strip may take (the result
   * image is not counted); 0 = 2 GiB. */
  uint64_t host_limit;
} gg_upscale_opts;

/* One candidate tile size of the choice. */
typedef struct gg_upscale_candidate {
  int tile;
  uint64_t device_peak; /* the engine's planned peak for [1,tile,tile,3]; 0 when not planned */
  /* What the device pool counted for that session while planning it: whole
   * pool blocks, so up to GG_POOL_SMALL_MAX per block above device_peak
   * (docs/upscale.md). A tile fits when the larger of the two does. */
  uint64_t device_measured;
  uint64_t host_bytes; /* tile buffers + blend strip */
  int fits;            /* 1: within the device's free memory and the host limit */
  int rc;              /* planning error (GG_EBUDGET: over the budget) */
} gg_upscale_candidate;

typedef struct gg_upscale_info {
  char model[32];
  char model_path[1024];
  int scale;
  float range; /* pixel range of the model's input and output: 255 or 1 */
  int in_w, in_h, out_w, out_h;
  int tile;                    /* the chosen input tile side (before any halving) */
  int overlap;                 /* input pixels */
  int tiles_x, tiles_y, tiles; /* tiles == total steps */
  int halvings;                /* tiles (or sub-tiles) split after an out-of-memory */
  int smallest_tile;           /* smallest tile side that ran */
  int runs;                    /* gg_guard_infer calls that succeeded */
  /* The choice: the primary device's budget and free bytes when planned, the
   * planned peak of the chosen tile, the host bytes it needs, the candidates
   * tried (largest first). */
  char device[128];
  uint64_t device_budget, device_free;
  uint64_t planned_peak, planned_measured; /* the chosen candidate's device_peak, device_measured */
  uint64_t host_bytes;
  int n_candidates;
  gg_upscale_candidate candidates[GG_UPSCALE_MAX_CANDIDATES];
  uint64_t guard_planned_peak; /* the guard's planned peak of the first full-size tile run */
  char served_by[128];         /* device spec of the last run */
  double plan_ms;              /* choosing the tile */
  double total_ms;             /* all steps so far */
  double step_ms_min, step_ms_max, step_ms_mean;
  const double *step_ms; /* per step, `tiles` entries (borrowed; 0 for steps not run) */
} gg_upscale_info;

/* The model.json path of `model` at `scale` under the model cache
 * (${GPUGUARD_CACHE:-$HOME/.cache/gpuguard}/models/esrgan-*-1.0.0/models/xN/)
 * and its pixel range (255 for slim and medium, 1 for thick; range may be
 * NULL). Returns 0, GG_EINVAL (unknown model or scale, with the known ones in
 * err) or GG_ENOTFOUND (not fetched: run scripts/fetch-models.sh). */
int gg_upscale_model_path(const char *model, int scale, char *out, size_t len, float *range,
                          char *err, size_t errlen);

struct gg_preprocess; /* gpuguard/image.h */
/* When `model_path` is one of the upscaler models (a path containing
 * esrgan-{slim,medium,thick}-1.0.0/models/xN/), sets pp's scale and offset
 * to the pixel range that model takes, from the same table the upscaler
 * feeds its tiles from (pixel for slim and medium, pixel / 255 for thick),
 * and pp->why; returns 1. Otherwise leaves pp as it is and returns 0.
 * `gpuguard infer` and gg_model_image_input use it, so a model run on its
 * own gets the values the upscaler would give it. */
int gg_upscale_preprocess(const char *model_path, struct gg_preprocess *pp);

/* Prepares an upscale of `rgb` (width*height*3 bytes, copied) through guard
 * g (borrowed; must outlive the generator): checks the arguments, loads the
 * model on the guard, chooses the tile size (docs/upscale.md: the engine's
 * planned peak per candidate against the primary device's budget and free
 * memory, and the host limit) and allocates the result. Returns 0 with
 * *out (free with gg_generator_free), or GG_EINVAL (unknown model/scale,
 * zero or negative size, bad options), GG_ETOO_LARGE (output beyond
 * max_output), GG_ENOTFOUND (model not fetched), GG_EBUDGET (not even the
 * smallest tile fits), GG_ENOMEM, or the guard's load error; err says which. */
int gg_upscale_new(gg_guard *g, const gg_upscale_opts *opts, const uint8_t *rgb, int width,
                   int height, gg_generator **out, char *err, size_t errlen);

/* Fills *out for an upscaler made by gg_upscale_new. GG_EINVAL for another
 * kind of generator. */
int gg_upscale_info_get(const gg_generator *gen, gg_upscale_info *out);

#ifdef __cplusplus
}
#endif
#endif
