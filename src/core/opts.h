/* Table-driven command-line options: defaults, then GPUGUARD_* environment
 * variables, then flags (flags win). Internal to gpuguard's CLI. */
#ifndef GG_CORE_OPTS_H
#define GG_CORE_OPTS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum gg_opt_type {
  GG_OPT_STR,    /* const char *; points into argv, environ or the default */
  GG_OPT_INT,    /* int */
  GG_OPT_SIZE,   /* uint64_t bytes, accepts "3.5G" */
  GG_OPT_BOOL,   /* int 0/1; "--name", "--no-name", "--name=false" */
  GG_OPT_DOUBLE, /* double */
  GG_OPT_TYPE_COUNT
} gg_opt_type;

typedef struct gg_opt {
  const char *name; /* long flag without dashes: "port" */
  const char *env;  /* environment variable or NULL */
  gg_opt_type type;
  size_t offset;   /* offsetof(config, field) */
  const char *def; /* default, as text; NULL means empty/0 */
  const char *help;
  const char *metavar; /* shown in help, e.g. "N", "BYTES" */
} gg_opt;

/* Fills cfg from defaults, environment, then argv[1..argc-1]. Stops at "--"
 * or the first non-option and stores its index in *first_positional (argc if
 * none). Returns 0, 1 if --help/-h was given, or a negative GG_E* code with a
 * message in err (e.g. "--port: expected an integer, got 'x'"). */
int gg_opts_parse(const gg_opt *opts, void *cfg, int argc, char **argv, int *first_positional,
                  char *err, size_t errlen);

/* Prints each option with its environment variable and default. */
void gg_opts_print_help(FILE *out, const gg_opt *opts);

/* The command-line front of a subcommand that takes no positional
 * arguments: parses like gg_opts_parse; on --help prints `usage` then the
 * option table to stdout and returns 0; on a bad flag or a stray argument
 * prints "gpuguard CMD: ..." to stderr and returns 2. Returns -1 when the
 * command should go on. */
int gg_opts_cli(const char *cmd, const char *usage, const gg_opt *opts, void *cfg, int argc,
                char **argv);

#endif
