# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The boundary between Python and the C engine.

Everything that crosses into C is checked here, once: types (float32 or
float64; anything else is a TypeError naming the dtype), shapes (a ValueError
naming the shapes), memory layout (input that is not C-contiguous, aligned
and in native byte order is copied, never read wrongly; an ``out=`` array
must already be right, because the result has to land in it), overlap of
outputs with inputs, and label ranges. The kernels then run with the GIL
released and trust what they are given.

These functions take engine codes (activation and loss numbers); the
friendly, name-based API is :mod:`nncore.ops`.
"""
cimport numpy as cnp
import numpy as np
from libc.stdint cimport int64_t

cnp.import_array()

cdef int F32 = cnp.NPY_FLOAT
cdef int F64 = cnp.NPY_DOUBLE

ACTIVATIONS = {
    "identity": NC_ACT_IDENTITY, "step": NC_ACT_STEP, "sigmoid": NC_ACT_SIGMOID,
    "tanh": NC_ACT_TANH, "relu": NC_ACT_RELU, "leaky_relu": NC_ACT_LEAKY_RELU,
    "elu": NC_ACT_ELU, "softplus": NC_ACT_SOFTPLUS, "softmax": NC_ACT_SOFTMAX,
    "log_softmax": NC_ACT_LOG_SOFTMAX,
}
LOSSES = {
    "mse": NC_LOSS_MSE, "mae": NC_LOSS_MAE, "bce": NC_LOSS_BCE,
    "bce_logits": NC_LOSS_BCE_LOGITS, "cce": NC_LOSS_CCE, "cce_logits": NC_LOSS_CCE_LOGITS,
}
REDUCTIONS = {"mean": NC_REDUCE_MEAN, "sum": NC_REDUCE_SUM, "none": NC_REDUCE_NONE}


def engine_version():
    """The C engine's version string."""
    return nc_version().decode("ascii")


def engine_compiler():
    """The compiler that built the C engine."""
    return nc_compiler().decode("ascii", "replace")


# --------------------------------------------------------------------------
# Instruction-set levels and threads
# --------------------------------------------------------------------------

ISA_LEVELS = tuple(nc_isa_name(<nc_isa>i).decode("ascii") for i in range(NC_ISA_COUNT_))


def isa_available():
    """The kernel levels this build and CPU can run, best last."""
    return [ISA_LEVELS[i] for i in range(NC_ISA_COUNT_) if nc_isa_available(<nc_isa>i)]


def get_isa():
    """The kernel level in force."""
    return ISA_LEVELS[<int>nc_get_isa()]


def set_isa(name):
    """Switch the kernel level ("ref", "avx2", "avx512", "neon"); not while kernels run."""
    if name not in ISA_LEVELS:
        raise ValueError(f"unknown kernel level {name!r}; the levels are {', '.join(ISA_LEVELS)}")
    cdef int level = ISA_LEVELS.index(name)
    if nc_set_isa(<nc_isa>level) != NC_OK:
        raise RuntimeError(f"kernel level {name!r} is not available on this machine "
                           f"(available: {', '.join(isa_available())})")


def set_num_threads(int n):
    """Set how many threads the engine may use for one call (n >= 1)."""
    if n < 1:
        raise ValueError(f"the number of threads must be at least 1, got {n}")
    _check_status(nc_set_num_threads(n))


def get_num_threads():
    """How many threads the engine may use for one call."""
    return nc_get_num_threads()


def _init_engine():
    import os
    cdef nc_status st = nc_init()
    want = os.environ.get("NNCORE_ISA", "")
    if st == NC_ERR_ARG:
        raise ImportError(f"NNCORE_ISA={want!r} names no kernel level; "
                          f"use one of {', '.join(ISA_LEVELS)} (or leave it unset)")
    if st != NC_OK:
        raise ImportError(f"NNCORE_ISA={want!r}: that kernel level is not available on this "
                          f"machine (available: {', '.join(isa_available())})")


_init_engine()


# --------------------------------------------------------------------------
# Checks shared by every entry point
# --------------------------------------------------------------------------

cdef inline int _check_status(nc_status st) except -1:
    if st == NC_OK:
        return 0
    if st == NC_ERR_NOMEM:
        raise MemoryError("nncore engine: out of memory")
    raise RuntimeError("nncore engine: " + nc_status_str(st).decode("ascii"))


cdef cnp.ndarray _real(object x, str name):
    """x as a C-contiguous, aligned, native-order float32 or float64 array."""
    cdef cnp.ndarray arr
    cdef int t
    if cnp.PyArray_Check(x):
        arr = <cnp.ndarray>x
    elif isinstance(x, np.generic):
        arr = np.asarray(x)  # a NumPy scalar has a dtype of its own: checked like an array's
    else:
        arr = np.asarray(x)
        if arr.dtype.kind in "biu":
            # a plain list of numbers has no dtype of its own: compute in float64
            arr = arr.astype(np.float64)
    t = cnp.PyArray_TYPE(arr)
    if t != F32 and t != F64:
        raise TypeError(
            f"{name} has dtype {arr.dtype}; nncore computes in float32 or float64 "
            f"(convert it with .astype(np.float32))")
    if not (cnp.PyArray_IS_C_CONTIGUOUS(arr) and cnp.PyArray_ISBEHAVED_RO(arr)):
        # an explicit copy: np.ascontiguousarray hands back a C-contiguous but
        # misaligned array as it is
        arr = np.array(arr, dtype=np.float32 if t == F32 else np.float64, order="C", copy=True)
    return arr


cdef inline int _same_dtype(cnp.ndarray a, str a_name, cnp.ndarray b, str b_name) except -1:
    if cnp.PyArray_TYPE(a) != cnp.PyArray_TYPE(b):
        raise TypeError(f"{a_name} is {a.dtype} but {b_name} is {b.dtype}; "
                        f"pass them in one dtype")
    return 0


cdef cnp.ndarray _out(object out, str name, int typenum, tuple shape):
    """A new array of `shape`, or `out` checked to be exactly right for it."""
    cdef cnp.ndarray arr
    if out is None:
        return np.empty(shape, dtype=np.float32 if typenum == F32 else np.float64)
    if not cnp.PyArray_Check(out):
        raise TypeError(f"{name} must be a numpy.ndarray, not {type(out).__name__}")
    arr = <cnp.ndarray>out
    if cnp.PyArray_TYPE(arr) != typenum or not cnp.PyArray_ISNOTSWAPPED(arr):
        raise TypeError(f"{name} has dtype {arr.dtype}; the result is "
                        f"{np.dtype(np.float32 if typenum == F32 else np.float64)}")
    if _shape(arr) != shape:
        raise ValueError(f"{name} has shape {_shape(arr)}; the result has shape {shape}")
    if not (cnp.PyArray_IS_C_CONTIGUOUS(arr) and cnp.PyArray_ISALIGNED(arr)):
        raise ValueError(f"{name} must be C-contiguous and aligned")
    if not cnp.PyArray_ISWRITEABLE(arr):
        raise ValueError(f"{name} is read-only")
    return arr


cdef inline tuple _shape(cnp.ndarray a):
    """The shape as a Python tuple (on a typed ndarray, .shape is the C array)."""
    return (<object>a).shape


cdef inline bint _overlaps(cnp.ndarray a, cnp.ndarray b):
    """Whether the memory of two contiguous arrays overlaps."""
    cdef char *pa = <char *>cnp.PyArray_DATA(a)
    cdef char *pb = <char *>cnp.PyArray_DATA(b)
    cdef Py_ssize_t na = cnp.PyArray_NBYTES(a), nb = cnp.PyArray_NBYTES(b)
    return na > 0 and nb > 0 and pa < pb + nb and pb < pa + na


cdef inline int _no_overlap(cnp.ndarray out, str out_name, cnp.ndarray src,
                            str src_name) except -1:
    if _overlaps(out, src):
        raise ValueError(f"{out_name} overlaps {src_name}; pass a separate array")
    return 0


cdef inline int _same_or_apart(cnp.ndarray out, str out_name, cnp.ndarray src,
                               str src_name) except -1:
    """An element-wise output may be its input exactly, never partly overlap it."""
    if cnp.PyArray_DATA(out) != cnp.PyArray_DATA(src):
        _no_overlap(out, out_name, src, src_name)
    return 0


cdef inline int _ndim(cnp.ndarray a, str name, int nd) except -1:
    if cnp.PyArray_NDIM(a) != nd:
        raise ValueError(f"{name} must be {nd}-D, got shape {_shape(a)}")
    return 0


cdef tuple _rows_cols(cnp.ndarray a):
    """(rows, cols) of an array seen as rows along its last axis."""
    cdef int nd = cnp.PyArray_NDIM(a)
    cdef Py_ssize_t cols
    if nd == 0:
        return 1, 1
    cols = a.shape[nd - 1]
    return (cnp.PyArray_SIZE(a) // cols if cols else 0), cols


cdef cnp.ndarray _labels(object labels, Py_ssize_t n, Py_ssize_t k, str name):
    """Integer class labels as contiguous int64, each checked to lie in [0, k)."""
    cdef cnp.ndarray arr = np.asarray(labels)
    cdef Py_ssize_t bad
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or np.any(arr != np.floor(arr)):
            raise ValueError(f"{name} must hold integer class labels; got non-integral values")
    elif arr.dtype.kind not in "iu":
        raise TypeError(f"{name} has dtype {arr.dtype}; class labels must be integers")
    if arr.size != n:
        raise ValueError(f"{name} has shape {_shape(arr)}: {arr.size} labels for {n} samples")
    # Range-check in the labels' own dtype, before the cast to int64: a uint64
    # of 2**63 or a float of 1e20 would otherwise wrap (or be undefined) and the
    # error would name a value the caller never passed.
    flat = arr.reshape(-1)
    out_of_range = np.flatnonzero((flat < 0) | (flat >= k))
    if out_of_range.size:
        bad = out_of_range[0]
        value = flat[bad].item()
        if isinstance(value, float):
            value = int(value)
        raise ValueError(f"{name}[{bad}] = {value} is outside the {k} classes [0, {k})")
    arr = np.ascontiguousarray(arr, dtype=np.int64)
    return arr if arr.flags.aligned else arr.copy()  # ascontiguousarray keeps misalignment


cdef int _check_act(int act, double param) except -1:
    if act < 0 or act >= NC_ACT_COUNT_:
        raise ValueError(f"unknown activation code {act}")
    if act == NC_ACT_LEAKY_RELU and not param >= 0:
        raise ValueError(f"leaky_relu's negative slope must be >= 0, got {param}")
    if act == NC_ACT_ELU and not param >= 0:
        raise ValueError(f"elu's alpha must be >= 0, got {param}")
    return 0


# --------------------------------------------------------------------------
# Matrix product and dense layer
# --------------------------------------------------------------------------

def gemm(a, b, bint trans_a=False, bint trans_b=False, out=None,
         double alpha=1.0, double beta=0.0):
    """out = alpha * op(a) @ op(b) + beta * out for 2-D float arrays; returns out."""
    cdef cnp.ndarray A = _real(a, "a"), B = _real(b, "b"), C
    cdef Py_ssize_t m, n, k, k2
    cdef size_t lda, ldb
    cdef nc_status st
    _same_dtype(A, "a", B, "b")
    _ndim(A, "a", 2)
    _ndim(B, "b", 2)
    m, k = (A.shape[1], A.shape[0]) if trans_a else (A.shape[0], A.shape[1])
    k2, n = (B.shape[1], B.shape[0]) if trans_b else (B.shape[0], B.shape[1])
    if k != k2:
        raise ValueError(
            f"matmul: op(a) is {m} x {k} but op(b) is {k2} x {n} "
            f"(a {_shape(A)}{', transposed' if trans_a else ''}, "
            f"b {_shape(B)}{', transposed' if trans_b else ''})")
    if beta != 0 and out is None:
        raise ValueError("beta != 0 accumulates into out, so out must be given")
    C = _out(out, "out", cnp.PyArray_TYPE(A), (m, n))
    _no_overlap(C, "out", A, "a")
    _no_overlap(C, "out", B, "b")
    lda, ldb = A.shape[1], B.shape[1]
    if cnp.PyArray_TYPE(A) == F32:
        with nogil:
            st = nc_sgemm(trans_a, trans_b, m, n, k, <float>alpha,
                          <const float *>cnp.PyArray_DATA(A), lda,
                          <float *>cnp.PyArray_DATA(B), ldb,
                          <float>beta, <float *>cnp.PyArray_DATA(C), n)
    else:
        with nogil:
            st = nc_dgemm(trans_a, trans_b, m, n, k, alpha,
                          <const double *>cnp.PyArray_DATA(A), lda,
                          <double *>cnp.PyArray_DATA(B), ldb,
                          beta, <double *>cnp.PyArray_DATA(C), n)
    _check_status(st)
    return C


def dense_forward(x, w, b=None, int act=NC_ACT_IDENTITY, double param=0.0, out=None):
    """f(x @ w + b) for x (m, k), w (k, n), b (n,) or None; returns (m, n)."""
    cdef cnp.ndarray X = _real(x, "x"), W = _real(w, "w"), Bv = None, Y
    cdef Py_ssize_t m, k, n
    cdef const void *bp = NULL
    cdef nc_status st
    cdef int t
    _same_dtype(X, "x", W, "w")
    _ndim(X, "x", 2)
    _ndim(W, "w", 2)
    _check_act(act, param)
    m, k, n = X.shape[0], X.shape[1], W.shape[1]
    if W.shape[0] != k:
        raise ValueError(f"x has shape {_shape(X)} but w has shape {_shape(W)}; "
                         f"w needs {k} rows, one per input feature")
    if b is not None:
        Bv = _real(b, "b")
        _same_dtype(X, "x", Bv, "b")
        if _shape(Bv) != (n,):
            raise ValueError(f"b has shape {_shape(Bv)}; w has shape {_shape(W)}, so b needs ({n},)")
        bp = cnp.PyArray_DATA(Bv)
    t = cnp.PyArray_TYPE(X)
    Y = _out(out, "out", t, (m, n))
    _no_overlap(Y, "out", X, "x")
    _no_overlap(Y, "out", W, "w")
    if Bv is not None:
        _no_overlap(Y, "out", Bv, "b")
    if t == F32:
        with nogil:
            st = nc_sdense_forward(m, k, n, <const float *>cnp.PyArray_DATA(X),
                                   <float *>cnp.PyArray_DATA(W), <const float *>bp,
                                   <nc_act>act, <float>param, <float *>cnp.PyArray_DATA(Y))
    else:
        with nogil:
            st = nc_ddense_forward(m, k, n, <const double *>cnp.PyArray_DATA(X),
                                   <double *>cnp.PyArray_DATA(W), <const double *>bp,
                                   <nc_act>act, param, <double *>cnp.PyArray_DATA(Y))
    _check_status(st)
    return Y


def dense_backward(x, w, dz, bint want_dx=True, bint want_dw=True, bint want_db=True,
                   dx=None, dw=None, db=None, double beta=0.0):
    """(dx, dw, db) of a dense layer from dz = dL/d(x @ w + b); None where not wanted.

    dw and db are accumulated as grad + beta * existing when beta != 0 (then
    the arrays to accumulate into must be given).
    """
    cdef cnp.ndarray X = _real(x, "x"), W = _real(w, "w"), DZ = _real(dz, "dz")
    cdef cnp.ndarray DX = None, DW = None, DB = None
    cdef Py_ssize_t m, k, n
    cdef void *dxp = NULL
    cdef void *dwp = NULL
    cdef void *dbp = NULL
    cdef nc_status st
    cdef int t
    _same_dtype(X, "x", W, "w")
    _same_dtype(X, "x", DZ, "dz")
    _ndim(X, "x", 2)
    _ndim(W, "w", 2)
    _ndim(DZ, "dz", 2)
    m, k, n = X.shape[0], X.shape[1], W.shape[1]
    if W.shape[0] != k or DZ.shape[0] != m or DZ.shape[1] != n:
        raise ValueError(f"x has shape {_shape(X)}, w {_shape(W)} and dz {_shape(DZ)}; "
                         f"they need (m, k), (k, n) and (m, n)")
    if beta != 0 and ((want_dw and dw is None) or (want_db and db is None)):
        raise ValueError("beta != 0 accumulates into dw and db, so they must be given")
    t = cnp.PyArray_TYPE(X)
    outs = []
    if want_dx:
        DX = _out(dx, "dx", t, (m, k))
        outs.append((DX, "dx"))
        dxp = cnp.PyArray_DATA(DX)
    if want_dw:
        DW = _out(dw, "dw", t, (k, n))
        outs.append((DW, "dw"))
        dwp = cnp.PyArray_DATA(DW)
    if want_db:
        DB = _out(db, "db", t, (n,))
        outs.append((DB, "db"))
        dbp = cnp.PyArray_DATA(DB)
    # Every output apart from every input and from each other: the kernel
    # writes dx before it reads x for dw, so dx=x (same shape) would silently
    # give a wrong dw, and db inside dw would clobber it.
    for i, (O, oname) in enumerate(outs):
        _no_overlap(O, oname, X, "x")
        _no_overlap(O, oname, W, "w")
        _no_overlap(O, oname, DZ, "dz")
        for O2, oname2 in outs[i + 1:]:
            _no_overlap(O2, oname2, O, oname)
    if t == F32:
        with nogil:
            st = nc_sdense_backward(m, k, n, <const float *>cnp.PyArray_DATA(X),
                                    <float *>cnp.PyArray_DATA(W),
                                    <const float *>cnp.PyArray_DATA(DZ),
                                    <float *>dxp, <float *>dwp, <float *>dbp, <float>beta)
    else:
        with nogil:
            st = nc_ddense_backward(m, k, n, <const double *>cnp.PyArray_DATA(X),
                                    <double *>cnp.PyArray_DATA(W),
                                    <const double *>cnp.PyArray_DATA(DZ),
                                    <double *>dxp, <double *>dwp, <double *>dbp, beta)
    _check_status(st)
    return DX, DW, DB


# --------------------------------------------------------------------------
# Activations
# --------------------------------------------------------------------------

def act_forward(int act, double param, x, out=None):
    """f(x) of any shape (the softmaxes along the last axis); out may be x."""
    cdef cnp.ndarray X = _real(x, "x"), Y
    cdef Py_ssize_t rows, cols
    cdef nc_status st
    _check_act(act, param)
    if (act == NC_ACT_SOFTMAX or act == NC_ACT_LOG_SOFTMAX) and cnp.PyArray_NDIM(X) == 0:
        raise ValueError("softmax needs at least one axis; got a 0-d array")
    Y = _out(out, "out", cnp.PyArray_TYPE(X), _shape(X))
    _same_or_apart(Y, "out", X, "x")
    rows, cols = _rows_cols(X)
    if cnp.PyArray_TYPE(X) == F32:
        with nogil:
            st = nc_sact_forward(<nc_act>act, <float>param, rows, cols,
                                 <const float *>cnp.PyArray_DATA(X), <float *>cnp.PyArray_DATA(Y))
    else:
        with nogil:
            st = nc_dact_forward(<nc_act>act, param, rows, cols,
                                 <const double *>cnp.PyArray_DATA(X), <double *>cnp.PyArray_DATA(Y))
    _check_status(st)
    return Y


def act_backward(int act, double param, y, dy, out=None):
    """dx = dy * f'(x), from the forward output y; out may be y or dy."""
    cdef cnp.ndarray Yv = _real(y, "y"), DY = _real(dy, "dy"), DX
    cdef Py_ssize_t rows, cols
    cdef nc_status st
    _check_act(act, param)
    if (act == NC_ACT_SOFTMAX or act == NC_ACT_LOG_SOFTMAX) and cnp.PyArray_NDIM(Yv) == 0:
        raise ValueError("softmax needs at least one axis; got a 0-d array")
    _same_dtype(Yv, "y", DY, "dy")
    if _shape(Yv) != _shape(DY):
        raise ValueError(f"y has shape {_shape(Yv)} but dy has shape {_shape(DY)}")
    DX = _out(out, "out", cnp.PyArray_TYPE(Yv), _shape(Yv))
    _same_or_apart(DX, "out", Yv, "y")
    _same_or_apart(DX, "out", DY, "dy")
    rows, cols = _rows_cols(Yv)
    if cnp.PyArray_TYPE(Yv) == F32:
        with nogil:
            st = nc_sact_backward(<nc_act>act, <float>param, rows, cols,
                                  <const float *>cnp.PyArray_DATA(Yv),
                                  <const float *>cnp.PyArray_DATA(DY),
                                  <float *>cnp.PyArray_DATA(DX))
    else:
        with nogil:
            st = nc_dact_backward(<nc_act>act, param, rows, cols,
                                  <const double *>cnp.PyArray_DATA(Yv),
                                  <const double *>cnp.PyArray_DATA(DY),
                                  <double *>cnp.PyArray_DATA(DX))
    _check_status(st)
    return DX


# --------------------------------------------------------------------------
# Losses and metrics
# --------------------------------------------------------------------------

cdef tuple _pred_layout(cnp.ndarray P):
    """(n samples, k outputs, per-sample shape) of a prediction array."""
    cdef int nd = cnp.PyArray_NDIM(P)
    if nd == 0:
        raise ValueError("y_pred must have at least one axis (samples); got a 0-d array")
    if nd == 1:
        return P.shape[0], 1, _shape(P)
    rows, cols = _rows_cols(P)
    return rows, cols, _shape(P)[:nd - 1]


cdef cnp.ndarray _targets(object y_true, cnp.ndarray P):
    """y_true in y_pred's dtype and shape (targets are data: cast, as Keras does)."""
    cdef cnp.ndarray T = np.asarray(y_true)
    if T.dtype.kind not in "biuf":
        raise TypeError(f"y_true has dtype {T.dtype}; targets must be numbers")
    T = np.ascontiguousarray(T, dtype=P.dtype)
    if not T.flags.aligned:  # ascontiguousarray keeps misaligned memory as it is
        T = T.copy()
    if _shape(T) != _shape(P):
        # (n,) targets against (n, 1) predictions, as Keras accepts
        if cnp.PyArray_NDIM(P) >= 1 and P.shape[cnp.PyArray_NDIM(P) - 1] == 1 and _shape(T) == _shape(P)[:cnp.PyArray_NDIM(P) - 1]:
            T = T.reshape(_shape(P))
        else:
            raise ValueError(f"y_true has shape {_shape(T)} but y_pred has shape {_shape(P)}")
    return T


cdef int _loss_arrays(cnp.ndarray P, bint want_grad, bint want_per_sample, tuple ps_shape,
                      object grad_out, list result) except -1:
    cdef int t = cnp.PyArray_TYPE(P)
    result.append(_out(grad_out, "grad_out", t, _shape(P)) if want_grad else None)
    result.append(_out(None, "per_sample", t, ps_shape) if want_per_sample else None)
    if result[0] is not None:
        _same_or_apart(result[0], "grad_out", P, "y_pred")
    return 0


cdef tuple _apart(cnp.ndarray G, cnp.ndarray P, cnp.ndarray T):
    """(array for the kernel to write, destination or None) for a gradient output
    that may be y_pred or y_true exactly. The loss kernels do not promise that
    grad may alias their inputs (the fused softmax cross-entropy keeps exp(z) in
    grad while it still reads z), so an in-place gradient is computed apart and
    copied in."""
    if cnp.PyArray_DATA(G) == cnp.PyArray_DATA(P) or (
            T is not None and cnp.PyArray_DATA(G) == cnp.PyArray_DATA(T)):
        return np.empty_like(G), G
    return G, None


cdef cnp.ndarray _copy_back(cnp.ndarray G, cnp.ndarray G_dst):
    if G is None or G_dst is None:
        return G
    np.copyto(G_dst, G)
    return G_dst


def loss(int kind, int reduction, y_true, y_pred, bint want_grad=False,
         bint want_per_sample=False, grad_out=None):
    """(total, per_sample or None, grad or None) of a loss over a batch."""
    cdef cnp.ndarray P = _real(y_pred, "y_pred"), T, G, S, G_dst = None
    cdef Py_ssize_t n, k
    cdef double total = 0
    cdef void *gp = NULL
    cdef void *sp = NULL
    cdef nc_status st
    cdef list arrs = []
    if kind < 0 or kind >= NC_LOSS_COUNT_:
        raise ValueError(f"unknown loss code {kind}")
    if reduction < 0 or reduction > NC_REDUCE_NONE:
        raise ValueError(f"unknown reduction code {reduction}")
    n, k, ps_shape = _pred_layout(P)
    if n == 0 or k == 0:
        raise ValueError(f"y_pred has shape {_shape(P)}: no samples or no outputs to score")
    T = _targets(y_true, P)
    _loss_arrays(P, want_grad, want_per_sample, ps_shape, grad_out, arrs)
    G, S = arrs
    if G is not None:
        _same_or_apart(G, "grad_out", T, "y_true")
        G, G_dst = _apart(G, P, T)
        gp = cnp.PyArray_DATA(G)
    if S is not None:
        sp = cnp.PyArray_DATA(S)
    if cnp.PyArray_TYPE(P) == F32:
        with nogil:
            st = nc_sloss(<nc_loss>kind, <nc_reduction>reduction, n, k,
                          <const float *>cnp.PyArray_DATA(T), <const float *>cnp.PyArray_DATA(P),
                          &total, <float *>sp, <float *>gp)
    else:
        with nogil:
            st = nc_dloss(<nc_loss>kind, <nc_reduction>reduction, n, k,
                          <const double *>cnp.PyArray_DATA(T), <const double *>cnp.PyArray_DATA(P),
                          &total, <double *>sp, <double *>gp)
    _check_status(st)
    return total, S, _copy_back(G, G_dst)


def loss_sparse(int kind, int reduction, labels, y_pred, bint want_grad=False,
                bint want_per_sample=False, grad_out=None):
    """Categorical cross-entropy against integer labels: (total, per_sample, grad)."""
    cdef cnp.ndarray P = _real(y_pred, "y_pred"), L, G, S, G_dst = None
    cdef Py_ssize_t n, k
    cdef double total = 0
    cdef void *gp = NULL
    cdef void *sp = NULL
    cdef nc_status st
    cdef list arrs = []
    if kind != NC_LOSS_CCE and kind != NC_LOSS_CCE_LOGITS:
        raise ValueError(f"sparse labels go with categorical cross-entropy, not loss code {kind}")
    if reduction < 0 or reduction > NC_REDUCE_NONE:
        raise ValueError(f"unknown reduction code {reduction}")
    if cnp.PyArray_NDIM(P) < 2:
        raise ValueError(f"y_pred has shape {_shape(P)}; it needs (samples, classes)")
    n, k, ps_shape = _pred_layout(P)
    if n == 0 or k == 0:
        raise ValueError(f"y_pred has shape {_shape(P)}: no samples or no classes to score")
    L = _labels(labels, n, k, "y_true")
    _loss_arrays(P, want_grad, want_per_sample, ps_shape, grad_out, arrs)
    G, S = arrs
    if G is not None:
        G, G_dst = _apart(G, P, None)
        gp = cnp.PyArray_DATA(G)
    if S is not None:
        sp = cnp.PyArray_DATA(S)
    if cnp.PyArray_TYPE(P) == F32:
        with nogil:
            st = nc_sloss_sparse(<nc_loss>kind, <nc_reduction>reduction, n, k,
                                 <const int64_t *>cnp.PyArray_DATA(L),
                                 <const float *>cnp.PyArray_DATA(P), &total, <float *>sp, <float *>gp)
    else:
        with nogil:
            st = nc_dloss_sparse(<nc_loss>kind, <nc_reduction>reduction, n, k,
                                 <const int64_t *>cnp.PyArray_DATA(L),
                                 <const double *>cnp.PyArray_DATA(P), &total, <double *>sp,
                                 <double *>gp)
    _check_status(st)
    return total, S, _copy_back(G, G_dst)


def accuracy_argmax(y_true, y_pred):
    """Fraction of rows whose argmax of y_pred equals that of y_true (one-hot)."""
    cdef cnp.ndarray P = _real(y_pred, "y_pred"), T
    cdef Py_ssize_t n, k
    cdef size_t correct = 0
    n, k, _ = _pred_layout(P)
    if n == 0 or k == 0:
        raise ValueError(f"y_pred has shape {_shape(P)}: nothing to score")
    T = _targets(y_true, P)
    if cnp.PyArray_TYPE(P) == F32:
        with nogil:
            nc_saccuracy_argmax(n, k, <const float *>cnp.PyArray_DATA(T),
                                <const float *>cnp.PyArray_DATA(P), &correct)
    else:
        with nogil:
            nc_daccuracy_argmax(n, k, <const double *>cnp.PyArray_DATA(T),
                                <const double *>cnp.PyArray_DATA(P), &correct)
    return correct / <double>n


def accuracy_sparse(labels, y_pred):
    """Fraction of rows whose argmax of y_pred equals the integer label."""
    cdef cnp.ndarray P = _real(y_pred, "y_pred"), L
    cdef Py_ssize_t n, k
    cdef size_t correct = 0
    if cnp.PyArray_NDIM(P) < 2:
        raise ValueError(f"y_pred has shape {_shape(P)}; it needs (samples, classes)")
    n, k, _ = _pred_layout(P)
    if n == 0 or k == 0:
        raise ValueError(f"y_pred has shape {_shape(P)}: nothing to score")
    L = _labels(labels, n, k, "y_true")
    if cnp.PyArray_TYPE(P) == F32:
        with nogil:
            nc_saccuracy_sparse(n, k, <const int64_t *>cnp.PyArray_DATA(L),
                                <const float *>cnp.PyArray_DATA(P), &correct)
    else:
        with nogil:
            nc_daccuracy_sparse(n, k, <const int64_t *>cnp.PyArray_DATA(L),
                                <const double *>cnp.PyArray_DATA(P), &correct)
    return correct / <double>n


def accuracy_threshold(y_true, y_pred, double threshold=0.5):
    """Fraction of elements where (y_pred > threshold) equals (y_true > 0.5)."""
    cdef cnp.ndarray P = _real(y_pred, "y_pred"), T
    cdef Py_ssize_t count = cnp.PyArray_SIZE(P)
    cdef size_t correct = 0
    if count == 0:
        raise ValueError(f"y_pred has shape {_shape(P)}: nothing to score")
    T = _targets(y_true, P)
    if cnp.PyArray_TYPE(P) == F32:
        with nogil:
            nc_saccuracy_threshold(count, <const float *>cnp.PyArray_DATA(T),
                                   <const float *>cnp.PyArray_DATA(P), <float>threshold, &correct)
    else:
        with nogil:
            nc_daccuracy_threshold(count, <const double *>cnp.PyArray_DATA(T),
                                   <const double *>cnp.PyArray_DATA(P), threshold, &correct)
    return correct / <double>count


# ==========================================================================
# Optimizers and random numbers (csrc/optim.c, csrc/rng.c)
# ==========================================================================

from libc.math cimport isfinite
from libc.stdint cimport uint32_t, uint64_t

OPTIMIZERS = {
    "sgd": NC_OPTIM_SGD, "adagrad": NC_OPTIM_ADAGRAD, "adadelta": NC_OPTIM_ADADELTA,
    "rmsprop": NC_OPTIM_RMSPROP, "adam": NC_OPTIM_ADAM, "adamw": NC_OPTIM_ADAMW,
    "nadam": NC_OPTIM_NADAM,
}

# (name, lowest, highest, whether the highest is allowed) per real hyper-parameter
_OPTIM_RANGES = (
    ("learning_rate", 0.0, float("inf"), False),
    ("momentum", 0.0, 1.0, False),
    ("rho", 0.0, 1.0, False),
    ("beta_1", 0.0, 1.0, False),
    ("beta_2", 0.0, 1.0, False),
    ("epsilon", 0.0, float("inf"), False),
    ("weight_decay", 0.0, float("inf"), False),
    ("initial_accumulator_value", 0.0, float("inf"), False),
    ("momentum_decay", 0.0, float("inf"), False),
    ("clipnorm", 0.0, float("inf"), False),
    ("clipvalue", 0.0, float("inf"), False),
)


cdef int _optim_config(str kind, dict hp, nc_optim_config *cfg) except -1:
    """Fills cfg from a kind name and hyper-parameters, checking every value."""
    cdef double v
    if kind not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {kind!r}; the optimizers are "
                         f"{', '.join(sorted(OPTIMIZERS))}")
    nc_optim_config_default(cfg, <nc_optim_kind><int>OPTIMIZERS[kind])
    known = {r[0] for r in _OPTIM_RANGES} | {"nesterov", "amsgrad", "centered"}
    for key in hp:
        if key not in known:
            raise ValueError(f"unknown optimizer hyper-parameter {key!r}")
    for name, lo, hi, _ in _OPTIM_RANGES:
        if name not in hp:
            continue
        value = hp[name]
        if value is None and name in ("clipnorm", "clipvalue"):
            value = 0.0
        try:
            v = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be a number, got {value!r}") from None
        if not isfinite(v) or v < lo or v >= hi:
            raise ValueError(f"{name} must be a finite number in [{lo:g}, {hi:g}), got {value!r}")
        if name == "learning_rate": cfg.learning_rate = v
        elif name == "momentum": cfg.momentum = v
        elif name == "rho": cfg.rho = v
        elif name == "beta_1": cfg.beta_1 = v
        elif name == "beta_2": cfg.beta_2 = v
        elif name == "epsilon": cfg.epsilon = v
        elif name == "weight_decay": cfg.weight_decay = v
        elif name == "initial_accumulator_value": cfg.initial_accumulator_value = v
        elif name == "momentum_decay": cfg.momentum_decay = v
        elif name == "clipnorm": cfg.clipnorm = v
        elif name == "clipvalue": cfg.clipvalue = v
    cfg.nesterov = bool(hp.get("nesterov", False))
    cfg.amsgrad = bool(hp.get("amsgrad", False))
    cfg.centered = bool(hp.get("centered", False))
    if cfg.nesterov and not cfg.momentum > 0:
        raise ValueError("nesterov=True needs momentum > 0")
    if cfg.kind == NC_OPTIM_ADADELTA and not cfg.epsilon > 0:
        raise ValueError("adadelta needs epsilon > 0 (its first step divides sqrt(0 + epsilon))")
    return 0


cdef cnp.ndarray _inplace(object x, str name):
    """x as a float array the engine may update in place (no copy is possible)."""
    cdef cnp.ndarray arr
    if not cnp.PyArray_Check(x):
        raise TypeError(f"{name} must be a numpy.ndarray, not {type(x).__name__}")
    arr = <cnp.ndarray>x
    if cnp.PyArray_TYPE(arr) != F32 and cnp.PyArray_TYPE(arr) != F64:
        raise TypeError(f"{name} has dtype {arr.dtype}; nncore computes in float32 or float64")
    if not (cnp.PyArray_IS_C_CONTIGUOUS(arr) and cnp.PyArray_ISBEHAVED(arr)):
        raise ValueError(f"{name} must be C-contiguous, aligned, native-order and writeable "
                         f"(it is updated in place)")
    return arr


cdef cnp.ndarray _contig_ro(object x, str name):
    """x as a float array the engine reads, without a silent copy."""
    cdef cnp.ndarray arr
    if not cnp.PyArray_Check(x):
        raise TypeError(f"{name} must be a numpy.ndarray, not {type(x).__name__}")
    arr = <cnp.ndarray>x
    if cnp.PyArray_TYPE(arr) != F32 and cnp.PyArray_TYPE(arr) != F64:
        raise TypeError(f"{name} has dtype {arr.dtype}; nncore computes in float32 or float64")
    if not (cnp.PyArray_IS_C_CONTIGUOUS(arr) and cnp.PyArray_ISBEHAVED_RO(arr)):
        raise ValueError(f"{name} must be C-contiguous, aligned and native-order")
    return arr


def optim_state_slots(str kind, dict hp):
    """How many parameter-sized slots the optimizer's state holds."""
    cdef nc_optim_config cfg
    _optim_config(kind, hp, &cfg)
    return nc_optim_state_slots(&cfg)


def optim_state_size(str kind, dict hp, Py_ssize_t n):
    """Elements of the flat state for n parameters (slots * n + trailing scalars)."""
    cdef nc_optim_config cfg
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    _optim_config(kind, hp, &cfg)
    return nc_optim_state_size(&cfg, n)


def optim_state_init(str kind, dict hp, Py_ssize_t n, dtype):
    """A fresh flat state for n parameters of dtype (float32 or float64)."""
    cdef nc_optim_config cfg
    cdef cnp.ndarray S
    dt = np.dtype(dtype)
    if dt != np.float32 and dt != np.float64:
        raise TypeError(f"dtype {dt}: nncore computes in float32 or float64")
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    _optim_config(kind, hp, &cfg)
    S = np.empty(nc_optim_state_size(&cfg, n), dtype=dt)
    if dt == np.float32:
        nc_soptim_state_init(&cfg, n, <float *>cnp.PyArray_DATA(S))
    else:
        nc_doptim_state_init(&cfg, n, <double *>cnp.PyArray_DATA(S))
    return S


def optim_step(str kind, dict hp, params, grads, state, int64_t step):
    """One optimizer step, in place on params and state; grads are only read.

    params, grads: the flat (or any-shaped, contiguous) parameter and gradient
    buffers, same dtype and size; state: the 1-D flat state from
    optim_state_init; step: this step's 1-based number.
    """
    cdef nc_optim_config cfg
    cdef cnp.ndarray P = _inplace(params, "params"), G = _contig_ro(grads, "grads")
    cdef cnp.ndarray S = _inplace(state, "state")
    cdef Py_ssize_t n = cnp.PyArray_SIZE(P)
    cdef size_t need
    cdef nc_status st
    _optim_config(kind, hp, &cfg)
    _same_dtype(P, "params", G, "grads")
    _same_dtype(P, "params", S, "state")
    if cnp.PyArray_SIZE(G) != n:
        raise ValueError(f"grads has {cnp.PyArray_SIZE(G)} elements but params has {n}")
    need = nc_optim_state_size(&cfg, n)
    if cnp.PyArray_NDIM(S) != 1 or <size_t>cnp.PyArray_SIZE(S) != need:
        raise ValueError(f"state has shape {_shape(S)}; {kind} with these options needs "
                         f"({need},) for {n} parameters")
    if step < 1:
        raise ValueError(f"step is 1-based, got {step}")
    _no_overlap(P, "params", G, "grads")
    _no_overlap(S, "state", P, "params")
    _no_overlap(S, "state", G, "grads")
    if cnp.PyArray_TYPE(P) == F32:
        with nogil:
            st = nc_soptim_step(&cfg, n, <float *>cnp.PyArray_DATA(P),
                                <const float *>cnp.PyArray_DATA(G),
                                <float *>cnp.PyArray_DATA(S), step)
    else:
        with nogil:
            st = nc_doptim_step(&cfg, n, <double *>cnp.PyArray_DATA(P),
                                <const double *>cnp.PyArray_DATA(G),
                                <double *>cnp.PyArray_DATA(S), step)
    _check_status(st)


def sum_squares(x):
    """Sum of squares of every element, in double, in a fixed order."""
    cdef cnp.ndarray X = _real(x, "x")
    cdef double r
    cdef Py_ssize_t n = cnp.PyArray_SIZE(X)
    if cnp.PyArray_TYPE(X) == F32:
        with nogil:
            r = nc_ssum_squares(n, <const float *>cnp.PyArray_DATA(X))
    else:
        with nogil:
            r = nc_dsum_squares(n, <const double *>cnp.PyArray_DATA(X))
    return r


cdef uint64_t _u64(object v, str name) except? 0:
    try:
        iv = int(v)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be an integer, got {v!r}") from None
    if iv != v or not 0 <= iv < 2 ** 64:
        raise ValueError(f"{name} must be an integer in [0, 2**64), got {v!r}")
    return <uint64_t>iv


def philox4x32_10(ctr, key):
    """One Philox-4x32-10 block: 4 counter words, 2 key words -> 4 words."""
    cdef uint32_t c[4]
    cdef uint32_t k[2]
    cdef uint32_t o[4]
    cdef int i
    if len(ctr) != 4 or len(key) != 2:
        raise ValueError("philox4x32_10 takes 4 counter words and 2 key words")
    for i in range(4):
        if not 0 <= ctr[i] < 2 ** 32:
            raise ValueError(f"counter word {ctr[i]!r} is not a 32-bit unsigned integer")
        c[i] = ctr[i]
    for i in range(2):
        if not 0 <= key[i] < 2 ** 32:
            raise ValueError(f"key word {key[i]!r} is not a 32-bit unsigned integer")
        k[i] = key[i]
    nc_philox4x32_10(c, k, o)
    return (o[0], o[1], o[2], o[3])


cdef tuple _rng_prep(object shape, object dtype, object out, object seed, object stream,
                     object offset, list arr_out):
    dt = np.dtype(dtype)
    if dt != np.float32 and dt != np.float64:
        raise TypeError(f"dtype {dt}: nncore draws float32 or float64")
    if isinstance(shape, (int, np.integer)):
        shape = (int(shape),)
    shape = tuple(int(s) for s in shape)
    if any(s < 0 for s in shape):
        raise ValueError(f"shape {shape} has a negative size")
    arr_out.append(_out(out, "out", F32 if dt == np.float32 else F64, shape))
    return (_u64(seed, "seed"), _u64(stream, "stream"), _u64(offset, "offset"))


def rand_uniform(seed, stream, shape, double low=0.0, double high=1.0, dtype=np.float32,
                 offset=0, out=None):
    """Uniform draws in [low, high): element i is draw offset + i of (seed, stream)."""
    cdef list a = []
    cdef uint64_t s, t, o
    cdef cnp.ndarray X
    cdef Py_ssize_t n
    cdef nc_status st
    if not (isfinite(low) and isfinite(high) and low <= high):
        raise ValueError(f"uniform needs finite low <= high, got [{low}, {high})")
    s, t, o = _rng_prep(shape, dtype, out, seed, stream, offset, a)
    X = a[0]
    n = cnp.PyArray_SIZE(X)
    if cnp.PyArray_TYPE(X) == F32:
        if not (isfinite(<float>low) and isfinite(<float>high)):
            raise ValueError(f"[{low}, {high}) overflows float32")
        with nogil:
            st = nc_srand_uniform(s, t, o, n, <float>low, <float>high, <float *>cnp.PyArray_DATA(X))
    else:
        with nogil:
            st = nc_drand_uniform(s, t, o, n, low, high, <double *>cnp.PyArray_DATA(X))
    if st != NC_OK:
        raise ValueError(f"offset {o} + {n} draws passes 2**64")
    return X


def rand_normal(seed, stream, shape, double mean=0.0, double stddev=1.0, dtype=np.float32,
                bint truncated=False, offset=0, out=None):
    """Normal(mean, stddev) draws (Box-Muller), or truncated to 2 stddev (inversion)."""
    cdef list a = []
    cdef uint64_t s, t, o
    cdef cnp.ndarray X
    cdef Py_ssize_t n
    cdef nc_status st
    cdef bint f32
    if not (isfinite(mean) and isfinite(stddev) and stddev >= 0):
        raise ValueError(f"normal needs a finite mean and stddev >= 0, got {mean}, {stddev}")
    s, t, o = _rng_prep(shape, dtype, out, seed, stream, offset, a)
    X = a[0]
    n = cnp.PyArray_SIZE(X)
    f32 = cnp.PyArray_TYPE(X) == F32
    with nogil:
        if f32 and truncated:
            st = nc_srand_truncated_normal(s, t, o, n, <float>mean, <float>stddev,
                                           <float *>cnp.PyArray_DATA(X))
        elif f32:
            st = nc_srand_normal(s, t, o, n, <float>mean, <float>stddev,
                                 <float *>cnp.PyArray_DATA(X))
        elif truncated:
            st = nc_drand_truncated_normal(s, t, o, n, mean, stddev,
                                           <double *>cnp.PyArray_DATA(X))
        else:
            st = nc_drand_normal(s, t, o, n, mean, stddev, <double *>cnp.PyArray_DATA(X))
    if st != NC_OK:
        raise ValueError(f"offset {o} + {n} draws passes 2**64")
    return X


def dropout_mask(seed, stream, shape, double keep, dtype=np.float32, offset=0, out=None):
    """Inverted-dropout mask: 1/keep where kept (probability keep), else 0."""
    cdef list a = []
    cdef uint64_t s, t, o
    cdef cnp.ndarray X
    cdef Py_ssize_t n
    cdef nc_status st
    if not (keep > 0 and keep <= 1):
        raise ValueError(f"the keep probability must be in (0, 1], got {keep}")
    s, t, o = _rng_prep(shape, dtype, out, seed, stream, offset, a)
    X = a[0]
    n = cnp.PyArray_SIZE(X)
    if cnp.PyArray_TYPE(X) == F32:
        with nogil:
            st = nc_sdropout_mask(s, t, o, n, <float>keep, <float *>cnp.PyArray_DATA(X))
    else:
        with nogil:
            st = nc_ddropout_mask(s, t, o, n, keep, <double *>cnp.PyArray_DATA(X))
    if st != NC_OK:
        raise ValueError(f"offset {o} + {n} draws passes 2**64 (or keep {keep} out of range)")
    return X


def permutation(seed, stream, Py_ssize_t n):
    """A random permutation of 0 .. n-1 (int64), a pure function of (seed, stream, n)."""
    cdef uint64_t s = _u64(seed, "seed"), t = _u64(stream, "stream")
    cdef cnp.ndarray P
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    P = np.empty(n, dtype=np.int64)
    with nogil:
        nc_rand_permutation(s, t, n, <int64_t *>cnp.PyArray_DATA(P))
    return P


# --------------------------------------------------------------------------
# Inference plans: a stack of dense and activation steps in one engine call
# --------------------------------------------------------------------------

from cpython.mem cimport PyMem_Malloc, PyMem_Free

# Work for this many elements lives on the C stack of the call, so small
# predictions allocate nothing and concurrent calls share no scratch.
DEF PLAN_STACK_WORK = 4096


cdef class Plan:
    """A model's layers compiled into one engine call, for low-latency inference.

    ``steps`` is a list of ``("dense", w, b, activation_code, param)`` and
    ``("activation", width, activation_code, param)`` tuples; the arrays are
    kept alive (and must not be reallocated) for the plan's life. ``run`` is
    safe to call from several threads at once: it keeps no shared scratch.
    """
    cdef nc_plan_step_f32 *steps32
    cdef nc_plan_step_f64 *steps64
    cdef size_t n_steps, widest
    cdef readonly Py_ssize_t n_in, n_out
    cdef int typenum
    cdef list keep

    def __cinit__(self, list steps, dtype):
        self.steps32 = NULL
        self.steps64 = NULL

    def __init__(self, list steps, dtype):
        cdef size_t i
        cdef Py_ssize_t width, n_in, n_out
        cdef cnp.ndarray W, B
        if not steps:
            raise ValueError("a plan needs at least one step")
        self.typenum = F32 if np.dtype(dtype) == np.float32 else F64
        if np.dtype(dtype) not in (np.float32, np.float64):
            raise TypeError(f"a plan computes in float32 or float64, not {dtype}")
        self.n_steps = len(steps)
        self.keep = []
        if self.typenum == F32:
            self.steps32 = <nc_plan_step_f32 *>PyMem_Malloc(self.n_steps * sizeof(nc_plan_step_f32))
            if self.steps32 == NULL:
                raise MemoryError()
        else:
            self.steps64 = <nc_plan_step_f64 *>PyMem_Malloc(self.n_steps * sizeof(nc_plan_step_f64))
            if self.steps64 == NULL:
                raise MemoryError()
        width = -1
        self.widest = 0
        for i, step in enumerate(steps):
            if step[0] == "dense":
                _, w, b, act, param = step
                W = _real(w, "w")
                if cnp.PyArray_TYPE(W) != self.typenum or W is not w:
                    raise TypeError("plan weights must be contiguous arrays of the plan's dtype")
                _ndim(W, "w", 2)
                n_in, n_out = W.shape[0], W.shape[1]
                B = None
                if b is not None:
                    B = _real(b, "b")
                    if B is not b or cnp.PyArray_TYPE(B) != self.typenum or _shape(B) != (n_out,):
                        raise TypeError("plan biases must be contiguous (n_out,) arrays")
                    self.keep.append(B)
                self.keep.append(W)
                op = NC_PLAN_DENSE
            elif step[0] == "activation":
                _, n_in, act, param = step
                n_out = n_in
                W = B = None
                op = NC_PLAN_ACTIVATION
            else:
                raise ValueError(f"unknown plan step {step[0]!r}")
            _check_act(act, param)
            if width >= 0 and n_in != width:
                raise ValueError(f"plan step {i} takes {n_in} inputs but gets {width}")
            if i == 0:
                self.n_in = n_in
            width = n_out
            self.widest = max(self.widest, <size_t>n_out)
            if self.typenum == F32:
                self.steps32[i].op = op
                self.steps32[i].n_in = n_in
                self.steps32[i].n_out = n_out
                self.steps32[i].w = NULL if W is None else <float *>cnp.PyArray_DATA(W)
                self.steps32[i].b = NULL if B is None else <float *>cnp.PyArray_DATA(B)
                self.steps32[i].act = <nc_act>act
                self.steps32[i].param = <float>param
            else:
                self.steps64[i].op = op
                self.steps64[i].n_in = n_in
                self.steps64[i].n_out = n_out
                self.steps64[i].w = NULL if W is None else <double *>cnp.PyArray_DATA(W)
                self.steps64[i].b = NULL if B is None else <double *>cnp.PyArray_DATA(B)
                self.steps64[i].act = <nc_act>act
                self.steps64[i].param = param
        self.n_out = width

    def __dealloc__(self):
        PyMem_Free(self.steps32)
        PyMem_Free(self.steps64)

    def run(self, x, out=None):
        """Outputs for x: one sample (n_in,) gives (n_out,); a batch (m, n_in) gives (m, n_out)."""
        cdef cnp.ndarray X, Y, heap_work = None
        cdef int nd
        cdef Py_ssize_t m
        cdef size_t need
        cdef nc_status st
        cdef double stack_work[PLAN_STACK_WORK]
        cdef void *work
        if (cnp.PyArray_Check(x) and cnp.PyArray_TYPE(<cnp.ndarray>x) == self.typenum
                and cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray>x)
                and cnp.PyArray_ISBEHAVED_RO(<cnp.ndarray>x)):
            X = <cnp.ndarray>x
        else:
            X = _real(x, "x")
            if cnp.PyArray_TYPE(X) != self.typenum:
                X = X.astype(np.float32 if self.typenum == F32 else np.float64)
        nd = cnp.PyArray_NDIM(X)
        if nd == 1 and X.shape[0] == self.n_in:
            m = 1
            Y = _out(out, "out", self.typenum, (self.n_out,))
        elif nd == 2 and X.shape[1] == self.n_in:
            m = X.shape[0]
            Y = _out(out, "out", self.typenum, (m, self.n_out))
        else:
            raise ValueError(f"x has shape {_shape(X)}; the model takes ({self.n_in},) "
                             f"or (batch, {self.n_in})")
        _no_overlap(Y, "out", X, "x")
        if m == 0:
            return Y
        need = 2 * <size_t>m * self.widest
        if need <= PLAN_STACK_WORK:  # (double-sized slots: enough for either dtype)
            work = <void *>stack_work
        else:
            heap_work = np.empty(need, np.float32 if self.typenum == F32 else np.float64)
            work = cnp.PyArray_DATA(heap_work)
        if self.typenum == F32:
            with nogil:
                st = nc_splan_forward(self.n_steps, self.steps32, m,
                                      <const float *>cnp.PyArray_DATA(X), <float *>work,
                                      <float *>cnp.PyArray_DATA(Y))
        else:
            with nogil:
                st = nc_dplan_forward(self.n_steps, self.steps64, m,
                                      <const double *>cnp.PyArray_DATA(X), <double *>work,
                                      <double *>cnp.PyArray_DATA(Y))
        _check_status(st)
        return Y


# ==========================================================================
# Threads: private test hooks and the NNCORE_NUM_THREADS check
# (helper branch `threads`; owns everything from here to the end of the file)
# ==========================================================================

cdef extern from *:
    """
    #include "internal.h"
    #include <time.h>
    /* 32-bit counters the tasks bump atomically, so a task run twice at
     * once is still counted twice. */
    #if defined(_MSC_VER) && !defined(__clang__)
    #include <intrin.h>
    typedef long nc_t_int;
    #define NC_T_ADD(p, v) _InterlockedExchangeAdd((volatile long *)(p), (v))
    #define NC_T_LOAD(p) _InterlockedCompareExchange((volatile long *)(p), 0, 0)
    #else
    typedef int nc_t_int;
    #define NC_T_ADD(p, v) __atomic_fetch_add((p), (v), __ATOMIC_SEQ_CST)
    #define NC_T_LOAD(p) __atomic_load_n((p), __ATOMIC_SEQ_CST)
    #endif

    typedef struct { nc_t_int *count; nc_t_int *thread_of; long long work; } nc_t_once_ctx;

    static void nc_t_once_task(void *p, size_t task, int thread)
    {
        nc_t_once_ctx *c = (nc_t_once_ctx *)p;
        volatile long long i, x = 0;
        for (i = 0; i < c->work; i++) x += i; /* so that tasks overlap */
        NC_T_ADD(&c->count[task], 1);
        c->thread_of[task] = thread;
    }

    static void nc_t_once(size_t n, void *count, void *thread_of, long long work,
                          int max_threads)
    {
        nc_t_once_ctx c;
        c.count = (nc_t_int *)count;
        c.thread_of = (nc_t_int *)thread_of;
        c.work = work;
        if (max_threads > 0) nc_parallel_for_max(n, max_threads, nc_t_once_task, &c);
        else nc_parallel_for(n, nc_t_once_task, &c);
    }

    typedef struct { nc_t_int arrived, met; clock_t patience; } nc_t_meet_ctx;

    /* The first of two tasks waits for the second to start: it only sees it
     * if two threads run them at once. */
    static void nc_t_meet_task(void *p, size_t task, int thread)
    {
        nc_t_meet_ctx *c = (nc_t_meet_ctx *)p;
        clock_t start = clock();
        (void)task; (void)thread;
        if (NC_T_ADD(&c->arrived, 1) != 0) return;
        while (clock() - start < c->patience)
            if (NC_T_LOAD(&c->arrived) >= 2) { c->met = 1; return; }
    }

    static int nc_t_overlap(double seconds)
    {
        nc_t_meet_ctx c;
        c.arrived = 0;
        c.met = 0;
        c.patience = (clock_t)(seconds * CLOCKS_PER_SEC);
        nc_parallel_for(2, nc_t_meet_task, &c);
        return c.met;
    }
    """
    void nc_t_once(size_t n, void *count, void *thread_of, long long work,
                   int max_threads) nogil
    int nc_t_overlap(double seconds) nogil


def _parallel_sum_test(Py_ssize_t n_tasks, long long work=0, int max_threads=0):
    """Test hook: runs n_tasks tasks through the engine's nc_parallel_for
    (nc_parallel_for_max when max_threads > 0).

    Returns (count, thread): how many times each task ran and on which thread
    index. ``work`` is busy-work per task, so tasks overlap.
    """
    if n_tasks < 0:
        raise ValueError("n_tasks must be >= 0")
    cdef cnp.ndarray count = np.zeros(n_tasks, np.int32)
    cdef cnp.ndarray thread = np.full(n_tasks, -1, np.int32)
    cdef void *pc = cnp.PyArray_DATA(count)
    cdef void *pt = cnp.PyArray_DATA(thread)
    with nogil:
        nc_t_once(<size_t>n_tasks, pc, pt, work, max_threads)
    return count, thread


def _parallel_overlap_test(double seconds=2.0):
    """Test hook: whether two tasks of one nc_parallel_for ran at the same time
    (the first to start waits up to ``seconds`` of CPU time for the second)."""
    cdef int met
    with nogil:
        met = nc_t_overlap(seconds)
    return bool(met)


def _check_num_threads_env():
    import os
    import re
    import warnings
    nc_get_num_threads()  # the default is fixed now: NNCORE_NUM_THREADS or the CPUs at import
    want = os.environ.get("NNCORE_NUM_THREADS", "")
    if want.strip():
        # What csrc/threads.c accepts; anything else it ignores.
        ok = (re.fullmatch(r"[ \t\n]*\+?[0-9]+[ \t\n]*", want) is not None
              and 1 <= int(want) <= 2**31 - 1)
        if not ok:
            warnings.warn(f"NNCORE_NUM_THREADS={want!r} is not a whole number >= 1; "
                          f"using {nc_get_num_threads()} threads (the CPUs this process "
                          f"may use)", RuntimeWarning, stacklevel=2)


_check_num_threads_env()


# --------------------------------------------------------------------------
# vmath: private hook for tests and benchmarks (csrc/vmath.h)
# --------------------------------------------------------------------------

ctypedef void (*_vmath_fn)(size_t, const float *, float *) noexcept nogil

VMATH_FUNCTIONS = ("exp", "expm1", "log", "tanh", "sigmoid", "softplus")


def vmath(name, x, out=None):
    """The engine's float32 array function `name` (one of VMATH_FUNCTIONS) of x,
    at the kernel level in force; out may be x. Private: for tests and benchmarks."""
    cdef _vmath_fn fn
    cdef cnp.ndarray X, Y
    cdef size_t n
    if name == "exp":
        fn = nc_vexp_f32
    elif name == "expm1":
        fn = nc_vexpm1_f32
    elif name == "log":
        fn = nc_vlog_f32
    elif name == "tanh":
        fn = nc_vtanh_f32
    elif name == "sigmoid":
        fn = nc_vsigmoid_f32
    elif name == "softplus":
        fn = nc_vsoftplus_f32
    else:
        raise ValueError(f"unknown vmath function {name!r}; choose one of "
                         f"{', '.join(VMATH_FUNCTIONS)}")
    X = _real(x, "x")
    if cnp.PyArray_TYPE(X) != F32:
        raise TypeError(f"x has dtype {X.dtype}; vmath takes float32")
    Y = _out(out, "out", F32, _shape(X))
    _same_or_apart(Y, "out", X, "x")
    n = cnp.PyArray_SIZE(X)
    with nogil:
        fn(n, <const float *>cnp.PyArray_DATA(X), <float *>cnp.PyArray_DATA(Y))
    return Y


# --------------------------------------------------------------------------
# Restricted Boltzmann machines (csrc/rbm_impl.h)
# --------------------------------------------------------------------------

RBM_VISIBLE = {"bernoulli": NC_RBM_BERNOULLI, "gaussian": NC_RBM_GAUSSIAN}
RBM_MAX_K = NC_RBM_MAX_K


def rbm_work_size(Py_ssize_t m, Py_ssize_t n_visible, Py_ssize_t n_hidden):
    """Elements of work rbm_update needs for a batch of m samples."""
    if m < 0 or n_visible < 0 or n_hidden < 0:
        raise ValueError("sizes must be >= 0")
    return nc_rbm_work_size(m, n_visible, n_hidden)


cdef int _rbm_params(cnp.ndarray W, cnp.ndarray Bv, cnp.ndarray Bh, int t) except -1:
    """W (nv, nh), bv (nv,), bh (nh,), all of dtype t."""
    _ndim(W, "w", 2)
    if cnp.PyArray_TYPE(Bv) != t or cnp.PyArray_TYPE(Bh) != t:
        raise TypeError(f"w is {W.dtype} but bv is {Bv.dtype} and bh is {Bh.dtype}; "
                        f"pass them in one dtype")
    if _shape(Bv) != (W.shape[0],) or _shape(Bh) != (W.shape[1],):
        raise ValueError(f"w has shape {_shape(W)}, so bv needs ({W.shape[0]},) and bh "
                         f"({W.shape[1]},); got {_shape(Bv)} and {_shape(Bh)}")
    return 0


cdef cnp.ndarray _rbm_buf(object x, str name, int t, tuple shape):
    """An in-place buffer of dtype t and exactly this shape."""
    cdef cnp.ndarray arr = _inplace(x, name)
    if cnp.PyArray_TYPE(arr) != t:
        raise TypeError(f"{name} has dtype {arr.dtype}; the parameters are "
                        f"{np.dtype(np.float32 if t == F32 else np.float64)}")
    if _shape(arr) != shape:
        raise ValueError(f"{name} has shape {_shape(arr)}; it needs {shape}")
    return arr


cdef int _rbm_visible_code(object visible) except -1:
    if visible not in RBM_VISIBLE:
        raise ValueError(f"unknown visible unit type {visible!r}; "
                         f"use one of {', '.join(RBM_VISIBLE)}")
    return RBM_VISIBLE[visible]


def rbm_update(v0, w, bv, bh, work, step, seed, *, visible="bernoulli", int cd_k=1,
               bint persistent=False, double learning_rate=0.1, double momentum=0.0,
               double weight_decay=0.0, vel_w=None, vel_bv=None, vel_bh=None, chain=None,
               bint want_recon=True):
    """One CD-k (or PCD-k) update of w (nv, nh), bv, bh in place on the batch v0 (m, nv).

    work: 1-D, at least rbm_work_size(m, nv, nh) elements; chain (m, nh) for
    persistent; vel_* (the parameters' shapes) when momentum > 0. Returns the
    batch's summed squared reconstruction error (None unless want_recon).
    """
    cdef cnp.ndarray V = _real(v0, "v0"), W = _inplace(w, "w"), Bv = _inplace(bv, "bv")
    cdef cnp.ndarray Bh = _inplace(bh, "bh"), Wk, Vw = None, Vbv = None, Vbh = None, Ch = None
    cdef int t = cnp.PyArray_TYPE(W)
    cdef Py_ssize_t m, nv, nh
    cdef nc_rbm_config cfg
    cdef uint64_t st_ = _u64(step, "step")
    cdef double err = 0
    cdef double *errp = &err if want_recon else NULL
    cdef void *p_vw = NULL
    cdef void *p_vbv = NULL
    cdef void *p_vbh = NULL
    cdef void *p_ch = NULL
    cdef nc_status st
    _rbm_params(W, Bv, Bh, t)
    _same_dtype(W, "w", V, "v0")
    _ndim(V, "v0", 2)
    m, nv, nh = V.shape[0], W.shape[0], W.shape[1]
    if V.shape[1] != nv:
        raise ValueError(f"v0 has shape {_shape(V)} but w has shape {_shape(W)}; "
                         f"v0 needs {nv} columns, one per visible unit")
    if not 1 <= cd_k <= NC_RBM_MAX_K:
        raise ValueError(f"cd_k must be in [1, {NC_RBM_MAX_K}], got {cd_k}")
    if not (isfinite(learning_rate) and learning_rate >= 0):
        raise ValueError(f"learning_rate must be finite and >= 0, got {learning_rate}")
    if not (0 <= momentum < 1):
        raise ValueError(f"momentum must be in [0, 1), got {momentum}")
    if not (isfinite(weight_decay) and weight_decay >= 0):
        raise ValueError(f"weight_decay must be finite and >= 0, got {weight_decay}")
    if st_ >= (<uint64_t>1) << 47:
        raise ValueError(f"step {step} is too large (the draws key it in 47 bits)")
    Wk = _inplace(work, "work")
    if cnp.PyArray_TYPE(Wk) != t or cnp.PyArray_NDIM(Wk) != 1:
        raise ValueError(f"work must be a 1-D array of {W.dtype}")
    if <size_t>Wk.shape[0] < nc_rbm_work_size(m, nv, nh):
        raise ValueError(f"work has {Wk.shape[0]} elements; a batch of {m} needs "
                         f"{nc_rbm_work_size(m, nv, nh)}")
    outs = [(W, "w"), (Bv, "bv"), (Bh, "bh"), (Wk, "work")]
    if momentum != 0:
        if vel_w is None or vel_bv is None or vel_bh is None:
            raise ValueError("momentum > 0 needs the velocity buffers vel_w, vel_bv, vel_bh")
        Vw = _rbm_buf(vel_w, "vel_w", t, (nv, nh))
        Vbv = _rbm_buf(vel_bv, "vel_bv", t, (nv,))
        Vbh = _rbm_buf(vel_bh, "vel_bh", t, (nh,))
        p_vw, p_vbv, p_vbh = cnp.PyArray_DATA(Vw), cnp.PyArray_DATA(Vbv), cnp.PyArray_DATA(Vbh)
        outs += [(Vw, "vel_w"), (Vbv, "vel_bv"), (Vbh, "vel_bh")]
    if persistent:
        if chain is None:
            raise ValueError("persistent CD needs chain, the (m, n_hidden) chain states")
        Ch = _rbm_buf(chain, "chain", t, (m, nh))
        p_ch = cnp.PyArray_DATA(Ch)
        outs.append((Ch, "chain"))
    for i in range(len(outs)):
        _no_overlap(outs[i][0], outs[i][1], V, "v0")
        for j in range(i + 1, len(outs)):
            _no_overlap(outs[i][0], outs[i][1], outs[j][0], outs[j][1])
    cfg.visible = <nc_rbm_visible>_rbm_visible_code(visible)
    cfg.cd_k = cd_k
    cfg.persistent = persistent
    cfg.learning_rate = learning_rate
    cfg.momentum = momentum
    cfg.weight_decay = weight_decay
    cfg.seed = _u64(seed, "seed")
    if t == F32:
        with nogil:
            st = nc_srbm_update(&cfg, st_, m, nv, nh, <const float *>cnp.PyArray_DATA(V),
                                <float *>cnp.PyArray_DATA(W), <float *>cnp.PyArray_DATA(Bv),
                                <float *>cnp.PyArray_DATA(Bh), <float *>p_vw, <float *>p_vbv,
                                <float *>p_vbh, <float *>p_ch, <float *>cnp.PyArray_DATA(Wk), errp)
    else:
        with nogil:
            st = nc_drbm_update(&cfg, st_, m, nv, nh, <const double *>cnp.PyArray_DATA(V),
                                <double *>cnp.PyArray_DATA(W), <double *>cnp.PyArray_DATA(Bv),
                                <double *>cnp.PyArray_DATA(Bh), <double *>p_vw, <double *>p_vbv,
                                <double *>p_vbh, <double *>p_ch, <double *>cnp.PyArray_DATA(Wk),
                                errp)
    _check_status(st)
    return err if want_recon else None


def rbm_gibbs(v, w, bv, bh, seed, stream, Py_ssize_t n_steps=1, visible="bernoulli", out=None):
    """n_steps of block Gibbs sampling from v (m, nv); draws use stream + 2s, + 2s + 1."""
    cdef cnp.ndarray V = _real(v, "v"), W = _contig_ro(w, "w"), Bv = _contig_ro(bv, "bv")
    cdef cnp.ndarray Bh = _contig_ro(bh, "bh"), Y, Wk
    cdef int t = cnp.PyArray_TYPE(W)
    cdef Py_ssize_t m, nv, nh
    cdef uint64_t s = _u64(seed, "seed"), tr = _u64(stream, "stream")
    cdef nc_rbm_visible kind = <nc_rbm_visible>_rbm_visible_code(visible)
    cdef nc_status st
    _rbm_params(W, Bv, Bh, t)
    _same_dtype(W, "w", V, "v")
    _ndim(V, "v", 2)
    m, nv, nh = V.shape[0], W.shape[0], W.shape[1]
    if V.shape[1] != nv:
        raise ValueError(f"v has shape {_shape(V)} but w has shape {_shape(W)}; "
                         f"v needs {nv} columns")
    if not 0 <= n_steps <= NC_RBM_MAX_K:
        raise ValueError(f"n_steps must be in [0, {NC_RBM_MAX_K}], got {n_steps}")
    if tr > <uint64_t>(-1) - 2 * <uint64_t>n_steps:
        raise ValueError(f"stream {stream} + 2 * n_steps passes 2**64")
    Y = _out(out, "out", t, (m, nv))
    _same_or_apart(Y, "out", V, "v")
    _no_overlap(Y, "out", W, "w")
    _no_overlap(Y, "out", Bv, "bv")
    _no_overlap(Y, "out", Bh, "bh")
    Wk = np.empty(m * nh, dtype=W.dtype)
    if t == F32:
        with nogil:
            st = nc_srbm_gibbs(kind, s, tr, n_steps, m, nv, nh, <const float *>cnp.PyArray_DATA(V),
                               <const float *>cnp.PyArray_DATA(W), <const float *>cnp.PyArray_DATA(Bv),
                               <const float *>cnp.PyArray_DATA(Bh), <float *>cnp.PyArray_DATA(Wk),
                               <float *>cnp.PyArray_DATA(Y))
    else:
        with nogil:
            st = nc_drbm_gibbs(kind, s, tr, n_steps, m, nv, nh, <const double *>cnp.PyArray_DATA(V),
                               <const double *>cnp.PyArray_DATA(W), <const double *>cnp.PyArray_DATA(Bv),
                               <const double *>cnp.PyArray_DATA(Bh), <double *>cnp.PyArray_DATA(Wk),
                               <double *>cnp.PyArray_DATA(Y))
    _check_status(st)
    return Y


def rbm_free_energy(v, w, bv, bh, visible="bernoulli"):
    """The free energy of each row of v (m, nv): an (m,) array."""
    cdef cnp.ndarray V = _real(v, "v"), W = _contig_ro(w, "w"), Bv = _contig_ro(bv, "bv")
    cdef cnp.ndarray Bh = _contig_ro(bh, "bh"), Y, Wk
    cdef int t = cnp.PyArray_TYPE(W)
    cdef Py_ssize_t m, nv, nh
    cdef nc_rbm_visible kind = <nc_rbm_visible>_rbm_visible_code(visible)
    cdef nc_status st
    _rbm_params(W, Bv, Bh, t)
    _same_dtype(W, "w", V, "v")
    _ndim(V, "v", 2)
    m, nv, nh = V.shape[0], W.shape[0], W.shape[1]
    if V.shape[1] != nv:
        raise ValueError(f"v has shape {_shape(V)} but w has shape {_shape(W)}; "
                         f"v needs {nv} columns")
    Y = np.empty(m, dtype=W.dtype)
    Wk = np.empty(m * nh, dtype=W.dtype)
    if t == F32:
        with nogil:
            st = nc_srbm_free_energy(kind, m, nv, nh, <const float *>cnp.PyArray_DATA(V),
                                     <const float *>cnp.PyArray_DATA(W),
                                     <const float *>cnp.PyArray_DATA(Bv),
                                     <const float *>cnp.PyArray_DATA(Bh),
                                     <float *>cnp.PyArray_DATA(Wk), <float *>cnp.PyArray_DATA(Y))
    else:
        with nogil:
            st = nc_drbm_free_energy(kind, m, nv, nh, <const double *>cnp.PyArray_DATA(V),
                                     <const double *>cnp.PyArray_DATA(W),
                                     <const double *>cnp.PyArray_DATA(Bv),
                                     <const double *>cnp.PyArray_DATA(Bh),
                                     <double *>cnp.PyArray_DATA(Wk), <double *>cnp.PyArray_DATA(Y))
    _check_status(st)
    return Y
