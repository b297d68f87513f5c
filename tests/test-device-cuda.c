/* Tests the cuda device against the real driver when one is present
 * (skipped visibly otherwise): info, validation kernel JIT-compiled from the
 * embedded PTX, copies, out-of-memory mapped to GG_EDEV_OOM, reset. */
#include "device/device-impl.h"
#include "gpuguard/device.h"
#include "gpuguard/error.h"
#include "gpuguard/log.h"
#include "test.h"

static void test_cuda_probe_consistent(void) {
  gg__cuda_probe p;
  gg__cuda_probe_run(&p);
  if (!p.lib_loaded) {
    ASSERT_TRUE(p.lib_error[0] != 0);
    ASSERT_EQ(p.device_count, 0);
    gg_device *d = NULL;
    ASSERT_EQ(gg_device_open("cuda:0", &d), GG_ENODEV);
    SKIP("no CUDA driver (%s): checked only that cuda:0 is reported absent", p.lib_error);
  }
  ASSERT_TRUE(p.driver_version > 0);
  if (p.init_rc != 0) ASSERT_EQ(p.device_count, 0);
}

static void test_cuda_real(void) {
  gg__cuda_probe p;
  gg__cuda_probe_run(&p);
  if (!p.lib_loaded || p.init_rc != 0 || p.device_count == 0)
    SKIP("no usable CUDA device (libcuda %s, cuInit %d, %d devices)",
         p.lib_loaded ? "loaded" : "absent", p.init_rc, p.device_count);
  gg_device *d = NULL;
  ASSERT_OK(gg_device_open("cuda:0", &d));
  gg_device_info info;
  ASSERT_OK(gg_device_get_info(d, &info));
  printf("  cuda:0 = %s, cc %d.%d, %llu MiB total, %llu MiB free, %s\n", info.description,
         info.compute_major, info.compute_minor, (unsigned long long)(info.total_mem >> 20),
         (unsigned long long)(info.free_mem >> 20), info.driver_version);
  ASSERT_TRUE(info.total_mem > 0 && info.free_mem <= info.total_mem);
  ASSERT_TRUE(info.compute_major > 0);
  gg_validation v;
  ASSERT_OK(gg_device_validate(d, &v));
  if (!v.passed) GG_T_FAIL("validation failed at %s: %s", v.step, v.reason);
  gg_devmem big;
  ASSERT_EQ(gg_device_mem_alloc(d, (size_t)info.total_mem * 2, &big), GG_EDEV_OOM);
  ASSERT_OK(gg_device_reset(d));
  ASSERT_OK(gg_device_validate(d, &v));
  ASSERT_EQ(v.passed, 1);
  gg_device_free(d);
}

int main(int argc, char **argv) {
  if (!GG_HAVE_CUDA) {
    printf("SKIP all: built with -DGG_CUDA=OFF\n");
    return 0;
  }
  gg_log_set_level(GG_LOG_ERROR);
  static const gg_test_case cases[] = {
      {"cuda_probe_consistent", test_cuda_probe_consistent},
      {"cuda_real", test_cuda_real},
      {0},
  };
  return gg_test_main(argc, argv, cases);
}
