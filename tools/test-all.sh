#!/usr/bin/env bash
# The whole test suite, as CI runs it: g++ Release, clang Release, g++ ASan+UBSan, each built
# and tested, then the cross-thread tests under TSan. Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=${FERN_JOBS:-2}
run_preset() {  # preset [ctest args...]
  local preset=$1
  shift
  echo "=== $preset: configure + build"
  cmake --preset "$preset" >/dev/null
  cmake --build --preset "$preset" -j "$jobs"
  echo "=== $preset: test"
  ctest --preset "$preset" -j "$jobs" "$@"
}
run_preset release
run_preset clang
run_preset asan
# Where threads meet (post, hub handles, thread pools, per-thread hubs), with TSan's fiber API.
# Left out: the 100k-fiber tests (TSan counts each fiber against its 8128-thread limit), the
# stack-overflow death tests (TSan's own SEGV handler reports first and exits 66), and the
# 2000-connection load test (too slow under TSan for its bounded rounds).
run_preset tsan -E 'HundredThousand|OverflowTest|ThousandsOfHeld'
