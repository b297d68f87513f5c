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
#include <turbojpeg.h>
#define HAVE_CODECS 1
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

static uint8_t *make_jpeg(int w, int h, size_t *len) {
  uint8_t *px = malloc((size_t)w * (size_t)h * 3);
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      px[(y * w + x) * 3 + 0] = (uint8_t)(x * 255 / (w - 1));
      px[(y * w + x) * 3 + 1] = (uint8_t)(y * 255 / (h - 1));
      px[(y * w + x) * 3 + 2] = 128;
    }
  tjhandle t = tjInitCompress();
  unsigned char *out = NULL;
  unsigned long n = 0;
  int rc = tjCompress2(t, px, w, 0, h, TJPF_RGB, &out, &n, TJSAMP_444, 100, 0);
  tjDestroy(t);
  free(px);
  if (rc) return NULL;
  uint8_t *b = malloc(n);
  memcpy(b, out, n);
  tjFree(out);
  *len = n;
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
  gg_preprocess p = {4, 4, 1.0f, 0.0f, 0, "test"};
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

int main(int argc, char **argv) {
  gg_log_set_level(GG_LOG_ERROR);
  static const gg_test_case cases[] = {
#ifdef HAVE_CODECS
      {"png_roundtrip", test_png_roundtrip},
      {"png_huge_header", test_png_huge_header},
      {"jpeg_roundtrip", test_jpeg_roundtrip},
#endif
      {"garbage", test_garbage},
      {"sample_image", test_sample_image},
      {"preprocess", test_preprocess},
      {0},
  };
  return gg_test_main(argc, argv, cases);
}
