/* Integration test of the face service's native routes: starts the real
 * `gpuguard serve --device cpu` on an ephemeral port with a fresh data
 * directory and talks to it with libcurl on the sample photos. */
#include "gpuguard/error.h"
#include "gpuguard/image.h"
#include "server-util.h"
#include "test.h"

#include <curl/curl.h>
#include <jansson.h>
#include <signal.h>
#include <strings.h>
#include <sys/wait.h>
#include <unistd.h>

#define API_KEY "faces-test-key-0123456789abcdef"

static gg_ts_server g_srv = GG_TS_NONE;
static const char *g_key; /* sent as x-api-key when set */

/* The Retry-After header of the last response ("" when none). */
static char g_retry_after[32];

static size_t on_header(char *ptr, size_t size, size_t nmemb, void *ud) {
  (void)ud;
  size_t n = size * nmemb;
  if (n > 12 && !strncasecmp(ptr, "Retry-After:", 12)) {
    size_t k = 0;
    for (size_t i = 12; i < n && k + 1 < sizeof g_retry_after; i++)
      if (ptr[i] >= '0' && ptr[i] <= '9') g_retry_after[k++] = ptr[i];
    g_retry_after[k] = 0;
  }
  return n;
}

/* The raw body of the last response. */
static unsigned char *g_raw;
static size_t g_raw_len;

/* Performs a request; returns the HTTP status (or -1) and the parsed JSON
 * body in *out (NULL when not JSON; may be NULL). */
static long req(const char *method, const char *path, const char *content_type, const void *body,
                size_t body_len, json_t **out) {
  CURL *c = curl_easy_init();
  if (!c) return -1;
  char ct[128], key[128];
  snprintf(ct, sizeof ct, "Content-Type: %s", content_type ? content_type : "");
  struct curl_slist *hdrs = curl_slist_append(NULL, ct);
  if (g_key) {
    snprintf(key, sizeof key, "x-api-key: %s", g_key);
    hdrs = curl_slist_append(hdrs, key);
  }
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
  char url[512];
  snprintf(url, sizeof url, "http://127.0.0.1:%d%s", g_srv.port, path);
  gg_ts_buf b = {0};
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, gg_ts_on_data);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
  g_retry_after[0] = 0;
  curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
  if (body) {
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
  }
  long status = -1;
  if (curl_easy_perform(c) == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_cleanup(c);
  curl_slist_free_all(hdrs);
  if (out) *out = b.p ? json_loads(b.p, 0, NULL) : NULL;
  if (status >= 400 || (out && !*out))
    fprintf(stderr, "  %s %s -> %ld %.300s\n", method, path, status, b.p ? b.p : "");
  free(g_raw);
  g_raw = (unsigned char *)b.p;
  g_raw_len = b.n;
  return status;
}

static long req_json(const char *method, const char *path, const char *body, json_t **out) {
  return req(method, path, "application/json", body, strlen(body), out);
}

/* Starts the server on the CPU with a fresh gallery, plus extra args. */
static int start_server(const char *const *extra) {
  const char *args[32] = {"--max-body", "16M", "--device", "cpu"};
  int n = 4;
  for (int i = 0; extra && extra[i] && n < 31; i++)
    args[n++] = extra[i];
  args[n] = NULL;
  return gg_ts_start(&g_srv, "test-faces", 1, args, 60);
}

static void stop_server(void) {
  gg_ts_stop(&g_srv, 1);
}

static char *sample(int i, size_t *len) {
  return gg_ts_sample(i, len);
}

/* ---- helpers on responses ------------------------------------------------ */

static int64_t jint(json_t *j, const char *key) {
  return json_integer_value(json_object_get(j, key));
}

static const char *err_name(json_t *j) {
  return json_string_value(json_object_get(json_object_get(j, "error"), "name"));
}

/* The id of the first face recognised as someone in a /api/recognize
 * response, 0 when none is. */
static int64_t first_known(json_t *j) {
  json_t *faces = json_object_get(j, "faces");
  for (size_t i = 0; i < json_array_size(faces); i++) {
    json_t *id = json_object_get(json_array_get(faces, i), "identity");
    if (json_is_object(id)) return jint(id, "id");
  }
  return 0;
}

/* sample1's face 0 is at x 1482..1648, y 257..423; in the mirror its x is
 * 271..437. The crop keeps it and drops the other two faces. */
#define VIEW_X 100
#define VIEW_Y 100
#define VIEW_W 560
#define VIEW_H 560

static int64_t g_alice;

#define GG_T_SEEN_MAX 32

static void test_enroll_and_recognise(void) {
  size_t n = 0;
  char *s1 = sample(1, &n);
  if (!s1) SKIP("sample photos missing: run scripts/install.sh");
  json_t *j = NULL;
  ASSERT_EQ(req_json("POST", "/api/identities", "{\"name\":\"alice\"}", &j), 201);
  g_alice = jint(j, "id");
  ASSERT_GE(g_alice, 1);
  json_decref(j);
  /* Three faces: the route will not guess which one. */
  ASSERT_EQ(req("POST", "/api/identities/1/examples", "image/jpeg", s1, n, &j), 422);
  ASSERT_STREQ(err_name(j), "multiple_faces");
  ASSERT_EQ(json_array_size(json_object_get(j, "faces")), 3);
  json_decref(j);
  char path[128];
  snprintf(path, sizeof path, "/api/identities/%lld/examples?face=0", (long long)g_alice);
  ASSERT_EQ(req("POST", path, "image/jpeg", s1, n, &j), 201);
  ASSERT_STREQ(json_string_value(json_object_get(j, "device")), "cpu");
  ASSERT_TRUE(json_is_object(json_object_get(j, "timings")));
  ASSERT_GE(jint(j, "example_id"), 1);
  json_decref(j);
  free(s1);

  size_t vn = 0;
  uint8_t *view = gg_ts_flipped_crop(VIEW_X, VIEW_Y, VIEW_W, VIEW_H, &vn);
  ASSERT_TRUE(view != NULL);
  ASSERT_EQ(req("POST", "/api/recognize?stream=door", "image/png", view, vn, &j), 200);
  ASSERT_STREQ(json_string_value(json_object_get(j, "device")), "cpu");
  ASSERT_EQ(json_array_size(json_object_get(j, "faces")), 1);
  ASSERT_EQ(first_known(j), g_alice);
  json_t *f = json_array_get(json_object_get(j, "faces"), 0);
  ASSERT_GE_F(json_real_value(json_object_get(f, "score")),
              json_real_value(json_object_get(f, "threshold")));
  ASSERT_GE(jint(f, "event_id"), 1);
  json_decref(j);
  free(view);

  /* Other people: nobody in sample2 or sample3 is alice. */
  for (int i = 2; i <= 3; i++) {
    char *s = sample(i, &n);
    ASSERT_EQ(req("POST", "/api/recognize?stream=hall", "image/jpeg", s, n, &j), 200);
    ASSERT_GE(json_array_size(json_object_get(j, "faces")), 3);
    ASSERT_EQ(first_known(j), 0);
    json_decref(j);
    free(s);
  }
}

static void test_verify(void) {
  size_t vn = 0;
  uint8_t *view = gg_ts_flipped_crop(VIEW_X, VIEW_Y, VIEW_W, VIEW_H, &vn);
  if (!view) SKIP("sample photos missing");
  size_t n2 = 0;
  char *s2 = sample(2, &n2);
  /* base64 both: the view and sample2 (its best face is someone else). */
  static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const uint8_t *src[2] = {view, (const uint8_t *)s2};
  size_t len[2] = {vn, n2};
  char *b64[2];
  for (int k = 0; k < 2; k++) {
    b64[k] = malloc(len[k] / 3 * 4 + 8);
    size_t o = 0;
    for (size_t i = 0; i < len[k]; i += 3) {
      uint32_t v = (uint32_t)src[k][i] << 16;
      if (i + 1 < len[k]) v |= (uint32_t)src[k][i + 1] << 8;
      if (i + 2 < len[k]) v |= src[k][i + 2];
      b64[k][o++] = tbl[(v >> 18) & 63];
      b64[k][o++] = tbl[(v >> 12) & 63];
      b64[k][o++] = i + 1 < len[k] ? tbl[(v >> 6) & 63] : '=';
      b64[k][o++] = i + 2 < len[k] ? tbl[v & 63] : '=';
    }
    b64[k][o] = 0;
  }
  size_t cap = strlen(b64[0]) * 2 + strlen(b64[1]) + 64;
  char *body = malloc(cap);
  json_t *j = NULL;
  snprintf(body, cap, "{\"image1\":\"%s\",\"image2\":\"%s\"}", b64[0], b64[0]);
  ASSERT_EQ(req_json("POST", "/api/verify", body, &j), 200);
  ASSERT_TRUE(json_is_true(json_object_get(j, "same")));
  ASSERT_NEAR(json_real_value(json_object_get(j, "similarity")), 1.0, 1e-3);
  ASSERT_STREQ(json_string_value(json_object_get(j, "device")), "cpu");
  json_decref(j);
  snprintf(body, cap, "{\"image1\":\"%s\",\"image2\":\"%s\"}", b64[0], b64[1]);
  ASSERT_EQ(req_json("POST", "/api/verify", body, &j), 200);
  ASSERT_TRUE(json_is_false(json_object_get(j, "same")));
  json_decref(j);
  ASSERT_EQ(req_json("POST", "/api/verify", "{\"image1\":\"!!\",\"image2\":\"AAAA\"}", &j), 400);
  ASSERT_STREQ(err_name(j), "bad_base64");
  json_decref(j);
  free(body);
  free(b64[0]);
  free(b64[1]);
  free(view);
  free(s2);
}

static void test_identities_crud(void) {
  json_t *j = NULL;
  ASSERT_EQ(req_json("POST", "/api/identities", "{\"name\":\"bob\"}", &j), 201);
  int64_t bob = jint(j, "id");
  json_decref(j);
  ASSERT_EQ(req_json("POST", "/api/identities", "{\"name\":\"bob\"}", &j), 409);
  ASSERT_EQ(jint(j, "id"), bob);
  json_decref(j);
  ASSERT_EQ(req_json("POST", "/api/identities", "{\"name\":\"carol\"}", &j), 201);
  int64_t carol = jint(j, "id");
  json_decref(j);
  ASSERT_EQ(req("GET", "/api/identities?limit=2", NULL, NULL, 0, &j), 200);
  ASSERT_EQ(jint(j, "total"), 3);
  ASSERT_EQ(json_array_size(json_object_get(j, "identities")), 2);
  json_decref(j);
  ASSERT_EQ(req("GET", "/api/identities?limit=2&offset=2", NULL, NULL, 0, &j), 200);
  ASSERT_EQ(json_array_size(json_object_get(j, "identities")), 1);
  json_decref(j);
  char path[128];
  snprintf(path, sizeof path, "/api/identities/%lld", (long long)bob);
  ASSERT_EQ(req_json("PATCH", path, "{\"name\":\"robert\"}", &j), 200);
  ASSERT_STREQ(json_string_value(json_object_get(j, "name")), "robert");
  ASSERT_TRUE(json_is_false(json_object_get(j, "merged")));
  json_decref(j);
  /* Renaming carol onto robert merges her into him. */
  snprintf(path, sizeof path, "/api/identities/%lld", (long long)carol);
  ASSERT_EQ(req_json("PATCH", path, "{\"name\":\"robert\"}", &j), 200);
  ASSERT_TRUE(json_is_true(json_object_get(j, "merged")));
  ASSERT_EQ(jint(j, "id"), bob);
  json_decref(j);
  ASSERT_EQ(req("GET", path, NULL, NULL, 0, &j), 404);
  json_decref(j);
  snprintf(path, sizeof path, "/api/identities/%lld", (long long)bob);
  ASSERT_EQ(req("DELETE", path, NULL, NULL, 0, &j), 200);
  json_decref(j);
  ASSERT_EQ(req("GET", path, NULL, NULL, 0, &j), 404);
  ASSERT_STREQ(err_name(j), "GG_ENOTFOUND");
  json_decref(j);
  ASSERT_EQ(req("GET", "/api/identities/abc", NULL, NULL, 0, &j), 400);
  json_decref(j);
  ASSERT_EQ(req("GET", "/api/identities", NULL, NULL, 0, &j), 200);
  ASSERT_EQ(jint(j, "total"), 1);
  json_decref(j);
}

static void test_events(void) {
  json_t *j = NULL;
  char path[128];
  snprintf(path, sizeof path, "/api/events?identity=%lld", (long long)g_alice);
  ASSERT_EQ(req("GET", path, NULL, NULL, 0, &j), 200);
  ASSERT_GE(jint(j, "total"), 1);
  json_t *ev = json_array_get(json_object_get(j, "events"), 0);
  ASSERT_EQ(jint(ev, "identity_id"), g_alice);
  ASSERT_STREQ(json_string_value(json_object_get(ev, "stream")), "door");
  ASSERT_STREQ(json_string_value(json_object_get(ev, "device")), "cpu");
  json_decref(j);
  ASSERT_EQ(req("GET", "/api/events?stream=hall&identity=unknown&limit=2", NULL, NULL, 0, &j), 200);
  ASSERT_GE(jint(j, "total"), 5);
  ASSERT_EQ(json_array_size(json_object_get(j, "events")), 2);
  json_decref(j);
  ASSERT_EQ(req("GET", "/api/events?since=99999999999999", NULL, NULL, 0, &j), 200);
  ASSERT_EQ(jint(j, "total"), 0);
  json_decref(j);
}

/* "Not this person": the view stops matching alice once it is her negative. */
static void test_negatives(void) {
  size_t vn = 0;
  uint8_t *view = gg_ts_flipped_crop(VIEW_X, VIEW_Y, VIEW_W, VIEW_H, &vn);
  if (!view) SKIP("sample photos missing");
  json_t *j = NULL;
  ASSERT_EQ(req("POST", "/api/recognize?no_events=1", "image/png", view, vn, &j), 200);
  ASSERT_EQ(first_known(j), g_alice);
  json_decref(j);
  char path[128];
  snprintf(path, sizeof path, "/api/identities/%lld/negatives", (long long)g_alice);
  ASSERT_EQ(req("POST", path, "image/png", view, vn, &j), 201);
  json_decref(j);
  ASSERT_EQ(req("GET", path, NULL, NULL, 0, &j), 200);
  ASSERT_EQ(jint(j, "total"), 1);
  json_decref(j);
  ASSERT_EQ(req("POST", "/api/recognize?no_events=1", "image/png", view, vn, &j), 200);
  ASSERT_EQ(first_known(j), 0);
  json_decref(j);
  /* Undone: the negative deleted, the view matches again. */
  ASSERT_EQ(req("GET", path, NULL, NULL, 0, &j), 200);
  int64_t nid = jint(json_array_get(json_object_get(j, "negatives"), 0), "id");
  json_decref(j);
  char del[160];
  snprintf(del, sizeof del, "%s/%lld", path, (long long)nid);
  ASSERT_EQ(req("DELETE", del, NULL, NULL, 0, &j), 200);
  json_decref(j);
  ASSERT_EQ(req("DELETE", del, NULL, NULL, 0, &j), 404);
  json_decref(j);
  ASSERT_EQ(req("POST", "/api/recognize?no_events=1", "image/png", view, vn, &j), 200);
  ASSERT_EQ(first_known(j), g_alice);
  json_decref(j);
  free(view);
}

/* ?stream=: the same view three times is one track whose voted identity
 * is the enrolled one; without a stream there is no track. */
static void test_stream_tracks(void) {
  size_t n = 0, vn = 0;
  json_t *j = NULL;
  if (!g_alice) { /* run alone: enroll alice from sample1's face 0 */
    char *s1 = sample(1, &n);
    if (!s1) SKIP("sample photos missing: run scripts/install.sh");
    ASSERT_EQ(req_json("POST", "/api/identities", "{\"name\":\"alice\"}", &j), 201);
    g_alice = jint(j, "id");
    json_decref(j);
    char path[128];
    snprintf(path, sizeof path, "/api/identities/%lld/examples?face=0", (long long)g_alice);
    ASSERT_EQ(req("POST", path, "image/jpeg", s1, n, &j), 201);
    json_decref(j);
    free(s1);
  }
  uint8_t *view = gg_ts_flipped_crop(VIEW_X, VIEW_Y, VIEW_W, VIEW_H, &vn);
  if (!view) SKIP("sample photos missing");
  int64_t track = 0;
  for (int k = 0; k < 3; k++) {
    ASSERT_EQ(req("POST", "/api/recognize?stream=s1&no_events=1", "image/png", view, vn, &j), 200);
    ASSERT_EQ(json_array_size(json_object_get(j, "faces")), 1);
    json_t *t = json_object_get(json_array_get(json_object_get(j, "faces"), 0), "track");
    ASSERT_TRUE(json_is_object(t));
    if (k == 0) track = jint(t, "id");
    ASSERT_GE(track, 1);
    ASSERT_EQ(jint(t, "id"), track);
    ASSERT_EQ(jint(t, "frames"), k + 1);
    ASSERT_EQ(jint(t, "votes"), k + 1);
    json_t *id = json_object_get(t, "identity");
    ASSERT_TRUE(json_is_object(id));
    ASSERT_EQ(jint(id, "id"), g_alice);
    ASSERT_STREQ(json_string_value(json_object_get(id, "name")), "alice");
    json_decref(j);
  }
  ASSERT_EQ(req("POST", "/api/recognize?no_events=1", "image/png", view, vn, &j), 200);
  ASSERT_TRUE(json_object_get(json_array_get(json_object_get(j, "faces"), 0), "track") == NULL);
  json_decref(j);
  /* GET /api/streams lists s1 with its one live track. */
  ASSERT_EQ(req("GET", "/api/streams", NULL, NULL, 0, &j), 200);
  json_t *st = json_object_get(j, "streams");
  int seen = 0;
  for (size_t i = 0; i < json_array_size(st); i++) {
    json_t *o = json_array_get(st, i);
    if (strcmp(json_string_value(json_object_get(o, "stream")), "s1")) continue;
    seen++;
    ASSERT_EQ(jint(o, "live_tracks"), 1);
    ASSERT_EQ(jint(o, "frames"), 3);
    ASSERT_GE(jint(o, "idle_ms"), 0);
  }
  ASSERT_EQ(seen, 1);
  json_decref(j);
  free(view);
}

static void test_examples_list_delete(void) {
  json_t *j = NULL;
  char path[128];
  snprintf(path, sizeof path, "/api/identities/%lld/examples", (long long)g_alice);
  ASSERT_EQ(req("GET", path, NULL, NULL, 0, &j), 200);
  ASSERT_EQ(jint(j, "total"), 1);
  json_t *ex = json_array_get(json_object_get(j, "examples"), 0);
  int64_t eid = jint(ex, "id");
  ASSERT_TRUE(json_is_true(json_object_get(ex, "has_crop")));
  json_decref(j);
  /* The stored crop: a JPEG of the face, served only under its identity. */
  snprintf(path, sizeof path, "/api/identities/%lld/examples/%lld/crop", (long long)g_alice,
           (long long)eid);
  g_raw_len = 0;
  ASSERT_EQ(req("GET", path, NULL, NULL, 0, NULL), 200);
  ASSERT_GE(g_raw_len, 1000);
  ASSERT_TRUE(g_raw[0] == 0xFF && g_raw[1] == 0xD8 && g_raw[2] == 0xFF);
  gg_image crop;
  char derr[128];
  ASSERT_OK(gg_image_decode(g_raw, g_raw_len, 0, &crop, derr, sizeof derr));
  ASSERT_EQ(crop.width, 160);
  ASSERT_EQ(crop.height, 160);
  gg_image_free(&crop);
  snprintf(path, sizeof path, "/api/identities/%lld/examples/%lld/crop", (long long)g_alice + 99,
           (long long)eid);
  ASSERT_EQ(req("GET", path, NULL, NULL, 0, &j), 404);
  json_decref(j);
  snprintf(path, sizeof path, "/api/identities/%lld/examples/%lld", (long long)g_alice,
           (long long)(eid + 1000));
  ASSERT_EQ(req("DELETE", path, NULL, NULL, 0, &j), 404);
  json_decref(j);
  snprintf(path, sizeof path, "/api/identities/%lld/examples/%lld", (long long)g_alice,
           (long long)eid);
  ASSERT_EQ(req("DELETE", path, NULL, NULL, 0, &j), 200);
  json_decref(j);
  snprintf(path, sizeof path, "/api/identities/%lld", (long long)g_alice);
  ASSERT_EQ(req("GET", path, NULL, NULL, 0, &j), 200);
  ASSERT_EQ(jint(j, "examples"), 0);
  json_decref(j);
}

static void test_bad_uploads(void) {
  json_t *j = NULL;
  char path[128];
  snprintf(path, sizeof path, "/api/identities/%lld/examples", (long long)g_alice);
  const char *routes[] = {"/api/recognize", "/api/faces/detect", "/api/detect", path};
  for (int r = 0; r < 4; r++) {
    ASSERT_EQ(req("POST", routes[r], "image/jpeg", "\xff\xd8garbage", 9, &j), 400);
    ASSERT_STREQ(err_name(j), "undecodable_image");
    ASSERT_EQ(jint(json_object_get(j, "error"), "code"), 400);
    json_decref(j);
    ASSERT_EQ(req("POST", routes[r], "image/jpeg", "", 0, &j), 400);
    ASSERT_STREQ(err_name(j), "empty_body");
    json_decref(j);
    ASSERT_EQ(req("POST", routes[r], "text/plain", "hello", 5, &j), 415);
    ASSERT_STREQ(err_name(j), "unsupported_media_type");
    json_decref(j);
  }
  /* A grey picture: no face to enroll, none recognised. */
  int w = 320, h = 240;
  uint8_t *grey = malloc((size_t)w * (size_t)h * 3);
  memset(grey, 128, (size_t)w * (size_t)h * 3);
  size_t pn = 0;
  uint8_t *png = gg_ts_png_encode(grey, w, h, &pn);
  free(grey);
  ASSERT_EQ(req("POST", path, "image/png", png, pn, &j), 422);
  ASSERT_STREQ(err_name(j), "no_face");
  json_decref(j);
  ASSERT_EQ(req("POST", "/api/recognize", "image/png", png, pn, &j), 200);
  ASSERT_EQ(json_array_size(json_object_get(j, "faces")), 0);
  json_decref(j);
  ASSERT_EQ(req("POST", "/api/faces/detect?liveness=1", "image/png", png, pn, &j), 200);
  ASSERT_EQ(json_array_size(json_object_get(j, "faces")), 0);
  json_decref(j);
  free(png);
  ASSERT_EQ(req("POST", "/api/identities", "text/plain", "{\"name\":\"x\"}", 12, &j), 415);
  json_decref(j);
  ASSERT_EQ(req_json("POST", "/api/identities", "{\"nom\":\"x\"}", &j), 400);
  ASSERT_STREQ(err_name(j), "missing_field");
  json_decref(j);
}

static void test_detect_objects(void) {
  size_t n = 0;
  char *s = sample(1, &n);
  if (!s) SKIP("sample photos missing");
  json_t *j = NULL;
  ASSERT_EQ(req("POST", "/api/detect", "image/jpeg", s, n, &j), 200);
  free(s);
  ASSERT_STREQ(json_string_value(json_object_get(j, "device")), "cpu");
  json_t *objs = json_object_get(j, "objects");
  ASSERT_GE(json_array_size(objs), 3);
  ASSERT_STREQ(json_string_value(json_object_get(json_array_get(objs, 0), "label")), "person");
  json_decref(j);
}

/* With an API key configured, a mutating route without it is refused. */
static void test_key_required(void) {
  stop_server();
  const char *extra[] = {"--api-key", API_KEY, NULL};
  ASSERT_EQ(start_server(extra), 0);
  json_t *j = NULL;
  ASSERT_EQ(req_json("POST", "/api/identities", "{\"name\":\"eve\"}", &j), 401);
  ASSERT_EQ(jint(json_object_get(j, "error"), "code"), 401);
  json_decref(j);
  ASSERT_EQ(req("DELETE", "/api/identities/1", NULL, NULL, 0, &j), 401);
  json_decref(j);
  ASSERT_EQ(req("GET", "/api/identities", NULL, NULL, 0, &j), 200);
  json_decref(j);
  g_key = API_KEY;
  ASSERT_EQ(req_json("POST", "/api/identities", "{\"name\":\"eve\"}", &j), 201);
  json_decref(j);
  g_key = NULL;
}

/* Strict mode: a primary that fails (every sim allocation) falls back to
 * the CPU, which the response says; ?strict=1 refuses with 503 instead. */
static void test_strict_mode(void) {
  size_t n = 0;
  char *s = sample(1, &n);
  if (!s) SKIP("sample photos missing");
  stop_server();
  const char *extra[] = {"--device",   "sim:mem=4560M", "--faults",         "oom%1",
                         "--fallback", "cpu",           "--insecure-local", NULL};
  ASSERT_EQ(start_server(extra), 0);
  json_t *j = NULL;
  ASSERT_EQ(req("POST", "/api/faces/detect", "image/jpeg", s, n, &j), 200);
  ASSERT_STREQ(json_string_value(json_object_get(j, "device")), "cpu");
  json_decref(j);
  ASSERT_EQ(req("POST", "/api/faces/detect?strict=1", "image/jpeg", s, n, &j), 503);
  ASSERT_STREQ(err_name(j), "fallback_refused");
  json_decref(j);
  ASSERT_EQ(req("POST", "/api/detect?strict=1", "image/jpeg", s, n, &j), 503);
  json_decref(j);
  /* the server-wide flag: strict unless a request says ?strict=0 */
  stop_server();
  const char *strict_extra[] = {"--device",         "sim:mem=4560M", "--faults", "oom%1",
                                "--fallback",       "cpu",           "--strict",
                                "--insecure-local", NULL};
  ASSERT_EQ(start_server(strict_extra), 0);
  ASSERT_EQ(req("POST", "/api/faces/detect", "image/jpeg", s, n, &j), 503);
  ASSERT_STREQ(err_name(j), "fallback_refused");
  json_decref(j);
  ASSERT_EQ(req("POST", "/api/faces/detect?strict=0", "image/jpeg", s, n, &j), 200);
  ASSERT_STREQ(json_string_value(json_object_get(j, "device")), "cpu");
  json_decref(j);
  free(s);
}

/* The server SIGKILLed while it enrolls: after a restart on the same data
 * dir, what was committed before is intact and the interrupted example is
 * either stored whole or absent (each request is one transaction). Two
 * kill points: early (decoding, models) and later (the write). */
static void test_kill_mid_enrollment(void) {
  size_t n = 0;
  char *s = sample(1, &n);
  if (!s) SKIP("sample photos missing");
  char data[64] = "/tmp/gg-test-kill-XXXXXX";
  ASSERT_TRUE(mkdtemp(data) != NULL);
  const char *extra[] = {"--insecure-local", "--data-dir", data, NULL};
  stop_server();
  ASSERT_EQ(start_server(extra), 0);
  json_t *j = NULL;
  ASSERT_EQ(req_json("POST", "/api/identities", "{\"name\":\"kept\"}", &j), 201);
  int64_t kept = jint(j, "id");
  json_decref(j);
  char path[160];
  snprintf(path, sizeof path, "/api/identities/%lld/examples?face=0", (long long)kept);
  ASSERT_EQ(req("POST", path, "image/jpeg", s, n, &j), 201);
  json_decref(j);
  static const int k_delay_ms[] = {30, 1200};
  for (int round = 0; round < 2; round++) {
    char body[64];
    snprintf(body, sizeof body, "{\"name\":\"victim%d\"}", round);
    ASSERT_EQ(req_json("POST", "/api/identities", body, &j), 201);
    int64_t victim = jint(j, "id");
    json_decref(j);
    snprintf(path, sizeof path, "/api/identities/%lld/examples?face=1", (long long)victim);
    pid_t child = fork();
    if (child == 0) {
      for (int i = 0; i < 5; i++) req("POST", path, "image/jpeg", s, n, NULL);
      _exit(0);
    }
    usleep((useconds_t)k_delay_ms[round] * 1000);
    kill(g_srv.pid, SIGKILL);
    int st = 0;
    waitpid(g_srv.pid, &st, 0);
    g_srv.pid = -1;
    gg_ts_stop(&g_srv, 1); /* its port-file folder */
    kill(child, SIGKILL);
    waitpid(child, &st, 0);
    ASSERT_EQ(start_server(extra), 0);
    snprintf(path, sizeof path, "/api/identities/%lld", (long long)kept);
    ASSERT_EQ(req("GET", path, NULL, NULL, 0, &j), 200);
    ASSERT_EQ(jint(j, "examples"), 1);
    json_decref(j);
    snprintf(path, sizeof path, "/api/identities/%lld/examples", (long long)victim);
    ASSERT_EQ(req("GET", path, NULL, NULL, 0, &j), 200);
    int64_t got = jint(j, "total");
    json_t *ex = json_object_get(j, "examples");
    ASSERT_TRUE(got >= 0 && got <= 5);
    ASSERT_EQ((int64_t)json_array_size(ex), got);
    json_decref(j);
    /* the identity's own count agrees with its stored examples */
    snprintf(path, sizeof path, "/api/identities/%lld", (long long)victim);
    ASSERT_EQ(req("GET", path, NULL, NULL, 0, &j), 200);
    ASSERT_EQ(jint(j, "examples"), got);
    json_decref(j);
    fprintf(stderr, "  kill after %d ms: the interrupted identity has %lld whole example(s)\n",
            k_delay_ms[round], (long long)got);
  }
  /* the database opens cleanly and recognition still works */
  ASSERT_EQ(req("POST", "/api/recognize?no_events=1", "image/jpeg", s, n, &j), 200);
  json_decref(j);
  stop_server();
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", data);
  ASSERT_EQ(system(cmd), 0);
  free(s);
}

/* --stream-rate: a stream over its rate gets 429 with Retry-After before
 * any model runs; another stream, and a request without one, still pass. */
static void test_stream_rate(void) {
  size_t n = 0;
  char *s = sample(1, &n);
  if (!s) SKIP("sample photos missing");
  stop_server();
  const char *extra[] = {"--insecure-local", "--stream-rate", "0.05", NULL};
  ASSERT_EQ(start_server(extra), 0);
  json_t *j = NULL;
  ASSERT_EQ(req("POST", "/api/recognize?stream=cam1&no_events=1", "image/jpeg", s, n, &j), 200);
  json_decref(j);
  ASSERT_EQ(req("POST", "/api/recognize?stream=cam1&no_events=1", "image/jpeg", s, n, &j), 429);
  ASSERT_STREQ(err_name(j), "rate_limited");
  json_decref(j);
  if (!g_retry_after[0]) GG_T_FAIL("a 429 without a Retry-After header");
  ASSERT_EQ(req("POST", "/api/recognize?stream=cam2&no_events=1", "image/jpeg", s, n, &j), 200);
  json_decref(j);
  ASSERT_EQ(req("POST", "/api/recognize?no_events=1", "image/jpeg", s, n, &j), 200);
  json_decref(j);
  free(s);
}

/* Every face of the six sample photos enrolled as its own identity: each
 * photo recognised again finds exactly its own faces, no face takes
 * another's name (no two distinct faces match at the default threshold). */
static void test_distinct_faces(void) {
  size_t n = 0;
  char *s = sample(1, &n);
  if (!s) SKIP("sample photos missing");
  free(s);
  stop_server();
  const char *extra[] = {"--insecure-local", NULL};
  ASSERT_EQ(start_server(extra), 0);
  int enrolled[7] = {0}, total = 0;
  for (int i = 1; i <= 6; i++) {
    s = sample(i, &n);
    for (int f = 0; f < 8; f++) {
      char body[64], path[128];
      json_t *j = NULL;
      snprintf(body, sizeof body, "{\"name\":\"s%d-f%d\"}", i, f);
      ASSERT_EQ(req_json("POST", "/api/identities", body, &j), 201);
      int64_t id = jint(j, "id");
      json_decref(j);
      snprintf(path, sizeof path, "/api/identities/%lld/examples?face=%d", (long long)id, f);
      long st = req("POST", path, "image/jpeg", s, n, &j);
      const char *name = st == 422 ? err_name(j) : NULL;
      int last = name && !strcmp(name, "no_such_face");
      json_decref(j);
      if (st == 201) {
        enrolled[i]++;
        total++;
      } else {
        ASSERT_EQ(st, 422); /* refused by the strict gate, or past the last face */
        snprintf(path, sizeof path, "/api/identities/%lld", (long long)id);
        ASSERT_EQ(req("DELETE", path, NULL, NULL, 0, NULL), 200);
      }
      if (last) break;
    }
    free(s);
  }
  fprintf(stderr, "  enrolled %d faces of the 6 photos\n", total);
  ASSERT_GE(total, 18);
  for (int i = 1; i <= 6; i++) {
    s = sample(i, &n);
    json_t *j = NULL;
    ASSERT_EQ(req("POST", "/api/recognize?no_events=1", "image/jpeg", s, n, &j), 200);
    free(s);
    json_t *faces = json_object_get(j, "faces");
    int known = 0;
    char seen[GG_T_SEEN_MAX][32];
    for (size_t k = 0; k < json_array_size(faces); k++) {
      json_t *id = json_object_get(json_array_get(faces, k), "identity");
      if (!json_is_object(id)) continue;
      const char *name = json_string_value(json_object_get(id, "name"));
      char prefix[16];
      snprintf(prefix, sizeof prefix, "s%d-", i);
      ASSERT_TRUE(strncmp(name, prefix, strlen(prefix)) == 0);
      for (int m = 0; m < known; m++)
        ASSERT_TRUE(strcmp(seen[m], name) != 0);
      if (known < GG_T_SEEN_MAX) snprintf(seen[known], sizeof seen[known], "%s", name);
      known++;
    }
    ASSERT_EQ(known, enrolled[i]);
    json_decref(j);
  }
}

/* ?liveness=1: the anti-spoofing pair runs through the guard on every face
 * that passes the gate, and only then. */
static void test_liveness(void) {
  size_t n = 0;
  char *s = sample(2, &n);
  if (!s) SKIP("sample photos missing");
  json_t *j = NULL;
  ASSERT_EQ(req("POST", "/api/faces/detect?liveness=1", "image/jpeg", s, n, &j), 200);
  json_t *faces = json_object_get(j, "faces");
  int with = 0;
  for (size_t i = 0; i < json_array_size(faces); i++) {
    json_t *f = json_array_get(faces, i);
    json_t *lv = json_object_get(f, "liveness");
    int passed = json_is_true(json_object_get(json_object_get(f, "quality"), "passed"));
    ASSERT_EQ(lv != NULL, passed);
    if (!lv) continue;
    with++;
    for (int k = 0; k < 2; k++) {
      double v = json_real_value(json_object_get(lv, k ? "liveness" : "antispoof"));
      ASSERT_GE_F(v, 0.0);
      ASSERT_LE_F(v, 1.0);
    }
  }
  ASSERT_GE(with, 1);
  ASSERT_GE(json_integer_value(json_object_get(json_object_get(j, "timings"), "model_runs")),
            2 + 2 * with);
  json_decref(j);
  /* Without the option nothing of it runs. */
  ASSERT_EQ(req("POST", "/api/faces/detect", "image/jpeg", s, n, &j), 200);
  ASSERT_TRUE(json_object_get(json_array_get(json_object_get(j, "faces"), 0), "liveness") == NULL);
  json_decref(j);
  free(s);
}

/* Counts the anonymous identities of a recognize response; writes their
 * ids (up to cap) into ids. Fails on a face reported as known. */
static int anon_faces(json_t *j, int64_t *ids, int cap) {
  int n = 0;
  json_t *faces = json_object_get(j, "faces");
  for (size_t i = 0; i < json_array_size(faces); i++) {
    json_t *f = json_array_get(faces, i);
    json_t *id = json_object_get(f, "identity");
    if (!json_is_object(id)) continue;
    if (!json_is_true(json_object_get(id, "anonymous"))) continue;
    if (json_is_true(json_object_get(f, "known"))) return -1;
    if (strncmp(json_string_value(json_object_get(id, "name")), "unknown-", 8)) return -1;
    if (n < cap) ids[n] = jint(id, "id");
    n++;
  }
  return n;
}

/* --cluster-unknowns: strangers become persistent anonymous identities
 * (the same ones when seen again), never "known"; naming one makes it a
 * person. Off by default: the earlier cases created none. */
static void test_cluster_unknowns(void) {
  size_t n = 0;
  char *s = sample(2, &n);
  if (!s) SKIP("sample photos missing");
  json_t *j = NULL;
  ASSERT_EQ(req("GET", "/api/identities?limit=1000", NULL, NULL, 0, &j), 200);
  json_t *list = json_object_get(j, "identities");
  for (size_t i = 0; i < json_array_size(list); i++)
    ASSERT_TRUE(strncmp(json_string_value(json_object_get(json_array_get(list, i), "name")),
                        "unknown-", 8) != 0);
  json_decref(j);
  stop_server();
  const char *extra[] = {"--insecure-local", "--cluster-unknowns", NULL};
  ASSERT_EQ(start_server(extra), 0);
  int64_t first[8], again[8];
  ASSERT_EQ(req("POST", "/api/recognize?stream=lobby", "image/jpeg", s, n, &j), 200);
  int na = anon_faces(j, first, 8);
  json_decref(j);
  ASSERT_GE(na, 2);
  ASSERT_EQ(req("GET", "/api/identities", NULL, NULL, 0, &j), 200);
  ASSERT_EQ(jint(j, "total"), na);
  json_decref(j);
  /* Seen again: the same anonymous identities, no new ones. */
  ASSERT_EQ(req("POST", "/api/recognize?stream=lobby", "image/jpeg", s, n, &j), 200);
  ASSERT_EQ(anon_faces(j, again, 8), na);
  json_decref(j);
  for (int i = 0; i < na && i < 8; i++)
    ASSERT_EQ(again[i], first[i]);
  ASSERT_EQ(req("GET", "/api/identities", NULL, NULL, 0, &j), 200);
  ASSERT_EQ(jint(j, "total"), na);
  json_decref(j);
  /* Named, the stranger is a person from then on. */
  char path[128];
  snprintf(path, sizeof path, "/api/identities/%lld", (long long)first[0]);
  ASSERT_EQ(req_json("PATCH", path, "{\"name\":\"carol\"}", &j), 200);
  json_decref(j);
  ASSERT_EQ(req("POST", "/api/recognize", "image/jpeg", s, n, &j), 200);
  ASSERT_EQ(anon_faces(j, again, 8), na - 1);
  int carol = 0;
  json_t *faces = json_object_get(j, "faces");
  for (size_t i = 0; i < json_array_size(faces); i++) {
    json_t *f = json_array_get(faces, i);
    json_t *id = json_object_get(f, "identity");
    if (json_is_object(id) && jint(id, "id") == first[0]) {
      ASSERT_STREQ(json_string_value(json_object_get(id, "name")), "carol");
      ASSERT_TRUE(json_is_true(json_object_get(f, "known")));
      carol++;
    }
  }
  ASSERT_EQ(carol, 1);
  json_decref(j);
  free(s);
}

int main(int argc, char **argv) {
  signal(SIGPIPE, SIG_IGN);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  const char *extra[] = {"--insecure-local", NULL};
  if (start_server(extra) != 0) {
    fprintf(stderr, "could not start %s serve\n", GG_BIN);
    printf("0 passed, 1 failed, 0 skipped\n");
    return 1;
  }
  /* In order: later cases use what earlier ones enrolled. */
  static const gg_test_case cases[] = {
      {"enroll_and_recognise", test_enroll_and_recognise},
      {"verify", test_verify},
      {"identities_crud", test_identities_crud},
      {"events", test_events},
      {"negatives", test_negatives},
      {"stream_tracks", test_stream_tracks},
      {"examples_list_delete", test_examples_list_delete},
      {"bad_uploads", test_bad_uploads},
      {"detect_objects", test_detect_objects},
      {"key_required", test_key_required},
      {"strict_mode", test_strict_mode},
      {"stream_rate", test_stream_rate},
      {"kill_mid_enrollment", test_kill_mid_enrollment},
      {"distinct_faces", test_distinct_faces},
      {"liveness", test_liveness},
      {"cluster_unknowns", test_cluster_unknowns},
      {0},
  };
  int rc = gg_test_main(argc, argv, cases);
  stop_server();
  free(g_raw);
  curl_global_cleanup();
  return rc;
}
