/* Connection limits of the HTTP service: absolute deadlines for a request's
 * headers and body, load shedding near the connection limit, and the budget
 * of request-body bytes held in memory. Internal to src/server; the limits
 * themselves are listed in docs/SECURITY.md. */
#ifndef GG_SERVER_LIMITS_H
#define GG_SERVER_LIMITS_H

#include "gpuguard/server.h"

#include <microhttpd.h>
#include <stdint.h>

typedef struct gg_limits gg_limits;

/* Where a connection is in its current request. Only the first two can be
 * held open by a client that sends nothing useful, so only they have
 * deadlines and only they are shed. */
typedef enum gg_conn_phase {
  GG_CONN_HEADERS, /* waiting for the request line and headers (also an idle keep-alive) */
  GG_CONN_BODY,    /* headers complete, receiving the body */
  GG_CONN_BUSY,    /* the handler runs or the response is being sent */
  GG_CONN_PHASE_COUNT
} gg_conn_phase;

/* Creates the limits for cfg (whose defaults gg_server_new has filled in).
 * GG_ENOMEM. The reaper thread starts with gg__limits_start. */
int gg__limits_new(const gg_server_config *cfg, gg_limits **out);
/* Starts the reaper thread that closes connections past their deadline.
 * GG_ENOMEM when the thread cannot be created. */
int gg__limits_start(gg_limits *l);
/* Stops and joins the reaper; call after MHD_stop_daemon. Idempotent. */
void gg__limits_stop(gg_limits *l);
/* Stops the reaper if needed and frees l; NULL is a no-op. */
void gg__limits_free(gg_limits *l);

/* MHD_OPTION_NOTIFY_CONNECTION callback; cls is the gg_limits. Tracks each
 * connection and, when a new one leaves fewer than the reserve of free
 * slots, sheds the connections that have been stalled longest. */
void gg__limits_on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                              enum MHD_ConnectionNotificationCode code);
/* Records that conn entered phase (restarting that phase's deadline). */
void gg__limits_set_phase(gg_limits *l, struct MHD_Connection *conn, gg_conn_phase phase);

/* Reserves n bytes of the --max-body-inflight budget. 0, or GG_EBUSY when
 * the bodies already held leave less than n. */
int gg__limits_body_reserve(gg_limits *l, uint64_t n);
/* Returns n reserved bytes to the budget. */
void gg__limits_body_release(gg_limits *l, uint64_t n);

/* What the limits have done, for /metrics. Totals count since start. */
typedef struct gg_limits_stats {
  int open;                        /* connections open now */
  uint64_t body_inflight;          /* request-body bytes reserved now */
  uint64_t body_budget;            /* --max-body-inflight */
  uint64_t closed_header_deadline; /* ended past --header-timeout */
  uint64_t closed_body_deadline;   /* ended past --body-timeout */
  uint64_t shed;                   /* stalled ones ended to keep the reserve */
  uint64_t client_gone;            /* abandoned by their client, then closed */
  uint64_t refused;                /* bodies answered 503 (--max-body-inflight) */
} gg_limits_stats;
/* Fills *out; a NULL l gives zeros. */
void gg__limits_stats(gg_limits *l, gg_limits_stats *out);

#endif
