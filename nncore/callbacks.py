"""Callbacks for ``fit``, with Keras' names and hooks.

A callback's hooks receive ``logs``, a dict of the latest metric values
(``loss``, ``accuracy``, ``val_loss``, ...). Setting ``model.stop_training``
ends training after the current epoch (or batch).
"""
from __future__ import annotations

import csv
import math
import os
import sys
import time
from typing import Callable, Dict, List, Optional, TextIO

import numpy as np


class Callback:
    """Base class: override the hooks you need; ``self.model`` is set by fit."""

    def __init__(self):
        self.model = None
        self.params: Dict[str, object] = {}

    def set_model(self, model) -> None:
        self.model = model

    def set_params(self, params: Dict[str, object]) -> None:
        self.params = params

    def on_train_begin(self, logs=None): pass
    def on_train_end(self, logs=None): pass
    def on_epoch_begin(self, epoch, logs=None): pass
    def on_epoch_end(self, epoch, logs=None): pass
    def on_train_batch_begin(self, batch, logs=None): pass
    def on_train_batch_end(self, batch, logs=None): pass


class CallbackList(Callback):
    """Calls every hook of a list of callbacks in order."""

    def __init__(self, callbacks: List[Callback], model, params):
        super().__init__()
        self.callbacks = list(callbacks)
        for cb in self.callbacks:
            cb.set_model(model)
            cb.set_params(params)

    def _each(name):
        def hook(self, *args):
            for cb in self.callbacks:
                getattr(cb, name)(*args)
        hook.__name__ = name
        return hook

    on_train_begin = _each("on_train_begin")
    on_train_end = _each("on_train_end")
    on_epoch_begin = _each("on_epoch_begin")
    on_epoch_end = _each("on_epoch_end")
    on_train_batch_begin = _each("on_train_batch_begin")
    on_train_batch_end = _each("on_train_batch_end")
    del _each


class History(Callback):
    """Records every epoch's logs; ``fit`` returns it. ``history.history["loss"]`` etc."""

    def __init__(self):
        super().__init__()
        self.epoch: List[int] = []
        self.history: Dict[str, List[float]] = {}

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(value)


def _format_logs(logs: Dict[str, float]) -> str:
    return " - ".join(f"{k}: {v:.4f}" if isinstance(v, float) else f"{k}: {v}"
                      for k, v in logs.items())


def _format_seconds(s: float) -> str:
    if s >= 3600:
        return f"{int(s // 3600)}:{int(s % 3600 // 60):02d}:{int(s % 60):02d}"
    if s >= 60:
        return f"{int(s // 60)}:{int(s % 60):02d}"
    if s >= 1:
        return f"{s:.0f}s"
    return f"{s * 1e3:.0f}ms"


class ProgbarLogger(Callback):
    """The progress display of ``fit``.

    On a terminal (verbose=1): a bar per epoch with batches done, ETA and the
    running loss and metrics, redrawn at most ten times a second. Elsewhere
    (a log file, a pipe) or with verbose=2: one line per epoch.
    """

    def __init__(self, verbose: int = 1, stream: Optional[TextIO] = None, width: int = 30):
        super().__init__()
        self.verbose = verbose
        self.stream = stream or sys.stdout
        self.width = width
        self.live = verbose == 1 and hasattr(self.stream, "isatty") and self.stream.isatty()

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_start = self.last_draw = time.perf_counter()
        self.epochs = self.params.get("epochs")
        self.steps = self.params.get("steps")
        if self.verbose and self.live:
            self.stream.write(f"Epoch {epoch + 1}/{self.epochs}\n")

    def on_train_batch_end(self, batch, logs=None):
        if not self.live:
            return
        now = time.perf_counter()
        if now - self.last_draw < 0.1 and batch + 1 != self.steps:
            return
        self.last_draw = now
        done = batch + 1
        elapsed = now - self.epoch_start
        if self.steps:
            filled = int(self.width * done / self.steps)
            bar = "=" * max(filled - 1, 0) + (">" if filled < self.width else "=")
            eta = elapsed / done * (self.steps - done)
            head = (f"{done:>{len(str(self.steps))}}/{self.steps} "
                    f"[{bar:<{self.width}}] - ETA: {_format_seconds(eta)}")
        else:
            head = f"{done} steps - {_format_seconds(elapsed)}"
        self.stream.write(f"\r{head} - {_format_logs(logs or {})}\x1b[K")
        self.stream.flush()

    def on_epoch_end(self, epoch, logs=None):
        if not self.verbose:
            return
        elapsed = time.perf_counter() - self.epoch_start
        tail = f"{_format_seconds(elapsed)} - {_format_logs(logs or {})}"
        if self.live:
            steps = self.steps or "?"
            self.stream.write(f"\r{steps}/{steps} [{'=' * self.width}] - {tail}\x1b[K\n")
        else:
            self.stream.write(f"Epoch {epoch + 1}/{self.epochs} - {tail}\n")
        self.stream.flush()


class _Monitor(Callback):
    """Shared logic of callbacks that watch one logged value for improvement."""

    def __init__(self, monitor: str, mode: str, min_delta: float):
        super().__init__()
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
        self.monitor = monitor
        if mode == "auto":
            mode = "max" if ("acc" in monitor or monitor.endswith("auc")) else "min"
        self.mode = mode
        self.min_delta = abs(float(min_delta))
        self.best = math.inf if mode == "min" else -math.inf

    def _value(self, logs) -> Optional[float]:
        value = (logs or {}).get(self.monitor)
        if value is None:
            available = ", ".join(sorted(logs or {})) or "none"
            raise KeyError(f"{type(self).__name__} monitors {self.monitor!r}, which fit does "
                           f"not log (logged: {available}); with validation data, "
                           f"'val_loss' is available")
        return float(value)

    def _improved(self, value: float) -> bool:
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta


class EarlyStopping(_Monitor):
    """Stop training when ``monitor`` has not improved for ``patience`` epochs.

    With ``restore_best_weights``, the model ends with the weights of its best
    epoch (also when training runs to the end without stopping early).
    """

    def __init__(self, monitor: str = "val_loss", min_delta: float = 0.0, patience: int = 0,
                 verbose: int = 0, mode: str = "auto", baseline: Optional[float] = None,
                 restore_best_weights: bool = False, start_from_epoch: int = 0):
        super().__init__(monitor, mode, min_delta)
        self.patience = int(patience)
        self.verbose = verbose
        self.baseline = baseline
        self.restore_best_weights = restore_best_weights
        self.start_from_epoch = start_from_epoch
        self.stopped_epoch = 0

    def on_train_begin(self, logs=None):
        self.wait = 0
        self.stopped_epoch = 0
        self.best = math.inf if self.mode == "min" else -math.inf
        if self.baseline is not None:
            self.best = float(self.baseline)
        self.best_weights = None
        self.best_epoch = 0

    def on_epoch_end(self, epoch, logs=None):
        if epoch < self.start_from_epoch:
            return
        value = self._value(logs)
        self.wait += 1
        if self._improved(value):
            self.best, self.best_epoch, self.wait = value, epoch, 0
            if self.restore_best_weights:
                self.best_weights = self.model.get_flat_weights()
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.restore_best_weights and self.best_weights is not None:
            self.model.set_flat_weights(self.best_weights)
        if self.stopped_epoch and self.verbose:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping "
                  f"(best {self.monitor} {self.best:.4f} at epoch {self.best_epoch + 1})")


class TerminateOnNaN(Callback):
    """Stop training as soon as the loss is NaN or infinite."""

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not np.isfinite(loss):
            print(f"Batch {batch}: invalid loss {loss}, terminating training")
            self.model.stop_training = True


class LearningRateScheduler(Callback):
    """Set the learning rate at each epoch's start: ``schedule(epoch, lr) -> new lr``."""

    def __init__(self, schedule: Callable[[int, float], float], verbose: int = 0):
        super().__init__()
        self.schedule = schedule
        self.verbose = verbose

    def on_epoch_begin(self, epoch, logs=None):
        lr = float(self.schedule(epoch, float(self.model.optimizer.learning_rate)))
        if not np.isfinite(lr) or lr < 0:
            raise ValueError(f"the schedule gave learning rate {lr!r} at epoch {epoch}")
        self.model.optimizer.learning_rate = lr
        if self.verbose:
            print(f"Epoch {epoch + 1}: learning rate {lr:.6g}")

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = float(self.model.optimizer.learning_rate)


class ReduceLROnPlateau(_Monitor):
    """Multiply the learning rate by ``factor`` after ``patience`` epochs without improvement."""

    def __init__(self, monitor: str = "val_loss", factor: float = 0.1, patience: int = 10,
                 verbose: int = 0, mode: str = "auto", min_delta: float = 1e-4,
                 cooldown: int = 0, min_lr: float = 0.0):
        super().__init__(monitor, mode, min_delta)
        if not 0 < factor < 1:
            raise ValueError(f"factor must be between 0 and 1, got {factor}")
        self.factor, self.patience, self.verbose = factor, patience, verbose
        self.cooldown, self.min_lr = cooldown, min_lr

    def on_train_begin(self, logs=None):
        self.wait = self.cooldown_left = 0
        self.best = math.inf if self.mode == "min" else -math.inf

    def on_epoch_end(self, epoch, logs=None):
        value = self._value(logs)
        if self.cooldown_left > 0:
            self.cooldown_left -= 1
            self.wait = 0
        if self._improved(value):
            self.best, self.wait = value, 0
        elif self.cooldown_left == 0:
            self.wait += 1
            if self.wait >= self.patience:
                old = float(self.model.optimizer.learning_rate)
                new = max(old * self.factor, self.min_lr)
                if new < old:
                    self.model.optimizer.learning_rate = new
                    if self.verbose:
                        print(f"Epoch {epoch + 1}: reducing learning rate to {new:.6g}")
                self.cooldown_left, self.wait = self.cooldown, 0


class CSVLogger(Callback):
    """Append each epoch's logs to a CSV file (a header row first)."""

    def __init__(self, filename: str, separator: str = ",", append: bool = False):
        super().__init__()
        self.filename, self.separator, self.append = os.fspath(filename), separator, append

    def on_train_begin(self, logs=None):
        exists = self.append and os.path.exists(self.filename) and os.path.getsize(self.filename)
        self.file = open(self.filename, "a" if self.append else "w", newline="")
        self.writer = None
        self.header_written = bool(exists)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.writer is None:
            self.keys = sorted(logs)
            self.writer = csv.DictWriter(self.file, fieldnames=["epoch"] + self.keys,
                                         delimiter=self.separator, extrasaction="ignore")
            if not self.header_written:
                self.writer.writeheader()
        self.writer.writerow(dict(epoch=epoch, **{k: logs.get(k, "") for k in self.keys}))
        self.file.flush()

    def on_train_end(self, logs=None):
        self.file.close()


class ModelCheckpoint(_Monitor):
    """Save the model after each epoch (or only when ``monitor`` improves).

    ``filepath`` may hold format fields of the epoch and the logs, e.g.
    ``"ckpt-{epoch:02d}-{val_loss:.3f}.nncore"``. Files are written atomically.
    """

    def __init__(self, filepath, monitor: str = "val_loss", verbose: int = 0,
                 save_best_only: bool = False, mode: str = "auto", save_freq="epoch"):
        super().__init__(monitor, mode, 0.0)
        if save_freq != "epoch":
            raise ValueError("ModelCheckpoint saves once per epoch (save_freq='epoch')")
        self.filepath, self.verbose, self.save_best_only = os.fspath(filepath), verbose, \
            save_best_only

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.save_best_only:
            value = self._value(logs)
            if not self._improved(value):
                return
            self.best = value
        path = self.filepath.format(epoch=epoch + 1, **logs)
        self.model.save(path)
        if self.verbose:
            print(f"Epoch {epoch + 1}: saved model to {path}")
