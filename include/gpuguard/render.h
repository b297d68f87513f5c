/* How the HTTP service shows memory and guard state: jansson objects for
 * /api/device and Prometheus text for /metrics (src/server/render.c). The
 * memory and guard modules only fill the plain structs rendered here. */
#ifndef GPUGUARD_RENDER_H
#define GPUGUARD_RENDER_H

#include "gpuguard/guard.h"
#include "gpuguard/memory.h"

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

struct json_t; /* jansson */

/* Writes stats as a new jansson object; the caller owns the reference
 * (json_decref). NULL on allocation failure. Keys: device, budget, allocated, requested, reserved,
 * peak_allocated, peak_reserved, cached, largest_free, fragmentation,
 * segments, blocks, free_blocks, counts{...}, owners{tag: bytes}. */
struct json_t *gg_pool_stats_to_json(const gg_pool_stats *s);
struct json_t *gg_host_stats_to_json(const gg_host_stats *s);

/* Appends the pool stats as Prometheus text exposition lines, labelled
 * device="<name>" (gauges gpuguard_mem_{allocated,reserved,peak_allocated,
 * peak_reserved,cached,largest_free,budget}_bytes, gpuguard_mem_fragmentation,
 * gpuguard_mem_{segments,blocks}, counters gpuguard_mem_{allocs,frees,ooms,
 * trims,cache_hits,cache_misses,leaks}_total, and gpuguard_mem_owner_bytes
 * {device,owner} for the listed owners). HELP/TYPE lines are included when
 * `with_help` is 1 (once per scrape). Writes at most len bytes (always NUL-
 * terminated when len > 0); returns the length it needed, like snprintf. */
size_t gg_pool_stats_to_prometheus(const gg_pool_stats *s, int with_help, char *buf, size_t len);

/* A jansson json_t* (new reference, cast to void*): {"stats": {...},
 * "devices": [{status...}], "gpu_failed": bool, "switch": the latest
 * switch (gg_guard_switch_json)}. NULL on out of memory. */
void *gg_guard_json(gg_guard *g);
/* A jansson json_t* (new reference) for a switch's state: {"id", "to",
 * "from", "state", "elapsed_ms"} plus "error" (the reason) and "error_name"
 * when it failed; JSON null when no switch ran. */
void *gg_guard_switch_json(const gg_guard_switch_status *sw);
/* Prometheus text-format metrics (gpuguard_guard_*) in a malloc'd string;
 * the caller frees it. NULL on out of memory. */
char *gg_guard_prometheus(gg_guard *g);

#ifdef __cplusplus
}
#endif
#endif
