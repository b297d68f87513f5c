/* OpenCL backend runtime: entry points, the kernel program (built once per
 * device and cached on disk), kernel launches and error classification. */
#include "backend/opencl/ocl-impl.h"
#include "device/device-impl.h"
#include "gpuguard/classify.h"
#include "gpuguard/core.h"
#include "gpuguard/error.h"
#include "gpuguard/log.h"

#include "backend/opencl/kernels-src.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>


/* The options every build uses: no fast-math, so results follow IEEE float
 * like the reference kernels. */
#define GG_OCL_BASE_OPTIONS "-cl-std=CL1.2"

static int kx_launch(gg_kx *x, const gg_node *n, gg_kx_kernel k, int dims, const size_t *global,
                     const size_t *local, const gg_karg *args, int nargs, char *err,
                     size_t errlen);
static int kx_gemm(gg_kx *x, const gg_node *n, const gg_kx_gemm_args *g, char *err,
                   size_t errlen);

int gg__ocl_fail(gg_ocl *o, const gg_node *n, int r, const char *call, char *err,
                 size_t errlen) {
  gg_fail_class c = gg_classify_cl(r);
  char where[256] = "";
  if (n) snprintf(where, sizeof where, "node '%.160s' (%s): ", n->name, n->src_op);
  if (err && errlen)
    snprintf(err, errlen, "%s%s failed on %s: %s (%d), class %s: %s", where, call,
             gg_device_name(o->dev), gg_cl_error_name(r), r, gg_fail_class_name(c),
             gg_fail_class_advice(c));
  if (c == GG_FAIL_OOM)
    GG_DEBUG("GPU", "%s%s on %s: %s", where, call, gg_device_name(o->dev), gg_cl_error_name(r));
  else
    GG_ERROR("GPU", "%s%s failed on %s: %s (%d), class %s", where, call, gg_device_name(o->dev),
             gg_cl_error_name(r), r, gg_fail_class_name(c));
  return gg_err_from_cl(r);
}

#define LOADSYM(lib, sym)                                                                      \
  do {                                                                                         \
    *(void **)(&o->fn.sym) = dlsym(lib, "cl" #sym);                                            \
    if (!o->fn.sym) {                                                                          \
      snprintf(err, errlen, "the OpenCL library has no cl%s (OpenCL 1.2 is needed)", #sym);   \
      return GG_EDRIVER;                                                                       \
    }                                                                                          \
  } while (0)

static int load_fns(gg_ocl *o, void *lib, char *err, size_t errlen) {
  LOADSYM(lib, GetDeviceInfo);
  LOADSYM(lib, CreateProgramWithSource);
  LOADSYM(lib, CreateProgramWithBinary);
  LOADSYM(lib, BuildProgram);
  LOADSYM(lib, GetProgramBuildInfo);
  LOADSYM(lib, GetProgramInfo);
  LOADSYM(lib, CreateKernel);
  LOADSYM(lib, ReleaseKernel);
  LOADSYM(lib, ReleaseProgram);
  LOADSYM(lib, SetKernelArg);
  LOADSYM(lib, EnqueueNDRangeKernel);
  LOADSYM(lib, Finish);
  return 0;
}

/* ---- the disk cache ------------------------------------------------------
 * One file per (device name, driver version, device version, options,
 * source): "prog-<fnv64>.bin" = "GGCLPRG1", payload length (u64), FNV-1a of
 * the payload (u64), payload (the device binary). A file that fails any
 * check, or that the driver refuses, is rebuilt from source and replaced. */

static const char k_magic[8] = {'G', 'G', 'C', 'L', 'P', 'R', 'G', '1'};

static uint64_t fnv1a(uint64_t h, const void *p, size_t n) {
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ull;
  return h;
}
#define FNV_INIT 0xcbf29ce484222325ull

static void dev_str(gg_ocl *o, cl_uint what, char *buf, size_t len) {
  buf[0] = 0;
  if (o->fn.GetDeviceInfo(o->device, what, len - 1, buf, NULL)) buf[0] = 0;
  buf[len - 1] = 0;
}

static void cache_dir_for(const gg_ocl_params *p, char *out, size_t len) {
  const char *c = getenv("GPUGUARD_CACHE"), *home = getenv("HOME");
  if (p->cache_dir)
    snprintf(out, len, "%s", p->cache_dir);
  else if (c && *c)
    snprintf(out, len, "%s/opencl", c);
  else if (home && *home)
    snprintf(out, len, "%s/.cache/gpuguard/opencl", home);
  else
    out[0] = 0;
}

static void mkdir_p(const char *dir) {
  char tmp[512];
  snprintf(tmp, sizeof tmp, "%s", dir);
  for (char *s = tmp + 1; *s; s++) {
    if (*s != '/') continue;
    *s = 0;
    mkdir(tmp, 0700);
    *s = '/';
  }
  mkdir(tmp, 0700);
}

/* Reads and checks a cache file; *bin malloc'd. 0, or -1 with why. */
static int cache_read(const char *path, unsigned char **bin, size_t *len, const char **why) {
  FILE *f = fopen(path, "rb");
  *bin = NULL;
  if (!f) {
    *why = NULL; /* simply absent */
    return -1;
  }
  char magic[8];
  uint64_t n = 0, h = 0;
  int rc = -1;
  *why = "truncated header";
  if (fread(magic, 1, 8, f) == 8 && fread(&n, 8, 1, f) == 1 && fread(&h, 8, 1, f) == 1) {
    *why = "bad magic";
    if (!memcmp(magic, k_magic, 8)) {
      *why = "implausible length";
      if (n > 0 && n < ((uint64_t)256 << 20)) {
        unsigned char *b = malloc((size_t)n + 1);
        *why = "out of memory";
        if (b) {
          *why = "shorter than its header says, or longer";
          if (fread(b, 1, (size_t)n, f) == n && fgetc(f) == EOF) {
            *why = "checksum mismatch";
            if (fnv1a(FNV_INIT, b, (size_t)n) == h) {
              *bin = b, *len = (size_t)n, rc = 0;
              b = NULL;
            }
          }
          free(b);
        }
      }
    }
  }
  fclose(f);
  return rc;
}

/* Writes atomically (temporary file + rename) so a crash never leaves a
 * half-written file under the final name. Failures only cost a rebuild. */
static void cache_write(const char *dir, const char *path, const unsigned char *bin, size_t len) {
  mkdir_p(dir);
  char tmp[600];
  snprintf(tmp, sizeof tmp, "%s.%ld.tmp", path, (long)getpid());
  FILE *f = fopen(tmp, "wb");
  if (!f) {
    GG_WARN("GPU", "cannot write the OpenCL program cache %s: %s (programs will be rebuilt "
                   "at every start)", tmp, strerror(errno));
    return;
  }
  uint64_t n = len, h = fnv1a(FNV_INIT, bin, len);
  int ok = fwrite(k_magic, 1, 8, f) == 8 && fwrite(&n, 8, 1, f) == 1 &&
           fwrite(&h, 8, 1, f) == 1 && fwrite(bin, 1, len, f) == len;
  ok = (fclose(f) == 0) && ok;
  if (!ok || rename(tmp, path)) {
    GG_WARN("GPU", "cannot write the OpenCL program cache %s: %s", path, strerror(errno));
    unlink(tmp);
  }
}

static int build(gg_ocl *o, cl_program prog, const char *opts, char *err, size_t errlen) {
  cl_int r = o->fn.BuildProgram(prog, 1, &o->device, opts, NULL, NULL);
  if (!r) return 0;
  char log[4096] = "";
  if (o->fn.GetProgramBuildInfo(prog, o->device, CLX_PROGRAM_BUILD_LOG, sizeof log - 1, log,
                                NULL))
    log[0] = 0;
  log[sizeof log - 1] = 0;
  GG_ERROR("GPU", "%s: OpenCL kernels failed to build: %s", gg_device_name(o->dev), log);
  int rc = gg__ocl_fail(o, NULL, r, "clBuildProgram", err, errlen);
  size_t u = strlen(err);
  if (u + 16 < errlen) snprintf(err + u, errlen - u, "; build log: %s", log);
  return rc;
}

static int program_from_binary(gg_ocl *o, const unsigned char *bin, size_t len, const char *opts) {
  cl_int st = 0, r = 0;
  cl_program p = o->fn.CreateProgramWithBinary(o->context, 1, &o->device, &len, &bin, &st, &r);
  if (!p || r || st) {
    GG_WARN("GPU", "%s: the driver refuses the cached OpenCL program (%s / %s); rebuilding",
            gg_device_name(o->dev), gg_cl_error_name(r), gg_cl_error_name(st));
    if (p) o->fn.ReleaseProgram(p);
    return -1;
  }
  char e[256];
  if (build(o, p, opts, e, sizeof e)) {
    o->fn.ReleaseProgram(p);
    return -1;
  }
  o->program = p;
  return 0;
}

/* The built program's binary for the disk cache; -1 (logged) when the
 * driver will not give one: the program is then simply rebuilt next time. */
static int program_binary(gg_ocl *o, unsigned char **bin, size_t *len) {
  size_t n = 0;
  cl_int r = o->fn.GetProgramInfo(o->program, CLX_PROGRAM_BINARY_SIZES, sizeof n, &n, NULL);
  if (r || !n) {
    if (r) gg__ocl_fail(o, NULL, r, "clGetProgramInfo(CL_PROGRAM_BINARY_SIZES)", NULL, 0);
    return -1;
  }
  unsigned char *b = malloc(n);
  if (!b) return -1;
  if ((r = o->fn.GetProgramInfo(o->program, CLX_PROGRAM_BINARIES, sizeof b, &b, NULL))) {
    gg__ocl_fail(o, NULL, r, "clGetProgramInfo(CL_PROGRAM_BINARIES)", NULL, 0);
    free(b);
    return -1;
  }
  *bin = b, *len = n;
  return 0;
}

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int make_program(gg_ocl *o, char *err, size_t errlen) {
  double t0 = now_ms();
  char opts[512], name[256], drv[128], ver[128];
  snprintf(opts, sizeof opts, "%s%s%s", GG_OCL_BASE_OPTIONS, o->p.build_options ? " " : "",
           o->p.build_options ? o->p.build_options : "");
  dev_str(o, CLX_DEVICE_NAME, name, sizeof name);
  dev_str(o, CLX_DRIVER_VERSION, drv, sizeof drv);
  dev_str(o, CLX_DEVICE_VERSION, ver, sizeof ver);
  uint64_t key = FNV_INIT;
  const char *parts[] = {name, drv, ver, opts, gg_ocl_kernels_src};
  for (size_t i = 0; i < sizeof parts / sizeof *parts; i++)
    key = fnv1a(key, parts[i], strlen(parts[i]) + 1);
  o->st.cache_path[0] = 0;
  if (o->cache_dir[0])
    snprintf(o->st.cache_path, sizeof o->st.cache_path, "%.380s/prog-%016llx.bin", o->cache_dir,
             (unsigned long long)key);

  if (o->st.cache_path[0]) {
    unsigned char *bin = NULL;
    size_t len = 0;
    const char *why = NULL;
    if (!cache_read(o->st.cache_path, &bin, &len, &why)) {
      int ok = !program_from_binary(o, bin, len, opts);
      free(bin);
      if (ok) {
        o->st.from_cache = 1;
        o->st.build_ms = now_ms() - t0;
        return 0;
      }
      o->st.cache_rejected = 1;
    } else if (why) {
      GG_WARN("GPU", "OpenCL program cache %s is unusable (%s); rebuilding it",
              o->st.cache_path, why);
      o->st.cache_rejected = 1;
    }
  }
  const char *src = gg_ocl_kernels_src;
  cl_int r = 0;
  o->program = o->fn.CreateProgramWithSource(o->context, 1, &src, NULL, &r);
  if (!o->program || r) {
    o->program = NULL;
    return gg__ocl_fail(o, NULL, r ? r : -44, "clCreateProgramWithSource", err, errlen);
  }
  int rc = build(o, o->program, opts, err, errlen);
  if (rc) return rc;
  if (o->st.cache_path[0]) {
    unsigned char *bin = NULL;
    size_t len = 0;
    if (!program_binary(o, &bin, &len)) cache_write(o->cache_dir, o->st.cache_path, bin, len);
    free(bin);
  }
  o->st.build_ms = now_ms() - t0;
  GG_INFO("GPU", "%s: OpenCL kernels built in %.0f ms (%s)", gg_device_name(o->dev),
          o->st.build_ms, o->st.cache_path[0] ? o->st.cache_path : "disk cache off");
  return 0;
}

int gg__ocl_new(gg_device *dev, const gg_ocl_params *p, gg_ocl **out, char *err, size_t errlen) {
  static const gg_ocl_params defaults = {0};
  gg__cl_handles h;
  *out = NULL;
  if (gg__opencl_handles(dev, &h)) {
    snprintf(err, errlen, "%s is not an opencl device; the OpenCL backend needs opencl:P.D",
             dev ? gg_device_name(dev) : "(null)");
    return GG_EINVAL;
  }
  gg_ocl *o = calloc(1, sizeof *o);
  if (!o) return GG_ENOMEM;
  o->dev = dev;
  o->kx.launch = kx_launch, o->kx.gemm = kx_gemm;
  o->p = p ? *p : defaults;
  o->device = h.device;
  o->context = h.context;
  o->queue = h.queue;
  cache_dir_for(&o->p, o->cache_dir, sizeof o->cache_dir);
  int rc = load_fns(o, h.lib, err, errlen);
  if (!rc) rc = make_program(o, err, errlen);
  for (int i = 0; !rc && i < K_COUNT; i++) {
    cl_int r = 0;
    o->k[i] = o->fn.CreateKernel(o->program, gg__kx_kernel_name(i), &r);
    if (!o->k[i] || r) {
      o->k[i] = NULL;
      rc = gg__ocl_fail(o, NULL, r ? r : -46, "clCreateKernel", err, errlen);
    }
  }
  if (rc) {
    gg__ocl_free(o);
    return rc;
  }
  gg__ocl_clblast_load(o);
  o->st.gemm = o->clblast_sgemm && o->p.gemm != GG_OCL_GEMM_OWN ? "clblast" : "own";
  *out = o;
  return 0;
}

void gg__ocl_free(gg_ocl *o) {
  if (!o) return;
  /* A failing release leaks driver memory but cannot be undone: log it
   * (classified) and go on. */
  cl_int r;
  for (int i = 0; i < K_COUNT; i++)
    if (o->k[i] && (r = o->fn.ReleaseKernel(o->k[i])))
      gg__ocl_fail(o, NULL, r, "clReleaseKernel", NULL, 0);
  if (o->program && (r = o->fn.ReleaseProgram(o->program)))
    gg__ocl_fail(o, NULL, r, "clReleaseProgram", NULL, 0);
  free(o);
}

int gg__ocl_launch(gg_ocl *o, const gg_node *n, gg_kx_kernel k, int dims, const size_t *global,
                   const size_t *local, const gg_karg *args, int nargs, char *err,
                   size_t errlen) {
  for (int i = 0; i < nargs; i++) {
    cl_int r = o->fn.SetKernelArg(o->k[k], (cl_uint)i, args[i].size, args[i].p);
    if (r) {
      char call[96];
      snprintf(call, sizeof call, "clSetKernelArg(%s, %d)", gg__kx_kernel_name(k), i);
      return gg__ocl_fail(o, n, r, call, err, errlen);
    }
  }
  /* kx.h: a fixed work-group shape per rank; kernels ignore the work items
   * past their bounds */
  if (!local) local = gg__kx_local[dims - 1];
  size_t g[3];
  for (int d = 0; d < dims; d++) {
    g[d] = global[d];
    if (local) g[d] = (g[d] + local[d] - 1) / local[d] * local[d];
    if (!g[d]) return 0; /* an empty tensor: nothing to do */
  }
  cl_int r = o->fn.EnqueueNDRangeKernel(o->queue, o->k[k], (cl_uint)dims, NULL, g, local, 0,
                                        NULL, NULL);
  if (r) {
    char call[96];
    snprintf(call, sizeof call, "clEnqueueNDRangeKernel(%s)", gg__kx_kernel_name(k));
    return gg__ocl_fail(o, n, r, call, err, errlen);
  }
  o->st.launches++;
  o->last = n;
  if (o->p.sync_each) {
    r = o->fn.Finish(o->queue);
    if (r) return gg__ocl_fail(o, n, r, "clFinish", err, errlen);
  }
  return 0;
}

int gg__ocl_finish(gg_ocl *o, char *err, size_t errlen) {
  cl_int r = o->fn.Finish(o->queue);
  const gg_node *last = o->last;
  o->last = NULL;
  return r ? gg__ocl_fail(o, last, r, "clFinish (after this node)", err, errlen) : 0;
}

void gg__ocl_set_workspace(gg_ocl *o, void *mem, uint64_t off, uint64_t bytes) {
  o->kx.ws = mem, o->kx.ws_off = off, o->kx.ws_bytes = mem ? bytes : 0;
}

void gg__ocl_get_stats(const gg_ocl *o, gg_ocl_stats *out) {
  *out = o->st;
  out->conv_im2col = o->kx.conv_im2col, out->conv_direct = o->kx.conv_direct;
}

/* kx.h's view of this backend (kx is the first member of gg_ocl). */
static int kx_launch(gg_kx *x, const gg_node *n, gg_kx_kernel k, int dims, const size_t *global,
                     const size_t *local, const gg_karg *args, int nargs, char *err,
                     size_t errlen) {
  return gg__ocl_launch((gg_ocl *)x, n, k, dims, global, local, args, nargs, err, errlen);
}

static int kx_gemm(gg_kx *x, const gg_node *n, const gg_kx_gemm_args *g, char *err,
                   size_t errlen) {
  return gg__ocl_gemm((gg_ocl *)x, n, g, err, errlen);
}

int gg__ocl_run(gg_ocl *o, const gg_node *n, const gg_ocl_arg *in, const gg_ocl_arg *out,
                char *err, size_t errlen) {
  return gg__kx_run(&o->kx, "OpenCL", n, in, out, err, errlen);
}
