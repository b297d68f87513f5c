/* Device enumeration in a child process, so a long-running process (the
 * server) never loads a GPU runtime into itself.
 *
 * Why: enumerating OpenCL platforms initialises every ICD in the calling
 * process, and a runtime stays there for good. PoCL starts worker threads and
 * pulls in LLVM, which replaces the calling thread's alternate signal stack
 * with a malloc'd one; an HTTP thread that enumerated then crashed the
 * sanitizer build when it exited at shutdown ("failed to deallocate ... unable
 * to unmap"), and a broken driver that faults while enumerating would take the
 * whole service down. The GPU work itself already runs in worker processes;
 * this puts the device list there too. */
#include "gpuguard/core.h"
#include "gpuguard/error.h"
#include "gpuguard/guard.h"
#include "gpuguard/log.h"
#include "guard/guard-impl.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* What the child writes to its stdout: this header, then count records. The
 * parent and the child are the same build, so the record is the struct; the
 * header's size check refuses a mismatched binary instead of misreading it. */
typedef struct enum_header {
  uint32_t magic;
  uint32_t record_size;
  uint32_t count;
  int32_t rc;
} enum_header;

#define ENUM_MAGIC 0x67676456u /* "Vdgg" */
#define ENUM_MAX_DEVICES 256u

static int write_all(int fd, const void *p, size_t n) {
  const char *c = p;
  while (n) {
    ssize_t w = write(fd, c, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return GG_EIO;
    c += w;
    n -= (size_t)w;
  }
  return 0;
}

int gg_guard_enumerate_child(int fd) {
  gg_device_info *list = NULL;
  size_t n = 0;
  enum_header h = {ENUM_MAGIC, (uint32_t)sizeof(gg_device_info), 0, 0};
  h.rc = gg_device_enumerate(&list, &n);
  if (h.rc == 0) h.count = (uint32_t)(n < ENUM_MAX_DEVICES ? n : ENUM_MAX_DEVICES);
  int rc = write_all(fd, &h, sizeof h);
  if (!rc && h.count) rc = write_all(fd, list, h.count * sizeof *list);
  free(list);
  return rc ? rc : h.rc;
}

/* Reads exactly n bytes before the deadline; GG_ETIMEOUT / GG_EIO otherwise. */
static int read_until(int fd, void *p, size_t n, uint64_t deadline_ns) {
  char *c = p;
  while (n) {
    uint64_t now = gg_now_ns();
    if (now >= deadline_ns) return GG_ETIMEOUT;
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    int pr = poll(&pfd, 1, (int)((deadline_ns - now) / 1000000u) + 1);
    if (pr < 0 && errno == EINTR) continue;
    if (pr <= 0) return pr == 0 ? GG_ETIMEOUT : GG_EIO;
    ssize_t r = read(fd, c, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return GG_EIO;
    c += r;
    n -= (size_t)r;
  }
  return 0;
}

int gg_guard_enumerate_isolated(const char *exe, int timeout_ms, gg_device_info **out,
                                size_t *count) {
  if (!out || !count) return GG_EINVAL;
  *out = NULL;
  *count = 0;
  char self[1024];
  if (!exe || !*exe) exe = getenv("GPUGUARD_WORKER_EXE");
  if (!exe || !*exe) {
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) return GG_EIO;
    self[n] = 0;
    exe = self;
  }
  if (timeout_ms <= 0) timeout_ms = 10000;
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return GG_EIO;
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, p[1], STDOUT_FILENO);
  char *argv[] = {"gpuguard", "worker", "--enumerate", NULL};
  pid_t pid = -1;
  int sr = posix_spawn(&pid, exe, &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  close(p[1]);
  if (sr != 0) {
    close(p[0]);
    GG_ERROR("GPU", "cannot start '%s worker --enumerate' to list devices: %s", exe,
             strerror(sr));
    return GG_EIO;
  }
  uint64_t deadline = gg_now_ns() + (uint64_t)timeout_ms * 1000000u;
  enum_header h;
  gg_device_info *list = NULL;
  int rc = read_until(p[0], &h, sizeof h, deadline);
  if (!rc && (h.magic != ENUM_MAGIC || h.record_size != sizeof(gg_device_info) ||
              h.count > ENUM_MAX_DEVICES))
    rc = GG_EPARSE;
  if (!rc && h.rc) rc = h.rc;
  if (!rc && h.count) {
    list = calloc(h.count, sizeof *list);
    rc = list ? read_until(p[0], list, h.count * sizeof *list, deadline) : GG_ENOMEM;
  }
  close(p[0]);
  if (rc == GG_ETIMEOUT) kill(pid, SIGKILL);
  int st = 0;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  if (rc) {
    free(list);
    if (rc == GG_ETIMEOUT)
      GG_ERROR("GPU", "listing devices took longer than %d ms (a driver hangs while "
               "enumerating); child killed", timeout_ms);
    else if (WIFSIGNALED(st))
      GG_ERROR("GPU", "listing devices crashed the child process (signal %d): a driver faults "
               "while enumerating; run gpuguard doctor", WTERMSIG(st));
    else
      GG_ERROR("GPU", "listing devices failed: %s (%s)", gg_strerror(rc), gg_err_name(rc));
    return rc;
  }
  for (uint32_t i = 0; i < h.count; i++) { /* the child's strings, bounded here */
    list[i].name[sizeof list[i].name - 1] = 0;
    list[i].description[sizeof list[i].description - 1] = 0;
    list[i].vendor[sizeof list[i].vendor - 1] = 0;
    list[i].driver_version[sizeof list[i].driver_version - 1] = 0;
  }
  *out = list;
  *count = h.count;
  return 0;
}
