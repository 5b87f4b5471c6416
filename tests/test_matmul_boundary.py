"""nncore.ops.matmul's fast path (the common case checked in C, the GIL kept
for small products) against the general boundary path, _core.gemm."""
import numpy as np
import pytest

from nncore import _core, ops


def test_ops_matmul_is_the_boundary_function():
    assert ops.matmul is _core.matmul
    assert "op(a) @ op(b)" in ops.matmul.__doc__


@pytest.mark.parametrize("ta", [False, True])
@pytest.mark.parametrize("tb", [False, True])
@pytest.mark.parametrize("mnk", [(32, 32, 64), (1, 64, 256), (7, 5, 3), (70, 90, 50),
                                 (0, 4, 3), (3, 4, 0)])
def test_fast_path_equals_general_path(isa, dtype, ta, tb, mnk):
    m, n, k = mnk
    rng = np.random.default_rng(m * 10000 + n * 100 + k)
    a = rng.standard_normal((k, m) if ta else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if tb else (k, n)).astype(dtype)
    want = _core.gemm(a, b, ta, tb, None)
    got = ops.matmul(a, b, ta, tb)
    assert got.dtype == dtype and got.shape == (m, n) and got.flags.owndata
    np.testing.assert_array_equal(got, want)
    out = np.full((m, n), np.nan, dtype)
    assert ops.matmul(a, b, trans_a=ta, trans_b=tb, out=out) is out
    np.testing.assert_array_equal(out, want)
    ref = (a.T if ta else a).astype(np.float64) @ (b.T if tb else b)
    np.testing.assert_allclose(got, ref, rtol=1e-4 if dtype == np.float32 else 1e-12,
                               atol=1e-4 * max(k, 1) if dtype == np.float32 else 1e-12)


@pytest.mark.parametrize("case", ["list", "strided", "fortran", "int", "mixed", "3d",
                                  "k", "out_shape", "out_dtype", "out_strided", "out_ro",
                                  "out_overlap", "out_list"])
def test_everything_else_takes_the_general_path(case):
    """Each input the fast path declines gives what _core.gemm gives: the
    same result (inputs it copies) or the same error."""
    rng = np.random.default_rng(1)
    a = rng.standard_normal((6, 4)).astype(np.float32)
    b = rng.standard_normal((4, 5)).astype(np.float32)
    out = None
    if case == "list":
        a = a.tolist()
    elif case == "strided":
        a = np.repeat(a, 2, axis=1)[:, ::2]
    elif case == "fortran":
        b = np.asfortranarray(b)
    elif case == "int":
        a = a.astype(np.int32)
    elif case == "mixed":
        b = b.astype(np.float64)
    elif case == "3d":
        a = a[None]
    elif case == "k":
        b = b[:3]
    elif case == "out_shape":
        out = np.empty((6, 4), np.float32)
    elif case == "out_dtype":
        out = np.empty((6, 5), np.float64)
    elif case == "out_strided":
        out = np.empty((6, 10), np.float32)[:, ::2]
    elif case == "out_ro":
        out = np.empty((6, 5), np.float32)
        out.flags.writeable = False
    elif case == "out_overlap":
        out = a[:, :1]
        b = b[:1]
    elif case == "out_list":
        out = [[0.0] * 5] * 6

    def call(fn):
        o = out.copy() if isinstance(out, np.ndarray) and out.flags.writeable else out
        if isinstance(out, np.ndarray) and not out.flags.writeable:
            o = out
        try:
            return fn(a, b, False, False, o), None
        except Exception as e:  # noqa: BLE001 - the exception itself is compared
            return None, e

    got, got_err = call(ops.matmul)
    want, want_err = call(_core.gemm)
    if want_err is not None:
        assert type(got_err) is type(want_err) and str(got_err) == str(want_err)
    else:
        assert got_err is None
        np.testing.assert_array_equal(got, want)


def test_big_result_goes_through_the_aligned_allocation():
    a = np.ones((1024, 2), np.float32)
    b = np.ones((2, 1024), np.float32)
    c = ops.matmul(a, b)
    assert c.flags.owndata and np.all(c == 2)


@pytest.mark.parametrize("ta", [False, True])
@pytest.mark.parametrize("tb", [False, True])
@pytest.mark.parametrize("mnk", [(64, 10, 256), (7, 5, 3), (70, 90, 50)])
def test_transposed_views_are_read_in_place(isa, dtype, ta, tb, mnk):
    # a Fortran-order operand (x.T of a C array) goes through the opposite
    # transpose flag instead of a copy: the product of the flags it then has
    # (equal to rounding to the C-order copy's; the kernels may block a
    # transposed read differently)
    m, n, k = mnk
    rng = np.random.default_rng(m + n + k)
    a = rng.standard_normal((k, m) if ta else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if tb else (k, n)).astype(dtype)
    a_view, b_view = np.ascontiguousarray(a.T).T, np.ascontiguousarray(b.T).T
    assert a_view.flags.f_contiguous and not a_view.flags.c_contiguous
    want = _core.gemm(a, b, ta, tb, None)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    for x, y in ((a_view, b), (a, b_view), (a_view, b_view)):
        flipped = _core.gemm(np.ascontiguousarray(x.T) if x is a_view else x,
                             np.ascontiguousarray(y.T) if y is b_view else y,
                             ta != (x is a_view), tb != (y is b_view), None)
        np.testing.assert_array_equal(ops.matmul(x, y, ta, tb), flipped)
        np.testing.assert_array_equal(_core.gemm(x, y, ta, tb, None), flipped)
        np.testing.assert_allclose(flipped, want, rtol=tol, atol=tol * k)
