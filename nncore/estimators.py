"""scikit-learn style estimators: ``MLPClassifier``, ``MLPRegressor``, ``Perceptron``.

They follow scikit-learn's estimator conventions (``fit`` returns self,
``get_params``/``set_params`` read ``__init__``'s signature, nothing happens in
``__init__``, fitted attributes end in ``_``, ``NotFittedError`` before fit,
2-D finite X checked at every call), so they drop into scikit-learn's
``Pipeline``, ``GridSearchCV`` and ``clone`` -- without this module importing
scikit-learn (``__sklearn_tags__`` imports it lazily, and only scikit-learn
calls it).

The parameter names are scikit-learn's. Where the result differs from
scikit-learn's own MLP:

- ``alpha``: scikit-learn adds ``alpha / 2 * ||W||^2 / n_batch`` (weights,
  not biases) to each batch's loss. Here it is a Keras L2 regularizer with a
  fixed ``l2 = alpha / (2 * batch_size)``, so the last, smaller batch of an
  epoch is regularised as if it were full-sized.
- MLPRegressor: scikit-learn's loss is ``mean((y - p)^2) / 2``; the engine's
  is ``mean((y - p)^2)``. The estimator compensates exactly (l2 doubled, the
  SGD learning rate halved, Adam's epsilon doubled) and reports
  ``loss_curve_`` on scikit-learn's scale.
- Adam is scikit-learn's form (``Adam(epsilon_hat=True)``: epsilon added to
  sqrt(v) before the bias correction), to rounding. Weights start
  Glorot-uniform (scikit-learn's for non-logistic units; its logistic factor
  2 and uniform biases are not used: biases start at zero).
- Early stopping's validation split is random but not stratified.
- Multi-label classification (2-D y) is not supported by MLPClassifier.

>>> import numpy as np
>>> from nncore.estimators import Perceptron
>>> x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], np.float32)
>>> Perceptron(random_state=0).fit(x, [0, 0, 0, 1]).predict(x).tolist()
[0, 0, 0, 1]
"""
from __future__ import annotations

import inspect
import numbers
import warnings
from typing import Optional

import numpy as np

from nncore import _core, random

__all__ = ["MLPClassifier", "MLPRegressor", "Perceptron", "BernoulliRBM", "GaussianBernoulliRBM",
           "DBN", "NotFittedError",
           "ConvergenceWarning", "DataConversionWarning", "BaseEstimator"]


class NotFittedError(ValueError, AttributeError):
    """An estimator was used before ``fit`` (scikit-learn's exception has the same bases)."""


class ConvergenceWarning(UserWarning):
    """Training stopped at its iteration limit without converging."""


class DataConversionWarning(UserWarning):
    """The data was converted (e.g. a column-vector y was raveled)."""


_SK_TWINS = {}


def _twin(cls):
    """cls, or -- when scikit-learn is already imported (never imported here) -- a
    subclass of cls and of scikit-learn's class of the same name, so that
    ``except``/``pytest.raises``/warning filters written for either catch it."""
    import sys
    sk = sys.modules.get("sklearn.exceptions")
    if sk is None or not hasattr(sk, cls.__name__):
        return cls
    twin = _SK_TWINS.get(cls)
    if twin is None:
        twin = type(cls.__name__, (cls, getattr(sk, cls.__name__)),
                    {"__module__": cls.__module__, "__doc__": cls.__doc__})
        _SK_TWINS[cls] = twin
    return twin


# --------------------------------------------------------------------------
# The estimator protocol
# --------------------------------------------------------------------------

class BaseEstimator:
    """get_params/set_params from ``__init__``'s signature, as scikit-learn's."""

    _estimator_type: Optional[str] = None

    @classmethod
    def _get_param_names(cls):
        init = cls.__init__
        if init is object.__init__:
            return []
        params = [p for p in inspect.signature(init).parameters.values()
                  if p.name != "self" and p.kind != p.VAR_KEYWORD]
        for p in params:
            if p.kind == p.VAR_POSITIONAL:
                raise RuntimeError(f"{cls.__name__} must not take *args in __init__")
        return sorted(p.name for p in params)

    def get_params(self, deep=True):
        """The constructor parameters (and, with deep, those of nested estimators)."""
        out = {}
        for key in self._get_param_names():
            value = getattr(self, key)
            if deep and hasattr(value, "get_params") and not isinstance(value, type):
                for k, v in value.get_params().items():
                    out[f"{key}__{k}"] = v
            out[key] = value
        return out

    def set_params(self, **params):
        """Set constructor parameters (``name__sub`` reaches a nested estimator)."""
        if not params:
            return self
        valid = self.get_params(deep=True)
        nested = {}
        for key, value in params.items():
            key, delim, sub = key.partition("__")
            if key not in valid:
                raise ValueError(f"Invalid parameter {key!r} for estimator {self}. Valid "
                                 f"parameters are: {sorted(self._get_param_names())!r}.")
            if delim:
                nested.setdefault(key, {})[sub] = value
            else:
                setattr(self, key, value)
                valid[key] = value
        for key, sub in nested.items():
            valid[key].set_params(**sub)
        return self

    def __repr__(self):
        defaults = {p.name: p.default for p in inspect.signature(type(self).__init__)
                    .parameters.values() if p.default is not p.empty}
        changed = []
        for k, v in self.get_params(deep=False).items():
            d = defaults.get(k, inspect.Parameter.empty)
            same = False
            try:
                same = bool(v is d or (type(v) is type(d) and v == d))
            except Exception:
                pass
            if not same:
                changed.append(f"{k}={v!r}")
        return f"{type(self).__name__}({', '.join(changed)})"

    def __sklearn_is_fitted__(self):
        return hasattr(self, "n_features_in_")

    def __sklearn_tags__(self):
        # Called only by scikit-learn, so importing it here adds no dependency.
        from sklearn.utils import (ClassifierTags, InputTags, RegressorTags, Tags,
                                   TargetTags)
        tags = Tags(estimator_type=self._estimator_type, target_tags=TargetTags(required=True),
                    transformer_tags=None, regressor_tags=None, classifier_tags=None,
                    input_tags=InputTags())
        if self._estimator_type == "classifier":
            tags.classifier_tags = ClassifierTags(multi_class=True, multi_label=False)
        elif self._estimator_type == "regressor":
            tags.regressor_tags = RegressorTags()
            tags.target_tags.multi_output = True
            tags.target_tags.single_output = True
        return tags


class ClassifierMixin:
    _estimator_type = "classifier"

    def score(self, X, y, sample_weight=None):
        """Mean accuracy of ``predict(X)`` against y."""
        y = np.asarray(y)
        pred = self.predict(X)
        hits = (pred == y.reshape(pred.shape)).astype(np.float64)
        return float(np.average(hits, weights=sample_weight))


class RegressorMixin:
    _estimator_type = "regressor"

    def score(self, X, y, sample_weight=None):
        """The coefficient of determination R^2 of ``predict(X)`` (averaged over outputs)."""
        return r2_score(y, self.predict(X), sample_weight)


def r2_score(y_true, y_pred, sample_weight=None) -> float:
    """R^2 = 1 - SS_res / SS_tot, uniformly averaged over outputs (scikit-learn's)."""
    t = np.asarray(y_true, np.float64)
    p = np.asarray(y_pred, np.float64).reshape(t.shape)
    if t.ndim == 1:
        t, p = t[:, None], p[:, None]
    w = np.ones(len(t)) if sample_weight is None else np.asarray(sample_weight, np.float64)
    w = w[:, None]
    ss_res = (w * (t - p) ** 2).sum(axis=0)
    ss_tot = (w * (t - np.average(t, axis=0, weights=w[:, 0])) ** 2).sum(axis=0)
    ok = ss_tot != 0
    scores = np.ones(t.shape[1])
    scores[ok] = 1 - ss_res[ok] / ss_tot[ok]
    scores[~ok & (ss_res != 0)] = 0.0
    return float(scores.mean())


# --------------------------------------------------------------------------
# Input validation (once per call)
# --------------------------------------------------------------------------

def _all_finite(a: np.ndarray) -> bool:
    # A NaN or an infinity anywhere makes the sum NaN or infinite, so a finite
    # sum (one pass, no temporary array) settles it, as scikit-learn checks;
    # only a sum that is not finite (maybe finite values overflowing) needs
    # the element-wise test.
    with np.errstate(over="ignore", invalid="ignore"):
        total = np.add.reduce(a, axis=None)
    return bool(np.isfinite(total)) or bool(np.isfinite(a).all())


def _check_X(est, X, reset: bool, dtype, keep_u8: bool = False) -> np.ndarray:
    """X validated, as a C-contiguous array of dtype (uint8 kept as it is with
    keep_u8: the MLPs train on it without a float copy). Only float input is
    checked for NaN and infinity: integers and bools are always finite."""
    name = type(est).__name__
    if X is None:
        raise ValueError(f"{name} needs X, got None")
    if hasattr(X, "toarray") or type(X).__module__.startswith("scipy.sparse"):
        raise TypeError(f"{name} does not support sparse input; pass a dense array "
                        f"(X.toarray())")
    arr = np.asarray(X)
    if arr.dtype.kind == "c":
        raise ValueError("Complex data not supported")
    if arr.dtype.kind == "O":
        arr = arr.astype(np.float64)  # a dict or string in it raises TypeError here
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"{name} takes numeric X, got dtype {arr.dtype}")
    if arr.ndim != 2:
        raise ValueError(f"Expected 2D array, got {arr.ndim}D array instead: X has shape "
                         f"{arr.shape}. Reshape your data either using X.reshape(-1, 1) if "
                         f"your data has a single feature or X.reshape(1, -1) if it contains "
                         f"a single sample.")
    if arr.shape[0] < 1:
        raise ValueError(f"Found array with 0 sample(s) (shape={arr.shape}) while a minimum "
                         f"of 1 is required.")
    if arr.shape[1] < 1:
        raise ValueError(f"Found array with 0 feature(s) (shape={arr.shape}) while a minimum "
                         f"of 1 is required.")
    kind = arr.dtype.kind
    arr = np.ascontiguousarray(arr, dtype=np.uint8 if keep_u8 and arr.dtype == np.uint8
                               else dtype)
    if kind == "f" and not _all_finite(arr):
        raise ValueError("Input X contains NaN or infinity.")
    if reset:
        est.n_features_in_ = arr.shape[1]
    elif arr.shape[1] != est.n_features_in_:
        raise ValueError(f"X has {arr.shape[1]} features, but {name} is expecting "
                         f"{est.n_features_in_} features as input.")
    return arr


def _check_y(est, y, n: int, classifier: bool) -> np.ndarray:
    if y is None:
        raise ValueError(f"{type(est).__name__} requires y to be passed, but the target y "
                         f"is None")
    y = np.asarray(y)
    if len(y) != n:
        raise ValueError(f"Found input variables with inconsistent numbers of samples: "
                         f"[{n}, {len(y)}] (X has {n} samples, y has {len(y)})")
    if classifier:
        if y.ndim == 2 and y.shape[1] == 1:
            warnings.warn("A column-vector y was passed when a 1d array was expected. Please "
                          "change the shape of y to (n_samples, ), for example using "
                          "ravel().", _twin(DataConversionWarning), stacklevel=3)
            y = y.ravel()
        if y.ndim != 1:
            raise ValueError(f"y should be a 1d array of class labels, got shape {y.shape} "
                             f"(multi-label/multi-output targets are not supported)")
        if y.dtype.kind == "O":
            kinds = {type(v) for v in y.tolist()}
            if any(issubclass(k, float) for k in kinds) and \
                    any(not issubclass(k, (int, float, np.number)) for k in kinds):
                raise ValueError(f"Unknown label type: mixed types {sorted(map(str, kinds))}")
        if y.dtype.kind == "f":
            if not np.isfinite(y).all():
                raise ValueError("Input y contains NaN or infinity.")
            if np.any(y != np.round(y)):
                raise ValueError("Unknown label type: continuous. Classifiers take discrete "
                                 "class labels; use MLPRegressor for continuous targets.")
        return y
    if y.dtype.kind not in "biuf":
        if y.dtype.kind == "O":
            y = y.astype(np.float64)
        else:
            raise ValueError(f"y has dtype {y.dtype}; a regressor takes numeric targets")
    if y.ndim not in (1, 2):
        raise ValueError(f"y must be 1-D or 2-D, got shape {y.shape}")
    y = y.astype(np.float64)
    if not np.isfinite(y).all():
        raise ValueError("Input y contains NaN or infinity.")
    return y


def _check_fitted(est, attr="n_features_in_"):
    if not hasattr(est, attr):
        raise _twin(NotFittedError)(f"This {type(est).__name__} instance is not fitted yet. Call "
                             f"'fit' with appropriate arguments before using this estimator.")


def _seed_from(random_state) -> int:
    """A 64-bit seed from scikit-learn's random_state (None, an int, or a RandomState)."""
    from nncore.model import derive_seed
    if random_state is None:
        return derive_seed(*random.next_key())
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        return derive_seed(int(random_state) % (1 << 64))
    if isinstance(random_state, np.random.RandomState):
        return derive_seed(int(random_state.randint(np.iinfo(np.int32).max)))
    if isinstance(random_state, np.random.Generator):
        return derive_seed(int(random_state.integers(1 << 62)))
    raise ValueError(f"random_state must be None, an int or a numpy RandomState, got "
                     f"{random_state!r}")


def _classes_of(y, classes=None):
    if classes is None:
        return np.unique(y)
    classes = np.unique(np.asarray(classes))
    unseen = np.setdiff1d(np.unique(y), classes)
    if unseen.size:
        raise ValueError(f"y holds labels {unseen.tolist()} not in classes={classes.tolist()}")
    return classes


def _encode(classes, y):
    k = len(classes)
    if k and y.dtype.kind in "iu" and classes.dtype.kind in "iu" and y.size \
            and classes[0] == 0 and classes[-1] == k - 1:
        # classes are sorted and unique, so they are 0 .. k - 1: a label is its
        # own index (no search over the classes for each sample)
        if y.min() >= 0 and y.max() < k:
            return y.astype(np.int64)
    idx = np.searchsorted(classes, y)
    idx = np.clip(idx, 0, len(classes) - 1)
    if np.any(classes[idx] != y):
        bad = y[classes[idx] != y][0]
        raise ValueError(f"y holds the label {bad!r}, not among the classes seen first "
                         f"{classes.tolist()}")
    return idx.astype(np.int64)


def _int_param(est, name, minimum, allow_none=False):
    v = getattr(est, name)
    if v is None and allow_none:
        return None
    if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {v!r}")
    return int(v)


def _float_param(name, v, lo=None, hi=None, lo_open=False, hi_open=False):
    if isinstance(v, bool) or not isinstance(v, numbers.Real) or not np.isfinite(v):
        raise ValueError(f"{name} must be a finite number, got {v!r}")
    v = float(v)
    if lo is not None and (v < lo or (lo_open and v == lo)):
        raise ValueError(f"{name} must be {'>' if lo_open else '>='} {lo}, got {v}")
    if hi is not None and (v > hi or (hi_open and v == hi)):
        raise ValueError(f"{name} must be {'<' if hi_open else '<='} {hi}, got {v}")
    return v


# --------------------------------------------------------------------------
# Multi-layer perceptrons
# --------------------------------------------------------------------------

_SK_ACTIVATIONS = {"identity": "linear", "logistic": "sigmoid", "tanh": "tanh", "relu": "relu"}


def _engine_l2(l2):
    """Keras' L2 regularizer (its penalty and gradient run in the engine, one pass)."""
    from nncore import regularizers
    return regularizers.L2(l2)


class _BaseMLP(BaseEstimator):
    """The shared fit loop: one ``Sequential.fit`` epoch per iteration, scikit-learn's
    stopping rules (tol, n_iter_no_change, early_stopping) between epochs. A uint8
    X (images as loaded) is trained on as it is, with no float copy (the same
    bits as X.astype(dtype)); integer and bool X need no NaN check."""

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10,
                 dtype="float32"):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.dtype = dtype

    # -- what a subclass says -------------------------------------------------
    _loss_scale = 1.0  # engine loss / scikit-learn loss

    def _validate_params(self):
        hidden = self.hidden_layer_sizes
        if isinstance(hidden, numbers.Integral):
            hidden = (hidden,)
        hidden = tuple(hidden)
        if any(isinstance(h, bool) or not isinstance(h, numbers.Integral) or h < 1
               for h in hidden):
            raise ValueError(f"hidden_layer_sizes must hold positive integers, got "
                             f"{self.hidden_layer_sizes!r}")
        if self.activation not in _SK_ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(_SK_ACTIVATIONS)}, got "
                             f"{self.activation!r}")
        if self.solver not in ("adam", "sgd"):
            raise ValueError(f"solver must be 'adam' or 'sgd', got {self.solver!r} "
                             f"(lbfgs is not offered)")
        if self.learning_rate not in ("constant", "invscaling", "adaptive"):
            raise ValueError(f"learning_rate must be 'constant', 'invscaling' or 'adaptive', "
                             f"got {self.learning_rate!r}")
        _float_param("alpha", self.alpha, 0)
        _float_param("learning_rate_init", self.learning_rate_init, 0, lo_open=True)
        _float_param("tol", self.tol, 0)
        _float_param("momentum", self.momentum, 0, 1)
        _float_param("validation_fraction", self.validation_fraction, 0, 1, True, True)
        for b in ("beta_1", "beta_2"):
            _float_param(b, getattr(self, b), 0, 1, hi_open=True)
        _float_param("epsilon", self.epsilon, 0, lo_open=True)
        _int_param(self, "max_iter", 1)
        _int_param(self, "n_iter_no_change", 1)
        if self.batch_size != "auto":
            _int_param(self, "batch_size", 1)
        if np.dtype(self.dtype) not in (np.float32, np.float64):
            raise ValueError(f"dtype must be float32 or float64, got {self.dtype!r}")
        return hidden

    def _batch(self, n):
        if self.batch_size == "auto":
            return min(200, n)
        if self.batch_size > n:
            warnings.warn(f"Got `batch_size` less than 1 or larger than sample size. It is "
                          f"going to be clipped", UserWarning, stacklevel=3)
        return min(int(self.batch_size), n)

    def _make_optimizer(self):
        from nncore import optimizers
        lr = float(self.learning_rate_init)
        if self.solver == "sgd":
            return optimizers.SGD(learning_rate=lr / self._loss_scale,
                                  momentum=float(self.momentum),
                                  nesterov=bool(self.nesterovs_momentum) and self.momentum > 0)
        return optimizers.Adam(learning_rate=lr, beta_1=float(self.beta_1),
                               beta_2=float(self.beta_2),
                               epsilon=float(self.epsilon) * self._loss_scale,
                               epsilon_hat=True)

    def _build(self, hidden, n_in, n_out, batch, seed):
        from nncore import Sequential
        from nncore.layers import Dense
        l2 = float(self.alpha) * self._loss_scale / (2.0 * batch)
        reg = _engine_l2(l2) if l2 > 0 else None
        act = _SK_ACTIVATIONS[self.activation]
        layers = []
        for i, h in enumerate(hidden):
            layers.append(Dense(int(h), activation=act, kernel_regularizer=reg,
                                input_dim=n_in if i == 0 else None))
        layers.append(Dense(n_out, activation=self._out_activation(n_out),
                            kernel_regularizer=reg, input_dim=None if hidden else n_in))
        model = Sequential(layers, seed=seed, dtype=self.dtype)
        model.compile(optimizer=self._make_optimizer(), loss=self._loss_name(n_out))
        model.build((n_in,))
        self._model = model
        self._arch = (tuple(int(h) for h in hidden), int(n_in), int(n_out), int(batch), seed)

    # -- the loop -------------------------------------------------------------
    def _fit(self, X, y, incremental=False, classes=None):
        hidden = self._validate_params()
        if incremental and self.early_stopping:
            # as scikit-learn: one epoch at a time has no held-out score to stop on
            raise ValueError("partial_fit does not support early_stopping=True")
        first = not (incremental or self.warm_start) or not hasattr(self, "_model")
        dtype = np.dtype(self.dtype)
        X = _check_X(self, X, reset=first, dtype=dtype, keep_u8=True)
        y_enc, n_out = self._prepare_y(y, len(X), first, classes)
        if first:
            self._seed = _seed_from(self.random_state)
            self._build(hidden, X.shape[1], n_out, self._batch(len(X)), self._seed)
            self.n_iter_ = 0
            self.t_ = 0
            self.loss_curve_ = []
            self._no_improvement_count = 0
            self.best_loss_ = np.inf
            self.validation_scores_ = [] if self.early_stopping else None
            self.best_validation_score_ = -np.inf if self.early_stopping else None
            self._lr = float(self.learning_rate_init)
        elif self._arch[2] != n_out:
            raise ValueError(f"y has {n_out} outputs/classes; the fitted network has "
                             f"{self._arch[2]} (fit afresh, warm_start=False)")
        model = self._model
        early = bool(self.early_stopping) and not incremental
        X_val = y_val = None
        if early:
            from nncore.data import train_test_split
            X, X_val, y_enc, y_val = train_test_split(
                X, y_enc, test_size=self.validation_fraction, seed=self._seed % (1 << 63))
            y_val = self._decode_for_score(y_val)
            best_weights = None
        batch = self._batch(len(X))
        max_iter = 1 if incremental else int(self.max_iter)
        n_iter_no_change = int(self.n_iter_no_change)
        tol = float(self.tol)
        stopped = False
        for _ in range(max_iter):
            epoch = self.n_iter_
            hist = model.fit(X, y_enc, batch_size=batch, epochs=epoch + 1, initial_epoch=epoch,
                             shuffle=bool(self.shuffle), verbose=0)
            loss = hist.history["loss"][-1] / self._loss_scale
            self.n_iter_ += 1
            self.t_ += len(X)
            self.loss_curve_.append(float(loss))
            self.loss_ = float(loss)
            if self.verbose:
                print(f"Iteration {self.n_iter_}, loss = {loss:.8f}")
            # scikit-learn's _update_no_improvement_count
            if early:
                score = self._score_encoded(X_val, y_val)
                self.validation_scores_.append(score)
                if self.verbose:
                    print(f"Validation score: {score:f}")
                if score < self.best_validation_score_ + tol:
                    self._no_improvement_count += 1
                else:
                    self._no_improvement_count = 0
                if score > self.best_validation_score_:
                    self.best_validation_score_ = score
                    best_weights = model.get_flat_weights()
            else:
                if loss > self.best_loss_ - tol:
                    self._no_improvement_count += 1
                else:
                    self._no_improvement_count = 0
                if loss < self.best_loss_:
                    self.best_loss_ = float(loss)
            if self.solver == "sgd" and self.learning_rate == "invscaling":
                self._set_lr(float(self.learning_rate_init) / (self.t_ + 1) ** self.power_t)
            if self._no_improvement_count > n_iter_no_change:
                what = "Validation score" if early else "Training loss"
                msg = (f"{what} did not improve more than tol={tol:f} for "
                       f"{n_iter_no_change} consecutive epochs.")
                if self.solver == "sgd" and self.learning_rate == "adaptive" and \
                        self._lr > 1e-6:
                    self._set_lr(self._lr / 5.0)
                    self._no_improvement_count = 0
                    if self.verbose:
                        print(msg + f" Setting learning rate to {self._lr:f}")
                else:
                    if self.verbose:
                        print(msg + " Stopping.")
                    stopped = True
                    break
        if not stopped and not incremental and self.n_iter_ >= max_iter and \
                self._no_improvement_count <= n_iter_no_change:
            warnings.warn(f"Stochastic Optimizer: Maximum iterations ({max_iter}) reached and "
                          f"the optimization hasn't converged yet.", _twin(ConvergenceWarning),
                          stacklevel=3)
        if early and best_weights is not None:
            model.set_flat_weights(best_weights)
        if early:
            self.best_loss_ = None
        self._sync()
        return self

    def _set_lr(self, lr):
        self._lr = lr
        self._model.optimizer.learning_rate = lr / (self._loss_scale if self.solver == "sgd"
                                                    else 1.0)

    def _sync(self):
        weights = self._model.get_weights()
        self.coefs_ = [w.astype(np.float64) for w in weights[0::2]]
        self.intercepts_ = [b.astype(np.float64) for b in weights[1::2]]
        self.n_layers_ = len(self.coefs_) + 1
        self.n_outputs_ = self._arch[2]
        self.out_activation_ = {"sigmoid": "logistic", "softmax": "softmax",
                                "linear": "identity"}[self._out_activation(self._arch[2])]

    def _forward(self, X):
        _check_fitted(self, "_model")
        X = _check_X(self, X, reset=False, dtype=np.dtype(self.dtype), keep_u8=True)
        return self._model.predict(X, batch_size=max(len(X), 1))

    # -- pickling: the model holds engine objects, so it travels as arrays ---
    def __getstate__(self):
        state = self.__dict__.copy()
        model = state.pop("_model", None)
        if model is not None:
            state["_model_weights"] = model.get_weights()
            state["_opt_state"] = model.optimizer.get_state() if model.optimizer.built else None
            state["_opt_lr"] = model.optimizer.learning_rate
        return state

    def __setstate__(self, state):
        weights = state.pop("_model_weights", None)
        opt_state = state.pop("_opt_state", None)
        opt_lr = state.pop("_opt_lr", None)
        self.__dict__.update(state)
        if weights is not None:
            hidden, n_in, n_out, batch, seed = self._arch
            self._build(hidden, n_in, n_out, batch, seed)
            self._model.set_weights(weights)
            if opt_state is not None:
                self._model.optimizer.set_state(opt_state)
            self._model.optimizer.learning_rate = opt_lr

    def fit(self, X, y):
        """Train from scratch (or on, with warm_start) for up to max_iter epochs."""
        return self._fit(X, y, incremental=False)


class MLPClassifier(ClassifierMixin, _BaseMLP):
    """A multi-layer perceptron classifier (softmax output, or one sigmoid for two classes).

    scikit-learn's parameters; see the module's notes for where results differ.
    ``dtype`` (not a scikit-learn parameter) chooses the engine's precision.
    """

    def _out_activation(self, n_out):
        return "sigmoid" if n_out == 1 else "softmax"

    def _loss_name(self, n_out):
        return "binary_crossentropy" if n_out == 1 else "sparse_categorical_crossentropy"

    def _prepare_y(self, y, n, first, classes):
        y = _check_y(self, y, n, classifier=True)
        if first:
            cls = _classes_of(y, classes)
            if len(cls) < 2:
                raise ValueError(f"{type(self).__name__} needs samples of at least 2 classes; "
                                 f"got 1 class ({cls.tolist()})")
            self.classes_ = cls
        elif classes is not None and not np.array_equal(np.unique(classes), self.classes_):
            raise ValueError(f"classes={np.unique(classes).tolist()} differs from the classes "
                             f"of the first call {self.classes_.tolist()}")
        idx = _encode(self.classes_, y)
        if len(self.classes_) == 2:
            return idx.astype(np.dtype(self.dtype))[:, None], 1
        return idx, len(self.classes_)

    def _decode_for_score(self, y_enc):
        return np.asarray(y_enc).reshape(len(y_enc), -1)[:, 0].astype(np.int64)

    def _score_encoded(self, X, y_idx):
        p = self._model.predict(X, batch_size=max(len(X), 1))
        pred = (p[:, 0] > 0.5).astype(np.int64) if p.shape[1] == 1 else p.argmax(axis=1)
        return float(np.mean(pred == y_idx))

    def partial_fit(self, X, y, classes=None):
        """One epoch over (X, y); the first call needs ``classes`` (all the labels)."""
        if not hasattr(self, "_model"):
            if classes is None:
                raise ValueError("classes must be passed on the first call to partial_fit.")
        return self._fit(X, y, incremental=True, classes=classes)

    def predict_proba(self, X):
        """Class probabilities, (n_samples, n_classes), columns in ``classes_`` order."""
        p = self._forward(X).astype(np.float64)
        if p.shape[1] == 1:
            return np.hstack([1.0 - p, p])
        return p

    def predict_log_proba(self, X):
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X):
        """The most probable class of each sample."""
        p = self._forward(X)
        idx = (p[:, 0] > 0.5).astype(np.int64) if p.shape[1] == 1 else p.argmax(axis=1)
        return self.classes_[idx]


class MLPRegressor(RegressorMixin, _BaseMLP):
    """A multi-layer perceptron regressor (linear output, squared error).

    ``loss_curve_`` is on scikit-learn's scale, ``mean((y - p)^2) / 2`` (+ L2).
    """

    _loss_scale = 2.0

    def _out_activation(self, n_out):
        return "linear"

    def _loss_name(self, n_out):
        return "mse"

    def _prepare_y(self, y, n, first, classes):
        y = _check_y(self, y, n, classifier=False)
        y2 = y.reshape(n, -1)
        return np.ascontiguousarray(y2, dtype=np.dtype(self.dtype)), y2.shape[1]

    def _decode_for_score(self, y_enc):
        return y_enc

    def _score_encoded(self, X, y):
        return r2_score(y, self._model.predict(X, batch_size=max(len(X), 1)))

    def partial_fit(self, X, y):
        """One epoch over (X, y), continuing from the current weights."""
        return self._fit(X, y, incremental=True)

    def predict(self, X):
        """The network's outputs, (n_samples,) for one target."""
        p = self._forward(X).astype(np.float64)
        return p.ravel() if p.shape[1] == 1 else p


# --------------------------------------------------------------------------
# Rosenblatt's perceptron
# --------------------------------------------------------------------------

class Perceptron(ClassifierMixin, BaseEstimator):
    """Rosenblatt's perceptron: a step unit per class, trained by the perceptron rule.

    ``w += eta0 * (y - y_hat) * x`` and ``b += eta0 * (y - y_hat)`` for each
    sample in turn (not gradient descent: the step has no useful derivative),
    one engine call per epoch over a seeded permutation of the samples. More
    than two classes are learnt one-vs-rest. Training stops at the first
    epoch without a mistake (it has converged: the data are separated) or at
    ``max_iter`` epochs, with a ConvergenceWarning -- as on XOR, which no
    line separates. A uint8 X (images as loaded) is read as it is, one sample
    at a time, with no float copy (the same bits as X.astype(dtype)).

    Attributes: ``coef_`` (n_classes or 1, n_features), ``intercept_``,
    ``classes_``, ``n_iter_``, ``errors_`` (mistakes per epoch; the
    perceptron's learning curve), ``converged_``.
    """

    def __init__(self, *, fit_intercept=True, max_iter=1000, eta0=1.0, shuffle=True,
                 random_state=None, warm_start=False, verbose=0, dtype="float64"):
        self.fit_intercept = fit_intercept
        self.max_iter = max_iter
        self.eta0 = eta0
        self.shuffle = shuffle
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.dtype = dtype

    def fit(self, X, y, coef_init=None, intercept_init=None):
        """Learn the weights; returns self."""
        max_iter = _int_param(self, "max_iter", 1)
        eta0 = _float_param("eta0", self.eta0, 0, lo_open=True)
        dtype = np.dtype(self.dtype)
        if dtype not in (np.float32, np.float64):
            raise ValueError(f"dtype must be float32 or float64, got {self.dtype!r}")
        warm = bool(self.warm_start) and hasattr(self, "coef_")
        X = _check_X(self, X, reset=not warm, dtype=dtype, keep_u8=True)  # (read as is)
        y = _check_y(self, y, len(X), classifier=True)
        if warm:
            targets = _encode(self.classes_, y)
        else:
            classes = np.unique(y)
            if len(classes) < 2:
                raise ValueError(f"Perceptron needs samples of at least 2 classes; got 1 "
                                 f"class ({classes.tolist()})")
            self.classes_ = classes
            targets = _encode(classes, y)
        k = 1 if len(self.classes_) == 2 else len(self.classes_)
        T = (targets[:, None] == (np.arange(k) if k > 1 else np.array([1]))).astype(dtype)
        if warm:
            W = np.array(self.coef_, dtype=dtype, order="C")
            b = np.array(self.intercept_, dtype=dtype)
        else:
            W = np.zeros((k, X.shape[1]), dtype)
            b = np.zeros(k, dtype)
            if coef_init is not None:
                W[...] = np.asarray(coef_init, dtype).reshape(W.shape)
            if intercept_init is not None:
                b[...] = np.asarray(intercept_init, dtype).reshape(b.shape)
        seed = _seed_from(self.random_state)
        errors = []
        for epoch in range(max_iter):
            order = (random.permutation(len(X), seed=seed, stream=epoch) if self.shuffle
                     else None)
            mistakes = _core.perceptron_epoch(X, T, W, b if self.fit_intercept else None,
                                              eta0, order)
            errors.append(int(mistakes))
            if self.verbose:
                print(f"-- Epoch {epoch + 1}: {mistakes} mistakes")
            if mistakes == 0:
                break
        self.coef_ = W.astype(np.float64)
        self.intercept_ = b.astype(np.float64)
        self.errors_ = errors
        self.n_iter_ = len(errors)
        self.converged_ = errors[-1] == 0
        self.t_ = float(self.n_iter_ * len(X) + 1)
        if not self.converged_:
            warnings.warn(f"Perceptron did not converge: still {errors[-1]} mistakes per "
                          f"epoch after max_iter={max_iter} epochs (the classes may not be "
                          f"linearly separable, as in XOR).", _twin(ConvergenceWarning),
                          stacklevel=2)
        return self

    def decision_function(self, X):
        """w . x + b per sample: (n,) for two classes, (n, n_classes) otherwise."""
        _check_fitted(self, "coef_")
        X = _check_X(self, X, reset=False, dtype=np.float64)
        z = X @ self.coef_.T + self.intercept_
        return z[:, 0] if z.shape[1] == 1 else z

    def predict(self, X):
        """The step of the weighted sum: the class whose unit fires (argmax one-vs-rest)."""
        z = self.decision_function(X)
        idx = (z > 0).astype(np.int64) if z.ndim == 1 else z.argmax(axis=1)
        return self.classes_[idx]


# The restricted Boltzmann machines live in nncore.rbm; they are estimators too.
from nncore.rbm import DBN, BernoulliRBM, GaussianBernoulliRBM  # noqa: E402
