"""nc_sgemm / nc_dgemm: every kernel level against a float64 NumPy reference
and against level ref, every transpose case, alpha/beta, shapes aimed at every
blocking edge of every level, and bit-identical results at 1 and 2 threads."""
import contextlib

import numpy as np
import pytest

from nncore import _core

LEVELS = _core.isa_available()
DTYPES = (np.float32, np.float64)
TRANS = [(0, 0), (0, 1), (1, 0), (1, 1)]


@contextlib.contextmanager
def isa(name):
    old = _core.get_isa()
    _core.set_isa(name)
    try:
        yield
    finally:
        _core.set_isa(old)


@contextlib.contextmanager
def path(name):
    """Force the packed or the unpacked (small) path; "auto" chooses by shape."""
    old = _core._gemm_force_path(name)
    try:
        yield
    finally:
        _core._gemm_force_path(old)


PATHS = ["auto", "packed", "small"]


@contextlib.contextmanager
def threads(n):
    old = _core.get_num_threads()
    _core.set_num_threads(n)
    try:
        yield
    finally:
        _core.set_num_threads(old)


def operands(rng, m, n, k, ta, tb, dtype, lead=0):
    """A, B as stored (transposed when ta/tb), C; `lead` extra columns make
    the leading dimensions larger than minimal (the arrays are views)."""
    def mat(r, c):
        full = rng.standard_normal((r, c + lead)).astype(dtype)
        return full[:, :c] if lead else full
    a = mat(k, m) if ta else mat(m, k)
    b = mat(n, k) if tb else mat(k, n)
    return a, b


def reference(a, b, ta, tb, alpha, beta, c0):
    opa = (a.T if ta else a).astype(np.float64)
    opb = (b.T if tb else b).astype(np.float64)
    r = alpha * (opa @ opb)
    if beta != 0:
        r = r + beta * c0.astype(np.float64)
    return r


def tol(dtype, k):
    eps = np.finfo(dtype).eps
    return 4 * eps * max(k, 1) ** 0.5 * 4


def check(m, n, k, ta, tb, dtype, alpha=1.0, beta=0.0, seed=0):
    rng = np.random.default_rng(seed)
    a, b = operands(rng, m, n, k, ta, tb, dtype)
    c0 = rng.standard_normal((m, n)).astype(dtype)
    out = c0.copy()
    _core.gemm(a, b, ta, tb, out, alpha, beta)
    want = reference(a, b, ta, tb, alpha, beta, c0)
    # error relative to the size of the terms summed, not to the result
    scale = abs(alpha) * (np.abs(a).max(initial=0) * np.abs(b).max(initial=0)) * max(k, 1) ** 0.5
    scale = scale + abs(beta) * np.abs(c0).max(initial=0) + 1e-30
    err = np.abs(out.astype(np.float64) - want).max(initial=0) / scale
    assert err <= tol(dtype, k), (m, n, k, ta, tb, err)
    return out


def edge_sizes(level, dtype):
    """Sizes at every blocking edge of the level: 0, 1, MR±1, NR±1, KC±1 ..."""
    bl = _core._gemm_blocking(level, dtype)
    mr, nr, mc, kc = bl["mr"], bl["nr"], bl["mc"], bl["kc"]
    ms = sorted({1, mr - 1, mr, mr + 1, mc + 1, 2 * mr + 3, 37})
    ns = sorted({1, nr - 1, nr, nr + 1, 2 * nr + 5, 53})
    ks = sorted({1, 7, kc - 1, kc, kc + 1, 2 * kc + 3})
    return [s for s in ms if s > 0], [s for s in ns if s > 0], ks


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ta,tb", TRANS)
@pytest.mark.parametrize("which", ["packed", "small"])
def test_edges_against_numpy(level, dtype, ta, tb, which):
    ms, ns, ks = edge_sizes(level, dtype)
    with isa(level), path(which):
        for m in ms:
            for n in ns:
                for k in ks:
                    check(m, n, k, ta, tb, dtype, seed=m * 1000003 + n * 1009 + k)


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ta,tb", TRANS)
@pytest.mark.parametrize("mnk", [(301, 257, 313), (97, 389, 131), (2, 700, 600),
                                 (1, 256, 64), (32, 32, 64), (1, 1, 1000), (600, 3, 400)])
@pytest.mark.parametrize("which", PATHS)
def test_shapes_against_numpy(level, dtype, ta, tb, mnk, which):
    m, n, k = mnk
    with isa(level), path(which):
        check(m, n, k, ta, tb, dtype)


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("alpha,beta", [(1.0, 0.0), (0.5, 1.0), (-2.0, 0.25), (0.0, 3.0),
                                        (1.5, -1.0), (0.0, 0.0)])
@pytest.mark.parametrize("mnk", [(5, 7, 3), (40, 70, 300), (150, 130, 270)])
def test_alpha_beta(level, dtype, alpha, beta, mnk):
    with isa(level):
        for which in PATHS:
            with path(which):
                for ta, tb in TRANS:
                    check(*mnk, ta, tb, dtype, alpha, beta)


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mnk", [(3, 5, 4), (90, 100, 200)])
def test_beta_zero_ignores_nan(level, dtype, mnk):
    m, n, k = mnk
    rng = np.random.default_rng(1)
    a = rng.standard_normal((m, k)).astype(dtype)
    b = rng.standard_normal((k, n)).astype(dtype)
    for which in PATHS:
        out = np.full((m, n), np.nan, dtype)
        with isa(level), path(which):
            _core.gemm(a, b, False, False, out, 1.0, 0.0)
        assert np.all(np.isfinite(out))
        np.testing.assert_allclose(out, a.astype(np.float64) @ b, rtol=tol(dtype, k),
                                   atol=tol(dtype, k) * 10)


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_empty_and_k_zero(level, dtype):
    with isa(level):
        for m, n, k in [(0, 5, 3), (4, 0, 3), (0, 0, 0)]:
            out = _core.gemm(np.zeros((m, k), dtype), np.zeros((k, n), dtype))
            assert out.shape == (m, n)
        # k == 0: C = beta C
        c = np.full((3, 4), 2.0, dtype)
        _core.gemm(np.zeros((3, 0), dtype), np.zeros((0, 4), dtype), out=c, beta=0.5)
        np.testing.assert_array_equal(c, np.full((3, 4), 1.0, dtype))
        c[:] = np.nan
        _core.gemm(np.zeros((3, 0), dtype), np.zeros((0, 4), dtype), out=c, beta=0.0)
        np.testing.assert_array_equal(c, np.zeros((3, 4), dtype))


@pytest.mark.parametrize("level", [lv for lv in LEVELS if lv != "ref"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ta,tb", TRANS)
def test_agrees_with_level_ref(level, dtype, ta, tb):
    rng = np.random.default_rng(7)
    for m, n, k in [(33, 47, 129), (300, 301, 302), (1, 90, 77)]:
        a, b = operands(rng, m, n, k, ta, tb, dtype)
        with isa("ref"):
            want = _core.gemm(a, b, ta, tb)
        with isa(level):
            got = _core.gemm(a, b, ta, tb)
        scale = np.abs(a).max() * np.abs(b).max() * k ** 0.5
        assert np.abs(got.astype(np.float64) - want).max() / scale <= tol(dtype, k)


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mnk", [(256, 300, 520), (31, 1000, 200), (1000, 20, 150),
                                 (130, 129, 128)])
@pytest.mark.parametrize("which", PATHS)
def test_bit_identical_across_threads(level, dtype, mnk, which):
    m, n, k = mnk
    rng = np.random.default_rng(3)
    with isa(level), path(which):
        for ta, tb in TRANS:
            a, b = operands(rng, m, n, k, ta, tb, dtype)
            c0 = rng.standard_normal((m, n)).astype(dtype)
            res = []
            for t in (1, 2, 3):
                with threads(t):
                    out = c0.copy()
                    _core.gemm(a, b, ta, tb, out, 0.75, 0.5)
                    res.append(out)
            for r in res[1:]:
                np.testing.assert_array_equal(r, res[0])


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_leading_dimensions_via_copies(level, dtype):
    """Non-contiguous inputs reach the engine as copies; results still right."""
    rng = np.random.default_rng(11)
    a = rng.standard_normal((50, 90)).astype(dtype)[:, 5:70]
    b = rng.standard_normal((65, 80)).astype(dtype)[:, ::2]
    with isa(level):
        out = _core.gemm(a, b)
    np.testing.assert_allclose(out, a.astype(np.float64) @ b, rtol=tol(dtype, 65),
                               atol=tol(dtype, 65) * 10)


def test_blocking_is_sane():
    for level in LEVELS:
        for dtype in DTYPES:
            bl = _core._gemm_blocking(level, dtype)
            assert bl["mc"] % bl["mr"] == 0 and bl["nc"] % bl["nr"] == 0
            assert bl["kc"] >= 1 and bl["mr"] <= 16 and bl["nr"] <= 32


def test_torch_agrees():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    a = rng.standard_normal((123, 77)).astype(np.float32)
    b = rng.standard_normal((77, 211)).astype(np.float32)
    want = (torch.from_numpy(a).double() @ torch.from_numpy(b).double()).numpy()
    for level in LEVELS:
        with isa(level):
            got = _core.gemm(a, b)
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


# --------------------------------------------------------------------------
# The fused epilogue: dense_forward = f(x @ w + b) through nc_?gemm_bias_act
# --------------------------------------------------------------------------

def _np_act(name, z):
    if name in (None, "identity"):
        return z
    if name == "relu":
        return np.maximum(z, 0)
    if name == "sigmoid":
        return 1 / (1 + np.exp(-z))
    if name == "tanh":
        return np.tanh(z)
    if name == "softmax":
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    raise AssertionError(name)


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act", [None, "relu", "sigmoid", "tanh", "softmax"])
@pytest.mark.parametrize("bias", [True, False])
def test_dense_forward_epilogue(level, dtype, act, bias):
    from nncore import ops
    rng = np.random.default_rng(2)
    for which in PATHS:
        for m, k, n in [(1, 20, 7), (37, 50, 70), (300, 129, 200)]:
            x = rng.standard_normal((m, k)).astype(dtype)
            w = (rng.standard_normal((k, n)) / k ** 0.5).astype(dtype)
            b = rng.standard_normal(n).astype(dtype) if bias else None
            with isa(level), path(which):
                got = ops.dense_forward(x, w, b, activation=act)
            z = x.astype(np.float64) @ w + (b if bias else 0)
            np.testing.assert_allclose(got, _np_act(act, z), rtol=tol(dtype, k) * 10,
                                       atol=tol(dtype, k) * 10)


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("which", PATHS)
def test_dense_forward_epilogue_bit_identical_across_threads(level, which):
    from nncore import ops
    rng = np.random.default_rng(4)
    x = rng.standard_normal((300, 257)).astype(np.float32)
    w = rng.standard_normal((257, 301)).astype(np.float32)
    b = rng.standard_normal(301).astype(np.float32)
    res = []
    with isa(level), path(which):
        for t in (1, 2, 3):
            with threads(t):
                res.append(ops.dense_forward(x, w, b, activation="tanh"))
    for r in res[1:]:
        np.testing.assert_array_equal(r, res[0])
