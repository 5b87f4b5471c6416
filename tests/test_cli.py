"""The nncore command line: train, predict, info, and its errors."""
import os
import subprocess
import sys

import numpy as np
import pytest

from nncore.cli import main


def test_train_xor_reaches_full_accuracy_and_saves(tmp_path, capsys):
    path = tmp_path / "xor.nncore"
    assert main(["train", "--data", "xor", "-q", "--save", str(path)]) == 0
    out = capsys.readouterr().out
    assert "test accuracy: 1.0000" in out and path.exists()
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], np.float32)
    np.save(tmp_path / "x.npy", x)
    np.savetxt(tmp_path / "x.csv", x, delimiter=",")
    for name in ("x.npy", "x.csv"):
        assert main(["predict", str(path), str(tmp_path / name)]) == 0
        probs = [float(line) for line in capsys.readouterr().out.split()]
        assert [p > 0.5 for p in probs] == [False, True, True, False]


def test_train_regression_recovers_the_line(capsys):
    assert main(["train", "--data", "regression", "-q"]) == 0
    line = [l for l in capsys.readouterr().out.splitlines() if "learned H(x)" in l][0]
    w, b = float(line.split("=")[1].split("x")[0]), float(line.split("+")[1].split("(")[0])
    assert abs(w - 2) < 0.15 and abs(b - 1) < 0.15


def test_train_tangerine_reports_threshold_and_rule(capsys):
    assert main(["train", "--data", "tangerine", "-q"]) == 0
    line = [l for l in capsys.readouterr().out.splitlines() if "learned threshold" in l][0]
    threshold = float(line.split(":")[1].split("cm")[0])
    assert 7.2 < threshold < 7.6 and "size > 7.5 rule" in line


def test_train_digits_one_epoch_with_progress(capsys):
    assert main(["train", "--layers", "64", "--epochs", "1", "--batch-size", "128"]) == 0
    out = capsys.readouterr().out
    assert "training on digits16 (60000 training, 10000 test samples)" in out
    assert "Epoch 1/1" in out
    acc = float(out.split("test accuracy: ")[1].split()[0])
    assert acc > 0.9


def test_plot_without_matplotlib_is_a_clear_error(tmp_path, capsys):
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert main(["train", "--data", "xor", "-q", "--plot", str(tmp_path / "c.png")]) == 2
        assert "needs matplotlib" in capsys.readouterr().err
    else:
        assert main(["train", "--data", "xor", "-q", "--plot", str(tmp_path / "c.png")]) == 0
        assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"


def test_errors(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["train", "--layers", "12,x"])
    assert main(["predict", str(tmp_path / "missing.nncore"), "x.npy"]) == 2
    assert "No such file" in capsys.readouterr().err
    assert main(["train", "--data", "xor", "-q", "--optimizer", "nope"]) == 2


def test_module_and_info_run():
    res = subprocess.run([sys.executable, "-m", "nncore", "info"], capture_output=True,
                         text=True, cwd=os.path.dirname(os.path.dirname(__file__)))
    assert res.returncode == 0, res.stderr
    assert "kernel level in use" in res.stdout
