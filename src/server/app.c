/* The application on the HTTP core: builds the guard from the service
 * configuration, preloads the models, registers the routes (each with the
 * app as its user context) and answers /healthz and /readyz. */
#include "server/app.h"
#include "gpuguard/core.h"
#include "gpuguard/error.h"
#include "gpuguard/log.h"
#include "gpuguard/render.h"
#include "gpuguard/track.h"
#include "server/http-impl.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void h_healthz(gg_server *srv, const gg_http_req *req, gg_http_resp *resp, void *user) {
  double up = (double)(gg_now_ns() - srv->started_ns) / 1e9;
  gg_http_json(resp, 200, json_pack("{s:s,s:f}", "status", "ok", "uptime_s", up));
}

int gg__app_serving_index(gg_app *app, gg_guard_device_status *st) {
  int n = gg_guard_device_count(app->guard);
  for (int i = 0; i < n; i++) {
    if (gg_guard_device_status_get(app->guard, i, st) == 0 && st->breaker != GG_BREAKER_OPEN)
      return i;
  }
  return -1;
}

static void h_readyz(gg_server *srv, const gg_http_req *req, gg_http_resp *resp, void *user) {
  gg_app *app = user;
  gg_guard_device_status st;
  int idx = gg__app_serving_index(app, &st);
  int models = atomic_load(&app->models_ready);
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
  if (gg_guard_switch_status_get(app->guard, &sw) == 0 && sw.state == GG_SWITCH_PREPARING)
    json_object_set_new(j, "switch", gg_guard_switch_json(&sw));
  if (!ready) {
    const char *why = !models ? (app->models_error[0] ? app->models_error : "models loading")
                              : "no usable device: every breaker is open";
    json_object_set_new(j, "reason", json_string(why));
  }
  gg_http_json(resp, ready ? 200 : 503, j);
}

/* Loads each model of the comma list through the guard (load + warmup). */
static void preload_models(gg_app *app) {
  char list[sizeof app->models];
  snprintf(list, sizeof list, "%s", app->models);
  char *save = NULL;
  for (char *m = strtok_r(list, ",", &save); m; m = strtok_r(NULL, ",", &save)) {
    while (*m == ' ')
      m++;
    if (!*m) continue;
    uint64_t t0 = gg_now_ns();
    int rc = gg_guard_load(app->guard, m);
    if (rc) {
      snprintf(app->models_error, sizeof app->models_error, "model '%s' failed to load: %s (%s)", m,
               gg_strerror(rc), gg_err_name(rc));
      GG_ERROR("ENG", "%s", app->models_error);
      return;
    }
    GG_INFO("ENG", "model %s loaded and warmed up in %.1f ms", m, (double)(gg_now_ns() - t0) / 1e6);
  }
  atomic_store(&app->models_ready, 1);
}

static void app_free(void *p) {
  gg_app *app = p;
  if (!app) return;
  gg__app_events_stop(app);
  gg__app_generate_stop(app);
  gg__app_pages_stop(app);
  gg_pipeline_free(app->pipeline);
  gg_tracker_free(app->tracker);
  gg_gallery_close(app->gallery);
  pthread_mutex_destroy(&app->gallery_lock);
  gg_guard_free(app->guard);
  free(app->devlist);
  pthread_mutex_destroy(&app->devlist_lock);
  free(app);
}

/* Builds the app from cfg: its settings, then the guard on the device chain
 * (the primary, with sim faults folded into its spec, then each fallback). */
static int app_new(const gg_server_config *cfg, gg_app **out) {
  gg_app *app = calloc(1, sizeof *app);
  if (!app) return GG_ENOMEM;
  snprintf(app->device_spec, sizeof app->device_spec, "%s",
           cfg->device && *cfg->device ? cfg->device : "cpu");
  snprintf(app->models_dir, sizeof app->models_dir, "%s", cfg->models_dir ? cfg->models_dir : "");
  snprintf(app->web_dir, sizeof app->web_dir, "%s", cfg->web_dir ? cfg->web_dir : "");
  snprintf(app->fallback, sizeof app->fallback, "%s", cfg->fallback ? cfg->fallback : "");
  snprintf(app->models, sizeof app->models, "%s", cfg->models ? cfg->models : "");
  snprintf(app->faults, sizeof app->faults, "%s", cfg->faults ? cfg->faults : "");
  app->max_pixels = cfg->max_pixels;
  app->strict = cfg->strict;
  app->cluster_unknowns = cfg->cluster_unknowns;
  snprintf(app->data_dir_flag, sizeof app->data_dir_flag, "%s", cfg->data_dir ? cfg->data_dir : "");
  pthread_mutex_init(&app->devlist_lock, NULL);
  pthread_mutex_init(&app->gallery_lock, NULL);
  if (app->models_dir[0]) setenv("GPUGUARD_MODELS_DIR", app->models_dir, 0);

  gg_guard_config gc;
  gg_guard_config_init(&gc);
  char store[1024];
  if (gg_guard_config_chain(&gc, app->device_spec, app->faults, app->fallback, store,
                            sizeof store)) {
    GG_ERROR("GPU", "device chain '%s' + '%s' is too long", app->device_spec, app->fallback);
    app_free(app);
    return GG_EINVAL;
  }
  char runner_arg[32];
  snprintf(runner_arg, sizeof runner_arg, "threads=%d",
           cfg->engine_threads > 0 ? cfg->engine_threads : 1);
  gc.runner = "engine";
  gc.runner_arg = runner_arg;
  if (cfg->retries >= 0) gc.retries = cfg->retries;
  if (cfg->cleanup_every > 0) gc.cleanup_every = cfg->cleanup_every;
  if (cfg->watchdog_ms > 0) gc.watchdog_ms = cfg->watchdog_ms;
  gc.isolate = cfg->isolate;
  gc.mem_budget = cfg->mem_limit;
  int rc = gg_guard_new(&gc, &app->guard);
  if (rc) {
    GG_ERROR("GPU", "cannot set up device '%s': %s (%s); try --device cpu", gc.devices[0],
             gg_strerror(rc), gg_err_name(rc));
    app_free(app);
    return rc;
  }
  gg_pipeline_runner runner = gg_pipeline_runner_guard(app->guard);
  gg_pipeline_opts po;
  gg_pipeline_opts_default(&po);
  po.rate_per_s = cfg->stream_rate > 0 ? (float)cfg->stream_rate : 0;
  char perr[256];
  if ((rc = gg_pipeline_new(&runner, &po, &app->pipeline, perr, sizeof perr))) {
    GG_ERROR("HTTP", "cannot set up the recognition pipeline: %s", perr);
    app_free(app);
    return rc;
  }
  if ((rc = gg_tracker_new(NULL, &app->tracker))) {
    app_free(app);
    return rc;
  }
  *out = app;
  return 0;
}

int gg__app_gallery(gg_app *app, gg_gallery **out, char *err, size_t errlen) {
  int rc = 0;
  pthread_mutex_lock(&app->gallery_lock);
  if (!app->gallery) {
    char dir[1024];
    rc = gg_gallery_data_dir(app->data_dir_flag, dir, sizeof dir, err, errlen);
    if (!rc) rc = gg_gallery_open(dir, NULL, &app->gallery, err, errlen);
    if (!rc) GG_INFO("HTTP", "face gallery opened in %s", dir);
  }
  *out = app->gallery;
  pthread_mutex_unlock(&app->gallery_lock);
  return rc;
}

int gg_server_new(const gg_server_config *cfg, gg_server **out) {
  gg_server *srv = NULL;
  int rc = gg__http_new(cfg, &srv);
  if (rc) return rc;
  gg_app *app = NULL;
  if ((rc = app_new(cfg, &app))) {
    gg_server_free(srv);
    return rc;
  }
  app->srv = srv;
  srv->app = app;
  srv->app_free = app_free;
  snprintf(srv->label, sizeof srv->label, "device %s", app->device_spec);
  preload_models(app);
  gg_server_add_route(srv, "GET", "/healthz", h_healthz, app);
  gg_server_add_route(srv, "GET", "/readyz", h_readyz, app);
  gg__app_register_device(app);
  gg__app_register_infer(app);
  gg__app_register_static(app);
  gg__app_register_faces(app);
  gg__app_register_compreface(app);
  gg__app_register_pages(app);
  gg__app_register_generate(app, cfg);
  if ((rc = gg__app_events_start(app, cfg))) {
    gg_server_free(srv);
    return rc;
  }

  *out = srv;
  return 0;
}
