/* bench-upscale: one tiled ESRGAN upscale through the guard (issue 15's
 * "2048x2048 x4 upscale completes on sim:mem=512M and on the CPU with the
 * peak memory the plan predicted"). Prints the tile choice, tiles, time, and
 * the planned peak against what was measured: the engine's own count for the
 * tile's session (planning), the guard's planned peak, and on devices whose
 * engine computes there (sim) the pool bytes the tiles took.
 *
 * Usage: bench-upscale [--device SPEC] [--model esrgan-slim] [--scale 4]
 *                      [--size 2048] [--tile N] [--exe GPUGUARD_BIN]
 *                      [--threads N] [--max-tile N]
 * Defaults: sim:mem=512M, esrgan-slim, x4, 2048x2048, tile chosen by the plan,
 * the worker binary ./gpuguard next to this one, the engine's 1 thread, the
 * plan's largest candidate 512 (--max-tile 1024 lets a 1024 image run whole).
 * bench/bench-upscale.sh runs it on the cpu device against TF.js. */
#include "gpuguard/core.h"
#include "gpuguard/error.h"
#include "gpuguard/guard.h"
#include "gpuguard/log.h"
#include "gpuguard/memory.h"
#include "gpuguard/upscale.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

static void on_progress(void *user, int step, int total) {
  (void)user;
  if (step == total || step % 8 == 0) fprintf(stderr, "  step %d/%d\n", step, total);
}

int main(int argc, char **argv) {
  const char *device = "sim:mem=512M", *model = "esrgan-slim", *exe = NULL;
  int scale = 4, size = 2048, tile = 0, threads = 1, max_tile = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--device"))
      device = argv[i + 1];
    else if (!strcmp(argv[i], "--model"))
      model = argv[i + 1];
    else if (!strcmp(argv[i], "--scale"))
      scale = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--size"))
      size = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--tile"))
      tile = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--threads"))
      threads = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--max-tile"))
      max_tile = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--exe"))
      exe = argv[i + 1];
    else {
      fprintf(stderr, "unknown option %s\n", argv[i]);
      return 2;
    }
  }
  char exe_buf[1100];
  if (!exe) {
    char self[1024];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    self[n > 0 ? n : 0] = 0;
    char *slash = strrchr(self, '/');
    if (slash) *slash = 0;
    snprintf(exe_buf, sizeof exe_buf, "%s/gpuguard", self);
    exe = exe_buf;
  }
  gg_log_set_level(GG_LOG_WARN);
  gg_guard_config cfg;
  gg_guard_config_init(&cfg);
  cfg.devices[0] = device;
  cfg.n_devices = 1;
  cfg.worker_exe = exe;
  cfg.retries = 0;
  char runner_arg[32];
  snprintf(runner_arg, sizeof runner_arg, "threads=%d", threads);
  cfg.runner_arg = runner_arg;
  gg_guard *g = NULL;
  int rc = gg_guard_new(&cfg, &g);
  if (rc) {
    fprintf(stderr, "guard: %s\n", gg_strerror(rc));
    return 1;
  }
  /* A textured picture: waves and noise. */
  size_t nb = (size_t)size * size * 3;
  uint8_t *img = malloc(nb);
  uint32_t r = 1;
  for (int y = 0; y < size; y++)
    for (int x = 0; x < size; x++)
      for (int c = 0; c < 3; c++) {
        r = r * 1103515245u + 12345u;
        double v = 128 + 70 * sin(x * 0.05 + c) * cos(y * 0.031) + (double)((r >> 16) % 32) - 16;
        img[((size_t)y * size + x) * 3 + c] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
      }
  char path[1024], err[512] = "";
  if ((rc = gg_upscale_model_path(model, scale, path, sizeof path, NULL, err, sizeof err)) ||
      (rc = gg_guard_load(g, path))) {
    fprintf(stderr, "model: %s %s\n", err, gg_strerror(rc));
    return 1;
  }
  gg_guard_device_status st0, st1;
  gg_guard_device_status_get(g, 0, &st0);
  gg_upscale_opts o = {.model = model, .scale = scale, .tile = tile, .max_tile = max_tile};
  gg_generator *gen = NULL;
  uint64_t t0 = gg_now_ns();
  rc = gg_upscale_new(g, &o, img, size, size, &gen, err, sizeof err);
  if (!rc) rc = gg_generator_run(gen, on_progress, NULL, err, sizeof err);
  double wall = (double)(gg_now_ns() - t0) / 1e9;
  gg_guard_device_status_get(g, 0, &st1);
  gg_upscale_info in;
  memset(&in, 0, sizeof in);
  if (gen) gg_upscale_info_get(gen, &in);
  gg_host_stats hs;
  gg_host_get_stats(&hs);
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  printf("threads           %d\n", threads);
  printf("device            %s (budget %llu, free when planned %llu)\n", device,
         (unsigned long long)in.device_budget, (unsigned long long)in.device_free);
  printf("upscale           %s x%d: %dx%d -> %dx%d: %s\n", model, scale, size, size, in.out_w,
         in.out_h, rc ? gg_err_name(rc) : "ok");
  if (rc) printf("error             %s\n", err);
  printf("candidates       ");
  for (int i = 0; i < in.n_candidates; i++)
    printf(" %d:%s(%llu)", in.candidates[i].tile, in.candidates[i].fits ? "fits" : "no",
           (unsigned long long)in.candidates[i].device_peak);
  printf("\n");
  printf("tile              %d (overlap %d), %d x %d = %d tiles, %d halvings, %d runs\n", in.tile,
         in.overlap, in.tiles_x, in.tiles_y, in.tiles, in.halvings, in.runs);
  printf("time              %.3f s wall (plan %.0f ms; steps %.3f s: min %.0f, mean %.0f, max %.0f "
         "ms)\n",
         wall, in.plan_ms, in.total_ms / 1e3, in.step_ms_min, in.step_ms_mean, in.step_ms_max);
  printf("device peak       planned %llu, engine measured %llu, guard planned %llu\n",
         (unsigned long long)in.planned_peak, (unsigned long long)in.planned_measured,
         (unsigned long long)in.guard_planned_peak);
  printf("device pool       allocated %llu -> %llu (+%llu) by the run\n",
         (unsigned long long)st0.pool_allocated, (unsigned long long)st1.pool_allocated,
         (unsigned long long)(st1.pool_allocated - st0.pool_allocated));
  printf("host              planned tile buffers + strip %llu; accounted peak %llu (result %llu); "
         "max RSS %ld KiB\n",
         (unsigned long long)in.host_bytes, (unsigned long long)hs.peak_allocated,
         (unsigned long long)in.out_w * in.out_h * 3, ru.ru_maxrss);
  gg_generator_free(gen);
  gg_guard_free(g);
  free(img);
  return rc ? 1 : 0;
}
