/* gpuguard doctor: diagnose the GPU stack, write a working environment,
 * explain an application's GPU failures. */
#include "doctor/doctor.h"
#include "cli/cli.h"
#include "core/opts.h"
#include "gpuguard/error.h"
#include "gpuguard/log.h"

#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct doctor_opts {
  int json;
  const char *write_env;
  const char *explain;
  uint64_t max_bytes;
  int max_lines;
  const char *root;
  int validate;
  const char *device;
  const char *faults;
  const char *seed;
  const char *models_dir;
  int timeout_s;
  const char *log_level;
} doctor_opts;

#define DO(f) offsetof(doctor_opts, f)
static const gg_opt k_doctor_opts[] = {
    {"json", NULL, GG_OPT_BOOL, DO(json), "false",
     "print the report as JSON (schema gpuguard.doctor/1, docs/doctor.md)", NULL},
    {"write-env", NULL, GG_OPT_STR, DO(write_env), "",
     "write a sourceable script with the variables that make this machine work", "FILE"},
    {"explain", NULL, GG_OPT_STR, DO(explain), "",
     "read an application log ('-' for stdin) and explain each recognised GPU failure (no "
     "machine checks)",
     "LOGFILE"},
    {"max-bytes", NULL, GG_OPT_SIZE, DO(max_bytes), "1G",
     "--explain reads at most this much of the log, and says so when it stops early", "SIZE"},
    {"max-lines", NULL, GG_OPT_INT, DO(max_lines), "10000000",
     "--explain reads at most this many lines, and says so when it stops early", "N"},
    {"root", NULL, GG_OPT_STR, DO(root), "",
     "make every filesystem probe relative to DIR (fake installations in tests)", "DIR"},
    {"validate", NULL, GG_OPT_BOOL, DO(validate), "true",
     "run each device's validation kernel (--no-validate skips it)", NULL},
    {"device", "GPUGUARD_DEVICE", GG_OPT_STR, DO(device), "",
     "also check this device, e.g. sim:mem=4560M (cpu, cuda:N, opencl:P.D are always checked)",
     "SPEC"},
    {"faults", "GPUGUARD_FAULTS", GG_OPT_STR, DO(faults), "",
     "fault spec for a sim device: KIND@N or KIND%P, KIND in oom, launch, sticky, hang", "SPEC"},
    {"seed", "GPUGUARD_SEED", GG_OPT_STR, DO(seed), "", "seed for KIND%P faults", "N"},
    {"models-dir", "GPUGUARD_MODELS_DIR", GG_OPT_STR, DO(models_dir), "",
     "model packages root (default: $GPUGUARD_CACHE/models or ~/.cache/gpuguard/models)", "DIR"},
    {"timeout", NULL, GG_OPT_INT, DO(timeout_s), "120",
     "give up (exit 2) if the checks take longer than S seconds (a hung driver)", "S"},
    {"log-level", "GPUGUARD_LOG_LEVEL", GG_OPT_STR, DO(log_level), "off",
     "library log lines on stderr: debug, info, warn, error or off", "LEVEL"},
    {0},
};

static void put_err(const char *s) {
  ssize_t w = write(STDERR_FILENO, s, strlen(s));
  (void)w;
}

/* Only async-signal-safe calls: write() and _exit(). */
static void on_alarm(int sig) {
  (void)sig;
  put_err("gpuguard doctor: the checks did not finish in time; stuck while ");
  put_err(gg_doctor_current_step());
  put_err(". A driver call (or a device kernel) is probably hung: check "
          "'dmesg | grep -i -e nvidia -e xid'. Exit 2.\n");
  _exit(2);
}

int gg_cli_doctor(int argc, char **argv) {
  doctor_opts o;
  memset(&o, 0, sizeof o);
  char err[512] = "";
  static const char usage[] =
      "Usage: gpuguard doctor [options]\n\n"
      "Checks the NVIDIA driver, /dev/nvidia*, CUDA_VISIBLE_DEVICES, the CUDA toolkit and\n"
      "its compatibility with the driver, libdevice and XLA_FLAGS, TensorFlow-era\n"
      "variables, OpenCL ICDs, memory against the bundled models, and validates every\n"
      "device. Each line is marked [ OK ], [INFO], [WARN] or [FAIL], with the cause and\n"
      "the exact fix when not OK.\n\n"
      "Exit status: 0 all good, 1 warnings only, 2 at least one failure.\n"
      "With --explain: 0 no GPU failure recognised, 1 none recognised but the log was\n"
      "longer than --max-bytes / --max-lines (the rest was not read), 2 at least one.\n"
      "A line longer than 64 KiB is classified on its first 64 KiB.\n\n";
  int rc = gg_opts_cli("doctor", usage, k_doctor_opts, &o, argc, argv);
  if (rc >= 0) return rc;
  gg_log_level lvl;
  if (gg_log_level_parse(o.log_level, &lvl) != 0) {
    fprintf(stderr,
            "gpuguard doctor: --log-level: expected debug, info, warn, error or off, "
            "got '%s'\n",
            o.log_level);
    return 2;
  }
  gg_log_set_level(lvl);

  if (o.explain[0]) {
    if (o.max_bytes < 1 || o.max_lines < 1) {
      fprintf(stderr, "gpuguard doctor --explain: --max-bytes and --max-lines must be at least "
                      "1 (they bound the work on a huge or endless log)\n");
      return 2;
    }
    gg_explain_limits lim = {o.max_bytes, (uint64_t)o.max_lines};
    gg_explain_result res;
    rc = gg_doctor_explain(o.explain, &lim, stdout, o.json, &res, err, sizeof err);
    if (rc) {
      fprintf(stderr, "gpuguard doctor --explain: %s\n", err);
      return 2;
    }
    return res.found ? 2 : res.stopped ? 1 : 0;
  }

  if (o.root[0] && access(o.root, F_OK) != 0) {
    fprintf(stderr, "gpuguard doctor: --root %s does not exist\n", o.root);
    return 2;
  }
  /* the sim device reads its fault plan from the environment */
  if (o.faults[0]) setenv("GPUGUARD_FAULTS", o.faults, 1);
  if (o.seed[0]) setenv("GPUGUARD_SEED", o.seed, 1);
  if (o.timeout_s > 0) {
    signal(SIGALRM, on_alarm);
    alarm((unsigned)o.timeout_s);
  }
  gg_doctor_opts dopts = {o.root, o.validate, o.device, o.models_dir};
  gg_doctor_report *r = NULL;
  rc = gg_doctor_run(&dopts, &r);
  alarm(0);
  if (rc) {
    fprintf(stderr, "gpuguard doctor: %s (%s)\n", gg_strerror(rc), gg_err_name(rc));
    return 2;
  }
  if (o.json) {
    char *s = gg_doctor_json(r);
    if (!s) {
      fprintf(stderr, "gpuguard doctor: out of memory building JSON\n");
      gg_doctor_report_free(r);
      return 2;
    }
    printf("%s\n", s);
    free(s);
  } else {
    gg_doctor_print_text(r, stdout);
  }
  int ex = gg_doctor_exit_status(r);
  if (o.write_env[0]) {
    rc = gg_doctor_write_env(r, o.write_env, err, sizeof err);
    if (rc) {
      fprintf(stderr, "gpuguard doctor --write-env: %s\n", err);
      ex = 2;
    } else if (!o.json) {
      printf("Wrote %zu variable(s) to %s; use it with: . %s\n", r->nenv, o.write_env, o.write_env);
    }
  }
  gg_doctor_report_free(r);
  return ex;
}
