/* HTTP core on libmicrohttpd: routing, body accumulation and limits. */
#include "gpuguard/core.h"
#include "gpuguard/error.h"
#include "gpuguard/log.h"
#include "server/limits.h"
#include "server/server-impl.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct req_state {
  char *buf;
  size_t len, cap;
  uint64_t declared; /* Content-Length; 0 when absent or the body is chunked */
  uint64_t reserved; /* bytes held against --max-body-inflight, released when done */
  size_t uri_len;    /* the request target as the client sent it (on_uri) */
  int seen;          /* on_access has had its first call (headers complete) */
  int refuse;        /* 413 or 503: drain the rest of the body, then answer that */
} req_state;

const char *gg_http_query(const gg_http_req *req, const char *key) {
  return MHD_lookup_connection_value((struct MHD_Connection *)req->conn, MHD_GET_ARGUMENT_KIND,
                                     key);
}

const char *gg_http_header(const gg_http_req *req, const char *name) {
  return MHD_lookup_connection_value((struct MHD_Connection *)req->conn, MHD_HEADER_KIND, name);
}

void gg_http_json(gg_http_resp *resp, int status, void *json) {
  json_t *j = json;
  char *s = json_dumps(j, JSON_COMPACT);
  json_decref(j);
  free(resp->body);
  resp->status = s ? status : 500;
  resp->content_type = "application/json";
  resp->body = s ? s : strdup("{\"error\":{\"code\":500,\"message\":\"out of memory\"}}");
  resp->body_len = resp->body ? strlen(resp->body) : 0;
}

void gg_http_error(gg_http_resp *resp, int status, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  gg_http_json(resp, status, json_pack("{s:{s:i,s:s}}", "error", "code", status, "message", msg));
}

static const gg_route *find_route(const gg_server *srv, const char *method, const char *path,
                                  int *path_known) {
  *path_known = 0;
  for (int i = 0; i < srv->nroutes; i++) {
    const gg_route *r = &srv->routes[i];
    int match = r->prefix ? !strncmp(path, r->path, strlen(r->path)) : !strcmp(path, r->path);
    if (!match) continue;
    *path_known = 1;
    if (!strcmp(r->method, method) || (!strcmp(method, "HEAD") && !strcmp(r->method, "GET")))
      return r;
  }
  return NULL;
}

/* Queues resp. early: the request is refused before its body was read, so
 * the connection closes after the answer (the client must not send the body
 * into it). retry_after_s > 0 adds Retry-After. */
static enum MHD_Result send_resp(struct MHD_Connection *conn, gg_http_resp *resp, int early,
                                 int retry_after_s) {
  struct MHD_Response *r =
      MHD_create_response_from_buffer(resp->body_len, resp->body, MHD_RESPMEM_MUST_FREE);
  if (!r) {
    free(resp->body);
    return MHD_NO;
  }
  resp->body = NULL;
  MHD_add_response_header(r, "Content-Type",
                          resp->content_type ? resp->content_type : "application/json");
  MHD_add_response_header(r, "Cache-Control", "no-store");
  /* RFC 9110: a 401 names the scheme that would succeed (access.c). */
  if (resp->status == 401) MHD_add_response_header(r, "WWW-Authenticate", "Bearer");
  if (early) MHD_add_response_header(r, "Connection", "close");
  if (retry_after_s > 0) {
    char s[16];
    snprintf(s, sizeof s, "%d", retry_after_s);
    MHD_add_response_header(r, "Retry-After", s);
  }
  enum MHD_Result ret = MHD_queue_response(conn, (unsigned)resp->status, r);
  MHD_destroy_response(r);
  return ret;
}

/* Seconds a client refused for the body budget is told to wait: bodies held
 * now finish, or meet their deadline, in about that time when the server is
 * merely busy. */
#define GG_BODY_RETRY_AFTER_S 5

/* The JSON answer to a body refused with status 413 or 503. */
static void body_refusal(const gg_server *srv, int status, gg_http_resp *resp) {
  char lim[32];
  if (status == 413) {
    gg_http_error(resp, 413, "request body exceeds the limit of %s (set --max-body)",
                  gg_format_size(srv->cfg.max_body, lim, sizeof lim));
  } else {
    gg_http_error(resp, 503,
                  "the server is holding as many request bodies as it may at once (%s, "
                  "--max-body-inflight); retry in %d s",
                  gg_format_size(srv->cfg.max_body_inflight, lim, sizeof lim),
                  GG_BODY_RETRY_AFTER_S);
  }
}

/* libmicrohttpd calls this with the raw request target as soon as the
 * request line has arrived (MHD_OPTION_URI_LOG_CALLBACK): the one place that
 * sees its length as sent, query string included. The state returned
 * becomes the request's *con_cls. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn) {
  req_state *st = calloc(1, sizeof *st);
  if (st) st->uri_len = strlen(uri);
  return st;
}

/* Checks made once the headers are complete and before any of the body is
 * read. Returns 0 to go on, or fills resp with the refusal (and
 * *retry_after_s for a 503). libmicrohttpd itself refuses only what does not
 * fit its per-connection memory pool, which is sized well above these
 * limits so that the refusals are ours, in JSON. */
static int check_request(gg_server *srv, struct MHD_Connection *conn, const char *version,
                         req_state *st, gg_http_resp *resp, int *retry_after_s) {
  static const struct {
    int status;
    const char *what, *flag, *advice;
  } k_size[] = {
      {414, "the request target", "--max-url-bytes", "send long parameters in the body"},
      {431, "the request line and headers", "--max-header-bytes", "send fewer or shorter headers"},
  };
  const union MHD_ConnectionInfo *hs =
      MHD_get_connection_info(conn, MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE);
  uint64_t size[2] = {st->uri_len, hs ? hs->header_size : 0};
  uint64_t limit[2] = {srv->cfg.max_url, srv->cfg.max_header};
  for (int i = 0; i < 2; i++) {
    if (size[i] <= limit[i]) continue;
    char a[32], b[32];
    gg_http_error(resp, k_size[i].status, "%s is %s, more than the limit of %s (%s); %s",
                  k_size[i].what, gg_format_size(size[i], a, sizeof a),
                  gg_format_size(limit[i], b, sizeof b), k_size[i].flag, k_size[i].advice);
    return 1;
  }
  /* HTTP/1.1 (RFC 9112, 3.2) requires Host; HTTP/1.0 clients may omit it. */
  if (strcmp(version, MHD_HTTP_VERSION_1_0) != 0 &&
      !MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST)) {
    gg_http_error(resp, 400, "%s requests must have a Host header; add \"Host: <host>:<port>\"",
                  version);
    return 1;
  }
  /* libmicrohttpd has already refused a Content-Length that is not a
   * number; a chunked body (Transfer-Encoding wins) has none. */
  const char *cl =
      MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
  if (cl && !MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING))
    st->declared = strtoull(cl, NULL, 10);
  if (st->declared > srv->cfg.max_body) {
    body_refusal(srv, 413, resp);
    return 1;
  }
  /* Hold the whole declared body against the budget now, so that a request
   * that cannot be held is refused before the client sends it. */
  if (st->declared) {
    if (gg__limits_body_reserve(srv->limits, st->declared)) {
      body_refusal(srv, 503, resp);
      *retry_after_s = GG_BODY_RETRY_AFTER_S;
      return 1;
    }
    st->reserved = st->declared;
  }
  return 0;
}

/* Appends n body bytes to st. On a limit it sets st->refuse and frees what
 * was held; the rest of the body is then drained and the refusal sent at
 * the end. */
static void store_body(gg_server *srv, req_state *st, const char *data, size_t n) {
  if (st->len + n > srv->cfg.max_body) {
    st->refuse = 413;
  } else if (st->len + n + 1 > st->cap) {
    size_t cap = st->cap ? st->cap : 4096;
    while (cap < st->len + n + 1)
      cap *= 2;
    uint64_t most = (st->declared ? st->declared : srv->cfg.max_body) + 1;
    if (cap > most) cap = (size_t)most;
    /* A chunked body has no length up front: its reservation grows with
     * its buffer (less the byte for the terminating NUL). */
    if (cap - 1 > st->reserved) {
      if (gg__limits_body_reserve(srv->limits, cap - 1 - st->reserved) == 0)
        st->reserved = cap - 1;
      else
        st->refuse = 503;
    }
    char *p = st->refuse ? NULL : realloc(st->buf, cap);
    if (p) {
      st->buf = p;
      st->cap = cap;
    } else if (!st->refuse) {
      st->refuse = 503; /* out of memory: as busy as it gets */
    }
  }
  if (st->refuse) {
    free(st->buf);
    st->buf = NULL;
    st->len = st->cap = 0;
    gg__limits_body_release(srv->limits, st->reserved);
    st->reserved = 0;
    return;
  }
  memcpy(st->buf + st->len, data, n);
  st->len += n;
  st->buf[st->len] = 0;
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version, const char *upload_data,
                                 size_t *upload_data_size, void **con_cls) {
  gg_server *srv = cls;
  req_state *st = *con_cls;
  if (!st || !st->seen) {
    if (!st) st = calloc(1, sizeof *st);
    if (!st) return MHD_NO;
    *con_cls = st;
    st->seen = 1;
    gg_http_resp resp = {.status = 200, .content_type = "application/json"};
    int retry_after_s = 0;
    if (check_request(srv, conn, version, st, &resp, &retry_after_s)) {
      atomic_fetch_add(&srv->requests_total, 1);
      gg__limits_set_phase(srv->limits, conn, GG_CONN_BUSY);
      /* Debug only: an attack is hundreds of these a second. The reaper
       * logs how many bodies the budget refused. */
      GG_DEBUG("HTTP", "%s %.200s -> %d before the body: %s", method, url, resp.status, resp.body);
      return send_resp(conn, &resp, 1, retry_after_s);
    }
    int body = st->declared || MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                           MHD_HTTP_HEADER_TRANSFER_ENCODING);
    gg__limits_set_phase(srv->limits, conn, body ? GG_CONN_BODY : GG_CONN_BUSY);
    return MHD_YES;
  }
  if (*upload_data_size) {
    size_t n = *upload_data_size;
    *upload_data_size = 0;
    if (!st->refuse) store_body(srv, st, upload_data, n);
    return MHD_YES;
  }

  gg__limits_set_phase(srv->limits, conn, GG_CONN_BUSY);
  atomic_fetch_add(&srv->requests_total, 1);
  gg_http_resp resp = {.status = 200, .content_type = "application/json"};
  if (st->refuse) {
    body_refusal(srv, st->refuse, &resp);
    GG_WARN("HTTP", "%s %s -> %d body refused", method, url, st->refuse);
    return send_resp(conn, &resp, 0, st->refuse == 503 ? GG_BODY_RETRY_AFTER_S : 0);
  }
  int known = 0;
  const gg_route *r = find_route(srv, method, url, &known);
  if (!r) {
    if (known)
      gg_http_error(&resp, 405, "method %s not allowed on %s", method, url);
    else
      gg_http_error(&resp, 404, "no such endpoint: %s %s", method, url);
  } else {
    gg_http_req req = {.method = method,
                       .path = url,
                       .body = st->buf ? st->buf : "",
                       .body_len = st->len,
                       .conn = conn};
    r->fn(srv, &req, &resp, r->user);
    if (!resp.body) gg_http_error(&resp, 500, "handler produced no response");
  }
  GG_DEBUG("HTTP", "%s %s -> %d", method, url, resp.status);
  return send_resp(conn, &resp, 0, 0);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
  gg_server *srv = cls;
  req_state *st = *con_cls;
  /* The connection waits for its next request (keep-alive) or closes. */
  gg__limits_set_phase(srv->limits, conn, GG_CONN_HEADERS);
  if (st) {
    gg__limits_body_release(srv->limits, st->reserved);
    free(st->buf);
    free(st);
    *con_cls = NULL;
  }
}

int gg_server_add_route(gg_server *srv, const char *method, const char *path, gg_http_handler fn,
                        void *user) {
  if (srv->nroutes >= GG_MAX_ROUTES || strlen(path) >= sizeof srv->routes[0].path) return GG_ERANGE;
  gg_route *r = &srv->routes[srv->nroutes++];
  snprintf(r->method, sizeof r->method, "%s", method);
  size_t n = strlen(path);
  r->prefix = n > 0 && path[n - 1] == '*';
  snprintf(r->path, sizeof r->path, "%.*s", (int)(r->prefix ? n - 1 : n), path);
  r->fn = fn;
  r->user = user;
  return 0;
}

/* Loads each model of the comma list through the guard (load + warmup). */
static void preload_models(gg_server *s) {
  char list[sizeof s->models];
  snprintf(list, sizeof list, "%s", s->models);
  char *save = NULL;
  for (char *m = strtok_r(list, ",", &save); m; m = strtok_r(NULL, ",", &save)) {
    while (*m == ' ')
      m++;
    if (!*m) continue;
    uint64_t t0 = gg_now_ns();
    int rc = gg_guard_load(s->guard, m);
    if (rc) {
      snprintf(s->models_error, sizeof s->models_error, "model '%s' failed to load: %s (%s)", m,
               gg_strerror(rc), gg_err_name(rc));
      GG_ERROR("ENG", "%s", s->models_error);
      return;
    }
    GG_INFO("ENG", "model %s loaded and warmed up in %.1f ms", m, (double)(gg_now_ns() - t0) / 1e6);
  }
  atomic_store(&s->models_ready, 1);
}

/* libmicrohttpd's own messages. Under attack it writes one per refused or
 * broken connection, hundreds a second, so they go to the debug log rather
 * than straight to stderr. */
static void on_mhd_log(void *cls, const char *fmt, va_list ap) {
  char msg[512];
  vsnprintf(msg, sizeof msg, fmt, ap);
  size_t n = strlen(msg);
  while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
    msg[--n] = 0;
  GG_DEBUG("HTTP", "libmicrohttpd: %s", msg);
}

/* The defaults of the limits against hostile clients (docs/SECURITY.md). */
static void limits_defaults(gg_server_config *c) {
  if (c->max_conns <= 0) c->max_conns = 512;
  if (c->max_conns_per_ip <= 0) c->max_conns_per_ip = 64;
  if (c->conn_reserve <= 0) c->conn_reserve = 32;
  if (c->conn_reserve >= c->max_conns) c->conn_reserve = c->max_conns / 2;
  if (c->header_timeout_s <= 0) c->header_timeout_s = 10;
  if (c->body_timeout_s <= 0) c->body_timeout_s = 60;
  if (c->max_body_inflight == 0) c->max_body_inflight = 64u << 20;
  if (c->max_url == 0) c->max_url = 8u << 10;
  if (c->max_header == 0) c->max_header = 16u << 10;
  if (c->max_body_inflight < c->max_body) {
    char a[32], b[32];
    GG_WARN("HTTP",
            "--max-body-inflight %s is below --max-body %s; raised to %s so that one "
            "largest request fits",
            gg_format_size(c->max_body_inflight, a, sizeof a),
            gg_format_size(c->max_body, b, sizeof b), b);
    c->max_body_inflight = c->max_body;
  }
}

int gg_server_new(const gg_server_config *cfg, gg_server **out) {
  gg_server *s = calloc(1, sizeof *s);
  if (!s) return GG_ENOMEM;
  s->cfg = *cfg;
  snprintf(s->host, sizeof s->host, "%s", cfg->host && *cfg->host ? cfg->host : "127.0.0.1");
  snprintf(s->device_spec, sizeof s->device_spec, "%s",
           cfg->device && *cfg->device ? cfg->device : "cpu");
  snprintf(s->models_dir, sizeof s->models_dir, "%s", cfg->models_dir ? cfg->models_dir : "");
  snprintf(s->web_dir, sizeof s->web_dir, "%s", cfg->web_dir ? cfg->web_dir : "");
  snprintf(s->fallback, sizeof s->fallback, "%s", cfg->fallback ? cfg->fallback : "");
  snprintf(s->models, sizeof s->models, "%s", cfg->models ? cfg->models : "");
  snprintf(s->faults, sizeof s->faults, "%s", cfg->faults ? cfg->faults : "");
  s->cfg.host = s->host;
  s->cfg.device = s->device_spec;
  s->cfg.models_dir = s->models_dir;
  s->cfg.web_dir = s->web_dir;
  s->cfg.fallback = s->fallback;
  s->cfg.models = s->models;
  s->cfg.faults = s->faults;
  if (gg__access_init(s, cfg)) {
    free(s);
    return GG_EINVAL;
  }
  if (s->cfg.threads <= 0) s->cfg.threads = 2;
  if (s->cfg.max_body == 0) s->cfg.max_body = 16u << 20;
  if (s->cfg.conn_timeout_s <= 0) s->cfg.conn_timeout_s = 30;
  limits_defaults(&s->cfg);
  if (s->cfg.engine_threads <= 0) s->cfg.engine_threads = 1;
  pthread_mutex_init(&s->devlist_lock, NULL);
  s->started_ns = gg_now_ns();
  if (s->models_dir[0]) setenv("GPUGUARD_MODELS_DIR", s->models_dir, 0);

  /* The device chain: the primary, with sim faults folded into its spec,
   * then each fallback. */
  gg_guard_config gc;
  gg_guard_config_init(&gc);
  char store[1024];
  if (gg_guard_config_chain(&gc, s->device_spec, s->faults, s->fallback, store, sizeof store)) {
    GG_ERROR("GPU", "device chain '%s' + '%s' is too long", s->device_spec, s->fallback);
    pthread_mutex_destroy(&s->devlist_lock);
    free(s);
    return GG_EINVAL;
  }
  char runner_arg[32];
  snprintf(runner_arg, sizeof runner_arg, "threads=%d", s->cfg.engine_threads);
  gc.runner = "engine";
  gc.runner_arg = runner_arg;
  if (s->cfg.retries >= 0) gc.retries = s->cfg.retries;
  if (s->cfg.cleanup_every > 0) gc.cleanup_every = s->cfg.cleanup_every;
  if (s->cfg.watchdog_ms > 0) gc.watchdog_ms = s->cfg.watchdog_ms;
  gc.isolate = s->cfg.isolate;
  gc.mem_budget = s->cfg.mem_limit;
  int rc = gg_guard_new(&gc, &s->guard);
  if (rc) {
    GG_ERROR("GPU", "cannot set up device '%s': %s (%s); try --device cpu", gc.devices[0],
             gg_strerror(rc), gg_err_name(rc));
    pthread_mutex_destroy(&s->devlist_lock);
    free(s);
    return rc;
  }
  preload_models(s);
  gg__server_register_api(s);
  gg__server_register_static(s);
  *out = s;
  return 0;
}

int gg_server_start(gg_server *srv) {
  struct addrinfo hints = {.ai_flags = AI_NUMERICHOST | AI_PASSIVE, .ai_socktype = SOCK_STREAM};
  struct addrinfo *ai = NULL;
  char port[16];
  snprintf(port, sizeof port, "%d", srv->cfg.port);
  if (getaddrinfo(srv->host, port, &hints, &ai) != 0 || !ai) {
    GG_ERROR("HTTP", "listen address '%s' is not a numeric IPv4/IPv6 address", srv->host);
    return GG_EINVAL;
  }
  if (!srv->limits && gg__limits_new(&srv->cfg, &srv->limits)) {
    freeaddrinfo(ai);
    return GG_ENOMEM;
  }
  /* libmicrohttpd answers a request line or header block that does not fit
   * a connection's memory pool itself, in HTML. Twice the header limit (the
   * parsed headers take room beside their text) plus room for the body's
   * read buffer keeps that out of reach of anything up to our own limits,
   * which answer in JSON. Pages of the pool are touched only as used. */
  size_t pool = (size_t)srv->cfg.max_header * 2 + (32u << 10);
  unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
  if (ai->ai_family == AF_INET6) flags |= MHD_USE_IPv6;
  /* The logger goes first: libmicrohttpd uses it from the next option on. */
  srv->daemon = MHD_start_daemon(
      flags, (uint16_t)srv->cfg.port, NULL, NULL, on_access, srv, MHD_OPTION_EXTERNAL_LOGGER,
      on_mhd_log, srv, MHD_OPTION_SOCK_ADDR, ai->ai_addr, MHD_OPTION_THREAD_POOL_SIZE,
      (unsigned)srv->cfg.threads, MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
      MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)srv->cfg.conn_timeout_s, MHD_OPTION_CONNECTION_LIMIT,
      (unsigned)srv->cfg.max_conns, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
      (unsigned)srv->cfg.max_conns_per_ip, MHD_OPTION_CONNECTION_MEMORY_LIMIT, pool,
      MHD_OPTION_NOTIFY_CONNECTION, gg__limits_on_connection, srv->limits,
      MHD_OPTION_URI_LOG_CALLBACK, on_uri, srv, MHD_OPTION_END);
  freeaddrinfo(ai);
  if (!srv->daemon) {
    GG_ERROR("HTTP",
             "cannot listen on %s:%d (address in use or not permitted); pick another --port",
             srv->host, srv->cfg.port);
    return GG_EIO;
  }
  if (gg__limits_start(srv->limits)) {
    GG_ERROR("HTTP", "cannot start the connection reaper thread (out of memory or threads)");
    gg_server_stop(srv);
    return GG_ENOMEM;
  }
  const union MHD_DaemonInfo *info = MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_BIND_PORT);
  srv->port = info ? info->port : srv->cfg.port;
  GG_INFO("HTTP", "listening on http://%s%s%s:%d (device %s, %d threads)",
          strchr(srv->host, ':') ? "[" : "", srv->host, strchr(srv->host, ':') ? "]" : "",
          srv->port, srv->device_spec, srv->cfg.threads);
  gg__access_log_policy(srv);
  return 0;
}

int gg_server_port(const gg_server *srv) {
  return srv->port;
}

void gg_server_stop(gg_server *srv) {
  if (srv && srv->daemon) {
    MHD_stop_daemon(srv->daemon);
    srv->daemon = NULL;
    gg__limits_stop(srv->limits);
    GG_INFO("HTTP", "stopped");
  }
}

void gg_server_free(gg_server *srv) {
  if (!srv) return;
  gg_server_stop(srv);
  gg__limits_free(srv->limits);
  gg_guard_free(srv->guard);
  free(srv->devlist);
  pthread_mutex_destroy(&srv->devlist_lock);
  free(srv);
}
