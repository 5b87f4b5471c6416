#!/usr/bin/env bash
# Runs nncore's fuzz harnesses for a fixed number of inputs each, for CI:
#   tools/fuzz/run.sh [N] [--no-atheris] [--seed S]
# N (default 2000) inputs per harness. With atheris importable by $PYTHON (or
# `python`) it drives the harnesses (coverage-guided); otherwise each runs as a
# seeded random-mutation loop. Exits non-zero on the first finding; the input
# is saved under $NNCORE_FUZZ_OUT (default /tmp/nncore-fuzz-$UID/<harness>/):
# finding-*.bin for an exception, current.bin for a crash. Replay one with
#   python tools/fuzz/<harness>.py --replay FILE
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
PY="${PYTHON:-python}"
N="${1:-2000}"
shift || true
status=0
for harness in fuzz_boundary fuzz_model_file; do
    start=$(date +%s)
    if "$PY" "$HERE/$harness.py" -n "$N" "$@"; then
        echo "== $harness: $N inputs clean in $(( $(date +%s) - start )) s"
    else
        rc=$?
        echo "== $harness: FINDING (exit $rc); reproducer in ${NNCORE_FUZZ_OUT:-/tmp/nncore-fuzz-$(id -u)}/$harness/"
        status=1
    fi
done
exit $status
