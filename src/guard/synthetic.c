/* The synthetic TEST WORKLOAD runner (not a model). It behaves like a small
 * network as far as a device can tell: weights allocated through the pool
 * at load, activations allocated per run, one kernel launch per layer via
 * gg_device_launch, a synchronize, copies in and out. Device faults hit it
 * exactly where they would hit a real model. Model names:
 *   "synthetic[:WEIGHTS_MB[:LAYERS]]"   (default 4 MB, 4 layers)
 * Output = input passed through LAYERS layers of y = 0.5*x + w[l], so the
 * caller can check the numbers (gg__synthetic_reference). */
#include "gpuguard/error.h"
#include "gpuguard/log.h"
#include "guard/guard-impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SYN_MAX_LAYERS 64

typedef struct syn_model {
  char name[GG__MODEL_NAME];
  gg_device *dev;
  gg_pool *pool;
  gg_block *weights;
  size_t weights_bytes;
  int layers;
} syn_model;

typedef struct syn_kernel {
  const float *x;
  float *y;
  size_t n;
  float w;
} syn_kernel;

static int syn_layer_kernel(void *p) {
  syn_kernel *k = p;
  for (size_t i = 0; i < k->n; i++)
    k->y[i] = 0.5f * k->x[i] + k->w;
  return 0;
}

typedef struct syn_fill {
  float *w;
  size_t n;
} syn_fill;

static int syn_fill_kernel(void *p) {
  syn_fill *f = p;
  for (size_t i = 0; i < f->n; i++)
    f->w[i] = (float)((i % 7) + 1) * 0.125f;
  return 0;
}

static int syn_parse(const char *model, size_t *wbytes, int *layers) {
  if (strncmp(model, "synthetic", 9) != 0) return GG_ENOTFOUND;
  double mb = 4;
  int l = 4;
  const char *p = model + 9;
  if (*p == ':') {
    char *end;
    mb = strtod(p + 1, &end);
    if (end == p + 1 || mb <= 0 || mb > 65536) return GG_EINVAL;
    p = end;
    if (*p == ':') {
      long v = strtol(p + 1, &end, 10);
      if (end == p + 1 || v < 1 || v > SYN_MAX_LAYERS) return GG_EINVAL;
      l = (int)v;
      p = end;
    }
  }
  if (*p) return GG_EINVAL;
  *wbytes = (size_t)(mb * 1024 * 1024);
  if (*wbytes < (size_t)l * sizeof(float)) *wbytes = (size_t)l * sizeof(float);
  *layers = l;
  return 0;
}

/* Reference output for one element, for tests. */
float gg__synthetic_reference(float x, int layers);
float gg__synthetic_reference(float x, int layers) {
  for (int l = 0; l < layers; l++)
    x = 0.5f * x + (float)((l % 7) + 1) * 0.125f;
  return x;
}

static int syn_load(void *ctx, const char *model, gg_device *dev, gg_pool *pool, void **handle) {
  size_t wbytes;
  int layers;
  int rc = syn_parse(model, &wbytes, &layers);
  if (rc) {
    GG_ERROR("GPU", "synthetic workload: bad model name '%s' (want synthetic[:MB[:LAYERS]])",
             model);
    return rc;
  }
  syn_model *m = calloc(1, sizeof *m);
  if (!m) return GG_ENOMEM;
  snprintf(m->name, sizeof m->name, "%s", model);
  m->dev = dev;
  m->pool = pool;
  m->weights_bytes = wbytes;
  m->layers = layers;
  char owner[GG_MEM_OWNER_MAX];
  snprintf(owner, sizeof owner, "model:%.40s/weights", model);
  rc = gg_pool_alloc(pool, wbytes, owner, &m->weights);
  if (rc) goto fail;
  /* Weights are "uploaded": host pointer on host-memory devices, else a copy. */
  float *w = gg_block_host_ptr(m->weights);
  if (w) {
    syn_fill f = {w, wbytes / sizeof(float)};
    rc = gg_device_launch(dev, syn_fill_kernel, &f);
    if (rc == 0) rc = gg_device_synchronize(dev);
  } else {
    size_t n = (size_t)layers;
    float tmp[SYN_MAX_LAYERS];
    syn_fill f = {tmp, n};
    syn_fill_kernel(&f);
    rc = gg_block_copy_to(m->weights, 0, tmp, n * sizeof(float));
  }
  if (rc) goto fail;
  *handle = m;
  return 0;
fail:
  gg_block_free(m->weights);
  free(m);
  return rc;
}

static size_t round_up(size_t n) {
  return (n + GG_POOL_ROUND - 1) / GG_POOL_ROUND * GG_POOL_ROUND;
}

static int syn_peak(void *ctx, void *handle, const gg_gtensor *in, uint64_t *peak) {
  syn_model *m = handle;
  size_t n = gg_gtensor_count(in);
  if (n == 0) return GG_EINVAL;
  *peak = round_up(m->weights_bytes) + 2 * round_up(n * sizeof(float));
  return 0;
}

static int syn_run(void *ctx, void *handle, const gg_gtensor *in, gg_gtensor *outs, int max_outs,
                   int *n_outs) {
  syn_model *m = handle;
  size_t n = gg_gtensor_count(in);
  if (n == 0 || !in->data || max_outs < 1) return GG_EINVAL;
  size_t bytes = n * sizeof(float);
  gg_block *a = NULL, *b = NULL;
  float *out = NULL;
  int rc = gg_pool_alloc(m->pool, bytes, "request/activations", &a);
  if (rc == 0) rc = gg_pool_alloc(m->pool, bytes, "request/activations", &b);
  if (rc) goto done;
  rc = gg_block_copy_to(a, 0, in->data, bytes);
  if (rc) goto done;
  float *wp = gg_block_host_ptr(m->weights);
  float wl[SYN_MAX_LAYERS];
  if (wp)
    memcpy(wl, wp, (size_t)m->layers * sizeof(float));
  else if ((rc = gg_block_copy_from(m->weights, wl, 0, (size_t)m->layers * sizeof(float))))
    goto done;
  gg_block *x = a, *y = b;
  for (int l = 0; l < m->layers; l++) {
    syn_kernel k = {gg_block_host_ptr(x), gg_block_host_ptr(y), n, wl[l]};
    if (!k.x || !k.y) {
      rc = GG_EUNSUPPORTED; /* needs a host-addressable device */
      goto done;
    }
    rc = gg_device_launch(m->dev, syn_layer_kernel, &k);
    if (rc) goto done;
    gg_block *t = x;
    x = y;
    y = t;
  }
  rc = gg_device_synchronize(m->dev);
  if (rc) goto done;
  out = malloc(bytes);
  if (!out) {
    rc = GG_ENOMEM;
    goto done;
  }
  rc = gg_block_copy_from(x, out, 0, bytes);
  if (rc) goto done;
  memset(&outs[0], 0, sizeof outs[0]);
  outs[0].ndim = in->ndim;
  memcpy(outs[0].dims, in->dims, sizeof in->dims);
  outs[0].data = out;
  out = NULL;
  *n_outs = 1;
done:
  free(out);
  gg_block_free(a);
  gg_block_free(b);
  return rc;
}

static int syn_warmup(void *ctx, void *handle) {
  float buf[256];
  for (int i = 0; i < 256; i++)
    buf[i] = (float)i / 256.0f;
  gg_gtensor in = {.ndim = 4, .dims = {1, 8, 8, 4}, .data = buf};
  gg_gtensor out[1];
  int n = 0;
  int rc = syn_run(ctx, handle, &in, out, 1, &n);
  if (rc == 0) gg_gtensor_release(&out[0]);
  return rc;
}

static void syn_unload(void *ctx, void *handle) {
  syn_model *m = handle;
  if (!m) return;
  gg_block_free(m->weights);
  free(m);
}

static const gg_runner_i k_synthetic = {
    .name = "synthetic",
    .load = syn_load,
    .planned_peak = syn_peak,
    .warmup = syn_warmup,
    .run = syn_run,
    .unload = syn_unload,
};

int gg__runner_synthetic(gg_runner *out);
int gg__runner_synthetic(gg_runner *out) {
  out->iface = &k_synthetic;
  out->ctx = NULL;
  return 0;
}
