/* gpuguard engine: load a TensorFlow.js or ONNX model, plan its memory
 * exactly, and run it on the CPU (XNNPACK where available, naive C kernels
 * otherwise) or, node by node, on a device that has an engine backend. */
#ifndef GPUGUARD_ENGINE_H
#define GPUGUARD_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define GG_ENGINE_MAX_DIMS 6

typedef struct gg_model gg_model;
typedef struct gg_session gg_session;

/* Name and shape of a model input or output. name is borrowed from the
 * model (valid until gg_model_free). Unknown dims are -1. */
/* Element type of a model input or output as the engine holds it: float32
 * (ONNX FLOAT, and FLOAT16, BFLOAT16, DOUBLE, computed in float32), or int32
 * (ONNX int64, int32, uint64, uint32, the narrower integers and bool). The
 * type the model declares is gg_tensor_info.src_type: the caller converts at
 * the boundary (double -> float, uint64 -> int32, ...; values read back are
 * exactly representable in the declared type after a Cast to it). */
typedef enum gg_tensor_dtype {
  GG_TENSOR_F32 = 0,
  GG_TENSOR_I32,
  GG_TENSOR_DTYPE_COUNT
} gg_tensor_dtype;

typedef struct gg_tensor_info {
  const char *name;
  int ndim;
  int64_t shape[GG_ENGINE_MAX_DIMS];
  gg_tensor_dtype dtype;
  /* The element type the model declares, as ONNX numbers them
   * (TensorProto.DataType: 1 FLOAT, 6 INT32, 7 INT64, 9 BOOL, 10 FLOAT16,
   * 11 DOUBLE, 12 UINT32, 13 UINT64, 16 BFLOAT16, ...); 0 when the model
   * does not say (TF.js models, ONNX outputs without a type). */
  int src_type;
} gg_tensor_info;

/* Resolves a model argument to a model.json path in out: an existing file
 * path is used as given; a bare NAME is looked up as
 *   $GPUGUARD_MODELS_DIR/NAME.json,
 *   $GPUGUARD_MODELS_DIR/NAME.onnx,
 *   $GPUGUARD_MODELS_DIR/human-models-3.0.4/models/NAME.json,
 *   ${GPUGUARD_CACHE:-$HOME/.cache/gpuguard}/models/human-models-3.0.4/models/NAME.json
 * (first that exists). Returns 0, GG_ENOTFOUND (out then holds the last
 * candidate tried, for the message) or GG_EINVAL. */
int gg_model_resolve(const char *name_or_path, char *out, size_t outlen);

/* How an image is fed to the model at `path`: fills *pp (see
 * gg_preprocess_for_model in image.h) and dims with the input tensor shape,
 * {1,H,W,3} (NHWC) or {1,3,H,W} (pp->nchw). When the model's convention has
 * no fixed size, H and W come from the model's first input, which means
 * loading it. Returns 0, or GG_EUNSUPPORTED (no fixed 4-D image input) / the
 * load error, with a message in err. */
struct gg_preprocess;
int gg_model_image_input(const char *path, struct gg_preprocess *pp, int64_t dims[4], char *err,
                         size_t errlen);

/* Loads the model at `path`, picking the importer by content: a TF.js
 * model.json (first non-blank byte '{') with its weight shards, or an ONNX
 * ModelProto (docs/ONNX.md) with its external data files, both read from
 * the model's folder. Converts and validates everything, folds constants,
 * fuses ops (and, for ONNX, removes layout transposes). Weights are held
 * in accounted host memory (owner "engine/weights"). A model file is
 * untrusted: failures return GG_EPARSE (malformed), GG_EUNSUPPORTED (an op or
 * attribute gpuguard does not run), GG_EIO (missing file), GG_ERANGE (shape
 * too large), GG_ETOO_LARGE or GG_ENOMEM, with a message in err (may be NULL)
 * naming the file and the node. On success *out is owned by the caller. */
int gg_model_load(const char *path, gg_model **out, char *err, size_t errlen);
/* Frees a model; NULL is a no-op. Sessions made from it must be freed first. */
void gg_model_free(gg_model *m);

/* The path given to gg_model_load (borrowed). */
const char *gg_model_path(const gg_model *m);
int gg_model_n_inputs(const gg_model *m);
int gg_model_n_outputs(const gg_model *m);
/* Fills *out for input/output i (as the placeholder declares it; outputs get
 * ndim 0 until a session infers them). Returns 0 or GG_ERANGE. Output order
 * and names: signature.outputs when the model has one, else the terminal
 * nodes sorted by name. */
int gg_model_input(const gg_model *m, int i, gg_tensor_info *out);
int gg_model_output(const gg_model *m, int i, gg_tensor_info *out);
/* Bytes of constant data the model holds (after dequantization, folding and
 * the per-constant read slack backends need): the "weights" of a prediction. */
uint64_t gg_model_weights_bytes(const gg_model *m);
/* Number of ops run per request (after folding and fusion). */
int gg_model_n_ops(const gg_model *m);

typedef enum gg_engine_backend {
  GG_ENGINE_AUTO = 0, /* XNNPACK for the ops it covers when built in, else naive */
  GG_ENGINE_NAIVE,    /* the reference C kernels only */
  GG_ENGINE_XNNPACK,  /* like AUTO, but GG_ENOTIMPL when XNNPACK is not built in */
  GG_ENGINE_BACKEND_COUNT
} gg_engine_backend;

struct gg_pool;

typedef struct gg_session_opts {
  int threads; /* 0 or 1: the caller's thread only */
  gg_engine_backend backend;
  int no_reuse; /* give every tensor its own arena range (tests) */
} gg_session_opts;

#define GG_ENGINE_MAX_DEVICES 2  /* the host, and the device of opts.pool */
#define GG_ENGINE_MAX_BACKENDS 4 /* e.g. sim, xnnpack, naive */

/* A session's memory on one device ("host", or the device's name). */
typedef struct gg_engine_dev_mem {
  char device[32];
  uint64_t weights;   /* host: gg_model_weights_bytes; device: its copy of the weights it reads */
  uint64_t arena;     /* the activation arena as the device's allocator counts it */
  uint64_t workspace; /* backend state (XNNPACK packed weights, operator state) */
  uint64_t predicted; /* weights + arena + workspace */
  uint64_t measured;  /* host: gg_host_alloc + XNNPACK's allocator; device: its pool's allocated bytes */
} gg_engine_dev_mem;

/* How many ops of one run execute on one backend. */
typedef struct gg_engine_backend_ops {
  char name[16]; /* "naive", "xnnpack", "sim", "opencl" */
  int n_ops;
} gg_engine_backend_ops;

/* Memory of one prepared session, in bytes. predicted = weights + arena +
 * workspace is the number the resilience layer budgets with; measured is
 * what the memory manager's accounting (gg_host_alloc: weights and arena;
 * a device's gg_pool) plus XNNPACK's counting allocator (packed weights,
 * operator state) saw allocated for this model and session. The totals
 * below add up the devices; dev[] has each device (dev[0] is the host),
 * and predicted == measured holds per device. */
typedef struct gg_engine_mem {
  uint64_t weights;         /* all devices */
  uint64_t arena;           /* planned arena bytes (peak + backend read slack), all devices */
  uint64_t arena_peak;      /* planner's peak: max(offset + size), summed over devices */
  uint64_t arena_no_reuse;  /* what the arenas would be without reuse */
  uint64_t workspace;       /* backend-held bytes (XNNPACK packed weights, state) */
  uint64_t predicted;       /* weights + arena + workspace */
  uint64_t measured;        /* counted by the allocators */
  int n_ops, n_ops_xnnpack; /* ops per run, and how many run on XNNPACK */
  int n_devices;            /* entries in dev[] */
  gg_engine_dev_mem dev[GG_ENGINE_MAX_DEVICES];
  int n_backends;           /* entries in ops[]: every backend of the session, with 0 ops too */
  gg_engine_backend_ops ops[GG_ENGINE_MAX_BACKENDS];
  /* Memory-aware plan (docs/engine.md): "fast" when every node runs its
   * fastest algorithm, "lean" when some were downgraded to fit the device
   * pool's budget. plan_fast / plan_lean: the device's predicted bytes with
   * the fastest / the leanest algorithms (equal when no node has a choice);
   * n_lean_ops: nodes running a slower, leaner algorithm. */
  char plan[8];
  uint64_t plan_fast, plan_lean;
  int n_lean_ops;
} gg_engine_mem;

/* Prepares a model for one input shape: shape inference, memory plan, one
 * arena allocation, backend operators (weights packed once). shape/ndim
 * give input 0's shape; NULL takes the placeholder's with unknown dims as 1.
 * After this nothing is allocated per run. Returns 0, GG_EINVAL (shape does
 * not match the placeholder), GG_EPARSE/GG_EUNSUPPORTED (naming the node),
 * GG_ENOTIMPL (XNNPACK asked for, not built), GG_ENOMEM. *out owned by the
 * caller; the model must outlive it. */
int gg_session_new(gg_model *m, const int64_t *shape, int ndim, const gg_session_opts *opts,
                   gg_session **out, char *err, size_t errlen);
/* Same, computing in device memory: `pool` (borrowed; must outlive the
 * session; NULL = gg_session_new). When the pool's device has an engine
 * backend ("sim" built in; others register themselves, see
 * src/engine/backend.h), the nodes that backend supports run on it, one
 * launch per node, with their tensors and the weights they read in this
 * pool (taken here, held until gg_session_free); the rest run on the CPU,
 * with copies where data crosses. Model input and outputs stay host memory
 * (uploaded and downloaded by each run). A device without a backend:
 * everything runs on the host. Extra failures: the pool's GG_EDEV_OOM /
 * GG_EBUDGET (naming the arena or the weights), or the backend's init error. */
int gg_session_new_on(gg_model *m, const int64_t *shape, int ndim, const gg_session_opts *opts,
                      struct gg_pool *pool, gg_session **out, char *err, size_t errlen);
/* Same, for models with several inputs: shapes[i] (ndims[i] dims) is input
 * i's shape, for i < n_inputs; a NULL shapes[i], or an input past n_inputs,
 * takes the placeholder's shape with unknown dims as 1; a free dim may be
 * given as 0 (a zero-size tensor: docs/ONNX.md "Zero-size tensors"). pool as in
 * gg_session_new_on (NULL: the host). Once the shapes are known, the nodes
 * whose values follow from them alone (ONNX shape subgraphs: Shape, Gather,
 * Concat, ... feeding Reshape/Expand/Resize) are evaluated here; their
 * values are held by the session and counted in its weights. */
int gg_session_new_shapes(gg_model *m, int n_inputs, const int64_t *const *shapes, const int *ndims,
                          const gg_session_opts *opts, struct gg_pool *pool, gg_session **out,
                          char *err, size_t errlen);
/* Frees a session; NULL is a no-op. */
void gg_session_free(gg_session *s);

/* Input i's buffer (float32, the session's shape; borrowed, in the arena):
 * write the preprocessed input here before gg_session_run. info may be NULL. */
float *gg_session_input(gg_session *s, int i, gg_tensor_info *info);
/* Input i's buffer whatever its type (info->dtype says which: float or
 * int32 elements); borrowed, in the arena. gg_session_input returns NULL
 * for an int32 input. */
void *gg_session_input_data(gg_session *s, int i, gg_tensor_info *info);
/* Runs the graph once. Allocates nothing. Returns 0 or a kernel error. */
int gg_session_run(gg_session *s, char *err, size_t errlen);
/* Output i after a run (borrowed, valid until the next run or free);
 * info gets name and shape. NULL when i is out of range. */
const float *gg_session_output(gg_session *s, int i, gg_tensor_info *info);
/* Output i whatever its type (info->dtype); NULL when out of range.
 * gg_session_output returns NULL for an int32 output. */
const void *gg_session_output_data(gg_session *s, int i, gg_tensor_info *info);
/* Element count of output i (0 when out of range). */
int64_t gg_session_output_elems(gg_session *s, int i);
void gg_session_memory(const gg_session *s, gg_engine_mem *out);
/* Ops of one run that execute on `backend` ("naive", "xnnpack", "sim",
 * "opencl"); 0 for a backend the session does not use. */
int gg_session_ops_by_backend(const gg_session *s, const char *backend);

#ifdef __cplusplus
}
#endif
#endif
