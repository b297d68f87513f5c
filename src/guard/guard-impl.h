/* Resilience layer internals: the device-side host (what a worker process
 * runs), the worker protocol, the supervisor-side executor and the breaker. */
#ifndef GG_GUARD_IMPL_H
#define GG_GUARD_IMPL_H

#include "gpuguard/classify.h"
#include "gpuguard/device.h"
#include "gpuguard/guard.h"
#include "gpuguard/memory.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>

#define GG__MAX_MODELS 8
#define GG__MODEL_NAME 256

/* Device-side counters, sent back with every worker reply. */
typedef struct gg__dev_stats {
  uint64_t budget, pool_allocated, pool_reserved, raw_in_use;
  uint64_t pool_largest_free; /* largest cached free block */
  uint64_t leaked_bytes, raw_allocs, launches, faults_fired;
  uint64_t trims, bytes_trimmed; /* all pool trims */
  uint64_t cleanups;             /* trims done by the every-N-requests cadence */
} gg__dev_stats;

/* ---- host: one device, its pool, its runner, its models ---------------- */
typedef struct gg__host_model {
  char name[GG__MODEL_NAME];
  void *handle;
  uint64_t weights; /* pool bytes the load left allocated */
} gg__host_model;

typedef struct gg__host {
  gg_device *dev;
  gg_pool *pool;
  gg_runner runner;
  gg__host_model models[GG__MAX_MODELS];
  int n_models;
  uint64_t leaked_bytes;
  uint64_t cleanups;
  int n_last_ops; /* the last successful run's ops per backend (runner's ops_by_backend) */
  gg_guard_backend_ops last_ops[GG_GUARD_MAX_BACKENDS];
} gg__host;

typedef struct gg__host_config {
  const char *spec;
  const char *runner;
  const char *runner_arg;
  uint64_t budget; /* 0 = device total */
  int cleanup_every;
} gg__host_config;

int gg__host_open(const gg__host_config *cfg, gg__host **out, char *err, size_t errlen);
/* Unloads everything, frees the pool and device; *leaked gets bytes still
 * held from the driver or reported leaked (0 = clean). */
void gg__host_close(gg__host *h, uint64_t *leaked);
int gg__host_validate(gg__host *h, gg_validation *v);
int gg__host_load(gg__host *h, const char *model, uint64_t *weights);
int gg__host_warmup(gg__host *h, const char *model);
int gg__host_peak(gg__host *h, const char *model, const gg_gtensor *shape, uint64_t *peak);
int gg__host_run(gg__host *h, const char *model, const gg_gtensor *in, gg_gtensor *outs,
                 int *n_outs);
int gg__host_unload(gg__host *h, const char *model);
int gg__host_trim(gg__host *h, uint64_t *released);
void gg__host_stats(gg__host *h, gg__dev_stats *st);

/* ---- worker protocol (SOCK_SEQPACKET, one message per request/reply) ---- */
enum {
  GG__OP_HELLO = 1,
  GG__OP_VALIDATE,
  GG__OP_LOAD,
  GG__OP_WARMUP,
  GG__OP_PEAK,
  GG__OP_RUN,
  GG__OP_UNLOAD,
  GG__OP_TRIM,
  GG__OP_QUIT,
};
#define GG__WMAGIC 0x47475752u /* "GGWR" */

typedef struct gg__wreq {
  uint32_t magic, op;
  uint64_t id;
  char model[GG__MODEL_NAME];
  int32_t ndim;
  int64_t dims[GG_GUARD_MAX_DIMS];
  uint64_t in_bytes; /* input floats live at offset 0 of the shm */
} gg__wreq;

typedef struct gg__wrep {
  uint32_t magic, op;
  uint64_t id;
  int32_t rc;
  char reason[256];
  uint64_t value; /* weights / peak / released / leaked bytes, by op */
  int32_t n_outs;
  int32_t out_ndim[GG_GUARD_MAX_OUTPUTS];
  int64_t out_dims[GG_GUARD_MAX_OUTPUTS][GG_GUARD_MAX_DIMS];
  uint64_t out_bytes; /* outputs packed back to back at offset 0 of the shm */
  int32_t n_ops_be;   /* RUN: ops per backend (gg__host.last_ops) */
  gg_guard_backend_ops ops_be[GG_GUARD_MAX_BACKENDS];
  gg_validation val;
  gg__dev_stats stats;
} gg__wrep;

/* ---- executor: a device as the supervisor sees it --------------------- */
typedef struct gg__shm_view {
  char *p;
  size_t len;
} gg__shm_view;

typedef struct gg__exec {
  int isolated;
  gg__host_config hcfg;
  char spec[128];
  char runner[32];
  char runner_arg[512];
  /* local */
  gg__host *host;
  /* worker */
  const char *exe;
  pid_t pid;
  int sock;
  int shm;
  gg__shm_view map; /* persistent mapping of shm */
  int watchdog_ms, load_timeout_ms;
  int env_faults;     /* pass GPUGUARD_FAULTS to the next start */
  atomic_int *cancel; /* when set and nonzero, waits for the worker end early
                         (GG_ECANCELED, worker killed); may be NULL */
  uint64_t next_id;
  /* last state seen */
  gg__dev_stats stats;
  int dead_reason; /* 0, or GG_ETIMEOUT / GG_EDEVICE_LOST after a kill */
} gg__exec;

/* Starts the executor (spawns/creates the host; the host validates). v gets
 * the validation result. */
int gg__exec_start(gg__exec *e, gg_validation *v, char *err, size_t errlen);
/* Stops it; graceful (QUIT) when alive, else kill. *leaked as host_close. */
void gg__exec_stop(gg__exec *e, uint64_t *leaked);
int gg__exec_alive(const gg__exec *e);
int gg__exec_validate(gg__exec *e, gg_validation *v);
int gg__exec_load(gg__exec *e, const char *model, uint64_t *weights, char *err, size_t errlen);
int gg__exec_warmup(gg__exec *e, const char *model, char *err, size_t errlen);
int gg__exec_peak(gg__exec *e, const char *model, const gg_gtensor *shape, uint64_t *peak);
int gg__exec_run(gg__exec *e, const char *model, const gg_gtensor *in, gg_guard_result *res,
                 char *err, size_t errlen);
int gg__exec_unload(gg__exec *e, const char *model);
int gg__exec_trim(gg__exec *e, uint64_t *released);
int gg__exec_pid(const gg__exec *e);

/* ---- circuit breaker --------------------------------------------------- */
#define GG__BREAKER_MAX_K 64
typedef struct gg__breaker {
  gg_breaker_state state;
  int k, window_ms, cooldown_ms;
  int64_t fails[GG__BREAKER_MAX_K]; /* ring of failure times (ms, monotonic) */
  int nfails, head;
  int64_t opened_at;
  int64_t last_failure_unix_ms;
  int last_err;
  char reason[256];
} gg__breaker;

void gg__breaker_init(gg__breaker *b, int k, int window_ms, int cooldown_ms);
/* Records a failure; returns 1 when this failure opened the breaker. */
int gg__breaker_failure(gg__breaker *b, int64_t now_ms, int err, const char *reason);
/* Forces it open (validation failed, driver unusable). Returns 1 on a change. */
int gg__breaker_trip(gg__breaker *b, int64_t now_ms, int err, const char *reason);
/* Records a success; returns 1 when it closed a half-open breaker. */
int gg__breaker_success(gg__breaker *b);
/* 0: skip the device; 1: use it; 2: half-open, probe first (moves an open
 * breaker whose cooldown passed to half-open). */
int gg__breaker_allow(gg__breaker *b, int64_t now_ms);
int gg__breaker_failures_in_window(const gg__breaker *b, int64_t now_ms);

/* ---- helpers ----------------------------------------------------------- */
int64_t gg__mono_ms(void);
int64_t gg__unix_ms(void);
/* Copies spec without its sim "faults=..." entries (and their fault list). */
void gg__spec_strip_faults(const char *spec, char *out, size_t len);
/* Replaces the sim fault list of spec with `faults` ("" = none). */
void gg__spec_set_faults(const char *spec, const char *faults, char *out, size_t len);
/* Checks a request tensor: rank, dims, size and data. GG_EINVAL/GG_ETOO_LARGE. */
int gg__tensor_check(const gg_gtensor *t, char *err, size_t errlen);

#endif
