/* gpuguard stress: hammers a running server with a bounded number of
 * requests and reports whether the server's memory stayed flat; with --mix,
 * a weighted mix of the face routes and device switches, with per-route
 * latency, lost requests and recovery times (see usage below). */
#include "cli/cli.h"
#include "core/opts.h"
#include "gpuguard/core.h"

#include <curl/curl.h>
#include <dirent.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

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
  const char *mix;
  const char *images;
  const char *switch_devices;
  int sample_every;
  int identities;
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
    {"mix", NULL, GG_OPT_STR, ST(mix), "",
     "send a weighted mix of face routes instead of --path: ROUTE=WEIGHT,... over recognize, "
     "detect, enroll, switch; 'default' is "
     "recognize=70,detect=15,enroll=10,switch=5",
     "SPEC"},
    {"images", NULL, GG_OPT_STR, ST(images), "",
     "--mix: image bodies, a folder (its .jpg/.jpeg/.png) or comma-separated files (default: "
     "the sample photos in the model cache, face-api-1.7.15/demo/sample*.jpg)",
     "DIR|FILES"},
    {"switch-devices", NULL, GG_OPT_STR, ST(switch_devices), "sim:mem=512M,cpu",
     "--mix: devices the switch route alternates with the server's primary (comma-separated "
     "specs; a part that does not start with cpu/sim/cuda/opencl continues the previous spec)",
     "SPECS"},
    {"sample-every", NULL, GG_OPT_INT, ST(sample_every), "25",
     "--mix: sample the server's RSS from /api/device every N requests", "N"},
    {"identities", NULL, GG_OPT_INT, ST(identities), "3",
     "--mix: identities (stress-a, stress-b, ...) created at start for the enroll route", "N"},
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

/* ---- --mix: the face routes, device switches, faults ---------------------- */

/* What counts as served and what as lost (also in the usage text):
 * served = any HTTP response below 500, a 503 with a Retry-After header
 * (a documented refusal: over capacity, retry later) or a 503
 * fallback_refused (strict mode, documented in docs/API.md). Lost = no HTTP
 * response at all (connection refused or reset, timeout, empty reply) or any
 * other 5xx: with a fallback device configured, "every device failed" means
 * the service dropped the request. */

enum { R_RECOGNIZE, R_DETECT, R_ENROLL, R_SWITCH, R_COUNT };
static const char *const k_route_names[R_COUNT] = {"recognize", "detect", "enroll", "switch"};
static const char k_default_mix[] = "recognize=70,detect=15,enroll=10,switch=5";

#define MIX_MAX_DEVS 8
#define MIX_MAX_IMAGES 64
#define MIX_MAX_IDENTS 26

typedef struct mix_rec {
  uint64_t t0, t1; /* ns, gg_now_ns */
  int status;      /* HTTP status, 0 = no response */
  unsigned char route, used, lost, degraded, unexpected;
} mix_rec;

typedef struct mix_image {
  char *data;
  size_t len;
  const char *type;
} mix_image;

typedef struct mix_sample {
  int at;   /* requests done when sampled */
  int kind; /* 0: every --sample-every requests; 1: right after a switch back to the primary */
  double rss_mb;
} mix_sample;

typedef struct mix {
  const stress_opts *o;
  int weight[R_COUNT], wsum;
  mix_image img[MIX_MAX_IMAGES];
  int n_img;
  long long ident[MIX_MAX_IDENTS];
  int n_ident;
  char dev[MIX_MAX_DEVS][128]; /* dev[0]: the server's primary at start */
  int n_dev;
  _Atomic int cur_dev;          /* the primary as this client last switched it */
  _Atomic int switching;        /* switch requests in flight */
  _Atomic uint64_t switch_done; /* gg_now_ns of the last switch answer */
  _Atomic int next, done;
  int total;
  uint64_t deadline_ns;
  mix_rec *rec;
  pthread_mutex_t lock;
  mix_sample *samples;
  int n_samples, cap_samples;
} mix;

static uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

/* Parses "recognize=70,detect=15,..." into weights; 0 or -1 with a message. */
static int mix_parse(mix *m, const char *spec) {
  if (!strcmp(spec, "default")) spec = k_default_mix;
  char buf[256];
  snprintf(buf, sizeof buf, "%s", spec);
  char *save = NULL;
  for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
    char *eq = strchr(t, '=');
    int r = 0;
    if (eq) *eq = 0;
    while (r < R_COUNT && strcmp(t, k_route_names[r]))
      r++;
    char *end = NULL;
    long w = eq ? strtol(eq + 1, &end, 10) : -1;
    if (r == R_COUNT || !eq || *end || w < 0 || w > 1000000) {
      fprintf(stderr,
              "gpuguard stress: --mix: expected ROUTE=WEIGHT,... with ROUTE one of recognize, "
              "detect, enroll, switch and WEIGHT 0..1000000, got '%s'\n",
              spec);
      return -1;
    }
    m->weight[r] = (int)w;
  }
  for (int r = 0; r < R_COUNT; r++)
    m->wsum += m->weight[r];
  if (m->wsum <= 0) {
    fprintf(stderr, "gpuguard stress: --mix '%s' has no positive weight\n", spec);
    return -1;
  }
  return 0;
}

static int has_image_ext(const char *name) {
  const char *dot = strrchr(name, '.');
  return dot && (!strcasecmp(dot, ".jpg") || !strcasecmp(dot, ".jpeg") || !strcasecmp(dot, ".png"));
}

static int mix_add_image(mix *m, const char *path) {
  if (m->n_img >= MIX_MAX_IMAGES) return 0;
  FILE *f = fopen(path, "rb");
  if (!f) return -1;
  fseek(f, 0, SEEK_END);
  long len = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *p = len > 0 ? malloc((size_t)len) : NULL;
  if (!p || fread(p, 1, (size_t)len, f) != (size_t)len) {
    free(p);
    fclose(f);
    return -1;
  }
  fclose(f);
  const char *dot = strrchr(path, '.');
  mix_image *im = &m->img[m->n_img++];
  im->data = p;
  im->len = (size_t)len;
  im->type = dot && !strcasecmp(dot, ".png") ? "image/png" : "image/jpeg";
  return 0;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Loads a folder's images (sorted by name) or a comma-separated file list. */
static int mix_load_images(mix *m, const char *spec) {
  char dflt[512];
  if (!spec || !*spec) {
    const char *cache = getenv("GPUGUARD_CACHE"), *home = getenv("HOME");
    if (cache && *cache)
      snprintf(dflt, sizeof dflt, "%s/models/face-api-1.7.15/demo", cache);
    else
      snprintf(dflt, sizeof dflt, "%s/.cache/gpuguard/models/face-api-1.7.15/demo",
               home ? home : "/root");
    spec = dflt;
  }
  DIR *d = opendir(spec);
  if (d) {
    char *names[MIX_MAX_IMAGES];
    int n = 0;
    for (struct dirent *e; (e = readdir(d)) && n < MIX_MAX_IMAGES;)
      if (has_image_ext(e->d_name) && (spec != dflt || !strncmp(e->d_name, "sample", 6)))
        names[n++] = strdup(e->d_name);
    closedir(d);
    qsort(names, (size_t)n, sizeof *names, cmp_str);
    for (int i = 0; i < n; i++) {
      char path[1024];
      snprintf(path, sizeof path, "%s/%s", spec, names[i]);
      if (mix_add_image(m, path)) fprintf(stderr, "gpuguard stress: cannot read %s\n", path);
      free(names[i]);
    }
  } else {
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", spec);
    char *save = NULL;
    for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save))
      if (mix_add_image(m, t)) {
        fprintf(stderr, "gpuguard stress: --images: cannot read %s\n", t);
        return -1;
      }
  }
  if (!m->n_img) {
    fprintf(stderr,
            "gpuguard stress: --images: no .jpg/.jpeg/.png in %s (run "
            "scripts/fetch-models.sh for the sample photos)\n",
            spec);
    return -1;
  }
  return 0;
}

/* Splits "sim:mem=512M,seed=7,cpu" into specs: a part that does not start
 * with a device kind continues the previous spec. */
static void mix_add_devices(mix *m, const char *list) {
  char buf[1024];
  snprintf(buf, sizeof buf, "%s", list ? list : "");
  char *save = NULL;
  for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
    int starts = 0;
    static const char *const kinds[] = {"cpu", "sim", "cuda", "opencl"};
    for (int k = 0; k < 4; k++) {
      size_t n = strlen(kinds[k]);
      starts |= !strncmp(t, kinds[k], n) && (t[n] == 0 || t[n] == ':');
    }
    if (!starts && m->n_dev > 1) {
      size_t l = strlen(m->dev[m->n_dev - 1]);
      snprintf(m->dev[m->n_dev - 1] + l, sizeof m->dev[0] - l, ",%s", t);
    } else if (m->n_dev < MIX_MAX_DEVS && strcmp(t, m->dev[0])) {
      snprintf(m->dev[m->n_dev++], sizeof m->dev[0], "%s", t);
    }
  }
}

typedef struct mix_resp {
  grow body;
  int retry_after;
} mix_resp;

static size_t mix_header(char *p, size_t s, size_t n, void *u) {
  mix_resp *r = u;
  if (s * n >= 12 && !strncasecmp(p, "Retry-After:", 12)) r->retry_after = 1;
  return s * n;
}

static struct curl_slist *auth_headers(const stress_opts *o, const char *content_type) {
  struct curl_slist *h = NULL;
  char line[320];
  if (content_type) {
    snprintf(line, sizeof line, "Content-Type: %s", content_type);
    h = curl_slist_append(h, line);
  }
  if (o->api_key && *o->api_key) {
    snprintf(line, sizeof line, "Authorization: Bearer %s", o->api_key);
    h = curl_slist_append(h, line);
  }
  return h;
}

/* One request; returns the HTTP status (0: no response) and the body. */
static long mix_perform(CURL *c, const stress_opts *o, const char *method, const char *path,
                        const char *type, const void *body, size_t len, mix_resp *r) {
  char url[1024];
  snprintf(url, sizeof url, "%s%s", o->url, path);
  struct curl_slist *h = auth_headers(o, body ? type : NULL);
  memset(r, 0, sizeof *r);
  curl_easy_reset(c);
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &r->body);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, mix_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, 120L);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
  if (body) {
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
  }
  long code = 0;
  if (curl_easy_perform(c) != CURLE_OK ||
      curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code) != CURLE_OK)
    code = 0;
  curl_slist_free_all(h);
  return code;
}

/* GET /api/device as JSON (NULL on failure). */
static json_t *device_state(const stress_opts *o) {
  CURL *c = curl_easy_init();
  if (!c) return NULL;
  mix_resp r;
  long code = mix_perform(c, o, "GET", "/api/device", NULL, NULL, 0, &r);
  curl_easy_cleanup(c);
  json_t *j = code == 200 && r.body.p ? json_loads(r.body.p, 0, NULL) : NULL;
  free(r.body.p);
  return j;
}

/* Whether status is one route's documented answers under load and faults. */
static int mix_expected(int route, int status, int retry_after, const char *err) {
  if (status == 503 && (retry_after || (err && !strcmp(err, "fallback_refused")))) return 1;
  switch (route) {
  case R_RECOGNIZE: return status == 200 || status == 429;
  case R_DETECT: return status == 200;
  case R_ENROLL: return status == 201 || status == 422;
  default: return status == 200 || status == 202 || status == 409;
  }
}

static void mix_sample_rss(mix *m, int at, int kind) {
  double rss = server_rss_mb(m->o->url);
  if (rss < 0) return;
  pthread_mutex_lock(&m->lock);
  if (m->n_samples == m->cap_samples) {
    int cap = m->cap_samples ? 2 * m->cap_samples : 64;
    mix_sample *s = realloc(m->samples, sizeof *s * (size_t)cap);
    if (s) {
      m->samples = s;
      m->cap_samples = cap;
    }
  }
  if (m->n_samples < m->cap_samples) m->samples[m->n_samples++] = (mix_sample){at, kind, rss};
  pthread_mutex_unlock(&m->lock);
}

typedef struct mix_worker_arg {
  mix *m;
  int id;
} mix_worker_arg;

static void *mix_worker(void *arg) {
  mix_worker_arg *wa = arg;
  mix *m = wa->m;
  const stress_opts *o = m->o;
  CURL *c = curl_easy_init();
  if (!c) return NULL;
  for (;;) {
    int i = atomic_fetch_add(&m->next, 1);
    if (i >= m->total || gg_now_ns() > m->deadline_ns) break;
    int pick = (int)(splitmix64((uint64_t)i) % (uint64_t)m->wsum), route = 0;
    while (pick >= m->weight[route])
      pick -= m->weight[route++];
    if (route == R_ENROLL && !m->n_ident) route = R_RECOGNIZE;
    if (route == R_SWITCH && m->n_dev < 2) route = R_RECOGNIZE;
    const mix_image *im = &m->img[(size_t)i % (size_t)m->n_img];
    char path[256], sw[256];
    const char *method = "POST", *type = im->type, *body = im->data;
    size_t len = im->len;
    int target = -1;
    switch (route) {
    case R_RECOGNIZE: snprintf(path, sizeof path, "/api/recognize?stream=stress-%d", wa->id); break;
    case R_DETECT: snprintf(path, sizeof path, "/api/detect"); break;
    case R_ENROLL:
      snprintf(path, sizeof path, "/api/identities/%lld/examples?face=0",
               m->ident[(size_t)i % (size_t)m->n_ident]);
      break;
    default:
      target = (atomic_load(&m->cur_dev) + 1) % m->n_dev;
      snprintf(path, sizeof path, "/api/device");
      snprintf(sw, sizeof sw, "{\"device\":\"%s\"}", m->dev[target]);
      type = "application/json";
      body = sw;
      len = strlen(sw);
      atomic_fetch_add(&m->switching, 1);
    }
    int primary = atomic_load(&m->cur_dev);
    int stable = !atomic_load(&m->switching);
    mix_rec *r = &m->rec[i];
    r->t0 = gg_now_ns();
    stable = stable && r->t0 > atomic_load(&m->switch_done) + 1000000ull;
    mix_resp resp;
    long code = mix_perform(c, o, method, path, type, body, len, &resp);
    r->t1 = gg_now_ns();
    r->route = (unsigned char)route;
    r->status = (int)code;
    json_t *j = code && resp.body.p ? json_loads(resp.body.p, 0, NULL) : NULL;
    const char *err = json_string_value(json_object_get(json_object_get(j, "error"), "name"));
    r->lost = code == 0 || (code >= 500 && !(code == 503 && resp.retry_after) &&
                            !(code == 503 && err && !strcmp(err, "fallback_refused")));
    r->unexpected = !r->lost && !mix_expected(route, (int)code, resp.retry_after, err);
    if (route == R_SWITCH) {
      if (code == 200) atomic_store(&m->cur_dev, target);
      /* The server's RSS swings by ~100 MiB with which devices hold models
       * in the server process (the CPU's do; a sim's are in its worker), so
       * a series taken in one state, right after a switch back to the
       * primary, shows growth that the periodic one hides in the swing. */
      if (code == 200 && target == 0) mix_sample_rss(m, atomic_load(&m->done), 1);
      atomic_store(&m->switch_done, gg_now_ns());
      atomic_fetch_sub(&m->switching, 1);
    } else if (code >= 200 && code < 300 && stable) {
      /* A face answer from another device than the primary: a fallback. */
      const char *dev = json_string_value(json_object_get(j, "device"));
      r->degraded = dev && strcmp(dev, m->dev[primary]);
    }
    json_decref(j);
    free(resp.body.p);
    r->used = 1;
    int d = atomic_fetch_add(&m->done, 1) + 1;
    if (m->o->sample_every > 0 && d % m->o->sample_every == 0) mix_sample_rss(m, d, 0);
  }
  curl_easy_cleanup(c);
  return NULL;
}

static void mix_run(mix *m, int n, mix_rec *rec) {
  m->total = n;
  m->rec = rec;
  atomic_store(&m->next, 0);
  atomic_store(&m->done, 0);
  m->deadline_ns = gg_now_ns() + (uint64_t)m->o->time_limit_s * 1000000000ull;
  int conc = m->o->concurrency;
  pthread_t *t = calloc((size_t)conc, sizeof *t);
  mix_worker_arg *args = calloc((size_t)conc, sizeof *args);
  int started = 0;
  for (int i = 0; t && args && i < conc; i++) {
    args[started] = (mix_worker_arg){m, i};
    if (pthread_create(&t[started], NULL, mix_worker, &args[started]) == 0) started++;
  }
  for (int i = 0; i < started; i++)
    pthread_join(t[i], NULL);
  free(t);
  free(args);
}

/* Creates (or finds) the identities stress-a, stress-b, ... */
static int mix_identities(mix *m) {
  CURL *c = curl_easy_init();
  if (!c) return -1;
  int n = m->o->identities < MIX_MAX_IDENTS ? m->o->identities : MIX_MAX_IDENTS;
  for (int k = 0; k < n; k++) {
    char body[64];
    snprintf(body, sizeof body, "{\"name\":\"stress-%c\"}", 'a' + k);
    mix_resp r;
    long code =
        mix_perform(c, m->o, "POST", "/api/identities", "application/json", body, strlen(body), &r);
    json_t *j = r.body.p ? json_loads(r.body.p, 0, NULL) : NULL;
    json_t *id = json_object_get(j, "id");
    if (!json_is_integer(id)) id = json_object_get(json_object_get(j, "error"), "id");
    if ((code == 201 || code == 409) && json_is_integer(id))
      m->ident[m->n_ident++] = json_integer_value(id);
    else
      fprintf(stderr, "gpuguard stress: POST /api/identities %s -> %ld %.200s\n", body, code,
              r.body.p ? r.body.p : "");
    json_decref(j);
    free(r.body.p);
  }
  curl_easy_cleanup(c);
  return m->n_ident == n ? 0 : -1;
}

/* Switches the server to spec (the primary at start); 0 when it answered 200. */
static int mix_switch_to(const stress_opts *o, const char *spec) {
  CURL *c = curl_easy_init();
  if (!c) return -1;
  char body[256];
  snprintf(body, sizeof body, "{\"device\":\"%s\"}", spec);
  long code = 0;
  for (int tries = 0; tries < 20 && code != 200; tries++) {
    mix_resp r;
    code = mix_perform(c, o, "POST", "/api/device", "application/json", body, strlen(body), &r);
    free(r.body.p);
    if (code != 200) {
      struct timespec ts = {0, 500000000L};
      nanosleep(&ts, NULL);
    }
  }
  curl_easy_cleanup(c);
  return code == 200 ? 0 : -1;
}

static double pct(const double *v, int n, double p) {
  return n ? v[(int)(p * (n - 1) + 0.5)] : 0.0;
}

/* The guard's counters (stats) end minus start, as a JSON object. */
static json_t *stats_delta(json_t *start, json_t *end) {
  json_t *a = json_object_get(json_object_get(start, "guard"), "stats");
  json_t *b = json_object_get(json_object_get(end, "guard"), "stats");
  json_t *d = json_object();
  const char *k;
  json_t *v;
  json_object_foreach(b, k, v) {
    json_int_t x = json_integer_value(v) - json_integer_value(json_object_get(a, k));
    json_object_set_new(d, k, json_integer(x));
  }
  return d;
}

/* Per-route figures over the measured records. */
static json_t *route_report(const mix *m, const mix_rec *rec, int n, int route, int *lost,
                            int *unexpected, int *served) {
  double *lat = malloc(sizeof(double) * (size_t)(n ? n : 1));
  double *rcv = malloc(sizeof(double) * (size_t)(n ? n : 1));
  int nl = 0, nr = 0, count = 0, ok = 0, nlost = 0, nunexp = 0, degraded = 0, events = 0;
  int by_status[600] = {0};
  /* Records by completion time: a failure (lost, 5xx) or a fallback answer
   * opens an episode that the next 2xx from the primary on the route closes. */
  int *order = malloc(sizeof(int) * (size_t)(n ? n : 1));
  int no = 0;
  for (int i = 0; i < n; i++)
    if (rec[i].used && rec[i].route == route) order[no++] = i;
  for (int a = 1; a < no; a++) /* insertion sort: records are nearly in order */
    for (int b = a; b > 0 && rec[order[b - 1]].t1 > rec[order[b]].t1; b--) {
      int t = order[b];
      order[b] = order[b - 1];
      order[b - 1] = t;
    }
  uint64_t open_at = 0;
  for (int q = 0; q < no; q++) {
    const mix_rec *r = &rec[order[q]];
    count++;
    if (r->status > 0 && r->status < 600) by_status[r->status]++;
    if (r->status > 0) lat[nl++] = (double)(r->t1 - r->t0) / 1e6;
    nlost += r->lost;
    nunexp += r->unexpected;
    degraded += r->degraded;
    int good = r->status >= 200 && r->status < 300;
    ok += good;
    int bad = r->lost || r->status >= 500 || r->degraded;
    if (bad && !open_at) {
      open_at = r->t1;
      events++;
    } else if (good && !r->degraded && open_at) {
      rcv[nr++] = (double)(r->t1 - open_at) / 1e6;
      open_at = 0;
    }
  }
  qsort(lat, (size_t)nl, sizeof *lat, cmp_double);
  qsort(rcv, (size_t)nr, sizeof *rcv, cmp_double);
  json_t *st = json_object();
  for (int s = 0; s < 600; s++)
    if (by_status[s]) {
      char k[16];
      snprintf(k, sizeof k, "%d", s);
      json_object_set_new(st, k, json_integer(by_status[s]));
    }
  if (count - nl) json_object_set_new(st, "no_response", json_integer(count - nl));
  json_t *j = json_pack(
      "{s:i,s:i,s:i,s:i,s:i,s:o,s:{s:f,s:f,s:f,s:f},s:{s:i,s:i,s:i,s:f,s:f}}", "count", count, "ok",
      ok, "lost", nlost, "unexpected", nunexp, "fallback_answers", degraded, "status", st,
      "latency_ms", "p50", pct(lat, nl, 0.50), "p95", pct(lat, nl, 0.95), "p99", pct(lat, nl, 0.99),
      "max", nl ? lat[nl - 1] : 0.0, "recovery", "episodes", events, "recovered", nr, "unrecovered",
      events - nr, "p50_ms", pct(rcv, nr, 0.50), "max_ms", nr ? rcv[nr - 1] : 0.0);
  *lost += nlost;
  *unexpected += nunexp;
  *served += count - nlost;
  free(lat);
  free(rcv);
  free(order);
  (void)m;
  return j;
}

static int cmp_sample(const void *a, const void *b) {
  const mix_sample *x = a, *y = b;
  return (x->at > y->at) - (x->at < y->at);
}

/* Memory figures over the samples of one kind: least-squares slope of RSS
 * over requests done, the means and maxima of the first and last quarters
 * of the run (by requests done), the series. */
static json_t *rss_stats(const mix_sample *smp, int n, int kind, int sent) {
  double sx = 0, sy = 0, sxx = 0, sxy = 0, rmax = 0, q1 = 0, q4 = 0, q1max = 0, q4max = 0;
  double first = 0, last = 0, q1min = 0, q4min = 0;
  int n1 = 0, n4 = 0, ns = 0;
  json_t *series = json_array();
  for (int i = 0; i < n; i++) {
    if (smp[i].kind != kind) continue;
    double x = smp[i].at, y = smp[i].rss_mb;
    if (!ns) first = y;
    last = y;
    ns++;
    sx += x;
    sy += y;
    sxx += x * x;
    sxy += x * y;
    rmax = y > rmax ? y : rmax;
    if (x <= sent / 4.0) {
      q1 += y;
      n1++;
      q1max = y > q1max ? y : q1max;
      q1min = n1 == 1 || y < q1min ? y : q1min;
    }
    if (x >= sent * 3.0 / 4.0) {
      q4 += y;
      n4++;
      q4max = y > q4max ? y : q4max;
      q4min = n4 == 1 || y < q4min ? y : q4min;
    }
    json_array_append_new(series, json_pack("[i,f]", smp[i].at, y));
  }
  double den = ns * sxx - sx * sx;
  double slope = ns > 1 && den > 0 ? (ns * sxy - sx * sy) / den * 1000.0 : 0.0;
  return json_pack("{s:i,s:f,s:f,s:f,s:f,s:f,s:f,s:f,s:f,s:f,s:f,s:i,s:i,s:o}", "samples", ns,
                   "first", first, "last", last, "max", rmax, "slope_per_1000_requests", slope,
                   "first_quarter_mean", n1 ? q1 / n1 : 0.0, "last_quarter_mean",
                   n4 ? q4 / n4 : 0.0, "first_quarter_min", q1min, "last_quarter_min", q4min,
                   "first_quarter_max", q1max, "last_quarter_max", q4max, "first_quarter_samples",
                   n1, "last_quarter_samples", n4, "series", series);
}

static void print_rss(const char *what, json_t *s) {
  printf("  %s (%lld samples): first %.1f last %.1f max %.1f slope %+.3f per 1000 requests, "
         "quarter means %.1f -> %.1f, minima %.1f -> %.1f, maxima %.1f -> %.1f\n",
         what, (long long)json_integer_value(json_object_get(s, "samples")),
         json_real_value(json_object_get(s, "first")), json_real_value(json_object_get(s, "last")),
         json_real_value(json_object_get(s, "max")),
         json_real_value(json_object_get(s, "slope_per_1000_requests")),
         json_real_value(json_object_get(s, "first_quarter_mean")),
         json_real_value(json_object_get(s, "last_quarter_mean")),
         json_real_value(json_object_get(s, "first_quarter_min")),
         json_real_value(json_object_get(s, "last_quarter_min")),
         json_real_value(json_object_get(s, "first_quarter_max")),
         json_real_value(json_object_get(s, "last_quarter_max")));
}

static int stress_mix(const stress_opts *o) {
  mix *m = calloc(1, sizeof *m);
  if (!m) return 2;
  m->o = o;
  pthread_mutex_init(&m->lock, NULL);
  int rc = 2;
  mix_rec *rec = NULL, *warm = NULL;
  json_t *st0 = NULL, *st1 = NULL, *report = NULL;
  if (mix_parse(m, o->mix) || mix_load_images(m, o->images)) goto out;
  st0 = device_state(o);
  const char *primary = json_string_value(json_object_get(st0, "primary"));
  if (!primary) {
    fprintf(stderr, "gpuguard stress: cannot read %s/api/device; is the server running?\n", o->url);
    goto out;
  }
  snprintf(m->dev[0], sizeof m->dev[0], "%s", primary);
  m->n_dev = 1;
  if (m->weight[R_SWITCH]) mix_add_devices(m, o->switch_devices);
  if (m->weight[R_ENROLL] && mix_identities(m)) goto out;
  rec = calloc((size_t)o->requests, sizeof *rec);
  warm = calloc((size_t)o->warmup + 1, sizeof *warm);
  if (!rec || !warm) goto out;
  if (o->warmup) mix_run(m, o->warmup, warm);
  json_decref(st0);
  st0 = device_state(o);
  double rss_base = server_rss_mb(o->url);
  mix_sample_rss(m, 0, 0);
  uint64_t t0 = gg_now_ns();
  mix_run(m, o->requests, rec);
  double wall_s = (double)(gg_now_ns() - t0) / 1e9;
  mix_sample_rss(m, atomic_load(&m->done), 0);
  /* Leave the server on the primary it had, so its pool can be compared
   * with the baseline. */
  int restored = atomic_load(&m->cur_dev) == 0 || mix_switch_to(o, m->dev[0]) == 0;
  st1 = device_state(o);
  double rss_end = server_rss_mb(o->url);

  int sent = 0, lost = 0, unexpected = 0, served = 0;
  for (int i = 0; i < o->requests; i++)
    sent += rec[i].used;
  json_t *routes = json_object();
  for (int r = 0; r < R_COUNT; r++)
    if (m->weight[r])
      json_object_set_new(routes, k_route_names[r],
                          route_report(m, rec, o->requests, r, &lost, &unexpected, &served));
  qsort(m->samples, (size_t)m->n_samples, sizeof *m->samples, cmp_sample);
  json_t *mem = rss_stats(m->samples, m->n_samples, 0, sent);
  /* The RSS depends on which devices hold models in the server process at
   * the moment of a sample, so the check compares floors: the lowest
   * sample of the last quarter against the lowest of the first. */
  double floor_growth = json_real_value(json_object_get(mem, "last_quarter_min")) -
                        json_real_value(json_object_get(mem, "first_quarter_min"));
  int quarters = json_integer_value(json_object_get(mem, "first_quarter_samples")) > 0 &&
                 json_integer_value(json_object_get(mem, "last_quarter_samples")) > 0;
  if (!quarters) floor_growth = rss_end - rss_base;
  int mem_ok = rss_end >= 0 && floor_growth <= o->max_growth_mb;
  int pass = lost == 0 && unexpected == 0 && sent == o->requests && mem_ok;
  json_object_set_new(mem, "floor_growth", json_real(floor_growth));
  json_object_set_new(mem, "start", json_real(rss_base));
  json_object_set_new(mem, "end", json_real(rss_end));
  json_object_set_new(mem, "growth", json_real(rss_end - rss_base));
  json_object_set_new(mem, "max_growth", json_real(o->max_growth_mb));
  json_object_set_new(mem, "after_switch_to_primary", rss_stats(m->samples, m->n_samples, 1, sent));
  json_t *devs = json_array();
  for (int i = 0; i < m->n_dev; i++)
    json_array_append_new(devs, json_string(m->dev[i]));
  report =
      json_pack("{s:s,s:s,s:i,s:i,s:i,s:i,s:i,s:f,s:f,s:o,s:o,"
                "s:o,s:o,s:b,s:b}",
                "url", o->url, "mix", !strcmp(o->mix, "default") ? k_default_mix : o->mix,
                "requests", o->requests, "sent", sent, "served", served, "lost", lost, "unexpected",
                unexpected, "wall_s", wall_s, "requests_per_s", wall_s > 0 ? sent / wall_s : 0.0,
                "routes", routes, "server_rss_mb", mem, "switch_devices", devs, "guard_delta",
                stats_delta(st0, st1), "restored_primary", restored, "pass", pass);
  if (o->json) {
    json_object_set(report, "device_start", st0);
    json_object_set(report, "device_end", st1);
    char *s = json_dumps(report, JSON_INDENT(2));
    puts(s ? s : "{}");
    free(s);
  } else {
    printf("stress --mix %s on %s: %d/%d requests in %.1f s (%.2f req/s), %d served, %d lost, "
           "%d unexpected\n",
           json_string_value(json_object_get(report, "mix")), o->url, sent, o->requests, wall_s,
           wall_s > 0 ? sent / wall_s : 0.0, served, lost, unexpected);
    printf("%-10s %6s %6s %5s %5s %8s %8s %8s %8s %9s %10s  statuses\n", "route", "count", "ok",
           "lost", "fallb", "p50 ms", "p95 ms", "p99 ms", "max ms", "episodes", "recov max");
    const char *k;
    json_t *v;
    json_object_foreach(routes, k, v) {
      json_t *l = json_object_get(v, "latency_ms"), *rc_ = json_object_get(v, "recovery");
      char *sts = json_dumps(json_object_get(v, "status"), JSON_COMPACT);
      printf("%-10s %6lld %6lld %5lld %5lld %8.1f %8.1f %8.1f %8.1f %4lld/%-4lld %8.0f ms  %s\n", k,
             json_integer_value(json_object_get(v, "count")),
             json_integer_value(json_object_get(v, "ok")),
             json_integer_value(json_object_get(v, "lost")),
             json_integer_value(json_object_get(v, "fallback_answers")),
             json_real_value(json_object_get(l, "p50")), json_real_value(json_object_get(l, "p95")),
             json_real_value(json_object_get(l, "p99")), json_real_value(json_object_get(l, "max")),
             json_integer_value(json_object_get(rc_, "recovered")),
             json_integer_value(json_object_get(rc_, "episodes")),
             json_real_value(json_object_get(rc_, "max_ms")), sts ? sts : "");
      free(sts);
    }
    printf("server RSS MiB: start %.1f  end %.1f\n", rss_base, rss_end);
    print_rss("every --sample-every", mem);
    printf("  lowest sample, last quarter minus first: %+.1f MiB (limit %.1f)\n", floor_growth,
           o->max_growth_mb);
    print_rss("after a switch back to the primary",
              json_object_get(mem, "after_switch_to_primary"));
    char *gd = json_dumps(json_object_get(report, "guard_delta"), JSON_COMPACT);
    printf("guard counters over the run: %s\n", gd ? gd : "{}");
    free(gd);
    printf("%s\n", pass ? "PASS: nothing lost, every answer documented, memory within the limit"
                        : "FAIL: requests lost, undocumented answers or memory past the limit");
  }
  rc = pass ? 0 : 1;
out:
  json_decref(report);
  json_decref(st0);
  json_decref(st1);
  for (int i = 0; i < m->n_img; i++)
    free(m->img[i].data);
  free(m->samples);
  free(rec);
  free(warm);
  pthread_mutex_destroy(&m->lock);
  free(m);
  return rc;
}

int gg_cli_stress(int argc, char **argv) {
  stress_opts o;
  memset(&o, 0, sizeof o);
  static const char usage[] =
      "Usage: gpuguard stress [options]\n\nSends a bounded number of requests to a running "
      "gpuguard server (warm-up first), samples the\nserver's resident memory from "
      "/api/device before and after, and fails (exit 1) when it grew\nby more than "
      "--max-growth-mb or any request failed.\n\n"
      "With --mix (e.g. --mix default = recognize=70,detect=15,enroll=10,switch=5) it sends\n"
      "a weighted mix instead of --path: POST /api/recognize?stream=stress-W, POST /api/detect,\n"
      "POST /api/identities/:id/examples?face=0 into identities stress-a.. it creates, and\n"
      "POST /api/device switches between the server's primary and --switch-devices, with the\n"
      "--images bodies in turn. It reports per route: count, ok, statuses, p50/p95/p99/max\n"
      "latency, lost requests, answers from a fallback device and recovery times (from a\n"
      "failed or fallback answer to the next 2xx from the primary on that route); the\n"
      "server's RSS every --sample-every requests and right after each switch back to the\n"
      "primary (first, last, max, least-squares slope per 1000 requests, first and last\n"
      "quarter mean/min/max); the guard's counters over the run. At the end it switches the\n"
      "server back to the primary it had.\n"
      "Served = any answer below 500, a 503 with Retry-After (a documented refusal) or a 503\n"
      "fallback_refused (strict mode). Lost = no HTTP answer (refused, reset, timeout) or any\n"
      "other 5xx. Unexpected = served, but not one of the route's documented answers\n"
      "(recognize 200/429, detect 200, enroll 201/422, switch 200/202/409). Exit 1 when any\n"
      "request was lost or unexpected, or the lowest RSS sample of the last quarter is over\n"
      "the first quarter's by more than --max-growth-mb.\n\n";
  int rc = gg_opts_cli("stress", usage, k_stress_opts, &o, argc, argv);
  if (rc >= 0) return rc;
  if (o.requests <= 0 || o.requests > 10000000 || o.concurrency <= 0 || o.concurrency > 256 ||
      o.warmup < 0 || o.time_limit_s <= 0) {
    fprintf(stderr, "gpuguard stress: --requests 1..1e7, --concurrency 1..256, --warmup >= 0, "
                    "--time-limit > 0\n");
    return 2;
  }
  if (o.mix && *o.mix) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int mrc = stress_mix(&o);
    curl_global_cleanup();
    return mrc;
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
