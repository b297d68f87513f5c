/* The generation API (issue 15): POST /api/generate queues an ESRGAN
 * upscale, one worker thread runs the queue through the guard one
 * generation at a time, GET /api/progress/:id streams its progress as
 * Server-Sent Events, POST /api/stop/:id cancels it between tiles, and the
 * result is served as a PNG. Finished generations are kept on disk under
 * <data-dir>/generations (the last --gen-keep), listed by GET
 * /api/generations and removed by DELETE /api/generate/:id.
 * docs/generate.md describes the routes. */
#include "gpuguard/core.h"
#include "gpuguard/error.h"
#include "gpuguard/image.h"
#include "gpuguard/log.h"
#include "gpuguard/upscale.h"
#include "server/app.h"
#include "server/http-impl.h"
#include "server/multipart.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifdef GG_HAVE_PNG
#include <png.h>
#endif

/* Defaults of the --gen-* flags (gg_server_config: 0 = these). */
#define GEN_MAX_OUTPUT 8192 /* output width and height at most */
#define GEN_MAX_INPUT_PIXELS (4096u * 4096u)
#define GEN_QUEUE_MAX 8               /* queued (not yet running) generations */
#define GEN_KEEP 16                   /* finished generations kept, memory and disk */
#define GEN_RETRY_AFTER_S 5           /* what a 429 says */
#define GEN_FILE_VERSION 1            /* the "version" of a history JSON file */
#define GEN_FILE_MAX_BYTES (1u << 20) /* larger history JSON files are skipped */
#define GEN_SEQ_BLOCK 64              /* ids reserved on disk at a time (the "seq" file) */
#define GEN_JSON_MAX_BYTES (24u << 20)
#define GEN_DEFAULT_MODEL "esrgan-slim"
#define GEN_DEFAULT_SCALE 4

static const char *const k_models[] = {"esrgan-slim", "esrgan-medium", "esrgan-thick"};
static const int k_scales[] = {2, 3, 4, 8};

typedef enum gen_status { GEN_QUEUED, GEN_RUNNING, GEN_DONE, GEN_STOPPED, GEN_FAILED } gen_status;
static const char *const k_status[] = {"queued", "running", "done", "stopped", "error"};

typedef struct gen_sub gen_sub;

/* One generation. Fields after `lock`-guarded ones are written by the
 * worker and read under the module lock. */
typedef struct gen {
  int refs; /* the module's list, each subscriber, the worker while it runs */
  int64_t seq;
  char id[32];
  char model[32];
  int scale, tile;
  int in_w, in_h, out_w, out_h;
  gen_status status;
  int stop_requested;
  uint8_t *rgb;       /* the input until it runs */
  gg_generator *gen;  /* while running (cancel target) */
  int current, total; /* steps done, steps in all (0 until planned) */
  unsigned char *png; /* the result once done */
  size_t png_len;
  json_t *info;   /* tile, tiles, timings once planned/done */
  int err_status; /* HTTP status of the error, 0 none */
  char err_name[48];
  char err_msg[300];
  uint64_t created_ns, started_ns, finished_ns;
  int64_t created_ms;       /* Unix time */
  double queued_ms, run_ms; /* fixed when it ends (run_ms -1: never ran) */
  int removed;              /* left the list (evicted or deleted): never written */
  int on_disk;              /* its files are written; png is then read from disk */
  gen_sub *subs;            /* SSE readers */
  struct gen *next;         /* the module's list (newest first) */
  struct gen *qnext;        /* the queue */
  struct gen *tnext;        /* the trash: removed, files to delete */
} gen;

/* One SSE reader of a generation. */
struct gen_sub {
  struct gg_app_generate *m;
  gen *g;
  gg_http_stream *stream;
  int sent_connected, sent_step, sent_final, sent_done;
  char pend[2048];
  size_t pend_len, pend_off;
  gen_sub *next;
};

typedef struct gg_app_generate {
  gg_app *app;
  /* Limits (--gen-max-output, --gen-max-input-pixels, --gen-queue,
   * --gen-keep), fixed at start. */
  int max_output, queue_max, keep;
  uint64_t max_input_pixels;
  pthread_mutex_t lock;
  pthread_cond_t cond;
  pthread_t worker;
  int worker_started, stopping;
  int64_t next_seq;
  gen *all;           /* every generation kept, newest first */
  gen *qhead, *qtail; /* queued */
  int queued;
  gen *trash; /* removed from the list, files still to delete (lock) */
  /* History on disk. disk_lock orders every write and removal of files;
   * it is taken before `lock`, never while holding it. */
  pthread_mutex_t disk_lock;
  char dir[1024];    /* <data-dir>/generations; "" keeps the history in memory */
  int64_t seq_saved; /* the highest id number the "seq" file reserves */
} gg_app_generate;

/* ---- generations --------------------------------------------------------- */

/* Frees g's memory; call with the last reference gone. */
static void gen_destroy(gen *g) {
  free(g->rgb);
  gg_generator_free(g->gen);
  free(g->png);
  json_decref(g->info);
  free(g);
}

/* Drops a reference; the module lock is held. */
static void gen_unref(gen *g) {
  if (--g->refs == 0) gen_destroy(g);
}

static void gen_wake_subs(gen *g) {
  for (gen_sub *s = g->subs; s; s = s->next)
    gg_http_stream_wake(s->stream);
}

static gen *gen_find(gg_app_generate *m, const char *id) {
  for (gen *g = m->all; id && g; g = g->next)
    if (!strcmp(g->id, id)) return g;
  return NULL;
}

/* An id as a URL may carry it: 1..31 characters of [A-Za-z0-9_-]. Checked
 * before any lookup; ids never become paths (files are named from the
 * stored id, which gen_id_parse accepted or the server made). */
static int id_syntax_ok(const char *id) {
  size_t n = id ? strlen(id) : 0;
  if (n == 0 || n >= sizeof((gen *)0)->id) return 0;
  for (size_t i = 0; i < n; i++) {
    char c = id[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
          c == '_'))
      return 0;
  }
  return 1;
}

/* An id the server makes, "g<seq>-<4 hex>"; 1 and its seq, or 0. */
static int gen_id_parse(const char *s, size_t n, int64_t *seq) {
  if (n < 7 || n > 24 || s[0] != 'g' || s[1] < '1' || s[1] > '9') return 0;
  int64_t v = 0;
  size_t i = 1;
  for (; i < n && s[i] >= '0' && s[i] <= '9'; i++)
    v = v * 10 + (s[i] - '0');
  if (i > 19 || i + 5 != n || s[i] != '-') return 0;
  for (i++; i < n; i++)
    if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return 0;
  *seq = v;
  return 1;
}

/* The generation the route's :id names, with m->lock held; NULL (lock
 * released, 400 or 404 written) when there is none. */
static gen *gen_lock_find(gg_app_generate *m, const gg_http_req *req, gg_http_resp *resp) {
  const char *id = gg_http_param(req, "id");
  if (!id_syntax_ok(id)) {
    gg_http_error_named(resp, 400, "bad_id",
                        "'%.40s%s' is not a generation id: ids are 1 to 31 letters, digits, "
                        "'-' or '_' (as POST /api/generate returned them)",
                        id ? id : "", id && strlen(id) > 40 ? "..." : "");
    return NULL;
  }
  pthread_mutex_lock(&m->lock);
  gen *g = gen_find(m, id);
  if (!g) {
    pthread_mutex_unlock(&m->lock);
    gg_http_error(resp, 404, "no generation '%s' (the last %d finished ones are kept)", id,
                  m->keep);
  }
  return g;
}

/* Takes g out of the list into the trash (lock held; it is out of the list
 * already or unlinked by the caller). The list's reference moves with it;
 * trash_flush deletes its files and drops it. */
static void gen_trash(gg_app_generate *m, gen *g) {
  g->removed = 1;
  g->next = NULL;
  g->tnext = m->trash;
  m->trash = g;
}

/* Keeps the last m->keep finished generations; older ones go to the trash.
 * Lock held. */
static void gen_evict(gg_app_generate *m) {
  int seen = 0;
  for (gen **pp = &m->all; *pp;) {
    gen *g = *pp;
    if (g->status >= GEN_DONE && ++seen > m->keep) {
      *pp = g->next;
      gen_trash(m, g);
      continue;
    }
    pp = &g->next;
  }
}

static double ms_between(uint64_t a, uint64_t b) {
  return a && b && b >= a ? (double)(b - a) / 1e6 : 0;
}

/* Fixes g's end time and timings (lock held), once. */
static void gen_settle(gen *g) {
  if (g->finished_ns) return;
  g->finished_ns = gg_now_ns();
  g->queued_ms = ms_between(g->created_ns, g->started_ns ? g->started_ns : g->finished_ns);
  g->run_ms = g->started_ns ? ms_between(g->started_ns, g->finished_ns) : -1;
  free(g->rgb);
  g->rgb = NULL;
}

/* Marks g finished with status st (lock held) and evicts what falls out of
 * the last m->keep. The caller then empties the trash (trash_flush) and
 * wakes g's readers (gen_wake_subs), in whichever order it promises. */
static void gen_finish(gg_app_generate *m, gen *g, gen_status st) {
  gen_settle(g);
  g->status = st;
  gen_evict(m);
}

static void gen_set_error(gen *g, int status, const char *name, const char *msg) {
  g->err_status = status;
  snprintf(g->err_name, sizeof g->err_name, "%s", name);
  snprintf(g->err_msg, sizeof g->err_msg, "%s", msg);
}

/* The status JSON of g as if its status were st (lock held). */
static json_t *gen_json_as(const gen *g, gen_status st) {
  json_t *j = json_pack("{s:s,s:s,s:s,s:i,s:{s:i,s:i},s:{s:i,s:i},s:I}", "id", g->id, "status",
                        k_status[st], "model", g->model, "scale", g->scale, "input", "w", g->in_w,
                        "h", g->in_h, "output", "w", g->out_w, "h", g->out_h, "created_ms",
                        (json_int_t)g->created_ms);
  if (!j) return NULL;
  if (g->tile) json_object_set_new(j, "tile_requested", json_integer(g->tile));
  json_object_set_new(j, "current_step", json_integer(g->current));
  json_object_set_new(j, "total_steps", json_integer(g->total));
  if (st >= GEN_DONE) { /* fixed when it ended (or read from its file) */
    json_object_set_new(j, "queued_ms", json_real(g->queued_ms));
    if (g->run_ms >= 0) json_object_set_new(j, "run_ms", json_real(g->run_ms));
  } else {
    uint64_t now = gg_now_ns();
    json_object_set_new(j, "queued_ms",
                        json_real(ms_between(g->created_ns, g->started_ns ? g->started_ns : now)));
    if (g->started_ns) json_object_set_new(j, "run_ms", json_real(ms_between(g->started_ns, now)));
  }
  if (g->info) json_object_set(j, "info", g->info);
  if (st == GEN_DONE) {
    char url[96];
    snprintf(url, sizeof url, "/api/generate/%s/image", g->id);
    json_object_set_new(j, "image", json_string(url));
    json_object_set_new(j, "png_bytes", json_integer((json_int_t)g->png_len));
  }
  if (g->err_status)
    json_object_set_new(j, "error",
                        json_pack("{s:i,s:s,s:s}", "code", g->err_status, "name", g->err_name,
                                  "message", g->err_msg));
  return j;
}

static json_t *gen_json(const gen *g) {
  return gen_json_as(g, g->status);
}

/* ---- history on disk ------------------------------------------------------ */

/* Per generation, in m->dir: <id>.json (gen_json plus "version") and, when
 * done, <id>.png. Each is written to ".<name>.tmp", fsync'd and renamed, the
 * PNG before the JSON, then the folder is fsync'd: only a JSON file makes a
 * generation listed, and one is never seen half written. A crash leaves at
 * most a temp file or a PNG without JSON; the next start removes both. */

/* Writes len bytes as dir/name, atomically (see above). 0 or GG_EIO. */
static int file_write_atomic(const char *dir, const char *name, const void *data, size_t len,
                             char *err, size_t errlen) {
  char tmp[1200], dst[1200];
  snprintf(tmp, sizeof tmp, "%s/.%s.tmp", dir, name);
  snprintf(dst, sizeof dst, "%s/%s", dir, name);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return gg_errf(err, errlen, GG_EIO, "cannot create %s: %s", tmp, strerror(errno));
  const char *p = data;
  size_t off = 0;
  int e = 0;
  while (off < len && !e) {
    ssize_t w = write(fd, p + off, len - off);
    if (w < 0 && errno != EINTR) e = errno;
    if (w > 0) off += (size_t)w;
  }
  if (!e && fsync(fd)) e = errno;
  if (close(fd) && !e) e = errno;
  if (!e && rename(tmp, dst)) e = errno;
  if (!e) return 0;
  unlink(tmp);
  return gg_errf(err, errlen, GG_EIO, "cannot write %s: %s", dst, strerror(e));
}

/* Makes renames and unlinks in dir durable. 0 or GG_EIO. */
static int dir_sync(const char *dir, char *err, size_t errlen) {
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0 || fsync(fd)) {
    int e = errno;
    if (fd >= 0) close(fd);
    return gg_errf(err, errlen, GG_EIO, "cannot sync folder %s: %s", dir, strerror(e));
  }
  close(fd);
  return 0;
}

/* Removes g's files (disk_lock held). 1 when one was there. */
static int files_remove(const gg_app_generate *m, const char *id) {
  char path[1200];
  int any = 0;
  static const char *const ext[] = {"json", "png"}; /* the JSON first: unlisted at once */
  for (int i = 0; i < 2; i++) {
    snprintf(path, sizeof path, "%s/%s.%s", m->dir, id, ext[i]);
    if (unlink(path) == 0)
      any = 1;
    else if (errno != ENOENT)
      GG_WARN("HTTP", "generation history: cannot remove %s: %s", path, strerror(errno));
  }
  return any;
}

/* Deletes the files of everything in the trash and drops it. Takes
 * disk_lock then lock; call with neither held. */
static void trash_flush(gg_app_generate *m) {
  pthread_mutex_lock(&m->disk_lock);
  pthread_mutex_lock(&m->lock);
  gen *t = m->trash;
  m->trash = NULL;
  pthread_mutex_unlock(&m->lock);
  int any = 0;
  for (gen *g = t; g && m->dir[0]; g = g->tnext)
    any |= files_remove(m, g->id); /* g->id never changes: no lock needed */
  char err[300];
  if (any && dir_sync(m->dir, err, sizeof err)) GG_WARN("HTTP", "generation history: %s", err);
  pthread_mutex_unlock(&m->disk_lock);
  pthread_mutex_lock(&m->lock);
  while (t) {
    gen *n = t->tnext;
    gen_unref(t);
    t = n;
  }
  pthread_mutex_unlock(&m->lock);
}

/* Writes g, ending with status st, to disk, once, unless it was removed meanwhile (an
 * eviction or a DELETE sets `removed` under the lock before trash_flush
 * takes disk_lock, so the two never leave files behind). Afterwards the
 * PNG is served from its file and freed from memory. On a write error g
 * stays in memory only (logged). The caller holds a reference and neither
 * lock. g->png is stable here: only this function (under disk_lock) and
 * gen_destroy change it. */
static void gen_persist(gg_app_generate *m, gen *g, gen_status st) {
  if (!m->dir[0]) return;
  pthread_mutex_lock(&m->disk_lock);
  pthread_mutex_lock(&m->lock);
  json_t *j = NULL;
  int skip = g->removed || g->on_disk || st < GEN_DONE;
  if (!skip && (j = gen_json_as(g, st)))
    json_object_set_new(j, "version", json_integer(GEN_FILE_VERSION));
  pthread_mutex_unlock(&m->lock);
  if (!skip) {
    char err[300] = "", name[48];
    int rc = j ? 0 : gg_errf(err, sizeof err, GG_ENOMEM, "out of memory");
    if (!rc && st == GEN_DONE) {
      snprintf(name, sizeof name, "%s.png", g->id);
      rc = g->png ? file_write_atomic(m->dir, name, g->png, g->png_len, err, sizeof err)
                  : gg_errf(err, sizeof err, GG_ESTATE, "no image in memory");
    }
    char *txt = rc ? NULL : json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(17));
    if (!rc && !txt) rc = gg_errf(err, sizeof err, GG_ENOMEM, "out of memory");
    snprintf(name, sizeof name, "%s.json", g->id);
    if (!rc) rc = file_write_atomic(m->dir, name, txt, strlen(txt), err, sizeof err);
    free(txt);
    if (!rc) rc = dir_sync(m->dir, err, sizeof err);
    if (rc) {
      GG_WARN("HTTP", "generation %s is kept in memory only (lost on restart): %s", g->id, err);
      files_remove(m, g->id);
    } else {
      pthread_mutex_lock(&m->lock);
      g->on_disk = 1;
      free(g->png);
      g->png = NULL;
      pthread_mutex_unlock(&m->lock);
    }
  }
  json_decref(j);
  pthread_mutex_unlock(&m->disk_lock);
}

/* Reserves ids up to seq + GEN_SEQ_BLOCK - 1 in the "seq" file, so ids stay
 * unique across restarts even when every file was deleted. No lock held. */
static void seq_reserve(gg_app_generate *m, int64_t seq) {
  if (!m->dir[0]) return;
  pthread_mutex_lock(&m->disk_lock);
  if (seq > m->seq_saved) {
    char txt[32], err[300];
    int64_t upto = seq + GEN_SEQ_BLOCK - 1;
    int n = snprintf(txt, sizeof txt, "%" PRId64 "\n", upto);
    if (file_write_atomic(m->dir, "seq", txt, (size_t)n, err, sizeof err) == 0)
      m->seq_saved = upto;
    else
      GG_WARN("HTTP", "generation history: %s (ids may repeat after a restart)", err);
  }
  pthread_mutex_unlock(&m->disk_lock);
}

/* Reads dir/name, a regular file (no symlink) of at most max bytes, into a
 * malloc'd NUL-terminated buffer. 0, GG_EIO or GG_ETOO_LARGE with err. */
static int file_read(const char *dir, const char *name, size_t max, char **out, size_t *len,
                     char *err, size_t errlen) {
  char path[1200];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  *out = NULL;
  int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
  struct stat st;
  if (fd < 0 || fstat(fd, &st)) {
    int e = errno;
    if (fd >= 0) close(fd);
    return gg_errf(err, errlen, GG_EIO, "cannot open %s: %s", path, strerror(e));
  }
  if (!S_ISREG(st.st_mode)) {
    close(fd);
    return gg_errf(err, errlen, GG_EIO, "%s is not a regular file", path);
  }
  if ((uint64_t)st.st_size > max) {
    close(fd);
    return gg_errf(err, errlen, GG_ETOO_LARGE, "%s is %lld bytes, more than %zu", path,
                   (long long)st.st_size, max);
  }
  size_t n = (size_t)st.st_size, off = 0;
  char *p = malloc(n + 1);
  while (p && off < n) {
    ssize_t r = read(fd, p + off, n - off);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    off += (size_t)r;
  }
  close(fd);
  if (!p || off != n) {
    free(p);
    return gg_errf(err, errlen, p ? GG_EIO : GG_ENOMEM, "cannot read %s", path);
  }
  p[n] = 0;
  *out = p;
  *len = n;
  return 0;
}

static int known_model(const char *s);
static int known_scale(int x);

/* An int member of j within [lo, hi]; -1 (err set) when absent or not. */
static int jint_in(const json_t *j, const char *k, long long lo, long long hi, long long *out,
                   char *err, size_t errlen) {
  const json_t *v = json_object_get(j, k);
  if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi) {
    gg_errf(err, errlen, GG_EINVAL, "'%s' is missing or not an integer in %lld..%lld", k, lo, hi);
    return -1;
  }
  *out = (long long)json_integer_value(v);
  return 0;
}

/* Reads generation `id` (seq) from m->dir: its JSON, checked field by
 * field, and for a done one the PNG's size. NULL with the reason in err. */
static gen *gen_load(const gg_app_generate *m, const char *id, int64_t seq, char *err,
                     size_t errlen) {
  char name[48], *txt = NULL;
  size_t len = 0;
  snprintf(name, sizeof name, "%s.json", id);
  if (file_read(m->dir, name, GEN_FILE_MAX_BYTES, &txt, &len, err, errlen)) return NULL;
  json_error_t je;
  json_t *j = json_loadb(txt, len, 0, &je);
  free(txt);
  if (!json_is_object(j)) {
    gg_errf(err, errlen, GG_EINVAL, "not a JSON object (%s, line %d)", j ? "" : je.text,
            j ? 0 : je.line);
    json_decref(j);
    return NULL;
  }
  gen *g = calloc(1, sizeof *g);
  const char *fid = json_string_value(json_object_get(j, "id"));
  const char *st = json_string_value(json_object_get(j, "status"));
  const char *model = json_string_value(json_object_get(j, "model"));
  const json_t *in = json_object_get(j, "input"), *outj = json_object_get(j, "output");
  long long v[8] = {0};
  int bad = g ? 0 : gg_errf(err, errlen, GG_ENOMEM, "out of memory");
  if (!bad && (!fid || strcmp(fid, id)))
    bad = gg_errf(err, errlen, GG_EINVAL, "its 'id' is not %s", id);
  if (!bad) {
    g->status = GEN_QUEUED;
    for (int s = GEN_DONE; s <= GEN_FAILED; s++)
      if (st && !strcmp(st, k_status[s])) g->status = (gen_status)s;
    if (g->status == GEN_QUEUED)
      bad = gg_errf(err, errlen, GG_EINVAL, "'status' is not done, stopped or error");
  }
  if (!bad && !known_model(model)) bad = gg_errf(err, errlen, GG_EINVAL, "unknown 'model'");
  if (!bad && (jint_in(j, "scale", 2, 8, &v[0], err, errlen) || !known_scale((int)v[0])))
    bad = gg_errf(err, errlen, GG_EINVAL, "'scale' is not 2, 3, 4 or 8");
  if (!bad)
    bad = jint_in(in, "w", 1, 1 << 20, &v[1], err, errlen) ||
          jint_in(in, "h", 1, 1 << 20, &v[2], err, errlen) ||
          jint_in(outj, "w", 1, 1 << 20, &v[3], err, errlen) ||
          jint_in(outj, "h", 1, 1 << 20, &v[4], err, errlen) ||
          jint_in(j, "created_ms", 0, INT64_MAX, &v[5], err, errlen);
  if (!bad) {
    snprintf(g->id, sizeof g->id, "%s", id);
    snprintf(g->model, sizeof g->model, "%s", model);
    g->seq = seq;
    g->scale = (int)v[0];
    g->in_w = (int)v[1], g->in_h = (int)v[2], g->out_w = (int)v[3], g->out_h = (int)v[4];
    g->created_ms = (int64_t)v[5];
    long long t;
    if (!jint_in(j, "tile_requested", 16, 1024, &t, err, errlen)) g->tile = (int)t;
    if (!jint_in(j, "current_step", 0, INT32_MAX, &t, err, errlen)) g->current = (int)t;
    if (!jint_in(j, "total_steps", 0, INT32_MAX, &t, err, errlen)) g->total = (int)t;
    const json_t *q = json_object_get(j, "queued_ms"), *r = json_object_get(j, "run_ms");
    g->queued_ms = json_is_number(q) ? json_number_value(q) : 0;
    g->run_ms = json_is_number(r) ? json_number_value(r) : -1;
    json_t *info = json_object_get(j, "info");
    if (json_is_object(info)) g->info = json_incref(info);
    const json_t *e = json_object_get(j, "error");
    if (json_is_object(e)) {
      const char *en = json_string_value(json_object_get(e, "name"));
      const char *em = json_string_value(json_object_get(e, "message"));
      if (!jint_in(e, "code", 100, 599, &t, err, errlen) && en && em)
        gen_set_error(g, (int)t, en, em);
    }
    err[0] = 0;
  }
  if (!bad && g->status == GEN_DONE) {
    long long bytes = 0;
    struct stat sb;
    char path[1200];
    snprintf(path, sizeof path, "%s/%s.png", m->dir, id);
    if (jint_in(j, "png_bytes", 1, INT64_MAX, &bytes, err, errlen))
      bad = 1;
    else if (lstat(path, &sb) || !S_ISREG(sb.st_mode) || (long long)sb.st_size != bytes)
      bad =
          gg_errf(err, errlen, GG_EINVAL, "its image %s is missing or not %lld bytes", path, bytes);
    else
      g->png_len = (size_t)bytes;
  }
  json_decref(j);
  if (bad) {
    if (g) gen_destroy(g);
    return NULL;
  }
  g->on_disk = 1;
  g->refs = 1;
  return g;
}

static int gen_cmp_newest(const void *a, const void *b) {
  const gen *x = *(gen *const *)a, *y = *(gen *const *)b;
  return x->seq < y->seq ? 1 : x->seq > y->seq ? -1 : 0;
}

/* Finds <data-dir>/generations (created 0700), removes what a crash left
 * (temp files, PNGs without JSON), loads every readable generation (the
 * others are skipped with a warning), keeps the newest m->keep and sets
 * the next id past every one seen. Without a usable folder the history
 * stays in memory (m->dir ""), logged. Runs before the worker starts. */
static void history_load(gg_app_generate *m) {
  char base[1024], err[300];
  m->dir[0] = 0;
  if (gg_gallery_data_dir(m->app->data_dir_flag, base, sizeof base, err, sizeof err)) {
    GG_WARN("HTTP", "generation history stays in memory (lost on restart): %s", err);
    return;
  }
  int n = snprintf(m->dir, sizeof m->dir, "%s/generations", base);
  struct stat st;
  if (n < 0 || (size_t)n >= sizeof m->dir || (mkdir(m->dir, 0700) && errno != EEXIST) ||
      lstat(m->dir, &st) || !S_ISDIR(st.st_mode)) {
    GG_WARN("HTTP",
            "generation history stays in memory (lost on restart): %s/generations is not "
            "a usable folder: %s",
            base, strerror(errno ? errno : ENOTDIR));
    m->dir[0] = 0;
    return;
  }
  DIR *d = opendir(m->dir);
  if (!d) {
    GG_WARN("HTTP", "generation history stays in memory: cannot read %s: %s", m->dir,
            strerror(errno));
    m->dir[0] = 0;
    return;
  }
  /* Names first, files after: nothing is unlinked while readdir runs. */
  char(*names)[64] = NULL;
  size_t cnt = 0, cap = 0;
  for (struct dirent *e; (e = readdir(d));) {
    size_t nl = strlen(e->d_name);
    if (nl >= 64) continue; /* not a name this folder's files have */
    if (cnt == cap) {
      size_t nc = cap ? cap * 2 : 64;
      void *p = realloc(names, nc * sizeof *names);
      if (!p) break;
      names = p;
      cap = nc;
    }
    memcpy(names[cnt++], e->d_name, nl + 1);
  }
  closedir(d);
  gen **v = cnt ? calloc(cnt, sizeof *v) : NULL;
  size_t nv = 0;
  if (cnt && !v) GG_WARN("HTTP", "generation history: out of memory, nothing loaded");
  int64_t max_seq = 0;
  for (size_t i = 0; i < cnt; i++) {
    const char *nm = names[i];
    size_t len = strlen(nm);
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", m->dir, nm);
    if (nm[0] == '.' && len > 5 && !strcmp(nm + len - 4, ".tmp")) {
      if (unlink(path) == 0) GG_INFO("HTTP", "generation history: removed leftover %s", path);
      continue;
    }
    if (!strcmp(nm, "seq")) {
      char *txt = NULL;
      size_t tl = 0;
      if (file_read(m->dir, nm, 64, &txt, &tl, err, sizeof err) == 0) {
        long long x = strtoll(txt, NULL, 10);
        if (x > m->seq_saved) m->seq_saved = x;
      }
      free(txt);
      continue;
    }
    const char *dot = strrchr(nm, '.');
    int64_t seq;
    if (!dot || !gen_id_parse(nm, (size_t)(dot - nm), &seq)) continue;
    if (seq > max_seq) max_seq = seq;
    char id[32];
    snprintf(id, sizeof id, "%.*s", (int)(dot - nm), nm);
    if (!strcmp(dot, ".png")) {
      char js[1200];
      snprintf(js, sizeof js, "%s/%s.json", m->dir, id);
      if (access(js, F_OK) && errno == ENOENT && unlink(path) == 0)
        GG_INFO("HTTP", "generation history: removed %s (no JSON: an interrupted write)", path);
      continue;
    }
    if (strcmp(dot, ".json")) continue;
    if (!v) continue;
    gen *g = gen_load(m, id, seq, err, sizeof err);
    if (!g)
      GG_WARN("HTTP", "generation history: skipping %s: %s", path, err);
    else
      v[nv++] = g;
  }
  free(names);
  if (nv) qsort(v, nv, sizeof *v, gen_cmp_newest);
  pthread_mutex_lock(&m->lock);
  for (size_t i = nv; i-- > 0;) {
    v[i]->next = m->all;
    m->all = v[i];
  }
  gen_evict(m);
  m->next_seq = max_seq > m->seq_saved ? max_seq : m->seq_saved;
  pthread_mutex_unlock(&m->lock);
  free(v);
  trash_flush(m);
  GG_INFO("HTTP", "generation history in %s: %zu loaded (kept: the last %d), next id g%" PRId64,
          m->dir, nv < (size_t)m->keep ? nv : (size_t)m->keep, m->keep, m->next_seq + 1);
}

/* ---- PNG ----------------------------------------------------------------- */

/* Encodes w x h RGB into a malloc'd PNG. 0, GG_ENOTIMPL without libpng,
 * GG_ENOMEM. */
static int png_encode(const uint8_t *rgb, int w, int h, unsigned char **out, size_t *len) {
#ifdef GG_HAVE_PNG
  png_image im;
  memset(&im, 0, sizeof im);
  im.version = PNG_IMAGE_VERSION;
  im.width = (png_uint_32)w;
  im.height = (png_uint_32)h;
  im.format = PNG_FORMAT_RGB;
  png_alloc_size_t n = 0;
  if (!png_image_write_to_memory(&im, NULL, &n, 0, rgb, 0, NULL) || !n) {
    png_image_free(&im);
    return GG_ENOMEM;
  }
  unsigned char *p = malloc(n);
  if (!p) return GG_ENOMEM;
  memset(&im, 0, sizeof im);
  im.version = PNG_IMAGE_VERSION;
  im.width = (png_uint_32)w;
  im.height = (png_uint_32)h;
  im.format = PNG_FORMAT_RGB;
  if (!png_image_write_to_memory(&im, p, &n, 0, rgb, 0, NULL)) {
    png_image_free(&im);
    free(p);
    return GG_ENOMEM;
  }
  *out = p;
  *len = n;
  return 0;
#else
  (void)rgb, (void)w, (void)h, (void)out, (void)len;
  return GG_ENOTIMPL;
#endif
}

/* ---- the worker ------------------------------------------------------------ */

typedef struct run_ctx {
  gg_app_generate *m;
  gen *g;
} run_ctx;

static void on_progress(void *user, int step, int total) {
  run_ctx *c = user;
  pthread_mutex_lock(&c->m->lock);
  c->g->current = step;
  c->g->total = total;
  gen_wake_subs(c->g);
  pthread_mutex_unlock(&c->m->lock);
}

static json_t *info_json(const gg_upscale_info *in) {
  return json_pack("{s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:s,s:s,s:{s:f,s:f,s:f,s:f,s:f}}", "tile",
                   in->tile, "overlap", in->overlap, "tiles", in->tiles, "tiles_x", in->tiles_x,
                   "tiles_y", in->tiles_y, "halvings", in->halvings, "smallest_tile",
                   in->smallest_tile, "runs", in->runs, "device", in->device, "served_by",
                   in->served_by, "timings", "plan_ms", in->plan_ms, "total_ms", in->total_ms,
                   "step_ms_min", in->step_ms_min, "step_ms_max", in->step_ms_max, "step_ms_mean",
                   in->step_ms_mean);
}

/* Runs one generation start to end (called without the lock). */
static void run_one(gg_app_generate *m, gen *g) {
  char err[300] = "";
  pthread_mutex_lock(&m->lock);
  uint8_t *rgb = g->rgb;
  g->rgb = NULL;
  gg_upscale_opts o = {
      .model = g->model, .scale = g->scale, .tile = g->tile, .max_output = m->max_output};
  int w = g->in_w, h = g->in_h;
  pthread_mutex_unlock(&m->lock);

  gg_generator *gn = NULL;
  int rc = gg_upscale_new(m->app->guard, &o, rgb, w, h, &gn, err, sizeof err);
  free(rgb);
  gg_upscale_info info;
  pthread_mutex_lock(&m->lock);
  if (!rc) {
    g->gen = gn;
    g->total = gg_generator_total_steps(gn);
    if (gg_upscale_info_get(gn, &info) == 0) {
      json_decref(g->info);
      g->info = info_json(&info);
    }
    if (g->stop_requested) gg_generator_cancel(gn);
  }
  pthread_mutex_unlock(&m->lock);

  if (!rc) {
    run_ctx c = {m, g};
    rc = gg_generator_run(gn, on_progress, &c, err, sizeof err);
  }
  unsigned char *png = NULL;
  size_t png_len = 0;
  json_t *ij = NULL;
  if (gn && gg_upscale_info_get(gn, &info) == 0) ij = info_json(&info);
  if (!rc) {
    gg_gen_image im;
    rc = gg_generator_image(gn, &im);
    if (!rc) rc = png_encode(im.rgb, im.width, im.height, &png, &png_len);
    if (rc)
      snprintf(err, sizeof err, "the finished image could not be encoded as PNG: %s",
               gg_strerror(rc));
  }
  pthread_mutex_lock(&m->lock);
  g->gen = NULL;
  pthread_mutex_unlock(&m->lock);
  gg_generator_free(gn); /* outside the lock: frees the result image */
  atomic_fetch_add(&m->app->generation_count, 1);

  /* The end in three steps, so that whoever sees it ended can rely on it:
   * the files are written while it still reads as running, then it ends
   * (evicting the oldest), the evicted files go, and only then are its
   * readers woken for the final events. */
  gen_status st = !rc ? GEN_DONE : rc == GG_ECANCELED ? GEN_STOPPED : GEN_FAILED;
  pthread_mutex_lock(&m->lock);
  if (ij) {
    json_decref(g->info);
    g->info = ij;
  }
  if (st == GEN_DONE) {
    g->png = png;
    g->png_len = png_len;
  } else if (st == GEN_STOPPED) {
    gen_set_error(g, 409, "stopped", err[0] ? err : "the generation was stopped");
  } else {
    char msg[300];
    snprintf(msg, sizeof msg, "%s", err[0] ? err : gg_strerror(rc));
    gen_set_error(g, gg_http_status_for(rc), gg_err_name(rc), msg);
  }
  gen_settle(g);
  pthread_mutex_unlock(&m->lock);
  gen_persist(m, g, st); /* the worker's reference keeps g */
  pthread_mutex_lock(&m->lock);
  gen_finish(m, g, st);
  GG_INFO("HTTP", "generation %s %s x%d %dx%d: %s in %.0f ms", g->id, g->model, g->scale, g->in_w,
          g->in_h, k_status[g->status], ms_between(g->started_ns, g->finished_ns));
  pthread_mutex_unlock(&m->lock);
  trash_flush(m);
  pthread_mutex_lock(&m->lock);
  gen_wake_subs(g);
  pthread_mutex_unlock(&m->lock);
}

static void *worker_main(void *arg) {
  gg_app_generate *m = arg;
  pthread_mutex_lock(&m->lock);
  for (;;) {
    while (!m->stopping && !m->qhead)
      pthread_cond_wait(&m->cond, &m->lock);
    if (m->stopping) break;
    gen *g = m->qhead;
    m->qhead = g->qnext;
    if (!m->qhead) m->qtail = NULL;
    g->qnext = NULL;
    m->queued--;
    g->status = GEN_RUNNING;
    g->started_ns = gg_now_ns();
    g->refs++;
    gen_wake_subs(g);
    pthread_mutex_unlock(&m->lock);
    run_one(m, g);
    pthread_mutex_lock(&m->lock);
    gen_unref(g);
  }
  pthread_mutex_unlock(&m->lock);
  return NULL;
}

/* ---- SSE ------------------------------------------------------------------- */

/* Formats the next event of s into s->pend (lock held). 1 when one was
 * made, 0 when there is none yet, -1 when the stream is over. */
static int sub_next_event(gen_sub *s) {
  gen *g = s->g;
  json_t *d = NULL;
  const char *ev = NULL;
  if (!s->sent_connected) {
    ev = "connected";
    d = json_pack("{s:s,s:s,s:s,s:i}", "id", g->id, "status", k_status[g->status], "model",
                  g->model, "scale", g->scale);
    s->sent_connected = 1;
  } else if (s->sent_step < g->current) {
    ev = "progress";
    s->sent_step++;
    int total = g->total ? g->total : s->sent_step;
    d = json_pack("{s:i,s:i,s:f}", "current_step", s->sent_step, "total_steps", total, "percentage",
                  100.0 * s->sent_step / total);
  } else if (g->status >= GEN_DONE && !s->sent_final) {
    s->sent_final = 1;
    if (g->status == GEN_DONE) {
      ev = "complete";
      d = gen_json(g);
    } else {
      ev = "error";
      d = json_pack("{s:s,s:s,s:{s:i,s:s,s:s}}", "id", g->id, "status", k_status[g->status],
                    "error", "code", g->err_status, "name", g->err_name, "message", g->err_msg);
    }
  } else if (s->sent_final && !s->sent_done) {
    s->sent_done = 1;
    ev = "done";
    d = json_pack("{s:s,s:s}", "id", g->id, "status", k_status[g->status]);
  } else {
    return s->sent_done ? -1 : 0;
  }
  char *txt = d ? json_dumps(d, JSON_COMPACT | JSON_REAL_PRECISION(6)) : NULL;
  json_decref(d);
  int n = snprintf(s->pend, sizeof s->pend, "event: %s\ndata: %s\n\n", ev, txt ? txt : "{}");
  free(txt);
  if (n < 0 || (size_t)n >= sizeof s->pend) n = (int)strlen(s->pend);
  s->pend_len = (size_t)n;
  s->pend_off = 0;
  return 1;
}

static long sub_read(void *user, char *buf, size_t max) {
  gen_sub *s = user;
  pthread_mutex_lock(&s->m->lock);
  size_t out = 0;
  int over = 0;
  while (out < max) {
    if (s->pend_off == s->pend_len) {
      int r = sub_next_event(s);
      if (r <= 0) {
        over = r < 0;
        break;
      }
    }
    size_t take = s->pend_len - s->pend_off;
    if (take > max - out) take = max - out;
    memcpy(buf + out, s->pend + s->pend_off, take);
    s->pend_off += take;
    out += take;
  }
  pthread_mutex_unlock(&s->m->lock);
  if (out) return (long)out;
  return over ? -1 : 0;
}

static void sub_close(void *user) {
  gen_sub *s = user;
  gg_app_generate *m = s->m;
  pthread_mutex_lock(&m->lock);
  for (gen_sub **pp = &s->g->subs; *pp; pp = &(*pp)->next)
    if (*pp == s) {
      *pp = s->next;
      break;
    }
  gen_unref(s->g);
  pthread_mutex_unlock(&m->lock);
  free(s);
}

/* ---- routes ---------------------------------------------------------------- */

static int known_model(const char *s) {
  for (size_t i = 0; s && i < sizeof k_models / sizeof k_models[0]; i++)
    if (!strcmp(s, k_models[i])) return 1;
  return 0;
}

static int known_scale(int x) {
  for (size_t i = 0; i < sizeof k_scales / sizeof k_scales[0]; i++)
    if (x == k_scales[i]) return 1;
  return 0;
}

/* Parses a decimal integer field; -1 when it is not one. */
static int parse_int(const char *s, size_t n, int *out) {
  char tmp[16];
  if (n == 0 || n >= sizeof tmp) return -1;
  memcpy(tmp, s, n);
  tmp[n] = 0;
  char *end = NULL;
  long v = strtol(tmp, &end, 10);
  if (*end || v < -1000000 || v > 1000000) return -1;
  *out = (int)v;
  return 0;
}

typedef struct gen_params {
  char model[32];
  int scale, tile;
  unsigned char *bytes; /* the encoded image (owned when owned = 1) */
  const void *data;
  size_t len;
} gen_params;

/* Reads the request's fields (multipart or JSON). 0, or -1 with resp set. */
static int read_params(const gg_http_req *req, gg_http_resp *resp, gen_params *p) {
  snprintf(p->model, sizeof p->model, "%s", GEN_DEFAULT_MODEL);
  p->scale = GEN_DEFAULT_SCALE;
  p->tile = 0;
  const char *ct = gg_http_header(req, "Content-Type");
  char err[200] = "";
  if (gg__multipart_is_form(ct)) {
    const void *d;
    size_t n;
    int rc = gg__multipart_find(req->body, req->body_len, ct, "image", 0, &p->data, &p->len, err,
                                sizeof err);
    if (rc == GG_ENOTFOUND) {
      gg_http_error_named(resp, 400, "missing_image",
                          "the form has no 'image' field: send the picture as the multipart "
                          "field 'image'");
      return -1;
    }
    if (rc) {
      gg_http_error_named(resp, 400, "bad_multipart", "the multipart body is malformed: %s", err);
      return -1;
    }
    if (gg__multipart_find(req->body, req->body_len, ct, "model", 64, &d, &n, err, sizeof err) ==
        0) {
      if (n >= sizeof p->model) n = sizeof p->model - 1;
      memcpy(p->model, d, n);
      p->model[n] = 0;
    }
    static const char *const ints[] = {"scale", "tile"};
    int *dst[] = {&p->scale, &p->tile};
    for (int i = 0; i < 2; i++) {
      if (gg__multipart_find(req->body, req->body_len, ct, ints[i], 32, &d, &n, err, sizeof err))
        continue;
      if (parse_int(d, n, dst[i])) {
        gg_http_error_named(resp, 400, "bad_parameter", "field '%s' must be an integer, got '%.*s'",
                            ints[i], (int)(n > 20 ? 20 : n), (const char *)d);
        return -1;
      }
    }
    return 0;
  }
  if (!gg__http_is_json_type(ct)) {
    gg_http_error_named(resp, 415, "unsupported_media_type",
                        "POST /api/generate takes multipart/form-data (fields image, model, "
                        "scale) or application/json ({\"image\": base64, \"model\", \"scale\"})");
    return -1;
  }
  json_t *j = NULL;
  if (gg_http_read_json(req, resp, GEN_JSON_MAX_BYTES, (void **)&j)) return -1;
  json_t *im = json_object_get(j, "image"), *mo = json_object_get(j, "model");
  json_t *sc = json_object_get(j, "scale"), *ti = json_object_get(j, "tile");
  int bad = 0;
  if (mo && !json_is_string(mo)) bad = 1;
  if ((sc && !json_is_integer(sc)) || (ti && !json_is_integer(ti))) bad = 1;
  if (bad) {
    json_decref(j);
    gg_http_error_named(resp, 400, "bad_parameter",
                        "'model' must be a string, 'scale' and 'tile' integers");
    return -1;
  }
  if (!json_is_string(im)) {
    json_decref(j);
    gg_http_error_named(resp, 400, "missing_image",
                        "the JSON body has no 'image' string: send the picture base64-encoded");
    return -1;
  }
  if (mo) snprintf(p->model, sizeof p->model, "%s", json_string_value(mo));
  if (sc) p->scale = (int)json_integer_value(sc);
  if (ti) p->tile = (int)json_integer_value(ti);
  int rc = gg_base64_decode(json_string_value(im), GG_IMAGE_MAX_BYTES, &p->bytes, &p->len, err,
                            sizeof err);
  json_decref(j);
  if (rc) {
    gg_http_error_named(resp, rc == GG_ETOO_LARGE ? 413 : 400, "bad_image",
                        "'image' is not valid base64: %s", err);
    return -1;
  }
  p->data = p->bytes;
  return 0;
}

/* Input pixels at most: --gen-max-input-pixels, or --max-pixels when lower. */
static uint64_t input_limit(const gg_app_generate *m) {
  uint64_t a = m->app->max_pixels;
  return a && a < m->max_input_pixels ? a : m->max_input_pixels;
}

static void h_generate(gg_server *srv, const gg_http_req *req, gg_http_resp *resp, void *user) {
  (void)srv;
  gg_app_generate *m = user;
  gen_params p;
  memset(&p, 0, sizeof p);
  if (read_params(req, resp, &p)) return;
  if (!known_model(p.model)) {
    free(p.bytes);
    gg_http_error_named(resp, 400, "unknown_model",
                        "unknown model '%s'; use esrgan-slim, esrgan-medium or esrgan-thick",
                        p.model);
    return;
  }
  if (!known_scale(p.scale)) {
    free(p.bytes);
    gg_http_error_named(resp, 400, "bad_scale", "scale %d is not offered; use 2, 3, 4 or 8",
                        p.scale);
    return;
  }
  if (p.tile && (p.tile < 16 || p.tile > 1024)) {
    free(p.bytes);
    gg_http_error_named(resp, 400, "bad_tile",
                        "tile %d is out of range: 16 to 1024 input pixels, or 0 to let the "
                        "server choose",
                        p.tile);
    return;
  }
  char err[300];
  if (gg_upscale_model_path(p.model, p.scale, err, sizeof err, NULL, err, sizeof err) ==
      GG_ENOTFOUND) {
    free(p.bytes);
    gg_http_error_named(resp, 503, "model_not_fetched",
                        "model %s x%d is not in the model cache: run scripts/fetch-models.sh",
                        p.model, p.scale);
    return;
  }
  if (p.len == 0) {
    free(p.bytes);
    gg_http_error_named(resp, 400, "missing_image", "the image is empty");
    return;
  }
  uint64_t max_px = input_limit(m);
  gg_image img = {0};
  int rc = gg_image_decode(p.data, p.len, max_px, &img, err, sizeof err);
  free(p.bytes);
  if (rc == GG_ETOO_LARGE) {
    gg_http_error_named(resp, 413, "image_too_large",
                        "%s (the generation input limit is %" PRIu64 " pixels)", err, max_px);
    return;
  }
  if (rc) {
    gg_http_error_named(resp, 400, "bad_image", "the image cannot be decoded: %s", err);
    return;
  }
  int64_t ow = (int64_t)img.width * p.scale, oh = (int64_t)img.height * p.scale;
  if (ow > m->max_output || oh > m->max_output) {
    gg_http_error_named(resp, 413, "output_too_large",
                        "%dx%d at x%d would be %" PRId64 "x%" PRId64
                        ", more than the %dx%d output limit (--gen-max-output); send a smaller "
                        "image or a smaller scale",
                        img.width, img.height, p.scale, ow, oh, m->max_output, m->max_output);
    gg_image_free(&img);
    return;
  }
  gen *g = calloc(1, sizeof *g);
  if (!g) {
    gg_image_free(&img);
    gg_http_error(resp, 503, "out of memory");
    return;
  }
  snprintf(g->model, sizeof g->model, "%s", p.model);
  g->scale = p.scale;
  g->tile = p.tile;
  g->in_w = img.width;
  g->in_h = img.height;
  g->out_w = (int)ow;
  g->out_h = (int)oh;
  g->rgb = img.rgb;
  g->created_ns = gg_now_ns();
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  g->created_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
  g->refs = 1;

  pthread_mutex_lock(&m->lock);
  if (m->queued >= m->queue_max || m->stopping) {
    int q = m->queued;
    pthread_mutex_unlock(&m->lock);
    free(g->rgb);
    free(g);
    gg_http_error_named(resp, 429, "queue_full",
                        "%d generations are already queued (at most %d, --gen-queue); retry in "
                        "%d s",
                        q, m->queue_max, GEN_RETRY_AFTER_S);
    resp->retry_after_s = GEN_RETRY_AFTER_S;
    return;
  }
  g->seq = ++m->next_seq;
  snprintf(g->id, sizeof g->id, "g%" PRId64 "-%04x", g->seq,
           (unsigned)((g->created_ns / 1000) & 0xffff));
  g->next = m->all;
  m->all = g;
  if (m->qtail)
    m->qtail->qnext = g;
  else
    m->qhead = g;
  m->qtail = g;
  m->queued++;
  json_t *j = json_pack("{s:s,s:s,s:i,s:{s:i,s:i},s:{s:i,s:i},s:s,s:s}", "id", g->id, "model",
                        g->model, "scale", g->scale, "input", "w", g->in_w, "h", g->in_h, "output",
                        "w", g->out_w, "h", g->out_h, "status", "queued", "progress", "");
  char url[96];
  snprintf(url, sizeof url, "/api/progress/%s", g->id);
  if (j) json_object_set_new(j, "progress", json_string(url));
  int64_t seq = g->seq;
  pthread_cond_signal(&m->cond);
  pthread_mutex_unlock(&m->lock);
  seq_reserve(m, seq);
  gg_http_json(resp, 202, j);
}

static void h_progress(gg_server *srv, const gg_http_req *req, gg_http_resp *resp, void *user) {
  (void)srv;
  gg_app_generate *m = user;
  gen *g = gen_lock_find(m, req, resp);
  if (!g) return;
  gen_sub *s = calloc(1, sizeof *s);
  if (!s) {
    pthread_mutex_unlock(&m->lock);
    gg_http_error(resp, 503, "out of memory");
    return;
  }
  s->m = m;
  s->g = g;
  g->refs++;
  /* Linked before the stream exists: a wake before then is a no-op, and
   * the first read sends everything that happened so far. */
  s->next = g->subs;
  g->subs = s;
  pthread_mutex_unlock(&m->lock);
  gg_http_stream *st = NULL;
  if (gg_http_stream_begin(resp, "text/event-stream", sub_read, sub_close, s, &st)) return;
  pthread_mutex_lock(&m->lock);
  s->stream = st;
  pthread_mutex_unlock(&m->lock);
}

/* Takes queued g out of m's queue (m->lock held): the list, its tail and
 * the count. */
static void queue_remove(gg_app_generate *m, gen *g) {
  for (gen **pp = &m->qhead; *pp; pp = &(*pp)->qnext)
    if (*pp == g) {
      *pp = g->qnext;
      break;
    }
  m->qtail = NULL;
  for (gen *q = m->qhead; q; q = q->qnext)
    m->qtail = q;
  m->queued--;
}

static void h_stop(gg_server *srv, const gg_http_req *req, gg_http_resp *resp, void *user) {
  (void)srv;
  gg_app_generate *m = user;
  gen *g = gen_lock_find(m, req, resp);
  if (!g) return;
  if (g->status >= GEN_DONE) {
    const char *st = k_status[g->status];
    pthread_mutex_unlock(&m->lock);
    gg_http_error_named(resp, 409, "already_finished", "generation %.40s has already ended (%s)",
                        gg_http_param(req, "id"), st);
    return;
  }
  g->stop_requested = 1;
  if (g->status == GEN_QUEUED) {
    queue_remove(m, g);
    gen_set_error(g, 409, "stopped", "the generation was stopped before it started");
    gen_finish(m, g, GEN_STOPPED);
    gen_wake_subs(g);
  } else if (g->gen) {
    gg_generator_cancel(g->gen);
  }
  int ended = g->status == GEN_STOPPED;
  json_t *j = json_pack("{s:s,s:s}", "id", g->id, "status", ended ? "stopped" : "stopping");
  g->refs++;
  pthread_mutex_unlock(&m->lock);
  if (ended) { /* a queued one ended here: this thread writes it */
    gen_persist(m, g, GEN_STOPPED);
    trash_flush(m);
  }
  pthread_mutex_lock(&m->lock);
  gen_unref(g);
  pthread_mutex_unlock(&m->lock);
  gg_http_json(resp, 202, j);
}

static void h_status(gg_server *srv, const gg_http_req *req, gg_http_resp *resp, void *user) {
  (void)srv;
  gg_app_generate *m = user;
  gen *g = gen_lock_find(m, req, resp);
  if (!g) return;
  json_t *j = gen_json(g);
  pthread_mutex_unlock(&m->lock);
  gg_http_json(resp, 200, j);
}

static void h_image(gg_server *srv, const gg_http_req *req, gg_http_resp *resp, void *user) {
  (void)srv;
  gg_app_generate *m = user;
  gen *g = gen_lock_find(m, req, resp);
  if (!g) return;
  if (g->status != GEN_DONE || (!g->png && !g->on_disk)) {
    const char *st = k_status[g->status];
    pthread_mutex_unlock(&m->lock);
    gg_http_error_named(resp, 409, "not_done",
                        "generation %.40s is %s: the image exists once it is done",
                        gg_http_param(req, "id"), st);
    return;
  }
  size_t n = g->png_len;
  char *copy = NULL, name[48];
  if (g->png) {
    copy = malloc(n);
    if (copy) memcpy(copy, g->png, n);
  }
  int from_disk = !g->png;
  snprintf(name, sizeof name, "%s.png", g->id);
  pthread_mutex_unlock(&m->lock);
  if (from_disk) { /* written and freed from memory: read its file */
    char err[300];
    size_t len = 0;
    int rc = file_read(m->dir, name, n, &copy, &len, err, sizeof err);
    if (rc || len != n) {
      free(copy);
      GG_WARN("HTTP", "generation image: %s", rc ? err : "size changed");
      gg_http_error_named(resp, 404, "image_gone",
                          "the image of generation %s is no longer on disk (deleted?)",
                          gg_http_param(req, "id"));
      return;
    }
  } else if (!copy) {
    gg_http_error(resp, 503, "out of memory copying the image");
    return;
  }
  free(resp->body);
  resp->status = 200;
  resp->content_type = "image/png";
  resp->body = copy;
  resp->body_len = n;
}

static void h_list(gg_server *srv, const gg_http_req *req, gg_http_resp *resp, void *user) {
  (void)srv, (void)req;
  gg_app_generate *m = user;
  json_t *arr = json_array();
  pthread_mutex_lock(&m->lock);
  for (const gen *g = m->all; arr && g; g = g->next) {
    json_t *e = gen_json(g);
    if (!e) continue;
    json_object_set_new(e, "has_image", json_boolean(g->status == GEN_DONE));
    json_array_append_new(arr, e);
  }
  int persistent = m->dir[0] != 0;
  pthread_mutex_unlock(&m->lock);
  if (!arr) {
    gg_http_error(resp, 503, "out of memory");
    return;
  }
  gg_http_json(resp, 200,
               json_pack("{s:o,s:I,s:i,s:b}", "generations", arr, "count",
                         (json_int_t)json_array_size(arr), "keep", m->keep, "persistent",
                         persistent));
}

/* DELETE /api/generate/:id: a queued one leaves the queue, a running one is
 * cancelled (its worker finishes it, but it is never written); then it
 * leaves the list and its files are removed before the answer. */
static void h_delete(gg_server *srv, const gg_http_req *req, gg_http_resp *resp, void *user) {
  (void)srv;
  gg_app_generate *m = user;
  gen *g = gen_lock_find(m, req, resp);
  if (!g) return;
  const char *was = k_status[g->status];
  if (g->status == GEN_QUEUED) {
    queue_remove(m, g);
    g->stop_requested = 1;
    gen_set_error(g, 409, "stopped", "the generation was deleted before it started");
    gen_settle(g);
    g->status = GEN_STOPPED;
    gen_wake_subs(g);
  } else if (g->status == GEN_RUNNING) {
    g->stop_requested = 1;
    if (g->gen) gg_generator_cancel(g->gen);
  }
  for (gen **pp = &m->all; *pp; pp = &(*pp)->next)
    if (*pp == g) {
      *pp = g->next;
      break;
    }
  gen_trash(m, g);
  json_t *j = json_pack("{s:s,s:b,s:s}", "id", g->id, "deleted", 1, "was", was);
  pthread_mutex_unlock(&m->lock);
  trash_flush(m);
  gg_http_json(resp, 200, j);
}

static void h_config(gg_server *srv, const gg_http_req *req, gg_http_resp *resp, void *user) {
  (void)srv, (void)req;
  gg_app_generate *m = user;
  json_t *models = json_array(), *scales = json_array();
  for (size_t i = 0; i < sizeof k_models / sizeof k_models[0]; i++) {
    char path[1024], err[200];
    int fetched =
        gg_upscale_model_path(k_models[i], 2, path, sizeof path, NULL, err, sizeof err) == 0;
    json_array_append_new(models, json_pack("{s:s,s:b}", "name", k_models[i], "fetched", fetched));
  }
  for (size_t i = 0; i < sizeof k_scales / sizeof k_scales[0]; i++)
    json_array_append_new(scales, json_integer(k_scales[i]));
  pthread_mutex_lock(&m->lock);
  int queued = m->queued;
  pthread_mutex_unlock(&m->lock);
  gg_http_json(resp, 200,
               json_pack("{s:o,s:o,s:{s:s,s:i},s:{s:i,s:i,s:I,s:i,s:i,s:i,s:i},s:i,s:{s:b,s:i}}",
                         "models", models, "scales", scales, "defaults", "model", GEN_DEFAULT_MODEL,
                         "scale", GEN_DEFAULT_SCALE, "limits", "max_output_w", m->max_output,
                         "max_output_h", m->max_output, "max_input_pixels",
                         (json_int_t)input_limit(m), "queue", m->queue_max, "keep", m->keep,
                         "min_tile", 16, "max_tile", 1024, "queued", queued, "history",
                         "persistent", m->dir[0] != 0, "keep", m->keep));
}

void gg__app_register_generate(gg_app *app, const gg_server_config *cfg) {
  gg_app_generate *m = calloc(1, sizeof *m);
  if (!m) {
    GG_ERROR("HTTP", "out of memory: the generation API is not available");
    return;
  }
  m->app = app;
  m->max_output = cfg->gen_max_output > 0 ? cfg->gen_max_output : GEN_MAX_OUTPUT;
  m->max_input_pixels =
      cfg->gen_max_input_pixels > 0 ? cfg->gen_max_input_pixels : GEN_MAX_INPUT_PIXELS;
  m->queue_max = cfg->gen_queue > 0 ? cfg->gen_queue : GEN_QUEUE_MAX;
  m->keep = cfg->gen_keep > 0 ? cfg->gen_keep : GEN_KEEP;
  pthread_mutex_init(&m->lock, NULL);
  pthread_mutex_init(&m->disk_lock, NULL);
  pthread_cond_init(&m->cond, NULL);
  history_load(m);
  app->generate = m;
  if (pthread_create(&m->worker, NULL, worker_main, m) == 0)
    m->worker_started = 1;
  else
    GG_ERROR("HTTP", "cannot start the generation worker thread; generations stay queued");
  gg_server *s = app->srv;
  gg__server_add_route_access(s, "POST", "/api/generate", GG_ACCESS_SPENDING, h_generate, m);
  gg_server_add_route(s, "GET", "/api/generate/:id", h_status, m);
  gg_server_add_route(s, "GET", "/api/generate/:id/image", h_image, m);
  gg_server_add_route(s, "GET", "/api/progress/:id", h_progress, m);
  gg__server_add_route_access(s, "POST", "/api/stop/:id", GG_ACCESS_MUTATING, h_stop, m);
  gg_server_add_route(s, "GET", "/api/config", h_config, m);
  gg_server_add_route(s, "GET", "/api/generations", h_list, m);
  gg__server_add_route_access(s, "DELETE", "/api/generate/:id", GG_ACCESS_MUTATING, h_delete, m);
}

void gg__app_generate_stop(gg_app *app) {
  gg_app_generate *m = app ? app->generate : NULL;
  if (!m) return;
  pthread_mutex_lock(&m->lock);
  m->stopping = 1;
  for (gen *g = m->all; g; g = g->next)
    if (g->gen) gg_generator_cancel(g->gen);
  pthread_cond_broadcast(&m->cond);
  pthread_mutex_unlock(&m->lock);
  if (m->worker_started) pthread_join(m->worker, NULL);
  /* The daemon has stopped: no SSE reader is left (the core closed them).
   * The running generation was cancelled and written as stopped by the
   * worker; queued ones are dropped, not written (their ids stay used). */
  trash_flush(m);
  while (m->all) {
    gen *g = m->all;
    m->all = g->next;
    gen_unref(g);
  }
  pthread_cond_destroy(&m->cond);
  pthread_mutex_destroy(&m->disk_lock);
  pthread_mutex_destroy(&m->lock);
  free(m);
  app->generate = NULL;
}
