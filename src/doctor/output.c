/* gpuguard doctor output: text report, JSON (schema gpuguard.doctor/1, see
 * docs/doctor.md), the sourceable environment script, and --explain. */
#include "doctor/doctor.h"
#include "gpuguard/classify.h"
#include "gpuguard/core.h"
#include "gpuguard/error.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *mark(gg_check_status s) {
  switch (s) {
  case GG_CHECK_OK: return "[ OK ]";
  case GG_CHECK_INFO: return "[INFO]";
  case GG_CHECK_WARN: return "[WARN]";
  case GG_CHECK_FAIL: return "[FAIL]";
  default: return "[ ?? ]";
  }
}

static const char *section_title(const char *s) {
  static const struct {
    const char *id, *title;
  } t[] = {{"driver", "NVIDIA driver"},
           {"toolkit", "CUDA toolkit"},
           {"libdevice", "libdevice / XLA"},
           {"env", "TensorFlow-era environment"},
           {"opencl", "OpenCL"},
           {"devices", "Devices (validation)"},
           {"memory", "Memory"}};
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
    if (!strcmp(t[i].id, s)) return t[i].title;
  return s;
}

void gg_doctor_print_text(const gg_doctor_report *r, FILE *out) {
  fprintf(out, "gpuguard doctor %s%s%s\n", GG_VERSION_STRING, strcmp(r->root, "/") ? ", root " : "",
          strcmp(r->root, "/") ? r->root : "");
  const char *cur = "";
  int n[GG_CHECK_STATUS_COUNT] = {0};
  for (size_t i = 0; i < r->nchecks; i++) {
    const gg_check *k = &r->checks[i];
    n[k->status]++;
    if (strcmp(cur, k->section)) {
      cur = k->section;
      fprintf(out, "\n%s\n", section_title(cur));
    }
    fprintf(out, "  %s %s\n", mark(k->status), k->message);
    if (k->cause[0]) fprintf(out, "         cause: %s\n", k->cause);
    if (k->fix[0]) fprintf(out, "         fix:   %s\n", k->fix);
  }
  int ex = gg_doctor_exit_status(r);
  fprintf(out, "\nSummary: %d ok, %d info, %d warnings, %d failures -> %s (exit %d)\n",
          n[GG_CHECK_OK], n[GG_CHECK_INFO], n[GG_CHECK_WARN], n[GG_CHECK_FAIL],
          ex == 2   ? "FAIL"
          : ex == 1 ? "WARN"
                    : "OK",
          ex);
  if (r->nenv)
    fprintf(out,
            "'gpuguard doctor --write-env gpu.env' writes the %zu variable(s) that make this "
            "machine work; then: . ./gpu.env\n",
            r->nenv);
}

/* ---- JSON ------------------------------------------------------------------------ */

static json_t *str_or_null(const char *s) {
  return s && *s ? json_string(s) : json_null();
}

char *gg_doctor_json(const gg_doctor_report *r) {
  json_t *o = json_object();
  int ex = gg_doctor_exit_status(r);
  json_object_set_new(o, "schema", json_string("gpuguard.doctor/1"));
  json_object_set_new(o, "version", json_string(GG_VERSION_STRING));
  json_object_set_new(o, "root", json_string(r->root));
  json_object_set_new(o, "status", json_string(ex == 2 ? "fail" : ex == 1 ? "warn" : "ok"));
  json_object_set_new(o, "exit_code", json_integer(ex));
  json_t *checks = json_array();
  for (size_t i = 0; i < r->nchecks; i++) {
    const gg_check *k = &r->checks[i];
    json_t *c = json_object();
    json_object_set_new(c, "id", json_string(k->id));
    json_object_set_new(c, "section", json_string(k->section));
    json_object_set_new(c, "status", json_string(gg_check_status_name(k->status)));
    json_object_set_new(c, "message", json_string(k->message));
    json_object_set_new(c, "cause", str_or_null(k->cause));
    json_object_set_new(c, "fix", str_or_null(k->fix));
    json_array_append_new(checks, c);
  }
  json_object_set_new(o, "checks", checks);

  char v[16];
  json_t *drv = json_object();
  json_object_set_new(drv, "nvidia_pci_gpus", json_integer(r->nvidia_pci_gpus));
  json_object_set_new(drv, "loaded", json_boolean(r->driver_loaded));
  json_object_set_new(drv, "version", str_or_null(r->driver_version));
  if (r->driver_cuda_version)
    snprintf(v, sizeof v, "%d.%d", r->driver_cuda_version / 1000,
             r->driver_cuda_version % 1000 / 10);
  json_object_set_new(drv, "cuda_version", r->driver_cuda_version ? json_string(v) : json_null());
  json_object_set_new(drv, "cuda_version_source", str_or_null(r->driver_cuda_source));
  json_object_set_new(drv, "device_nodes", json_integer(r->dev_nodes));
  json_object_set_new(drv, "libcuda_loaded", json_boolean(r->libcuda_loaded));
  json_object_set_new(drv, "libcuda_error", str_or_null(r->libcuda_error));
  json_object_set_new(drv, "cuinit",
                      r->cuda_init_rc >= 0 ? json_string(gg_cuda_error_name(r->cuda_init_rc))
                                           : json_null());
  json_object_set_new(drv, "cuda_devices", json_integer(r->cuda_devices));
  json_object_set_new(drv, "cudnn_version", r->cudnn_loaded ? json_integer(r->cudnn_version) : json_null());
  json_object_set_new(drv, "cudnn_path", r->cudnn_loaded ? json_string(r->cudnn_path) : json_null());
  json_object_set_new(drv, "cublas_version", r->cublas_loaded ? json_integer(r->cublas_version) : json_null());
  json_object_set_new(drv, "cublas_path", r->cublas_loaded ? json_string(r->cublas_path) : json_null());
  const char *cvd = getenv("CUDA_VISIBLE_DEVICES");
  json_object_set_new(drv, "cuda_visible_devices", cvd ? json_string(cvd) : json_null());
  json_object_set_new(o, "driver", drv);

  json_t *tk = json_object();
  json_object_set_new(tk, "found", json_boolean(r->toolkit_root[0] != 0));
  json_object_set_new(tk, "root", str_or_null(r->toolkit_root));
  json_object_set_new(tk, "real_path", str_or_null(r->toolkit_real));
  json_object_set_new(tk, "version", str_or_null(r->toolkit_version));
  json_object_set_new(tk, "version_source", str_or_null(r->toolkit_version_source));
  json_object_set_new(o, "toolkit", tk);

  json_t *ld = json_object();
  json_object_set_new(ld, "found", json_boolean(r->libdevice_path[0] != 0));
  json_object_set_new(ld, "path", str_or_null(r->libdevice_path));
  json_object_set_new(ld, "data_dir", str_or_null(r->libdevice_data_dir));
  json_object_set_new(ld, "xla_flags_data_dir", str_or_null(r->xla_data_dir));
  json_object_set_new(ld, "xla_flags_ok",
                      r->xla_data_dir[0] ? json_boolean(r->xla_data_dir_ok) : json_null());
  json_object_set_new(o, "libdevice", ld);

  json_t *cl = json_object();
  json_object_set_new(cl, "loader", json_boolean(r->opencl_loader));
  json_object_set_new(cl, "platforms", json_integer(r->opencl_platforms));
  json_t *icds = json_array();
  for (size_t i = 0; i < r->nicds; i++) {
    json_t *x = json_object();
    json_object_set_new(x, "file", json_string(r->icds[i].file));
    json_object_set_new(x, "library", json_string(r->icds[i].library));
    json_object_set_new(x, "loadable", json_boolean(r->icds[i].loadable));
    json_object_set_new(x, "error", str_or_null(r->icds[i].error));
    json_array_append_new(icds, x);
  }
  json_object_set_new(cl, "icds", icds);
  json_object_set_new(o, "opencl", cl);

  json_t *devs = json_array();
  for (size_t i = 0; i < r->ndevices; i++) {
    const gg_doctor_device *d = &r->devices[i];
    json_t *x = json_object();
    json_object_set_new(x, "name", json_string(d->info.name));
    json_object_set_new(x, "kind", json_string(gg_device_kind_name(d->info.kind)));
    json_object_set_new(x, "description", str_or_null(d->info.description));
    json_object_set_new(x, "vendor", str_or_null(d->info.vendor));
    json_object_set_new(x, "driver_version", str_or_null(d->info.driver_version));
    json_object_set_new(x, "total_mem", json_integer((json_int_t)d->info.total_mem));
    json_object_set_new(x, "free_mem", json_integer((json_int_t)d->info.free_mem));
    json_object_set_new(x, "max_alloc", json_integer((json_int_t)d->info.max_alloc));
    json_object_set_new(x, "compute_units", json_integer(d->info.compute_units));
    if (d->info.kind == GG_DEVICE_CUDA) {
      char cc[16];
      snprintf(cc, sizeof cc, "%d.%d", d->info.compute_major, d->info.compute_minor);
      json_object_set_new(x, "compute_capability", json_string(cc));
    } else {
      json_object_set_new(x, "compute_capability", json_null());
    }
    json_t *tj = json_null();
    if (d->have_telemetry) {
      tj = json_object();
      json_object_set_new(tj, "utilization_pct",
                          d->telemetry.utilization_pct >= 0
                              ? json_integer(d->telemetry.utilization_pct)
                              : json_null());
      json_object_set_new(tj, "mem_utilization_pct",
                          d->telemetry.mem_utilization_pct >= 0
                              ? json_integer(d->telemetry.mem_utilization_pct)
                              : json_null());
      json_object_set_new(tj, "temperature_c",
                          d->telemetry.temperature_c >= 0 ? json_integer(d->telemetry.temperature_c)
                                                          : json_null());
    }
    json_object_set_new(x, "telemetry", tj);
    if (d->validated) {
      json_t *vj = json_object();
      json_object_set_new(vj, "passed", json_boolean(d->validation.passed));
      json_object_set_new(vj, "step", json_string(d->validation.step));
      json_object_set_new(vj, "error",
                          d->validation.error ? json_string(gg_err_name(d->validation.error))
                                              : json_null());
      json_object_set_new(vj, "reason", str_or_null(d->validation.reason));
      json_object_set_new(vj, "elapsed_ms", json_real(d->validation.elapsed_ms));
      json_object_set_new(x, "validation", vj);
    } else {
      json_object_set_new(x, "validation", json_null());
    }
    json_array_append_new(devs, x);
  }
  json_object_set_new(o, "devices", devs);

  json_t *mods = json_object();
  json_object_set_new(mods, "dir", json_string(r->models_dir));
  json_t *files = json_array();
  for (int i = 0; i < 4; i++) {
    json_t *x = json_object();
    json_object_set_new(x, "name", json_string(r->models[i].name));
    json_object_set_new(x, "bytes",
                        r->models[i].bytes ? json_integer((json_int_t)r->models[i].bytes)
                                           : json_null());
    json_object_set_new(x, "weights_bytes",
                        r->models[i].planned ? json_integer((json_int_t)r->models[i].weights)
                                             : json_null());
    json_object_set_new(x, "planned_bytes",
                        r->models[i].planned ? json_integer((json_int_t)r->models[i].planned)
                                             : json_null());
    json_array_append_new(files, x);
  }
  json_object_set_new(mods, "files", files);
  json_object_set_new(mods, "total_bytes", json_integer((json_int_t)r->models_total));
  json_object_set_new(mods, "planned_bytes", json_integer((json_int_t)r->models_planned));
  json_object_set_new(mods, "serve_bytes", json_integer((json_int_t)r->models_serve));
  json_object_set_new(o, "models", mods);

  json_t *env = json_array();
  for (size_t i = 0; i < r->nenv; i++) {
    json_t *x = json_object();
    json_object_set_new(x, "name", json_string(r->env[i].name));
    json_object_set_new(x, "value", r->env[i].unset ? json_null() : json_string(r->env[i].value));
    json_object_set_new(x, "action", json_string(r->env[i].unset ? "unset" : "export"));
    json_object_set_new(x, "why", json_string(r->env[i].why));
    json_array_append_new(env, x);
  }
  json_object_set_new(o, "env", env);
  char *s = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
  json_decref(o);
  return s;
}

/* ---- --write-env --------------------------------------------------------------- */

/* Single-quotes a value for sh, except a trailing "$PATH"-style reference
 * which must stay expandable. */
static void sh_quote(const char *v, char *out, size_t len) {
  const char *dollar = strstr(v, ":$");
  size_t lit = dollar ? (size_t)(dollar - v) : strlen(v);
  size_t o = 0;
  out[o++] = '\'';
  for (size_t i = 0; i < lit && o + 5 < len; i++) {
    if (v[i] == '\'') {
      memcpy(out + o, "'\\''", 4);
      o += 4;
    } else {
      out[o++] = v[i];
    }
  }
  out[o++] = '\'';
  out[o] = 0;
  if (dollar) snprintf(out + o, len - o, "\":%s\"", dollar + 1);
}

int gg_doctor_write_env(const gg_doctor_report *r, const char *path, char *err, size_t errlen) {
  FILE *f = fopen(path, "w");
  if (!f) {
    snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
    return GG_EIO;
  }
  time_t now = time(NULL);
  struct tm tm;
  gmtime_r(&now, &tm);
  char ts[32];
  strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
  fprintf(f,
          "# Environment for this machine's GPU stack, written by 'gpuguard doctor "
          "--write-env' %s%s%s.\n# Use it with:  . %s\n",
          ts, strcmp(r->root, "/") ? " for root " : "", strcmp(r->root, "/") ? r->root : "", path);
  if (!r->nenv) fprintf(f, "# Nothing to set: doctor found no variable that needs changing.\n");
  for (size_t i = 0; i < r->nenv; i++) {
    const gg_env_line *e = &r->env[i];
    fprintf(f, "# %s\n", e->why);
    if (e->unset) {
      fprintf(f, "unset %s\n", e->name);
    } else {
      char q[2300];
      sh_quote(e->value, q, sizeof q);
      fprintf(f, "export %s=%s\n", e->name, q);
    }
  }
  if (fclose(f) != 0) {
    snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
    return GG_EIO;
  }
  return 0;
}

/* ---- --explain ------------------------------------------------------------------ */

/* Line reader over a FILE with bounded memory: a line keeps at most
 * GG_LOG_LINE_MAX bytes, the rest of a longer one is scanned for its end and
 * dropped, and no byte past max_bytes is read. */
typedef struct line_reader {
  FILE *f;
  uint64_t max_bytes, bytes; /* bytes = read from f so far */
  size_t pos, end;           /* unconsumed part of buf */
  int eof;                   /* f ended or failed, or max_bytes reached */
  char buf[1 << 16];
} line_reader;

static int reader_fill(line_reader *r) {
  if (r->eof) return 0;
  uint64_t room = r->max_bytes - r->bytes;
  size_t want = room < sizeof r->buf ? (size_t)room : sizeof r->buf;
  size_t n = want ? fread(r->buf, 1, want, r->f) : 0;
  r->pos = 0;
  r->end = n;
  r->bytes += n;
  if (!n) r->eof = 1;
  return n > 0;
}

/* Next line into line (GG_LOG_LINE_MAX + 1 bytes, NUL-terminated, without
 * its "\n" or "\r\n"); *len its kept length, *cut 1 when bytes were dropped.
 * Returns 0 when there is no more input (or the byte limit is reached). */
static int reader_next(line_reader *r, char *line, size_t *len, int *cut) {
  size_t n = 0;
  int any = 0;
  *cut = 0;
  for (;;) {
    if (r->pos == r->end && !reader_fill(r)) break;
    any = 1;
    const char *p = r->buf + r->pos;
    size_t avail = r->end - r->pos;
    const char *nl = memchr(p, '\n', avail);
    size_t take = nl ? (size_t)(nl - p) : avail;
    size_t keep = take < GG_LOG_LINE_MAX - n ? take : GG_LOG_LINE_MAX - n;
    memcpy(line + n, p, keep);
    n += keep;
    if (keep < take) *cut = 1;
    r->pos += take + (nl != NULL);
    if (nl) break;
  }
  if (!any) return 0;
  if (n > 0 && line[n - 1] == '\r' && !*cut) n--;
  line[n] = 0;
  *len = n;
  return 1;
}

/* 1 when input remains after the reader stopped at its byte limit. */
static int reader_more(line_reader *r) {
  if (r->pos < r->end) return 1;
  if (r->bytes < r->max_bytes) return r->eof ? 0 : reader_fill(r);
  int c = fgetc(r->f); /* at the limit: one byte more tells whether anything was left */
  return c != EOF;
}

/* The line as it is shown: NUL as a space (as the classifier sees it), other
 * control characters as '?' so a hostile log cannot drive the terminal; at
 * most max bytes, never cutting a UTF-8 sequence. */
static size_t printable(const char *s, size_t n, char *dst, size_t max) {
  if (n > max) {
    n = max;
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
      n--;
  }
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    dst[i] = c == 0 ? ' ' : (c < 0x20 && c != '\t') || c == 0x7f ? '?' : (char)c;
  }
  dst[n] = 0;
  return n;
}

/* JSON string of a log line: bytes that are not valid UTF-8 become '?'. */
static json_t *json_text(const char *s, size_t n) {
  json_t *j = json_stringn(s, n);
  if (j) return j;
  char ascii[512];
  if (n >= sizeof ascii) n = sizeof ascii - 1;
  for (size_t i = 0; i < n; i++)
    ascii[i] = (unsigned char)s[i] < 0x80 ? s[i] : '?';
  return json_stringn(ascii, n);
}

static json_t *explain_finding(const gg_log_match *m, uint64_t ln, const char *text, size_t tlen) {
  json_t *x = json_object();
  json_object_set_new(x, "line", json_integer((json_int_t)ln));
  json_object_set_new(x, "class", json_string(gg_fail_class_name(m->cls)));
  json_object_set_new(x, "pattern", json_string(m->id));
  json_object_set_new(x, "cause", json_string(m->cause));
  json_object_set_new(x, "fix", json_string(m->fix));
  json_object_set_new(x, "detail", str_or_null(m->detail));
  json_object_set_new(x, "status", str_or_null(m->token));
  json_object_set_new(x, "code", m->code ? json_integer(m->code) : json_null());
  json_object_set_new(x, "requested_bytes",
                      m->requested_bytes ? json_integer((json_int_t)m->requested_bytes)
                                         : json_null());
  json_object_set_new(x, "free_bytes",
                      m->free_bytes ? json_integer((json_int_t)m->free_bytes) : json_null());
  json_object_set_new(x, "total_bytes",
                      m->total_bytes ? json_integer((json_int_t)m->total_bytes) : json_null());
  json_object_set_new(x, "recovery",
                      json_string(gg_fail_action_name(gg_fail_class_recovery(m->cls))));
  json_object_set_new(x, "text", json_text(text, tlen));
  return x;
}

/* Long lines are named one by one up to this many, then only counted. */
#define EXPLAIN_LONG_NAMED 10

static void explain_summary_text(FILE *out, const char *path, const gg_explain_result *r,
                                 const int *counts, const gg_explain_limits *lim) {
  char sz[32];
  if (r->long_lines > EXPLAIN_LONG_NAMED)
    fprintf(out, "%s: %llu line(s) longer than %d KiB were classified on their first %d KiB\n",
            path, (unsigned long long)r->long_lines, GG_LOG_LINE_MAX / 1024,
            GG_LOG_LINE_MAX / 1024);
  if (r->stopped && !strcmp(r->stopped, "max-bytes"))
    fprintf(out, "%s: stopped after %s (--max-bytes); the rest was not read\n", path,
            gg_format_size(lim->max_bytes, sz, sizeof sz));
  else if (r->stopped)
    fprintf(out, "%s: stopped after %llu lines (--max-lines); the rest was not read\n", path,
            (unsigned long long)lim->max_lines);
  fprintf(out, "%s: %d of %llu line(s) recognised as GPU failures", path, r->found,
          (unsigned long long)r->lines);
  const char *sep = ": ";
  for (int c = 1; c < GG_FAIL_CLASS_COUNT; c++) {
    if (!counts[c]) continue;
    fprintf(out, "%s%d %s", sep, counts[c], gg_fail_class_name((gg_fail_class)c));
    sep = ", ";
  }
  fprintf(out, "\n");
}

static void explain_summary_json(FILE *out, const char *path, const gg_explain_result *r,
                                 const int *counts, const gg_explain_limits *lim, json_t *findings,
                                 json_t *long_named) {
  json_t *o = json_object();
  json_object_set_new(o, "schema", json_string("gpuguard.explain/1"));
  json_object_set_new(o, "file", json_string(path));
  json_object_set_new(o, "lines", json_integer((json_int_t)r->lines));
  json_object_set_new(o, "bytes", json_integer((json_int_t)r->bytes));
  json_object_set_new(o, "recognised", json_integer(r->found));
  json_t *by = json_object();
  for (int c = 1; c < GG_FAIL_CLASS_COUNT; c++)
    if (counts[c])
      json_object_set_new(by, gg_fail_class_name((gg_fail_class)c), json_integer(counts[c]));
  json_object_set_new(o, "by_class", by);
  json_t *ll = json_object();
  json_object_set_new(ll, "count", json_integer((json_int_t)r->long_lines));
  json_object_set_new(ll, "classified_bytes", json_integer(GG_LOG_LINE_MAX));
  json_object_set_new(ll, "lines", long_named);
  json_object_set_new(o, "long_lines", ll);
  json_t *st = json_null();
  if (r->stopped) {
    st = json_object();
    json_object_set_new(st, "limit", json_string(r->stopped));
    json_object_set_new(
        st, "value",
        json_integer(
            (json_int_t)(strcmp(r->stopped, "max-bytes") ? lim->max_lines : lim->max_bytes)));
  }
  json_object_set_new(o, "stopped", st);
  json_object_set_new(o, "findings", findings);
  char *s = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
  json_decref(o);
  if (s) {
    fprintf(out, "%s\n", s);
    free(s);
  }
}

int gg_doctor_explain(const char *path, const gg_explain_limits *lim_in, FILE *out, int json,
                      gg_explain_result *res, char *err, size_t errlen) {
  gg_explain_limits lim = {GG_EXPLAIN_MAX_BYTES, GG_EXPLAIN_MAX_LINES};
  if (lim_in && lim_in->max_bytes) lim.max_bytes = lim_in->max_bytes;
  if (lim_in && lim_in->max_lines) lim.max_lines = lim_in->max_lines;
  gg_explain_result r = {0};
  if (res) *res = r;
  int is_stdin = !strcmp(path, "-");
  FILE *f = is_stdin ? stdin : fopen(path, "r");
  if (!f) {
    snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
    return GG_EIO;
  }
  if (is_stdin) path = "(stdin)";
  line_reader *rd = calloc(1, sizeof *rd);
  char *line = malloc(GG_LOG_LINE_MAX + 1);
  char shown[401];
  if (!rd || !line) {
    free(rd), free(line);
    if (!is_stdin) fclose(f);
    snprintf(err, errlen, "out of memory");
    return GG_ENOMEM;
  }
  rd->f = f;
  rd->max_bytes = lim.max_bytes;
  json_t *arr = json ? json_array() : NULL;
  json_t *long_named = json ? json_array() : NULL;
  int counts[GG_FAIL_CLASS_COUNT] = {0};
  size_t len;
  int cut;
  while (r.lines < lim.max_lines && reader_next(rd, line, &len, &cut)) {
    r.lines++;
    if (cut && ++r.long_lines <= EXPLAIN_LONG_NAMED) {
      if (json)
        json_array_append_new(long_named, json_integer((json_int_t)r.lines));
      else
        fprintf(out, "%s:%llu: longer than %d KiB, classified on its first %d KiB\n", path,
                (unsigned long long)r.lines, GG_LOG_LINE_MAX / 1024, GG_LOG_LINE_MAX / 1024);
    }
    gg_log_match m;
    if (!gg_classify_log_bytes(line, len, &m)) continue;
    r.found++;
    counts[m.cls]++;
    if (json) {
      size_t n = printable(line, len, shown, 400);
      json_array_append_new(arr, explain_finding(&m, r.lines, shown, n));
    } else {
      printable(line, len, shown, 200);
      fprintf(out, "%s:%llu: [%s] %s\n", path, (unsigned long long)r.lines,
              gg_fail_class_name(m.cls), shown);
      fprintf(out, "    cause:  %s\n", m.cause);
      if (m.detail[0]) fprintf(out, "    detail: %s\n", m.detail);
      fprintf(out, "    fix:    %s\n", m.fix);
    }
  }
  if (r.lines >= lim.max_lines && reader_more(rd))
    r.stopped = "max-lines";
  else if (rd->bytes >= lim.max_bytes && reader_more(rd))
    r.stopped = "max-bytes";
  r.bytes = rd->bytes;
  free(line);
  free(rd);
  int rerr = ferror(f);
  if (!is_stdin) fclose(f);
  if (rerr) {
    json_decref(arr);
    json_decref(long_named);
    snprintf(err, errlen, "error reading %s", path);
    return GG_EIO;
  }
  if (json)
    explain_summary_json(out, path, &r, counts, &lim, arr, long_named);
  else
    explain_summary_text(out, path, &r, counts, &lim);
  if (res) *res = r;
  return 0;
}
