/* HTTP core on libmicrohttpd: routing, body accumulation and limits. */
#include "gpuguard/core.h"
#include "gpuguard/error.h"
#include "gpuguard/log.h"
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
  int too_large;
} req_state;

const char *gg_http_query(const gg_http_req *req, const char *key) {
  return MHD_lookup_connection_value((struct MHD_Connection *)req->conn, MHD_GET_ARGUMENT_KIND,
                                     key);
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

static enum MHD_Result send_resp(struct MHD_Connection *conn, gg_http_resp *resp) {
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
  enum MHD_Result ret = MHD_queue_response(conn, (unsigned)resp->status, r);
  MHD_destroy_response(r);
  return ret;
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version, const char *upload_data,
                                 size_t *upload_data_size, void **con_cls) {
  gg_server *srv = cls;
  req_state *st = *con_cls;
  if (!st) {
    st = calloc(1, sizeof *st);
    if (!st) return MHD_NO;
    *con_cls = st;
    const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
    if (cl) {
      uint64_t n = strtoull(cl, NULL, 10);
      if (n > srv->cfg.max_body) st->too_large = 1;
    }
    return MHD_YES;
  }
  if (*upload_data_size) {
    size_t n = *upload_data_size;
    *upload_data_size = 0;
    if (st->too_large || st->len + n > srv->cfg.max_body) {
      st->too_large = 1;
      return MHD_YES; /* drain, answer 413 at the end */
    }
    if (st->len + n + 1 > st->cap) {
      size_t cap = st->cap ? st->cap : 4096;
      while (cap < st->len + n + 1)
        cap *= 2;
      char *p = realloc(st->buf, cap);
      if (!p) {
        st->too_large = 1;
        return MHD_YES;
      }
      st->buf = p;
      st->cap = cap;
    }
    memcpy(st->buf + st->len, upload_data, n);
    st->len += n;
    st->buf[st->len] = 0;
    return MHD_YES;
  }

  atomic_fetch_add(&srv->requests_total, 1);
  gg_http_resp resp = {.status = 200, .content_type = "application/json"};
  if (st->too_large) {
    char lim[32];
    gg_http_error(&resp, 413, "request body exceeds the limit of %s (set --max-body)",
                  gg_format_size(srv->cfg.max_body, lim, sizeof lim));
    GG_WARN("HTTP", "%s %s -> 413 body over limit", method, url);
    return send_resp(conn, &resp);
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
  return send_resp(conn, &resp);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
  req_state *st = *con_cls;
  if (st) {
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
  if (s->cfg.threads <= 0) s->cfg.threads = 2;
  if (s->cfg.max_body == 0) s->cfg.max_body = 16u << 20;
  if (s->cfg.conn_timeout_s <= 0) s->cfg.conn_timeout_s = 30;
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
  unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
  if (ai->ai_family == AF_INET6) flags |= MHD_USE_IPv6;
  srv->daemon = MHD_start_daemon(
      flags, (uint16_t)srv->cfg.port, NULL, NULL, on_access, srv, MHD_OPTION_SOCK_ADDR, ai->ai_addr,
      MHD_OPTION_THREAD_POOL_SIZE, (unsigned)srv->cfg.threads, MHD_OPTION_NOTIFY_COMPLETED,
      on_completed, srv, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)srv->cfg.conn_timeout_s,
      MHD_OPTION_CONNECTION_LIMIT, 512u, MHD_OPTION_END);
  freeaddrinfo(ai);
  if (!srv->daemon) {
    GG_ERROR("HTTP",
             "cannot listen on %s:%d (address in use or not permitted); pick another --port",
             srv->host, srv->cfg.port);
    return GG_EIO;
  }
  const union MHD_DaemonInfo *info = MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_BIND_PORT);
  srv->port = info ? info->port : srv->cfg.port;
  GG_INFO("HTTP", "listening on http://%s%s%s:%d (device %s, %d threads)",
          strchr(srv->host, ':') ? "[" : "", srv->host, strchr(srv->host, ':') ? "]" : "",
          srv->port, srv->device_spec, srv->cfg.threads);
  return 0;
}

int gg_server_port(const gg_server *srv) {
  return srv->port;
}

void gg_server_stop(gg_server *srv) {
  if (srv && srv->daemon) {
    MHD_stop_daemon(srv->daemon);
    srv->daemon = NULL;
    GG_INFO("HTTP", "stopped");
  }
}

void gg_server_free(gg_server *srv) {
  if (!srv) return;
  gg_server_stop(srv);
  gg_guard_free(srv->guard);
  free(srv->devlist);
  pthread_mutex_destroy(&srv->devlist_lock);
  free(srv);
}
