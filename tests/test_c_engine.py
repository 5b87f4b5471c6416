"""The C engine's own tests (tests/c/), built and run with the system C compiler."""
import os
import shutil
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
RUN = os.path.join(HERE, "c", "run.sh")
CSRC = os.path.join(os.path.dirname(HERE), "csrc")


@pytest.mark.skipif(sys.platform.startswith("win"), reason="run.sh is a POSIX shell script")
def test_c_engine_tests_pass():
    if not os.path.isdir(CSRC):
        pytest.skip("the engine's sources are not here (tests run against an installed wheel)")
    cc = os.environ.get("CC", "gcc")
    if shutil.which(cc) is None:
        pytest.skip(f"no C compiler ({cc}) on PATH")
    proc = subprocess.run(["sh", RUN], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert "== test_gemm.c" in proc.stdout
