"""One optimizer step over a model's flat parameter buffer, nncore beside
torch.optim (fused=True, and foreach) in the same run, one thread.

Case: Adam (and SGD with momentum) over 10M float32 parameters, the whole
model as one buffer. The step is memory-bound: Adam reads params, grads and
two moments and writes three of them, 28 bytes per parameter.
Run: pytest bench/bench_optim.py ; ratios: python bench/compare.py bench/bench_optim.py
BENCH_QUICK=1 uses 10k parameters (CI checks that it runs, not how fast).
"""
import os

import numpy as np
import pytest

import nncore
from nncore import optimizers

QUICK = os.environ.get("BENCH_QUICK") == "1"
N = 10_000 if QUICK else 10_000_000


@pytest.fixture
def one_thread():
    before = nncore.get_num_threads()
    nncore.set_num_threads(1)
    torch_before = None
    try:
        import torch
        torch_before = torch.get_num_threads()
        torch.set_num_threads(1)
    except ImportError:
        torch = None
    yield
    if torch is not None:
        torch.set_num_threads(torch_before)
    nncore.set_num_threads(before)


def _data():
    rng = np.random.default_rng(0)
    w = rng.standard_normal(N).astype(np.float32)
    g = (rng.standard_normal(N) * 1e-3).astype(np.float32)
    return w, g


CASES = {
    "adam": (optimizers.Adam, {}, "Adam", {}),
    "sgd_momentum": (optimizers.SGD, {"momentum": 0.9}, "SGD", {"lr": 0.01, "momentum": 0.9}),
}


def _group(case):
    return f"optim {case} {N} params f32, 1 thread"


@pytest.mark.parametrize("case", sorted(CASES))
def test_optim_nncore(benchmark, one_thread, case):
    cls, kwargs, _, _ = CASES[case]
    w, g = _data()
    opt = cls(**kwargs)
    opt.build(w.size, w.dtype)
    benchmark.group = _group(case)
    benchmark.extra_info["impl"] = "nncore"
    benchmark(opt.apply, w, g)
    assert np.all(np.isfinite(w))


@pytest.mark.parametrize("mode", ["fused", "foreach"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_optim_torch(benchmark, one_thread, case, mode):
    torch = pytest.importorskip("torch")
    _, _, torch_name, torch_kwargs = CASES[case]
    w, g = _data()
    p = torch.from_numpy(w)
    p.grad = torch.from_numpy(g)
    try:
        opt = getattr(torch.optim, torch_name)([p], **torch_kwargs, **{mode: True})
        opt.step()
    except (RuntimeError, TypeError, ValueError) as e:
        pytest.skip(f"torch {torch_name}({mode}=True) unavailable here: {e}")
    benchmark.group = _group(case)
    benchmark.extra_info["impl"] = "torch" if mode == "fused" else "torch-foreach"
    with torch.no_grad():
        benchmark(opt.step)
    assert bool(torch.isfinite(p).all())
