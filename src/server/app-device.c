/* GET /api/device (devices, the serving one, breakers, memory, counters)
 * and POST /api/device (switch the primary device at run time). */
#include "gpuguard/core.h"
#include "gpuguard/error.h"
#include "gpuguard/log.h"
#include "gpuguard/render.h"
#include "server/app.h"
#include "server/http-impl.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
static void devlist_refresh_locked(gg_app *app) {
  uint64_t now = gg_now_ns();
  if (app->devlist && now - app->devlist_ns <= DEVICE_LIST_TTL_NS) return;
  gg_device_info *list = NULL;
  size_t n = 0;
  if (gg_guard_enumerate_isolated(NULL, 10000, &list, &n) == 0) {
    free(app->devlist);
    app->devlist = list;
    app->devlist_n = n;
    app->devlist_ns = now;
  }
}

static json_t *device_list_json(gg_app *app) {
  pthread_mutex_lock(&app->devlist_lock);
  devlist_refresh_locked(app);
  json_t *devs = json_array();
  for (size_t i = 0; i < app->devlist_n; i++)
    json_array_append_new(devs, device_info_json(&app->devlist[i]));
  pthread_mutex_unlock(&app->devlist_lock);
  return devs;
}

/* 0 when `spec` names a device this machine has, else GG_ENODEV / GG_EINVAL.
 * cpu and sim specs are opened here (no runtime behind them); cuda:N and
 * opencl:P.D are looked up in the list a child process enumerated, so
 * checking a switch request loads no GPU runtime into the server. */
static int device_spec_check(gg_app *app, const char *spec) {
  if (strncmp(spec, "cuda:", 5) && strncmp(spec, "opencl:", 7)) {
    gg_device *probe = NULL;
    int rc = gg_device_open(spec, &probe);
    gg_device_free(probe);
    return rc;
  }
  pthread_mutex_lock(&app->devlist_lock);
  devlist_refresh_locked(app);
  int found = 0;
  for (size_t i = 0; i < app->devlist_n && !found; i++)
    found = !strcmp(app->devlist[i].name, spec);
  pthread_mutex_unlock(&app->devlist_lock);
  return found ? 0 : GG_ENODEV;
}

static json_t *device_state_json(gg_app *app) {
  json_t *devs = device_list_json(app);
  gg_proc_mem pm;
  if (gg_proc_mem_read(&pm) != 0) memset(&pm, 0, sizeof pm);
  gg_guard_device_status st, primary;
  int idx = gg__app_serving_index(app, &st);
  int have_primary = gg_guard_device_status_get(app->guard, 0, &primary) == 0;
  json_t *j = json_pack("{s:s,s:o,s:I,s:b,s:{s:f,s:f,s:f}}", "device", idx >= 0 ? st.name : "none",
                        "devices", devs, "generation_count",
                        (json_int_t)atomic_load(&app->generation_count), "gpu_failed",
                        gg_guard_gpu_failed(app->guard), "memory_info", "rss_mb", pm.rss_mb,
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
  json_t *g = gg_guard_json(app->guard);
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

static void h_device(gg_server *srv, const gg_http_req *req, gg_http_resp *resp, void *user) {
  gg_http_json(resp, 200, device_state_json(user));
}

/* POST /api/device {"device": "cpu"}: switch the primary device at run time
 * (drain, unload, trim, load, warm up; rolled back on failure). */
static void h_device_switch(gg_server *srv, const gg_http_req *req, gg_http_resp *resp,
                            void *user) {
  gg_app *app = user;
  json_t *body = NULL;
  if (gg_http_read_json(req, resp, 0, (void **)&body)) return;
  const char *spec = json_string_value(json_object_get(body, "device"));
  if (!spec || !*spec || strlen(spec) > 120) {
    gg_http_error_named(resp, 400, "bad_device", "expected a JSON body like {\"device\": \"cpu\"}");
    json_decref(body);
    return;
  }
  char want[128];
  snprintf(want, sizeof want, "%s", spec);
  json_decref(body);
  int rc = device_spec_check(app, want);
  if (rc == GG_ENODEV || rc == GG_EINVAL) {
    gg_http_error_named(resp, 400, gg_err_name(rc),
                        "unknown or absent device '%s': %s (see GET /api/device for the list)",
                        want, gg_strerror(rc));
    return;
  }
  /* The new device is prepared in the background while the current one
   * serves; this waits a bounded time for the outcome, then answers 202 and
   * the client polls GET /api/device ("switch"). */
  uint64_t id = 0;
  gg_guard_switch_status sw;
  rc = gg_guard_switch_start(app->guard, want, &id);
  if (rc == GG_EBUSY) {
    gg_guard_switch_status_get(app->guard, &sw);
    gg_http_error_named(resp, 409, gg_err_name(rc),
                        "a device switch (to '%s') is already in progress; wait until GET "
                        "/api/device shows it done or failed, then retry",
                        sw.to);
    return;
  }
  if (rc) {
    gg_http_error_rc(resp, rc, "could not start switching to '%s': %s (%s)", want, gg_strerror(rc),
                     gg_err_name(rc));
    return;
  }
  if (gg_guard_switch_wait(app->guard, id, SWITCH_WAIT_MS, &sw) == GG_ETIMEOUT) {
    gg_http_json(resp, 202, device_state_json(app));
    return;
  }
  if (sw.id == id && sw.state == GG_SWITCH_FAILED) {
    gg_http_error_named(resp, 409, gg_err_name(sw.error),
                        "could not switch to '%s': %s (%s); still on the previous device", want,
                        sw.reason, gg_err_name(sw.error));
    return;
  }
  GG_INFO("GPU", "switched primary device to %s in %.1f ms", want, sw.elapsed_ms);
  gg_http_json(resp, 200, device_state_json(app));
}

void gg__app_register_device(gg_app *app) {
  gg_server_add_route(app->srv, "GET", "/api/device", h_device, app);
  /* Routes that change the server declare who may call them
   * (docs/SECURITY.md, "Access"). */
  gg__server_add_route_access(app->srv, "POST", "/api/device", GG_ACCESS_MUTATING | GG_ACCESS_JSON,
                              h_device_switch, app);
}
