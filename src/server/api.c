/* Built-in API endpoints: health, readiness, device and memory state,
 * runtime device switching, and inference through the guard. */
#include "gpuguard/core.h"
#include "gpuguard/engine.h"
#include "gpuguard/error.h"
#include "gpuguard/image.h"
#include "gpuguard/log.h"
#include "server/server-impl.h"

#include <ctype.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Outputs up to this many elements are returned whole; larger ones as a
 * summary unless the caller asks for ?full=1. */
#define INFER_INLINE_MAX 4096

static void h_healthz(gg_server *srv, const gg_http_req *req, gg_http_resp *resp, void *user) {
  double up = (double)(gg_now_ns() - srv->started_ns) / 1e9;
  gg_http_json(resp, 200, json_pack("{s:s,s:f}", "status", "ok", "uptime_s", up));
}

/* Index of the device that would serve a request now: the first in the
 * chain whose breaker is not open; -1 when none. */
static int serving_index(gg_server *srv, gg_guard_device_status *st) {
  int n = gg_guard_device_count(srv->guard);
  for (int i = 0; i < n; i++) {
    if (gg_guard_device_status_get(srv->guard, i, st) == 0 && st->breaker != GG_BREAKER_OPEN)
      return i;
  }
  return -1;
}

static void h_readyz(gg_server *srv, const gg_http_req *req, gg_http_resp *resp, void *user) {
  gg_guard_device_status st;
  int idx = serving_index(srv, &st);
  int models = atomic_load(&srv->models_ready);
  int ready = idx >= 0 && models;
  json_t *j = json_pack("{s:b,s:b,s:b}", "ready", ready, "device_usable", idx >= 0, "models_loaded",
                        models);
  /* The spec the serving context runs with: a sim's fault burst is gone
   * after its first worker restart (docs/resilience.md). */
  json_object_set_new(j, "device", json_string(idx >= 0 ? st.effective_spec : ""));
  json_object_set_new(j, "faults_active", json_boolean(idx >= 0 && st.faults_active));
  /* A switch being prepared does not change readiness: the old device
   * serves until the new one is committed. */
  gg_guard_switch_status sw;
  if (gg_guard_switch_status_get(srv->guard, &sw) == 0 && sw.state == GG_SWITCH_PREPARING)
    json_object_set_new(j, "switch", gg_guard_switch_json(&sw));
  if (!ready) {
    const char *why = !models ? (srv->models_error[0] ? srv->models_error : "models loading")
                              : "no usable device: every breaker is open";
    json_object_set_new(j, "reason", json_string(why));
  }
  gg_http_json(resp, ready ? 200 : 503, j);
}

static json_t *device_info_json(const gg_device_info *d) {
  return json_pack("{s:s,s:s,s:s,s:s,s:s,s:I,s:I,s:I,s:i}", "name", d->name, "kind",
                   gg_device_kind_name(d->kind), "description", d->description, "vendor", d->vendor,
                   "driver_version", d->driver_version, "total_bytes", (json_int_t)d->total_mem,
                   "free_bytes", (json_int_t)d->free_mem, "max_alloc_bytes",
                   (json_int_t)d->max_alloc, "compute_units", d->compute_units);
}

/* Enumerating drivers is slow (an OpenCL platform loads its whole runtime),
 * so the list is refreshed at most every DEVICE_LIST_TTL_NS. */
#define DEVICE_LIST_TTL_NS (5ull * 1000000000ull)

/* Refreshes the cached device list when it is older than the TTL. Call with
 * devlist_lock held. The list comes from a child process: the server never
 * loads a GPU runtime itself (see gg_guard_enumerate_isolated). */
static void devlist_refresh_locked(gg_server *srv) {
  uint64_t now = gg_now_ns();
  if (srv->devlist && now - srv->devlist_ns <= DEVICE_LIST_TTL_NS) return;
  gg_device_info *list = NULL;
  size_t n = 0;
  if (gg_guard_enumerate_isolated(NULL, 10000, &list, &n) == 0) {
    free(srv->devlist);
    srv->devlist = list;
    srv->devlist_n = n;
    srv->devlist_ns = now;
  }
}

static json_t *device_list_json(gg_server *srv) {
  pthread_mutex_lock(&srv->devlist_lock);
  devlist_refresh_locked(srv);
  json_t *devs = json_array();
  for (size_t i = 0; i < srv->devlist_n; i++)
    json_array_append_new(devs, device_info_json(&srv->devlist[i]));
  pthread_mutex_unlock(&srv->devlist_lock);
  return devs;
}

/* 0 when `spec` names a device this machine has, else GG_ENODEV / GG_EINVAL.
 * cpu and sim specs are opened here (no runtime behind them); cuda:N and
 * opencl:P.D are looked up in the list a child process enumerated, so
 * checking a switch request loads no GPU runtime into the server. */
static int device_spec_check(gg_server *srv, const char *spec) {
  if (strncmp(spec, "cuda:", 5) && strncmp(spec, "opencl:", 7)) {
    gg_device *probe = NULL;
    int rc = gg_device_open(spec, &probe);
    gg_device_free(probe);
    return rc;
  }
  pthread_mutex_lock(&srv->devlist_lock);
  devlist_refresh_locked(srv);
  int found = 0;
  for (size_t i = 0; i < srv->devlist_n && !found; i++)
    found = !strcmp(srv->devlist[i].name, spec);
  pthread_mutex_unlock(&srv->devlist_lock);
  return found ? 0 : GG_ENODEV;
}

static json_t *device_state_json(gg_server *srv) {
  json_t *devs = device_list_json(srv);
  gg_proc_mem pm;
  if (gg_proc_mem_read(&pm) != 0) memset(&pm, 0, sizeof pm);
  gg_guard_device_status st, primary;
  int idx = serving_index(srv, &st);
  int have_primary = gg_guard_device_status_get(srv->guard, 0, &primary) == 0;
  json_t *j = json_pack("{s:s,s:o,s:I,s:b,s:{s:f,s:f,s:f}}", "device", idx >= 0 ? st.name : "none",
                        "devices", devs, "generation_count",
                        (json_int_t)atomic_load(&srv->generation_count), "gpu_failed",
                        gg_guard_gpu_failed(srv->guard), "memory_info", "rss_mb", pm.rss_mb,
                        "vms_mb", pm.vms_mb, "percent", pm.percent);
  json_object_set_new(j, "device_spec", json_string(idx >= 0 ? st.effective_spec : ""));
  if (have_primary) {
    json_object_set_new(j, "primary", json_string(primary.spec));
    json_object_set_new(j, "primary_effective", json_string(primary.effective_spec));
    if (primary.last_failure_unix_ms)
      json_object_set_new(j, "last_failure",
                          json_pack("{s:I,s:s,s:s}", "unix_ms",
                                    (json_int_t)primary.last_failure_unix_ms, "error",
                                    gg_err_name(primary.last_failure_error), "reason",
                                    primary.last_failure_reason));
  }
  json_t *g = gg_guard_json(srv->guard);
  if (g) {
    json_object_set(j, "switch", json_object_get(g, "switch"));
    json_object_set_new(j, "guard", g);
  }
  return j;
}

/* How long POST /api/device waits for the outcome of a switch before it
 * answers 202: a normal switch (worker start, model loads and warmups) is
 * done by then; a slow or hanging one must not hold an HTTP thread. */
#define SWITCH_WAIT_MS 3000

static int http_status_for(int rc);

static void h_device(gg_server *srv, const gg_http_req *req, gg_http_resp *resp, void *user) {
  gg_http_json(resp, 200, device_state_json(srv));
}

/* POST /api/device {"device": "cpu"}: switch the primary device at run time
 * (drain, unload, trim, load, warm up; rolled back on failure). */
static void h_device_switch(gg_server *srv, const gg_http_req *req, gg_http_resp *resp,
                            void *user) {
  json_error_t e;
  json_t *body = json_loadb(req->body, req->body_len, 0, &e);
  const char *spec = body ? json_string_value(json_object_get(body, "device")) : NULL;
  if (!body || !spec || !*spec || strlen(spec) > 120) {
    gg_http_error(resp, 400, "expected a JSON body like {\"device\": \"cpu\"}%s%s",
                  body ? "" : ": ", body ? "" : e.text);
    json_decref(body);
    return;
  }
  char want[128];
  snprintf(want, sizeof want, "%s", spec);
  json_decref(body);
  int rc = device_spec_check(srv, want);
  if (rc == GG_ENODEV || rc == GG_EINVAL) {
    gg_http_error(resp, 400, "unknown or absent device '%s': %s (see GET /api/device for the list)",
                  want, gg_strerror(rc));
    return;
  }
  /* The new device is prepared in the background while the current one
   * serves; this waits a bounded time for the outcome, then answers 202 and
   * the client polls GET /api/device ("switch"). */
  uint64_t id = 0;
  gg_guard_switch_status sw;
  rc = gg_guard_switch_start(srv->guard, want, &id);
  if (rc == GG_EBUSY) {
    gg_guard_switch_status_get(srv->guard, &sw);
    gg_http_error(resp, 409,
                  "a device switch (to '%s') is already in progress; wait until GET /api/device "
                  "shows it done or failed, then retry",
                  sw.to);
    return;
  }
  if (rc) {
    gg_http_error(resp, http_status_for(rc), "could not start switching to '%s': %s (%s)", want,
                  gg_strerror(rc), gg_err_name(rc));
    return;
  }
  if (gg_guard_switch_wait(srv->guard, id, SWITCH_WAIT_MS, &sw) == GG_ETIMEOUT) {
    gg_http_json(resp, 202, device_state_json(srv));
    return;
  }
  if (sw.id == id && sw.state == GG_SWITCH_FAILED) {
    gg_http_error(resp, 409, "could not switch to '%s': %s (%s); still on the previous device",
                  want, sw.reason, gg_err_name(sw.error));
    return;
  }
  GG_INFO("GPU", "switched primary device to %s in %.1f ms", want, sw.elapsed_ms);
  gg_http_json(resp, 200, device_state_json(srv));
}

static int valid_model_name(const char *m) {
  if (!m || !*m || strlen(m) > 64) return 0;
  for (const char *p = m; *p; p++)
    if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_') return 0;
  return 1;
}

static int http_status_for(int rc) {
  switch (rc) {
  case GG_EPARSE:
  case GG_EINVAL:
  case GG_ERANGE: return 400;
  case GG_ENOTFOUND: return 404;
  case GG_ETOO_LARGE: return 413;
  case GG_EBUSY: return 429;
  default: return 503;
  }
}

static json_t *tensor_json(const gg_gtensor *t, int full) {
  json_t *shape = json_array();
  for (int d = 0; d < t->ndim; d++)
    json_array_append_new(shape, json_integer(t->dims[d]));
  size_t n = gg_gtensor_count(t);
  double mn = INFINITY, mx = -INFINITY, sum = 0;
  for (size_t i = 0; i < n; i++) {
    double v = t->data[i];
    mn = v < mn ? v : mn;
    mx = v > mx ? v : mx;
    sum += v;
  }
  json_t *o = json_pack("{s:o,s:I}", "shape", shape, "elements", (json_int_t)n);
  if (n) {
    json_object_set_new(o, "min", json_real(mn));
    json_object_set_new(o, "max", json_real(mx));
    json_object_set_new(o, "mean", json_real(sum / (double)n));
  }
  size_t take = (full || n <= INFER_INLINE_MAX) ? n : 16;
  json_t *data = json_array();
  for (size_t i = 0; i < take; i++)
    json_array_append_new(data, json_real(t->data[i]));
  json_object_set_new(o, take == n ? "data" : "first", data);
  /* Said in the response itself, so a client never mistakes the first
   * values for the whole output ("elements" is the full count). */
  if (take < n) json_object_set_new(o, "truncated", json_true());
  return o;
}

/* POST /api/infer?model=NAME[&full=1] with a JPEG or PNG body: runs the
 * image through the model on the device chain and returns its outputs. */
static void h_infer(gg_server *srv, const gg_http_req *req, gg_http_resp *resp, void *user) {
  const char *model = gg_http_query(req, "model");
  if (!valid_model_name(model)) {
    gg_http_error(resp, 400,
                  "query parameter 'model' must name a bundled model "
                  "(letters, digits, '-', '_'), e.g. ?model=blazeface");
    return;
  }
  if (req->body_len == 0) {
    gg_http_error(resp, 400, "the request body must be a JPEG or PNG image");
    return;
  }
  const char *full_q = gg_http_query(req, "full");
  int full = full_q && (!strcmp(full_q, "1") || !strcmp(full_q, "true"));
  char path[1024];
  int rc = gg_model_resolve(model, path, sizeof path);
  if (rc) {
    gg_http_error(resp, 404, "no model named '%s' in %s", model, srv->models_dir);
    return;
  }
  gg_preprocess pp;
  gg_gtensor in = {.ndim = 4};
  char err[256] = "";
  if ((rc = gg_model_image_input(path, &pp, in.dims, err, sizeof err))) {
    /* a model without an image input is the caller's choice; one that does
     * not load is ours */
    gg_http_error(resp, rc == GG_EUNSUPPORTED ? 400 : 500, "model '%s' cannot take an image: %s",
                  model, err);
    return;
  }
  uint64_t t0 = gg_now_ns();
  gg_image img = {0};
  rc = gg_image_decode(req->body, req->body_len, srv->cfg.max_pixels, &img, err, sizeof err);
  if (rc) {
    gg_http_error(resp, rc == GG_ETOO_LARGE ? 413 : 400, "cannot use the image: %s", err);
    return;
  }
  in.data = malloc(gg_gtensor_count(&in) * sizeof(float));
  if (!in.data || gg_image_to_tensor(&img, &pp, in.data) != 0) {
    gg_image_free(&img);
    free(in.data);
    gg_http_error(resp, 500, "out of memory while preprocessing");
    return;
  }
  int iw = img.width, ih = img.height;
  gg_image_free(&img);
  double pre_ms = (double)(gg_now_ns() - t0) / 1e6;
  gg_guard_result res;
  memset(&res, 0, sizeof res);
  rc = gg_guard_infer(srv->guard, model, &in, &res);
  free(in.data);
  if (rc) {
    int status = http_status_for(rc);
    gg_http_json(resp, status,
                 json_pack("{s:{s:i,s:s,s:s},s:s,s:i}", "error", "code", status, "message",
                           gg_strerror(rc), "name", gg_err_name(rc), "device", res.device,
                           "attempts", res.attempts));
    gg_guard_result_release(&res);
    return;
  }
  atomic_fetch_add(&srv->generation_count, 1);
  json_t *outs = json_array();
  for (int i = 0; i < res.n_outputs; i++) {
    json_array_append_new(outs, tensor_json(&res.outputs[i], full));
  }
  json_t *j =
      json_pack("{s:s,s:s,s:i,s:b,s:f,s:f,s:I,s:{s:i,s:i},s:o}", "model", model, "device",
                res.device, "attempts", res.attempts, "fell_back", res.fell_back, "preprocess_ms",
                pre_ms, "run_ms", res.elapsed_ms, "planned_peak_bytes",
                (json_int_t)res.planned_peak, "image", "width", iw, "height", ih, "outputs", outs);
  json_t *by_be = json_object(); /* where the serving run's ops ran */
  for (int b = 0; b < res.n_backends; b++)
    json_object_set_new(by_be, res.ops_by_backend[b].name, json_integer(res.ops_by_backend[b].n_ops));
  json_object_set_new(j, "ops_by_backend", by_be);
  gg_guard_result_release(&res);
  gg_http_json(resp, 200, j);
}

void gg__server_register_api(gg_server *srv) {
  gg_server_add_route(srv, "GET", "/healthz", h_healthz, NULL);
  gg_server_add_route(srv, "GET", "/readyz", h_readyz, NULL);
  gg_server_add_route(srv, "GET", "/api/device", h_device, NULL);
  /* Routes that change the server or spend the device declare who may call
   * them (docs/SECURITY.md, "Access"). */
  gg__server_add_route_access(srv, "POST", "/api/device", GG_ACCESS_MUTATING | GG_ACCESS_JSON,
                              h_device_switch, NULL);
  gg__server_add_route_access(srv, "POST", "/api/infer", GG_ACCESS_SPENDING, h_infer, NULL);
}
