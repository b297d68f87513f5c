/* Tests for the device layer: cpu, enumeration, opencl against a real
 * platform (PoCL in CI), cuda with the driver absent, spec errors. */
#include "device/device-impl.h"
#include "gpuguard/device.h"
#include "gpuguard/error.h"
#include "gpuguard/log.h"
#include "test.h"

#include <sys/wait.h>
#include <unistd.h>

const char *gg__cuda_validation_ptx(void);

static void test_cpu(void) {
  gg_device *d = NULL;
  ASSERT_OK(gg_device_open("cpu", &d));
  gg_device_info info;
  ASSERT_OK(gg_device_get_info(d, &info));
  ASSERT_STREQ(info.name, "cpu");
  ASSERT_TRUE(info.total_mem > 0);
  gg_validation v;
  ASSERT_OK(gg_device_validate(d, &v));
  ASSERT_EQ(v.passed, 1);
  gg_device_telemetry t;
  ASSERT_EQ(gg_device_get_telemetry(d, &t), GG_EUNSUPPORTED);
  ASSERT_EQ(t.temperature_c, -1);
  gg_device_free(d);
}

static void test_bad_specs(void) {
  gg_device *d = NULL;
  ASSERT_EQ(gg_device_open("vulkan:0", &d), GG_ENODEV);
  /* A kind left out of the build says so instead of parsing the spec. */
  int cuda_bad = GG_HAVE_CUDA ? GG_EINVAL : GG_EUNSUPPORTED;
  int cl_bad = GG_HAVE_OPENCL ? GG_EINVAL : GG_EUNSUPPORTED;
  ASSERT_EQ(gg_device_open("cuda:x", &d), cuda_bad);
  ASSERT_EQ(gg_device_open("cuda:-1", &d), cuda_bad);
  ASSERT_EQ(gg_device_open("opencl:abc", &d), cl_bad);
  ASSERT_EQ(gg_device_open("opencl:0.0.1", &d), cl_bad);
  ASSERT_EQ(gg_device_open("opencl:9.9", &d), GG_HAVE_OPENCL ? GG_ENODEV : GG_EUNSUPPORTED);
  ASSERT_TRUE(d == NULL);
}

/* main() points GPUGUARD_LIBCUDA at a file that does not exist, so this
 * checks the no-driver path on every machine, GPU or not. */
static void test_cuda_absent(void) {
  gg__cuda_probe p;
  gg__cuda_probe_run(&p);
  ASSERT_EQ(p.lib_loaded, 0);
  ASSERT_CONTAINS(p.lib_name, "/nonexistent/");
  ASSERT_TRUE(p.lib_error[0] != 0);
  ASSERT_EQ(p.device_count, 0);
  gg_device *d = NULL;
  int want = GG_HAVE_CUDA ? GG_ENODEV : GG_EUNSUPPORTED;
  ASSERT_EQ(gg_device_open("cuda:0", &d), want);
  ASSERT_EQ(gg_device_open("cuda", &d), want);
  ASSERT_TRUE(d == NULL);
}

static void test_cuda_ptx_compiles(void) {
  if (!GG_HAVE_CUDA) SKIP("built with -DGG_CUDA=OFF");
  const char *ptxas = GG_PTXAS; /* found by cmake/backends.cmake; "" without a toolkit */
  if (!*ptxas || access(ptxas, X_OK) != 0)
    SKIP("no CUDA toolkit ptxas found at configure time to check the embedded validation PTX");
  char path[] = "/tmp/gg-validate-XXXXXX";
  int fd = mkstemp(path);
  ASSERT_TRUE(fd >= 0);
  const char *ptx = gg__cuda_validation_ptx();
  ASSERT_EQ(write(fd, ptx, strlen(ptx)), (long long)strlen(ptx));
  close(fd);
  char cmd[512];
  snprintf(cmd, sizeof cmd, "%s -arch=sm_75 %s -o %s.cubin 2>&1", ptxas, path, path);
  int st = system(cmd);
  snprintf(cmd, sizeof cmd, "%s.cubin", path);
  int have_cubin = access(cmd, F_OK) == 0;
  unlink(cmd);
  unlink(path);
  ASSERT_TRUE(WIFEXITED(st));
  ASSERT_EQ(WEXITSTATUS(st), 0);
  ASSERT_TRUE(have_cubin);
}

static void test_enumerate(void) {
  gg_device_info *list = NULL;
  size_t n = 0;
  ASSERT_OK(gg_device_enumerate(&list, &n));
  ASSERT_GE(n, 1);
  ASSERT_STREQ(list[0].name, "cpu");
  gg__cl_probe cp;
  gg__opencl_probe_run(&cp);
  size_t ncl = 0;
  for (size_t i = 0; i < n; i++) {
    ASSERT_TRUE(strcmp(list[i].name, "sim") != 0);       /* sim only when configured */
    ASSERT_TRUE(strncmp(list[i].name, "cuda:", 5) != 0); /* driver absent (see main) */
    if (list[i].kind == GG_DEVICE_OPENCL) {
      ncl++;
      ASSERT_TRUE(!strncmp(list[i].name, "opencl:", 7));
      ASSERT_TRUE(list[i].total_mem > 0);
      ASSERT_TRUE(list[i].description[0] != 0);
    }
  }
  if (cp.num_platforms && GG_HAVE_OPENCL) ASSERT_GE(ncl, 1);
  if (!GG_HAVE_OPENCL) ASSERT_EQ(ncl, 0);
  free(list);
}

/* PoCL (pocl-opencl-icd) in CI, or whatever OpenCL the machine has. */
static void test_opencl_real(void) {
  if (!GG_HAVE_OPENCL) SKIP("built with -DGG_OPENCL=OFF");
  gg__cl_probe cp;
  gg__opencl_probe_run(&cp);
  if (!cp.lib_loaded) SKIP("no OpenCL ICD loader: %s", cp.lib_error);
  if (!cp.num_platforms) SKIP("no OpenCL platform (clGetPlatformIDs returned %d)", cp.platforms_rc);
  gg_device *d = NULL;
  ASSERT_OK(gg_device_open("opencl:0.0", &d));
  ASSERT_EQ(gg_device_get_kind(d), GG_DEVICE_OPENCL);
  gg_device_info info;
  ASSERT_OK(gg_device_get_info(d, &info));
  ASSERT_STREQ(info.name, "opencl:0.0");
  ASSERT_TRUE(info.total_mem > 0);
  ASSERT_TRUE(info.max_alloc > 0 && info.max_alloc <= info.total_mem);
  printf("  opencl:0.0 = %s (%s), %s\n", info.description, info.vendor, info.driver_version);
  /* validation: alloc, copy in, kernel built from source, copy out, compare */
  gg_validation v;
  ASSERT_OK(gg_device_validate(d, &v));
  if (!v.passed) GG_T_FAIL("validation failed at %s: %s", v.step, v.reason);
  ASSERT_EQ(gg_device_usable(d, NULL), 1);
  /* round trip at an offset */
  gg_devmem m;
  ASSERT_OK(gg_device_mem_alloc(d, 1024, &m));
  ASSERT_U64_EQ(gg_device_mem_in_use(d), 1024);
  char in[100], out[100];
  for (int i = 0; i < 100; i++)
    in[i] = (char)(i * 7);
  ASSERT_OK(gg_device_copy_to(d, &m, 900, in, 100));
  memset(out, 0, sizeof out);
  ASSERT_OK(gg_device_copy_from(d, out, &m, 900, 100));
  ASSERT_EQ(memcmp(in, out, 100), 0);
  ASSERT_EQ(gg_device_copy_to(d, &m, 1000, in, 100), GG_ERANGE);
  ASSERT_OK(gg_device_synchronize(d));
  ASSERT_OK(gg_device_mem_release(d, &m));
  /* more than one allocation may hold: refused like a driver OOM */
  gg_devmem big;
  ASSERT_EQ(gg_device_mem_alloc(d, (size_t)info.max_alloc + 1, &big), GG_EDEV_OOM);
  /* reset recreates the context; the device validates again */
  ASSERT_OK(gg_device_reset(d));
  ASSERT_OK(gg_device_validate(d, &v));
  ASSERT_EQ(v.passed, 1);
  ASSERT_U64_EQ(gg_device_mem_in_use(d), 0);
  gg_device_free(d);
}

int main(int argc, char **argv) {
  setenv("GPUGUARD_LIBCUDA", "/nonexistent/libcuda.so.1", 1);
  gg_log_set_level(GG_LOG_ERROR);
  static const gg_test_case cases[] = {
      {"cpu", test_cpu},
      {"bad_specs", test_bad_specs},
      {"cuda_absent", test_cuda_absent},
      {"cuda_ptx_compiles", test_cuda_ptx_compiles},
      {"enumerate", test_enumerate},
      {"opencl_real", test_opencl_real},
      {0},
  };
  return gg_test_main(argc, argv, cases);
}
