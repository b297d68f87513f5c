/* Unit tests for src/core: errors, sizes, options, logging, /proc. */
#include "core/opts.h"
#include "gpuguard/core.h"
#include "gpuguard/error.h"
#include "gpuguard/log.h"
#include "test.h"

#include <stddef.h>

static void test_error_names(void) {
  ASSERT_STREQ(gg_err_name(GG_EDEV_OOM), "GG_EDEV_OOM");
  ASSERT_STREQ(gg_strerror(GG_EDEV_OOM), "device out of memory");
  ASSERT_STREQ(gg_err_name(0), "GG_OK");
  ASSERT_STREQ(gg_strerror(12345), "unknown error");
  ASSERT_TRUE(GG_EINVAL < 0);
  /* Every code has a distinct name. */
  for (int a = GG_EINVAL; a < GG_E_COUNT_END; a++)
    for (int b = a + 1; b < GG_E_COUNT_END; b++)
      ASSERT_TRUE(strcmp(gg_err_name(a), gg_err_name(b)));
}

static void test_parse_size(void) {
  uint64_t v = 0;
  ASSERT_OK(gg_parse_size("4096", &v));
  ASSERT_U64_EQ(v, 4096);
  ASSERT_OK(gg_parse_size("4560M", &v));
  ASSERT_U64_EQ(v, 4560ull << 20);
  ASSERT_OK(gg_parse_size("3.5G", &v));
  ASSERT_U64_EQ(v, 3584ull << 20);
  ASSERT_OK(gg_parse_size("64KiB", &v));
  ASSERT_U64_EQ(v, 65536);
  ASSERT_OK(gg_parse_size(" 1 GB ", &v));
  ASSERT_U64_EQ(v, 1ull << 30);
  ASSERT_EQ(gg_parse_size("", &v), GG_EINVAL);
  ASSERT_EQ(gg_parse_size("-1G", &v), GG_EINVAL);
  ASSERT_EQ(gg_parse_size("12Q", &v), GG_EINVAL);
  ASSERT_EQ(gg_parse_size("nan", &v), GG_EINVAL);
  ASSERT_EQ(gg_parse_size("99999999999T", &v), GG_ERANGE);
  char buf[32];
  ASSERT_STREQ(gg_format_size(3584ull << 20, buf, sizeof buf), "3.50 GiB");
  ASSERT_STREQ(gg_format_size(12, buf, sizeof buf), "12 B");
}

typedef struct cfg {
  const char *name;
  int n;
  uint64_t sz;
  int flag;
  double d;
} cfg;

static const gg_opt k_opts[] = {
    {"name", "GG_TEST_NAME", GG_OPT_STR, offsetof(cfg, name), "dflt", "a name", "S"},
    {"n", "GG_TEST_N", GG_OPT_INT, offsetof(cfg, n), "7", "a number", "N"},
    {"size", NULL, GG_OPT_SIZE, offsetof(cfg, sz), "1K", "a size", "B"},
    {"flag", NULL, GG_OPT_BOOL, offsetof(cfg, flag), "true", "a flag", NULL},
    {"ratio", NULL, GG_OPT_DOUBLE, offsetof(cfg, d), "0.5", "a ratio", "R"},
    {0},
};

static void test_opts_precedence(void) {
  cfg c;
  char err[128];
  int first;
  setenv("GG_TEST_N", "11", 1);
  setenv("GG_TEST_NAME", "fromenv", 1);
  char *argv1[] = {"x", NULL};
  ASSERT_OK(gg_opts_parse(k_opts, &c, 1, argv1, &first, err, sizeof err));
  ASSERT_EQ(c.n, 11);
  ASSERT_STREQ(c.name, "fromenv");
  ASSERT_U64_EQ(c.sz, 1024);
  ASSERT_EQ(c.flag, 1);
  char *argv2[] = {"x", "--n", "3", "--name=flag", "--no-flag", "--size", "2M", "rest", NULL};
  ASSERT_OK(gg_opts_parse(k_opts, &c, 8, argv2, &first, err, sizeof err));
  ASSERT_EQ(c.n, 3);
  ASSERT_STREQ(c.name, "flag");
  ASSERT_EQ(c.flag, 0);
  ASSERT_U64_EQ(c.sz, 2u << 20);
  ASSERT_EQ(first, 7);
  unsetenv("GG_TEST_N");
  unsetenv("GG_TEST_NAME");
}

static void test_opts_errors(void) {
  cfg c;
  char err[128];
  int first;
  char *a1[] = {"x", "--n", "abc", NULL};
  ASSERT_EQ(gg_opts_parse(k_opts, &c, 3, a1, &first, err, sizeof err), GG_EINVAL);
  ASSERT_CONTAINS(err, "--n: expected an integer");
  char *a2[] = {"x", "--bogus", NULL};
  ASSERT_EQ(gg_opts_parse(k_opts, &c, 2, a2, &first, err, sizeof err), GG_EINVAL);
  ASSERT_CONTAINS(err, "unknown option");
  char *a3[] = {"x", "--n", NULL};
  ASSERT_EQ(gg_opts_parse(k_opts, &c, 2, a3, &first, err, sizeof err), GG_EINVAL);
  ASSERT_CONTAINS(err, "needs a value");
  char *a4[] = {"x", "--help", NULL};
  ASSERT_EQ(gg_opts_parse(k_opts, &c, 2, a4, &first, err, sizeof err), 1);
  setenv("GG_TEST_N", "zz", 1);
  char *a5[] = {"x", NULL};
  ASSERT_EQ(gg_opts_parse(k_opts, &c, 1, a5, &first, err, sizeof err), GG_EINVAL);
  ASSERT_CONTAINS(err, "GG_TEST_N");
  unsetenv("GG_TEST_N");
}

/* gg_opts_cli: the exit codes every subcommand relies on. */
static void test_opts_cli(void) {
  cfg c;
  unsetenv("GG_TEST_N");
  char *ok[] = {"x", "--n", "3", NULL};
  ASSERT_EQ(gg_opts_cli("t", "", k_opts, &c, 3, ok), -1);
  ASSERT_EQ(c.n, 3);
  FILE *saved = stderr;
  stderr = fopen("/dev/null", "w");
  char *bad[] = {"x", "--bogus", NULL};
  int rc_bad = gg_opts_cli("t", "", k_opts, &c, 2, bad);
  char *stray[] = {"x", "--n", "3", "extra", NULL};
  int rc_stray = gg_opts_cli("t", "", k_opts, &c, 4, stray);
  fclose(stderr);
  stderr = saved;
  ASSERT_EQ(rc_bad, 2);
  ASSERT_EQ(rc_stray, 2);
  FILE *out = stdout;
  stdout = fopen("/dev/null", "w");
  char *help[] = {"x", "--help", NULL};
  int rc_help = gg_opts_cli("t", "Usage: t\n", k_opts, &c, 2, help);
  fclose(stdout);
  stdout = out;
  ASSERT_EQ(rc_help, 0);
}

static char g_captured[4096];
static void capture(gg_log_level level, const char *line, void *user) {
  strncat(g_captured, line, sizeof g_captured - strlen(g_captured) - 1);
}

static void test_log_levels(void) {
  gg_log_level l;
  ASSERT_OK(gg_log_level_parse("WARN", &l));
  ASSERT_EQ(l, GG_LOG_WARN);
  ASSERT_EQ(gg_log_level_parse("loud", &l), GG_EINVAL);
  g_captured[0] = 0;
  gg_log_set_sink(capture, NULL);
  gg_log_set_level(GG_LOG_WARN);
  GG_INFO("GPU", "hidden %d", 1);
  GG_WARN("MEM", "shown %d\nsecond", 2);
  gg_log_set_sink(NULL, NULL);
  gg_log_set_level(GG_LOG_INFO);
  ASSERT_TRUE(strstr(g_captured, "hidden") == NULL);
  ASSERT_CONTAINS(g_captured, "WARN  [MEM] shown 2 second\n");
}

static void test_proc_mem(void) {
  gg_proc_mem m;
  ASSERT_OK(gg_proc_mem_read(&m));
  ASSERT_GT_F(m.rss_mb, 0.1);
  ASSERT_GE_F(m.vms_mb, m.rss_mb);
  ASSERT_GT_F(m.percent, 0);
  ASSERT_LT_F(m.percent, 100);
  /* Touching 32 MiB must show up in RSS. */
  size_t n = 32u << 20;
  char *p = malloc(n);
  ASSERT_TRUE(p != NULL);
  memset(p, 1, n);
  gg_proc_mem m2;
  ASSERT_OK(gg_proc_mem_read(&m2));
  ASSERT_GE_F(m2.rss_mb, m.rss_mb + 30);
  free(p);
}

static void test_base64(void) {
  unsigned char *o = NULL;
  size_t n = 0;
  char err[128];
  ASSERT_OK(gg_base64_decode("aGVsbG8gd29ybGQ=", 64, &o, &n, err, sizeof err));
  ASSERT_EQ(n, 11);
  ASSERT_TRUE(!memcmp(o, "hello world", 11));
  free(o);
  /* no padding, whitespace, URL alphabet, a data: prefix */
  ASSERT_OK(gg_base64_decode("data:image/png;base64,+/-_\n AA", 64, &o, &n, err, sizeof err));
  ASSERT_EQ(n, 4);
  ASSERT_EQ(o[0], 0xfb);
  ASSERT_EQ(o[1], 0xff);
  ASSERT_EQ(o[2], 0xbf);
  ASSERT_EQ(o[3], 0x00);
  free(o);
  ASSERT_OK(gg_base64_decode("", 64, &o, &n, err, sizeof err));
  ASSERT_EQ(n, 0);
  free(o);
  /* junk, data after padding, too large */
  ASSERT_EQ(gg_base64_decode("aGVs*G8=", 64, &o, &n, err, sizeof err), GG_EPARSE);
  ASSERT_CONTAINS(err, "byte 4");
  ASSERT_TRUE(o == NULL);
  ASSERT_EQ(gg_base64_decode("aGU=bGxv", 64, &o, &n, err, sizeof err), GG_EPARSE);
  ASSERT_EQ(gg_base64_decode("aGVsbG8gd29ybGQ=", 4, &o, &n, err, sizeof err), GG_ETOO_LARGE);
}

int main(int argc, char **argv) {
static const gg_test_case cases[] = {
      {"error_names", test_error_names},
      {"parse_size", test_parse_size},
      {"opts_precedence", test_opts_precedence},
      {"opts_errors", test_opts_errors},
      {"opts_cli", test_opts_cli},
      {"log_levels", test_log_levels},
      {"proc_mem", test_proc_mem},
      {"base64", test_base64},
      {0},
  };
  return gg_test_main(argc, argv, cases);
}
