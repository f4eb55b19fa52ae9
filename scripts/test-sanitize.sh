#!/usr/bin/env bash
# AddressSanitizer + UBSan build of the whole test suite (build-asan/, gcc, -O1 -g1) and a CTest
# run there. Extra arguments go to ctest (e.g. -R 'pattern').
#   scripts/test-sanitize.sh
#
# Every test runs except the six whole-text ONNX Runtime perplexity comparisons ("ONNX Runtime
# perplexity" in their names): their code (export, reference logits, eval) runs under the
# sanitizers in the shorter ONNX and CLI tests, and at ASan speed the whole texts alone took
# over 25 minutes here. One OpenMP thread per test: CTest runs two tests at once on CI's two
# cores, and the tests that need two threads set them explicitly.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${SINKQUANT_ASAN_DIR:-build-asan}
# Without MPI: LeakSanitizer reports Open MPI's own start-up allocations as leaks; the
# single-process build runs the same window splitting with one rank, and the main build tests
# mpirun (tests/cli/mpi_test.cc).
cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1" \
  -DSINKQUANT_SANITIZE=ON -DSINKQUANT_MPI=OFF >/dev/null
cmake --build "$dir" -j"$(nproc)"
# detect_leaks needs ptrace, which some containers forbid: keep it on and let a failure show.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:strict_string_checks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
cd "$dir"
ctest --output-on-failure -j"$(nproc)" -E "ONNX Runtime perplexity" "$@"
