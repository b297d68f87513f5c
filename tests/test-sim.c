/* Tests for the sim device: capacity, every fault kind, @N and %P
 * determinism, environment fallbacks, validation. */
#include "gpuguard/device.h"
#include "gpuguard/error.h"
#include "gpuguard/log.h"
#include "test.h"

#include <pthread.h>
#include <time.h>

static int g_runs;
static int count_kernel(void *ctx) {
  (void)ctx;
  g_runs++;
  return 0;
}

static void test_default_info(void) {
  unsetenv("GPUGUARD_FAULTS");
  gg_device *d = NULL;
  ASSERT_OK(gg_device_open("sim", &d));
  gg_device_info info;
  ASSERT_OK(gg_device_get_info(d, &info));
  ASSERT_STREQ(info.name, "sim");
  ASSERT_EQ(info.kind, GG_DEVICE_SIM);
  ASSERT_STREQ(info.vendor, "gpuguard");
  ASSERT_STREQ(info.description, "simulated GPU (4.45 GiB)");
  ASSERT_U64_EQ(info.total_mem, 4560ull << 20);
  ASSERT_U64_EQ(info.free_mem, 4560ull << 20);
  gg_device_free(d);
}

static void test_capacity(void) {
  gg_device *d = NULL;
  ASSERT_OK(gg_device_open("sim:mem=1M", &d));
  gg_devmem a, b, c;
  ASSERT_OK(gg_device_mem_alloc(d, 512 << 10, &a));
  uint64_t fr = 0, tot = 0;
  ASSERT_OK(gg_device_get_memory(d, &fr, &tot));
  ASSERT_U64_EQ(tot, 1 << 20);
  ASSERT_U64_EQ(fr, 512 << 10);
  ASSERT_EQ(gg_device_mem_alloc(d, 600 << 10, &b), GG_EDEV_OOM);
  ASSERT_OK(gg_device_mem_alloc(d, 512 << 10, &c)); /* exactly what is left */
  ASSERT_EQ(gg_device_mem_alloc(d, 1, &b), GG_EDEV_OOM);
  ASSERT_OK(gg_device_mem_release(d, &a));
  ASSERT_EQ(gg_device_mem_alloc(d, 600 << 10, &b), GG_EDEV_OOM);
  ASSERT_OK(gg_device_mem_alloc(d, 100 << 10, &b));
  gg_sim_stats st;
  ASSERT_OK(gg_sim_get_stats(d, &st));
  ASSERT_U64_EQ(st.capacity_ooms, 3);
  ASSERT_U64_EQ(st.allocs, 6);
  ASSERT_U64_EQ(st.used, (512u << 10) + (100u << 10));
  ASSERT_U64_EQ(st.faults_fired[GG_FAULT_OOM], 0);
  ASSERT_OK(gg_device_mem_release(d, &b));
  ASSERT_OK(gg_device_mem_release(d, &c));
  ASSERT_U64_EQ(gg_device_mem_in_use(d), 0);
  /* not a sim device */
  gg_device *cpu = NULL;
  ASSERT_OK(gg_device_open("cpu", &cpu));
  ASSERT_EQ(gg_sim_get_stats(cpu, &st), GG_EINVAL);
  gg_device_free(cpu);
  gg_device_free(d);
}

static void test_oom_at_n(void) {
  gg_device *d = NULL;
  ASSERT_OK(gg_device_open("sim:faults=oom@3,oom@5", &d));
  int rcs[6];
  gg_devmem m[6];
  for (int i = 0; i < 6; i++) rcs[i] = gg_device_mem_alloc(d, 4096, &m[i]);
  ASSERT_EQ(rcs[0], 0);
  ASSERT_EQ(rcs[1], 0);
  ASSERT_EQ(rcs[2], GG_EDEV_OOM);
  ASSERT_EQ(rcs[3], 0);
  ASSERT_EQ(rcs[4], GG_EDEV_OOM);
  ASSERT_EQ(rcs[5], 0);
  for (int i = 0; i < 6; i++)
    if (rcs[i] == 0) ASSERT_OK(gg_device_mem_release(d, &m[i]));
  gg_sim_stats st;
  ASSERT_OK(gg_sim_get_stats(d, &st));
  ASSERT_U64_EQ(st.faults_fired[GG_FAULT_OOM], 2);
  ASSERT_U64_EQ(st.allocs, 6);
  ASSERT_EQ(st.lost, 0);
  gg_device_free(d);
}

static void test_launch_at_n(void) {
  gg_device *d = NULL;
  ASSERT_OK(gg_device_open("sim:faults=launch@2", &d));
  g_runs = 0;
  ASSERT_OK(gg_device_launch(d, count_kernel, NULL));
  ASSERT_EQ(gg_device_launch(d, count_kernel, NULL), GG_ELAUNCH);
  ASSERT_EQ(g_runs, 1); /* the failed launch did not run the kernel */
  ASSERT_OK(gg_device_launch(d, count_kernel, NULL));
  ASSERT_EQ(g_runs, 2);
  /* not sticky: everything else still works */
  gg_devmem m;
  ASSERT_OK(gg_device_mem_alloc(d, 64, &m));
  ASSERT_OK(gg_device_copy_to(d, &m, 0, "hello", 6));
  ASSERT_OK(gg_device_synchronize(d));
  ASSERT_OK(gg_device_mem_release(d, &m));
  gg_sim_stats st;
  ASSERT_OK(gg_sim_get_stats(d, &st));
  ASSERT_U64_EQ(st.launches, 3);
  ASSERT_U64_EQ(st.faults_fired[GG_FAULT_LAUNCH], 1);
  gg_device_free(d);
}

static void test_sticky(void) {
  gg_device *d = NULL;
  ASSERT_OK(gg_device_open("sim:mem=64M,faults=sticky@2", &d));
  gg_devmem m, m2;
  char buf[16] = "abc";
  ASSERT_OK(gg_device_mem_alloc(d, 64, &m));
  g_runs = 0;
  ASSERT_OK(gg_device_launch(d, count_kernel, NULL));
  ASSERT_EQ(gg_device_launch(d, count_kernel, NULL), GG_EDEVICE_LOST);
  ASSERT_EQ(g_runs, 1);
  /* every later op fails the same way until reset */
  ASSERT_EQ(gg_device_mem_alloc(d, 64, &m2), GG_EDEVICE_LOST);
  ASSERT_EQ(gg_device_copy_to(d, &m, 0, buf, 4), GG_EDEVICE_LOST);
  ASSERT_EQ(gg_device_copy_from(d, buf, &m, 0, 4), GG_EDEVICE_LOST);
  ASSERT_EQ(gg_device_launch(d, count_kernel, NULL), GG_EDEVICE_LOST);
  ASSERT_EQ(gg_device_synchronize(d), GG_EDEVICE_LOST);
  ASSERT_EQ(g_runs, 1);
  gg_sim_stats st;
  ASSERT_OK(gg_sim_get_stats(d, &st));
  ASSERT_EQ(st.lost, 1);
  ASSERT_U64_EQ(st.faults_fired[GG_FAULT_STICKY], 1);
  gg_validation v;
  ASSERT_OK(gg_device_validate(d, &v));
  ASSERT_EQ(v.passed, 0);
  ASSERT_EQ(v.error, GG_EDEVICE_LOST);
  const char *why = NULL;
  ASSERT_EQ(gg_device_usable(d, &why), 0);
  ASSERT_CONTAINS(why, "GG_EDEVICE_LOST");
  /* reset clears it; host memory survives the reset */
  ASSERT_OK(gg_device_reset(d));
  ASSERT_OK(gg_device_copy_to(d, &m, 0, "xyz", 4));
  ASSERT_OK(gg_device_copy_from(d, buf, &m, 0, 4));
  ASSERT_STREQ(buf, "xyz");
  ASSERT_OK(gg_device_launch(d, count_kernel, NULL));
  ASSERT_EQ(g_runs, 2);
  ASSERT_OK(gg_device_validate(d, &v));
  ASSERT_EQ(v.passed, 1);
  ASSERT_EQ(gg_device_usable(d, NULL), 1);
  ASSERT_OK(gg_device_mem_release(d, &m));
  ASSERT_OK(gg_sim_get_stats(d, &st));
  ASSERT_U64_EQ(st.resets, 1);
  ASSERT_EQ(st.lost, 0);
  gg_device_free(d);
}

static void test_hang_timeout(void) {
  gg_device *d = NULL;
  setenv("GPUGUARD_SIM_HANG_MS", "30", 1);
  int rc = gg_device_open("sim:faults=hang@1", &d);
  unsetenv("GPUGUARD_SIM_HANG_MS");
  ASSERT_OK(rc);
  g_runs = 0;
  ASSERT_OK(gg_device_launch(d, count_kernel, NULL)); /* launch itself succeeds */
  ASSERT_EQ(g_runs, 0);                               /* but the kernel never ran */
  gg_sim_stats st;
  ASSERT_OK(gg_sim_get_stats(d, &st));
  ASSERT_EQ(st.hung, 1);
  ASSERT_EQ(gg_device_synchronize(d), GG_ETIMEOUT);
  /* like CUDA_ERROR_LAUNCH_TIMEOUT the context is dead afterwards */
  ASSERT_EQ(gg_device_synchronize(d), GG_EDEVICE_LOST);
  ASSERT_OK(gg_device_reset(d));
  ASSERT_OK(gg_device_synchronize(d));
  ASSERT_OK(gg_device_launch(d, count_kernel, NULL));
  ASSERT_EQ(g_runs, 1);
  ASSERT_OK(gg_sim_get_stats(d, &st));
  ASSERT_U64_EQ(st.faults_fired[GG_FAULT_HANG], 1);
  gg_device_free(d);
  /* the spec key works too, and a copy waits behind the hung kernel */
  ASSERT_OK(gg_device_open("sim:faults=hang@2,hang_ms=20", &d));
  ASSERT_OK(gg_device_launch(d, count_kernel, NULL));
  ASSERT_OK(gg_device_launch(d, count_kernel, NULL));
  gg_devmem m;
  ASSERT_OK(gg_device_mem_alloc(d, 16, &m));
  char b[4];
  ASSERT_EQ(gg_device_copy_from(d, b, &m, 0, 4), GG_ETIMEOUT);
  ASSERT_OK(gg_device_mem_release(d, &m));
  gg_device_free(d);
}

typedef struct sync_arg {
  gg_device *d;
  int rc;
  volatile int done;
} sync_arg;

static void *sync_thread(void *p) {
  sync_arg *a = p;
  a->rc = gg_device_synchronize(a->d);
  a->done = 1;
  return NULL;
}

/* Without GPUGUARD_SIM_HANG_MS a hang blocks until something resets the
 * device (in production: the watchdog kills the worker process). */
static void test_hang_forever_until_reset(void) {
  unsetenv("GPUGUARD_SIM_HANG_MS");
  gg_device *d = NULL;
  ASSERT_OK(gg_device_open("sim:faults=hang@1", &d));
  ASSERT_OK(gg_device_launch(d, count_kernel, NULL));
  sync_arg a = {d, 12345, 0};
  pthread_t th;
  ASSERT_EQ(pthread_create(&th, NULL, sync_thread, &a), 0);
  struct timespec ts = {0, 100 * 1000 * 1000};
  nanosleep(&ts, NULL);
  int done_before_reset = a.done;
  ASSERT_OK(gg_device_reset(d));
  pthread_join(th, NULL);
  ASSERT_EQ(done_before_reset, 0);
  /* it returned only because of the reset: the hung work is lost */
  ASSERT_EQ(a.rc, GG_EDEVICE_LOST);
  ASSERT_OK(gg_device_synchronize(d));
  gg_device_free(d);
}

/* Runs n launches and records which failed. */
static void launch_pattern(const char *spec, int n, char *out) {
  gg_device *d = NULL;
  if (gg_device_open(spec, &d)) {
    out[0] = '!';
    out[1] = 0;
    return;
  }
  for (int i = 0; i < n; i++) out[i] = gg_device_launch(d, count_kernel, NULL) ? 'X' : '.';
  out[n] = 0;
  gg_device_free(d);
}

static void test_probability_determinism(void) {
  char a[201], b[201], c[201];
  launch_pattern("sim:faults=launch%0.3,seed=42", 200, a);
  launch_pattern("sim:faults=launch%0.3,seed=42", 200, b);
  launch_pattern("sim:faults=launch%0.3,seed=43", 200, c);
  ASSERT_STREQ(a, b);
  ASSERT_TRUE(strcmp(a, c) != 0);
  int fails = 0;
  for (int i = 0; i < 200; i++) fails += a[i] == 'X';
  /* 200 draws at p=0.3: mean 60, sd 6.5; these bounds are > 4 sd wide */
  ASSERT_GE(fails, 30);
  ASSERT_LE(fails, 90);
  launch_pattern("sim:faults=launch%0,seed=1", 50, a);
  ASSERT_TRUE(strchr(a, 'X') == NULL);
  launch_pattern("sim:faults=launch%1,seed=1", 50, a);
  ASSERT_TRUE(strchr(a, '.') == NULL);
  /* GPUGUARD_SEED is used when the spec names no seed */
  setenv("GPUGUARD_SEED", "42", 1);
  launch_pattern("sim:faults=launch%0.3", 200, c);
  unsetenv("GPUGUARD_SEED");
  ASSERT_STREQ(b, c);
  /* oom%P is just as deterministic */
  char o1[101], o2[101];
  for (int k = 0; k < 2; k++) {
    gg_device *d = NULL;
    ASSERT_OK(gg_device_open("sim:faults=oom%0.5,seed=9", &d));
    char *o = k ? o2 : o1;
    for (int i = 0; i < 100; i++) {
      gg_devmem m;
      int rc = gg_device_mem_alloc(d, 128, &m);
      o[i] = rc == GG_EDEV_OOM ? 'X' : '.';
      if (rc == 0) gg_device_mem_release(d, &m);
    }
    o[100] = 0;
    gg_device_free(d);
  }
  ASSERT_STREQ(o1, o2);
  ASSERT_TRUE(strchr(o1, 'X') && strchr(o1, '.'));
}

static void test_env_faults(void) {
  setenv("GPUGUARD_FAULTS", "launch@1", 1);
  char a[8], b[8];
  launch_pattern("sim", 3, a);
  launch_pattern("sim:faults=launch@3", 3, b); /* the spec wins over the environment */
  unsetenv("GPUGUARD_FAULTS");
  ASSERT_STREQ(a, "X..");
  ASSERT_STREQ(b, "..X");
  setenv("GPUGUARD_FAULTS", "nonsense@1", 1);
  gg_device *d = NULL;
  ASSERT_EQ(gg_device_open("sim", &d), GG_EINVAL);
  unsetenv("GPUGUARD_FAULTS");
  /* several kinds in one spec, then more keys after the rules */
  launch_pattern("sim:mem=16M,faults=launch@1,sticky@3,seed=5", 4, a);
  ASSERT_STREQ(a, "X.XX");
}

static void test_plan_parse(void) {
  gg_fault_plan *p = NULL;
  char err[256], desc[128];
  ASSERT_OK(gg_fault_plan_parse("oom@3, launch%0.25 ,sticky@7,hang@1", 7, &p, err, sizeof err));
  ASSERT_EQ(gg_fault_plan_rules(p), 4);
  ASSERT_STREQ(gg_fault_plan_describe(p, desc, sizeof desc),
               "oom@3,launch%0.25,sticky@7,hang@1 seed=7");
  ASSERT_EQ(gg_fault_plan_check(p, GG_FAULT_OOM, 2), 0);
  ASSERT_EQ(gg_fault_plan_check(p, GG_FAULT_OOM, 3), 1);
  ASSERT_EQ(gg_fault_plan_check(p, GG_FAULT_HANG, 1), 1);
  gg_fault_plan_free(p);
  ASSERT_OK(gg_fault_plan_parse("", 0, &p, err, sizeof err));
  ASSERT_EQ(gg_fault_plan_rules(p), 0);
  ASSERT_STREQ(gg_fault_plan_describe(p, desc, sizeof desc), "none");
  gg_fault_plan_free(p);
  static const struct {
    const char *spec, *msg;
  } bad[] = {
      {"boom@2", "unknown fault kind 'boom'"},
      {"oom@0", "bad operation number"},
      {"oom@x", "bad operation number"},
      {"oom@-1", "bad operation number"},
      {"launch%1.5", "bad probability"},
      {"launch%", "bad probability"},
      {"oom", "has no '@N' or '%P'"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    p = (gg_fault_plan *)1;
    ASSERT_EQ(gg_fault_plan_parse(bad[i].spec, 0, &p, err, sizeof err), GG_EINVAL);
    ASSERT_TRUE(p == NULL);
    ASSERT_CONTAINS(err, bad[i].msg);
  }
  gg_device *d = NULL;
  ASSERT_EQ(gg_device_open("sim:mem=abc", &d), GG_EINVAL);
  ASSERT_EQ(gg_device_open("sim:mem=0", &d), GG_EINVAL);
  ASSERT_EQ(gg_device_open("sim:bogus=1", &d), GG_EINVAL);
  ASSERT_EQ(gg_device_open("sim:seed=-4", &d), GG_EINVAL);
  ASSERT_TRUE(d == NULL);
}

static void test_validate(void) {
  gg_device *d = NULL;
  ASSERT_OK(gg_device_open("sim:mem=1M", &d));
  gg_validation v;
  ASSERT_OK(gg_device_validate(d, &v));
  ASSERT_EQ(v.passed, 1);
  ASSERT_STREQ(v.step, "done");
  ASSERT_U64_EQ(gg_device_mem_in_use(d), 0);
  gg_device_free(d);
  ASSERT_OK(gg_device_open("sim:faults=oom@2", &d));
  ASSERT_OK(gg_device_validate(d, &v));
  ASSERT_EQ(v.passed, 0);
  ASSERT_STREQ(v.step, "alloc");
  ASSERT_EQ(v.error, GG_EDEV_OOM);
  ASSERT_U64_EQ(gg_device_mem_in_use(d), 0); /* the first buffer was given back */
  gg_device_free(d);
  ASSERT_OK(gg_device_open("sim:faults=launch@1", &d));
  ASSERT_OK(gg_device_validate(d, &v));
  ASSERT_EQ(v.passed, 0);
  ASSERT_STREQ(v.step, "kernel");
  ASSERT_EQ(v.error, GG_ELAUNCH);
  gg_device_free(d);
  /* 4 KiB of floats x3 do not fit in 8 KiB */
  ASSERT_OK(gg_device_open("sim:mem=8K", &d));
  ASSERT_OK(gg_device_validate(d, &v));
  ASSERT_EQ(v.passed, 0);
  ASSERT_EQ(v.error, GG_EDEV_OOM);
  gg_device_free(d);
}

typedef struct churn_arg {
  gg_device *d;
  unsigned seed;
  int ok, oom, other;
} churn_arg;

static void *churn(void *p) {
  churn_arg *a = p;
  gg_devmem held[8];
  int n = 0;
  for (int i = 0; i < 2000; i++) {
    a->seed = a->seed * 1103515245u + 12345u;
    if (n < 8 && (a->seed >> 16) % 3) {
      int rc = gg_device_mem_alloc(a->d, 1 + (a->seed >> 8) % 65536, &held[n]);
      if (rc == 0) {
        a->ok++;
        n++;
      } else if (rc == GG_EDEV_OOM) {
        a->oom++;
      } else {
        a->other++;
      }
    } else if (n) {
      gg_device_mem_release(a->d, &held[--n]);
    }
  }
  while (n) gg_device_mem_release(a->d, &held[--n]);
  return NULL;
}

/* Threads allocating and freeing concurrently never push the simulated GPU
 * past its capacity, and every byte comes back. */
static void test_concurrent_capacity(void) {
  gg_device *d = NULL;
  ASSERT_OK(gg_device_open("sim:mem=1M", &d));
  pthread_t th[4];
  churn_arg args[4];
  for (int i = 0; i < 4; i++) {
    args[i] = (churn_arg){d, 17u * (unsigned)i + 1, 0, 0, 0};
    ASSERT_EQ(pthread_create(&th[i], NULL, churn, &args[i]), 0);
  }
  int ok = 0, oom = 0, other = 0;
  for (int i = 0; i < 4; i++) {
    pthread_join(th[i], NULL);
    ok += args[i].ok;
    oom += args[i].oom;
    other += args[i].other;
  }
  gg_sim_stats st;
  ASSERT_OK(gg_sim_get_stats(d, &st));
  ASSERT_EQ(other, 0);
  ASSERT_U64_EQ(st.allocs, (uint64_t)(ok + oom));
  ASSERT_U64_EQ(st.capacity_ooms, (uint64_t)oom);
  ASSERT_U64_EQ(st.used, 0);
  ASSERT_U64_EQ(gg_device_mem_in_use(d), 0);
  ASSERT_GE(ok, 100);
  gg_device_free(d);
}

int main(int argc, char **argv) {
  gg_log_set_level(GG_LOG_WARN);
  static const gg_test_case cases[] = {
      {"default_info", test_default_info},
      {"capacity", test_capacity},
      {"oom_at_n", test_oom_at_n},
      {"launch_at_n", test_launch_at_n},
      {"sticky", test_sticky},
      {"hang_timeout", test_hang_timeout},
      {"hang_forever_until_reset", test_hang_forever_until_reset},
      {"probability_determinism", test_probability_determinism},
      {"env_faults", test_env_faults},
      {"plan_parse", test_plan_parse},
      {"validate", test_validate},
      {"concurrent_capacity", test_concurrent_capacity},
      {0},
  };
  return gg_test_main(argc, argv, cases);
}
