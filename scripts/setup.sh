#!/usr/bin/env bash
# Installs every system dependency (Debian packages) and builds Flatlane. Idempotent: packages
# already present are not reinstalled, and the build is incremental.
#
#   scripts/setup.sh [--no-build] [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  build-essential cmake ninja-build pkg-config
  libgtest-dev libgmock-dev
  libzmq3-dev
  flatbuffers-compiler libflatbuffers-dev
  python3 python3-jinja2 python3-flatbuffers python3-pytest python3-numpy python3-zmq python3-msgpack pybind11-dev
  python3-dev python3-setuptools python3-wheel python3-venv python3-pip
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# C#: the .NET 10 SDK comes with the machine (not from apt); NuGet packages restore offline from
# /opt/nuget/packages (runtime/csharp/nuget.config).
if ! command -v dotnet >/dev/null; then
  echo "setup: the .NET 10 SDK (dotnet) is required for runtime/csharp and was not found on PATH" >&2
  exit 1
fi
if [ ! -d /opt/nuget/packages ]; then
  echo "setup: /opt/nuget/packages (the offline NuGet folder runtime/csharp restores from) is missing" >&2
  exit 1
fi

build=1
if [ "${1:-}" = "--no-build" ]; then build=0; shift; fi
BUILD_DIR="${1:-build}"
if [ $build -eq 1 ]; then
  extra=()
  [ "${CI:-}" = "true" ] && extra+=(-DFLATLANE_WERROR=ON)
  cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release "${extra[@]}" >/dev/null
  cmake --build "$BUILD_DIR" -j "$(nproc)"
fi
