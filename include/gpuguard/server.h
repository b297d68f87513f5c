/* gpuguard HTTP service: the HTTP core (routes, JSON bodies and errors, limits)
 * and the application on it (device and memory state, inference). */
#ifndef GPUGUARD_SERVER_H
#define GPUGUARD_SERVER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gg_server gg_server;

typedef struct gg_server_config {
  const char *host;        /* listen address; "127.0.0.1" unless told otherwise */
  int port;                /* 0 picks an ephemeral port (see gg_server_port) */
  int threads;             /* HTTP worker threads */
  uint64_t max_body;       /* request bodies above this get 413 */
  const char *device;      /* device spec the service runs on: "cpu", "sim:mem=4560M" */
  const char *models_dir;  /* where the model packages were unpacked */
  double stream_rate;      /* face recognition passes per second per stream; 0 = unlimited */
  int strict;              /* 1: face routes answer 503 instead of serving from a fallback
                            * device (?strict=0 per request overrides) */
  const char *data_dir;    /* face gallery folder; NULL/"" = gg_gallery_data_dir's default
                            * (GPUGUARD_DATA_DIR, ~/.local/share/gpuguard), created on
                            * first use */
  const char *web_dir;     /* static pages; NULL/"" serves none */
  int cluster_unknowns;    /* 1: unknown faces of streams are grouped into anonymous
                            * identities ("unknown-7"); off by default: it stores
                            * biometric data of people who did not agree to it */
  const char *mqtt_url;    /* publish events to this broker: mqtt://[user[:pass]@]host[:port];
                            * NULL/"" publishes nothing (see docs/mqtt.md) */
  const char *mqtt_prefix; /* topic prefix; NULL/"" = "gpuguard" */
  int conn_timeout_s;      /* idle connection timeout */
  const char *fallback;    /* comma list of devices tried after `device` ("cpu"); "" none */
  const char *models;      /* comma list of models loaded at start ("" loads lazily) */
  const char *faults;      /* sim fault SPEC applied to a sim primary device */
  uint64_t mem_limit;      /* per-device memory budget for non-cpu devices; 0 = all */
  int retries;             /* extra attempts per device (guard policy) */
  int cleanup_every;       /* trim device pools every N requests */
  int isolate;             /* 1: GPU work in a supervised worker process (default) */
  int watchdog_ms;         /* a GPU run longer than this is a hang */
  int engine_threads;      /* CPU threads per inference */
  uint64_t max_pixels;     /* images larger than this get 413 */
  const char *api_key;     /* key mutating routes and /api/infer require; NULL/"" none
                            * (see docs/SECURITY.md, "Access") */
  int insecure_local;      /* 1: without api_key, mutating routes answer anyway */
  /* Limits against hostile clients (docs/SECURITY.md, "Limits"); 0 = default. */
  int max_conns;              /* open connections at most (512) */
  int max_conns_per_ip;       /* open connections per client address (64) */
  int conn_reserve;           /* free slots kept by shedding stalled connections (32) */
  int header_timeout_s;       /* request line + headers must arrive within this (10) */
  int body_timeout_s;         /* the body must arrive within this after them (60) */
  uint64_t max_body_inflight; /* request-body bytes held at once, all requests (64 MiB) */
  uint64_t max_url;           /* longer request targets get 414 (8 KiB) */
  uint64_t max_header;        /* larger request line + headers get 431 (16 KiB) */
  /* Generations (docs/generate.md, "Limits"); 0 = default. */
  int gen_max_output;            /* output width and height at most (8192) */
  uint64_t gen_max_input_pixels; /* input pixels at most (4096 x 4096), or max_pixels when
                                  * lower */
  int gen_queue;                 /* queued generations at most, the running one not counted (8) */
  int gen_keep;                  /* finished generations kept, memory and <data_dir>/generations
                                  * (16) */
} gg_server_config;

/* Most `:param` segments a route pattern may have. */
#define GG_HTTP_MAX_PARAMS 8

/* A path parameter a route pattern captured ("/api/identities/:id" matched
 * against "/api/identities/7" gives {"id", "7"}). Borrowed. */
typedef struct gg_http_kv {
  const char *name;
  const char *value;
} gg_http_kv;

/* An incoming request, borrowed for the duration of a handler call. */
typedef struct gg_http_req {
  const char *method;
  const char *path;        /* without query string */
  const char *body;        /* NUL-terminated copy of the body (may contain NULs) */
  size_t body_len;
  void *conn;              /* opaque; use gg_http_query() */
  int n_params;            /* path parameters the route captured; use gg_http_param() */
  gg_http_kv params[GG_HTTP_MAX_PARAMS];
} gg_http_req;

/* A response a handler fills. body is malloc'd and owned by the server after
 * the handler returns. */
typedef struct gg_http_resp {
  int status;
  const char *content_type; /* static string */
  char *body;
  size_t body_len;
  int retry_after_s; /* > 0: a Retry-After header (429, 503) */
  struct gg_http_stream *stream; /* set by gg_http_stream_begin: a streamed body */
} gg_http_resp;

typedef void (*gg_http_handler)(gg_server *srv, const gg_http_req *req, gg_http_resp *resp,
                                void *user);

/* Value of a query parameter, or NULL. Borrowed. */
const char *gg_http_query(const gg_http_req *req, const char *key);
/* Value of a request header (name case-insensitive), or NULL. Borrowed. */
const char *gg_http_header(const gg_http_req *req, const char *name);
/* Value of the path parameter `name` the route's pattern captured (":name"),
 * percent-decoded; NULL when the pattern has none of that name. Borrowed. */
const char *gg_http_param(const gg_http_req *req, const char *name);

/* Every error a handler answers has one shape:
 *   {"error": {"code": <HTTP status>, "name": "<name>", "message": "..."}}
 * where name is a gg_err name ("GG_EDEV_OOM") when a library call failed, or
 * a short snake_case word ("not_found", "invalid_json") otherwise. */

/* Fills resp with the error body for `status`; the name is the status's
 * own (400 "bad_request", 404 "not_found", ... see gg_http_status_name). */
void gg_http_error(gg_http_resp *resp, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Same, with an explicit name (a static or borrowed string, copied). */
void gg_http_error_named(gg_http_resp *resp, int status, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* For a failed library call: status from gg_http_status_for(rc), name
 * gg_err_name(rc). */
void gg_http_error_rc(gg_http_resp *resp, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The one map from a gg_err code to an HTTP status: the caller's fault
 * (GG_EINVAL, GG_EPARSE, GG_ERANGE: 400; GG_ENOTFOUND: 404; GG_ETOO_LARGE:
 * 413; GG_ESTATE: 409), the server's load (GG_EBUSY: 429), not built in
 * (GG_ENOTIMPL: 501), everything else (device, memory, driver, timeouts): 503.
 * 0 gives 200. */
int gg_http_status_for(int rc);
/* The snake_case name of an HTTP status used in error bodies ("not_found");
 * "error" for a status without one. Never NULL. */
const char *gg_http_status_name(int status);
/* The error body as a jansson json_t* (new reference), for handlers that add
 * fields beside "error" before gg_http_json. NULL on out of memory. */
void *gg_http_error_json(int status, const char *name, const char *message);
/* Takes a jansson json_t* (steals the reference) and serialises it into resp. */
void gg_http_json(gg_http_resp *resp, int status, void *json);

/* ---- streamed responses ------------------------------------------------
 * A handler whose body is produced over time (Server-Sent Events) answers
 * with gg_http_stream_begin instead of a body. The core then asks `read`
 * for bytes on an HTTP worker thread; read must never block: when it has
 * nothing yet it returns 0 and the connection is suspended (it holds no
 * thread) until the producer calls gg_http_stream_wake. The body is sent
 * chunked (HTTP/1.1) or until close (HTTP/1.0). */
typedef struct gg_http_stream gg_http_stream;

/* Copies up to max bytes of the body into buf. Returns the bytes copied
 * (> 0), 0 when nothing is ready yet (the connection sleeps until the next
 * gg_http_stream_wake), or -1 when the body is complete. */
typedef long (*gg_http_stream_read_fn)(void *user, char *buf, size_t max);
/* Called exactly once when the response is over (body complete, client
 * gone, server stopping, or the response could not be sent); user is not
 * used after it. gg_http_stream_wake must not be called once it has begun:
 * serialise the two with a lock of the producer's. */
typedef void (*gg_http_stream_close_fn)(void *user);

/* Makes resp a streamed response (status 200, content_type a static
 * string, Cache-Control: no-store). *out (may be NULL) is the handle for
 * gg_http_stream_wake, valid until close is called. Returns 0, or
 * GG_ENOMEM with a 500 in resp (close is then called before returning). */
int gg_http_stream_begin(gg_http_resp *resp, const char *content_type, gg_http_stream_read_fn read,
                         gg_http_stream_close_fn close, void *user, gg_http_stream **out);
/* Tells the core that read has more to give: resumes the suspended
 * connection, or makes the next read try again. Thread-safe; cheap when
 * nothing sleeps. When the server stops, every stream is ended (read is no
 * longer called; close is). */
void gg_http_stream_wake(gg_http_stream *s);

/* Limits of gg_http_read_json: larger bodies get 413, deeper nesting 400. */
#define GG_HTTP_JSON_MAX_BYTES (64u << 10)
#define GG_HTTP_JSON_MAX_DEPTH 32

/* The one JSON body reader. Parses req's body as a JSON object: it must come
 * with Content-Type: application/json (else 415 "unsupported_media_type"),
 * be at most max_bytes (0: GG_HTTP_JSON_MAX_BYTES; else 413
 * "body_too_large"), nest at most GG_HTTP_JSON_MAX_DEPTH deep (400
 * "json_too_deep"), parse (400 "invalid_json", duplicate keys included) and
 * be an object (400 "not_a_json_object"). Returns 0 with *out a jansson
 * json_t* the caller json_decref's, or -1 with the error body in resp and
 * *out NULL. */
int gg_http_read_json(const gg_http_req *req, gg_http_resp *resp, size_t max_bytes, void **out);

/* Creates the server (does not listen yet). Copies what it needs from cfg.
 * Opens the configured device; GG_ENODEV / GG_EINVAL for a bad spec. */
int gg_server_new(const gg_server_config *cfg, gg_server **out);
/* Adds a route. The pattern is matched per '/'-separated segment: a
 * literal segment matches itself, ":name" ([a-z_][a-z0-9_]*, up to 31
 * characters, unique in the pattern) matches any one non-empty segment
 * (read with gg_http_param), and a final "*" segment matches the rest of the
 * path (a prefix route). An exact route wins over a :param route, which wins
 * over a prefix route (then more literal segments win); HEAD is served by the
 * GET route. `user` is passed to fn on every call. Returns 0, GG_EINVAL
 * (malformed method or pattern: empty segment, bad :param name, '*' not
 * last, or the same method and pattern twice) or GG_ERANGE (too many routes,
 * pattern too long), logged; after a failed registration gg_server_start
 * refuses to start. After gg_server_start: GG_ESTATE, nothing added. */
int gg_server_add_route(gg_server *srv, const char *method, const char *path,
                        gg_http_handler fn, void *user);
/* Starts listening. Returns GG_EIO when the address cannot be bound, and
 * GG_EINVAL when a route registration failed (see gg_server_add_route). */
int gg_server_start(gg_server *srv);
/* Actual port after start (useful with port 0). */
int gg_server_port(const gg_server *srv);
/* Stops accepting, finishes in-flight requests, then returns. */
void gg_server_stop(gg_server *srv);
void gg_server_free(gg_server *srv);

#ifdef __cplusplus
}
#endif
#endif
