"""The course's small worked examples, generated on the spot (seeded)."""
from __future__ import annotations

from typing import Tuple

import numpy as np


def xor() -> Tuple[np.ndarray, np.ndarray]:
    """The four XOR points and their labels (the problem a perceptron cannot solve)."""
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], np.float32)
    return x, np.array([0, 1, 1, 0], np.float32)


def tangerines(n: int = 2000, seed: int = 0) -> Tuple[np.ndarray, np.ndarray]:
    """Tangerine diameters (cm, shape (n, 1)) and ripeness (0/1).

    Half the fruit is ripe, with diameters ~ N(7.9, 0.45); unripe ones are
    ~ N(6.9, 0.55). The classes overlap around 7.5 cm, so a hand-written
    ``size > 7.5`` rule errs at the edges; the best threshold for this data
    lies near 7.4 cm, and a one-neuron classifier finds it from the labels.
    """
    rng = np.random.default_rng(seed)
    ripe = rng.random(n) < 0.5
    d = np.where(ripe, rng.normal(7.9, 0.45, n), rng.normal(6.9, 0.55, n))
    return d.reshape(-1, 1).astype(np.float32), ripe.astype(np.float32)


def linear(n: int = 200, w: float = 2.0, b: float = 1.0, noise: float = 0.5,
           seed: int = 0) -> Tuple[np.ndarray, np.ndarray]:
    """Noisy points on y = w x + b, for linear regression by gradient descent."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-3, 3, (n, 1))
    y = w * x[:, 0] + b + rng.normal(0, noise, n)
    return x.astype(np.float32), y.astype(np.float32)
