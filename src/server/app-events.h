/* Counters of the event publishers (app-events.c), for /metrics and the
 * dashboard. */
#ifndef GG_SERVER_APP_EVENTS_H
#define GG_SERVER_APP_EVENTS_H

#include "server/app.h"

#include <stdint.h>

typedef struct gg_app_events_stats {
  int enabled;        /* 1 when an MQTT broker is configured (--mqtt) */
  int connected;      /* 1 while the broker connection is up */
  uint64_t published; /* events handed to the broker connection */
  uint64_t dropped;   /* events dropped: broker away, or its send queue full */
  uint64_t connects;  /* successful connections since start, reconnections included */
} gg_app_events_stats;

/* Fills *out with the publishers' counters; all zero when none runs.
 * Lock-free, callable from any thread while the app lives. */
void gg__app_events_stats(gg_app *app, gg_app_events_stats *out);

#endif
