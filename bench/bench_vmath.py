"""Sigmoid and tanh over 10M float32: nncore.activations beside NumPy's expression.

    python -m pytest bench/bench_vmath.py --benchmark-only -s
    BENCH_QUICK=1 python -m pytest bench/bench_vmath.py -s     # CI: small arrays, few rounds

NumPy's ufuncs are single-threaded; nncore runs at 1 thread at every kernel
level the machine has, and at 2 threads at the best level (big arrays are cut
into 2 MiB chunks shared over the pool; the result is the same bits). Each
case both allocates its result (as NumPy's expression does) and writes into
a preallocated ``out=``; the peer of the latter is NumPy writing into a
preallocated array too. The groups are "<fn> over N float32, <t> thread(s)",
NumPy (always one thread) timed in each. The speed-up over NumPy is the median,
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


BEST = _core.isa_available()[-1]


@pytest.fixture(scope="module", autouse=True)
def restore_and_report():
    threads, isa = _core.get_num_threads(), _core.get_isa()
    yield
    _core.set_num_threads(threads)
    _core.set_isa(isa)
    print(f"\nmedian times over {N} float32 ({ROUNDS} rounds); speed-up vs NumPy as the"
          f" median of per-round ratios, NumPy timed back to back with each case:")
    for key, t in sorted(_medians.items()):
        fn, threads, who = key
        ratio = f"{_paired[key]:6.2f}x" if key in _paired else ""
        print(f"  {fn:8s} t{threads} {who:24s} {t * 1e3:8.3f} ms  {ratio}")


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


def _run(benchmark, fn, threads, who, call, peer=None):
    benchmark.group = f"{fn} over {N:,} float32, {threads} thread{'s' if threads > 1 else ''}"
    benchmark.extra_info["impl"] = who
    _core.set_num_threads(threads)
    if benchmark.disabled:  # CI's quick check: run once, time nothing
        call()
        return
    benchmark.pedantic(call, rounds=ROUNDS, iterations=1, warmup_rounds=1)
    _medians[(fn, threads, who)] = benchmark.stats.stats.median
    if peer is not None:
        _paired[(fn, threads, who)] = benchmark.extra_info["speedup_vs_numpy"] = \
            _paired_ratio(peer, call)


@pytest.mark.parametrize("threads", [1, 2], ids=["t1", "t2"])
@pytest.mark.parametrize("preallocated", [False, True], ids=["alloc", "out"])
@pytest.mark.parametrize("fn", sorted(NUMPY))
def test_numpy(benchmark, x, fn, preallocated, threads):
    if preallocated:
        expr, y = NUMPY_OUT[fn], np.empty_like(x)
        _run(benchmark, fn, threads, "numpy out=", lambda: expr(x, y))
    else:
        expr = NUMPY[fn]
        _run(benchmark, fn, threads, "numpy", lambda: expr(x))


@pytest.mark.parametrize("threads", [1, 2], ids=["t1", "t2"])
@pytest.mark.parametrize("level", _core.isa_available())
@pytest.mark.parametrize("preallocated", [False, True], ids=["alloc", "out"])
@pytest.mark.parametrize("fn", sorted(NUMPY))
def test_nncore(benchmark, x, fn, preallocated, level, threads):
    if threads > 1 and level != BEST:
        pytest.skip("2 threads at the best level only")
    _core.set_isa(level)
    f = getattr(nncore.activations, fn)
    out = np.empty_like(x) if preallocated else None
    y = f(x, out=out)
    with np.errstate(over="ignore"):
        np.testing.assert_allclose(y, NUMPY[fn](x.astype(np.float64)), rtol=1e-6, atol=1e-7)
    _run(benchmark, fn, threads, f"nncore {level} {'out=' if preallocated else 'alloc'}",
         lambda: f(x, out=out),
         peer=(lambda: NUMPY_OUT[fn](x, out)) if preallocated else (lambda: NUMPY[fn](x)))
