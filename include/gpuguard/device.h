/* gpuguard devices: one interface over CPU, CUDA, OpenCL and the simulated GPU. */
#ifndef GPUGUARD_DEVICE_H
#define GPUGUARD_DEVICE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gg_device gg_device;

typedef enum gg_device_kind {
  GG_DEVICE_CPU = 0,
  GG_DEVICE_CUDA,
  GG_DEVICE_OPENCL,
  GG_DEVICE_SIM,
  GG_DEVICE_KIND_COUNT
} gg_device_kind;

const char *gg_device_kind_name(gg_device_kind kind);

/* A raw device allocation. `handle` is backend-specific and opaque to callers:
 * a host pointer (cpu, sim), a CUdeviceptr (cuda) or a cl_mem (opencl).
 * Callers address bytes inside it with (mem, offset) pairs; they never do
 * pointer arithmetic on the handle. */
typedef struct gg_devmem {
  void *handle;
  size_t size;
} gg_devmem;

typedef struct gg_device_info {
  char name[64];            /* canonical spec: "cpu", "cuda:0", "opencl:0.0", "sim" */
  gg_device_kind kind;
  char description[160];    /* "NVIDIA GeForce GTX 1660 Ti", "Portable Computing Language" */
  char vendor[64];
  char driver_version[64];  /* driver or platform version, "" when unknown */
  uint64_t total_mem;       /* bytes; for cpu the host's MemTotal */
  uint64_t free_mem;        /* bytes free now; for cpu MemAvailable */
  uint64_t max_alloc;       /* largest single allocation, 0 when unbounded/unknown */
  int compute_major, compute_minor; /* cuda only; 0 otherwise */
  int compute_units;        /* SMs, OpenCL compute units, CPU cores */
} gg_device_info;

/* Result of gg_device_validate(): allocate, copy in, run a small kernel, copy
 * out, compare, free. */
typedef struct gg_validation {
  int passed;               /* 1 when every step succeeded and numbers matched */
  int error;                /* 0 or the GG_E* code of the failing step */
  char step[32];            /* "alloc", "copy_in", "kernel", "copy_out", "compare", "free" */
  char reason[256];         /* human-readable cause when !passed */
  double elapsed_ms;
} gg_validation;

/* Opens a device from a spec:
 *   "cpu"
 *   "cuda:N"                     (CUDA driver API via dlopen("libcuda.so.1"))
 *   "opencl:P.D"                 (OpenCL platform P, device D via dlopen("libOpenCL.so.1"))
 *   "sim[:mem=4560M][,faults=SPEC][,seed=N]"  simulated constrained GPU on the CPU
 * Fault injection also reads GPUGUARD_FAULTS / GPUGUARD_SEED for sim devices
 * when the spec names none. On success *out owns the device; free it with
 * gg_device_free(). Returns GG_ENODEV for unknown specs or absent devices,
 * GG_EINVAL for malformed ones. */
int gg_device_open(const char *spec, gg_device **out);
/* Releases the device. All raw allocations must already be freed; any left
 * are reported and released. gg_device_free(NULL) is a no-op. */
void gg_device_free(gg_device *dev);

/* Fills *info (borrowed device; no ownership change). free_mem is queried now. */
int gg_device_get_info(gg_device *dev, gg_device_info *info);
const char *gg_device_name(const gg_device *dev);
gg_device_kind gg_device_get_kind(const gg_device *dev);
/* Free and total device memory in bytes, as the driver reports them now. */
int gg_device_get_memory(gg_device *dev, uint64_t *free_bytes, uint64_t *total_bytes);

/* Raw allocation straight from the driver. Only the memory manager
 * (src/memory) calls these; everything else goes through gg_pool. Returns 0,
 * GG_EDEV_OOM when the device has no room, or another error class. */
int gg_device_mem_alloc(gg_device *dev, size_t size, gg_devmem *out);
/* Returns memory to the driver; `mem` must come from gg_device_mem_alloc. */
int gg_device_mem_release(gg_device *dev, gg_devmem *mem);
/* Bytes currently held from the driver through gg_device_mem_alloc. */
uint64_t gg_device_mem_in_use(const gg_device *dev);

int gg_device_copy_to(gg_device *dev, gg_devmem *dst, size_t offset, const void *src,
                      size_t size);
int gg_device_copy_from(gg_device *dev, void *dst, gg_devmem *src, size_t offset, size_t size);
/* Waits for all queued work. May return GG_ELAUNCH, GG_EDEVICE_LOST or GG_ETIMEOUT. */
int gg_device_synchronize(gg_device *dev);

/* Host-addressable pointer for (mem, offset) on devices whose memory is host
 * memory (cpu, sim); NULL elsewhere. Backends that compute on the host use it. */
void *gg_device_host_ptr(gg_device *dev, gg_devmem *mem, size_t offset);

/* Runs the validation sequence; never crashes on a broken device. The result
 * is also remembered: gg_device_usable() reports it. */
int gg_device_validate(gg_device *dev, gg_validation *out);
/* 1 when validated and passed, 0 when not validated yet or failed. */
int gg_device_usable(const gg_device *dev, const char **reason);

/* Lists every device gpuguard can see, cpu first. *out is malloc'd; the caller
 * frees it with free(). Absent drivers are skipped, not errors. */
int gg_device_enumerate(gg_device_info **out, size_t *count);

/* ---- Simulated device faults -------------------------------------------
 * SPEC is a comma list of KIND@N (the N-th operation of that kind fails,
 * 1-based) or KIND%P (each fails with probability P in [0,1], seeded).
 * KIND: oom (raw allocation), launch (kernel launch), sticky (device lost
 * until gg_device_reset), hang (a launched kernel never completes). */
typedef struct gg_fault_plan gg_fault_plan;
typedef enum gg_fault_kind {
  GG_FAULT_OOM = 0, /* counted per raw allocation */
  GG_FAULT_LAUNCH,  /* counted per launch */
  GG_FAULT_STICKY,  /* counted per launch */
  GG_FAULT_HANG,    /* counted per launch */
  GG_FAULT_KIND_COUNT
} gg_fault_kind;
/* Parses SPEC ("" or NULL gives an empty plan). On failure returns GG_EINVAL
 * and writes what was wrong into err (e.g. "unknown fault kind 'boom' in
 * 'boom@2': expected oom, launch, sticky or hang"). *out is owned by the
 * caller: gg_fault_plan_free(). */
int gg_fault_plan_parse(const char *spec, uint64_t seed, gg_fault_plan **out, char *err,
                        size_t errlen);
void gg_fault_plan_free(gg_fault_plan *plan);
/* Decides whether operation number n (1-based, counted per kind's counter)
 * of `kind` fails: 1 yes, 0 no. KIND@N rules fire when n == N; each KIND%P
 * rule draws one number from the plan's seeded generator per call, so the
 * same seed and the same sequence of calls give the same faults. Not
 * thread-safe: the sim device serialises calls. */
int gg_fault_plan_check(gg_fault_plan *plan, gg_fault_kind kind, uint64_t n);
/* Number of rules in the plan (0 for NULL). */
size_t gg_fault_plan_rules(const gg_fault_plan *plan);
/* Canonical text of the plan ("oom@3,launch%0.1 seed=7") into buf; returns buf. */
const char *gg_fault_plan_describe(const gg_fault_plan *plan, char *buf, size_t len);
const char *gg_fault_kind_name(gg_fault_kind kind);

/* Counters of a sim device, for tests and metrics. */
typedef struct gg_sim_stats {
  uint64_t capacity;                      /* bytes the simulated GPU has */
  uint64_t used;                          /* bytes allocated now (rounded to 256) */
  uint64_t allocs, launches, copies, syncs, resets; /* operations attempted */
  uint64_t faults_fired[GG_FAULT_KIND_COUNT];       /* injected faults per kind */
  uint64_t capacity_ooms;                 /* allocations refused for lack of room */
  int lost;                               /* 1 while a sticky error is pending */
  int hung;                               /* 1 while a hung kernel is pending */
} gg_sim_stats;
/* Fills *out for a sim device; GG_EINVAL for other device kinds. */
int gg_sim_get_stats(gg_device *dev, gg_sim_stats *out);

/* Launches a "kernel": on cpu/sim it runs fn(ctx) on the calling thread,
 * going through the sim device's fault injection first. GPU backends use
 * their own launch paths; this entry point exists so every device kind can
 * be driven the same way by tests and the validation sequence. */
typedef int (*gg_kernel_fn)(void *ctx);
int gg_device_launch(gg_device *dev, gg_kernel_fn fn, void *ctx);

/* Live readings from the driver's management library (NVML for cuda). */
typedef struct gg_device_telemetry {
  int utilization_pct;     /* GPU busy percentage, -1 when unknown */
  int mem_utilization_pct; /* memory controller busy percentage, -1 when unknown */
  int temperature_c;       /* core temperature, -1 when unknown */
} gg_device_telemetry;
/* Fills *out; GG_EUNSUPPORTED when the device has no telemetry (cpu, sim,
 * opencl, or cuda without libnvidia-ml). */
int gg_device_get_telemetry(gg_device *dev, gg_device_telemetry *out);

/* Clears a sticky error by recreating the device context. Every allocation
 * made before the reset is invalid afterwards (the memory manager drops them). */
int gg_device_reset(gg_device *dev);

#ifdef __cplusplus
}
#endif
#endif
