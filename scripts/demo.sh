#!/usr/bin/env bash
# Sets everything up (scripts/setup.sh: Debian packages, the C++ build and the Python extension in
# build/), then runs the main demo: typed demo.Ping messages (schema/examples/demo.fbs) go round
# C++ -> Python -> C# -> C++ through three processes, and the C++ driver prints the latency.
#
#   scripts/demo.sh [--count N] [--warmup N]     the three-language demo (examples/run_demo.sh)
#   scripts/demo.sh --ping-pong [--rounds N]     the C++-only demo: raw 64-byte frames between
#                                                two processes, busy-poll and blocking waits
#
# examples/run_demo.sh generates the Python endpoints, builds the C# stage (dotnet build, offline
# restore), starts the three processes and stops them all on failure or Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh build
if [ "${1:-}" = "--ping-pong" ]; then
  shift
  exec build/examples/cpp/flatlane_ping_pong "$@"
fi
exec examples/run_demo.sh --build-dir build "$@"
