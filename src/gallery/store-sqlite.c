/* The gallery's SQLite backend: one database file in WAL mode with foreign
 * keys on, a schema_version table and numbered migrations. Every write runs
 * in one BEGIN IMMEDIATE ... COMMIT transaction, so a crash leaves all of it
 * or none of it (SQLite's WAL recovery drops frames without a commit). */
#include "gallery/store.h"

#include "gpuguard/error.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void (*gg__gallery_sqlite_enroll_hook)(int index);

typedef struct sq_store {
  gg__gallery_store base;
  sqlite3 *db;
  int version;
} sq_store;

/* Migration i (0-based) takes the schema from version i to i + 1. Append
 * only: a released migration never changes. */
static const char *const k_migrations[] = {
    /* 1: the tables */
    "CREATE TABLE identities("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  name TEXT NOT NULL UNIQUE,"
    "  created_ms INTEGER NOT NULL,"
    "  updated_ms INTEGER NOT NULL);"
    "CREATE TABLE embeddings("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  identity_id INTEGER NOT NULL REFERENCES identities(id) ON DELETE CASCADE,"
    "  dim INTEGER NOT NULL CHECK(dim > 0),"
    "  model TEXT NOT NULL,"
    "  vec BLOB NOT NULL CHECK(length(vec) = 4 * dim),"
    "  source TEXT NOT NULL CHECK(source IN ('upload', 'camera')),"
    "  crop BLOB,"
    "  det_score REAL, sharpness REAL, face_px REAL,"
    "  created_ms INTEGER NOT NULL);"
    "CREATE INDEX embeddings_identity ON embeddings(identity_id);"
    "CREATE TABLE negatives("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  identity_id INTEGER NOT NULL REFERENCES identities(id) ON DELETE CASCADE,"
    "  dim INTEGER NOT NULL CHECK(dim > 0),"
    "  model TEXT NOT NULL,"
    "  vec BLOB NOT NULL CHECK(length(vec) = 4 * dim),"
    "  created_ms INTEGER NOT NULL);"
    "CREATE INDEX negatives_identity ON negatives(identity_id);"
    "CREATE TABLE events("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  time_ms INTEGER NOT NULL,"
    "  stream TEXT NOT NULL,"
    "  identity_id INTEGER REFERENCES identities(id) ON DELETE CASCADE,"
    "  score REAL, device TEXT NOT NULL,"
    "  box_x REAL, box_y REAL, box_w REAL, box_h REAL);"
    "CREATE INDEX events_identity ON events(identity_id, time_ms);",
    /* 2: event queries by stream and by time without a table scan */
    "CREATE INDEX events_stream ON events(stream, time_ms);"
    "CREATE INDEX events_time ON events(time_ms);",
};
_Static_assert(sizeof k_migrations / sizeof k_migrations[0] == GG__GALLERY_SCHEMA_VERSION,
               "one migration per schema version");

static int sq_code(int rc) {
  switch (rc & 0xff) {
  case SQLITE_OK:
  case SQLITE_DONE:
  case SQLITE_ROW: return 0;
  case SQLITE_NOMEM: return GG_ENOMEM;
  case SQLITE_BUSY:
  case SQLITE_LOCKED: return GG_EBUSY;
  case SQLITE_TOOBIG: return GG_ETOO_LARGE;
  case SQLITE_CONSTRAINT: return GG_ESTATE;
  default: return GG_EIO;
  }
}

/* Formats "what: sqlite's message" and returns the mapped code. */
static int sq_fail(sq_store *s, int rc, const char *what, char *err, size_t errlen) {
  return gg_errf(err, errlen, sq_code(rc), "gallery: %s: %s (sqlite %d)", what,
                 s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc), rc);
}

static int sq_exec(sq_store *s, const char *sql, char *err, size_t errlen) {
  int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);
  return rc == SQLITE_OK ? 0 : sq_fail(s, rc, sql, err, errlen);
}

static int sq_prepare(sq_store *s, const char *sql, sqlite3_stmt **st, char *err, size_t errlen) {
  int rc = sqlite3_prepare_v2(s->db, sql, -1, st, NULL);
  return rc == SQLITE_OK ? 0 : sq_fail(s, rc, "prepare", err, errlen);
}

static int sq_begin(sq_store *s, char *err, size_t errlen) {
  return sq_exec(s, "BEGIN IMMEDIATE", err, errlen);
}
static int sq_commit(sq_store *s, char *err, size_t errlen) {
  return sq_exec(s, "COMMIT", err, errlen);
}
/* Ends a failed transaction; returns rc so `return sq_rollback(s, rc)`. */
static int sq_rollback(sq_store *s, int rc) {
  if (!sqlite3_get_autocommit(s->db)) sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
  return rc;
}

static void bind_real_or_null(sqlite3_stmt *st, int i, float v) {
  if (isfinite(v))
    sqlite3_bind_double(st, i, v);
  else
    sqlite3_bind_null(st, i);
}
static float col_real_or_nan(sqlite3_stmt *st, int i) {
  return sqlite3_column_type(st, i) == SQLITE_NULL ? NAN : (float)sqlite3_column_double(st, i);
}
static void col_text(sqlite3_stmt *st, int i, char *out, size_t len) {
  const unsigned char *t = sqlite3_column_text(st, i);
  snprintf(out, len, "%s", t ? (const char *)t : "");
}

/* Runs a one-integer query with up to one int64 bind; *out = 0 when no row. */
static int sq_int(sq_store *s, const char *sql, int64_t arg, int64_t *out, char *err,
                  size_t errlen) {
  sqlite3_stmt *st;
  int rc = sq_prepare(s, sql, &st, err, errlen);
  if (rc) return rc;
  if (sqlite3_bind_parameter_count(st) > 0) sqlite3_bind_int64(st, 1, arg);
  *out = 0;
  int step = sqlite3_step(st);
  if (step == SQLITE_ROW)
    *out = sqlite3_column_int64(st, 0);
  else if (step != SQLITE_DONE)
    rc = sq_fail(s, step, sql, err, errlen);
  sqlite3_finalize(st);
  return rc;
}

static int identity_exists(sq_store *s, int64_t id, char *err, size_t errlen) {
  int64_t found;
  int rc = sq_int(s, "SELECT id FROM identities WHERE id = ?", id, &found, err, errlen);
  if (rc) return rc;
  return found ? 0
               : gg_errf(err, errlen, GG_ENOTFOUND, "gallery: no identity with id %lld",
                         (long long)id);
}

/* ------------------------------------------------------------ open, schema */

static int read_version(sq_store *s, char *err, size_t errlen) {
  int64_t v;
  int rc = sq_int(s, "SELECT max(version) FROM schema_version", 0, &v, err, errlen);
  if (rc) return rc;
  s->version = (int)v;
  return 0;
}

static int migrate(sq_store *s, int target, char *err, size_t errlen) {
  int rc = sq_exec(s, "CREATE TABLE IF NOT EXISTS schema_version(version INTEGER NOT NULL)", err,
                   errlen);
  if (rc) return rc;
  if ((rc = read_version(s, err, errlen))) return rc;
  if (s->version > GG__GALLERY_SCHEMA_VERSION)
    return gg_errf(err, errlen, GG_EUNSUPPORTED,
                   "gallery: the database has schema version %d, this gpuguard knows up to %d; "
                   "use a newer gpuguard or another --data-dir",
                   s->version, GG__GALLERY_SCHEMA_VERSION);
  while (s->version < target) {
    int next = s->version + 1;
    if ((rc = sq_begin(s, err, errlen))) return rc;
    char sql[96];
    snprintf(sql, sizeof sql, "DELETE FROM schema_version; INSERT INTO schema_version VALUES(%d)",
             next);
    if ((rc = sq_exec(s, k_migrations[next - 1], err, errlen)) ||
        (rc = sq_exec(s, sql, err, errlen)) || (rc = sq_commit(s, err, errlen)))
      return sq_rollback(s, rc);
    s->version = next;
  }
  return 0;
}

static int sq_schema_version(gg__gallery_store *base) {
  return ((sq_store *)base)->version;
}

static void sq_close(gg__gallery_store *base) {
  sq_store *s = (sq_store *)base;
  if (!s) return;
  sqlite3_close_v2(s->db);
  free(s);
}

/* ------------------------------------------------------------- identities */

#define IDENTITY_COLS                                                                              \
  "i.id, i.name, i.created_ms, i.updated_ms,"                                                      \
  " (SELECT count(*) FROM embeddings e WHERE e.identity_id = i.id),"                               \
  " (SELECT count(*) FROM negatives n WHERE n.identity_id = i.id)"

static void read_identity(sqlite3_stmt *st, gg_gallery_identity *o) {
  memset(o, 0, sizeof *o);
  o->id = sqlite3_column_int64(st, 0);
  col_text(st, 1, o->name, sizeof o->name);
  o->created_ms = sqlite3_column_int64(st, 2);
  o->updated_ms = sqlite3_column_int64(st, 3);
  o->n_embeddings = sqlite3_column_int64(st, 4);
  o->n_negatives = sqlite3_column_int64(st, 5);
}

static int sq_identity_get(gg__gallery_store *base, int64_t id, const char *name,
                           gg_gallery_identity *out, char *err, size_t errlen) {
  sq_store *s = (sq_store *)base;
  sqlite3_stmt *st;
  int rc = sq_prepare(s,
                      name ? "SELECT " IDENTITY_COLS " FROM identities i WHERE i.name = ?"
                           : "SELECT " IDENTITY_COLS " FROM identities i WHERE i.id = ?",
                      &st, err, errlen);
  if (rc) return rc;
  if (name)
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
  else
    sqlite3_bind_int64(st, 1, id);
  int step = sqlite3_step(st);
  if (step == SQLITE_ROW)
    read_identity(st, out);
  else if (step == SQLITE_DONE)
    rc = name ? gg_errf(err, errlen, GG_ENOTFOUND, "gallery: no identity named '%s'", name)
              : gg_errf(err, errlen, GG_ENOTFOUND, "gallery: no identity with id %lld",
                        (long long)id);
  else
    rc = sq_fail(s, step, "identity lookup", err, errlen);
  sqlite3_finalize(st);
  return rc;
}

/* Inserts the identity inside the caller's transaction. */
static int insert_identity(sq_store *s, const char *name, int64_t now, int64_t *id, char *err,
                           size_t errlen) {
  sqlite3_stmt *st;
  int rc = sq_prepare(s, "INSERT INTO identities(name, created_ms, updated_ms) VALUES(?, ?, ?)",
                      &st, err, errlen);
  if (rc) return rc;
  sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, now);
  sqlite3_bind_int64(st, 3, now);
  int step = sqlite3_step(st);
  if (step != SQLITE_DONE)
    rc = sq_fail(s, step, "insert identity", err, errlen);
  else
    *id = sqlite3_last_insert_rowid(s->db);
  sqlite3_finalize(st);
  return rc;
}

static int find_name(sq_store *s, const char *name, int64_t *id, char *err, size_t errlen) {
  sqlite3_stmt *st;
  int rc = sq_prepare(s, "SELECT id FROM identities WHERE name = ?", &st, err, errlen);
  if (rc) return rc;
  sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
  *id = 0;
  int step = sqlite3_step(st);
  if (step == SQLITE_ROW)
    *id = sqlite3_column_int64(st, 0);
  else if (step != SQLITE_DONE)
    rc = sq_fail(s, step, "identity lookup", err, errlen);
  sqlite3_finalize(st);
  return rc;
}

static int sq_identity_create(gg__gallery_store *base, const char *name, int64_t now, int64_t *id,
                              char *err, size_t errlen) {
  sq_store *s = (sq_store *)base;
  int rc = sq_begin(s, err, errlen);
  if (rc) return rc;
  int64_t existing;
  if ((rc = find_name(s, name, &existing, err, errlen))) return sq_rollback(s, rc);
  if (existing) {
    *id = existing;
    return sq_rollback(s, gg_errf(err, errlen, GG_ESTATE,
                                  "gallery: an identity named '%s' exists (id %lld)", name,
                                  (long long)existing));
  }
  if ((rc = insert_identity(s, name, now, id, err, errlen)) || (rc = sq_commit(s, err, errlen)))
    return sq_rollback(s, rc);
  return 0;
}

static int sq_identity_rename(gg__gallery_store *base, int64_t id, const char *new_name,
                              int64_t now, int64_t *result_id, char *err, size_t errlen) {
  sq_store *s = (sq_store *)base;
  int rc = sq_begin(s, err, errlen);
  if (rc) return rc;
  int64_t target;
  if ((rc = identity_exists(s, id, err, errlen)) ||
      (rc = find_name(s, new_name, &target, err, errlen)))
    return sq_rollback(s, rc);
  sqlite3_stmt *st = NULL;
  if (!target || target == id) {
    rc = sq_prepare(s, "UPDATE identities SET name = ?, updated_ms = ? WHERE id = ?", &st, err,
                    errlen);
    if (rc) return sq_rollback(s, rc);
    sqlite3_bind_text(st, 1, new_name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, now);
    sqlite3_bind_int64(st, 3, id);
    int step = sqlite3_step(st);
    sqlite3_finalize(st);
    if (step != SQLITE_DONE) return sq_rollback(s, sq_fail(s, step, "rename", err, errlen));
    *result_id = id;
  } else {
    /* Merge: everything of id moves to target, then id goes. */
    static const char *const k_merge[] = {
        "UPDATE embeddings SET identity_id = ?1 WHERE identity_id = ?2",
        "UPDATE negatives SET identity_id = ?1 WHERE identity_id = ?2",
        "UPDATE events SET identity_id = ?1 WHERE identity_id = ?2",
        "DELETE FROM identities WHERE id = ?2",
        "UPDATE identities SET updated_ms = ?3 WHERE id = ?1",
    };
    for (size_t i = 0; i < sizeof k_merge / sizeof k_merge[0]; i++) {
      if ((rc = sq_prepare(s, k_merge[i], &st, err, errlen))) return sq_rollback(s, rc);
      sqlite3_bind_int64(st, 1, target);
      sqlite3_bind_int64(st, 2, id);
      if (sqlite3_bind_parameter_count(st) >= 3) sqlite3_bind_int64(st, 3, now);
      int step = sqlite3_step(st);
      sqlite3_finalize(st);
      if (step != SQLITE_DONE) return sq_rollback(s, sq_fail(s, step, "merge", err, errlen));
    }
    *result_id = target;
  }
  if ((rc = sq_commit(s, err, errlen))) return sq_rollback(s, rc);
  return 0;
}

static int sq_identity_delete(gg__gallery_store *base, int64_t id, char *err, size_t errlen) {
  sq_store *s = (sq_store *)base;
  int rc = sq_begin(s, err, errlen);
  if (rc) return rc;
  if ((rc = identity_exists(s, id, err, errlen))) return sq_rollback(s, rc);
  sqlite3_stmt *st;
  if ((rc = sq_prepare(s, "DELETE FROM identities WHERE id = ?", &st, err, errlen)))
    return sq_rollback(s, rc);
  sqlite3_bind_int64(st, 1, id);
  int step = sqlite3_step(st);
  sqlite3_finalize(st);
  if (step != SQLITE_DONE) return sq_rollback(s, sq_fail(s, step, "delete", err, errlen));
  if ((rc = sq_commit(s, err, errlen))) return sq_rollback(s, rc);
  return 0;
}

/* Normalises a page: limit 1..1000 (0 = 50), at most cap. */
static int page_limit(const gg_gallery_page *p, int cap) {
  int limit = p && p->limit > 0 ? p->limit : 50;
  if (limit > 1000) limit = 1000;
  if (limit > cap) limit = cap;
  return limit;
}

/* Steps a paged query (its rows' column 0 is the id) calling read for each
 * of at most limit rows; a limit+1-th row sets *next to the last id read. */
static int run_page(sq_store *s, sqlite3_stmt *st, int limit, void *out, size_t elem,
                    void (*read)(sqlite3_stmt *, void *), int *n, int64_t *next, char *err,
                    size_t errlen) {
  int got = 0, step;
  int64_t last = 0, more = 0;
  while ((step = sqlite3_step(st)) == SQLITE_ROW) {
    if (got == limit) {
      more = 1;
      break;
    }
    read(st, (char *)out + (size_t)got * elem);
    last = sqlite3_column_int64(st, 0);
    got++;
  }
  if (step != SQLITE_ROW && step != SQLITE_DONE) return sq_fail(s, step, "list", err, errlen);
  *n = got;
  if (next) *next = more ? last : 0;
  return 0;
}

static void read_identity_v(sqlite3_stmt *st, void *o) {
  read_identity(st, o);
}

static int sq_identity_list(gg__gallery_store *base, const gg_gallery_page *page,
                            gg_gallery_identity *out, int cap, int *n, int64_t *next_cursor,
                            int64_t *total, char *err, size_t errlen) {
  sq_store *s = (sq_store *)base;
  int limit = page_limit(page, cap);
  int64_t cursor = page ? page->cursor : 0, offset = page && !cursor ? page->offset : 0;
  sqlite3_stmt *st;
  int rc = sq_prepare(s,
                      "SELECT " IDENTITY_COLS " FROM identities i WHERE i.id > ? ORDER BY i.id "
                      "LIMIT ? OFFSET ?",
                      &st, err, errlen);
  if (rc) return rc;
  sqlite3_bind_int64(st, 1, cursor);
  sqlite3_bind_int64(st, 2, (int64_t)limit + 1);
  sqlite3_bind_int64(st, 3, offset);
  rc = run_page(s, st, limit, out, sizeof *out, read_identity_v, n, next_cursor, err, errlen);
  sqlite3_finalize(st);
  if (!rc && total) rc = sq_int(s, "SELECT count(*) FROM identities", 0, total, err, errlen);
  return rc;
}

/* ------------------------------------------------------------- embeddings */

static int sq_enroll(gg__gallery_store *base, int64_t identity_id, const char *name,
                     const gg_gallery_embedding_in *e, int n, int64_t now, int64_t *out_id,
                     int *created, int64_t *emb_ids, char *err, size_t errlen) {
  sq_store *s = (sq_store *)base;
  *created = 0;
  int rc = sq_begin(s, err, errlen);
  if (rc) return rc;
  int64_t id = identity_id;
  if (id > 0)
    rc = identity_exists(s, id, err, errlen);
  else if (!(rc = find_name(s, name, &id, err, errlen)) && !id) {
    rc = insert_identity(s, name, now, &id, err, errlen);
    *created = 1;
  }
  if (rc) return sq_rollback(s, rc);
  sqlite3_stmt *st;
  if ((rc = sq_prepare(s,
                       "INSERT INTO embeddings(identity_id, dim, model, vec, source, crop, "
                       "det_score, sharpness, face_px, created_ms) VALUES(?,?,?,?,?,?,?,?,?,?)",
                       &st, err, errlen)))
    return sq_rollback(s, rc);
  for (int i = 0; i < n; i++) {
    sqlite3_reset(st);
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int(st, 2, e[i].dim);
    sqlite3_bind_text(st, 3, e[i].model, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 4, e[i].vec, e[i].dim * (int)sizeof(float), SQLITE_STATIC);
    sqlite3_bind_text(st, 5, gg_gallery_source_name(e[i].source), -1, SQLITE_STATIC);
    if (e[i].crop && e[i].crop_len)
      sqlite3_bind_blob(st, 6, e[i].crop, (int)e[i].crop_len, SQLITE_STATIC);
    else
      sqlite3_bind_null(st, 6);
    bind_real_or_null(st, 7, e[i].quality.det_score);
    bind_real_or_null(st, 8, e[i].quality.sharpness);
    bind_real_or_null(st, 9, e[i].quality.face_px);
    sqlite3_bind_int64(st, 10, now);
    int step = sqlite3_step(st);
    if (step != SQLITE_DONE) {
      rc = sq_fail(s, step, "insert embedding", err, errlen);
      sqlite3_finalize(st);
      return sq_rollback(s, rc);
    }
    if (emb_ids) emb_ids[i] = sqlite3_last_insert_rowid(s->db);
    if (gg__gallery_sqlite_enroll_hook) gg__gallery_sqlite_enroll_hook(i);
  }
  sqlite3_finalize(st);
  if ((rc = sq_prepare(s, "UPDATE identities SET updated_ms = ? WHERE id = ?", &st, err, errlen)))
    return sq_rollback(s, rc);
  sqlite3_bind_int64(st, 1, now);
  sqlite3_bind_int64(st, 2, id);
  int step = sqlite3_step(st);
  sqlite3_finalize(st);
  if (step != SQLITE_DONE) return sq_rollback(s, sq_fail(s, step, "enroll", err, errlen));
  if ((rc = sq_commit(s, err, errlen))) return sq_rollback(s, rc);
  *out_id = id;
  return 0;
}

static void read_embedding_v(sqlite3_stmt *st, void *p) {
  gg_gallery_embedding *o = p;
  memset(o, 0, sizeof *o);
  o->id = sqlite3_column_int64(st, 0);
  o->identity_id = sqlite3_column_int64(st, 1);
  o->dim = sqlite3_column_int(st, 2);
  col_text(st, 3, o->model, sizeof o->model);
  const unsigned char *src = sqlite3_column_text(st, 4);
  o->source = src && !strcmp((const char *)src, "camera") ? GG_GALLERY_SOURCE_CAMERA
                                                          : GG_GALLERY_SOURCE_UPLOAD;
  o->crop_len = (size_t)sqlite3_column_int64(st, 5);
  o->quality.det_score = col_real_or_nan(st, 6);
  o->quality.sharpness = col_real_or_nan(st, 7);
  o->quality.face_px = col_real_or_nan(st, 8);
  o->created_ms = sqlite3_column_int64(st, 9);
}

/* Lists the rows of `table` (embeddings or negatives) of one identity. */
static int list_rows(sq_store *s, int negatives, int64_t identity_id, const gg_gallery_page *page,
                     gg_gallery_embedding *out, int cap, int *n, int64_t *next_cursor,
                     int64_t *total, char *err, size_t errlen) {
  int rc = identity_exists(s, identity_id, err, errlen);
  if (rc) return rc;
  int limit = page_limit(page, cap);
  int64_t cursor = page ? page->cursor : 0, offset = page && !cursor ? page->offset : 0;
  sqlite3_stmt *st;
  if ((rc = sq_prepare(s,
                       negatives
                           ? "SELECT id, identity_id, dim, model, 'upload', 0, NULL, NULL, NULL, "
                             "created_ms FROM negatives "
                             "WHERE identity_id = ? AND id > ? ORDER BY id LIMIT ? OFFSET ?"
                           : "SELECT id, identity_id, dim, model, source, "
                             "coalesce(length(crop), 0), det_score, sharpness, face_px, "
                             "created_ms FROM embeddings "
                             "WHERE identity_id = ? AND id > ? ORDER BY id LIMIT ? OFFSET ?",
                       &st, err, errlen)))
    return rc;
  sqlite3_bind_int64(st, 1, identity_id);
  sqlite3_bind_int64(st, 2, cursor);
  sqlite3_bind_int64(st, 3, (int64_t)limit + 1);
  sqlite3_bind_int64(st, 4, offset);
  rc = run_page(s, st, limit, out, sizeof *out, read_embedding_v, n, next_cursor, err, errlen);
  sqlite3_finalize(st);
  if (!rc && total)
    rc = sq_int(s,
                negatives ? "SELECT count(*) FROM negatives WHERE identity_id = ?"
                          : "SELECT count(*) FROM embeddings WHERE identity_id = ?",
                identity_id, total, err, errlen);
  return rc;
}

static int sq_embedding_list(gg__gallery_store *base, int64_t identity_id,
                             const gg_gallery_page *page, gg_gallery_embedding *out, int cap,
                             int *n, int64_t *next_cursor, int64_t *total, char *err,
                             size_t errlen) {
  return list_rows((sq_store *)base, 0, identity_id, page, out, cap, n, next_cursor, total, err,
                   errlen);
}
static int sq_negative_list(gg__gallery_store *base, int64_t identity_id,
                            const gg_gallery_page *page, gg_gallery_embedding *out, int cap, int *n,
                            int64_t *next_cursor, int64_t *total, char *err, size_t errlen) {
  return list_rows((sq_store *)base, 1, identity_id, page, out, cap, n, next_cursor, total, err,
                   errlen);
}

/* Deletes row id of embeddings or negatives; *identity_id gets its owner. */
static int delete_row(sq_store *s, int negatives, int64_t id, int64_t *identity_id, char *err,
                      size_t errlen) {
  int rc = sq_begin(s, err, errlen);
  if (rc) return rc;
  if ((rc = sq_int(s,
                   negatives ? "SELECT identity_id FROM negatives WHERE id = ?"
                             : "SELECT identity_id FROM embeddings WHERE id = ?",
                   id, identity_id, err, errlen)))
    return sq_rollback(s, rc);
  if (!*identity_id)
    return sq_rollback(s, gg_errf(err, errlen, GG_ENOTFOUND, "gallery: no %s with id %lld",
                                  negatives ? "negative example" : "embedding", (long long)id));
  sqlite3_stmt *st;
  if ((rc = sq_prepare(s,
                       negatives ? "DELETE FROM negatives WHERE id = ?"
                                 : "DELETE FROM embeddings WHERE id = ?",
                       &st, err, errlen)))
    return sq_rollback(s, rc);
  sqlite3_bind_int64(st, 1, id);
  int step = sqlite3_step(st);
  sqlite3_finalize(st);
  if (step != SQLITE_DONE) return sq_rollback(s, sq_fail(s, step, "delete", err, errlen));
  if ((rc = sq_commit(s, err, errlen))) return sq_rollback(s, rc);
  return 0;
}

static int sq_embedding_delete(gg__gallery_store *base, int64_t emb_id, int64_t *identity_id,
                               char *err, size_t errlen) {
  return delete_row((sq_store *)base, 0, emb_id, identity_id, err, errlen);
}
static int sq_negative_delete(gg__gallery_store *base, int64_t neg_id, int64_t *identity_id,
                              char *err, size_t errlen) {
  return delete_row((sq_store *)base, 1, neg_id, identity_id, err, errlen);
}

static int sq_embedding_crop(gg__gallery_store *base, int64_t emb_id, void **jpeg, size_t *len,
                             char *err, size_t errlen) {
  sq_store *s = (sq_store *)base;
  sqlite3_stmt *st;
  int rc = sq_prepare(s, "SELECT crop FROM embeddings WHERE id = ?", &st, err, errlen);
  if (rc) return rc;
  sqlite3_bind_int64(st, 1, emb_id);
  int step = sqlite3_step(st);
  if (step == SQLITE_ROW && sqlite3_column_bytes(st, 0) > 0) {
    size_t n = (size_t)sqlite3_column_bytes(st, 0);
    void *p = malloc(n);
    if (!p)
      rc = gg_errf(err, errlen, GG_ENOMEM, "gallery: no memory for a %zu-byte crop", n);
    else {
      memcpy(p, sqlite3_column_blob(st, 0), n);
      *jpeg = p;
      *len = n;
    }
  } else if (step == SQLITE_ROW || step == SQLITE_DONE) {
    rc = gg_errf(err, errlen, GG_ENOTFOUND,
                 step == SQLITE_ROW ? "gallery: embedding %lld has no stored face crop"
                                    : "gallery: no embedding with id %lld",
                 (long long)emb_id);
  } else {
    rc = sq_fail(s, step, "crop", err, errlen);
  }
  sqlite3_finalize(st);
  return rc;
}

static int sq_negative_add(gg__gallery_store *base, int64_t identity_id, const float *vec, int dim,
                           const char *model, int64_t now, int64_t *neg_id, char *err,
                           size_t errlen) {
  sq_store *s = (sq_store *)base;
  int rc = sq_begin(s, err, errlen);
  if (rc) return rc;
  if ((rc = identity_exists(s, identity_id, err, errlen))) return sq_rollback(s, rc);
  sqlite3_stmt *st;
  if ((rc = sq_prepare(s,
                       "INSERT INTO negatives(identity_id, dim, model, vec, created_ms) "
                       "VALUES(?,?,?,?,?)",
                       &st, err, errlen)))
    return sq_rollback(s, rc);
  sqlite3_bind_int64(st, 1, identity_id);
  sqlite3_bind_int(st, 2, dim);
  sqlite3_bind_text(st, 3, model, -1, SQLITE_STATIC);
  sqlite3_bind_blob(st, 4, vec, dim * (int)sizeof(float), SQLITE_STATIC);
  sqlite3_bind_int64(st, 5, now);
  int step = sqlite3_step(st);
  sqlite3_finalize(st);
  if (step != SQLITE_DONE) return sq_rollback(s, sq_fail(s, step, "insert negative", err, errlen));
  *neg_id = sqlite3_last_insert_rowid(s->db);
  if ((rc = sq_commit(s, err, errlen))) return sq_rollback(s, rc);
  return 0;
}

/* ------------------------------------------------------------------ load */

static int load_vectors(sq_store *s, const char *sql, int negative, gg__gallery_vec_fn fn,
                        void *user, char *err, size_t errlen) {
  sqlite3_stmt *st;
  int rc = sq_prepare(s, sql, &st, err, errlen), step;
  if (rc) return rc;
  while ((step = sqlite3_step(st)) == SQLITE_ROW) {
    gg__gallery_vec_row r = {.negative = negative};
    r.id = sqlite3_column_int64(st, 0);
    r.identity_id = sqlite3_column_int64(st, 1);
    r.dim = sqlite3_column_int(st, 2);
    r.model = (const char *)sqlite3_column_text(st, 3);
    r.vec = sqlite3_column_blob(st, 4);
    if (sqlite3_column_bytes(st, 4) != r.dim * (int)sizeof(float) || !r.vec || !r.model) {
      rc = gg_errf(err, errlen, GG_EPARSE, "gallery: stored vector %lld is malformed",
                   (long long)r.id);
      break;
    }
    if ((rc = fn(user, &r))) break;
  }
  if (!rc && step != SQLITE_DONE) rc = sq_fail(s, step, "load", err, errlen);
  sqlite3_finalize(st);
  return rc;
}

static int load_all(sq_store *s, gg__gallery_identity_fn id_fn, gg__gallery_vec_fn vec_fn,
                    void *user, char *err, size_t errlen) {
  sqlite3_stmt *st;
  int rc = sq_prepare(s, "SELECT " IDENTITY_COLS " FROM identities i ORDER BY i.id", &st, err,
                      errlen),
      step;
  if (rc) return rc;
  while ((step = sqlite3_step(st)) == SQLITE_ROW) {
    gg_gallery_identity id;
    read_identity(st, &id);
    if ((rc = id_fn(user, &id))) break;
  }
  if (!rc && step != SQLITE_DONE) rc = sq_fail(s, step, "load", err, errlen);
  sqlite3_finalize(st);
  if (rc) return rc;
  if ((rc = load_vectors(s,
                         "SELECT id, identity_id, dim, model, vec FROM embeddings "
                         "ORDER BY identity_id, id",
                         0, vec_fn, user, err, errlen)))
    return rc;
  return load_vectors(s,
                      "SELECT id, identity_id, dim, model, vec FROM negatives "
                      "ORDER BY identity_id, id",
                      1, vec_fn, user, err, errlen);
}

/* One read transaction: the three queries see the same snapshot even when
 * another process writes meanwhile. */
static int sq_load(gg__gallery_store *base, gg__gallery_identity_fn id_fn,
                   gg__gallery_vec_fn vec_fn, void *user, char *err, size_t errlen) {
  sq_store *s = (sq_store *)base;
  int rc = sq_exec(s, "BEGIN", err, errlen);
  if (rc) return rc;
  if ((rc = load_all(s, id_fn, vec_fn, user, err, errlen))) return sq_rollback(s, rc);
  sq_exec(s, "COMMIT", NULL, 0);
  return 0;
}

/* ----------------------------------------------------------------- events */

static int sq_event_add(gg__gallery_store *base, const gg_gallery_event *ev, int64_t *id, char *err,
                        size_t errlen) {
  sq_store *s = (sq_store *)base;
  int rc = sq_begin(s, err, errlen);
  if (rc) return rc;
  if (ev->identity_id > 0 && (rc = identity_exists(s, ev->identity_id, err, errlen)))
    return sq_rollback(s, rc);
  sqlite3_stmt *st;
  if ((rc = sq_prepare(s,
                       "INSERT INTO events(time_ms, stream, identity_id, score, device, box_x, "
                       "box_y, box_w, box_h) VALUES(?,?,?,?,?,?,?,?,?)",
                       &st, err, errlen)))
    return sq_rollback(s, rc);
  sqlite3_bind_int64(st, 1, ev->time_ms);
  sqlite3_bind_text(st, 2, ev->stream, -1, SQLITE_STATIC);
  if (ev->identity_id > 0)
    sqlite3_bind_int64(st, 3, ev->identity_id);
  else
    sqlite3_bind_null(st, 3);
  bind_real_or_null(st, 4, ev->score);
  sqlite3_bind_text(st, 5, ev->device, -1, SQLITE_STATIC);
  for (int i = 0; i < 4; i++)
    bind_real_or_null(st, 6 + i, ev->box[i]);
  int step = sqlite3_step(st);
  sqlite3_finalize(st);
  if (step != SQLITE_DONE) return sq_rollback(s, sq_fail(s, step, "insert event", err, errlen));
  *id = sqlite3_last_insert_rowid(s->db);
  if ((rc = sq_commit(s, err, errlen))) return sq_rollback(s, rc);
  return 0;
}

static void read_event_v(sqlite3_stmt *st, void *p) {
  gg_gallery_event *o = p;
  memset(o, 0, sizeof *o);
  o->id = sqlite3_column_int64(st, 0);
  o->time_ms = sqlite3_column_int64(st, 1);
  col_text(st, 2, o->stream, sizeof o->stream);
  o->identity_id = sqlite3_column_int64(st, 3); /* NULL reads as 0: unknown */
  o->score = col_real_or_nan(st, 4);
  col_text(st, 5, o->device, sizeof o->device);
  for (int i = 0; i < 4; i++)
    o->box[i] = col_real_or_nan(st, 6 + i);
}

/* The WHERE clause of an event query; binds start at ?1 in this order:
 * identity, stream, since, cursor (each only when used). */
static void event_where(const gg_gallery_event_filter *f, int64_t cursor, char *out, size_t len) {
  snprintf(out, len, " WHERE 1%s%s%s%s",
           !f || f->identity_id == GG_GALLERY_ANY ? ""
           : f->identity_id == GG_GALLERY_UNKNOWN ? " AND identity_id IS NULL"
                                                  : " AND identity_id = :ident",
           f && f->stream ? " AND stream = :stream" : "",
           f && f->since_ms ? " AND time_ms >= :since" : "", cursor ? " AND id < :cursor" : "");
}

static void event_bind(sqlite3_stmt *st, const gg_gallery_event_filter *f, int64_t cursor) {
  int i;
  if (f && (i = sqlite3_bind_parameter_index(st, ":ident")))
    sqlite3_bind_int64(st, i, f->identity_id);
  if (f && (i = sqlite3_bind_parameter_index(st, ":stream")))
    sqlite3_bind_text(st, i, f->stream, -1, SQLITE_STATIC);
  if (f && (i = sqlite3_bind_parameter_index(st, ":since"))) sqlite3_bind_int64(st, i, f->since_ms);
  if ((i = sqlite3_bind_parameter_index(st, ":cursor"))) sqlite3_bind_int64(st, i, cursor);
}

static int sq_event_list(gg__gallery_store *base, const gg_gallery_event_filter *f,
                         const gg_gallery_page *page, gg_gallery_event *out, int cap, int *n,
                         int64_t *next_cursor, int64_t *total, char *err, size_t errlen) {
  sq_store *s = (sq_store *)base;
  int limit = page_limit(page, cap);
  int64_t cursor = page ? page->cursor : 0, offset = page && !cursor ? page->offset : 0;
  char where[256], sql[512];
  event_where(f, cursor, where, sizeof where);
  snprintf(sql, sizeof sql,
           "SELECT id, time_ms, stream, identity_id, score, device, box_x, box_y, box_w, box_h "
           "FROM events%s ORDER BY id DESC LIMIT :limit OFFSET :offset",
           where);
  sqlite3_stmt *st;
  int rc = sq_prepare(s, sql, &st, err, errlen);
  if (rc) return rc;
  event_bind(st, f, cursor);
  sqlite3_bind_int64(st, sqlite3_bind_parameter_index(st, ":limit"), (int64_t)limit + 1);
  sqlite3_bind_int64(st, sqlite3_bind_parameter_index(st, ":offset"), offset);
  rc = run_page(s, st, limit, out, sizeof *out, read_event_v, n, next_cursor, err, errlen);
  sqlite3_finalize(st);
  if (rc || !total) return rc;
  event_where(f, 0, where, sizeof where);
  snprintf(sql, sizeof sql, "SELECT count(*) FROM events%s", where);
  if ((rc = sq_prepare(s, sql, &st, err, errlen))) return rc;
  event_bind(st, f, 0);
  int step = sqlite3_step(st);
  if (step == SQLITE_ROW)
    *total = sqlite3_column_int64(st, 0);
  else
    rc = sq_fail(s, step, "count events", err, errlen);
  sqlite3_finalize(st);
  return rc;
}

static int sq_identity_stats(gg__gallery_store *base, int64_t id, gg_gallery_stats *out, char *err,
                             size_t errlen) {
  sq_store *s = (sq_store *)base;
  memset(out, 0, sizeof *out);
  /* One read transaction, so the numbers are of one moment. */
  int rc = sq_exec(s, "BEGIN", err, errlen);
  if (rc) return rc;
  if ((rc = identity_exists(s, id, err, errlen)) ||
      (rc = sq_int(s, "SELECT count(*) FROM embeddings WHERE identity_id = ?", id,
                   &out->n_embeddings, err, errlen)) ||
      (rc = sq_int(s, "SELECT count(*) FROM embeddings WHERE identity_id = ? AND crop IS NOT NULL",
                   id, &out->n_crops, err, errlen)) ||
      (rc = sq_int(s, "SELECT count(*) FROM negatives WHERE identity_id = ?", id, &out->n_negatives,
                   err, errlen)) ||
      (rc = sq_int(s, "SELECT count(*) FROM events WHERE identity_id = ?", id, &out->n_events, err,
                   errlen)) ||
      (rc = sq_int(s, "SELECT min(time_ms) FROM events WHERE identity_id = ?", id,
                   &out->first_seen_ms, err, errlen)) ||
      (rc = sq_int(s, "SELECT max(time_ms) FROM events WHERE identity_id = ?", id,
                   &out->last_seen_ms, err, errlen)))
    return sq_rollback(s, rc);
  sq_exec(s, "COMMIT", NULL, 0);
  return 0;
}

static const gg__gallery_store_i k_sqlite_i = {
    .close = sq_close,
    .schema_version = sq_schema_version,
    .load = sq_load,
    .identity_create = sq_identity_create,
    .identity_get = sq_identity_get,
    .identity_rename = sq_identity_rename,
    .identity_delete = sq_identity_delete,
    .identity_list = sq_identity_list,
    .enroll = sq_enroll,
    .embedding_list = sq_embedding_list,
    .embedding_delete = sq_embedding_delete,
    .embedding_crop = sq_embedding_crop,
    .negative_add = sq_negative_add,
    .negative_list = sq_negative_list,
    .negative_delete = sq_negative_delete,
    .event_add = sq_event_add,
    .event_list = sq_event_list,
    .identity_stats = sq_identity_stats,
};

int gg__gallery_sqlite_open(const char *path, int max_version, gg__gallery_store **out, char *err,
                            size_t errlen) {
  *out = NULL;
  if (max_version <= 0 || max_version > GG__GALLERY_SCHEMA_VERSION)
    max_version = GG__GALLERY_SCHEMA_VERSION;
  /* Create the file ourselves so it is 0600 from the start (SQLite would
   * use 0644 less the umask; its -wal and -shm files copy the mode). */
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0)
    return gg_errf(err, errlen, GG_EIO, "gallery: cannot open %s: %s", path, strerror(errno));
  close(fd);
  sq_store *s = calloc(1, sizeof *s);
  if (!s) return gg_errf(err, errlen, GG_ENOMEM, "gallery: out of memory");
  s->base.iface = &k_sqlite_i;
  s->base.ctx = s;
  int rc = sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX, NULL);
  if (rc != SQLITE_OK) {
    rc = sq_fail(s, rc, path, err, errlen);
    sq_close(&s->base);
    return rc;
  }
  sqlite3_busy_timeout(s->db, 5000);
  sqlite3_stmt *st;
  if ((rc = sq_prepare(s, "PRAGMA journal_mode = WAL", &st, err, errlen))) {
    gg_errf(err, errlen, GG_EIO, "gallery: %s is not a gallery database (%s)", path,
            sqlite3_errmsg(s->db));
    sq_close(&s->base);
    return GG_EIO;
  }
  int step = sqlite3_step(st);
  const unsigned char *mode = step == SQLITE_ROW ? sqlite3_column_text(st, 0) : NULL;
  int wal = mode && !strcmp((const char *)mode, "wal");
  sqlite3_finalize(st);
  if (!wal) {
    rc = gg_errf(err, errlen, GG_EIO, "gallery: %s: cannot use WAL mode (%s)", path,
                 sqlite3_errmsg(s->db));
    sq_close(&s->base);
    return rc;
  }
  if ((rc = sq_exec(s, "PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL", err, errlen)) ||
      (rc = migrate(s, max_version, err, errlen))) {
    sq_close(&s->base);
    return rc;
  }
  *out = &s->base;
  return 0;
}
