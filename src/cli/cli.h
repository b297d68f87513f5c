/* gpuguard command-line subcommands. */
#ifndef GG_CLI_H
#define GG_CLI_H

/* Each subcommand gets argv with argv[0] = its own name. Returns the process
 * exit status. */
typedef struct gg_cli_cmd {
  const char *name;
  const char *summary;
  int (*run)(int argc, char **argv);
} gg_cli_cmd;

int gg_cli_serve(int argc, char **argv);
int gg_cli_version(int argc, char **argv);
/* gpuguard infer: one image through one model (src/cli/infer.c). */
int gg_cli_infer(int argc, char **argv);
int gg_cli_stress(int argc, char **argv);
int gg_cli_doctor(int argc, char **argv);
/* gpuguard bench: models on the CPU, ours vs tfjs-wasm (src/cli/bench.c). */
int gg_cli_bench(int argc, char **argv);
/* gpuguard check-backend: a device's backend vs the CPU backend (src/cli/check.c). */
int gg_cli_check_backend(int argc, char **argv);
/* For commands whose layer has not landed: says so and exits 2. */
int gg_cli_unavailable(const char *name, const char *what, int argc, char **argv);

#endif
