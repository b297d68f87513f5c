/* libFuzzer target: the bytes are the weight shard of a fixed model that
 * uses every weight encoding the importer reads (float32, int32, float16 and
 * uint8 quantization). A shard of the right length imports and runs; every
 * other length must be refused cleanly. */
#include "engine/engine-impl.h"
#include "engine/graph.h"
#include "gpuguard/engine.h"
#include "gpuguard/log.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* w: [3,3,2,4] float16 (144 B), b: [4] uint8 (4 B), m: [4] float32 (16 B),
 * shape: [2] int32 (8 B): 172 bytes in all. */
static const char k_json[] =
    "{\"format\":\"graph-model\",\"modelTopology\":{\"node\":["
    "{\"name\":\"x\",\"op\":\"Placeholder\",\"attr\":{\"shape\":{\"shape\":{\"dim\":[{\"size\":\"1\"},{\"size\":\"5\"},{\"size\":\"5\"},{\"size\":\"2\"}]}}}},"
    "{\"name\":\"w\",\"op\":\"Const\"},{\"name\":\"b\",\"op\":\"Const\"},{\"name\":\"m\",\"op\":\"Const\"},{\"name\":\"shape\",\"op\":\"Const\"},"
    "{\"name\":\"conv\",\"op\":\"_FusedConv2D\",\"input\":[\"x\",\"w\",\"b\"],\"attr\":{\"padding\":{\"s\":\"U0FNRQ==\"},"
    "\"strides\":{\"list\":{\"i\":[\"1\",\"2\",\"2\",\"1\"]}},\"num_args\":{\"i\":\"1\"},"
    "\"fused_ops\":{\"list\":{\"s\":[\"Qmlhc0FkZA==\",\"UmVsdQ==\"]}}}},"
    "{\"name\":\"mul\",\"op\":\"Mul\",\"input\":[\"conv\",\"m\"]},"
    "{\"name\":\"flat\",\"op\":\"Reshape\",\"input\":[\"mul\",\"shape\"]},"
    "{\"name\":\"y\",\"op\":\"Softmax\",\"input\":[\"flat\"]}"
    "]},\"weightsManifest\":[{\"paths\":[\"w.bin\"],\"weights\":["
    "{\"name\":\"w\",\"shape\":[3,3,2,4],\"dtype\":\"float32\",\"quantization\":{\"dtype\":\"float16\",\"original_dtype\":\"float32\"}},"
    "{\"name\":\"b\",\"shape\":[4],\"dtype\":\"float32\",\"quantization\":{\"dtype\":\"uint8\",\"scale\":0.01,\"min\":-1.0,\"original_dtype\":\"float32\"}},"
    "{\"name\":\"m\",\"shape\":[4],\"dtype\":\"float32\"},"
    "{\"name\":\"shape\",\"shape\":[2],\"dtype\":\"int32\"}]}]}";

static const uint8_t *g_data;
static size_t g_size;

static int shard(void *user, const char *path, uint8_t **data, size_t *len, char *err,
                 size_t errlen) {
  (void)user, (void)path, (void)err, (void)errlen;
  *data = malloc(g_size + 1);
  if (!*data) return -1;
  if (g_size) memcpy(*data, g_data, g_size);
  *len = g_size;
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static int init;
  if (!init) gg_log_set_level(GG_LOG_OFF), init = 1;
  g_data = data, g_size = size;
  gg_graph *g = NULL;
  char err[512];
  if (gg__tfjs_import(k_json, sizeof k_json - 1, "fuzz.json", shard, NULL, &g, err, sizeof err))
    return 0;
  gg_model *m = NULL;
  if (gg__model_from_graph(g, "fuzz.json", &m)) {
    gg__graph_free(g);
    return 0;
  }
  gg_session *s = NULL;
  gg_session_opts o = {1, GG_ENGINE_NAIVE, 0};
  if (gg_session_new(m, NULL, 0, &o, &s, err, sizeof err) == 0) {
    float *in = gg_session_input(s, 0, NULL);
    for (int i = 0; i < 50; i++) in[i] = (float)i / 50.0f;
    gg_session_run(s, err, sizeof err);
    gg_session_free(s);
  }
  gg_model_free(m);
  return 0;
}
