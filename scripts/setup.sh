#!/usr/bin/env bash
# Installs sinkquant's dependencies from Debian packages (Debian 12) and builds it (Release,
# -O3 -march=native with OpenMP). Safe to run again: installs only what is missing.
#   scripts/setup.sh            # deps + build into ./build
#   SINKQUANT_PORTABLE=1 ...     # build for x86-64-v2 instead of this CPU
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(build-essential cmake pkg-config libeigen3-dev libprotobuf-dev protobuf-compiler
          libonnx-dev catch2 nlohmann-json3-dev
          clang libclang-rt-14-dev libomp-dev   # clang: the fuzzers (scripts/fuzz)
          libopenmpi-dev openmpi-bin)           # mpirun across processes (README, MPI)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
# Node.js + npm (the ONNX Runtime cross-check): Debian's, unless a node/npm is already on PATH
# (a machine with a newer Node from elsewhere cannot also take Debian's npm package).
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# ONNX Runtime (Node) for the export cross-checks, pinned by scripts/onnx/package-lock.json.
# Reinstalled whenever the lock file changes (a stamp of its hash sits in node_modules).
if [ -f scripts/onnx/package-lock.json ]; then
  lock_sum=$(sha256sum scripts/onnx/package-lock.json | cut -d' ' -f1)
  stamp=scripts/onnx/node_modules/.sinkquant-lock-sha256
  if [ "$(cat "$stamp" 2>/dev/null)" != "$lock_sum" ]; then
    (cd scripts/onnx && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
    echo "$lock_sum" > "$stamp"
  fi
fi

native=ON
[ "${SINKQUANT_PORTABLE:-0}" = 1 ] && native=OFF
# -march=native can fail on exotic toolchains/CPUs: fall back to the portable flag.
if ! echo 'int main(){}' | g++ -march=native -x c++ - -o /dev/null 2>/dev/null; then native=OFF; fi
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DSINKQUANT_NATIVE=$native >/dev/null
cmake --build build -j"$(nproc)"
echo "setup: built build/sinkquant"
