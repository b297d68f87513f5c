/* The HTTP core without sockets: the router (:param segments, precedence,
 * HEAD -> GET, 404 vs 405 and Allow, checked registration), the gg_err ->
 * HTTP status map, the one error body and the one JSON body reader. */
#include "gpuguard/error.h"
#include "gpuguard/log.h"
#include "gpuguard/server.h"
#include "server/http-impl.h"
#include "test.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

/* Handlers are only compared by address: never called here. */
static void h_a(gg_server *s, const gg_http_req *q, gg_http_resp *r, void *u) {}
static void h_b(gg_server *s, const gg_http_req *q, gg_http_resp *r, void *u) {}
static void h_c(gg_server *s, const gg_http_req *q, gg_http_resp *r, void *u) {}
static void h_d(gg_server *s, const gg_http_req *q, gg_http_resp *r, void *u) {}

static int g_tag[4]; /* distinct user pointers */

/* A request as the core hands it to a handler: the params of match m. */
static gg_http_req req_of(const gg_route_match *m, const char *method, const char *path) {
  gg_http_req q = {.method = method, .path = path, .n_params = m->n_params};
  memcpy(q.params, m->params, sizeof q.params);
  return q;
}

static gg_router *router_new(void) {
  return calloc(1, sizeof(gg_router));
}

static void test_params(void) {
  gg_router *r = router_new();
  ASSERT_OK(gg__router_add(r, "GET", "/api/identities/:id/examples", h_a, &g_tag[0]));
  ASSERT_OK(gg__router_add(r, "GET", "/api/identities/:id", h_b, &g_tag[1]));
  ASSERT_OK(gg__router_add(r, "GET", "/s/:stream/f/:frame", h_c, NULL));
  gg_route_match m;
  ASSERT_EQ(gg__router_match(r, "GET", "/api/identities/42/examples", &m), 0);
  ASSERT_TRUE(m.route && m.route->fn == h_a && m.route->user == &g_tag[0]);
  gg_http_req q = req_of(&m, "GET", "/api/identities/42/examples");
  ASSERT_STREQ(gg_http_param(&q, "id"), "42");
  ASSERT_TRUE(gg_http_param(&q, "nope") == NULL);
  gg__route_match_free(&m);

  ASSERT_EQ(gg__router_match(r, "GET", "/api/identities/alice-7", &m), 0);
  ASSERT_TRUE(m.route && m.route->fn == h_b);
  q = req_of(&m, "GET", "/api/identities/alice-7");
  ASSERT_STREQ(gg_http_param(&q, "id"), "alice-7");
  gg__route_match_free(&m);

  ASSERT_EQ(gg__router_match(r, "GET", "/s/cam1/f/99", &m), 0);
  q = req_of(&m, "GET", "/s/cam1/f/99");
  ASSERT_EQ(q.n_params, 2);
  ASSERT_STREQ(gg_http_param(&q, "stream"), "cam1");
  ASSERT_STREQ(gg_http_param(&q, "frame"), "99");
  gg__route_match_free(&m);

  /* A :param matches exactly one non-empty segment. */
  ASSERT_EQ(gg__router_match(r, "GET", "/api/identities/", &m), 404);
  gg__route_match_free(&m);
  ASSERT_EQ(gg__router_match(r, "GET", "/api/identities//examples", &m), 404);
  gg__route_match_free(&m);
  ASSERT_EQ(gg__router_match(r, "GET", "/api/identities/1/examples/2", &m), 404);
  gg__route_match_free(&m);
  ASSERT_EQ(gg__router_match(r, "GET", "/api/identities", &m), 404);
  gg__route_match_free(&m);
  free(r);
}

static void test_precedence(void) {
  gg_router *r = router_new();
  /* Registered least specific first: order must not decide. */
  ASSERT_OK(gg__router_add(r, "GET", "/api/*", h_a, NULL));
  ASSERT_OK(gg__router_add(r, "GET", "/api/identities/:id", h_b, NULL));
  ASSERT_OK(gg__router_add(r, "GET", "/api/identities/export", h_c, NULL));
  ASSERT_OK(gg__router_add(r, "GET", "/api/:section/export", h_d, NULL));
  gg_route_match m;
  ASSERT_EQ(gg__router_match(r, "GET", "/api/identities/export", &m), 0);
  ASSERT_TRUE(m.route->fn == h_c); /* exact over :param over prefix */
  ASSERT_EQ(m.n_params, 0);
  gg__route_match_free(&m);
  ASSERT_EQ(gg__router_match(r, "GET", "/api/identities/7", &m), 0);
  ASSERT_TRUE(m.route->fn == h_b);
  gg__route_match_free(&m);
  ASSERT_EQ(gg__router_match(r, "GET", "/api/events/export", &m), 0);
  ASSERT_TRUE(m.route->fn == h_d);
  gg__route_match_free(&m);
  ASSERT_EQ(gg__router_match(r, "GET", "/api/identities/7/deep/er", &m), 0);
  ASSERT_TRUE(m.route->fn == h_a);
  gg__route_match_free(&m);
  /* Among :param routes, the one with more literal segments. */
  ASSERT_OK(gg__router_add(r, "GET", "/x/:q/:p", h_a, NULL));
  ASSERT_OK(gg__router_add(r, "GET", "/x/a/:p", h_b, NULL));
  ASSERT_EQ(gg__router_match(r, "GET", "/x/a/z", &m), 0);
  ASSERT_TRUE(m.route->fn == h_b);
  gg__route_match_free(&m);
  ASSERT_EQ(gg__router_match(r, "GET", "/x/b/z", &m), 0);
  ASSERT_TRUE(m.route->fn == h_a);
  gg__route_match_free(&m);
  /* The kind decides before the number of literal segments. */
  ASSERT_OK(gg__router_add(r, "GET", "/s/b/*", h_a, NULL));
  ASSERT_OK(gg__router_add(r, "GET", "/s/:id/:f", h_b, NULL));
  ASSERT_EQ(gg__router_match(r, "GET", "/s/b/x", &m), 0);
  ASSERT_TRUE(m.route->fn == h_b);
  gg__route_match_free(&m);
  ASSERT_EQ(gg__router_match(r, "GET", "/s/b/x/y", &m), 0);
  ASSERT_TRUE(m.route->fn == h_a);
  gg__route_match_free(&m);
  /* A prefix route matches below its folder, not the folder's own name. */
  ASSERT_EQ(gg__router_match(r, "GET", "/api/", &m), 0);
  ASSERT_TRUE(m.route->fn == h_a);
  gg__route_match_free(&m);
  ASSERT_EQ(gg__router_match(r, "GET", "/api", &m), 404);
  gg__route_match_free(&m);
  ASSERT_EQ(gg__router_match(r, "GET", "/apix/1", &m), 404);
  gg__route_match_free(&m);
  /* "/" is exact. */
  ASSERT_OK(gg__router_add(r, "GET", "/", h_d, NULL));
  ASSERT_EQ(gg__router_match(r, "GET", "/", &m), 0);
  ASSERT_TRUE(m.route->fn == h_d);
  gg__route_match_free(&m);
  ASSERT_EQ(gg__router_match(r, "GET", "/x", &m), 404);
  gg__route_match_free(&m);
  free(r);
}

static void test_head_and_405(void) {
  gg_router *r = router_new();
  ASSERT_OK(gg__router_add(r, "GET", "/api/identities/:id", h_a, NULL));
  ASSERT_OK(gg__router_add(r, "DELETE", "/api/identities/:id", h_b, NULL));
  ASSERT_OK(gg__router_add(r, "POST", "/api/identities", h_c, NULL));
  ASSERT_OK(gg__router_add(r, "GET", "/own-head", h_a, NULL));
  ASSERT_OK(gg__router_add(r, "HEAD", "/own-head", h_d, NULL));
  gg_route_match m;
  ASSERT_EQ(gg__router_match(r, "HEAD", "/api/identities/3", &m), 0);
  ASSERT_TRUE(m.route->fn == h_a); /* HEAD is served by GET */
  gg__route_match_free(&m);
  ASSERT_EQ(gg__router_match(r, "HEAD", "/own-head", &m), 0);
  ASSERT_TRUE(m.route->fn == h_d); /* unless the route has its own */
  gg__route_match_free(&m);
  ASSERT_EQ(gg__router_match(r, "DELETE", "/api/identities/3", &m), 0);
  ASSERT_TRUE(m.route->fn == h_b);
  gg__route_match_free(&m);
  ASSERT_EQ(gg__router_match(r, "PUT", "/api/identities/3", &m), 405);
  ASSERT_TRUE(m.route == NULL);
  ASSERT_STREQ(m.allow, "GET, HEAD, DELETE");
  gg__route_match_free(&m);
  ASSERT_EQ(gg__router_match(r, "GET", "/api/identities", &m), 405);
  ASSERT_STREQ(m.allow, "POST");
  gg__route_match_free(&m);
  /* POST has no HEAD fallback; an unknown path is 404 whatever the method. */
  ASSERT_EQ(gg__router_match(r, "HEAD", "/api/identities", &m), 405);
  gg__route_match_free(&m);
  ASSERT_EQ(gg__router_match(r, "PUT", "/nowhere", &m), 404);
  ASSERT_STREQ(m.allow, "");
  gg__route_match_free(&m);
  free(r);
}

static int g_refusal_lines;
static void count_refusals(gg_log_level level, const char *line, void *user) {
  if (level == GG_LOG_ERROR && strstr(line, "[HTTP] route ") && strstr(line, " refused: "))
    g_refusal_lines++;
}

static void test_bad_registrations(void) {
  gg_log_set_sink(count_refusals, NULL); /* each refusal says so in the log */
  g_refusal_lines = 0;
  gg_router *r = router_new();
  ASSERT_OK(gg__router_add(r, "GET", "/a/:x", h_a, NULL));
  ASSERT_OK(gg__router_add(r, "POST", "/a/:x", h_a, NULL)); /* other method: fine */
  static const struct {
    const char *method, *pattern;
    int rc;
  } bad[] = {
      {"GET", "", GG_EINVAL},
      {"GET", "a/b", GG_EINVAL},        /* no leading '/' */
      {"GET", "/a//b", GG_EINVAL},      /* empty segment */
      {"GET", "/a/", GG_EINVAL},        /* empty last segment */
      {"GET", "/a/:", GG_EINVAL},       /* empty name */
      {"GET", "/a/:1x", GG_EINVAL},     /* name starts with a digit */
      {"GET", "/a/:Id", GG_EINVAL},     /* upper case */
      {"GET", "/a/:i-d", GG_EINVAL},    /* '-' */
      {"GET", "/b/:x/c/:x", GG_EINVAL}, /* same name twice */
      {"GET", "/a/*/b", GG_EINVAL},     /* '*' not last */
      {"GET", "/web*", GG_EINVAL},      /* '*' not a whole segment */
      {"GET", "/a/:y", GG_EINVAL},      /* same shape as GET /a/:x */
      {"POST", "/a/:x", GG_EINVAL},     /* exact duplicate */
      {"get", "/lower", GG_EINVAL},     /* unknown method */
      {"BREW", "/coffee", GG_EINVAL},
      {"GET", "/a/:abcdefghijklmnopqrstuvwxyz_abcdef", GG_EINVAL}, /* name too long */
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    int rc = gg__router_add(r, bad[i].method, bad[i].pattern, h_b, NULL);
    if (rc != bad[i].rc) fprintf(stderr, "  %s %s\n", bad[i].method, bad[i].pattern);
    ASSERT_EQ(rc, bad[i].rc);
  }
  ASSERT_EQ(r->n, 2);
  ASSERT_EQ(r->failed, (int)(sizeof bad / sizeof bad[0]));
  ASSERT_EQ(g_refusal_lines, r->failed);
  char longp[300];
  memset(longp, 'a', sizeof longp);
  longp[0] = '/';
  longp[sizeof longp - 1] = 0;
  ASSERT_EQ(gg__router_add(r, "GET", longp, h_b, NULL), GG_ERANGE);
  ASSERT_EQ(gg__router_add(r, "GET", "/a/:x", NULL, NULL), GG_EINVAL); /* no handler */
  /* Too many routes. */
  for (int i = r->n; i < GG_MAX_ROUTES; i++) {
    char p[32];
    snprintf(p, sizeof p, "/r%d", i);
    ASSERT_OK(gg__router_add(r, "GET", p, h_c, NULL));
  }
  ASSERT_EQ(gg__router_add(r, "GET", "/one-too-many", h_c, NULL), GG_ERANGE);
  ASSERT_EQ(r->n, GG_MAX_ROUTES);
  ASSERT_EQ(g_refusal_lines, r->failed);
  free(r);
  gg_log_set_sink(NULL, NULL);
}

/* A registration that fails keeps the server from starting: refused
 * before any socket is opened. */
static void test_server_refuses_to_start(void) {
  gg_log_level lvl = gg_log_get_level();
  gg_log_set_level(GG_LOG_OFF);
  gg_server_config cfg = {
      .host = "127.0.0.1", .device = "cpu", .fallback = "", .models = "", .isolate = 0};
  gg_server *srv = NULL;
  ASSERT_OK(gg_server_new(&cfg, &srv));
  ASSERT_EQ(gg_server_add_route(srv, "GET", "/healthz", h_a, NULL), GG_EINVAL); /* the app's */
  ASSERT_EQ(gg_server_start(srv), GG_EINVAL);
  ASSERT_EQ(gg_server_port(srv), 0);
  gg_server_free(srv);
  gg_log_set_level(lvl);
}

static json_t *body_json(const gg_http_resp *r) {
  return json_loadb(r->body ? r->body : "", r->body_len, 0, NULL);
}

/* Asserts resp holds {"error": {"code": status, "name": name, "message": ...}}. */
#define ASSERT_ERROR_BODY(resp, st, nm)                                                            \
  do {                                                                                             \
    ASSERT_EQ((resp).status, st);                                                                  \
    ASSERT_STREQ((resp).content_type, "application/json");                                         \
    json_t *j_ = body_json(&(resp));                                                               \
    json_t *e_ = json_object_get(j_, "error");                                                     \
    ASSERT_TRUE(json_is_object(e_));                                                               \
    ASSERT_EQ(json_integer_value(json_object_get(e_, "code")), st);                                \
    ASSERT_STREQ(json_string_value(json_object_get(e_, "name")), nm);                              \
    ASSERT_TRUE(json_string_length(json_object_get(e_, "message")) > 0);                           \
    json_decref(j_);                                                                               \
  } while (0)

static void test_error_map(void) {
  static const struct {
    int rc, status;
  } k[] = {
      {0, 200},
      {GG_EINVAL, 400},
      {GG_EPARSE, 400},
      {GG_ERANGE, 400},
      {GG_ENOTFOUND, 404},
      {GG_ESTATE, 409},
      {GG_ETOO_LARGE, 413},
      {GG_EBUSY, 429},
      {GG_ENOTIMPL, 501},
      {GG_EDEV_OOM, 503},
      {GG_EBUDGET, 503},
      {GG_ETIMEOUT, 503},
      {GG_EDEVICE_LOST, 503},
      {GG_EUNSUPPORTED, 503},
      {GG_ENOMEM, 503},
      {-1, 503}, /* not a gg_err */
  };
  for (size_t i = 0; i < sizeof k / sizeof k[0]; i++)
    ASSERT_EQ(gg_http_status_for(k[i].rc), k[i].status);
  /* Every code maps to a status that is an error. */
  for (int rc = GG_EINVAL; rc < GG_E_COUNT_END; rc++)
    ASSERT_GE(gg_http_status_for(rc), 400);

  gg_http_resp r = {0};
  gg_http_error_rc(&r, GG_EDEV_OOM, "no room for %s", "blazeface");
  ASSERT_ERROR_BODY(r, 503, "GG_EDEV_OOM");
  ASSERT_CONTAINS(r.body, "no room for blazeface");
  gg_http_error(&r, 404, "no such endpoint: %s", "/x"); /* replaces the body */
  ASSERT_ERROR_BODY(r, 404, "not_found");
  gg_http_error(&r, 415, "json please");
  ASSERT_ERROR_BODY(r, 415, "unsupported_media_type");
  gg_http_error(&r, 418, "teapot");
  ASSERT_ERROR_BODY(r, 418, "error");
  gg_http_error_named(&r, 400, "bad_device", "expected %s", "a device");
  ASSERT_ERROR_BODY(r, 400, "bad_device");
  free(r.body);
}

/* Runs the reader on body with content type ct; returns the status it
 * answered (0 when it accepted) and the name of its error in name. */
static int read_json(const char *body, size_t len, const char *ct, size_t max, json_t **out,
                     char *name, size_t namelen) {
  gg_http_req q = {.method = "POST", .path = "/t", .body = body, .body_len = len};
  gg_http_resp r = {0};
  void *j = NULL;
  int rc = gg__http_read_json_ct(&q, ct, &r, max, &j);
  *out = j;
  name[0] = 0;
  int status = 0;
  if (rc) {
    json_t *b = body_json(&r);
    json_t *e = json_object_get(b, "error");
    const char *nm = json_string_value(json_object_get(e, "name"));
    snprintf(name, namelen, "%s", nm ? nm : "");
    status = r.status;
    if (json_integer_value(json_object_get(e, "code")) != status) status = -1;
    json_decref(b);
    if (j) status = -2; /* must be NULL on failure */
  } else if (r.body) {
    status = -3; /* must not answer when it accepts */
  }
  free(r.body);
  return status;
}

static void test_json_reader(void) {
  const char *ct = "application/json; charset=utf-8";
  char name[64];
  json_t *j = NULL;
  const char *ok = "{\"device\": \"cpu\", \"n\": [1, {\"a\": \"[[[[\"}]}";
  ASSERT_EQ(read_json(ok, strlen(ok), ct, 0, &j, name, sizeof name), 0);
  ASSERT_STREQ(json_string_value(json_object_get(j, "device")), "cpu");
  json_decref(j);

  ASSERT_EQ(read_json(ok, strlen(ok), "text/plain", 0, &j, name, sizeof name), 415);
  ASSERT_STREQ(name, "unsupported_media_type");
  ASSERT_EQ(read_json(ok, strlen(ok), NULL, 0, &j, name, sizeof name), 415);
  ASSERT_EQ(read_json(ok, strlen(ok), "application/jsonx", 0, &j, name, sizeof name), 415);

  ASSERT_EQ(read_json("{oops", 5, ct, 0, &j, name, sizeof name), 400);
  ASSERT_STREQ(name, "invalid_json");
  ASSERT_EQ(read_json("", 0, ct, 0, &j, name, sizeof name), 400);
  ASSERT_STREQ(name, "invalid_json");
  ASSERT_EQ(read_json("{\"a\":1,\"a\":2}", 13, ct, 0, &j, name, sizeof name), 400);
  ASSERT_STREQ(name, "invalid_json");                                         /* duplicate keys */
  ASSERT_EQ(read_json("{\"a\":1}\0x", 9, ct, 0, &j, name, sizeof name), 400); /* NUL inside */
  ASSERT_EQ(read_json("[1,2]", 5, ct, 0, &j, name, sizeof name), 400);
  ASSERT_STREQ(name, "not_a_json_object");
  ASSERT_EQ(read_json("\"cpu\"", 5, ct, 0, &j, name, sizeof name), 400);
  ASSERT_STREQ(name, "not_a_json_object");

  /* Size: the route's limit, else the default. */
  ASSERT_EQ(read_json(ok, strlen(ok), ct, 8, &j, name, sizeof name), 413);
  ASSERT_STREQ(name, "body_too_large");
  size_t big = GG_HTTP_JSON_MAX_BYTES + 1;
  char *buf = malloc(big + 1);
  ASSERT_TRUE(buf != NULL);
  memset(buf, ' ', big);
  buf[0] = '{';
  buf[big - 1] = '}';
  buf[big] = 0;
  ASSERT_EQ(read_json(buf, big, ct, 0, &j, name, sizeof name), 413);
  ASSERT_EQ(read_json(buf, big - 1, ct, 0, &j, name, sizeof name), 400); /* fits; malformed */
  buf[big - 2] = '}';
  ASSERT_EQ(read_json(buf, big - 1, ct, 0, &j, name, sizeof name), 0); /* fits; ok */
  json_decref(j);
  free(buf);

  /* Depth: at the limit passes, one deeper is refused before parsing. */
  char deep[2 * (GG_HTTP_JSON_MAX_DEPTH + 1) + 16];
  for (int d = GG_HTTP_JSON_MAX_DEPTH; d <= GG_HTTP_JSON_MAX_DEPTH + 1; d++) {
    size_t n = 0;
    deep[n++] = '{';
    n += (size_t)snprintf(deep + n, sizeof deep - n, "\"a\":");
    for (int i = 1; i < d; i++)
      deep[n++] = '[';
    for (int i = 1; i < d; i++)
      deep[n++] = ']';
    deep[n++] = '}';
    deep[n] = 0;
    int st = read_json(deep, n, ct, 0, &j, name, sizeof name);
    if (d == GG_HTTP_JSON_MAX_DEPTH) {
      ASSERT_EQ(st, 0);
      json_decref(j);
    } else {
      ASSERT_EQ(st, 400);
      ASSERT_STREQ(name, "json_too_deep");
    }
  }
  /* Brackets inside strings (escaped quotes too) are not nesting. */
  const char *str = "{\"a\": \"\\\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\"}";
  ASSERT_EQ(read_json(str, strlen(str), ct, 0, &j, name, sizeof name), 0);
  json_decref(j);
}

/* ---- through a listening server (loopback): the glue in on_access ---- */

/* GET /t/:id/echo -> {"id": <param>, "user": <user tag>} */
static void h_echo(gg_server *s, const gg_http_req *q, gg_http_resp *r, void *u) {
  gg_http_json(r, 200,
               json_pack("{s:s,s:i}", "id", gg_http_param(q, "id") ? gg_http_param(q, "id") : "",
                         "user", *(int *)u));
}

/* POST /t/:id/json: the body through the one JSON reader. */
static void h_json(gg_server *s, const gg_http_req *q, gg_http_resp *r, void *u) {
  json_t *j = NULL;
  if (gg_http_read_json(q, r, 0, (void **)&j)) return;
  gg_http_json(r, 200, j);
}

/* One request over loopback; returns the status, the head in head and the
 * body (malloc'd) in *body. */
static int raw(int port, const char *method, const char *target, const char *headers,
               const char *body, char *head, size_t headlen, char **out) {
  int status = -1;
  *out = NULL;
  head[0] = 0;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct timeval tv = {.tv_sec = 10};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
    if (fd >= 0) close(fd);
    return -1;
  }
  char msg[2048];
  int n = snprintf(msg, sizeof msg,
                   "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n%sContent-Length: %zu\r\n"
                   "Connection: close\r\n\r\n%s",
                   method, target, port, headers, body ? strlen(body) : 0, body ? body : "");
  size_t cap = 1 << 16, len = 0;
  char *in = malloc(cap);
  if (in && n > 0 && (size_t)n < sizeof msg && send(fd, msg, (size_t)n, MSG_NOSIGNAL) == n) {
    ssize_t got;
    while (len + 1 < cap && (got = recv(fd, in + len, cap - 1 - len, 0)) > 0)
      len += (size_t)got;
  }
  close(fd);
  if (!in) return -1;
  in[len] = 0;
  char *sep = strstr(in, "\r\n\r\n");
  if (sep && sscanf(in, "HTTP/1.%*d %d", &status) == 1) {
    *sep = 0;
    snprintf(head, headlen, "%s", in);
    *out = strdup(sep + 4);
  }
  free(in);
  return status;
}

static void test_through_server(void) {
  gg_server_config cfg = {.host = "127.0.0.1",
                          .device = "cpu",
                          .fallback = "",
                          .models = "",
                          .isolate = 0,
                          .threads = 1};
  gg_server *srv = NULL;
  ASSERT_OK(gg_server_new(&cfg, &srv));
  ASSERT_OK(gg_server_add_route(srv, "GET", "/t/:id/echo", h_echo, &g_tag[2]));
  ASSERT_OK(gg_server_add_route(srv, "POST", "/t/:id/json", h_json, NULL));
  g_tag[2] = 7;
  ASSERT_OK(gg_server_start(srv));
  int port = gg_server_port(srv);
  char head[2048], *body = NULL;
  int st = raw(port, "GET", "/t/abc-1/echo?x=1", "", NULL, head, sizeof head, &body);
  ASSERT_EQ(st, 200);
  ASSERT_CONTAINS(body, "\"id\":\"abc-1\"");
  ASSERT_CONTAINS(body, "\"user\":7");
  free(body);
  /* libmicrohttpd hands the core the decoded path: params come decoded. */
  st = raw(port, "GET", "/t/a%20b/echo", "", NULL, head, sizeof head, &body);
  ASSERT_EQ(st, 200);
  ASSERT_CONTAINS(body, "\"id\":\"a b\"");
  free(body);
  st = raw(port, "DELETE", "/healthz", "", NULL, head, sizeof head, &body);
  ASSERT_EQ(st, 405);
  ASSERT_CONTAINS(head, "Allow: GET, HEAD");
  ASSERT_CONTAINS(body, "\"name\":\"method_not_allowed\"");
  free(body);
  st = raw(port, "GET", "/t/x/nope", "", NULL, head, sizeof head, &body);
  ASSERT_EQ(st, 404);
  ASSERT_CONTAINS(body, "\"name\":\"not_found\"");
  free(body);
  st = raw(port, "POST", "/t/x/json", "Content-Type: application/json\r\n", "{\"a\": [1]}", head,
           sizeof head, &body);
  ASSERT_EQ(st, 200);
  ASSERT_CONTAINS(body, "\"a\":[1]");
  free(body);
  st = raw(port, "POST", "/t/x/json", "Content-Type: text/plain\r\n", "{}", head, sizeof head,
           &body);
  ASSERT_EQ(st, 415);
  ASSERT_CONTAINS(body, "\"name\":\"unsupported_media_type\"");
  free(body);
  st = raw(port, "POST", "/t/x/json", "Content-Type: application/json\r\n", "{\"a\":", head,
           sizeof head, &body);
  ASSERT_EQ(st, 400);
  ASSERT_CONTAINS(body, "\"name\":\"invalid_json\"");
  free(body);
  gg_server_free(srv);
}

int main(int argc, char **argv) {
  signal(SIGPIPE, SIG_IGN);
  /* The one server here runs on the cpu device: keep GPU runtimes out. */
  setenv("GPUGUARD_WORKER_EXE", GG_BIN, 1);
  setenv("GPUGUARD_LIBOPENCL", "/nonexistent/libOpenCL.so.1", 1);
  setenv("GPUGUARD_LIBCUDA", "/nonexistent/libcuda.so.1", 1);
  setenv("GPUGUARD_LIBNVML", "/nonexistent/libnvidia-ml.so.1", 1);
  gg_log_set_level(GG_LOG_ERROR);
  static const gg_test_case cases[] = {
      {"params", test_params},
      {"precedence", test_precedence},
      {"head_and_405", test_head_and_405},
      {"bad_registrations", test_bad_registrations},
      {"server_refuses_to_start", test_server_refuses_to_start},
      {"error_map", test_error_map},
      {"json_reader", test_json_reader},
      {"through_server", test_through_server},
      {0},
  };
  return gg_test_main(argc, argv, cases);
}
