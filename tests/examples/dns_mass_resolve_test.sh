#!/usr/bin/env bash
# End-to-end test of examples/dns_mass_resolve.cpp: starts dnsmasq on a free loopback port with
# a few hundred host records, resolves ~500 names (existing, dual-stack and NXDOMAIN ones) through
# it and compares the output line by line (addresses, errors, input order); then stops that
# dnsmasq with SIGSTOP, so queries reach a bound socket that never answers, and checks that every
# lookup reports its timeout within the bound. Every process it starts is killed on exit.
#
#   usage: dns_mass_resolve_test.sh PATH/TO/dns_mass_resolve
# Exits 0 if all checks pass, 1 otherwise, 77 (skipped) without dnsmasq or when nsswitch.conf
# sends host lookups to glibc (then --server does not apply).
set -uo pipefail

prog=${1:?usage: $0 DNS_MASS_RESOLVE}
dnsmasq=/usr/sbin/dnsmasq
[[ -x $dnsmasq ]] || { echo "SKIP: $dnsmasq is not installed"; exit 77; }
hosts_line=$(sed -n 's/#.*//; s/^hosts:[[:space:]]*//p' /etc/nsswitch.conf 2>/dev/null)
for w in $hosts_line; do
  [[ $w == files || $w == dns ]] || {
    echo "SKIP: nsswitch.conf hosts line '$hosts_line': lookups go to glibc"
    exit 77
  }
done

tmp=$(mktemp -d)
dns_pid=
cleanup() {
  if [[ -n $dns_pid ]]; then
    kill -CONT "$dns_pid" 2>/dev/null  # a stopped process acts on SIGTERM only once continued
    kill "$dns_pid" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$dns_pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$dns_pid" 2>/dev/null
  fi
  wait 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT

failures=0
checks=0
fail() {
  echo "FAIL: $*"
  failures=$((failures + 1))
}
ok() {
  checks=$((checks + 1))
  echo "ok: $*"
}
expect() {  # description; passes if the command just before it succeeded:  [[ ... ]]; expect "x"
  if (($? == 0)); then ok "$1"; else fail "$1"; fi
}
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }'; }
less_than() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a < b) }'; }

# The resolver's configuration, pinned: no hosts file entries, no search list (names are looked
# up as given), and a per-attempt timeout far above the example's -t, so a silent server shows
# up as the example's own timeout, not as EAI_AGAIN.
: >"$tmp/hosts"
printf 'options timeout:5 attempts:2\n' >"$tmp/resolv.conf"
export FERN_HOSTS_FILE=$tmp/hosts FERN_RESOLV_CONF=$tmp/resolv.conf

# --- the names and what each should give --------------------------------------------------------
records=()
: >"$tmp/names"
: >"$tmp/expected"
for i in $(seq 1 300); do  # h<i>.test: one IPv4 address each
  addr="10.77.$((i / 256)).$((i % 256))"
  records+=("--host-record=h$i.test,$addr")
  echo "h$i.test" >>"$tmp/names"
  echo "h$i.test -> $addr" >>"$tmp/expected"
  if ((i % 2 == 0)); then  # interleaved with names that do not exist
    echo "m$i.test" >>"$tmp/names"
    echo "m$i.test -> error EAI_NONAME: Name or service not known" >>"$tmp/expected"
  fi
  if ((i % 15 == 0)); then  # and dual-stack ones, asked for IPv4 only below
    records+=("--host-record=d$i.test,10.78.0.$((i / 15)),fd00::$((i / 15))")
    echo "d$i.test" >>"$tmp/names"
    echo "d$i.test -> 10.78.0.$((i / 15))" >>"$tmp/expected"
  fi
done
total=$(wc -l <"$tmp/names")
missing=$(grep -c '^m' "$tmp/names")

# --- dnsmasq on a free port ---------------------------------------------------------------------
user=()
((EUID == 0)) && user=(--user=root)
for attempt in 1 2 3 4 5; do
  port=$((20000 + RANDOM % 40000))
  "$dnsmasq" --keep-in-foreground --no-hosts --no-resolv --no-poll --conf-file=/dev/null \
    --pid-file= "${user[@]}" --listen-address=127.0.0.1 --bind-interfaces --port=$port \
    --cache-size=0 --local=/test/ --host-record=ready.test,127.0.0.1 "${records[@]}" \
    2>"$tmp/dnsmasq.err" &
  dns_pid=$!
  for _ in $(seq 50); do
    kill -0 $dns_pid 2>/dev/null || break
    "$prog" --server 127.0.0.1:$port -t 0.2 ready.test >/dev/null 2>&1 && break 2
    sleep 0.1
  done
  kill $dns_pid 2>/dev/null  # the port was taken, or it did not come up: another port
  wait $dns_pid 2>/dev/null
  dns_pid=
done
[[ -n $dns_pid ]] || { echo "FAIL: dnsmasq did not start"; cat "$tmp/dnsmasq.err"; exit 1; }
server=127.0.0.1:$port

# --- many names at once, through a pool of 100 fibers -------------------------------------------
t0=$(now)
"$prog" --server $server -c 100 -t 10 --family 4 -f "$tmp/names" >"$tmp/out" 2>"$tmp/err"
rc=$?
took=$(elapsed "$t0")
[[ $rc == 1 ]]; expect "some names missing: exit status 1 (got $rc)"
[[ $(wc -l <"$tmp/out") == "$total" ]]; expect "one line per name ($total)"
diff -u "$tmp/expected" "$tmp/out" >"$tmp/diff"; expect "addresses and NXDOMAIN errors, in input order"
[[ -s $tmp/diff ]] && head -20 "$tmp/diff"
summary=$(cat "$tmp/err")
[[ $summary == "$total names: $((total - missing)) resolved, $missing failed, 0 timed out in "* ]]
expect "summary: $summary"
echo "   ($total names in ${took}s)"

# The same names from stdin, one lookup at a time: the same output.
"$prog" --server $server -c 1 -t 10 --family 4 <"$tmp/names" >"$tmp/out1" 2>/dev/null
cmp -s "$tmp/out" "$tmp/out1"; expect "-c 1, names from stdin: the same output"

# Names on the command line, and the address families.
out=$("$prog" --server $server --family 6 d15.test h1.test 2>/dev/null)
[[ $out == $'d15.test -> fd00::1\nh1.test -> error EAI_NODATA: No address associated with hostname' ]]
expect "--family 6: the IPv6 address, EAI_NODATA for an IPv4-only name"
out=$("$prog" --server $server d30.test 2>/dev/null)
rc=$?
[[ $rc == 0 && $out == "d30.test -> "* && $out == *10.78.0.2* && $out == *fd00::2* ]]
expect "both families by default: $out"
"$prog" --server $server h1.test h2.test >/dev/null 2>&1; expect "all resolved: exit status 0"
"$prog" --server not-an-address h1.test >/dev/null 2>&1
[[ $? == 2 ]]; expect "a malformed --server: exit status 2"

# --- a server that never answers: dnsmasq stopped, its socket still bound -----------------------
kill -STOP $dns_pid
head -50 "$tmp/names" >"$tmp/names50"
t0=$(now)
"$prog" --server $server -c 100 -t 1 -f "$tmp/names50" >"$tmp/out" 2>"$tmp/err"
rc=$?
took=$(elapsed "$t0")
kill -CONT $dns_pid
[[ $rc == 1 ]]; expect "silent server: exit status 1"
[[ $(grep -c ' -> timeout after 1 s$' "$tmp/out") == 50 ]]; expect "silent server: 50 timeouts"
cut -d' ' -f1 "$tmp/out" | cmp -s - "$tmp/names50"; expect "silent server: in input order"
[[ $(cat "$tmp/err") == "50 names: 0 resolved, 0 failed, 50 timed out in "* ]]
expect "silent server: summary $(cat "$tmp/err")"
less_than 0.9 "$took" && less_than "$took" 4; expect "silent server: all 50 timed out together, in ${took}s (1 s each)"
t0=$(now)
"$prog" --server $server -c 10 -t 0.5 h1.test h2.test h3.test >/dev/null 2>&1
took=$(elapsed "$t0")
less_than "$took" 4; expect "server answering again after SIGCONT: fast (${took}s)"

if ((failures)); then
  echo "$failures of $((checks + failures)) checks FAILED"
  exit 1
fi
echo "all $checks checks passed"
