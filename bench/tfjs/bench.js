#!/usr/bin/env node
// TensorFlow.js side of bench/bench-engine.sh: median latency of one model on
// one tfjs backend, in-process (model loaded and warmed up first).
//
//   node bench/tfjs/bench.js MODEL_JSON [--backend wasm|cpu] [--threads N]
//                            [--runs R] [--warmup W]
//
// Each timed run is model.execute() on a fixed random input plus reading
// every output back (dataSync), i.e. the same work as gpuguard's run stage.
// Prints one JSON line: {"impl","backend","threads","threads_effective",
// "runs","median_ms","min_ms","p90_ms","load_ms"}.
// Uses the pinned tfjs in tests/reference/node_modules (scripts/fetch-reference.sh).
'use strict';

const path = require('path');
const io = require(path.join(__dirname, '..', '..', 'tests', 'reference', 'model-io.js'));

async function main() {
  const args = process.argv.slice(2);
  const o = { backend: 'wasm', threads: 1, runs: 20, warmup: 3 };
  const pos = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '--backend') o.backend = args[++i];
    else if (a === '--threads') o.threads = Number(args[++i]);
    else if (a === '--runs') o.runs = Number(args[++i]);
    else if (a === '--warmup') o.warmup = Number(args[++i]);
    else pos.push(a);
  }
  if (pos.length !== 1 || !(o.runs > 0)) {
    console.error('usage: node bench/tfjs/bench.js MODEL_JSON [--backend wasm|cpu] [--threads N] [--runs R] [--warmup W]');
    process.exit(2);
  }
  const modelJson = pos[0];
  // Quiet tfjs's "install tfjs-node" banner: stdout carries only our JSON.
  const log = console.log;
  console.log = () => {};
  const { tf, info } = await io.initTf(o.backend, o.backend === 'wasm' ? o.threads : 0);
  const t0 = process.hrtime.bigint();
  const model = await io.loadModel(modelJson);
  const load = Number(process.hrtime.bigint() - t0) / 1e6;
  const { input, outputs } = io.modelIo(model, modelJson);
  const n = io.numel(input.shape);
  const data = new Float32Array(n);
  let s = 12345;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    data[i] = s / 4294967296;
  }
  const x = tf.tensor(data, input.shape, 'float32');
  const once = () => {
    let r = model.execute({ [input.name]: x }, outputs);
    if (!Array.isArray(r)) r = [r];
    for (const t of r) t.dataSync();
    tf.dispose(r);
  };
  for (let i = 0; i < o.warmup; i++) once();
  const times = [];
  for (let i = 0; i < o.runs; i++) {
    const a = process.hrtime.bigint();
    once();
    times.push(Number(process.hrtime.bigint() - a) / 1e6);
  }
  times.sort((a, b) => a - b);
  const q = (p) => times[Math.min(times.length - 1, Math.floor(p * times.length))];
  const median = times.length % 2 ? times[(times.length - 1) / 2]
                                   : (times[times.length / 2 - 1] + times[times.length / 2]) / 2;
  console.log = log;
  console.log(JSON.stringify({
    impl: 'tfjs', tfjs: info.tfjs, backend: info.backend, threads: o.threads,
    threads_effective: info.backend === 'wasm' ? info.threads : 1,
    wasm_simd: info.wasm_simd, wasm_threads_supported: info.wasm_threads_supported, runs: o.runs,
    median_ms: +median.toFixed(3), min_ms: +times[0].toFixed(3), p90_ms: +q(0.9).toFixed(3),
    load_ms: +load.toFixed(1),
  }));
}

main().catch((e) => {
  console.error(`bench.js: ${e && e.message ? e.message : e}`);
  process.exit(1);
});
