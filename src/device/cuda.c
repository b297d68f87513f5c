/* The cuda device: the CUDA driver API loaded at run time with
 * dlopen("libcuda.so.1"), so gpuguard has no link-time NVIDIA dependency and
 * starts on machines without any NVIDIA library. Every CUresult goes through
 * the failure taxonomy (gg_err_from_cuda). The validation kernel is embedded
 * PTX that the driver JIT-compiles (no nvcc at run time). NVML
 * (libnvidia-ml.so.1) is used when present for utilization and temperature.
 * GPUGUARD_LIBCUDA / GPUGUARD_LIBNVML override the library names. */
#include "device/device-impl.h"
#include "gpuguard/classify.h"
#include "gpuguard/core.h"
#include "gpuguard/error.h"
#include "gpuguard/log.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int CUresult;
typedef int CUdevice;
typedef void *CUcontext;
typedef void *CUmodule;
typedef void *CUfunction;
typedef void *CUstream;
typedef unsigned long long CUdeviceptr;

enum {
  CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT = 16,
  CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75,
  CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76,
  CUDA_ERROR_NOT_INITIALIZED_ = 3,
};

typedef struct cuda_api {
  void *lib;
  char name[256];
  char error[256];
  int init_rc;
  int driver_version;
  int device_count;
  CUresult (*cuInit)(unsigned);
  CUresult (*cuDriverGetVersion)(int *);
  CUresult (*cuDeviceGetCount)(int *);
  CUresult (*cuDeviceGet)(CUdevice *, int);
  CUresult (*cuDeviceGetName)(char *, int, CUdevice);
  CUresult (*cuDeviceGetAttribute)(int *, int, CUdevice);
  CUresult (*cuDeviceTotalMem)(size_t *, CUdevice);
  CUresult (*cuDeviceGetPCIBusId)(char *, int, CUdevice);
  CUresult (*cuDevicePrimaryCtxRetain)(CUcontext *, CUdevice);
  CUresult (*cuDevicePrimaryCtxRelease)(CUdevice);
  CUresult (*cuDevicePrimaryCtxReset)(CUdevice);
  CUresult (*cuCtxPushCurrent)(CUcontext);
  CUresult (*cuCtxPopCurrent)(CUcontext *);
  CUresult (*cuCtxSynchronize)(void);
  CUresult (*cuMemGetInfo)(size_t *, size_t *);
  CUresult (*cuMemAlloc)(CUdeviceptr *, size_t);
  CUresult (*cuMemFree)(CUdeviceptr);
  CUresult (*cuMemcpyHtoD)(CUdeviceptr, const void *, size_t);
  CUresult (*cuMemcpyDtoH)(void *, CUdeviceptr, size_t);
  CUresult (*cuModuleLoadData)(CUmodule *, const void *);
  CUresult (*cuModuleGetFunction)(CUfunction *, CUmodule, const char *);
  CUresult (*cuModuleUnload)(CUmodule);
  CUresult (*cuLaunchKernel)(CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned,
                             unsigned, CUstream, void **, void **);
} cuda_api;

typedef struct nvml_api {
  void *lib;
  int ok;
  int (*nvmlInit)(void);
  int (*nvmlDeviceGetHandleByPciBusId)(const char *, void **);
  int (*nvmlDeviceGetUtilizationRates)(void *, unsigned *);
  int (*nvmlDeviceGetTemperature)(void *, int, unsigned *);
  int (*nvmlSystemGetDriverVersion)(char *, unsigned);
  int (*nvmlDeviceGetMemoryInfo)(void *,
                                 unsigned long long *); /* nvmlMemory_t: total, free, used */
} nvml_api;

static cuda_api g_cu;
static nvml_api g_nvml;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

#define LOAD(sym, symname)                                                                         \
  do {                                                                                             \
    *(void **)(&g_cu.sym) = dlsym(g_cu.lib, symname);                                              \
    if (!g_cu.sym) {                                                                               \
      snprintf(g_cu.error, sizeof g_cu.error, "%.180s has no symbol %.40s (driver too old?)",      \
               g_cu.name, symname);                                                                \
      goto fail;                                                                                   \
    }                                                                                              \
  } while (0)

static void load_nvml(void) {
  const char *name = getenv("GPUGUARD_LIBNVML");
  if (!name || !*name) name = "libnvidia-ml.so.1";
  g_nvml.lib = dlopen(name, RTLD_NOW | RTLD_LOCAL);
  if (!g_nvml.lib) return;
  *(void **)(&g_nvml.nvmlInit) = dlsym(g_nvml.lib, "nvmlInit_v2");
  *(void **)(&g_nvml.nvmlDeviceGetHandleByPciBusId) =
      dlsym(g_nvml.lib, "nvmlDeviceGetHandleByPciBusId_v2");
  *(void **)(&g_nvml.nvmlDeviceGetUtilizationRates) =
      dlsym(g_nvml.lib, "nvmlDeviceGetUtilizationRates");
  *(void **)(&g_nvml.nvmlDeviceGetTemperature) = dlsym(g_nvml.lib, "nvmlDeviceGetTemperature");
  *(void **)(&g_nvml.nvmlSystemGetDriverVersion) = dlsym(g_nvml.lib, "nvmlSystemGetDriverVersion");
  *(void **)(&g_nvml.nvmlDeviceGetMemoryInfo) = dlsym(g_nvml.lib, "nvmlDeviceGetMemoryInfo");
  g_nvml.ok = g_nvml.nvmlInit && g_nvml.nvmlDeviceGetHandleByPciBusId && g_nvml.nvmlInit() == 0;
}

static void load_cuda(void) {
  g_cu.init_rc = -1;
  const char *name = getenv("GPUGUARD_LIBCUDA");
  if (!name || !*name) name = "libcuda.so.1";
  snprintf(g_cu.name, sizeof g_cu.name, "%s", name);
  g_cu.lib = dlopen(name, RTLD_NOW | RTLD_LOCAL);
  if (!g_cu.lib) {
    const char *e = dlerror();
    snprintf(g_cu.error, sizeof g_cu.error, "%s", e ? e : "dlopen failed");
    return;
  }
  LOAD(cuInit, "cuInit");
  LOAD(cuDriverGetVersion, "cuDriverGetVersion");
  LOAD(cuDeviceGetCount, "cuDeviceGetCount");
  LOAD(cuDeviceGet, "cuDeviceGet");
  LOAD(cuDeviceGetName, "cuDeviceGetName");
  LOAD(cuDeviceGetAttribute, "cuDeviceGetAttribute");
  LOAD(cuDeviceTotalMem, "cuDeviceTotalMem_v2");
  LOAD(cuDeviceGetPCIBusId, "cuDeviceGetPCIBusId");
  LOAD(cuDevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain");
  LOAD(cuDevicePrimaryCtxRelease, "cuDevicePrimaryCtxRelease_v2");
  LOAD(cuDevicePrimaryCtxReset, "cuDevicePrimaryCtxReset_v2");
  LOAD(cuCtxPushCurrent, "cuCtxPushCurrent_v2");
  LOAD(cuCtxPopCurrent, "cuCtxPopCurrent_v2");
  LOAD(cuCtxSynchronize, "cuCtxSynchronize");
  LOAD(cuMemGetInfo, "cuMemGetInfo_v2");
  LOAD(cuMemAlloc, "cuMemAlloc_v2");
  LOAD(cuMemFree, "cuMemFree_v2");
  LOAD(cuMemcpyHtoD, "cuMemcpyHtoD_v2");
  LOAD(cuMemcpyDtoH, "cuMemcpyDtoH_v2");
  LOAD(cuModuleLoadData, "cuModuleLoadData");
  LOAD(cuModuleGetFunction, "cuModuleGetFunction");
  LOAD(cuModuleUnload, "cuModuleUnload");
  LOAD(cuLaunchKernel, "cuLaunchKernel");
  g_cu.cuDriverGetVersion(&g_cu.driver_version);
  g_cu.init_rc = g_cu.cuInit(0);
  if (g_cu.init_rc == 0 && g_cu.cuDeviceGetCount(&g_cu.device_count) != 0) g_cu.device_count = 0;
  load_nvml();
  return;
fail:
  dlclose(g_cu.lib);
  g_cu.lib = NULL;
}

static int cuda_ready(void) {
  pthread_once(&g_once, load_cuda);
  return g_cu.lib && g_cu.init_rc == 0;
}

void gg__cuda_probe_run(gg__cuda_probe *out) {
  pthread_once(&g_once, load_cuda);
  memset(out, 0, sizeof *out);
  out->lib_loaded = g_cu.lib != NULL;
  snprintf(out->lib_name, sizeof out->lib_name, "%s", g_cu.name);
  snprintf(out->lib_error, sizeof out->lib_error, "%s", g_cu.error);
  out->init_rc = g_cu.init_rc;
  out->driver_version = g_cu.driver_version;
  out->device_count = g_cu.device_count;
  out->nvml_loaded = g_nvml.ok;
}

/* ---- the device ---------------------------------------------------------- */

typedef struct cuda_ctx {
  int ordinal;
  CUdevice dev;
  CUcontext ctx;
  CUmodule module;
  CUfunction kernel;
  char pci[32];
  void *nvml_dev;
  unsigned reset_gen; /* gg_device_reset calls (gg__cuda_handles) */
} cuda_ctx;

static const gg_device_i k_cuda_iface;

static cuda_ctx *ctx_of(gg_device *d) {
  return d->ctx;
}

/* Maps a CUresult to a GG_E* code, logging once with the call that failed.
 * Out-of-memory is an ordinary condition the memory manager handles, so it
 * is logged at debug level only. */
static int cu_fail(gg_device *d, CUresult r, const char *call) {
  gg_fail_class c = gg_classify_cuda(r);
  if (c == GG_FAIL_OOM)
    GG_DEBUG("GPU", "%s on %s: %s", call, d->name, gg_cuda_error_name(r));
  else
    GG_ERROR("GPU", "%s failed on %s: %s (%d), class %s: %s", call, d->name, gg_cuda_error_name(r),
             r, gg_fail_class_name(c), gg_fail_class_advice(c));
  return gg_err_from_cuda(r);
}

static int push(gg_device *d) {
  CUresult r = g_cu.cuCtxPushCurrent(ctx_of(d)->ctx);
  return r ? cu_fail(d, r, "cuCtxPushCurrent") : 0;
}

static void pop(void) {
  CUcontext dummy;
  g_cu.cuCtxPopCurrent(&dummy);
}

/* What the driver tells about a device without a context: name,
 * compute capability, SMs, total memory, driver version. */
static void static_info(CUdevice dev, gg_device_info *info) {
  int v = 0;
  g_cu.cuDeviceGetName(info->description, (int)sizeof info->description, dev);
  snprintf(info->vendor, sizeof info->vendor, "NVIDIA");
  if (g_cu.cuDeviceGetAttribute(&v, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, dev) == 0)
    info->compute_major = v;
  if (g_cu.cuDeviceGetAttribute(&v, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, dev) == 0)
    info->compute_minor = v;
  if (g_cu.cuDeviceGetAttribute(&v, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, dev) == 0)
    info->compute_units = v;
  size_t total = 0;
  if (g_cu.cuDeviceTotalMem(&total, dev) == 0) info->total_mem = total;
  info->max_alloc = info->total_mem;
  char drv[48] = "";
  if (g_nvml.ok && g_nvml.nvmlSystemGetDriverVersion)
    g_nvml.nvmlSystemGetDriverVersion(drv, sizeof drv);
  snprintf(info->driver_version, sizeof info->driver_version, "%.32s%sCUDA %d.%d", drv,
           drv[0] ? ", " : "", g_cu.driver_version / 1000, g_cu.driver_version % 1000 / 10);
}

static int cuda_get_info(gg_device *d, gg_device_info *info) {
  static_info(ctx_of(d)->dev, info);
  int rc = push(d);
  if (rc) return rc;
  size_t fr = 0, tot = 0;
  CUresult r = g_cu.cuMemGetInfo(&fr, &tot);
  pop();
  if (r) return cu_fail(d, r, "cuMemGetInfo");
  info->free_mem = fr;
  if (tot) info->total_mem = tot;
  return 0;
}

static int cuda_mem_alloc(gg_device *d, size_t size, gg_devmem *out) {
  int rc = push(d);
  if (rc) return rc;
  CUdeviceptr p = 0;
  CUresult r = g_cu.cuMemAlloc(&p, size);
  pop();
  if (r) return cu_fail(d, r, "cuMemAlloc");
  out->handle = (void *)(uintptr_t)p;
  return 0;
}

static int cuda_mem_release(gg_device *d, gg_devmem *mem) {
  int rc = push(d);
  if (rc) return rc;
  CUresult r = g_cu.cuMemFree((CUdeviceptr)(uintptr_t)mem->handle);
  pop();
  return r ? cu_fail(d, r, "cuMemFree") : 0;
}

static int cuda_copy_to(gg_device *d, gg_devmem *dst, size_t off, const void *src, size_t n) {
  int rc = push(d);
  if (rc) return rc;
  CUresult r = g_cu.cuMemcpyHtoD((CUdeviceptr)(uintptr_t)dst->handle + off, src, n);
  pop();
  return r ? cu_fail(d, r, "cuMemcpyHtoD") : 0;
}

static int cuda_copy_from(gg_device *d, void *dst, gg_devmem *src, size_t off, size_t n) {
  int rc = push(d);
  if (rc) return rc;
  CUresult r = g_cu.cuMemcpyDtoH(dst, (CUdeviceptr)(uintptr_t)src->handle + off, n);
  pop();
  return r ? cu_fail(d, r, "cuMemcpyDtoH") : 0;
}

static int cuda_synchronize(gg_device *d) {
  int rc = push(d);
  if (rc) return rc;
  CUresult r = g_cu.cuCtxSynchronize();
  pop();
  return r ? cu_fail(d, r, "cuCtxSynchronize") : 0;
}

/* c[i] = 2 * a[i] + b[i]. PTX ISA 6.0 for sm_50 so that any driver since
 * CUDA 9 can JIT it for any GPU it supports (generated by nvcc, then the
 * version lowered; ptxas accepts it for sm_75 and sm_90). */
static const char k_validate_ptx[] = ".version 6.0\n"
                                     ".target sm_50\n"
                                     ".address_size 64\n"
                                     ".visible .entry gg_validate(\n"
                                     " .param .u64 gg_validate_param_0,\n"
                                     " .param .u64 gg_validate_param_1,\n"
                                     " .param .u64 gg_validate_param_2,\n"
                                     " .param .u32 gg_validate_param_3\n"
                                     ")\n"
                                     "{\n"
                                     " .reg .pred %p<2>;\n"
                                     " .reg .f32 %f<4>;\n"
                                     " .reg .b32 %r<6>;\n"
                                     " .reg .b64 %rd<11>;\n"
                                     " ld.param.u64 %rd1, [gg_validate_param_0];\n"
                                     " ld.param.u64 %rd2, [gg_validate_param_1];\n"
                                     " ld.param.u64 %rd3, [gg_validate_param_2];\n"
                                     " ld.param.u32 %r2, [gg_validate_param_3];\n"
                                     " mov.u32 %r3, %ctaid.x;\n"
                                     " mov.u32 %r4, %ntid.x;\n"
                                     " mov.u32 %r5, %tid.x;\n"
                                     " mad.lo.s32 %r1, %r3, %r4, %r5;\n"
                                     " setp.ge.u32 %p1, %r1, %r2;\n"
                                     " @%p1 bra DONE;\n"
                                     " cvta.to.global.u64 %rd4, %rd1;\n"
                                     " mul.wide.u32 %rd5, %r1, 4;\n"
                                     " add.s64 %rd6, %rd4, %rd5;\n"
                                     " ld.global.f32 %f1, [%rd6];\n"
                                     " cvta.to.global.u64 %rd7, %rd2;\n"
                                     " add.s64 %rd8, %rd7, %rd5;\n"
                                     " ld.global.f32 %f2, [%rd8];\n"
                                     " fma.rn.f32 %f3, %f1, 0f40000000, %f2;\n"
                                     " cvta.to.global.u64 %rd9, %rd3;\n"
                                     " add.s64 %rd10, %rd9, %rd5;\n"
                                     " st.global.f32 [%rd10], %f3;\n"
                                     "DONE:\n"
                                     " ret;\n"
                                     "}\n";

const char *gg__cuda_validation_ptx(void);
/* The embedded validation PTX, so tests can check it with ptxas. */
const char *gg__cuda_validation_ptx(void) {
  return k_validate_ptx;
}

static int cuda_validate_kernel(gg_device *d, gg_devmem *a, gg_devmem *b, gg_devmem *c, size_t n) {
  cuda_ctx *cc = ctx_of(d);
  int rc = push(d);
  if (rc) return rc;
  CUresult r = 0;
  if (!cc->kernel) {
    r = g_cu.cuModuleLoadData(&cc->module, k_validate_ptx);
    if (r) {
      pop();
      return cu_fail(d, r, "cuModuleLoadData (JIT of the validation PTX)");
    }
    r = g_cu.cuModuleGetFunction(&cc->kernel, cc->module, "gg_validate");
    if (r) {
      pop();
      return cu_fail(d, r, "cuModuleGetFunction");
    }
  }
  CUdeviceptr pa = (CUdeviceptr)(uintptr_t)a->handle, pb = (CUdeviceptr)(uintptr_t)b->handle,
              pc = (CUdeviceptr)(uintptr_t)c->handle;
  unsigned nn = (unsigned)n;
  void *params[] = {&pa, &pb, &pc, &nn};
  unsigned block = 256, grid = (unsigned)((n + block - 1) / block);
  r = g_cu.cuLaunchKernel(cc->kernel, grid, 1, 1, block, 1, 1, 0, NULL, params, NULL);
  pop();
  return r ? cu_fail(d, r, "cuLaunchKernel") : 0;
}

static int cuda_reset(gg_device *d) {
  cuda_ctx *c = ctx_of(d);
  /* The reset destroys every allocation and module of the primary context. */
  c->module = NULL;
  c->kernel = NULL;
  c->reset_gen++;
  g_cu.cuDevicePrimaryCtxRelease(c->dev);
  CUresult r = g_cu.cuDevicePrimaryCtxReset(c->dev);
  if (r) GG_WARN("GPU", "cuDevicePrimaryCtxReset on %s: %s", d->name, gg_cuda_error_name(r));
  r = g_cu.cuDevicePrimaryCtxRetain(&c->ctx, c->dev);
  if (r) {
    c->ctx = NULL;
    return cu_fail(d, r, "cuDevicePrimaryCtxRetain after reset");
  }
  GG_INFO("GPU", "%s: primary context reset", d->name);
  return 0;
}

static int cuda_telemetry(gg_device *d, gg_device_telemetry *out) {
  cuda_ctx *c = ctx_of(d);
  if (!g_nvml.ok || !c->nvml_dev) return GG_EUNSUPPORTED;
  unsigned util[2] = {0, 0}, temp = 0;
  if (g_nvml.nvmlDeviceGetUtilizationRates &&
      g_nvml.nvmlDeviceGetUtilizationRates(c->nvml_dev, util) == 0) {
    out->utilization_pct = (int)util[0];
    out->mem_utilization_pct = (int)util[1];
  }
  if (g_nvml.nvmlDeviceGetTemperature &&
      g_nvml.nvmlDeviceGetTemperature(c->nvml_dev, 0, &temp) == 0)
    out->temperature_c = (int)temp;
  return 0;
}

static void cuda_destroy(gg_device *d) {
  cuda_ctx *c = ctx_of(d);
  if (!c) return;
  if (c->module && c->ctx && push(d) == 0) {
    g_cu.cuModuleUnload(c->module);
    pop();
  }
  if (c->ctx) g_cu.cuDevicePrimaryCtxRelease(c->dev);
  free(c);
}

int gg__cuda_handles(gg_device *d, gg__cu_handles *out) {
  if (!d || !out || d->kind != GG_DEVICE_CUDA || d->iface != &k_cuda_iface) return GG_EINVAL;
  cuda_ctx *c = ctx_of(d);
  out->lib = g_cu.lib;
  out->context = c->ctx;
  out->device = c->dev;
  out->ordinal = c->ordinal;
  out->reset_gen = c->reset_gen;
  return c->ctx ? 0 : GG_EDEVICE_LOST;
}

static const gg_device_i k_cuda_iface = {
    .get_info = cuda_get_info,
    .mem_alloc = cuda_mem_alloc,
    .mem_release = cuda_mem_release,
    .copy_to = cuda_copy_to,
    .copy_from = cuda_copy_from,
    .synchronize = cuda_synchronize,
    .validate_kernel = cuda_validate_kernel,
    .reset = cuda_reset,
    .destroy = cuda_destroy,
    .telemetry = cuda_telemetry,
};

int gg__device_cuda_open(const char *args, gg_device **out) {
  int ordinal = 0;
  if (args && *args) {
    char *end;
    long v = strtol(args, &end, 10);
    if (*end || v < 0 || v > 1024) {
      GG_ERROR("GPU", "bad cuda device '%s': expected cuda:N with N a device index (cuda:0)", args);
      return GG_EINVAL;
    }
    ordinal = (int)v;
  }
  if (!cuda_ready()) {
    if (!g_cu.lib)
      GG_WARN("GPU", "cuda:%d unavailable: cannot load %s (%s); run 'gpuguard doctor'", ordinal,
              g_cu.name, g_cu.error);
    else
      GG_WARN("GPU", "cuda:%d unavailable: cuInit failed with %s; run 'gpuguard doctor'", ordinal,
              gg_cuda_error_name(g_cu.init_rc));
    return GG_ENODEV;
  }
  if (ordinal >= g_cu.device_count) {
    GG_WARN("GPU", "cuda:%d does not exist: the driver sees %d device(s)%s", ordinal,
            g_cu.device_count,
            getenv("CUDA_VISIBLE_DEVICES") ? " (CUDA_VISIBLE_DEVICES is set)" : "");
    return GG_ENODEV;
  }
  cuda_ctx *c = calloc(1, sizeof *c);
  if (!c) return GG_ENOMEM;
  c->ordinal = ordinal;
  char name[32];
  snprintf(name, sizeof name, "cuda:%d", ordinal);
  CUresult r = g_cu.cuDeviceGet(&c->dev, ordinal);
  if (r == 0) r = g_cu.cuDevicePrimaryCtxRetain(&c->ctx, c->dev);
  if (r) {
    GG_ERROR("GPU", "%s: cannot create a context: %s", name, gg_cuda_error_name(r));
    free(c);
    return gg_err_from_cuda(r);
  }
  if (g_nvml.ok && g_cu.cuDeviceGetPCIBusId(c->pci, (int)sizeof c->pci, c->dev) == 0)
    if (g_nvml.nvmlDeviceGetHandleByPciBusId(c->pci, &c->nvml_dev) != 0) c->nvml_dev = NULL;
  gg_device *d = gg__device_new(&k_cuda_iface, c, GG_DEVICE_CUDA, name);
  if (!d) {
    g_cu.cuDevicePrimaryCtxRelease(c->dev);
    free(c);
    return GG_ENOMEM;
  }
  *out = d;
  return 0;
}

/* Lists the devices without creating a context: a context costs hundreds
 * of MiB of device memory and ties this process to the driver's fate, and
 * the server lists devices from its own process (GPU work runs in workers).
 * Free memory comes from NVML when it is there, else it is reported as 0
 * (unknown); opening the device gives the exact number. */
int gg__device_cuda_enumerate(gg__devlist *l) {
  if (!cuda_ready()) return 0;
  for (int i = 0; i < g_cu.device_count; i++) {
    gg_device_info info;
    memset(&info, 0, sizeof info);
    snprintf(info.name, sizeof info.name, "cuda:%d", i);
    info.kind = GG_DEVICE_CUDA;
    CUdevice dev = 0;
    if (g_cu.cuDeviceGet(&dev, i) != 0) continue;
    static_info(dev, &info);
    char pci[32];
    void *nd = NULL;
    unsigned long long mem[3];
    if (g_nvml.ok && g_nvml.nvmlDeviceGetMemoryInfo &&
        g_cu.cuDeviceGetPCIBusId(pci, (int)sizeof pci, dev) == 0 &&
        g_nvml.nvmlDeviceGetHandleByPciBusId(pci, &nd) == 0 &&
        g_nvml.nvmlDeviceGetMemoryInfo(nd, mem) == 0)
      info.free_mem = mem[1];
    int rc = gg__devlist_push(l, &info);
    if (rc) return rc;
  }
  return 0;
}
