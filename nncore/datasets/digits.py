"""Handwritten digits: the bundled 16 x 16 set and MNIST loaders."""
from __future__ import annotations

import gzip
import os
import struct
from typing import Optional, Tuple

import numpy as np

_HERE = os.path.dirname(os.path.abspath(__file__))
Split = Tuple[np.ndarray, np.ndarray]


def load_digits16() -> Tuple[Split, Split]:
    """The course's digits: ``(x_train, y_train), (x_test, y_test)``.

    Images are uint8 0/1 of shape (n, 16, 16) (60,000 training, 10,000 test),
    labels uint8 0-9, as Keras' ``mnist.load_data()`` returns them. Derived
    from MNIST (CC BY-SA 3.0; see LICENSE.digits16 beside this file).
    """
    with np.load(os.path.join(_HERE, "digits16.npz"), allow_pickle=False) as data:
        def images(packed):
            return np.unpackbits(packed, axis=1).reshape(-1, 16, 16)
        return ((images(data["x_train"]), data["y_train"].copy()),
                (images(data["x_test"]), data["y_test"].copy()))


def _open(path):
    with open(path, "rb") as f:
        gz = f.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rb") if gz else open(path, "rb")


def read_idx(path) -> np.ndarray:
    """An array from an IDX file (MNIST's format), gzipped or not."""
    types = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    with _open(path) as f:
        head = f.read(4)
        if len(head) != 4 or head[0] != 0 or head[1] != 0 or head[2] not in types:
            raise ValueError(f"{path}: not an IDX file")
        ndim = head[3]
        dims = struct.unpack(f">{ndim}I", f.read(4 * ndim))
        dtype = np.dtype(types[head[2]])
        count = int(np.prod(dims, dtype=np.int64))
        data = f.read(count * dtype.itemsize)
        if len(data) != count * dtype.itemsize:
            raise ValueError(f"{path}: truncated ({len(data)} of {count * dtype.itemsize} bytes)")
    return np.frombuffer(data, dtype).reshape(dims).astype(dtype.newbyteorder("="))


def load_mnist(path: str, test_path: Optional[str] = None) -> Tuple[Split, Split]:
    """MNIST from files you have: ``(x_train, y_train), (x_test, y_test)``.

    ``path`` is either an ``.npz`` with x_train, y_train, x_test, y_test (as
    Keras' mnist.npz), or a folder holding the four IDX files
    (train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte,
    t10k-labels-idx1-ubyte, each optionally .gz).
    """
    path = os.fspath(path)
    if os.path.isfile(path):
        with np.load(path, allow_pickle=False) as d:
            return (d["x_train"], d["y_train"]), (d["x_test"], d["y_test"])
    if not os.path.isdir(path):
        raise FileNotFoundError(f"{path}: no such MNIST file or folder")

    def find(stem):
        for name in (stem, stem + ".gz", stem.replace("-idx", ".idx"),
                     stem.replace("-idx", ".idx") + ".gz"):
            full = os.path.join(path, name)
            if os.path.exists(full):
                return full
        raise FileNotFoundError(f"{path}: {stem}[.gz] not found")

    return ((read_idx(find("train-images-idx3-ubyte")), read_idx(find("train-labels-idx1-ubyte"))),
            (read_idx(find("t10k-images-idx3-ubyte")), read_idx(find("t10k-labels-idx1-ubyte"))))
