#!/usr/bin/env node
// TensorFlow.js timing of one ESRGAN layers model on a whole image
// (bench/bench-upscale.sh): loads the model once, runs it once to warm up,
// then times RUNS runs of model.predict on the same [1,SIZE,SIZE,3] input
// and prints one JSON line:
//   {"impl":"tfjs-wasm","model":..., "size":256, "runs":3, "median_ms":...,
//    "min_ms":..., "times_ms":[...], "out_shape":[1,1024,1024,3],
//    "max_rss_kib":..., "threads":1}
//
// Usage: node tests/reference/layers-bench.js MODEL_JSON SIZE
//            [--backend wasm|cpu] [--threads N] [--runs R] [--range 255|1]
// The input is the same wave-and-noise picture bench-upscale makes, scaled
// to the model's range (255: slim, medium; 1: thick).
'use strict';

const io = require('./model-io');
const { registerCustomLayers, loadLayersModel } = require('./esrgan-layers');

function usage(msg) {
  if (msg) console.error(`layers-bench.js: ${msg}`);
  console.error(
    'usage: node tests/reference/layers-bench.js MODEL_JSON SIZE [--backend wasm|cpu] ' +
      '[--threads N] [--runs R] [--range 255|1]'
  );
  process.exit(2);
}


// bench-upscale.c's picture: waves and noise, 8-bit RGB, then to the range.
function picture(size, range) {
  const a = new Float32Array(size * size * 3);
  let r = 1;
  for (let y = 0; y < size; y++)
    for (let x = 0; x < size; x++)
      for (let c = 0; c < 3; c++) {
        r = (Math.imul(r, 1103515245) + 12345) >>> 0;
        let v = 128 + 70 * Math.sin(x * 0.05 + c) * Math.cos(y * 0.031) + ((r >>> 16) % 32) - 16;
        v = v < 0 ? 0 : v > 255 ? 255 : v;
        a[(y * size + x) * 3 + c] = (Math.floor(v) * range) / 255;
      }
  return a;
}

async function main() {
  const args = process.argv.slice(2);
  let backend = 'wasm';
  let threads = 1;
  let runs = 3;
  let range = 255;
  const pos = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--backend') backend = args[++i];
    else if (args[i] === '--threads') threads = +args[++i];
    else if (args[i] === '--runs') runs = +args[++i];
    else if (args[i] === '--range') range = +args[++i];
    else if (args[i] === '-h' || args[i] === '--help') usage();
    else pos.push(args[i]);
  }
  if (pos.length !== 2 || !(runs > 0)) usage('need MODEL_JSON SIZE');
  const size = +pos[1];
  const { tf, info } = await io.initTf(backend, threads);
  registerCustomLayers(tf);
  const model = await loadLayersModel(tf, pos[0]);
  const x = tf.tensor(picture(size, range), [1, size, size, 3], 'float32');
  const once = async () => {
    const t0 = process.hrtime.bigint();
    const y = model.predict(x);
    await y.data();
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    const shape = y.shape;
    tf.dispose(y);
    return { ms, shape };
  };
  const warm = await once();
  const times = [];
  for (let i = 0; i < runs; i++) times.push((await once()).ms);
  const s = [...times].sort((p, q) => p - q);
  const n = s.length;
  const median = n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
  console.log(
    JSON.stringify({
      impl: `tfjs-${info.backend}`,
      model: pos[0],
      size,
      threads: info.threads === undefined ? null : info.threads,
      runs,
      warmup_ms: +warm.ms.toFixed(1),
      median_ms: +median.toFixed(1),
      min_ms: +s[0].toFixed(1),
      times_ms: times.map((t) => +t.toFixed(1)),
      out_shape: warm.shape,
      max_rss_kib: process.resourceUsage().maxRSS,
    })
  );
}

main().catch((e) => {
  console.error(`layers-bench.js: ${e && e.message ? e.message : e}`);
  process.exit(1);
});
