#!/usr/bin/env bash
# Hook cost (GitHub issue 3): what libfern_interpose.so adds to the calls it intercepts.
#   1. bench_hook_cost (bench/hook_cost.cpp) RUNS times plain and RUNS times under
#      LD_PRELOAD=libfern_interpose.so, interleaved, pinned to CPU: (a) on a thread without a hub
#      (goal: < 2 ns added), (b) in a fiber on a hub, 1-byte reads/writes that complete at once
#      (goal: < 5% added). Each figure is a same-process comparison with libc's own function.
#   2. The anchors' syscall_cost under their passthrough_shim.so and under fern's shim, through
#      run_all.sh's EXTRA_SYSCALL, in the same run_all.sh invocation.
#   3. Instructions per call (callgrind; deterministic, so unaffected by load): hooked, direct,
#      and the shim's system call made directly.
# Then bench/hook_table.py prints the markdown for bench/RESULTS.md.
#
# usage: bench/hook_cost.sh [-b BUILD_DIR] [-o OUT_DIR] [--no-build] [--no-anchors] [--no-callgrind]
#   -b DIR           build directory (default <repo>/build/release, configured with the release preset)
#   -o DIR           output directory (default /tmp/fern-hook-<timestamp>)
#   --no-anchors     skip step 2;  --no-callgrind: skip step 3
# env: RUNS=5 CALLS=400000 REPS=9 (bench_hook_cost arguments) CPU=1 (pinned core)
#   ANCHORS=<repo>/../shared/anchors (run from a private copy in <BUILD_DIR>/anchors)
# Every program runs under `timeout`.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$ROOT/build/release
OUT=""
DO_BUILD=1
DO_ANCHORS=1
DO_CG=1
while (($#)); do
    case $1 in
    -b) BUILD=$(realpath -m "$2"); shift 2 ;;
    -o) OUT=$(realpath -m "$2"); shift 2 ;;
    --no-build) DO_BUILD=0; shift ;;
    --no-anchors) DO_ANCHORS=0; shift ;;
    --no-callgrind) DO_CG=0; shift ;;
    -h | --help) awk 'NR > 1 && /^#/ { print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
RUNS=${RUNS:-5}
CALLS=${CALLS:-400000}
REPS=${REPS:-9}
CPU=${CPU:-1}
ANCHORS=${ANCHORS:-$ROOT/../shared/anchors}
PY=/usr/bin/python3
OUT=${OUT:-/tmp/fern-hook-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT" || exit 1
log() { printf '%s  %s\n' "$(date +%H:%M:%S)" "$*" | tee -a "$OUT/run.log" >&2; }

# ------------------------------------------------------------------------------------ build ----
if ((DO_BUILD)); then
    log "build: $BUILD (Release)"
    if [[ ! -f $BUILD/CMakeCache.txt ]]; then
        if [[ $BUILD == "$ROOT/build/release" ]]; then
            (cd "$ROOT" && cmake --preset release) >"$OUT/build.log" 2>&1 || exit 1
        else
            cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release >"$OUT/build.log" 2>&1 ||
                exit 1
        fi
    fi
    cmake --build "$BUILD" -j2 --target bench_hook_cost fern_interpose >>"$OUT/build.log" 2>&1 ||
        { tail -20 "$OUT/build.log"; exit 1; }
fi
[[ $(sed -n 's/^CMAKE_BUILD_TYPE:STRING=//p' "$BUILD/CMakeCache.txt") == Release ]] ||
    log "WARNING: $BUILD is not a Release build"
BIN=$BUILD/bench/bench_hook_cost
SHIM=$BUILD/interpose/libfern_interpose.so
for f in "$BIN" "$SHIM"; do [[ -e $f ]] || { echo "missing $f" >&2; exit 1; }; done
PIN=()
if taskset -c "$CPU" true 2>/dev/null; then PIN=(taskset -c "$CPU"); else log "NOTE: not pinned"; fi

# ---------------------------------------------------------------------- 1. bench_hook_cost ----
RAW=$OUT/raw_hook.tsv
: >"$RAW"
rec() { # rec RUN CMD... : RESULT lines -> name value unit run
    local run=$1 out
    shift
    out=$(timeout 300 "$@" 2>>"$OUT/stderr.log") || log "WARN: exit $?: $*"
    printf '%s\n' "$out" | awk -v r="$run" 'BEGIN { OFS = "\t" } /^RESULT / { print $2, $3, $4, r }' >>"$RAW"
}
log "bench_hook_cost: $RUNS runs each plain and under the shim (calls=$CALLS reps=$REPS), CPU $CPU"
for r in $(seq "$RUNS"); do
    if ((r % 2)); then
        rec "$r" "${PIN[@]}" "$BIN" "$CALLS" "$REPS"
        rec "$r" env LD_PRELOAD="$SHIM" "${PIN[@]}" "$BIN" "$CALLS" "$REPS"
    else
        rec "$r" env LD_PRELOAD="$SHIM" "${PIN[@]}" "$BIN" "$CALLS" "$REPS"
        rec "$r" "${PIN[@]}" "$BIN" "$CALLS" "$REPS"
    fi
done

# ------------------------------------------------------------------ 2. anchors syscall_cost ----
SYS_RAW=""
if ((DO_ANCHORS)); then
    if [[ -x $ANCHORS/run_all.sh ]]; then
        COPY=$BUILD/anchors # the anchors are read-only: a private copy, built once
        mkdir -p "$COPY" && chmod -R u+w "$COPY" &&
            cp -r --preserve=timestamps "$ANCHORS/." "$COPY/" && chmod -R u+w "$COPY" || exit 1
        log "anchors: run_all.sh syscall, RUNS=$RUNS, with syscall_cost under fern's shim as EXTRA_SYSCALL"
        # syscall_cost names its rows shim_* under any LD_PRELOAD: fern's become fern_*.
        EXTRA_SYSCALL="env LD_PRELOAD=$SHIM bin/syscall_cost 10000000 | sed 's/^RESULT shim_/RESULT fern_/'" \
            RUNS=$RUNS CLI_CPU=$CPU timeout 1200 "$COPY/run_all.sh" syscall >"$OUT/anchors.log" 2>&1 ||
            log "WARN: run_all.sh syscall exited $? (see $OUT/anchors.log)"
        SYS_DIR=$(readlink -f "$COPY/results/latest")
        if [[ -s $SYS_DIR/raw_syscall.tsv ]]; then
            cp "$SYS_DIR/raw_syscall.tsv" "$OUT/" && SYS_RAW=$OUT/raw_syscall.tsv
            log "anchors run: $SYS_DIR"
        fi
    else
        log "SKIPPED anchors: none at $ANCHORS"
    fi
fi

# ------------------------------------------------------------------------- 3. callgrind ----
CG=""
if ((DO_CG)); then
    if command -v valgrind >/dev/null; then
        CG=$OUT/callgrind.tsv
        : >"$CG"
        log "callgrind: instructions per call (the difference of 1,000 and 11,000 calls)"
        ir() { # ir CASE VARIANT N -> instructions collected by the whole run
            timeout 300 env LD_PRELOAD="$SHIM" valgrind --tool=callgrind \
                --callgrind-out-file="$OUT/callgrind.$1.$2.$3.out" "$BIN" --count "$1" "$2" "$3" 2>&1 |
                sed -n 's/.*Collected : //p'
        }
        for c in nohub_read_eagain nohub_write_devnull hub_nonblock_read_eagain hub_pipe_read1 hub_pipe_write1 hub_sock_read1 \
            hub_sock_write1; do
            for v in hooked direct same; do
                [[ $c == *_eagain || $c == *devnull ]] && [[ $v == same ]] && continue
                a=$(ir "$c" "$v" 1000)
                b=$(ir "$c" "$v" 11000)
                [[ -n $a && -n $b ]] && printf '%s\t%s\t%s\n' "$c" "$v" "$(((b - a) / 10000))" >>"$CG"
            done
        done
    else
        log "SKIPPED callgrind: valgrind not installed"
    fi
fi

# ------------------------------------------------------------------------------ report ----
"$PY" "$ROOT/bench/hook_table.py" "$RAW" "${SYS_RAW:--}" "${CG:--}" \
    "RUNS=$RUNS CALLS=$CALLS REPS=$REPS, CPU $CPU" | tee "$OUT/hook_table.md"
log "output: $OUT (raw_hook.tsv, raw_syscall.tsv, callgrind.tsv and .out files, hook_table.md)"
