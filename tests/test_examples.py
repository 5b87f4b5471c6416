"""The course's examples run as they are (quick settings), and the linear-regression topic
holds to the course's worked numbers."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import nncore
from nncore.layers import Dense

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ["perceptron_and_or.py", "xor_mlp.py", "linear_regression.py", "tangerines.py",
            "digits_mlp.py", "vanishing_gradients.py", "ensembles.py", "estimators.py",
            "sine_lstm.py", "digits_lstm.py", "dbn_pretraining.py", "rbm_samples.py"]
# small settings for examples that take them as options instead of the quick flag
EXAMPLE_ARGS = {
    "dbn_pretraining.py": ["--labelled", "300", "--pretrain-epochs", "1", "--epochs", "3",
                           "--seeds", "1"],
    "rbm_samples.py": ["--epochs", "1", "--hidden", "32", "--steps", "20"],
}


@pytest.mark.parametrize("script", EXAMPLES)
def test_example_runs(script, tmp_path):
    env = dict(os.environ, NNCORE_EXAMPLES_QUICK="1",
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    done = subprocess.run([sys.executable, str(ROOT / "examples" / script)]
                          + EXAMPLE_ARGS.get(script, []), env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip()
    if script == "perceptron_and_or.py":
        assert "AND:" in done.stdout and "did not converge" in done.stdout
    if script == "xor_mlp.py":
        assert "accuracy: 100%" in done.stdout


# examples whose own test file runs them (with its own time budget)
TESTED_ELSEWHERE = {"lenet5.py": "tests/test_lenet.py"}


def test_every_example_is_listed():
    on_disk = {p.name for p in (ROOT / "examples").glob("*.py") if not p.name.startswith("_")}
    assert on_disk == set(EXAMPLES) | set(TESTED_ELSEWHERE)
    for path in TESTED_ELSEWHERE.values():
        assert (ROOT / path).exists()


# -- linear regression by gradient descent (the course's H(x) = Wx + b) -----

def _line_model(use_bias, lr):
    model = nncore.Sequential([Dense(1, use_bias=use_bias, input_dim=1,
                                     kernel_initializer="zeros")], seed=0, dtype="float64")
    model.compile(optimizer=nncore.optimizers.SGD(lr), loss="mse")
    return model


def test_course_cost_values():
    x = np.array([1.0, 2.0, 3.0])
    costs = [nncore.losses.mse(x, w * x) for w in (0.0, 1.0, 2.0)]
    np.testing.assert_allclose(costs, [14 / 3, 0.0, 14 / 3])
    assert round(costs[0], 2) == 4.67


def test_gradient_descent_reaches_w_1_and_follows_the_course_update():
    x, y = np.array([[1.0], [2.0], [3.0]]), np.array([1.0, 2.0, 3.0])
    model = _line_model(False, 0.05)
    history = model.fit(x, y, batch_size=3, epochs=1, shuffle=False, verbose=0)
    # the course: W := W - alpha * (1/m) sum((W x_i - y_i) x_i); the MSE's gradient
    # carries a factor 2, so one step of lr moves W by 2 * lr * (1/m) * sum(...)
    w0 = 0.0
    expected = w0 - 2 * 0.05 * np.mean((w0 * x[:, 0] - y) * x[:, 0])
    assert model.get_weights()[0][0, 0] == pytest.approx(expected)
    assert history.history["loss"][0] == pytest.approx(14 / 3)
    history = model.fit(x, y, batch_size=3, epochs=60, shuffle=False, verbose=0)
    assert model.get_weights()[0][0, 0] == pytest.approx(1.0, abs=1e-6)
    costs = history.history["loss"]
    assert len(costs) == 60 and all(b <= a for a, b in zip(costs, costs[1:]))


def test_gradient_descent_recovers_a_noisy_line():
    x, y = nncore.datasets.linear(n=400, w=2.0, b=1.0, noise=0.5, seed=3)
    x, y = x.astype(np.float64), y.astype(np.float64)
    model = _line_model(True, 0.1)
    history = model.fit(x, y, batch_size=len(x), epochs=300, shuffle=False, verbose=0)
    (w,), b = model.get_weights()[0][0], model.get_weights()[1][0]
    # the least-squares line of this sample, which gradient descent must reach
    w_ls, b_ls = np.polyfit(x[:, 0], y, 1)
    assert w == pytest.approx(w_ls, abs=1e-6) and b == pytest.approx(b_ls, abs=1e-6)
    assert abs(w - 2.0) < 0.1 and abs(b - 1.0) < 0.1
    assert history.history["loss"][-1] == pytest.approx(0.25, rel=0.2)  # the noise variance
