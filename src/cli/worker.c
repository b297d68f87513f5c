/* `gpuguard worker`: hidden subcommand the resilience layer starts to run
 * one GPU device in its own process (see src/guard/exec.c). */
#include "cli/cli.h"
#include "gpuguard/guard.h"

#include <string.h>
#include <unistd.h>

int gg_cli_worker(int argc, char **argv);
int gg_cli_worker(int argc, char **argv) {
  /* `--enumerate`: write the device list to stdout and exit (see
   * gg_guard_enumerate_isolated). */
  if (argc == 2 && !strcmp(argv[1], "--enumerate")) return gg_guard_enumerate_child(STDOUT_FILENO) ? 1 : 0;
  return gg_guard_worker_main(argc, argv);
}
