"""Load and faults: memory stays flat over many fit/predict/save/load cycles, and a
KeyboardInterrupt in the middle of fit leaves a model that works and remembers
the epochs it finished."""
import gc
import os
import shutil
import tempfile

import numpy as np
import pytest

import nncore
from nncore.callbacks import Callback
from nncore.layers import BatchNormalization, Dense, Dropout, Layer

PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


# Resident memory says nothing under AddressSanitizer (tools/sanitize.sh): freed
# blocks wait in its quarantine (256 MB by default) before they are reused.
UNDER_ASAN = "libasan" in os.environ.get("LD_PRELOAD", "") or "ASAN_OPTIONS" in os.environ
rss_test = pytest.mark.skipif(not os.path.exists("/proc/self/statm") or UNDER_ASAN,
                              reason="needs /proc/self/statm, and no AddressSanitizer")


def _tiny_model(seed=0):
    model = nncore.Sequential([Dense(4, activation="relu", input_dim=3), BatchNormalization(),
                               Dropout(0.1), Dense(2, activation="softmax")], seed=seed)
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


@rss_test
def test_memory_flat_over_10000_fit_predict_save_load_cycles(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 3)).astype(np.float32)
    y = rng.integers(0, 2, 8)
    # save fsyncs: on a RAM disk, where there is one, that costs nothing
    shm = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
    folder = tempfile.mkdtemp(dir=shm) if shm else str(tmp_path)
    path = os.path.join(folder, "m.nncore")
    model = _tiny_model()

    def cycle(model):
        model.fit(x, y, batch_size=4, epochs=1, verbose=0)
        p = model.predict(x)
        assert p.shape == (8, 2)
        model.save(path)
        return nncore.load_model(path)

    try:
        for _ in range(300):  # warm-up: caches, allocator pools, first-use imports
            model = cycle(model)
        gc.collect()
        rss = [_rss_bytes()]
        for i in range(10_000):
            model = cycle(model)
            if i % 2500 == 2499:
                gc.collect()
                rss.append(_rss_bytes())
    finally:
        if shm:
            shutil.rmtree(folder, ignore_errors=True)
    growth = rss[-1] - rss[0]
    # a leak of even 400 bytes a cycle would show as 4 MB
    assert growth < 4 * 2**20, f"resident memory grew by {growth / 2**20:.1f} MiB: {rss}"
    assert np.all(np.isfinite(model.predict(x)))


@rss_test
def test_memory_flat_over_many_rejected_calls():
    """Errors raised at the boundary free what they allocated."""
    from nncore import ops
    a32 = np.ones((16, 16), np.float32)
    a64 = np.ones((16, 16))
    bad_calls = [lambda: ops.matmul(a32, a64), lambda: ops.matmul(a64, np.ones((3, 3))),
                 lambda: ops.loss([0, 9], np.ones((2, 3)), "sparse_categorical_crossentropy"),
                 lambda: ops.activation_forward(np.ones(3, np.int32), "relu"),
                 lambda: ops.dense_forward(a64, a64, np.ones(3))]

    def run(n):
        for _ in range(n):
            for call in bad_calls:
                try:
                    call()
                except (TypeError, ValueError):
                    pass
                else:
                    raise AssertionError("accepted")
    run(1000)
    gc.collect()
    before = _rss_bytes()
    run(20_000)
    gc.collect()
    assert _rss_bytes() - before < 4 * 2**20


# --------------------------------------------------------------------------
# KeyboardInterrupt during fit
# --------------------------------------------------------------------------

class _InterruptAt(Callback):
    def __init__(self, epoch, batch, hook="on_train_batch_end"):
        super().__init__()
        self.at, self.hook, self.epoch = (epoch, batch), hook, None
        setattr(self, hook, self._maybe)

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def _maybe(self, batch, logs=None):
        if (self.epoch, batch) == self.at:
            raise KeyboardInterrupt


def _data(n=64):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((n, 3)).astype(np.float32)
    return x, (x[:, 0] + x[:, 1] > 0).astype(np.int64)


def _check_usable(model, x, y):
    for w in model.get_weights():
        assert np.all(np.isfinite(w))
    p = model.predict(x)
    assert np.all(np.isfinite(p))
    # the fused softmax is back on: outputs are probabilities, not logits
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(model.predict_on_batch(x), p)
    loss, acc = model.evaluate(x, y)
    assert np.isfinite(loss) and 0 <= acc <= 1


@pytest.mark.parametrize("hook", ["on_train_batch_end", "on_train_batch_begin"])
def test_keyboard_interrupt_in_callback_leaves_model_usable(hook):
    x, y = _data()
    model = _tiny_model(seed=4)
    with pytest.raises(KeyboardInterrupt):
        model.fit(x, y, batch_size=8, epochs=5, verbose=0, callbacks=[_InterruptAt(2, 3, hook)])
    # the two finished epochs are in the history the model holds
    assert model.history.epoch == [0, 1]
    assert len(model.history.history["loss"]) == 2
    assert all(np.isfinite(v) for v in model.history.history["loss"])
    _check_usable(model, x, y)
    # training goes on from where it stopped
    before = model.evaluate(x, y)[0]
    hist = model.fit(x, y, batch_size=8, epochs=5, initial_epoch=2, verbose=0)
    assert hist.epoch == [2, 3, 4]
    assert model.evaluate(x, y)[0] < before
    _check_usable(model, x, y)


def test_keyboard_interrupt_then_save_and_load(tmp_path):
    x, y = _data()
    model = _tiny_model(seed=5)
    with pytest.raises(KeyboardInterrupt):
        model.fit(x, y, batch_size=8, epochs=3, verbose=0, callbacks=[_InterruptAt(1, 2)])
    model.save(tmp_path / "m.nncore")
    loaded = nncore.load_model(tmp_path / "m.nncore")
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    _check_usable(loaded, x, y)


class _Bomb(Layer):
    """An identity layer that raises KeyboardInterrupt inside the forward or
    backward pass of one chosen training step (mid-step, before the optimizer)."""

    def __init__(self, when=("backward", 5), **kw):
        super().__init__(**kw)
        self.when, self.calls = when, {"forward": 0, "backward": 0}

    def forward(self, x, training=False):
        if training:
            self._tick("forward")
        return x

    def backward(self, dy):
        self._tick("backward")
        return dy

    def _tick(self, what):
        self.calls[what] += 1
        if (what, self.calls[what]) == self.when:
            raise KeyboardInterrupt


@pytest.mark.parametrize("when", [("forward", 6), ("backward", 6)])
def test_keyboard_interrupt_mid_step_leaves_model_usable(when):
    """Interrupted inside a step (after the fused output layer started emitting
    logits): the step is dropped whole and the model predicts probabilities again."""
    x, y = _data()
    model = nncore.Sequential([Dense(4, activation="relu", input_dim=3), _Bomb(when),
                               Dense(2, activation="softmax")], seed=6)
    model.compile("sgd", "sparse_categorical_crossentropy", metrics=["accuracy"])
    weights_after = []

    class Keep(Callback):
        def on_train_batch_end(self, batch, logs=None):
            weights_after.append(self.model.get_flat_weights())

    with pytest.raises(KeyboardInterrupt):
        model.fit(x, y, batch_size=16, epochs=3, verbose=0, callbacks=[Keep()])
    assert len(weights_after) == 5  # steps 1-5 done, the 6th interrupted
    assert model.history.epoch == [0]  # 4 steps an epoch: one epoch finished
    # an interrupted step changed no parameter (the optimizer never ran)
    np.testing.assert_array_equal(model.get_flat_weights(), weights_after[-1])
    _check_usable(model, x, y)
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    _check_usable(model, x, y)


def test_sigint_during_fit_leaves_model_usable():
    """A real Ctrl-C (SIGINT to this process from another thread) while fit runs:
    KeyboardInterrupt, then a model that predicts, evaluates and trains on."""
    import signal
    import threading
    if not hasattr(signal, "pthread_kill") or threading.current_thread() is not \
            threading.main_thread():
        pytest.skip("needs signals delivered to the main thread")
    x, y = _data(512)
    model = _tiny_model(seed=7)
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    main = threading.main_thread().ident
    timer = threading.Timer(0.3, signal.pthread_kill, args=(main, signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            model.fit(x, y, batch_size=8, epochs=10_000, verbose=0)
    finally:
        timer.cancel()
    done = model.history.epoch
    assert done == list(range(len(done)))
    _check_usable(model, x, y)
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    _check_usable(model, x, y)


def test_interrupt_right_after_the_optimizer_kernel_keeps_the_step_count():
    x, y = _data()
    model = _tiny_model(seed=8)
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    calls = {"n": model.optimizer.iterations}

    class SignalAfterStep:
        # what the interpreter does with a SIGINT received during the kernel:
        # the handler runs at the first bytecode after the engine call returns
        def __init__(self, real):
            self.real = real

        def step(self, *args):
            self.real.step(*args)
            calls["n"] += 1
            if calls["n"] % 5 == 0:
                raise KeyboardInterrupt

    opt = model.optimizer
    object.__setattr__(opt, "_stepper", SignalAfterStep(opt._stepper))
    with pytest.raises(KeyboardInterrupt):
        model.fit(x, y, batch_size=8, epochs=3, verbose=0)
    assert model.optimizer.iterations == calls["n"], "steps applied vs steps counted"


@pytest.mark.parametrize("where", ["write", "fsync", "replace"])
def test_interrupted_save_keeps_the_previous_file(tmp_path, monkeypatch, where):
    """Ctrl-C (or a full disk) in the middle of save: the file on disk is still the
    last complete save, and no temporary file is left behind."""
    from nncore import io as nio
    x, y = _data()
    model = _tiny_model(seed=9)
    path = tmp_path / "m.nncore"
    model.save(path)
    before = path.read_bytes()
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)

    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    if where == "write":
        real_fdopen = os.fdopen

        class Half:
            def __init__(self, f):
                self.f, self.n = f, 0

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                self.f.close()

            def write(self, chunk):
                self.n += 1
                if self.n == 3:
                    raise KeyboardInterrupt
                return self.f.write(chunk)

            def __getattr__(self, name):
                return getattr(self.f, name)

        monkeypatch.setattr(nio.os, "fdopen", lambda *a, **k: Half(real_fdopen(*a, **k)))
    elif where == "fsync":
        monkeypatch.setattr(nio.os, "fsync", boom)
    else:
        monkeypatch.setattr(nio.os, "replace", boom)
    with pytest.raises(KeyboardInterrupt):
        model.save(path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.nncore"]
    nncore.load_model(path)
    model.save(path)  # and the next save works
    np.testing.assert_array_equal(nncore.load_model(path).predict(x), model.predict(x))
