/* HTTP core internals: the server object, the router and the access rules.
 * Knows nothing about devices, the guard or models (that is app.h). */
#ifndef GG_SERVER_HTTP_IMPL_H
#define GG_SERVER_HTTP_IMPL_H

#include "gpuguard/server.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define GG_MAX_ROUTES 64
#define GG_ROUTE_PATTERN_MAX 128
#define GG_ROUTE_PARAM_NAME_MAX 32

/* ---- router ------------------------------------------------------------ */

/* How a route pattern matches, in order of precedence (highest last). */
typedef enum gg_route_kind {
  GG_ROUTE_PREFIX = 1, /* last segment "*": the rest of the path */
  GG_ROUTE_PARAM = 2,  /* has ":name" segments */
  GG_ROUTE_EXACT = 3,  /* literal segments only */
} gg_route_kind;

typedef struct gg_route {
  char method[8];
  char pattern[GG_ROUTE_PATTERN_MAX]; /* as registered */
  gg_route_kind kind;
  int n_literal; /* literal segments: the more, the more specific */
  int n_params;
  char params[GG_HTTP_MAX_PARAMS][GG_ROUTE_PARAM_NAME_MAX]; /* names, in order */
  gg_http_handler fn;
  void *user;
} gg_route;

typedef struct gg_router {
  gg_route routes[GG_MAX_ROUTES];
  int n;
  int failed; /* registrations refused: the server will not start */
} gg_router;

/* What gg__router_match found for a request. */
typedef struct gg_route_match {
  const gg_route *route; /* NULL when status is 404 or 405 */
  int status;            /* 0 matched; 404 no route has the path; 405 none has the method */
  char allow[64];        /* for 405: the path's methods, "GET, HEAD, POST" */
  int n_params;
  gg_http_kv params[GG_HTTP_MAX_PARAMS]; /* names borrowed from route, values from buf */
  char *buf;                             /* malloc'd values; gg__route_match_free */
} gg_route_match;

/* Validates and adds a route (see gg_server_add_route for the pattern
 * syntax). 0, GG_EINVAL or GG_ERANGE; a refusal is logged and counted in
 * r->failed. */
int gg__router_add(gg_router *r, const char *method, const char *pattern, gg_http_handler fn,
                   void *user);
/* Finds the route for method and path (decoded, without the query): the
 * most specific pattern that has the method (HEAD falls back to GET), its
 * params in m. Returns m->status: 0, 404, 405; GG_ENOMEM (m->status 500).
 * Free m with gg__route_match_free in every case. */
int gg__router_match(const gg_router *r, const char *method, const char *path, gg_route_match *m);
void gg__route_match_free(gg_route_match *m);

/* ---- request helpers ------------------------------------------------------ */

/* 1 when a Content-Type header value is application/json (parameters such
 * as charset allowed); 0 for NULL or anything else. */
int gg__http_is_json_type(const char *content_type);
/* gg_http_read_json with the Content-Type given (the core reads it from the
 * request; tests pass it without a connection). */
int gg__http_read_json_ct(const gg_http_req *req, const char *content_type, gg_http_resp *resp,
                          size_t max_bytes, void **out);

/* ---- access rules (access.c) ------------------------------------------- */

/* What a route demands of a request before its handler runs (access.c).
 * Routes declare it when they are registered with gg__server_add_route_access;
 * see docs/SECURITY.md, "Access". */
enum {
  GG_ACCESS_SAME_ORIGIN = 1u << 0, /* refuse cross-origin browser requests: 403 */
  GG_ACCESS_KEY_IF_SET = 1u << 1,  /* the API key, when one is configured: 401 */
  GG_ACCESS_KEY = 1u << 2,         /* the API key; none configured: 403 unless
                                    * --insecure-local */
  GG_ACCESS_JSON = 1u << 3,        /* Content-Type: application/json: 415 */
  /* Changes server state (POST /api/device). */
  GG_ACCESS_MUTATING = GG_ACCESS_SAME_ORIGIN | GG_ACCESS_KEY,
  /* Reads nothing private but spends the device (POST /api/infer). */
  GG_ACCESS_SPENDING = GG_ACCESS_SAME_ORIGIN | GG_ACCESS_KEY_IF_SET,
};

typedef struct gg_access_route {
  gg_http_handler fn;
  void *user;
  unsigned need; /* GG_ACCESS_* */
} gg_access_route;

/* ---- the server ------------------------------------------------------------ */

struct gg_server {
  /* The HTTP part of the configuration; the application's strings (device,
   * models, web_dir...) are NULL here: the application keeps its own. */
  gg_server_config cfg;
  char host[64];
  struct MHD_Daemon *daemon;
  struct gg_limits *limits; /* deadlines, shedding, body budget (limits.c) */
  int port;
  gg_router router;

  char api_key[256];                     /* "" when none is configured */
  gg_access_route access[GG_MAX_ROUTES]; /* the routes added with access rules */
  int naccess;

  char label[160]; /* what the "listening on" line says is served, e.g. "device cpu" */
  _Atomic uint64_t requests_total;
  uint64_t started_ns;

  /* Streamed responses in flight (gg_http_stream_begin): all are ended
   * before the daemon stops, which must not find a connection suspended. */
  pthread_mutex_t streams_lock;
  struct gg_http_stream *streams; /* doubly linked through next/prev */
  int streams_stopping;

  /* The application built on this server (app.c): freed by app_free after
   * the daemon has stopped. The core never looks inside. */
  void *app;
  void (*app_free)(void *app);
};

/* Creates the HTTP core from cfg's HTTP fields (defaults filled in, the API
 * key checked): GG_ENOMEM, GG_EINVAL. Routes are added by the application. */
int gg__http_new(const gg_server_config *cfg, gg_server **out);

/* Copies and checks cfg's API key into srv (at gg__http_new). GG_EINVAL,
 * logged, for a key that is too short, too long or not printable. */
int gg__access_init(gg_server *srv, const gg_server_config *cfg);
/* Logs the access policy once the server listens; warns when mutating
 * routes are open (--insecure-local) on a non-loopback address. */
void gg__access_log_policy(const gg_server *srv);
/* Adds a route whose requests must pass the GG_ACCESS_* checks in `need`
 * before fn runs; a refused request gets a JSON error (401, 403 or 415). */
int gg__server_add_route_access(gg_server *srv, const char *method, const char *path, unsigned need,
                                gg_http_handler fn, void *user);

#endif
