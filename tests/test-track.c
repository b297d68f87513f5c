/* The face tracker: IoU matching across frames, expiry, the identity vote,
 * independent streams and the bounds on what it keeps. No models. */
#include "gpuguard/error.h"
#include "gpuguard/track.h"
#include "test.h"

#include <pthread.h>

static gg_track_face face_at(float x, float y, int64_t identity, float score) {
  return (gg_track_face){x, y, x + 100, y + 100, identity, score};
}

static gg_tracker *tracker_with(int votes, int min_votes, int max_streams, int max_tracks) {
  gg_tracker_opts o;
  gg_tracker_opts_default(&o);
  o.votes = votes;
  o.min_votes = min_votes;
  o.max_streams = max_streams;
  o.max_tracks = max_tracks;
  gg_tracker *t = NULL;
  if (gg_tracker_new(&o, &t)) return NULL;
  return t;
}

static void test_defaults_and_args(void) {
  gg_tracker_opts o;
  gg_tracker_opts_default(&o);
  ASSERT_NEAR(o.iou_min, 0.3, 1e-6);
  ASSERT_EQ(o.max_age_ms, 2000);
  ASSERT_EQ(o.votes, 15);
  gg_tracker *t = NULL;
  o.votes = GG_TRACK_VOTES_MAX + 1;
  ASSERT_EQ(gg_tracker_new(&o, &t), GG_EINVAL);
  ASSERT_OK(gg_tracker_new(NULL, &t));
  gg_track_face f = face_at(0, 0, 1, 0.9f);
  gg_track_out r;
  ASSERT_EQ(gg_tracker_update(t, "", 0, &f, 1, &r), GG_EINVAL);
  ASSERT_EQ(gg_tracker_update(t, "s", 0, &f, -1, &r), GG_EINVAL);
  ASSERT_OK(gg_tracker_update(t, "s", 0, NULL, 0, NULL));
  gg_tracker_free(t);
  gg_tracker_free(NULL);
}

/* A face that moves a little keeps its track; a second face far away
 * gets a new one, and so does a face that jumps past iou_min. */
static void test_iou_keeps_id(void) {
  gg_tracker *t = tracker_with(15, 1, 4, 8);
  ASSERT_TRUE(t != NULL);
  gg_track_face f[2] = {face_at(0, 0, 7, 0.9f), face_at(500, 0, 8, 0.9f)};
  gg_track_out r[2];
  ASSERT_OK(gg_tracker_update(t, "cam", 0, f, 1, r));
  int64_t a = r[0].track_id;
  ASSERT_GE(a, 1);
  ASSERT_EQ(r[0].frames, 1);
  /* Moved 10 px: IoU 0.82. The new face is listed first, so order in the
   * frame does not decide the match. */
  f[1] = face_at(10, 10, 7, 0.9f);
  f[0] = face_at(500, 0, 8, 0.9f);
  ASSERT_OK(gg_tracker_update(t, "cam", 40, f, 2, r));
  ASSERT_EQ(r[1].track_id, a);
  ASSERT_EQ(r[1].frames, 2);
  ASSERT_NE(r[0].track_id, 0);
  ASSERT_NE(r[0].track_id, a);
  ASSERT_EQ(r[0].frames, 1);
  int64_t b = r[0].track_id;
  /* A jump to IoU 0.14 (< 0.3) is a new face. */
  f[0] = face_at(85, 85, 7, 0.9f);
  ASSERT_OK(gg_tracker_update(t, "cam", 80, f, 1, r));
  ASSERT_NE(r[0].track_id, a);
  ASSERT_NE(r[0].track_id, b);
  gg_tracker_free(t);
}

/* Two faces overlapping the same track: the one with the higher IoU
 * continues it, the other starts its own. */
static void test_greedy_highest_iou(void) {
  gg_tracker *t = tracker_with(15, 1, 4, 8);
  ASSERT_TRUE(t != NULL);
  gg_track_face f[2] = {face_at(0, 0, 1, 0.9f), face_at(0, 0, 1, 0.9f)};
  gg_track_out r[2];
  ASSERT_OK(gg_tracker_update(t, "cam", 0, f, 1, r));
  int64_t a = r[0].track_id;
  f[0] = face_at(30, 0, 1, 0.9f); /* IoU 0.54 */
  f[1] = face_at(5, 0, 1, 0.9f);  /* IoU 0.90 */
  ASSERT_OK(gg_tracker_update(t, "cam", 40, f, 2, r));
  ASSERT_EQ(r[1].track_id, a);
  ASSERT_NE(r[0].track_id, a);
  ASSERT_NE(r[0].track_id, 0);
  gg_tracker_free(t);
}

static void test_expiry(void) {
  gg_tracker *t = tracker_with(15, 1, 4, 8);
  ASSERT_TRUE(t != NULL);
  gg_track_face f = face_at(0, 0, 1, 0.9f);
  gg_track_out r;
  ASSERT_OK(gg_tracker_update(t, "cam", 1000, &f, 1, &r));
  int64_t a = r.track_id;
  ASSERT_OK(gg_tracker_update(t, "cam", 3000, &f, 1, &r)); /* 2000 ms: still alive */
  ASSERT_EQ(r.track_id, a);
  ASSERT_OK(gg_tracker_update(t, "cam", 5001, &f, 1, &r)); /* 2001 ms: expired */
  ASSERT_NE(r.track_id, a);
  ASSERT_EQ(r.frames, 1);
  gg_tracker_free(t);
}

/* Nine frames of identity 5 with one frame of 9 in the middle: the vote
 * stays 5 on every frame, including the bad one. */
static void test_one_bad_frame(void) {
  gg_tracker *t = tracker_with(15, 1, 4, 8);
  ASSERT_TRUE(t != NULL);
  gg_track_out r;
  int64_t id = 0;
  for (int k = 0; k < 10; k++) {
    gg_track_face f = face_at((float)k, 0, k == 4 ? 9 : 5, k == 4 ? 0.99f : 0.6f);
    ASSERT_OK(gg_tracker_update(t, "cam", k * 40, &f, 1, &r));
    if (k == 0) id = r.track_id;
    ASSERT_EQ(r.track_id, id);
    ASSERT_EQ(r.identity_id, 5);
  }
  ASSERT_EQ(r.votes, 9);
  ASSERT_EQ(r.frames, 10);
  ASSERT_NEAR(r.share, 0.9, 1e-6);
  /* An unknown frame does not flip it either. */
  gg_track_face u = face_at(10, 0, 0, 0);
  ASSERT_OK(gg_tracker_update(t, "cam", 400, &u, 1, &r));
  ASSERT_EQ(r.identity_id, 5);
  gg_tracker_free(t);
}

/* A consistent change wins once it has more frames than the old name in
 * the window (window 5: 3 of 5 after the third new frame). */
static void test_consistent_change_flips(void) {
  gg_tracker *t = tracker_with(5, 1, 4, 8);
  ASSERT_TRUE(t != NULL);
  gg_track_out r;
  for (int k = 0; k < 5; k++) {
    gg_track_face f = face_at(0, 0, 5, 0.8f);
    ASSERT_OK(gg_tracker_update(t, "cam", k, &f, 1, &r));
  }
  ASSERT_EQ(r.identity_id, 5);
  int64_t seen[3];
  for (int k = 0; k < 3; k++) {
    gg_track_face f = face_at(0, 0, 6, 0.8f);
    ASSERT_OK(gg_tracker_update(t, "cam", 10 + k, &f, 1, &r));
    seen[k] = r.identity_id;
  }
  ASSERT_EQ(seen[0], 5);
  ASSERT_EQ(seen[1], 5);
  ASSERT_EQ(seen[2], 6);
  ASSERT_EQ(r.votes, 3);
  gg_tracker_free(t);
}

/* Equal counts: the higher mean score wins; unknown is a candidate. */
static void test_vote_ties_and_unknown(void) {
  gg_tracker *t = tracker_with(4, 1, 4, 8);
  ASSERT_TRUE(t != NULL);
  gg_track_out r;
  /* 5 is the newest, but 6 has the higher mean score. */
  int64_t ids[4] = {6, 5, 6, 5};
  float sc[4] = {0.9f, 0.5f, 0.9f, 0.5f};
  for (int k = 0; k < 4; k++) {
    gg_track_face f = face_at(0, 0, ids[k], sc[k]);
    ASSERT_OK(gg_tracker_update(t, "cam", k, &f, 1, &r));
  }
  ASSERT_EQ(r.identity_id, 6);
  /* Three unknown frames out of four: unknown wins. */
  for (int k = 0; k < 3; k++) {
    gg_track_face f = face_at(0, 0, 0, 0);
    ASSERT_OK(gg_tracker_update(t, "cam", 10 + k, &f, 1, &r));
  }
  ASSERT_EQ(r.identity_id, 0);
  ASSERT_EQ(r.votes, 3);
  gg_tracker_free(t);
  /* min_votes 3: two frames are not enough to name it. */
  t = tracker_with(15, 3, 4, 8);
  ASSERT_TRUE(t != NULL);
  for (int k = 0; k < 3; k++) {
    gg_track_face f = face_at(0, 0, 5, 0.8f);
    ASSERT_OK(gg_tracker_update(t, "cam", k, &f, 1, &r));
    ASSERT_EQ(r.identity_id, k < 2 ? 0 : 5);
  }
  gg_tracker_free(t);
}

/* The same box on two streams is two tracks with their own votes. */
static void test_streams_independent(void) {
  gg_tracker *t = tracker_with(15, 1, 4, 8);
  ASSERT_TRUE(t != NULL);
  gg_track_face a = face_at(0, 0, 5, 0.8f), b = face_at(0, 0, 6, 0.8f);
  gg_track_out ra, rb;
  ASSERT_OK(gg_tracker_update(t, "s1", 0, &a, 1, &ra));
  ASSERT_OK(gg_tracker_update(t, "s2", 0, &b, 1, &rb));
  ASSERT_NE(ra.track_id, rb.track_id);
  ASSERT_OK(gg_tracker_update(t, "s1", 40, &a, 1, &ra));
  ASSERT_OK(gg_tracker_update(t, "s2", 40, &b, 1, &rb));
  ASSERT_EQ(ra.frames, 2);
  ASSERT_EQ(rb.frames, 2);
  ASSERT_EQ(ra.identity_id, 5);
  ASSERT_EQ(rb.identity_id, 6);
  ASSERT_EQ(gg_tracker_stream_count(t), 2);
  /* Listed most recent first, with their live tracks only. */
  gg_track_face two[2] = {face_at(0, 0, 5, 0.8f), face_at(500, 0, 0, 0)};
  gg_track_out r2[2];
  ASSERT_OK(gg_tracker_update(t, "s1", 3000, two, 2, r2));
  gg_track_stream_info info[4];
  ASSERT_EQ(gg_tracker_streams(t, 3000, info, 4), 2);
  ASSERT_STREQ(info[0].name, "s1");
  ASSERT_EQ(info[0].last_ms, 3000);
  ASSERT_EQ(info[0].live_tracks, 2);
  ASSERT_EQ(info[0].frames, 2); /* the old track expired: two new ones of one frame */
  ASSERT_STREQ(info[1].name, "s2");
  ASSERT_EQ(info[1].live_tracks, 0); /* last seen 2960 ms before */
  ASSERT_EQ(gg_tracker_streams(t, 3000, info, 1), 1);
  ASSERT_STREQ(info[0].name, "s1");
  ASSERT_EQ(gg_tracker_streams(NULL, 0, info, 4), 0);
  ASSERT_EQ(gg_tracker_streams(t, 0, info, 0), 0);
  gg_tracker_free(t);
}

/* At most max_streams streams (the idlest evicted) and max_tracks tracks
 * per stream (the idlest replaced; faces beyond it untracked). */
static void test_bounds_eviction(void) {
  gg_tracker *t = tracker_with(15, 1, 2, 2);
  ASSERT_TRUE(t != NULL);
  gg_track_face f = face_at(0, 0, 5, 0.8f);
  gg_track_out r, r1;
  ASSERT_OK(gg_tracker_update(t, "s1", 0, &f, 1, &r1));
  ASSERT_OK(gg_tracker_update(t, "s2", 10, &f, 1, &r));
  ASSERT_OK(gg_tracker_update(t, "s1", 20, &f, 1, &r)); /* s1 busy, s2 idlest */
  ASSERT_EQ(r.track_id, r1.track_id);
  ASSERT_OK(gg_tracker_update(t, "s3", 30, &f, 1, &r)); /* evicts s2 */
  ASSERT_EQ(gg_tracker_stream_count(t), 2);
  ASSERT_OK(gg_tracker_update(t, "s1", 40, &f, 1, &r));
  ASSERT_EQ(r.track_id, r1.track_id);
  ASSERT_EQ(r.frames, 3);
  ASSERT_OK(gg_tracker_update(t, "s2", 50, &f, 1, &r)); /* back, fresh; evicts s3 */
  ASSERT_EQ(r.frames, 1);
  ASSERT_OK(gg_tracker_update(t, "s1", 60, &f, 1, &r));
  ASSERT_EQ(r.track_id, r1.track_id);

  /* Three faces in one frame with two track slots: one is untracked. */
  gg_track_face three[3] = {face_at(0, 0, 1, 1), face_at(300, 0, 1, 1), face_at(600, 0, 1, 1)};
  gg_track_out o[3];
  ASSERT_OK(gg_tracker_update(t, "s9", 100, three, 3, o));
  ASSERT_NE(o[0].track_id, 0);
  ASSERT_NE(o[1].track_id, 0);
  ASSERT_EQ(o[2].track_id, 0);
  /* Next frame only the second face and a new one: the new one replaces
   * the idle first track, and the second keeps its id. */
  gg_track_face two[2] = {face_at(300, 0, 1, 1), face_at(900, 0, 1, 1)};
  gg_track_out p[2];
  ASSERT_OK(gg_tracker_update(t, "s9", 140, two, 1, p));
  ASSERT_OK(gg_tracker_update(t, "s9", 180, two, 2, p));
  ASSERT_EQ(p[0].track_id, o[1].track_id);
  ASSERT_NE(p[1].track_id, 0);
  ASSERT_NE(p[1].track_id, o[0].track_id);
  three[0] = face_at(0, 0, 1, 1);
  ASSERT_OK(gg_tracker_update(t, "s9", 220, three, 1, o));
  ASSERT_NE(o[0].track_id, 0); /* its old track was replaced: a new one */
  gg_tracker_free(t);

  /* Full stream, two idle tracks: the new face replaces the idler one. */
  t = tracker_with(15, 1, 2, 3);
  ASSERT_TRUE(t != NULL);
  gg_track_face abc[3] = {face_at(0, 0, 1, 1), face_at(300, 0, 1, 1), face_at(600, 0, 1, 1)};
  gg_track_out q[3];
  ASSERT_OK(gg_tracker_update(t, "s", 0, abc, 3, q));
  int64_t b_id = q[1].track_id;
  ASSERT_OK(gg_tracker_update(t, "s", 40, &abc[1], 1, q)); /* B seen at 40, A idle since 0 */
  gg_track_face cd[2] = {face_at(600, 0, 1, 1), face_at(900, 0, 1, 1)};
  ASSERT_OK(gg_tracker_update(t, "s", 80, cd, 2, q)); /* D replaces A, not B */
  ASSERT_OK(gg_tracker_update(t, "s", 120, &abc[1], 1, q));
  ASSERT_EQ(q[0].track_id, b_id);
  ASSERT_EQ(q[0].frames, 3);
  gg_tracker_free(t);
}

#define THREAD_FRAMES 2000

typedef struct thread_arg {
  gg_tracker *t;
  char stream[16];
  float x;    /* this thread's face position */
  int frames; /* the track's frame count after the last update */
  int64_t track_id;
  int same_id; /* 1 while every update kept the first track id */
} thread_arg;

static void *thread_main(void *p) {
  thread_arg *a = p;
  a->same_id = 1;
  for (int k = 0; k < THREAD_FRAMES; k++) {
    gg_track_face f = face_at(a->x, 0, 5, 0.8f);
    gg_track_out r;
    if (gg_tracker_update(a->t, a->stream, k, &f, 1, &r)) return NULL;
    if (k == 0) a->track_id = r.track_id;
    a->same_id &= r.track_id == a->track_id;
    a->frames = r.frames;
  }
  return NULL;
}

/* Eight threads on one tracker, four on their own streams and four with
 * their own face on one shared stream: every track sees all its frames
 * under one id (TSan checks the locking too). */
static void test_threads(void) {
  gg_tracker *t = tracker_with(15, 1, 8, 4);
  ASSERT_TRUE(t != NULL);
  pthread_t th[8];
  thread_arg args[8];
  for (int i = 0; i < 8; i++) {
    args[i] = (thread_arg){.t = t, .x = i < 4 ? 0 : (float)(i * 300)};
    if (i < 4)
      snprintf(args[i].stream, sizeof args[i].stream, "t%d", i);
    else
      snprintf(args[i].stream, sizeof args[i].stream, "shared");
    ASSERT_EQ(pthread_create(&th[i], NULL, thread_main, &args[i]), 0);
  }
  for (int i = 0; i < 8; i++)
    pthread_join(th[i], NULL);
  for (int i = 0; i < 8; i++) {
    ASSERT_EQ(args[i].frames, THREAD_FRAMES);
    ASSERT_EQ(args[i].same_id, 1);
    for (int k = 0; k < i; k++)
      ASSERT_NE(args[i].track_id, args[k].track_id);
  }
  ASSERT_EQ(gg_tracker_stream_count(t), 5);
  gg_tracker_free(t);
}

int main(int argc, char **argv) {
  static const gg_test_case cases[] = {
      {"defaults_and_args", test_defaults_and_args},
      {"iou_keeps_id", test_iou_keeps_id},
      {"greedy_highest_iou", test_greedy_highest_iou},
      {"expiry", test_expiry},
      {"one_bad_frame", test_one_bad_frame},
      {"consistent_change_flips", test_consistent_change_flips},
      {"vote_ties_and_unknown", test_vote_ties_and_unknown},
      {"streams_independent", test_streams_independent},
      {"bounds_eviction", test_bounds_eviction},
      {"threads", test_threads},
      {0},
  };
  return gg_test_main(argc, argv, cases);
}
