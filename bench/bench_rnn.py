"""Recurrent layers' forward + backward through time, nncore beside PyTorch.

Case (the RNN issue): batch 32, 28 steps of 28 inputs (MNIST read row by row),
128 units, float32, the last state out; one round is the forward pass over
the sequence and the backward pass with a given gradient of the last state,
giving the gradients of every weight and of the input. Run for LSTM, GRU and
SimpleRNN (tanh) at 1 and 2 threads. GRU(reset_after=False) (Keras' original
form, no PyTorch counterpart) runs in the GRU case as a variant of nncore,
for its cost: two recurrent products a step instead of one.
Run: pytest bench/bench_rnn.py ; ratios: python bench/compare.py bench/bench_rnn.py
"""
import os

import numpy as np
import pytest

from nncore.layers import GRU, LSTM, SimpleRNN

QUICK = os.environ.get("BENCH_QUICK") == "1"
N, T, I, U = (4, 5, 6, 8) if QUICK else (32, 28, 28, 128)
THREADS = [1] if QUICK else [1, 2]
CELLS = {"LSTM": LSTM, "GRU": GRU, "SimpleRNN": SimpleRNN}


def _data():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, T, I)).astype(np.float32)
    dy = rng.standard_normal((N, U)).astype(np.float32)
    return x, dy


def _group(cell, threads):
    return f"{cell} b{N} t{T} in{I} u{U} fwd+bwd f32, {threads} thread(s)"


@pytest.mark.parametrize("cell", sorted(CELLS))
@pytest.mark.parametrize("threads", THREADS, indirect=True)
def test_rnn_nncore(benchmark, cell, threads):
    x, dy = _data()
    layer = CELLS[cell](U)
    layer(x)  # build, own storage
    layer.need_input_grad = True

    def step():
        layer.forward(x, True)
        layer.backward(dy)

    benchmark.group = _group(cell, threads)
    benchmark.extra_info["impl"] = "nncore"
    benchmark(step)


@pytest.mark.parametrize("threads", THREADS, indirect=True)
def test_rnn_nncore_gru_reset_before(benchmark, threads):
    x, dy = _data()
    layer = GRU(U, reset_after=False)
    layer(x)
    layer.need_input_grad = True

    def step():
        layer.forward(x, True)
        layer.backward(dy)

    benchmark.group = _group("GRU", threads)
    benchmark.extra_info["impl"] = "nncore GRU(reset_after=False)"
    benchmark(step)


@pytest.mark.parametrize("cell", sorted(CELLS))
@pytest.mark.parametrize("threads", THREADS, indirect=True)
def test_rnn_torch(benchmark, cell, threads):
    torch = pytest.importorskip("torch")
    x, dy = (torch.from_numpy(a) for a in _data())
    x.requires_grad_(True)
    module = {"LSTM": torch.nn.LSTM, "GRU": torch.nn.GRU, "SimpleRNN": torch.nn.RNN}[cell]
    m = module(I, U, batch_first=True)

    def step():
        x.grad = None
        for p in m.parameters():
            p.grad = None
        out, _ = m(x)
        out[:, -1].backward(dy)

    benchmark.group = _group(cell, threads)
    benchmark.extra_info["impl"] = "torch"
    benchmark(step)
