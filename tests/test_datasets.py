"""Bundled digits16, MNIST loaders (IDX plain and gzipped, npz), course generators."""
import gzip
import os
import struct

import numpy as np
import pytest

from nncore import datasets

SHARED_MNIST = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "mnist.npz")


def test_digits16_shapes_dtypes_values():
    (xtr, ytr), (xte, yte) = datasets.load_digits16()
    assert xtr.shape == (60000, 16, 16) and xte.shape == (10000, 16, 16)
    assert xtr.dtype == ytr.dtype == np.uint8
    assert set(np.unique(xtr)) == {0, 1} and set(np.unique(ytr)) == set(range(10))
    assert 0.1 < xtr.mean() < 0.5  # strokes, not noise or blanks
    assert os.path.exists(os.path.join(os.path.dirname(datasets.__file__), "LICENSE.digits16"))


def _write_idx(path, arr, gz):
    head = struct.pack(">BBBB", 0, 0, 0x08, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
    opener = gzip.open if gz else open
    with opener(path, "wb") as f:
        f.write(head + arr.astype(np.uint8).tobytes())


@pytest.mark.parametrize("gz", [False, True])
def test_load_mnist_from_idx_files(tmp_path, gz):
    rng = np.random.default_rng(0)
    parts = {"train-images-idx3-ubyte": rng.integers(0, 256, (5, 28, 28)),
             "train-labels-idx1-ubyte": rng.integers(0, 10, 5),
             "t10k-images-idx3-ubyte": rng.integers(0, 256, (3, 28, 28)),
             "t10k-labels-idx1-ubyte": rng.integers(0, 10, 3)}
    for name, arr in parts.items():
        _write_idx(tmp_path / (name + (".gz" if gz else "")), arr, gz)
    (xtr, ytr), (xte, yte) = datasets.load_mnist(tmp_path)
    np.testing.assert_array_equal(xtr, parts["train-images-idx3-ubyte"])
    np.testing.assert_array_equal(yte, parts["t10k-labels-idx1-ubyte"])


def test_idx_errors(tmp_path):
    bad = tmp_path / "bad"
    bad.write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x09abc")
    with pytest.raises(ValueError, match="truncated"):
        datasets.read_idx(bad)
    bad.write_bytes(b"PK\x03\x04")
    with pytest.raises(ValueError, match="not an IDX"):
        datasets.read_idx(bad)
    with pytest.raises(FileNotFoundError):
        datasets.load_mnist(tmp_path / "nowhere")


def test_load_mnist_from_npz(tmp_path):
    arrays = {k: np.arange(4, dtype=np.uint8) for k in ("x_train", "y_train", "x_test", "y_test")}
    np.savez(tmp_path / "m.npz", **arrays)
    (xtr, _), (_, yte) = datasets.load_mnist(tmp_path / "m.npz")
    np.testing.assert_array_equal(xtr, arrays["x_train"])


@pytest.mark.skipif(not os.path.exists(SHARED_MNIST), reason="shared/data/mnist.npz absent")
def test_real_mnist():
    (xtr, ytr), (xte, yte) = datasets.load_mnist(SHARED_MNIST)
    assert xtr.shape == (60000, 28, 28) and yte.shape == (10000,)


def test_course_generators():
    x, y = datasets.xor()
    assert x.shape == (4, 2) and list(y) == [0, 1, 1, 0]
    d, ripe = datasets.tangerines(seed=1)
    assert d.shape == (2000, 1) and set(np.unique(ripe)) == {0, 1}
    # the classes overlap around 7.5 cm: both occur on each side of it
    near = (d[:, 0] > 7.0) & (d[:, 0] < 8.0)
    assert 0.2 < ripe[near].mean() < 0.8
    np.testing.assert_array_equal(datasets.tangerines(seed=1)[0], d)
    x, y = datasets.linear(seed=0)
    w, b = np.polyfit(x[:, 0], y, 1)
    assert abs(w - 2) < 0.1 and abs(b - 1) < 0.15
