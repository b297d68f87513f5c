/* The layers-model importer against TensorFlow.js: every @upscalerjs ESRGAN
 * model (slim, medium, thick; x2, x3, x4, x8) runs one patch of a sample
 * photo through our engine and through tf.loadLayersModel
 * (tests/reference/layers-run.js, the packages' custom layers registered as
 * they define them), and each output must match: max |ours - tfjs| <=
 * 1e-3 * (tfjs output max - min). Input range as the packages declare it:
 * [0, 255] for slim and medium (rdn), [0, 1] for thick (rrdn).
 * Environment: GPUGUARD_CACHE (models), GG_LAYERS_REF_BACKEND (tfjs backend,
 * default wasm: the pure-JS cpu backend takes ~30 s per thick model, wasm ~2 s),
 * GG_LAYERS_REF_KEEP=1 keeps the work dirs. */
#include "gpuguard/engine.h"
#include "gpuguard/error.h"
#include "gpuguard/image.h"
#include "reference-util.h"
#include "test.h"

#include <errno.h>
#include <jansson.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define N_SCALES 4
static const int k_scales[N_SCALES] = {2, 3, 4, 8};

typedef struct pkg_case {
  const char *name;  /* esrgan-slim */
  int patch;         /* patch edge in pixels */
  float input_scale; /* pixel * input_scale */
} pkg_case;

static void print_tail(const char *log) {
  char *s = slurp(log, NULL);
  if (!s) return;
  size_t n = strlen(s);
  fprintf(stderr, "  --- %s (last 1500 bytes) ---\n%s\n", log, n > 1500 ? s + n - 1500 : s);
  free(s);
}

static int write_f32(const char *path, const float *d, size_t n) {
  FILE *f = fopen(path, "wb");
  if (!f) return -1;
  size_t w = fwrite(d, 4, n, f);
  return fclose(f) || w != n ? -1 : 0;
}

typedef struct stat_out {
  double max_err, range, tol;
  size_t worst;
} stat_out;

static void compare(const float *ours, const float *ref, size_t n, stat_out *st) {
  double mn = INFINITY, mx = -INFINITY, err = 0;
  int nan = 0;
  st->worst = 0;
  for (size_t i = 0; i < n; i++) {
    mn = fmin(mn, ref[i]);
    mx = fmax(mx, ref[i]);
    double d = fabs((double)ours[i] - ref[i]);
    if (isnan(d))
      nan = 1;
    else if (d > err)
      err = d, st->worst = i;
  }
  st->max_err = nan ? NAN : err;
  st->range = mx - mn > 1e-6 ? mx - mn : 1e-6;
  st->tol = 1e-3 * st->range;
}

/* The patch: a square of the sample photo at a fixed place (hair, skin and
 * background edges), pixel * scale, NHWC. */
static int make_patch(const char *img_path, int p, float scale, float *dst, char *err,
                      size_t errlen) {
  gg_image img;
  int rc = gg_image_load(img_path, &img, err, errlen);
  if (rc) return rc;
  int x0 = img.width / 2 - p / 2, y0 = img.height / 3 - p / 2;
  if (x0 < 0 || y0 < 0 || x0 + p > img.width || y0 + p > img.height) {
    gg_image_free(&img);
    snprintf(err, errlen, "%.200s is smaller than the %dx%d patch", img_path, p, p);
    return GG_EINVAL;
  }
  for (int y = 0; y < p; y++)
    for (int x = 0; x < p; x++)
      for (int c = 0; c < 3; c++)
        dst[((size_t)y * p + x) * 3 + c] =
            (float)img.rgb[((size_t)(y0 + y) * img.width + (x0 + x)) * 3 + c] * scale;
  gg_image_free(&img);
  return 0;
}

/* Runs model_json on the patch with our engine; *out malloc'd (caller frees). */
static int run_ours(const char *model_json, const float *in, int p, float **out, size_t *n,
                    char *err, size_t errlen) {
  gg_model *m = NULL;
  gg_session *s = NULL;
  int rc = gg_model_load(model_json, &m, err, errlen);
  int64_t shape[4] = {1, p, p, 3};
  gg_session_opts so = {.threads = 2};
  if (!rc) rc = gg_session_new(m, shape, 4, &so, &s, err, errlen);
  if (!rc) {
    memcpy(gg_session_input(s, 0, NULL), in, (size_t)p * p * 3 * 4);
    rc = gg_session_run(s, err, errlen);
  }
  if (!rc) {
    gg_tensor_info oi;
    const float *o = gg_session_output(s, 0, &oi);
    *n = (size_t)gg_session_output_elems(s, 0);
    *out = malloc(*n * 4 + 4);
    if (*out)
      memcpy(*out, o, *n * 4);
    else
      rc = GG_ENOMEM;
  }
  gg_session_free(s);
  gg_model_free(m);
  return rc;
}

static void run_package(const pkg_case *pc) {
  char models[1024], img[1024], p[2048], rel[128], dir[64], log[256], cmd[4096];
  snprintf(rel, sizeof rel, "models/%s-1.0.0/models", pc->name);
  gg_t_cache_path(models, sizeof models, rel);
  gg_t_cache_path(img, sizeof img, "models/face-api-1.7.15/demo/sample1.jpg");
  const char *backend = getenv("GG_LAYERS_REF_BACKEND") ? getenv("GG_LAYERS_REF_BACKEND") : "wasm";
  if (run_cmd("node --version", "/dev/null") != 0)
    SKIP("node not found (apt-get install nodejs npm)");
  snprintf(p, sizeof p, "%s/reference/node_modules/@tensorflow/tfjs-backend-wasm/package.json",
           GG_TEST_DIR);
  if (!file_exists(p))
    SKIP("tests/reference/node_modules missing (run scripts/fetch-reference.sh)");
  snprintf(p, sizeof p, "%s/x2/model.json", models);
  if (!file_exists(p) || !file_exists(img))
    SKIP("%s or %s missing (run scripts/fetch-models.sh)", p, img);

  char err[1024] = "";
  size_t nin = (size_t)pc->patch * pc->patch * 3;
  float *in = malloc(nin * 4);
  if (!in) GG_T_FAIL("out of memory");
  int rc = make_patch(img, pc->patch, pc->input_scale, in, err, sizeof err);
  if (rc) {
    free(in);
    GG_T_FAIL("patch of %s: %s %s", img, gg_err_name(rc), err);
  }
  snprintf(dir, sizeof dir, "/tmp/gg-layers-ref-XXXXXX");
  if (!mkdtemp(dir)) {
    free(in);
    GG_T_FAIL("mkdtemp: %s", strerror(errno));
  }
  snprintf(p, sizeof p, "%s/in.f32", dir);
  if (write_f32(p, in, nin)) {
    free(in);
    GG_T_FAIL("cannot write %s", p);
  }
  /* One node process for the four scales: tfjs starts once. */
  json_t *jobs = json_array();
  for (int i = 0; i < N_SCALES; i++) {
    char mj[1200], of[32];
    snprintf(mj, sizeof mj, "%s/x%d/model.json", models, k_scales[i]);
    snprintf(of, sizeof of, "ref-x%d.f32", k_scales[i]);
    json_array_append_new(jobs,
                          json_pack("{s:s,s:s,s:[i,i,i,i],s:s}", "model", mj, "input", "in.f32",
                                    "shape", 1, pc->patch, pc->patch, 3, "output", of));
  }
  snprintf(p, sizeof p, "%s/jobs.json", dir);
  int jrc = json_dump_file(jobs, p, 0);
  json_decref(jobs);
  if (jrc) {
    free(in);
    GG_T_FAIL("cannot write %s", p);
  }
  snprintf(log, sizeof log, "%s/ref.log", dir);
  snprintf(cmd, sizeof cmd, "node '%s/reference/layers-run.js' '%s' --backend %s", GG_TEST_DIR, p,
           backend);
  rc = run_cmd(cmd, log);
  if (rc != 0) {
    free(in);
    print_tail(log);
    GG_T_FAIL("%s: tfjs reference failed (exit %d): %s", pc->name, rc, cmd);
  }
  int failed = 0;
  for (int i = 0; i < N_SCALES && !failed; i++) {
    int s = k_scales[i];
    char mj[1200];
    snprintf(mj, sizeof mj, "%s/x%d/model.json", models, s);
    float *ours = NULL;
    size_t no = 0, nr = 0;
    rc = run_ours(mj, in, pc->patch, &ours, &no, err, sizeof err);
    if (rc) {
      failed = 1;
      fprintf(stderr, "  %s x%d: our engine failed: %s %s\n", pc->name, s, gg_err_name(rc), err);
      gg_t_failed_checks++;
      break;
    }
    snprintf(p, sizeof p, "%s/ref-x%d.f32", dir, s);
    float *ref = (float *)slurp(p, &nr);
    nr /= 4;
    size_t want = (size_t)pc->patch * s * pc->patch * s * 3;
    if (!ref || no != want || nr != want) {
      free(ours), free(ref);
      failed = 1;
      fprintf(stderr, "  %s x%d: ours %zu floats, tfjs %zu, expected %zu ([1,%d,%d,3])\n", pc->name,
              s, no, nr, want, pc->patch * s, pc->patch * s);
      gg_t_failed_checks++;
      break;
    }
    stat_out st;
    compare(ours, ref, no, &st);
    int ok = st.max_err <= st.tol;
    printf("  %-13s x%d [1,%d,%d,3] max_err %.3g (tol %.3g, range %.4g) tfjs-%s %s\n", pc->name, s,
           pc->patch * s, pc->patch * s, st.max_err, st.tol, st.range, backend, ok ? "ok" : "FAIL");
    if (!ok)
      printf("    worst at flat index %zu: ours %.7g tfjs %.7g\n", st.worst, (double)ours[st.worst],
             (double)ref[st.worst]);
    fflush(stdout);
    free(ours), free(ref);
    if (!ok) {
      failed = 1;
      fprintf(stderr, "  %s x%d differs from tfjs: max_err %g > tol %g (work dir %s kept)\n",
              pc->name, s, st.max_err, st.tol, dir);
      gg_t_failed_checks++;
    }
  }
  free(in);
  int keep = getenv("GG_LAYERS_REF_KEEP") && !strcmp(getenv("GG_LAYERS_REF_KEEP"), "1");
  if (!failed && !keep) {
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    (void)!system(cmd);
  }
}

static const pkg_case k_pkgs[] = {
    {"esrgan-slim", 48, 1.0f},
    {"esrgan-medium", 48, 1.0f},
    {"esrgan-thick", 32, 1.0f / 255.0f},
};

static void test_slim(void) {
  run_package(&k_pkgs[0]);
}
static void test_medium(void) {
  run_package(&k_pkgs[1]);
}
static void test_thick(void) {
  run_package(&k_pkgs[2]);
}

/* The comparison must be able to fail. */
static void test_compare_detects(void) {
  float ref[4] = {0.0f, 1.0f, 2.0f, 3.0f}, ours[4] = {0.0f, 1.0f, 2.0f, 3.0f};
  stat_out st;
  compare(ours, ref, 4, &st);
  ASSERT_NEAR(st.max_err, 0, 0);
  ASSERT_NEAR(st.tol, 3e-3, 1e-12);
  ours[2] = 2.01f;
  compare(ours, ref, 4, &st);
  ASSERT_GT_F(st.max_err, st.tol);
  ours[2] = NAN;
  compare(ours, ref, 4, &st);
  ASSERT_TRUE(isnan(st.max_err));
}

int main(int argc, char **argv) {
  static const gg_test_case cases[] = {
      {"compare_detects", test_compare_detects},
      {"slim", test_slim},
      {"medium", test_medium},
      {"thick", test_thick},
      {NULL, NULL},
  };
  return gg_test_main(argc, argv, cases);
}
