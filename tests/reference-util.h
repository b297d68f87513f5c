/* What the tests against a Node reference (test-reference,
 * test-layers-reference) share: running the reference script with its
 * output in a log, and reading the files it writes. Header-only. */
#ifndef GG_TEST_REFERENCE_UTIL_H
#define GG_TEST_REFERENCE_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>

static inline int file_exists(const char *p) {
  struct stat st;
  return stat(p, &st) == 0;
}

/* Runs a shell command with stdout+stderr to `log`; returns the exit status
 * (or -1 if it did not exit normally). */
static inline int run_cmd(const char *cmd, const char *log) {
  char full[9000];
  if (snprintf(full, sizeof full, "%s >'%s' 2>&1", cmd, log) >= (int)sizeof full) return -1;
  int st = system(full);
  if (st == -1 || !WIFEXITED(st)) return -1;
  return WEXITSTATUS(st);
}

/* The whole file, NUL-terminated (malloc'd), or NULL; its size in *len
 * when len is not NULL. */
static inline char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  if (fseek(f, 0, SEEK_END)) {
    fclose(f);
    return NULL;
  }
  long n = ftell(f);
  rewind(f);
  char *b = n >= 0 ? malloc((size_t)n + 1) : NULL;
  if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
    free(b);
    b = NULL;
  }
  fclose(f);
  if (b) {
    b[n] = 0;
    if (len) *len = (size_t)n;
  }
  return b;
}

#endif
