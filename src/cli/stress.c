/* gpuguard stress: hammers a running server with a bounded number of
 * requests and reports whether the server's memory stayed flat. */
#include "cli/cli.h"
#include "core/opts.h"
#include "gpuguard/core.h"

#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct stress_opts {
  const char *url;
  const char *path;
  const char *method;
  const char *body_file;
  const char *content_type;
  const char *api_key;
  int requests;
  int concurrency;
  int time_limit_s;
  double max_growth_mb;
  int warmup;
  int json;
} stress_opts;

#define ST(f) offsetof(stress_opts, f)
static const gg_opt k_stress_opts[] = {
    {"url", "GPUGUARD_STRESS_URL", GG_OPT_STR, ST(url), "http://127.0.0.1:8000", "server base URL",
     "URL"},
    {"path", NULL, GG_OPT_STR, ST(path), "/api/device", "endpoint to hammer", "PATH"},
    {"method", NULL, GG_OPT_STR, ST(method), "GET", "HTTP method", "M"},
    {"body-file", NULL, GG_OPT_STR, ST(body_file), "", "send this file as the request body",
     "FILE"},
    {"content-type", NULL, GG_OPT_STR, ST(content_type), "application/octet-stream",
     "Content-Type of the body", "T"},
    {"api-key", "GPUGUARD_API_KEY", GG_OPT_STR, ST(api_key), "",
     "sent as 'Authorization: Bearer KEY' (servers started with --api-key)", "KEY"},
    {"requests", NULL, GG_OPT_INT, ST(requests), "200", "measured requests in all", "N"},
    {"warmup", NULL, GG_OPT_INT, ST(warmup), "20",
     "requests sent before the baseline memory sample", "N"},
    {"concurrency", NULL, GG_OPT_INT, ST(concurrency), "4", "requests in flight at once", "N"},
    {"time-limit", NULL, GG_OPT_INT, ST(time_limit_s), "120",
     "stop sending after this many seconds", "S"},
    {"max-growth-mb", NULL, GG_OPT_DOUBLE, ST(max_growth_mb), "16",
     "fail when the server's RSS grows by more than this", "MB"},
    {"json", NULL, GG_OPT_BOOL, ST(json), "false", "print the report as JSON", NULL},
    {0},
};

typedef struct shared {
  const stress_opts *o;
  char *body;
  size_t body_len;
  _Atomic int next;
  int total;
  uint64_t deadline_ns;
  double *lat_ms; /* one slot per request */
  _Atomic int ok, failed, transport_errors;
  _Atomic int status_counts[6]; /* 1xx..5xx by index status/100 */
} shared;

static size_t sink(char *p, size_t s, size_t n, void *u) {
  return s * n;
}

typedef struct grow {
  char *p;
  size_t n;
} grow;

static size_t collect(char *p, size_t s, size_t n, void *u) {
  grow *g = u;
  size_t add = s * n;
  if (g->n + add > (1u << 20)) return 0;
  char *q = realloc(g->p, g->n + add + 1);
  if (!q) return 0;
  memcpy(q + g->n, p, add);
  g->p = q;
  g->n += add;
  g->p[g->n] = 0;
  return add;
}

/* Reads the server's memory_info.rss_mb from /api/device; -1 on failure. */
static double server_rss_mb(const char *base) {
  CURL *c = curl_easy_init();
  if (!c) return -1;
  char url[1024];
  snprintf(url, sizeof url, "%s/api/device", base);
  grow g = {0};
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &g);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
  double rss = -1;
  long code = 0;
  if (curl_easy_perform(c) == CURLE_OK &&
      curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code) == CURLE_OK && code == 200 && g.p) {
    json_t *j = json_loads(g.p, 0, NULL);
    json_t *v = json_object_get(json_object_get(j, "memory_info"), "rss_mb");
    if (json_is_number(v)) rss = json_number_value(v);
    json_decref(j);
  }
  free(g.p);
  curl_easy_cleanup(c);
  return rss;
}

static void *worker(void *arg) {
  shared *sh = arg;
  CURL *c = curl_easy_init();
  if (!c) return NULL;
  char url[1024];
  snprintf(url, sizeof url, "%s%s", sh->o->url, sh->o->path);
  struct curl_slist *hdr = NULL;
  if (sh->body) {
    char ct[256];
    snprintf(ct, sizeof ct, "Content-Type: %s", sh->o->content_type);
    hdr = curl_slist_append(hdr, ct);
  }
  if (sh->o->api_key && *sh->o->api_key) {
    char auth[320];
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", sh->o->api_key);
    hdr = curl_slist_append(hdr, auth);
  }
  for (;;) {
    int i = atomic_fetch_add(&sh->next, 1);
    if (i >= sh->total || gg_now_ns() > sh->deadline_ns) break;
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, sh->o->method);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    if (sh->body) {
      curl_easy_setopt(c, CURLOPT_POSTFIELDS, sh->body);
      curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)sh->body_len);
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
    uint64_t t0 = gg_now_ns();
    CURLcode cc = curl_easy_perform(c);
    sh->lat_ms[i] = (double)(gg_now_ns() - t0) / 1e6;
    long code = 0;
    if (cc != CURLE_OK) {
      atomic_fetch_add(&sh->transport_errors, 1);
      atomic_fetch_add(&sh->failed, 1);
      sh->lat_ms[i] = -1;
      continue;
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    if (code >= 100 && code < 600) atomic_fetch_add(&sh->status_counts[code / 100], 1);
    if (code >= 200 && code < 300)
      atomic_fetch_add(&sh->ok, 1);
    else
      atomic_fetch_add(&sh->failed, 1);
  }
  curl_slist_free_all(hdr);
  curl_easy_cleanup(c);
  return NULL;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Sends n requests with the given concurrency; fills sh's counters. */
static void run_phase(shared *sh, int n, int conc, int time_limit_s) {
  sh->total = n;
  atomic_store(&sh->next, 0);
  sh->deadline_ns = gg_now_ns() + (uint64_t)time_limit_s * 1000000000ull;
  pthread_t *t = calloc((size_t)conc, sizeof *t);
  int started = 0;
  for (int i = 0; t && i < conc; i++)
    if (pthread_create(&t[i], NULL, worker, sh) == 0) started++;
  for (int i = 0; i < started; i++)
    pthread_join(t[i], NULL);
  free(t);
}

int gg_cli_stress(int argc, char **argv) {
  stress_opts o;
  memset(&o, 0, sizeof o);
  static const char usage[] =
      "Usage: gpuguard stress [options]\n\nSends a bounded number of requests to a running "
      "gpuguard server (warm-up first), samples the\nserver's resident memory from "
      "/api/device before and after, and fails (exit 1) when it grew\nby more than "
      "--max-growth-mb or any request failed.\n\n";
  int rc = gg_opts_cli("stress", usage, k_stress_opts, &o, argc, argv);
  if (rc >= 0) return rc;
  if (o.requests <= 0 || o.requests > 10000000 || o.concurrency <= 0 || o.concurrency > 256 ||
      o.warmup < 0 || o.time_limit_s <= 0) {
    fprintf(stderr, "gpuguard stress: --requests 1..1e7, --concurrency 1..256, --warmup >= 0, "
                    "--time-limit > 0\n");
    return 2;
  }
  shared sh;
  memset(&sh, 0, sizeof sh);
  sh.o = &o;
  if (o.body_file && *o.body_file) {
    FILE *f = fopen(o.body_file, "rb");
    if (!f) {
      fprintf(stderr, "gpuguard stress: cannot open --body-file %s\n", o.body_file);
      return 2;
    }
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    sh.body = len >= 0 ? malloc((size_t)len + 1) : NULL;
    if (!sh.body || fread(sh.body, 1, (size_t)len, f) != (size_t)len) {
      fclose(f);
      free(sh.body);
      fprintf(stderr, "gpuguard stress: cannot read --body-file %s\n", o.body_file);
      return 2;
    }
    fclose(f);
    sh.body_len = (size_t)len;
  }
  curl_global_init(CURL_GLOBAL_DEFAULT);
  int n_alloc = o.requests > o.warmup ? o.requests : o.warmup;
  sh.lat_ms = calloc((size_t)n_alloc + 1, sizeof *sh.lat_ms);
  double rss_start = server_rss_mb(o.url);
  if (rss_start < 0 || !sh.lat_ms) {
    fprintf(stderr, "gpuguard stress: cannot read %s/api/device; is the server running?\n", o.url);
    free(sh.body);
    free(sh.lat_ms);
    curl_global_cleanup();
    return 2;
  }
  if (o.warmup) run_phase(&sh, o.warmup, o.concurrency, o.time_limit_s);
  double rss_base = server_rss_mb(o.url);
  int warm_failed = atomic_load(&sh.failed);
  atomic_store(&sh.ok, 0);
  atomic_store(&sh.failed, 0);
  atomic_store(&sh.transport_errors, 0);
  for (int i = 0; i < 6; i++)
    atomic_store(&sh.status_counts[i], 0);
  uint64_t t0 = gg_now_ns();
  run_phase(&sh, o.requests, o.concurrency, o.time_limit_s);
  double wall_s = (double)(gg_now_ns() - t0) / 1e9;
  double rss_end = server_rss_mb(o.url);

  int sent = atomic_load(&sh.ok) + atomic_load(&sh.failed);
  double *lat = malloc(sizeof(double) * (size_t)(sent ? sent : 1));
  int nl = 0;
  for (int i = 0; i < o.requests && lat; i++)
    if (sh.lat_ms[i] > 0) lat[nl++] = sh.lat_ms[i];
  if (lat) qsort(lat, (size_t)nl, sizeof *lat, cmp_double);
#define PCT(p) (nl ? lat[(int)((p) * (nl - 1) + 0.5)] : 0.0)
  double growth = rss_end - rss_base;
  int pass = rss_end >= 0 && growth <= o.max_growth_mb && atomic_load(&sh.failed) == 0 &&
             sent == o.requests;
  if (o.json) {
    json_t *j = json_pack(
        "{s:s,s:i,s:i,s:i,s:i,s:i,s:f,s:f,s:{s:f,s:f,s:f,s:f},s:{s:f,s:f,s:f,s:f,s:f},s:b}", "url",
        o.url, "requests", o.requests, "sent", sent, "ok", atomic_load(&sh.ok), "failed",
        atomic_load(&sh.failed), "warmup_failed", warm_failed, "wall_s", wall_s, "requests_per_s",
        wall_s > 0 ? sent / wall_s : 0.0, "latency_ms", "p50", PCT(0.50), "p95", PCT(0.95), "p99",
        PCT(0.99), "max", nl ? lat[nl - 1] : 0.0, "server_rss_mb", "start", rss_start, "baseline",
        rss_base, "end", rss_end, "growth", growth, "max_growth", o.max_growth_mb, "pass", pass);
    char *s = json_dumps(j, JSON_INDENT(2));
    puts(s ? s : "{}");
    free(s);
    json_decref(j);
  } else {
    printf("stress %s%s: %d/%d requests sent in %.2f s (%.1f req/s), %d ok, %d failed "
           "(%d transport errors; 4xx %d, 5xx %d)\n",
           o.url, o.path, sent, o.requests, wall_s, wall_s > 0 ? sent / wall_s : 0.0,
           atomic_load(&sh.ok), atomic_load(&sh.failed), atomic_load(&sh.transport_errors),
           atomic_load(&sh.status_counts[4]), atomic_load(&sh.status_counts[5]));
    printf("latency ms: p50 %.2f  p95 %.2f  p99 %.2f  max %.2f\n", PCT(0.50), PCT(0.95), PCT(0.99),
           nl ? lat[nl - 1] : 0.0);
    printf("server RSS MiB: start %.1f  after warm-up %.1f  end %.1f  growth %+.2f (limit %.1f)\n",
           rss_start, rss_base, rss_end, growth, o.max_growth_mb);
    printf("%s\n", pass ? "PASS: memory stayed flat and every request succeeded"
                        : "FAIL: memory grew past the limit or requests failed");
  }
#undef PCT
  free(lat);
  free(sh.lat_ms);
  free(sh.body);
  curl_global_cleanup();
  return pass ? 0 : 1;
}
