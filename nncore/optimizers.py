"""Optimizers over a model's flat parameter buffer, and learning-rate schedules.

A model keeps all its parameters in one flat buffer and all gradients in
another; an optimizer keeps its state (moments, accumulators) flat too, so
``apply(params, grads)`` is one fused C pass over the whole model.

Names and defaults are Keras'; the update formulas are PyTorch's
(``torch.optim``, default code path), so that the two agree step for step.
Where Keras' own formula differs, each class says how. Semantics shared by
every optimizer here:

- ``weight_decay`` is L2 added to the gradient (``g += weight_decay * w``,
  torch's SGD/Adam/... ``weight_decay``), except in :class:`AdamW`, where it
  is decoupled (``w *= 1 - learning_rate * weight_decay``). Keras decouples it
  in every optimizer.
- ``clipnorm`` scales the WHOLE gradient buffer so its global L2 norm is at
  most ``clipnorm`` (torch's ``clip_grad_norm_``: ``g *= min(1, clipnorm /
  (norm + 1e-6))``, the norm in double in a fixed order); this is Keras'
  ``global_clipnorm`` (Keras' ``clipnorm`` clips each variable separately).
  ``clipvalue`` then clamps each element to ``[-clipvalue, clipvalue]``.
  The gradient buffer itself is never modified.
- ``learning_rate`` is a float or a schedule (a callable of the number of
  completed steps, as Keras calls it with ``optimizer.iterations``).

The classes are sorted in order of increasing complexity over one base.

>>> import numpy as np, nncore
>>> w = np.ones(3, np.float32); g = np.full(3, 0.5, np.float32)
>>> opt = nncore.optimizers.get("sgd")
>>> opt.apply(w, g); w
array([0.995, 0.995, 0.995], dtype=float32)
"""
import math

import numpy as np

from nncore._configurable import Configurable

from nncore import _core

__all__ = ["Optimizer", "SGD", "Adagrad", "Adadelta", "RMSprop", "Adam", "AdamW", "Nadam",
           "LearningRateSchedule", "ExponentialDecay", "InverseTimeDecay",
           "PiecewiseConstantDecay", "CosineDecay", "get", "serialize", "deserialize"]


# --------------------------------------------------------------------------
# Learning-rate schedules
# --------------------------------------------------------------------------

class LearningRateSchedule(Configurable):
    """A learning rate as a function of the step (completed steps, from 0)."""

    def __call__(self, step):
        raise NotImplementedError

    def get_config(self):
        raise NotImplementedError


def _positive(name, value, allow_zero=False):
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
        raise ValueError(f"{name} must be a finite number {'>=' if allow_zero else '>'} 0, "
                         f"got {value!r}")
    return v


class ExponentialDecay(LearningRateSchedule):
    """initial_learning_rate * decay_rate ** (step / decay_steps); with
    staircase=True the exponent is floored (the rate drops every decay_steps)."""

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False):
        self.initial_learning_rate = _positive("initial_learning_rate", initial_learning_rate,
                                               True)
        self.decay_steps = _positive("decay_steps", decay_steps)
        self.decay_rate = _positive("decay_rate", decay_rate)
        self.staircase = bool(staircase)

    def __call__(self, step):
        p = step / self.decay_steps
        if self.staircase:
            p = math.floor(p)
        return self.initial_learning_rate * self.decay_rate ** p

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate,
                "decay_steps": self.decay_steps, "decay_rate": self.decay_rate,
                "staircase": self.staircase}


class InverseTimeDecay(LearningRateSchedule):
    """initial_learning_rate / (1 + decay_rate * step / decay_steps) (floored
    step / decay_steps with staircase=True)."""

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False):
        self.initial_learning_rate = _positive("initial_learning_rate", initial_learning_rate,
                                               True)
        self.decay_steps = _positive("decay_steps", decay_steps)
        self.decay_rate = _positive("decay_rate", decay_rate, True)
        self.staircase = bool(staircase)

    def __call__(self, step):
        p = step / self.decay_steps
        if self.staircase:
            p = math.floor(p)
        return self.initial_learning_rate / (1 + self.decay_rate * p)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate,
                "decay_steps": self.decay_steps, "decay_rate": self.decay_rate,
                "staircase": self.staircase}


class PiecewiseConstantDecay(LearningRateSchedule):
    """values[0] while step <= boundaries[0], values[1] while step <=
    boundaries[1], ..., values[-1] after the last boundary (Keras' rule)."""

    def __init__(self, boundaries, values):
        boundaries, values = list(boundaries), list(values)
        if len(values) != len(boundaries) + 1:
            raise ValueError(f"{len(boundaries)} boundaries need {len(boundaries) + 1} values, "
                             f"got {len(values)}")
        if any(b2 <= b1 for b1, b2 in zip(boundaries, boundaries[1:])):
            raise ValueError(f"boundaries must increase, got {boundaries}")
        self.boundaries = [float(b) for b in boundaries]
        self.values = [_positive("values[i]", v, True) for v in values]

    def __call__(self, step):
        for b, v in zip(self.boundaries, self.values):
            if step <= b:
                return v
        return self.values[-1]

    def get_config(self):
        return {"boundaries": self.boundaries, "values": self.values}


class CosineDecay(LearningRateSchedule):
    """Keras' CosineDecay: an optional linear warmup from initial_learning_rate
    to warmup_target over warmup_steps, then a cosine from the peak down to
    alpha * peak over decay_steps, constant after."""

    def __init__(self, initial_learning_rate, decay_steps, alpha=0.0, warmup_target=None,
                 warmup_steps=0):
        self.initial_learning_rate = _positive("initial_learning_rate", initial_learning_rate,
                                               True)
        self.decay_steps = _positive("decay_steps", decay_steps)
        self.alpha = _positive("alpha", alpha, True)
        self.warmup_target = (None if warmup_target is None
                              else _positive("warmup_target", warmup_target, True))
        self.warmup_steps = _positive("warmup_steps", warmup_steps, True)

    def __call__(self, step):
        peak = self.initial_learning_rate
        if self.warmup_target is not None:
            if step < self.warmup_steps:
                return peak + (self.warmup_target - peak) * step / self.warmup_steps
            peak = self.warmup_target
            step = step - self.warmup_steps
        frac = min(step, self.decay_steps) / self.decay_steps
        return peak * ((1 - self.alpha) * 0.5 * (1 + math.cos(math.pi * frac)) + self.alpha)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate,
                "decay_steps": self.decay_steps, "alpha": self.alpha,
                "warmup_target": self.warmup_target, "warmup_steps": self.warmup_steps}


_SCHEDULES = {cls.__name__: cls for cls in (ExponentialDecay, InverseTimeDecay,
                                            PiecewiseConstantDecay, CosineDecay)}


# --------------------------------------------------------------------------
# Optimizers
# --------------------------------------------------------------------------

class Optimizer:
    """The base: a kind of update, its hyper-parameters, a flat state.

    ``build(n, dtype)`` creates the state for n parameters (``apply`` builds
    on first use); ``apply(params, grads)`` does one step in place on
    ``params`` (contiguous float32/float64, any shape) from ``grads`` (same
    dtype and size, never modified). ``iterations`` counts completed steps.
    ``get_state``/``set_state`` move the state in and out (checkpoints);
    ``get_config``/``from_config`` the hyper-parameters (JSON-able).
    """

    _kind = None  # the engine's name for the update

    def __init__(self, learning_rate=0.001, weight_decay=None, clipnorm=None, clipvalue=None,
                 global_clipnorm=None, name=None):
        if clipnorm is not None and global_clipnorm is not None:
            raise ValueError("give clipnorm or global_clipnorm (here the same thing: the "
                             "global norm), not both")
        if clipnorm is None:
            clipnorm = global_clipnorm
        if isinstance(learning_rate, dict):
            learning_rate = deserialize_schedule(learning_rate)
        if not callable(learning_rate):
            learning_rate = _positive("learning_rate", learning_rate, True)
        self._learning_rate = learning_rate
        self.weight_decay = None if weight_decay is None else float(weight_decay)
        self.clipnorm = None if clipnorm is None else float(clipnorm)
        self.clipvalue = None if clipvalue is None else float(clipvalue)
        self.name = name or type(self).__name__.lower()
        self.iterations = 0
        self._state = None
        self._n = None
        self._dtype = None
        self._pending = None
        _core.optim_state_slots(self._kind, self._hyper(0.0))  # checks every value now

    # -- what the engine sees -------------------------------------------------

    def _own_hyper(self):
        """The subclass's hyper-parameters, engine names."""
        return {}

    def _hyper(self, lr):
        hp = {"learning_rate": lr, "weight_decay": self.weight_decay or 0.0,
              "clipnorm": self.clipnorm or 0.0, "clipvalue": self.clipvalue or 0.0}
        hp.update(self._own_hyper())
        return hp

    @property
    def learning_rate(self):
        """The learning rate of the next step (the schedule's value, if one)."""
        lr = self._learning_rate
        return float(lr(self.iterations)) if callable(lr) else lr

    @learning_rate.setter
    def learning_rate(self, value):
        if not callable(value):
            value = _positive("learning_rate", value, True)
        self._learning_rate = value

    # -- state ----------------------------------------------------------------

    def build(self, n, dtype="float32"):
        """Create a fresh state for n parameters of dtype; resets iterations."""
        n = int(n)
        self._state = _core.optim_state_init(self._kind, self._hyper(0.0), n, dtype)
        self._n, self._dtype = n, np.dtype(dtype)
        self.iterations = 0
        if self._pending is not None:
            pending, self._pending = self._pending, None
            self.set_state(pending)

    @property
    def built(self):
        return self._state is not None

    def apply(self, params, grads):
        """One step: params updated in place from grads."""
        stepper = self._engine_stepper(params)
        # the count is set by the same engine call that makes the step, so an
        # interrupt cannot leave the two apart
        stepper.step(self.learning_rate, params, grads, self._state, self.iterations + 1, self)

    def _engine_stepper(self, params):
        """The engine's checked configuration for steps on params (the state
        built on first use); fit's engine epochs step with it too."""
        if not isinstance(params, np.ndarray):
            raise TypeError(f"params must be a numpy.ndarray, not {type(params).__name__}")
        if self._state is None:
            self.build(params.size, params.dtype)
        elif params.size != self._n or params.dtype != self._dtype:
            raise ValueError(f"this optimizer was built for {self._n} {self._dtype} parameters; "
                             f"got {params.size} {params.dtype} (build it again for a new model)")
        stepper = self._stepper
        if stepper is None:  # checked once, kept until a hyper-parameter changes
            stepper = self._stepper = _core.OptimStepper(self._kind, self._hyper(0.0))
        return stepper

    # The engine configuration is cached; assigning any public hyper-parameter
    # (momentum, beta_1, weight_decay, ...) drops it so the next step rebuilds it.
    _stepper = None

    def __setattr__(self, name, value):
        object.__setattr__(self, name, value)
        if not name.startswith("_") and name not in ("iterations", "learning_rate"):
            object.__setattr__(self, "_stepper", None)

    def get_state(self):
        """{"iterations": int64 0-d array, "state": flat state copy} (npz-friendly)."""
        if self._state is None:
            raise ValueError("the optimizer has no state yet: build() or apply() it first")
        return {"iterations": np.array(self.iterations, dtype=np.int64),
                "state": self._state.copy()}

    def set_state(self, state):
        """Restore what get_state returned; continuing then equals never stopping."""
        it = np.asarray(state["iterations"])
        arr = np.asarray(state["state"])
        if it.shape != () or it.dtype.kind not in "iu" or int(it) < 0:
            raise ValueError(f"iterations must be a non-negative integer scalar, got {it!r}")
        if self._state is None:
            self._pending = {"iterations": it.copy(), "state": arr.copy()}
            return
        if arr.dtype != self._state.dtype or arr.shape != self._state.shape:
            raise ValueError(f"state has {arr.dtype} {arr.shape}; this optimizer needs "
                             f"{self._state.dtype} {self._state.shape}")
        self._state[...] = arr
        self.iterations = int(it)

    # -- configuration --------------------------------------------------------

    def get_config(self):
        lr = self._learning_rate
        if isinstance(lr, LearningRateSchedule):
            lr = {"class_name": type(lr).__name__, "config": lr.get_config()}
        elif callable(lr):
            raise ValueError("a learning-rate callable that is not a LearningRateSchedule "
                             "cannot be saved")
        return {"name": self.name, "learning_rate": lr, "weight_decay": self.weight_decay,
                "clipnorm": self.clipnorm, "clipvalue": self.clipvalue}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        return f"{type(self).__name__}({self.get_config()})"


class SGD(Optimizer):
    """Gradient descent with optional (Nesterov) momentum.

    torch's formula: ``b = momentum * b + g; w -= lr * (g + momentum * b if
    nesterov else b)`` (b starts at g). Keras keeps the velocity with lr inside
    it (``v = momentum * v - lr * g``); the two agree for a constant learning
    rate and differ under a schedule.
    """

    _kind = "sgd"

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, weight_decay=None,
                 clipnorm=None, clipvalue=None, global_clipnorm=None, name=None):
        self.momentum, self.nesterov = float(momentum), bool(nesterov)
        super().__init__(learning_rate, weight_decay, clipnorm, clipvalue, global_clipnorm,
                         name)

    def _own_hyper(self):
        return {"momentum": self.momentum, "nesterov": self.nesterov}

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}


class Adagrad(Optimizer):
    """Per-parameter rates from the sum of squared gradients.

    torch's formula: ``s += g**2; w -= lr * g / (sqrt(s) + epsilon)``, s
    starting at ``initial_accumulator_value``. Keras puts epsilon inside the
    square root (``sqrt(s + epsilon)``). torch's defaults differ too
    (initial_accumulator_value=0, eps=1e-10, lr=0.01).
    """

    _kind = "adagrad"

    def __init__(self, learning_rate=0.001, initial_accumulator_value=0.1, epsilon=1e-7,
                 weight_decay=None, clipnorm=None, clipvalue=None, global_clipnorm=None,
                 name=None):
        self.initial_accumulator_value = float(initial_accumulator_value)
        self.epsilon = float(epsilon)
        super().__init__(learning_rate, weight_decay, clipnorm, clipvalue, global_clipnorm,
                         name)

    def _own_hyper(self):
        return {"initial_accumulator_value": self.initial_accumulator_value,
                "epsilon": self.epsilon}

    def get_config(self):
        return {**super().get_config(), **self._own_hyper()}


class Adadelta(Optimizer):
    """Adadelta (Zeiler 2012), the same formula in torch and Keras:
    ``a = rho a + (1 - rho) g**2; d = sqrt(u + eps) / sqrt(a + eps) * g;
    u = rho u + (1 - rho) d**2; w -= lr * d``. torch's default lr is 1.0,
    Keras' (and this class's) 0.001."""

    _kind = "adadelta"

    def __init__(self, learning_rate=0.001, rho=0.95, epsilon=1e-7, weight_decay=None,
                 clipnorm=None, clipvalue=None, global_clipnorm=None, name=None):
        self.rho, self.epsilon = float(rho), float(epsilon)
        super().__init__(learning_rate, weight_decay, clipnorm, clipvalue, global_clipnorm,
                         name)

    def _own_hyper(self):
        return {"rho": self.rho, "epsilon": self.epsilon}

    def get_config(self):
        return {**super().get_config(), **self._own_hyper()}


class RMSprop(Optimizer):
    """RMSprop, optionally centered and with momentum.

    torch's formula (``rho`` is torch's ``alpha``): ``a = rho a + (1 - rho)
    g**2``; centered: ``m = rho m + (1 - rho) g`` and the denominator is
    ``sqrt(a - m**2) + epsilon``, else ``sqrt(a) + epsilon``; with momentum
    ``b = momentum b + g / denom; w -= lr b``, else ``w -= lr g / denom``.
    Keras puts epsilon inside the square root and lr inside the momentum
    buffer.
    """

    _kind = "rmsprop"

    def __init__(self, learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7,
                 centered=False, weight_decay=None, clipnorm=None, clipvalue=None,
                 global_clipnorm=None, name=None):
        self.rho, self.momentum, self.epsilon = float(rho), float(momentum), float(epsilon)
        self.centered = bool(centered)
        super().__init__(learning_rate, weight_decay, clipnorm, clipvalue, global_clipnorm,
                         name)

    def _own_hyper(self):
        return {"rho": self.rho, "momentum": self.momentum, "epsilon": self.epsilon,
                "centered": self.centered}

    def get_config(self):
        return {**super().get_config(), **self._own_hyper()}


class Adam(Optimizer):
    """Adam (Kingma & Ba), optionally AMSGrad.

    torch's formula by default: ``m = beta_1 m + (1 - beta_1) g; v = beta_2 v
    + (1 - beta_2) g**2; w -= lr / (1 - beta_1**t) * m / (sqrt(v) / sqrt(1 -
    beta_2**t) + epsilon)`` (AMSGrad: the running maximum of v in place of v).
    ``epsilon_hat=True`` takes Keras' and scikit-learn's form instead: epsilon
    added to sqrt(v) before the bias correction (the paper's "epsilon hat"),
    ``w -= lr sqrt(1 - beta_2**t) / (1 - beta_1**t) * m / (sqrt(v) +
    epsilon)``, whose effective epsilon is sqrt(1 - beta_2**t) times smaller
    (and which costs one division a weight instead of two). ``weight_decay``
    here is L2 (torch's Adam); use :class:`AdamW` for decoupled decay.
    """

    _kind = "adam"

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 amsgrad=False, weight_decay=None, clipnorm=None, clipvalue=None,
                 global_clipnorm=None, name=None, epsilon_hat=False):
        self.beta_1, self.beta_2 = float(beta_1), float(beta_2)
        self.epsilon, self.amsgrad = float(epsilon), bool(amsgrad)
        self.epsilon_hat = bool(epsilon_hat)
        super().__init__(learning_rate, weight_decay, clipnorm, clipvalue, global_clipnorm,
                         name)

    def _own_hyper(self):
        return {"beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon,
                "amsgrad": self.amsgrad, "epsilon_hat": self.epsilon_hat}

    def get_config(self):
        return {**super().get_config(), **self._own_hyper()}


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter): before each
    Adam step ``w *= 1 - lr * weight_decay`` (torch's AdamW and Keras' agree;
    the default weight_decay is Keras' 0.004, torch's is 0.01)."""

    _kind = "adamw"

    def __init__(self, learning_rate=0.001, weight_decay=0.004, beta_1=0.9, beta_2=0.999,
                 epsilon=1e-7, amsgrad=False, clipnorm=None, clipvalue=None,
                 global_clipnorm=None, name=None, epsilon_hat=False):
        super().__init__(learning_rate, beta_1, beta_2, epsilon, amsgrad, weight_decay,
                         clipnorm, clipvalue, global_clipnorm, name, epsilon_hat)


class Nadam(Optimizer):
    """Adam with Nesterov momentum (Dozat 2016), momentum schedule
    ``mu_t = beta_1 (1 - 0.5 * 0.96**(t * momentum_decay))``.

    torch's formula: ``w -= lr (1 - mu_t) / (1 - prod mu_1..t) * g / d + lr
    mu_{t+1} / (1 - prod mu_1..t+1) * m / d``, ``d = sqrt(v / (1 -
    beta_2**t)) + epsilon``. Keras' Nadam computes the same update (with
    momentum_decay fixed at 0.004); its weight_decay is decoupled, here L2.
    The running product of mu is kept in the state's last element, in the
    parameters' dtype (as torch keeps it in the default dtype).
    """

    _kind = "nadam"

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 momentum_decay=0.004, weight_decay=None, clipnorm=None, clipvalue=None,
                 global_clipnorm=None, name=None):
        self.beta_1, self.beta_2 = float(beta_1), float(beta_2)
        self.epsilon, self.momentum_decay = float(epsilon), float(momentum_decay)
        super().__init__(learning_rate, weight_decay, clipnorm, clipvalue, global_clipnorm,
                         name)

    def _own_hyper(self):
        return {"beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon,
                "momentum_decay": self.momentum_decay}

    def get_config(self):
        return {**super().get_config(), **self._own_hyper()}


_BY_NAME = {"sgd": SGD, "adagrad": Adagrad, "adadelta": Adadelta, "rmsprop": RMSprop,
            "adam": Adam, "adamw": AdamW, "nadam": Nadam}
_BY_CLASS = {cls.__name__: cls for cls in _BY_NAME.values()}


def deserialize_schedule(config):
    name = config.get("class_name")
    if name not in _SCHEDULES:
        raise ValueError(f"unknown learning-rate schedule {name!r}")
    return _SCHEDULES[name].from_config(config.get("config", {}))


def serialize(optimizer):
    """{"class_name": ..., "config": {...}}, JSON-able."""
    return {"class_name": type(optimizer).__name__, "config": optimizer.get_config()}


def deserialize(config):
    name = config.get("class_name")
    cls = _BY_CLASS.get(name) or _BY_NAME.get(str(name).lower())
    if cls is None:
        raise ValueError(f"unknown optimizer {name!r}")
    return cls.from_config(config.get("config", {}))


def get(identifier):
    """An optimizer from a Keras name ("adam", "sgd", ...), a class name, a
    serialized dict, or an instance (returned as is). A name gives a fresh
    optimizer with the defaults."""
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, str):
        cls = _BY_NAME.get(identifier.lower()) or _BY_CLASS.get(identifier)
        if cls is None:
            raise ValueError(f"unknown optimizer {identifier!r}; the optimizers are "
                             f"{', '.join(sorted(_BY_NAME))}")
        return cls()
    raise TypeError(f"cannot interpret {identifier!r} as an optimizer")
