/* The sim device: a constrained GPU simulated on the CPU. Host memory with a
 * hard capacity, and injectable faults that look exactly like a driver's:
 * GG_EDEV_OOM at allocation, GG_ELAUNCH from a launch, a sticky
 * GG_EDEVICE_LOST that persists until gg_device_reset(), and a kernel that
 * never completes (gg_device_synchronize blocks; GPUGUARD_SIM_HANG_MS turns
 * the hang into GG_ETIMEOUT after that many milliseconds, for in-process
 * tests). */
#include "device/device-impl.h"
#include "gpuguard/core.h"
#include "gpuguard/error.h"
#include "gpuguard/log.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SIM_ALIGN 256
#define SIM_DEFAULT_MEM (4560ull << 20) /* a 6 GB card with 4.45 GiB actually free */

typedef struct sim_ctx {
  pthread_mutex_t lock;
  uint64_t capacity;
  uint64_t used;
  gg_fault_plan *plan;
  uint64_t hang_ms;   /* 0 = a hang blocks forever */
  int lost;           /* sticky error pending */
  int hung;           /* a launched kernel never completes */
  gg_sim_stats st;
} sim_ctx;

static sim_ctx *ctx_of(gg_device *dev) { return dev->ctx; }

static uint64_t round_up(uint64_t n) { return (n + SIM_ALIGN - 1) / SIM_ALIGN * SIM_ALIGN; }

static int sim_get_info(gg_device *dev, gg_device_info *info) {
  sim_ctx *s = ctx_of(dev);
  char sz[32];
  pthread_mutex_lock(&s->lock);
  info->total_mem = s->capacity;
  info->free_mem = s->capacity - s->used;
  pthread_mutex_unlock(&s->lock);
  info->max_alloc = s->capacity;
  snprintf(info->vendor, sizeof info->vendor, "gpuguard");
  snprintf(info->driver_version, sizeof info->driver_version, "sim %s", GG_VERSION_STRING);
  snprintf(info->description, sizeof info->description, "simulated GPU (%s)",
           gg_format_size(s->capacity, sz, sizeof sz));
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  info->compute_units = n > 0 ? (int)n : 1;
  return 0;
}

/* A hung kernel: wait until the hang times out (GPUGUARD_SIM_HANG_MS) or the
 * device is reset from another thread. Called without the lock held. */
static int wait_hang(sim_ctx *s) {
  uint64_t t0 = gg_now_ns();
  GG_WARN("GPU", "sim: waiting on a kernel that never completes%s",
          s->hang_ms ? "" : " (forever; a watchdog must kill this process)");
  for (;;) {
    struct timespec ts = {0, 20 * 1000 * 1000};
    nanosleep(&ts, NULL);
    pthread_mutex_lock(&s->lock);
    int still = s->hung;
    if (!still) {
      pthread_mutex_unlock(&s->lock);
      return GG_EDEVICE_LOST; /* reset while waiting: the work is gone */
    }
    if (s->hang_ms && gg_now_ns() - t0 >= s->hang_ms * 1000000ull) {
      /* like CUDA_ERROR_LAUNCH_TIMEOUT: the context is unusable afterwards */
      s->hung = 0;
      s->lost = 1;
      pthread_mutex_unlock(&s->lock);
      return GG_ETIMEOUT;
    }
    pthread_mutex_unlock(&s->lock);
  }
}

/* Common prologue of copy/launch/sync: a sticky error fails the op, a hung
 * kernel blocks it (these ops are ordered behind the kernel). Returns 0 to
 * go on, else the op's result. Takes and releases the lock. */
static int gate(sim_ctx *s) {
  pthread_mutex_lock(&s->lock);
  int lost = s->lost, hung = s->hung;
  pthread_mutex_unlock(&s->lock);
  if (lost) return GG_EDEVICE_LOST;
  if (hung) return wait_hang(s);
  return 0;
}

static int sim_mem_alloc(gg_device *dev, size_t size, gg_devmem *out) {
  sim_ctx *s = ctx_of(dev);
  uint64_t need = round_up(size);
  pthread_mutex_lock(&s->lock);
  s->st.allocs++;
  if (s->lost) {
    pthread_mutex_unlock(&s->lock);
    return GG_EDEVICE_LOST;
  }
  if (gg_fault_plan_check(s->plan, GG_FAULT_OOM, s->st.allocs)) {
    s->st.faults_fired[GG_FAULT_OOM]++;
    uint64_t n = s->st.allocs;
    pthread_mutex_unlock(&s->lock);
    GG_DEBUG("GPU", "sim: injected oom at allocation #%" PRIu64 " (%zu bytes)", n, size);
    return GG_EDEV_OOM;
  }
  if (need < size || need > s->capacity - s->used) {
    s->st.capacity_ooms++;
    pthread_mutex_unlock(&s->lock);
    return GG_EDEV_OOM;
  }
  s->used += need;
  pthread_mutex_unlock(&s->lock);
  void *p = aligned_alloc(SIM_ALIGN, need);
  if (!p) {
    pthread_mutex_lock(&s->lock);
    s->used -= need;
    pthread_mutex_unlock(&s->lock);
    return GG_EDEV_OOM;
  }
  out->handle = p;
  return 0;
}

static int sim_mem_release(gg_device *dev, gg_devmem *mem) {
  sim_ctx *s = ctx_of(dev);
  free(mem->handle);
  pthread_mutex_lock(&s->lock);
  uint64_t r = round_up(mem->size);
  s->used = r > s->used ? 0 : s->used - r;
  pthread_mutex_unlock(&s->lock);
  return 0;
}

static int count_copy(sim_ctx *s) {
  pthread_mutex_lock(&s->lock);
  s->st.copies++;
  pthread_mutex_unlock(&s->lock);
  return gate(s);
}

static int sim_copy_to(gg_device *dev, gg_devmem *dst, size_t off, const void *src, size_t n) {
  int rc = count_copy(ctx_of(dev));
  if (rc) return rc;
  memcpy((char *)dst->handle + off, src, n);
  return 0;
}

static int sim_copy_from(gg_device *dev, void *dst, gg_devmem *src, size_t off, size_t n) {
  int rc = count_copy(ctx_of(dev));
  if (rc) return rc;
  memcpy(dst, (const char *)src->handle + off, n);
  return 0;
}

static int sim_synchronize(gg_device *dev) {
  sim_ctx *s = ctx_of(dev);
  pthread_mutex_lock(&s->lock);
  s->st.syncs++;
  pthread_mutex_unlock(&s->lock);
  return gate(s);
}

static void *sim_host_ptr(gg_device *dev, gg_devmem *mem, size_t off) {
  return (char *)mem->handle + off;
}

static int sim_launch(gg_device *dev, gg_kernel_fn fn, void *arg) {
  sim_ctx *s = ctx_of(dev);
  pthread_mutex_lock(&s->lock);
  uint64_t n = ++s->st.launches;
  pthread_mutex_unlock(&s->lock);
  int rc = gate(s);
  if (rc) return rc;
  pthread_mutex_lock(&s->lock);
  /* Every rule draws on every launch (determinism); precedence when several
   * fire at once: sticky, then hang, then launch. */
  int sticky = gg_fault_plan_check(s->plan, GG_FAULT_STICKY, n);
  int hang = gg_fault_plan_check(s->plan, GG_FAULT_HANG, n);
  int launch = gg_fault_plan_check(s->plan, GG_FAULT_LAUNCH, n);
  if (sticky) {
    s->lost = 1;
    s->st.faults_fired[GG_FAULT_STICKY]++;
    pthread_mutex_unlock(&s->lock);
    GG_DEBUG("GPU", "sim: injected sticky device loss at launch #%" PRIu64, n);
    return GG_EDEVICE_LOST;
  }
  if (hang) {
    s->hung = 1;
    s->st.faults_fired[GG_FAULT_HANG]++;
    pthread_mutex_unlock(&s->lock);
    GG_DEBUG("GPU", "sim: injected hang at launch #%" PRIu64, n);
    return 0; /* the launch itself succeeds; the kernel never finishes */
  }
  if (launch) {
    s->st.faults_fired[GG_FAULT_LAUNCH]++;
    pthread_mutex_unlock(&s->lock);
    GG_DEBUG("GPU", "sim: injected launch failure at launch #%" PRIu64, n);
    return GG_ELAUNCH;
  }
  pthread_mutex_unlock(&s->lock);
  return fn(arg);
}

static int sim_reset(gg_device *dev) {
  sim_ctx *s = ctx_of(dev);
  pthread_mutex_lock(&s->lock);
  s->st.resets++;
  s->lost = 0;
  s->hung = 0;
  pthread_mutex_unlock(&s->lock);
  GG_INFO("GPU", "sim: device reset (sticky error and hung work cleared)");
  return 0;
}

static void sim_destroy(gg_device *dev) {
  sim_ctx *s = ctx_of(dev);
  if (!s) return;
  gg_fault_plan_free(s->plan);
  pthread_mutex_destroy(&s->lock);
  free(s);
}

static const gg_device_i k_sim_iface = {
    .get_info = sim_get_info,
    .mem_alloc = sim_mem_alloc,
    .mem_release = sim_mem_release,
    .copy_to = sim_copy_to,
    .copy_from = sim_copy_from,
    .synchronize = sim_synchronize,
    .host_ptr = sim_host_ptr,
    .launch = sim_launch,
    .reset = sim_reset,
    .destroy = sim_destroy,
};

int gg_sim_get_stats(gg_device *dev, gg_sim_stats *out) {
  if (!dev || !out || dev->kind != GG_DEVICE_SIM || dev->iface != &k_sim_iface) return GG_EINVAL;
  sim_ctx *s = ctx_of(dev);
  pthread_mutex_lock(&s->lock);
  *out = s->st;
  out->capacity = s->capacity;
  out->used = s->used;
  out->lost = s->lost;
  out->hung = s->hung;
  pthread_mutex_unlock(&s->lock);
  return 0;
}

static int is_fault_rule(const char *t, size_t n) {
  for (int k = 0; k < GG_FAULT_KIND_COUNT; k++) {
    const char *name = gg_fault_kind_name((gg_fault_kind)k);
    size_t kl = strlen(name);
    if (n > kl && !strncmp(t, name, kl) && (t[kl] == '@' || t[kl] == '%')) return 1;
  }
  return 0;
}

static int parse_u64(const char *s, uint64_t *out) {
  char *end;
  errno = 0;
  if (!*s || *s == '-') return GG_EINVAL;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || *end) return GG_EINVAL;
  *out = v;
  return 0;
}

/* args: "mem=4560M,faults=oom@3,launch%0.1,seed=7,hang_ms=50" (any order;
 * fault rules after "faults=" run until the next key=value). */
int gg__device_sim_open(const char *args, gg_device **out) {
  uint64_t mem = SIM_DEFAULT_MEM, seed = 1, hang_ms = 0;
  int have_seed = 0, have_faults = 0, have_hang = 0;
  char faults[512] = "";
  char item[256];
  const char *p = args ? args : "";
  if (!strcmp(p, "0")) p = ""; /* "sim:0" is the single sim device */
  while (*p) {
    size_t n = strcspn(p, ",");
    if (n >= sizeof item) {
      GG_ERROR("GPU", "sim device spec item too long: '%.40s...'", p);
      return GG_EINVAL;
    }
    memcpy(item, p, n);
    item[n] = 0;
    p += n;
    if (*p == ',') p++;
    if (!n) continue;
    int rc = 0;
    if (!strncmp(item, "mem=", 4)) {
      rc = gg_parse_size(item + 4, &mem);
      if (rc == 0 && mem == 0) rc = GG_EINVAL;
    } else if (!strncmp(item, "seed=", 5)) {
      rc = parse_u64(item + 5, &seed);
      have_seed = 1;
    } else if (!strncmp(item, "hang_ms=", 8)) {
      rc = parse_u64(item + 8, &hang_ms);
      have_hang = 1;
    } else if (!strncmp(item, "faults=", 7) || (have_faults && is_fault_rule(item, n))) {
      const char *rule = strncmp(item, "faults=", 7) ? item : item + 7;
      size_t fl = strlen(faults);
      if (fl + strlen(rule) + 2 > sizeof faults) {
        rc = GG_EINVAL;
      } else {
        snprintf(faults + fl, sizeof faults - fl, "%s%s", fl ? "," : "", rule);
        have_faults = 1;
      }
    } else {
      GG_ERROR("GPU",
               "sim device: unknown option '%s' (expected mem=SIZE, faults=SPEC, seed=N, "
               "hang_ms=MS), e.g. sim:mem=4560M,faults=oom@3,seed=7",
               item);
      return GG_EINVAL;
    }
    if (rc) {
      GG_ERROR("GPU",
               "sim device: bad value in '%s' (mem takes a size like 4560M or 3.5G, seed and "
               "hang_ms whole numbers, faults a list like oom@3,launch%%0.1)",
               item);
      return GG_EINVAL;
    }
  }
  const char *env;
  if (!have_faults && (env = getenv("GPUGUARD_FAULTS")) && *env) {
    snprintf(faults, sizeof faults, "%s", env);
    have_faults = 1;
  }
  if (!have_seed && (env = getenv("GPUGUARD_SEED")) && *env && parse_u64(env, &seed)) {
    GG_ERROR("GPU", "GPUGUARD_SEED='%s' is not a whole number", env);
    return GG_EINVAL;
  }
  if (!have_hang && (env = getenv("GPUGUARD_SIM_HANG_MS")) && *env && parse_u64(env, &hang_ms)) {
    GG_ERROR("GPU", "GPUGUARD_SIM_HANG_MS='%s' is not a whole number of milliseconds", env);
    return GG_EINVAL;
  }
  sim_ctx *s = calloc(1, sizeof *s);
  if (!s) return GG_ENOMEM;
  char err[256];
  int rc = gg_fault_plan_parse(faults, seed, &s->plan, err, sizeof err);
  if (rc) {
    GG_ERROR("GPU", "sim device: %s", err);
    free(s);
    return rc;
  }
  pthread_mutex_init(&s->lock, NULL);
  s->capacity = mem;
  s->hang_ms = hang_ms;
  gg_device *d = gg__device_new(&k_sim_iface, s, GG_DEVICE_SIM, "sim");
  if (!d) {
    gg_fault_plan_free(s->plan);
    pthread_mutex_destroy(&s->lock);
    free(s);
    return GG_ENOMEM;
  }
  if (gg_fault_plan_rules(s->plan)) {
    char desc[256], sz[32];
    GG_INFO("GPU", "sim device: %s, faults %s", gg_format_size(mem, sz, sizeof sz),
            gg_fault_plan_describe(s->plan, desc, sizeof desc));
  }
  *out = d;
  return 0;
}
