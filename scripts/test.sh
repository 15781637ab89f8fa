#!/usr/bin/env bash
# Sets everything up, then runs all tests: the generator's pytest, the Release build with -Werror
# and its ctest (C++ tests, the out-of-tree consumer, the bench smoke test), the Python package's
# pytest and an offline pip install, the C# tests (dotnet test) and a smoke run of the C# bench,
# then the same C++ tests under AddressSanitizer + UndefinedBehaviorSanitizer and under
# ThreadSanitizer.
#
#   scripts/test.sh            all of it
#   scripts/test.sh --quick    Release tests only
set -euo pipefail
cd "$(dirname "$0")/.."
quick=0
[ "${1:-}" = "--quick" ] && quick=1

scripts/setup.sh --no-build
jobs="$(nproc)"

echo "== Generator (pytest) =="
/usr/bin/python3 -m pytest tests/generator -q -p no:cacheprovider

echo "== Release build (-Werror) =="
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DFLATLANE_WERROR=ON >/dev/null
cmake --build build -j "$jobs"
# -j 1: the multi-process tests time peer-death detection and want both cores.
(cd build && ctest --output-on-failure -j 1 --timeout 600)

echo "== Python package (pytest) =="
PYTHONPATH=build/python FLATLANE_BUILD_DIR=build /usr/bin/python3 -m pytest tests/python -q -p no:cacheprovider
# The same package installs offline with pip (it builds the extension with CMake).
venv="$(mktemp -d)/venv"
/usr/bin/python3 -m venv --system-site-packages "$venv"
"$venv/bin/pip" install -q --no-build-isolation --no-index runtime/python
(cd / && "$venv/bin/python" -c "import flatlane, sys; print('pip-installed flatlane imports from', flatlane.__file__)")
rm -rf "$(dirname "$venv")"

echo "== C# (.NET 10, xunit) =="
DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 FLATLANE_BUILD_DIR="$PWD/build" \
  dotnet test runtime/csharp/Flatlane.sln -c Release
# The C# bench once through, beside the C++ one: a smoke test, its figures mean nothing here;
# every message is checked, and a failure exits non-zero. (dotnet test builds only the test
# projects and what they reference, so the bench is built here.)
if [ "$jobs" -ge 2 ]; then
  DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 FLATLANE_BUILD_DIR="$PWD/build" \
    dotnet run -c Release --project runtime/csharp/Flatlane.Bench -- --quick --cpp build/bench/flatlane_bench --rounds 1
fi

if [ $quick -eq 0 ]; then
  echo "== ASan + UBSan build =="
  cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFLATLANE_WERROR=ON -DFLATLANE_ASAN=ON \
    -DFLATLANE_BUILD_BENCH=OFF -DFLATLANE_BUILD_PYTHON=OFF >/dev/null
  cmake --build build-asan -j "$jobs"
  (cd build-asan && ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure -j 1 --timeout 900)

  echo "== TSan build =="
  cmake -S . -B build-tsan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFLATLANE_WERROR=ON -DFLATLANE_TSAN=ON \
    -DFLATLANE_BUILD_BENCH=OFF -DFLATLANE_BUILD_EXAMPLES=OFF -DFLATLANE_BUILD_PYTHON=OFF >/dev/null
  cmake --build build-tsan -j "$jobs"
  (cd build-tsan && ctest --output-on-failure -j 1 --timeout 900)
fi
