"""The recurrent examples run and reach what they claim.

The full digits run (60,000 images, >= 95% test accuracy) takes a minute or
more: it runs with NNCORE_SLOW=1; the quick one trains on a subset.
"""
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), os.pardir, "examples"))

import digits_lstm  # noqa: E402
import sine_lstm  # noqa: E402

slow = pytest.mark.skipif(os.environ.get("NNCORE_SLOW") != "1",
                          reason="slow: set NNCORE_SLOW=1 to run")


def test_sine_lstm_beats_the_memoryless_dense_baseline():
    r = sine_lstm.run(n_train=1000, n_test=500, epochs=15)
    assert r["lstm"] < r["dense"] / 5
    assert r["lstm"] < 0.02  # the series' variance is about 0.5
    assert r["dense_window"] < 0.02


def test_digits_lstm_learns_on_a_subset():
    acc, model = digits_lstm.run(n_train=10000, epochs=3)
    assert acc > 0.88


@slow
def test_digits_lstm_reaches_95_percent():
    acc, _ = digits_lstm.run()
    assert acc >= 0.95
