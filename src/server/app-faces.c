/* The face service's native routes: object and face detection, embeddings,
 * recognition against the gallery, 1:1 verification, identities with their
 * examples and negatives, and the event log. docs/API.md describes them. */
#include "gpuguard/core.h"
#include "gpuguard/error.h"
#include "gpuguard/image.h"
#include "gpuguard/log.h"
#include "gpuguard/track.h"
#include "server/app.h"
#include "server/http-impl.h"
#include "vision/face.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* Largest JSON body of /api/verify: two base64 images. */
#define FACES_VERIFY_MAX_BYTES (24u << 20)
/* What a 429 tells the client to wait, in seconds. */
#define FACES_RETRY_AFTER_S 1

/* ---- request helpers ------------------------------------------------------ */

static int query_flag(const gg_http_req *req, const char *key) {
  const char *v = gg_http_query(req, key);
  return v && (!strcmp(v, "1") || !strcmp(v, "true") || !strcmp(v, "yes"));
}

/* Parses a non-negative integer query parameter into *out (unchanged when
 * absent). -1 with a 400 in resp when it is not one. */
static int query_int(const gg_http_req *req, gg_http_resp *resp, const char *key, int64_t max,
                     int64_t *out) {
  const char *v = gg_http_query(req, key);
  if (!v) return 0;
  char *end = NULL;
  long long x = strtoll(v, &end, 10);
  if (!*v || *end || x < 0 || x > max) {
    gg_http_error_named(resp, 400, "bad_parameter",
                        "query parameter '%s' must be an integer from 0 to %lld, got '%.40s'", key,
                        (long long)max, v);
    return -1;
  }
  *out = x;
  return 0;
}

/* The :id path parameter as an identity id > 0; -1 with a 400 otherwise. */
static int path_id(const gg_http_req *req, gg_http_resp *resp, const char *name, int64_t *out) {
  const char *v = gg_http_param(req, name);
  char *end = NULL;
  long long x = v ? strtoll(v, &end, 10) : 0;
  if (!v || !*v || *end || x <= 0) {
    gg_http_error_named(resp, 400, "bad_id", "path parameter '%s' must be a positive integer",
                        name);
    return -1;
  }
  *out = x;
  return 0;
}

/* Images come as the raw body with Content-Type image/jpeg or image/png
 * (application/octet-stream and no type are sniffed). */
static int image_type_ok(const char *ct) {
  if (!ct || !*ct) return 1;
  static const char *ok[] = {"image/jpeg", "image/jpg", "image/png", "application/octet-stream"};
  for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
    size_t n = strlen(ok[i]);
    if (!strncasecmp(ct, ok[i], n) && (ct[n] == 0 || ct[n] == ';' || ct[n] == ' ')) return 1;
  }
  return 0;
}

/* Decodes bytes into img; on failure a 413 (too many pixels) or 400
 * (undecodable) in resp. `what` names the upload in messages. */
static int decode_bytes(gg_app *app, const void *data, size_t len, const char *what,
                        gg_http_resp *resp, gg_image *img) {
  if (len == 0) {
    gg_http_error_named(resp, 400, "empty_body", "%s is empty: send a JPEG or PNG image", what);
    return -1;
  }
  char err[256] = "";
  int rc = gg_image_decode(data, len, app->max_pixels, img, err, sizeof err);
  if (rc == GG_ETOO_LARGE) {
    gg_http_error_named(resp, 413, "image_too_large", "%s is too large: %s", what, err);
    return -1;
  }
  if (rc) {
    gg_http_error_named(resp, 400, "undecodable_image", "%s cannot be decoded as JPEG or PNG: %s",
                        what, err);
    return -1;
  }
  return 0;
}

/* Checks the type of an image body and decodes it. */
static int read_image(gg_app *app, const gg_http_req *req, gg_http_resp *resp, gg_image *img) {
  const char *ct = gg_http_header(req, "Content-Type");
  if (!image_type_ok(ct)) {
    gg_http_error_named(resp, 415, "unsupported_media_type",
                        "Content-Type '%.60s' is not an image: send the raw JPEG or PNG bytes "
                        "with Content-Type image/jpeg or image/png",
                        ct);
    return -1;
  }
  return decode_bytes(app, req->body, req->body_len, "the request body", resp, img);
}

/* The primary device's spec ("cpu", "sim:mem=4560M"). */
static void primary_spec(gg_app *app, char *out, size_t len) {
  gg_guard_device_status st;
  if (gg_guard_device_status_get(app->guard, 0, &st) == 0)
    snprintf(out, len, "%s", st.spec);
  else
    snprintf(out, len, "%s", app->device_spec);
}

/* Strict mode: ?strict=1 / ?strict=0 per request, else the server's
 * --strict. */
static int strict_on(const gg_app *app, const gg_http_req *req) {
  return gg_http_query(req, "strict") ? query_flag(req, "strict") : app->strict;
}

/* Strict mode: refuse with 503 when the primary's breaker is open, before
 * anything runs. */
static int strict_precheck(gg_app *app, const gg_http_req *req, gg_http_resp *resp) {
  if (!strict_on(app, req)) return 0;
  gg_guard_device_status st;
  int idx = gg__app_serving_index(app, &st);
  if (idx != 0) {
    char prim[128];
    primary_spec(app, prim, sizeof prim);
    gg_http_error_named(resp, 503, "fallback_refused",
                        "strict mode: the primary device %s is not serving (%s); retry later or "
                        "drop ?strict=1 to accept a fallback",
                        prim, idx < 0 ? "no device is available" : "a fallback would serve");
    return -1;
  }
  return 0;
}

/* Strict mode after a run: a result served by another device than the
 * primary is refused with 503. */
static int strict_postcheck(gg_app *app, const gg_http_req *req, const char *device,
                            gg_http_resp *resp) {
  if (!strict_on(app, req) || !device || !*device) return 0;
  char prim[128];
  primary_spec(app, prim, sizeof prim);
  if (!strcmp(prim, device)) return 0;
  json_t *j = gg_http_error_json(503, "fallback_refused", "strict mode: served by a fallback");
  json_object_set_new(j, "device", json_string(device));
  json_object_set_new(j, "primary", json_string(prim));
  gg_http_json(resp, 503, j);
  return -1;
}

/* ?liveness=1 (or ?antispoof=1): the anti-spoofing pair runs on every
 * face that passes the gate (docs/API.md, "Anti-spoofing"). */
static int want_liveness(const gg_http_req *req) {
  return query_flag(req, "liveness") || query_flag(req, "antispoof");
}

static json_t *timings_json(const gg_pipeline_result *r) {
  json_t *t = json_object();
  for (int s = 0; s < GG_STAGE_COUNT; s++) {
    char key[32];
    snprintf(key, sizeof key, "%s_ms", gg_pipeline_stage_name((gg_pipeline_stage)s));
    json_object_set_new(t, key, json_real(r->stage_ms[s]));
  }
  json_object_set_new(t, "total_ms", json_real(r->total_ms));
  json_object_set_new(t, "model_runs", json_integer(r->model_runs));
  return t;
}

/* Answers a failed pipeline run: 429 over the stream's rate, else the
 * error's status with the device and model named. */
static void pipeline_error(gg_http_resp *resp, int rc, const gg_pipeline_result *r,
                           const char *err) {
  if (rc == GG_EBUSY) {
    json_t *j = gg_http_error_json(429, "rate_limited",
                                   "this stream is over its rate; retry after retry_after_s");
    json_object_set_new(j, "retry_after_s", json_integer(FACES_RETRY_AFTER_S));
    gg_http_json(resp, 429, j);
    resp->retry_after_s = FACES_RETRY_AFTER_S;
    return;
  }
  int status = gg_http_status_for(rc);
  json_t *j = gg_http_error_json(status, gg_err_name(rc), err && *err ? err : gg_strerror(rc));
  json_object_set_new(j, "device", json_string(r->device));
  if (r->failed_model[0]) json_object_set_new(j, "model", json_string(r->failed_model));
  gg_http_json(resp, status, j);
}

/* Runs the pipeline; on failure answers resp and returns -1 (r released). */
static int run_pipeline(gg_app *app, const gg_http_req *req, gg_http_resp *resp,
                        const gg_image *img, const gg_pipeline_request *rq, gg_pipeline_result *r) {
  char err[256] = "";
  memset(r, 0, sizeof *r);
  int rc = gg_pipeline_run(app->pipeline, img, rq, r, err, sizeof err);
  if (rc) {
    pipeline_error(resp, rc, r, err);
    gg_pipeline_result_release(r);
    return -1;
  }
  if (strict_postcheck(app, req, r->device, resp)) {
    gg_pipeline_result_release(r);
    return -1;
  }
  atomic_fetch_add(&app->generation_count, 1);
  return 0;
}

static json_t *reasons_json(unsigned mask) {
  json_t *a = json_array();
  for (int b = 0; b < GG_FACE_REJECT_COUNT; b++)
    if (mask & (1u << b)) json_array_append_new(a, json_string(gg_face_reject_name(1u << b)));
  return a;
}

static json_t *face_json(const gg_face_result *f, int index, int with_embedding) {
  json_t *kp = json_array();
  for (int k = 0; k < 6; k++)
    json_array_append_new(kp, json_pack("[f,f]", (double)f->kp[k][0], (double)f->kp[k][1]));
  const gg_face_quality *q = &f->quality;
  json_t *o =
      json_pack("{s:i,s:{s:f,s:f,s:f,s:f},s:f,s:o,s:{s:b,s:o,s:f,s:f,s:f,s:f,s:f}}", "index", index,
                "box", "x0", (double)f->x0, "y0", (double)f->y0, "x1", (double)f->x1, "y1",
                (double)f->y1, "det_score", (double)f->score, "keypoints", kp, "quality", "passed",
                q->rejected == 0, "reasons", reasons_json(q->rejected), "box_px", (double)q->box_px,
                "eye_px", (double)q->eye_px, "sharpness", (double)q->sharpness, "yaw_deg",
                (double)q->yaw_deg, "roll_deg", (double)q->roll_deg);
  if (with_embedding && f->dim > 0) {
    json_t *e = json_array();
    for (int i = 0; i < f->dim; i++)
      json_array_append_new(e, json_real(f->embedding[i]));
    json_object_set_new(o, "embedding", e);
  }
  if (f->has_liveness)
    json_object_set_new(
        o, "liveness",
        json_pack("{s:f,s:f}", "antispoof", (double)f->antispoof, "liveness", (double)f->liveness));
  return o;
}

static json_t *result_base(const gg_pipeline_result *r, const gg_image *img) {
  return json_pack("{s:s,s:o,s:{s:i,s:i}}", "device", r->device, "timings", timings_json(r),
                   "image", "width", img->width, "height", img->height);
}

/* ---- detection and embedding --------------------------------------------- */

/* POST /api/detect: every object nanodet finds. */
static void h_detect(gg_server *srv, const gg_http_req *req, gg_http_resp *resp, void *user) {
  (void)srv;
  gg_app *app = user;
  if (strict_precheck(app, req, resp)) return;
  gg_image img = {0};
  if (read_image(app, req, resp, &img)) return;
  gg_object objs[GG_PIPELINE_MAX_OBJECTS];
  char dev[128] = "", err[256] = "";
  uint64_t t0 = gg_now_ns();
  int n = gg_pipeline_detect_objects(app->pipeline, &img, 1, objs, GG_PIPELINE_MAX_OBJECTS, dev,
                                     sizeof dev, err, sizeof err);
  double ms = (double)(gg_now_ns() - t0) / 1e6;
  if (n < 0) {
    int status = gg_http_status_for(n);
    json_t *j = gg_http_error_json(status, gg_err_name(n), err[0] ? err : gg_strerror(n));
    json_object_set_new(j, "device", json_string(dev));
    gg_http_json(resp, status, j);
    gg_image_free(&img);
    return;
  }
  if (strict_postcheck(app, req, dev, resp)) {
    gg_image_free(&img);
    return;
  }
  atomic_fetch_add(&app->generation_count, 1);
  json_t *a = json_array();
  for (int i = 0; i < n; i++)
    json_array_append_new(a, json_pack("{s:s,s:i,s:f,s:{s:f,s:f,s:f,s:f}}", "label",
                                       objs[i].label ? objs[i].label : gg_object_label(objs[i].cls),
                                       "class", objs[i].cls, "score", (double)objs[i].score, "box",
                                       "x0", (double)objs[i].x0, "y0", (double)objs[i].y0, "x1",
                                       (double)objs[i].x1, "y1", (double)objs[i].y1));
  json_t *j = json_pack("{s:s,s:{s:f},s:{s:i,s:i},s:o}", "device", dev, "timings", "total_ms", ms,
                        "image", "width", img.width, "height", img.height, "objects", a);
  gg_image_free(&img);
  gg_http_json(resp, 200, j);
}

/* POST /api/faces/detect and /api/faces/embed: faces with boxes, keypoints
 * and the loose gate's verdict (?quality=strict for the enrollment gate);
 * embed adds the embeddings of the faces that pass. */
static void faces_common(gg_app *app, const gg_http_req *req, gg_http_resp *resp, int embed) {
  if (strict_precheck(app, req, resp)) return;
  gg_image img = {0};
  if (read_image(app, req, resp, &img)) return;
  gg_pipeline_request rq;
  gg_pipeline_request_default(&rq);
  const char *qual = gg_http_query(req, "quality");
  gg_face_quality_defaults(qual && !strcmp(qual, "strict") ? GG_FACE_QUALITY_STRICT
                                                           : GG_FACE_QUALITY_LOOSE,
                           &rq.quality);
  rq.embed = embed;
  rq.attributes = query_flag(req, "attributes");
  rq.liveness = want_liveness(req);
  gg_pipeline_result r;
  if (run_pipeline(app, req, resp, &img, &rq, &r)) {
    gg_image_free(&img);
    return;
  }
  json_t *j = result_base(&r, &img);
  json_t *a = json_array();
  for (int i = 0; i < r.n_faces; i++) {
    json_t *f = face_json(&r.faces[i], i, embed);
    if (r.faces[i].has_attributes) {
      json_object_set_new(f, "age", json_real(r.faces[i].age));
      json_object_set_new(f, "male", json_real(r.faces[i].male));
    }
    json_array_append_new(a, f);
  }
  json_object_set_new(j, "faces", a);
  gg_pipeline_result_release(&r);
  gg_image_free(&img);
  gg_http_json(resp, 200, j);
}

static void h_faces_detect(gg_server *srv, const gg_http_req *req, gg_http_resp *resp, void *user) {
  (void)srv;
  faces_common(user, req, resp, 0);
}

static void h_faces_embed(gg_server *srv, const gg_http_req *req, gg_http_resp *resp, void *user) {
  (void)srv;
  faces_common(user, req, resp, 1);
}

/* ---- gallery helpers ------------------------------------------------------ */

static int open_gallery(gg_app *app, gg_http_resp *resp, gg_gallery **g) {
  char err[256] = "";
  int rc = gg__app_gallery(app, g, err, sizeof err);
  if (rc) {
    gg_http_error_rc(resp, rc, "cannot open the face gallery: %s", err);
    return -1;
  }
  return 0;
}

static json_t *candidate_json(const gg_gallery_candidate *c) {
  if (c->id == 0) return json_null();
  return json_pack("{s:I,s:s,s:f,s:f}", "id", (json_int_t)c->id, "name", c->name, "score",
                   (double)c->score, "best_single", (double)c->best_single);
}

static json_t *identity_json(const gg_gallery_identity *id) {
  return json_pack("{s:I,s:s,s:I,s:I,s:I,s:I}", "id", (json_int_t)id->id, "name", id->name,
                   "created_ms", (json_int_t)id->created_ms, "updated_ms",
                   (json_int_t)id->updated_ms, "examples", (json_int_t)id->n_embeddings,
                   "negatives", (json_int_t)id->n_negatives);
}

static int read_page(const gg_http_req *req, gg_http_resp *resp, gg_gallery_page *p) {
  int64_t limit = 50, offset = 0, cursor = 0;
  if (query_int(req, resp, "limit", 1000, &limit) ||
      query_int(req, resp, "offset", INT64_MAX / 2, &offset) ||
      query_int(req, resp, "cursor", INT64_MAX / 2, &cursor))
    return -1;
  if (limit == 0) limit = 50;
  p->limit = (int)limit;
  p->offset = offset;
  p->cursor = cursor;
  return 0;
}

static void page_fields(json_t *j, int64_t total, int64_t next, const gg_gallery_page *p) {
  json_object_set_new(j, "total", json_integer(total));
  json_object_set_new(j, "limit", json_integer(p->limit));
  json_object_set_new(j, "offset", json_integer(p->offset));
  json_object_set_new(j, "next_cursor", next ? json_integer(next) : json_null());
}

/* ---- recognition and verification ---------------------------------------- */

/* The face as a person would want to see it: the detector box enlarged
 * 1.5 times, eyes level, 160x160, JPEG quality 85 (about 6-10 KB). On
 * failure *jpeg stays NULL: an example without a crop is still an example. */
#define CROP_SIDE 160
void gg__app_face_crop_jpeg(const gg_image *img, const gg_face_result *f, void **jpeg,
                            size_t *len) {
  *jpeg = NULL;
  *len = 0;
  gg__face_box b = {f->x0, f->y0, f->x1, f->y1, f->score, {{0}}};
  memcpy(b.kp, f->kp, sizeof b.kp);
  gg_image crop;
  if (gg__face_align_framed(img, &b, CROP_SIDE, CROP_SIDE, 1.5f, &crop)) return;
  int rc = gg__image_jpeg_encode(&crop, 85, jpeg, len);
  gg_image_free(&crop);
  if (rc) GG_WARN("HTTP", "face crop not stored: %s", gg_strerror(rc));
}

/* ?source=camera marks an example enrolled from a stream's frame. */
static gg_gallery_source source_of(const gg_http_req *req) {
  const char *s = gg_http_query(req, "source");
  return s && !strcmp(s, "camera") ? GG_GALLERY_SOURCE_CAMERA : GG_GALLERY_SOURCE_UPLOAD;
}

/* ---- anonymous identities (--cluster-unknowns) ---------------------------- */

/* Anonymous identities are named "unknown-N"; naming one (PATCH) makes it
 * a person, renaming it onto a known name merges it into that person. */
#define ANON_PREFIX "unknown-"
/* Views kept per anonymous identity: enough angles to follow a face, few
 * enough that a wrong merge stays small. */
#define ANON_MAX_EXAMPLES 5

static int is_anonymous(const char *name) {
  return !strncmp(name, ANON_PREFIX, strlen(ANON_PREFIX));
}

/* Only faces that would pass enrollment are clustered. */
static int passes_strict(const gg_face_result *f) {
  gg_face_quality_opts o;
  gg_face_quality_defaults(GG_FACE_QUALITY_STRICT, &o);
  gg_face_quality q = f->quality;
  gg_face_quality_judge(&o, &q);
  return q.rejected == 0;
}

static int64_t add_anon_view(gg_gallery *g, int64_t id, const char *name, const gg_image *img,
                             const gg_face_result *f, char *err, size_t errlen) {
  void *crop;
  size_t crop_len;
  gg__app_face_crop_jpeg(img, f, &crop, &crop_len);
  gg_gallery_embedding_in in = {.vec = f->embedding,
                                .dim = f->dim,
                                .model = GG_FACE_EMBED_MODEL,
                                .source = GG_GALLERY_SOURCE_CAMERA,
                                .crop = crop,
                                .crop_len = crop_len,
                                .quality = {.det_score = f->score,
                                            .sharpness = f->quality.sharpness,
                                            .face_px = f->x1 - f->x0}};
  int64_t out = 0;
  int rc = gg_gallery_enroll(g, id, name, &in, 1, &out, NULL, err, errlen);
  free(crop);
  return rc ? 0 : out;
}

/* An unknown face under --cluster-unknowns: when it matched an anonymous
 * identity (m->best, at the threshold) another view of it is kept while it
 * has fewer than ANON_MAX_EXAMPLES; otherwise a face that passes the
 * strict gate starts a new anonymous identity. Returns the anonymous
 * identity's id and name, or 0 when the face stays plain unknown. */
static int64_t cluster_face(gg_app *app, gg_gallery *g, const gg_image *img,
                            const gg_face_result *f, const gg_gallery_match *m, char *name,
                            size_t cap) {
  static _Atomic int64_t next_n = 1;
  char err[256] = "";
  if (m->known) {
    gg_gallery_identity ident;
    if (app->cluster_unknowns &&
        gg_gallery_identity_get(g, m->best.id, &ident, err, sizeof err) == 0 &&
        ident.n_embeddings < ANON_MAX_EXAMPLES && passes_strict(f))
      add_anon_view(g, m->best.id, NULL, img, f, err, sizeof err);
    snprintf(name, cap, "%s", m->best.name);
    return m->best.id;
  }
  if (!passes_strict(f)) return 0;
  /* The first free "unknown-N" (a name taken, by a person or a racing
   * request, moves N on). */
  for (int tries = 0; tries < 100000; tries++) {
    int64_t n = atomic_fetch_add(&next_n, 1);
    snprintf(name, cap, ANON_PREFIX "%lld", (long long)n);
    gg_gallery_identity exists;
    if (gg_gallery_identity_find(g, name, &exists, err, sizeof err) == 0) continue;
    int64_t id = add_anon_view(g, 0, name, img, f, err, sizeof err);
    if (!id)
      GG_WARN("HTTP", "unknown face not clustered: %s", err);
    else
      GG_INFO("HTTP", "new anonymous identity %s (id %lld)", name, (long long)id);
    return id;
  }
  return 0;
}

/* Feeds the frame's n faces to the stream's tracker and gives each face of
 * the array a its "track": the track id, the identity voted over its recent
 * frames (id and name, or "unknown"), the votes for it and the frames the
 * track has seen. A failed update leaves the faces without tracks. */
static void add_tracks(gg_app *app, gg_gallery *g, const char *stream, const gg_track_face *tf,
                       int n, json_t *a) {
  gg_track_out to[GG_PIPELINE_MAX_FACES];
  int64_t now_ms = (int64_t)(gg_now_ns() / 1000000u);
  int rc = gg_tracker_update(app->tracker, stream, now_ms, tf, n, to);
  if (rc) {
    GG_WARN("HTTP", "%s: stream '%s' not tracked: %s", __func__, stream, gg_strerror(rc));
    return;
  }
  for (int i = 0; i < n; i++) {
    if (!to[i].track_id) continue; /* more faces than the tracker keeps */
    json_t *ident = json_string("unknown");
    if (to[i].identity_id) {
      gg_gallery_identity id;
      char err[256] = "";
      /* Deleted since it was voted for: unknown. */
      if (gg_gallery_identity_get(g, to[i].identity_id, &id, err, sizeof err) == 0) {
        json_decref(ident);
        ident = is_anonymous(id.name)
                    ? json_pack("{s:I,s:s,s:b}", "id", (json_int_t)id.id, "name", id.name,
                                "anonymous", 1)
                    : json_pack("{s:I,s:s}", "id", (json_int_t)id.id, "name", id.name);
      }
    }
    json_object_set_new(json_array_get(a, (size_t)i), "track",
                        json_pack("{s:I,s:o,s:i,s:i,s:i,s:f}", "id", (json_int_t)to[i].track_id,
                                  "identity", ident, "votes", to[i].votes, "window", to[i].window,
                                  "frames", to[i].frames, "share", (double)to[i].share));
  }
}

static int64_t wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* GET /api/streams: the streams the tracker keeps, most recent first. */
static void h_streams(gg_server *srv, const gg_http_req *req, gg_http_resp *resp, void *user) {
  (void)srv;
  (void)req;
  gg_app *app = user;
  enum { CAP = 256 };
  gg_track_stream_info *info = calloc(CAP, sizeof *info);
  if (!info) {
    gg_http_error(resp, 500, "out of memory");
    return;
  }
  int64_t now_ms = (int64_t)(gg_now_ns() / 1000000u);
  int n = gg_tracker_streams(app->tracker, now_ms, info, CAP);
  json_t *a = json_array();
  for (int i = 0; i < n; i++)
    json_array_append_new(a, json_pack("{s:s,s:I,s:i,s:I}", "stream", info[i].name, "idle_ms",
                                       (json_int_t)(now_ms - info[i].last_ms), "live_tracks",
                                       info[i].live_tracks, "frames", (json_int_t)info[i].frames));
  free(info);
  gg_http_json(resp, 200, json_pack("{s:o,s:i}", "streams", a, "total", n));
}

/* POST /api/recognize[?stream=ID]: the whole pipeline and a gallery match
 * per embedded face; each face is logged as an event. With a stream each
 * face also gets its "track" (add_tracks). */
static void h_recognize(gg_server *srv, const gg_http_req *req, gg_http_resp *resp, void *user) {
  (void)srv;
  gg_app *app = user;
  if (strict_precheck(app, req, resp)) return;
  const char *stream = gg_http_query(req, "stream");
  if (stream && strlen(stream) > GG_GALLERY_TAG_MAX) {
    gg_http_error_named(resp, 400, "bad_parameter", "stream id is longer than %d bytes",
                        GG_GALLERY_TAG_MAX);
    return;
  }
  gg_gallery *g;
  if (open_gallery(app, resp, &g)) return;
  gg_image img = {0};
  if (read_image(app, req, resp, &img)) return;
  gg_pipeline_request rq;
  gg_pipeline_request_default(&rq);
  rq.stream = stream && *stream ? stream : NULL;
  rq.attributes = query_flag(req, "attributes");
  rq.liveness = want_liveness(req);
  gg_pipeline_result r;
  if (run_pipeline(app, req, resp, &img, &rq, &r)) {
    gg_image_free(&img);
    return;
  }
  json_t *j = result_base(&r, &img);
  json_object_set_new(j, "stream", json_string(stream ? stream : ""));
  json_t *a = json_array();
  int log_events = !query_flag(req, "no_events");
  /* What the tracker gets of each face: its box and this frame's match
   * (unknown when not embedded or not matched). */
  gg_track_face tf[GG_PIPELINE_MAX_FACES];
  /* What is published once the tracks are known (gg__app_event). */
  struct {
    gg_app_event ev;
    char name[GG_GALLERY_NAME_MAX + 1];
    int face;
  } pub[GG_PIPELINE_MAX_FACES];
  int n_pub = 0;
  for (int i = 0; i < r.n_faces; i++) {
    const gg_face_result *f = &r.faces[i];
    json_t *fj = face_json(f, i, 0);
    tf[i] = (gg_track_face){f->x0, f->y0, f->x1, f->y1, 0, 0};
    if (f->dim > 0) {
      gg_gallery_match m;
      char err[256] = "";
      int rc = gg_gallery_match_query(g, f->embedding, f->dim, &m, err, sizeof err);
      if (rc) {
        json_object_set_new(fj, "match_error", json_string(err));
      } else {
        /* Anonymous identities are reported as who they are, but never as
         * known people. */
        char anon_name[GG_GALLERY_NAME_MAX + 1] = "";
        int64_t anon = 0;
        if (m.known ? is_anonymous(m.best.name) : app->cluster_unknowns)
          anon = cluster_face(app, g, &img, f, &m, anon_name, sizeof anon_name);
        int known = m.known && !anon;
        int64_t who = known ? m.best.id : anon;
        tf[i].identity_id = who;
        tf[i].score = m.known ? m.best.score : 0;
        json_t *ident =
            known  ? json_pack("{s:I,s:s}", "id", (json_int_t)m.best.id, "name", m.best.name)
            : anon ? json_pack("{s:I,s:s,s:b}", "id", (json_int_t)anon, "name", anon_name,
                               "anonymous", 1)
                   : json_string("unknown");
        json_object_set_new(fj, "identity", ident);
        json_object_set_new(fj, "known", json_boolean(known));
        json_object_set_new(fj, "score", json_real(m.best.id ? m.best.score : 0));
        json_object_set_new(fj, "best", candidate_json(&m.best));
        json_object_set_new(fj, "runner_up", candidate_json(&m.runner_up));
        json_object_set_new(fj, "threshold", json_real(m.threshold));
        json_object_set_new(fj, "blocked_by_negatives", json_integer(m.n_blocked));
        int64_t eid = 0;
        if (log_events) {
          gg_gallery_event ev;
          memset(&ev, 0, sizeof ev);
          snprintf(ev.stream, sizeof ev.stream, "%s", stream ? stream : "");
          ev.identity_id = who;
          ev.score = m.best.id ? m.best.score : 0;
          snprintf(ev.device, sizeof ev.device, "%.63s", r.device);
          ev.box[0] = f->x0;
          ev.box[1] = f->y0;
          ev.box[2] = f->x1 - f->x0;
          ev.box[3] = f->y1 - f->y0;
          if (gg_gallery_event_add(g, &ev, &eid, err, sizeof err) == 0)
            json_object_set_new(fj, "event_id", json_integer(eid));
          else
            GG_WARN("HTTP", "%s: event not logged: %s", __func__, err);
        }
        pub[n_pub].ev = (gg_app_event){.event_id = eid,
                                       .time_ms = wall_ms(),
                                       .stream = stream ? stream : "",
                                       .identity_id = who,
                                       .anonymous = anon != 0,
                                       .score = m.best.id ? m.best.score : 0,
                                       .device = r.device,
                                       .box = {f->x0, f->y0, f->x1 - f->x0, f->y1 - f->y0}};
        snprintf(pub[n_pub].name, sizeof pub[n_pub].name, "%s",
                 known  ? m.best.name
                 : anon ? anon_name
                        : "unknown");
        pub[n_pub++].face = i;
      }
    } else {
      json_object_set_new(fj, "identity", json_null());
    }
    if (f->has_attributes) {
      json_object_set_new(fj, "age", json_real(f->age));
      json_object_set_new(fj, "male", json_real(f->male));
    }
    json_array_append_new(a, fj);
  }
  if (rq.stream) add_tracks(app, g, rq.stream, tf, r.n_faces, a);
  for (int k = 0; k < n_pub; k++) {
    pub[k].ev.name = pub[k].name;
    json_t *track = json_object_get(json_array_get(a, (size_t)pub[k].face), "track");
    pub[k].ev.track_id = (int64_t)json_integer_value(json_object_get(track, "id"));
    gg__app_event(app, &pub[k].ev);
  }
  json_object_set_new(j, "faces", a);
  gg_pipeline_result_release(&r);
  gg_image_free(&img);
  gg_http_json(resp, 200, j);
}

/* The best face of img embedded, or -1 with the error in resp. */
static int verify_one(gg_app *app, const gg_http_req *req, gg_http_resp *resp, json_t *body,
                      const char *key, gg_pipeline_result *r, int *face, gg_image *img) {
  const char *s = json_string_value(json_object_get(body, key));
  if (!s) {
    gg_http_error_named(resp, 400, "missing_field",
                        "field '%s' must be a string: the base64 of a JPEG or PNG image", key);
    return -1;
  }
  size_t len = 0;
  unsigned char *bytes = NULL;
  char berr[128];
  int brc = gg_base64_decode(s, (size_t)-1, &bytes, &len, berr, sizeof berr);
  if (brc) {
    if (brc == GG_EPARSE)
      gg_http_error_named(resp, 400, "bad_base64", "field '%s': %s", key, berr);
    else
      gg_http_error_rc(resp, brc, "field '%s': %s", key, berr);
    return -1;
  }
  int rc = decode_bytes(app, bytes, len, key, resp, img);
  free(bytes);
  if (rc) return -1;
  gg_pipeline_request rq;
  gg_pipeline_request_default(&rq);
  if (run_pipeline(app, req, resp, img, &rq, r)) return -1;
  int best = -1;
  for (int i = 0; i < r->n_faces; i++)
    if (r->faces[i].dim > 0 && (best < 0 || r->faces[i].score > r->faces[best].score)) best = i;
  if (best < 0) {
    json_t *j = gg_http_error_json(422, r->n_faces ? "quality_refused" : "no_face",
                                   r->n_faces ? "no face in this image passed the quality gate"
                                              : "no face found in this image");
    json_object_set_new(j, "field", json_string(key));
    json_object_set_new(j, "faces_found", json_integer(r->n_faces));
    if (r->n_faces) json_object_set_new(j, "reasons", reasons_json(r->faces[0].quality.rejected));
    gg_http_json(resp, 422, j);
    gg_pipeline_result_release(r);
    return -1;
  }
  *face = best;
  return 0;
}

/* POST /api/verify {"image1": base64, "image2": base64}: the cosine
 * similarity of the best face of each and the verdict at the threshold. */
static void h_verify(gg_server *srv, const gg_http_req *req, gg_http_resp *resp, void *user) {
  (void)srv;
  gg_app *app = user;
  if (strict_precheck(app, req, resp)) return;
  json_t *body = NULL;
  if (gg_http_read_json(req, resp, FACES_VERIFY_MAX_BYTES, (void **)&body)) return;
  gg_pipeline_result r1, r2;
  gg_image i1 = {0}, i2 = {0};
  int f1 = -1, f2 = -1;
  if (verify_one(app, req, resp, body, "image1", &r1, &f1, &i1)) {
    gg_image_free(&i1);
    json_decref(body);
    return;
  }
  if (verify_one(app, req, resp, body, "image2", &r2, &f2, &i2)) {
    gg_pipeline_result_release(&r1);
    gg_image_free(&i1);
    gg_image_free(&i2);
    json_decref(body);
    return;
  }
  json_decref(body);
  const gg_face_result *a = &r1.faces[f1], *b = &r2.faces[f2];
  double dot = 0;
  int dim = a->dim < b->dim ? a->dim : b->dim;
  for (int i = 0; i < dim; i++)
    dot += (double)a->embedding[i] * (double)b->embedding[i];
  float thr = GG_FACE_MATCH_THRESHOLD;
  json_t *j =
      json_pack("{s:f,s:f,s:b,s:s,s:o,s:o,s:o,s:o}", "similarity", dot, "threshold", (double)thr,
                "same", dot >= thr, "device", r2.device, "timings",
                json_pack("{s:o,s:o}", "image1", timings_json(&r1), "image2", timings_json(&r2)),
                "face1", face_json(a, f1, 0), "face2", face_json(b, f2, 0), "devices",
                json_pack("[s,s]", r1.device, r2.device));
  gg_pipeline_result_release(&r1);
  gg_pipeline_result_release(&r2);
  gg_image_free(&i1);
  gg_image_free(&i2);
  gg_http_json(resp, 200, j);
}

/* ---- identities ------------------------------------------------------------ */

static void h_identities_list(gg_server *srv, const gg_http_req *req, gg_http_resp *resp,
                              void *user) {
  (void)srv;
  gg_app *app = user;
  gg_gallery_page p;
  if (read_page(req, resp, &p)) return;
  gg_gallery *g;
  if (open_gallery(app, resp, &g)) return;
  gg_gallery_identity *ids = calloc((size_t)p.limit, sizeof *ids);
  if (!ids) {
    gg_http_error(resp, 500, "out of memory");
    return;
  }
  int n = 0;
  int64_t next = 0, total = 0;
  char err[256] = "";
  int rc = gg_gallery_identity_list(g, &p, ids, p.limit, &n, &next, &total, err, sizeof err);
  if (rc) {
    free(ids);
    gg_http_error_rc(resp, rc, "cannot list identities: %s", err);
    return;
  }
  json_t *a = json_array();
  for (int i = 0; i < n; i++)
    json_array_append_new(a, identity_json(&ids[i]));
  free(ids);
  json_t *j = json_pack("{s:o}", "identities", a);
  page_fields(j, total, next, &p);
  gg_http_json(resp, 200, j);
}

static void h_identities_create(gg_server *srv, const gg_http_req *req, gg_http_resp *resp,
                                void *user) {
  (void)srv;
  gg_app *app = user;
  json_t *body = NULL;
  if (gg_http_read_json(req, resp, 0, (void **)&body)) return;
  const char *name = json_string_value(json_object_get(body, "name"));
  if (!name) {
    json_decref(body);
    gg_http_error_named(resp, 400, "missing_field", "field 'name' must be a string");
    return;
  }
  gg_gallery *g;
  if (open_gallery(app, resp, &g)) {
    json_decref(body);
    return;
  }
  int64_t id = 0;
  char err[256] = "";
  int rc = gg_gallery_identity_create(g, name, &id, err, sizeof err);
  json_decref(body);
  if (rc == GG_ESTATE) {
    json_t *j = gg_http_error_json(409, "identity_exists", err[0] ? err : "the name exists");
    json_object_set_new(j, "id", json_integer(id));
    gg_http_json(resp, 409, j);
    return;
  }
  if (rc) {
    gg_http_error_rc(resp, rc, "cannot create the identity: %s", err);
    return;
  }
  gg_gallery_identity ident;
  if (gg_gallery_identity_get(g, id, &ident, err, sizeof err)) {
    gg_http_error(resp, 500, "identity %lld vanished: %s", (long long)id, err);
    return;
  }
  gg_http_json(resp, 201, identity_json(&ident));
}

static void h_identity_get(gg_server *srv, const gg_http_req *req, gg_http_resp *resp, void *user) {
  (void)srv;
  gg_app *app = user;
  int64_t id;
  gg_gallery *g;
  if (path_id(req, resp, "id", &id) || open_gallery(app, resp, &g)) return;
  gg_gallery_identity ident;
  char err[256] = "";
  int rc = gg_gallery_identity_get(g, id, &ident, err, sizeof err);
  if (rc) {
    gg_http_error_rc(resp, rc, "identity %lld: %s", (long long)id, err);
    return;
  }
  json_t *j = identity_json(&ident);
  gg_gallery_stats st;
  if (gg_gallery_identity_stats(g, id, &st, err, sizeof err) == 0)
    json_object_set_new(j, "stats",
                        json_pack("{s:I,s:I,s:I}", "events", (json_int_t)st.n_events,
                                  "first_seen_ms", (json_int_t)st.first_seen_ms, "last_seen_ms",
                                  (json_int_t)st.last_seen_ms));
  gg_http_json(resp, 200, j);
}

static void h_identity_patch(gg_server *srv, const gg_http_req *req, gg_http_resp *resp,
                             void *user) {
  (void)srv;
  gg_app *app = user;
  int64_t id;
  if (path_id(req, resp, "id", &id)) return;
  json_t *body = NULL;
  if (gg_http_read_json(req, resp, 0, (void **)&body)) return;
  const char *name = json_string_value(json_object_get(body, "name"));
  gg_gallery *g;
  if (!name) {
    json_decref(body);
    gg_http_error_named(resp, 400, "missing_field", "field 'name' must be a string");
    return;
  }
  if (open_gallery(app, resp, &g)) {
    json_decref(body);
    return;
  }
  gg_gallery_identity other;
  char err[256] = "";
  int merging = gg_gallery_identity_find(g, name, &other, err, sizeof err) == 0 && other.id != id;
  int64_t result = 0;
  int rc = gg_gallery_identity_rename(g, id, name, &result, err, sizeof err);
  json_decref(body);
  if (rc) {
    gg_http_error_rc(resp, rc, "cannot rename identity %lld: %s", (long long)id, err);
    return;
  }
  gg_gallery_identity ident;
  if (gg_gallery_identity_get(g, result, &ident, err, sizeof err)) {
    gg_http_error(resp, 500, "identity %lld vanished: %s", (long long)result, err);
    return;
  }
  json_t *j = identity_json(&ident);
  json_object_set_new(j, "merged", json_boolean(merging));
  if (merging) json_object_set_new(j, "merged_from", json_integer(id));
  gg_http_json(resp, 200, j);
}

static void h_identity_delete(gg_server *srv, const gg_http_req *req, gg_http_resp *resp,
                              void *user) {
  (void)srv;
  gg_app *app = user;
  int64_t id;
  gg_gallery *g;
  if (path_id(req, resp, "id", &id) || open_gallery(app, resp, &g)) return;
  char err[256] = "";
  int rc = gg_gallery_identity_delete(g, id, err, sizeof err);
  if (rc) {
    gg_http_error_rc(resp, rc, "cannot delete identity %lld: %s", (long long)id, err);
    return;
  }
  gg_http_json(resp, 200, json_pack("{s:I,s:b}", "id", (json_int_t)id, "deleted", 1));
}

/* Runs the pipeline with the gate of `preset` and picks the one face to
 * store: ?face=N, else the only face found. -1 with 422 (no face, several,
 * refused by the gate, with the reasons) in resp. */
static int pick_face(gg_app *app, const gg_http_req *req, gg_http_resp *resp,
                     gg_face_quality_preset preset, gg_image *img, gg_pipeline_result *r,
                     int *face) {
  int64_t want = -1;
  if (query_int(req, resp, "face", GG_PIPELINE_MAX_FACES - 1, &want)) return -1;
  if (read_image(app, req, resp, img)) return -1;
  gg_pipeline_request rq;
  gg_pipeline_request_default(&rq);
  gg_face_quality_defaults(preset, &rq.quality);
  rq.also_frame = 1;
  if (run_pipeline(app, req, resp, img, &rq, r)) return -1;
  const char *name = NULL, *msg = NULL;
  char buf[256];
  int idx = -1;
  if (r->n_faces == 0) {
    name = "no_face";
    msg = "no face found in the image";
  } else if (want >= r->n_faces) {
    name = "no_such_face";
    snprintf(buf, sizeof buf, "?face=%lld but the image has %d face(s) (0..%d)", (long long)want,
             r->n_faces, r->n_faces - 1);
    msg = buf;
  } else if (want < 0 && r->n_faces > 1) {
    name = "multiple_faces";
    snprintf(buf, sizeof buf,
             "the image has %d faces; choose one with ?face=N (see POST /api/faces/detect)",
             r->n_faces);
    msg = buf;
  } else {
    idx = want >= 0 ? (int)want : 0;
    if (r->faces[idx].quality.rejected || r->faces[idx].dim <= 0) {
      name = "quality_refused";
      char rs[128];
      snprintf(buf, sizeof buf, "face %d does not pass the %s quality gate: %s", idx,
               preset == GG_FACE_QUALITY_STRICT ? "strict (enrollment)" : "loose",
               gg_face_reject_format(r->faces[idx].quality.rejected, rs, sizeof rs));
      msg = buf;
    }
  }
  if (name) {
    json_t *j = gg_http_error_json(422, name, msg);
    json_object_set_new(j, "device", json_string(r->device));
    json_t *fa = json_array();
    for (int i = 0; i < r->n_faces; i++)
      json_array_append_new(fa, face_json(&r->faces[i], i, 0));
    json_object_set_new(j, "faces", fa);
    if (idx >= 0) json_object_set_new(j, "reasons", reasons_json(r->faces[idx].quality.rejected));
    gg_http_json(resp, 422, j);
    gg_pipeline_result_release(r);
    return -1;
  }
  *face = idx;
  return 0;
}

/* Stores one face of the uploaded image (?face=N, else the only one) for
 * identity :id: an example, through the strict gate, or a negative ("this
 * face is not that person"), through the loose one. 201 with the face. */
static void store_face(gg_app *app, const gg_http_req *req, gg_http_resp *resp, int negative) {
  int64_t id;
  gg_gallery *g;
  if (path_id(req, resp, "id", &id) || strict_precheck(app, req, resp) ||
      open_gallery(app, resp, &g))
    return;
  char err[256] = "";
  gg_gallery_identity ident;
  int rc = gg_gallery_identity_get(g, id, &ident, err, sizeof err);
  if (rc) {
    gg_http_error_rc(resp, rc, "identity %lld: %s", (long long)id, err);
    return;
  }
  gg_image img = {0};
  gg_pipeline_result r;
  int fi = -1;
  if (pick_face(app, req, resp, negative ? GG_FACE_QUALITY_LOOSE : GG_FACE_QUALITY_STRICT, &img, &r,
                &fi)) {
    gg_image_free(&img);
    return;
  }
  const gg_face_result *f = &r.faces[fi];
  int64_t sid = 0;
  if (negative) {
    rc = gg_gallery_negative_add(g, id, f->embedding, f->dim, GG_FACE_EMBED_MODEL, &sid, err,
                                 sizeof err);
  } else {
    void *crop;
    size_t crop_len;
    gg__app_face_crop_jpeg(&img, f, &crop, &crop_len);
    gg_gallery_embedding_in in = {.vec = f->embedding,
                                  .dim = f->dim,
                                  .model = GG_FACE_EMBED_MODEL,
                                  .source = source_of(req),
                                  .crop = crop,
                                  .crop_len = crop_len,
                                  .quality = {.det_score = f->score,
                                              .sharpness = f->quality.sharpness,
                                              .face_px = f->x1 - f->x0}};
    rc = gg_gallery_enroll(g, id, NULL, &in, 1, NULL, &sid, err, sizeof err);
    free(crop);
  }
  if (rc) {
    gg_http_error_rc(resp, rc, "cannot store the %s: %s", negative ? "negative" : "example", err);
  } else {
    json_t *j = result_base(&r, &img);
    json_object_set_new(j, "identity_id", json_integer(id));
    json_object_set_new(j, negative ? "negative_id" : "example_id", json_integer(sid));
    json_object_set_new(j, "face", face_json(f, fi, 0));
    gg_http_json(resp, 201, j);
  }
  gg_pipeline_result_release(&r);
  gg_image_free(&img);
}

/* GET /api/identities/:id/examples/:eid/crop: the stored face crop (JPEG). */
static void h_example_crop(gg_server *srv, const gg_http_req *req, gg_http_resp *resp, void *user) {
  (void)srv;
  int64_t id, eid;
  gg_gallery *g;
  if (path_id(req, resp, "id", &id) || path_id(req, resp, "eid", &eid) ||
      open_gallery(user, resp, &g))
    return;
  char err[256] = "";
  int64_t owner = 0;
  int rc = gg_gallery_embedding_owner(g, eid, &owner, err, sizeof err);
  if (!rc && owner != id) {
    rc = GG_ENOTFOUND;
    snprintf(err, sizeof err, "example %lld does not belong to identity %lld", (long long)eid,
             (long long)id);
  }
  void *jpeg = NULL;
  size_t len = 0;
  if (!rc) rc = gg_gallery_embedding_crop(g, eid, &jpeg, &len, err, sizeof err);
  if (rc) {
    gg_http_error_rc(resp, rc, "%s", err);
    return;
  }
  resp->status = 200;
  resp->content_type = "image/jpeg";
  resp->body = jpeg;
  resp->body_len = len;
}

/* POST /api/identities/:id/examples (image body[, ?face=N][, ?source=camera]). */
static void h_examples_add(gg_server *srv, const gg_http_req *req, gg_http_resp *resp, void *user) {
  (void)srv;
  store_face(user, req, resp, 0);
}

static void list_vectors(gg_app *app, const gg_http_req *req, gg_http_resp *resp, int negatives) {
  int64_t id;
  gg_gallery_page p;
  gg_gallery *g;
  if (path_id(req, resp, "id", &id) || read_page(req, resp, &p) || open_gallery(app, resp, &g))
    return;
  gg_gallery_embedding *es = calloc((size_t)p.limit, sizeof *es);
  if (!es) {
    gg_http_error(resp, 500, "out of memory");
    return;
  }
  int n = 0;
  int64_t next = 0, total = 0;
  char err[256] = "";
  int rc =
      negatives
          ? gg_gallery_negative_list(g, id, &p, es, p.limit, &n, &next, &total, err, sizeof err)
          : gg_gallery_embedding_list(g, id, &p, es, p.limit, &n, &next, &total, err, sizeof err);
  if (rc) {
    free(es);
    gg_http_error_rc(resp, rc, "identity %lld: %s", (long long)id, err);
    return;
  }
  json_t *a = json_array();
  for (int i = 0; i < n; i++) {
    json_t *o = json_pack("{s:I,s:i,s:s,s:I}", "id", (json_int_t)es[i].id, "dim", es[i].dim,
                          "model", es[i].model, "created_ms", (json_int_t)es[i].created_ms);
    if (!negatives) {
      json_object_set_new(o, "source", json_string(gg_gallery_source_name(es[i].source)));
      json_object_set_new(o, "det_score", json_real(es[i].quality.det_score));
      json_object_set_new(o, "sharpness", json_real(es[i].quality.sharpness));
      json_object_set_new(o, "face_px", json_real(es[i].quality.face_px));
      json_object_set_new(o, "has_crop", json_boolean(es[i].crop_len > 0));
    }
    json_array_append_new(a, o);
  }
  free(es);
  json_t *j = json_pack("{s:I,s:o}", "identity_id", (json_int_t)id,
                        negatives ? "negatives" : "examples", a);
  page_fields(j, total, next, &p);
  gg_http_json(resp, 200, j);
}

static void h_examples_list(gg_server *srv, const gg_http_req *req, gg_http_resp *resp,
                            void *user) {
  (void)srv;
  list_vectors(user, req, resp, 0);
}

static void h_negatives_list(gg_server *srv, const gg_http_req *req, gg_http_resp *resp,
                             void *user) {
  (void)srv;
  list_vectors(user, req, resp, 1);
}

/* Deletes one example (negatives 0) or negative of an identity; 404 when
 * it does not belong to the identity. */
static void delete_vector(gg_app *app, const gg_http_req *req, gg_http_resp *resp, int negatives) {
  int64_t id, eid;
  gg_gallery *g;
  if (path_id(req, resp, "id", &id) || path_id(req, resp, "eid", &eid) ||
      open_gallery(app, resp, &g))
    return;
  enum { PAGE = 256 };
  gg_gallery_embedding *es = calloc(PAGE, sizeof *es);
  if (!es) {
    gg_http_error(resp, 500, "out of memory");
    return;
  }
  gg_gallery_page p = {.limit = PAGE};
  int n = 0, found = 0;
  int64_t next = 0;
  char err[256] = "";
  do {
    int rc = negatives
                 ? gg_gallery_negative_list(g, id, &p, es, PAGE, &n, &next, NULL, err, sizeof err)
                 : gg_gallery_embedding_list(g, id, &p, es, PAGE, &n, &next, NULL, err, sizeof err);
    if (rc) {
      free(es);
      gg_http_error_rc(resp, rc, "identity %lld: %s", (long long)id, err);
      return;
    }
    for (int i = 0; i < n; i++)
      if (es[i].id == eid) found = 1;
    p.cursor = next;
  } while (!found && next);
  free(es);
  const char *what = negatives ? "negative" : "example";
  if (!found) {
    gg_http_error(resp, 404, "identity %lld has no %s %lld", (long long)id, what, (long long)eid);
    return;
  }
  int rc = negatives ? gg_gallery_negative_delete(g, eid, err, sizeof err)
                     : gg_gallery_embedding_delete(g, eid, err, sizeof err);
  if (rc) {
    gg_http_error_rc(resp, rc, "cannot delete %s %lld: %s", what, (long long)eid, err);
    return;
  }
  gg_http_json(resp, 200,
               json_pack("{s:I,s:I,s:b}", "identity_id", (json_int_t)id,
                         negatives ? "negative_id" : "example_id", (json_int_t)eid, "deleted", 1));
}

static void h_examples_delete(gg_server *srv, const gg_http_req *req, gg_http_resp *resp,
                              void *user) {
  (void)srv;
  delete_vector(user, req, resp, 0);
}

static void h_negatives_delete(gg_server *srv, const gg_http_req *req, gg_http_resp *resp,
                               void *user) {
  (void)srv;
  delete_vector(user, req, resp, 1);
}

/* POST /api/identities/:id/negatives (image body[, ?face=N]). */
static void h_negatives_add(gg_server *srv, const gg_http_req *req, gg_http_resp *resp,
                            void *user) {
  (void)srv;
  store_face(user, req, resp, 1);
}

/* GET /api/events[?identity=ID|unknown&stream=S&since=MS&limit&offset]. */
static void h_events(gg_server *srv, const gg_http_req *req, gg_http_resp *resp, void *user) {
  (void)srv;
  gg_app *app = user;
  gg_gallery_page p;
  if (read_page(req, resp, &p)) return;
  gg_gallery_event_filter f = {.identity_id = GG_GALLERY_ANY};
  const char *ident = gg_http_query(req, "identity");
  if (ident && !strcmp(ident, "unknown")) {
    f.identity_id = GG_GALLERY_UNKNOWN;
  } else if (ident) {
    int64_t x = 0;
    if (query_int(req, resp, "identity", INT64_MAX / 2, &x)) return;
    f.identity_id = x;
  }
  f.stream = gg_http_query(req, "stream");
  int64_t since = 0;
  if (query_int(req, resp, "since", INT64_MAX / 2, &since)) return;
  f.since_ms = since;
  gg_gallery *g;
  if (open_gallery(app, resp, &g)) return;
  gg_gallery_event *ev = calloc((size_t)p.limit, sizeof *ev);
  if (!ev) {
    gg_http_error(resp, 500, "out of memory");
    return;
  }
  int n = 0;
  int64_t next = 0, total = 0;
  char err[256] = "";
  int rc = gg_gallery_event_list(g, &f, &p, ev, p.limit, &n, &next, &total, err, sizeof err);
  if (rc) {
    free(ev);
    gg_http_error_rc(resp, rc, "cannot list events: %s", err);
    return;
  }
  json_t *a = json_array();
  for (int i = 0; i < n; i++)
    json_array_append_new(
        a, json_pack("{s:I,s:I,s:s,s:o,s:f,s:s,s:[f,f,f,f]}", "id", (json_int_t)ev[i].id, "time_ms",
                     (json_int_t)ev[i].time_ms, "stream", ev[i].stream, "identity_id",
                     ev[i].identity_id ? json_integer(ev[i].identity_id) : json_null(), "score",
                     (double)ev[i].score, "device", ev[i].device, "box", (double)ev[i].box[0],
                     (double)ev[i].box[1], (double)ev[i].box[2], (double)ev[i].box[3]));
  free(ev);
  json_t *j = json_pack("{s:o}", "events", a);
  page_fields(j, total, next, &p);
  gg_http_json(resp, 200, j);
}

void gg__app_register_faces(gg_app *app) {
  gg_server *s = app->srv;
  /* Image routes spend the device; gallery writes are mutating; reads open. */
  gg__server_add_route_access(s, "POST", "/api/detect", GG_ACCESS_SPENDING, h_detect, app);
  gg__server_add_route_access(s, "POST", "/api/faces/detect", GG_ACCESS_SPENDING, h_faces_detect,
                              app);
  gg__server_add_route_access(s, "POST", "/api/faces/embed", GG_ACCESS_SPENDING, h_faces_embed,
                              app);
  gg__server_add_route_access(s, "POST", "/api/recognize", GG_ACCESS_SPENDING, h_recognize, app);
  gg__server_add_route_access(s, "POST", "/api/verify", GG_ACCESS_SPENDING, h_verify, app);
  gg_server_add_route(s, "GET", "/api/identities", h_identities_list, app);
  gg__server_add_route_access(s, "POST", "/api/identities", GG_ACCESS_MUTATING | GG_ACCESS_JSON,
                              h_identities_create, app);
  gg_server_add_route(s, "GET", "/api/identities/:id", h_identity_get, app);
  gg__server_add_route_access(s, "PATCH", "/api/identities/:id",
                              GG_ACCESS_MUTATING | GG_ACCESS_JSON, h_identity_patch, app);
  gg__server_add_route_access(s, "DELETE", "/api/identities/:id", GG_ACCESS_MUTATING,
                              h_identity_delete, app);
  gg_server_add_route(s, "GET", "/api/identities/:id/examples", h_examples_list, app);
  gg__server_add_route_access(s, "POST", "/api/identities/:id/examples", GG_ACCESS_MUTATING,
                              h_examples_add, app);
  gg__server_add_route_access(s, "DELETE", "/api/identities/:id/examples/:eid", GG_ACCESS_MUTATING,
                              h_examples_delete, app);
  gg_server_add_route(s, "GET", "/api/identities/:id/examples/:eid/crop", h_example_crop, app);
  gg_server_add_route(s, "GET", "/api/identities/:id/negatives", h_negatives_list, app);
  gg__server_add_route_access(s, "POST", "/api/identities/:id/negatives", GG_ACCESS_MUTATING,
                              h_negatives_add, app);
  gg__server_add_route_access(s, "DELETE", "/api/identities/:id/negatives/:eid", GG_ACCESS_MUTATING,
                              h_negatives_delete, app);
  gg_server_add_route(s, "GET", "/api/events", h_events, app);
  gg_server_add_route(s, "GET", "/api/streams", h_streams, app);
}
