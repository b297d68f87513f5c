#!/usr/bin/env node
// TensorFlow.js reference for gpuguard's layers-model importer
// (tests/test-layers-reference.c).
//
// Usage: node tests/reference/layers-run.js JOBS_JSON [--backend cpu|wasm]
//
// JOBS_JSON: [{"model": "/abs/x2/model.json", "input": "in.f32",
//              "shape": [1,32,32,3], "output": "ref.f32"}, ...]
// (paths relative to the JSON's folder unless absolute). Each job's model is
// loaded with tf.loadLayersModel from its files, the raw little-endian
// float32 input is run through model.predict, and the output is written as
// raw float32; the output's shape goes to stdout as one JSON line per job:
//   {"job": 0, "shape": [1,64,64,3], "time_ms": 123.4}
// Exit status: 0 ok, 1 failure (message on stderr), 2 usage.
//
// The custom layers are registered the way the @upscalerjs ESRGAN packages
// define them (esrgan-layers.js).
'use strict';

const fs = require('fs');
const path = require('path');
const io = require('./model-io');
const { registerCustomLayers, loadLayersModel } = require('./esrgan-layers');

function usage(msg) {
  if (msg) console.error(`layers-run.js: ${msg}`);
  console.error('usage: node tests/reference/layers-run.js JOBS_JSON [--backend cpu|wasm]');
  process.exit(2);
}


async function main() {
  const args = process.argv.slice(2);
  let backend = 'cpu';
  const pos = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--backend') backend = args[++i];
    else if (args[i] === '-h' || args[i] === '--help') usage();
    else pos.push(args[i]);
  }
  if (pos.length !== 1) usage('need JOBS_JSON');
  const jobsFile = pos[0];
  const base = path.dirname(path.resolve(jobsFile));
  const rel = (p) => (path.isAbsolute(p) ? p : path.join(base, p));
  const jobs = JSON.parse(fs.readFileSync(jobsFile, 'utf8'));
  const { tf } = await io.initTf(backend, 0);
  registerCustomLayers(tf);
  const models = new Map();
  for (let i = 0; i < jobs.length; i++) {
    const job = jobs[i];
    if (!models.has(job.model)) models.set(job.model, await loadLayersModel(tf, job.model));
    const model = models.get(job.model);
    const x = tf.tensor(io.readF32(rel(job.input), io.numel(job.shape)), job.shape, 'float32');
    const t0 = process.hrtime.bigint();
    const y = model.predict(x);
    const data = await y.data();
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    io.writeF32(rel(job.output), data);
    console.log(JSON.stringify({ job: i, shape: y.shape, time_ms: ms }));
    tf.dispose([x, y]);
  }
}

main().catch((e) => {
  console.error(`layers-run.js: ${e && e.message ? e.message : e}`);
  process.exit(1);
});
