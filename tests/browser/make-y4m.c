/* Makes the fake camera of the browser test: a region of a photo, scaled
 * (aspect kept, grey padding) into a YUV4MPEG2 file that Chromium plays with
 * --use-file-for-fake-video-capture. Decodes with the project's image API.
 *
 * Usage: make-y4m IN.jpg OUT.y4m [--crop x0,y0,x1,y1] [--size WxH]
 *                 [--frames N] [--mirror]
 * Exit status 0, or 1 with the reason on stderr. */
#include "gpuguard/image.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct opts {
  const char *in, *out;
  int crop[4]; /* x0, y0, x1, y1; x1 == 0: the whole image */
  int width, height, frames, mirror;
} opts;

static int parse(int argc, char **argv, opts *o) {
  *o = (opts){.width = 640, .height = 480, .frames = 2};
  int pos = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--crop") && i + 1 < argc) {
      if (sscanf(argv[++i], "%d,%d,%d,%d", &o->crop[0], &o->crop[1], &o->crop[2], &o->crop[3]) != 4)
        return -1;
    } else if (!strcmp(a, "--size") && i + 1 < argc) {
      if (sscanf(argv[++i], "%dx%d", &o->width, &o->height) != 2) return -1;
    } else if (!strcmp(a, "--frames") && i + 1 < argc) {
      o->frames = atoi(argv[++i]);
    } else if (!strcmp(a, "--mirror")) {
      o->mirror = 1;
    } else if (a[0] != '-' && pos < 2) {
      *(pos++ ? &o->out : &o->in) = a;
    } else {
      return -1;
    }
  }
  /* 4:2:0 needs even sizes. */
  if (pos != 2 || o->width < 16 || o->height < 16 || o->width > 4096 || o->height > 4096 ||
      (o->width | o->height) & 1 || o->frames < 1 || o->frames > 100)
    return -1;
  return 0;
}

/* Bilinear sample of channel c at (x, y) in img, clamped to the edges. */
static float sample(const gg_image *img, float x, float y, int c) {
  if (x < 0) x = 0;
  if (y < 0) y = 0;
  if (x > (float)(img->width - 1)) x = (float)(img->width - 1);
  if (y > (float)(img->height - 1)) y = (float)(img->height - 1);
  int x0 = (int)x, y0 = (int)y;
  int x1 = x0 + 1 < img->width ? x0 + 1 : x0, y1 = y0 + 1 < img->height ? y0 + 1 : y0;
  float fx = x - (float)x0, fy = y - (float)y0;
  const uint8_t *p = img->rgb;
  size_t w = (size_t)img->width;
#define PX(xx, yy) ((float)p[((size_t)(yy)*w + (size_t)(xx)) * 3 + (size_t)c])
  float top = PX(x0, y0) + (PX(x1, y0) - PX(x0, y0)) * fx;
  float bot = PX(x0, y1) + (PX(x1, y1) - PX(x0, y1)) * fx;
#undef PX
  return top + (bot - top) * fy;
}

static uint8_t clamp8(float v) {
  return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v + 0.5f);
}

/* Renders the crop into a W x H RGB frame, centred, aspect kept. */
static uint8_t *render(const gg_image *img, const opts *o) {
  int cx0 = o->crop[0], cy0 = o->crop[1], cx1 = o->crop[2], cy1 = o->crop[3];
  if (cx1 <= 0) cx0 = 0, cy0 = 0, cx1 = img->width, cy1 = img->height;
  float cw = (float)(cx1 - cx0), ch = (float)(cy1 - cy0);
  float s =
      (float)o->width / cw < (float)o->height / ch ? (float)o->width / cw : (float)o->height / ch;
  float ox = ((float)o->width - cw * s) / 2, oy = ((float)o->height - ch * s) / 2;
  uint8_t *rgb = malloc((size_t)o->width * (size_t)o->height * 3);
  if (!rgb) return NULL;
  for (int y = 0; y < o->height; y++)
    for (int x = 0; x < o->width; x++) {
      uint8_t *d = rgb + ((size_t)y * (size_t)o->width + (size_t)x) * 3;
      int xs = o->mirror ? o->width - 1 - x : x;
      float u = ((float)xs + 0.5f - ox) / s - 0.5f, v = ((float)y + 0.5f - oy) / s - 0.5f;
      if (u < -0.5f || v < -0.5f || u > cw - 0.5f || v > ch - 0.5f) {
        d[0] = d[1] = d[2] = 128;
        continue;
      }
      for (int c = 0; c < 3; c++)
        d[c] = clamp8(sample(img, (float)cx0 + u, (float)cy0 + v, c));
    }
  return rgb;
}

/* Writes frames copies of rgb as 4:2:0 YUV (BT.601 full range, JFIF). */
static int write_y4m(const char *path, const uint8_t *rgb, const opts *o) {
  int w = o->width, h = o->height;
  size_t ny = (size_t)w * (size_t)h, nc = ny / 4;
  uint8_t *yuv = malloc(ny + 2 * nc);
  if (!yuv) return -1;
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      const uint8_t *p = rgb + ((size_t)y * (size_t)w + (size_t)x) * 3;
      yuv[(size_t)y * (size_t)w + (size_t)x] =
          clamp8(0.299f * p[0] + 0.587f * p[1] + 0.114f * p[2]);
    }
  for (int y = 0; y < h / 2; y++)
    for (int x = 0; x < w / 2; x++) {
      float r = 0, g = 0, b = 0;
      for (int k = 0; k < 4; k++) {
        const uint8_t *p =
            rgb + ((size_t)(2 * y + k / 2) * (size_t)w + (size_t)(2 * x + k % 2)) * 3;
        r += p[0] / 4.0f, g += p[1] / 4.0f, b += p[2] / 4.0f;
      }
      size_t i = (size_t)y * (size_t)(w / 2) + (size_t)x;
      yuv[ny + i] = clamp8(128 - 0.168736f * r - 0.331264f * g + 0.5f * b);
      yuv[ny + nc + i] = clamp8(128 + 0.5f * r - 0.418688f * g - 0.081312f * b);
    }
  FILE *f = fopen(path, "wb");
  int ok = f && fprintf(f, "YUV4MPEG2 W%d H%d F10:1 Ip A1:1 C420jpeg\n", w, h) > 0;
  for (int i = 0; ok && i < o->frames; i++)
    ok = fputs("FRAME\n", f) >= 0 && fwrite(yuv, 1, ny + 2 * nc, f) == ny + 2 * nc;
  if (f && fclose(f) != 0) ok = 0;
  free(yuv);
  return ok ? 0 : -1;
}

int main(int argc, char **argv) {
  opts o;
  if (parse(argc, argv, &o)) {
    fprintf(stderr, "usage: make-y4m IN.jpg OUT.y4m [--crop x0,y0,x1,y1] [--size WxH (even)] "
                    "[--frames N (1..100)] [--mirror]\n");
    return 1;
  }
  gg_image img = {0};
  char err[256] = "";
  if (gg_image_load(o.in, &img, err, sizeof err)) {
    fprintf(stderr, "make-y4m: cannot decode %s: %s\n", o.in, err);
    return 1;
  }
  if (o.crop[2] > 0 &&
      (o.crop[0] < 0 || o.crop[1] < 0 || o.crop[2] > img.width || o.crop[3] > img.height ||
       o.crop[0] >= o.crop[2] || o.crop[1] >= o.crop[3])) {
    fprintf(stderr, "make-y4m: crop %d,%d,%d,%d is not inside the %dx%d image\n", o.crop[0],
            o.crop[1], o.crop[2], o.crop[3], img.width, img.height);
    gg_image_free(&img);
    return 1;
  }
  uint8_t *rgb = render(&img, &o);
  gg_image_free(&img);
  if (!rgb || write_y4m(o.out, rgb, &o)) {
    fprintf(stderr, "make-y4m: cannot write %s\n", o.out);
    free(rgb);
    return 1;
  }
  free(rgb);
  return 0;
}
