/* gpuguard resilience layer: runs inference requests on a fallback chain of
 * devices with retries, admission control, a circuit breaker per device and
 * GPU work isolated in supervised worker processes. */
#ifndef GPUGUARD_GUARD_H
#define GPUGUARD_GUARD_H

#include "gpuguard/device.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gg_guard gg_guard;
typedef struct gg_pool gg_pool; /* the memory manager's caching allocator */

#define GG_GUARD_MAX_DIMS 6
#define GG_GUARD_MAX_OUTPUTS 8
#define GG_GUARD_MAX_DEVICES 4

/* A dense float32 host tensor (NHWC, as the models store it). `data` is
 * malloc'd when a gg_guard call hands one out; the caller frees it with
 * gg_gtensor_release(). For shape-only uses (planned_peak), data may be NULL. */
typedef struct gg_gtensor {
  int ndim;
  int64_t dims[GG_GUARD_MAX_DIMS];
  float *data;
} gg_gtensor;

/* Element count (product of dims; 1 for a scalar); 0 for a malformed shape. */
size_t gg_gtensor_count(const gg_gtensor *t);
/* Frees t->data and zeroes *t. NULL is a no-op. */
void gg_gtensor_release(gg_gtensor *t);

/* ---- runners ------------------------------------------------------------
 * A runner is what actually executes a model on one device: the engine
 * (real TF.js graph models) or the synthetic test workload. It is a plugin:
 * a struct of function pointers plus ctx. The guard calls one runner
 * instance per device from one thread at a time; inside a worker process the
 * runner is rebuilt by name with gg_runner_create(). */
#define GG_GUARD_MAX_BACKENDS 4
/* How many ops of one request ran on one engine backend ("xnnpack",
 * "naive", "sim", "opencl"). */
typedef struct gg_guard_backend_ops {
  char name[16];
  int32_t n_ops;
} gg_guard_backend_ops;

typedef struct gg_runner_i {
  const char *name;
  /* Loads `model` (a name or path the runner understands) onto dev. All
   * device memory must come from `pool` (the device's budgeted allocator),
   * so the guard can account, trim and detect leaks. On success *handle is
   * the runner's model object, released by unload. Required. */
  int (*load)(void *ctx, const char *model, gg_device *dev, gg_pool *pool, void **handle);
  /* Planned peak device bytes (weights + arena + workspace) to run `handle`
   * on an input of shape `in` (in->data unused). Required. */
  int (*planned_peak)(void *ctx, void *handle, const gg_gtensor *in, uint64_t *peak);
  /* Runs once on a representative input so the first real request does not
   * pay for lazy setup. Optional: NULL means no warmup. */
  int (*warmup)(void *ctx, void *handle);
  /* Runs `in`; fills outs[0..*n_outs-1] with malloc'd tensors (the caller
   * owns them). Must leave no device memory allocated on failure. Required. */
  int (*run)(void *ctx, void *handle, const gg_gtensor *in, gg_gtensor *outs, int max_outs,
             int *n_outs);
  /* Frees everything load allocated. Required. */
  void (*unload)(void *ctx, void *handle);
  /* Releases ctx. Optional: NULL means free(ctx). */
  void (*destroy)(void *ctx);
  /* After a successful run of `in`: how many of its ops ran on each
   * backend, into out[0..max-1]; returns the entries filled. Optional: NULL
   * (or 0) means the runner does not say. */
  int (*ops_by_backend)(void *ctx, void *handle, const gg_gtensor *in, gg_guard_backend_ops *out,
                        int max);
} gg_runner_i;

typedef struct gg_runner {
  const gg_runner_i *iface;
  void *ctx;
} gg_runner;

/* Builds a registered runner by kind:
 *   "synthetic"  the TEST WORKLOAD (not a model): per "model" name
 *                "synthetic:WEIGHTS_MB[:LAYERS]" it allocates weights through
 *                the pool, and per run allocates activations and launches
 *                one kernel per layer via gg_device_launch, so every device
 *                fault hits it the way it would hit a real model;
 *   "engine"     real TF.js graph models through include/gpuguard/engine.h
 *                (names resolved by gg_model_resolve: a path, or NAME under
 *                $GPUGUARD_MODELS_DIR / the model cache); arg "threads=N".
 *                The engine computes on the host; on a device it reserves the
 *                planned weights/arena/workspace from the device's pool and
 *                runs each graph as one gg_device_launch + synchronize.
 * `arg` may be NULL. The runner is released with gg_runner_free(). */
int gg_runner_create(const char *kind, const char *arg, gg_runner *out);
void gg_runner_free(gg_runner *r);

/* ---- configuration ------------------------------------------------------ */
typedef struct gg_guard_config {
  /* Fallback chain, primary first: e.g. {"sim:mem=4560M,faults=oom@3", "cpu"}.
   * Specs are copied. At least one. */
  const char *devices[GG_GUARD_MAX_DEVICES];
  int n_devices;
  const char *runner;     /* runner kind for gg_runner_create ("engine", "synthetic") */
  const char *runner_arg; /* runner option ("threads=N" for engine); may be NULL */

  int retries;        /* extra attempts on one device for OOM/LAUNCH/OOR (default 2) */
  int backoff_ms;     /* first backoff; doubles per retry, +-50% jitter (default 25) */
  int backoff_max_ms; /* cap (default 1000) */

  int breaker_failures;    /* K: failures within the window that open it (default 3) */
  int breaker_window_ms;   /* default 30000 */
  int breaker_cooldown_ms; /* open -> half-open after this (default 10000) */

  int isolate;            /* 1: non-cpu devices run in a worker process (default);
                             2: every device does, cpu too; 0: all in-process */
  const char *worker_exe; /* the gpuguard binary ("worker" subcommand); default
                             $GPUGUARD_WORKER_EXE, else /proc/self/exe */
  int watchdog_ms;        /* a run/warmup/validate reply later than this is a hang
                             (10000); the validation kernel at a worker's start too */
  int load_timeout_ms;    /* same for model loads and for a worker's exec + device
                             open, which read files and initialise a driver (60000),
                             and for warm-ups on opencl/cuda, whose first run
                             compiles kernels (PoCL + CLBlast cold: ~20 s) */

  int cleanup_every;   /* trim the pool every N completed requests (default 5) */
  uint64_t mem_budget; /* per non-cpu device budget in bytes; 0 = its total memory */
  int queue_max;       /* requests that may wait for a busy device (default 16) */
  int queue_wait_ms;   /* how long one waits before going to the next device (5000) */
  uint64_t seed;       /* jitter seed (default 1) */
} gg_guard_config;

/* Fills cfg with the defaults above (no devices, runner "engine"). */
void gg_guard_config_init(gg_guard_config *cfg);

/* Sets cfg's fallback chain from the usual flags: `device` first, with the
 * sim fault list `faults` folded in when the spec names none of its own
 * (NULL or "" for none), then each spec of the comma list `fallback`,
 * skipping empty entries and repeats, up to GG_GUARD_MAX_DEVICES. The
 * strings are written into store (len bytes), which must outlive
 * gg_guard_new(). Returns 0, or GG_ERANGE when they do not fit. */
int gg_guard_config_chain(gg_guard_config *cfg, const char *device, const char *faults,
                          const char *fallback, char *store, size_t len);

/* Creates the guard: opens every device of the chain (a worker process per
 * isolated device, which validates its device on start). A device that fails
 * to open or validate is not an error: its breaker starts open with the
 * reason. Returns GG_EINVAL for a bad config, GG_ENODEV when a spec names no
 * device kind gpuguard knows. *out is freed with gg_guard_free(). */
int gg_guard_new(const gg_guard_config *cfg, gg_guard **out);
/* Cancels a pending device switch, stops workers (graceful, then SIGKILL),
 * unloads models and frees devices. NULL is a no-op. */
void gg_guard_free(gg_guard *g);

/* Drains in-flight work, cancels a pending device switch (it ends failed,
 * GG_ECANCELED) and stops every device (graceful worker exit with a leak
 * check, whose bytes land in stats.leaked_bytes). The guard stays
 * valid: counters and state can still be read, and a later request starts
 * devices again. Call before gg_guard_free() to read final numbers. */
int gg_guard_shutdown(gg_guard *g);

/* Loads `model` now on the first usable device of the chain (load + warmup,
 * with the retry policy), instead of lazily at its first request. */
int gg_guard_load(gg_guard *g, const char *model);

/* The outcome of one request. Outputs are owned by the result: release
 * with gg_guard_result_release(). */
typedef struct gg_guard_result {
  int n_outputs;
  gg_gtensor outputs[GG_GUARD_MAX_OUTPUTS];
  char device[128];      /* spec of the device that served it ("" when none did) */
  int device_index;      /* its index in the chain, -1 when none */
  int attempts;          /* runs started, all devices together (1 = first try) */
  int fell_back;         /* 1 when served by a device after the primary */
  int last_error;        /* the last failure seen on the way, loads included (0 when none) */
  int failures;          /* device failures seen on the way (loads, warmups, runs) */
  uint64_t planned_peak; /* bytes, as planned on the serving device */
  double elapsed_ms;
  int n_backends; /* entries in ops_by_backend (0 when the runner does not say) */
  gg_guard_backend_ops ops_by_backend[GG_GUARD_MAX_BACKENDS]; /* of the serving run */
} gg_guard_result;

/* Runs one request through the policy: admission (planned peak vs budget and
 * free), attempts with retries, backoff and cache trims, breaker checks, then
 * the fallback chain, loading the model lazily on each device. Thread-safe;
 * one request at a time per device, others wait in a bounded queue.
 * Returns 0 with res filled, or the final error: GG_EINVAL/GG_EPARSE/
 * GG_ETOO_LARGE etc. for a bad input (never retried; a 4xx for HTTP), or the
 * last device error when every device failed. res->device/attempts are set
 * either way. */
int gg_guard_infer(gg_guard *g, const char *model, const gg_gtensor *input, gg_guard_result *res);
void gg_guard_result_release(gg_guard_result *res);

/* ---- device switching -------------------------------------------------
 * A switch prepares the new device off the chain (worker start, validation,
 * load and warmup of every model the primary has) while the current chain
 * keeps serving, then swaps the chain under a short lock. If a step fails
 * or misses its watchdog, the new device is stopped and nothing else
 * changes (the rollback blocks nobody). One switch at a time.
 *
 * The chain after a switch: the new primary, then every configured device
 * (gg_guard_config.devices) in configured order, except the one the new
 * primary replaces when it has the same spec. Configured devices are never
 * evicted. The old primary, when configured, stays as a fallback with its
 * models unloaded and its worker stopped (it restarts when used); a device
 * switched to at run time leaves the chain when it stops being primary. */
typedef enum gg_switch_state {
  GG_SWITCH_NONE = 0,  /* no switch was started */
  GG_SWITCH_PREPARING, /* the new device is being prepared; the old one serves */
  GG_SWITCH_DONE,      /* the new device is primary */
  GG_SWITCH_FAILED,    /* rolled back: the old primary is still primary */
  GG_SWITCH_STATE_COUNT
} gg_switch_state;

/* "none", "preparing", "done", "failed". */
const char *gg_switch_state_name(gg_switch_state s);

typedef struct gg_guard_switch_status {
  uint64_t id; /* 1 for the guard's first switch, then 2, ...; 0 when none */
  gg_switch_state state;
  char to[128];      /* the spec asked for */
  char from[128];    /* the primary when the switch started */
  int error;         /* GG_E* of a failed switch, else 0 */
  char reason[256];  /* why it failed, "" otherwise */
  double elapsed_ms; /* so far while preparing, else how long it took */
  int busy;          /* 1 until it has also released the old primary (a new
                        switch is refused while preparing, waits after) */
} gg_guard_switch_status;

/* Starts switching the primary to `spec` in a background thread and returns
 * (after the previous switch, if done, has released its old primary); *id
 * (may be NULL) gets the switch's id for gg_guard_switch_wait. GG_EBUSY
 * while another switch is preparing (or the guard shuts down),
 * GG_ENODEV for a device kind gpuguard does not know, GG_EINVAL for an
 * empty or over-long spec. */
int gg_guard_switch_start(gg_guard *g, const char *spec, uint64_t *id);

/* Waits up to timeout_ms (< 0: no limit) while switch `id` is preparing and
 * fills *st (may be NULL) with the state of the latest switch. Returns 0 once
 * it is done or failed (or was followed by a newer one: st->id tells),
 * GG_ETIMEOUT while it is still preparing. */
int gg_guard_switch_wait(gg_guard *g, uint64_t id, int timeout_ms, gg_guard_switch_status *st);

/* The latest switch's state (state GG_SWITCH_NONE when none ran). */
int gg_guard_switch_status_get(gg_guard *g, gg_guard_switch_status *st);

/* Switches synchronously in the caller's thread (same steps as
 * gg_guard_switch_start) and returns once the old primary is released: 0,
 * or the failed step's error after the rollback; GG_EBUSY while another
 * switch is preparing. */
int gg_guard_switch_device(gg_guard *g, const char *spec);

/* Starts a new burst of sim faults on device `idx`: its worker is restarted
 * with `faults` (a sim fault SPEC, "" for none) and models are reloaded,
 * through the same policy. For tests and `--faults` demos. */
int gg_guard_inject_faults(gg_guard *g, int idx, const char *faults);

/* Writes `spec` with its sim fault list replaced by `faults` ("" or NULL
 * removes it) into out: ("sim:mem=4560M", "oom@3") -> "sim:mem=4560M,faults=oom@3".
 * For `--faults SPEC` flags. Specs without faults support are copied as is. */
void gg_guard_spec_with_faults(const char *spec, const char *faults, char *out, size_t len);

/* Probes every device whose breaker cooldown has passed (half-open):
 * validation kernel + warmup of its models; closes or re-opens the breaker.
 * Requests do this lazily too; the server may call it periodically. Returns
 * the number of breakers closed. */
int gg_guard_tick(gg_guard *g);

/* ---- state, counters ------------------------------------------------- */
typedef enum gg_breaker_state {
  GG_BREAKER_CLOSED = 0,
  GG_BREAKER_OPEN,
  GG_BREAKER_HALF_OPEN,
  GG_BREAKER_STATE_COUNT
} gg_breaker_state;

const char *gg_breaker_state_name(gg_breaker_state s);

typedef struct gg_guard_device_status {
  char spec[128];
  char name[64]; /* device name ("sim", "cpu") */
  int index;
  gg_breaker_state breaker;
  int failures_in_window;
  int64_t last_failure_unix_ms; /* 0 when none */
  int last_failure_error;       /* GG_E* */
  char last_failure_reason[256];
  int isolated;   /* runs in a worker process */
  int worker_pid; /* 0 when none */
  uint64_t worker_restarts;
  uint64_t served;         /* requests this device answered */
  uint64_t budget;         /* pool budget, bytes */
  uint64_t pool_allocated; /* bytes handed out by the pool now */
  uint64_t pool_reserved;  /* bytes the pool holds from the driver now */
  uint64_t raw_in_use;     /* bytes held from the driver (device accounting) */
  uint64_t leaked_bytes;   /* reported by leak checks so far */
  uint64_t raw_allocs;     /* raw driver allocations since the device was opened */
  uint64_t launches;       /* kernel launches since the device was opened (sim) */
  uint64_t faults_fired;   /* injected faults fired in the current context (sim) */
  int n_models;            /* models loaded there */
  /* The spec its current device context runs with. `spec` is the device as
   * configured; its sim faults are a burst that only the first context gets
   * (a restarted worker runs fault-free), so after a restart this is `spec`
   * without them. While the device is down: what its next start gets. */
  char effective_spec[128];
  int faults_active; /* 1 while the current (or next) context has spec's faults */
  int configured;    /* 1 for a device of the configured chain (never evicted) */
} gg_guard_device_status;

/* The chain's length now: the configured devices, plus one when the primary
 * was switched to at run time (so at most GG_GUARD_MAX_DEVICES + 1). */
int gg_guard_device_count(const gg_guard *g);
/* Fills *st for chain index idx (0 = primary). GG_ERANGE for a bad index. */
int gg_guard_device_status_get(gg_guard *g, int idx, gg_guard_device_status *st);
/* 1 when the primary device is not serving (breaker not closed). */
int gg_guard_gpu_failed(gg_guard *g);

/* The counters of gg_guard_stats with what each counts, in field order,
 * for whoever lists or exports them: X(field, "help"). */
#define GG_GUARD_STAT_FIELDS(X)                                                                    \
  X(requests, "requests received")                                                                 \
  X(served, "requests answered with a result")                                                     \
  X(failed, "requests no device could serve")                                                      \
  X(bad_input, "requests rejected as bad input (never retried)")                                   \
  X(attempts, "inference runs started")                                                            \
  X(retries, "retries on the same device")                                                         \
  X(fallbacks, "requests served by a fallback device")                                             \
  X(ooms, "device out-of-memory failures")                                                         \
  X(launch_failures, "kernel launch / out-of-resources failures")                                  \
  X(device_lost, "sticky device-lost failures and worker crashes")                                 \
  X(timeouts, "watchdog timeouts (hung kernels)")                                                  \
  X(other_failures, "other device failures")                                                       \
  X(breaker_opened, "circuit breaker transitions to open")                                         \
  X(breaker_half_opened, "circuit breaker transitions to half-open")                               \
  X(breaker_closed, "circuit breaker transitions to closed (recovered)")                           \
  X(worker_starts, "device worker starts")                                                         \
  X(worker_restarts, "device worker restarts")                                                     \
  X(worker_crashes, "device worker crashes")                                                       \
  X(cache_trims, "pool cache trims before a retry")                                                \
  X(cleanups, "periodic pool cleanups")                                                            \
  X(admission_waits, "requests that waited for a busy device")                                     \
  X(admission_rejects, "requests a device could not admit (budget, queue)")                        \
  X(device_switches, "device switches")                                                            \
  X(switch_rollbacks, "device switches rolled back")                                               \
  X(loads, "model loads")                                                                          \
  X(leaked_bytes, "device bytes leaked (reported by leak checks)")

typedef struct gg_guard_stats {
  uint64_t requests, served, failed, bad_input;
  uint64_t attempts, retries, fallbacks;
  uint64_t ooms, launch_failures, device_lost, timeouts, other_failures;
  uint64_t breaker_opened, breaker_half_opened, breaker_closed;
  uint64_t worker_starts, worker_restarts, worker_crashes;
  uint64_t cache_trims, cleanups, admission_waits, admission_rejects;
  uint64_t device_switches, switch_rollbacks, loads;
  uint64_t leaked_bytes;
} gg_guard_stats;

int gg_guard_stats_get(gg_guard *g, gg_guard_stats *st);
/* JSON and Prometheus renderings: gpuguard/render.h (the HTTP service's). */

/* ---- worker process ----------------------------------------------------
 * Entry point of `gpuguard worker` (hidden subcommand): serves one device
 * over the socket `fd` with tensors in the memfd `shm_fd`. Returns the exit
 * status. Not for direct use. */
int gg_guard_worker_main(int argc, char **argv);

/* Lists the devices (as gg_device_enumerate does) from a child process,
 * `EXE worker --enumerate`, so the caller never loads a GPU runtime (PoCL's
 * threads, LLVM's signal stacks, a driver that faults while enumerating).
 * exe: the gpuguard binary; NULL uses $GPUGUARD_WORKER_EXE, else
 * /proc/self/exe. A child that takes longer than timeout_ms (<= 0: 10 s) is
 * killed: GG_ETIMEOUT. A crashed or mismatched child: GG_EIO / GG_EPARSE.
 * On success *out is malloc'd (the caller frees it). */
int gg_guard_enumerate_isolated(const char *exe, int timeout_ms, gg_device_info **out,
                                size_t *count);
/* The child side: enumerates and writes the list to fd. Returns 0 or the
 * enumeration's error. Used by `gpuguard worker --enumerate`. */
int gg_guard_enumerate_child(int fd);

#ifdef __cplusplus
}
#endif
#endif
