#!/usr/bin/env bash
# ctest driver: installs the build tree into a scratch prefix, then builds and runs an outside
# project against it twice: with find_package(fern) (shared and static) and with pkg-config.
set -euo pipefail
build=$1 src=$2 work=$3
rm -rf "$work" && mkdir -p "$work"
cmake --install "$build" --prefix "$work/prefix" >/dev/null
cmake -S "$src" -B "$work/consumer" -G Ninja -DCMAKE_PREFIX_PATH="$work/prefix" \
      -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$work/consumer" >/dev/null
LD_LIBRARY_PATH="$work/prefix/lib" "$work/consumer/consumer"
"$work/consumer/consumer_static"
PKG_CONFIG_PATH="$work/prefix/lib/pkgconfig" \
  c++ "$src/main.cpp" -o "$work/consumer_pc" $(PKG_CONFIG_PATH="$work/prefix/lib/pkgconfig" pkg-config --cflags --libs fern)
LD_LIBRARY_PATH="$work/prefix/lib" "$work/consumer_pc"
echo "install check passed"
