"""Batch normalisation."""
from __future__ import annotations

from typing import Optional

from nncore import _core
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
        p = self.params
        y, xhat = self.buffer("y", x.shape, x.dtype), self.buffer("xhat", x.shape, x.dtype)
        # one engine call: statistics (and, in training, the moving averages
        # updated in place in the model's state buffer), xhat and y
        try:
            _, _, _, self._inv_std = _core.batchnorm_forward(
                x, p.get("gamma"), p.get("beta"), p["moving_mean"], p["moving_variance"],
                self.momentum, self.epsilon, bool(training), out=y, xhat=xhat)
        except ValueError as e:
            raise ValueError(f"layer {self.name!r}: {e}") from None
        self._xhat, self._training = xhat, bool(training)
        return y

    def backward(self, dy):
        c = self.input_shape[-1]
        dx = self.buffer("dx", dy.shape, dy.dtype)
        # the engine always sums dgamma and dbeta (the training dx uses them):
        # into the gradient buffer where the layer has the parameter, scratch otherwise
        dgamma = self.grads["gamma"] if self.scale else self.buffer("dgamma", (c,), dy.dtype)
        dbeta = self.grads["beta"] if self.center else self.buffer("dbeta", (c,), dy.dtype)
        _core.batchnorm_backward(dy, self._xhat, self._inv_std, self.params.get("gamma"),
                                 self._training, out=dx, dgamma=dgamma, dbeta=dbeta)
        return dx

    def get_config(self):
        config = dict(super().get_config(), momentum=self.momentum, epsilon=self.epsilon,
                      center=self.center, scale=self.scale)
        config.update({f"{k}_initializer": v for k, v in self.initializers.items()
                       if isinstance(v, str)})
        return config
