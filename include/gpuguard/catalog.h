/* The model catalog: the one place that knows the bundled models, by name:
 * their file under the models directory, how an image is fed to them and
 * their input shape, so nothing has to load a model to learn these. */
#ifndef GPUGUARD_CATALOG_H
#define GPUGUARD_CATALOG_H

#include "gpuguard/image.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* What a model is for. Append only. */
typedef enum gg_model_kind {
  GG_MODEL_FACE_DETECTOR,   /* boxes and keypoints of faces (blazeface) */
  GG_MODEL_OBJECT_DETECTOR, /* boxes and classes of objects, people among them (nanodet) */
  GG_MODEL_FACE_EMBEDDER,   /* an embedding of an aligned face crop (mobilefacenet) */
  GG_MODEL_FACE_DESCRIBER,  /* an embedding plus age and gender of a face crop (faceres) */
  GG_MODEL_FACE_ANTISPOOF,  /* one score of a face crop, higher = a real face (antispoof) */
  GG_MODEL_FACE_LIVENESS,   /* one score of a face crop, higher = a live face (liveness) */
  GG_MODEL_KIND_COUNT
} gg_model_kind;

/* One catalog entry. All strings are static. */
typedef struct gg_model_entry {
  const char *name; /* "blazeface": what ?model= and --model take */
  const char *file; /* model.json relative to the models directory */
  gg_model_kind kind;
  gg_preprocess pp;       /* input size, value = pixel * scale + offset, NHWC or NCHW */
  int64_t input_shape[4]; /* {1,H,W,3} (NHWC) or {1,3,H,W} (pp.nchw): what the model declares */
  const char *channels;   /* channel order of the input: "RGB" */
  const char *resize;     /* how a frame becomes the input size */
  const char *range;      /* the input's value range, e.g. "[-1, 1]" */
} gg_model_entry;

/* The models every face request needs, as a comma list in catalog order
 * (the catalog's first entries): the default of `serve --models` and
 * `bench --models`. The entries after them are loaded on first use. */
#define GG_CATALOG_MODELS "blazeface,mobilefacenet,nanodet,faceres"

/* Number of entries, and entry i (NULL past the end). */
size_t gg_catalog_count(void);
const gg_model_entry *gg_catalog_at(size_t i);
/* The entry named `name` (exact), or NULL. */
const gg_model_entry *gg_catalog_find(const char *name);
/* The entry whose file has the same base name as `path`
 * (".../blazeface.json"), or NULL. For model paths given on a command line. */
const gg_model_entry *gg_catalog_find_path(const char *path);
/* The short name of a kind ("face_detector"); "unknown" past the end. */
const char *gg_catalog_kind_name(gg_model_kind kind);

/* Writes e's model.json path into out: models_dir/file, where models_dir
 * NULL or "" means $GPUGUARD_MODELS_DIR, else
 * ${GPUGUARD_CACHE:-$HOME/.cache/gpuguard}/models. Returns 0 when the file
 * exists, GG_ENOTFOUND (out holds the path tried) or GG_EINVAL. */
int gg_catalog_path(const gg_model_entry *e, const char *models_dir, char *out, size_t outlen);
/* Resolves what a user names a model by: a catalog name through
 * gg_catalog_path; anything else (a path, another model of the package) as
 * gg_model_resolve does. 0, GG_ENOTFOUND (out: the last path tried) or
 * GG_EINVAL. */
int gg_catalog_resolve(const char *name_or_path, char *out, size_t outlen);

#ifdef __cplusplus
}
#endif
#endif
