"""Training straight from uint8 inputs (images as loaded), with no float copy.

fit keeps a uint8 x as it is: the engine epochs (nc_?plan_fit) read each
batch's bytes as the model's reals (converted to CSR straight from the bytes
for a sparse batch, into the batch buffer for a dense one), and the
per-batch Python path converts one batch at a time. Every uint8 value is
exact in float32 and float64, so each must give the bits of training on
x.astype(dtype): weights, optimizer state and logs, at every ISA level.
The kernels of csrc/dense_u8.h are held to NumPy's nonzeros.
"""
import warnings

import numpy as np
import pytest

import nncore
from nncore import _core, callbacks
from nncore.layers import Activation, Dense, Dropout, Flatten
from conftest import LOSS_CASES as CASES, loss_targets as _targets


# --------------------------------------------------------------------------
# kernels: bytes to CSR, bytes to reals
# --------------------------------------------------------------------------

CSR_SHAPES = [(1, 1), (1, 7), (3, 8), (5, 15), (4, 16), (6, 17), (2, 31), (2, 32), (2, 33),
              (3, 64), (3, 65), (64, 256), (9, 250), (100, 31), (1, 300), (0, 5), (5, 0)]


def _numpy_csr(x, dtype):
    nz = x != 0
    ptr = np.concatenate([[0], np.cumsum(nz.sum(axis=1))]).astype(np.int32)
    rows, cols = np.nonzero(nz)
    return ptr, cols.astype(np.int32), x[rows, cols].astype(dtype)


@pytest.mark.parametrize("shape", CSR_SHAPES, ids=[f"{m}x{k}" for m, k in CSR_SHAPES])
def test_u8_to_csr_is_numpys_nonzeros(isa, dtype, shape):
    m, k = shape
    rng = np.random.default_rng(m * 31 + k)
    for density in (0.0, 0.16, 0.5, 1.0):
        for high in (2, 256):  # 0/1 pixels, and every byte value
            x = np.where(rng.random((m, k)) < density, rng.integers(1, high, (m, k)), 0)
            x = x.astype(np.uint8)
            if x.size:
                x.flat[-1] = 255  # the edge lanes carry values too
            ptr, idx, val = _core._u8_to_csr(x, dtype)
            eptr, eidx, evalue = _numpy_csr(x, dtype)
            assert val.dtype == dtype
            np.testing.assert_array_equal(ptr, eptr)
            np.testing.assert_array_equal(idx, eidx)
            np.testing.assert_array_equal(val, evalue)


def test_u8_to_csr_equals_to_csr_on_the_converted_rows(isa, dtype):
    (x, _), _ = nncore.datasets.load_digits16()
    x = x[:200].reshape(200, -1)
    got = _core._u8_to_csr(x, dtype)
    want = _core._to_csr(x.astype(dtype))
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a, b)


def test_u8_to_real(dtype):
    x = np.arange(256, dtype=np.uint8).repeat(3).reshape(16, 48)
    y = _core._u8_to_real(x, dtype)
    assert y.dtype == dtype and y.shape == x.shape
    np.testing.assert_array_equal(y, x.astype(dtype))


def test_u8_hooks_refuse_other_dtypes():
    with pytest.raises(TypeError, match="uint8"):
        _core._u8_to_csr(np.zeros((2, 3), np.int8), np.float32)
    with pytest.raises(TypeError, match="float32 or float64"):
        _core._u8_to_csr(np.zeros((2, 3), np.uint8), np.int32)


# --------------------------------------------------------------------------
# Sequential.fit: uint8 against its float copy, bit for bit
# --------------------------------------------------------------------------

class _BatchHook(callbacks.Callback):
    """A batch hook: fit then steps batch by batch in Python."""

    def on_train_batch_end(self, batch, logs=None):
        pass


def _bytes(n, n_in, kind, seed=0):
    """uint8 samples: 'sparse' 0/1 pixels about 15% on (the digits' kind),
    'dense' bytes of any value about 70% nonzero, 'mixed' mostly sparse rows
    with a few dense ones (batches fall either side of the density cut)."""
    rng = np.random.default_rng(seed)
    if kind == "dense":
        x = np.where(rng.random((n, n_in)) < 0.7, rng.integers(1, 256, (n, n_in)), 0)
    else:
        x = rng.random((n, n_in)) < 0.15
        if kind == "mixed":
            x[rng.choice(n, n // 20, replace=False)] = rng.random((n // 20, n_in)) < 0.9
    x = x.astype(np.uint8)
    labels = (x[:, :5].astype(np.int64).sum(1) + x[:, -3:].astype(np.int64).sum(1)) % 3
    return x, labels


def _model(case, input_shape, dtype, seed=3, dropout=False):
    out_act, loss, metrics = CASES[case]
    n_out = 1 if loss in ("binary_crossentropy", "mse") else 3
    r = nncore.regularizers.L2(1e-3)
    layers = [Flatten(input_shape=input_shape),
              Dense(24, activation="relu", kernel_regularizer=r), Activation("tanh")]
    if dropout:
        layers.append(Dropout(0.2))
    layers.append(Dense(n_out, activation=out_act, kernel_regularizer=r))
    model = nncore.Sequential(layers, seed=seed, dtype=dtype)
    rate = nncore.optimizers.ExponentialDecay(0.01, 5, 0.9)
    model.compile(optimizer=nncore.optimizers.Adam(rate), loss=loss, metrics=metrics)
    return model


def _run(x, y, case, dtype, shuffle, hooked=False, dropout=False, **fit_kw):
    model = _model(case, x.shape[1:], dtype, dropout=dropout)
    hist = model.fit(x, y, batch_size=10, epochs=2, verbose=0, shuffle=shuffle,
                     callbacks=[_BatchHook()] if hooked else [], **fit_kw)
    return (model.get_flat_weights(), model.optimizer.get_state()["state"],
            model.optimizer.iterations, hist.history)


def _assert_same(a, b):
    np.testing.assert_array_equal(a[0], b[0])  # weights
    np.testing.assert_array_equal(a[1], b[1])  # optimizer state
    assert a[2] == b[2]
    assert a[3] == b[3]  # losses, metrics and val_ logs, every bit


def _recording_plan_fit(monkeypatch):
    seen = []
    real = _core.plan_fit
    monkeypatch.setattr(_core, "plan_fit", lambda *a: seen.append(a[2].dtype) or real(*a))
    return seen


@pytest.mark.parametrize("shuffle", [True, False], ids=["shuffle", "in-order"])
@pytest.mark.parametrize("kind", ["sparse", "dense", "mixed"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_engine_epochs_on_uint8_equal_the_float_copy(isa, dtype, kind, shuffle, monkeypatch):
    x, labels = _bytes(200, 40, kind, seed=len(kind))
    seen = _recording_plan_fit(monkeypatch)
    on_bytes = _run(x, labels, "sparse-cce", dtype, shuffle)
    assert seen and set(seen) == {np.dtype(np.uint8)}  # the engine read the bytes
    seen.clear()
    on_floats = _run(x.astype(dtype), labels, "sparse-cce", dtype, shuffle)
    assert set(seen) == {np.dtype(dtype)}
    _assert_same(on_bytes, on_floats)
    if kind == "mixed":  # both sides of the cut were taken
        share = [np.count_nonzero(x[i:i + 10]) / x[i:i + 10].size > 0.25 for i in range(0, 200, 10)]
        assert any(share) and not all(share)


@pytest.mark.parametrize("products", [1, 2], ids=["dense-products", "sparse-products"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_engine_epochs_on_uint8_equal_the_float_copy_for_each_loss(case, products):
    x, labels = _bytes(150, 30, "sparse", seed=4)
    y = _targets(case, labels, "float32")
    previous = _core._plan_sparse(products)
    try:
        runs = [_run(xx, y, case, "float32", True, validation_split=0.2)
                for xx in (x, x.astype(np.float32))]
    finally:
        _core._plan_sparse(previous)
    _assert_same(*runs)
    assert "val_loss" in runs[0][3]


@pytest.mark.parametrize("shuffle", [True, False], ids=["shuffle", "in-order"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("path", ["batch-hook", "dropout"])
def test_per_batch_path_on_uint8_equals_the_float_copy(dtype, path, shuffle, monkeypatch):
    # images (n, 8, 8): the per-batch loop converts each batch's slice only
    x, labels = _bytes(120, 64, "mixed", seed=8)
    x = x.reshape(120, 8, 8)
    seen = _recording_plan_fit(monkeypatch)
    kw = dict(hooked=path == "batch-hook", dropout=path == "dropout")
    runs = [_run(xx, labels, "sparse-cce", dtype, shuffle, **kw)
            for xx in (x, x.astype(dtype))]
    assert not seen  # (the engine epochs did not run)
    _assert_same(*runs)


@pytest.mark.parametrize("shuffle", [True, False], ids=["shuffle", "in-order"])
def test_engine_epochs_on_uint8_with_an_activation_first(shuffle, monkeypatch):
    # the first plan step is not a dense one: no sparse products, the bytes
    # are converted into the batch rows
    x, labels = _bytes(100, 12, "dense", seed=3)
    seen = _recording_plan_fit(monkeypatch)
    runs = []
    for xx in (x, x.astype(np.float32)):
        model = nncore.Sequential([Activation("tanh", input_shape=(12,)),
                                   Dense(8, activation="relu"), Dense(3, activation="softmax")],
                                  seed=1)
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"])
        hist = model.fit(xx, labels, batch_size=16, epochs=2, verbose=0, shuffle=shuffle)
        runs.append((model.get_flat_weights(), model.optimizer.get_state()["state"],
                     model.optimizer.iterations, hist.history))
    assert seen[0] == np.uint8
    _assert_same(*runs)


def test_fit_keeps_uint8_and_converts_batch_by_batch(monkeypatch):
    # no float copy of the whole x: every array fit's batches see is one batch
    from nncore import training
    x, labels = _bytes(100, 16, "sparse", seed=2)
    shapes = []
    real = training._ArrayBatches.epoch

    def epoch(self, *a):
        assert self.x.dtype == np.uint8
        for xb, yb in real(self, *a):
            shapes.append((xb.shape, xb.dtype))
            yield xb, yb

    monkeypatch.setattr(training._ArrayBatches, "epoch", epoch)
    model = _model("sparse-cce", (16,), "float64", dropout=True)
    model.fit(x, labels, batch_size=32, epochs=1, verbose=0)
    assert shapes == [((32, 16), np.dtype(np.float64))] * 3 + [((4, 16), np.dtype(np.float64))]


def test_other_integer_dtypes_are_converted_as_before():
    x, labels = _bytes(80, 12, "dense", seed=5)
    runs = [_run(xx, labels, "sparse-cce", "float32", True)
            for xx in (x.astype(np.int16), x.astype(np.float32), x.astype(bool).astype(np.float32),
                       x.astype(bool))]
    _assert_same(runs[0], runs[1])
    _assert_same(runs[2], runs[3])


def test_uint8_validation_data_evaluate_and_predict():
    x, labels = _bytes(90, 20, "sparse", seed=6)
    xv, yv = _bytes(30, 20, "sparse", seed=7)
    runs, outs = [], []
    for conv in (lambda a: a, lambda a: a.astype(np.float32)):
        model = _model("sparse-cce", (20,), "float32")
        hist = model.fit(conv(x), labels, batch_size=16, epochs=2, verbose=0,
                         validation_data=(conv(xv), yv))
        runs.append(hist.history)
        outs.append((model.evaluate(conv(xv), yv, batch_size=7), model.predict(conv(xv))))
    assert runs[0] == runs[1]
    assert outs[0][0] == outs[1][0]
    np.testing.assert_array_equal(outs[0][1], outs[1][1])


def test_strided_uint8_is_taken_like_a_contiguous_one():
    x, labels = _bytes(60, 40, "sparse", seed=9)
    strided = x[:, ::2]
    assert not strided.flags["C_CONTIGUOUS"]
    _assert_same(_run(strided, labels, "sparse-cce", "float32", True),
                 _run(np.ascontiguousarray(strided).astype(np.float32), labels, "sparse-cce",
                      "float32", True))


# --------------------------------------------------------------------------
# _core.plan_fit's boundary
# --------------------------------------------------------------------------

def _plan_fit_args(monkeypatch):
    """The arguments of one real plan_fit call (from a tiny fit)."""
    calls = []
    real = _core.plan_fit
    monkeypatch.setattr(_core, "plan_fit", lambda *a: calls.append(a) or real(*a))
    x, labels = _bytes(20, 8, "sparse", seed=1)
    _model("sparse-cce", (8,), "float32").fit(x, labels, batch_size=10, epochs=1, verbose=0)
    monkeypatch.setattr(_core, "plan_fit", real)
    assert calls
    return list(calls[0])


def test_plan_fit_validates_uint8_x(monkeypatch):
    args = _plan_fit_args(monkeypatch)
    x = args[2]
    assert x.dtype == np.uint8

    def call(new_x):
        a = list(args)
        a[2] = new_x
        a[-3] = np.zeros_like(a[-3])  # fresh metric sums (updated in place)
        return _core.plan_fit(*a)

    wide = np.zeros((x.shape[0], 2 * x.shape[1]), np.uint8)
    with pytest.raises(ValueError, match="C-contiguous"):
        call(wide[:, ::2])
    with pytest.raises(ValueError, match=r"\(n, 8\) of the plan's dtype \(float32\) or uint8"):
        call(np.zeros((x.shape[0], 9), np.uint8))
    with pytest.raises(ValueError, match="or uint8"):
        call(np.zeros(x.shape[0] * 8, np.uint8))
    with pytest.raises(ValueError, match="or uint8"):
        call(x.astype(np.float64))  # another float dtype than the plan's
    with pytest.raises(TypeError, match="int16; plan_fit takes the plan's float dtype or uint8"):
        call(x.astype(np.int16))
    with pytest.raises(ValueError, match="5 samples"):
        call(x[:5])  # (its labels are the call's: 20)
    done, _ = call(x)  # the same call with the right x runs
    assert done == args[7]


# --------------------------------------------------------------------------
# Estimators
# --------------------------------------------------------------------------

def _fit_quiet(est, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return est.fit(X, y)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("early_stopping", [False, True])
def test_mlp_classifier_on_uint8_equals_the_float_copy(dtype, early_stopping, monkeypatch):
    from nncore import Sequential
    from nncore.estimators import MLPClassifier
    x, labels = _bytes(160, 36, "sparse", seed=12)
    fitted_on = []
    real = Sequential.fit
    monkeypatch.setattr(Sequential, "fit", lambda self, x, *a, **k:
                        fitted_on.append(x.dtype) or real(self, x, *a, **k))
    ests = []
    for X in (x, x.astype(dtype)):
        est = MLPClassifier(hidden_layer_sizes=(12,), max_iter=4, batch_size=20,
                            random_state=0, early_stopping=early_stopping,
                            validation_fraction=0.2, dtype=dtype)
        ests.append(_fit_quiet(est, X, labels))
        if not early_stopping:
            ests[-1].partial_fit(X, labels)
    assert fitted_on[0] == np.uint8 and fitted_on[-1] == np.dtype(dtype)
    a, b = ests
    assert a.loss_curve_ == b.loss_curve_
    for u, v in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        np.testing.assert_array_equal(u, v)
    if early_stopping:
        assert a.validation_scores_ == b.validation_scores_
    np.testing.assert_array_equal(a.predict_proba(x), b.predict_proba(x.astype(dtype)))
    assert a.score(x, labels) == b.score(x.astype(dtype), labels)


def test_mlp_regressor_on_uint8_equals_the_float_copy():
    from nncore.estimators import MLPRegressor
    x, labels = _bytes(100, 20, "dense", seed=13)
    target = labels.astype(np.float64) + x[:, 0] / 255.0
    ests = [_fit_quiet(MLPRegressor(hidden_layer_sizes=(8,), max_iter=3, random_state=1), X,
                       target) for X in (x, x.astype(np.float32))]
    assert ests[0].loss_curve_ == ests[1].loss_curve_
    for u, v in zip(ests[0].coefs_, ests[1].coefs_):
        np.testing.assert_array_equal(u, v)
    np.testing.assert_array_equal(ests[0].predict(x), ests[1].predict(x.astype(np.float32)))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_perceptron_on_uint8_equals_the_float_copy(dtype, monkeypatch):
    from nncore.estimators import Perceptron
    x, labels = _bytes(120, 16, "dense", seed=14)
    seen = []
    real = _core.perceptron_epoch
    monkeypatch.setattr(_core, "perceptron_epoch", lambda x, *a: seen.append(x.dtype) or real(x, *a))
    a = _fit_quiet(Perceptron(max_iter=5, random_state=0, dtype=dtype), x, labels)
    assert set(seen) == {np.dtype(np.uint8)}  # read as is, no float copy
    b = _fit_quiet(Perceptron(max_iter=5, random_state=0, dtype=dtype), x.astype(dtype), labels)
    np.testing.assert_array_equal(a.coef_, b.coef_)
    np.testing.assert_array_equal(a.intercept_, b.intercept_)
    assert a.errors_ == b.errors_ and a.errors_[-1] > 0  # (it learnt: mistakes each epoch)
    np.testing.assert_array_equal(a.decision_function(x), b.decision_function(x.astype(dtype)))


def test_perceptron_epoch_on_uint8_rows(dtype):
    x, labels = _bytes(50, 10, "dense", seed=16)
    y = np.eye(3, dtype=dtype)[labels]
    order = np.random.default_rng(0).permutation(50)
    runs = []
    for xx in (x, x.astype(dtype)):
        w, b = np.zeros((3, 10), dtype), np.zeros(3, dtype)
        runs.append((_core.perceptron_epoch(xx, y, w, b, 0.5, order), w, b))
    assert runs[0][0] == runs[1][0] > 0
    np.testing.assert_array_equal(runs[0][1], runs[1][1])
    np.testing.assert_array_equal(runs[0][2], runs[1][2])
    with pytest.raises(ValueError, match="C-contiguous"):
        _core.perceptron_epoch(np.zeros((50, 20), np.uint8)[:, ::2], y, w, b, 0.5)
    with pytest.raises(ValueError, match="w has shape"):
        _core.perceptron_epoch(x, y, np.zeros((3, 9), dtype), b, 0.5)


def test_estimators_check_float_input_for_nan_and_take_integers_as_they_are():
    from nncore.estimators import MLPClassifier
    x, labels = _bytes(40, 6, "sparse", seed=15)
    bad = x.astype(np.float32)
    bad[3, 2] = np.nan
    with pytest.raises(ValueError, match="NaN or infinity"):
        MLPClassifier(max_iter=1).fit(bad, labels)
    big = x.astype(np.float64)
    big[0, 0] = 1e300  # finite in float64, infinite as the model's float32
    with pytest.raises(ValueError, match="NaN or infinity"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # (NumPy's "overflow in cast")
        MLPClassifier(max_iter=1).fit(big, labels)
    for X in (x.astype(np.int64), x.astype(bool)):  # integers are finite: no check, no error
        _fit_quiet(MLPClassifier(hidden_layer_sizes=(4,), max_iter=1), X, labels)
