/* Leveled logging to stderr with component tags. */
#include "gpuguard/log.h"
#include "gpuguard/error.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static _Atomic int g_level = GG_LOG_INFO;
static pthread_mutex_t g_sink_lock = PTHREAD_MUTEX_INITIALIZER;
static gg_log_sink g_sink;
static void *g_sink_user;

static const char *const k_names[GG_LOG_LEVEL_COUNT] = {"debug", "info", "warn", "error",
                                                        "off"};

void gg_log_set_level(gg_log_level level) {
  if (level >= 0 && level < GG_LOG_LEVEL_COUNT) atomic_store(&g_level, (int)level);
}

gg_log_level gg_log_get_level(void) { return (gg_log_level)atomic_load(&g_level); }

int gg_log_level_parse(const char *s, gg_log_level *out) {
  if (!s) return GG_EINVAL;
  for (int i = 0; i < GG_LOG_LEVEL_COUNT; i++) {
    if (strcasecmp(s, k_names[i]) == 0) {
      *out = (gg_log_level)i;
      return 0;
    }
  }
  if (strcasecmp(s, "warning") == 0) {
    *out = GG_LOG_WARN;
    return 0;
  }
  return GG_EINVAL;
}

const char *gg_log_level_name(gg_log_level level) {
  return (level >= 0 && level < GG_LOG_LEVEL_COUNT) ? k_names[level] : "?";
}

void gg_log_set_sink(gg_log_sink sink, void *user) {
  pthread_mutex_lock(&g_sink_lock);
  g_sink = sink;
  g_sink_user = user;
  pthread_mutex_unlock(&g_sink_lock);
}

void gg_logv(gg_log_level level, const char *tag, const char *fmt, va_list ap) {
  if ((int)level < atomic_load(&g_level) || level >= GG_LOG_OFF) return;
  static const char *const up[] = {"DEBUG", "INFO", "WARN", "ERROR"};
  char line[2048];
  struct timespec ts;
  struct tm tm;
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  int n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s [%s] ",
                   tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                   tm.tm_sec, ts.tv_nsec / 1000000, up[level], tag ? tag : "-");
  if (n < 0) return;
  size_t used = (size_t)n < sizeof line ? (size_t)n : sizeof line - 1;
  int m = vsnprintf(line + used, sizeof line - used, fmt, ap);
  if (m > 0) used += (size_t)m < sizeof line - used ? (size_t)m : sizeof line - used - 1;
  /* One event, one line: flatten embedded newlines. */
  for (size_t i = 0; i < used; i++)
    if (line[i] == '\n' || line[i] == '\r') line[i] = ' ';
  if (used >= sizeof line - 1) used = sizeof line - 2;
  line[used++] = '\n';
  line[used] = '\0';
  ssize_t w = write(STDERR_FILENO, line, used);
  (void)w;
  pthread_mutex_lock(&g_sink_lock);
  if (g_sink) g_sink(level, line, g_sink_user);
  pthread_mutex_unlock(&g_sink_lock);
}

void gg_log(gg_log_level level, const char *tag, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  gg_logv(level, tag, fmt, ap);
  va_end(ap);
}
