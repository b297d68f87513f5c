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
  /* Per channel (per_channel 1): output channel c is pixel * ch_scale[c] +
   * ch_offset[c], in place of scale and offset. bgr 1 feeds the channels
   * as B, G, R (channel 0 is the image's blue). Set by
   * gg_preprocess_set_mean_std: a model's sidecar file or `gpuguard infer
   * --mean/--std/--bgr`. Zero (the initializers above) leaves them off. */
  float ch_scale[3], ch_offset[3];
  int per_channel, bgr;
} gg_preprocess;

/* value = (pixel - mean[c]) / std[c], pixel in 0..255 (OpenCV's
 * blobFromImage and insightface write it so: mean 127.5, std 127.5 gives
 * [-1, 1]; ImageNet's is mean 123.675,116.28,103.53, std 58.395,57.12,
 * 57.375). Scalar scale/offset when the three are equal, else per
 * channel. GG_EINVAL when a mean is not finite or a std is 0 or not
 * finite (pp unchanged). */
int gg_preprocess_set_mean_std(gg_preprocess *pp, const float mean[3], const float std[3]);

/* "127.5" (all three channels) or "123.675,116.28,103.53" into out.
 * GG_EINVAL for anything else (empty, two values, trailing text, not
 * finite). */
int gg_preprocess_parse3(const char *s, float out[3]);

/* A model's preprocessing sidecar: MODEL_PATH.json (`arcface.onnx.json`
 * next to `arcface.onnx`), a JSON object with any of
 *   "mean": number or [r, g, b]   "std": number or [r, g, b]
 *   "channels": "RGB" or "BGR"    "width", "height": 1..16384
 * (mean defaults to 0 and std to 1 when the other is given; neither keeps
 * pp's scale and offset). *found is 1 when the file exists. A file that
 * is not such an object (malformed JSON, an unknown key, a std of 0, over
 * 64 KiB) is GG_EPARSE with the file and the reason in err, and pp is
 * unchanged. */
int gg_preprocess_sidecar(const char *model_path, gg_preprocess *pp, int *found, char *err,
                          size_t errlen);

/* pp's value rule for messages: "pixel * 0.00392157 + 0", or per channel
 * "(pixel - [127.5,127.5,127.5]) / [128,128,128]"; ", BGR" when bgr. */
void gg_preprocess_describe(const gg_preprocess *pp, char *out, size_t len);

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
