"""Build of nncore: the C engine (csrc/) and its Cython boundary (nncore/_core.pyx).

The engine's C files are compiled here rather than listed as Extension
sources, so that each can have its own flags: plain C99 for the portable
engine, and, per instruction set, the flags for that set only (files named
*_avx2.c, *_avx512.c, *_neon.c). The best kernels are chosen at run time, so
one wheel runs on every CPU of its architecture; nothing is built with
-march=native. No OpenMP either: the engine has its own thread pool
(csrc/threads.c, pthreads or Win32), so no OpenMP runtime can clash with
another package's in the same process.
"""
import glob
import os
import platform

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ENGINE_DIR = "csrc"


def target_machine():
    """The architecture the wheel is built FOR, which is not always the one
    this interpreter runs on: cibuildwheel cross-compiles macOS wheels (it
    sets _PYTHON_HOST_PLATFORM and ARCHFLAGS) and Windows ARM64 ones (the
    MSVC environment sets VSCMD_ARG_TGT_ARCH). Compiling another
    architecture's kernels would fail, or worse, leave a level out."""
    host = os.environ.get("_PYTHON_HOST_PLATFORM", "").rsplit("-", 1)[-1].lower()
    archs = os.environ.get("ARCHFLAGS", "").split()[1::2]
    if host == "universal2" or len(set(archs)) > 1:
        raise SystemExit("nncore: one architecture per wheel (no universal2): "
                         "each has its own kernels, chosen at build time")
    if host:
        return host
    if archs:
        return archs[0].lower()
    return (os.environ.get("VSCMD_ARG_TGT_ARCH") or platform.machine()).lower()


MACHINE = target_machine()
IS_X86 = MACHINE in ("x86_64", "amd64", "x64", "i686", "x86")

# Flags per instruction-set suffix: (GCC/Clang, MSVC). A suffix missing for
# this architecture means its files are not compiled at all.
ISA_FLAGS = {
    "avx2": (["-mavx2", "-mfma"], ["/arch:AVX2"]),
    "avx512": (["-mavx512f", "-mavx512bw", "-mavx512dq", "-mavx512vl", "-mfma"],
               ["/arch:AVX512"]),
    "neon": ([], []),
}
if not IS_X86:
    ISA_FLAGS.pop("avx2")
    ISA_FLAGS.pop("avx512")
if MACHINE not in ("aarch64", "arm64"):
    ISA_FLAGS.pop("neon")


# NNCORE_SANITIZE=1 builds the engine and the extension under AddressSanitizer
# and UndefinedBehaviorSanitizer, for tools/sanitize.sh (never for a release).
SANITIZE = os.environ.get("NNCORE_SANITIZE", "") not in ("", "0")
SANITIZE_FLAGS = ["-fsanitize=address,undefined", "-fno-omit-frame-pointer",
                  "-fno-sanitize-recover=undefined", "-O1", "-g"]


def engine_sources():
    """{isa or None: [sources]} for every engine C file below csrc/."""
    groups = {}
    for path in sorted(glob.glob(os.path.join(ENGINE_DIR, "**", "*.c"), recursive=True)):
        stem = os.path.splitext(os.path.basename(path))[0]
        isa = stem.rsplit("_", 1)[-1] if "_" in stem else None
        known_isa = isa in ("avx2", "avx512", "neon")
        if known_isa and isa not in ISA_FLAGS:
            continue  # another architecture's kernels
        groups.setdefault(isa if known_isa else None, []).append(path)
    return groups


class BuildEngineExt(build_ext):
    """build_ext that first compiles the C engine, each file with its own flags."""

    def build_extension(self, ext):
        msvc = self.compiler.compiler_type == "msvc"
        # -ffp-contract=off: GCC in ISO mode never fuses a*b+c into an FMA,
        # but Clang does by default, which would make the -mfma builds of
        # optim_impl.h differ in the last bit from the portable loops (the
        # tests hold every level to the same bits). /std:c11: MSVC's legacy C
        # mode has no `restrict` keyword (optim_impl.h uses it); VS 2022 does
        # not contract without /fp:contract.
        base = (["/O2", "/std:c11"] if msvc else
                ["-std=c99", "-O3", "-fno-math-errno", "-ffp-contract=off", "-Wall"])
        objects = []
        for isa, sources in engine_sources().items():
            flags = list(base)
            if isa is not None:
                flags += ISA_FLAGS[isa][1 if msvc else 0]
            if SANITIZE and not msvc:
                flags += SANITIZE_FLAGS  # after -O3: its -O1 wins
            objects += self.compiler.compile(
                sources, output_dir=self.build_temp, include_dirs=[ENGINE_DIR],
                extra_postargs=flags,
                depends=glob.glob(os.path.join(ENGINE_DIR, "**", "*.h"), recursive=True))
        ext.extra_objects = objects + list(ext.extra_objects or [])
        if not msvc:  # the engine's thread pool (csrc/threads.c) uses pthreads
            ext.extra_link_args = list(ext.extra_link_args or []) + ["-pthread"]
            self._portable_link(ext)
        if SANITIZE and not msvc:
            ext.extra_compile_args = list(ext.extra_compile_args or []) + SANITIZE_FLAGS
            ext.extra_link_args = list(ext.extra_link_args or []) + SANITIZE_FLAGS
        super().build_extension(ext)

    def _portable_link(self, ext):
        """Keep the build machine out of the module (tools/check_wheel.sh checks).

        Some interpreters (pyenv's, built with --enable-shared) put
        -Wl,-rpath,<their lib dir> in LDSHARED: an extension module needs no
        libpython path (the interpreter has it loaded), and a RUNPATH to the
        build host would ship in the wheel. Debug information (Python's CFLAGS
        carry -g) holds the build directories and triples the module's size:
        the linker leaves it out (-S, for GNU ld, lld and Apple's ld alike)
        unless NNCORE_DEBUG=1 asks to keep it, for a debugger.
        """
        ld = self.compiler.linker_so
        self.compiler.linker_so = [a for a in ld if not a.startswith("-Wl,-rpath")]
        if os.environ.get("NNCORE_DEBUG", "") not in ("1", "true", "yes"):
            ext.extra_link_args = list(ext.extra_link_args) + ["-Wl,-S"]


extensions = [
    Extension(
        "nncore._core",
        sources=["nncore/_core.pyx"],
        include_dirs=[ENGINE_DIR, numpy.get_include()],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        depends=glob.glob(os.path.join(ENGINE_DIR, "**", "*.[ch]"), recursive=True),
    )
]

setup(
    ext_modules=cythonize(extensions, compiler_directives={"language_level": "3"}),
    cmdclass={"build_ext": BuildEngineExt},
)
