/* gpuguard infer: one image through one model, with shapes, digests, the
 * planned and measured memory, and the time per stage. --dump-dir writes the
 * exact input and outputs for the TF.js reference comparison. */
#include "cli/cli.h"
#include "core/opts.h"
#include "gpuguard/catalog.h"
#include "gpuguard/core.h"
#include "gpuguard/engine.h"
#include "gpuguard/error.h"
#include "gpuguard/guard.h"
#include "gpuguard/image.h"
#include "gpuguard/log.h"
#include "gpuguard/render.h"
#include "gpuguard/upscale.h"

#include <jansson.h>

#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

typedef struct infer_opts {
  const char *model;
  const char *image;
  const char *device;
  const char *backend;
  const char *dump_dir;
  const char *log_level;
  const char *fallback;
  const char *faults;
  uint64_t mem_limit;
  int retries;
  int isolate;
  int watchdog_ms;
  int cooldown_ms;
  int interval_ms;
  int threads;
  int json;
  int repeat;
  const char *mean, *std;
  int bgr;
} infer_opts;

#define IO(f) offsetof(infer_opts, f)
static const gg_opt k_infer_opts[] = {
    {"model", NULL, GG_OPT_STR, IO(model), "",
     "model name (" GG_CATALOG_MODELS ") or path to a TF.js model.json or a .onnx file",
     "NAME|PATH"},
    {"image", NULL, GG_OPT_STR, IO(image), "", "JPEG or PNG input image", "FILE"},
    {"device", "GPUGUARD_DEVICE", GG_OPT_STR, IO(device), "cpu",
     "device to run on: cpu, cuda:N, opencl:P.D, sim:mem=4560M (anything but plain cpu runs "
     "through the resilience layer)",
     "SPEC"},
    {"fallback", "GPUGUARD_FALLBACK", GG_OPT_STR, IO(fallback), "",
     "devices tried after --device, comma-separated, e.g. cpu", "SPECS"},
    {"faults", "GPUGUARD_FAULTS", GG_OPT_STR, IO(faults), "",
     "sim fault SPEC for a sim device, e.g. oom@1 or sticky@2,launch%0.1 (see README)", "SPEC"},
    {"mem-limit", "GPUGUARD_MEM_LIMIT", GG_OPT_SIZE, IO(mem_limit), "",
     "memory budget per GPU device (e.g. 3.5G); default: the device's total. A model whose "
     "fast plan does not fit runs with its lean plan (see docs/engine.md)", "BYTES"},
    {"retries", "GPUGUARD_RETRIES", GG_OPT_INT, IO(retries), "2",
     "extra attempts on a device after OOM or launch failures", "N"},
    {"isolate", "GPUGUARD_ISOLATE", GG_OPT_INT, IO(isolate), "1",
     "0: all in-process; 1: GPU devices in a supervised worker; 2: every device", "N"},
    {"watchdog-ms", "GPUGUARD_WATCHDOG_MS", GG_OPT_INT, IO(watchdog_ms), "10000",
     "a GPU run that takes longer is a hang: the worker is restarted", "MS"},
    {"cooldown-ms", "GPUGUARD_COOLDOWN_MS", GG_OPT_INT, IO(cooldown_ms), "10000",
     "an open breaker is probed again after this long", "MS"},
    {"interval-ms", NULL, GG_OPT_INT, IO(interval_ms), "0",
     "with --repeat on the guarded path: pause between requests (lets an open breaker cool down)",
     "MS"},
    {"threads", "GPUGUARD_THREADS", GG_OPT_INT, IO(threads), "1", "CPU threads", "N"},
    {"backend", "GPUGUARD_ENGINE_BACKEND", GG_OPT_STR, IO(backend), "auto",
     "CPU kernels: auto (XNNPACK where built in), xnnpack, naive", "NAME"},
    {"mean", NULL, GG_OPT_STR, IO(mean), "",
     "input value = (pixel - MEAN) / STD, pixel 0..255: one value or R,G,B (e.g. 127.5); "
     "overrides the model's convention and its MODEL.json sidecar",
     "MEAN"},
    {"std", NULL, GG_OPT_STR, IO(std), "",
     "with --mean: one value or R,G,B (default 1); --mean, --std and --bgr replace the "
     "model's rule (RGB unless --bgr)",
     "STD"},
    {"bgr", NULL, GG_OPT_BOOL, IO(bgr), "false", "feed the channels as B, G, R", NULL},
    {"json", NULL, GG_OPT_BOOL, IO(json), "false", "print one JSON object instead of text", NULL},
    {"repeat", NULL, GG_OPT_INT, IO(repeat), "1", "run N times and report the median run time",
     "N"},
    {"dump-dir", NULL, GG_OPT_STR, IO(dump_dir), "",
     "write input.f32, outN.f32 and manifest.json here", "DIR"},
    {"log-level", "GPUGUARD_LOG_LEVEL", GG_OPT_STR, IO(log_level), "warn",
     "debug, info, warn, error or off", "LEVEL"},
    {0},
};

static uint32_t fnv1a(const void *p, size_t n) {
  const uint8_t *b = p;
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < n; i++)
    h = (h ^ b[i]) * 16777619u;
  return h;
}

static int write_file(const char *dir, const char *name, const void *data, size_t n) {
  char path[PATH_MAX];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "wb");
  if (!f) {
    fprintf(stderr, "gpuguard infer: cannot write %s: %s\n", path, strerror(errno));
    return GG_EIO;
  }
  size_t w = n ? fwrite(data, 1, n, f) : 0;
  int bad = fclose(f) || w != n;
  if (bad) fprintf(stderr, "gpuguard infer: short write to %s\n", path);
  return bad ? GG_EIO : 0;
}

/* mkdir -p: creates dir and any missing parent. Returns 0, or GG_EIO after
 * saying which component could not be made and why. */
static int make_dirs(const char *dir) {
  char p[PATH_MAX];
  if (snprintf(p, sizeof p, "%s", dir) >= (int)sizeof p) {
    fprintf(stderr, "gpuguard infer: --dump-dir is longer than %d bytes\n", PATH_MAX - 1);
    return GG_EIO;
  }
  /* Each prefix ending before a '/', then the whole path. */
  for (char *s = p + 1;; s++) {
    int end = *s == 0;
    if (*s != '/' && !end) continue;
    *s = 0;
    struct stat st;
    const char *why = NULL;
    if (mkdir(p, 0755) && errno != EEXIST)
      why = strerror(errno);
    else if (stat(p, &st) || !S_ISDIR(st.st_mode))
      why = "it exists and is not a directory";
    if (why) {
      fprintf(stderr,
              "gpuguard infer: cannot create the dump directory %s: %s; pass a --dump-dir you "
              "can write to\n",
              p, why);
      return GG_EIO;
    }
    if (end) return 0;
    *s = '/';
  }
}

static json_t *shape_json(const gg_tensor_info *t) {
  json_t *a = json_array();
  for (int d = 0; d < t->ndim; d++)
    json_array_append_new(a, json_integer(t->shape[d]));
  return a;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static int fail(const char *what, int rc, const char *msg) {
  fprintf(stderr, "gpuguard infer: %s: %s (%s)\n", what, msg && *msg ? msg : gg_strerror(rc),
          gg_err_name(rc));
  return 1;
}

/* One output's summary: name, shape, FNV-1a digest of the float32 bytes,
 * the first values, range of the finite values and whether all are finite. */
static json_t *output_json(const char *name, json_t *shape, const float *d, int64_t ne) {
  char dig[16];
  snprintf(dig, sizeof dig, "%08x", fnv1a(d, (size_t)ne * 4));
  json_t *first_vals = json_array();
  int finite = 1, seen = 0;
  double mn = 0, mx = 0;
  for (int64_t k = 0; k < ne; k++) {
    int ok = d[k] == d[k] && d[k] - d[k] == 0;
    if (k < 8) json_array_append_new(first_vals, json_real(ok ? d[k] : 0.0));
    finite &= ok;
    if (!ok) continue;
    if (!seen || d[k] < mn) mn = d[k];
    if (!seen || d[k] > mx) mx = d[k];
    seen = 1;
  }
  return json_pack("{s:s,s:o,s:s,s:o,s:f,s:f,s:b}", "name", name, "shape", shape, "fnv1a", dig,
                   "first", first_vals, "min", mn, "max", mx, "finite", finite);
}

/* The text line of an output_json() summary. */
static void print_output(size_t i, json_t *e) {
  const char *name = json_string_value(json_object_get(e, "name"));
  printf("output %zu   %s%s[", i, name ? name : "", name && *name ? " " : "");
  json_t *sh = json_object_get(e, "shape");
  for (size_t d = 0; d < json_array_size(sh); d++)
    printf("%s%lld", d ? "," : "", (long long)json_integer_value(json_array_get(sh, d)));
  printf("] fnv1a=%s range=[%.6g, %.6g]%s first:", json_string_value(json_object_get(e, "fnv1a")),
         json_real_value(json_object_get(e, "min")), json_real_value(json_object_get(e, "max")),
         json_is_true(json_object_get(e, "finite")) ? "" : " NON-FINITE");
  json_t *fv = json_object_get(e, "first");
  for (size_t k = 0; k < json_array_size(fv); k++)
    printf(" %.6g", json_real_value(json_array_get(fv, k)));
  printf("\n");
}

static void print_breakers(gg_guard *g) {
  int n = gg_guard_device_count(g);
  for (int i = 0; i < n; i++) {
    gg_guard_device_status st;
    if (gg_guard_device_status_get(g, i, &st)) continue;
    printf("device %d   %s: breaker %s, served %llu, worker restarts %llu, leaked %llu bytes%s%s\n",
           i, st.spec, gg_breaker_state_name(st.breaker), (unsigned long long)st.served,
           (unsigned long long)st.worker_restarts, (unsigned long long)st.leaked_bytes,
           st.last_failure_error ? "; last failure: " : "",
           st.last_failure_error ? st.last_failure_reason : "");
  }
}

/* An upscaler model (free height and width) takes the image at its own
 * size, in the pixel range the upscaler feeds it (gg_upscale_preprocess).
 * Returns 1 and fills pp and dims (may be NULL) for one; else 0, with pp
 * from gg_preprocess_for_model. */
static int upscaler_input(const char *model, const gg_image *img, gg_preprocess *pp,
                          int64_t dims[4]) {
  gg_preprocess_for_model(model, pp);
  if (!gg_upscale_preprocess(model, pp)) return 0;
  pp->width = img->width, pp->height = img->height, pp->nchw = 0;
  if (dims) dims[0] = 1, dims[1] = img->height, dims[2] = img->width, dims[3] = 3;
  return 1;
}

/* --mean, --std and --bgr over the convention in pp. 0, or 2 (usage) with a
 * message printed. */
static int apply_norm_flags(const infer_opts *o, gg_preprocess *pp) {
  float mean[3] = {0, 0, 0}, std[3] = {1, 1, 1};
  int have_mean = o->mean && *o->mean, have_std = o->std && *o->std;
  if (have_mean && gg_preprocess_parse3(o->mean, mean)) {
    fprintf(stderr, "gpuguard infer: --mean must be one number or three (R,G,B), got '%s'\n",
            o->mean);
    return 2;
  }
  if (have_std && gg_preprocess_parse3(o->std, std)) {
    fprintf(stderr, "gpuguard infer: --std must be one number or three (R,G,B), got '%s'\n",
            o->std);
    return 2;
  }
  if ((have_mean || have_std) && gg_preprocess_set_mean_std(pp, mean, std)) {
    fprintf(stderr, "gpuguard infer: --std must not be 0\n");
    return 2;
  }
  /* the flags replace the whole rule of a convention or sidecar: RGB
   * unless --bgr */
  if (have_mean || have_std || o->bgr) pp->bgr = o->bgr;
  if (have_mean || have_std) pp->why = "--mean / --std";
  return 0;
}

/* The resilience path: the device chain --device, then --fallback, through
 * gg_guard, --repeat requests in a row. Exit 0 when every request was
 * served (by any device), 1 otherwise. */
static int infer_guarded(const infer_opts *o, const char *model) {
  char err[512] = "";
  gg_image img;
  int rc = gg_image_load(o->image, &img, err, sizeof err);
  if (rc) return fail("image", rc, err);
  gg_preprocess pp;
  gg_gtensor in = {.ndim = 4};
  const gg_model_entry *ce = gg_catalog_find_path(model); /* its input, without loading it */
  if (ce) {
    pp = ce->pp;
    memcpy(in.dims, ce->input_shape, sizeof ce->input_shape);
  } else if (upscaler_input(model, &img, &pp, in.dims)) {
  } else if ((rc = gg_model_image_input(model, &pp, in.dims, err, sizeof err))) {
    gg_image_free(&img);
    return fail("model", rc, err);
  }
  if ((rc = apply_norm_flags(o, &pp))) {
    gg_image_free(&img);
    return rc;
  }
  in.data = malloc(gg_gtensor_count(&in) * sizeof(float));
  rc = in.data ? gg_image_to_tensor(&img, &pp, in.data) : GG_ENOMEM;
  gg_image_free(&img);
  if (rc) {
    free(in.data);
    return fail("preprocess", rc, NULL);
  }

  gg_guard_config gc;
  gg_guard_config_init(&gc);
  char store[1024], runner_arg[32];
  if (*o->faults && strncmp(o->device, "sim", 3))
    fprintf(stderr,
            "gpuguard infer: warning: --faults applies to sim devices only; '%s' ignores it\n",
            o->device);
  if ((rc = gg_guard_config_chain(&gc, o->device, o->faults, o->fallback, store, sizeof store))) {
    free(in.data);
    return fail("device", rc, "--device and --fallback name too long a chain");
  }
  snprintf(runner_arg, sizeof runner_arg, "threads=%d", o->threads < 1 ? 1 : o->threads);
  gc.runner = "engine";
  gc.runner_arg = runner_arg;
  if (o->retries >= 0) gc.retries = o->retries;
  if (o->watchdog_ms > 0) gc.watchdog_ms = o->watchdog_ms;
  if (o->cooldown_ms > 0) gc.breaker_cooldown_ms = o->cooldown_ms;
  gc.isolate = o->isolate;
  gc.mem_budget = o->mem_limit;
  gg_guard *g = NULL;
  if ((rc = gg_guard_new(&gc, &g))) {
    free(in.data);
    return fail("device", rc, "cannot set up the device chain (see the log above)");
  }
  json_t *runs = json_array();
  int served = 0;
  for (int r = 0; r < o->repeat; r++) {
    if (r && o->interval_ms > 0) {
      struct timespec ts = {o->interval_ms / 1000, (long)(o->interval_ms % 1000) * 1000000L};
      nanosleep(&ts, NULL);
    }
    gg_guard_result res;
    memset(&res, 0, sizeof res);
    rc = gg_guard_infer(g, model, &in, &res);
    if (rc == 0) served++;
    json_t *j =
        json_pack("{s:i,s:b,s:s,s:i,s:b,s:s,s:f,s:I}", "request", r + 1, "served", rc == 0,
                  "device", res.device, "attempts", res.attempts, "fell_back", res.fell_back,
                  "last_error", res.last_error ? gg_err_name(res.last_error) : "", "ms",
                  res.elapsed_ms, "planned_peak", (json_int_t)res.planned_peak);
    if (rc) json_object_set_new(j, "error", json_string(gg_err_name(rc)));
    if (rc == 0) {
      json_t *by_be = json_object(); /* where the serving run's ops ran */
      for (int b = 0; b < res.n_backends; b++)
        json_object_set_new(by_be, res.ops_by_backend[b].name, json_integer(res.ops_by_backend[b].n_ops));
      json_object_set_new(j, "ops_by_backend", by_be);
    }
    if (!o->json) {
      printf("request %d  %s by %s after %d attempt%s%s%s%s, %.2f ms, planned peak %llu bytes\n",
             r + 1, rc ? "FAILED" : "served", res.device[0] ? res.device : "no device",
             res.attempts, res.attempts == 1 ? "" : "s", res.fell_back ? " (fell back)" : "",
             res.last_error ? "; last error " : "",
             res.last_error ? gg_err_name(res.last_error) : "", res.elapsed_ms,
             (unsigned long long)res.planned_peak);
      if (rc) printf("           error: %s (%s)\n", gg_strerror(rc), gg_err_name(rc));
    }
    if (rc == 0 && r == o->repeat - 1) {
      json_t *outs = json_array();
      for (int i = 0; i < res.n_outputs; i++) {
        const gg_gtensor *t = &res.outputs[i];
        json_t *shape = json_array();
        for (int d = 0; d < t->ndim; d++)
          json_array_append_new(shape, json_integer(t->dims[d]));
        json_t *e = output_json("", shape, t->data, (int64_t)gg_gtensor_count(t));
        if (!o->json) print_output((size_t)i, e);
        json_array_append_new(outs, e);
      }
      json_object_set_new(j, "outputs", outs);
    }
    json_array_append_new(runs, j);
    gg_guard_result_release(&res);
  }
  free(in.data);
  gg_guard_shutdown(g);
  if (o->json) {
    json_t *root = json_pack("{s:s,s:s,s:o,s:o}", "model", model, "image", o->image, "requests",
                             runs, "guard", (json_t *)gg_guard_json(g));
    char *txt = root ? json_dumps(root, JSON_INDENT(2)) : NULL;
    if (txt) printf("%s\n", txt);
    free(txt);
    json_decref(root);
  } else {
    json_decref(runs);
    print_breakers(g);
    gg_guard_stats st;
    if (gg_guard_stats_get(g, &st) == 0)
      printf("guard      %llu served, %llu failed, %llu retries, %llu fallbacks, %llu worker "
             "restarts, "
             "%llu timeouts, %llu leaked bytes\n",
             (unsigned long long)st.served, (unsigned long long)st.failed,
             (unsigned long long)st.retries, (unsigned long long)st.fallbacks,
             (unsigned long long)st.worker_restarts, (unsigned long long)st.timeouts,
             (unsigned long long)st.leaked_bytes);
  }
  gg_guard_free(g);
  return served == o->repeat ? 0 : 1;
}

int gg_cli_infer(int argc, char **argv) {
  infer_opts o;
  memset(&o, 0, sizeof o);
  char err[1024] = "";
  static const char usage[] =
      "Usage: gpuguard infer --model NAME|PATH --image FILE [options]\n\n"
      "Runs one image through one model (a TF.js graph model or an ONNX file) and prints\n"
      "the outputs (shape, FNV-1a digest of the float32 bytes, first values).\n\n"
      "The image is resized to the model's input and fed as pixel / 255 unless the model\n"
      "is a bundled one (its own convention), MODEL.json sits next to the model file\n"
      "(\"mean\", \"std\", \"channels\": \"BGR\", \"width\", \"height\"; docs/ONNX.md), or\n"
      "--mean/--std/--bgr say otherwise.\n\n"
      "With --device cpu alone it runs the engine directly and also prints the planned\n"
      "and the measured memory and the time per stage. With any other device, a\n"
      "--fallback or --faults, each run goes through the resilience layer (admission,\n"
      "retries, circuit breaker, worker isolation, fallback chain) and prints which\n"
      "device served it, after how many attempts, and the breaker states after it:\n"
      "  gpuguard infer --model blazeface --image photo.jpg \\\n"
      "      --device sim:mem=4560M --faults sticky@3 --fallback cpu --repeat 3\n\n";
  int rc = gg_opts_cli("infer", usage, k_infer_opts, &o, argc, argv);
  if (rc >= 0) return rc;
  gg_log_level lvl;
  if (gg_log_level_parse(o.log_level, &lvl) == 0) gg_log_set_level(lvl);
  if (!o.model || !*o.model || !o.image || !*o.image) {
    fprintf(stderr, "gpuguard infer: --model and --image are required (see --help)\n");
    return 2;
  }
  int guarded = strcmp(o.device, "cpu") || *o.fallback || *o.faults;
  if (*o.faults) {
    gg_fault_plan *plan = NULL;
    if (gg_fault_plan_parse(o.faults, 1, &plan, err, sizeof err)) {
      fprintf(stderr, "gpuguard infer: --faults: %s\n", err);
      return 2;
    }
    gg_fault_plan_free(plan);
  }
  gg_session_opts so = {o.threads, GG_ENGINE_AUTO, 0};
  if (!strcmp(o.backend, "naive"))
    so.backend = GG_ENGINE_NAIVE;
  else if (!strcmp(o.backend, "xnnpack"))
    so.backend = GG_ENGINE_XNNPACK;
  else if (strcmp(o.backend, "auto")) {
    fprintf(stderr, "gpuguard infer: --backend must be auto, xnnpack or naive, got '%s'\n",
            o.backend);
    return 2;
  }
  if (o.repeat < 1 || o.repeat > 100000) {
    fprintf(stderr, "gpuguard infer: --repeat must be 1..100000\n");
    return 2;
  }
  char path[PATH_MAX], abspath[PATH_MAX];
  rc = gg_catalog_resolve(o.model, path, sizeof path);
  if (rc) {
    fprintf(stderr,
            "gpuguard infer: model '%s' not found (looked for %s); run scripts/fetch-models.sh or "
            "pass a path to a model.json or .onnx file\n",
            o.model, path);
    return 1;
  }
  /* absolute (a worker process may run elsewhere), symbolic links kept: a
   * MODEL.json sidecar sits next to the path as the user gave it */
  char cwd[PATH_MAX];
  size_t lc = 0, lp = strlen(path);
  if (path[0] != '/' && getcwd(cwd, sizeof cwd)) lc = strlen(cwd);
  if (lc && lc + lp + 2 <= sizeof abspath) {
    memcpy(abspath, cwd, lc);
    abspath[lc] = '/';
    memcpy(abspath + lc + 1, path, lp + 1);
  } else
    snprintf(abspath, sizeof abspath, "%s", path);
  if (guarded) return infer_guarded(&o, abspath);

  uint64_t t0 = gg_now_ns();
  gg_image img;
  if ((rc = gg_image_load(o.image, &img, err, sizeof err))) return fail("image", rc, err);
  uint64_t t1 = gg_now_ns();
  gg_model *m = NULL;
  if ((rc = gg_model_load(abspath, &m, err, sizeof err))) {
    gg_image_free(&img);
    return fail("model", rc, err);
  }
  uint64_t t2 = gg_now_ns();
  gg_tensor_info in;
  gg_model_input(m, 0, &in);
  gg_preprocess pp;
  const gg_model_entry *ce = gg_catalog_find_path(abspath);
  if (ce)
    pp = ce->pp;
  else
    upscaler_input(abspath, &img, &pp, NULL); /* else gg_preprocess_for_model's */
  if (!ce && in.ndim == 4 && in.shape[1] == 3 && in.shape[3] != 3) pp.nchw = 1; /* ONNX: [N,3,H,W] */
  int sidecar = 0;
  if ((!ce && (rc = gg_preprocess_sidecar(abspath, &pp, &sidecar, err, sizeof err))) ||
      (rc = apply_norm_flags(&o, &pp))) {
    gg_model_free(m);
    gg_image_free(&img);
    return rc == 2 ? 2 : fail("model", rc, err);
  }
  int64_t shape[GG_ENGINE_MAX_DIMS];
  for (int d = 0; d < in.ndim; d++)
    shape[d] = in.shape[d] < 0 ? 1 : in.shape[d];
  if (in.ndim != 4) {
    gg_model_free(m);
    gg_image_free(&img);
    return fail("model", GG_EUNSUPPORTED, "image input needs a 4-D model input");
  }
  int hd = pp.nchw ? 2 : 1, wd = pp.nchw ? 3 : 2, cd = pp.nchw ? 1 : 3;
  if (!pp.width) pp.width = in.shape[wd] > 0 ? (int)in.shape[wd] : 224;
  if (!pp.height) pp.height = in.shape[hd] > 0 ? (int)in.shape[hd] : 224;
  if ((in.shape[wd] > 0 && pp.width != in.shape[wd]) ||
      (in.shape[hd] > 0 && pp.height != in.shape[hd])) {
    snprintf(err, sizeof err,
             "%.900s.json asks for %dx%d, but the model's input is fixed at %lldx%lld", abspath, pp.width, pp.height, (long long)in.shape[wd], (long long)in.shape[hd]);
    gg_model_free(m);
    gg_image_free(&img);
    return fail("model", GG_EINVAL, err);
  }
  shape[0] = 1, shape[hd] = pp.height, shape[wd] = pp.width, shape[cd] = 3;
  gg_session *s = NULL;
  if ((rc = gg_session_new(m, shape, in.ndim, &so, &s, err, sizeof err))) {
    gg_model_free(m);
    gg_image_free(&img);
    return fail("prepare", rc, err);
  }
  uint64_t t3 = gg_now_ns();
  float *inp = gg_session_input(s, 0, &in);
  rc = gg_image_to_tensor(&img, &pp, inp);
  uint64_t t4 = gg_now_ns();
  int iw = img.width, ih = img.height;
  gg_image_free(&img);
  if (rc) {
    gg_session_free(s);
    gg_model_free(m);
    return fail("preprocess", rc, "bad sizes");
  }
  int64_t in_elems = 1;
  for (int d = 0; d < in.ndim; d++)
    in_elems *= in.shape[d];
  /* Dump the input before running: the graph never writes its inputs, but
   * this makes the file independent of that. */
  if (*o.dump_dir) {
    if (make_dirs(o.dump_dir) || write_file(o.dump_dir, "input.f32", inp, (size_t)in_elems * 4)) {
      gg_session_free(s);
      gg_model_free(m);
      return 1;
    }
  }
  uint64_t *runs = calloc((size_t)o.repeat, sizeof *runs);
  if (!runs) return fail("run", GG_ENOMEM, NULL);
  for (int r = 0; r < o.repeat && !rc; r++) {
    uint64_t a = gg_now_ns();
    rc = gg_session_run(s, err, sizeof err);
    runs[r] = gg_now_ns() - a;
  }
  if (rc) {
    free(runs);
    gg_session_free(s);
    gg_model_free(m);
    return fail("run", rc, err);
  }
  qsort(runs, (size_t)o.repeat, sizeof *runs, cmp_u64);
  double run_ms = (double)runs[o.repeat / 2] / 1e6;
  free(runs);
  gg_engine_mem mem;
  gg_session_memory(s, &mem);

  char vdesc[200];
  gg_preprocess_describe(&pp, vdesc, sizeof vdesc);
  json_t *root = json_object(), *outs = json_array(), *man = json_object(), *mouts = json_array();
  json_object_set_new(root, "model", json_string(abspath));
  json_object_set_new(root, "image", json_string(o.image));
  json_object_set_new(root, "image_size", json_pack("[i,i]", iw, ih));
  json_object_set_new(root, "input",
                      json_pack("{s:s,s:o,s:f,s:f,s:b,s:s,s:b,s:s}", "name", in.name, "shape",
                                shape_json(&in), "scale", (double)pp.scale, "offset",
                                (double)pp.offset, "nchw", pp.nchw, "convention", pp.why, "bgr",
                                pp.bgr, "value", vdesc));
  json_object_set_new(man, "model", json_string(abspath));
  json_object_set_new(
      man, "input",
      json_pack("{s:s,s:o,s:s}", "name", in.name, "shape", shape_json(&in), "file", "input.f32"));
  int nout = gg_model_n_outputs(m);
  for (int i = 0; i < nout; i++) {
    gg_tensor_info oi;
    const float *d = gg_session_output(s, i, &oi);
    int64_t ne = gg_session_output_elems(s, i);
    char fname[32];
    json_array_append_new(outs, output_json(oi.name, shape_json(&oi), d, ne));
    snprintf(fname, sizeof fname, "out%d.f32", i);
    json_array_append_new(mouts, json_pack("{s:s,s:o,s:s}", "name", oi.name, "shape",
                                           shape_json(&oi), "file", fname));
    if (*o.dump_dir && write_file(o.dump_dir, fname, d, (size_t)ne * 4)) rc = GG_EIO;
  }
  json_object_set_new(root, "outputs", outs);
  json_object_set_new(man, "outputs", mouts);
  json_object_set_new(
      root, "memory",
      json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:b,s:s,s:I,s:I}", "weights", (json_int_t)mem.weights,
                "arena", (json_int_t)mem.arena, "arena_no_reuse", (json_int_t)mem.arena_no_reuse,
                "workspace", (json_int_t)mem.workspace, "predicted", (json_int_t)mem.predicted,
                "measured", (json_int_t)mem.measured, "equal", mem.predicted == mem.measured,
                "plan", mem.plan, "plan_fast", (json_int_t)mem.plan_fast, "plan_lean",
                (json_int_t)mem.plan_lean));
  json_object_set_new(root, "ops",
                      json_pack("{s:i,s:i}", "total", mem.n_ops, "xnnpack", mem.n_ops_xnnpack));
  json_t *by_be = json_object();
  for (int b = 0; b < mem.n_backends; b++)
    if (mem.ops[b].n_ops) json_object_set_new(by_be, mem.ops[b].name, json_integer(mem.ops[b].n_ops));
  json_object_set_new(root, "ops_by_backend", by_be);
  json_object_set_new(root, "threads", json_integer(o.threads < 1 ? 1 : o.threads));
  json_object_set_new(root, "time_ms",
                      json_pack("{s:f,s:f,s:f,s:f,s:f,s:i}", "decode", (double)(t1 - t0) / 1e6,
                                "load", (double)(t2 - t1) / 1e6, "prepare", (double)(t3 - t2) / 1e6,
                                "preprocess", (double)(t4 - t3) / 1e6, "run", run_ms, "repeat",
                                o.repeat));
  if (*o.dump_dir) {
    char mp[PATH_MAX];
    snprintf(mp, sizeof mp, "%s/manifest.json", o.dump_dir);
    if (json_dump_file(man, mp, JSON_INDENT(2))) {
      fprintf(stderr, "gpuguard infer: cannot write %s\n", mp);
      rc = GG_EIO;
    }
  }
  if (o.json) {
    char *txt = json_dumps(root, JSON_INDENT(2));
    if (txt) printf("%s\n", txt);
    free(txt);
  } else {
    printf("model      %s (%d ops, %d on XNNPACK, %d thread%s)\n", abspath, mem.n_ops,
           mem.n_ops_xnnpack, o.threads < 1 ? 1 : o.threads, o.threads > 1 ? "s" : "");
    printf("image      %s %dx%d -> %s [", o.image, iw, ih, in.name);
    for (int d = 0; d < in.ndim; d++)
      printf("%s%lld", d ? "," : "", (long long)in.shape[d]);
    printf("] value = %s%s\n", vdesc, pp.nchw ? ", NCHW" : "");
    for (size_t i = 0; i < json_array_size(outs); i++)
      print_output(i, json_array_get(outs, i));
    char b1[32], b2[32], b3[32], b4[32], b5[32], b6[32];
    printf("memory     weights %s + arena %s + workspace %s = predicted %s; measured %s (%s); "
           "arena without reuse %s\n",
           gg_format_size(mem.weights, b1, sizeof b1), gg_format_size(mem.arena, b2, sizeof b2),
           gg_format_size(mem.workspace, b3, sizeof b3),
           gg_format_size(mem.predicted, b4, sizeof b4),
           gg_format_size(mem.measured, b5, sizeof b5),
           mem.predicted == mem.measured ? "equal" : "DIFFERENT",
           gg_format_size(mem.arena_no_reuse, b6, sizeof b6));
    printf("bytes      predicted %llu measured %llu\n", (unsigned long long)mem.predicted,
           (unsigned long long)mem.measured);
    printf("time       decode %.2f ms, load %.2f ms, prepare %.2f ms, preprocess %.2f ms, run %.2f "
           "ms%s\n",
           (double)(t1 - t0) / 1e6, (double)(t2 - t1) / 1e6, (double)(t3 - t2) / 1e6,
           (double)(t4 - t3) / 1e6, run_ms, o.repeat > 1 ? " (median)" : "");
    if (*o.dump_dir) printf("dump       %s/manifest.json\n", o.dump_dir);
  }
  json_decref(root);
  json_decref(man);
  gg_session_free(s);
  gg_model_free(m);
  return rc ? 1 : 0;
}
