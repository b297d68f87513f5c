/* The CUDA backend's libraries, loaded at run time: cuDNN 9 (libcudnn.so.9),
 * cuBLAS 13 or 12 (libcublas.so.13 / .12) and the driver entry points the
 * device layer does not use (streams, async copies, events, graphs), looked
 * up in the libcuda.so.1 the device layer opened. Loaded once per process;
 * every missing library or symbol leaves a one-line reason that the
 * backend's init returns, so gpuguard starts and says why CUDA compute is
 * off. Also doctor's cuDNN validation (one real convolution).
 *
 * Environment: GPUGUARD_LIBCUDNN (a file) or GPUGUARD_CUDNN_PATH (a folder
 * holding libcudnn.so.9, e.g. the nvidia-cudnn-cu13 wheel's lib/), and
 * GPUGUARD_LIBCUBLAS (a file). */
#include "backend/cuda/cu-impl.h"
#include "device/device-impl.h"
#include "gpuguard/classify.h"
#include "gpuguard/error.h"
#include "gpuguard/log.h"
#include "gpuguard/memory.h"

#include <dlfcn.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static gg__cu_api g_api;
static gg__cuda_libs g_libs;
static pthread_once_t g_libs_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t g_drv_lock = PTHREAD_MUTEX_INITIALIZER;
static int g_drv_tried;

#define SYM(lib, field, name, errbuf, label)                                                       \
  do {                                                                                             \
    *(void **)(&g_api.field) = dlsym(lib, name);                                                   \
    if (!g_api.field && !(errbuf)[0])                                                              \
      snprintf(errbuf, sizeof(errbuf), "%.120s has no symbol %.60s (" label " too old?)", path,    \
               name);                                                                              \
  } while (0)

static void load_cudnn(void) {
  char path[256];
  const char *file = getenv("GPUGUARD_LIBCUDNN"), *dir = getenv("GPUGUARD_CUDNN_PATH");
  if (file && *file)
    snprintf(path, sizeof path, "%s", file);
  else if (dir && *dir)
    snprintf(path, sizeof path, "%.230s/libcudnn.so.9", dir);
  else
    snprintf(path, sizeof path, "libcudnn.so.9");
  snprintf(g_libs.cudnn_path, sizeof g_libs.cudnn_path, "%s", path);
  void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    const char *e = dlerror();
    snprintf(g_libs.cudnn_error, sizeof g_libs.cudnn_error,
             "cannot load %.120s: %.120s; set GPUGUARD_CUDNN_PATH to the folder holding "
             "libcudnn.so.9",
             path, e ? e : "dlopen failed");
    return;
  }
  char *err = g_libs.cudnn_error;
  SYM(h, cudnnGetVersion, "cudnnGetVersion", g_libs.cudnn_error, "cuDNN");
  SYM(h, cudnnGetCudartVersion, "cudnnGetCudartVersion", g_libs.cudnn_error, "cuDNN");
  SYM(h, cudnnCreate, "cudnnCreate", g_libs.cudnn_error, "cuDNN");
  SYM(h, cudnnDestroy, "cudnnDestroy", g_libs.cudnn_error, "cuDNN");
  SYM(h, cudnnSetStream, "cudnnSetStream", g_libs.cudnn_error, "cuDNN");
  SYM(h, cudnnCreateTensorDescriptor, "cudnnCreateTensorDescriptor", g_libs.cudnn_error, "cuDNN");
  SYM(h, cudnnDestroyTensorDescriptor, "cudnnDestroyTensorDescriptor", g_libs.cudnn_error, "cuDNN");
  SYM(h, cudnnSetTensor4dDescriptor, "cudnnSetTensor4dDescriptor", g_libs.cudnn_error, "cuDNN");
  SYM(h, cudnnCreateFilterDescriptor, "cudnnCreateFilterDescriptor", g_libs.cudnn_error, "cuDNN");
  SYM(h, cudnnDestroyFilterDescriptor, "cudnnDestroyFilterDescriptor", g_libs.cudnn_error, "cuDNN");
  SYM(h, cudnnSetFilter4dDescriptor, "cudnnSetFilter4dDescriptor", g_libs.cudnn_error, "cuDNN");
  SYM(h, cudnnCreateConvolutionDescriptor, "cudnnCreateConvolutionDescriptor", g_libs.cudnn_error,
      "cuDNN");
  SYM(h, cudnnDestroyConvolutionDescriptor, "cudnnDestroyConvolutionDescriptor", g_libs.cudnn_error,
      "cuDNN");
  SYM(h, cudnnSetConvolution2dDescriptor, "cudnnSetConvolution2dDescriptor", g_libs.cudnn_error,
      "cuDNN");
  SYM(h, cudnnSetConvolutionGroupCount, "cudnnSetConvolutionGroupCount", g_libs.cudnn_error,
      "cuDNN");
  SYM(h, cudnnSetConvolutionMathType, "cudnnSetConvolutionMathType", g_libs.cudnn_error, "cuDNN");
  SYM(h, cudnnGetConvolutionForwardAlgorithm_v7, "cudnnGetConvolutionForwardAlgorithm_v7",
      g_libs.cudnn_error, "cuDNN");
  SYM(h, cudnnGetConvolutionForwardWorkspaceSize, "cudnnGetConvolutionForwardWorkspaceSize",
      g_libs.cudnn_error, "cuDNN");
  SYM(h, cudnnConvolutionForward, "cudnnConvolutionForward", g_libs.cudnn_error, "cuDNN");
  SYM(h, cudnnCreatePoolingDescriptor, "cudnnCreatePoolingDescriptor", g_libs.cudnn_error, "cuDNN");
  SYM(h, cudnnDestroyPoolingDescriptor, "cudnnDestroyPoolingDescriptor", g_libs.cudnn_error,
      "cuDNN");
  SYM(h, cudnnSetPooling2dDescriptor, "cudnnSetPooling2dDescriptor", g_libs.cudnn_error, "cuDNN");
  SYM(h, cudnnPoolingForward, "cudnnPoolingForward", g_libs.cudnn_error, "cuDNN");
  SYM(h, cudnnSoftmaxForward, "cudnnSoftmaxForward", g_libs.cudnn_error, "cuDNN");
  if (err[0]) return; /* keep the handle: dlclose of cuDNN at run time is not worth the risk */
  g_libs.cudnn_loaded = 1;
  g_libs.cudnn_version = (long)g_api.cudnnGetVersion();
  g_libs.cudnn_cudart_version = (long)g_api.cudnnGetCudartVersion();
  if (g_libs.cudnn_version < 90000) {
    snprintf(err, sizeof g_libs.cudnn_error,
             "%.120s is cuDNN %ld.%ld, gpuguard needs cuDNN 9; set GPUGUARD_CUDNN_PATH", path,
             g_libs.cudnn_version / 10000, g_libs.cudnn_version / 100 % 100);
    g_libs.cudnn_loaded = 0;
  }
}

static void load_cublas(void) {
  const char *file = getenv("GPUGUARD_LIBCUBLAS");
  const char *names[2] = {"libcublas.so.13", "libcublas.so.12"};
  int n = 2;
  if (file && *file) names[0] = file, n = 1;
  void *h = NULL;
  const char *path = names[0];
  char first[160] = "";
  for (int i = 0; i < n && !h; i++) {
    path = names[i];
    h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h && !first[0]) {
      const char *e = dlerror();
      snprintf(first, sizeof first, "%.150s", e ? e : "dlopen failed");
    }
  }
  snprintf(g_libs.cublas_path, sizeof g_libs.cublas_path, "%s", path);
  if (!h) {
    snprintf(g_libs.cublas_error, sizeof g_libs.cublas_error,
             "cannot load %.120s: %.150s; set GPUGUARD_LIBCUBLAS to libcublas.so.13 or .12",
             n == 1 ? names[0] : "libcublas.so.13 or libcublas.so.12", first);
    return;
  }
  SYM(h, cublasCreate, "cublasCreate_v2", g_libs.cublas_error, "cuBLAS");
  SYM(h, cublasDestroy, "cublasDestroy_v2", g_libs.cublas_error, "cuBLAS");
  SYM(h, cublasSetStream, "cublasSetStream_v2", g_libs.cublas_error, "cuBLAS");
  SYM(h, cublasSetWorkspace, "cublasSetWorkspace_v2", g_libs.cublas_error, "cuBLAS");
  SYM(h, cublasSetMathMode, "cublasSetMathMode", g_libs.cublas_error, "cuBLAS");
  SYM(h, cublasGetProperty, "cublasGetProperty", g_libs.cublas_error, "cuBLAS");
  SYM(h, cublasSgemm, "cublasSgemm_v2", g_libs.cublas_error, "cuBLAS");
  if (g_libs.cublas_error[0]) return;
  int v[3] = {0, 0, 0};
  g_api.cublasGetProperty(GGBLAS_MAJOR_VERSION, &v[0]);
  g_api.cublasGetProperty(GGBLAS_MINOR_VERSION, &v[1]);
  g_api.cublasGetProperty(GGBLAS_PATCH_LEVEL, &v[2]);
  g_libs.cublas_version = v[0] * 10000 + v[1] * 100 + v[2];
  g_libs.cublas_loaded = 1;
}

static void load_libs(void) {
  load_cudnn();
  load_cublas();
  /* a library with a missing symbol, or cuDNN 8, leaves some pointers set:
   * these flags, not the pointers, say what may be called */
  g_api.have_dnn = g_libs.cudnn_loaded, g_api.have_blas = g_libs.cublas_loaded;
}

/* The driver's extra entry points, from the handle of the device layer's
 * libcuda (loaded once, by the first backend on a cuda device). */
static void load_driver(void *lib) {
  const char *path = "libcuda.so.1";
  char *e = g_libs.driver_error;
  SYM(lib, cuCtxPushCurrent, "cuCtxPushCurrent_v2", g_libs.driver_error, "driver");
  SYM(lib, cuCtxPopCurrent, "cuCtxPopCurrent_v2", g_libs.driver_error, "driver");
  SYM(lib, cuStreamCreate, "cuStreamCreate", g_libs.driver_error, "driver");
  SYM(lib, cuStreamDestroy, "cuStreamDestroy_v2", g_libs.driver_error, "driver");
  SYM(lib, cuStreamSynchronize, "cuStreamSynchronize", g_libs.driver_error, "driver");
  SYM(lib, cuMemcpyHtoDAsync, "cuMemcpyHtoDAsync_v2", g_libs.driver_error, "driver");
  SYM(lib, cuMemcpyDtoHAsync, "cuMemcpyDtoHAsync_v2", g_libs.driver_error, "driver");
  SYM(lib, cuMemcpyDtoDAsync, "cuMemcpyDtoDAsync_v2", g_libs.driver_error, "driver");
  SYM(lib, cuMemsetD8Async, "cuMemsetD8Async", g_libs.driver_error, "driver");
  SYM(lib, cuMemHostAlloc, "cuMemHostAlloc", g_libs.driver_error, "driver");
  SYM(lib, cuMemFreeHost, "cuMemFreeHost", g_libs.driver_error, "driver");
  SYM(lib, cuModuleLoadData, "cuModuleLoadData", g_libs.driver_error, "driver");
  SYM(lib, cuModuleGetFunction, "cuModuleGetFunction", g_libs.driver_error, "driver");
  SYM(lib, cuModuleUnload, "cuModuleUnload", g_libs.driver_error, "driver");
  SYM(lib, cuLaunchKernel, "cuLaunchKernel", g_libs.driver_error, "driver");
  SYM(lib, cuEventCreate, "cuEventCreate", g_libs.driver_error, "driver");
  SYM(lib, cuEventRecord, "cuEventRecord", g_libs.driver_error, "driver");
  SYM(lib, cuEventSynchronize, "cuEventSynchronize", g_libs.driver_error, "driver");
  SYM(lib, cuEventElapsedTime, "cuEventElapsedTime", g_libs.driver_error, "driver");
  SYM(lib, cuEventDestroy, "cuEventDestroy_v2", g_libs.driver_error, "driver");
  SYM(lib, cuStreamBeginCapture, "cuStreamBeginCapture_v2", g_libs.driver_error, "driver");
  SYM(lib, cuStreamEndCapture, "cuStreamEndCapture", g_libs.driver_error, "driver");
  SYM(lib, cuGraphInstantiateWithFlags, "cuGraphInstantiateWithFlags", g_libs.driver_error,
      "driver");
  SYM(lib, cuGraphLaunch, "cuGraphLaunch", g_libs.driver_error, "driver");
  SYM(lib, cuGraphExecDestroy, "cuGraphExecDestroy", g_libs.driver_error, "driver");
  SYM(lib, cuGraphDestroy, "cuGraphDestroy", g_libs.driver_error, "driver");
  SYM(lib, cuGetErrorName, "cuGetErrorName", g_libs.driver_error, "driver");
  g_libs.driver_ok = !e[0];
}

void gg__cuda_libs_probe(gg__cuda_libs *out) {
  pthread_once(&g_libs_once, load_libs);
  pthread_mutex_lock(&g_drv_lock);
  *out = g_libs;
  pthread_mutex_unlock(&g_drv_lock);
  if (!out->driver_ok && !out->driver_error[0])
    snprintf(out->driver_error, sizeof out->driver_error, "no cuda device opened yet");
}

const gg__cu_api *gg__cu_api_get(gg_device *dev, char *err, size_t errlen) {
  gg__cu_handles h;
  if (gg__cuda_handles(dev, &h) || !h.lib) {
    snprintf(err, errlen,
             "the cuda backend computes on cuda:N devices only (open one and pass "
             "it with its memory pool)");
    return NULL;
  }
  pthread_once(&g_libs_once, load_libs);
  pthread_mutex_lock(&g_drv_lock);
  if (!g_drv_tried) {
    g_drv_tried = 1;
    load_driver(h.lib);
  }
  pthread_mutex_unlock(&g_drv_lock);
  if (!g_libs.driver_ok) {
    snprintf(err, errlen, "%s", g_libs.driver_error);
    return NULL;
  }
  /* cuDNN and cuBLAS are optional: without them the backend runs those ops
   * on its own kernels (backend-cuda.c); err says what is missing */
  snprintf(err, errlen, "%s%s%s", g_libs.cudnn_loaded ? "" : g_libs.cudnn_error,
           !g_libs.cudnn_loaded && !g_libs.cublas_loaded ? "; " : "",
           g_libs.cublas_loaded ? "" : g_libs.cublas_error);
  return &g_api;
}

const char *gg__cu_error_name(CUresult r) {
  const char *n = gg_cuda_error_name(r);
  if (strcmp(n, "CUDA_ERROR_?") || !g_api.cuGetErrorName) return n;
  const char *s = NULL;
  return g_api.cuGetErrorName(r, &s) == 0 && s ? s : n;
}

/* ---- doctor's validation: one convolution through cuDNN ------------------ */

enum { VB = 2, VH = 9, VW = 7, VC = 5, VK = 4, VR = 3 };

static void host_conv(const float *x, const float *w, float *y) {
  for (int b = 0; b < VB; b++)
    for (int i = 0; i < VH; i++)
      for (int j = 0; j < VW; j++)
        for (int k = 0; k < VK; k++) {
          double s = 0;
          for (int r = 0; r < VR; r++)
            for (int q = 0; q < VR; q++) {
              int ii = i + r - 1, jj = j + q - 1;
              if (ii < 0 || jj < 0 || ii >= VH || jj >= VW) continue;
              for (int c = 0; c < VC; c++)
                s += (double)x[((b * VH + ii) * VW + jj) * VC + c] *
                     w[((k * VR + r) * VR + q) * VC + c];
            }
          y[((b * VH + i) * VW + j) * VK + k] = (float)s;
        }
}

int gg__cuda_validate_conv(gg_device *dev, char *err, size_t errlen, double *max_err) {
  char tmp[8];
  if (!err) err = tmp, errlen = sizeof tmp;
  const gg__cu_api *a = gg__cu_api_get(dev, err, errlen);
  if (!a) return GG_ENOTIMPL;
  if (!a->have_dnn) {
    snprintf(err, errlen, "%s", g_libs.cudnn_error);
    return GG_ENOTIMPL;
  }
  gg__cu_handles h;
  gg__cuda_handles(dev, &h);
  enum { NX = VB * VH * VW * VC, NW = VK * VR * VR * VC, NY = VB * VH * VW * VK };
  float *x = malloc(sizeof(float) * (NX + NW + 2 * NY));
  if (!x) return GG_ENOMEM;
  float *w = x + NX, *y = w + NW, *ref = y + NY;
  for (int i = 0; i < NX; i++)
    x[i] = (float)((i * 37 % 17) - 8) / 8.0f;
  for (int i = 0; i < NW; i++)
    w[i] = (float)((i * 13 % 11) - 5) / 5.0f;
  host_conv(x, w, ref);
  gg_devmem m = {0};
  size_t bytes = sizeof(float) * (NX + NW + NY);
  int rc = gg_device_mem_alloc(dev, bytes, &m);
  if (rc) {
    free(x);
    return gg_errf(err, errlen, rc, "cannot allocate %zu bytes on %s: %s", bytes,
                   gg_device_name(dev), gg_strerror(rc));
  }
  if (!rc) rc = gg_device_copy_to(dev, &m, 0, x, sizeof(float) * (NX + NW));
  CUdeviceptr base = (CUdeviceptr)(uintptr_t)m.handle;
  CUdeviceptr dx = base, dw = base + sizeof(float) * NX, dy = dw + sizeof(float) * NW;
  cudnnHandle_t hd = NULL;
  cudnnTensorDescriptor_t xd = NULL, yd = NULL;
  cudnnFilterDescriptor_t wd = NULL;
  cudnnConvolutionDescriptor_t cd = NULL;
  int st = 0;
  const char *call = "";
  CUcontext dummy;
  CUresult cr = rc ? 0 : a->cuCtxPushCurrent(h.context);
  if (!rc && cr)
    rc = gg_errf(err, errlen, gg_err_from_cuda(cr), "cuCtxPushCurrent: %s", gg__cu_error_name(cr));
#define DNN(x)                                                                                     \
  if (!rc && !st) {                                                                                \
    call = #x;                                                                                     \
    st = a->x;                                                                                     \
  }
  DNN(cudnnCreate(&hd));
  DNN(cudnnCreateTensorDescriptor(&xd));
  DNN(cudnnCreateTensorDescriptor(&yd));
  DNN(cudnnCreateFilterDescriptor(&wd));
  DNN(cudnnCreateConvolutionDescriptor(&cd));
  DNN(cudnnSetTensor4dDescriptor(xd, GGDNN_TENSOR_NHWC, GGDNN_DATA_FLOAT, VB, VC, VH, VW));
  DNN(cudnnSetTensor4dDescriptor(yd, GGDNN_TENSOR_NHWC, GGDNN_DATA_FLOAT, VB, VK, VH, VW));
  DNN(cudnnSetFilter4dDescriptor(wd, GGDNN_DATA_FLOAT, GGDNN_TENSOR_NHWC, VK, VC, VR, VR));
  DNN(cudnnSetConvolution2dDescriptor(cd, 1, 1, 1, 1, 1, 1, GGDNN_CROSS_CORRELATION,
                                      GGDNN_DATA_FLOAT));
  DNN(cudnnSetConvolutionMathType(cd, GGDNN_FMA_MATH));
  float one = 1.0f, zero = 0.0f;
  /* IMPLICIT_GEMM needs no workspace, so the check allocates nothing more */
  DNN(cudnnConvolutionForward(hd, &one, xd, (void *)(uintptr_t)dx, wd, (void *)(uintptr_t)dw, cd,
                              GGDNN_FWD_ALGO_IMPLICIT_GEMM, NULL, 0, &zero, yd,
                              (void *)(uintptr_t)dy));
#undef DNN
  if (!rc && st)
    rc = gg_errf(err, errlen, gg_err_from_cudnn(st), "%s: %s", call, gg_cudnn_status_name(st));
  if (cd) a->cudnnDestroyConvolutionDescriptor(cd);
  if (wd) a->cudnnDestroyFilterDescriptor(wd);
  if (yd) a->cudnnDestroyTensorDescriptor(yd);
  if (xd) a->cudnnDestroyTensorDescriptor(xd);
  if (hd) a->cudnnDestroy(hd);
  if (!cr) a->cuCtxPopCurrent(&dummy);
  if (!rc) rc = gg_device_copy_from(dev, y, &m, sizeof(float) * (NX + NW), sizeof(float) * NY);
  gg_device_mem_release(dev, &m);
  if (!rc) {
    double e = 0, lo = INFINITY, hi = -INFINITY;
    for (int i = 0; i < NY; i++) {
      double d = fabs((double)y[i] - ref[i]);
      if (!(d <= e)) e = d; /* NaN sticks */
      lo = fmin(lo, ref[i]), hi = fmax(hi, ref[i]);
    }
    if (max_err) *max_err = e;
    if (!(e <= 1e-3 * (hi - lo)))
      rc = gg_errf(err, errlen, GG_EINVAL,
                   "cuDNN convolution differs from the host: max error "
                   "%.3g over a range of %.3g (cuDNN %ld)",
                   e, hi - lo, g_libs.cudnn_version);
    else
      snprintf(err, errlen, "cuDNN %ld convolution matches the host (max error %.2g)",
               g_libs.cudnn_version, e);
  }
  free(x);
  return rc;
}
