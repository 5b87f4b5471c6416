"""Metrics for ``compile(metrics=[...])``, by Keras' names.

A metric accumulates over an epoch (``update_state`` per batch, weighted by
the batch's size) and reports the running mean (``result``). The counting
runs in the engine.

"accuracy" (or "acc") picks the accuracy that fits the loss, as Keras does:
sparse categorical for integer labels, categorical for one-hot targets,
binary (threshold 0.5) for binary cross-entropy or a single output.
"""
from __future__ import annotations

from typing import Optional, Union


from nncore import _core, losses


class Metric:
    """A running, batch-size-weighted mean of a per-batch value."""

    name = "metric"

    def __init__(self, name: Optional[str] = None):
        if name is not None:
            self.name = name
        self.reset_state()

    def reset_state(self) -> None:
        self._total, self._count = 0.0, 0

    def batch_value(self, y_true, y_pred) -> float:
        raise NotImplementedError

    def update_state(self, y_true, y_pred) -> float:
        value = self.batch_value(y_true, y_pred)
        n = len(y_pred)
        self._total += value * n
        self._count += n
        return value

    def result(self) -> float:
        return self._total / self._count if self._count else float("nan")


class Mean(Metric):
    """The running mean of values given to ``update_state(value, n)``, e.g. the loss."""

    name = "loss"

    def update_state(self, value: float, n: int = 1) -> float:  # type: ignore[override]
        self._total += float(value) * n
        self._count += n
        return value


class CategoricalAccuracy(Metric):
    name = "categorical_accuracy"

    def batch_value(self, y_true, y_pred):
        return _core.accuracy_argmax(y_true, y_pred)


class SparseCategoricalAccuracy(Metric):
    name = "sparse_categorical_accuracy"

    def batch_value(self, y_true, y_pred):
        return _core.accuracy_sparse(y_true, y_pred)


class BinaryAccuracy(Metric):
    name = "binary_accuracy"

    def __init__(self, name: Optional[str] = None, threshold: float = 0.5):
        self.threshold = float(threshold)
        super().__init__(name)

    def batch_value(self, y_true, y_pred):
        return _core.accuracy_threshold(y_true, y_pred, self.threshold)


class LossMetric(Metric):
    """A loss used as a metric (``"mse"``, ``"mae"``)."""

    def __init__(self, loss: str, name: Optional[str] = None):
        self.loss = losses.canonical_name(loss)
        super().__init__(name or loss)

    def batch_value(self, y_true, y_pred):
        return losses.compute(self.loss, y_true, y_pred)[0]


_CLASSES = {
    "categorical_accuracy": CategoricalAccuracy,
    "sparse_categorical_accuracy": SparseCategoricalAccuracy,
    "binary_accuracy": BinaryAccuracy,
}


def get(identifier: Union[str, Metric], loss: Optional[str] = None,
        output_size: Optional[int] = None) -> Metric:
    """A fresh metric for a name; "accuracy" is resolved from the loss's name."""
    if isinstance(identifier, Metric):
        return identifier
    if not isinstance(identifier, str):
        raise TypeError(f"a metric must be a name or a Metric, not {type(identifier).__name__}")
    key = identifier.lower()
    if key in ("accuracy", "acc"):
        if loss == "sparse_categorical_crossentropy":
            cls = SparseCategoricalAccuracy
        elif loss == "categorical_crossentropy":
            cls = CategoricalAccuracy
        elif loss == "binary_crossentropy" or output_size == 1:
            cls = BinaryAccuracy
        else:
            cls = CategoricalAccuracy
        return cls(name=identifier)
    if key in _CLASSES:
        return _CLASSES[key]()
    try:
        return LossMetric(key, name=identifier)
    except ValueError:
        raise ValueError(f"unknown metric {identifier!r}; use 'accuracy', "
                         f"{', '.join(sorted(_CLASSES))}, or a loss name such as 'mse'") from None
