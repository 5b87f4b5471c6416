"""Ensembles: bagging, voting (hard and soft) and stacking over estimators.

Members are scikit-learn style estimators -- :mod:`nncore.estimators`, or
:class:`ModelClassifier`, which wraps a function that builds a compiled
``nncore.Sequential`` (so any nncore model can be a member), or scikit-learn's
own. The ensembles follow the same conventions (``fit`` returns self,
``get_params``/``set_params``, ``clone``), so they nest and grid-search too.

- :class:`BaggingClassifier`: each member learns a bootstrap sample (drawn
  from the engine's seeded generator); their probabilities are averaged
  (``voting="soft"``) or their votes counted (``"hard"``).
- :class:`VotingClassifier`: different members on the same data; hard votes
  (majority, ties to the first class in ``classes_`` order) or soft (the
  weighted mean of probabilities).
- :class:`StackingClassifier`: a meta-learner (default: a softmax regression,
  ``MLPClassifier(hidden_layer_sizes=())``) learns from the members'
  out-of-fold probabilities, so it never sees a member's predictions on data
  that member trained on.
"""
from __future__ import annotations

import numbers
from typing import Callable, List, Optional

import numpy as np

from nncore import random
from nncore.estimators import (BaseEstimator, ClassifierMixin, MLPClassifier, _check_fitted,
                               _check_X, _check_y, _seed_from)
from nncore.model import derive_seed

__all__ = ["BaggingClassifier", "VotingClassifier", "StackingClassifier", "ModelClassifier",
           "clone"]


def clone(estimator):
    """A new, unfitted estimator with the same parameters (nested ones cloned too)."""
    if isinstance(estimator, (list, tuple)):
        return type(estimator)(clone(e) for e in estimator)
    if not hasattr(estimator, "get_params") or isinstance(estimator, type):
        return estimator
    params = {k: clone(v) if hasattr(v, "get_params") or isinstance(v, (list, tuple)) else v
              for k, v in estimator.get_params(deep=False).items()}
    return type(estimator)(**params)


def _seeded(estimator, seed: int):
    """A clone whose random_state (if it has one) is seed."""
    est = clone(estimator)
    if "random_state" in est.get_params(deep=False):
        est.set_params(random_state=int(seed % (2 ** 31)))
    return est


def _proba_on(member, X, classes):
    """member's class probabilities as columns in `classes` order (0 for classes it never saw)."""
    p = np.asarray(member.predict_proba(X), np.float64)
    out = np.zeros((len(X), len(classes)))
    cols = np.searchsorted(classes, member.classes_)
    out[:, cols] = p
    return out


def _hard_votes(predictions, classes, weights=None):
    """Weighted vote counts (n, n_classes) from each member's predicted labels."""
    votes = np.zeros((predictions[0].shape[0], len(classes)))
    rows = np.arange(votes.shape[0])
    for i, pred in enumerate(predictions):
        votes[rows, np.searchsorted(classes, pred)] += 1.0 if weights is None else weights[i]
    return votes


class ModelClassifier(ClassifierMixin, BaseEstimator):
    """A classifier around an nncore model: ``build_fn(n_features, n_classes, seed)``
    returns a compiled ``nncore.Sequential`` with a softmax output of n_classes
    units and loss ``sparse_categorical_crossentropy``; ``fit`` trains it for
    ``epochs`` with ``batch_size``.
    """

    def __init__(self, build_fn: Optional[Callable] = None, epochs=10, batch_size=32,
                 random_state=None):
        self.build_fn = build_fn
        self.epochs = epochs
        self.batch_size = batch_size
        self.random_state = random_state

    def fit(self, X, y):
        if self.build_fn is None:
            raise ValueError("ModelClassifier needs build_fn(n_features, n_classes, seed)")
        X = _check_X(self, X, reset=True, dtype=np.float32)
        y = _check_y(self, y, len(X), classifier=True)
        self.classes_ = np.unique(y)
        self.model_ = self.build_fn(X.shape[1], len(self.classes_),
                                    _seed_from(self.random_state))
        X = X.astype(self.model_.dtype, copy=False)
        self.model_.fit(X, np.searchsorted(self.classes_, y), epochs=int(self.epochs),
                        batch_size=int(self.batch_size), verbose=0)
        return self

    def predict_proba(self, X):
        _check_fitted(self, "model_")
        X = _check_X(self, X, reset=False, dtype=self.model_.dtype)
        return np.asarray(self.model_.predict(X, batch_size=max(1, len(X))), np.float64)

    def predict(self, X):
        return self.classes_[self.predict_proba(X).argmax(axis=1)]


class BaggingClassifier(ClassifierMixin, BaseEstimator):
    """Bootstrap aggregating: ``n_estimators`` clones of ``estimator``, each fitted on
    ``max_samples`` draws with replacement (seeded), combined by soft or hard voting."""

    def __init__(self, estimator=None, n_estimators=10, *, max_samples=1.0, bootstrap=True,
                 voting="soft", random_state=None):
        self.estimator = estimator
        self.n_estimators = n_estimators
        self.max_samples = max_samples
        self.bootstrap = bootstrap
        self.voting = voting
        self.random_state = random_state

    def fit(self, X, y):
        if self.voting not in ("soft", "hard"):
            raise ValueError(f"voting must be 'soft' or 'hard', got {self.voting!r}")
        if isinstance(self.n_estimators, bool) or not isinstance(self.n_estimators,
                                                                 numbers.Integral) \
                or self.n_estimators < 1:
            raise ValueError(f"n_estimators must be a positive integer, got {self.n_estimators!r}")
        base = self.estimator if self.estimator is not None else MLPClassifier(
            hidden_layer_sizes=(32,), max_iter=50)
        X = _check_X(self, X, reset=True, dtype=np.float64)
        y = _check_y(self, y, len(X), classifier=True)
        self.classes_ = np.unique(y)
        n = len(X)
        m = int(round(self.max_samples * n)) if isinstance(self.max_samples, float) \
            else int(self.max_samples)
        if not 1 <= m <= n:
            raise ValueError(f"max_samples={self.max_samples!r} gives {m} of {n} samples")
        seed = _seed_from(self.random_state)
        self.estimators_, self.estimators_samples_ = [], []
        for i in range(int(self.n_estimators)):
            if self.bootstrap:
                u = random.uniform((m,), dtype="float64", seed=seed, stream=i)
                idx = np.minimum((u * n).astype(np.int64), n - 1)
            else:
                idx = np.sort(random.permutation(n, seed=seed, stream=i)[:m])
            member = _seeded(base, derive_seed(seed, i))
            member.fit(X[idx], y[idx])
            self.estimators_.append(member)
            self.estimators_samples_.append(idx)
        return self

    def predict_proba(self, X):
        _check_fitted(self, "estimators_")
        X = _check_X(self, X, reset=False, dtype=np.float64)
        if self.voting == "hard" or not hasattr(self.estimators_[0], "predict_proba"):
            votes = _hard_votes([e.predict(X) for e in self.estimators_], self.classes_)
            return votes / len(self.estimators_)
        return sum(_proba_on(e, X, self.classes_) for e in self.estimators_) / \
            len(self.estimators_)

    def predict(self, X):
        return self.classes_[self.predict_proba(X).argmax(axis=1)]


class VotingClassifier(ClassifierMixin, BaseEstimator):
    """Different classifiers voting: ``estimators`` is a list of (name, estimator).

    ``voting="hard"`` counts (weighted) predicted labels; ``"soft"`` averages
    (weighted) probabilities. ``prefit=True`` uses the given, already fitted
    estimators as they are.
    """

    def __init__(self, estimators=None, *, voting="hard", weights=None, prefit=False):
        self.estimators = estimators
        self.voting = voting
        self.weights = weights
        self.prefit = prefit

    def _members(self):
        if not self.estimators:
            raise ValueError("VotingClassifier needs estimators=[(name, estimator), ...]")
        if self.voting not in ("soft", "hard"):
            raise ValueError(f"voting must be 'soft' or 'hard', got {self.voting!r}")
        if self.weights is not None and len(self.weights) != len(self.estimators):
            raise ValueError(f"{len(self.weights)} weights for {len(self.estimators)} estimators")
        return list(self.estimators)

    def fit(self, X, y):
        members = self._members()
        X = _check_X(self, X, reset=True, dtype=np.float64)
        y = _check_y(self, y, len(X), classifier=True)
        self.classes_ = np.unique(y)
        if self.prefit:
            self.estimators_ = [est for _, est in members]
        else:
            self.estimators_ = [clone(est).fit(X, y) for _, est in members]
        self.named_estimators_ = {name: est for (name, _), est in zip(members, self.estimators_)}
        return self

    def _weights(self):
        w = np.ones(len(self.estimators_)) if self.weights is None else \
            np.asarray(self.weights, np.float64)
        return w / w.sum()

    def predict_proba(self, X):
        """The weighted mean of the members' probabilities (soft voting)."""
        _check_fitted(self, "estimators_")
        if self.voting != "soft":
            raise AttributeError("predict_proba is not available when voting='hard'")
        X = _check_X(self, X, reset=False, dtype=np.float64)
        w = self._weights()
        return sum(wi * _proba_on(e, X, self.classes_) for wi, e in zip(w, self.estimators_))

    def predict(self, X):
        _check_fitted(self, "estimators_")
        if self.voting == "soft":
            return self.classes_[self.predict_proba(X).argmax(axis=1)]
        X = _check_X(self, X, reset=False, dtype=np.float64)
        votes = _hard_votes([e.predict(X) for e in self.estimators_], self.classes_,
                            self._weights())
        return self.classes_[votes.argmax(axis=1)]


class StackingClassifier(ClassifierMixin, BaseEstimator):
    """Members' out-of-fold probabilities in, a meta-learner's decision out.

    Each member is fitted ``cv`` times on the other folds to predict the held
    out one (folds from a seeded permutation), then once on all the data for
    use at predict time. For two classes only the second class's probability
    of each member is kept (the first is redundant). ``passthrough=True``
    appends the raw features to the meta-learner's input.
    """

    def __init__(self, estimators=None, final_estimator=None, *, cv=5, passthrough=False,
                 random_state=None):
        self.estimators = estimators
        self.final_estimator = final_estimator
        self.cv = cv
        self.passthrough = passthrough
        self.random_state = random_state

    def _meta(self, probas, X):
        cols = [p[:, 1:] if p.shape[1] == 2 else p for p in probas]
        if self.passthrough:
            cols.append(X)
        return np.hstack(cols)

    def fit(self, X, y):
        if not self.estimators:
            raise ValueError("StackingClassifier needs estimators=[(name, estimator), ...]")
        cv = int(self.cv)
        X = _check_X(self, X, reset=True, dtype=np.float64)
        y = _check_y(self, y, len(X), classifier=True)
        self.classes_ = np.unique(y)
        n = len(X)
        if not 2 <= cv <= n:
            raise ValueError(f"cv must be in [2, n_samples], got {self.cv!r}")
        seed = _seed_from(self.random_state)
        folds = np.array_split(random.permutation(n, seed=seed, stream=1), cv)
        oof = [np.zeros((n, len(self.classes_))) for _ in self.estimators]
        for f, held in enumerate(folds):
            train = np.setdiff1d(np.arange(n), held)
            for j, (_, est) in enumerate(self.estimators):
                member = _seeded(est, derive_seed(seed, j, f)).fit(X[train], y[train])
                oof[j][held] = _proba_on(member, X[held], self.classes_)
        self.estimators_ = [_seeded(est, derive_seed(seed, j)).fit(X, y)
                            for j, (_, est) in enumerate(self.estimators)]
        self.named_estimators_ = {name: e for (name, _), e in zip(self.estimators,
                                                                  self.estimators_)}
        final = self.final_estimator if self.final_estimator is not None else MLPClassifier(
            hidden_layer_sizes=(), learning_rate_init=0.01, max_iter=300)
        self.final_estimator_ = _seeded(final, derive_seed(seed, 1 << 20))
        self.final_estimator_.fit(self._meta(oof, X), y)
        return self

    def transform(self, X):
        """The meta-learner's input: the members' probabilities (and X with passthrough)."""
        _check_fitted(self, "estimators_")
        X = _check_X(self, X, reset=False, dtype=np.float64)
        return self._meta([_proba_on(e, X, self.classes_) for e in self.estimators_], X)

    def predict_proba(self, X):
        meta = self.transform(X)
        return self.final_estimator_.predict_proba(meta)

    def predict(self, X):
        meta = self.transform(X)  # checks fitted first
        return self.final_estimator_.predict(meta)
