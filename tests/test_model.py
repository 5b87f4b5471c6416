"""Sequential, layers by hand, compile/fit/evaluate/predict, callbacks, files."""
import io
import os

import numpy as np
import pytest

import nncore
from nncore import callbacks
from nncore.io import ModelFileError
from nncore.layers import Activation, Dense, Flatten, Input


def _xor():
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], np.float32)
    y = np.array([[0], [1], [1], [0]], np.float32)
    return x, y


def _mlp(seed=0, dtype="float32", out_act="softmax", classes=3, inputs=5):
    return nncore.Sequential([Dense(8, activation="tanh", input_dim=inputs),
                              Dense(classes, activation=out_act)], seed=seed, dtype=dtype)


def _blobs(n=120, classes=3, inputs=5, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 3, (classes, inputs))
    labels = rng.integers(0, classes, n)
    x = centers[labels] + rng.normal(0, 1, (n, inputs))
    return x.astype(np.float32), labels


# ------------------------------------------------------------------ structure
def test_flat_buffers_hold_every_parameter_aligned():
    model = _mlp()
    model.build()
    assert model.count_params() == 5 * 8 + 8 + 8 * 3 + 3
    for layer in model.layers:
        for name, p in layer.params.items():
            assert np.shares_memory(p, model._params)
            assert p.ctypes.data % 64 == 0, name
            assert np.shares_memory(layer.grads[name], model._grads)


def test_get_set_weights_keras_layouts():
    model = _mlp()
    weights = model.get_weights()
    assert [w.shape for w in weights] == [(5, 8), (8,), (8, 3), (3,)]
    new = [np.full_like(w, i) for i, w in enumerate(weights)]
    model.set_weights(new)
    for got, want in zip(model.get_weights(), new):
        np.testing.assert_array_equal(got, want)
    with pytest.raises(ValueError, match="has shape"):
        model.set_weights([np.zeros((4, 8))] + new[1:])
    with pytest.raises(ValueError, match="4 weight arrays"):
        model.set_weights(new[:2])


def test_summary_lists_layers_shapes_and_counts():
    lines = []
    _mlp().summary(print_fn=lines.append)
    text = "\n".join(lines)
    assert "(None, 8)" in text and "(None, 3)" in text
    assert "Total params: 75" in text


def test_same_seed_same_weights_other_seed_different():
    a, b, c = _mlp(seed=3), _mlp(seed=3), _mlp(seed=4)
    for m in (a, b, c):
        m.build()
    np.testing.assert_array_equal(a._params, b._params)
    assert not np.array_equal(a._params, c._params)


def test_missing_input_shape_is_explained():
    model = nncore.Sequential([Dense(3)])
    with pytest.raises(ValueError, match="input shape"):
        model.build()
    model = nncore.Sequential([Input(shape=(4,)), Dense(3)])
    model.build()
    assert model.output_shape == (3,)


# ------------------------------------------------------ gradients by hand
@pytest.mark.parametrize("act", ["sigmoid", "tanh", "relu", "softplus", "elu", "linear"])
def test_model_gradients_match_finite_differences(act):
    rng = np.random.default_rng(1)
    model = nncore.Sequential([Dense(4, activation=act, input_dim=3),
                               Dense(2, activation="softmax")], seed=1, dtype="float64")
    model.build()
    model.compile(optimizer="sgd", loss="categorical_crossentropy")
    x = rng.normal(size=(6, 3))
    y = np.eye(2)[rng.integers(0, 2, 6)]

    def loss_at(flat):
        model._params[...] = flat
        return model.test_on_batch(x, y)

    flat = model._params.copy()
    model._set_logits(True)
    out = model._forward(x, True)
    _, dy = model._loss(y, out, True)
    for layer in reversed(model.layers):
        dy = layer.backward(dy)
    model._set_logits(False)
    analytic = model._grads.copy()
    numeric = np.zeros_like(flat)
    eps = 1e-6
    for i in range(flat.size):
        e = np.zeros_like(flat)
        e[i] = eps
        numeric[i] = (loss_at(flat + e) - loss_at(flat - e)) / (2 * eps)
    model._params[...] = flat
    np.testing.assert_allclose(analytic, numeric, rtol=1e-5, atol=1e-8)


def test_layer_by_hand_forward_backward():
    layer = Dense(2, activation="sigmoid", kernel_initializer="ones")
    layer.build((3,))
    layer.ensure_storage(np.float64)
    x = np.array([[0.4, 0.3, 0.1]])
    y = layer(x)
    np.testing.assert_allclose(y, 1 / (1 + np.exp(-0.8)) * np.ones((1, 2)))
    dx = layer.backward(np.ones_like(y))
    s = y[0, 0] * (1 - y[0, 0])
    np.testing.assert_allclose(layer.grads["kernel"], s * np.repeat(x.T, 2, axis=1))
    np.testing.assert_allclose(dx, 2 * s * np.ones((1, 3)))


# -------------------------------------------------------------- training
def test_xor_learns_to_100_percent():
    x, y = _xor()
    model = nncore.Sequential([Dense(8, activation="tanh", input_dim=2),
                               Dense(1, activation="sigmoid")], seed=0)
    model.compile(optimizer=nncore.optimizers.Adam(learning_rate=0.05),
                  loss="binary_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, epochs=300, batch_size=4, verbose=0)
    assert history.history["accuracy"][-1] == 1.0
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert np.array_equal(model.predict(x) > 0.5, y > 0.5)


@pytest.mark.parametrize("loss,labels", [("sparse_categorical_crossentropy", "int"),
                                         ("categorical_crossentropy", "onehot")])
def test_classifier_fits_blobs_with_validation(loss, labels):
    x, y = _blobs()
    if labels == "onehot":
        y = np.eye(3, dtype=np.float32)[y]
    model = _mlp()
    model.compile(optimizer=nncore.optimizers.Adam(0.01), loss=loss, metrics=["accuracy"])
    hist = model.fit(x, y, epochs=30, batch_size=16, validation_split=0.25, verbose=0)
    assert set(hist.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert len(hist.history["loss"]) == 30 and hist.epoch == list(range(30))
    assert hist.history["val_accuracy"][-1] >= 0.9
    loss_value, acc = model.evaluate(x, y, batch_size=7)
    assert acc >= 0.9 and np.isfinite(loss_value)
    probs = model.predict(x, batch_size=50)
    np.testing.assert_allclose(probs.sum(axis=1), 1, rtol=1e-5)


def test_fused_and_unfused_output_give_the_same_loss():
    x, y = _blobs(20)
    model = _mlp(dtype="float64")
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    fused = model.test_on_batch(x, y)
    probs = model.predict(x)
    direct = nncore.losses.sparse_categorical_crossentropy(y, probs)
    assert fused == pytest.approx(direct, rel=1e-9)


def test_training_is_reproducible_bit_for_bit():
    x, y = _blobs(64)
    runs = []
    for _ in range(2):
        model = _mlp(seed=11)
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        model.fit(x, y, epochs=3, batch_size=8, verbose=0)
        runs.append(model._params.copy())
    np.testing.assert_array_equal(runs[0], runs[1])


def test_fit_accepts_a_generator_of_batches():
    x, y = _blobs(64)

    def batches():
        while True:
            for i in range(0, 64, 16):
                yield x[i:i + 16], y[i:i + 16]

    model = _mlp()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    hist = model.fit(batches(), epochs=3, steps_per_epoch=4, verbose=0)
    assert len(hist.history["loss"]) == 3


def test_fit_input_errors_are_clear():
    x, y = _blobs(10)
    model = _mlp()
    with pytest.raises(RuntimeError, match="compile"):
        model.fit(x, y, verbose=0)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match="10 samples but y has 9"):
        model.fit(x, y[:9], verbose=0)
    with pytest.raises(ValueError, match="model takes samples of shape"):
        model.fit(x[:, :4], y, verbose=0)
    with pytest.raises(ValueError, match="is not a class label of this model"):
        model.fit(x, y + 5, verbose=0)
    with pytest.raises(ValueError, match="batch_size"):
        model.fit(x, y, batch_size=0, verbose=0)


# ------------------------------------------------------------- callbacks
def test_early_stopping_stops_after_patience():
    x, y = _blobs(60)
    model = _mlp()
    model.compile(optimizer=nncore.optimizers.SGD(learning_rate=0.0), loss="sparse_categorical_crossentropy")
    stop = callbacks.EarlyStopping(monitor="loss", patience=2, min_delta=1e-6,
                                   restore_best_weights=True)
    hist = model.fit(x, y, epochs=50, verbose=0, callbacks=[stop])
    assert len(hist.epoch) == 3  # no improvement with a zero learning rate


def test_early_stopping_names_missing_metric():
    x, y = _blobs(20)
    model = _mlp()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    with pytest.raises(KeyError, match="val_loss"):
        model.fit(x, y, epochs=2, verbose=0, callbacks=[callbacks.EarlyStopping()])


def test_csv_logger_and_lr_scheduler(tmp_path):
    x, y = _blobs(20)
    model = _mlp()
    model.compile(optimizer=nncore.optimizers.SGD(learning_rate=0.1),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    path = tmp_path / "log.csv"
    sched = callbacks.LearningRateScheduler(lambda epoch, lr: 0.1 * 0.5 ** epoch)
    model.fit(x, y, epochs=3, verbose=0, callbacks=[sched, callbacks.CSVLogger(path)])
    rows = path.read_text().strip().splitlines()
    assert rows[0].split(",") == ["epoch", "accuracy", "learning_rate", "loss"]
    assert len(rows) == 4
    assert float(rows[-1].split(",")[2]) == pytest.approx(0.025)


def test_progress_is_one_line_per_epoch_off_a_terminal(capsys):
    x, y = _blobs(20)
    model = _mlp()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=2, verbose=1)
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 2
    assert out[0].startswith("Epoch 1/2") and "loss:" in out[0] and "accuracy:" in out[0]
    model.fit(x, y, epochs=2, verbose=0)
    assert capsys.readouterr().out == ""


def test_progress_bar_on_a_terminal():
    class Tty(io.StringIO):
        def isatty(self):
            return True

    stream = Tty()
    bar = callbacks.ProgbarLogger(verbose=1, stream=stream)
    bar.set_params({"epochs": 1, "steps": 4})
    bar.on_epoch_begin(0)
    for step in range(4):
        bar.on_train_batch_end(step, {"loss": 1.0 / (step + 1)})
    bar.on_epoch_end(0, {"loss": 0.25})
    text = stream.getvalue()
    assert "Epoch 1/1" in text and "4/4 [" in text and "loss: 0.2500" in text


# ------------------------------------------------------------------ files
def test_save_load_round_trip_and_resume_bit_for_bit(tmp_path):
    x, y = _blobs(48)
    straight = _mlp(seed=5)
    straight.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                     metrics=["accuracy"])
    straight.fit(x, y, epochs=4, batch_size=8, verbose=0)

    first = _mlp(seed=5)
    first.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    first.fit(x, y, epochs=2, batch_size=8, verbose=0)
    path = tmp_path / "model.nncore"
    first.save(path)
    resumed = nncore.load_model(path)
    np.testing.assert_array_equal(resumed.predict(x), first.predict(x))
    resumed.fit(x, y, epochs=4, initial_epoch=2, batch_size=8, verbose=0)
    np.testing.assert_array_equal(resumed._params, straight._params)


def test_damaged_files_give_clear_errors(tmp_path):
    model = _mlp()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    path = tmp_path / "m.nncore"
    model.save(path)
    blob = path.read_bytes()
    cases = {
        "truncated": blob[:len(blob) // 2],
        "flipped": blob[:100] + bytes([blob[100] ^ 1]) + blob[101:],
        "empty": b"",
        "foreign": b"PK\x03\x04" + blob[4:],
    }
    for name, data in cases.items():
        bad = tmp_path / f"{name}.nncore"
        bad.write_bytes(data)
        with pytest.raises(ModelFileError):
            nncore.load_model(bad)
    newer = bytearray(blob)
    newer[8] = 99
    bad = tmp_path / "newer.nncore"
    bad.write_bytes(bytes(newer))
    with pytest.raises(ModelFileError, match="newer nncore"):
        nncore.load_model(bad)


def test_save_is_atomic_on_failure(tmp_path, monkeypatch):
    model = _mlp()
    model.build()
    path = tmp_path / "m.nncore"
    model.save(path)
    before = path.read_bytes()

    def broken_replace(src, dst):
        raise OSError("disk gone")

    monkeypatch.setattr(os, "replace", broken_replace)
    model._params[...] = 0
    with pytest.raises(OSError):
        model.save(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.nncore"]


def test_model_checkpoint_saves_best_only(tmp_path):
    x, y = _blobs(40)
    model = _mlp()
    model.compile(optimizer=nncore.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
    ckpt = callbacks.ModelCheckpoint(str(tmp_path / "m-{epoch:02d}.nncore"), monitor="loss",
                                     save_best_only=True)
    model.fit(x, y, epochs=3, verbose=0, callbacks=[ckpt])
    saved = sorted(p.name for p in tmp_path.iterdir())
    assert saved == ["m-01.nncore", "m-02.nncore", "m-03.nncore"]  # the loss fell each epoch
    np.testing.assert_array_equal(nncore.load_model(tmp_path / "m-03.nncore").predict(x),
                                  model.predict(x))


def test_fit_on_a_batch_loader_equals_manual_epochs():
    x, y = _blobs(50)
    loader = nncore.data.BatchLoader(x, y, batch_size=16, shuffle=True, seed=4)
    assert len(loader) == 4 and [len(b[0]) for b in loader] == [16, 16, 16, 2]
    assert len(nncore.data.BatchLoader(x, y, batch_size=16, drop_last=True)) == 3
    model = _mlp()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    hist = model.fit(loader, epochs=2, verbose=0)
    assert len(hist.history["loss"]) == 2


def test_data_helpers():
    y = np.array([2, 0, 1])
    np.testing.assert_array_equal(nncore.data.one_hot(y), np.eye(3)[y])
    with pytest.raises(ValueError, match="lie in"):
        nncore.data.one_hot(y, 2)
    x = np.arange(20.0).reshape(10, 2)
    xtr, xte, ytr, yte = nncore.data.train_test_split(x, np.arange(10), test_size=0.3, seed=1)
    assert len(xte) == 3 and sorted(np.concatenate([ytr, yte])) == list(range(10))
    scaler = nncore.data.StandardScaler().fit(xtr)
    z = scaler.transform(xtr, dtype=np.float64)
    np.testing.assert_allclose(z.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(scaler.inverse_transform(z), xtr)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_inference_plan_matches_layer_by_layer(dtype):
    rng = np.random.default_rng(3)
    model = nncore.Sequential([Flatten(input_shape=(2, 3)), Dense(7, activation="tanh"),
                               nncore.layers.Dropout(0.5), Dense(4),
                               Activation("leaky_relu", alpha=0.1),
                               Dense(3, activation="softmax")], seed=2, dtype=dtype)
    model.build()
    assert model._inference_plan() is not None
    x = rng.normal(size=(9, 2, 3)).astype(dtype)
    by_layers = model._forward(model._as_x(x), False).copy()
    np.testing.assert_array_equal(model.predict(x, batch_size=4), by_layers)
    np.testing.assert_array_equal(model.predict_on_batch(x), by_layers)
    np.testing.assert_array_equal(model.predict_one(x[5]), by_layers[5])
    out = np.empty(3, dtype)
    assert model.predict_one(x[0], out=out) is out
    with pytest.raises(ValueError, match="one sample of this model"):
        model.predict_one(x[:2])


def test_models_without_a_plan_fall_back():
    model = nncore.Sequential([Dense(4, input_dim=3), nncore.layers.BatchNormalization(),
                               Dense(2)], seed=0)
    model.build()
    assert model._inference_plan() is None
    x = np.ones((5, 3), np.float32)
    np.testing.assert_array_equal(model.predict_one(x[0]), model.predict(x)[0])


def test_predict_from_many_threads_gives_the_serial_bits():
    from concurrent.futures import ThreadPoolExecutor
    x, _ = _blobs(200)
    model = _mlp(seed=9)
    model.build()
    serial = [model.predict_one(row) for row in x]
    with ThreadPoolExecutor(8) as pool:
        parallel = list(pool.map(model.predict_one, x))
    np.testing.assert_array_equal(np.array(parallel), np.array(serial))


def test_training_is_bit_identical_at_one_and_two_threads():
    x, y = _blobs(256, inputs=5)
    before = nncore.get_num_threads()
    runs = []
    try:
        for threads in (1, 2):
            nncore.set_num_threads(threads)
            model = nncore.Sequential([Dense(64, activation="relu", input_dim=5),
                                       nncore.layers.Dropout(0.2),
                                       Dense(3, activation="softmax")], seed=21)
            model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
            model.fit(x, y, epochs=2, batch_size=128, verbose=0)
            runs.append(model.get_flat_weights())
    finally:
        nncore.set_num_threads(before)
    np.testing.assert_array_equal(runs[0], runs[1])


def test_check_numerics_names_layer_and_batch():
    # linear regression with far too large a learning rate diverges to inf
    x, y = nncore.datasets.linear(64)
    model = nncore.Sequential([Dense(1, input_dim=1, name="line")], seed=0)
    model.compile(optimizer=nncore.optimizers.SGD(learning_rate=1e6), loss="mse",
                  check_numerics=True)
    with pytest.raises(FloatingPointError,
                       match=r"layer 'line' produced a non-finite .* epoch \d+, batch \d+"):
        model.fit(x, y, epochs=20, batch_size=8, verbose=0)


def test_labels_out_of_range_fail_before_any_work():
    x, y = _blobs(64)
    y[40] = 7
    model = _mlp()
    model.build()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    before = model.get_flat_weights()
    with pytest.raises(ValueError, match=r"y\[40\] = 7 is not a class label"):
        model.fit(x, y, epochs=1, verbose=0)
    np.testing.assert_array_equal(model.get_flat_weights(), before)


def test_a_second_concurrent_fit_raises():
    import threading
    x, y = _blobs(64)
    model = _mlp()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    started, release = threading.Event(), threading.Event()

    class Hold(callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            started.set()
            release.wait(5)

    t = threading.Thread(target=model.fit, args=(x, y),
                         kwargs=dict(epochs=1, verbose=0, callbacks=[Hold()]))
    t.start()
    assert started.wait(5)
    try:
        with pytest.raises(RuntimeError, match="already training"):
            model.fit(x, y, epochs=1, verbose=0)
    finally:
        release.set()
        t.join()


def test_keyboard_interrupt_leaves_a_usable_model_and_history():
    x, y = _blobs(64)
    model = _mlp()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")

    class Interrupt(callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if self.params and len(model.history.epoch) == 2 and batch == 3:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        model.fit(x, y, epochs=5, batch_size=8, verbose=0, callbacks=[Interrupt()])
    assert model.history.epoch == [0, 1]
    assert np.isfinite(model.get_flat_weights()).all()
    assert model.predict(x).shape == (64, 3)
    model.fit(x, y, epochs=1, verbose=0)  # and it trains on


@pytest.mark.parametrize("out_act,loss", [("softmax", "sparse_categorical_crossentropy"),
                                          ("sigmoid", "binary_crossentropy"), (None, "mse")])
def test_training_plan_equals_layer_by_layer_bit_for_bit(out_act, loss):
    x, labels = _blobs(96)
    y = labels if loss.startswith("sparse") else (
        (labels == 1).astype(np.float32)[:, None] if out_act else x[:, :1] * 2)
    runs = []
    for layer_path in (False, True):
        model = nncore.Sequential([Dense(16, activation="tanh", input_dim=5),
                                   Activation("relu"),
                                   Dense(3 if loss.startswith("sparse") else 1,
                                         activation=out_act,
                                         kernel_regularizer=nncore.regularizers.L2(1e-3))],
                                  seed=4)
        model.compile(optimizer="adam", loss=loss, check_numerics=layer_path)
        model.fit(x, y, epochs=2, batch_size=16, verbose=0)
        assert (model._train_plan is None) == layer_path
        runs.append(model.get_flat_weights())
    np.testing.assert_array_equal(runs[0], runs[1])


def test_repeated_fit_calls_shuffle_anew(monkeypatch):
    from nncore import training
    x, y = _blobs(64)
    streams = []
    real = training.random.permutation

    def spy(n, seed=None, stream=None):
        streams.append(stream)
        return real(n, seed=seed, stream=stream)

    monkeypatch.setattr(training.random, "permutation", spy)
    model = _mlp(seed=8)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    assert streams == [0, 4]  # keyed by the updates done, so the second call reshuffles
    # (resumed runs stay exact: test_save_load_round_trip_and_resume_bit_for_bit)


def test_flat_weights_of_an_unbuilt_model_build_it():
    assert np.isfinite(nncore.Sequential([Dense(2, input_dim=1)]).get_flat_weights()).all()


def test_compile_builds_a_model_whose_input_shape_is_known():
    model = nncore.Sequential([Input(shape=(4,)), Dense(3)])
    model.compile(optimizer="sgd", loss="mse")
    assert model.built and model.layers[1].output_shape == (3,)
    lazy = nncore.Sequential([Dense(3)])
    lazy.compile(optimizer="sgd", loss="mse")
    assert not lazy.built  # built by the first fit/predict, from the data's shape
