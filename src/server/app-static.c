/* Static web pages (dashboard) and the Prometheus metrics endpoint
 * (the HTTP core's counters, the limits', and the guard's). */
#include "gpuguard/core.h"
#include "gpuguard/error.h"
#include "gpuguard/log.h"
#include "gpuguard/render.h"
#include "server/app.h"
#include "server/app-events.h"
#include "server/http-impl.h"
#include "server/limits.h"
#include "server/sbuf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define STATIC_MAX_BYTES (8u << 20)

static const char *content_type_for(const char *path) {
  const char *dot = strrchr(path, '.');
  if (!dot) return "application/octet-stream";
  if (!strcmp(dot, ".html")) return "text/html; charset=utf-8";
  if (!strcmp(dot, ".js")) return "text/javascript; charset=utf-8";
  if (!strcmp(dot, ".css")) return "text/css; charset=utf-8";
  if (!strcmp(dot, ".json")) return "application/json";
  if (!strcmp(dot, ".png")) return "image/png";
  if (!strcmp(dot, ".svg")) return "image/svg+xml";
  return "application/octet-stream";
}

/* Opens web_dir/<rel> one component at a time with O_NOFOLLOW, so no
 * symbolic link is followed (to a file or a directory, inside or outside
 * web_dir) and a link swapped in between checks changes nothing: what is
 * opened is always a real entry beneath web_dir. web_dir itself may be a
 * link; the operator chose it. Returns an fd, or -1 with the HTTP status
 * in *status: 403 for a link on the way, 404 for anything else missing. */
static int open_beneath(const char *root, const char *rel, int *status) {
  *status = 404;
  int dir = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  while (dir >= 0) {
    char name[256];
    size_t n = strcspn(rel, "/");
    if (n == 0 || n >= sizeof name) break; /* "", "a//b", "dir/" */
    memcpy(name, rel, n);
    name[n] = 0;
    int last = rel[n] == 0;
    /* O_NONBLOCK: opening a FIFO must not hang the HTTP thread. */
    int fd =
        openat(dir, name,
               O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | (last ? O_NONBLOCK : O_DIRECTORY));
    struct stat st;
    if (fd < 0 && fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
      *status = 403;
    close(dir);
    if (fd < 0 || last) return fd;
    dir = fd;
    rel += n + 1;
  }
  if (dir >= 0) close(dir);
  return -1;
}

/* Reads a whole regular file of at most STATIC_MAX_BYTES; malloc'd, NULL
 * on failure with errno set. */
static char *read_all(int fd, size_t size) {
  char *buf = malloc(size + 1);
  size_t got = 0;
  while (buf && got < size) {
    ssize_t r = read(fd, buf + got, size - got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      if (r == 0) errno = EIO; /* shrank while we read it */
      free(buf);
      return NULL;
    }
    got += (size_t)r;
  }
  return buf;
}

/* Serves web_dir/<rel>: only regular files beneath web_dir, reached without
 * "..", odd characters or symbolic links. */
void gg__app_serve_file(gg_app *app, const char *rel, gg_http_resp *resp) {
  if (!app->web_dir[0]) {
    gg_http_error(resp, 404, "no web pages configured (set --web-dir)");
    return;
  }
  if (strstr(rel, "..") || strchr(rel, '\\') || rel[0] == '/' || strlen(rel) > 200) {
    gg_http_error(resp, 400, "invalid path");
    return;
  }
  for (const char *p = rel; *p; p++) {
    if (!(('a' <= *p && *p <= 'z') || ('A' <= *p && *p <= 'Z') || ('0' <= *p && *p <= '9') ||
          *p == '.' || *p == '-' || *p == '_' || *p == '/')) {
      gg_http_error(resp, 400, "invalid character in path");
      return;
    }
  }
  int status;
  int fd = open_beneath(app->web_dir, rel, &status);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    if (fd >= 0) close(fd);
    if (status == 403) {
      GG_WARN("HTTP", "refused /%s: a symbolic link under %s (only regular files are served)", rel,
              app->web_dir);
      gg_http_error(resp, 403,
                    "refused: /%s goes through a symbolic link; only regular files inside the "
                    "web directory are served",
                    rel);
    } else {
      gg_http_error(resp, 404, "no such page: /%s", rel);
    }
    return;
  }
  if ((uint64_t)st.st_size > STATIC_MAX_BYTES) {
    close(fd);
    gg_http_error(resp, 500, "page too large");
    return;
  }
  char *buf = read_all(fd, (size_t)st.st_size);
  int err = errno;
  close(fd);
  if (!buf) {
    gg_http_error(resp, 500, "cannot read %s: %s", rel, strerror(err));
    return;
  }
  resp->status = 200;
  resp->content_type = content_type_for(rel);
  resp->body = buf;
  resp->body_len = (size_t)st.st_size;
}

static void h_index(gg_server *srv, const gg_http_req *req, gg_http_resp *resp, void *user) {
  gg__app_serve_file(user, "index.html", resp);
}

static void h_web(gg_server *srv, const gg_http_req *req, gg_http_resp *resp, void *user) {
  gg__app_serve_file(user, req->path + strlen("/web/"), resp);
}

/* ---- Prometheus text exposition ---------------------------------------- */

static void metric(gg_sbuf *b, const char *name, const char *type, const char *help, double v) {
  gg__sb_printf(b, "# HELP %s %s\n# TYPE %s %s\n%s %.17g\n", name, help, name, type, name, v);
}

/* What the connection limits did (docs/SECURITY.md): a rising
 * closed_total or refused_total is an attack or a client to fix. */
static void limits_metrics(gg_sbuf *b, struct gg_limits *l) {
  gg_limits_stats st;
  gg__limits_stats(l, &st);
  metric(b, "gpuguard_http_connections_open", "gauge", "Connections open now.", st.open);
  metric(b, "gpuguard_http_body_bytes_inflight", "gauge",
         "Request-body bytes held now (bounded by --max-body-inflight).", (double)st.body_inflight);
  gg__sb_printf(b, "# HELP gpuguard_http_connections_closed_total Connections the server ended, by "
                   "reason.\n# TYPE gpuguard_http_connections_closed_total counter\n");
  const struct {
    const char *reason;
    uint64_t n;
  } rows[] = {{"header_deadline", st.closed_header_deadline},
              {"body_deadline", st.closed_body_deadline},
              {"shed", st.shed},
              {"client_gone", st.client_gone}};
  for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
    gg__sb_printf(b, "gpuguard_http_connections_closed_total{reason=\"%s\"} %llu\n", rows[i].reason,
                  (unsigned long long)rows[i].n);
  metric(b, "gpuguard_http_bodies_refused_total", "counter",
         "Request bodies answered 503 because --max-body-inflight was reached.",
         (double)st.refused);
}

/* The MQTT event publisher (docs/mqtt.md); nothing when --mqtt is off. */
static void events_metrics(gg_sbuf *b, gg_app *app) {
  gg_app_events_stats st;
  gg__app_events_stats(app, &st);
  if (!st.enabled) return;
  metric(b, "gpuguard_mqtt_connected", "gauge", "1 while the MQTT broker connection is up.",
         st.connected);
  metric(b, "gpuguard_mqtt_events_published_total", "counter",
         "Recognition events handed to the MQTT broker connection.", (double)st.published);
  metric(b, "gpuguard_mqtt_events_dropped_total", "counter",
         "Recognition events dropped: broker not connected, or not keeping up.",
         (double)st.dropped);
  metric(b, "gpuguard_mqtt_connects_total", "counter",
         "Successful MQTT connections since start, reconnections included.", (double)st.connects);
}

static void h_metrics(gg_server *srv, const gg_http_req *req, gg_http_resp *resp, void *user) {
  gg_app *app = user;
  gg_sbuf b = {0};
  gg_proc_mem pm;
  if (gg_proc_mem_read(&pm) == 0) {
    metric(&b, "gpuguard_process_resident_bytes", "gauge", "Resident set size of the server.",
           pm.rss_mb * 1024 * 1024);
    metric(&b, "gpuguard_process_virtual_bytes", "gauge", "Virtual memory size of the server.",
           pm.vms_mb * 1024 * 1024);
  }
  metric(&b, "gpuguard_uptime_seconds", "gauge", "Seconds since the server started.",
         (double)(gg_now_ns() - srv->started_ns) / 1e9);
  metric(&b, "gpuguard_http_requests_total", "counter", "HTTP requests answered.",
         (double)atomic_load(&srv->requests_total));
  metric(&b, "gpuguard_generations_total", "counter", "Inference requests completed.",
         (double)atomic_load(&app->generation_count));
  metric(&b, "gpuguard_models_ready", "gauge", "1 once the configured models are loaded.",
         atomic_load(&app->models_ready));
  limits_metrics(&b, srv->limits);
  events_metrics(&b, app);
  char *g = gg_guard_prometheus(app->guard);
  if (g)
    gg__sb_printf(&b, "%s", g);
  else
    b.oom = 1;
  free(g);
  if (b.oom) {
    free(b.p);
    gg_http_error(resp, 500, "out of memory while rendering metrics");
    return;
  }
  resp->status = 200;
  resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
  resp->body = b.p;
  resp->body_len = b.len;
}

void gg__app_register_static(gg_app *app) {
  gg_server_add_route(app->srv, "GET", "/", h_index, app);
  gg_server_add_route(app->srv, "GET", "/web/*", h_web, app);
  gg_server_add_route(app->srv, "GET", "/metrics", h_metrics, app);
}
