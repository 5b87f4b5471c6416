"""nncore.estimators: scikit-learn's conventions, checked by scikit-learn where installed."""
import pickle
import warnings

import numpy as np
import pytest

import nncore
from nncore.estimators import (ConvergenceWarning, MLPClassifier, MLPRegressor, NotFittedError,
                               Perceptron)

try:
    from sklearn.utils.estimator_checks import parametrize_with_checks
except ImportError:  # pragma: no cover - scikit-learn absent
    parametrize_with_checks = None


def _blobs(n=120, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    x = rng.normal(0, 0.5, (n, 2)) + np.array([[0, 0], [3, 0], [0, 3]])[y]
    return x, y


if parametrize_with_checks is not None:
    @parametrize_with_checks([Perceptron(), MLPClassifier(), MLPRegressor()])
    def test_sklearn_check_estimator(estimator, check):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            check(estimator)


def test_get_set_params_and_clone():
    sk_base = pytest.importorskip("sklearn.base")
    est = MLPClassifier(hidden_layer_sizes=(7,), alpha=0.5)
    params = est.get_params()
    assert params["hidden_layer_sizes"] == (7,) and params["alpha"] == 0.5
    assert est.set_params(alpha=0.1) is est and est.alpha == 0.1
    with pytest.raises(ValueError, match="Invalid parameter"):
        est.set_params(nope=1)
    twin = sk_base.clone(est)
    assert twin is not est and twin.get_params() == est.get_params()
    assert "alpha=0.1" in repr(est)


def test_not_fitted_and_input_validation():
    est = MLPClassifier()
    with pytest.raises(NotFittedError):
        est.predict(np.zeros((2, 2)))
    x, y = _blobs()
    est.set_params(max_iter=5)
    with pytest.warns(ConvergenceWarning, match=r"Maximum iterations \(5\)"):
        est.fit(x, y)
    with pytest.raises(ValueError, match="2D"):
        est.predict(x[0])
    with pytest.raises(ValueError, match="3 features, but MLPClassifier is expecting 2"):
        est.predict(np.zeros((1, 3)))
    bad = x.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        est.predict(bad)
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        MLPClassifier().fit(x, y[:-1])
    with pytest.raises(ValueError, match="continuous"):
        MLPClassifier().fit(x, np.linspace(0, 1, len(x)))


def test_classifier_learns_and_reports():
    x, y = _blobs()
    labels = np.array(["a", "b", "c"])[y]
    est = MLPClassifier(hidden_layer_sizes=(16,), learning_rate_init=0.01, max_iter=300,
                        random_state=0).fit(x, labels)
    assert est.score(x, labels) > 0.95
    assert list(est.classes_) == ["a", "b", "c"] and est.n_features_in_ == 2
    proba = est.predict_proba(x)
    assert proba.shape == (len(x), 3) and np.allclose(proba.sum(axis=1), 1, atol=1e-5)
    assert len(est.loss_curve_) == est.n_iter_ and est.loss_curve_[-1] < est.loss_curve_[0]
    # same random_state, same run
    again = MLPClassifier(hidden_layer_sizes=(16,), learning_rate_init=0.01, max_iter=300,
                          random_state=0).fit(x, labels)
    assert again.loss_curve_ == est.loss_curve_


def test_binary_classifier_and_early_stopping():
    x, y = _blobs(300)
    y = (y == 0).astype(int)
    est = MLPClassifier(hidden_layer_sizes=(8,), early_stopping=True, max_iter=500,
                        n_iter_no_change=3, learning_rate_init=0.05, random_state=1).fit(x, y)
    assert est.n_iter_ < 500  # stopped by the validation score, not the limit
    assert len(est.validation_scores_) == est.n_iter_
    assert est.best_validation_score_ == max(est.validation_scores_)
    assert est.predict_proba(x).shape == (300, 2) and est.score(x, y) > 0.9


def test_partial_fit_needs_classes_and_counts_epochs():
    x, y = _blobs()
    est = MLPClassifier(hidden_layer_sizes=(8,), random_state=0)
    with pytest.raises(ValueError, match="classes"):
        est.partial_fit(x, y)
    for _ in range(3):
        est.partial_fit(x, y, classes=[0, 1, 2])
    assert est.n_iter_ == 3 and len(est.loss_curve_) == 3


def test_warm_start_continues():
    x, y = _blobs()
    est = MLPClassifier(hidden_layer_sizes=(8,), max_iter=3, warm_start=True, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(x, y)
        first = est.coefs_[0].copy()
        est.fit(x, y)
    assert est.n_iter_ == 6 and not np.array_equal(first, est.coefs_[0])


def test_pickle_round_trip_predicts_the_same():
    x, y = _blobs()
    est = MLPRegressor(hidden_layer_sizes=(8,), max_iter=20, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(x, y.astype(float))
    back = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(back.predict(x), est.predict(x))


def test_regressor_loss_and_alpha_match_sklearn_sgd_step():
    """One full-batch SGD step from the same weights gives scikit-learn's weights:
    this pins the loss scale (mean squared error / 2) and alpha's formula."""
    sk = pytest.importorskip("sklearn.neural_network")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 3))
    y = x @ np.array([1.0, -2.0, 0.5]) + 0.3
    kw = dict(hidden_layer_sizes=(5,), activation="tanh", solver="sgd", alpha=0.3,
              batch_size=40, learning_rate_init=0.05, momentum=0.0, shuffle=False,
              random_state=0)
    ours = MLPRegressor(dtype="float64", **kw).partial_fit(x, y)
    theirs = sk.MLPRegressor(**kw).partial_fit(x, y)
    # both start again from the same weights, then take one step
    ours._model.set_weights([theirs.coefs_[0], theirs.intercepts_[0], theirs.coefs_[1],
                             theirs.intercepts_[1]])
    before = [c.copy() for c in theirs.coefs_]
    ours.partial_fit(x, y)
    theirs.partial_fit(x, y)
    for a, b, c in zip(ours.coefs_, theirs.coefs_, before):
        assert not np.allclose(b, c)
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ours.loss_curve_[-1], theirs.loss_curve_[-1], rtol=1e-10)


def test_perceptron_xor_warns_and_mlp_solves_xor_via_estimator():
    x, y = nncore.datasets.xor()
    with pytest.warns(ConvergenceWarning, match="max_iter=20 epochs"):
        p = Perceptron(max_iter=20, random_state=0).fit(x, y)
    assert p.n_iter_ == 20 and p.score(x, y) < 1.0


def test_pipeline_and_grid_search():
    pytest.importorskip("sklearn")
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    x, y = _blobs(90)
    pipe = make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(8,), max_iter=200,
                                                         learning_rate_init=0.02, random_state=0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        pipe.fit(x, y)
        assert pipe.score(x, y) > 0.9
        grid = GridSearchCV(pipe, {"mlpclassifier__alpha": [1e-4, 1e-1],
                                   "mlpclassifier__hidden_layer_sizes": [(4,), (8,)]}, cv=3)
        grid.fit(x, y)
    assert set(grid.best_params_) == {"mlpclassifier__alpha", "mlpclassifier__hidden_layer_sizes"}
    assert grid.best_score_ > 0.8


@pytest.mark.parametrize("labels", [np.array([0, 1, 2]), np.array([1, 2, 5]),
                                    np.array([-1, 0, 1])], ids=["0..k-1", "gaps", "negative"])
def test_integer_labels_encode_to_their_class_index_and_unseen_ones_raise(labels):
    # labels 0 .. k-1 take a shortcut (a label is its index); others search
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 3)).astype(np.float32)
    y = labels[rng.integers(0, 3, 60)]
    clf = MLPClassifier(hidden_layer_sizes=(4,), max_iter=2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.partial_fit(x, y, classes=labels)
        ref = MLPClassifier(hidden_layer_sizes=(4,), max_iter=2, random_state=0)
        ref.partial_fit(x, np.searchsorted(labels, y), classes=[0, 1, 2])
    for a, b in zip(clf.coefs_, ref.coefs_):
        np.testing.assert_array_equal(a, b)  # the same targets, so the same training
    for unseen in (labels.max() + 1, labels.min() - 1):
        with pytest.raises(ValueError, match="not among the classes"):
            clf.partial_fit(x, np.append(y[:-1], unseen))


def test_finite_check_on_x_sees_nan_and_inf_but_not_an_overflowing_sum():
    # the check sums X first: a sum that overflows must not pass for an inf
    y = np.arange(10) % 2
    big = np.full((10, 3), 3e38, np.float32)  # finite, sum overflows float32
    clf = MLPClassifier(hidden_layer_sizes=(2,), max_iter=1, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf.fit(big, y)
    for bad in (np.nan, np.inf, -np.inf):
        x = np.zeros((10, 3), np.float32)
        x[7, 1] = bad
        with pytest.raises(ValueError, match="NaN or infinity"):
            clf.fit(x, y)
    x = np.zeros((10, 3), np.float32)
    x[0, 0], x[1, 0] = np.inf, -np.inf  # inf - inf: a NaN sum, still caught
    with pytest.raises(ValueError, match="NaN or infinity"):
        clf.fit(x, y)


@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor])
def test_partial_fit_with_early_stopping_is_refused_as_scikit_learn_refuses_it(cls):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(80, 3)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    est = cls(hidden_layer_sizes=(4,), max_iter=3, early_stopping=True, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(x, y)
    with pytest.raises(ValueError, match="partial_fit does not support early_stopping=True"):
        if cls is MLPClassifier:
            est.partial_fit(x, y, classes=[0, 1])
        else:
            est.partial_fit(x, y)
    fresh = cls(hidden_layer_sizes=(4,), early_stopping=True)
    with pytest.raises(ValueError, match="early_stopping"):
        fresh.partial_fit(x, y, classes=[0, 1]) if cls is MLPClassifier else fresh.partial_fit(x, y)
