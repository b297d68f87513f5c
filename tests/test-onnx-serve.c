/* Integration test: an ONNX model placed in the models directory is served
 * by the real `gpuguard serve` through POST /api/infer?model=NAME, warm-up
 * included, when its input's height and width are free (PP-OCR's text
 * detector: x [N,3,H,W]). Skipped with a SKIP line when the PaddleOCR
 * models are not fetched (scripts/fetch-models.sh). */
#include "server-util.h"
#include "test.h"

#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DET_REL "models/ocr-models-1.4.2/assets/ch_PP-OCRv4_det_infer.onnx"

static gg_ts_server g_srv = GG_TS_NONE;

/* A w x h RGB test card as PNG: dark strokes on a light ground, so the
 * detector has text-like edges to answer. */
static uint8_t *card_png(int w, int h, size_t *len) {
  uint8_t *rgb = malloc((size_t)w * (size_t)h * 3);
  if (!rgb) return NULL;
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      int ink = (y / 6) % 3 == 1 && (x / 4) % 5 != 0;
      uint8_t v = ink ? 20 : (uint8_t)(220 + (x + y) % 30);
      uint8_t *p = rgb + ((size_t)y * (size_t)w + (size_t)x) * 3;
      p[0] = p[1] = p[2] = v;
    }
  uint8_t *png = gg_ts_png_encode(rgb, w, h, len);
  free(rgb);
  return png;
}

/* The device pool's allocated bytes (GET /api/device, guard.devices[0]),
 * or -1. */
static long long pool_allocated(void) {
  gg_ts_buf b = {0};
  long st = gg_ts_http(&g_srv, "GET", "/api/device", NULL, NULL, 0, 20, &b);
  json_t *j = st == 200 && b.p ? json_loads(b.p, 0, NULL) : NULL;
  free(b.p);
  json_t *d = json_array_get(json_object_get(json_object_get(j, "guard"), "devices"), 0);
  json_t *v = json_object_get(d, "pool_allocated_bytes");
  long long n = json_is_integer(v) ? json_integer_value(v) : -1;
  json_decref(j);
  return n;
}

/* Serves DIR/ppocr-det.onnx (a symlink to the fetched model) on the sim
 * device, warmed up at start, and POSTs an image to
 * /api/infer?model=ppocr-det. The session warmed up at start must be the
 * one that serves the image (its input shape is the one /api/infer feeds,
 * not the declared [1,3,1,1] with free dims as 1): the request allocates no
 * second session on the device. */
static void test_infer_free_dims(void) {
  char det[512];
  gg_t_cache_path(det, sizeof det, DET_REL);
  if (access(det, R_OK) != 0) SKIP("%s missing: run scripts/fetch-models.sh", det);
  char mdir[] = "/tmp/gg-onnx-models-XXXXXX";
  ASSERT_TRUE(mkdtemp(mdir) != NULL);
  char link[128];
  snprintf(link, sizeof link, "%s/ppocr-det.onnx", mdir);
  ASSERT_EQ(symlink(det, link), 0);
  const char *args[] = {"--device",  "sim:mem=4560M", "--fallback", "",           "--models",
                        "ppocr-det", "--models-dir",  mdir,         "--max-body", "4M",
                        NULL};
  g_srv.log_to_file = 1;
  int started = gg_ts_start(&g_srv, "onnx-serve", 0, args, 120) == 0;
  if (!started) {
    char *log = gg_ts_read_file(g_srv.log, NULL);
    fprintf(stderr, "  the server did not start (warm-up of ppocr-det); its log:\n%s\n",
            log ? log : "(none)");
    free(log);
  }
  ASSERT_TRUE(started);
  if (started) {
    long long before = pool_allocated();
    ASSERT_GE(before, 1);
    size_t len = 0;
    uint8_t *png = card_png(160, 96, &len);
    ASSERT_TRUE(png != NULL);
    gg_ts_buf b = {0};
    long st = gg_ts_http(&g_srv, "POST", "/api/infer?model=ppocr-det", NULL, png, len, 60, &b);
    free(png);
    if (st != 200) fprintf(stderr, "  response: %s\n", b.p ? b.p : "(none)");
    ASSERT_EQ(st, 200);
    json_t *j = b.p ? json_loads(b.p, 0, NULL) : NULL;
    free(b.p);
    ASSERT_TRUE(j != NULL);
    ASSERT_STREQ(json_string_value(json_object_get(j, "device")), "sim:mem=4560M");
    /* the warmed-up session served it: nothing more was allocated, and its
     * planned peak is what the device holds */
    long long after = pool_allocated();
    ASSERT_EQ(after, before);
    ASSERT_EQ(json_integer_value(json_object_get(j, "planned_peak_bytes")), before);
    json_t *outs = json_object_get(j, "outputs");
    ASSERT_EQ(json_array_size(outs), 1);
    json_t *o = json_array_get(outs, 0);
    json_t *shape = json_object_get(o, "shape");
    /* [1,1,H,W]: the probability map at the size the image was fed. */
    ASSERT_EQ(json_array_size(shape), 4);
    ASSERT_EQ(json_integer_value(json_array_get(shape, 0)), 1);
    ASSERT_EQ(json_integer_value(json_array_get(shape, 1)), 1);
    long long h = json_integer_value(json_array_get(shape, 2));
    long long w = json_integer_value(json_array_get(shape, 3));
    ASSERT_GE(h, 32);
    ASSERT_GE(w, 32);
    ASSERT_EQ(h % 32, 0);
    ASSERT_EQ(w % 32, 0);
    ASSERT_EQ(json_integer_value(json_object_get(o, "elements")), h * w);
    /* A probability map: inside [0, 1], finite. */
    double mn = json_number_value(json_object_get(o, "min"));
    double mx = json_number_value(json_object_get(o, "max"));
    ASSERT_FINITE(mn);
    ASSERT_FINITE(mx);
    ASSERT_GE_F(mn, 0.0);
    ASSERT_LE_F(mx, 1.0);
    json_decref(j);
  }
  gg_ts_stop(&g_srv, 1);
  unlink(link);
  rmdir(mdir);
}

int main(int argc, char **argv) {
  curl_global_init(CURL_GLOBAL_DEFAULT);
  static const gg_test_case cases[] = {
      {"infer_free_dims", test_infer_free_dims},
      {0},
  };
  int rc = gg_test_main(argc, argv, cases);
  gg_ts_stop(&g_srv, 1);
  curl_global_cleanup();
  return rc;
}
