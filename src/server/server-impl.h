/* Server internals shared by the HTTP core and the API handlers. */
#ifndef GG_SERVER_IMPL_H
#define GG_SERVER_IMPL_H

#include "gpuguard/device.h"
#include "gpuguard/guard.h"
#include "gpuguard/server.h"

#include <pthread.h>
#include <stdatomic.h>

#define GG_MAX_ROUTES 64

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
  int port;
  gg_route routes[GG_MAX_ROUTES];
  int nroutes;

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

void gg__server_register_api(gg_server *srv);
void gg__server_register_static(gg_server *srv);

#endif
