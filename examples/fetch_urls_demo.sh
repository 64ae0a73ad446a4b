#!/usr/bin/env bash
# fetch_urls against local servers, since the demo must run without the internet: makes a
# throwaway CA and a certificate for localhost / 127.0.0.1 (openssl CLI), starts weather_upstream
# (http://) and https_hello (https://) instances that answer after different delays, fetches a
# mix of their URLs at once with fetch_urls, and stops every server again.
#
#   usage: fetch_urls_demo.sh BUILD_DIR/examples      (e.g. build/release/examples)
# Exit status: fetch_urls's (0: every URL fetched), or 1 if the batch took 2 x the slowest delay
# or more (the fetches did not overlap), or if a server did not start or stop cleanly; 77
# without openssl.
set -uo pipefail

bin=${1:?usage: $0 BUILD_DIR/examples}
for prog in fetch_urls weather_upstream https_hello; do
  [[ -x $bin/$prog ]] || { echo "$0: no $bin/$prog (build the examples first)"; exit 1; }
done
command -v openssl >/dev/null || { echo "SKIP: the openssl command is not installed"; exit 77; }

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

# --- 1. a throwaway CA and a server certificate signed by it ----------------------------------
(
  cd "$tmp" &&
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
      -subj "/CN=fern demo CA" -keyout ca.key -out ca.pem &&
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
      -subj "/CN=localhost" -keyout server.key -out server.csr &&
    printf '%s\n' "subjectAltName = DNS:localhost, IP:127.0.0.1" \
      "basicConstraints = critical, CA:FALSE" "extendedKeyUsage = serverAuth" >server.ext &&
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -set_serial 1 -days 1 \
      -extfile server.ext -out server.pem
) >"$tmp/openssl.log" 2>&1 || { echo "openssl failed:"; cat "$tmp/openssl.log"; exit 1; }

# --- 2. the servers ---------------------------------------------------------------------------
# start NAME PROGRAM ARGS...: runs it in the background, logging to $tmp/NAME.log, and sets
# $port to the port it prints ("listening on 127.0.0.1:PORT").
start() {
  local name=$1
  shift
  "$@" >"$tmp/$name.log" 2>&1 &
  pids+=($!)
  port=
  for _ in $(seq 100); do
    port=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$tmp/$name.log")
    [[ -n $port ]] && return 0
    kill -0 "${pids[-1]}" 2>/dev/null || break
    sleep 0.1
  done
  echo "$name did not start: $*"
  cat "$tmp/$name.log"
  exit 1
}

urls=()
slowest=0
serve_http() {  # DELAY_MS PATH...: a weather_upstream; one URL per path
  local delay=$1
  shift
  start "http_$delay" "$bin/weather_upstream" --delay-ms "$delay"
  for path in "$@"; do urls+=("http://127.0.0.1:$port$path"); done
  ((delay > slowest)) && slowest=$delay
}
serve_https() {  # DELAY_MS HOST...: an https_hello; one URL per host name
  local delay=$1
  shift
  start "https_$delay" "$bin/https_hello" --delay-ms "$delay" \
    --cert "$tmp/server.pem" --key "$tmp/server.key"
  for host in "$@"; do urls+=("https://$host:$port/"); done
  ((delay > slowest)) && slowest=$delay
}
serve_http 200 "/temperature?city=paris"
serve_http 400 "/wind?city=tokyo"
serve_http 600 "/forecast?city=london"
serve_https 300 localhost
serve_https 500 localhost 127.0.0.1

# --- 3. fetch them all at once ----------------------------------------------------------------
echo "\$ fetch_urls --cacert ca.pem --timeout 10 ${urls[*]}"
"$bin/fetch_urls" --cacert "$tmp/ca.pem" --timeout 10 "${urls[@]}" | tee "$tmp/fetch.log"
status=${PIPESTATUS[0]}

# --- 4. did they overlap? ---------------------------------------------------------------------
wall=$(sed -n 's/^total wall time \([0-9.]*\) ms.*/\1/p' "$tmp/fetch.log")
limit=$((2 * slowest))
if [[ -z $wall ]]; then
  echo "FAILED: fetch_urls printed no total"
  status=1
elif ! awk -v a="$wall" -v b="$limit" 'BEGIN { exit !(a < b) }'; then
  echo "FAILED: the batch took $wall ms, not under $limit ms (2 x the slowest delay)"
  status=1
fi

# --- 5. stop the servers: each must exit cleanly on SIGTERM (a sanitizer build checks leaks) --
for p in "${pids[@]}"; do kill -TERM "$p"; done
for p in "${pids[@]}"; do
  wait "$p" || { echo "FAILED: a server (pid $p) exited with status $?"; status=1; }
done
pids=()
if ((status == 0)); then
  echo "OK: ${#urls[@]} URLs in $wall ms, under $limit ms (2 x the slowest delay, $slowest ms)"
else
  for f in "$tmp"/http*.log; do echo "--- ${f##*/}"; cat "$f"; done
fi
exit "$status"
