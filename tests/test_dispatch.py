"""Kernel-level selection: NNCORE_ISA, set_isa, show_config."""
import io
import os
import subprocess
import sys

import pytest

import nncore
from nncore import _core

ALL_LEVELS = ("ref", "avx2", "avx512", "neon")


def _run(code, **env):
    full_env = dict(os.environ, **env)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=full_env, cwd=os.path.dirname(os.path.dirname(nncore.__file__)))


def test_ref_is_always_available():
    assert "ref" in _core.isa_available()
    assert set(_core.isa_available()) <= set(ALL_LEVELS)


def test_default_level_is_the_best_available():
    res = _run("import nncore._core as c; print(c.get_isa())", NNCORE_ISA="")
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == _core.isa_available()[-1]


@pytest.mark.parametrize("level", ALL_LEVELS)
def test_nncore_isa_forces_a_level_or_fails_clearly(level):
    res = _run("import nncore._core as c; print(c.get_isa())", NNCORE_ISA=level)
    if level in _core.isa_available():
        assert res.returncode == 0, res.stderr
        assert res.stdout.strip() == level
    else:
        assert res.returncode != 0
        assert "not available on this machine" in res.stderr
        assert level in res.stderr


def test_unknown_level_name_is_an_import_error():
    res = _run("import nncore", NNCORE_ISA="sse9")
    assert res.returncode != 0
    assert "ImportError" in res.stderr and "'sse9'" in res.stderr


def test_set_isa_switches_and_rejects():
    before = _core.get_isa()
    try:
        for level in _core.isa_available():
            _core.set_isa(level)
            assert _core.get_isa() == level
        with pytest.raises(ValueError, match="unknown kernel level"):
            _core.set_isa("mmx")
        for level in set(ALL_LEVELS) - set(_core.isa_available()):
            with pytest.raises(RuntimeError, match="not available"):
                _core.set_isa(level)
    finally:
        _core.set_isa(before)


def test_show_config_names_version_level_and_threads():
    buf = io.StringIO()
    nncore.show_config(file=buf)
    text = buf.getvalue()
    assert nncore.__version__ in text
    assert f"kernel level in use:     {_core.get_isa()}" in text
    assert f"threads:                 {nncore.get_num_threads()}" in text
    for level in _core.isa_available():
        assert level in text
