#!/usr/bin/env bash
# Installs the TensorFlow.js reference (tests/reference: @tensorflow/tfjs and
# @tensorflow/tfjs-backend-wasm at the versions pinned in package-lock.json,
# integrity-checked by npm ci) for tests/test-reference and bench/bench-engine.sh.
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
   [ -f "$ref/node_modules/@tensorflow/tfjs-backend-wasm/package.json" ]; then
  echo "reference: tfjs already installed in tests/reference/node_modules"
  exit 0
fi

mkdir -p "$cache/npm"
echo "reference: npm ci in tests/reference (pinned by package-lock.json)"
(cd "$ref" && npm ci --no-audit --no-fund --prefer-offline --cache "$cache/npm" --loglevel=error)
echo "$want" > "$stamp"
echo "reference: installed $(node -p "require('$ref/node_modules/@tensorflow/tfjs/package.json').version" 2>/dev/null || echo '?') in tests/reference/node_modules"
