"""The Python boundary: dtypes, layouts, shapes, labels, out= arrays, overlap, and a
fuzz over small random inputs that must each give the right answer or a
TypeError / ValueError, never a crash."""
import numpy as np
import pytest

from nncore import _core, ops
from conftest import gemm_bound, ref_act, ref_loss

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

# --------------------------------------------------------------------------
# The entry points, each as (call, shapes of its float arguments, which of them
# must be float32/float64: y_true and labels are data and get cast instead)
# --------------------------------------------------------------------------

ENTRIES = {
    "matmul": (lambda a, b: ops.matmul(a, b), [(3, 4), (4, 2)], (0, 1)),
    "matmul_TT": (lambda a, b: ops.matmul(a, b, True, True), [(4, 3), (2, 4)], (0, 1)),
    "gemm_beta": (lambda a, b, c: _core.gemm(a, b, out=np.array(c, c.dtype.newbyteorder("="), order="C"),
                                             alpha=0.5, beta=2.0),
                  [(3, 4), (4, 2), (3, 2)], (0, 1)),
    "dense_forward": (lambda x, w, b: ops.dense_forward(x, w, b, "tanh"),
                      [(3, 4), (4, 2), (2,)], (0, 1, 2)),
    "dense_backward": (lambda x, w, dz: ops.dense_backward(x, w, dz),
                       [(3, 4), (4, 2), (3, 2)], (0, 1, 2)),
    "act_forward": (lambda x: ops.activation_forward(x, "softmax"), [(3, 4)], (0,)),
    "act_forward_elu": (lambda x: ops.activation_forward(x, "elu"), [(2, 3, 2)], (0,)),
    "act_backward": (lambda y, dy: ops.activation_backward(y, dy, "softmax"),
                     [(3, 4), (3, 4)], (0, 1)),
    "loss_mse": (lambda t, p: ops.loss_and_grad(t, p, "mse"), [(3, 4), (3, 4)], (1,)),
    "loss_bce_logits": (lambda t, p: ops.loss_and_grad(t, p, "bce", from_logits=True),
                        [(3, 4), (3, 4)], (1,)),
    "loss_cce_logits": (lambda t, p: ops.loss_and_grad(t, p, "cce", True, "none"),
                        [(3, 4), (3, 4)], (1,)),
    "loss_sparse": (lambda p: ops.loss_and_grad([0, 3, 1], p, "sparse_categorical_crossentropy"),
                    [(3, 4)], (0,)),
    "categorical_accuracy": (ops.categorical_accuracy, [(3, 4), (3, 4)], (1,)),
    "sparse_accuracy": (lambda p: ops.sparse_categorical_accuracy([0, 3, 1], p), [(3, 4)], (0,)),
    "binary_accuracy": (ops.binary_accuracy, [(3, 4), (3, 4)], (1,)),
}


def _args(name, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    _, shapes, _ = ENTRIES[name]
    args = [rng.uniform(0.05, 0.95, s).astype(dtype) for s in shapes]
    return args


def _flatten(res):
    if isinstance(res, tuple):
        return [r for r in res if r is not None]
    return [res]


def _same(r1, r2):
    for a, b in zip(_flatten(r1), _flatten(r2)):
        if isinstance(a, np.ndarray):
            assert isinstance(b, np.ndarray) and a.dtype == b.dtype
            np.testing.assert_array_equal(a, b)
        else:
            assert a == b


BAD_DTYPES = [np.float16, np.int32, np.int64, np.uint8, np.bool_, np.complex64,
              np.complex128, np.longdouble, object, "U3"]


@pytest.mark.parametrize("entry", list(ENTRIES))
@pytest.mark.parametrize("bad", BAD_DTYPES, ids=lambda d: np.dtype(d).name)
def test_unsupported_dtype_is_type_error_naming_it(entry, bad):
    call, shapes, checked = ENTRIES[entry]
    if np.dtype(bad) == np.longdouble and np.dtype(np.longdouble) == np.float64:
        pytest.skip("longdouble is double on this platform")
    for pos in checked:
        args = _args(entry)
        args[pos] = args[pos].astype(bad) if np.dtype(bad).kind != "U" else \
            np.full(shapes[pos], "abc")
        with pytest.raises(TypeError, match=np.dtype(bad).name if np.dtype(bad).kind != "U" else "<U3"):
            call(*args)


@pytest.mark.parametrize("entry", [e for e in ENTRIES if len(ENTRIES[e][2]) > 1])
def test_mixed_float_dtypes_are_type_error(entry):
    call, _, checked = ENTRIES[entry]
    for pos in checked:
        args = _args(entry, np.float64)
        args[pos] = args[pos].astype(np.float32)
        with pytest.raises(TypeError, match="float32.*float64|float64.*float32"):
            call(*args)


def test_targets_are_cast_to_the_prediction_dtype(isa):
    """y_true is data (labels, 0/1): any numeric dtype is cast, as in Keras."""
    p = np.array([[0.2, 0.8], [0.6, 0.4]], np.float32)
    ref = ops.loss(np.array([[0, 1], [1, 0]], np.float32), p, "bce")
    for t in (np.array([[0, 1], [1, 0]]), np.array([[False, True], [True, False]]),
              np.array([[0, 1], [1, 0]], np.float64), [[0, 1], [1, 0]]):
        assert ops.loss(t, p, "bce") == ref
    with pytest.raises(TypeError, match="y_true"):
        ops.loss(np.array([["a", "b"], ["c", "d"]]), p, "bce")
    with pytest.raises(TypeError, match="y_true"):
        ops.loss(np.ones((2, 2), complex), p, "bce")


def test_python_lists_compute_in_float64(isa):
    y = ops.matmul([[1, 2], [3, 4]], [[1], [1]])
    assert y.dtype == np.float64
    np.testing.assert_array_equal(y, [[3], [7]])
    assert ops.activation_forward([0, 0], "sigmoid").dtype == np.float64


# --------------------------------------------------------------------------
# Layouts: every awkward input is copied, never read wrongly
# --------------------------------------------------------------------------

def _fortran(a):
    return np.asfortranarray(a)


def _strided(a):
    big = np.zeros(a.shape[:-1] + (a.shape[-1] * 3,), a.dtype) if a.ndim else a.copy()
    if a.ndim == 0:
        return big
    big[..., 1::3] = a
    return big[..., 1::3]


def _reversed(a):
    return a[::-1].copy()[::-1] if a.ndim else a


def _byteswapped(a):
    return a.astype(a.dtype.newbyteorder())


def _misaligned(a):
    buf = np.zeros(a.nbytes + a.itemsize, np.uint8)
    v = buf[1:1 + a.nbytes].view(a.dtype).reshape(a.shape)
    v[...] = a
    assert not v.flags.aligned
    return v


def _readonly(a):
    a = a.copy()
    a.setflags(write=False)
    return a


LAYOUTS = {"fortran": _fortran, "strided": _strided, "reversed": _reversed,
           "byteswapped": _byteswapped, "misaligned": _misaligned, "readonly": _readonly}


@pytest.mark.parametrize("entry", list(ENTRIES))
@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_awkward_layouts_read_correctly(isa, dtype, entry, layout):
    call, _, _ = ENTRIES[entry]
    args = _args(entry, dtype, seed=1)
    want = call(*[a.copy() for a in args])
    for pos in range(len(args)):
        odd = [a.copy() for a in args]
        odd[pos] = LAYOUTS[layout](odd[pos])
        np.testing.assert_array_equal(odd[pos], args[pos])
        _same(call(*odd), want)
    _same(call(*[LAYOUTS[layout](a) for a in args]), want)  # all at once


def test_inputs_are_never_modified(isa):
    for entry, (call, _, _) in ENTRIES.items():
        args = _args(entry, seed=2)
        keep = [a.copy() for a in args]
        call(*args)
        for a, k in zip(args, keep):
            np.testing.assert_array_equal(a, k, err_msg=entry)


# --------------------------------------------------------------------------
# Shapes
# --------------------------------------------------------------------------

def test_matmul_shape_errors_name_the_shapes():
    with pytest.raises(ValueError, match=r"\(3, 4\).*\(5, 2\)"):
        ops.matmul(np.ones((3, 4)), np.ones((5, 2)))
    with pytest.raises(ValueError, match=r"\(4, 3\).*transposed"):
        ops.matmul(np.ones((4, 3)), np.ones((4, 2)), trans_a=True, trans_b=True)
    with pytest.raises(ValueError, match=r"2-D.*\(3,\)"):
        ops.matmul(np.ones(3), np.ones((3, 2)))
    with pytest.raises(ValueError, match=r"2-D"):
        ops.matmul(np.ones((2, 3)), np.ones((3, 2, 1)))
    with pytest.raises(ValueError, match="2-D"):
        ops.matmul(np.float64(2.0), np.ones((1, 1)))


def test_dense_shape_errors_name_the_shapes():
    x, w = np.ones((3, 4)), np.ones((4, 2))
    with pytest.raises(ValueError, match=r"\(3, 4\).*\(5, 2\)"):
        ops.dense_forward(x, np.ones((5, 2)))
    with pytest.raises(ValueError, match=r"\(3,\).*\(2,\)"):
        ops.dense_forward(x, w, np.ones(3))
    with pytest.raises(ValueError, match=r"\(1, 2\)"):
        ops.dense_forward(x, w, np.ones((1, 2)))
    with pytest.raises(ValueError, match=r"\(3, 4\).*\(4, 2\).*\(3, 3\)"):
        ops.dense_backward(x, w, np.ones((3, 3)))
    with pytest.raises(ValueError, match=r"\(3, 4\).*\(4, 2\).*\(2, 2\)"):
        ops.dense_backward(x, w, np.ones((2, 2)))
    with pytest.raises(ValueError, match="2-D"):
        ops.dense_forward(np.ones(4), w)


def test_activation_shape_errors():
    with pytest.raises(ValueError, match=r"\(3, 4\).*\(4, 3\)"):
        ops.activation_backward(np.ones((3, 4)), np.ones((4, 3)), "tanh")
    for name in ("softmax", "log_softmax"):
        with pytest.raises(ValueError, match="0-d"):
            ops.activation_forward(np.array(1.0), name)
        with pytest.raises(ValueError, match="0-d"):  # backward as forward
            ops.activation_backward(np.array(1.0), np.array(1.0), name)


def test_loss_shape_errors_name_the_shapes():
    with pytest.raises(ValueError, match=r"\(3, 4\).*\(3, 5\)"):
        ops.loss(np.ones((3, 4)), np.ones((3, 5)), "mse")
    with pytest.raises(ValueError, match=r"\(3, 1\).*\(3,\)"):
        ops.loss(np.ones((3, 1)), np.ones(3), "mse")
    with pytest.raises(ValueError, match="0-d"):
        ops.loss(np.float64(1), np.float64(1), "mse")
    with pytest.raises(ValueError, match=r"\(0, 3\)"):
        ops.loss(np.ones((0, 3)), np.ones((0, 3)), "mse")
    with pytest.raises(ValueError, match=r"\(3, 0\)"):
        ops.loss(np.ones((3, 0)), np.ones((3, 0)), "mse")
    with pytest.raises(ValueError, match=r"\(3,\)"):
        ops.loss([0, 1, 2], np.ones(3), "sparse_categorical_crossentropy")


# --------------------------------------------------------------------------
# Labels
# --------------------------------------------------------------------------

@pytest.mark.parametrize("labels,match", [
    ([0, 5, 1], r"y_true\[1\] = 5"),
    ([0, 1, -1], r"y_true\[2\] = -1"),
    (np.array([0, 1, 4], np.uint8), r"y_true\[2\] = 4"),
    (np.array([0, 1, 2**63], np.uint64), r"y_true\[2\] = 9223372036854775808"),
    (np.array([0, 1e20, 1]), r"y_true\[1\] = 100000000000000000000"),
    (np.array([[0], [4], [1]]), r"y_true\[1\] = 4"),
])
@pytest.mark.parametrize("from_logits", [False, True])
def test_label_out_of_range_names_index_and_value(labels, match, from_logits):
    p = np.full((3, 4), 0.25)
    with pytest.raises(ValueError, match=match):
        ops.loss(labels, p, "sparse_categorical_crossentropy", from_logits=from_logits)
    with pytest.raises(ValueError, match=match):
        ops.sparse_categorical_accuracy(labels, p)


@pytest.mark.parametrize("labels,exc", [
    ([0, 1.5, 2], ValueError), ([0, np.nan, 1], ValueError), ([0, np.inf, 1], ValueError),
    (np.array([True, False, True]), TypeError), (np.array(["a", "b", "c"]), TypeError),
    (np.array([0, 1, 2], complex), TypeError), ([0, 1], ValueError), ([0, 1, 2, 3], ValueError),
])
def test_bad_labels(labels, exc):
    with pytest.raises(exc, match="y_true"):
        ops.loss(labels, np.full((3, 4), 0.25), "sparse_categorical_crossentropy")


def test_integral_float_labels_accepted(isa):
    p = np.full((3, 4), 0.25)
    assert ops.loss([0.0, 3.0, 1.0], p, "sparse_categorical_crossentropy") == \
        ops.loss([0, 3, 1], p, "sparse_categorical_crossentropy")


# --------------------------------------------------------------------------
# out= arrays
# --------------------------------------------------------------------------

def _out_calls(dtype):
    """(name, call(out), the right out array) for each entry point with an out."""
    rng = np.random.default_rng(3)
    a = rng.standard_normal((3, 4)).astype(dtype)
    b = rng.standard_normal((4, 5)).astype(dtype)
    dz = rng.standard_normal((3, 5)).astype(dtype)
    t = rng.uniform(size=(3, 4)).astype(dtype)
    return [
        ("matmul", lambda o: ops.matmul(a, b, out=o), (3, 5)),
        ("dense_forward", lambda o: ops.dense_forward(a, b, None, "relu", out=o), (3, 5)),
        ("dx", lambda o: ops.dense_backward(a, b, dz, dx=o), (3, 4)),
        ("dw", lambda o: ops.dense_backward(a, b, dz, dw=o), (4, 5)),
        ("db", lambda o: ops.dense_backward(a, b, dz, db=o), (5,)),
        ("act_forward", lambda o: ops.activation_forward(a, "sigmoid", out=o), (3, 4)),
        ("act_backward", lambda o: ops.activation_backward(t, a, "sigmoid", out=o), (3, 4)),
        ("loss_grad", lambda o: ops.loss_and_grad(t, a, "mse", out=o), (3, 4)),
        ("sparse_grad", lambda o: ops.loss_and_grad([0, 1, 2], a, "sparse_categorical_crossentropy",
                                                    True, out=o), (3, 4)),
    ]


@pytest.mark.parametrize("case", range(9))
def test_out_validation(isa, dtype, case):
    name, call, shape = _out_calls(dtype)[case]
    other = np.float64 if dtype == np.float32 else np.float32
    # the right array is used and returned
    good = np.full(shape, np.nan, dtype)
    res = call(good)
    assert any(r is good for r in _flatten(res)), name
    assert not np.any(np.isnan(good))

    def rejected(out, exc, match):
        keep = out.copy() if isinstance(out, np.ndarray) else None
        with pytest.raises(exc, match=match):
            call(out)
        if keep is not None:
            np.testing.assert_array_equal(out, keep)  # untouched on error

    wrong = shape[:-1] + (shape[-1] + 1,)
    rejected(np.zeros(wrong, dtype), ValueError, r"shape.*" + str(wrong).replace("(", r"\(").replace(")", r"\)"))
    rejected(np.zeros(shape[::-1] + (1,), dtype), ValueError, "shape")
    rejected(np.zeros(shape, other), TypeError, np.dtype(other).name)
    rejected(np.zeros(shape, np.int64), TypeError, "int64")
    rejected(np.zeros(shape, dtype.__name__ and np.dtype(dtype).newbyteorder()), TypeError, "dtype")
    rejected(_strided(np.zeros(shape, dtype)), ValueError, "contiguous")
    if len(shape) == 2:
        rejected(np.asfortranarray(np.zeros(shape, dtype)), ValueError, "contiguous")
    rejected(_misaligned(np.zeros(shape, dtype)), ValueError, "aligned")
    rejected(_readonly(np.zeros(shape, dtype)), ValueError, "read-only")
    with pytest.raises(TypeError, match="list"):
        call(np.zeros(shape, dtype).tolist())


def test_beta_needs_an_output():
    with pytest.raises(ValueError, match="beta"):
        _core.gemm(np.ones((2, 2)), np.ones((2, 2)), beta=1.0)
    with pytest.raises(ValueError, match="beta"):
        ops.dense_backward(np.ones((2, 2)), np.ones((2, 2)), np.ones((2, 2)), beta=1.0)
    with pytest.raises(ValueError, match="beta"):
        ops.dense_backward(np.ones((2, 2)), np.ones((2, 2)), np.ones((2, 2)), beta=1.0,
                           dw=np.zeros((2, 2)))


# --------------------------------------------------------------------------
# Overlap
# --------------------------------------------------------------------------

def test_matmul_out_overlapping_inputs_rejected():
    a = np.ones((3, 3))
    b = np.ones((3, 3))
    for out in (a, b):
        with pytest.raises(ValueError, match="overlaps"):
            ops.matmul(a, b, out=out)
    buf = np.ones(20)
    a2 = buf[:9].reshape(3, 3)
    with pytest.raises(ValueError, match="overlaps a"):
        ops.matmul(a2, b, out=buf[5:14].reshape(3, 3))
    with pytest.raises(ValueError, match="overlaps b"):
        ops.matmul(b, a2, out=buf[8:17].reshape(3, 3))
    ops.matmul(a2, b, out=buf[9:18].reshape(3, 3))  # adjacent, not overlapping: fine


def test_dense_forward_out_overlap_rejected():
    x = np.ones((3, 3))
    w = np.ones((3, 3))
    b = np.ones(3)
    for out, what in ((x, "x"), (w, "w")):
        with pytest.raises(ValueError, match=f"overlaps {what}"):
            ops.dense_forward(x, w, b, out=out)
    buf = np.zeros(12)
    with pytest.raises(ValueError, match="overlaps b"):
        ops.dense_forward(x, w, buf[6:9], out=buf[:9].reshape(3, 3))


def test_dense_backward_out_overlap_rejected():
    """Every gradient output apart from every input and from the others.
    dx = x used to be accepted, and the returned dw was then computed from dx."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3, 3))
    w = rng.standard_normal((3, 3))
    dz = rng.standard_normal((3, 3))
    for kw, arr, what in [("dx", x, "x"), ("dx", w, "w"), ("dx", dz, "dz"),
                          ("dw", x, "x"), ("dw", w, "w"), ("dw", dz, "dz"),
                          ("db", x[0], "x"), ("db", w[1], "w"), ("db", dz[2], "dz")]:
        keep = (x.copy(), w.copy(), dz.copy())
        with pytest.raises(ValueError, match=f"{kw} overlaps {what}|{what} overlaps {kw}"):
            ops.dense_backward(x, w, dz, **{kw: arr})
        for a, k in zip((x, w, dz), keep):
            np.testing.assert_array_equal(a, k)
    dw = np.zeros((3, 3))
    with pytest.raises(ValueError, match="overlaps"):
        ops.dense_backward(x, w, dz, dw=dw, db=dw[1])
    with pytest.raises(ValueError, match="overlaps"):
        ops.dense_backward(x, w, dz, dx=dw, dw=dw)


def test_elementwise_exact_in_place_allowed_partial_overlap_rejected(isa):
    buf = np.linspace(-1, 1, 12)
    with pytest.raises(ValueError, match="overlaps"):
        ops.activation_forward(buf[:10], "tanh", out=buf[2:])
    y = np.linspace(0.1, 0.9, 12)
    dy = np.linspace(-1, 1, 12)
    with pytest.raises(ValueError, match="overlaps"):
        ops.activation_backward(y[:10], dy[:10], "sigmoid", out=y[1:11])
    with pytest.raises(ValueError, match="overlaps"):
        ops.activation_backward(y[:10], dy[:10], "sigmoid", out=dy[2:])
    t = np.zeros(12)
    with pytest.raises(ValueError, match="overlaps"):
        ops.loss_and_grad(t[:10], buf[:10], "mse", out=buf[1:11])
    with pytest.raises(ValueError, match="overlaps"):
        ops.loss_and_grad(t[:10], buf[:10], "mse", out=t[2:])
    # a reshaped view of the same memory is not the same array: rejected
    x = np.linspace(-1, 1, 12).reshape(3, 4)
    with pytest.raises(ValueError):
        ops.activation_forward(x, "softmax", out=x.reshape(4, 3))
    # exactly in place: fine
    x = np.linspace(-2, 2, 12)
    assert ops.activation_forward(x, "tanh", out=x) is x


# --------------------------------------------------------------------------
# Odd sizes that must not crash
# --------------------------------------------------------------------------

def test_zero_size_with_huge_dimensions():
    big = 2**40
    a = np.empty((0, big))
    b = np.empty((big, 0))
    assert ops.matmul(a, b).shape == (0, 0)
    assert ops.matmul(np.empty((2, 0)), np.empty((0, 3))).shape == (2, 3)
    assert ops.activation_forward(np.empty((big, 0)), "softmax").shape == (big, 0)
    assert ops.activation_forward(np.empty((0, big)), "log_softmax").shape == (0, big)
    with pytest.raises(ValueError):
        ops.loss(np.empty((big, 0)), np.empty((big, 0)), "mse")


def test_unknown_codes_rejected():
    with pytest.raises(ValueError):
        _core.loss(99, 0, np.ones(2), np.ones(2))
    with pytest.raises(ValueError):
        _core.loss(0, 7, np.ones(2), np.ones(2))
    with pytest.raises(ValueError):
        _core.loss_sparse(0, 0, [0], np.ones((1, 2)))
    with pytest.raises(ValueError):
        _core.loss_sparse(4, -1, [0], np.ones((1, 2)))
    with pytest.raises(ValueError, match="kernel level"):
        _core.set_isa("sse9")
    with pytest.raises(ValueError):
        _core.set_num_threads(0)


# --------------------------------------------------------------------------
# Fuzz: right answer or TypeError / ValueError, never a crash
# --------------------------------------------------------------------------

FUZZ_DTYPES = [np.float32, np.float64, np.float16, np.int32, np.bool_, np.complex64]


@st.composite
def arrays(draw, min_dims=0, max_dims=3):
    dtype = draw(st.sampled_from(FUZZ_DTYPES))
    shape = tuple(draw(st.lists(st.integers(0, 4), min_size=min_dims, max_size=max_dims)))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    vals = rng.standard_normal(shape) * draw(st.sampled_from([1.0, 100.0]))
    if vals.size and draw(st.booleans()):
        vals.reshape(-1)[rng.integers(vals.size)] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    with np.errstate(all="ignore"):
        arr = vals.astype(dtype) if np.dtype(dtype).kind != "b" else vals > 0
    layout = draw(st.sampled_from(["c", "fortran", "reversed", "byteswapped"]))
    if layout == "fortran":
        arr = np.asfortranarray(arr)
    elif layout == "reversed" and arr.ndim:
        arr = arr[::-1].copy()[::-1]
    elif layout == "byteswapped" and arr.dtype.itemsize > 1:
        arr = arr.astype(arr.dtype.newbyteorder())
    return arr


def _is_float(a):
    return a.dtype.kind == "f" and a.dtype.itemsize in (4, 8)


FUZZ = settings(max_examples=150, deadline=None, derandomize=True,
                suppress_health_check=list(HealthCheck))


@FUZZ
@given(a=arrays(), b=arrays(), ta=st.booleans(), tb=st.booleans())
def test_fuzz_matmul(a, b, ta, tb):
    try:
        got = ops.matmul(a, b, ta, tb)
    except (TypeError, ValueError):
        ok = (_is_float(a) and _is_float(b) and a.dtype == b.dtype and a.ndim == 2 and b.ndim == 2
              and (a.shape[0] if ta else a.shape[1]) == (b.shape[1] if tb else b.shape[0]))
        assert not ok, "valid input rejected"
        return
    assert _is_float(a) and a.dtype.newbyteorder("=") == b.dtype.newbyteorder("=")
    a64 = (a.T if ta else a).astype(np.float64)
    b64 = (b.T if tb else b).astype(np.float64)
    with np.errstate(all="ignore"):
        want = a64 @ b64
        bound = gemm_bound(np.abs(a64) @ np.abs(b64), a64.shape[1], got.dtype)
    assert got.shape == want.shape and got.dtype == a.dtype.newbyteorder("=")
    fin = np.isfinite(want) & np.isfinite(bound)
    assert np.all(np.abs(got[fin] - want[fin]) <= bound[fin])


@FUZZ
@given(x=arrays(), name=st.sampled_from(["sigmoid", "relu", "softmax", "log_softmax", "elu",
                                         "softplus", "step", "tanh"]))
def test_fuzz_activation(x, name):
    try:
        y = ops.activation_forward(x, name)
    except (TypeError, ValueError):
        assert not (_is_float(x) and (x.ndim > 0 or name not in ("softmax", "log_softmax")))
        return
    assert _is_float(x) and y.shape == x.shape
    want = np.atleast_1d(ref_act(name, x.astype(np.float64)))
    x, y = np.atleast_1d(x), np.atleast_1d(y)
    np.testing.assert_array_equal(np.isnan(y), np.isnan(want))
    fin = np.isfinite(want)
    tol = (1e-5 if y.dtype == np.float32 else 1e-12) * (1 + np.abs(x[fin].astype(np.float64)))
    err = np.abs(y[fin] - want[fin])
    assert np.all(err <= tol), (x, y, want)
    dx = ops.activation_backward(y, np.ones_like(y), name)
    assert dx.shape == x.shape


@FUZZ
@given(t=arrays(), p=arrays(), name=st.sampled_from(["mse", "mae", "bce", "cce"]),
       logits=st.booleans(), reduction=st.sampled_from(["mean", "sum", "none"]))
def test_fuzz_loss(t, p, name, logits, reduction):
    if name in ("mse", "mae"):
        logits = False
    try:
        val, g = ops.loss_and_grad(t, p, name, logits, reduction)
    except (TypeError, ValueError):
        shape_ok = t.shape == p.shape or (p.ndim >= 1 and p.shape[-1] == 1 and t.shape == p.shape[:-1])
        ok = (_is_float(p) and t.dtype.kind in "biuf" and shape_ok and p.ndim >= 1 and p.size > 0)
        assert not ok, "valid input rejected"
        return
    assert _is_float(p) and p.size > 0 and g.shape == p.shape
    ref = {"mse": "mse", "mae": "mae", "bce": "bce", "cce": "cce"}[name]
    p64 = p.astype(np.float64)
    with np.errstate(all="ignore"):
        want = ref_loss(ref, t.astype(p.dtype).astype(np.float64).reshape(p.shape), p64, logits,
                        reduction)
    if reduction == "none":
        assert val.shape == (p.shape[:-1] if p.ndim > 1 else p.shape)
    tol = 1e-4 if p.dtype.itemsize == 4 else 1e-9
    np.testing.assert_allclose(np.asarray(val, np.float64), want, rtol=tol, atol=tol,
                               equal_nan=True)


@FUZZ
@given(x=arrays(2, 2), w=arrays(2, 2), b=st.one_of(st.none(), arrays(1, 1)),
       act=st.sampled_from(["linear", "relu", "tanh", "softmax"]))
def test_fuzz_dense(x, w, b, act):
    try:
        y = ops.dense_forward(x, w, b, act)
    except (TypeError, ValueError):
        ok = (_is_float(x) and _is_float(w) and x.dtype == w.dtype and x.shape[1] == w.shape[0]
              and (b is None or (_is_float(b) and b.dtype == x.dtype and b.shape == (w.shape[1],))))
        assert not ok, "valid input rejected"
        return
    assert y.shape == (x.shape[0], w.shape[1])
    try:
        dx, dw, db = ops.dense_backward(x, w, y)
    except (TypeError, ValueError):
        raise AssertionError("backward rejected what forward accepted")
    assert dx.shape == x.shape and dw.shape == w.shape and db.shape == (w.shape[1],)


@FUZZ
@given(p=arrays(), labels=arrays(0, 2), logits=st.booleans())
def test_fuzz_sparse(p, labels, logits):
    labels = np.where(np.isfinite(labels), labels, 0) if labels.dtype.kind in "fc" else labels
    if labels.dtype.kind == "f":
        labels = np.round(labels)
    try:
        val = ops.loss(labels, p, "sparse_categorical_crossentropy", logits)
    except (TypeError, ValueError):
        return
    assert _is_float(p) and p.ndim >= 2 and p.size > 0
    lab = labels.astype(np.int64).reshape(-1)
    assert lab.size == p.size // p.shape[-1]
    assert np.all((lab >= 0) & (lab < p.shape[-1]))
    with np.errstate(all="ignore"):
        want = ref_loss("sparse", lab, p.reshape(-1, p.shape[-1]).astype(np.float64), logits)
    np.testing.assert_allclose(val, want, rtol=1e-4, atol=1e-4, equal_nan=True)


def test_numpy_scalars_checked_like_arrays():
    """A NumPy scalar has a dtype: np.int32(1) is rejected like np.array(1, np.int32);
    only dtype-less Python numbers and lists are taken as float64."""
    for bad in (np.int32(1), np.float16(1), np.bool_(True), np.int64(2)):
        with pytest.raises(TypeError, match=np.dtype(type(bad)).name):
            ops.activation_forward(bad, "sigmoid")
    assert ops.activation_forward(np.float32(0), "sigmoid").dtype == np.float32
    assert ops.activation_forward(0, "sigmoid").dtype == np.float64


def test_misaligned_input_is_copied_before_the_kernel(isa):
    """White-box: np.ascontiguousarray returns a C-contiguous misaligned array as it is,
    so the boundary used to hand misaligned pointers to C (undefined behaviour; x86
    tolerates it, strict-alignment targets and aligned SIMD loads do not). Seen from
    Python: once copied, the input no longer shares memory with an out= array cut
    from the same buffer, so there is nothing to reject and the result is right."""
    buf = np.zeros(8 * 12 + 8, np.uint8)
    x = buf[1:97].view(np.float64)
    assert not x.flags.aligned and x.flags.c_contiguous
    x[:] = np.linspace(-1, 1, 12)
    want = np.tanh(np.linspace(-1, 1, 12))
    out = buf[8:104].view(np.float64)
    assert out.flags.aligned
    np.testing.assert_allclose(ops.activation_forward(x, "tanh", out=out), want, rtol=1e-15)
    # targets and labels likewise
    buf2 = np.zeros(8 * 12 + 8, np.uint8)
    t = buf2[1:97].view(np.float64).reshape(3, 4)
    t[:] = np.eye(4)[:3]
    p = np.full((3, 4), 0.25)
    assert ops.loss(t, p, "cce") == pytest.approx(np.log(4))
    lab = buf2[1:25].view(np.int64)
    lab[:] = [0, 1, 2]
    assert ops.loss(lab, p, "sparse_categorical_crossentropy") == pytest.approx(np.log(4))


@pytest.mark.parametrize("env,expect", [("ref", "ref"), ("", None), ("bogus", "names no kernel level"),
                                        ("sse9", "names no kernel level")])
def test_nncore_isa_environment(env, expect):
    import os
    import subprocess
    import sys
    code = "from nncore import _core; print(_core.get_isa())"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env={**os.environ, "NNCORE_ISA": env}, cwd=os.getcwd())
    if expect is None:
        assert r.returncode == 0 and r.stdout.strip() == _core.isa_available()[-1]
    elif expect in _core.ISA_LEVELS:
        assert r.returncode == 0 and r.stdout.strip() == expect
    else:
        assert r.returncode == 1 and "ImportError" in r.stderr and expect in r.stderr
        assert env in r.stderr


def test_unavailable_isa_level_is_an_error_not_a_crash():
    missing = [lvl for lvl in _core.ISA_LEVELS if lvl not in _core.isa_available()]
    before = _core.get_isa()
    for lvl in missing:
        with pytest.raises(RuntimeError, match="not available"):
            _core.set_isa(lvl)
        assert _core.get_isa() == before
    with pytest.raises(OverflowError):
        _core.set_num_threads(2**31)


@FUZZ
@given(out=arrays(), which=st.sampled_from(["matmul", "act", "act_back", "grad", "dense"]))
def test_fuzz_out_arrays(out, which):
    """A random out= array is either exactly right (and then holds the result) or refused."""
    x = np.linspace(-1, 1, 12).reshape(3, 4)
    w = np.linspace(-1, 1, 20).reshape(4, 5)
    calls = {
        "matmul": (lambda o: ops.matmul(x, w, out=o), lambda: x @ w),
        "act": (lambda o: ops.activation_forward(x, "tanh", out=o), lambda: np.tanh(x)),
        "act_back": (lambda o: ops.activation_backward(x, x, "tanh", out=o), lambda: x * (1 - x * x)),
        "grad": (lambda o: ops.loss_and_grad(x * 0, x, "mse", out=o)[1], lambda: 2 * x / 12),
        "dense": (lambda o: ops.dense_forward(x, w, None, "linear", out=o), lambda: x @ w),
    }
    call, want = calls[which]
    try:
        got = call(out)
    except (TypeError, ValueError):
        right = want()
        assert not (out.dtype == np.float64 and out.shape == right.shape
                    and out.flags.c_contiguous and out.flags.aligned and out.flags.writeable)
        return
    assert got is out
    np.testing.assert_allclose(out, want(), rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("layout", ["byteswapped", "strided", "reversed", "misaligned", "readonly"])
@pytest.mark.parametrize("from_logits", [False, True])
def test_label_layouts_read_correctly(isa, layout, from_logits):
    rng = np.random.default_rng(21)
    p = rng.uniform(0.1, 0.9, (6, 4))
    labels = rng.integers(0, 4, 6)
    want = ops.loss_and_grad(labels, p, "sparse_categorical_crossentropy", from_logits)
    for dt in (np.int64, np.int32, np.uint16):
        odd = LAYOUTS[layout](labels.astype(dt))
        np.testing.assert_array_equal(odd, labels)
        got = ops.loss_and_grad(odd, p, "sparse_categorical_crossentropy", from_logits)
        assert got[0] == want[0]
        np.testing.assert_array_equal(got[1], want[1])
        assert ops.sparse_categorical_accuracy(odd, p) == ops.sparse_categorical_accuracy(labels, p)


def test_big_results_are_huge_page_aligned_and_owned():
    """Results of 4 MiB and more come from nncore's NumPy memory handler,
    2 MiB-aligned on Linux (so transparent huge pages back them from the
    first byte): still ordinary arrays that own their memory, can be resized
    and are freed like any other."""
    import sys
    x = np.linspace(-5, 5, 1_100_000, dtype=np.float32).reshape(1100, 1000)
    y = ops.activation_forward(x, "tanh")
    np.testing.assert_array_equal(y, ops.activation_forward(x, "tanh", out=np.empty_like(x)))
    assert y.flags.owndata and y.flags.c_contiguous and y.base is None
    if sys.platform.startswith("linux"):
        assert y.ctypes.data % (2 << 20) == 0
    z = ops.matmul(x[:, :4].T.copy(), x[:, :4].copy(), out=None)  # small: the default allocator
    assert z.flags.owndata
    y.resize((2000, 1000), refcheck=False)  # realloc through the same handler
    assert y.shape == (2000, 1000)
    np.testing.assert_array_equal(y[:1100], ops.activation_forward(x, "tanh"))
    small = ops.activation_forward(x[:10], "tanh")
    assert small.flags.owndata
