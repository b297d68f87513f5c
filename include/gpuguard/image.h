/* gpuguard image input: decode JPEG/PNG with limits, then resize and
 * normalize into a model's input tensor the way vladmandic/human feeds it.
 *
 * What the decoded pixels are (the same bytes always give the same pixels;
 * docs/images.md has the reasons):
 * - PNG transparency is ignored: alpha (an alpha channel or a tRNS chunk) is
 *   dropped and each pixel keeps its stored colour, as TensorFlow.js's
 *   tf.node.decodePng / decodeImage(..., 3) do. Nothing is blended; flatten
 *   an image onto the background you want before sending it.
 * - 16-bit samples become 8-bit by plain scaling (v >> 8, as TensorFlow
 *   does); no gamma (gAMA), chromaticity, sRGB or ICC conversion is ever
 *   applied.
 *   Gray, gray+alpha, palette and 1/2/4-bit depths expand to RGB.
 * - JPEG and PNG EXIF orientation (1..8; APP1 Exif, PNG eXIf) is applied,
 *   so width/height are those of the image as a viewer shows it.
 * - CMYK and YCCK JPEGs are converted to RGB with TensorFlow's formula
 *   (inverted inks when an Adobe marker is present), without a profile. */
#ifndef GPUGUARD_IMAGE_H
#define GPUGUARD_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Default decode limits. */
#define GG_IMAGE_MAX_PIXELS (40u * 1000u * 1000u) /* 40 MP */
#define GG_IMAGE_MAX_BYTES ((size_t)64 << 20)     /* encoded file size */

/* A decoded image: 8-bit RGB, row-major, width*3 bytes per row. */
typedef struct gg_image {
  int width, height;
  uint8_t *rgb; /* owned; gg_image_free */
} gg_image;

/* Decodes a JPEG (libturbojpeg) or PNG (libpng) held in memory into 8-bit
 * RGB as described at the top of this file. max_pixels 0 means
 * GG_IMAGE_MAX_PIXELS. Returns 0; GG_EPARSE for data that is neither,
 * or is malformed or truncated; GG_ETOO_LARGE past max_pixels (checked from
 * the header, before any pixel memory is taken); GG_ENOTIMPL when the
 * decoder is not built in; GG_ENOMEM. err (may be NULL) says which. On
 * success out->rgb is owned by the caller. */
int gg_image_decode(const void *data, size_t len, uint64_t max_pixels, gg_image *out, char *err,
                    size_t errlen);
/* Reads and decodes a file (at most GG_IMAGE_MAX_BYTES; GG_EIO if unreadable). */
int gg_image_load(const char *path, gg_image *out, char *err, size_t errlen);
/* Frees the pixels; safe on a zeroed or already freed image. */
void gg_image_free(gg_image *img);

/* How a model wants its input: value = pixel * scale + offset after a
 * bilinear resize to width x height (TF.js resizeBilinear with
 * align_corners = false, half_pixel_centers = false), NHWC or NCHW. */
typedef struct gg_preprocess {
  int width, height;
  float scale, offset;
  int nchw; /* 1: [1,3,H,W] (nanodet), 0: [1,H,W,3] */
  const char *why; /* where the convention comes from (static string) */
} gg_preprocess;

/* Fills the convention for a known model (matched on the file's base name:
 * blazeface*, mobilefacenet, faceres*, nanodet); else pixel/255 NHWC with
 * width/height 0 (take them from the model's input shape). Returns 1 when
 * the model was recognised, 0 otherwise. */
int gg_preprocess_for_model(const char *model_path, gg_preprocess *out);

/* Writes the preprocessed tensor for img into dst (width*height*3 floats in
 * the layout p asks for). Returns 0 or GG_EINVAL (bad sizes). */
int gg_image_to_tensor(const gg_image *img, const gg_preprocess *p, float *dst);

#ifdef __cplusplus
}
#endif
#endif
