"""The package imports and its engine answers."""
import numpy as np

import nncore
from nncore import _core


def test_version_agrees_with_engine():
    assert nncore.__version__ == _core.engine_version()


def test_matmul_small():
    a = np.arange(6, dtype=np.float64).reshape(2, 3)
    b = np.arange(12, dtype=np.float64).reshape(3, 4)
    np.testing.assert_allclose(nncore.ops.matmul(a, b), a @ b)
