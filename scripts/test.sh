#!/usr/bin/env bash
# Builds gpuguard twice (release, then AddressSanitizer + UBSan) and runs the
# whole CTest suite on each; after the release suite, tests/mutation.sh
# checks that the numeric tests catch deliberately wrong kernels (see
# docs/TESTING.md). Run scripts/install.sh --test first.
# Usage: scripts/test.sh [--no-sanitize] [--no-mutation]
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc 2>/dev/null || echo 2)
sanitize=1 mutation=1
for a in "$@"; do
  case $a in
    --no-sanitize) sanitize=0 ;;
    --no-mutation) mutation=0 ;;
    *) echo "usage: scripts/test.sh [--no-sanitize] [--no-mutation]" >&2; exit 2 ;;
  esac
done

run_suite() { # build-dir cmake-args...
  local dir=$1; shift
  cmake -S . -B "$dir" -DGG_WERROR=ON "$@" >/dev/null
  cmake --build "$dir" -j"$jobs"
  ctest --test-dir "$dir" --output-on-failure -j"$jobs"
}

echo "== release build"
run_suite build -DCMAKE_BUILD_TYPE=RelWithDebInfo
if [ "$mutation" = 1 ]; then
  echo "== mutation check (the numeric tests must catch wrong kernels)"
  GG_MUTATION_JOBS=$jobs tests/mutation.sh
fi
if [ "$sanitize" = 1 ]; then
  echo "== sanitizer build (ASan + UBSan)"
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
    LSAN_OPTIONS="suppressions=$PWD/tests/lsan.supp:print_suppressions=0" \
    run_suite build-asan -DCMAKE_BUILD_TYPE=Debug -DGG_SANITIZE=ON
fi
