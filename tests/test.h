/* Minimal test harness: assertion macros that print both values, and a
 * runner that reports "N passed, N failed" per test program. */
#ifndef GG_TEST_H
#define GG_TEST_H

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int gg_t_failed_checks;

#define GG_T_FAIL(...)                                                                             \
  do {                                                                                             \
    fprintf(stderr, "  %s:%d: ", __FILE__, __LINE__);                                              \
    fprintf(stderr, __VA_ARGS__);                                                                  \
    fprintf(stderr, "\n");                                                                         \
    gg_t_failed_checks++;                                                                          \
    return;                                                                                        \
  } while (0)

#define ASSERT_TRUE(c)                                                                             \
  do {                                                                                             \
    if (!(c)) GG_T_FAIL("ASSERT_TRUE(%s) failed", #c);                                             \
  } while (0)
#define ASSERT_FALSE(c)                                                                            \
  do {                                                                                             \
    if (c) GG_T_FAIL("ASSERT_FALSE(%s) failed", #c);                                               \
  } while (0)
#define ASSERT_EQ(a, b)                                                                            \
  do {                                                                                             \
    long long _a = (long long)(a), _b = (long long)(b);                                            \
    if (_a != _b) GG_T_FAIL("ASSERT_EQ(%s, %s): %lld != %lld", #a, #b, _a, _b);                    \
  } while (0)
#define ASSERT_NE(a, b)                                                                            \
  do {                                                                                             \
    long long _a = (long long)(a), _b = (long long)(b);                                            \
    if (_a == _b) GG_T_FAIL("ASSERT_NE(%s, %s): both %lld", #a, #b, _a);                           \
  } while (0)
#define ASSERT_U64_EQ(a, b)                                                                        \
  do {                                                                                             \
    uint64_t _a = (uint64_t)(a), _b = (uint64_t)(b);                                               \
    if (_a != _b) GG_T_FAIL("ASSERT_U64_EQ(%s, %s): %" PRIu64 " != %" PRIu64, #a, #b, _a, _b);     \
  } while (0)
#define ASSERT_LE(a, b)                                                                            \
  do {                                                                                             \
    long long _a = (long long)(a), _b = (long long)(b);                                            \
    if (!(_a <= _b)) GG_T_FAIL("ASSERT_LE(%s, %s): %lld > %lld", #a, #b, _a, _b);                  \
  } while (0)
#define ASSERT_GE(a, b)                                                                            \
  do {                                                                                             \
    long long _a = (long long)(a), _b = (long long)(b);                                            \
    if (!(_a >= _b)) GG_T_FAIL("ASSERT_GE(%s, %s): %lld < %lld", #a, #b, _a, _b);                  \
  } while (0)
#define ASSERT_NEAR(a, b, eps)                                                                     \
  do {                                                                                             \
    double _a = (double)(a), _b = (double)(b);                                                     \
    if (!(fabs(_a - _b) <= (eps)))                                                                 \
      GG_T_FAIL("ASSERT_NEAR(%s, %s): %g vs %g (eps %g)", #a, #b, _a, _b, (double)(eps));          \
  } while (0)
#define ASSERT_STREQ(a, b)                                                                         \
  do {                                                                                             \
    const char *_a = (a), *_b = (b);                                                               \
    if (!_a || !_b || strcmp(_a, _b))                                                              \
      GG_T_FAIL("ASSERT_STREQ(%s, %s): \"%s\" != \"%s\"", #a, #b, _a ? _a : "(null)",              \
                _b ? _b : "(null)");                                                               \
  } while (0)
#define ASSERT_CONTAINS(hay, needle)                                                               \
  do {                                                                                             \
    const char *_h = (hay), *_n = (needle);                                                        \
    if (!_h || !strstr(_h, _n))                                                                    \
      GG_T_FAIL("ASSERT_CONTAINS(%s, %s): \"%s\" not in \"%.400s\"", #hay, #needle, _n,            \
                _h ? _h : "(null)");                                                               \
  } while (0)
/* Asserts a gg call returned 0, printing the error name otherwise. */
#define ASSERT_OK(expr)                                                                            \
  do {                                                                                             \
    int _rc = (expr);                                                                              \
    if (_rc != 0) GG_T_FAIL("%s returned %d (%s)", #expr, _rc, gg_err_name(_rc));                  \
  } while (0)

/* out = the fetched-packages cache ($GPUGUARD_CACHE, else ~/.cache/gpuguard,
 * as scripts/fetch-models.sh uses it) joined with rel, e.g.
 * "models/face-api-1.7.15/demo/sample1.jpg". Returns out. */
static inline const char *gg_t_cache_path(char *out, size_t len, const char *rel) {
  const char *cache = getenv("GPUGUARD_CACHE"), *home = getenv("HOME");
  if (cache && *cache)
    snprintf(out, len, "%s/%s", cache, rel);
  else
    snprintf(out, len, "%s/.cache/gpuguard/%s", home ? home : "/root", rel);
  return out;
}

typedef struct gg_test_case {
  const char *name;
  void (*fn)(void);
} gg_test_case;

/* Marks the running test as skipped with a visible reason. */
static int gg_t_skipped;
#define SKIP(...)                                                                                  \
  do {                                                                                             \
    fprintf(stderr, "  SKIP: ");                                                                   \
    fprintf(stderr, __VA_ARGS__);                                                                  \
    fprintf(stderr, "\n");                                                                         \
    gg_t_skipped = 1;                                                                              \
    return;                                                                                        \
  } while (0)

/* Runs the cases (all, or those named on the command line) and prints
 * "N passed, N failed, N skipped". Exit status 1 if any failed. */
static inline int gg_test_main(int argc, char **argv, const gg_test_case *cases) {
  int passed = 0, failed = 0, skipped = 0;
  for (const gg_test_case *c = cases; c->name; c++) {
    if (argc > 1) {
      int want = 0;
      for (int i = 1; i < argc; i++)
        want |= !strcmp(argv[i], c->name);
      if (!want) continue;
    }
    int before = gg_t_failed_checks;
    gg_t_skipped = 0;
    c->fn();
    if (gg_t_failed_checks != before) {
      failed++;
      printf("FAIL %s\n", c->name);
    } else if (gg_t_skipped) {
      skipped++;
      printf("SKIP %s\n", c->name);
    } else {
      passed++;
      printf("ok   %s\n", c->name);
    }
    fflush(stdout);
  }
  printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
  return failed ? 1 : 0;
}

#endif
