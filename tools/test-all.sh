#!/usr/bin/env bash
# The whole test suite, as CI runs it: Release build + tests, then ASan+UBSan build + tests
# (which include the install/find_package/pkg-config check). Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=${FERN_JOBS:-2}
for preset in release asan; do
  echo "=== $preset: configure + build"
  cmake --preset "$preset" >/dev/null
  cmake --build --preset "$preset" -j "$jobs"
  echo "=== $preset: test"
  ctest --preset "$preset" -j "$jobs"
done
