/* gg_model_image_input: the input tensor shape an image becomes for a model,
 * shared by `gpuguard infer` and POST /api/infer. */
#include "gpuguard/engine.h"
#include "gpuguard/error.h"
#include "gpuguard/image.h"
#include "gpuguard/upscale.h"

#include <stdio.h>
#include <string.h>

/* A size a sidecar asks for must be the model's where its input fixes it. */
static int check_fixed_size(const char *path, const gg_preprocess *pp, char *err, size_t errlen) {
  gg_model *m = NULL;
  gg_tensor_info ti;
  int rc = gg_model_load(path, &m, err, errlen);
  if (rc) return rc;
  if (gg_model_input(m, 0, &ti) == 0 && ti.ndim == 4) {
    int64_t h = ti.shape[pp->nchw ? 2 : 1], w = ti.shape[pp->nchw ? 3 : 2];
    if ((h > 0 && pp->height > 0 && h != pp->height) || (w > 0 && pp->width > 0 && w != pp->width))
      rc = gg_errf(err, errlen, GG_EINVAL,
                   "%s.json asks for %dx%d, but the model's input is fixed at %lldx%lld", path,
                   pp->width, pp->height, (long long)w, (long long)h);
  }
  gg_model_free(m);
  return rc;
}

int gg_model_image_input(const char *path, gg_preprocess *pp, int64_t dims[4], char *err,
                         size_t errlen) {
  int known = gg_preprocess_for_model(path, pp);
  gg_upscale_preprocess(path, pp); /* the upscalers' pixel range, when it is one */
  size_t pl = strlen(path);
  if (!known && pl > 5 && !strcmp(path + pl - 5, ".onnx")) {
    /* ONNX image models take [N,3,H,W] (NHWC when the last dim is 3) */
    gg_model *m = NULL;
    gg_tensor_info ti;
    int rc = gg_model_load(path, &m, err, errlen);
    if (rc) return rc;
    if (gg_model_input(m, 0, &ti) == 0 && ti.ndim == 4 && ti.shape[1] == 3 && ti.shape[3] != 3) {
      pp->nchw = 1;
      pp->why = "ONNX model with an NCHW [N,3,H,W] input: pixel / 255";
    }
    gg_model_free(m);
  }
  /* MODEL.json next to the model: mean, std, channel order, size */
  int found = 0, rc = gg_preprocess_sidecar(path, pp, &found, err, errlen);
  if (rc) return rc;
  if (found && (rc = check_fixed_size(path, pp, err, errlen))) return rc;
  if (pp->width <= 0 || pp->height <= 0) {
    gg_model *m = NULL;
    gg_tensor_info ti;
    rc = gg_model_load(path, &m, err, errlen);
    if (rc) return rc;
    if (gg_model_input(m, 0, &ti) == 0 && ti.ndim == 4) {
      pp->height = (int)ti.shape[pp->nchw ? 2 : 1];
      pp->width = (int)ti.shape[pp->nchw ? 3 : 2];
    }
    gg_model_free(m);
    if (pp->width <= 0 || pp->height <= 0) {
      snprintf(err, errlen,
               "%s has no fixed 4-D image input (a model whose height and width are free, such "
               "as the ESRGAN upscalers, runs through the tiled upscaler: "
               "include/gpuguard/upscale.h, docs/upscale.md)",
               path);
      return GG_EUNSUPPORTED;
    }
  }
  dims[0] = 1;
  if (pp->nchw)
    dims[1] = 3, dims[2] = pp->height, dims[3] = pp->width;
  else
    dims[1] = pp->height, dims[2] = pp->width, dims[3] = 3;
  return 0;
}
