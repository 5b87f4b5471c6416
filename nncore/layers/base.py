"""The layer protocol every nncore layer follows.

A layer is built for an input shape (without the batch axis), declares its
parameters, and then runs ``forward`` and ``backward`` on NumPy batches:

>>> import numpy as np, nncore
>>> layer = nncore.layers.Dense(2, activation="sigmoid")
>>> layer.build((3,))
>>> y = layer(np.ones((4, 3), np.float32))        # a fresh array
>>> dx = layer.backward(np.ones_like(y))          # fills layer.grads too

Parameters live in arrays the layer only *views*: inside a model they are
slices of the model's one flat parameter buffer (and gradients of its flat
gradient buffer), so an optimizer updates every parameter in one pass. A
layer built on its own gets a small flat buffer of its own.

``forward`` and ``backward`` return the layer's own work buffers, reused by
the next call (a model runs without allocating); ``layer(x)`` returns a copy.
"""
from __future__ import annotations

import itertools
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np

Shape = Tuple[int, ...]

# Parameters start on 64-byte boundaries inside the flat buffers, so every
# parameter array is as aligned as the SIMD kernels like.
ALIGN_BYTES = 64

_name_counters: Dict[str, "itertools.count[int]"] = {}


def _unique_name(prefix: str) -> str:
    counter = _name_counters.setdefault(prefix, itertools.count())
    n = next(counter)
    return prefix if n == 0 else f"{prefix}_{n}"


def _snake(name: str) -> str:
    out = []
    for i, ch in enumerate(name):
        if ch.isupper() and i and not name[i - 1].isupper():
            out.append("_")
        out.append(ch.lower())
    return "".join(out)


class ParamSpec(NamedTuple):
    """A parameter a layer declares: name, shape, initializer, regularizer."""
    name: str
    shape: Shape
    initializer: object
    regularizer: object = None
    trainable: bool = True


def aligned_empty(n: int, dtype) -> np.ndarray:
    """A 1-D array of n elements whose data starts on a 64-byte boundary."""
    dtype = np.dtype(dtype)
    pad = ALIGN_BYTES // dtype.itemsize
    raw = np.zeros(n + pad, dtype)
    offset = (-raw.ctypes.data % ALIGN_BYTES) // dtype.itemsize
    return raw[offset:offset + n]


def layout(specs: Sequence[ParamSpec], dtype) -> Tuple[List[int], int]:
    """Offsets (in elements) of each parameter in a flat buffer, and its size."""
    step = ALIGN_BYTES // np.dtype(dtype).itemsize
    offsets, total = [], 0
    for spec in specs:
        offsets.append(total)
        size = int(np.prod(spec.shape, dtype=np.int64))
        total += -(-size // step) * step
    return offsets, total


class Layer:
    """Base class of all layers.

    Subclasses set ``output_shape`` in ``build`` (calling ``add_weight`` for
    each parameter) and implement ``forward`` and ``backward``.
    """

    def __init__(self, name: Optional[str] = None, dtype=None, input_shape=None):
        self.name = name or _unique_name(_snake(type(self).__name__))
        self.dtype = np.dtype(dtype) if dtype is not None else None
        self.input_shape: Optional[Shape] = tuple(input_shape) if input_shape else None
        self.output_shape: Optional[Shape] = None
        self.built = False
        self.param_specs: List[ParamSpec] = []
        self.params: Dict[str, np.ndarray] = {}
        self.grads: Dict[str, np.ndarray] = {}
        self._buffers: Dict[str, np.ndarray] = {}
        self.seed: Optional[int] = None  # layers that draw randomness key it by seed
        self.step = 0                    # and by training step (set by the model)

    # Whether the layer draws random numbers while training (the model then
    # gives it a seed derived from its own and the step of each update).
    uses_rng = False

    # ------------------------------------------------------------------ build
    def build(self, input_shape: Shape) -> None:
        """Fix the input shape (without the batch axis) and declare parameters."""
        self.input_shape = tuple(int(d) for d in input_shape)
        self.output_shape = self.input_shape
        self.built = True

    def add_weight(self, name: str, shape: Shape, initializer, regularizer=None,
                   trainable: bool = True) -> None:
        """Declare a parameter; its storage is bound later (see ``bind``)."""
        self.param_specs.append(ParamSpec(name, tuple(int(d) for d in shape), initializer,
                                          regularizer, trainable))

    def bind(self, params: Dict[str, np.ndarray], grads: Dict[str, np.ndarray]) -> None:
        """Point the layer's parameters and gradients at views of flat buffers."""
        self.params, self.grads = params, grads

    def ensure_storage(self, dtype=np.float32, seed: Optional[int] = None) -> None:
        """Give a layer used on its own (outside a model) its own flat buffers."""
        if self.params or not self.param_specs:
            return
        from nncore import initializers
        dtype = np.dtype(self.dtype or dtype)
        offsets, total = layout(self.param_specs, dtype)
        flat_p, flat_g = aligned_empty(total, dtype), aligned_empty(total, dtype)
        params, grads = {}, {}
        for spec, off in zip(self.param_specs, offsets):
            size = int(np.prod(spec.shape, dtype=np.int64))
            params[spec.name] = flat_p[off:off + size].reshape(spec.shape)
            grads[spec.name] = flat_g[off:off + size].reshape(spec.shape)
            params[spec.name][...] = initializers.get(spec.initializer)(spec.shape, dtype)
        self.bind(params, grads)

    # --------------------------------------------------------------- running
    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """The layer's output for a batch x; the returned buffer is reused."""
        raise NotImplementedError

    def backward(self, dy: np.ndarray) -> np.ndarray:
        """Given dL/dy of the last forward, fill ``grads`` and return dL/dx."""
        raise NotImplementedError

    def __call__(self, x, training: bool = False) -> np.ndarray:
        x = np.asarray(x)
        if not self.built:
            self.build(x.shape[1:])
        self.ensure_storage(x.dtype if x.dtype in (np.float32, np.float64) else np.float32)
        return np.array(self.forward(x, training), copy=True)

    def buffer(self, key: str, shape: Shape, dtype) -> np.ndarray:
        """A work buffer of this shape, kept and reused across calls.

        Buffers grow to the largest batch seen; a smaller batch gets a view of
        the first rows, which is still contiguous.
        """
        buf = self._buffers.get(key)
        rows, rest = shape[0], tuple(shape[1:])
        if (buf is None or buf.dtype != dtype or buf.shape[1:] != rest
                or buf.shape[0] < rows):
            buf = np.empty((rows,) + rest, dtype)
            self._buffers[key] = buf
        return buf[:rows]

    # ------------------------------------------------------------- describing
    def count_params(self) -> int:
        return sum(int(np.prod(s.shape, dtype=np.int64)) for s in self.param_specs)

    def get_weights(self) -> List[np.ndarray]:
        """The parameters as copies, in declaration order (Keras' layouts)."""
        return [self.params[s.name].copy() for s in self.param_specs]

    def set_weights(self, weights: Sequence[np.ndarray]) -> None:
        """Set the parameters from arrays of the declared shapes."""
        if len(weights) != len(self.param_specs):
            raise ValueError(f"layer {self.name!r} has {len(self.param_specs)} weights, "
                             f"got {len(weights)}")
        for spec, w in zip(self.param_specs, weights):
            w = np.asarray(w)
            if w.shape != spec.shape:
                raise ValueError(f"weight {self.name}/{spec.name} has shape {spec.shape}, "
                                 f"got {w.shape}")
            self.params[spec.name][...] = w

    def get_config(self) -> dict:
        """JSON-able constructor arguments (for saving)."""
        config = {"name": self.name}
        if self.dtype is not None:
            config["dtype"] = self.dtype.name
        return config

    @classmethod
    def from_config(cls, config: dict) -> "Layer":
        return cls(**config)

    def regularization_loss(self) -> float:
        """The penalty of this layer's regularizers (0.0 without any)."""
        total = 0.0
        for spec in self.param_specs:
            if spec.regularizer is not None:
                total += spec.regularizer(self.params[spec.name])
        return total

    def add_regularization_grads(self) -> None:
        """Add the regularizers' gradients to ``grads``."""
        self.apply_regularizers()

    def apply_regularizers(self) -> float:
        """Add the regularizers' gradients to ``grads`` and return their penalty."""
        total = 0.0
        for spec in self._regularized:
            total += spec.regularizer.apply(self.params[spec.name], self.grads[spec.name])
        return total

    @property
    def _regularized(self):
        return [spec for spec in self.param_specs if spec.regularizer is not None]

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} output_shape={self.output_shape}>"
