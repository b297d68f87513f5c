/* gpuguard check-backend (src/cli/check.c) on the sim device: one model,
 * one image, 2 timed runs. The sim computes with the CPU kernels, so a clean
 * run must pass with predicted == measured, and --perturb (which shifts the
 * device outputs by a fraction of their range before comparing) must make
 * it fail: the comparison is live. The fault checks run on sim too: the
 * forced out-of-memory (a second pool holds the device), the sticky-error
 * recycle (the guard's fault injection), and the helper-process hog that
 * scripts/gpu-verify.sh uses on cuda. SKIPs visibly without the models. */
#include "gpuguard/error.h"
#include "test.h"

#include <jansson.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char g_dir[64], g_img[1024];

/* SKIP reason when blazeface or the sample photo is missing, else NULL. */
static const char *missing(void) {
  static char why[1200];
  gg_t_cache_path(g_img, sizeof g_img, "models/face-api-1.7.15/demo/sample1.jpg");
  char p[1200];
  gg_t_cache_path(p, sizeof p, "models/human-models-3.0.4/models/blazeface.json");
  const char *md = getenv("GPUGUARD_MODELS_DIR");
  if (access(g_img, R_OK)) {
    snprintf(why, sizeof why, "sample photo not fetched (%.1000s; scripts/fetch-models.sh)", g_img);
    return why;
  }
  if (access(p, R_OK) && !(md && *md)) {
    snprintf(why, sizeof why, "blazeface not fetched (%.1000s; scripts/fetch-models.sh)", p);
    return why;
  }
  return NULL;
}

/* Runs `gpuguard check-backend ARGS --json FILE` and returns its exit
 * status (-1 when it did not exit normally); *out gets the JSON (NULL when
 * none was written). The command's own output goes to `log`. */
static int run_check(const char *args, const char *tag, json_t **out) {
  char json[256], log[256], cmd[4096];
  snprintf(json, sizeof json, "%s/%s.json", g_dir, tag);
  snprintf(log, sizeof log, "%s/%s.log", g_dir, tag);
  unlink(json);
  snprintf(cmd, sizeof cmd,
           "'%s' check-backend --only blazeface --images '%s' %s --json '%s' >'%s' 2>&1", GG_BIN,
           g_img, args, json, log);
  int st = system(cmd);
  json_error_t je;
  *out = json_load_file(json, 0, &je);
  int rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  if (getenv("GG_CHECK_VERBOSE") || !*out) {
    snprintf(cmd, sizeof cmd, "cat '%s' >&2", log);
    (void)!system(cmd);
  }
  return rc;
}

static json_t *model0(json_t *root) {
  return json_array_get(json_object_get(root, "models"), 0);
}

static long long jint(json_t *o, const char *a, const char *b) {
  json_t *x = json_object_get(o, a);
  return json_integer_value(b ? json_object_get(x, b) : x);
}

static void test_sim_passes(void) {
  const char *why = missing();
  if (why) SKIP("%s", why);
  json_t *r = NULL;
  int rc = run_check("--device sim:mem=1G --runs 2 --warmup 1", "clean", &r);
  ASSERT_TRUE(r != NULL);
  ASSERT_EQ(rc, 0);
  ASSERT_TRUE(json_is_true(json_object_get(r, "pass")));
  ASSERT_STREQ(json_string_value(json_object_get(r, "schema")), "gpuguard.check-backend/1");
  json_t *m = model0(r);
  ASSERT_STREQ(json_string_value(json_object_get(m, "model")), "blazeface");
  ASSERT_TRUE(json_is_true(json_object_get(m, "pass")));
  ASSERT_EQ(jint(m, "images", NULL), 1);
  /* predicted == measured on the device, and it is the session's memory */
  long long pred = jint(m, "device_bytes", "predicted"), meas = jint(m, "device_bytes", "measured");
  ASSERT_GE(pred, 1 << 20);
  ASSERT_EQ(pred, meas);
  ASSERT_TRUE(json_is_true(json_object_get(json_object_get(m, "device_bytes"), "equal")));
  ASSERT_GE(jint(m, "ops", "device"), 1);
  ASSERT_EQ(jint(m, "ops", "host"), 0);
  ASSERT_STREQ(json_string_value(json_object_get(json_object_get(m, "plan"), "name")), "fast");
  json_t *outs = json_object_get(m, "outputs");
  ASSERT_EQ(json_array_size(outs), 4);
  for (size_t i = 0; i < json_array_size(outs); i++) {
    json_t *o = json_array_get(outs, i);
    ASSERT_TRUE(json_is_true(json_object_get(o, "pass")));
    /* the sim runs the CPU kernels: bit-identical */
    ASSERT_LE_F(json_real_value(json_object_get(o, "err_over_range")), 0.0);
    ASSERT_GT_F(json_real_value(json_object_get(o, "range")), 0.0);
  }
  json_t *t = json_object_get(m, "time_ms");
  ASSERT_GT_F(json_real_value(json_object_get(t, "device_median")), 0.0);
  ASSERT_GT_F(json_real_value(json_object_get(t, "cpu_median")), 0.0);
  ASSERT_GT_F(json_real_value(json_object_get(t, "cpu_over_device")), 0.0);
  json_decref(r);
}

/* A 1e-2 x range shift is ten times the tolerance: exit 1, outputs fail,
 * the bytes still pass. 1e-4 is under it: exit 0. */
static void test_perturbed_fails(void) {
  const char *why = missing();
  if (why) SKIP("%s", why);
  json_t *r = NULL;
  int rc = run_check("--device sim:mem=1G --runs 2 --warmup 1 --perturb 1e-2", "perturbed", &r);
  ASSERT_TRUE(r != NULL);
  ASSERT_EQ(rc, 1);
  ASSERT_FALSE(json_is_true(json_object_get(r, "pass")));
  json_t *m = model0(r);
  ASSERT_FALSE(json_is_true(json_object_get(m, "pass")));
  ASSERT_FALSE(json_is_true(json_object_get(m, "outputs_pass")));
  ASSERT_TRUE(json_is_true(json_object_get(m, "bytes_pass")));
  ASSERT_NEAR(json_real_value(json_object_get(m, "worst_err_over_range")), 1e-2, 1e-4);
  json_decref(r);
  rc = run_check("--device sim:mem=1G --runs 2 --warmup 1 --perturb 1e-4", "small", &r);
  ASSERT_TRUE(r != NULL);
  ASSERT_EQ(rc, 0);
  ASSERT_TRUE(json_is_true(json_object_get(r, "pass")));
  json_decref(r);
}

static json_t *fault(json_t *root, const char *name) {
  json_t *a = json_object_get(root, "fault_checks");
  for (size_t i = 0; i < json_array_size(a); i++)
    if (!strcmp(json_string_value(json_object_get(json_array_get(a, i), "name")), name))
      return json_array_get(a, i);
  return NULL;
}

static const char *status_of(json_t *root, const char *name) {
  return json_string_value(json_object_get(fault(root, name), "status"));
}

/* On sim: the forced OOM (a second pool fills it) fails with GG_EDEV_OOM
 * and serves again after; the sticky fault recycles the worker; the sim has
 * one plan, so the budget check is a visible SKIP. */
static void test_fault_checks_sim(void) {
  const char *why = missing();
  if (why) SKIP("%s", why);
  json_t *r = NULL;
  int rc = run_check("--device sim:mem=256M --runs 1 --warmup 0 --fault-checks", "faults", &r);
  ASSERT_TRUE(r != NULL);
  ASSERT_EQ(rc, 0);
  ASSERT_EQ(json_array_size(json_object_get(r, "fault_checks")), 3);
  ASSERT_STREQ(status_of(r, "budget_below_fast_plan"), "SKIP");
  ASSERT_STREQ(status_of(r, "forced_out_of_memory"), "PASS");
  json_t *d = json_object_get(fault(r, "forced_out_of_memory"), "detail");
  ASSERT_STREQ(json_string_value(json_object_get(d, "error_while_full")), "GG_EDEV_OOM");
  ASSERT_TRUE(json_is_true(json_object_get(d, "matched_after")));
  ASSERT_STREQ(status_of(r, "sticky_error_recycle"), "PASS");
  d = json_object_get(fault(r, "sticky_error_recycle"), "detail");
  ASSERT_GE(json_integer_value(json_object_get(d, "worker_restarts")), 1);
  json_decref(r);
}

/* The helper-process hog (what cuda uses): it starts, reports what it
 * holds and exits when told; on sim its memory is its own, so the check
 * must say so and SKIP, not pass or fail. */
static void test_hog_process(void) {
  const char *why = missing();
  if (why) SKIP("%s", why);
  json_t *r = NULL;
  int rc = run_check("--device sim:mem=256M --runs 1 --warmup 0 --fault-checks --oom-hog process",
                     "hog", &r);
  ASSERT_TRUE(r != NULL);
  ASSERT_EQ(rc, 0);
  ASSERT_STREQ(status_of(r, "forced_out_of_memory"), "SKIP");
  ASSERT_CONTAINS(json_string_value(json_object_get(fault(r, "forced_out_of_memory"), "reason")),
                  "belongs to its process");
  json_t *d = json_object_get(fault(r, "forced_out_of_memory"), "detail");
  ASSERT_GE(json_integer_value(json_object_get(d, "hog_held")), 200 << 20);
  json_decref(r);
}

/* A device that does not open: exit 1 and the JSON says why. */
static void test_bad_device(void) {
  const char *why = missing();
  if (why) SKIP("%s", why);
  json_t *r = NULL;
  int rc = run_check("--device nosuch:0 --runs 1", "nodev", &r);
  ASSERT_TRUE(r != NULL);
  ASSERT_EQ(rc, 1);
  ASSERT_FALSE(json_is_true(json_object_get(r, "pass")));
  ASSERT_CONTAINS(json_string_value(json_object_get(r, "error")), "nosuch:0");
  json_decref(r);
}

int main(int argc, char **argv) {
  snprintf(g_dir, sizeof g_dir, "/tmp/gg-check-XXXXXX");
  if (!mkdtemp(g_dir)) {
    perror("mkdtemp");
    return 1;
  }
  static const gg_test_case cases[] = {
      {"sim_passes", test_sim_passes},
      {"perturbed_fails", test_perturbed_fails},
      {"fault_checks_sim", test_fault_checks_sim},
      {"hog_process", test_hog_process},
      {"bad_device", test_bad_device},
      {NULL, NULL},
  };
  int rc = gg_test_main(argc, argv, cases);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
  (void)!system(cmd);
  return rc;
}
