/* gpuguard failure taxonomy: one set of classes for every GPU failure, from
 * gpuguard's own error codes, CUDA / cuDNN / cuBLAS / OpenCL status codes and
 * application log lines, each with a cause and a recommended action. The
 * resilience layer decides what to do from the class; doctor --explain prints
 * the same table's cause and fix. */
#ifndef GPUGUARD_CLASSIFY_H
#define GPUGUARD_CLASSIFY_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Append only; names are stable ("oom", "device_lost", ...). */
typedef enum gg_fail_class {
  GG_FAIL_NONE = 0,          /* not a failure */
  GG_FAIL_OOM,               /* device (or host) memory exhausted */
  GG_FAIL_OUT_OF_RESOURCES,  /* registers, shared memory, queue slots, busy device */
  GG_FAIL_LAUNCH,            /* a kernel could not be launched; context still usable */
  GG_FAIL_DEVICE_LOST,       /* sticky: context/queue dead until the device is reset */
  GG_FAIL_HANG,              /* work never completed (watchdog, timeout) */
  GG_FAIL_COMPILE,           /* PTX/OpenCL/XLA compilation or missing libdevice/ptxas */
  GG_FAIL_DRIVER,            /* driver absent, too old, mismatched, not initialised */
  GG_FAIL_UNSUPPORTED,       /* the device or build cannot do this at all */
  GG_FAIL_BAD_INPUT,         /* the request itself is wrong; not the device's fault */
  GG_FAIL_CLASS_COUNT
} gg_fail_class;

/* What a supervisor should do about a class (gg_fail_class_recovery). */
typedef enum gg_fail_action {
  GG_ACTION_NONE = 0,        /* nothing to do */
  GG_ACTION_SHRINK_RETRY,    /* free caches / smaller batch, then retry on the same device */
  GG_ACTION_RETRY,           /* transient: retry the same work (with backoff) */
  GG_ACTION_RESET_DEVICE,    /* reset the device (drop all its allocations), then retry */
  GG_ACTION_RESTART_WORKER,  /* kill the worker process that owns the device, start a new one */
  GG_ACTION_FALLBACK,        /* use another device (cpu) for this work */
  GG_ACTION_FIX_SETUP,       /* operator must fix the installation; see gpuguard doctor */
  GG_ACTION_REJECT,          /* return the error to the client; do not retry */
  GG_ACTION_COUNT
} gg_fail_action;

/* Stable short name ("oom", "device_lost"); never NULL ("?" when out of range). */
const char *gg_fail_class_name(gg_fail_class c);
/* One sentence saying what the class means. Never NULL. */
const char *gg_fail_class_description(gg_fail_class c);
/* One sentence saying what to do about it (for people). Never NULL. */
const char *gg_fail_class_advice(gg_fail_class c);
/* Machine-readable recommended action for a supervisor. */
gg_fail_action gg_fail_class_recovery(gg_fail_class c);
/* Stable short name of an action ("reset_device"). Never NULL. */
const char *gg_fail_action_name(gg_fail_action a);
/* 1 when the failure poisons the device until reset (DEVICE_LOST, HANG). */
int gg_fail_class_is_sticky(gg_fail_class c);
/* Parses a class name back; returns GG_FAIL_CLASS_COUNT when unknown. */
gg_fail_class gg_fail_class_from_name(const char *name);

/* Class of a gpuguard error code (0 -> NONE; unknown negative -> DRIVER). */
gg_fail_class gg_classify_err(int gg_err);

/* CUDA driver API CUresult (values as in cuda.h, e.g. 2 = CUDA_ERROR_OUT_OF_MEMORY). */
gg_fail_class gg_classify_cuda(int curesult);
/* The GG_E* code a CUresult maps to (0 for CUDA_SUCCESS). */
int gg_err_from_cuda(int curesult);
/* "CUDA_ERROR_OUT_OF_MEMORY"; "CUDA_ERROR_?" when unknown. Never NULL. */
const char *gg_cuda_error_name(int curesult);

/* OpenCL cl_int error code (e.g. -5 = CL_OUT_OF_RESOURCES). */
gg_fail_class gg_classify_cl(int cl_err);
int gg_err_from_cl(int cl_err);
const char *gg_cl_error_name(int cl_err);

/* cuDNN cudnnStatus_t (both the cuDNN 8 values 1..14 and the cuDNN 9 values
 * 1000..5999) and cuBLAS cublasStatus_t. */
gg_fail_class gg_classify_cudnn(int status);
int gg_err_from_cudnn(int status);
const char *gg_cudnn_status_name(int status);
gg_fail_class gg_classify_cublas(int status);
int gg_err_from_cublas(int status);
const char *gg_cublas_status_name(int status);

/* Looks up a symbolic status name from any of the APIs above
 * ("CUDA_ERROR_ILLEGAL_ADDRESS", "CUDNN_STATUS_ALLOC_FAILED",
 * "CUBLAS_STATUS_EXECUTION_FAILED", "CL_OUT_OF_RESOURCES"). Returns the class,
 * or GG_FAIL_CLASS_COUNT when the name is not known. *code (optional) gets
 * the numeric status. */
gg_fail_class gg_classify_status_name(const char *name, int *code);

/* ---- log lines ---------------------------------------------------------- */

/* What gg_classify_log_line() found in one line. Strings `id`, `cause` and
 * `fix` are static; the arrays are filled from the line. */
typedef struct gg_log_match {
  gg_fail_class cls;
  const char *id;            /* stable pattern id, e.g. "cuda-oom", "xla-libdevice", "nvidia-xid" */
  const char *cause;         /* what went wrong, for people */
  const char *fix;           /* the exact fix */
  char token[64];            /* status name seen on the line ("CUDNN_STATUS_ALLOC_FAILED"), or "" */
  int code;                  /* numeric status / Xid number when known, else 0 */
  uint64_t requested_bytes;  /* "Tried to allocate 2.00 GiB" -> 2147483648; 0 when absent */
  uint64_t free_bytes;       /* free memory the log reported; 0 when absent */
  uint64_t total_bytes;      /* total capacity the log reported; 0 when absent */
  char detail[256];          /* extracted specifics: sizes, Xid meaning, a path; "" when none */
} gg_log_match;

/* The longest prefix of a line that is classified: the work per line is
 * bounded, and a failure message fits many times over. */
#define GG_LOG_LINE_MAX (64 * 1024)

/* Recognises known GPU failures in one log line (no trailing newline needed),
 * looking at its first GG_LOG_LINE_MAX bytes. Returns 1 and fills *out on a
 * match, 0 when the line is not a known failure (then *out is cleared).
 * Never fails on odd input. */
int gg_classify_log_line(const char *line, gg_log_match *out);

/* The same for a line given as len bytes that may hold NUL bytes (a binary
 * log, a torn write): a NUL counts as a space, so a failure after it is still
 * seen. line may be NULL when len is 0. */
int gg_classify_log_bytes(const char *line, size_t len, gg_log_match *out);

/* Meaning of an NVIDIA Xid number ("GPU has fallen off the bus") and its
 * class; NULL / GG_FAIL_DRIVER for numbers not in the table. */
const char *gg_xid_meaning(int xid, gg_fail_class *cls);

#ifdef __cplusplus
}
#endif
#endif
