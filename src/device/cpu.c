/* The cpu device: host memory, always present. */
#include "device/device-impl.h"
#include "gpuguard/core.h"
#include "gpuguard/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CPU_ALIGN 64

static int cpu_get_info(gg_device *dev, gg_device_info *info) {
  gg_proc_mem pm;
  if (gg_proc_mem_read(&pm) == 0) {
    info->total_mem = pm.host_total_bytes;
    info->free_mem = pm.host_available_bytes;
  }
  snprintf(info->vendor, sizeof info->vendor, "host");
  info->compute_units = (int)sysconf(_SC_NPROCESSORS_ONLN);
  FILE *f = fopen("/proc/cpuinfo", "r");
  if (f) {
    char line[256];
    while (fgets(line, sizeof line, f)) {
      if (!strncmp(line, "model name", 10)) {
        char *p = strchr(line, ':');
        if (p) {
          p++;
          while (*p == ' ') p++;
          p[strcspn(p, "\n")] = 0;
          snprintf(info->description, sizeof info->description, "%s", p);
        }
        break;
      }
    }
    fclose(f);
  }
  if (!info->description[0]) snprintf(info->description, sizeof info->description, "host CPU");
  return 0;
}

static int cpu_mem_alloc(gg_device *dev, size_t size, gg_devmem *out) {
  size_t rounded = (size + CPU_ALIGN - 1) / CPU_ALIGN * CPU_ALIGN;
  if (rounded < size) return GG_EDEV_OOM;
  void *p = aligned_alloc(CPU_ALIGN, rounded);
  if (!p) return GG_EDEV_OOM;
  out->handle = p;
  return 0;
}

static int cpu_mem_release(gg_device *dev, gg_devmem *mem) {
  free(mem->handle);
  return 0;
}

static int cpu_copy_to(gg_device *dev, gg_devmem *dst, size_t off, const void *src, size_t n) {
  memcpy((char *)dst->handle + off, src, n);
  return 0;
}

static int cpu_copy_from(gg_device *dev, void *dst, gg_devmem *src, size_t off, size_t n) {
  memcpy(dst, (const char *)src->handle + off, n);
  return 0;
}

static void *cpu_host_ptr(gg_device *dev, gg_devmem *mem, size_t off) {
  return (char *)mem->handle + off;
}

static const gg_device_i k_cpu_iface = {
    .get_info = cpu_get_info,
    .mem_alloc = cpu_mem_alloc,
    .mem_release = cpu_mem_release,
    .copy_to = cpu_copy_to,
    .copy_from = cpu_copy_from,
    .host_ptr = cpu_host_ptr,
};

int gg__device_cpu_open(const char *args, gg_device **out) {
  if (args && *args && strcmp(args, "0") != 0) return GG_ENODEV;
  gg_device *d = gg__device_new(&k_cpu_iface, NULL, GG_DEVICE_CPU, "cpu");
  if (!d) return GG_ENOMEM;
  *out = d;
  return 0;
}
