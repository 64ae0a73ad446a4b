#!/usr/bin/env bash
# DNS benchmark (issue 4): N lookups of distinct names against one local dnsmasq, side by side in
# one run: fern's C++ API (fern::resolve), plain getaddrinfo made cooperative by the shim, glibc's
# getaddrinfo in a pool of 64 threads, and gevent's resolvers (thread = glibc in gevent's pool,
# ares = c-ares). Everything runs inside a private mount namespace whose /etc/resolv.conf points
# at the dnsmasq and whose /etc/hosts is minimal, so all of them ask the same server the same
# questions. dnsmasq runs on CPU 0, the resolvers on CPU 1. Every resolver gets the same
# concurrency, 64 (glibc's pool size): under gVisor dnsmasq drops queries that arrive in bursts of
# more than about 150, whoever sends them (glibc with 256 threads falls to ~400 lookups/s, each
# loss costing a resolv.conf timeout).
#
#   usage: bench/dns.sh [--names N] [--runs R] [--build DIR]   (defaults: 10000, 3, build/release)
# Needs root for unshare/mount (as the tests do), dnsmasq, and for the gevent rows python3-gevent.
# Prints RESULT lines and a markdown table (medians over the runs) to paste into RESULTS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
N=10000 RUNS=3 BUILD=build/release
while (($#)); do
  case $1 in
  --names) N=$2; shift 2 ;;
  --runs) RUNS=$2; shift 2 ;;
  --build) BUILD=$2; shift 2 ;;
  --inside) INSIDE=1; shift ;;
  *) echo "usage: $0 [--names N] [--runs R] [--build DIR]"; exit 2 ;;
  esac
done

if [[ -z ${INSIDE:-} ]]; then
  [[ -x $BUILD/bench/bench_dns_fern ]] || { echo "build first: cmake --preset release && cmake --build --preset release"; exit 2; }
  exec unshare --mount --fork "$0" --inside --names "$N" --runs "$RUNS" --build "$BUILD"
fi

work=$(mktemp -d /tmp/fern-dns-bench.XXXXXX)
dnsmasq_pid=
cleanup() { [[ -n $dnsmasq_pid ]] && kill "$dnsmasq_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

# N distinct names, each with one A record, answered by dnsmasq from its configuration.
awk -v n="$N" 'BEGIN { for (i = 0; i < n; i++) printf "h%05d.bench.test\n", i }' >"$work/names"
awk -v n="$N" 'BEGIN { for (i = 0; i < n; i++)
  printf "host-record=h%05d.bench.test,10.%d.%d.%d\n", i, int(i / 65536) % 256, int(i / 256) % 256, i % 256 }' \
  >"$work/dnsmasq.conf"
printf '127.0.0.1 localhost\n::1 localhost\n' >"$work/hosts"
printf 'nameserver 127.0.0.53\noptions timeout:2 attempts:2\n' >"$work/resolv.conf"
mount --bind "$work/hosts" /etc/hosts
mount --bind "$work/resolv.conf" /etc/resolv.conf

taskset -c 0 dnsmasq --keep-in-foreground --conf-file="$work/dnsmasq.conf" --no-hosts --no-resolv \
  --listen-address=127.0.0.53 --bind-interfaces --port=53 --user=root --pid-file= \
  --cache-size=0 --dns-forward-max=10000 --log-facility=/dev/null &
dnsmasq_pid=$!
for _ in $(seq 50); do getent hosts h00000.bench.test >/dev/null && break; sleep 0.1; done
getent hosts h00000.bench.test >/dev/null || { echo "dnsmasq did not answer"; exit 1; }

results=$work/results
: >"$results"
run() { # label command...
  local out
  out=$(taskset -c 1 "${@:2}" 2>&1 | grep '^RESULT' || true)
  [[ -z $out ]] && { echo "WARN: $1 printed no result" >&2; return; }
  echo "$out"
  echo "$out" | awk -v l="$1" '{ cpu = "-"; fail = "0";
    for (i = 5; i <= NF; i++) { if ($i ~ /^cpu_us_per_lookup=/) cpu = substr($i, 19);
                                if ($i ~ /^failures=/) fail = substr($i, 10) }
    print l, $3, cpu, fail }' >>"$results"
}
have_gevent=0
/usr/bin/python3 -c 'import gevent.resolver.ares' 2>/dev/null && have_gevent=1
for r in $(seq "$RUNS"); do
  echo "--- run $r"
  run "fern C++ fern::resolve, 64 fibers" "$BUILD/bench/bench_dns_fern" api "$work/names" 64
  run "fern shim: plain getaddrinfo, 64 fibers" "$BUILD/bench/bench_dns_shim" shim "$work/names" 64
  run "glibc getaddrinfo, 64 threads" "$BUILD/bench/bench_dns_glibc_threads" "$work/names" 64
  if ((have_gevent)); then
    run "gevent resolver=ares, 64 greenlets" env GEVENT_RESOLVER=ares /usr/bin/python3 bench/dns/gevent_resolve.py "$work/names" 64
    run "gevent resolver=thread, 64 greenlets" env GEVENT_RESOLVER=thread /usr/bin/python3 bench/dns/gevent_resolve.py "$work/names" 64
  fi
done

echo
echo "| resolver | lookups/s median [min–max] | resolver CPU µs/lookup (median) | failures |"
echo "|---|---|---:|---:|"
awk '{ l = $0; sub(/ [^ ]+ [^ ]+ [^ ]+$/, "", l); n = split($0, f, " ");
       rate[l] = rate[l] " " f[n - 2]; cpu[l] = cpu[l] " " f[n - 1]; fail[l] += f[n];
       if (!(l in seen)) { seen[l] = 1; order[++k] = l } }
     function med(s,   a, n, i, j, t) { n = split(s, a, " ");
       for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
       return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
     function mn(s,   a, n, i, m) { n = split(s, a, " "); m = a[1]; for (i = 2; i <= n; i++) if (a[i] + 0 < m + 0) m = a[i]; return m }
     function mx(s,   a, n, i, m) { n = split(s, a, " "); m = a[1]; for (i = 2; i <= n; i++) if (a[i] + 0 > m + 0) m = a[i]; return m }
     END { for (i = 1; i <= k; i++) { l = order[i];
       printf "| %s | %d [%d–%d] | %s | %d |\n", l, med(rate[l]), mn(rate[l]), mx(rate[l]), med(cpu[l]), fail[l] } }' "$results"
