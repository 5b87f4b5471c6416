"""Losses and their gradients against float64 references and finite differences."""
import math

import numpy as np
import pytest

from nncore import losses, ops
from conftest import eps, fd_grad, ref_act, ref_loss

# (short name for the reference, Keras name, from_logits)
CASES = [
    ("mse", "mean_squared_error", False),
    ("mae", "mean_absolute_error", False),
    ("bce", "binary_crossentropy", False),
    ("bce", "binary_crossentropy", True),
    ("cce", "categorical_crossentropy", False),
    ("cce", "categorical_crossentropy", True),
    ("sparse", "sparse_categorical_crossentropy", False),
    ("sparse", "sparse_categorical_crossentropy", True),
]
IDS = [f"{k}{'-logits' if f else ''}" for _, k, f in CASES]
REDUCTIONS = ("mean", "sum", "none")


def _data(ref, from_logits, shape, rng):
    """(y_true, y_pred) in float64 with predictions well inside the clip range."""
    k = shape[-1]
    if ref in ("mse", "mae"):
        return rng.standard_normal(shape), rng.standard_normal(shape)
    if ref == "bce":
        t = rng.integers(0, 2, size=shape).astype(np.float64)
        t.reshape(-1)[:1] = 0.3  # a soft target too
        p = rng.standard_normal(shape) * 3 if from_logits else rng.uniform(0.02, 0.98, shape)
        return t, p
    z = rng.standard_normal(shape) * 2
    p = z if from_logits else ref_act("softmax", z)
    labels = rng.integers(0, k, size=shape[:-1])
    if ref == "sparse":
        return labels, p
    t = np.eye(k)[labels]
    if t.ndim == 2 and t.shape[0] > 1:
        t[0] = ref_act("softmax", rng.standard_normal(k))  # a soft distribution row
    return t, p


def _cast(t, p, dtype, ref):
    return (t if ref == "sparse" else t.astype(dtype)), p.astype(dtype)


@pytest.mark.parametrize("ref,name,from_logits", CASES, ids=IDS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", [(1, 1), (6, 4), (33, 10), (2, 3, 5)], ids=str)
def test_loss_matches_reference(isa, dtype, ref, name, from_logits, reduction, shape):
    if ref in ("cce", "sparse") and shape[-1] == 1:
        shape = (1, 3)
    rng = np.random.default_rng(sum(shape) + len(name))
    t, p = _data(ref, from_logits, shape, rng)
    t, p = _cast(t, p, dtype, ref)
    got = ops.loss(t, p, name, from_logits=from_logits, reduction=reduction)
    want = ref_loss(ref, t, p.astype(np.float64), from_logits, reduction)
    rtol = 32 * eps(dtype)
    if reduction == "none":
        assert isinstance(got, np.ndarray) and got.dtype == dtype
        assert got.shape == shape[:-1]
        np.testing.assert_allclose(got, want.reshape(shape[:-1]), rtol=rtol,
                                   atol=rtol * np.abs(want).max())
    else:
        assert isinstance(got, float)
        assert got == pytest.approx(want, rel=rtol, abs=rtol * 1e-3)


@pytest.mark.parametrize("ref,name,from_logits", CASES, ids=IDS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_gradient_by_finite_differences(isa, ref, name, from_logits, reduction):
    rng = np.random.default_rng(len(name) + 3 * from_logits)
    t, p = _data(ref, from_logits, (5, 4), rng)
    if ref == "mae":
        p[np.abs(p - t) < 1e-3] += 0.1  # off the kink

    def f(v):
        val = ops.loss(t, v, name, from_logits=from_logits, reduction=reduction)
        return float(np.sum(val))  # "none": each sample's gradient is its own loss's

    val, g = ops.loss_and_grad(t, p, name, from_logits=from_logits, reduction=reduction)
    assert g.shape == p.shape and g.dtype == np.float64
    np.testing.assert_allclose(g, fd_grad(f, p), rtol=1e-6, atol=1e-9)
    # and the reference's own derivative, so engine loss and gradient cannot be wrong together
    fr = lambda v: float(np.sum(ref_loss(ref, t, v, from_logits, reduction)))  # noqa: E731
    np.testing.assert_allclose(g, fd_grad(fr, p), rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("ref,name,from_logits", CASES, ids=IDS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_float32_gradient_matches_float64(isa, ref, name, from_logits, reduction):
    rng = np.random.default_rng(11)
    t, p = _data(ref, from_logits, (17, 6), rng)
    t32, p32 = _cast(t, p, np.float32, ref)
    t64 = t if ref == "sparse" else t32.astype(np.float64)
    _, g32 = ops.loss_and_grad(t32, p32, name, from_logits=from_logits, reduction=reduction)
    _, g64 = ops.loss_and_grad(t64, p32.astype(np.float64), name, from_logits=from_logits,
                               reduction=reduction)
    assert g32.dtype == np.float32
    np.testing.assert_allclose(g32, g64, rtol=64 * eps(np.float32),
                               atol=8 * eps(np.float32) * np.abs(g64).max())


@pytest.mark.parametrize("ref,name,from_logits", CASES, ids=IDS)
def test_reductions_agree(isa, dtype, ref, name, from_logits):
    rng = np.random.default_rng(12)
    t, p = _data(ref, from_logits, (9, 5), rng)
    t, p = _cast(t, p, dtype, ref)
    none, gn = ops.loss_and_grad(t, p, name, from_logits=from_logits, reduction="none")
    total, gs = ops.loss_and_grad(t, p, name, from_logits=from_logits, reduction="sum")
    mean, gm = ops.loss_and_grad(t, p, name, from_logits=from_logits, reduction="mean")
    rtol = 16 * eps(dtype)
    assert total == pytest.approx(float(np.sum(none.astype(np.float64))), rel=rtol)
    assert mean == pytest.approx(total / 9, rel=1e-15)
    np.testing.assert_array_equal(gn, gs)
    np.testing.assert_allclose(gm, gs / 9, rtol=rtol, atol=0)


def test_default_reduction_is_mean():
    t = np.array([[0.0, 1.0], [1.0, 1.0]])
    p = np.array([[1.0, 1.0], [0.0, 3.0]])
    assert losses.mse(t, p) == pytest.approx((0.5 + 2.5) / 2)
    assert losses.mse(t, p, reduction="sum") == pytest.approx(3.0)
    np.testing.assert_allclose(losses.mse(t, p, reduction="none"), [0.5, 2.5])


def test_one_dimensional_predictions(isa, dtype):
    """A 1-D array is one output per sample, and (n,) targets fit (n, 1) predictions."""
    t = np.array([1, 0, 1, 1], dtype)
    p = np.array([0.9, 0.2, 0.6, 0.3], dtype)
    one_d = ops.loss(t, p, "binary_crossentropy", reduction="none")
    assert one_d.shape == (4,)
    np.testing.assert_allclose(one_d, -np.log([0.9, 0.8, 0.6, 0.3]), rtol=1e-6)
    col = ops.loss(t, p[:, None], "binary_crossentropy", reduction="none")
    np.testing.assert_array_equal(col, one_d)


@pytest.mark.parametrize("from_logits", [False, True])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_sparse_equals_one_hot(isa, dtype, from_logits, reduction):
    rng = np.random.default_rng(13)
    n, k = 12, 7
    labels = rng.integers(0, k, size=n)
    z = rng.standard_normal((n, k)) * 2
    p = (z if from_logits else ref_act("softmax", z)).astype(dtype)
    onehot = np.eye(k, dtype=dtype)[labels]
    l1, g1 = ops.loss_and_grad(onehot, p, "categorical_crossentropy", from_logits, reduction)
    rtol = 8 * eps(dtype)
    for lab in (labels, labels.astype(np.int32), labels.astype(np.uint8),
                labels.astype(np.float64), list(labels)):
        l2, g2 = ops.loss_and_grad(lab, p, "sparse_categorical_crossentropy", from_logits,
                                   reduction)
        np.testing.assert_allclose(l2, l1, rtol=rtol)
        np.testing.assert_allclose(g2, g1, rtol=rtol, atol=rtol * np.abs(g1).max())


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_bce_from_logits_equals_probability_form(isa, dtype, reduction):
    rng = np.random.default_rng(14)
    t = rng.integers(0, 2, size=(10, 3)).astype(dtype)
    z = (rng.standard_normal((10, 3)) * 3).astype(dtype)
    y = ops.activation_forward(z, "sigmoid")
    lp, gp = ops.loss_and_grad(t, y, "binary_crossentropy", False, reduction)
    ll, gl = ops.loss_and_grad(t, z, "binary_crossentropy", True, reduction)
    rtol = 64 * eps(dtype)
    np.testing.assert_allclose(lp, ll, rtol=rtol)
    # the chain rule through the sigmoid turns the probability gradient into the logit one
    np.testing.assert_allclose(ops.activation_backward(y, gp, "sigmoid"), gl, rtol=rtol,
                               atol=rtol * np.abs(gl).max())


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("sparse", [False, True])
def test_cce_from_logits_equals_probability_form(isa, dtype, reduction, sparse):
    rng = np.random.default_rng(15)
    n, k = 8, 5
    labels = rng.integers(0, k, size=n)
    t = labels if sparse else np.eye(k, dtype=dtype)[labels]
    name = "sparse_categorical_crossentropy" if sparse else "categorical_crossentropy"
    z = (rng.standard_normal((n, k)) * 2).astype(dtype)
    y = ops.activation_forward(z, "softmax")
    lp, gp = ops.loss_and_grad(t, y, name, False, reduction)
    ll, gl = ops.loss_and_grad(t, z, name, True, reduction)
    rtol = 64 * eps(dtype)
    np.testing.assert_allclose(lp, ll, rtol=rtol)
    np.testing.assert_allclose(ops.activation_backward(y, gp, "softmax"), gl, rtol=rtol,
                               atol=rtol * np.abs(gl).max())


def test_cce_logits_gradient_is_softmax_minus_target(isa, dtype):
    rng = np.random.default_rng(16)
    z = rng.standard_normal((6, 4)).astype(dtype)
    t = np.eye(4, dtype=dtype)[rng.integers(0, 4, 6)]
    _, g = ops.loss_and_grad(t, z, "categorical_crossentropy", from_logits=True)
    want = (ref_act("softmax", z.astype(np.float64)) - t) / 6
    np.testing.assert_allclose(g, want, rtol=0, atol=8 * eps(dtype))


# --------------------------------------------------------------------------
# Extreme inputs
# --------------------------------------------------------------------------

def test_bce_logits_extremes(isa, dtype):
    t = np.array([[1, 0, 1, 0]], dtype)
    z = np.array([[1000, -1000, -1000, 1000]], dtype)
    val, g = ops.loss_and_grad(t, z, "binary_crossentropy", from_logits=True)
    assert val == pytest.approx((0 + 0 + 1000 + 1000) / 4, rel=1e-12)
    np.testing.assert_allclose(g, [[0, 0, -0.25, 0.25]], rtol=0, atol=1e-30)
    per = ops.loss(t, z, "binary_crossentropy", from_logits=True, reduction="none")
    assert np.all(np.isfinite(per))


@pytest.mark.parametrize("sparse", [False, True])
def test_cce_logits_extremes(isa, dtype, sparse):
    z = np.array([[1000, -1000, 0], [-1000, 1000, 0], [1000, 1000, -1000]], dtype)
    labels = np.array([0, 0, 1])
    t = labels if sparse else np.eye(3, dtype=dtype)[labels]
    name = "sparse_categorical_crossentropy" if sparse else "categorical_crossentropy"
    per = ops.loss(t, z, name, from_logits=True, reduction="none")
    # backward-stable: an error of a few ulps of the logits' size (see the exact test below)
    np.testing.assert_allclose(per, [0, 2000, np.log(2)], rtol=8 * eps(dtype),
                               atol=8 * eps(dtype) * 1000)
    _, g = ops.loss_and_grad(t, z, name, from_logits=True, reduction="sum")
    assert np.all(np.isfinite(g))
    np.testing.assert_allclose(g, [[0, 0, 0], [-1, 1, 0], [0.5, -0.5, 0]],
                               rtol=0, atol=4 * eps(dtype))


@pytest.mark.parametrize("sparse", [False, True])
def test_cce_logits_accurate_for_large_logits(isa, sparse):
    """float64: the loss of [c, c, -c] against class 1 is ln 2 to a few ulps for any c.
    (float32 input is computed in double inside, so only float64 shows it.)"""
    for c in (1000.0, 1e6):
        z = np.array([[c, c, -c]])
        t = np.array([1]) if sparse else np.array([[0.0, 1.0, 0.0]])
        name = "sparse_categorical_crossentropy" if sparse else "categorical_crossentropy"
        assert ops.loss(t, z, name, from_logits=True) == pytest.approx(np.log(2), rel=4e-16)


def test_bce_probabilities_zero_and_one(isa, dtype):
    t = np.array([1, 0, 1, 0], dtype)
    p = np.array([1, 0, 0, 1], dtype)
    per_el = ops.loss(t[:, None], p[:, None], "binary_crossentropy", reduction="none")
    _, g = ops.loss_and_grad(t, p, "binary_crossentropy")
    assert np.all(np.isfinite(per_el)) and np.all(np.isfinite(g))
    # right predictions cost ~0, wrong ones -log(eps) (eps = 1e-7, held in the dtype)
    assert np.all(per_el[:2] < 1e-6)
    e = float(np.array(1e-7, dtype))
    hi = -math.log(e)
    lo = -math.log(1 - float(np.array(1, dtype) - np.array(1e-7, dtype)))
    assert np.all((per_el[2:] >= min(lo, hi) * (1 - 1e-6)) & (per_el[2:] <= hi * (1 + 1e-6)))
    if dtype == np.float64:
        np.testing.assert_allclose(per_el[2:], -np.log(1e-7), rtol=1e-9)
    # the gradient pushes each wrong prediction the right way
    assert g[2] < 0 and g[3] > 0


@pytest.mark.parametrize("sparse", [False, True])
def test_cce_probabilities_zero_and_one(isa, dtype, sparse):
    p = np.array([[1, 0, 0], [0, 1, 0]], dtype)
    labels = np.array([0, 2])
    t = labels if sparse else np.eye(3, dtype=dtype)[labels]
    name = "sparse_categorical_crossentropy" if sparse else "categorical_crossentropy"
    per = ops.loss(t, p, name, reduction="none")
    _, g = ops.loss_and_grad(t, p, name)
    assert np.all(np.isfinite(per)) and np.all(np.isfinite(g))
    assert per[0] < 1e-6
    assert per[1] == pytest.approx(-np.log(1e-7), rel=1e-6)
    assert g[1, 2] < 0


@pytest.mark.parametrize("ref,name,from_logits", CASES, ids=IDS)
def test_nan_prediction_gives_nan_loss(isa, dtype, ref, name, from_logits):
    t = np.array([0, 1]) if ref == "sparse" else np.array([[1, 0, 0], [0, 1, 0]], dtype)
    p = np.array([[0.2, 0.5, 0.3], [0.3, np.nan, 0.2]], dtype)  # NaN at the label
    per = ops.loss(t, p, name, from_logits=from_logits, reduction="none")
    assert np.isfinite(per[0]) and np.isnan(per[1])


@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("k", [3, 10, 128, 129, 300])
def test_softmax_cross_entropy_batch_is_its_rows(isa, dtype, sparse, k):
    """Short rows are taken many to one exponential call; the losses and the
    gradient must be bit for bit those of each row alone, at every group
    boundary (70 rows: several groups and a partial one at k = 10)."""
    rng = np.random.default_rng(k)
    z = (rng.standard_normal((70, k)) * 4).astype(dtype)
    z[5, 1] = np.nan  # a NaN row stays in its row
    labels = rng.integers(0, k, 70)
    t = labels if sparse else np.eye(k, dtype=dtype)[labels]
    if not sparse:
        t[3] = ref_act("softmax", rng.standard_normal(k)).astype(dtype)
    name = "sparse_categorical_crossentropy" if sparse else "categorical_crossentropy"
    per = ops.loss(t, z, name, from_logits=True, reduction="none")
    _, g = ops.loss_and_grad(t, z, name, from_logits=True, reduction="sum")
    for i in range(70):
        per_i = ops.loss(t[i:i + 1], z[i:i + 1], name, from_logits=True, reduction="none")
        _, g_i = ops.loss_and_grad(t[i:i + 1], z[i:i + 1], name, from_logits=True,
                                   reduction="sum")
        np.testing.assert_array_equal(per[i:i + 1], per_i)
        np.testing.assert_array_equal(g[i:i + 1], g_i)
    assert np.isnan(per[5]) and np.all(np.isfinite(np.delete(per, 5)))


# --------------------------------------------------------------------------
# In place (out = y_pred)
# --------------------------------------------------------------------------

@pytest.mark.parametrize("ref,name,from_logits", CASES, ids=IDS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_gradient_in_place_over_predictions(isa, dtype, ref, name, from_logits, reduction):
    """loss_and_grad documents that out may be y_pred: the loss must not change."""
    rng = np.random.default_rng(17)
    t, p = _data(ref, from_logits, (4, 5), rng)
    t, p = _cast(t, p, dtype, ref)
    want_l, want_g = ops.loss_and_grad(t, p, name, from_logits, reduction)
    p2 = p.copy()
    got_l, got_g = ops.loss_and_grad(t, p2, name, from_logits, reduction, out=p2)
    assert got_g is p2
    np.testing.assert_array_equal(got_l, want_l)
    np.testing.assert_array_equal(got_g, want_g)


@pytest.mark.parametrize("ref,name,from_logits", [c for c in CASES if c[0] != "sparse"],
                         ids=[i for c, i in zip(CASES, IDS) if c[0] != "sparse"])
def test_gradient_in_place_over_targets(isa, dtype, ref, name, from_logits):
    """The boundary lets out be y_true exactly; then the result must still be right."""
    rng = np.random.default_rng(18)
    t, p = _data(ref, from_logits, (4, 5), rng)
    t, p = _cast(t, p, dtype, ref)
    want_l, want_g = ops.loss_and_grad(t, p, name, from_logits)
    t2 = t.copy()
    got_l, got_g = ops.loss_and_grad(t2, p, name, from_logits, out=t2)
    np.testing.assert_array_equal(got_l, want_l)
    np.testing.assert_array_equal(got_g, want_g)


# --------------------------------------------------------------------------
# The course's worked numbers
# --------------------------------------------------------------------------

@pytest.mark.parametrize("w,cost", [(0.0, 14 / 3), (1.0, 0.0), (2.0, 14 / 3)])
def test_course_mse_cost_of_linear_regression(isa, dtype, w, cost):
    """Course 001: H(x) = W x on x = y = (1, 2, 3); cost(0) = 4.67, cost(1) = 0,
    cost(2) = 4.67."""
    x = np.array([[1], [2], [3]], dtype)
    y = np.array([1, 2, 3], dtype)
    h = ops.dense_forward(x, np.array([[w]], dtype))
    c = losses.get("mse")(y, h)
    assert round(c, 2) == round(cost, 2)
    assert c == pytest.approx(cost, rel=4 * eps(dtype), abs=0)
    # the gradient-descent step: dcost/dW = (2/m) sum((W x_i - y_i) x_i)
    _, dh = ops.loss_and_grad(y, h, "mse")
    _, dw, _ = ops.dense_backward(x, np.array([[w]], dtype), dh, need_dx=False)
    assert dw[0, 0] == pytest.approx(2 / 3 * (w - 1) * 14, abs=8 * eps(dtype))


def test_course_binary_crossentropy_table(isa, dtype):
    """Course 001: actual (1,1,1,0,0,1,1,0), predicted (0.94, ..., 0.10): with log10 the
    log loss is 0.214; nncore uses the natural log, so its loss is 0.214 * ln 10."""
    t = np.array([1, 1, 1, 0, 0, 1, 1, 0], dtype)
    p = np.array([0.94, 0.90, 0.78, 0.56, 0.51, 0.47, 0.32, 0.10], dtype)
    bce = losses.get("binary_crossentropy")
    val = bce(t, p)
    assert isinstance(val, float)
    assert round(val / math.log(10), 3) == 0.214
    want = -np.mean(t * np.log(p.astype(np.float64)) + (1 - t) * np.log(1 - p.astype(np.float64)))
    assert val == pytest.approx(want, rel=16 * eps(dtype))
    assert bce(t, p, reduction="sum") == pytest.approx(8 * want, rel=16 * eps(dtype))


# --------------------------------------------------------------------------
# Names
# --------------------------------------------------------------------------

@pytest.mark.parametrize("alias,canonical", [
    ("mse", "mean_squared_error"), ("mean_squared_error", "mean_squared_error"),
    ("MSE", "mean_squared_error"), ("mae", "mean_absolute_error"),
    ("mean_absolute_error", "mean_absolute_error"), ("binary_crossentropy", "binary_crossentropy"),
    ("bce", "binary_crossentropy"), ("categorical_crossentropy", "categorical_crossentropy"),
    ("cce", "categorical_crossentropy"),
    ("sparse_categorical_crossentropy", "sparse_categorical_crossentropy"),
])
def test_get_names(alias, canonical):
    fn = losses.get(alias)
    assert fn is getattr(losses, canonical)
    assert fn.__name__ == canonical


def test_get_returns_float_and_from_logits():
    bce = losses.get("binary_crossentropy")
    t = np.array([1.0, 0.0])
    z = np.array([2.0, -1.0])
    v1 = bce(t, z, from_logits=True)
    v2 = bce(t, 1 / (1 + np.exp(-z)))
    assert type(v1) is float and type(v2) is float
    assert v1 == pytest.approx(v2, rel=1e-12)
    cce = losses.get("categorical_crossentropy")
    assert cce(np.eye(3), np.eye(3) * 50, from_logits=True) == pytest.approx(
        float(np.log1p(2 * np.exp(-50.0))), rel=1e-9)
    scce = losses.get("sparse_categorical_crossentropy")
    assert scce([0, 1, 2], np.eye(3) * 50, from_logits=True) == pytest.approx(
        float(np.log1p(2 * np.exp(-50.0))), rel=1e-9)


def test_get_callable_and_unknown():
    f = lambda t, p: 0.0  # noqa: E731
    assert losses.get(f) is f
    with pytest.raises(ValueError, match="hinge"):
        losses.get("hinge")
    with pytest.raises(TypeError):
        losses.get(None)


@pytest.mark.parametrize("name", ["mse", "mae"])
def test_from_logits_rejected_where_meaningless(name):
    with pytest.raises(ValueError, match="from_logits"):
        ops.loss(np.zeros(3), np.zeros(3), name, from_logits=True)


@pytest.mark.parametrize("bad", ["avg", "MEAN ", None, 0])
def test_bad_reduction(bad):
    with pytest.raises(ValueError, match="reduction"):
        ops.loss(np.zeros(3), np.zeros(3), "mse", reduction=bad)


@pytest.mark.parametrize("from_logits", [False, True])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cce_targets_not_summing_to_one(isa, from_logits, reduction):
    """Multi-label or scaled targets: the loss is still -sum t log p (or its fused
    form, sum(t) lse - t.z), and the gradient is its derivative."""
    rng = np.random.default_rng(19)
    t = rng.uniform(0, 2, (4, 5))
    z = rng.standard_normal((4, 5))
    p = z if from_logits else ref_act("softmax", z) * 0.9  # not normalised either
    val, g = ops.loss_and_grad(t, p, "categorical_crossentropy", from_logits, reduction)
    np.testing.assert_allclose(val, ref_loss("cce", t, p, from_logits, reduction), rtol=1e-13)
    f = lambda v: float(np.sum(ops.loss(t, v, "categorical_crossentropy", from_logits,  # noqa: E731
                                        reduction)))
    np.testing.assert_allclose(g, fd_grad(f, p), rtol=1e-6, atol=1e-9)
