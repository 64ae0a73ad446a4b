#!/usr/bin/env bash
# TCP echo over loopback (GitHub issue 3): fern's servers beside the anchors' hand-written epoll
# server, Go (GOMAXPROCS=1) and gevent, all under the same load in ONE run of the anchors'
# run_all.sh (section echo: 64-byte messages, closed loop, 100 and 1000 connections, server
# pinned to SRV_CPU, load client to CLI_CPU). fern's servers join through EXTRA_ECHO_SERVERS:
#   fern_cpp            examples/echo_server: fern::stream_server, a fiber per connection
#   fern_shim_linked    examples/blocking_echo_server: plain read/write, linked with the shim
#   fern_shim_preload   the same source built without the shim, run with LD_PRELOAD=libfern_interpose.so
# Before the run each fern server is checked: it echoes 64-byte messages byte for byte and runs
# on one thread. Then bench/echo_table.py prints the markdown for bench/RESULTS.md: msgs/s and
# the server's CPU time per message (process CPU seconds / messages), each as a ratio to the
# epoll server's in the same run.
#
# usage: bench/echo.sh [-b BUILD_DIR] [--no-build]
#   -b DIR      build directory (default <repo>/build/release, configured with the release preset)
#   --no-build  use the build as it is
# env: NET_RUNS=3 DUR=5 (measured seconds per load run, plus 1 s warm-up) SRV_CPU=0 CLI_CPU=1
#   ANCHORS=<repo>/../shared/anchors BUDGET=1800 (seconds for the whole anchors run)
# The anchors are read-only: they run from a private copy, <BUILD_DIR>/anchors (kept, so their
# binaries are built once); the run's directory is printed at the end. Every program is bounded
# in time (run_all.sh's own timeouts, and `timeout` around everything here).
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$ROOT/build/release
DO_BUILD=1
while (($#)); do
    case $1 in
    -b) BUILD=$(realpath -m "$2"); shift 2 ;;
    --no-build) DO_BUILD=0; shift ;;
    -h | --help) awk 'NR > 1 && /^#/ { print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
NET_RUNS=${NET_RUNS:-3}
DUR=${DUR:-5}
SRV_CPU=${SRV_CPU:-0}
CLI_CPU=${CLI_CPU:-1}
BUDGET=${BUDGET:-1800}
ANCHORS=${ANCHORS:-$ROOT/../shared/anchors}
PY=/usr/bin/python3
log() { printf '%s  %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# ------------------------------------------------------------------------------------ build ----
if ((DO_BUILD)); then
    log "build: $BUILD (Release)"
    if [[ ! -f $BUILD/CMakeCache.txt ]]; then
        if [[ $BUILD == "$ROOT/build/release" ]]; then
            (cd "$ROOT" && cmake --preset release) >/dev/null || exit 1
        else
            cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null || exit 1
        fi
    fi
    cmake --build "$BUILD" -j2 --target echo_server blocking_echo_server \
        bench_blocking_echo_preload fern_interpose >/dev/null || exit 1
fi
[[ $(sed -n 's/^CMAKE_BUILD_TYPE:STRING=//p' "$BUILD/CMakeCache.txt") == Release ]] ||
    log "WARNING: $BUILD is not a Release build"
SHIM=$BUILD/interpose/libfern_interpose.so
CPP_SRV=$BUILD/examples/echo_server
LINKED_SRV=$BUILD/examples/blocking_echo_server
PRELOAD_SRV=$BUILD/bench/bench_blocking_echo_preload
for f in "$SHIM" "$CPP_SRV" "$LINKED_SRV" "$PRELOAD_SRV"; do
    [[ -e $f ]] || { echo "missing $f (build it, or drop --no-build)" >&2; exit 1; }
done

# Labels as the tables show them; the commands take the port where run_all.sh puts "{port}".
FERN_SERVERS="fern_cpp=$CPP_SRV {port}
fern_shim_linked=$LINKED_SRV {port}
fern_shim_preload=env LD_PRELOAD=$SHIM $PRELOAD_SRV {port}"

# ------------------------------------------------------------------------------ smoke test ----
# Each fern server must echo 64-byte messages exactly, on 20 connections at once, from a single
# thread (Threads: in /proc/PID/status).
check_server() { # check_server LABEL COMMAND-with-{port}
    local port=18990 pid ok threads
    local cmd=${2//\{port\}/$port}
    bash -c "exec $cmd" </dev/null >/dev/null 2>&1 &
    pid=$!
    SMOKE_PID=$pid
    ok=$(timeout 20 "$PY" - "$port" <<'EOF'
import socket, sys, time
port = int(sys.argv[1])
for _ in range(100):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        break
    except OSError:
        time.sleep(0.1)
conns = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(20)]
for i in range(50):
    for k, c in enumerate(conns):
        msg = bytes((i * 31 + k * 7 + j) % 256 for j in range(64))
        c.sendall(msg)
        got = b""
        while len(got) < 64:
            part = c.recv(64 - len(got))
            if not part:
                print("closed"); sys.exit(1)
            got += part
        if got != msg:
            print("mismatch"); sys.exit(1)
print("ok")
EOF
    )
    threads=$(awk '/^Threads:/ { print $2 }' "/proc/$pid/status" 2>/dev/null)
    kill "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    SMOKE_PID=""
    if [[ $ok != ok || $threads != 1 ]]; then
        log "FAIL: $1 (echo: ${ok:-no answer}, threads: ${threads:-?})"
        return 1
    fi
    log "ok: $1 echoes 64-byte messages exactly, 1 thread"
}
SMOKE_PID=""
trap '[[ -n $SMOKE_PID ]] && kill "$SMOKE_PID" 2>/dev/null' EXIT
fail=0
while IFS= read -r line; do
    check_server "${line%%=*}" "${line#*=}" || fail=1
done <<<"$FERN_SERVERS"
((fail)) && exit 1

# ------------------------------------------------------------------------------ the run ----
[[ -x $ANCHORS/run_all.sh ]] || { echo "no anchors at $ANCHORS" >&2; exit 1; }
COPY=$BUILD/anchors
mkdir -p "$COPY" && chmod -R u+w "$COPY" &&
    cp -r --preserve=timestamps "$ANCHORS/." "$COPY/" && chmod -R u+w "$COPY" || exit 1
log "echo: NET_RUNS=$NET_RUNS DUR=$DUR, servers on CPU $SRV_CPU, load client on CPU $CLI_CPU;" \
    "about $((NET_RUNS * 6 * 2 * (DUR + 3) / 60 + 1)) min"
EXTRA_ECHO_SERVERS=$FERN_SERVERS NET_RUNS=$NET_RUNS DUR=$DUR SRV_CPU=$SRV_CPU CLI_CPU=$CLI_CPU \
    timeout "$BUDGET" "$COPY/run_all.sh" echo >"$COPY/echo_sh.log" 2>&1
rc=$?
RUN_DIR=$(readlink -f "$COPY/results/latest")
((rc == 0)) || { tail -20 "$COPY/echo_sh.log"; log "run_all.sh exited $rc"; }
[[ -s $RUN_DIR/raw_echo.tsv ]] || { echo "no results in $RUN_DIR" >&2; exit 1; }
cp "$COPY/echo_sh.log" "$RUN_DIR/"

"$PY" "$ROOT/bench/echo_table.py" "$RUN_DIR" "NET_RUNS=$NET_RUNS DUR=$DUR" | tee "$RUN_DIR/echo_table.md"
log "run directory: $RUN_DIR (raw_echo.tsv, summary_echo.md, machine.txt, echo_table.md)"
