"""A dense layer's forward + backward pass, nncore beside PyTorch and NumPy.

Case (issue 3): x (256, 1024) -> 1024 units, ReLU, float32: the forward
product with bias and activation, the activation's backward, and the three
gradient products. Each implementation does the same work per round.
Run: pytest bench/bench_dense.py ; ratios: python bench/compare.py
"""
import os

import numpy as np
import pytest

from nncore import ops

QUICK = os.environ.get("BENCH_QUICK") == "1"
M, K, N = (16, 32, 32) if QUICK else (256, 1024, 1024)
THREADS = [1] if QUICK else [1, 2]


def _data(dtype=np.float32):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((M, K)).astype(dtype)
    w = (rng.standard_normal((K, N)) / np.sqrt(K)).astype(dtype)
    b = rng.standard_normal(N).astype(dtype)
    dy = rng.standard_normal((M, N)).astype(dtype)
    return x, w, b, dy


@pytest.mark.parametrize("threads", THREADS, indirect=True)
def test_dense_nncore(benchmark, threads):
    x, w, b, dy = _data()
    y = np.empty((M, N), np.float32)
    dz = np.empty_like(y)
    dx, dw, db = np.empty_like(x), np.empty_like(w), np.empty_like(b)

    def step():
        ops.dense_forward(x, w, b, activation="relu", out=y)
        ops.activation_backward(y, dy, "relu", out=dz)
        ops.dense_backward(x, w, dz, dx=dx, dw=dw, db=db)

    benchmark.group = f"dense {M}x{K}->{N} fwd+bwd f32, {threads} thread(s)"
    benchmark.extra_info["impl"] = "nncore"
    benchmark(step)


@pytest.mark.parametrize("threads", THREADS, indirect=True)
def test_dense_torch(benchmark, threads):
    torch = pytest.importorskip("torch")
    x, w, b, dy = (torch.from_numpy(a) for a in _data())
    x.requires_grad_(True)
    w.requires_grad_(True)
    b.requires_grad_(True)

    def step():
        x.grad = w.grad = b.grad = None
        y = torch.relu(torch.addmm(b, x, w))
        y.backward(dy)

    benchmark.group = f"dense {M}x{K}->{N} fwd+bwd f32, {threads} thread(s)"
    benchmark.extra_info["impl"] = "torch"
    benchmark(step)


@pytest.mark.parametrize("threads", THREADS, indirect=True)
def test_dense_numpy(benchmark, threads):
    x, w, b, dy = _data()

    def step():
        y = np.maximum(x @ w + b, 0)
        dz = dy * (y > 0)
        return dz @ w.T, x.T @ dz, dz.sum(axis=0)

    benchmark.group = f"dense {M}x{K}->{N} fwd+bwd f32, {threads} thread(s)"
    benchmark.extra_info["impl"] = "numpy"
    benchmark(step)
