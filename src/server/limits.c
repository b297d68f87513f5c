/* Connection limits: header/body deadlines, load shedding, body budget.
 *
 * libmicrohttpd's own timeout is an idle timeout: it restarts on every byte,
 * so a client that sends one header line every few seconds holds its slot
 * for ever, and 512 such clients lock everyone out. The library also calls
 * the access handler only once the headers are complete. So every
 * connection is tracked here from the moment it is accepted
 * (MHD_OPTION_NOTIFY_CONNECTION), the handler marks when the headers and
 * the body are complete, and a reaper thread ends those past an absolute
 * deadline. A connection is ended with shutdown(2), never close(2): the
 * socket stays libmicrohttpd's, which sees end-of-file, cleans up and
 * closes it itself. libmicrohttpd notifies MHD_CONNECTION_NOTIFY_CLOSED
 * before it closes the socket (daemon.c, MHD_cleanup_connections), and the
 * notification takes the table lock, so no fd is shut down after it could
 * have been reused. */
#include "server/limits.h"

#include "gpuguard/core.h"
#include "gpuguard/error.h"
#include "gpuguard/log.h"

#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>

typedef struct gg_conn {
  struct gg_conn *prev, *next;
  int fd;
  gg_conn_phase phase;
  uint64_t since_ns; /* when the current phase began */
  int shut;          /* shutdown(2) done; waiting for libmicrohttpd to close it */
  int gone_ticks;    /* reaper ticks in a row that found the client gone (peer_gone) */
} gg_conn;

struct gg_limits {
  pthread_mutex_t lock; /* the list and every entry in it */
  pthread_cond_t wake;  /* signals the reaper to stop */
  gg_conn *head, *tail; /* accepted and not yet closed, oldest first */
  int open, shut;       /* entries, and those of them already shut down */
  int shed_above;       /* shed while more than this many are open and not shut down */
  uint64_t deadline_ns[GG_CONN_PHASE_COUNT];        /* 0: none */
  uint64_t reaped[GG_CONN_PHASE_COUNT], shed, gone; /* counts since the last log line */
  uint64_t logged_ns;                               /* when that line was written */
  _Atomic uint64_t refused;                         /* bodies over budget, since then too */
  uint64_t total_reaped[GG_CONN_PHASE_COUNT], total_shed, total_gone; /* since start */
  _Atomic uint64_t total_refused;
  pthread_t reaper;
  int running, stopping;
  uint64_t body_budget;
  _Atomic uint64_t body_inflight;
};

int gg__limits_new(const gg_server_config *cfg, gg_limits **out) {
  gg_limits *l = calloc(1, sizeof *l);
  if (!l) return GG_ENOMEM;
  pthread_mutex_init(&l->lock, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&l->wake, &ca);
  pthread_condattr_destroy(&ca);
  l->shed_above = cfg->max_conns - cfg->conn_reserve;
  if (l->shed_above < 1) l->shed_above = 1;
  l->deadline_ns[GG_CONN_HEADERS] = (uint64_t)cfg->header_timeout_s * 1000000000ull;
  l->deadline_ns[GG_CONN_BODY] = (uint64_t)cfg->body_timeout_s * 1000000000ull;
  l->body_budget = cfg->max_body_inflight;
  *out = l;
  return 0;
}

/* Ends c's connection; the caller holds the lock. */
static void conn_shut(gg_limits *l, gg_conn *c) {
  shutdown(c->fd, SHUT_RDWR);
  c->shut = 1;
  l->shut++;
}

/* The connection stalled longest in its headers or body, or NULL. */
static gg_conn *oldest_stalled(gg_limits *l, const gg_conn *except) {
  gg_conn *best = NULL;
  for (gg_conn *c = l->head; c; c = c->next)
    if (c != except && !c->shut && c->phase != GG_CONN_BUSY &&
        (!best || c->since_ns < best->since_ns))
      best = c;
  return best;
}

void gg__limits_on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                              enum MHD_ConnectionNotificationCode code) {
  gg_limits *l = cls;
  if (code == MHD_CONNECTION_NOTIFY_STARTED) {
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    gg_conn *c = ci ? calloc(1, sizeof *c) : NULL;
    *socket_context = c;
    if (!c) return; /* untracked: still bounded by the idle timeout */
    c->fd = ci->connect_fd;
    c->phase = GG_CONN_HEADERS;
    c->since_ns = gg_now_ns();
    pthread_mutex_lock(&l->lock);
    c->prev = l->tail;
    if (l->tail)
      l->tail->next = c;
    else
      l->head = c;
    l->tail = c;
    l->open++;
    /* Keep a reserve of free slots: libmicrohttpd stops accepting at its
     * limit, and then nobody (not even /healthz) gets in until a slot
     * frees. Shedding the connections stalled longest makes room at once;
     * a client that is really sending a request finishes its headers in
     * milliseconds and is never the oldest stalled one. */
    while (l->open - l->shut > l->shed_above) {
      gg_conn *victim = oldest_stalled(l, c);
      if (!victim) break;
      conn_shut(l, victim);
      l->shed++;
      l->total_shed++;
    }
    pthread_mutex_unlock(&l->lock);
  } else if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
    gg_conn *c = *socket_context;
    if (!c) return;
    pthread_mutex_lock(&l->lock);
    if (c->prev)
      c->prev->next = c->next;
    else
      l->head = c->next;
    if (c->next)
      c->next->prev = c->prev;
    else
      l->tail = c->prev;
    l->open--;
    if (c->shut) l->shut--;
    pthread_mutex_unlock(&l->lock);
    free(c);
    *socket_context = NULL;
  }
}

void gg__limits_set_phase(gg_limits *l, struct MHD_Connection *conn, gg_conn_phase phase) {
  const union MHD_ConnectionInfo *ci =
      MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
  gg_conn *c = ci ? ci->socket_context : NULL;
  if (!c) return;
  pthread_mutex_lock(&l->lock);
  c->phase = phase;
  c->since_ns = gg_now_ns();
  c->gone_ticks = 0;
  pthread_mutex_unlock(&l->lock);
}

/* Whether the client has closed its side of fd and every byte it sent has
 * been read. libmicrohttpd 0.9.75 waits for edge-triggered epoll events and
 * takes a short read to mean "nothing more to read": when a client's last
 * bytes and its FIN arrive together, it reads the bytes and never sees the
 * end of file. A client that gives up halfway through its headers or body
 * then stays open (CLOSE-WAIT) until the idle timeout, holding a connection
 * slot and its reserved body bytes. Such a request can never complete. */
static int peer_gone(int fd) {
  struct pollfd p = {.fd = fd, .events = POLLRDHUP};
  int unread = 0;
  return poll(&p, 1, 0) == 1 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) &&
         ioctl(fd, FIONREAD, &unread) == 0 && unread == 0;
}

/* Shuts down every connection past its phase's deadline or abandoned by its
 * client (peer_gone), and at most once a second logs what was ended or
 * refused since the last line (one line, not one per connection: an attack
 * is hundreds a second). */
static void reap(gg_limits *l) {
  uint64_t now = gg_now_ns();
  uint64_t reaped[GG_CONN_PHASE_COUNT] = {0}, shed = 0, gone = 0, refused = 0;
  int log_now = 0;
  pthread_mutex_lock(&l->lock);
  for (gg_conn *c = l->head; c; c = c->next) {
    uint64_t dl = l->deadline_ns[c->phase];
    if (c->shut || c->phase == GG_CONN_BUSY) continue;
    if (dl && now - c->since_ns > dl) {
      conn_shut(l, c);
      l->reaped[c->phase]++;
      l->total_reaped[c->phase]++;
    } else if (!peer_gone(c->fd)) {
      c->gone_ticks = 0;
    } else if (++c->gone_ticks >= 2) {
      /* Two ticks apart, so that a request read but not yet parsed in
       * between (its phase would have changed) is not taken for one that
       * was abandoned. shutdown(2) wakes libmicrohttpd up to close it. */
      conn_shut(l, c);
      l->gone++;
      l->total_gone++;
    }
  }
  if (now - l->logged_ns >= 1000000000ull) {
    log_now = 1;
    l->logged_ns = now;
    for (int p = 0; p < GG_CONN_PHASE_COUNT; p++) {
      reaped[p] = l->reaped[p];
      l->reaped[p] = 0;
    }
    shed = l->shed;
    l->shed = 0;
    gone = l->gone;
    l->gone = 0;
    refused = atomic_exchange(&l->refused, 0);
  }
  pthread_mutex_unlock(&l->lock);
  if (log_now && (reaped[GG_CONN_HEADERS] || reaped[GG_CONN_BODY] || shed || gone || refused))
    GG_WARN("HTTP",
            "closed %" PRIu64 " connections past the header deadline (--header-timeout), "
            "%" PRIu64 " past the body deadline (--body-timeout), %" PRIu64
            " stalled ones to keep the connection reserve (--conn-reserve), %" PRIu64
            " whose client had gone away; refused %" PRIu64
            " request bodies with 503 (--max-body-inflight)",
            reaped[GG_CONN_HEADERS], reaped[GG_CONN_BODY], shed, gone, refused);
}

static void *reaper_main(void *arg) {
  gg_limits *l = arg;
  /* A deadline is enforced within this period after it passes. */
  const long period_ns = 200 * 1000 * 1000;
  pthread_mutex_lock(&l->lock);
  while (!l->stopping) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_nsec += period_ns;
    if (ts.tv_nsec >= 1000000000L) {
      ts.tv_sec++;
      ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&l->wake, &l->lock, &ts);
    if (l->stopping) break;
    pthread_mutex_unlock(&l->lock);
    reap(l);
    pthread_mutex_lock(&l->lock);
  }
  pthread_mutex_unlock(&l->lock);
  return NULL;
}

int gg__limits_start(gg_limits *l) {
  if (l->running) return 0;
  l->stopping = 0;
  if (pthread_create(&l->reaper, NULL, reaper_main, l) != 0) return GG_ENOMEM;
  l->running = 1;
  return 0;
}

void gg__limits_stop(gg_limits *l) {
  if (!l || !l->running) return;
  pthread_mutex_lock(&l->lock);
  l->stopping = 1;
  pthread_cond_signal(&l->wake);
  pthread_mutex_unlock(&l->lock);
  pthread_join(l->reaper, NULL);
  l->running = 0;
}

void gg__limits_free(gg_limits *l) {
  if (!l) return;
  gg__limits_stop(l);
  /* libmicrohttpd has closed every connection by now (MHD_stop_daemon),
   * so the list is empty. */
  pthread_cond_destroy(&l->wake);
  pthread_mutex_destroy(&l->lock);
  free(l);
}

int gg__limits_body_reserve(gg_limits *l, uint64_t n) {
  uint64_t cur = atomic_load(&l->body_inflight);
  do {
    if (n > l->body_budget || cur > l->body_budget - n) {
      atomic_fetch_add(&l->refused, 1);
      atomic_fetch_add(&l->total_refused, 1);
      return GG_EBUSY;
    }
  } while (!atomic_compare_exchange_weak(&l->body_inflight, &cur, cur + n));
  return 0;
}

void gg__limits_body_release(gg_limits *l, uint64_t n) {
  if (n) atomic_fetch_sub(&l->body_inflight, n);
}

void gg__limits_stats(gg_limits *l, gg_limits_stats *out) {
  memset(out, 0, sizeof *out);
  if (!l) return;
  pthread_mutex_lock(&l->lock);
  out->open = l->open;
  out->closed_header_deadline = l->total_reaped[GG_CONN_HEADERS];
  out->closed_body_deadline = l->total_reaped[GG_CONN_BODY];
  out->shed = l->total_shed;
  out->client_gone = l->total_gone;
  pthread_mutex_unlock(&l->lock);
  out->refused = atomic_load(&l->total_refused);
  out->body_inflight = atomic_load(&l->body_inflight);
  out->body_budget = l->body_budget;
}
