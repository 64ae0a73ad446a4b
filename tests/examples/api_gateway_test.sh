#!/usr/bin/env bash
# End-to-end test of examples/api_gateway.cpp with examples/weather_upstream.cpp: starts
# upstreams (healthy, failing, slow...) and gateways in front of them on free loopback ports,
# then checks the answers over HTTP with curl and with raw bytes through bash's /dev/tcp.
# Every process it starts is killed on exit; every wait is bounded.
#
#   usage: api_gateway_test.sh PATH/TO/api_gateway PATH/TO/weather_upstream
# Exits 0 if all checks pass, 1 otherwise, 77 (skipped) without curl, or without jq and python3.
set -uo pipefail

gateway=${1:?usage: $0 API_GATEWAY WEATHER_UPSTREAM}
upstream_bin=${2:?usage: $0 API_GATEWAY WEATHER_UPSTREAM}
command -v curl >/dev/null || { echo "SKIP: curl is not installed"; exit 77; }
if command -v jq >/dev/null; then
  json_tool=jq
elif command -v python3 >/dev/null; then
  json_tool=python3
else
  echo "SKIP: neither jq nor python3 is installed"
  exit 77
fi

delay_ms=300  # every upstream answer of the healthy upstream takes this long
tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  for _ in $(seq 50); do  # up to 5 s for them to go, then SIGKILL
    alive=0
    for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    ((alive)) || break
    sleep 0.1
  done
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
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

# start NAME PROGRAM ARGS...: runs it in the background with its output in $tmp/NAME.log and
# sets $port to the port it prints ("listening on 127.0.0.1:PORT").
start() {
  local name=$1
  shift
  "$@" >"$tmp/$name.log" 2>"$tmp/$name.err" &
  pids+=($!)
  port=
  for _ in $(seq 100); do
    port=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$tmp/$name.log")
    [[ -n $port ]] && return 0
    kill -0 "${pids[-1]}" 2>/dev/null || break
    sleep 0.1
  done
  echo "FAIL: $name did not start: $*"
  cat "$tmp/$name.log" "$tmp/$name.err"
  exit 1
}

# json FILE FILTER: a value from a JSON file, like `jq -r FILTER` for dotted paths (.a.b);
# fails if the file is not valid JSON.
json() {
  if [[ $json_tool == jq ]]; then
    jq -r "$2" <"$1"
  else
    python3 -c '
import json, sys
v = json.load(open(sys.argv[1], encoding="utf-8"))
for k in sys.argv[2].split(".")[1:]:
    v = v.get(k) if isinstance(v, dict) else None
print(v if isinstance(v, str) else "null" if v is None else json.dumps(v))' "$1" "$2"
  fi
}

# get PORT TARGET [curl args...]: GET through curl; sets $status, $seconds, and $body (the
# body's file).
n=0
get() {
  local port=$1 target=$2
  shift 2
  n=$((n + 1))
  body=$tmp/body.$n
  local out
  out=$(curl -s --max-time 10 -o "$body" -w '%{http_code} %{time_total}' "$@" \
    "http://127.0.0.1:$port$target")
  status=${out% *}
  seconds=${out#* }
}

# raw PORT BYTES: sends BYTES (printf %b escapes) on a new connection and prints all the server
# sends back until it closes, then "<closed>"; "<still open>" if it had not closed within 10 s.
raw() {
  (
    exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
    printf '%b' "$2" >&3
    if timeout 10 cat <&3; then echo "<closed>"; else echo "<still open>"; fi
  ) 2>/dev/null
}

less_than() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a < b) }'; }
count() { grep -o -- "$2" <<<"$1" | wc -l; }  # occurrences, also several on one line

# --- the services -----------------------------------------------------------------------------
start up_ok "$upstream_bin" --delay-ms $delay_ms
up_ok=$port
up_ok_pid=${pids[-1]}
start up_fail "$upstream_bin" --fail-path /wind
up_fail=$port
start up_bad "$upstream_bin" --fail-path /temperature --fail-mode not-object
up_bad=$port
start up_hang "$upstream_bin" --fail-path /forecast --fail-mode close
up_hang=$port
start up_slow "$upstream_bin" --delay-ms 5000 --slow-path /forecast
up_slow=$port

gateway_to() {  # NAME TEMPERATURE_PORT WIND_PORT FORECAST_PORT [options...]
  local name=$1 t=$2 w=$3 f=$4
  shift 4
  start "$name" "$gateway" --port 0 --upstream "temperature=127.0.0.1:$t" \
    --upstream "wind=127.0.0.1:$w" --upstream "forecast=127.0.0.1:$f" "$@"
}
gateway_to gw_ok $up_ok $up_ok $up_ok --timeout-ms 3000
gw=$port
gw_ok_pid=${pids[-1]}
gateway_to gw_fail $up_fail $up_fail $up_fail --idle-timeout-ms 300
gw_fail=$port
gateway_to gw_bad $up_bad $up_bad $up_bad
gw_bad=$port
gateway_to gw_hang $up_hang $up_hang $up_hang
gw_hang=$port
gateway_to gw_slow $up_slow $up_slow $up_slow --timeout-ms 500
gw_slow=$port
gateway_to gw_mix $up_slow $up_fail $up_slow --timeout-ms 500  # wind fails, forecast is slow
gw_mix=$port
# Port 1 on loopback: nothing listens there, so the wind upstream's connect is refused; the
# forecast upstream is asked for a path it does not serve (a 404 that is not "unknown city").
start gw_down "$gateway" --port 0 --upstream "temperature=127.0.0.1:$up_ok" \
  --upstream "wind=127.0.0.1:1" --upstream "forecast=127.0.0.1:$up_ok/nowhere"
gw_down=$port

# --- the good path ----------------------------------------------------------------------------
get $gw "/weather?city=paris"
[[ $status == 200 ]]; expect "good city: 200"
[[ $(json $body .city) == paris ]]; expect "good city: merged city"
[[ $(json $body .temperature.celsius) == 18.5 ]]; expect "good city: temperature part"
[[ $(json $body .wind.from) == SW ]]; expect "good city: wind part"
[[ $(json $body .forecast.city) == Paris ]]; expect "good city: forecast part"
less_than "$seconds" "$(awk -v d=$delay_ms 'BEGIN { print 2 * d / 1000 }')"
expect "upstreams called concurrently: ${seconds}s < 2 x ${delay_ms} ms"
less_than "$(awk -v d=$delay_ms 'BEGIN { print d / 1000 - 0.01 }')" "$seconds"
expect "upstreams really delayed: ${seconds}s >= ${delay_ms} ms"

get $gw "/weather?city=S%C3%A3o+Paulo"
[[ $(json $body .wind.city) == "São Paulo" ]]; expect "UTF-8 city decoded and echoed"
r=$(raw $gw 'HEAD /weather?city=TOKYO HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
[[ $(count "$r" 'HTTP/1.1 200 ') == 1 && $(count "$r" 'Content-Length: [1-9]') == 1 &&
  $(count "$r" '{') == 0 ]]
expect "HEAD: 200 and Content-Length, no body"

# --- client errors ----------------------------------------------------------------------------
get $gw "/weather"
[[ $status == 400 && $(json $body .error) == *city* ]]; expect "missing city: 400 saying so"
get $gw "/weather?city="
[[ $status == 400 ]]; expect "empty city: 400"
get $gw "/weather?city=%zz"
[[ $status == 400 ]]; expect "malformed escape: 400"
get $gw "/weather?city=atlantis"
[[ $status == 404 && $(json $body .error) == "unknown city" ]]; expect "unknown city: 404"
get $gw '/weather?city=a%22b%5Cc%09d%0A'
[[ $(json $body .city) == $'a"b\\c\td' ]]
expect "escaping: quotes, backslash and controls round-trip"
get $gw '/weather?city=%FF%C3'
[[ $(json $body .city) == $'\xef\xbf\xbd\xef\xbf\xbd' ]]
expect "escaping: invalid UTF-8 becomes U+FFFD, still valid JSON"
get $gw "/nope"
[[ $status == 404 && $(json $body .error) == "no such path" ]]; expect "unknown path: 404"
get $gw "/weather?city=paris" -X POST -i
[[ $status == 405 ]] && grep -qi '^Allow: GET, HEAD' "$body"; expect "POST: 405 with Allow"

r=$(raw $gw 'GARBAGE\r\n\r\n')
[[ $(count "$r" 'HTTP/1.1 400 ') == 1 && $(count "$r" '"error":') == 1 &&
  $(count "$r" '<closed>') == 1 ]]
expect "garbage request line: 400 JSON, then closed"
r=$(raw $gw 'GET /weather?city=paris HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n')
[[ $(count "$r" 'HTTP/1.1 400 ') == 1 ]]; expect "malformed header: 400"
r=$(raw $gw 'GET /weather?city=paris HTTP/1.1\r\n\r\n')
[[ $(count "$r" 'HTTP/1.1 400 ') == 1 ]]; expect "HTTP/1.1 without Host: 400"
r=$(raw $gw 'GET /weather?city=paris HTTP/2.0\r\nHost: x\r\n\r\n')
[[ $(count "$r" 'HTTP/1.1 505 ') == 1 ]]; expect "HTTP/2.0 request line: 505"
big=$(head -c 10000 /dev/zero | tr '\0' a)
r=$(raw $gw "GET /weather?city=paris HTTP/1.1\r\nHost: x\r\nX-Big: $big\r\n\r\n")
[[ $(count "$r" 'HTTP/1.1 431 ') == 1 ]]; expect "10 KB header: 431"
r=$(raw $gw "$(head -c 20000 /dev/urandom | tr -d '\0\\')")
[[ $(count "$r" 'HTTP/1.1 4[0-9][0-9] ') == 1 && $(count "$r" '<closed>') == 1 ]]
expect "20 KB of random bytes: a 4xx, then closed"

# --- keep-alive -------------------------------------------------------------------------------
conns=$(curl -s --max-time 10 -o /dev/null -o /dev/null -w '%{num_connects} ' \
  "http://127.0.0.1:$gw/weather?city=paris" "http://127.0.0.1:$gw/weather?city=london")
[[ $conns == "1 0 " ]]; expect "keep-alive: two requests, one connection (curl connects: $conns)"
r=$(raw $gw 'GET /weather?city=paris HTTP/1.1\r\nHost: x\r\n\r\nGET /weather?city=london HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
[[ $(count "$r" 'HTTP/1.1 200 ') == 2 ]]; expect "pipelined: two 200s on one connection"
[[ $(grep -o '{"city":"[a-z]*"' <<<"$r" | tr '\n' ' ') == '{"city":"paris" {"city":"london" ' ]]
expect "pipelined: answers in order"
[[ $(count "$r" 'Connection: close') == 1 && $(count "$r" '<closed>') == 1 ]]
expect "Connection: close honoured (answered with it, then closed)"
r=$(raw $gw 'GET /weather?city=paris HTTP/1.0\r\n\r\n')
[[ $(count "$r" 'HTTP/1.1 200 ') == 1 && $(count "$r" '<closed>') == 1 ]]
expect "HTTP/1.0 without keep-alive: 200, then closed"

# --- idle connections (gw_fail: --idle-timeout-ms 300) -----------------------------------------
r=$(raw $gw_fail '')
[[ $r == "<closed>" ]]; expect "idle connection: closed without a word"
r=$(raw $gw_fail 'GET /weather?city=paris HTTP/1.1\r\nHost: x\r\n')
[[ $(count "$r" 'HTTP/1.1 408 ') == 1 && $(count "$r" '<closed>') == 1 ]]
expect "request cut short: 408, then closed"

# --- upstream failures ------------------------------------------------------------------------
get $gw_fail "/weather?city=paris"
[[ $status == 502 ]]; expect "upstream 500: 502"
[[ $(json $body .upstream) == wind ]]; expect "upstream 500: names wind"
[[ $(json $body .errors.wind) == "HTTP 500" ]]; expect "upstream 500: errors.wind says HTTP 500"
get $gw_bad "/weather?city=paris"
[[ $status == 502 && $(json $body .upstream) == temperature ]]
expect "upstream answers a JSON array: 502 naming temperature"
get $gw_hang "/weather?city=paris"
[[ $status == 502 && $(json $body .upstream) == forecast ]]
expect "upstream hangs up: 502 naming forecast"
get $gw_down "/weather?city=paris"
[[ $status == 502 && $(json $body .upstream) == wind && $(json $body .errors.wind) == *refused* ]]
expect "upstream refuses connections: 502 naming wind"
[[ $(json $body .errors.forecast) == "HTTP 404" ]]
expect "upstream 404 for a wrong path is a failure, not an unknown city"
get $gw_slow "/weather?city=paris"
[[ $status == 504 && $(json $body .upstream) == forecast ]]; expect "upstream too slow: 504 naming forecast"
less_than "$seconds" 1.5
expect "upstream too slow: answered after the 500 ms timeout, not the 5 s delay: ${seconds}s"
get $gw_mix "/weather?city=paris"
[[ $status == 502 && $(json $body .errors.wind) == "HTTP 500" &&
  $(json $body .errors.forecast) == *500\ ms* ]]
expect "one failed, one timed out: 502 listing both"
get $gw_slow "/weather?city=atlantis"
[[ $status == 404 ]]; expect "unknown city wins over a timed-out upstream: 404"

# --- load -------------------------------------------------------------------------------------
cities=(paris london tokyo new%20york)
t0=$(date +%s.%N)
load_pids=()
for i in $(seq 0 49); do
  curl -s --max-time 20 -o "$tmp/load.$i" -w '%{http_code}' \
    "http://127.0.0.1:$gw/weather?city=${cities[i % 4]}" >"$tmp/load.$i.status" &
  load_pids+=($!)
done
wait "${load_pids[@]}"
took=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')
good=0
for i in $(seq 0 49); do
  want=$(printf '%b' "${cities[i % 4]//%/\\x}")
  [[ $(cat "$tmp/load.$i.status") == 200 &&
    $(json "$tmp/load.$i" .city) == "$want" &&
    $(json "$tmp/load.$i" .forecast.days) != null &&
    $(json "$tmp/load.$i" .wind.from) != null &&
    $(json "$tmp/load.$i" .temperature.celsius) != null ]] && good=$((good + 1))
done
[[ $good == 50 ]]; expect "50 concurrent clients: all 200 with every part ($good/50)"
# Serially that would be 50 x 300 ms = 15 s.
less_than "$took" 7.5; expect "50 concurrent clients served concurrently: ${took}s < 7.5 s"

# --- still standing, and quiet ----------------------------------------------------------------
get $gw "/weather?city=paris"
[[ $status == 200 ]]; expect "gateway still serves after all that"
for name in gw_ok gw_fail gw_bad gw_hang gw_slow gw_mix gw_down; do
  [[ ! -s $tmp/$name.err ]]; expect "$name: nothing on stderr"
done
# SIGTERM: a graceful stop and exit 0 (and, in a sanitizer build, its exit-time checks pass).
exited() {  # PID NAME: waits up to 10 s for it to exit; 0 if it exited with status 0
  for _ in $(seq 100); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$1" 2>/dev/null && return 1
  wait "$1"
}
kill -TERM $gw_ok_pid $up_ok_pid
exited $gw_ok_pid; expect "gateway: SIGTERM stops it, exit status 0"
exited $up_ok_pid; expect "upstream: SIGTERM stops it, exit status 0"
[[ ! -s $tmp/gw_ok.err && ! -s $tmp/up_ok.err ]]; expect "gateway and upstream: nothing on stderr"
logged=$(grep -c '" [0-9][0-9][0-9] [0-9]* [0-9.]*ms' "$tmp/gw_ok.log")
((logged >= 70)); expect "gateway logged a line per request ($logged)"

if ((failures)); then
  for f in "$tmp"/gw_*.err "$tmp"/up_*.err; do
    [[ -s $f ]] && { echo "--- $f"; cat "$f"; }
  done
  echo "--- gw_ok log (last 20 lines)"
  tail -20 "$tmp/gw_ok.log"
  echo "$failures of $((checks + failures)) checks FAILED"
  exit 1
fi
echo "all $checks checks passed"
