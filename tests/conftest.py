"""Shared fixtures and float64 NumPy references for the nncore test suite.

Every kernel test takes the ``isa`` fixture, so it runs once per kernel level
this machine offers (ref, and avx2 / avx512 / neon where available): each fast
level is held to the same float64 reference as the portable one.

The references here are written independently of the engine, in float64,
straight from the textbook definitions (made overflow-safe with NumPy's own
stable primitives, logaddexp and the like), so that they are an oracle and
not a copy of the C code.
"""
from __future__ import annotations

import numpy as np
import pytest

from nncore import _core

# --------------------------------------------------------------------------
# Kernel levels
# --------------------------------------------------------------------------


@pytest.fixture(params=_core.isa_available())
def isa(request):
    """Runs the test at one kernel level, then restores the level in force before."""
    previous = _core.get_isa()
    _core.set_isa(request.param)
    try:
        yield request.param
    finally:
        _core.set_isa(previous)


DTYPES = (np.float32, np.float64)


@pytest.fixture(params=DTYPES, ids=["f32", "f64"])
def dtype(request):
    return request.param


def eps(dtype) -> float:
    return float(np.finfo(dtype).eps)


def rtol_for(dtype) -> float:
    """Tolerance of an element-wise transcendental result against float64:
    a few ulps of the working precision."""
    return 4 * eps(dtype) if dtype == np.float32 else 1e-13


# --------------------------------------------------------------------------
# Activation references (float64, from x)
# --------------------------------------------------------------------------

PARAM_DEFAULT = {"leaky_relu": 0.2, "elu": 1.0}
ACTIVATIONS = ("linear", "step", "sigmoid", "tanh", "relu", "leaky_relu", "elu",
               "softplus", "softmax", "log_softmax")


def ref_act(name: str, x, param=None) -> np.ndarray:
    """f(x) in float64. NaN propagates everywhere (including step)."""
    x = np.asarray(x, dtype=np.float64)
    p = PARAM_DEFAULT.get(name, 0.0) if param is None else float(param)
    if x.size == 0:
        return x.copy()
    with np.errstate(all="ignore"):
        if name == "linear":
            return x.copy()
        if name == "step":
            return np.where(np.isnan(x), np.nan, (x > 0).astype(np.float64))
        if name == "sigmoid":
            # 1 / (1 + e^-x) = exp(-logaddexp(0, -x)): never overflows
            return np.exp(-np.logaddexp(0.0, -x))
        if name == "tanh":
            return np.tanh(x)
        if name == "relu":
            return np.where(np.isnan(x), np.nan, np.maximum(x, 0.0))
        if name == "leaky_relu":
            return np.where(x >= 0, x, p * x)
        if name == "elu":
            return np.where(x > 0, x, p * np.expm1(np.minimum(x, 0.0)))
        if name == "softplus":
            return np.logaddexp(0.0, x)
        if name in ("softmax", "log_softmax"):
            # (x - m) - log(sum e^(x - m)): no cancellation against a large max
            m = np.max(x, axis=-1, keepdims=True)
            e = np.exp(x - m)
            s = np.sum(e, axis=-1, keepdims=True)
            return (x - m) - np.log(s) if name == "log_softmax" else e / s
    raise KeyError(name)


def ref_act_grad(name: str, x, dy, param=None) -> np.ndarray:
    """dy * f'(x) in float64 (vector-Jacobian product for the softmaxes)."""
    x = np.asarray(x, dtype=np.float64)
    dy = np.asarray(dy, dtype=np.float64)
    p = PARAM_DEFAULT.get(name, 0.0) if param is None else float(param)
    if name == "linear":
        return dy.copy()
    if name == "step":
        return np.zeros_like(dy)
    if name == "sigmoid":
        s = ref_act("sigmoid", x)
        return dy * s * (1 - s)
    if name == "tanh":
        return dy * (1 - np.tanh(x) ** 2)
    if name == "relu":
        return np.where(x > 0, dy, 0.0)
    if name == "leaky_relu":
        return np.where(x > 0, dy, p * dy)
    if name == "elu":
        return np.where(x > 0, dy, dy * p * np.exp(np.minimum(x, 0.0)))
    if name == "softplus":
        return dy * ref_act("sigmoid", x)
    if name == "softmax":
        s = ref_act("softmax", x)
        return s * (dy - np.sum(dy * s, axis=-1, keepdims=True))
    if name == "log_softmax":
        s = ref_act("softmax", x)
        return dy - s * np.sum(dy, axis=-1, keepdims=True)
    raise KeyError(name)


# --------------------------------------------------------------------------
# Loss references (float64)
# --------------------------------------------------------------------------

PROB_EPS = 1e-7


def ref_per_sample(loss: str, t, p, from_logits: bool = False) -> np.ndarray:
    """Each sample's loss in float64. p is (n, k) or (n,); t likewise (or, for
    "sparse", integer labels (n,)). MSE / MAE / BCE: mean over outputs;
    CCE: sum over classes (Keras)."""
    p = np.asarray(p, dtype=np.float64)
    if p.ndim == 1 and loss != "sparse":
        p = p[:, None]
    if loss == "sparse":
        # the loss of integer labels reads only the labelled entry of each row
        labels = np.asarray(t).astype(np.int64).reshape(p.shape[:-1])
        if from_logits:
            return -np.take_along_axis(ref_act("log_softmax", p), labels[..., None], -1)[..., 0]
        picked = np.take_along_axis(p, labels[..., None], -1)[..., 0]
        return -np.log(np.clip(picked, PROB_EPS, 1 - PROB_EPS))
    t = np.asarray(t, dtype=np.float64).reshape(p.shape)
    if loss == "mse":
        return np.mean((p - t) ** 2, axis=-1)
    if loss == "mae":
        return np.mean(np.abs(p - t), axis=-1)
    if loss == "bce":
        if from_logits:
            # -[t log s(z) + (1-t) log(1 - s(z))] = t softplus(-z) + (1-t) softplus(z)
            return np.mean(t * np.logaddexp(0, -p) + (1 - t) * np.logaddexp(0, p), axis=-1)
        pc = np.clip(p, PROB_EPS, 1 - PROB_EPS)
        return np.mean(-(t * np.log(pc) + (1 - t) * np.log(1 - pc)), axis=-1)
    if loss == "cce":
        if from_logits:
            return -np.sum(t * ref_act("log_softmax", p), axis=-1)
        pc = np.clip(p, PROB_EPS, 1 - PROB_EPS)
        return -np.sum(t * np.log(pc), axis=-1)
    raise KeyError(loss)


def ref_loss(loss: str, t, p, from_logits=False, reduction="mean"):
    ps = ref_per_sample(loss, t, p, from_logits)
    if reduction == "mean":
        return float(np.mean(ps))
    if reduction == "sum":
        return float(np.sum(ps))
    return ps


# --------------------------------------------------------------------------
# Central finite differences (float64)
# --------------------------------------------------------------------------


def fd_grad(f, x: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """d f / d x by central differences, f a scalar function of a float64 array."""
    x = np.array(x, dtype=np.float64)
    g = np.empty_like(x)
    flat, gflat = x.reshape(-1), g.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + h
        fp = f(x)
        flat[i] = old - h
        fm = f(x)
        flat[i] = old
        gflat[i] = (fp - fm) / (2 * h)
    return g


def fd_elementwise(f, x: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """f'(x) of an element-wise f (diagonal Jacobian): all elements at once."""
    x = np.asarray(x, dtype=np.float64)
    return (f(x + h) - f(x - h)) / (2 * h)


def gemm_bound(a_abs_b_abs: np.ndarray, k: int, dtype) -> np.ndarray:
    """The classical error bound of a k-term dot product in `dtype`,
    |fl(a.b) - a.b| <= k u |a|.|b|, with a factor 2 of slack (and inputs
    rounded to dtype already counted by computing the reference from them)."""
    return 2 * max(k, 1) * eps(dtype) * a_abs_b_abs + np.finfo(dtype).tiny


# ---- training cases shared by the engine-epoch tests ----

# each loss with its output activation and metrics, over 3 classes
LOSS_CASES = {
    "sparse-cce": ("softmax", "sparse_categorical_crossentropy", ["accuracy"]),
    "onehot-cce": ("softmax", "categorical_crossentropy", ["accuracy"]),
    "sigmoid-bce": ("sigmoid", "binary_crossentropy", ["accuracy"]),
    "mse": (None, "mse", []),
}


def loss_targets(case: str, labels, dtype):
    """The targets LOSS_CASES[case]'s loss takes for labels in 0..2."""
    loss = LOSS_CASES[case][1]
    if loss == "sparse_categorical_crossentropy":
        return labels
    if loss == "categorical_crossentropy":
        return np.eye(3, dtype=dtype)[labels]
    return (labels == 1).astype(dtype)[:, None]
