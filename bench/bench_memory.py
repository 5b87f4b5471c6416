"""Peak memory of a training run, nncore beside PyTorch.

Each run is a fresh subprocess (so that neither library's allocations, nor
pytest's, count against the other): it imports its library, makes the data,
notes its peak resident set (ru_maxrss), then trains an MLP with Adam for one
epoch of mini-batches and predicts the training set, and reports the growth of
the peak over that baseline: the memory training itself needed. The figures
are in each benchmark's extra_info ("train_peak_mib", "process_peak_mib",
"baseline_mib"); the benchmark's time is that of the whole subprocess and
means little. For nncore, extra_info also has the tracemalloc peak of NumPy
allocations during training ("traced_peak_mib").

    python -m pytest bench/bench_memory.py --benchmark-json=mem.json
    BENCH_QUICK=1 python -m pytest bench/bench_memory.py --benchmark-disable   # CI
"""
import json
import os
import subprocess
import sys

import pytest

QUICK = os.environ.get("BENCH_QUICK") == "1"
# (layer sizes, samples, batch)
CASE = ((64, 32, 10), 2_000, 64) if QUICK else ((784, 1024, 1024, 10), 20_000, 128)
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_COMMON = r"""
import json, resource, sys
import numpy as np
sizes, n, batch = json.loads(sys.argv[1])
rng = np.random.default_rng(0)
x = rng.standard_normal((n, sizes[0]), dtype=np.float32)  # no float64 temporary
y = rng.integers(0, sizes[-1], n)
def peak_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
"""

_NNCORE = _COMMON + r"""
import tracemalloc
import nncore
from nncore.layers import Dense
nncore.set_num_threads(1)
layers = [Dense(sizes[1], activation="relu", input_dim=sizes[0])]
layers += [Dense(s, activation="relu") for s in sizes[2:-1]]
layers += [Dense(sizes[-1], activation="softmax")]
model = nncore.Sequential(layers, seed=0)
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
base = peak_mib()
tracemalloc.start()
model.fit(x, y, batch_size=batch, epochs=1, verbose=0)
p = model.predict(x, batch_size=batch)
traced = tracemalloc.get_traced_memory()[1] / 2**20
tracemalloc.stop()
print(json.dumps({"baseline_mib": base, "process_peak_mib": peak_mib(),
                  "traced_peak_mib": traced, "out": float(p.sum())}))
"""

_TORCH = _COMMON + r"""
import torch
torch.set_num_threads(1)
mods = []
for i in range(len(sizes) - 1):
    mods.append(torch.nn.Linear(sizes[i], sizes[i + 1]))
    if i < len(sizes) - 2:
        mods.append(torch.nn.ReLU())
net = torch.nn.Sequential(*mods)
opt = torch.optim.Adam(net.parameters(), lr=1e-3, fused=True)
loss_fn = torch.nn.CrossEntropyLoss()
xt, yt = torch.from_numpy(x), torch.from_numpy(y)
base = peak_mib()
perm = torch.from_numpy(rng.permutation(n))
for start in range(0, n, batch):
    idx = perm[start:start + batch]
    opt.zero_grad(set_to_none=True)
    loss = loss_fn(net(xt[idx]), yt[idx])
    loss.backward()
    opt.step()
with torch.no_grad():
    p = torch.cat([torch.softmax(net(xt[s:s + batch]), 1) for s in range(0, n, batch)])
print(json.dumps({"baseline_mib": base, "process_peak_mib": peak_mib(),
                  "out": float(p.sum())}))
"""


def _run(script):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
               OMP_NUM_THREADS="1")
    r = subprocess.run([sys.executable, "-c", script, json.dumps(CASE)], capture_output=True,
                       text=True, env=env, cwd=ROOT, timeout=600)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


def _record(benchmark, impl, script):
    benchmark.group = (f"peak memory of training {'-'.join(map(str, CASE[0]))}, "
                       f"{CASE[1]} samples, batch {CASE[2]}, Adam (MiB in extra_info)")
    benchmark.extra_info["impl"] = impl
    result = {}

    def once():
        result.update(_run(script))

    benchmark.pedantic(once, rounds=1, iterations=1)
    result["train_peak_mib"] = result["process_peak_mib"] - result["baseline_mib"]
    for key, value in result.items():
        if key != "out":
            benchmark.extra_info[key] = round(value, 1)
    # both train the same network on the same data: a sum of probabilities over n
    # samples is n, whatever was learnt
    assert abs(result["out"] - CASE[1]) < 1e-2 * CASE[1]
    print(f"\n{impl}: training peak +{result['train_peak_mib']:.1f} MiB over "
          f"{result['baseline_mib']:.1f} MiB after import and data "
          + (f"(NumPy traced peak {result['traced_peak_mib']:.1f} MiB)"
             if "traced_peak_mib" in result else ""))


def test_memory_nncore(benchmark):
    _record(benchmark, "nncore", _NNCORE)


def test_memory_torch(benchmark):
    pytest.importorskip("torch")
    _record(benchmark, "torch", _TORCH)
