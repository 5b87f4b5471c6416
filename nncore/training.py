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

from nncore import _core, callbacks as cb, metrics as metrics_mod, random


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
        rows = min(batch_size, self.n)
        self._xbuf = np.empty((rows,) + x.shape[1:], x.dtype)
        self._ybuf = np.empty((rows,) + y.shape[1:], y.dtype)
        # a uint8 x (kept as passed) becomes the model's dtype one batch at a time
        self._fbuf = (np.empty((rows,) + x.shape[1:], model.dtype) if x.dtype != model.dtype
                      else None)

    def epoch(self, epoch: int, stream: int):
        # keyed by the number of updates done so far, not the epoch number, so
        # that repeated fit(epochs=1) calls see new orders while a resumed run
        # (whose optimizer state carries that number) sees the same ones
        order = (random.permutation(self.n, seed=self.seed, stream=stream)
                 if self.shuffle else None)
        for start in range(0, self.n, self.batch_size):
            stop = min(start + self.batch_size, self.n)
            if order is None:
                xb, yb = self.x[start:stop], self.y[start:stop]
            else:
                idx = order[start:stop]
                xb = np.take(self.x, idx, axis=0, out=self._xbuf[:stop - start])
                yb = np.take(self.y, idx, axis=0, out=self._ybuf[:stop - start])
            if self._fbuf is not None:
                xb = self._fbuf[:stop - start]
                np.copyto(xb, self.x[start:stop] if order is None else self._xbuf[:stop - start])
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
        # the last samples, before shuffling, as Keras does (validation data
        # in the model's dtype, for the test steps)
        return x[:-n_val], y[:-n_val], (model._as_x(x[-n_val:]), y[-n_val:])
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
        x = model._as_x(x, keep_u8=True)  # uint8: batches converted one at a time
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

    engine = _EngineEpochs.make(model, batches, callback_list)
    try:
        _train_loop(model, cbs, batches, val, eval_batch, epochs, initial_epoch, loss_mean,
                    engine)
    finally:
        model._where = "train_on_batch"
    return history


def _train_loop(model, cbs, batches, val, eval_batch, epochs, initial_epoch, loss_mean,
                engine=None):
    cbs.on_train_begin()
    for epoch in range(initial_epoch, epochs):
        cbs.on_epoch_begin(epoch)
        loss_mean.reset_state()
        for m in model.metrics:
            m.reset_state()
        logs = {}
        if engine is not None:
            logs = engine.epoch(epoch, cbs, loss_mean)
            if val is not None:
                val_logs = model._run_test_epoch(val[0], val[1], eval_batch)
                logs.update({f"val_{k}": v for k, v in val_logs.items()})
            cbs.on_epoch_end(epoch, logs)
            if model.stop_training:
                break
            continue
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


class _EngineEpochs:
    """Epochs run in the engine: runs of batches, each one call that gathers,
    steps, penalizes, updates and counts the metrics in C (nc_?plan_fit),
    with the same calls in the same order as the per-batch loop, so the
    same bits. Used where nothing needs Python between batches: a plan-able
    model (Dense/Activation stack), arrays, the engine's optimizers,
    regularizers and accuracies, and no callback with batch hooks (the
    progress bar is fed once per run; a run lasts about RUN_SECONDS, which
    also bounds how long an interrupt waits)."""

    RUN_SECONDS = 0.05

    @classmethod
    def make(cls, model, batches, callbacks):
        from nncore import optimizers, regularizers
        from nncore.layers.base import Layer
        from nncore.model import Sequential
        if not isinstance(batches, _ArrayBatches) or model.check_numerics:
            return None
        for name in ("_train_step", "_finish_step", "_batch_logs", "_training_plan"):
            if name in vars(model) or getattr(type(model), name) is not getattr(Sequential, name):
                return None
        opt = model.optimizer
        if type(opt).apply is not optimizers.Optimizer.apply or opt._kind is None:
            return None
        for c in callbacks:
            if type(c) is cb.ProgbarLogger:
                continue
            for hook in ("on_train_batch_begin", "on_train_batch_end"):
                if getattr(type(c), hook) is not getattr(cb.Callback, hook):
                    return None
        metrics = []
        for m in model.metrics:
            kind = type(m)
            if kind is metrics_mod.SparseCategoricalAccuracy and model._sparse:
                metrics.append((_core.PLAN_METRIC_SPARSE, 0.5))
            elif kind is metrics_mod.CategoricalAccuracy and not model._sparse:
                metrics.append((_core.PLAN_METRIC_ARGMAX, 0.5))
            elif kind is metrics_mod.BinaryAccuracy and not model._sparse:
                metrics.append((_core.PLAN_METRIC_THRESHOLD, m.threshold))
            else:
                return None
        penalties = []
        for layer in model._regularized_layers:
            if type(layer).apply_regularizers is not Layer.apply_regularizers:
                return None
            specs = layer._regularized
            for i, spec in enumerate(specs):
                reg = spec.regularizer
                if type(reg).apply is not regularizers.L1L2.apply or \
                        not isinstance(reg, regularizers.L1L2):
                    return None
                penalties.append((layer.params[spec.name], layer.grads[spec.name],
                                  reg.l1, reg.l2, i == len(specs) - 1))
        plan = model._training_plan()
        if plan is None:
            return None
        y = batches.y
        if model._sparse:
            if y.dtype != np.int64:
                y = y.astype(np.int64)
        else:
            if y.size != len(y) * plan.n_out:
                return None
            y = np.ascontiguousarray(y.reshape(len(y), plan.n_out))
        x = batches.x.reshape(len(batches.x), -1)
        if x.shape[1] != plan.n_in:
            return None
        return cls(model, batches, plan, x, y, penalties, metrics)

    def __init__(self, model, batches, plan, x, y, penalties, metrics):
        self.model, self.batches, self.plan = model, batches, plan
        self.x, self.y = x, y
        self.penalties, self.metric_codes = penalties, metrics
        last = model._compute_layers[-1]
        self.out_act = (last._act_code, last._act_param) if model._fused else (0, 0.0)
        self.per_batch = None  # seconds per batch, measured as runs go

    def _rates(self, opt, count):
        lr = opt._learning_rate
        if callable(lr):
            return np.array([float(lr(opt.iterations + i)) for i in range(count)], np.float64)
        return np.full(count, float(lr), np.float64)

    def epoch(self, epoch, cbs, loss_mean):
        import time
        model, batches, opt = self.model, self.batches, self.model.optimizer
        order = (random.permutation(batches.n, seed=batches.seed, stream=opt.iterations)
                 if batches.shuffle else None)
        steps, size = batches.steps, batches.batch_size
        sums = np.array([m._total for m in model.metrics], np.float64)
        logs, first = {}, 0
        while first < steps:
            if self.per_batch is None:
                count = 1
            else:
                count = int(self.RUN_SECONDS / max(self.per_batch, 1e-7))
            count = max(1, min(steps - first, count))
            model._where = f"epoch {epoch + 1}, batches {first + 1}-{first + count}"
            t0 = time.perf_counter()
            with model._lock:
                stepper = opt._engine_stepper(model._params)
                done, loss_sum = _core.plan_fit(
                    self.plan, stepper, self.x, self.y, order, size, first, count,
                    model._loss_code, model._reduction, model._sparse, self.out_act[0],
                    self.out_act[1], model._params, model._grads, opt._state,
                    opt.iterations, self._rates(opt, count), self.penalties,
                    self.metric_codes, loss_mean._total, sums, opt)  # (sets opt.iterations)
            rows = min(batches.n, (first + done) * size) - first * size
            loss_mean._total = loss_sum
            loss_mean._count += rows
            for m, total in zip(model.metrics, sums):
                m._total = float(total)
                m._count += rows
            elapsed = time.perf_counter() - t0
            self.per_batch = elapsed / max(done, 1)
            first += done
            logs = {"loss": loss_mean.result(), **{m.name: m.result() for m in model.metrics}}
            cbs.on_train_batch_end(first - 1, logs)
            if model.stop_training:
                break
        return logs
