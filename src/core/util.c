/* Sizes, clocks and /proc readers. */
#include "gpuguard/core.h"
#include "gpuguard/error.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

int gg_parse_size(const char *s, uint64_t *out) {
  if (!s || !out) return GG_EINVAL;
  while (isspace((unsigned char)*s)) s++;
  if (!*s || *s == '-') return GG_EINVAL;
  errno = 0;
  char *end = NULL;
  double v = strtod(s, &end);
  if (end == s || errno == ERANGE || !isfinite(v) || v < 0) return GG_EINVAL;
  while (isspace((unsigned char)*end)) end++;
  double mul = 1;
  switch (toupper((unsigned char)*end)) {
  case 'K': mul = 1024.0; end++; break;
  case 'M': mul = 1024.0 * 1024; end++; break;
  case 'G': mul = 1024.0 * 1024 * 1024; end++; break;
  case 'T': mul = 1024.0 * 1024 * 1024 * 1024; end++; break;
  default: break;
  }
  if (mul > 1 && (*end == 'i' || *end == 'I')) end++;
  if (*end == 'b' || *end == 'B') end++;
  while (isspace((unsigned char)*end)) end++;
  if (*end) return GG_EINVAL;
  double bytes = v * mul;
  if (bytes >= 18446744073709551616.0) return GG_ERANGE;
  *out = (uint64_t)bytes;
  return 0;
}

const char *gg_format_size(uint64_t bytes, char *buf, size_t len) {
  static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = (double)bytes;
  int u = 0;
  while (v >= 1024.0 && u < 4) {
    v /= 1024.0;
    u++;
  }
  if (u == 0)
    snprintf(buf, len, "%llu B", (unsigned long long)bytes);
  else
    snprintf(buf, len, "%.2f %s", v, units[u]);
  return buf;
}

uint64_t gg_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Reads "Key:   123 kB" from a /proc file; returns kB or -1. */
static long long proc_kb(const char *path, const char *key) {
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  char line[256];
  size_t klen = strlen(key);
  long long val = -1;
  while (fgets(line, sizeof line, f)) {
    if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
      val = strtoll(line + klen + 1, NULL, 10);
      break;
    }
  }
  fclose(f);
  return val;
}

int gg_proc_mem_read(gg_proc_mem *out) {
  memset(out, 0, sizeof *out);
  long long rss = proc_kb("/proc/self/status", "VmRSS");
  long long vms = proc_kb("/proc/self/status", "VmSize");
  long long total = proc_kb("/proc/meminfo", "MemTotal");
  long long avail = proc_kb("/proc/meminfo", "MemAvailable");
  if (rss < 0 || vms < 0 || total <= 0) return GG_EIO;
  out->rss_mb = (double)rss / 1024.0;
  out->vms_mb = (double)vms / 1024.0;
  out->percent = 100.0 * (double)rss / (double)total;
  out->host_total_bytes = (uint64_t)total * 1024;
  out->host_available_bytes = avail > 0 ? (uint64_t)avail * 1024 : 0;
  return 0;
}

static int b64_value(unsigned char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+' || c == '-') return 62;
  if (c == '/' || c == '_') return 63;
  return -1;
}

int gg_base64_decode(const char *s, size_t max_out, unsigned char **out, size_t *out_len,
                     char *err, size_t errlen) {
  *out = NULL, *out_len = 0;
  if (!strncmp(s, "data:", 5)) {
    const char *c = strchr(s, ',');
    if (c) s = c + 1;
  }
  size_t n = strlen(s);
  if (n / 4 * 3 > max_out)
    return gg_errf(err, errlen, GG_ETOO_LARGE, "the base64 data decodes to more than %zu bytes",
                   max_out);
  unsigned char *b = malloc(n / 4 * 3 + 3);
  if (!b) return gg_errf(err, errlen, GG_ENOMEM, "out of memory decoding base64");
  size_t o = 0;
  unsigned acc = 0;
  int bits = 0, pad = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == ' ' || c == '\n' || c == '\r' || c == '\t') continue;
    int v = c == '=' ? -2 : pad ? -1 : b64_value(c);
    if (v == -2) { /* padding: only at the end */
      pad = 1;
      continue;
    }
    if (v < 0) {
      free(b);
      return gg_errf(err, errlen, GG_EPARSE, "not valid base64 (byte %zu)", i);
    }
    acc = (acc << 6) | (unsigned)v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      b[o++] = (unsigned char)(acc >> bits);
    }
  }
  *out = b, *out_len = o;
  return 0;
}
