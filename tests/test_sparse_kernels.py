"""The sparse-input kernels of csrc/dense_sparse.h, called directly through
the test hooks _core._sparse_rows and _core._to_csr, at every kernel level.

"Rows times": C row i = sum over entries e = ptr[i] .. ptr[i+1]-1, in order,
of val[e] * B[idx[e], :], each element one chain of multiply-adds from zero.
Where the products are exact (val a power of two) a multiply-add rounds like
a multiply then an add, so every level must equal, bit for bit, the chain
NumPy computes step by step; with general values the AVX2 and AVX-512 chains
(both fused) must equal each other bit for bit.

to_csr must give exactly NumPy's nonzeros (NaN counts, -0.0 does not).
"""
import numpy as np
import pytest

from nncore import _core

# (m, bk, n): the training plan's two shapes (forward: B = W in L2; weight
# gradient: B = dZ, small enough for the L1-packed path), and odd ones
SHAPES = [(64, 256, 256), (256, 64, 256), (1, 5, 17), (7, 300, 33), (5, 3, 1),
          (3, 40, 250), (10, 64, 7), (33, 130, 129), (9, 20, 100), (2, 600, 40)]


def _csr(x):
    """NumPy's nonzeros of x by rows (independent of the engine)."""
    nz = x != 0
    ptr = np.concatenate([[0], np.cumsum(nz.sum(axis=1))]).astype(np.int32)
    rows, cols = np.nonzero(nz)
    return ptr, cols.astype(np.int32), x[rows, cols]


def _sparse_x(rng, m, k, dtype, density=0.2, powers_of_two=False):
    """m x k with about `density` nonzeros, some rows empty."""
    if powers_of_two:
        vals = rng.choice([1.0, -1.0, 2.0, 0.5, -0.25, 4.0], size=(m, k))
    else:
        vals = rng.standard_normal((m, k))
    x = np.where(rng.random((m, k)) < density, vals, 0).astype(dtype)
    x[rng.random(m) < 0.2] = 0  # empty rows
    return x


def _chain(ptr, idx, val, b, m):
    """C by NumPy in the kernel's order: step t adds every row's t-th entry
    (the loop runs over entry positions; each step is vectorized over rows)."""
    counts = np.diff(ptr)
    acc = np.zeros((m, b.shape[1]), b.dtype)
    for t in range(int(counts.max(initial=0))):
        rows = np.nonzero(counts > t)[0]
        e = ptr[rows] + t
        acc[rows] = acc[rows] + val[e][:, None] * b[idx[e]]
    return acc


def _bits(a):
    return a.view(np.uint32 if a.dtype == np.float32 else np.uint64)


@pytest.mark.parametrize("shape", SHAPES, ids=[f"{m}x{k}x{n}" for m, k, n in SHAPES])
def test_sparse_rows_is_the_entry_order_chain(isa, dtype, shape):
    m, bk, n = shape
    rng = np.random.default_rng(m * 1000 + bk + n)
    x = _sparse_x(rng, m, bk, dtype, powers_of_two=True)
    b = rng.standard_normal((bk, n)).astype(dtype)
    ptr, idx, val = _csr(x)
    c = _core._sparse_rows(ptr, idx, val, b, m)
    assert c.dtype == dtype and c.shape == (m, n)
    np.testing.assert_array_equal(_bits(c), _bits(_chain(ptr, idx, val, b, m)))
    np.testing.assert_allclose(c, x.astype(np.float64) @ b.astype(np.float64),
                               rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("shape", SHAPES, ids=[f"{m}x{k}x{n}" for m, k, n in SHAPES])
def test_sparse_rows_general_values(dtype, shape):
    """Random values: close to the float64 product at every level, and the
    fused levels (AVX2, AVX-512) identical to each other bit for bit."""
    m, bk, n = shape
    rng = np.random.default_rng(7 + m + bk * n)
    x = _sparse_x(rng, m, bk, dtype)
    b = rng.standard_normal((bk, n)).astype(dtype)
    ptr, idx, val = _csr(x)
    ref = x.astype(np.float64) @ b.astype(np.float64)
    tol = 1e-4 if dtype == np.float32 else 1e-12
    fused = {}
    previous = _core.get_isa()
    try:
        for level in _core.isa_available():
            _core.set_isa(level)
            c = _core._sparse_rows(ptr, idx, val, b, m)
            np.testing.assert_allclose(c, ref, rtol=tol, atol=tol)
            if level in ("avx2", "avx512"):
                fused[level] = c
    finally:
        _core.set_isa(previous)
    if len(fused) == 2:
        np.testing.assert_array_equal(_bits(fused["avx2"]), _bits(fused["avx512"]))


def test_sparse_rows_any_entry_order(isa, dtype):
    """Entries need not be sorted or distinct: still one chain in entry order."""
    rng = np.random.default_rng(3)
    m, bk, n = 6, 70, 40
    counts = rng.integers(0, 12, m)
    ptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
    idx = rng.integers(0, bk, ptr[-1]).astype(np.int32)  # repeats, any order
    val = rng.choice([1.0, -2.0, 0.5], ptr[-1]).astype(dtype)
    b = rng.standard_normal((bk, n)).astype(dtype)
    c = _core._sparse_rows(ptr, idx, val, b, m)
    np.testing.assert_array_equal(_bits(c), _bits(_chain(ptr, idx, val, b, m)))


@pytest.mark.parametrize("bk", [64, 256])
def test_sparse_rows_empty_and_nan(isa, dtype, bk):
    rng = np.random.default_rng(bk)
    m, n = 5, 37
    b = rng.standard_normal((bk, n)).astype(dtype)
    # no entries at all: zeros, whatever C held
    c = _core._sparse_rows(np.zeros(m + 1, np.int32), np.zeros(0, np.int32),
                           np.zeros(0, dtype), b, m)
    np.testing.assert_array_equal(c, np.zeros((m, n), dtype))
    assert not np.signbit(c).any()
    # a NaN value spreads over its row only; a NaN in an unreferenced row of B
    # changes nothing (zeros of X contribute nothing)
    b[1, 3] = np.nan
    ptr = np.array([0, 1, 3, 3, 4, 5], np.int32)
    idx = np.array([0, 2, 4, 0, 5], np.int32)
    val = np.array([np.nan, 1, 2, 1, -1], dtype)
    c = _core._sparse_rows(ptr, idx, val, b, m)
    assert np.isnan(c[0]).all()
    assert np.isfinite(c[1:]).all()
    np.testing.assert_array_equal(_bits(c[1:]), _bits(_chain(ptr, idx, val, b, m)[1:]))


def test_sparse_rows_validates():
    b = np.ones((4, 3), np.float32)
    ok = dict(ptr=[0, 1, 2], idx=[0, 3], val=[1, 1])
    _core._sparse_rows(ok["ptr"], ok["idx"], ok["val"], b, 2)
    with pytest.raises(ValueError):
        _core._sparse_rows([0, 1], ok["idx"], ok["val"], b, 2)       # ptr too short
    with pytest.raises(ValueError):
        _core._sparse_rows([0, 2, 1], ok["idx"], ok["val"], b, 2)    # decreasing
    with pytest.raises(ValueError):
        _core._sparse_rows([0, 1, 3], ok["idx"], ok["val"], b, 2)    # past idx
    with pytest.raises(ValueError):
        _core._sparse_rows(ok["ptr"], [0, 4], ok["val"], b, 2)       # row of B out of range
    with pytest.raises(ValueError):
        _core._sparse_rows(ok["ptr"], [0, -1], ok["val"], b, 2)
    with pytest.raises(ValueError):
        _core._sparse_rows(ok["ptr"], ok["idx"], [1], b, 2)          # idx/val lengths
    with pytest.raises(TypeError):
        _core._sparse_rows(ok["ptr"], ok["idx"], ok["val"], b.astype(np.int32), 2)


# --------------------------------------------------------------------------
# to_csr and count_nonzero
# --------------------------------------------------------------------------

CSR_SHAPES = [(1, 1), (1, 7), (3, 8), (5, 15), (4, 16), (6, 17), (2, 33), (64, 256),
              (9, 250), (100, 31), (1, 300), (0, 5), (5, 0)]


def _check_csr(x):
    ptr, idx, val = _core._to_csr(x)
    count = _core._count_nonzero(x)
    eptr, eidx, evalue = _csr(x)
    np.testing.assert_array_equal(ptr, eptr)
    np.testing.assert_array_equal(idx, eidx)
    np.testing.assert_array_equal(_bits(val), _bits(evalue))  # NaN payloads too
    assert count == np.count_nonzero(x) == ptr[-1]


@pytest.mark.parametrize("shape", CSR_SHAPES, ids=[f"{m}x{k}" for m, k in CSR_SHAPES])
def test_to_csr_is_numpys_nonzeros(isa, dtype, shape):
    m, k = shape
    rng = np.random.default_rng(m * 7 + k)
    for density in (0.0, 0.16, 0.5, 1.0):
        x = np.where(rng.random((m, k)) < density, rng.standard_normal((m, k)), 0).astype(dtype)
        _check_csr(x)


def test_to_csr_nan_inf_and_signed_zero(isa, dtype):
    rng = np.random.default_rng(11)
    x = np.where(rng.random((7, 45)) < 0.3, rng.standard_normal((7, 45)), 0).astype(dtype)
    x[0, 0] = np.nan
    x[1, 15] = -np.nan
    x[2, 16] = np.inf
    x[3, 44] = -np.inf
    x[4, :] = -0.0  # negative zeros are zeros
    x[5, 3] = np.finfo(dtype).tiny / 4  # subnormal: nonzero
    x[6, 40] = np.nan
    _check_csr(x)


def test_to_csr_binary_images(isa, dtype):
    """The target workload's kind of input: 16 x 16 binary images, ~16% ink."""
    rng = np.random.default_rng(5)
    x = (rng.random((500, 256)) < 0.16).astype(dtype)
    _check_csr(x)
    ptr, idx, val = _core._to_csr(x)
    w = rng.standard_normal((256, 64)).astype(dtype)
    np.testing.assert_allclose(_core._sparse_rows(ptr, idx, val, w, 500),
                               x.astype(np.float64) @ w, rtol=1e-4, atol=1e-4)


def test_to_csr_validates():
    with pytest.raises(TypeError):
        _core._to_csr(np.zeros((2, 2), np.uint8))
    with pytest.raises(ValueError):
        _core._to_csr(np.zeros(4, np.float32))
    with pytest.raises(TypeError):
        _core._count_nonzero(np.zeros((2, 2), np.int64))


@pytest.mark.parametrize("count", [0, 1, 15, 16, 17, 63, 64, 65, 1000, 4099])
def test_count_nonzero_any_length(isa, dtype, count):
    """Every remainder of the vector loops (4 vectors a step, then one, then lanes)."""
    rng = np.random.default_rng(count)
    x = np.where(rng.random(count) < 0.3, rng.standard_normal(count), 0).astype(dtype)
    if count > 2:
        x[-1] = np.nan
        x[0] = -0.0
    assert _core._count_nonzero(x.reshape(1, count)) == np.count_nonzero(x)


@pytest.mark.parametrize("act_name", ["relu", "identity", "sigmoid"])
@pytest.mark.parametrize("shape", SHAPES, ids=[f"{m}x{k}x{n}" for m, k, n in SHAPES])
def test_sparse_rows_with_bias_and_activation_is_the_product_then_bias_act(isa, dtype, shape,
                                                                          act_name):
    # ReLU and identity are applied as each row is stored (AVX2, AVX-512),
    # others in a pass after: either way the bits of bias_act on the product,
    # NaN, -0.0 and values on both sides of zero included
    m, bk, n = shape
    rng = np.random.default_rng(11 + m + bk + n)
    x = _sparse_x(rng, m, bk, dtype)
    b = rng.standard_normal((bk, n)).astype(dtype)
    b[rng.random(b.shape) < 0.02] = np.nan
    bias = rng.standard_normal(n).astype(dtype)
    bias[::5] = -0.0
    ptr, idx, val = _csr(x)
    act = _core.ACTIVATIONS[act_name]
    plain = _core._sparse_rows(ptr, idx, val, b, m)
    want = _core.act_forward(act, 0.0, plain + bias)  # bias_act: c + b, then f
    for given_bias in (bias, None):
        got = _core._sparse_rows(ptr, idx, val, b, m, bias=given_bias, act=act)
        ref = want if given_bias is not None else _core.act_forward(act, 0.0, plain)
        np.testing.assert_array_equal(_bits(got), _bits(ref))
