/* Events out of the service: each recognition published to an MQTT broker
 * (docs/mqtt.md) for home automation. A thread of ours runs the
 * libmosquitto client: connects, reconnects, writes; a recognition only
 * queues its messages and never waits for the network. Built without libmosquitto,
 * --mqtt makes the server refuse to start rather than publish nothing. */
#include "server/app-events.h"

#include "gpuguard/error.h"
#include "gpuguard/log.h"
#include "server/app.h"
#include "server/mqtt.h"

#include <errno.h>
#include <jansson.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef GG_HAVE_MOSQUITTO
#include <fcntl.h>
#include <mosquitto.h>
#include <time.h>
#include <unistd.h>
#endif

/* Messages handed to libmosquitto and not yet written to the socket, at
 * most. A broker that reads slower than events arrive would otherwise grow
 * the client's queue without bound; beyond this events are dropped. */
#define EVENTS_MAX_QUEUED 1000
/* Seconds between pings on an idle connection; the broker declares the
 * server gone (and publishes its will) after 1.5 times this without
 * traffic. A killed process is noticed at once: its socket closes. */
#define EVENTS_KEEPALIVE_S 10
/* How long a clean stop waits for the broker to take "offline". */
#define EVENTS_STOP_WAIT_MS 2000

#define TOPIC_MAX 512

struct gg_app_events {
  gg_mqtt_url url;
  char prefix[256];
  char t_avail[TOPIC_MAX];
  char t_events[TOPIC_MAX];
  int discovery; /* publish Home Assistant discovery config on connect */
  _Atomic int connected;
  _Atomic int queued; /* messages in libmosquitto's send queue */
  _Atomic uint64_t published, dropped, connects;
  _Atomic int drop_warned; /* a drop was logged since the last connect */
  _Atomic int refused_rc;  /* last CONNACK refusal logged, 0 = none */
#ifdef GG_HAVE_MOSQUITTO
  struct mosquitto *mosq;
  pthread_t thread;     /* events_main: connects, reconnects, runs the loop */
  pthread_mutex_t lock; /* with wake: the pause between connection attempts */
  pthread_cond_t wake;  /* signalled by stop */
  _Atomic int stopping; /* stop has begun */
  _Atomic int thread_done;
  _Atomic int connects_seen;      /* a connection came up since the thread last looked */
  _Atomic int unreachable_logged; /* "not reachable" logged since the last connect */
#endif
};

void gg__app_events_stats(gg_app *app, gg_app_events_stats *out) {
  memset(out, 0, sizeof *out);
  struct gg_app_events *e = app ? app->events : NULL;
  if (!e) return;
  out->enabled = 1;
  out->connected = atomic_load(&e->connected);
  out->published = atomic_load(&e->published);
  out->dropped = atomic_load(&e->dropped);
  out->connects = atomic_load(&e->connects);
}

/* The event as its JSON payload (malloc'd string, NULL without memory). */
static char *event_json(const gg_app_event *ev) {
  json_t *box = json_pack("{s:f,s:f,s:f,s:f}", "x", (double)ev->box[0], "y", (double)ev->box[1],
                          "w", (double)ev->box[2], "h", (double)ev->box[3]);
  json_t *j = json_pack(
      "{s:I,s:I,s:s,s:I,s:s,s:b,s:b,s:f,s:s,s:o,s:I}", "event_id", (json_int_t)ev->event_id,
      "time_ms", (json_int_t)ev->time_ms, "stream", ev->stream ? ev->stream : "", "identity_id",
      (json_int_t)ev->identity_id, "name", ev->name ? ev->name : "unknown", "known",
      ev->identity_id > 0 && !ev->anonymous, "anonymous", ev->identity_id > 0 && ev->anonymous,
      "score", (double)ev->score, "device", ev->device ? ev->device : "", "box", box, "track_id",
      (json_int_t)ev->track_id);
  if (!j) return NULL;
  char *s = json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(6));
  json_decref(j);
  return s;
}

/* Counts one dropped event; the first drop after a (re)connect is logged. */
static void count_drop(struct gg_app_events *e, const char *why) {
  atomic_fetch_add(&e->dropped, 1);
  if (!atomic_exchange(&e->drop_warned, 1))
    GG_WARN("MQTT",
            "recognition events are dropped: %s (counted; the event log at /api/events "
            "keeps them)",
            why);
}

#ifdef GG_HAVE_MOSQUITTO

static pthread_once_t g_lib_once = PTHREAD_ONCE_INIT;

static void lib_init(void) {
  mosquitto_lib_init();
}

/* Publishes one message; counts it in the send queue. Returns the
 * libmosquitto result. */
static int pub(struct gg_app_events *e, int *mid, const char *topic, const char *payload, int qos,
               int retain) {
  atomic_fetch_add(&e->queued, 1);
  int rc = mosquitto_publish(e->mosq, mid, topic, (int)strlen(payload), payload, qos, retain != 0);
  if (rc != MOSQ_ERR_SUCCESS) atomic_fetch_sub(&e->queued, 1);
  return rc;
}

/* Home Assistant MQTT discovery: one sensor, "last recognized person",
 * whose state is the name of each event and whose attributes are the
 * event's fields. Retained, so Home Assistant finds it whenever it starts. */
static void publish_discovery(struct gg_app_events *e) {
  char node[64], topic[TOPIC_MAX], uid[96], devname[300];
  size_t k = 0;
  for (const char *p = e->prefix; *p && k + 1 < sizeof node; p++) {
    char c = *p;
    int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
             c == '-' || c == '_';
    node[k++] = ok ? c : '_';
  }
  node[k] = 0;
  snprintf(topic, sizeof topic, "homeassistant/sensor/%s/last_person/config", node);
  snprintf(uid, sizeof uid, "%s_last_person", node);
  snprintf(devname, sizeof devname, "gpuguard (%s)", e->prefix);
  json_t *j = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:{s:[s],s:s,s:s,s:s}}", "name",
                        "Last recognized person", "unique_id", uid, "state_topic", e->t_events,
                        "value_template",
                        "{{ value_json.name if value_json.identity_id else 'unknown person' }}",
                        "json_attributes_topic", e->t_events, "availability_topic", e->t_avail,
                        "icon", "mdi:face-recognition", "device", "identifiers", node, "name",
                        devname, "manufacturer", "gpuguard", "sw_version", GG_VERSION_STRING);
  char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
  json_decref(j);
  if (s) pub(e, NULL, topic, s, 1, 1);
  free(s);
}

static void on_connect(struct mosquitto *mosq, void *ud, int rc) {
  struct gg_app_events *e = ud;
  if (rc) {
    if (atomic_exchange(&e->refused_rc, rc) != rc)
      GG_ERROR("MQTT",
               "broker %s:%d refused the connection (%s); check the user and password "
               "in --mqtt mqtt://user:pass@host:port",
               e->url.host, e->url.port, mosquitto_connack_string(rc));
    return;
  }
  /* Worker processes must not keep the broker connection alive (and so
   * hold back the will) after this process dies. */
  int fd = mosquitto_socket(mosq);
  if (fd >= 0) fcntl(fd, F_SETFD, fcntl(fd, F_GETFD) | FD_CLOEXEC);
  atomic_store(&e->refused_rc, 0);
  atomic_store(&e->queued, 0); /* a reconnect drops what the old socket had not sent */
  pub(e, NULL, e->t_avail, "online", 1, 1);
  if (e->discovery) publish_discovery(e);
  atomic_fetch_add(&e->connects, 1);
  atomic_store(&e->drop_warned, 0);
  atomic_store(&e->unreachable_logged, 0);
  atomic_store(&e->connects_seen, 1);
  atomic_store(&e->connected, 1);
  GG_INFO("MQTT", "connected to %s:%d; publishing under %s/", e->url.host, e->url.port, e->prefix);
}

static void on_disconnect(struct mosquitto *mosq, void *ud, int rc) {
  (void)mosq;
  struct gg_app_events *e = ud;
  if (atomic_exchange(&e->connected, 0) && rc)
    GG_WARN("MQTT", "lost the connection to %s:%d (%s); reconnecting in the background",
            e->url.host, e->url.port, mosquitto_strerror(rc));
}

static void on_publish(struct mosquitto *mosq, void *ud, int mid) {
  (void)mosq, (void)mid;
  struct gg_app_events *e = ud;
  int q = atomic_load(&e->queued);
  while (q > 0 && !atomic_compare_exchange_weak(&e->queued, &q, q - 1)) {
  }
}

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static void unlock_mutex(void *m) {
  pthread_mutex_unlock(m);
}

/* Waits delay_s seconds or until stop wakes the thread. */
static void events_pause(struct gg_app_events *e, int delay_s) {
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += delay_s;
  pthread_mutex_lock(&e->lock);
  pthread_cleanup_push(unlock_mutex, &e->lock);
  while (!atomic_load(&e->stopping) &&
         pthread_cond_timedwait(&e->wake, &e->lock, &until) != ETIMEDOUT) {
  }
  pthread_cleanup_pop(1);
}

/* The connection thread: connect (without blocking on the TCP handshake),
 * run the client until the connection ends, wait 1, 2, 4 .. 10 s, again.
 * Not mosquitto_loop_start: its thread stalls for good when the first
 * connect fails at once (a broker name that does not resolve yet), and its
 * reconnect pause cannot be interrupted by a stop. */
static void *events_main(void *arg) {
  struct gg_app_events *e = arg;
  int first = 1, delay_s = 1;
  while (!atomic_load(&e->stopping)) {
    int rc = first ? mosquitto_connect_async(e->mosq, e->url.host, e->url.port, EVENTS_KEEPALIVE_S)
                   : mosquitto_reconnect_async(e->mosq);
    if (rc != MOSQ_ERR_INVAL && rc != MOSQ_ERR_NOMEM) first = 0;
    int err = errno;
    while (rc == MOSQ_ERR_SUCCESS && !atomic_load(&e->stopping))
      rc = mosquitto_loop(e->mosq, 1000, 1);
    if (rc == MOSQ_ERR_ERRNO) err = errno;
    if (atomic_load(&e->stopping)) break;
    if (atomic_exchange(&e->connects_seen, 0))
      delay_s = 1; /* it was up: start over */
    else if (!atomic_load(&e->refused_rc) && !atomic_exchange(&e->unreachable_logged, 1))
      GG_WARN("MQTT",
              "broker %s:%d is not reachable (%s); retrying in the background, events are "
              "dropped until it answers",
              e->url.host, e->url.port,
              rc == MOSQ_ERR_ERRNO ? strerror(err) : mosquitto_strerror(rc));
    events_pause(e, delay_s);
    delay_s = delay_s * 2 > 10 ? 10 : delay_s * 2;
  }
  atomic_store(&e->thread_done, 1);
  return NULL;
}

static int events_connect(struct gg_app_events *e) {
  pthread_once(&g_lib_once, lib_init);
  char id[96], host[64] = "";
  gethostname(host, sizeof host - 1);
  host[sizeof host - 1] = 0;
  snprintf(id, sizeof id, "gpuguard-%.40s-%ld", host, (long)getpid());
  e->mosq = mosquitto_new(id, true, e);
  if (!e->mosq) {
    GG_ERROR("MQTT", "%s: cannot create the MQTT client: out of memory", __func__);
    return GG_ENOMEM;
  }
  /* The broker publishes "offline" for us when the connection drops without
   * a clean disconnect (crash, SIGKILL, network loss past the keepalive). */
  mosquitto_will_set(e->mosq, e->t_avail, 7, "offline", 1, true);
  if (e->url.has_user)
    mosquitto_username_pw_set(e->mosq, e->url.user, e->url.pass[0] ? e->url.pass : NULL);
  mosquitto_reconnect_delay_set(e->mosq, 1, 10, true);
  mosquitto_threaded_set(e->mosq, true);
  mosquitto_connect_callback_set(e->mosq, on_connect);
  mosquitto_disconnect_callback_set(e->mosq, on_disconnect);
  mosquitto_publish_callback_set(e->mosq, on_publish);
  pthread_mutex_init(&e->lock, NULL);
  pthread_cond_init(&e->wake, NULL);
  if (pthread_create(&e->thread, NULL, events_main, e)) {
    GG_ERROR("MQTT", "%s: cannot start the MQTT thread", __func__);
    pthread_cond_destroy(&e->wake);
    pthread_mutex_destroy(&e->lock);
    mosquitto_destroy(e->mosq);
    e->mosq = NULL;
    return GG_EOUT_OF_RESOURCES;
  }
  return 0;
}

static void events_disconnect(struct gg_app_events *e) {
  if (!e->mosq) return;
  if (atomic_load(&e->connected)) {
    /* Retained, so a subscriber that comes later still sees "offline". */
    /* Sent once libmosquitto has no message left that the broker did not
     * take (for QoS 1: acknowledged), "offline" the last of them. */
    int rc = pub(e, NULL, e->t_avail, "offline", 1, 1);
    for (int t = 0;
         rc == MOSQ_ERR_SUCCESS && t < EVENTS_STOP_WAIT_MS && atomic_load(&e->queued) > 0; t += 10)
      sleep_ms(10);
    /* DISCONNECT: the broker drops the will. The loop sends it, closes the
     * socket and calls on_disconnect. */
    mosquitto_disconnect(e->mosq);
    for (int t = 0; t < 1000 && atomic_load(&e->connected); t += 10)
      sleep_ms(10);
  }
  atomic_store(&e->stopping, 1);
  pthread_mutex_lock(&e->lock);
  pthread_cond_broadcast(&e->wake);
  pthread_mutex_unlock(&e->lock);
  /* The loop wakes at least once a second. Past that the thread is stuck in
   * a connect() or a name lookup that does not answer: cancel it there. */
  for (int t = 0; t < 1500 && !atomic_load(&e->thread_done); t += 10)
    sleep_ms(10);
  if (!atomic_load(&e->thread_done)) pthread_cancel(e->thread);
  pthread_join(e->thread, NULL);
  mosquitto_destroy(e->mosq);
  e->mosq = NULL;
  pthread_cond_destroy(&e->wake);
  pthread_mutex_destroy(&e->lock);
}

#endif /* GG_HAVE_MOSQUITTO */

int gg__app_events_start(gg_app *app, const gg_server_config *cfg) {
  if (app->events || !cfg->mqtt_url || !*cfg->mqtt_url) return 0;
  struct gg_app_events *e = calloc(1, sizeof *e);
  if (!e) return GG_ENOMEM;
  char err[512];
  int rc = gg__mqtt_url_parse(cfg->mqtt_url, &e->url, err, sizeof err);
  if (rc) {
    GG_ERROR("MQTT", "--mqtt: %s", err);
    free(e);
    return rc;
  }
  snprintf(e->prefix, sizeof e->prefix, "%s",
           cfg->mqtt_prefix && *cfg->mqtt_prefix ? cfg->mqtt_prefix : GG_MQTT_DEFAULT_PREFIX);
  if ((rc = gg__mqtt_prefix_check(e->prefix, err, sizeof err))) {
    GG_ERROR("MQTT", "--mqtt-prefix: %s", err);
    free(e);
    return rc;
  }
  snprintf(e->t_avail, sizeof e->t_avail, "%s/availability", e->prefix);
  snprintf(e->t_events, sizeof e->t_events, "%s/events", e->prefix);
  const char *disc = getenv("GPUGUARD_MQTT_DISCOVERY");
  e->discovery = !(disc && (!strcmp(disc, "0") || !strcmp(disc, "off")));
#ifdef GG_HAVE_MOSQUITTO
  GG_INFO("MQTT", "publishing recognition events to mqtt://%s:%d under %s/", e->url.host,
          e->url.port, e->prefix);
  if ((rc = events_connect(e))) {
    free(e);
    return rc;
  }
  app->events = e;
  return 0;
#else
  GG_ERROR("MQTT", "--mqtt is set, but this gpuguard was built without MQTT support (libmosquitto "
                   "was not found when cmake ran): apt-get install libmosquitto-dev, then re-run "
                   "cmake and rebuild; or start without --mqtt");
  free(e);
  return GG_EUNSUPPORTED;
#endif
}

void gg__app_events_stop(gg_app *app) {
  struct gg_app_events *e = app->events;
  if (!e) return;
  app->events = NULL;
#ifdef GG_HAVE_MOSQUITTO
  events_disconnect(e);
#endif
  free(e);
}

void gg__app_event(gg_app *app, const gg_app_event *ev) {
  struct gg_app_events *e = app->events;
  if (!e) return;
#ifdef GG_HAVE_MOSQUITTO
  if (!atomic_load(&e->connected)) {
    count_drop(e, "the MQTT broker is not connected");
    return;
  }
  if (atomic_load(&e->queued) + 3 > EVENTS_MAX_QUEUED) {
    count_drop(e, "the MQTT broker does not keep up (send queue full)");
    return;
  }
  char *payload = event_json(ev);
  if (!payload) {
    count_drop(e, "out of memory");
    return;
  }
  /* At most once (QoS 0), never retained: a recognition is news only now;
   * redelivered late, it could open a door for someone long gone. */
  int rc = pub(e, NULL, e->t_events, payload, 0, 0);
  char topic[TOPIC_MAX], level[GG_MQTT_SEGMENT_MAX + 1];
  if (rc == MOSQ_ERR_SUCCESS && ev->identity_id > 0 && !ev->anonymous && ev->name) {
    snprintf(topic, sizeof topic, "%s/identity/%s", e->prefix,
             gg__mqtt_topic_level(ev->name, level, sizeof level));
    pub(e, NULL, topic, payload, 0, 0);
  }
  if (rc == MOSQ_ERR_SUCCESS && ev->stream && *ev->stream) {
    snprintf(topic, sizeof topic, "%s/stream/%s", e->prefix,
             gg__mqtt_topic_level(ev->stream, level, sizeof level));
    pub(e, NULL, topic, payload, 0, 0);
  }
  free(payload);
  if (rc == MOSQ_ERR_SUCCESS)
    atomic_fetch_add(&e->published, 1);
  else
    count_drop(e, mosquitto_strerror(rc));
#else
  (void)ev;
  (void)event_json;
  (void)count_drop;
#endif
}
