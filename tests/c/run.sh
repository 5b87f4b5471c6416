#!/bin/sh
# Builds the C engine (csrc/**/*.c, each ISA file with its own flags) with the
# C tests in this folder and runs each test; exits non-zero on any failure.
# Usage: tests/c/run.sh   (CC=clang tests/c/run.sh for another compiler)
# Cross runs: ARCH names the target architecture (default: this machine's)
# and RUNNER the command that runs its binaries, e.g. qemu-aarch64 (see
# tests/c/cross_aarch64.sh).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
CC=${CC:-gcc}
build=$(mktemp -d "${TMPDIR:-/tmp}/nncore-ctest.XXXXXX")
trap 'rm -rf "$build"' EXIT
arch=${ARCH:-$(uname -m)}
RUNNER=${RUNNER:-}
base="-std=c99 -O2 -fno-math-errno -Wall -Werror=implicit-function-declaration -I$root/csrc"
objs=""
for src in $(find "$root/csrc" -name '*.c' | sort); do
    stem=$(basename "$src" .c)
    flags=""
    case "$stem" in
    *_avx2) case "$arch" in x86_64|amd64) flags="-mavx2 -mfma" ;; *) continue ;; esac ;;
    *_avx512) case "$arch" in x86_64|amd64) flags="-mavx512f -mavx512bw -mavx512dq -mavx512vl -mfma" ;; *) continue ;; esac ;;
    *_neon) case "$arch" in aarch64|arm64) flags="" ;; *) continue ;; esac ;;
    esac
    obj="$build/$(echo "${src#$root/csrc/}" | tr '/' '_').o"
    $CC $base $flags -c "$src" -o "$obj"
    objs="$objs $obj"
done
status=0
# The NEON micro-kernels, bit for bit against scalar fma chains: natively on
# aarch64, elsewhere through the lane-by-lane emulation in neon_shim/.
case "$arch" in
aarch64|arm64) neon_flags="" ;;
*) neon_flags="-DNC_GEMM_ARM64=1 -I$here/neon_shim -Wno-unknown-pragmas" ;;
esac
$CC $base $neon_flags -c "$root/csrc/gemm/kernel_neon.c" -o "$build/neon_kernel.o"
$CC $base "$here/neon_kernels.c" "$build/neon_kernel.o" -o "$build/neon_kernels" -lm
echo "== neon_kernels.c"
$RUNNER "$build/neon_kernels" || status=1
for test in "$here"/test_*.c; do
    exe="$build/$(basename "$test" .c)"
    # a test may name the only engine files it links ("links: threads.c" in
    # its header comment, for a test that stands in for the rest itself)
    links=$(sed -n 's/^ *\* *links: *\([^ ]*\).*/\1/p' "$test" | head -n 1)
    test_objs=$objs
    if [ -n "$links" ]; then
        test_objs=""
        for name in $(echo "$links" | tr ',' ' '); do
            test_objs="$test_objs $build/$(echo "$name" | tr '/' '_').o"
        done
    fi
    $CC $base -I"$root/csrc" "$test" $test_objs -o "$exe" -lm -lpthread
    echo "== $(basename "$test")"
    $RUNNER "$exe" || status=1
done
exit $status
