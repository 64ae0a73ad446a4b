#!/usr/bin/env bash
# ctest driver for fern-run: options and --help, LD_PRELOAD and FERN_* as the program sees them,
# exit statuses, the shim really loaded and cooperating (a shell pipeline, which needs the exec
# hand-over), and the same from an installed tree (bin/fern-run + lib/, no LD_LIBRARY_PATH).
# usage: fern_run_test.sh <fern-run> <build dir> <scratch dir> [install]
set -euo pipefail
run=$1 build=$2 work=$3 install=${4:-}
fail() { echo "FAIL: $*" >&2; exit 1; }
expect_eq() { [[ "$1" == "$2" ]] || fail "$3: expected '$2', got '$1'"; }

check() {
  local fr=$1
  # --help explains every option and variable.
  local help
  help=$("$fr" --help)
  for word in --stack-size --threadpool-size --debug -v --library --help --version \
              LD_PRELOAD FERN_STACK_SIZE FERN_THREADPOOL_SIZE FERN_DEBUG; do
    grep -q -- "$word" <<<"$help" || fail "--help does not mention $word"
  done
  "$fr" --version | grep -q "fern" || fail "--version"

  # The shim comes first in LD_PRELOAD (after a sanitizer runtime), existing entries after it.
  local libm="" pre
  for libm in /lib/x86_64-linux-gnu/libm.so.6 /lib/aarch64-linux-gnu/libm.so.6 /lib64/libm.so.6 \
              /usr/lib/libm.so.6; do
    [[ -r "$libm" ]] && break
  done
  pre=$(LD_PRELOAD=$libm "$fr" -- sh -c 'echo "$LD_PRELOAD"')
  [[ "$pre" == *libfern_interpose.so:$libm ]] || fail "LD_PRELOAD: $pre"
  local shim=${pre%%:$libm}
  shim=${shim##*:}
  [[ "$shim" == /* && -r "$shim" ]] || fail "the shim path is not absolute and readable: $shim"

  # Options become FERN_* variables; both --opt value and --opt=value.
  expect_eq "$("$fr" --stack-size 64K --threadpool-size=3 -v -- sh -c \
      'echo "$FERN_STACK_SIZE $FERN_THREADPOOL_SIZE $FERN_DEBUG"')" "64K 3 1" "FERN_* variables"
  expect_eq "$(FERN_STACK_SIZE=1M "$fr" sh -c 'echo "$FERN_STACK_SIZE"')" "1M" "a variable set by hand"

  # Exit statuses: the program's own, 125 usage, 126 not executable, 127 not found.
  set +e
  "$fr" -- sh -c 'exit 7'; expect_eq $? 7 "program status"
  "$fr" --stack-size 1 -- true 2>/dev/null; expect_eq $? 125 "bad --stack-size"
  "$fr" --threadpool-size 0 -- true 2>/dev/null; expect_eq $? 125 "bad --threadpool-size"
  "$fr" --no-such-option -- true 2>/dev/null; expect_eq $? 125 "unknown option"
  "$fr" 2>/dev/null; expect_eq $? 125 "no program"
  "$fr" -- /nonexistent/program 2>/dev/null; expect_eq $? 127 "missing program"
  "$fr" -- /etc/passwd 2>/dev/null; expect_eq $? 126 "not executable"
  "$fr" --library /nonexistent.so -- true 2>/dev/null; expect_eq $? 125 "bad --library"
  set -e

  # The program runs with the shim loaded, and a pipeline through exec'd children works (cat
  # gets a blocking stdin even though the shell's pipe is non-blocking underneath).
  local maps
  maps=$("$fr" -- grep -c libfern_interpose /proc/self/maps)
  [[ "$maps" -ge 1 ]] || fail "the shim is not mapped in the program"
  expect_eq "$("$fr" -- sh -c '(sleep 0.1; echo piped) | cat | cat')" "piped" "a pipeline"
  "$fr" --library "$shim" -- true || fail "--library"
  # --debug: the shim announces itself on stderr.
  "$fr" -v -- true 2>&1 | grep -q "libfern_interpose.so active in pid" || fail "--debug"
  [[ -z "$("$fr" -- true 2>&1)" ]] || fail "the shim writes to stderr without --debug"
}

if [[ "${FERN_TEST_ASAN:-}" == 1 ]]; then
  export ASAN_OPTIONS=detect_leaks=0  # the children are not instrumented
fi
check "$run"

if [[ "$install" == install ]]; then
  rm -rf "$work" && mkdir -p "$work"
  cmake --install "$build" --prefix "$work/prefix" >/dev/null
  env -u LD_LIBRARY_PATH bash -c "$(declare -f fail expect_eq check); check '$work/prefix/bin/fern-run'"
  pre=$("$work/prefix/bin/fern-run" -- sh -c 'echo "$LD_PRELOAD"')
  [[ "$pre" == "$work"/prefix/lib*/libfern_interpose.so ]] || fail "installed LD_PRELOAD: $pre"
fi
echo "fern-run checks passed"
