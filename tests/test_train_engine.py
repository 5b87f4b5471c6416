"""fit's engine epochs (nc_?plan_fit) and the sparse first layer of training plans.

fit runs runs of batches in one engine call when nothing needs Python between
batches; these tests hold it to the per-batch loop bit for bit (weights,
optimizer state, history), and the sparse-input products to the dense ones.
"""
import numpy as np
import pytest

import nncore
from nncore import _core, callbacks
from nncore.layers import Activation, Dense
from conftest import LOSS_CASES as CASES, loss_targets as _targets


class _BatchHook(callbacks.Callback):
    """A callback with a batch hook: fit must then step batch by batch in Python."""

    def __init__(self):
        super().__init__()
        self.batches = 0

    def on_train_batch_end(self, batch, logs=None):
        self.batches += 1


def _data(n, n_in, sparse_x, seed=0):
    rng = np.random.default_rng(seed)
    if sparse_x:
        x = (rng.random((n, n_in)) < 0.15) * rng.choice([1.0, 0.5, -2.0], (n, n_in))
    else:
        x = rng.standard_normal((n, n_in))
    labels = (np.abs(x[:, :3]).sum(1) * 7).astype(np.int64) % 3
    return x, labels


def _model(case, n_in, dtype, reg, seed=3):
    out_act, loss, metrics = CASES[case]
    n_out = 1 if loss in ("binary_crossentropy", "mse") else 3
    r = nncore.regularizers.L2(1e-3) if reg else None
    model = nncore.Sequential([Dense(24, activation="relu", input_dim=n_in, kernel_regularizer=r),
                               Activation("tanh"),
                               Dense(n_out, activation=out_act, kernel_regularizer=r,
                                     bias_regularizer=nncore.regularizers.L1L2(1e-4, 1e-4) if reg
                                     else None)],
                              seed=seed, dtype=dtype)
    lr = nncore.optimizers.ExponentialDecay(0.01, 5, 0.9) if reg else 0.005
    model.compile(optimizer=nncore.optimizers.Adam(lr), loss=loss, metrics=metrics)
    return model


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("sparse_x", [False, True], ids=["dense-x", "sparse-x"])
def test_engine_epochs_equal_the_per_batch_loop(case, dtype, sparse_x, monkeypatch):
    x, labels = _data(200, 40, sparse_x)
    x = x.astype(dtype)
    y = _targets(case, labels, dtype)
    calls = []
    real = _core.plan_fit
    monkeypatch.setattr(_core, "plan_fit", lambda *a: calls.append(a[7]) or real(*a))
    runs = []
    for hooked in (False, True):
        model = _model(case, 40, dtype, reg=case != "mse")
        hook = _BatchHook()
        hist = model.fit(x, y, batch_size=16, epochs=3, verbose=0, validation_split=0.1,
                         callbacks=[hook] if hooked else [])
        if hooked:
            assert hook.batches == 3 * 12  # 180 training samples: 11 batches of 16 and one of 4
        runs.append((model.get_flat_weights(), model.optimizer.get_state()["state"],
                     model.optimizer.iterations, hist.history))
    assert calls and sum(calls) == 3 * 12  # the engine ran every batch of the unhooked fit
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    np.testing.assert_array_equal(runs[0][1], runs[1][1])
    assert runs[0][2] == runs[1][2] == 36
    assert runs[0][3] == runs[1][3]  # losses, metrics and val_ logs, every bit


def test_engine_epochs_without_shuffle_and_with_early_stopping():
    x, labels = _data(120, 10, False, seed=1)
    runs = []
    for hooked in (False, True):
        model = _model("sparse-cce", 10, "float32", reg=False)
        stop = callbacks.EarlyStopping(monitor="loss", patience=0, min_delta=10.0)
        cbs = [stop] + ([_BatchHook()] if hooked else [])
        hist = model.fit(x.astype(np.float32), labels, batch_size=32, epochs=5, verbose=0,
                         shuffle=False, callbacks=cbs)
        assert len(hist.epoch) == 2  # stopped by the callback after the second epoch
        runs.append((model.get_flat_weights(), hist.history))
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    assert runs[0][1] == runs[1][1]


def test_engine_epochs_feed_the_progress_bar(capsys):
    x, labels = _data(64, 10, False)
    model = _model("sparse-cce", 10, "float32", reg=False)
    model.fit(x.astype(np.float32), labels, batch_size=8, epochs=2, verbose=2)
    out = capsys.readouterr().out
    assert out.count("Epoch ") == 2 and "accuracy" in out


def test_engine_epochs_are_bit_identical_at_one_and_two_threads():
    x, labels = _data(300, 64, True, seed=2)
    before = nncore.get_num_threads()
    runs = []
    try:
        for threads in (1, 2):
            nncore.set_num_threads(threads)
            model = _model("sparse-cce", 64, "float32", reg=True)
            model.fit(x.astype(np.float32), labels, batch_size=50, epochs=2, verbose=0)
            runs.append(model.get_flat_weights())
    finally:
        nncore.set_num_threads(before)
    np.testing.assert_array_equal(runs[0], runs[1])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sparse_first_layer_matches_the_dense_products(isa, dtype):
    # the same steps with the sparse products forced off and on: equal to
    # rounding (a different summation is allowed), and bit for bit where
    # both are FMA chains in the same order (the x86 levels)
    x, labels = _data(48, 70, True, seed=5)
    x = x.astype(dtype)
    runs = []
    for mode in (1, 2):  # never, always
        previous = _core._plan_sparse(mode)
        try:
            model = _model("sparse-cce", 70, dtype, reg=False, seed=9)
            for _ in range(3):
                model.train_on_batch(x, labels)
            runs.append(model.get_flat_weights())
        finally:
            _core._plan_sparse(previous)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(runs[0], runs[1], rtol=tol, atol=tol)
    if isa in ("avx2", "avx512"):
        np.testing.assert_array_equal(runs[0], runs[1])


def test_sparse_inputs_are_chosen_by_density_and_keep_nans():
    # a dense batch takes the GEMMs, a sparse one the sparse products; a NaN
    # input is a nonzero and reaches the loss either way
    x, labels = _data(32, 50, True, seed=6)
    model = _model("sparse-cce", 50, "float32", reg=False)
    assert np.isfinite(model.train_on_batch(x.astype(np.float32), labels)[0])
    x[3, 7] = np.nan
    model = _model("sparse-cce", 50, "float32", reg=False)
    assert np.isnan(model.train_on_batch(x.astype(np.float32), labels)[0])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_engine_epochs_with_batches_of_mixed_density_equal_the_per_batch_loop(isa, dtype):
    # mostly sparse rows and a few dense ones: shuffled batches fall either
    # side of the density cut, so the engine converts some batches straight
    # from the scattered samples and copies and counts others (and switches
    # between the two); every bit must still be the per-batch loop's, at
    # every ISA level
    rng = np.random.default_rng(11)
    x, labels = _data(240, 40, True, seed=11)
    x[rng.choice(240, 12, replace=False)] = rng.standard_normal((12, 40))
    x = x.astype(dtype)
    runs = []
    for hooked in (False, True):
        model = _model("sparse-cce", 40, dtype, reg=True)
        hist = model.fit(x, labels, batch_size=10, epochs=3, verbose=0,
                         callbacks=[_BatchHook()] if hooked else [])
        runs.append((model.get_flat_weights(), model.optimizer.get_state()["state"],
                     hist.history))
    dense_share = [(np.count_nonzero(x[i:i + 10]) / x[i:i + 10].size) > 0.25
                   for i in range(0, 240, 10)]
    assert any(dense_share) and not all(dense_share)  # (as stored; shuffled alike)
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    np.testing.assert_array_equal(runs[0][1], runs[1][1])
    assert runs[0][2] == runs[1][2]
