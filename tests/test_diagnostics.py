"""nncore.diagnostics.gradient_norms and the vanishing gradient it shows."""
import numpy as np
import pytest

import nncore
from nncore.diagnostics import gradient_norms
from nncore.layers import Dense


def _deep(act, depth=8, width=32, seed=0):
    layers = [Dense(width, activation=act, input_dim=16)]
    layers += [Dense(width, activation=act) for _ in range(depth - 1)]
    layers.append(Dense(1, activation="sigmoid"))
    model = nncore.Sequential(layers, seed=seed, dtype="float64")
    model.compile(optimizer="sgd", loss="binary_crossentropy")
    return model


def _data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(128, 16))
    return x, (x[:, 0] + x[:, 1] > 0).astype(np.float64)


def test_norms_are_the_gradients_and_nothing_moves():
    x, y = _data()
    model = _deep("tanh", depth=2)
    model.build()  # get_flat_weights, unlike get_weights, does not build on its own
    before = model.get_flat_weights()
    norms = gradient_norms(model, x, y, per_parameter=True)
    np.testing.assert_array_equal(model.get_flat_weights(), before)  # no optimizer step
    assert model.optimizer.iterations == 0
    # against finite differences of the loss on one weight of the first layer
    first = model.layers[0]
    g = first.grads["kernel"][0, 0]
    assert norms[f"{first.name}/kernel"] == pytest.approx(np.linalg.norm(first.grads["kernel"]))
    w = first.params["kernel"]
    h = 1e-6
    w[0, 0] += h
    up = model.evaluate(x, y, batch_size=128)
    w[0, 0] -= 2 * h
    down = model.evaluate(x, y, batch_size=128)
    w[0, 0] += h
    assert g == pytest.approx((up - down) / (2 * h), rel=1e-5, abs=1e-9)


def test_sigmoid_starves_early_layers_relu_does_not():
    x, y = _data()
    ratios = {}
    for act in ("sigmoid", "relu"):
        norms = list(gradient_norms(_deep(act), x, y).values())
        assert len(norms) == 9
        ratios[act] = norms[0] / norms[-1]
    # each sigmoid layer multiplies the signal by at most 0.25: eight of them
    assert ratios["sigmoid"] < 1e-3
    assert ratios["relu"] > 100 * ratios["sigmoid"]
