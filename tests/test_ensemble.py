"""nncore.ensemble: bagging, voting and stacking on a subset of digits16."""
import warnings

import numpy as np
import pytest

import nncore
from nncore.ensemble import (BaggingClassifier, ModelClassifier, StackingClassifier,
                             VotingClassifier, clone)
from nncore.estimators import ConvergenceWarning, MLPClassifier, NotFittedError
from nncore.layers import Dense


@pytest.fixture(scope="module")
def digits():
    (xt, yt), (xs, ys) = nncore.datasets.load_digits16()
    return (xt[:800].reshape(800, -1), yt[:800]), (xs[:1000].reshape(1000, -1), ys[:1000])


def _members():
    return [("relu", MLPClassifier((32,), max_iter=20, random_state=1)),
            ("tanh", MLPClassifier((32,), activation="tanh", max_iter=20, random_state=2)),
            ("softmax", MLPClassifier((), max_iter=20, learning_rate_init=0.01,
                                      random_state=3))]


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


def _member_scores(members, train, test):
    return [clone(est).fit(*train).score(*test) for _, est in members]


def test_voting_hard_and_soft(digits):
    train, test = digits
    scores = _member_scores(_members(), train, test)
    soft = VotingClassifier(_members(), voting="soft").fit(*train)
    hard = VotingClassifier(_members(), voting="hard").fit(*train)
    assert soft.score(*test) >= np.mean(scores)
    assert hard.score(*test) >= min(scores)
    p = soft.predict_proba(test[0])
    assert p.shape == (1000, 10) and np.allclose(p.sum(axis=1), 1, atol=1e-5)
    with pytest.raises(AttributeError):
        hard.predict_proba(test[0])


def test_hard_vote_is_the_majority():
    x = np.zeros((3, 1))

    class Fixed:
        def __init__(self, out):
            self.out, self.classes_ = np.array(out), np.array([0, 1, 2])

        def predict(self, X):
            return self.out

    members = [("a", Fixed([0, 1, 2])), ("b", Fixed([0, 2, 2])), ("c", Fixed([1, 2, 0]))]
    vote = VotingClassifier(members, voting="hard", prefit=True).fit(x, [0, 1, 2])
    np.testing.assert_array_equal(vote.predict(x), [0, 2, 2])
    weighted = VotingClassifier(members, voting="hard", weights=[1, 1, 5], prefit=True)
    np.testing.assert_array_equal(weighted.fit(x, [0, 1, 2]).predict(x), [1, 2, 0])


def test_bagging_bootstraps_are_seeded_and_differ(digits):
    train, test = digits
    make = lambda: BaggingClassifier(MLPClassifier((16,), max_iter=10), n_estimators=3,
                                     random_state=0)
    a, b = make().fit(*train), make().fit(*train)
    for sa, sb in zip(a.estimators_samples_, b.estimators_samples_):
        np.testing.assert_array_equal(sa, sb)
    s0, s1 = a.estimators_samples_[:2]
    assert not np.array_equal(s0, s1) and len(np.unique(s0)) < len(s0)  # with replacement
    np.testing.assert_array_equal(a.predict_proba(test[0]), b.predict_proba(test[0]))
    members = [e.score(*test) for e in a.estimators_]
    assert a.score(*test) >= np.mean(members)


def test_stacking_out_of_fold(digits):
    train, test = digits
    scores = _member_scores(_members(), train, test)
    stack = StackingClassifier(_members(), cv=3, random_state=0).fit(*train)
    assert stack.transform(test[0]).shape == (1000, 30)
    assert stack.score(*test) >= min(scores)
    with pytest.raises(NotFittedError):
        StackingClassifier(_members()).predict(test[0])


def test_model_classifier_wraps_a_sequential(digits):
    train, test = digits

    def build(n_in, n_classes, seed):
        model = nncore.Sequential([Dense(32, activation="relu", input_dim=n_in),
                                   Dense(n_classes, activation="softmax")], seed=seed)
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        return model

    member = ModelClassifier(build, epochs=5, random_state=0)
    vote = VotingClassifier([("m", member), ("e", MLPClassifier((32,), max_iter=20,
                                                                random_state=0))],
                            voting="soft").fit(*train)
    assert vote.named_estimators_["m"].score(*test) > 0.6
    assert vote.score(*test) > 0.6


def test_sklearn_clone_of_ensembles():
    base = pytest.importorskip("sklearn.base")
    stack = StackingClassifier(_members(), cv=4)
    twin = base.clone(stack)
    assert twin.get_params(deep=False)["cv"] == 4
    assert twin.estimators[0][1] is not stack.estimators[0][1]
