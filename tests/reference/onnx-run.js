#!/usr/bin/env node
// ONNX Runtime reference for the gpuguard ONNX importer
// (tests/test-onnx-reference.c, the ONNX bench; docs/ONNX.md).
//
// Usage:
//   node tests/reference/onnx-run.js MODEL.onnx [--threads N]
//        [--in NAME:DTYPE:SHAPE:FILE]... [--out DIR]
//        [--time RUNS [--warmup W]] [--info]
//
//   --in      one model input: NAME as in the model (empty = the model's next
//             input in order), DTYPE float32|float16|float64|int8|int16|
//             int32|int64|uint8|uint16|uint32|uint64|bool (float16 files
//             hold the raw half bits),
//             SHAPE as 1x3x640x640 or 1,3,640,640, FILE a raw little-endian
//             file of exactly that many elements of DTYPE, or "random" for a
//             fixed pseudo-random pattern in [0,1) (timing without a file).
//   --out     runs once and writes DIR/out0.f32, out1.f32, ... (each output
//             converted to raw little-endian float32, in the model's output
//             order) and DIR/outputs.json:
//             {"model","ort","threads","run_ms",
//              "inputs":[{"name","dtype","shape"}],
//              "outputs":[{"name","dtype","shape","file"}]}
//   --time    warm-up runs (default 2), then RUNS timed runs on the same
//             inputs; prints one JSON line:
//             {"impl":"onnxruntime-node","ort","model","threads","runs",
//              "median_ms","min_ms","times_ms":[...],"outputs":[{"name","shape"}]}
//   --info    prints the model's inputs and outputs (names, types, shapes
//             with symbolic dims as strings) as JSON and exits.
//   --threads intra-op threads (default 1); inter-op 1, sequential
//             execution, CPU execution provider, default graph optimizations
//             ("all", as ORT's own default).
// Exit status: 0 ok, 1 failure (message on stderr), 2 usage.
'use strict';

const fs = require('fs');
const path = require('path');

function usage(msg) {
  if (msg) console.error(`onnx-run.js: ${msg}`);
  console.error(
    'usage: node tests/reference/onnx-run.js MODEL.onnx [--threads N] ' +
      '[--in NAME:DTYPE:SHAPE:FILE]... [--out DIR] [--time RUNS [--warmup W]] [--info]'
  );
  process.exit(2);
}

const DTYPES = {
  float32: { arr: Float32Array, size: 4 },
  int32: { arr: Int32Array, size: 4 },
  int64: { arr: BigInt64Array, size: 8 },
  uint8: { arr: Uint8Array, size: 1 },
  int8: { arr: Int8Array, size: 1 },
  bool: { arr: Uint8Array, size: 1 },
  float16: { arr: Uint16Array, size: 2 }, // the raw IEEE half bits
  float64: { arr: Float64Array, size: 8 },
  int16: { arr: Int16Array, size: 2 },
  uint16: { arr: Uint16Array, size: 2 },
  uint32: { arr: Uint32Array, size: 4 },
  uint64: { arr: BigUint64Array, size: 8 },
};

// IEEE half bits of v in [0, 1), rounded to nearest even (the "random"
// pattern of float16 inputs; values under 2^-14 flush to 0).
function halfBits(v) {
  if (!(v >= 6.103515625e-5)) return 0;
  const e = Math.floor(Math.log2(v));
  let m = v / Math.pow(2, e) - 1; // [0, 1)
  let q = Math.round(m * 1024);
  const t = m * 1024;
  if (t - Math.floor(t) === 0.5 && Math.floor(t) % 2 === 0) q = Math.floor(t);
  let ex = e + 15;
  if (q === 1024) { q = 0; ex += 1; }
  return (ex << 10) | q;
}

function halfToFloat(h) {
  const s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 31, m = h & 1023;
  if (e === 0) return s * m * Math.pow(2, -24);
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * Math.pow(2, e - 15);
}

function parseIn(spec) {
  // NAME:DTYPE:SHAPE:FILE (FILE keeps any further colons).
  const p = spec.split(':');
  if (p.length < 4) usage(`--in '${spec}': need NAME:DTYPE:SHAPE:FILE`);
  const [name, dtype, shapeStr] = p;
  const file = p.slice(3).join(':');
  if (!DTYPES[dtype]) usage(`--in '${spec}': dtype '${dtype}' is not one of ${Object.keys(DTYPES).join(', ')}`);
  const shape = shapeStr === '' ? [] : shapeStr.split(/[x,]/).map((s) => Number(s));
  if (shape.some((d) => !Number.isInteger(d) || d < 0)) usage(`--in '${spec}': bad shape '${shapeStr}'`);
  return { name, dtype, shape, file };
}

function numel(shape) {
  return shape.reduce((a, b) => a * b, 1);
}

function readInput(ort, spec) {
  const n = numel(spec.shape);
  const d = DTYPES[spec.dtype];
  let data;
  if (spec.file === 'random') {
    data = new d.arr(n);
    let r = 1;
    for (let i = 0; i < n; i++) {
      r = (Math.imul(r, 1103515245) + 12345) >>> 0;
      const v = (r >>> 8) / 16777216;
      data[i] = spec.dtype === 'float32' || spec.dtype === 'float64' ? v
        : spec.dtype === 'float16' ? halfBits(v)
        : spec.dtype === 'int64' || spec.dtype === 'uint64' ? BigInt(Math.floor(v * 2))
        : Math.floor(v * 2);
    }
  } else {
    const buf = fs.readFileSync(spec.file);
    if (buf.length !== n * d.size) {
      throw new Error(`${spec.file}: ${buf.length} bytes, expected ${n * d.size} ` +
                      `(${n} ${spec.dtype} for shape [${spec.shape.join(',')}])`);
    }
    // Copy into an aligned buffer of its own (Buffer slices may be unaligned).
    const ab = new ArrayBuffer(buf.length);
    new Uint8Array(ab).set(buf);
    data = new d.arr(ab);
  }
  return new ort.Tensor(spec.dtype, data, spec.shape);
}

function toF32(t) {
  const src = t.data;
  if (src instanceof Float32Array) return src;
  const out = new Float32Array(src.length);
  if (t.type === 'float16' && src instanceof Uint16Array) {
    for (let i = 0; i < src.length; i++) out[i] = halfToFloat(src[i]);
    return out;
  }
  for (let i = 0; i < src.length; i++) out[i] = Number(src[i]);
  return out;
}

function median(a) {
  const s = [...a].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function metaJson(m) {
  if (!m) return null;
  return { name: m.name, tensor: m.isTensor, type: m.type, shape: m.shape };
}

async function main() {
  const args = process.argv.slice(2);
  let threads = 1;
  let outDir = null;
  let runs = 0;
  let warmup = 2;
  let info = false;
  const ins = [];
  const pos = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const next = () => {
      if (i + 1 >= args.length) usage(`${a} needs a value`);
      return args[++i];
    };
    if (a === '--threads') threads = Number(next());
    else if (a === '--in') ins.push(parseIn(next()));
    else if (a === '--out') outDir = next();
    else if (a === '--time') runs = Number(next());
    else if (a === '--warmup') warmup = Number(next());
    else if (a === '--info') info = true;
    else if (a === '-h' || a === '--help') usage();
    else if (a.startsWith('--')) usage(`unknown option ${a}`);
    else pos.push(a);
  }
  if (pos.length !== 1) usage('need exactly one MODEL.onnx');
  if (!Number.isInteger(threads) || threads < 1) usage('--threads needs an integer >= 1');
  if (!Number.isInteger(runs) || runs < 0) usage('--time needs an integer >= 1');
  if (!Number.isInteger(warmup) || warmup < 0) usage('--warmup needs an integer >= 0');
  if (!info && !outDir && runs === 0) usage('give --out DIR, --time RUNS or --info');

  const ort = require('onnxruntime-node');
  const ortVersion = require('onnxruntime-node/package.json').version;
  const model = pos[0];
  const session = await ort.InferenceSession.create(model, {
    executionProviders: ['cpu'],
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  });

  if (info) {
    const meta = (names, md) => names.map((n, i) => metaJson(md && md[i]) || { name: n });
    console.log(JSON.stringify({
      model, ort: ortVersion,
      inputs: meta(session.inputNames, session.inputMetadata),
      outputs: meta(session.outputNames, session.outputMetadata),
    }));
    return;
  }

  // Unnamed inputs take the model's inputs in order.
  const feeds = {};
  let nextIdx = 0;
  for (const spec of ins) {
    if (!spec.name) {
      while (nextIdx < session.inputNames.length && feeds[session.inputNames[nextIdx]]) nextIdx++;
      if (nextIdx >= session.inputNames.length) throw new Error(`more --in than the model has inputs (${session.inputNames.length})`);
      spec.name = session.inputNames[nextIdx];
    }
    if (!session.inputNames.includes(spec.name)) {
      throw new Error(`model has no input '${spec.name}' (inputs: ${session.inputNames.join(', ')})`);
    }
    feeds[spec.name] = readInput(ort, spec);
  }
  const missing = session.inputNames.filter((n) => !feeds[n]);
  if (missing.length) throw new Error(`no --in for the model's input(s) ${missing.join(', ')}`);

  if (outDir) {
    fs.mkdirSync(outDir, { recursive: true });
    const t0 = process.hrtime.bigint();
    const res = await session.run(feeds);
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    const outputs = session.outputNames.map((name, i) => {
      const t = res[name];
      const file = `out${i}.f32`;
      const f = toF32(t);
      fs.writeFileSync(path.join(outDir, file), Buffer.from(f.buffer, f.byteOffset, f.byteLength));
      return { name, dtype: t.type, shape: t.dims, file };
    });
    fs.writeFileSync(path.join(outDir, 'outputs.json'), JSON.stringify({
      model, ort: ortVersion, threads, run_ms: ms,
      inputs: ins.map((s) => ({ name: s.name, dtype: s.dtype, shape: s.shape })),
      outputs,
    }, null, 1));
    for (const o of outputs) console.log(`${outDir}: ${o.name} ${o.dtype} [${o.shape.join(',')}] -> ${o.file}`);
  }

  if (runs > 0) {
    let last = null;
    for (let i = 0; i < warmup; i++) last = await session.run(feeds);
    const times = [];
    for (let i = 0; i < runs; i++) {
      const t0 = process.hrtime.bigint();
      last = await session.run(feeds);
      times.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    const r3 = (x) => Math.round(x * 1000) / 1000;
    console.log(JSON.stringify({
      impl: 'onnxruntime-node', ort: ortVersion, model, threads, warmup, runs,
      median_ms: r3(median(times)), min_ms: r3(Math.min(...times)), times_ms: times.map(r3),
      inputs: ins.map((s) => ({ name: s.name, shape: s.shape })),
      outputs: session.outputNames.map((n) => ({ name: n, shape: last[n].dims })),
    }));
  }
  await session.release();
}

main().catch((e) => {
  console.error(`onnx-run.js: ${e && e.message ? e.message : e}`);
  process.exit(1);
});
