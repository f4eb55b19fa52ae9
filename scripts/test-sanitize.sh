#!/usr/bin/env bash
# AddressSanitizer + UBSan build of the whole test suite (build-asan/, gcc, -O1 -g) and a
# CTest run there (every test; extra arguments go to ctest, e.g. -E 'pattern' to skip some).
#   scripts/test-sanitize.sh
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${SINKQUANT_ASAN_DIR:-build-asan}
cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g" \
  -DSINKQUANT_SANITIZE=ON >/dev/null
cmake --build "$dir" -j"$(nproc)"
# detect_leaks needs ptrace, which some containers forbid: keep it on and let a failure show.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:strict_string_checks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
cd "$dir"
ctest --output-on-failure -j"$(nproc)" "$@"
