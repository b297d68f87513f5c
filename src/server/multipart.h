/* A small, bounded multipart/form-data reader: finds one named part of an
 * upload held in memory (the CompreFace-compatible routes take their image
 * as the part `file`). It copies nothing and allocates nothing. */
#ifndef GG_SERVER_MULTIPART_H
#define GG_SERVER_MULTIPART_H

#include <stddef.h>

/* Longest boundary RFC 2046 allows, and the most header bytes and parts
 * one upload may have; more is refused as malformed. */
#define GG_MULTIPART_BOUNDARY_MAX 70
#define GG_MULTIPART_HEADERS_MAX 4096
#define GG_MULTIPART_PARTS_MAX 16

/* 1 when a Content-Type header value is multipart/form-data; 0 otherwise
 * (also for NULL). */
int gg__multipart_is_form(const char *content_type);

/* Copies the boundary parameter of content_type (quoted or not) into out
 * (GG_MULTIPART_BOUNDARY_MAX + 1 bytes suffice). Returns 0, or GG_EPARSE
 * with the reason in err when the type is not multipart/form-data or the
 * boundary is missing, empty or too long. */
int gg__multipart_boundary(const char *content_type, char *out, size_t outlen, char *err,
                           size_t errlen);

/* Finds the part named `field` in body (len bytes) sent with content_type.
 * On success *data points INTO body (borrowed) and *data_len is its size.
 * The whole body must be well formed: every part's headers end, the closing
 * delimiter is present. Returns 0; GG_EPARSE (malformed or truncated body,
 * bad boundary, more than GG_MULTIPART_PARTS_MAX parts, the field given
 * twice); GG_ENOTFOUND (no such part); GG_ETOO_LARGE (the part is larger
 * than max_part bytes; 0 = no limit). err says which. */
int gg__multipart_find(const void *body, size_t len, const char *content_type, const char *field,
                       size_t max_part, const void **data, size_t *data_len, char *err,
                       size_t errlen);

#endif
