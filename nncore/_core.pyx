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
        arr = np.ascontiguousarray(arr, dtype=np.float32 if t == F32 else np.float64)
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
    cdef const int64_t *lab
    cdef Py_ssize_t i, bad = -1
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or np.any(arr != np.floor(arr)):
            raise ValueError(f"{name} must hold integer class labels; got non-integral values")
    elif arr.dtype.kind not in "iu":
        raise TypeError(f"{name} has dtype {arr.dtype}; class labels must be integers")
    if arr.size != n:
        raise ValueError(f"{name} has shape {_shape(arr)}: {arr.size} labels for {n} samples")
    arr = np.ascontiguousarray(arr, dtype=np.int64)
    lab = <const int64_t *>cnp.PyArray_DATA(arr)
    with nogil:
        for i in range(n):
            if lab[i] < 0 or lab[i] >= k:
                bad = i
                break
    if bad >= 0:
        raise ValueError(f"{name}[{bad}] = {lab[bad]} is outside the {k} classes [0, {k})")
    return arr


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
                          <const float *>cnp.PyArray_DATA(B), ldb,
                          <float>beta, <float *>cnp.PyArray_DATA(C), n)
    else:
        with nogil:
            st = nc_dgemm(trans_a, trans_b, m, n, k, alpha,
                          <const double *>cnp.PyArray_DATA(A), lda,
                          <const double *>cnp.PyArray_DATA(B), ldb,
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
                                   <const float *>cnp.PyArray_DATA(W), <const float *>bp,
                                   <nc_act>act, <float>param, <float *>cnp.PyArray_DATA(Y))
    else:
        with nogil:
            st = nc_ddense_forward(m, k, n, <const double *>cnp.PyArray_DATA(X),
                                   <const double *>cnp.PyArray_DATA(W), <const double *>bp,
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
    if want_dx:
        DX = _out(dx, "dx", t, (m, k))
        _no_overlap(DX, "dx", DZ, "dz")
        _no_overlap(DX, "dx", W, "w")
        dxp = cnp.PyArray_DATA(DX)
    if want_dw:
        DW = _out(dw, "dw", t, (k, n))
        _no_overlap(DW, "dw", X, "x")
        _no_overlap(DW, "dw", DZ, "dz")
        if DX is not None:
            _no_overlap(DW, "dw", DX, "dx")
        dwp = cnp.PyArray_DATA(DW)
    if want_db:
        DB = _out(db, "db", t, (n,))
        _no_overlap(DB, "db", DZ, "dz")
        dbp = cnp.PyArray_DATA(DB)
    if t == F32:
        with nogil:
            st = nc_sdense_backward(m, k, n, <const float *>cnp.PyArray_DATA(X),
                                    <const float *>cnp.PyArray_DATA(W),
                                    <const float *>cnp.PyArray_DATA(DZ),
                                    <float *>dxp, <float *>dwp, <float *>dbp, <float>beta)
    else:
        with nogil:
            st = nc_ddense_backward(m, k, n, <const double *>cnp.PyArray_DATA(X),
                                    <const double *>cnp.PyArray_DATA(W),
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


def loss(int kind, int reduction, y_true, y_pred, bint want_grad=False,
         bint want_per_sample=False, grad_out=None):
    """(total, per_sample or None, grad or None) of a loss over a batch."""
    cdef cnp.ndarray P = _real(y_pred, "y_pred"), T, G, S
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
    return total, S, G


def loss_sparse(int kind, int reduction, labels, y_pred, bint want_grad=False,
                bint want_per_sample=False, grad_out=None):
    """Categorical cross-entropy against integer labels: (total, per_sample, grad)."""
    cdef cnp.ndarray P = _real(y_pred, "y_pred"), L, G, S
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
    return total, S, G


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


# --------------------------------------------------------------------------
# GEMM internals, for the tests and benchmarks
# --------------------------------------------------------------------------

cdef extern from "internal.h" nogil:
    void nc_gemm_blocking(nc_isa isa, int bits, size_t out[5])
    int nc_gemm_path_


def _gemm_blocking(name, dtype):
    """The GEMM block sizes {"mr", "nr", "mc", "kc", "nc"} of a level and dtype."""
    cdef size_t out[5]
    cdef int level, bits
    if name not in ISA_LEVELS:
        raise ValueError(f"unknown kernel level {name!r}")
    level = ISA_LEVELS.index(name)
    bits = 32 if np.dtype(dtype) == np.float32 else 64
    nc_gemm_blocking(<nc_isa>level, bits, out)
    return dict(zip(("mr", "nr", "mc", "kc", "nc"), [out[i] for i in range(5)]))


def _gemm_force_path(name):
    """Force a GEMM path for tests: "auto" (by shape), "packed" or "small"."""
    global nc_gemm_path_
    cdef int old = nc_gemm_path_
    nc_gemm_path_ = {"auto": 0, "packed": 1, "small": 2}[name]
    return ("auto", "packed", "small")[old]
