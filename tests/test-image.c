/* Image input: PNG/JPEG round trips through the real encoders, malformed,
 * truncated and oversized images, and the per-model resize + normalize. */
#include "gpuguard/error.h"
#include "gpuguard/image.h"
#include "gpuguard/log.h"
#include "test.h"

#include <stdint.h>
#include <unistd.h>

#if __has_include(<png.h>) && __has_include(<turbojpeg.h>)
#include <png.h>
#include <setjmp.h>
#include <turbojpeg.h>
#define HAVE_CODECS 1
#include "vision/vision-impl.h"
#endif
#ifdef GG_TEST_HAVE_LIBJPEG
#include <jpeglib.h>
#endif

#ifdef HAVE_CODECS
static uint8_t g_px[5 * 3 * 3];

static void fill_px(void) {
  for (int i = 0; i < 45; i++)
    g_px[i] = (uint8_t)(i * 37 + 11);
}

static uint8_t *make_png(size_t *len) {
  png_image img;
  memset(&img, 0, sizeof img);
  img.version = PNG_IMAGE_VERSION;
  img.width = 5, img.height = 3, img.format = PNG_FORMAT_RGB;
  png_alloc_size_t n = 0;
  if (!png_image_write_to_memory(&img, NULL, &n, 0, g_px, 0, NULL)) return NULL;
  uint8_t *b = malloc(n);
  if (!png_image_write_to_memory(&img, b, &n, 0, g_px, 0, NULL)) {
    free(b);
    return NULL;
  }
  *len = n;
  return b;
}

/* px (w*h RGB) as a quality-100, 4:4:4 JPEG in a malloc'd buffer. */
static uint8_t *encode_jpeg(const uint8_t *px, int w, int h, size_t *len) {
  tjhandle t = tjInitCompress();
  unsigned char *out = NULL;
  unsigned long n = 0;
  int rc = tjCompress2(t, px, w, 0, h, TJPF_RGB, &out, &n, TJSAMP_444, 100, 0);
  tjDestroy(t);
  if (rc) return NULL;
  uint8_t *b = malloc(n);
  memcpy(b, out, n);
  tjFree(out);
  *len = n;
  return b;
}

static uint8_t *make_jpeg(int w, int h, size_t *len) {
  uint8_t *px = malloc((size_t)w * (size_t)h * 3);
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      px[(y * w + x) * 3 + 0] = (uint8_t)(x * 255 / (w - 1));
      px[(y * w + x) * 3 + 1] = (uint8_t)(y * 255 / (h - 1));
      px[(y * w + x) * 3 + 2] = 128;
    }
  uint8_t *b = encode_jpeg(px, w, h, len);
  free(px);
  return b;
}

static uint32_t crc32_of(const uint8_t *d, size_t n) {
  uint32_t c = 0xffffffffu;
  for (size_t i = 0; i < n; i++) {
    c ^= d[i];
    for (int k = 0; k < 8; k++)
      c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1)));
  }
  return ~c;
}

static void be32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

static void test_png_roundtrip(void) {
  fill_px();
  size_t n = 0;
  uint8_t *png = make_png(&n);
  ASSERT_TRUE(png != NULL);
  gg_image img;
  char err[256];
  ASSERT_OK(gg_image_decode(png, n, 0, &img, err, sizeof err));
  ASSERT_EQ(img.width, 5);
  ASSERT_EQ(img.height, 3);
  ASSERT_TRUE(memcmp(img.rgb, g_px, sizeof g_px) == 0);
  gg_image_free(&img);
  ASSERT_TRUE(img.rgb == NULL);
  /* Limits come from the header, before decoding. */
  ASSERT_EQ(gg_image_decode(png, n, 10, &img, err, sizeof err), GG_ETOO_LARGE);
  ASSERT_CONTAINS(err, "5x3");
  /* Truncated at several points. */
  size_t cuts[] = {8, 20, n / 2, n - 13};
  for (int i = 0; i < 4; i++) {
    int rc = gg_image_decode(png, cuts[i], 0, &img, err, sizeof err);
    ASSERT_EQ(rc, GG_EPARSE);
    ASSERT_TRUE(img.rgb == NULL);
  }
  /* A corrupt IDAT byte: an error or an image, never a crash. */
  png[n / 2] ^= 0x5a;
  if (gg_image_decode(png, n, 0, &img, err, sizeof err) == 0) gg_image_free(&img);
  free(png);
}

static void test_png_huge_header(void) {
  /* Signature + an IHDR claiming 50000 x 50000 RGB with a valid CRC. */
  uint8_t b[8 + 25 + 12] = {0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a};
  be32(b + 8, 13);
  memcpy(b + 12, "IHDR", 4);
  be32(b + 16, 50000);
  be32(b + 20, 50000);
  b[24] = 8, b[25] = 2, b[26] = 0, b[27] = 0, b[28] = 0;
  be32(b + 29, crc32_of(b + 12, 17));
  /* An empty IDAT so the reader reaches the image data. */
  be32(b + 33, 0);
  memcpy(b + 37, "IDAT", 4);
  be32(b + 41, crc32_of(b + 37, 4));
  gg_image img;
  char err[256];
  int rc = gg_image_decode(b, sizeof b, 0, &img, err, sizeof err);
  if (rc != GG_ETOO_LARGE) GG_T_FAIL("got %s: %s", gg_err_name(rc), err);
  ASSERT_CONTAINS(err, "50000x50000");
}

static void test_jpeg_roundtrip(void) {
  size_t n = 0;
  uint8_t *j = make_jpeg(16, 8, &n);
  ASSERT_TRUE(j != NULL);
  gg_image img;
  char err[256];
  ASSERT_OK(gg_image_decode(j, n, 0, &img, err, sizeof err));
  ASSERT_EQ(img.width, 16);
  ASSERT_EQ(img.height, 8);
  int maxd = 0;
  for (int y = 0; y < 8; y++)
    for (int x = 0; x < 16; x++) {
      int want[3] = {x * 255 / 15, y * 255 / 7, 128};
      for (int c = 0; c < 3; c++) {
        int d = abs(img.rgb[(y * 16 + x) * 3 + c] - want[c]);
        if (d > maxd) maxd = d;
      }
    }
  ASSERT_LE(maxd, 6); /* quality 100, 4:4:4 */
  gg_image_free(&img);
  ASSERT_EQ(gg_image_decode(j, n, 100, &img, err, sizeof err), GG_ETOO_LARGE);
  ASSERT_EQ(gg_image_decode(j, n / 2, 0, &img, err, sizeof err), GG_EPARSE);
  ASSERT_CONTAINS(err, "JPEG");
  ASSERT_EQ(gg_image_decode(j, 40, 0, &img, err, sizeof err), GG_EPARSE);
  free(j);
}

/* ---------------------------------------------- generated PNGs and JPEGs */

typedef struct membuf {
  uint8_t *d;
  size_t n, cap;
} membuf;

static void membuf_put(membuf *m, const void *p, size_t n) {
  if (m->n + n > m->cap) {
    m->cap = (m->n + n) * 2;
    m->d = realloc(m->d, m->cap);
  }
  memcpy(m->d + m->n, p, n);
  m->n += n;
}

static void png_mem_write(png_structp png, png_bytep p, size_t n) {
  membuf_put(png_get_io_ptr(png), p, n);
}

static void png_mem_flush(png_structp png) {
  (void)png;
}

/* What png_build writes: rows are packed, (w * channels * depth + 7) / 8
 * bytes each, 16-bit samples big-endian as in the file. */
typedef struct png_spec {
  int w, h, ctype, depth, interlace;
  const uint8_t *rows;
  const png_color *plte;
  int n_plte;
  const uint8_t *trns; /* palette alpha; n_trns entries */
  int n_trns;
  double gamma; /* 0: no gAMA chunk */
  const uint8_t *exif;
  size_t exif_len;
} png_spec;

static int png_channels(int ctype) {
  switch (ctype) {
  case PNG_COLOR_TYPE_GRAY_ALPHA: return 2;
  case PNG_COLOR_TYPE_RGB: return 3;
  case PNG_COLOR_TYPE_RGB_ALPHA: return 4;
  default: return 1;
  }
}

/* Writes a PNG with libpng's classic API, so the test controls exactly
 * which chunks and sample layout the file has. */
static uint8_t *png_build(const png_spec *s, size_t *len) {
  membuf m = {0};
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
  png_infop info = png_create_info_struct(png);
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    free(m.d);
    return NULL;
  }
  png_set_write_fn(png, &m, png_mem_write, png_mem_flush);
  png_set_IHDR(png, info, (png_uint_32)s->w, (png_uint_32)s->h, s->depth, s->ctype,
               s->interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  if (s->plte) png_set_PLTE(png, info, s->plte, s->n_plte);
  if (s->trns) png_set_tRNS(png, info, s->trns, s->n_trns, NULL);
  if (s->gamma > 0) png_set_gAMA(png, info, s->gamma);
  if (s->exif) png_set_eXIf_1(png, info, (png_uint_32)s->exif_len, (png_bytep)s->exif);
  size_t stride = ((size_t)s->w * (size_t)png_channels(s->ctype) * (size_t)s->depth + 7) / 8;
  png_bytep *rows = malloc((size_t)s->h * sizeof *rows);
  for (int y = 0; y < s->h; y++)
    rows[y] = (png_bytep)s->rows + (size_t)y * stride;
  png_set_rows(png, info, rows);
  png_write_png(png, info, PNG_TRANSFORM_IDENTITY, NULL);
  png_destroy_write_struct(&png, &info);
  free(rows);
  *len = m.n;
  return m.d;
}

/* gg_image_decode with no limit that prints the error message; for
 * ASSERT_OK. The caller frees img. */
static int decode(const uint8_t *d, size_t n, gg_image *img) {
  char err[256] = "";
  int rc = gg_image_decode(d, n, 0, img, err, sizeof err);
  if (rc) fprintf(stderr, "  decode: %s\n", err);
  return rc;
}

static uint32_t g_rng = 12345;
static uint8_t rnd8(void) {
  g_rng = g_rng * 1103515245u + 12345u;
  return (uint8_t)(g_rng >> 16);
}

/* Leaves a freed block of n bytes full of a given pattern, which the next
 * malloc of that size usually gets back: a decoder that blends onto its
 * uninitialised output then gives a different image each time. */
static void dirty_heap(size_t n, uint8_t pattern) {
  uint8_t *p = malloc(n);
  memset(p, pattern, n);
  free(p);
}

/* Writes s as a PNG and decodes it over a dirtied heap; the caller frees
 * img. Returns the decode's result, or -1 when libpng could not write. */
static int png_roundtrip(const png_spec *s, gg_image *img) {
  size_t n = 0;
  uint8_t *png = png_build(s, &n);
  if (!png) return -1;
  dirty_heap((size_t)s->w * (size_t)s->h * 3, 0xa5);
  int rc = decode(png, n, img);
  free(png);
  return rc;
}

/* RGBA with random colours and random transparency (fully transparent,
 * half, opaque): alpha is dropped, so the pixels are the stored RGB, the
 * same on every decode whatever the heap held before. */
static void test_png_rgba_deterministic(void) {
  enum { W = 40, H = 30 };
  static uint8_t rgba[W * H * 4];
  for (size_t i = 0; i < sizeof rgba; i++)
    rgba[i] = rnd8();
  for (int i = 0; i < W * H; i += 3)
    rgba[i * 4 + 3] = 0;
  png_spec s = {.w = W, .h = H, .ctype = PNG_COLOR_TYPE_RGB_ALPHA, .depth = 8, .rows = rgba};
  size_t n = 0;
  uint8_t *png = png_build(&s, &n);
  ASSERT_TRUE(png != NULL);
  gg_image first = {0};
  for (int k = 0; k < 8; k++) {
    dirty_heap(W * H * 3, (uint8_t)(k * 37 + 1));
    gg_image img;
    ASSERT_OK(decode(png, n, &img));
    ASSERT_EQ(img.width, W);
    ASSERT_EQ(img.height, H);
    if (k == 0) {
      first = img;
      continue;
    }
    int same = !memcmp(img.rgb, first.rgb, W * H * 3);
    gg_image_free(&img);
    if (!same) GG_T_FAIL("decode %d of the same PNG differs from decode 0", k);
  }
  for (int i = 0; i < W * H; i++)
    for (int c = 0; c < 3; c++)
      if (first.rgb[i * 3 + c] != rgba[i * 4 + c])
        GG_T_FAIL("pixel %d channel %d is %d, stored %d (alpha %d)", i, c, first.rgb[i * 3 + c],
                  rgba[i * 4 + c], rgba[i * 4 + 3]);
  gg_image_free(&first);
  free(png);
}

/* Every pixel of img equals the gray value g[i] on all three channels. */
static void expect_gray(const gg_image *img, const uint8_t *g, int step) {
  for (int i = 0; i < img->width * img->height; i++)
    for (int c = 0; c < 3; c++)
      if (img->rgb[i * 3 + c] != g[i * step])
        GG_T_FAIL("pixel %d channel %d is %d, want %d", i, c, img->rgb[i * 3 + c], g[i * step]);
}

static void test_png_gray_alpha(void) {
  enum { W = 9, H = 7 };
  uint8_t ga[W * H * 2];
  for (int i = 0; i < W * H; i++)
    ga[i * 2] = (uint8_t)(i * 4), ga[i * 2 + 1] = (uint8_t)(i % 3 ? i * 9 : 0);
  png_spec s = {.w = W, .h = H, .ctype = PNG_COLOR_TYPE_GRAY_ALPHA, .depth = 8, .rows = ga};
  gg_image img;
  ASSERT_OK(png_roundtrip(&s, &img));
  expect_gray(&img, ga, 2);
  gg_image_free(&img);
}

static void test_png_palette_trns(void) {
  enum { W = 8, H = 4 };
  png_color plte[4] = {{200, 10, 20}, {30, 220, 40}, {50, 60, 230}, {255, 255, 0}};
  uint8_t trns[3] = {0, 128, 255}; /* entry 3 has no tRNS value: opaque */
  uint8_t idx[W * H];
  for (int i = 0; i < W * H; i++)
    idx[i] = (uint8_t)(i % 4);
  png_spec s = {.w = W,
                .h = H,
                .ctype = PNG_COLOR_TYPE_PALETTE,
                .depth = 8,
                .rows = idx,
                .plte = plte,
                .n_plte = 4,
                .trns = trns,
                .n_trns = 3};
  gg_image img;
  ASSERT_OK(png_roundtrip(&s, &img));
  for (int i = 0; i < W * H; i++) {
    const png_color *p = &plte[idx[i]];
    ASSERT_EQ(img.rgb[i * 3], p->red);
    ASSERT_EQ(img.rgb[i * 3 + 1], p->green);
    ASSERT_EQ(img.rgb[i * 3 + 2], p->blue);
  }
  gg_image_free(&img);
}

static double mean_of(const gg_image *img) {
  double sum = 0;
  size_t n = (size_t)img->width * (size_t)img->height * 3;
  for (size_t i = 0; i < n; i++)
    sum += img->rgb[i];
  return sum / (double)n;
}

/* 16-bit samples map to 8 bits by scaling, never through a linear-light to
 * sRGB curve: v8 * 257 + a low byte under 128 must come out within 1 of v8
 * (v >> 8 and rounding both do). The 8-bit values average about 80, as in
 * the report (143 before the fix). */
static void test_png_16bit(void) {
  enum { W = 16, H = 10 };
  static const int ctypes[4] = {PNG_COLOR_TYPE_RGB, PNG_COLOR_TYPE_GRAY, PNG_COLOR_TYPE_RGB_ALPHA,
                                PNG_COLOR_TYPE_GRAY_ALPHA};
  for (int t = 0; t < 4; t++) {
    int ch = png_channels(ctypes[t]);
    uint8_t v8[W * H * 4], v16[W * H * 4 * 2];
    for (int i = 0; i < W * H * ch; i++) {
      v8[i] = (uint8_t)(rnd8() % 160);
      unsigned v = v8[i] * 257u + rnd8() % 128u;
      v16[i * 2] = (uint8_t)(v >> 8), v16[i * 2 + 1] = (uint8_t)v;
    }
    png_spec s8 = {.w = W, .h = H, .ctype = ctypes[t], .depth = 8, .rows = v8};
    png_spec s16 = s8;
    s16.depth = 16, s16.rows = v16;
    gg_image a, b;
    ASSERT_OK(png_roundtrip(&s8, &a));
    ASSERT_OK(png_roundtrip(&s16, &b));
    for (int i = 0; i < W * H * 3; i++)
      if (abs(a.rgb[i] - b.rgb[i]) > 1)
        GG_T_FAIL("color type %d: 16-bit sample %d is %d, the 8-bit one %d", ctypes[t], i, b.rgb[i],
                  a.rgb[i]);
    ASSERT_NEAR(mean_of(&b), mean_of(&a), 1.0);
    gg_image_free(&a);
    gg_image_free(&b);
  }
}

/* A gAMA chunk (1.0 here, "linear") does not change the stored values; nor
 * do interlacing or a 4-bit gray depth change what the pixels are. */
static void test_png_gamma_and_layouts(void) {
  enum { W = 13, H = 11 };
  uint8_t rgb[W * H * 3];
  for (size_t i = 0; i < sizeof rgb; i++)
    rgb[i] = rnd8();
  png_spec s = {.w = W, .h = H, .ctype = PNG_COLOR_TYPE_RGB, .depth = 8, .rows = rgb, .gamma = 1.0};
  for (int interlace = 0; interlace < 2; interlace++) {
    s.interlace = interlace;
    gg_image img;
    ASSERT_OK(png_roundtrip(&s, &img));
    ASSERT_TRUE(memcmp(img.rgb, rgb, sizeof rgb) == 0);
    gg_image_free(&img);
  }
  /* 4-bit gray: two pixels a byte, value v shows as v * 17. */
  uint8_t g4[H][(W + 1) / 2], want[W * H];
  for (int y = 0; y < H; y++)
    for (int x = 0; x < W; x++) {
      int v = (x + y) & 15;
      if (x % 2 == 0)
        g4[y][x / 2] = (uint8_t)(v << 4);
      else
        g4[y][x / 2] |= (uint8_t)v;
      want[y * W + x] = (uint8_t)(v * 17);
    }
  png_spec sg = {.w = W, .h = H, .ctype = PNG_COLOR_TYPE_GRAY, .depth = 4, .rows = &g4[0][0]};
  gg_image img;
  ASSERT_OK(png_roundtrip(&sg, &img));
  expect_gray(&img, want, 1);
  gg_image_free(&img);
}

/* ---------------------------------------------------------- orientation */

enum { QW = 24, QH = 16 }; /* a non-square image of four solid quadrants */
static const uint8_t k_quad[4][3] = {{255, 0, 0}, {0, 255, 0}, {0, 0, 255}, {255, 255, 255}};

static const uint8_t *quadrant_pixels(void) {
  static uint8_t px[QW * QH * 3];
  for (int y = 0; y < QH; y++)
    for (int x = 0; x < QW; x++)
      memcpy(px + (y * QW + x) * 3, k_quad[(y >= QH / 2) * 2 + (x >= QW / 2)], 3);
  return px;
}

static uint8_t *quadrant_jpeg(size_t *len) {
  return encode_jpeg(quadrant_pixels(), QW, QH, len);
}

/* The JPEG with an APP1 segment holding payload inserted right after SOI. */
static uint8_t *with_app1(const uint8_t *j, size_t n, const uint8_t *payload, size_t plen,
                          size_t *out_len) {
  uint8_t *b = malloc(n + 4 + plen);
  memcpy(b, j, 2);
  b[2] = 0xff, b[3] = 0xe1, b[4] = (uint8_t)((plen + 2) >> 8), b[5] = (uint8_t)(plen + 2);
  memcpy(b + 6, payload, plen);
  memcpy(b + 6 + plen, j + 2, n - 2);
  *out_len = n + 4 + plen;
  return b;
}

static void put16(uint8_t *p, unsigned v, int le) {
  p[le ? 0 : 1] = (uint8_t)v, p[le ? 1 : 0] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v, int le) {
  put16(p + (le ? 0 : 2), v & 0xffff, le);
  put16(p + (le ? 2 : 0), v >> 16, le);
}

/* A TIFF structure as in an Exif segment: header, IFD0 at ifd with one
 * entry (tag, type, count, value) and next-IFD link next. Returns its size. */
static size_t tiff_one_entry(uint8_t *t, int le, uint32_t ifd, unsigned tag, unsigned type,
                             uint32_t count, unsigned value, uint32_t next) {
  memset(t, 0, ifd + 18);
  t[0] = t[1] = le ? 'I' : 'M';
  put16(t + 2, 42, le);
  put32(t + 4, ifd, le);
  put16(t + ifd, 1, le);
  put16(t + ifd + 2, tag, le);
  put16(t + ifd + 4, type, le);
  put32(t + ifd + 6, count, le);
  put16(t + ifd + 10, value, le);
  put32(t + ifd + 14, next, le);
  return ifd + 18;
}

/* "Exif\0\0" + a TIFF with the orientation tag; the APP1 payload. */
static size_t exif_payload(uint8_t *p, int le, unsigned orientation) {
  memcpy(p, "Exif\0\0", 6);
  return 6 + tiff_one_entry(p + 6, le, 8, 0x0112, 3, 1, orientation, 0);
}

/* Where each stored quadrant must be seen, from the EXIF 2.3 wording of
 * each orientation value ("the 0th row is the visual ..., the 0th column
 * is the visual ..."): for red (stored top-left), green (top-right) and
 * blue (bottom-left), the displayed corner as {right, bottom}. */
static const int k_corner[9][3][2] = {
    [1] = {{0, 0}, {1, 0}, {0, 1}}, /* row 0 top, column 0 left */
    [2] = {{1, 0}, {0, 0}, {1, 1}}, /* row 0 top, column 0 right */
    [3] = {{1, 1}, {0, 1}, {1, 0}}, /* row 0 bottom, column 0 right */
    [4] = {{0, 1}, {1, 1}, {0, 0}}, /* row 0 bottom, column 0 left */
    [5] = {{0, 0}, {0, 1}, {1, 0}}, /* row 0 left, column 0 top */
    [6] = {{1, 0}, {1, 1}, {0, 0}}, /* row 0 right, column 0 top */
    [7] = {{1, 1}, {1, 0}, {0, 1}}, /* row 0 right, column 0 bottom */
    [8] = {{0, 1}, {0, 0}, {1, 1}}, /* row 0 left, column 0 bottom */
};

static void expect_corner(const gg_image *img, int right, int bottom, const uint8_t *rgb, int o) {
  int x = right ? img->width - 3 : 2, y = bottom ? img->height - 3 : 2;
  const uint8_t *p = img->rgb + ((size_t)y * (size_t)img->width + (size_t)x) * 3;
  for (int c = 0; c < 3; c++)
    if (abs(p[c] - rgb[c]) > 24)
      GG_T_FAIL("orientation %d: corner (%d,%d) is %d,%d,%d, want %d,%d,%d", o, x, y, p[0], p[1],
                p[2], rgb[0], rgb[1], rgb[2]);
}

/* Orientation o shows stored pixel (sx, sy) at (x, y): the full image is
 * compared with the unrotated decode, byte for byte. */
static void expect_oriented(const gg_image *img, const gg_image *ref, int o) {
  int W = ref->width, H = ref->height, swap = o >= 5;
  ASSERT_EQ(img->width, swap ? H : W);
  ASSERT_EQ(img->height, swap ? W : H);
  for (int c = 0; c < 3; c++)
    expect_corner(img, k_corner[o][c][0], k_corner[o][c][1], k_quad[c], o);
  for (int y = 0; y < img->height; y++)
    for (int x = 0; x < img->width; x++) {
      /* Undo the display transform: first the swap, then the flips that
       * put stored red's corner at (0, 0). */
      int u = swap ? y : x, v = swap ? x : y;
      int red_right = k_corner[o][0][0], red_bottom = k_corner[o][0][1];
      int sx = (swap ? red_bottom : red_right) ? W - 1 - u : u;
      int sy = (swap ? red_right : red_bottom) ? H - 1 - v : v;
      if (memcmp(img->rgb + ((size_t)y * img->width + x) * 3, ref->rgb + ((size_t)sy * W + sx) * 3,
                 3))
        GG_T_FAIL("orientation %d: (%d,%d) is not stored (%d,%d)", o, x, y, sx, sy);
    }
}

static void test_jpeg_exif_orientation(void) {
  size_t n = 0;
  uint8_t *j = quadrant_jpeg(&n);
  ASSERT_TRUE(j != NULL);
  gg_image ref;
  ASSERT_OK(decode(j, n, &ref));
  expect_oriented(&ref, &ref, 1);
  for (int le = 0; le < 2; le++)
    for (int o = 1; o <= 8; o++) {
      uint8_t pay[64];
      size_t plen = exif_payload(pay, le, (unsigned)o), m = 0;
      uint8_t *e = with_app1(j, n, pay, plen, &m);
      gg_image img;
      ASSERT_OK(decode(e, m, &img));
      expect_oriented(&img, &ref, o);
      gg_image_free(&img);
      free(e);
    }
  gg_image_free(&ref);
  free(j);
}

/* A PNG eXIf chunk (the TIFF structure without "Exif\0\0") counts too. */
static void test_png_exif_orientation(void) {
  uint8_t tiff[64];
  size_t tlen = tiff_one_entry(tiff, 0, 8, 0x0112, 3, 1, 6, 0);
  png_spec s = {
      .w = QW, .h = QH, .ctype = PNG_COLOR_TYPE_RGB, .depth = 8, .rows = quadrant_pixels()};
  gg_image ref, img;
  ASSERT_OK(png_roundtrip(&s, &ref));
  s.exif = tiff, s.exif_len = tlen;
  ASSERT_OK(png_roundtrip(&s, &img));
  expect_oriented(&img, &ref, 6);
  gg_image_free(&img);
  gg_image_free(&ref);
}

/* Hostile EXIF case i written into t (64 bytes): returns its length, or -1
 * past the last case; *want is the orientation it must give. */
static long hostile_tiff(int i, uint8_t *t, int *want, const char **what) {
  memset(t, 0, 64);
  *want = 1;
  long full = (long)tiff_one_entry(t, 1, 8, 0x0112, 3, 1, 6, 0); /* valid: orientation 6 */
  switch (i) {
  case 0: *what = "valid, little-endian", *want = 6; return full;
  case 1:
    *what = "valid, big-endian, IFD0 at 30", *want = 6;
    return (long)tiff_one_entry(t, 0, 30, 0x0112, 3, 1, 6, 0);
  case 2: *what = "empty"; return 0;
  case 3: *what = "header only"; return 8;
  case 4:
    *what = "IFD0 offset past the end";
    put32(t + 4, 0xfffffff0u, 1);
    return full;
  case 5:
    *what = "IFD0 offset at the last byte";
    put32(t + 4, (uint32_t)full - 1, 1);
    return full;
  case 6: *what = "entry cut short"; return full - 5;
  case 7:
    *what = "65535 entries claimed, one present";
    tiff_one_entry(t, 1, 8, 0x0100, 3, 1, 6, 0);
    put16(t + 8, 0xffff, 1);
    return full;
  case 8: *what = "orientation as a LONG"; return (long)tiff_one_entry(t, 1, 8, 0x0112, 4, 1, 6, 0);
  case 9: *what = "orientation 9"; return (long)tiff_one_entry(t, 1, 8, 0x0112, 3, 1, 9, 0);
  case 10: *what = "orientation 0"; return (long)tiff_one_entry(t, 1, 8, 0x0112, 3, 1, 0, 0);
  case 11:
    *what = "next IFD loops to itself";
    return (long)tiff_one_entry(t, 1, 8, 0x0100, 3, 1, 6, 8);
  case 12:
    *what = "bad byte order mark";
    t[0] = 'X';
    return full;
  case 13:
    *what = "bad TIFF magic";
    put16(t + 2, 43, 1);
    return full;
  default: return -1;
  }
}

/* Hostile EXIF: every malformed structure means "no orientation", read
 * strictly inside the buffer (each case is its own exact-size allocation,
 * so ASan sees any overread), then the same inside a real JPEG. */
static void test_exif_hostile(void) {
  size_t n = 0;
  uint8_t *j = quadrant_jpeg(&n);
  ASSERT_TRUE(j != NULL);
  uint8_t t[64];
  int want = 1;
  const char *what = "";
  long len;
  for (int i = 0; (len = hostile_tiff(i, t, &want, &what)) >= 0; i++) {
    uint8_t *exact = malloc(len ? (size_t)len : 1);
    memcpy(exact, t, (size_t)len);
    int got = gg__exif_orientation(exact, (size_t)len);
    free(exact);
    if (got != want) GG_T_FAIL("%s: orientation %d, want %d", what, got, want);
    uint8_t pay[6 + 64];
    memcpy(pay, "Exif\0\0", 6);
    memcpy(pay + 6, t, (size_t)len);
    size_t m = 0;
    uint8_t *e = with_app1(j, n, pay, 6 + (size_t)len, &m);
    gg_image img;
    ASSERT_OK(decode(e, m, &img));
    ASSERT_EQ(img.width, want >= 5 ? QH : QW);
    gg_image_free(&img);
    free(e);
  }
  /* Segment lengths that lie around a valid Exif payload: one running past
   * the end of the file, one shorter than its own length field. The
   * payload is not trusted; the image is an error or unrotated, never an
   * out-of-bounds read. */
  static const unsigned lies[2] = {0xfff0, 1};
  for (int i = 0; i < 2; i++) {
    uint8_t pay[64];
    size_t plen = exif_payload(pay, 1, 6), m = 0;
    uint8_t *b = with_app1(j, n, pay, plen, &m);
    b[4] = (uint8_t)(lies[i] >> 8), b[5] = (uint8_t)lies[i];
    gg__jpeg_meta meta;
    gg__jpeg_meta_read(b, m, &meta);
    ASSERT_EQ(meta.orientation, 1);
    gg_image img;
    char err[256];
    int rc = gg_image_decode(b, m, 0, &img, err, sizeof err);
    if (rc == 0) {
      ASSERT_EQ(img.width, QW);
      gg_image_free(&img);
    } else {
      ASSERT_EQ(rc, GG_EPARSE);
    }
    free(b);
  }
  free(j);
}

/* ------------------------------------------------------------ CMYK JPEG */

#ifdef GG_TEST_HAVE_LIBJPEG
/* A 16x16 CMYK JPEG of four 8x8 quadrants (block-aligned, quality 100,
 * no subsampling, so the values survive), stored as CMYK or YCCK, with or
 * without the Adobe marker. */
static uint8_t *cmyk_jpeg(const uint8_t quad[4][4], int ycck, int adobe, size_t *len) {
  struct jpeg_compress_struct c;
  struct jpeg_error_mgr e;
  c.err = jpeg_std_error(&e);
  jpeg_create_compress(&c);
  unsigned char *out = NULL;
  unsigned long n = 0;
  jpeg_mem_dest(&c, &out, &n);
  c.image_width = 16, c.image_height = 16, c.input_components = 4, c.in_color_space = JCS_CMYK;
  jpeg_set_defaults(&c);
  jpeg_set_colorspace(&c, ycck ? JCS_YCCK : JCS_CMYK);
  c.write_Adobe_marker = adobe ? TRUE : FALSE;
  for (int k = 0; k < 4; k++)
    c.comp_info[k].h_samp_factor = c.comp_info[k].v_samp_factor = 1;
  jpeg_set_quality(&c, 100, TRUE);
  jpeg_start_compress(&c, TRUE);
  uint8_t row[16 * 4];
  for (int y = 0; y < 16; y++) {
    for (int x = 0; x < 16; x++)
      memcpy(row + x * 4, quad[(y >= 8) * 2 + (x >= 8)], 4);
    JSAMPROW r = row;
    jpeg_write_scanlines(&c, &r, 1);
  }
  jpeg_finish_compress(&c);
  jpeg_destroy_compress(&c);
  *len = n;
  return out;
}

/* Adobe (Photoshop) files store inks inverted, 255 = none; others do not.
 * Either way a quadrant of "full cyan" must come out cyan. */
static void test_jpeg_cmyk(void) {
  static const uint8_t want[4][3] = {{255, 0, 0}, {0, 255, 255}, {128, 128, 128}, {0, 0, 0}};
  /* Inverted inks (C,M,Y,K) for red, cyan, 50% gray, black. */
  static const uint8_t inv[4][4] = {
      {255, 0, 0, 255}, {0, 255, 255, 255}, {255, 255, 255, 128}, {255, 255, 255, 0}};
  uint8_t plain[4][4];
  for (int q = 0; q < 4; q++)
    for (int k = 0; k < 4; k++)
      plain[q][k] = (uint8_t)(255 - inv[q][k]);
  static const struct {
    int ycck, adobe;
    const char *what;
  } kinds[3] = {{0, 1, "Adobe CMYK"}, {1, 1, "Adobe YCCK"}, {0, 0, "CMYK without Adobe marker"}};
  for (int t = 0; t < 3; t++) {
    size_t n = 0;
    uint8_t *j = cmyk_jpeg(kinds[t].adobe ? inv : (const uint8_t(*)[4])plain, kinds[t].ycck,
                           kinds[t].adobe, &n);
    ASSERT_TRUE(j != NULL);
    gg_image img;
    char err[256] = "";
    int rc = gg_image_decode(j, n, 0, &img, err, sizeof err);
    free(j);
    if (rc) GG_T_FAIL("%s: %s: %s", kinds[t].what, gg_err_name(rc), err);
    for (int q = 0; q < 4; q++) {
      int x = (q & 1) * 8 + 4, y = (q >> 1) * 8 + 4;
      const uint8_t *p = img.rgb + (y * 16 + x) * 3;
      for (int c = 0; c < 3; c++)
        if (abs(p[c] - want[q][c]) > 6)
          GG_T_FAIL("%s: quadrant %d is %d,%d,%d, want %d,%d,%d", kinds[t].what, q, p[0], p[1],
                    p[2], want[q][0], want[q][1], want[q][2]);
    }
    gg_image_free(&img);
  }
}
#endif
#endif

static void test_garbage(void) {
  gg_image img;
  char err[256];
  const char junk[] = "GIF89a not really";
  ASSERT_EQ(gg_image_decode(junk, sizeof junk, 0, &img, err, sizeof err), GG_EPARSE);
  ASSERT_CONTAINS(err, "not a JPEG or PNG");
  ASSERT_EQ(gg_image_decode(junk, 0, 0, &img, err, sizeof err), GG_EPARSE);
  const uint8_t soi[3] = {0xff, 0xd8, 0xff};
#ifdef HAVE_CODECS
  ASSERT_EQ(gg_image_decode(soi, 3, 0, &img, err, sizeof err), GG_EPARSE);
#else
  (void)soi;
#endif
  ASSERT_EQ(gg_image_load("/nonexistent/x.jpg", &img, err, sizeof err), GG_EIO);
  ASSERT_CONTAINS(err, "/nonexistent/x.jpg");
  ASSERT_EQ(gg_image_load("/", &img, err, sizeof err), GG_EIO);
}

static void test_sample_image(void) {
  char p[1024];
  gg_t_cache_path(p, sizeof p, "models/face-api-1.7.15/demo/sample2.jpg");
  if (access(p, R_OK)) SKIP("sample images not fetched (%s)", p);
  gg_image img;
  char err[256];
  ASSERT_OK(gg_image_load(p, &img, err, sizeof err));
  ASSERT_GE(img.width, 16);
  ASSERT_GE(img.height, 16);
  /* Not a flat image: the pixels vary. */
  int lo = 255, hi = 0;
  for (int i = 0; i < img.width * img.height * 3; i += 97) {
    if (img.rgb[i] < lo) lo = img.rgb[i];
    if (img.rgb[i] > hi) hi = img.rgb[i];
  }
  ASSERT_GE(hi - lo, 50);
  gg_image_free(&img);
}

static void test_preprocess(void) {
  /* 2x2 image, one channel ramp: R = {0, 100, 200, 255}. */
  uint8_t px[12] = {0, 1, 2, 100, 1, 2, 200, 1, 2, 255, 1, 2};
  gg_image img = {2, 2, px};
  gg_preprocess p = {.width = 4, .height = 4, .scale = 1.0f, .offset = 0.0f, .nchw = 0, .why = "test"};
  float out[48];
  ASSERT_OK(gg_image_to_tensor(&img, &p, out));
  /* TF.js legacy bilinear: src = dst * 0.5, clamped. Row 0 of R: 0, 50, 100, 100. */
  ASSERT_NEAR(out[0], 0, 1e-5);
  ASSERT_NEAR(out[3], 50, 1e-5);
  ASSERT_NEAR(out[6], 100, 1e-5);
  ASSERT_NEAR(out[9], 100, 1e-5);
  /* Row 1 (y = 0.5): (0+200)/2, ..., (50+227.5)/2 */
  ASSERT_NEAR(out[12], 100, 1e-4);
  ASSERT_NEAR(out[15], 138.75, 1e-4);
  ASSERT_NEAR(out[1], 1, 1e-5); /* G constant */
  /* NCHW: channel planes. */
  p.nchw = 1;
  ASSERT_OK(gg_image_to_tensor(&img, &p, out));
  ASSERT_NEAR(out[1], 50, 1e-5);
  ASSERT_NEAR(out[16], 1, 1e-5);
  ASSERT_NEAR(out[32], 2, 1e-5);
  /* Model conventions. */
  ASSERT_EQ(gg_preprocess_for_model("/x/models/blazeface.json", &p), 1);
  ASSERT_EQ(p.width, 256);
  ASSERT_NEAR(0 * p.scale + p.offset, -1, 1e-6);
  ASSERT_NEAR(255 * p.scale + p.offset, 1, 1e-6);
  ASSERT_EQ(gg_preprocess_for_model("nanodet.json", &p), 1);
  ASSERT_EQ(p.nchw, 1);
  ASSERT_EQ(p.width, 416);
  ASSERT_EQ(gg_preprocess_for_model("faceres.json", &p), 1);
  ASSERT_EQ(p.width, 224);
  ASSERT_EQ(gg_preprocess_for_model("mobilefacenet.json", &p), 1);
  ASSERT_EQ(p.width, 112);
  ASSERT_NEAR(255 * p.scale + p.offset, 1, 1e-6);
  ASSERT_EQ(gg_preprocess_for_model("other.json", &p), 0);
  p.width = 0;
  ASSERT_EQ(gg_image_to_tensor(&img, &p, out), GG_EINVAL);
}

/* Mean / std per channel, BGR order, and the MODEL.json sidecar that sets
 * them: each value checked against the formula, each bad file a clear
 * GG_EPARSE naming it. */
static void test_preprocess_mean_std(void) {
  /* 1x1 image R=10, G=100, B=200 resized to 1x1: the pixel itself */
  uint8_t px[3] = {10, 100, 200};
  gg_image img = {1, 1, px};
  gg_preprocess p = {.width = 1, .height = 1, .scale = 1.0f, .offset = 0.0f, .why = "test"};
  float mean[3] = {1, 2, 3}, std[3] = {2, 4, 8}, out[3];
  ASSERT_OK(gg_preprocess_set_mean_std(&p, mean, std));
  ASSERT_EQ(p.per_channel, 1);
  ASSERT_OK(gg_image_to_tensor(&img, &p, out));
  ASSERT_NEAR(out[0], (10 - 1) / 2.0, 1e-5);
  ASSERT_NEAR(out[1], (100 - 2) / 4.0, 1e-5);
  ASSERT_NEAR(out[2], (200 - 3) / 8.0, 1e-5);
  p.bgr = 1; /* channel 0 is blue now, normalized with mean[0], std[0] */
  ASSERT_OK(gg_image_to_tensor(&img, &p, out));
  ASSERT_NEAR(out[0], (200 - 1) / 2.0, 1e-5);
  ASSERT_NEAR(out[1], (100 - 2) / 4.0, 1e-5);
  ASSERT_NEAR(out[2], (10 - 3) / 8.0, 1e-5);
  /* equal channels: the scalar form */
  float m1[3] = {127.5f, 127.5f, 127.5f};
  ASSERT_OK(gg_preprocess_set_mean_std(&p, m1, m1));
  ASSERT_EQ(p.per_channel, 0);
  ASSERT_NEAR(255 * p.scale + p.offset, 1, 1e-6);
  ASSERT_NEAR(0 * p.scale + p.offset, -1, 1e-6);
  float zero[3] = {1, 0, 1};
  ASSERT_EQ(gg_preprocess_set_mean_std(&p, m1, zero), GG_EINVAL);
  /* parsing one or three numbers */
  float v[3];
  ASSERT_OK(gg_preprocess_parse3("127.5", v));
  ASSERT_NEAR(v[2], 127.5, 0);
  ASSERT_OK(gg_preprocess_parse3("1,2.5,-3", v));
  ASSERT_NEAR(v[1], 2.5, 0);
  ASSERT_NEAR(v[2], -3, 0);
  const char *bad[] = {"", "1,2", "1,2,3,4", "1,,2", "x", "1e999", "nan", "1,2,3x"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    if (gg_preprocess_parse3(bad[i], v) != GG_EINVAL) GG_T_FAIL("parse3 took '%s'", bad[i]);
  /* the sidecar */
  char dir[] = "/tmp/gg-sidecar-XXXXXX";
  ASSERT_TRUE(mkdtemp(dir) != NULL);
  char model[128], side[160], err[512];
  snprintf(model, sizeof model, "%s/m.onnx", dir);
  snprintf(side, sizeof side, "%s.json", model);
  gg_preprocess q = {.width = 7, .height = 9, .scale = 0.5f, .offset = 0.25f, .nchw = 1};
  int found = -1;
  ASSERT_OK(gg_preprocess_sidecar(model, &q, &found, err, sizeof err)); /* none: untouched */
  ASSERT_EQ(found, 0);
  ASSERT_NEAR(q.scale, 0.5, 0);
  FILE *f = fopen(side, "w");
  ASSERT_TRUE(f != NULL);
  fputs("{\"mean\": [123.675, 116.28, 103.53], \"std\": 58.0, \"channels\": \"BGR\", "
        "\"width\": 640}", f);
  fclose(f);
  ASSERT_OK(gg_preprocess_sidecar(model, &q, &found, err, sizeof err));
  ASSERT_EQ(found, 1);
  ASSERT_EQ(q.per_channel, 1);
  ASSERT_EQ(q.bgr, 1);
  ASSERT_EQ(q.nchw, 1); /* kept */
  ASSERT_EQ(q.width, 640);
  ASSERT_EQ(q.height, 9); /* kept */
  ASSERT_NEAR(255 * q.ch_scale[1] + q.ch_offset[1], (255 - 116.28) / 58.0, 1e-5);
  char desc[200];
  gg_preprocess_describe(&q, desc, sizeof desc);
  ASSERT_CONTAINS(desc, "BGR");
  ASSERT_CONTAINS(desc, "116.28");
  static const char *const k_bad[][2] = {
      {"{\"mean\": [1, 2]}", "\"mean\" must be"},
      {"{\"std\": 0}", "must not be 0"},
      {"{\"std\": [1, 0, 1]}", "must not be 0"},
      {"{\"channels\": \"GRB\"}", "\"channels\""},
      {"{\"width\": 0}", "\"width\" must be"},
      {"{\"height\": 1.5}", "\"height\" must be"},
      {"{\"scale\": 1}", "unknown key \"scale\""},
      {"{\"mean\": 1, \"mean\": 2}", "line 1"},
      {"[1, 2, 3]", "not a JSON object"},
      {"{\"mean\": ", "line 1"},
  };
  for (size_t i = 0; i < sizeof k_bad / sizeof k_bad[0]; i++) {
    f = fopen(side, "w");
    ASSERT_TRUE(f != NULL);
    fputs(k_bad[i][0], f);
    fclose(f);
    gg_preprocess before = q, r = q;
    err[0] = 0;
    int rc = gg_preprocess_sidecar(model, &r, &found, err, sizeof err);
    if (rc != GG_EPARSE || !strstr(err, k_bad[i][1]) || !strstr(err, side) ||
        memcmp(&r, &before, sizeof r))
      GG_T_FAIL("sidecar %s: rc %d, err '%s' (want GG_EPARSE and '%s'; pp unchanged)", k_bad[i][0],
                rc, err, k_bad[i][1]);
  }
  /* over 64 KiB */
  f = fopen(side, "w");
  ASSERT_TRUE(f != NULL);
  fputc('{', f);
  for (int i = 0; i < 70000; i++) fputc(' ', f);
  fputc('}', f);
  fclose(f);
  ASSERT_EQ(gg_preprocess_sidecar(model, &q, &found, err, sizeof err), GG_EPARSE);
  ASSERT_CONTAINS(err, "at most");
  unlink(side);
  rmdir(dir);
}

int main(int argc, char **argv) {
  gg_log_set_level(GG_LOG_ERROR);
  static const gg_test_case cases[] = {
#ifdef HAVE_CODECS
      {"png_roundtrip", test_png_roundtrip},
      {"png_huge_header", test_png_huge_header},
      {"jpeg_roundtrip", test_jpeg_roundtrip},
      {"png_rgba_deterministic", test_png_rgba_deterministic},
      {"png_gray_alpha", test_png_gray_alpha},
      {"png_palette_trns", test_png_palette_trns},
      {"png_16bit", test_png_16bit},
      {"png_gamma_and_layouts", test_png_gamma_and_layouts},
      {"jpeg_exif_orientation", test_jpeg_exif_orientation},
      {"png_exif_orientation", test_png_exif_orientation},
      {"exif_hostile", test_exif_hostile},
#endif
#ifdef GG_TEST_HAVE_LIBJPEG
      {"jpeg_cmyk", test_jpeg_cmyk},
#endif
      {"garbage", test_garbage},
      {"sample_image", test_sample_image},
      {"preprocess", test_preprocess},
      {"preprocess_mean_std", test_preprocess_mean_std},
      {0},
  };
  return gg_test_main(argc, argv, cases);
}
