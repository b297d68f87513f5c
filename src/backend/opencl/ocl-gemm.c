/* GEMM for MatMul and 1x1 convolutions: CLBlast's SGEMM when libclblast.so.1
 * loads (dlopen, so gpuguard runs without it), else the built-in 16x16 tiled
 * kernel (gg_gemm in kernels.cl). CLBlast compiles its own kernels at its
 * first call per device (seconds on PoCL with a cold cache), so AUTO uses it
 * only for products large enough to gain from it. */
#include "backend/opencl/ocl-impl.h"
#include "gpuguard/classify.h"
#include "gpuguard/error.h"
#include "gpuguard/log.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* clblast_c.h enums and the status range CLBlast adds to OpenCL's own. */
enum { CLBLAST_ROW_MAJOR = 101, CLBLAST_TRANS_NO = 111, CLBLAST_TRANS_YES = 112 };
#define CLBLAST_OWN_STATUS_MIN (-2050)
#define CLBLAST_OWN_STATUS_MAX (-1007)

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static gg_clblast_sgemm_fn g_sgemm;
static char g_error[160];

static void load(void) {
  const char *name = getenv("GPUGUARD_LIBCLBLAST");
  if (!name || !*name) name = "libclblast.so.1";
  /* RTLD_NODELETE: CLBlast keeps compiled programs in static caches that
   * must not be unmapped while the OpenCL runtime may still reference them. */
  void *h = dlopen(name, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
  if (!h) {
    const char *e = dlerror();
    snprintf(g_error, sizeof g_error, "%.150s", e ? e : "dlopen failed");
    return;
  }
  *(void **)(&g_sgemm) = dlsym(h, "CLBlastSgemm");
  if (!g_sgemm) snprintf(g_error, sizeof g_error, "%.100s has no CLBlastSgemm", name);
}

void gg__ocl_clblast_load(gg_ocl *o) {
  pthread_once(&g_once, load);
  o->clblast_sgemm = g_sgemm;
  snprintf(o->st.clblast_error, sizeof o->st.clblast_error, "%s", g_sgemm ? "" : g_error);
  if (!g_sgemm)
    GG_INFO("GPU", "CLBlast not available (%s): GEMM uses the built-in OpenCL kernel; "
                   "apt-get install libclblast1 for the faster one", g_error);
}

static int use_clblast(const gg_ocl *o, const gg_ocl_gemm_args *g) {
  if (o->p.gemm == GG_OCL_GEMM_OWN || !o->clblast_sgemm) return 0;
  if (o->p.gemm == GG_OCL_GEMM_CLBLAST) return 1;
  double lim = o->p.clblast_min_mnk > 0 ? o->p.clblast_min_mnk : GG_OCL_CLBLAST_MIN;
  return (double)g->M * g->N * g->K >= lim;
}

int gg__ocl_gemm(gg_ocl *o, const gg_node *n, const gg_ocl_gemm_args *g, char *err,
                 size_t errlen) {
  if (o->p.gemm == GG_OCL_GEMM_CLBLAST && !o->clblast_sgemm) {
    snprintf(err, errlen, "node '%s' (%s): CLBlast was asked for but is not loaded (%s)",
             n ? n->name : "?", n ? n->src_op : "GEMM", o->st.clblast_error);
    return GG_ENOTIMPL;
  }
  if (use_clblast(o, g)) {
    cl_command_queue q = o->queue;
    int r = o->clblast_sgemm(CLBLAST_ROW_MAJOR, g->ta ? CLBLAST_TRANS_YES : CLBLAST_TRANS_NO,
                             g->tb ? CLBLAST_TRANS_YES : CLBLAST_TRANS_NO, (size_t)g->M,
                             (size_t)g->N, (size_t)g->K, 1.0f, g->a, g->ao, (size_t)g->lda, g->b,
                             g->bo, (size_t)g->ldb, 0.0f, g->c, g->co, (size_t)g->N, &q, NULL);
    int own_status = r <= CLBLAST_OWN_STATUS_MAX && r >= CLBLAST_OWN_STATUS_MIN;
    if (r && (own_status || gg_classify_cl(r) == GG_FAIL_COMPILE) &&
        o->p.gemm == GG_OCL_GEMM_AUTO) {
      /* CLBlast itself is broken here (its kernels do not build, or it
       * refuses the call): not a device failure. Keep serving with the
       * built-in kernel for the rest of this session. */
      GG_WARN("GPU", "node '%s' (%s): CLBlastSgemm failed (status %d%s%s); GEMM uses the "
                     "built-in OpenCL kernel from now on", n ? n->name : "?",
              n ? n->src_op : "GEMM", r, own_status ? ", CLBlast's own" : ", ",
              own_status ? "" : gg_cl_error_name(r));
      snprintf(o->st.clblast_error, sizeof o->st.clblast_error, "CLBlastSgemm failed with %d", r);
      o->clblast_sgemm = NULL;
      o->st.gemm = "own";
    } else if (r && own_status) {
      snprintf(err, errlen, "node '%s' (%s): CLBlastSgemm failed with CLBlast status %d "
                            "(see clblast_c.h)", n ? n->name : "?", n ? n->src_op : "GEMM", r);
      GG_ERROR("GPU", "%s", err);
      return GG_ELAUNCH;
    } else if (r) {
      return gg__ocl_fail(o, n, r, "CLBlastSgemm", err, errlen);
    }
  }
  if (use_clblast(o, g)) {
    o->st.gemm_clblast++;
    return gg__kx_bias_act(&o->kx, n, g, err, errlen);
  }
  o->st.gemm_own++;
  return gg__kx_gemm_kernel(&o->kx, n, g, err, errlen);
}
