/* gpuguard HTTP service: routes, body limits, device and memory state. */
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
  const char *web_dir;     /* static pages; NULL/"" serves none */
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
} gg_server_config;

/* An incoming request, borrowed for the duration of a handler call. */
typedef struct gg_http_req {
  const char *method;
  const char *path;        /* without query string */
  const char *body;        /* NUL-terminated copy of the body (may contain NULs) */
  size_t body_len;
  void *conn;              /* opaque; use gg_http_query() */
} gg_http_req;

/* A response a handler fills. body is malloc'd and owned by the server after
 * the handler returns. */
typedef struct gg_http_resp {
  int status;
  const char *content_type; /* static string */
  char *body;
  size_t body_len;
} gg_http_resp;

typedef void (*gg_http_handler)(gg_server *srv, const gg_http_req *req, gg_http_resp *resp,
                                void *user);

/* Value of a query parameter, or NULL. Borrowed. */
const char *gg_http_query(const gg_http_req *req, const char *key);
/* Value of a request header (name case-insensitive), or NULL. Borrowed. */
const char *gg_http_header(const gg_http_req *req, const char *name);

/* Fills resp with a JSON error body {"error": {"code": status, "message": msg}}. */
void gg_http_error(gg_http_resp *resp, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Takes a jansson json_t* (steals the reference) and serialises it into resp. */
void gg_http_json(gg_http_resp *resp, int status, void *json);

/* Creates the server (does not listen yet). Copies what it needs from cfg.
 * Opens the configured device; GG_ENODEV / GG_EINVAL for a bad spec. */
int gg_server_new(const gg_server_config *cfg, gg_server **out);
/* Adds a route; exact path match, or a prefix match when path ends in '*'.
 * Must be called before gg_server_start. */
int gg_server_add_route(gg_server *srv, const char *method, const char *path,
                        gg_http_handler fn, void *user);
/* Starts listening. Returns GG_EIO when the address cannot be bound. */
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
