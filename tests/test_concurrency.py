"""Threads: predict from many Python threads, training beside predicting, and the
GIL released while long kernels run.

Each concurrent result is compared bit for bit with the same call made serially
first: the engine's results never depend on which thread computed them.
"""
import threading
import time

import numpy as np
import pytest

import nncore
from nncore import _core, ops
from nncore.layers import Activation, BatchNormalization, Dense, Dropout, Flatten

N_THREADS = 8


def _run_threads(target, n=N_THREADS):
    """Runs target(i) on n threads started together; re-raises the first error."""
    errors = []
    barrier = threading.Barrier(n)

    def wrap(i):
        try:
            barrier.wait()
            target(i)
        except BaseException as e:  # noqa: BLE001 -- handed to the main thread
            errors.append(e)

    threads = [threading.Thread(target=wrap, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
        assert not t.is_alive(), "a thread hung"
    if errors:
        raise errors[0]


def _dense_model(dtype="float32"):
    return nncore.Sequential([Flatten(input_shape=(4, 6)), Dense(32, activation="relu"),
                              Dropout(0.3), Dense(16, activation="tanh"),
                              Activation("softmax")], seed=11, dtype=dtype)


def _bn_model():
    return nncore.Sequential([Dense(16, activation="relu", input_dim=24), BatchNormalization(),
                              Dense(4, activation="softmax")], seed=12)


def _inputs(model, n_sets, rows, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((rows + i,) + model.input_shape).astype(model.dtype)
            for i in range(n_sets)]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("rows", [1, 7, 300])  # 300 rows: the engine's own pool joins in
def test_dense_predict_from_threads_matches_serial(dtype, rows):
    model = _dense_model(dtype)
    model.build()
    assert model._inference_plan() is not None  # the thread-safe path is the one tested
    xs = _inputs(model, N_THREADS, rows)
    want = [model.predict(x, batch_size=64) for x in xs]
    want_one = [model.predict_one(x[0]) for x in xs]
    got = [[] for _ in range(N_THREADS)]

    def work(i):
        for _ in range(20):
            got[i].append((model.predict(xs[i], batch_size=64), model.predict_one(xs[i][0]),
                           model.predict_on_batch(xs[i])))

    _run_threads(work)
    for i in range(N_THREADS):
        for p, p1, pb in got[i]:
            np.testing.assert_array_equal(p, want[i])
            np.testing.assert_array_equal(p1, want_one[i])
            np.testing.assert_array_equal(pb, want[i])


def _bn_predict_race():
    """Whether 8 threads predicting through one BatchNormalization model ever get
    another thread's numbers (each thread has its own inputs and batch size)."""
    model = _bn_model()
    model.compile("adam", "sparse_categorical_crossentropy")
    rng = np.random.default_rng(1)
    model.fit(rng.standard_normal((64, 24)).astype(np.float32), rng.integers(0, 4, 64),
              epochs=1, verbose=0)  # moving statistics away from their initial values
    assert model._inference_plan() is None  # the layer-by-layer path
    xs = _inputs(model, N_THREADS, 40, seed=2)
    want = [model.predict(x, batch_size=len(x)) for x in xs]
    bad = []

    def work(i):
        deadline = time.monotonic() + 3.0
        for _ in range(300):
            if bad or time.monotonic() > deadline:
                return
            if not np.array_equal(model.predict(xs[i], batch_size=len(xs[i])), want[i]):
                bad.append(i)

    _run_threads(work)
    return bool(bad)


def test_batchnorm_predict_from_threads_matches_serial():
    assert not _bn_predict_race(), "a thread got a result computed from another thread's data"


def test_batchnorm_predict_serial_in_threads_is_fine():
    """The same model, one thread at a time (a lock): every result right. This is what
    a model lock would give, and shows the failure above is the sharing, not threads."""
    model = _bn_model()
    model.build()
    xs = _inputs(model, N_THREADS, 40, seed=2)
    want = [model.predict(x, batch_size=len(x)) for x in xs]
    lock = threading.Lock()
    got = [None] * N_THREADS

    def work(i):
        for _ in range(20):
            with lock:
                got[i] = model.predict(xs[i], batch_size=len(xs[i]))
            np.testing.assert_array_equal(got[i], want[i])

    _run_threads(work)


def test_bn_models_one_per_thread_are_independent():
    """Different models (same architecture) in different threads share nothing."""
    models = [_bn_model() for _ in range(N_THREADS)]
    for m in models:
        m.build()
    xs = _inputs(models[0], N_THREADS, 40, seed=3)
    want = [m.predict(x) for m, x in zip(models, xs)]

    def work(i):
        for _ in range(30):
            np.testing.assert_array_equal(models[i].predict(xs[i]), want[i])

    _run_threads(work)


def test_training_one_model_while_predicting_with_another():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((256, 24)).astype(np.float32)
    y = rng.integers(0, 4, 256)

    def make():
        m = nncore.Sequential([Dense(32, activation="relu", input_dim=24), BatchNormalization(),
                               Dropout(0.2), Dense(4, activation="softmax")], seed=21)
        m.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
        return m

    # the training run alone, for its exact result
    alone = make()
    hist_alone = alone.fit(x, y, epochs=3, batch_size=16, verbose=0).history
    w_alone = alone.get_weights()

    predictor = _dense_model()
    predictor.build()
    px = _inputs(predictor, 4, 50, seed=6)
    pwant = [predictor.predict(v) for v in px]

    trainer = make()
    stop = threading.Event()
    mismatches = []

    def predict_loop(i):
        while not stop.is_set():
            if not np.array_equal(predictor.predict(px[i]), pwant[i]):
                mismatches.append(i)

    threads = [threading.Thread(target=predict_loop, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    try:
        hist = trainer.fit(x, y, epochs=3, batch_size=16, verbose=0).history
    finally:
        stop.set()
        for t in threads:
            t.join(60)
    assert not mismatches
    assert hist == hist_alone  # training is bit-for-bit what it is alone
    for a, b in zip(trainer.get_weights(), w_alone):
        np.testing.assert_array_equal(a, b)


def test_ops_from_threads_match_serial():
    """The functional API, every thread its own arrays: the same bits as serially."""
    rng = np.random.default_rng(7)
    cases = [(rng.standard_normal((40 + i, 33)).astype(np.float32),
              rng.standard_normal((33, 17)).astype(np.float32)) for i in range(N_THREADS)]

    def compute(a, b):
        y = ops.dense_forward(a, b, None, "tanh")
        dz = ops.activation_backward(y, np.ones_like(y), "tanh")
        return (ops.matmul(a, b), y, ops.activation_forward(y, "softmax"),
                *ops.dense_backward(a, b, dz), ops.loss_and_grad(np.zeros_like(y), y, "mse")[1])

    want = [compute(a, b) for a, b in cases]

    def work(i):
        for _ in range(30):
            for g, w in zip(compute(*cases[i]), want[i]):
                np.testing.assert_array_equal(g, w)

    _run_threads(work)


def _longest_stall(call, tries=3):
    """Runs call() on a worker thread while this thread ticks a clock in a loop;
    returns the smallest, over a few tries, of (longest gap between ticks inside
    the call) / (the call's duration), and the duration.

    A thread needs the GIL to run bytecode: if the call held it throughout, no
    tick could fall inside it and the ratio would be about 1. With the GIL
    released, gaps are a few switch intervals at most."""
    best, duration = 2.0, 0.0
    for _ in range(tries):
        span = {}

        def worker():
            t0 = time.perf_counter()
            call()
            span["t"] = (t0, time.perf_counter())

        ticks = []
        t = threading.Thread(target=worker)
        t.start()
        while t.is_alive():
            ticks.append(time.perf_counter())
        t.join()
        t0, t1 = span["t"]
        inside = [t0] + [x for x in ticks if t0 < x < t1] + [t1]
        gap = max(b - a for a, b in zip(inside, inside[1:]))
        if gap / (t1 - t0) < best:
            best, duration = gap / (t1 - t0), t1 - t0
        if best < 0.2:
            break
    return best, duration


@pytest.mark.parametrize("threads", [1, 2])
def test_gil_released_during_long_matmul(threads):
    """While one thread is inside a long matmul, another Python thread keeps running."""
    previous = _core.get_num_threads()
    _core.set_num_threads(threads)
    try:
        rng = np.random.default_rng(8)
        n = 256
        while True:  # a size that takes a while at this machine's GEMM speed
            a = rng.standard_normal((n, n))
            t0 = time.perf_counter()
            ops.matmul(a, a)
            if time.perf_counter() - t0 > 0.1 or n >= 4096:
                break
            n *= 2
        b = rng.standard_normal((n, n))
        ratio, duration = _longest_stall(lambda: ops.matmul(a, b))
        assert duration > 0.05, "the matmul was too short to tell"
        assert ratio < 0.5, f"the other thread stalled {ratio:.0%} of a {duration:.3f} s matmul"
    finally:
        _core.set_num_threads(previous)


def test_gil_held_is_detected():
    """The measure above can fail: a call that holds the GIL (a pure-Python loop
    of the same length has no gaps to give, but time.sleep releases it, so use
    NumPy's sort of object arrays, which holds the GIL) stalls the ticker."""
    values = np.array([str(i) for i in np.random.default_rng(0).permutation(300_000)],
                      dtype=object)
    ratio, duration = _longest_stall(lambda: np.sort(values), tries=1)
    assert duration > 0.05
    assert ratio > 0.5


def test_gil_released_during_fit_kernels():
    """The same for training a wide model (dense forward/backward, loss and
    optimizer kernels): another thread progresses while fit runs."""
    rng = np.random.default_rng(9)
    x = rng.standard_normal((256, 256)).astype(np.float32)
    y = rng.standard_normal((256, 256)).astype(np.float32)
    model = nncore.Sequential([Dense(256, activation="relu", input_dim=256), Dense(256)], seed=1)
    model.compile("adam", "mse")
    ratio, duration = _longest_stall(lambda: model.fit(x, y, batch_size=256, epochs=10,
                                                       verbose=0))
    assert duration > 0.05
    assert ratio < 0.5, f"the other thread stalled {ratio:.0%} of {duration:.3f} s of fit"
