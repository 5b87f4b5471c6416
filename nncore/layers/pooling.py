"""Pooling (channels-last images) and Reshape."""
from __future__ import annotations

from typing import Optional

import numpy as np

from nncore import _core
from nncore.layers.base import Layer, Shape
from nncore.layers.conv import _padding, _pair
from nncore.layers.core import _batch


class _Pooling2D(Layer):
    _mode = "max"

    def __init__(self, pool_size=(2, 2), strides=None, padding: str = "valid",
                 name: Optional[str] = None, dtype=None, input_shape=None):
        super().__init__(name=name, dtype=dtype, input_shape=input_shape)
        self.pool_size = _pair(pool_size, "pool_size")
        self.strides = self.pool_size if strides is None else _pair(strides, "strides")
        self.padding = _padding(padding)

    def _window(self):
        return self.pool_size, self.strides, self.padding

    def build(self, input_shape: Shape) -> None:
        input_shape = tuple(int(d) for d in input_shape)
        if len(input_shape) != 3:
            raise ValueError(f"{type(self).__name__} takes (batch, height, width, channels) "
                             f"images; layer {self.name!r} got samples of shape {input_shape}")
        self.input_shape = input_shape
        pool, strides, padding = self._window()
        try:
            oh, ow, _, _ = _core.pool2d_output_shape(input_shape[:2], pool, strides, padding)
        except ValueError as e:
            raise ValueError(f"layer {self.name!r}: {e}") from None
        self.output_shape = self._output_shape(oh, ow, input_shape[2])
        self.built = True

    def _output_shape(self, oh, ow, c):
        return (oh, ow, c)

    def forward(self, x, training=False):
        x = _batch(x, self, 3)
        n = x.shape[0]
        pool, strides, padding = self._window()
        y = self.buffer("y", (n,) + self.output_shape, x.dtype)
        shape4 = (n,) + self._output_shape4()
        argmax = self.buffer("argmax", shape4, np.int32) if self._mode == "max" else None
        _core.pool2d_forward(self._mode, x, pool, strides, padding, out=y.reshape(shape4),
                             argmax=argmax)
        self._x_shape, self._argmax = x.shape, argmax
        return y

    def _output_shape4(self):
        return self.output_shape

    def backward(self, dy):
        pool, strides, padding = self._window()
        dy = dy.reshape((dy.shape[0],) + self._output_shape4())
        dx = self.buffer("dx", self._x_shape, dy.dtype)
        return _core.pool2d_backward(self._mode, self._x_shape, dy, pool, strides, padding,
                                     argmax=self._argmax, out=dx)

    def get_config(self):
        config = dict(super().get_config(), pool_size=list(self.pool_size),
                      strides=list(self.strides), padding=self.padding)
        if self.input_shape is not None:
            config["input_shape"] = list(self.input_shape)
        return config


class MaxPooling2D(_Pooling2D):
    """The maximum of each pool_size window, moved by strides (default: pool_size).

    With padding="same" the windows at the border are clipped to the image
    (the padding never wins; Keras' convention, extra padding at the bottom and
    right). The gradient goes to the first maximum of each window.
    """
    _mode = "max"


class AveragePooling2D(_Pooling2D):
    """The mean of each pool_size window, moved by strides (default: pool_size).

    With padding="same" a border window averages only its real pixels
    (Keras' convention; PyTorch's count_include_pad=True would count zeros).
    """
    _mode = "avg"


class _GlobalPooling2D(_Pooling2D):
    """A pooling whose one window is the whole image: (batch, h, w, c) -> (batch, c)."""

    def __init__(self, name: Optional[str] = None, dtype=None, input_shape=None):
        Layer.__init__(self, name=name, dtype=dtype, input_shape=input_shape)
        self.padding = "valid"

    def _window(self):
        h, w = self.input_shape[:2]
        return (h, w), (h, w), "valid"

    def _output_shape(self, oh, ow, c):
        return (c,)

    def _output_shape4(self):
        return (1, 1, self.output_shape[0])

    def get_config(self):
        config = Layer.get_config(self)
        if self.input_shape is not None:
            config["input_shape"] = list(self.input_shape)
        return config


class GlobalAveragePooling2D(_GlobalPooling2D):
    """The mean over every pixel of each channel: (batch, h, w, c) -> (batch, c)."""
    _mode = "avg"


class GlobalMaxPooling2D(_GlobalPooling2D):
    """The maximum over every pixel of each channel: (batch, h, w, c) -> (batch, c)."""
    _mode = "max"


class Reshape(Layer):
    """Reshapes each sample to ``target_shape`` (one entry may be -1). No copy."""

    def __init__(self, target_shape, name: Optional[str] = None, dtype=None, input_shape=None):
        super().__init__(name=name, dtype=dtype, input_shape=input_shape)
        try:
            self.target_shape = tuple(int(d) for d in target_shape)
        except (TypeError, ValueError):
            raise ValueError(f"target_shape must be a tuple of ints, got {target_shape!r}") from None
        if sum(d == -1 for d in self.target_shape) > 1 or any(
                d == 0 or d < -1 for d in self.target_shape):
            raise ValueError(f"target_shape {self.target_shape} must hold positive sizes and "
                             f"at most one -1")

    def build(self, input_shape: Shape) -> None:
        super().build(input_shape)
        size = int(np.prod(self.input_shape, dtype=np.int64))
        known = int(np.prod([d for d in self.target_shape if d != -1], dtype=np.int64))
        shape = self.target_shape
        if -1 in shape:
            if size % known:
                raise ValueError(f"layer {self.name!r} cannot reshape samples of shape "
                                 f"{self.input_shape} ({size} values) to {shape}")
            shape = tuple(size // known if d == -1 else d for d in shape)
        elif known != size:
            raise ValueError(f"layer {self.name!r} cannot reshape samples of shape "
                             f"{self.input_shape} ({size} values) to {shape} ({known} values)")
        self.output_shape = shape

    def forward(self, x, training=False):
        x = _batch(x, self, len(self.input_shape))
        return np.ascontiguousarray(x).reshape((x.shape[0],) + self.output_shape)

    def backward(self, dy):
        return dy.reshape((dy.shape[0],) + self.input_shape)

    def get_config(self):
        config = dict(super().get_config(), target_shape=list(self.target_shape))
        if self.input_shape is not None:
            config["input_shape"] = list(self.input_shape)
        return config
