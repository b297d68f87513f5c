/* CompreFace-compatible routes: recognition (subjects and their example
 * faces, recognize), detection and verification under /api/v1, with
 * CompreFace's paths, parameters, x-api-key header and response shapes, so
 * its SDKs and integrations (Double Take) work unchanged. They run on the
 * app's pipeline and gallery; docs/compreface.md says what differs. */
#include "gpuguard/core.h"
#include "gpuguard/error.h"
#include "gpuguard/image.h"
#include "gpuguard/log.h"
#include "server/app.h"
#include "server/http-impl.h"
#include "server/multipart.h"

#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* CompreFace's code for "No face is found in the given image". */
#define CF_CODE_NO_FACE 28
/* Largest uploaded image part or base64 field, decoded. */
#define CF_IMAGE_MAX ((size_t)16 << 20)
/* Identities and examples listed per gallery call. */
#define CF_PAGE 1000

/* ---- errors: {"message": "...", "code": N} ------------------------------ */

static void cf_error(gg_http_resp *resp, int status, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void cf_error(gg_http_resp *resp, int status, int code, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  gg_http_json(resp, status, json_pack("{s:s,s:i}", "message", msg, "code", code));
}

/* A failed library call: the HTTP status gg_http_status_for gives, and
 * code = the positive gg_err number (gpuguard's own codes, see
 * docs/compreface.md). */
static void cf_error_rc(gg_http_resp *resp, int rc, const char *what, const char *err) {
  cf_error(resp, gg_http_status_for(rc), rc < 0 ? -rc : rc, "%s: %s (%s)", what,
           err && *err ? err : gg_strerror(rc), gg_err_name(rc));
}

/* ---- query parameters ---------------------------------------------------- */

/* An integer query parameter in [lo, hi]; def when absent. -1 and a 400
 * when malformed. */
static int q_int(const gg_http_req *req, gg_http_resp *resp, const char *key, long def, long lo,
                 long hi, long *out) {
  const char *v = gg_http_query(req, key);
  *out = def;
  if (!v || !*v) return 0;
  char *end = NULL;
  long x = strtol(v, &end, 10);
  if (*end || x < lo || x > hi) {
    cf_error(resp, 400, 400,
             "query parameter '%s' must be an integer from %ld to %ld (got '%.32s')", key, lo, hi,
             v);
    return -1;
  }
  *out = x;
  return 0;
}

static int q_float(const gg_http_req *req, gg_http_resp *resp, const char *key, double def,
                   double *out) {
  const char *v = gg_http_query(req, key);
  *out = def;
  if (!v || !*v) return 0;
  char *end = NULL;
  double x = strtod(v, &end);
  if (*end || !(x >= 0 && x <= 1)) {
    cf_error(resp, 400, 400, "query parameter '%s' must be a number from 0 to 1 (got '%.32s')", key,
             v);
    return -1;
  }
  *out = x;
  return 0;
}

static int q_bool(const gg_http_req *req, const char *key) {
  const char *v = gg_http_query(req, key);
  return v && (!strcmp(v, "true") || !strcmp(v, "1"));
}

/* 1 when the comma list face_plugins names plugin. */
static int has_plugin(const char *list, const char *plugin) {
  size_t n = strlen(plugin);
  for (const char *p = list; p && *p;) {
    p += strspn(p, " ,");
    size_t k = strcspn(p, ",");
    while (k && p[k - 1] == ' ')
      k--;
    if (k == n && !strncmp(p, plugin, n)) return 1;
    p += strcspn(p, ",");
  }
  return 0;
}

/* ---- the uploaded image -------------------------------------------------- */

/* Decodes the image the request carries under field: the multipart part
 * `field`, or the JSON body's base64 string `field`. 0, or -1 with the
 * error response written. */
static int read_image(gg_app *app, const gg_http_req *req, gg_http_resp *resp, const char *field,
                      gg_image *img) {
  const char *ct = gg_http_header(req, "Content-Type");
  char err[256] = "";
  const void *data = NULL;
  size_t len = 0;
  unsigned char *owned = NULL;
  int rc;
  if (gg__multipart_is_form(ct)) {
    rc = gg__multipart_find(req->body, req->body_len, ct, field, CF_IMAGE_MAX, &data, &len, err,
                            sizeof err);
  } else if (gg__http_is_json_type(ct)) {
    json_error_t je;
    json_t *j = json_loadb(req->body, req->body_len, 0, &je);
    json_t *f = json_is_object(j) ? json_object_get(j, field) : NULL;
    if (!j)
      rc = gg_errf(err, sizeof err, GG_EPARSE, "the JSON body is malformed: %s (line %d)", je.text,
                   je.line);
    else if (!json_is_string(f))
      rc = gg_errf(err, sizeof err, GG_EPARSE,
                   "the JSON body needs \"%s\": a base64-encoded JPEG or PNG", field);
    else
      rc = gg_base64_decode(json_string_value(f), CF_IMAGE_MAX, &owned, &len, err, sizeof err);
    data = owned;
    json_decref(j);
  } else {
    rc = gg_errf(err, sizeof err, GG_EPARSE,
                 "send the image as multipart/form-data (curl -F %s=@photo.jpg) or as JSON "
                 "{\"%s\": \"<base64>\"} (got Content-Type %.60s)",
                 field, field, ct ? ct : "none");
  }
  if (!rc && len == 0)
    rc = gg_errf(err, sizeof err, GG_EPARSE, "the image in '%s' is empty", field);
  if (!rc) rc = gg_image_decode(data, len, app->max_pixels, img, err, sizeof err);
  free(owned);
  if (rc) {
    cf_error(resp,
             rc == GG_ETOO_LARGE ? 413
             : rc == GG_ENOMEM   ? 503
                                 : 400,
             -rc, "cannot use the image: %s", err);
    return -1;
  }
  return 0;
}

/* ---- faces ---------------------------------------------------------------- */

typedef struct cf_opts {
  double det_prob; /* det_prob_threshold */
  long limit;      /* faces answered, 0 = all */
  long prediction_count;
  const char *plugins;
  int status;
} cf_opts;

static int read_opts(const gg_http_req *req, gg_http_resp *resp, cf_opts *o) {
  memset(o, 0, sizeof *o);
  if (q_float(req, resp, "det_prob_threshold", 0.0, &o->det_prob) ||
      q_int(req, resp, "limit", 0, 0, GG_PIPELINE_MAX_FACES, &o->limit) ||
      q_int(req, resp, "prediction_count", 1, 1, 2, &o->prediction_count))
    return -1;
  o->plugins = gg_http_query(req, "face_plugins");
  o->status = q_bool(req, "status");
  return 0;
}

/* Runs the pipeline on the request's image `field`. On success *res holds
 * the faces (free with gg_pipeline_result_release and free) and
 * order[0..*n) the faces that passed det_prob (and, for embed, were
 * embedded), largest first. -1 with the response written otherwise,
 * including "no face". keep (may be NULL) receives the decoded image on
 * success (the caller frees it). */
static int run_faces(gg_app *app, const gg_http_req *req, gg_http_resp *resp, const char *field,
                     const cf_opts *o, int embed, gg_pipeline_result **res, int *order, int *n,
                     gg_image *keep) {
  gg_image img = {0};
  if (read_image(app, req, resp, field, &img)) return -1;
  gg_pipeline_request rq;
  gg_pipeline_request_default(&rq);
  rq.embed = embed;
  rq.attributes =
      o && o->plugins && (has_plugin(o->plugins, "age") || has_plugin(o->plugins, "gender"));
  gg_pipeline_result *r = calloc(1, sizeof *r);
  if (!r) {
    gg_image_free(&img);
    cf_error(resp, 503, -GG_ENOMEM, "out of memory");
    return -1;
  }
  char err[256] = "";
  int rc = gg_pipeline_run(app->pipeline, &img, &rq, r, err, sizeof err);
  if (keep && !rc)
    *keep = img;
  else
    gg_image_free(&img);
  if (rc) {
    cf_error_rc(resp, rc, "the recognition pipeline failed", err);
    gg_pipeline_result_release(r);
    free(r);
    return -1;
  }
  *n = 0;
  for (int i = 0; i < r->n_faces; i++) {
    const gg_face_result *f = &r->faces[i];
    if (o && f->score < o->det_prob) continue;
    if (embed && (f->dim <= 0 || !f->embedding)) continue;
    /* insertion by area, largest first */
    float a = (f->x1 - f->x0) * (f->y1 - f->y0);
    int k = (*n)++;
    while (k > 0) {
      const gg_face_result *g = &r->faces[order[k - 1]];
      if ((g->x1 - g->x0) * (g->y1 - g->y0) >= a) break;
      order[k] = order[k - 1];
      k--;
    }
    order[k] = i;
  }
  if (o && o->limit > 0 && *n > o->limit) *n = (int)o->limit;
  if (*n == 0) {
    cf_error(resp, 400, CF_CODE_NO_FACE, "No face is found in the given image");
    gg_pipeline_result_release(r);
    free(r);
    if (keep) gg_image_free(keep);
    return -1;
  }
  *res = r;
  return 0;
}

static json_t *box_json(const gg_face_result *f) {
  return json_pack("{s:f,s:i,s:i,s:i,s:i}", "probability", (double)f->score, "x_max",
                   (int)lroundf(f->x1), "y_max", (int)lroundf(f->y1), "x_min", (int)lroundf(f->x0),
                   "y_min", (int)lroundf(f->y0));
}

/* The face's box and the plugin fields asked for (age, gender, landmarks). */
static json_t *face_json(const gg_face_result *f, const cf_opts *o) {
  json_t *j = json_pack("{s:o}", "box", box_json(f));
  if (!o || !o->plugins) return j;
  if (has_plugin(o->plugins, "age") && f->has_attributes) {
    int age = (int)lroundf(f->age);
    json_object_set_new(j, "age",
                        json_pack("{s:f,s:i,s:i}", "probability", 1.0, "high", age + 5, "low",
                                  age > 5 ? age - 5 : 0));
  }
  if (has_plugin(o->plugins, "gender") && f->has_attributes) {
    int male = f->male >= 0.5f;
    json_object_set_new(j, "gender",
                        json_pack("{s:f,s:s}", "probability",
                                  (double)(male ? f->male : 1 - f->male), "value",
                                  male ? "male" : "female"));
  }
  if (has_plugin(o->plugins, "landmarks")) {
    json_t *lm = json_array();
    for (int k = 0; k < 6; k++)
      json_array_append_new(
          lm, json_pack("[i,i]", (int)lroundf(f->kp[k][0]), (int)lroundf(f->kp[k][1])));
    json_object_set_new(j, "landmarks", lm);
  }
  return j;
}

static void add_status(json_t *j, const cf_opts *o, const gg_pipeline_result *r) {
  if (!o->status) return;
  json_object_set_new(j, "plugins_versions",
                      json_pack("{s:s,s:s,s:s}", "detector", "blazeface", "calculator", "faceres",
                                "device", r->device));
}

static float clamp01(float x) {
  return x < 0 ? 0 : x > 1 ? 1 : x;
}

/* ---- the gallery ---------------------------------------------------------- */

static gg_gallery *gallery(gg_app *app, gg_http_resp *resp) {
  gg_gallery *g = NULL;
  char err[256] = "";
  int rc = gg__app_gallery(app, &g, err, sizeof err);
  if (rc) {
    cf_error_rc(resp, rc, "the face gallery cannot be opened", err);
    return NULL;
  }
  return g;
}

/* The identity named `name`: 0, or -1 with 404 (or the error) written. */
static int find_subject(gg_gallery *g, gg_http_resp *resp, const char *name,
                        gg_gallery_identity *id) {
  char err[256] = "";
  int rc = gg_gallery_identity_find(g, name, id, err, sizeof err);
  if (rc == GG_ENOTFOUND) {
    cf_error(resp, 404, 404, "Subject '%.64s' not found", name);
    return -1;
  }
  if (rc) {
    cf_error_rc(resp, rc, "cannot look up the subject", err);
    return -1;
  }
  return 0;
}

/* Calls fn for every identity (all pages). Stops at fn's nonzero result. */
typedef int (*each_identity_fn)(gg_gallery *g, const gg_gallery_identity *id, void *ud);
static int each_identity(gg_gallery *g, each_identity_fn fn, void *ud, char *err, size_t errlen) {
  gg_gallery_identity *buf = malloc(CF_PAGE * sizeof *buf);
  if (!buf) return GG_ENOMEM;
  gg_gallery_page page = {.limit = CF_PAGE};
  int rc = 0;
  for (;;) {
    int n = 0;
    int64_t next = 0;
    if ((rc = gg_gallery_identity_list(g, &page, buf, CF_PAGE, &n, &next, NULL, err, errlen)))
      break;
    for (int i = 0; i < n && !rc; i++)
      rc = fn(g, &buf[i], ud);
    if (rc || !next) break;
    page.cursor = next;
  }
  free(buf);
  return rc > 0 ? 0 : rc;
}

/* Calls fn for every embedding of identity id. */
typedef int (*each_emb_fn)(const gg_gallery_embedding *e, void *ud);
static int each_embedding(gg_gallery *g, int64_t id, each_emb_fn fn, void *ud, char *err,
                          size_t errlen) {
  gg_gallery_embedding *buf = malloc(CF_PAGE * sizeof *buf);
  if (!buf) return GG_ENOMEM;
  gg_gallery_page page = {.limit = CF_PAGE};
  int rc = 0;
  for (;;) {
    int n = 0;
    int64_t next = 0;
    if ((rc = gg_gallery_embedding_list(g, id, &page, buf, CF_PAGE, &n, &next, NULL, err, errlen)))
      break;
    for (int i = 0; i < n && !rc; i++)
      rc = fn(&buf[i], ud);
    if (rc || !next) break;
    page.cursor = next;
  }
  free(buf);
  return rc;
}

/* ---- subjects ------------------------------------------------------------- */

/* The subject name of a JSON body {"subject": "..."}: NULL with 400 written
 * when absent. *j is the body (json_decref it). */
static const char *body_subject(const gg_http_req *req, gg_http_resp *resp, json_t **j) {
  json_error_t je;
  *j = json_loadb(req->body, req->body_len, 0, &je);
  json_t *s = json_is_object(*j) ? json_object_get(*j, "subject") : NULL;
  if (!json_is_string(s)) {
    cf_error(resp, 400, 400, "the body must be JSON {\"subject\": \"name\"}");
    return NULL;
  }
  return json_string_value(s);
}

static void h_subject_add(gg_server *srv, const gg_http_req *req, gg_http_resp *resp, void *user) {
  gg_app *app = user;
  json_t *j = NULL;
  const char *name = body_subject(req, resp, &j);
  gg_gallery *g = name ? gallery(app, resp) : NULL;
  if (g) {
    char err[256] = "";
    int64_t id = 0;
    int rc = gg_gallery_identity_create(g, name, &id, err, sizeof err);
    if (rc == GG_ESTATE)
      cf_error(resp, 400, 400, "Subject '%.64s' already exists", name);
    else if (rc)
      cf_error_rc(resp, rc, "cannot add the subject", err);
    else
      gg_http_json(resp, 201, json_pack("{s:s}", "subject", name));
  }
  json_decref(j);
}

static int add_name(gg_gallery *g, const gg_gallery_identity *id, void *ud) {
  (void)g;
  return json_array_append_new(ud, json_string(id->name)) ? GG_ENOMEM : 0;
}

static void h_subject_list(gg_server *srv, const gg_http_req *req, gg_http_resp *resp, void *user) {
  gg_gallery *g = gallery(user, resp);
  if (!g) return;
  json_t *arr = json_array();
  char err[256] = "";
  int rc = each_identity(g, add_name, arr, err, sizeof err);
  if (rc) {
    json_decref(arr);
    cf_error_rc(resp, rc, "cannot list the subjects", err);
    return;
  }
  gg_http_json(resp, 200, json_pack("{s:o}", "subjects", arr));
}

/* PUT /api/v1/recognition/subjects/:subject {"subject": new}: renames, and
 * merges onto new when that subject exists (as CompreFace does). */
static void h_subject_rename(gg_server *srv, const gg_http_req *req, gg_http_resp *resp,
                             void *user) {
  gg_app *app = user;
  json_t *j = NULL;
  const char *to = body_subject(req, resp, &j);
  gg_gallery *g = to ? gallery(app, resp) : NULL;
  gg_gallery_identity id;
  if (g && !find_subject(g, resp, gg_http_param(req, "subject"), &id)) {
    char err[256] = "";
    int rc =
        strcmp(id.name, to) ? gg_gallery_identity_rename(g, id.id, to, NULL, err, sizeof err) : 0;
    if (rc)
      cf_error_rc(resp, rc, "cannot rename the subject", err);
    else
      gg_http_json(resp, 200, json_pack("{s:b}", "updated", 1));
  }
  json_decref(j);
}

static void h_subject_delete(gg_server *srv, const gg_http_req *req, gg_http_resp *resp,
                             void *user) {
  gg_gallery *g = gallery(user, resp);
  gg_gallery_identity id;
  if (!g || find_subject(g, resp, gg_http_param(req, "subject"), &id)) return;
  char err[256] = "";
  int rc = gg_gallery_identity_delete(g, id.id, err, sizeof err);
  if (rc)
    cf_error_rc(resp, rc, "cannot delete the subject", err);
  else
    gg_http_json(resp, 200, json_pack("{s:s}", "subject", id.name));
}

typedef struct ids_ctx {
  int64_t ids[CF_PAGE];
  int n;
} ids_ctx;

static int collect_identity(gg_gallery *g, const gg_gallery_identity *id, void *ud) {
  (void)g;
  ids_ctx *d = ud;
  if (d->n >= CF_PAGE) return 1; /* the rest on the next round */
  d->ids[d->n++] = id->id;
  return 0;
}

/* DELETE /api/v1/recognition/subjects: every subject with its examples. */
static void h_subject_delete_all(gg_server *srv, const gg_http_req *req, gg_http_resp *resp,
                                 void *user) {
  gg_gallery *g = gallery(user, resp);
  if (!g) return;
  ids_ctx *d = malloc(sizeof *d);
  if (!d) {
    cf_error(resp, 503, -GG_ENOMEM, "out of memory");
    return;
  }
  char err[256] = "";
  int rc = 0;
  long long deleted = 0;
  for (;;) {
    d->n = 0;
    if ((rc = each_identity(g, collect_identity, d, err, sizeof err)) || d->n == 0) break;
    for (int i = 0; i < d->n && !rc; i++) {
      rc = gg_gallery_identity_delete(g, d->ids[i], err, sizeof err);
      if (!rc) deleted++;
    }
    if (rc) break;
  }
  free(d);
  if (rc)
    cf_error_rc(resp, rc, "cannot delete the subjects", err);
  else
    gg_http_json(resp, 200, json_pack("{s:I}", "deleted", (json_int_t)deleted));
}

/* ---- examples (faces) ----------------------------------------------------- */

static void id_string(int64_t id, char *buf, size_t len) {
  snprintf(buf, len, "%lld", (long long)id);
}

/* POST /api/v1/recognition/faces?subject=NAME: the largest face of the
 * image becomes an example of NAME (created when absent). */
static void h_face_add(gg_server *srv, const gg_http_req *req, gg_http_resp *resp, void *user) {
  gg_app *app = user;
  const char *name = gg_http_query(req, "subject");
  if (!name || !*name) {
    cf_error(resp, 400, 400, "query parameter 'subject' is required: ?subject=NAME");
    return;
  }
  cf_opts o;
  if (read_opts(req, resp, &o)) return;
  gg_gallery *g = gallery(app, resp);
  if (!g) return;
  gg_pipeline_result *r = NULL;
  int order[GG_PIPELINE_MAX_FACES], n = 0;
  gg_image img = {0};
  if (run_faces(app, req, resp, "file", &o, 1, &r, order, &n, &img)) return;
  const gg_face_result *f = &r->faces[order[0]];
  void *crop;
  size_t crop_len;
  gg__app_face_crop_jpeg(&img, f, &crop, &crop_len);
  gg_image_free(&img);
  gg_gallery_embedding_in e = {
      .vec = f->embedding,
      .dim = f->dim,
      .model = "faceres",
      .source = GG_GALLERY_SOURCE_UPLOAD,
      .crop = crop,
      .crop_len = crop_len,
      .quality = {.det_score = f->score,
                  .sharpness = f->quality.sharpness,
                  .face_px = f->x1 - f->x0},
  };
  char err[256] = "";
  int64_t emb = 0;
  int rc = gg_gallery_enroll(g, 0, name, &e, 1, NULL, &emb, err, sizeof err);
  free(crop);
  if (rc) {
    cf_error_rc(resp, rc, "cannot add the example", err);
  } else {
    char ids[32];
    id_string(emb, ids, sizeof ids);
    gg_http_json(resp, 201, json_pack("{s:s,s:s}", "image_id", ids, "subject", name));
  }
  gg_pipeline_result_release(r);
  free(r);
}

typedef struct list_ctx {
  json_t *faces;
  const char *subject;
  int64_t want_id; /* find: the embedding looked for */
  int64_t found_identity;
  char name[GG_GALLERY_NAME_MAX + 1];
  char err[256];
} list_ctx;

static int add_face(const gg_gallery_embedding *e, void *ud) {
  list_ctx *c = ud;
  char ids[32];
  id_string(e->id, ids, sizeof ids);
  return json_array_append_new(c->faces,
                               json_pack("{s:s,s:s}", "image_id", ids, "subject", c->name))
             ? GG_ENOMEM
             : 0;
}

static int add_faces_of(gg_gallery *g, const gg_gallery_identity *id, void *ud) {
  list_ctx *c = ud;
  snprintf(c->name, sizeof c->name, "%s", id->name);
  return each_embedding(g, id->id, add_face, c, c->err, sizeof c->err);
}

/* GET /api/v1/recognition/faces[?subject=&page=&size=]: examples, paged
 * (page from 0). */
static void h_face_list(gg_server *srv, const gg_http_req *req, gg_http_resp *resp, void *user) {
  long page, size;
  if (q_int(req, resp, "page", 0, 0, 1000000000L, &page) ||
      q_int(req, resp, "size", 20, 1, 1000, &size))
    return;
  gg_gallery *g = gallery(user, resp);
  if (!g) return;
  list_ctx c = {.faces = json_array()};
  const char *subject = gg_http_query(req, "subject");
  int rc;
  if (subject && *subject) {
    gg_gallery_identity id;
    if (find_subject(g, resp, subject, &id)) {
      json_decref(c.faces);
      return;
    }
    rc = add_faces_of(g, &id, &c);
  } else {
    rc = each_identity(g, add_faces_of, &c, c.err, sizeof c.err);
  }
  if (rc) {
    json_decref(c.faces);
    cf_error_rc(resp, rc, "cannot list the examples", c.err);
    return;
  }
  size_t total = json_array_size(c.faces);
  json_t *out = json_array();
  for (size_t i = (size_t)(page * size); i < total && i < (size_t)((page + 1) * size); i++)
    json_array_append(out, json_array_get(c.faces, i));
  json_decref(c.faces);
  gg_http_json(resp, 200,
               json_pack("{s:o,s:I,s:I,s:I,s:I}", "faces", out, "page_number", (json_int_t)page,
                         "page_size", (json_int_t)size, "total_pages",
                         (json_int_t)((total + (size_t)size - 1) / (size_t)size), "total_elements",
                         (json_int_t)total));
}

static int match_emb(const gg_gallery_embedding *e, void *ud) {
  list_ctx *c = ud;
  if (e->id != c->want_id) return 0;
  c->found_identity = e->identity_id;
  return 1;
}

static int find_emb(gg_gallery *g, const gg_gallery_identity *id, void *ud) {
  list_ctx *c = ud;
  int rc = each_embedding(g, id->id, match_emb, c, c->err, sizeof c->err);
  if (rc == 1) snprintf(c->name, sizeof c->name, "%s", id->name);
  return rc;
}

/* DELETE /api/v1/recognition/faces/:image_id */
static void h_face_delete(gg_server *srv, const gg_http_req *req, gg_http_resp *resp, void *user) {
  const char *ids = gg_http_param(req, "image_id");
  char *end = NULL;
  long long id = strtoll(ids ? ids : "", &end, 10);
  if (!ids || !*ids || *end || id <= 0) {
    cf_error(resp, 404, 404, "Example '%.40s' not found", ids ? ids : "");
    return;
  }
  gg_gallery *g = gallery(user, resp);
  if (!g) return;
  list_ctx c = {.want_id = id};
  int rc = each_identity(g, find_emb, &c, c.err, sizeof c.err);
  if (!rc && !c.found_identity) {
    cf_error(resp, 404, 404, "Example '%lld' not found", id);
    return;
  }
  if (!rc) rc = gg_gallery_embedding_delete(g, id, c.err, sizeof c.err);
  if (rc) {
    cf_error_rc(resp, rc, "cannot delete the example", c.err);
    return;
  }
  gg_http_json(resp, 200, json_pack("{s:s,s:s}", "image_id", ids, "subject", c.name));
}

/* GET /api/v1/recognition/faces/:image_id/img: the example's image. We keep
 * the face crop (160x160 JPEG), not the whole upload. */
static void h_face_img(gg_server *srv, const gg_http_req *req, gg_http_resp *resp, void *user) {
  const char *ids = gg_http_param(req, "image_id");
  char *end = NULL;
  long long id = strtoll(ids ? ids : "", &end, 10);
  if (!ids || !*ids || *end || id <= 0) {
    cf_error(resp, 404, 404, "Example '%.40s' not found", ids ? ids : "");
    return;
  }
  gg_gallery *g = gallery(user, resp);
  if (!g) return;
  void *jpeg = NULL;
  size_t len = 0;
  char err[256] = "";
  if (gg_gallery_embedding_crop(g, id, &jpeg, &len, err, sizeof err)) {
    cf_error(resp, 404, 404, "Example '%lld' not found or stored without an image", id);
    return;
  }
  resp->status = 200;
  resp->content_type = "image/jpeg";
  resp->body = jpeg;
  resp->body_len = len;
}

typedef struct del_ctx {
  int64_t ids[CF_PAGE];
  int n;
} del_ctx;

static int collect_id(const gg_gallery_embedding *e, void *ud) {
  del_ctx *d = ud;
  if (d->n >= CF_PAGE) return 1; /* the rest on the next round */
  d->ids[d->n++] = e->id;
  return 0;
}

/* DELETE /api/v1/recognition/faces?subject=NAME: every example of NAME;
 * the subject stays. */
static void h_face_delete_all(gg_server *srv, const gg_http_req *req, gg_http_resp *resp,
                              void *user) {
  const char *name = gg_http_query(req, "subject");
  if (!name || !*name) {
    cf_error(resp, 400, 400, "query parameter 'subject' is required: ?subject=NAME");
    return;
  }
  gg_gallery *g = gallery(user, resp);
  gg_gallery_identity id;
  if (!g || find_subject(g, resp, name, &id)) return;
  del_ctx *d = malloc(sizeof *d);
  if (!d) {
    cf_error(resp, 503, -GG_ENOMEM, "out of memory");
    return;
  }
  char err[256] = "";
  int rc = 0;
  long long deleted = 0;
  for (;;) {
    d->n = 0;
    rc = each_embedding(g, id.id, collect_id, d, err, sizeof err);
    if (rc < 0 || d->n == 0) break;
    rc = 0;
    for (int i = 0; i < d->n && !rc; i++) {
      rc = gg_gallery_embedding_delete(g, d->ids[i], err, sizeof err);
      if (!rc) deleted++;
    }
    if (rc) break;
  }
  free(d);
  if (rc < 0)
    cf_error_rc(resp, rc, "cannot delete the examples", err);
  else
    gg_http_json(resp, 200, json_pack("{s:I}", "deleted", (json_int_t)deleted));
}

/* ---- recognize, detect, verify -------------------------------------------- */

/* POST /api/v1/recognition/recognize: each face with its best subjects
 * (prediction_count of them; similarity = the gallery's match score). */
static void h_recognize(gg_server *srv, const gg_http_req *req, gg_http_resp *resp, void *user) {
  gg_app *app = user;
  cf_opts o;
  if (read_opts(req, resp, &o)) return;
  gg_gallery *g = gallery(app, resp);
  if (!g) return;
  gg_pipeline_result *r = NULL;
  int order[GG_PIPELINE_MAX_FACES], n = 0;
  if (run_faces(app, req, resp, "file", &o, 1, &r, order, &n, NULL)) return;
  json_t *result = json_array();
  for (int i = 0; i < n; i++) {
    const gg_face_result *f = &r->faces[order[i]];
    json_t *fj = face_json(f, &o);
    json_t *subjects = json_array();
    gg_gallery_match m;
    char err[256] = "";
    /* An empty gallery, or one of another embedder: no subjects. */
    if (gg_gallery_match_query(g, f->embedding, f->dim, &m, err, sizeof err) == 0) {
      const gg_gallery_candidate *c[2] = {&m.best, &m.runner_up};
      for (int k = 0; k < o.prediction_count && k < 2; k++)
        if (c[k]->id)
          json_array_append_new(subjects, json_pack("{s:s,s:f}", "subject", c[k]->name,
                                                    "similarity", (double)clamp01(c[k]->score)));
    }
    json_object_set_new(fj, "subjects", subjects);
    json_array_append_new(result, fj);
  }
  json_t *j = json_pack("{s:o}", "result", result);
  add_status(j, &o, r);
  gg_pipeline_result_release(r);
  free(r);
  gg_http_json(resp, 200, j);
}

/* POST /api/v1/detection/detect: the faces' boxes (and plugins). */
static void h_detect(gg_server *srv, const gg_http_req *req, gg_http_resp *resp, void *user) {
  gg_app *app = user;
  cf_opts o;
  if (read_opts(req, resp, &o)) return;
  gg_pipeline_result *r = NULL;
  int order[GG_PIPELINE_MAX_FACES], n = 0;
  if (run_faces(app, req, resp, "file", &o, 0, &r, order, &n, NULL)) return;
  json_t *result = json_array();
  for (int i = 0; i < n; i++)
    json_array_append_new(result, face_json(&r->faces[order[i]], &o));
  json_t *j = json_pack("{s:o}", "result", result);
  add_status(j, &o, r);
  gg_pipeline_result_release(r);
  free(r);
  gg_http_json(resp, 200, j);
}

static float cosine(const float *a, const float *b, int dim) {
  double s = 0;
  for (int i = 0; i < dim; i++)
    s += (double)a[i] * b[i];
  return (float)s; /* both L2-normalised by the pipeline */
}

/* POST /api/v1/verification/verify: the largest face of source_image
 * against every face of target_image. */
static void h_verify(gg_server *srv, const gg_http_req *req, gg_http_resp *resp, void *user) {
  gg_app *app = user;
  cf_opts o;
  if (read_opts(req, resp, &o)) return;
  gg_pipeline_result *rs = NULL, *rt = NULL;
  int os[GG_PIPELINE_MAX_FACES], ot[GG_PIPELINE_MAX_FACES], ns = 0, nt = 0;
  if (run_faces(app, req, resp, "source_image", &o, 1, &rs, os, &ns, NULL)) return;
  if (run_faces(app, req, resp, "target_image", &o, 1, &rt, ot, &nt, NULL)) {
    gg_pipeline_result_release(rs);
    free(rs);
    return;
  }
  const gg_face_result *s = &rs->faces[os[0]];
  json_t *matches = json_array();
  for (int i = 0; i < nt; i++) {
    const gg_face_result *t = &rt->faces[ot[i]];
    json_t *m = face_json(t, &o);
    float sim = t->dim == s->dim ? clamp01(cosine(s->embedding, t->embedding, s->dim)) : 0;
    json_object_set_new(m, "similarity", json_real(sim));
    json_array_append_new(matches, m);
  }
  json_t *one =
      json_pack("{s:o,s:o}", "source_image_face", face_json(s, &o), "face_matches", matches);
  json_t *j = json_pack("{s:[o]}", "result", one);
  add_status(j, &o, rt);
  gg_pipeline_result_release(rs);
  gg_pipeline_result_release(rt);
  free(rs);
  free(rt);
  gg_http_json(resp, 200, j);
}

void gg__app_register_compreface(gg_app *app) {
  /* CompreFace always wants its x-api-key; multipart bodies are allowed
   * (a key a foreign page cannot send makes them safe). */
  const unsigned need = GG_ACCESS_SAME_ORIGIN | GG_ACCESS_KEY;
  gg_server *s = app->srv;
  gg__server_add_route_access(s, "POST", "/api/v1/recognition/recognize", need, h_recognize, app);
  gg__server_add_route_access(s, "POST", "/api/v1/recognition/faces", need, h_face_add, app);
  gg__server_add_route_access(s, "GET", "/api/v1/recognition/faces", need, h_face_list, app);
  gg__server_add_route_access(s, "DELETE", "/api/v1/recognition/faces", need, h_face_delete_all,
                              app);
  gg__server_add_route_access(s, "GET", "/api/v1/recognition/faces/:image_id/img", need, h_face_img,
                              app);
  gg__server_add_route_access(s, "DELETE", "/api/v1/recognition/faces/:image_id", need,
                              h_face_delete, app);
  gg__server_add_route_access(s, "POST", "/api/v1/recognition/subjects", need, h_subject_add, app);
  gg__server_add_route_access(s, "GET", "/api/v1/recognition/subjects", need, h_subject_list, app);
  gg__server_add_route_access(s, "DELETE", "/api/v1/recognition/subjects", need,
                              h_subject_delete_all, app);
  gg__server_add_route_access(s, "PUT", "/api/v1/recognition/subjects/:subject", need,
                              h_subject_rename, app);
  gg__server_add_route_access(s, "DELETE", "/api/v1/recognition/subjects/:subject", need,
                              h_subject_delete, app);
  gg__server_add_route_access(s, "POST", "/api/v1/detection/detect", need, h_detect, app);
  gg__server_add_route_access(s, "POST", "/api/v1/verification/verify", need, h_verify, app);
}
