"""The ``fit`` loop: batching, shuffling, validation, callbacks, progress.

Python here only orders the work: each step is a handful of engine calls
(the layers' forward and backward passes, the fused loss, one optimizer pass
over the flat buffers). Batches are gathered into reused buffers.
"""
from __future__ import annotations

import math
import warnings
from typing import Optional, Sequence

import numpy as np

from nncore import callbacks as cb, metrics as metrics_mod, random


def _check_int(name: str, value, minimum: int) -> int:
    if not (isinstance(value, (int, np.integer)) and not isinstance(value, bool)
            and value >= minimum):
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _is_batch_source(x) -> bool:
    """Whether x is an iterable of (x, y) batches rather than an array."""
    if x is None or isinstance(x, (np.ndarray, list, tuple)):
        return False
    return hasattr(x, "__iter__") or hasattr(x, "__next__")


class _ArrayBatches:
    """Batches of in-memory arrays, shuffled per epoch from a seeded generator."""

    def __init__(self, model, x, y, batch_size: int, shuffle: bool, seed: int):
        self.x, self.y = x, y
        self.n = len(x)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.steps = math.ceil(self.n / batch_size)
        self._xbuf = np.empty((min(batch_size, self.n),) + x.shape[1:], x.dtype)
        self._ybuf = np.empty((min(batch_size, self.n),) + y.shape[1:], y.dtype)

    def epoch(self, epoch: int, stream: int):
        # keyed by the number of updates done so far, not the epoch number, so
        # that repeated fit(epochs=1) calls see new orders while a resumed run
        # (whose optimizer state carries that number) sees the same ones
        order = (random.permutation(self.n, seed=self.seed, stream=stream)
                 if self.shuffle else None)
        for start in range(0, self.n, self.batch_size):
            stop = min(start + self.batch_size, self.n)
            if order is None:
                yield self.x[start:stop], self.y[start:stop]
            else:
                idx = order[start:stop]
                xb = np.take(self.x, idx, axis=0, out=self._xbuf[:stop - start])
                yb = np.take(self.y, idx, axis=0, out=self._ybuf[:stop - start])
                yield xb, yb


class _IterableBatches:
    """Batches drawn from a user's iterable or generator of (x, y) pairs.

    Without steps_per_epoch an epoch is one full pass over the source; with
    it, an epoch takes that many batches, carrying on where the last one
    stopped (and starting a re-iterable source, such as a list or a loader,
    over when it runs out). A one-shot generator that runs dry ends training.
    """

    def __init__(self, model, source, steps_per_epoch: Optional[int]):
        self.model = model
        self.source = source
        self.steps = steps_per_epoch
        self._it = None

    def _draw(self):
        if self._it is None:
            self._it = iter(self.source)
        try:
            return next(self._it)
        except StopIteration:
            if iter(self.source) is self.source:  # one-shot: nothing to start over
                raise
            self._it = iter(self.source)
            return next(self._it)

    def _convert(self, batch):
        if not (isinstance(batch, (tuple, list)) and len(batch) == 2):
            raise TypeError(f"a batch source must yield (x, y) pairs, got {type(batch).__name__}")
        xb = self.model._as_x(batch[0])
        return xb, self.model._as_y(batch[1], len(xb))

    def epoch(self, epoch: int, stream: int):
        drawn = 0
        if self.steps is None:
            for batch in self.source:
                drawn += 1
                yield self._convert(batch)
        else:
            for _ in range(self.steps):
                try:
                    batch = self._draw()
                except StopIteration:
                    break
                drawn += 1
                yield self._convert(batch)
        if drawn < (self.steps or 1):
            warnings.warn(f"the batch source ran out after {drawn} batches in epoch "
                          f"{epoch + 1}; training stops here (give a re-iterable source, or "
                          f"steps_per_epoch * epochs batches)", RuntimeWarning, stacklevel=4)
            self.model.stop_training = True


def _split_validation(model, x, y, validation_split, validation_data):
    if validation_data is not None:
        if validation_split:
            raise ValueError("give validation_data or validation_split, not both")
        if not (isinstance(validation_data, (tuple, list)) and len(validation_data) == 2):
            raise ValueError("validation_data must be a pair (x_val, y_val)")
        xv = model._as_x(validation_data[0])
        return x, y, (xv, model._as_y(validation_data[1], len(xv)))
    if validation_split:
        if not 0.0 < validation_split < 1.0:
            raise ValueError(f"validation_split must be in (0, 1), got {validation_split}")
        if x is None:
            raise ValueError("validation_split needs arrays, not a batch source")
        n_val = int(len(x) * validation_split)
        if n_val == 0 or n_val == len(x):
            raise ValueError(f"validation_split={validation_split} of {len(x)} samples leaves "
                             f"an empty training or validation set")
        # the last samples, before shuffling, as Keras does
        return x[:-n_val], y[:-n_val], (x[-n_val:], y[-n_val:])
    return x, y, None


def fit(model, *args):
    """Model.fit's loop; one run per model at a time (a second one raises)."""
    if not model._fit_guard.acquire(blocking=False):
        raise RuntimeError("this model is already training (in another thread); one model "
                           "trains one run at a time")
    try:
        return _fit(model, *args)
    finally:
        model._fit_guard.release()


def _fit(model, x, y, batch_size, epochs, verbose, callbacks: Optional[Sequence],
         validation_split, validation_data, shuffle, initial_epoch, steps_per_epoch):
    epochs = _check_int("epochs", epochs, 0)
    initial_epoch = _check_int("initial_epoch", initial_epoch, 0)
    if verbose == "auto":
        verbose = 1
    if verbose not in (0, 1, 2):
        raise ValueError(f"verbose must be 0, 1, 2 or 'auto', got {verbose!r}")
    if steps_per_epoch is not None:
        steps_per_epoch = _check_int("steps_per_epoch", steps_per_epoch, 1)

    if _is_batch_source(x):
        if y is not None:
            raise ValueError("when x is a batch source (yielding (x, y) pairs), y must be None")
        first = None
        if not model.built:
            # look at one batch to learn the input shape, then put it back
            it = iter(x)
            first = next(it)
            model._ensure_built(first[0])
            x = _Chain(first, it, x)
        model._require_compiled()
        batches = _IterableBatches(model, x, steps_per_epoch)
        val = _split_validation(model, None, None, validation_split, validation_data)[2]
        eval_batch = batch_size or 32
    else:
        if x is None or y is None:
            raise ValueError("fit needs x and y (or x as a source of (x, y) batches)")
        model._ensure_built(x)
        model._require_compiled()
        x = model._as_x(x)
        if len(x) == 0:
            raise ValueError(f"fit needs at least one sample; x has shape {x.shape}")
        y = model._as_y(y, len(x))
        x, y, val = _split_validation(model, x, y, validation_split, validation_data)
        batch_size = _check_int("batch_size", 32 if batch_size is None else batch_size, 1)
        batches = _ArrayBatches(model, x, y, batch_size, shuffle, model.shuffle_seed())
        if steps_per_epoch is not None:
            raise ValueError("steps_per_epoch goes with a batch source; with arrays an epoch "
                             "is one pass over the data")
        eval_batch = batch_size

    history = cb.History()
    callback_list = [history]
    if verbose:
        callback_list.append(cb.ProgbarLogger(verbose))
    callback_list += list(callbacks or [])
    params = {"epochs": epochs, "steps": batches.steps, "verbose": verbose}
    cbs = cb.CallbackList(callback_list, model, params)
    model.stop_training = False
    model.history = history
    loss_mean = metrics_mod.Mean()

    try:
        _train_loop(model, cbs, batches, val, eval_batch, epochs, initial_epoch, loss_mean)
    finally:
        model._where = "train_on_batch"
    return history


def _train_loop(model, cbs, batches, val, eval_batch, epochs, initial_epoch, loss_mean):
    cbs.on_train_begin()
    for epoch in range(initial_epoch, epochs):
        cbs.on_epoch_begin(epoch)
        loss_mean.reset_state()
        for m in model.metrics:
            m.reset_state()
        logs = {}
        for step, (xb, yb) in enumerate(batches.epoch(epoch, model.optimizer.iterations)):
            model._where = f"epoch {epoch + 1}, batch {step + 1}"
            cbs.on_train_batch_begin(step)
            batch_logs = model._train_step(xb, yb)
            loss_mean.update_state(batch_logs["loss"], len(xb))
            logs = {"loss": loss_mean.result(), **{m.name: m.result() for m in model.metrics}}
            cbs.on_train_batch_end(step, logs)
            if model.stop_training:
                break
        if val is not None:
            val_logs = model._run_test_epoch(val[0], val[1], eval_batch)
            logs.update({f"val_{k}": v for k, v in val_logs.items()})
        cbs.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
    cbs.on_train_end()


class _Chain:
    """A batch source with its first batch (already drawn) put back in front."""

    def __init__(self, first, rest, source):
        self.first, self.rest, self.source = first, rest, source
        self.used = False

    def __iter__(self):
        if not self.used:
            self.used = True
            yield self.first
            yield from self.rest
        else:
            yield from self.source
