"""Property-based fuzzing of the layers, the model API and model files.

Every call either gives the right answer (checked against a float64 NumPy
reference, or against the same call made another way) or raises a Python
exception that names the problem; never a crash, never a silent wrong answer.
tests/test_boundary.py fuzzes the functional entry points' argument checking;
here the ops are fuzzed for their VALUES (gradients, special values), then
every layer, the model API and the model file format.

Example counts come from a profile: HYPOTHESIS_PROFILE=ci (the default, about
20 s here), dev (4x) or thorough (40x); NNCORE_FUZZ_EXAMPLES=n sets n outright.
"""
import copy
import os
import tracemalloc
import warnings

import numpy as np
import pytest

import nncore
from nncore import io as nio
from nncore import losses, ops
from nncore.layers import Activation, BatchNormalization, Dense, Dropout, Flatten
from conftest import gemm_bound, ref_act, ref_act_grad

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, assume, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_BASE = {"ci": 25, "dev": 100, "thorough": 1000}.get(os.environ.get("HYPOTHESIS_PROFILE", "ci"), 25)
_N = int(os.environ.get("NNCORE_FUZZ_EXAMPLES", _BASE))


def fuzz(scale=1.0):
    """Settings of one fuzz test: scale times the profile's example count."""
    return settings(max_examples=max(5, int(_N * scale)), deadline=None, derandomize=True,
                    suppress_health_check=list(HealthCheck), database=None)


SPECIALS = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1e30, -1e30, 1e-40, 3e38, 1e300]
FLOATS = [np.float32, np.float64]


@st.composite
def values(draw, shape, dtype, scale=None, specials=True):
    """An array of the shape: normal values at a random scale, some special ones."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    scale = draw(st.sampled_from([1e-3, 1.0, 30.0, 1e4])) if scale is None else scale
    v = rng.standard_normal(shape) * scale
    if specials and v.size and draw(st.booleans()):
        for _ in range(draw(st.integers(1, 3))):
            v.reshape(-1)[rng.integers(v.size)] = draw(st.sampled_from(SPECIALS))
    with np.errstate(all="ignore"):
        return v.astype(dtype)


def _f64(a):
    return np.asarray(a, np.float64)


def _close_where_finite(got, want, bound, what, mag=None):
    """got within bound of want wherever want and bound are finite and within
    got's range (beyond it, got may overflow to inf); NaN where want is.
    ``mag`` (e.g. |a| @ |b| of a product) bounds the partial sums: where it is
    beyond the range, a partial sum may overflow although the result would not."""
    top = np.finfo(got.dtype).max if got.dtype.kind == "f" else np.inf
    got, want = _f64(got), _f64(want)
    assert got.shape == want.shape, what
    with np.errstate(all="ignore"):
        fin = np.isfinite(want) & np.isfinite(bound) & (np.abs(want) + bound < top)
        if mag is not None:
            fin &= np.abs(_f64(mag)) < top / 2
    err = np.abs(got[fin] - want[fin])
    assert np.all(err <= bound[fin]), f"{what}: max err {err.max() if err.size else 0}"


# --------------------------------------------------------------------------
# ops: values of the gradients and of special inputs (the boundary's argument
# checks are fuzzed in test_boundary.py)
# --------------------------------------------------------------------------

@fuzz()
@given(data=st.data(), dtype=st.sampled_from(FLOATS), m=st.integers(0, 6), k=st.integers(0, 6),
       n=st.integers(1, 6), need=st.tuples(st.booleans(), st.booleans(), st.booleans()),
       beta=st.sampled_from([0.0, 1.0, -0.5]))
def test_fuzz_dense_backward_values(data, dtype, m, k, n, need, beta):
    x = data.draw(values((m, k), dtype))
    w = data.draw(values((k, n), dtype))
    dz = data.draw(values((m, n), dtype))
    dw0 = data.draw(values((k, n), dtype, specials=False))
    db0 = data.draw(values((n,), dtype, specials=False))
    kw = {}
    if beta:
        kw = dict(dw=dw0.copy(), db=db0.copy(), beta=beta)
    dx, dw, db = ops.dense_backward(x, w, dz, need_dx=need[0], need_dw=need[1] or bool(beta),
                                    need_db=need[2] or bool(beta), **kw)
    eps = np.finfo(dtype).eps
    with np.errstate(all="ignore"):
        if need[0]:
            mag = np.abs(_f64(dz)) @ np.abs(_f64(w)).T
            _close_where_finite(dx, _f64(dz) @ _f64(w).T, gemm_bound(mag, n, dtype), "dx", mag)
        else:
            assert dx is None
        if dw is not None:
            want = _f64(x).T @ _f64(dz) + beta * _f64(dw0)
            mag = np.abs(_f64(x)).T @ np.abs(_f64(dz)) + np.abs(beta * _f64(dw0))
            bound = gemm_bound(mag, m + 1, dtype)
            _close_where_finite(dw, want, bound, "dw", mag)
        if db is not None:
            want = _f64(dz).sum(axis=0) + beta * _f64(db0)
            bound = 2 * (m + 2) * eps * (np.abs(_f64(dz)).sum(axis=0) + np.abs(beta * _f64(db0))) \
                + np.finfo(dtype).tiny
            _close_where_finite(db, want, bound, "db", bound / (2 * (m + 2) * eps))
        if m == 0 and not beta:  # an empty batch has zero gradient, not stale memory
            if dw is not None:
                assert not np.any(dw)
            if db is not None:
                assert not np.any(db)


ACTS = ["linear", "relu", "leaky_relu", "elu", "sigmoid", "tanh", "softplus", "softmax",
        "log_softmax"]


def _act_tolerance(dtype, *scales):
    eps = np.finfo(dtype).eps
    return 64 * eps * (1 + sum(np.abs(_f64(s)) for s in scales))


@fuzz()
@given(data=st.data(), dtype=st.sampled_from(FLOATS), name=st.sampled_from(ACTS),
       shape=st.lists(st.integers(0, 5), min_size=1, max_size=3))
def test_fuzz_activation_backward_values(data, dtype, name, shape):
    """dx from the forward output y agrees with dy * f'(x) computed from x in float64."""
    x = data.draw(values(tuple(shape), dtype, scale=data.draw(st.sampled_from([1.0, 10.0])),
                         specials=False))
    dy = data.draw(values(tuple(shape), dtype, scale=1.0, specials=False))
    y = ops.activation_forward(x, name)
    dx = ops.activation_backward(y, dy, name)
    assert dx.shape == x.shape and dx.dtype == x.dtype
    want = ref_act_grad(name, x, dy)
    tol = _act_tolerance(dtype, dy)
    if name in ("softmax", "log_softmax") and x.size:
        tol = tol + 64 * np.finfo(dtype).eps * np.abs(_f64(dy)).sum(axis=-1, keepdims=True)
    if name in ("sigmoid", "tanh", "softplus", "elu"):
        # from y, not x: where y rounds (saturates) the derivative is that of the
        # rounded y; a few ulps of y times |dy|
        tol = tol + 8 * np.finfo(dtype).eps * np.abs(_f64(dy)) * (1 + np.abs(_f64(y)))
    _close_where_finite(dx, want, tol, name)


@fuzz()
@given(data=st.data(), dtype=st.sampled_from(FLOATS), name=st.sampled_from(ACTS + ["step"]),
       n=st.integers(1, 40))
def test_fuzz_activation_special_values(data, dtype, name, n):
    """NaN, infinities, huge, tiny and subnormal inputs: NaN exactly where the
    float64 reference has it, the reference's value elsewhere (rounded to dtype)."""
    x = np.array(data.draw(st.lists(st.sampled_from(SPECIALS + [1.0, -1.0, 88.7, -103.0, 709.0,
                                                                -745.0, 20.0]),
                                    min_size=n, max_size=n)))
    with np.errstate(all="ignore"):
        x = x.astype(dtype)
        want = ref_act(name, x).astype(dtype).astype(np.float64)
    y = ops.activation_forward(x, name)
    np.testing.assert_array_equal(np.isnan(y), np.isnan(want), err_msg=f"{name} {x}")
    fin = np.isfinite(want)
    np.testing.assert_array_equal(y[~fin & ~np.isnan(want)], want[~fin & ~np.isnan(want)])
    _close_where_finite(y, want, _act_tolerance(dtype, want), name)
    dx = ops.activation_backward(y, np.ones_like(y), name)  # never a crash
    assert dx.shape == y.shape


@fuzz()
@given(data=st.data(), dtype=st.sampled_from(FLOATS), m=st.integers(1, 6), n=st.integers(1, 5),
       which=st.sampled_from(["categorical", "binary"]))
def test_fuzz_accuracy_values(data, dtype, m, n, which):
    p = data.draw(values((m, n), dtype, specials=False))
    if which == "categorical":
        t = np.eye(n, dtype=dtype)[data.draw(st.lists(st.integers(0, n - 1), min_size=m,
                                                      max_size=m))]
        got = ops.categorical_accuracy(t, p)
        want = np.mean(np.argmax(p, axis=1) == np.argmax(t, axis=1))
    else:
        t = data.draw(values((m, n), dtype, scale=1.0, specials=False)) > 0
        t = t.astype(dtype)
        got = ops.binary_accuracy(t, p)
        want = np.mean((p > 0.5) == (t > 0.5))
    assert got == pytest.approx(want, abs=1e-12)


# --------------------------------------------------------------------------
# Layers on their own: forward and backward against float64 references
# --------------------------------------------------------------------------

def _standalone(layer, input_shape, dtype):
    layer.build(input_shape)
    layer.ensure_storage(dtype)
    for g in layer.grads.values():
        g[...] = np.nan  # backward must overwrite every gradient
    return layer


@fuzz()
@given(data=st.data(), dtype=st.sampled_from(FLOATS), m=st.integers(0, 6), k=st.integers(1, 6),
       units=st.integers(1, 6), act=st.sampled_from(ACTS), use_bias=st.booleans())
def test_fuzz_dense_layer(data, dtype, m, k, units, act, use_bias):
    layer = _standalone(Dense(units, activation=act, use_bias=use_bias), (k,), dtype)
    w = layer.params["kernel"]
    w[...] = data.draw(values((k, units), dtype, scale=1.0, specials=False))
    b = layer.params.get("bias")
    if b is not None:
        b[...] = data.draw(values((units,), dtype, scale=1.0, specials=False))
    x = data.draw(values((m, k), dtype))
    y = layer.forward(x, training=True).copy()
    assert y.shape == (m, units) and y.dtype == dtype
    with np.errstate(all="ignore"):
        z = _f64(x) @ _f64(w) + (0 if b is None else _f64(b))
        zb = gemm_bound(np.abs(_f64(x)) @ np.abs(_f64(w)), k + 1, dtype) + \
            (0 if b is None else 4 * np.finfo(dtype).eps * np.abs(_f64(b)))
        want = ref_act(act, z)
    if act in ("softmax", "log_softmax") and m:
        zb = zb + zb.max(axis=1, keepdims=True)
    # where x @ w + b is beyond the dtype's range, the layer's pre-activation is
    # inf (or NaN) in the dtype: compare only where it is representable (whole
    # rows for the softmaxes, which mix a row)
    with np.errstate(all="ignore"):
        fits = np.isfinite(z) & (np.abs(z) + zb < np.finfo(dtype).max)
    if act in ("softmax", "log_softmax"):
        fits = np.all(fits, axis=1, keepdims=True) if m else np.ones((0, 1), bool)
    with np.errstate(all="ignore"):
        zmag = np.abs(_f64(x)) @ np.abs(_f64(w)) + (0 if b is None else np.abs(_f64(b)))
        if act in ("softmax", "log_softmax"):
            zmag = zmag.max(axis=1, keepdims=True) if m else zmag
        zmag = zmag + np.zeros_like(want)
        _close_where_finite(y, np.where(fits, want, np.nan),
                            2 * zb + _act_tolerance(dtype, want), f"dense {act}", zmag)
    nan_rows = np.any(np.isnan(x), axis=1)
    if act not in ("softmax", "log_softmax"):
        assert np.all(np.isnan(y[np.isnan(z)]))
    else:
        assert np.all(np.isnan(y[nan_rows]))
    dy = data.draw(values((m, units), dtype, scale=1.0, specials=False))
    dx = layer.backward(dy)
    dz = ops.activation_backward(y, dy, act)
    assert dx.shape == (m, k)
    with np.errstate(all="ignore"):
        mag = np.abs(_f64(x)).T @ np.abs(_f64(dz))
        _close_where_finite(layer.grads["kernel"], _f64(x).T @ _f64(dz),
                            gemm_bound(mag, m, dtype), "dW", mag)
        mag = np.abs(_f64(dz)) @ np.abs(_f64(w)).T
        _close_where_finite(dx, _f64(dz) @ _f64(w).T, gemm_bound(mag, units, dtype), "dx", mag)
    if use_bias:
        np.testing.assert_allclose(layer.grads["bias"], _f64(dz).sum(axis=0),
                                   rtol=1e-4, atol=1e-4 * (1 + np.abs(_f64(dz)).sum()))
    if m == 0:
        assert not np.any(layer.grads["kernel"])
        if use_bias:
            assert not np.any(layer.grads["bias"])


@fuzz()
@given(data=st.data(), dtype=st.sampled_from(FLOATS), act=st.sampled_from(ACTS),
       shape=st.lists(st.integers(0, 4), min_size=2, max_size=4), training=st.booleans())
def test_fuzz_activation_layer(data, dtype, act, shape, training):
    shape = tuple(shape)
    layer = _standalone(Activation(act), shape[1:], dtype)
    x = data.draw(values(shape, dtype))
    y = layer.forward(x, training).copy()
    np.testing.assert_array_equal(y, ops.activation_forward(x, act))
    dy = data.draw(values(shape, dtype, scale=1.0, specials=False))
    np.testing.assert_array_equal(layer.backward(dy), ops.activation_backward(y, dy, act))
    with pytest.raises(ValueError):  # a batch of another sample shape
        layer_bad = _standalone(Dense(2), (3,), dtype)
        layer_bad.forward(np.ones(shape[:1] + (4,), dtype))


@fuzz()
@given(data=st.data(), dtype=st.sampled_from(FLOATS),
       shape=st.lists(st.integers(0, 4), min_size=2, max_size=5))
def test_fuzz_flatten_layer(data, dtype, shape):
    shape = tuple(shape)
    assume(shape[0] > 0)  # an empty batch: test_flatten_empty_batch below
    layer = _standalone(Flatten(), shape[1:], dtype)
    x = data.draw(values(shape, dtype))
    if data.draw(st.booleans()) and x.ndim > 1:
        x = np.asfortranarray(x)
    y = layer.forward(x)
    assert y.shape == (shape[0], int(np.prod(shape[1:])))
    np.testing.assert_array_equal(y, np.ascontiguousarray(x).reshape(shape[0], -1))
    dx = layer.backward(y)
    np.testing.assert_array_equal(dx, x)
    wrong = shape[:1] + (shape[1] + 1,) + shape[2:]
    with pytest.raises(ValueError, match=r"expects batches of shape"):
        layer.forward(np.zeros(wrong, dtype))


@fuzz()
@given(data=st.data(), dtype=st.sampled_from(FLOATS), rate=st.sampled_from([0.0, 0.1, 0.5, 0.9]),
       shape=st.lists(st.integers(0, 6), min_size=2, max_size=3), seed=st.integers(0, 2**63))
def test_fuzz_dropout_layer(data, dtype, rate, shape, seed):
    shape = tuple(shape)
    layer = _standalone(Dropout(rate, seed=seed), shape[1:], dtype)
    x = data.draw(values(shape, dtype))
    assert layer.forward(x, training=False) is x  # inference: the identity
    with np.errstate(all="ignore"):  # a dropped inf is NaN (inf * 0), as in NumPy and torch
        y = layer.forward(x, training=True).copy()
    if rate == 0:
        np.testing.assert_array_equal(y, x)
        return
    mask = layer._mask
    kept = np.unique(mask[mask != 0])  # one scale, 1 / (1 - rate) rounded to dtype
    assert kept.size <= 1 and np.all(np.abs(kept - 1 / (1 - rate)) <= 4 * np.finfo(dtype).eps * kept)
    with np.errstate(all="ignore"):
        np.testing.assert_array_equal(y, x * mask)
    dy = data.draw(values(shape, dtype, scale=1.0, specials=False))
    np.testing.assert_array_equal(layer.backward(dy), dy * mask)
    layer2 = _standalone(Dropout(rate, seed=seed), shape[1:], dtype)
    np.testing.assert_array_equal(layer2.forward(x, training=True), y)  # seeded: reproducible


def test_flatten_empty_batch():
    layer = _standalone(Flatten(), (3, 4), np.float32)
    assert layer.forward(np.empty((0, 3, 4), np.float32)).shape == (0, 12)


def _bn_reference(x, gamma, beta, eps, dy):
    """Training-mode batch norm and its gradients in float64 (textbook form)."""
    x, dy = _f64(x), _f64(dy)
    mean, var = x.mean(axis=0), x.var(axis=0)
    xhat = (x - mean) / np.sqrt(var + eps)
    y = gamma * xhat + beta
    dgamma, dbeta = (dy * xhat).sum(axis=0), dy.sum(axis=0)
    dxhat = dy * gamma
    dx = (dxhat - dxhat.mean(axis=0) - xhat * (dxhat * xhat).mean(axis=0)) / np.sqrt(var + eps)
    return y, dgamma, dbeta, dx, mean, var


@fuzz()
@given(data=st.data(), dtype=st.sampled_from(FLOATS), m=st.integers(1, 8),
       feat=st.lists(st.integers(1, 4), min_size=1, max_size=3),
       momentum=st.sampled_from([0.0, 0.5, 0.99]))
def test_fuzz_batchnorm_layer(data, dtype, m, feat, momentum):
    feat = tuple(feat)
    layer = _standalone(BatchNormalization(momentum=momentum), feat, dtype)
    c = feat[-1]
    p = layer.params
    p["gamma"][...] = data.draw(values((c,), dtype, scale=1.0, specials=False))
    p["beta"][...] = data.draw(values((c,), dtype, scale=1.0, specials=False))
    x = data.draw(values((m,) + feat, dtype, specials=False))
    dy = data.draw(values((m,) + feat, dtype, scale=1.0, specials=False))
    mm0, mv0 = p["moving_mean"].copy(), p["moving_variance"].copy()
    y = layer.forward(x, training=True).copy()
    dx = layer.backward(dy).copy()
    ry, rdg, rdb, rdx, mean, var = _bn_reference(x.reshape(-1, c), _f64(p["gamma"]),
                                                 _f64(p["beta"]), layer.epsilon, dy.reshape(-1, c))
    tol = 1e-3 if dtype == np.float32 else 1e-9
    scale = 1 + np.abs(_f64(x)).max() / np.sqrt(var.min() + layer.epsilon)
    np.testing.assert_allclose(y.reshape(-1, c), ry, rtol=tol, atol=tol * scale)
    np.testing.assert_allclose(layer.grads["gamma"], rdg, rtol=tol, atol=tol * scale * m)
    np.testing.assert_allclose(layer.grads["beta"], rdb, rtol=tol, atol=tol * m)
    np.testing.assert_allclose(dx.reshape(-1, c), rdx, rtol=tol,
                               atol=tol * scale * (1 + np.abs(rdx).max()) * m)
    np.testing.assert_allclose(p["moving_mean"], momentum * mm0 + (1 - momentum) * mean,
                               rtol=tol, atol=tol * (1 + np.abs(mean).max()))
    np.testing.assert_allclose(p["moving_variance"], momentum * mv0 + (1 - momentum) * var,
                               rtol=tol, atol=tol * (1 + var.max()))
    # inference: the moving statistics, any batch size including none
    for rows in (0, m):
        xi = x[:rows]
        yi = layer.forward(xi, training=False)
        want = (_f64(xi).reshape(-1, c) - _f64(p["moving_mean"])) / np.sqrt(
            _f64(p["moving_variance"]) + layer.epsilon) * _f64(p["gamma"]) + _f64(p["beta"])
        np.testing.assert_allclose(yi.reshape(-1, c), want, rtol=tol, atol=tol * scale)


def test_batchnorm_nan_input_gives_nan_not_a_crash():
    layer = _standalone(BatchNormalization(), (3,), np.float32)
    x = np.ones((4, 3), np.float32)
    x[1, 0] = np.nan
    y = layer.forward(x, training=True)
    assert np.all(np.isnan(y[:, 0])) and np.all(np.isfinite(y[:, 1:]))
    assert np.all(np.isfinite(layer.backward(np.ones_like(y))[:, 1:]))


def test_batchnorm_empty_training_batch_keeps_moving_statistics():
    layer = _standalone(BatchNormalization(), (3,), np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            layer.forward(np.empty((0, 3), np.float32), training=True)
        except ValueError:
            pass  # refusing the empty batch is fine too
    assert np.all(np.isfinite(layer.params["moving_mean"]))
    assert np.all(np.isfinite(layer.params["moving_variance"]))


# --------------------------------------------------------------------------
# The model API: random small architectures, then bad input
# --------------------------------------------------------------------------

TASKS = {
    # name: (output activation, loss, output units strategy, targets maker)
    "regression": ("linear", "mse"),
    "mae": ("tanh", "mae"),
    "binary": ("sigmoid", "binary_crossentropy"),
    "sparse": ("softmax", "sparse_categorical_crossentropy"),
    "onehot": ("softmax", "categorical_crossentropy"),
    "logits": ("linear", "sparse_logits"),
}


@st.composite
def models(draw):
    """(model, x, y, task) for a random small architecture and data set."""
    dtype = draw(st.sampled_from(["float32", "float64"]))
    image = draw(st.booleans())
    in_shape = (draw(st.integers(1, 3)), draw(st.integers(1, 3))) if image else \
        (draw(st.integers(1, 5)),)
    task = draw(st.sampled_from(sorted(TASKS)))
    out_act, loss = TASKS[task]
    n_out = 1 if task == "binary" else draw(st.integers(2, 4)) if task in (
        "sparse", "onehot", "logits") else draw(st.integers(1, 3))
    layers = [Flatten(input_shape=in_shape)] if image else []
    for i in range(draw(st.integers(0, 2))):
        kw = {} if layers else {"input_dim": in_shape[0]}
        layers.append(Dense(draw(st.integers(1, 6)), activation=draw(st.sampled_from(
            ["relu", "tanh", "elu", "leaky_relu", "sigmoid", "linear"])), **kw))
        extra = draw(st.sampled_from(["none", "bn", "dropout", "act"]))
        if extra == "bn":
            layers.append(BatchNormalization())
        elif extra == "dropout":
            layers.append(Dropout(draw(st.sampled_from([0.1, 0.5]))))
        elif extra == "act":
            layers.append(Activation("relu"))
    kw = {} if layers else {"input_dim": in_shape[0]}
    layers.append(Dense(n_out, activation=out_act, **kw))
    model = nncore.Sequential(layers, seed=draw(st.integers(0, 2**32)), dtype=dtype)
    if loss == "sparse_logits":
        loss = losses.Loss("sparse_categorical_crossentropy", from_logits=True)
    optimizer = draw(st.sampled_from(["sgd", "adam", "rmsprop", "adagrad", "nadam"]))
    metrics = ["accuracy"] if task in ("binary", "sparse", "onehot", "logits") else ["mae"]
    model.compile(optimizer=optimizer, loss=loss, metrics=metrics)
    n = draw(st.integers(1, 20))
    rng = np.random.default_rng(draw(st.integers(0, 2**32)))
    x = rng.standard_normal((n,) + in_shape).astype(draw(st.sampled_from(
        [dtype, "float64", "float32"])))
    if task in ("sparse", "logits"):
        y = rng.integers(0, n_out, n)
    elif task == "onehot":
        y = np.eye(n_out)[rng.integers(0, n_out, n)]
    elif task == "binary":
        y = rng.integers(0, 2, (n, 1)).astype(np.float32)
    else:
        y = rng.standard_normal((n, n_out))
    return model, x, y, task


@fuzz(0.6)
@given(spec=models(), batch_size=st.integers(1, 8), epochs=st.integers(1, 2),
       shuffle=st.booleans())
def test_fuzz_model_api(tmp_path_factory, spec, batch_size, epochs, shuffle):
    model, x, y, task = spec
    n = len(x)
    hist = model.fit(x, y, batch_size=batch_size, epochs=epochs, verbose=0, shuffle=shuffle)
    assert hist.epoch == list(range(epochs))
    assert len(hist.history["loss"]) == epochs and np.all(np.isfinite(hist.history["loss"]))
    p = model.predict(x, batch_size=batch_size)
    assert p.shape == (n,) + model.output_shape and p.dtype == model.dtype
    assert np.all(np.isfinite(p))
    if task in ("sparse", "onehot"):
        np.testing.assert_allclose(p.sum(axis=1), 1, rtol=1e-4)
    if task == "binary":
        assert np.all((p >= 0) & (p <= 1))
    # the same answer however it is asked for
    np.testing.assert_array_equal(model.predict(x, batch_size=n), p)
    np.testing.assert_array_equal(model.predict_on_batch(x), p)
    np.testing.assert_array_equal(model.predict_one(x[0]), p[0])
    loss, metric = model.evaluate(x, y, batch_size=batch_size)
    assert np.isfinite(loss) and np.isfinite(metric)
    # a save and load round trip changes nothing, and training resumes identically
    path = tmp_path_factory.mktemp("fz") / "m.nncore"
    model.save(path)
    loaded = nncore.load_model(path)
    np.testing.assert_array_equal(loaded.predict(x), p)
    assert loaded.evaluate(x, y, batch_size=batch_size) == [loss, metric]
    model.fit(x, y, batch_size=batch_size, epochs=epochs + 1, initial_epoch=epochs, verbose=0,
              shuffle=shuffle)
    loaded.fit(x, y, batch_size=batch_size, epochs=epochs + 1, initial_epoch=epochs, verbose=0,
               shuffle=shuffle)
    np.testing.assert_array_equal(loaded.get_flat_weights(), model.get_flat_weights())


BAD_INPUTS = ["feature_shape", "rank", "one_sample", "sample_count", "strings", "objects",
              "complex", "label_range", "label_negative", "label_fraction", "label_nan",
              "onehot_for_sparse", "target_shape", "target_strings", "batch_size"]


def _corrupt(kind, x, y, rng):
    """(x, y, kwargs, exception, message pattern) for one kind of bad input."""
    n = len(x)
    if kind == "feature_shape":
        return np.ones((n,) + tuple(d + 1 for d in x.shape[1:])), y, {}, ValueError, "shape"
    if kind == "rank":
        return np.ones(x.shape + (2,)), y, {}, ValueError, "shape"
    if kind == "one_sample":
        return x[0], y, {}, ValueError, "one sample|shape"
    if kind == "sample_count":
        return x, y[:n - 1] if n > 1 else np.concatenate([y, y]), {}, ValueError, "samples"
    if kind == "strings":
        return np.full(x.shape, "a"), y, {}, TypeError, "dtype"
    if kind == "objects":
        return x.astype(object), y, {}, TypeError, "dtype"
    if kind == "complex":
        return x.astype(complex), y, {}, TypeError, "dtype"
    if kind == "batch_size":
        return x, y, {"batch_size": int(rng.choice([0, -1]))}, ValueError, "batch_size"
    return x, y, {}, None, None  # target corruptions: made by the caller, per task


def _corrupt_targets(kind, y, task, n_out):
    if task in ("sparse", "logits"):
        y = np.array(y)
        if kind == "label_range":
            y[-1] = n_out  # (the index named is the batch's: see the xfail below)
            return y, ValueError, rf"y_true\[\d+\] = {n_out}"
        if kind == "label_negative":
            y[0] = -1
            return y, ValueError, r"y_true\[\d+\] = -1"
        if kind == "label_fraction":
            return y + 0.5, ValueError, "y_true"
        if kind == "label_nan":
            y = y.astype(float)
            y[0] = np.nan
            return y, ValueError, "y_true"
        if kind == "onehot_for_sparse" and n_out > 1:
            return np.eye(n_out)[y], ValueError, "one-hot|shape"
        if kind == "target_strings":
            return y.astype(str), TypeError, "dtype"
    else:
        if kind == "target_shape":
            return np.ones((len(y), n_out + 1)), ValueError, "shape"
        if kind == "target_strings":
            return np.full(np.shape(y), "a"), TypeError, "dtype|y_true"
    return None, None, None


@fuzz(0.8)
@given(spec=models(), kind=st.sampled_from(BAD_INPUTS),
       call=st.sampled_from(["fit", "evaluate", "predict", "train_on_batch", "test_on_batch"]),
       seed=st.integers(0, 2**32))
def test_fuzz_model_bad_input(spec, kind, call, seed):
    """Bad input raises an exception that names it, and leaves the weights alone."""
    model, x, y, task = spec
    model.build()
    rng = np.random.default_rng(seed)
    bx, by, kw, exc, pattern = _corrupt(kind, x, y, rng)
    if exc is None:
        if call == "predict":
            return
        by, exc, pattern = _corrupt_targets(kind, y, task, model.output_shape[-1])
        assume(exc is not None)
    if call == "predict" and kind in ("sample_count",):
        return
    if kind == "batch_size" and call in ("train_on_batch", "test_on_batch"):
        return
    before = model._params.copy()
    with pytest.raises(exc, match=pattern):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            if call == "fit":
                model.fit(bx, by, verbose=0, **kw)
            elif call == "evaluate":
                model.evaluate(bx, by, **kw)
            elif call == "predict":
                model.predict(bx, **kw)
            elif call == "train_on_batch":
                model.train_on_batch(bx, by)
            else:
                model.test_on_batch(bx, by)
    np.testing.assert_array_equal(model._params, before)  # no step was taken
    # and the model still works
    p = model.predict(x)
    assert p.shape == (len(x),) + model.output_shape and np.all(np.isfinite(p))


@fuzz(0.4)
@given(spec=models(), scale=st.sampled_from([1e20, np.inf, np.nan]))
def test_fuzz_model_non_finite_data(spec, scale):
    """Non-finite or huge inputs: no crash, and NaN/inf never disappear silently
    (an output computed from a NaN input is NaN, not a number)."""
    model, x, y, task = spec
    model.build()
    x = x.copy()
    x.reshape(len(x), -1)[0, 0] = scale
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        p = model.predict(x)
        assert p.shape == (len(x),) + model.output_shape
        if np.isnan(scale):
            # a NaN input reaches every output of its sample unless a relu-like
            # unit clips it (max(NaN, 0) is NaN here) or a weight is exactly 0
            assert np.all(np.isfinite(p[1:])) or len(model._compute_layers) > 1
        hist = model.fit(x, y, verbose=0, epochs=1)
        assert len(hist.history["loss"]) == 1


def test_predict_zero_samples_gives_an_empty_array():
    model = nncore.Sequential([Dense(2, input_dim=3)], seed=0)
    assert model.predict(np.empty((0, 3))).shape == (0, 2)


def test_evaluate_zero_samples_is_an_error():
    model = nncore.Sequential([Dense(2, activation="softmax", input_dim=3)], seed=0)
    model.compile("sgd", "sparse_categorical_crossentropy", metrics=["accuracy"])
    with pytest.raises(ValueError):
        model.evaluate(np.empty((0, 3)), np.empty(0))


def _bn_model():
    model = nncore.Sequential([Dense(4, activation="relu", input_dim=3), BatchNormalization(),
                               Dense(2, activation="softmax")], seed=0)
    model.compile("adam", "sparse_categorical_crossentropy")
    model.build()
    return model


def test_refused_fit_leaves_batchnorm_state_alone():
    model = _bn_model()
    before = model.get_flat_weights()
    with pytest.raises(ValueError, match=r"y\[2\] = 5"):
        model.fit(np.ones((4, 3)), [0, 1, 5, 0], verbose=0)
    np.testing.assert_array_equal(model.get_flat_weights(), before)


def test_fit_names_the_bad_label_by_its_index_in_y():
    model = nncore.Sequential([Dense(3, activation="softmax", input_dim=2)], seed=0)
    model.compile("sgd", "sparse_categorical_crossentropy")
    y = np.zeros(40, np.int64)
    y[37] = 7
    with pytest.raises(ValueError, match=r"y_true\[37\] = 7|y\[37\] = 7"):
        model.fit(np.ones((40, 2)), y, batch_size=8, verbose=0)


def test_refused_empty_batch_leaves_model_usable():
    model = _bn_model()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.raises(ValueError):
            model.train_on_batch(np.empty((0, 3)), np.empty(0))
    assert np.all(np.isfinite(model.predict(np.ones((2, 3)))))


# --------------------------------------------------------------------------
# Model files: damaged bytes, and well-formed files with hostile headers
# --------------------------------------------------------------------------

def _saved(tmp_path, bn=True):
    layers = [Dense(4, activation="relu", input_dim=3)] + ([BatchNormalization()] if bn else []) \
        + [Dropout(0.1), Dense(2, activation="softmax")]
    model = nncore.Sequential(layers, seed=0)
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(np.ones((4, 3), np.float32), [0, 1, 0, 1], verbose=0)
    path = tmp_path / "good.nncore"
    model.save(path)
    return model, path


# The exceptions load_model may raise on a bad file today: ModelFileError (a
# ValueError) for everything it checks; the xfails below pin the exceptions
# that escape as other types. Anything else (IndexError, AttributeError, a
# crash) fails the fuzz.
LOAD_ERRORS = (ValueError, TypeError, OverflowError, KeyError)


@fuzz()
@given(data=st.data())
def test_fuzz_model_file_bytes(tmp_path_factory, data):
    """Damaged bytes: refused by the checksum (or the prefix checks) with a ModelFileError."""
    tmp = tmp_path_factory.mktemp("mf")
    _, path = _saved(tmp)
    blob = bytearray(path.read_bytes())
    how = data.draw(st.sampled_from(["flip", "truncate", "insert", "prefix"]))
    if how == "flip":
        for _ in range(data.draw(st.integers(1, 8))):
            i = data.draw(st.integers(0, len(blob) - 1))
            blob[i] ^= data.draw(st.integers(1, 255))
    elif how == "truncate":
        blob = blob[:data.draw(st.integers(0, len(blob) - 1))]
    elif how == "insert":
        i = data.draw(st.integers(0, len(blob)))
        blob[i:i] = data.draw(st.binary(min_size=1, max_size=16))
    else:
        blob[:20] = data.draw(st.binary(min_size=20, max_size=20))
    bad = tmp / "bad.nncore"
    bad.write_bytes(bytes(blob))
    assume(bytes(blob) != path.read_bytes())
    with pytest.raises(nio.ModelFileError, match="bad.nncore"):
        nncore.load_model(bad)


HOSTILE = [None, -1, 0, 1, 3, 2**63, 1e300, -1.5, "", "x", "float16", "Dense", [], [-1], [0],
           {}, {"a": 1}, [[]], True, 10**30, "sparse_categorical_crossentropy"]


def _paths(obj, prefix=()):
    if prefix:
        yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _paths(v, prefix + (i,))


@fuzz(1.5)
@given(data=st.data(), bn=st.booleans())
def test_fuzz_model_file_header(tmp_path_factory, data, bn):
    """A well-formed file (valid checksum) whose JSON header says hostile things:
    a Python exception, or a model that works (predicts finite numbers)."""
    tmp = tmp_path_factory.mktemp("mh")
    _, path = _saved(tmp, bn)
    header, arrays = nio.read_file(path)
    header = copy.deepcopy(header)
    paths = sorted(_paths({k: v for k, v in header.items() if k != "arrays"}), key=str)
    for _ in range(data.draw(st.integers(1, 3))):
        p = data.draw(st.sampled_from(paths))
        node = header
        try:
            for key in p[:-1]:
                node = node[key]
            if data.draw(st.integers(0, 9)) == 0 and isinstance(node, dict):
                node.pop(p[-1], None)
            else:
                node[p[-1]] = data.draw(st.sampled_from(HOSTILE))
        except (KeyError, IndexError, TypeError):
            continue  # an earlier change removed this path
    arrays = dict(arrays)
    if data.draw(st.booleans()):  # and some array damage of the table's own making
        name = data.draw(st.sampled_from(sorted(arrays)))
        arrays[name] = data.draw(st.sampled_from([
            arrays[name].reshape(-1)[:0], np.concatenate([arrays[name].ravel(), [1.0]]),
            arrays[name].astype(np.float64), np.full(arrays[name].shape, np.nan)]))
    bad = tmp / "hostile.nncore"
    nio.write_file(bad, {k: v for k, v in header.items() if k != "arrays"}, arrays)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # NaN weights are allowed
            model = nncore.load_model(bad)
    except LOAD_ERRORS:
        return
    p = model.predict(np.ones((2,) + model.input_shape, model.dtype))
    assert p.shape == (2,) + model.output_shape


def test_load_model_huge_integer_is_a_model_file_error(tmp_path):
    _, path = _saved(tmp_path)
    header, arrays = nio.read_file(path)
    header["model"]["layers"][0]["config"]["units"] = 10**30
    nio.write_file(tmp_path / "h.nncore", {k: v for k, v in header.items() if k != "arrays"},
                   arrays)
    with pytest.raises(nio.ModelFileError):
        nncore.load_model(tmp_path / "h.nncore")


@pytest.mark.parametrize("key,value", [("optimizer", 0), ("optimizer", "Dense"),
                                       ("optimizer", {"class_name": "Adam", "config": 5}),
                                       ("loss", None), ("metrics", None)],
                         ids=["opt0", "optDense", "optconfig", "noloss", "nometrics"])
def test_load_model_bad_compile_section_is_a_model_file_error(tmp_path, key, value):
    _, path = _saved(tmp_path)
    header, arrays = nio.read_file(path)
    if value is None:
        del header["compile"][key]  # KeyError
    else:
        header["compile"][key] = value
    nio.write_file(tmp_path / "c.nncore", {k: v for k, v in header.items() if k != "arrays"},
                   arrays)
    with pytest.raises(nio.ModelFileError, match="c.nncore"):
        nncore.load_model(tmp_path / "c.nncore")


def test_load_model_allocates_no_more_than_the_file_holds(tmp_path):
    _, path = _saved(tmp_path, bn=False)
    header, arrays = nio.read_file(path)
    header["model"]["layers"][0]["config"]["units"] = 2_000_000  # 3 x 2e6 floats: 24 MB
    header["model"]["layers"][-1]["config"]["input_shape"] = [2_000_000]
    nio.write_file(tmp_path / "big.nncore", {k: v for k, v in header.items() if k != "arrays"},
                   arrays)
    size = os.path.getsize(tmp_path / "big.nncore")
    tracemalloc.start()
    try:
        with pytest.raises(nio.ModelFileError):
            nncore.load_model(tmp_path / "big.nncore")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 100 * size + 2**20, f"{peak / 2**20:.0f} MiB allocated for a {size} B file"


def test_model_file_is_never_unpickled(tmp_path):
    """A file naming a class outside nncore's layers is refused, not imported."""
    _, path = _saved(tmp_path)
    header, arrays = nio.read_file(path)
    for name in ("os.system", "Sequential", "Layer", "__import__"):
        h = copy.deepcopy(header)
        h["model"]["layers"][0]["class_name"] = name
        nio.write_file(tmp_path / "x.nncore", {k: v for k, v in h.items() if k != "arrays"},
                       arrays)
        with pytest.raises(nio.ModelFileError, match="unknown layer class"):
            nncore.load_model(tmp_path / "x.nncore")
