/* Engine backends: who computes a node and where its tensors live.
 *
 * A backend is a vtable (gg_backend_i) plus a context, in the manner of
 * ggml's ggml_backend_i / buffer types. The scheduler (src/engine/exec.c)
 * owns the graph; a backend only answers three questions and does three
 * things:
 *
 *   supports_node   can you run this node (op, attributes, shapes)?
 *   buffer_alloc    give me `size` bytes of YOUR memory (the buffer type):
 *                   host memory for the CPU backends, a gg_pool block of the
 *                   device for device backends, so budgets, OOM reports,
 *                   per-owner accounting and leak scopes all see it
 *   prepare         once per session and node: upload/pack weights, create
 *                   per-node objects (kernels, XNNPACK operators)
 *   run_node        run one prepared node (one launch on a device)
 *   set / get       upload / download bytes of a buffer (model I/O and the
 *                   copies the scheduler inserts where data crosses devices)
 *   free            release the backend
 *
 * Memory domains. Every backend has a device (NULL = the host). Backends
 * on the same device share one memory domain: one arena (planned by
 * src/engine/plan.c), one weights buffer, and one view of the tensors
 * (gg_tval array). naive and xnnpack are both host backends, so a CPU
 * session has one domain exactly as before. A tensor produced in one domain
 * and read in another is copied by the scheduler (a copy step, planned in the
 * reader's arena). Graph inputs live in the host domain (written by the
 * caller) and outputs are downloaded to it, so model I/O is always explicit
 * uploads and downloads.
 *
 * Tensor storage. In a backend's view, vals[t].buf/.offs say where tensor t
 * lives: (buffer, byte offset). vals[t].data is the host pointer to that
 * byte when the buffer is host-addressable (host, sim) and NULL otherwise
 * (opencl, cuda): device kernels must use (buf, offs), host kernels may use
 * data. Constants read by a node of a non-host domain are uploaded once per
 * session into that domain's weights buffer (GG_CONST_SLACK after each);
 * in a view of device memory the host cannot address, a constant's data
 * still points at the model's host copy (read-only: parameters such as
 * pads, axes or a reshape's shape), while buf/offs give the device copy.
 * vals[t].is_const is set in every view.
 *
 * Errors: 0 or a negative GG_E* code. A device error returned by run_node
 * (GG_ELAUNCH, GG_EDEVICE_LOST, GG_ETIMEOUT, GG_EDEV_OOM ...) is passed to
 * the caller of gg_session_run with the node's name and op in the message.
 *
 * Not thread-safe: one session runs on one thread at a time; a backend
 * object belongs to one session. */
#ifndef GG_ENGINE_BACKEND_H
#define GG_ENGINE_BACKEND_H

#include "engine/engine-impl.h"
#include "engine/graph.h"

#include <stddef.h>
#include <stdint.h>

struct gg_device;
struct gg_pool;
struct gg_block;

typedef struct gg_backend gg_backend;
typedef struct gg_backend_buffer gg_backend_buffer;

/* ---------------------------------------------------------------- buffers */

typedef struct gg_backend_buffer_i {
  /* Required. Returns the memory to where it came from (gg_host_free,
   * gg_block_free) and frees the buffer object itself. */
  void (*free)(gg_backend_buffer *buf);
  /* Optional. Host pointer to byte `off`; a NULL slot means the buffer is
   * device memory the host cannot address (then set and get are required). */
  void *(*host_ptr)(gg_backend_buffer *buf, uint64_t off);
  /* Optional when host_ptr is set (default: memcpy through host_ptr),
   * required otherwise. Upload n bytes from src to byte off / download n
   * bytes at off to dst. Return 0, GG_ERANGE past the end, or a device
   * error. */
  int (*set)(gg_backend_buffer *buf, uint64_t off, const void *src, size_t n);
  int (*get)(gg_backend_buffer *buf, uint64_t off, void *dst, size_t n);
} gg_backend_buffer_i;

struct gg_backend_buffer {
  const gg_backend_buffer_i *iface;
  void *ctx;              /* the buffer type's own state */
  gg_backend *backend;    /* the backend whose buffer type made it (borrowed) */
  uint64_t size;          /* bytes asked for */
  struct gg_block *block; /* pool block holding it (device memory); NULL for host buffers */
};

/* Wrappers that apply the defaults above. gg_backend_buffer_free(NULL) is a
 * no-op; gg_backend_buffer_host_ptr returns NULL for device memory. */
void gg_backend_buffer_free(gg_backend_buffer *buf);
void *gg_backend_buffer_host_ptr(gg_backend_buffer *buf, uint64_t off);
int gg_backend_buffer_set(gg_backend_buffer *buf, uint64_t off, const void *src, size_t n);
int gg_backend_buffer_get(gg_backend_buffer *buf, uint64_t off, void *dst, size_t n);
/* Copies n bytes between two buffers of any domains (through a host bounce
 * when neither side is host-addressable). Returns 0 or the first error. */
int gg_backend_buffer_copy(gg_backend_buffer *dst, uint64_t doff, gg_backend_buffer *src,
                           uint64_t soff, size_t n);

/* A ready-made buffer type for device backends: `size` bytes from `pool`
 * for `owner` (gg_pool_alloc, so budgets, OOM reports and leak scopes see
 * it); host-addressable when the device's memory is (sim), else set/get go
 * through gg_block_copy_to/from. Returns 0, GG_EDEV_OOM, GG_EBUDGET or the
 * pool's error. *out owned by the caller (gg_backend_buffer_free). */
int gg_backend_pool_buffer(gg_backend *be, struct gg_pool *pool, uint64_t size, const char *owner,
                           gg_backend_buffer **out);
/* Bytes a pool buffer of `size` counts in the pool's accounting (sizes are
 * rounded to GG_POOL_ROUND): what a device backend's alloc_bytes returns. */
uint64_t gg_backend_pool_bytes(uint64_t size);

/* --------------------------------------------------------------- backends */

/* One algorithm a backend has for a node (memory-aware plans, see
 * docs/engine.md "Memory-aware plans"). workspace: device bytes, as the
 * device's allocator counts them, of the scratch the algorithm needs while
 * the node runs. The backend keeps ONE scratch block for all its nodes (it
 * grows to the largest need), so a plan's device workspace is the largest
 * workspace among the algorithms it chose, not their sum. cost: relative
 * run time, larger is slower (only the order between a node's algorithms
 * matters to the planner). */
typedef struct gg_backend_algo {
  const char *name; /* "im2col", "direct" (static string) */
  uint64_t workspace;
  uint32_t cost;
} gg_backend_algo;

#define GG_BACKEND_MAX_ALGOS 4

typedef struct gg_backend_i {
  /* Required. Short lowercase name: "naive", "xnnpack", "sim", "opencl".
   * It is the key of ops_by_backend. */
  const char *name;

  /* Required. 1 when this backend can run node n with the shapes in vals
   * (shapes and constant data are set; storage is not yet), 0 otherwise.
   * Must be cheap and side-effect free. */
  int (*supports_node)(gg_backend *be, const gg_node *n, const gg_tval *vals);

  /* Required: the buffer type. Allocates `size` bytes of this backend's
   * memory for `owner` ("engine/arena", "engine/weights"). *out owned by
   * the caller. Returns 0, GG_ENOMEM / GG_EDEV_OOM / GG_EBUDGET. */
  int (*buffer_alloc)(gg_backend *be, uint64_t size, const char *owner, gg_backend_buffer **out);
  /* Optional. Bytes the memory accounting will count for buffer_alloc(size)
   * (the prediction must equal the measurement to the byte). Default: size. */
  uint64_t (*alloc_bytes)(gg_backend *be, uint64_t size);
  /* Optional. Bytes the kernels may read past the end of any input
   * (added to the arena and after each constant). Default: 0. */
  uint64_t (*read_slack)(gg_backend *be);

  /* Optional. Called once per session for every node assigned to this
   * backend, in execution order, after every tensor has its storage in
   * vals (the domain's view: buf/offs, and data when host-addressable).
   * Packs or uploads what the node needs and creates per-node objects;
   * *state (may stay NULL) is passed to run_node and released by release;
   * *workspace gets the bytes that state holds outside the arena (XNNPACK's
   * packed weights and operator state, counted by its allocator; a device
   * scratch block, as its pool counts it): they go into the prediction of
   * the host, or of the backend's device when device_workspace is set. Returning GG_EINVAL or
   * GG_EUNSUPPORTED means "not for these parameters after all": the
   * scheduler then gives the node to the next backend of the same domain
   * (XNNPACK -> naive). Default: no state, workspace 0. */
  int (*prepare)(gg_backend *be, const gg_node *n, gg_tval *vals, void **state,
                 uint64_t *workspace);
  /* 1 when prepare's workspace is memory of the backend's device (the
   * OpenCL im2col scratch); 0 (default) when it is host memory, also for a
   * device backend running host kernels (sim with XNNPACK). */
  int device_workspace;
  /* Optional. The algorithms this backend has for node n (vals as for
   * supports_node), fastest first, at most GG_BACKEND_MAX_ALGOS. Returns
   * how many it wrote to out; 0 or a NULL slot means the default: one
   * algorithm, whose workspace is what prepare reports. */
  int (*algos)(gg_backend *be, const gg_node *n, const gg_tval *vals,
               gg_backend_algo out[GG_BACKEND_MAX_ALGOS]);
  /* Optional, goes with algos: prepare with algorithm `algo` (an index into
   * algos' list) instead of the fastest; same contract as prepare. When the
   * slot is set the scheduler calls it instead of prepare for every node
   * (algo 0 for nodes with one algorithm). */
  int (*prepare_algo)(gg_backend *be, const gg_node *n, gg_tval *vals, int algo, void **state,
                      uint64_t *workspace);
  /* Optional. Frees what prepare made (state may be NULL). Default: none. */
  void (*release)(gg_backend *be, void *state);

  /* Required. Runs one prepared node on vals (the same view prepare saw).
   * Returns 0 or the kernel's / device's error. */
  int (*run_node)(gg_backend *be, const gg_node *n, gg_tval *vals, void *state);
  /* Optional. Waits for work queued by run_node. Called once at the end of
   * gg_session_run and before any download. Default: returns 0. */
  int (*synchronize)(gg_backend *be);

  /* Required. Frees the backend and its context (after every release). */
  void (*free)(gg_backend *be);
} gg_backend_i;

struct gg_backend {
  const gg_backend_i *iface;
  void *ctx;
  struct gg_device *dev; /* NULL: the host; else the device its memory is on (borrowed) */
};

/* What a backend is made with. */
typedef struct gg_backend_params {
  struct gg_device *dev; /* the device (NULL for host backends) */
  struct gg_pool *pool;  /* its memory pool (device backends) */
  int threads;           /* worker threads for host kernels (0/1: caller's) */
  int cpu_kernels;       /* kernels for host-computing device backends (sim):
                            0 = XNNPACK where it applies, else naive; 1 = naive only */
} gg_backend_params;

/* The registry. A backend module registers one entry (built-in ones are
 * static in src/engine/backend.c; a plugin such as src/backend/opencl/
 * calls gg_backend_register when it loads). device_kind is the
 * gg_device_kind whose devices this backend computes on, or -1 for host
 * backends. init returns 0, or GG_ENOTIMPL / GG_EUNSUPPORTED with a
 * one-line reason in err when it is unavailable (no runtime, not built). */
typedef struct gg_backend_reg {
  const char *name;
  int device_kind;
  int (*init)(const gg_backend_params *p, gg_backend **out, char *err, size_t errlen);
} gg_backend_reg;

/* Adds reg (borrowed; must stay valid) to the registry. Returns 0,
 * GG_EINVAL when the name is taken, GG_ERANGE when full. */
int gg_backend_register(const gg_backend_reg *reg);
/* Removes reg (a plugin being unloaded, a test's stand-in). Returns 0 or
 * GG_ENOTFOUND. Not thread-safe with sessions being created. */
int gg_backend_unregister(const gg_backend_reg *reg);
/* Entry by name, or NULL when that backend is absent from this build/run. */
const gg_backend_reg *gg_backend_find(const char *name);
/* Entry for devices of `kind` (gg_device_kind), or NULL (then the session
 * computes on the host). When several are registered for a kind, the latest
 * registration wins. */
const gg_backend_reg *gg_backend_for_device_kind(int kind);
/* Number of entries and entry i (tests list every backend built in). */
int gg_backend_count(void);
const gg_backend_reg *gg_backend_get(int i);
/* Initialises a backend by name. Returns 0, GG_ENOTFOUND (not registered)
 * or init's error with its reason in err. */
int gg_backend_init_by_name(const char *name, const gg_backend_params *p, gg_backend **out,
                            char *err, size_t errlen);
/* Frees a backend; NULL is a no-op. */
void gg_backend_free(gg_backend *be);
const char *gg_backend_name(const gg_backend *be);

#endif
