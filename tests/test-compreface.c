/* The CompreFace-compatible routes: the multipart reader on its own, then
 * the real `gpuguard serve` driven the way CompreFace's documentation and
 * SDKs do (curl -F file=@photo.jpg, the x-api-key header). */
#include "gpuguard/error.h"
#include "server-util.h"
#include "server/multipart.h"
#include "test.h"

#include <curl/curl.h>
#include <jansson.h>
#include <signal.h>
#include <sys/wait.h>
#include <turbojpeg.h>
#include <unistd.h>

/* ---- the multipart reader ------------------------------------------------- */

#define CT "multipart/form-data; boundary=XyZ123"

static const char GOOD[] = "--XyZ123\r\n"
                           "Content-Disposition: form-data; name=\"file\"; filename=\"a.jpg\"\r\n"
                           "Content-Type: image/jpeg\r\n"
                           "\r\n"
                           "\xff\xd8\xff\r\n--XyZ-not-the-end\r\n"
                           "\r\n--XyZ123--\r\n";

static int find(const char *body, size_t len, const char *ct, size_t max, const void **d,
                size_t *n) {
  char err[256] = "";
  int rc = gg__multipart_find(body, len, ct, "file", max, d, n, err, sizeof err);
  if (rc && !err[0]) return 9999; /* every refusal says why */
  return rc;
}

static void test_multipart_good(void) {
  const void *d = NULL;
  size_t n = 0;
  ASSERT_EQ(find(GOOD, sizeof GOOD - 1, CT, 0, &d, &n), 0);
  /* The data runs to the CRLF before the real delimiter; a line that only
   * starts like the boundary is data. */
  const char want[] = "\xff\xd8\xff\r\n--XyZ-not-the-end\r\n";
  ASSERT_EQ(n, sizeof want - 1);
  ASSERT_TRUE(memcmp(d, want, n) == 0);
  /* Quoted boundary, a preamble, an unquoted name, other parameters. */
  const char b2[] = "preamble\r\n--a b\r\nContent-Disposition: form-data; name=file\r\n\r\nXY\r\n"
                    "--a b--";
  ASSERT_EQ(find(b2, sizeof b2 - 1, "Multipart/Form-Data; charset=x; boundary=\"a b\"", 0, &d, &n),
            0);
  ASSERT_EQ(n, 2);
  ASSERT_TRUE(memcmp(d, "XY", 2) == 0);
  ASSERT_EQ(gg__multipart_is_form("multipart/form-datax"), 0);
  ASSERT_EQ(gg__multipart_is_form(NULL), 0);
}

static void test_multipart_missing_boundary(void) {
  const void *d;
  size_t n;
  ASSERT_EQ(find(GOOD, sizeof GOOD - 1, "multipart/form-data", 0, &d, &n), GG_EPARSE);
  ASSERT_EQ(find(GOOD, sizeof GOOD - 1, "multipart/form-data; boundary=", 0, &d, &n), GG_EPARSE);
  ASSERT_EQ(find(GOOD, sizeof GOOD - 1, "multipart/form-data; boundary=\"XyZ123", 0, &d, &n),
            GG_EPARSE);
  ASSERT_EQ(find(GOOD, sizeof GOOD - 1, "application/json", 0, &d, &n), GG_EPARSE);
  ASSERT_EQ(find(GOOD, sizeof GOOD - 1, NULL, 0, &d, &n), GG_EPARSE);
  char longb[128] = "multipart/form-data; boundary=";
  memset(longb + strlen(longb), 'a', 71);
  ASSERT_EQ(find(GOOD, sizeof GOOD - 1, longb, 0, &d, &n), GG_EPARSE);
  /* A boundary the body does not contain. */
  ASSERT_EQ(find(GOOD, sizeof GOOD - 1, "multipart/form-data; boundary=other", 0, &d, &n),
            GG_EPARSE);
}

static void test_multipart_truncated(void) {
  /* Every proper prefix of a good body is refused, never read past. Each
   * prefix is copied into a buffer of exactly its size (ASan sees overreads). */
  size_t full = sizeof GOOD - 1;
  for (size_t len = 0; len < full - 2; len++) {
    char *b = malloc(len ? len : 1);
    memcpy(b, GOOD, len);
    const void *d;
    size_t n;
    int rc = find(b, len, CT, 0, &d, &n);
    free(b);
    if (rc != GG_EPARSE) GG_T_FAIL("prefix of %zu bytes: %d, expected GG_EPARSE", len, rc);
  }
  /* Headers that never end within the limit. */
  size_t big = GG_MULTIPART_HEADERS_MAX + 100;
  char *b = malloc(big + 64);
  int k = snprintf(b, 64, "--XyZ123\r\nX: ");
  memset(b + k, 'h', big);
  memcpy(b + k + big, "\r\n\r\nD\r\n--XyZ123--", 17);
  const void *d;
  size_t n;
  ASSERT_EQ(find(b, (size_t)k + big + 17, CT, 0, &d, &n), GG_EPARSE);
  free(b);
}

static void test_multipart_oversized(void) {
  const void *d;
  size_t n;
  size_t data = sizeof "\xff\xd8\xff\r\n--XyZ-not-the-end\r\n" - 1;
  ASSERT_EQ(find(GOOD, sizeof GOOD - 1, CT, data, &d, &n), 0);
  ASSERT_EQ(find(GOOD, sizeof GOOD - 1, CT, data - 1, &d, &n), GG_ETOO_LARGE);
  /* More parts than allowed. */
  char body[4096];
  size_t len = 0;
  for (int i = 0; i <= GG_MULTIPART_PARTS_MAX; i++)
    len += (size_t)snprintf(body + len, sizeof body - len,
                            "--XyZ123\r\nContent-Disposition: form-data; name=\"f%d\"\r\n\r\nx\r\n",
                            i);
  len += (size_t)snprintf(body + len, sizeof body - len, "--XyZ123--\r\n");
  ASSERT_EQ(find(body, len, CT, 0, &d, &n), GG_EPARSE);
}

static void test_multipart_two_parts(void) {
  const char other[] =
      "--XyZ123\r\nContent-Disposition: form-data; name=\"det_prob\"\r\n\r\n0.5\r\n"
      "--XyZ123\r\nContent-Disposition: form-data; name=\"file\"; "
      "filename=\"f\"\r\n\r\nIMG\r\n--XyZ123--\r\n";
  const void *d;
  size_t n;
  ASSERT_EQ(find(other, sizeof other - 1, CT, 0, &d, &n), 0);
  ASSERT_EQ(n, 3);
  ASSERT_TRUE(memcmp(d, "IMG", 3) == 0);
  const char twice[] = "--XyZ123\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nA\r\n"
                       "--XyZ123\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nB\r\n"
                       "--XyZ123--\r\n";
  ASSERT_EQ(find(twice, sizeof twice - 1, CT, 0, &d, &n), GG_EPARSE);
  const char none[] = "--XyZ123\r\nContent-Disposition: form-data; name=\"files\"\r\n\r\nA\r\n"
                      "--XyZ123--\r\n";
  ASSERT_EQ(find(none, sizeof none - 1, CT, 0, &d, &n), GG_ENOTFOUND);
}

/* Random bytes around a valid skeleton: never a crash, always an answer. */
static void test_multipart_garbage(void) {
  unsigned s = 12345;
  char b[256];
  for (int it = 0; it < 20000; it++) {
    size_t len = sizeof GOOD - 1;
    memcpy(b, GOOD, len);
    for (int k = 0; k < 4; k++) {
      s = s * 1103515245u + 12345u;
      b[(s >> 8) % len] = "\r\n-\"=;XyZ123 a"[(s >> 20) % 14];
    }
    s = s * 1103515245u + 12345u;
    len -= (s >> 16) % 8;
    const void *d = NULL;
    size_t n = 0;
    char err[256];
    int rc = gg__multipart_find(b, len, CT, "file", 0, &d, &n, err, sizeof err);
    if (rc == 0) ASSERT_TRUE((const char *)d >= b && (const char *)d + n <= b + len);
  }
}

/* ---- the server ------------------------------------------------------------ */

#define KEY "cf-test-key-0123456789abcdef"

static gg_ts_server g_srv = GG_TS_NONE;
static int g_failed_start;

static char g_sample[1024];

static int sample(int i) {
  char rel[128];
  snprintf(rel, sizeof rel, "models/face-api-1.7.15/demo/sample%d.jpg", i);
  gg_t_cache_path(g_sample, sizeof g_sample, rel);
  return access(g_sample, R_OK) == 0;
}

static int server_up(void) {
  if (g_srv.pid > 0) return 1;
  if (g_failed_start) return 0;
  gg_ts_stop(&g_srv, 1); /* the folder of a start that failed */
  static const char *const args[] = {"--device", "cpu", "--insecure-local", "--api-key", KEY, NULL};
  g_failed_start = gg_ts_start(&g_srv, "test-cf", 1, args, 60) != 0;
  return !g_failed_start;
}

/* Size and first bytes of the last response body. */
static size_t g_last_len;
static unsigned char g_last_head[4];

/* One request. file_field/file_path: a multipart upload as curl -F
 * field=@path sends it (two fields when field2 is set). key NULL: no
 * x-api-key header. Returns the status; the body parsed into *out (NULL when
 * not JSON; json_decref it). */
static long call(const char *method, const char *path, const char *key, const char *json_body,
                 const char *field, const char *file, const char *field2, const char *file2,
                 json_t **out) {
  CURL *c = curl_easy_init();
  struct curl_slist *h = NULL;
  char kh[128];
  if (key) {
    snprintf(kh, sizeof kh, "x-api-key: %s", key);
    h = curl_slist_append(h, kh);
  }
  if (json_body) {
    h = curl_slist_append(h, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, json_body);
  }
  curl_mime *mime = NULL;
  if (field) {
    mime = curl_mime_init(c);
    curl_mimepart *p = curl_mime_addpart(mime);
    curl_mime_name(p, field);
    curl_mime_filedata(p, file);
    if (field2) {
      p = curl_mime_addpart(mime);
      curl_mime_name(p, field2);
      curl_mime_filedata(p, file2);
    }
    curl_easy_setopt(c, CURLOPT_MIMEPOST, mime);
  }
  char url[512];
  snprintf(url, sizeof url, "http://127.0.0.1:%d%s", g_srv.port, path);
  gg_ts_buf b = {0};
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, gg_ts_on_data);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
  long status = -1;
  if (curl_easy_perform(c) == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  curl_mime_free(mime);
  curl_slist_free_all(h);
  curl_easy_cleanup(c);
  g_last_len = b.n;
  memset(g_last_head, 0, sizeof g_last_head);
  if (b.p) memcpy(g_last_head, b.p, b.n < 4 ? b.n : 4);
  if (out) *out = b.p ? json_loads(b.p, 0, NULL) : NULL;
  if (status >= 400 && getenv("GG_T_VERBOSE"))
    fprintf(stderr, "  %s %s -> %ld %s\n", method, path, status, b.p ? b.p : "");
  free(b.p);
  return status;
}

/* sample1.jpg mirrored left-right, losslessly (a view the gallery never
 * saw), written to dst. */
static int write_flipped(const char *src, const char *dst) {
  FILE *f = fopen(src, "rb");
  if (!f) return -1;
  static unsigned char in[8 << 20];
  size_t n = fread(in, 1, sizeof in, f);
  fclose(f);
  tjhandle t = tjInitTransform();
  unsigned char *outb = NULL;
  unsigned long outn = 0;
  tjtransform x = {.op = TJXOP_HFLIP, .options = TJXOPT_TRIM};
  int bad = tjTransform(t, in, n, 1, &outb, &outn, &x, 0);
  tjDestroy(t);
  if (bad) return -1;
  f = fopen(dst, "wb");
  int ok = f && fwrite(outb, 1, outn, f) == outn;
  if (f) fclose(f);
  tjFree(outb);
  return ok ? 0 : -1;
}

#define NEED_SERVER()                                                                              \
  do {                                                                                             \
    if (!sample(1) || !sample(2))                                                                  \
      SKIP("sample photos not fetched (%s); run scripts/fetch-models.sh", g_sample);               \
    if (!server_up()) GG_T_FAIL("gpuguard serve did not start");                                   \
  } while (0)

static double top_similarity(json_t *face, const char **subject) {
  json_t *s = json_array_get(json_object_get(face, "subjects"), 0);
  *subject = s ? json_string_value(json_object_get(s, "subject")) : NULL;
  return s ? json_real_value(json_object_get(s, "similarity")) : 0.0;
}

static void test_e2e_enroll_recognize(void) {
  NEED_SERVER();
  json_t *j = NULL;
  ASSERT_EQ(call("POST", "/api/v1/recognition/subjects", KEY, "{\"subject\":\"alice\"}", NULL, NULL,
                 NULL, NULL, &j),
            201);
  ASSERT_STREQ(json_string_value(json_object_get(j, "subject")), "alice");
  json_decref(j);
  sample(1);
  char s1[1024];
  snprintf(s1, sizeof s1, "%s", g_sample);
  /* Exactly as CompreFace's docs: curl -X POST ".../faces?subject=alice"
   * -H "x-api-key: KEY" -F file=@sample1.jpg */
  ASSERT_EQ(call("POST", "/api/v1/recognition/faces?subject=alice", KEY, NULL, "file", s1, NULL,
                 NULL, &j),
            201);
  ASSERT_STREQ(json_string_value(json_object_get(j, "subject")), "alice");
  ASSERT_TRUE(json_is_string(json_object_get(j, "image_id")));
  /* The example's image (the stored face crop, a JPEG). */
  char img_path[128];
  snprintf(img_path, sizeof img_path, "/api/v1/recognition/faces/%s/img",
           json_string_value(json_object_get(j, "image_id")));
  json_decref(j);
  ASSERT_EQ(call("GET", img_path, KEY, NULL, NULL, NULL, NULL, NULL, NULL), 200);
  ASSERT_GE(g_last_len, 1000);
  ASSERT_TRUE(g_last_head[0] == 0xFF && g_last_head[1] == 0xD8 && g_last_head[2] == 0xFF);
  ASSERT_EQ(
      call("GET", "/api/v1/recognition/faces/999999/img", KEY, NULL, NULL, NULL, NULL, NULL, NULL),
      404);

  char flipped[128];
  snprintf(flipped, sizeof flipped, "%s/flipped.jpg", g_srv.dir);
  ASSERT_EQ(write_flipped(s1, flipped), 0);
  ASSERT_EQ(call("POST", "/api/v1/recognition/recognize?limit=0&prediction_count=1", KEY, NULL,
                 "file", flipped, NULL, NULL, &j),
            200);
  json_t *res = json_object_get(j, "result");
  ASSERT_GE(json_array_size(res), 2);
  /* Faces come largest first: the enrolled one. */
  const char *who = NULL;
  double sim = top_similarity(json_array_get(res, 0), &who);
  ASSERT_TRUE(who && !strcmp(who, "alice"));
  ASSERT_GE_F(sim, 0.74);
  json_t *box = json_object_get(json_array_get(res, 0), "box");
  ASSERT_TRUE(json_is_integer(json_object_get(box, "x_max")));
  ASSERT_TRUE(json_is_real(json_object_get(box, "probability")));
  /* The other people in the photo are unknown: below the threshold. */
  for (size_t i = 1; i < json_array_size(res); i++) {
    double other = top_similarity(json_array_get(res, i), &who);
    ASSERT_LT_F(other, 0.74);
  }
  json_decref(j);
  /* A different photo: nobody in it is alice. */
  sample(2);
  ASSERT_EQ(
      call("POST", "/api/v1/recognition/recognize", KEY, NULL, "file", g_sample, NULL, NULL, &j),
      200);
  res = json_object_get(j, "result");
  ASSERT_GE(json_array_size(res), 1);
  for (size_t i = 0; i < json_array_size(res); i++)
    ASSERT_LT_F(top_similarity(json_array_get(res, i), &who), 0.74);
  json_decref(j);

  /* Verification: the photo against its mirror image. */
  ASSERT_EQ(call("POST", "/api/v1/verification/verify", KEY, NULL, "source_image", s1,
                 "target_image", flipped, &j),
            200);
  json_t *m = json_object_get(json_array_get(json_object_get(j, "result"), 0), "face_matches");
  ASSERT_GE(json_array_size(m), 1);
  double best = 0;
  for (size_t i = 0; i < json_array_size(m); i++) {
    double v = json_real_value(json_object_get(json_array_get(m, i), "similarity"));
    best = v > best ? v : best;
  }
  ASSERT_GE_F(best, 0.74);
  json_decref(j);
  /* Detection. */
  ASSERT_EQ(call("POST", "/api/v1/detection/detect", KEY, NULL, "file", s1, NULL, NULL, &j), 200);
  ASSERT_GE(json_array_size(json_object_get(j, "result")), 2);
  json_decref(j);
}

static void test_e2e_subjects(void) {
  NEED_SERVER();
  sample(2);
  json_t *j = NULL;
  /* Adding an example creates its subject, as CompreFace does. */
  ASSERT_EQ(call("POST", "/api/v1/recognition/faces?subject=bob", KEY, NULL, "file", g_sample, NULL,
                 NULL, &j),
            201);
  char bob_img[32];
  snprintf(bob_img, sizeof bob_img, "%s", json_string_value(json_object_get(j, "image_id")));
  json_decref(j);
  ASSERT_EQ(call("POST", "/api/v1/recognition/subjects", KEY, "{\"subject\":\"carol\"}", NULL, NULL,
                 NULL, NULL, NULL),
            201);
  ASSERT_EQ(call("POST", "/api/v1/recognition/subjects", KEY, "{\"subject\":\"carol\"}", NULL, NULL,
                 NULL, NULL, &j),
            400);
  ASSERT_TRUE(json_is_string(json_object_get(j, "message")));
  ASSERT_TRUE(json_is_integer(json_object_get(j, "code")));
  json_decref(j);
  ASSERT_EQ(call("GET", "/api/v1/recognition/subjects", KEY, NULL, NULL, NULL, NULL, NULL, &j),
            200);
  json_t *subs = json_object_get(j, "subjects");
  int seen = 0;
  for (size_t i = 0; i < json_array_size(subs); i++) {
    const char *s = json_string_value(json_array_get(subs, i));
    seen += !strcmp(s, "bob") + !strcmp(s, "carol");
  }
  ASSERT_EQ(seen, 2);
  json_decref(j);
  /* Rename bob to dave, then merge dave onto carol. */
  ASSERT_EQ(call("PUT", "/api/v1/recognition/subjects/bob", KEY, "{\"subject\":\"dave\"}", NULL,
                 NULL, NULL, NULL, &j),
            200);
  ASSERT_TRUE(json_is_true(json_object_get(j, "updated")));
  json_decref(j);
  ASSERT_EQ(call("PUT", "/api/v1/recognition/subjects/dave", KEY, "{\"subject\":\"carol\"}", NULL,
                 NULL, NULL, NULL, NULL),
            200);
  ASSERT_EQ(
      call("GET", "/api/v1/recognition/faces?subject=carol", KEY, NULL, NULL, NULL, NULL, NULL, &j),
      200);
  ASSERT_EQ(json_integer_value(json_object_get(j, "total_elements")), 1);
  ASSERT_STREQ(json_string_value(
                   json_object_get(json_array_get(json_object_get(j, "faces"), 0), "image_id")),
               bob_img);
  json_decref(j);
  ASSERT_EQ(call("GET", "/api/v1/recognition/faces?subject=dave", KEY, NULL, NULL, NULL, NULL, NULL,
                 NULL),
            404);
  /* Paging over every example. */
  ASSERT_EQ(
      call("GET", "/api/v1/recognition/faces?page=0&size=1", KEY, NULL, NULL, NULL, NULL, NULL, &j),
      200);
  ASSERT_EQ(json_array_size(json_object_get(j, "faces")), 1);
  /* One per page: as many pages as examples (alice's too when the cases
   * run together). */
  ASSERT_GE(json_integer_value(json_object_get(j, "total_elements")), 1);
  ASSERT_EQ(json_integer_value(json_object_get(j, "total_pages")),
            json_integer_value(json_object_get(j, "total_elements")));
  json_decref(j);
  /* Delete one example by id, then a subject's examples, then subjects. */
  char path[128];
  snprintf(path, sizeof path, "/api/v1/recognition/faces/%s", bob_img);
  ASSERT_EQ(call("DELETE", path, KEY, NULL, NULL, NULL, NULL, NULL, &j), 200);
  ASSERT_STREQ(json_string_value(json_object_get(j, "subject")), "carol");
  json_decref(j);
  ASSERT_EQ(call("DELETE", path, KEY, NULL, NULL, NULL, NULL, NULL, NULL), 404);
  ASSERT_EQ(call("POST", "/api/v1/recognition/faces?subject=carol", KEY, NULL, "file", g_sample,
                 NULL, NULL, NULL),
            201);
  ASSERT_EQ(call("DELETE", "/api/v1/recognition/faces?subject=carol", KEY, NULL, NULL, NULL, NULL,
                 NULL, &j),
            200);
  ASSERT_EQ(json_integer_value(json_object_get(j, "deleted")), 1);
  json_decref(j);
  ASSERT_EQ(
      call("DELETE", "/api/v1/recognition/subjects/carol", KEY, NULL, NULL, NULL, NULL, NULL, &j),
      200);
  ASSERT_STREQ(json_string_value(json_object_get(j, "subject")), "carol");
  json_decref(j);
  ASSERT_EQ(
      call("DELETE", "/api/v1/recognition/subjects/carol", KEY, NULL, NULL, NULL, NULL, NULL, NULL),
      404);
  /* Delete all subjects: two made here, and alice when the cases run
   * together. */
  ASSERT_EQ(call("POST", "/api/v1/recognition/subjects", KEY, "{\"subject\":\"x1\"}", NULL, NULL,
                 NULL, NULL, NULL),
            201);
  ASSERT_EQ(call("POST", "/api/v1/recognition/subjects", KEY, "{\"subject\":\"x2\"}", NULL, NULL,
                 NULL, NULL, NULL),
            201);
  ASSERT_EQ(call("DELETE", "/api/v1/recognition/subjects", KEY, NULL, NULL, NULL, NULL, NULL, &j),
            200);
  ASSERT_GE(json_integer_value(json_object_get(j, "deleted")), 2);
  json_decref(j);
  ASSERT_EQ(call("GET", "/api/v1/recognition/subjects", KEY, NULL, NULL, NULL, NULL, NULL, &j),
            200);
  ASSERT_EQ(json_array_size(json_object_get(j, "subjects")), 0);
  json_decref(j);
}

static void test_e2e_auth(void) {
  NEED_SERVER();
  static const char *const paths[][2] = {
      {"GET", "/api/v1/recognition/subjects"},   {"POST", "/api/v1/recognition/subjects"},
      {"GET", "/api/v1/recognition/faces"},      {"POST", "/api/v1/recognition/recognize"},
      {"POST", "/api/v1/detection/detect"},      {"POST", "/api/v1/verification/verify"},
      {"DELETE", "/api/v1/recognition/faces/1"}, {"PUT", "/api/v1/recognition/subjects/x"},
  };
  for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
    ASSERT_EQ(call(paths[i][0], paths[i][1], NULL, "{}", NULL, NULL, NULL, NULL, NULL), 401);
    ASSERT_EQ(
        call(paths[i][0], paths[i][1], "wrong-key-0123456789", "{}", NULL, NULL, NULL, NULL, NULL),
        401);
  }
}

static void test_e2e_bad_uploads(void) {
  NEED_SERVER();
  json_t *j = NULL;
  /* A JPEG that is not one, base64 JSON that is not base64, no file part. */
  char junk[128];
  snprintf(junk, sizeof junk, "%s/junk.jpg", g_srv.dir);
  FILE *f = fopen(junk, "wb");
  fputs("\xff\xd8\xff not really", f);
  fclose(f);
  ASSERT_EQ(call("POST", "/api/v1/recognition/recognize", KEY, NULL, "file", junk, NULL, NULL, &j),
            400);
  ASSERT_TRUE(json_is_string(json_object_get(j, "message")));
  json_decref(j);
  ASSERT_EQ(call("POST", "/api/v1/recognition/recognize", KEY, "{\"file\":\"@@@\"}", NULL, NULL,
                 NULL, NULL, &j),
            400);
  ASSERT_TRUE(json_is_integer(json_object_get(j, "code")));
  json_decref(j);
  ASSERT_EQ(call("POST", "/api/v1/recognition/recognize", KEY, NULL, "image", junk, NULL, NULL, &j),
            400);
  ASSERT_CONTAINS(json_string_value(json_object_get(j, "message")), "'file'");
  json_decref(j);
  ASSERT_EQ(call("POST", "/api/v1/recognition/faces", KEY, NULL, "file", junk, NULL, NULL, NULL),
            400);
  ASSERT_EQ(call("POST", "/api/v1/recognition/recognize?det_prob_threshold=7", KEY, NULL, "file",
                 junk, NULL, NULL, NULL),
            400);
  /* A photo as base64 JSON works; a blank image has no face (code 28). */
  sample(2);
  FILE *p = fopen(g_sample, "rb");
  static unsigned char img[4 << 20];
  size_t n = fread(img, 1, sizeof img, p);
  fclose(p);
  static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  char *js = malloc(n / 3 * 4 + 64);
  size_t o = (size_t)sprintf(js, "{\"file\":\"");
  for (size_t i = 0; i < n; i += 3) {
    unsigned v =
        (unsigned)img[i] << 16 | (i + 1 < n ? img[i + 1] << 8 : 0) | (i + 2 < n ? img[i + 2] : 0);
    js[o++] = tbl[v >> 18 & 63];
    js[o++] = tbl[v >> 12 & 63];
    js[o++] = i + 1 < n ? tbl[v >> 6 & 63] : '=';
    js[o++] = i + 2 < n ? tbl[v & 63] : '=';
  }
  strcpy(js + o, "\"}");
  ASSERT_EQ(call("POST", "/api/v1/detection/detect", KEY, js, NULL, NULL, NULL, NULL, &j), 200);
  ASSERT_GE(json_array_size(json_object_get(j, "result")), 1);
  json_decref(j);
  free(js);
  /* A 1x1 PNG: no face. */
  const char *png = "{\"file\":\"iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4//"
                    "8/AAX+Av4N70a4AAAAAElFTkSuQmCC\"}";
  ASSERT_EQ(call("POST", "/api/v1/recognition/recognize", KEY, png, NULL, NULL, NULL, NULL, &j),
            400);
  ASSERT_EQ(json_integer_value(json_object_get(j, "code")), 28);
  json_decref(j);
}

int main(int argc, char **argv) {
  curl_global_init(CURL_GLOBAL_ALL);
  static const gg_test_case cases[] = {
      {"multipart_good", test_multipart_good},
      {"multipart_missing_boundary", test_multipart_missing_boundary},
      {"multipart_truncated", test_multipart_truncated},
      {"multipart_oversized", test_multipart_oversized},
      {"multipart_two_parts", test_multipart_two_parts},
      {"multipart_garbage", test_multipart_garbage},
      {"e2e_enroll_recognize", test_e2e_enroll_recognize},
      {"e2e_subjects", test_e2e_subjects},
      {"e2e_auth", test_e2e_auth},
      {"e2e_bad_uploads", test_e2e_bad_uploads},
      {0},
  };
  int rc = gg_test_main(argc, argv, cases);
  gg_ts_stop(&g_srv, 1);
  curl_global_cleanup();
  return rc;
}
