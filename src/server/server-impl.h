/* Server internals shared by the HTTP core and the API handlers. */
#ifndef GG_SERVER_IMPL_H
#define GG_SERVER_IMPL_H

#include "gpuguard/device.h"
#include "gpuguard/guard.h"
#include "gpuguard/server.h"

#include <pthread.h>
#include <stdatomic.h>

#define GG_MAX_ROUTES 64

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

typedef struct gg_route {
  char method[8];
  char path[128];
  int prefix;
  gg_http_handler fn;
  void *user;
} gg_route;

struct gg_server {
  gg_server_config cfg;
  char host[64];
  char device_spec[128];
  char models_dir[512];
  char web_dir[512];
  struct MHD_Daemon *daemon;
  struct gg_limits *limits;        /* deadlines, shedding, body budget (limits.c) */
  int port;
  gg_route routes[GG_MAX_ROUTES];
  int nroutes;

  char api_key[256];                     /* "" when none is configured */
  gg_access_route access[GG_MAX_ROUTES]; /* the routes added with access rules */
  int naccess;

  char fallback[256];
  char models[512];
  char faults[256];

  gg_guard *guard;                 /* runs every inference request */
  _Atomic uint64_t generation_count; /* completed inference requests */
  _Atomic uint64_t requests_total;
  _Atomic int models_ready;        /* 1 once the configured models are loaded */
  char models_error[256];          /* why preloading failed, "" if it did not */
  uint64_t started_ns;

  pthread_mutex_t devlist_lock;    /* guards the cached device list */
  gg_device_info *devlist;
  size_t devlist_n;
  uint64_t devlist_ns;
};

/* Copies and checks cfg's API key into srv (at gg_server_new). GG_EINVAL,
 * logged, for a key that is too short, too long or not printable. */
int gg__access_init(gg_server *srv, const gg_server_config *cfg);
/* Logs the access policy once the server listens; warns when mutating
 * routes are open (--insecure-local) on a non-loopback address. */
void gg__access_log_policy(const gg_server *srv);
/* Adds a route whose requests must pass the GG_ACCESS_* checks in `need`
 * before fn runs; a refused request gets a JSON error (401, 403 or 415). */
int gg__server_add_route_access(gg_server *srv, const char *method, const char *path, unsigned need,
                                gg_http_handler fn, void *user);

void gg__server_register_api(gg_server *srv);
void gg__server_register_static(gg_server *srv);

#endif
