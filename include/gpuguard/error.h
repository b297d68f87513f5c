/* gpuguard error codes: every library call returns 0 or a negative GG_E* code. */
#ifndef GPUGUARD_ERROR_H
#define GPUGUARD_ERROR_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* One table drives the enum, gg_strerror() and gg_err_name(), so they never
 * drift apart. Append only: codes are stable across releases. */
#define GG_ERROR_TABLE(X)                                                           \
  X(INVAL, "invalid argument")                                                      \
  X(NOMEM, "out of host memory")                                                    \
  X(IO, "input/output error")                                                       \
  X(PARSE, "malformed input")                                                       \
  X(NOTFOUND, "not found")                                                          \
  X(RANGE, "value out of range")                                                    \
  X(UNSUPPORTED, "operation not supported on this device")                          \
  X(NOTIMPL, "not available in this build")                                         \
  X(NODEV, "no such device")                                                        \
  X(DEV_OOM, "device out of memory")                                                \
  X(BUDGET, "memory budget exceeded")                                               \
  X(OUT_OF_RESOURCES, "device out of resources")                                    \
  X(LAUNCH, "kernel launch failed")                                                 \
  X(DEVICE_LOST, "device lost (sticky error; device must be reset)")                \
  X(TIMEOUT, "operation timed out")                                                 \
  X(COMPILE, "kernel compilation failed")                                           \
  X(DRIVER, "driver error")                                                         \
  X(BUSY, "resource busy")                                                          \
  X(CANCELED, "operation canceled")                                                 \
  X(TOO_LARGE, "input too large")                                                   \
  X(STATE, "invalid state for this operation")

typedef enum gg_err {
  GG_OK = 0,
#define GG__ERR_ENUM(name, msg) GG_E##name,
  GG__ERR_FIRST_ = -1000,
  GG_ERROR_TABLE(GG__ERR_ENUM)
#undef GG__ERR_ENUM
  GG_E_COUNT_END
} gg_err;

/* Human-readable message for a code; never NULL ("unknown error" for others). */
const char *gg_strerror(int err);
/* Symbolic name ("GG_EDEV_OOM") for a code; never NULL. */
const char *gg_err_name(int err);
/* Writes the printf-style message into err (truncated to errlen; nothing when
 * err is NULL or errlen 0) and returns code, so a failing path reads
 * `return gg_errf(err, errlen, GG_EPARSE, "node '%s': ...", name)`. */
int gg_errf(char *err, size_t errlen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#ifdef __cplusplus
}
#endif
#endif
