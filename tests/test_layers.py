"""Dropout and BatchNormalization, by hand and inside models."""
import numpy as np
import pytest

import nncore
from nncore.layers import BatchNormalization, Dense, Dropout, Flatten


def _numeric_grad(f, x, eps=1e-6):
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[i] = eps
        g[i] = (f(x + e) - f(x - e)) / (2 * eps)
    return g


@pytest.mark.parametrize("training", [True, False])
def test_batchnorm_gradients_by_finite_differences(training):
    rng = np.random.default_rng(0)
    bn = BatchNormalization()
    bn.build((3,))
    bn.ensure_storage(np.float64)
    bn.params["gamma"][...] = rng.normal(size=3)
    bn.params["beta"][...] = rng.normal(size=3)
    bn.params["moving_mean"][...] = rng.normal(size=3)
    bn.params["moving_variance"][...] = rng.uniform(0.5, 2, size=3)
    x = rng.normal(size=(5, 3))
    w = rng.normal(size=(5, 3))  # loss = sum(w * y)
    moving = [bn.params[k].copy() for k in ("moving_mean", "moving_variance")]

    def loss(xv):
        y = bn.forward(xv, training)
        bn.params["moving_mean"][...], bn.params["moving_variance"][...] = moving
        return float((w * y).sum())

    loss(x)
    dx = bn.backward(w).copy()
    np.testing.assert_allclose(dx, _numeric_grad(loss, x), rtol=1e-6, atol=1e-8)
    g = bn.params["gamma"].copy()

    def loss_gamma(gv):
        bn.params["gamma"][...] = gv
        return loss(x)

    loss(x)
    bn.backward(w)
    np.testing.assert_allclose(bn.grads["gamma"], _numeric_grad(loss_gamma, g), rtol=1e-6)


def test_batchnorm_normalises_and_tracks_moving_statistics():
    rng = np.random.default_rng(1)
    bn = BatchNormalization(momentum=0.5)
    bn.build((4,))
    bn.ensure_storage(np.float64)
    x = rng.normal(3.0, 2.0, size=(1000, 4))
    y = bn.forward(x, training=True)
    np.testing.assert_allclose(y.mean(axis=0), 0, atol=1e-9)
    np.testing.assert_allclose(y.std(axis=0), 1 / np.sqrt(1 + 1e-3 / x.var(axis=0)), rtol=1e-6)
    np.testing.assert_allclose(bn.params["moving_mean"], 0.5 * x.mean(axis=0))
    np.testing.assert_allclose(bn.params["moving_variance"], 0.5 + 0.5 * x.var(axis=0))
    # inference uses the moving statistics
    y_inf = bn.forward(x[:2], training=False)
    expect = (x[:2] - bn.params["moving_mean"]) / np.sqrt(bn.params["moving_variance"] + 1e-3)
    np.testing.assert_allclose(y_inf, expect)


def test_dropout_masks_scale_and_pass_through():
    drop = Dropout(0.25, seed=7)
    drop.build((10000,))
    x = np.ones((2, 10000), np.float32)
    np.testing.assert_array_equal(drop.forward(x, training=False), x)
    y = drop.forward(x, training=True).copy()
    kept = y != 0
    assert abs(kept.mean() - 0.75) < 0.02
    np.testing.assert_allclose(y[kept], 1 / 0.75)
    dx = drop.backward(np.full_like(x, 2.0))
    np.testing.assert_allclose(dx, 2.0 * y)
    drop.step = 0
    np.testing.assert_array_equal(drop.forward(x, training=True), y)  # same seed and step
    assert not np.array_equal(drop.forward(x, training=True), y)     # next step differs
    with pytest.raises(ValueError, match="rate"):
        Dropout(1.0)


def test_model_with_dropout_and_batchnorm_trains_and_resumes_exactly(tmp_path):
    rng = np.random.default_rng(2)
    x = rng.normal(size=(64, 4, 4)).astype(np.float32)
    y = (x.reshape(64, -1).sum(axis=1) > 0).astype(np.float32)

    def make():
        model = nncore.Sequential([Flatten(input_shape=(4, 4)), Dense(16, activation="relu"),
                                   BatchNormalization(), Dropout(0.3),
                                   Dense(1, activation="sigmoid")], seed=3)
        model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
        return model

    straight = make()
    hist = straight.fit(x, y, epochs=4, batch_size=16, verbose=0)
    assert hist.history["loss"][-1] < hist.history["loss"][0]
    first = make()
    first.fit(x, y, epochs=2, batch_size=16, verbose=0)
    first.save(tmp_path / "m.nncore")
    resumed = nncore.load_model(tmp_path / "m.nncore")
    resumed.fit(x, y, epochs=4, initial_epoch=2, batch_size=16, verbose=0)
    np.testing.assert_array_equal(resumed.get_flat_weights(), straight.get_flat_weights())
    assert [w.shape for w in straight.get_weights()][2:6] == [(16,)] * 4  # gamma, beta, moving


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("l1,l2", [(0.0, 0.01), (0.02, 0.0), (0.03, 0.5)])
def test_regularizer_penalty_and_gradient_match_numpy(dtype, l1, l2):
    rng = np.random.default_rng(5)
    w = rng.normal(size=(7, 5)).astype(dtype)
    w[0, 0] = 0.0
    g = rng.normal(size=(7, 5)).astype(dtype)
    reg = nncore.regularizers.L1L2(l1=l1, l2=l2)
    want = l1 * np.abs(w.astype(np.float64)).sum() + l2 * np.square(w.astype(np.float64)).sum()
    assert reg(w) == pytest.approx(want, rel=1e-12)
    expect_g = g + l1 * np.sign(w) + 2 * l2 * w
    assert reg.apply(w, g) == pytest.approx(want, rel=1e-12)
    np.testing.assert_allclose(g, expect_g, rtol=1e-6 if dtype == np.float32 else 1e-14)
    with pytest.raises(ValueError, match="l1"):
        nncore.regularizers.L1L2(l1=-1)
