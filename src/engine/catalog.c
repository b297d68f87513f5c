/* The model catalog: the bundled models (the human-models 3.0.4 package,
 * scripts/fetch-models.sh), what each is for, where its file is and how an
 * image is fed to it. The preprocessing follows the TF.js code the models
 * were published with (vladmandic/human, src/face/ and src/object/). */
#include "gpuguard/catalog.h"
#include "gpuguard/engine.h"
#include "gpuguard/error.h"
#include "gpuguard/image.h"
#include "gpuguard/log.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PKG "human-models-3.0.4/models/"
#define BILINEAR "whole frame stretched to the input size, bilinear (TF.js resizeBilinear)"

static const gg_model_entry k_catalog[] = {
    {
        .name = "blazeface",
        .file = PKG "blazeface.json",
        .kind = GG_MODEL_FACE_DETECTOR,
        .pp = {.width = 256, .height = 256, .scale = 1.0f / 127.5f, .offset = -1.0f, .nchw = 0, .why = "human src/face/blazeface.ts: resizeBilinear to 256x256, x/127.5 - 1"},
        .input_shape = {1, 256, 256, 3},
        .channels = "RGB",
        .resize = BILINEAR,
        .range = "[-1, 1]",
    },
    {
        .name = "mobilefacenet",
        .file = PKG "mobilefacenet.json",
        .kind = GG_MODEL_FACE_EMBEDDER,
        .pp = {.width = 112, .height = 112, .scale = 1.0f / 255.0f, .offset = 0.0f, .nchw = 0, .why = "human src/face/mobilefacenet.ts: face crop in [0,1] resized to 112x112"},
        .input_shape = {1, 112, 112, 3},
        .channels = "RGB",
        .resize = BILINEAR,
        .range = "[0, 1]",
    },
    {
        .name = "nanodet",
        .file = PKG "nanodet.json",
        .kind = GG_MODEL_OBJECT_DETECTOR,
        .pp = {.width = 416, .height = 416, .scale = 1.0f / 255.0f, .offset = 0.0f, .nchw = 1, .why = "human src/object/nanodet.ts: resizeBilinear to 416x416, /255, transpose to NCHW"},
        .input_shape = {1, 3, 416, 416},
        .channels = "RGB",
        .resize = BILINEAR,
        .range = "[0, 1]",
    },
    {
        .name = "faceres",
        .file = PKG "faceres.json",
        .kind = GG_MODEL_FACE_DESCRIBER,
        .pp = {.width = 224, .height = 224, .scale = 1.0f, .offset = 0.0f, .nchw = 0, .why = "human src/face/faceres.ts: crop in [0,1] resized to 224x224, then * 255"},
        .input_shape = {1, 224, 224, 3},
        .channels = "RGB",
        .resize = BILINEAR,
        .range = "[0, 255]",
    },
    /* Anti-spoofing, run only when a request asks (?liveness=1). */
    {
        .name = "antispoof",
        .file = PKG "antispoof.json",
        .kind = GG_MODEL_FACE_ANTISPOOF,
        .pp = {.width = 128, .height = 128, .scale = 1.0f / 255.0f, .offset = 0.0f, .nchw = 0, .why = "human src/face/antispoof.ts: face crop in [0,1] resized to 128x128"},
        .input_shape = {1, 128, 128, 3},
        .channels = "RGB",
        .resize = "the face box crop, eyes levelled, bilinear",
        .range = "[0, 1]",
    },
    {
        .name = "liveness",
        .file = PKG "liveness.json",
        .kind = GG_MODEL_FACE_LIVENESS,
        .pp = {.width = 32, .height = 32, .scale = 1.0f / 255.0f, .offset = 0.0f, .nchw = 0, .why = "human src/face/liveness.ts: face crop in [0,1] resized to 32x32"},
        .input_shape = {1, 32, 32, 3},
        .channels = "RGB",
        .resize = "the face box crop, eyes levelled, bilinear",
        .range = "[0, 1]",
    },
};

#define N_CATALOG (sizeof k_catalog / sizeof k_catalog[0])

size_t gg_catalog_count(void) {
  return N_CATALOG;
}

const gg_model_entry *gg_catalog_at(size_t i) {
  return i < N_CATALOG ? &k_catalog[i] : NULL;
}

/* ONNX models dropped into $GPUGUARD_MODELS_DIR as NAME.onnx: an entry is
 * made the first time NAME is asked for, from the model's first input
 * ([N,3,H,W] is fed NCHW, [N,H,W,3] NHWC; pixel / 255; a free H or W is
 * 224), and kept (stable
 * pointers, at most MAX_DYN of them). */
#define MAX_DYN 32
typedef struct dyn_entry {
  gg_model_entry e;
  char name[72], file[80];
} dyn_entry;
static dyn_entry g_dyn[MAX_DYN];
static int g_n_dyn;
static pthread_mutex_t g_dyn_lock = PTHREAD_MUTEX_INITIALIZER;

static const gg_model_entry *find_onnx(const char *name) {
  const char *md = getenv("GPUGUARD_MODELS_DIR");
  size_t nl = strlen(name);
  if (!md || !*md || !nl || nl > 64 || strchr(name, '/') || name[0] == '.') return NULL;
  const gg_model_entry *found = NULL;
  pthread_mutex_lock(&g_dyn_lock);
  for (int i = 0; i < g_n_dyn && !found; i++)
    if (!strcmp(g_dyn[i].name, name)) found = &g_dyn[i].e;
  if (found || g_n_dyn >= MAX_DYN) {
    pthread_mutex_unlock(&g_dyn_lock);
    return found;
  }
  char path[1024];
  snprintf(path, sizeof path, "%s/%s.onnx", md, name);
  gg_model *m = NULL;
  gg_tensor_info ti;
  if (access(path, R_OK) == 0 && gg_model_load(path, &m, NULL, 0) == 0 &&
      gg_model_input(m, 0, &ti) == 0 && ti.ndim == 4 && ti.dtype == GG_TENSOR_F32) {
    int nchw = ti.shape[1] == 3 && ti.shape[3] != 3;
    int64_t h = ti.shape[nchw ? 2 : 1], w = ti.shape[nchw ? 3 : 2];
    if (h < 0) h = 224; /* free dims: 224, as gpuguard infer does */
    if (w < 0) w = 224;
    if ((nchw || ti.shape[3] == 3) && h > 0 && w > 0 && h <= 16384 && w <= 16384) {
      dyn_entry *d = &g_dyn[g_n_dyn];
      snprintf(d->name, sizeof d->name, "%s", name);
      snprintf(d->file, sizeof d->file, "%s.onnx", name);
      d->e.name = d->name;
      d->e.file = d->file;
      d->e.kind = GG_MODEL_KIND_COUNT; /* not one of the bundled kinds */
      gg_preprocess pp = {.width = (int)w, .height = (int)h, .scale = 1.0f / 255.0f, .offset = 0.0f, .nchw = nchw, .why = "an ONNX model in the models directory: pixel / 255"};
      /* NAME.onnx.json: mean, std, channel order, and a size for free dims */
      char err[1400] = "";
      int side = 0, bad = gg_preprocess_sidecar(path, &pp, &side, err, sizeof err) != 0;
      if (!bad && side && ((ti.shape[nchw ? 2 : 1] > 0 && pp.height != h) ||
                            (ti.shape[nchw ? 3 : 2] > 0 && pp.width != w))) {
        snprintf(err, sizeof err, "%s.json asks for %dx%d, but the input is fixed at %lldx%lld",
                 path, pp.width, pp.height, (long long)w, (long long)h);
        bad = 1;
      }
      if (bad) {
        GG_ERROR("catalog", "%s; model '%s' is not served", err, name);
        gg_model_free(m);
        pthread_mutex_unlock(&g_dyn_lock);
        return NULL;
      }
      h = pp.height, w = pp.width;
      d->e.pp = pp;
      int64_t shp[4] = {1, nchw ? 3 : h, nchw ? h : w, nchw ? w : 3};
      memcpy(d->e.input_shape, shp, sizeof shp);
      d->e.channels = pp.bgr ? "BGR" : "RGB";
      d->e.resize = BILINEAR;
      d->e.range = side ? "(pixel - mean) / std, from NAME.onnx.json" : "[0, 1]";
      found = &d->e;
      g_n_dyn++;
    }
  }
  gg_model_free(m);
  pthread_mutex_unlock(&g_dyn_lock);
  return found;
}

const gg_model_entry *gg_catalog_find(const char *name) {
  for (size_t i = 0; name && i < N_CATALOG; i++)
    if (!strcmp(name, k_catalog[i].name)) return &k_catalog[i];
  return name ? find_onnx(name) : NULL;
}

static const char *base_name(const char *p) {
  const char *s = strrchr(p, '/');
  return s ? s + 1 : p;
}

const gg_model_entry *gg_catalog_find_path(const char *path) {
  if (!path) return NULL;
  const char *b = base_name(path);
  for (size_t i = 0; i < N_CATALOG; i++)
    if (!strcmp(b, base_name(k_catalog[i].file))) return &k_catalog[i];
  return NULL;
}

const char *gg_catalog_kind_name(gg_model_kind kind) {
  static const char *const names[GG_MODEL_KIND_COUNT] = {"face_detector",  "object_detector",
                                                         "face_embedder",  "face_describer",
                                                         "face_antispoof", "face_liveness"};
  return (unsigned)kind < GG_MODEL_KIND_COUNT ? names[kind] : "unknown";
}

/* Formats dir/rest into out and says whether that file exists. */
static int try_path(char *out, size_t outlen, const char *dir, const char *rest) {
  int n = snprintf(out, outlen, "%s/%s", dir, rest);
  return n > 0 && (size_t)n < outlen && access(out, R_OK) == 0;
}

int gg_catalog_path(const gg_model_entry *e, const char *models_dir, char *out, size_t outlen) {
  if (!e || !out || outlen < 2) return GG_EINVAL;
  out[0] = 0;
  const char *md = models_dir && *models_dir ? models_dir : getenv("GPUGUARD_MODELS_DIR");
  if (md && *md) {
    /* A flat folder of model files, or the package unpacked under it. */
    if (try_path(out, outlen, md, base_name(e->file))) return 0;
    if (try_path(out, outlen, md, e->file)) return 0;
    if (models_dir && *models_dir) return GG_ENOTFOUND;
  }
  const char *cache = getenv("GPUGUARD_CACHE"), *home = getenv("HOME");
  char root[768];
  if (cache && *cache)
    snprintf(root, sizeof root, "%s/models", cache);
  else
    snprintf(root, sizeof root, "%s/.cache/gpuguard/models", home ? home : "");
  return try_path(out, outlen, root, e->file) ? 0 : GG_ENOTFOUND;
}

int gg_catalog_resolve(const char *name_or_path, char *out, size_t outlen) {
  const gg_model_entry *e = gg_catalog_find(name_or_path);
  return e ? gg_catalog_path(e, NULL, out, outlen) : gg_model_resolve(name_or_path, out, outlen);
}
