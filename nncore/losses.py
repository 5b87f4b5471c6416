"""Loss functions, by name as in Keras, with Keras' argument order ``(y_true, y_pred)``.

Each function returns the loss of a batch as a float (``reduction="mean"``,
the default, or ``"sum"``), or the per-sample losses as an array
(``reduction="none"``). Predictions are ``(samples, outputs)``; a 1-D array is
one output per sample. For mean squared/absolute error and binary
cross-entropy a sample's loss is the mean over its outputs; for categorical
cross-entropy it is the sum over the classes (both as in Keras).

Probabilities are clipped to ``[1e-7, 1 - 1e-7]``, so predictions of exactly 0
or 1 give finite losses. With ``from_logits=True`` the cross-entropies take
raw scores and fuse the sigmoid or softmax into the loss, which is exact and
stable for any score (log-sum-exp and ``log1p(exp(.))``).

>>> import numpy as np, nncore
>>> mse = nncore.losses.get("mse")
>>> round(mse(np.array([1.0, 2.0, 3.0]), np.zeros(3)), 2)
4.67
"""
from __future__ import annotations

from typing import Callable, Optional, Union

import numpy as np

from nncore import _core

LossFn = Callable[..., Union[float, np.ndarray]]

# Keras name -> (engine loss, takes integer labels, accepts from_logits)
_LOSSES = {
    "mean_squared_error": ("mse", False, False),
    "mean_absolute_error": ("mae", False, False),
    "binary_crossentropy": ("bce", False, True),
    "categorical_crossentropy": ("cce", False, True),
    "sparse_categorical_crossentropy": ("cce", True, True),
}
_ALIASES = {"mse": "mean_squared_error", "mae": "mean_absolute_error",
            "bce": "binary_crossentropy", "cce": "categorical_crossentropy"}


def canonical_name(loss: str) -> str:
    """The Keras name of a loss given by name or alias."""
    if not isinstance(loss, str):
        raise TypeError(f"loss must be a name, not {type(loss).__name__}")
    key = loss.lower()
    key = _ALIASES.get(key, key)
    if key not in _LOSSES:
        raise ValueError(f"unknown loss {loss!r}; choose one of "
                         f"{', '.join(sorted(_LOSSES) + sorted(_ALIASES))}")
    return key


def resolve(loss: str, from_logits: bool = False) -> tuple[int, bool]:
    """(engine loss code, whether y_true holds integer labels) for a named loss."""
    name = canonical_name(loss)
    engine, sparse, logits_ok = _LOSSES[name]
    if from_logits:
        if not logits_ok:
            raise ValueError(f"{name} has no from_logits option")
        engine += "_logits"
    return _core.LOSSES[engine], sparse


def _reduction_code(reduction: str) -> int:
    try:
        return _core.REDUCTIONS[reduction]
    except (KeyError, TypeError):
        raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}") from None


def compute(loss: str, y_true, y_pred, from_logits: bool = False, reduction: str = "mean",
            want_grad: bool = False, grad_out: Optional[np.ndarray] = None):
    """The loss (float, or per-sample array for reduction="none") and, when
    want_grad, its gradient with respect to y_pred: returns (loss, grad or None)."""
    code, sparse = resolve(loss, from_logits)
    red = _reduction_code(reduction)
    fn = _core.loss_sparse if sparse else _core.loss
    total, per_sample, grad = fn(code, red, y_true, y_pred, want_grad, red == 2, grad_out)
    return (per_sample if red == 2 else total), grad


def _named(name: str, doc: str) -> LossFn:
    def loss_fn(y_true, y_pred, from_logits: bool = False, reduction: str = "mean"):
        return compute(name, y_true, y_pred, from_logits, reduction)[0]

    loss_fn.__name__ = loss_fn.__qualname__ = name
    loss_fn.__doc__ = doc
    return loss_fn


mean_squared_error = _named(
    "mean_squared_error", "Mean of (y_pred - y_true)^2 over outputs, then over samples.")
mean_absolute_error = _named(
    "mean_absolute_error", "Mean of |y_pred - y_true| over outputs, then over samples.")
binary_crossentropy = _named(
    "binary_crossentropy",
    "-[y log p + (1 - y) log(1 - p)], mean over outputs and samples; p probabilities "
    "(clipped), or logits with from_logits=True.")
categorical_crossentropy = _named(
    "categorical_crossentropy",
    "-sum(y log p) over classes, mean over samples; y one-hot (or any distribution), p "
    "probabilities (clipped), or logits with from_logits=True (softmax fused, log-sum-exp).")
sparse_categorical_crossentropy = _named(
    "sparse_categorical_crossentropy",
    "Categorical cross-entropy with integer class labels as y_true.")
mse, mae = mean_squared_error, mean_absolute_error

_FUNCTIONS = {f.__name__: f for f in (mean_squared_error, mean_absolute_error,
                                      binary_crossentropy, categorical_crossentropy,
                                      sparse_categorical_crossentropy)}


class Loss:
    """A loss as an object, for ``compile(loss=...)``: a Keras name plus options.

    ``Loss("sparse_categorical_crossentropy", from_logits=True)``, or one of
    the named subclasses below. Calling it gives the loss of a batch.
    """

    name = None

    def __init__(self, name: Optional[str] = None, from_logits: bool = False,
                 reduction: str = "mean"):
        self.name = canonical_name(name or self.name)
        resolve(self.name, from_logits)  # rejects from_logits where it has no meaning
        _reduction_code(reduction)
        self.from_logits = bool(from_logits)
        self.reduction = reduction

    def __call__(self, y_true, y_pred):
        return compute(self.name, y_true, y_pred, self.from_logits, self.reduction)[0]

    def get_config(self) -> dict:
        return {"name": self.name, "from_logits": self.from_logits, "reduction": self.reduction}

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.name!r}, from_logits={self.from_logits}, "
                f"reduction={self.reduction!r})")


class MeanSquaredError(Loss):
    name = "mean_squared_error"

    def __init__(self, reduction: str = "mean"):
        super().__init__(reduction=reduction)


class MeanAbsoluteError(Loss):
    name = "mean_absolute_error"

    def __init__(self, reduction: str = "mean"):
        super().__init__(reduction=reduction)


class BinaryCrossentropy(Loss):
    name = "binary_crossentropy"

    def __init__(self, from_logits: bool = False, reduction: str = "mean"):
        super().__init__(from_logits=from_logits, reduction=reduction)


class CategoricalCrossentropy(BinaryCrossentropy):
    name = "categorical_crossentropy"


class SparseCategoricalCrossentropy(BinaryCrossentropy):
    name = "sparse_categorical_crossentropy"


def get_loss(identifier: Union[str, Loss, dict]) -> Loss:
    """A ``Loss`` object from a name, a saved config, or itself."""
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, dict):
        return Loss(**identifier)
    if isinstance(identifier, str):
        return Loss(identifier)
    raise TypeError(f"loss must be a name or an nncore.losses.Loss, not "
                    f"{type(identifier).__name__} (custom Python losses would run outside "
                    f"the engine)")


def get(identifier: Union[str, LossFn]) -> LossFn:
    """The loss function ``(y_true, y_pred, ...) -> float`` for a Keras name or alias;
    a callable is returned as is."""
    if callable(identifier):
        return identifier
    return _FUNCTIONS[canonical_name(identifier)]


__all__ = ["get", "get_loss", "compute", "Loss", "MeanSquaredError", "MeanAbsoluteError",
           "BinaryCrossentropy", "CategoricalCrossentropy", "SparseCategoricalCrossentropy", "mean_squared_error", "mean_absolute_error", "mse", "mae",
           "binary_crossentropy", "categorical_crossentropy", "sparse_categorical_crossentropy"]
