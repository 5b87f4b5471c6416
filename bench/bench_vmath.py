"""Sigmoid and tanh over 10M float32: nncore.activations beside NumPy's expression.

    python -m pytest bench/bench_vmath.py --benchmark-only -s
    BENCH_QUICK=1 python -m pytest bench/bench_vmath.py -s     # CI: small arrays, few rounds

Single thread on both sides (NumPy's ufuncs are single-threaded; nncore is
set to one thread). Each nncore case is measured at every kernel level the
machine has, both allocating its result (as NumPy's expression does) and
writing into a preallocated ``out=``; the ratio of medians to the NumPy peer,
measured in the same run, is printed at the end and stored in each
benchmark's extra_info ("speedup_vs_numpy").
"""
import os

import numpy as np
import pytest

import nncore
from nncore import _core

pytest.importorskip("pytest_benchmark")

QUICK = os.environ.get("BENCH_QUICK", "") not in ("", "0")
N = 100_000 if QUICK else 10_000_000
ROUNDS = 3 if QUICK else 15

NUMPY = {
    "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
    "tanh": np.tanh,
}
_medians = {}


@pytest.fixture(scope="module")
def x():
    return (np.random.default_rng(0).standard_normal(N) * 4).astype(np.float32)


@pytest.fixture(scope="module", autouse=True)
def one_thread_and_report():
    threads, isa = _core.get_num_threads(), _core.get_isa()
    _core.set_num_threads(1)
    yield
    _core.set_num_threads(threads)
    _core.set_isa(isa)
    print(f"\nmedian times over {N} float32 ({ROUNDS} rounds), speed-up vs NumPy:")
    for (fn, who), t in sorted(_medians.items()):
        peer = _medians.get((fn, "numpy"))
        ratio = f"{peer / t:6.2f}x" if peer else ""
        print(f"  {fn:8s} {who:24s} {t * 1e3:8.3f} ms  {ratio}")


def _run(benchmark, fn, who, call):
    benchmark.group = fn
    benchmark.pedantic(call, rounds=ROUNDS, iterations=1, warmup_rounds=1)
    median = benchmark.stats.stats.median
    _medians[(fn, who)] = median
    peer = _medians.get((fn, "numpy"))
    if peer:
        benchmark.extra_info["speedup_vs_numpy"] = peer / median


@pytest.mark.parametrize("fn", sorted(NUMPY))
def test_numpy(benchmark, x, fn):
    expr = NUMPY[fn]
    _run(benchmark, fn, "numpy", lambda: expr(x))


@pytest.mark.parametrize("level", _core.isa_available())
@pytest.mark.parametrize("preallocated", [False, True], ids=["alloc", "out"])
@pytest.mark.parametrize("fn", sorted(NUMPY))
def test_nncore(benchmark, x, fn, preallocated, level):
    _core.set_isa(level)
    f = getattr(nncore.activations, fn)
    out = np.empty_like(x) if preallocated else None
    y = f(x, out=out)
    with np.errstate(over="ignore"):
        np.testing.assert_allclose(y, NUMPY[fn](x.astype(np.float64)), rtol=1e-6, atol=1e-7)
    _run(benchmark, fn, f"nncore {level} {'out=' if preallocated else 'alloc'}",
         lambda: f(x, out=out))
