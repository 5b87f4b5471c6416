"""Restricted Boltzmann machines and deep belief networks.

:class:`BernoulliRBM` follows scikit-learn's ``sklearn.neural_network.BernoulliRBM``
(the same parameter names, attributes and methods, so it drops in), and adds
CD-k or persistent CD, momentum, weight decay and the reconstruction error of
every epoch. :class:`GaussianBernoulliRBM` takes real-valued inputs (standardise
them first: the visible units have unit variance). :class:`DBN` stacks RBMs,
pre-trains them greedily and hands the weights to an ``nncore.Sequential`` MLP
for supervised fine-tuning.

Each mini-batch update is one engine call (csrc/rbm_impl.h); its buffers are
allocated once per ``fit``. Products with a 0/1 operand (the sampled states,
and the data when it is binary, checked batch by batch as the engine indexes
it) are computed as sums of the selected weight rows (csrc/rbm_bin.h), a
fraction of a dense product's work at the usual densities; other data takes
the dense GEMM, with the same results up to rounding. Every draw comes from the engine's Philox
generator keyed by the seed, the update number and the element, so a seed
reproduces a run bit for bit at any thread count. Streams under one seed:
0 initial weights, ``step << 16 | d`` (step >= 1) the draws of update
``step``, ``2**63 | n << 16`` the n-th ``gibbs`` call, ``3 << 62 | n`` the
bits ``score_samples`` flips.

>>> import numpy as np, nncore
>>> (x, _), _ = nncore.datasets.load_digits16()
>>> rbm = BernoulliRBM(n_components=64, batch_size=64, n_iter=2, random_state=0)
>>> h = rbm.fit(x[:2000]).transform(x[:5])            # hidden probabilities
>>> h.shape, len(rbm.reconstruction_errors_)
((5, 64), 2)
"""
from __future__ import annotations

import inspect
import itertools
import sys
import time
from typing import List, Optional, Sequence

import numpy as np

from nncore import _core, random

__all__ = ["BernoulliRBM", "GaussianBernoulliRBM", "DBN"]

_SIGMOID = _core.ACTIVATIONS["sigmoid"]
_MAX_STEP = 1 << 46          # update streams (step << 16 | d) stay below 2**62
_GIBBS_STREAMS = 1 << 63
_SCORE_STREAMS = 3 << 62


def _resolve_seed(random_state) -> int:
    """A 64-bit seed from an int, None (the global sequence) or a NumPy generator."""
    from nncore.model import derive_seed
    if random_state is None:
        return derive_seed(*random.next_key())
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(0, 2 ** 63, dtype=np.int64))
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(0, 2 ** 63))
    if isinstance(random_state, bool) or not isinstance(random_state, (int, np.integer)):
        raise TypeError(f"random_state must be None, an int or a NumPy generator, "
                        f"got {random_state!r}")
    if not 0 <= int(random_state) < 2 ** 64:
        raise ValueError(f"random_state must be in [0, 2**64), got {random_state}")
    return int(random_state)


class _Params:
    """scikit-learn's get_params/set_params, read from the constructor's signature."""

    @classmethod
    def _param_names(cls) -> List[str]:
        sig = inspect.signature(cls.__init__)
        return [p.name for p in sig.parameters.values()
                if p.name != "self" and p.kind != p.VAR_KEYWORD]

    def get_params(self, deep=True):
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params):
        valid = self._param_names()
        for key, value in params.items():
            if key not in valid:
                raise ValueError(f"invalid parameter {key!r} for {type(self).__name__}; "
                                 f"valid: {', '.join(valid)}")
            setattr(self, key, value)
        return self

    def __repr__(self):
        sig = inspect.signature(type(self).__init__)
        args = [f"{n}={getattr(self, n)!r}" for n in self._param_names()
                if getattr(self, n) != sig.parameters[n].default]
        return f"{type(self).__name__}({', '.join(args)})"


class BernoulliRBM(_Params):
    """Bernoulli restricted Boltzmann machine, trained by contrastive divergence.

    Args (scikit-learn's names and defaults first):
        n_components: hidden units.
        learning_rate: step size; the gradient is the batch mean, as in scikit-learn.
        batch_size: samples per update.
        n_iter: epochs of ``fit``.
        verbose: print the pseudo-likelihood and reconstruction error per epoch.
        random_state: int seed, NumPy generator or None (the global seed sequence).
        cd_k: Gibbs steps in the negative phase (CD-k / PCD-k).
        persistent: persistent CD (scikit-learn's method) when True, plain CD-k when False.
        momentum: in [0, 1); 0 is plain SGD.
        weight_decay: L2 coefficient on the weights (not the biases).
        monitor: record the reconstruction error of every epoch (with PCD this
            costs one more product per update).
        dtype: "float32" (the fast path) or "float64".

    Attributes (after fit): ``components_`` (n_components, n_features), a view
    of the weights ``W`` = ``components_.T`` (n_features, n_components, a Dense
    kernel's layout); ``intercept_hidden_``, ``intercept_visible_``,
    ``h_samples_`` (the persistent chain), ``n_features_in_``,
    ``reconstruction_errors_`` (mean squared error per input per epoch) and
    ``n_updates_``.
    """

    _visible = "bernoulli"

    def __init__(self, n_components=256, *, learning_rate=0.1, batch_size=10, n_iter=10,
                 verbose=0, random_state=None, cd_k=1, persistent=True, momentum=0.0,
                 weight_decay=0.0, monitor=True, dtype="float32"):
        self.n_components = n_components
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.n_iter = n_iter
        self.verbose = verbose
        self.random_state = random_state
        self.cd_k = cd_k
        self.persistent = persistent
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.monitor = monitor
        self.dtype = dtype

    # ------------------------------------------------------------ internals
    def _check_hyper(self):
        if not (isinstance(self.n_components, (int, np.integer)) and self.n_components > 0):
            raise ValueError(f"n_components must be a positive integer, got {self.n_components!r}")
        if not (isinstance(self.batch_size, (int, np.integer)) and self.batch_size > 0):
            raise ValueError(f"batch_size must be a positive integer, got {self.batch_size!r}")
        if not (isinstance(self.n_iter, (int, np.integer)) and self.n_iter >= 0):
            raise ValueError(f"n_iter must be an integer >= 0, got {self.n_iter!r}")
        if not (isinstance(self.cd_k, (int, np.integer)) and 1 <= self.cd_k <= _core.RBM_MAX_K):
            raise ValueError(f"cd_k must be an integer in [1, {_core.RBM_MAX_K}], got {self.cd_k!r}")
        if not (np.isfinite(self.learning_rate) and self.learning_rate > 0):
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate!r}")
        if not 0 <= self.momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {self.momentum!r}")
        if not (np.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay!r}")
        dt = np.dtype(self.dtype)
        if dt not in (np.float32, np.float64):
            raise TypeError(f"an RBM computes in float32 or float64, not {dt}")
        return dt

    def _as_x(self, X, dt) -> np.ndarray:
        X = np.asarray(X)
        if X.ndim > 2:  # images: one row per sample
            X = X.reshape(X.shape[0], -1)
        if X.ndim != 2:
            raise ValueError(f"X must be 2-D (samples, features), got shape {X.shape}")
        if X.dtype.kind not in "biuf":
            raise TypeError(f"X has dtype {X.dtype}; numbers are needed")
        X = np.ascontiguousarray(X, dtype=dt)
        if hasattr(self, "n_features_in_") and X.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {X.shape[1]} features, but this RBM was fitted "
                             f"with {self.n_features_in_}")
        return X

    def _init_params(self, n_features: int, dt) -> None:
        self._seed = _resolve_seed(self.random_state)
        nh = int(self.n_components)
        self.n_features_in_ = int(n_features)
        # scikit-learn's initialisation: N(0, 0.01) weights, zero biases
        self.W_ = np.ascontiguousarray(
            random.normal((n_features, nh), 0.0, 0.01, dtype=dt, seed=self._seed, stream=0))
        self.intercept_hidden_ = np.zeros(nh, dt)
        self.intercept_visible_ = np.zeros(n_features, dt)
        self.h_samples_ = np.zeros((int(self.batch_size), nh), dt)
        self._vel = None
        self.n_updates_ = 0
        self.reconstruction_errors_ = []
        self._gibbs_calls = itertools.count()
        self._score_calls = itertools.count()
        self._work = np.empty(0, dt)

    def _ready(self) -> bool:
        return hasattr(self, "W_")

    def _require_fitted(self) -> None:
        if not self._ready():
            raise RuntimeError(f"this {type(self).__name__} is not fitted yet; call fit first")

    @property
    def components_(self) -> np.ndarray:
        """The weights as scikit-learn lays them out: (n_components, n_features), a view."""
        self._require_fitted()
        return self.W_.T

    @components_.setter
    def components_(self, value) -> None:
        self._require_fitted()
        self.W_[...] = np.asarray(value).T

    def _update(self, batch: np.ndarray, dt) -> Optional[float]:
        """One engine call: a CD-k/PCD-k update on one batch."""
        m = batch.shape[0]
        nv, nh = self.W_.shape
        need = _core.rbm_work_size(m, nv, nh)
        if self._work.size < need:
            self._work = np.empty(need, dt)
        if self.persistent and self.h_samples_.shape[0] < m:
            grown = np.zeros((m, nh), dt)
            grown[:self.h_samples_.shape[0]] = self.h_samples_
            self.h_samples_ = grown
        if self.momentum and self._vel is None:
            self._vel = (np.zeros_like(self.W_), np.zeros_like(self.intercept_visible_),
                         np.zeros_like(self.intercept_hidden_))
        vel = self._vel if self.momentum else (None, None, None)
        if self.n_updates_ + 1 >= _MAX_STEP:
            raise RuntimeError("this RBM has run out of update numbers (2**46)")
        self.n_updates_ += 1
        return _core.rbm_update(
            batch, self.W_, self.intercept_visible_, self.intercept_hidden_, self._work,
            self.n_updates_, self._seed, visible=self._visible, cd_k=int(self.cd_k),
            persistent=bool(self.persistent), learning_rate=float(self.learning_rate),
            momentum=float(self.momentum), weight_decay=float(self.weight_decay),
            vel_w=vel[0], vel_bv=vel[1], vel_bh=vel[2],
            chain=self.h_samples_[:m] if self.persistent else None,
            want_recon=bool(self.monitor))

    # --------------------------------------------------------------- the API
    def fit(self, X, y=None):
        """Train for ``n_iter`` epochs of mini-batches, in order (as scikit-learn)."""
        dt = self._check_hyper()
        self.__dict__.pop("n_features_in_", None)  # a new fit may change the features
        X = self._as_x(X, dt)
        self._init_params(X.shape[1], dt)
        n, nv = X.shape
        bs = int(self.batch_size)
        for epoch in range(int(self.n_iter)):
            start = time.perf_counter()
            total = 0.0
            for lo in range(0, n, bs):
                err = self._update(X[lo:lo + bs], dt)
                if err is not None:
                    total += err
            if self.monitor:
                self.reconstruction_errors_.append(total / max(n * nv, 1))
            if self.verbose:
                pl = float(self.score_samples(X).mean())
                rec = (f", reconstruction error = {self.reconstruction_errors_[-1]:.4f}"
                       if self.monitor else "")
                print(f"[{type(self).__name__}] Iteration {epoch + 1}, pseudo-likelihood = "
                      f"{pl:.2f}{rec}, time = {time.perf_counter() - start:.2f}s",
                      file=sys.stdout)
        return self

    def partial_fit(self, X, y=None):
        """One update on X as a single batch (initialising the model on first use)."""
        dt = self._check_hyper()
        if not self._ready():
            X = self._as_x(X, dt)
            self._init_params(X.shape[1], dt)
        X = self._as_x(X, self.W_.dtype)
        err = self._update(X, self.W_.dtype)
        if err is not None:
            self.last_reconstruction_error_ = err / max(X.size, 1)
        return self

    def transform(self, X) -> np.ndarray:
        """Hidden unit probabilities p(h = 1 | v), (n_samples, n_components)."""
        self._require_fitted()
        X = self._as_x(X, self.W_.dtype)
        return _core.dense_forward(X, self.W_, self.intercept_hidden_, _SIGMOID)

    def fit_transform(self, X, y=None) -> np.ndarray:
        return self.fit(X).transform(X)

    def gibbs(self, v, n_steps: int = 1) -> np.ndarray:
        """``n_steps`` of block Gibbs sampling from v: h ~ p(h | v), then v ~ p(v | h).

        Returns the visible samples (0/1 values in the model's dtype; real
        values for Gaussian visibles). Each call uses fresh draws.
        """
        self._require_fitted()
        v = self._as_x(v, self.W_.dtype)
        stream = _GIBBS_STREAMS | (next(self._gibbs_calls) << 16)
        return _core.rbm_gibbs(v, self.W_, self.intercept_visible_, self.intercept_hidden_,
                               self._seed, stream, int(n_steps), self._visible)

    def _free_energy(self, v) -> np.ndarray:
        return _core.rbm_free_energy(v, self.W_, self.intercept_visible_,
                                     self.intercept_hidden_, self._visible)

    def score_samples(self, X) -> np.ndarray:
        """Pseudo-likelihood of each sample, as scikit-learn computes it.

        n_features * log sigmoid(F(v~) - F(v)), F the free energy and v~ the
        sample with one randomly chosen input flipped (a fresh choice each
        call: compare averages over many samples).
        """
        self._require_fitted()
        v = self._as_x(X, self.W_.dtype)
        m, nv = v.shape
        u = random.uniform((m,), dtype="float64", seed=self._seed,
                           stream=_SCORE_STREAMS | next(self._score_calls))
        col = np.minimum((u * nv).astype(np.int64), nv - 1)
        both = np.concatenate([v, v])
        rows = np.arange(m) + m
        both[rows, col] = 1 - both[rows, col]
        fe = self._free_energy(both).astype(np.float64)
        return -nv * np.logaddexp(0, fe[:m] - fe[m:])


class GaussianBernoulliRBM(BernoulliRBM):
    """RBM with real-valued (Gaussian, unit-variance) visible units and binary hidden ones.

    Standardise the inputs (zero mean, unit variance per feature, e.g. with
    ``nncore.data.StandardScaler``). The negative phase uses the visible
    means (noise-free reconstructions); ``gibbs`` adds unit Gaussian noise.
    ``score_samples`` is minus the free energy (the log-density up to the
    log partition function), since flipping a bit means nothing for real inputs.
    Gaussian RBMs want a smaller learning rate than Bernoulli ones.
    """

    _visible = "gaussian"

    def __init__(self, n_components=256, *, learning_rate=0.01, batch_size=10, n_iter=10,
                 verbose=0, random_state=None, cd_k=1, persistent=False, momentum=0.0,
                 weight_decay=0.0, monitor=True, dtype="float32"):
        super().__init__(n_components, learning_rate=learning_rate, batch_size=batch_size,
                         n_iter=n_iter, verbose=verbose, random_state=random_state, cd_k=cd_k,
                         persistent=persistent, momentum=momentum, weight_decay=weight_decay,
                         monitor=monitor, dtype=dtype)

    def score_samples(self, X) -> np.ndarray:
        """Minus the free energy of each sample."""
        self._require_fitted()
        return -self._free_energy(self._as_x(X, self.W_.dtype)).astype(np.float64)


class DBN(_Params):
    """A deep belief network: RBMs pre-trained greedily, then an MLP to fine-tune.

    Args:
        hidden_layer_sizes: hidden units of each RBM, bottom first.
        first_layer: "bernoulli" (inputs in [0, 1]) or "gaussian" (standardised inputs).
        The other arguments are every RBM's (see :class:`BernoulliRBM`);
        random_state seeds the whole stack.

    ``fit(X)`` trains RBM 1 on X, RBM 2 on RBM 1's hidden probabilities, and
    so on. ``to_sequential(n_outputs)`` returns an uncompiled
    ``nncore.Sequential``: Flatten (for images), one sigmoid Dense layer per
    RBM with kernel = the RBM's W (n_in, n_out) and bias = its hidden biases,
    and a new output layer.
    """

    def __init__(self, hidden_layer_sizes=(256, 128), *, first_layer="bernoulli",
                 learning_rate=0.1, batch_size=10, n_iter=10, cd_k=1, persistent=True,
                 momentum=0.0, weight_decay=0.0, verbose=0, random_state=None,
                 dtype="float32"):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.first_layer = first_layer
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.n_iter = n_iter
        self.cd_k = cd_k
        self.persistent = persistent
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.verbose = verbose
        self.random_state = random_state
        self.dtype = dtype

    def fit(self, X, y=None):
        """Greedy layer-wise pre-training (y is ignored)."""
        from nncore.model import derive_seed
        sizes = [int(s) for s in self.hidden_layer_sizes]
        if not sizes:
            raise ValueError("hidden_layer_sizes needs at least one layer")
        if self.first_layer not in ("bernoulli", "gaussian"):
            raise ValueError(f"first_layer must be 'bernoulli' or 'gaussian', "
                             f"got {self.first_layer!r}")
        X = np.asarray(X)
        self.input_shape_ = tuple(X.shape[1:])
        seed = _resolve_seed(self.random_state)
        self.rbms_ = []
        h = X
        for i, n in enumerate(sizes):
            cls = GaussianBernoulliRBM if i == 0 and self.first_layer == "gaussian" else BernoulliRBM
            rbm = cls(n, learning_rate=self.learning_rate, batch_size=self.batch_size,
                      n_iter=self.n_iter, cd_k=self.cd_k, persistent=self.persistent,
                      momentum=self.momentum, weight_decay=self.weight_decay,
                      verbose=self.verbose, random_state=derive_seed(seed, i), dtype=self.dtype)
            if cls is GaussianBernoulliRBM and self.learning_rate == 0.1:
                rbm.learning_rate = 0.01  # the Bernoulli default is too large for Gaussian units
            h = rbm.fit(h).transform(h)
            self.rbms_.append(rbm)
        return self

    def transform(self, X) -> np.ndarray:
        """The top RBM's hidden probabilities."""
        if not hasattr(self, "rbms_"):
            raise RuntimeError("this DBN is not fitted yet; call fit first")
        h = X
        for rbm in self.rbms_:
            h = rbm.transform(h)
        return h

    def to_sequential(self, n_outputs: int, output_activation: str = "softmax",
                      seed: Optional[int] = None):
        """An MLP initialised with the pre-trained weights, plus a new output layer.

        The output layer is initialised as Dense's default (Glorot uniform,
        zero bias) from ``seed``. Compile and fit it as any Sequential.
        """
        from nncore.layers import Dense, Flatten
        from nncore.model import Sequential
        if not hasattr(self, "rbms_"):
            raise RuntimeError("this DBN is not fitted yet; call fit first")
        layers = []
        if len(self.input_shape_) != 1:
            layers.append(Flatten(input_shape=self.input_shape_))
        n_in = self.rbms_[0].n_features_in_
        for i, rbm in enumerate(self.rbms_):
            kw = {"input_dim": n_in} if i == 0 and not layers else {}
            layers.append(Dense(int(rbm.n_components), activation="sigmoid", **kw))
            n_in = int(rbm.n_components)
        layers.append(Dense(int(n_outputs), activation=output_activation))
        model = Sequential(layers, seed=seed, dtype=self.dtype)
        model.build()
        weights = model.get_weights()
        for i, rbm in enumerate(self.rbms_):
            weights[2 * i] = rbm.W_
            weights[2 * i + 1] = rbm.intercept_hidden_
        model.set_weights(weights)
        return model
