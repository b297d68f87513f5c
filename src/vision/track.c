/* Face tracker: IoU matching of boxes across a stream's frames and a
 * majority vote over each track's recent identities. See gpuguard/track.h. */
#include "gpuguard/track.h"

#include "gpuguard/error.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct track_vote {
  int64_t identity_id;
  float score;
} track_vote;

typedef struct track {
  int64_t id; /* 0 = free slot */
  float x0, y0, x1, y1;
  int64_t last_ms;
  int frames;
  int hist_n, hist_pos; /* ring of the last opts.votes frames */
  track_vote hist[GG_TRACK_VOTES_MAX];
} track;

typedef struct track_stream {
  char name[GG_TRACK_STREAM_MAX + 1]; /* "" = free slot */
  int64_t last_ms;
  track *tracks; /* opts.max_tracks slots */
} track_stream;

struct gg_tracker {
  gg_tracker_opts opts;
  pthread_mutex_t lock;
  int64_t next_id;
  track_stream *streams; /* opts.max_streams slots */
};

typedef struct track_pair {
  float iou;
  int face, slot;
} track_pair;

void gg_tracker_opts_default(gg_tracker_opts *o) {
  o->iou_min = 0.3f;
  o->max_age_ms = 2000;
  o->votes = 15;
  o->min_votes = 1;
  o->max_streams = 64;
  o->max_tracks = 32;
}

int gg_tracker_new(const gg_tracker_opts *opts, gg_tracker **out) {
  gg_tracker_opts o;
  if (opts)
    o = *opts;
  else
    gg_tracker_opts_default(&o);
  if (!out || !(o.iou_min > 0 && o.iou_min <= 1) || o.max_age_ms < 0 || o.votes < 1 ||
      o.votes > GG_TRACK_VOTES_MAX || o.min_votes < 1 || o.min_votes > o.votes ||
      o.max_streams < 1 || o.max_streams > 65536 || o.max_tracks < 1 || o.max_tracks > 4096)
    return GG_EINVAL;
  gg_tracker *t = calloc(1, sizeof *t);
  if (!t) return GG_ENOMEM;
  t->opts = o;
  t->next_id = 1;
  t->streams = calloc((size_t)o.max_streams, sizeof *t->streams);
  if (!t->streams) {
    free(t);
    return GG_ENOMEM;
  }
  for (int s = 0; s < o.max_streams; s++) {
    t->streams[s].tracks = calloc((size_t)o.max_tracks, sizeof(track));
    if (!t->streams[s].tracks) {
      gg_tracker_free(t);
      return GG_ENOMEM;
    }
  }
  pthread_mutex_init(&t->lock, NULL);
  *out = t;
  return 0;
}

void gg_tracker_free(gg_tracker *t) {
  if (!t) return;
  if (t->streams) {
    for (int s = 0; s < t->opts.max_streams; s++)
      free(t->streams[s].tracks);
    /* The mutex exists only once every slot was allocated. */
    if (t->streams[t->opts.max_streams - 1].tracks) pthread_mutex_destroy(&t->lock);
  }
  free(t->streams);
  free(t);
}

static float box_iou(const track *a, const gg_track_face *b) {
  float ix = (a->x1 < b->x1 ? a->x1 : b->x1) - (a->x0 > b->x0 ? a->x0 : b->x0);
  float iy = (a->y1 < b->y1 ? a->y1 : b->y1) - (a->y0 > b->y0 ? a->y0 : b->y0);
  if (ix <= 0 || iy <= 0) return 0;
  float inter = ix * iy;
  float ua = (a->x1 - a->x0) * (a->y1 - a->y0) + (b->x1 - b->x0) * (b->y1 - b->y0) - inter;
  return ua > 0 ? inter / ua : 0;
}

static int pair_cmp(const void *pa, const void *pb) {
  const track_pair *a = pa, *b = pb;
  if (a->iou != b->iou) return a->iou > b->iou ? -1 : 1;
  if (a->face != b->face) return a->face - b->face;
  return a->slot - b->slot;
}

/* The stream's slot: the existing one, else a free one, else the idlest
 * stream's (evicted). */
static track_stream *stream_slot(gg_tracker *t, const char *name) {
  track_stream *free_slot = NULL, *idlest = NULL;
  for (int s = 0; s < t->opts.max_streams; s++) {
    track_stream *st = &t->streams[s];
    if (!st->name[0]) {
      if (!free_slot) free_slot = st;
    } else if (!strcmp(st->name, name)) {
      return st;
    } else if (!idlest || st->last_ms < idlest->last_ms) {
      idlest = st;
    }
  }
  track_stream *st = free_slot ? free_slot : idlest;
  memset(st->tracks, 0, (size_t)t->opts.max_tracks * sizeof(track));
  snprintf(st->name, sizeof st->name, "%s", name);
  return st;
}

/* The vote over the track's window: the identity (unknown included) with
 * the most frames; ties go to the higher mean score, then to the one seen
 * most recently. Below min_votes the answer is unknown. */
static void track_vote_out(const gg_tracker *t, const track *tr, gg_track_out *o) {
  int64_t ids[GG_TRACK_VOTES_MAX] = {0};
  int counts[GG_TRACK_VOTES_MAX] = {0};
  float sums[GG_TRACK_VOTES_MAX] = {0};
  int nc = 0;
  /* Newest first, so the first candidate seen is the most recent. */
  for (int k = 0; k < tr->hist_n; k++) {
    int at = (tr->hist_pos - 1 - k + GG_TRACK_VOTES_MAX) % GG_TRACK_VOTES_MAX;
    const track_vote *v = &tr->hist[at];
    int c = 0;
    while (c < nc && ids[c] != v->identity_id)
      c++;
    if (c == nc) {
      ids[nc] = v->identity_id;
      counts[nc] = 0;
      sums[nc] = 0;
      nc++;
    }
    counts[c]++;
    sums[c] += v->score;
  }
  int best = 0;
  for (int c = 1; c < nc; c++) {
    if (counts[c] > counts[best] || (counts[c] == counts[best] &&
                                     sums[c] / (float)counts[c] > sums[best] / (float)counts[best]))
      best = c;
  }
  o->track_id = tr->id;
  o->votes = counts[best];
  o->window = tr->hist_n;
  o->share = (float)counts[best] / (float)tr->hist_n;
  o->identity_id = counts[best] >= t->opts.min_votes ? ids[best] : 0;
  o->frames = tr->frames;
}

static void track_push(const gg_tracker *t, track *tr, const gg_track_face *f, int64_t now_ms) {
  tr->x0 = f->x0;
  tr->y0 = f->y0;
  tr->x1 = f->x1;
  tr->y1 = f->y1;
  tr->last_ms = now_ms;
  tr->frames++;
  /* The ring holds GG_TRACK_VOTES_MAX entries; the vote reads the newest
   * opts.votes of them. */
  tr->hist[tr->hist_pos] = (track_vote){f->identity_id, f->score};
  tr->hist_pos = (tr->hist_pos + 1) % GG_TRACK_VOTES_MAX;
  if (tr->hist_n < t->opts.votes) tr->hist_n++;
}

int gg_tracker_update(gg_tracker *t, const char *stream, int64_t now_ms, const gg_track_face *faces,
                      int n, gg_track_out *out) {
  if (!t || !stream || !*stream || strlen(stream) > GG_TRACK_STREAM_MAX || n < 0 ||
      (n > 0 && (!faces || !out)))
    return GG_EINVAL;
  int mt = t->opts.max_tracks;
  track_pair *pairs = NULL;
  unsigned char *taken = NULL;
  if (n > 0) {
    pairs = malloc((size_t)n * (size_t)mt * sizeof *pairs);
    taken = calloc((size_t)mt, 1);
    if (!pairs || !taken) {
      free(pairs);
      free(taken);
      return GG_ENOMEM;
    }
  }
  pthread_mutex_lock(&t->lock);
  track_stream *st = stream_slot(t, stream);
  st->last_ms = now_ms;
  for (int k = 0; k < mt; k++)
    if (st->tracks[k].id && now_ms - st->tracks[k].last_ms > t->opts.max_age_ms)
      memset(&st->tracks[k], 0, sizeof(track));

  int np = 0;
  for (int i = 0; i < n; i++) {
    out[i] = (gg_track_out){0};
    for (int k = 0; k < mt; k++) {
      if (!st->tracks[k].id) continue;
      float iou = box_iou(&st->tracks[k], &faces[i]);
      if (iou >= t->opts.iou_min) pairs[np++] = (track_pair){iou, i, k};
    }
  }
  if (np > 1) qsort(pairs, (size_t)np, sizeof *pairs, pair_cmp);
  for (int p = 0; p < np; p++) {
    track_pair *pr = &pairs[p];
    if (taken[pr->slot] || out[pr->face].track_id) continue;
    taken[pr->slot] = 1;
    track_push(t, &st->tracks[pr->slot], &faces[pr->face], now_ms);
    out[pr->face].track_id = st->tracks[pr->slot].id;
  }
  for (int i = 0; i < n; i++) {
    if (out[i].track_id) continue;
    /* A free slot, else the idlest track not matched in this frame. */
    int slot = -1;
    for (int k = 0; k < mt; k++) {
      if (taken[k]) continue;
      if (!st->tracks[k].id) {
        slot = k;
        break;
      }
      if (slot < 0 || st->tracks[k].last_ms < st->tracks[slot].last_ms) slot = k;
    }
    if (slot < 0) continue; /* more faces than max_tracks: untracked */
    track *tr = &st->tracks[slot];
    memset(tr, 0, sizeof *tr);
    tr->id = t->next_id++;
    taken[slot] = 1;
    track_push(t, tr, &faces[i], now_ms);
    out[i].track_id = tr->id;
  }
  for (int i = 0; i < n; i++) {
    if (!out[i].track_id) continue;
    for (int k = 0; k < mt; k++)
      if (st->tracks[k].id == out[i].track_id) track_vote_out(t, &st->tracks[k], &out[i]);
  }
  pthread_mutex_unlock(&t->lock);
  free(pairs);
  free(taken);
  return 0;
}

int gg_tracker_stream_count(gg_tracker *t) {
  if (!t) return 0;
  int c = 0;
  pthread_mutex_lock(&t->lock);
  for (int s = 0; s < t->opts.max_streams; s++)
    c += t->streams[s].name[0] != 0;
  pthread_mutex_unlock(&t->lock);
  return c;
}

static int by_recent(const void *a, const void *b) {
  int64_t x = ((const gg_track_stream_info *)a)->last_ms,
          y = ((const gg_track_stream_info *)b)->last_ms;
  return x < y ? 1 : x > y ? -1 : 0;
}

int gg_tracker_streams(gg_tracker *t, int64_t now_ms, gg_track_stream_info *out, int cap) {
  if (!t || !out || cap < 1) return 0;
  pthread_mutex_lock(&t->lock);
  int n = 0, kept = 0;
  for (int s = 0; s < t->opts.max_streams; s++)
    kept += t->streams[s].name[0] != 0;
  gg_track_stream_info *all = calloc((size_t)(kept ? kept : 1), sizeof *all);
  for (int s = 0; all && s < t->opts.max_streams; s++) {
    const track_stream *st = &t->streams[s];
    if (!st->name[0]) continue;
    gg_track_stream_info *o = &all[n++];
    snprintf(o->name, sizeof o->name, "%s", st->name);
    o->last_ms = st->last_ms;
    for (int k = 0; k < t->opts.max_tracks; k++) {
      const track *tr = &st->tracks[k];
      if (!tr->id || now_ms - tr->last_ms > t->opts.max_age_ms) continue;
      o->live_tracks++;
      o->frames += tr->frames;
    }
  }
  pthread_mutex_unlock(&t->lock);
  if (!all) return 0;
  qsort(all, (size_t)n, sizeof *all, by_recent);
  if (n > cap) n = cap;
  memcpy(out, all, (size_t)n * sizeof *all);
  free(all);
  return n;
}
