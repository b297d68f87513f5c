/* The gallery layer: argument checks, L2 normalisation, the in-memory index
 * that matching reads (no SQL per query), and the lock that keeps it in step
 * with the store. The index is changed only after the store committed, and
 * every allocation it needs for that is made before the store is called, so
 * a committed write always reaches the index. */
#include "gallery/store.h"

#include "gpuguard/error.h"
#include "gpuguard/memory.h"
#include "vision/face.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define IX_OWNER "gallery"

/* One identity in the index: its name and its unit vectors, rows of dim. */
typedef struct ix_ident {
  int64_t id;
  char name[GG_GALLERY_NAME_MAX + 1];
  float *pos;       /* n_pos x dim, gg_host_alloc */
  int64_t *pos_ids; /* embedding ids of the rows */
  int n_pos, cap_pos;
  float *neg;       /* n_neg x dim */
  int64_t *neg_ids; /* negative ids of the rows */
  int n_neg, cap_neg;
} ix_ident;

struct gg_gallery {
  gg__gallery_store *store;
  pthread_rwlock_t lock; /* read: matching; write: everything that calls the store */
  float threshold;
  int top_k;
  int dim; /* of every stored vector; 0 while the index holds none */
  char model[GG_GALLERY_TAG_MAX + 1];
  ix_ident *ids; /* sorted by id (ids only grow, so appends keep it sorted) */
  int n_ids, cap_ids;
  int64_t n_pos, n_neg;
};

const char *gg_gallery_source_name(gg_gallery_source s) {
  switch (s) {
  case GG_GALLERY_SOURCE_UPLOAD: return "upload";
  case GG_GALLERY_SOURCE_CAMERA: return "camera";
  default: return "unknown";
  }
}

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* --------------------------------------------------------------- checks */

/* Length of the UTF-8 sequence at p, or 0 when it is malformed (overlong,
 * surrogate, past U+10FFFF, truncated). */
static int utf8_len(const unsigned char *p) {
  unsigned c = p[0];
  if (c < 0x80) return 1;
  int n = c >= 0xf0 && c <= 0xf4 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 && c <= 0xdf ? 2 : 0;
  if (!n || (n == 3 && c > 0xef)) return 0;
  for (int i = 1; i < n; i++)
    if ((p[i] & 0xc0) != 0x80) return 0;
  if (n == 3 && ((c == 0xe0 && p[1] < 0xa0) || (c == 0xed && p[1] >= 0xa0))) return 0;
  if (n == 4 && ((c == 0xf0 && p[1] < 0x90) || (c == 0xf4 && p[1] >= 0x90))) return 0;
  return n;
}

/* Checks a string: at most max bytes of UTF-8 without control characters;
 * empty allowed when allow_empty. what names it in the message. */
static int text_check(const char *s, size_t max, int allow_empty, const char *what, char *err,
                      size_t errlen) {
  if (!s) return gg_errf(err, errlen, GG_EINVAL, "gallery: %s is missing", what);
  size_t len = strlen(s);
  if (!len && !allow_empty) return gg_errf(err, errlen, GG_EINVAL, "gallery: %s is empty", what);
  if (len > max)
    return gg_errf(err, errlen, GG_EINVAL, "gallery: %s is %zu bytes long, at most %zu allowed",
                   what, len, max);
  for (const unsigned char *p = (const unsigned char *)s; *p;) {
    if (*p < 0x20 || *p == 0x7f)
      return gg_errf(err, errlen, GG_EINVAL,
                     "gallery: %s contains a control character (byte 0x%02x at %zu)", what, *p,
                     (size_t)(p - (const unsigned char *)s));
    int n = utf8_len(p);
    if (!n)
      return gg_errf(err, errlen, GG_EINVAL, "gallery: %s is not valid UTF-8 (at byte %zu)", what,
                     (size_t)(p - (const unsigned char *)s));
    p += n;
  }
  return 0;
}

int gg_gallery_name_check(const char *name, char *err, size_t errlen) {
  int rc = text_check(name, GG_GALLERY_NAME_MAX, 0, "the identity name", err, errlen);
  if (rc) return rc;
  size_t len = strlen(name);
  if (name[0] == ' ' || name[len - 1] == ' ')
    return gg_errf(err, errlen, GG_EINVAL,
                   "gallery: the identity name '%s' starts or ends with a space", name);
  return 0;
}

/* Copies v into out scaled to unit length. Refuses NaN/Inf and zero. */
static int vec_normalize(const float *v, int dim, float *out, const char *what, char *err,
                         size_t errlen) {
  if (!v) return gg_errf(err, errlen, GG_EINVAL, "gallery: %s: no vector", what);
  if (dim <= 0 || dim > GG_GALLERY_DIM_MAX)
    return gg_errf(err, errlen, GG_EINVAL, "gallery: %s: dimension %d, expected 1..%d", what, dim,
                   GG_GALLERY_DIM_MAX);
  double ss = 0;
  for (int i = 0; i < dim; i++) {
    if (!isfinite(v[i]))
      return gg_errf(err, errlen, GG_EINVAL, "gallery: %s: element %d is %s", what, i,
                     isnan(v[i]) ? "NaN" : "infinite");
    ss += (double)v[i] * v[i];
  }
  if (!(ss > 1e-24))
    return gg_errf(err, errlen, GG_EINVAL,
                   "gallery: %s: the vector is zero (no direction to compare)", what);
  double inv = 1.0 / sqrt(ss);
  for (int i = 0; i < dim; i++)
    out[i] = (float)(v[i] * inv);
  return 0;
}

/* The gallery's dimension and model must be kept by every new vector. */
static int compat_check(const gg_gallery *g, int dim, const char *model, const char *what,
                        char *err, size_t errlen) {
  if (!g->dim) return 0;
  if (dim != g->dim)
    return gg_errf(err, errlen, GG_EINVAL,
                   "gallery: %s has dimension %d, the gallery's embeddings have %d (model '%s'); "
                   "embed with the same model",
                   what, dim, g->dim, g->model);
  if (model && strcmp(model, g->model))
    return gg_errf(err, errlen, GG_EINVAL,
                   "gallery: %s comes from model '%s', the gallery holds '%s' embeddings; "
                   "scores of different models are not comparable",
                   what, model, g->model);
  return 0;
}

static int page_check(const gg_gallery_page *p, const void *out, int cap, int *n, char *err,
                      size_t errlen) {
  if (!out || cap <= 0 || !n)
    return gg_errf(err, errlen, GG_EINVAL, "gallery: list needs an output array and cap > 0");
  if (p && (p->limit < 0 || p->offset < 0 || p->cursor < 0))
    return gg_errf(err, errlen, GG_EINVAL,
                   "gallery: page limit, offset and cursor must not be negative");
  *n = 0;
  return 0;
}

/* ---------------------------------------------------------------- index */

static ix_ident *ix_find(gg_gallery *g, int64_t id) {
  int lo = 0, hi = g->n_ids - 1;
  while (lo <= hi) {
    int mid = lo + (hi - lo) / 2;
    if (g->ids[mid].id == id) return &g->ids[mid];
    if (g->ids[mid].id < id)
      lo = mid + 1;
    else
      hi = mid - 1;
  }
  return NULL;
}

static ix_ident *ix_find_name(gg_gallery *g, const char *name) {
  for (int i = 0; i < g->n_ids; i++)
    if (!strcmp(g->ids[i].name, name)) return &g->ids[i];
  return NULL;
}

static void ix_ident_free(ix_ident *x) {
  gg_host_free(x->pos);
  free(x->pos_ids);
  gg_host_free(x->neg);
  free(x->neg_ids);
  memset(x, 0, sizeof *x);
}

/* Makes room for `more` rows in *rows (cap *cap rows of dim floats). */
static int grow_rows(float **rows, int *cap, int have, int more, int dim, int64_t **ids) {
  if (have + more <= *cap) return 0;
  int ncap = *cap ? *cap : 4;
  while (ncap < have + more)
    ncap *= 2;
  float *nr = gg_host_alloc(IX_OWNER, (size_t)ncap * (size_t)dim * sizeof(float));
  if (!nr) return GG_ENOMEM;
  if (ids) {
    int64_t *ni = realloc(*ids, (size_t)ncap * sizeof **ids);
    if (!ni) {
      gg_host_free(nr);
      return GG_ENOMEM;
    }
    *ids = ni;
  }
  if (have) memcpy(nr, *rows, (size_t)have * (size_t)dim * sizeof(float));
  gg_host_free(*rows);
  *rows = nr;
  *cap = ncap;
  return 0;
}

/* Room for one more identity in g->ids. */
static int ix_reserve_ident(gg_gallery *g) {
  if (g->n_ids < g->cap_ids) return 0;
  int ncap = g->cap_ids ? g->cap_ids * 2 : 16;
  ix_ident *n = realloc(g->ids, (size_t)ncap * sizeof *n);
  if (!n) return GG_ENOMEM;
  g->ids = n;
  g->cap_ids = ncap;
  return 0;
}

/* Appends an identity (ids arrive in increasing order; a smaller one is
 * inserted in place, which only a foreign store could cause). Room must be
 * reserved. */
static ix_ident *ix_add_ident(gg_gallery *g, int64_t id, const char *name) {
  int at = g->n_ids;
  while (at > 0 && g->ids[at - 1].id > id)
    at--;
  memmove(&g->ids[at + 1], &g->ids[at], (size_t)(g->n_ids - at) * sizeof *g->ids);
  g->n_ids++;
  ix_ident *x = &g->ids[at];
  memset(x, 0, sizeof *x);
  x->id = id;
  snprintf(x->name, sizeof x->name, "%s", name);
  return x;
}

static void ix_remove_ident(gg_gallery *g, ix_ident *x) {
  g->n_pos -= x->n_pos;
  g->n_neg -= x->n_neg;
  ix_ident_free(x);
  int at = (int)(x - g->ids);
  memmove(&g->ids[at], &g->ids[at + 1], (size_t)(g->n_ids - at - 1) * sizeof *g->ids);
  g->n_ids--;
  if (!g->n_pos && !g->n_neg) g->dim = 0;
}

/* Removes row `id` from rows/ids (n rows; *total counts the gallery's). */
static void ix_remove_row(gg_gallery *g, float *rows, int64_t *ids, int *n, int64_t *total,
                          int64_t id) {
  size_t row = (size_t)g->dim;
  for (int i = 0; i < *n; i++) {
    if (ids[i] != id) continue;
    memmove(rows + (size_t)i * row, rows + (size_t)(i + 1) * row,
            (size_t)(*n - i - 1) * row * sizeof(float));
    memmove(ids + i, ids + i + 1, (size_t)(*n - i - 1) * sizeof(int64_t));
    (*n)--;
    (*total)--;
    if (!g->n_pos && !g->n_neg) g->dim = 0;
    return;
  }
}

/* Sets the gallery's dimension and model from the first vector stored. */
static void ix_adopt(gg_gallery *g, int dim, const char *model) {
  if (g->dim) return;
  g->dim = dim;
  snprintf(g->model, sizeof g->model, "%s", model);
}

typedef struct load_ctx {
  gg_gallery *g;
  char *err;
  size_t errlen;
} load_ctx;

static int load_ident(void *user, const gg_gallery_identity *id) {
  load_ctx *c = user;
  if (ix_reserve_ident(c->g)) return gg_errf(c->err, c->errlen, GG_ENOMEM, "gallery: no memory");
  ix_add_ident(c->g, id->id, id->name);
  return 0;
}

static int load_vec(void *user, const gg__gallery_vec_row *r) {
  load_ctx *c = user;
  gg_gallery *g = c->g;
  ix_ident *x = ix_find(g, r->identity_id);
  if (!x)
    return gg_errf(c->err, c->errlen, GG_EPARSE,
                   "gallery: stored vector %lld belongs to no identity", (long long)r->id);
  int rc = compat_check(g, r->dim, r->model, "a stored vector", c->err, c->errlen);
  if (rc) return rc;
  ix_adopt(g, r->dim, r->model);
  float *row;
  if (r->negative) {
    if (grow_rows(&x->neg, &x->cap_neg, x->n_neg, 1, g->dim, &x->neg_ids)) return GG_ENOMEM;
    x->neg_ids[x->n_neg] = r->id;
    row = x->neg + (size_t)x->n_neg++ * (size_t)g->dim;
    g->n_neg++;
  } else {
    if (grow_rows(&x->pos, &x->cap_pos, x->n_pos, 1, g->dim, &x->pos_ids)) return GG_ENOMEM;
    x->pos_ids[x->n_pos] = r->id;
    row = x->pos + (size_t)x->n_pos++ * (size_t)g->dim;
    g->n_pos++;
  }
  /* Stored vectors are unit length; normalise again so a foreign writer
   * cannot skew scores. */
  return vec_normalize(r->vec, r->dim, row, "a stored vector", c->err, c->errlen);
}

/* ------------------------------------------------------------ open/close */

int gg_gallery_data_dir(const char *flag, char *out, size_t outlen, char *err, size_t errlen) {
  const char *env = getenv("GPUGUARD_DATA_DIR"), *xdg = getenv("XDG_DATA_HOME"),
             *home = getenv("HOME");
  int n;
  if (!out || !outlen) return gg_errf(err, errlen, GG_EINVAL, "gallery: no output buffer");
  if (flag && *flag)
    n = snprintf(out, outlen, "%s", flag);
  else if (env && *env)
    n = snprintf(out, outlen, "%s", env);
  else if (xdg && *xdg)
    n = snprintf(out, outlen, "%s/gpuguard", xdg);
  else if (home && *home)
    n = snprintf(out, outlen, "%s/.local/share/gpuguard", home);
  else
    return gg_errf(err, errlen, GG_EINVAL,
                   "gallery: no data directory: give --data-dir or set GPUGUARD_DATA_DIR "
                   "(HOME is not set)");
  if (n < 0 || (size_t)n >= outlen)
    return gg_errf(err, errlen, GG_EINVAL, "gallery: the data directory path is too long");
  /* mkdir -p, each created level 0700. */
  char path[4096];
  snprintf(path, sizeof path, "%s", out);
  for (char *p = path + 1;; p++) {
    int last = !*p;
    if (*p != '/' && !last) continue;
    *p = 0;
    if (mkdir(path, 0700) && errno != EEXIST)
      return gg_errf(err, errlen, GG_EIO, "gallery: cannot create data directory %s: %s", path,
                     strerror(errno));
    if (last) break;
    *p = '/';
  }
  struct stat st;
  if (stat(out, &st) || !S_ISDIR(st.st_mode))
    return gg_errf(err, errlen, GG_EIO, "gallery: data directory %s is not a directory", out);
  return 0;
}

int gg__gallery_open_store(gg__gallery_store *s, const gg_gallery_opts *opts, gg_gallery **out,
                           char *err, size_t errlen) {
  *out = NULL;
  gg_gallery *g = calloc(1, sizeof *g);
  if (!g) {
    s->iface->close(s);
    return gg_errf(err, errlen, GG_ENOMEM, "gallery: out of memory");
  }
  g->store = s;
  g->threshold = GG_FACE_MATCH_THRESHOLD;
  g->top_k = GG_GALLERY_TOP_K;
  /* Writers first: a steady stream of matches must not starve an
   * enrollment (glibc's default prefers readers). */
  pthread_rwlockattr_t attr;
  pthread_rwlockattr_init(&attr);
  pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
  pthread_rwlock_init(&g->lock, &attr);
  pthread_rwlockattr_destroy(&attr);
  int rc = 0;
  if (opts && opts->threshold != 0 && (rc = gg_gallery_set_threshold(g, opts->threshold)))
    gg_errf(err, errlen, rc, "gallery: threshold %g is not in (0, 1]", (double)opts->threshold);
  else if (opts && opts->top_k != 0 && (rc = gg_gallery_set_top_k(g, opts->top_k)))
    gg_errf(err, errlen, rc, "gallery: top_k %d is not in 1..100", opts->top_k);
  else {
    load_ctx c = {g, err, errlen};
    rc = s->iface->load(s, load_ident, load_vec, &c, err, errlen);
  }
  if (rc) {
    gg_gallery_close(g);
    return rc;
  }
  *out = g;
  return 0;
}

int gg_gallery_open(const char *data_dir, const gg_gallery_opts *opts, gg_gallery **out, char *err,
                    size_t errlen) {
  if (!out || !data_dir || !*data_dir)
    return gg_errf(err, errlen, GG_EINVAL, "gallery: no data directory given");
  *out = NULL;
  char path[4096];
  int n = snprintf(path, sizeof path, "%s/%s", data_dir, GG_GALLERY_DB_FILE);
  if (n < 0 || (size_t)n >= sizeof path)
    return gg_errf(err, errlen, GG_EINVAL, "gallery: data directory path too long");
  gg__gallery_store *s;
  int rc = gg__gallery_sqlite_open(path, 0, &s, err, errlen);
  if (rc) return rc;
  return gg__gallery_open_store(s, opts, out, err, errlen);
}

/* Frees the index and empties it. */
static void ix_clear(gg_gallery *g) {
  for (int i = 0; i < g->n_ids; i++)
    ix_ident_free(&g->ids[i]);
  free(g->ids);
  g->ids = NULL;
  g->n_ids = g->cap_ids = 0;
  g->n_pos = g->n_neg = 0;
  g->dim = 0;
  g->model[0] = 0;
}

int gg_gallery_reload(gg_gallery *g, char *err, size_t errlen) {
  /* Load into a second index, then swap: on failure the old one stays. */
  gg_gallery fresh;
  memset(&fresh, 0, sizeof fresh);
  fresh.store = g->store;
  load_ctx c = {&fresh, err, errlen};
  pthread_rwlock_wrlock(&g->lock);
  int rc = g->store->iface->load(g->store, load_ident, load_vec, &c, err, errlen);
  if (!rc) {
    ix_clear(g);
    g->ids = fresh.ids;
    g->n_ids = fresh.n_ids;
    g->cap_ids = fresh.cap_ids;
    g->n_pos = fresh.n_pos;
    g->n_neg = fresh.n_neg;
    g->dim = fresh.dim;
    memcpy(g->model, fresh.model, sizeof g->model);
  } else {
    ix_clear(&fresh);
  }
  pthread_rwlock_unlock(&g->lock);
  return rc;
}

void gg_gallery_close(gg_gallery *g) {
  if (!g) return;
  ix_clear(g);
  if (g->store) g->store->iface->close(g->store);
  pthread_rwlock_destroy(&g->lock);
  free(g);
}

int gg_gallery_schema_version(gg_gallery *g) {
  return g->store->iface->schema_version(g->store);
}
int gg_gallery_schema_current(void) {
  return GG__GALLERY_SCHEMA_VERSION;
}

int gg_gallery_set_threshold(gg_gallery *g, float threshold) {
  if (!(threshold > 0 && threshold <= 1)) return GG_EINVAL;
  pthread_rwlock_wrlock(&g->lock);
  g->threshold = threshold;
  pthread_rwlock_unlock(&g->lock);
  return 0;
}
float gg_gallery_threshold(gg_gallery *g) {
  pthread_rwlock_rdlock(&g->lock);
  float t = g->threshold;
  pthread_rwlock_unlock(&g->lock);
  return t;
}
int gg_gallery_set_top_k(gg_gallery *g, int top_k) {
  if (top_k < 1 || top_k > 100) return GG_EINVAL;
  pthread_rwlock_wrlock(&g->lock);
  g->top_k = top_k;
  pthread_rwlock_unlock(&g->lock);
  return 0;
}

int gg_gallery_get_info(gg_gallery *g, gg_gallery_info *out) {
  pthread_rwlock_rdlock(&g->lock);
  memset(out, 0, sizeof *out);
  out->n_identities = g->n_ids;
  out->n_embeddings = g->n_pos;
  out->n_negatives = g->n_neg;
  out->dim = g->dim;
  snprintf(out->model, sizeof out->model, "%s", g->model);
  out->threshold = g->threshold;
  out->top_k = g->top_k;
  out->schema_version = g->store->iface->schema_version(g->store);
  pthread_rwlock_unlock(&g->lock);
  return 0;
}

/* ----------------------------------------------------------- identities */

int gg_gallery_identity_create(gg_gallery *g, const char *name, int64_t *id, char *err,
                               size_t errlen) {
  int rc = gg_gallery_name_check(name, err, errlen);
  if (rc) return rc;
  int64_t nid = 0;
  pthread_rwlock_wrlock(&g->lock);
  if (!(rc = ix_reserve_ident(g)) &&
      !(rc = g->store->iface->identity_create(g->store, name, now_ms(), &nid, err, errlen)))
    ix_add_ident(g, nid, name);
  pthread_rwlock_unlock(&g->lock);
  if (rc == GG_ENOMEM) gg_errf(err, errlen, rc, "gallery: out of memory");
  if (id) *id = nid;
  return rc;
}

int gg_gallery_identity_get(gg_gallery *g, int64_t id, gg_gallery_identity *out, char *err,
                            size_t errlen) {
  if (id <= 0 || !out)
    return gg_errf(err, errlen, id <= 0 ? GG_ENOTFOUND : GG_EINVAL,
                   "gallery: no identity with id %lld", (long long)id);
  pthread_rwlock_wrlock(&g->lock);
  int rc = g->store->iface->identity_get(g->store, id, NULL, out, err, errlen);
  pthread_rwlock_unlock(&g->lock);
  return rc;
}

int gg_gallery_identity_find(gg_gallery *g, const char *name, gg_gallery_identity *out, char *err,
                             size_t errlen) {
  int rc = gg_gallery_name_check(name, err, errlen);
  if (rc) return rc;
  pthread_rwlock_wrlock(&g->lock);
  rc = g->store->iface->identity_get(g->store, 0, name, out, err, errlen);
  pthread_rwlock_unlock(&g->lock);
  return rc;
}

int gg_gallery_identity_rename(gg_gallery *g, int64_t id, const char *new_name, int64_t *result_id,
                               char *err, size_t errlen) {
  int rc = gg_gallery_name_check(new_name, err, errlen);
  if (rc) return rc;
  pthread_rwlock_wrlock(&g->lock);
  ix_ident *src = ix_find(g, id), *dst = ix_find_name(g, new_name);
  if (!src) {
    pthread_rwlock_unlock(&g->lock);
    return gg_errf(err, errlen, GG_ENOTFOUND, "gallery: no identity with id %lld", (long long)id);
  }
  /* A merge appends src's rows to dst: make the room first. */
  if (dst && dst != src &&
      (grow_rows(&dst->pos, &dst->cap_pos, dst->n_pos, src->n_pos, g->dim ? g->dim : 1,
                 &dst->pos_ids) ||
       grow_rows(&dst->neg, &dst->cap_neg, dst->n_neg, src->n_neg, g->dim ? g->dim : 1,
                 &dst->neg_ids))) {
    pthread_rwlock_unlock(&g->lock);
    return gg_errf(err, errlen, GG_ENOMEM, "gallery: out of memory");
  }
  int64_t survivor = 0;
  rc = g->store->iface->identity_rename(g->store, id, new_name, now_ms(), &survivor, err, errlen);
  if (!rc) {
    if (survivor == id) {
      snprintf(src->name, sizeof src->name, "%s", new_name);
    } else {
      dst = ix_find(g, survivor);
      size_t row = (size_t)g->dim;
      if (src->n_pos) {
        memcpy(dst->pos + (size_t)dst->n_pos * row, src->pos, (size_t)src->n_pos * row * 4);
        memcpy(dst->pos_ids + dst->n_pos, src->pos_ids, (size_t)src->n_pos * sizeof(int64_t));
        dst->n_pos += src->n_pos;
      }
      if (src->n_neg) {
        memcpy(dst->neg + (size_t)dst->n_neg * row, src->neg, (size_t)src->n_neg * row * 4);
        memcpy(dst->neg_ids + dst->n_neg, src->neg_ids, (size_t)src->n_neg * sizeof(int64_t));
        dst->n_neg += src->n_neg;
      }
      /* The rows now count under dst; removing src must not uncount them. */
      src->n_pos = src->n_neg = 0;
      ix_remove_ident(g, src);
    }
  }
  pthread_rwlock_unlock(&g->lock);
  if (!rc && result_id) *result_id = survivor;
  return rc;
}

int gg_gallery_identity_delete(gg_gallery *g, int64_t id, char *err, size_t errlen) {
  pthread_rwlock_wrlock(&g->lock);
  int rc = g->store->iface->identity_delete(g->store, id, err, errlen);
  ix_ident *x = rc ? NULL : ix_find(g, id);
  if (x) ix_remove_ident(g, x);
  pthread_rwlock_unlock(&g->lock);
  return rc;
}

int gg_gallery_identity_list(gg_gallery *g, const gg_gallery_page *page, gg_gallery_identity *out,
                             int cap, int *n, int64_t *next_cursor, int64_t *total, char *err,
                             size_t errlen) {
  int rc = page_check(page, out, cap, n, err, errlen);
  if (rc) return rc;
  pthread_rwlock_wrlock(&g->lock);
  rc = g->store->iface->identity_list(g->store, page, out, cap, n, next_cursor, total, err, errlen);
  pthread_rwlock_unlock(&g->lock);
  return rc;
}

/* ----------------------------------------------------------- embeddings */

static int crop_check(const void *crop, size_t len, const char *what, char *err, size_t errlen) {
  if (!len) return 0;
  const unsigned char *p = crop;
  if (!p)
    return gg_errf(err, errlen, GG_EINVAL, "gallery: %s: crop_len %zu but no crop", what, len);
  if (len > GG_GALLERY_CROP_MAX)
    return gg_errf(err, errlen, GG_ETOO_LARGE, "gallery: %s: face crop of %zu bytes, at most %u",
                   what, len, GG_GALLERY_CROP_MAX);
  if (len < 4 || p[0] != 0xff || p[1] != 0xd8 || p[2] != 0xff)
    return gg_errf(err, errlen, GG_EINVAL, "gallery: %s: the face crop is not a JPEG", what);
  return 0;
}

int gg_gallery_enroll(gg_gallery *g, int64_t identity_id, const char *name,
                      const gg_gallery_embedding_in *e, int n, int64_t *out_id, int64_t *emb_ids,
                      char *err, size_t errlen) {
  int rc;
  if (identity_id < 0)
    return gg_errf(err, errlen, GG_ENOTFOUND, "gallery: no identity with id %lld",
                   (long long)identity_id);
  if (!identity_id && (rc = gg_gallery_name_check(name, err, errlen))) return rc;
  if (!e || n <= 0 || n > 100000)
    return gg_errf(err, errlen, GG_EINVAL, "gallery: enroll needs 1..100000 embeddings, got %d",
                   e ? n : 0);
  int dim = e[0].dim;
  char what[48];
  for (int i = 0; i < n; i++) {
    snprintf(what, sizeof what, "embedding %d", i);
    if (e[i].dim != dim)
      return gg_errf(err, errlen, GG_EINVAL,
                     "gallery: embedding %d has dimension %d, embedding 0 has %d", i, e[i].dim,
                     dim);
    if ((rc = text_check(e[i].model, GG_GALLERY_TAG_MAX, 0, "the model name", err, errlen)))
      return rc;
    if (strcmp(e[i].model, e[0].model))
      return gg_errf(err, errlen, GG_EINVAL,
                     "gallery: embedding %d is from model '%s', embedding 0 from '%s'", i,
                     e[i].model, e[0].model);
    if ((unsigned)e[i].source >= GG_GALLERY_SOURCE_COUNT)
      return gg_errf(err, errlen, GG_EINVAL, "gallery: %s: unknown source %d", what,
                     (int)e[i].source);
    if ((rc = crop_check(e[i].crop, e[i].crop_len, what, err, errlen))) return rc;
  }
  if (dim <= 0 || dim > GG_GALLERY_DIM_MAX)
    return gg_errf(err, errlen, GG_EINVAL, "gallery: dimension %d, expected 1..%d", dim,
                   GG_GALLERY_DIM_MAX);
  float *unit = malloc((size_t)n * (size_t)dim * sizeof(float));
  gg_gallery_embedding_in *copy = malloc((size_t)n * sizeof *copy);
  int64_t *ids = malloc((size_t)n * sizeof *ids);
  if (!unit || !copy || !ids) {
    rc = gg_errf(err, errlen, GG_ENOMEM, "gallery: out of memory for %d embeddings", n);
    goto out;
  }
  for (int i = 0; i < n; i++) {
    snprintf(what, sizeof what, "embedding %d", i);
    float *u = unit + (size_t)i * (size_t)dim;
    if ((rc = vec_normalize(e[i].vec, dim, u, what, err, errlen))) goto out;
    copy[i] = e[i];
    copy[i].vec = u;
    if (!copy[i].crop) copy[i].crop_len = 0;
  }
  pthread_rwlock_wrlock(&g->lock);
  if ((rc = compat_check(g, dim, e[0].model, "the enrolled embedding", err, errlen))) goto unlock;
  /* Make every allocation the index update needs before the commit. */
  ix_ident *x = identity_id ? ix_find(g, identity_id) : ix_find_name(g, name);
  ix_ident fresh = {0};
  if (!x && identity_id) {
    rc = gg_errf(err, errlen, GG_ENOTFOUND, "gallery: no identity with id %lld",
                 (long long)identity_id);
    goto unlock;
  }
  ix_ident *target = x ? x : &fresh;
  if ((!x && ix_reserve_ident(g)) ||
      grow_rows(&target->pos, &target->cap_pos, target->n_pos, n, dim, &target->pos_ids)) {
    ix_ident_free(&fresh);
    rc = gg_errf(err, errlen, GG_ENOMEM, "gallery: out of memory for %d embeddings", n);
    goto unlock;
  }
  int64_t id = 0;
  int created = 0;
  rc = g->store->iface->enroll(g->store, identity_id, name, copy, n, now_ms(), &id, &created, ids,
                               err, errlen);
  if (rc) {
    ix_ident_free(&fresh);
    goto unlock;
  }
  if (!x) {
    x = ix_add_ident(g, id, name);
    fresh.id = x->id;
    memcpy(fresh.name, x->name, sizeof fresh.name);
    *x = fresh; /* takes over the reserved rows */
  }
  ix_adopt(g, dim, e[0].model);
  memcpy(x->pos + (size_t)x->n_pos * (size_t)dim, unit, (size_t)n * (size_t)dim * sizeof(float));
  memcpy(x->pos_ids + x->n_pos, ids, (size_t)n * sizeof *ids);
  x->n_pos += n;
  g->n_pos += n;
  if (out_id) *out_id = id;
  if (emb_ids) memcpy(emb_ids, ids, (size_t)n * sizeof *ids);
unlock:
  pthread_rwlock_unlock(&g->lock);
out:
  free(unit);
  free(copy);
  free(ids);
  return rc;
}

int gg_gallery_embedding_list(gg_gallery *g, int64_t identity_id, const gg_gallery_page *page,
                              gg_gallery_embedding *out, int cap, int *n, int64_t *next_cursor,
                              int64_t *total, char *err, size_t errlen) {
  int rc = page_check(page, out, cap, n, err, errlen);
  if (rc) return rc;
  pthread_rwlock_wrlock(&g->lock);
  rc = g->store->iface->embedding_list(g->store, identity_id, page, out, cap, n, next_cursor, total,
                                       err, errlen);
  pthread_rwlock_unlock(&g->lock);
  return rc;
}

int gg_gallery_embedding_delete(gg_gallery *g, int64_t emb_id, char *err, size_t errlen) {
  pthread_rwlock_wrlock(&g->lock);
  int64_t owner = 0;
  int rc = g->store->iface->embedding_delete(g->store, emb_id, &owner, err, errlen);
  ix_ident *x = rc ? NULL : ix_find(g, owner);
  if (x) ix_remove_row(g, x->pos, x->pos_ids, &x->n_pos, &g->n_pos, emb_id);
  pthread_rwlock_unlock(&g->lock);
  return rc;
}

int gg_gallery_embedding_crop(gg_gallery *g, int64_t emb_id, void **jpeg, size_t *len, char *err,
                              size_t errlen) {
  if (!jpeg || !len) return gg_errf(err, errlen, GG_EINVAL, "gallery: no output for the crop");
  *jpeg = NULL;
  *len = 0;
  pthread_rwlock_wrlock(&g->lock);
  int rc = g->store->iface->embedding_crop(g->store, emb_id, jpeg, len, err, errlen);
  pthread_rwlock_unlock(&g->lock);
  return rc;
}

int gg_gallery_embedding_owner(gg_gallery *g, int64_t emb_id, int64_t *identity_id, char *err,
                               size_t errlen) {
  if (!identity_id) return gg_errf(err, errlen, GG_EINVAL, "gallery: no output for the owner");
  *identity_id = 0;
  pthread_rwlock_rdlock(&g->lock);
  for (int i = 0; i < g->n_ids && !*identity_id; i++)
    for (int k = 0; k < g->ids[i].n_pos; k++)
      if (g->ids[i].pos_ids[k] == emb_id) {
        *identity_id = g->ids[i].id;
        break;
      }
  pthread_rwlock_unlock(&g->lock);
  return *identity_id ? 0
                      : gg_errf(err, errlen, GG_ENOTFOUND, "gallery: no embedding with id %lld",
                                (long long)emb_id);
}

int gg_gallery_negative_add(gg_gallery *g, int64_t identity_id, const float *vec, int dim,
                            const char *model, int64_t *neg_id, char *err, size_t errlen) {
  int rc = text_check(model, GG_GALLERY_TAG_MAX, 0, "the model name", err, errlen);
  if (rc) return rc;
  if (dim <= 0 || dim > GG_GALLERY_DIM_MAX)
    return gg_errf(err, errlen, GG_EINVAL, "gallery: negative: dimension %d, expected 1..%d", dim,
                   GG_GALLERY_DIM_MAX);
  float *unit = malloc((size_t)dim * sizeof(float));
  if (!unit) return gg_errf(err, errlen, GG_ENOMEM, "gallery: out of memory");
  if ((rc = vec_normalize(vec, dim, unit, "the negative example", err, errlen))) {
    free(unit);
    return rc;
  }
  pthread_rwlock_wrlock(&g->lock);
  ix_ident *x = ix_find(g, identity_id);
  int64_t nid = 0;
  if (!x)
    rc = gg_errf(err, errlen, GG_ENOTFOUND, "gallery: no identity with id %lld",
                 (long long)identity_id);
  else if (!(rc = compat_check(g, dim, model, "the negative example", err, errlen))) {
    if (grow_rows(&x->neg, &x->cap_neg, x->n_neg, 1, dim, &x->neg_ids))
      rc = gg_errf(err, errlen, GG_ENOMEM, "gallery: out of memory");
    else
      rc = g->store->iface->negative_add(g->store, identity_id, unit, dim, model, now_ms(), &nid,
                                         err, errlen);
    if (!rc) {
      ix_adopt(g, dim, model);
      memcpy(x->neg + (size_t)x->n_neg * (size_t)dim, unit, (size_t)dim * sizeof(float));
      x->neg_ids[x->n_neg] = nid;
      x->n_neg++;
      g->n_neg++;
    }
  }
  pthread_rwlock_unlock(&g->lock);
  free(unit);
  if (!rc && neg_id) *neg_id = nid;
  return rc;
}

int gg_gallery_negative_list(gg_gallery *g, int64_t identity_id, const gg_gallery_page *page,
                             gg_gallery_embedding *out, int cap, int *n, int64_t *next_cursor,
                             int64_t *total, char *err, size_t errlen) {
  int rc = page_check(page, out, cap, n, err, errlen);
  if (rc) return rc;
  pthread_rwlock_wrlock(&g->lock);
  rc = g->store->iface->negative_list(g->store, identity_id, page, out, cap, n, next_cursor, total,
                                      err, errlen);
  pthread_rwlock_unlock(&g->lock);
  return rc;
}

int gg_gallery_negative_delete(gg_gallery *g, int64_t neg_id, char *err, size_t errlen) {
  pthread_rwlock_wrlock(&g->lock);
  int64_t owner = 0;
  int rc = g->store->iface->negative_delete(g->store, neg_id, &owner, err, errlen);
  ix_ident *x = rc ? NULL : ix_find(g, owner);
  if (x) ix_remove_row(g, x->neg, x->neg_ids, &x->n_neg, &g->n_neg, neg_id);
  pthread_rwlock_unlock(&g->lock);
  return rc;
}

/* -------------------------------------------------------------- matching */

static float dot(const float *a, const float *b, int n) {
  /* Eight partial sums: independent chains the compiler can vectorise
   * without -ffast-math. */
  float s[8] = {0};
  int i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; j++)
      s[j] += a[i + j] * b[i + j];
  float t = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
  for (; i < n; i++)
    t += a[i] * b[i];
  return t;
}

/* Scores identity x: mean of its best k cosines with q, the single best,
 * and its best negative (-2 when it has none). */
static void score_ident(const ix_ident *x, const float *q, int dim, int top_k, float *score,
                        float *best, float *best_neg) {
  float top[100];
  int k = x->n_pos < top_k ? x->n_pos : top_k, have = 0;
  for (int i = 0; i < x->n_pos; i++) {
    float c = dot(q, x->pos + (size_t)i * (size_t)dim, dim);
    /* Keep top[0..have) sorted descending. */
    if (have == k && c <= top[k - 1]) continue;
    int at = have < k ? have++ : k - 1;
    while (at > 0 && top[at - 1] < c) {
      top[at] = top[at - 1];
      at--;
    }
    top[at] = c;
  }
  double sum = 0;
  for (int i = 0; i < have; i++)
    sum += top[i];
  *score = have ? (float)(sum / have) : -2.0f;
  *best = have ? top[0] : -2.0f;
  float bn = -2.0f;
  for (int i = 0; i < x->n_neg; i++) {
    float c = dot(q, x->neg + (size_t)i * (size_t)dim, dim);
    if (c > bn) bn = c;
  }
  *best_neg = bn;
}

int gg_gallery_match_query(gg_gallery *g, const float *q, int dim, gg_gallery_match *out, char *err,
                           size_t errlen) {
  if (!out) return gg_errf(err, errlen, GG_EINVAL, "gallery: no output for the match");
  memset(out, 0, sizeof *out);
  float unit[GG_GALLERY_DIM_MAX];
  int rc = vec_normalize(q, dim, unit, "the query", err, errlen);
  if (rc) return rc;
  pthread_rwlock_rdlock(&g->lock);
  out->threshold = g->threshold;
  if ((rc = compat_check(g, dim, NULL, "the query", err, errlen))) goto done;
  for (int i = 0; i < g->n_ids; i++) {
    const ix_ident *x = &g->ids[i];
    if (!x->n_pos) continue;
    gg_gallery_candidate c = {.id = x->id};
    score_ident(x, unit, dim, g->top_k, &c.score, &c.best_single, &c.best_negative);
    out->n_compared += x->n_pos + x->n_neg;
    /* "Not this person": a query at least as close to one of the
     * identity's negatives as to the identity itself is not theirs. */
    if (x->n_neg && c.best_negative >= c.score) {
      out->n_blocked++;
      continue;
    }
    if (!out->best.id || c.score > out->best.score) {
      out->runner_up = out->best;
      out->best = c;
      snprintf(out->best.name, sizeof out->best.name, "%s", x->name);
    } else if (!out->runner_up.id || c.score > out->runner_up.score) {
      out->runner_up = c;
      snprintf(out->runner_up.name, sizeof out->runner_up.name, "%s", x->name);
    }
  }
  out->known = out->best.id && out->best.score >= g->threshold;
done:
  pthread_rwlock_unlock(&g->lock);
  return rc;
}

/* ----------------------------------------------------------------- events */

int gg_gallery_event_add(gg_gallery *g, const gg_gallery_event *ev, int64_t *id, char *err,
                         size_t errlen) {
  if (!ev) return gg_errf(err, errlen, GG_EINVAL, "gallery: no event");
  int rc;
  if ((rc = text_check(ev->stream, GG_GALLERY_TAG_MAX, 1, "the stream id", err, errlen)) ||
      (rc = text_check(ev->device, GG_GALLERY_TAG_MAX, 1, "the device name", err, errlen)))
    return rc;
  if (ev->identity_id < 0 || ev->time_ms < 0)
    return gg_errf(err, errlen, GG_EINVAL,
                   "gallery: event identity %lld / time %lld: must not be negative "
                   "(identity 0 = unknown, time 0 = now)",
                   (long long)ev->identity_id, (long long)ev->time_ms);
  gg_gallery_event e = *ev;
  if (!e.time_ms) e.time_ms = now_ms();
  int64_t nid = 0;
  pthread_rwlock_wrlock(&g->lock);
  rc = g->store->iface->event_add(g->store, &e, &nid, err, errlen);
  pthread_rwlock_unlock(&g->lock);
  if (!rc && id) *id = nid;
  return rc;
}

int gg_gallery_event_list(gg_gallery *g, const gg_gallery_event_filter *f,
                          const gg_gallery_page *page, gg_gallery_event *out, int cap, int *n,
                          int64_t *next_cursor, int64_t *total, char *err, size_t errlen) {
  int rc = page_check(page, out, cap, n, err, errlen);
  if (rc) return rc;
  if (f && f->since_ms < 0)
    return gg_errf(err, errlen, GG_EINVAL, "gallery: event filter since %lld is negative",
                   (long long)f->since_ms);
  if (f && f->identity_id < GG_GALLERY_UNKNOWN)
    return gg_errf(err, errlen, GG_EINVAL, "gallery: event filter identity %lld is not valid",
                   (long long)f->identity_id);
  if (f && f->stream &&
      (rc = text_check(f->stream, GG_GALLERY_TAG_MAX, 1, "the stream filter", err, errlen)))
    return rc;
  pthread_rwlock_wrlock(&g->lock);
  rc = g->store->iface->event_list(g->store, f, page, out, cap, n, next_cursor, total, err, errlen);
  pthread_rwlock_unlock(&g->lock);
  return rc;
}

int gg_gallery_identity_stats(gg_gallery *g, int64_t id, gg_gallery_stats *out, char *err,
                              size_t errlen) {
  if (!out) return gg_errf(err, errlen, GG_EINVAL, "gallery: no output for the stats");
  pthread_rwlock_wrlock(&g->lock);
  int rc = g->store->iface->identity_stats(g->store, id, out, err, errlen);
  pthread_rwlock_unlock(&g->lock);
  return rc;
}
