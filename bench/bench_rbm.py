"""Training a Bernoulli RBM, nncore beside scikit-learn's BernoulliRBM.

Case (RBM issue): digits16's 60,000 training images (256 binary pixels),
256 hidden units, batch 64, 10 epochs, learning rate 0.1, persistent CD-1
(scikit-learn's method) with the same initialisation (N(0, 0.01) weights,
zero biases). One round is one whole ``fit``. nncore runs float32 (its fast
path; monitor=False so it does exactly scikit-learn's work per update);
scikit-learn runs as it does on this uint8 data (converted to float64), and
again on float32 input ("sklearn float32"). extra_info["pseudo_likelihood"]
is the mean of score_samples over the 10,000 test images (averaged over 5
calls, since each flips random bits) so speed is read beside quality.
Threads: every library limited to 1, then 2 (threadpoolctl for scikit-learn's BLAS).
nncore's products here are mostly sums of selected rows (csrc/rbm_bin.h): the
data, the sampled visibles and the sampled hiddens are all 0/1 and sparse
(~16% and ~20% ones), so the case measures that path; dense data would take
the GEMM (see tests/test_rbm.py for the two compared).
Run: pytest bench/bench_rbm.py ; ratios: python bench/compare.py bench/bench_rbm.py
Quick (CI): BENCH_QUICK=1 pytest bench/bench_rbm.py --benchmark-disable
"""
import os

import numpy as np
import pytest

import nncore
from nncore.rbm import BernoulliRBM

QUICK = os.environ.get("BENCH_QUICK") == "1"
N_TRAIN, N_ITER, N_HIDDEN = (2000, 1, 32) if QUICK else (60000, 10, 256)
BATCH, LR = 64, 0.1
THREADS = [1] if QUICK else [1, 2]
ROUNDS = 1 if QUICK else 3


@pytest.fixture(scope="module")
def data():
    (x, _), (xt, _) = nncore.datasets.load_digits16()
    return x[:N_TRAIN].reshape(-1, 256), xt.reshape(-1, 256)[:2000 if QUICK else None]


def _case(threads):
    return (f"BernoulliRBM digits16 {N_TRAIN}x256 -> {N_HIDDEN}, batch {BATCH}, "
            f"{N_ITER} epochs, {threads} thread(s)")


def _pl(model, xt):
    return float(np.mean([model.score_samples(xt).mean() for _ in range(5)]))


@pytest.mark.parametrize("threads", THREADS, indirect=True)
def test_rbm_nncore(benchmark, threads, data):
    x, xt = data
    x32 = x.astype(np.float32)  # converted once, like scikit-learn's validate_data
    models = []

    def fit():
        models.append(BernoulliRBM(N_HIDDEN, learning_rate=LR, batch_size=BATCH, n_iter=N_ITER,
                                   random_state=0, monitor=False).fit(x32))

    benchmark.group = _case(threads)
    benchmark.extra_info["impl"] = "nncore"
    benchmark.pedantic(fit, rounds=ROUNDS, iterations=1)
    benchmark.extra_info["pseudo_likelihood"] = _pl(models[-1], xt)


@pytest.mark.parametrize("dtype", [None, np.float32], ids=["as-is", "float32"])
@pytest.mark.parametrize("threads", THREADS, indirect=True)
def test_rbm_sklearn(benchmark, threads, data, dtype):
    sk = pytest.importorskip("sklearn.neural_network")
    x, xt = data
    x_in = x if dtype is None else x.astype(dtype)
    models = []

    def fit():
        models.append(sk.BernoulliRBM(N_HIDDEN, learning_rate=LR, batch_size=BATCH,
                                      n_iter=N_ITER, random_state=0).fit(x_in))

    benchmark.group = _case(threads)
    benchmark.extra_info["impl"] = "sklearn" if dtype is None else "sklearn float32"
    benchmark.pedantic(fit, rounds=ROUNDS if not QUICK else 1, iterations=1)
    benchmark.extra_info["pseudo_likelihood"] = _pl(models[-1], xt if dtype is None
                                                    else xt.astype(dtype))
