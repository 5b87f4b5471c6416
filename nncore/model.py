"""``Sequential``: a stack of layers over one flat parameter buffer.

All of a model's parameters live in one aligned array and all their
gradients in another; each layer holds views into them. An optimizer step is
then one pass of the engine over two flat arrays, a checkpoint is one array,
and nothing is gathered or scattered per layer.

>>> import numpy as np, nncore
>>> from nncore.layers import Dense
>>> model = nncore.Sequential([Dense(8, activation="tanh", input_dim=2),
...                            Dense(1, activation="sigmoid")], seed=0)
>>> model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
"""
from __future__ import annotations

import threading
from typing import Dict, List, Optional, Sequence, Union

import numpy as np

from nncore import _core, losses, metrics as metrics_mod
from nncore.layers.base import Layer, aligned_empty, layout
from nncore.layers.core import Input

_FUSABLE = {("softmax", "categorical_crossentropy"), ("softmax", "sparse_categorical_crossentropy"),
            ("sigmoid", "binary_crossentropy")}


class Sequential:
    """A linear stack of layers, trained with Keras' ``compile``/``fit``.

    Args:
        layers: the layers, first to last (more can be added with ``add``).
        seed: the seed of weight initialisation and shuffling (default: the
            global seed of ``nncore.set_seed``); the same seed gives the same
            training run, bit for bit.
        dtype: "float32" (default, the fast path) or "float64".
    """

    def __init__(self, layers: Optional[Sequence[Layer]] = None, name: str = "sequential",
                 seed: Optional[int] = None, dtype="float32"):
        self.name = name
        self.layers: List[Layer] = []
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.float32, np.float64):
            raise TypeError(f"a model computes in float32 or float64, not {self.dtype}")
        self.seed = seed
        self._seed = None  # the seed in use, fixed when the model is built
        self._plan = None  # the inference plan, made on first use
        self._plan_unsupported = False
        self._train_plan = None  # likewise for training (it depends on the loss)
        self._train_plan_unsupported = False
        self.check_numerics = False
        self._where = "train_on_batch"  # where a step runs, for check_numerics' message
        # Steps share the layers' work buffers, so they run one at a time; the
        # engine plan behind predict keeps no shared scratch and needs no lock.
        self._lock = threading.RLock()
        self._fit_guard = threading.Lock()
        self.built = False
        self.optimizer = None
        self.loss = None
        self.stop_training = False
        self.history = None
        for layer in layers or ():
            self.add(layer)

    # ------------------------------------------------------------- structure
    def add(self, layer: Layer) -> None:
        """Append a layer."""
        if not isinstance(layer, Layer):
            raise TypeError(f"Sequential takes nncore layers, not {type(layer).__name__}")
        if self.built:
            raise RuntimeError("this model is built already; add layers before building it")
        self.layers.append(layer)

    @property
    def _compute_layers(self) -> List[Layer]:
        """The layers that compute (all but Input), fixed once the model is built."""
        if self.built:
            return self._compute
        return [layer for layer in self.layers if not isinstance(layer, Input)]

    def build(self, input_shape: Optional[Sequence[Optional[int]]] = None,
              _expect_sizes: Optional[tuple] = None) -> None:
        """Build every layer and lay their parameters out in one flat buffer.

        ``input_shape`` is one sample's shape; Keras' form with a leading None
        (the batch axis) is accepted too. Without it, the first layer's
        ``input_shape``/``input_dim`` (or an ``Input`` layer) gives it.
        """
        if not self.layers:
            raise ValueError("the model has no layers")
        if input_shape is not None:
            shape = tuple(input_shape)
            if shape and shape[0] is None:
                shape = shape[1:]
        else:
            shape = self.layers[0].input_shape
        if shape is None:
            raise ValueError("the model does not know its input shape: give the first layer "
                             "input_dim=/input_shape=, start with Input(shape=...), or call "
                             "build(input_shape)")
        self.input_shape = tuple(int(d) for d in shape)
        specs, owners = [], []
        for layer in self.layers:
            layer.build(shape)
            shape = layer.output_shape
            for spec in layer.param_specs:
                specs.append(spec)
                owners.append(layer)
        self.output_shape = tuple(shape)
        # trainable parameters (and their gradients) in one flat buffer, the
        # optimizer's; non-trainable state (e.g. moving averages) in another
        trainable = [i for i, spec in enumerate(specs) if spec.trainable]
        frozen = [i for i, spec in enumerate(specs) if not spec.trainable]
        offsets, total = layout([specs[i] for i in trainable], self.dtype)
        s_offsets, s_total = layout([specs[i] for i in frozen], self.dtype)
        if _expect_sizes is not None and _expect_sizes != (total, s_total):
            # (a model file's arrays must fit before anything is allocated)
            raise ValueError(f"the architecture needs {total} parameters and {s_total} state "
                             f"values, the weights hold {_expect_sizes[0]} and "
                             f"{_expect_sizes[1]}")
        self._params = aligned_empty(total, self.dtype)
        self._grads = aligned_empty(total, self.dtype)
        self._states = aligned_empty(s_total, self.dtype)
        views: Dict[int, tuple] = {}
        for indices, offs, flat, grads in ((trainable, offsets, self._params, self._grads),
                                           (frozen, s_offsets, self._states, None)):
            for i, off in zip(indices, offs):
                spec, owner = specs[i], owners[i]
                size = int(np.prod(spec.shape, dtype=np.int64))
                p, g = views.setdefault(id(owner), ({}, {}))
                p[spec.name] = flat[off:off + size].reshape(spec.shape)
                if grads is not None:
                    g[spec.name] = grads[off:off + size].reshape(spec.shape)
        for layer in self.layers:
            layer.bind(*views.get(id(layer), ({}, {})))
        self._param_specs = list(zip(owners, specs))
        self._compute = [layer for layer in self.layers if not isinstance(layer, Input)]
        self._n_in = int(np.prod(self.input_shape, dtype=np.int64))  # one sample, flattened
        self._n_out = int(np.prod(self.output_shape, dtype=np.int64))
        self._regularized_layers = [layer for layer in self.layers if layer._regularized]
        self._rng_layers = [layer for layer in self.layers if layer.uses_rng]
        compute = self._compute_layers
        for i, layer in enumerate(compute):
            if hasattr(layer, "need_input_grad"):
                layer.need_input_grad = i > 0  # nobody needs dL/dx of the data
        self.built = True
        self._initialize_weights()

    def _initialize_weights(self) -> None:
        """Draw every parameter from its initializer.

        Parameter i is drawn with a seed derived from (model seed, i), so the
        same seed gives the same weights. A model built without a seed takes
        one from the global sequence (``nncore.set_seed``) and keeps it, so
        that a saved model resumes training exactly.
        """
        from nncore import initializers, random
        if self._seed is None:
            self._seed = self.seed if self.seed is not None else derive_seed(*random.next_key())
        for index, (layer, spec) in enumerate(self._param_specs):
            init = initializers.get(spec.initializer)
            if getattr(init, "seed", 0) is None:  # a random initializer without its own seed
                init = type(init).from_config(dict(init.get_config(),
                                                   seed=derive_seed(self._seed, index)))
            layer.params[spec.name][...] = init(spec.shape, self.dtype)
        for index, layer in enumerate(self.layers):
            if layer.uses_rng and layer.seed is None:
                layer.seed = derive_seed(self._seed, 1 << 33, index)

    def shuffle_seed(self) -> int:
        """The seed of fit's shuffling, derived from the model's seed."""
        return derive_seed(self._seed, 1 << 32)

    def _ensure_built(self, x=None) -> None:
        if not self.built:
            self.build(None if x is None or self.layers[0].input_shape is not None
                       else np.shape(x)[1:])

    # ------------------------------------------------------------ parameters
    def count_params(self) -> int:
        """The number of parameters."""
        self._ensure_built()
        return sum(layer.count_params() for layer in self.layers)

    def get_weights(self) -> List[np.ndarray]:
        """Every parameter, as copies, layer by layer (Keras' layouts)."""
        self._ensure_built()
        return [w for layer in self.layers for w in layer.get_weights()]

    def set_weights(self, weights: Sequence[np.ndarray]) -> None:
        """Set every parameter from arrays in ``get_weights``' order and shapes."""
        self._ensure_built()
        weights = list(weights)
        expected = len(self._param_specs)
        if len(weights) != expected:
            raise ValueError(f"the model has {expected} weight arrays, got {len(weights)}")
        i = 0
        for layer in self.layers:
            n = len(layer.param_specs)
            layer.set_weights(weights[i:i + n])
            i += n

    def get_flat_weights(self) -> np.ndarray:
        """Every parameter and state value, as one flat copy (with alignment padding)."""
        self._ensure_built()
        return np.concatenate([self._params, self._states])

    def set_flat_weights(self, flat: np.ndarray) -> None:
        """Restore what ``get_flat_weights`` returned."""
        self._ensure_built()
        n = self._params.size
        if flat.shape != (n + self._states.size,):
            raise ValueError(f"flat weights of shape {flat.shape} do not fit this model "
                             f"({n + self._states.size},)")
        self._params[...] = flat[:n]
        self._states[...] = flat[n:]

    def summary(self, print_fn=print) -> None:
        """Print the layers, their output shapes and parameter counts."""
        self._ensure_built()
        rows = [(f"{layer.name} ({type(layer).__name__})",
                 str((None,) + tuple(layer.output_shape)), f"{layer.count_params():,}")
                for layer in self.layers]
        w0 = max([len("Layer (type)")] + [len(r[0]) for r in rows]) + 2
        w1 = max([len("Output Shape")] + [len(r[1]) for r in rows]) + 2
        line = "-" * (w0 + w1 + 12)
        print_fn(f'Model: "{self.name}"')
        print_fn(line)
        print_fn(f"{'Layer (type)':<{w0}}{'Output Shape':<{w1}}{'Param #':>10}")
        print_fn("=" * len(line))
        for r in rows:
            print_fn(f"{r[0]:<{w0}}{r[1]:<{w1}}{r[2]:>10}")
        print_fn("=" * len(line))
        print_fn(f"Total params: {self.count_params():,}")
        print_fn(line)

    # --------------------------------------------------------------- compile
    def compile(self, optimizer="rmsprop", loss=None, metrics: Optional[Sequence] = None,
                check_numerics: bool = False) -> None:
        """Choose the optimizer, loss and metrics, by name or object.

        ``loss`` is a Keras name ("mse", "binary_crossentropy",
        "sparse_categorical_crossentropy", ...) or a ``nncore.losses.Loss``
        (for ``from_logits=True``). A softmax (or sigmoid) output layer with
        the matching cross-entropy is fused into one stable kernel.

        ``check_numerics=True`` checks every layer's output and gradient in
        training and raises ``FloatingPointError`` naming the first layer,
        pass, epoch and batch that produced a NaN or infinity (slower; for
        debugging a diverging run).
        """
        from nncore import optimizers
        if loss is None:
            raise ValueError("compile needs a loss, e.g. loss='mse'")
        self.optimizer = optimizers.get(optimizer)
        self.loss = losses.get_loss(loss)
        if not self.built and self.layers and self.layers[0].input_shape is not None:
            self.build()  # the input shape is known: build now, as Keras does
        self._metric_specs = list(metrics or [])
        self.compiled = True
        self.check_numerics = bool(check_numerics)
        if self.built:
            self._prepare_training()

    def _prepare_training(self) -> None:
        """Work out loss fusion, metrics and optimizer state (needs a built model)."""
        loss = self.loss
        from nncore.layers.core import _ActivationMixin
        last = self._compute_layers[-1]
        # only layers that can stop before their activation (emit_logits) fuse it
        # into the loss; another layer's "activation" attribute means nothing here
        act = last.activation if isinstance(last, _ActivationMixin) else None
        self._fused = (not loss.from_logits and (act, loss.name) in _FUSABLE)
        for layer in self._compute_layers:
            if hasattr(layer, "emit_logits"):
                layer.emit_logits = False
        self._loss_code, self._sparse = losses.resolve(loss.name, loss.from_logits or self._fused)
        self._reduction = _core.REDUCTIONS[loss.reduction]
        out_size = int(np.prod(self.output_shape))
        self.metrics = [metrics_mod.get(m, loss.name, out_size) for m in self._metric_specs]
        self.optimizer.build(self._params.size, self.dtype)
        self._train_plan, self._train_plan_unsupported = None, False
        self._prepared = True

    def _require_compiled(self) -> None:
        if self.optimizer is None or self.loss is None:
            raise RuntimeError("compile the model first: model.compile(optimizer=..., loss=...)")
        if not self.built:
            raise RuntimeError("the model is not built")
        if not getattr(self, "_prepared", False):
            self._prepare_training()

    # ------------------------------------------------------------ the passes
    def _forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        for layer in self.layers:
            x = layer.forward(x, training)
            if self.check_numerics:
                self._check_finite(x, layer, "forward")
        return x

    def _check_finite(self, arr: np.ndarray, layer, which: str) -> None:
        if arr is not None and not np.isfinite(arr).all():
            raise FloatingPointError(
                f"check_numerics: layer {layer.name!r} produced a non-finite value (NaN or "
                f"inf) in its {which} pass, at {self._where}")

    def _set_logits(self, on: bool) -> None:
        if self._fused:
            self._compute_layers[-1].emit_logits = on

    def _loss(self, y, out, want_grad: bool):
        fn = _core.loss_sparse if self._sparse else _core.loss
        grad_buf = None
        if want_grad:
            grad_buf = self._compute_layers[-1].buffer("loss_grad", out.shape, out.dtype)
        total, _, grad = fn(self._loss_code, self._reduction, y, out, want_grad, False, grad_buf)
        return total, grad

    def _probabilities(self, out: np.ndarray) -> np.ndarray:
        """The model's real outputs from the logits of a fused output layer."""
        if not self._fused:
            return out
        last = self._compute_layers[-1]
        return _core.act_forward(last._act_code, last._act_param, out,
                                 last.buffer("probs", out.shape, out.dtype))

    def _regularization(self) -> float:
        return sum(layer.regularization_loss() for layer in self.layers)

    def _train_step(self, x: np.ndarray, y: np.ndarray) -> Dict[str, float]:
        plan = None if self.check_numerics else self._training_plan()
        if plan is not None:
            with self._lock:
                loss, out = plan.step(x.reshape(len(x), self._n_in), y, self._loss_code,
                                      self._reduction, self._sparse)
                return self._finish_step(loss, y, out.reshape((len(x),) + self.output_shape))
        with self._lock:
            for layer in self._rng_layers:
                layer.step = self.optimizer.iterations  # randomness keyed by the update number
            self._set_logits(True)
            try:
                out = self._forward(x, True)
                loss, dy = self._loss(y, out, True)
                for layer in reversed(self.layers):
                    dy = layer.backward(dy)
                    if self.check_numerics:
                        self._check_finite(dy, layer, "backward")
            finally:
                self._set_logits(False)
            if self.check_numerics and not np.isfinite(self._grads).all():
                raise FloatingPointError(f"check_numerics: a parameter gradient is not finite, "
                                         f"at {self._where}")
            return self._finish_step(loss, y, out)

    def _finish_step(self, loss: float, y, out: np.ndarray) -> Dict[str, float]:
        """Regularizers, the optimizer's update and the batch's logs (lock held)."""
        for layer in self._regularized_layers:
            loss += layer.apply_regularizers()
        self.optimizer.apply(self._params, self._grads)
        return self._batch_logs(loss, y, out)

    def _test_step(self, x: np.ndarray, y: np.ndarray) -> Dict[str, float]:
        with self._lock:
            self._set_logits(True)
            try:
                out = self._forward(x, False)
                loss, _ = self._loss(y, out, False)
            finally:
                self._set_logits(False)
            return self._batch_logs(loss + self._regularization(), y, out)

    def _batch_logs(self, loss: float, y, out) -> Dict[str, float]:
        logs = {"loss": float(loss)}
        if self.metrics:
            probs = self._probabilities(out)
            for m in self.metrics:
                logs[m.name] = m.update_state(y, probs)
        return logs

    # ---------------------------------------------------- data preparation
    def _as_x(self, x, keep_u8: bool = False) -> np.ndarray:
        """x as a C-contiguous array of the model's dtype; with keep_u8, a
        uint8 x stays uint8 (fit's training batches read it as it is)."""
        x = np.asarray(x)
        if x.dtype.kind not in "biuf":
            raise TypeError(f"x has dtype {x.dtype}; inputs must be numbers")
        x = np.ascontiguousarray(x, dtype=np.uint8 if keep_u8 and x.dtype == np.uint8
                                 else self.dtype)
        if x.ndim == len(self.input_shape) and x.shape == self.input_shape:
            raise ValueError(f"x has the shape of one sample {x.shape}; pass a batch "
                             f"(add a leading axis: x[None])")
        if tuple(x.shape[1:]) != self.input_shape:
            raise ValueError(f"x has shape {x.shape}, but the model takes samples of shape "
                             f"{self.input_shape}")
        return x

    def _as_y(self, y, n: int) -> np.ndarray:
        y = np.asarray(y)
        if len(y) != n:
            raise ValueError(f"x has {n} samples but y has {len(y)}")
        if self._sparse:
            if y.dtype.kind not in "iuf":
                raise TypeError(f"y has dtype {y.dtype}; integer class labels are needed")
            if y.ndim == 2 and y.shape[1] > 1:
                raise ValueError(f"y has shape {y.shape}: one-hot targets go with "
                                 f"categorical_crossentropy; sparse_categorical_crossentropy "
                                 f"takes integer labels")
            y = y.reshape(n)
            _check_labels(y, self.output_shape[-1], "y")
            if y.dtype != np.int64 and y.dtype.kind in "iu":
                # int64 once here, so each batch takes the boundary's fast path
                # (out-of-range values are reported by fit's check or the boundary)
                y = y.astype(np.int64) if (y.min(initial=0) >= 0 and
                                           y.max(initial=0) < 2 ** 62) else y
            return y
        if y.dtype.kind not in "biuf":
            raise TypeError(f"y has dtype {y.dtype}; targets must be numbers")
        return np.ascontiguousarray(y, dtype=self.dtype)

    # ------------------------------------------------------------ batch API
    def train_on_batch(self, x, y) -> Union[float, List[float]]:
        """One optimizer step on one batch; returns the loss (and metrics, if any)."""
        self._ensure_built(x)
        self._require_compiled()
        x = self._as_x(x)
        _nonempty(x, "train_on_batch")
        for m in self.metrics:
            m.reset_state()
        logs = self._train_step(x, self._as_y(y, len(x)))
        return self._scalar_or_list(logs)

    def test_on_batch(self, x, y) -> Union[float, List[float]]:
        """The loss (and metrics) of one batch, without training."""
        self._ensure_built(x)
        self._require_compiled()
        x = self._as_x(x)
        _nonempty(x, "test_on_batch")
        for m in self.metrics:
            m.reset_state()
        return self._scalar_or_list(self._test_step(x, self._as_y(y, len(x))))

    def predict_on_batch(self, x) -> np.ndarray:
        """The model's outputs for one batch, as a new array."""
        self._ensure_built(x)
        x = self._as_x(x)
        plan = self._inference_plan()
        if plan is not None:
            return plan.run(x.reshape(len(x), self._n_in)).reshape((len(x),) + self.output_shape)
        with self._lock:
            return self._forward(x, False).copy()

    def predict_one(self, x, out: Optional[np.ndarray] = None) -> np.ndarray:
        """The output for ONE sample (shape ``input_shape``), at the lowest latency.

        For a stack of Dense and Activation layers (Flatten, Dropout and Input
        allowed) the whole network runs in one engine call with no allocation
        beyond the result (none with ``out=``), and it is safe to call from
        several threads at once. Other models take the layer-by-layer path.
        """
        plan = self._plan
        if plan is None:
            self._ensure_built()
            plan = self._inference_plan()
            if plan is None:
                x = np.asarray(x)
                if x.shape != self.input_shape:
                    raise ValueError(f"x has shape {x.shape}; one sample of this model has "
                                     f"shape {self.input_shape}")
                return self.predict_on_batch(x[None])[0]
        return plan.run_one(x, out)

    def _plan_steps(self, training: bool):
        """The layers as engine plan steps and, per step, its gradient arrays;
        None where a layer has no plan step (Dropout counts as one only at
        inference, where it does nothing)."""
        from nncore.layers import Activation, Dense, Dropout, Flatten
        steps, grads = [], []
        for layer in self._compute_layers:
            if isinstance(layer, Dense):
                steps.append(("dense", layer.params["kernel"], layer.params.get("bias"),
                              layer._act_code, layer._act_param))
                grads.append((layer.grads["kernel"], layer.grads.get("bias")))
            elif isinstance(layer, Activation):
                if layer.activation != "linear":
                    steps.append(("activation", int(np.prod(layer.input_shape)),
                                  layer._act_code, layer._act_param))
                    grads.append(None)
            elif isinstance(layer, Flatten) or (isinstance(layer, Dropout) and not training):
                continue
            else:
                return None
        return (steps, grads) if steps else None

    def _inference_plan(self):
        """The model's layers as one engine call, or None where a layer has no plan step."""
        if self._plan is None and not self._plan_unsupported:
            found = self._plan_steps(training=False)
            if found is None:
                self._plan_unsupported = True
            else:
                self._plan = _core.Plan(found[0], self.dtype)
                self._plan.sample_shape = self.input_shape
        return self._plan

    def _training_plan(self):
        """Forward, fused loss and backward as one engine call, where every layer allows it."""
        if self._train_plan is None and not self._train_plan_unsupported:
            found = self._plan_steps(training=True)
            if found is None:
                self._train_plan_unsupported = True
            else:
                self._train_plan = _core.TrainPlan(found[0], self.dtype, found[1],
                                                   fuse_last=self._fused)
        return self._train_plan

    @staticmethod
    def _scalar_or_list(logs):
        values = list(logs.values())
        return values[0] if len(values) == 1 else values

    def predict(self, x, batch_size: int = 32, verbose: int = 0) -> np.ndarray:
        """The model's outputs for every sample of x, in batches of ``batch_size``."""
        self._ensure_built(x)
        x = self._as_x(x)
        batch_size = _check_batch_size(batch_size)
        out = np.empty((len(x),) + self.output_shape, self.dtype)
        plan = self._inference_plan()
        flat_x, flat_out = x.reshape(len(x), self._n_in), out.reshape(len(x), self._n_out)
        for start in range(0, len(x), batch_size):
            stop = min(start + batch_size, len(x))
            if plan is not None:
                plan.run(flat_x[start:stop], flat_out[start:stop])
            else:
                with self._lock:
                    out[start:stop] = self._forward(x[start:stop], False)
        return out

    def evaluate(self, x, y, batch_size: int = 32, verbose: int = 0,
                 return_dict: bool = False):
        """The loss and metrics over a whole data set, batch by batch."""
        self._ensure_built(x)
        self._require_compiled()
        x = self._as_x(x)
        _nonempty(x, "evaluate")
        y = self._as_y(y, len(x))
        batch_size = _check_batch_size(batch_size)
        logs = self._run_test_epoch(x, y, batch_size)
        if verbose:
            print(" - ".join(f"{k}: {v:.4f}" for k, v in logs.items()))
        return logs if return_dict else self._scalar_or_list(logs)

    def _run_test_epoch(self, x, y, batch_size: int) -> Dict[str, float]:
        loss_mean = metrics_mod.Mean()
        for m in self.metrics:
            m.reset_state()
        for start in range(0, len(x), batch_size):
            stop = min(start + batch_size, len(x))
            logs = self._test_step(x[start:stop], y[start:stop])
            loss_mean.update_state(logs["loss"], stop - start)
        return {"loss": loss_mean.result(), **{m.name: m.result() for m in self.metrics}}

    # ------------------------------------------------------------------ fit
    def fit(self, x=None, y=None, batch_size: Optional[int] = 32, epochs: int = 1,
            verbose: Union[int, str] = 1, callbacks: Optional[Sequence] = None,
            validation_split: float = 0.0, validation_data=None, shuffle: bool = True,
            initial_epoch: int = 0, steps_per_epoch: Optional[int] = None):
        """Train for ``epochs`` passes over the data; returns a ``History``.

        Gradient descent comes in three flavours, all set by ``batch_size``:
        full-batch (``batch_size=len(x)``), stochastic (``batch_size=1``) and
        mini-batch (anything between; default 32).

        ``x`` may also be an iterable (or generator) of ``(x_batch, y_batch)``
        pairs, for data that does not fit in memory; then ``y`` is None and
        ``steps_per_epoch`` says how many batches make an epoch (without it, an
        epoch ends when the iterable is exhausted).

        A stack of Dense/Activation layers trained on arrays, with the
        built-in optimizers, regularizers and accuracies and no callback that
        hooks batches, runs whole runs of batches in one engine call (the same
        steps, bit for bit, as batch by batch); a sparse input (at most a
        quarter nonzero per batch) has its first layer computed over its
        nonzeros only.

        A uint8 ``x`` (images as loaded, such as ``nncore.datasets.load_digits16``)
        is trained on as it is, with no float copy of the data set: the engine
        reads each batch's bytes as the model's floats, and other paths convert
        one batch at a time (the same bits as passing ``x.astype(model.dtype)``).
        Other integer and bool dtypes are converted to the model's dtype whole,
        as are validation data.
        """
        from nncore.training import fit
        return fit(self, x, y, batch_size, epochs, verbose, callbacks, validation_split,
                   validation_data, shuffle, initial_epoch, steps_per_epoch)

    def save(self, path) -> None:
        """Save architecture, weights, optimizer state and compile settings (no pickle)."""
        from nncore import io
        io.save_model(self, path)


def _check_labels(y: np.ndarray, classes: int, name: str) -> None:
    """Every label an integer in [0, classes), checked once before any work starts
    (so a refused call changes nothing, and the error names the sample in y)."""
    if y.size and (y.min() < 0 or y.max() >= classes or
                   (y.dtype.kind == "f" and not np.array_equal(y, np.floor(y)))):
        bad = np.flatnonzero((y < 0) | (y >= classes) | (y != np.floor(y)))[0]
        raise ValueError(f"{name}[{bad}] = {y[bad]} is not a class label of this model "
                         f"(the {classes} classes are 0 .. {classes - 1})")


def _nonempty(x: np.ndarray, what: str) -> None:
    if len(x) == 0:
        raise ValueError(f"{what} needs at least one sample; x has shape {x.shape}")


def derive_seed(*keys: int) -> int:
    """A well-mixed 64-bit seed from integers (the same integers, the same seed)."""
    return int(np.random.SeedSequence([int(k) for k in keys]).generate_state(1, np.uint64)[0])


def _check_batch_size(batch_size) -> int:
    if not (isinstance(batch_size, (int, np.integer)) and batch_size > 0):
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    return int(batch_size)
