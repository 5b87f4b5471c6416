"""Whole training steps and single-sample inference, nncore beside PyTorch.

Cases (issue 4), float32, at 1 and 2 threads:
- MLP 784-1024-1024-10, ReLU, softmax cross-entropy, batch 256, Adam: one step.
- MLP 64-32-10, batch 32, Adam: one step (small networks: overhead dominates).
- 16-32-1 tanh/sigmoid network, one sample: one prediction.
Each implementation does the same work per round: forward, loss, backward,
optimizer update (torch: Adam(fused=True)).
"""
import functools
import os

import numpy as np
import pytest

import nncore
from nncore.layers import Dense

QUICK = os.environ.get("BENCH_QUICK") == "1"

CASES = {
    "mlp784": ((784, 1024, 1024, 10), 256),
    "mlp64": ((64, 32, 10), 32),
}
if QUICK:
    CASES = {"mlp784": ((32, 16, 16, 10), 8), "mlp64": ((64, 32, 10), 32)}


THREADS = [1] if QUICK else [1, 2]


def _data(sizes, batch):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, sizes[0])).astype(np.float32)
    y = rng.integers(0, sizes[-1], batch)
    return x, y


def _nncore_mlp(sizes):
    layers = [Dense(sizes[1], activation="relu", input_dim=sizes[0])]
    layers += [Dense(s, activation="relu") for s in sizes[2:-1]]
    layers += [Dense(sizes[-1], activation="softmax")]
    model = nncore.Sequential(layers, seed=0)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("threads", THREADS, indirect=True)
def test_train_step_nncore(benchmark, case, threads):
    sizes, batch = CASES[case]
    x, y = _data(sizes, batch)
    model = _nncore_mlp(sizes)
    model.train_on_batch(x, y)
    benchmark.group = f"train step {'-'.join(map(str, sizes))} batch {batch}, Adam, {threads} thread(s)"
    benchmark.extra_info["impl"] = "nncore"
    benchmark(model._train_step, x, y)


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("threads", THREADS, indirect=True)
def test_train_step_torch(benchmark, case, threads):
    torch = pytest.importorskip("torch")
    sizes, batch = CASES[case]
    x, y = _data(sizes, batch)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    mods = []
    for i in range(len(sizes) - 1):
        mods.append(torch.nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            mods.append(torch.nn.ReLU())
    net = torch.nn.Sequential(*mods)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, fused=True)
    loss_fn = torch.nn.CrossEntropyLoss()

    def step():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(net(xt), yt)
        loss.backward()
        opt.step()
        return loss

    step()
    benchmark.group = f"train step {'-'.join(map(str, sizes))} batch {batch}, Adam, {threads} thread(s)"
    benchmark.extra_info["impl"] = "torch"
    benchmark(step)


@pytest.mark.parametrize("threads", THREADS, indirect=True)
def test_predict_one_nncore(benchmark, run, threads):
    model = nncore.Sequential([Dense(32, activation="tanh", input_dim=16),
                               Dense(1, activation="sigmoid")], seed=0)
    model.build()
    x = np.random.default_rng(0).standard_normal((1, 16)).astype(np.float32)
    benchmark.group = f"predict one sample, 16-32-1 tanh/sigmoid, {threads} thread(s)"
    benchmark.extra_info["impl"] = "nncore"
    x1, out = x[0], np.empty(1, np.float32)
    # run(): enough calls per round for ~20 ms, so that a sub-microsecond call
    # is not lost in the timer's own overhead
    run(functools.partial(model.predict_one, x1, out))


@pytest.mark.parametrize("threads", THREADS, indirect=True)
def test_predict_one_torch(benchmark, run, threads):
    torch = pytest.importorskip("torch")
    net = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.Tanh(),
                              torch.nn.Linear(32, 1), torch.nn.Sigmoid())
    x = torch.from_numpy(np.random.default_rng(0).standard_normal((1, 16)).astype(np.float32))

    def predict():
        with torch.no_grad():
            return net(x).numpy()

    benchmark.group = f"predict one sample, 16-32-1 tanh/sigmoid, {threads} thread(s)"
    benchmark.extra_info["impl"] = "torch"
    run(predict)
