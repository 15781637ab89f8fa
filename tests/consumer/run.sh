#!/usr/bin/env bash
# Installs the Flatlane build in BUILD_DIR into a private prefix, then configures, builds and runs
# tests/consumer against it with find_package(flatlane) and the installed flatlane-gen.
#   tests/consumer/run.sh BUILD_DIR
set -euo pipefail
build="$(cd "$1" && pwd)"
here="$(cd "$(dirname "$0")" && pwd)"
prefix="$build/consumer-test/prefix"
rm -rf "$build/consumer-test"
cmake --install "$build" --prefix "$prefix" >/dev/null
# The installed command line tool works on its own.
"$prefix/bin/flatlane-gen" --lang cpp -o "$build/consumer-test/cli" "$here/schema/hello.fbs"
test -f "$build/consumer-test/cli/hello.flatlane.hpp"
cmake -S "$here" -B "$build/consumer-test/build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
      -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$build/consumer-test/build"
"$build/consumer-test/build/hello"
