"""Weight initializers, Keras' names and rules, drawn from the engine's Philox.

An initializer is a callable ``init(shape, dtype="float32") -> ndarray``.
As in Keras, an initializer built with ``seed=`` returns the same values
every call; without a seed each call draws fresh values from the global seed
(:func:`nncore.set_seed`) and the next automatic stream.

Fans follow Keras' ``compute_fans``: a dense kernel ``(in, out)`` has
fan_in = in, fan_out = out; a convolution kernel ``(kh, kw, in, out)`` (any
number of leading spatial axes) has fan_in = in * kh * kw and fan_out =
out * kh * kw; a 1-D shape has fan_in = fan_out = its length; a scalar 1.

The ``*_normal`` variance-scaling initializers draw, as Keras does, from a
normal truncated at two standard deviations, its stddev divided by
0.87962566103423978 so the values have the intended variance.
"""
import math

import numpy as np

from nncore._configurable import Configurable

from nncore import random as _random

__all__ = ["Initializer", "Zeros", "Ones", "Constant", "RandomNormal", "RandomUniform",
           "TruncatedNormal", "VarianceScaling", "GlorotUniform", "GlorotNormal",
           "HeUniform", "HeNormal", "LecunUniform", "LecunNormal", "get", "serialize",
           "compute_fans", "zeros", "ones", "constant", "random_normal", "random_uniform",
           "truncated_normal", "glorot_uniform", "glorot_normal", "he_uniform", "he_normal",
           "lecun_uniform", "lecun_normal"]

# stddev of a standard normal truncated to [-2, 2] (scipy.stats.truncnorm.std(-2, 2))
_TRUNC_STD = 0.87962566103423978


def compute_fans(shape):
    """(fan_in, fan_out) of a weight shape, as Keras computes them."""
    shape = tuple(int(s) for s in shape)
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive = math.prod(shape[:-2])
    return shape[-2] * receptive, shape[-1] * receptive


def _dtype(dtype):
    dt = np.dtype("float32" if dtype is None else dtype)
    if dt not in (np.float32, np.float64):
        raise TypeError(f"dtype {dt}: nncore initializes float32 or float64")
    return dt


def _shape(shape):
    if isinstance(shape, (int, np.integer)):
        shape = (int(shape),)
    shape = tuple(int(s) for s in shape)
    if any(s < 0 for s in shape):
        raise ValueError(f"shape {shape} has a negative size")
    return shape


class Initializer(Configurable):
    """Base: ``__call__(shape, dtype)``, and a JSON-able ``get_config``."""

    def __call__(self, shape, dtype="float32"):
        raise NotImplementedError



class Zeros(Initializer):
    """All zeros."""

    def __call__(self, shape, dtype="float32"):
        return np.zeros(_shape(shape), dtype=_dtype(dtype))


class Ones(Initializer):
    """All ones."""

    def __call__(self, shape, dtype="float32"):
        return np.ones(_shape(shape), dtype=_dtype(dtype))


class Constant(Initializer):
    """Every element ``value``."""

    def __init__(self, value=0.0):
        self.value = float(value)

    def __call__(self, shape, dtype="float32"):
        return np.full(_shape(shape), self.value, dtype=_dtype(dtype))

    def get_config(self):
        return {"value": self.value}


class _Seeded(Initializer):
    def __init__(self, seed=None):
        if seed is not None:
            seed = _random._check_seed(seed)
        self.seed = seed

    def get_config(self):
        return {"seed": self.seed}


class RandomNormal(_Seeded):
    """Normal(mean, stddev) (Keras' defaults: 0, 0.05)."""

    def __init__(self, mean=0.0, stddev=0.05, seed=None):
        super().__init__(seed)
        self.mean, self.stddev = float(mean), float(stddev)

    def __call__(self, shape, dtype="float32"):
        return _random.normal(_shape(shape), self.mean, self.stddev, _dtype(dtype), self.seed)

    def get_config(self):
        return {"mean": self.mean, "stddev": self.stddev, "seed": self.seed}


class TruncatedNormal(RandomNormal):
    """Normal(mean, stddev) truncated to two stddev around the mean."""

    def __call__(self, shape, dtype="float32"):
        return _random.truncated_normal(_shape(shape), self.mean, self.stddev, _dtype(dtype),
                                        self.seed)


class RandomUniform(_Seeded):
    """Uniform in [minval, maxval) (Keras' defaults: -0.05, 0.05)."""

    def __init__(self, minval=-0.05, maxval=0.05, seed=None):
        super().__init__(seed)
        self.minval, self.maxval = float(minval), float(maxval)

    def __call__(self, shape, dtype="float32"):
        return _random.uniform(_shape(shape), self.minval, self.maxval, _dtype(dtype),
                               self.seed)

    def get_config(self):
        return {"minval": self.minval, "maxval": self.maxval, "seed": self.seed}


class VarianceScaling(_Seeded):
    """Values of variance ``scale / fan`` (Keras' VarianceScaling).

    mode: "fan_in", "fan_out" or "fan_avg" ((fan_in + fan_out) / 2);
    distribution: "truncated_normal", "untruncated_normal" or "uniform"
    (uniform in [-limit, limit), limit = sqrt(3 scale / fan)).
    """

    _MODES = ("fan_in", "fan_out", "fan_avg")
    _DISTS = ("truncated_normal", "untruncated_normal", "uniform")

    def __init__(self, scale=1.0, mode="fan_in", distribution="truncated_normal", seed=None):
        super().__init__(seed)
        if not (isinstance(scale, (int, float)) and math.isfinite(scale) and scale > 0):
            raise ValueError(f"scale must be a positive number, got {scale!r}")
        if mode not in self._MODES:
            raise ValueError(f"mode must be one of {self._MODES}, got {mode!r}")
        if distribution == "normal":
            distribution = "truncated_normal"  # Keras' alias
        if distribution not in self._DISTS:
            raise ValueError(f"distribution must be one of {self._DISTS}, got {distribution!r}")
        self.scale, self.mode, self.distribution = float(scale), mode, distribution

    def __call__(self, shape, dtype="float32"):
        shape, dt = _shape(shape), _dtype(dtype)
        fan_in, fan_out = compute_fans(shape)
        fan = {"fan_in": fan_in, "fan_out": fan_out,
               "fan_avg": (fan_in + fan_out) / 2.0}[self.mode]
        scale = self.scale / max(1.0, fan)
        if self.distribution == "truncated_normal":
            return _random.truncated_normal(shape, 0.0, math.sqrt(scale) / _TRUNC_STD, dt,
                                            self.seed)
        if self.distribution == "untruncated_normal":
            return _random.normal(shape, 0.0, math.sqrt(scale), dt, self.seed)
        limit = math.sqrt(3.0 * scale)
        return _random.uniform(shape, -limit, limit, dt, self.seed)

    def get_config(self):
        return {"scale": self.scale, "mode": self.mode, "distribution": self.distribution,
                "seed": self.seed}


class _Preset(VarianceScaling):
    _ARGS = (1.0, "fan_in", "uniform")

    def __init__(self, seed=None):
        super().__init__(*self._ARGS, seed=seed)

    def get_config(self):
        return {"seed": self.seed}


class GlorotUniform(_Preset):
    """Uniform in +-sqrt(6 / (fan_in + fan_out)) (Keras' default kernel initializer)."""
    _ARGS = (1.0, "fan_avg", "uniform")


class GlorotNormal(_Preset):
    """Truncated normal of variance 2 / (fan_in + fan_out)."""
    _ARGS = (1.0, "fan_avg", "truncated_normal")


class HeUniform(_Preset):
    """Uniform in +-sqrt(6 / fan_in)."""
    _ARGS = (2.0, "fan_in", "uniform")


class HeNormal(_Preset):
    """Truncated normal of variance 2 / fan_in."""
    _ARGS = (2.0, "fan_in", "truncated_normal")


class LecunUniform(_Preset):
    """Uniform in +-sqrt(3 / fan_in)."""
    _ARGS = (1.0, "fan_in", "uniform")


class LecunNormal(_Preset):
    """Truncated normal of variance 1 / fan_in."""
    _ARGS = (1.0, "fan_in", "truncated_normal")


# Keras' snake-case aliases (the classes themselves)
zeros, ones, constant = Zeros, Ones, Constant
random_normal, random_uniform, truncated_normal = RandomNormal, RandomUniform, TruncatedNormal
glorot_uniform, glorot_normal = GlorotUniform, GlorotNormal
he_uniform, he_normal = HeUniform, HeNormal
lecun_uniform, lecun_normal = LecunUniform, LecunNormal

_BY_NAME = {
    "zeros": Zeros, "ones": Ones, "constant": Constant, "random_normal": RandomNormal,
    "random_uniform": RandomUniform, "truncated_normal": TruncatedNormal,
    "variance_scaling": VarianceScaling, "glorot_uniform": GlorotUniform,
    "glorot_normal": GlorotNormal, "he_uniform": HeUniform, "he_normal": HeNormal,
    "lecun_uniform": LecunUniform, "lecun_normal": LecunNormal,
}
_BY_NAME.update({cls.__name__: cls for cls in list(_BY_NAME.values())})


def serialize(initializer):
    """{"class_name": ..., "config": {...}}, JSON-able."""
    return {"class_name": type(initializer).__name__, "config": initializer.get_config()}


def get(identifier):
    """An initializer from a name ("glorot_uniform", "HeNormal"), a serialized
    dict, an instance or any callable (returned as is)."""
    if identifier is None:
        return None
    if isinstance(identifier, Initializer) or (callable(identifier)
                                               and not isinstance(identifier, type)):
        return identifier
    if isinstance(identifier, type) and issubclass(identifier, Initializer):
        return identifier()
    if isinstance(identifier, dict):
        name = identifier.get("class_name")
        if name not in _BY_NAME:
            raise ValueError(f"unknown initializer {name!r}")
        return _BY_NAME[name].from_config(identifier.get("config", {}))
    if isinstance(identifier, str):
        if identifier not in _BY_NAME:
            raise ValueError(f"unknown initializer {identifier!r}; the initializers are "
                             f"{', '.join(sorted(k for k in _BY_NAME if k.islower()))}")
        return _BY_NAME[identifier]()
    raise TypeError(f"cannot interpret {identifier!r} as an initializer")
