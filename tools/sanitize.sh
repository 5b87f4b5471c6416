#!/usr/bin/env bash
# Memory safety of the C engine:
#
#   1. AddressSanitizer + UndefinedBehaviorSanitizer: a copy of the tree (under
#      /tmp, so the worktree's in-place build is left alone) is built with
#      NNCORE_SANITIZE=1 (see setup.py) and the Python test suite runs against
#      it, with the ASan runtime preloaded into the (uninstrumented) interpreter.
#   2. valgrind memcheck over the engine's C tests (tests/c/test_*.c), each
#      linked against every engine file of csrc/.
#
# Usage (from anywhere, with a Python that has numpy, Cython, setuptools,
# pytest and hypothesis):
#   tools/sanitize.sh            # CI mode: a chosen subset of tests, a few minutes
#   tools/sanitize.sh --full     # the whole test suite under the sanitizers
#   tools/sanitize.sh --asan-only | --valgrind-only   [--full]
#   tools/sanitize.sh -- <pytest args>   # your own pytest selection
# Environment: NNCORE_SANITIZE_DIR (the scratch copy; default /tmp/nncore-sanitize-$UID).
# Exits non-zero on any sanitizer report, valgrind error or test failure.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
WORK="${NNCORE_SANITIZE_DIR:-/tmp/nncore-sanitize-$(id -u)}"
PY="${PYTHON:-python}"
MODE=ci
DO_ASAN=1
DO_VALGRIND=1
PYTEST_ARGS=()
while [ $# -gt 0 ]; do
    case "$1" in
        --full) MODE=full ;;
        --asan-only) DO_VALGRIND=0 ;;
        --valgrind-only) DO_ASAN=0 ;;
        --) shift; PYTEST_ARGS=("$@"); MODE=custom; break ;;
        -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
        *) echo "sanitize.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done

# The CI subset: the boundary and kernel tests (every entry point, every ISA
# level, awkward layouts, fuzzing), the layers and the model API, threads.
# Tests needing torch or scikit-learn are left out (they would load large
# uninstrumented libraries into the ASan process for no coverage of ours).
CI_TESTS=(tests/test_boundary.py tests/test_ops_dense.py tests/test_activations.py
          tests/test_losses.py tests/test_metrics.py tests/test_layers.py
          tests/test_model.py tests/test_optimizers.py tests/test_rng.py
          tests/test_vmath.py tests/test_threads.py tests/test_fuzz.py
          tests/test_concurrency.py tests/test_norm.py tests/test_train_engine.py
          tests/test_matmul_boundary.py tests/test_perceptron.py)

status=0

# ------------------------------------------------------------- ASan + UBSan
if [ "$DO_ASAN" = 1 ]; then
    echo "== ASan+UBSan: copying the tree to $WORK"
    rm -rf "$WORK"
    mkdir -p "$WORK"
    # the sources only: no build products, caches or virtual environments
    (cd "$ROOT" && tar -cf - --exclude=./build --exclude='./.venv*' --exclude=./.git \
        --exclude='*.so' --exclude='__pycache__' --exclude=.hypothesis \
        --exclude=.pytest_cache --exclude='nncore/_core.c' --exclude='*.egg-info' .) \
        | (cd "$WORK" && tar -xf -)
    # an in-place build needs the build requirements in this environment (an
    # editable install builds in an isolated one and leaves none behind)
    "$PY" -c "import Cython, numpy, setuptools" 2>/dev/null \
        || "$PY" -m pip install -q "Cython>=3.0" "setuptools>=77" numpy
    echo "== ASan+UBSan: building (NNCORE_SANITIZE=1)"
    (cd "$WORK" && NNCORE_SANITIZE=1 "$PY" setup.py -q build_ext --inplace >build.log 2>&1) || {
        tail -30 "$WORK/build.log"; echo "sanitizer build failed"; exit 1; }

    LIBASAN="$(gcc -print-file-name=libasan.so)"
    if [ ! -e "$LIBASAN" ]; then
        echo "libasan.so not found ($LIBASAN): install the compiler's sanitizer runtime" >&2
        exit 1
    fi
    case "$MODE" in
        ci) SEL=(-k "not torch") ; for t in "${CI_TESTS[@]}"; do [ -e "$WORK/$t" ] && SEL+=("$t"); done ;;
        full) SEL=(tests) ;;
        custom) SEL=("${PYTEST_ARGS[@]}") ;;
    esac
    echo "== ASan+UBSan: pytest ${SEL[*]}"
    # detect_leaks=0: CPython keeps its interned objects and arenas to the end on
    # purpose. The engine's own leaks are valgrind's job below.
    # No detect_stack_use_after_return: GCC's fake stack frames do not keep the
    # 64-byte alignment of __m512 locals (the AVX-512 GEMM tiles' accumulators),
    # so the compiler's aligned spills fault there (seen with Debian's python3.11,
    # not with every interpreter build); the engine returns no pointers to locals.
    # HYPOTHESIS_PROFILE=ci keeps tests/test_fuzz.py's example counts modest.
    (cd "$WORK" && env LD_PRELOAD="$LIBASAN" \
        ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:strict_string_checks=1:check_initialization_order=1" \
        UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1" \
        PYTHONMALLOC=malloc HYPOTHESIS_PROFILE="${HYPOTHESIS_PROFILE:-ci}" \
        "$PY" -m pytest -q -p no:cacheprovider -x "${SEL[@]}") || status=1
    [ $status = 0 ] && echo "== ASan+UBSan: clean" || echo "== ASan+UBSan: FAILED"
fi

# ------------------------------------------------------------------ valgrind
if [ "$DO_VALGRIND" = 1 ]; then
    if ! command -v valgrind >/dev/null; then
        echo "== valgrind: not installed, skipped"
    else
        BIN="$(mktemp -d /tmp/nncore-valgrind.XXXXXX)"
        trap 'rm -rf "$BIN"' EXIT
        CC="${CC:-cc}"
        ARCH="$(uname -m)"
        CFLAGS=(-std=c99 -O1 -g -Wall -fno-omit-frame-pointer -I"$ROOT/csrc")
        echo "== valgrind: building the engine (-O1 -g) into $BIN"
        objs=()
        while IFS= read -r src; do
            name="$(basename "$src" .c)"
            flags=()
            case "$name" in
                *_avx2) [[ "$ARCH" =~ ^(x86_64|amd64|i.86)$ ]] || continue; flags=(-mavx2 -mfma) ;;
                *_avx512) [[ "$ARCH" =~ ^(x86_64|amd64|i.86)$ ]] || continue
                          flags=(-mavx512f -mavx512bw -mavx512dq -mavx512vl -mfma) ;;
                *_neon) [[ "$ARCH" =~ ^(aarch64|arm64)$ ]] || continue ;;
            esac
            obj="$BIN/$(echo "${src#"$ROOT"/}" | tr / _).o"
            "$CC" "${CFLAGS[@]}" ${flags[@]+"${flags[@]}"} -c "$src" -o "$obj"
            objs+=("$obj")
        done < <(find "$ROOT/csrc" -name '*.c' | sort)
        # An archive, so that a test which defines an engine symbol itself
        # (test_threads.c links threads.c alone) takes only what it needs.
        ar rcs "$BIN/libnncore.a" "${objs[@]}"
        # valgrind emulates up to AVX2: the engine's cpuid dispatch picks that level
        # or lower by itself, and test_vmath.c visits every level valgrind reports.
        # The one leak by design: a forked child forgets the parent's thread pool
        # (its helpers do not exist there; csrc/threads.c, pool_after_fork_child).
        cat >"$BIN/nncore.supp" <<'EOF'
{
   pool-forgotten-in-forked-child
   Memcheck:Leak
   match-leak-kinds: definite
   fun:calloc
   fun:pool_resize
   ...
   fun:test_fork
}
EOF
        VG=(valgrind --tool=memcheck --error-exitcode=99 --leak-check=full
            --errors-for-leak-kinds=definite --show-leak-kinds=definite
            --track-origins=yes --quiet --suppressions="$BIN/nncore.supp")
        for t in "$ROOT"/tests/c/test_*.c; do
            name="$(basename "$t" .c)"
            # test_gemm's thousands of products take far too long under memcheck,
            # and test_threads asserts that tasks overlap, which valgrind's one-at-
            # a-time threads never do: CI mode leaves both to run.sh (natively) and
            # to ASan; --full runs them here too
            if { [ "$name" = test_gemm ] || [ "$name" = test_threads ]; } && [ "$MODE" != full ]; then
                echo "== valgrind: $name skipped in CI mode (run with --full)"
                continue
            fi
            "$CC" "${CFLAGS[@]}" "$t" "$BIN/libnncore.a" -lm -lpthread -o "$BIN/$name"
            args=()
            [ "$name" = test_threads ] && args=(--no-timing)
            echo "== valgrind: $name ${args[*]}"
            if "${VG[@]}" "$BIN/$name" ${args[@]+"${args[@]}"} >"$BIN/$name.out" 2>&1; then
                tail -3 "$BIN/$name.out"
            else
                rc=$?
                cat "$BIN/$name.out"
                echo "== valgrind: $name FAILED (exit $rc)"
                status=1
            fi
        done
        [ $status = 0 ] && echo "== valgrind: clean"
    fi
fi
exit $status
