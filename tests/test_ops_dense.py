"""The three products of a dense layer and the layer's forward and backward.

Y = X W + b, dX = dY W^T, dW = X^T dY, db = column sums of dY, each checked
against a float64 NumPy product of the same (already rounded) inputs with the
classical dot-product error bound, at every kernel level.
"""
import numpy as np
import pytest

from nncore import _core, ops
from conftest import (ACTIVATIONS, fd_grad, gemm_bound, ref_act, ref_act_grad)

SHAPES = [  # (m, k, n)
    (0, 3, 4), (3, 0, 4), (3, 4, 0), (0, 0, 0),
    (1, 1, 1), (1, 7, 1), (7, 1, 5), (2, 3, 5), (13, 17, 19), (31, 37, 29),
    (1, 256, 64), (32, 64, 32), (256, 3, 2), (2, 3, 200), (5, 300, 3),
    (127, 129, 131), (200, 150, 170),
]


def _operands(rng, m, k, n, trans_a, trans_b, dtype):
    a = rng.standard_normal((k, m) if trans_a else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if trans_b else (k, n)).astype(dtype)
    return a, b


def _op(x, t):
    return x.T if t else x


def _check_product(got, a64, b64, k, dtype, alpha=1.0, beta=0.0, c0=None):
    ref = alpha * (a64 @ b64)
    bound = gemm_bound(abs(alpha) * (np.abs(a64) @ np.abs(b64)), k, dtype)
    if c0 is not None and beta != 0:
        c64 = c0.astype(np.float64)
        ref = ref + beta * c64
        bound = bound + 2 * np.finfo(dtype).eps * np.abs(beta * c64)
    assert got.dtype == dtype
    assert got.shape == ref.shape
    err = np.abs(got.astype(np.float64) - ref)
    assert np.all(err <= bound), f"max error {err.max()} over bound {bound[err.argmax()] if err.size else 0}"


@pytest.mark.parametrize("m,k,n", SHAPES)
@pytest.mark.parametrize("trans_a", [False, True], ids=["N", "T"])
@pytest.mark.parametrize("trans_b", [False, True], ids=["N", "T"])
def test_matmul_all_transposes(isa, dtype, m, k, n, trans_a, trans_b):
    rng = np.random.default_rng(m * 10007 + k * 101 + n)
    a, b = _operands(rng, m, k, n, trans_a, trans_b, dtype)
    got = ops.matmul(a, b, trans_a, trans_b)
    _check_product(got, _op(a, trans_a).astype(np.float64), _op(b, trans_b).astype(np.float64),
                   k, dtype)


@pytest.mark.parametrize("trans_a", [False, True])
@pytest.mark.parametrize("trans_b", [False, True])
@pytest.mark.parametrize("alpha,beta", [(1.0, 0.0), (2.5, 0.0), (-0.5, 1.0), (1.0, 1.0),
                                        (0.0, 2.0), (1.5, -0.75)])
def test_gemm_alpha_beta(isa, dtype, trans_a, trans_b, alpha, beta):
    m, k, n = 23, 41, 17
    rng = np.random.default_rng(7)
    a, b = _operands(rng, m, k, n, trans_a, trans_b, dtype)
    c0 = rng.standard_normal((m, n)).astype(dtype)
    out = c0.copy()
    got = _core.gemm(a, b, trans_a, trans_b, out, alpha, beta)
    assert got is out
    _check_product(out, _op(a, trans_a).astype(np.float64), _op(b, trans_b).astype(np.float64),
                   k, dtype, alpha, beta, c0)


def test_gemm_beta_zero_overwrites_nan(isa, dtype):
    """beta == 0 overwrites the output, NaN and inf included (BLAS convention)."""
    a = np.ones((3, 4), dtype)
    b = np.ones((4, 5), dtype)
    out = np.full((3, 5), np.nan, dtype)
    out[0, 0] = np.inf
    _core.gemm(a, b, out=out, beta=0.0)
    np.testing.assert_array_equal(out, np.full((3, 5), 4, dtype))


def test_gemm_k_zero_scales_output(isa, dtype):
    """An empty sum is 0: with k == 0 the result is beta * out."""
    a = np.ones((3, 0), dtype)
    b = np.ones((0, 2), dtype)
    out = np.full((3, 2), 5, dtype)
    _core.gemm(a, b, out=out, alpha=1.0, beta=0.5)
    np.testing.assert_array_equal(out, np.full((3, 2), 2.5, dtype))
    np.testing.assert_array_equal(ops.matmul(a, b), np.zeros((3, 2), dtype))


def test_matmul_out(isa, dtype):
    rng = np.random.default_rng(3)
    a = rng.standard_normal((9, 11)).astype(dtype)
    b = rng.standard_normal((11, 6)).astype(dtype)
    out = np.full((9, 6), np.nan, dtype)
    res = ops.matmul(a, b, out=out)
    assert res is out
    _check_product(out, a.astype(np.float64), b.astype(np.float64), 11, dtype)


def test_matmul_integer_exact(isa, dtype):
    """Small integers multiply exactly in either precision: the result must be exact."""
    rng = np.random.default_rng(11)
    a = rng.integers(-8, 9, size=(33, 45)).astype(dtype)
    b = rng.integers(-8, 9, size=(45, 27)).astype(dtype)
    for ta in (False, True):
        for tb in (False, True):
            aa = np.ascontiguousarray(a.T) if ta else a
            bb = np.ascontiguousarray(b.T) if tb else b
            np.testing.assert_array_equal(ops.matmul(aa, bb, ta, tb),
                                          (a.astype(np.int64) @ b.astype(np.int64)).astype(dtype))


def test_matmul_transpose_flags_differ_from_no_flags(isa):
    """The flags are honoured: a square non-symmetric a gives a.T @ b with trans_a."""
    a = np.arange(9, dtype=np.float64).reshape(3, 3)
    b = np.eye(3)
    np.testing.assert_array_equal(ops.matmul(a, b, trans_a=True), a.T)
    np.testing.assert_array_equal(ops.matmul(b, a, trans_b=True), a.T)


def test_matmul_reads_views_correctly(isa, dtype):
    """Non-contiguous operands (transposed, sliced) give the product of their values."""
    rng = np.random.default_rng(5)
    base = rng.standard_normal((20, 30)).astype(dtype)
    a = base[::2, 1::3]          # (10, 10), strided
    b = base.T[:10, :7]          # (10, 7), Fortran-ordered view
    got = ops.matmul(a, b)
    _check_product(got, a.astype(np.float64), b.astype(np.float64), 10, dtype)


# --------------------------------------------------------------------------
# Dense forward
# --------------------------------------------------------------------------

@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("m,k,n", [(1, 1, 1), (5, 7, 3), (32, 64, 32), (3, 129, 17)])
def test_dense_forward_every_activation(isa, dtype, activation, m, k, n):
    rng = np.random.default_rng(m + k + n)
    x = rng.standard_normal((m, k)).astype(dtype)
    w = (rng.standard_normal((k, n)) / np.sqrt(k)).astype(dtype)
    b = rng.standard_normal(n).astype(dtype)
    y = ops.dense_forward(x, w, b, activation=activation)
    assert y.dtype == dtype and y.shape == (m, n)
    z64 = x.astype(np.float64) @ w.astype(np.float64) + b.astype(np.float64)
    ref = ref_act(activation, z64)
    # z carries the product's rounding error; propagate it through f'(z)
    zerr = gemm_bound(np.abs(x.astype(np.float64)) @ np.abs(w.astype(np.float64))
                      + np.abs(b.astype(np.float64)), k + 1, dtype)
    if activation == "step":
        keep = np.abs(z64) > zerr  # the step is discontinuous at 0
        np.testing.assert_array_equal(y[keep], ref[keep])
        return
    slope = 1.0 if activation in ("softmax", "log_softmax") else np.abs(
        ref_act_grad(activation, z64, np.ones_like(z64)))
    if activation in ("softmax", "log_softmax"):
        zerr = np.max(zerr, axis=-1, keepdims=True) * 2
    tol = slope * zerr + 8 * np.finfo(dtype).eps * np.abs(ref) + np.finfo(dtype).tiny
    err = np.abs(y.astype(np.float64) - ref)
    assert np.all(err <= tol), f"max error {err.max()}"


def test_dense_forward_without_bias(isa, dtype):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((6, 5)).astype(dtype)
    w = rng.standard_normal((5, 4)).astype(dtype)
    y = ops.dense_forward(x, w, None, activation="relu")
    z = x.astype(np.float64) @ w.astype(np.float64)
    np.testing.assert_allclose(y, np.maximum(z, 0), rtol=0,
                               atol=gemm_bound(np.abs(x.astype(np.float64)) @ np.abs(w.astype(np.float64)), 5, dtype).max())


def test_dense_forward_leaky_and_elu_params(isa):
    x = np.array([[-2.0, 1.0]])
    w = np.eye(2)
    b = np.zeros(2)
    np.testing.assert_array_equal(ops.dense_forward(x, w, b, "leaky_relu", alpha=0.1),
                                  [[-0.2, 1.0]])
    np.testing.assert_allclose(ops.dense_forward(x, w, b, "elu", alpha=2.0),
                               [[2.0 * np.expm1(-2.0), 1.0]], rtol=1e-15)


def test_dense_forward_out(isa, dtype):
    x = np.ones((4, 3), dtype)
    w = np.ones((3, 2), dtype)
    b = np.array([1, -10], dtype)
    out = np.full((4, 2), np.nan, dtype)
    res = ops.dense_forward(x, w, b, activation="relu", out=out)
    assert res is out
    np.testing.assert_array_equal(out, np.tile(np.array([4, 0], dtype), (4, 1)))


def test_error_redistribution_example(isa, dtype):
    """Course 000: inputs 0.4, 0.3, 0.1 with weights 0.1, 0.3, 0.2 give 0.15; the
    target is 0.2, so the error is 0.05."""
    x = np.array([[0.4, 0.3, 0.1]], dtype)
    w = np.array([[0.1], [0.3], [0.2]], dtype)
    y = ops.dense_forward(x, w)
    assert y.shape == (1, 1)
    tol = 4 * np.finfo(dtype).eps
    assert abs(float(y[0, 0]) - 0.15) <= tol
    assert abs((0.2 - float(y[0, 0])) - 0.05) <= tol


def test_layer_as_matrix_product_shapes(isa):
    """Course 001: X[n,3] @ W[3,2] = Y[n,2]; shapes must agree."""
    x = np.ones((5, 3))
    assert ops.dense_forward(x, np.ones((3, 2))).shape == (5, 2)
    with pytest.raises(ValueError, match=r"\(5, 3\).*\(2, 2\)"):
        ops.dense_forward(x, np.ones((2, 2)))


# --------------------------------------------------------------------------
# Dense backward
# --------------------------------------------------------------------------

@pytest.mark.parametrize("m,k,n", [(1, 1, 1), (4, 3, 2), (0, 3, 2), (3, 0, 2), (3, 2, 0),
                                   (32, 64, 32), (1, 256, 64), (37, 19, 23)])
def test_dense_backward(isa, dtype, m, k, n):
    rng = np.random.default_rng(m * 7 + k * 3 + n)
    x = rng.standard_normal((m, k)).astype(dtype)
    w = rng.standard_normal((k, n)).astype(dtype)
    dz = rng.standard_normal((m, n)).astype(dtype)
    dx, dw, db = ops.dense_backward(x, w, dz)
    x64, w64, dz64 = (v.astype(np.float64) for v in (x, w, dz))
    _check_product(dx, dz64, w64.T, n, dtype)
    _check_product(dw, x64.T, dz64, m, dtype)
    _check_product(db[None, :], np.ones((1, m)), dz64, m, dtype)


def test_dense_backward_flags(isa, dtype):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((5, 4)).astype(dtype)
    w = rng.standard_normal((4, 3)).astype(dtype)
    dz = rng.standard_normal((5, 3)).astype(dtype)
    full = ops.dense_backward(x, w, dz)
    for flags in [(True, False, False), (False, True, False), (False, False, True),
                  (False, True, True), (True, True, False)]:
        got = ops.dense_backward(x, w, dz, need_dx=flags[0], need_dw=flags[1], need_db=flags[2])
        for want, g, f in zip(flags, got, full):
            if want:
                np.testing.assert_array_equal(g, f)
            else:
                assert g is None


def test_dense_backward_beta_accumulates_micro_batches(isa, dtype):
    """beta = 1 sums the gradients of two micro-batches into the full batch's."""
    rng = np.random.default_rng(4)
    m, k, n = 24, 13, 7
    x = rng.standard_normal((m, k)).astype(dtype)
    w = rng.standard_normal((k, n)).astype(dtype)
    dz = rng.standard_normal((m, n)).astype(dtype)
    dw = np.empty((k, n), dtype)
    db = np.empty(n, dtype)
    ops.dense_backward(x[:10], w, dz[:10], need_dx=False, dw=dw, db=db)
    res = ops.dense_backward(x[10:], w, dz[10:], need_dx=False, dw=dw, db=db, beta=1.0)
    assert res[1] is dw and res[2] is db
    x64, dz64 = x.astype(np.float64), dz.astype(np.float64)
    _check_product(dw, x64.T, dz64, m, dtype)
    _check_product(db[None, :], np.ones((1, m)), dz64, m, dtype)
    # and the same as one call over the whole batch, to rounding
    _, dw_full, db_full = ops.dense_backward(x, w, dz, need_dx=False)
    tol = 4 * m * np.finfo(dtype).eps * (np.abs(x64).T @ np.abs(dz64))
    assert np.all(np.abs(dw - dw_full) <= tol)


def test_dense_backward_beta_scales(isa, dtype):
    rng = np.random.default_rng(6)
    x = rng.standard_normal((4, 3)).astype(dtype)
    w = rng.standard_normal((3, 2)).astype(dtype)
    dz = rng.standard_normal((4, 2)).astype(dtype)
    dw0 = rng.standard_normal((3, 2)).astype(dtype)
    db0 = rng.standard_normal(2).astype(dtype)
    dw, db = dw0.copy(), db0.copy()
    ops.dense_backward(x, w, dz, need_dx=False, dw=dw, db=db, beta=0.5)
    x64, dz64 = x.astype(np.float64), dz.astype(np.float64)
    np.testing.assert_allclose(dw, x64.T @ dz64 + 0.5 * dw0, rtol=0, atol=30 * np.finfo(dtype).eps)
    np.testing.assert_allclose(db, dz64.sum(0) + 0.5 * db0, rtol=0, atol=30 * np.finfo(dtype).eps)


def test_dense_backward_beta_zero_overwrites_nan(isa, dtype):
    x = np.ones((2, 3), dtype)
    w = np.ones((3, 4), dtype)
    dz = np.ones((2, 4), dtype)
    dx = np.full((2, 3), np.nan, dtype)
    dw = np.full((3, 4), np.nan, dtype)
    db = np.full(4, np.nan, dtype)
    ops.dense_backward(x, w, dz, dx=dx, dw=dw, db=db)
    np.testing.assert_array_equal(dx, np.full((2, 3), 4, dtype))
    np.testing.assert_array_equal(dw, np.full((3, 4), 2, dtype))
    np.testing.assert_array_equal(db, np.full(4, 2, dtype))


# --------------------------------------------------------------------------
# A whole layer + loss, by finite differences (float64)
# --------------------------------------------------------------------------

LAYER_CASES = [
    ("linear", "mse", False),
    ("tanh", "mae", False),
    ("sigmoid", "binary_crossentropy", False),
    ("linear", "binary_crossentropy", True),
    ("softmax", "categorical_crossentropy", False),
    ("linear", "categorical_crossentropy", True),
    ("log_softmax", "mse", False),
    ("elu", "mse", False),
    ("leaky_relu", "mse", False),
    ("softplus", "mse", False),
    ("relu", "mse", False),
]


@pytest.mark.parametrize("activation,loss,from_logits", LAYER_CASES)
def test_dense_layer_gradients_by_finite_differences(isa, activation, loss, from_logits):
    rng = np.random.default_rng(sum(map(ord, activation + loss)))
    m, k, n = 5, 4, 3
    x = rng.standard_normal((m, k))
    w = rng.standard_normal((k, n)) * 0.7
    b = rng.standard_normal(n) * 0.3
    if loss in ("binary_crossentropy",):
        t = rng.integers(0, 2, size=(m, n)).astype(np.float64)
    elif loss == "categorical_crossentropy":
        t = np.eye(n)[rng.integers(0, n, size=m)]
    else:
        t = rng.standard_normal((m, n))

    def total(x_, w_, b_):
        y = ops.dense_forward(x_, w_, b_, activation=activation)
        return ops.loss(t, y, loss, from_logits=from_logits)

    y = ops.dense_forward(x, w, b, activation=activation)
    if activation in ("relu", "leaky_relu", "elu"):
        z = x @ w + b  # stay off the kink, where the difference quotient is meaningless
        assert np.min(np.abs(z)) > 1e-4  # h = 1e-6 moves z by ~1e-6
    _, dy = ops.loss_and_grad(t, y, loss, from_logits=from_logits)
    dz = ops.activation_backward(y, dy, activation)
    dx, dw, db = ops.dense_backward(x, w, dz)

    np.testing.assert_allclose(dx, fd_grad(lambda v: total(v, w, b), x), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(dw, fd_grad(lambda v: total(x, v, b), w), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(db, fd_grad(lambda v: total(x, w, v), b), rtol=1e-6, atol=1e-8)


# --------------------------------------------------------------------------
# No transposed copies; threads
# --------------------------------------------------------------------------

@pytest.mark.parametrize("trans_a,trans_b", [(True, False), (False, True), (True, True)])
def test_transposes_are_not_copied_at_the_boundary(isa, trans_a, trans_b):
    """The transpose flags read the operand in place: NumPy allocates nothing but the
    result (a transposed copy of a would be 16x larger than the output here)."""
    import tracemalloc
    rng = np.random.default_rng(0)
    m, k, n = 8, 4000, 8
    a = rng.standard_normal((k, m) if trans_a else (m, k))
    b = rng.standard_normal((n, k) if trans_b else (k, n))
    ops.matmul(a, b, trans_a, trans_b)  # warm up
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        ops.matmul(a, b, trans_a, trans_b)
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    assert peak < m * n * 8 + 4096, peak
    # and for the backward pass, which uses two transposed products
    x = rng.standard_normal((m, k))
    w = rng.standard_normal((k, n))
    dz = rng.standard_normal((m, n))
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        ops.dense_backward(x, w, dz)
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    assert peak < (m * k + k * n + n) * 8 + 4096, peak


def test_results_identical_at_any_thread_count(isa, dtype):
    """nncore.h: results are bit-identical at any thread count."""
    rng = np.random.default_rng(8)
    a = rng.standard_normal((150, 170)).astype(dtype)
    b = rng.standard_normal((170, 130)).astype(dtype)
    dz = rng.standard_normal((150, 130)).astype(dtype)
    prev = _core.get_num_threads()
    try:
        results = []
        for t in (1, 2, 3):
            _core.set_num_threads(t)
            results.append((ops.matmul(a, b), ops.matmul(a, a, True, False),
                            ops.matmul(b, b, False, True), *ops.dense_backward(a, b, dz)))
    finally:
        _core.set_num_threads(prev)
    for other in results[1:]:
        for r0, r1 in zip(results[0], other):
            np.testing.assert_array_equal(r0, r1)


@pytest.mark.parametrize("m, k, n", [(64, 256, 10), (37, 300, 1), (5, 64, 15), (64, 256, 16),
                                     (64, 63, 10)])
def test_narrow_weight_gradient_is_the_product_bit_for_bit(isa, dtype, m, k, n):
    # a narrow dW (n < 16: a classifier's head) is computed as dZ^T X and
    # transposed: each element the same chain over the samples as X^T dZ
    rng = np.random.default_rng(m + k + n)
    x = rng.standard_normal((m, k)).astype(dtype)
    w = rng.standard_normal((k, n)).astype(dtype)
    dz = rng.standard_normal((m, n)).astype(dtype)
    dz[rng.random(dz.shape) < 0.05] = np.nan
    _, dw, _ = _core.dense_backward(x, w, dz, want_dx=False, want_db=False)
    want = ops.matmul(np.ascontiguousarray(x.T), dz)
    assert dw.tobytes() == want.tobytes()
    # beta != 0 (accumulation) keeps the direct product
    acc = np.ones((k, n), dtype)
    _core.dense_backward(x, w, dz, want_dx=False, want_db=False, dw=acc, beta=0.5)
    np.testing.assert_allclose(acc, want + 0.5, rtol=1e-4, atol=1e-4)
