/* `gpuguard worker`: hidden subcommand the resilience layer starts to run
 * one GPU device in its own process (see src/guard/exec.c). */
#include "cli/cli.h"
#include "gpuguard/guard.h"

int gg_cli_worker(int argc, char **argv);
int gg_cli_worker(int argc, char **argv) {
  return gg_guard_worker_main(argc, argv);
}
