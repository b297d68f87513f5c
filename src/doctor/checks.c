/* gpuguard doctor checks: driver, toolkit, libdevice/XLA, TensorFlow-era
 * variables, OpenCL ICDs, memory versus the bundled models, device
 * validation. Every filesystem probe goes through rp() so --root can point
 * the whole thing at a fake installation. */
#include "device/device-impl.h"
#include "doctor/doctor.h"
#if GG_HAVE_CUDA_BACKEND
#include "backend/cuda/cu-impl.h"
#endif
#include "gpuguard/catalog.h"
#include "gpuguard/classify.h"
#include "gpuguard/core.h"
#include "gpuguard/engine.h"
#include "gpuguard/error.h"
#include "gpuguard/log.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PATHN 1024

const char *gg_check_status_name(gg_check_status s) {
  static const char *const n[GG_CHECK_STATUS_COUNT] = {"ok", "info", "warn", "fail"};
  return (s >= 0 && s < GG_CHECK_STATUS_COUNT) ? n[s] : "?";
}

/* ---- helpers -------------------------------------------------------------- */

static char g_step[2][128] = {"starting", ""};
static volatile int g_step_idx;

/* Double-buffered so a signal handler never reads a half-written string. */
static void set_step(const char *what, const char *arg) {
  int next = !g_step_idx;
  snprintf(g_step[next], sizeof g_step[next], "%s%s%s", what, arg ? " " : "", arg ? arg : "");
  g_step_idx = next;
}

const char *gg_doctor_current_step(void) {
  return g_step[g_step_idx];
}

typedef struct dctx {
  gg_doctor_report *r;
  const gg_doctor_opts *o;
  int oom; /* allocation failed somewhere */
} dctx;

/* root + path ("/" root gives the path itself). */
static const char *rp(const dctx *c, const char *path, char *buf, size_t len) {
  if (!strcmp(c->r->root, "/"))
    snprintf(buf, len, "%s", path);
  else
    snprintf(buf, len, "%.500s%.500s", c->r->root, path);
  return buf;
}

static int exists(const dctx *c, const char *path) {
  char b[PATHN];
  struct stat st;
  return stat(rp(c, path, b, sizeof b), &st) == 0;
}

/* Reads a small file (under root) into buf; returns bytes or -1. */
static long read_file(const dctx *c, const char *path, char *buf, size_t len) {
  char b[PATHN];
  FILE *f = fopen(rp(c, path, b, sizeof b), "r");
  if (!f) return -1;
  size_t n = fread(buf, 1, len - 1, f);
  fclose(f);
  buf[n] = 0;
  return (long)n;
}

static const char *env_or(const char *name, const char *def) {
  const char *v = getenv(name);
  return v ? v : def;
}

static gg_check *add(dctx *c, const char *section, const char *id, gg_check_status st,
                     const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static gg_check *add(dctx *c, const char *section, const char *id, gg_check_status st,
                     const char *fmt, ...) {
  static gg_check dummy;
  gg_doctor_report *r = c->r;
  if (r->nchecks == r->capchecks) {
    size_t cap = r->capchecks ? r->capchecks * 2 : 32;
    gg_check *p = realloc(r->checks, cap * sizeof *p);
    if (!p) {
      c->oom = 1;
      memset(&dummy, 0, sizeof dummy);
      return &dummy;
    }
    r->checks = p;
    r->capchecks = cap;
  }
  gg_check *k = &r->checks[r->nchecks++];
  memset(k, 0, sizeof *k);
  snprintf(k->section, sizeof k->section, "%s", section);
  snprintf(k->id, sizeof k->id, "%s", id);
  k->status = st;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(k->message, sizeof k->message, fmt, ap);
  va_end(ap);
  return k;
}

static void set_cause(gg_check *k, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_cause(gg_check *k, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(k->cause, sizeof k->cause, fmt, ap);
  va_end(ap);
}

static void set_fix(gg_check *k, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_fix(gg_check *k, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(k->fix, sizeof k->fix, fmt, ap);
  va_end(ap);
}

static void add_env(dctx *c, const char *name, const char *value, int unset, const char *why) {
  gg_doctor_report *r = c->r;
  for (size_t i = 0; i < r->nenv; i++) {
    if (!strcmp(r->env[i].name, name)) { /* last word wins */
      snprintf(r->env[i].value, sizeof r->env[i].value, "%s", value ? value : "");
      r->env[i].unset = unset;
      snprintf(r->env[i].why, sizeof r->env[i].why, "%s", why);
      return;
    }
  }
  if (r->nenv == r->capenv) {
    size_t cap = r->capenv ? r->capenv * 2 : 8;
    gg_env_line *p = realloc(r->env, cap * sizeof *p);
    if (!p) {
      c->oom = 1;
      return;
    }
    r->env = p;
    r->capenv = cap;
  }
  gg_env_line *e = &r->env[r->nenv++];
  memset(e, 0, sizeof *e);
  snprintf(e->name, sizeof e->name, "%s", name);
  snprintf(e->value, sizeof e->value, "%s", value ? value : "");
  e->unset = unset;
  snprintf(e->why, sizeof e->why, "%s", why);
}

/* "12.4" / "12.4.1" / "13.0.88" -> 12040 / 13000 */
static int cuda_ver_parse(const char *s) {
  int maj = 0, min = 0;
  if (sscanf(s, "%d.%d", &maj, &min) < 1 || maj <= 0 || maj > 99) return 0;
  return maj * 1000 + min * 10;
}

static const char *cuda_ver_str(int v, char *buf, size_t len) {
  snprintf(buf, len, "%d.%d", v / 1000, v % 1000 / 10);
  return buf;
}

/* Minimum Linux driver for each CUDA toolkit (NVIDIA's "CUDA Toolkit and
 * Corresponding Driver Versions" table, GA releases). */
static const struct {
  int cuda;
  int drv[3];
} k_drv_table[] = {
    {13000, {580, 65, 6}}, {12090, {575, 51, 3}},  {12080, {570, 26, 0}}, {12060, {560, 28, 3}},
    {12050, {555, 42, 2}}, {12040, {550, 54, 14}}, {12030, {545, 23, 6}}, {12020, {535, 54, 3}},
    {12010, {530, 30, 2}}, {12000, {525, 60, 13}}, {11080, {520, 61, 5}}, {11070, {515, 43, 4}},
    {11060, {510, 39, 1}}, {11050, {495, 29, 5}},  {11040, {470, 42, 1}}, {11030, {465, 19, 1}},
    {11020, {460, 27, 3}}, {11010, {455, 23, 0}},  {11000, {450, 36, 6}}, {10020, {440, 33, 0}},
    {10010, {418, 39, 0}}, {10000, {410, 48, 0}},
};

static int drv_cmp(const int a[3], const int b[3]) {
  for (int i = 0; i < 3; i++)
    if (a[i] != b[i]) return a[i] < b[i] ? -1 : 1;
  return 0;
}

/* Highest CUDA version a driver "550.54.14" supports, 0 when unknown. */
static int driver_max_cuda(const char *ver) {
  int d[3] = {0, 0, 0};
  if (sscanf(ver, "%d.%d.%d", &d[0], &d[1], &d[2]) < 2) return 0;
  for (size_t i = 0; i < sizeof k_drv_table / sizeof k_drv_table[0]; i++)
    if (drv_cmp(d, k_drv_table[i].drv) >= 0) return k_drv_table[i].cuda;
  return 0;
}

static const char *min_driver_for(int cuda, char *buf, size_t len) {
  buf[0] = 0;
  for (size_t i = 0; i < sizeof k_drv_table / sizeof k_drv_table[0]; i++) {
    if (k_drv_table[i].cuda <= cuda) {
      const int *v = k_drv_table[i].drv;
      snprintf(buf, len, "%d.%02d.%02d", v[0], v[1], v[2]);
      break;
    }
  }
  return buf;
}

/* ---- NVIDIA driver ---------------------------------------------------------- */

static void check_pci(dctx *c) {
  char b[PATHN];
  DIR *d = opendir(rp(c, "/sys/bus/pci/devices", b, sizeof b));
  char list[256] = "";
  int n = 0;
  if (d) {
    struct dirent *e;
    while ((e = readdir(d))) {
      if (e->d_name[0] == '.') continue;
      char p[PATHN], v[32], cls[32];
      snprintf(p, sizeof p, "/sys/bus/pci/devices/%s/vendor", e->d_name);
      if (read_file(c, p, v, sizeof v) <= 0 || strncmp(v, "0x10de", 6)) continue;
      snprintf(p, sizeof p, "/sys/bus/pci/devices/%s/class", e->d_name);
      /* 0x03xxxx: display controller (VGA 0x0300, 3D 0x0302) */
      if (read_file(c, p, cls, sizeof cls) <= 0 || strncmp(cls, "0x03", 4)) continue;
      n++;
      size_t l = strlen(list);
      if (l < sizeof list - 40)
        snprintf(list + l, sizeof list - l, "%s%.32s", l ? ", " : "", e->d_name);
    }
    closedir(d);
  }
  c->r->nvidia_pci_gpus = n;
  if (n)
    add(c, "driver", "nvidia.pci", GG_CHECK_OK, "%d NVIDIA GPU(s) on the PCI bus: %s", n, list);
  else
    add(c, "driver", "nvidia.pci", GG_CHECK_INFO, "no NVIDIA GPU on the PCI bus%s",
        d ? "" : " (/sys/bus/pci/devices not readable)");
}

static int libcuda_works(void) {
  gg__cuda_probe p;
  gg__cuda_probe_run(&p);
  return p.lib_loaded && p.init_rc == 0 && p.device_count > 0;
}

static void check_driver(dctx *c) {
  gg_doctor_report *r = c->r;
  char buf[1024];
  if (read_file(c, "/proc/driver/nvidia/version", buf, sizeof buf) > 0) {
    r->driver_loaded = 1;
    /* "NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.14  Thu Feb 22 ..." */
    const char *p = strstr(buf, "Kernel Module");
    if (p)
      p += strlen("Kernel Module");
    else if ((p = strstr(buf, "NVRM version:")))
      p += 13;
    while (p && *p && !isdigit((unsigned char)*p) && *p != '\n')
      p++;
    if (p && isdigit((unsigned char)*p)) {
      size_t n = strspn(p, "0123456789.");
      if (n >= sizeof r->driver_version) n = sizeof r->driver_version - 1;
      memcpy(r->driver_version, p, n);
      r->driver_version[n] = 0;
    }
    if (r->driver_version[0]) {
      add(c, "driver", "nvidia.driver", GG_CHECK_OK, "NVIDIA kernel driver %s loaded",
          r->driver_version);
    } else {
      gg_check *k = add(c, "driver", "nvidia.driver", GG_CHECK_WARN,
                        "NVIDIA kernel driver loaded, but its version could not be read");
      set_cause(k, "/proc/driver/nvidia/version has no 'Kernel Module <version>' line");
      set_fix(k, "run nvidia-smi to see the driver version");
    }
  } else if (libcuda_works()) {
    /* WSL2 (/usr/lib/wsl/lib/libcuda.so.1 over /dev/dxg) and some containers
     * have a working driver without /proc/driver/nvidia or /dev/nvidia*. */
    add(c, "driver", "nvidia.driver", GG_CHECK_OK,
        "NVIDIA driver reachable through libcuda (no /proc/driver/nvidia/version: WSL2 or a "
        "container)");
  } else if (r->nvidia_pci_gpus) {
    gg_check *k = add(c, "driver", "nvidia.driver", GG_CHECK_FAIL,
                      "an NVIDIA GPU is installed but no NVIDIA kernel driver is loaded");
    set_cause(k, "/proc/driver/nvidia/version is missing: the nvidia kernel module is not "
                 "loaded (not installed, blocked by Secure Boot, or built for another kernel)");
    set_fix(k, "install the driver (Debian/Ubuntu: sudo apt install nvidia-driver, or NVIDIA's "
               ".run installer), then 'sudo modprobe nvidia' or reboot; check 'dmesg | grep -i "
               "nvidia'");
  } else {
    gg_check *k = add(c, "driver", "nvidia.driver", GG_CHECK_WARN,
                      "no NVIDIA driver and no NVIDIA GPU: CUDA devices are unavailable, "
                      "gpuguard will use cpu (and OpenCL if present)");
    set_cause(k, "/proc/driver/nvidia/version is missing and no NVIDIA display controller is "
                 "on the PCI bus");
    set_fix(k, "nothing to fix on a machine without an NVIDIA GPU; on a GPU machine install the "
               "NVIDIA driver (containers: run with --gpus all / the NVIDIA container toolkit)");
  }
  /* device nodes */
  char b[PATHN];
  DIR *d = opendir(rp(c, "/dev", b, sizeof b));
  int nodes = 0, ctl = 0, inaccessible = 0;
  char bad[128] = "";
  if (d) {
    struct dirent *e;
    while ((e = readdir(d))) {
      if (strncmp(e->d_name, "nvidia", 6)) continue;
      char p[PATHN];
      snprintf(p, sizeof p, "/dev/%s", e->d_name);
      if (isdigit((unsigned char)e->d_name[6])) nodes++;
      if (!strcmp(e->d_name, "nvidiactl")) ctl = 1;
      if (access(rp(c, p, b, sizeof b), R_OK | W_OK) != 0 && !inaccessible++)
        snprintf(bad, sizeof bad, "%.120s", p);
    }
    closedir(d);
  }
  r->dev_nodes = nodes;
  if (!nodes && !ctl) {
    gg_check *k = add(c, "driver", "nvidia.dev", r->driver_loaded ? GG_CHECK_FAIL : GG_CHECK_INFO,
                      "no /dev/nvidia* device nodes");
    if (r->driver_loaded) {
      set_cause(k, "the driver is loaded but its device nodes were not created (or this "
                   "container was started without them)");
      set_fix(k, "run 'sudo nvidia-modprobe -u -c=0' (or nvidia-smi once as root); in a "
                 "container pass the devices: docker run --gpus all ...");
    }
  } else if (inaccessible) {
    gg_check *k =
        add(c, "driver", "nvidia.dev", GG_CHECK_FAIL,
            "%d /dev/nvidia* node(s), %s not readable and writable by this user", nodes + ctl, bad);
    set_cause(k, "the CUDA driver opens /dev/nvidia* read-write; without access cuInit fails "
                 "with CUDA_ERROR_NO_DEVICE or UNKNOWN");
    set_fix(k, "sudo usermod -aG video $USER (then log in again), or fix the udev rule that "
               "sets the nodes' mode");
  } else {
    add(c, "driver", "nvidia.dev", GG_CHECK_OK, "%d GPU device node(s) and %s, accessible", nodes,
        ctl ? "/dev/nvidiactl" : "no /dev/nvidiactl");
  }
}

static int visible_devices_hide_all(const char *v) {
  return v && (!*v || !strcmp(v, "-1") || !strcmp(v, "NoDevFiles") || !strcmp(v, "none") ||
               !strcmp(v, "void"));
}

static void check_libcuda(dctx *c) {
  gg_doctor_report *r = c->r;
  gg__cuda_probe p;
  gg__cuda_probe_run(&p);
  r->libcuda_loaded = p.lib_loaded;
  r->cuda_init_rc = p.init_rc;
  r->cuda_devices = p.device_count;
  snprintf(r->libcuda_error, sizeof r->libcuda_error, "%s", p.lib_error);
  const char *cvd = getenv("CUDA_VISIBLE_DEVICES");
  char vb[16];
  if (!p.lib_loaded) {
    gg_check *k = add(c, "driver", "cuda.libcuda", r->driver_loaded ? GG_CHECK_FAIL : GG_CHECK_INFO,
                      "%s cannot be loaded: %s", p.lib_name, p.lib_error);
    if (r->driver_loaded) {
      set_cause(k, "the kernel driver is loaded but its user-space library libcuda.so.1 is "
                   "missing or not on the loader path");
      set_fix(k,
              "install the driver's compute libraries matching version %s (Debian: "
              "libcuda1 / libnvidia-compute-<ver> on Ubuntu), or add their directory to "
              "/etc/ld.so.conf.d and run ldconfig",
              r->driver_version[0] ? r->driver_version : "of the kernel module");
    }
  } else {
    r->driver_cuda_version = p.driver_version;
    snprintf(r->driver_cuda_source, sizeof r->driver_cuda_source, "libcuda");
    add(c, "driver", "cuda.libcuda", GG_CHECK_OK, "%s loaded: driver API supports CUDA %s%s",
        p.lib_name, cuda_ver_str(p.driver_version, vb, sizeof vb),
        p.nvml_loaded ? ", NVML available" : ", NVML not available (no utilization/temperature)");
    if (p.init_rc != 0) {
      gg_check *k = add(c, "driver", "cuda.init", GG_CHECK_FAIL, "cuInit failed: %s (%d)",
                        gg_cuda_error_name(p.init_rc), p.init_rc);
      if (p.init_rc == 100 && visible_devices_hide_all(cvd)) {
        set_cause(k, "CUDA_VISIBLE_DEVICES='%s' hides every GPU", cvd);
        set_fix(k, "unset CUDA_VISIBLE_DEVICES (or set it to the GPU indices to use, e.g. 0)");
      } else if (p.init_rc == 803 || p.init_rc == 804 || p.init_rc == 36) {
        set_cause(k, "libcuda.so.1 and the kernel module come from different driver versions");
        set_fix(k, "reinstall the driver so user-space libraries and kernel module match "
                   "(reboot after a driver upgrade)");
      } else {
        set_cause(k, "%s", gg_fail_class_description(gg_classify_cuda(p.init_rc)));
        set_fix(k, "check the driver checks above; 'dmesg | grep -i -e nvidia -e xid' shows the "
                   "kernel side");
      }
    } else if (p.device_count == 0) {
      add(c, "driver", "cuda.devices", GG_CHECK_WARN, "the CUDA driver sees no device");
    } else {
      add(c, "driver", "cuda.devices", GG_CHECK_OK, "the CUDA driver sees %d device(s)",
          p.device_count);
    }
  }
  /* CUDA_VISIBLE_DEVICES */
  if (!cvd) {
    add(c, "driver", "cuda.visible_devices", GG_CHECK_INFO,
        "CUDA_VISIBLE_DEVICES not set: every GPU is visible");
  } else if (visible_devices_hide_all(cvd)) {
    gg_check *k = add(c, "driver", "cuda.visible_devices",
                      r->nvidia_pci_gpus || r->driver_loaded ? GG_CHECK_FAIL : GG_CHECK_WARN,
                      "CUDA_VISIBLE_DEVICES='%s' hides every CUDA device", cvd);
    set_cause(k, "CUDA numbers only the devices listed in CUDA_VISIBLE_DEVICES; an empty or "
                 "invalid list leaves none");
    set_fix(k, "unset CUDA_VISIBLE_DEVICES (or export CUDA_VISIBLE_DEVICES=0)");
    add_env(c, "CUDA_VISIBLE_DEVICES", NULL, 1,
            "it was set to hide every GPU; unset, CUDA shows all devices");
  } else {
    int hw = r->nvidia_pci_gpus;
    int bad = 0;
    char tmp[256];
    snprintf(tmp, sizeof tmp, "%s", cvd);
    for (char *t = strtok(tmp, ","); t; t = strtok(NULL, ",")) {
      while (*t == ' ')
        t++;
      if (isdigit((unsigned char)*t) && hw && atoi(t) >= hw) bad = 1;
    }
    if (bad) {
      gg_check *k =
          add(c, "driver", "cuda.visible_devices", GG_CHECK_WARN,
              "CUDA_VISIBLE_DEVICES='%s' names an index beyond the %d NVIDIA GPU(s)", cvd, hw);
      set_cause(k, "CUDA stops at the first invalid index: devices listed after it are hidden");
      set_fix(k, "export CUDA_VISIBLE_DEVICES with indices 0..%d only", hw - 1);
    } else {
      add(c, "driver", "cuda.visible_devices", GG_CHECK_INFO,
          "CUDA_VISIBLE_DEVICES='%s': only these GPUs are visible, renumbered from cuda:0", cvd);
    }
  }
}

/* ---- cuDNN and cuBLAS (the CUDA compute backend) --------------------------- */

#if GG_HAVE_CUDA_BACKEND
/* "9.13.0" from cuDNN 9's major*10000 + minor*100 + patch (8.x: *1000). */
static const char *cudnn_ver_str(long v, char *buf, size_t len) {
  if (v >= 90000) snprintf(buf, len, "%ld.%ld.%ld", v / 10000, v % 10000 / 100, v % 100);
  else snprintf(buf, len, "%ld.%ld.%ld", v / 1000, v % 1000 / 100, v % 100);
  return buf;
}

/* A library built for CUDA `need` (13000) against the driver's highest
 * CUDA: a newer major cannot run (the driver refuses it), a newer minor of
 * the same major runs through minor-version compatibility. */
static void lib_vs_driver(dctx *c, const char *id, const char *lib, int need) {
  gg_doctor_report *r = c->r;
  char a[16], b[16], mind[32];
  if (!need || !r->driver_cuda_version) return;
  cuda_ver_str(need, a, sizeof a);
  cuda_ver_str(r->driver_cuda_version, b, sizeof b);
  if (r->driver_cuda_version / 1000 >= need / 1000) {
    add(c, "driver", id, GG_CHECK_OK, "%s is built for CUDA %s; the driver supports CUDA %s", lib, a,
        b);
    return;
  }
  gg_check *k = add(c, "driver", id, GG_CHECK_FAIL,
                    "%s is built for CUDA %s but the driver supports only CUDA %s", lib, a, b);
  set_cause(k, "a library for a newer CUDA major version than the driver's fails at its first "
               "call (CUDNN_STATUS_ARCH_MISMATCH / CUBLAS_STATUS_NOT_INITIALIZED / "
               "'CUDA driver version is insufficient')");
  set_fix(k, "install NVIDIA driver >= %s, or point GPUGUARD_CUDNN_PATH / GPUGUARD_LIBCUBLAS at "
             "a CUDA %d.x build of the library",
          min_driver_for(need, mind, sizeof mind), r->driver_cuda_version / 1000);
}

static void check_cuda_libs(dctx *c) {
  gg_doctor_report *r = c->r;
  gg__cuda_libs l;
  gg__cuda_libs_probe(&l);
  char v[32];
  /* without a usable GPU the libraries are informational only */
  gg_check_status miss = r->libcuda_loaded && r->cuda_init_rc == 0 && r->cuda_devices > 0
                            ? GG_CHECK_FAIL : GG_CHECK_INFO;
  r->cudnn_loaded = l.cudnn_loaded, r->cublas_loaded = l.cublas_loaded;
  r->cudnn_version = l.cudnn_version, r->cudnn_cuda_version = l.cudnn_cudart_version;
  r->cublas_version = l.cublas_version;
  snprintf(r->cudnn_path, sizeof r->cudnn_path, "%s", l.cudnn_path);
  snprintf(r->cublas_path, sizeof r->cublas_path, "%s", l.cublas_path);
  if (!l.cudnn_loaded) {
    gg_check *k = add(c, "driver", "cuda.cudnn", miss, "cuDNN not loaded: %s", l.cudnn_error);
    set_cause(k, "cuda:N sessions need cuDNN 9 for convolutions; without it they compute on the "
                 "host");
    set_fix(k, "install cuDNN 9 for the driver's CUDA version (NVIDIA's cudnn9-cuda-NN package, "
               "or pip's nvidia-cudnn-cuNN wheel) and export GPUGUARD_CUDNN_PATH=<its lib dir>");
  } else {
    add(c, "driver", "cuda.cudnn", GG_CHECK_OK, "cuDNN %s loaded from %s",
        cudnn_ver_str(l.cudnn_version, v, sizeof v), l.cudnn_path);
    lib_vs_driver(c, "cuda.cudnn.compat", "cuDNN", (int)l.cudnn_cudart_version);
  }
  if (!l.cublas_loaded) {
    gg_check *k = add(c, "driver", "cuda.cublas", miss, "cuBLAS not loaded: %s", l.cublas_error);
    set_cause(k, "cuda:N sessions need cuBLAS 12 or 13 for matrix products");
    set_fix(k, "install cuBLAS for the driver's CUDA version (libcublas-NN, or pip's "
               "nvidia-cublas-cuNN wheel) and export GPUGUARD_LIBCUBLAS=<path to libcublas.so.NN>");
  } else {
    add(c, "driver", "cuda.cublas", GG_CHECK_OK, "cuBLAS %d.%d.%d loaded from %s",
        l.cublas_version / 10000, l.cublas_version % 10000 / 100, l.cublas_version % 100,
        l.cublas_path);
    lib_vs_driver(c, "cuda.cublas.compat", "cuBLAS", l.cublas_version / 10000 * 1000);
  }
}

/* The cuDNN validation: one real convolution on the device against the
 * host (gg__cuda_validate_conv), after the device's own validation kernel. */
static void check_cudnn_conv(dctx *c, gg_device *dev, const char *spec) {
  char id[96], err[512] = "";
  double max_err = 0;
  snprintf(id, sizeof id, "device.%.60s.cudnn", spec);
  set_step("running a cuDNN convolution on", spec);
  int rc = gg__cuda_validate_conv(dev, err, sizeof err, &max_err);
  if (!rc) {
    add(c, "devices", id, GG_CHECK_OK, "%s: cuDNN convolution matches the host (max error %.2g)",
        spec, max_err);
    return;
  }
  gg_check *k = add(c, "devices", id, GG_CHECK_FAIL, "%s: cuDNN convolution failed: %s", spec, err);
  gg_fail_class fc = gg_classify_err(rc);
  set_cause(k, "%s (class %s)", rc == GG_EINVAL ? "the device computed a wrong result"
                                                 : gg_fail_class_description(fc),
            gg_fail_class_name(fc));
  set_fix(k, "%s", rc == GG_EINVAL ? "do not compute on this device; check the driver, cuDNN "
                                     "version and 'dmesg | grep -i xid'"
                                   : gg_fail_class_advice(fc));
}
#endif

/* ---- toolkit ---------------------------------------------------------------- */

static int is_toolkit(const dctx *c, const char *dir) {
  char p[PATHN];
  static const char *const marks[] = {"/bin/nvcc", "/include/cuda.h", "/version.json",
                                      "/version.txt", "/nvvm/libdevice"};
  for (size_t i = 0; i < sizeof marks / sizeof marks[0]; i++) {
    snprintf(p, sizeof p, "%s%s", dir, marks[i]);
    if (exists(c, p)) return 1;
  }
  return 0;
}

/* Toolkit version from version.json, version.txt or include/cuda.h. */
static int toolkit_version(const dctx *c, const char *dir, char *ver, size_t vlen, char *src,
                           size_t slen) {
  char p[PATHN], buf[8192];
  snprintf(p, sizeof p, "%s/version.json", dir);
  if (read_file(c, p, buf, sizeof buf) > 0) {
    /* {"cuda" : {"name" : "CUDA SDK", "version" : "12.4.1"}, ...} */
    const char *q = strstr(buf, "\"cuda\"");
    if (q && (q = strstr(q, "\"version\"")) && (q = strchr(q + 9, '"'))) {
      q++;
      size_t n = strcspn(q, "\"");
      if (n && n < vlen) {
        memcpy(ver, q, n);
        ver[n] = 0;
        snprintf(src, slen, "version.json");
        return cuda_ver_parse(ver);
      }
    }
  }
  snprintf(p, sizeof p, "%s/version.txt", dir);
  if (read_file(c, p, buf, sizeof buf) > 0) {
    const char *q = strstr(buf, "CUDA Version ");
    if (q) {
      q += 13;
      size_t n = strspn(q, "0123456789.");
      if (n && n < vlen) {
        memcpy(ver, q, n);
        ver[n] = 0;
        snprintf(src, slen, "version.txt");
        return cuda_ver_parse(ver);
      }
    }
  }
  snprintf(p, sizeof p, "%s/include/cuda.h", dir);
  char bp[PATHN];
  FILE *f = fopen(rp(c, p, bp, sizeof bp), "r");
  if (f) {
    char line[256];
    int v = 0;
    while (fgets(line, sizeof line, f)) {
      if (sscanf(line, "#define CUDA_VERSION %d", &v) == 1) break;
      v = 0;
    }
    fclose(f);
    if (v > 0) {
      snprintf(ver, vlen, "%d.%d", v / 1000, v % 1000 / 10);
      snprintf(src, slen, "include/cuda.h");
      return v;
    }
  }
  return 0;
}

static void strip_root(const dctx *c, const char *real, char *out, size_t len) {
  size_t rl = strlen(c->r->root);
  if (strcmp(c->r->root, "/") && !strncmp(real, c->r->root, rl) && (real[rl] == '/' || !real[rl]))
    snprintf(out, len, "%s", real[rl] ? real + rl : "/");
  else
    snprintf(out, len, "%s", real);
}

static int cmp_desc(const void *a, const void *b) {
  return -strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Candidate toolkit directories in search order. */
static size_t toolkit_candidates(const dctx *c, char cands[][PATHN], const char **why, size_t max) {
  size_t n = 0;
  static const char *const envs[] = {"CUDA_HOME", "CUDA_PATH", "CUDA_ROOT",
                                     "CUDA_TOOLKIT_ROOT_DIR"};
  for (size_t i = 0; i < 4 && n < max; i++) {
    const char *v = getenv(envs[i]);
    if (v && *v) {
      why[n] = envs[i];
      snprintf(cands[n++], PATHN, "%s", v);
    }
  }
  if (n < max) {
    why[n] = "default";
    snprintf(cands[n++], PATHN, "/usr/local/cuda");
  }
  char b[PATHN];
  DIR *d = opendir(rp(c, "/usr/local", b, sizeof b));
  if (d) {
    char *names[32];
    size_t k = 0;
    struct dirent *e;
    while ((e = readdir(d)) && k < 32)
      if (!strncmp(e->d_name, "cuda-", 5)) names[k++] = strdup(e->d_name);
    closedir(d);
    qsort(names, k, sizeof names[0], cmp_desc);
    for (size_t i = 0; i < k; i++) {
      if (names[i] && n < max) {
        why[n] = "versioned";
        snprintf(cands[n++], PATHN, "/usr/local/%s", names[i]);
      }
      free(names[i]);
    }
  }
  static const char *const fixed[] = {"/usr/lib/cuda", "/opt/cuda", "/usr/lib/nvidia-cuda-toolkit"};
  for (size_t i = 0; i < 3 && n < max; i++) {
    why[n] = "distro";
    snprintf(cands[n++], PATHN, "%s", fixed[i]);
  }
  return n;
}

static void check_toolkit(dctx *c) {
  gg_doctor_report *r = c->r;
  char cands[16][PATHN];
  const char *why[16];
  size_t n = toolkit_candidates(c, cands, why, 16);
  char others[512] = "";
  for (size_t i = 0; i < n; i++) {
    int env = strcmp(why[i], "default") && strcmp(why[i], "versioned") && strcmp(why[i], "distro");
    if (!is_toolkit(c, cands[i])) {
      if (env) {
        gg_check *k = add(c, "toolkit", "toolkit.env", GG_CHECK_FAIL, "%s=%s is not a CUDA toolkit",
                          why[i], cands[i]);
        set_cause(k,
                  "%s has no bin/nvcc, include/cuda.h, version.json or nvvm/libdevice; "
                  "tools that trust %s (XLA, CMake, PyTorch extensions) will fail",
                  cands[i], why[i]);
        set_fix(k,
                "unset %s, or export %s=<toolkit root> (doctor --write-env writes the "
                "right value)",
                why[i], why[i]);
      }
      continue;
    }
    char b[PATHN], real[PATHN];
    if (!realpath(rp(c, cands[i], b, sizeof b), real)) snprintf(real, sizeof real, "%s", b);
    char shown[PATHN];
    strip_root(c, real, shown, sizeof shown);
    if (!r->toolkit_root[0]) {
      snprintf(r->toolkit_root, sizeof r->toolkit_root, "%s", cands[i]);
      snprintf(r->toolkit_real, sizeof r->toolkit_real, "%.500s", shown);
    } else if (strcmp(shown, r->toolkit_real) && !strstr(others, shown)) {
      size_t l = strlen(others);
      snprintf(others + l, sizeof others - l, "%s%.200s", l ? ", " : "", shown);
    }
  }
  if (!r->toolkit_root[0]) {
    gg_check *k = add(c, "toolkit", "toolkit.location", GG_CHECK_WARN, "no CUDA toolkit found");
    set_cause(k, "none of $CUDA_HOME, $CUDA_PATH, /usr/local/cuda, /usr/local/cuda-*, "
                 "/usr/lib/cuda, /opt/cuda holds a toolkit; gpuguard itself does not need one "
                 "(the driver JIT-compiles its PTX), but XLA/TensorFlow JIT needs libdevice and "
                 "ptxas from it");
    set_fix(k, "install the toolkit (NVIDIA's cuda-toolkit-X-Y package or Debian's "
               "nvidia-cuda-toolkit) if an XLA/TensorFlow application runs here");
    return;
  }
  int same = !strcmp(r->toolkit_root, r->toolkit_real);
  add(c, "toolkit", "toolkit.location", GG_CHECK_OK, "CUDA toolkit at %s%s%s%s", r->toolkit_root,
      same ? "" : " -> ", same ? "" : r->toolkit_real, "");
  if (others[0]) add(c, "toolkit", "toolkit.others", GG_CHECK_INFO, "other toolkits: %s", others);
  r->toolkit_cuda_version =
      toolkit_version(c, r->toolkit_root, r->toolkit_version, sizeof r->toolkit_version,
                      r->toolkit_version_source, sizeof r->toolkit_version_source);
  if (r->toolkit_cuda_version)
    add(c, "toolkit", "toolkit.version", GG_CHECK_OK, "CUDA toolkit version %s (from %s)",
        r->toolkit_version, r->toolkit_version_source);
  else {
    gg_check *k =
        add(c, "toolkit", "toolkit.version", GG_CHECK_WARN, "CUDA toolkit version unknown");
    set_cause(k, "%s has no version.json, version.txt or include/cuda.h with CUDA_VERSION",
              r->toolkit_root);
    set_fix(k, "run %s/bin/nvcc --version; reinstall the toolkit if it is incomplete",
            r->toolkit_root);
  }
  const char *env_home = getenv("CUDA_HOME");
  if (!env_home || strcmp(env_home, r->toolkit_root))
    add_env(c, "CUDA_HOME", r->toolkit_real, 0,
            "the CUDA toolkit root; XLA, CMake and PyTorch extensions look here");
}

static void check_compat(dctx *c) {
  gg_doctor_report *r = c->r;
  char a[16], b[16], mind[32];
  if (!r->driver_cuda_version && r->driver_version[0]) {
    r->driver_cuda_version = driver_max_cuda(r->driver_version);
    if (r->driver_cuda_version)
      snprintf(r->driver_cuda_source, sizeof r->driver_cuda_source, "driver table");
  }
  if (!r->toolkit_cuda_version) return;
  if (!r->driver_cuda_version) {
    add(c, "toolkit", "toolkit.compat", GG_CHECK_INFO,
        "driver/toolkit compatibility not checked: %s",
        r->driver_loaded ? "the driver's CUDA version is unknown" : "no NVIDIA driver");
    return;
  }
  cuda_ver_str(r->driver_cuda_version, a, sizeof a);
  cuda_ver_str(r->toolkit_cuda_version, b, sizeof b);
  if (r->driver_cuda_version >= r->toolkit_cuda_version) {
    add(c, "toolkit", "toolkit.compat", GG_CHECK_OK, "driver %s supports CUDA %s >= toolkit %s",
        r->driver_version[0] ? r->driver_version : "", a, b);
    return;
  }
  int same_major = r->driver_cuda_version / 1000 == r->toolkit_cuda_version / 1000;
  gg_check *k = add(c, "toolkit", "toolkit.compat", same_major ? GG_CHECK_WARN : GG_CHECK_FAIL,
                    "driver %s supports CUDA %s, older than toolkit %s",
                    r->driver_version[0] ? r->driver_version : "(libcuda)", a, b);
  if (same_major)
    set_cause(k,
              "minor-version compatibility lets CUDA %s applications start, but PTX built "
              "by toolkit %s (XLA's JIT output, gpuguard kernels built with it) cannot be "
              "loaded by this driver: CUDA_ERROR_UNSUPPORTED_PTX_VERSION",
              b, b);
  else
    set_cause(k,
              "applications built with CUDA %s fail at start with 'CUDA driver version is "
              "insufficient for CUDA runtime version'",
              b);
  set_fix(k,
          "install NVIDIA driver >= %s (for CUDA %s), or use a CUDA %s toolkit/framework "
          "build that this driver supports",
          min_driver_for(r->toolkit_cuda_version, mind, sizeof mind), b, a);
}

/* ---- libdevice / XLA ---------------------------------------------------------- */

static int has_libdevice(const dctx *c, const char *dir) {
  char p[PATHN];
  snprintf(p, sizeof p, "%s/nvvm/libdevice/libdevice.10.bc", dir);
  return exists(c, p);
}

/* XLA_FLAGS value of --xla_gpu_cuda_data_dir, "" when absent. */
static void xla_data_dir(const char *flags, char *out, size_t len) {
  out[0] = 0;
  const char *p = flags ? strstr(flags, "--xla_gpu_cuda_data_dir") : NULL;
  if (!p) return;
  p += strlen("--xla_gpu_cuda_data_dir");
  if (*p == '=' || *p == ' ') p++;
  if (*p == '"' || *p == '\'') p++;
  size_t n = strcspn(p, " \t\"'");
  if (n >= len) n = len - 1;
  memcpy(out, p, n);
  out[n] = 0;
}

/* XLA_FLAGS with the data dir replaced (other flags kept). */
static void xla_flags_with(const char *flags, const char *dir, char *out, size_t len) {
  char rest[1024] = "";
  size_t o = 0;
  if (flags) {
    char tmp[1024];
    snprintf(tmp, sizeof tmp, "%s", flags);
    for (char *t = strtok(tmp, " \t"); t; t = strtok(NULL, " \t")) {
      if (!strncmp(t, "--xla_gpu_cuda_data_dir", 23)) continue;
      int w = snprintf(rest + o, sizeof rest - o, "%s%s", o ? " " : "", t);
      if (w < 0 || (size_t)w >= sizeof rest - o) break;
      o += (size_t)w;
    }
  }
  snprintf(out, len, "--xla_gpu_cuda_data_dir=%s%s%s", dir, rest[0] ? " " : "", rest);
}

static void check_libdevice(dctx *c) {
  gg_doctor_report *r = c->r;
  char cands[20][PATHN];
  const char *why[20];
  size_t n = toolkit_candidates(c, cands, why, 16);
  snprintf(cands[n++], PATHN,
           "/usr/lib/nvidia-cuda-toolkit"); /* Debian: libdevice/ without nvvm/ */
  for (size_t i = 0; i < n && !r->libdevice_path[0]; i++) {
    if (has_libdevice(c, cands[i])) {
      char b[PATHN], real[PATHN];
      snprintf(b, sizeof b, "%s/nvvm/libdevice/libdevice.10.bc", cands[i]);
      char rb[PATHN];
      if (!realpath(rp(c, b, rb, sizeof rb), real)) snprintf(real, sizeof real, "%s", rb);
      strip_root(c, real, r->libdevice_path, sizeof r->libdevice_path);
      /* the data dir is the one holding nvvm/, with symlinks resolved */
      char dd[PATHN];
      snprintf(dd, sizeof dd, "%s", r->libdevice_path);
      for (int up = 0; up < 3; up++) {
        char *s = strrchr(dd, '/');
        if (s) *s = 0;
      }
      snprintf(r->libdevice_data_dir, sizeof r->libdevice_data_dir, "%s", dd[0] ? dd : "/");
      if (!has_libdevice(c, r->libdevice_data_dir))
        snprintf(r->libdevice_data_dir, sizeof r->libdevice_data_dir, "%s", cands[i]);
    }
  }
  if (r->libdevice_path[0]) {
    add(c, "libdevice", "libdevice.location", GG_CHECK_OK,
        "libdevice.10.bc at %s (XLA data dir %s)", r->libdevice_path, r->libdevice_data_dir);
  } else if (exists(c, "/usr/lib/nvidia-cuda-toolkit/libdevice/libdevice.10.bc")) {
    gg_check *k = add(c, "libdevice", "libdevice.location", GG_CHECK_WARN,
                      "libdevice.10.bc only at /usr/lib/nvidia-cuda-toolkit/libdevice (Debian "
                      "layout, no nvvm/ directory)");
    set_cause(k, "XLA looks for <data dir>/nvvm/libdevice/libdevice.10.bc");
    set_fix(k, "export XLA_FLAGS=--xla_gpu_cuda_data_dir=/usr/lib/cuda (Debian's nvidia-cuda-"
               "toolkit provides /usr/lib/cuda/nvvm/libdevice)");
  } else {
    gg_check *k = add(
        c, "libdevice", "libdevice.location", r->toolkit_root[0] ? GG_CHECK_FAIL : GG_CHECK_WARN,
        "libdevice.10.bc not found%s%s", r->toolkit_root[0] ? " in toolkit " : "", r->toolkit_root);
    set_cause(k, "XLA/TensorFlow JIT compilation will fail with 'libdevice not found at "
                 "./libdevice.10.bc'");
    set_fix(k, "install the toolkit's NVVM component (NVIDIA repo: apt install cuda-nvvm-X-Y; "
               "Debian: apt install nvidia-cuda-toolkit), then re-run gpuguard doctor");
  }
  /* XLA_FLAGS */
  const char *flags = getenv("XLA_FLAGS");
  xla_data_dir(flags, r->xla_data_dir, sizeof r->xla_data_dir);
  char want[1200];
  if (r->xla_data_dir[0]) {
    r->xla_data_dir_ok = has_libdevice(c, r->xla_data_dir);
    if (r->xla_data_dir_ok) {
      add(c, "libdevice", "xla.flags", GG_CHECK_OK,
          "XLA_FLAGS --xla_gpu_cuda_data_dir=%s contains nvvm/libdevice/libdevice.10.bc",
          r->xla_data_dir);
    } else {
      gg_check *k = add(c, "libdevice", "xla.flags", GG_CHECK_FAIL,
                        "XLA_FLAGS --xla_gpu_cuda_data_dir=%s has no "
                        "nvvm/libdevice/libdevice.10.bc",
                        r->xla_data_dir);
      set_cause(k, "XLA will fail with \"Can't find libdevice directory %s/nvvm/libdevice\"",
                r->xla_data_dir);
      if (r->libdevice_data_dir[0]) {
        xla_flags_with(flags, r->libdevice_data_dir, want, sizeof want);
        set_fix(k, "export XLA_FLAGS=\"%s\"", want);
        add_env(c, "XLA_FLAGS", want, 0,
                "XLA's JIT needs <dir>/nvvm/libdevice/libdevice.10.bc; the old value pointed "
                "to a directory without it");
      } else {
        set_fix(k, "install libdevice (see libdevice.location) and point "
                   "--xla_gpu_cuda_data_dir at the toolkit root");
      }
    }
  } else if (r->libdevice_data_dir[0]) {
    int default_ok = has_libdevice(c, "/usr/local/cuda");
    gg_check *k = add(c, "libdevice", "xla.flags", default_ok ? GG_CHECK_INFO : GG_CHECK_WARN,
                      "XLA_FLAGS has no --xla_gpu_cuda_data_dir%s",
                      default_ok ? "; XLA's default /usr/local/cuda has libdevice" : "");
    xla_flags_with(flags, r->libdevice_data_dir, want, sizeof want);
    if (!default_ok) {
      set_cause(k,
                "XLA only looks in /usr/local/cuda and next to its own files; libdevice is "
                "in %s",
                r->libdevice_data_dir);
      set_fix(k, "export XLA_FLAGS=\"%s\"", want);
    }
    add_env(c, "XLA_FLAGS", want, 0,
            "tells XLA's JIT where nvvm/libdevice/libdevice.10.bc is, so it never fails with "
            "'libdevice not found'");
  }
  if (r->toolkit_real[0]) {
    char p[PATHN], binp[PATHN];
    snprintf(binp, sizeof binp, "%s/bin", r->toolkit_real);
    snprintf(p, sizeof p, "%s/ptxas", binp);
    const char *path = env_or("PATH", "");
    char binq[PATHN];
    snprintf(binq, sizeof binq, "%s/bin", r->toolkit_root);
    if (exists(c, p) && !strstr(path, binp) && !strstr(path, binq)) {
      char v[1200];
      snprintf(v, sizeof v, "%s:$PATH", binp);
      add_env(c, "PATH", v, 0, "XLA runs ptxas and nvcc from PATH to compile PTX");
    }
  }
}

/* ---- TensorFlow-era environment ----------------------------------------------- */

typedef struct env_doc {
  const char *name;
  int always;       /* print even when unset */
  const char *what; /* what it does, and whether gpuguard reads it */
} env_doc;

static const env_doc k_env_docs[] = {
    {"TF_FORCE_GPU_ALLOW_GROWTH", 1,
     "TensorFlow: allocate GPU memory on demand instead of ~all of it at start; gpuguard "
     "ignores it (its pool grows on demand and is capped by its memory budget)"},
    {"TF_XLA_FLAGS", 1,
     "TensorFlow: XLA auto-clustering (--tf_xla_auto_jit=2) and friends; gpuguard has no XLA "
     "and ignores it"},
    {"TF_GPU_THREAD_MODE", 1,
     "TensorFlow: gpu_private gives each GPU its own launch threads; gpuguard ignores it (one "
     "worker per device)"},
    {"TF_GPU_THREAD_COUNT", 0, "TensorFlow: threads per GPU with gpu_private; ignored here"},
    {"TF_GPU_ALLOCATOR", 0,
     "TensorFlow: cuda_malloc_async uses the driver's stream-ordered allocator; ignored here"},
    {"TF_CPP_MIN_LOG_LEVEL", 0, "TensorFlow C++ log level; gpuguard uses --log-level"},
    {"TF_ENABLE_ONEDNN_OPTS", 0, "TensorFlow CPU oneDNN kernels; ignored here"},
    {"TF_CUDNN_USE_AUTOTUNE", 0, "TensorFlow cuDNN autotuning; gpuguard does not use cuDNN"},
    {"PYTORCH_CUDA_ALLOC_CONF", 0, "PyTorch caching allocator settings; ignored here"},
    {"CUDA_LAUNCH_BLOCKING", 0,
     "1 makes every CUDA launch synchronous (debugging only: errors point at the right kernel, "
     "everything is slower); honoured by the driver for gpuguard too"},
    {"CUDA_DEVICE_ORDER", 0,
     "PCI_BUS_ID numbers CUDA devices like nvidia-smi; the default FASTEST_FIRST may not; "
     "honoured by the driver, so it changes what cuda:N means"},
    {"CUDA_CACHE_DISABLE", 0,
     "1 disables the driver's PTX JIT cache: gpuguard's kernels are recompiled at every start"},
    {"CUDA_CACHE_PATH", 0, "where the driver caches JIT-compiled PTX (~/.nv/ComputeCache)"},
    {"CUDA_MODULE_LOADING", 0, "LAZY defers loading kernels until first use (CUDA >= 11.7)"},
};

static void check_env(dctx *c) {
  for (size_t i = 0; i < sizeof k_env_docs / sizeof k_env_docs[0]; i++) {
    const env_doc *e = &k_env_docs[i];
    const char *v = getenv(e->name);
    char id[64];
    snprintf(id, sizeof id, "env.%s", e->name);
    if (!v && !e->always) continue;
    if (!v) {
      add(c, "env", id, GG_CHECK_INFO, "%s not set (%s)", e->name, e->what);
      continue;
    }
    gg_check_status st = GG_CHECK_INFO;
    const char *cause = NULL, *fix = NULL;
    if (!strcmp(e->name, "TF_FORCE_GPU_ALLOW_GROWTH") && strcmp(v, "true") && strcmp(v, "false")) {
      st = GG_CHECK_WARN;
      cause = "TensorFlow only accepts 'true' or 'false' and refuses to start otherwise";
      fix = "export TF_FORCE_GPU_ALLOW_GROWTH=true";
    } else if (!strcmp(e->name, "CUDA_LAUNCH_BLOCKING") && !strcmp(v, "1")) {
      st = GG_CHECK_WARN;
      cause = "every kernel launch waits for completion: fine for debugging, slow in service";
      fix = "unset CUDA_LAUNCH_BLOCKING outside debugging sessions";
    } else if (!strcmp(e->name, "CUDA_CACHE_DISABLE") && !strcmp(v, "1")) {
      st = GG_CHECK_WARN;
      cause = "the driver JIT-compiles every PTX module again at each start";
      fix = "unset CUDA_CACHE_DISABLE";
    }
    gg_check *k = add(c, "env", id, st, "%s=%s: %s", e->name, v, e->what);
    if (cause) set_cause(k, "%s", cause);
    if (fix) set_fix(k, "%s", fix);
  }
  const char *grow = getenv("TF_FORCE_GPU_ALLOW_GROWTH");
  if (!grow || strcmp(grow, "true"))
    add_env(c, "TF_FORCE_GPU_ALLOW_GROWTH", "true", 0,
            "TensorFlow otherwise reserves nearly all GPU memory at start, leaving none for "
            "gpuguard or a second process");
  const char *order = getenv("CUDA_DEVICE_ORDER");
  if (c->r->nvidia_pci_gpus > 1 && (!order || strcmp(order, "PCI_BUS_ID")))
    add_env(c, "CUDA_DEVICE_ORDER", "PCI_BUS_ID", 0,
            "number CUDA devices in PCI order, like nvidia-smi, so cuda:N is the card you think");
  if (getenv("CUDA_LAUNCH_BLOCKING") && !strcmp(getenv("CUDA_LAUNCH_BLOCKING"), "1"))
    add_env(c, "CUDA_LAUNCH_BLOCKING", NULL, 1, "synchronous launches are for debugging only");
  if (getenv("CUDA_CACHE_DISABLE") && !strcmp(getenv("CUDA_CACHE_DISABLE"), "1"))
    add_env(c, "CUDA_CACHE_DISABLE", NULL, 1, "keep the driver's PTX JIT cache");
}

/* ---- OpenCL ---------------------------------------------------------------------- */

static void check_opencl(dctx *c) {
  gg_doctor_report *r = c->r;
  const char *vdir = getenv("OCL_ICD_VENDORS");
  char dir[PATHN];
  snprintf(dir, sizeof dir, "%s", vdir && *vdir && vdir[0] == '/' ? vdir : "/etc/OpenCL/vendors");
  char b[PATHN];
  DIR *d = opendir(rp(c, dir, b, sizeof b));
  if (!d) {
    gg_check *k = add(c, "opencl", "opencl.icd", GG_CHECK_WARN, "no OpenCL ICD directory %s", dir);
    set_cause(k, "without ICD files the OpenCL loader finds no platform");
    set_fix(k, "install an OpenCL driver: NVIDIA's ships nvidia.icd with the driver; for CPU "
               "OpenCL: sudo apt install pocl-opencl-icd");
  } else {
    struct dirent *e;
    char *names[64];
    size_t k = 0;
    while ((e = readdir(d)) && k < 64) {
      size_t l = strlen(e->d_name);
      if (l > 4 && !strcmp(e->d_name + l - 4, ".icd")) names[k++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, k, sizeof names[0], cmp_desc);
    r->icds = calloc(k ? k : 1, sizeof *r->icds);
    if (!r->icds) c->oom = 1;
    if (!k) {
      gg_check *ck = add(c, "opencl", "opencl.icd", GG_CHECK_WARN, "no .icd files in %s", dir);
      set_cause(ck, "the OpenCL loader will find no platform");
      set_fix(ck, "for CPU OpenCL: sudo apt install pocl-opencl-icd; for NVIDIA: install the "
                  "driver's OpenCL part (Debian: nvidia-opencl-icd)");
    }
    for (size_t i = k; i-- > 0;) { /* ascending order */
      if (!names[i]) continue;
      char file[PATHN], content[512], id[64];
      snprintf(file, sizeof file, "%s/%s", dir, names[i]);
      snprintf(id, sizeof id, "opencl.icd.%.50s", names[i]);
      gg_doctor_icd *icd = r->icds ? &r->icds[r->nicds++] : NULL;
      long nread = read_file(c, file, content, sizeof content);
      content[strcspn(content, "\r\n")] = 0;
      char *lib = content;
      while (*lib == ' ' || *lib == '\t')
        lib++;
      if (icd) {
        snprintf(icd->file, sizeof icd->file, "%s", file);
        snprintf(icd->library, sizeof icd->library, "%s", nread > 0 ? lib : "");
      }
      char err[256] = "";
      int ok = 0;
      if (nread < 0) {
        snprintf(err, sizeof err, "cannot read %s: %s", file, strerror(errno));
      } else if (!*lib) {
        snprintf(err, sizeof err, "%s is empty: it must name the vendor's OpenCL library", file);
      } else {
        char libpath[PATHN];
        /* absolute library paths live in the (possibly fake) tree */
        if (lib[0] == '/')
          rp(c, lib, libpath, sizeof libpath);
        else
          snprintf(libpath, sizeof libpath, "%s", lib);
        ok = gg__opencl_try_icd(libpath, err, sizeof err) == 0;
      }
      if (icd) {
        icd->loadable = ok;
        snprintf(icd->error, sizeof icd->error, "%s", err);
      }
      if (ok) {
        add(c, "opencl", id, GG_CHECK_OK, "%s -> %s loads and is an OpenCL ICD", file, lib);
      } else {
        gg_check *ck = add(c, "opencl", id, GG_CHECK_FAIL, "%s -> %s does not load", file,
                           *lib ? lib : "(nothing)");
        set_cause(ck, "%s; the loader skips this vendor, so its devices are missing", err);
        set_fix(ck,
                "reinstall the package that owns %s (dpkg -S %s), or remove the stale "
                "file: sudo rm %s",
                file, file, file);
      }
      free(names[i]);
    }
  }
  gg__cl_probe p;
  gg__opencl_probe_run(&p);
  r->opencl_loader = p.lib_loaded;
  r->opencl_platforms = p.num_platforms;
  if (!p.lib_loaded) {
    gg_check *k = add(c, "opencl", "opencl.loader", GG_CHECK_WARN, "%s cannot be loaded: %s",
                      p.lib_name, p.lib_error);
    set_cause(k, "no OpenCL ICD loader: opencl:P.D devices are unavailable");
    set_fix(k, "sudo apt install ocl-icd-libopencl1");
  } else if (!p.num_platforms) {
    gg_check *k = add(c, "opencl", "opencl.platforms", GG_CHECK_WARN,
                      "the OpenCL loader finds no platform (clGetPlatformIDs: %s)",
                      gg_cl_error_name(p.platforms_rc));
    set_cause(k, "no ICD listed in /etc/OpenCL/vendors could be loaded");
    set_fix(k, "fix or install an ICD (see the opencl.icd lines); CPU OpenCL: sudo apt install "
               "pocl-opencl-icd");
  } else {
    add(c, "opencl", "opencl.platforms", GG_CHECK_OK, "OpenCL loader finds %u platform(s): %s",
        p.num_platforms, p.platforms);
  }
}

/* ---- devices, memory, models ------------------------------------------------------ */

static void find_models(dctx *c) {
  gg_doctor_report *r = c->r;
  /* models_dir is the packages root, as for 'gpuguard serve --models-dir';
   * the catalog says which models and where each file is under it. */
  char root[420];
  if (c->o->models_dir && *c->o->models_dir) {
    snprintf(root, sizeof root, "%.400s", c->o->models_dir);
  } else {
    const char *cache = getenv("GPUGUARD_CACHE");
    const char *home = env_or("HOME", "/root");
    if (cache && *cache)
      snprintf(root, sizeof root, "%.400s/models", cache);
    else
      snprintf(root, sizeof root, "%.400s/.cache/gpuguard/models", home);
  }
  const char *f0 = gg_catalog_at(0)->file, *slash = strrchr(f0, '/');
  snprintf(r->models_dir, sizeof r->models_dir, "%s/%.*s", root, slash ? (int)(slash - f0) : 0,
           f0);
  r->models_total = 0;
  for (int i = 0; i < 4 && (size_t)i < gg_catalog_count(); i++) {
    const gg_model_entry *e = gg_catalog_at((size_t)i);
    char p[PATHN], b[PATHN];
    struct stat st;
    snprintf(r->models[i].name, sizeof r->models[i].name, "%s", e->name);
    /* The weights beside model.json: NAME.bin */
    snprintf(p, sizeof p, "%s/%.*s.bin", root, (int)(strlen(e->file) - strlen(".json")), e->file);
    r->models[i].bytes = stat(rp(c, p, b, sizeof b), &st) == 0 ? (uint64_t)st.st_size : 0;
    r->models_total += r->models[i].bytes;
    /* What the engine will really hold: load and plan it (no run). */
    r->models[i].planned = 0;
    if (!r->models[i].bytes) continue;
    snprintf(p, sizeof p, "%s/%s", root, e->file);
    set_step("planning", e->name);
    gg_model *m = NULL;
    gg_session *s = NULL;
    char err[256];
    gg_session_opts so = {1, GG_ENGINE_AUTO, 0};
    if (gg_model_load(rp(c, p, b, sizeof b), &m, err, sizeof err) == 0 &&
        gg_session_new(m, NULL, 0, &so, &s, err, sizeof err) == 0) {
      gg_engine_mem mem;
      gg_session_memory(s, &mem);
      r->models[i].planned = mem.predicted;
      r->models[i].weights = mem.weights;
    }
    gg_session_free(s);
    gg_model_free(m);
    r->models_planned += r->models[i].planned;
  }
  /* What the guard holds on a device to serve all four: weights stay
   * resident, a request reserves its arena + workspace while it runs. */
  uint64_t w = 0, act = 0;
  for (int i = 0; i < 4; i++) {
    w += r->models[i].weights;
    if (r->models[i].planned - r->models[i].weights > act)
      act = r->models[i].planned - r->models[i].weights;
  }
  r->models_serve = r->models_planned ? w + act : 0;
}

static void check_devices(dctx *c) {
  gg_doctor_report *r = c->r;
  gg_device_info *list = NULL;
  size_t n = 0;
  if (gg_device_enumerate(&list, &n)) {
    c->oom = 1;
    return;
  }
  size_t extra = c->o->extra_device && *c->o->extra_device ? 1 : 0;
  for (size_t i = 0; i < n && extra; i++)
    if (!strcmp(list[i].name, c->o->extra_device)) extra = 0; /* already listed */
  r->devices = calloc(n + extra ? n + extra : 1, sizeof *r->devices);
  if (!r->devices) {
    free(list);
    c->oom = 1;
    return;
  }
  for (size_t i = 0; i < n + extra; i++) {
    const char *spec = i < n ? list[i].name : c->o->extra_device;
    gg_doctor_device *dd = &r->devices[r->ndevices];
    char id[80];
    snprintf(id, sizeof id, "device.%.60s", spec);
    gg_device *dev = NULL;
    set_step("opening", spec);
    int rc = gg_device_open(spec, &dev);
    if (rc) {
      if (i < n)
        dd->info = list[i];
      else
        snprintf(dd->info.name, sizeof dd->info.name, "%s", spec);
      r->ndevices++;
      gg_check *k = add(c, "devices", id, GG_CHECK_FAIL, "%s cannot be opened: %s (%s)", spec,
                        gg_strerror(rc), gg_err_name(rc));
      set_cause(k, "%s", gg_fail_class_description(gg_classify_err(rc)));
      set_fix(k, "see the driver/OpenCL lines above; an unusable device is never used");
      continue;
    }
    if (gg_device_get_info(dev, &dd->info) != 0 && i < n) dd->info = list[i];
    dd->have_telemetry = gg_device_get_telemetry(dev, &dd->telemetry) == 0;
    r->ndevices++;

    if (c->o->validate) {
      set_step("validating", spec);
      gg_device_validate(dev, &dd->validation);
      dd->validated = 1;
      if (dd->validation.passed) {
        add(c, "devices", id, GG_CHECK_OK, "%s (%s): validation passed in %.2f ms", spec,
            dd->info.description, dd->validation.elapsed_ms);
#if GG_HAVE_CUDA_BACKEND
        if (gg_device_get_kind(dev) == GG_DEVICE_CUDA && r->cudnn_loaded) check_cudnn_conv(c, dev, spec);
#endif
      } else {
        gg_check *k = add(c, "devices", id, GG_CHECK_FAIL,
                          "%s (%s): validation failed at step '%s'; marked unusable", spec,
                          dd->info.description, dd->validation.step);
        gg_fail_class fc = gg_classify_err(dd->validation.error);
        set_cause(k, "%s (class %s)", dd->validation.reason, gg_fail_class_name(fc));
        set_fix(k, "%s", gg_fail_class_advice(fc));
      }
    } else {
      add(c, "devices", id, GG_CHECK_INFO, "%s (%s): validation skipped (--no-validate)", spec,
          dd->info.description);
    }
    char tid[80];
    snprintf(tid, sizeof tid, "telemetry.%.60s", spec);
    if (dd->have_telemetry)
      add(c, "devices", tid, GG_CHECK_INFO, "%s: %d%% busy, memory controller %d%% busy, %d C",
          spec, dd->telemetry.utilization_pct, dd->telemetry.mem_utilization_pct,
          dd->telemetry.temperature_c);
    gg_device_free(dev);
  }
  free(list);

  /* memory versus the bundled models */
  find_models(c);
  char tot[32], fr[32], need[32];
  gg_format_size(r->models_total, need, sizeof need);
  if (!r->models_total) {
    gg_check *k = add(c, "memory", "memory.models", GG_CHECK_WARN, "bundled models not found in %s",
                      r->models_dir);
    set_cause(k, "blazeface/mobilefacenet/nanodet/faceres .bin files are missing, so memory "
                 "needs cannot be compared");
    set_fix(k, "run scripts/fetch-models.sh (or set GPUGUARD_CACHE / --models-dir)");
  } else {
    char parts[512] = "";
    for (int i = 0; i < 4; i++) {
      char s1[32], s2[32];
      size_t l = strlen(parts);
      if (r->models[i].planned)
        snprintf(parts + l, sizeof parts - l, "%s%s %s (file %s)", i ? ", " : "", r->models[i].name,
                 gg_format_size(r->models[i].planned, s1, sizeof s1),
                 gg_format_size(r->models[i].bytes, s2, sizeof s2));
      else
        snprintf(parts + l, sizeof parts - l, "%s%s %s", i ? ", " : "", r->models[i].name,
                 r->models[i].bytes ? "not loadable" : "missing");
    }
    if (r->models_serve) {
      gg_format_size(r->models_serve, need, sizeof need);
      add(c, "memory", "memory.models", GG_CHECK_INFO,
          "bundled models, planned peak per request (weights + activations + workspace): %s; "
          "serving all four one request at a time needs %s (their weights stay loaded, a "
          "request's activations and workspace are reserved while it runs)",
          parts, need);
    } else {
      add(c, "memory", "memory.models", GG_CHECK_INFO,
          "bundled model weight files: %s total (%s); the engine could not plan them", need, parts);
    }
  }
  uint64_t want = r->models_serve ? r->models_serve : r->models_total;
  const char *what =
      r->models_serve ? "memory needed to serve the bundled models" : "bundled weights";
  for (size_t i = 0; i < r->ndevices; i++) {
    const gg_device_info *in = &r->devices[i].info;
    char id[80];
    snprintf(id, sizeof id, "memory.%.60s", in->name);
    if (!in->total_mem) continue;
    gg_format_size(in->total_mem, tot, sizeof tot);
    gg_format_size(in->free_mem, fr, sizeof fr);
    if (!want) {
      add(c, "memory", id, GG_CHECK_INFO, "%s: %s total, %s free", in->name, tot, fr);
    } else if (!in->free_mem) {
      add(c, "memory", id, GG_CHECK_INFO,
          "%s: %s total, free memory unknown (opening the device tells); the %s is %s", in->name,
          tot, what, need);
    } else if (in->free_mem < want) {
      gg_check *k =
          add(c, "memory", id, GG_CHECK_FAIL, "%s: %s total, %s free: less than the %s (%s)",
              in->name, tot, fr, what, need);
      set_cause(k, "serving all bundled models on this device fails with out-of-memory; gpuguard's "
                   "admission control will send requests to the fallback device instead");
      set_fix(k, "free device memory (nvidia-smi shows other processes), serve fewer models "
                 "(--models), or use another device");
    } else {
      add(c, "memory", id, GG_CHECK_OK, "%s: %s total, %s free: the %s (%s) fits %.0f times",
          in->name, tot, fr, what, need, (double)in->free_mem / (double)want);
    }
  }
}

/* ---- entry ------------------------------------------------------------------------- */

int gg_doctor_run(const gg_doctor_opts *opts, gg_doctor_report **out) {
  static const gg_doctor_opts defaults = {NULL, 1, NULL, NULL};
  if (!out) return GG_EINVAL;
  *out = NULL;
  gg_doctor_report *r = calloc(1, sizeof *r);
  if (!r) return GG_ENOMEM;
  dctx c = {r, opts ? opts : &defaults, 0};
  const char *root = c.o->root;
  if (!root || !*root) root = "/";
  snprintf(r->root, sizeof r->root, "%s", root);
  size_t rl = strlen(r->root);
  while (rl > 1 && r->root[rl - 1] == '/')
    r->root[--rl] = 0;
  r->cuda_init_rc = -1;
  set_step("scanning the PCI bus", NULL);
  check_pci(&c);
  set_step("reading the NVIDIA driver state", NULL);
  check_driver(&c);
  set_step("loading libcuda and calling cuInit", NULL);
  check_libcuda(&c);
#if GG_HAVE_CUDA_BACKEND
  set_step("loading cuDNN and cuBLAS", NULL);
  check_cuda_libs(&c);
#endif
  set_step("looking for the CUDA toolkit", NULL);
  check_toolkit(&c);
  check_compat(&c);
  set_step("looking for libdevice", NULL);
  check_libdevice(&c);
  check_env(&c);
  set_step("loading OpenCL ICDs", NULL);
  check_opencl(&c);
  set_step("enumerating devices", NULL);
  check_devices(&c);
  set_step("done", NULL);
  if (c.oom) {
    gg_doctor_report_free(r);
    return GG_ENOMEM;
  }
  *out = r;
  return 0;
}

void gg_doctor_report_free(gg_doctor_report *r) {
  if (!r) return;
  free(r->checks);
  free(r->icds);
  free(r->devices);
  free(r->env);
  free(r);
}

int gg_doctor_exit_status(const gg_doctor_report *r) {
  int worst = 0;
  for (size_t i = 0; r && i < r->nchecks; i++) {
    if (r->checks[i].status == GG_CHECK_FAIL) return 2;
    if (r->checks[i].status == GG_CHECK_WARN) worst = 1;
  }
  return worst;
}
