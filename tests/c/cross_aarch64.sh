#!/bin/sh
# Cross-compiles the engine's C tests for aarch64 with Debian's
# gcc-aarch64-linux-gnu and runs them under qemu-user, so the NEON kernels
# (GEMM micro-kernels, vector math) run on this x86-64 machine. Installs the
# two packages when missing and it may (root); exits non-zero on any failure.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
if ! command -v aarch64-linux-gnu-gcc >/dev/null 2>&1 || ! command -v qemu-aarch64 >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "installing gcc-aarch64-linux-gnu and qemu-user"
        apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc-aarch64-linux-gnu qemu-user >/dev/null
    else
        echo "cross_aarch64.sh: needs aarch64-linux-gnu-gcc and qemu-aarch64 (apt-get install gcc-aarch64-linux-gnu qemu-user)" >&2
        exit 2
    fi
fi
echo "== aarch64 under qemu: $(aarch64-linux-gnu-gcc --version | head -n 1)"
# qemu-user cannot fork a threaded process, and its timings mean nothing
NC_TEST_NO_FORK=1 NC_TEST_NO_TIMING=1 \
CC=aarch64-linux-gnu-gcc ARCH=aarch64 RUNNER="qemu-aarch64 -L /usr/aarch64-linux-gnu" \
    sh "$here/run.sh"
