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
/* The integer asserts compare as long long (or uint64_t), so a float argument
 * would be truncated: ASSERT_LE(0.9, 0.1) would pass. They refuse one at
 * compile time instead; compare floats with ASSERT_NEAR / ASSERT_LE_F /
 * ASSERT_GE_F, which also fail on NaN. The _Generic operand is not evaluated. */
#define GG_T_IS_FLOAT(x) _Generic((x), float : 1, double : 1, long double : 1, default : 0)
#define GG_T_NO_FLOAT(macro, x)                                                                    \
  _Static_assert(!GG_T_IS_FLOAT(x), macro ": argument '" #x "' is floating-point; "                \
                                          "use ASSERT_NEAR, ASSERT_LE_F or ASSERT_GE_F")
#define GG_T_INT_CMP(macro, a, b, op, fmt)                                                         \
  do {                                                                                             \
    GG_T_NO_FLOAT(macro, a);                                                                       \
    GG_T_NO_FLOAT(macro, b);                                                                       \
    long long _a = (long long)(a), _b = (long long)(b);                                            \
    if (!(_a op _b)) GG_T_FAIL(macro "(%s, %s): " fmt, #a, #b, _a, _b);                            \
  } while (0)
#define ASSERT_EQ(a, b) GG_T_INT_CMP("ASSERT_EQ", a, b, ==, "%lld != %lld")
#define ASSERT_NE(a, b) GG_T_INT_CMP("ASSERT_NE", a, b, !=, "%lld == %lld")
#define ASSERT_LE(a, b) GG_T_INT_CMP("ASSERT_LE", a, b, <=, "%lld > %lld")
#define ASSERT_GE(a, b) GG_T_INT_CMP("ASSERT_GE", a, b, >=, "%lld < %lld")
#define ASSERT_U64_EQ(a, b)                                                                        \
  do {                                                                                             \
    GG_T_NO_FLOAT("ASSERT_U64_EQ", a);                                                             \
    GG_T_NO_FLOAT("ASSERT_U64_EQ", b);                                                             \
    uint64_t _a = (uint64_t)(a), _b = (uint64_t)(b);                                               \
    if (_a != _b) GG_T_FAIL("ASSERT_U64_EQ(%s, %s): %" PRIu64 " != %" PRIu64, #a, #b, _a, _b);     \
  } while (0)

/* Float asserts. Each is written as "fail unless the relation holds", so a
 * NaN on either side (or in eps) fails. Values print with 9 significant
 * digits, enough to tell floats apart. */
#define ASSERT_NEAR(a, b, eps)                                                                     \
  do {                                                                                             \
    double _a = (double)(a), _b = (double)(b), _e = (double)(eps);                                 \
    if (!(fabs(_a - _b) <= _e))                                                                    \
      GG_T_FAIL("ASSERT_NEAR(%s, %s, %s): %.9g vs %.9g, |diff| %.9g > eps %.9g", #a, #b, #eps, _a, \
                _b, fabs(_a - _b), _e);                                                            \
  } while (0)
#define GG_T_FLOAT_CMP(macro, a, b, op, opname)                                                    \
  do {                                                                                             \
    double _a = (double)(a), _b = (double)(b);                                                     \
    if (!(_a op _b)) GG_T_FAIL(macro "(%s, %s): %.9g " opname " %.9g is false", #a, #b, _a, _b);   \
  } while (0)
#define ASSERT_LE_F(a, b) GG_T_FLOAT_CMP("ASSERT_LE_F", a, b, <=, "<=")
#define ASSERT_GE_F(a, b) GG_T_FLOAT_CMP("ASSERT_GE_F", a, b, >=, ">=")
#define ASSERT_LT_F(a, b) GG_T_FLOAT_CMP("ASSERT_LT_F", a, b, <, "<")
#define ASSERT_GT_F(a, b) GG_T_FLOAT_CMP("ASSERT_GT_F", a, b, >, ">")
/* The same relation as ASSERT_NEAR for helpers that return a verdict
 * instead of failing: 0 when a, b or eps is NaN. */
static inline int gg_t_near(double a, double b, double eps) {
  return fabs(a - b) <= eps;
}
/* Running maximum of errors that keeps a NaN once seen (fmax and
 * "if (d > m) m = d" both drop it), so a NaN output fails the final
 * ASSERT_LE_F(max, tol). */
static inline double gg_t_max_err(double m, double d) {
  return isnan(m) || isnan(d) ? NAN : fmax(m, d);
}
#define ASSERT_FINITE(a)                                                                           \
  do {                                                                                             \
    double _a = (double)(a);                                                                       \
    if (!isfinite(_a)) GG_T_FAIL("ASSERT_FINITE(%s): %.9g", #a, _a);                               \
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

/* Returns whether name is one of the cases. */
static inline int gg_t_case_exists(const gg_test_case *cases, const char *name) {
  for (const gg_test_case *c = cases; c->name; c++)
    if (!strcmp(c->name, name)) return 1;
  return 0;
}

/* Runs the cases (all, or those named on the command line) and prints
 * "N passed, N failed, N skipped". Exit status 1 if any failed; 2 (before
 * running anything) if a name on the command line is not a case, so a typo
 * cannot pass by running nothing. */
static inline int gg_test_main(int argc, char **argv, const gg_test_case *cases) {
  int passed = 0, failed = 0, skipped = 0, unknown = 0;
  for (int i = 1; i < argc; i++) {
    if (gg_t_case_exists(cases, argv[i])) continue;
    fprintf(stderr, "%s: no test case named '%s'\n", argv[0], argv[i]);
    unknown++;
  }
  if (unknown) {
    fprintf(stderr, "the cases of %s are:\n", argv[0]);
    for (const gg_test_case *c = cases; c->name; c++)
      fprintf(stderr, "  %s\n", c->name);
    return 2;
  }
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
