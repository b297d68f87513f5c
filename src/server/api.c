/* Built-in API endpoints: health, readiness, device and memory state. */
#include "device/device-impl.h"
#include "gpuguard/core.h"
#include "gpuguard/error.h"
#include "server/server-impl.h"

#include <jansson.h>
#include <stdlib.h>

static void h_healthz(gg_server *srv, const gg_http_req *req, gg_http_resp *resp, void *user) {
  double up = (double)(gg_now_ns() - srv->started_ns) / 1e9;
  gg_http_json(resp, 200, json_pack("{s:s,s:f}", "status", "ok", "uptime_s", up));
}

static void h_readyz(gg_server *srv, const gg_http_req *req, gg_http_resp *resp, void *user) {
  const char *reason = NULL;
  pthread_mutex_lock(&srv->lock);
  int usable = gg_device_usable(srv->device, &reason);
  json_t *j = json_pack("{s:b,s:s,s:b}", "ready", usable, "device", srv->device->name,
                        "device_usable", usable);
  if (!usable) json_object_set_new(j, "reason", json_string(reason ? reason : "unknown"));
  pthread_mutex_unlock(&srv->lock);
  gg_http_json(resp, usable ? 200 : 503, j);
}

static json_t *device_info_json(const gg_device_info *d) {
  return json_pack("{s:s,s:s,s:s,s:s,s:s,s:I,s:I,s:I,s:i}", "name", d->name, "kind",
                   gg_device_kind_name(d->kind), "description", d->description, "vendor",
                   d->vendor, "driver_version", d->driver_version, "total_bytes",
                   (json_int_t)d->total_mem, "free_bytes", (json_int_t)d->free_mem,
                   "max_alloc_bytes", (json_int_t)d->max_alloc, "compute_units",
                   d->compute_units);
}

/* Enumerating drivers is slow (an OpenCL platform loads its whole runtime),
 * so the list is refreshed at most every DEVICE_LIST_TTL_NS. */
#define DEVICE_LIST_TTL_NS (5ull * 1000000000ull)

static json_t *device_list_json(gg_server *srv) {
  pthread_mutex_lock(&srv->devlist_lock);
  uint64_t now = gg_now_ns();
  if (!srv->devlist || now - srv->devlist_ns > DEVICE_LIST_TTL_NS) {
    gg_device_info *list = NULL;
    size_t n = 0;
    if (gg_device_enumerate(&list, &n) == 0) {
      free(srv->devlist);
      srv->devlist = list;
      srv->devlist_n = n;
      srv->devlist_ns = now;
    }
  }
  json_t *devs = json_array();
  for (size_t i = 0; i < srv->devlist_n; i++)
    json_array_append_new(devs, device_info_json(&srv->devlist[i]));
  pthread_mutex_unlock(&srv->devlist_lock);
  return devs;
}

static void h_device(gg_server *srv, const gg_http_req *req, gg_http_resp *resp, void *user) {
  json_t *devs = device_list_json(srv);
  gg_proc_mem pm;
  if (gg_proc_mem_read(&pm) != 0) {
    json_decref(devs);
    gg_http_error(resp, 500, "cannot read /proc/self/status");
    return;
  }
  pthread_mutex_lock(&srv->lock);
  const char *reason = NULL;
  int usable = gg_device_usable(srv->device, &reason);
  json_t *j = json_pack(
      "{s:s,s:o,s:I,s:b,s:{s:f,s:f,s:f},s:{s:b,s:s,s:I}}", "device", srv->device->name,
      "devices", devs, "generation_count", (json_int_t)atomic_load(&srv->generation_count),
      "gpu_failed", srv->gpu_failed, "memory_info", "rss_mb", pm.rss_mb, "vms_mb", pm.vms_mb,
      "percent", pm.percent, "current", "usable", usable, "reason", usable ? "" : reason,
      "raw_bytes_in_use", (json_int_t)gg_device_mem_in_use(srv->device));
  if (srv->last_failure[0])
    json_object_set_new(j, "last_failure", json_string(srv->last_failure));
  pthread_mutex_unlock(&srv->lock);
  gg_http_json(resp, 200, j);
}

void gg__server_register_api(gg_server *srv) {
  gg_server_add_route(srv, "GET", "/healthz", h_healthz, NULL);
  gg_server_add_route(srv, "GET", "/readyz", h_readyz, NULL);
  gg_server_add_route(srv, "GET", "/api/device", h_device, NULL);
}
