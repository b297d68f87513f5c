/* Memory budget specs: "3.5G", "0.8", "80%", "80%free". */
#include "gpuguard/core.h"
#include "gpuguard/error.h"
#include "gpuguard/memory.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int fail(char *err, size_t errlen, const char *spec, const char *why) {
  if (err && errlen)
    snprintf(err, errlen,
             "invalid memory budget '%s': %s; expected bytes (3.5G, 4560M), a fraction of the "
             "device total (0.8, 80%%) or of free memory (80%%free), or 'none'",
             spec, why);
  return GG_EINVAL;
}

int gg_mem_budget_parse(const char *spec, gg_mem_budget *out, char *err, size_t errlen) {
  if (!out) return GG_EINVAL;
  memset(out, 0, sizeof *out);
  if (err && errlen) err[0] = 0;
  if (!spec) return 0;
  char buf[64];
  /* trim spaces */
  while (isspace((unsigned char)*spec))
    spec++;
  size_t n = strlen(spec);
  while (n && isspace((unsigned char)spec[n - 1]))
    n--;
  if (n >= sizeof buf) return fail(err, errlen, spec, "too long");
  memcpy(buf, spec, n);
  buf[n] = 0;
  if (!n || !strcasecmp(buf, "none") || !strcasecmp(buf, "unlimited") || !strcmp(buf, "0"))
    return 0;
  int of_free = 0;
  if (n > 4 && !strcasecmp(buf + n - 4, "free")) {
    of_free = 1;
    n -= 4;
    buf[n] = 0;
    while (n && isspace((unsigned char)buf[n - 1]))
      buf[--n] = 0;
  }
  int percent = n && buf[n - 1] == '%';
  if (percent) buf[--n] = 0;
  if (!n || buf[0] == '-' || buf[0] == '+') return fail(err, errlen, spec, "not a positive value");
  /* A bare number: a fraction when <= 1 or marked %/free. */
  char *end = NULL;
  errno = 0;
  double v = strtod(buf, &end);
  int bare = end != buf && *end == 0 && errno == 0 && isfinite(v);
  if (percent || of_free) {
    if (!bare) return fail(err, errlen, spec, "the fraction is not a number");
    double f = percent ? v / 100.0 : v;
    if (!(f > 0.0 && f <= 1.0))
      return fail(err, errlen, spec,
                  percent ? "a percentage must be in (0, 100]" : "a fraction must be in (0, 1]");
    out->kind = of_free ? GG_BUDGET_OF_FREE : GG_BUDGET_OF_TOTAL;
    out->fraction = f;
    return 0;
  }
  if (bare && v > 0.0 && v <= 1.0) {
    out->kind = GG_BUDGET_OF_TOTAL;
    out->fraction = v;
    return 0;
  }
  uint64_t bytes = 0;
  int rc = gg_parse_size(buf, &bytes);
  if (rc == GG_ERANGE) return fail(err, errlen, spec, "too large");
  if (rc) return fail(err, errlen, spec, "not a size");
  if (!bytes) return 0;
  out->kind = GG_BUDGET_BYTES;
  out->bytes = bytes;
  return 0;
}

uint64_t gg_mem_budget_resolve(const gg_mem_budget *b, uint64_t total, uint64_t free_now) {
  if (!b) return 0;
  switch (b->kind) {
  case GG_BUDGET_BYTES: return b->bytes;
  case GG_BUDGET_OF_TOTAL: return (uint64_t)((double)total * b->fraction);
  case GG_BUDGET_OF_FREE: return (uint64_t)((double)free_now * b->fraction);
  default: return 0;
  }
}
