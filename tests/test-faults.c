/* The fault matrix: every sim fault kind x every position, run through the
 * resilience layer with the device in a supervised worker process and cpu
 * as the fallback. For each cell it asserts the request's outcome (served,
 * by which device, attempts), the breaker, recovery back to the GPU once
 * the fault stops, a restarted worker where one was needed, zero bytes
 * leaked and this process alive; then it writes docs/FAULTS.md from what
 * actually happened.
 *
 * Workloads: the synthetic TEST WORKLOAD runner (src/guard/synthetic.c):
 * weights through the pool at load, activations per run, one
 * gg_device_launch per layer, a synchronize, outputs checked against the
 * reference formula on every device; and the four real models through the
 * engine runner, which on the sim runs one launch per op (the "sim" engine
 * backend), with faults at their first, a middle and the last op, outputs
 * checked against a fault-free run. */
#include "engine/backend.h"
#include "gpuguard/core.h"
#include "gpuguard/device.h"
#include "gpuguard/engine.h"
#include "gpuguard/error.h"
#include "gpuguard/guard.h"
#include "gpuguard/log.h"
#include "gpuguard/memory.h"
#include "test.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

float gg__synthetic_reference(float x, int layers);

#define SIM_BASE "sim:mem=256M,seed=7"
#define MODEL "synthetic:19:4"
#define LAYERS 4
#define COOLDOWN_MS 150
/* 1.5 MiB activations: a large-pool block; with the 19 MiB of weights in a
 * segment of their own, each request needs a new raw segment (cleanup every
 * request gives it back), so request faults have a place to hit. */
#define REQ_ELEMS (256u * 512u * 3u)

/* The real models, through the engine runner: blazeface gets every per-op
 * cell; the others one fault at each of their first, middle and last op. */
#define N_EMODELS 4
static const char *const k_emodels[N_EMODELS] = {"blazeface", "mobilefacenet", "nanodet", "faceres"};

/* The workload the cells run: 0 = synthetic test workload, 1 + i = real
 * model k_emodels[i] through the engine runner. */
static int g_engine;
static const char *g_model = MODEL;
static float *g_input, *g_einput[N_EMODELS];
static gg_gtensor g_in = {.ndim = 4, .dims = {1, 256, 512, 3}};
static gg_gtensor g_syn_in = {.ndim = 4, .dims = {1, 256, 512, 3}};
static gg_gtensor g_eng_in[N_EMODELS] = {{.ndim = 4, .dims = {1, 256, 256, 3}},
                                         {.ndim = 4, .dims = {1, 112, 112, 3}},
                                         {.ndim = 4, .dims = {1, 3, 416, 416}},
                                         {.ndim = 4, .dims = {1, 224, 224, 3}}};
static gg_guard_result g_ref[N_EMODELS]; /* engine outputs of a fault-free run */
static int g_have_ref[N_EMODELS];

static void use_workload(int engine) {
  g_engine = engine;
  g_model = engine ? k_emodels[engine - 1] : MODEL;
  g_in = engine ? g_eng_in[engine - 1] : g_syn_in;
}

static gg_guard_config matrix_config(const char *primary) {
  gg_guard_config c;
  gg_guard_config_init(&c);
  c.devices[0] = primary;
  c.devices[1] = "cpu";
  c.n_devices = 2;
  c.runner = g_engine ? "engine" : "synthetic";
  c.worker_exe = GG_BIN;
  c.retries = 2;
  c.backoff_ms = 1;
  c.backoff_max_ms = 4;
  c.breaker_failures = 3;
  c.breaker_window_ms = 60000;
  c.breaker_cooldown_ms = COOLDOWN_MS;
  c.watchdog_ms = g_engine ? 4000 : 1000;
  c.load_timeout_ms = g_engine ? 30000 : 2000;
  c.cleanup_every = 1; /* every request raw-allocates: faults have a place to hit */
  c.seed = 7;
  return c;
}

static int output_ok(const gg_guard_result *r) {
  if (g_engine) {
    const gg_guard_result *ref = &g_ref[g_engine - 1];
    if (!g_have_ref[g_engine - 1] || r->n_outputs != ref->n_outputs) return 0;
    for (int o = 0; o < r->n_outputs; o++) {
      size_t n = gg_gtensor_count(&r->outputs[o]);
      if (n != gg_gtensor_count(&ref->outputs[o])) return 0;
      for (size_t i = 0; i < n; i++)
        if (!gg_t_near(r->outputs[o].data[i], ref->outputs[o].data[i], 1e-4)) return 0;
    }
    return 1;
  }
  if (r->n_outputs != 1 || gg_gtensor_count(&r->outputs[0]) != REQ_ELEMS) return 0;
  for (size_t i = 0; i < REQ_ELEMS; i += 4099)
    if (!gg_t_near(r->outputs[0].data[i], gg__synthetic_reference(g_input[i], LAYERS), 1e-5))
      return 0;
  return 1;
}

/* One request; returns rc, fills a compact summary. */
typedef struct req_out {
  int rc, device_index, attempts, last_error, failures, output_ok;
} req_out;

static req_out request(gg_guard *g) {
  gg_guard_result r;
  req_out o;
  o.rc = gg_guard_infer(g, g_model, &g_in, &r);
  o.device_index = r.device_index;
  o.attempts = r.attempts;
  o.last_error = r.last_error;
  o.failures = r.failures;
  o.output_ok = o.rc == 0 && output_ok(&r);
  if (getenv("GG_FAULTS_VERBOSE"))
    fprintf(stderr, "  request: %s dev %d attempts %d %.1f ms\n", gg_err_name(o.rc), r.device_index,
            r.attempts, r.elapsed_ms);
  gg_guard_result_release(&r);
  return o;
}

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) && errno == EINTR) {
  }
}

/* ---- calibration: where each position is, in sim operation counts ----- */
typedef struct calib {
  uint64_t a0, l0; /* after worker start (validation) */
  uint64_t aL, lL; /* after load + warmup */
  uint64_t a1, l1; /* after request 1 */
  uint64_t a2, l2; /* after request 2 */
  uint64_t a3, l3; /* after request 3 */
} calib;

static calib g_cal, g_syn_cal, g_eng_cal[N_EMODELS];
static int g_cal_ok, g_syn_cal_ok, g_eng_cal_ok[N_EMODELS], g_eng_missing[N_EMODELS];

static void counts(gg_guard *g, uint64_t *a, uint64_t *l) {
  gg_guard_device_status ds;
  gg_guard_device_status_get(g, 0, &ds);
  *a = ds.raw_allocs;
  *l = ds.launches;
}

static void test_calibrate(void) {
  use_workload(0);
  gg_guard_config c = matrix_config(SIM_BASE);
  gg_guard *g = NULL;
  ASSERT_OK(gg_guard_new(&c, &g));
  calib k;
  counts(g, &k.a0, &k.l0);
  int rc = gg_guard_load(g, g_model);
  counts(g, &k.aL, &k.lL);
  req_out r1 = request(g);
  counts(g, &k.a1, &k.l1);
  req_out r2 = request(g);
  counts(g, &k.a2, &k.l2);
  req_out r3 = request(g);
  counts(g, &k.a3, &k.l3);
  gg_guard_free(g);
  ASSERT_OK(rc);
  ASSERT_OK(r1.rc);
  ASSERT_OK(r3.rc);
  ASSERT_EQ(r1.device_index, 0);
  ASSERT_EQ(r2.device_index, 0);
  ASSERT_TRUE(r1.output_ok && r2.output_ok && r3.output_ok);
  /* The synthetic workload's structure the positions rely on: load = one
   * weights allocation + one fill kernel; warmup = one allocation (a small
   * segment) + LAYERS kernels; each request >= 1 raw allocation (cleanup
   * every request) + LAYERS kernels. Validation ran before all of it. */
  ASSERT_GE(k.a0, 1);
  ASSERT_GE(k.l0, 1);
  ASSERT_EQ(k.aL - k.a0, 2);
  ASSERT_EQ(k.lL - k.l0, 1 + LAYERS);
  ASSERT_GE(k.a1 - k.aL, 1);
  ASSERT_EQ(k.l1 - k.lL, LAYERS);
  ASSERT_GE(k.a3 - k.a2, 1);
  ASSERT_EQ(k.l3 - k.l2, LAYERS);
  g_syn_cal = k;
  g_syn_cal_ok = 1;
  fprintf(stderr,
          "  calibration: start a=%llu l=%llu; load+warmup a=%llu l=%llu; req1 a=%llu "
          "l=%llu; req2 a=%llu l=%llu; req3 a=%llu l=%llu\n",
          (unsigned long long)k.a0, (unsigned long long)k.l0, (unsigned long long)k.aL,
          (unsigned long long)k.lL, (unsigned long long)k.a1, (unsigned long long)k.l1,
          (unsigned long long)k.a2, (unsigned long long)k.l2, (unsigned long long)k.a3,
          (unsigned long long)k.l3);
}

/* A real model through the engine runner. Positions are measured the same
 * way; its reference outputs come from this run. */
static void engine_calibrate(int em) {
  char path[1024];
  if (gg_model_resolve(k_emodels[em], path, sizeof path) != 0 && (g_eng_missing[em] = 1))
    SKIP("%s not found (%s): run scripts/fetch-models.sh", k_emodels[em], path);
  use_workload(1 + em);
  gg_guard_config c = matrix_config(SIM_BASE);
  gg_guard *g = NULL;
  ASSERT_OK(gg_guard_new(&c, &g));
  calib k;
  counts(g, &k.a0, &k.l0);
  int rc = gg_guard_load(g, g_model);
  counts(g, &k.aL, &k.lL);
  int rc1 = gg_guard_infer(g, g_model, &g_in, &g_ref[em]);
  counts(g, &k.a1, &k.l1);
  g_have_ref[em] = rc1 == 0 && g_ref[em].device_index == 0;
  req_out r2 = request(g);
  counts(g, &k.a2, &k.l2);
  req_out r3 = request(g);
  counts(g, &k.a3, &k.l3);
  gg_guard_free(g);
  ASSERT_OK(rc);
  ASSERT_OK(rc1);
  ASSERT_TRUE(g_have_ref[em]);
  ASSERT_TRUE(r2.output_ok && r3.output_ok); /* deterministic across runs */
  /* The engine on the sim: load prepares the session (its weights and
   * arena come from the device pool: at least one raw allocation), then
   * every request is one launch per op of the model and allocates
   * nothing. */
  gg_model *m = NULL;
  ASSERT_OK(gg_model_load(path, &m, NULL, 0));
  int n_ops = gg_model_n_ops(m);
  gg_model_free(m);
  ASSERT_GE(k.aL - k.a0, 1);
  ASSERT_U64_EQ(k.l1 - k.lL, (uint64_t)n_ops);
  ASSERT_U64_EQ(k.l3 - k.l2, (uint64_t)n_ops);
  ASSERT_U64_EQ(k.a3, k.aL);
  g_eng_cal[em] = k;
  g_eng_cal_ok[em] = 1;
  fprintf(stderr,
          "  %s calibration: start a=%llu l=%llu; load+warmup a=%llu l=%llu; req1 "
          "a=%llu l=%llu; req3 a=%llu l=%llu\n",
          k_emodels[em], (unsigned long long)k.a0, (unsigned long long)k.l0, (unsigned long long)k.aL,
          (unsigned long long)k.lL, (unsigned long long)k.a1, (unsigned long long)k.l1,
          (unsigned long long)k.a3, (unsigned long long)k.l3);
}

/* ---- the matrix ------------------------------------------------------- */
/* The synthetic workload runs the first POS_SYN_COUNT positions; the real
 * model the per-op ones (the engine computes op by op on the sim: one
 * launch per op) and the load, where its session takes its memory. */
enum { POS_LOAD, POS_WARMUP, POS_FIRST, POS_MID, POS_SWITCH, POS_SYN_COUNT,
       POS_OP_FIRST = POS_SYN_COUNT, POS_OP_MID, POS_OP_LAST, POS_COUNT };
static const char *const k_pos_names[POS_COUNT] = {
    "model load", "warmup", "first request", "mid-run (3rd request)", "device switch (cpu -> sim)",
    "request 1, first op", "request 1, middle op", "request 1, last op"};
enum { F_OOM_AT, F_OOM2_AT, F_OOM_P, F_LAUNCH_AT, F_STICKY_AT, F_HANG_AT, F_COUNT };
static const char *const k_fault_names[F_COUNT] = {"oom@N",    "oom@N,oom@N+1", "oom%P",
                                                   "launch@N", "sticky@N",      "hang@N"};

typedef struct cell {
  char spec[64];
  int rc, served_by, attempts, last_error, failures, output_ok;
  uint64_t retries;
  int switch_rc;
  gg_breaker_state breaker_after;
  uint64_t restarts;
  int recovered, recover_requests;
  double recover_ms;
  uint64_t leaked;
  uint64_t fired; /* evidence the fault hit: sim count or guard failure counters */
  int pass;
  char note[160];
} cell;

static cell g_cells[F_COUNT][POS_COUNT];
static cell g_ecells[N_EMODELS][F_COUNT][POS_COUNT]; /* real models: a subset */
static int g_eused[N_EMODELS][F_COUNT][POS_COUNT];

/* The fault spec that puts `f` at `pos`, from the calibration. For the
 * switch, positions count from the new device's fresh worker: its load. */
static void fault_spec(int f, int pos, char *out, size_t len) {
  const calib *k = &g_cal;
  uint64_t a = 0, l = 0;
  switch (pos) {
  case POS_LOAD:
  case POS_SWITCH:
    a = k->a0 + 1;
    l = k->l0 + 1;
    break;
  case POS_WARMUP:
    a = k->a0 + 2;
    l = k->l0 + 2;
    break;
  case POS_FIRST:
    a = k->aL + 1;
    l = k->lL + 1;
    break;
  /* partway through request 3: its last raw allocation, its 3rd kernel
   * (the engine runs the whole graph as one kernel: its last one) */
  case POS_MID:
    a = k->a3;
    l = g_engine ? k->l3 : k->l2 + 3;
    break;
  /* the engine: one launch per op, request 1 = launches lL+1 .. l1 */
  case POS_OP_FIRST: l = k->lL + 1; break;
  case POS_OP_MID: l = k->lL + (k->l1 - k->lL + 1) / 2; break;
  case POS_OP_LAST: l = k->l1; break;
  default: break;
  }
  switch (f) {
  case F_OOM_AT: snprintf(out, len, "oom@%llu", (unsigned long long)a); break;
  case F_OOM2_AT:
    snprintf(out, len, "oom@%llu,oom@%llu", (unsigned long long)a, (unsigned long long)a + 1);
    break;
  case F_OOM_P: snprintf(out, len, "oom%%0.5"); break;
  case F_LAUNCH_AT: snprintf(out, len, "launch@%llu", (unsigned long long)l); break;
  case F_STICKY_AT: snprintf(out, len, "sticky@%llu", (unsigned long long)l); break;
  case F_HANG_AT: snprintf(out, len, "hang@%llu", (unsigned long long)l); break;
  default: out[0] = 0;
  }
}

static void set_note(cell *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_note(cell *c, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(c->note, sizeof c->note, fmt, ap);
  va_end(ap);
}

static void run_cell(int f, int pos) {
  int em = g_engine - 1;
  cell *c = g_engine ? &g_ecells[em][f][pos] : &g_cells[f][pos];
  memset(c, 0, sizeof *c);
  c->switch_rc = 0;
  g_cal = g_engine ? g_eng_cal[em] : g_syn_cal;
  g_cal_ok = g_engine ? g_eng_cal_ok[em] : g_syn_cal_ok;
  if (g_engine) g_eused[em][f][pos] = 1;
  if (!g_cal_ok) SKIP("calibration failed or skipped");
  fault_spec(f, pos, c->spec, sizeof c->spec);
  if (g_engine && (f == F_OOM_AT || f == F_OOM2_AT) && pos == POS_FIRST && g_cal.a1 == g_cal.aL) {
    c->pass = -1;
    set_note(c, "n/a: request 1 made no raw allocation (the warmup's reservation was cached)");
    SKIP("%s", c->note);
  }
  char sim_faulty[160];
  snprintf(sim_faulty, sizeof sim_faulty, "%s,faults=%s", SIM_BASE, c->spec);
  /* %P faults are a burst from the position on: for load/warmup from the
   * worker's start (spec), later via gg_guard_inject_faults(). */
  int inject_later = f == F_OOM_P && (pos == POS_FIRST || pos == POS_MID);
  const char *primary = (pos == POS_SWITCH) ? "cpu" : (inject_later ? SIM_BASE : sim_faulty);
  gg_guard_config cfg = matrix_config(primary);
  if (pos == POS_SWITCH) cfg.n_devices = 1; /* starts on cpu alone */
  gg_guard *g = NULL;
  ASSERT_OK(gg_guard_new(&cfg, &g));
  gg_guard_stats s0;
  gg_guard_stats_get(g, &s0);
  req_out r = {0};
  if (pos == POS_SWITCH) {
    req_out pre = request(g); /* on cpu, model loaded there */
    if (pre.rc || pre.device_index != 0) {
      gg_guard_free(g);
      GG_T_FAIL("pre-switch request on cpu failed: %s", gg_err_name(pre.rc));
    }
    c->switch_rc = gg_guard_switch_device(g, sim_faulty);
    r = request(g);
  } else if (pos == POS_MID) {
    if (inject_later) {
      request(g);
      request(g);
      gg_guard_inject_faults(g, 0, c->spec);
      r = request(g);
    } else {
      req_out a = request(g), b = request(g);
      if (a.rc || b.rc || a.device_index || b.device_index) {
        gg_guard_free(g);
        GG_T_FAIL("requests before the mid-run fault failed");
      }
      r = request(g);
    }
  } else {
    if (inject_later) gg_guard_inject_faults(g, 0, c->spec);
    r = request(g);
  }
  c->rc = r.rc;
  c->served_by = r.device_index;
  c->attempts = r.attempts;
  c->last_error = r.last_error;
  c->failures = r.failures;
  c->output_ok = r.output_ok;
  gg_guard_device_status ds;
  gg_guard_device_status_get(g, 0, &ds);
  c->breaker_after = ds.breaker;
  gg_guard_stats s1;
  gg_guard_stats_get(g, &s1);
  c->retries = s1.retries - s0.retries;
  if (f == F_OOM2_AT && c->failures == 0 && ds.faults_fired > 0)
    set_note(c,
             "absorbed by the memory pool: it gave its cached segments back and retried "
             "(sim fired %llu)",
             (unsigned long long)ds.faults_fired);
  if (s0.breaker_opened > 0)
    set_note(c, "the sim failed validation at worker start: its breaker was open before the "
                "request");
  if (f == F_OOM_AT && c->failures == 0 && ds.faults_fired > 0)
    set_note(c,
             "absorbed by the memory pool: the raw allocation failed (sim fired %llu), the "
             "pool retried with a smaller segment",
             (unsigned long long)ds.faults_fired);
  c->fired = ds.faults_fired + (s1.ooms - s0.ooms) + (s1.launch_failures - s0.launch_failures) +
             (s1.device_lost - s0.device_lost) + (s1.timeouts - s0.timeouts) +
             (s1.worker_restarts - s0.worker_restarts) +
             (s1.switch_rollbacks - s0.switch_rollbacks);
  /* Recovery: the fault burst is over; the GPU must come back by itself.
   * A switch that rolled back left cpu primary: the operator's retry of the
   * switch (fault-free now) is part of recovering there. */
  uint64_t t0 = gg_now_ns();
  if (pos == POS_SWITCH && c->switch_rc) {
    int rc2 = gg_guard_switch_device(g, SIM_BASE);
    set_note(c, "switch rolled back (%s); re-switch after the burst: %s", gg_err_name(c->switch_rc),
             rc2 ? gg_err_name(rc2) : "ok");
  }
  for (int i = 1; i <= 6 && !c->recovered; i++) {
    gg_guard_device_status_get(g, 0, &ds);
    if (ds.breaker != GG_BREAKER_CLOSED) sleep_ms(COOLDOWN_MS + 20);
    req_out q = request(g);
    gg_guard_device_status_get(g, 0, &ds);
    if (q.rc == 0 && q.device_index == 0 && q.output_ok && ds.breaker == GG_BREAKER_CLOSED &&
        strncmp(ds.spec, "sim", 3) == 0) {
      c->recovered = 1;
      c->recover_requests = i;
    }
  }
  c->recover_ms = (double)(gg_now_ns() - t0) / 1e6;
  gg_guard_device_status_get(g, 0, &ds);
  c->restarts = ds.worker_restarts;
  gg_guard_shutdown(g);
  gg_guard_stats st;
  gg_guard_stats_get(g, &st);
  c->leaked = st.leaked_bytes;
  gg_guard_free(g);

  int sticky = f == F_STICKY_AT || f == F_HANG_AT;
  /* ---- assertions ---- */
  c->pass = 0;
  ASSERT_EQ(kill(getpid(), 0), 0); /* still alive, obviously, but say it */
  ASSERT_OK(c->rc);                /* no request is left without a result */
  ASSERT_TRUE(c->output_ok);       /* and the result is right */
  ASSERT_TRUE(c->served_by == 0 || c->served_by == 1);
  ASSERT_GE(c->attempts, 1);
  ASSERT_LE(c->attempts, 1 + 2 * (1 + cfg.retries));
  ASSERT_TRUE(c->recovered);
  ASSERT_U64_EQ(c->leaked, 0);
  ASSERT_EQ(waitpid(-1, NULL, WNOHANG), -1); /* no zombie workers */
  if (f != F_OOM_P) ASSERT_GE(c->fired, 1);  /* the fault really hit that position */
  if (f != F_OOM_P && pos != POS_SWITCH) {
    /* one fault never opens a breaker that needs 3 */
    ASSERT_EQ(c->breaker_after, GG_BREAKER_CLOSED);
  }
  if (sticky && f != F_OOM_P) {
    /* the context was poisoned: the worker was restarted, and the request
     * in flight was served elsewhere (or, during a switch, the switch
     * retried on a fresh worker) */
    ASSERT_GE(c->restarts, 1);
    if (pos != POS_SWITCH) {
      ASSERT_EQ(c->served_by, 1);
      ASSERT_EQ(c->last_error, f == F_HANG_AT ? GG_ETIMEOUT : GG_EDEVICE_LOST);
    }
  }
  if (f == F_LAUNCH_AT && pos != POS_SWITCH) {
    /* retried on the same device, no restart */
    ASSERT_EQ(c->served_by, 0);
    ASSERT_EQ(c->restarts, 0);
    ASSERT_EQ(c->attempts, (pos == POS_FIRST || pos == POS_MID || pos >= POS_OP_FIRST) ? 2 : 1);
  }
  if ((f == F_OOM_AT || f == F_OOM2_AT) && pos != POS_SWITCH) {
    ASSERT_EQ(c->served_by, 0);
    ASSERT_EQ(c->restarts, 0);
  }
  if (f == F_OOM2_AT && pos != POS_SWITCH && c->failures) {
    /* two failed raw allocations defeat the pool's smaller-segment retry:
     * the guard trims and retries on the same device */
    ASSERT_GE(c->retries, 1);
    ASSERT_EQ(c->last_error, GG_EDEV_OOM);
  }
  if (pos == POS_SWITCH && f != F_OOM_P) ASSERT_OK(c->switch_rc);
  c->pass = 1;
}

#define CELL_FN(F, P)                                                                              \
  static void test_##F##_##P(void) {                                                               \
    use_workload(0);                                                                               \
    run_cell(F, P);                                                                                \
  }
#define ECELL_FN(M, F, P)                                                                          \
  static void test_engine_##M##_##F##_##P(void) {                                                  \
    use_workload(1 + EM_##M);                                                                      \
    run_cell(F, P);                                                                                \
  }
#define ROW(F)                                                                                     \
  CELL_FN(F, POS_LOAD)                                                                             \
  CELL_FN(F, POS_WARMUP) CELL_FN(F, POS_FIRST) CELL_FN(F, POS_MID) CELL_FN(F, POS_SWITCH)
ROW(F_OOM_AT)
ROW(F_OOM2_AT)
ROW(F_OOM_P)
ROW(F_LAUNCH_AT)
ROW(F_STICKY_AT)
ROW(F_HANG_AT)
enum { EM_blazeface, EM_mobilefacenet, EM_nanodet, EM_faceres };
#define EOPROW(F)                                                                                  \
  ECELL_FN(blazeface, F, POS_OP_FIRST)                                                             \
  ECELL_FN(blazeface, F, POS_OP_MID) ECELL_FN(blazeface, F, POS_OP_LAST)
ECELL_FN(blazeface, F_OOM_AT, POS_LOAD)
ECELL_FN(blazeface, F_OOM2_AT, POS_LOAD)
EOPROW(F_LAUNCH_AT)
EOPROW(F_STICKY_AT)
EOPROW(F_HANG_AT)
/* the other models: a launch failure at the first op, a sticky error at a
 * middle and at the last op (a hang costs a watchdog timeout: blazeface
 * has those) */
#define EMODEL(M)                                                                                  \
  static void test_engine_##M##_calibrate(void) { engine_calibrate(EM_##M); }                      \
  ECELL_FN(M, F_LAUNCH_AT, POS_OP_FIRST)                                                           \
  ECELL_FN(M, F_STICKY_AT, POS_OP_MID) ECELL_FN(M, F_STICKY_AT, POS_OP_LAST)
static void test_engine_blazeface_calibrate(void) { engine_calibrate(EM_blazeface); }
EMODEL(mobilefacenet)
EMODEL(nanodet)
EMODEL(faceres)

/* ---- an OOM that the lean plan avoids ----------------------------------- */
/* On opencl:0.0 (PoCL) through the guard, worker process and cpu fallback
 * as in the matrix: a device budget too small for blazeface's fast plan
 * (its im2col scratch) but enough for the lean one (the direct kernel). The
 * request is served by opencl:0.0 itself, not the fallback, with the plan's
 * peak under the budget, and shutdown reports 0 bytes leaked. The budget is
 * found on a bare pool with the guard's default pool config: budgets one
 * step apart from the fast plan's reservation down until the session takes
 * the lean plan; then the middle of the budgets that gave the lean plan. */
typedef struct lean_cell {
  int ran, rc, device_index;
  uint64_t budget, peak, leaked;
  char skip[160];
} lean_cell;
static lean_cell g_lean;

static int lean_budget(const char *path, uint64_t *out) {
  gg_device *dev = NULL;
  gg_pool *pool = NULL;
  gg_model *m = NULL;
  gg_session *s = NULL;
  char err[512];
  int rc = gg_device_open("opencl:0.0", &dev);
  if (!rc && !gg_backend_for_device_kind((int)gg_device_get_kind(dev))) rc = GG_ENOTIMPL;
  if (!rc) rc = gg_pool_new(dev, NULL, &pool);
  if (!rc) rc = gg_model_load(path, &m, err, sizeof err);
  if (!rc) rc = gg_session_new_on(m, NULL, 0, NULL, pool, &s, err, sizeof err);
  gg_pool_stats st = {0};
  gg_pool_get_stats(pool, &st);
  uint64_t step = gg_pool_owner_bytes(pool, "engine/opencl-im2col") / 16, hi = 0, lo = 0;
  gg_session_free(s);
  for (uint64_t b = st.reserved - 1; !rc && step && b > step && (!hi || !lo); b -= step) {
    gg_engine_mem mem = {0};
    s = NULL;
    gg_pool_trim(pool, NULL);
    gg_pool_set_budget(pool, b);
    int r = gg_session_new_on(m, NULL, 0, NULL, pool, &s, err, sizeof err);
    if (!r) gg_session_memory(s, &mem);
    gg_session_free(s);
    if (!r && !strcmp(mem.plan, "lean") && !hi) hi = b;
    if (hi && (r || strcmp(mem.plan, "lean"))) lo = b + step;
  }
  gg_model_free(m);
  gg_pool_free(pool);
  gg_device_free(dev);
  *out = lo + (hi - lo) / 2;
  return rc ? rc : hi && lo ? 0 : GG_ENOTFOUND;
}

static int within_range(const gg_guard_result *r, const gg_guard_result *ref) {
  if (r->n_outputs != ref->n_outputs) return 0;
  for (int o = 0; o < r->n_outputs; o++) {
    size_t n = gg_gtensor_count(&r->outputs[o]);
    if (n != gg_gtensor_count(&ref->outputs[o])) return 0;
    float lo = 0, hi = 0;
    for (size_t i = 0; i < n; i++) {
      float v = ref->outputs[o].data[i];
      lo = i && lo < v ? lo : v, hi = i && hi > v ? hi : v;
    }
    for (size_t i = 0; i < n; i++)
      if (!gg_t_near(r->outputs[o].data[i], ref->outputs[o].data[i], 1e-4 * (hi - lo) + 1e-6))
        return 0;
  }
  return 1;
}

static void test_engine_blazeface_lean_oom(void) {
  char path[1024];
  lean_cell *c = &g_lean;
  memset(c, 0, sizeof *c);
  if (gg_model_resolve("blazeface", path, sizeof path)) {
    snprintf(c->skip, sizeof c->skip, "blazeface not fetched (scripts/fetch-models.sh)");
    SKIP("%s", c->skip);
  }
  int rc = lean_budget(path, &c->budget);
  if (rc && rc != GG_ENOTFOUND) {
    snprintf(c->skip, sizeof c->skip, "no opencl:0.0 with the OpenCL backend (%s)", gg_err_name(rc));
    SKIP("%s", c->skip);
  }
  if (rc) GG_T_FAIL("no budget between the plans gave the lean plan: the planner never chose it");
  use_workload(1 + EM_blazeface);
  gg_guard_config cfg = matrix_config("opencl:0.0");
  cfg.mem_budget = c->budget;
  gg_guard *g = NULL;
  ASSERT_OK(gg_guard_new(&cfg, &g));
  gg_guard_result r;
  c->rc = gg_guard_infer(g, g_model, &g_in, &r);
  c->device_index = r.device_index;
  c->peak = r.planned_peak;
  /* against the fault-free sim run when calibrate ran: another device's
   * kernels, so within 1e-4 of each output's range (the bound) */
  int out_ok = c->rc == 0 && (!g_have_ref[EM_blazeface] || within_range(&r, &g_ref[EM_blazeface]));
  gg_guard_result_release(&r);
  gg_guard_shutdown(g);
  gg_guard_stats st;
  gg_guard_stats_get(g, &st);
  c->leaked = st.leaked_bytes;
  gg_guard_free(g);
  use_workload(0);
  c->ran = 1;
  fprintf(stderr, "  lean plan: budget %llu, served %s by device %d, planned peak %llu, leaked %llu\n",
          (unsigned long long)c->budget, gg_err_name(c->rc), c->device_index,
          (unsigned long long)c->peak, (unsigned long long)c->leaked);
  ASSERT_OK(c->rc);
  ASSERT_EQ(c->device_index, 0);
  ASSERT_TRUE(out_ok);
  ASSERT_TRUE(c->peak > 0 && c->peak <= c->budget);
  ASSERT_U64_EQ(c->leaked, 0);
}

/* ---- docs/FAULTS.md ------------------------------------------------------ */
static const char *dev_name(int idx) {
  return idx == 0 ? "sim" : idx == 1 ? "cpu" : "none";
}

static void write_row(FILE *fp, const cell *c, int f, int p) {
  if (c->pass < 0) {
    fprintf(fp, "| `%s` | %s | `%s` | - | - | - | - | - | - | - | - | - | n/a | %s |\n",
            k_fault_names[f], k_pos_names[p], c->spec, c->note);
    return;
  }
  char rec[64];
  if (c->recovered)
    snprintf(rec, sizeof rec, "yes, %d req / %.0f ms", c->recover_requests, c->recover_ms);
  else
    snprintf(rec, sizeof rec, "**no**");
  char served[48];
  if (c->rc == 0)
    snprintf(served, sizeof served, "%s%s", dev_name(c->served_by),
             p == POS_SWITCH ? (c->switch_rc ? " (switch rolled back)" : " (switch ok)") : "");
  else
    snprintf(served, sizeof served, "**failed: %s**", gg_err_name(c->rc));
  fprintf(fp, "| `%s` | %s | `%s` | %s | %d | %d | %llu | %s | %s | %llu | %s | %llu | %s | %s |\n",
          k_fault_names[f], k_pos_names[p], c->spec, served, c->attempts, c->failures,
          (unsigned long long)c->retries, c->last_error ? gg_err_name(c->last_error) : "-",
          gg_breaker_state_name(c->breaker_after), (unsigned long long)c->restarts, rec,
          (unsigned long long)c->leaked,
          c->pass > 0   ? "pass"
          : c->pass < 0 ? "n/a"
                        : "**FAIL**",
          c->note);
}

#define TABLE_HEAD                                                                                 \
  "| fault | position | spec | served | attempts | failures | retries | last error | "             \
  "breaker after | restarts | recovered | leaked | result | note |\n"                              \
  "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n"

static void write_faults_md(void) {
  g_cal = g_syn_cal;
  if (!g_syn_cal_ok) SKIP("no calibration, nothing to write");
  char path[1024];
  const char *env = getenv("GG_FAULTS_MD"); /* default: the source tree's docs/ */
  if (env && *env)
    snprintf(path, sizeof path, "%s", env);
  else
    snprintf(path, sizeof path, "%s/../docs/FAULTS.md", GG_TEST_DIR);
  FILE *fp = fopen(path, "w");
  if (!fp) SKIP("cannot write %s: %s", path, strerror(errno));
  time_t now = time(NULL);
  struct tm tm;
  gmtime_r(&now, &tm);
  char date[32];
  strftime(date, sizeof date, "%Y-%m-%d %H:%M UTC", &tm);
  fprintf(fp,
          "# Fault matrix\n\n"
          "GENERATED by `tests/test-faults.c` (ctest -R test-faults) on %s. Do not edit by hand:\n"
          "every number below is what that run measured.\n\n"
          "## Setup\n\n"
          "- Chain: `%s,faults=SPEC` (in a supervised `gpuguard worker` process) -> `cpu` "
          "(in-process).\n"
          "- Workload: the synthetic TEST WORKLOAD runner (`synthetic:19:4`: 19 MiB of weights "
          "through the pool, 4 kernels per run via `gg_device_launch`, a synchronize), not a "
          "real model; each output is checked against its reference formula. Input 1x256x512x3 "
          "float32 (1.5 MiB), pool cleanup after every request so each request allocates raw "
          "device memory.\n"
          "- Policy: retries 2 (backoff 1 ms doubling, jitter), breaker K=3 failures in 60 s, "
          "cooldown %d ms, watchdog 1000 ms (runs), 2000 ms (loads).\n"
          "- Positions are sim operation numbers measured by a fault-free calibration run: "
          "worker start (validation) ends at alloc %llu / launch %llu; load + warmup at %llu / "
          "%llu; request 1 at %llu / %llu; request 2 at %llu / %llu; request 3 at %llu / %llu. "
          "`oom` counts raw allocations, `launch`/`sticky`/`hang` count kernel launches.\n"
          "- Fault bursts: a sim device's faults apply to the device context they were "
          "injected into. A restarted worker (a fresh context) runs fault-free, which is how "
          "\"the fault stops\" here. `oom%%P` cells inject the burst at the position "
          "(`gg_guard_inject_faults`) for first request / mid-run, and from the worker's start "
          "for load / warmup.\n"
          "- Device switch: the guard starts on `cpu` alone, serves one request, then "
          "`gg_guard_switch_device(\"sim...,faults=SPEC\")`; the fault hits the new device's "
          "load.\n\n"
          "## Results\n\n"
          "Served = device that answered the request hit by the fault; attempts = inference runs "
          "started for it (loads not counted); failures = device failures it met on the way "
          "(loads and warmups included); retries = same-device retries; breaker = primary's state "
          "right after it; "
          "restarts = worker restarts until recovered; recovered = requests (and ms, including "
          "the cooldown wait) until a request was served by sim with its breaker closed.\n\n"
          "### Synthetic test workload\n\n" TABLE_HEAD,
          date, SIM_BASE, COOLDOWN_MS, (unsigned long long)g_cal.a0, (unsigned long long)g_cal.l0,
          (unsigned long long)g_cal.aL, (unsigned long long)g_cal.lL, (unsigned long long)g_cal.a1,
          (unsigned long long)g_cal.l1, (unsigned long long)g_cal.a2, (unsigned long long)g_cal.l2,
          (unsigned long long)g_cal.a3, (unsigned long long)g_cal.l3);
  int pass = 0, total = 0;
  for (int f = 0; f < F_COUNT; f++) {
    for (int p = 0; p < POS_SYN_COUNT; p++) {
      const cell *c = &g_cells[f][p];
      total++;
      pass += c->pass;
      write_row(fp, c, f, p);
    }
  }
  fprintf(fp,
          "\n### Real models through the engine runner\n\n"
          "On the sim the engine computes op by op through its `sim` backend "
          "(`src/engine/backend.c`): the session prepared at load takes its weights copy "
          "and activation arena from the device pool, and each op of a run is one "
          "`gg_device_launch` (the CPU kernels on the sim's memory). So `oom@N` at the load "
          "hits the session's allocations while it is planned, and `launch@N`, `sticky@N` "
          "and `hang@N` hit one op: the first, a middle or the last op of request 1. Outputs "
          "are compared with a fault-free run's (max abs diff 1e-4). Requests allocate "
          "nothing on the device.\n");
  for (int em = 0; em < N_EMODELS; em++) {
    const gg_gtensor *in = &g_eng_in[em];
    fprintf(fp, "\n#### `%s` (input %lldx%lldx%lldx%lld)\n\n", k_emodels[em],
            (long long)in->dims[0], (long long)in->dims[1], (long long)in->dims[2],
            (long long)in->dims[3]);
    if (!g_eng_cal_ok[em]) {
      fprintf(fp, g_eng_missing[em]
                      ? "Not run: the model was not found (run `scripts/fetch-models.sh`).\n"
                      : "Not run: its calibration failed (see the test log).\n");
      continue;
    }
    const calib *k = &g_eng_cal[em];
    fprintf(fp,
            "Measured positions: worker start ends at alloc %llu / launch %llu; load + warmup "
            "at %llu / %llu; request 1 at %llu / %llu (%llu ops); request 3 at %llu / %llu.\n\n"
            TABLE_HEAD,
            (unsigned long long)k->a0, (unsigned long long)k->l0, (unsigned long long)k->aL,
            (unsigned long long)k->lL, (unsigned long long)k->a1, (unsigned long long)k->l1,
            (unsigned long long)(k->l1 - k->lL), (unsigned long long)k->a3,
            (unsigned long long)k->l3);
    for (int f = 0; f < F_COUNT; f++)
      for (int p = 0; p < POS_COUNT; p++)
        if (g_eused[em][f][p]) {
          total += g_ecells[em][f][p].pass >= 0;
          pass += g_ecells[em][f][p].pass > 0;
          write_row(fp, &g_ecells[em][f][p], f, p);
        }
  }
  fprintf(fp,
          "\n#### An OOM that the lean plan avoids (`opencl:0.0`, blazeface)\n\n");
  if (g_lean.ran)
    fprintf(fp, "A device budget of %llu bytes, too small for the fast plan's im2col scratch: "
                "the request was %s by device %d (0 = opencl:0.0) with a planned peak of %llu "
                "bytes (the lean plan: the direct convolution); %llu bytes leaked.\n",
            (unsigned long long)g_lean.budget, g_lean.rc ? gg_err_name(g_lean.rc) : "served",
            g_lean.device_index, (unsigned long long)g_lean.peak,
            (unsigned long long)g_lean.leaked);
  else
    fprintf(fp, "Not run: %s.\n", g_lean.skip[0] ? g_lean.skip : "its case was not selected");
  fprintf(fp,
          "\n%d of %d cells passed. In every cell the test process stayed alive, no worker "
          "was left as a zombie, and the final shutdown reported the leaked bytes shown.\n\n"
          "## Not covered\n\n"
          "- Real GPUs: this matrix runs on the `sim` device only (but for the lean-plan cell "
          "on PoCL above). A CUDA or OpenCL device "
          "uses the same worker and policy code, but its faults were not injected here.\n"
          "- Real models: only the subset above (an OOM while the session is planned at load, "
          "launch-type faults at the first, a middle and the last op) runs the real models, "
          "and only blazeface gets every kind at every op position; the full matrix uses the "
          "synthetic test workload. An OOM during a run "
          "cannot happen on the sim any more: a session takes all its device memory when it "
          "is prepared.\n"
          "- `oom%%P` outcomes depend on the seeded draw sequence (seed 7): they are asserted "
          "to be served and recovered, not to take a particular path.\n",
          pass, total);
  fclose(fp);
  fprintf(stderr, "  wrote %s (%d/%d cells passed)\n", path, pass, total);
}

int main(int argc, char **argv) {
  gg_log_set_level(GG_LOG_WARN);
  g_input = malloc(REQ_ELEMS * sizeof(float));
  if (!g_input) return 1;
  for (size_t i = 0; i < REQ_ELEMS; i++)
    g_input[i] = (float)(i % 251) * 0.01f - 1.0f;
  g_syn_in.data = g_input;
  for (int em = 0; em < N_EMODELS; em++) {
    size_t en = gg_gtensor_count(&g_eng_in[em]);
    g_einput[em] = malloc(en * sizeof(float));
    if (!g_einput[em]) return 1;
    for (size_t i = 0; i < en; i++)
      g_einput[em][i] = (float)((i * 7) % 255) / 127.5f - 1.0f;
    g_eng_in[em].data = g_einput[em];
  }
#define CASE(F, P) {#F "/" #P, test_##F##_##P},
#define ECASE(M, F, P) {"engine/" #M "/" #F "/" #P, test_engine_##M##_##F##_##P},
#define EOPCASES(F)                                                                                \
  ECASE(blazeface, F, POS_OP_FIRST) ECASE(blazeface, F, POS_OP_MID) ECASE(blazeface, F, POS_OP_LAST)
#define EMODELCASES(M)                                                                             \
  {"engine/" #M "/calibrate", test_engine_##M##_calibrate},                                       \
      ECASE(M, F_LAUNCH_AT, POS_OP_FIRST) ECASE(M, F_STICKY_AT, POS_OP_MID)                        \
          ECASE(M, F_STICKY_AT, POS_OP_LAST)
#define ROWCASES(F)                                                                                \
  CASE(F, POS_LOAD) CASE(F, POS_WARMUP) CASE(F, POS_FIRST) CASE(F, POS_MID) CASE(F, POS_SWITCH)
  static const gg_test_case cases[] = {
      {"calibrate", test_calibrate},
      ROWCASES(F_OOM_AT) ROWCASES(F_OOM2_AT) ROWCASES(F_OOM_P) ROWCASES(F_LAUNCH_AT)
          ROWCASES(F_STICKY_AT) ROWCASES(F_HANG_AT)
              {"engine/blazeface/calibrate", test_engine_blazeface_calibrate},
      ECASE(blazeface, F_OOM_AT, POS_LOAD) ECASE(blazeface, F_OOM2_AT, POS_LOAD)
          EOPCASES(F_LAUNCH_AT) EOPCASES(F_STICKY_AT) EOPCASES(F_HANG_AT)
              EMODELCASES(mobilefacenet) EMODELCASES(nanodet) EMODELCASES(faceres)
                  {"engine/blazeface/lean_plan_oom", test_engine_blazeface_lean_oom},
      {"write_faults_md", write_faults_md},
      {NULL, NULL},
  };
  int rc = gg_test_main(argc, argv, cases);
  for (int em = 0; em < N_EMODELS; em++) {
    gg_guard_result_release(&g_ref[em]);
    free(g_einput[em]);
  }
  free(g_input);
  return rc;
}
