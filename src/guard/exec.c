/* Executors: a device as the supervisor sees it. Local executors call the
 * host directly (cpu). Isolated ones run the host in a `gpuguard worker`
 * process: requests over a SOCK_SEQPACKET socketpair, tensors in a memfd
 * both sides map, every reply awaited with a watchdog. A worker that misses
 * its watchdog is killed (GG_ETIMEOUT); one that dies is reaped
 * (GG_EDEVICE_LOST). Either way the executor is down until restarted. */
#include "gpuguard/core.h"
#include "gpuguard/error.h"
#include "gpuguard/log.h"
#include "guard/guard-impl.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define WORKER_SOCK_FD 3
#define WORKER_SHM_FD 4

/* ---- shared memory ----------------------------------------------------- */

static int shm_ensure(int fd, uint64_t bytes) {
  struct stat st;
  if (fstat(fd, &st) != 0) return GG_EIO;
  if ((uint64_t)st.st_size >= bytes) return 0;
  return ftruncate(fd, (off_t)bytes) == 0 ? 0 : GG_ENOMEM;
}

/* A persistent view of the shared file, grown (never shrunk) on demand:
 * remapping per request would fault every page in again each time (2-3 ms
 * for a 768 KiB image, measured). The file may be longer than this side's
 * view (the peer grew it). */
typedef gg__shm_view shm_view;

static int view_need(int fd, shm_view *v, uint64_t bytes) {
  if (bytes <= v->len) return 0;
  size_t len = v->len ? v->len : (1u << 20);
  while (len < bytes)
    len *= 2;
  int rc = shm_ensure(fd, len);
  if (rc) return rc;
  void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) return GG_ENOMEM;
  if (v->p) munmap(v->p, v->len);
  v->p = p;
  v->len = len;
  return 0;
}

static void view_drop(shm_view *v) {
  if (v->p) munmap(v->p, v->len);
  v->p = NULL;
  v->len = 0;
}

/* ---- worker side -------------------------------------------------------- */

static int send_rep(int sock, gg__wrep *rep) {
  rep->magic = GG__WMAGIC;
  ssize_t n = send(sock, rep, sizeof *rep, MSG_NOSIGNAL);
  return n == (ssize_t)sizeof *rep ? 0 : GG_EIO;
}

static void worker_usage(void) {
  fprintf(stderr, "gpuguard worker: internal subcommand started by the resilience layer.\n"
                  "Usage: gpuguard worker --fd N --shm N --device SPEC --runner KIND "
                  "[--runner-arg X] [--budget BYTES] [--cleanup-every N]\n");
}

/* Packs outputs after each other into the shm; fills the reply's shapes. */
static int pack_outputs(int shm, shm_view *v, gg_gtensor *outs, int n, gg__wrep *rep) {
  uint64_t total = 0;
  for (int i = 0; i < n; i++)
    total += gg_gtensor_count(&outs[i]) * sizeof(float);
  int rc = view_need(shm, v, total ? total : 1);
  if (rc) return rc;
  char *p = v->p;
  uint64_t off = 0;
  for (int i = 0; i < n; i++) {
    size_t b = gg_gtensor_count(&outs[i]) * sizeof(float);
    if (b) memcpy(p + off, outs[i].data, b);
    off += b;
    rep->out_ndim[i] = outs[i].ndim;
    memcpy(rep->out_dims[i], outs[i].dims, sizeof outs[i].dims);
  }
  rep->n_outs = n;
  rep->out_bytes = total;
  return 0;
}

static void *parent_watch(void *p) {
  pid_t parent = *(pid_t *)p;
  for (;;) {
    usleep(100 * 1000);
    if (getppid() != parent) _exit(4);
  }
  return NULL;
}

/* The watcher ends with the worker: every exit path returns from main, so
 * atexit stops and joins it and no thread of ours outlives the worker's
 * main (usleep is a cancellation point). */
static pthread_t g_watcher;
static void stop_parent_watch(void) {
  pthread_cancel(g_watcher);
  pthread_join(g_watcher, NULL);
}

int gg_guard_worker_main(int argc, char **argv) {
  int sock = -1, shm = -1, cleanup = 5;
  const char *spec = NULL, *runner = "engine", *runner_arg = NULL;
  uint64_t budget = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      worker_usage();
      return 0;
    }
    if (!v) {
      fprintf(stderr, "gpuguard worker: %s needs a value\n", a);
      return 2;
    }
    i++;
    if (!strcmp(a, "--fd"))
      sock = atoi(v);
    else if (!strcmp(a, "--shm"))
      shm = atoi(v);
    else if (!strcmp(a, "--device"))
      spec = v;
    else if (!strcmp(a, "--runner"))
      runner = v;
    else if (!strcmp(a, "--runner-arg"))
      runner_arg = v;
    else if (!strcmp(a, "--budget"))
      budget = strtoull(v, NULL, 10);
    else if (!strcmp(a, "--cleanup-every"))
      cleanup = atoi(v);
    else if (!strcmp(a, "--log-level")) {
      gg_log_level lv;
      if (gg_log_level_parse(v, &lv) == 0) gg_log_set_level(lv);
    } else {
      fprintf(stderr, "gpuguard worker: unknown option '%s'\n", a);
      worker_usage();
      return 2;
    }
  }
  if (sock < 0 || shm < 0 || !spec) {
    worker_usage();
    return 2;
  }
  /* Die with the supervisor: a worker must never outlive it, even while a
   * kernel hangs. (PR_SET_PDEATHSIG would fire when the *thread* that forked
   * us exits, which in a threaded server is any time, so: a watcher.) */
  static pid_t parent;
  parent = getppid();
  if (parent == 1) return 3;
  if (pthread_create(&g_watcher, NULL, parent_watch, &parent) == 0) atexit(stop_parent_watch);

  gg__wrep rep;
  shm_view view = {NULL, 0};
  memset(&rep, 0, sizeof rep);
  rep.op = GG__OP_HELLO;
  gg__host_config hc = {spec, runner, runner_arg, budget, cleanup};
  gg__host *h = NULL;
  /* HELLO says the device is open; the supervisor then asks for the
   * validation kernel under the run watchdog (a hung kernel there must not
   * get the longer start-up allowance). */
  rep.rc = gg__host_open(&hc, &h, rep.reason, sizeof rep.reason);
  if (rep.rc == 0) gg__host_stats(h, &rep.stats);
  if (send_rep(sock, &rep) || rep.rc) {
    gg__host_close(h, NULL);
    return rep.rc ? 1 : 3;
  }
  for (;;) {
    gg__wreq req;
    ssize_t n = recv(sock, &req, sizeof req, 0);
    if (n == 0) break; /* supervisor closed */
    if (n < 0) {
      if (errno == EINTR) continue;
      break;
    }
    memset(&rep, 0, sizeof rep);
    rep.op = req.op;
    rep.id = req.id;
    if (n != (ssize_t)sizeof req || req.magic != GG__WMAGIC) {
      rep.rc = GG_EPARSE;
      snprintf(rep.reason, sizeof rep.reason, "malformed request (%zd bytes)", n);
      send_rep(sock, &rep);
      continue;
    }
    req.model[sizeof req.model - 1] = 0;
    gg_gtensor in = {.ndim = req.ndim};
    if (req.ndim > 0 && req.ndim <= GG_GUARD_MAX_DIMS) memcpy(in.dims, req.dims, sizeof in.dims);
    int quit = 0;
    switch (req.op) {
    case GG__OP_VALIDATE:
      rep.rc = gg__host_validate(h, &rep.val);
      if (rep.rc) snprintf(rep.reason, sizeof rep.reason, "%s", rep.val.reason);
      break;
    case GG__OP_LOAD: rep.rc = gg__host_load(h, req.model, &rep.value); break;
    case GG__OP_WARMUP: rep.rc = gg__host_warmup(h, req.model); break;
    case GG__OP_PEAK: rep.rc = gg__host_peak(h, req.model, &in, &rep.value); break;
    case GG__OP_RUN: {
      size_t cnt = gg_gtensor_count(&in);
      if (cnt == 0 || cnt * sizeof(float) != req.in_bytes) {
        rep.rc = GG_EINVAL;
        snprintf(rep.reason, sizeof rep.reason, "input shape and byte count disagree");
        break;
      }
      /* The input is read in place: outputs go to the runner's own
       * buffers and are packed over it only after the run. */
      if ((rep.rc = view_need(shm, &view, req.in_bytes))) break;
      in.data = (float *)view.p;
      gg_gtensor outs[GG_GUARD_MAX_OUTPUTS];
      int nouts = 0;
      rep.rc = gg__host_run(h, req.model, &in, outs, &nouts);
      if (rep.rc == 0) rep.rc = pack_outputs(shm, &view, outs, nouts, &rep);
      rep.n_ops_be = h->n_last_ops;
      memcpy(rep.ops_be, h->last_ops, sizeof rep.ops_be);
      for (int i = 0; i < nouts; i++)
        gg_gtensor_release(&outs[i]);
      break;
    }
    case GG__OP_UNLOAD: rep.rc = gg__host_unload(h, req.model); break;
    case GG__OP_TRIM: rep.rc = gg__host_trim(h, &rep.value); break;
    case GG__OP_QUIT: quit = 1; break;
    default: rep.rc = GG_EINVAL; break;
    }
    if (rep.rc && !rep.reason[0])
      snprintf(rep.reason, sizeof rep.reason, "%s", gg_strerror(rep.rc));
    if (quit) {
      gg__host_close(h, &rep.value);
      h = NULL;
      rep.stats.leaked_bytes = rep.value;
      send_rep(sock, &rep);
      return 0;
    }
    gg__host_stats(h, &rep.stats);
    if (send_rep(sock, &rep)) break;
  }
  gg__host_close(h, NULL);
  return 0;
}

/* ---- supervisor side ---------------------------------------------------- */

int gg__exec_alive(const gg__exec *e) {
  return e->isolated ? e->pid > 0 : e->host != NULL;
}
int gg__exec_pid(const gg__exec *e) {
  return e->isolated ? (int)e->pid : 0;
}

static void reap(gg__exec *e, int force) {
  if (e->pid <= 0) return;
  if (force) kill(e->pid, SIGKILL);
  int status = 0;
  /* A graceful exit gets 2 s; then it is killed. */
  for (int i = 0; i < 200; i++) {
    pid_t r = waitpid(e->pid, &status, WNOHANG);
    if (r == e->pid || (r < 0 && errno == ECHILD)) goto done;
    usleep(10000);
  }
  kill(e->pid, SIGKILL);
  waitpid(e->pid, &status, 0);
done:
  e->pid = 0;
  if (e->sock >= 0) close(e->sock);
  if (e->shm >= 0) close(e->shm);
  e->sock = e->shm = -1;
  view_drop(&e->map);
}

/* Builds the child's environment before fork (no allocation after fork).
 * GPUGUARD_FAULTS is passed only when the spec allows faults from the
 * environment, i.e. on a worker's first start (see guard.c). */
static char **child_env(int keep_faults) {
  size_t n = 0;
  while (environ[n])
    n++;
  char **env = calloc(n + 1, sizeof *env);
  if (!env) return NULL;
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    if (!keep_faults && !strncmp(environ[i], "GPUGUARD_FAULTS=", 16)) continue;
    env[o++] = environ[i];
  }
  return env;
}

static int spawn(gg__exec *e, int keep_env_faults, char *err, size_t errlen) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
    snprintf(err, errlen, "socketpair: %s", strerror(errno));
    return GG_EOUT_OF_RESOURCES;
  }
  int shm = memfd_create("gpuguard-tensors", MFD_CLOEXEC);
  if (shm < 0) {
    snprintf(err, errlen, "memfd_create: %s", strerror(errno));
    close(sv[0]);
    close(sv[1]);
    return GG_EOUT_OF_RESOURCES;
  }
  char fdbuf[16], shmbuf[16], budbuf[32], cbuf[16];
  snprintf(fdbuf, sizeof fdbuf, "%d", WORKER_SOCK_FD);
  snprintf(shmbuf, sizeof shmbuf, "%d", WORKER_SHM_FD);
  snprintf(budbuf, sizeof budbuf, "%llu", (unsigned long long)e->hcfg.budget);
  snprintf(cbuf, sizeof cbuf, "%d", e->hcfg.cleanup_every);
  char *argv[24];
  int a = 0;
  argv[a++] = (char *)e->exe;
  argv[a++] = "worker";
  argv[a++] = "--fd";
  argv[a++] = fdbuf;
  argv[a++] = "--shm";
  argv[a++] = shmbuf;
  argv[a++] = "--device";
  argv[a++] = e->spec;
  argv[a++] = "--runner";
  argv[a++] = e->runner;
  argv[a++] = "--budget";
  argv[a++] = budbuf;
  argv[a++] = "--cleanup-every";
  argv[a++] = cbuf;
  argv[a++] = "--log-level";
  argv[a++] = (char *)gg_log_level_name(gg_log_get_level());
  if (e->runner_arg[0]) {
    argv[a++] = "--runner-arg";
    argv[a++] = e->runner_arg;
  }
  argv[a] = NULL;
  char **env = child_env(keep_env_faults);
  if (!env) {
    close(sv[0]);
    close(sv[1]);
    close(shm);
    return GG_ENOMEM;
  }
  pid_t pid = fork();
  if (pid < 0) {
    snprintf(err, errlen, "fork: %s", strerror(errno));
    free(env);
    close(sv[0]);
    close(sv[1]);
    close(shm);
    return GG_EOUT_OF_RESOURCES;
  }
  if (pid == 0) {
    /* Child: only async-signal-safe calls until exec. Move the two fds to
     * 3 and 4 (dup2 clears close-on-exec), close everything else. */
    int s = sv[1], m = shm;
    if (s == WORKER_SHM_FD) {
      s = fcntl(s, F_DUPFD_CLOEXEC, 10);
    }
    if (m == WORKER_SOCK_FD) {
      m = fcntl(m, F_DUPFD_CLOEXEC, 10);
    }
    if (s < 0 || m < 0) _exit(127);
    if (s == WORKER_SOCK_FD)
      fcntl(s, F_SETFD, 0);
    else if (dup2(s, WORKER_SOCK_FD) < 0)
      _exit(127);
    if (m == WORKER_SHM_FD)
      fcntl(m, F_SETFD, 0);
    else if (dup2(m, WORKER_SHM_FD) < 0)
      _exit(127);
    for (int fd = WORKER_SHM_FD + 1; fd < 1024; fd++) {
      int fl = fcntl(fd, F_GETFD);
      if (fl >= 0 && !(fl & FD_CLOEXEC)) close(fd);
    }
    execve(e->exe, argv, env);
    _exit(127);
  }
  free(env);
  close(sv[1]);
  e->pid = pid;
  e->sock = sv[0];
  e->shm = shm;
  return 0;
}

#define CANCEL_POLL_MS 100

/* Waits for the reply to request `id`. On watchdog expiry the worker is
 * killed and GG_ETIMEOUT returned; on EOF it is reaped, GG_EDEVICE_LOST. */
static int await(gg__exec *e, uint64_t id, int timeout_ms, gg__wrep *rep, char *err,
                 size_t errlen) {
  int64_t deadline = gg__mono_ms() + timeout_ms;
  for (;;) {
    int64_t left = deadline - gg__mono_ms();
    if (left < 0) left = 0;
    /* Wake up now and then to see whether the guard is closing: a switch
     * preparing a hung device must not hold its shutdown for a watchdog. */
    int64_t slice = e->cancel && left > CANCEL_POLL_MS ? CANCEL_POLL_MS : left;
    struct pollfd pfd = {e->sock, POLLIN, 0};
    int pr = poll(&pfd, 1, (int)slice);
    if (pr < 0 && errno == EINTR) continue;
    if (pr == 0 && slice < left) {
      if (!atomic_load(e->cancel)) continue;
      snprintf(err, errlen, "canceled: the guard is shutting down");
      reap(e, 1);
      e->dead_reason = GG_ECANCELED;
      return GG_ECANCELED;
    }
    if (pr == 0) {
      GG_ERROR("GPU", "worker %d on %s missed its %d ms watchdog: killing it", (int)e->pid, e->spec,
               timeout_ms);
      snprintf(err, errlen, "watchdog: no reply from the %s worker within %d ms (hung kernel?)",
               e->spec, timeout_ms);
      reap(e, 1);
      e->dead_reason = GG_ETIMEOUT;
      return GG_ETIMEOUT;
    }
    ssize_t n = recv(e->sock, rep, sizeof *rep, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n == (ssize_t)sizeof *rep && rep->magic == GG__WMAGIC) {
      if (rep->id != id) continue; /* a stale reply */
      rep->reason[sizeof rep->reason - 1] = 0;
      e->stats = rep->stats;
      if (rep->rc) snprintf(err, errlen, "%s", rep->reason);
      return rep->rc;
    }
    /* EOF or garbage: the worker is gone. */
    pid_t pid = e->pid;
    int status = 0;
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    e->pid = 0;
    close(e->sock);
    close(e->shm);
    e->sock = e->shm = -1;
    view_drop(&e->map);
    if (WIFSIGNALED(status))
      snprintf(err, errlen, "the %s worker (pid %d) died with signal %d", e->spec, (int)pid,
               WTERMSIG(status));
    else
      snprintf(err, errlen, "the %s worker (pid %d) exited with status %d", e->spec, (int)pid,
               WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    GG_ERROR("GPU", "%s", err);
    e->dead_reason = GG_EDEVICE_LOST;
    return GG_EDEVICE_LOST;
  }
}

static int call(gg__exec *e, gg__wreq *req, int timeout_ms, gg__wrep *rep, char *err,
                size_t errlen) {
  if (e->pid <= 0) {
    snprintf(err, errlen, "the %s worker is not running", e->spec);
    return GG_EDEVICE_LOST;
  }
  req->magic = GG__WMAGIC;
  req->id = ++e->next_id;
  ssize_t n = send(e->sock, req, sizeof *req, MSG_NOSIGNAL);
  if (n != (ssize_t)sizeof *req) {
    /* Reading the EOF reaps it and explains why. */
    return await(e, req->id, 100, rep, err, errlen);
  }
  return await(e, req->id, timeout_ms, rep, err, errlen);
}

static void req_init(gg__wreq *r, int op, const char *model) {
  memset(r, 0, sizeof *r);
  r->op = (uint32_t)op;
  if (model) snprintf(r->model, sizeof r->model, "%s", model);
}

/* Start = open (exec + driver initialisation: load_timeout_ms) then the
 * validation kernel (a kernel like any other: watchdog_ms). */
int gg__exec_start(gg__exec *e, gg_validation *v, char *err, size_t errlen) {
  memset(v, 0, sizeof *v);
  e->dead_reason = 0;
  int rc;
  if (!e->isolated) {
    rc = gg__host_open(&e->hcfg, &e->host, err, errlen);
  } else if ((rc = spawn(e, e->env_faults, err, errlen)) == 0) {
    gg__wrep rep;
    memset(&rep, 0, sizeof rep);
    rc = await(e, 0, e->load_timeout_ms, &rep, err, errlen);
  }
  if (rc == 0) {
    rc = gg__exec_validate(e, v);
    if (rc) snprintf(err, errlen, "%s", v->reason);
  }
  if (rc && e->isolated && e->pid > 0) reap(e, 1);
  return rc;
}

void gg__exec_stop(gg__exec *e, uint64_t *leaked) {
  if (leaked) *leaked = 0;
  if (!e->isolated) {
    int had = e->host != NULL;
    gg__host_close(e->host, leaked);
    e->host = NULL;
#ifdef __GLIBC__
    /* An in-process device's models were loaded in whichever thread started
     * it; glibc keeps what they freed in that thread's arena. Give the free
     * pages back now, so that switching back and forth does not leave one
     * model's worth of resident memory behind per thread (docs/resilience.md,
     * "Memory across switches"). */
    if (had) malloc_trim(0);
#endif
    return;
  }
  if (e->pid <= 0) return;
  gg__wreq req;
  gg__wrep rep;
  char err[256];
  req_init(&req, GG__OP_QUIT, NULL);
  int rc = call(e, &req, e->watchdog_ms, &rep, err, sizeof err);
  if (rc == 0 && leaked) *leaked = rep.value;
  reap(e, rc != 0);
}

int gg__exec_validate(gg__exec *e, gg_validation *v) {
  memset(v, 0, sizeof *v);
  if (!e->isolated) {
    int rc = gg__host_validate(e->host, v);
    gg__host_stats(e->host, &e->stats);
    return rc;
  }
  gg__wreq req;
  gg__wrep rep;
  char err[256];
  memset(&rep, 0, sizeof rep);
  req_init(&req, GG__OP_VALIDATE, NULL);
  int rc = call(e, &req, e->watchdog_ms, &rep, err, sizeof err);
  if (rep.op == GG__OP_VALIDATE && rep.magic == GG__WMAGIC) *v = rep.val;
  if (rc && !v->reason[0]) {
    v->error = rc;
    snprintf(v->reason, sizeof v->reason, "%s", err);
  }
  return rc;
}

static int simple(gg__exec *e, int op, const char *model, int timeout_ms, uint64_t *value,
                  char *err, size_t errlen) {
  gg__wreq req;
  gg__wrep rep;
  req_init(&req, op, model);
  int rc = call(e, &req, timeout_ms, &rep, err, errlen);
  if (rc == 0 && value) *value = rep.value;
  return rc;
}

int gg__exec_load(gg__exec *e, const char *model, uint64_t *weights, char *err, size_t errlen) {
  if (!e->isolated) {
    int rc = gg__host_load(e->host, model, weights);
    gg__host_stats(e->host, &e->stats);
    if (rc) snprintf(err, errlen, "%s", gg_strerror(rc));
    return rc;
  }
  return simple(e, GG__OP_LOAD, model, e->load_timeout_ms, weights, err, errlen);
}

/* How long a warm-up may take. On a device whose runtime compiles kernels at
 * their first use (OpenCL: our program, CLBlast's kernels, PoCL's per-kernel
 * specialisation; CUDA: PTX JIT) the first run of a model compiles: with
 * cold caches (a fresh CI machine) PoCL + CLBlast take ~20 s, twice the run
 * watchdog, so the worker would be killed, start cold again and never warm
 * up. Such a warm-up gets the load allowance, like the model load. */
static int warmup_timeout_ms(const gg__exec *e) {
  int compiles = !strncmp(e->spec, "opencl", 6) || !strncmp(e->spec, "cuda", 4);
  return compiles && e->load_timeout_ms > e->watchdog_ms ? e->load_timeout_ms : e->watchdog_ms;
}

int gg__exec_warmup(gg__exec *e, const char *model, char *err, size_t errlen) {
  if (!e->isolated) {
    int rc = gg__host_warmup(e->host, model);
    gg__host_stats(e->host, &e->stats);
    if (rc) snprintf(err, errlen, "%s", gg_strerror(rc));
    return rc;
  }
  return simple(e, GG__OP_WARMUP, model, warmup_timeout_ms(e), NULL, err, errlen);
}

int gg__exec_peak(gg__exec *e, const char *model, const gg_gtensor *shape, uint64_t *peak) {
  if (!e->isolated) {
    int rc = gg__host_peak(e->host, model, shape, peak);
    gg__host_stats(e->host, &e->stats); /* planning may prepare a session on the device */
    return rc;
  }
  gg__wreq req;
  gg__wrep rep;
  char err[256];
  req_init(&req, GG__OP_PEAK, model);
  req.ndim = shape->ndim;
  memcpy(req.dims, shape->dims, sizeof req.dims);
  int rc = call(e, &req, e->watchdog_ms, &rep, err, sizeof err);
  if (rc == 0) *peak = rep.value;
  return rc;
}

int gg__exec_unload(gg__exec *e, const char *model) {
  char err[256];
  if (!e->isolated) {
    int rc = gg__host_unload(e->host, model);
    gg__host_stats(e->host, &e->stats);
    return rc;
  }
  return simple(e, GG__OP_UNLOAD, model, e->watchdog_ms, NULL, err, sizeof err);
}

int gg__exec_trim(gg__exec *e, uint64_t *released) {
  char err[256];
  if (!e->isolated) {
    int rc = gg__host_trim(e->host, released);
    gg__host_stats(e->host, &e->stats);
    return rc;
  }
  return simple(e, GG__OP_TRIM, NULL, e->watchdog_ms, released, err, sizeof err);
}

int gg__exec_run(gg__exec *e, const char *model, const gg_gtensor *in, gg_guard_result *res,
                 char *err, size_t errlen) {
  size_t in_bytes = gg_gtensor_count(in) * sizeof(float);
  if (!e->isolated) {
    gg_gtensor outs[GG_GUARD_MAX_OUTPUTS];
    int n = 0;
    int rc = gg__host_run(e->host, model, in, outs, &n);
    gg__host_stats(e->host, &e->stats);
    if (rc) {
      snprintf(err, errlen, "%s", gg_strerror(rc));
      return rc;
    }
    for (int i = 0; i < n; i++)
      res->outputs[i] = outs[i];
    res->n_outputs = n;
    res->n_backends = e->host->n_last_ops;
    memcpy(res->ops_by_backend, e->host->last_ops, sizeof res->ops_by_backend);
    return 0;
  }
  if (e->pid <= 0) {
    snprintf(err, errlen, "the %s worker is not running", e->spec);
    return GG_EDEVICE_LOST;
  }
  shm_view *v = &e->map;
  int rc = view_need(e->shm, v, in_bytes);
  if (rc) return rc;
  memcpy(v->p, in->data, in_bytes);
  gg__wreq req;
  gg__wrep rep;
  req_init(&req, GG__OP_RUN, model);
  req.ndim = in->ndim;
  memcpy(req.dims, in->dims, sizeof req.dims);
  req.in_bytes = in_bytes;
  rc = call(e, &req, e->watchdog_ms, &rep, err, errlen);
  if (rc) return rc;
  if (rep.n_outs < 0 || rep.n_outs > GG_GUARD_MAX_OUTPUTS) return GG_EPARSE;
  if (rep.n_ops_be < 0 || rep.n_ops_be > GG_GUARD_MAX_BACKENDS) return GG_EPARSE;
  res->n_backends = rep.n_ops_be;
  memcpy(res->ops_by_backend, rep.ops_be, sizeof res->ops_by_backend);
  for (int i = 0; i < GG_GUARD_MAX_BACKENDS; i++)
    res->ops_by_backend[i].name[sizeof res->ops_by_backend[i].name - 1] = 0;
  if (rep.out_bytes && (rc = view_need(e->shm, v, rep.out_bytes))) return rc;
  const char *q = v->p;
  uint64_t off = 0;
  for (int i = 0; i < rep.n_outs; i++) {
    gg_gtensor *t = &res->outputs[i];
    memset(t, 0, sizeof *t);
    t->ndim = rep.out_ndim[i];
    memcpy(t->dims, rep.out_dims[i], sizeof t->dims);
    size_t b = gg_gtensor_count(t) * sizeof(float);
    if (off + b > rep.out_bytes || !(t->data = malloc(b ? b : 1))) {
      rc = b ? GG_ENOMEM : GG_EPARSE;
      break;
    }
    if (b) memcpy(t->data, q + off, b);
    off += b;
    res->n_outputs = i + 1;
  }
  if (rc) {
    for (int i = 0; i < res->n_outputs; i++)
      gg_gtensor_release(&res->outputs[i]);
    res->n_outputs = 0;
  }
  return rc;
}
