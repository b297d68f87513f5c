/* Internals of the CUDA backend (src/backend/cuda): the CUDA driver, cuDNN
 * and cuBLAS entry points it uses, looked up at run time (dlopen/dlsym) so
 * that gpuguard has no link-time NVIDIA dependency and starts, saying why
 * CUDA is off, on a machine without these libraries. The few types and
 * enum values are declared here (values as in cuda.h 13, cudnn 9 and
 * cublas_api.h 13), so the backend builds without the NVIDIA headers. */
#ifndef GG_BACKEND_CUDA_CU_IMPL_H
#define GG_BACKEND_CUDA_CU_IMPL_H

#include "gpuguard/device.h"

#include <stddef.h>
#include <stdint.h>

typedef int CUresult;
typedef unsigned long long CUdeviceptr;
typedef void *CUcontext, *CUstream, *CUevent, *CUmodule, *CUfunction, *CUgraph, *CUgraphExec;
typedef int cudnnStatus_t, cublasStatus_t;
typedef void *cudnnHandle_t, *cudnnTensorDescriptor_t, *cudnnFilterDescriptor_t,
    *cudnnConvolutionDescriptor_t, *cudnnPoolingDescriptor_t, *cublasHandle_t;

enum {
  GGCU_STREAM_NON_BLOCKING = 1,
  GGCU_STREAM_CAPTURE_MODE_THREAD_LOCAL = 1,
  GGCU_EVENT_DEFAULT = 0,
  GGCU_ERROR_STREAM_CAPTURE_UNSUPPORTED = 900,
  /* cuDNN */
  GGDNN_TENSOR_NCHW = 0,
  GGDNN_TENSOR_NHWC = 1,
  GGDNN_DATA_FLOAT = 0,
  GGDNN_CROSS_CORRELATION = 1,
  GGDNN_FMA_MATH = 3,
  GGDNN_POOLING_MAX = 0,
  GGDNN_NOT_PROPAGATE_NAN = 0,
  GGDNN_SOFTMAX_ACCURATE = 1,
  GGDNN_SOFTMAX_MODE_CHANNEL = 1,
  GGDNN_FWD_ALGO_IMPLICIT_GEMM = 0,
  GGDNN_FWD_ALGO_COUNT = 8,
  GGDNN_STATUS_ALLOC_FAILED = 4003, /* cuDNN 9 (cuDNN 8: 2) */
  /* cuBLAS */
  GGBLAS_OP_N = 0,
  GGBLAS_OP_T = 1,
  GGBLAS_PEDANTIC_MATH = 2,
  GGBLAS_MAJOR_VERSION = 0,
  GGBLAS_MINOR_VERSION = 1,
  GGBLAS_PATCH_LEVEL = 2,
};

/* cudnnConvolutionFwdAlgoPerf_t (cudnn_cnn.h) */
typedef struct ggdnn_algo_perf {
  int algo;
  cudnnStatus_t status;
  float time;
  size_t memory;
  int determinism;
  int math_type;
  int reserved[3];
} ggdnn_algo_perf;

/* The entry points, loaded once per process (gg__cu_api). */
typedef struct gg__cu_api {
  int have_dnn, have_blas; /* cuDNN / cuBLAS loaded (their entry points below are usable) */
  /* driver (from the libcuda handle the device layer opened) */
  CUresult (*cuCtxPushCurrent)(CUcontext);
  CUresult (*cuCtxPopCurrent)(CUcontext *);
  CUresult (*cuStreamCreate)(CUstream *, unsigned);
  CUresult (*cuStreamDestroy)(CUstream);
  CUresult (*cuStreamSynchronize)(CUstream);
  CUresult (*cuMemcpyHtoDAsync)(CUdeviceptr, const void *, size_t, CUstream);
  CUresult (*cuMemcpyDtoHAsync)(void *, CUdeviceptr, size_t, CUstream);
  CUresult (*cuMemcpyDtoDAsync)(CUdeviceptr, CUdeviceptr, size_t, CUstream);
  CUresult (*cuMemsetD8Async)(CUdeviceptr, unsigned char, size_t, CUstream);
  CUresult (*cuMemHostAlloc)(void **, size_t, unsigned);
  CUresult (*cuMemFreeHost)(void *);
  CUresult (*cuModuleLoadData)(CUmodule *, const void *);
  CUresult (*cuModuleGetFunction)(CUfunction *, CUmodule, const char *);
  CUresult (*cuModuleUnload)(CUmodule);
  CUresult (*cuLaunchKernel)(CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned,
                             unsigned, CUstream, void **, void **);
  CUresult (*cuEventCreate)(CUevent *, unsigned);
  CUresult (*cuEventRecord)(CUevent, CUstream);
  CUresult (*cuEventSynchronize)(CUevent);
  CUresult (*cuEventElapsedTime)(float *, CUevent, CUevent);
  CUresult (*cuEventDestroy)(CUevent);
  CUresult (*cuStreamBeginCapture)(CUstream, int);
  CUresult (*cuStreamEndCapture)(CUstream, CUgraph *);
  CUresult (*cuGraphInstantiateWithFlags)(CUgraphExec *, CUgraph, unsigned long long);
  CUresult (*cuGraphLaunch)(CUgraphExec, CUstream);
  CUresult (*cuGraphExecDestroy)(CUgraphExec);
  CUresult (*cuGraphDestroy)(CUgraph);
  CUresult (*cuGetErrorName)(CUresult, const char **);
  /* cuDNN 9 */
  size_t (*cudnnGetVersion)(void);
  size_t (*cudnnGetCudartVersion)(void);
  cudnnStatus_t (*cudnnCreate)(cudnnHandle_t *);
  cudnnStatus_t (*cudnnDestroy)(cudnnHandle_t);
  cudnnStatus_t (*cudnnSetStream)(cudnnHandle_t, CUstream);
  cudnnStatus_t (*cudnnCreateTensorDescriptor)(cudnnTensorDescriptor_t *);
  cudnnStatus_t (*cudnnDestroyTensorDescriptor)(cudnnTensorDescriptor_t);
  cudnnStatus_t (*cudnnSetTensor4dDescriptor)(cudnnTensorDescriptor_t, int, int, int, int, int,
                                              int);
  cudnnStatus_t (*cudnnCreateFilterDescriptor)(cudnnFilterDescriptor_t *);
  cudnnStatus_t (*cudnnDestroyFilterDescriptor)(cudnnFilterDescriptor_t);
  cudnnStatus_t (*cudnnSetFilter4dDescriptor)(cudnnFilterDescriptor_t, int, int, int, int, int,
                                              int);
  cudnnStatus_t (*cudnnCreateConvolutionDescriptor)(cudnnConvolutionDescriptor_t *);
  cudnnStatus_t (*cudnnDestroyConvolutionDescriptor)(cudnnConvolutionDescriptor_t);
  cudnnStatus_t (*cudnnSetConvolution2dDescriptor)(cudnnConvolutionDescriptor_t, int, int, int, int,
                                                   int, int, int, int);
  cudnnStatus_t (*cudnnSetConvolutionGroupCount)(cudnnConvolutionDescriptor_t, int);
  cudnnStatus_t (*cudnnSetConvolutionMathType)(cudnnConvolutionDescriptor_t, int);
  cudnnStatus_t (*cudnnGetConvolutionForwardAlgorithm_v7)(cudnnHandle_t, cudnnTensorDescriptor_t,
                                                          cudnnFilterDescriptor_t,
                                                          cudnnConvolutionDescriptor_t,
                                                          cudnnTensorDescriptor_t, int, int *,
                                                          ggdnn_algo_perf *);
  cudnnStatus_t (*cudnnGetConvolutionForwardWorkspaceSize)(cudnnHandle_t, cudnnTensorDescriptor_t,
                                                           cudnnFilterDescriptor_t,
                                                           cudnnConvolutionDescriptor_t,
                                                           cudnnTensorDescriptor_t, int, size_t *);
  cudnnStatus_t (*cudnnConvolutionForward)(cudnnHandle_t, const void *, cudnnTensorDescriptor_t,
                                           const void *, cudnnFilterDescriptor_t, const void *,
                                           cudnnConvolutionDescriptor_t, int, void *, size_t,
                                           const void *, cudnnTensorDescriptor_t, void *);
  cudnnStatus_t (*cudnnCreatePoolingDescriptor)(cudnnPoolingDescriptor_t *);
  cudnnStatus_t (*cudnnDestroyPoolingDescriptor)(cudnnPoolingDescriptor_t);
  cudnnStatus_t (*cudnnSetPooling2dDescriptor)(cudnnPoolingDescriptor_t, int, int, int, int, int,
                                               int, int, int);
  cudnnStatus_t (*cudnnPoolingForward)(cudnnHandle_t, cudnnPoolingDescriptor_t, const void *,
                                       cudnnTensorDescriptor_t, const void *, const void *,
                                       cudnnTensorDescriptor_t, void *);
  cudnnStatus_t (*cudnnSoftmaxForward)(cudnnHandle_t, int, int, const void *,
                                       cudnnTensorDescriptor_t, const void *, const void *,
                                       cudnnTensorDescriptor_t, void *);
  /* cuBLAS 13 / 12 */
  cublasStatus_t (*cublasCreate)(cublasHandle_t *);
  cublasStatus_t (*cublasDestroy)(cublasHandle_t);
  cublasStatus_t (*cublasSetStream)(cublasHandle_t, CUstream);
  cublasStatus_t (*cublasSetWorkspace)(cublasHandle_t, void *, size_t);
  cublasStatus_t (*cublasSetMathMode)(cublasHandle_t, int);
  cublasStatus_t (*cublasGetProperty)(int, int *);
  cublasStatus_t (*cublasSgemm)(cublasHandle_t, int, int, int, int, int, const float *,
                                const float *, int, const float *, int, const float *, float *,
                                int);
} gg__cu_api;

/* What doctor shows about the compute libraries (gg__cuda_libs_probe). */
typedef struct gg__cuda_libs {
  int driver_ok; /* the extra driver entry points were found */
  int cudnn_loaded, cublas_loaded;
  char cudnn_path[256], cublas_path[256]; /* what was dlopen'ed */
  long cudnn_version;                     /* cudnnGetVersion(): 90100 for 9.1.0; 0 unknown */
  long cudnn_cudart_version;              /* cudnnGetCudartVersion(): 12040 */
  int cublas_version; /* major*10000 + minor*100 + patch (cublasGetProperty); 0 unknown */
  char driver_error[384], cudnn_error[384], cublas_error[384];
} gg__cuda_libs;

/* Loads cuDNN and cuBLAS (once per process) and the extra driver entry
 * points from the libcuda the device layer opened (needs a cuda device to
 * have been opened for those; driver_ok is 0 before). Never fails. */
void gg__cuda_libs_probe(gg__cuda_libs *out);

/* The loaded API for backends on dev, or NULL with a one-line reason in err
 * when the driver's entry points are missing. cuDNN and cuBLAS are
 * optional (have_dnn, have_blas); when one is missing err says why
 * ("cannot load libcudnn.so.9: ...; set GPUGUARD_CUDNN_PATH"), else "". */
const gg__cu_api *gg__cu_api_get(gg_device *dev, char *err, size_t errlen);

/* "CUDA_ERROR_ILLEGAL_ADDRESS" (the taxonomy's name, else cuGetErrorName). */
const char *gg__cu_error_name(CUresult r);

/* The validation kernel of doctor for cuDNN: one 3x3 NHWC convolution
 * (2x9x7x5 -> 4 filters, pad 1, stride 1) on dev through cuDNN, compared
 * with a host computation. Returns 0 when it ran and *max_err (may be NULL)
 * is within 1e-3 of the output's range, GG_EINVAL when it ran but the
 * results differ, else the classified error; err says what happened. */
int gg__cuda_validate_conv(gg_device *dev, char *err, size_t errlen, double *max_err);

/* Counters of the cuda backends of this process, for tests and stats. */
typedef struct gg__cuda_stats {
  uint64_t eager_runs;        /* runs whose nodes were launched one by one */
  uint64_t captures;          /* CUDA graphs captured */
  uint64_t graph_runs;        /* runs served by replaying a graph (incl. the captured one) */
  uint64_t graph_aborts;      /* captures abandoned (interrupted run, capture error) */
  uint64_t algo_fallbacks;    /* nodes switched to the zero-workspace algorithm at run time */
  uint64_t prepare_fallbacks; /* nodes given a leaner algorithm at prepare (no scratch) */
  uint64_t cudnn_convs, cudnn_pools, cudnn_softmax, cublas_gemms, kx_nodes, epilogues;
  uint64_t own_gemms; /* matrix products on the gg_gemm kernel (no cuBLAS) */
  int graph_mode;     /* last backend's state (enum in backend-cuda.c) */
} gg__cuda_stats;
void gg__cuda_get_stats(gg__cuda_stats *out);
void gg__cuda_reset_stats(void);

#endif
