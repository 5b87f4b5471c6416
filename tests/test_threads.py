"""The engine's threads: the limit, the pool (through private test hooks in
nncore._core), fork safety, threadpoolctl, and results that do not depend on
the thread count."""
import os
import subprocess
import sys
import textwrap
import threading
import time
import warnings

import numpy as np
import pytest

import nncore
from nncore import _core, ops

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(autouse=True)
def _restore_threads():
    before = nncore.get_num_threads()
    yield
    nncore.set_num_threads(before)


def _run(code, env_extra=None, drop=("NNCORE_NUM_THREADS",)):
    """Runs code in a fresh interpreter that imports this worktree's nncore;
    returns its stdout (stripped) and stderr."""
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    env.update(env_extra or {})
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip(), proc.stderr


def _cpus():
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count()


# --------------------------------------------------------------------------
# The limit
# --------------------------------------------------------------------------

def test_exported_from_package():
    assert nncore.set_num_threads is _core.set_num_threads
    assert nncore.get_num_threads is _core.get_num_threads
    assert {"set_num_threads", "get_num_threads"} <= set(nncore.__all__)


@pytest.mark.parametrize("n", [1, 2, 3, 7, 64])
def test_set_then_get(n):
    nncore.set_num_threads(n)
    assert nncore.get_num_threads() == n


@pytest.mark.parametrize("n", [0, -1, -1000])
def test_below_one_is_value_error(n):
    before = nncore.get_num_threads()
    with pytest.raises(ValueError, match="at least 1"):
        nncore.set_num_threads(n)
    assert nncore.get_num_threads() == before


def test_not_an_integer_is_type_error():
    with pytest.raises(TypeError):
        nncore.set_num_threads("2")


def test_default_is_the_cpus_this_process_may_use():
    out, _ = _run("import nncore; print(nncore.get_num_threads())")
    assert int(out) == _cpus()


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs sched_setaffinity")
def test_default_honours_cpu_affinity():
    cpu = min(os.sched_getaffinity(0))
    out, _ = _run(f"""
        import os
        os.sched_setaffinity(0, {{{cpu}}})
        import nncore
        print(nncore.get_num_threads())
    """)
    assert int(out) == 1


@pytest.mark.parametrize("value,expected", [("3", 3), ("1", 1), (" 5 ", 5), ("+2", 2)])
def test_env_var_is_honoured(value, expected):
    out, err = _run("import nncore; print(nncore.get_num_threads())",
                    {"NNCORE_NUM_THREADS": value})
    assert int(out) == expected
    assert "NNCORE_NUM_THREADS" not in err


@pytest.mark.parametrize("value", ["0", "-2", "two", "2.5", "99999999999"])
def test_bad_env_var_warns_and_uses_the_cpus(value):
    out, err = _run("""
        import warnings
        warnings.simplefilter("always")
        import nncore
        print(nncore.get_num_threads())
    """, {"NNCORE_NUM_THREADS": value})
    assert int(out) == _cpus()
    assert "RuntimeWarning" in err and "NNCORE_NUM_THREADS" in err


def test_env_var_is_read_at_import():
    out, _ = _run("""
        import os
        import nncore
        os.environ["NNCORE_NUM_THREADS"] = "2"
        print(nncore.get_num_threads())
    """, {"NNCORE_NUM_THREADS": "3"})
    assert int(out) == 3


def test_huge_limit_is_accepted_and_runs():
    """A limit far above the CPU count is the user's choice; the pool caps the
    helpers it starts, and every task still runs once."""
    nncore.set_num_threads(100000)
    assert nncore.get_num_threads() == 100000
    _check_once(3000, 100000)


def test_set_num_threads_overrides_env_var():
    out, _ = _run("import nncore; nncore.set_num_threads(2); print(nncore.get_num_threads())",
                  {"NNCORE_NUM_THREADS": "5"})
    assert int(out) == 2


# --------------------------------------------------------------------------
# The pool, through the test hooks
# --------------------------------------------------------------------------

def _check_once(n_tasks, threads, work=0, max_threads=0):
    """Runs the hook's job; checks every task ran once, on a thread index
    below min(threads, n_tasks[, max_threads])."""
    count, thread = _core._parallel_sum_test(n_tasks, work, max_threads)
    bound = min(threads, n_tasks, max_threads or threads)
    assert count.shape == (n_tasks,)
    assert np.all(count == 1), f"tasks not run exactly once: {np.flatnonzero(count != 1)[:10]}"
    assert np.all((thread >= 0) & (thread < bound)), np.unique(thread)
    return thread


@pytest.mark.parametrize("threads", [1, 2, 3, 4, 8])
@pytest.mark.parametrize("n_tasks", [0, 1, 2, 3, 5, 64, 1000])
def test_each_task_runs_exactly_once(threads, n_tasks):
    nncore.set_num_threads(threads)
    _check_once(n_tasks, threads)
    _check_once(n_tasks, threads, work=3000)


@pytest.mark.parametrize("max_threads", [1, 2, 3, 9])
@pytest.mark.parametrize("n_tasks", [2, 3, 100])
def test_max_threads_caps_one_call(max_threads, n_tasks):
    nncore.set_num_threads(4)
    thread = _check_once(n_tasks, 4, work=3000, max_threads=max_threads)
    if max_threads == 1:
        assert np.all(thread == 0)


def test_one_thread_runs_everything_on_the_caller():
    nncore.set_num_threads(1)
    thread = _check_once(200, 1, work=2000)
    assert np.all(thread == 0)
    assert not _core._parallel_overlap_test(0.05)


@pytest.mark.parametrize("threads", [2, 4])
def test_two_tasks_run_at_the_same_time(threads):
    nncore.set_num_threads(threads)
    assert _core._parallel_overlap_test(5.0)


@pytest.mark.parametrize("threads", [1, 2, 4])
def test_many_python_threads_at_once(threads):
    """Callers from several Python threads share one pool: only one uses it
    at a time, the rest run serially; every task still runs exactly once."""
    nncore.set_num_threads(threads)
    errors = []
    start = threading.Barrier(8)

    def caller(seed):
        rng = np.random.default_rng(seed)
        try:
            start.wait()
            for _ in range(60):
                _check_once(int(rng.integers(0, 300)), threads, int(rng.integers(0, 3)) * 500)
        except Exception as e:  # noqa: BLE001 - reported in the main thread
            errors.append(repr(e))

    workers = [threading.Thread(target=caller, args=(s,)) for s in range(8)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
    assert not any(w.is_alive() for w in workers), "a caller hung"
    assert errors == []


def test_resizing_while_other_threads_call():
    """set_num_threads from one thread while others run jobs: the pool
    follows at its next job, never during one."""
    errors = []
    stop = threading.Event()

    def caller():
        try:
            while not stop.is_set():
                _check_once(50, 8, work=200)
        except Exception as e:  # noqa: BLE001
            errors.append(repr(e))

    workers = [threading.Thread(target=caller) for _ in range(3)]
    for w in workers:
        w.start()
    for n in [1, 4, 2, 8, 3, 1, 2] * 5:
        nncore.set_num_threads(n)
        time.sleep(0.002)
    stop.set()
    for w in workers:
        w.join(timeout=60)
    assert not any(w.is_alive() for w in workers), "a caller hung"
    assert errors == []


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="counts threads in /proc")
def test_pool_starts_lazily_and_follows_the_limit():
    out, _ = _run("""
        import os
        import numpy
        def threads():
            return len(os.listdir("/proc/self/task"))
        base = threads()
        import nncore
        from nncore import _core
        nncore.set_num_threads(4)
        after_import = threads()
        _core._parallel_sum_test(100)
        at4 = threads()
        nncore.set_num_threads(2)
        _core._parallel_sum_test(100)
        at2 = threads()
        print(after_import - base, at4 - base, at2 - base)
    """)
    assert [int(v) for v in out.split()] == [0, 3, 1]


def test_runs_beside_numpy_and_torch_threads():
    """nncore's pool, NumPy's OpenBLAS pool and PyTorch's OpenMP pool busy in
    one process at once: every job completes and stays correct."""
    torch = pytest.importorskip("torch")
    nncore.set_num_threads(2)
    errors = []
    a = np.random.default_rng(0).standard_normal((200, 200))
    ta = torch.from_numpy(a)

    def numpy_and_torch():
        try:
            for _ in range(30):
                np.testing.assert_allclose((ta @ ta).numpy(), a @ a, rtol=1e-10, atol=1e-10)
        except Exception as e:  # noqa: BLE001
            errors.append(repr(e))

    def ours():
        try:
            for _ in range(100):
                _check_once(200, 2, work=300)
        except Exception as e:  # noqa: BLE001
            errors.append(repr(e))

    workers = [threading.Thread(target=numpy_and_torch), threading.Thread(target=ours),
               threading.Thread(target=ours)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
    assert not any(w.is_alive() for w in workers), "hung"
    assert errors == []
    assert _core._parallel_overlap_test(5.0)


# --------------------------------------------------------------------------
# fork
# --------------------------------------------------------------------------

def child_job():
    """What a forked child runs: a full job and a job that needs the helper."""
    count, thread = _core._parallel_sum_test(1000, 200)
    ok = bool(np.all(count == 1)) and bool(np.all((thread >= 0) & (thread < 2)))
    return ok and _core._parallel_overlap_test(5.0)


def _warm_pool():
    nncore.set_num_threads(2)
    assert _core._parallel_overlap_test(5.0)  # the helper exists and is running


def _wait_or_kill(pid, seconds=60):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.01)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    pytest.fail("the forked child hung")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_os_fork_after_the_pool_is_warm():
    _warm_pool()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads (3.12+)
        pid = os.fork()
    if pid == 0:
        code = 1
        try:
            code = 0 if child_job() else 3
        finally:
            os._exit(code)
    assert _wait_or_kill(pid) == 0
    _check_once(500, 2, 100)  # the parent's pool is untouched
    assert _core._parallel_overlap_test(5.0)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_fork_while_another_thread_runs_jobs():
    """fork() can land in the middle of another thread's job (pool taken,
    helpers working, locks held): the child must still get a working pool."""
    _warm_pool()
    stop = threading.Event()
    errors = []

    def busy():
        try:
            while not stop.is_set():
                _check_once(300, 2, work=300)
        except Exception as e:  # noqa: BLE001
            errors.append(repr(e))

    worker = threading.Thread(target=busy)
    worker.start()
    try:
        for _ in range(10):
            time.sleep(0.003)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                pid = os.fork()
            if pid == 0:
                code = 1
                try:
                    code = 0 if child_job() else 3
                finally:
                    os._exit(code)
            assert _wait_or_kill(pid) == 0
    finally:
        stop.set()
        worker.join(60)
    assert errors == []


def _mp_target():
    sys.exit(0 if child_job() else 3)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_multiprocessing_fork_context_after_the_pool_is_warm():
    import multiprocessing
    _warm_pool()
    ctx = multiprocessing.get_context("fork")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        procs = [ctx.Process(target=_mp_target) for _ in range(2)]
        for p in procs:
            p.start()
    for p in procs:
        p.join(60)
        if p.is_alive():
            p.kill()
            pytest.fail("a forked child hung")
        assert p.exitcode == 0


# --------------------------------------------------------------------------
# Results do not depend on the thread count
# --------------------------------------------------------------------------

def _outputs(rng_seed, dtype, m, k, n):
    rng = np.random.default_rng(rng_seed)
    x = rng.standard_normal((m, k)).astype(dtype)
    w = rng.standard_normal((k, n)).astype(dtype)
    b = rng.standard_normal(n).astype(dtype)
    dz = rng.standard_normal((m, n)).astype(dtype)
    out = [ops.matmul(x, w), ops.matmul(x.T.copy(), w, trans_a=True),
           ops.matmul(x, w.T.copy(), trans_b=True),
           ops.dense_forward(x, w, b, activation="relu"),
           ops.activation_forward(x, "softmax")]
    out += list(ops.dense_backward(x, w, dz))
    return out


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1, 1, 1), (3, 5, 7), (67, 129, 33), (260, 300, 190)])
def test_results_are_bit_identical_at_any_thread_count(dtype, shape):
    nncore.set_num_threads(1)
    reference = _outputs(0, dtype, *shape)
    for threads in (2, 3, 4, 7):
        nncore.set_num_threads(threads)
        got = _outputs(0, dtype, *shape)
        for r, g in zip(reference, got):
            assert r.dtype == g.dtype and r.shape == g.shape
            assert r.tobytes() == g.tobytes(), f"differs at {threads} threads"


# --------------------------------------------------------------------------
# threadpoolctl
# --------------------------------------------------------------------------

def test_imports_without_threadpoolctl():
    out, _ = _run("""
        import sys
        sys.modules["threadpoolctl"] = None  # makes `import threadpoolctl` fail
        import nncore
        from nncore import _threadpool
        print(_threadpool.register(), nncore.get_num_threads() >= 1)
    """)
    assert out == "False True"


def _nncore_entries(threadpoolctl):
    return [i for i in threadpoolctl.threadpool_info() if i["user_api"] == "nncore"]


def test_threadpoolctl_lists_nncore():
    threadpoolctl = pytest.importorskip("threadpoolctl", minversion="3.5")
    nncore.set_num_threads(3)
    (info,) = _nncore_entries(threadpoolctl)
    assert info["internal_api"] == "nncore"
    assert info["num_threads"] == 3
    assert info["version"] == _core.engine_version()
    assert os.path.samefile(info["filepath"], _core.__file__)


@pytest.mark.parametrize("user_api", [None, "nncore"])
def test_threadpool_limits_limits_nncore(user_api):
    threadpoolctl = pytest.importorskip("threadpoolctl", minversion="3.5")
    nncore.set_num_threads(3)
    with threadpoolctl.threadpool_limits(limits=1, user_api=user_api):
        assert nncore.get_num_threads() == 1
        assert not _core._parallel_overlap_test(0.05)
    assert nncore.get_num_threads() == 3


def test_threadpool_limits_of_other_apis_leave_nncore_alone():
    threadpoolctl = pytest.importorskip("threadpoolctl", minversion="3.5")
    nncore.set_num_threads(3)
    with threadpoolctl.threadpool_limits(limits=1, user_api="blas"):
        assert nncore.get_num_threads() == 3


def test_controller_select():
    threadpoolctl = pytest.importorskip("threadpoolctl", minversion="3.5")
    controller = threadpoolctl.ThreadpoolController().select(user_api="nncore")
    assert len(controller.lib_controllers) == 1
    nncore.set_num_threads(2)
    with controller.limit(limits=1):
        assert nncore.get_num_threads() == 1
    assert nncore.get_num_threads() == 2
