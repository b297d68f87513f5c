// Shared helpers for the TensorFlow.js reference (run.js) and the tfjs side of
// bench/bench-engine.sh: load a graph model from disk, pick a backend, read
// and write raw little-endian float32 files.
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');

let tf = null;

// Loads @tensorflow/tfjs (CPU backend) and, for 'wasm', the WebAssembly
// backend; selects the backend. threads > 0 sets the wasm thread count (only
// effective where the threaded wasm binary can run).
async function initTf(backend, threads) {
  tf = require('@tensorflow/tfjs');
  if (backend === 'wasm') {
    const wasm = require('@tensorflow/tfjs-backend-wasm');
    if (threads > 0) wasm.setThreadsCount(threads);
  } else if (backend !== 'cpu') {
    throw new Error(`unknown backend '${backend}' (use cpu or wasm)`);
  }
  const ok = await tf.setBackend(backend);
  if (!ok) throw new Error(`tfjs backend '${backend}' failed to initialise`);
  await tf.ready();
  let info = { backend: tf.getBackend(), tfjs: tf.version.tfjs };
  if (backend === 'wasm') {
    const wasm = require('@tensorflow/tfjs-backend-wasm');
    info.threads = wasm.getThreadsCount ? wasm.getThreadsCount() : null;
    // tfjs 4.x disables wasm threads under Node (tfjs issue #3830).
    info.wasm_simd = await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT');
    info.wasm_threads_supported = await tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT');
  }
  return { tf, info };
}

// Reads model.json (check(j) throws when it is not the kind wanted) and its
// weight shards (concatenated in manifest order) into the artifacts tfjs's
// loaders take. Fails with the file that was wrong.
function readArtifacts(modelJson, check) {
  const dir = path.dirname(modelJson);
  const j = JSON.parse(fs.readFileSync(modelJson, 'utf8'));
  check(j);
  const specs = [];
  const bufs = [];
  for (const group of j.weightsManifest) {
    for (const p of group.paths) bufs.push(fs.readFileSync(path.join(dir, p)));
    specs.push(...group.weights);
  }
  const all = Buffer.concat(bufs);
  return {
    modelTopology: j.modelTopology,
    weightSpecs: specs,
    weightData: all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength),
    format: j.format,
    generatedBy: j.generatedBy,
    convertedBy: j.convertedBy,
    signature: j.signature,
    userDefinedMetadata: j.userDefinedMetadata,
    modelInitializer: j.modelInitializer,
  };
}

// A tfjs GraphModel from model.json and its shards.
async function loadModel(modelJson) {
  const artifacts = readArtifacts(modelJson, (j) => {
    if (!j.modelTopology || !Array.isArray(j.weightsManifest)) {
      throw new Error(`${modelJson}: not a TF.js graph model (no modelTopology/weightsManifest)`);
    }
  });
  return tf.loadGraphModel({ load: async () => artifacts });
}

function readF32(file, count) {
  const b = fs.readFileSync(file);
  if (count !== undefined && b.length !== count * 4) {
    throw new Error(`${file}: ${b.length} bytes, expected ${count * 4} (${count} float32)`);
  }
  const out = new Float32Array(b.length / 4);
  for (let i = 0; i < out.length; i++) out[i] = b.readFloatLE(i * 4);
  return out;
}

function writeF32(file, data) {
  const f = data instanceof Float32Array ? data : Float32Array.from(data);
  let b;
  if (os.endianness() === 'LE') {
    b = Buffer.from(f.buffer, f.byteOffset, f.byteLength);
  } else {
    b = Buffer.alloc(f.length * 4);
    for (let i = 0; i < f.length; i++) b.writeFloatLE(f[i], i * 4);
  }
  fs.writeFileSync(file, b);
}

function numel(shape) {
  return shape.reduce((a, b) => a * b, 1);
}

// Input name and shape from model.json (batch -1 becomes 1), and output names
// from its signature (or the graph's outputs when there is none).
function modelIo(model, modelJson) {
  const j = JSON.parse(fs.readFileSync(modelJson, 'utf8'));
  const ph = j.modelTopology.node.filter((n) => n.op === 'Placeholder');
  if (ph.length !== 1) throw new Error(`${modelJson}: expected 1 input, found ${ph.length}`);
  const dims = ph[0].attr.shape.shape ? ph[0].attr.shape.shape.dim : ph[0].attr.shape.dim;
  const shape = dims.map((d) => (Number(d.size) > 0 ? Number(d.size) : 1));
  const outputs = model.outputs.map((o) => o.name);
  return { input: { name: ph[0].name, shape }, outputs };
}

module.exports = { initTf, loadModel, readArtifacts, readF32, writeF32, numel, modelIo };
