/* Access rules of the HTTP service (docs/SECURITY.md, "Access"): the API
 * key, JSON-only bodies, refusal of cross-origin browser requests, and
 * static files that never follow a symbolic link out of the web root.
 * Three in-process servers on 127.0.0.1 (key, no key, --insecure-local)
 * and a raw-socket client, so every header is exactly what a test sends. */
#include "gpuguard/error.h"
#include "gpuguard/log.h"
#include "gpuguard/server.h"
#include "test.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#define KEY "test-key-0123456789abcdef"
#define SECRET "not-for-the-web-7f3a"

enum { SRV_KEY, SRV_NOKEY, SRV_INSECURE, SRV_COUNT };
static gg_server *g_srv[SRV_COUNT];
static char g_dir[64]; /* <dir>/web is the web root, <dir>/outside is not */

typedef struct reply {
  int status;      /* -1: no answer */
  char head[2048]; /* status line and headers, truncated */
  char *body;      /* malloc'd, NUL-terminated */
} reply;

/* Sends one HTTP/1.1 request to server `which`; `headers` are extra
 * "Name: value\r\n" lines. A Host header is added unless `headers` has one.
 * Each call is bounded by a 10 s socket timeout. */
static reply request(int which, const char *method, const char *target, const char *headers,
                     const char *body) {
  reply r = {.status = -1};
  int port = gg_server_port(g_srv[which]);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct timeval tv = {.tv_sec = 10};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
    if (fd >= 0) close(fd);
    return r;
  }
  headers = headers ? headers : "";
  char host[64] = "";
  if (!strstr(headers, "Host:")) snprintf(host, sizeof host, "Host: 127.0.0.1:%d\r\n", port);
  char msg[4096];
  int n = snprintf(msg, sizeof msg,
                   "%s %s HTTP/1.1\r\n%s%sContent-Length: %zu\r\nConnection: close\r\n\r\n%s",
                   method, target, host, headers, body ? strlen(body) : 0, body ? body : "");
  size_t cap = 1 << 16, len = 0;
  char *in = malloc(cap);
  if (n > 0 && (size_t)n < sizeof msg && send(fd, msg, (size_t)n, MSG_NOSIGNAL) == n) {
    ssize_t got;
    while (in && len + 1 < cap && (got = recv(fd, in + len, cap - 1 - len, 0)) > 0)
      len += (size_t)got;
  }
  close(fd);
  if (!in) return r;
  in[len] = 0;
  char *sep = strstr(in, "\r\n\r\n");
  if (sscanf(in, "HTTP/1.%*d %d", &r.status) != 1 || !sep) {
    fprintf(stderr, "  %s %s: no HTTP answer (%zu bytes: \"%.80s\")\n", method, target, len, in);
    r.status = -1;
  }
  if (sep) *sep = 0; /* the head alone, for the header search */
  snprintf(r.head, sizeof r.head, "%s", in);
  r.body = strdup(sep ? sep + 4 : "");
  free(in);
  return r;
}

#define JSON_KEY "Content-Type: application/json\r\nAuthorization: Bearer " KEY "\r\n"
#define SWITCH_CPU "{\"device\": \"cpu\"}"

/* Checks a refusal: the status, and a JSON error body of the same code
 * whose message contains `needle`. Frees the body. */
#define ASSERT_REFUSED(r, code, needle)                                                            \
  do {                                                                                             \
    reply r_ = (r);                                                                                \
    ASSERT_EQ(r_.status, code);                                                                    \
    json_t *j_ = json_loads(r_.body ? r_.body : "", 0, NULL);                                      \
    json_t *e_ = json_object_get(j_, "error");                                                     \
    ASSERT_EQ(json_integer_value(json_object_get(e_, "code")), code);                              \
    ASSERT_CONTAINS(json_string_value(json_object_get(e_, "message")), needle);                    \
    json_decref(j_);                                                                               \
    free(r_.body);                                                                                 \
  } while (0)

#define ASSERT_STATUS(r, code)                                                                     \
  do {                                                                                             \
    reply r_ = (r);                                                                                \
    ASSERT_EQ(r_.status, code);                                                                    \
    free(r_.body);                                                                                 \
  } while (0)

/* A device switch that passed the access rules: 200, or 202 should the
 * switch move to the background. */
#define ASSERT_ALLOWED(r)                                                                          \
  do {                                                                                             \
    reply r_ = (r);                                                                                \
    ASSERT_GE(r_.status, 200);                                                                     \
    ASSERT_LE(r_.status, 299);                                                                     \
    free(r_.body);                                                                                 \
  } while (0)

/* ---- API key ------------------------------------------------------------- */

static void test_key_missing(void) {
  reply r =
      request(SRV_KEY, "POST", "/api/device", "Content-Type: application/json\r\n", SWITCH_CPU);
  ASSERT_CONTAINS(r.head, "\r\nWWW-Authenticate: Bearer");
  ASSERT_REFUSED(r, 401, "needs the API key");
  ASSERT_REFUSED(
      request(SRV_KEY, "POST", "/api/device", "Content-Type: application/json\r\n", SWITCH_CPU),
      401, "Authorization: Bearer");
  /* An Authorization of another scheme is no key either. */
  ASSERT_REFUSED(request(SRV_KEY, "POST", "/api/device",
                         "Content-Type: application/json\r\nAuthorization: Basic " KEY "\r\n",
                         SWITCH_CPU),
                 401, "needs the API key");
}

static void test_key_wrong(void) {
  static const char *const wrong[] = {
      "test-key-0123456789abcdeX", /* same length, last character differs */
      "test-key-0123456789abcde",  /* a prefix */
      KEY "f",                     /* longer */
      "",                          /* empty */
  };
  for (size_t i = 0; i < sizeof wrong / sizeof wrong[0]; i++) {
    char h[256];
    snprintf(h, sizeof h, "Content-Type: application/json\r\nAuthorization: Bearer %s\r\n",
             wrong[i]);
    ASSERT_REFUSED(request(SRV_KEY, "POST", "/api/device", h, SWITCH_CPU), 401, "");
    snprintf(h, sizeof h, "Content-Type: application/json\r\nX-API-Key: %s\r\n", wrong[i]);
    ASSERT_REFUSED(request(SRV_KEY, "POST", "/api/device", h, SWITCH_CPU), 401, "");
  }
}

static void test_key_right(void) {
  ASSERT_ALLOWED(request(SRV_KEY, "POST", "/api/device", JSON_KEY, SWITCH_CPU));
  ASSERT_ALLOWED(request(SRV_KEY, "POST", "/api/device",
                         "Content-Type: application/json\r\nX-API-Key: " KEY "\r\n", SWITCH_CPU));
  /* The scheme is case-insensitive (RFC 9110). */
  ASSERT_ALLOWED(request(SRV_KEY, "POST", "/api/device",
                         "Content-Type: application/json\r\nAuthorization: bearer " KEY "\r\n",
                         SWITCH_CPU));
}

static void test_no_key_configured(void) {
  /* Mutating routes are off until the operator picks a key or opts out. */
  reply r =
      request(SRV_NOKEY, "POST", "/api/device", "Content-Type: application/json\r\n", SWITCH_CPU);
  ASSERT_CONTAINS(r.body, "--insecure-local");
  ASSERT_REFUSED(r, 403, "--api-key");
  /* A key sent to a server without one changes nothing. */
  ASSERT_STATUS(request(SRV_NOKEY, "POST", "/api/device", JSON_KEY, SWITCH_CPU), 403);
  ASSERT_ALLOWED(request(SRV_INSECURE, "POST", "/api/device", "Content-Type: application/json\r\n",
                         SWITCH_CPU));
}

static void test_infer_key(void) {
  /* Inference spends the device: it needs the key when one is set... */
  ASSERT_REFUSED(request(SRV_KEY, "POST", "/api/infer?model=nosuchmodel", NULL, "x"), 401,
                 "needs the API key");
  ASSERT_STATUS(request(SRV_KEY, "POST", "/api/infer?model=nosuchmodel",
                        "Authorization: Bearer " KEY "\r\n", "x"),
                404);
  /* ...and stays open (but same-origin) when none is. */
  ASSERT_STATUS(request(SRV_NOKEY, "POST", "/api/infer?model=nosuchmodel", NULL, "x"), 404);
  ASSERT_REFUSED(request(SRV_NOKEY, "POST", "/api/infer?model=nosuchmodel",
                         "Origin: http://evil.example\r\n", "x"),
                 403, "cross-origin");
}

static void test_read_only_open(void) {
  static const char *const paths[] = {"/healthz", "/readyz", "/api/device",
                                      "/metrics", "/",       "/web/ok.html"};
  for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++)
    ASSERT_STATUS(request(SRV_KEY, "GET", paths[i], NULL, NULL), 200);
}

/* ---- content type -------------------------------------------------------- */

static void test_json_required(void) {
  static const char *const bad[] = {"text/plain", "application/x-www-form-urlencoded",
                                    "multipart/form-data; boundary=x", "application/jsonp"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    char h[256];
    snprintf(h, sizeof h, "Content-Type: %s\r\nAuthorization: Bearer " KEY "\r\n", bad[i]);
    ASSERT_REFUSED(request(SRV_KEY, "POST", "/api/device", h, SWITCH_CPU), 415,
                   "Content-Type: application/json");
  }
  ASSERT_REFUSED(
      request(SRV_KEY, "POST", "/api/device", "Authorization: Bearer " KEY "\r\n", SWITCH_CPU), 415,
      "no Content-Type");
  ASSERT_ALLOWED(request(SRV_KEY, "POST", "/api/device",
                         "Content-Type: Application/JSON; charset=utf-8\r\n"
                         "Authorization: Bearer " KEY "\r\n",
                         SWITCH_CPU));
}

/* ---- origin -------------------------------------------------------------- */

static void test_cross_origin_refused(void) {
  char port_origin[160];
  snprintf(port_origin, sizeof port_origin, JSON_KEY "Origin: http://127.0.0.1:%d\r\n",
           gg_server_port(g_srv[SRV_KEY]) + 1);
  const char *const foreign[] = {
      JSON_KEY "Origin: http://evil.example\r\n",
      JSON_KEY "Origin: null\r\n", /* sandboxed frames, file: pages */
      port_origin,                 /* same host, another port: another origin */
      JSON_KEY "Origin: http://127.0.0.1.evil.example\r\n",
      JSON_KEY "Sec-Fetch-Site: cross-site\r\n",
      JSON_KEY "Sec-Fetch-Site: same-site\r\n",
  };
  for (size_t i = 0; i < sizeof foreign / sizeof foreign[0]; i++)
    ASSERT_REFUSED(request(SRV_KEY, "POST", "/api/device", foreign[i], SWITCH_CPU), 403,
                   "cross-origin request refused");
  /* The attack of issue 10 against a keyless --insecure-local server: a
   * page elsewhere posts text/plain with its own Origin and Host. */
  ASSERT_REFUSED(request(SRV_INSECURE, "POST", "/api/device",
                         "Host: evil.example\r\nOrigin: http://evil.example.com\r\n"
                         "Content-Type: text/plain\r\n",
                         SWITCH_CPU),
                 403, "cross-origin");
  ASSERT_REFUSED(request(SRV_INSECURE, "POST", "/api/device",
                         "Origin: http://evil.example\r\nContent-Type: text/plain\r\n", SWITCH_CPU),
                 403, "cross-origin");
}

static void test_same_origin_allowed(void) {
  char h[256];
  snprintf(h, sizeof h, JSON_KEY "Origin: http://127.0.0.1:%d\r\nSec-Fetch-Site: same-origin\r\n",
           gg_server_port(g_srv[SRV_KEY]));
  ASSERT_ALLOWED(request(SRV_KEY, "POST", "/api/device", h, SWITCH_CPU));
  /* Host names compare case-insensitively; IPv6 literals keep brackets;
   * a Host without a port means the scheme's default. */
  ASSERT_ALLOWED(request(SRV_KEY, "POST", "/api/device",
                         JSON_KEY "Host: GPU.example:8000\r\nOrigin: http://gpu.EXAMPLE:8000\r\n",
                         SWITCH_CPU));
  ASSERT_ALLOWED(request(SRV_KEY, "POST", "/api/device",
                         JSON_KEY "Host: [::1]:8000\r\nOrigin: http://[::1]:8000\r\n", SWITCH_CPU));
  ASSERT_ALLOWED(request(SRV_KEY, "POST", "/api/device",
                         JSON_KEY "Host: gpu.example\r\nOrigin: https://gpu.example\r\n",
                         SWITCH_CPU));
  ASSERT_STATUS(request(SRV_KEY, "POST", "/api/device",
                        JSON_KEY "Host: gpu.example\r\nOrigin: http://gpu.example:8080\r\n",
                        SWITCH_CPU),
                403);
  /* No CORS header is ever offered, not even on the refusal. */
  reply r = request(SRV_KEY, "OPTIONS", "/api/device",
                    "Origin: http://evil.example\r\nAccess-Control-Request-Method: POST\r\n", NULL);
  ASSERT_GE(r.status, 400);
  ASSERT_FALSE(strcasestr(r.head, "\nAccess-Control-"));
  free(r.body);
  r = request(SRV_KEY, "POST", "/api/device", JSON_KEY "Origin: http://evil.example\r\n",
              SWITCH_CPU);
  ASSERT_FALSE(strcasestr(r.head, "\nAccess-Control-"));
  ASSERT_REFUSED(r, 403, "cross-origin");
}

/* ---- static files -------------------------------------------------------- */

static void test_static_regular_served(void) {
  reply r = request(SRV_KEY, "GET", "/web/ok.html", NULL, NULL);
  ASSERT_EQ(r.status, 200);
  ASSERT_STREQ(r.body, "<p>ok</p>\n");
  free(r.body);
  ASSERT_STATUS(request(SRV_KEY, "GET", "/web/sub/page.html", NULL, NULL), 200);
}

static void test_static_symlink_file(void) {
  static const char *const links[] = {"/web/leak.html", "/web/abs.html", "/web/alias.html",
                                      "/web/leak.html%00.png"};
  for (size_t i = 0; i < sizeof links / sizeof links[0]; i++) {
    reply r = request(SRV_KEY, "GET", links[i], NULL, NULL);
    ASSERT_TRUE(r.body && !strstr(r.body, SECRET));
    ASSERT_REFUSED(r, 403, "symbolic link");
  }
}

static void test_static_symlink_dir(void) {
  reply r = request(SRV_KEY, "GET", "/web/leakdir/secret.html", NULL, NULL);
  ASSERT_TRUE(r.body && !strstr(r.body, SECRET));
  ASSERT_REFUSED(r, 403, "symbolic link");
  r = request(SRV_KEY, "GET", "/web/sub/up/secret.html", NULL, NULL);
  ASSERT_TRUE(r.body && !strstr(r.body, SECRET));
  ASSERT_REFUSED(r, 403, "symbolic link");
}

static void test_static_traversal(void) {
  static const char *const paths[] = {
      "/web/../outside/secret.html",         "/web/%2e%2e/outside/secret.html",
      "/web/%2E%2E/outside/secret.html",     "/web/sub/%2e%2e/%2e%2e/outside/secret.html",
      "/web/%2e%2e%2foutside%2fsecret.html", "/web/ok.html%00/../../outside/secret.html"};
  for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
    reply r = request(SRV_KEY, "GET", paths[i], NULL, NULL);
    ASSERT_TRUE(r.status >= 400 || !strcmp(r.body, "<p>ok</p>\n"));
    ASSERT_TRUE(r.body && !strstr(r.body, SECRET));
    free(r.body);
  }
  /* Not regular files: a directory and a FIFO (which must not block). */
  ASSERT_STATUS(request(SRV_KEY, "GET", "/web/sub", NULL, NULL), 404);
  ASSERT_STATUS(request(SRV_KEY, "GET", "/web/", NULL, NULL), 404);
  ASSERT_STATUS(request(SRV_KEY, "GET", "/web/fifo.html", NULL, NULL), 404);
}

/* ---- commands -------------------------------------------------------------- */

/* Runs a shell command; its output (stdout and stderr) goes to out. Returns
 * the exit status, -1 if it could not run or did not exit. */
static int run_capture(const char *cmd, char *out, size_t outlen) {
  char full[1024];
  snprintf(full, sizeof full, "%s 2>&1", cmd);
  FILE *p = popen(full, "r");
  size_t got = p ? fread(out, 1, outlen - 1, p) : 0;
  out[got] = 0;
  int st = p ? pclose(p) : -1;
  return st != -1 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* ---- dashboard ------------------------------------------------------------ */

/* web/index.html's switch form, run by Node against a stub DOM and fetch
 * (tests/fixtures/web/dashboard-key.js). */
static void test_dashboard_sends_key(void) {
  if (system("node --version >/dev/null 2>&1") != 0) SKIP("node not installed");
  char cmd[768], out[1024];
  snprintf(cmd, sizeof cmd, "node %s/fixtures/web/dashboard-key.js %s/../web/index.html",
           GG_TEST_DIR, GG_TEST_DIR);
  int st = run_capture(cmd, out, sizeof out);
  if (st != 0) fprintf(stderr, "  node printed: %s", out);
  ASSERT_EQ(st, 0);
  ASSERT_CONTAINS(out, "ok");
}

/* ---- configuration -------------------------------------------------------- */

static void test_bad_key_config(void) {
  static const char *const bad[] = {"short", "has a space in it 0123", "tab\there-0123456789"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    gg_server_config c = {.host = "127.0.0.1", .device = "cpu", .models = "", .api_key = bad[i]};
    gg_server *s = NULL;
    ASSERT_EQ(gg_server_new(&c, &s), GG_EINVAL);
    ASSERT_TRUE(s == NULL);
  }
  /* The CLI reads the key from the environment too, and says what is wrong. */
  char out[2048];
  ASSERT_EQ(
      run_capture("GPUGUARD_API_KEY=short " GG_BIN " serve --port 0 --models ''", out, sizeof out),
      1);
  ASSERT_CONTAINS(out, "the API key has 5 characters");
}

/* The key given as a flag does not stay readable in `ps` output. */
static void test_key_hidden_from_ps(void) {
  char *const argv[] = {GG_BIN, "serve",     "--api-key", KEY,           "--port", "0", "--models",
                        "",     "--isolate", "0",         "--log-level", "error",  NULL};
  pid_t pid = 0;
  ASSERT_EQ(posix_spawn(&pid, GG_BIN, NULL, NULL, argv, environ), 0);
  char path[64], cmdline[1024];
  snprintf(path, sizeof path, "/proc/%d/cmdline", (int)pid);
  int blanked = 0;
  for (int i = 0; i < 200 && !blanked; i++) { /* 10 s at most */
    usleep(50 * 1000);
    FILE *f = fopen(path, "rb");
    size_t n = f ? fread(cmdline, 1, sizeof cmdline - 1, f) : 0;
    if (f) fclose(f);
    cmdline[n] = 0;
    for (size_t j = 0; j < n; j++) /* arguments are NUL-separated */
      cmdline[j] = cmdline[j] ? cmdline[j] : ' ';
    blanked = strstr(cmdline, "--api-key *************************") != NULL;
  }
  kill(pid, SIGTERM);
  int st = 0;
  waitpid(pid, &st, 0);
  ASSERT_TRUE(blanked);
  ASSERT_FALSE(strstr(cmdline, KEY));
}

/* ---- fixture ---------------------------------------------------------------- */

static int write_file(const char *dir, const char *name, const char *text) {
  char path[256];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "w");
  if (!f) return -1;
  fputs(text, f);
  return fclose(f);
}

/* <dir>/outside/secret.html, and under <dir>/web: regular files, links to
 * the secret (relative, absolute, through a directory), a link that stays
 * inside, a FIFO. */
static int make_web_root(void) {
  snprintf(g_dir, sizeof g_dir, "/tmp/gg-test-access-XXXXXX");
  if (!mkdtemp(g_dir)) return -1;
  char web[128], out[128], sub[160], p[256];
  snprintf(web, sizeof web, "%s/web", g_dir);
  snprintf(out, sizeof out, "%s/outside", g_dir);
  snprintf(sub, sizeof sub, "%s/sub", web);
  int rc = mkdir(web, 0700) | mkdir(out, 0700) | mkdir(sub, 0700);
  rc |= write_file(out, "secret.html", SECRET "\n");
  rc |= write_file(web, "index.html", "<p>index</p>\n");
  rc |= write_file(web, "ok.html", "<p>ok</p>\n");
  rc |= write_file(sub, "page.html", "<p>sub</p>\n");
  snprintf(p, sizeof p, "%s/leak.html", web);
  rc |= symlink("../outside/secret.html", p);
  snprintf(p, sizeof p, "%s/abs.html", web);
  char target[256];
  snprintf(target, sizeof target, "%s/secret.html", out);
  rc |= symlink(target, p);
  snprintf(p, sizeof p, "%s/alias.html", web);
  rc |= symlink("ok.html", p);
  snprintf(p, sizeof p, "%s/leakdir", web);
  rc |= symlink("../outside", p);
  snprintf(p, sizeof p, "%s/up", sub);
  rc |= symlink("../../outside", p);
  snprintf(p, sizeof p, "%s/fifo.html", web);
  rc |= mkfifo(p, 0600);
  return rc ? -1 : 0;
}

static int start_servers(void) {
  char web[128];
  snprintf(web, sizeof web, "%s/web", g_dir);
  for (int i = 0; i < SRV_COUNT; i++) {
    gg_server_config c = {.host = "127.0.0.1",
                          .threads = 2,
                          .device = "cpu",
                          .models = "",
                          .web_dir = web,
                          .isolate = 0,
                          .api_key = i == SRV_KEY ? KEY : NULL,
                          .insecure_local = i == SRV_INSECURE};
    if (gg_server_new(&c, &g_srv[i]) != 0 || gg_server_start(g_srv[i]) != 0) return -1;
  }
  return 0;
}

int main(int argc, char **argv) {
  signal(SIGPIPE, SIG_IGN);
  gg_log_set_level(GG_LOG_ERROR);
  /* The servers run in this process and only need the cpu device: keep GPU
   * drivers (an OpenCL runtime starts threads of its own) out of it, and
   * let helper processes be gpuguard, not this test. */
  setenv("GPUGUARD_WORKER_EXE", GG_BIN, 1);
  setenv("GPUGUARD_LIBOPENCL", "/nonexistent/libOpenCL.so.1", 1);
  setenv("GPUGUARD_LIBCUDA", "/nonexistent/libcuda.so.1", 1);
  setenv("GPUGUARD_LIBNVML", "/nonexistent/libnvidia-ml.so.1", 1);
  int rc = 1;
  if (make_web_root() != 0 || start_servers() != 0) {
    fprintf(stderr, "could not set up the web root in %s or start the servers\n", g_dir);
    printf("0 passed, 1 failed, 0 skipped\n");
  } else {
    static const gg_test_case cases[] = {
        {"key_missing", test_key_missing},
        {"key_wrong", test_key_wrong},
        {"key_right", test_key_right},
        {"no_key_configured", test_no_key_configured},
        {"infer_key", test_infer_key},
        {"read_only_open", test_read_only_open},
        {"json_required", test_json_required},
        {"cross_origin_refused", test_cross_origin_refused},
        {"same_origin_allowed", test_same_origin_allowed},
        {"static_regular_served", test_static_regular_served},
        {"static_symlink_file", test_static_symlink_file},
        {"static_symlink_dir", test_static_symlink_dir},
        {"static_traversal", test_static_traversal},
        {"bad_key_config", test_bad_key_config},
        {"dashboard_sends_key", test_dashboard_sends_key},
        {"key_hidden_from_ps", test_key_hidden_from_ps},
        {0},
    };
    rc = gg_test_main(argc, argv, cases);
  }
  for (int i = 0; i < SRV_COUNT; i++)
    gg_server_free(g_srv[i]);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", g_dir);
  return rc;
}
