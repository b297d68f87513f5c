/* The opencl device ("opencl:P.D"): OpenCL loaded at run time with
 * dlopen("libOpenCL.so.1") (the ICD loader), so there is no link-time
 * dependency and no header dependency. Every cl_int goes through the failure
 * taxonomy (gg_err_from_cl). The validation kernel is built from source by
 * the platform's compiler. GPUGUARD_LIBOPENCL overrides the library name. */
#include "device/device-impl.h"
#include "gpuguard/classify.h"
#include "gpuguard/core.h"
#include "gpuguard/error.h"
#include "gpuguard/log.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int cl_int;
typedef unsigned int cl_uint;
typedef unsigned long long cl_ulong;
typedef cl_ulong cl_bitfield;
typedef void *cl_platform_id, *cl_device_id, *cl_context, *cl_command_queue, *cl_mem,
    *cl_program, *cl_kernel, *cl_event;

enum {
  CL_PLATFORM_VERSION = 0x0901,
  CL_PLATFORM_NAME = 0x0902,
  CL_PLATFORM_VENDOR = 0x0903,
  CL_DEVICE_TYPE = 0x1000,
  CL_DEVICE_MAX_COMPUTE_UNITS = 0x1002,
  CL_DEVICE_MAX_MEM_ALLOC_SIZE = 0x1010,
  CL_DEVICE_GLOBAL_MEM_SIZE = 0x101F,
  CL_DEVICE_NAME = 0x102B,
  CL_DEVICE_VENDOR = 0x102C,
  CL_DRIVER_VERSION = 0x102D,
  CL_DEVICE_VERSION = 0x102F,
  CL_DEVICE_GLOBAL_FREE_MEMORY_AMD = 0x4039,
  CL_PROGRAM_BUILD_LOG = 0x1183,
};
#define CL_DEVICE_TYPE_ALL 0xFFFFFFFFull
#define CL_MEM_READ_WRITE 1ull

typedef struct cl_api {
  void *lib;
  char name[256];
  char error[256];
  cl_int platforms_rc;
  cl_uint num_platforms;
  cl_int (*GetPlatformIDs)(cl_uint, cl_platform_id *, cl_uint *);
  cl_int (*GetPlatformInfo)(cl_platform_id, cl_uint, size_t, void *, size_t *);
  cl_int (*GetDeviceIDs)(cl_platform_id, cl_bitfield, cl_uint, cl_device_id *, cl_uint *);
  cl_int (*GetDeviceInfo)(cl_device_id, cl_uint, size_t, void *, size_t *);
  cl_context (*CreateContext)(const intptr_t *, cl_uint, const cl_device_id *, void *, void *,
                              cl_int *);
  cl_command_queue (*CreateCommandQueue)(cl_context, cl_device_id, cl_bitfield, cl_int *);
  cl_mem (*CreateBuffer)(cl_context, cl_bitfield, size_t, void *, cl_int *);
  cl_int (*ReleaseMemObject)(cl_mem);
  cl_int (*EnqueueWriteBuffer)(cl_command_queue, cl_mem, cl_uint, size_t, size_t, const void *,
                               cl_uint, const cl_event *, cl_event *);
  cl_int (*EnqueueReadBuffer)(cl_command_queue, cl_mem, cl_uint, size_t, size_t, void *, cl_uint,
                              const cl_event *, cl_event *);
  cl_int (*Finish)(cl_command_queue);
  cl_program (*CreateProgramWithSource)(cl_context, cl_uint, const char **, const size_t *,
                                        cl_int *);
  cl_int (*BuildProgram)(cl_program, cl_uint, const cl_device_id *, const char *, void *, void *);
  cl_int (*GetProgramBuildInfo)(cl_program, cl_device_id, cl_uint, size_t, void *, size_t *);
  cl_kernel (*CreateKernel)(cl_program, const char *, cl_int *);
  cl_int (*SetKernelArg)(cl_kernel, cl_uint, size_t, const void *);
  cl_int (*EnqueueNDRangeKernel)(cl_command_queue, cl_kernel, cl_uint, const size_t *,
                                 const size_t *, const size_t *, cl_uint, const cl_event *,
                                 cl_event *);
  cl_int (*ReleaseKernel)(cl_kernel);
  cl_int (*ReleaseProgram)(cl_program);
  cl_int (*ReleaseCommandQueue)(cl_command_queue);
  cl_int (*ReleaseContext)(cl_context);
} cl_api;

static cl_api g_cl;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

#define LOAD(sym)                                                                             \
  do {                                                                                        \
    *(void **)(&g_cl.sym) = dlsym(g_cl.lib, "cl" #sym);                                       \
    if (!g_cl.sym) {                                                                          \
      snprintf(g_cl.error, sizeof g_cl.error, "%.180s has no symbol cl%.40s", g_cl.name, #sym);      \
      goto fail;                                                                              \
    }                                                                                         \
  } while (0)

static void load_cl(void) {
  g_cl.platforms_rc = 1;
  const char *name = getenv("GPUGUARD_LIBOPENCL");
  if (!name || !*name) name = "libOpenCL.so.1";
  snprintf(g_cl.name, sizeof g_cl.name, "%s", name);
  g_cl.lib = dlopen(name, RTLD_NOW | RTLD_LOCAL);
  if (!g_cl.lib) {
    const char *e = dlerror();
    snprintf(g_cl.error, sizeof g_cl.error, "%s", e ? e : "dlopen failed");
    return;
  }
  LOAD(GetPlatformIDs);
  LOAD(GetPlatformInfo);
  LOAD(GetDeviceIDs);
  LOAD(GetDeviceInfo);
  LOAD(CreateContext);
  LOAD(CreateCommandQueue);
  LOAD(CreateBuffer);
  LOAD(ReleaseMemObject);
  LOAD(EnqueueWriteBuffer);
  LOAD(EnqueueReadBuffer);
  LOAD(Finish);
  LOAD(CreateProgramWithSource);
  LOAD(BuildProgram);
  LOAD(GetProgramBuildInfo);
  LOAD(CreateKernel);
  LOAD(SetKernelArg);
  LOAD(EnqueueNDRangeKernel);
  LOAD(ReleaseKernel);
  LOAD(ReleaseProgram);
  LOAD(ReleaseCommandQueue);
  LOAD(ReleaseContext);
  g_cl.platforms_rc = g_cl.GetPlatformIDs(0, NULL, &g_cl.num_platforms);
  /* the ICD loader answers CL_PLATFORM_NOT_FOUND_KHR when no ICD works */
  if (g_cl.platforms_rc) g_cl.num_platforms = 0;
  return;
fail:
  dlclose(g_cl.lib);
  g_cl.lib = NULL;
}

static int cl_ready(void) {
  pthread_once(&g_once, load_cl);
  return g_cl.lib && g_cl.num_platforms > 0;
}

void gg__opencl_probe_run(gg__cl_probe *out) {
  pthread_once(&g_once, load_cl);
  memset(out, 0, sizeof *out);
  out->lib_loaded = g_cl.lib != NULL;
  snprintf(out->lib_name, sizeof out->lib_name, "%s", g_cl.name);
  snprintf(out->lib_error, sizeof out->lib_error, "%s", g_cl.error);
  out->platforms_rc = g_cl.platforms_rc;
  out->num_platforms = g_cl.num_platforms;
  if (!g_cl.lib || !g_cl.num_platforms) return;
  cl_platform_id plats[16];
  cl_uint np = 0;
  if (g_cl.GetPlatformIDs(16, plats, &np)) return;
  size_t o = 0;
  for (cl_uint p = 0; p < np && p < 16 && o < sizeof out->platforms; p++) {
    char name[128] = "";
    cl_uint nd = 0;
    if (g_cl.GetPlatformInfo(plats[p], CL_PLATFORM_NAME, sizeof name, name, NULL)) name[0] = 0;
    name[sizeof name - 1] = 0;
    if (g_cl.GetDeviceIDs(plats[p], CL_DEVICE_TYPE_ALL, 0, NULL, &nd)) nd = 0;
    int w = snprintf(out->platforms + o, sizeof out->platforms - o, "%s%u: %s (%u device%s)",
                     p ? ", " : "", p, name[0] ? name : "?", nd, nd == 1 ? "" : "s");
    if (w < 0) break;
    o += (size_t)w;
  }
}

int gg__opencl_try_icd(const char *lib, char *err, size_t errlen) {
  /* RTLD_NODELETE: asking an ICD for its platforms initialises it, and a
   * driver may start threads and register thread-local state then. Unloading
   * it afterwards could leave those threads running unmapped code, so the
   * probe keeps it mapped (the ICD loader loads the same library anyway);
   * dlclose below only drops our reference. */
  void *h = dlopen(lib, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
  if (!h) {
    const char *e = dlerror();
    snprintf(err, errlen, "%s", e ? e : "dlopen failed");
    return GG_ENOTFOUND;
  }
  /* The ICD loader's way: the vendor library exports
   * clGetExtensionFunctionAddress, which hands out clIcdGetPlatformIDsKHR. */
  void *(*gefa)(const char *) = NULL;
  *(void **)(&gefa) = dlsym(h, "clGetExtensionFunctionAddress");
  cl_int (*icd_get)(cl_uint, cl_platform_id *, cl_uint *) = NULL;
  if (gefa) *(void **)(&icd_get) = gefa("clIcdGetPlatformIDsKHR");
  if (!icd_get) *(void **)(&icd_get) = dlsym(h, "clIcdGetPlatformIDsKHR");
  if (!icd_get) {
    snprintf(err, errlen,
             "%.200s loads but provides no clIcdGetPlatformIDsKHR (not an OpenCL ICD)", lib);
    dlclose(h);
    return GG_EDRIVER;
  }
  cl_uint n = 0;
  cl_int r = icd_get(0, NULL, &n);
  dlclose(h);
  if (r != 0 || n == 0) {
    snprintf(err, errlen, "%.200s is an ICD but reports no platform (%s)", lib,
             r ? gg_cl_error_name(r) : "0 platforms");
    return GG_EDRIVER;
  }
  if (err && errlen) err[0] = 0;
  return 0;
}

/* ---- the device ---------------------------------------------------------- */

typedef struct cl_ctx {
  cl_platform_id platform;
  cl_device_id device;
  cl_context context;
  cl_command_queue queue;
  cl_program program;
  cl_kernel kernel;
  uint64_t global_mem;
  uint64_t max_alloc;
  pthread_mutex_t lock; /* guards the live-buffer list */
  cl_mem *live;
  size_t nlive, caplive;
} cl_ctx;

static cl_ctx *ctx_of(gg_device *d) { return d->ctx; }

static int cl_fail(gg_device *d, cl_int r, const char *call) {
  gg_fail_class c = gg_classify_cl(r);
  if (c == GG_FAIL_OOM)
    GG_DEBUG("GPU", "%s on %s: %s", call, d->name, gg_cl_error_name(r));
  else
    GG_ERROR("GPU", "%s failed on %s: %s (%d), class %s: %s", call, d->name, gg_cl_error_name(r),
             r, gg_fail_class_name(c), gg_fail_class_advice(c));
  return gg_err_from_cl(r);
}

static void str_info_dev(cl_device_id dev, cl_uint what, char *buf, size_t len) {
  buf[0] = 0;
  if (g_cl.GetDeviceInfo(dev, what, len, buf, NULL) != 0) buf[0] = 0;
  buf[len - 1] = 0;
}

static void str_info_plat(cl_platform_id p, cl_uint what, char *buf, size_t len) {
  buf[0] = 0;
  if (g_cl.GetPlatformInfo(p, what, len, buf, NULL) != 0) buf[0] = 0;
  buf[len - 1] = 0;
}

static void fill_info(cl_platform_id p, cl_device_id dev, gg_device_info *info) {
  char name[160], pver[256], dver[64];
  str_info_dev(dev, CL_DEVICE_NAME, name, sizeof name);
  str_info_plat(p, CL_PLATFORM_NAME, info->vendor, sizeof info->vendor);
  str_info_plat(p, CL_PLATFORM_VERSION, pver, sizeof pver);
  str_info_dev(dev, CL_DRIVER_VERSION, dver, sizeof dver);
  char *cut = strstr(pver, "  "); /* PoCL appends build flags after two spaces */
  if (cut) *cut = 0;
  snprintf(info->description, sizeof info->description, "%s", name);
  char vendor[64];
  str_info_dev(dev, CL_DEVICE_VENDOR, vendor, sizeof vendor);
  if (vendor[0]) snprintf(info->vendor, sizeof info->vendor, "%s", vendor);
  snprintf(info->driver_version, sizeof info->driver_version, "%.32s, driver %.20s", pver, dver);
  cl_ulong v = 0;
  if (g_cl.GetDeviceInfo(dev, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof v, &v, NULL) == 0)
    info->total_mem = v;
  if (g_cl.GetDeviceInfo(dev, CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof v, &v, NULL) == 0)
    info->max_alloc = v;
  cl_uint cu = 0;
  if (g_cl.GetDeviceInfo(dev, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof cu, &cu, NULL) == 0)
    info->compute_units = (int)cu;
  /* Standard OpenCL cannot report free memory; AMD's extension can (KiB). */
  size_t amd[2] = {0, 0};
  if (g_cl.GetDeviceInfo(dev, CL_DEVICE_GLOBAL_FREE_MEMORY_AMD, sizeof amd, amd, NULL) == 0 &&
      amd[0])
    info->free_mem = (uint64_t)amd[0] * 1024;
  else
    info->free_mem = info->total_mem;
}

static int cl_get_info(gg_device *d, gg_device_info *info) {
  cl_ctx *c = ctx_of(d);
  fill_info(c->platform, c->device, info);
  /* without a free-memory query, free is total minus what we hold */
  uint64_t used = gg_device_mem_in_use(d);
  if (info->free_mem == info->total_mem) info->free_mem = used < info->total_mem ? info->total_mem - used : 0;
  return 0;
}

static int track(cl_ctx *c, cl_mem m) {
  pthread_mutex_lock(&c->lock);
  if (c->nlive == c->caplive) {
    size_t cap = c->caplive ? c->caplive * 2 : 16;
    cl_mem *p = realloc(c->live, cap * sizeof *p);
    if (!p) {
      pthread_mutex_unlock(&c->lock);
      return GG_ENOMEM;
    }
    c->live = p;
    c->caplive = cap;
  }
  c->live[c->nlive++] = m;
  pthread_mutex_unlock(&c->lock);
  return 0;
}

static int untrack(cl_ctx *c, cl_mem m) {
  int found = 0;
  pthread_mutex_lock(&c->lock);
  for (size_t i = 0; i < c->nlive; i++) {
    if (c->live[i] == m) {
      c->live[i] = c->live[--c->nlive];
      found = 1;
      break;
    }
  }
  pthread_mutex_unlock(&c->lock);
  return found;
}

static int cl_mem_alloc(gg_device *d, size_t size, gg_devmem *out) {
  cl_ctx *c = ctx_of(d);
  /* Many implementations allocate lazily and report the failure at first
   * use; refuse up front what cannot fit, as a driver with eager
   * allocation would. */
  if (c->max_alloc && size > c->max_alloc) {
    GG_DEBUG("GPU", "%s: %zu bytes exceed CL_DEVICE_MAX_MEM_ALLOC_SIZE %llu", d->name, size,
             (unsigned long long)c->max_alloc);
    return GG_EDEV_OOM;
  }
  if (c->global_mem && gg_device_mem_in_use(d) + size > c->global_mem) return GG_EDEV_OOM;
  cl_int r = 0;
  cl_mem m = g_cl.CreateBuffer(c->context, CL_MEM_READ_WRITE, size, NULL, &r);
  if (!m || r) return cl_fail(d, r ? r : -4, "clCreateBuffer");
  if (track(c, m)) {
    g_cl.ReleaseMemObject(m);
    return GG_ENOMEM;
  }
  out->handle = m;
  return 0;
}

static int cl_mem_release(gg_device *d, gg_devmem *mem) {
  cl_ctx *c = ctx_of(d);
  if (!untrack(c, mem->handle)) return 0; /* already released by a reset */
  cl_int r = g_cl.ReleaseMemObject(mem->handle);
  return r ? cl_fail(d, r, "clReleaseMemObject") : 0;
}

static int cl_copy_to(gg_device *d, gg_devmem *dst, size_t off, const void *src, size_t n) {
  cl_int r = g_cl.EnqueueWriteBuffer(ctx_of(d)->queue, dst->handle, 1, off, n, src, 0, NULL, NULL);
  return r ? cl_fail(d, r, "clEnqueueWriteBuffer") : 0;
}

static int cl_copy_from(gg_device *d, void *dst, gg_devmem *src, size_t off, size_t n) {
  cl_int r = g_cl.EnqueueReadBuffer(ctx_of(d)->queue, src->handle, 1, off, n, dst, 0, NULL, NULL);
  return r ? cl_fail(d, r, "clEnqueueReadBuffer") : 0;
}

static int cl_synchronize(gg_device *d) {
  cl_int r = g_cl.Finish(ctx_of(d)->queue);
  return r ? cl_fail(d, r, "clFinish") : 0;
}

static const char k_validate_src[] =
    "__kernel void gg_validate(__global const float *a, __global const float *b,\n"
    "                          __global float *c, uint n) {\n"
    "  size_t i = get_global_id(0);\n"
    "  if (i < n) c[i] = a[i] * 2.0f + b[i];\n"
    "}\n";

static int build_kernel(gg_device *d) {
  cl_ctx *c = ctx_of(d);
  const char *src = k_validate_src;
  cl_int r = 0;
  c->program = g_cl.CreateProgramWithSource(c->context, 1, &src, NULL, &r);
  if (!c->program || r) return cl_fail(d, r ? r : -44, "clCreateProgramWithSource");
  r = g_cl.BuildProgram(c->program, 1, &c->device, "", NULL, NULL);
  if (r) {
    char log[1024] = "";
    g_cl.GetProgramBuildInfo(c->program, c->device, CL_PROGRAM_BUILD_LOG, sizeof log - 1, log, NULL);
    GG_ERROR("GPU", "%s: validation kernel build log: %s", d->name, log);
    return cl_fail(d, r, "clBuildProgram");
  }
  c->kernel = g_cl.CreateKernel(c->program, "gg_validate", &r);
  if (!c->kernel || r) return cl_fail(d, r ? r : -48, "clCreateKernel");
  return 0;
}

static int cl_validate_kernel(gg_device *d, gg_devmem *a, gg_devmem *b, gg_devmem *cm, size_t n) {
  cl_ctx *c = ctx_of(d);
  int rc;
  if (!c->kernel && (rc = build_kernel(d))) return rc;
  cl_uint nn = (cl_uint)n;
  cl_int r = g_cl.SetKernelArg(c->kernel, 0, sizeof(cl_mem), &a->handle);
  if (!r) r = g_cl.SetKernelArg(c->kernel, 1, sizeof(cl_mem), &b->handle);
  if (!r) r = g_cl.SetKernelArg(c->kernel, 2, sizeof(cl_mem), &cm->handle);
  if (!r) r = g_cl.SetKernelArg(c->kernel, 3, sizeof nn, &nn);
  if (r) return cl_fail(d, r, "clSetKernelArg");
  size_t global = n;
  r = g_cl.EnqueueNDRangeKernel(c->queue, c->kernel, 1, NULL, &global, NULL, 0, NULL, NULL);
  return r ? cl_fail(d, r, "clEnqueueNDRangeKernel") : 0;
}

static void release_objects(cl_ctx *c) {
  if (c->kernel) g_cl.ReleaseKernel(c->kernel);
  if (c->program) g_cl.ReleaseProgram(c->program);
  pthread_mutex_lock(&c->lock);
  for (size_t i = 0; i < c->nlive; i++) g_cl.ReleaseMemObject(c->live[i]);
  c->nlive = 0;
  pthread_mutex_unlock(&c->lock);
  if (c->queue) g_cl.ReleaseCommandQueue(c->queue);
  if (c->context) g_cl.ReleaseContext(c->context);
  c->kernel = NULL;
  c->program = NULL;
  c->queue = NULL;
  c->context = NULL;
}

static int create_objects(cl_ctx *c) {
  cl_int r = 0;
  intptr_t props[] = {0x1084 /* CL_CONTEXT_PLATFORM */, (intptr_t)c->platform, 0};
  c->context = g_cl.CreateContext(props, 1, &c->device, NULL, NULL, &r);
  if (!c->context || r) return r ? r : -34;
  c->queue = g_cl.CreateCommandQueue(c->context, c->device, 0, &r);
  if (!c->queue || r) return r ? r : -36;
  return 0;
}

/* Recreates context and queue; every buffer of the old context is released
 * here (the memory manager forgets the stale handles without calling us). */
static int cl_reset(gg_device *d) {
  cl_ctx *c = ctx_of(d);
  release_objects(c);
  cl_int r = create_objects(c);
  if (r) return cl_fail(d, r, "clCreateContext/clCreateCommandQueue after reset");
  GG_INFO("GPU", "%s: context and queue recreated", d->name);
  return 0;
}

static void cl_destroy(gg_device *d) {
  cl_ctx *c = ctx_of(d);
  if (!c) return;
  if (c->nlive) GG_WARN("MEM", "%s: releasing %zu OpenCL buffers still live", d->name, c->nlive);
  release_objects(c);
  free(c->live);
  pthread_mutex_destroy(&c->lock);
  free(c);
}

static const gg_device_i k_cl_iface = {
    .get_info = cl_get_info,
    .mem_alloc = cl_mem_alloc,
    .mem_release = cl_mem_release,
    .copy_to = cl_copy_to,
    .copy_from = cl_copy_from,
    .synchronize = cl_synchronize,
    .validate_kernel = cl_validate_kernel,
    .reset = cl_reset,
    .destroy = cl_destroy,
};

/* For the OpenCL compute backend (src/backend/opencl/): the library handle
 * (so it can dlsym what it needs from the same ICD loader) and the device's
 * objects, borrowed. The context and queue change on gg_device_reset. */
int gg__opencl_handles(gg_device *d, gg__cl_handles *out) {
  if (!d || d->kind != GG_DEVICE_OPENCL || !g_cl.lib) return GG_EINVAL;
  cl_ctx *c = ctx_of(d);
  out->lib = g_cl.lib;
  out->platform = c->platform;
  out->device = c->device;
  out->context = c->context;
  out->queue = c->queue;
  return 0;
}

/* Looks up platform P's device D. */
static int find_device(unsigned pi, unsigned di, cl_platform_id *pp, cl_device_id *dd) {
  cl_platform_id plats[16];
  cl_uint np = 0;
  if (g_cl.GetPlatformIDs(16, plats, &np) || pi >= np || pi >= 16) return GG_ENODEV;
  cl_device_id devs[32];
  cl_uint nd = 0;
  if (g_cl.GetDeviceIDs(plats[pi], CL_DEVICE_TYPE_ALL, 32, devs, &nd) || di >= nd || di >= 32)
    return GG_ENODEV;
  *pp = plats[pi];
  *dd = devs[di];
  return 0;
}

int gg__device_opencl_open(const char *args, gg_device **out) {
  unsigned pi = 0, di = 0;
  if (args && *args) {
    char tail;
    if (sscanf(args, "%u.%u%c", &pi, &di, &tail) != 2) {
      GG_ERROR("GPU", "bad opencl device '%s': expected opencl:P.D (platform.device), e.g. "
                      "opencl:0.0",
               args);
      return GG_EINVAL;
    }
  }
  if (!cl_ready()) {
    GG_WARN("GPU", "opencl:%u.%u unavailable: %s; run 'gpuguard doctor'", pi, di,
            !g_cl.lib ? g_cl.error : "no OpenCL platform (no working ICD in /etc/OpenCL/vendors)");
    return GG_ENODEV;
  }
  cl_ctx *c = calloc(1, sizeof *c);
  if (!c) return GG_ENOMEM;
  if (find_device(pi, di, &c->platform, &c->device)) {
    GG_WARN("GPU", "opencl:%u.%u does not exist; 'gpuguard doctor' lists the platforms and devices",
            pi, di);
    free(c);
    return GG_ENODEV;
  }
  pthread_mutex_init(&c->lock, NULL);
  cl_ulong v = 0;
  if (g_cl.GetDeviceInfo(c->device, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof v, &v, NULL) == 0)
    c->global_mem = v;
  if (g_cl.GetDeviceInfo(c->device, CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof v, &v, NULL) == 0)
    c->max_alloc = v;
  char name[32];
  snprintf(name, sizeof name, "opencl:%u.%u", pi, di);
  cl_int r = create_objects(c);
  if (r) {
    GG_ERROR("GPU", "%s: cannot create a context and queue: %s", name, gg_cl_error_name(r));
    release_objects(c);
    pthread_mutex_destroy(&c->lock);
    free(c);
    return gg_err_from_cl(r);
  }
  gg_device *d = gg__device_new(&k_cl_iface, c, GG_DEVICE_OPENCL, name);
  if (!d) {
    release_objects(c);
    pthread_mutex_destroy(&c->lock);
    free(c);
    return GG_ENOMEM;
  }
  *out = d;
  return 0;
}

int gg__device_opencl_enumerate(gg__devlist *l) {
  if (!cl_ready()) return 0;
  cl_platform_id plats[16];
  cl_uint np = 0;
  if (g_cl.GetPlatformIDs(16, plats, &np)) return 0;
  for (cl_uint p = 0; p < np && p < 16; p++) {
    cl_device_id devs[32];
    cl_uint nd = 0;
    if (g_cl.GetDeviceIDs(plats[p], CL_DEVICE_TYPE_ALL, 32, devs, &nd)) continue;
    for (cl_uint i = 0; i < nd && i < 32; i++) {
      gg_device_info info;
      memset(&info, 0, sizeof info);
      snprintf(info.name, sizeof info.name, "opencl:%u.%u", p, i);
      info.kind = GG_DEVICE_OPENCL;
      fill_info(plats[p], devs[i], &info);
      int rc = gg__devlist_push(l, &info);
      if (rc) return rc;
    }
  }
  return 0;
}
