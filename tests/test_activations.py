"""Activations, forward and backward, against float64 references and finite differences."""
import numpy as np
import pytest

from nncore import _core, activations, ops
from conftest import (ACTIVATIONS, PARAM_DEFAULT, fd_elementwise, fd_grad, ref_act,
                      ref_act_grad)

ELEMENTWISE = [a for a in ACTIVATIONS if a not in ("softmax", "log_softmax")]
ROWWISE = ("softmax", "log_softmax")
KINKED = ("step", "relu", "leaky_relu", "elu")


def _inputs(rng, dtype, shape=(9, 13), scale=6.0):
    x = rng.standard_normal(shape) * scale
    fixed = [0.5, -0.5, 1e-3, -1e-3, 20.0, -20.0, 3.0]
    n = min(len(fixed), x.size)
    x.reshape(-1)[:n] = fixed[:n]
    return x.astype(dtype)


def _fwd_tol(name, x64, ref, dtype):
    """A few ulps of the result; the softmaxes also carry exp's amplification of
    the rounding of x - max (relative error ~ eps * |x - max|)."""
    e = np.finfo(dtype).eps
    tiny = 4 * np.finfo(dtype).tiny
    if name in ROWWISE:
        spread = np.abs(x64 - np.max(x64, axis=-1, keepdims=True))
        if name == "softmax":
            return 16 * e * (1 + spread) * np.abs(ref) + tiny
        lse = np.abs(ref - x64)  # |logsumexp|
        return 16 * e * (np.abs(x64) + lse + 1) + tiny
    return 16 * e * np.abs(ref) + tiny


@pytest.mark.parametrize("name", ACTIVATIONS)
@pytest.mark.parametrize("shape", [(9, 13), (1, 1), (3, 1), (2, 3, 70), (257,)])
def test_forward_matches_reference(isa, dtype, name, shape):
    rng = np.random.default_rng(sum(map(ord, name)) + sum(shape))
    x = _inputs(rng, dtype, shape)
    y = ops.activation_forward(x, name)
    assert y.dtype == dtype and y.shape == x.shape
    x64 = x.astype(np.float64)
    ref = ref_act(name, x64)
    err = np.abs(y.astype(np.float64) - ref)
    tol = _fwd_tol(name, x64, ref, dtype)
    assert np.all(err <= tol), f"{name}: max error {err.max()} at x={x64.reshape(-1)[err.argmax()]}"


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_named_function_equals_ops(isa, dtype, name):
    rng = np.random.default_rng(0)
    x = _inputs(rng, dtype, (4, 6))
    np.testing.assert_array_equal(activations.get(name)(x), ops.activation_forward(x, name))


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_backward_matches_reference(isa, dtype, name):
    rng = np.random.default_rng(len(name))
    x = _inputs(rng, dtype, (7, 11), scale=3.0)
    dy = rng.standard_normal(x.shape).astype(dtype)
    y = ops.activation_forward(x, name)
    dx = ops.activation_backward(y, dy, name)
    assert dx.dtype == dtype and dx.shape == x.shape
    x64, dy64 = x.astype(np.float64), dy.astype(np.float64)
    ref = ref_act_grad(name, x64, dy64)
    e = np.finfo(dtype).eps
    # y carries a few ulps; the derivative formulas from y (1 - y^2, y (1 - y),
    # y + alpha, ...) turn that into an absolute error of a few eps * |dy|
    scale = np.max(np.abs(dy64), axis=-1, keepdims=True) * (1 + np.max(np.abs(x64), axis=-1, keepdims=True)) \
        if name in ROWWISE else np.abs(dy64)
    tol = 32 * e * scale + 16 * e * np.abs(ref)
    err = np.abs(dx.astype(np.float64) - ref)
    assert np.all(err <= tol), f"{name}: max error {err.max()}"


FD_CASES = [(n, None) for n in ELEMENTWISE] + [(n, p) for n in PARAM_DEFAULT
                                                 for p in (0.0, 0.05, 1.7)]


@pytest.mark.parametrize("name,param", FD_CASES)
def test_backward_by_finite_differences_elementwise(isa, name, param):
    rng = np.random.default_rng(1)
    x = rng.uniform(-4, 4, size=(6, 10))
    x[np.abs(x) < 1e-3] = 0.5  # off the kinks
    dy = rng.standard_normal(x.shape)
    y = ops.activation_forward(x, name, param)
    got = ops.activation_backward(y, dy, name, param)
    fd = fd_elementwise(lambda v: ops.activation_forward(v, name, param), x) * dy
    np.testing.assert_allclose(got, fd, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("name", ROWWISE)
def test_backward_by_finite_differences_rowwise(isa, name):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 5)) * 2
    dy = rng.standard_normal(x.shape)
    y = ops.activation_forward(x, name)
    got = ops.activation_backward(y, dy, name)
    fd = fd_grad(lambda v: float(np.sum(dy * ops.activation_forward(v, name))), x)
    np.testing.assert_allclose(got, fd, rtol=1e-7, atol=1e-9)


def test_step_derivative_is_zero(isa, dtype):
    x = np.array([-2, -1e-30, 0, 1e-30, 3], dtype)
    y = ops.activation_forward(x, "step")
    np.testing.assert_array_equal(y, [0, 0, 0, 1, 1])
    dx = ops.activation_backward(y, np.full_like(x, 7), "step")
    np.testing.assert_array_equal(dx, np.zeros_like(x))


EXTREMES = np.array([-1000.0, 1000.0, -np.inf, np.inf, np.nan, -0.0, 0.0, 1e-30, -1e-30,
                     80.0, -80.0, 1e-8, -1e-8])


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_forward_extreme_inputs(isa, dtype, name):
    x = EXTREMES.astype(dtype)
    y = ops.activation_forward(x, name)
    ref = ref_act(name, x.astype(np.float64))
    # NaN in, NaN out; finite/infinite exactly where the reference is
    np.testing.assert_array_equal(np.isnan(y), np.isnan(ref))
    np.testing.assert_array_equal(np.isposinf(y), np.isposinf(ref))
    np.testing.assert_array_equal(np.isneginf(y), np.isneginf(ref))
    fin = np.isfinite(ref)
    np.testing.assert_allclose(y[fin], ref[fin], rtol=16 * np.finfo(dtype).eps,
                               atol=4 * np.finfo(dtype).tiny)


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_backward_extreme_inputs_finite(isa, dtype, name):
    """From the forward output of +-1000 and +-inf, the derivative is finite and right."""
    x = np.array([-1000.0, 1000.0, -np.inf, np.inf, -0.0], dtype)
    y = ops.activation_forward(x, name)
    dy = np.ones_like(x)
    dx = ops.activation_backward(y, dy, name)
    assert np.all(np.isfinite(dx)), dx
    ref = ref_act_grad(name, x.astype(np.float64), dy.astype(np.float64))
    fin = np.isfinite(ref)
    keep = fin & (x != 0)  # the derivative at the kink is a convention
    np.testing.assert_allclose(dx[keep], ref[keep], rtol=1e-6, atol=4 * np.finfo(dtype).eps)


def test_negative_zero(isa, dtype):
    x = np.array([-0.0], dtype)
    assert ops.activation_forward(x, "relu")[0] == 0
    assert ops.activation_forward(x, "step")[0] == 0
    assert ops.activation_forward(x, "sigmoid")[0] == 0.5
    assert ops.activation_forward(x, "tanh")[0] == 0
    assert ops.activation_forward(x, "elu")[0] == 0
    assert ops.activation_forward(x, "leaky_relu")[0] == 0
    assert ops.activation_forward(x, "softplus")[0] == pytest.approx(np.log(2), rel=1e-6)


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_nan_propagates(isa, dtype, name):
    x = np.array([[1.0, np.nan, -2.0], [0.5, 0.25, -1.0]], dtype)
    y = ops.activation_forward(x, name)
    assert np.isnan(y[0, 1])
    if name in ROWWISE:
        assert np.all(np.isnan(y[0]))         # the whole row is poisoned
        np.testing.assert_allclose(y[1], ref_act(name, x[1:].astype(np.float64))[0], rtol=1e-6)
    else:
        assert not np.any(np.isnan(y[1]))


@pytest.mark.parametrize("name", ROWWISE)
def test_softmax_extremes(isa, dtype, name):
    x = np.array([[-1000, 0, 1000],
                  [1000, 1000, -1000],
                  [-np.inf, 1.0, 2.0],
                  [-1000, -1000, -1000],
                  [3.0, 3.0, 3.0]], dtype)
    y = ops.activation_forward(x, name)
    ref = ref_act(name, x.astype(np.float64))
    assert not np.any(np.isnan(y))
    np.testing.assert_array_equal(np.isneginf(y), np.isneginf(ref))
    fin = np.isfinite(ref)
    x64 = np.where(np.isfinite(x), x, 0).astype(np.float64)
    err = np.abs(y[fin].astype(np.float64) - ref[fin])
    assert np.all(err <= _fwd_tol(name, x64, np.where(fin, ref, 0), dtype)[fin])
    if name == "softmax":
        assert y[2, 0] == 0  # a masked (-inf) entry gets exactly zero probability


def test_log_softmax_accurate_for_large_logits(isa, dtype):
    """log_softmax([c, c]) = -ln 2 to a few ulps, whatever c (torch, jax and
    scipy compute (x - max) - log(sum), which gets it exactly)."""
    for c in (0.0, 1000.0, -1000.0, 1e5):
        x = np.array([[c, c], [c, c - 1]], dtype)
        y = ops.activation_forward(x, "log_softmax")
        ref = ref_act("log_softmax", x.astype(np.float64))
        np.testing.assert_allclose(y, ref, rtol=4 * np.finfo(dtype).eps, atol=0)


def test_softmax_rows_sum_to_one(isa, dtype):
    rng = np.random.default_rng(3)
    for k in (1, 2, 7, 64, 1000):
        x = (rng.standard_normal((5, k)) * 30).astype(dtype)
        y = ops.activation_forward(x, "softmax")
        assert np.all(y >= 0) and np.all(y <= 1)
        np.testing.assert_allclose(y.astype(np.float64).sum(-1), 1,
                                   rtol=0, atol=4 * k * np.finfo(dtype).eps)
        ls = ops.activation_forward(x, "log_softmax")
        assert np.all(ls <= 0)
        np.testing.assert_allclose(np.exp(ls.astype(np.float64)).sum(-1), 1,
                                   rtol=0, atol=16 * k * np.finfo(dtype).eps * (1 + np.abs(x).max()))


def test_softmax_along_last_axis_of_3d(isa, dtype):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 3, 4)).astype(dtype)
    y = ops.activation_forward(x, "softmax")
    flat = ops.activation_forward(x.reshape(6, 4), "softmax")
    np.testing.assert_array_equal(y.reshape(6, 4), flat)
    np.testing.assert_allclose(y.sum(-1), 1, rtol=0, atol=8 * np.finfo(dtype).eps)


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_in_place_forward(isa, dtype, name):
    rng = np.random.default_rng(5)
    x = _inputs(rng, dtype, (5, 8))
    expect = ops.activation_forward(x, name)
    res = ops.activation_forward(x, name, out=x)
    assert res is x
    np.testing.assert_array_equal(x, expect)


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_in_place_backward(isa, dtype, name):
    rng = np.random.default_rng(6)
    x = _inputs(rng, dtype, (5, 8), scale=2.0)
    y = ops.activation_forward(x, name)
    dy = rng.standard_normal(x.shape).astype(dtype)
    expect = ops.activation_backward(y, dy, name)
    dy2 = dy.copy()
    assert ops.activation_backward(y, dy2, name, out=dy2) is dy2
    np.testing.assert_array_equal(dy2, expect)
    y2 = y.copy()
    assert ops.activation_backward(y2, dy, name, out=y2) is y2
    np.testing.assert_array_equal(y2, expect)


def test_named_functions_out(isa, dtype):
    x = np.array([-1.0, 2.0], dtype)
    out = np.empty_like(x)
    assert activations.relu(x, out=out) is out
    np.testing.assert_array_equal(out, [0, 2])
    activations.leaky_relu(x, 0.5, out=out)
    np.testing.assert_array_equal(out, [-0.5, 2])
    activations.elu(x, 2.0, out=out)
    np.testing.assert_allclose(out, [2 * np.expm1(-1.0), 2], rtol=1e-6)


def test_shapes_zero_d_and_empty(isa, dtype):
    assert ops.activation_forward(np.array(0.0, dtype), "sigmoid") == 0.5
    assert ops.activation_forward(np.array(0.0, dtype), "sigmoid").shape == ()
    for shape in [(0,), (0, 3), (3, 0), (2, 0, 4)]:
        for name in ACTIVATIONS:
            y = ops.activation_forward(np.zeros(shape, dtype), name)
            assert y.shape == shape and y.dtype == dtype


def test_course_sigmoid_values(isa, dtype):
    """Course 001: h(1.0) = 0.731, h(2.0) = 0.880. 0.7311 rounds to 0.731; 0.8808
    rounds to 0.881, so the course's 0.880 is a truncation to three places."""
    s = activations.get("sigmoid")(np.array([1.0, 2.0], dtype))
    assert np.round(s[0], 3) == pytest.approx(0.731)
    assert np.floor(s[1] * 1000) / 1000 == pytest.approx(0.880)
    assert np.round(s[1], 3) == pytest.approx(0.881)
    np.testing.assert_allclose(s, 1 / (1 + np.exp(-np.array([1.0, 2.0]))), rtol=2e-7)


def test_course_sigmoid_derivative_at_most_quarter(isa, dtype):
    """Course 003: the sigmoid's derivative is at most 0.25 (at 0); ReLU's is 1 for x > 0."""
    x = np.linspace(-10, 10, 2001).astype(dtype)
    d = ops.activation_backward(ops.activation_forward(x, "sigmoid"), np.ones_like(x), "sigmoid")
    assert d.max() == pytest.approx(0.25, rel=1e-6) and d.max() <= 0.25 + 1e-7
    assert x[np.argmax(d)] == 0
    r = ops.activation_backward(ops.activation_forward(x, "relu"), np.ones_like(x), "relu")
    np.testing.assert_array_equal(r[x > 0], 1)


# --------------------------------------------------------------------------
# Names and parameters
# --------------------------------------------------------------------------

@pytest.mark.parametrize("alias,canonical", [
    ("linear", "linear"), ("identity", "linear"), (None, "linear"), ("step", "step"),
    ("heaviside", "step"), ("sigmoid", "sigmoid"), ("tanh", "tanh"), ("relu", "relu"),
    ("leaky_relu", "leaky_relu"), ("LeakyReLU", "leaky_relu"), ("elu", "elu"),
    ("softplus", "softplus"), ("softmax", "softmax"), ("log_softmax", "log_softmax"),
    ("Sigmoid", "sigmoid"), ("RELU", "relu"),
])
def test_get_names_and_aliases(alias, canonical):
    fn = activations.get(alias)
    assert fn is getattr(activations, canonical)
    x = np.array([[-1.5, 0.0, 2.0]])
    np.testing.assert_allclose(fn(x), ref_act(canonical, x), rtol=1e-15, atol=1e-300)


def test_get_returns_callable_as_is():
    f = lambda x: x  # noqa: E731
    assert activations.get(f) is f


def test_get_accepts_lists():
    np.testing.assert_allclose(activations.get("sigmoid")([1.0, 2.0]),
                               1 / (1 + np.exp(-np.array([1.0, 2.0]))), rtol=1e-15)


def test_get_unknown_name():
    with pytest.raises(ValueError, match="swish"):
        activations.get("swish")
    with pytest.raises(TypeError):
        activations.get(3)


@pytest.mark.parametrize("name", ["leaky_relu", "elu"])
@pytest.mark.parametrize("bad", [-0.1, -1.0, float("nan"), -float("inf")])
def test_parameter_validation(name, bad):
    x = np.ones((2, 2))
    with pytest.raises(ValueError, match=name):
        ops.activation_forward(x, name, bad)
    with pytest.raises(ValueError, match=name):
        ops.activation_backward(x, x, name, bad)
    with pytest.raises(ValueError, match=name):
        ops.dense_forward(x, x, None, name, bad)
    fn = activations.leaky_relu if name == "leaky_relu" else activations.elu
    with pytest.raises(ValueError, match=name):
        fn(x, bad)


def test_parameter_zero_is_allowed(isa):
    x = np.array([-2.0, 3.0])
    np.testing.assert_array_equal(activations.leaky_relu(x, 0.0), [0.0, 3.0])
    np.testing.assert_array_equal(activations.elu(x, 0.0), [0.0, 3.0])


def test_default_parameters():
    """Keras' defaults: leaky_relu negative_slope 0.2 (keras.activations), elu alpha 1."""
    x = np.array([-1.0])
    np.testing.assert_allclose(activations.leaky_relu(x), [-0.2])
    np.testing.assert_allclose(activations.elu(x), [np.expm1(-1.0)])
    np.testing.assert_allclose(ops.activation_forward(x, "leaky_relu"), [-0.2])


def test_unknown_activation_code():
    with pytest.raises(ValueError):
        _core.act_forward(99, 0.0, np.ones(2))
    with pytest.raises(ValueError):
        _core.act_forward(-1, 0.0, np.ones(2))
    with pytest.raises(ValueError):
        _core.act_backward(99, 0.0, np.ones(2), np.ones(2))
    with pytest.raises(ValueError):
        _core.dense_forward(np.ones((1, 1)), np.ones((1, 1)), None, 10, 0.0)


# --------------------------------------------------------------------------
# Threads: big calls are cut into chunks (element-wise) or row blocks
# (softmaxes) and shared over the pool; the result must not depend on it.
# --------------------------------------------------------------------------

def _pieces(fn, *arrays, piece):
    """fn over consecutive pieces of `piece` elements (each below the engine's
    threading threshold, so each runs serially), concatenated."""
    n = arrays[0].size
    flat = [a.reshape(-1) for a in arrays]
    return np.concatenate([fn(*(f[i:i + piece] for f in flat)) for i in range(0, n, piece)])


@pytest.fixture
def restore_threads():
    before = _core.get_num_threads()
    yield
    _core.set_num_threads(before)


@pytest.mark.parametrize("name", ACTIVATIONS)
@pytest.mark.parametrize("n, offset", [(65536, 0), (65536 + 37, 3), (300_001, 1)])
def test_threaded_equals_serial_bitwise(isa, dtype, name, n, offset, restore_threads):
    """1 and 2 threads give the same bits, and both equal the activation run
    serially on small pieces (so no chunk is skipped, doubled or misplaced).
    The offset starts the arrays off any chunk boundary."""
    _check_threaded(dtype, name, n, offset)


@pytest.mark.parametrize("name", ["sigmoid", "elu", "relu", "softmax"])
def test_threaded_big_chunks_equal_serial_bitwise(dtype, name, restore_threads):
    """Arrays of 8 MiB and more are cut at 2 MiB boundaries of the output's
    address space (one chunk per huge page): the same checks there."""
    _check_threaded(dtype, name, 2_300_000, 7)


def _check_threaded(dtype, name, n, offset):
    rng = np.random.default_rng(n + offset)
    base = (rng.standard_normal(n + offset) * 5).astype(dtype)
    x = base[offset:]
    rowwise = name in ROWWISE
    cols = 1000 if rowwise else x.size
    x2 = x[: (x.size // cols) * cols].reshape(-1, cols)
    shaped = (lambda v: v.reshape(-1, cols)) if rowwise else (lambda v: v)
    piece = 16 * cols if name in ROWWISE else 40_000
    alpha = PARAM_DEFAULT.get(name)
    results = {}
    for threads in (1, 2):
        _core.set_num_threads(threads)
        y = ops.activation_forward(x2, name, alpha)
        dy = np.cos(y).astype(dtype)
        dx = ops.activation_backward(y, dy, name, alpha)
        # out= an offset view of a bigger buffer (the chunk cuts follow y's address)
        out_base = np.empty(x2.size + 5, dtype)
        out = out_base[5:].reshape(x2.shape)
        ops.activation_forward(x2, name, alpha, out=out)
        results[threads] = (y, dx, out)
    for a, b in zip(results[1], results[2]):
        np.testing.assert_array_equal(a, b)
    y, dx, out = results[2]
    np.testing.assert_array_equal(out, y)
    _core.set_num_threads(1)
    serial_y = _pieces(lambda v: ops.activation_forward(shaped(v), name, alpha).reshape(-1),
                       x2, piece=piece)
    np.testing.assert_array_equal(y.reshape(-1), serial_y)
    dy = np.cos(y).astype(dtype)
    serial_dx = _pieces(lambda a, b: ops.activation_backward(shaped(a), shaped(b), name, alpha)
                        .reshape(-1), y, dy, piece=piece)
    np.testing.assert_array_equal(dx.reshape(-1), serial_dx)


@pytest.mark.parametrize("name", ["sigmoid", "relu", "softmax"])
def test_threaded_in_place(dtype, name, restore_threads):
    """out=x and backward into dy stay right when the call is split."""
    _core.set_num_threads(2)
    rng = np.random.default_rng(5)
    x = (rng.standard_normal((300, 1000)) * 3).astype(dtype)
    want = ops.activation_forward(x, name)
    dy = rng.standard_normal(x.shape).astype(dtype)
    want_dx = ops.activation_backward(want, dy, name)
    got = x.copy()
    ops.activation_forward(got, name, out=got)
    np.testing.assert_array_equal(got, want)
    ops.activation_backward(want, dy, name, out=dy)
    np.testing.assert_array_equal(dy, want_dx)
