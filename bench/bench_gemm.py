"""GEMM: nncore.ops.matmul beside numpy.matmul (OpenBLAS), same run, same arrays.

    python -m pytest bench/bench_gemm.py                      # full timing
    BENCH_QUICK=1 python -m pytest bench/bench_gemm.py        # does it run?
    python -m pytest bench/bench_gemm.py -k "t1"              # one thread only

Single-threaded cases (t1: nncore and NumPy's BLAS both at one thread) come
first; tall cases are repeated with every thread (tall). The small cases
measure the whole Python call, boundary included, as a user sees it.

On a shared, busy machine time the single-threaded cases in CPU time, which
descheduling does not inflate (both peers run on the calling thread there):

    python -m pytest bench/bench_gemm.py -k t1 --benchmark-timer=time.thread_time
"""
import numpy as np
import pytest

from conftest import limited_threads

from nncore import _core, ops

BIG = [((256, 1024, 1024), np.float32), ((256, 784, 1024), np.float32),
       ((1024, 1024, 1024), np.float32), ((1024, 1024, 1024), np.float64)]
SMALL = [((32, 64, 32), np.float32), ((1, 256, 64), np.float32),
         ((32, 64, 32), np.float64), ((1, 256, 64), np.float64)]
IMPLS = ["numpy", "nncore"]


def _ids(case):
    (m, k, n), dt = case
    return f"{m}x{k}x{n}-{np.dtype(dt).name}"


def _operands(m, k, n, dtype):
    rng = np.random.default_rng(0)
    return (rng.standard_normal((m, k)).astype(dtype), rng.standard_normal((k, n)).astype(dtype),
            np.empty((m, n), dtype))


def _fn(impl, a, b, out, alloc):
    """The timed call, and one that leaves its result in out (for the check)."""
    mm = np.matmul if impl == "numpy" else ops.matmul
    if alloc:
        return (lambda: mm(a, b)), (lambda: np.copyto(out, mm(a, b)))
    fn = lambda: mm(a, b, out=out)  # noqa: E731
    return fn, fn


def _bench(run, peer_table, case, impl, threads, label, alloc=False):
    (m, k, n), dtype = case
    a, b, out = _operands(m, k, n, dtype)
    fn, check = _fn(impl, a, b, out, alloc)
    # filed before timing: pytest-benchmark takes the group when the run starts
    peer_table(f"{_ids(case)} {label} [{_core.get_isa()}]", impl, 2.0 * m * n * k)
    with limited_threads(threads):
        check()
        np.testing.assert_allclose(out, a.astype(np.float64) @ b, rtol=1e-3, atol=1e-3 * k ** 0.5)
        run(fn)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("case", BIG + SMALL, ids=_ids)
def test_gemm_t1(run, peer_table, case, impl):
    _bench(run, peer_table, case, impl, 1, "t1")


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("case", SMALL, ids=_ids)
def test_gemm_t1_alloc(run, peer_table, case, impl):
    """The small products allocating their result, as ``a @ b`` does."""
    _bench(run, peer_table, case, impl, 1, "t1 alloc", alloc=True)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("case", BIG, ids=_ids)
def test_gemm_all_threads(run, peer_table, case, impl):
    _bench(run, peer_table, case, impl, 0, "tall")
