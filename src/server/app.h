/* The application on the HTTP core: the guard that runs every inference,
 * the model catalog, the device list, and the routes that expose them. */
#ifndef GG_SERVER_APP_H
#define GG_SERVER_APP_H

#include "gpuguard/device.h"
#include "gpuguard/gallery.h"
#include "gpuguard/guard.h"
#include "gpuguard/pipeline.h"
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
  int strict;          /* --strict: face routes answer 503 rather than use a fallback */

  gg_guard *guard;                   /* runs every inference request */
  _Atomic uint64_t generation_count; /* completed inference requests */
  _Atomic int models_ready;          /* 1 once the configured models are loaded */
  char models_error[256];            /* why preloading failed, "" if it did not */

  /* The face service: the recognition pipeline runs every model through
   * the guard; the gallery is opened on first use (gg__app_gallery). */
  gg_pipeline *pipeline;
  char data_dir_flag[512];      /* --data-dir as given ("" = default) */
  pthread_mutex_t gallery_lock; /* guards opening the gallery */
  gg_gallery *gallery;          /* NULL until first use */
  struct gg_tracker *tracker;   /* face tracks of ?stream= recognitions */
  int cluster_unknowns;         /* --cluster-unknowns */

  /* Events out of the service: MQTT and the like (app-events.c); the
   * memory history the dashboard plots (app-pages.c). NULL when off. */
  struct gg_app_events *events;
  struct gg_app_history *history;
  struct gg_app_generate *generate; /* the generation queue (app-generate.c) */

  pthread_mutex_t devlist_lock; /* guards the cached device list */
  gg_device_info *devlist;
  size_t devlist_n;
  uint64_t devlist_ns;
} gg_app;

/* Route registration, each with the app as the routes' user context. */
void gg__app_register_device(gg_app *app); /* GET/POST /api/device (app-device.c) */
void gg__app_register_infer(gg_app *app);  /* POST /api/infer (app-infer.c) */
void gg__app_register_static(gg_app *app); /* /, /web/..., /metrics (app-static.c) */
/* The face service's native routes (app-faces.c) and the CompreFace-
 * compatible ones (app-compreface.c). */
void gg__app_register_faces(gg_app *app);
void gg__app_register_compreface(gg_app *app);

/* Serves web_dir/<rel> (app-static.c): only regular files beneath
 * web_dir, reached without "..", odd characters or symbolic links. */
void gg__app_serve_file(gg_app *app, const char *rel, gg_http_resp *resp);

/* The web pages (/webcam, /identities, /dashboard) and the memory history
 * they plot (app-pages.c). stop ends what start began; both idempotent. */
void gg__app_register_pages(gg_app *app);
void gg__app_pages_stop(gg_app *app);

/* The generation API (/api/generate, /api/progress/:id, ...) and its
 * worker thread (app-generate.c); register reads the --gen-* limits from
 * cfg and loads the history from <data-dir>/generations. stop cancels and
 * joins the worker and frees every generation; idempotent. */
void gg__app_register_generate(gg_app *app, const gg_server_config *cfg);
void gg__app_generate_stop(gg_app *app);

/* A recognition as the outside world sees it: one face of one frame. */
typedef struct gg_app_event {
  int64_t event_id;    /* the gallery event's id; 0 when not logged */
  int64_t time_ms;     /* Unix time in milliseconds */
  const char *stream;  /* "" when the frame carried no stream id */
  int64_t identity_id; /* 0 = unknown face */
  const char *name;    /* the identity's name, "unknown" when unknown */
  float score;         /* match score, 0 when nothing matched */
  const char *device;  /* the device that served it */
  float box[4];        /* face box x, y, w, h in frame pixels */
  int64_t track_id;    /* the stream track it belongs to; 0 = none */
  int anonymous;       /* 1: identity_id is an anonymous identity ("unknown-7",
                        * --cluster-unknowns): not a known person */
} gg_app_event;

/* Starts the event publishers cfg asks for (MQTT when cfg->mqtt_url is
 * set). An unreachable broker is not an error: the publisher reconnects in
 * the background. Returns 0, or GG_EINVAL for a malformed setting (the
 * reason logged). stop flushes and disconnects; idempotent. */
int gg__app_events_start(gg_app *app, const gg_server_config *cfg);
void gg__app_events_stop(gg_app *app);
/* Publishes one recognition; never blocks on the network. */
void gg__app_event(gg_app *app, const gg_app_event *ev);

/* The gallery, opened (and its folder created) on the first call; later
 * calls return the same handle. Returns 0, or the error of
 * gg_gallery_data_dir / gg_gallery_open with its reason in err. */
int gg__app_gallery(gg_app *app, gg_gallery **out, char *err, size_t errlen);

/* The face as the gallery stores it (app-faces.c): the detector box
 * enlarged 1.5 times, eyes level, 160x160, JPEG; *jpeg malloc'd, NULL when
 * it could not be made (an example without a crop is still an example). */
void gg__app_face_crop_jpeg(const gg_image *img, const gg_face_result *f, void **jpeg,
                            size_t *len);

/* Index of the device that would serve a request now: the first in the
 * chain whose breaker is not open (its status in *st); -1 when none. */
int gg__app_serving_index(gg_app *app, gg_guard_device_status *st);

#endif
