/* Face pipeline: BlazeFace anchors and decoding, detection on the sample
 * photos, eye alignment on a synthetic image, and the default embedder and
 * threshold (docs/face-embedder.md) on flipped and distinct faces. */
#include "gpuguard/engine.h"
#include "gpuguard/error.h"
#include "gpuguard/image.h"
#include "gpuguard/log.h"
#include "test.h"
#include "vision/face.h"

#include <unistd.h>

/* ------------------------------------------------------------ anchors */

static void test_anchors(void) {
  float a[2 * GG_FACE_ANCHORS];
  ASSERT_EQ(gg__blazeface_anchors(256, a), GG_FACE_ANCHORS);
  /* Level 0: stride 16, 16x16 cells, 2 anchors each, row-major. */
  ASSERT_NEAR(a[0], 8, 0);
  ASSERT_NEAR(a[1], 8, 0);
  ASSERT_NEAR(a[2], 8, 0);
  ASSERT_NEAR(a[3], 8, 0);
  ASSERT_NEAR(a[4], 24, 0);
  ASSERT_NEAR(a[5], 8, 0);
  ASSERT_NEAR(a[2 * 32], 8, 0);
  ASSERT_NEAR(a[2 * 32 + 1], 24, 0); /* second row */
  ;
  /* Level 1 starts at 512: stride 32, 8x8 cells, 6 anchors each. */
  ASSERT_NEAR(a[2 * 512], 16, 0);
  ASSERT_NEAR(a[2 * 512 + 1], 16, 0);
  ASSERT_NEAR(a[2 * 518], 48, 0);
  ASSERT_NEAR(a[2 * 518 + 1], 16, 0);
  ASSERT_NEAR(a[2 * 895], 240, 0);
  ASSERT_NEAR(a[2 * 895 + 1], 240, 0);
  /* The front model (128): strides 8 and 16. */
  ASSERT_EQ(gg__blazeface_anchors(128, a), GG_FACE_ANCHORS);
  ASSERT_NEAR(a[0], 4, 0);
  ASSERT_NEAR(a[2 * 512], 8, 0);
  ASSERT_NEAR(a[2 * 895], 120, 0);
  ASSERT_EQ(gg__blazeface_anchors(100, a), GG_EINVAL);
}

/* ------------------------------------------------------------ decoding */

static float g_logits[GG_FACE_ANCHORS], g_regs[GG_FACE_ANCHORS * 16];

static void set_anchor(int i, float logit, float dx, float dy, float w, float h) {
  static const float kp[6][2] = {{-5, -4}, {5, -4}, {0, 1}, {0, 6}, {-9, -2}, {9, -2}};
  g_logits[i] = logit;
  float *r = g_regs + (size_t)i * 16;
  r[0] = dx, r[1] = dy, r[2] = w, r[3] = h;
  for (int k = 0; k < 6; k++)
    r[4 + 2 * k] = kp[k][0] + dx, r[5 + 2 * k] = kp[k][1] + dy;
}

static void test_decode_synthetic(void) {
  for (int i = 0; i < GG_FACE_ANCHORS; i++)
    g_logits[i] = -10;
  memset(g_regs, 0, sizeof g_regs);
  /* size 128: anchor 234 is cell (5, 7) of level 0, centre (44, 60). */
  set_anchor(234, 3.0f, 2, -1, 20, 24);
  set_anchor(235, 2.0f, 4, -1, 20, 24); /* same face, weaker: suppressed or blended */
  /* anchor 692 is cell (6, 3) of level 1 (stride 16), centre (104, 56). */
  set_anchor(692, 1.0f, 0, 0, 16, 16);
  set_anchor(700, -1.0f, 0, 0, 16, 16); /* score 0.27: below min_score */
  /* The input was the source (256 x 512) stretched: x2 in x, x4 in y. */
  const float map[4] = {2, 4, 0, 0};
  gg__face_box f[8];
  gg__face_detect_opts plain = {0.5f, 0.3f, 0};
  ASSERT_EQ(gg__blazeface_decode(g_logits, g_regs, 128, map, &plain, f, 8), 2);
  ASSERT_NEAR(f[0].score, 1 / (1 + exp(-3.0)), 1e-6);
  ASSERT_NEAR(f[0].x0, (44 + 2 - 10) * 2, 1e-4);
  ASSERT_NEAR(f[0].x1, (44 + 2 + 10) * 2, 1e-4);
  ASSERT_NEAR(f[0].y0, (60 - 1 - 12) * 4, 1e-4);
  ASSERT_NEAR(f[0].y1, (60 - 1 + 12) * 4, 1e-4);
  ASSERT_NEAR(f[0].kp[GG_FACE_KP_EYE_L][0], (44 + 2 - 5) * 2, 1e-4);
  ASSERT_NEAR(f[0].kp[GG_FACE_KP_EYE_L][1], (60 - 1 - 4) * 4, 1e-4);
  ASSERT_NEAR(f[0].kp[GG_FACE_KP_MOUTH][1], (60 - 1 + 6) * 4, 1e-4);
  ASSERT_NEAR(f[1].x0, (104 - 8) * 2, 1e-4);
  ASSERT_NEAR(f[1].y1, (56 + 8) * 4, 1e-4);
  /* Weighted: the first face is the score-weighted mean of anchors 234, 235. */
  gg__face_detect_opts wt = {0.5f, 0.3f, 1};
  ASSERT_EQ(gg__blazeface_decode(g_logits, g_regs, 128, map, &wt, f, 8), 2);
  double s1 = 1 / (1 + exp(-3.0)), s2 = 1 / (1 + exp(-2.0));
  ASSERT_NEAR(f[0].x0, ((44 + 2 - 10) * s1 + (44 + 4 - 10) * s2) / (s1 + s2) * 2, 1e-3);
  ASSERT_NEAR(f[0].score, s1, 1e-6);
  /* max caps the count; a letterbox offset moves everything. */
  ASSERT_EQ(gg__blazeface_decode(g_logits, g_regs, 128, map, &plain, f, 1), 1);
  const float lb[4] = {2, 2, -10, 20};
  ASSERT_EQ(gg__blazeface_decode(g_logits, g_regs, 128, lb, &plain, f, 8), 2);
  ASSERT_NEAR(f[0].x0, (44 + 2 - 10) * 2 - 10, 1e-4);
  ASSERT_NEAR(f[0].y0, (60 - 1 - 12) * 2 + 20, 1e-4);
}

/* ------------------------------------------------------------ detection */

static int sample_path(char *out, size_t len, int i) {
  char rel[128];
  snprintf(rel, sizeof rel, "models/face-api-1.7.15/demo/sample%d.jpg", i);
  gg_t_cache_path(out, len, rel);
  return access(out, R_OK) == 0;
}

/* Opens the detector, or says why the test cannot run (returns NULL). */
static gg__face_detector *open_detector(char *why, size_t len) {
  char p[1024], err[512], img[1024];
  if (!sample_path(img, sizeof img, 1)) {
    snprintf(why, len, "sample photos not fetched (%s); run scripts/fetch-models.sh", img);
    return NULL;
  }
  if (gg_model_resolve("blazeface", p, sizeof p)) {
    snprintf(why, len, "blazeface not fetched (%s); run scripts/fetch-models.sh", p);
    return NULL;
  }
  gg__face_detector *d = NULL;
  if (gg__face_detector_new(p, 2, &d, err, sizeof err)) snprintf(why, len, "%s", err);
  return d;
}

static int inside(const float p[2], float x0, float y0, float x1, float y1) {
  return p[0] >= x0 && p[0] <= x1 && p[1] >= y0 && p[1] <= y1;
}

static void test_detect_samples(void) {
  char why[1200];
  gg__face_detector *d = open_detector(why, sizeof why);
  if (!d) SKIP("%s", why);
  /* Counted by eye on the photos (docs/face-embedder.md): 22 faces. */
  static const int want[6] = {3, 3, 3, 4, 5, 4};
  int total = 0, bad = 0;
  for (int i = 1; i <= 6; i++) {
    char p[1024], err[512];
    sample_path(p, sizeof p, i);
    gg_image img;
    if (gg_image_load(p, &img, err, sizeof err)) {
      gg__face_detector_free(d);
      GG_T_FAIL("%s", err);
    }
    gg__face_box f[32];
    int n = gg__face_detect(d, &img, NULL, f, 32, err, sizeof err);
    if (n != want[i - 1])
      fprintf(stderr, "  sample%d: %d faces, want %d\n", i, n, want[i - 1]), bad++;
    for (int k = 0; k < n; k++) {
      float w = (float)img.width, h = (float)img.height;
      if (!(f[k].x0 >= 0 && f[k].y0 >= 0 && f[k].x1 <= w && f[k].y1 <= h && f[k].x1 - f[k].x0 > 50))
        fprintf(stderr, "  sample%d face %d: box %.0f,%.0f-%.0f,%.0f\n", i, k, f[k].x0, f[k].y0,
                f[k].x1, f[k].y1),
            bad++;
      for (int kp = 0; kp <= GG_FACE_KP_MOUTH; kp++)
        if (!inside(f[k].kp[kp], f[k].x0, f[k].y0, f[k].x1, f[k].y1))
          fprintf(stderr, "  sample%d face %d: keypoint %d outside its box\n", i, k, kp), bad++;
      /* Upright faces: the image-left eye is left of the image-right one,
       * and both are above the mouth. */
      if (!(f[k].kp[GG_FACE_KP_EYE_L][0] < f[k].kp[GG_FACE_KP_EYE_R][0] &&
            f[k].kp[GG_FACE_KP_EYE_L][1] < f[k].kp[GG_FACE_KP_MOUTH][1]))
        fprintf(stderr, "  sample%d face %d: keypoints out of order\n", i, k), bad++;
    }
    /* sample1's best face: eyes where the contact sheet of aligned crops
     * (bench-face-embed --sheet) shows them correct, within 8 px (4% of the
     * box), so a shifted or scaled decode fails. */
    if (i == 1 && n > 0 &&
        !(hypotf(f[0].kp[GG_FACE_KP_EYE_L][0] - 446, f[0].kp[GG_FACE_KP_EYE_L][1] - 464) < 8 &&
          hypotf(f[0].kp[GG_FACE_KP_EYE_R][0] - 512, f[0].kp[GG_FACE_KP_EYE_R][1] - 455) < 8))
      fprintf(stderr,
              "  sample1 face 0: eyes at %.0f,%.0f and %.0f,%.0f, want about 446,464 and 512,455\n",
              f[0].kp[0][0], f[0].kp[0][1], f[0].kp[1][0], f[0].kp[1][1]),
          bad++;
    total += n;
    gg_image_free(&img);
  }
  gg__face_detector_free(d);
  ASSERT_EQ(bad, 0);
  ASSERT_EQ(total, 22);
}

/* ------------------------------------------------------------ alignment */

/* Centroid of the pixels brighter than 128 in the columns [x0, x1). */
static int centroid(const gg_image *im, int x0, int x1, double *cx, double *cy) {
  double sx = 0, sy = 0, n = 0;
  for (int y = 0; y < im->height; y++)
    for (int x = x0; x < x1; x++) {
      int v = im->rgb[((size_t)y * (size_t)im->width + (size_t)x) * 3];
      if (v > 128) sx += (x + 0.5) * v, sy += (y + 0.5) * v, n += v;
    }
  if (n <= 0) return 0;
  *cx = sx / n, *cy = sy / n;
  return 1;
}

/* A dark 400x300 image with two bright round dots (radius 4) as "eyes". */
static int dots_image(gg_image *img, const float l[2], const float r[2]) {
  img->width = 400, img->height = 300;
  img->rgb = calloc((size_t)400 * 300, 3);
  if (!img->rgb) return 0;
  for (int y = 0; y < 300; y++)
    for (int x = 0; x < 400; x++) {
      double dl = hypot(x + 0.5 - l[0], y + 0.5 - l[1]), dr = hypot(x + 0.5 - r[0], y + 0.5 - r[1]);
      uint8_t v = dl <= 4 || dr <= 4 ? 255 : 20;
      memset(img->rgb + ((size_t)y * 400 + (size_t)x) * 3, v, 3);
    }
  return 1;
}

static void test_align_dots(void) {
  /* Eyes 120 px apart, tilted by about -24 degrees. */
  const float l[2] = {120.0f, 160.0f}, r[2] = {230.0f, 111.0f};
  gg_image img = {0}, out = {0};
  ASSERT_TRUE(dots_image(&img, l, r));
  const gg__face_align_spec spec = {0.315f, 0.46f};
  ASSERT_OK(gg__face_align(&img, l, r, 112, 112, &spec, &out));
  double lx, ly, rx, ry;
  int okl = centroid(&out, 0, 56, &lx, &ly), okr = centroid(&out, 56, 112, &rx, &ry);
  gg_image_free(&out);
  ASSERT_TRUE(okl && okr);
  /* The eyes land at (0.5 -+ 0.315 / 2) * 112, 0.46 * 112. */
  ASSERT_NEAR(lx, 112 * (0.5 - 0.1575), 0.5);
  ASSERT_NEAR(rx, 112 * (0.5 + 0.1575), 0.5);
  ASSERT_NEAR(ly, 112 * 0.46, 0.5);
  ASSERT_NEAR(ry, 112 * 0.46, 0.5);
  /* The framed crop: eyes level, on the box centre when the box is centred
   * on them, a quarter of the side apart. */
  gg__face_box f = {0};
  float cx = 0.5f * (l[0] + r[0]), cy = 0.5f * (l[1] + r[1]);
  f.x0 = cx - 100, f.x1 = cx + 100, f.y0 = cy - 100, f.y1 = cy + 100;
  memcpy(f.kp[GG_FACE_KP_EYE_L], l, sizeof l), memcpy(f.kp[GG_FACE_KP_EYE_R], r, sizeof r);
  ASSERT_OK(gg__face_align_framed(&img, &f, 240, 240, 1.2f, &out));
  okl = centroid(&out, 0, 120, &lx, &ly), okr = centroid(&out, 120, 240, &rx, &ry);
  gg_image_free(&out);
  gg_image_free(&img);
  ASSERT_TRUE(okl && okr);
  ASSERT_NEAR(ly, ry, 0.5);
  ASSERT_NEAR(ly, 120, 0.5);
  ASSERT_NEAR(0.5 * (lx + rx), 120, 0.5);
  /* A 200 px box enlarged 1.2x shown in 240 px: scale 1, the eye distance kept. */
  ASSERT_NEAR(rx - lx, hypot(r[0] - l[0], r[1] - l[1]) * 240.0 / (1.2 * 200), 0.5);
}

/* ------------------------------------------------------------ embeddings */

typedef struct emb_face {
  float v[2048], flip[2048];
} emb_face;

/* Embeds a face found in img with the defaults; 0 on success. */
static int embed_face(gg__face_embedder *e, const gg_image *img, const gg__face_box *f,
                      float *out) {
  gg_image crop;
  char err[256];
  int sz = gg__face_embedder_size(e);
  const gg__face_align_spec spec = {GG_FACE_ALIGN_EYE_DIST, GG_FACE_ALIGN_EYE_Y};
  if (gg__face_align_box(img, f, sz, sz, &spec, &crop, NULL)) return -1;
  gg__face_embed_prep prep = {GG_FACE_EMBED_SCALE, GG_FACE_EMBED_OFFSET, GG_FACE_EMBED_BGR};
  int n = gg__face_embed(e, &crop, &prep, out, 2048, err, sizeof err);
  gg_image_free(&crop);
  if (n < 0) fprintf(stderr, "  embed: %s\n", err);
  return n < 0 ? -1 : 0;
}

static void test_embed_threshold(void) {
  char why[1200], p[1024], err[512];
  gg__face_detector *d = open_detector(why, sizeof why);
  if (!d) SKIP("%s", why);
  if (gg_model_resolve(GG_FACE_EMBED_MODEL, p, sizeof p)) {
    gg__face_detector_free(d);
    SKIP("%s not fetched (%s); run scripts/fetch-models.sh", GG_FACE_EMBED_MODEL, p);
  }
  gg__face_embedder *e = NULL;
  if (gg__face_embedder_new(p, 2, &e, err, sizeof err)) {
    gg__face_detector_free(d);
    GG_T_FAIL("%s", err);
  }
  int dim = gg__face_embedder_dim(e);
  static emb_face faces[32];
  int nf = 0, fails = 0;
  for (int i = 1; i <= 6 && !fails; i++) {
    gg_image img, fl;
    gg__face_box f[16], g[16];
    sample_path(p, sizeof p, i);
    if (gg_image_load(p, &img, err, sizeof err)) {
      fails++;
      break;
    }
    int n = gg__face_detect(d, &img, NULL, f, 16, err, sizeof err);
    int m = gg__image_flip(&img, &fl) ? -1 : gg__face_detect(d, &fl, NULL, g, 16, err, sizeof err);
    for (int k = 0; k < n && nf < 32; k++) {
      /* The same face in the mirrored photo: the detection nearest the mirrored centre. */
      float mx = (float)img.width - 0.5f * (f[k].x0 + f[k].x1), my = 0.5f * (f[k].y0 + f[k].y1);
      int best = -1;
      float bd = 0.25f * (f[k].x1 - f[k].x0);
      for (int j = 0; j < m; j++) {
        float dd = hypotf(0.5f * (g[j].x0 + g[j].x1) - mx, 0.5f * (g[j].y0 + g[j].y1) - my);
        if (dd < bd) bd = dd, best = j;
      }
      if (best < 0 || embed_face(e, &img, &f[k], faces[nf].v) ||
          embed_face(e, &fl, &g[best], faces[nf].flip)) {
        fprintf(stderr, "  sample%d face %d: no flipped match or embed failed\n", i, k);
        fails++;
      }
      nf++;
    }
    gg_image_free(&fl);
    gg_image_free(&img);
  }
  gg__face_embedder_free(e);
  gg__face_detector_free(d);
  ASSERT_EQ(fails, 0);
  ASSERT_EQ(nf, 22);
  float same_min = 2, diff_max = -2;
  for (int i = 0; i < nf; i++) {
    float sc = gg__vec_cosine(faces[i].v, faces[i].flip, dim);
    if (getenv("GG_T_VERBOSE")) fprintf(stderr, "  face %d: flip %.3f\n", i, sc);
    same_min = fminf(same_min, sc);
    for (int j = i + 1; j < nf; j++)
      diff_max = fmaxf(diff_max, gg__vec_cosine(faces[i].v, faces[j].v, dim));
  }
  fprintf(stderr, "  %s: flipped same face >= %.3f, distinct faces <= %.3f, threshold %.3f\n",
          GG_FACE_EMBED_MODEL, same_min, diff_max, GG_FACE_MATCH_THRESHOLD);
  ASSERT_GT_F(same_min, GG_FACE_MATCH_THRESHOLD);
  ASSERT_LT_F(diff_max, GG_FACE_MATCH_THRESHOLD);
}

/* ------------------------------------------------------------ vectors */

static void test_vectors(void) {
  float a[4] = {3, 0, 4, 0}, b[4] = {0, 2, 0, 0}, z[4] = {0};
  ASSERT_NEAR(gg__vec_cosine(a, a, 4), 1, 1e-6);
  ASSERT_NEAR(gg__vec_cosine(a, b, 4), 0, 1e-6);
  ASSERT_NEAR(gg__vec_cosine(a, z, 4), 0, 0);
  gg__vec_l2_normalize(a, 4);
  ASSERT_NEAR(a[0], 0.6, 1e-6);
  ASSERT_NEAR(a[2], 0.8, 1e-6);
  gg__vec_l2_normalize(z, 4);
  ASSERT_NEAR(z[0], 0, 0);
}

int main(int argc, char **argv) {
  gg_log_set_level(GG_LOG_WARN);
  static const gg_test_case cases[] = {
      {"anchors", test_anchors},
      {"decode_synthetic", test_decode_synthetic},
      {"detect_samples", test_detect_samples},
      {"align_dots", test_align_dots},
      {"embed_threshold", test_embed_threshold},
      {"vectors", test_vectors},
      {NULL, NULL},
  };
  return gg_test_main(argc, argv, cases);
}
