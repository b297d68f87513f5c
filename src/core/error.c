/* Error names and messages, generated from GG_ERROR_TABLE. */
#include "gpuguard/error.h"

#include <stdarg.h>
#include <stdio.h>

const char *gg_strerror(int err) {
  switch (err) {
  case GG_OK: return "success";
#define GG__ERR_MSG(name, msg) case GG_E##name: return msg;
    GG_ERROR_TABLE(GG__ERR_MSG)
#undef GG__ERR_MSG
  default: return "unknown error";
  }
}

const char *gg_err_name(int err) {
  switch (err) {
  case GG_OK: return "GG_OK";
#define GG__ERR_NAME(name, msg) case GG_E##name: return "GG_E" #name;
    GG_ERROR_TABLE(GG__ERR_NAME)
#undef GG__ERR_NAME
  default: return "GG_E?";
  }
}

int gg_errf(char *err, size_t errlen, int code, const char *fmt, ...) {
  if (err && errlen) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
  }
  return code;
}
