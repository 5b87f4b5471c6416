"""The engine's vectorised exp, log, tanh, sigmoid and softplus (csrc/vmath*.c).

At every kernel level the machine has: the maximum error in ulp against the
correctly rounded float32 value (the float64 NumPy result rounded to
float32) over a dense sweep of each function's whole useful range, the
special values and edges, tails and in-place calls; and the activations and
losses built on them against NumPy float64 references.
Run with -s to see the measured maximum errors.
"""
import numpy as np
import pytest

import nncore
from nncore import _core

LEVELS = _core.isa_available()
MAX_ULP = 4
F32 = np.float32
TINY = np.finfo(F32).tiny  # smallest normal
DENORM_MIN = np.nextafter(F32(0), F32(1))
FLT_MAX = np.finfo(F32).max


@pytest.fixture(params=LEVELS)
def level(request):
    before = _core.get_isa()
    _core.set_isa(request.param)
    yield request.param
    _core.set_isa(before)


# --------------------------------------------------------------------------
# Accuracy in ulp
# --------------------------------------------------------------------------

def _ordered(a):
    """float32 -> int64 that is monotone in the float value (-0 and +0 both 0)."""
    i = np.asarray(a, dtype=F32).view(np.int32).astype(np.int64)
    return np.where(i < 0, -(i & 0x7FFFFFFF), i)


def ulp_error(y, ref):
    """|y - ref| in float32 steps (0 where both are NaN, huge where only one is)."""
    d = np.abs(_ordered(y) - _ordered(ref))
    ny, nr = np.isnan(y), np.isnan(ref)
    return np.where(ny & nr, 0, np.where(ny | nr, 1 << 40, d))


def _bit_span(lo, hi, count):
    """About `count` float32 values from lo to hi (0 <= lo < hi) spaced evenly
    in bit pattern, so every binade is visited equally; the stride is odd so
    that every low mantissa bit takes both values."""
    a, b = int(np.float32(lo).view(np.int32)), int(np.float32(hi).view(np.int32))
    step = max(1, (b - a) // count) | 1
    return np.arange(a, b + 1, step, dtype=np.int64).astype(np.int32).view(F32)


def _around(x0, k=3000):
    """Every float32 within k steps of x0."""
    b = int(np.float32(x0).view(np.int32))
    bits = np.arange(b - k, b + k + 1, dtype=np.int64)
    if x0 >= 0:
        bits = bits[bits >= 0]
    return bits.astype(np.int32).view(F32)


def _sweep(lo, hi, count=1_500_000, edges=()):
    parts = [np.linspace(lo, hi, count, dtype=F32)]
    if hi > 0:
        parts.append(_bit_span(0, hi, count))
    if lo < 0:
        parts.append(-_bit_span(0, -lo, count))
    parts += [_around(e) for e in edges]
    x = np.concatenate(parts)
    return x[(x >= lo) & (x <= hi)]


def _sigmoid64(x):
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


REFERENCES = {  # name: (float64 function, sweep)
    "exp": (np.exp, lambda: _sweep(-104.0, 89.0, edges=(88.72283, -87.33655, -103.27893,
                                                         -103.972, 0.0))),
    "expm1": (np.expm1, lambda: _sweep(-30.0, 89.0, edges=(88.72283, 0.0, -17.33, 0.3466,
                                                             -0.3466))),
    "log": (np.log, lambda: np.concatenate([_bit_span(DENORM_MIN, FLT_MAX, 3_000_000),
                                            np.linspace(0.25, 4, 1_000_000, dtype=F32),
                                            _around(1.0), _around(TINY)])),
    "tanh": (np.tanh, lambda: _sweep(-12.0, 12.0, edges=(0.625, -0.625, 9.01, -9.01))),
    "sigmoid": (_sigmoid64, lambda: _sweep(-105.0, 20.0, edges=(-87.33, -103.28, 16.6))),
    "softplus": (lambda x: np.logaddexp(0.0, x),
                 lambda: _sweep(-105.0, 100.0, edges=(-87.33, -103.28, 0.0))),
}
_cache = {}


def _reference(name):
    if name not in _cache:
        f, make = REFERENCES[name]
        x = make()
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            _cache[name] = x, f(x.astype(np.float64)).astype(F32)
    return _cache[name]


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_max_ulp_error_over_the_whole_range(level, name):
    x, ref = _reference(name)
    y = _core.vmath(name, x)
    err = ulp_error(y, ref)
    worst = int(np.argmax(err))
    print(f"\n{name:8s} {level:6s}: max {err[worst]} ulp over {x.size} points "
          f"(at x={x[worst]!r}: {y[worst]!r} vs {ref[worst]!r})")
    assert err[worst] <= MAX_ULP
    # overflow lands exactly where the correctly rounded value overflows
    np.testing.assert_array_equal(np.isinf(y), np.isinf(ref))


def _check(name, x, expected):
    x = np.asarray(x, dtype=F32)
    y = _core.vmath(name, x)
    expected = np.asarray(expected, dtype=F32)
    np.testing.assert_array_equal(y, expected)
    # signs of zeros too (a NaN's sign means nothing)
    num = ~np.isnan(expected)
    np.testing.assert_array_equal(np.signbit(y[num]), np.signbit(expected[num]))


def test_exp_special_values(level):
    inf, nan = np.inf, np.nan
    _check("exp", [inf, -inf, nan, 0.0, -0.0, -1000.0, 1000.0, FLT_MAX, -FLT_MAX],
           [inf, 0.0, nan, 1.0, 1.0, 0.0, inf, inf, 0.0])
    # the overflow edge: the largest x with a finite e^x, and the next float up
    with np.errstate(over="ignore"):
        x = _around(88.7228, 200)
        ref = np.exp(x.astype(np.float64)).astype(F32)
    last = x[np.isfinite(ref)].max()
    y = _core.vmath("exp", np.array([last, np.nextafter(last, F32(100))], dtype=F32))
    assert np.isfinite(y[0]) and y[1] == np.inf
    # denormal results, and the underflow to 0 below -103.97
    x = np.array([-87.5, -95.0, -100.0, -103.0, -103.9], dtype=F32)
    y = _core.vmath("exp", x)
    assert np.all((y > 0) & (y < TINY))
    assert ulp_error(y, np.exp(x.astype(np.float64)).astype(F32)).max() <= MAX_ULP
    assert _core.vmath("exp", np.array([-104.0, -110.0], dtype=F32)).tolist() == [0.0, 0.0]


def test_expm1_special_values(level):
    inf, nan = np.inf, np.nan
    _check("expm1", [inf, -inf, nan, 0.0, -0.0, DENORM_MIN, -DENORM_MIN, -TINY, 1000.0, -1000.0,
                     FLT_MAX, -FLT_MAX],
           [inf, -1.0, nan, 0.0, -0.0, DENORM_MIN, -DENORM_MIN, -TINY, inf, -1.0, inf, -1.0])
    with np.errstate(over="ignore"):
        x = _around(88.7228, 200)
        ref = np.expm1(x.astype(np.float64)).astype(F32)
    last = x[np.isfinite(ref)].max()
    y = _core.vmath("expm1", np.array([last, np.nextafter(last, F32(100))], dtype=F32))
    assert np.isfinite(y[0]) and y[1] == np.inf


def test_log_special_values(level):
    inf, nan = np.inf, np.nan
    _check("log", [0.0, -0.0, -1.0, -DENORM_MIN, -inf, inf, nan, 1.0],
           [-inf, -inf, nan, nan, nan, inf, nan, 0.0])
    # denormal inputs, every binade of them
    x = (DENORM_MIN * (2.0 ** np.arange(23))).astype(F32)
    x = np.concatenate([x, x * F32(1.5), np.nextafter(TINY, F32(0))[None]]).astype(F32)
    ref = np.log(x.astype(np.float64)).astype(F32)
    assert ulp_error(_core.vmath("log", x), ref).max() <= MAX_ULP


def test_tanh_special_values_and_saturation(level):
    inf, nan = np.inf, np.nan
    _check("tanh", [inf, -inf, nan, 0.0, -0.0, DENORM_MIN, -TINY, 20.0, -20.0, 1e30, -FLT_MAX],
           [1.0, -1.0, nan, 0.0, -0.0, DENORM_MIN, -TINY, 1.0, -1.0, 1.0, -1.0])
    x = np.linspace(9.02, 1000, 10001, dtype=F32)
    assert np.all(_core.vmath("tanh", x) == 1) and np.all(_core.vmath("tanh", -x) == -1)


def test_sigmoid_special_values_and_saturation(level):
    inf, nan = np.inf, np.nan
    _check("sigmoid", [inf, -inf, nan, 0.0, -0.0, 200.0, -200.0, FLT_MAX, -FLT_MAX],
           [1.0, 0.0, nan, 0.5, 0.5, 1.0, 0.0, 1.0, 0.0])
    # no overflow on the way to the denormal results of x -> -103
    x = np.array([-88.0, -95.0, -103.0], dtype=F32)
    y = _core.vmath("sigmoid", x)
    assert np.all((y > 0) & (y < TINY))
    assert ulp_error(y, _sigmoid64(x.astype(np.float64)).astype(F32)).max() <= MAX_ULP


def test_softplus_special_values(level):
    inf, nan = np.inf, np.nan
    _check("softplus", [inf, -inf, nan, 200.0, 1e30, FLT_MAX, -200.0, -FLT_MAX],
           [inf, 0.0, nan, 200.0, 1e30, FLT_MAX, 0.0, 0.0])
    ln2 = F32(np.log(2.0))
    _check("softplus", [0.0, -0.0], [ln2, ln2])


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_tails_and_in_place(level, name):
    """Every length and offset gives the same values as the full array: the
    masked / padded tail computes exactly what the main loop does."""
    rng = np.random.default_rng(7)
    x = (rng.standard_normal(137) * 30).astype(F32)
    if name == "log":
        x = np.abs(x)
    x[[3, 50, 101]] = [np.nan, np.inf, -np.inf]
    full = _core.vmath(name, x)
    for start in (0, 1, 5):
        for n in range(0, 70):
            part = _core.vmath(name, x[start:start + n])
            np.testing.assert_array_equal(part, full[start:start + n])
    inplace = x.copy()
    assert _core.vmath(name, inplace, out=inplace) is inplace
    np.testing.assert_array_equal(inplace, full)


def test_vmath_hook_checks_its_arguments():
    with pytest.raises(ValueError, match="unknown vmath function"):
        _core.vmath("cos", np.zeros(3, F32))
    with pytest.raises(TypeError, match="float32"):
        _core.vmath("exp", np.zeros(3))
    with pytest.raises(ValueError, match="overlaps"):
        a = np.zeros(8, F32)
        _core.vmath("exp", a[:6], out=a[2:])


# --------------------------------------------------------------------------
# The activations and losses on top, at every level
# --------------------------------------------------------------------------

def _act_inputs(rng, shape=(37, 53)):
    x = (rng.standard_normal(shape) * 4).astype(F32)
    x.flat[:8] = [0.0, -0.0, -0.5, -0.49, 30.0, -30.0, 100.0, -100.0]
    return x


def _softmax64(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


ACT_REFS = {
    "sigmoid": _sigmoid64,
    "tanh": np.tanh,
    "softplus": lambda x: np.logaddexp(0.0, x),
    "elu": lambda x: np.where(x > 0, x, 1.5 * np.expm1(np.minimum(x, 0))),
    "softmax": _softmax64,
    "log_softmax": lambda x: x - x.max(axis=-1, keepdims=True) - np.log(
        np.exp(x - x.max(axis=-1, keepdims=True)).sum(axis=-1, keepdims=True)),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(ACT_REFS))
def test_activation_forward_matches_reference(level, name, dtype):
    x = _act_inputs(np.random.default_rng(1)).astype(dtype)
    alpha = 1.5 if name == "elu" else None
    y = nncore.ops.activation_forward(x, name, alpha)
    ref = ACT_REFS[name](x.astype(np.float64))
    tol = 2e-6 if dtype == np.float32 else 1e-14
    atol = tol * 1e-3
    if name == "log_softmax":
        # x - lse is a difference: its error is an ulp of the operands, not of the result
        atol = 4 * np.finfo(dtype).eps * 2 * np.abs(x).max()
    np.testing.assert_allclose(y, ref, rtol=tol, atol=atol)
    # in place gives the same
    xc = x.copy()
    nncore.ops.activation_forward(xc, name, alpha, out=xc)
    np.testing.assert_array_equal(xc, y)


@pytest.mark.parametrize("name", sorted(ACT_REFS))
def test_activation_nan_propagates(level, name):
    x = _act_inputs(np.random.default_rng(2), (3, 40))
    x[1, 17] = np.nan
    y = nncore.ops.activation_forward(x, name, 1.5 if name == "elu" else None)
    if name in ("softmax", "log_softmax"):
        assert np.all(np.isnan(y[1])) and not np.any(np.isnan(y[[0, 2]]))
    else:
        assert np.array_equal(np.isnan(y), np.isnan(x))


def test_activation_backward_matches_reference(level):
    rng = np.random.default_rng(3)
    x = _act_inputs(rng, (20, 300)).astype(F32)
    dy = rng.standard_normal(x.shape).astype(F32)
    y = nncore.ops.activation_forward(x, "log_softmax")
    dx = nncore.ops.activation_backward(y, dy, "log_softmax")
    y64, dy64 = y.astype(np.float64), dy.astype(np.float64)
    ref = dy64 - np.exp(y64) * dy64.sum(axis=-1, keepdims=True)
    np.testing.assert_allclose(dx, ref, rtol=1e-5, atol=1e-5)
    inplace = dy.copy()
    nncore.ops.activation_backward(y, inplace, "log_softmax", out=inplace)
    np.testing.assert_array_equal(inplace, dx)
    # softplus' = sigmoid(x) = -expm1(-y), relative accuracy kept for x << 0 (down
    # to the denormals, where the product dy * dx has no relative accuracy left)
    y = nncore.ops.activation_forward(x, "softplus")
    dx = nncore.ops.activation_backward(y, dy, "softplus")
    np.testing.assert_allclose(dx, dy64 * -np.expm1(-y.astype(np.float64)), rtol=2e-6, atol=TINY)
    np.testing.assert_allclose(dx, dy64 * _sigmoid64(x.astype(np.float64)), rtol=2e-5, atol=TINY)
    inplace = y.copy()
    nncore.ops.activation_backward(inplace, dy, "softplus", out=inplace)
    np.testing.assert_array_equal(inplace, dx)


def _loss_case(rng, n=33, k=300):
    z = (rng.standard_normal((n, k)) * 3).astype(F32)
    p = rng.uniform(0, 1, (n, k)).astype(F32)
    p.flat[:4] = [0.0, 1.0, 1e-9, 1 - 1e-9]
    t_bin = (rng.uniform(0, 1, (n, k)) > 0.5).astype(F32)
    labels = rng.integers(0, k, n)
    t_soft = rng.dirichlet(np.ones(k), n).astype(F32)
    return z, p, t_bin, labels, t_soft


def _ref_losses(z, p, t_bin, labels, t_soft):
    """{case: (loss, grad)} in float64, each the mean over the batch."""
    z, p, t_bin, t_soft = (a.astype(np.float64) for a in (z, p, t_bin, t_soft))
    n, k = z.shape
    eps = float(F32(1e-7))
    pc = np.clip(p, eps, float(F32(1) - F32(1e-7)))
    out = {}
    out["bce"] = (np.mean(-(t_bin * np.log(pc) + (1 - t_bin) * np.log(1 - pc))),
                  (pc - t_bin) / (pc * (1 - pc)) / (n * k))
    out["bce_logits"] = (np.mean(np.maximum(z, 0) - z * t_bin + np.log1p(np.exp(-np.abs(z)))),
                         (_sigmoid64(z) - t_bin) / (n * k))
    out["cce"] = (np.mean(-(t_soft * np.log(pc)).sum(1)), -t_soft / pc / n)
    lse = np.log(np.exp(z - z.max(1, keepdims=True)).sum(1, keepdims=True)) + z.max(1, keepdims=True)
    out["cce_logits"] = (np.mean((t_soft * (lse - z)).sum(1)),
                         (_softmax64(z) * t_soft.sum(1, keepdims=True) - t_soft) / n)
    onehot = np.eye(k)[labels]
    out["sparse_logits"] = (np.mean((lse - z)[np.arange(n), labels]), (_softmax64(z) - onehot) / n)
    return out


def test_losses_match_reference(level):
    z, p, t_bin, labels, t_soft = case = _loss_case(np.random.default_rng(4))
    ref = _ref_losses(*case)
    got = {
        "bce": nncore.ops.loss_and_grad(t_bin, p, "binary_crossentropy"),
        "bce_logits": nncore.ops.loss_and_grad(t_bin, z, "binary_crossentropy", from_logits=True),
        "cce": nncore.ops.loss_and_grad(t_soft, p, "categorical_crossentropy"),
        "cce_logits": nncore.ops.loss_and_grad(t_soft, z, "categorical_crossentropy",
                                               from_logits=True),
        "sparse_logits": nncore.ops.loss_and_grad(labels, z, "sparse_categorical_crossentropy",
                                                  from_logits=True),
    }
    for key, (loss, grad) in got.items():
        rl, rg = ref[key]
        np.testing.assert_allclose(loss, rl, rtol=2e-6, err_msg=key)
        scale = np.abs(rg).max()
        np.testing.assert_allclose(grad, rg, rtol=2e-5, atol=2e-6 * scale, err_msg=key)


def test_bce_logits_keeps_small_losses_of_large_logits(level):
    """log1p(e^-|v|) is summed apart from max(v, 0) - v t, in double, so a
    confident right answer still has its tiny (nonzero) loss."""
    z = np.full((4, 1), 30.0, dtype=F32)
    loss = nncore.ops.loss(np.ones((4, 1), F32), z, "binary_crossentropy", from_logits=True)
    np.testing.assert_allclose(loss, np.log1p(np.exp(-30.0)), rtol=1e-5)


@pytest.mark.parametrize("loss", ["binary_crossentropy", "categorical_crossentropy"])
@pytest.mark.parametrize("from_logits", [False, True])
@pytest.mark.parametrize("alias", ["y_pred", "y_true"])
def test_loss_grad_may_alias_an_input(level, loss, from_logits, alias):
    """grad written over y_pred or y_true (as the boundary allows) leaves the
    loss and the gradient as they are with a separate array."""
    z, p, t_bin, _, t_soft = _loss_case(np.random.default_rng(5), n=5, k=300)
    pred = z if from_logits else p
    true = t_bin if loss == "binary_crossentropy" else t_soft
    want = nncore.ops.loss_and_grad(true, pred, loss, from_logits)
    pred, true = pred.copy(), true.copy()
    out = pred if alias == "y_pred" else true
    got = nncore.ops.loss_and_grad(true, pred, loss, from_logits, out=out)
    assert got[1] is out
    assert got[0] == want[0]
    np.testing.assert_array_equal(got[1], want[1])


@pytest.mark.skipif(len(LEVELS) < 2, reason="one kernel level only")
def test_levels_agree_on_activations():
    """The SIMD levels are within a few ulp of the portable one."""
    x = _act_inputs(np.random.default_rng(6), (64, 257))
    before = _core.get_isa()
    try:
        outs = {}
        for lv in LEVELS:
            _core.set_isa(lv)
            outs[lv] = {n: nncore.ops.activation_forward(x, n) for n in ("sigmoid", "tanh", "softplus")}
    finally:
        _core.set_isa(before)
    for lv in LEVELS[1:]:
        for n in outs[lv]:
            assert ulp_error(outs[lv][n], outs["ref"][n]).max() <= 2 * MAX_ULP, (lv, n)
