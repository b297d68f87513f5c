/* Soak of the face service under injected faults: starts the real
 * `gpuguard serve` on a simulated 512 MiB GPU that fails kernel launches and
 * allocations at random, with a CPU fallback, and runs `gpuguard stress
 * --mix` (recognize, detect, enroll, device switches) against it. Nothing
 * may be lost, every answer must be a documented one, faults must have
 * been injected and recovered from, and memory must come back flat.
 * bench/soak.sh is the long version (10,000 requests, by hand). */
#include "gpuguard/core.h"
#include "server-util.h"
#include "test.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#define API_KEY "soak-test-key-0123456789abcdef"
/* Faults of the primary: the engine makes one kernel launch per op, so a
 * small probability per launch already hits many requests (the
 * 10,000-request bench/soak.sh run met 391 launch failures at 0.0005);
 * twice that here so that a short run reliably meets some. They are
 * retried on the sim or served by the CPU while the sim's breaker is open.
 * oom%0.05 targets the allocations of the model loads after each switch;
 * an OOM the pool absorbs (it retries with a smaller segment,
 * docs/FAULTS.md) is not counted by the guard. */
#define FAULTS "oom%0.05,launch%0.001"
#define PRIMARY "sim:mem=512M,faults=" FAULTS

static gg_ts_server g_srv = GG_TS_NONE;

/* Performs a request with the API key; returns the HTTP status (or -1) and
 * the body in *out (malloc'd, may be NULL). */
static long req_raw(const char *method, const char *path, const char *content_type,
                    const void *body, size_t body_len, char **out) {
  char ct[128];
  snprintf(ct, sizeof ct, "Content-Type: %s", content_type ? content_type : "");
  const char *hdrs[] = {ct, "x-api-key: " API_KEY, NULL};
  gg_ts_buf b = {0};
  long status = gg_ts_http(&g_srv, method, path, hdrs, body, body_len, 60, &b);
  *out = b.p;
  return status;
}

static json_t *get_json(const char *path) {
  char *body = NULL;
  long st = req_raw("GET", path, NULL, NULL, 0, &body);
  json_t *j = st == 200 && body ? json_loads(body, 0, NULL) : NULL;
  free(body);
  return j;
}

static long switch_to(const char *spec) {
  char body[256], *out = NULL;
  snprintf(body, sizeof body, "{\"device\":\"%s\"}", spec);
  long st = req_raw("POST", "/api/device", "application/json", body, strlen(body), &out);
  if (st != 200) fprintf(stderr, "  switch to %s -> %ld %.300s\n", spec, st, out ? out : "");
  free(out);
  return st;
}

static int start_server(void) {
  static const char *const args[] = {
      "--device", "sim:mem=512M", "--faults", FAULTS,        "--fallback", "cpu", "--isolate",
      "2",        "--api-key",    API_KEY,    "--log-level", "error",      NULL};
  return gg_ts_start(&g_srv, "test-soak", 1, args, 60);
}

/* Stops the server (SIGTERM, then SIGKILL after 10 s) and removes its
 * folder; returns its exit code (gg_ts_status), -1 when not running. */
static int stop_server(void) {
  return gg_ts_stop(&g_srv, 1);
}

/* The guard's entry for device index i in a GET /api/device answer. */
static json_t *guard_device(json_t *state, size_t i) {
  return json_array_get(json_object_get(json_object_get(state, "guard"), "devices"), i);
}

static int64_t jint(json_t *j, const char *key) {
  return json_integer_value(json_object_get(j, key));
}

static double rss_of(json_t *state) {
  return json_number_value(json_object_get(json_object_get(state, "memory_info"), "rss_mb"));
}

/* Waits (sending cheap detect requests, which probe a half-open breaker)
 * until the primary's breaker is closed; returns the device state then, or
 * the last one seen. */
static json_t *settled_state(const char *img, size_t img_len) {
  json_t *st = NULL;
  for (int i = 0; i < 60; i++) {
    json_decref(st);
    st = get_json("/api/device");
    const char *br = json_string_value(json_object_get(guard_device(st, 0), "breaker"));
    if (br && !strcmp(br, "closed")) break;
    char *out = NULL;
    req_raw("POST", "/api/detect", "image/jpeg", img, img_len, &out);
    free(out);
    usleep(500 * 1000);
  }
  return st;
}

/* Runs `gpuguard stress --mix ... --json` against the server; returns its
 * exit status and the parsed report in *out. */
static int run_stress(int requests, json_t **out) {
  char url[64], nreq[16], report[128];
  snprintf(url, sizeof url, "http://127.0.0.1:%d", g_srv.port);
  snprintf(nreq, sizeof nreq, "%d", requests);
  snprintf(report, sizeof report, "%s/stress.json", g_srv.dir);
  pid_t p = fork();
  if (p == 0) {
    int fd = open(report, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || dup2(fd, 1) < 0) _exit(126);
    setenv("GPUGUARD_API_KEY", API_KEY, 1);
    const char *argv[] = {
        GG_BIN,           "stress", "--url",        url,   "--mix",         "default",
        "--requests",     nreq,     "--warmup",     "4",   "--concurrency", "2",
        "--sample-every", "5",      "--time-limit", "240", "--json",        NULL};
    execv(GG_BIN, (char *const *)argv);
    _exit(127);
  }
  int st = 0;
  waitpid(p, &st, 0);
  size_t n = 0;
  char *text = gg_ts_read_file(report, &n);
  *out = text ? json_loads(text, 0, NULL) : NULL;
  if (!*out) fprintf(stderr, "  stress printed no JSON report: %.400s\n", text ? text : "");
  free(text);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* Whether every status of one route in the stress report is among the
 * documented ones (docs/API.md; the switch route: docs/resilience.md). */
static int statuses_documented(json_t *route, const char *const *allowed) {
  const char *k;
  json_t *v;
  json_object_foreach(json_object_get(route, "status"), k, v) {
    int ok = 0;
    for (const char *const *a = allowed; *a; a++)
      ok |= !strcmp(k, *a);
    if (!ok) {
      fprintf(stderr, "  undocumented status %s (%lld times)\n", k,
              (long long)json_integer_value(v));
      return 0;
    }
  }
  return 1;
}

static int requests_for_run(void) {
  const char *env = getenv("GG_SOAK_REQUESTS");
  if (env && atoi(env) > 0) return atoi(env);
#if defined(__SANITIZE_ADDRESS__)
  return 40; /* the ASan build serves ~4x slower */
#else
  return 120;
#endif
}

/* The server runs with --isolate 2: every device, the CPU too, is in a
 * worker process, so the server's RSS holds what the HTTP side keeps (image
 * decoding, pipeline, gallery, tracks, events), not models: with the
 * default isolation it swings by ~120 MiB as the CPU fallback's models are
 * loaded and unloaded, which hides a leak (device memory is checked through
 * the pool counters instead). Measured on this 2-core VM (Release, 120
 * requests): 12.1 MiB at the baseline, 15.4 MiB after the same switch cycle
 * at the end, quarter floors 16.6 -> 17.4 MiB. glibc keeps freed blocks in
 * per-thread arenas (docs/resilience.md measured up to 15 MiB of such
 * growth before it flattens), so the bound is 16 MiB; a leak of 256 KiB per
 * POST (~30 MiB over the run) fails it (+36 MiB measured). */
#define RSS_BOUND_MB 16.0

static void test_soak(void) {
  size_t img_len = 0;
  char path[512];
  gg_t_cache_path(path, sizeof path, "models/face-api-1.7.15/demo/sample2.jpg");
  char *img = gg_ts_read_file(path, &img_len);
  if (!img) SKIP("sample photos missing: run scripts/fetch-models.sh");
  uint64_t t_start = gg_now_ns();
  /* Baseline in the state the stress run ends in: just switched back to
   * the primary (a switch reloads its models and unloads the fallback's). */
  ASSERT_EQ(switch_to("sim:mem=512M"), 200);
  ASSERT_EQ(switch_to(PRIMARY), 200);
  json_t *st0 = settled_state(img, img_len);
  ASSERT_TRUE(st0 != NULL);
  ASSERT_STREQ(json_string_value(json_object_get(guard_device(st0, 0), "breaker")), "closed");
  double rss0 = rss_of(st0);
  int64_t pool0 = jint(guard_device(st0, 0), "pool_allocated_bytes");

  int n = requests_for_run();
  json_t *r = NULL;
  int rc = run_stress(n, &r);
  ASSERT_TRUE(r != NULL);
  if (!r) {
    json_decref(st0);
    free(img);
    return;
  }
  fprintf(stderr, "  %d requests in %.1f s (%.1f s since the test started)\n", n,
          json_real_value(json_object_get(r, "wall_s")), (double)(gg_now_ns() - t_start) / 1e9);
  fprintf(stderr, "  sent %lld, served %lld, lost %lld, unexpected %lld, stress exit %d\n",
          (long long)jint(r, "sent"), (long long)jint(r, "served"), (long long)jint(r, "lost"),
          (long long)jint(r, "unexpected"), rc);
  /* Nothing lost, every answer documented (the stress tool's own
   * classification, then the statuses checked here again). */
  ASSERT_EQ(jint(r, "sent"), n);
  ASSERT_EQ(jint(r, "lost"), 0);
  ASSERT_EQ(jint(r, "unexpected"), 0);
  ASSERT_EQ(jint(r, "served"), n);
  json_t *routes = json_object_get(r, "routes");
  static const char *const rec_ok[] = {"200", "429", NULL}, *const det_ok[] = {"200", NULL},
                           *const enr_ok[] = {"201", "422", NULL},
                           *const sw_ok[] = {"200", "202", "409", NULL};
  ASSERT_TRUE(statuses_documented(json_object_get(routes, "recognize"), rec_ok));
  ASSERT_TRUE(statuses_documented(json_object_get(routes, "detect"), det_ok));
  ASSERT_TRUE(statuses_documented(json_object_get(routes, "enroll"), enr_ok));
  ASSERT_TRUE(statuses_documented(json_object_get(routes, "switch"), sw_ok));
  ASSERT_GE(jint(json_object_get(routes, "recognize"), "ok"), n / 2);
  ASSERT_GE(jint(json_object_get(routes, "enroll"), "ok"), 1);
  /* Device switches happened, and the run left the primary in place. */
  json_t *gd = json_object_get(r, "guard_delta");
  ASSERT_GE(jint(json_object_get(routes, "switch"), "ok"), 1);
  ASSERT_GE(jint(gd, "device_switches"), 1);
  ASSERT_TRUE(json_is_true(json_object_get(r, "restored_primary")));
  /* Faults were injected and every request that met one was still served:
   * retried on the sim, or answered by the CPU while its breaker was open. */
  ASSERT_GE(jint(gd, "launch_failures") + jint(gd, "ooms"), 1);
  ASSERT_GE(jint(gd, "retries") + jint(gd, "fallbacks"), 1);
  ASSERT_EQ(jint(gd, "failed"), 0);
  fprintf(stderr,
          "  guard: %lld launch failures, %lld OOMs, %lld retries, %lld fallbacks, %lld switches\n",
          (long long)jint(gd, "launch_failures"), (long long)jint(gd, "ooms"),
          (long long)jint(gd, "retries"), (long long)jint(gd, "fallbacks"),
          (long long)jint(gd, "device_switches"));
  char *metrics = NULL;
  ASSERT_EQ(req_raw("GET", "/metrics", NULL, NULL, 0, &metrics), 200);
  ASSERT_CONTAINS(metrics, "gpuguard_guard_failed_total 0\n");
  ASSERT_TRUE(metrics && !strstr(metrics, "gpuguard_guard_launch_failures_total 0\n"));
  free(metrics);

  /* Memory: the device pool back to its baseline, nothing leaked, the
   * server's RSS within the bound in the same state as the baseline (the
   * same switch cycle first), and no growth of the RSS floor between the
   * first and the last quarter of the run. */
  ASSERT_EQ(switch_to("sim:mem=512M"), 200);
  ASSERT_EQ(switch_to(PRIMARY), 200);
  json_t *st1 = settled_state(img, img_len);
  ASSERT_STREQ(json_string_value(json_object_get(guard_device(st1, 0), "breaker")), "closed");
  ASSERT_EQ(jint(guard_device(st1, 0), "pool_allocated_bytes"), pool0);
  ASSERT_EQ(jint(guard_device(st1, 0), "leaked_bytes"), 0);
  ASSERT_EQ(jint(guard_device(st1, 1), "leaked_bytes"), 0);
  double rss1 = rss_of(st1);
  json_t *mem = json_object_get(r, "server_rss_mb");
  fprintf(stderr, "  RSS baseline %.1f MiB, end %.1f MiB; run quarters min %.1f -> %.1f MiB\n",
          rss0, rss1, json_real_value(json_object_get(mem, "first_quarter_min")),
          json_real_value(json_object_get(mem, "last_quarter_min")));
  fprintf(stderr, "  done in %.1f s\n", (double)(gg_now_ns() - t_start) / 1e9);
#if defined(__SANITIZE_ADDRESS__)
  /* ASan's quarantine keeps up to 256 MiB of freed blocks resident, so the
   * RSS says nothing here; LeakSanitizer checks the server at exit
   * (clean_exit) instead. */
  fprintf(stderr, "  RSS bounds not checked under AddressSanitizer\n");
  (void)rss0;
  (void)rss1;
  (void)mem;
#else
  ASSERT_LE_F(rss1 - rss0, RSS_BOUND_MB);
  ASSERT_GE(jint(mem, "first_quarter_samples"), 1);
  ASSERT_GE(jint(mem, "last_quarter_samples"), 1);
  ASSERT_LE_F(json_real_value(json_object_get(mem, "last_quarter_min")) -
                  json_real_value(json_object_get(mem, "first_quarter_min")),
              RSS_BOUND_MB);
  /* Its own verdict too (nothing lost or unexpected, RSS floor flat). */
  ASSERT_EQ(rc, 0);
#endif
  json_decref(st0);
  json_decref(st1);
  json_decref(r);
  free(img);
}

/* The server stops on SIGTERM with status 0 after the soak: no crash, no
 * hang in shutdown, and in the sanitizer build no leak (LeakSanitizer makes
 * the exit status non-zero). */
static void test_clean_exit(void) {
  ASSERT_EQ(stop_server(), 0);
}

int main(int argc, char **argv) {
  signal(SIGPIPE, SIG_IGN);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  if (start_server() != 0) {
    fprintf(stderr, "could not start %s serve\n", GG_BIN);
    printf("0 passed, 1 failed, 0 skipped\n");
    return 1;
  }
  static const gg_test_case cases[] = {
      {"soak", test_soak},
      {"clean_exit", test_clean_exit},
      {0},
  };
  int rc = gg_test_main(argc, argv, cases);
  stop_server();
  curl_global_cleanup();
  return rc;
}
