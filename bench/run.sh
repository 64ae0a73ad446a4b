#!/usr/bin/env bash
# fern's benchmarks, each beside its baselines in the same run: builds bench/ (or takes a build
# dir), runs fern's programs (which measure a raw Boost.Context baseline in the same process)
# several times pinned to one CPU, and, when they are installed, the anchors' Go (GOMAXPROCS=1)
# and gevent programs interleaved with them. Writes raw.tsv, logs and report.md (medians, ratios,
# goals met or not) to an output directory outside the source tree. See bench/RESULTS.md.
#
# usage: bench/run.sh [-b BUILD_DIR] [-o OUT_DIR] [--quick] [--no-peers] [--anchors]
#   -b DIR      use this build directory (configured and built if needed; default <repo>/build-bench)
#   -o DIR      output directory (default /tmp/fern-bench-<timestamp>)
#   --quick     3 switch runs, 1 spawn run, 1 run of the 100k memory cases, no 1M case (~1 min)
#   --no-peers  skip the Go and gevent anchors
#   --anchors   instead, run a copy of the anchors' own run_all.sh (sections switch spawn mem)
#               with fern's programs as its EXTRA_SWITCH/EXTRA_SPAWN/EXTRA_MEM hooks; it needs
#               everything run_all.sh checks for (g++, go, wrk, python3-gevent)
# env knobs: RUNS=5 SPAWN_RUNS=3 MEM_RUNS=3 BIG=1 (1M memory case) GEVENT_BIG=0 (gevent 1M: ~8 GiB,
#   ~30 s) CPU=1 (pinned core) BUDGET=900 (seconds; later runs are skipped past it)
#   ANCHORS=<repo>/../shared/anchors
# Every program runs under `timeout`; every loop is bounded by a run count and by BUDGET.
set -u
ARGS="$*"
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$ROOT/build-bench
OUT=""
QUICK=0
PEERS=1
MODE=direct
while (($#)); do
    case $1 in
    -b) BUILD=$(realpath -m "$2"); shift 2 ;;
    -o) OUT=$(realpath -m "$2"); shift 2 ;;
    --quick) QUICK=1; shift ;;
    --no-peers) PEERS=0; shift ;;
    --anchors) MODE=anchors; shift ;;
    -h | --help) awk 'NR > 1 && /^#/ { print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
if ((QUICK)); then
    RUNS=${RUNS:-3} SPAWN_RUNS=${SPAWN_RUNS:-1} MEM_RUNS=${MEM_RUNS:-1} BIG=${BIG:-0}
fi
RUNS=${RUNS:-5}
SPAWN_RUNS=${SPAWN_RUNS:-3}
MEM_RUNS=${MEM_RUNS:-3}
BIG=${BIG:-1}
GEVENT_BIG=${GEVENT_BIG:-0}
CPU=${CPU:-1}
BUDGET=${BUDGET:-900}
ANCHORS=${ANCHORS:-$ROOT/../shared/anchors}
PY=/usr/bin/python3 # Debian's python3, where python3-gevent installs
STAMP=$(date +%Y%m%d-%H%M%S)
OUT=${OUT:-/tmp/fern-bench-$STAMP}
mkdir -p "$OUT/bin" || exit 1
RAW=$OUT/raw.tsv
: >"$RAW"
T_START=$(date +%s)

log() { printf '%s  %s\n' "$(date +%H:%M:%S)" "$*" | tee -a "$OUT/run.log" >&2; }

# ------------------------------------------------------------------------------------ build ----
log "build: $BUILD"
if [[ ! -f $BUILD/CMakeCache.txt ]]; then
    cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DFERN_BUILD_TESTS=OFF \
        >"$OUT/build.log" 2>&1 || { cat "$OUT/build.log"; exit 1; }
fi
cmake --build "$BUILD" -j2 --target bench_switch bench_spawn bench_mem >>"$OUT/build.log" 2>&1 ||
    { tail -40 "$OUT/build.log"; exit 1; }
BIN=$BUILD/bench
for p in bench_switch bench_spawn bench_mem; do
    [[ -x $BIN/$p ]] || { echo "missing $BIN/$p" >&2; exit 1; }
done

PIN=()
if command -v taskset >/dev/null && taskset -c "$CPU" true 2>/dev/null; then
    PIN=(taskset -c "$CPU")
else
    log "NOTE: cannot pin to CPU $CPU (taskset missing or no such CPU): running unpinned"
fi

# ------------------------------------------------------------------------- --anchors mode ----
if [[ $MODE == anchors ]]; then
    [[ -x $ANCHORS/run_all.sh ]] || { echo "no anchors at $ANCHORS" >&2; exit 1; }
    # The shared anchors are read-only: run a private copy; its results/ land in $OUT/anchors.
    cp -r "$ANCHORS" "$OUT/anchors" && chmod -R u+w "$OUT/anchors" || exit 1
    export EXTRA_SWITCH="$BIN/bench_switch 5000000"
    export EXTRA_SPAWN="$BIN/bench_spawn 1000000"
    export EXTRA_MEM="$BIN/bench_mem 100000"
    export BIG
    log "running $OUT/anchors/run_all.sh switch spawn mem with fern's programs as EXTRA_* hooks"
    timeout 1800 "$OUT/anchors/run_all.sh" switch spawn mem
    rc=$?
    log "anchors run exited $rc; tables in $OUT/anchors/results/latest/SUMMARY.md"
    exit $rc
fi

# ------------------------------------------------------------------------------- peers ----
HAVE_GO=0
HAVE_GEVENT=0
SKIPPED=()
if ((PEERS)); then
    if [[ ! -d $ANCHORS/src ]]; then
        SKIPPED+=("Go and gevent: anchors not found at $ANCHORS")
    else
        if command -v go >/dev/null; then
            export GOCACHE=${GOCACHE:-$OUT/go-cache}
            ok=1
            for p in switch spawn mem; do
                (cd "$ANCHORS/src/go/$p" && timeout 300 go build -o "$OUT/bin/go_$p" main.go) \
                    >>"$OUT/build.log" 2>&1 || ok=0
            done
            if ((ok)); then HAVE_GO=1; else SKIPPED+=("Go: building the anchors failed (see build.log)"); fi
        else
            SKIPPED+=("Go: not installed (apt-get install golang-go)")
        fi
        if [[ -x $PY ]] && $PY -c 'import gevent' 2>/dev/null; then
            HAVE_GEVENT=1
        else
            SKIPPED+=("gevent: not installed (apt-get install python3-gevent)")
        fi
    fi
else
    SKIPPED+=("Go and gevent: --no-peers")
fi
for s in "${SKIPPED[@]}"; do log "SKIPPED peer -- $s"; done

# ----------------------------------------------------------------------------- helpers ----
over_budget() { (($(date +%s) - T_START > BUDGET)); }

# rec SECTION RUN TIMEOUT CMD... : runs CMD pinned, appends its RESULT lines to raw.tsv as
# name, value, unit, run, section, note.
rec() {
    local sec=$1 run=$2 tmo=$3
    shift 3
    if over_budget; then
        log "SKIPPED (over the ${BUDGET}s budget): $*"
        return 0
    fi
    local out rc
    out=$(timeout "$tmo" "${PIN[@]}" "$@" </dev/null 2>>"$OUT/stderr.log")
    rc=$?
    printf '# run %s: %s\n%s\n' "$run" "$*" "$out" >>"$OUT/log_$sec.txt"
    ((rc == 0)) || log "WARN: exit $rc: $*"
    printf '%s\n' "$out" | awk -v r="$run" -v s="$sec" 'BEGIN { OFS = "\t" }
        /^RESULT / { note = $0; sub(/^RESULT +[^ ]+ +[^ ]+ +[^ ]+ */, "", note)
                     print $2, $3, $4, r, s, note }' >>"$RAW"
}

# other_busy -> "busy total" jiffies of every CPU but the pinned one (user+nice+system+irq+softirq
# of total), to tell how much other load shared the machine with a section.
other_busy() {
    awk -v c="cpu$CPU" '$1 ~ /^cpu[0-9]+$/ && $1 != c {
        b += $2 + $3 + $4 + $7 + $8; t += $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }
        END { print b + 0, t + 0 }' /proc/stat
}
declare -A BUSY
busy_begin() { B0=$(other_busy); }
busy_end() { # busy_end SECTION
    read -r b0 t0 <<<"$B0"
    read -r b1 t1 <<<"$(other_busy)"
    BUSY[$1]=$(awk -v d=$((b1 - b0)) -v t=$((t1 - t0)) 'BEGIN { printf "%.0f", t ? d / t * 100 : 0 }')
    log "$1: other CPUs were ${BUSY[$1]}% busy"
}

# ------------------------------------------------------------------------------- runs ----
busy_begin
log "switch: $RUNS runs"
for r in $(seq "$RUNS"); do
    rec switch "$r" 120 "$BIN/bench_switch" 5000000
    ((HAVE_GO)) && rec switch "$r" 120 env GOMAXPROCS=1 "$OUT/bin/go_switch" -n 2000000
    ((HAVE_GEVENT)) && rec switch "$r" 120 "$PY" "$ANCHORS/src/py/switch.py" 500000
done

busy_end switch
busy_begin
log "spawn: $SPAWN_RUNS runs"
for r in $(seq "$SPAWN_RUNS"); do
    rec spawn "$r" 300 "$BIN/bench_spawn" 1000000
    if ((HAVE_GO)); then
        rec spawn "$r" 120 env GOMAXPROCS=1 "$OUT/bin/go_spawn" -n 1000000
        rec spawn "$r" 120 env GOMAXPROCS=1 "$OUT/bin/go_spawn" -n 1000000 -batch 1000
    fi
    ((HAVE_GEVENT)) && rec spawn "$r" 120 "$PY" "$ANCHORS/src/py/spawn.py" 200000
done

busy_end spawn
busy_begin
log "mem: $MEM_RUNS runs of the 100k cases, BIG=$BIG"
for r in $(seq "$MEM_RUNS"); do
    rec mem "$r" 120 "$BIN/bench_mem" 100000
    if ((HAVE_GO)); then
        rec mem "$r" 120 env GOMAXPROCS=1 "$OUT/bin/go_mem" -n 100000 -mode chan
        rec mem "$r" 120 env GOMAXPROCS=1 "$OUT/bin/go_mem" -n 100000 -mode sleep
    fi
    if ((HAVE_GEVENT)); then
        rec mem "$r" 120 "$PY" "$ANCHORS/src/py/mem.py" 100000 event
        rec mem "$r" 120 "$PY" "$ANCHORS/src/py/mem.py" 100000 sleep
    fi
done
if ((BIG)); then
    rec mem 1 300 "$BIN/bench_mem" 1000000
    if ((HAVE_GO)); then
        rec mem 1 120 env GOMAXPROCS=1 "$OUT/bin/go_mem" -n 1000000 -mode chan
        rec mem 1 120 env GOMAXPROCS=1 "$OUT/bin/go_mem" -n 1000000 -mode sleep
    fi
    ((HAVE_GEVENT && GEVENT_BIG)) && rec mem 1 300 "$PY" "$ANCHORS/src/py/mem.py" 1000000 event
fi
busy_end mem
T_END=$(date +%s)

# ------------------------------------------------------------------------------ report ----
# stat NAME -> "median min max runs" (empty if NAME has no result)
stat() {
    awk -F'\t' -v n="$1" '$1 == n { print $2 }' "$RAW" | sort -g | awk '
        { v[NR] = $1 }
        END { if (NR == 0) exit
              m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
              print m, v[1], v[NR], NR }'
}
med() { stat "$1" | awk '{ print $1 }'; }
unit() { awk -F'\t' -v n="$1" '$1 == n { u = $3 } END { print u }' "$RAW"; }
note() { awk -F'\t' -v n="$1" '$1 == n { u = $6 } END { print u }' "$RAW"; }
num() { awk -v v="$1" 'BEGIN { a = v < 0 ? -v : v
    if (a >= 1e6) printf "%.2fM", v / 1e6; else if (a >= 1e4) printf "%.1fk", v / 1e3;
    else if (a >= 100) printf "%.0f", v; else if (a >= 10) printf "%.1f", v; else printf "%.2f", v }'; }
ratio() { # ratio A B -> A/B, or "-" if either is missing
    [[ -n $1 && -n $2 ]] || { echo "-"; return; }
    awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "-"; else printf "%.3g", a / b }'
}
# pratio NAME BASELINE -> the median over runs of NAME/BASELINE, each run's pair taken from the
# same run (the same program invocation, or invocations next to each other), so load that
# slows one run down cancels out; empty if they share no run.
pratio() {
    awk -F'\t' -v a="$1" -v b="$2" '$1 == a { va[$4] = $2 } $1 == b { vb[$4] = $2 }
        END { for (r in va) if ((r in vb) && vb[r] != 0) print va[r] / vb[r] }' "$RAW" |
        sort -g | awk '{ v[NR] = $1 }
        END { if (NR) printf "%.3g", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
# row NAME [BASELINE] : one table row; the last column is NAME/BASELINE, the median of per-run
# ratios
row() {
    local s
    s=$(stat "$1")
    [[ -z $s ]] && return 0
    read -r m lo hi n <<<"$s"
    local r="" b=${2:-}
    [[ -n $b ]] && r="$(pratio "$1" "$b")"
    printf '| %s | **%s** | %s–%s | %s | %s | %s | %s |\n' "$1" "$(num "$m")" "$(num "$lo")" \
        "$(num "$hi")" "$(unit "$1")" "$n" "${r:--}" "$(note "$1")"
}
head_row() { printf '| benchmark | median | min–max | unit | runs | %s | note (last run) |\n|---|---:|---|---|---:|---:|---|\n' "$1"; }
# goal TEXT MET(0/1/empty)
goal() {
    local v
    case ${2:-} in 1) v="**MET**" ;; 0) v="**NOT MET**" ;; *) v="not measured" ;; esac
    printf '| %s | %s |\n' "$1" "$v"
}
le() { [[ -n $1 && -n $2 ]] && awk -v a="$1" -v b="$2" 'BEGIN { print (a <= b) ? 1 : 0 }'; }
ge() { [[ -n $1 && -n $2 ]] && awk -v a="$1" -v b="$2" 'BEGIN { print (a >= b) ? 1 : 0 }'; }

MEMN=100k
[[ -n $(med mem_fern_1000k) ]] && MEMN=1000k
REPORT=$OUT/report.md
{
    echo "# fern benchmarks, run $STAMP"
    echo
    echo "- command: \`bench/run.sh${ARGS:+ $ARGS}\` (RUNS=$RUNS SPAWN_RUNS=$SPAWN_RUNS MEM_RUNS=$MEM_RUNS BIG=$BIG), pinned: ${PIN[*]:-no}"
    echo "- date: $(date -Is), wall time $((T_END - T_START)) s"
    echo "- CPU: $(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1), $(nproc) CPUs; kernel $(uname -r); memory $(free -g | awk '/Mem:/ { print $2 " GiB" }')"
    echo "- THP: $(cat /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null); vm.max_map_count $(cat /proc/sys/vm/max_map_count)"
    echo "- g++ $(g++ -dumpfullversion 2>/dev/null); Boost $(dpkg-query -W -f='${Version}' libboost-context-dev 2>/dev/null); build $BUILD ($(sed -n 's/^CMAKE_BUILD_TYPE:STRING=//p' "$BUILD/CMakeCache.txt"))"
    ((HAVE_GO)) && echo "- Go: $(go version | awk '{ print $3 }'), GOMAXPROCS=1"
    ((HAVE_GEVENT)) && echo "- gevent $($PY -c 'import gevent; print(gevent.__version__)'), greenlet $($PY -c 'import greenlet; print(greenlet.__version__)'), $($PY --version 2>&1)"
    for s in "${SKIPPED[@]}"; do echo "- **skipped peer** -- $s"; done
    echo "- load average at the end: $(cut -d' ' -f1-3 /proc/loadavg); other CPUs busy during switch ${BUSY[switch]:-?}%, spawn ${BUSY[spawn]:-?}%, mem ${BUSY[mem]:-?}%"
    echo "  (load on another CPU slows the pinned one down by 1.5-3x here, unevenly; a figure taken while"
    echo "  it was busy is not comparable with a quiet run: compare ratios from the same run)"
    echo
    echo "## 1. Switch (ns per switch unless noted; lower is better)"
    echo
    echo "A fern yield is one switch. \"x raw\" = the median over runs of (value / raw_fcontext_switch of the same run)."
    echo
    head_row "x raw"
    for n in raw_fcontext_switch raw_yieldfn_pushjmp_same_fn raw_yieldfn_pushjmp_diff_fn raw_yieldfn_call_same_fn \
        fern_yield_same_fn fern_yield_diff_fn fern_yield_ring100 go_gosched_2g_p1 greenlet_raw_switch_two \
        gevent_sleep0_2g; do
        row "$n" raw_fcontext_switch
    done
    # Round trips (two switches): no "x raw" column, the unit differs.
    for n in fern_roundtrip_same_fn fern_roundtrip_diff_fn go_chan_pingpong_p1 gevent_channel_pingpong; do
        row "$n"
    done
    for n in ratio_yield_same_fn_vs_raw ratio_yield_diff_fn_vs_raw ratio_yield_ring100_vs_raw \
        ratio_yield_same_fn_vs_raw_yieldfn ratio_yield_diff_fn_vs_raw_yieldfn; do
        row "$n"
    done
    echo
    echo "## 2. Spawn + join (tasks/s; higher is better)"
    echo
    echo "\"x raw\" = fern's (or the peer's) tasks/s over the raw pool's of the same batch size, per run, median."
    echo
    head_row "x raw"
    row spawn_raw_b1000
    row spawn_fern_b1000 spawn_raw_b1000
    row spawn_raw_b1
    row spawn_raw_b1M
    row spawn_fern_b1M spawn_raw_b1M
    row spawn_raw_b1000_warm
    row spawn_fern_b1000_warm spawn_raw_b1000_warm
    row spawn_raw_b1M_warm
    row spawn_fern_b1M_warm spawn_raw_b1M_warm
    row go_spawn_b1000_cold_p1 spawn_raw_b1000
    row go_spawn_b1000000_cold_p1 spawn_raw_b1M
    row go_spawn_b1000000_warm_p1 spawn_raw_b1M_warm
    row gevent_spawn_joinall
    row greenlet_raw_create_run
    row ratio_spawn_b1000_fern_vs_raw
    row ratio_spawn_b1M_fern_vs_raw
    row ratio_spawn_fern_b1000_vs_raw_b1
    echo
    echo "## 3. Memory per parked fiber (VmRSS delta / N, bytes; lower is better)"
    echo
    echo "\"x raw\" = over the raw unguarded fibers with the same stack size and N, per run, median."
    echo
    head_row "x raw"
    for k in 100k 1000k; do
        row mem_raw_$k
        row mem_fern_$k mem_raw_$k
        row mem_raw_${k}_pte
        row mem_fern_${k}_pte mem_raw_${k}_pte
        row mem_fern_${k}_vma_delta
        row mem_fern_${k}_guard_pages_per_fiber
        row mem_fern_${k}_completed
        row mem_fern_${k}_spawn_park
        row go_mem_chan_$k mem_raw_$k
        row go_mem_sleep_$k mem_raw_$k
        row gevent_mem_event_$k mem_raw_$k
        row gevent_mem_sleep_$k mem_raw_$k
        row ratio_mem_${k}_fern_vs_raw
    done
    echo
    echo "## Goals"
    echo
    echo "| goal | result |"
    echo "|---|---|"
    r=$(med ratio_yield_same_fn_vs_raw)
    goal "yield, same function: <= 3x raw switch (measured $(num "${r:-0}")x, $(num "$(med fern_yield_same_fn)") ns)" "$(le "$r" 3)"
    r=$(med ratio_yield_diff_fn_vs_raw)
    goal "yield, different functions: <= 3x raw switch (measured $(num "${r:-0}")x, $(num "$(med fern_yield_diff_fn)") ns)" "$(le "$r" 3)"
    g=$(med go_gosched_2g_p1)
    [[ -n $g ]] && goal "yield well under Go Gosched ($(num "$g") ns): fern $(ratio "$(med fern_yield_same_fn)" "$g")x of Go" "$(le "$(med fern_yield_same_fn)" "$g")"
    g=$(med gevent_sleep0_2g)
    [[ -n $g ]] && goal "yield well under gevent sleep(0) ($(num "$g") ns): fern $(ratio "$(med fern_yield_same_fn)" "$g")x of gevent" "$(le "$(med fern_yield_same_fn)" "$g")"
    r=$(med spawn_fern_b1000)
    goal "spawn+join b1000 >= 5 M fibers/s (measured $(num "${r:-0}")/s)" "$(ge "$r" 5000000)"
    g=$(med go_spawn_b1000000_cold_p1)
    [[ -n $g ]] && goal "spawn+join b1M beside Go b1M ($(num "$g")/s): fern $(num "$(med spawn_fern_b1M)")/s = $(ratio "$(med spawn_fern_b1M)" "$g")x Go" "$(ge "$(med spawn_fern_b1M)" "$g")"
    r=$(med mem_fern_$MEMN)
    goal "$MEMN parked (half sleep, half event), guarded: RSS <= 4.5 KiB = 4608 B/fiber (measured $(num "${r:-0}") B)" "$(le "$r" 4608)"
    r=$(med mem_fern_${MEMN}_completed)
    want=$((${MEMN%k} * 1000))
    goal "$MEMN parked fibers all complete after event.set + kill (completed: ${r:-none} of $want)" "$(ge "${r:-0}" "$want")"
    r=$(med mem_fern_${MEMN}_vma_delta)
    goal "guards add no VMA per stack ($(num "${r:-0}") VMAs added for $MEMN stacks)" "$(le "$r" 100)"
} >"$REPORT"
cat "$REPORT"
log "done in $((T_END - T_START)) s; report: $REPORT; raw results: $RAW"
