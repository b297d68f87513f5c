/* Integration test: starts the real `gpuguard serve` on an ephemeral port and
 * talks HTTP to it with libcurl. */
#include "gpuguard/error.h"
#include "server-util.h"
#include "test.h"

#include <curl/curl.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static gg_ts_server g_srv = GG_TS_NONE;

/* Performs a request with a body of content_type (NULL: curl's default);
 * returns the HTTP status (or -1) and the body in *out. */
static long http_ct(const char *method, const char *path, const char *content_type,
                    const char *body, size_t body_len, char **out) {
  char ct[128];
  snprintf(ct, sizeof ct, "Content-Type: %s", content_type ? content_type : "");
  const char *hdrs[] = {content_type ? ct : NULL, NULL};
  gg_ts_buf b = {0};
  long status = gg_ts_http(&g_srv, method, path, hdrs, body, body_len, 20, &b);
  if (out)
    *out = b.p ? b.p : strdup("");
  else
    free(b.p);
  return status;
}

static long http(const char *method, const char *path, const char *body, size_t body_len,
                 char **out) {
  return http_ct(method, path, NULL, body, body_len, out);
}

/* Starts the server (sim with a CPU fallback, blazeface only) with extra
 * args. The port file appears once every model is warmed up: on
 * opencl:0.0 with cold PoCL and program caches that takes ~20 s (CLBlast
 * and our kernels compile), so wait up to 90 s. */
static int start_server(const char *const *extra) {
  const char *args[32] = {
      "--max-body",    "4M",         "--models", "blazeface",       "--device",
      "sim:mem=4560M", "--fallback", "cpu",      "--insecure-local"}; /* device_switch posts without
                                                                         an API key */
  int n = 9;
  for (int i = 0; extra && extra[i] && n < 31; i++)
    args[n++] = extra[i];
  args[n] = NULL;
  return gg_ts_start(&g_srv, "test-server", 0, args, 90);
}

/* Sends SIGTERM and returns the exit status (or -1 if it did not exit). */
static int stop_server(void) {
  return gg_ts_stop(&g_srv, 0);
}

static void test_device_endpoint(void) {
  char *body = NULL;
  /* The first call loads the device drivers (an OpenCL runtime is tens of
   * MiB); measure on the second, when the process has settled. */
  ASSERT_EQ(http("GET", "/api/device", NULL, 0, NULL), 200);
  ASSERT_EQ(http("GET", "/api/device", NULL, 0, &body), 200);
  json_error_t e;
  json_t *j = json_loads(body, 0, &e);
  free(body);
  ASSERT_TRUE(j != NULL);
  ASSERT_STREQ(json_string_value(json_object_get(j, "device")), "sim");
  ASSERT_STREQ(json_string_value(json_object_get(j, "primary")), "sim:mem=4560M");
  ASSERT_TRUE(json_is_array(json_object_get(j, "devices")));
  ASSERT_GE(json_array_size(json_object_get(j, "devices")), 1);
  ASSERT_TRUE(json_is_integer(json_object_get(j, "generation_count")));
  ASSERT_TRUE(json_is_false(json_object_get(j, "gpu_failed")));
  json_t *mi = json_object_get(j, "memory_info");
  double rss = json_number_value(json_object_get(mi, "rss_mb"));
  double vms = json_number_value(json_object_get(mi, "vms_mb"));
  double pct = json_number_value(json_object_get(mi, "percent"));
  /* Real numbers: a running server has a few MiB resident, more virtual. */
  ASSERT_GT_F(rss, 0.5);
  ASSERT_LT_F(rss, 4096);
  ASSERT_GE_F(vms, rss);
  ASSERT_GT_F(pct, 0);
  ASSERT_LT_F(pct, 100);
  /* Cross-check against the kernel's own view of that process. */
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/%d/status", (int)g_srv.pid);
  FILE *f = fopen(path, "r");
  ASSERT_TRUE(f != NULL);
  double kernel_rss = -1;
  while (fgets(line, sizeof line, f))
    if (!strncmp(line, "VmRSS:", 6)) kernel_rss = strtod(line + 6, NULL) / 1024.0;
  fclose(f);
  json_decref(j);
  ASSERT_NEAR(rss, kernel_rss, 16.0);
}

static void test_health_ready(void) {
  char *body = NULL;
  ASSERT_EQ(http("GET", "/healthz", NULL, 0, &body), 200);
  ASSERT_CONTAINS(body, "\"status\":\"ok\"");
  free(body);
  ASSERT_EQ(http("GET", "/readyz", NULL, 0, &body), 200);
  ASSERT_CONTAINS(body, "\"ready\":true");
  free(body);
}

static void test_not_found(void) {
  char *body = NULL;
  ASSERT_EQ(http("GET", "/no/such/path", NULL, 0, &body), 404);
  json_t *j = json_loads(body, 0, NULL);
  ASSERT_TRUE(j != NULL);
  json_t *err = json_object_get(j, "error");
  ASSERT_EQ(json_integer_value(json_object_get(err, "code")), 404);
  ASSERT_CONTAINS(json_string_value(json_object_get(err, "message")), "/no/such/path");
  json_decref(j);
  free(body);
  ASSERT_EQ(http("DELETE", "/healthz", NULL, 0, &body), 405);
  free(body);
}

static void test_body_limit(void) {
  size_t n = 5u << 20; /* server started with --max-body 4M */
  char *big = malloc(n);
  ASSERT_TRUE(big != NULL);
  memset(big, 'x', n);
  char *body = NULL;
  long st = http("POST", "/api/device", big, n, &body);
  free(big);
  ASSERT_EQ(st, 413);
  ASSERT_CONTAINS(body, "exceeds the limit");
  free(body);
  /* The server is still fine afterwards. */
  ASSERT_EQ(http("GET", "/healthz", NULL, 0, NULL), 200);
}

static void test_bad_flags(void) {
  /* A bad flag value is a clear error and a non-zero exit, not a crash. */
  char cmd[512];
  snprintf(cmd, sizeof cmd, "%s serve --port notanumber 2>&1", GG_BIN);
  FILE *p = popen(cmd, "r");
  ASSERT_TRUE(p != NULL);
  char out[512] = "";
  size_t got = fread(out, 1, sizeof out - 1, p);
  out[got] = 0;
  int st = pclose(p);
  ASSERT_EQ(WEXITSTATUS(st), 2);
  ASSERT_CONTAINS(out, "--port: expected an integer");
  snprintf(cmd, sizeof cmd, "%s serve --device quantum:7 --port 0 2>&1", GG_BIN);
  p = popen(cmd, "r");
  ASSERT_TRUE(p != NULL);
  got = fread(out, 1, sizeof out - 1, p);
  out[got] = 0;
  st = pclose(p);
  ASSERT_NE(WEXITSTATUS(st), 0);
  ASSERT_CONTAINS(out, "quantum:7");
}

static void test_dashboard_and_traversal(void) {
  char *body = NULL;
  ASSERT_EQ(http("GET", "/", NULL, 0, &body), 200);
  ASSERT_CONTAINS(body, "/api/device");
  free(body);
  ASSERT_EQ(http("GET", "/web/../CMakeLists.txt", NULL, 0, &body), 400);
  free(body);
  ASSERT_EQ(http("GET", "/web/%2e%2e/CMakeLists.txt", NULL, 0, &body), 400);
  free(body);
  ASSERT_EQ(http("GET", "/web/nope.html", NULL, 0, &body), 404);
  free(body);
}

static void test_metrics(void) {
  char *body = NULL;
  ASSERT_EQ(http("GET", "/metrics", NULL, 0, &body), 200);
  ASSERT_CONTAINS(body, "# TYPE gpuguard_process_resident_bytes gauge");
  const char *p = strstr(body, "\ngpuguard_process_resident_bytes ");
  ASSERT_TRUE(p != NULL);
  double rss = strtod(p + strlen("\ngpuguard_process_resident_bytes "), NULL);
  ASSERT_GT_F(rss, 512 * 1024);
  ASSERT_CONTAINS(body, "gpuguard_models_ready 1");
  ASSERT_CONTAINS(body, "gpuguard_guard_");
  free(body);
}

/* Runs `gpuguard stress` against the test server; returns its exit status. */
/* Under AddressSanitizer the server's RSS is mostly the sanitizer's: freed
 * memory sits in its quarantine (256 MiB by default) and its allocator
 * warms up per size class, ~16 MiB over 300 requests here while the release
 * build stays within 0.1 MiB. The release suite holds the 16 MiB default;
 * the sanitizer suite checks the same requests with room for ASan. */
#if defined(__SANITIZE_ADDRESS__)
#define STRESS_LIMIT "--max-growth-mb 64"
#else
#define STRESS_LIMIT ""
#endif

static int run_stress(const char *extra, char *out, size_t outlen) {
  char cmd[512];
  snprintf(cmd, sizeof cmd,
           "%s stress --url http://127.0.0.1:%d --requests 300 --warmup 20 "
           "--concurrency 4 " STRESS_LIMIT " %s 2>&1",
           GG_BIN, g_srv.port, extra);
  FILE *p = popen(cmd, "r");
  if (!p) return -1;
  size_t got = fread(out, 1, outlen - 1, p);
  out[got] = 0;
  int st = pclose(p);
  int rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  if (rc != (*extra ? 1 : 0)) fprintf(stderr, "  stress printed:\n%s\n", out);
  return rc;
}

static void test_stress_flat(void) {
  char out[2048];
  ASSERT_EQ(run_stress("", out, sizeof out), 0);
  ASSERT_CONTAINS(out, "300/300 requests sent");
  ASSERT_CONTAINS(out, "300 ok, 0 failed");
  ASSERT_CONTAINS(out, "PASS");
  /* Failing requests make it fail: it is a check, not a printer. */
  ASSERT_EQ(run_stress("--path /missing", out, sizeof out), 1);
  ASSERT_CONTAINS(out, "4xx 300");
  ASSERT_CONTAINS(out, "FAIL");
}

static void sample_path(char *out, size_t len, int i) {
  char rel[64];
  snprintf(rel, sizeof rel, "models/face-api-1.7.15/demo/sample%d.jpg", i);
  gg_t_cache_path(out, len, rel);
}

static void test_infer(void) {
  char path[512];
  sample_path(path, sizeof path, 1);
  size_t len = 0;
  char *img = gg_ts_read_file(path, &len);
  if (!img) SKIP("sample image %s missing: run scripts/install.sh", path);
  char *body = NULL;
  long st = http("POST", "/api/infer?model=blazeface", img, len, &body);
  free(img);
  ASSERT_EQ(st, 200);
  json_t *j = json_loads(body, 0, NULL);
  free(body);
  ASSERT_TRUE(j != NULL);
  ASSERT_STREQ(json_string_value(json_object_get(j, "device")), "sim:mem=4560M");
  ASSERT_EQ(json_integer_value(json_object_get(j, "attempts")), 1);
  json_t *outs = json_object_get(j, "outputs");
  ASSERT_EQ(json_array_size(outs), 4);
  /* This blazeface splits its 896 anchors into 512 + 384: box regressors
   * [1,512,16] and [1,384,16], scores [1,512,1] and [1,384,1]. */
  int anchors = 0, boxes = 0;
  for (size_t i = 0; i < json_array_size(outs); i++) {
    json_t *shape = json_object_get(json_array_get(outs, i), "shape");
    ASSERT_EQ(json_array_size(shape), 3);
    long long a = json_integer_value(json_array_get(shape, 1));
    long long c = json_integer_value(json_array_get(shape, 2));
    if (c == 16) anchors += (int)a, boxes++;
    double mn = json_number_value(json_object_get(json_array_get(outs, i), "min"));
    double mx = json_number_value(json_object_get(json_array_get(outs, i), "max"));
    ASSERT_FINITE(mn);
    ASSERT_FINITE(mx);
    ASSERT_GT_F(mx, mn);
  }
  ASSERT_EQ(boxes, 2);
  ASSERT_EQ(anchors, 896);
  ASSERT_GE(json_integer_value(json_object_get(j, "planned_peak_bytes")), 1 << 20);
  json_decref(j);
  /* generation_count counts it. */
  ASSERT_EQ(http("GET", "/api/device", NULL, 0, &body), 200);
  ASSERT_CONTAINS(body, "\"generation_count\":1");
  free(body);
}

static void test_infer_bad_input(void) {
  char *body = NULL;
  ASSERT_EQ(http("POST", "/api/infer?model=blazeface", "not an image", 12, &body), 400);
  ASSERT_CONTAINS(body, "not a JPEG or PNG");
  free(body);
  /* A truncated JPEG: the first 2000 bytes of a real one. */
  char path[512];
  sample_path(path, sizeof path, 2);
  size_t len = 0;
  char *img = gg_ts_read_file(path, &len);
  if (img) {
    ASSERT_EQ(http("POST", "/api/infer?model=blazeface", img, 2000, &body), 400);
    free(body);
    free(img);
  }
  ASSERT_EQ(http("POST", "/api/infer?model=nosuchmodel", "x", 1, &body), 404);
  free(body);
  ASSERT_EQ(http("POST", "/api/infer?model=../../etc/passwd", "x", 1, &body), 400);
  free(body);
  ASSERT_EQ(http("POST", "/api/infer", "x", 1, &body), 400);
  free(body);
  ASSERT_EQ(http("GET", "/healthz", NULL, 0, NULL), 200);
}

static void test_device_switch(void) {
  char *body = NULL;
  const char *json = "application/json";
  ASSERT_EQ(http_ct("POST", "/api/device", json, "{\"device\": \"quantum:3\"}", 21, &body), 400);
  ASSERT_CONTAINS(body, "quantum:3");
  free(body);
  ASSERT_EQ(http_ct("POST", "/api/device", json, "{oops", 5, &body), 400);
  free(body);
  ASSERT_EQ(http_ct("POST", "/api/device", json, "{\"device\": \"cpu\"}", 17, &body), 200);
  ASSERT_CONTAINS(body, "\"primary\":\"cpu\"");
  free(body);
  char path[512];
  sample_path(path, sizeof path, 3);
  size_t len = 0;
  char *img = gg_ts_read_file(path, &len);
  if (!img) SKIP("sample image missing");
  ASSERT_EQ(http("POST", "/api/infer?model=blazeface", img, len, &body), 200);
  free(img);
  ASSERT_CONTAINS(body, "\"device\":\"cpu\"");
  free(body);
}

/* Outputs over 4096 values come back as a summary that says so
 * ("truncated": true, "elements" the full count, the "first" 16 values);
 * &full=1 returns every value. blazeface's box outputs have 8192 and 6144. */
static void check_infer_outputs(const char *body, int full) {
  json_t *j = json_loads(body, 0, NULL);
  ASSERT_TRUE(j != NULL);
  json_t *outs = json_object_get(j, "outputs");
  int truncated = 0;
  for (size_t i = 0; i < json_array_size(outs); i++) {
    json_t *o = json_array_get(outs, i);
    long long n = json_integer_value(json_object_get(o, "elements"));
    int cut = !full && n > 4096;
    truncated += cut;
    ASSERT_EQ(json_is_true(json_object_get(o, "truncated")), cut);
    ASSERT_EQ(json_object_get(o, "truncated") != NULL, cut);
    json_t *vals = json_object_get(o, cut ? "first" : "data");
    ASSERT_EQ(json_array_size(vals), cut ? 16 : n);
  }
  json_decref(j);
  ASSERT_EQ(truncated, full ? 0 : 2);
}

static void test_infer_truncated(void) {
  char path[512];
  sample_path(path, sizeof path, 1);
  size_t len = 0;
  char *img = gg_ts_read_file(path, &len);
  if (!img) SKIP("sample image %s missing: run scripts/install.sh", path);
  for (int full = 0; full < 2; full++) {
    char *body = NULL;
    const char *url = full ? "/api/infer?model=blazeface&full=1" : "/api/infer?model=blazeface";
    long st = http("POST", url, img, len, &body);
    if (st != 200) free(img);
    ASSERT_EQ(st, 200);
    check_infer_outputs(body, full);
    free(body);
  }
  free(img);
}

/* 1 when a GPU driver or CLBlast is mapped into the server process (printing
 * its maps), 0 when not, -1 when its maps cannot be read. */
static int gpu_runtime_mapped(void) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/maps", (int)g_srv.pid);
  FILE *f = fopen(path, "r"); /* /proc files report size 0: read to EOF */
  if (!f) return -1;
  size_t cap = 1 << 20, len = 0;
  char *maps = calloc(1, cap + 1);
  size_t r;
  while (maps && len < cap && (r = fread(maps + len, 1, cap - len, f)) > 0)
    len += r;
  fclose(f);
  if (!maps || !len) {
    free(maps);
    return -1;
  }
  /* The ICD loader itself may be mapped (sanitizer builds link it, see
   * cmake/backends.cmake); a driver behind it must not be. */
  int loaded = strstr(maps, "libpocl") || strstr(maps, "libcuda") || strstr(maps, "libnvidia") ||
               strstr(maps, "libLLVM") || strstr(maps, "libclblast");
  if (loaded) fprintf(stderr, "  a GPU runtime is mapped into the server:\n%.2000s\n", maps);
  free(maps);
  return loaded;
}

/* The server lists devices through a child process and never loads a GPU
 * runtime itself: after GET /api/device (which enumerates OpenCL and CUDA),
 * no OpenCL driver (PoCL, LLVM) or libcuda is mapped into the server. A runtime in
 * the server process is what crashed it at shutdown (PoCL's LLVM swaps the
 * HTTP thread's signal stack) and what a faulting driver would take down. */
static void test_no_gpu_runtime_in_server(void) {
  char *body = NULL;
  ASSERT_EQ(http("GET", "/api/device", NULL, 0, &body), 200);
  json_t *j = json_loads(body, 0, NULL);
  free(body);
  ASSERT_TRUE(j != NULL);
  json_t *devs = json_object_get(j, "devices");
  ASSERT_TRUE(json_array_size(devs) >= 1);
  ASSERT_STREQ(json_string_value(json_object_get(json_array_get(devs, 0), "name")), "cpu");
  json_decref(j);
  ASSERT_EQ(gpu_runtime_mapped(), 0);
}

static void test_graceful_shutdown(void) {
  ASSERT_EQ(stop_server(), 0);
}

/* ---- issue 10: device switches, each case on a server of its own -------- */

/* The shared server is set aside while a case runs its own (its flags
 * differ) and put back afterwards. */
static int own_server_begin(gg_ts_server *saved, const char *const *extra) {
  *saved = g_srv;
  return start_server(extra);
}

/* Returns the own server's exit status (0: a clean shutdown, no leak). */
static int own_server_end(const gg_ts_server *saved) {
  int status = gg_ts_stop(&g_srv, 1);
  g_srv = *saved;
  return status;
}

/* A string member of o, "" when absent (for copying into fixed buffers). */
static const char *jstr(json_t *o, const char *key) {
  const char *v = json_string_value(json_object_get(o, key));
  return v ? v : "";
}

/* Runs body against a server of its own, started with `extra`, handing it
 * sample image img_index (the case is skipped when it is missing; 0: none);
 * then checks that the server had started and shut down cleanly. */
static void with_own_server(const char *const *extra, int img_index,
                            void (*body)(const char *img, size_t len)) {
  char *img = NULL;
  size_t len = 0;
  if (img_index > 0) {
    char path[512];
    sample_path(path, sizeof path, img_index);
    img = gg_ts_read_file(path, &len);
    if (!img) SKIP("sample image %s missing: run scripts/install.sh", path);
  }
  gg_ts_server saved;
  if (own_server_begin(&saved, extra) == 0) body(img, len);
  int started = g_srv.pid > 0;
  int exit_status = own_server_end(&saved);
  free(img);
  ASSERT_TRUE(started);
  ASSERT_EQ(exit_status, 0);
}

static double mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* GET /api/device, parsed; NULL on failure. */
static json_t *device_state(void) {
  char *body = NULL;
  long st = http("GET", "/api/device", NULL, 0, &body);
  json_t *j = st == 200 ? json_loads(body, 0, NULL) : NULL;
  free(body);
  return j;
}

/* The latest switch's "state" ("" when none), copied into out. */
static void switch_state(char *out, size_t len) {
  json_t *j = device_state();
  snprintf(out, len, "%s", jstr(json_object_get(j, "switch"), "state"));
  json_decref(j);
}

/* Waits up to max_ms until no switch is preparing; returns the state. */
static void switch_settled(char *out, size_t len, double max_ms) {
  double t0 = mono_ms();
  do {
    switch_state(out, len);
    if (strcmp(out, "preparing")) return;
    usleep(100 * 1000);
  } while (mono_ms() - t0 < max_ms);
}

static long post_device(const char *spec, char **out) {
  char body[256];
  snprintf(body, sizeof body, "{\"device\": \"%s\"}", spec);
  return http_ct("POST", "/api/device", "application/json", body, strlen(body), out);
}

typedef struct post_arg {
  const char *spec;
  long status;
  char *body;
} post_arg;

static void *post_device_main(void *p) {
  post_arg *a = p;
  a->status = post_device(a->spec, &a->body);
  return NULL;
}

static void switch_hang_body(const char *img, size_t len) {
  /* The new device's validation kernel hangs; the watchdog (6 s) ends it.
   * The POST answers 202 after its 3 s wait; meanwhile the service serves. */
  post_arg a = {"sim:mem=4560M,faults=hang@1", -1, NULL};
  pthread_t t;
  ASSERT_EQ(pthread_create(&t, NULL, post_device_main, &a), 0);
  char st[32] = "";
  for (int i = 0; i < 100 && strcmp(st, "preparing"); i++) {
    usleep(50 * 1000);
    switch_state(st, sizeof st);
  }
  char *ready = NULL, *inf = NULL, *second = NULL;
  long ready_st = http("GET", "/readyz", NULL, 0, &ready);
  double t0 = mono_ms();
  long inf_st = http("POST", "/api/infer?model=blazeface", img, len, &inf);
  double inf_ms = mono_ms() - t0;
  char after[32];
  switch_state(after, sizeof after);
  long second_st = post_device("cpu", &second);
  pthread_join(t, NULL);
  char end[32];
  switch_settled(end, sizeof end, 30000);
  json_t *j = device_state();
  json_t *sw = json_object_get(j, "switch");
  char primary[128], err_name[64];
  snprintf(primary, sizeof primary, "%s", jstr(j, "primary"));
  snprintf(err_name, sizeof err_name, "%s", jstr(sw, "error_name"));
  json_decref(j);
  long ready_after = http("GET", "/readyz", NULL, 0, NULL);
  int ok_ready =
      ready && strstr(ready, "\"ready\":true") && strstr(ready, "\"state\":\"preparing\"");
  int inf_cpu = inf && strstr(inf, "\"device\":\"cpu\"");
  int post_pending = a.body && strstr(a.body, "\"state\":\"preparing\"");
  int second_clear = second && strstr(second, "already in progress");
  free(ready);
  free(inf);
  free(second);
  free(a.body);
  ASSERT_STREQ(st, "preparing");
  ASSERT_EQ(ready_st, 200); /* ready on the old device, and says a switch is pending */
  ASSERT_TRUE(ok_ready);
  ASSERT_EQ(inf_st, 200); /* served by the current device, not held by the switch */
  ASSERT_TRUE(inf_cpu);
  ASSERT_STREQ(after, "preparing"); /* it finished while the switch was still preparing */
  ASSERT_LT_F(inf_ms, 4000.0);      /* generous: the hang lasts 6 s */
  ASSERT_EQ(second_st, 409);        /* one switch at a time */
  ASSERT_TRUE(second_clear);
  ASSERT_EQ(a.status, 202); /* bounded wait, then "poll GET /api/device" */
  ASSERT_TRUE(post_pending);
  ASSERT_STREQ(end, "failed"); /* the watchdog ended it ... */
  ASSERT_STREQ(err_name, "GG_ETIMEOUT");
  ASSERT_STREQ(primary, "cpu"); /* ... and it rolled back */
  ASSERT_EQ(ready_after, 200);
}

/* A switch whose new device hangs does not stall inference or readiness
 * (issue 10, item 3). */
static void test_switch_hang_serves(void) {
  static const char *const extra[] = {"--device", "cpu", "--watchdog-ms", "6000", NULL};
  with_own_server(extra, 1, switch_hang_body);
}

static void effective_spec_body(const char *img, size_t len) {
  json_t *j = device_state();
  json_t *d0 = json_array_get(json_object_get(json_object_get(j, "guard"), "devices"), 0);
  int pid = (int)json_integer_value(json_object_get(d0, "worker_pid"));
  int active_before = json_is_true(json_object_get(d0, "faults_active"));
  json_decref(j);
  ASSERT_TRUE(pid > 0);
  ASSERT_TRUE(active_before);
  kill(pid, SIGKILL);
  ASSERT_EQ(http("POST", "/api/infer?model=blazeface", img, len, NULL), 200); /* cpu serves */
  ASSERT_EQ(http("POST", "/api/infer?model=blazeface", img, len, NULL), 200); /* restarted */
  j = device_state();
  d0 = json_array_get(json_object_get(json_object_get(j, "guard"), "devices"), 0);
  char spec[128], eff[128], top[128];
  snprintf(spec, sizeof spec, "%s", jstr(d0, "spec"));
  snprintf(eff, sizeof eff, "%s", jstr(d0, "effective_spec"));
  snprintf(top, sizeof top, "%s", jstr(j, "device_spec"));
  int active = json_is_true(json_object_get(d0, "faults_active"));
  long restarts = (long)json_integer_value(json_object_get(d0, "worker_restarts"));
  json_decref(j);
  char *ready = NULL;
  ASSERT_EQ(http("GET", "/readyz", NULL, 0, &ready), 200);
  int ready_eff = strstr(ready, "\"device\":\"sim:mem=4560M\"") != NULL;
  free(ready);
  ASSERT_EQ(restarts, 1);
  ASSERT_STREQ(spec, "sim:mem=4560M,faults=oom@100000"); /* as configured */
  ASSERT_STREQ(eff, "sim:mem=4560M");                    /* what runs now */
  ASSERT_STREQ(top, "sim:mem=4560M");
  ASSERT_FALSE(active);
  ASSERT_TRUE(ready_eff);
}

/* After a worker restart the sim's fault burst is over; /api/device and
 * /readyz show the spec that runs, not the configured faults (issue 10,
 * item 10). */
static void test_switch_effective_spec(void) {
  static const char *const extra[] = {"--device", "sim:mem=4560M,faults=oom@100000", NULL};
  with_own_server(extra, 1, effective_spec_body);
}

static double proc_rss_mb(pid_t pid) {
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
  FILE *f = fopen(path, "r");
  double rss = -1;
  while (f && fgets(line, sizeof line, f))
    if (!strncmp(line, "VmRSS:", 6)) rss = strtod(line + 6, NULL) / 1024.0;
  if (f) fclose(f);
  return rss;
}

/* Resident memory after switching cpu <-> sim: what a cycle frees must not
 * stay behind (issue 10, item 12: +15 MB over 15 cycles in the release build
 * before, one model's worth per HTTP thread). Under ASan freed memory sits in
 * the quarantine, so the server gets a small one and a looser bound. */
#if defined(__SANITIZE_ADDRESS__)
#define SWITCH_RSS_LIMIT_MB 32.0
#else
#define SWITCH_RSS_LIMIT_MB 5.0
#endif
enum { SWITCH_WARMUP = 2, SWITCH_CYCLES = 20 };

static void switch_rss_body(const char *img, size_t len) {
  (void)img;
  (void)len;
  int bad = 0;
  double rss0 = 0;
  for (int i = 0; i < SWITCH_WARMUP + SWITCH_CYCLES; i++) {
    if (i == SWITCH_WARMUP) rss0 = proc_rss_mb(g_srv.pid);
    bad += post_device("sim:mem=4560M", NULL) != 200;
    bad += post_device("cpu", NULL) != 200;
  }
  double rss1 = proc_rss_mb(g_srv.pid);
  json_t *j = device_state();
  json_t *devs = json_object_get(json_object_get(j, "guard"), "devices");
  size_t n = json_array_size(devs);
  char spec[128];
  snprintf(spec, sizeof spec, "%s", jstr(json_array_get(devs, 0), "spec"));
  json_decref(j);
  fprintf(stderr, "  rss %.1f -> %.1f MiB over %d cpu<->sim cycles\n", rss0, rss1, SWITCH_CYCLES);
  ASSERT_EQ(bad, 0);
  ASSERT_GT_F(rss0, 1.0);
  ASSERT_LT_F(rss1 - rss0, SWITCH_RSS_LIMIT_MB);
  ASSERT_EQ(n, 1); /* back on the configured chain: [cpu] */
  ASSERT_STREQ(spec, "cpu");
}

static void test_switch_rss_bounded(void) {
  static const char *const extra[] = {"--device", "cpu", NULL};
#if defined(__SANITIZE_ADDRESS__)
  const char *prev = getenv("ASAN_OPTIONS");
  char *keep = prev ? strdup(prev) : NULL;
  char opts[512];
  snprintf(opts, sizeof opts, "%s%squarantine_size_mb=16", prev ? prev : "", prev ? ":" : "");
  setenv("ASAN_OPTIONS", opts, 1); /* for the server it starts */
#endif
  with_own_server(extra, 0, switch_rss_body);
#if defined(__SANITIZE_ADDRESS__)
  if (keep)
    setenv("ASAN_OPTIONS", keep, 1);
  else
    unsetenv("ASAN_OPTIONS");
  free(keep);
#endif
}

/* ---- issue 11: `serve --device opencl:0.0 --fallback cpu` serves every model */

static const char *const k_models[] = {"blazeface", "mobilefacenet", "nanodet", "faceres"};
#define N_MODELS (int)(sizeof k_models / sizeof k_models[0])
static json_t *g_ocl_res[N_MODELS], *g_cpu_res[N_MODELS];
static int g_have_opencl;

/* POST /api/infer?model=M&full=1 of img into out[i] for each model (NULL
 * where the status is not 200, with the body printed). */
static void infer_all_full(const char *img, size_t len, json_t **out) {
  for (int i = 0; i < N_MODELS; i++) {
    char path[96], *body = NULL;
    snprintf(path, sizeof path, "/api/infer?model=%s&full=1", k_models[i]);
    long st = http_ct("POST", path, "image/jpeg", img, len, &body);
    out[i] = st == 200 ? json_loads(body, 0, NULL) : NULL;
    if (!out[i]) fprintf(stderr, "  %s: HTTP %ld: %.400s\n", k_models[i], st, body);
    free(body);
  }
}

static void opencl_server_body(const char *img, size_t len) {
  json_t *dev = device_state(); /* the list comes from `worker --enumerate` */
  json_t *d;
  size_t i;
  json_array_foreach(json_object_get(dev, "devices"), i, d) {
    if (!strcmp(jstr(d, "name"), "opencl:0.0")) g_have_opencl = 1;
  }
  json_decref(dev);
  if (!g_have_opencl) return;
  infer_all_full(img, len, g_ocl_res);
  ASSERT_EQ(gpu_runtime_mapped(), 0); /* the OpenCL work ran in the worker */
  /* No worker was killed on the way: with cold PoCL/CLBlast caches the first
   * warm-up compiles for longer than the run watchdog and must be let. */
  dev = device_state();
  json_t *stats = json_object_get(json_object_get(dev, "guard"), "stats");
  json_int_t timeouts = json_integer_value(json_object_get(stats, "timeouts"));
  json_int_t restarts = json_integer_value(json_object_get(stats, "worker_restarts"));
  int have = json_object_get(stats, "timeouts") != NULL;
  json_decref(dev);
  ASSERT_TRUE(have);
  ASSERT_EQ(timeouts, 0);
  ASSERT_EQ(restarts, 0);
}

static void cpu_server_body(const char *img, size_t len) {
  infer_all_full(img, len, g_cpu_res);
}

/* Sum of the ops in a response's "ops_by_backend". */
static json_int_t ops_total(json_t *res) {
  json_int_t n = 0;
  const char *k;
  json_t *v;
  json_object_foreach(json_object_get(res, "ops_by_backend"), k, v) {
    n += json_integer_value(v);
  }
  return n;
}

/* Every value of every output of `ocl` within 1e-4 of the range of the same
 * output of `cpu` (+1e-6 for outputs whose range is 0); NaN fails. */
static void outputs_match(const char *model, json_t *ocl, json_t *cpu) {
  json_t *oo = json_object_get(ocl, "outputs"), *co = json_object_get(cpu, "outputs");
  ASSERT_EQ(json_array_size(oo), json_array_size(co));
  ASSERT_GE(json_array_size(co), 1);
  for (size_t k = 0; k < json_array_size(co); k++) {
    json_t *od = json_object_get(json_array_get(oo, k), "data");
    json_t *cd = json_object_get(json_array_get(co, k), "data");
    ASSERT_GE(json_array_size(cd), 1);
    ASSERT_EQ(json_array_size(od), json_array_size(cd));
    double lo = INFINITY, hi = -INFINITY, worst = 0;
    for (size_t e = 0; e < json_array_size(cd); e++) {
      double c = json_number_value(json_array_get(cd, e));
      lo = c < lo ? c : lo;
      hi = c > hi ? c : hi;
    }
    for (size_t e = 0; e < json_array_size(cd); e++) {
      double diff =
          fabs(json_number_value(json_array_get(od, e)) - json_number_value(json_array_get(cd, e)));
      worst = diff > worst || diff != diff ? diff : worst; /* NaN stays NaN: fails below */
    }
    if (!(worst <= 1e-4 * (hi - lo) + 1e-6))
      fprintf(stderr, "  %s output %zu: max |opencl - cpu| %.3g, range %.3g\n", model, k, worst,
              hi - lo);
    ASSERT_LE_F(worst, 1e-4 * (hi - lo) + 1e-6);
  }
}

/* Model i served on opencl:0.0 (not the fallback), every op there, and
 * its outputs equal to the CPU server's. */
static void check_served(int i) {
  json_t *o = g_ocl_res[i], *c = g_cpu_res[i];
  ASSERT_TRUE(o != NULL);
  ASSERT_TRUE(c != NULL);
  ASSERT_STREQ(jstr(o, "device"), "opencl:0.0"); /* served by the GPU, not the fallback */
  ASSERT_TRUE(json_is_false(json_object_get(o, "fell_back")));
  json_t *by = json_object_get(o, "ops_by_backend");
  ASSERT_EQ(json_object_size(by), 1); /* every op on opencl */
  ASSERT_GE(json_integer_value(json_object_get(by, "opencl")), 1);
  ASSERT_EQ(json_integer_value(json_object_get(by, "opencl")), ops_total(c));
  outputs_match(k_models[i], o, c);
}

/* Issue 11: `gpuguard serve --device opencl:0.0 --fallback cpu` serves all
 * four models from its worker with every op on OpenCL, and answers what a
 * CPU server answers for the same image. SKIPs without an OpenCL device. */
static void test_serve_opencl(void) {
#if !GG_HAVE_OPENCL_BACKEND
  SKIP("built with -DGG_OPENCL=OFF: no OpenCL backend");
#else
  static const char *const ocl[] = {"--device",   "opencl:0.0",
                                    "--fallback", "cpu",
                                    "--models",   "blazeface,mobilefacenet,nanodet,faceres",
                                    NULL};
  static const char *const cpu[] = {
      "--device", "cpu", "--fallback", "", "--models", "blazeface,mobilefacenet,nanodet,faceres",
      NULL};
  g_have_opencl = 0;
  with_own_server(ocl, 1, opencl_server_body);
  if (!g_have_opencl && !gg_t_skipped)
    SKIP("no OpenCL platform/device opencl:0.0 (PoCL: apt-get install pocl-opencl-icd)");
  if (!gg_t_skipped) with_own_server(cpu, 1, cpu_server_body);
  for (int i = 0; i < N_MODELS && !gg_t_skipped; i++)
    check_served(i);
  for (int i = 0; i < N_MODELS; i++) {
    json_decref(g_ocl_res[i]);
    json_decref(g_cpu_res[i]);
    g_ocl_res[i] = g_cpu_res[i] = NULL;
  }
#endif
}

int main(int argc, char **argv) {
  signal(SIGPIPE, SIG_IGN);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  if (start_server(NULL) != 0) {
    fprintf(stderr, "could not start %s serve\n", GG_BIN);
    printf("0 passed, 1 failed, 0 skipped\n");
    return 1;
  }
  static const gg_test_case cases[] = {
      {"health_ready", test_health_ready},
      {"device_endpoint", test_device_endpoint},
      {"not_found", test_not_found},
      {"body_limit", test_body_limit},
      {"bad_flags", test_bad_flags},
      {"dashboard", test_dashboard_and_traversal},
      {"metrics", test_metrics},
      {"infer", test_infer},
      {"infer_bad_input", test_infer_bad_input},
      {"device_switch", test_device_switch},
      {"stress_flat", test_stress_flat},
      {"infer_truncated", test_infer_truncated},
      {"no_gpu_runtime_in_server", test_no_gpu_runtime_in_server},
      {"graceful_shutdown", test_graceful_shutdown},
      {"switch_hang_serves", test_switch_hang_serves},
      {"switch_effective_spec", test_switch_effective_spec},
      {"switch_rss_bounded", test_switch_rss_bounded},
      {"serve_opencl", test_serve_opencl},
      {0},
  };
  int rc = gg_test_main(argc, argv, cases);
  gg_ts_stop(&g_srv, 1);
  curl_global_cleanup();
  return rc;
}
