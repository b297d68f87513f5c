/* Device registry and the public wrappers that apply the vtable's defaults. */
#include "device/device-impl.h"
#include "gpuguard/core.h"
#include "gpuguard/error.h"
#include "gpuguard/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct backend_entry {
  const char *prefix; /* spec prefix before ':' */
  int (*open)(const char *args, gg_device **out);
} backend_entry;

#ifndef GG_HAVE_CUDA
#define GG_HAVE_CUDA 1
#endif
#ifndef GG_HAVE_OPENCL
#define GG_HAVE_OPENCL 1
#endif

#if !GG_HAVE_CUDA || !GG_HAVE_OPENCL
/* Device kinds left out at build time (-DGG_CUDA=OFF / -DGG_OPENCL=OFF). */
static int built_without(const char *args, gg_device **out, const char *kind, const char *opt) {
  (void)args, (void)out;
  GG_ERROR("GPU",
           "%s devices are not in this build (configured with -D%s=OFF); rebuild with "
           "-D%s=ON",
           kind, opt, opt);
  return GG_EUNSUPPORTED;
}
#endif
#if !GG_HAVE_CUDA
static int cuda_off(const char *args, gg_device **out) {
  return built_without(args, out, "cuda", "GG_CUDA");
}
#endif
#if !GG_HAVE_OPENCL
static int opencl_off(const char *args, gg_device **out) {
  return built_without(args, out, "opencl", "GG_OPENCL");
}
#endif

static const backend_entry k_backends[] = {
    {"cpu", gg__device_cpu_open},
    {"sim", gg__device_sim_open},
#if GG_HAVE_CUDA
    {"cuda", gg__device_cuda_open},
#else
    {"cuda", cuda_off},
#endif
#if GG_HAVE_OPENCL
    {"opencl", gg__device_opencl_open},
#else
    {"opencl", opencl_off},
#endif
};

const char *gg_device_kind_name(gg_device_kind kind) {
  static const char *const names[GG_DEVICE_KIND_COUNT] = {"cpu", "cuda", "opencl", "sim"};
  return (kind >= 0 && kind < GG_DEVICE_KIND_COUNT) ? names[kind] : "?";
}

gg_device *gg__device_new(const gg_device_i *iface, void *ctx, gg_device_kind kind,
                          const char *name) {
  gg_device *d = calloc(1, sizeof *d);
  if (!d) return NULL;
  d->iface = iface;
  d->ctx = ctx;
  d->kind = kind;
  snprintf(d->name, sizeof d->name, "%s", name);
  return d;
}

int gg_device_open(const char *spec, gg_device **out) {
  if (!spec || !out) return GG_EINVAL;
  *out = NULL;
  const char *colon = strchr(spec, ':');
  size_t plen = colon ? (size_t)(colon - spec) : strlen(spec);
  const char *args = colon ? colon + 1 : "";
  for (size_t i = 0; i < sizeof k_backends / sizeof k_backends[0]; i++) {
    if (strlen(k_backends[i].prefix) == plen && !strncmp(k_backends[i].prefix, spec, plen))
      return k_backends[i].open(args, out);
  }
  return GG_ENODEV;
}

void gg_device_free(gg_device *dev) {
  if (!dev) return;
  uint64_t live = atomic_load(&dev->mem_allocs);
  if (live)
    GG_WARN("MEM", "device %s freed with %llu raw allocations (%llu bytes) still live", dev->name,
            (unsigned long long)live, (unsigned long long)atomic_load(&dev->mem_in_use));
  if (dev->iface->destroy)
    dev->iface->destroy(dev);
  else
    free(dev->ctx);
  free(dev);
}

int gg_device_get_info(gg_device *dev, gg_device_info *info) {
  if (!dev || !info) return GG_EINVAL;
  memset(info, 0, sizeof *info);
  snprintf(info->name, sizeof info->name, "%s", dev->name);
  info->kind = dev->kind;
  return dev->iface->get_info(dev, info);
}

const char *gg_device_name(const gg_device *dev) {
  return dev ? dev->name : "(null)";
}
gg_device_kind gg_device_get_kind(const gg_device *dev) {
  return dev->kind;
}

int gg_device_get_memory(gg_device *dev, uint64_t *free_bytes, uint64_t *total_bytes) {
  gg_device_info info;
  int rc = gg_device_get_info(dev, &info);
  if (rc) return rc;
  if (free_bytes) *free_bytes = info.free_mem;
  if (total_bytes) *total_bytes = info.total_mem;
  return 0;
}

int gg_device_mem_alloc(gg_device *dev, size_t size, gg_devmem *out) {
  if (!dev || !out || size == 0) return GG_EINVAL;
  memset(out, 0, sizeof *out);
  int rc = dev->iface->mem_alloc(dev, size, out);
  if (rc == 0) {
    out->size = size;
    atomic_fetch_add(&dev->mem_in_use, size);
    atomic_fetch_add(&dev->mem_allocs, 1);
  }
  return rc;
}

int gg_device_mem_release(gg_device *dev, gg_devmem *mem) {
  if (!dev || !mem || !mem->handle) return GG_EINVAL;
  size_t size = mem->size;
  int rc = dev->iface->mem_release(dev, mem);
  /* The driver owns the memory again even if it reported an error (a lost
   * device frees everything), so the accounting always drops it. */
  atomic_fetch_sub(&dev->mem_in_use, size);
  atomic_fetch_sub(&dev->mem_allocs, 1);
  mem->handle = NULL;
  mem->size = 0;
  return rc;
}

uint64_t gg_device_mem_in_use(const gg_device *dev) {
  return dev ? atomic_load(&((gg_device *)dev)->mem_in_use) : 0;
}

static int check_range(const gg_devmem *m, size_t off, size_t n) {
  if (!m || !m->handle) return GG_EINVAL;
  if (off > m->size || n > m->size - off) return GG_ERANGE;
  return 0;
}

int gg_device_copy_to(gg_device *dev, gg_devmem *dst, size_t offset, const void *src, size_t size) {
  int rc = check_range(dst, offset, size);
  if (rc) return rc;
  return size ? dev->iface->copy_to(dev, dst, offset, src, size) : 0;
}

int gg_device_copy_from(gg_device *dev, void *dst, gg_devmem *src, size_t offset, size_t size) {
  int rc = check_range(src, offset, size);
  if (rc) return rc;
  return size ? dev->iface->copy_from(dev, dst, src, offset, size) : 0;
}

int gg_device_synchronize(gg_device *dev) {
  return dev->iface->synchronize ? dev->iface->synchronize(dev) : 0;
}

void *gg_device_host_ptr(gg_device *dev, gg_devmem *mem, size_t offset) {
  if (!dev->iface->host_ptr || check_range(mem, offset, 0)) return NULL;
  return dev->iface->host_ptr(dev, mem, offset);
}

int gg_device_launch(gg_device *dev, gg_kernel_fn fn, void *ctx) {
  if (!dev || !fn) return GG_EINVAL;
  return dev->iface->launch ? dev->iface->launch(dev, fn, ctx) : fn(ctx);
}

int gg_device_get_telemetry(gg_device *dev, gg_device_telemetry *out) {
  if (!dev || !out) return GG_EINVAL;
  out->utilization_pct = out->mem_utilization_pct = out->temperature_c = -1;
  return dev->iface->telemetry ? dev->iface->telemetry(dev, out) : GG_EUNSUPPORTED;
}

int gg_device_reset(gg_device *dev) {
  if (!dev) return GG_EINVAL;
  int rc = dev->iface->reset ? dev->iface->reset(dev) : 0;
  if (rc == 0) dev->validated = 0;
  return rc;
}

/* ---- validation ------------------------------------------------------- */

typedef struct host_add_ctx {
  const float *a, *b;
  float *c;
  size_t n;
} host_add_ctx;

static int host_add_kernel(void *p) {
  host_add_ctx *k = p;
  for (size_t i = 0; i < k->n; i++)
    k->c[i] = k->a[i] * 2.0f + k->b[i];
  return 0;
}

/* Default kernel for host-addressable devices: c = 2a + b through launch(). */
static int generic_validate_kernel(gg_device *dev, gg_devmem *a, gg_devmem *b, gg_devmem *c,
                                   size_t n) {
  host_add_ctx k = {gg_device_host_ptr(dev, a, 0), gg_device_host_ptr(dev, b, 0),
                    gg_device_host_ptr(dev, c, 0), n};
  if (!k.a || !k.b || !k.c) return GG_EUNSUPPORTED;
  return gg_device_launch(dev, host_add_kernel, &k);
}

#define VALIDATE_N 4096

int gg_device_validate(gg_device *dev, gg_validation *out) {
  if (!dev || !out) return GG_EINVAL;
  memset(out, 0, sizeof *out);
  uint64_t t0 = gg_now_ns();
  size_t bytes = VALIDATE_N * sizeof(float);
  float *ha = malloc(bytes), *hb = malloc(bytes), *hc = malloc(bytes);
  gg_devmem a = {0}, b = {0}, c = {0};
  int rc = 0;
  const char *step = "alloc";
  if (!ha || !hb || !hc) {
    rc = GG_ENOMEM;
    goto done;
  }
  for (size_t i = 0; i < VALIDATE_N; i++) {
    ha[i] = (float)(i % 97) * 0.5f;
    hb[i] = (float)(i % 13) - 6.0f;
  }
  if ((rc = gg_device_mem_alloc(dev, bytes, &a)) || (rc = gg_device_mem_alloc(dev, bytes, &b)) ||
      (rc = gg_device_mem_alloc(dev, bytes, &c)))
    goto done;
  step = "copy_in";
  if ((rc = gg_device_copy_to(dev, &a, 0, ha, bytes)) ||
      (rc = gg_device_copy_to(dev, &b, 0, hb, bytes)))
    goto done;
  step = "kernel";
  rc = dev->iface->validate_kernel ? dev->iface->validate_kernel(dev, &a, &b, &c, VALIDATE_N)
                                   : generic_validate_kernel(dev, &a, &b, &c, VALIDATE_N);
  if (rc == 0) rc = gg_device_synchronize(dev);
  if (rc) goto done;
  step = "copy_out";
  if ((rc = gg_device_copy_from(dev, hc, &c, 0, bytes))) goto done;
  step = "compare";
  for (size_t i = 0; i < VALIDATE_N; i++) {
    float want = ha[i] * 2.0f + hb[i];
    if (hc[i] != want) {
      rc = GG_EDRIVER;
      snprintf(out->reason, sizeof out->reason,
               "validation kernel computed %g at index %zu, expected %g", (double)hc[i], i,
               (double)want);
      break;
    }
  }
done:;
  int frc = 0;
  if (a.handle) frc |= gg_device_mem_release(dev, &a);
  if (b.handle) frc |= gg_device_mem_release(dev, &b);
  if (c.handle) frc |= gg_device_mem_release(dev, &c);
  if (rc == 0 && frc) {
    step = "free";
    rc = GG_EDRIVER;
  }
  free(ha);
  free(hb);
  free(hc);
  out->elapsed_ms = (double)(gg_now_ns() - t0) / 1e6;
  out->passed = rc == 0;
  out->error = rc;
  snprintf(out->step, sizeof out->step, "%s", rc ? step : "done");
  if (rc && !out->reason[0])
    snprintf(out->reason, sizeof out->reason, "%s failed: %s (%s)", step, gg_strerror(rc),
             gg_err_name(rc));
  dev->validated = rc ? -1 : 1;
  snprintf(dev->unusable_reason, sizeof dev->unusable_reason, "%s", rc ? out->reason : "");
  if (rc)
    GG_ERROR("GPU", "GPU validation failed on %s: %s", dev->name, out->reason);
  else
    GG_INFO("GPU", "validation passed on %s in %.2f ms", dev->name, out->elapsed_ms);
  return 0;
}

int gg_device_usable(const gg_device *dev, const char **reason) {
  if (reason) *reason = dev->validated == 0 ? "not validated yet" : dev->unusable_reason;
  return dev->validated == 1;
}

/* ---- enumeration ------------------------------------------------------ */

int gg__devlist_push(gg__devlist *l, const gg_device_info *info) {
  if (l->count == l->cap) {
    size_t cap = l->cap ? l->cap * 2 : 8;
    gg_device_info *p = realloc(l->items, cap * sizeof *p);
    if (!p) return GG_ENOMEM;
    l->items = p;
    l->cap = cap;
  }
  l->items[l->count++] = *info;
  return 0;
}

int gg_device_enumerate(gg_device_info **out, size_t *count) {
  gg__devlist l = {0};
  gg_device *cpu = NULL;
  int rc = gg_device_open("cpu", &cpu);
  if (rc == 0) {
    gg_device_info info;
    rc = gg_device_get_info(cpu, &info);
    if (rc == 0) rc = gg__devlist_push(&l, &info);
    gg_device_free(cpu);
  }
  /* absent drivers add nothing; a failing driver is logged, not fatal */
  if (rc == 0 && GG_HAVE_CUDA) rc = gg__device_cuda_enumerate(&l);
  if (rc == 0 && GG_HAVE_OPENCL) rc = gg__device_opencl_enumerate(&l);
  if (rc) {
    free(l.items);
    return rc;
  }
  *out = l.items;
  *count = l.count;
  return 0;
}
