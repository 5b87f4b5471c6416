"""Convolutional networks, nncore beside PyTorch, 1 and 2 threads, float32.

Cases (conv issue):
- Conv2D 3x3, 32 -> 64 channels, 28 x 28, batch 64, "same", bias + ReLU:
  forward and backward (dx, dW, db) per round.
- LeNet-5 on 28 x 28 x 1, batch 64, Adam, softmax cross-entropy: one
  training step (forward, loss, backward, update) per round.
Each implementation does the same work per round; torch runs in its own
layout (NCHW). Quick mode (BENCH_QUICK=1, CI's `pytest bench
--benchmark-disable`): small shapes, one thread, just checks it runs.
Run: pytest bench/bench_conv.py ; ratios: python bench/compare.py
"""
import os

import numpy as np
import pytest

import nncore
from nncore import _core
from nncore.layers import Conv2D, Dense, Flatten, Input, MaxPooling2D

QUICK = os.environ.get("BENCH_QUICK") == "1"
N, HW, CIN, COUT = (4, 8, 4, 8) if QUICK else (64, 28, 32, 64)
LENET_BATCH, LENET_HW = (8, 28) if QUICK else (64, 28)
THREADS = [1] if QUICK else [1, 2]


def _conv_data():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, HW, HW, CIN)).astype(np.float32)
    w = (rng.standard_normal((3, 3, CIN, COUT)) / np.sqrt(9 * CIN)).astype(np.float32)
    b = rng.standard_normal(COUT).astype(np.float32)
    dy = rng.standard_normal((N, HW, HW, COUT)).astype(np.float32)
    return x, w, b, dy


def _conv_group(threads):
    return f"conv2d 3x3 {CIN}->{COUT} {HW}x{HW} batch {N} fwd+bwd f32, {threads} thread(s)"


@pytest.mark.parametrize("threads", THREADS, indirect=True)
def test_conv_nncore(benchmark, threads):
    x, w, b, dy = _conv_data()
    relu = _core.ACTIVATIONS["relu"]
    y = np.empty_like(dy)
    dz = np.empty_like(dy)
    cols = np.empty(_core.conv2d_cols_size(x.shape, w.shape, 1, "same"), np.float32)
    dx, dw, db = np.empty_like(x), np.empty_like(w), np.empty_like(b)

    def step():
        _core.conv2d_forward(x, w, b, 1, "same", 1, relu, 0.0, out=y, cols=cols)
        _core.act_backward(relu, 0.0, y, dy, dz)
        _core.conv2d_backward(x, w, dz, cols, 1, "same", 1, dx=dx, dw=dw, db=db, dcols=cols)

    benchmark.group = _conv_group(threads)
    benchmark.extra_info["impl"] = "nncore"
    benchmark(step)


@pytest.mark.parametrize("threads", THREADS, indirect=True)
def test_conv_torch(benchmark, threads):
    torch = pytest.importorskip("torch")
    x, w, b, dy = _conv_data()
    xt = torch.from_numpy(x.transpose(0, 3, 1, 2).copy()).requires_grad_()
    wt = torch.from_numpy(w.transpose(3, 2, 0, 1).copy()).requires_grad_()
    bt = torch.from_numpy(b).requires_grad_()
    dyt = torch.from_numpy(dy.transpose(0, 3, 1, 2).copy())

    def step():
        xt.grad = wt.grad = bt.grad = None
        y = torch.relu(torch.nn.functional.conv2d(xt, wt, bt, padding=1))
        y.backward(dyt)

    benchmark.group = _conv_group(threads)
    benchmark.extra_info["impl"] = "torch"
    benchmark(step)


def _digits():
    rng = np.random.default_rng(1)
    x = rng.random((LENET_BATCH, LENET_HW, LENET_HW, 1)).astype(np.float32)
    y = rng.integers(0, 10, LENET_BATCH)
    return x, y


def _lenet_group(threads):
    return f"LeNet-5 train step {LENET_HW}x{LENET_HW} batch {LENET_BATCH}, Adam, {threads} thread(s)"


def lenet5(input_shape=(28, 28, 1), seed=0):
    """LeNet-5 as in examples/lenet5.py (ReLU, max pooling)."""
    model = nncore.Sequential([
        Input(input_shape),
        Conv2D(6, 5, padding="same", activation="relu"),
        MaxPooling2D(2),
        Conv2D(16, 5, activation="relu"),
        MaxPooling2D(2),
        Flatten(),
        Dense(120, activation="relu"),
        Dense(84, activation="relu"),
        Dense(10, activation="softmax"),
    ], seed=seed)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


@pytest.mark.parametrize("threads", THREADS, indirect=True)
def test_lenet_step_nncore(benchmark, threads):
    x, y = _digits()
    model = lenet5((LENET_HW, LENET_HW, 1))
    model.train_on_batch(x, y)
    benchmark.group = _lenet_group(threads)
    benchmark.extra_info["impl"] = "nncore"
    benchmark(model.train_on_batch, x, y)


@pytest.mark.parametrize("threads", THREADS, indirect=True)
def test_lenet_step_torch(benchmark, threads):
    torch = pytest.importorskip("torch")
    nn = torch.nn
    x, y = _digits()
    xt = torch.from_numpy(x.transpose(0, 3, 1, 2).copy())
    yt = torch.from_numpy(y)
    flat = 16 * ((LENET_HW // 2 - 4) // 2) ** 2
    net = nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                        nn.Linear(flat, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
                        nn.Linear(84, 10))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, fused=True)
    loss_fn = nn.CrossEntropyLoss()

    def step():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(net(xt), yt)
        loss.backward()
        opt.step()
        return loss

    step()
    benchmark.group = _lenet_group(threads)
    benchmark.extra_info["impl"] = "torch"
    benchmark(step)
