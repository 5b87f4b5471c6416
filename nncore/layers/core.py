"""Core layers: Input, Dense, Activation, Flatten."""
from __future__ import annotations

from typing import Optional

import numpy as np

from nncore import _core, activations, regularizers
from nncore.layers.base import Layer, Shape


def _batch(x: np.ndarray, layer: Layer, ndim: int) -> np.ndarray:
    """Check a batch's trailing shape against what the layer was built for."""
    if x.ndim != ndim + 1 or tuple(x.shape[1:]) != layer.input_shape:
        raise ValueError(f"layer {layer.name!r} expects batches of shape "
                         f"(batch, {', '.join(map(str, layer.input_shape))}), got {x.shape}")
    return x


class Input(Layer):
    """Declares the shape of one sample (without the batch axis): ``Input(shape=(784,))``."""

    def __init__(self, shape: Shape, name: Optional[str] = None, dtype=None):
        super().__init__(name=name, dtype=dtype, input_shape=shape)

    def forward(self, x, training=False):
        return x

    def backward(self, dy):
        return dy

    def get_config(self):
        return dict(super().get_config(), shape=list(self.input_shape))


class _ActivationMixin:
    """The activation of a layer, with its fusion into the loss.

    When the model fuses this (output) activation into the loss (softmax +
    categorical cross-entropy, sigmoid + binary cross-entropy), it sets
    ``emit_logits``: forward then stops before the activation, and backward
    receives the gradient with respect to the logits.
    """

    emit_logits = False

    def _set_activation(self, activation, alpha):
        self.activation = activations.canonical_name(activation)
        self.alpha = alpha
        self._act_code, self._act_param = activations.resolve(self.activation, alpha)

    @property
    def _act_applied(self) -> bool:
        return self.activation != "linear" and not self.emit_logits


class Dense(_ActivationMixin, Layer):
    """A fully connected layer: ``y = activation(x @ kernel + bias)``.

    Args:
        units: number of outputs.
        activation: an activation name (see :mod:`nncore.activations`); None is linear.
        use_bias: whether to add a bias.
        kernel_initializer, bias_initializer: initializer names or objects.
        kernel_regularizer, bias_regularizer: e.g. ``nncore.regularizers.L2(0.01)``.
        input_dim: the number of inputs, when this is a model's first layer.
        alpha: leaky_relu's negative slope or elu's alpha.

    The kernel has Keras' layout ``(inputs, units)``. Input batches are 2-D
    ``(batch, inputs)``; put a ``Flatten`` before it for images.
    """

    def __init__(self, units: int, activation: Optional[str] = None, use_bias: bool = True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None,
                 input_dim: Optional[int] = None, input_shape=None,
                 alpha: Optional[float] = None, name: Optional[str] = None, dtype=None):
        if input_dim is not None:
            input_shape = (int(input_dim),)
        super().__init__(name=name, dtype=dtype, input_shape=input_shape)
        if not (isinstance(units, (int, np.integer)) and units > 0):
            raise ValueError(f"units must be a positive integer, got {units!r}")
        self.units = int(units)
        self._set_activation(activation, alpha)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = kernel_initializer
        self.bias_initializer = bias_initializer
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.need_input_grad = True  # a model clears it on its first layer

    def build(self, input_shape: Shape) -> None:
        input_shape = tuple(int(d) for d in input_shape)
        if len(input_shape) != 1:
            raise ValueError(f"Dense takes (batch, features) batches; layer {self.name!r} got "
                             f"samples of shape {input_shape} (add a Flatten layer first)")
        self.param_specs = []
        self.add_weight("kernel", (input_shape[0], self.units), self.kernel_initializer,
                        self.kernel_regularizer)
        if self.use_bias:
            self.add_weight("bias", (self.units,), self.bias_initializer, self.bias_regularizer)
        self.input_shape = input_shape
        self.output_shape = (self.units,)
        self.built = True

    @property
    def kernel(self) -> np.ndarray:
        return self.params["kernel"]

    @property
    def bias(self) -> Optional[np.ndarray]:
        return self.params.get("bias")

    def forward(self, x, training=False):
        x = _batch(x, self, 1)
        y = self.buffer("y", (x.shape[0], self.units), x.dtype)
        code, param = (self._act_code, self._act_param) if self._act_applied else (0, 0.0)
        _core.dense_forward(x, self.params["kernel"], self.params.get("bias"), code, param, y)
        self._x, self._y = x, y
        return y

    def backward(self, dy):
        x, y = self._x, self._y
        dz = dy
        if self._act_applied:
            dz = _core.act_backward(self._act_code, self._act_param, y, dy,
                                    self.buffer("dz", y.shape, y.dtype))
        dx = self.buffer("dx", x.shape, x.dtype) if self.need_input_grad else None
        _core.dense_backward(x, self.params["kernel"], dz, self.need_input_grad, True,
                             self.use_bias, dx, self.grads["kernel"], self.grads.get("bias"))
        return dx

    def get_config(self):
        config = dict(super().get_config(), units=self.units, activation=self.activation,
                      use_bias=self.use_bias)
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


class Activation(_ActivationMixin, Layer):
    """An activation as a layer of its own: ``Activation("relu")``."""

    def __init__(self, activation: Optional[str], alpha: Optional[float] = None,
                 name: Optional[str] = None, dtype=None, input_shape=None):
        super().__init__(name=name, dtype=dtype, input_shape=input_shape)
        self._set_activation(activation, alpha)

    def forward(self, x, training=False):
        if not self._act_applied:
            self._y = x
            return x
        y = self.buffer("y", x.shape, x.dtype)
        self._y = _core.act_forward(self._act_code, self._act_param, x, y)
        return y

    def backward(self, dy):
        if not self._act_applied:
            return dy
        return _core.act_backward(self._act_code, self._act_param, self._y, dy,
                                  self.buffer("dx", dy.shape, dy.dtype))

    def get_config(self):
        config = dict(super().get_config(), activation=self.activation)
        if self.alpha is not None:
            config["alpha"] = self.alpha
        return config


class Flatten(Layer):
    """Flattens each sample to one axis: (batch, 16, 16) -> (batch, 256). No copy."""

    def build(self, input_shape: Shape) -> None:
        super().build(input_shape)
        self.output_shape = (int(np.prod(self.input_shape, dtype=np.int64)),)

    def forward(self, x, training=False):
        x = _batch(x, self, len(self.input_shape))
        return np.ascontiguousarray(x).reshape((x.shape[0],) + self.output_shape)

    def backward(self, dy):
        return dy.reshape((dy.shape[0],) + self.input_shape)
