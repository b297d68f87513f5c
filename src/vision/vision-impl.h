/* Vision internals shared by the decoders (image.c) and the metadata readers
 * (exif.c). Not a public header. */
#ifndef GG_VISION_IMPL_H
#define GG_VISION_IMPL_H

#include "gpuguard/image.h"

#include <stddef.h>
#include <stdint.h>

/* What the JPEG markers before the first scan say about the pixels. */
typedef struct gg__jpeg_meta {
  int orientation; /* EXIF orientation 1..8 from the first APP1 Exif segment; 1 if none */
  int adobe;       /* 1 when an APP14 "Adobe" segment is present (CMYK stored inverted) */
} gg__jpeg_meta;

/* Walks the JPEG segments from SOI up to SOS or EOI, bounds-checked, and
 * fills meta. Never fails: malformed or missing metadata leaves the
 * defaults (the decoder reports broken image data itself). */
void gg__jpeg_meta_read(const uint8_t *d, size_t len, gg__jpeg_meta *meta);

/* The orientation (tag 0x0112 of IFD0) in a TIFF structure as found after
 * "Exif\0\0" in a JPEG APP1 segment or in a PNG eXIf chunk; 1 when absent,
 * out of range 1..8, or the structure is malformed. Reads only inside
 * tiff[0..n). */
int gg__exif_orientation(const uint8_t *tiff, size_t n);

/* Applies an EXIF orientation (1..8) to img in place, so the pixels come out
 * the way a viewer shows them; 5..8 swap width and height. Returns 0 or
 * GG_ENOMEM (img unchanged). */
int gg__image_orient(gg_image *img, int orientation);

#endif
