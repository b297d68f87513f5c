/* Fault plans for the simulated GPU: "oom@3,launch%0.1,sticky@7,hang@2". */
#include "gpuguard/device.h"
#include "gpuguard/error.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_RULES 32

typedef struct fault_rule {
  gg_fault_kind kind;
  uint64_t at;  /* KIND@N: N (1-based); 0 for a probability rule */
  double prob;  /* KIND%P */
} fault_rule;

struct gg_fault_plan {
  fault_rule rules[MAX_RULES];
  size_t n;
  uint64_t seed;
  uint64_t rng;
};

static const char *const k_kind_names[GG_FAULT_KIND_COUNT] = {"oom", "launch", "sticky", "hang"};

const char *gg_fault_kind_name(gg_fault_kind k) {
  return (k >= 0 && k < GG_FAULT_KIND_COUNT) ? k_kind_names[k] : "?";
}

/* splitmix64: small, fast, and identical on every platform. */
static uint64_t next_u64(uint64_t *s) {
  uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static double next_unit(uint64_t *s) { return (double)(next_u64(s) >> 11) * 0x1.0p-53; }

int gg_fault_plan_parse(const char *spec, uint64_t seed, gg_fault_plan **out, char *err,
                        size_t errlen) {
  if (!out) return GG_EINVAL;
  *out = NULL;
  if (err && errlen) err[0] = 0;
  gg_fault_plan *p = calloc(1, sizeof *p);
  if (!p) return GG_ENOMEM;
  p->seed = seed;
  p->rng = seed;
  const char *s = spec ? spec : "";
  while (*s) {
    size_t len = strcspn(s, ",");
    char tok[64];
    if (len == 0) { /* tolerate "a,,b" and a trailing comma */
      s++;
      continue;
    }
    if (len >= sizeof tok) {
      snprintf(err, errlen, "fault rule too long: '%.*s...'", 32, s);
      goto bad;
    }
    memcpy(tok, s, len);
    tok[len] = 0;
    s += len;
    if (*s == ',') s++;
    char *t = tok;
    while (isspace((unsigned char)*t)) t++;
    size_t tl = strlen(t);
    while (tl && isspace((unsigned char)t[tl - 1])) t[--tl] = 0;
    char *op = strpbrk(t, "@%");
    if (!op) {
      snprintf(err, errlen,
               "fault rule '%s' has no '@N' or '%%P': write KIND@N (the N-th operation fails) "
               "or KIND%%P (each fails with probability P), e.g. oom@3 or launch%%0.1",
               t);
      goto bad;
    }
    int kind = -1;
    for (int k = 0; k < GG_FAULT_KIND_COUNT; k++)
      if ((size_t)(op - t) == strlen(k_kind_names[k]) && !strncmp(t, k_kind_names[k], (size_t)(op - t)))
        kind = k;
    if (kind < 0) {
      snprintf(err, errlen,
               "unknown fault kind '%.*s' in '%s': expected oom, launch, sticky or hang",
               (int)(op - t), t, t);
      goto bad;
    }
    if (p->n == MAX_RULES) {
      snprintf(err, errlen, "too many fault rules (at most %d)", MAX_RULES);
      goto bad;
    }
    fault_rule *r = &p->rules[p->n];
    r->kind = (gg_fault_kind)kind;
    char *end = NULL;
    errno = 0;
    if (*op == '@') {
      if (!isdigit((unsigned char)op[1])) goto bad_num;
      unsigned long long v = strtoull(op + 1, &end, 10);
      if (errno || *end || v == 0) goto bad_num;
      r->at = v;
    } else {
      if (!op[1]) goto bad_num;
      double v = strtod(op + 1, &end);
      if (errno || *end || !isfinite(v) || v < 0 || v > 1) goto bad_num;
      r->prob = v;
    }
    p->n++;
    continue;
  bad_num:
    snprintf(err, errlen,
             *op == '@' ? "bad operation number in fault rule '%s': N is a whole number >= 1 "
                          "(the N-th operation of that kind fails)"
                        : "bad probability in fault rule '%s': P is a number between 0 and 1",
             t);
    goto bad;
  }
  *out = p;
  return 0;
bad:
  free(p);
  return GG_EINVAL;
}

void gg_fault_plan_free(gg_fault_plan *plan) { free(plan); }

size_t gg_fault_plan_rules(const gg_fault_plan *plan) { return plan ? plan->n : 0; }

int gg_fault_plan_check(gg_fault_plan *plan, gg_fault_kind kind, uint64_t n) {
  if (!plan) return 0;
  int fire = 0;
  for (size_t i = 0; i < plan->n; i++) {
    const fault_rule *r = &plan->rules[i];
    if (r->kind != kind) continue;
    if (r->at) {
      fire |= r->at == n;
    } else {
      /* always draw, so the sequence depends only on the calls made */
      double u = next_unit(&plan->rng);
      fire |= u < r->prob;
    }
  }
  return fire;
}

const char *gg_fault_plan_describe(const gg_fault_plan *plan, char *buf, size_t len) {
  if (!buf || !len) return buf;
  buf[0] = 0;
  if (!plan || !plan->n) {
    snprintf(buf, len, "none");
    return buf;
  }
  size_t o = 0;
  for (size_t i = 0; i < plan->n && o < len; i++) {
    const fault_rule *r = &plan->rules[i];
    int w = r->at ? snprintf(buf + o, len - o, "%s%s@%llu", i ? "," : "",
                             k_kind_names[r->kind], (unsigned long long)r->at)
                  : snprintf(buf + o, len - o, "%s%s%%%g", i ? "," : "", k_kind_names[r->kind],
                             r->prob);
    if (w < 0) break;
    o += (size_t)w;
  }
  if (o < len) snprintf(buf + o, len - o, " seed=%llu", (unsigned long long)plan->seed);
  return buf;
}
