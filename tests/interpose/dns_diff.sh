#!/usr/bin/env bash
# ctest driver of the DNS differential tests: runs a command without and with the shim
# preloaded and fails unless both print the same stdout and exit with the same status, in an
# environment that fixes every input of glibc's resolver. A private mount and network namespace
# (unshare) gets the test hosts file, a resolv.conf naming a dnsmasq on 127.0.0.53:53 that this
# script starts with the test's records, nsswitch.conf "hosts: files dns", the default gai.conf
# and addresses of both families on lo. Without unshare, mount or ip it fails: it never passes
# without having compared anything.
# usage: dns_diff.sh <LD_PRELOAD value> [VAR=value...] -- <program> [args...]
# (the VAR=value words are set for the run with the shim only, as ASAN_OPTIONS under ASan).
# FERN_DNS_DIFF_SHOW=1 also prints the output when both runs agree.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
fail() { echo "FAIL: $*" >&2; exit 1; }
usage="usage: dns_diff.sh <preload> [VAR=value...] -- <program> [args...]"
(($# >= 3)) || fail "$usage"

if [[ -z "${FERN_DNS_DIFF_INNER:-}" ]]; then
  command -v unshare >/dev/null || fail "unshare (util-linux) is required"
  unshare --mount --net --fork -- true 2>/dev/null ||
    fail "cannot create mount and network namespaces (unshare --mount --net needs root or user namespaces)"
  export FERN_DNS_DIFF_INNER=1
  exec unshare --mount --net --fork -- "$0" "$@"
fi

preload=$1
shift
extra_env=()
while (($#)) && [[ $1 != -- ]]; do
  [[ $1 == *=* ]] || fail "$usage"
  extra_env+=("$1")
  shift
done
(($# >= 2)) || fail "$usage"
shift
dnsmasq=/usr/sbin/dnsmasq
[[ -x $dnsmasq ]] || fail "$dnsmasq is required (Debian package dnsmasq-base)"
command -v ip >/dev/null || fail "ip (iproute2) is required"

work=$(mktemp -d)
dns_pid=""
cleanup() {
  if [[ -n $dns_pid ]]; then kill "$dns_pid" 2>/dev/null || true; wait "$dns_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# The network: lo only, up, with a global address of each family (so AI_ADDRCONFIG keeps both).
ip link set lo up || fail "ip link set lo up"
ip addr add 192.0.2.10/24 dev lo || fail "ip addr add 192.0.2.10/24 dev lo"
ip -6 addr add 2001:db8::10/64 dev lo nodad || fail "ip -6 addr add 2001:db8::10/64 dev lo"

# The files glibc reads. host.conf and gai.conf get their defaults (empty files).
cp "$here/differential/dns/hosts" "$work/hosts"
printf 'search fern.test\nnameserver 127.0.0.53\noptions timeout:1 attempts:2\n' >"$work/resolv.conf"
printf 'hosts: files dns\nservices: files\nprotocols: files\n' >"$work/nsswitch.conf"
: >"$work/empty"
bind() { mount --bind "$1" "$2" || fail "mount --bind $1 $2"; }
bind "$work/hosts" /etc/hosts
bind "$work/resolv.conf" /etc/resolv.conf
bind "$work/nsswitch.conf" /etc/nsswitch.conf
for f in /etc/host.conf /etc/gai.conf; do
  if [[ -e $f ]]; then bind "$work/empty" "$f"; fi
done

# The name server: local answers only (NXDOMAIN for unknown names); servfail.fern.test is
# forwarded to an address without a route (TEST-NET-3), which fails at once: SERVFAIL.
# dnsmasq rotates records of one type between answers, so a name with two A records has
# addresses that getaddrinfo's RFC 3484 sort orders whatever the rotation (only 192.0.2.77 has
# a route).
"$dnsmasq" --listen-address=127.0.0.53 --bind-interfaces --port=53 --no-hosts --no-resolv \
  --conf-file=/dev/null --keep-in-foreground --pid-file= --user=root \
  --local=/fern.test/ --local=/#/ --server=/servfail.fern.test/203.0.113.1 \
  --host-record=a.fern.test,10.2.0.1 \
  --host-record=aaaa.fern.test,fd00::2:1 \
  --host-record=both.fern.test,10.2.0.2,fd00::2:2 \
  --host-record=two4.fern.test,10.2.0.4 --host-record=two4.fern.test,192.0.2.77 \
  --cname=cname.fern.test,both.fern.test \
  --ptr-record=9.9.2.10.in-addr.arpa,ptr-only.fern.test \
  >"$work/dnsmasq.log" 2>&1 &
dns_pid=$!
for ((i = 0; ; ++i)); do
  if getent ahostsv4 a.fern.test >/dev/null 2>&1; then break; fi
  kill -0 "$dns_pid" 2>/dev/null || fail "dnsmasq exited: $(cat "$work/dnsmasq.log")"
  ((i < 100)) || fail "dnsmasq does not answer on 127.0.0.53: $(cat "$work/dnsmasq.log")"
  sleep 0.1
done

set +e
timeout 60 "$@" >"$work/plain.out" 2>"$work/plain.err"
plain_rc=$?
timeout 60 env LD_PRELOAD="$preload" "${extra_env[@]}" "$@" >"$work/shim.out" 2>"$work/shim.err"
shim_rc=$?
set -e

[[ -s $work/plain.out ]] || fail "$* printed nothing (exit $plain_rc): $(cat "$work/plain.err")"
if ! cmp -s "$work/plain.out" "$work/shim.out" || [[ $plain_rc != "$shim_rc" ]]; then
  echo "outputs differ (exit $plain_rc without the shim, $shim_rc with it): $*"
  diff -u --label "without the shim" --label "with the shim" "$work/plain.out" "$work/shim.out" || true
  echo "-- shim stderr:"
  cat "$work/shim.err"
  exit 1
fi
if [[ -n "${FERN_DNS_DIFF_SHOW:-}" ]]; then cat "$work/plain.out"; fi
echo "identical output (exit $plain_rc, $(wc -l <"$work/plain.out") lines): $*"
