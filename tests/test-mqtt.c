/* Recognition events over MQTT (docs/mqtt.md): starts a real mosquitto
 * broker on a free loopback port, the real `gpuguard serve --mqtt`, and a
 * libmosquitto subscriber, then checks what arrives on which topic: the
 * retained availability, each event on <prefix>/events, /identity/<name>
 * and /stream/<id>, the broker's "offline" will when the server is killed,
 * and that a broker that is down costs recognitions nothing. Needs
 * /usr/sbin/mosquitto (scripts/install.sh --test); GG_MQTT_SKIP=1 skips
 * the broker cases where it cannot be installed. */
#include "gpuguard/error.h"
#include "gpuguard/image.h"
#include "gpuguard/log.h"
#include "server-util.h"
#include "server/mqtt.h"
#include "test.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifdef GG_HAVE_MOSQUITTO
#include "server/app-events.h"
#include "server/app.h"

#include <mosquitto.h>
#endif

#define MOSQUITTO_BIN "/usr/sbin/mosquitto"

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* ---- settings: URL, prefix, topic levels (no broker needed) -------------- */

static void test_url(void) {
  gg_mqtt_url u;
  char err[512];
  ASSERT_OK(gg__mqtt_url_parse("mqtt://broker.lan", &u, err, sizeof err));
  ASSERT_STREQ(u.host, "broker.lan");
  ASSERT_EQ(u.port, 1883);
  ASSERT_EQ(u.has_user, 0);
  ASSERT_OK(gg__mqtt_url_parse("mqtt://ha:p%40ss:w@10.0.0.2:18830/", &u, err, sizeof err));
  ASSERT_STREQ(u.host, "10.0.0.2");
  ASSERT_EQ(u.port, 18830);
  ASSERT_STREQ(u.user, "ha");
  ASSERT_STREQ(u.pass, "p@ss:w");
  ASSERT_OK(gg__mqtt_url_parse("mqtt://u@[::1]:1884", &u, err, sizeof err));
  ASSERT_STREQ(u.host, "::1");
  ASSERT_EQ(u.port, 1884);
  ASSERT_STREQ(u.user, "u");
  ASSERT_STREQ(u.pass, "");
  static const char *bad[] = {"",
                              "broker.lan",
                              "http://broker.lan",
                              "mqtts://broker.lan",
                              "mqtt://",
                              "mqtt://:1883",
                              "mqtt://host:0",
                              "mqtt://host:65536",
                              "mqtt://host:12ab",
                              "mqtt://host:",
                              "mqtt://host/topic",
                              "mqtt://host?x=1",
                              "mqtt://ho st",
                              "mqtt://u:%zz@host",
                              "mqtt://[::1",
                              NULL};
  for (int i = 0; bad[i]; i++) {
    err[0] = 0;
    int rc = gg__mqtt_url_parse(bad[i], &u, err, sizeof err);
    if (rc != GG_EINVAL) fprintf(stderr, "  accepted '%s'\n", bad[i]);
    ASSERT_EQ(rc, GG_EINVAL);
    ASSERT_TRUE(err[0] != 0);
  }
  /* The password never shows in the message. */
  ASSERT_EQ(gg__mqtt_url_parse("mqtt://u:secret99@host:99999", &u, err, sizeof err), GG_EINVAL);
  ASSERT_TRUE(strstr(err, "secret99") == NULL);
  ASSERT_CONTAINS(err, "port");
  gg__mqtt_url_parse("mqtts://broker.lan", &u, err, sizeof err);
  ASSERT_CONTAINS(err, "TLS");

  ASSERT_OK(gg__mqtt_prefix_check("gpuguard", err, sizeof err));
  ASSERT_OK(gg__mqtt_prefix_check("home/cams", err, sizeof err));
  static const char *bad_prefix[] = {"", "a/+", "a/#", "$SYS", "/a", "a/", "a//b", "a\nb", NULL};
  for (int i = 0; bad_prefix[i]; i++)
    ASSERT_EQ(gg__mqtt_prefix_check(bad_prefix[i], err, sizeof err), GG_EINVAL);

  char lv[GG_MQTT_SEGMENT_MAX + 1];
  ASSERT_STREQ(gg__mqtt_topic_level("alice", lv, sizeof lv), "alice");
  ASSERT_STREQ(gg__mqtt_topic_level("a/b+c#d", lv, sizeof lv), "a_b_c_d");
  ASSERT_STREQ(gg__mqtt_topic_level("tab\there\x7f", lv, sizeof lv), "tab_here_");
  ASSERT_STREQ(gg__mqtt_topic_level("", lv, sizeof lv), "_");
  ASSERT_STREQ(gg__mqtt_topic_level("J\xc3\xb6rg", lv, sizeof lv), "J\xc3\xb6rg"); /* UTF-8 kept */
  ASSERT_STREQ(gg__mqtt_topic_level("x\xff\xc3", lv, sizeof lv), "x__");    /* invalid bytes */
  ASSERT_STREQ(gg__mqtt_topic_level("\xc2\x85", lv, sizeof lv), "_");       /* C1 control */
  ASSERT_STREQ(gg__mqtt_topic_level("\xed\xa0\x80", lv, sizeof lv), "___"); /* surrogate */
  char longname[400];
  memset(longname, 'a', sizeof longname - 3);
  memcpy(longname + sizeof longname - 3, "\xc3\xb6", 3);
  ASSERT_EQ(strlen(gg__mqtt_topic_level(longname, lv, sizeof lv)), GG_MQTT_SEGMENT_MAX);
  char small[4];
  ASSERT_STREQ(gg__mqtt_topic_level("ab\xc3\xb6", small, sizeof small), "ab"); /* no half char */
}

/* ---- children and folders a failed check may leave behind ------------------ */

static pid_t g_kids[16];
static char g_dirs[16][64];

static void kid_track(pid_t pid, int on) {
  for (int i = 0; i < 16; i++)
    if (on ? g_kids[i] == 0 : g_kids[i] == pid) {
      g_kids[i] = on ? pid : 0;
      return;
    }
}

static void dir_track(const char *dir, int on) {
  for (int i = 0; i < 16; i++)
    if (on ? !g_dirs[i][0] : !strcmp(g_dirs[i], dir)) {
      snprintf(g_dirs[i], sizeof g_dirs[i], "%s", on ? dir : "");
      return;
    }
}

static void cleanup_all(void) {
  for (int i = 0; i < 16; i++) {
    if (g_kids[i] > 0) {
      kill(g_kids[i], SIGKILL);
      waitpid(g_kids[i], NULL, 0);
      g_kids[i] = 0;
    }
    if (g_dirs[i][0]) {
      char cmd[128];
      snprintf(cmd, sizeof cmd, "rm -rf %.63s", g_dirs[i]);
      if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", g_dirs[i]);
      g_dirs[i][0] = 0;
    }
  }
}

/* ---- the server binary ---------------------------------------------------- */

typedef gg_ts_server server;

/* Starts `gpuguard serve` on the CPU with a fresh gallery, its log in
 * s->log, plus extra args; waits for its port file. Returns 0, or -1 (the
 * process gone, its wait status in *status when status is not NULL). */
static int server_start(server *s, const char *const *extra, int *status) {
  const char *args[32] = {"--max-body", "16M", "--log-level",     "info",
                          "--device",   "cpu", "--insecure-local"};
  int n = 7;
  for (int i = 0; extra && extra[i] && n < 31; i++)
    args[n++] = extra[i];
  args[n] = NULL;
  *s = (server)GG_TS_NONE;
  s->log_to_file = 1;
  int rc = gg_ts_start(s, "test-mqtt", 1, args, 60);
  if (s->dir[0]) dir_track(s->dir, 1);
  if (s->pid > 0) kid_track(s->pid, 1);
  if (rc && status) *status = s->wait_status;
  return rc;
}

/* Stops the server (sig: SIGTERM waits for a clean exit, SIGKILL does not)
 * and removes its folder. Returns its exit code (gg_ts_status), -1 when it
 * was not running. */
static int server_stop(server *s, int sig) {
  kid_track(s->pid, 0);
  dir_track(s->dir, 0);
  return gg_ts_signal(s, sig, 1);
}

static char *read_file(const char *path, size_t *len) {
  return gg_ts_read_file(path, len);
}

/* `gpuguard serve --mqtt URL` must refuse to start, saying why. */
static void expect_refusal(const char *url, const char *needle) {
  server s;
  const char *extra[] = {"--mqtt", url, NULL};
  int st = 0;
  int rc = server_start(&s, extra, &st);
  char log[4096] = "";
  char *l = read_file(s.log, NULL);
  snprintf(log, sizeof log, "%s", l ? l : "");
  free(l);
  server_stop(&s, SIGKILL); /* removes the folder (and the server, had it started) */
  ASSERT_EQ(rc, -1);
  ASSERT_TRUE(WIFEXITED(st));
  ASSERT_NE(WEXITSTATUS(st), 0);
  ASSERT_CONTAINS(log, needle);
  ASSERT_CONTAINS(log, "cannot start");
}

static void test_bad_url(void) {
  expect_refusal("http://127.0.0.1:1883", "unsupported scheme 'http://'");
  expect_refusal("mqtt://127.0.0.1:0", "port '0'");
  expect_refusal("mqtt://", "no host");
#ifndef GG_HAVE_MOSQUITTO
  /* Built without libmosquitto: a valid URL is refused too, naming the fix. */
  expect_refusal("mqtt://127.0.0.1:1883", "apt-get install libmosquitto-dev");
#endif
}

#ifdef GG_HAVE_MOSQUITTO

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- HTTP ----------------------------------------------------------------- */

/* Performs a request on the server at port; returns the HTTP status (or
 * -1) and the parsed JSON body in *out. */
static long req(int port, const char *method, const char *path, const char *content_type,
                const void *body, size_t body_len, json_t **out) {
  char ct[128];
  snprintf(ct, sizeof ct, "Content-Type: %s", content_type ? content_type : "");
  const char *hdrs[] = {ct, NULL};
  gg_ts_server at = GG_TS_NONE;
  at.port = port;
  gg_ts_buf b = {0};
  long status = gg_ts_http(&at, method, path, hdrs, body, body_len, 60, &b);
  *out = b.p ? json_loads(b.p, 0, NULL) : NULL;
  if (status >= 400 || !*out)
    fprintf(stderr, "  %s %s -> %ld %.300s\n", method, path, status, b.p ? b.p : "");
  free(b.p);
  return status;
}

static char *sample(int i, size_t *len) {
  return gg_ts_sample(i, len);
}

/* sample1 mirrored and cropped around its face 0 (x 1482..1648, y 257..423;
 * 271..437 in the mirror): another view of the enrolled face, as PNG. */
static uint8_t *alice_view(size_t *len) {
  return gg_ts_flipped_crop(100, 100, 560, 560, len);
}

/* ---- the broker ----------------------------------------------------------- */

/* A loopback port nobody listens on (a short race with other processes is
 * possible and harmless here). */
static int free_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t al = sizeof a;
  int port = -1;
  if (fd >= 0 && !bind(fd, (struct sockaddr *)&a, sizeof a) &&
      !getsockname(fd, (struct sockaddr *)&a, &al))
    port = ntohs(a.sin_port);
  if (fd >= 0) close(fd);
  return port;
}

static int port_open(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_port = htons((uint16_t)port),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  int ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
  if (fd >= 0) close(fd);
  return ok;
}

typedef struct broker {
  pid_t pid;
  int port;
  char dir[64];
} broker;

/* Starts mosquitto on port (0 picks one) with a config in a temp folder;
 * with user and pass set, only that user may connect. */
static int broker_start_auth(broker *b, int port, const char *user, const char *pass) {
  memset(b, 0, sizeof *b);
  b->pid = -1;
  b->port = port ? port : free_port();
  snprintf(b->dir, sizeof b->dir, "/tmp/gg-test-mosq-XXXXXX");
  if (!mkdtemp(b->dir)) return -1;
  dir_track(b->dir, 1);
  char conf[128], log[128];
  snprintf(conf, sizeof conf, "%s/mosquitto.conf", b->dir);
  snprintf(log, sizeof log, "%s/mosquitto.log", b->dir);
  FILE *f = fopen(conf, "w");
  if (!f) return -1;
  fprintf(f, "listener %d 127.0.0.1\npersistence false\n", b->port);
  if (user) {
    /* mosquitto may read it after dropping root for its own user. */
    char cmd[512];
    snprintf(cmd, sizeof cmd, "chmod 755 %s && mosquitto_passwd -c -b %s/passwd '%s' '%s'", b->dir,
             b->dir, user, pass);
    if (system(cmd) != 0) {
      fclose(f);
      return -1;
    }
    fprintf(f, "allow_anonymous false\npassword_file %s/passwd\n", b->dir);
  } else {
    fprintf(f, "allow_anonymous true\n");
  }
  fclose(f);
  b->pid = fork();
  if (b->pid == 0) {
    int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    execl(MOSQUITTO_BIN, "mosquitto", "-c", conf, (char *)NULL);
    _exit(127);
  }
  kid_track(b->pid, 1);
  for (int i = 0; i < 200; i++) {
    if (port_open(b->port)) return 0;
    int st;
    if (waitpid(b->pid, &st, WNOHANG) == b->pid) {
      kid_track(b->pid, 0);
      b->pid = -1;
      char *l = read_file(log, NULL);
      fprintf(stderr, "  mosquitto exited: %s\n", l ? l : "");
      free(l);
      return -1;
    }
    sleep_ms(25);
  }
  return -1;
}

static int broker_start(broker *b, int port) {
  return broker_start_auth(b, port, NULL, NULL);
}

static void broker_stop(broker *b) {
  if (b->pid > 0) {
    kid_track(b->pid, 0);
    kill(b->pid, SIGTERM);
    waitpid(b->pid, NULL, 0);
    b->pid = -1;
  }
  if (b->dir[0]) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", b->dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", b->dir);
    dir_track(b->dir, 0);
    b->dir[0] = 0;
  }
}

/* ---- a subscriber --------------------------------------------------------- */

#define SUB_MAX 256

typedef struct msg {
  char *topic;
  char *payload;
  int retain;
} msg;

typedef struct sub {
  struct mosquitto *m;
  pthread_mutex_t lock;
  msg msgs[SUB_MAX];
  int n;
  _Atomic int subscribed;
} sub;

static void sub_on_message(struct mosquitto *m, void *ud, const struct mosquitto_message *mm) {
  (void)m;
  sub *s = ud;
  pthread_mutex_lock(&s->lock);
  if (s->n < SUB_MAX) {
    msg *x = &s->msgs[s->n++];
    x->topic = strdup(mm->topic);
    x->payload = calloc(1, (size_t)mm->payloadlen + 1);
    if (mm->payloadlen) memcpy(x->payload, mm->payload, (size_t)mm->payloadlen);
    x->retain = mm->retain;
  }
  pthread_mutex_unlock(&s->lock);
}

static void sub_on_subscribe(struct mosquitto *m, void *ud, int mid, int n, const int *qos) {
  (void)m, (void)mid, (void)n, (void)qos;
  atomic_store(&((sub *)ud)->subscribed, 1);
}

/* Connects to the broker on port and subscribes to filter; returns once the
 * broker confirmed (NULL on failure). */
static sub *sub_open(int port, const char *filter) {
  sub *s = calloc(1, sizeof *s);
  pthread_mutex_init(&s->lock, NULL);
  s->m = mosquitto_new(NULL, true, s);
  mosquitto_message_callback_set(s->m, sub_on_message);
  mosquitto_subscribe_callback_set(s->m, sub_on_subscribe);
  if (mosquitto_connect(s->m, "127.0.0.1", port, 30) != MOSQ_ERR_SUCCESS ||
      mosquitto_subscribe(s->m, NULL, filter, 1) != MOSQ_ERR_SUCCESS ||
      mosquitto_loop_start(s->m) != MOSQ_ERR_SUCCESS) {
    mosquitto_destroy(s->m);
    free(s);
    return NULL;
  }
  for (int i = 0; i < 500 && !atomic_load(&s->subscribed); i++)
    sleep_ms(10);
  return s;
}

static void sub_close(sub *s) {
  if (!s) return;
  mosquitto_disconnect(s->m);
  mosquitto_loop_stop(s->m, false);
  mosquitto_destroy(s->m);
  for (int i = 0; i < s->n; i++) {
    free(s->msgs[i].topic);
    free(s->msgs[i].payload);
  }
  pthread_mutex_destroy(&s->lock);
  free(s);
}

/* Waits up to ms for a message on topic whose payload contains needle
 * (NULL: any), after the first `from` messages. Returns a copy of its
 * payload (free it) or NULL; *retain gets its retain flag. */
static char *sub_wait(sub *s, int from, const char *topic, const char *needle, int ms,
                      int *retain) {
  int64_t end = now_ms() + ms;
  for (;;) {
    char *found = NULL;
    pthread_mutex_lock(&s->lock);
    for (int i = from; i < s->n && !found; i++)
      if (!strcmp(s->msgs[i].topic, topic) && (!needle || strstr(s->msgs[i].payload, needle))) {
        found = strdup(s->msgs[i].payload);
        if (retain) *retain = s->msgs[i].retain;
      }
    pthread_mutex_unlock(&s->lock);
    if (found || now_ms() > end) return found;
    sleep_ms(10);
  }
}

/* Messages received so far on topics starting with prefix. */
static int sub_count(sub *s, const char *prefix) {
  int k = 0;
  pthread_mutex_lock(&s->lock);
  for (int i = 0; i < s->n; i++)
    k += !strncmp(s->msgs[i].topic, prefix, strlen(prefix));
  pthread_mutex_unlock(&s->lock);
  return k;
}

static int sub_n(sub *s) {
  pthread_mutex_lock(&s->lock);
  int n = s->n;
  pthread_mutex_unlock(&s->lock);
  return n;
}

static int have_broker(void) {
  return access(MOSQUITTO_BIN, X_OK) == 0;
}

#define NEED_BROKER()                                                                              \
  do {                                                                                             \
    if (!have_broker()) {                                                                          \
      const char *_sk = getenv("GG_MQTT_SKIP");                                                    \
      if (_sk && !strcmp(_sk, "1")) SKIP(MOSQUITTO_BIN " missing (GG_MQTT_SKIP=1)");               \
      GG_T_FAIL(MOSQUITTO_BIN " is missing: run scripts/install.sh --test (or set "                \
                              "GG_MQTT_SKIP=1 to skip the MQTT broker tests)");                    \
    }                                                                                              \
  } while (0)

static double jreal(json_t *j, const char *key) {
  return json_number_value(json_object_get(j, key));
}

static int64_t jint(json_t *j, const char *key) {
  return json_integer_value(json_object_get(j, key));
}

/* ---- the end-to-end case ---------------------------------------------------- */

static void test_events(void) {
  NEED_BROKER();
  size_t n1 = 0, n2 = 0, vn = 0;
  char *s1 = sample(1, &n1), *s2 = sample(2, &n2);
  uint8_t *view = s1 ? alice_view(&vn) : NULL;
  if (!s1 || !s2 || !view) {
    free(s1), free(s2), free(view);
    SKIP("sample photos missing: run scripts/fetch-models.sh");
  }
  broker b;
  server srv = {.pid = -1};
  sub *live = NULL, *late = NULL, *later = NULL;
  json_t *j = NULL;
  char *p = NULL;
  ASSERT_OK(broker_start(&b, 0));
  live = sub_open(b.port, "ggtest/#");
  ASSERT_TRUE(live != NULL);

  char url[64];
  snprintf(url, sizeof url, "mqtt://127.0.0.1:%d", b.port);
  const char *extra[] = {"--mqtt", url, "--mqtt-prefix", "ggtest", NULL};
  ASSERT_OK(server_start(&srv, extra, NULL));
  int retain = -1;
  p = sub_wait(live, 0, "ggtest/availability", "online", 10000, &retain);
  ASSERT_STREQ(p, "online");
  free(p);
  /* Retained: a subscriber that comes later gets it at once. */
  late = sub_open(b.port, "ggtest/availability");
  ASSERT_TRUE(late != NULL);
  p = sub_wait(late, 0, "ggtest/availability", NULL, 3000, &retain);
  ASSERT_STREQ(p, "online");
  ASSERT_EQ(retain, 1);
  free(p);

  /* Enroll alice from sample1's face 0, recognise another view of her. */
  ASSERT_EQ(
      req(srv.port, "POST", "/api/identities", "application/json", "{\"name\":\"alice\"}", 16, &j),
      201);
  int64_t alice = jint(j, "id");
  json_decref(j);
  char path[128];
  snprintf(path, sizeof path, "/api/identities/%lld/examples?face=0", (long long)alice);
  ASSERT_EQ(req(srv.port, "POST", path, "image/jpeg", s1, n1, &j), 201);
  json_decref(j);
  int mark = sub_n(live);
  ASSERT_EQ(req(srv.port, "POST", "/api/recognize?stream=cam1", "image/png", view, vn, &j), 200);
  json_t *f = json_array_get(json_object_get(j, "faces"), 0);
  double threshold = jreal(f, "threshold");
  int64_t event_id = jint(f, "event_id");
  ASSERT_EQ(jint(json_object_get(f, "identity"), "id"), alice);
  json_decref(j);
  j = NULL;
  ASSERT_GE(event_id, 1);

  static const char *topics[] = {"ggtest/events", "ggtest/identity/alice", "ggtest/stream/cam1"};
  for (int t = 0; t < 3; t++) {
    p = sub_wait(live, mark, topics[t], "\"alice\"", 5000, &retain);
    if (!p) fprintf(stderr, "  nothing about alice on %s\n", topics[t]);
    ASSERT_TRUE(p != NULL);
    ASSERT_EQ(retain, 0);
    if (t == 0) fprintf(stderr, "  %s: %s\n", topics[t], p);
    j = json_loads(p, 0, NULL);
    free(p);
    ASSERT_TRUE(j != NULL);
    ASSERT_STREQ(json_string_value(json_object_get(j, "name")), "alice");
    ASSERT_TRUE(json_is_true(json_object_get(j, "known")));
    ASSERT_TRUE(json_is_false(json_object_get(j, "anonymous")));
    ASSERT_EQ(jint(j, "identity_id"), alice);
    ASSERT_EQ(jint(j, "event_id"), event_id);
    ASSERT_STREQ(json_string_value(json_object_get(j, "stream")), "cam1");
    ASSERT_STREQ(json_string_value(json_object_get(j, "device")), "cpu");
    ASSERT_GE(jint(j, "track_id"), 1);
    ASSERT_GT_F(jreal(j, "score"), threshold);
    ASSERT_LE_F(jreal(j, "score"), 1.0);
    json_t *box = json_object_get(j, "box");
    ASSERT_GT_F(jreal(box, "w"), 20.0);
    ASSERT_GT_F(jreal(box, "h"), 20.0);
    ASSERT_GE_F(jreal(box, "x"), 0.0);
    ASSERT_GT_F((double)jint(j, "time_ms"), 1.6e12);
    json_decref(j);
    j = NULL;
  }

  /* Someone else (sample2): known=false, and nothing on identity/. */
  mark = sub_n(live);
  int before = sub_count(live, "ggtest/identity/");
  ASSERT_EQ(req(srv.port, "POST", "/api/recognize?stream=cam1", "image/jpeg", s2, n2, &j), 200);
  size_t faces = json_array_size(json_object_get(j, "faces"));
  json_decref(j);
  j = NULL;
  ASSERT_GE(faces, 1);
  p = sub_wait(live, mark, "ggtest/events", "\"known\":false", 5000, NULL);
  ASSERT_TRUE(p != NULL);
  j = json_loads(p, 0, NULL);
  free(p);
  ASSERT_STREQ(json_string_value(json_object_get(j, "name")), "unknown");
  ASSERT_EQ(jint(j, "identity_id"), 0);
  json_decref(j);
  j = NULL;
  p = sub_wait(live, mark, "ggtest/stream/cam1", "\"known\":false", 5000, NULL);
  ASSERT_TRUE(p != NULL);
  free(p);
  sleep_ms(200);
  ASSERT_EQ(sub_count(live, "ggtest/identity/"), before);

  /* Killed: the broker publishes the will, retained. */
  mark = sub_n(live);
  int64_t t0 = now_ms();
  server_stop(&srv, SIGKILL);
  p = sub_wait(live, mark, "ggtest/availability", "offline", 20000, NULL);
  ASSERT_STREQ(p, "offline");
  free(p);
  fprintf(stderr, "  will arrived %lld ms after SIGKILL\n", (long long)(now_ms() - t0));
  later = sub_open(b.port, "ggtest/availability");
  p = sub_wait(later, 0, "ggtest/availability", NULL, 3000, &retain);
  ASSERT_STREQ(p, "offline");
  ASSERT_EQ(retain, 1);
  free(p);

  /* Started again and stopped cleanly: "online", then "offline", exit 0. */
  mark = sub_n(live);
  ASSERT_OK(server_start(&srv, extra, NULL));
  p = sub_wait(live, mark, "ggtest/availability", "online", 10000, NULL);
  ASSERT_STREQ(p, "online");
  free(p);
  mark = sub_n(live);
  ASSERT_EQ(server_stop(&srv, SIGTERM), 0);
  p = sub_wait(live, mark, "ggtest/availability", "offline", 5000, NULL);
  ASSERT_STREQ(p, "offline");
  free(p);

  sub_close(live);
  sub_close(late);
  sub_close(later);
  server_stop(&srv, SIGKILL);
  broker_stop(&b);
  free(s1);
  free(s2);
  free(view);
}

/* The server with its broker down still answers recognitions. */
static void test_broker_down_server(void) {
  size_t n2 = 0;
  char *s2 = sample(2, &n2);
  if (!s2) SKIP("sample photos missing: run scripts/fetch-models.sh");
  char url[64];
  snprintf(url, sizeof url, "mqtt://127.0.0.1:%d", free_port());
  const char *extra[] = {"--mqtt", url, NULL};
  server srv;
  ASSERT_OK(server_start(&srv, extra, NULL));
  json_t *j = NULL;
  int64_t t0 = now_ms();
  long st = req(srv.port, "POST", "/api/recognize?stream=cam1", "image/jpeg", s2, n2, &j);
  int64_t dt = now_ms() - t0;
  size_t faces = json_array_size(json_object_get(j, "faces"));
  json_decref(j);
  free(s2);
  sleep_ms(100);
  char log[8192] = "";
  char *l = read_file(srv.log, NULL);
  snprintf(log, sizeof log, "%s", l ? l : "");
  free(l);
  /* The drop shows in /metrics. */
  gg_ts_buf m = {0};
  long mst = gg_ts_http(&srv, "GET", "/metrics", NULL, NULL, 0, 10, &m);
  const char *mt = m.p ? m.p : "";
  int m_down = strstr(mt, "gpuguard_mqtt_connected 0\n") != NULL;
  /* one per embedded face of sample2 */
  const char *dr = strstr(mt, "\ngpuguard_mqtt_events_dropped_total ");
  int m_dropped = dr && atoi(dr + strlen("\ngpuguard_mqtt_events_dropped_total ")) >= 1;
  int m_none = strstr(mt, "gpuguard_mqtt_events_published_total 0\n") != NULL;
  free(m.p);
  /* A clean exit, also with the publisher still trying to connect (and,
   * in the sanitizer build, without leaks). */
  int64_t t1 = now_ms();
  int code = server_stop(&srv, SIGTERM);
  fprintf(stderr, "  SIGTERM to exit: %lld ms\n", (long long)(now_ms() - t1));
  ASSERT_EQ(code, 0);
  ASSERT_EQ(mst, 200);
  ASSERT_TRUE(m_down);
  ASSERT_TRUE(m_dropped);
  ASSERT_TRUE(m_none);
  ASSERT_EQ(st, 200);
  ASSERT_GE(faces, 1);
  /* Dropped, counted, and said so once in the log. */
  ASSERT_CONTAINS(log, "recognition events are dropped: the MQTT broker is not connected");
  ASSERT_CONTAINS(log, "is not reachable");
  fprintf(stderr, "  recognition with the broker down: %lld ms\n", (long long)dt);
}

/* In-process: events while the broker is down are dropped and counted;
 * once it comes up the publisher reconnects by itself and publishes; a
 * clean stop leaves "offline" retained. */
static void test_reconnect_and_counters(void) {
  NEED_BROKER();
  int port = free_port();
  char url[64];
  snprintf(url, sizeof url, "mqtt://127.0.0.1:%d", port);
  gg_server_config cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.mqtt_url = url;
  gg_app *app = calloc(1, sizeof *app);
  ASSERT_OK(gg__app_events_start(app, &cfg));
  gg_app_events_stats st;
  gg__app_events_stats(app, &st);
  ASSERT_EQ(st.enabled, 1);
  ASSERT_EQ(st.connected, 0);
  gg_app_event ev = {.event_id = 7,
                     .time_ms = 1700000000000,
                     .stream = "door",
                     .identity_id = 3,
                     .name = "bob/+#",
                     .score = 0.75f,
                     .device = "cpu",
                     .box = {1, 2, 30, 40},
                     .track_id = 2};
  for (int i = 0; i < 3; i++)
    gg__app_event(app, &ev);
  gg__app_events_stats(app, &st);
  ASSERT_U64_EQ(st.dropped, 3);
  ASSERT_U64_EQ(st.published, 0);

  broker b;
  ASSERT_OK(broker_start(&b, port));
  sub *s = sub_open(port, "gpuguard/#");
  ASSERT_TRUE(s != NULL);
  int64_t t0 = now_ms();
  for (int i = 0; i < 1500; i++) {
    gg__app_events_stats(app, &st);
    if (st.connected) break;
    sleep_ms(10);
  }
  ASSERT_EQ(st.connected, 1);
  ASSERT_U64_EQ(st.connects, 1);
  fprintf(stderr, "  reconnected %lld ms after the broker came up\n", (long long)(now_ms() - t0));
  char *p = sub_wait(s, 0, "gpuguard/availability", "online", 5000, NULL);
  ASSERT_STREQ(p, "online");
  free(p);
  gg__app_event(app, &ev);
  p = sub_wait(s, 0, "gpuguard/identity/bob___", NULL, 5000, NULL);
  ASSERT_TRUE(p != NULL);
  json_t *j = json_loads(p, 0, NULL);
  free(p);
  ASSERT_STREQ(json_string_value(json_object_get(j, "name")), "bob/+#");
  ASSERT_NEAR(jreal(j, "score"), 0.75, 1e-6);
  ASSERT_NEAR(jreal(json_object_get(j, "box"), "h"), 40.0, 1e-6);
  json_decref(j);
  p = sub_wait(s, 0, "gpuguard/stream/door", NULL, 5000, NULL);
  ASSERT_TRUE(p != NULL);
  free(p);
  p = sub_wait(s, 0, "gpuguard/events", NULL, 5000, NULL);
  ASSERT_TRUE(p != NULL);
  free(p);
  gg__app_events_stats(app, &st);
  ASSERT_U64_EQ(st.published, 1);
  ASSERT_U64_EQ(st.dropped, 3);

  /* A clean stop: "offline", retained. */
  int mark = sub_n(s);
  int64_t t1 = now_ms();
  gg__app_events_stop(app);
  ASSERT_LE(now_ms() - t1, 1000); /* the broker acknowledged at once */
  gg__app_events_stop(app);       /* idempotent */
  ASSERT_TRUE(app->events == NULL);
  p = sub_wait(s, mark, "gpuguard/availability", "offline", 5000, NULL);
  ASSERT_STREQ(p, "offline");
  free(p);
  /* Home Assistant discovery, retained. */
  int retain = 0;
  sub *late = sub_open(port, "homeassistant/#");
  ASSERT_TRUE(late != NULL);
  p = sub_wait(late, 0, "homeassistant/sensor/gpuguard/last_person/config", NULL, 3000, &retain);
  ASSERT_TRUE(p != NULL);
  ASSERT_EQ(retain, 1);
  ASSERT_CONTAINS(p, "\"state_topic\":\"gpuguard/events\"");
  ASSERT_CONTAINS(p, "\"availability_topic\":\"gpuguard/availability\"");
  free(p);
  sub_close(late);
  sub_close(s);
  broker_stop(&b);
  free(app);
}

/* Log lines captured from this process (gg_log_set_sink). */
static pthread_mutex_t g_log_lock = PTHREAD_MUTEX_INITIALIZER;
static char g_log[8192];

static void log_sink(gg_log_level level, const char *line, void *user) {
  (void)level, (void)user;
  pthread_mutex_lock(&g_log_lock);
  size_t n = strlen(g_log);
  snprintf(g_log + n, sizeof g_log - n, "%s", line);
  pthread_mutex_unlock(&g_log_lock);
}

static int log_has(const char *needle) {
  pthread_mutex_lock(&g_log_lock);
  int k = strstr(g_log, needle) != NULL;
  pthread_mutex_unlock(&g_log_lock);
  return k;
}

/* The user and password of the URL reach the broker (percent-escapes
 * decoded); a wrong password is refused, logged, never connected. */
static void test_credentials(void) {
  NEED_BROKER();
  broker b;
  ASSERT_OK(broker_start_auth(&b, 0, "gg", "s3cr:t@x"));
  char url[128];
  gg_server_config cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.mqtt_url = url;
  gg_app_events_stats st = {0};
  gg_app *app = calloc(1, sizeof *app);
  snprintf(url, sizeof url, "mqtt://gg:s3cr%%3At%%40x@127.0.0.1:%d", b.port);
  ASSERT_OK(gg__app_events_start(app, &cfg));
  for (int i = 0; i < 300 && !st.connected; i++) {
    sleep_ms(10);
    gg__app_events_stats(app, &st);
  }
  gg__app_events_stop(app);
  ASSERT_EQ(st.connected, 1);

  g_log[0] = 0;
  gg_log_set_sink(log_sink, NULL);
  snprintf(url, sizeof url, "mqtt://gg:wrong@127.0.0.1:%d", b.port);
  ASSERT_OK(gg__app_events_start(app, &cfg));
  for (int i = 0; i < 300 && !log_has("refused the connection"); i++)
    sleep_ms(10);
  gg__app_events_stats(app, &st);
  gg__app_events_stop(app);
  gg_log_set_sink(NULL, NULL);
  ASSERT_EQ(st.connected, 0);
  ASSERT_U64_EQ(st.connects, 0);
  ASSERT_TRUE(log_has("refused the connection"));
  ASSERT_TRUE(!log_has("wrong")); /* the password is not logged */
  broker_stop(&b);
  free(app);
}

/* Stopping while the broker has never answered returns promptly. */
static void test_stop_while_down(void) {
  char url[64];
  snprintf(url, sizeof url, "mqtt://127.0.0.1:%d", free_port());
  gg_server_config cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.mqtt_url = url;
  cfg.mqtt_prefix = "home/cams";
  gg_app *app = calloc(1, sizeof *app);
  ASSERT_OK(gg__app_events_start(app, &cfg));
  sleep_ms(1500); /* into the reconnect pause */
  int64_t t0 = now_ms();
  gg__app_events_stop(app);
  ASSERT_LE(now_ms() - t0, 1000);
  cfg.mqtt_prefix = "bad/+";
  ASSERT_EQ(gg__app_events_start(app, &cfg), GG_EINVAL);
  ASSERT_TRUE(app->events == NULL);
  free(app);
}

#else /* !GG_HAVE_MOSQUITTO */

static void test_no_libmosquitto(void) {
  const char *sk = getenv("GG_MQTT_SKIP");
  if (sk && !strcmp(sk, "1")) SKIP("built without libmosquitto (GG_MQTT_SKIP=1)");
  GG_T_FAIL("built without libmosquitto: the MQTT broker tests cannot subscribe; run "
            "scripts/install.sh (apt-get install libmosquitto-dev) and re-run cmake, or set "
            "GG_MQTT_SKIP=1");
}

#endif

int main(int argc, char **argv) {
  signal(SIGPIPE, SIG_IGN);
  curl_global_init(CURL_GLOBAL_DEFAULT);
#ifdef GG_HAVE_MOSQUITTO
  mosquitto_lib_init();
#endif
  static const gg_test_case cases[] = {
      {"url", test_url},
      {"bad_url", test_bad_url},
#ifdef GG_HAVE_MOSQUITTO
      {"events", test_events},
      {"broker_down_server", test_broker_down_server},
      {"reconnect_and_counters", test_reconnect_and_counters},
      {"credentials", test_credentials},
      {"stop_while_down", test_stop_while_down},
#else
      {"no_libmosquitto", test_no_libmosquitto},
#endif
      {0},
  };
  int rc = gg_test_main(argc, argv, cases);
  cleanup_all();
#ifdef GG_HAVE_MOSQUITTO
  mosquitto_lib_cleanup();
#endif
  curl_global_cleanup();
  return rc;
}
