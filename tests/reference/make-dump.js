#!/usr/bin/env node
// Writes a synthetic dump dir for a model (to check run.js without the engine):
//   node tests/reference/make-dump.js MODEL_JSON DIR [--seed N]
// DIR/manifest.json + DIR/input.f32 (uniform random in [0, 1), deterministic
// per seed), outputs = the model's graph outputs with no out*.f32 files.
'use strict';

const fs = require('fs');
const path = require('path');
const io = require('./model-io');

async function main() {
  const args = process.argv.slice(2);
  let seed = 1;
  const pos = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--seed') seed = Number(args[++i]);
    else pos.push(args[i]);
  }
  if (pos.length !== 2) {
    console.error('usage: node tests/reference/make-dump.js MODEL_JSON DIR [--seed N]');
    process.exit(2);
  }
  const [modelJson, dir] = pos;
  await io.initTf('cpu', 0);
  const model = await io.loadModel(modelJson);
  const { input, outputs } = io.modelIo(model, modelJson);
  const n = io.numel(input.shape);
  const x = new Float32Array(n);
  let s = (seed >>> 0) || 1;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    x[i] = s / 4294967296;
  }
  fs.mkdirSync(dir, { recursive: true });
  io.writeF32(path.join(dir, 'input.f32'), x);
  const man = {
    model: path.resolve(modelJson),
    input: { name: input.name, shape: input.shape, file: 'input.f32' },
    outputs: outputs.map((name, i) => ({ name, shape: null, file: `out${i}.f32` })),
  };
  fs.writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify(man, null, 1));
  console.log(`${dir}/manifest.json: input ${input.name} [${input.shape}], outputs ${outputs.join(' ')}`);
}

main().catch((e) => {
  console.error(`make-dump.js: ${e && e.message ? e.message : e}`);
  process.exit(1);
});
