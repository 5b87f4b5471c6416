"""Data helpers: batching, shuffling, one-hot encoding, splits and scaling.

>>> import numpy as np
>>> from nncore import data
>>> x, y = np.arange(10.0).reshape(5, 2), np.array([0, 1, 2, 1, 0])
>>> [len(xb) for xb, yb in data.BatchLoader(x, y, batch_size=2, shuffle=True, seed=0)]
[2, 2, 1]
>>> data.one_hot(y, 3).shape
(5, 3)
"""
from __future__ import annotations

import math
from typing import Iterator, Optional, Tuple

import numpy as np

from nncore import random


class BatchLoader:
    """Batches of (x, y), re-iterable: each pass is one epoch.

    Args:
        batch_size: samples per batch. ``batch_size=len(x)`` is full-batch
            gradient descent, ``1`` is stochastic, anything between is
            mini-batch.
        shuffle: a new order every epoch, drawn from the engine's generator
            keyed by ``seed`` and the epoch number (so the same seed gives the
            same batches).
        drop_last: leave out the last, smaller batch.

    ``model.fit(loader, epochs=...)`` trains on it.
    """

    def __init__(self, x, y=None, batch_size: int = 32, shuffle: bool = False,
                 seed: Optional[int] = None, drop_last: bool = False):
        self.x = np.asarray(x)
        self.y = None if y is None else np.asarray(y)
        if self.y is not None and len(self.y) != len(self.x):
            raise ValueError(f"x has {len(self.x)} samples but y has {len(self.y)}")
        if not (isinstance(batch_size, (int, np.integer)) and batch_size > 0):
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.batch_size, self.shuffle, self.drop_last = int(batch_size), shuffle, drop_last
        self.seed = seed if seed is not None else random.next_key()[1] % (1 << 63)
        self.epoch = 0

    def __len__(self) -> int:
        n = len(self.x)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self) -> Iterator:
        n = len(self.x)
        order = (random.permutation(n, seed=self.seed, stream=self.epoch)
                 if self.shuffle else None)
        self.epoch += 1
        stop_at = (n // self.batch_size) * self.batch_size if self.drop_last else n
        for start in range(0, stop_at, self.batch_size):
            idx = slice(start, min(start + self.batch_size, n)) if order is None else \
                order[start:start + self.batch_size]
            xb = self.x[idx]
            yield xb if self.y is None else (xb, self.y[idx])


def one_hot(labels, num_classes: Optional[int] = None, dtype=np.float32) -> np.ndarray:
    """Integer labels (n,) as one-hot rows (n, num_classes)."""
    labels = np.asarray(labels)
    if labels.dtype.kind not in "iu":
        raise TypeError(f"labels must be integers, got dtype {labels.dtype}")
    labels = labels.reshape(-1)
    if num_classes is None:
        num_classes = int(labels.max()) + 1 if labels.size else 0
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"labels must lie in [0, {num_classes}); got "
                         f"[{labels.min()}, {labels.max()}]")
    out = np.zeros((labels.size, num_classes), dtype)
    out[np.arange(labels.size), labels] = 1
    return out


def train_test_split(x, y, test_size: float = 0.25, shuffle: bool = True,
                     seed: Optional[int] = None) -> Tuple[np.ndarray, ...]:
    """(x_train, x_test, y_train, y_test), as scikit-learn orders them."""
    x, y = np.asarray(x), np.asarray(y)
    if len(x) != len(y):
        raise ValueError(f"x has {len(x)} samples but y has {len(y)}")
    n_test = int(math.ceil(len(x) * test_size)) if 0 < test_size < 1 else int(test_size)
    if not 0 < n_test < len(x):
        raise ValueError(f"test_size={test_size} of {len(x)} samples leaves an empty split")
    order = random.permutation(len(x), seed=seed) if shuffle else np.arange(len(x))
    test, train = order[:n_test], order[n_test:]
    return x[train], x[test], y[train], y[test]


class StandardScaler:
    """Scale features to zero mean and unit variance (fit on training data only)."""

    def fit(self, x) -> "StandardScaler":
        x = np.asarray(x, dtype=np.float64)
        self.mean_ = x.mean(axis=0)
        scale = x.std(axis=0)
        self.scale_ = np.where(scale > 0, scale, 1.0)  # constant features stay as they are
        return self

    def transform(self, x, dtype=np.float32) -> np.ndarray:
        if not hasattr(self, "mean_"):
            raise RuntimeError("call fit before transform")
        return ((np.asarray(x, dtype=np.float64) - self.mean_) / self.scale_).astype(dtype)

    def fit_transform(self, x, dtype=np.float32) -> np.ndarray:
        return self.fit(x).transform(x, dtype)

    def inverse_transform(self, x) -> np.ndarray:
        return np.asarray(x, dtype=np.float64) * self.scale_ + self.mean_
