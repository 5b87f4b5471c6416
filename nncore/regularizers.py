"""Weight penalties, as in Keras: ``Dense(..., kernel_regularizer=L2(0.01))``.

A regularizer adds ``penalty(w)`` to the loss and its gradient to the
weight's gradient. L1: ``l1 * sum|w|``; L2: ``l2 * sum(w^2)`` (Keras' scaling,
so its gradient is ``2 * l2 * w``).
"""
from __future__ import annotations

from typing import Union

import numpy as np

from nncore import _core
from nncore._configurable import Configurable


class Regularizer(Configurable):
    """Base class: ``__call__(w)`` is the penalty, ``add_gradient(w, g)`` adds its gradient."""

    def __call__(self, w: np.ndarray) -> float:
        raise NotImplementedError

    def add_gradient(self, w: np.ndarray, g: np.ndarray) -> None:
        raise NotImplementedError

    def apply(self, w: np.ndarray, g: np.ndarray) -> float:
        """The penalty, with its gradient added to g."""
        self.add_gradient(w, g)
        return self(w)



class L1L2(Regularizer):
    """``l1 * sum|w| + l2 * sum(w^2)``."""

    def __init__(self, l1: float = 0.0, l2: float = 0.0):
        for name, v in (("l1", l1), ("l2", l2)):
            if not (np.isfinite(v) and v >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {v!r}")
        self.l1, self.l2 = float(l1), float(l2)

    def __call__(self, w: np.ndarray) -> float:
        return _core.penalty(w, None, self.l1, self.l2)

    def add_gradient(self, w: np.ndarray, g: np.ndarray) -> None:
        _core.penalty(w, g, self.l1, self.l2)

    def apply(self, w: np.ndarray, g: np.ndarray) -> float:
        """The penalty, with its gradient added to g: one engine pass."""
        return _core.penalty(w, g, self.l1, self.l2)

    def get_config(self) -> dict:
        return {"l1": self.l1, "l2": self.l2}


class L1(L1L2):
    """``l1 * sum|w|`` (Keras' default l1 = 0.01)."""

    def __init__(self, l1: float = 0.01):
        super().__init__(l1=l1)

    def get_config(self) -> dict:
        return {"l1": self.l1}


class L2(L1L2):
    """``l2 * sum(w^2)`` (Keras' default l2 = 0.01)."""

    def __init__(self, l2: float = 0.01):
        super().__init__(l2=l2)

    def get_config(self) -> dict:
        return {"l2": self.l2}


_BY_NAME = {"l1": L1, "l2": L2, "l1_l2": L1L2, "l1l2": L1L2}


def get(identifier: Union[str, dict, Regularizer, None]):
    """A regularizer from a name ("l1", "l2", "l1_l2"), a saved config, or itself."""
    if identifier is None or isinstance(identifier, Regularizer):
        return identifier
    if isinstance(identifier, dict):
        cls = {"L1": L1, "L2": L2, "L1L2": L1L2}[identifier["class_name"]]
        return cls(**identifier.get("config", {}))
    if isinstance(identifier, str) and identifier.lower() in _BY_NAME:
        return _BY_NAME[identifier.lower()]()
    raise ValueError(f"unknown regularizer {identifier!r}; use 'l1', 'l2', 'l1_l2' or an object")


def serialize(reg: Regularizer) -> dict:
    return {"class_name": type(reg).__name__, "config": reg.get_config()}
