/* The application on the HTTP core: the guard that runs every inference,
 * the model catalog, the device list, and the routes that expose them. */
#ifndef GG_SERVER_APP_H
#define GG_SERVER_APP_H

#include "gpuguard/device.h"
#include "gpuguard/guard.h"
#include "gpuguard/server.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

typedef struct gg_app {
  gg_server *srv; /* the HTTP core it is registered on (borrowed; it owns the app) */
  char device_spec[128];
  char models_dir[512];
  char web_dir[512];
  char fallback[256];
  char models[512];
  char faults[256];
  uint64_t max_pixels; /* images larger than this get 413 */

  gg_guard *guard;                   /* runs every inference request */
  _Atomic uint64_t generation_count; /* completed inference requests */
  _Atomic int models_ready;          /* 1 once the configured models are loaded */
  char models_error[256];            /* why preloading failed, "" if it did not */

  pthread_mutex_t devlist_lock; /* guards the cached device list */
  gg_device_info *devlist;
  size_t devlist_n;
  uint64_t devlist_ns;
} gg_app;

/* Route registration, each with the app as the routes' user context. */
void gg__app_register_device(gg_app *app); /* GET/POST /api/device (app-device.c) */
void gg__app_register_infer(gg_app *app);  /* POST /api/infer (app-infer.c) */
void gg__app_register_static(gg_app *app); /* /, /web/..., /metrics (app-static.c) */

/* Index of the device that would serve a request now: the first in the
 * chain whose breaker is not open (its status in *st); -1 when none. */
int gg__app_serving_index(gg_app *app, gg_guard_device_status *st);

#endif
