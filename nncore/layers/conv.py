"""Convolution: Conv2D (channels-last images, Keras' kernel layout)."""
from __future__ import annotations

from typing import Optional

import numpy as np

from nncore import _core, regularizers
from nncore.layers.base import Layer, Shape
from nncore.layers.core import _ActivationMixin, _batch


def _pair(value, name: str):
    if isinstance(value, (int, np.integer)):
        value = (value, value)
    try:
        a, b = (int(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}") from None
    if a < 1 or b < 1:
        raise ValueError(f"{name} must be positive, got {value!r}")
    return a, b


def _padding(padding: str) -> str:
    padding = str(padding).lower()
    if padding not in ("valid", "same"):
        raise ValueError(f"padding must be 'valid' or 'same', got {padding!r}")
    return padding


class Conv2D(_ActivationMixin, Layer):
    """A 2-D convolution of channels-last images: ``(batch, h, w, c) -> (batch, oh, ow, filters)``.

    Args:
        filters: number of output channels.
        kernel_size: an int or (kh, kw).
        strides: an int or (sh, sw).
        padding: "valid" (no padding) or "same" (output ceil(size / stride);
            Keras' convention: when the padding is odd the extra zero row and
            column go at the bottom and right, where PyTorch's symmetric
            padding cannot put them).
        dilation_rate: an int or (dh, dw).
        activation, use_bias, initializers, regularizers, alpha: as Dense.

    The kernel has Keras' layout ``(kh, kw, in_channels, filters)``, so weights
    move between nncore and Keras unchanged (PyTorch's is ``(out, in, kh, kw)``:
    ``w.transpose(3, 2, 0, 1)``). Computed as im2col + the engine's GEMM, or,
    for float32 stride-1 convolutions on AVX-512 machines, directly from the
    zero-padded input (implicit GEMM: no column matrix); the work buffer
    (batch * oh * ow * kh * kw * in_channels elements) is kept between
    forward and backward.
    """

    def __init__(self, filters: int, kernel_size, strides=1, padding: str = "valid",
                 dilation_rate=1, activation: Optional[str] = None, use_bias: bool = True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, input_shape=None,
                 alpha: Optional[float] = None, name: Optional[str] = None, dtype=None):
        super().__init__(name=name, dtype=dtype, input_shape=input_shape)
        if not (isinstance(filters, (int, np.integer)) and filters > 0):
            raise ValueError(f"filters must be a positive integer, got {filters!r}")
        self.filters = int(filters)
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.strides = _pair(strides, "strides")
        self.padding = _padding(padding)
        self.dilation_rate = _pair(dilation_rate, "dilation_rate")
        self._set_activation(activation, alpha)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = kernel_initializer
        self.bias_initializer = bias_initializer
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.need_input_grad = True  # a model clears it on its first layer

    def build(self, input_shape: Shape) -> None:
        input_shape = tuple(int(d) for d in input_shape)
        if len(input_shape) != 3:
            raise ValueError(f"Conv2D takes (batch, height, width, channels) images; layer "
                             f"{self.name!r} got samples of shape {input_shape}")
        h, w, c = input_shape
        try:
            oh, ow, _, _ = _core.conv2d_output_shape((h, w), self.kernel_size, self.strides,
                                                      self.padding, self.dilation_rate)
        except ValueError as e:
            raise ValueError(f"layer {self.name!r}: {e}") from None
        self.param_specs = []
        kshape = self.kernel_size + (c, self.filters)
        self.add_weight("kernel", kshape, self.kernel_initializer, self.kernel_regularizer)
        if self.use_bias:
            self.add_weight("bias", (self.filters,), self.bias_initializer,
                            self.bias_regularizer)
        self._cols_per_sample = int(_core.conv2d_cols_size(
            (1, h, w, c), kshape, self.strides, self.padding, self.dilation_rate))
        self.input_shape = input_shape
        self.output_shape = (oh, ow, self.filters)
        self.built = True

    @property
    def kernel(self) -> np.ndarray:
        return self.params["kernel"]

    @property
    def bias(self) -> Optional[np.ndarray]:
        return self.params.get("bias")

    @property
    def _row_act(self) -> bool:
        # softmaxes run over the channels after the convolution, not fused
        return self._act_applied and self.activation in ("softmax", "log_softmax")

    def forward(self, x, training=False):
        x = _batch(x, self, 3)
        n = x.shape[0]
        y = self.buffer("y", (n,) + self.output_shape, x.dtype)
        cols = (self.buffer("cols", (n, self._cols_per_sample), x.dtype)
                if self._cols_per_sample else None)
        fused = self._act_applied and not self._row_act
        code, param = (self._act_code, self._act_param) if fused else (0, 0.0)
        _core.conv2d_forward(x, self.params["kernel"], self.params.get("bias"), self.strides,
                             self.padding, self.dilation_rate, code, param, out=y, cols=cols)
        if self._row_act:
            _core.act_forward(self._act_code, self._act_param, y, y)
        self._x, self._y, self._cols = x, y, cols
        return y

    def backward(self, dy):
        x, y, cols = self._x, self._y, self._cols
        dz = dy
        if self._act_applied:
            dz = _core.act_backward(self._act_code, self._act_param, y, dy,
                                    self.buffer("dz", y.shape, y.dtype))
        dx = self.buffer("dx", x.shape, x.dtype) if self.need_input_grad else None
        # dx's work overwrites the columns after dW has read them: a second
        # backward of the same forward recomputes them.
        _core.conv2d_backward(x, self.params["kernel"], dz, cols, self.strides, self.padding,
                              self.dilation_rate, self.need_input_grad, True, self.use_bias,
                              dx, self.grads["kernel"], self.grads.get("bias"), dcols=cols)
        if cols is not None and self.need_input_grad:
            self._cols = None
        return dx

    def get_config(self):
        config = dict(super().get_config(), filters=self.filters,
                      kernel_size=list(self.kernel_size), strides=list(self.strides),
                      padding=self.padding, dilation_rate=list(self.dilation_rate),
                      activation=self.activation, use_bias=self.use_bias)
        if self.alpha is not None:
            config["alpha"] = self.alpha
        for key in ("kernel_initializer", "bias_initializer"):
            value = getattr(self, key)
            if isinstance(value, str):
                config[key] = value
        for key in ("kernel_regularizer", "bias_regularizer"):
            reg = getattr(self, key)
            if reg is not None:
                config[key] = regularizers.serialize(reg)
        if self.input_shape is not None:
            config["input_shape"] = list(self.input_shape)
        return config
