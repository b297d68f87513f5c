#!/usr/bin/env node
// TensorFlow.js reference for the gpuguard engine.
//
// Usage: node tests/reference/run.js MODEL_JSON DUMP_DIR [DUMP_DIR...] [--backend cpu|wasm]
// (several dump dirs of the same model share one model load)
//
// Reads DUMP_DIR/manifest.json as written by `gpuguard infer --dump-dir`:
//   {"model": "/abs/model.json",
//    "input": {"name": "input", "shape": [1,256,256,3], "file": "input.f32"},
//    "outputs": [{"name": "Identity:0", "shape": [1,512,1], "file": "out0.f32"}, ...]}
// (raw little-endian float32 files, paths relative to DUMP_DIR), runs the
// same input through TensorFlow.js (pure-JS CPU backend by default) and
// writes DUMP_DIR/ref0.f32, ref1.f32, ... in the manifest's output order, plus
// DUMP_DIR/ref.json = {"backend", "tfjs", "outputs": [{"name","shape","file"}]}.
// Exit status: 0 ok, 1 failure (message on stderr), 2 usage.
'use strict';

const fs = require('fs');
const path = require('path');
const io = require('./model-io');

function usage(msg) {
  if (msg) console.error(`run.js: ${msg}`);
  console.error('usage: node tests/reference/run.js MODEL_JSON DUMP_DIR [DUMP_DIR...] [--backend cpu|wasm]');
  process.exit(2);
}

async function main() {
  const args = process.argv.slice(2);
  let backend = 'cpu';
  const pos = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--backend') backend = args[++i];
    else if (args[i].startsWith('--backend=')) backend = args[i].slice(10);
    else if (args[i] === '-h' || args[i] === '--help') usage();
    else pos.push(args[i]);
  }
  if (pos.length < 2) usage('need MODEL_JSON and DUMP_DIR');
  const modelJson = pos[0];
  const { tf, info } = await io.initTf(backend, 0);
  const model = await io.loadModel(modelJson);
  for (const dir of pos.slice(1)) await runDir(tf, info, model, modelJson, dir);
}

async function runDir(tf, info, model, modelJson, dir) {
  const manFile = path.join(dir, 'manifest.json');
  const man = JSON.parse(fs.readFileSync(manFile, 'utf8'));
  if (!man.input || !man.input.name || !Array.isArray(man.input.shape) || !man.input.file) {
    throw new Error(`${manFile}: "input" needs name, shape and file`);
  }
  const data = io.readF32(path.join(dir, man.input.file), io.numel(man.input.shape));
  let outNames = (man.outputs || []).map((o) => o.name);
  if (outNames.length === 0) outNames = model.outputs.map((o) => o.name);
  const x = tf.tensor(data, man.input.shape, 'float32');
  const t0 = process.hrtime.bigint();
  let res = model.execute({ [man.input.name]: x }, outNames);
  if (!Array.isArray(res)) res = [res];
  const refs = [];
  for (let i = 0; i < res.length; i++) {
    const file = `ref${i}.f32`;
    io.writeF32(path.join(dir, file), await res[i].data());
    refs.push({ name: outNames[i], shape: res[i].shape, file });
  }
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  tf.dispose(res);
  x.dispose();
  fs.writeFileSync(path.join(dir, 'ref.json'),
                   JSON.stringify({ ...info, model: modelJson, time_ms: ms, outputs: refs }, null, 1));
  for (const r of refs) console.log(`${dir}: ref ${r.name} [${r.shape.join(',')}] -> ${r.file}`);
}

main().catch((e) => {
  console.error(`run.js: ${e && e.message ? e.message : e}`);
  process.exit(1);
});
