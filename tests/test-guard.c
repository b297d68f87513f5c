/* Unit and integration tests for the resilience layer (src/guard): the
 * breaker, spec handling, the policy on cpu, worker isolation and crash
 * recovery, bad input, counters and exports. The fault matrix on the sim
 * device lives in test-faults.c. */
#include "gpuguard/core.h"
#include "gpuguard/engine.h"
#include "gpuguard/error.h"
#include "gpuguard/guard.h"
#include "gpuguard/log.h"
#include "gpuguard/render.h"
#include "guard/guard-impl.h"
#include "test.h"

#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/wait.h>
#include <unistd.h>

float gg__synthetic_reference(float x, int layers);

static void test_breaker(void) {
  gg__breaker b;
  gg__breaker_init(&b, 3, 1000, 500);
  ASSERT_EQ(gg__breaker_allow(&b, 0), 1);
  ASSERT_EQ(gg__breaker_failure(&b, 0, GG_EDEV_OOM, "oom"), 0);
  ASSERT_EQ(gg__breaker_failure(&b, 10, GG_EDEV_OOM, "oom"), 0);
  ASSERT_EQ(b.state, GG_BREAKER_CLOSED);
  /* failures outside the window do not count */
  ASSERT_EQ(gg__breaker_failure(&b, 2000, GG_EDEV_OOM, "oom"), 0);
  ASSERT_EQ(gg__breaker_failures_in_window(&b, 2000), 1);
  ASSERT_EQ(gg__breaker_failure(&b, 2100, GG_ELAUNCH, "launch"), 0);
  ASSERT_EQ(gg__breaker_failure(&b, 2200, GG_ELAUNCH, "launch 3"), 1);
  ASSERT_EQ(b.state, GG_BREAKER_OPEN);
  ASSERT_STREQ(b.reason, "launch 3");
  ASSERT_EQ(b.last_err, GG_ELAUNCH);
  ASSERT_TRUE(b.last_failure_unix_ms > 0);
  /* cooldown */
  ASSERT_EQ(gg__breaker_allow(&b, 2300), 0);
  ASSERT_EQ(gg__breaker_allow(&b, 2700), 2);
  ASSERT_EQ(b.state, GG_BREAKER_HALF_OPEN);
  /* a failed probe re-opens with a new cooldown */
  ASSERT_EQ(gg__breaker_failure(&b, 2710, GG_EDEVICE_LOST, "probe"), 1);
  ASSERT_EQ(b.state, GG_BREAKER_OPEN);
  ASSERT_EQ(gg__breaker_allow(&b, 3000), 0);
  ASSERT_EQ(gg__breaker_allow(&b, 3210), 2);
  ASSERT_EQ(gg__breaker_success(&b), 1);
  ASSERT_EQ(b.state, GG_BREAKER_CLOSED);
  ASSERT_EQ(gg__breaker_failures_in_window(&b, 3210), 0);
  ASSERT_EQ(gg__breaker_success(&b), 0);
  ASSERT_STREQ(gg_breaker_state_name(GG_BREAKER_HALF_OPEN), "half_open");
}

static void test_spec_faults(void) {
  char out[128];
  gg__spec_strip_faults("sim:mem=4560M,faults=oom@3,launch%0.1,sticky@2,hang@1,seed=7", out,
                        sizeof out);
  ASSERT_STREQ(out, "sim:mem=4560M,seed=7");
  gg__spec_strip_faults("sim:faults=oom@3", out, sizeof out);
  ASSERT_STREQ(out, "sim");
  gg__spec_strip_faults("cpu", out, sizeof out);
  ASSERT_STREQ(out, "cpu");
  gg__spec_set_faults("sim:mem=4560M,faults=oom@3,seed=7", "hang@1", out, sizeof out);
  ASSERT_STREQ(out, "sim:mem=4560M,seed=7,faults=hang@1");
  gg__spec_set_faults("sim", "oom%0.5", out, sizeof out);
  ASSERT_STREQ(out, "sim:faults=oom%0.5");
  gg_guard_spec_with_faults("sim:mem=4560M", "oom@3,hang@1", out, sizeof out);
  ASSERT_STREQ(out, "sim:mem=4560M,faults=oom@3,hang@1");
  gg_guard_spec_with_faults("sim:mem=4560M,faults=oom@3", NULL, out, sizeof out);
  ASSERT_STREQ(out, "sim:mem=4560M");
}

/* The chain the CLI flags build: faults folded into the primary unless it
 * names its own, empty entries and repeats skipped, overflow reported. */
static void test_config_chain(void) {
  gg_guard_config c;
  gg_guard_config_init(&c);
  char store[256];
  ASSERT_OK(
      gg_guard_config_chain(&c, "sim:mem=4560M", "sticky@3", ",cpu,,cpu", store, sizeof store));
  ASSERT_EQ(c.n_devices, 2);
  ASSERT_STREQ(c.devices[0], "sim:mem=4560M,faults=sticky@3");
  ASSERT_STREQ(c.devices[1], "cpu");
  ASSERT_OK(gg_guard_config_chain(&c, "sim:faults=oom@1", "hang@2", "", store, sizeof store));
  ASSERT_EQ(c.n_devices, 1);
  ASSERT_STREQ(c.devices[0], "sim:faults=oom@1");
  ASSERT_OK(gg_guard_config_chain(&c, "cpu", "", "cpu", store, sizeof store));
  ASSERT_EQ(c.n_devices, 1);
  char tiny[8];
  ASSERT_EQ(gg_guard_config_chain(&c, "sim:mem=4560M", NULL, NULL, tiny, sizeof tiny), GG_ERANGE);
}

static void fill(float *x, size_t n) {
  for (size_t i = 0; i < n; i++)
    x[i] = (float)(i % 17) - 8.0f;
}

/* Checks a synthetic result against the reference formula. */
static int check_output(const gg_guard_result *r, const float *in, size_t n, int layers) {
  if (r->n_outputs != 1 || gg_gtensor_count(&r->outputs[0]) != n) return 0;
  for (size_t i = 0; i < n; i++)
    if (!gg_t_near(r->outputs[0].data[i], gg__synthetic_reference(in[i], layers), 1e-5)) return 0;
  return 1;
}

static gg_guard_config base_config(void) {
  gg_guard_config c;
  gg_guard_config_init(&c);
  c.runner = "synthetic";
  c.worker_exe = GG_BIN;
  c.backoff_ms = 1;
  c.backoff_max_ms = 4;
  c.watchdog_ms = 2000;
  c.load_timeout_ms = 5000;
  c.breaker_cooldown_ms = 0;
  return c;
}

static void test_cpu_in_process(void) {
  gg_guard_config c = base_config();
  c.devices[0] = "cpu";
  c.n_devices = 1;
  gg_guard *g = NULL;
  ASSERT_OK(gg_guard_new(&c, &g));
  float x[2 * 8 * 8 * 3];
  fill(x, 384);
  gg_gtensor in = {.ndim = 4, .dims = {2, 8, 8, 3}, .data = x};
  gg_guard_result r;
  int rc = gg_guard_infer(g, "synthetic:1:5", &in, &r);
  gg_guard_device_status ds;
  gg_guard_device_status_get(g, 0, &ds);
  int ok = check_output(&r, x, 384, 5);
  gg_guard_result_release(&r);
  gg_guard_stats st;
  gg_guard_stats_get(g, &st);
  gg_guard_free(g);
  ASSERT_OK(rc);
  ASSERT_TRUE(ok);
  ASSERT_STREQ(r.device, "cpu");
  ASSERT_EQ(r.attempts, 1);
  ASSERT_EQ(r.fell_back, 0);
  ASSERT_EQ(ds.isolated, 0);
  ASSERT_EQ(ds.breaker, GG_BREAKER_CLOSED);
  ASSERT_EQ(ds.n_models, 1);
  ASSERT_GE(ds.pool_allocated, 1 << 20); /* the weights stay loaded */
  ASSERT_EQ(st.served, 1);
  ASSERT_EQ(st.loads, 1);
  ASSERT_EQ(st.leaked_bytes, 0);
  ASSERT_TRUE(r.planned_peak >= (1u << 20) + 2 * 384 * sizeof(float));
}

static void test_bad_input(void) {
  gg_guard_config c = base_config();
  c.devices[0] = "cpu";
  c.n_devices = 1;
  gg_guard *g = NULL;
  ASSERT_OK(gg_guard_new(&c, &g));
  float x[4] = {0};
  gg_gtensor bad = {.ndim = 2, .dims = {2, -1}, .data = x};
  gg_guard_result r;
  int rc1 = gg_guard_infer(g, "synthetic", &bad, &r);
  int a1 = r.attempts;
  gg_gtensor nodata = {.ndim = 1, .dims = {4}, .data = NULL};
  int rc2 = gg_guard_infer(g, "synthetic", &nodata, &r);
  gg_gtensor ok = {.ndim = 1, .dims = {4}, .data = x};
  int rc3 = gg_guard_infer(g, "not-a-model", &ok, &r); /* runner says: unknown model */
  int a3 = r.attempts;
  gg_guard_stats st;
  gg_guard_stats_get(g, &st);
  gg_guard_device_status ds;
  gg_guard_device_status_get(g, 0, &ds);
  gg_guard_free(g);
  ASSERT_EQ(rc1, GG_EINVAL);
  ASSERT_EQ(a1, 0);
  ASSERT_EQ(rc2, GG_EINVAL);
  ASSERT_EQ(gg_classify_err(rc3), GG_FAIL_BAD_INPUT);
  ASSERT_EQ(a3, 0);
  ASSERT_EQ(st.bad_input, 3);
  ASSERT_EQ(st.retries, 0);
  /* the caller's mistakes never count against the device */
  ASSERT_EQ(ds.breaker, GG_BREAKER_CLOSED);
  ASSERT_EQ(ds.failures_in_window, 0);
}

static void test_bad_config(void) {
  gg_guard_config c = base_config();
  gg_guard *g = NULL;
  ASSERT_EQ(gg_guard_new(&c, &g), GG_EINVAL);
  c.devices[0] = "tpu:0";
  c.n_devices = 1;
  ASSERT_EQ(gg_guard_new(&c, &g), GG_ENODEV);
  ASSERT_TRUE(g == NULL);
}

/* The worker process: results cross the socket and shared memory intact; a
 * worker killed behind the supervisor's back is noticed, the request is
 * served elsewhere, and the worker is restarted, re-validated and re-warmed. */
static void test_worker_crash(void) {
  gg_guard_config c = base_config();
  c.isolate = 2; /* cpu in a worker too, so this runs without the sim device */
  c.devices[0] = "cpu";
  c.devices[1] = "cpu";
  c.n_devices = 2;
  gg_guard *g = NULL;
  ASSERT_OK(gg_guard_new(&c, &g));
  float x[3 * 5 * 7];
  fill(x, 105);
  gg_gtensor in = {.ndim = 3, .dims = {3, 5, 7}, .data = x};
  gg_guard_result r1, r2, r3;
  ASSERT_OK(gg_guard_infer(g, "synthetic:2:3", &in, &r1));
  int ok1 = check_output(&r1, x, 105, 3);
  gg_guard_result_release(&r1);
  gg_guard_device_status d0;
  gg_guard_device_status_get(g, 0, &d0);
  ASSERT_TRUE(ok1);
  ASSERT_EQ(r1.device_index, 0);
  ASSERT_EQ(d0.isolated, 1);
  ASSERT_TRUE(d0.worker_pid > 0);
  ASSERT_NE(d0.worker_pid, getpid());
  kill(d0.worker_pid, SIGKILL);
  int rc2 = gg_guard_infer(g, "synthetic:2:3", &in, &r2);
  int ok2 = check_output(&r2, x, 105, 3);
  gg_guard_result_release(&r2);
  int rc3 = gg_guard_infer(g, "synthetic:2:3", &in, &r3);
  int ok3 = check_output(&r3, x, 105, 3);
  gg_guard_result_release(&r3);
  gg_guard_device_status d0b;
  gg_guard_device_status_get(g, 0, &d0b);
  gg_guard_stats st;
  gg_guard_stats_get(g, &st);
  gg_guard_free(g);
  ASSERT_OK(rc2);
  ASSERT_TRUE(ok2);
  ASSERT_EQ(r2.device_index, 1); /* the in-flight request went elsewhere */
  ASSERT_EQ(r2.last_error, GG_EDEVICE_LOST);
  ASSERT_EQ(r2.attempts, 2); /* the run on the dead worker, then cpu */
  ASSERT_OK(rc3);
  ASSERT_TRUE(ok3);
  ASSERT_EQ(r3.device_index, 0); /* back on the restarted worker */
  ASSERT_EQ(d0b.worker_restarts, 1);
  ASSERT_TRUE(d0b.worker_pid > 0 && d0b.worker_pid != d0.worker_pid);
  ASSERT_EQ(d0b.n_models, 1);
  ASSERT_EQ(st.device_lost, 1);
  ASSERT_EQ(st.worker_crashes, 1);
  ASSERT_EQ(st.fallbacks, 1);
  ASSERT_EQ(st.worker_restarts, 1);
  ASSERT_EQ(st.leaked_bytes, 0);
  /* the killed worker was reaped: no zombie children left */
  ASSERT_EQ(waitpid(-1, NULL, WNOHANG), -1);
}

/* Periodic cleanup: the pool is trimmed every N completed requests. */
static void test_cleanup_cadence(void) {
  gg_guard_config c = base_config();
  c.devices[0] = "cpu";
  c.n_devices = 1;
  c.cleanup_every = 3;
  gg_guard *g = NULL;
  ASSERT_OK(gg_guard_new(&c, &g));
  float x[64];
  fill(x, 64);
  gg_gtensor in = {.ndim = 1, .dims = {64}, .data = x};
  int fails = 0;
  for (int i = 0; i < 7; i++) {
    gg_guard_result r;
    fails += gg_guard_infer(g, "synthetic:1", &in, &r) != 0;
    gg_guard_result_release(&r);
  }
  gg_guard_stats st;
  gg_guard_stats_get(g, &st);
  gg_guard_free(g);
  ASSERT_EQ(fails, 0);
  /* the pool counts requests (the warmup is not one): 7 / 3 = 2 cleanups */
  ASSERT_EQ(st.cleanups, 2);
}

static void test_exports(void) {
  gg_guard_config c = base_config();
  c.devices[0] = "cpu";
  c.n_devices = 1;
  gg_guard *g = NULL;
  ASSERT_OK(gg_guard_new(&c, &g));
  float x[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  gg_gtensor in = {.ndim = 1, .dims = {8}, .data = x};
  gg_guard_result r;
  ASSERT_OK(gg_guard_infer(g, "synthetic:1", &in, &r));
  gg_guard_result_release(&r);
  json_t *j = gg_guard_json(g);
  char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
  char *prom = gg_guard_prometheus(g);
  int failed = gg_guard_gpu_failed(g);
  gg_guard_free(g);
  json_decref(j);
  ASSERT_TRUE(text != NULL);
  ASSERT_CONTAINS(text, "\"gpu_failed\":false");
  ASSERT_CONTAINS(text, "\"served\":1");
  ASSERT_CONTAINS(text, "\"breaker\":\"closed\"");
  ASSERT_CONTAINS(text, "\"last_failure\":null");
  ASSERT_CONTAINS(prom, "gpuguard_guard_served_total 1\n");
  ASSERT_CONTAINS(prom, "gpuguard_guard_breaker_state{device=\"cpu\",index=\"0\"} 0\n");
  ASSERT_EQ(failed, 0);
  free(text);
  free(prom);
}

/* Admission: a request whose planned peak exceeds the device budget never
 * starts there; the next device serves it. */
static void test_admission_budget(void) {
  gg_guard_config c = base_config();
  c.devices[0] = "sim:mem=256M";
  c.devices[1] = "cpu";
  c.n_devices = 2;
  c.mem_budget = 24u << 20;
  gg_guard *g = NULL;
  ASSERT_OK(gg_guard_new(&c, &g));
  size_t n = 8u << 20; /* 32 MiB input: peak = 1 MiB + 2 x 32 MiB */
  float *x = malloc(n * sizeof(float));
  ASSERT_TRUE(x != NULL);
  fill(x, n);
  gg_gtensor big = {.ndim = 2, .dims = {2048, 4096}, .data = x};
  gg_gtensor small = {.ndim = 2, .dims = {16, 16}, .data = x};
  gg_guard_result r1, r2;
  int rc0 = gg_guard_load(g, "synthetic:1");
  gg_guard_device_status before, after;
  gg_guard_device_status_get(g, 0, &before);
  int rc1 = gg_guard_infer(g, "synthetic:1", &big, &r1);
  gg_guard_device_status_get(g, 0, &after);
  int ok1 = check_output(&r1, x, n, 4);
  gg_guard_result_release(&r1);
  int rc2 = gg_guard_infer(g, "synthetic:1", &small, &r2);
  int ok2 = check_output(&r2, x, 256, 4);
  gg_guard_result_release(&r2);
  gg_guard_stats st;
  gg_guard_stats_get(g, &st);
  gg_guard_free(g);
  free(x);
  ASSERT_OK(rc0);
  ASSERT_OK(rc1);
  ASSERT_TRUE(ok1);
  ASSERT_EQ(r1.device_index, 1);
  ASSERT_EQ(r1.attempts, 1); /* only the cpu run */
  ASSERT_EQ(r1.last_error, GG_EBUDGET);
  ASSERT_EQ(before.budget, 24u << 20);
  /* nothing was started on the sim: no launch, no raw allocation */
  ASSERT_U64_EQ(after.launches, before.launches);
  ASSERT_U64_EQ(after.raw_allocs, before.raw_allocs);
  ASSERT_EQ(after.breaker, GG_BREAKER_CLOSED); /* not the device's fault */
  ASSERT_OK(rc2);
  ASSERT_TRUE(ok2);
  ASSERT_EQ(r2.device_index, 0);
  ASSERT_EQ(st.admission_rejects, 1);
}

/* Two models that do not fit the budget together take turns (the least
 * recently used one is unloaded, not a failure), and a model bigger than
 * the whole budget fails with GG_EBUDGET without taking the device out of
 * service for the others. Isolated, as a GPU would be. */
static void test_budget_eviction(void) {
  gg_guard_config c = base_config();
  c.devices[0] = "sim:mem=256M";
  c.n_devices = 1;
  c.mem_budget = 40u << 20; /* each 24 MiB model fits alone, not both */
  gg_guard *g = NULL;
  ASSERT_OK(gg_guard_new(&c, &g));
  float x[256];
  fill(x, 256);
  gg_gtensor in = {.ndim = 2, .dims = {16, 16}, .data = x};
  static const char *const order[] = {"synthetic:24:3", "synthetic:24:5", "synthetic:24:3",
                                      "synthetic:64", "synthetic:24:5"};
  static const int layers[] = {3, 5, 3, 0, 5};
  int rc[5], ok[5], attempts[5];
  gg_guard_device_status ds[5];
  for (int i = 0; i < 5; i++) {
    gg_guard_result r;
    memset(&r, 0, sizeof r);
    rc[i] = gg_guard_infer(g, order[i], &in, &r);
    ok[i] = rc[i] == 0 && check_output(&r, x, 256, layers[i]);
    attempts[i] = r.attempts;
    gg_guard_result_release(&r);
    gg_guard_device_status_get(g, 0, &ds[i]);
  }
  gg_guard_stats st;
  gg_guard_stats_get(g, &st);
  gg_guard_free(g);
  for (int i = 0; i < 5; i++) {
    if (i == 3) continue;
    ASSERT_OK(rc[i]);
    ASSERT_TRUE(ok[i]);
    ASSERT_EQ(attempts[i], 1);
    ASSERT_EQ(ds[i].n_models, 1); /* the other one was unloaded to make room */
    ASSERT_TRUE(ds[i].pool_reserved <= (40u << 20));
  }
  ASSERT_EQ(rc[3], GG_EBUDGET);
  ASSERT_EQ(ds[3].breaker, GG_BREAKER_CLOSED);
  ASSERT_EQ(ds[4].breaker, GG_BREAKER_CLOSED);
  ASSERT_EQ(st.breaker_opened, 0);
  ASSERT_EQ(st.served, 4);
  ASSERT_EQ(st.leaked_bytes, 0);
}

/* Device switching: cpu -> sim with models moved, and a rollback when the
 * new device cannot take them. */
static void test_switch(void) {
  gg_guard_config c = base_config();
  c.devices[0] = "cpu";
  c.n_devices = 1;
  c.mem_budget = 8u << 20;
  gg_guard *g = NULL;
  ASSERT_OK(gg_guard_new(&c, &g));
  float x[64];
  fill(x, 64);
  gg_gtensor in = {.ndim = 1, .dims = {64}, .data = x};
  gg_guard_result r;
  ASSERT_OK(gg_guard_infer(g, "synthetic:2", &in, &r));
  gg_guard_result_release(&r);
  ASSERT_OK(gg_guard_switch_device(g, "sim:mem=64M"));
  gg_guard_device_status d0, d1;
  gg_guard_device_status_get(g, 0, &d0);
  gg_guard_device_status_get(g, 1, &d1);
  int rc = gg_guard_infer(g, "synthetic:2", &in, &r);
  int ok = check_output(&r, x, 64, 4);
  gg_guard_result_release(&r);
  /* a model of 16 MiB cannot load under an 8 MiB budget: switching back to
   * a sim with it loaded is impossible, so load it on cpu first */
  int n_before = gg_guard_device_count(g);
  ASSERT_OK(gg_guard_switch_device(g, "cpu"));
  ASSERT_OK(gg_guard_load(g, "synthetic:16"));
  int rb = gg_guard_switch_device(g, "sim:mem=64M");
  gg_guard_device_status after;
  gg_guard_device_status_get(g, 0, &after);
  gg_guard_stats st;
  gg_guard_stats_get(g, &st);
  gg_guard_free(g);
  ASSERT_STREQ(d0.spec, "sim:mem=64M");
  ASSERT_EQ(d0.n_models, 1);
  ASSERT_STREQ(d1.spec, "cpu"); /* the old primary is the fallback now */
  ASSERT_EQ(d1.n_models, 0);    /* and its models were unloaded */
  ASSERT_OK(rc);
  ASSERT_TRUE(ok);
  ASSERT_EQ(r.device_index, 0);
  ASSERT_EQ(n_before, 2);
  ASSERT_NE(rb, 0);                /* the switch failed ... */
  ASSERT_STREQ(after.spec, "cpu"); /* ... and rolled back */
  ASSERT_EQ(after.n_models, 2);    /* with both models reloaded */
  ASSERT_EQ(st.switch_rollbacks, 1);
  ASSERT_EQ(st.device_switches, 3);
  ASSERT_EQ(st.leaked_bytes, 0);
}

/* Real models through the worker: the engine runner on the sim (isolated)
 * and on cpu must give the same numbers; a sticky fault mid-way moves the
 * request to cpu and the worker comes back. */
static void test_engine_model(void) {
  char path[1024];
  if (gg_model_resolve("blazeface", path, sizeof path) != 0)
    SKIP("blazeface model not found (%s); run scripts/fetch-models.sh", path);
  gg_guard_config c = base_config();
  c.runner = "engine";
  /* launches: validation 1, warmup 2-114 (one per op, 113 ops), request a
   * 115-227, request b 228-340: sticky at b's op 57 */
  c.devices[0] = "sim:mem=512M,faults=sticky@284";
  c.devices[1] = "cpu";
  c.n_devices = 2;
  c.watchdog_ms = 20000;
  c.load_timeout_ms = 60000;
  gg_guard *g = NULL;
  ASSERT_OK(gg_guard_new(&c, &g));
  size_t n = 256 * 256 * 3;
  float *x = malloc(n * sizeof(float));
  ASSERT_TRUE(x != NULL);
  for (size_t i = 0; i < n; i++)
    x[i] = (float)((i * 7) % 255) / 127.5f - 1.0f;
  gg_gtensor in = {.ndim = 4, .dims = {1, 256, 256, 3}, .data = x};
  gg_guard_result a, b, d;
  int ra = gg_guard_infer(g, "blazeface", &in, &a);
  int rb = gg_guard_infer(g, "blazeface", &in, &b);
  int rd = gg_guard_infer(g, "blazeface", &in, &d);
  gg_guard_device_status ds;
  gg_guard_device_status_get(g, 0, &ds);
  int same = ra == 0 && rb == 0 && a.n_outputs >= 1 && a.n_outputs == b.n_outputs;
  double maxdiff = 0;
  for (int o = 0; same && o < a.n_outputs; o++) {
    size_t cnt = gg_gtensor_count(&a.outputs[o]);
    if (cnt != gg_gtensor_count(&b.outputs[o]) || cnt == 0) {
      same = 0;
      break;
    }
    for (size_t i = 0; i < cnt; i++) {
      double dd = fabs((double)a.outputs[o].data[i] - (double)b.outputs[o].data[i]);
      maxdiff = gg_t_max_err(maxdiff, dd);
    }
  }
  /* a wrong input shape is the caller's fault: rejected, never retried */
  gg_gtensor wrong = {.ndim = 4, .dims = {1, 100, 7, 3}, .data = x};
  gg_guard_result w;
  int rw = gg_guard_infer(g, "blazeface", &wrong, &w);
  gg_guard_device_status dw;
  gg_guard_device_status_get(g, 0, &dw);
  int a_dev = a.device_index, b_dev = b.device_index, d_dev = d.device_index;
  uint64_t peak = a.planned_peak;
  gg_guard_result_release(&a);
  gg_guard_result_release(&b);
  gg_guard_result_release(&d);
  gg_guard_shutdown(g);
  gg_guard_stats st;
  gg_guard_stats_get(g, &st);
  gg_guard_free(g);
  free(x);
  ASSERT_OK(ra);
  ASSERT_OK(rb);
  ASSERT_OK(rd);
  ASSERT_EQ(a_dev, 0); /* on the sim worker */
  ASSERT_EQ(b_dev, 1); /* sticky fault: served by cpu */
  ASSERT_EQ(d_dev, 0); /* worker restarted, back on the sim */
  ASSERT_TRUE(same);
  ASSERT_LT_F(maxdiff, 1e-4);
  ASSERT_TRUE(peak > 0);
  ASSERT_EQ(ds.worker_restarts, 1);
  ASSERT_EQ(st.device_lost, 1);
  ASSERT_EQ(st.leaked_bytes, 0);
  ASSERT_EQ(gg_classify_err(rw), GG_FAIL_BAD_INPUT);
  ASSERT_EQ(w.attempts, 0);
  ASSERT_EQ(w.failures, 0);
  ASSERT_EQ(dw.breaker, GG_BREAKER_CLOSED);
  ASSERT_EQ(dw.worker_restarts, 1);
  fprintf(stderr, "  blazeface: planned peak %llu bytes, sim vs cpu max |diff| %g\n",
          (unsigned long long)peak, maxdiff);
}

/* Many threads at once on a sim (worker) + cpu chain with a sticky fault in
 * the middle: every request answered, every answer right, nothing leaked. */
typedef struct thr_arg {
  gg_guard *g;
  int ok, fail, wrong;
} thr_arg;

static void *thr_main(void *p) {
  thr_arg *a = p;
  float x[300];
  fill(x, 300);
  gg_gtensor in = {.ndim = 3, .dims = {10, 10, 3}, .data = x};
  for (int i = 0; i < 12; i++) {
    gg_guard_result r;
    int rc = gg_guard_infer(a->g, "synthetic:1:2", &in, &r);
    if (rc)
      a->fail++;
    else if (!check_output(&r, x, 300, 2))
      a->wrong++;
    else
      a->ok++;
    gg_guard_result_release(&r);
  }
  return NULL;
}

static void test_concurrent(void) {
  gg_guard_config c = base_config();
  c.devices[0] = "sim:mem=128M,faults=sticky@20";
  c.devices[1] = "cpu";
  c.n_devices = 2;
  c.queue_wait_ms = 10000;
  gg_guard *g = NULL;
  ASSERT_OK(gg_guard_new(&c, &g));
  enum { NT = 4 };
  pthread_t t[NT];
  thr_arg a[NT];
  for (int i = 0; i < NT; i++) {
    a[i] = (thr_arg){g, 0, 0, 0};
    pthread_create(&t[i], NULL, thr_main, &a[i]);
  }
  int ok = 0, fail = 0, wrong = 0;
  for (int i = 0; i < NT; i++) {
    pthread_join(t[i], NULL);
    ok += a[i].ok;
    fail += a[i].fail;
    wrong += a[i].wrong;
  }
  gg_guard_shutdown(g);
  gg_guard_stats st;
  gg_guard_stats_get(g, &st);
  gg_guard_free(g);
  ASSERT_EQ(ok, NT * 12);
  ASSERT_EQ(fail, 0);
  ASSERT_EQ(wrong, 0);
  ASSERT_EQ(st.served, NT * 12);
  ASSERT_EQ(st.device_lost, 1);
  ASSERT_EQ(st.worker_restarts, 1);
  ASSERT_EQ(st.leaked_bytes, 0);
}

/* The stable log lines users grep for. */
static char g_logbuf[65536];
static size_t g_loglen;
static pthread_mutex_t g_loglock = PTHREAD_MUTEX_INITIALIZER;

static void log_sink(gg_log_level level, const char *line, void *user) {
  pthread_mutex_lock(&g_loglock);
  size_t n = strlen(line);
  if (g_loglen + n + 1 < sizeof g_logbuf) {
    memcpy(g_logbuf + g_loglen, line, n);
    g_loglen += n;
    g_logbuf[g_loglen++] = '\n';
    g_logbuf[g_loglen] = 0;
  }
  pthread_mutex_unlock(&g_loglock);
}

static void test_log_lines(void) {
  gg_guard_config c = base_config();
  /* after validation (3 raw allocations), every allocation fails: the load
   * fails 3 times (the pool tries two segment sizes each time) */
  c.devices[0] = "sim:mem=64M,faults=oom@4,oom@5,oom@6,oom@7,oom@8,oom@9";
  c.devices[1] = "cpu";
  c.n_devices = 2;
  c.breaker_cooldown_ms = 0;
  g_loglen = 0;
  g_logbuf[0] = 0;
  gg_log_set_sink(log_sink, NULL);
  gg_guard *g = NULL;
  int rc0 = gg_guard_new(&c, &g);
  float x[64];
  fill(x, 64);
  gg_gtensor in = {.ndim = 1, .dims = {64}, .data = x};
  gg_guard_result r1, r2;
  int rc1 = rc0 ? rc0 : gg_guard_infer(g, "synthetic:1", &in, &r1);
  gg_guard_device_status d1;
  gg_guard_device_status_get(g, 0, &d1);
  int failed1 = gg_guard_gpu_failed(g);
  int rc2 = rc0 ? rc0 : gg_guard_infer(g, "synthetic:1", &in, &r2);
  int failed2 = gg_guard_gpu_failed(g);
  gg_guard_result_release(&r1);
  gg_guard_result_release(&r2);
  gg_guard_free(g);
  gg_log_set_sink(NULL, NULL);
  ASSERT_OK(rc1);
  ASSERT_EQ(r1.device_index, 1);
  ASSERT_EQ(r1.failures, 3);
  ASSERT_EQ(d1.breaker, GG_BREAKER_OPEN);
  ASSERT_EQ(d1.last_failure_error, GG_EDEV_OOM);
  ASSERT_TRUE(d1.last_failure_unix_ms > 0);
  ASSERT_CONTAINS(d1.last_failure_reason, "model load");
  ASSERT_EQ(failed1, 1);
  ASSERT_OK(rc2);
  ASSERT_EQ(r2.device_index, 0);
  ASSERT_EQ(failed2, 0);
  ASSERT_CONTAINS(g_logbuf, "[GPU] Persistent GPU memory errors, falling back to CPU");
  ASSERT_CONTAINS(g_logbuf, "[GPU] Recovered, back on sim:mem=64M");
  ASSERT_CONTAINS(g_logbuf, "[GPU] Memory cleanup completed");
}

static void test_validation_failed_line(void) {
  gg_guard_config c = base_config();
  c.devices[0] = "sim:mem=64M,faults=launch@1"; /* the validation kernel */
  c.devices[1] = "cpu";
  c.n_devices = 2;
  c.breaker_cooldown_ms = 60000;
  g_loglen = 0;
  g_logbuf[0] = 0;
  gg_log_set_sink(log_sink, NULL);
  gg_guard *g = NULL;
  int rc0 = gg_guard_new(&c, &g);
  gg_guard_device_status d;
  gg_guard_device_status_get(g, 0, &d);
  float x[8] = {0};
  gg_gtensor in = {.ndim = 1, .dims = {8}, .data = x};
  gg_guard_result r;
  int rc = gg_guard_infer(g, "synthetic:1", &in, &r);
  gg_guard_result_release(&r);
  gg_guard_free(g);
  gg_log_set_sink(NULL, NULL);
  ASSERT_OK(rc0); /* an unusable device is not an error for the guard */
  ASSERT_EQ(d.breaker, GG_BREAKER_OPEN);
  ASSERT_CONTAINS(d.last_failure_reason, "launch");
  ASSERT_OK(rc);
  ASSERT_EQ(r.device_index, 1);
  ASSERT_EQ(r.attempts, 1);
  ASSERT_CONTAINS(g_logbuf, "[GPU] GPU validation failed on sim");
}

/* gg_guard_tick(): a device whose cooldown passed is probed without a
 * request, and comes back. */
static void test_tick_probe(void) {
  gg_guard_config c = base_config();
  c.devices[0] = "sim:mem=64M,faults=launch@1"; /* fails validation at start */
  c.devices[1] = "cpu";
  c.n_devices = 2;
  c.breaker_cooldown_ms = 0;
  gg_guard *g = NULL;
  ASSERT_OK(gg_guard_new(&c, &g));
  gg_guard_device_status before, after;
  gg_guard_device_status_get(g, 0, &before);
  int failed_before = gg_guard_gpu_failed(g);
  int closed = gg_guard_tick(g);
  gg_guard_device_status_get(g, 0, &after);
  int failed_after = gg_guard_gpu_failed(g);
  int again = gg_guard_tick(g); /* nothing left to probe */
  gg_guard_stats st;
  gg_guard_stats_get(g, &st);
  gg_guard_free(g);
  ASSERT_EQ(before.breaker, GG_BREAKER_OPEN);
  ASSERT_EQ(before.worker_pid, 0);
  ASSERT_EQ(failed_before, 1);
  ASSERT_EQ(closed, 1);
  ASSERT_EQ(after.breaker, GG_BREAKER_CLOSED);
  ASSERT_TRUE(after.worker_pid > 0);
  ASSERT_EQ(after.worker_restarts, 1);
  ASSERT_EQ(failed_after, 0);
  ASSERT_EQ(again, 0);
  ASSERT_EQ(st.breaker_opened, 1);
  ASSERT_EQ(st.breaker_half_opened, 1);
  ASSERT_EQ(st.breaker_closed, 1);
}

/* ---- issue 10: switching under load, the chain's rules, effective specs -- */

typedef struct lat_arg {
  gg_guard *g;
  atomic_int stop;
  int ok, fail, wrong;
  int during;    /* requests that finished while the switch was still preparing */
  double max_ms; /* the slowest request */
} lat_arg;

static void *lat_main(void *p) {
  lat_arg *a = p;
  float x[300];
  fill(x, 300);
  gg_gtensor in = {.ndim = 3, .dims = {10, 10, 3}, .data = x};
  while (!atomic_load(&a->stop)) {
    gg_guard_result r;
    uint64_t t0 = gg_now_ns();
    int rc = gg_guard_infer(a->g, "synthetic:1:2", &in, &r);
    double ms = (double)(gg_now_ns() - t0) / 1e6;
    gg_guard_switch_status sw;
    gg_guard_switch_status_get(a->g, &sw);
    if (ms > a->max_ms) a->max_ms = ms;
    if (rc)
      a->fail++;
    else if (!check_output(&r, x, 300, 2))
      a->wrong++;
    else
      a->ok++;
    if (!rc && sw.state == GG_SWITCH_PREPARING) a->during++;
    gg_guard_result_release(&r);
    usleep(5000);
  }
  return NULL;
}

/* A switch to a device whose start hangs (sim hang@1: the validation kernel
 * never completes) is prepared in the background: requests keep being served
 * by the current primary at their usual speed, a second switch is refused,
 * and the watchdog ends it as a failed switch that changed nothing. */
static void test_switch_hang_background(void) {
  gg_guard_config c = base_config();
  c.devices[0] = "cpu";
  c.n_devices = 1;
  c.watchdog_ms = 3000;     /* how long the hang lasts before it is killed */
  c.load_timeout_ms = 8000; /* a worker's exec + device open */
  gg_guard *g = NULL;
  ASSERT_OK(gg_guard_new(&c, &g));
  ASSERT_OK(gg_guard_load(g, "synthetic:1:2"));
  enum { NT = 2 };
  pthread_t t[NT];
  lat_arg a[NT];
  for (int i = 0; i < NT; i++) {
    memset(&a[i], 0, sizeof a[i]);
    a[i].g = g;
    pthread_create(&t[i], NULL, lat_main, &a[i]);
  }
  uint64_t id = 0, id2 = 0;
  int rc = gg_guard_switch_start(g, "sim:mem=64M,faults=hang@1", &id);
  int busy_sync = gg_guard_switch_device(g, "cpu");
  int busy_async = gg_guard_switch_start(g, "cpu", &id2);
  gg_guard_switch_status mid, end;
  gg_guard_switch_status_get(g, &mid);
  int failed_mid = gg_guard_gpu_failed(g);
  int wr = gg_guard_switch_wait(g, id, 30000, &end);
  for (int i = 0; i < NT; i++) {
    atomic_store(&a[i].stop, 1);
    pthread_join(t[i], NULL);
  }
  int ok = 0, fail = 0, wrong = 0, during = 0;
  double max_ms = 0;
  for (int i = 0; i < NT; i++) {
    ok += a[i].ok;
    fail += a[i].fail;
    wrong += a[i].wrong;
    during += a[i].during;
    max_ms = a[i].max_ms > max_ms ? a[i].max_ms : max_ms;
  }
  gg_guard_device_status d0;
  gg_guard_device_status_get(g, 0, &d0);
  int n = gg_guard_device_count(g);
  gg_guard_stats st;
  gg_guard_stats_get(g, &st);
  gg_guard_free(g);
  ASSERT_OK(rc);
  ASSERT_EQ(id, 1);
  ASSERT_EQ(busy_sync, GG_EBUSY); /* one switch at a time */
  ASSERT_EQ(busy_async, GG_EBUSY);
  ASSERT_EQ(mid.state, GG_SWITCH_PREPARING);
  ASSERT_STREQ(mid.to, "sim:mem=64M,faults=hang@1");
  ASSERT_STREQ(mid.from, "cpu");
  ASSERT_EQ(failed_mid, 0); /* the service stays ready on the old primary */
  ASSERT_OK(wr);
  ASSERT_EQ(end.state, GG_SWITCH_FAILED);
  ASSERT_EQ(end.error, GG_ETIMEOUT);
  ASSERT_CONTAINS(end.reason, "watchdog");
  ASSERT_GE_F(end.elapsed_ms, 2500.0);
  /* the hung validation kernel had the run watchdog (3 s), not the 8 s
   * allowed for a worker's exec and device open */
  ASSERT_LT_F(end.elapsed_ms, 6500.0);
  /* rolled back: nothing changed */
  ASSERT_STREQ(d0.spec, "cpu");
  ASSERT_EQ(d0.n_models, 1);
  ASSERT_EQ(n, 1);
  ASSERT_EQ(st.switch_rollbacks, 1);
  ASSERT_EQ(st.device_switches, 1);
  /* and nobody waited for it: requests finished while it was preparing, each
   * far quicker than the 3 s hang (generous bound for a loaded machine) */
  ASSERT_LT_F(max_ms, 1500.0);
  ASSERT_GE(during, 4);
  ASSERT_EQ(fail, 0);
  ASSERT_EQ(wrong, 0);
  ASSERT_GE(ok, during);
}

/* Fills spec[i] with the chain's specs; returns the count. */
static int chain_specs(gg_guard *g, char spec[][128], int *configured) {
  int n = gg_guard_device_count(g);
  for (int i = 0; i < n; i++) {
    gg_guard_device_status st;
    gg_guard_device_status_get(g, i, &st);
    snprintf(spec[i], 128, "%s", st.spec);
    configured[i] = st.configured;
  }
  return n;
}

/* Configured devices are never evicted (issue 10, item 9): from a chain of
 * just `cpu`, six switches to different sims leave [sim seed=6, cpu], not
 * four sims; a device switched to at run time leaves when it stops being
 * primary, and configured fallbacks keep their configured order. */
static void test_switch_keeps_configured(void) {
  gg_guard_config c = base_config();
  c.devices[0] = "cpu";
  c.n_devices = 1;
  gg_guard *g = NULL;
  ASSERT_OK(gg_guard_new(&c, &g));
  ASSERT_OK(gg_guard_load(g, "synthetic:1:2"));
  char spec[8][128];
  int conf[8];
  int rcs = 0, cpu_missing = 0, longest = 0;
  for (int i = 1; i <= 6; i++) {
    char want[64];
    snprintf(want, sizeof want, "sim:mem=64M,seed=%d", i);
    rcs |= gg_guard_switch_device(g, want);
    int n = chain_specs(g, spec, conf);
    int has_cpu = 0;
    for (int k = 0; k < n; k++)
      has_cpu |= !strcmp(spec[k], "cpu") && conf[k];
    cpu_missing += !has_cpu;
    longest = n > longest ? n : longest;
  }
  int n6 = chain_specs(g, spec, conf);
  char s0[128], s1[128];
  snprintf(s0, sizeof s0, "%s", spec[0]);
  snprintf(s1, sizeof s1, "%s", spec[1]);
  float x[300];
  fill(x, 300);
  gg_gtensor in = {.ndim = 3, .dims = {10, 10, 3}, .data = x};
  gg_guard_result r;
  int rr = gg_guard_infer(g, "synthetic:1:2", &in, &r);
  gg_guard_result_release(&r);
  int back = gg_guard_switch_device(g, "cpu");
  int n_back = chain_specs(g, spec, conf);
  gg_guard_device_status cpu;
  gg_guard_device_status_get(g, 0, &cpu);
  gg_guard_stats st;
  gg_guard_stats_get(g, &st);
  gg_guard_free(g);
  ASSERT_OK(rcs);
  ASSERT_EQ(cpu_missing, 0);
  ASSERT_EQ(longest, 2);
  ASSERT_EQ(n6, 2);
  ASSERT_STREQ(s0, "sim:mem=64M,seed=6");
  ASSERT_STREQ(s1, "cpu");
  ASSERT_OK(rr);
  ASSERT_EQ(r.device_index, 0);
  ASSERT_OK(back);
  ASSERT_EQ(n_back, 1); /* the run-time sim left with its primary role */
  ASSERT_STREQ(cpu.spec, "cpu");
  ASSERT_EQ(cpu.configured, 1);
  ASSERT_EQ(cpu.n_models, 1);
  ASSERT_EQ(st.switch_rollbacks, 0);
  ASSERT_EQ(st.leaked_bytes, 0);

  /* Two configured devices: each keeps its configured place behind the
   * primary, and switching to a configured spec takes that device's place. */
  c.devices[0] = "sim:mem=64M,seed=100";
  c.devices[1] = "cpu";
  c.n_devices = 2;
  ASSERT_OK(gg_guard_new(&c, &g));
  int r1 = gg_guard_switch_device(g, "cpu");
  int n1 = chain_specs(g, spec, conf);
  int order1 = n1 == 2 && !strcmp(spec[0], "cpu") && !strcmp(spec[1], "sim:mem=64M,seed=100") &&
               conf[0] && conf[1];
  int r2 = gg_guard_switch_device(g, "sim:mem=64M,seed=7");
  int r3 = gg_guard_switch_device(g, "sim:mem=64M,seed=8");
  int n3 = chain_specs(g, spec, conf);
  int order3 = n3 == 3 && !strcmp(spec[0], "sim:mem=64M,seed=8") && !conf[0] &&
               !strcmp(spec[1], "sim:mem=64M,seed=100") && !strcmp(spec[2], "cpu");
  gg_guard_free(g);
  ASSERT_OK(r1);
  ASSERT_OK(r2);
  ASSERT_OK(r3);
  ASSERT_TRUE(order1);
  ASSERT_TRUE(order3);
}

/* A sim's faults are a burst for the first context it gets; a restarted
 * worker runs without them, and the status says so (issue 10, item 10):
 * `spec` stays as configured, `effective_spec` is what runs. */
static void test_faults_effective_spec(void) {
  gg_guard_config c = base_config();
  c.devices[0] = "sim:mem=64M,faults=oom@100000";
  c.devices[1] = "cpu";
  c.n_devices = 2;
  gg_guard *g = NULL;
  ASSERT_OK(gg_guard_new(&c, &g));
  float x[300];
  fill(x, 300);
  gg_gtensor in = {.ndim = 3, .dims = {10, 10, 3}, .data = x};
  gg_guard_result r1, r2, r3;
  int rc1 = gg_guard_infer(g, "synthetic:1:2", &in, &r1);
  gg_guard_result_release(&r1);
  gg_guard_device_status a, b, d;
  gg_guard_device_status_get(g, 0, &a);
  if (a.worker_pid > 0) kill(a.worker_pid, SIGKILL);
  int rc2 = gg_guard_infer(g, "synthetic:1:2", &in, &r2); /* the dead worker: cpu serves */
  gg_guard_result_release(&r2);
  int rc3 = gg_guard_infer(g, "synthetic:1:2", &in, &r3); /* a restarted one */
  gg_guard_result_release(&r3);
  gg_guard_device_status_get(g, 0, &b);
  json_t *j = gg_guard_json(g);
  json_t *jd = json_array_get(json_object_get(j, "devices"), 0);
  char jeff[128], jspec[128];
  snprintf(jeff, sizeof jeff, "%s", json_string_value(json_object_get(jd, "effective_spec")));
  snprintf(jspec, sizeof jspec, "%s", json_string_value(json_object_get(jd, "spec")));
  int jactive = json_is_true(json_object_get(jd, "faults_active"));
  json_decref(j);
  int inj = gg_guard_inject_faults(g, 0, "oom@50000"); /* a new burst is armed */
  gg_guard_device_status_get(g, 0, &d);
  gg_guard_free(g);
  ASSERT_OK(rc1);
  ASSERT_EQ(r1.device_index, 0);
  ASSERT_STREQ(a.spec, "sim:mem=64M,faults=oom@100000");
  ASSERT_STREQ(a.effective_spec, "sim:mem=64M,faults=oom@100000");
  ASSERT_EQ(a.faults_active, 1);
  ASSERT_EQ(a.configured, 1);
  ASSERT_OK(rc2);
  ASSERT_EQ(r2.device_index, 1);
  ASSERT_OK(rc3);
  ASSERT_EQ(r3.device_index, 0);
  ASSERT_EQ(b.worker_restarts, 1);
  ASSERT_STREQ(b.spec, "sim:mem=64M,faults=oom@100000"); /* as configured */
  ASSERT_STREQ(b.effective_spec, "sim:mem=64M");         /* what runs now */
  ASSERT_EQ(b.faults_active, 0);
  ASSERT_STREQ(jspec, "sim:mem=64M,faults=oom@100000");
  ASSERT_STREQ(jeff, "sim:mem=64M");
  ASSERT_EQ(jactive, 0);
  ASSERT_OK(inj);
  ASSERT_STREQ(d.effective_spec, "sim:mem=64M,faults=oom@50000");
  ASSERT_EQ(d.faults_active, 1);
}

/* Shutting the guard down (or freeing it) while a switch waits on a hung
 * device cancels the switch: its worker is killed at once, not after a
 * 20 s watchdog, and nothing else changed. */
static void test_switch_cancel(void) {
  gg_guard_config c = base_config();
  c.devices[0] = "cpu";
  c.n_devices = 1;
  c.watchdog_ms = 20000;
  c.load_timeout_ms = 20000;
  gg_guard *g = NULL;
  ASSERT_OK(gg_guard_new(&c, &g));
  ASSERT_OK(gg_guard_load(g, "synthetic:1:2"));
  int rc1 = gg_guard_switch_start(g, "sim:mem=64M,faults=hang@1", NULL);
  usleep(300 * 1000); /* its validation kernel hangs by now */
  uint64_t t0 = gg_now_ns();
  gg_guard_shutdown(g);
  double shutdown_ms = (double)(gg_now_ns() - t0) / 1e6;
  gg_guard_switch_status sw;
  gg_guard_switch_status_get(g, &sw);
  gg_guard_device_status d0;
  gg_guard_device_status_get(g, 0, &d0);
  int rc2 = gg_guard_switch_start(g, "sim:mem=64M,faults=hang@1", NULL);
  usleep(300 * 1000);
  t0 = gg_now_ns();
  gg_guard_free(g);
  double free_ms = (double)(gg_now_ns() - t0) / 1e6;
  ASSERT_OK(rc1);
  ASSERT_LT_F(shutdown_ms, 5000.0);
  ASSERT_EQ(sw.state, GG_SWITCH_FAILED);
  ASSERT_EQ(sw.error, GG_ECANCELED);
  ASSERT_STREQ(d0.spec, "cpu");
  ASSERT_OK(rc2); /* the guard is usable after a shutdown */
  ASSERT_LT_F(free_ms, 5000.0);
  ASSERT_EQ(waitpid(-1, NULL, WNOHANG), -1); /* the killed workers were reaped */
}

int main(int argc, char **argv) {
  static const gg_test_case cases[] = {
      {"breaker", test_breaker},
      {"spec_faults", test_spec_faults},
      {"cpu_in_process", test_cpu_in_process},
      {"bad_input", test_bad_input},
      {"bad_config", test_bad_config},
      {"worker_crash", test_worker_crash},
      {"cleanup_cadence", test_cleanup_cadence},
      {"exports", test_exports},
      {"admission_budget", test_admission_budget},
      {"config_chain", test_config_chain},
      {"budget_eviction", test_budget_eviction},
      {"switch", test_switch},
      {"engine_model", test_engine_model},
      {"concurrent", test_concurrent},
      {"log_lines", test_log_lines},
      {"validation_failed_line", test_validation_failed_line},
      {"tick_probe", test_tick_probe},
      {"switch_hang_background", test_switch_hang_background},
      {"switch_keeps_configured", test_switch_keeps_configured},
      {"faults_effective_spec", test_faults_effective_spec},
      {"switch_cancel", test_switch_cancel},
      {NULL, NULL},
  };
  return gg_test_main(argc, argv, cases);
}
