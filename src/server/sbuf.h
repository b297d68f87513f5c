/* A growing text buffer for the server's renderers (Prometheus text):
 * printf-style appends, out-of-memory remembered instead of checked per
 * call. Internal to src/server (render.c implements it). */
#ifndef GG_SERVER_SBUF_H
#define GG_SERVER_SBUF_H

#include <stddef.h>

typedef struct gg_sbuf {
  char *p; /* malloc'd, NUL-terminated once anything was appended; the caller frees */
  size_t len, cap;
  int oom; /* 1: an append failed; p holds what came before */
} gg_sbuf;

void gg__sb_printf(gg_sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
