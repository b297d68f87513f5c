/* Device backend interface: a struct of function pointers plus a context,
 * one instance per opened device. Implementers only. */
#ifndef GG_DEVICE_IMPL_H
#define GG_DEVICE_IMPL_H

#include "gpuguard/device.h"

#include <pthread.h>
#include <stdatomic.h>

typedef struct gg_device_i {
  /* required */
  int (*get_info)(gg_device *dev, gg_device_info *info);
  int (*mem_alloc)(gg_device *dev, size_t size, gg_devmem *out);
  int (*mem_release)(gg_device *dev, gg_devmem *mem);
  int (*copy_to)(gg_device *dev, gg_devmem *dst, size_t off, const void *src, size_t n);
  int (*copy_from)(gg_device *dev, void *dst, gg_devmem *src, size_t off, size_t n);
  /* optional: NULL means "nothing queued, always succeeds" */
  int (*synchronize)(gg_device *dev);
  /* optional: NULL means "not host-addressable" */
  void *(*host_ptr)(gg_device *dev, gg_devmem *mem, size_t off);
  /* optional: NULL means run fn(ctx) directly */
  int (*launch)(gg_device *dev, gg_kernel_fn fn, void *ctx);
  /* optional: NULL means the backend's validation kernel is the generic
   * host one (vector add through launch) */
  int (*validate_kernel)(gg_device *dev, gg_devmem *a, gg_devmem *b, gg_devmem *c, size_t n);
  /* optional: NULL means reset is a no-op success */
  int (*reset)(gg_device *dev);
  /* optional: NULL means free(ctx) is enough */
  void (*destroy)(gg_device *dev);
  /* optional: NULL means no telemetry (GG_EUNSUPPORTED) */
  int (*telemetry)(gg_device *dev, gg_device_telemetry *out);
} gg_device_i;

struct gg_device {
  const gg_device_i *iface;
  void *ctx;
  gg_device_kind kind;
  char name[64];
  _Atomic uint64_t mem_in_use;   /* raw bytes held from the driver */
  _Atomic uint64_t mem_allocs;   /* live raw allocations */
  int validated;                 /* 0 unknown, 1 passed, -1 failed */
  char unusable_reason[256];
};

/* Backend constructors, registered in device.c. Each returns GG_ENODEV when
 * its driver or the requested device is absent. `args` is the text after
 * "kind:" in the spec (may be ""). */
int gg__device_cpu_open(const char *args, gg_device **out);
int gg__device_sim_open(const char *args, gg_device **out);
int gg__device_cuda_open(const char *args, gg_device **out);
int gg__device_opencl_open(const char *args, gg_device **out);

/* Backend enumerators: append infos to a growing array. Absent driver: 0
 * devices, return 0. */
typedef struct gg__devlist {
  gg_device_info *items;
  size_t count, cap;
} gg__devlist;
int gg__devlist_push(gg__devlist *l, const gg_device_info *info);
int gg__device_cuda_enumerate(gg__devlist *l);
int gg__device_opencl_enumerate(gg__devlist *l);

/* What the driver libraries look like on this machine, for doctor. */
typedef struct gg__cuda_probe {
  int lib_loaded;          /* dlopen(libcuda.so.1) worked */
  char lib_name[256];      /* what was dlopen'ed */
  char lib_error[256];     /* dlerror() when it did not */
  int init_rc;             /* CUresult of cuInit(0); -1 when not called */
  int driver_version;      /* cuDriverGetVersion, e.g. 12040 for CUDA 12.4; 0 unknown */
  int device_count;        /* cuDeviceGetCount; 0 when init failed */
  int nvml_loaded;         /* dlopen(libnvidia-ml.so.1) worked */
} gg__cuda_probe;
/* Loads libcuda (once per process) and fills *out. Never fails. */
void gg__cuda_probe_run(gg__cuda_probe *out);

typedef struct gg__cl_probe {
  int lib_loaded;          /* dlopen(libOpenCL.so.1) worked */
  char lib_name[256];
  char lib_error[256];
  int platforms_rc;        /* cl_int of clGetPlatformIDs; 1 when not called */
  unsigned num_platforms;
  char platforms[512];     /* "Portable Computing Language (1 device), ..." */
} gg__cl_probe;
void gg__opencl_probe_run(gg__cl_probe *out);
/* Tries one ICD library the way the ICD loader would: dlopen it and look up
 * clIcdGetPlatformIDsKHR. Returns 0 when it loads and exports the entry
 * point, else GG_ENOTFOUND / GG_EDRIVER with the reason in err. */
int gg__opencl_try_icd(const char *lib, char *err, size_t errlen);

/* An opencl device's objects for the compute backend (borrowed; context and
 * queue are replaced by gg_device_reset). GG_EINVAL for other device kinds. */
typedef struct gg__cl_handles {
  void *lib; /* the dlopen'ed libOpenCL.so.1 */
  void *platform, *device, *context, *queue;
} gg__cl_handles;
int gg__opencl_handles(gg_device *d, gg__cl_handles *out);

/* A cuda device's objects for the compute backend (src/backend/cuda), all
 * borrowed: the dlopen'ed libcuda.so.1 (look further entry points up in it),
 * the primary context and its device. reset_gen counts gg_device_reset
 * calls: a backend prepared at one generation must not touch the device's
 * memory at another (the reset freed it). GG_EINVAL for other device kinds. */
typedef struct gg__cu_handles {
  void *lib;       /* dlopen handle of libcuda */
  void *context;   /* CUcontext (the primary context) */
  int device;      /* CUdevice */
  int ordinal;     /* N of cuda:N */
  unsigned reset_gen;
} gg__cu_handles;
int gg__cuda_handles(gg_device *d, gg__cu_handles *out);

/* Allocates a gg_device with the given iface; ctx owned by the device. */
gg_device *gg__device_new(const gg_device_i *iface, void *ctx, gg_device_kind kind,
                          const char *name);

#endif
