/* `gpuguard infer --device sim:... --faults SPEC --fallback cpu`: the
 * resilience layer seen from the command line, with a real model. Each case
 * runs the real binary and checks its JSON report: which device served each
 * request, after how many attempts, the breaker and the worker afterwards. */
#include "test.h"

#include "gpuguard/error.h"

#include <jansson.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char g_img[1024];

/* Finds the sample image and the blazeface model; 0 when both are there. */
static int have_inputs(void) {
  gg_t_cache_path(g_img, sizeof g_img, "models/face-api-1.7.15/demo/sample1.jpg");
  char model[1024];
  gg_t_cache_path(model, sizeof model, "models/human-models-3.0.4/models/blazeface.json");
  return access(g_img, R_OK) || access(model, R_OK);
}

/* Runs `gpuguard infer --model blazeface --image IMG --json ARGS`; returns
 * the parsed report (NULL when the output is not JSON) and the exit status. */
static json_t *run_infer(const char *args, int *status) {
  char cmd[4096];
  snprintf(cmd, sizeof cmd,
           "%s infer --model blazeface --image %s --json --log-level error %s 2>/dev/null", GG_BIN,
           g_img, args);
  FILE *f = popen(cmd, "r");
  if (!f) return NULL;
  json_error_t je;
  json_t *r = json_loadf(f, 0, &je);
  int st = pclose(f);
  *status = WIFEXITED(st) ? WEXITSTATUS(st) : 128;
  if (!r) fprintf(stderr, "  not JSON from: %s (%s)\n", cmd, je.text);
  return r;
}

static json_t *request(json_t *r, size_t i) {
  return json_array_get(json_object_get(r, "requests"), i);
}

static const char *str(json_t *o, const char *k) {
  const char *s = json_string_value(json_object_get(o, k));
  return s ? s : "";
}

static long long num(json_t *o, const char *k) {
  return (long long)json_integer_value(json_object_get(o, k));
}

static json_t *device(json_t *r, size_t i) {
  return json_array_get(json_object_get(json_object_get(r, "guard"), "devices"), i);
}

static json_t *stats(json_t *r) {
  return json_object_get(json_object_get(r, "guard"), "stats");
}

/* Launch numbers on blazeface (113 ops, one launch each on the sim):
 * validation 1, warm-up 2-114, request 1 115-227; 171 is request 1's op 57. */

/* A sticky error mid-run: the request is retried on the CPU, the worker is
 * restarted, and the next request is back on the (recovered) sim device. */
static void test_sticky_falls_back_then_recovers(void) {
  if (have_inputs()) SKIP("models or sample images not fetched");
  int st = -1;
  json_t *r = run_infer("--device sim:mem=4560M --faults sticky@171 --fallback cpu --repeat 3 "
                        "--cooldown-ms 50 --interval-ms 100",
                        &st);
  ASSERT_TRUE(r != NULL);
  ASSERT_EQ(st, 0);
  json_t *r1 = request(r, 0), *r2 = request(r, 1), *r3 = request(r, 2);
  ASSERT_TRUE(json_is_true(json_object_get(r1, "served")));
  ASSERT_STREQ(str(r1, "device"), "cpu");
  ASSERT_EQ(num(r1, "attempts"), 2);
  ASSERT_TRUE(json_is_true(json_object_get(r1, "fell_back")));
  ASSERT_STREQ(str(r1, "last_error"), "GG_EDEVICE_LOST");
  ASSERT_CONTAINS(str(r2, "device"), "sim:mem=4560M");
  ASSERT_CONTAINS(str(r3, "device"), "sim:mem=4560M");
  ASSERT_EQ(num(r3, "attempts"), 1);
  /* The last request carries the outputs: blazeface has four. */
  ASSERT_EQ(json_array_size(json_object_get(r3, "outputs")), 4);
  ASSERT_GE(num(stats(r), "worker_restarts"), 1);
  ASSERT_EQ(num(stats(r), "leaked_bytes"), 0);
  ASSERT_STREQ(str(device(r, 0), "breaker"), "closed");
  json_decref(r);
}

/* A hung kernel costs one watchdog timeout and a worker restart. */
static void test_hang_costs_one_watchdog(void) {
  if (have_inputs()) SKIP("models or sample images not fetched");
  int st = -1;
  json_t *r = run_infer("--device sim:mem=4560M --faults hang@171 --fallback cpu --repeat 2 "
                        "--watchdog-ms 1000",
                        &st);
  ASSERT_TRUE(r != NULL);
  ASSERT_EQ(st, 0);
  ASSERT_STREQ(str(request(r, 0), "device"), "cpu");
  ASSERT_STREQ(str(request(r, 0), "last_error"), "GG_ETIMEOUT");
  ASSERT_CONTAINS(str(request(r, 1), "device"), "sim:");
  ASSERT_EQ(num(stats(r), "timeouts"), 1);
  ASSERT_EQ(num(stats(r), "worker_restarts"), 1);
  json_decref(r);
}

/* A launch failure is retried on the same device; no fallback needed. */
static void test_launch_retried_in_place(void) {
  if (have_inputs()) SKIP("models or sample images not fetched");
  int st = -1;
  json_t *r = run_infer("--device sim:mem=4560M --faults launch@171 --fallback cpu", &st);
  ASSERT_TRUE(r != NULL);
  ASSERT_EQ(st, 0);
  ASSERT_CONTAINS(str(request(r, 0), "device"), "sim:");
  ASSERT_EQ(num(request(r, 0), "attempts"), 2);
  ASSERT_FALSE(json_is_true(json_object_get(request(r, 0), "fell_back")));
  ASSERT_EQ(num(stats(r), "retries"), 1);
  json_decref(r);
}

/* Without a fallback, a device that cannot validate fails the request with
 * the driver's error, and the exit status says so. */
static void test_no_fallback_reports_failure(void) {
  if (have_inputs()) SKIP("models or sample images not fetched");
  int st = -1;
  json_t *r = run_infer("--device sim:mem=4560M --faults sticky@1", &st);
  ASSERT_TRUE(r != NULL);
  ASSERT_EQ(st, 1);
  ASSERT_FALSE(json_is_true(json_object_get(request(r, 0), "served")));
  ASSERT_STREQ(str(request(r, 0), "error"), "GG_EDEVICE_LOST");
  ASSERT_STREQ(str(device(r, 0), "breaker"), "open");
  json_decref(r);
}

/* Bad fault specs and unknown devices are usage errors with a message. */
static void test_bad_specs(void) {
  char cmd[2048], out[2048];
  snprintf(cmd, sizeof cmd,
           "%s infer --model blazeface --image /nonexistent.jpg --device sim --faults boom@1 2>&1",
           GG_BIN);
  FILE *f = popen(cmd, "r");
  ASSERT_TRUE(f != NULL);
  size_t n = fread(out, 1, sizeof out - 1, f);
  out[n] = 0;
  int st = pclose(f);
  ASSERT_EQ(WEXITSTATUS(st), 2);
  ASSERT_CONTAINS(out, "unknown fault kind 'boom'");
  if (have_inputs()) SKIP("models or sample images not fetched");
  snprintf(cmd, sizeof cmd, "%s infer --model blazeface --image %s --device warp:9 2>&1", GG_BIN,
           g_img);
  f = popen(cmd, "r");
  ASSERT_TRUE(f != NULL);
  n = fread(out, 1, sizeof out - 1, f);
  out[n] = 0;
  st = pclose(f);
  ASSERT_EQ(WEXITSTATUS(st), 1);
  ASSERT_CONTAINS(out, "unknown device 'warp:9'");
}

/* --dump-dir creates missing parents (mkdir -p); a path through a regular
 * file is a clear error naming the component. Direct (unguarded) path. */
static void test_dump_dir_parents(void) {
  if (have_inputs()) SKIP("models or sample images not fetched");
  char tmp[] = "/tmp/gg-dumpdir-XXXXXX";
  ASSERT_TRUE(mkdtemp(tmp) != NULL);
  char args[256], path[300];
  snprintf(args, sizeof args, "--dump-dir %s/a/b/c", tmp);
  int st = -1;
  json_t *r = run_infer(args, &st);
  json_decref(r);
  ASSERT_EQ(st, 0);
  snprintf(path, sizeof path, "%s/a/b/c/manifest.json", tmp);
  ASSERT_EQ(access(path, R_OK), 0);
  snprintf(path, sizeof path, "%s/file", tmp);
  FILE *f = fopen(path, "w");
  ASSERT_TRUE(f != NULL);
  fclose(f);
  char cmd[2048], out[2048];
  snprintf(cmd, sizeof cmd, "%s infer --model blazeface --image %s --dump-dir %s/sub 2>&1", GG_BIN,
           g_img, path);
  f = popen(cmd, "r");
  ASSERT_TRUE(f != NULL);
  size_t n = fread(out, 1, sizeof out - 1, f);
  out[n] = 0;
  st = pclose(f);
  ASSERT_EQ(WEXITSTATUS(st), 1);
  ASSERT_CONTAINS(out, "cannot create the dump directory");
  ASSERT_CONTAINS(out, "not a directory");
  snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
  ASSERT_EQ(system(cmd), 0);
}

int main(int argc, char **argv) {
  static const gg_test_case cases[] = {
      {"sticky_falls_back_then_recovers", test_sticky_falls_back_then_recovers},
      {"hang_costs_one_watchdog", test_hang_costs_one_watchdog},
      {"launch_retried_in_place", test_launch_retried_in_place},
      {"no_fallback_reports_failure", test_no_fallback_reports_failure},
      {"bad_specs", test_bad_specs},
      {"dump_dir_parents", test_dump_dir_parents},
      {0},
  };
  return gg_test_main(argc, argv, cases);
}
