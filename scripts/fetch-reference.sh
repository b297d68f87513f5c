#!/usr/bin/env bash
# Installs the reference runtimes in tests/reference at the versions pinned in
# package-lock.json, integrity-checked by npm ci:
#   - TensorFlow.js (@tensorflow/tfjs, @tensorflow/tfjs-backend-wasm) for
#     tests/test-reference and bench/bench-engine.sh;
#   - ONNX Runtime (onnxruntime-node, CPU) for tests/test-onnx-reference and
#     the ONNX bench (tests/reference/onnx-run.js, docs/ONNX.md).
# npm runs with --ignore-scripts: onnxruntime-node's install script downloads
# CUDA libraries from outside the npm registry (and fails offline); its CPU
# runtime ships inside the package, so nothing it would fetch is needed.
# Idempotent: a second run only compares a stamp (offline, instant). The npm
# download cache lives in $GPUGUARD_CACHE/npm (default ~/.cache/gpuguard/npm).
# Usage: scripts/fetch-reference.sh [--force]
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
ref="$here/../tests/reference"
cache=${GPUGUARD_CACHE:-$HOME/.cache/gpuguard}
force=0
[ "${1:-}" = "--force" ] && force=1

command -v node >/dev/null || { echo "reference: node not found (apt-get install nodejs npm)" >&2; exit 1; }
command -v npm >/dev/null || { echo "reference: npm not found (apt-get install npm)" >&2; exit 1; }

want=$(sha256sum "$ref/package-lock.json" | cut -d' ' -f1)
stamp="$ref/node_modules/.gg-lock-sha256"
if [ "$force" = 0 ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] &&
   [ -f "$ref/node_modules/@tensorflow/tfjs/package.json" ] &&
   [ -f "$ref/node_modules/@tensorflow/tfjs-backend-wasm/package.json" ] &&
   [ -f "$ref/node_modules/onnxruntime-node/package.json" ]; then
  echo "reference: tfjs and onnxruntime-node already installed in tests/reference/node_modules"
  exit 0
fi

mkdir -p "$cache/npm"
echo "reference: npm ci in tests/reference (pinned by package-lock.json)"
(cd "$ref" && npm ci --ignore-scripts --no-audit --no-fund --prefer-offline --cache "$cache/npm" --loglevel=error)
echo "$want" > "$stamp"
ver() { node -p "require('$ref/node_modules/$1/package.json').version" 2>/dev/null || echo '?'; }
echo "reference: installed tfjs $(ver @tensorflow/tfjs) and onnxruntime-node $(ver onnxruntime-node) in tests/reference/node_modules"
# The CPU runtime must load under this node (N-API 6 binary in the package).
if ! (cd "$ref" && node -e "require('onnxruntime-node')" 2>/dev/null); then
  echo "reference: warning: onnxruntime-node does not load under node $(node --version); the ONNX reference test will skip" >&2
fi
