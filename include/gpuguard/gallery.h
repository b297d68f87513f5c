/* The face gallery: identities with their face embeddings and negative
 * examples, matching of a query embedding against them, and the event log of
 * recognitions. Stored in SQLite by default (one gallery.db under the data
 * directory) behind a storage interface (src/gallery/store.h); matching runs
 * on an in-memory index, no SQL per query. See docs/gallery.md.
 *
 * Every call returns 0 or a negative GG_E* code and, where it takes err,
 * writes a message saying what was wrong. Every write is one transaction:
 * after a crash the database holds all of it or none of it.
 *
 * Thread-safe: one gg_gallery may be shared by the server's threads. Matches
 * run concurrently with each other; a write excludes everything else. */
#ifndef GPUGUARD_GALLERY_H
#define GPUGUARD_GALLERY_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gg_gallery gg_gallery;

/* Longest identity name in bytes (UTF-8, no control characters), and the
 * longest model / stream / device string. Longer input is refused
 * (GG_EINVAL), never truncated. */
#define GG_GALLERY_NAME_MAX 64
#define GG_GALLERY_TAG_MAX 63
/* Largest embedding accepted, and largest stored face crop. */
#define GG_GALLERY_DIM_MAX 4096
#define GG_GALLERY_CROP_MAX (1u << 20)
/* Default k of the per-identity score: the mean of the best k cosines. */
#define GG_GALLERY_TOP_K 3
/* The database file under the data directory. */
#define GG_GALLERY_DB_FILE "gallery.db"

/* Where an embedding came from. Append only. */
typedef enum gg_gallery_source {
  GG_GALLERY_SOURCE_UPLOAD, /* an uploaded photo */
  GG_GALLERY_SOURCE_CAMERA, /* a face seen by a stream */
  GG_GALLERY_SOURCE_COUNT
} gg_gallery_source;

/* "upload", "camera"; "unknown" past the end. */
const char *gg_gallery_source_name(gg_gallery_source s);

/* ---------------------------------------------------------------- opening */

typedef struct gg_gallery_opts {
  float threshold; /* score at or above which a match is known; 0 = GG_FACE_MATCH_THRESHOLD */
  int top_k;       /* k of the per-identity trimmed mean; 0 = GG_GALLERY_TOP_K */
} gg_gallery_opts;

/* Resolves the data directory: `flag` (the --data-dir value) when not NULL
 * or empty, else $GPUGUARD_DATA_DIR, else $XDG_DATA_HOME/gpuguard, else
 * $HOME/.local/share/gpuguard. Creates it (and missing parents) with mode
 * 0700 when absent. Writes the path into out. Returns 0, GG_EINVAL (no HOME,
 * path too long), GG_EIO (cannot create; err says which directory and why). */
int gg_gallery_data_dir(const char *flag, char *out, size_t outlen, char *err, size_t errlen);

/* Opens (creating when absent, mode 0600) data_dir/gallery.db with the
 * SQLite backend, migrates its schema to the current version and loads every
 * embedding and negative into the in-memory index. opts may be NULL
 * (defaults). Returns 0, GG_EINVAL (bad opts), GG_EIO (cannot open, not a
 * gallery database), GG_EUNSUPPORTED (written by a newer gpuguard: its
 * schema version is above ours), GG_ENOMEM. *out owned by the caller
 * (gg_gallery_close). */
int gg_gallery_open(const char *data_dir, const gg_gallery_opts *opts, gg_gallery **out, char *err,
                    size_t errlen);
/* Rebuilds the in-memory index from the database, for writes made by
 * another process (or, later, another replica) on the same database: this
 * handle does not see those until it reloads. On failure the old index
 * stays. Returns 0, GG_EIO, GG_ENOMEM, GG_EPARSE (a malformed row). */
int gg_gallery_reload(gg_gallery *g, char *err, size_t errlen);

/* Closes the database and frees the index; NULL is a no-op. */
void gg_gallery_close(gg_gallery *g);

/* The schema version of the open database (gg_gallery_schema_current()
 * after a successful open). */
int gg_gallery_schema_version(gg_gallery *g);
int gg_gallery_schema_current(void);

/* The matching settings in use. threshold must be in (0, 1], top_k in
 * 1..100; otherwise GG_EINVAL and nothing changes. */
int gg_gallery_set_threshold(gg_gallery *g, float threshold);
float gg_gallery_threshold(gg_gallery *g);
int gg_gallery_set_top_k(gg_gallery *g, int top_k);

/* ------------------------------------------------------------ identities */

typedef struct gg_gallery_identity {
  int64_t id;
  char name[GG_GALLERY_NAME_MAX + 1];
  int64_t created_ms, updated_ms; /* Unix time in milliseconds */
  int64_t n_embeddings, n_negatives;
} gg_gallery_identity;

/* Checks a name as every call that takes one does: 1..GG_GALLERY_NAME_MAX
 * bytes of valid UTF-8, no control characters, no leading or trailing
 * space. Returns 0 or GG_EINVAL with the reason in err. */
int gg_gallery_name_check(const char *name, char *err, size_t errlen);

/* Creates an identity with no embeddings. Returns 0, GG_EINVAL (bad name),
 * GG_ESTATE (the name exists; *id is still set to it), GG_EIO. */
int gg_gallery_identity_create(gg_gallery *g, const char *name, int64_t *id, char *err,
                               size_t errlen);
/* Fills *out for an id / a name. GG_ENOTFOUND when there is none. */
int gg_gallery_identity_get(gg_gallery *g, int64_t id, gg_gallery_identity *out, char *err,
                            size_t errlen);
int gg_gallery_identity_find(gg_gallery *g, const char *name, gg_gallery_identity *out, char *err,
                             size_t errlen);

/* Renames identity id. When another identity already has new_name the two
 * are MERGED in one transaction: id's embeddings, negatives and events move
 * to that identity and id is deleted. *result_id (may be NULL) is the
 * surviving identity. Returns 0, GG_EINVAL, GG_ENOTFOUND, GG_EIO. */
int gg_gallery_identity_rename(gg_gallery *g, int64_t id, const char *new_name, int64_t *result_id,
                               char *err, size_t errlen);
/* Deletes an identity with its embeddings, negatives and events. 0,
 * GG_ENOTFOUND, GG_EIO. */
int gg_gallery_identity_delete(gg_gallery *g, int64_t id, char *err, size_t errlen);

/* Paging. Identities are ordered by id (creation order), events newest
 * first. `cursor` (the next_cursor of the previous page) takes precedence
 * over `offset`; 0 means "from the start". limit 1..1000, 0 = 50. */
typedef struct gg_gallery_page {
  int limit;
  int64_t offset;
  int64_t cursor;
} gg_gallery_page;

/* Fills out[0..*n) (cap entries at most; cap < limit shortens the page) and
 * *total (may be NULL): how many identities exist; *next_cursor (may be
 * NULL) is the cursor of the next page, 0 on the last page. */
int gg_gallery_identity_list(gg_gallery *g, const gg_gallery_page *page, gg_gallery_identity *out,
                             int cap, int *n, int64_t *next_cursor, int64_t *total, char *err,
                             size_t errlen);

/* ------------------------------------------------------------ embeddings */

/* Quality numbers measured by the pipeline; NaN = not measured. */
typedef struct gg_gallery_quality {
  float det_score; /* detector score, 0..1 */
  float sharpness; /* variance of the Laplacian of the crop */
  float face_px;   /* face box width in source pixels */
} gg_gallery_quality;

/* One embedding to store. vec is copied and L2-normalised; it must be
 * finite and not zero. crop (optional, may be NULL) is a JPEG (starts with
 * FF D8 FF) of at most GG_GALLERY_CROP_MAX bytes. model is the embedder's
 * name ("faceres"); all embeddings of a gallery share one model and one
 * dimension (the first one stored sets them while the gallery is empty). */
typedef struct gg_gallery_embedding_in {
  const float *vec;
  int dim;
  const char *model;
  gg_gallery_source source;
  const void *crop;
  size_t crop_len;
  gg_gallery_quality quality;
} gg_gallery_embedding_in;

/* Adds n embeddings to an identity in ONE transaction: identity_id > 0 names
 * it (GG_ENOTFOUND if absent); identity_id 0 uses `name`, creating the
 * identity when it does not exist. Every embedding is checked before
 * anything is written: one bad vector refuses the whole enrollment
 * (GG_EINVAL, err names its index and the reason). *out_id (may be NULL) is
 * the identity; emb_ids (may be NULL, n entries) receive the new embedding
 * ids. Returns 0, GG_EINVAL, GG_ETOO_LARGE (a crop over the limit),
 * GG_ENOTFOUND, GG_ENOMEM, GG_EIO. */
int gg_gallery_enroll(gg_gallery *g, int64_t identity_id, const char *name,
                      const gg_gallery_embedding_in *e, int n, int64_t *out_id, int64_t *emb_ids,
                      char *err, size_t errlen);

/* Stored embedding metadata (the vector stays in the index). */
typedef struct gg_gallery_embedding {
  int64_t id, identity_id;
  int dim;
  char model[GG_GALLERY_TAG_MAX + 1];
  gg_gallery_source source;
  gg_gallery_quality quality;
  size_t crop_len; /* 0 = no crop */
  int64_t created_ms;
} gg_gallery_embedding;

/* The embeddings of an identity in id order (paged as identities). */
int gg_gallery_embedding_list(gg_gallery *g, int64_t identity_id, const gg_gallery_page *page,
                              gg_gallery_embedding *out, int cap, int *n, int64_t *next_cursor,
                              int64_t *total, char *err, size_t errlen);
/* Deletes one embedding. 0, GG_ENOTFOUND, GG_EIO. */
int gg_gallery_embedding_delete(gg_gallery *g, int64_t emb_id, char *err, size_t errlen);
/* The identity embedding emb_id belongs to, from the index (no SQL).
 * 0 or GG_ENOTFOUND. */
int gg_gallery_embedding_owner(gg_gallery *g, int64_t emb_id, int64_t *identity_id, char *err,
                               size_t errlen);
/* Copies the stored JPEG crop: *jpeg (malloc'd, caller frees with free())
 * and *len. GG_ENOTFOUND when the embedding does not exist or has no crop. */
int gg_gallery_embedding_crop(gg_gallery *g, int64_t emb_id, void **jpeg, size_t *len, char *err,
                              size_t errlen);

/* Stores vec as a negative example of identity_id ("not this person": a
 * query closer to it than to the identity's positives is not matched to
 * the identity). Same checks as an embedding. *neg_id may be NULL. */
int gg_gallery_negative_add(gg_gallery *g, int64_t identity_id, const float *vec, int dim,
                            const char *model, int64_t *neg_id, char *err, size_t errlen);

/* The negatives of an identity in id order, paged (dim, model and
 * created_ms filled; source, crop and quality unused), and deleting one (a
 * "not this person" undone). 0, GG_ENOTFOUND, GG_EIO. */
int gg_gallery_negative_list(gg_gallery *g, int64_t identity_id, const gg_gallery_page *page,
                             gg_gallery_embedding *out, int cap, int *n, int64_t *next_cursor,
                             int64_t *total, char *err, size_t errlen);
int gg_gallery_negative_delete(gg_gallery *g, int64_t neg_id, char *err, size_t errlen);

/* -------------------------------------------------------------- matching */

typedef struct gg_gallery_candidate {
  int64_t id; /* 0 = none */
  char name[GG_GALLERY_NAME_MAX + 1];
  float score;         /* mean of the best min(top_k, n) cosines */
  float best_single;   /* the single best cosine */
  float best_negative; /* the best cosine with a negative; -2 = none */
} gg_gallery_candidate;

typedef struct gg_gallery_match {
  int known;                      /* best.id is at or above the threshold */
  gg_gallery_candidate best;      /* the best identity not blocked by its negatives */
  gg_gallery_candidate runner_up; /* the second one (id 0 when there is none) */
  float threshold;                /* the threshold applied */
  int n_blocked;                  /* identities refused by their negatives */
  int64_t n_compared;             /* embeddings compared */
} gg_gallery_match;

/* Scores every identity against q (any length-dim vector; normalised here):
 * score = mean of the best k = min(top_k, n) cosines with its embeddings. An
 * identity whose best negative is at least as close as that score is
 * blocked. out->best is the best remaining identity, out->known whether its
 * score reaches the threshold; with no identity at all best.id is 0.
 * Returns 0 or GG_EINVAL (NaN/Inf/zero query, dimension differs from the
 * gallery's). No SQL runs. */
int gg_gallery_match_query(gg_gallery *g, const float *q, int dim, gg_gallery_match *out, char *err,
                           size_t errlen);

/* Index size: embeddings and negatives held, the gallery's dimension (0
 * while empty). */
typedef struct gg_gallery_info {
  int64_t n_identities, n_embeddings, n_negatives;
  int dim;
  char model[GG_GALLERY_TAG_MAX + 1];
  float threshold;
  int top_k;
  int schema_version;
} gg_gallery_info;
int gg_gallery_get_info(gg_gallery *g, gg_gallery_info *out);

/* ----------------------------------------------------------------- events */

/* identity filter values besides an id */
#define GG_GALLERY_ANY 0      /* every event */
#define GG_GALLERY_UNKNOWN -1 /* events of unknown faces only */

typedef struct gg_gallery_event {
  int64_t id;
  int64_t time_ms;                     /* 0 on add = now */
  char stream[GG_GALLERY_TAG_MAX + 1]; /* stream id ("" allowed) */
  int64_t identity_id;                 /* 0 = unknown face */
  float score;                         /* the match score */
  char device[GG_GALLERY_TAG_MAX + 1]; /* device that served it ("cpu", "sim:0") */
  float box[4];                        /* face box x, y, w, h in frame pixels */
} gg_gallery_event;

/* Appends an event (id and time set when 0). GG_ENOTFOUND when
 * identity_id names no identity. *id may be NULL. */
int gg_gallery_event_add(gg_gallery *g, const gg_gallery_event *ev, int64_t *id, char *err,
                         size_t errlen);

typedef struct gg_gallery_event_filter {
  int64_t identity_id; /* GG_GALLERY_ANY, GG_GALLERY_UNKNOWN or an id */
  const char *stream;  /* NULL = every stream */
  int64_t since_ms;    /* events at or after; 0 = all */
} gg_gallery_event_filter;

/* Events matching f (NULL = all), newest first, paged. *total (may be
 * NULL) counts every event matching f. */
int gg_gallery_event_list(gg_gallery *g, const gg_gallery_event_filter *f,
                          const gg_gallery_page *page, gg_gallery_event *out, int cap, int *n,
                          int64_t *next_cursor, int64_t *total, char *err, size_t errlen);

typedef struct gg_gallery_stats {
  int64_t n_embeddings, n_negatives, n_events, n_crops;
  int64_t first_seen_ms, last_seen_ms; /* from its events; 0 when never seen */
} gg_gallery_stats;

/* Per-identity stats. GG_ENOTFOUND for an unknown id. */
int gg_gallery_identity_stats(gg_gallery *g, int64_t id, gg_gallery_stats *out, char *err,
                              size_t errlen);

#ifdef __cplusplus
}
#endif
#endif
