/* Face pipeline internals: BlazeFace decoding (anchors, boxes, six
 * keypoints, NMS), eye-aligned face crops, face embeddings, and the image
 * transforms the embedder measurement uses to make camera-like views.
 * Not a public header; docs/face-embedder.md has the measurements. */
#ifndef GG_VISION_FACE_H
#define GG_VISION_FACE_H

#include "gpuguard/engine.h"
#include "gpuguard/image.h"

#include <stddef.h>
#include <stdint.h>

/* BlazeFace keypoints, in the model's order (MediaPipe's face detector): the
 * eye that appears on the image's left first. */
enum {
  GG_FACE_KP_EYE_L = 0, /* image-left eye (the subject's right) */
  GG_FACE_KP_EYE_R,     /* image-right eye */
  GG_FACE_KP_NOSE,
  GG_FACE_KP_MOUTH,
  GG_FACE_KP_EAR_L,
  GG_FACE_KP_EAR_R,
  GG_FACE_KP_COUNT
};

/* Both BlazeFace variants (front 128x128, back 256x256) have 896 anchors. */
#define GG_FACE_ANCHORS 896

/* One detected face, in source-image pixels. */
typedef struct gg__face_box {
  float x0, y0, x1, y1; /* box corners as the model regresses it (eyebrows to chin) */
  float score;          /* sigmoid of the logit, 0..1 */
  float kp[GG_FACE_KP_COUNT][2];
} gg__face_box;

typedef struct gg__face_detect_opts {
  float min_score; /* keep anchors scoring at least this (default 0.5) */
  float iou;       /* NMS overlap threshold (default 0.3) */
  int weighted;    /* 1: MediaPipe's weighted NMS (score-weighted mean of the cluster); 0: plain */
} gg__face_detect_opts;

/* Writes the anchor centres, in input pixels, for a BlazeFace model whose
 * input is size x size: strides size/16 (2 anchors per cell) then size/8 (6
 * per cell), the order of the model's outputs. anchors holds
 * 2 * GG_FACE_ANCHORS floats (x, y). Returns the count (896), or GG_EINVAL
 * when size is not a positive multiple of 16. */
int gg__blazeface_anchors(int size, float *anchors);

/* Decodes raw BlazeFace outputs: logits[i] (one per anchor) and regs[i*16..]
 * (dx, dy, w, h, then 6 keypoints dx, dy; all in input pixels, relative to
 * anchor i) for a size x size input. map = {sx, sy, ox, oy} takes an input
 * pixel coordinate v to the source image (src = v * s + o): {w/size,
 * h/size, 0, 0} for a stretched image. Keeps anchors with sigmoid(logit) >=
 * o->min_score (o NULL: defaults), suppresses overlaps, and writes at most
 * max faces to out, best first, in source pixels. Returns the count
 * (0..max), GG_EINVAL or GG_ENOMEM. */
int gg__blazeface_decode(const float *logits, const float *regs, int size, const float map[4],
                         const gg__face_detect_opts *o, gg__face_box *out, int max);

/* A loaded BlazeFace model with a session for its input size. */
typedef struct gg__face_detector gg__face_detector;

/* Loads the BlazeFace model at path (blazeface.json: 256x256, blazeface-front:
 * 128x128) and prepares a session with `threads` threads. Returns 0 or the
 * engine's error (message in err); *out owned by the caller. */
int gg__face_detector_new(const char *path, int threads, gg__face_detector **out, char *err,
                          size_t errlen);
void gg__face_detector_free(gg__face_detector *d);
/* Input side of the model (128 or 256). */
int gg__face_detector_size(const gg__face_detector *d);

/* Finds faces in img: the whole image letterboxed into the model's input
 * (aspect kept, black margins; human stretches instead, which distorts the
 * keypoints of faces in wide photos), values x/127.5 - 1 as in human. o may
 * be NULL (defaults).
 * Returns the number written to out (at most max), or a negative error with
 * a message in err. */
int gg__face_detect(gg__face_detector *d, const gg_image *img, const gg__face_detect_opts *o,
                    gg__face_box *out, int max, char *err, size_t errlen);

/* The pieces of gg__face_detect for a caller that runs the model itself
 * (the pipeline, through its runner):
 * gg__face_detect_input writes img letterboxed into a size x size x 3 NHWC
 * input x (values x/127.5 - 1, margins -1) and map for
 * gg__blazeface_decode; returns 0, GG_EINVAL or GG_ENOMEM.
 * gg__blazeface_gather puts n model outputs (data[i] with shape[i] =
 * {1, rows, cols}) into logits (896) and regs (896 x 16) in anchor order:
 * one [1,896,17] output, or the TF.js conversion's four ([1,512,1],
 * [1,384,1], [1,512,16], [1,384,16]). Returns 0, or GG_EUNSUPPORTED when
 * the outputs are not BlazeFace's. */
int gg__face_detect_input(const gg_image *img, int size, float *x, float map[4]);
int gg__blazeface_gather(int n, const float *const *data, const int64_t (*shape)[3],
                         float *logits, float *regs);

/* Where the eyes land in an aligned crop, as fractions of its side:
 * horizontally symmetric about the centre, eye_dist apart, at height eye_y.
 * ArcFace's 112x112 template is about {0.315, 0.46}. */
typedef struct gg__face_align_spec {
  float eye_dist, eye_y;
} gg__face_align_spec;

/* Inverse similarity transform of an alignment: src = M * (x, y, 1) for a
 * crop pixel centre (x + 0.5, y + 0.5) is m[0..2] and m[3..5]. Maps the image
 * eyes (eye_l on the crop's left) onto the spec's positions in a w x h crop.
 * Returns 0, or GG_EINVAL when the eyes coincide or the spec is degenerate. */
int gg__face_align_matrix(const float eye_l[2], const float eye_r[2], int w, int h,
                          const gg__face_align_spec *spec, double m[6]);

/* Samples img through the affine map m (crop pixel centre -> source
 * coordinate, as above) into a new w x h image with bilinear interpolation;
 * outside the source the nearest edge pixel is repeated. Returns 0,
 * GG_EINVAL or GG_ENOMEM; out->rgb owned by the caller. */
int gg__image_warp(const gg_image *img, const double m[6], int w, int h, gg_image *out);

/* gg__face_align_matrix + gg__image_warp. */
int gg__face_align(const gg_image *img, const float eye_l[2], const float eye_r[2], int w, int h,
                   const gg__face_align_spec *spec, gg_image *out);

/* Aligns a detected face: eyes as in gg__face_align. When the eyes are
 * closer than GG_FACE_PROFILE_EYES of the box width or out of order (a face
 * turned towards profile: the far eye is hidden and its keypoint lands next
 * to the near one, or on the wrong side) the crop is level, centred on the
 * box and scaled from it (the eye distance a frontal face of that box has,
 * GG_FACE_FRONTAL_EYES of its width), so it is neither blown up nor turned
 * upside down. *profile (may be NULL) says whether that happened. */
#define GG_FACE_PROFILE_EYES 0.2f
#define GG_FACE_FRONTAL_EYES 0.36f
int gg__face_align_box(const gg_image *img, const gg__face_box *f, int w, int h,
                       const gg__face_align_spec *spec, gg_image *out, int *profile);

/* The crop human frames (the detector box enlarged `enlarge` times, about
 * its centre, square), but rotated about the box centre so the eyes are
 * level. The eyes set only the angle (none for a turned face, see
 * gg__face_align_box), the box sets position and scale, so a turned face
 * (the eye distance shrinks with yaw) keeps the framing of a frontal one.
 * Returns 0, GG_EINVAL or GG_ENOMEM. */
int gg__face_align_framed(const gg_image *img, const gg__face_box *f, int w, int h, float enlarge,
                          gg_image *out);

/* How a crop becomes the embedder's input tensor: value = pixel * scale +
 * offset, channels in RGB order or BGR when bgr is set. */
typedef struct gg__face_embed_prep {
  float scale, offset;
  int bgr;
} gg__face_embed_prep;

/* The measured default (docs/face-embedder.md, bench/bench-face-embed.c):
 * faceres's 1024-wide descriptor of the eye-aligned "loose" crop
 * (gg__face_align_box: eyes 24% of the side apart at 42% of its height),
 * values 0..255 in BGR order, compared by cosine; two faces are the same
 * person when the cosine is at least the threshold. */
#define GG_FACE_EMBED_MODEL "faceres"
#define GG_FACE_EMBED_SCALE 1.0f
#define GG_FACE_EMBED_OFFSET 0.0f
#define GG_FACE_EMBED_BGR 1
#define GG_FACE_ALIGN_EYE_DIST 0.24f
#define GG_FACE_ALIGN_EYE_Y 0.42f
#define GG_FACE_MATCH_THRESHOLD 0.74f

/* A loaded face embedding model (mobilefacenet, mobileface, faceres,
 * faceres-deep) with a session for one face. */
typedef struct gg__face_embedder gg__face_embedder;

/* Loads the model and picks its embedding output: the only output, or the
 * 2-D output with the most elements (faceres: the 1024-wide
 * global_pooling/Mean, not age or gender). Returns 0 or the engine's error. */
int gg__face_embedder_new(const char *path, int threads, gg__face_embedder **out, char *err,
                          size_t errlen);
void gg__face_embedder_free(gg__face_embedder *e);
/* Input side (112 or 224) and embedding length. */
int gg__face_embedder_size(const gg__face_embedder *e);
int gg__face_embedder_dim(const gg__face_embedder *e);

/* Runs an aligned crop (any size: resized bilinearly to the input side)
 * through the model and copies the raw embedding into out (cap floats).
 * Returns the embedding length or a negative error. */
int gg__face_embed(gg__face_embedder *e, const gg_image *crop, const gg__face_embed_prep *p,
                   float *out, int cap, char *err, size_t errlen);

/* Vector helpers: L2 norm to unit length (a zero vector stays zero), and the
 * cosine of two vectors (0 when either is zero). */
void gg__vec_l2_normalize(float *v, int n);
float gg__vec_cosine(const float *a, const float *b, int n);

/* Camera-like transforms (each returns 0, GG_EINVAL or GG_ENOMEM and a new
 * image in out, owned by the caller). */
int gg__image_copy(const gg_image *img, gg_image *out);
/* Mirror left-right. */
int gg__image_flip(const gg_image *img, gg_image *out);
/* Rotates by deg (counter-clockwise as displayed) and scales by s about
 * (cx, cy), keeping the size. */
int gg__image_rotate_scale(const gg_image *img, float cx, float cy, float deg, float s,
                           gg_image *out);
/* The region [x, x+w) x [y, y+h) (clamped reads at the borders). */
int gg__image_crop(const gg_image *img, int x, int y, int w, int h, gg_image *out);
/* Bilinear resize to w x h (area-averaging when shrinking by more than 2x). */
int gg__image_resize(const gg_image *img, int w, int h, gg_image *out);
/* Multiplies every channel by gain, saturating. */
int gg__image_brightness(const gg_image *img, float gain, gg_image *out);
/* Gaussian blur with standard deviation sigma pixels (separable). */
int gg__image_blur(const gg_image *img, float sigma, gg_image *out);
/* Encodes img as a baseline JPEG (4:2:0) at quality 1..100 into *jpeg
 * (malloc'd, the caller frees) of *len bytes. GG_EINVAL, GG_ENOMEM, or
 * GG_ENOTIMPL when built without libturbojpeg. */
int gg__image_jpeg_encode(const gg_image *img, int quality, void **jpeg, size_t *len);
/* JPEG encode at quality 1..100 and decode again; GG_ENOTIMPL without
 * libturbojpeg. */
int gg__image_jpeg_roundtrip(const gg_image *img, int quality, gg_image *out);

#endif
