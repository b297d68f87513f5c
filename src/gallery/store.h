/* Gallery storage: the interface a database backend implements (a vtable
 * plus a context, like src/engine/backend.h), so PostgreSQL can follow
 * SQLite. The gallery layer (gallery.c) validates every argument, L2-
 * normalises vectors and keeps the in-memory index; a store only persists.
 *
 * Contract for every slot:
 *  - returns 0 or a negative GG_E* code with a message in err;
 *  - every write is ONE transaction: on error nothing of it is visible,
 *    after a crash the database holds all of it or none;
 *  - names and strings arrive checked; vectors arrive normalised;
 *  - ids are positive and never reused (a deleted id stays dead);
 *  - called with the gallery's write lock held (no concurrent calls). */
#ifndef GG_GALLERY_STORE_H
#define GG_GALLERY_STORE_H

#include "gpuguard/gallery.h"

#include <stddef.h>
#include <stdint.h>

typedef struct gg__gallery_store gg__gallery_store;

/* One stored vector, as load() reports it. vec is borrowed for the call. */
typedef struct gg__gallery_vec_row {
  int negative; /* 0: an embedding, 1: a negative example */
  int64_t id, identity_id;
  int dim;
  const char *model;
  const float *vec;
} gg__gallery_vec_row;

typedef int (*gg__gallery_identity_fn)(void *user, const gg_gallery_identity *id);
typedef int (*gg__gallery_vec_fn)(void *user, const gg__gallery_vec_row *row);

typedef struct gg__gallery_store_i {
  /* Required. Closes the connection and frees the store. */
  void (*close)(gg__gallery_store *s);
  /* Required. The schema version of the database. */
  int (*schema_version)(gg__gallery_store *s);
  /* Required. Calls id_fn for every identity, then vec_fn for every
   * embedding and negative (identity order), stopping at the first nonzero
   * return, which it returns. */
  int (*load)(gg__gallery_store *s, gg__gallery_identity_fn id_fn, gg__gallery_vec_fn vec_fn,
              void *user, char *err, size_t errlen);

  int (*identity_create)(gg__gallery_store *s, const char *name, int64_t now_ms, int64_t *id,
                         char *err, size_t errlen);
  /* by id (name NULL) or by name (id 0); GG_ENOTFOUND when absent. */
  int (*identity_get)(gg__gallery_store *s, int64_t id, const char *name, gg_gallery_identity *out,
                      char *err, size_t errlen);
  /* Renames, or merges into the identity that has new_name (see
   * gg_gallery_identity_rename); *result_id is the survivor. */
  int (*identity_rename)(gg__gallery_store *s, int64_t id, const char *new_name, int64_t now_ms,
                         int64_t *result_id, char *err, size_t errlen);
  int (*identity_delete)(gg__gallery_store *s, int64_t id, char *err, size_t errlen);
  int (*identity_list)(gg__gallery_store *s, const gg_gallery_page *page, gg_gallery_identity *out,
                       int cap, int *n, int64_t *next_cursor, int64_t *total, char *err,
                       size_t errlen);

  /* identity_id > 0: add to it; 0: find or create `name`. *created says
   * whether the identity was created. emb_ids receives n ids. */
  int (*enroll)(gg__gallery_store *s, int64_t identity_id, const char *name,
                const gg_gallery_embedding_in *e, int n, int64_t now_ms, int64_t *out_id,
                int *created, int64_t *emb_ids, char *err, size_t errlen);
  int (*embedding_list)(gg__gallery_store *s, int64_t identity_id, const gg_gallery_page *page,
                        gg_gallery_embedding *out, int cap, int *n, int64_t *next_cursor,
                        int64_t *total, char *err, size_t errlen);
  /* *identity_id receives the owner of the deleted embedding. */
  int (*embedding_delete)(gg__gallery_store *s, int64_t emb_id, int64_t *identity_id, char *err,
                          size_t errlen);
  int (*embedding_crop)(gg__gallery_store *s, int64_t emb_id, void **jpeg, size_t *len, char *err,
                        size_t errlen);
  int (*negative_add)(gg__gallery_store *s, int64_t identity_id, const float *vec, int dim,
                      const char *model, int64_t now_ms, int64_t *neg_id, char *err, size_t errlen);
  /* As embedding_list / embedding_delete, for negative examples (source
   * reads as upload, no crop, quality NaN). */
  int (*negative_list)(gg__gallery_store *s, int64_t identity_id, const gg_gallery_page *page,
                       gg_gallery_embedding *out, int cap, int *n, int64_t *next_cursor,
                       int64_t *total, char *err, size_t errlen);
  int (*negative_delete)(gg__gallery_store *s, int64_t neg_id, int64_t *identity_id, char *err,
                         size_t errlen);

  int (*event_add)(gg__gallery_store *s, const gg_gallery_event *ev, int64_t *id, char *err,
                   size_t errlen);
  int (*event_list)(gg__gallery_store *s, const gg_gallery_event_filter *f,
                    const gg_gallery_page *page, gg_gallery_event *out, int cap, int *n,
                    int64_t *next_cursor, int64_t *total, char *err, size_t errlen);
  int (*identity_stats)(gg__gallery_store *s, int64_t id, gg_gallery_stats *out, char *err,
                        size_t errlen);
} gg__gallery_store_i;

struct gg__gallery_store {
  const gg__gallery_store_i *iface;
  void *ctx;
};

/* The SQLite backend: opens (creates, mode 0600) the database file at path
 * and migrates it to the current schema version. max_version limits the
 * migration (0 = current); tests use it to make an old database. */
int gg__gallery_sqlite_open(const char *path, int max_version, gg__gallery_store **out, char *err,
                            size_t errlen);
/* The schema version this build writes. */
#define GG__GALLERY_SCHEMA_VERSION 2

/* Test hook: when set, the SQLite backend calls it after writing each
 * embedding row of an enrollment, inside the transaction (the kill-mid-write
 * test stops the process there). Not thread-safe; tests only. */
extern void (*gg__gallery_sqlite_enroll_hook)(int index);

/* Opens a gallery on any store (takes ownership of s, also on failure). */
int gg__gallery_open_store(gg__gallery_store *s, const gg_gallery_opts *opts, gg_gallery **out,
                           char *err, size_t errlen);

#endif
