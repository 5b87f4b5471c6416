"""Shared fixtures for the pytest-benchmark suites in bench/.

Run: ``python -m pytest bench/bench_gemm.py`` (files are named bench_*.py so
that the test run does not pick them up). ``BENCH_QUICK=1`` runs every case
a couple of times only: CI uses it to check the suites work, not to time.

Each suite times nncore beside its peer in the same session and records the
pairs with ``peer_table``; the table of GFLOP/s and ratios is printed at the
end of the run.
"""
import contextlib
import os

import pytest

QUICK = os.environ.get("BENCH_QUICK", "") not in ("", "0")


@pytest.fixture
def run(benchmark):
    """run(fn): time fn with pytest-benchmark (a couple of rounds in quick mode)."""
    def _run(fn):
        if QUICK:
            return benchmark.pedantic(fn, rounds=2, iterations=1, warmup_rounds=0)
        return benchmark.pedantic(fn, rounds=15, iterations=_iterations(fn), warmup_rounds=2)
    return _run


def _iterations(fn):
    """Enough calls per round for ~20 ms, so that tiny products are measurable."""
    import time
    t0 = time.perf_counter()
    fn()
    dt = time.perf_counter() - t0
    return max(1, min(20000, int(0.02 / max(dt, 1e-7))))


@contextlib.contextmanager
def limited_threads(n):
    """nncore, NumPy's BLAS and torch (where installed) all at n threads, so that
    every implementation in a case runs on the same cores (n = 0: their defaults)."""
    from nncore import _core
    if n == 0:
        yield
        return
    old = _core.get_num_threads()
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        threadpool_limits = None
    try:
        import torch
        torch_old = torch.get_num_threads()
    except ImportError:
        torch = None
    _core.set_num_threads(n)
    if torch is not None:
        torch.set_num_threads(n)
    try:
        if threadpool_limits is None:
            yield
        else:
            with threadpool_limits(limits=n):
                yield
    finally:
        _core.set_num_threads(old)
        if torch is not None:
            torch.set_num_threads(torch_old)


@pytest.fixture
def threads(request):
    """Parametrize indirectly with thread counts: ``@pytest.mark.parametrize("threads",
    [1, 2], indirect=True)``; the case runs under ``limited_threads(n)``."""
    with limited_threads(request.param):
        yield request.param


_TABLE = {}


@pytest.fixture
def peer_table(benchmark):
    """peer_table(case, impl, flops): file this benchmark's median under a case."""
    def _record(case, impl, flops):
        # group/impl too, so that bench/compare.py's ratio table lists the case
        benchmark.group = case
        benchmark.extra_info["impl"] = impl
        benchmark.extra_info["gflops"] = flops / 1e9
        _TABLE.setdefault(case, {})[impl] = (benchmark, flops)
    return _record


def pytest_terminal_summary(terminalreporter):
    if not _TABLE:
        return
    tr = terminalreporter
    tr.section("nncore beside its peer (median; GFLOP/s; ratio > 1: nncore faster)")
    for case, impls in _TABLE.items():
        line, med = [], {}
        for impl, (bench, flops) in impls.items():
            stats = getattr(bench, "stats", None)
            if stats is None or not hasattr(stats, "stats"):
                continue
            med[impl] = stats.stats.median
            line.append(f"{impl} {med[impl] * 1e6:9.2f} us {flops / med[impl] / 1e9:7.1f} GF/s")
        ratio = ""
        if "nncore" in med and len(med) > 1:
            peer = [k for k in med if k != "nncore"][0]
            ratio = f"  ratio {med[peer] / med['nncore']:.2f}x"
        tr.write_line(f"{case:<40} " + " | ".join(line) + ratio)
