"""Batch normalisation."""
from __future__ import annotations

from typing import Optional

import numpy as np

from nncore.layers.base import Layer, Shape


class BatchNormalization(Layer):
    """Normalise each feature (the last axis) over the batch, then scale and shift.

    Training: ``y = gamma * (x - mean_batch) / sqrt(var_batch + epsilon) + beta``,
    and the moving averages follow ``moving = momentum * moving + (1 - momentum)
    * batch_statistic`` (Keras' convention: the biased batch variance).
    Inference: the moving averages replace the batch statistics.
    ``gamma`` and ``beta`` are trained; ``moving_mean`` and ``moving_variance``
    are non-trainable state (in the model's state buffer, untouched by the
    optimizer). Works on (batch, features) and channels-last images alike.
    """

    def __init__(self, axis: int = -1, momentum: float = 0.99, epsilon: float = 1e-3,
                 center: bool = True, scale: bool = True, beta_initializer="zeros",
                 gamma_initializer="ones", moving_mean_initializer="zeros",
                 moving_variance_initializer="ones", name: Optional[str] = None, dtype=None,
                 input_shape=None):
        super().__init__(name=name, dtype=dtype, input_shape=input_shape)
        if axis != -1:
            raise ValueError("BatchNormalization normalises the last (features/channels) axis "
                             f"only; got axis={axis}")
        if not 0 <= momentum < 1 or not epsilon > 0:
            raise ValueError(f"need 0 <= momentum < 1 and epsilon > 0, got {momentum}, {epsilon}")
        self.axis, self.momentum, self.epsilon = axis, float(momentum), float(epsilon)
        self.center, self.scale = bool(center), bool(scale)
        self.initializers = dict(beta=beta_initializer, gamma=gamma_initializer,
                                 moving_mean=moving_mean_initializer,
                                 moving_variance=moving_variance_initializer)

    def build(self, input_shape: Shape) -> None:
        super().build(input_shape)
        c = (self.input_shape[-1],)
        self.param_specs = []
        if self.scale:
            self.add_weight("gamma", c, self.initializers["gamma"])
        if self.center:
            self.add_weight("beta", c, self.initializers["beta"])
        self.add_weight("moving_mean", c, self.initializers["moving_mean"], trainable=False)
        self.add_weight("moving_variance", c, self.initializers["moving_variance"],
                        trainable=False)

    def forward(self, x, training=False):
        c = self.input_shape[-1]
        x2 = x.reshape(-1, c)
        p = self.params
        if training:
            if x2.shape[0] == 0:
                raise ValueError(f"layer {self.name!r}: a training batch of 0 samples has no "
                                 f"statistics to normalise with")
            mean = x2.mean(axis=0)
            var = x2.var(axis=0)
            m = self.momentum
            p["moving_mean"] *= m
            p["moving_mean"] += (1 - m) * mean
            p["moving_variance"] *= m
            p["moving_variance"] += (1 - m) * var
        else:
            mean, var = p["moving_mean"], p["moving_variance"]
        inv_std = 1.0 / np.sqrt(var + self.epsilon)
        xhat = self.buffer("xhat", x2.shape, x.dtype)
        np.subtract(x2, mean, out=xhat)
        xhat *= inv_std
        y = self.buffer("y", x2.shape, x.dtype)
        if self.scale:
            np.multiply(xhat, p["gamma"], out=y)
        else:
            np.copyto(y, xhat)
        if self.center:
            y += p["beta"]
        self._xhat, self._inv_std, self._training = xhat, inv_std, training
        return y.reshape(x.shape)

    def backward(self, dy):
        c = self.input_shape[-1]
        dy2 = dy.reshape(-1, c)
        xhat, inv_std = self._xhat, self._inv_std
        if self.scale:
            self.grads["gamma"][...] = (dy2 * xhat).sum(axis=0)
        if self.center:
            self.grads["beta"][...] = dy2.sum(axis=0)
        dxhat = dy2 * self.params["gamma"] if self.scale else dy2
        dx = self.buffer("dx", dy2.shape, dy.dtype)
        if self._training:
            # the batch statistics depend on x too
            np.multiply(xhat, (dxhat * xhat).mean(axis=0), out=dx)
            np.subtract(dxhat - dxhat.mean(axis=0), dx, out=dx)
            dx *= inv_std
        else:
            np.multiply(dxhat, inv_std, out=dx)
        return dx.reshape(dy.shape)

    def get_config(self):
        config = dict(super().get_config(), momentum=self.momentum, epsilon=self.epsilon,
                      center=self.center, scale=self.scale)
        config.update({f"{k}_initializer": v for k, v in self.initializers.items()
                       if isinstance(v, str)})
        return config
