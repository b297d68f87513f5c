/* Tests that run the real `gpuguard serve` (GG_BIN) and talk HTTP to it
 * with libcurl: one way to start it on an ephemeral port in a fresh temp
 * folder, stop it, and send a request. Header-only (static functions), for
 * tests/test-*.c. */
#ifndef GG_TEST_SERVER_UTIL_H
#define GG_TEST_SERVER_UTIL_H

#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

/* A running server: its pid (-1 when none), port and temp folder (the port
 * file lives there; it is also the --data-dir when asked). */
typedef struct gg_ts_server {
  pid_t pid;
  int port;
  char dir[64];
} gg_ts_server;

#define GG_TS_NONE                                                                                 \
  { -1, 0, "" }

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
  snprintf(s->dir, sizeof s->dir, "/tmp/gg-%.20s-XXXXXX", tag);
  if (!mkdtemp(s->dir)) return -1;
  char portfile[128];
  snprintf(portfile, sizeof portfile, "%s/port", s->dir);
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
    int st;
    if (waitpid(s->pid, &st, WNOHANG) == s->pid) {
      s->pid = -1;
      return -1;
    }
    usleep(50 * 1000);
  }
  return -1;
}

/* Stops the server: SIGTERM, then SIGKILL after 10 s. Returns its exit
 * status (128 + signal when killed by one), -1 when none was running.
 * remove_dir: delete its folder too. */
static inline int gg_ts_stop(gg_ts_server *s, int remove_dir) {
  int status = -1;
  if (s->pid > 0) {
    kill(s->pid, SIGTERM);
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
    status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
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
  char url[1024];
  snprintf(url, sizeof url, "http://127.0.0.1:%d%s", s->port, path);
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
  if (out)
    *out = b;
  else
    free(b.p);
  return status;
}

/* The whole file in a malloc'd buffer (NUL-terminated), or NULL. */
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
    *len = (size_t)n;
  }
  return p;
}

#endif
