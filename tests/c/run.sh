#!/bin/sh
# Builds the C engine (csrc/**/*.c, each ISA file with its own flags) with the
# C tests in this folder and runs each test; exits non-zero on any failure.
# Usage: tests/c/run.sh   (CC=clang tests/c/run.sh for another compiler)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
CC=${CC:-gcc}
build=$(mktemp -d "${TMPDIR:-/tmp}/nncore-ctest.XXXXXX")
trap 'rm -rf "$build"' EXIT
arch=$(uname -m)
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
for test in "$here"/test_*.c; do
    exe="$build/$(basename "$test" .c)"
    $CC $base -I"$root/csrc" "$test" $objs -o "$exe" -lm -lpthread
    echo "== $(basename "$test")"
    "$exe" || status=1
done
exit $status
