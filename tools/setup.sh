#!/usr/bin/env bash
# Installs what fern needs to build and test on Debian 12, from Debian's packages only.
# Idempotent: skips apt entirely when every package is already installed.
set -euo pipefail
pkgs=(g++ clang cmake ninja-build pkg-config make
      libboost-context-dev libc-ares-dev libssl-dev
      googletest libgtest-dev libgmock-dev libbenchmark-dev valgrind
      openssl dnsmasq-base libcurl4-openssl-dev util-linux curl jq)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "setup: all packages present"
fi
