/* multipart/form-data, just enough for uploads: the boundary, the parts'
 * Content-Disposition names, and one part's bytes (RFC 7578, RFC 2046). */
#include "server/multipart.h"
#include "gpuguard/error.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

int gg__multipart_is_form(const char *ct) {
  if (!ct) return 0;
  ct += strspn(ct, " \t");
  return !strncasecmp(ct, "multipart/form-data", 19) &&
         (ct[19] == 0 || ct[19] == ';' || ct[19] == ' ' || ct[19] == '\t');
}

/* RFC 2046 bchars: digits, letters and '()+_,-./:=? and space (not last). */
static int bchar(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         strchr("'()+_,-./:=? ", c) != NULL;
}

int gg__multipart_boundary(const char *ct, char *out, size_t outlen, char *err, size_t errlen) {
  if (!gg__multipart_is_form(ct))
    return gg_errf(err, errlen, GG_EPARSE,
                   "the body is not multipart/form-data (Content-Type %.60s)", ct ? ct : "missing");
  const char *p = ct;
  const char *b = NULL;
  while ((p = strchr(p, ';'))) {
    p++;
    p += strspn(p, " \t");
    if (!strncasecmp(p, "boundary=", 9)) {
      b = p + 9;
      break;
    }
  }
  if (!b)
    return gg_errf(err, errlen, GG_EPARSE,
                   "the Content-Type multipart/form-data has no boundary parameter");
  size_t n = 0;
  if (*b == '"') {
    b++;
    const char *q = strchr(b, '"');
    if (!q) return gg_errf(err, errlen, GG_EPARSE, "the multipart boundary's quote is not closed");
    n = (size_t)(q - b);
  } else {
    n = strcspn(b, "; \t");
  }
  if (n == 0 || n > GG_MULTIPART_BOUNDARY_MAX || n >= outlen)
    return gg_errf(err, errlen, GG_EPARSE,
                   "the multipart boundary has %zu characters; expected 1 to %d", n,
                   GG_MULTIPART_BOUNDARY_MAX);
  for (size_t i = 0; i < n; i++)
    if (!bchar(b[i]))
      return gg_errf(err, errlen, GG_EPARSE,
                     "the multipart boundary has a character RFC 2046 does not allow at %zu", i);
  memcpy(out, b, n);
  out[n] = 0;
  return 0;
}

/* The first occurrence of needle (nn bytes, nn > 0) in hay (hn bytes). */
static const char *find(const char *hay, size_t hn, const char *needle, size_t nn) {
  if (nn > hn) return NULL;
  const char *end = hay + (hn - nn);
  for (const char *p = hay; p <= end; p++) {
    p = memchr(p, needle[0], (size_t)(end - p) + 1);
    if (!p) return NULL;
    if (!memcmp(p, needle, nn)) return p;
  }
  return NULL;
}

/* The name="..." of a part's headers (hn bytes); *name NULL when none. */
static void disposition_name(const char *h, size_t hn, const char **name, size_t *name_len) {
  *name = NULL;
  *name_len = 0;
  const char *end = h + hn;
  for (const char *line = h; line < end;) {
    const char *eol = find(line, (size_t)(end - line), "\r\n", 2);
    if (!eol) eol = end;
    size_t ln = (size_t)(eol - line);
    if (ln > 20 && !strncasecmp(line, "Content-Disposition:", 20)) {
      /* Parameters are "; key=value" with value quoted or a token. */
      for (const char *p = line + 20; p + 5 < eol; p++) {
        if ((p[-1] == ';' || p[-1] == ' ' || p[-1] == '\t') && !strncasecmp(p, "name=", 5)) {
          const char *v = p + 5;
          if (v < eol && *v == '"') {
            v++;
            const char *q = memchr(v, '"', (size_t)(eol - v));
            if (!q) return;
            *name = v, *name_len = (size_t)(q - v);
          } else {
            const char *q = v;
            while (q < eol && *q != ';' && *q != ' ' && *q != '\t')
              q++;
            *name = v, *name_len = (size_t)(q - v);
          }
          return;
        }
      }
    }
    line = eol + 2;
  }
}

int gg__multipart_find(const void *body, size_t len, const char *ct, const char *field,
                       size_t max_part, const void **data, size_t *data_len, char *err,
                       size_t errlen) {
  char bnd[GG_MULTIPART_BOUNDARY_MAX + 1];
  int rc = gg__multipart_boundary(ct, bnd, sizeof bnd, err, errlen);
  if (rc) return rc;
  /* "\r\n--boundary": the delimiter; the first one may open the body
   * without its CRLF (anything before it is a preamble and ignored). */
  char delim[GG_MULTIPART_BOUNDARY_MAX + 5];
  size_t dn = (size_t)snprintf(delim, sizeof delim, "\r\n--%s", bnd);
  const char *s = body, *end = s + len, *p;
  if (len >= dn - 2 && !memcmp(s, delim + 2, dn - 2))
    p = s + dn - 2;
  else if ((p = find(s, len, delim, dn)))
    p += dn;
  else
    return gg_errf(err, errlen, GG_EPARSE,
                   "the multipart body does not contain its boundary '%s' (from Content-Type)",
                   bnd);
  const char *found = NULL;
  size_t found_len = 0;
  size_t fn = strlen(field);
  for (int parts = 0;; parts++) {
    /* After a delimiter: "--" closes the body; else optional spaces, CRLF. */
    if (end - p >= 2 && p[0] == '-' && p[1] == '-') break;
    while (p < end && (*p == ' ' || *p == '\t'))
      p++;
    if (end - p < 2 || p[0] != '\r' || p[1] != '\n')
      return gg_errf(err, errlen, GG_EPARSE,
                     "the multipart body is truncated or malformed after "
                     "part %d's boundary (expected CRLF or '--')",
                     parts);
    p += 2;
    if (parts >= GG_MULTIPART_PARTS_MAX)
      return gg_errf(err, errlen, GG_EPARSE, "the multipart body has more than %d parts",
                     GG_MULTIPART_PARTS_MAX);
    size_t look = (size_t)(end - p);
    if (look > GG_MULTIPART_HEADERS_MAX + 4) look = GG_MULTIPART_HEADERS_MAX + 4;
    const char *hend = NULL;
    if (look >= 2 && p[0] == '\r' && p[1] == '\n')
      hend = p; /* no headers at all */
    else if ((hend = find(p, look, "\r\n\r\n", 4)))
      hend += 2;
    if (!hend)
      return gg_errf(err, errlen, GG_EPARSE,
                     "part %d's headers do not end (no blank line within %d bytes): the body is "
                     "truncated or malformed",
                     parts + 1, GG_MULTIPART_HEADERS_MAX);
    const char *name;
    size_t name_len;
    disposition_name(p, (size_t)(hend - p), &name, &name_len);
    const char *d = hend + 2;
    const char *dend = find(d, (size_t)(end - d), delim, dn);
    if (!dend)
      return gg_errf(err, errlen, GG_EPARSE,
                     "part %d does not end with the boundary: the body is truncated", parts + 1);
    if (name && name_len == fn && !memcmp(name, field, fn)) {
      if (found)
        return gg_errf(err, errlen, GG_EPARSE, "the form has the field '%s' twice; send it once",
                       field);
      found = d;
      found_len = (size_t)(dend - d);
    }
    p = dend + dn;
  }
  if (!found) return gg_errf(err, errlen, GG_ENOTFOUND, "the form has no field named '%s'", field);
  if (max_part && found_len > max_part)
    return gg_errf(err, errlen, GG_ETOO_LARGE,
                   "the form field '%s' has %zu bytes; at most %zu allowed", field, found_len,
                   max_part);
  *data = found;
  *data_len = found_len;
  return 0;
}
