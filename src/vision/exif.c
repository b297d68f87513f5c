/* Image metadata that changes the pixels: EXIF orientation (JPEG APP1, PNG
 * eXIf) and the Adobe APP14 marker of CMYK JPEGs. Every offset comes from an
 * untrusted upload, so each read is checked against the buffer first. */
#include "vision/vision-impl.h"

#include "gpuguard/error.h"

#include <stdlib.h>
#include <string.h>

#define EXIF_TAG_ORIENTATION 0x0112
#define TIFF_TYPE_SHORT 3

static uint32_t rd16(const uint8_t *p, int le) {
  return le ? (uint32_t)p[0] | (uint32_t)p[1] << 8 : (uint32_t)p[0] << 8 | (uint32_t)p[1];
}

static uint32_t rd32(const uint8_t *p, int le) {
  return le ? rd16(p, 1) | rd16(p + 2, 1) << 16 : rd16(p, 0) << 16 | rd16(p + 2, 0);
}

int gg__exif_orientation(const uint8_t *t, size_t n) {
  if (!t || n < 8) return 1;
  int le;
  if (t[0] == 'I' && t[1] == 'I')
    le = 1;
  else if (t[0] == 'M' && t[1] == 'M')
    le = 0;
  else
    return 1;
  if (rd16(t + 2, le) != 42) return 1;
  /* Only IFD0 is read and its next-IFD link is never followed, so a
   * structure whose offsets loop cannot make this loop. */
  uint64_t ifd = rd32(t + 4, le);
  if (ifd + 2 > n) return 1;
  uint32_t count = rd16(t + ifd, le);
  for (uint64_t i = 0, e = ifd + 2; i < count && e + 12 <= n; i++, e += 12) {
    if (rd16(t + e, le) != EXIF_TAG_ORIENTATION) continue;
    /* A SHORT with count 1 sits left-aligned in the 4-byte value field. */
    if (rd16(t + e + 2, le) != TIFF_TYPE_SHORT || rd32(t + e + 4, le) < 1) return 1;
    uint32_t v = rd16(t + e + 8, le);
    return v >= 1 && v <= 8 ? (int)v : 1;
  }
  return 1;
}

void gg__jpeg_meta_read(const uint8_t *d, size_t len, gg__jpeg_meta *meta) {
  meta->orientation = 1;
  meta->adobe = 0;
  int seen_exif = 0;
  size_t p = 2; /* after SOI */
  while (p + 4 <= len) {
    if (d[p] != 0xff) return;
    uint8_t m = d[p + 1];
    if (m == 0xff) { /* fill byte before a marker */
      p++;
      continue;
    }
    if (m == 0x01 || (m >= 0xd0 && m <= 0xd7)) { /* TEM, RSTn: no length */
      p += 2;
      continue;
    }
    if (m == 0xda || m == 0xd9) return; /* SOS, EOI: the metadata is over */
    size_t seg = rd16(d + p + 2, 0);
    if (seg < 2 || seg > len - p - 2) return;
    const uint8_t *body = d + p + 4;
    size_t blen = seg - 2;
    if (m == 0xe1 && !seen_exif && blen >= 6 && !memcmp(body, "Exif\0\0", 6)) {
      /* The first Exif APP1 counts (a later one is usually XMP or a copy). */
      seen_exif = 1;
      meta->orientation = gg__exif_orientation(body + 6, blen - 6);
    } else if (m == 0xee && blen >= 12 && !memcmp(body, "Adobe", 5)) {
      /* libjpeg's rule: an APP14 of at least 12 bytes starting "Adobe". */
      meta->adobe = 1;
    }
    p += 2 + seg;
  }
}

int gg__image_orient(gg_image *img, int o) {
  if (o <= 1 || o > 8 || !img->rgb) return 0;
  size_t W = (size_t)img->width, H = (size_t)img->height;
  int swap = o >= 5;
  size_t ow = swap ? H : W, oh = swap ? W : H;
  uint8_t *dst = malloc(W * H * 3);
  if (!dst) return GG_ENOMEM;
  for (size_t y = 0; y < oh; y++)
    for (size_t x = 0; x < ow; x++) {
      /* The stored pixel shown at (x, y). */
      size_t sx, sy;
      switch (o) {
      case 2: sx = W - 1 - x, sy = y; break;         /* mirrored left-right */
      case 3: sx = W - 1 - x, sy = H - 1 - y; break; /* rotated 180 */
      case 4: sx = x, sy = H - 1 - y; break;         /* mirrored top-bottom */
      case 5: sx = y, sy = x; break;                 /* transposed */
      case 6: sx = y, sy = H - 1 - x; break;         /* shown rotated 90 clockwise */
      case 7: sx = W - 1 - y, sy = H - 1 - x; break; /* transversed */
      default: sx = W - 1 - y, sy = x; break;        /* 8: shown rotated 90 counter-clockwise */
      }
      memcpy(dst + (y * ow + x) * 3, img->rgb + (sy * W + sx) * 3, 3);
    }
  free(img->rgb);
  img->rgb = dst;
  img->width = (int)ow, img->height = (int)oh;
  return 0;
}
