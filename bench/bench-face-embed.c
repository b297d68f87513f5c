/* Face embedder measurement (issue 13): which model and preprocessing
 * separate identities, and where to put the match threshold.
 *
 * 1. BlazeFace finds the faces in the sample photos (face-api's demo
 *    sample1..6.jpg: 22 faces, each a different person).
 * 2. Each face's enrolled embedding comes from the photo's own detection.
 *    A region around it (3x the box) is the "camera frame"; camera-like
 *    views of it are made (flip, zoom 0.9 / 1.1, crop offset, brightness
 *    +-20%, blur, rotation +-10 degrees, JPEG quality 50, low resolution,
 *    and the frame unchanged). Every view goes through the pipeline again:
 *    detection on the view, alignment, embedding.
 * 3. For each embedder x crop x value range x channel order, and each score
 *    (cosine; cosine after centring on the mean embedding of the other
 *    faces, leave-one-out; human's raw Euclidean distance), it reports
 *    different-person scores (every pair of distinct faces), same-person
 *    scores (each face against each of its views), their separation, the
 *    threshold with the fewest errors and its false-accept / false-reject
 *    rates, and the false-accept rate of views against other faces.
 *
 * Usage: bench-face-embed [--threads N] [--model NAME]... [--crop NAME]
 *                         [--range NAME] [--order RGB|BGR] [--threshold T]
 *                         [--images DIR] [--sheet FILE.ppm]
 * (--crop / --range / --order run only that crop, value range or channel
 * order; --threshold also reports the rates at T and which views it
 * rejects; --sheet writes the boxrot crops of every face and view as a PPM
 * contact sheet.)
 * Models resolve like `gpuguard infer --model` (GPUGUARD_MODELS_DIR, cache).
 * docs/face-embedder.md has a run and the conclusions. */
#include "gpuguard/engine.h"
#include "gpuguard/error.h"
#include "gpuguard/image.h"
#include "gpuguard/log.h"
#include "vision/face.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_FACES 64
#define N_PHOTOS 6

/* ---- views ------------------------------------------------------------ */

enum {
  V_BASE = 0,
  V_FLIP,
  V_ZOOM_OUT, /* scale 0.9 */
  V_ZOOM_IN,  /* scale 1.1 */
  V_OFFSET,   /* aligned crop shifted by 10% of the face box (a detector error) */
  V_BRIGHT,   /* x1.2 */
  V_DARK,     /* x0.8 */
  V_BLUR,     /* Gaussian, sigma 2% of the face box (2 px on a 100 px face) */
  V_ROT_P,    /* +10 degrees */
  V_ROT_M,    /* -10 degrees */
  V_JPEG,     /* quality 50 */
  V_LOWRES,   /* face box 48 px wide, upscaled back */
  V_REGION,   /* the region as it is, detected again (detector jitter only) */
  N_VIEWS
};
static const char *k_view_names[N_VIEWS] = {
    "base", "flip",   "zoom0.9", "zoom1.1", "offset10%", "bright+20%", "dark-20%",
    "blur", "rot+10", "rot-10",  "jpeg50",  "lowres48",  "redetect"};

/* ---- crops ------------------------------------------------------------ */

enum { C_TIGHT = 0, C_LOOSE, C_BOX, C_BOXROT, N_CROPS };
static const char *k_crop_names[N_CROPS] = {"tight", "loose", "box", "boxrot"};
/* tight: eye-aligned to ArcFace's 112x112 template (eyes 35.2 px apart at
 * y 51.6); loose: eye-aligned with more forehead and chin; box: human's
 * crop, the detector box enlarged 1.2x, not rotated; boxrot: the same
 * framing rotated so the eyes are level (gg__face_align_framed). */
static const gg__face_align_spec k_specs[2] = {{0.315f, 0.46f}, {0.24f, 0.42f}};

enum { S_112 = 0, S_224, N_SIZES };
static const int k_sizes[N_SIZES] = {112, 224};

typedef struct face {
  int photo;
  gg__face_box box; /* in the photo */
  gg_image region;  /* the face's "camera frame" */
  float rx, ry;     /* region origin in the photo */
  int found[N_VIEWS];
  int profile;
  gg_image crop[N_CROPS][N_SIZES][N_VIEWS];
} face;

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* The view image for face f and where its face centre should be. */
static int make_view(const face *f, int v, gg_image *out, float *ecx, float *ecy) {
  const gg_image *r = &f->region;
  float bw = f->box.x1 - f->box.x0;
  float cx = 0.5f * (f->box.x0 + f->box.x1) - f->rx, cy = 0.5f * (f->box.y0 + f->box.y1) - f->ry;
  *ecx = cx, *ecy = cy;
  switch (v) {
  case V_BASE:
  case V_REGION:
  case V_OFFSET: return gg__image_copy(r, out);
  case V_FLIP: *ecx = (float)r->width - cx; return gg__image_flip(r, out);
  case V_ZOOM_OUT: return gg__image_rotate_scale(r, cx, cy, 0, 0.9f, out);
  case V_ZOOM_IN: return gg__image_rotate_scale(r, cx, cy, 0, 1.1f, out);
  case V_BRIGHT: return gg__image_brightness(r, 1.2f, out);
  case V_DARK: return gg__image_brightness(r, 0.8f, out);
  case V_BLUR: return gg__image_blur(r, 0.02f * bw, out);
  case V_ROT_P: return gg__image_rotate_scale(r, cx, cy, 10, 1, out);
  case V_ROT_M: return gg__image_rotate_scale(r, cx, cy, -10, 1, out);
  case V_JPEG: return gg__image_jpeg_roundtrip(r, 50, out);
  case V_LOWRES: {
    float s = 48.0f / bw;
    int w = (int)lroundf((float)r->width * s), h = (int)lroundf((float)r->height * s);
    gg_image small;
    int rc = gg__image_resize(r, w < 1 ? 1 : w, h < 1 ? 1 : h, &small);
    if (rc) return rc;
    rc = gg__image_resize(&small, r->width, r->height, out);
    gg_image_free(&small);
    return rc;
  }
  }
  return GG_EINVAL;
}

/* Detects faces in a view and picks the one whose centre is closest to the
 * expected one (within half a box). Returns 1 when found. */
static int find_face(gg__face_detector *det, const gg_image *img, float ecx, float ecy, float bw,
                     gg__face_box *out) {
  gg__face_box fb[16];
  gg__face_detect_opts o = {0.3f, 0.3f, 1};
  char err[256];
  int n = gg__face_detect(det, img, &o, fb, 16, err, sizeof err);
  if (n < 0) {
    fprintf(stderr, "detect: %s\n", err);
    return 0;
  }
  int best = -1;
  float bd = 0.5f * bw;
  for (int i = 0; i < n; i++) {
    float dx = 0.5f * (fb[i].x0 + fb[i].x1) - ecx, dy = 0.5f * (fb[i].y0 + fb[i].y1) - ecy;
    float d = sqrtf(dx * dx + dy * dy);
    if (d < bd) bd = d, best = i;
  }
  if (best < 0) return 0;
  *out = fb[best];
  return 1;
}

static int make_crops(face *f, int v, const gg_image *img, const gg__face_box *b) {
  float bw = b->x1 - b->x0;
  gg__face_box bb = *b;
  if (v == V_OFFSET) {
    /* The whole detection shifted right by 10% of the box width. */
    float d = 0.1f * bw;
    bb.x0 += d, bb.x1 += d;
    for (int k = 0; k < GG_FACE_KP_COUNT; k++)
      bb.kp[k][0] += d;
  }
  for (int s = 0; s < N_SIZES; s++) {
    int sz = k_sizes[s], rc;
    for (int c = 0; c < 2; c++) {
      int prof = 0;
      rc = gg__face_align_box(img, &bb, sz, sz, &k_specs[c], &f->crop[c][s][v], &prof);
      if (rc) return rc;
      if (v == V_BASE) f->profile = prof;
    }
    float side = 1.2f * fmaxf(bw, bb.y1 - bb.y0);
    double sc = side / sz;
    double m[6] = {sc, 0,  0.5 * (bb.x0 + bb.x1) - 0.5 * side,
                   0,  sc, 0.5 * (bb.y0 + bb.y1) - 0.5 * side};
    rc = gg__image_warp(img, m, sz, sz, &f->crop[C_BOX][s][v]);
    if (rc) return rc;
    rc = gg__face_align_framed(img, &bb, sz, sz, 1.2f, &f->crop[C_BOXROT][s][v]);
    if (rc) return rc;
  }
  return 0;
}

/* ---- embedders and preprocessing ------------------------------------- */

typedef struct range {
  const char *name;
  float scale, offset;
} range;
static const range k_ranges[] = {
    {"[0,1]", 1.0f / 255.0f, 0.0f},
    {"[-1,1]", 1.0f / 127.5f, -1.0f},
    {"[0,255]", 1.0f, 0.0f},
};
#define N_RANGES (int)(sizeof k_ranges / sizeof k_ranges[0])

enum { M_COS = 0, M_COS_CENTRED, M_L2_RAW, N_METRICS };
static const char *k_metric_names[N_METRICS] = {"cos", "cos-centred", "-L2(raw)"};

typedef struct row {
  char model[24];
  int crop, range, bgr, metric;
  double dmin, dmean, dmax, smin, smean, smax, gap, dprime;
  double thr, far, frr, frr_at_far0, dmax_views, far_views;
  int nd, ns, nv;
  double ms_per_face;
  double vmin[N_VIEWS], vmean[N_VIEWS]; /* same-person scores per view */
  int vworst[N_VIEWS];                  /* the face with the lowest */
  /* At the fixed threshold of --threshold (when given). */
  double t_far, t_farv, t_frr;
  int vrej[N_VIEWS], vcnt[N_VIEWS];
} row;

static double g_threshold = NAN; /* --threshold */

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double score(int metric, const float *ua, const float *ub, const float *ra, const float *rb,
                    const double *mean, int dim) {
  if (metric == M_COS) return gg__vec_cosine(ua, ub, dim);
  if (metric == M_L2_RAW) {
    double s = 0;
    for (int i = 0; i < dim; i++)
      s += ((double)ra[i] - rb[i]) * ((double)ra[i] - rb[i]);
    return -sqrt(s);
  }
  double ab = 0, aa = 0, bb = 0;
  for (int i = 0; i < dim; i++) {
    double a = ua[i] - mean[i], b = ub[i] - mean[i];
    ab += a * b, aa += a * a, bb += b * b;
  }
  return aa > 0 && bb > 0 ? ab / sqrt(aa * bb) : 0;
}

/* Leave-one-out mean of the unit base embeddings, without faces i and j. */
static void loo_mean(const double *sum, float *const *unit, int nf, int i, int j, int dim,
                     double *mean) {
  int n = nf - 1 - (j != i);
  for (int k = 0; k < dim; k++)
    mean[k] = (sum[k] - unit[i][k] - (j != i ? unit[j][k] : 0)) / n;
}

/* Fills the statistics of one (config, metric) from embeddings emb[face][view]. */
static void evaluate(face *faces, int nf, float **raw, float **unit, int dim, int metric, row *r) {
  int nvw = N_VIEWS;
  double *sum = calloc((size_t)dim, sizeof *sum), *mean = malloc(sizeof *mean * (size_t)dim);
  double *D = malloc(sizeof *D * (size_t)(nf * nf)), *S = malloc(sizeof *S * (size_t)(nf * nvw));
  double *V = malloc(sizeof *V * (size_t)(nf * nf * nvw));
  int nd = 0, ns = 0, nv = 0;
  for (int i = 0; i < nf; i++)
    for (int k = 0; k < dim; k++)
      sum[k] += unit[i * nvw][k];
  for (int i = 0; i < nf; i++)
    for (int j = i + 1; j < nf; j++) {
      if (metric == M_COS_CENTRED) loo_mean(sum, unit, nf, i * nvw, j * nvw, dim, mean);
      D[nd++] = score(metric, unit[i * nvw], unit[j * nvw], raw[i * nvw], raw[j * nvw], mean, dim);
    }
  int vn[N_VIEWS] = {0};
  for (int v = 0; v < N_VIEWS; v++)
    r->vmin[v] = INFINITY, r->vmean[v] = 0, r->vworst[v] = -1;
  for (int i = 0; i < nf; i++)
    for (int v = 1; v < nvw; v++) {
      if (!faces[i].found[v]) continue;
      int a = i * nvw, b = i * nvw + v;
      if (metric == M_COS_CENTRED) loo_mean(sum, unit, nf, a, a, dim, mean);
      double sc = score(metric, unit[a], unit[b], raw[a], raw[b], mean, dim);
      S[ns++] = sc;
      vn[v]++;
      r->vcnt[v]++;
      r->vrej[v] += sc < g_threshold;
      r->vmean[v] += sc;
      if (sc < r->vmin[v]) r->vmin[v] = sc, r->vworst[v] = i;
      for (int j = 0; j < nf; j++) {
        if (j == i) continue;
        if (metric == M_COS_CENTRED) loo_mean(sum, unit, nf, a, j * nvw, dim, mean);
        V[nv++] = score(metric, unit[b], unit[j * nvw], raw[b], raw[j * nvw], mean, dim);
      }
    }
  for (int v = 1; v < N_VIEWS; v++)
    r->vmean[v] = vn[v] ? r->vmean[v] / vn[v] : NAN;
  qsort(D, (size_t)nd, sizeof *D, cmp_double);
  qsort(S, (size_t)ns, sizeof *S, cmp_double);
  qsort(V, (size_t)nv, sizeof *V, cmp_double);
  double md = 0, ms = 0, vd = 0, vs = 0;
  for (int i = 0; i < nd; i++)
    md += D[i] / nd;
  for (int i = 0; i < ns; i++)
    ms += S[i] / ns;
  for (int i = 0; i < nd; i++)
    vd += (D[i] - md) * (D[i] - md) / nd;
  for (int i = 0; i < ns; i++)
    vs += (S[i] - ms) * (S[i] - ms) / ns;
  r->nd = nd, r->ns = ns, r->nv = nv;
  r->dmin = D[0], r->dmax = D[nd - 1], r->dmean = md;
  r->smin = ns ? S[0] : NAN, r->smax = ns ? S[ns - 1] : NAN, r->smean = ms;
  r->gap = r->smin - r->dmax;
  r->dprime = (ms - md) / sqrt(0.5 * (vd + vs) + 1e-30);
  r->dmax_views = nv ? V[nv - 1] : NAN;
  /* Best threshold (accept when score >= t): the fewest FAR + FRR over the
   * midpoints between consecutive scores (ties: the higher t, fewer false
   * accepts); a positive gap gives its middle. */
  int na = nd + ns;
  double *all = malloc(sizeof *all * (size_t)na);
  memcpy(all, D, sizeof *D * (size_t)nd);
  memcpy(all + nd, S, sizeof *S * (size_t)ns);
  qsort(all, (size_t)na, sizeof *all, cmp_double);
  double best_err = INFINITY, best_t = 0;
  for (int k = 0; k <= na; k++) {
    double t = k == 0 ? all[0] - 1e-6 : k == na ? all[na - 1] + 1e-6 : 0.5 * (all[k - 1] + all[k]);
    int fa = 0, fr = 0;
    for (int i = 0; i < nd; i++)
      fa += D[i] >= t;
    for (int i = 0; i < ns; i++)
      fr += S[i] < t;
    double e = (double)fa / nd + (ns ? (double)fr / ns : 0);
    if (e <= best_err + 1e-12) best_err = e, best_t = t;
  }
  free(all);
  if (r->gap > 0) best_t = 0.5 * (r->smin + r->dmax);
  r->thr = best_t;
  int fa = 0, fr = 0, fv = 0, fr0 = 0;
  double dall = nv && V[nv - 1] > r->dmax ? V[nv - 1] : r->dmax;
  for (int i = 0; i < nd; i++)
    fa += D[i] >= best_t;
  for (int i = 0; i < ns; i++)
    fr += S[i] < best_t, fr0 += S[i] <= dall;
  for (int i = 0; i < nv; i++)
    fv += V[i] >= best_t;
  r->far = (double)fa / nd;
  r->frr = ns ? (double)fr / ns : NAN;
  r->frr_at_far0 = ns ? (double)fr0 / ns : NAN;
  r->far_views = nv ? (double)fv / nv : NAN;
  if (!isnan(g_threshold)) {
    fa = fr = fv = 0;
    for (int i = 0; i < nd; i++)
      fa += D[i] >= g_threshold;
    for (int i = 0; i < ns; i++)
      fr += S[i] < g_threshold;
    for (int i = 0; i < nv; i++)
      fv += V[i] >= g_threshold;
    r->t_far = (double)fa / nd, r->t_frr = ns ? (double)fr / ns : NAN,
    r->t_farv = nv ? (double)fv / nv : NAN;
  }
  free(sum), free(mean), free(D), free(S), free(V);
}

/* ---- contact sheet ----------------------------------------------------- */

static void write_sheet(const char *path, face *faces, int nf) {
  int t = 112, W = t * N_VIEWS, H = t * nf;
  uint8_t *px = calloc((size_t)W * (size_t)H, 3);
  if (!px) return;
  for (int i = 0; i < nf; i++)
    for (int v = 0; v < N_VIEWS; v++) {
      const gg_image *c = &faces[i].crop[C_BOXROT][S_112][v];
      if (!c->rgb) continue;
      for (int y = 0; y < t; y++)
        memcpy(px + (((size_t)(i * t + y) * (size_t)W) + (size_t)(v * t)) * 3,
               c->rgb + (size_t)y * t * 3, (size_t)t * 3);
    }
  FILE *fp = fopen(path, "wb");
  if (fp) {
    fprintf(fp, "P6\n%d %d\n255\n", W, H);
    fwrite(px, 3, (size_t)W * (size_t)H, fp);
    fclose(fp);
    printf("sheet: %s (rows: faces, columns: views; boxrot crops)\n", path);
  }
  free(px);
}

/* ---- main -------------------------------------------------------------- */

static const char *k_default_models[] = {"mobilefacenet", "mobileface", "faceres", "faceres-deep"};

int main(int argc, char **argv) {
  int threads = 2, n_models = 0;
  const char *models[16], *images = NULL, *sheet = NULL, *only_crop = NULL, *only_range = NULL,
                          *only_order = NULL;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--threads") && i + 1 < argc)
      threads = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--model") && i + 1 < argc && n_models < 16)
      models[n_models++] = argv[++i];
    else if (!strcmp(argv[i], "--images") && i + 1 < argc)
      images = argv[++i];
    else if (!strcmp(argv[i], "--sheet") && i + 1 < argc)
      sheet = argv[++i];
    else if (!strcmp(argv[i], "--crop") && i + 1 < argc)
      only_crop = argv[++i];
    else if (!strcmp(argv[i], "--range") && i + 1 < argc)
      only_range = argv[++i];
    else if (!strcmp(argv[i], "--order") && i + 1 < argc)
      only_order = argv[++i];
    else if (!strcmp(argv[i], "--threshold") && i + 1 < argc)
      g_threshold = atof(argv[++i]);
    else {
      fprintf(stderr,
              "usage: %s [--threads N] [--model NAME]... [--crop tight|loose|box|boxrot]\n"
              "       [--range '[0,1]'|'[-1,1]'|'[0,255]'] [--order RGB|BGR] [--threshold T]\n"
              "       [--images DIR] [--sheet FILE.ppm]\n",
              argv[0]);
      return 2;
    }
  }
  if (!n_models)
    for (int i = 0; i < 4; i++)
      models[n_models++] = k_default_models[i];
  gg_log_set_level(GG_LOG_WARN);
  char dir[1024], path[1024], err[512];
  if (images)
    snprintf(dir, sizeof dir, "%s", images);
  else {
    const char *cache = getenv("GPUGUARD_CACHE"), *home = getenv("HOME");
    if (cache && *cache)
      snprintf(dir, sizeof dir, "%s/models/face-api-1.7.15/demo", cache);
    else
      snprintf(dir, sizeof dir, "%s/.cache/gpuguard/models/face-api-1.7.15/demo",
               home ? home : "/root");
  }
  if (gg_model_resolve("blazeface", path, sizeof path)) {
    printf("SKIP: blazeface not found (%s); run scripts/fetch-models.sh\n", path);
    return 0;
  }
  gg__face_detector *det;
  if (gg__face_detector_new(path, threads, &det, err, sizeof err)) {
    fprintf(stderr, "%s\n", err);
    return 1;
  }

  /* 1. Faces in the photos. */
  static face faces[MAX_FACES];
  int nf = 0;
  printf("# Faces (BlazeFace %s, letterboxed, min score 0.5, weighted NMS IoU 0.3)\n", path);
  for (int p = 1; p <= N_PHOTOS; p++) {
    char ip[1200];
    snprintf(ip, sizeof ip, "%s/sample%d.jpg", dir, p);
    gg_image img;
    if (gg_image_load(ip, &img, err, sizeof err)) {
      printf("SKIP: %s\n", err);
      return 0;
    }
    gg__face_box fb[MAX_FACES];
    gg__face_detect_opts o = {0.5f, 0.3f, 1};
    int n = gg__face_detect(det, &img, &o, fb, MAX_FACES, err, sizeof err);
    if (n < 0) {
      fprintf(stderr, "%s\n", err);
      return 1;
    }
    printf("sample%d.jpg %dx%d: %d faces:", p, img.width, img.height, n);
    for (int k = 0; k < n && nf < MAX_FACES; k++) {
      face *f = &faces[nf++];
      f->photo = p;
      f->box = fb[k];
      float bw = fb[k].x1 - fb[k].x0, side = 3 * bw;
      f->rx = roundf(0.5f * (fb[k].x0 + fb[k].x1) - side / 2);
      f->ry = roundf(0.5f * (fb[k].y0 + fb[k].y1) - side / 2);
      if (gg__image_crop(&img, (int)f->rx, (int)f->ry, (int)side, (int)side, &f->region)) return 1;
      printf(" %.0fpx@%.2f", bw, fb[k].score);
    }
    printf("\n");
    gg_image_free(&img);
  }
  printf("faces: %d\n\n", nf);

  /* 2. Views, re-detected, aligned and cropped. */
  int miss[N_VIEWS] = {0}, nprof = 0;
  for (int i = 0; i < nf; i++) {
    face *f = &faces[i];
    float bw = f->box.x1 - f->box.x0;
    for (int v = 0; v < N_VIEWS; v++) {
      gg_image vi;
      float ecx, ecy;
      if (make_view(f, v, &vi, &ecx, &ecy)) {
        fprintf(stderr, "view %s failed\n", k_view_names[v]);
        return 1;
      }
      gg__face_box b = f->box;
      if (v == V_BASE) {
        /* The enrolled face: the photo's own detection, moved into the region. */
        b.x0 -= f->rx, b.x1 -= f->rx, b.y0 -= f->ry, b.y1 -= f->ry;
        for (int k = 0; k < GG_FACE_KP_COUNT; k++)
          b.kp[k][0] -= f->rx, b.kp[k][1] -= f->ry;
        f->found[v] = 1;
      } else
        f->found[v] = find_face(det, &vi, ecx, ecy, bw, &b);
      if (!f->found[v]) {
        miss[v]++;
        if (v == V_BASE) {
          fprintf(stderr, "face %d: not found again in its own region\n", i);
          return 1;
        }
      } else if (make_crops(f, v, &vi, &b)) {
        fprintf(stderr, "crop failed\n");
        return 1;
      }
      gg_image_free(&vi);
    }
    nprof += f->profile;
  }
  printf("# Views re-detected (of %d faces); misses count as false rejects of every embedder\n",
         nf);
  for (int v = 1; v < N_VIEWS; v++)
    printf("  %-10s %2d/%d found\n", k_view_names[v], nf - miss[v], nf);
  printf("faces aligned from the box (eyes closer than %.0f%% of the box: turned face): %d\n\n",
         100 * GG_FACE_PROFILE_EYES, nprof);
  if (sheet) write_sheet(sheet, faces, nf);

  /* 3. Embeddings and statistics. */
  int cap_rows = n_models * N_CROPS * N_RANGES * 2 * N_METRICS, nr = 0;
  row *rows = calloc((size_t)cap_rows, sizeof *rows);
  int ne = nf * N_VIEWS;
  float **raw = calloc((size_t)ne, sizeof *raw), **unit = calloc((size_t)ne, sizeof *unit);
  printf("# Scores: d = different-person pairs (every pair of the %d faces), s = same-person\n"
         "# (each face vs each of its re-detected views), gap = s.min - d.max (> 0: separable),\n"
         "# d' = (s.mean - d.mean) / sqrt((var_s + var_d) / 2), thr = fewest FAR + FRR,\n"
         "# FRR0 = FRR with the threshold just above every different-person score (the\n"
         "# pairs and each view against the other faces), FARv = views vs other faces at thr\n",
         nf);
  printf("%-13s %-5s %-7s %-3s %-11s | %7s %7s %7s | %7s %7s %7s | %7s %6s | %7s %5s %5s %5s %5s | "
         "%5s\n",
         "model", "crop", "range", "ord", "score", "d.min", "d.mean", "d.max", "s.min", "s.mean",
         "s.max", "gap", "d'", "thr", "FAR", "FRR", "FRR0", "FARv", "ms");
  for (int mi = 0; mi < n_models; mi++) {
    if (gg_model_resolve(models[mi], path, sizeof path)) {
      printf("SKIP %s: not found (%s)\n", models[mi], path);
      continue;
    }
    gg__face_embedder *e;
    if (gg__face_embedder_new(path, threads, &e, err, sizeof err)) {
      printf("SKIP %s: %s\n", models[mi], err);
      continue;
    }
    int dim = gg__face_embedder_dim(e), sz = gg__face_embedder_size(e),
        si = sz == 224 ? S_224 : S_112;
    for (int k = 0; k < ne; k++) {
      raw[k] = malloc(sizeof(float) * (size_t)dim);
      unit[k] = malloc(sizeof(float) * (size_t)dim);
    }
    for (int c = 0; c < N_CROPS; c++)
      for (int ri = 0; ri < N_RANGES; ri++)
        for (int bgr = 0; bgr < 2; bgr++) {
          if ((only_crop && strcmp(only_crop, k_crop_names[c])) ||
              (only_range && strcmp(only_range, k_ranges[ri].name)) ||
              (only_order && strcmp(only_order, bgr ? "BGR" : "RGB")))
            continue;
          gg__face_embed_prep prep = {k_ranges[ri].scale, k_ranges[ri].offset, bgr};
          double t0 = now_ms();
          int runs = 0;
          for (int i = 0; i < nf; i++)
            for (int v = 0; v < N_VIEWS; v++) {
              int k = i * N_VIEWS + v;
              if (!faces[i].found[v]) continue;
              if (gg__face_embed(e, &faces[i].crop[c][si][v], &prep, raw[k], dim, err, sizeof err) <
                  0) {
                fprintf(stderr, "%s: %s\n", models[mi], err);
                return 1;
              }
              runs++;
              memcpy(unit[k], raw[k], sizeof(float) * (size_t)dim);
              gg__vec_l2_normalize(unit[k], dim);
            }
          double ms = (now_ms() - t0) / runs;
          for (int m = 0; m < N_METRICS; m++) {
            row *r = &rows[nr++];
            snprintf(r->model, sizeof r->model, "%s", models[mi]);
            r->crop = c, r->range = ri, r->bgr = bgr, r->metric = m, r->ms_per_face = ms;
            evaluate(faces, nf, raw, unit, dim, m, r);
            printf("%-13s %-5s %-7s %-3s %-11s | %7.3f %7.3f %7.3f | %7.3f %7.3f %7.3f | %7.3f "
                   "%6.2f | %7.3f "
                   "%5.3f %5.3f %5.3f %5.3f | %5.1f\n",
                   r->model, k_crop_names[c], k_ranges[ri].name, bgr ? "BGR" : "RGB",
                   k_metric_names[m], r->dmin, r->dmean, r->dmax, r->smin, r->smean, r->smax,
                   r->gap, r->dprime, r->thr, r->far, r->frr, r->frr_at_far0, r->far_views, ms);
            if (!isnan(g_threshold)) {
              printf("    at %.3f: FAR %.4f (%d pairs), FARv %.4f (%d view pairs, max %.3f), FRR "
                     "%.4f (%d views); "
                     "rejected by view:",
                     g_threshold, r->t_far, r->nd, r->t_farv, r->nv, r->dmax_views, r->t_frr,
                     r->ns);
              for (int v = 1; v < N_VIEWS; v++)
                if (r->vrej[v]) printf(" %s %d/%d", k_view_names[v], r->vrej[v], r->vcnt[v]);
              printf("\n    same-person score by view (min, mean):");
              for (int v = 1; v < N_VIEWS; v++)
                printf("%s %s %.3f %.3f", v == 1 ? "" : ",", k_view_names[v], r->vmin[v],
                       r->vmean[v]);
              printf("\n");
            }
            fflush(stdout);
          }
        }
    for (int k = 0; k < ne; k++)
      free(raw[k]), free(unit[k]);
    gg__face_embedder_free(e);
  }

  /* 4. Summary: per model the best row (largest d', then gap), and overall. */
  printf("\n# Best per model (largest d' among cosine scores; ties: larger gap)\n");
  const row *overall = NULL;
  for (int mi = 0; mi < n_models; mi++) {
    const row *b = NULL;
    for (int k = 0; k < nr; k++) {
      const row *r = &rows[k];
      if (strcmp(r->model, models[mi]) || r->metric == M_L2_RAW) continue;
      if (!b || r->dprime > b->dprime + 1e-9 ||
          (fabs(r->dprime - b->dprime) <= 1e-9 && r->gap > b->gap))
        b = r;
    }
    if (!b) continue;
    printf("%-13s %s crop, %s %s, %s: gap %.3f, d' %.2f, thr %.3f, FAR %.3f, FRR %.3f, FRR0 %.3f, "
           "FARv %.3f, "
           "max different-person score with views %.3f, %.1f ms/face\n",
           b->model, k_crop_names[b->crop], k_ranges[b->range].name, b->bgr ? "BGR" : "RGB",
           k_metric_names[b->metric], b->gap, b->dprime, b->thr, b->far, b->frr, b->frr_at_far0,
           b->far_views, fmax(b->dmax, b->dmax_views), b->ms_per_face);
    printf("  same-person score by view (min, worst face, mean):");
    for (int v = 1; v < N_VIEWS; v++)
      printf("%s %s %.3f (#%d) %.3f", v == 1 ? "" : ",", k_view_names[v], b->vmin[v], b->vworst[v],
             b->vmean[v]);
    printf("\n");
    if (!overall || b->dprime > overall->dprime) overall = b;
  }
  if (overall)
    printf("\noverall: %s, %s crop, %s %s, %s (d' %.2f, gap %.3f, thr %.3f)\n", overall->model,
           k_crop_names[overall->crop], k_ranges[overall->range].name, overall->bgr ? "BGR" : "RGB",
           k_metric_names[overall->metric], overall->dprime, overall->gap, overall->thr);
  for (int i = 0; i < nf; i++) {
    gg_image_free(&faces[i].region);
    for (int c = 0; c < N_CROPS; c++)
      for (int s = 0; s < N_SIZES; s++)
        for (int v = 0; v < N_VIEWS; v++)
          gg_image_free(&faces[i].crop[c][s][v]);
  }
  free(raw), free(unit), free(rows);
  gg__face_detector_free(det);
  return 0;
}
