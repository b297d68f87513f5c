/* gpuguard bench: median latency of each model's run stage on the CPU, and,
 * in the same run, the same model on TensorFlow.js with its WebAssembly
 * backend (XNNPACK compiled to wasm) when the pinned tfjs is installed. The
 * ratio is tfjs-wasm median / ours (> 1: gpuguard is faster). For the
 * interleaved multi-round numbers in bench/README.md use bench/bench-engine.sh.
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
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct bench_opts {
  const char *models;
  const char *peer;
  const char *device;
  int threads;
  int runs;
  int warmup;
  int json;
} bench_opts;

#define BO(f) offsetof(bench_opts, f)
static const gg_opt k_bench_opts[] = {
    {"models", NULL, GG_OPT_STR, BO(models), GG_CATALOG_MODELS,
     "comma-separated model names or model.json paths", "LIST"},
    {"threads", "GPUGUARD_THREADS", GG_OPT_INT, BO(threads), "1", "CPU threads for gpuguard", "N"},
    {"runs", NULL, GG_OPT_INT, BO(runs), "20", "timed runs per model and implementation", "N"},
    {"warmup", NULL, GG_OPT_INT, BO(warmup), "3", "untimed runs first", "N"},
    {"peer", NULL, GG_OPT_STR, BO(peer), "auto",
     "tfjs-wasm (needs node and scripts/fetch-reference.sh), none, or auto (tfjs-wasm when "
     "installed)",
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
  char ops_by_backend[96]; /* "opencl 150", "xnnpack 60 naive 10" */
} timing;

static double ms_since(uint64_t t0) {
  return (double)(gg_now_ns() - t0) / 1e6;
}

/* Our side: load, prepare once (in `pool`'s device memory, or on the host
 * when pool is NULL), fill the input with fixed pseudo-random values, time
 * the first run, then `runs` runs of gg_session_run after `warmup` more. */
static int bench_ours(const char *path, gg_pool *pool, const bench_opts *o, int warmup, int runs,
                      timing *t, char *err, size_t errlen) {
  uint64_t t0 = gg_now_ns();
  gg_model *m = NULL;
  int rc = gg_model_load(path, &m, err, errlen);
  if (rc) return rc;
  gg_session_opts so;
  memset(&so, 0, sizeof so);
  so.threads = o->threads;
  so.backend = GG_ENGINE_AUTO;
  gg_session *s = NULL;
  if ((rc = gg_session_new_on(m, NULL, 0, &so, pool, &s, err, errlen))) {
    gg_model_free(m);
    return rc;
  }
  gg_tensor_info in;
  float *x = gg_session_input(s, 0, &in);
  int64_t n = 1;
  for (int d = 0; d < in.ndim; d++)
    n *= in.shape[d] > 0 ? in.shape[d] : 1;
  uint32_t r = 12345;
  for (int64_t i = 0; i < n; i++) {
    r = r * 1664525u + 1013904223u;
    x[i] = (float)r / 4294967296.0f;
  }
  t->setup_ms = ms_since(t0);
  double *ts = calloc((size_t)(runs > 0 ? runs : 1), sizeof *ts);
  if (!ts) rc = GG_ENOMEM;
  int total = warmup + runs > 0 ? warmup + runs : 1; /* the first run at least */
  for (int i = 0; i < total && !rc; i++) {
    uint64_t a = gg_now_ns();
    rc = gg_session_run(s, err, errlen);
    if (i == 0) t->first_run_ms = ms_since(a);
    if (i >= warmup) ts[i - warmup] = ms_since(a);
  }
  if (!rc) {
    int k = runs;
    if (k > 0) {
      qsort(ts, (size_t)k, sizeof *ts, cmp_double);
      t->median_ms = k % 2 ? ts[k / 2] : (ts[k / 2 - 1] + ts[k / 2]) / 2;
      t->min_ms = ts[0];
      t->p90_ms = ts[(int)(0.9 * (k - 1))];
    }
    gg_engine_mem mem;
    gg_session_memory(s, &mem);
    t->n_ops = mem.n_ops;
    t->n_ops_xnnpack = mem.n_ops_xnnpack;
    t->planned_bytes = mem.predicted;
    size_t w = 0;
    for (int b = 0; b < mem.n_backends && w < sizeof t->ops_by_backend; b++)
      if (mem.ops[b].n_ops > 0)
        w += (size_t)snprintf(t->ops_by_backend + w, sizeof t->ops_by_backend - w, "%s%s %d",
                              w ? " " : "", mem.ops[b].name, mem.ops[b].n_ops);
  }
  free(ts);
  gg_session_free(s);
  gg_model_free(m);
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
    printf("%-14s %6.0f (%5.0f + %5.0f) %6.0f (%5.0f + %5.0f) %6.0f (%5.0f + %5.0f) %8.2f "
           "%8.2f  %s\n",
           name, cold.setup_ms + cold.first_run_ms, cold.setup_ms, cold.first_run_ms,
           ours_cold.setup_ms + ours_cold.first_run_ms, ours_cold.setup_ms, ours_cold.first_run_ms,
           warm.setup_ms + warm.first_run_ms, warm.setup_ms, warm.first_run_ms, warm.median_ms,
           warm.p90_ms, warm.ops_by_backend);
    fflush(stdout);
  }
  return 0;
}

/* The peer script, or "" when tfjs is not installed next to the sources. */
static const char *peer_script(void) {
  static char script[PATH_MAX];
  char wasm[PATH_MAX];
  snprintf(script, sizeof script, "%s/bench/tfjs/bench.js", GG_SOURCE_DIR);
  snprintf(wasm, sizeof wasm,
           "%s/tests/reference/node_modules/@tensorflow/tfjs-backend-wasm/package.json",
           GG_SOURCE_DIR);
  if (access(script, R_OK) || access(wasm, R_OK)) return "";
  if (system("node --version >/dev/null 2>&1") != 0) return "";
  return script;
}

/* Runs the tfjs-wasm side; reads its one JSON line. */
static int bench_peer(const char *script, const char *path, const bench_opts *o, timing *t,
                      char *err, size_t errlen) {
  char cmd[3 * PATH_MAX];
  snprintf(cmd, sizeof cmd,
           "node '%s' '%s' --backend wasm --threads 1 --runs %d --warmup %d 2>/dev/null", script,
           path, o->runs, o->warmup);
  FILE *f = popen(cmd, "r");
  if (!f) {
    snprintf(err, errlen, "cannot run node");
    return GG_EIO;
  }
  char line[4096], last[4096] = "";
  while (fgets(line, sizeof line, f))
    if (line[0] == '{') snprintf(last, sizeof last, "%s", line);
  int st = pclose(f);
  json_error_t je;
  json_t *j = last[0] ? json_loads(last, 0, &je) : NULL;
  if (st != 0 || !j) {
    snprintf(err, errlen, "tfjs-wasm failed on %.900s (exit status %d)", path, st);
    json_decref(j);
    return GG_EIO;
  }
  t->median_ms = json_number_value(json_object_get(j, "median_ms"));
  t->min_ms = json_number_value(json_object_get(j, "min_ms"));
  t->p90_ms = json_number_value(json_object_get(j, "p90_ms"));
  json_decref(j);
  return 0;
}

int gg_cli_bench(int argc, char **argv) {
  bench_opts o;
  memset(&o, 0, sizeof o);
  char err[1024] = "";
  static const char usage[] =
      "Usage: gpuguard bench [options]\n\n"
      "Times each model's run stage on the CPU (gpuguard's engine, XNNPACK) and, in the\n"
      "same run, on TensorFlow.js with its WebAssembly backend (1 thread), and prints the\n"
      "medians and the ratio tfjs-wasm / gpuguard (> 1: gpuguard is faster). Inputs are\n"
      "fixed pseudo-random tensors of each model's input shape.\n"
      "bench/bench-engine.sh runs the same comparison over interleaved rounds.\n\n";
  int rc = gg_opts_cli("bench", usage, k_bench_opts, &o, argc, argv);
  if (rc >= 0) return rc;
  if (o.runs < 1 || o.runs > 100000 || o.warmup < 0 || o.warmup > 1000 || o.threads < 1 ||
      o.threads > 256) {
    fprintf(stderr, "gpuguard bench: --runs 1..100000, --warmup 0..1000, --threads 1..256\n");
    return 2;
  }
  const char *script = "";
  int on_dev = strcmp(o.device, "cpu") != 0;
  if (on_dev && !strcmp(o.peer, "tfjs-wasm")) {
    fprintf(stderr,
            "gpuguard bench: --peer tfjs-wasm compares CPU times; leave it out with "
            "--device %s\n",
            o.device);
    return 2;
  }
  if (on_dev) {
    /* no peer on a device */
  } else if (!strcmp(o.peer, "tfjs-wasm") || !strcmp(o.peer, "auto")) {
    script = peer_script();
    if (!*script && !strcmp(o.peer, "tfjs-wasm")) {
      fprintf(stderr, "gpuguard bench: --peer tfjs-wasm needs node and the pinned tfjs "
                      "(scripts/fetch-reference.sh) next to the sources\n");
      return 2;
    }
  } else if (strcmp(o.peer, "none")) {
    fprintf(stderr, "gpuguard bench: --peer must be tfjs-wasm, none or auto, got '%s'\n", o.peer);
    return 2;
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
    printf("gpuguard bench: %d run(s) after %d warm-up, gpuguard %d thread(s)%s\n\n", o.runs,
           o.warmup, o.threads, *script ? ", tfjs-wasm 1 thread" : ", no peer");
    printf("%-14s %10s %10s %8s %12s %8s\n", "model", "ours ms", "tfjs ms", "ratio", "planned MiB",
           "xnn ops");
  }
  char list[1024];
  snprintf(list, sizeof list, "%s", o.models);
  int failed = 0;
  char *save = NULL;
  for (char *name = strtok_r(list, ",", &save); name; name = strtok_r(NULL, ",", &save)) {
    char path[PATH_MAX];
    if (gg_catalog_resolve(name, path, sizeof path)) {
      fprintf(stderr,
              "gpuguard bench: model '%s' not found (looked for %s); run "
              "scripts/fetch-models.sh\n",
              name, path);
      failed++;
      continue;
    }
    if (on_dev) {
      if ((rc = bench_device(name, path, &o, rows, err, sizeof err))) {
        fprintf(stderr, "gpuguard bench: %s on %s: %s (%s)\n", name, o.device, err,
                gg_err_name(rc));
        failed++;
      }
      continue;
    }
    timing ours = {0}, peer = {0};
    if ((rc = bench_ours(path, NULL, &o, o.warmup, o.runs, &ours, err, sizeof err))) {
      fprintf(stderr, "gpuguard bench: %s: %s (%s)\n", name, err, gg_err_name(rc));
      failed++;
      continue;
    }
    int have_peer = *script && bench_peer(script, path, &o, &peer, err, sizeof err) == 0;
    if (*script && !have_peer) fprintf(stderr, "gpuguard bench: %s: %s\n", name, err);
    double ratio = have_peer && ours.median_ms > 0 ? peer.median_ms / ours.median_ms : 0;
    json_t *row = json_pack("{s:s,s:f,s:f,s:f,s:I,s:i,s:i}", "model", name, "median_ms",
                            ours.median_ms, "min_ms", ours.min_ms, "p90_ms", ours.p90_ms,
                            "planned_bytes", (json_int_t)ours.planned_bytes, "n_ops", ours.n_ops,
                            "n_ops_xnnpack", ours.n_ops_xnnpack);
    if (have_peer) {
      json_object_set_new(row, "tfjs_wasm",
                          json_pack("{s:f,s:f,s:f}", "median_ms", peer.median_ms, "min_ms",
                                    peer.min_ms, "p90_ms", peer.p90_ms));
      json_object_set_new(row, "ratio", json_real(ratio));
    }
    json_array_append_new(rows, row);
    if (!o.json) {
      char tf[32] = "-", rt[32] = "-";
      if (have_peer) {
        snprintf(tf, sizeof tf, "%.2f", peer.median_ms);
        snprintf(rt, sizeof rt, "%.2fx", ratio);
      }
      printf("%-14s %10.2f %10s %8s %12.1f %4d/%-3d\n", name, ours.median_ms, tf, rt,
             (double)ours.planned_bytes / 1048576.0, ours.n_ops_xnnpack, ours.n_ops);
      fflush(stdout);
    }
  }
  if (o.json) {
    json_t *root = json_pack("{s:s,s:i,s:i,s:i,s:s,s:o}", "device", o.device, "threads", o.threads,
                             "runs", o.runs, "warmup", o.warmup, "peer",
                             *script ? "tfjs-wasm" : "none", "models", rows);
    char *txt = root ? json_dumps(root, JSON_INDENT(2)) : NULL;
    if (txt) printf("%s\n", txt);
    free(txt);
    json_decref(root);
  } else {
    json_decref(rows);
    if (*script) printf("\nratio = tfjs-wasm median / gpuguard median (> 1: gpuguard is faster)\n");
  }
  return failed ? 1 : 0;
}
