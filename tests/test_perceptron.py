"""The perceptron rule in the engine (nc_?perceptron_epoch) and Perceptron on the course's gates."""
import warnings

import numpy as np
import pytest

import nncore
from nncore import _core
from nncore.estimators import ConvergenceWarning, Perceptron
from nncore.layers import Dense

GATES = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], np.float64)


def _reference_epoch(x, y, w, b, lr, order):
    """The rule written out sample by sample (the oracle; small data only)."""
    mistakes = 0
    for i in order:
        for c in range(y.shape[1]):
            y_hat = 1.0 if w[c] @ x[i] + (0.0 if b is None else b[c]) > 0 else 0.0
            delta = lr * (y[i, c] - y_hat)
            if delta:
                w[c] += delta * x[i]
                if b is not None:
                    b[c] += delta
                mistakes += 1
    return mistakes


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("k", [1, 3])
def test_epoch_matches_reference(dtype, k):
    rng = np.random.default_rng(k)
    x = rng.normal(size=(50, 4)).astype(dtype)
    y = (rng.random((50, k)) < 0.5).astype(dtype)
    w, b = np.zeros((k, 4), dtype), np.zeros(k, dtype)
    w_ref, b_ref = w.astype(np.float64), b.astype(np.float64)
    order = nncore.random.permutation(50, seed=3)
    for _ in range(3):
        got = _core.perceptron_epoch(x, y, w, b, 0.5, order)
        want = _reference_epoch(x.astype(np.float64), y, w_ref, b_ref, 0.5, order)
        assert got == want
        tol = 1e-5 if dtype == np.float32 else 1e-12
        np.testing.assert_allclose(w, w_ref, rtol=tol, atol=tol)
        np.testing.assert_allclose(b, b_ref, rtol=tol, atol=tol)


def test_epoch_without_bias_and_natural_order():
    x = GATES.copy()
    y = np.array([[0], [1], [1], [1]], np.float64)
    w, w_ref = np.full((1, 2), -0.5), np.full((1, 2), -0.5)
    for _ in range(3):
        got = _core.perceptron_epoch(x, y, w, None, 1.0)
        want = _reference_epoch(x, y, w_ref, None, 1.0, range(4))
        assert got == want
        np.testing.assert_array_equal(w, w_ref)
    assert got == 0  # OR through the origin needs no bias


def test_boundary_rejects_bad_arguments():
    x, y = GATES.copy(), np.zeros((4, 1))
    w, b = np.zeros((1, 2)), np.zeros(1)
    with pytest.raises(ValueError, match="w has shape"):
        _core.perceptron_epoch(x, y, np.zeros((2, 2)), b, 1.0)
    with pytest.raises(ValueError, match="0 or 1"):
        _core.perceptron_epoch(x, y + 0.5, w, b, 1.0)
    with pytest.raises(ValueError, match="permutation"):
        _core.perceptron_epoch(x, y, w, b, 1.0, order=[0, 0, 1, 2])
    with pytest.raises(ValueError, match="learning rate"):
        _core.perceptron_epoch(x, y, w, b, 0.0)
    with pytest.raises(TypeError, match="float32"):
        _core.perceptron_epoch(x, y, w.astype(np.float32), b, 1.0)


@pytest.mark.parametrize("gate,y", [("and", [0, 0, 0, 1]), ("or", [0, 1, 1, 1])])
def test_perceptron_learns_and_or(gate, y):
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        p = Perceptron(eta0=0.1, random_state=0).fit(GATES, y)
    assert p.score(GATES, y) == 1.0
    assert p.converged_ and p.n_iter_ <= 10 and p.errors_[-1] == 0
    # the decision is the step of the weighted sum
    z = GATES @ p.coef_[0] + p.intercept_[0]
    np.testing.assert_array_equal((z > 0).astype(int), y)


def test_perceptron_xor_does_not_converge():
    x, y = nncore.datasets.xor()
    with pytest.warns(ConvergenceWarning, match="after max_iter=100 epochs"):
        p = Perceptron(max_iter=100, random_state=0).fit(x, y)
    assert not p.converged_ and p.n_iter_ == 100 and p.score(x, y) < 1.0


def test_perceptron_multiclass_one_vs_rest():
    rng = np.random.default_rng(0)
    y = np.arange(150) % 3
    x = rng.normal(0, 0.3, (150, 2)) + np.array([[0, 0], [4, 0], [0, 4]])[y]
    p = Perceptron(random_state=0, max_iter=200).fit(x, y)
    assert p.coef_.shape == (3, 2) and p.score(x, y) > 0.95


def test_same_seed_same_weights():
    x, y = nncore.datasets.tangerines(200)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        a = Perceptron(max_iter=5, random_state=3).fit(x - 7.4, y)
        b = Perceptron(max_iter=5, random_state=3).fit(x - 7.4, y)
    np.testing.assert_array_equal(a.coef_, b.coef_)


def test_mlp_learns_xor():
    """A hidden layer of two-plus units separates XOR (two lines), trained by backprop."""
    x, y = nncore.datasets.xor()
    model = nncore.Sequential([Dense(4, activation="tanh", input_dim=2),
                               Dense(1, activation="sigmoid")], seed=1)
    model.compile(optimizer=nncore.optimizers.Adam(0.05), loss="binary_crossentropy",
                  metrics=["accuracy"])
    model.fit(x, y, epochs=300, batch_size=4, verbose=0)
    pred = (model.predict(x)[:, 0] > 0.5).astype(np.float32)
    np.testing.assert_array_equal(pred, y)
