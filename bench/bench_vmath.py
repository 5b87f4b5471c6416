"""Sigmoid and tanh over 10M float32: nncore.activations beside NumPy's expression.

    python -m pytest bench/bench_vmath.py --benchmark-only -s
    BENCH_QUICK=1 python -m pytest bench/bench_vmath.py -s     # CI: small arrays, few rounds

Single thread on both sides (NumPy's ufuncs are single-threaded; nncore is
set to one thread). Each nncore case is measured at every kernel level the
machine has, both allocating its result (as NumPy's expression does) and
writing into a preallocated ``out=``; the peer of the latter is NumPy writing
into a preallocated array too. The speed-up over NumPy is the median,
over rounds, of the ratio of the two timed back to back in each round (the
machine is shared, so separately measured medians drift); it is printed at
the end and stored in each benchmark's extra_info ("speedup_vs_numpy").
"""
import os
import statistics
import time

import numpy as np
import pytest

import nncore
from nncore import _core

pytest.importorskip("pytest_benchmark")

QUICK = os.environ.get("BENCH_QUICK", "") not in ("", "0")
N = 100_000 if QUICK else 10_000_000
ROUNDS = 3 if QUICK else 15
PAIRED_ROUNDS = 15

NUMPY = {
    "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
    "tanh": np.tanh,
}
# The same without temporaries, into a preallocated array: the peer of
# nncore's out= case.
NUMPY_OUT = {
    "sigmoid": lambda x, y: np.divide(1, np.add(np.exp(np.negative(x, out=y), out=y), 1, out=y),
                                      out=y),
    "tanh": lambda x, y: np.tanh(x, out=y),
}
_medians = {}
_paired = {}


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
    print(f"\nmedian times over {N} float32 ({ROUNDS} rounds); speed-up vs NumPy as the"
          f" median of per-round ratios, NumPy timed back to back with each case:")
    for (fn, who), t in sorted(_medians.items()):
        ratio = f"{_paired[(fn, who)]:6.2f}x" if (fn, who) in _paired else ""
        print(f"  {fn:8s} {who:24s} {t * 1e3:8.3f} ms  {ratio}")


def _paired_ratio(peer, call):
    """Median over rounds of t(peer) / t(call), the two timed back to back in
    each round, so that load from other processes hits both alike."""
    ratios = []
    peer()
    call()
    for _ in range(PAIRED_ROUNDS):
        t0 = time.perf_counter()
        peer()
        t1 = time.perf_counter()
        call()
        t2 = time.perf_counter()
        ratios.append((t1 - t0) / (t2 - t1))
    return statistics.median(ratios)


def _run(benchmark, fn, who, call, peer=None):
    benchmark.group = f"{fn} over {N:,} float32, 1 thread"
    benchmark.extra_info["impl"] = who
    if benchmark.disabled:  # CI's quick check: run once, time nothing
        call()
        return
    benchmark.pedantic(call, rounds=ROUNDS, iterations=1, warmup_rounds=1)
    _medians[(fn, who)] = benchmark.stats.stats.median
    if peer is not None:
        _paired[(fn, who)] = benchmark.extra_info["speedup_vs_numpy"] = _paired_ratio(peer, call)


@pytest.mark.parametrize("preallocated", [False, True], ids=["alloc", "out"])
@pytest.mark.parametrize("fn", sorted(NUMPY))
def test_numpy(benchmark, x, fn, preallocated):
    if preallocated:
        expr, y = NUMPY_OUT[fn], np.empty_like(x)
        _run(benchmark, fn, "numpy out=", lambda: expr(x, y))
    else:
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
         lambda: f(x, out=out),
         peer=(lambda: NUMPY_OUT[fn](x, out)) if preallocated else (lambda: NUMPY[fn](x)))
