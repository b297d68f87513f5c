/* gpuguard face tracker: follows faces across the frames of a stream by the
 * overlap (IoU) of their boxes and names each track by a vote over its
 * recent frames, so one misrecognised frame does not flip a name. Pure
 * logic, no models; thread-safe (one mutex per tracker). */
#ifndef GPUGUARD_TRACK_H
#define GPUGUARD_TRACK_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Largest vote window and stream id length the tracker accepts. */
#define GG_TRACK_VOTES_MAX 64
#define GG_TRACK_STREAM_MAX 63

typedef struct gg_tracker gg_tracker;

typedef struct gg_tracker_opts {
  float iou_min;      /* a face continues a track when their IoU is >= this (0.3) */
  int64_t max_age_ms; /* a track unmatched this long is dropped (2000) */
  int votes;          /* frames the vote looks back over, 1..GG_TRACK_VOTES_MAX (15) */
  int min_votes;      /* the winner needs this many frames, else "unknown" (1) */
  int max_streams;    /* streams kept; the idlest is evicted for a new one (64) */
  int max_tracks;     /* live tracks per stream; the idlest is replaced (32) */
} gg_tracker_opts;

/* One face of a frame: its box in pixels, the identity this frame's match
 * gave it (0 = unknown) and that match's score. */
typedef struct gg_track_face {
  float x0, y0, x1, y1;
  int64_t identity_id;
  float score;
} gg_track_face;

/* The track a face was assigned to. track_id is unique within the tracker
 * (never reused), 0 when the face could not be tracked (more faces in one
 * frame than max_tracks). identity_id is the voted identity (0 = unknown);
 * share = votes / frames in the window; frames = frames the track has seen
 * in total. */
typedef struct gg_track_out {
  int64_t track_id;
  int64_t identity_id;
  float share;
  int votes;
  int window;
  int frames;
} gg_track_out;

/* Fills o with the defaults named above. */
void gg_tracker_opts_default(gg_tracker_opts *o);

/* Creates a tracker (opts NULL = defaults). Returns 0, GG_EINVAL for an
 * option out of range, or GG_ENOMEM. The caller frees it with
 * gg_tracker_free. */
int gg_tracker_new(const gg_tracker_opts *opts, gg_tracker **out);

/* Frees t and all its state; NULL is a no-op. */
void gg_tracker_free(gg_tracker *t);

/* Feeds one frame of stream (1..GG_TRACK_STREAM_MAX bytes) seen at now_ms:
 * drops the stream's tracks idle longer than max_age_ms, matches the n
 * faces to its live tracks greedily (highest IoU first, IoU >= iou_min),
 * starts a track for each unmatched face and writes out[i] for faces[i].
 * Borrowed arrays; nothing is kept of them. Returns 0, or GG_EINVAL for a
 * bad stream id, n < 0 or a NULL array with n > 0. */
int gg_tracker_update(gg_tracker *t, const char *stream, int64_t now_ms, const gg_track_face *faces,
                      int n, gg_track_out *out);

/* Streams currently kept (for tests and metrics). */
int gg_tracker_stream_count(gg_tracker *t);

/* One kept stream as GET /api/streams shows it. */
typedef struct gg_track_stream_info {
  char name[GG_TRACK_STREAM_MAX + 1];
  int64_t last_ms;  /* now_ms of its last frame (the caller's clock) */
  int live_tracks;  /* tracks seen within max_age_ms of now_ms */
  int64_t frames;   /* frames of its live tracks, summed */
} gg_track_stream_info;

/* Fills out[0..) with at most cap kept streams, the most recently active
 * first; returns how many (0 for a NULL tracker or cap < 1). */
int gg_tracker_streams(gg_tracker *t, int64_t now_ms, gg_track_stream_info *out, int cap);

#ifdef __cplusplus
}
#endif

#endif
