#!/usr/bin/env bash
# Runs the README's demo from an existing build: typed demo.Ping messages (schema/examples/demo.fbs)
# go round C++ -> Python -> C# -> C++ through three processes, and the C++ driver prints latency.
# scripts/demo.sh runs scripts/setup.sh first and then this; tests/python/test_demo.py runs this
# with a small count.
#
#   examples/run_demo.sh [--build-dir DIR] [--count N] [--warmup N] [--prefix P]
#
# Needs DIR (default build) built with the examples and the Python package, /usr/bin/python3 and
# the .NET 10 SDK. Steps: generate the Python endpoints and the IR from the schema into
# DIR/examples/python_demo, build the C# stage (dotnet build -c Release, offline restore), start
# the C# stage, the Python stage and the C++ driver, wait for all three. Exit status 0 only when
# all three succeed; the first failure stops the others. Ctrl-C stops all three.
set -euo pipefail
cd "$(dirname "$0")/.."

# Segment names unique to this run (/dev/shm/flatlane.demo-<pid>.demo.Demo.*): runs side by side
# and leftovers of a killed run cannot meet.
build=build count=10000 warmup=1000 prefix="demo-$$"
while [ $# -gt 0 ]; do
  case "$1" in
    --build-dir) build="$2"; shift 2 ;;
    --count) count="$2"; shift 2 ;;
    --warmup) warmup="$2"; shift 2 ;;
    --prefix) prefix="$2"; shift 2 ;;
    *) echo "usage: $0 [--build-dir DIR] [--count N] [--warmup N] [--prefix P]" >&2; exit 2 ;;
  esac
done
fail() { echo "demo: $*" >&2; exit 1; }
[ -d "$build" ] || fail "build directory $build not found (scripts/setup.sh builds build/)"
build="$(cd "$build" && pwd)"
driver="$build/examples/cpp/flatlane_demo_driver"
gen="$build/examples/python_demo"
stage_dll=examples/csharp/DemoStage/bin/Release/net10.0/DemoStage.dll

[ -x "$driver" ] || fail "$driver not found: build the examples (scripts/setup.sh builds them)"
[ -d "$build/python/flatlane" ] || fail "$build/python/flatlane not found: build with FLATLANE_BUILD_PYTHON=ON"
command -v dotnet >/dev/null || fail "dotnet not found: the demo's C# stage needs the .NET 10 SDK"

echo "demo: generating the Python endpoints and the IR from schema/examples/demo.fbs into $gen"
PYTHONPATH=generator /usr/bin/python3 -m flatlane_gen --lang python --dump-ir -o "$gen" schema/examples/demo.fbs
echo "demo: building the C# stage (dotnet build -c Release examples/csharp/DemoStage)"
DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 \
  dotnet build -c Release --nologo -v quiet -clp:ErrorsOnly examples/csharp/DemoStage >/dev/null \
  || { DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 dotnet build -c Release --nologo examples/csharp/DemoStage >&2;
       fail "the C# stage does not build"; }

logs="$(mktemp -d)"
declare -A role=()
cleanup() {
  local p
  for p in "${!role[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    local alive=0
    for p in "${!role[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ $alive -eq 0 ] && break
    sleep 0.2
  done
  for p in "${!role[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -f /dev/shm/flatlane."$prefix".*
  rm -rf "$logs"
}
trap cleanup EXIT
trap 'echo "demo: interrupted" >&2; exit 130' INT TERM

total=$((count + warmup))
# Every endpoint opens with create_or_open, so the order does not matter; the slowest starter
# (.NET) goes first anyway. The driver's first receive waits up to 60 s for the stages.
FLATLANE_BUILD_DIR="$build" dotnet "$stage_dll" --count "$total" --prefix "$prefix" \
  >"$logs/csharp" 2>&1 &
role[$!]="C# stage"
PYTHONPATH="$build/python" /usr/bin/python3 examples/python/demo_stage.py --gen "$gen" --count "$total" \
  --prefix "$prefix" >"$logs/python" 2>&1 &
role[$!]="Python stage"
"$driver" --count "$count" --warmup "$warmup" --prefix "$prefix" &
role[$!]="C++ driver"

failed=""
left=3
while [ $left -gt 0 ]; do
  pid=""
  rc=0
  wait -n -p pid "${!role[@]}" || rc=$?
  [ -n "$pid" ] || break
  left=$((left - 1))
  if [ $rc -ne 0 ]; then
    failed+="${failed:+, }${role[$pid]} (exit $rc)"
    unset "role[$pid]"
    break  # cleanup stops the others: without this stage they would wait for their timeouts
  fi
  unset "role[$pid]"
done
[ -z "$failed" ] && [ $left -gt 0 ] && failed="lost track of a process"

cat "$logs/python" "$logs/csharp"
if [ -n "$failed" ]; then
  echo "demo: FAILED: $failed" >&2
  exit 1
fi
echo "demo: OK: C++, Python and C# processes passed $total typed messages round, every reply checked"
