/* Tests for the failure taxonomy: error codes, CUDA/cuDNN/cuBLAS/OpenCL
 * status codes, and log-line recognition against fixture logs. */
#include "gpuguard/classify.h"
#include "gpuguard/error.h"
#include "test.h"

static void test_class_names(void) {
  for (int c = 0; c < GG_FAIL_CLASS_COUNT; c++) {
    const char *n = gg_fail_class_name((gg_fail_class)c);
    ASSERT_TRUE(strcmp(n, "?") != 0);
    ASSERT_EQ(gg_fail_class_from_name(n), c);
    ASSERT_TRUE(strlen(gg_fail_class_description((gg_fail_class)c)) > 5);
    ASSERT_TRUE(strlen(gg_fail_class_advice((gg_fail_class)c)) > 5);
    ASSERT_TRUE(strcmp(gg_fail_action_name(gg_fail_class_recovery((gg_fail_class)c)), "?"));
  }
  ASSERT_STREQ(gg_fail_class_name(GG_FAIL_DEVICE_LOST), "device_lost");
  ASSERT_STREQ(gg_fail_class_name(GG_FAIL_CLASS_COUNT), "?");
  ASSERT_EQ(gg_fail_class_from_name("nope"), GG_FAIL_CLASS_COUNT);
  ASSERT_EQ(gg_fail_class_recovery(GG_FAIL_OOM), GG_ACTION_SHRINK_RETRY);
  ASSERT_EQ(gg_fail_class_recovery(GG_FAIL_DEVICE_LOST), GG_ACTION_RESET_DEVICE);
  ASSERT_EQ(gg_fail_class_recovery(GG_FAIL_HANG), GG_ACTION_RESTART_WORKER);
  ASSERT_TRUE(gg_fail_class_is_sticky(GG_FAIL_DEVICE_LOST));
  ASSERT_FALSE(gg_fail_class_is_sticky(GG_FAIL_OOM));
}

static void test_gg_errors(void) {
  ASSERT_EQ(gg_classify_err(0), GG_FAIL_NONE);
  ASSERT_EQ(gg_classify_err(GG_EDEV_OOM), GG_FAIL_OOM);
  ASSERT_EQ(gg_classify_err(GG_EBUDGET), GG_FAIL_OOM);
  ASSERT_EQ(gg_classify_err(GG_EOUT_OF_RESOURCES), GG_FAIL_OUT_OF_RESOURCES);
  ASSERT_EQ(gg_classify_err(GG_ELAUNCH), GG_FAIL_LAUNCH);
  ASSERT_EQ(gg_classify_err(GG_EDEVICE_LOST), GG_FAIL_DEVICE_LOST);
  ASSERT_EQ(gg_classify_err(GG_ETIMEOUT), GG_FAIL_HANG);
  ASSERT_EQ(gg_classify_err(GG_ECOMPILE), GG_FAIL_COMPILE);
  ASSERT_EQ(gg_classify_err(GG_EDRIVER), GG_FAIL_DRIVER);
  ASSERT_EQ(gg_classify_err(GG_EUNSUPPORTED), GG_FAIL_UNSUPPORTED);
  ASSERT_EQ(gg_classify_err(GG_EINVAL), GG_FAIL_BAD_INPUT);
  /* every defined code maps to a real class */
  for (int e = GG_EINVAL; e < GG_E_COUNT_END; e++) {
    gg_fail_class c = gg_classify_err(e);
    ASSERT_TRUE(c > GG_FAIL_NONE && c < GG_FAIL_CLASS_COUNT);
  }
}

static void test_cuda_codes(void) {
  ASSERT_EQ(gg_classify_cuda(0), GG_FAIL_NONE);
  ASSERT_EQ(gg_err_from_cuda(0), 0);
  ASSERT_EQ(gg_classify_cuda(2), GG_FAIL_OOM);
  ASSERT_EQ(gg_err_from_cuda(2), GG_EDEV_OOM);
  ASSERT_STREQ(gg_cuda_error_name(2), "CUDA_ERROR_OUT_OF_MEMORY");
  ASSERT_EQ(gg_classify_cuda(719), GG_FAIL_DEVICE_LOST);
  ASSERT_STREQ(gg_cuda_error_name(719), "CUDA_ERROR_LAUNCH_FAILED");
  ASSERT_EQ(gg_classify_cuda(700), GG_FAIL_DEVICE_LOST);
  ASSERT_EQ(gg_err_from_cuda(700), GG_EDEVICE_LOST);
  ASSERT_EQ(gg_classify_cuda(702), GG_FAIL_HANG);
  ASSERT_EQ(gg_err_from_cuda(702), GG_ETIMEOUT);
  ASSERT_EQ(gg_classify_cuda(701), GG_FAIL_OUT_OF_RESOURCES);
  ASSERT_EQ(gg_classify_cuda(100), GG_FAIL_DRIVER);
  ASSERT_EQ(gg_err_from_cuda(100), GG_ENODEV);
  ASSERT_EQ(gg_classify_cuda(218), GG_FAIL_COMPILE);
  ASSERT_EQ(gg_classify_cuda(222), GG_FAIL_COMPILE);
  ASSERT_EQ(gg_classify_cuda(214), GG_FAIL_DEVICE_LOST);
  ASSERT_EQ(gg_classify_cuda(714), GG_FAIL_DEVICE_LOST);
  ASSERT_EQ(gg_classify_cuda(715), GG_FAIL_DEVICE_LOST);
  ASSERT_EQ(gg_classify_cuda(716), GG_FAIL_DEVICE_LOST);
  ASSERT_STREQ(gg_cuda_error_name(716), "CUDA_ERROR_MISALIGNED_ADDRESS");
  ASSERT_EQ(gg_classify_cuda(123456), GG_FAIL_DRIVER);
  ASSERT_STREQ(gg_cuda_error_name(123456), "CUDA_ERROR_?");
}

static void test_cl_codes(void) {
  ASSERT_EQ(gg_classify_cl(0), GG_FAIL_NONE);
  ASSERT_EQ(gg_classify_cl(-5), GG_FAIL_OUT_OF_RESOURCES);
  ASSERT_EQ(gg_err_from_cl(-5), GG_EOUT_OF_RESOURCES);
  ASSERT_EQ(gg_classify_cl(-4), GG_FAIL_OOM);
  ASSERT_EQ(gg_err_from_cl(-4), GG_EDEV_OOM);
  ASSERT_EQ(gg_classify_cl(-6), GG_FAIL_OOM);
  ASSERT_EQ(gg_err_from_cl(-6), GG_ENOMEM);
  ASSERT_EQ(gg_classify_cl(-14), GG_FAIL_DEVICE_LOST);
  ASSERT_EQ(gg_classify_cl(-11), GG_FAIL_COMPILE);
  ASSERT_EQ(gg_err_from_cl(-11), GG_ECOMPILE);
  ASSERT_EQ(gg_classify_cl(-30), GG_FAIL_BAD_INPUT);
  ASSERT_EQ(gg_classify_cl(-54), GG_FAIL_LAUNCH);
  ASSERT_STREQ(gg_cl_error_name(-14), "CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST");
  ASSERT_STREQ(gg_cl_error_name(-1001), "CL_PLATFORM_NOT_FOUND_KHR");
}

static void test_cudnn_cublas_codes(void) {
  ASSERT_EQ(gg_classify_cudnn(2), GG_FAIL_OOM); /* cuDNN 8 ALLOC_FAILED */
  ASSERT_EQ(gg_classify_cudnn(4004), GG_FAIL_OOM);
  ASSERT_EQ(gg_classify_cudnn(5000), GG_FAIL_LAUNCH);
  ASSERT_EQ(gg_classify_cudnn(2999), GG_FAIL_BAD_INPUT); /* category fallback */
  ASSERT_EQ(gg_classify_cudnn(3005), GG_FAIL_DRIVER);
  ASSERT_STREQ(gg_cudnn_status_name(8), "CUDNN_STATUS_EXECUTION_FAILED");
  ASSERT_EQ(gg_classify_cublas(3), GG_FAIL_OOM);
  ASSERT_EQ(gg_err_from_cublas(13), GG_ELAUNCH);
  ASSERT_STREQ(gg_cublas_status_name(15), "CUBLAS_STATUS_NOT_SUPPORTED");
  int code = 0;
  ASSERT_EQ(gg_classify_status_name("CUDNN_STATUS_ALLOC_FAILED", &code), GG_FAIL_OOM);
  ASSERT_EQ(code, 2);
  ASSERT_EQ(gg_classify_status_name("CL_OUT_OF_RESOURCES", &code), GG_FAIL_OUT_OF_RESOURCES);
  ASSERT_EQ(code, -5);
  ASSERT_EQ(gg_classify_status_name("CUDA_ERROR_ILLEGAL_ADDRESS", &code), GG_FAIL_DEVICE_LOST);
  ASSERT_EQ(code, 700);
  ASSERT_EQ(gg_classify_status_name("CL_NOT_A_CODE", NULL), GG_FAIL_CLASS_COUNT);
}

static void test_log_line_basics(void) {
  gg_log_match m;
  ASSERT_EQ(gg_classify_log_line("everything is fine", &m), 0);
  ASSERT_EQ(m.cls, GG_FAIL_NONE);
  ASSERT_EQ(gg_classify_log_line("", &m), 0);
  ASSERT_EQ(gg_classify_log_line(NULL, &m), 0);
  ASSERT_EQ(gg_classify_log_line("status CUDA_SUCCESS", &m), 0);
  ASSERT_EQ(gg_classify_log_line("OPENCL_X CL_DEVICE_TYPE_GPU", &m), 0);
  ASSERT_EQ(gg_classify_log_line("CUDA out of memory. Tried to allocate 2.00 GiB", &m), 1);
  ASSERT_EQ(m.cls, GG_FAIL_OOM);
  ASSERT_U64_EQ(m.requested_bytes, 2ull << 30);
  ASSERT_CONTAINS(m.detail, "tried to allocate 2.00 GiB");
  ASSERT_CONTAINS(m.fix, "batch");
  ASSERT_EQ(gg_classify_log_line("NVRM: Xid (PCI:0000:01:00): 79, pid=1, GPU has fallen off the bus.", &m), 1);
  ASSERT_EQ(m.code, 79);
  ASSERT_CONTAINS(m.detail, "fallen off the bus");
  ASSERT_EQ(gg_classify_log_line("Can't find libdevice directory /opt/cuda/nvvm/libdevice. x", &m), 1);
  ASSERT_STREQ(m.id, "xla-libdevice");
  ASSERT_CONTAINS(m.detail, "/opt/cuda/nvvm/libdevice.");
  ASSERT_CONTAINS(m.fix, "--xla_gpu_cuda_data_dir");
  /* the XLA JIT failure that follows a missing libdevice names the node */
  ASSERT_EQ(gg_classify_log_line("Node: 'model/batch_normalization/FusedBatchNormV3' JIT "
                                 "compilation failed.", &m), 1);
  ASSERT_EQ(m.cls, GG_FAIL_COMPILE);
  ASSERT_STREQ(m.id, "xla-jit-failed");
  ASSERT_CONTAINS(m.detail, "node model/batch_normalization/FusedBatchNormV3");
  ASSERT_CONTAINS(m.fix, "--xla_gpu_cuda_data_dir");
  /* a NUL byte does not end the line: the failure after it is still seen */
  static const char nul_line[] = "abc\0CUDA error: an illegal memory access was encountered";
  ASSERT_EQ(gg_classify_log_bytes(nul_line, sizeof nul_line - 1, &m), 1);
  ASSERT_STREQ(m.id, "cuda-illegal-address");
  ASSERT_EQ(gg_classify_log_bytes("\0\0\0", 3, &m), 0);
  ASSERT_EQ(gg_classify_log_bytes(NULL, 0, &m), 0);
  /* past GG_LOG_LINE_MAX bytes nothing is looked at */
  size_t big = GG_LOG_LINE_MAX + 100;
  char *lng = malloc(big);
  ASSERT_TRUE(lng != NULL);
  memset(lng, ' ', big);
  memcpy(lng + 10, "CUDA_ERROR_LAUNCH_FAILED", 24);
  memcpy(lng + GG_LOG_LINE_MAX + 10, "CUDA_ERROR_OUT_OF_MEMORY", 24);
  int hit = gg_classify_log_bytes(lng, big, &m);
  int early = hit && m.cls == GG_FAIL_DEVICE_LOST;
  memset(lng + 10, ' ', 24);
  int late = gg_classify_log_bytes(lng, big, &m);
  free(lng);
  ASSERT_TRUE(early);
  ASSERT_EQ(late, 0);
  /* Xid meanings */
  gg_fail_class c;
  ASSERT_TRUE(gg_xid_meaning(79, &c) != NULL);
  ASSERT_EQ(c, GG_FAIL_DEVICE_LOST);
  ASSERT_TRUE(gg_xid_meaning(43, &c) != NULL);
  ASSERT_EQ(c, GG_FAIL_LAUNCH);
  ASSERT_TRUE(gg_xid_meaning(99999, &c) == NULL);
}

/* Reads expected.txt and checks every fixture log line: listed lines match
 * with the listed class/pattern/sizes, every other line does not match. */
static void test_fixture_logs(void) {
  char path[1024];
  snprintf(path, sizeof path, "%s/fixtures/logs/expected.txt", GG_TEST_DIR);
  FILE *ef = fopen(path, "r");
  ASSERT_TRUE(ef != NULL);
  typedef struct exp_line {
    char file[64];
    int line;
    char cls[32], id[48];
    unsigned long long a, b, c;
    int nums;
  } exp_line;
  exp_line exp[128];
  int nexp = 0;
  char buf[512];
  while (fgets(buf, sizeof buf, ef) && nexp < 128) {
    if (buf[0] == '#' || buf[0] == '\n') continue;
    exp_line *e = &exp[nexp];
    memset(e, 0, sizeof *e);
    int n = sscanf(buf, "%63s %d %31s %47s %llu %llu %llu", e->file, &e->line, e->cls, e->id,
                   &e->a, &e->b, &e->c);
    if (n < 4) continue;
    e->nums = n - 4;
    nexp++;
  }
  fclose(ef);
  ASSERT_GE(nexp, 40);
  const char *files[] = {"tensorflow-xla.log", "tensorflow-oom.log", "pytorch.log",
                         "opencl.log", "dmesg-xid.log", "binary.log"};
  int matched_expected = 0;
  int seen_class[GG_FAIL_CLASS_COUNT] = {0};
  for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
    snprintf(path, sizeof path, "%s/fixtures/logs/%s", GG_TEST_DIR, files[f]);
    /* read whole, split on '\n' only: binary.log holds NUL bytes */
    static char text[1 << 16];
    FILE *lf = fopen(path, "rb");
    ASSERT_TRUE(lf != NULL);
    size_t tlen = fread(text, 1, sizeof text, lf);
    fclose(lf);
    ASSERT_TRUE(tlen < sizeof text);
    int ln = 0;
    for (char *line = text, *nl; line < text + tlen; line = nl + 1) {
      ln++;
      nl = memchr(line, '\n', (size_t)(text + tlen - line));
      if (!nl) nl = text + tlen;
      *nl = 0;
      gg_log_match m;
      int hit = gg_classify_log_bytes(line, (size_t)(nl - line), &m);
      const exp_line *e = NULL;
      for (int i = 0; i < nexp; i++)
        if (!strcmp(exp[i].file, files[f]) && exp[i].line == ln) e = &exp[i];
      if (!e) {
        if (hit)
          GG_T_FAIL("%s:%d unexpectedly recognised as %s/%s: %s", files[f], ln,
                    gg_fail_class_name(m.cls), m.id, line);
        continue;
      }
      if (!hit)
        GG_T_FAIL("%s:%d not recognised (expected %s/%s): %s", files[f], ln, e->cls, e->id, line);
      if (strcmp(gg_fail_class_name(m.cls), e->cls) || strcmp(m.id, e->id))
        GG_T_FAIL("%s:%d recognised as %s/%s, expected %s/%s", files[f], ln,
                  gg_fail_class_name(m.cls), m.id, e->cls, e->id);
      if (!strcmp(e->id, "nvidia-xid") && e->nums >= 1) {
        ASSERT_EQ(m.code, e->a);
      } else if (e->nums >= 3) {
        ASSERT_U64_EQ(m.requested_bytes, e->a);
        ASSERT_U64_EQ(m.free_bytes, e->b);
        ASSERT_U64_EQ(m.total_bytes, e->c);
      }
      ASSERT_TRUE(m.cause && m.cause[0]);
      ASSERT_TRUE(m.fix && m.fix[0]);
      seen_class[m.cls]++;
      matched_expected++;
    }
  }
  ASSERT_EQ(matched_expected, nexp);
  /* the fixtures cover every failure class a log can show */
  for (int c = GG_FAIL_OOM; c <= GG_FAIL_DRIVER; c++)
    if (!seen_class[c]) GG_T_FAIL("no fixture line of class %s", gg_fail_class_name((gg_fail_class)c));
}

int main(int argc, char **argv) {
  static const gg_test_case cases[] = {
      {"class_names", test_class_names},
      {"gg_errors", test_gg_errors},
      {"cuda_codes", test_cuda_codes},
      {"cl_codes", test_cl_codes},
      {"cudnn_cublas_codes", test_cudnn_cublas_codes},
      {"log_line_basics", test_log_line_basics},
      {"fixture_logs", test_fixture_logs},
      {0},
  };
  return gg_test_main(argc, argv, cases);
}
