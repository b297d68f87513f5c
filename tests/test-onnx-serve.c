/* Integration test: an ONNX model placed in the models directory is served
 * by the real `gpuguard serve` through POST /api/infer?model=NAME, warm-up
 * included, when its input's height and width are free (PP-OCR's text
 * detector: x [N,3,H,W]). Skipped with a SKIP line when the PaddleOCR
 * models are not fetched (scripts/fetch-models.sh). */
#include "gpuguard/engine.h"
#include "gpuguard/error.h"
#include "gpuguard/image.h"
#include "gpuguard/log.h"
#include "server-util.h"
#include "test.h"

#include <curl/curl.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DET_REL "models/ocr-models-1.4.2/assets/ch_PP-OCRv4_det_infer.onnx"
#define CLS_REL "models/ocr-models-1.4.2/assets/ch_ppocr_mobile_v2.0_cls_infer.onnx"

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

/* NAME.onnx.json next to NAME.onnx sets how the image is fed: PP-OCR's
 * classifier (free H and W) at 48x192, (pixel - 127.5) / 127.5, BGR. The
 * answer must be what the engine gives for that tensor made here by hand
 * (gg_image_to_tensor with those numbers), and must differ from the RGB
 * answer (the card's channels differ). A model whose sidecar is bad is
 * not served, and the error says why in the log. */
static void test_infer_sidecar(void) {
  char cls[512];
  gg_t_cache_path(cls, sizeof cls, CLS_REL);
  if (access(cls, R_OK) != 0) SKIP("%s missing: run scripts/fetch-models.sh", cls);
  char mdir[] = "/tmp/gg-onnx-sidecar-XXXXXX";
  ASSERT_TRUE(mkdtemp(mdir) != NULL);
  char link[128], link2[128], side[160], side2[160];
  snprintf(link, sizeof link, "%s/cls.onnx", mdir);
  snprintf(link2, sizeof link2, "%s/badside.onnx", mdir);
  snprintf(side, sizeof side, "%s.json", link);
  snprintf(side2, sizeof side2, "%s.json", link2);
  ASSERT_EQ(symlink(cls, link), 0);
  ASSERT_EQ(symlink(cls, link2), 0);
  FILE *f = fopen(side, "w");
  ASSERT_TRUE(f != NULL);
  fputs("{\"mean\": 127.5, \"std\": 127.5, \"channels\": \"BGR\", \"width\": 192, "
        "\"height\": 48}\n", f);
  fclose(f);
  f = fopen(side2, "w");
  ASSERT_TRUE(f != NULL);
  fputs("{\"std\": 0}\n", f);
  fclose(f);
  /* a card whose channels differ: R ramps across, B down, G constant */
  enum { W = 96, H = 40 };
  static uint8_t rgb[W * H * 3];
  for (int y = 0; y < H; y++)
    for (int x = 0; x < W; x++) {
      uint8_t *p = rgb + ((size_t)y * W + (size_t)x) * 3;
      p[0] = (uint8_t)(x * 255 / (W - 1)), p[1] = 90, p[2] = (uint8_t)(y * 255 / (H - 1));
    }
  size_t len = 0;
  uint8_t *png = gg_ts_png_encode(rgb, W, H, &len);
  ASSERT_TRUE(png != NULL);
  /* what it must give, computed here */
  float want[2] = {0, 0}, want_rgb[2] = {0, 0};
  gg_image img = {W, H, rgb};
  gg_model *m = NULL;
  char err[512] = "";
  ASSERT_OK(gg_model_load(cls, &m, err, sizeof err));
  int64_t shape[4] = {1, 3, 48, 192};
  for (int bgr = 0; bgr < 2; bgr++) {
    gg_session *s = NULL;
    gg_session_opts so = {1, GG_ENGINE_AUTO, 0};
    ASSERT_OK(gg_session_new(m, shape, 4, &so, &s, err, sizeof err));
    gg_preprocess pp = {.width = 192, .height = 48, .scale = 1.0f / 127.5f, .offset = -1.0f,
                        .nchw = 1, .why = "test", .bgr = bgr};
    ASSERT_OK(gg_image_to_tensor(&img, &pp, gg_session_input(s, 0, NULL)));
    ASSERT_OK(gg_session_run(s, err, sizeof err));
    memcpy(bgr ? want : want_rgb, gg_session_output(s, 0, NULL), sizeof want);
    gg_session_free(s);
  }
  gg_model_free(m);
  ASSERT_GT_F(fabs(want[0] - want_rgb[0]), 1e-4); /* BGR matters for this card */
  const char *args[] = {"--device", "cpu", "--models", "cls", "--models-dir", mdir, NULL};
  g_srv.log_to_file = 1;
  int started = gg_ts_start(&g_srv, "onnx-sidecar", 0, args, 120) == 0;
  ASSERT_TRUE(started);
  if (started) {
    gg_ts_buf b = {0};
    long st = gg_ts_http(&g_srv, "POST", "/api/infer?model=cls", NULL, png, len, 60, &b);
    if (st != 200) fprintf(stderr, "  response: %s\n", b.p ? b.p : "(none)");
    ASSERT_EQ(st, 200);
    json_t *j = b.p ? json_loads(b.p, 0, NULL) : NULL;
    free(b.p);
    json_t *data = json_object_get(json_array_get(json_object_get(j, "outputs"), 0), "data");
    ASSERT_EQ(json_array_size(data), 2);
    for (int k = 0; k < 2; k++) ASSERT_NEAR(json_number_value(json_array_get(data, k)), want[k], 1e-6);
    json_decref(j);
    memset(&b, 0, sizeof b);
    st = gg_ts_http(&g_srv, "POST", "/api/infer?model=badside", NULL, png, len, 60, &b);
    ASSERT_TRUE(st >= 400 && st < 500);
    free(b.p);
    char *log = gg_ts_read_file(g_srv.log, NULL);
    ASSERT_TRUE(log != NULL);
    if (log) {
      ASSERT_CONTAINS(log, "badside.onnx.json");
      ASSERT_CONTAINS(log, "must not be 0");
    }
    free(log);
  }
  gg_ts_stop(&g_srv, 1);
  /* `gpuguard infer` reads the same sidecar, on the engine directly and
   * through the guard (sim); --mean/--std/--bgr override it */
  char pngpath[160];
  snprintf(pngpath, sizeof pngpath, "%s/card.png", mdir);
  f = fopen(pngpath, "wb");
  ASSERT_TRUE(f != NULL);
  ASSERT_EQ(fwrite(png, 1, len, f), len);
  fclose(f);
  static const char *const k_extra[] = {"", "--device sim:mem=1G", "--mean 127.5 --std 127.5"};
  for (int k = 0; k < 3; k++) {
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "%s infer --model '%s' --image '%s' --json %s 2>/dev/null", GG_BIN,
             link, pngpath, k_extra[k]);
    FILE *pf = popen(cmd, "r");
    ASSERT_TRUE(pf != NULL);
    json_error_t je;
    json_t *j = json_loadf(pf, 0, &je);
    int st = pclose(pf);
    ASSERT_TRUE(j != NULL);
    ASSERT_EQ(WEXITSTATUS(st), 0);
    json_t *outs = k == 1 ? json_object_get(json_array_get(json_object_get(j, "requests"), 0),
                                            "outputs")
                          : json_object_get(j, "outputs");
    json_t *first = json_object_get(json_array_get(outs, 0), "first");
    ASSERT_EQ(json_array_size(first), 2);
    const float *w = k == 2 ? want_rgb : want; /* the flags replace the whole sidecar rule */
    for (int i = 0; i < 2; i++) ASSERT_NEAR(json_number_value(json_array_get(first, i)), w[i], 1e-6);
    json_decref(j);
  }
  char cmd[1200];
  snprintf(cmd, sizeof cmd, "%s infer --model '%s' --image '%s' --mean 1,2 >/dev/null 2>&1",
           GG_BIN, link, pngpath);
  ASSERT_EQ(WEXITSTATUS(system(cmd)), 2);
  snprintf(cmd, sizeof cmd, "%s infer --model '%s' --image '%s' 2>&1", GG_BIN, link2, pngpath);
  FILE *pf = popen(cmd, "r");
  char buf[2048] = "";
  size_t nr = pf ? fread(buf, 1, sizeof buf - 1, pf) : 0;
  buf[nr] = 0;
  ASSERT_NE(pf ? pclose(pf) : 0, 0);
  ASSERT_CONTAINS(buf, "must not be 0");
  unlink(pngpath);
  free(png);
  unlink(side), unlink(side2), unlink(link), unlink(link2);
  rmdir(mdir);
}

int main(int argc, char **argv) {
  gg_log_set_level(GG_LOG_WARN);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  static const gg_test_case cases[] = {
      {"infer_free_dims", test_infer_free_dims},
      {"infer_sidecar", test_infer_sidecar},
      {0},
  };
  int rc = gg_test_main(argc, argv, cases);
  gg_ts_stop(&g_srv, 1);
  curl_global_cleanup();
  return rc;
}
