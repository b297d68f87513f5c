/* gpuguard logging: leveled, one line per event, tagged by component, to stderr. */
#ifndef GPUGUARD_LOG_H
#define GPUGUARD_LOG_H

#include <stdarg.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum gg_log_level {
  GG_LOG_DEBUG = 0,
  GG_LOG_INFO,
  GG_LOG_WARN,
  GG_LOG_ERROR,
  GG_LOG_OFF,
  GG_LOG_LEVEL_COUNT
} gg_log_level;

/* Sets the minimum level that is written. Thread-safe. */
void gg_log_set_level(gg_log_level level);
gg_log_level gg_log_get_level(void);
/* Parses "debug", "info", "warn", "error", "off". Returns 0 or GG_EINVAL. */
int gg_log_level_parse(const char *s, gg_log_level *out);
const char *gg_log_level_name(gg_log_level level);

/* Writes one line: "<UTC time> <LEVEL> [<tag>] <message>". The line is
 * written with a single write(2), so lines from threads never interleave. */
void gg_log(gg_log_level level, const char *tag, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void gg_logv(gg_log_level level, const char *tag, const char *fmt, va_list ap);

/* Redirects log lines to a callback as well (tests use it to capture lines).
 * Pass NULL to remove. The callback receives the full formatted line. */
typedef void (*gg_log_sink)(gg_log_level level, const char *line, void *user);
void gg_log_set_sink(gg_log_sink sink, void *user);

#define GG_DEBUG(tag, ...) gg_log(GG_LOG_DEBUG, tag, __VA_ARGS__)
#define GG_INFO(tag, ...) gg_log(GG_LOG_INFO, tag, __VA_ARGS__)
#define GG_WARN(tag, ...) gg_log(GG_LOG_WARN, tag, __VA_ARGS__)
#define GG_ERROR(tag, ...) gg_log(GG_LOG_ERROR, tag, __VA_ARGS__)

#ifdef __cplusplus
}
#endif
#endif
