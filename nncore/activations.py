"""Activation functions, by name as in Keras.

Each function takes a NumPy array (float32 or float64, any shape) and returns
a new array of the same shape and dtype, or writes into ``out=`` (which may be
``x`` itself). The softmaxes work along the last axis.

>>> import numpy as np, nncore
>>> nncore.activations.get("sigmoid")(np.array([1.0, 2.0])).round(3)
array([0.731, 0.881])
"""
from __future__ import annotations

from typing import Callable, Optional, Union

import numpy as np

from nncore import _core

ArrayFn = Callable[..., np.ndarray]

# name -> (engine code, default parameter); the parameter is the negative
# slope of leaky_relu and the alpha of elu, unused by the others.
_ACTIVATIONS = {
    "linear": (_core.ACTIVATIONS["identity"], 0.0),
    "step": (_core.ACTIVATIONS["step"], 0.0),
    "sigmoid": (_core.ACTIVATIONS["sigmoid"], 0.0),
    "tanh": (_core.ACTIVATIONS["tanh"], 0.0),
    "relu": (_core.ACTIVATIONS["relu"], 0.0),
    "leaky_relu": (_core.ACTIVATIONS["leaky_relu"], 0.2),
    "elu": (_core.ACTIVATIONS["elu"], 1.0),
    "softplus": (_core.ACTIVATIONS["softplus"], 0.0),
    "softmax": (_core.ACTIVATIONS["softmax"], 0.0),
    "log_softmax": (_core.ACTIVATIONS["log_softmax"], 0.0),
}
_ALIASES = {"identity": "linear", "heaviside": "step", "leakyrelu": "leaky_relu",
            "logsoftmax": "log_softmax"}


def canonical_name(activation: Optional[str]) -> str:
    """The canonical name of an activation given by name (None means linear)."""
    if activation is None:
        return "linear"
    if not isinstance(activation, str):
        raise TypeError(f"activation must be a name, not {type(activation).__name__}")
    key = activation.lower()
    key = _ALIASES.get(key, key)
    if key not in _ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; "
                         f"choose one of {', '.join(sorted(_ACTIVATIONS))}")
    return key


def resolve(activation: Optional[str], alpha: Optional[float] = None) -> tuple[int, float]:
    """(engine code, parameter) for an activation name and optional parameter."""
    code, default = _ACTIVATIONS[canonical_name(activation)]
    return code, float(default if alpha is None else alpha)


def _apply(name: str, x, alpha: Optional[float], out) -> np.ndarray:
    code, param = resolve(name, alpha)
    return _core.act_forward(code, param, x, out)


def linear(x, out=None) -> np.ndarray:
    """The identity, f(x) = x (Keras' "linear")."""
    return _apply("linear", x, None, out)


def step(x, out=None) -> np.ndarray:
    """Heaviside step: 1 where x > 0, else 0 (the perceptron's activation)."""
    return _apply("step", x, None, out)


def sigmoid(x, out=None) -> np.ndarray:
    """Logistic sigmoid, 1 / (1 + exp(-x)), computed without overflow."""
    return _apply("sigmoid", x, None, out)


def tanh(x, out=None) -> np.ndarray:
    """Hyperbolic tangent."""
    return _apply("tanh", x, None, out)


def relu(x, out=None) -> np.ndarray:
    """Rectified linear unit, max(x, 0)."""
    return _apply("relu", x, None, out)


def leaky_relu(x, negative_slope: float = 0.2, out=None) -> np.ndarray:
    """x where x >= 0, negative_slope * x below (negative_slope >= 0)."""
    return _apply("leaky_relu", x, negative_slope, out)


def elu(x, alpha: float = 1.0, out=None) -> np.ndarray:
    """Exponential linear unit: x where x > 0, alpha * (exp(x) - 1) below (alpha >= 0)."""
    return _apply("elu", x, alpha, out)


def softplus(x, out=None) -> np.ndarray:
    """log(1 + exp(x)), computed without overflow."""
    return _apply("softplus", x, None, out)


def softmax(x, out=None) -> np.ndarray:
    """exp(x) / sum(exp(x)) along the last axis (max-subtracted, so stable)."""
    return _apply("softmax", x, None, out)


def log_softmax(x, out=None) -> np.ndarray:
    """log(softmax(x)) along the last axis, computed as x - logsumexp(x)."""
    return _apply("log_softmax", x, None, out)


_FUNCTIONS = {"linear": linear, "step": step, "sigmoid": sigmoid, "tanh": tanh, "relu": relu,
              "leaky_relu": leaky_relu, "elu": elu, "softplus": softplus, "softmax": softmax,
              "log_softmax": log_softmax}


def get(identifier: Union[str, ArrayFn, None]) -> ArrayFn:
    """The activation function for a name (or None, meaning linear); a callable is returned as is."""
    if callable(identifier):
        return identifier
    return _FUNCTIONS[canonical_name(identifier)]


__all__ = ["get", "linear", "step", "sigmoid", "tanh", "relu", "leaky_relu", "elu",
           "softplus", "softmax", "log_softmax"]
