/* gpuguard doctor: probes the GPU stack (driver, toolkit, libdevice, OpenCL,
 * memory, devices) and reports each finding with a status, a cause and an
 * exact fix; writes a sourceable environment; explains application logs.
 * Internal to gpuguard (the CLI and tests use it). */
#ifndef GG_DOCTOR_H
#define GG_DOCTOR_H

#include "gpuguard/device.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum gg_check_status {
  GG_CHECK_OK = 0,
  GG_CHECK_INFO,
  GG_CHECK_WARN,
  GG_CHECK_FAIL,
  GG_CHECK_STATUS_COUNT
} gg_check_status;

/* "ok", "info", "warn", "fail" */
const char *gg_check_status_name(gg_check_status s);

typedef struct gg_check {
  char id[64];      /* stable id: "nvidia.driver", "opencl.icd.pocl.icd", "device.cuda:0" */
  char section[16]; /* "driver", "toolkit", "libdevice", "env", "opencl", "memory", "devices" */
  gg_check_status status;
  char message[512]; /* what was found */
  char cause[512];   /* why it is a problem; "" when OK/INFO */
  char fix[512];     /* the exact fix; "" when nothing to do */
} gg_check;

/* One line of the environment --write-env produces. */
typedef struct gg_env_line {
  char name[64];
  char value[1024]; /* "" with unset=1 means "unset NAME" */
  int unset;
  char why[256];
} gg_env_line;

typedef struct gg_doctor_device {
  gg_device_info info;
  int validated; /* 1 when validation ran */
  gg_validation validation;
  int have_telemetry; /* NVML answered */
  gg_device_telemetry telemetry;
} gg_doctor_device;

typedef struct gg_doctor_icd {
  char file[256];    /* path of the .icd file (without the root prefix) */
  char library[256]; /* library it names */
  int loadable;
  char error[256];
} gg_doctor_icd;

typedef struct gg_doctor_model {
  char name[32];
  uint64_t bytes;   /* size of <name>.bin; 0 when missing */
  uint64_t planned; /* engine's planned peak (weights + arena + workspace) for one
                       request at the model's input size; 0 when it could not load */
  uint64_t weights; /* of which weights (resident while the model is loaded) */
} gg_doctor_model;

typedef struct gg_doctor_report {
  char root[512]; /* "/" or the --root directory */
  gg_check *checks;
  size_t nchecks, capchecks;
  /* facts, also emitted as JSON */
  int nvidia_pci_gpus;         /* NVIDIA display controllers on the PCI bus */
  int driver_loaded;           /* /proc/driver/nvidia/version present */
  char driver_version[64];     /* "550.54.14" or "" */
  int driver_cuda_version;     /* highest CUDA the driver supports, 12040 = 12.4; 0 unknown */
  char driver_cuda_source[32]; /* "libcuda" or "driver table" */
  int dev_nodes;               /* /dev/nvidia[0-9]* count */
  int libcuda_loaded;
  char libcuda_error[256];
  int cuda_init_rc; /* cuInit result, -1 when not called */
  int cuda_devices;
  /* the CUDA compute backend's libraries (0 / "" when not loaded or not built) */
  int cudnn_loaded, cublas_loaded;
  long cudnn_version;       /* 91300 = 9.13.0 */
  long cudnn_cuda_version;  /* the CUDA runtime cuDNN was built for, 13000 = 13.0 */
  int cublas_version;       /* 130100 = 13.1.0 */
  char cudnn_path[256], cublas_path[256];
  char toolkit_root[512];   /* "" when none */
  char toolkit_real[512];   /* symlinks resolved */
  char toolkit_version[32]; /* "13.0" */
  int toolkit_cuda_version; /* 13000 */
  char toolkit_version_source[32];
  char libdevice_path[512];
  char libdevice_data_dir[512]; /* the directory for --xla_gpu_cuda_data_dir */
  char xla_data_dir[512];       /* from XLA_FLAGS, "" when unset */
  int xla_data_dir_ok;          /* 1 when it contains nvvm/libdevice/libdevice.10.bc */
  int opencl_loader;
  unsigned opencl_platforms;
  gg_doctor_icd *icds;
  size_t nicds;
  gg_doctor_device *devices;
  size_t ndevices;
  char models_dir[512];
  gg_doctor_model models[4];
  uint64_t models_total;
  uint64_t models_planned; /* sum of models[].planned */
  uint64_t models_serve;   /* serving all four, one request at a time: every model's
                              weights + the largest request's activations + workspace */
  gg_env_line *env;
  size_t nenv, capenv;
} gg_doctor_report;

typedef struct gg_doctor_opts {
  const char *root;         /* NULL or "" for "/"; every filesystem probe is made under it */
  int validate;             /* run each device's validation kernel */
  const char *extra_device; /* also open and check this spec (e.g. "sim:mem=4560M"); may be NULL */
  const char *models_dir;   /* model packages root (as serve --models-dir); NULL:
                             * $GPUGUARD_CACHE/models or ~/.cache/gpuguard/models */
} gg_doctor_opts;

/* Runs every check. Never crashes on a broken stack; returns GG_ENOMEM only
 * when it cannot build the report. *out is owned by the caller:
 * gg_doctor_report_free(). */
int gg_doctor_run(const gg_doctor_opts *opts, gg_doctor_report **out);
void gg_doctor_report_free(gg_doctor_report *r);
/* What gg_doctor_run is doing right now ("validating cuda:0"), for a
 * watchdog that has to explain a hang. Never NULL; safe to read from a
 * signal handler (a pointer to a static buffer). */
const char *gg_doctor_current_step(void);
/* 0 all OK/INFO, 1 warnings only, 2 at least one failure. */
int gg_doctor_exit_status(const gg_doctor_report *r);
/* Human-readable report: one line per check with "[ OK ]", "[INFO]",
 * "[WARN]" or "[FAIL]", then cause and fix lines when not OK. */
void gg_doctor_print_text(const gg_doctor_report *r, FILE *out);
/* The report as JSON (schema "gpuguard.doctor/1", see docs/doctor.md);
 * malloc'd string, caller frees; NULL on allocation failure. */
char *gg_doctor_json(const gg_doctor_report *r);
/* Writes the sourceable environment script. Returns 0 or GG_EIO with the
 * reason in err. */
int gg_doctor_write_env(const gg_doctor_report *r, const char *path, char *err, size_t errlen);

/* Bounds on the work of gg_doctor_explain, so that /dev/zero or a log of
 * one endless line ends quickly in bounded memory. A line longer than
 * GG_LOG_LINE_MAX (classify.h) is classified on its first GG_LOG_LINE_MAX
 * bytes and the rest is skipped unread into memory. */
#define GG_EXPLAIN_MAX_BYTES ((uint64_t)1 << 30)
#define GG_EXPLAIN_MAX_LINES ((uint64_t)10000000)
typedef struct gg_explain_limits {
  uint64_t max_bytes; /* stop reading after this many bytes; 0: GG_EXPLAIN_MAX_BYTES */
  uint64_t max_lines; /* stop after this many lines; 0: GG_EXPLAIN_MAX_LINES */
} gg_explain_limits;

/* What gg_doctor_explain saw. */
typedef struct gg_explain_result {
  int found;           /* recognised lines */
  uint64_t lines;      /* lines read */
  uint64_t bytes;      /* bytes read */
  uint64_t long_lines; /* lines classified on their first GG_LOG_LINE_MAX bytes only */
  const char *stopped; /* NULL, or the limit that ended the reading early: "max-bytes",
                        * "max-lines" (static string) */
} gg_explain_result;

/* Reads a log ("-" for stdin) and prints each recognised GPU failure (line number, class,
 * cause, fix), as text or as JSON (schema "gpuguard.explain/1"), then a
 * summary that also says when a limit was reached. lim may be NULL (the
 * defaults); res (optional) gets what was seen. Returns 0, or GG_EIO when the
 * file cannot be read, GG_ENOMEM (message in err). */
int gg_doctor_explain(const char *path, const gg_explain_limits *lim, FILE *out, int json,
                      gg_explain_result *res, char *err, size_t errlen);

#endif
