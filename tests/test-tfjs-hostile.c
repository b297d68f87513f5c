/* Hostile TF.js weight manifests: each case is a small generated model
 * whose weightsManifest lies about its shards (one shard listed 10,000
 * times, the same file under two names, sizes that do not add up, a missing
 * shard, paths and symlinks that leave the model's folder, a FIFO, a total
 * over the limit). Every one must be refused with an error naming the
 * problem before any weight is read: the bytes this process reads
 * (/proc/self/io rchar) stay near the size of model.json. */
#include "gpuguard/engine.h"
#include "gpuguard/error.h"
#include "test.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

static char g_dir[256];

/* Bytes read by this process so far (read(2) and friends); -1 if unknown. */
static long long rchar(void) {
  FILE *f = fopen("/proc/self/io", "r");
  if (!f) return -1;
  char key[32];
  long long v = -1, x;
  while (fscanf(f, "%31[^:]: %lld\n", key, &x) == 2)
    if (!strcmp(key, "rchar")) v = x;
  fclose(f);
  return v;
}

/* A fresh model folder for one case: g_dir/name. */
static const char *case_dir(const char *name, char *buf, size_t len) {
  snprintf(buf, len, "%s/%s", g_dir, name);
  mkdir(buf, 0755);
  return buf;
}

/* Writes n bytes (float32 1.0s) to dir/name. */
static void write_shard(const char *dir, const char *name, size_t n) {
  char p[1024];
  snprintf(p, sizeof p, "%s/%s", dir, name);
  FILE *f = fopen(p, "wb");
  if (!f) return;
  static const float one = 1.0f;
  for (size_t i = 0; i + 4 <= n; i += 4)
    fwrite(&one, 4, 1, f);
  for (size_t i = n & ~(size_t)3; i < n; i++)
    fputc(0, f);
  fclose(f);
}

/* Writes dir/model.json: y = x + w, w a float32 Const of `elems` elements
 * whose bytes come from the shards in `paths` (a JSON array body). */
static void write_model(const char *dir, long long elems, const char *paths) {
  char p[1024];
  snprintf(p, sizeof p, "%s/model.json", dir);
  FILE *f = fopen(p, "w");
  if (!f) return;
  fprintf(f,
          "{\"format\":\"graph-model\",\"modelTopology\":{\"node\":["
          "{\"name\":\"x\",\"op\":\"Placeholder\",\"attr\":{\"shape\":{\"shape\":{\"dim\":["
          "{\"size\":\"%lld\"}]}},\"dtype\":{\"type\":\"DT_FLOAT\"}}},"
          "{\"name\":\"w\",\"op\":\"Const\"},"
          "{\"name\":\"y\",\"op\":\"AddV2\",\"input\":[\"x\",\"w\"]}]},"
          "\"weightsManifest\":[{\"paths\":[%s],\"weights\":["
          "{\"name\":\"w\",\"shape\":[%lld],\"dtype\":\"float32\"}]}]}",
          elems, paths, elems);
  fclose(f);
}

typedef struct load_result {
  int rc;
  long long read_bytes; /* rchar delta over the load; -1 when /proc/self/io is missing */
  char err[1024];
} load_result;

static load_result load(const char *dir) {
  load_result r;
  char p[1024];
  snprintf(p, sizeof p, "%s/model.json", dir);
  gg_model *m = NULL;
  long long before = rchar();
  r.err[0] = 0;
  r.rc = gg_model_load(p, &m, r.err, sizeof r.err);
  long long after = rchar();
  r.read_bytes = before >= 0 && after >= 0 ? after - before : -1;
  gg_model_free(m);
  fprintf(stderr, "  %-12s -> %s, %lld bytes read: %s\n", strrchr(dir, '/') + 1, gg_err_name(r.rc),
          r.read_bytes, r.err);
  return r;
}

/* Bytes a refused load may read: model.json (under 100 KB here) and small
 * change, but not one shard (1 MiB) nor the 10,000 listings of one (160 MB). */
#define READ_BOUND (256 * 1024)

/* Writes dir/model.json (see write_model), loads it and checks that it is
 * refused with `code` and an error containing `needle`, having read no more
 * than READ_BOUND bytes. */
#define ASSERT_REFUSED(dir, elems, paths, code, needle)                                            \
  do {                                                                                             \
    write_model(dir, elems, paths);                                                                \
    load_result r_ = load(dir);                                                                    \
    ASSERT_EQ(r_.rc, code);                                                                        \
    ASSERT_CONTAINS(r_.err, needle);                                                               \
    if (r_.read_bytes >= 0) ASSERT_LE(r_.read_bytes, READ_BOUND);                                  \
  } while (0)

/* A well-formed model split over two shards loads and says how much it holds. */
static void test_valid_two_shards(void) {
  char d[512];
  case_dir("valid", d, sizeof d);
  write_shard(d, "a.bin", 1 << 20);
  write_shard(d, "b.bin", 1 << 20);
  write_model(d, (2 << 20) / 4, "\"a.bin\",\"b.bin\"");
  char p[1024];
  snprintf(p, sizeof p, "%s/model.json", d);
  gg_model *m = NULL;
  char err[512] = "";
  int rc = gg_model_load(p, &m, err, sizeof err);
  if (rc) GG_T_FAIL("valid model refused: %s %s", gg_err_name(rc), err);
  ASSERT_GE(gg_model_weights_bytes(m), 2u << 20);
  gg_model_free(m);
}

/* The reported attack: a 79 KB model.json whose paths list one shard 10,000
 * times made infer read 2.1 GB before refusing it. */
static void test_repeated_shard(void) {
  char d[512];
  case_dir("repeated", d, sizeof d);
  write_shard(d, "s.bin", 16 << 10);
  static char paths[10000 * 8 + 1];
  size_t o = 0;
  for (int i = 0; i < 10000; i++)
    o += (size_t)snprintf(paths + o, sizeof paths - o, "%s\"s.bin\"", i ? "," : "");
  ASSERT_REFUSED(d, (16 << 10) / 4, paths, GG_EPARSE, "'s.bin' is listed more than once");
}

/* The same file under another name ("./s.bin", a symlink) is a duplicate too. */
static void test_aliased_shard(void) {
  char d[512], p[1024], q[1024];
  case_dir("aliased", d, sizeof d);
  write_shard(d, "s.bin", 1 << 20);
  ASSERT_REFUSED(d, (2 << 20) / 4, "\"s.bin\",\"./s.bin\"", GG_EPARSE, "same file");
  snprintf(p, sizeof p, "%s/s.bin", d);
  snprintf(q, sizeof q, "%s/t.bin", d);
  ASSERT_EQ(symlink(p, q), 0);
  ASSERT_REFUSED(d, (2 << 20) / 4, "\"s.bin\",\"t.bin\"", GG_EPARSE, "same file");
}

/* Shards larger or smaller than the weights' shapes and dtypes declare. */
static void test_size_mismatch(void) {
  char d[512];
  case_dir("mismatch", d, sizeof d);
  write_shard(d, "big.bin", 2 << 20);
  ASSERT_REFUSED(d, (1 << 20) / 4, "\"big.bin\"", GG_EPARSE,
                 "hold 2097152 bytes but the manifest describes 1048576 (mismatched");
  ASSERT_REFUSED(d, (4 << 20) / 4, "\"big.bin\"", GG_EPARSE, "weight 'w' needs 4194304 bytes");
}

/* A missing second shard is reported before the first one is read. */
static void test_missing_shard(void) {
  char d[512];
  case_dir("missing", d, sizeof d);
  write_shard(d, "a.bin", 1 << 20);
  ASSERT_REFUSED(d, (2 << 20) / 4, "\"a.bin\",\"gone.bin\"", GG_EIO, "gone.bin");
}

/* ../, absolute paths and a symlink that points out of the folder. */
static void test_outside_folder(void) {
  char d[512], p[1024], q[1024];
  case_dir("outside", d, sizeof d);
  write_shard(g_dir, "secret.bin", 1 << 20);
  ASSERT_REFUSED(d, (1 << 20) / 4, "\"../secret.bin\"", GG_EPARSE, "model's folder");
  snprintf(p, sizeof p, "\"%s/secret.bin\"", g_dir);
  ASSERT_REFUSED(d, (1 << 20) / 4, p, GG_EPARSE, "model's folder");
  snprintf(p, sizeof p, "%s/secret.bin", g_dir);
  snprintf(q, sizeof q, "%s/link.bin", d);
  ASSERT_EQ(symlink(p, q), 0);
  ASSERT_REFUSED(d, (1 << 20) / 4, "\"link.bin\"", GG_EPARSE, "'link.bin' resolves to");
}

static void on_hang(int sig) {
  (void)sig;
  static const char msg[] = "  FAIL: loading a model whose shard is a FIFO hung\n";
  ssize_t w = write(STDERR_FILENO, msg, sizeof msg - 1);
  (void)w;
  _exit(1);
}

static void load_fifo_model(const char *d) {
  ASSERT_REFUSED(d, (1 << 20) / 4, "\"pipe.bin\"", GG_EIO, "not a regular file");
}

/* A FIFO (or any non-regular file) as a shard: refused, never opened for a
 * read that would block forever. */
static void test_fifo_shard(void) {
  char d[512], p[1024];
  case_dir("fifo", d, sizeof d);
  snprintf(p, sizeof p, "%s/pipe.bin", d);
  ASSERT_EQ(mkfifo(p, 0644), 0);
  signal(SIGALRM, on_hang);
  alarm(20);
  load_fifo_model(d);
  alarm(0);
}

/* Weights declared larger than the limit are refused from the manifest
 * alone (the shard is tiny). */
static void test_total_over_limit(void) {
  char d[512];
  case_dir("huge", d, sizeof d);
  write_shard(d, "s.bin", 1 << 20);
  ASSERT_REFUSED(d, 600000000, "\"s.bin\"", GG_ETOO_LARGE, "over the limit");
}

int main(int argc, char **argv) {
  snprintf(g_dir, sizeof g_dir, "/tmp/gg-tfjs-hostile-XXXXXX");
  if (!mkdtemp(g_dir)) {
    perror("mkdtemp");
    return 1;
  }
  if (rchar() < 0) fprintf(stderr, "  note: no /proc/self/io, bytes read are not checked\n");
  static const gg_test_case cases[] = {
      {"valid_two_shards", test_valid_two_shards},
      {"repeated_shard", test_repeated_shard},
      {"aliased_shard", test_aliased_shard},
      {"size_mismatch", test_size_mismatch},
      {"missing_shard", test_missing_shard},
      {"outside_folder", test_outside_folder},
      {"fifo_shard", test_fifo_shard},
      {"total_over_limit", test_total_over_limit},
      {0},
  };
  int rc = gg_test_main(argc, argv, cases);
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", g_dir);
  return rc;
}
