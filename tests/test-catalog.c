/* The model catalog: its entries are consistent with themselves and with
 * the preprocessing table of src/vision/image.c, each entry's file exists
 * when the models are fetched, and the input shape it declares is the one
 * the loaded model has. */
#include "gpuguard/catalog.h"
#include "gpuguard/engine.h"
#include "gpuguard/error.h"
#include "gpuguard/image.h"
#include "gpuguard/log.h"
#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void test_entries(void) {
  ASSERT_EQ(gg_catalog_count(), 6);
  ASSERT_TRUE(gg_catalog_at(gg_catalog_count()) == NULL);
  char names[256] = "";
  for (size_t i = 0; i < gg_catalog_count(); i++) {
    const gg_model_entry *e = gg_catalog_at(i);
    ASSERT_TRUE(e && e->name && e->file && e->channels && e->resize && e->range && e->pp.why);
    ASSERT_TRUE(gg_catalog_find(e->name) == e);
    ASSERT_TRUE(gg_catalog_find_path(e->file) == e);
    ASSERT_TRUE(strcmp(gg_catalog_kind_name(e->kind), "unknown") != 0);
    /* A file relative to the models directory, never outside it. */
    ASSERT_TRUE(e->file[0] != '/' && !strstr(e->file, ".."));
    /* The declared shape is the preprocessed image's. */
    int hd = e->pp.nchw ? 2 : 1, wd = e->pp.nchw ? 3 : 2, cd = e->pp.nchw ? 1 : 3;
    ASSERT_EQ(e->input_shape[0], 1);
    ASSERT_EQ(e->input_shape[cd], 3);
    ASSERT_EQ(e->input_shape[hd], e->pp.height);
    ASSERT_EQ(e->input_shape[wd], e->pp.width);
    ASSERT_STREQ(e->channels, "RGB");
    /* The same convention as src/vision/image.c's own table (which
     * gg_preprocess_for_model still reads for models outside the catalog). */
    gg_preprocess p;
    ASSERT_EQ(gg_preprocess_for_model(e->file, &p), 1);
    ASSERT_EQ(p.width, e->pp.width);
    ASSERT_EQ(p.height, e->pp.height);
    ASSERT_EQ(p.nchw, e->pp.nchw);
    ASSERT_NEAR(p.scale, e->pp.scale, 0.0);
    ASSERT_NEAR(p.offset, e->pp.offset, 0.0);
    size_t used = strlen(names);
    snprintf(names + used, sizeof names - used, "%s%s", i ? "," : "", e->name);
  }
  /* The default model lists of serve and bench are the catalog's first
   * entries; the anti-spoofing pair after them loads on first use. */
  ASSERT_STREQ(names, GG_CATALOG_MODELS ",antispoof,liveness");
  ASSERT_EQ(gg_catalog_find("antispoof")->kind, GG_MODEL_FACE_ANTISPOOF);
  ASSERT_STREQ(gg_catalog_kind_name(GG_MODEL_FACE_LIVENESS), "face_liveness");
  ASSERT_TRUE(gg_catalog_find("nosuchmodel") == NULL);
  ASSERT_TRUE(gg_catalog_find(NULL) == NULL);
  ASSERT_TRUE(gg_catalog_find("blazeface-front") == NULL); /* no prefix matching */
  ASSERT_TRUE(gg_catalog_find_path("/x/y/blazeface-front.json") == NULL);
  ASSERT_TRUE(gg_catalog_find_path("/x/y/nanodet.json") == gg_catalog_find("nanodet"));
  ASSERT_STREQ(gg_catalog_kind_name(GG_MODEL_KIND_COUNT), "unknown");
}

/* gg_catalog_path with a models directory: the package layout or a flat
 * folder; a missing file is GG_ENOTFOUND with the path tried. */
static void test_path(void) {
  char dir[] = "/tmp/gg-catalog-XXXXXX";
  ASSERT_TRUE(mkdtemp(dir) != NULL);
  const gg_model_entry *e = gg_catalog_find("mobilefacenet");
  char out[1024], want[1024];
  ASSERT_EQ(gg_catalog_path(e, dir, out, sizeof out), GG_ENOTFOUND);
  ASSERT_CONTAINS(out, dir);
  /* The package layout: dir/human-models-3.0.4/models/mobilefacenet.json */
  char cmd[2200];
  snprintf(want, sizeof want, "%s/%s", dir, e->file);
  snprintf(cmd, sizeof cmd, "mkdir -p \"$(dirname '%s')\" && touch '%s'", want, want);
  ASSERT_EQ(system(cmd), 0);
  ASSERT_OK(gg_catalog_path(e, dir, out, sizeof out));
  ASSERT_STREQ(out, want);
  /* A flat folder wins (as gg_model_resolve looks there first). */
  snprintf(want, sizeof want, "%s/mobilefacenet.json", dir);
  FILE *f = fopen(want, "w");
  ASSERT_TRUE(f != NULL);
  fclose(f);
  ASSERT_OK(gg_catalog_path(e, dir, out, sizeof out));
  ASSERT_STREQ(out, want);
  ASSERT_EQ(gg_catalog_path(NULL, dir, out, sizeof out), GG_EINVAL);
  ASSERT_EQ(gg_catalog_path(e, dir, out, 1), GG_EINVAL);
  /* Through the environment, as the server and the guard's runner use it. */
  const char *old = getenv("GPUGUARD_MODELS_DIR");
  char *saved = old ? strdup(old) : NULL;
  setenv("GPUGUARD_MODELS_DIR", dir, 1);
  ASSERT_OK(gg_catalog_resolve("mobilefacenet", out, sizeof out));
  ASSERT_STREQ(out, want);
  if (saved) {
    setenv("GPUGUARD_MODELS_DIR", saved, 1);
    free(saved);
  } else {
    unsetenv("GPUGUARD_MODELS_DIR");
  }
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  ASSERT_EQ(system(cmd), 0);
}

/* With the models fetched: every entry's file exists and the input shape
 * it declares is what the model's placeholder says (unknown dims, -1, must
 * be the batch only). */
static void test_matches_models(void) {
  char path[1024];
  if (gg_catalog_path(gg_catalog_at(0), NULL, path, sizeof path))
    SKIP("models not fetched (%s missing; run scripts/fetch-models.sh)", path);
  for (size_t i = 0; i < gg_catalog_count(); i++) {
    const gg_model_entry *e = gg_catalog_at(i);
    int rc = gg_catalog_path(e, NULL, path, sizeof path);
    if (rc) fprintf(stderr, "  %s: %s missing\n", e->name, path);
    ASSERT_OK(rc);
    /* The same file the engine would resolve the name to. */
    char via_engine[1024];
    ASSERT_OK(gg_model_resolve(e->name, via_engine, sizeof via_engine));
    ASSERT_STREQ(path, via_engine);
    gg_model *m = NULL;
    char err[256] = "";
    rc = gg_model_load(path, &m, err, sizeof err);
    if (rc) fprintf(stderr, "  %s: %s\n", e->name, err);
    ASSERT_OK(rc);
    gg_tensor_info ti;
    rc = gg_model_input(m, 0, &ti);
    int n_inputs = gg_model_n_inputs(m);
    gg_model_free(m);
    ASSERT_OK(rc);
    ASSERT_EQ(n_inputs, 1);
    ASSERT_EQ(ti.ndim, 4);
    for (int d = 0; d < 4; d++) {
      int64_t got = ti.shape[d] < 0 && d == 0 ? 1 : ti.shape[d];
      if (got != e->input_shape[d])
        fprintf(stderr, "  %s: dim %d is %lld in the model, %lld in the catalog\n", e->name, d,
                (long long)ti.shape[d], (long long)e->input_shape[d]);
      ASSERT_EQ(got, e->input_shape[d]);
    }
  }
}

int main(int argc, char **argv) {
  gg_log_set_level(GG_LOG_ERROR);
  static const gg_test_case cases[] = {
      {"entries", test_entries},
      {"path", test_path},
      {"matches_models", test_matches_models},
      {0},
  };
  return gg_test_main(argc, argv, cases);
}
