"""Recurrent layers: SimpleRNN, LSTM and GRU, with Keras' names, arguments and
weight layouts.

Input batches are sequences ``(batch, steps, features)``; the output is the
last state ``(batch, units)``, or every step's ``(batch, steps, units)`` with
``return_sequences=True``. The whole time loop, forward and backward through
time, runs in the C engine (csrc/rnn_impl.h): one GEMM projects every step's
input, then one recurrent GEMM and one fused pass per step.

Weights (Keras' layouts, so ``get_weights``/``set_weights`` move them between
nncore and Keras unchanged), with G gates (SimpleRNN 1, LSTM 4, GRU 3):

- ``kernel`` ``(features, G * units)``, ``recurrent_kernel`` ``(units, G * units)``;
- ``bias`` ``(G * units,)``, or ``(2, 3 * units)`` for a GRU (input and
  recurrent biases: Keras' ``reset_after=True``, PyTorch's and cuDNN's GRU;
  ``GRU(reset_after=False)`` has one ``(3 * units,)`` bias, as Keras);
- gate order: LSTM i, f, c, o (PyTorch's i, f, g, o: the same); GRU z, r, h
  (PyTorch's r, z, n: swap the first two blocks).

State, by hand. A ``Sequential`` passes one array between layers, so the
state is reached through the layer itself:

>>> import numpy as np, nncore
>>> lstm = nncore.layers.LSTM(8)
>>> y = lstm(np.zeros((2, 5, 3), np.float32))                 # builds it
>>> h, c = lstm.final_state                                   # after forward
>>> y2 = lstm.forward(np.zeros((2, 5, 3), np.float32), initial_state=(h, c))
>>> dx = lstm.backward(np.ones_like(y2))
>>> dh0, dc0 = lstm.initial_state_grad                        # after backward

``forward(x, training, initial_state=None, mask=None)``: ``initial_state`` is
``h0`` (or ``(h0, c0)`` for an LSTM), each ``(batch, units)``; ``mask``
``(batch, steps)`` is False at padded steps. ``backward(dy, final_state_grad=None)``
takes an optional gradient of the final state (``dh`` or ``(dh, dc)``) and
leaves dL/d(initial state) in ``initial_state_grad`` when an initial state
was given.

Masking. A padded step leaves the state unchanged and outputs zeros (with
``return_sequences``). In a model, ``mask_value=0.0`` marks as padded every
step whose features all equal that value (Keras' ``Masking`` layer, fused).

Dropout, while training, with one inverted-dropout mask per sequence (the
same at every step), as Keras: ``dropout=rate`` on the inputs,
``recurrent_dropout=rate`` on the previous state before the recurrent
product (one mask for every gate: Keras' implementation 2).
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from nncore import _core, activations, initializers, random, regularizers
from nncore.layers.base import Layer, Shape


class Orthogonal(initializers.Initializer):
    """A (semi-)orthogonal matrix (Keras' ``Orthogonal``, the default recurrent
    kernel initializer): the Q of the QR decomposition of a normal draw, signs
    fixed by R's diagonal, times ``gain``. A wide matrix gets orthonormal rows.
    """

    def __init__(self, gain=1.0, seed=None):
        self.gain = float(gain)
        self.seed = None if seed is None else random._check_seed(seed)

    def __call__(self, shape, dtype="float32"):
        shape = tuple(int(s) for s in shape)
        if len(shape) < 2:
            raise ValueError(f"an orthogonal matrix needs at least 2 axes, got shape {shape}")
        rows, cols = int(np.prod(shape[:-1])), shape[-1]
        flat = (max(rows, cols), min(rows, cols))
        a = random.normal(flat, 0.0, 1.0, "float64", self.seed)
        q, r = np.linalg.qr(a)
        q *= np.sign(np.diag(r))
        if rows < cols:
            q = q.T
        return (self.gain * q).reshape(shape).astype(dtype)

    def get_config(self):
        return {"gain": self.gain, "seed": self.seed}


class _LSTMBias(initializers.Initializer):
    """Zeros with the forget gate's block at one (Keras' unit_forget_bias)."""

    def __init__(self, units):
        self.units = int(units)

    def __call__(self, shape, dtype="float32"):
        b = np.zeros(shape, dtype)
        b[self.units:2 * self.units] = 1
        return b

    def get_config(self):
        return {"units": self.units}


def _initializer(value):
    if isinstance(value, str) and value in ("orthogonal", "Orthogonal"):
        return Orthogonal()
    return value


class _RNN(Layer):
    """The shared machinery; subclasses set ``_cell`` and ``_gates``."""

    _cell = "simple"
    _gates = 1
    uses_rng = True  # recurrent dropout

    def __init__(self, units: int, return_sequences: bool = False, go_backwards: bool = False,
                 use_bias: bool = True, kernel_initializer="glorot_uniform",
                 recurrent_initializer="orthogonal", bias_initializer="zeros",
                 kernel_regularizer=None, recurrent_regularizer=None, bias_regularizer=None,
                 dropout: float = 0.0, recurrent_dropout: float = 0.0, mask_value: Optional[float] = None,
                 seed: Optional[int] = None, input_shape=None, name: Optional[str] = None,
                 dtype=None):
        super().__init__(name=name, dtype=dtype, input_shape=input_shape)
        if not (isinstance(units, (int, np.integer)) and units > 0):
            raise ValueError(f"units must be a positive integer, got {units!r}")
        for key, rate in (("dropout", dropout), ("recurrent_dropout", recurrent_dropout)):
            if not (isinstance(rate, (int, float)) and 0 <= rate < 1):
                raise ValueError(f"{key} must be in [0, 1), got {rate!r}")
        self.dropout = float(dropout)
        self.units = int(units)
        self.return_sequences = bool(return_sequences)
        self.go_backwards = bool(go_backwards)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = kernel_initializer
        self.recurrent_initializer = recurrent_initializer
        self.bias_initializer = bias_initializer
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.recurrent_regularizer = regularizers.get(recurrent_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.recurrent_dropout = float(recurrent_dropout)
        self.mask_value = None if mask_value is None else float(mask_value)
        self.seed = seed
        self.need_input_grad = True  # a model clears it on its first layer
        self.final_state = None
        self.initial_state_grad = None
        self._act_code, self._act_param = _core.ACTIVATIONS["tanh"], 0.0

    # ------------------------------------------------------------------ build
    def _bias_shape(self):
        return (self._gates * self.units,)

    def _bias_initializer(self):
        return self.bias_initializer

    def build(self, input_shape: Shape) -> None:
        input_shape = tuple(int(d) for d in input_shape)
        if len(input_shape) != 2:
            raise ValueError(f"{type(self).__name__} takes sequences (batch, steps, features); "
                             f"layer {self.name!r} got samples of shape {input_shape}")
        gu = self._gates * self.units
        self.param_specs = []
        self.add_weight("kernel", (input_shape[1], gu), _initializer(self.kernel_initializer),
                        self.kernel_regularizer)
        self.add_weight("recurrent_kernel", (self.units, gu),
                        _initializer(self.recurrent_initializer), self.recurrent_regularizer)
        if self.use_bias:
            self.add_weight("bias", self._bias_shape(), self._bias_initializer(),
                            self.bias_regularizer)
        self.input_shape = input_shape
        self.output_shape = ((input_shape[0], self.units) if self.return_sequences
                             else (self.units,))
        self.built = True

    # --------------------------------------------------------------- running
    def _split_state(self, state, name):
        """(h, c or None) from h or (h, c)."""
        if state is None:
            return None, None
        if self._cell == "lstm":
            if not (isinstance(state, (tuple, list)) and len(state) == 2):
                raise ValueError(f"an LSTM's {name} is a pair (h, c)")
            return state[0], state[1]
        if isinstance(state, (tuple, list)):
            if len(state) != 1:
                raise ValueError(f"a {type(self).__name__}'s {name} is one array h")
            state = state[0]
        return state, None

    def forward(self, x, training=False, initial_state=None, mask=None):
        if x.ndim != 3 or tuple(x.shape[1:]) != self.input_shape:
            raise ValueError(f"layer {self.name!r} expects sequences of shape "
                             f"(batch, {', '.join(map(str, self.input_shape))}), got {x.shape}")
        n, t = x.shape[0], x.shape[1]
        u, dt = self.units, x.dtype
        h0, c0 = self._split_state(initial_state, "initial_state")
        if mask is None and self.mask_value is not None:
            mask = np.any(x != self.mask_value, axis=-1)
        rmask = xmask = None
        if training and (self.dropout > 0 or self.recurrent_dropout > 0):
            # one draw per update: the input mask takes the elements after
            # the recurrent one's, so the two never share random numbers
            stream = None if self.seed is None else self.step
            if self.recurrent_dropout > 0:
                rmask = random.dropout_mask((n, u), self.recurrent_dropout, dt, seed=self.seed,
                                            stream=stream, out=self.buffer("rmask", (n, u), dt))
            if self.dropout > 0:
                i = self.input_shape[1]
                xmask = random.dropout_mask((n, 1, i), self.dropout, dt, seed=self.seed,
                                            stream=stream, offset=n * u,
                                            out=self.buffer("xmask", (n, 1, i), dt))
                x = np.multiply(x, xmask, out=self.buffer("x_dropped", x.shape, dt))
            self.step += 1
        cell = _core.RNN_CELLS[self._cell]
        cache_size, _ = _core.rnn_sizes(cell, n, t, self.input_shape[1], u)
        y_seq = self.buffer("y_seq", (n, t, u), dt) if self.return_sequences else None
        h_last = self.buffer("h_last", (n, u), dt)
        c_last = self.buffer("c_last", (n, u), dt) if self._cell == "lstm" else None
        cache = self.buffer("cache", (cache_size,), dt)
        # the last call's final_state fed back as the initial state: the
        # outputs are about to be overwritten, so read it from a copy
        if h0 is not None and np.shares_memory(h0, h_last):
            h0 = np.array(h0)
        if c0 is not None and c_last is not None and np.shares_memory(c0, c_last):
            c0 = np.array(c0)
        _core.rnn_forward(cell, x, self.params["kernel"], self.params["recurrent_kernel"],
                          self.params.get("bias"), h0, c0, mask, rmask, self._act_code,
                          self._act_param, self.go_backwards, self.return_sequences,
                          y_seq, h_last, c_last, cache)
        self._x, self._mask, self._rmask, self._cache = x, mask, rmask, cache
        self._xmask = xmask
        self._has_state = h0 is not None or c0 is not None
        self.final_state = (h_last, c_last) if self._cell == "lstm" else h_last
        return y_seq if self.return_sequences else h_last

    def backward(self, dy, final_state_grad=None):
        x = self._x
        n, t = x.shape[0], x.shape[1]
        dh, dc = self._split_state(final_state_grad, "final_state_grad")
        if not self.return_sequences:
            dh = dy if dh is None else dy + dh
        cell = _core.RNN_CELLS[self._cell]
        _, work_size = _core.rnn_sizes(cell, n, t, self.input_shape[1], self.units)
        dt = x.dtype
        dx = self.buffer("dx", x.shape, dt) if self.need_input_grad else None
        want_state = self._has_state
        g = self.grads
        res = _core.rnn_backward(
            cell, x, self.params["kernel"], self.params["recurrent_kernel"], self._cache,
            dy if self.return_sequences else None, dh, dc, self._mask, self._rmask,
            self._act_code, self._act_param, self.go_backwards, self.use_bias,
            self.need_input_grad, True, want_state, dx, g["kernel"], g["recurrent_kernel"],
            g.get("bias"),
            self.buffer("dh0", (n, self.units), dt) if want_state else None,
            self.buffer("dc0", (n, self.units), dt) if want_state and self._cell == "lstm"
            else None,
            self.buffer("work", (work_size,), dt))
        if dx is not None and self._xmask is not None:
            np.multiply(dx, self._xmask, out=dx)
        if want_state:
            self.initial_state_grad = (res[4], res[5]) if self._cell == "lstm" else res[4]
        else:
            self.initial_state_grad = None
        return dx

    # ------------------------------------------------------------- describing
    def get_config(self):
        config = dict(super().get_config(), units=self.units,
                      return_sequences=self.return_sequences, go_backwards=self.go_backwards,
                      use_bias=self.use_bias)
        for key in ("kernel_initializer", "recurrent_initializer", "bias_initializer"):
            value = getattr(self, key)
            if isinstance(value, str):
                config[key] = value
        for key in ("kernel_regularizer", "recurrent_regularizer", "bias_regularizer"):
            reg = getattr(self, key)
            if reg is not None:
                config[key] = regularizers.serialize(reg)
        if self.dropout:
            config["dropout"] = self.dropout
        if self.recurrent_dropout:
            config["recurrent_dropout"] = self.recurrent_dropout
        if self.mask_value is not None:
            config["mask_value"] = self.mask_value
        if self.seed is not None and (self.dropout or self.recurrent_dropout):
            config["seed"] = self.seed
        if self.input_shape is not None:
            config["input_shape"] = list(self.input_shape)
        return config


class SimpleRNN(_RNN):
    """A fully connected recurrent layer: ``h_t = activation(x_t W + h_{t-1} R + b)``.

    ``activation`` is any element-wise activation name (default "tanh"). The
    layer's activation is kept as ``cell_activation`` (not ``activation``, so a
    model never mistakes it for an output activation to fuse into the loss).
    """

    _cell = "simple"
    _gates = 1

    def __init__(self, units: int, activation: Optional[str] = "tanh", alpha=None, **kwargs):
        super().__init__(units, **kwargs)
        name = activations.canonical_name(activation)
        code, param = activations.resolve(name, alpha)
        if code in (_core.ACTIVATIONS["softmax"], _core.ACTIVATIONS["log_softmax"]):
            raise ValueError("a SimpleRNN's activation must be element-wise, not a softmax")
        self.cell_activation, self.alpha = name, alpha
        self._act_code, self._act_param = code, param

    def get_config(self):
        config = dict(super().get_config(), activation=self.cell_activation)
        if self.alpha is not None:
            config["alpha"] = self.alpha
        return config


class LSTM(_RNN):
    """Long short-term memory (Hochreiter & Schmidhuber, 1997), Keras' LSTM:
    gates i, f, c, o; ``c_t = f c_{t-1} + i g``, ``h_t = o tanh(c_t)``.

    ``unit_forget_bias=True`` (Keras' default) starts the forget gate's bias
    at one.
    """

    _cell = "lstm"
    _gates = 4

    def __init__(self, units: int, unit_forget_bias: bool = True, **kwargs):
        super().__init__(units, **kwargs)
        self.unit_forget_bias = bool(unit_forget_bias)

    def _bias_initializer(self):
        if self.unit_forget_bias and self.bias_initializer in ("zeros", "Zeros"):
            return _LSTMBias(self.units)
        return self.bias_initializer

    def get_config(self):
        return dict(super().get_config(), unit_forget_bias=self.unit_forget_bias)


class GRU(_RNN):
    """Gated recurrent unit (Cho et al., 2014), Keras' GRU: gates z, r, h;
    ``h_t = z h_{t-1} + (1 - z) hh``.

    ``reset_after=True`` (the default; the cuDNN/PyTorch form): the reset gate
    multiplies the recurrent product, ``hh = tanh(x W_h + b_h + r (h_{t-1}
    R_h + b'_h))``, and the bias is ``(2, 3 * units)``: input biases, then
    recurrent biases.

    ``reset_after=False`` (Keras' original form, arXiv 1406.1078v1): the reset
    gate multiplies the state before the product, ``hh = tanh(x W_h + b_h +
    (r h_{t-1}) R_h)``, with one bias ``(3 * units,)``.
    """

    _cell = "gru"
    _gates = 3

    def __init__(self, units: int, reset_after: bool = True, **kwargs):
        super().__init__(units, **kwargs)
        self.reset_after = bool(reset_after)
        if not self.reset_after:
            self._cell = "gru_reset_before"

    def _bias_shape(self):
        return (2, 3 * self.units) if self.reset_after else (3 * self.units,)

    def get_config(self):
        return dict(super().get_config(), reset_after=self.reset_after)
