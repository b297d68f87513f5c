/* Image decoding (JPEG via libturbojpeg, PNG via libpng's classic read API
 * with explicit transforms) with size limits checked from the header before
 * any pixel memory is taken, and the per-model resize + normalize. The
 * pixel semantics (alpha dropped, 16 -> 8 bit by scaling, no gamma or colour
 * management, CMYK converted, EXIF orientation applied) are in
 * include/gpuguard/image.h and docs/images.md. */
#include "gpuguard/image.h"
#include "gpuguard/error.h"
#include "vision/vision-impl.h"

#ifdef GG_HAVE_TURBOJPEG
#include <turbojpeg.h>
#endif
#ifdef GG_HAVE_PNG
#include <png.h>
#include <setjmp.h>
#endif

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

void gg_image_free(gg_image *img) {
  if (!img) return;
  free(img->rgb);
  img->rgb = NULL;
  img->width = img->height = 0;
}

static int check_dims(uint64_t w, uint64_t h, uint64_t max, const char *kind, char *err,
                      size_t errlen) {
  if (w == 0 || h == 0)
    return gg_errf(err, errlen, GG_EPARSE, "%s image has an empty size (%llux%llu)", kind,
                 (unsigned long long)w, (unsigned long long)h);
  if (w > 65535 || h > 65535 || w * h > max)
    return gg_errf(err, errlen, GG_ETOO_LARGE,
                 "%s image is %llux%llu = %.1f MP, over the limit of %.1f MP; downscale it first",
                 kind, (unsigned long long)w, (unsigned long long)h, (double)(w * h) / 1e6,
                 (double)max / 1e6);
  return 0;
}

#ifdef GG_HAVE_TURBOJPEG
/* CMYK to RGB in place (n pixels; the result fills the first 3n bytes), as
 * TensorFlow's DecodeJpeg does it: a file with an Adobe marker stores the
 * inks inverted (255 = no ink, what Photoshop writes), so R = C*K/255;
 * otherwise R = (255-C)*(255-K)/255. Naive (no colour profile), but it is
 * what TF.js on Node gives for the same file. */
static void cmyk_to_rgb(uint8_t *px, size_t n, int inverted) {
  for (size_t i = 0; i < n; i++) {
    unsigned c = px[i * 4], m = px[i * 4 + 1], y = px[i * 4 + 2], k = px[i * 4 + 3];
    if (!inverted) c = 255 - c, m = 255 - m, y = 255 - y, k = 255 - k;
    px[i * 3] = (uint8_t)(c * k / 255);
    px[i * 3 + 1] = (uint8_t)(m * k / 255);
    px[i * 3 + 2] = (uint8_t)(y * k / 255);
  }
}
#endif

static int decode_jpeg(const uint8_t *d, size_t len, uint64_t max, gg_image *out, int *orient,
                       char *err, size_t errlen) {
#ifdef GG_HAVE_TURBOJPEG
  if (len > (size_t)0xffffffffu) return gg_errf(err, errlen, GG_ETOO_LARGE, "JPEG data too large");
  tjhandle h = tjInitDecompress();
  if (!h) return gg_errf(err, errlen, GG_ENOMEM, "cannot create a JPEG decoder");
  int w = 0, ht = 0, sub = 0, cs = 0;
  if (tjDecompressHeader3(h, d, (unsigned long)len, &w, &ht, &sub, &cs)) {
    int rc = gg_errf(err, errlen, GG_EPARSE, "malformed JPEG header: %s", tjGetErrorStr2(h));
    tjDestroy(h);
    return rc;
  }
  int rc = check_dims((uint64_t)w, (uint64_t)ht, max, "JPEG", err, errlen);
  if (rc) {
    tjDestroy(h);
    return rc;
  }
  /* libjpeg turns YCCK into CMYK but not into RGB: take CMYK and convert. */
  int cmyk = cs == TJCS_CMYK || cs == TJCS_YCCK;
  size_t n = (size_t)w * (size_t)ht;
  uint8_t *px = malloc(n * (cmyk ? 4 : 3));
  if (!px) {
    tjDestroy(h);
    return gg_errf(err, errlen, GG_ENOMEM, "no memory for a %dx%d image", w, ht);
  }
  /* Warnings (a truncated file decodes as grey) are errors here. */
  if (tjDecompress2(h, d, (unsigned long)len, px, w, 0, ht, cmyk ? TJPF_CMYK : TJPF_RGB,
                    TJFLAG_STOPONWARNING)) {
    rc = gg_errf(err, errlen, GG_EPARSE, "JPEG data is corrupt or truncated: %s", tjGetErrorStr2(h));
    free(px);
    tjDestroy(h);
    return rc;
  }
  tjDestroy(h);
  gg__jpeg_meta meta;
  gg__jpeg_meta_read(d, len, &meta);
  if (cmyk) {
    cmyk_to_rgb(px, n, meta.adobe);
    uint8_t *fit = realloc(px, n * 3);
    if (fit) px = fit;
  }
  out->width = w, out->height = ht, out->rgb = px;
  *orient = meta.orientation;
  return 0;
#else
  (void)d, (void)len, (void)max, (void)out, (void)orient;
  return gg_errf(err, errlen, GG_ENOTIMPL, "JPEG support is not built in (install libturbojpeg0-dev and rebuild)");
#endif
}

#ifdef GG_HAVE_PNG
/* One PNG decode: the input, what libpng said last, and the buffers, kept
 * outside the function that calls setjmp so a longjmp cannot lose them. */
typedef struct png_job {
  const uint8_t *d;
  size_t len, pos;
  int in_pixels; /* the header was fine; an error now is in the image data */
  uint8_t *px;
  png_bytep *rows;
  char msg[200];
} png_job;

static void png_on_error(png_structp png, png_const_charp msg) {
  png_job *job = png_get_error_ptr(png);
  snprintf(job->msg, sizeof job->msg, "%s", msg);
  png_longjmp(png, 1);
}

/* Warnings are about ancillary chunks (a bad CRC, a malformed eXIf) that
 * libpng then skips; a skipped chunk leaves the defaults (no orientation),
 * and the pixel data itself only ever fails through png_on_error. */
static void png_on_warning(png_structp png, png_const_charp msg) {
  (void)png, (void)msg;
}

static void png_read_mem(png_structp png, png_bytep dst, size_t n) {
  png_job *job = png_get_io_ptr(png);
  if (n > job->len - job->pos) png_error(png, "unexpected end of data");
  memcpy(dst, job->d + job->pos, n);
  job->pos += n;
}

/* n pixels of ch (1..4) 8-bit channels, gray[+alpha] or RGB[A], to RGB in
 * place; alpha is dropped. px holds n * max(ch, 3) bytes. Gray grows, so it
 * runs backwards; RGBA shrinks, so forwards. */
static void channels_to_rgb(uint8_t *px, size_t n, int ch) {
  if (ch < 3) {
    for (size_t i = n; i-- > 0;) {
      uint8_t v = px[i * (size_t)ch];
      px[i * 3] = px[i * 3 + 1] = px[i * 3 + 2] = v;
    }
  } else if (ch == 4) {
    for (size_t i = 0; i < n; i++)
      memmove(px + i * 3, px + i * 4, 3);
  }
}

static int png_run(png_structp png, png_infop info, png_job *job, uint64_t max, gg_image *out,
                   int *orient, char *err, size_t errlen) {
  if (setjmp(png_jmpbuf(png)))
    return gg_errf(err, errlen, GG_EPARSE,
                 job->in_pixels ? "PNG data is corrupt or truncated: %s" : "malformed PNG: %s",
                 job->msg);
  png_set_read_fn(png, job, png_read_mem);
  /* The size limit is ours (check_dims, with a clear message), not libpng's. */
  png_set_user_limits(png, 0x7fffffffu, 0x7fffffffu);
  png_set_chunk_malloc_max(png, (png_alloc_size_t)8 << 20);
  png_read_info(png, info);
  png_uint_32 w = 0, h = 0;
  int depth = 0, ctype = 0;
  png_get_IHDR(png, info, &w, &h, &depth, &ctype, NULL, NULL, NULL);
  int rc = check_dims(w, h, max, "PNG", err, errlen);
  if (rc) return rc;
  /* Explicit transforms only: no png_set_gamma or alpha mode, so the
   * stored values come out as stored (gAMA, cHRM, sRGB and iCCP ignored,
   * as TensorFlow's DecodePng does). tRNS is not expanded beyond what
   * palette expansion does; alpha is dropped below either way. */
  if (ctype == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
  if (!(ctype & PNG_COLOR_MASK_COLOR) && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
  /* v >> 8, TensorFlow's choice: never more than 1 from exact scaling, and
   * the same bytes as tf.node.decodePng. */
  if (depth == 16) png_set_strip_16(png);
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
  int ch = png_get_channels(png, info);
  if (ch < 1 || ch > 4 || png_get_rowbytes(png, info) != (size_t)w * (size_t)ch ||
      png_get_bit_depth(png, info) != 8)
    return gg_errf(err, errlen, GG_EPARSE, "PNG layout not handled: %d channels of %d bits", ch,
                 png_get_bit_depth(png, info));
  size_t n = (size_t)w * (size_t)h;
  job->px = malloc(n * (size_t)(ch > 3 ? ch : 3));
  job->rows = malloc((size_t)h * sizeof *job->rows);
  if (!job->px || !job->rows)
    return gg_errf(err, errlen, GG_ENOMEM, "no memory for a %ux%u image", (unsigned)w, (unsigned)h);
  for (size_t y = 0; y < h; y++)
    job->rows[y] = job->px + y * (size_t)w * (size_t)ch;
  job->in_pixels = 1;
  png_read_image(png, job->rows);
  png_read_end(png, info);
  *orient = 1;
#ifdef PNG_eXIf_SUPPORTED
  png_uint_32 exif_len = 0;
  png_bytep exif = NULL;
  if (png_get_eXIf_1(png, info, &exif_len, &exif) && exif)
    *orient = gg__exif_orientation(exif, exif_len);
#endif
  channels_to_rgb(job->px, n, ch);
  out->rgb = ch > 3 ? realloc(job->px, n * 3) : job->px;
  if (!out->rgb) out->rgb = job->px; /* a failed shrink keeps the block */
  job->px = NULL;
  out->width = (int)w, out->height = (int)h;
  return 0;
}
#endif

static int decode_png(const uint8_t *d, size_t len, uint64_t max, gg_image *out, int *orient,
                      char *err, size_t errlen) {
#ifdef GG_HAVE_PNG
  png_job job = {.d = d, .len = len};
  png_structp png =
      png_create_read_struct(PNG_LIBPNG_VER_STRING, &job, png_on_error, png_on_warning);
  png_infop info = png ? png_create_info_struct(png) : NULL;
  int rc = info ? png_run(png, info, &job, max, out, orient, err, errlen)
                : gg_errf(err, errlen, GG_ENOMEM, "cannot create a PNG decoder");
  png_destroy_read_struct(png ? &png : NULL, info ? &info : NULL, NULL);
  free(job.rows);
  free(job.px);
  return rc;
#else
  (void)d, (void)len, (void)max, (void)out, (void)orient;
  return gg_errf(err, errlen, GG_ENOTIMPL, "PNG support is not built in (install libpng-dev and rebuild)");
#endif
}

int gg_image_decode(const void *data, size_t len, uint64_t max_pixels, gg_image *out, char *err,
                    size_t errlen) {
  if (!out) return GG_EINVAL;
  memset(out, 0, sizeof *out);
  if (!data) return gg_errf(err, errlen, GG_EINVAL, "no image data");
  const uint8_t *d = data;
  if (!max_pixels) max_pixels = GG_IMAGE_MAX_PIXELS;
  static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a};
  int orient = 1, rc;
  if (len >= 3 && d[0] == 0xff && d[1] == 0xd8 && d[2] == 0xff)
    rc = decode_jpeg(d, len, max_pixels, out, &orient, err, errlen);
  else if (len >= 8 && !memcmp(d, sig, 8))
    rc = decode_png(d, len, max_pixels, out, &orient, err, errlen);
  else
    return gg_errf(err, errlen, GG_EPARSE, "not a JPEG or PNG image (%zu bytes, unknown signature)",
                 len);
  if (rc) return rc;
  /* Phones store the sensor's rows and an orientation tag; a model must see
   * the photo the way a viewer shows it. */
  if (gg__image_orient(out, orient)) {
    rc = gg_errf(err, errlen, GG_ENOMEM, "no memory to rotate a %dx%d image", out->width,
               out->height);
    gg_image_free(out);
  }
  return rc;
}

int gg_image_load(const char *path, gg_image *out, char *err, size_t errlen) {
  if (!path || !out) return GG_EINVAL;
  memset(out, 0, sizeof *out);
  FILE *f = fopen(path, "rb");
  if (!f) return gg_errf(err, errlen, GG_EIO, "%s: cannot open: %s", path, strerror(errno));
  struct stat st;
  if (fstat(fileno(f), &st) || !S_ISREG(st.st_mode)) {
    fclose(f);
    return gg_errf(err, errlen, GG_EIO, "%s: not a regular file", path);
  }
  if ((uint64_t)st.st_size > GG_IMAGE_MAX_BYTES) {
    fclose(f);
    return gg_errf(err, errlen, GG_ETOO_LARGE, "%s: %lld bytes, over the %zu-byte limit", path,
                 (long long)st.st_size, GG_IMAGE_MAX_BYTES);
  }
  size_t n = (size_t)st.st_size;
  uint8_t *b = malloc(n ? n : 1);
  if (!b) {
    fclose(f);
    return GG_ENOMEM;
  }
  size_t got = n ? fread(b, 1, n, f) : 0;
  fclose(f);
  if (got != n) {
    free(b);
    return gg_errf(err, errlen, GG_EIO, "%s: short read", path);
  }
  char msg[256];
  int rc = gg_image_decode(b, n, 0, out, msg, sizeof msg);
  free(b);
  if (rc) return gg_errf(err, errlen, rc, "%s: %s", path, msg);
  return 0;
}

/* ------------------------------------------------------------ preprocess */

typedef struct known {
  const char *prefix;
  gg_preprocess p;
} known;

static const known k_known[] = {
    {"blazeface", {.width = 256, .height = 256, .scale = 1.0f / 127.5f, .offset = -1.0f, .nchw = 0, .why = "human src/face/blazeface.ts: resizeBilinear to 256x256, x/127.5 - 1"}},
    {"mobilefacenet", {.width = 112, .height = 112, .scale = 1.0f / 255.0f, .offset = 0.0f, .nchw = 0, .why = "human src/face/mobilefacenet.ts: face crop in [0,1] resized to 112x112"}},
    {"faceres", {.width = 224, .height = 224, .scale = 1.0f, .offset = 0.0f, .nchw = 0, .why = "human src/face/faceres.ts: crop in [0,1] resized to 224x224, then * 255"}},
    {"nanodet", {.width = 416, .height = 416, .scale = 1.0f / 255.0f, .offset = 0.0f, .nchw = 1, .why = "human src/object/nanodet.ts: resizeBilinear to 416x416, /255, transpose to NCHW"}},
    {"antispoof", {.width = 128, .height = 128, .scale = 1.0f / 255.0f, .offset = 0.0f, .nchw = 0, .why = "human src/face/antispoof.ts: face crop in [0,1] resized to 128x128"}},
    {"liveness", {.width = 32, .height = 32, .scale = 1.0f / 255.0f, .offset = 0.0f, .nchw = 0, .why = "human src/face/liveness.ts: face crop in [0,1] resized to 32x32"}},
};

int gg_preprocess_for_model(const char *model_path, gg_preprocess *out) {
  const char *base = model_path ? strrchr(model_path, '/') : NULL;
  base = base ? base + 1 : model_path ? model_path : "";
  for (size_t i = 0; i < sizeof k_known / sizeof k_known[0]; i++)
    if (!strncmp(base, k_known[i].prefix, strlen(k_known[i].prefix))) {
      *out = k_known[i].p;
      return 1;
    }
  gg_preprocess d = {.width = 0, .height = 0, .scale = 1.0f / 255.0f, .offset = 0.0f, .nchw = 0, .why = "default: pixel / 255, NHWC"};
  *out = d;
  return 0;
}

int gg_image_to_tensor(const gg_image *img, const gg_preprocess *p, float *dst) {
  if (!img || !img->rgb || !p || !dst || img->width < 1 || img->height < 1 || p->width < 1 ||
      p->height < 1 || p->width > 16384 || p->height > 16384)
    return GG_EINVAL;
  int W = p->width, H = p->height, iw = img->width, ih = img->height;
  /* TF.js resizeBilinear, align_corners = false, half_pixel_centers = false. */
  float sy = (float)ih / (float)H, sx = (float)iw / (float)W;
  size_t plane = (size_t)W * (size_t)H;
  for (int y = 0; y < H; y++) {
    float fy = (float)y * sy;
    int y0 = (int)floorf(fy), y1 = y0 + 1 < ih ? y0 + 1 : ih - 1;
    if (y0 > ih - 1) y0 = ih - 1;
    float ly = fy - (float)y0;
    const uint8_t *r0 = img->rgb + (size_t)y0 * (size_t)iw * 3, *r1 = img->rgb + (size_t)y1 * (size_t)iw * 3;
    for (int x = 0; x < W; x++) {
      float fx = (float)x * sx;
      int x0 = (int)floorf(fx), x1 = x0 + 1 < iw ? x0 + 1 : iw - 1;
      if (x0 > iw - 1) x0 = iw - 1;
      float lx = fx - (float)x0;
      for (int c = 0; c < 3; c++) {
        int sc = p->bgr ? 2 - c : c; /* the image channel output channel c takes */
        float tl = r0[x0 * 3 + sc], tr = r0[x1 * 3 + sc], bl = r1[x0 * 3 + sc],
              br = r1[x1 * 3 + sc];
        float top = tl + (tr - tl) * lx, bot = bl + (br - bl) * lx;
        float v = p->per_channel ? (top + (bot - top) * ly) * p->ch_scale[c] + p->ch_offset[c]
                                 : (top + (bot - top) * ly) * p->scale + p->offset;
        if (p->nchw) dst[(size_t)c * plane + (size_t)y * (size_t)W + (size_t)x] = v;
        else dst[((size_t)y * (size_t)W + (size_t)x) * 3 + (size_t)c] = v;
      }
    }
  }
  return 0;
}

/* ---------------------------------------------------- mean / std, sidecar */

int gg_preprocess_set_mean_std(gg_preprocess *pp, const float mean[3], const float std[3]) {
  if (!pp || !mean || !std) return GG_EINVAL;
  for (int c = 0; c < 3; c++)
    if (!isfinite(mean[c]) || !isfinite(std[c]) || std[c] == 0.0f) return GG_EINVAL;
  for (int c = 0; c < 3; c++) {
    pp->ch_scale[c] = 1.0f / std[c];
    pp->ch_offset[c] = -mean[c] / std[c];
  }
  pp->per_channel = !(mean[0] == mean[1] && mean[1] == mean[2] && std[0] == std[1] &&
                      std[1] == std[2]);
  pp->scale = pp->ch_scale[0];
  pp->offset = pp->ch_offset[0];
  return 0;
}

int gg_preprocess_parse3(const char *s, float out[3]) {
  if (!s || !out) return GG_EINVAL;
  float v[3];
  int n = 0;
  const char *p = s;
  while (n < 3) {
    char *end = NULL;
    errno = 0;
    double d = strtod(p, &end);
    if (end == p || errno || !isfinite(d) || fabs(d) > 1e30) return GG_EINVAL;
    v[n++] = (float)d;
    p = end;
    if (*p != ',') break;
    p++;
  }
  if (*p || (n != 1 && n != 3)) return GG_EINVAL;
  for (int c = 0; c < 3; c++) out[c] = v[n == 1 ? 0 : c];
  return 0;
}

/* A number or an array of three numbers into out. */
static int json_three(const json_t *j, float out[3]) {
  if (json_is_number(j)) {
    double d = json_number_value(j);
    if (!isfinite(d) || fabs(d) > 1e30) return -1;
    out[0] = out[1] = out[2] = (float)d;
    return 0;
  }
  if (!json_is_array(j) || json_array_size(j) != 3) return -1;
  for (int c = 0; c < 3; c++) {
    const json_t *e = json_array_get(j, (size_t)c);
    double d = json_number_value(e);
    if (!json_is_number(e) || !isfinite(d) || fabs(d) > 1e30) return -1;
    out[c] = (float)d;
  }
  return 0;
}

#define SIDECAR_MAX (64 * 1024)

int gg_preprocess_sidecar(const char *model_path, gg_preprocess *pp, int *found, char *err,
                          size_t errlen) {
  char tmp[8];
  if (!err) err = tmp, errlen = sizeof tmp;
  if (found) *found = 0;
  if (!model_path || !pp) return GG_EINVAL;
  char path[4096];
  if ((size_t)snprintf(path, sizeof path, "%s.json", model_path) >= sizeof path)
    return gg_errf(err, errlen, GG_EINVAL, "%s: path too long", model_path);
  struct stat st;
  if (stat(path, &st) != 0) return 0;
  if (found) *found = 1;
  if (!S_ISREG(st.st_mode) || st.st_size > SIDECAR_MAX)
    return gg_errf(err, errlen, GG_EPARSE, "%s: not a regular file of at most %d bytes", path,
                   SIDECAR_MAX);
  json_error_t je;
  json_t *j = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
  if (!j)
    return gg_errf(err, errlen, GG_EPARSE, "%s: line %d: %s", path, je.line, je.text);
  gg_preprocess p = *pp;
  int rc = 0, have_ms = 0;
  float mean[3] = {0, 0, 0}, std[3] = {1, 1, 1};
  const char *key;
  json_t *v;
  if (!json_is_object(j)) {
    rc = gg_errf(err, errlen, GG_EPARSE, "%s: not a JSON object", path);
    goto out;
  }
  json_object_foreach(j, key, v) {
    if (!strcmp(key, "mean") || !strcmp(key, "std")) {
      if (json_three(v, !strcmp(key, "mean") ? mean : std)) {
        rc = gg_errf(err, errlen, GG_EPARSE,
                     "%s: \"%s\" must be a number or an array of 3 numbers", path, key);
        goto out;
      }
      have_ms = 1;
    } else if (!strcmp(key, "channels")) {
      const char *c = json_string_value(v);
      if (!c || (strcmp(c, "RGB") && strcmp(c, "BGR"))) {
        rc = gg_errf(err, errlen, GG_EPARSE, "%s: \"channels\" must be \"RGB\" or \"BGR\"",
                     path);
        goto out;
      }
      p.bgr = !strcmp(c, "BGR");
    } else if (!strcmp(key, "width") || !strcmp(key, "height")) {
      json_int_t n = json_integer_value(v);
      if (!json_is_integer(v) || n < 1 || n > 16384) {
        rc = gg_errf(err, errlen, GG_EPARSE, "%s: \"%s\" must be an integer from 1 to 16384",
                     path, key);
        goto out;
      }
      if (!strcmp(key, "width"))
        p.width = (int)n;
      else
        p.height = (int)n;
    } else {
      rc = gg_errf(err, errlen, GG_EPARSE,
                   "%s: unknown key \"%.64s\" (known: mean, std, channels, width, height)", path,
                   key);
      goto out;
    }
  }
  if (have_ms && gg_preprocess_set_mean_std(&p, mean, std)) {
    rc = gg_errf(err, errlen, GG_EPARSE, "%s: \"std\" must not be 0", path);
    goto out;
  }
  p.why = "the model's sidecar file (MODEL.json next to the model)";
  *pp = p;
out:
  json_decref(j);
  return rc;
}

void gg_preprocess_describe(const gg_preprocess *pp, char *out, size_t len) {
  if (!pp || !out || !len) return;
  if (pp->per_channel)
    snprintf(out, len, "(pixel - [%g,%g,%g]) / [%g,%g,%g]%s",
             (double)(-pp->ch_offset[0] / pp->ch_scale[0]),
             (double)(-pp->ch_offset[1] / pp->ch_scale[1]),
             (double)(-pp->ch_offset[2] / pp->ch_scale[2]), (double)(1.0f / pp->ch_scale[0]),
             (double)(1.0f / pp->ch_scale[1]), (double)(1.0f / pp->ch_scale[2]),
             pp->bgr ? ", BGR" : "");
  else
    snprintf(out, len, "pixel * %g + %g%s", (double)pp->scale, (double)pp->offset,
             pp->bgr ? ", BGR" : "");
}
