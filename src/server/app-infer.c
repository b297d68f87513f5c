/* POST /api/infer: an image through a catalog model on the device chain. */
#include "gpuguard/catalog.h"
#include "gpuguard/core.h"
#include "gpuguard/engine.h"
#include "gpuguard/error.h"
#include "gpuguard/image.h"
#include "gpuguard/log.h"
#include "server/app.h"
#include "server/http-impl.h"

#include <ctype.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Outputs up to this many elements are returned whole; larger ones as a
 * summary unless the caller asks for ?full=1. */
#define INFER_INLINE_MAX 4096

static int valid_model_name(const char *m) {
  if (!m || !*m || strlen(m) > 64) return 0;
  for (const char *p = m; *p; p++)
    if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_') return 0;
  return 1;
}

/* "blazeface, mobilefacenet, ..." for messages. */
static const char *catalog_names(char *buf, size_t len) {
  size_t used = 0;
  buf[0] = 0;
  for (size_t i = 0; i < gg_catalog_count() && used < len; i++)
    used += (size_t)snprintf(buf + used, len - used, "%s%s", i ? ", " : "", gg_catalog_at(i)->name);
  return buf;
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
  gg_app *app = user;
  const char *model = gg_http_query(req, "model");
  if (!valid_model_name(model)) {
    gg_http_error(resp, 400,
                  "query parameter 'model' must name a bundled model "
                  "(letters, digits, '-', '_'), e.g. ?model=blazeface");
    return;
  }
  if (req->body_len == 0) {
    gg_http_error_named(resp, 400, "empty_body", "the request body must be a JPEG or PNG image");
    return;
  }
  const char *full_q = gg_http_query(req, "full");
  int full = full_q && (!strcmp(full_q, "1") || !strcmp(full_q, "true"));
  /* The catalog knows each model's input: nothing is loaded to learn it. */
  const gg_model_entry *e = gg_catalog_find(model);
  if (!e) {
    char names[256];
    gg_http_error_named(resp, 404, "unknown_model", "no model named '%s'; this server runs %s",
                        model, catalog_names(names, sizeof names));
    return;
  }
  /* Where the guard's runner will look: $GPUGUARD_MODELS_DIR (--models-dir),
   * then the cache. */
  char path[1024];
  if (gg_catalog_path(e, NULL, path, sizeof path)) {
    gg_http_error_named(resp, 404, "model_not_installed",
                        "model '%s' is not installed (looked for %s); run scripts/fetch-models.sh",
                        model, path);
    return;
  }
  gg_preprocess pp = e->pp;
  gg_gtensor in = {.ndim = 4};
  memcpy(in.dims, e->input_shape, sizeof e->input_shape);
  char err[256] = "";
  uint64_t t0 = gg_now_ns();
  gg_image img = {0};
  int rc = gg_image_decode(req->body, req->body_len, app->max_pixels, &img, err, sizeof err);
  if (rc) {
    gg_http_error_named(resp, rc == GG_ETOO_LARGE ? 413 : 400, gg_err_name(rc),
                        "cannot use the image: %s", err);
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
  rc = gg_guard_infer(app->guard, model, &in, &res);
  free(in.data);
  if (rc) {
    int status = gg_http_status_for(rc);
    json_t *j = gg_http_error_json(status, gg_err_name(rc), gg_strerror(rc));
    if (j) {
      json_object_set_new(j, "device", json_string(res.device));
      json_object_set_new(j, "attempts", json_integer(res.attempts));
    }
    gg_http_json(resp, status, j);
    gg_guard_result_release(&res);
    return;
  }
  atomic_fetch_add(&app->generation_count, 1);
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
    json_object_set_new(by_be, res.ops_by_backend[b].name,
                        json_integer(res.ops_by_backend[b].n_ops));
  json_object_set_new(j, "ops_by_backend", by_be);
  gg_guard_result_release(&res);
  gg_http_json(resp, 200, j);
}

void gg__app_register_infer(gg_app *app) {
  /* Spends the device: the API key when one is set (docs/SECURITY.md). */
  gg__server_add_route_access(app->srv, "POST", "/api/infer", GG_ACCESS_SPENDING, h_infer, app);
}
