/* Tests that run the real `gpuguard serve` (GG_BIN) and talk HTTP to it
 * with libcurl: one way to start it on an ephemeral port in a fresh temp
 * folder, stop it, and send a request. Header-only (static functions), for
 * tests/test-*.c. */
#ifndef GG_TEST_SERVER_UTIL_H
#define GG_TEST_SERVER_UTIL_H

#include "gpuguard/image.h"
#include "test.h"

#include <curl/curl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

/* A running server: its pid (-1 when none), port and temp folder (the port
 * file lives there; it is also the --data-dir when asked). Set log_to_file
 * before starting to send its stderr to log (DIR/server.log) instead of the
 * test's; wait_status is the wait status of a server that exited while
 * starting. */
typedef struct gg_ts_server {
  pid_t pid;
  int port;
  char dir[64];
  int log_to_file;
  char log[96];
  int wait_status;
} gg_ts_server;

#define GG_TS_NONE                                                                                 \
  { -1, 0, "", 0, "", 0 }

/* A wait status as one number: the exit code, or 128 + the signal. */
static inline int gg_ts_status(int wait_status) {
  return WIFEXITED(wait_status) ? WEXITSTATUS(wait_status) : 128 + WTERMSIG(wait_status);
}

/* A growing response body, NUL-terminated. */
typedef struct gg_ts_buf {
  char *p;
  size_t n;
} gg_ts_buf;

static inline size_t gg_ts_on_data(char *ptr, size_t size, size_t nmemb, void *ud) {
  gg_ts_buf *b = ud;
  size_t add = size * nmemb;
  char *q = realloc(b->p, b->n + add + 1);
  if (!q) return 0;
  memcpy(q + b->n, ptr, add);
  b->p = q;
  b->n += add;
  b->p[b->n] = 0;
  return add;
}

/* Starts GG_BIN serve --port 0 --port-file DIR/port --log-level warn in a
 * new folder DIR = /tmp/gg-<tag>-XXXXXX, then "--data-dir DIR" when
 * data_dir is set, then args (NULL-terminated, may be NULL). Waits up to
 * wait_s seconds for the port file (written once the models are warm); a
 * server that exits ends the wait at once. Returns 0 or -1. */
static inline int gg_ts_start(gg_ts_server *s, const char *tag, int data_dir,
                              const char *const *args, int wait_s) {
  s->pid = -1;
  s->port = 0;
  s->wait_status = 0;
  snprintf(s->dir, sizeof s->dir, "/tmp/gg-%.20s-XXXXXX", tag);
  if (!mkdtemp(s->dir)) return -1;
  char portfile[128];
  snprintf(portfile, sizeof portfile, "%s/port", s->dir);
  snprintf(s->log, sizeof s->log, "%s/server.log", s->dir);
  const char *argv[48] = {GG_BIN,        "serve",  "--port",      "0",
                          "--port-file", portfile, "--log-level", "warn"};
  int n = 8;
  if (data_dir) {
    argv[n++] = "--data-dir";
    argv[n++] = s->dir;
  }
  for (int i = 0; args && args[i] && n < 47; i++)
    argv[n++] = args[i];
  argv[n] = NULL;
  s->pid = fork();
  if (s->pid < 0) return -1;
  if (s->pid == 0) {
    if (s->log_to_file) {
      FILE *lf = fopen(s->log, "w");
      if (lf) dup2(fileno(lf), 2);
    }
    execv(GG_BIN, (char *const *)argv);
    _exit(127);
  }
  for (int i = 0; i < wait_s * 20; i++) {
    FILE *f = fopen(portfile, "r");
    if (f) {
      int ok = fscanf(f, "%d", &s->port) == 1;
      fclose(f);
      if (ok && s->port > 0) return 0;
    }
    if (waitpid(s->pid, &s->wait_status, WNOHANG) == s->pid) {
      s->pid = -1;
      return -1;
    }
    usleep(50 * 1000);
  }
  return -1;
}

/* Stops the server with sig (SIGTERM: a clean shutdown), then SIGKILL
 * after 10 s. Returns its gg_ts_status, -1 when none was running.
 * remove_dir: delete its folder too. */
static inline int gg_ts_signal(gg_ts_server *s, int sig, int remove_dir) {
  int status = -1;
  if (s->pid > 0) {
    kill(s->pid, sig);
    int st = 0, done = 0;
    for (int i = 0; i < 200 && !done; i++) {
      if (waitpid(s->pid, &st, WNOHANG) == s->pid)
        done = 1;
      else
        usleep(50 * 1000);
    }
    if (!done) {
      kill(s->pid, SIGKILL);
      waitpid(s->pid, &st, 0);
    }
    status = gg_ts_status(st);
    s->pid = -1;
  }
  if (remove_dir && s->dir[0]) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", s->dir);
    if (system(cmd) != 0) fprintf(stderr, "  could not remove %s\n", s->dir);
    s->dir[0] = 0;
  }
  return status;
}

static inline int gg_ts_stop(gg_ts_server *s, int remove_dir) {
  return gg_ts_signal(s, SIGTERM, remove_dir);
}

/* One request to the server: headers (NULL-terminated "Name: value"
 * strings, may be NULL), a body of len bytes (NULL: none). The response
 * body goes to *out (free out->p) when out is not NULL. Returns the HTTP
 * status, or -1 when no response came. */
static inline long gg_ts_http(const gg_ts_server *s, const char *method, const char *path,
                              const char *const *headers, const void *body, size_t len,
                              long timeout_s, gg_ts_buf *out) {
  CURL *c = curl_easy_init();
  if (!c) return -1;
  struct curl_slist *h = NULL;
  for (int i = 0; headers && headers[i]; i++)
    h = curl_slist_append(h, headers[i]);
  size_t ulen = strlen(path) + 32;
  char *url = malloc(ulen);
  if (!url) {
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return -1;
  }
  snprintf(url, ulen, "http://127.0.0.1:%d%s", s->port, path);
  gg_ts_buf b = {0};
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, gg_ts_on_data);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, timeout_s);
  curl_easy_setopt(c, CURLOPT_PATH_AS_IS, 1L);
  if (body) {
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
  }
  long status = -1;
  if (curl_easy_perform(c) == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_cleanup(c);
  curl_slist_free_all(h);
  free(url);
  if (out)
    *out = b;
  else
    free(b.p);
  return status;
}

/* The whole file in a malloc'd buffer (NUL-terminated), or NULL; its size
 * in *len when len is not NULL. */
static inline char *gg_ts_read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *p = n >= 0 ? malloc((size_t)n + 1) : NULL;
  if (p && fread(p, 1, (size_t)n, f) != (size_t)n) {
    free(p);
    p = NULL;
  }
  fclose(f);
  if (p) {
    p[n] = 0;
    if (len) *len = (size_t)n;
  }
  return p;
}

/* ---- a minimal PNG writer (stored deflate blocks): camera-like views ---- */

static inline uint32_t gg_ts_crc32(const uint8_t *p, size_t n, uint32_t c) {
  c = ~c;
  for (size_t i = 0; i < n; i++) {
    c ^= p[i];
    for (int k = 0; k < 8; k++)
      c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1)));
  }
  return ~c;
}

static inline void gg_ts_put32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

static inline size_t gg_ts_png_chunk(uint8_t *out, const char *type, const uint8_t *data,
                                     size_t n) {
  gg_ts_put32(out, (uint32_t)n);
  memcpy(out + 4, type, 4);
  if (n) memcpy(out + 8, data, n);
  gg_ts_put32(out + 8 + n, gg_ts_crc32(out + 4, n + 4, 0));
  return n + 12;
}

/* Encodes w x h RGB as PNG (malloc'd, *len). */
static inline uint8_t *gg_ts_png_encode(const uint8_t *rgb, int w, int h, size_t *len) {
  size_t raw_n = (size_t)h * (size_t)(w * 3 + 1);
  uint8_t *raw = malloc(raw_n);
  for (int y = 0; y < h; y++) {
    raw[(size_t)y * (size_t)(w * 3 + 1)] = 0;
    memcpy(raw + (size_t)y * (size_t)(w * 3 + 1) + 1, rgb + (size_t)y * (size_t)w * 3,
           (size_t)w * 3);
  }
  size_t nblocks = raw_n / 65535 + 1;
  size_t z_n = 2 + raw_n + nblocks * 5 + 4;
  uint8_t *z = malloc(z_n);
  size_t o = 0;
  z[o++] = 0x78;
  z[o++] = 0x01;
  uint32_t a = 1, b = 0;
  for (size_t i = 0; i < raw_n; i++) {
    a = (a + raw[i]) % 65521;
    b = (b + a) % 65521;
  }
  for (size_t off = 0; off < raw_n || off == 0;) {
    size_t take = raw_n - off > 65535 ? 65535 : raw_n - off;
    z[o++] = off + take >= raw_n ? 1 : 0;
    z[o++] = (uint8_t)take;
    z[o++] = (uint8_t)(take >> 8);
    z[o++] = (uint8_t)~take;
    z[o++] = (uint8_t)(~take >> 8);
    memcpy(z + o, raw + off, take);
    o += take;
    off += take;
    if (take == 0) break;
  }
  gg_ts_put32(z + o, (b << 16) | a);
  o += 4;
  uint8_t *png = malloc(o + 64);
  static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  memcpy(png, sig, 8);
  size_t n = 8;
  uint8_t ihdr[13] = {0};
  gg_ts_put32(ihdr, (uint32_t)w);
  gg_ts_put32(ihdr + 4, (uint32_t)h);
  ihdr[8] = 8;
  ihdr[9] = 2;
  n += gg_ts_png_chunk(png + n, "IHDR", ihdr, 13);
  n += gg_ts_png_chunk(png + n, "IDAT", z, o);
  n += gg_ts_png_chunk(png + n, "IEND", NULL, 0);
  free(raw);
  free(z);
  *len = n;
  return png;
}

/* Sample photo i (face-api's demo sampleI.jpg, fetched by
 * scripts/fetch-models.sh) read whole; NULL when missing. */
static inline char *gg_ts_sample(int i, size_t *len) {
  char rel[64], path[512];
  snprintf(rel, sizeof rel, "models/face-api-1.7.15/demo/sample%d.jpg", i);
  gg_t_cache_path(path, sizeof path, rel);
  return gg_ts_read_file(path, len);
}

/* sample1 mirrored, then cropped to [x0, x0+w) x [y0, y0+h) of the mirror,
 * as a PNG (lossless): a different view of the same faces. */
static inline uint8_t *gg_ts_flipped_crop(int x0, int y0, int w, int h, size_t *len) {
  size_t jl = 0;
  char *jpg = gg_ts_sample(1, &jl);
  if (!jpg) return NULL;
  gg_image img = {0};
  char err[128];
  int rc = gg_image_decode(jpg, jl, 0, &img, err, sizeof err);
  free(jpg);
  if (rc) return NULL;
  uint8_t *out = malloc((size_t)w * (size_t)h * 3);
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      int sx = img.width - 1 - (x0 + x), sy = y0 + y;
      memcpy(out + ((size_t)y * (size_t)w + (size_t)x) * 3,
             img.rgb + ((size_t)sy * (size_t)img.width + (size_t)sx) * 3, 3);
    }
  gg_image_free(&img);
  uint8_t *png = gg_ts_png_encode(out, w, h, len);
  free(out);
  return png;
}

#endif
