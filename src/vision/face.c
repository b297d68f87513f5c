/* Face pipeline pieces: BlazeFace decoding, eye alignment, embeddings and
 * the image transforms used to make camera-like views of a face. */
#include "vision/face.h"

#include "gpuguard/error.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifdef GG_HAVE_TURBOJPEG
#include <turbojpeg.h>
#endif

#define GG_FACE_REGS 16 /* dx, dy, w, h, 6 x (kx, ky) */

/* ------------------------------------------------------------ anchors */

int gg__blazeface_anchors(int size, float *anchors) {
  if (size < 16 || size % 16 || !anchors) return GG_EINVAL;
  const int strides[2] = {size / 16, size / 8}, per_cell[2] = {2, 6};
  int n = 0;
  for (int l = 0; l < 2; l++) {
    int grid = (size + strides[l] - 1) / strides[l];
    for (int gy = 0; gy < grid; gy++)
      for (int gx = 0; gx < grid; gx++)
        for (int k = 0; k < per_cell[l]; k++) {
          if (n >= GG_FACE_ANCHORS) return GG_EINVAL;
          anchors[2 * n] = (float)strides[l] * ((float)gx + 0.5f);
          anchors[2 * n + 1] = (float)strides[l] * ((float)gy + 0.5f);
          n++;
        }
  }
  return n == GG_FACE_ANCHORS ? n : GG_EINVAL;
}

/* ------------------------------------------------------------ decode + NMS */

static float box_iou(const gg__face_box *a, const gg__face_box *b) {
  float ix = fminf(a->x1, b->x1) - fmaxf(a->x0, b->x0);
  float iy = fminf(a->y1, b->y1) - fmaxf(a->y0, b->y0);
  if (ix <= 0 || iy <= 0) return 0;
  float inter = ix * iy;
  float ua = (a->x1 - a->x0) * (a->y1 - a->y0) + (b->x1 - b->x0) * (b->y1 - b->y0) - inter;
  return ua > 0 ? inter / ua : 0;
}

static int cmp_score_desc(const void *pa, const void *pb) {
  const gg__face_box *a = pa, *b = pb;
  return a->score < b->score ? 1 : a->score > b->score ? -1 : 0;
}

int gg__blazeface_decode(const float *logits, const float *regs, int size, const float map[4],
                         const gg__face_detect_opts *o, gg__face_box *out, int max) {
  if (!logits || !regs || !out || !map || max < 0 || !(map[0] > 0) || !(map[1] > 0))
    return GG_EINVAL;
  gg__face_detect_opts d = {0.5f, 0.3f, 1};
  if (o) d = *o;
  float anchors[2 * GG_FACE_ANCHORS];
  int na = gg__blazeface_anchors(size, anchors);
  if (na < 0) return na;
  /* The logit threshold equivalent to sigmoid >= min_score, so most anchors
   * are dropped without an exp. */
  float ms = fminf(fmaxf(d.min_score, 1e-6f), 1.0f - 1e-6f);
  float min_logit = logf(ms / (1.0f - ms));
  gg__face_box *cand = malloc(sizeof *cand * GG_FACE_ANCHORS);
  if (!cand) return GG_ENOMEM;
  float sx = map[0], sy = map[1], ox = map[2], oy = map[3];
  int nc = 0;
  for (int i = 0; i < na; i++) {
    float lg = logits[i];
    if (!(lg >= min_logit)) continue; /* also drops NaN */
    if (lg > 80.0f) lg = 80.0f;
    const float *r = regs + (size_t)i * GG_FACE_REGS;
    float ax = anchors[2 * i], ay = anchors[2 * i + 1];
    float cx = ax + r[0], cy = ay + r[1], w = r[2], h = r[3];
    if (!(w > 0 && h > 0)) continue;
    gg__face_box *b = &cand[nc++];
    b->score = 1.0f / (1.0f + expf(-lg));
    b->x0 = (cx - w / 2) * sx + ox;
    b->x1 = (cx + w / 2) * sx + ox;
    b->y0 = (cy - h / 2) * sy + oy;
    b->y1 = (cy + h / 2) * sy + oy;
    for (int k = 0; k < GG_FACE_KP_COUNT; k++) {
      b->kp[k][0] = (ax + r[4 + 2 * k]) * sx + ox;
      b->kp[k][1] = (ay + r[5 + 2 * k]) * sy + oy;
    }
  }
  qsort(cand, (size_t)nc, sizeof *cand, cmp_score_desc);
  int n = 0;
  char *used = calloc((size_t)nc + 1, 1);
  if (!used) {
    free(cand);
    return GG_ENOMEM;
  }
  for (int i = 0; i < nc && n < max; i++) {
    if (used[i]) continue;
    used[i] = 1;
    gg__face_box best = cand[i];
    if (d.weighted) {
      /* MediaPipe's blending: the cluster's score-weighted mean box and
       * keypoints, with the best score. */
      double wsum = cand[i].score, acc[4 + 2 * GG_FACE_KP_COUNT];
      const gg__face_box *c = &cand[i];
      acc[0] = c->x0 * wsum, acc[1] = c->y0 * wsum, acc[2] = c->x1 * wsum, acc[3] = c->y1 * wsum;
      for (int k = 0; k < GG_FACE_KP_COUNT; k++)
        acc[4 + 2 * k] = c->kp[k][0] * wsum, acc[5 + 2 * k] = c->kp[k][1] * wsum;
      for (int j = i + 1; j < nc; j++) {
        if (used[j] || box_iou(&cand[i], &cand[j]) <= d.iou) continue;
        used[j] = 1;
        c = &cand[j];
        double w = c->score;
        wsum += w;
        acc[0] += c->x0 * w, acc[1] += c->y0 * w, acc[2] += c->x1 * w, acc[3] += c->y1 * w;
        for (int k = 0; k < GG_FACE_KP_COUNT; k++)
          acc[4 + 2 * k] += c->kp[k][0] * w, acc[5 + 2 * k] += c->kp[k][1] * w;
      }
      best.x0 = (float)(acc[0] / wsum), best.y0 = (float)(acc[1] / wsum);
      best.x1 = (float)(acc[2] / wsum), best.y1 = (float)(acc[3] / wsum);
      for (int k = 0; k < GG_FACE_KP_COUNT; k++) {
        best.kp[k][0] = (float)(acc[4 + 2 * k] / wsum);
        best.kp[k][1] = (float)(acc[5 + 2 * k] / wsum);
      }
    } else {
      for (int j = i + 1; j < nc; j++)
        if (!used[j] && box_iou(&cand[i], &cand[j]) > d.iou) used[j] = 1;
    }
    /* A weighted box can overlap one kept before it; keep the first. */
    int dup = 0;
    for (int k = 0; k < n && !dup; k++)
      dup = box_iou(&out[k], &best) > d.iou;
    if (!dup) out[n++] = best;
  }
  free(used);
  free(cand);
  return n;
}

/* ------------------------------------------------------------ detector */

struct gg__face_detector {
  gg_model *model;
  gg_session *sess;
  int size;
  float logits[GG_FACE_ANCHORS];
  float regs[GG_FACE_ANCHORS * GG_FACE_REGS];
};

int gg__face_detector_new(const char *path, int threads, gg__face_detector **out, char *err,
                          size_t errlen) {
  *out = NULL;
  gg__face_detector *d = calloc(1, sizeof *d);
  if (!d) return GG_ENOMEM;
  int rc = gg_model_load(path, &d->model, err, errlen);
  if (rc) {
    free(d);
    return rc;
  }
  gg_tensor_info in;
  if (gg_model_input(d->model, 0, &in) || in.ndim != 4 || in.shape[1] != in.shape[2] ||
      in.shape[1] < 16 || in.shape[1] % 16 || in.shape[3] != 3) {
    gg_model_free(d->model);
    free(d);
    return gg_errf(err, errlen, GG_EUNSUPPORTED,
                   "%s: not a BlazeFace model (want a [1,S,S,3] input with S a multiple of 16)",
                   path);
  }
  d->size = (int)in.shape[1];
  int64_t shape[4] = {1, d->size, d->size, 3};
  gg_session_opts so = {threads, GG_ENGINE_AUTO, 0};
  rc = gg_session_new(d->model, shape, 4, &so, &d->sess, err, errlen);
  if (rc) {
    gg_model_free(d->model);
    free(d);
    return rc;
  }
  *out = d;
  return 0;
}

void gg__face_detector_free(gg__face_detector *d) {
  if (!d) return;
  gg_session_free(d->sess);
  gg_model_free(d->model);
  free(d);
}

int gg__face_detector_size(const gg__face_detector *d) {
  return d->size;
}

int gg__blazeface_gather(int n, const float *const *data, const int64_t (*shape)[3],
                         float *logits, float *regs) {
  int nl = 0, nr = 0;
  for (int i = 0; i < n; i++) {
    const float *v = data[i];
    if (!v) continue;
    int64_t rows = shape[i][1], cols = shape[i][2];
    if (cols == 17 && rows == GG_FACE_ANCHORS) {
      for (int64_t a = 0; a < rows; a++) {
        logits[a] = v[a * 17];
        memcpy(&regs[a * GG_FACE_REGS], &v[a * 17 + 1], sizeof(float) * GG_FACE_REGS);
      }
      return 0;
    }
    /* Levels arrive 512 (finer) before 384; place by row count. */
    int64_t at = rows == 512 ? 0 : rows == 384 ? 512 : rows == GG_FACE_ANCHORS ? 0 : -1;
    if (at < 0) continue;
    if (cols == 1) {
      memcpy(&logits[at], v, sizeof(float) * (size_t)rows);
      nl += (int)rows;
    } else if (cols == GG_FACE_REGS) {
      memcpy(&regs[at * GG_FACE_REGS], v, sizeof(float) * (size_t)(rows * GG_FACE_REGS));
      nr += (int)rows;
    }
  }
  return nl == GG_FACE_ANCHORS && nr == GG_FACE_ANCHORS ? 0 : GG_EUNSUPPORTED;
}

/* Gathers the session's outputs into d->logits / d->regs in anchor order. */
static int gather_outputs(gg__face_detector *d, char *err, size_t errlen) {
  enum { MAXO = 8 };
  int n = gg_model_n_outputs(d->model), k = 0;
  const float *data[MAXO];
  int64_t shape[MAXO][3];
  for (int i = 0; i < n && k < MAXO; i++) {
    gg_tensor_info info;
    const float *v = gg_session_output(d->sess, i, &info);
    if (!v || info.ndim != 3) continue;
    data[k] = v;
    memcpy(shape[k], info.shape, sizeof shape[k]);
    k++;
  }
  if (gg__blazeface_gather(k, data, (const int64_t(*)[3])shape, d->logits, d->regs))
    return gg_errf(err, errlen, GG_EUNSUPPORTED,
                   "%s: outputs are not BlazeFace's (want [1,896,17] or 512+384 score and box rows)",
                   gg_model_path(d->model));
  return 0;
}

/* Writes img into the model input x/127.5 - 1, letterboxed: scaled to fit
 * the square input with its aspect ratio kept and centred, the margins black
 * (-1). Stretching instead (as human does) squeezes faces in wide photos and
 * moves the keypoints the model regresses for an undistorted face. map gets
 * input pixel -> source pixel (sx, sy, ox, oy). */
int gg__face_detect_input(const gg_image *img, int S, float *x, float map[4]) {
  if (!img || !img->rgb || img->width < 1 || img->height < 1) return GG_EINVAL;
  int L = img->width > img->height ? img->width : img->height;
  float s = (float)L / (float)S;
  map[0] = map[1] = s;
  map[2] = -0.5f * (float)(L - img->width);
  map[3] = -0.5f * (float)(L - img->height);
  gg_image sq = {S, S, NULL};
  double m[6] = {s, 0, map[2], 0, s, map[3]};
  /* Input pixel centres that fall outside the photo are black. */
  int rc = gg__image_warp(img, m, S, S, &sq);
  if (rc) return rc;
  for (int y = 0; y < S; y++)
    for (int xx = 0; xx < S; xx++) {
      float sxp = ((float)xx + 0.5f) * s + map[2], syp = ((float)y + 0.5f) * s + map[3];
      int in = sxp >= 0 && syp >= 0 && sxp < (float)img->width && syp < (float)img->height;
      const uint8_t *p = sq.rgb + ((size_t)y * (size_t)S + (size_t)xx) * 3;
      float *o = x + ((size_t)y * (size_t)S + (size_t)xx) * 3;
      for (int c = 0; c < 3; c++)
        o[c] = in ? (float)p[c] / 127.5f - 1.0f : -1.0f;
    }
  gg_image_free(&sq);
  return 0;
}

int gg__face_detect(gg__face_detector *d, const gg_image *img, const gg__face_detect_opts *o,
                    gg__face_box *out, int max, char *err, size_t errlen) {
  float map[4];
  float *x = gg_session_input(d->sess, 0, NULL);
  int rc = gg__face_detect_input(img, d->size, x, map);
  if (rc) return gg_errf(err, errlen, rc, "face detect: bad image");
  rc = gg_session_run(d->sess, err, errlen);
  if (rc) return rc;
  rc = gather_outputs(d, err, errlen);
  if (rc) return rc;
  return gg__blazeface_decode(d->logits, d->regs, d->size, map, o, out, max);
}

/* ------------------------------------------------------------ warping */

int gg__face_align_matrix(const float eye_l[2], const float eye_r[2], int w, int h,
                          const gg__face_align_spec *spec, double m[6]) {
  if (w < 1 || h < 1 || !spec || !(spec->eye_dist > 0)) return GG_EINVAL;
  double dxs = (double)eye_r[0] - eye_l[0], dys = (double)eye_r[1] - eye_l[1];
  double src_len = sqrt(dxs * dxs + dys * dys), dst_len = spec->eye_dist * (double)w;
  if (!(src_len > 1e-6)) return GG_EINVAL;
  /* Crop point p maps to c_src + s * R(theta) * (p - c_dst), where theta is
   * the angle of the source eye line and s the ratio of eye distances. */
  double s = src_len / dst_len, c = dxs / src_len * s, sn = dys / src_len * s;
  double cxs = ((double)eye_l[0] + eye_r[0]) / 2, cys = ((double)eye_l[1] + eye_r[1]) / 2;
  double cxd = 0.5 * w, cyd = (double)spec->eye_y * h;
  m[0] = c, m[1] = -sn, m[2] = cxs - c * cxd + sn * cyd;
  m[3] = sn, m[4] = c, m[5] = cys - sn * cxd - c * cyd;
  return 0;
}

int gg__image_warp(const gg_image *img, const double m[6], int w, int h, gg_image *out) {
  memset(out, 0, sizeof *out);
  if (!img || !img->rgb || img->width < 1 || img->height < 1 || w < 1 || h < 1 || w > 16384 ||
      h > 16384)
    return GG_EINVAL;
  uint8_t *px = malloc((size_t)w * (size_t)h * 3);
  if (!px) return GG_ENOMEM;
  int iw = img->width, ih = img->height;
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      double px_c = x + 0.5, py_c = y + 0.5;
      /* Source coordinate in pixel-centre convention (pixel i spans [i, i+1)). */
      double sx = m[0] * px_c + m[1] * py_c + m[2] - 0.5;
      double sy = m[3] * px_c + m[4] * py_c + m[5] - 0.5;
      if (sx < 0) sx = 0;
      if (sy < 0) sy = 0;
      if (sx > iw - 1) sx = iw - 1;
      if (sy > ih - 1) sy = ih - 1;
      int x0 = (int)sx, y0 = (int)sy;
      int x1 = x0 + 1 < iw ? x0 + 1 : x0, y1 = y0 + 1 < ih ? y0 + 1 : y0;
      double lx = sx - x0, ly = sy - y0;
      const uint8_t *r0 = img->rgb + (size_t)y0 * (size_t)iw * 3;
      const uint8_t *r1 = img->rgb + (size_t)y1 * (size_t)iw * 3;
      uint8_t *o = px + ((size_t)y * (size_t)w + (size_t)x) * 3;
      for (int c = 0; c < 3; c++) {
        double top = r0[x0 * 3 + c] + (r0[x1 * 3 + c] - r0[x0 * 3 + c]) * lx;
        double bot = r1[x0 * 3 + c] + (r1[x1 * 3 + c] - r1[x0 * 3 + c]) * lx;
        double v = top + (bot - top) * ly + 0.5;
        o[c] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
      }
    }
  out->width = w;
  out->height = h;
  out->rgb = px;
  return 0;
}

int gg__face_align(const gg_image *img, const float eye_l[2], const float eye_r[2], int w, int h,
                   const gg__face_align_spec *spec, gg_image *out) {
  double m[6];
  memset(out, 0, sizeof *out);
  int rc = gg__face_align_matrix(eye_l, eye_r, w, h, spec, m);
  return rc ? rc : gg__image_warp(img, m, w, h, out);
}

/* The unit eye-line direction of a face, and whether the eyes are usable:
 * at least GG_FACE_PROFILE_EYES of the box width apart and in order (the
 * image-left eye on the left, within 90 degrees). A face turned towards
 * profile hides one eye, and the model puts that keypoint next to the other
 * one or on the wrong side; its direction then says nothing, and level
 * (1, 0) is returned. */
static int eye_axis(const gg__face_box *f, float *ux, float *uy, float *dist) {
  const float *l = f->kp[GG_FACE_KP_EYE_L], *r = f->kp[GG_FACE_KP_EYE_R];
  float dx = r[0] - l[0], dy = r[1] - l[1], d = sqrtf(dx * dx + dy * dy);
  *dist = d;
  if (!(d >= GG_FACE_PROFILE_EYES * (f->x1 - f->x0)) || dx <= 0) {
    *ux = 1, *uy = 0;
    return 0;
  }
  *ux = dx / d, *uy = dy / d;
  return 1;
}

int gg__face_align_box(const gg_image *img, const gg__face_box *f, int w, int h,
                       const gg__face_align_spec *spec, gg_image *out, int *profile) {
  memset(out, 0, sizeof *out);
  float ux, uy, d;
  int frontal = eye_axis(f, &ux, &uy, &d);
  if (profile) *profile = !frontal;
  if (frontal)
    return gg__face_align(img, f->kp[GG_FACE_KP_EYE_L], f->kp[GG_FACE_KP_EYE_R], w, h, spec, out);
  /* Level, at the eyes' height, centred on the box (both visible eyes sit on
   * one side of a turned face), scaled to a frontal face's eye distance. */
  float bw = f->x1 - f->x0, half = 0.5f * GG_FACE_FRONTAL_EYES * bw;
  float cx = 0.5f * (f->x0 + f->x1);
  float cy = 0.5f * (f->kp[GG_FACE_KP_EYE_L][1] + f->kp[GG_FACE_KP_EYE_R][1]);
  float l2[2] = {cx - half, cy}, r2[2] = {cx + half, cy};
  return gg__face_align(img, l2, r2, w, h, spec, out);
}

int gg__face_align_framed(const gg_image *img, const gg__face_box *f, int w, int h, float enlarge,
                          gg_image *out) {
  memset(out, 0, sizeof *out);
  if (!(enlarge > 0) || w < 1 || h < 1) return GG_EINVAL;
  float ux, uy, d;
  eye_axis(f, &ux, &uy, &d);
  float side = enlarge * fmaxf(f->x1 - f->x0, f->y1 - f->y0);
  /* Stand-in eyes on the box centre, a quarter of the side apart along the
   * eye line, placed a quarter apart at mid-height of the crop. */
  float cx = 0.5f * (f->x0 + f->x1), cy = 0.5f * (f->y0 + f->y1), q = 0.125f * side;
  float l2[2] = {cx - ux * q, cy - uy * q}, r2[2] = {cx + ux * q, cy + uy * q};
  gg__face_align_spec spec = {0.25f, 0.5f};
  return gg__face_align(img, l2, r2, w, h, &spec, out);
}

/* ------------------------------------------------------------ embedder */

struct gg__face_embedder {
  gg_model *model;
  gg_session *sess;
  int size, out_index, dim;
};

int gg__face_embedder_new(const char *path, int threads, gg__face_embedder **out, char *err,
                          size_t errlen) {
  *out = NULL;
  gg__face_embedder *e = calloc(1, sizeof *e);
  if (!e) return GG_ENOMEM;
  int rc = gg_model_load(path, &e->model, err, errlen);
  if (rc) {
    free(e);
    return rc;
  }
  gg_tensor_info in;
  if (gg_model_input(e->model, 0, &in) || in.ndim != 4 || in.shape[1] != in.shape[2] ||
      in.shape[1] < 8 || in.shape[3] != 3) {
    rc = gg_errf(err, errlen, GG_EUNSUPPORTED, "%s: want a square NHWC RGB input", path);
    goto fail;
  }
  e->size = (int)in.shape[1];
  int64_t shape[4] = {1, e->size, e->size, 3};
  gg_session_opts so = {threads, GG_ENGINE_AUTO, 0};
  rc = gg_session_new(e->model, shape, 4, &so, &e->sess, err, errlen);
  if (rc) goto fail;
  /* Output shapes are known once a session has inferred them. */
  e->out_index = -1;
  for (int i = 0; i < gg_model_n_outputs(e->model); i++) {
    gg_tensor_info oi;
    if (gg_model_output(e->model, i, &oi)) continue;
    int64_t n = gg_session_output_elems(e->sess, i);
    if (n > e->dim) e->dim = (int)n, e->out_index = i;
  }
  if (e->out_index < 0 || e->dim < 64) {
    rc = gg_errf(err, errlen, GG_EUNSUPPORTED, "%s: no embedding output (largest has %d values)",
                 path, e->dim);
    goto fail;
  }
  *out = e;
  return 0;
fail:
  gg_session_free(e->sess);
  gg_model_free(e->model);
  free(e);
  return rc;
}

void gg__face_embedder_free(gg__face_embedder *e) {
  if (!e) return;
  gg_session_free(e->sess);
  gg_model_free(e->model);
  free(e);
}

int gg__face_embedder_size(const gg__face_embedder *e) {
  return e->size;
}
int gg__face_embedder_dim(const gg__face_embedder *e) {
  return e->dim;
}

int gg__face_embed(gg__face_embedder *e, const gg_image *crop, const gg__face_embed_prep *p,
                   float *out, int cap, char *err, size_t errlen) {
  if (!crop || !crop->rgb || !p || !out || cap < e->dim)
    return gg_errf(err, errlen, GG_EINVAL, "face embed: bad arguments (cap %d, dim %d)", cap,
                   e->dim);
  gg_preprocess pp = {.width = e->size, .height = e->size, .scale = p->scale, .offset = p->offset, .nchw = 0, .why = "face embed"};
  float *x = gg_session_input(e->sess, 0, NULL);
  int rc = gg_image_to_tensor(crop, &pp, x);
  if (rc) return gg_errf(err, errlen, rc, "face embed: bad crop");
  if (p->bgr)
    for (size_t i = 0; i < (size_t)e->size * (size_t)e->size; i++) {
      float t = x[3 * i];
      x[3 * i] = x[3 * i + 2];
      x[3 * i + 2] = t;
    }
  rc = gg_session_run(e->sess, err, errlen);
  if (rc) return rc;
  const float *v = gg_session_output(e->sess, e->out_index, NULL);
  if (!v) return gg_errf(err, errlen, GG_EINVAL, "face embed: no output");
  memcpy(out, v, sizeof(float) * (size_t)e->dim);
  return e->dim;
}

/* ------------------------------------------------------------ vectors */

void gg__vec_l2_normalize(float *v, int n) {
  double s = 0;
  for (int i = 0; i < n; i++)
    s += (double)v[i] * v[i];
  if (!(s > 0)) return;
  float inv = (float)(1.0 / sqrt(s));
  for (int i = 0; i < n; i++)
    v[i] *= inv;
}

float gg__vec_cosine(const float *a, const float *b, int n) {
  double ab = 0, aa = 0, bb = 0;
  for (int i = 0; i < n; i++) {
    ab += (double)a[i] * b[i];
    aa += (double)a[i] * a[i];
    bb += (double)b[i] * b[i];
  }
  return aa > 0 && bb > 0 ? (float)(ab / sqrt(aa * bb)) : 0.0f;
}

/* ------------------------------------------------------------ transforms */

static int image_new(int w, int h, gg_image *out) {
  memset(out, 0, sizeof *out);
  if (w < 1 || h < 1 || w > 16384 || h > 16384) return GG_EINVAL;
  out->rgb = malloc((size_t)w * (size_t)h * 3);
  if (!out->rgb) return GG_ENOMEM;
  out->width = w;
  out->height = h;
  return 0;
}

int gg__image_copy(const gg_image *img, gg_image *out) {
  int rc = image_new(img->width, img->height, out);
  if (!rc) memcpy(out->rgb, img->rgb, (size_t)img->width * (size_t)img->height * 3);
  return rc;
}

int gg__image_flip(const gg_image *img, gg_image *out) {
  int rc = image_new(img->width, img->height, out);
  if (rc) return rc;
  int w = img->width;
  for (int y = 0; y < img->height; y++) {
    const uint8_t *s = img->rgb + (size_t)y * (size_t)w * 3;
    uint8_t *d = out->rgb + (size_t)y * (size_t)w * 3;
    for (int x = 0; x < w; x++)
      memcpy(d + (size_t)x * 3, s + (size_t)(w - 1 - x) * 3, 3);
  }
  return 0;
}

int gg__image_rotate_scale(const gg_image *img, float cx, float cy, float deg, float s,
                           gg_image *out) {
  if (!(s > 0)) return GG_EINVAL;
  /* Displayed counter-clockwise with y down: the output at p samples the
   * source at c + R(+a) (p - c) / s with R(a) = [cos -sin; sin cos] applied
   * in y-down coordinates, which turns content counter-clockwise on screen. */
  double a = deg * M_PI / 180.0, c = cos(a) / s, sn = sin(a) / s;
  double m[6] = {c, sn, 0, -sn, c, 0};
  m[2] = cx - m[0] * cx - m[1] * cy;
  m[5] = cy - m[3] * cx - m[4] * cy;
  return gg__image_warp(img, m, img->width, img->height, out);
}

int gg__image_crop(const gg_image *img, int x, int y, int w, int h, gg_image *out) {
  double m[6] = {1, 0, x, 0, 1, y};
  return gg__image_warp(img, m, w, h, out);
}

int gg__image_resize(const gg_image *img, int w, int h, gg_image *out) {
  if (w < 1 || h < 1) return GG_EINVAL;
  /* Shrink in halving steps first so a big reduction averages instead of
   * aliasing (what a camera's lower resolution looks like). */
  gg_image cur = {0};
  int rc = gg__image_copy(img, &cur);
  if (rc) return rc;
  while (cur.width >= 2 * w && cur.height >= 2 * h) {
    gg_image half;
    rc = image_new(cur.width / 2, cur.height / 2, &half);
    if (rc) {
      gg_image_free(&cur);
      return rc;
    }
    for (int y = 0; y < half.height; y++)
      for (int x = 0; x < half.width; x++)
        for (int c = 0; c < 3; c++) {
          const uint8_t *r0 = cur.rgb + (size_t)(2 * y) * (size_t)cur.width * 3;
          const uint8_t *r1 = r0 + (size_t)cur.width * 3;
          int sum = r0[6 * x + c] + r0[6 * x + 3 + c] + r1[6 * x + c] + r1[6 * x + 3 + c];
          half.rgb[((size_t)y * (size_t)half.width + (size_t)x) * 3 + (size_t)c] =
              (uint8_t)((sum + 2) / 4);
        }
    gg_image_free(&cur);
    cur = half;
  }
  double m[6] = {(double)cur.width / w, 0, 0, 0, (double)cur.height / h, 0};
  rc = gg__image_warp(&cur, m, w, h, out);
  gg_image_free(&cur);
  return rc;
}

int gg__image_brightness(const gg_image *img, float gain, gg_image *out) {
  int rc = image_new(img->width, img->height, out);
  if (rc) return rc;
  size_t n = (size_t)img->width * (size_t)img->height * 3;
  for (size_t i = 0; i < n; i++) {
    float v = img->rgb[i] * gain + 0.5f;
    out->rgb[i] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
  }
  return 0;
}

int gg__image_blur(const gg_image *img, float sigma, gg_image *out) {
  if (!(sigma > 0) || sigma > 100) return GG_EINVAL;
  int r = (int)ceilf(3 * sigma), kn = 2 * r + 1;
  float *k = malloc(sizeof *k * (size_t)kn);
  int w = img->width, h = img->height;
  float *tmp = malloc(sizeof *tmp * (size_t)w * (size_t)h * 3);
  int rc = image_new(w, h, out);
  if (!k || !tmp || rc) {
    free(k);
    free(tmp);
    gg_image_free(out);
    return rc ? rc : GG_ENOMEM;
  }
  float ks = 0;
  for (int i = 0; i < kn; i++)
    ks += k[i] = expf(-(float)((i - r) * (i - r)) / (2 * sigma * sigma));
  for (int i = 0; i < kn; i++)
    k[i] /= ks;
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++)
      for (int c = 0; c < 3; c++) {
        float acc = 0;
        for (int i = -r; i <= r; i++) {
          int xx = x + i < 0 ? 0 : x + i >= w ? w - 1 : x + i;
          acc += k[i + r] * img->rgb[((size_t)y * (size_t)w + (size_t)xx) * 3 + (size_t)c];
        }
        tmp[((size_t)y * (size_t)w + (size_t)x) * 3 + (size_t)c] = acc;
      }
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++)
      for (int c = 0; c < 3; c++) {
        float acc = 0;
        for (int i = -r; i <= r; i++) {
          int yy = y + i < 0 ? 0 : y + i >= h ? h - 1 : y + i;
          acc += k[i + r] * tmp[((size_t)yy * (size_t)w + (size_t)x) * 3 + (size_t)c];
        }
        float v = acc + 0.5f;
        out->rgb[((size_t)y * (size_t)w + (size_t)x) * 3 + (size_t)c] = (uint8_t)(v < 0     ? 0
                                                                                  : v > 255 ? 255
                                                                                            : v);
      }
  free(k);
  free(tmp);
  return 0;
}

int gg__image_jpeg_encode(const gg_image *img, int quality, void **jpeg, size_t *len) {
  *jpeg = NULL;
  *len = 0;
  if (!img || !img->rgb || img->width < 1 || img->height < 1 || quality < 1 || quality > 100)
    return GG_EINVAL;
#ifdef GG_HAVE_TURBOJPEG
  tjhandle h = tjInitCompress();
  if (!h) return GG_ENOMEM;
  unsigned char *buf = NULL;
  unsigned long n = 0;
  int bad = tjCompress2(h, img->rgb, img->width, 0, img->height, TJPF_RGB, &buf, &n, TJSAMP_420,
                        quality, 0);
  tjDestroy(h);
  void *copy = bad ? NULL : malloc(n);
  if (copy) memcpy(copy, buf, n);
  tjFree(buf);
  if (bad) return GG_EINVAL;
  if (!copy) return GG_ENOMEM;
  *jpeg = copy;
  *len = n;
  return 0;
#else
  return GG_ENOTIMPL;
#endif
}

int gg__image_jpeg_roundtrip(const gg_image *img, int quality, gg_image *out) {
  memset(out, 0, sizeof *out);
  void *buf;
  size_t len;
  int rc = gg__image_jpeg_encode(img, quality, &buf, &len);
  if (rc) return rc;
  rc = gg_image_decode(buf, len, 0, out, NULL, 0);
  free(buf);
  return rc;
}
