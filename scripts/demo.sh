#!/usr/bin/env bash
# Sets everything up, then runs the main demo: processes exchanging frames, latency printed.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh build
exec build/examples/cpp/flatlane_ping_pong "$@"
