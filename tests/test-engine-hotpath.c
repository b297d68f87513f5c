/* Proves gg_session_run allocates nothing: this test is linked with
 * -Wl,--wrap for malloc, calloc, realloc, aligned_alloc and posix_memalign
 * (cmake/engine.cmake), so every allocation made by the library's code while
 * a prepared session runs is counted, on both backends, 1 and 2 threads. */
#include "gpuguard/engine.h"
#include "gpuguard/error.h"
#include "gpuguard/log.h"
#include "test.h"

#include <stdatomic.h>
#include <stddef.h>

void *__real_malloc(size_t n);
void *__real_calloc(size_t a, size_t b);
void *__real_realloc(void *p, size_t n);
void *__real_aligned_alloc(size_t al, size_t n);
int __real_posix_memalign(void **p, size_t al, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t a, size_t b);
void *__wrap_realloc(void *p, size_t n);
void *__wrap_aligned_alloc(size_t al, size_t n);
int __wrap_posix_memalign(void **p, size_t al, size_t n);

static atomic_long g_allocs;
static atomic_int g_counting;

void *__wrap_malloc(size_t n) {
  if (atomic_load(&g_counting)) atomic_fetch_add(&g_allocs, 1);
  return __real_malloc(n);
}
void *__wrap_calloc(size_t a, size_t b) {
  if (atomic_load(&g_counting)) atomic_fetch_add(&g_allocs, 1);
  return __real_calloc(a, b);
}
void *__wrap_realloc(void *p, size_t n) {
  if (atomic_load(&g_counting)) atomic_fetch_add(&g_allocs, 1);
  return __real_realloc(p, n);
}
void *__wrap_aligned_alloc(size_t al, size_t n) {
  if (atomic_load(&g_counting)) atomic_fetch_add(&g_allocs, 1);
  return __real_aligned_alloc(al, n);
}
int __wrap_posix_memalign(void **p, size_t al, size_t n) {
  if (atomic_load(&g_counting)) atomic_fetch_add(&g_allocs, 1);
  return __real_posix_memalign(p, al, n);
}

static const char *k_models[] = {"blazeface", "mobilefacenet", "nanodet", "faceres"};

static void test_run_allocates_nothing(void) {
  int found = 0;
  /* The wrapper itself must see allocations, or the test proves nothing. */
  atomic_store(&g_allocs, 0);
  atomic_store(&g_counting, 1);
  void *(*volatile alloc)(size_t) = malloc; /* not optimised away */
  char *probe = alloc(32);
  atomic_store(&g_counting, 0);
  free(probe);
  ASSERT_EQ(atomic_load(&g_allocs), 1);
  for (size_t i = 0; i < 4; i++) {
    char p[1024];
    if (gg_model_resolve(k_models[i], p, sizeof p)) continue;
    found++;
    gg_model *m;
    ASSERT_OK(gg_model_load(p, &m, NULL, 0));
    for (int cfg = 0; cfg < 4; cfg++) {
      gg_session_opts o = {1 + (cfg & 1), (cfg & 2) ? GG_ENGINE_AUTO : GG_ENGINE_NAIVE, 0};
      gg_session *s;
      /* Preparing does allocate, through the library's own calls: this is
       * what shows the wrapping reaches code inside libgpuguard. */
      atomic_store(&g_allocs, 0);
      atomic_store(&g_counting, 1);
      int prc = gg_session_new(m, NULL, 0, &o, &s, NULL, 0);
      atomic_store(&g_counting, 0);
      ASSERT_OK(prc);
      ASSERT_GE(atomic_load(&g_allocs), 3);
      gg_tensor_info ii;
      float *in = gg_session_input(s, 0, &ii);
      int64_t n = 1;
      for (int d = 0; d < ii.ndim; d++) n *= ii.shape[d];
      for (int64_t k = 0; k < n; k++) in[k] = (float)(k % 255) / 255.0f;
      ASSERT_OK(gg_session_run(s, NULL, 0)); /* warm-up */
      atomic_store(&g_allocs, 0);
      atomic_store(&g_counting, 1);
      int rc = 0;
      for (int r = 0; r < 3 && !rc; r++) rc = gg_session_run(s, NULL, 0);
      atomic_store(&g_counting, 0);
      ASSERT_OK(rc);
      fprintf(stderr, "  %-13s %-5s %d thread(s): %ld allocations in 3 runs\n", k_models[i],
              (cfg & 2) ? "auto" : "naive", o.threads, atomic_load(&g_allocs));
      ASSERT_EQ(atomic_load(&g_allocs), 0);
      gg_session_free(s);
    }
    gg_model_free(m);
  }
  if (!found) SKIP("no models fetched");
}

int main(int argc, char **argv) {
  gg_log_set_level(GG_LOG_ERROR);
  static const gg_test_case cases[] = {
      {"run_allocates_nothing", test_run_allocates_nothing},
      {0},
  };
  return gg_test_main(argc, argv, cases);
}
