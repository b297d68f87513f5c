/* The engine on the simulated GPU through its "sim" backend: the four
 * models run op by op with their tensors and weights in the sim's pool,
 * give the CPU's outputs bit for bit (same kernels), keep predicted ==
 * measured per device, give every byte back; faults hit the op they aim at
 * and the error names it. */
#include "engine/backend.h"
#include "gpuguard/device.h"
#include "gpuguard/engine.h"
#include "gpuguard/error.h"
#include "gpuguard/log.h"
#include "gpuguard/memory.h"
#include "engine-util.h"
#include "test.h"

#include <jansson.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *const k_models[] = {"blazeface", "mobilefacenet", "nanodet", "faceres"};

static uint64_t pool_allocated(gg_pool *p) {
  gg_pool_stats st;
  gg_pool_get_stats(p, &st);
  return st.allocated;
}


typedef struct simdev {
  gg_device *dev;
  gg_pool *pool;
} simdev;

static int sim_open(const char *spec, simdev *d) {
  memset(d, 0, sizeof *d);
  int rc = gg_device_open(spec, &d->dev);
  if (!rc) rc = gg_pool_new(d->dev, NULL, &d->pool);
  return rc;
}

static void sim_close(simdev *d) {
  gg_pool_free(d->pool);
  gg_device_free(d->dev);
}

/* Every model on the sim: same outputs as the CPU, every op on "sim",
 * predicted == measured on the host and on the device, nothing left. */
static void test_models_on_sim(void) {
  int found = 0;
  for (size_t i = 0; i < 4; i++) {
    char p[1024];
    if (gg_model_resolve(k_models[i], p, sizeof p)) continue;
    found++;
    simdev d;
    ASSERT_OK(sim_open("sim:mem=512M", &d));
    gg_model *m;
    gg_session *cpu, *sim;
    gg_session_opts o = {1, GG_ENGINE_AUTO, 0};
    char err[512] = "";
    ASSERT_OK(gg_model_load(p, &m, err, sizeof err));
    ASSERT_OK(gg_session_new(m, NULL, 0, &o, &cpu, err, sizeof err));
    uint64_t before = pool_allocated(d.pool);
    int rc = gg_session_new_on(m, NULL, 0, &o, d.pool, &sim, err, sizeof err);
    if (rc) GG_T_FAIL("%s on sim: %s", k_models[i], err);
    gg_t_fill_input(cpu);
    gg_t_fill_input(sim);
    ASSERT_OK(gg_session_run(cpu, err, sizeof err));
    rc = gg_session_run(sim, err, sizeof err);
    if (rc) GG_T_FAIL("%s run on sim: %s", k_models[i], err);
    for (int k = 0; k < gg_model_n_outputs(m); k++) {
      int64_t n = gg_session_output_elems(cpu, k);
      ASSERT_EQ(n, gg_session_output_elems(sim, k));
      ASSERT_TRUE(!memcmp(gg_session_output(cpu, k, NULL), gg_session_output(sim, k, NULL),
                          (size_t)n * sizeof(float)));
    }
    gg_engine_mem mem;
    gg_session_memory(sim, &mem);
    ASSERT_EQ(mem.n_devices, 2);
    for (int dv = 0; dv < mem.n_devices; dv++) {
      ASSERT_U64_EQ(mem.dev[dv].predicted,
                    mem.dev[dv].weights + mem.dev[dv].arena + mem.dev[dv].workspace);
      ASSERT_U64_EQ(mem.dev[dv].predicted, mem.dev[dv].measured);
    }
    ASSERT_U64_EQ(mem.predicted, mem.measured);
    ASSERT_U64_EQ(mem.dev[1].measured, pool_allocated(d.pool) - before);
    ASSERT_EQ(gg_session_ops_by_backend(sim, "sim"), gg_model_n_ops(m));
    ASSERT_EQ(gg_session_ops_by_backend(sim, "xnnpack") + gg_session_ops_by_backend(sim, "naive"),
              0);
    fprintf(stderr,
            "  %-13s sim: %d ops on sim; device predicted %llu = measured %llu (weights %llu, "
            "arena %llu); host %llu = %llu\n",
            k_models[i], gg_session_ops_by_backend(sim, "sim"),
            (unsigned long long)mem.dev[1].predicted, (unsigned long long)mem.dev[1].measured,
            (unsigned long long)mem.dev[1].weights, (unsigned long long)mem.dev[1].arena,
            (unsigned long long)mem.dev[0].predicted, (unsigned long long)mem.dev[0].measured);
    gg_session_free(sim);
    ASSERT_U64_EQ(pool_allocated(d.pool), before);
    gg_session_free(cpu);
    gg_model_free(m);
    sim_close(&d);
  }
  if (!found) SKIP("no models fetched (scripts/fetch-models.sh)");
}

/* launch@N fails op N of a run (the sim counts one launch per op) and the
 * error names that op; the session runs again once the fault is past. */
static void test_launch_fault_names_the_op(void) {
  char p[1024];
  if (gg_model_resolve("blazeface", p, sizeof p)) SKIP("blazeface not fetched");
  gg_model *m;
  ASSERT_OK(gg_model_load(p, &m, NULL, 0));
  int n_ops = gg_model_n_ops(m);
  int targets[3] = {1, n_ops / 2, n_ops};
  for (int t = 0; t < 3; t++) {
    char spec[96], err[512] = "";
    snprintf(spec, sizeof spec, "sim:mem=512M,faults=launch@%d", targets[t]);
    simdev d;
    ASSERT_OK(sim_open(spec, &d));
    gg_session *s;
    gg_session_opts o = {1, GG_ENGINE_AUTO, 0};
    ASSERT_OK(gg_session_new_on(m, NULL, 0, &o, d.pool, &s, err, sizeof err));
    gg_t_fill_input(s);
    int rc = gg_session_run(s, err, sizeof err);
    ASSERT_EQ(rc, GG_ELAUNCH);
    /* the op the fault aimed at: node number targets[t] in execution order */
    const gg_graph *g = gg__model_graph(m);
    const char *want = g->nodes[g->order[targets[t] - 1]].name;
    ASSERT_CONTAINS(err, want);
    ASSERT_CONTAINS(err, "on sim");
    fprintf(stderr, "  launch@%d: %s\n", targets[t], err);
    ASSERT_OK(gg_session_run(s, err, sizeof err));
    gg_session_free(s);
    ASSERT_U64_EQ(pool_allocated(d.pool), 0);
    sim_close(&d);
  }
  gg_model_free(m);
}

/* oom@N while a session is planned: the allocation that failed is named
 * (the arena or the weights), and nothing stays allocated. */
static void test_oom_while_planning(void) {
  char p[1024];
  if (gg_model_resolve("blazeface", p, sizeof p)) SKIP("blazeface not fetched");
  gg_model *m;
  ASSERT_OK(gg_model_load(p, &m, NULL, 0));
  int seen_arena = 0, seen_weights = 0;
  /* two failures in a row defeat the pool's smaller-segment retry */
  for (int n = 1; n <= 3; n++) {
    char spec[96], err[512] = "";
    snprintf(spec, sizeof spec, "sim:mem=512M,faults=oom@%d,oom@%d", n, n + 1);
    simdev d;
    ASSERT_OK(sim_open(spec, &d));
    gg_session *s = NULL;
    gg_session_opts o = {1, GG_ENGINE_AUTO, 0};
    int rc = gg_session_new_on(m, NULL, 0, &o, d.pool, &s, err, sizeof err);
    if (rc) {
      ASSERT_EQ(rc, GG_EDEV_OOM);
      seen_arena |= strstr(err, "activation arena") != NULL;
      seen_weights |= strstr(err, "weights") != NULL;
      fprintf(stderr, "  oom@%d: %s\n", n, err);
    }
    gg_session_free(s);
    ASSERT_U64_EQ(pool_allocated(d.pool), 0);
    sim_close(&d);
  }
  gg_model_free(m);
  ASSERT_TRUE(seen_arena || seen_weights);
}

/* A device without an engine backend (cpu here) computes on the host. */
static void test_no_backend_runs_on_host(void) {
  char p[1024];
  if (gg_model_resolve("blazeface", p, sizeof p)) SKIP("blazeface not fetched");
  simdev d;
  ASSERT_OK(sim_open("cpu", &d));
  ASSERT_TRUE(gg_backend_for_device_kind(GG_DEVICE_CPU) == NULL);
  gg_model *m;
  gg_session *s;
  gg_session_opts o = {1, GG_ENGINE_NAIVE, 0};
  ASSERT_OK(gg_model_load(p, &m, NULL, 0));
  ASSERT_OK(gg_session_new_on(m, NULL, 0, &o, d.pool, &s, NULL, 0));
  ASSERT_EQ(gg_session_ops_by_backend(s, "naive"), gg_model_n_ops(m));
  gg_engine_mem mem;
  gg_session_memory(s, &mem);
  ASSERT_EQ(mem.n_devices, 1);
  ASSERT_U64_EQ(pool_allocated(d.pool), 0);
  gg_session_free(s);
  gg_model_free(m);
  sim_close(&d);
}

/* A stand-in device backend for the sim that refuses two ops (Add and the
 * depthwise conv), so a model's schedule alternates between the device and
 * the host: the scheduler must copy every tensor that crosses, plan both
 * arenas and account both devices. It wraps the real sim backend: the same
 * context and slots, a different name and supports_node. */
static gg_backend_i g_part_i;
static gg_backend *g_part_inner; /* the real sim backend's object (its context is shared) */
static void (*g_sim_free)(gg_backend *);

static int part_supports(gg_backend *be, const gg_node *n, const gg_tval *vals) {
  if (n->op == GG_OP_ADD || n->op == GG_OP_DEPTHWISE) return 0;
  return g_part_inner->iface->supports_node(be, n, vals);
}

static void part_free(gg_backend *be) {
  free(g_part_inner); /* the struct only: the context is be's, freed next */
  g_part_inner = NULL;
  g_sim_free(be);
}

static int part_init(const gg_backend_params *p, gg_backend **out, char *err, size_t errlen) {
  int rc = gg_backend_init_by_name("sim", p, &g_part_inner, err, errlen);
  if (rc) return rc;
  gg_backend *be = malloc(sizeof *be);
  if (!be) return GG_ENOMEM;
  g_part_i = *g_part_inner->iface;
  g_sim_free = g_part_inner->iface->free;
  g_part_i.name = "sim-partial";
  g_part_i.supports_node = part_supports;
  g_part_i.free = part_free;
  *be = *g_part_inner;
  be->iface = &g_part_i;
  *out = be;
  return 0;
}

static const gg_backend_reg k_part_reg = {"sim-partial", GG_DEVICE_SIM, part_init};

/* Runs `gpuguard infer --model blazeface --json ARGS`; the parsed report or NULL. */
static json_t *infer_json(const char *img, const char *args) {
  char cmd[4096];
  snprintf(cmd, sizeof cmd,
           "%s infer --model blazeface --image %s --json --log-level error %s 2>/dev/null", GG_BIN,
           img, args);
  FILE *f = popen(cmd, "r");
  if (!f) return NULL;
  json_error_t je;
  json_t *r = json_loadf(f, 0, &je);
  int st = pclose(f);
  if (r && !(WIFEXITED(st) && WEXITSTATUS(st) == 0)) {
    json_decref(r);
    r = NULL;
  }
  return r;
}

static long long ops_on(json_t *by, const char *be) {
  return (long long)json_integer_value(json_object_get(by, be));
}

/* `gpuguard infer --json` says where the ops ran: on the CPU directly, and
 * per request through the guard (the sim's worker runs all 113 on "sim"). */
static void test_infer_reports_ops_by_backend(void) {
  char img[1024], p[1024];
  gg_t_cache_path(img, sizeof img, "models/face-api-1.7.15/demo/sample1.jpg");
  if (access(img, R_OK) || gg_model_resolve("blazeface", p, sizeof p))
    SKIP("blazeface or the sample image not fetched");
  json_t *r = infer_json(img, "--backend naive");
  ASSERT_TRUE(r != NULL);
  json_t *by = json_object_get(r, "ops_by_backend");
  ASSERT_EQ(ops_on(by, "naive"), 113);
  ASSERT_EQ((long long)json_object_size(by), 1);
  json_decref(r);
  r = infer_json(img, "--device sim --fallback cpu");
  ASSERT_TRUE(r != NULL);
  json_t *req = json_array_get(json_object_get(r, "requests"), 0);
  by = json_object_get(req, "ops_by_backend");
  ASSERT_CONTAINS(json_string_value(json_object_get(req, "device")), "sim");
  ASSERT_EQ(ops_on(by, "sim"), 113);
  ASSERT_EQ((long long)json_object_size(by), 1);
  json_decref(r);
}

/* A schedule that crosses between the device and the host at every Add
 * and depthwise conv: the same outputs as the CPU, copies in both
 * directions, predicted == measured on both devices, every byte back. */
static void test_mixed_schedule_copies(void) {
  int found = 0;
  ASSERT_OK(gg_backend_register(&k_part_reg));
  for (size_t i = 0; i < 4; i++) {
    char p[1024], err[512] = "";
    if (gg_model_resolve(k_models[i], p, sizeof p)) continue;
    found++;
    simdev d;
    ASSERT_OK(sim_open("sim:mem=512M", &d));
    gg_model *m;
    gg_session *cpu, *mix;
    gg_session_opts o = {1, GG_ENGINE_AUTO, 0};
    ASSERT_OK(gg_model_load(p, &m, NULL, 0));
    ASSERT_OK(gg_session_new(m, NULL, 0, &o, &cpu, NULL, 0));
    int rc = gg_session_new_on(m, NULL, 0, &o, d.pool, &mix, err, sizeof err);
    if (rc) GG_T_FAIL("%s: %s", k_models[i], err);
    gg_t_fill_input(cpu);
    gg_t_fill_input(mix);
    ASSERT_OK(gg_session_run(cpu, NULL, 0));
    rc = gg_session_run(mix, err, sizeof err);
    if (rc) GG_T_FAIL("%s: %s", k_models[i], err);
    for (int k = 0; k < gg_model_n_outputs(m); k++) {
      int64_t n = gg_session_output_elems(cpu, k);
      ASSERT_EQ(n, gg_session_output_elems(mix, k));
      ASSERT_TRUE(!memcmp(gg_session_output(cpu, k, NULL), gg_session_output(mix, k, NULL),
                          (size_t)n * sizeof(float)));
    }
    int on_dev = gg_session_ops_by_backend(mix, "sim-partial");
    int on_host = gg_session_ops_by_backend(mix, "xnnpack") + gg_session_ops_by_backend(mix, "naive");
    ASSERT_EQ(on_dev + on_host, gg_model_n_ops(m));
    ASSERT_GE(on_dev, 1);
    gg_engine_mem mem;
    gg_session_memory(mix, &mem);
    for (int dv = 0; dv < mem.n_devices; dv++)
      ASSERT_U64_EQ(mem.dev[dv].predicted, mem.dev[dv].measured);
    fprintf(stderr, "  %-13s %d ops on the device, %d on the host; device %llu = %llu bytes\n",
            k_models[i], on_dev, on_host, (unsigned long long)mem.dev[1].predicted,
            (unsigned long long)mem.dev[1].measured);
    gg_session_free(mix);
    ASSERT_U64_EQ(pool_allocated(d.pool), 0);
    gg_session_free(cpu);
    gg_model_free(m);
    sim_close(&d);
  }
  ASSERT_OK(gg_backend_unregister(&k_part_reg));
  if (!found) SKIP("no models fetched (scripts/fetch-models.sh)");
}

int main(int argc, char **argv) {
  gg_log_set_level(GG_LOG_ERROR);
  static const gg_test_case cases[] = {
      {"models_on_sim", test_models_on_sim},
      {"launch_fault_names_the_op", test_launch_fault_names_the_op},
      {"oom_while_planning", test_oom_while_planning},
      {"no_backend_runs_on_host", test_no_backend_runs_on_host},
      {"infer_reports_ops_by_backend", test_infer_reports_ops_by_backend},
      {"mixed_schedule_copies", test_mixed_schedule_copies},
      {NULL, NULL},
  };
  return gg_test_main(argc, argv, cases);
}
