"""Batch normalisation forward + backward (training mode), nncore beside PyTorch.

Case: the feature maps of a small CNN, (64, 28, 28, 32) channels-last float32
(torch: the same tensor channels-first, BatchNorm2d): statistics, moving
averages, output, and the three gradients per round.
Run: pytest bench/bench_norm.py ; ratios: python bench/compare.py bench/bench_norm.py
"""
import os

import numpy as np
import pytest

from nncore.layers import BatchNormalization

QUICK = os.environ.get("BENCH_QUICK") == "1"
SHAPE = (4, 6, 6, 8) if QUICK else (64, 28, 28, 32)
THREADS = [1] if QUICK else [1, 2]


def _group(threads):
    return f"batchnorm {'x'.join(map(str, SHAPE))} fwd+bwd f32, {threads} thread(s)"


def _data():
    rng = np.random.default_rng(0)
    return (rng.standard_normal(SHAPE).astype(np.float32),
            rng.standard_normal(SHAPE).astype(np.float32))


@pytest.mark.parametrize("threads", THREADS, indirect=True)
def test_batchnorm_nncore(benchmark, threads):
    x, dy = _data()
    bn = BatchNormalization()
    bn.build(SHAPE[1:])
    bn.ensure_storage(np.float32)
    bn.grads = {k: np.zeros_like(v) for k, v in bn.params.items()}

    def step():
        bn.forward(x, training=True)
        return bn.backward(dy)

    benchmark.group = _group(threads)
    benchmark.extra_info["impl"] = "nncore"
    benchmark(step)


@pytest.mark.parametrize("threads", THREADS, indirect=True)
def test_batchnorm_torch(benchmark, threads):
    torch = pytest.importorskip("torch")
    x, dy = _data()
    xt = torch.from_numpy(x.transpose(0, 3, 1, 2).copy()).requires_grad_(True)
    dyt = torch.from_numpy(dy.transpose(0, 3, 1, 2).copy())
    bn = torch.nn.BatchNorm2d(SHAPE[-1], eps=1e-3, momentum=0.01)

    def step():
        xt.grad = None
        bn.zero_grad(set_to_none=True)
        bn(xt).backward(dyt)

    benchmark.group = _group(threads)
    benchmark.extra_info["impl"] = "torch"
    benchmark(step)
