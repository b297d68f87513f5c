/* Circuit breaker per device: closed -> open after K failures within a
 * window -> half-open after a cooldown, when one probe decides. Pure state;
 * the caller passes the clock and holds the guard's lock. */
#include "guard/guard-impl.h"

#include <stdio.h>
#include <string.h>

const char *gg_breaker_state_name(gg_breaker_state s) {
  static const char *const names[GG_BREAKER_STATE_COUNT] = {"closed", "open", "half_open"};
  return (s >= 0 && s < GG_BREAKER_STATE_COUNT) ? names[s] : "?";
}

void gg__breaker_init(gg__breaker *b, int k, int window_ms, int cooldown_ms) {
  memset(b, 0, sizeof *b);
  b->state = GG_BREAKER_CLOSED;
  b->k = k < 1 ? 1 : (k > GG__BREAKER_MAX_K ? GG__BREAKER_MAX_K : k);
  b->window_ms = window_ms < 0 ? 0 : window_ms;
  b->cooldown_ms = cooldown_ms < 0 ? 0 : cooldown_ms;
}

int gg__breaker_failures_in_window(const gg__breaker *b, int64_t now_ms) {
  int n = 0;
  for (int i = 0; i < b->nfails; i++) {
    int idx = (b->head - 1 - i + GG__BREAKER_MAX_K) % GG__BREAKER_MAX_K;
    if (now_ms - b->fails[idx] <= b->window_ms) n++;
  }
  return n;
}

static void note(gg__breaker *b, int err, const char *reason) {
  b->last_failure_unix_ms = gg__unix_ms();
  b->last_err = err;
  snprintf(b->reason, sizeof b->reason, "%s", reason ? reason : "");
}

int gg__breaker_trip(gg__breaker *b, int64_t now_ms, int err, const char *reason) {
  note(b, err, reason);
  int changed = b->state != GG_BREAKER_OPEN;
  b->state = GG_BREAKER_OPEN;
  b->opened_at = now_ms;
  return changed;
}

int gg__breaker_failure(gg__breaker *b, int64_t now_ms, int err, const char *reason) {
  b->fails[b->head] = now_ms;
  b->head = (b->head + 1) % GG__BREAKER_MAX_K;
  if (b->nfails < GG__BREAKER_MAX_K) b->nfails++;
  if (b->state == GG_BREAKER_HALF_OPEN) return gg__breaker_trip(b, now_ms, err, reason);
  note(b, err, reason);
  if (b->state == GG_BREAKER_CLOSED && gg__breaker_failures_in_window(b, now_ms) >= b->k)
    return gg__breaker_trip(b, now_ms, err, reason);
  return 0;
}

int gg__breaker_success(gg__breaker *b) {
  if (b->state == GG_BREAKER_CLOSED) return 0;
  b->state = GG_BREAKER_CLOSED;
  b->nfails = 0;
  b->head = 0;
  return 1;
}

int gg__breaker_allow(gg__breaker *b, int64_t now_ms) {
  switch (b->state) {
  case GG_BREAKER_CLOSED: return 1;
  case GG_BREAKER_OPEN:
    if (now_ms - b->opened_at < b->cooldown_ms) return 0;
    b->state = GG_BREAKER_HALF_OPEN;
    return 2;
  default: return 2;
  }
}
