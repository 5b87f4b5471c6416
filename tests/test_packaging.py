"""Packaging: one version everywhere, the metadata, the wheel configuration and
the CI workflow files.

These run in two places: in the source tree (the usual `python -m pytest`), and
from a copy of tests/ against an installed wheel (tools/check_wheel.sh and
cibuildwheel set NNCORE_TEST_INSTALLED=1; NNCORE_SOURCE_DIR names the source
tree when there is one). Checks that read source files skip where there is no
source tree.
"""
from __future__ import annotations

import ast
import os
import re
import sysconfig

import pytest

import nncore
from nncore import _core
from nncore._version import __version__

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.environ.get("NNCORE_SOURCE_DIR") or os.path.dirname(HERE)
PY_MINORS = range(9, 15)  # CPython 3.9 to 3.14: the promise


def source_file(*parts: str) -> str:
    path = os.path.join(SOURCE, *parts)
    if not os.path.exists(os.path.join(SOURCE, "csrc", "nncore.h")):
        pytest.skip("no nncore source tree here (installed-wheel run without NNCORE_SOURCE_DIR)")
    return path


def read(*parts: str) -> str:
    with open(source_file(*parts), encoding="utf-8") as f:
        return f.read()


def pyproject() -> dict:
    try:
        import tomllib
    except ImportError:  # Python < 3.11
        tomllib = pytest.importorskip("tomli")
    with open(source_file("pyproject.toml"), "rb") as f:
        return tomllib.load(f)


def workflow(name: str) -> dict:
    yaml = pytest.importorskip("yaml")
    with open(source_file(".github", "workflows", name), encoding="utf-8") as f:
        doc = yaml.safe_load(f)
    assert isinstance(doc, dict), name
    # YAML 1.1 reads the key `on` as True
    if True in doc:
        doc["on"] = doc.pop(True)
    return doc


# --------------------------------------------------------------------------
# One version
# --------------------------------------------------------------------------


def test_python_and_engine_versions_agree():
    assert re.fullmatch(r"\d+\.\d+\.\d+", __version__), __version__
    assert nncore.__version__ == __version__
    assert _core.engine_version() == __version__
    assert nncore._config.config()["version"] == __version__


def test_header_version_macros_agree_with_version_py():
    header = read("csrc", "nncore.h")
    parts = [re.search(rf"#define\s+NC_VERSION_{p}\s+(\d+)\s", header) for p in
             ("MAJOR", "MINOR", "PATCH")]
    assert all(parts), "NC_VERSION_MAJOR/MINOR/PATCH missing from csrc/nncore.h"
    from_header = ".".join(m.group(1) for m in parts)
    from_file = re.search(r'__version__\s*=\s*"([^"]+)"', read("nncore", "_version.py")).group(1)
    assert from_header == from_file
    # and the module being tested was built from this source
    assert _core.engine_version() == from_header


def test_installed_package_is_the_one_imported():
    """In an installed-wheel run, `import nncore` must be the wheel's, not a
    source tree's (which would test something else than what ships)."""
    if os.environ.get("NNCORE_TEST_INSTALLED") != "1":
        pytest.skip("not an installed-wheel run (NNCORE_TEST_INSTALLED unset)")
    site = {os.path.realpath(sysconfig.get_paths()[k]) for k in ("purelib", "platlib")}
    for module in (nncore, _core):
        where = os.path.realpath(module.__file__)
        assert any(where.startswith(s + os.sep) for s in site), (where, site)
    package_dir = os.path.dirname(os.path.realpath(nncore.__file__))
    shipped = os.listdir(package_dir)
    sources = [f for f in shipped if f.endswith((".c", ".h", ".pyx", ".pxd"))]
    assert not sources, f"the installed package holds sources: {sources}"


# --------------------------------------------------------------------------
# Metadata
# --------------------------------------------------------------------------


def test_project_metadata():
    meta = pyproject()["project"]
    assert meta["name"] == "nncore"
    assert meta["dynamic"] == ["version"]
    assert pyproject()["tool"]["setuptools"]["dynamic"]["version"] == {
        "attr": "nncore._version.__version__"}
    assert meta["readme"] == "README.md" and os.path.exists(source_file("README.md"))
    assert meta["license"] == "BSD-3-Clause"
    for f in meta["license-files"]:
        assert os.path.exists(source_file(f)), f
    assert "BSD" in read("LICENSE") or "Redistribution and use" in read("LICENSE")
    # PEP 639: an SPDX licence expression excludes License :: classifiers
    assert not [c for c in meta["classifiers"] if c.startswith("License ::")]
    assert {"Homepage", "Source", "Issues"} <= set(meta["urls"])
    assert meta["requires-python"] == ">=3.%d" % min(PY_MINORS)
    assert meta["dependencies"] == ["numpy>=1.22"]  # NumPy is the only run-time dependency


def test_classifiers_and_wheel_builds_name_the_same_pythons():
    data = pyproject()
    classified = {int(m.group(1)) for c in data["project"]["classifiers"]
                  if (m := re.fullmatch(r"Programming Language :: Python :: 3\.(\d+)", c))}
    built = {int(m) for m in re.findall(r"cp3(\d+)-\*", data["tool"]["cibuildwheel"]["build"])}
    assert classified == built == set(PY_MINORS)


def test_cibuildwheel_configuration():
    cibw = pyproject()["tool"]["cibuildwheel"]
    assert cibw["test-extras"] == ["test"]
    assert "show_config()" in cibw["test-command"]
    assert "pytest" in cibw["test-command"]
    # the tests run from a copy, so `import nncore` is the installed wheel
    assert cibw["test-sources"] == ["tests", "examples"]  # some tests run the examples
    assert cibw["test-environment"]["NNCORE_TEST_INSTALLED"] == "1"
    assert set(cibw["linux"]["archs"]) == {"x86_64", "aarch64"}
    assert set(cibw["macos"]["archs"]) == {"x86_64", "arm64"}
    assert cibw["windows"]["archs"] == ["AMD64"]
    # musllinux: x86_64 only
    assert "*-musllinux_aarch64" in cibw["skip"].split()


def test_no_march_native_anywhere_in_the_build():
    """A wheel built with -march=native would run only on CPUs like the build
    machine's. No flag of setup.py (its strings, docstrings aside) and no
    non-comment line of the build configuration may carry it."""
    tree = ast.parse(read("setup.py"))
    docstrings = {id(n.body[0].value) for n in ast.walk(tree)
                  if isinstance(n, (ast.Module, ast.FunctionDef, ast.ClassDef)) and n.body
                  and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
    flags = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant)
             and isinstance(n.value, str) and id(n) not in docstrings]
    assert flags and not [f for f in flags if "march" in f]
    for parts in (("pyproject.toml",), (".github", "workflows", "wheels.yml"),
                  (".github", "workflows", "ci.yml"), ("tools", "check_wheel.sh")):
        code = [ln for ln in read(*parts).splitlines() if not ln.lstrip().startswith("#")]
        assert not [ln for ln in code if "march=native" in ln], parts


def _setup_isa_flags() -> dict:
    tree = ast.parse(read("setup.py"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == ["ISA_FLAGS"]:
            return ast.literal_eval(node.value)
    raise AssertionError("setup.py has no ISA_FLAGS")


def test_each_isa_file_has_flags_for_gcc_clang_and_msvc():
    flags = _setup_isa_flags()
    assert flags["avx2"] == (["-mavx2", "-mfma"], ["/arch:AVX2"])
    assert flags["avx512"][1] == ["/arch:AVX512"]
    assert {"-mavx512f", "-mavx512bw", "-mavx512dq", "-mavx512vl", "-mfma"} == set(flags["avx512"][0])
    assert flags["neon"] == ([], [])  # Advanced SIMD is baseline on AArch64, MSVC ARM64 too
    suffixes = {os.path.splitext(f)[0].rsplit("_", 1)[-1]
                for f in os.listdir(source_file("csrc")) if f.endswith(".c") and "_" in f}
    assert {"avx2", "avx512", "neon"} & suffixes <= set(flags)


def test_no_openmp_runtime():
    """The engine has its own thread pool (csrc/threads.c), so it brings no
    OpenMP runtime that could clash with NumPy's, torch's or another
    package's libgomp/libomp/libiomp in one process."""
    csrc = source_file("csrc")
    for name in os.listdir(csrc):
        if name.endswith((".c", ".h")):
            with open(os.path.join(csrc, name), encoding="utf-8") as f:
                text = f.read()
            assert "#pragma omp" not in text and "omp.h" not in text, name
    assert not re.search(r"[-/]f?openmp", read("setup.py"), re.I)  # -fopenmp, /openmp


# --------------------------------------------------------------------------
# Workflows
# --------------------------------------------------------------------------


def _steps(job: dict) -> list:
    assert isinstance(job.get("steps"), list) and job["steps"], job
    for step in job["steps"]:
        assert ("uses" in step) != ("run" in step), step  # exactly one of the two
    return job["steps"]


def _uses(job: dict) -> list:
    return [s["uses"].split("@")[0] for s in _steps(job) if "uses" in s]


@pytest.mark.parametrize("name", ["ci.yml", "wheels.yml"])
def test_workflow_is_valid(name):
    doc = workflow(name)
    assert doc["name"] and doc["on"] and doc["jobs"]
    for job_id, job in doc["jobs"].items():
        assert "runs-on" in job, job_id
        _steps(job)
        if "needs" in job:
            needs = [job["needs"]] if isinstance(job["needs"], str) else job["needs"]
            assert set(needs) <= set(doc["jobs"]), (job_id, needs)


def test_ci_workflow_tests_every_os_on_push_and_pull_request():
    doc = workflow("ci.yml")
    assert {"push", "pull_request"} <= set(doc["on"])
    oses = doc["jobs"]["tests"]["strategy"]["matrix"]["os"]
    assert any(o.startswith("ubuntu") for o in oses)
    assert any(o.startswith("macos") for o in oses)
    assert any(o.startswith("windows") for o in oses)
    assert any("pytest" in s.get("run", "") for s in _steps(doc["jobs"]["tests"]))
    assert any("tools/check_wheel.sh" in s.get("run", "") for s in _steps(doc["jobs"]["release-path"]))


def test_wheels_workflow_builds_everywhere_and_publishes_on_a_tag():
    doc = workflow("wheels.yml")
    jobs = doc["jobs"]
    assert {"sdist", "wheels", "publish"} <= set(jobs)
    include = jobs["wheels"]["strategy"]["matrix"]["include"]
    runners = {e["os"] for e in include}
    assert any(r.startswith("ubuntu") for r in runners)
    assert any(r.startswith("windows") for r in runners)
    assert {"macos-15-intel", "macos-14"} <= runners  # Intel and Apple silicon
    assert {e["archs"] for e in include} == {"x86_64", "aarch64", "arm64", "AMD64"}
    qemu = [e for e in include if e.get("qemu")]
    assert [e["archs"] for e in qemu] == ["aarch64"]
    assert "docker/setup-qemu-action" in _uses(jobs["wheels"])
    for job in ("sdist", "wheels"):
        assert "actions/upload-artifact" in _uses(jobs[job])
    publish = jobs["publish"]
    assert set(publish["needs"]) == {"sdist", "wheels"}
    assert "refs/tags/v" in publish["if"]
    assert publish["permissions"] == {"id-token": "write"}  # trusted publishing
    assert "pypa/gh-action-pypi-publish" in _uses(publish)
    assert not any("password" in s.get("with", {}) for s in _steps(publish))
    assert "tags" in doc["on"]["push"]


def test_ci_runs_the_wheel_check():
    run = read(".ci", "run")
    assert "tools/check_wheel.sh" in run
