/* Tests for 'gpuguard doctor': fake installation trees under --root (no
 * toolkit, libdevice missing, XLA_FLAGS pointing to a wrong dir, driver older
 * than the toolkit, broken ICD, CUDA_VISIBLE_DEVICES hiding everything),
 * --write-env sourced by a real shell, --explain on the fixture logs, the sim
 * device, and the real machine (must not crash, must agree with the files). */
#include "gpuguard/error.h"
#include "test.h"

#include <errno.h>
#include <jansson.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char g_tmp[256];

/* Runs the gpuguard binary; returns the exit status and the stdout (malloc'd). */
static int run(const char *args, char **out) {
  char cmd[4096];
  snprintf(cmd, sizeof cmd, "%s %s%s", GG_BIN, args, strstr(args, "2>&1") ? "" : " 2>/dev/null");
  FILE *p = popen(cmd, "r");
  if (!p) return -1;
  size_t cap = 65536, n = 0;
  char *buf = malloc(cap);
  size_t r;
  while (buf && (r = fread(buf + n, 1, cap - n - 1, p)) > 0) {
    n += r;
    if (n + 1 == cap) {
      char *nb = realloc(buf, cap *= 2);
      if (!nb) break;
      buf = nb;
    }
  }
  if (buf) buf[n] = 0;
  int st = pclose(p);
  *out = buf;
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void mkdirs(const char *path) {
  char tmp[1024];
  snprintf(tmp, sizeof tmp, "%s", path);
  for (char *p = tmp + 1; *p; p++) {
    if (*p == '/') {
      *p = 0;
      mkdir(tmp, 0755);
      *p = '/';
    }
  }
  mkdir(tmp, 0755);
}

/* Writes root/rel with content, creating directories. */
static void put(const char *root, const char *rel, const char *content) {
  char p[1024];
  snprintf(p, sizeof p, "%s%s", root, rel);
  char *slash = strrchr(p, '/');
  *slash = 0;
  mkdirs(p);
  *slash = '/';
  FILE *f = fopen(p, "w");
  if (!f) return;
  fputs(content, f);
  fclose(f);
}

/* A fresh empty root for one scenario. */
static const char *new_root(const char *name, char *buf, size_t len) {
  snprintf(buf, len, "%s/%s", g_tmp, name);
  mkdirs(buf);
  char p[1024];
  snprintf(p, sizeof p, "%s/etc/OpenCL/vendors", buf);
  mkdirs(p);
  return buf;
}

static void fake_driver(const char *root, const char *version) {
  char v[256];
  snprintf(v, sizeof v,
           "NVRM version: NVIDIA UNIX x86_64 Kernel Module  %s  Thu Feb 22 01:44:30 UTC 2024\n"
           "GCC version:  gcc version 12.2.0 (Debian 12.2.0-14)\n",
           version);
  put(root, "/proc/driver/nvidia/version", v);
  put(root, "/dev/nvidia0", "");
  put(root, "/dev/nvidiactl", "");
}

static void fake_toolkit(const char *root, const char *dir, int cuda_version, int libdevice) {
  char rel[512], v[128];
  snprintf(rel, sizeof rel, "%s/include/cuda.h", dir);
  snprintf(v, sizeof v, "#ifndef __cuda_cuda_h__\n#define CUDA_VERSION %d\n#endif\n", cuda_version);
  put(root, rel, v);
  snprintf(rel, sizeof rel, "%s/bin/nvcc", dir);
  put(root, rel, "#!/bin/sh\n");
  if (libdevice) {
    snprintf(rel, sizeof rel, "%s/nvvm/libdevice/libdevice.10.bc", dir);
    put(root, rel, "BC\xc0\xde");
  }
}

static json_t *doctor_json(const char *root, const char *extra, int *status) {
  char args[2048], *out = NULL;
  snprintf(args, sizeof args, "doctor --json --no-validate --root %s %s", root, extra ? extra : "");
  *status = run(args, &out);
  json_error_t e;
  json_t *j = out ? json_loads(out, 0, &e) : NULL;
  if (!j)
    fprintf(stderr, "  doctor output is not JSON (%s): %.300s\n", out ? e.text : "none",
            out ? out : "");
  free(out);
  return j;
}

/* The check with this id, or NULL. */
static json_t *check(json_t *j, const char *id) {
  json_t *arr = json_object_get(j, "checks");
  size_t i;
  json_t *c;
  json_array_foreach(arr, i, c) {
    if (!strcmp(json_string_value(json_object_get(c, "id")), id)) return c;
  }
  return NULL;
}

static const char *field(json_t *j, const char *id, const char *key) {
  json_t *c = check(j, id);
  const char *s = c ? json_string_value(json_object_get(c, key)) : NULL;
  return s ? s : "";
}

static void clean_env(void) {
  static const char *const vars[] = {"CUDA_HOME",
                                     "CUDA_PATH",
                                     "CUDA_ROOT",
                                     "CUDA_TOOLKIT_ROOT_DIR",
                                     "XLA_FLAGS",
                                     "CUDA_VISIBLE_DEVICES",
                                     "OCL_ICD_VENDORS",
                                     "GPUGUARD_DEVICE",
                                     "GPUGUARD_FAULTS",
                                     "GPUGUARD_SEED",
                                     "TF_FORCE_GPU_ALLOW_GROWTH",
                                     "CUDA_LAUNCH_BLOCKING"};
  for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
    unsetenv(vars[i]);
  /* fake trees must not depend on a real driver library being present */
  setenv("GPUGUARD_LIBCUDA", "/nonexistent/libcuda.so.1", 1);
}

static void test_no_toolkit(void) {
  clean_env();
  char root[512];
  new_root("no-toolkit", root, sizeof root);
  fake_driver(root, "550.54.14");
  int st;
  json_t *j = doctor_json(root, NULL, &st);
  ASSERT_TRUE(j != NULL);
  ASSERT_STREQ(field(j, "nvidia.driver", "status"), "ok");
  ASSERT_CONTAINS(field(j, "nvidia.driver", "message"), "550.54.14");
  ASSERT_STREQ(field(j, "toolkit.location", "status"), "warn");
  ASSERT_CONTAINS(field(j, "toolkit.location", "message"), "no CUDA toolkit found");
  ASSERT_TRUE(field(j, "toolkit.location", "fix")[0] != 0);
  ASSERT_TRUE(json_is_false(json_object_get(json_object_get(j, "toolkit"), "found")));
  ASSERT_STREQ(field(j, "libdevice.location", "status"), "warn");
  /* the driver is there but libcuda is not loadable: a failure */
  ASSERT_STREQ(field(j, "cuda.libcuda", "status"), "fail");
  ASSERT_STREQ(field(j, "nvidia.dev", "status"), "ok");
  ASSERT_EQ(st, 2);
  ASSERT_EQ(json_integer_value(json_object_get(j, "exit_code")), 2);
  ASSERT_STREQ(json_string_value(json_object_get(j, "schema")), "gpuguard.doctor/1");
  json_decref(j);
}

static void test_libdevice_missing(void) {
  clean_env();
  char root[512], p[1024], t[1024];
  new_root("no-libdevice", root, sizeof root);
  fake_toolkit(root, "/usr/local/cuda-12.4", 12040, 0);
  snprintf(p, sizeof p, "%s/usr/local/cuda", root);
  ASSERT_EQ(symlink("cuda-12.4", p), 0);
  int st;
  json_t *j = doctor_json(root, NULL, &st);
  ASSERT_TRUE(j != NULL);
  ASSERT_STREQ(field(j, "toolkit.location", "status"), "ok");
  ASSERT_CONTAINS(field(j, "toolkit.location", "message"),
                  "/usr/local/cuda -> /usr/local/cuda-12.4");
  ASSERT_STREQ(field(j, "toolkit.version", "status"), "ok");
  ASSERT_CONTAINS(field(j, "toolkit.version", "message"), "12.4 (from include/cuda.h)");
  ASSERT_STREQ(field(j, "libdevice.location", "status"), "fail");
  ASSERT_CONTAINS(field(j, "libdevice.location", "cause"), "libdevice not found");
  ASSERT_EQ(st, 2);
  /* no driver in this tree: compatibility cannot be checked */
  ASSERT_STREQ(field(j, "toolkit.compat", "status"), "info");
  json_decref(j);
  /* CUDA_HOME pointing at nothing is its own failure */
  snprintf(t, sizeof t, "/opt/nothing-here");
  setenv("CUDA_HOME", t, 1);
  j = doctor_json(root, NULL, &st);
  unsetenv("CUDA_HOME");
  ASSERT_TRUE(j != NULL);
  ASSERT_STREQ(field(j, "toolkit.env", "status"), "fail");
  ASSERT_CONTAINS(field(j, "toolkit.env", "message"), "CUDA_HOME=/opt/nothing-here");
  json_decref(j);
}

static void test_xla_flags_wrong_dir(void) {
  clean_env();
  char root[512], envf[1024], args[2048], p[1024];
  new_root("xla-wrong", root, sizeof root);
  fake_toolkit(root, "/usr/local/cuda-12.4", 12040, 1);
  snprintf(p, sizeof p, "%s/opt/wrong", root);
  mkdirs(p);
  setenv("XLA_FLAGS", "--xla_gpu_cuda_data_dir=/opt/wrong --xla_gpu_autotune_level=0", 1);
  int st;
  json_t *j = doctor_json(root, NULL, &st);
  ASSERT_TRUE(j != NULL);
  ASSERT_STREQ(field(j, "libdevice.location", "status"), "ok");
  ASSERT_CONTAINS(field(j, "libdevice.location", "message"),
                  "/usr/local/cuda-12.4/nvvm/libdevice/libdevice.10.bc");
  ASSERT_STREQ(field(j, "xla.flags", "status"), "fail");
  ASSERT_CONTAINS(field(j, "xla.flags", "message"), "/opt/wrong");
  ASSERT_CONTAINS(field(j, "xla.flags", "fix"),
                  "--xla_gpu_cuda_data_dir=/usr/local/cuda-12.4 --xla_gpu_autotune_level=0");
  ASSERT_STREQ(
      json_string_value(json_object_get(json_object_get(j, "libdevice"), "xla_flags_data_dir")),
      "/opt/wrong");
  ASSERT_EQ(st, 2);
  json_decref(j);
  /* --write-env, then source it in a real shell and check the result */
  snprintf(envf, sizeof envf, "%s/gpu.env", g_tmp);
  snprintf(args, sizeof args, "doctor --no-validate --root %s --write-env %s", root, envf);
  char *out = NULL;
  st = run(args, &out);
  ASSERT_EQ(st, 2);
  ASSERT_CONTAINS(out, "[FAIL] XLA_FLAGS --xla_gpu_cuda_data_dir=/opt/wrong");
  ASSERT_CONTAINS(out, "Wrote ");
  free(out);
  FILE *f = fopen(envf, "r");
  ASSERT_TRUE(f != NULL);
  char line[2048], prev[2048] = "";
  int exports = 0, commented = 0;
  while (fgets(line, sizeof line, f)) {
    if (!strncmp(line, "export ", 7) || !strncmp(line, "unset ", 6)) {
      exports++;
      commented += prev[0] == '#';
    }
    snprintf(prev, sizeof prev, "%s", line);
  }
  fclose(f);
  ASSERT_GE(exports, 2);
  ASSERT_EQ(commented, exports); /* a comment before every line */
  snprintf(args, sizeof args, "sh -c '. %s && printf \"%%s|%%s\" \"$XLA_FLAGS\" \"$CUDA_HOME\"'",
           envf);
  f = popen(args, "r");
  ASSERT_TRUE(f != NULL);
  char got[1024] = "";
  if (!fgets(got, sizeof got, f)) got[0] = 0;
  pclose(f);
  ASSERT_STREQ(got, "--xla_gpu_cuda_data_dir=/usr/local/cuda-12.4 --xla_gpu_autotune_level=0|"
                    "/usr/local/cuda-12.4");
  /* with the sourced value doctor is satisfied */
  setenv("XLA_FLAGS", "--xla_gpu_cuda_data_dir=/usr/local/cuda-12.4", 1);
  j = doctor_json(root, NULL, &st);
  unsetenv("XLA_FLAGS");
  ASSERT_TRUE(j != NULL);
  ASSERT_STREQ(field(j, "xla.flags", "status"), "ok");
  json_decref(j);
}

static void test_driver_older_than_toolkit(void) {
  clean_env();
  char root[512];
  new_root("old-driver", root, sizeof root);
  fake_driver(root, "535.104.05"); /* supports CUDA 12.2 */
  put(root, "/usr/local/cuda-12.4/version.json",
      "{\n   \"cuda\" : {\n      \"name\" : \"CUDA SDK\",\n      \"version\" : \"12.4.1\"\n   },\n"
      "   \"cuda_nvcc\" : {\"version\" : \"12.4.131\"}\n}\n");
  int st;
  json_t *j = doctor_json(root, NULL, &st);
  ASSERT_TRUE(j != NULL);
  ASSERT_CONTAINS(field(j, "toolkit.version", "message"), "12.4.1 (from version.json)");
  ASSERT_STREQ(field(j, "toolkit.compat", "status"), "warn"); /* same major: minor compat */
  ASSERT_CONTAINS(field(j, "toolkit.compat", "message"),
                  "supports CUDA 12.2, older than toolkit 12.4");
  ASSERT_CONTAINS(field(j, "toolkit.compat", "fix"), ">= 550.54.14");
  ASSERT_STREQ(json_string_value(json_object_get(json_object_get(j, "driver"), "cuda_version")),
               "12.2");
  json_decref(j);
  /* a driver from the CUDA 11 era cannot run a CUDA 12 toolkit at all */
  fake_driver(root, "470.82.01");
  j = doctor_json(root, NULL, &st);
  ASSERT_TRUE(j != NULL);
  ASSERT_STREQ(field(j, "toolkit.compat", "status"), "fail");
  ASSERT_CONTAINS(field(j, "toolkit.compat", "message"), "supports CUDA 11.4");
  ASSERT_CONTAINS(field(j, "toolkit.compat", "cause"), "driver version is insufficient");
  ASSERT_EQ(st, 2);
  json_decref(j);
  /* a new enough driver is fine */
  fake_driver(root, "580.65.06");
  j = doctor_json(root, NULL, &st);
  ASSERT_TRUE(j != NULL);
  ASSERT_STREQ(field(j, "toolkit.compat", "status"), "ok");
  json_decref(j);
}

static void test_broken_icd(void) {
  clean_env();
  char root[512];
  new_root("broken-icd", root, sizeof root);
  put(root, "/etc/OpenCL/vendors/broken.icd", "libgg-does-not-exist.so.1\n");
  put(root, "/etc/OpenCL/vendors/empty.icd", "");
  put(root, "/etc/OpenCL/vendors/notalib.icd", "/usr/lib/notalib.so\n");
  put(root, "/usr/lib/notalib.so", "this is not an ELF file");
  int st;
  json_t *j = doctor_json(root, NULL, &st);
  ASSERT_TRUE(j != NULL);
  ASSERT_STREQ(field(j, "opencl.icd.broken.icd", "status"), "fail");
  ASSERT_CONTAINS(field(j, "opencl.icd.broken.icd", "cause"), "libgg-does-not-exist.so.1");
  ASSERT_CONTAINS(field(j, "opencl.icd.broken.icd", "fix"), "/etc/OpenCL/vendors/broken.icd");
  ASSERT_STREQ(field(j, "opencl.icd.empty.icd", "status"), "fail");
  ASSERT_CONTAINS(field(j, "opencl.icd.empty.icd", "cause"), "is empty");
  ASSERT_STREQ(field(j, "opencl.icd.notalib.icd", "status"), "fail");
  json_t *icds = json_object_get(json_object_get(j, "opencl"), "icds");
  ASSERT_EQ(json_array_size(icds), 3);
  size_t i;
  json_t *x;
  json_array_foreach(icds, i, x) ASSERT_TRUE(json_is_false(json_object_get(x, "loadable")));
  ASSERT_EQ(st, 2);
  json_decref(j);
  /* the real pocl ICD, named from the fake tree, loads */
  if (access("/etc/OpenCL/vendors/pocl.icd", R_OK) != 0) SKIP("no pocl.icd on this machine");
  char lib[256] = "";
  FILE *f = fopen("/etc/OpenCL/vendors/pocl.icd", "r");
  if (f) {
    if (!fgets(lib, sizeof lib, f)) lib[0] = 0;
    fclose(f);
  }
  new_root("good-icd", root, sizeof root);
  put(root, "/etc/OpenCL/vendors/pocl.icd", lib);
  j = doctor_json(root, NULL, &st);
  ASSERT_TRUE(j != NULL);
  ASSERT_STREQ(field(j, "opencl.icd.pocl.icd", "status"), "ok");
  json_decref(j);
}

static void test_visible_devices_hidden(void) {
  clean_env();
  char root[512], envf[1024], args[2048];
  new_root("cvd", root, sizeof root);
  fake_driver(root, "550.54.14");
  setenv("CUDA_VISIBLE_DEVICES", "", 1);
  int st;
  json_t *j = doctor_json(root, NULL, &st);
  ASSERT_TRUE(j != NULL);
  ASSERT_STREQ(field(j, "cuda.visible_devices", "status"), "fail");
  ASSERT_CONTAINS(field(j, "cuda.visible_devices", "fix"), "unset CUDA_VISIBLE_DEVICES");
  json_decref(j);
  snprintf(envf, sizeof envf, "%s/cvd.env", g_tmp);
  snprintf(args, sizeof args, "doctor --no-validate --root %s --write-env %s", root, envf);
  char *out = NULL;
  run(args, &out);
  free(out);
  unsetenv("CUDA_VISIBLE_DEVICES");
  FILE *f = fopen(envf, "r");
  ASSERT_TRUE(f != NULL);
  char all[8192];
  size_t n = fread(all, 1, sizeof all - 1, f);
  all[n] = 0;
  fclose(f);
  ASSERT_CONTAINS(all, "\nunset CUDA_VISIBLE_DEVICES\n");
  ASSERT_CONTAINS(all, "export TF_FORCE_GPU_ALLOW_GROWTH='true'");
}

/* --explain over every fixture log: each recognised line is printed with its
 * line number and class; the JSON count equals the expectation file's. */
static void test_explain(void) {
  char args[2048], *out = NULL;
  snprintf(args, sizeof args, "doctor --explain %s/fixtures/logs/pytorch.log", GG_TEST_DIR);
  int st = run(args, &out);
  ASSERT_EQ(st, 2);
  ASSERT_CONTAINS(out, "pytorch.log:4: [oom]");
  ASSERT_CONTAINS(out, "detail: tried to allocate 2.00 GiB; 1.50 GiB free; 3.82 GiB total");
  ASSERT_CONTAINS(out, "pytorch.log:6: [device_lost]");
  ASSERT_CONTAINS(out, "pytorch.log:11: [driver]");
  ASSERT_CONTAINS(out, "11 of 16 line(s) recognised");
  free(out);
  const char *files[] = {"tensorflow-xla.log", "tensorflow-oom.log", "pytorch.log",
                         "opencl.log",         "dmesg-xid.log",      "binary.log"};
  char exp_path[1024];
  snprintf(exp_path, sizeof exp_path, "%s/fixtures/logs/expected.txt", GG_TEST_DIR);
  for (size_t k = 0; k < sizeof files / sizeof files[0]; k++) {
    int want = 0;
    FILE *e = fopen(exp_path, "r");
    ASSERT_TRUE(e != NULL);
    char line[512];
    while (fgets(line, sizeof line, e))
      if (!strncmp(line, files[k], strlen(files[k])) && line[strlen(files[k])] == ' ') want++;
    fclose(e);
    snprintf(args, sizeof args, "doctor --json --explain %s/fixtures/logs/%s", GG_TEST_DIR,
             files[k]);
    st = run(args, &out);
    json_error_t je;
    json_t *j = json_loads(out, 0, &je);
    free(out);
    ASSERT_TRUE(j != NULL);
    ASSERT_STREQ(json_string_value(json_object_get(j, "schema")), "gpuguard.explain/1");
    ASSERT_EQ(json_integer_value(json_object_get(j, "recognised")), want);
    ASSERT_EQ(json_array_size(json_object_get(j, "findings")), (size_t)want);
    ASSERT_EQ(st, want ? 2 : 0);
    /* every finding quotes its line, even one with invalid UTF-8 (binary.log) */
    size_t i;
    json_t *x;
    json_array_foreach(json_object_get(j, "findings"), i, x) {
      if (!json_is_string(json_object_get(x, "text"))) {
        json_decref(j);
        GG_T_FAIL("%s: finding %zu has no text", files[k], i);
      }
    }
    json_decref(j);
  }
  /* the BatchNorm JIT failure that follows a missing libdevice, with its node */
  snprintf(args, sizeof args, "doctor --explain %s/fixtures/logs/tensorflow-xla.log", GG_TEST_DIR);
  st = run(args, &out);
  ASSERT_CONTAINS(out, "tensorflow-xla.log:10: [compile] Node: 'model/batch_normalization/");
  ASSERT_CONTAINS(out, "detail: node model/batch_normalization/FusedBatchNormV3");
  free(out);
  /* a NUL byte earlier on a line does not hide the failure after it */
  snprintf(args, sizeof args, "doctor --explain %s/fixtures/logs/binary.log", GG_TEST_DIR);
  st = run(args, &out);
  ASSERT_EQ(st, 2);
  ASSERT_CONTAINS(out, "binary.log:1: [device_lost] abc CUDA error: an illegal memory access");
  ASSERT_CONTAINS(out, "binary.log:5: [device_lost]");
  ASSERT_CONTAINS(out, "3 of 5 line(s) recognised");
  free(out);
  /* XLA libdevice lines name the fix */
  snprintf(args, sizeof args, "doctor --explain %s/fixtures/logs/tensorflow-xla.log", GG_TEST_DIR);
  st = run(args, &out);
  ASSERT_CONTAINS(out, "tensorflow-xla.log:3: [compile]");
  ASSERT_CONTAINS(out, "--xla_gpu_cuda_data_dir");
  free(out);
  /* a clean log: exit 0; a missing one: exit 2 */
  char clean[1024];
  snprintf(clean, sizeof clean, "%s/clean.log", g_tmp);
  FILE *f = fopen(clean, "w");
  ASSERT_TRUE(f != NULL);
  fputs("server started\nall good\n", f);
  fclose(f);
  snprintf(args, sizeof args, "doctor --explain %s", clean);
  st = run(args, &out);
  ASSERT_EQ(st, 0);
  ASSERT_CONTAINS(out, "0 of 2 line(s) recognised");
  free(out);
  /* "-" reads stdin */
  snprintf(args, sizeof args, "doctor --explain - < %s/fixtures/logs/opencl.log", GG_TEST_DIR);
  st = run(args, &out);
  ASSERT_EQ(st, 2);
  ASSERT_CONTAINS(out, "(stdin):5: [device_lost] clWaitForEvents failed with "
                       "CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST");
  ASSERT_CONTAINS(out, "(stdin): 8 of 11 line(s) recognised");
  free(out);
  st = run("doctor --explain /nonexistent/app.log", &out);
  ASSERT_EQ(st, 2);
  free(out);
}

/* Runs gpuguard with args, stdout and stderr to outfile, killed after
 * limit_s; returns its exit status (-1 when killed) and its peak RSS. Without
 * ASan the address space is capped at 2 GiB so an unbounded reader fails
 * fast instead of taking the machine's memory (ASan needs its huge shadow
 * mapping, and there the bound is the code under test). */
static int run_measured(const char *args, const char *outfile, int limit_s, long *maxrss_kb) {
  char cmd[4096];
  snprintf(cmd, sizeof cmd, "exec timeout -s KILL %d %s %s > %s 2>&1", limit_s, GG_BIN, args,
           outfile);
  pid_t pid = fork();
  if (pid < 0) return -2;
  if (pid == 0) {
#if !defined(__SANITIZE_ADDRESS__)
    struct rlimit rl = {(rlim_t)2 << 30, (rlim_t)2 << 30};
    setrlimit(RLIMIT_AS, &rl);
#endif
    execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
    _exit(127);
  }
  int st = 0;
  struct rusage ru;
  memset(&ru, 0, sizeof ru);
  while (wait4(pid, &st, 0, &ru) < 0 && errno == EINTR) {
  }
  *maxrss_kb = ru.ru_maxrss;
  return WIFEXITED(st) && WEXITSTATUS(st) != 137 ? WEXITSTATUS(st) : -1;
}

static char *slurp(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  static char buf[1 << 16];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  return buf;
}

/* --explain on hostile input: /dev/zero (one endless line) and a file with
 * one huge line finish with bounded memory, classify the first 64 KiB of a
 * long line and say so, stop at --max-bytes / --max-lines and say so. */
static void test_explain_limits(void) {
  char args[2048], outf[512];
  snprintf(outf, sizeof outf, "%s/explain.out", g_tmp);
  long rss_kb = 0;
  /* /dev/zero: stopped by the default byte limit, nothing recognised: exit 1 */
  int st = run_measured("doctor --explain /dev/zero", outf, 120, &rss_kb);
  char *out = slurp(outf);
  fprintf(stderr, "  doctor --explain /dev/zero: exit %d, peak RSS %ld KiB\n", st, rss_kb);
  ASSERT_TRUE(out != NULL);
  ASSERT_EQ(st, 1);
  ASSERT_CONTAINS(out, "/dev/zero:1: longer than 64 KiB, classified on its first 64 KiB");
  ASSERT_CONTAINS(out, "stopped after 1.00 GiB (--max-bytes)");
  ASSERT_LE(rss_kb, 200 * 1024);
  /* one 16 MiB line holding a failure in its first 64 KiB and another past
   * it, then a normal failing line: the first counts, the second is not
   * looked at, line numbers stay right */
  char big[512];
  snprintf(big, sizeof big, "%s/one-line.log", g_tmp);
  FILE *f = fopen(big, "wb");
  ASSERT_TRUE(f != NULL);
  static char chunk[1 << 16];
  memset(chunk, 'x', sizeof chunk);
  memcpy(chunk + 100, " CUDA_ERROR_OUT_OF_MEMORY ", 26);
  fwrite(chunk, 1, sizeof chunk, f);
  memset(chunk, 'x', sizeof chunk);
  memcpy(chunk + 100, " CUDA_ERROR_LAUNCH_FAILED ", 26);
  for (int i = 0; i < 255; i++)
    fwrite(chunk, 1, sizeof chunk, f);
  fputs("\nRuntimeError: CUDA error: an illegal memory access was encountered\n", f);
  fclose(f);
  snprintf(args, sizeof args, "doctor --json --explain %s", big);
  st = run_measured(args, outf, 120, &rss_kb);
  ASSERT_EQ(st, 2);
  ASSERT_LE(rss_kb, 200 * 1024);
  json_t *j = json_loads(slurp(outf), 0, NULL);
  ASSERT_TRUE(j != NULL);
  json_t *fs = json_object_get(j, "findings");
  int n_found = (int)json_array_size(fs);
  long long l1 = json_integer_value(json_object_get(json_array_get(fs, 0), "line"));
  const char *p1 = json_string_value(json_object_get(json_array_get(fs, 0), "pattern"));
  int p1_oom = p1 && !strcmp(p1, "cuda-oom") &&
               !strcmp(json_string_value(json_object_get(json_array_get(fs, 0), "class")), "oom");
  long long l2 = json_integer_value(json_object_get(json_array_get(fs, 1), "line"));
  json_t *ll = json_object_get(j, "long_lines");
  long long nlong = json_integer_value(json_object_get(ll, "count"));
  long long first_long = json_integer_value(json_array_get(json_object_get(ll, "lines"), 0));
  int stopped_null = json_is_null(json_object_get(j, "stopped"));
  json_decref(j);
  ASSERT_EQ(n_found, 2);
  ASSERT_EQ(l1, 1);
  ASSERT_TRUE(p1_oom);
  ASSERT_EQ(l2, 2);
  ASSERT_EQ(nlong, 1);
  ASSERT_EQ(first_long, 1);
  ASSERT_TRUE(stopped_null);
  /* --max-lines and --max-bytes stop early and say so */
  snprintf(args, sizeof args, "doctor --explain %s/fixtures/logs/pytorch.log --max-lines 5",
           GG_TEST_DIR);
  st = run_measured(args, outf, 60, &rss_kb);
  out = slurp(outf);
  ASSERT_EQ(st, 2); /* lines 4 and 5 are failures */
  ASSERT_CONTAINS(out, "2 of 5 line(s) recognised");
  ASSERT_CONTAINS(out, "stopped after 5 lines (--max-lines)");
  snprintf(args, sizeof args, "doctor --explain %s --max-bytes 64K", big);
  st = run_measured(args, outf, 60, &rss_kb);
  out = slurp(outf);
  ASSERT_EQ(st, 2);
  ASSERT_CONTAINS(out, "stopped after 64.00 KiB (--max-bytes)");
  ASSERT_CONTAINS(out, "1 of 1 line(s) recognised");
  ASSERT_EQ(run_measured("doctor --explain /dev/null --max-lines 0", outf, 60, &rss_kb), 2);
  ASSERT_CONTAINS(slurp(outf), "--max-lines");
}

/* The memory section plans the real bundled models with the engine: a sim
 * device smaller than their planned peak fails the check with a fix. */
static void test_models_planned(void) {
  clean_env();
  char probe[1024];
  gg_t_cache_path(probe, sizeof probe, "models/human-models-3.0.4/models/blazeface.json");
  if (access(probe, R_OK)) SKIP("models not fetched (%s)", probe);
  char *out = NULL;
  run("doctor --json --device sim:mem=64M", &out);
  json_t *j = out ? json_loads(out, 0, NULL) : NULL;
  free(out);
  ASSERT_TRUE(j != NULL);
  json_t *models = json_object_get(j, "models");
  json_t *files = json_object_get(models, "files");
  ASSERT_EQ(json_array_size(files), 4);
  long long sum = 0;
  for (size_t i = 0; i < 4; i++) {
    json_t *f = json_array_get(files, i);
    long long planned = json_integer_value(json_object_get(f, "planned_bytes"));
    /* dequantized weights + activations exceed the quantized file */
    ASSERT_TRUE(planned > json_integer_value(json_object_get(f, "bytes")));
    sum += planned;
  }
  ASSERT_EQ(json_integer_value(json_object_get(models, "planned_bytes")), sum);
  /* serving all four = every model's weights + the largest activations */
  long long w = 0, act = 0;
  for (size_t i = 0; i < 4; i++) {
    json_t *f = json_array_get(files, i);
    long long wi = json_integer_value(json_object_get(f, "weights_bytes"));
    long long ai = json_integer_value(json_object_get(f, "planned_bytes")) - wi;
    ASSERT_TRUE(wi > 0);
    w += wi;
    if (ai > act) act = ai;
  }
  ASSERT_EQ(json_integer_value(json_object_get(models, "serve_bytes")), w + act);
  ASSERT_TRUE(w + act > (64ll << 20));
  ASSERT_STREQ(field(j, "memory.sim", "status"), "fail");
  ASSERT_CONTAINS(field(j, "memory.sim", "message"), "less than the memory needed to serve");
  ASSERT_STREQ(field(j, "memory.cpu", "status"), "ok");
  json_decref(j);
}

static void test_sim_device(void) {
  clean_env();
  char root[512];
  new_root("sim", root, sizeof root);
  char args[1024], *out = NULL;
  snprintf(args, sizeof args, "doctor --json --root %s --device sim", root);
  int st = run(args, &out);
  json_t *j = json_loads(out, 0, NULL);
  free(out);
  ASSERT_TRUE(j != NULL);
  ASSERT_STREQ(field(j, "device.sim", "status"), "ok");
  ASSERT_CONTAINS(field(j, "device.sim", "message"), "simulated GPU (4.45 GiB)");
  ASSERT_CONTAINS(field(j, "memory.sim", "message"), "4.45 GiB total");
  json_decref(j);
  (void)st;
  /* a sim device whose first allocation fails is reported unusable */
  snprintf(args, sizeof args, "doctor --root %s --device sim:mem=1M --faults oom@1", root);
  st = run(args, &out);
  ASSERT_EQ(st, 2);
  ASSERT_CONTAINS(
      out, "[FAIL] sim:mem=1M (simulated GPU (1.00 MiB)): validation failed at step 'alloc'");
  ASSERT_CONTAINS(out, "GG_EDEV_OOM");
  free(out);
}

/* A device whose kernel never completes must not hang doctor: the watchdog
 * (--timeout) exits 2 and says which step was stuck. */
static void test_hang_watchdog(void) {
  clean_env();
  unsetenv("GPUGUARD_SIM_HANG_MS");
  char root[512], args[1024], *out = NULL;
  new_root("hang", root, sizeof root);
  snprintf(args, sizeof args, "doctor --root %s --device sim --faults hang@1 --timeout 2 2>&1",
           root);
  int st = run(args, &out);
  ASSERT_EQ(st, 2);
  ASSERT_CONTAINS(out, "did not finish in time; stuck while validating sim");
  free(out);
}

/* The real machine: whatever it has, doctor must finish, print valid JSON,
 * and agree with what is on disk. */
static void test_real_machine(void) {
  clean_env();
  unsetenv("GPUGUARD_LIBCUDA");
  char *out = NULL;
  int st = run("doctor --json", &out);
  json_error_t je;
  json_t *j = out ? json_loads(out, 0, &je) : NULL;
  free(out);
  ASSERT_TRUE(j != NULL);
  ASSERT_EQ(json_integer_value(json_object_get(j, "exit_code")), st);
  ASSERT_TRUE(st == 0 || st == 1 || st == 2);
  int has_toolkit = access("/usr/local/cuda/include/cuda.h", F_OK) == 0;
  if (has_toolkit)
    ASSERT_TRUE(json_is_true(json_object_get(json_object_get(j, "toolkit"), "found")));
  int has_ld = access("/usr/local/cuda/nvvm/libdevice/libdevice.10.bc", F_OK) == 0;
  if (has_ld) ASSERT_STREQ(field(j, "libdevice.location", "status"), "ok");
  int has_driver = access("/proc/driver/nvidia/version", F_OK) == 0;
  ASSERT_EQ(json_is_true(json_object_get(json_object_get(j, "driver"), "loaded")), has_driver);
  if (!has_driver) ASSERT_TRUE(strcmp(field(j, "nvidia.driver", "status"), "ok") != 0);
  /* cpu is always there and validates */
  json_t *devs = json_object_get(j, "devices");
  ASSERT_GE(json_array_size(devs), 1);
  json_t *cpu = json_array_get(devs, 0);
  ASSERT_STREQ(json_string_value(json_object_get(cpu, "name")), "cpu");
  ASSERT_TRUE(json_is_true(json_object_get(json_object_get(cpu, "validation"), "passed")));
  json_decref(j);
  /* bad arguments */
  ASSERT_EQ(run("doctor --root /nonexistent/root", &out), 2);
  free(out);
  ASSERT_EQ(run("doctor --bogus", &out), 2);
  free(out);
}

int main(int argc, char **argv) {
  snprintf(g_tmp, sizeof g_tmp, "/tmp/gg-doctor-XXXXXX");
  if (!mkdtemp(g_tmp)) {
    perror("mkdtemp");
    return 1;
  }
  static const gg_test_case cases[] = {
      {"no_toolkit", test_no_toolkit},
      {"libdevice_missing", test_libdevice_missing},
      {"xla_flags_wrong_dir", test_xla_flags_wrong_dir},
      {"driver_older_than_toolkit", test_driver_older_than_toolkit},
      {"broken_icd", test_broken_icd},
      {"visible_devices_hidden", test_visible_devices_hidden},
      {"explain", test_explain},
      {"explain_limits", test_explain_limits},
      {"sim_device", test_sim_device},
      {"models_planned", test_models_planned},
      {"hang_watchdog", test_hang_watchdog},
      {"real_machine", test_real_machine},
      {0},
  };
  int rc = gg_test_main(argc, argv, cases);
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf %s", g_tmp);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", g_tmp);
  return rc;
}
