"""The sparse-input kernels (csrc/dense_sparse.h) beside NumPy's dense products.

Cases, float32, one thread (the training plan's first layer on digits16,
16 x 16 binary images with ~16% ink, batch 64, 256 units):
  - forward X W: X (64 x 256) by its nonzeros (CSR), W (256 x 256);
  - weight gradient X^T dZ: X by columns (CSC), dZ (64 x 256);
  - to_csr of the whole training set (60000 x 256); peer numpy.nonzero
    (with the gathers that make the same CSR).
nncore's kernel runs at each kernel level the machine has (impl names the
level); the peer is the same product by NumPy's dense matmul, in the same run.
Run: pytest bench/bench_sparse.py --benchmark-timer=time.thread_time ;
ratios: python bench/compare.py
"""
import os

import numpy as np
import pytest

from conftest import limited_threads
from nncore import _core

QUICK = os.environ.get("BENCH_QUICK", "") not in ("", "0")
M, K, N = 64, 256, 256
ROWS = 600 if QUICK else 60000
LEVELS = _core.isa_available()
CALLS = 100  # products per timed call (the hook's input checks cost more than one)


def _batch(rng, m=M, k=K, density=0.16):
    return (rng.random((m, k)) < density).astype(np.float32)


def _csr(x):
    nz = x != 0
    ptr = np.concatenate([[0], np.cumsum(nz.sum(axis=1))]).astype(np.int32)
    rows, cols = np.nonzero(nz)
    return ptr, cols.astype(np.int32), x[rows, cols]


def _data():
    rng = np.random.default_rng(0)
    x = _batch(rng)
    w = (rng.standard_normal((K, N)) / 16).astype(np.float32)
    dz = rng.standard_normal((M, N)).astype(np.float32)
    return x, w, dz


@pytest.fixture
def one_thread():
    with limited_threads(1):
        yield


@pytest.fixture
def level(request):
    previous = _core.get_isa()
    _core.set_isa(request.param)
    try:
        yield request.param
    finally:
        _core.set_isa(previous)


@pytest.mark.parametrize("level", LEVELS, indirect=True)
def test_forward_nncore(benchmark, run, one_thread, level):
    x, w, _ = _data()
    ptr, idx, val = _csr(x)
    benchmark.group = f"sparse forward X W {M}x{K} (16% nonzero) x {K}x{N} f32, {CALLS} calls"
    benchmark.extra_info["impl"] = f"nncore-{level}"
    run(lambda: _core._sparse_rows(ptr, idx, val, w, M, CALLS))


def test_forward_numpy(benchmark, run, one_thread):
    x, w, _ = _data()
    benchmark.group = f"sparse forward X W {M}x{K} (16% nonzero) x {K}x{N} f32, {CALLS} calls"
    benchmark.extra_info["impl"] = "numpy"
    out = np.empty((M, N), np.float32)
    run(lambda: [np.matmul(x, w, out=out) for _ in range(CALLS)])


@pytest.mark.parametrize("level", LEVELS, indirect=True)
def test_grad_nncore(benchmark, run, one_thread, level):
    x, _, dz = _data()
    ptr, idx, val = _csr(np.ascontiguousarray(x.T))  # X by columns
    benchmark.group = f"sparse gradient X^T dZ {K}x{M} (16% nonzero) x {M}x{N} f32, {CALLS} calls"
    benchmark.extra_info["impl"] = f"nncore-{level}"
    run(lambda: _core._sparse_rows(ptr, idx, val, dz, K, CALLS))


def test_grad_numpy(benchmark, run, one_thread):
    x, _, dz = _data()
    benchmark.group = f"sparse gradient X^T dZ {K}x{M} (16% nonzero) x {M}x{N} f32, {CALLS} calls"
    benchmark.extra_info["impl"] = "numpy"
    out = np.empty((K, N), np.float32)
    run(lambda: [np.matmul(x.T, dz, out=out) for _ in range(CALLS)])


@pytest.fixture(scope="module")
def dataset():
    return _batch(np.random.default_rng(1), ROWS, K)


@pytest.mark.parametrize("level", LEVELS, indirect=True)
def test_to_csr_nncore(benchmark, run, one_thread, dataset, level):
    benchmark.group = f"to_csr {ROWS}x{K} f32, 16% nonzero"
    benchmark.extra_info["impl"] = f"nncore-{level}"
    run(lambda: _core._to_csr(dataset))


@pytest.mark.parametrize("level", LEVELS, indirect=True)
def test_count_nonzero_nncore(benchmark, run, one_thread, dataset, level):
    benchmark.group = f"count_nonzero {ROWS}x{K} f32, 16% nonzero"
    benchmark.extra_info["impl"] = f"nncore-{level}"
    run(lambda: _core._count_nonzero(dataset))


def test_count_nonzero_numpy(benchmark, run, one_thread, dataset):
    benchmark.group = f"count_nonzero {ROWS}x{K} f32, 16% nonzero"
    benchmark.extra_info["impl"] = "numpy"
    run(lambda: np.count_nonzero(dataset))


def test_to_csr_numpy(benchmark, run, one_thread, dataset):
    benchmark.group = f"to_csr {ROWS}x{K} f32, 16% nonzero"
    benchmark.extra_info["impl"] = "numpy"
    run(lambda: _csr(dataset))
