#!/usr/bin/env bash
# TLS benchmark (issue 4): fern's TLS echo server (one thread, a fiber per connection) against a
# thread-per-connection blocking OpenSSL server, same certificate (ECDSA P-256), same settings
# (TLS 1.3, no session resumption), same load from bench/tls/load.c, in one run. Servers on CPU 0,
# the load client on CPU 1. Reports handshakes/s, bulk echo MB/s, and the server's CPU time per
# handshake / per MB (from /proc/PID/stat), as medians over the runs.
#
#   usage: bench/tls.sh [--runs R] [--dur S] [--build DIR]     (defaults: 3, 5, build/release)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=3 DUR=5 BUILD=build/release
while (($#)); do
  case $1 in
  --runs) RUNS=$2; shift 2 ;;
  --dur) DUR=$2; shift 2 ;;
  --build) BUILD=$2; shift 2 ;;
  *) echo "usage: $0 [--runs R] [--dur S] [--build DIR]"; exit 2 ;;
  esac
done
for b in bench_tls_fern_server bench_tls_thread_server bench_tls_load; do
  [[ -x $BUILD/bench/$b ]] || { echo "missing $BUILD/bench/$b: cmake --preset release && cmake --build --preset release"; exit 2; }
done
work=$(mktemp -d /tmp/fern-tls-bench.XXXXXX)
srv=
cleanup() { [[ -n $srv ]] && kill "$srv" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost \
  -addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
HZ=$(getconf CLK_TCK)
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }
wait_port() { for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; return 1; }

results=$work/results
: >"$results"
port=19600
measure() { # label server-command...
  local label=$1
  shift
  port=$((port + 1))
  taskset -c 0 "$@" "$port" "$work/cert.pem" "$work/key.pem" >/dev/null 2>&1 &
  srv=$!
  wait_port "$port" || { echo "WARN: $label did not start"; kill "$srv"; srv=; return; }
  local c0 c1 out v
  for mode in "handshake 8" "bulk 16"; do
    set -- $mode
    c0=$(cpu_ticks "$srv")
    out=$(taskset -c 1 "$BUILD/bench/bench_tls_load" "$1" "$port" "$2" "$DUR")
    c1=$(cpu_ticks "$srv")
    echo "$label $1: $out"
    v=$(awk '{print $3}' <<<"$out")
    # server CPU per unit: µs per handshake, ms per MB
    awk -v l="$label" -v m="$1" -v v="$v" -v d=$((c1 - c0)) -v hz="$HZ" -v dur="$DUR" \
      'BEGIN { cpu = d / hz; per = m == "handshake" ? cpu / (v * dur) * 1e6 : cpu / (v * dur) * 1e3;
               printf "%s|%s|%s|%.2f\n", l, m, v, per }' >>"$results"
  done
  kill "$srv"
  wait "$srv" 2>/dev/null || true
  srv=
}
for r in $(seq "$RUNS"); do
  echo "--- run $r"
  measure "OpenSSL, thread per connection" "$BUILD/bench/bench_tls_thread_server"
  measure "fern::tls, one thread" "$BUILD/bench/bench_tls_fern_server"
done
echo
echo "| server | handshakes/s median [min–max] | server CPU µs/handshake | bulk echo MB/s median [min–max] | server CPU ms/MB |"
echo "|---|---|---:|---|---:|"
awk -F'|' '
  function med(s,   a, n, i, j, t) { n = split(s, a, " ");
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
  function mn(s,   a, n, i, m) { n = split(s, a, " "); m = a[1]; for (i = 2; i <= n; i++) if (a[i] + 0 < m + 0) m = a[i]; return m }
  function mx(s,   a, n, i, m) { n = split(s, a, " "); m = a[1]; for (i = 2; i <= n; i++) if (a[i] + 0 > m + 0) m = a[i]; return m }
  { v[$1, $2] = v[$1, $2] " " $3; c[$1, $2] = c[$1, $2] " " $4; if (!($1 in seen)) { seen[$1] = 1; order[++k] = $1 } }
  END { for (i = 1; i <= k; i++) { l = order[i]; h = v[l, "handshake"]; b = v[l, "bulk"];
    printf "| %s | %d [%d–%d] | %.1f | %.0f [%.0f–%.0f] | %.2f |\n", l, med(h), mn(h), mx(h), med(c[l, "handshake"]),
      med(b), mn(b), mx(b), med(c[l, "bulk"]) } }' "$results"
