"""Training parity with PyTorch: same initial weights, same batches, 10 steps.

Losses and weights after 10 steps of SGD, momentum, RMSprop and Adam agree
within 1e-5 relative in float32 and 1e-10 in float64 (issue: models and
trainers, item 10).
"""
import numpy as np
import pytest

import nncore
from nncore.layers import Dense

torch = pytest.importorskip("torch")

OPTIMIZERS = {
    "sgd": (lambda: nncore.optimizers.SGD(learning_rate=0.1),
            lambda p: torch.optim.SGD(p, lr=0.1)),
    "momentum": (lambda: nncore.optimizers.SGD(learning_rate=0.05, momentum=0.9),
                 lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9)),
    "nesterov": (lambda: nncore.optimizers.SGD(learning_rate=0.05, momentum=0.9, nesterov=True),
                 lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True)),
    "rmsprop": (lambda: nncore.optimizers.RMSprop(learning_rate=0.01, rho=0.9, epsilon=1e-7),
                lambda p: torch.optim.RMSprop(p, lr=0.01, alpha=0.9, eps=1e-7)),
    "adam": (lambda: nncore.optimizers.Adam(learning_rate=0.01, beta_1=0.9, beta_2=0.999,
                                            epsilon=1e-7),
             lambda p: torch.optim.Adam(p, lr=0.01, betas=(0.9, 0.999), eps=1e-7)),
}
TOL = {"float32": 1e-5, "float64": 1e-10}


def _batches(dtype, steps=10, batch=16):
    rng = np.random.default_rng(0)
    return [(rng.normal(size=(batch, 6)).astype(dtype), rng.integers(0, 4, batch))
            for _ in range(steps)]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_ten_steps_agree_with_torch(name, dtype):
    make_nn, make_torch = OPTIMIZERS[name]
    model = nncore.Sequential([Dense(12, activation="tanh", input_dim=6),
                               Dense(8, activation="relu"),
                               Dense(4, activation="softmax")], seed=1, dtype=dtype)
    model.compile(optimizer=make_nn(), loss="sparse_categorical_crossentropy")
    tdtype = torch.float32 if dtype == "float32" else torch.float64
    net = torch.nn.Sequential(torch.nn.Linear(6, 12), torch.nn.Tanh(), torch.nn.Linear(12, 8),
                              torch.nn.ReLU(), torch.nn.Linear(8, 4)).to(tdtype)
    weights = model.get_weights()
    with torch.no_grad():
        for i, lin in enumerate([net[0], net[2], net[4]]):
            lin.weight.copy_(torch.from_numpy(weights[2 * i].T.copy()))
            lin.bias.copy_(torch.from_numpy(weights[2 * i + 1]))
    opt = make_torch(net.parameters())
    loss_fn = torch.nn.CrossEntropyLoss()
    for x, y in _batches(dtype):
        ours = model.train_on_batch(x, y)
        opt.zero_grad()
        loss = loss_fn(net(torch.from_numpy(x)), torch.from_numpy(y))
        loss.backward()
        opt.step()
        assert ours == pytest.approx(loss.item(), rel=TOL[dtype])
    theirs = []
    for lin in (net[0], net[2], net[4]):
        theirs += [lin.weight.detach().numpy().T, lin.bias.detach().numpy()]
    for got, want in zip(model.get_weights(), theirs):
        np.testing.assert_allclose(got, want, rtol=TOL[dtype], atol=TOL[dtype] * 1e-2)
