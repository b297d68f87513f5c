/* HTTP core on libmicrohttpd: routing with :param segments, the JSON body
 * reader, the gg_err -> HTTP status map and the one error body, body
 * accumulation and limits. The application (app.c) registers its routes on
 * it; nothing here knows about devices or models. */
#include "gpuguard/core.h"
#include "gpuguard/error.h"
#include "gpuguard/log.h"
#include "server/http-impl.h"
#include "server/limits.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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
  if (!req->conn) return NULL;
  return MHD_lookup_connection_value((struct MHD_Connection *)req->conn, MHD_GET_ARGUMENT_KIND,
                                     key);
}

const char *gg_http_header(const gg_http_req *req, const char *name) {
  if (!req->conn) return NULL;
  return MHD_lookup_connection_value((struct MHD_Connection *)req->conn, MHD_HEADER_KIND, name);
}

const char *gg_http_param(const gg_http_req *req, const char *name) {
  for (int i = 0; req && name && i < req->n_params; i++)
    if (!strcmp(req->params[i].name, name)) return req->params[i].value;
  return NULL;
}

/* ---- errors ------------------------------------------------------------------ */

int gg_http_status_for(int rc) {
  switch (rc) {
  case GG_OK: return 200;
  case GG_EPARSE:
  case GG_EINVAL:
  case GG_ERANGE: return 400;
  case GG_ENOTFOUND: return 404;
  case GG_ESTATE: return 409;
  case GG_ETOO_LARGE: return 413;
  case GG_EBUSY: return 429;
  case GG_ENOTIMPL: return 501;
  /* The device, its memory, its driver, the host running out: the request
   * may succeed later or elsewhere. */
  default: return 503;
  }
}

const char *gg_http_status_name(int status) {
  switch (status) {
  case 400: return "bad_request";
  case 401: return "unauthorized";
  case 403: return "forbidden";
  case 404: return "not_found";
  case 405: return "method_not_allowed";
  case 409: return "conflict";
  case 413: return "body_too_large";
  case 414: return "uri_too_long";
  case 415: return "unsupported_media_type";
  case 429: return "too_many_requests";
  case 431: return "headers_too_large";
  case 500: return "internal_error";
  case 501: return "not_implemented";
  case 503: return "unavailable";
  case 504: return "timeout";
  default: return "error";
  }
}

void *gg_http_error_json(int status, const char *name, const char *message) {
  return json_pack("{s:{s:i,s:s,s:s}}", "error", "code", status, "name",
                   name ? name : gg_http_status_name(status), "message", message ? message : "");
}

void gg_http_json(gg_http_resp *resp, int status, void *json) {
  json_t *j = json;
  char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
  json_decref(j);
  free(resp->body);
  resp->status = s ? status : 500;
  resp->content_type = "application/json";
  resp->body = s ? s
                 : strdup("{\"error\":{\"code\":500,\"name\":\"internal_error\",\"message\":\"out "
                          "of memory\"}}");
  resp->body_len = resp->body ? strlen(resp->body) : 0;
}

static void error_v(gg_http_resp *resp, int status, const char *name, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));
static void error_v(gg_http_resp *resp, int status, const char *name, const char *fmt, va_list ap) {
  char msg[512];
  vsnprintf(msg, sizeof msg, fmt, ap);
  gg_http_json(resp, status, gg_http_error_json(status, name, msg));
}

void gg_http_error(gg_http_resp *resp, int status, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  error_v(resp, status, NULL, fmt, ap);
  va_end(ap);
}

void gg_http_error_named(gg_http_resp *resp, int status, const char *name, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  error_v(resp, status, name, fmt, ap);
  va_end(ap);
}

void gg_http_error_rc(gg_http_resp *resp, int rc, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  error_v(resp, gg_http_status_for(rc), gg_err_name(rc), fmt, ap);
  va_end(ap);
}

/* ---- the JSON body reader -------------------------------------------------- */

int gg__http_is_json_type(const char *ct) {
  if (!ct) return 0;
  ct += strspn(ct, " \t");
  size_t n = strcspn(ct, "; \t");
  return n == strlen("application/json") && !strncasecmp(ct, "application/json", n);
}

/* Deepest nesting of arrays and objects in text (strings skipped), counted
 * before parsing so a hostile body cannot make the parser recurse deep. */
static int json_depth(const char *s, size_t n) {
  int depth = 0, most = 0, in_str = 0;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (in_str) {
      if (c == '\\')
        i++;
      else if (c == '"')
        in_str = 0;
    } else if (c == '"') {
      in_str = 1;
    } else if (c == '{' || c == '[') {
      if (++depth > most) most = depth;
    } else if ((c == '}' || c == ']') && depth > 0) {
      depth--;
    }
  }
  return most;
}

int gg__http_read_json_ct(const gg_http_req *req, const char *ct, gg_http_resp *resp,
                          size_t max_bytes, void **out) {
  *out = NULL;
  if (!max_bytes) max_bytes = GG_HTTP_JSON_MAX_BYTES;
  if (!gg__http_is_json_type(ct)) {
    gg_http_error_named(resp, 415, "unsupported_media_type",
                        "%s %s takes a JSON body: send 'Content-Type: application/json' (got "
                        "%s%.60s%s)",
                        req->method, req->path, ct ? "'" : "no Content-Type", ct ? ct : "",
                        ct ? "'" : "");
    return -1;
  }
  if (req->body_len > max_bytes) {
    char a[32], b[32];
    gg_http_error_named(
        resp, 413, "body_too_large", "the JSON body is %s, more than the %s this route takes",
        gg_format_size(req->body_len, a, sizeof a), gg_format_size(max_bytes, b, sizeof b));
    return -1;
  }
  int depth = json_depth(req->body, req->body_len);
  if (depth > GG_HTTP_JSON_MAX_DEPTH) {
    gg_http_error_named(resp, 400, "json_too_deep",
                        "the JSON body nests %d levels deep; at most %d are accepted", depth,
                        GG_HTTP_JSON_MAX_DEPTH);
    return -1;
  }
  json_error_t e;
  json_t *j = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &e);
  if (!j) {
    gg_http_error_named(resp, 400, "invalid_json",
                        "the body is not valid JSON: %s (line %d, column %d)", e.text, e.line,
                        e.column);
    return -1;
  }
  if (!json_is_object(j)) {
    json_decref(j);
    gg_http_error_named(resp, 400, "not_a_json_object",
                        "the body must be a JSON object ({...}), not an array or a bare value");
    return -1;
  }
  *out = j;
  return 0;
}

int gg_http_read_json(const gg_http_req *req, gg_http_resp *resp, size_t max_bytes, void **out) {
  return gg__http_read_json_ct(req, gg_http_header(req, "Content-Type"), resp, max_bytes, out);
}

/* ---- router ------------------------------------------------------------------ */

static const char *const k_methods[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"};

static int valid_param_name(const char *s, size_t n) {
  if (n == 0 || n >= GG_ROUTE_PARAM_NAME_MAX) return 0;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    int ok = (c >= 'a' && c <= 'z') || c == '_' || (i > 0 && c >= '0' && c <= '9');
    if (!ok) return 0;
  }
  return 1;
}

/* Parses pattern into rt (kind, literals, param names). 0, or -1 with why. */
static int parse_pattern(const char *pattern, gg_route *rt, char *why, size_t whylen) {
  size_t len = strlen(pattern);
  if (pattern[0] != '/') return snprintf(why, whylen, "it must start with '/'"), -1;
  if (len >= sizeof rt->pattern)
    return snprintf(why, whylen, "longer than %zu characters", sizeof rt->pattern - 1), -1;
  memcpy(rt->pattern, pattern, len + 1);
  rt->kind = GG_ROUTE_EXACT;
  rt->n_literal = rt->n_params = 0;
  if (!strcmp(pattern, "/")) return 0;
  const char *p = pattern + 1;
  for (;;) {
    size_t n = strcspn(p, "/");
    int last = p[n] == 0;
    if (n == 0)
      return snprintf(why, whylen, "empty segment at offset %zu", (size_t)(p - pattern)), -1;
    if (memchr(p, '*', n)) {
      if (n != 1 || !last)
        return snprintf(why, whylen, "'*' must be the whole last segment (\"/web/*\")"), -1;
      /* With or without params before it: a prefix route (lowest). */
      rt->kind = GG_ROUTE_PREFIX;
      return 0;
    }
    if (p[0] == ':') {
      if (!valid_param_name(p + 1, n - 1))
        return snprintf(why, whylen,
                        "parameter ':%.*s' must be [a-z_][a-z0-9_]* and shorter than %d",
                        (int)n - 1, p + 1, GG_ROUTE_PARAM_NAME_MAX),
               -1;
      if (rt->n_params >= GG_HTTP_MAX_PARAMS)
        return snprintf(why, whylen, "more than %d parameters", GG_HTTP_MAX_PARAMS), -1;
      for (int i = 0; i < rt->n_params; i++)
        if (strlen(rt->params[i]) == n - 1 && !memcmp(rt->params[i], p + 1, n - 1))
          return snprintf(why, whylen, "parameter ':%.*s' appears twice", (int)n - 1, p + 1), -1;
      memcpy(rt->params[rt->n_params], p + 1, n - 1);
      rt->params[rt->n_params][n - 1] = 0;
      rt->n_params++;
      rt->kind = GG_ROUTE_PARAM;
    } else {
      rt->n_literal++;
    }
    if (last) return 0;
    p += n + 1;
  }
}

/* 1 when both patterns match the same paths (parameter names aside). */
static int same_shape(const char *a, const char *b) {
  while (*a && *b) {
    if (*a == ':' && (a[-1] == '/') && *b == ':' && b[-1] == '/') {
      a += strcspn(a, "/");
      b += strcspn(b, "/");
      continue;
    }
    if (*a != *b) return 0;
    a++, b++;
  }
  return *a == *b;
}

int gg__router_add(gg_router *r, const char *method, const char *pattern, gg_http_handler fn,
                   void *user) {
  char why[160] = "";
  int rc = GG_EINVAL;
  gg_route rt;
  memset(&rt, 0, sizeof rt);
  int known = 0;
  for (size_t i = 0; method && i < sizeof k_methods / sizeof k_methods[0]; i++)
    known |= !strcmp(method, k_methods[i]);
  if (!pattern) pattern = "";
  if (!known) {
    snprintf(why, sizeof why, "unknown method (GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS)");
  } else if (!fn) {
    snprintf(why, sizeof why, "no handler");
  } else if (parse_pattern(pattern, &rt, why, sizeof why) == 0) {
    rc = 0;
    for (int i = 0; i < r->n && !rc; i++) {
      if (!strcmp(r->routes[i].method, method) && same_shape(r->routes[i].pattern, pattern)) {
        snprintf(why, sizeof why, "%s %s is already registered", method, r->routes[i].pattern);
        rc = GG_EINVAL;
      }
    }
    if (!rc && r->n >= GG_MAX_ROUTES) {
      snprintf(why, sizeof why, "more than %d routes (GG_MAX_ROUTES)", GG_MAX_ROUTES);
      rc = GG_ERANGE;
    }
  } else if (strlen(pattern) >= sizeof rt.pattern) {
    rc = GG_ERANGE;
  }
  if (rc) {
    r->failed++;
    GG_ERROR("HTTP", "route %.8s %.200s refused: %s; the server will not start",
             method ? method : "(null)", pattern, why);
    return rc;
  }
  snprintf(rt.method, sizeof rt.method, "%s", method);
  rt.fn = fn;
  rt.user = user;
  r->routes[r->n++] = rt;
  return 0;
}

/* Matches path against rt's pattern. On a match fills vals[i] (offset and
 * length of each param's value in path) and returns 1. */
static int match_one(const gg_route *rt, const char *path, size_t voff[], size_t vlen[]) {
  const char *p = rt->pattern, *q = path;
  if (*q != '/') return 0;
  if (!strcmp(p, "/")) return !strcmp(q, "/");
  int np = 0;
  p++, q++;
  for (;;) {
    size_t pn = strcspn(p, "/"), qn = strcspn(q, "/");
    if (pn == 1 && p[0] == '*') return 1; /* the rest, even empty */
    if (p[0] == ':') {
      if (qn == 0) return 0;
      voff[np] = (size_t)(q - path);
      vlen[np] = qn;
      np++;
    } else if (pn != qn || memcmp(p, q, pn)) {
      return 0;
    }
    p += pn, q += qn;
    if (!*p) return !*q;
    if (*q != '/') return 0; /* the pattern goes on, the path does not */
    p++, q++;
  }
}

/* Higher is more specific: kind first, then literal segments, then (for
 * prefix routes) the longer prefix. */
static long specificity(const gg_route *rt) {
  return (long)rt->kind * 1000000L + (long)rt->n_literal * 1000L + (long)strlen(rt->pattern);
}

int gg__router_match(const gg_router *r, const char *method, const char *path, gg_route_match *m) {
  memset(m, 0, sizeof *m);
  const gg_route *best = NULL;
  long best_spec = -1;
  int head_get = !strcmp(method, "HEAD");
  int path_known = 0;
  unsigned methods = 0; /* bit i: k_methods[i] has a route for the path */
  size_t voff[GG_HTTP_MAX_PARAMS], vlen[GG_HTTP_MAX_PARAMS];
  for (int i = 0; i < r->n; i++) {
    const gg_route *rt = &r->routes[i];
    if (!match_one(rt, path, voff, vlen)) continue;
    path_known = 1;
    for (size_t k = 0; k < sizeof k_methods / sizeof k_methods[0]; k++)
      if (!strcmp(rt->method, k_methods[k])) methods |= 1u << k;
    int same = !strcmp(rt->method, method);
    if (!same && !(head_get && !strcmp(rt->method, "GET"))) continue;
    /* An explicit HEAD route beats the GET one of the same pattern. */
    long spec = specificity(rt) * 2 + same;
    if (spec > best_spec) best = rt, best_spec = spec;
  }
  if (!best) {
    m->status = path_known ? 405 : 404;
    if (methods & 1u) methods |= 2u; /* GET implies HEAD */
    for (size_t k = 0; k < sizeof k_methods / sizeof k_methods[0]; k++) {
      if (!(methods & (1u << k))) continue;
      size_t used = strlen(m->allow);
      snprintf(m->allow + used, sizeof m->allow - used, "%s%s", used ? ", " : "", k_methods[k]);
    }
    return m->status;
  }
  m->route = best;
  match_one(best, path, voff, vlen);
  if (best->n_params) {
    size_t total = 0;
    for (int i = 0; i < best->n_params; i++)
      total += vlen[i] + 1;
    m->buf = malloc(total);
    if (!m->buf) {
      m->route = NULL;
      m->status = 500;
      return GG_ENOMEM;
    }
    char *w = m->buf;
    for (int i = 0; i < best->n_params; i++) {
      memcpy(w, path + voff[i], vlen[i]);
      w[vlen[i]] = 0;
      m->params[i] = (gg_http_kv){best->params[i], w};
      w += vlen[i] + 1;
    }
    m->n_params = best->n_params;
  }
  return 0;
}

void gg__route_match_free(gg_route_match *m) {
  if (!m) return;
  free(m->buf);
  m->buf = NULL;
}

/* Queues resp. early: the request is refused before its body was read, so
 * the connection closes after the answer (the client must not send the body
 * into it). retry_after_s > 0 adds Retry-After. */
static enum MHD_Result send_resp(struct MHD_Connection *conn, gg_http_resp *resp, int early,
                                 int retry_after_s, const char *allow) {
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
  if (allow && *allow) MHD_add_response_header(r, "Allow", allow);
  if (retry_after_s > 0) {
    char s[16];
    snprintf(s, sizeof s, "%d", retry_after_s);
    MHD_add_response_header(r, "Retry-After", s);
  }
  enum MHD_Result ret = MHD_queue_response(conn, (unsigned)resp->status, r);
  MHD_destroy_response(r);
  return ret;
}

/* ---- streamed responses ------------------------------------------------------ */

struct gg_http_stream {
  pthread_mutex_t lock;
  gg_http_stream_read_fn read;
  gg_http_stream_close_fn close;
  void *user;
  gg_server *srv;              /* set when the response is queued */
  struct MHD_Connection *conn; /* idem */
  int suspended;               /* the connection sleeps until a wake */
  int pending;                 /* a wake came while read ran: read again */
  int ending;                  /* the server stops: end the body now */
  struct gg_http_stream *next, *prev;
};

int gg_http_stream_begin(gg_http_resp *resp, const char *content_type, gg_http_stream_read_fn read,
                         gg_http_stream_close_fn close, void *user, gg_http_stream **out) {
  gg_http_stream *s = calloc(1, sizeof *s);
  if (out) *out = s;
  if (!s) {
    if (close) close(user);
    gg_http_error(resp, 500, "out of memory starting a streamed response");
    return GG_ENOMEM;
  }
  pthread_mutex_init(&s->lock, NULL);
  s->read = read;
  s->close = close;
  s->user = user;
  free(resp->body);
  resp->body = NULL;
  resp->body_len = 0;
  resp->status = 200;
  resp->content_type = content_type;
  resp->stream = s;
  return 0;
}

void gg_http_stream_wake(gg_http_stream *s) {
  if (!s) return;
  pthread_mutex_lock(&s->lock);
  if (s->suspended) {
    s->suspended = 0;
    MHD_resume_connection(s->conn);
  } else {
    s->pending = 1;
  }
  pthread_mutex_unlock(&s->lock);
}

/* MHD's content reader: never blocks. With nothing to send it suspends the
 * connection (allowed from a content reader) and returns 0; a wake resumes
 * it and libmicrohttpd calls again. */
static ssize_t stream_reader(void *cls, uint64_t pos, char *buf, size_t max) {
  (void)pos;
  gg_http_stream *s = cls;
  for (;;) {
    pthread_mutex_lock(&s->lock);
    int ending = s->ending;
    s->pending = 0;
    pthread_mutex_unlock(&s->lock);
    if (ending) return MHD_CONTENT_READER_END_OF_STREAM;
    long n = s->read(s->user, buf, max);
    if (n > 0) return (ssize_t)n;
    if (n < 0) return MHD_CONTENT_READER_END_OF_STREAM;
    pthread_mutex_lock(&s->lock);
    if (s->pending || s->ending) {
      pthread_mutex_unlock(&s->lock);
      continue;
    }
    s->suspended = 1;
    MHD_suspend_connection(s->conn);
    pthread_mutex_unlock(&s->lock);
    return 0;
  }
}

/* The response is destroyed: unlink, tell the producer, free. */
static void stream_free(void *cls) {
  gg_http_stream *s = cls;
  if (s->srv) {
    pthread_mutex_lock(&s->srv->streams_lock);
    if (s->prev) s->prev->next = s->next;
    else if (s->srv->streams == s) s->srv->streams = s->next;
    if (s->next) s->next->prev = s->prev;
    pthread_mutex_unlock(&s->srv->streams_lock);
  }
  if (s->close) s->close(s->user);
  pthread_mutex_destroy(&s->lock);
  free(s);
}

/* Queues the streamed response of a handler. */
static enum MHD_Result send_stream(gg_server *srv, struct MHD_Connection *conn, gg_http_resp *resp) {
  gg_http_stream *s = resp->stream;
  resp->stream = NULL;
  s->srv = srv;
  s->conn = conn;
  pthread_mutex_lock(&srv->streams_lock);
  s->ending = srv->streams_stopping;
  s->next = srv->streams;
  if (s->next) s->next->prev = s;
  srv->streams = s;
  pthread_mutex_unlock(&srv->streams_lock);
  struct MHD_Response *r =
      MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, stream_reader, s, stream_free);
  if (!r) {
    stream_free(s);
    return MHD_NO;
  }
  MHD_add_response_header(r, "Content-Type",
                          resp->content_type ? resp->content_type : "application/octet-stream");
  MHD_add_response_header(r, "Cache-Control", "no-store");
  MHD_add_response_header(r, "X-Accel-Buffering", "no");
  enum MHD_Result ret = MHD_queue_response(conn, (unsigned)resp->status, r);
  MHD_destroy_response(r);
  return ret;
}

/* Ends every stream before the daemon stops: no new suspension, and the
 * suspended connections resumed so libmicrohttpd can close them. */
static void streams_end_all(gg_server *srv) {
  pthread_mutex_lock(&srv->streams_lock);
  srv->streams_stopping = 1;
  for (gg_http_stream *s = srv->streams; s; s = s->next) {
    pthread_mutex_lock(&s->lock);
    s->ending = 1;
    if (s->suspended) {
      s->suspended = 0;
      MHD_resume_connection(s->conn);
    }
    pthread_mutex_unlock(&s->lock);
  }
  pthread_mutex_unlock(&srv->streams_lock);
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
    gg_http_error_named(resp, 503, "server_busy",
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
      return send_resp(conn, &resp, 1, retry_after_s, NULL);
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
    return send_resp(conn, &resp, 0, st->refuse == 503 ? GG_BODY_RETRY_AFTER_S : 0, NULL);
  }
  gg_route_match match;
  gg__router_match(&srv->router, method, url, &match);
  if (match.status == 405) {
    gg_http_error(&resp, 405, "method %s not allowed on %s (allowed: %s)", method, url,
                  match.allow);
  } else if (match.status == 404) {
    gg_http_error(&resp, 404, "no such endpoint: %s %s", method, url);
  } else if (!match.route) {
    gg_http_error(&resp, 500, "out of memory while routing %s %s", method, url);
  } else {
    gg_http_req req = {.method = method,
                       .path = url,
                       .body = st->buf ? st->buf : "",
                       .body_len = st->len,
                       .conn = conn,
                       .n_params = match.n_params};
    memcpy(req.params, match.params, sizeof req.params);
    match.route->fn(srv, &req, &resp, match.route->user);
    if (resp.stream) {
      GG_DEBUG("HTTP", "%s %s -> %d streamed", method, url, resp.status);
      gg__route_match_free(&match);
      return send_stream(srv, conn, &resp);
    }
    if (!resp.body) gg_http_error(&resp, 500, "handler produced no response");
  }
  GG_DEBUG("HTTP", "%s %s -> %d", method, url, resp.status);
  enum MHD_Result ret =
      send_resp(conn, &resp, 0, resp.retry_after_s, match.status == 405 ? match.allow : NULL);
  gg__route_match_free(&match);
  return ret;
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
  if (srv->daemon) {
    GG_ERROR("HTTP", "route %s %s added after the server started; ignored", method, path);
    return GG_ESTATE;
  }
  return gg__router_add(&srv->router, method, path, fn, user);
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

int gg__http_new(const gg_server_config *cfg, gg_server **out) {
  gg_server *s = calloc(1, sizeof *s);
  if (!s) return GG_ENOMEM;
  s->cfg = *cfg;
  pthread_mutex_init(&s->streams_lock, NULL);
  snprintf(s->host, sizeof s->host, "%s", cfg->host && *cfg->host ? cfg->host : "127.0.0.1");
  s->cfg.host = s->host;
  /* The application's settings stay with the application (app.c), which
   * copies what it keeps: none of these borrowed strings outlives the call. */
  s->cfg.device = s->cfg.models_dir = s->cfg.web_dir = NULL;
  s->cfg.fallback = s->cfg.models = s->cfg.faults = NULL;
  if (gg__access_init(s, cfg)) {
    pthread_mutex_destroy(&s->streams_lock);
    free(s);
    return GG_EINVAL;
  }
  if (s->cfg.threads <= 0) s->cfg.threads = 2;
  if (s->cfg.max_body == 0) s->cfg.max_body = 16u << 20;
  if (s->cfg.conn_timeout_s <= 0) s->cfg.conn_timeout_s = 30;
  limits_defaults(&s->cfg);
  s->started_ns = gg_now_ns();
  *out = s;
  return 0;
}

int gg_server_start(gg_server *srv) {
  if (srv->router.failed) {
    GG_ERROR("HTTP", "not starting: %d route registration(s) failed (logged above)",
             srv->router.failed);
    return GG_EINVAL;
  }
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
  /* Suspend/resume: a streamed response sleeps without holding a thread. */
  unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG |
                   MHD_ALLOW_SUSPEND_RESUME;
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
  GG_INFO("HTTP", "listening on http://%s%s%s:%d (%s%s%d threads)",
          strchr(srv->host, ':') ? "[" : "", srv->host, strchr(srv->host, ':') ? "]" : "",
          srv->port, srv->label, srv->label[0] ? ", " : "", srv->cfg.threads);
  gg__access_log_policy(srv);
  return 0;
}

int gg_server_port(const gg_server *srv) {
  return srv->port;
}

void gg_server_stop(gg_server *srv) {
  if (srv && srv->daemon) {
    streams_end_all(srv);
    MHD_stop_daemon(srv->daemon);
    srv->daemon = NULL;
    gg__limits_stop(srv->limits);
    GG_INFO("HTTP", "stopped");
  }
}

void gg_server_free(gg_server *srv) {
  if (!srv) return;
  gg_server_stop(srv);
  /* The daemon has stopped: no handler runs, the application can go. */
  if (srv->app_free) srv->app_free(srv->app);
  gg__limits_free(srv->limits);
  pthread_mutex_destroy(&srv->streams_lock);
  free(srv);
}
