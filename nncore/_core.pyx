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
import operator

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
    return nc_compiler().decode("ascii", "replace").strip()  # (clang's version ends in a space)


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


# Big results are allocated aligned to 2 MiB (see nc_empty_big below).
cdef extern from *:
    """
    /* A fresh result array of 4 MiB or more: NumPy madvises it for
     * transparent huge pages, but malloc hands back memory that starts and
     * ends off the 2 MiB grid, so the partial huge pages at both ends are
     * faulted 4 KiB at a time (up to ~1000 faults, each several us in a VM);
     * 2 MiB alignment lets the kernel back all but the tail with huge pages.
     * NumPy allocates it through a memory handler (NEP 49), installed for
     * that one call: the array owns its memory like any other and is freed
     * (or resized) by the same handler, with free (or realloc). Linux only;
     * elsewhere, and for NumPy < 1.22, this is PyArray_EMPTY. */
    #include <stdlib.h>
    #if defined(__linux__) && defined(NPY_1_22_API_VERSION) && \
        NPY_FEATURE_VERSION >= NPY_1_22_API_VERSION
    #include <sys/mman.h>
    #define NC_BIG_ARRAY (4u << 20)
    #define NC_HUGE_PAGE ((size_t)2 << 20)
    static void *nc_big_malloc(void *ctx, size_t size)
    {
        void *p = NULL;
        (void)ctx;
        if (size < NC_BIG_ARRAY) return malloc(size ? size : 1);
        if (posix_memalign(&p, NC_HUGE_PAGE, size) != 0) return NULL;
    #ifdef MADV_HUGEPAGE
        madvise(p, size & ~(NC_HUGE_PAGE - 1), MADV_HUGEPAGE); /* advice: failure is harmless */
    #endif
        return p;
    }
    static void *nc_big_calloc(void *ctx, size_t n, size_t size)
    {
        (void)ctx;
        return calloc(n ? n : 1, size ? size : 1);
    }
    static void *nc_big_realloc(void *ctx, void *p, size_t size)
    {
        (void)ctx;
        return realloc(p, size ? size : 1);
    }
    static void nc_big_free(void *ctx, void *p, size_t size)
    {
        (void)ctx;
        (void)size;
        free(p);
    }
    static PyDataMem_Handler nc_big_handler = {
        "nncore_huge_page_aligned", 1,
        {NULL, nc_big_malloc, nc_big_calloc, nc_big_realloc, nc_big_free}};
    static PyObject *nc_big_capsule = NULL;

    static PyObject *nc_empty_big(int nd, npy_intp *dims, int typenum)
    {
        PyObject *old, *arr;
        if (nc_big_capsule == NULL) {
            nc_big_capsule = PyCapsule_New(&nc_big_handler, "mem_handler", NULL);
            if (nc_big_capsule == NULL) return NULL;
        }
        old = PyDataMem_SetHandler(nc_big_capsule);
        if (old == NULL) return NULL;
        arr = PyArray_EMPTY(nd, dims, typenum, 0);
        {
            PyObject *mine = PyDataMem_SetHandler(old);
            Py_DECREF(old);
            if (mine == NULL) {
                Py_XDECREF(arr);
                return NULL;
            }
            Py_DECREF(mine);
        }
        return arr;
    }
    #else
    static PyObject *nc_empty_big(int nd, npy_intp *dims, int typenum)
    {
        return PyArray_EMPTY(nd, dims, typenum, 0);
    }
    #endif
    """
    object nc_empty_big(int nd, cnp.npy_intp *dims, int typenum)


cdef cnp.ndarray _out(object out, str name, int typenum, tuple shape):
    """A new array of `shape`, or `out` checked to be exactly right for it."""
    cdef cnp.ndarray arr
    cdef cnp.npy_intp dims[8]
    cdef int nd, i
    cdef Py_ssize_t size
    if out is None:
        nd = len(shape)
        if nd <= 8:  # the C API skips np.empty's argument parsing (~0.2 us a call)
            size = 1
            for i in range(nd):
                dims[i] = shape[i]
                size *= dims[i]
            if size >= (1 << 20):  # >= 4 MiB: 2 MiB-aligned, see nc_empty_big
                return <cnp.ndarray>nc_empty_big(nd, dims, typenum)
            return <cnp.ndarray>cnp.PyArray_EMPTY(nd, dims, typenum, 0)
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
    cdef Py_ssize_t bad = -1, i
    cdef const int64_t *lab
    if (cnp.PyArray_TYPE(arr) == cnp.NPY_INT64 and cnp.PyArray_IS_C_CONTIGUOUS(arr)
            and cnp.PyArray_ISBEHAVED_RO(arr) and cnp.PyArray_SIZE(arr) == n):
        # the common case (a training loop's labels): one pass in C, no temporaries
        lab = <const int64_t *>cnp.PyArray_DATA(arr)
        with nogil:
            for i in range(n):
                if lab[i] < 0 or lab[i] >= k:
                    bad = i
                    break
        if bad >= 0:
            raise ValueError(f"{name}[{bad}] = {lab[bad]} is outside the {k} classes [0, {k})")
        return arr
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

cdef bint _transposed_view(x):
    """x is a 2-D ndarray in Fortran order only: its .T is C-contiguous."""
    cdef cnp.ndarray arr
    if not cnp.PyArray_Check(x):
        return False
    arr = <cnp.ndarray>x
    return (cnp.PyArray_NDIM(arr) == 2 and cnp.PyArray_IS_F_CONTIGUOUS(arr)
            and not cnp.PyArray_IS_C_CONTIGUOUS(arr))


def gemm(a, b, bint trans_a=False, bint trans_b=False, out=None,
         double alpha=1.0, double beta=0.0):
    """out = alpha * op(a) @ op(b) + beta * out for 2-D float arrays; returns out.

    An operand that is the transpose of a C-contiguous array (a Fortran-order
    view such as ``x.T``) is read in place through the opposite transpose
    flag, not copied."""
    cdef cnp.ndarray A, B, C
    if _transposed_view(a):
        a, trans_a = a.T, not trans_a
    if _transposed_view(b):
        b, trans_b = b.T, not trans_b
    A = _real(a, "a")
    B = _real(b, "b")
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


# Below this many multiply-adds (~2 us of work) matmul keeps the GIL: releasing
# and retaking it costs ~0.1 us, a tenth of a (32, 64, 32) product; NumPy's
# ufuncs keep it for small loops likewise.
cdef enum:
    NC_MATMUL_KEEP_GIL_MNK = 131072


def matmul(a, b, bint trans_a=False, bint trans_b=False, out=None):
    """The matrix product op(a) @ op(b) of 2-D float32 or float64 arrays.

    op(a) is ``a.T`` when ``trans_a`` (likewise b); the transpose is read in
    place, never copied. ``out`` (m, n) receives the result; it must not
    overlap a or b.
    """
    # The fast path for what a training loop passes: ndarrays of one float
    # dtype, 2-D, C-contiguous, aligned, native order, and an out= that fits
    # (or none). Checked in C without building a tuple; anything else goes
    # to gemm(), which copies what needs copying and words the errors.
    cdef cnp.ndarray A, B, C
    cdef cnp.npy_intp dims[2]
    cdef cnp.npy_intp *sa
    cdef cnp.npy_intp *sb
    cdef cnp.npy_intp *sc
    cdef Py_ssize_t m, n, k, k2
    cdef int t
    cdef nc_status st
    cdef void *pa
    cdef void *pb
    cdef void *pc
    if not (cnp.PyArray_Check(a) and cnp.PyArray_Check(b)):
        return gemm(a, b, trans_a, trans_b, out)
    A = <cnp.ndarray>a
    B = <cnp.ndarray>b
    t = cnp.PyArray_TYPE(A)
    if ((t != F32 and t != F64) or cnp.PyArray_TYPE(B) != t
            or cnp.PyArray_NDIM(A) != 2 or cnp.PyArray_NDIM(B) != 2
            or not (cnp.PyArray_IS_C_CONTIGUOUS(A) and cnp.PyArray_ISBEHAVED_RO(A))
            or not (cnp.PyArray_IS_C_CONTIGUOUS(B) and cnp.PyArray_ISBEHAVED_RO(B))):
        return gemm(a, b, trans_a, trans_b, out)
    sa = cnp.PyArray_DIMS(A)
    sb = cnp.PyArray_DIMS(B)
    if trans_a:
        m, k = sa[1], sa[0]
    else:
        m, k = sa[0], sa[1]
    if trans_b:
        k2, n = sb[1], sb[0]
    else:
        k2, n = sb[0], sb[1]
    if k != k2:
        return gemm(a, b, trans_a, trans_b, out)
    if out is None:
        if m * n >= (1 << 20):
            return gemm(a, b, trans_a, trans_b, out)  # big: _out's aligned allocation
        dims[0] = m
        dims[1] = n
        C = <cnp.ndarray>cnp.PyArray_EMPTY(2, dims, t, 0)
    else:
        if not cnp.PyArray_Check(out):
            return gemm(a, b, trans_a, trans_b, out)
        C = <cnp.ndarray>out
        if (cnp.PyArray_TYPE(C) != t or cnp.PyArray_NDIM(C) != 2
                or not cnp.PyArray_ISNOTSWAPPED(C)
                or not (cnp.PyArray_IS_C_CONTIGUOUS(C) and cnp.PyArray_ISALIGNED(C))
                or not cnp.PyArray_ISWRITEABLE(C)):
            return gemm(a, b, trans_a, trans_b, out)
        sc = cnp.PyArray_DIMS(C)
        if sc[0] != m or sc[1] != n or _overlaps(C, A) or _overlaps(C, B):
            return gemm(a, b, trans_a, trans_b, out)
    pa = cnp.PyArray_DATA(A)
    pb = cnp.PyArray_DATA(B)
    pc = cnp.PyArray_DATA(C)
    if t == F32:
        if m * n * k < NC_MATMUL_KEEP_GIL_MNK:
            st = nc_sgemm(trans_a, trans_b, m, n, k, 1.0, <const float *>pa, sa[1],
                          <const float *>pb, sb[1], 0.0, <float *>pc, n)
        else:
            with nogil:
                st = nc_sgemm(trans_a, trans_b, m, n, k, 1.0, <const float *>pa, sa[1],
                              <const float *>pb, sb[1], 0.0, <float *>pc, n)
    else:
        if m * n * k < NC_MATMUL_KEEP_GIL_MNK:
            st = nc_dgemm(trans_a, trans_b, m, n, k, 1.0, <const double *>pa, sa[1],
                          <const double *>pb, sb[1], 0.0, <double *>pc, n)
        else:
            with nogil:
                st = nc_dgemm(trans_a, trans_b, m, n, k, 1.0, <const double *>pa, sa[1],
                              <const double *>pb, sb[1], 0.0, <double *>pc, n)
    if st != NC_OK:
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
    known = {r[0] for r in _OPTIM_RANGES} | {"nesterov", "amsgrad", "centered", "epsilon_hat"}
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
    cfg.epsilon_hat = bool(hp.get("epsilon_hat", False))
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


def optim_step(str kind, dict hp, params, grads, state, int64_t step, penalties=None):
    """One optimizer step, in place on params and state; grads are only read.

    params, grads: the flat (or any-shaped, contiguous) parameter and gradient
    buffers, same dtype and size; state: the 1-D flat state from
    optim_state_init; step: this step's 1-based number.
    penalties: None, or (offset, count, l1, l2) tuples, sorted and disjoint:
    each run of parameters gets penalty()'s gradient added on the fly (grads
    are left as given) and the step returns the list of penalty values, the
    same bits as penalty() then optim_step() give, in one pass instead of
    two. Not with clipnorm.
    """
    cdef nc_optim_config cfg
    cdef cnp.ndarray P = _inplace(params, "params"), G = _contig_ro(grads, "grads")
    cdef cnp.ndarray S = _inplace(state, "state")
    cdef Py_ssize_t n = cnp.PyArray_SIZE(P)
    cdef size_t need
    cdef nc_status st
    cdef Py_ssize_t j, n_seg = 0, end = 0
    cdef nc_penalty_seg *segs = NULL
    cdef double[::1] values
    _optim_config(kind, hp, &cfg)
    if penalties is not None:
        if cfg.clipnorm > 0:
            raise ValueError("penalties cannot be fused into a step with clipnorm (its norm "
                             "is of the penalized gradient): apply penalty() first")
        runs = []
        for j, run in enumerate(penalties):
            try:
                off, cnt, l1, l2 = run
                off, cnt, l1, l2 = operator.index(off), operator.index(cnt), float(l1), float(l2)
            except (TypeError, ValueError):
                raise TypeError(f"penalties[{j}] must be (offset, count, l1, l2), "
                                f"got {run!r}") from None
            if off < end or cnt < 0 or off + cnt > n:
                raise ValueError(f"penalties[{j}] covers [{off}, {off + cnt}): the runs must "
                                 f"be sorted, disjoint and inside the {n} parameters")
            if not (isfinite(l1) and isfinite(l2) and l1 >= 0 and l2 >= 0):
                raise ValueError(f"l1 and l2 must be finite and >= 0, got {l1}, {l2}")
            runs.append((off, cnt, l1, l2))
            end = off + cnt
        n_seg = len(runs)
        values = np.zeros(max(n_seg, 1), dtype=np.float64)
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
    if penalties is None:
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
        return None
    segs = <nc_penalty_seg *>PyMem_Malloc(max(n_seg, 1) * sizeof(nc_penalty_seg))
    if segs == NULL:
        raise MemoryError()
    try:
        for j in range(n_seg):
            segs[j].offset, segs[j].n, segs[j].l1, segs[j].l2 = runs[j]
        if cnp.PyArray_TYPE(P) == F32:
            with nogil:
                st = nc_soptim_step_penalized(&cfg, n, <float *>cnp.PyArray_DATA(P),
                                              <const float *>cnp.PyArray_DATA(G),
                                              <float *>cnp.PyArray_DATA(S), step, n_seg, segs,
                                              &values[0])
        else:
            with nogil:
                st = nc_doptim_step_penalized(&cfg, n, <double *>cnp.PyArray_DATA(P),
                                              <const double *>cnp.PyArray_DATA(G),
                                              <double *>cnp.PyArray_DATA(S), step, n_seg, segs,
                                              &values[0])
    finally:
        PyMem_Free(segs)
    _check_status(st)
    return [values[j] for j in range(n_seg)]


cdef class OptimStepper:
    """An optimizer's checked configuration, kept for its whole life.

    Parsing and checking the hyper-parameters once (not at every step) keeps
    a small network's training step cheap; only the learning rate, which a
    schedule may change per step, is passed to each call (and checked there).
    """
    cdef nc_optim_config cfg
    cdef readonly str kind

    def __init__(self, str kind, dict hp):
        _optim_config(kind, hp, &self.cfg)
        self.kind = kind

    def step(self, double learning_rate, params, grads, state, int64_t step, owner=None):
        """One step in place on params and state (as optim_step); then, with no
        Python code between (so no interrupt can come between them), the
        owner's ``iterations`` becomes ``step``."""
        cdef cnp.ndarray P = _inplace(params, "params"), G = _contig_ro(grads, "grads")
        cdef cnp.ndarray S = _inplace(state, "state")
        cdef Py_ssize_t n = cnp.PyArray_SIZE(P)
        cdef nc_status st
        if not (isfinite(learning_rate) and learning_rate >= 0):
            raise ValueError(f"learning_rate must be a finite number >= 0, got {learning_rate!r}")
        self.cfg.learning_rate = learning_rate
        _same_dtype(P, "params", G, "grads")
        _same_dtype(P, "params", S, "state")
        if cnp.PyArray_SIZE(G) != n:
            raise ValueError(f"grads has {cnp.PyArray_SIZE(G)} elements but params has {n}")
        if cnp.PyArray_NDIM(S) != 1 or <size_t>cnp.PyArray_SIZE(S) != nc_optim_state_size(&self.cfg, n):
            raise ValueError(f"state has shape {_shape(S)}; {self.kind} with these options needs "
                             f"({nc_optim_state_size(&self.cfg, n)},) for {n} parameters")
        if step < 1:
            raise ValueError(f"step is 1-based, got {step}")
        _no_overlap(P, "params", G, "grads")
        _no_overlap(S, "state", P, "params")
        _no_overlap(S, "state", G, "grads")
        if cnp.PyArray_TYPE(P) == F32:
            with nogil:
                st = nc_soptim_step(&self.cfg, n, <float *>cnp.PyArray_DATA(P),
                                    <const float *>cnp.PyArray_DATA(G),
                                    <float *>cnp.PyArray_DATA(S), step)
        else:
            with nogil:
                st = nc_doptim_step(&self.cfg, n, <double *>cnp.PyArray_DATA(P),
                                    <const double *>cnp.PyArray_DATA(G),
                                    <double *>cnp.PyArray_DATA(S), step)
        _check_status(st)
        if owner is not None:
            object.__setattr__(owner, "iterations", step)


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

    def __cinit__(self, *args, **kwargs):  # (subclasses' arguments reach here too)
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
        self.sample_shape = (self.n_in,)

    def __dealloc__(self):
        PyMem_Free(self.steps32)
        PyMem_Free(self.steps64)

    cdef public tuple sample_shape  # one sample's shape, for run_one (default (n_in,))

    def run_one(self, x, out=None):
        """The output (n_out,) for ONE sample of shape ``sample_shape``; the fastest path."""
        cdef cnp.ndarray X
        if not (cnp.PyArray_Check(x) and cnp.PyArray_TYPE(<cnp.ndarray>x) == self.typenum
                and cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray>x)
                and cnp.PyArray_ISBEHAVED_RO(<cnp.ndarray>x)):
            x = _real(x, "x")
            if cnp.PyArray_TYPE(<cnp.ndarray>x) != self.typenum:
                x = x.astype(np.float32 if self.typenum == F32 else np.float64)
        X = <cnp.ndarray>x
        if _shape(X) != self.sample_shape:
            raise ValueError(f"x has shape {_shape(X)}; one sample of this model has shape "
                             f"{self.sample_shape}")
        return self.run(X.reshape(self.n_in) if cnp.PyArray_NDIM(X) != 1 else X, out)

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


def penalty(w, g, double l1, double l2):
    """l1 * sum|w| + l2 * sum(w^2), and (g not None) g += its gradient, in one pass."""
    cdef cnp.ndarray W = _real(w, "w"), G = None
    cdef double total = 0
    cdef void *gp = NULL
    cdef Py_ssize_t n = cnp.PyArray_SIZE(W)
    if not (isfinite(l1) and isfinite(l2) and l1 >= 0 and l2 >= 0):
        raise ValueError(f"l1 and l2 must be finite and >= 0, got {l1}, {l2}")
    if g is not None:
        G = _inplace(g, "g")
        _same_dtype(W, "w", G, "g")
        if cnp.PyArray_SIZE(G) != n:
            raise ValueError(f"g has {cnp.PyArray_SIZE(G)} elements but w has {n}")
        _no_overlap(G, "g", W, "w")
        gp = cnp.PyArray_DATA(G)
    if cnp.PyArray_TYPE(W) == F32:
        with nogil:
            nc_spenalty(n, <const float *>cnp.PyArray_DATA(W), <float *>gp, l1, l2, &total)
    else:
        with nogil:
            nc_dpenalty(n, <const double *>cnp.PyArray_DATA(W), <double *>gp, l1, l2, &total)
    return total


cdef class TrainPlan(Plan):
    """A Dense/Activation stack's training step (forward, fused loss, backward)
    in one engine call, writing gradients into the given arrays.

    ``grads`` holds, per step, ``(grad_w, grad_b)`` (views into a model's flat
    gradient buffer; grad_b None without bias) or None for activation steps.
    With ``fuse_last``, the last activation is fused into the loss, which
    must then be a from-logits loss. Not for concurrent use: the step outputs
    are the plan's own buffers (a model serializes its steps).
    """
    cdef void **outputs
    cdef void **grad_w
    cdef void **grad_b
    cdef list out_arrays, grad_arrays
    cdef cnp.ndarray work_buf
    cdef bint fuse_last
    cdef Py_ssize_t capacity, widest_io

    def __cinit__(self, *args, **kwargs):
        self.outputs = self.grad_w = self.grad_b = NULL

    def __init__(self, list steps, dtype, list grads=None, bint fuse_last=False):
        cdef Py_ssize_t i
        cdef cnp.ndarray G
        Plan.__init__(self, steps, dtype)
        if grads is None or len(grads) != len(steps):
            raise ValueError("a training plan needs one grads entry per step")
        self.fuse_last = fuse_last
        self.outputs = <void **>PyMem_Malloc(self.n_steps * sizeof(void *))
        self.grad_w = <void **>PyMem_Malloc(self.n_steps * sizeof(void *))
        self.grad_b = <void **>PyMem_Malloc(self.n_steps * sizeof(void *))
        if self.outputs == NULL or self.grad_w == NULL or self.grad_b == NULL:
            raise MemoryError()
        self.grad_arrays = []
        self.widest_io = 0
        for i in range(<Py_ssize_t>self.n_steps):
            n_in, n_out = self._step_sizes(i)
            self.widest_io = max(self.widest_io, n_in, n_out)
            self.grad_w[i] = self.grad_b[i] = NULL
            if steps[i][0] == "dense":
                gw, gb = grads[i]
                G = _inplace(gw, "grad_w")
                if cnp.PyArray_TYPE(G) != self.typenum or _shape(G) != (n_in, n_out):
                    raise ValueError(f"grad_w of step {i} must be ({n_in}, {n_out}) of the plan's dtype")
                self.grad_w[i] = cnp.PyArray_DATA(G)
                self.grad_arrays.append(G)
                if (gb is None) != (steps[i][2] is None):
                    raise ValueError(f"step {i}: a bias needs a bias gradient and vice versa")
                if gb is not None:
                    G = _inplace(gb, "grad_b")
                    if cnp.PyArray_TYPE(G) != self.typenum or _shape(G) != (n_out,):
                        raise ValueError(f"grad_b of step {i} must be ({n_out},) of the plan's dtype")
                    self.grad_b[i] = cnp.PyArray_DATA(G)
                    self.grad_arrays.append(G)
        self.capacity = 0
        self.out_arrays = []

    def __dealloc__(self):
        PyMem_Free(self.outputs)
        PyMem_Free(self.grad_w)
        PyMem_Free(self.grad_b)

    cdef tuple _step_sizes(self, Py_ssize_t i):
        if self.typenum == F32:
            return self.steps32[i].n_in, self.steps32[i].n_out
        return self.steps64[i].n_in, self.steps64[i].n_out

    cdef int _reserve(self, Py_ssize_t m) except -1:
        """Step outputs and work for batches of up to m samples (grown, never shrunk)."""
        cdef Py_ssize_t i
        cdef size_t need
        if m <= self.capacity:
            return 0
        np_dtype = np.float32 if self.typenum == F32 else np.float64
        self.out_arrays = []
        for i in range(<Py_ssize_t>self.n_steps):
            arr = np.empty((m, self._step_sizes(i)[1]), np_dtype)
            self.out_arrays.append(arr)
            self.outputs[i] = cnp.PyArray_DATA(<cnp.ndarray>arr)
        if self.typenum == F32:  # (room for a sparse first input too: nc_plan_train_work)
            need = nc_splan_train_work(self.n_steps, self.steps32, m)
        else:
            need = nc_dplan_train_work(self.n_steps, self.steps64, m)
        self.work_buf = np.empty(need, np_dtype)
        self.capacity = m
        return 0

    def step(self, x, y, int loss, int reduction, bint sparse):
        """(loss value, the model's output for this batch: a view of the plan's buffer)."""
        cdef cnp.ndarray X = _real(x, "x"), T = None, L = None
        cdef Py_ssize_t m
        cdef double total = 0
        cdef const void *tp = NULL
        cdef const int64_t *lp = NULL
        cdef nc_status st
        if cnp.PyArray_TYPE(X) != self.typenum or cnp.PyArray_NDIM(X) != 2 or X.shape[1] != self.n_in:
            raise ValueError(f"x must be (batch, {self.n_in}) of the plan's dtype, got {_shape(X)}")
        m = X.shape[0]
        if m == 0:
            raise ValueError("an empty batch has no loss to train on")
        if loss < 0 or loss >= NC_LOSS_COUNT_ or reduction < 0 or reduction > NC_REDUCE_NONE:
            raise ValueError("unknown loss or reduction code")
        if self.fuse_last and loss != NC_LOSS_CCE_LOGITS and loss != NC_LOSS_BCE_LOGITS:
            raise ValueError("a fused output activation needs a from-logits loss")
        self._reserve(m)
        if sparse:
            if loss != NC_LOSS_CCE and loss != NC_LOSS_CCE_LOGITS:
                raise ValueError("integer labels go with categorical cross-entropy")
            L = _labels(y, m, self.n_out, "y_true")
            lp = <const int64_t *>cnp.PyArray_DATA(L)
        else:
            T = _targets(y, self.out_arrays[self.n_steps - 1][:m])
            tp = cnp.PyArray_DATA(T)
        if self.typenum == F32:
            with nogil:
                st = nc_splan_train_step(self.n_steps, self.steps32, m,
                                         <const float *>cnp.PyArray_DATA(X), self.fuse_last,
                                         <nc_loss>loss, <nc_reduction>reduction,
                                         <const float *>tp, lp, <float **>self.outputs,
                                         <float **>self.grad_w, <float **>self.grad_b,
                                         <float *>cnp.PyArray_DATA(self.work_buf), &total)
        else:
            with nogil:
                st = nc_dplan_train_step(self.n_steps, self.steps64, m,
                                         <const double *>cnp.PyArray_DATA(X), self.fuse_last,
                                         <nc_loss>loss, <nc_reduction>reduction,
                                         <const double *>tp, lp, <double **>self.outputs,
                                         <double **>self.grad_w, <double **>self.grad_b,
                                         <double *>cnp.PyArray_DATA(self.work_buf), &total)
        _check_status(st)
        return total, self.out_arrays[self.n_steps - 1][:m]


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


# Perceptron (csrc/perceptron_impl.h)
# --------------------------------------------------------------------------

def perceptron_epoch(x, y, w, b, double lr, order=None):
    """One epoch of the perceptron rule, in place on w (k x d) and b (k,) or None.

    x is (n, d), y is (n, k) with targets 0 or 1, all one float dtype; order
    is a permutation of 0 .. n-1 (int64), or None for 0 .. n-1. Returns the
    number of mistakes (updates) made; 0 means the epoch saw none. x may
    also be uint8 (C-contiguous; images as loaded): each sample is then read
    as y's dtype, with the bits of the epoch on x converted.
    """
    cdef cnp.ndarray X, Y, W = _inplace(w, "w"), B = None, O = None, XR = None
    cdef size_t n, d, k, mistakes = 0
    cdef nc_status st
    cdef const int64_t *po = NULL
    cdef bint x_u8 = cnp.PyArray_Check(x) and cnp.PyArray_TYPE(<cnp.ndarray>x) == cnp.NPY_UINT8
    if x_u8:
        X = <cnp.ndarray>x
        if not cnp.PyArray_IS_C_CONTIGUOUS(X):
            raise ValueError("a uint8 x must be C-contiguous (np.ascontiguousarray(x))")
    else:
        X = _real(x, "x")
    _ndim(X, "x", 2)
    n, d = X.shape[0], X.shape[1]
    Y = _real(y, "y")
    if not x_u8:
        _same_dtype(X, "x", Y, "y")
    _same_dtype(Y if x_u8 else X, "y" if x_u8 else "x", W, "w")
    _ndim(Y, "y", 2)
    if Y.shape[0] != <Py_ssize_t>n:
        raise ValueError(f"x has {n} samples but y has {Y.shape[0]}")
    k = Y.shape[1]
    if _shape(W) != (k, d):
        raise ValueError(f"w has shape {_shape(W)}; for x {_shape(X)} and y {_shape(Y)} "
                         f"it must be {(k, d)}")
    if not np.all((Y == 0) | (Y == 1)):
        raise ValueError("y must hold perceptron targets 0 or 1")
    if not np.isfinite(lr) or lr <= 0:
        raise ValueError(f"the learning rate must be a finite number > 0, got {lr}")
    if b is not None:
        B = _inplace(b, "b")
        _same_dtype(Y if x_u8 else X, "y" if x_u8 else "x", B, "b")
        if _shape(B) != (k,):
            raise ValueError(f"b has shape {_shape(B)}; it must be {(k,)}")
        _no_overlap(B, "b", W, "w")
    _no_overlap(W, "w", X, "x")
    _no_overlap(W, "w", Y, "y")
    if order is not None:
        O = np.ascontiguousarray(order, dtype=np.int64)
        if _shape(O) != (n,) or not np.array_equal(np.sort(O), np.arange(n)):
            raise ValueError(f"order must be a permutation of 0 .. {n - 1}")
        po = <const int64_t *>cnp.PyArray_DATA(O)
    if x_u8:
        XR = np.empty(max(<Py_ssize_t>d, 1),
                      dtype=np.float32 if cnp.PyArray_TYPE(Y) == F32 else np.float64)
        if cnp.PyArray_TYPE(Y) == F32:
            with nogil:
                st = nc_sperceptron_epoch_u8(n, d, k, <const uint8_t *>cnp.PyArray_DATA(X),
                                             <const float *>cnp.PyArray_DATA(Y), po, <float>lr,
                                             <float *>cnp.PyArray_DATA(W),
                                             NULL if B is None else <float *>cnp.PyArray_DATA(B),
                                             <float *>cnp.PyArray_DATA(XR), &mistakes)
        else:
            with nogil:
                st = nc_dperceptron_epoch_u8(n, d, k, <const uint8_t *>cnp.PyArray_DATA(X),
                                             <const double *>cnp.PyArray_DATA(Y), po, lr,
                                             <double *>cnp.PyArray_DATA(W),
                                             NULL if B is None else <double *>cnp.PyArray_DATA(B),
                                             <double *>cnp.PyArray_DATA(XR), &mistakes)
    elif cnp.PyArray_TYPE(X) == F32:
        with nogil:
            st = nc_sperceptron_epoch(n, d, k, <const float *>cnp.PyArray_DATA(X),
                                      <const float *>cnp.PyArray_DATA(Y), po, <float>lr,
                                      <float *>cnp.PyArray_DATA(W),
                                      NULL if B is None else <float *>cnp.PyArray_DATA(B),
                                      &mistakes)
    else:
        with nogil:
            st = nc_dperceptron_epoch(n, d, k, <const double *>cnp.PyArray_DATA(X),
                                      <const double *>cnp.PyArray_DATA(Y), po, lr,
                                      <double *>cnp.PyArray_DATA(W),
                                      NULL if B is None else <double *>cnp.PyArray_DATA(B),
                                      &mistakes)
    _check_status(st)
    return mistakes


# ==========================================================================
# Convolution and pooling (helper branch `cnn`; csrc/conv_impl.h, pool_impl.h)
# Images are channels-last (n, h, w, c); conv kernels (kh, kw, c, f), Keras'.
# ==========================================================================

cdef tuple _pair(object v, str name):
    """(a, b) of positive ints from an int or a pair."""
    if isinstance(v, (int, np.integer)):
        v = (v, v)
    try:
        a, b = v
        a, b = int(a), int(b)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be an int or a pair of ints, got {v!r}") from None
    if a < 1 or b < 1:
        raise ValueError(f"{name} must be positive, got {(a, b)}")
    return a, b


def window_output(Py_ssize_t size, Py_ssize_t k, Py_ssize_t stride, Py_ssize_t dilation,
                  str padding, str what="window"):
    """(output size, padding before) along one axis, by Keras' rules.

    "valid": floor((size - eff) / stride) + 1 with eff = (k - 1) * dilation + 1,
    an error when the window does not fit; "same": ceil(size / stride), padded
    with total = max((out - 1) * stride + eff - size, 0) zeros, total // 2 before
    (the odd one after: Keras' convention; PyTorch pads symmetrically).
    """
    cdef Py_ssize_t eff = (k - 1) * dilation + 1, out, total
    if padding == "valid":
        if size < eff:
            raise ValueError(f"{what} of {eff} (kernel {k}, dilation {dilation}) is larger "
                             f"than the input's {size} with padding='valid'")
        return (size - eff) // stride + 1, 0
    if padding == "same":
        if size < 1:
            raise ValueError(f"an input of size {size} has nothing to pad")
        out = (size + stride - 1) // stride
        total = max((out - 1) * stride + eff - size, 0)
        return out, total // 2
    raise ValueError(f"padding must be 'valid' or 'same', got {padding!r}")


def conv2d_output_shape(input_shape, kernel_size, strides=1, padding="valid", dilation_rate=1):
    """(oh, ow, pad_top, pad_left) of a convolution on (h, w, ...) samples."""
    kh, kw = _pair(kernel_size, "kernel_size")
    sh, sw = _pair(strides, "strides")
    dh, dw = _pair(dilation_rate, "dilation_rate")
    h, w = int(input_shape[0]), int(input_shape[1])
    if h < 1 or w < 1:
        raise ValueError(f"images of {h} x {w} pixels have nothing to convolve")
    try:
        oh, pt = window_output(h, kh, sh, dh, padding, "kernel height")
        ow, pl = window_output(w, kw, sw, dw, padding, "kernel width")
    except ValueError as e:
        raise ValueError(f"a {kh} x {kw} kernel (dilation {(dh, dw)}) cannot slide over "
                         f"{h} x {w} images: {e}") from None
    return oh, ow, pt, pl


def pool2d_output_shape(input_shape, pool_size, strides=None, padding="valid"):
    """(oh, ow, pad_top, pad_left) of a pooling on (h, w, ...) samples."""
    ph, pw = _pair(pool_size, "pool_size")
    sh, sw = _pair(pool_size if strides is None else strides, "strides")
    h, w = int(input_shape[0]), int(input_shape[1])
    if h < 1 or w < 1:
        raise ValueError(f"images of {h} x {w} pixels have nothing to pool")
    try:
        oh, pt = window_output(h, ph, sh, 1, padding, "pool height")
        ow, pl = window_output(w, pw, sw, 1, padding, "pool width")
    except ValueError as e:
        raise ValueError(f"a {ph} x {pw} pool cannot slide over {h} x {w} images: {e}") from None
    return oh, ow, pt, pl


cdef int _conv_geom(cnp.ndarray X, cnp.ndarray W, object strides, str padding,
                    object dilation_rate, nc_conv2d_geom *g) except -1:
    _ndim(X, "x", 4)
    _ndim(W, "w", 4)
    if W.shape[2] != X.shape[3]:
        raise ValueError(f"x has shape {_shape(X)} ({X.shape[3]} channels) but the kernel w "
                         f"has shape {_shape(W)} (for {W.shape[2]} channels); the kernel is "
                         f"(kh, kw, in_channels, filters)")
    if W.shape[0] < 1 or W.shape[1] < 1 or W.shape[3] < 1 or W.shape[2] < 1:
        raise ValueError(f"the kernel w has shape {_shape(W)}; every axis must be >= 1")
    oh, ow, pt, pl = conv2d_output_shape((X.shape[1], X.shape[2]), (W.shape[0], W.shape[1]),
                                         strides, padding, dilation_rate)
    g.n, g.h, g.w, g.c = X.shape[0], X.shape[1], X.shape[2], X.shape[3]
    g.kh, g.kw, g.f = W.shape[0], W.shape[1], W.shape[3]
    g.oh, g.ow, g.pad_top, g.pad_left = oh, ow, pt, pl
    g.stride_h, g.stride_w = _pair(strides, "strides")
    g.dil_h, g.dil_w = _pair(dilation_rate, "dilation_rate")
    return 0


cdef cnp.ndarray _work(object buf, str name, int typenum, size_t size):
    """A flat work buffer of at least `size` elements (its first `size` used)."""
    cdef cnp.ndarray arr
    if buf is None:
        return np.empty(size, dtype=np.float32 if typenum == F32 else np.float64)
    if not cnp.PyArray_Check(buf):
        raise TypeError(f"{name} must be a numpy.ndarray, not {type(buf).__name__}")
    arr = <cnp.ndarray>buf
    if cnp.PyArray_TYPE(arr) != typenum or not cnp.PyArray_ISNOTSWAPPED(arr):
        raise TypeError(f"{name} has dtype {arr.dtype}; it must be "
                        f"{np.dtype(np.float32 if typenum == F32 else np.float64)}")
    if <size_t>cnp.PyArray_SIZE(arr) < size:
        raise ValueError(f"{name} has {cnp.PyArray_SIZE(arr)} elements; this convolution "
                         f"needs {size}")
    if not (cnp.PyArray_IS_C_CONTIGUOUS(arr) and cnp.PyArray_ISALIGNED(arr)
            and cnp.PyArray_ISWRITEABLE(arr)):
        raise ValueError(f"{name} must be C-contiguous, aligned and writeable")
    return arr


def conv2d_cols_size(x_shape, w_shape, strides=1, padding="valid", dilation_rate=1):
    """Elements of the column buffer a convolution of these shapes needs (0: none)."""
    cdef nc_conv2d_geom g
    X = np.empty(tuple(x_shape), np.float32)  # shapes only: never read
    W = np.empty(tuple(w_shape), np.float32)
    _conv_geom(X, W, strides, padding, dilation_rate, &g)
    return nc_conv2d_cols_size(&g)


def conv2d_forward(x, w, b=None, strides=1, str padding="valid", dilation_rate=1,
                   int act=NC_ACT_IDENTITY, double param=0.0, out=None, cols=None):
    """f(conv2d(x, w) + b) for x (n, h, w, c), w (kh, kw, c, f), b (f,) or None.

    Returns (y, cols): y (n, oh, ow, f) and the column buffer that
    :func:`conv2d_backward` reads (None for a pointwise kernel, which reads x).
    ``cols`` may be given (flat, at least conv2d_cols_size elements).
    """
    cdef cnp.ndarray X = _real(x, "x"), Wt = _real(w, "w"), Bv = None, Y, C = None
    cdef nc_conv2d_geom g
    cdef const void *bp = NULL
    cdef void *cp = NULL
    cdef size_t ncols
    cdef nc_status st
    cdef int t
    _same_dtype(X, "x", Wt, "w")
    _check_act(act, param)
    if act == NC_ACT_SOFTMAX or act == NC_ACT_LOG_SOFTMAX:
        raise ValueError("a convolution takes element-wise activations; apply softmax after it")
    _conv_geom(X, Wt, strides, padding, dilation_rate, &g)
    t = cnp.PyArray_TYPE(X)
    if b is not None:
        Bv = _real(b, "b")
        _same_dtype(X, "x", Bv, "b")
        if _shape(Bv) != (g.f,):
            raise ValueError(f"b has shape {_shape(Bv)}; the kernel w has shape {_shape(Wt)}, "
                             f"so b needs ({g.f},)")
        bp = cnp.PyArray_DATA(Bv)
    Y = _out(out, "out", t, (g.n, g.oh, g.ow, g.f))
    _no_overlap(Y, "out", X, "x")
    _no_overlap(Y, "out", Wt, "w")
    if Bv is not None:
        _no_overlap(Y, "out", Bv, "b")
    ncols = nc_conv2d_cols_size(&g)
    if ncols:
        C = _work(cols, "cols", t, ncols)
        _no_overlap(Y, "out", C, "cols")
        _no_overlap(C, "cols", X, "x")
        _no_overlap(C, "cols", Wt, "w")
        cp = cnp.PyArray_DATA(C)
    if t == F32:
        with nogil:
            st = nc_sconv2d_forward(&g, <const float *>cnp.PyArray_DATA(X),
                                    <const float *>cnp.PyArray_DATA(Wt), <const float *>bp,
                                    <nc_act>act, <float>param, <float *>cnp.PyArray_DATA(Y),
                                    <float *>cp)
    else:
        with nogil:
            st = nc_dconv2d_forward(&g, <const double *>cnp.PyArray_DATA(X),
                                    <const double *>cnp.PyArray_DATA(Wt), <const double *>bp,
                                    <nc_act>act, param, <double *>cnp.PyArray_DATA(Y),
                                    <double *>cp)
    _check_status(st)
    return Y, C


def conv2d_backward(x, w, dz, cols=None, strides=1, str padding="valid", dilation_rate=1,
                    bint want_dx=True, bint want_dw=True, bint want_db=True,
                    dx=None, dw=None, db=None, dcols=None):
    """(dx, dw, db) of a convolution from dz = dL/d(conv2d(x, w) + b); None where
    not wanted. ``cols`` is the forward's column buffer (recomputed from x when
    None). ``dcols`` is dx's work buffer; it may be ``cols``, which is then
    overwritten (after dw has used it)."""
    cdef cnp.ndarray X = _real(x, "x"), Wt = _real(w, "w"), DZ = _real(dz, "dz")
    cdef cnp.ndarray C = None, DC = None, DX = None, DW = None, DB = None
    cdef nc_conv2d_geom g
    cdef size_t ncols
    cdef const void *cp
    cdef void *dcp = NULL
    cdef void *dxp = NULL
    cdef void *dwp = NULL
    cdef void *dbp = NULL
    cdef nc_status st
    cdef int t
    _same_dtype(X, "x", Wt, "w")
    _same_dtype(X, "x", DZ, "dz")
    _conv_geom(X, Wt, strides, padding, dilation_rate, &g)
    t = cnp.PyArray_TYPE(X)
    if _shape(DZ) != (g.n, g.oh, g.ow, g.f):
        raise ValueError(f"dz has shape {_shape(DZ)}; x {_shape(X)} and w {_shape(Wt)} give "
                         f"outputs of shape {(g.n, g.oh, g.ow, g.f)}")
    ncols = nc_conv2d_cols_size(&g)
    if ncols == 0:
        cp = cnp.PyArray_DATA(X)
    else:
        if cols is None:
            _, C = conv2d_forward(X, Wt, None, strides, padding, dilation_rate)
        else:
            C = _work(cols, "cols", t, ncols)
        cp = cnp.PyArray_DATA(C)
        if want_dx:
            if cols is None or dcols is cols:
                DC = C  # ours, or the caller's choice: dx's work overwrites it
            else:
                DC = _work(dcols, "dcols", t, ncols)
            dcp = cnp.PyArray_DATA(DC)
    outs = []
    if want_dx:
        DX = _out(dx, "dx", t, _shape(X))
        outs.append((DX, "dx"))
        dxp = cnp.PyArray_DATA(DX)
    if want_dw:
        DW = _out(dw, "dw", t, _shape(Wt))
        outs.append((DW, "dw"))
        dwp = cnp.PyArray_DATA(DW)
    if want_db:
        DB = _out(db, "db", t, (g.f,))
        outs.append((DB, "db"))
        dbp = cnp.PyArray_DATA(DB)
    ins = [(X, "x"), (Wt, "w"), (DZ, "dz")]
    if C is not None:
        ins.append((C, "cols"))
    for i, (O, oname) in enumerate(outs):
        for I, iname in ins:
            _no_overlap(O, oname, I, iname)
        for O2, oname2 in outs[i + 1:]:
            _no_overlap(O2, oname2, O, oname)
        if DC is not None:
            _no_overlap(O, oname, DC, "dcols")
    if DC is not None and DC is not C:
        for I, iname in ins:
            _no_overlap(DC, "dcols", I, iname)
    if t == F32:
        with nogil:
            st = nc_sconv2d_backward(&g, <const float *>cp, <const float *>cnp.PyArray_DATA(Wt),
                                     <const float *>cnp.PyArray_DATA(DZ), <float *>dxp,
                                     <float *>dwp, <float *>dbp, <float *>dcp)
    else:
        with nogil:
            st = nc_dconv2d_backward(&g, <const double *>cp,
                                     <const double *>cnp.PyArray_DATA(Wt),
                                     <const double *>cnp.PyArray_DATA(DZ), <double *>dxp,
                                     <double *>dwp, <double *>dbp, <double *>dcp)
    _check_status(st)
    return DX, DW, DB


cdef int _pool_geom(tuple x_shape, object pool_size, object strides, str padding,
                    nc_pool2d_geom *g) except -1:
    if len(x_shape) != 4:
        raise ValueError(f"pooling takes (batch, height, width, channels) images; got shape "
                         f"{x_shape}")
    oh, ow, pt, pl = pool2d_output_shape(x_shape[1:3], pool_size, strides, padding)
    g.n, g.h, g.w, g.c = x_shape
    g.ph, g.pw = _pair(pool_size, "pool_size")
    g.sh, g.sw = _pair(pool_size if strides is None else strides, "strides")
    g.oh, g.ow, g.pad_top, g.pad_left = oh, ow, pt, pl
    if g.h * g.w >= 2**31:
        raise ValueError(f"images of {g.h} x {g.w} pixels are too large to pool (2^31 pixels)")
    return 0


cdef cnp.ndarray _argmax_buf(object buf, tuple shape):
    cdef cnp.ndarray arr
    if buf is None:
        return np.empty(shape, np.int32)
    if not cnp.PyArray_Check(buf):
        raise TypeError(f"argmax must be a numpy.ndarray, not {type(buf).__name__}")
    arr = <cnp.ndarray>buf
    if arr.dtype != np.int32 or _shape(arr) != shape:
        raise ValueError(f"argmax must be int32 of shape {shape}; got {arr.dtype} {_shape(arr)}")
    if not (cnp.PyArray_IS_C_CONTIGUOUS(arr) and cnp.PyArray_ISBEHAVED(arr)):
        raise ValueError("argmax must be C-contiguous, aligned, writeable and native-order")
    return arr


def pool2d_forward(str mode, x, pool_size, strides=None, str padding="valid", out=None,
                   argmax=None):
    """Max ("max") or average ("avg") pooling of x (n, h, w, c).

    Returns (y, argmax): y (n, oh, ow, c); for max pooling, argmax (int32, the
    shape of y) holds each winner's pixel iy * w + ix, which the backward
    reads (None for average pooling).
    """
    cdef cnp.ndarray X = _real(x, "x"), Y, A = None
    cdef nc_pool2d_geom g
    cdef nc_status st = NC_OK
    cdef int t = cnp.PyArray_TYPE(X)
    cdef int32_t *ap = NULL
    cdef bint is_max = mode == "max"
    if mode not in ("max", "avg"):
        raise ValueError(f"mode must be 'max' or 'avg', got {mode!r}")
    _pool_geom(_shape(X), pool_size, strides, padding, &g)
    Y = _out(out, "out", t, (g.n, g.oh, g.ow, g.c))
    _no_overlap(Y, "out", X, "x")
    if mode == "max":
        A = _argmax_buf(argmax, (g.n, g.oh, g.ow, g.c))
        _no_overlap(A, "argmax", X, "x")
        _no_overlap(A, "argmax", Y, "out")
        ap = <int32_t *>cnp.PyArray_DATA(A)
    with nogil:
        if is_max:
            if t == F32:
                st = nc_smaxpool2d_forward(&g, <const float *>cnp.PyArray_DATA(X),
                                           <float *>cnp.PyArray_DATA(Y), ap)
            else:
                st = nc_dmaxpool2d_forward(&g, <const double *>cnp.PyArray_DATA(X),
                                           <double *>cnp.PyArray_DATA(Y), ap)
        else:
            if t == F32:
                st = nc_savgpool2d_forward(&g, <const float *>cnp.PyArray_DATA(X),
                                           <float *>cnp.PyArray_DATA(Y))
            else:
                st = nc_davgpool2d_forward(&g, <const double *>cnp.PyArray_DATA(X),
                                           <double *>cnp.PyArray_DATA(Y))
    _check_status(st)
    return Y, A


def pool2d_backward(str mode, x_shape, dy, pool_size, strides=None, str padding="valid",
                    argmax=None, out=None):
    """dL/dx (shape x_shape) of a pooling from dy; max pooling needs the forward's argmax."""
    cdef cnp.ndarray DY = _real(dy, "dy"), DX, A = None
    cdef nc_pool2d_geom g
    cdef nc_status st = NC_OK
    cdef int t = cnp.PyArray_TYPE(DY)
    cdef const int32_t *ap = NULL
    cdef bint is_max = mode == "max"
    if mode not in ("max", "avg"):
        raise ValueError(f"mode must be 'max' or 'avg', got {mode!r}")
    x_shape = tuple(int(d) for d in x_shape)
    _pool_geom(x_shape, pool_size, strides, padding, &g)
    if _shape(DY) != (g.n, g.oh, g.ow, g.c):
        raise ValueError(f"dy has shape {_shape(DY)}; inputs of shape {x_shape} pool to "
                         f"{(g.n, g.oh, g.ow, g.c)}")
    DX = _out(out, "out", t, x_shape)
    _no_overlap(DX, "out", DY, "dy")
    if mode == "max":
        if argmax is None:
            raise ValueError("max pooling's backward needs the forward's argmax")
        A = _argmax_buf(argmax, (g.n, g.oh, g.ow, g.c))
        # the kernel indexes dx with it: every entry must name a pixel
        if A.size and (A.min() < 0 or A.max() >= g.h * g.w):
            raise ValueError(f"argmax holds pixels outside the {g.h} x {g.w} images")
        _no_overlap(DX, "out", A, "argmax")
        ap = <const int32_t *>cnp.PyArray_DATA(A)
    with nogil:
        if is_max:
            if t == F32:
                st = nc_smaxpool2d_backward(&g, ap, <const float *>cnp.PyArray_DATA(DY),
                                            <float *>cnp.PyArray_DATA(DX))
            else:
                st = nc_dmaxpool2d_backward(&g, ap, <const double *>cnp.PyArray_DATA(DY),
                                            <double *>cnp.PyArray_DATA(DX))
        else:
            if t == F32:
                st = nc_savgpool2d_backward(&g, <const float *>cnp.PyArray_DATA(DY),
                                            <float *>cnp.PyArray_DATA(DX))
            else:
                st = nc_davgpool2d_backward(&g, <const double *>cnp.PyArray_DATA(DY),
                                            <double *>cnp.PyArray_DATA(DX))
    _check_status(st)
    return DX


# ==========================================================================
# Recurrent layers (csrc/rnn.c)
# ==========================================================================

RNN_CELLS = {"simple": NC_RNN_SIMPLE, "lstm": NC_RNN_LSTM, "gru": NC_RNN_GRU,
             "gru_reset_before": NC_RNN_GRU_RESET_BEFORE}


cdef int _rnn_desc(nc_rnn_desc *d, int cell, Py_ssize_t n, Py_ssize_t t, Py_ssize_t i,
                   Py_ssize_t u, int act, double param, bint go_backwards) except -1:
    if cell < 0 or cell >= NC_RNN_COUNT_:
        raise ValueError(f"unknown recurrent cell code {cell}")
    if n < 1 or t < 1 or i < 1 or u < 1:
        raise ValueError(f"a recurrent layer needs at least one sample, step, input and unit; "
                         f"got batch {n}, steps {t}, inputs {i}, units {u}")
    if cell == NC_RNN_SIMPLE:
        _check_act(act, param)
        if act == NC_ACT_SOFTMAX or act == NC_ACT_LOG_SOFTMAX:
            raise ValueError("a SimpleRNN's activation must be element-wise, not a softmax")
    d.cell = <nc_rnn_cell>cell
    d.batch, d.steps, d.inputs, d.units = n, t, i, u
    d.act = <nc_act>act
    d.param = param
    d.go_backwards = go_backwards
    return 0


def rnn_sizes(int cell, Py_ssize_t batch, Py_ssize_t steps, Py_ssize_t inputs,
              Py_ssize_t units):
    """(cache elements, backward scratch elements) of a recurrent pass."""
    cdef nc_rnn_desc d
    _rnn_desc(&d, cell, batch, steps, inputs, units, NC_ACT_TANH, 0.0, False)
    return nc_rnn_cache_size(&d), nc_rnn_work_size(&d)


cdef cnp.ndarray _rnn_in(object a, str name, int t, tuple shape):
    """An optional input of a recurrent pass: checked dtype and shape, or None."""
    cdef cnp.ndarray A
    if a is None:
        return None
    A = _real(a, name)
    if cnp.PyArray_TYPE(A) != t:
        raise TypeError(f"{name} has dtype {A.dtype} but x is "
                        f"{np.dtype(np.float32 if t == F32 else np.float64)}; pass them in one dtype")
    if _shape(A) != shape:
        raise ValueError(f"{name} has shape {_shape(A)}; it needs {shape}")
    return A


cdef cnp.ndarray _rnn_mask(object mask, tuple shape):
    cdef cnp.ndarray M
    if mask is None:
        return None
    M = np.asarray(mask)
    if M.dtype.kind not in "biu":
        raise TypeError(f"mask has dtype {M.dtype}; it must be boolean (True = a real step)")
    if _shape(M) != shape:
        raise ValueError(f"mask has shape {_shape(M)}; it needs (batch, steps) = {shape}")
    return np.ascontiguousarray(M != 0, dtype=np.uint8)


cdef inline void *_ptr(object a):
    return NULL if a is None else cnp.PyArray_DATA(a)


cdef int _rnn_apart(list outs, list ins) except -1:
    """Every output apart from every input and from every other output."""
    for i, (O, oname) in enumerate(outs):
        if O is None:
            continue
        for I, iname in ins:
            if I is not None:
                _no_overlap(O, oname, I, iname)
        for O2, oname2 in outs[i + 1:]:
            if O2 is not None:
                _no_overlap(O2, oname2, O, oname)
    return 0


def rnn_forward(int cell, x, kernel, recurrent_kernel, bias=None, h0=None, c0=None,
                mask=None, rmask=None, int act=NC_ACT_TANH, double param=0.0,
                bint go_backwards=False, bint return_sequences=False,
                y_seq=None, h_last=None, c_last=None, cache=None):
    """A recurrent layer over whole sequences x (batch, steps, inputs).

    Weights in Keras' layouts (see csrc/nncore.h). h0, c0 (batch, units): the
    initial state (None: zeros; c0 only for "lstm"); mask (batch, steps),
    False at padded steps; rmask (batch, units): a recurrent dropout mask.
    Returns (y_seq or None, h_last, c_last or None, cache); pass the cache to
    rnn_backward unchanged.
    """
    cdef cnp.ndarray X = _real(x, "x"), W, R, B, H0, C0, M, RM
    cdef cnp.ndarray Y = None, HL, CL = None, CA
    cdef nc_rnn_desc d
    cdef Py_ssize_t n, t, i, u, g
    cdef int typ = cnp.PyArray_TYPE(X)
    cdef nc_status st
    _ndim(X, "x", 3)
    n, t, i = X.shape[0], X.shape[1], X.shape[2]
    if cell < 0 or cell >= NC_RNN_COUNT_:
        raise ValueError(f"unknown recurrent cell code {cell}")
    g = nc_rnn_gates(<nc_rnn_cell>cell)
    R = _real(recurrent_kernel, "recurrent_kernel")
    _ndim(R, "recurrent_kernel", 2)
    u = R.shape[0]
    _rnn_desc(&d, cell, n, t, i, u, act, param, go_backwards)
    W = _rnn_in(kernel, "kernel", typ, (i, g * u))
    R = _rnn_in(R, "recurrent_kernel", typ, (u, g * u))
    bshape = (2, g * u) if cell == NC_RNN_GRU else (1, g * u)
    bshape = bshape if cell == NC_RNN_GRU else bshape[1:]
    B = _rnn_in(bias, "bias", typ, bshape)
    H0 = _rnn_in(h0, "h0", typ, (n, u))
    C0 = _rnn_in(c0, "c0", typ, (n, u)) if cell == NC_RNN_LSTM else None
    if c0 is not None and cell != NC_RNN_LSTM:
        raise ValueError("only an LSTM has a cell state (c0)")
    M = _rnn_mask(mask, (n, t))
    RM = _rnn_in(rmask, "rmask", typ, (n, u))
    if return_sequences:
        Y = _out(y_seq, "y_seq", typ, (n, t, u))
    HL = _out(h_last, "h_last", typ, (n, u))
    if cell == NC_RNN_LSTM:
        CL = _out(c_last, "c_last", typ, (n, u))
    CA = _out(cache, "cache", typ, (<Py_ssize_t>nc_rnn_cache_size(&d),))
    _rnn_apart([(Y, "y_seq"), (HL, "h_last"), (CL, "c_last"), (CA, "cache")],
               [(X, "x"), (W, "kernel"), (R, "recurrent_kernel"), (B, "bias"), (H0, "h0"),
                (C0, "c0"), (RM, "rmask")])
    cdef void *p[12]
    for k, A in enumerate((X, W, R, B, H0, C0, M, RM, Y, HL, CL, CA)):
        p[k] = _ptr(A)
    if typ == F32:
        with nogil:
            st = nc_srnn_forward(&d, <const float *>p[0], <const float *>p[1],
                                 <const float *>p[2], <const float *>p[3],
                                 <const float *>p[4], <const float *>p[5],
                                 <const uint8_t *>p[6], <const float *>p[7],
                                 <float *>p[8], <float *>p[9], <float *>p[10], <float *>p[11])
    else:
        with nogil:
            st = nc_drnn_forward(&d, <const double *>p[0], <const double *>p[1],
                                 <const double *>p[2], <const double *>p[3],
                                 <const double *>p[4], <const double *>p[5],
                                 <const uint8_t *>p[6], <const double *>p[7],
                                 <double *>p[8], <double *>p[9], <double *>p[10],
                                 <double *>p[11])
    _check_status(st)
    return Y, HL, CL, CA


def rnn_backward(int cell, x, kernel, recurrent_kernel, cache, dy_seq=None, dh_last=None,
                 dc_last=None, mask=None, rmask=None, int act=NC_ACT_TANH, double param=0.0,
                 bint go_backwards=False, bint has_bias=True, bint want_dx=True,
                 bint want_dweights=True, bint want_dstate=False, dx=None, dkernel=None,
                 drecurrent=None, dbias=None, dh0=None, dc0=None, work=None):
    """Backward through time after rnn_forward (same arguments and its cache).

    dy_seq (batch, steps, units), dh_last, dc_last (batch, units): incoming
    gradients (None = zero). Returns (dx, dkernel, drecurrent, dbias, dh0,
    dc0), None where not wanted (dbias without a bias, dc0 but for "lstm").
    """
    cdef cnp.ndarray X = _real(x, "x"), W, R, CA, DY, DHL, DCL, M, RM
    cdef cnp.ndarray DX = None, DW = None, DR = None, DB = None, DH0 = None, DC0 = None, WK
    cdef nc_rnn_desc d
    cdef Py_ssize_t n, t, i, u, g
    cdef int typ = cnp.PyArray_TYPE(X)
    cdef nc_status st
    _ndim(X, "x", 3)
    n, t, i = X.shape[0], X.shape[1], X.shape[2]
    if cell < 0 or cell >= NC_RNN_COUNT_:
        raise ValueError(f"unknown recurrent cell code {cell}")
    g = nc_rnn_gates(<nc_rnn_cell>cell)
    R = _real(recurrent_kernel, "recurrent_kernel")
    _ndim(R, "recurrent_kernel", 2)
    u = R.shape[0]
    _rnn_desc(&d, cell, n, t, i, u, act, param, go_backwards)
    W = _rnn_in(kernel, "kernel", typ, (i, g * u))
    R = _rnn_in(R, "recurrent_kernel", typ, (u, g * u))
    CA = _rnn_in(cache, "cache", typ, (<Py_ssize_t>nc_rnn_cache_size(&d),))
    DY = _rnn_in(dy_seq, "dy_seq", typ, (n, t, u))
    DHL = _rnn_in(dh_last, "dh_last", typ, (n, u))
    DCL = _rnn_in(dc_last, "dc_last", typ, (n, u)) if cell == NC_RNN_LSTM else None
    M = _rnn_mask(mask, (n, t))
    RM = _rnn_in(rmask, "rmask", typ, (n, u))
    if want_dx:
        DX = _out(dx, "dx", typ, (n, t, i))
    if want_dweights:
        DW = _out(dkernel, "dkernel", typ, (i, g * u))
        DR = _out(drecurrent, "drecurrent", typ, (u, g * u))
        if has_bias:
            bshape = (2, g * u) if cell == NC_RNN_GRU else (1, g * u)
            bshape = bshape if cell == NC_RNN_GRU else bshape[1:]
            DB = _out(dbias, "dbias", typ, bshape)
    if want_dstate:
        DH0 = _out(dh0, "dh0", typ, (n, u))
        if cell == NC_RNN_LSTM:
            DC0 = _out(dc0, "dc0", typ, (n, u))
    WK = _out(work, "work", typ, (<Py_ssize_t>nc_rnn_work_size(&d),))
    _rnn_apart([(DX, "dx"), (DW, "dkernel"), (DR, "drecurrent"), (DB, "dbias"),
                (DH0, "dh0"), (DC0, "dc0"), (WK, "work")],
               [(X, "x"), (W, "kernel"), (R, "recurrent_kernel"), (CA, "cache"),
                (DY, "dy_seq"), (DHL, "dh_last"), (DCL, "dc_last"), (RM, "rmask")])
    cdef void *p[17]
    for k, A in enumerate((X, W, R, M, RM, CA, DY, DHL, DCL, DX, DW, DR, DB, DH0, DC0, WK)):
        p[k] = _ptr(A)
    if typ == F32:
        with nogil:
            st = nc_srnn_backward(&d, <const float *>p[0], <const float *>p[1],
                                  <const float *>p[2], <const uint8_t *>p[3],
                                  <const float *>p[4], <const float *>p[5],
                                  <const float *>p[6], <const float *>p[7],
                                  <const float *>p[8], <float *>p[9], <float *>p[10],
                                  <float *>p[11], <float *>p[12], <float *>p[13],
                                  <float *>p[14], <float *>p[15])
    else:
        with nogil:
            st = nc_drnn_backward(&d, <const double *>p[0], <const double *>p[1],
                                  <const double *>p[2], <const uint8_t *>p[3],
                                  <const double *>p[4], <const double *>p[5],
                                  <const double *>p[6], <const double *>p[7],
                                  <const double *>p[8], <double *>p[9], <double *>p[10],
                                  <double *>p[11], <double *>p[12], <double *>p[13],
                                  <double *>p[14], <double *>p[15])
    _check_status(st)
    return DX, DW, DR, DB, DH0, DC0


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


# ---- batch normalisation (csrc/norm_impl.h) ----

cdef cnp.ndarray _channel_vector(object v, str name, cnp.ndarray X, Py_ssize_t c, bint inplace):
    """A (c,) parameter of X's dtype: read (copied if need be) or updated in place."""
    cdef cnp.ndarray arr = _inplace(v, name) if inplace else _real(v, name)
    _same_dtype(arr, name, X, "x")
    if cnp.PyArray_NDIM(arr) != 1 or arr.shape[0] != c:
        raise ValueError(f"{name} has shape {_shape(arr)}; x has {c} channels, so ({c},)")
    return arr


def batchnorm_forward(x, gamma, beta, moving_mean, moving_variance, double momentum,
                      double epsilon, bint training, out=None, xhat=None):
    """Batch normalisation over the last axis of x (all leading axes are the batch).

    Returns ``(y, xhat, mean, inv_std)``: the output, the normalised input and
    the per-channel statistics used (the batch's in training, when
    ``moving_mean`` and ``moving_variance`` are also updated in place; the
    moving ones otherwise). ``gamma``/``beta`` may be None (1 and 0). ``out``
    and ``xhat``, when given, receive y and xhat (x's shape and dtype).
    """
    cdef cnp.ndarray X = _real(x, "x"), G = None, B = None, MM, MV, Y, XH, M, S
    cdef Py_ssize_t n, c
    if cnp.PyArray_NDIM(X) < 1:
        raise ValueError("x must have a channels axis")
    n, c = _rows_cols(X)
    if not (0 <= momentum <= 1):
        raise ValueError(f"momentum must lie in [0, 1], got {momentum}")
    if not (epsilon > 0 and isfinite(epsilon)):
        raise ValueError(f"epsilon must be finite and > 0, got {epsilon}")
    if training and n == 0:
        raise ValueError("a training batch of 0 samples has no statistics to normalise with")
    if gamma is not None:
        G = _channel_vector(gamma, "gamma", X, c, False)
    if beta is not None:
        B = _channel_vector(beta, "beta", X, c, False)
    MM = _channel_vector(moving_mean, "moving_mean", X, c, True)
    MV = _channel_vector(moving_variance, "moving_variance", X, c, True)
    _no_overlap(MM, "moving_mean", MV, "moving_variance")
    Y = _out(out, "out", cnp.PyArray_TYPE(X), _shape(X))
    XH = _out(xhat, "xhat", cnp.PyArray_TYPE(X), _shape(X))
    _no_overlap(Y, "out", X, "x")
    _no_overlap(XH, "xhat", X, "x")
    _no_overlap(XH, "xhat", Y, "out")
    M = _out(None, "mean", cnp.PyArray_TYPE(X), (c,))
    S = _out(None, "inv_std", cnp.PyArray_TYPE(X), (c,))
    if cnp.PyArray_TYPE(X) == F32:
        with nogil:
            nc_sbatchnorm_forward(n, c, <const float *>cnp.PyArray_DATA(X),
                                  <const float *>(cnp.PyArray_DATA(G) if G is not None else NULL),
                                  <const float *>(cnp.PyArray_DATA(B) if B is not None else NULL),
                                  <float *>cnp.PyArray_DATA(MM), <float *>cnp.PyArray_DATA(MV),
                                  momentum, epsilon, training, <float *>cnp.PyArray_DATA(M),
                                  <float *>cnp.PyArray_DATA(S), <float *>cnp.PyArray_DATA(XH),
                                  <float *>cnp.PyArray_DATA(Y))
    else:
        with nogil:
            nc_dbatchnorm_forward(n, c, <const double *>cnp.PyArray_DATA(X),
                                  <const double *>(cnp.PyArray_DATA(G) if G is not None else NULL),
                                  <const double *>(cnp.PyArray_DATA(B) if B is not None else NULL),
                                  <double *>cnp.PyArray_DATA(MM), <double *>cnp.PyArray_DATA(MV),
                                  momentum, epsilon, training, <double *>cnp.PyArray_DATA(M),
                                  <double *>cnp.PyArray_DATA(S), <double *>cnp.PyArray_DATA(XH),
                                  <double *>cnp.PyArray_DATA(Y))
    return Y, XH, M, S


def batchnorm_backward(dy, xhat, inv_std, gamma, bint training, out=None, dgamma=None,
                       dbeta=None):
    """The gradients of batchnorm_forward: ``(dx, dgamma, dbeta)``.

    ``xhat`` and ``inv_std`` are what the forward returned; ``training`` as it
    was there (in training the batch statistics depend on x too).
    """
    cdef cnp.ndarray DY = _real(dy, "dy"), XH = _real(xhat, "xhat"), S, G = None, DX, DG, DB
    cdef Py_ssize_t n, c
    if cnp.PyArray_NDIM(DY) < 1:
        raise ValueError("dy must have a channels axis")
    _same_dtype(DY, "dy", XH, "xhat")
    if _shape(XH) != _shape(DY):
        raise ValueError(f"xhat has shape {_shape(XH)} but dy has {_shape(DY)}")
    n, c = _rows_cols(DY)
    S = _channel_vector(inv_std, "inv_std", DY, c, False)
    if gamma is not None:
        G = _channel_vector(gamma, "gamma", DY, c, False)
    DX = _out(out, "out", cnp.PyArray_TYPE(DY), _shape(DY))
    DG = _out(dgamma, "dgamma", cnp.PyArray_TYPE(DY), (c,))
    DB = _out(dbeta, "dbeta", cnp.PyArray_TYPE(DY), (c,))
    _no_overlap(DX, "out", DY, "dy")
    _no_overlap(DX, "out", XH, "xhat")
    _no_overlap(DG, "dgamma", DB, "dbeta")
    if cnp.PyArray_TYPE(DY) == F32:
        with nogil:
            nc_sbatchnorm_backward(n, c, <const float *>cnp.PyArray_DATA(DY),
                                   <const float *>cnp.PyArray_DATA(XH),
                                   <const float *>cnp.PyArray_DATA(S),
                                   <const float *>(cnp.PyArray_DATA(G) if G is not None else NULL),
                                   training, <float *>cnp.PyArray_DATA(DG),
                                   <float *>cnp.PyArray_DATA(DB), <float *>cnp.PyArray_DATA(DX))
    else:
        with nogil:
            nc_dbatchnorm_backward(n, c, <const double *>cnp.PyArray_DATA(DY),
                                   <const double *>cnp.PyArray_DATA(XH),
                                   <const double *>cnp.PyArray_DATA(S),
                                   <const double *>(cnp.PyArray_DATA(G) if G is not None else NULL),
                                   training, <double *>cnp.PyArray_DATA(DG),
                                   <double *>cnp.PyArray_DATA(DB), <double *>cnp.PyArray_DATA(DX))
    return DX, DG, DB


# ==========================================================================
# Whole epochs of a training plan (csrc/plan_impl.h nc_?plan_fit)
# (helper branch `s2-train`; owns everything from here to the end of the file)
# ==========================================================================

def plan_fit(TrainPlan plan, OptimStepper stepper, x, y, order, Py_ssize_t batch,
             Py_ssize_t first, Py_ssize_t count, int loss, int reduction, bint sparse,
             int out_act, double out_param, params, grads, state, int64_t step, lrs,
             list penalties, list metrics, double loss_sum, metric_sums, owner=None):
    """Batches [first, first + count) of an epoch over (x, y) in ``order``
    (int64 permutation, or None), each one plan step, the penalties and one
    optimizer step, as the per-batch loop (plan.step, regularizers, apply)
    would run them. ``lrs``: one learning rate per batch; ``penalties``:
    (w, g, l1, l2, last_of_its_layer) tuples; ``metrics``: (code, threshold).
    Returns (batches done, loss_sum); metric_sums (float64) is updated in place,
    and the owner's (an optimizer's) ``iterations`` becomes step + batches done
    with no Python code between (so an interrupt cannot leave the two apart).
    x may be uint8 (C-contiguous; images as loaded): its batches are read as
    the plan's reals in C, with the bits of training on x converted."""
    cdef cnp.ndarray X = _plan_fit_x(x), Y, O = None, P, G, S, LR, MS, W, GR
    cdef bint x_u8 = cnp.PyArray_TYPE(X) == cnp.NPY_UINT8
    cdef cnp.ndarray XB, YB, PB
    cdef Py_ssize_t n, n_out = plan.n_out, j, n_pen = len(penalties), n_met = len(metrics)
    cdef nc_plan_fit f
    cdef nc_status st
    cdef void **pen_w = NULL
    cdef void **pen_g = NULL
    cdef size_t *pen_n = NULL
    cdef double *pen_l1 = NULL
    cdef double *pen_l2 = NULL
    cdef int *pen_end = NULL
    cdef int *met = NULL
    cdef double *thr = NULL
    cdef list keep = []
    np_dtype = np.float32 if plan.typenum == F32 else np.float64
    if (not x_u8 and cnp.PyArray_TYPE(X) != plan.typenum) or cnp.PyArray_NDIM(X) != 2 \
            or X.shape[1] != plan.n_in:
        raise ValueError(f"x must be (n, {plan.n_in}) of the plan's dtype ({np.dtype(np_dtype)}) "
                         f"or uint8, got {X.dtype} {_shape(X)}")
    n = X.shape[0]
    if batch < 1 or first < 0 or count < 0 or (first + count - 1) * batch >= n and count > 0:
        raise ValueError("batches out of range")
    if loss < 0 or loss >= NC_LOSS_COUNT_ or reduction < 0 or reduction > NC_REDUCE_NONE:
        raise ValueError("unknown loss or reduction code")
    if plan.fuse_last and loss != NC_LOSS_CCE_LOGITS and loss != NC_LOSS_BCE_LOGITS:
        raise ValueError("a fused output activation needs a from-logits loss")
    _check_act(out_act, out_param)
    if sparse:
        if loss != NC_LOSS_CCE and loss != NC_LOSS_CCE_LOGITS:
            raise ValueError("integer labels go with categorical cross-entropy")
        Y = _labels(y, n, n_out, "y")
    else:
        Y = _real(y, "y")
        if cnp.PyArray_TYPE(Y) != plan.typenum or _shape(Y) != (n, n_out):
            raise ValueError(f"y must be ({n}, {n_out}) of the plan's dtype, got {_shape(Y)}")
    if order is not None:
        O = np.ascontiguousarray(order, dtype=np.int64)
        if _shape(O) != (n,) or (n and (O.min() < 0 or O.max() >= n)):
            raise ValueError(f"order must be a permutation of 0 .. {n - 1}")
    P = _inplace(params, "params")
    G = _contig_ro(grads, "grads")
    S = _inplace(state, "state")
    if (cnp.PyArray_TYPE(P) != plan.typenum or cnp.PyArray_TYPE(G) != plan.typenum
            or cnp.PyArray_TYPE(S) != plan.typenum or cnp.PyArray_SIZE(G) != cnp.PyArray_SIZE(P)):
        raise ValueError("params, grads and state must be of the plan's dtype, grads as params")
    if cnp.PyArray_NDIM(S) != 1 or <size_t>cnp.PyArray_SIZE(S) != nc_optim_state_size(&stepper.cfg, cnp.PyArray_SIZE(P)):
        raise ValueError(f"state has shape {_shape(S)}; not this optimizer's")
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    LR = np.ascontiguousarray(lrs, dtype=np.float64)
    if _shape(LR) != (count,) or not np.all(np.isfinite(LR) & (LR >= 0)):
        raise ValueError("one finite learning rate >= 0 per batch is needed")
    MS = metric_sums
    if not (cnp.PyArray_Check(MS) and cnp.PyArray_TYPE(MS) == cnp.NPY_FLOAT64
            and _shape(MS) == (n_met,) and cnp.PyArray_IS_C_CONTIGUOUS(MS)):
        raise ValueError(f"metric_sums must be a contiguous float64 ({n_met},) array")
    plan._reserve(batch)
    XB = np.empty((batch, plan.n_in), np_dtype)
    YB = np.empty(batch, np.int64) if sparse else np.empty((batch, n_out), np_dtype)
    PB = np.empty((batch, n_out), np_dtype)
    try:
        pen_w = <void **>PyMem_Malloc((n_pen + 1) * sizeof(void *))
        pen_g = <void **>PyMem_Malloc((n_pen + 1) * sizeof(void *))
        pen_n = <size_t *>PyMem_Malloc((n_pen + 1) * sizeof(size_t))
        pen_l1 = <double *>PyMem_Malloc((n_pen + 1) * sizeof(double))
        pen_l2 = <double *>PyMem_Malloc((n_pen + 1) * sizeof(double))
        pen_end = <int *>PyMem_Malloc((n_pen + 1) * sizeof(int))
        met = <int *>PyMem_Malloc((n_met + 1) * sizeof(int))
        thr = <double *>PyMem_Malloc((n_met + 1) * sizeof(double))
        if (pen_w == NULL or pen_g == NULL or pen_n == NULL or pen_l1 == NULL or pen_l2 == NULL
                or pen_end == NULL or met == NULL or thr == NULL):
            raise MemoryError()
        for j in range(n_pen):
            w, g, l1, l2, end = penalties[j]
            W = _contig_ro(w, "w")
            GR = _inplace(g, "g")
            if (cnp.PyArray_TYPE(W) != plan.typenum or cnp.PyArray_TYPE(GR) != plan.typenum
                    or cnp.PyArray_SIZE(W) != cnp.PyArray_SIZE(GR)):
                raise ValueError("a penalty's w and g must be the same size, of the plan's dtype")
            if not (isfinite(l1) and isfinite(l2) and l1 >= 0 and l2 >= 0):
                raise ValueError(f"l1 and l2 must be finite and >= 0, got {l1}, {l2}")
            keep.append(W)
            keep.append(GR)
            pen_w[j] = cnp.PyArray_DATA(W)
            pen_g[j] = cnp.PyArray_DATA(GR)
            pen_n[j] = cnp.PyArray_SIZE(W)
            pen_l1[j] = l1
            pen_l2[j] = l2
            pen_end[j] = 1 if end else 0
        for j in range(n_met):
            code, threshold = metrics[j]
            if code not in (NC_METRIC_ACC_SPARSE, NC_METRIC_ACC_ARGMAX, NC_METRIC_ACC_THRESHOLD):
                raise ValueError(f"unknown metric code {code}")
            if code == NC_METRIC_ACC_SPARSE and not sparse:
                raise ValueError("the sparse accuracy needs integer labels")
            if code != NC_METRIC_ACC_SPARSE and sparse:
                raise ValueError("this accuracy needs targets, not labels")
            met[j] = code
            thr[j] = threshold
        f.n = n
        f.batch = batch
        f.x = cnp.PyArray_DATA(X)
        f.x_u8 = 1 if x_u8 else 0
        f.labels = <const int64_t *>cnp.PyArray_DATA(Y) if sparse else NULL
        f.t = NULL if sparse else cnp.PyArray_DATA(Y)
        f.order = NULL if O is None else <const int64_t *>cnp.PyArray_DATA(O)
        f.first = first
        f.count = count
        f.fuse_last = plan.fuse_last
        f.loss = <nc_loss>loss
        f.reduction = <nc_reduction>reduction
        f.out_act = <nc_act>out_act
        f.out_param = out_param
        f.opt = &stepper.cfg
        f.lr = <const double *>cnp.PyArray_DATA(LR)
        f.n_params = cnp.PyArray_SIZE(P)
        f.params = cnp.PyArray_DATA(P)
        f.grads = cnp.PyArray_DATA(G)
        f.state = cnp.PyArray_DATA(S)
        f.step = step
        f.n_pen = n_pen
        f.pen_w = pen_w
        f.pen_g = pen_g
        f.pen_n = pen_n
        f.pen_l1 = pen_l1
        f.pen_l2 = pen_l2
        f.pen_end = pen_end
        f.n_metrics = n_met
        f.metric = met
        f.threshold = thr
        f.outputs = plan.outputs
        f.grad_w = plan.grad_w
        f.grad_b = plan.grad_b
        f.work = cnp.PyArray_DATA(plan.work_buf)
        f.xb = cnp.PyArray_DATA(XB)
        f.yb = cnp.PyArray_DATA(YB)
        f.probs = cnp.PyArray_DATA(PB)
        f.loss_sum = loss_sum
        f.metric_sum = <double *>cnp.PyArray_DATA(MS)
        f.batch_loss = NULL
        f.done = 0
        if plan.typenum == F32:
            with nogil:
                st = nc_splan_fit(plan.n_steps, plan.steps32, &f)
        else:
            with nogil:
                st = nc_dplan_fit(plan.n_steps, plan.steps64, &f)
        if owner is not None:
            object.__setattr__(owner, "iterations", step + <int64_t>f.done)
        _check_status(st)
        return f.done, f.loss_sum
    finally:
        PyMem_Free(pen_w)
        PyMem_Free(pen_g)
        PyMem_Free(pen_n)
        PyMem_Free(pen_l1)
        PyMem_Free(pen_l2)
        PyMem_Free(pen_end)
        PyMem_Free(met)
        PyMem_Free(thr)

def _plan_fit_x(x):
    """plan_fit's x: a uint8 array as it is (C-contiguous, else a clear
    error: a strided view would be copied whole, the cost uint8 input saves),
    anything else through _real."""
    if cnp.PyArray_Check(x) and cnp.PyArray_TYPE(<cnp.ndarray>x) == cnp.NPY_UINT8:
        if not cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray>x):
            raise ValueError("a uint8 x must be C-contiguous (np.ascontiguousarray(x)), got "
                             "a strided view")
        return x
    if cnp.PyArray_Check(x) and (<cnp.ndarray>x).dtype.kind in "biu":
        raise TypeError(f"x has dtype {(<cnp.ndarray>x).dtype}; plan_fit takes the plan's "
                        f"float dtype or uint8 (convert it with .astype(np.float32))")
    return _real(x, "x")


PLAN_METRIC_SPARSE = NC_METRIC_ACC_SPARSE
PLAN_METRIC_ARGMAX = NC_METRIC_ACC_ARGMAX
PLAN_METRIC_THRESHOLD = NC_METRIC_ACC_THRESHOLD

cdef extern from "dense_sparse.h":
    int nc_plan_sparse_


def _plan_sparse(int mode):
    """Test hook: training plans' sparse first input, 0 by density, 1 never,
    2 always; returns the previous mode. Not thread-safe."""
    global nc_plan_sparse_
    cdef int previous = nc_plan_sparse_
    if mode not in (0, 1, 2):
        raise ValueError(f"mode must be 0, 1 or 2, got {mode}")
    nc_plan_sparse_ = mode
    return previous


# --------------------------------------------------------------------------
# RBM binary-left products (csrc/rbm_bin.h)
# --------------------------------------------------------------------------

def _rbm_binary_mode(int mode=-1):
    """For tests: the path rbm_update's products take -- 0 chosen by density,
    1 always the dense GEMM, 2 the binary sums whenever the left operand is
    binary. Returns the previous mode (mode -1: only read it)."""
    if mode < -1 or mode > 2:
        raise ValueError(f"mode must be 0, 1 or 2, got {mode}")
    return nc_rbm_set_bin_mode(mode)


def _rbm_binary_count():
    """For tests: how many binary-left products have run in this process."""
    return nc_rbm_bin_count()


# --------------------------------------------------------------------------
# Sparse kernels (csrc/dense_sparse.h): test hooks
# --------------------------------------------------------------------------

from libc.stdint cimport int32_t

cdef extern from "dense_sparse.h":
    nc_status nc_ssparse_rows(size_t m, size_t n, size_t bk, const int32_t *ptr,
                              const int32_t *idx, const float *val, const float *b, size_t ldb,
                              float *c, size_t ldc) nogil
    nc_status nc_dsparse_rows(size_t m, size_t n, size_t bk, const int32_t *ptr,
                              const int32_t *idx, const double *val, const double *b,
                              size_t ldb, double *c, size_t ldc) nogil
    size_t nc_sto_csr(size_t m, size_t k, const float *x, int32_t *ptr, int32_t *idx,
                      float *val) nogil
    size_t nc_dto_csr(size_t m, size_t k, const double *x, int32_t *ptr, int32_t *idx,
                      double *val) nogil
    size_t nc_scount_nonzero(size_t count, const float *x) nogil
    size_t nc_dcount_nonzero(size_t count, const double *x) nogil
    nc_status nc_ssparse_rows_bias_act(size_t m, size_t n, size_t bk, const int32_t *ptr,
                                       const int32_t *idx, const float *val, const float *b,
                                       size_t ldb, float *c, size_t ldc, const float *bias,
                                       nc_act act, float param) nogil
    nc_status nc_dsparse_rows_bias_act(size_t m, size_t n, size_t bk, const int32_t *ptr,
                                       const int32_t *idx, const double *val, const double *b,
                                       size_t ldb, double *c, size_t ldc, const double *bias,
                                       nc_act act, double param) nogil


def _sparse_rows(ptr, idx, val, b, m, int repeat=1, bias=None, int act=-1, double param=0):
    """Test hook: the engine's "rows times" at the level in force. Returns C
    (m x n), row i = sum over e = ptr[i] .. ptr[i+1]-1 of val[e] * b[idx[e], :]
    (each element one chain of multiply-adds in entry order from zero).
    repeat > 1 runs the kernel that many times (for benchmarks: the checks
    here cost more than the kernel). With act (an activation code) C becomes
    act(C + bias) through nc_?sparse_rows_bias_act (bias: n values or None)."""
    b = np.asarray(b)
    if b.dtype != np.float32 and b.dtype != np.float64:
        raise TypeError(f"b must be float32 or float64, got {b.dtype}")
    if b.ndim != 2:
        raise ValueError(f"b must be 2-D, got shape {b.shape}")
    m = int(m)
    if m < 0:
        raise ValueError(f"m must be >= 0, got {m}")
    pa = np.ascontiguousarray(ptr, dtype=np.int32)
    ia = np.ascontiguousarray(idx, dtype=np.int32)
    va = np.ascontiguousarray(val, dtype=b.dtype)
    ba = np.ascontiguousarray(b)
    if pa.shape != (m + 1,):
        raise ValueError(f"ptr must have m + 1 = {m + 1} entries, got shape {pa.shape}")
    if ia.ndim != 1 or va.ndim != 1 or ia.shape != va.shape:
        raise ValueError("idx and val must be 1-D and of one length")
    if pa[0] != 0 or np.any(np.diff(pa) < 0) or pa[m] > ia.shape[0]:
        raise ValueError("ptr must start at 0, not decrease and end within idx")
    if ia.shape[0] and (ia.min() < 0 or ia.max() >= ba.shape[0]):
        raise ValueError(f"idx must lie in [0, {ba.shape[0]})")
    c = np.empty((m, ba.shape[1]), dtype=ba.dtype)
    cdef size_t mm = m, n = ba.shape[1], bk = ba.shape[0]
    cdef cnp.ndarray p = pa, ix = ia, v = va, bb = ba, cc = c
    cdef nc_status st = NC_OK
    cdef int r
    if repeat < 1:
        raise ValueError(f"repeat must be >= 1, got {repeat}")
    if mm == 0 or n == 0:
        return c
    cdef cnp.ndarray bias_a = None
    cdef const void *bias_p = NULL
    cdef bint single
    if act >= 0:
        _check_act(act, param)
        if bias is not None:
            bias_a = np.ascontiguousarray(bias, dtype=ba.dtype)
            if bias_a.ndim != 1 or bias_a.shape[0] != ba.shape[1]:
                raise ValueError(f"bias must have n = {ba.shape[1]} values")
            bias_p = cnp.PyArray_DATA(bias_a)
        single = ba.dtype == np.float32
        with nogil:
            for r in range(repeat):
                if single:
                    st = nc_ssparse_rows_bias_act(mm, n, bk, <const int32_t *>cnp.PyArray_DATA(p),
                                                  <const int32_t *>cnp.PyArray_DATA(ix),
                                                  <const float *>cnp.PyArray_DATA(v),
                                                  <const float *>cnp.PyArray_DATA(bb), n,
                                                  <float *>cnp.PyArray_DATA(cc), n,
                                                  <const float *>bias_p, <nc_act>act,
                                                  <float>param)
                else:
                    st = nc_dsparse_rows_bias_act(mm, n, bk, <const int32_t *>cnp.PyArray_DATA(p),
                                                  <const int32_t *>cnp.PyArray_DATA(ix),
                                                  <const double *>cnp.PyArray_DATA(v),
                                                  <const double *>cnp.PyArray_DATA(bb), n,
                                                  <double *>cnp.PyArray_DATA(cc), n,
                                                  <const double *>bias_p, <nc_act>act, param)
        _check_status(st)
        return c
    if ba.dtype == np.float32:
        with nogil:
            for r in range(repeat):
                st = nc_ssparse_rows(mm, n, bk, <const int32_t *>cnp.PyArray_DATA(p),
                                     <const int32_t *>cnp.PyArray_DATA(ix),
                                     <const float *>cnp.PyArray_DATA(v),
                                     <const float *>cnp.PyArray_DATA(bb), n,
                                     <float *>cnp.PyArray_DATA(cc), n)
    else:
        with nogil:
            for r in range(repeat):
                st = nc_dsparse_rows(mm, n, bk, <const int32_t *>cnp.PyArray_DATA(p),
                                     <const int32_t *>cnp.PyArray_DATA(ix),
                                     <const double *>cnp.PyArray_DATA(v),
                                     <const double *>cnp.PyArray_DATA(bb), n,
                                     <double *>cnp.PyArray_DATA(cc), n)
    _check_status(st)
    return c


def _to_csr(x):
    """Test hook: x (m x k, float32 or float64) to its nonzeros by rows with
    the engine's conversion at the level in force (NaN counts as nonzero).
    Returns (ptr, idx, val)."""
    x = _sparse_input(x)
    room = max(x.size, 1)  # for every entry, as the engine's callers give it
    cdef cnp.ndarray xx = x
    cdef size_t m = x.shape[0], k = x.shape[1], nnz
    cdef cnp.ndarray p = np.empty(m + 1, dtype=np.int32)
    cdef cnp.ndarray ix = np.empty(room, dtype=np.int32)
    cdef cnp.ndarray v = np.empty(room, dtype=x.dtype)
    if x.dtype == np.float32:
        with nogil:
            nnz = nc_sto_csr(m, k, <const float *>cnp.PyArray_DATA(xx),
                             <int32_t *>cnp.PyArray_DATA(p), <int32_t *>cnp.PyArray_DATA(ix),
                             <float *>cnp.PyArray_DATA(v))
    else:
        with nogil:
            nnz = nc_dto_csr(m, k, <const double *>cnp.PyArray_DATA(xx),
                             <int32_t *>cnp.PyArray_DATA(p), <int32_t *>cnp.PyArray_DATA(ix),
                             <double *>cnp.PyArray_DATA(v))
    return p, ix[:nnz].copy(), v[:nnz].copy()


def _count_nonzero(x):
    """Test hook: the engine's count of x's nonzeros (NaN counts) at the level
    in force; x float32 or float64, 2-D."""
    x = _sparse_input(x)
    cdef cnp.ndarray xx = x
    cdef size_t count = x.size, nnz
    if x.dtype == np.float32:
        with nogil:
            nnz = nc_scount_nonzero(count, <const float *>cnp.PyArray_DATA(xx))
    else:
        with nogil:
            nnz = nc_dcount_nonzero(count, <const double *>cnp.PyArray_DATA(xx))
    return nnz


def _sparse_input(x):
    x = np.asarray(x)
    if x.dtype != np.float32 and x.dtype != np.float64:
        raise TypeError(f"x must be float32 or float64, got {x.dtype}")
    if x.ndim != 2:
        raise ValueError(f"x must be 2-D, got shape {x.shape}")
    if x.size > 0x7fffffff:
        raise ValueError("x has more than 2**31 - 1 elements")
    return np.ascontiguousarray(x)


# --------------------------------------------------------------------------
# Byte inputs (csrc/dense_u8.h): test hooks (helper branch `s4-u8`)
# --------------------------------------------------------------------------

cdef extern from "dense_u8.h":
    size_t nc_su8_to_csr(size_t m, size_t k, const uint8_t *x, int32_t *ptr, int32_t *idx,
                         float *val) nogil
    size_t nc_du8_to_csr(size_t m, size_t k, const uint8_t *x, int32_t *ptr, int32_t *idx,
                         double *val) nogil
    void nc_su8_to_real(size_t count, const uint8_t *x, float *y) nogil
    void nc_du8_to_real(size_t count, const uint8_t *x, double *y) nogil


def _u8_to_csr(x, dtype, int repeat=1):
    """Test hook: x (m x k uint8) to its nonzeros by rows, values as float32
    or float64, with the engine's conversion at the level in force. Returns
    (ptr, idx, val). repeat > 1 runs the kernel that many times (benchmarks)."""
    x = np.asarray(x)
    if x.dtype != np.uint8 or x.ndim != 2:
        raise TypeError(f"x must be 2-D uint8, got {x.dtype} {x.shape}")
    if x.size > 0x7fffffff:
        raise ValueError("x has more than 2**31 - 1 elements")
    dt = np.dtype(dtype)
    if dt != np.float32 and dt != np.float64:
        raise TypeError(f"dtype must be float32 or float64, got {dt}")
    if repeat < 1:
        raise ValueError(f"repeat must be >= 1, got {repeat}")
    x = np.ascontiguousarray(x)
    room = max(x.size, 1)
    cdef cnp.ndarray xx = x
    cdef size_t m = x.shape[0], k = x.shape[1], nnz = 0
    cdef cnp.ndarray p = np.empty(m + 1, dtype=np.int32)
    cdef cnp.ndarray ix = np.empty(room, dtype=np.int32)
    cdef cnp.ndarray v = np.empty(room, dtype=dt)
    cdef int r
    if dt == np.float32:
        with nogil:
            for r in range(repeat):
                nnz = nc_su8_to_csr(m, k, <const uint8_t *>cnp.PyArray_DATA(xx),
                                    <int32_t *>cnp.PyArray_DATA(p),
                                    <int32_t *>cnp.PyArray_DATA(ix),
                                    <float *>cnp.PyArray_DATA(v))
    else:
        with nogil:
            for r in range(repeat):
                nnz = nc_du8_to_csr(m, k, <const uint8_t *>cnp.PyArray_DATA(xx),
                                    <int32_t *>cnp.PyArray_DATA(p),
                                    <int32_t *>cnp.PyArray_DATA(ix),
                                    <double *>cnp.PyArray_DATA(v))
    return p, ix[:nnz].copy(), v[:nnz].copy()


def _u8_to_real(x, dtype):
    """Test hook: the engine's bytes-to-reals conversion of x (uint8, any shape)."""
    x = np.ascontiguousarray(x)
    if x.dtype != np.uint8:
        raise TypeError(f"x must be uint8, got {x.dtype}")
    dt = np.dtype(dtype)
    if dt != np.float32 and dt != np.float64:
        raise TypeError(f"dtype must be float32 or float64, got {dt}")
    cdef cnp.ndarray xx = x
    cdef cnp.ndarray y = np.empty(x.shape, dtype=dt)
    cdef size_t count = x.size
    if dt == np.float32:
        with nogil:
            nc_su8_to_real(count, <const uint8_t *>cnp.PyArray_DATA(xx),
                           <float *>cnp.PyArray_DATA(y))
    else:
        with nogil:
            nc_du8_to_real(count, <const uint8_t *>cnp.PyArray_DATA(xx),
                           <double *>cnp.PyArray_DATA(y))
    return y
