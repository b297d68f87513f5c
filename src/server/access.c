/* Who may call which route: the API key, JSON-only bodies and refusal of
 * cross-origin browser requests. The rules are in docs/SECURITY.md, "Access". */
#include "gpuguard/error.h"
#include "gpuguard/log.h"
#include "server/http-impl.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* A shorter key can be guessed over the network; 16 characters of
 * `openssl rand -hex 32` output is already 64 bits. */
#define KEY_MIN_LEN 16

int gg__access_init(gg_server *srv, const gg_server_config *cfg) {
  const char *key = cfg->api_key ? cfg->api_key : "";
  size_t n = strlen(key);
  srv->cfg.api_key = srv->api_key;
  if (n == 0) return 0;
  if (n < KEY_MIN_LEN || n >= sizeof srv->api_key) {
    GG_ERROR("HTTP",
             "the API key has %zu characters; expected %d to %zu (generate one with "
             "`openssl rand -hex 32`)",
             n, KEY_MIN_LEN, sizeof srv->api_key - 1);
    return GG_EINVAL;
  }
  for (size_t i = 0; i < n; i++) {
    /* It travels in an HTTP header: visible ASCII only, no spaces. */
    if (key[i] <= ' ' || key[i] > '~') {
      GG_ERROR("HTTP",
               "the API key contains a space or a non-printable character at offset %zu; "
               "use letters, digits and punctuation (e.g. `openssl rand -hex 32`)",
               i);
      return GG_EINVAL;
    }
  }
  memcpy(srv->api_key, key, n + 1);
  return 0;
}

static int host_is_loopback(const char *host) {
  unsigned char a[16];
  if (inet_pton(AF_INET, host, a) == 1) return a[0] == 127;
  if (inet_pton(AF_INET6, host, a) != 1) return 0;
  static const unsigned char v6_loopback[16] = {[15] = 1};
  static const unsigned char v4_mapped[12] = {[10] = 0xff, [11] = 0xff};
  return !memcmp(a, v6_loopback, 16) || (!memcmp(a, v4_mapped, 12) && a[12] == 127);
}

void gg__access_log_policy(const gg_server *srv) {
  if (srv->api_key[0]) {
    GG_INFO("HTTP", "API key configured: POST /api/device and /api/infer require it");
  } else if (srv->cfg.insecure_local) {
    if (host_is_loopback(srv->host))
      GG_WARN("HTTP", "--insecure-local: POST /api/device answers without an API key");
    else
      GG_WARN("HTTP",
              "--insecure-local on %s, which is not a loopback address: anyone who reaches "
              "this port can switch the device; set --api-key or listen on 127.0.0.1",
              srv->host);
  } else {
    GG_INFO("HTTP", "no API key: POST /api/device is refused (403); set --api-key KEY "
                    "(or GPUGUARD_API_KEY), or --insecure-local on a loopback address");
  }
}

/* ---- origin ----------------------------------------------------------- */

/* Splits "host[:port]" or "[v6]:port" into the host (without brackets) and
 * the port; a missing port is def_port. Returns 0, or -1 when malformed. */
static int split_authority(const char *s, size_t len, char *host, size_t hostlen, long *port,
                           long def_port) {
  const char *colon = NULL, *h = s, *hend;
  if (len && s[0] == '[') {
    const char *rb = memchr(s, ']', len);
    if (!rb) return -1;
    h = s + 1;
    hend = rb;
    if (rb + 1 < s + len) {
      if (rb[1] != ':') return -1;
      colon = rb + 1;
    }
  } else {
    colon = memchr(s, ':', len);
    hend = colon ? colon : s + len;
  }
  size_t hn = (size_t)(hend - h);
  if (hn == 0 || hn >= hostlen) return -1;
  memcpy(host, h, hn);
  host[hn] = 0;
  *port = def_port;
  if (colon) {
    char *end = NULL;
    *port = strtol(colon + 1, &end, 10);
    if (end != s + len || end == colon + 1 || *port <= 0 || *port > 65535) return -1;
  }
  return 0;
}

/* 1 when Origin ("scheme://authority") names the same host and port as
 * the Host header. Browsers omit the scheme's default port, so a Host
 * without one gets the same default. */
static int origin_matches_host(const char *origin, const char *host_hdr) {
  long def_port;
  const char *auth;
  if (!strncasecmp(origin, "http://", 7))
    def_port = 80, auth = origin + 7;
  else if (!strncasecmp(origin, "https://", 8))
    def_port = 443, auth = origin + 8;
  else
    return 0; /* "null", file:, extensions: never our own page */
  char oh[256], hh[256];
  long op, hp;
  if (strchr(auth, '/') || split_authority(auth, strlen(auth), oh, sizeof oh, &op, def_port) != 0 ||
      split_authority(host_hdr, strlen(host_hdr), hh, sizeof hh, &hp, def_port) != 0)
    return 0;
  return op == hp && !strcasecmp(oh, hh);
}

/* Browsers send Origin with every cross-origin request that can change
 * state (and Sec-Fetch-Site on all requests); tools like curl send neither,
 * and they pass. No Access-Control-* header is ever sent, so no preflight
 * can succeed either. */
static int refuse_cross_origin(const gg_http_req *req, gg_http_resp *resp) {
  const char *site = gg_http_header(req, "Sec-Fetch-Site");
  if (site && strcasecmp(site, "same-origin") != 0 && strcasecmp(site, "none") != 0) {
    gg_http_error(resp, 403,
                  "cross-origin request refused (Sec-Fetch-Site: %.32s): %s %s answers only "
                  "the dashboard served by this server and non-browser clients",
                  site, req->method, req->path);
    return 1;
  }
  const char *origin = gg_http_header(req, "Origin");
  if (!origin) return 0;
  const char *host = gg_http_header(req, "Host");
  if (host && origin_matches_host(origin, host)) return 0;
  gg_http_error(resp, 403,
                "cross-origin request refused: Origin '%.100s' does not match Host '%.100s'; "
                "%s %s answers only the dashboard served by this server and non-browser "
                "clients",
                origin, host ? host : "", req->method, req->path);
  return 1;
}

/* ---- API key ---------------------------------------------------------- */

/* The key a request presents: "Authorization: Bearer KEY", else
 * "X-API-Key: KEY"; NULL when neither. */
static const char *presented_key(const gg_http_req *req) {
  const char *a = gg_http_header(req, "Authorization");
  if (a) {
    a += strspn(a, " \t");
    if (!strncasecmp(a, "Bearer", 6) && (a[6] == ' ' || a[6] == '\t'))
      return a + 7 + strspn(a + 7, " \t");
  }
  return gg_http_header(req, "X-API-Key");
}

/* Compares in time that depends only on the configured key's length, so
 * response times do not reveal how many leading characters were right. */
static int key_matches(const char *want, const char *got) {
  size_t wn = strlen(want), gn = strlen(got);
  unsigned diff = wn != gn;
  for (size_t i = 0; i < wn; i++)
    diff |= (unsigned char)want[i] ^ (unsigned char)(gn ? got[i % gn] : 0);
  return diff == 0;
}

static int refuse_without_key(gg_server *srv, const gg_http_req *req, gg_http_resp *resp,
                              unsigned need) {
  if (!srv->api_key[0]) {
    if (!(need & GG_ACCESS_KEY) || srv->cfg.insecure_local) return 0;
    gg_http_error(resp, 403,
                  "%s %s changes the server and is disabled because no API key is configured: "
                  "start gpuguard serve with --api-key KEY (or GPUGUARD_API_KEY), or with "
                  "--insecure-local when it listens on 127.0.0.1 only",
                  req->method, req->path);
    return 1;
  }
  const char *got = presented_key(req);
  if (got && key_matches(srv->api_key, got)) return 0;
  gg_http_error(resp, 401,
                got ? "the API key sent with %s %s is wrong; send the key the server was "
                      "started with (--api-key / GPUGUARD_API_KEY)"
                    : "%s %s needs the API key: send the header 'Authorization: Bearer KEY' "
                      "(or 'X-API-Key: KEY')",
                req->method, req->path);
  return 1;
}

/* ---- content type ------------------------------------------------------ */

/* Only application/json: text/plain, form and multipart bodies are what a
 * foreign page can send without a CORS preflight. */
static int refuse_non_json(const gg_http_req *req, gg_http_resp *resp) {
  const char *ct = gg_http_header(req, "Content-Type");
  if (gg__http_is_json_type(ct)) return 0;
  gg_http_error(resp, 415,
                "%s %s takes a JSON body: send 'Content-Type: application/json' (got %s%.60s%s)",
                req->method, req->path, ct ? "'" : "no Content-Type", ct ? ct : "", ct ? "'" : "");
  return 1;
}

/* ---- routes ------------------------------------------------------------ */

static void guarded(gg_server *srv, const gg_http_req *req, gg_http_resp *resp, void *user) {
  const gg_access_route *a = user;
  if (((a->need & GG_ACCESS_SAME_ORIGIN) && refuse_cross_origin(req, resp)) ||
      ((a->need & (GG_ACCESS_KEY | GG_ACCESS_KEY_IF_SET)) &&
       refuse_without_key(srv, req, resp, a->need)) ||
      ((a->need & GG_ACCESS_JSON) && refuse_non_json(req, resp))) {
    GG_INFO("HTTP", "%s %s -> %d refused by the access rules", req->method, req->path,
            resp->status);
    return;
  }
  a->fn(srv, req, resp, a->user);
}

int gg__server_add_route_access(gg_server *srv, const char *method, const char *path, unsigned need,
                                gg_http_handler fn, void *user) {
  if (srv->naccess >= GG_MAX_ROUTES) {
    srv->router.failed++;
    GG_ERROR("HTTP", "route %s %s refused: more than %d routes with access rules; the server "
             "will not start", method, path, GG_MAX_ROUTES);
    return GG_ERANGE;
  }
  gg_access_route *a = &srv->access[srv->naccess];
  *a = (gg_access_route){.fn = fn, .user = user, .need = need};
  int rc = gg_server_add_route(srv, method, path, guarded, a);
  if (rc == 0) srv->naccess++;
  return rc;
}
