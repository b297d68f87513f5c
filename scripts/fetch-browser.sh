#!/usr/bin/env bash
# Installs what the browser test (tests/browser/pages.test.js, CTest
# test-web-pages) drives Chromium with: playwright-core at the version pinned
# in tests/browser/package-lock.json, integrity-checked by npm ci. It never
# downloads a browser: the test runs the system's Chromium (/usr/bin/chromium,
# from scripts/install.sh --test; GG_CHROMIUM overrides the path).
# Idempotent: a second run only compares a stamp (offline, instant). The npm
# download cache lives in $GPUGUARD_CACHE/npm (default ~/.cache/gpuguard/npm).
# Usage: scripts/fetch-browser.sh [--force]
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
dir="$here/../tests/browser"
cache=${GPUGUARD_CACHE:-$HOME/.cache/gpuguard}
force=0
[ "${1:-}" = "--force" ] && force=1

command -v node >/dev/null || { echo "browser: node not found (apt-get install nodejs npm)" >&2; exit 1; }
command -v npm >/dev/null || { echo "browser: npm not found (apt-get install npm)" >&2; exit 1; }
chromium=${GG_CHROMIUM:-/usr/bin/chromium}
[ -x "$chromium" ] ||
  echo "browser: warning: $chromium not found; the browser test needs it (scripts/install.sh --test installs chromium)" >&2

want=$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)
stamp="$dir/node_modules/.gg-lock-sha256"
if [ "$force" = 0 ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] &&
   [ -f "$dir/node_modules/playwright-core/package.json" ]; then
  echo "browser: playwright-core already installed in tests/browser/node_modules"
  exit 0
fi

mkdir -p "$cache/npm"
echo "browser: npm ci in tests/browser (pinned by package-lock.json; no browser download)"
(cd "$dir" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --prefer-offline \
  --cache "$cache/npm" --loglevel=error)
echo "$want" > "$stamp"
echo "browser: installed playwright-core $(node -p "require('$dir/node_modules/playwright-core/package.json').version" 2>/dev/null || echo '?') in tests/browser/node_modules"
