/* gpuguard core utilities: sizes, clocks, process memory. */
#ifndef GPUGUARD_CORE_H
#define GPUGUARD_CORE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Parses a byte size: "4096", "64K", "4560M", "3.5G", "1T" (binary units,
 * optional trailing "B"/"iB"). Returns 0, GG_EINVAL for junk, GG_ERANGE on
 * overflow. */
int gg_parse_size(const char *s, uint64_t *out);
/* Formats bytes as "3.50 GiB" into buf; returns buf. */
const char *gg_format_size(uint64_t bytes, char *buf, size_t len);

/* Decodes base64 (standard or URL-safe alphabet, padding optional,
 * whitespace skipped, a "data:<type>;base64," prefix allowed) into a
 * malloc'd buffer *out (the caller frees) of *out_len bytes. Returns 0,
 * GG_ETOO_LARGE when the decoded size would exceed max_out, GG_EPARSE with
 * the offending byte's offset in err for anything else, GG_ENOMEM. */
int gg_base64_decode(const char *s, size_t max_out, unsigned char **out, size_t *out_len,
                     char *err, size_t errlen);

/* Monotonic clock in nanoseconds. */
uint64_t gg_now_ns(void);

typedef struct gg_proc_mem {
  double rss_mb;  /* resident set, MiB, from /proc/self/status VmRSS */
  double vms_mb;  /* virtual size, MiB, from /proc/self/status VmSize */
  double percent; /* rss as a percentage of MemTotal in /proc/meminfo */
  uint64_t host_total_bytes;
  uint64_t host_available_bytes;
} gg_proc_mem;

/* Reads this process's memory use from /proc. Returns 0 or GG_EIO. */
int gg_proc_mem_read(gg_proc_mem *out);

#ifdef __cplusplus
}
#endif
#endif
