/* The cuda backend against a FAKE libcuda.so.1 (tests/fixtures/doctor/
 * fake-libcuda.c, host memory, not a GPU): proves the dlopen path, the _v2
 * symbol names, context push/pop, kernel parameter marshalling, CUresult ->
 * GG_E* mapping, sticky errors and reset, enumeration, NVML telemetry (a fake
 * NVML in the same library), and what doctor says
 * when a driver library is present. Real-GPU behaviour is test-device-cuda. */
#include "device/device-impl.h"
#include "gpuguard/device.h"
#include "gpuguard/error.h"
#include "gpuguard/log.h"
#include "test.h"

#include <jansson.h>

#include <dlfcn.h>
#include <sys/stat.h>
#include <sys/wait.h>

#ifndef GG_FAKE_LIBCUDA
#define GG_FAKE_LIBCUDA ""
#endif

static void test_probe(void) {
  gg__cuda_probe p;
  gg__cuda_probe_run(&p);
  if (!p.lib_loaded) GG_T_FAIL("fake libcuda did not load: %s", p.lib_error);
  ASSERT_EQ(p.init_rc, 0);
  ASSERT_EQ(p.driver_version, 12040);
  ASSERT_EQ(p.device_count, 1);
}

static void test_device(void) {
  gg_device *d = NULL;
  ASSERT_OK(gg_device_open("cuda:0", &d));
  ASSERT_EQ(gg_device_get_kind(d), GG_DEVICE_CUDA);
  gg_device_info info;
  ASSERT_OK(gg_device_get_info(d, &info));
  ASSERT_STREQ(info.name, "cuda:0");
  ASSERT_STREQ(info.description, "gpuguard fake CUDA device");
  ASSERT_EQ(info.compute_major, 7);
  ASSERT_EQ(info.compute_minor, 5);
  ASSERT_EQ(info.compute_units, 4);
  ASSERT_U64_EQ(info.total_mem, 256ull << 20);
  ASSERT_U64_EQ(info.free_mem, 256ull << 20);

  /* memory is really accounted by the "driver" */
  gg_devmem m;
  ASSERT_OK(gg_device_mem_alloc(d, 1 << 20, &m));
  uint64_t fr = 0;
  ASSERT_OK(gg_device_get_memory(d, &fr, NULL));
  ASSERT_U64_EQ(fr, (256ull << 20) - (1 << 20));
  float in[3] = {1, 2, 3}, out[3] = {0};
  ASSERT_OK(gg_device_copy_to(d, &m, 4096, in, sizeof in));
  ASSERT_OK(gg_device_copy_from(d, out, &m, 4096, sizeof out));
  ASSERT_NEAR(out[2], 3.0, 0);
  ASSERT_OK(gg_device_mem_release(d, &m));
  /* CUDA_ERROR_OUT_OF_MEMORY becomes GG_EDEV_OOM */
  ASSERT_EQ(gg_device_mem_alloc(d, 300u << 20, &m), GG_EDEV_OOM);
  /* validation: the embedded PTX is "loaded", the kernel "computes" c = 2a + b */
  gg_validation v;
  ASSERT_OK(gg_device_validate(d, &v));
  if (!v.passed) GG_T_FAIL("validation failed at %s: %s", v.step, v.reason);
  ASSERT_U64_EQ(gg_device_mem_in_use(d), 0);
  /* NVML (the fake's) found by PCI bus id */
  gg_device_telemetry t;
  ASSERT_OK(gg_device_get_telemetry(d, &t));
  ASSERT_EQ(t.utilization_pct, 37);
  ASSERT_EQ(t.mem_utilization_pct, 12);
  ASSERT_EQ(t.temperature_c, 61);
  ASSERT_STREQ(info.driver_version, "550.54.14, CUDA 12.4");
  /* cuda:1 does not exist */
  gg_device *d1 = NULL;
  ASSERT_EQ(gg_device_open("cuda:1", &d1), GG_ENODEV);
  gg_device_free(d);
}

static void test_sticky_and_reset(void) {
  gg_device *d = NULL;
  ASSERT_OK(gg_device_open("cuda:0", &d));
  setenv("FAKE_CUDA_LAUNCH_RC", "700", 1); /* CUDA_ERROR_ILLEGAL_ADDRESS */
  gg_validation v;
  ASSERT_OK(gg_device_validate(d, &v));
  unsetenv("FAKE_CUDA_LAUNCH_RC");
  ASSERT_EQ(v.passed, 0);
  ASSERT_STREQ(v.step, "kernel");
  ASSERT_EQ(v.error, GG_EDEVICE_LOST);
  ASSERT_EQ(gg_device_usable(d, NULL), 0);
  /* sticky: every later call fails the same way */
  gg_devmem m;
  ASSERT_EQ(gg_device_mem_alloc(d, 64, &m), GG_EDEVICE_LOST);
  ASSERT_EQ(gg_device_synchronize(d), GG_EDEVICE_LOST);
  /* a non-sticky launch error maps to its own class */
  ASSERT_OK(gg_device_reset(d));
  setenv("FAKE_CUDA_LAUNCH_RC", "701", 1); /* LAUNCH_OUT_OF_RESOURCES */
  ASSERT_OK(gg_device_validate(d, &v));
  unsetenv("FAKE_CUDA_LAUNCH_RC");
  ASSERT_EQ(v.error, GG_EOUT_OF_RESOURCES);
  ASSERT_OK(gg_device_validate(d, &v));
  ASSERT_EQ(v.passed, 1);
  ASSERT_EQ(gg_device_usable(d, NULL), 1);
  gg_device_free(d);
}

static void test_enumerate(void) {
  gg_device_info *list = NULL;
  size_t n = 0;
  void *lib = dlopen(GG_FAKE_LIBCUDA, RTLD_NOW | RTLD_NOLOAD);
  int *retains = lib ? (int *)dlsym(lib, "fake_ctx_retains") : NULL;
  int before = retains ? *retains : -1;
  ASSERT_OK(gg_device_enumerate(&list, &n));
  /* Listing devices never creates a CUDA context. */
  ASSERT_TRUE(retains != NULL);
  ASSERT_EQ(*retains, before);
  if (lib) dlclose(lib);
  int found = 0;
  for (size_t i = 0; i < n; i++)
    if (!strcmp(list[i].name, "cuda:0")) {
      found = 1;
      ASSERT_EQ(list[i].kind, GG_DEVICE_CUDA);
      ASSERT_U64_EQ(list[i].total_mem, 256ull << 20);
      ASSERT_TRUE(list[i].free_mem > 0 && list[i].free_mem <= list[i].total_mem); /* from NVML */
      ASSERT_CONTAINS(list[i].driver_version, "550.54.14");
    }
  free(list);
  ASSERT_TRUE(found);
}

static char *run(const char *args, int *status) {
  char cmd[4096];
  snprintf(cmd, sizeof cmd, "%s %s 2>/dev/null", GG_BIN, args);
  FILE *p = popen(cmd, "r");
  if (!p) return NULL;
  size_t cap = 1 << 20, n = 0, r;
  char *buf = malloc(cap);
  while (buf && n < cap - 1 && (r = fread(buf + n, 1, cap - 1 - n, p)) > 0)
    n += r;
  if (buf) buf[n] = 0;
  int st = pclose(p);
  *status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return buf;
}

static const char *check_field(json_t *j, const char *id, const char *key) {
  size_t i;
  json_t *c;
  json_array_foreach(json_object_get(j, "checks"), i, c) {
    if (!strcmp(json_string_value(json_object_get(c, "id")), id))
      return json_string_value(json_object_get(c, key));
  }
  return "";
}

/* doctor with a driver library present, in a fake tree with a 12.4 driver */
static void test_doctor_with_driver(void) {
  char root[] = "/tmp/gg-fakecuda-XXXXXX";
  ASSERT_TRUE(mkdtemp(root) != NULL);
  char p[64];
  snprintf(p, sizeof p, "%s/proc/driver/nvidia", root);
  char cmd[2048];
  snprintf(cmd, sizeof cmd,
           "mkdir -p %s %s/dev %s/etc/OpenCL/vendors && printf 'NVRM version: "
           "NVIDIA UNIX x86_64 Kernel Module  550.54.14  Thu\\n' > %s/version && "
           ": > %s/dev/nvidia0 && : > %s/dev/nvidiactl",
           p, root, root, p, root, root);
  ASSERT_EQ(system(cmd), 0);
  unsetenv("CUDA_VISIBLE_DEVICES");
  int st = 0;
  char args[1024];
  snprintf(args, sizeof args, "doctor --json --root %s", root);
  char *out = run(args, &st);
  json_t *j = out ? json_loads(out, 0, NULL) : NULL;
  free(out);
  ASSERT_TRUE(j != NULL);
  ASSERT_STREQ(check_field(j, "cuda.libcuda", "status"), "ok");
  ASSERT_CONTAINS(check_field(j, "cuda.libcuda", "message"), "supports CUDA 12.4");
  ASSERT_STREQ(check_field(j, "cuda.devices", "status"), "ok");
  ASSERT_STREQ(check_field(j, "device.cuda:0", "status"), "ok");
  ASSERT_CONTAINS(check_field(j, "device.cuda:0", "message"), "validation passed");
  ASSERT_STREQ(
      json_string_value(json_object_get(json_object_get(j, "driver"), "cuda_version_source")),
      "libcuda");
  size_t di;
  json_t *dv;
  int seen_tel = 0;
  json_array_foreach(json_object_get(j, "devices"), di, dv) {
    if (strcmp(json_string_value(json_object_get(dv, "name")), "cuda:0")) continue;
    json_t *tel = json_object_get(dv, "telemetry");
    ASSERT_EQ(json_integer_value(json_object_get(tel, "temperature_c")), 61);
    seen_tel = 1;
  }
  ASSERT_TRUE(seen_tel);
  json_decref(j);
  /* cuInit failing with NO_DEVICE because CUDA_VISIBLE_DEVICES hides everything */
  setenv("FAKE_CUDA_INIT_RC", "100", 1);
  setenv("CUDA_VISIBLE_DEVICES", "", 1);
  out = run(args, &st);
  unsetenv("FAKE_CUDA_INIT_RC");
  unsetenv("CUDA_VISIBLE_DEVICES");
  j = out ? json_loads(out, 0, NULL) : NULL;
  free(out);
  ASSERT_TRUE(j != NULL);
  ASSERT_STREQ(check_field(j, "cuda.init", "status"), "fail");
  ASSERT_CONTAINS(check_field(j, "cuda.init", "message"), "CUDA_ERROR_NO_DEVICE");
  ASSERT_CONTAINS(check_field(j, "cuda.init", "cause"), "hides every GPU");
  ASSERT_EQ(st, 2);
  json_decref(j);
  /* WSL2-like: no /proc/driver/nvidia, no /dev/nvidia*, but libcuda works */
  snprintf(cmd, sizeof cmd, "rm -rf %s/proc %s/dev", root, root);
  ASSERT_EQ(system(cmd), 0);
  out = run(args, &st);
  j = out ? json_loads(out, 0, NULL) : NULL;
  free(out);
  ASSERT_TRUE(j != NULL);
  ASSERT_STREQ(check_field(j, "nvidia.driver", "status"), "ok");
  ASSERT_CONTAINS(check_field(j, "nvidia.driver", "message"), "reachable through libcuda");
  ASSERT_STREQ(check_field(j, "nvidia.dev", "status"), "info");
  ASSERT_STREQ(check_field(j, "device.cuda:0", "status"), "ok");
  json_decref(j);
  snprintf(cmd, sizeof cmd, "rm -rf %s", root);
  ASSERT_EQ(system(cmd), 0);
}

#if GG_HAVE_CUDA_BACKEND && defined(GG_FAKE_LIBCUDNN)
/* doctor and the compute libraries: versions and paths, their CUDA
 * version against the driver's (the fakes are cuDNN 9.1 and cuBLAS 13.1,
 * built for CUDA 13.0, on a fake 12.4 driver: a mismatch doctor must
 * report), and the cuDNN validation convolution on cuda:0; then without
 * cuDNN: a failure with the fix, since a GPU is present. */
static void test_doctor_cuda_libs(void) {
  setenv("GPUGUARD_LIBCUDNN", GG_FAKE_LIBCUDNN, 1);
  setenv("GPUGUARD_LIBCUBLAS", GG_FAKE_LIBCUBLAS, 1);
  int st = 0;
  char *out = run("doctor --json", &st);
  json_t *j = out ? json_loads(out, 0, NULL) : NULL;
  free(out);
  ASSERT_TRUE(j != NULL);
  ASSERT_STREQ(check_field(j, "cuda.cudnn", "status"), "ok");
  ASSERT_CONTAINS(check_field(j, "cuda.cudnn", "message"), "cuDNN 9.1.0 loaded from");
  ASSERT_STREQ(check_field(j, "cuda.cublas", "status"), "ok");
  ASSERT_CONTAINS(check_field(j, "cuda.cublas", "message"), "cuBLAS 13.1.0");
  ASSERT_STREQ(check_field(j, "cuda.cudnn.compat", "status"), "fail");
  ASSERT_CONTAINS(check_field(j, "cuda.cudnn.compat", "message"),
                  "built for CUDA 13.0 but the driver supports only CUDA 12.4");
  ASSERT_CONTAINS(check_field(j, "cuda.cudnn.compat", "fix"), "install NVIDIA driver >=");
  ASSERT_STREQ(check_field(j, "cuda.cublas.compat", "status"), "fail");
  ASSERT_STREQ(check_field(j, "device.cuda:0.cudnn", "status"), "ok");
  ASSERT_CONTAINS(check_field(j, "device.cuda:0.cudnn", "message"), "matches the host");
  json_t *drv = json_object_get(j, "driver");
  ASSERT_EQ(json_integer_value(json_object_get(drv, "cudnn_version")), 90100);
  ASSERT_EQ(json_integer_value(json_object_get(drv, "cublas_version")), 130100);
  json_decref(j);
  /* no cuDNN on a machine with a GPU: a failure that says what to install */
  setenv("GPUGUARD_LIBCUDNN", "/nonexistent/libcudnn.so.9", 1);
  out = run("doctor --json", &st);
  j = out ? json_loads(out, 0, NULL) : NULL;
  free(out);
  ASSERT_TRUE(j != NULL);
  ASSERT_STREQ(check_field(j, "cuda.cudnn", "status"), "fail");
  ASSERT_CONTAINS(check_field(j, "cuda.cudnn", "message"), "cannot load /nonexistent/libcudnn.so.9");
  ASSERT_CONTAINS(check_field(j, "cuda.cudnn", "fix"), "GPUGUARD_CUDNN_PATH");
  ASSERT_STREQ(check_field(j, "device.cuda:0.cudnn", "status"), "");
  json_decref(j);
  unsetenv("GPUGUARD_LIBCUDNN");
  unsetenv("GPUGUARD_LIBCUBLAS");
}
#endif

int main(int argc, char **argv) {
  if (!GG_HAVE_CUDA) {
    printf("SKIP all: built with -DGG_CUDA=OFF\n");
    return 0;
  }
  if (!GG_FAKE_LIBCUDA[0]) {
    printf("SKIP: built without the fake libcuda (cmake/device.cmake)\n");
    return 0;
  }
  /* before the first cuda call: the backend loads the library once */
  setenv("GPUGUARD_LIBCUDA", GG_FAKE_LIBCUDA, 1);
  setenv("GPUGUARD_LIBNVML", GG_FAKE_LIBCUDA, 1);
  unsetenv("FAKE_CUDA_INIT_RC");
  unsetenv("FAKE_CUDA_LAUNCH_RC");
  unsetenv("FAKE_CUDA_MEM");
  gg_log_set_level(GG_LOG_OFF);
  static const gg_test_case cases[] = {
      {"probe", test_probe},
      {"device", test_device},
      {"sticky_and_reset", test_sticky_and_reset},
      {"enumerate", test_enumerate},
      {"doctor_with_driver", test_doctor_with_driver},
#if GG_HAVE_CUDA_BACKEND && defined(GG_FAKE_LIBCUDNN)
      {"doctor_cuda_libs", test_doctor_cuda_libs},
#endif
      {0},
  };
  return gg_test_main(argc, argv, cases);
}
