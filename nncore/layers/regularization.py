"""Dropout."""
from __future__ import annotations

from typing import Optional

import numpy as np

from nncore import random
from nncore.layers.base import Layer


class Dropout(Layer):
    """Zero each input with probability ``rate`` while training (inverted dropout:
    the kept inputs are scaled by 1 / (1 - rate), so inference needs no change).

    The mask comes from the engine's counter-based generator keyed by the
    layer's seed and the training step, so a seeded run (and a resumed one)
    drops exactly the same units.
    """

    uses_rng = True

    def __init__(self, rate: float, seed: Optional[int] = None, name: Optional[str] = None,
                 dtype=None, input_shape=None):
        super().__init__(name=name, dtype=dtype, input_shape=input_shape)
        if not (isinstance(rate, (int, float, np.floating)) and 0 <= rate < 1):
            raise ValueError(f"the dropout rate must be in [0, 1), got {rate!r}")
        self.rate = float(rate)
        self.seed = seed
        self._mask = None

    def forward(self, x, training=False):
        if not training or self.rate == 0:
            self._mask = None
            return x
        mask = self.buffer("mask", x.shape, x.dtype)
        random.dropout_mask(x.shape, self.rate, x.dtype, seed=self.seed,
                            stream=None if self.seed is None else self.step, out=mask)
        self.step += 1
        self._mask = mask
        return np.multiply(x, mask, out=self.buffer("y", x.shape, x.dtype))

    def backward(self, dy):
        if self._mask is None:
            return dy
        return np.multiply(dy, self._mask, out=self.buffer("dx", dy.shape, dy.dtype))

    def get_config(self):
        config = dict(super().get_config(), rate=self.rate)
        if self.seed is not None:
            config["seed"] = self.seed
        return config
