/* gpuguard bench: median latency of each model's run stage on the CPU, and,
 * in the same run, the same model on a peer runtime: TensorFlow.js with its
 * WebAssembly backend (XNNPACK compiled to wasm) for TF.js models, ONNX
 * Runtime (onnxruntime-node, default graph optimizations, the same thread
 * count) for .onnx models, when the pinned reference packages are installed.
 * The ratio is peer median / ours (> 1: gpuguard is faster). Against ONNX
 * Runtime the two sides alternate in rounds (ours, ORT, ORT, ours, ...) so
 * that a change of load on a shared machine falls on both alike. For the
 * interleaved multi-round tfjs numbers in bench/README.md use
 * bench/bench-engine.sh.
 *
 * With --device SPEC (opencl:P.D, sim:...) it reports instead what a freshly
 * started worker pays on that device: the first request with the program
 * caches empty (cold) and filled by that request (warm), then the steady
 * median. Each first request is measured in a forked process of its own,
 * since a process builds or loads its programs once. */
#include "cli/cli.h"
#include "core/opts.h"
#include "gpuguard/catalog.h"
#include "gpuguard/core.h"
#include "gpuguard/engine.h"
#include "gpuguard/error.h"
#include "gpuguard/log.h"
#include "gpuguard/memory.h"

#include <jansson.h>

#include <dirent.h>
#include <ftw.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct bench_opts {
  const char *models;
  const char *peer;
  const char *device;
  const char *shape;
  int threads;
  int runs;
  int warmup;
  int rounds;
  int json;
  /* not options: the input shape of the model being measured (ndim 0: the
   * model's own, unknown dims 1), set per model */
  int64_t in_shape[GG_ENGINE_MAX_DIMS];
  int in_ndim;
} bench_opts;

#define BO(f) offsetof(bench_opts, f)
static const gg_opt k_bench_opts[] = {
    {"models", NULL, GG_OPT_STR, BO(models), GG_CATALOG_MODELS,
     "comma-separated model names, model.json or model.onnx paths", "LIST"},
    {"shape", NULL, GG_OPT_STR, BO(shape), "",
     "input shapes, comma-separated, one per model in --models order or one for all "
     "(1x3x640x640); empty: the PP-OCR models' usual shapes (det 1x3x640x640, rec 1x3x48x320, "
     "cls 1x3x48x192), else the model's own with unknown dims 1",
     "LIST"},
    {"threads", "GPUGUARD_THREADS", GG_OPT_INT, BO(threads), "1",
     "CPU threads for gpuguard (and for ONNX Runtime: its intra-op threads)", "N"},
    {"runs", NULL, GG_OPT_INT, BO(runs), "20", "timed runs per model and implementation", "N"},
    {"warmup", NULL, GG_OPT_INT, BO(warmup), "3", "untimed runs first", "N"},
    {"rounds", NULL, GG_OPT_INT, BO(rounds), "5",
     "with ONNX Runtime: the runs are split into this many rounds, the sides alternating", "N"},
    {"peer", NULL, GG_OPT_STR, BO(peer), "auto",
     "tfjs-wasm or ort (both need node and scripts/fetch-reference.sh), none, or auto (ort "
     "for .onnx models, tfjs-wasm for the others, when installed)",
     "NAME"},
    {"device", NULL, GG_OPT_STR, BO(device), "cpu",
     "cpu: ours vs the peer on the CPU; a device (opencl:0.0, sim:...): first request with cold "
     "and warm program caches, then the steady median on that device (no peer)",
     "SPEC"},
    {"json", NULL, GG_OPT_BOOL, BO(json), "false", "print one JSON object instead of a table",
     NULL},
    {0},
};

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

typedef struct timing {
  double median_ms, min_ms, p90_ms;
  double setup_ms;     /* model load + session prepare (+ device open, --device) */
  double first_run_ms; /* the first gg_session_run */
  int n_ops, n_ops_xnnpack;
  uint64_t planned_bytes;
  uint64_t peak_rss;       /* the process's peak resident bytes while measured; 0: unknown */
  char ops_by_backend[96]; /* "opencl 150", "xnnpack 60 naive 10" */
} timing;

static double ms_since(uint64_t t0) {
  return (double)(gg_now_ns() - t0) / 1e6;
}

/* Median, min and p90 of ts[0..k) (sorts ts). */
static void set_stats(double *ts, int k, timing *t) {
  if (k < 1) return;
  qsort(ts, (size_t)k, sizeof *ts, cmp_double);
  t->median_ms = k % 2 ? ts[k / 2] : (ts[k / 2 - 1] + ts[k / 2]) / 2;
  t->min_ms = ts[0];
  t->p90_ms = ts[(int)(0.9 * (k - 1))];
}

/* Resets this process's peak RSS (Linux: clear_refs 5); no-op elsewhere. */
static void rss_peak_reset(void) {
  FILE *f = fopen("/proc/self/clear_refs", "w");
  if (!f) return;
  fputs("5", f);
  fclose(f);
}

/* This process's peak RSS in bytes since start or rss_peak_reset; 0 when
 * /proc cannot tell. */
static uint64_t rss_peak(void) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  unsigned long long kb = 0;
  while (f && fgets(line, sizeof line, f))
    if (sscanf(line, "VmHWM: %llu kB", &kb) == 1) break;
  if (f) fclose(f);
  return (uint64_t)kb * 1024;
}

/* Our side, open between the rounds of a measurement. */
typedef struct ours_run {
  gg_model *m;
  gg_session *s;
} ours_run;

static void ours_close(ours_run *r) {
  gg_session_free(r->s);
  gg_model_free(r->m);
  memset(r, 0, sizeof *r);
}

/* Loads path, prepares a session for input shape (ndim 0: the model's own,
 * unknown dims 1) in `pool`'s device memory (NULL: the host) and fills
 * every input: float inputs with fixed pseudo-random values in [0, 1), int
 * inputs with 0. Sets t->setup_ms and the session's memory figures. */
static int ours_open(const char *path, gg_pool *pool, const bench_opts *o, const int64_t *shape,
                     int ndim, ours_run *r, timing *t, char *err, size_t errlen) {
  uint64_t t0 = gg_now_ns();
  memset(r, 0, sizeof *r);
  int rc = gg_model_load(path, &r->m, err, errlen);
  if (rc) return rc;
  gg_session_opts so;
  memset(&so, 0, sizeof so);
  so.threads = o->threads;
  so.backend = GG_ENGINE_AUTO;
  if ((rc = gg_session_new_on(r->m, ndim ? shape : NULL, ndim, &so, pool, &r->s, err, errlen))) {
    ours_close(r);
    return rc;
  }
  uint32_t seed = 12345;
  gg_tensor_info in;
  for (int i = 0; i < gg_model_n_inputs(r->m); i++) {
    void *x = gg_session_input_data(r->s, i, &in);
    int64_t n = 1;
    for (int d = 0; d < in.ndim; d++)
      n *= in.shape[d] > 0 ? in.shape[d] : 1;
    for (int64_t j = 0; x && j < n; j++) {
      seed = seed * 1664525u + 1013904223u;
      if (in.dtype == GG_TENSOR_F32)
        ((float *)x)[j] = (float)seed / 4294967296.0f;
      else
        ((int32_t *)x)[j] = 0;
    }
  }
  t->setup_ms = ms_since(t0);
  gg_engine_mem mem;
  gg_session_memory(r->s, &mem);
  t->n_ops = mem.n_ops;
  t->n_ops_xnnpack = mem.n_ops_xnnpack;
  t->planned_bytes = mem.predicted;
  size_t w = 0;
  for (int b = 0; b < mem.n_backends && w < sizeof t->ops_by_backend; b++)
    if (mem.ops[b].n_ops > 0)
      w += (size_t)snprintf(t->ops_by_backend + w, sizeof t->ops_by_backend - w, "%s%s %d",
                            w ? " " : "", mem.ops[b].name, mem.ops[b].n_ops);
  return 0;
}

/* `warmup` untimed runs, then `runs` runs timed into ts[0..runs). */
static int ours_time(ours_run *r, int warmup, int runs, double *ts, char *err, size_t errlen) {
  for (int i = 0; i < warmup + runs; i++) {
    uint64_t a = gg_now_ns();
    int rc = gg_session_run(r->s, err, errlen);
    if (rc) return rc;
    if (i >= warmup) ts[i - warmup] = ms_since(a);
  }
  return 0;
}

/* Our side in one go: open, time the first run, then `runs` runs after
 * `warmup` more; the statistics into t. */
static int bench_ours(const char *path, gg_pool *pool, const bench_opts *o, int warmup, int runs,
                      timing *t, char *err, size_t errlen) {
  ours_run r;
  int rc = ours_open(path, pool, o, o->in_shape, o->in_ndim, &r, t, err, errlen);
  if (rc) return rc;
  double *ts = calloc((size_t)(runs > 0 ? runs : 1), sizeof *ts);
  if (!ts) rc = GG_ENOMEM;
  uint64_t a = gg_now_ns();
  if (!rc) rc = gg_session_run(r.s, err, errlen); /* the first run at least */
  t->first_run_ms = ms_since(a);
  if (!rc && (warmup > 0 || runs > 0))
    rc = ours_time(&r, warmup > 0 ? warmup - 1 : 0, runs, ts, err, errlen);
  if (!rc) set_stats(ts, runs, t);
  free(ts);
  ours_close(&r);
  return rc;
}

/* ---- --device: first request with cold and warm program caches --------- */

typedef struct phase_result {
  int rc;
  timing t;
  char err[768];
} phase_result;

/* The forked measuring process: points gpuguard's program cache
 * ($GPUGUARD_CACHE/opencl) at `cache` and PoCL's kernel cache
 * (POCL_CACHE_DIR; CLBlast's compiled kernels land there too) at `pocl`,
 * then times what a new worker does before its first answer (device open,
 * model load, session prepare with the weights upload and the program build
 * or load, first run), and with `steady` the median after that. Writes a
 * phase_result to fd and exits. */
static void device_phase_child(int fd, const char *path, const bench_opts *o, const char *cache,
                               const char *pocl, int steady) {
  phase_result r;
  memset(&r, 0, sizeof r);
  setenv("GPUGUARD_CACHE", cache, 1);
  setenv("POCL_CACHE_DIR", pocl, 1);
  uint64_t t0 = gg_now_ns();
  gg_device *dev = NULL;
  gg_pool *pool = NULL;
  if ((r.rc = gg_device_open(o->device, &dev)))
    snprintf(r.err, sizeof r.err, "cannot open device %s ('gpuguard doctor' says why)", o->device);
  else if ((r.rc = gg_pool_new(dev, NULL, &pool)))
    snprintf(r.err, sizeof r.err, "cannot create a memory pool on %s", o->device);
  double open_ms = ms_since(t0);
  if (!r.rc)
    r.rc = bench_ours(path, pool, o, steady ? o->warmup : 0, steady ? o->runs : 0, &r.t, r.err,
                      sizeof r.err);
  r.t.setup_ms += open_ms;
  gg_pool_free(pool);
  gg_device_free(dev);
  ssize_t w = write(fd, &r, sizeof r);
  _exit(w == (ssize_t)sizeof r ? 0 : 1);
}

/* Runs device_phase_child in a fork and collects its result. */
static int device_phase(const char *path, const bench_opts *o, const char *cache, const char *pocl,
                        int steady, timing *t, char *err, size_t errlen) {
  int fds[2];
  if (pipe(fds)) {
    snprintf(err, errlen, "pipe failed");
    return GG_EIO;
  }
  fflush(NULL);
  pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    device_phase_child(fds[1], path, o, cache, pocl, steady);
  }
  close(fds[1]);
  phase_result r;
  size_t got = 0;
  ssize_t n;
  while (pid > 0 && got < sizeof r && (n = read(fds[0], (char *)&r + got, sizeof r - got)) > 0)
    got += (size_t)n;
  close(fds[0]);
  int st = 0;
  if (pid > 0) waitpid(pid, &st, 0);
  if (got != sizeof r) {
    snprintf(err, errlen,
             "the measuring process on %s gave no result (%s %d); run gpuguard infer --device %s "
             "to see the failure",
             o->device,
             pid < 0           ? "fork failed"
             : WIFSIGNALED(st) ? "signal"
                               : "exit status",
             pid < 0           ? 0
             : WIFSIGNALED(st) ? WTERMSIG(st)
                               : WEXITSTATUS(st),
             o->device);
    return GG_EIO;
  }
  if (r.rc) {
    snprintf(err, errlen, "%s", r.err);
    return r.rc;
  }
  *t = r.t;
  return 0;
}

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb, (void)flag, (void)ftw;
  return remove(p);
}

/* Files in dir (0 when it is absent). */
static int count_files(const char *dir) {
  DIR *d = opendir(dir);
  int n = 0;
  for (struct dirent *e; d && (e = readdir(d));)
    n += e->d_name[0] != '.';
  if (d) closedir(d);
  return n;
}

static json_t *first_json(const timing *t) {
  return json_pack("{s:f,s:f,s:f}", "first_request_ms", t->setup_ms + t->first_run_ms, "setup_ms",
                   t->setup_ms, "first_run_ms", t->first_run_ms);
}

/* One model on o->device, each in a new process, in temporary cache
 * folders (removed after): cold (both caches empty), ours_cold (our
 * program cache empty, PoCL's as the cold run left it), warm (both as the
 * cold run left them). Appends a row; 0 or the failure. */
static void short_name(const char *name, char *out, size_t outlen);

static int bench_device(const char *name, const char *path, const bench_opts *o, json_t *rows,
                        char *err, size_t errlen) {
  char cache[] = "/tmp/gg-bench-cache-XXXXXX", empty[] = "/tmp/gg-bench-cache-XXXXXX";
  if (!mkdtemp(cache) || !mkdtemp(empty)) {
    snprintf(err, errlen, "cannot create a temporary folder in /tmp");
    return GG_EIO;
  }
  char pocl[64], progs[64];
  snprintf(pocl, sizeof pocl, "%s/pocl", cache);
  snprintf(progs, sizeof progs, "%s/opencl", cache);
  mkdir(pocl, 0700);
  timing cold = {0}, ours_cold = {0}, warm = {0};
  int rc = device_phase(path, o, cache, pocl, 0, &cold, err, errlen);
  int cached = count_files(progs); /* what the warm process can load */
  if (!rc) rc = device_phase(path, o, empty, pocl, 0, &ours_cold, err, errlen);
  if (!rc) rc = device_phase(path, o, cache, pocl, 1, &warm, err, errlen);
  nftw(cache, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
  nftw(empty, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
  if (rc) return rc;
  json_t *row =
      json_pack("{s:s,s:s,s:o,s:o,s:o,s:f,s:f,s:f,s:s,s:i,s:I}", "model", name, "device", o->device,
                "cold", first_json(&cold), "ours_cold", first_json(&ours_cold), "warm",
                first_json(&warm), "median_ms", warm.median_ms, "min_ms", warm.min_ms, "p90_ms",
                warm.p90_ms, "ops_by_backend", warm.ops_by_backend, "programs_cached", cached,
                "planned_bytes", (json_int_t)warm.planned_bytes);
  json_array_append_new(rows, row);
  if (!o->json) {
    char sn[64];
    short_name(name, sn, sizeof sn);
    printf("%-14s %6.0f (%5.0f + %5.0f) %6.0f (%5.0f + %5.0f) %6.0f (%5.0f + %5.0f) %8.2f "
           "%8.2f  %s\n",
           sn, cold.setup_ms + cold.first_run_ms, cold.setup_ms, cold.first_run_ms,
           ours_cold.setup_ms + ours_cold.first_run_ms, ours_cold.setup_ms, ours_cold.first_run_ms,
           warm.setup_ms + warm.first_run_ms, warm.setup_ms, warm.first_run_ms, warm.median_ms,
           warm.p90_ms, warm.ops_by_backend);
    fflush(stdout);
  }
  return 0;
}

typedef enum peer_kind { PEER_NONE, PEER_TFJS, PEER_ORT } peer_kind;

/* The peer's script, or "" when it or its package is not installed next to
 * the sources or node is missing. */
static const char *peer_script(peer_kind k) {
  static char script[2][PATH_MAX];
  static int checked[2], node_ok = -1;
  int i = k == PEER_ORT;
  if (k == PEER_NONE) return "";
  if (checked[i]) return script[i];
  checked[i] = 1;
  char pkg[PATH_MAX];
  snprintf(script[i], sizeof script[i], "%s/%s", GG_SOURCE_DIR,
           i ? "tests/reference/onnx-run.js" : "bench/tfjs/bench.js");
  snprintf(pkg, sizeof pkg, "%s/tests/reference/node_modules/%s/package.json", GG_SOURCE_DIR,
           i ? "onnxruntime-node" : "@tensorflow/tfjs-backend-wasm");
  if (node_ok < 0) node_ok = system("node --version >/dev/null 2>&1") == 0;
  if (access(script[i], R_OK) || access(pkg, R_OK) || !node_ok) script[i][0] = '\0';
  return script[i];
}

/* Whether path names an ONNX model (by its extension: the peer to pick). */
static int is_onnx(const char *path) {
  size_t n = strlen(path);
  return n > 5 && !strcmp(path + n - 5, ".onnx");
}

/* Runs `cmd` under /bin/sh, keeps the last line of its stdout and stderr
 * that starts with '{' in json and the last other line in msg, and the
 * child's peak RSS in bytes. Returns its exit status, or -1 when it could
 * not be started. */
static int run_child(const char *cmd, char *json, size_t jsonlen, char *msg, size_t msglen,
                     uint64_t *peak_rss) {
  int fds[2];
  json[0] = msg[0] = '\0';
  if (pipe(fds)) return -1;
  fflush(NULL);
  pid_t pid = fork();
  if (pid < 0) {
    close(fds[0]);
    close(fds[1]);
    return -1;
  }
  if (pid == 0) {
    dup2(fds[1], 1);
    dup2(fds[1], 2);
    close(fds[0]);
    close(fds[1]);
    execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
    _exit(127);
  }
  close(fds[1]);
  FILE *f = fdopen(fds[0], "r");
  static char line[1 << 16];
  while (f && fgets(line, sizeof line, f)) {
    size_t len = strcspn(line, "\n");
    char *to = line[0] == '{' ? json : msg;
    size_t cap = line[0] == '{' ? jsonlen : msglen;
    if (!len) continue;
    len = len < cap ? len : cap - 1;
    memcpy(to, line, len);
    to[len] = '\0';
  }
  if (f)
    fclose(f);
  else
    close(fds[0]);
  int st = 0;
  struct rusage ru;
  memset(&ru, 0, sizeof ru);
  if (wait4(pid, &st, 0, &ru) < 0) return -1;
  *peak_rss = (uint64_t)ru.ru_maxrss * 1024; /* Linux: kB */
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

/* ONNX Runtime's name (onnx-run.js --in) of an ONNX element type, NULL for
 * one it is not given here. */
static const char *ort_dtype(int src_type, gg_tensor_dtype dt) {
  switch (src_type) {
  case 0: return dt == GG_TENSOR_F32 ? "float32" : "int32";
  case 1: return "float32";
  case 2: return "uint8";
  case 3: return "int8";
  case 4: return "uint16";
  case 5: return "int16";
  case 6: return "int32";
  case 7: return "int64";
  case 9: return "bool";
  case 10: return "float16";
  case 11: return "float64";
  case 12: return "uint32";
  case 13: return "uint64";
  default: return NULL;
  }
}

/* The peer's inputs: one `--in ':DTYPE:SHAPE:random'` per input of the
 * session, in the model's order, with the shapes the session was prepared
 * for, so both sides run the same shapes (--shape, or the model's own with
 * unknown dims 1). */
static int peer_inputs(const ours_run *r, char *out, size_t cap, char *err, size_t errlen) {
  size_t w = 0;
  out[0] = 0;
  gg_tensor_info in;
  for (int i = 0; i < gg_model_n_inputs(r->m); i++) {
    if (!gg_session_input_data(r->s, i, &in)) continue;
    const char *dt = ort_dtype(in.src_type, in.dtype);
    if (!dt) {
      snprintf(err, errlen, "input %d (%.200s): ONNX element type %d cannot be given to the peer",
               i, in.name ? in.name : "?", in.src_type);
      return GG_EUNSUPPORTED;
    }
    w += (size_t)snprintf(out + w, w < cap ? cap - w : 0, "%s--in ':%s:", w ? " " : "", dt);
    for (int d = 0; d < in.ndim; d++)
      w += (size_t)snprintf(out + w, w < cap ? cap - w : 0, "%s%lld", d ? "x" : "",
                            (long long)(in.shape[d] > 0 ? in.shape[d] : 1));
    w += (size_t)snprintf(out + w, w < cap ? cap - w : 0, ":random'");
    if (w >= cap) {
      snprintf(err, errlen, "the peer's input list is longer than %zu bytes", cap);
      return GG_ETOO_LARGE;
    }
  }
  return 0;
}

/* One process of the peer: `warmup` untimed runs, then `runs` timed ones,
 * appended to ts[*n..]; on ONNX Runtime with the inputs `ins`
 * (peer_inputs) and o->threads intra-op threads, on tfjs-wasm with 1
 * thread. t->peak_rss gets the larger of its value and the process's
 * peak. */
static int peer_round(peer_kind k, const char *path, const char *ins, const bench_opts *o,
                      int warmup, int runs, double *ts, int *n, timing *t, char *err,
                      size_t errlen) {
  const char *script = peer_script(k);
  if (strchr(path, '\'')) {
    snprintf(err, errlen, "the peer cannot be given a path with a quote in it: %.900s", path);
    return GG_EINVAL;
  }
  char cmd[3 * PATH_MAX + 4096];
  if (k == PEER_ORT) {
    snprintf(cmd, sizeof cmd, "exec node '%s' '%s' --threads %d %s --time %d --warmup %d", script,
             path, o->threads, ins, runs, warmup);
  } else {
    snprintf(cmd, sizeof cmd,
             "exec node '%s' '%s' --backend wasm --threads 1 --runs %d --warmup %d", script, path,
             runs, warmup);
  }
  static char json[1 << 16];
  char msg[512];
  uint64_t rss = 0;
  int st = run_child(cmd, json, sizeof json, msg, sizeof msg, &rss);
  json_error_t je;
  json_t *j = st == 0 && json[0] ? json_loads(json, 0, &je) : NULL;
  json_t *times = json_object_get(j, "times_ms");
  if (!j || (k == PEER_ORT && json_array_size(times) != (size_t)runs)) {
    snprintf(err, errlen, "%s failed on %.700s (exit status %d%s%.200s)",
             k == PEER_ORT ? "onnxruntime-node" : "tfjs-wasm", path, st, msg[0] ? ": " : "", msg);
    json_decref(j);
    return GG_EIO;
  }
  if (k == PEER_ORT) {
    for (size_t i = 0; i < json_array_size(times); i++)
      ts[(*n)++] = json_number_value(json_array_get(times, i));
  } else { /* one round only: its own statistics */
    t->median_ms = json_number_value(json_object_get(j, "median_ms"));
    t->min_ms = json_number_value(json_object_get(j, "min_ms"));
    t->p90_ms = json_number_value(json_object_get(j, "p90_ms"));
  }
  if (rss > t->peak_rss) t->peak_rss = rss;
  json_decref(j);
  return 0;
}

/* Parses "1x3x640x640" into shape; returns ndim, or -1 when it is not
 * 1..GG_ENGINE_MAX_DIMS positive integers joined by 'x'. */
static int parse_shape(const char *s, int64_t *shape) {
  int nd = 0;
  while (*s) {
    char *end;
    long long v = strtoll(s, &end, 10);
    if (end == s || v < 1 || v > (1ll << 31) || nd == GG_ENGINE_MAX_DIMS) return -1;
    shape[nd++] = v;
    if (*end == 'x')
      end++;
    else if (*end)
      return -1;
    else
      break;
    s = end;
    if (!*s) return -1;
  }
  return nd ? nd : -1;
}

/* The input shape a PP-OCR model is usually run at (its file name decides),
 * or NULL. */
static const char *default_shape(const char *path) {
  static const struct {
    const char *file, *shape;
  } k[] = {
      {"ch_PP-OCRv4_det_infer.onnx", "1x3x640x640"},
      {"ch_PP-OCRv4_rec_infer.onnx", "1x3x48x320"},
      {"ch_ppocr_mobile_v2.0_cls_infer.onnx", "1x3x48x192"},
  };
  const char *base = strrchr(path, '/');
  base = base ? base + 1 : path;
  for (size_t i = 0; i < sizeof k / sizeof k[0]; i++)
    if (!strcmp(base, k[i].file)) return k[i].shape;
  return NULL;
}

/* The model's name for the table: its file name without folder and
 * extension ("ch_PP-OCRv4_det_infer"), or name as given. */
static void short_name(const char *name, char *out, size_t outlen) {
  const char *base = strrchr(name, '/');
  base = base ? base + 1 : name;
  snprintf(out, outlen, "%s", base);
  char *dot = strrchr(out, '.');
  if (dot && (!strcmp(dot, ".onnx") || !strcmp(dot, ".json"))) *dot = '\0';
}

/* Ours against the peer for one model, the runs split into o->rounds rounds
 * (ORT; tfjs-wasm: one round after ours), the sides alternating: ours
 * first in even rounds, the peer first in odd ones. Each round gives each
 * side o->warmup untimed runs first. */
static int bench_pair(const char *path, peer_kind pk, const int64_t *shape, int ndim,
                      const bench_opts *o, timing *ours, timing *peer, int *have_peer, char *err,
                      size_t errlen) {
  ours_run r;
  rss_peak_reset();
  int rc = ours_open(path, NULL, o, shape, ndim, &r, ours, err, errlen);
  if (rc) return rc;
  static char ins[4096];
  char perr[1024] = "";
  if (pk == PEER_ORT && peer_inputs(&r, ins, sizeof ins, perr, sizeof perr)) {
    fprintf(stderr, "gpuguard bench: %s: %s\n", path, perr);
    pk = PEER_NONE;
  }
  int rounds = pk == PEER_ORT ? (o->rounds < o->runs ? o->rounds : o->runs) : 1;
  double *ts = calloc((size_t)o->runs, sizeof *ts), *ps = calloc((size_t)o->runs, sizeof *ps);
  int n = 0, np = 0, peer_ok = pk != PEER_NONE;
  if (!ts || !ps) rc = GG_ENOMEM;
  for (int i = 0; i < rounds && !rc; i++) {
    int k = o->runs / rounds + (i < o->runs % rounds);
    for (int side = 0; side < 2 && !rc; side++) {
      if ((side == 0) == (i % 2 == 0)) {
        if (!(rc = ours_time(&r, o->warmup, k, ts + n, err, errlen))) n += k;
      } else if (peer_ok && peer_round(pk, path, ins, o, o->warmup, pk == PEER_ORT ? k : o->runs,
                                       ps, &np, peer, perr, sizeof perr)) {
        peer_ok = 0;
        fprintf(stderr, "gpuguard bench: %s: %s\n", path, perr);
      }
    }
  }
  if (!rc) {
    ours->peak_rss = rss_peak();
    set_stats(ts, n, ours);
    if (pk == PEER_ORT && peer_ok) set_stats(ps, np, peer);
    *have_peer = peer_ok;
  }
  free(ts);
  free(ps);
  ours_close(&r);
  return rc;
}

int gg_cli_bench(int argc, char **argv) {
  bench_opts o;
  memset(&o, 0, sizeof o);
  char err[1024] = "";
  static const char usage[] =
      "Usage: gpuguard bench [options]\n\n"
      "Times each model's run stage on the CPU (gpuguard's engine, XNNPACK) and, in the\n"
      "same run, on a peer runtime, and prints medians, minimums and the ratio\n"
      "peer / gpuguard (> 1: gpuguard is faster). The peer of a TF.js model is\n"
      "TensorFlow.js with its WebAssembly backend (1 thread); of an .onnx model, ONNX\n"
      "Runtime (onnxruntime-node, default graph optimizations, --threads intra-op\n"
      "threads), the two sides alternating over --rounds rounds. Inputs are fixed\n"
      "pseudo-random tensors of each model's input shape (--shape).\n"
      "bench/bench-engine.sh runs the tfjs comparison over interleaved rounds.\n\n";
  int rc = gg_opts_cli("bench", usage, k_bench_opts, &o, argc, argv);
  if (rc >= 0) return rc;
  if (o.runs < 1 || o.runs > 100000 || o.warmup < 0 || o.warmup > 1000 || o.threads < 1 ||
      o.threads > 256 || o.rounds < 1 || o.rounds > 1000) {
    fprintf(stderr,
            "gpuguard bench: --runs 1..100000, --warmup 0..1000, --threads 1..256, --rounds "
            "1..1000\n");
    return 2;
  }
  int on_dev = strcmp(o.device, "cpu") != 0;
  peer_kind want = PEER_NONE; /* forced peer; auto picks per model */
  int peer_auto = !strcmp(o.peer, "auto");
  if (!strcmp(o.peer, "tfjs-wasm"))
    want = PEER_TFJS;
  else if (!strcmp(o.peer, "ort"))
    want = PEER_ORT;
  else if (!peer_auto && strcmp(o.peer, "none")) {
    fprintf(stderr, "gpuguard bench: --peer must be tfjs-wasm, ort, none or auto, got '%s'\n",
            o.peer);
    return 2;
  }
  if (on_dev && want != PEER_NONE) {
    fprintf(stderr, "gpuguard bench: --peer %s compares CPU times; leave it out with --device %s\n",
            o.peer, o.device);
    return 2;
  }
  if (want != PEER_NONE && !*peer_script(want)) {
    fprintf(stderr,
            "gpuguard bench: --peer %s needs node and the pinned %s (scripts/fetch-reference.sh) "
            "next to the sources\n",
            o.peer, want == PEER_ORT ? "onnxruntime-node" : "tfjs");
    return 2;
  }
  /* --shape: one for all, or one per model */
  char shapes[1024];
  snprintf(shapes, sizeof shapes, "%s", o.shape);
  const char *shape_of[64];
  int n_shapes = 0;
  char *save = NULL;
  for (char *sh = strtok_r(shapes, ",", &save); sh; sh = strtok_r(NULL, ",", &save)) {
    int64_t tmp[GG_ENGINE_MAX_DIMS];
    if (parse_shape(sh, tmp) < 0 || n_shapes == 64) {
      fprintf(stderr,
              "gpuguard bench: --shape '%s': expected dims joined by 'x' (1x3x640x640), at most "
              "%d dims and 64 shapes\n",
              sh, GG_ENGINE_MAX_DIMS);
      return 2;
    }
    shape_of[n_shapes++] = sh;
  }
  gg_log_set_level(GG_LOG_WARN);
  json_t *rows = json_array();
  if (!o.json && on_dev) {
    printf("gpuguard bench --device %s: first request, each in a new process (ms: device open,\n"
           "model load and session prepare + first run). cold: gpuguard's program cache and\n"
           "PoCL's kernel cache (POCL_CACHE_DIR) empty; ours cold: only ours empty; warm: both\n"
           "as the cold request left them. Then median and p90 of %d run(s) after %d warm-up.\n\n",
           o.device, o.runs, o.warmup);
    printf("%-14s %-22s %-22s %-22s %8s %8s  %s\n", "model", "cold (setup + run)", "ours cold",
           "warm", "median", "p90", "ops by backend");
  } else if (!o.json) {
    printf("gpuguard bench: %d run(s) per side after %d warm-up, gpuguard %d thread(s)", o.runs,
           o.warmup, o.threads);
    if (want == PEER_ORT || peer_auto)
      printf("; ONNX Runtime %d thread(s), %d alternating round(s)%s", o.threads, o.rounds,
             peer_auto ? " (.onnx models)" : "");
    if (want == PEER_TFJS || peer_auto)
      printf("; tfjs-wasm 1 thread%s", peer_auto ? " (TF.js models)" : "");
    printf("\n\n");
    printf("%-22s %-12s %9s %9s  %-9s %9s %9s %7s %9s %13s  %s\n", "model", "input", "ours med",
           "ours min", "peer", "peer med", "peer min", "ratio", "plan MiB", "RSS MiB o/p",
           "ops xnn/all");
  }
  char list[4096];
  snprintf(list, sizeof list, "%s", o.models);
  int failed = 0, idx = 0;
  save = NULL;
  for (char *name = strtok_r(list, ",", &save); name; name = strtok_r(NULL, ",", &save), idx++) {
    char path[PATH_MAX];
    if (gg_catalog_resolve(name, path, sizeof path)) {
      fprintf(stderr,
              "gpuguard bench: model '%s' not found (looked for %s); run "
              "scripts/fetch-models.sh\n",
              name, path);
      failed++;
      continue;
    }
    const char *shape_txt = n_shapes == 1         ? shape_of[0]
                            : idx < n_shapes      ? shape_of[idx]
                            : default_shape(path) ? default_shape(path)
                                                  : "";
    int64_t shape[GG_ENGINE_MAX_DIMS] = {0};
    int ndim = *shape_txt ? parse_shape(shape_txt, shape) : 0;
    if (on_dev) {
      memcpy(o.in_shape, shape, sizeof shape);
      o.in_ndim = ndim > 0 ? ndim : 0;
      if ((rc = bench_device(name, path, &o, rows, err, sizeof err))) {
        fprintf(stderr, "gpuguard bench: %s on %s: %s (%s)\n", name, o.device, err,
                gg_err_name(rc));
        failed++;
      }
      continue;
    }
    peer_kind pk = want;
    if (peer_auto) {
      pk = is_onnx(path) ? PEER_ORT : PEER_TFJS;
      if (!*peer_script(pk)) pk = PEER_NONE;
    }
    timing ours = {0}, peer = {0};
    int have_peer = 0;
    if ((rc = bench_pair(path, pk, shape, ndim, &o, &ours, &peer, &have_peer, err, sizeof err))) {
      /* the engine's messages name the model file already */
      int named = !strncmp(err, path, strlen(path));
      fprintf(stderr, "gpuguard bench: %s%s%s (%s)\n", named ? "" : name, named ? "" : ": ", err,
              gg_err_name(rc));
      failed++;
      continue;
    }
    const char *peer_name = pk == PEER_ORT ? "ort" : "tfjs-wasm";
    double ratio = have_peer && ours.median_ms > 0 ? peer.median_ms / ours.median_ms : 0;
    char sname[64];
    short_name(name, sname, sizeof sname);
    json_t *row = json_pack(
        "{s:s,s:s,s:s,s:f,s:f,s:f,s:I,s:I,s:i,s:i}", "model", sname, "path", path, "input",
        *shape_txt ? shape_txt : "model", "median_ms", ours.median_ms, "min_ms", ours.min_ms,
        "p90_ms", ours.p90_ms, "planned_bytes", (json_int_t)ours.planned_bytes, "peak_rss_bytes",
        (json_int_t)ours.peak_rss, "n_ops", ours.n_ops, "n_ops_xnnpack", ours.n_ops_xnnpack);
    if (have_peer) {
      json_object_set_new(row, pk == PEER_ORT ? "ort" : "tfjs_wasm",
                          json_pack("{s:f,s:f,s:f,s:I}", "median_ms", peer.median_ms, "min_ms",
                                    peer.min_ms, "p90_ms", peer.p90_ms, "peak_rss_bytes",
                                    (json_int_t)peer.peak_rss));
      json_object_set_new(row, "ratio", json_real(ratio));
      if (ours.min_ms > 0)
        json_object_set_new(row, "ratio_min", json_real(peer.min_ms / ours.min_ms));
    }
    json_array_append_new(rows, row);
    if (!o.json) {
      char pm[32] = "-", pn[32] = "-", rt[32] = "-", rss[32];
      if (have_peer) {
        snprintf(pm, sizeof pm, "%.2f", peer.median_ms);
        snprintf(pn, sizeof pn, "%.2f", peer.min_ms);
        snprintf(rt, sizeof rt, "%.2fx", ratio);
      }
      snprintf(rss, sizeof rss, "%.0f/%.0f", (double)ours.peak_rss / 1048576.0,
               (double)peer.peak_rss / 1048576.0);
      printf("%-22s %-12s %9.2f %9.2f  %-9s %9s %9s %7s %9.1f %13s  %d/%d\n", sname,
             *shape_txt ? shape_txt : "model", ours.median_ms, ours.min_ms,
             have_peer ? peer_name : "-", pm, pn, rt, (double)ours.planned_bytes / 1048576.0, rss,
             ours.n_ops_xnnpack, ours.n_ops);
      fflush(stdout);
    }
  }
  if (o.json) {
    json_t *root =
        json_pack("{s:s,s:i,s:i,s:i,s:i,s:s,s:o}", "device", o.device, "threads", o.threads, "runs",
                  o.runs, "warmup", o.warmup, "rounds", o.rounds, "peer", o.peer, "models", rows);
    char *txt = root ? json_dumps(root, JSON_INDENT(2)) : NULL;
    if (txt) printf("%s\n", txt);
    free(txt);
    json_decref(root);
  } else {
    json_decref(rows);
    if (!on_dev)
      printf("\nratio = peer median / gpuguard median (> 1: gpuguard is faster); RSS: peak "
             "resident MiB of our process during the model (o) and of the peer's process (p)\n");
  }
  return failed ? 1 : 0;
}
