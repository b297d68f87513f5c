/* Image decoding (JPEG via libturbojpeg, PNG via libpng's simplified API)
 * with size limits checked from the header before any pixel memory is
 * taken, and the per-model resize + normalize. */
#include "gpuguard/image.h"
#include "gpuguard/error.h"

#ifdef GG_HAVE_TURBOJPEG
#include <turbojpeg.h>
#endif
#ifdef GG_HAVE_PNG
#include <png.h>
#endif

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

__attribute__((format(printf, 4, 5))) static int efail(char *err, size_t errlen, int code,
                                                       const char *fmt, ...) {
  if (err && errlen) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
  }
  return code;
}

void gg_image_free(gg_image *img) {
  if (!img) return;
  free(img->rgb);
  img->rgb = NULL;
  img->width = img->height = 0;
}

static int check_dims(uint64_t w, uint64_t h, uint64_t max, const char *kind, char *err,
                      size_t errlen) {
  if (w == 0 || h == 0)
    return efail(err, errlen, GG_EPARSE, "%s image has an empty size (%llux%llu)", kind,
                 (unsigned long long)w, (unsigned long long)h);
  if (w > 65535 || h > 65535 || w * h > max)
    return efail(err, errlen, GG_ETOO_LARGE,
                 "%s image is %llux%llu = %.1f MP, over the limit of %.1f MP; downscale it first",
                 kind, (unsigned long long)w, (unsigned long long)h, (double)(w * h) / 1e6,
                 (double)max / 1e6);
  return 0;
}

static int decode_jpeg(const uint8_t *d, size_t len, uint64_t max, gg_image *out, char *err,
                       size_t errlen) {
#ifdef GG_HAVE_TURBOJPEG
  if (len > (size_t)0xffffffffu) return efail(err, errlen, GG_ETOO_LARGE, "JPEG data too large");
  tjhandle h = tjInitDecompress();
  if (!h) return efail(err, errlen, GG_ENOMEM, "cannot create a JPEG decoder");
  int w = 0, ht = 0, sub = 0, cs = 0;
  if (tjDecompressHeader3(h, d, (unsigned long)len, &w, &ht, &sub, &cs)) {
    int rc = efail(err, errlen, GG_EPARSE, "malformed JPEG header: %s", tjGetErrorStr2(h));
    tjDestroy(h);
    return rc;
  }
  int rc = check_dims((uint64_t)w, (uint64_t)ht, max, "JPEG", err, errlen);
  if (rc) {
    tjDestroy(h);
    return rc;
  }
  uint8_t *px = malloc((size_t)w * (size_t)ht * 3);
  if (!px) {
    tjDestroy(h);
    return efail(err, errlen, GG_ENOMEM, "no memory for a %dx%d image", w, ht);
  }
  /* Warnings (a truncated file decodes as grey) are errors here. */
  if (tjDecompress2(h, d, (unsigned long)len, px, w, 0, ht, TJPF_RGB, TJFLAG_STOPONWARNING)) {
    rc = efail(err, errlen, GG_EPARSE, "JPEG data is corrupt or truncated: %s", tjGetErrorStr2(h));
    free(px);
    tjDestroy(h);
    return rc;
  }
  tjDestroy(h);
  out->width = w, out->height = ht, out->rgb = px;
  return 0;
#else
  (void)d, (void)len, (void)max, (void)out;
  return efail(err, errlen, GG_ENOTIMPL, "JPEG support is not built in (install libturbojpeg0-dev and rebuild)");
#endif
}

static int decode_png(const uint8_t *d, size_t len, uint64_t max, gg_image *out, char *err,
                      size_t errlen) {
#ifdef GG_HAVE_PNG
  png_image img;
  memset(&img, 0, sizeof img);
  img.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_memory(&img, d, len)) {
    int rc = efail(err, errlen, GG_EPARSE, "malformed PNG: %s", img.message);
    png_image_free(&img);
    return rc;
  }
  int rc = check_dims(img.width, img.height, max, "PNG", err, errlen);
  if (rc) {
    png_image_free(&img);
    return rc;
  }
  img.format = PNG_FORMAT_RGB;
  size_t n = PNG_IMAGE_SIZE(img);
  uint8_t *px = malloc(n);
  if (!px) {
    png_image_free(&img);
    return efail(err, errlen, GG_ENOMEM, "no memory for a %ux%u image", img.width, img.height);
  }
  if (!png_image_finish_read(&img, NULL, px, 0, NULL)) {
    rc = efail(err, errlen, GG_EPARSE, "PNG data is corrupt or truncated: %s", img.message);
    png_image_free(&img);
    free(px);
    return rc;
  }
  out->width = (int)img.width, out->height = (int)img.height, out->rgb = px;
  png_image_free(&img);
  return 0;
#else
  (void)d, (void)len, (void)max, (void)out;
  return efail(err, errlen, GG_ENOTIMPL, "PNG support is not built in (install libpng-dev and rebuild)");
#endif
}

int gg_image_decode(const void *data, size_t len, uint64_t max_pixels, gg_image *out, char *err,
                    size_t errlen) {
  if (!out) return GG_EINVAL;
  memset(out, 0, sizeof *out);
  if (!data) return efail(err, errlen, GG_EINVAL, "no image data");
  const uint8_t *d = data;
  if (!max_pixels) max_pixels = GG_IMAGE_MAX_PIXELS;
  if (len >= 3 && d[0] == 0xff && d[1] == 0xd8 && d[2] == 0xff)
    return decode_jpeg(d, len, max_pixels, out, err, errlen);
  static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a};
  if (len >= 8 && !memcmp(d, sig, 8)) return decode_png(d, len, max_pixels, out, err, errlen);
  return efail(err, errlen, GG_EPARSE, "not a JPEG or PNG image (%zu bytes, unknown signature)", len);
}

int gg_image_load(const char *path, gg_image *out, char *err, size_t errlen) {
  if (!path || !out) return GG_EINVAL;
  memset(out, 0, sizeof *out);
  FILE *f = fopen(path, "rb");
  if (!f) return efail(err, errlen, GG_EIO, "%s: cannot open: %s", path, strerror(errno));
  struct stat st;
  if (fstat(fileno(f), &st) || !S_ISREG(st.st_mode)) {
    fclose(f);
    return efail(err, errlen, GG_EIO, "%s: not a regular file", path);
  }
  if ((uint64_t)st.st_size > GG_IMAGE_MAX_BYTES) {
    fclose(f);
    return efail(err, errlen, GG_ETOO_LARGE, "%s: %lld bytes, over the %zu-byte limit", path,
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
    return efail(err, errlen, GG_EIO, "%s: short read", path);
  }
  char msg[256];
  int rc = gg_image_decode(b, n, 0, out, msg, sizeof msg);
  free(b);
  if (rc) return efail(err, errlen, rc, "%s: %s", path, msg);
  return 0;
}

/* ------------------------------------------------------------ preprocess */

typedef struct known {
  const char *prefix;
  gg_preprocess p;
} known;

static const known k_known[] = {
    {"blazeface", {256, 256, 1.0f / 127.5f, -1.0f, 0,
                   "human src/face/blazeface.ts: resizeBilinear to 256x256, x/127.5 - 1"}},
    {"mobilefacenet", {112, 112, 1.0f / 255.0f, 0.0f, 0,
                       "human src/face/mobilefacenet.ts: face crop in [0,1] resized to 112x112"}},
    {"faceres", {224, 224, 1.0f, 0.0f, 0,
                 "human src/face/faceres.ts: crop in [0,1] resized to 224x224, then * 255"}},
    {"nanodet", {416, 416, 1.0f / 255.0f, 0.0f, 1,
                 "human src/object/nanodet.ts: resizeBilinear to 416x416, /255, transpose to NCHW"}},
};

int gg_preprocess_for_model(const char *model_path, gg_preprocess *out) {
  const char *base = model_path ? strrchr(model_path, '/') : NULL;
  base = base ? base + 1 : model_path ? model_path : "";
  for (size_t i = 0; i < sizeof k_known / sizeof k_known[0]; i++)
    if (!strncmp(base, k_known[i].prefix, strlen(k_known[i].prefix))) {
      *out = k_known[i].p;
      return 1;
    }
  gg_preprocess d = {0, 0, 1.0f / 255.0f, 0.0f, 0, "default: pixel / 255, NHWC"};
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
        float tl = r0[x0 * 3 + c], tr = r0[x1 * 3 + c], bl = r1[x0 * 3 + c], br = r1[x1 * 3 + c];
        float top = tl + (tr - tl) * lx, bot = bl + (br - bl) * lx;
        float v = (top + (bot - top) * ly) * p->scale + p->offset;
        if (p->nchw) dst[(size_t)c * plane + (size_t)y * (size_t)W + (size_t)x] = v;
        else dst[((size_t)y * (size_t)W + (size_t)x) * 3 + (size_t)c] = v;
      }
    }
  }
  return 0;
}
