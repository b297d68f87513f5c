/* The engine against TensorFlow.js: for each model and sample image, run
 * `gpuguard infer --dump-dir`, then tests/reference/run.js (tfjs 4.22.0, pure
 * JS CPU backend) on the very same input tensor, and compare every output:
 * max |ours - tfjs| <= 1e-3 * (tfjs output max - min), and cosine >= 0.9999
 * for embeddings. Environment: GPUGUARD_CACHE (models), GG_REF_IMAGES (how
 * many of sample1..6.jpg per model; default 6, 2 for nanodet whose tfjs-cpu
 * run takes ~6 s per image), GG_REF_KEEP=1 keeps the dump
 * dirs, GG_REF_THREADS (infer --threads, default 2). */
#include "reference-util.h"
#include "test.h"

#include <errno.h>
#include <jansson.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_IMAGES 6
#define MAX_OUTPUTS 16

typedef struct model_case {
  const char *name;
  const char *embedding; /* substring of the embedding output's name, or NULL */
  int images;            /* default number of sample images */
} model_case;

static char g_models_dir[1024], g_images_dir[1024];

/* Loads a raw little-endian float32 file (x86: host order). */
static float *load_f32(const char *dir, const char *file, size_t *count) {
  char p[2048];
  snprintf(p, sizeof p, "%s/%s", dir, file);
  size_t len = 0;
  char *b = slurp(p, &len);
  if (!b) return NULL;
  *count = len / 4;
  return (float *)b;
}

static void print_tail(const char *log) {
  char *s = slurp(log, NULL);
  if (!s) return;
  size_t n = strlen(s);
  fprintf(stderr, "  --- %s (last 1500 bytes) ---\n%s\n", log, n > 1500 ? s + n - 1500 : s);
  free(s);
}

/* Common preconditions; returns a SKIP reason or NULL when everything is there. */
static const char *missing_prereq(void) {
  static char why[1200];
  char p[1200];
  gg_t_cache_path(g_models_dir, sizeof g_models_dir, "models/human-models-3.0.4/models");
  gg_t_cache_path(g_images_dir, sizeof g_images_dir, "models/face-api-1.7.15/demo");
  if (run_cmd("node --version", "/dev/null") != 0)
    return "node not found (apt-get install nodejs npm)";
  snprintf(p, sizeof p, "%s/reference/node_modules/@tensorflow/tfjs/package.json", GG_TEST_DIR);
  if (!file_exists(p))
    return "tests/reference/node_modules missing (run scripts/fetch-reference.sh or "
           "scripts/install.sh --test)";
  snprintf(p, sizeof p, "%s/blazeface.json", g_models_dir);
  if (!file_exists(p)) {
    snprintf(why, sizeof why, "models missing in %s (run scripts/fetch-models.sh)", g_models_dir);
    return why;
  }
  snprintf(p, sizeof p, "%s/sample1.jpg", g_images_dir);
  if (!file_exists(p)) {
    snprintf(why, sizeof why, "sample images missing in %s (run scripts/fetch-models.sh)",
             g_images_dir);
    return why;
  }
  return NULL;
}

typedef struct out_stat {
  double max_err, range, tol, cosine;
  size_t count;
} out_stat;

static void compare(const float *ours, const float *ref, size_t n, out_stat *st) {
  double mn = INFINITY, mx = -INFINITY, err = 0, dot = 0, na = 0, nb = 0;
  int nan = 0;
  for (size_t i = 0; i < n; i++) {
    double a = ours[i], b = ref[i];
    mn = fmin(mn, b);
    mx = fmax(mx, b);
    double d = fabs(a - b);
    if (isnan(d))
      nan = 1;
    else if (d > err)
      err = d;
    dot += a * b, na += a * a, nb += b * b;
  }
  st->count = n;
  st->max_err = nan ? NAN : err;
  /* One-element outputs (a sigmoid score) have no spread: use |value|. */
  st->range = n > 1 ? mx - mn : fabs(mx);
  if (st->range < 1e-6) st->range = 1e-6;
  st->tol = 1e-3 * st->range;
  st->cosine = na > 0 && nb > 0 ? dot / sqrt(na * nb) : (na == nb ? 1 : 0);
}

/* Checks one dump dir after run.js wrote ref*.f32 + ref.json. */
static void check_dir(const model_case *mc, const char *img, const char *dir, int *compared) {
  char p[2048];
  snprintf(p, sizeof p, "%s/manifest.json", dir);
  json_error_t je;
  json_t *man = json_load_file(p, 0, &je);
  snprintf(p, sizeof p, "%s/ref.json", dir);
  json_t *ref = json_load_file(p, 0, &je);
  json_t *mo = json_object_get(man, "outputs"), *ro = json_object_get(ref, "outputs");
  if (!json_is_array(mo) || !json_is_array(ro) || json_array_size(mo) != json_array_size(ro) ||
      json_array_size(mo) == 0) {
    json_decref(man), json_decref(ref);
    GG_T_FAIL("%s %s: manifest/ref.json outputs missing or counts differ (%s)", mc->name, img, dir);
  }
  for (size_t i = 0; i < json_array_size(mo); i++) {
    json_t *m = json_array_get(mo, i), *r = json_array_get(ro, i);
    const char *name = json_string_value(json_object_get(m, "name"));
    const char *ofile = json_string_value(json_object_get(m, "file"));
    const char *rfile = json_string_value(json_object_get(r, "file"));
    json_t *mshape = json_object_get(m, "shape"), *rshape = json_object_get(r, "shape");
    char ms[128] = "", rs[128] = "";
    for (size_t k = 0; k < json_array_size(mshape); k++)
      snprintf(ms + strlen(ms), sizeof ms - strlen(ms), "%s%lld", k ? "," : "",
               (long long)json_integer_value(json_array_get(mshape, k)));
    for (size_t k = 0; k < json_array_size(rshape); k++)
      snprintf(rs + strlen(rs), sizeof rs - strlen(rs), "%s%lld", k ? "," : "",
               (long long)json_integer_value(json_array_get(rshape, k)));
    size_t no = 0, nr = 0;
    float *a = ofile ? load_f32(dir, ofile, &no) : NULL;
    float *b = rfile ? load_f32(dir, rfile, &nr) : NULL;
    if (!name || !a || !b || no != nr || strcmp(ms, rs)) {
      free(a), free(b);
      json_decref(man), json_decref(ref);
      GG_T_FAIL("%s %s output %zu '%s': ours [%s] %zu floats vs tfjs [%s] %zu floats (%s)",
                mc->name, img, i, name ? name : "?", ms, no, rs, nr, dir);
    }
    out_stat st;
    compare(a, b, no, &st);
    int is_emb = mc->embedding && strstr(name, mc->embedding);
    int ok = st.max_err <= st.tol && (!is_emb || st.cosine >= 0.9999);
    printf("  %-13s %-12s %-24s [%s] max_err %.3g (tol %.3g, range %.4g) cosine %.9f%s %s\n",
           mc->name, img, name, ms, st.max_err, st.tol, st.range, st.cosine,
           is_emb ? " (embedding)" : "", ok ? "ok" : "FAIL");
    if (!ok) {
      size_t worst = 0;
      for (size_t k = 0; k < no; k++)
        if (fabs((double)a[k] - b[k]) > fabs((double)a[worst] - b[worst])) worst = k;
      printf("    worst at flat index %zu: ours %.7g tfjs %.7g; first values ours %.5g %.5g %.5g "
             "tfjs %.5g %.5g %.5g\n",
             worst, (double)a[worst], (double)b[worst], (double)a[0], no > 1 ? (double)a[1] : 0.0,
             no > 2 ? (double)a[2] : 0.0, (double)b[0], nr > 1 ? (double)b[1] : 0.0,
             nr > 2 ? (double)b[2] : 0.0);
    }
    fflush(stdout);
    free(a), free(b);
    (*compared)++;
    if (!ok) {
      json_decref(man), json_decref(ref);
      GG_T_FAIL("%s %s output '%s' differs from tfjs: max_err %g > tol %g or cosine %.7f < "
                "0.9999 (dump kept in %s)",
                mc->name, img, name, st.max_err, st.tol, st.cosine, dir);
    }
  }
  json_decref(man), json_decref(ref);
}

static void run_model(const model_case *mc) {
  const char *why = missing_prereq();
  if (why) SKIP("%s", why);
  int n_img = mc->images;
  const char *e = getenv("GG_REF_IMAGES");
  if (e && atoi(e) > 0 && atoi(e) <= MAX_IMAGES) n_img = atoi(e);
  const char *threads = getenv("GG_REF_THREADS") ? getenv("GG_REF_THREADS") : "2";
  int keep = getenv("GG_REF_KEEP") && !strcmp(getenv("GG_REF_KEEP"), "1");

  char dirs[MAX_IMAGES][64], imgs[MAX_IMAGES][32];
  char model_json[2048] = "";
  int n_dirs = 0, failed = 0;
  char cmd[8192], log[512];
  for (int i = 0; i < n_img; i++) {
    snprintf(imgs[i], sizeof imgs[i], "sample%d.jpg", i + 1);
    snprintf(dirs[i], sizeof dirs[i], "/tmp/gg-ref-%s-XXXXXX", mc->name);
    if (!mkdtemp(dirs[i])) GG_T_FAIL("mkdtemp: %s", strerror(errno));
    n_dirs++;
    if (snprintf(log, sizeof log, "%s/infer.log", dirs[i]) >= (int)sizeof log) GG_T_FAIL("path");
    snprintf(cmd, sizeof cmd, "'%s' infer --model %s --image '%s/%s' --threads %s --dump-dir '%s'",
             GG_BIN, mc->name, g_images_dir, imgs[i], threads, dirs[i]);
    int rc = run_cmd(cmd, log);
    if (rc != 0) {
      char *out = slurp(log, NULL);
      int unimpl = rc == 2 && out && strstr(out, "not part of this build");
      free(out);
      if (unimpl) {
        for (int k = 0; k < n_dirs; k++) {
          snprintf(cmd, sizeof cmd, "rm -rf '%s'", dirs[k]);
          (void)!system(cmd);
        }
        SKIP("gpuguard infer is not implemented in this build yet (exit 2)");
      }
      print_tail(log);
      GG_T_FAIL("%s %s: '%s' exited %d", mc->name, imgs[i], cmd, rc);
    }
    if (!model_json[0]) {
      if (snprintf(log, sizeof log, "%s/manifest.json", dirs[i]) >= (int)sizeof log)
        GG_T_FAIL("path");
      json_error_t je;
      json_t *man = json_load_file(log, 0, &je);
      const char *mp = json_string_value(json_object_get(man, "model"));
      if (mp) snprintf(model_json, sizeof model_json, "%s", mp);
      json_decref(man);
      if (!model_json[0])
        GG_T_FAIL("%s: %s has no \"model\" (line %d: %s)", mc->name, log, je.line, je.text);
    }
  }
  /* One node process per model: the model is loaded once for all images. */
  int off = snprintf(cmd, sizeof cmd, "node '%s/reference/run.js' '%s'", GG_TEST_DIR, model_json);
  for (int i = 0; i < n_dirs; i++)
    off += snprintf(cmd + off, sizeof cmd - (size_t)off, " '%s'", dirs[i]);
  if (snprintf(log, sizeof log, "%s/ref.log", dirs[0]) >= (int)sizeof log) GG_T_FAIL("path");
  int rc = run_cmd(cmd, log);
  if (rc != 0) {
    print_tail(log);
    GG_T_FAIL("%s: tfjs reference failed (exit %d): %s", mc->name, rc, cmd);
  }
  int compared = 0;
  for (int i = 0; i < n_dirs; i++) {
    int before = gg_t_failed_checks;
    check_dir(mc, imgs[i], dirs[i], &compared);
    if (gg_t_failed_checks != before)
      failed = 1;
    else if (!keep) {
      snprintf(cmd, sizeof cmd, "rm -rf '%s'", dirs[i]);
      (void)!system(cmd);
    }
  }
  if (failed) return;
  ASSERT_GE(compared, n_img);
}

static const model_case k_models[] = {
    {"blazeface", NULL, 6},
    {"mobilefacenet", "embeddings", 6},
    {"nanodet", NULL, 2},
    {"faceres", "global_pooling", 6},
};

static void test_blazeface(void) {
  run_model(&k_models[0]);
}
static void test_mobilefacenet(void) {
  run_model(&k_models[1]);
}
static void test_nanodet(void) {
  run_model(&k_models[2]);
}
static void test_faceres(void) {
  run_model(&k_models[3]);
}

/* The comparison itself must be able to fail. */
static void test_compare_detects(void) {
  float ref[4] = {0.0f, 1.0f, 2.0f, 3.0f}, ours[4] = {0.0f, 1.0f, 2.0f, 3.0f};
  out_stat st;
  compare(ours, ref, 4, &st);
  ASSERT_NEAR(st.max_err, 0, 0);
  ASSERT_NEAR(st.cosine, 1.0, 1e-12);
  ASSERT_NEAR(st.tol, 3e-3, 1e-12);
  ours[2] = 2.01f;
  compare(ours, ref, 4, &st);
  ASSERT_GT_F(st.max_err, st.tol);
  ours[2] = NAN;
  compare(ours, ref, 4, &st);
  ASSERT_TRUE(isnan(st.max_err)); /* a NaN output is never within tolerance */
  float one_r[1] = {0.5f}, one_o[1] = {0.5004f};
  compare(one_o, one_r, 1, &st);
  ASSERT_LE_F(st.max_err, st.tol); /* 4e-4 <= 1e-3 * 0.5 */
}

int main(int argc, char **argv) {
  static const gg_test_case cases[] = {
      {"compare_detects", test_compare_detects},
      {"blazeface", test_blazeface},
      {"mobilefacenet", test_mobilefacenet},
      {"nanodet", test_nanodet},
      {"faceres", test_faceres},
      {NULL, NULL},
  };
  return gg_test_main(argc, argv, cases);
}
