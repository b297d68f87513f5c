/* gpuguard: the command-line entry point and subcommand dispatch. */
#include "cli/cli.h"
#include "gpuguard/log.h"

#include <stdio.h>
#include <string.h>

static int cmd_doctor(int argc, char **argv) {
  return gg_cli_doctor(argc, argv);
}
static int cmd_infer(int argc, char **argv) {
  return gg_cli_infer(argc, argv);
}

int gg_cli_worker(int argc, char **argv); /* src/cli/worker.c */

static const gg_cli_cmd k_cmds[] = {
    {"serve", "run the HTTP inference service", gg_cli_serve},
    {"doctor", "diagnose the GPU stack and write a working environment", cmd_doctor},
    {"infer", "run one image through one model", cmd_infer},
    {"stress", "hammer a server and prove memory stays flat", gg_cli_stress},
    {"bench", "benchmark models against TensorFlow.js (wasm) or ONNX Runtime", gg_cli_bench},
    {"check-backend", "verify a device's backend against the CPU backend", gg_cli_check_backend},
    {"version", "print the version", gg_cli_version},
};

static void usage(FILE *out) {
  fprintf(out, "gpuguard - an inference server for small, fragile GPUs\n\n"
               "Usage: gpuguard <command> [options]\n\nCommands:\n");
  for (size_t i = 0; i < sizeof k_cmds / sizeof k_cmds[0]; i++)
    fprintf(out, "  %-9s %s\n", k_cmds[i].name, k_cmds[i].summary);
  fprintf(out, "\nRun 'gpuguard <command> --help' for a command's options.\n");
}

int gg_cli_unavailable(const char *name, const char *what, int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      printf("Usage: gpuguard %s [options]\n\n'%s' %s.\nIt is not part of this build yet: "
             "running it exits with status 2.\n",
             name, name, what);
      return 0;
    }
  }
  fprintf(stderr, "gpuguard %s: not part of this build yet (%s). Nothing was done.\n", name, what);
  return 2;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  const char *cmd = argv[1];
  if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
    usage(stdout);
    return 0;
  }
  if (!strcmp(cmd, "--version")) return gg_cli_version(argc - 1, argv + 1);
  /* Hidden: the supervised device worker the resilience layer starts. */
  if (!strcmp(cmd, "worker")) return gg_cli_worker(argc - 1, argv + 1);
  for (size_t i = 0; i < sizeof k_cmds / sizeof k_cmds[0]; i++) {
    if (!strcmp(cmd, k_cmds[i].name)) return k_cmds[i].run(argc - 1, argv + 1);
  }
  fprintf(stderr, "gpuguard: unknown command '%s'\n\n", cmd);
  usage(stderr);
  return 2;
}
