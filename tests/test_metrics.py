"""Accuracy metrics: argmax (one-hot and sparse) and threshold, against NumPy."""
import numpy as np
import pytest

from nncore import ops


def _scores(rng, n, k, dtype):
    # distinct values per row, so the argmax is unambiguous
    return np.stack([rng.permutation(k) for _ in range(n)]).astype(dtype) + \
        rng.uniform(0, 0.5, (n, k)).astype(dtype)


@pytest.mark.parametrize("n,k", [(1, 1), (1, 5), (10, 2), (37, 10), (500, 3)])
def test_categorical_accuracy(isa, dtype, n, k):
    rng = np.random.default_rng(n * k)
    p = _scores(rng, n, k, dtype)
    labels = rng.integers(0, k, n)
    labels[: n // 2] = np.argmax(p[: n // 2], axis=1)  # about half right
    t = np.eye(k, dtype=dtype)[labels]
    want = float(np.mean(np.argmax(p, 1) == labels))
    assert ops.categorical_accuracy(t, p) == want
    assert ops.sparse_categorical_accuracy(labels, p) == want
    assert isinstance(ops.categorical_accuracy(t, p), float)


def test_categorical_accuracy_targets_as_scores(isa, dtype):
    """The target's argmax counts, so soft targets work too."""
    t = np.array([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2]], dtype)
    p = np.array([[0.2, 0.5, 0.3], [0.1, 0.2, 0.7]], dtype)
    assert ops.categorical_accuracy(t, p) == 0.5


def test_argmax_ties_take_the_first(isa, dtype):
    p = np.array([[1, 1, 0], [0, 2, 2], [3, 3, 3]], dtype)
    assert ops.sparse_categorical_accuracy([0, 1, 0], p) == 1.0
    assert ops.sparse_categorical_accuracy([1, 2, 2], p) == 0.0
    np.testing.assert_equal(np.argmax(p, 1), [0, 1, 0])  # NumPy's convention too


def test_argmax_nan_does_not_depend_on_position(isa, dtype):
    p = np.array([[np.nan, 1, 2], [1, np.nan, 2], [1, 2, np.nan]], dtype)
    # "NaN never wins": the argmax of the remaining scores, wherever the NaN sits
    assert ops.sparse_categorical_accuracy([2, 2, 1], p) == 1.0


@pytest.mark.parametrize("threshold", [0.5, 0.3, 0.9, 0.0])
@pytest.mark.parametrize("shape", [(7,), (13, 3), (2, 3, 4)])
def test_binary_accuracy(isa, dtype, threshold, shape):
    rng = np.random.default_rng(len(shape))
    p = rng.uniform(0, 1, shape).astype(dtype)
    p.reshape(-1)[0] = threshold  # exactly at the threshold: not above it
    t = rng.integers(0, 2, shape).astype(dtype)
    want = float(np.mean((p > dtype(threshold)) == (t > 0.5)))
    assert ops.binary_accuracy(t, p, threshold) == want


def test_binary_accuracy_keras_default(isa):
    t = np.array([1, 1, 0, 0])
    p = np.array([0.98, 0.5, 0.0, 0.6])
    assert ops.binary_accuracy(t, p) == 0.5


def test_binary_accuracy_targets_column(isa):
    """(n,) targets against (n, 1) predictions, as Keras accepts."""
    t = np.array([1, 0, 1])
    p = np.array([[0.9], [0.2], [0.4]])
    assert ops.binary_accuracy(t, p) == pytest.approx(2 / 3)


def test_course_digit_argmax(isa):
    """Course 004: 10 output probabilities, the argmax is the answer; one-hot targets."""
    p = np.full((2, 10), 0.05)
    p[0, 7], p[1, 3] = 0.55, 0.55
    t = np.zeros((2, 10))
    t[0, 7], t[1, 2] = 1, 1
    assert ops.categorical_accuracy(t, p) == 0.5


def test_sparse_labels_validated():
    p = np.eye(3)
    with pytest.raises(ValueError, match=r"y_true\[2\] = 3"):
        ops.sparse_categorical_accuracy([0, 1, 3], p)
    with pytest.raises(ValueError, match=r"y_true\[0\] = -1"):
        ops.sparse_categorical_accuracy([-1, 1, 2], p)
    with pytest.raises(ValueError, match="integer"):
        ops.sparse_categorical_accuracy([0.5, 1, 2], p)
    with pytest.raises(ValueError, match="3 samples"):
        ops.sparse_categorical_accuracy([0, 1], p)


def test_metric_shape_errors():
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(3, 2\)"):
        ops.categorical_accuracy(np.ones((2, 3)), np.ones((3, 2)))
    with pytest.raises(ValueError):
        ops.binary_accuracy(np.ones(0), np.ones(0))
    with pytest.raises(ValueError):
        ops.categorical_accuracy(np.ones((0, 3)), np.ones((0, 3)))
    with pytest.raises(ValueError):
        ops.sparse_categorical_accuracy([0, 1], np.ones(2))
