/* Table-driven option parsing: defaults < environment < flags. */
#include "core/opts.h"
#include "gpuguard/core.h"
#include "gpuguard/error.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int parse_bool(const char *v, int *out) {
  if (!strcasecmp(v, "1") || !strcasecmp(v, "true") || !strcasecmp(v, "yes") ||
      !strcasecmp(v, "on")) {
    *out = 1;
    return 0;
  }
  if (!strcasecmp(v, "0") || !strcasecmp(v, "false") || !strcasecmp(v, "no") ||
      !strcasecmp(v, "off")) {
    *out = 0;
    return 0;
  }
  return GG_EINVAL;
}

static int set_value(const gg_opt *o, void *cfg, const char *v, const char *origin, char *err,
                     size_t errlen) {
  char *field = (char *)cfg + o->offset;
  char *end = NULL;
  switch (o->type) {
  case GG_OPT_STR: *(const char **)field = v; return 0;
  case GG_OPT_INT: {
    if (!v || !*v) {
      *(int *)field = 0;
      return 0;
    }
    errno = 0;
    long n = strtol(v, &end, 10);
    if (errno || *end || n < INT_MIN || n > INT_MAX)
      return gg_errf(err, errlen, GG_EINVAL, "%s: expected an integer, got '%s'", origin, v);
    *(int *)field = (int)n;
    return 0;
  }
  case GG_OPT_SIZE: {
    if (!v || !*v) {
      *(uint64_t *)field = 0;
      return 0;
    }
    if (gg_parse_size(v, (uint64_t *)field) != 0)
      return gg_errf(err, errlen, GG_EINVAL, "%s: expected a size like 4096, 64K, 3.5G, got '%s'",
                     origin, v);
    return 0;
  }
  case GG_OPT_BOOL:
    if (!v || !*v) {
      *(int *)field = 0;
      return 0;
    }
    if (parse_bool(v, (int *)field) != 0)
      return gg_errf(err, errlen, GG_EINVAL, "%s: expected true or false, got '%s'", origin, v);
    return 0;
  case GG_OPT_DOUBLE: {
    if (!v || !*v) {
      *(double *)field = 0;
      return 0;
    }
    errno = 0;
    double d = strtod(v, &end);
    if (errno || *end)
      return gg_errf(err, errlen, GG_EINVAL, "%s: expected a number, got '%s'", origin, v);
    *(double *)field = d;
    return 0;
  }
  default: return gg_errf(err, errlen, GG_EINVAL, "%s: bad option table", origin);
  }
}

int gg_opts_parse(const gg_opt *opts, void *cfg, int argc, char **argv, int *first_positional,
                  char *err, size_t errlen) {
  int rc;
  for (const gg_opt *o = opts; o->name; o++) {
    if ((rc = set_value(o, cfg, o->def, "default", err, errlen)) != 0) return rc;
  }
  for (const gg_opt *o = opts; o->name; o++) {
    const char *ev = o->env ? getenv(o->env) : NULL;
    if (ev && (rc = set_value(o, cfg, ev, o->env, err, errlen)) != 0) return rc;
  }
  int i = 1;
  for (; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--")) {
      i++;
      break;
    }
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) return 1;
    if (strncmp(a, "--", 2) != 0) break;
    const char *name = a + 2;
    const char *eq = strchr(name, '=');
    size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
    int negate = 0;
    const gg_opt *hit = NULL;
    for (const gg_opt *o = opts; o->name; o++) {
      if (strlen(o->name) == nlen && !strncmp(o->name, name, nlen)) {
        hit = o;
        break;
      }
      if (o->type == GG_OPT_BOOL && nlen == strlen(o->name) + 3 && !strncmp(name, "no-", 3) &&
          !strncmp(name + 3, o->name, nlen - 3)) {
        hit = o;
        negate = 1;
        break;
      }
    }
    if (!hit)
      return gg_errf(err, errlen, GG_EINVAL, "unknown option '%.*s' (see --help)", (int)nlen + 2,
                     a);
    const char *val;
    if (eq) {
      val = eq + 1;
    } else if (hit->type == GG_OPT_BOOL) {
      val = negate ? "false" : "true";
    } else {
      if (i + 1 >= argc)
        return gg_errf(err, errlen, GG_EINVAL, "option '--%s' needs a value", hit->name);
      val = argv[++i];
    }
    if (negate && eq) return gg_errf(err, errlen, GG_EINVAL, "'--no-%s' takes no value", hit->name);
    char origin[96];
    snprintf(origin, sizeof origin, "--%s", hit->name);
    if ((rc = set_value(hit, cfg, val, origin, err, errlen)) != 0) return rc;
  }
  if (first_positional) *first_positional = i;
  return 0;
}

void gg_opts_print_help(FILE *out, const gg_opt *opts) {
  fprintf(out, "Options (flags win over environment variables):\n");
  for (const gg_opt *o = opts; o->name; o++) {
    char flag[80];
    if (o->type == GG_OPT_BOOL)
      snprintf(flag, sizeof flag, "--%s / --no-%s", o->name, o->name);
    else
      snprintf(flag, sizeof flag, "--%s %s", o->name, o->metavar ? o->metavar : "VALUE");
    fprintf(out, "  %-30s %s\n", flag, o->help);
    fprintf(out, "  %-30s   default: %s%s%s\n", "", (o->def && *o->def) ? o->def : "(none)",
            o->env ? "   env: " : "", o->env ? o->env : "");
  }
}

int gg_opts_cli(const char *cmd, const char *usage, const gg_opt *opts, void *cfg, int argc,
                char **argv) {
  char err[1024] = "";
  int first = 0;
  int rc = gg_opts_parse(opts, cfg, argc, argv, &first, err, sizeof err);
  if (rc == 1) {
    fputs(usage, stdout);
    gg_opts_print_help(stdout, opts);
    return 0;
  }
  if (rc < 0) {
    fprintf(stderr, "gpuguard %s: %s\n", cmd, err);
    return 2;
  }
  if (first < argc) {
    fprintf(stderr, "gpuguard %s: unexpected argument '%s' (see --help)\n", cmd, argv[first]);
    return 2;
  }
  return -1;
}
