"""The functional API: nncore's kernels on NumPy arrays, for embedding.

Every function takes float32 or float64 arrays (both arguments in one dtype)
and returns arrays of that dtype. Input that is not C-contiguous is copied
first; an ``out=`` array must already have the result's shape and dtype and be
C-contiguous, and is returned. The work runs in the C engine with the GIL
released.

Shapes, with m samples, k inputs and n outputs:

====================  ===========================================================
``matmul``            ``op(a) (m, k) @ op(b) (k, n) -> (m, n)``
``dense_forward``     ``x (m, k), w (k, n), b (n,) -> f(x @ w + b) (m, n)``
``dense_backward``    ``x (m, k), w (k, n), dz (m, n) -> dx (m, k), dw (k, n), db (n,)``
``activation_*``      any shape; the softmaxes along the last axis
``loss``              ``y_true, y_pred (m, n)`` (or ``(m,)``) ``-> float``
====================  ===========================================================

A dense layer's backward pass is two calls: first ``activation_backward`` turns
dL/dy into dz = dL/d(x @ w + b), then ``dense_backward`` gives the three
gradients.

>>> import numpy as np
>>> from nncore import ops
>>> x = np.ones((4, 3), np.float32); w = np.ones((3, 2), np.float32)
>>> y = ops.dense_forward(x, w, np.zeros(2, np.float32), activation="relu")
>>> y.shape
(4, 2)
"""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

from nncore import _core, activations, losses

__all__ = ["matmul", "dense_forward", "dense_backward", "activation_forward",
           "activation_backward", "loss", "loss_and_grad", "categorical_accuracy",
           "sparse_categorical_accuracy", "binary_accuracy"]


# The boundary's own function, with no Python frame in between (a tenth of a
# small product's time): checks the common case (2-D, C-contiguous, one
# float dtype) in C and hands anything else to the general path.
matmul = _core.matmul


def dense_forward(x, w, b=None, activation: Optional[str] = None, alpha: Optional[float] = None,
                  out: Optional[np.ndarray] = None) -> np.ndarray:
    """A dense layer's output f(x @ w + b), bias and activation fused into one pass.

    x is (m, k), w is (k, n) (Keras' kernel layout), b is (n,) or None.
    ``activation`` is a name from :mod:`nncore.activations` (None: linear);
    ``alpha`` is the negative slope of leaky_relu or the alpha of elu.
    """
    code, param = activations.resolve(activation, alpha)
    return _core.dense_forward(x, w, b, code, param, out)


def dense_backward(x, w, dz, *, need_dx: bool = True, need_dw: bool = True,
                   need_db: bool = True, dx: Optional[np.ndarray] = None,
                   dw: Optional[np.ndarray] = None, db: Optional[np.ndarray] = None,
                   beta: float = 0.0
                   ) -> Tuple[Optional[np.ndarray], Optional[np.ndarray], Optional[np.ndarray]]:
    """A dense layer's gradients from dz = dL/d(x @ w + b), shape (m, n).

    Returns ``(dx, dw, db)``: dx = dz @ w.T (m, k), dw = x.T @ dz (k, n) and
    db = dz summed over samples (n,), each None where its ``need_`` flag is
    False. With ``beta`` != 0 the weight gradients accumulate,
    ``dw = x.T @ dz + beta * dw`` (likewise db), so that gradients can be
    summed over micro-batches; dw and db must then be given.
    """
    return _core.dense_backward(x, w, dz, need_dx, need_dw, need_db, dx, dw, db, beta)


def activation_forward(x, activation: Optional[str], alpha: Optional[float] = None,
                       out: Optional[np.ndarray] = None) -> np.ndarray:
    """y = f(x) for a named activation; ``out`` may be ``x`` (in place)."""
    code, param = activations.resolve(activation, alpha)
    return _core.act_forward(code, param, x, out)


def activation_backward(y, dy, activation: Optional[str], alpha: Optional[float] = None,
                        out: Optional[np.ndarray] = None) -> np.ndarray:
    """dx = dy * f'(x), computed from the forward OUTPUT y = f(x).

    Every activation here has a derivative that its output determines, so a
    layer keeps only y. ``out`` may be ``dy`` or ``y`` (in place).
    """
    code, param = activations.resolve(activation, alpha)
    return _core.act_backward(code, param, y, dy, out)


def loss(y_true, y_pred, loss: str = "mse", from_logits: bool = False,
         reduction: str = "mean"):
    """The named loss (see :mod:`nncore.losses`) of a batch.

    Returns a float, or the per-sample losses for ``reduction="none"``.
    """
    return losses.compute(loss, y_true, y_pred, from_logits, reduction)[0]


def loss_and_grad(y_true, y_pred, loss: str = "mse", from_logits: bool = False,
                  reduction: str = "mean", out: Optional[np.ndarray] = None):
    """``(loss, grad)``: the loss as :func:`loss` gives it and its gradient with
    respect to ``y_pred`` (same shape as y_pred; ``out`` may be y_pred).

    With ``from_logits=True`` the gradient is with respect to the logits: for
    softmax cross-entropy it is ``softmax(z) - y`` (over the batch size for
    the mean), the fused form that never forms 1/p.
    """
    return losses.compute(loss, y_true, y_pred, from_logits, reduction, True, out)


def categorical_accuracy(y_true, y_pred) -> float:
    """Fraction of samples whose argmax of y_pred matches the argmax of one-hot y_true."""
    return _core.accuracy_argmax(y_true, y_pred)


def sparse_categorical_accuracy(y_true, y_pred) -> float:
    """Fraction of samples whose argmax of y_pred equals the integer label y_true."""
    return _core.accuracy_sparse(y_true, y_pred)


def binary_accuracy(y_true, y_pred, threshold: float = 0.5) -> float:
    """Fraction of outputs where ``y_pred > threshold`` agrees with ``y_true > 0.5``."""
    return _core.accuracy_threshold(y_true, y_pred, threshold)
