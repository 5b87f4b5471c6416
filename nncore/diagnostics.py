"""Diagnostics: looking inside a network's training signal.

:func:`gradient_norms` runs one forward and backward pass and reports each
layer's gradient norm, without an optimizer step: the tool to see vanishing
gradients (a deep sigmoid stack whose first layers barely learn, because the
sigmoid's derivative is at most 0.25 and the chain rule multiplies it in at
every layer), or exploding ones.
"""
from __future__ import annotations

import contextlib
from typing import Dict

import numpy as np

__all__ = ["gradient_norms"]


def gradient_norms(model, x, y, per_parameter: bool = False) -> Dict[str, float]:
    """The L2 norm of each layer's loss gradient after one backward pass on (x, y).

    ``model`` is a compiled ``nncore.Sequential``. Returns ``{layer name:
    norm}`` in layer order (layers without parameters are left out), or with
    ``per_parameter=True`` ``{"layer/param": norm}``. The weights and the
    optimizer are untouched; the gradient buffers hold this batch's
    gradients afterwards (regularization included, as training would use).
    """
    model._ensure_built(x)
    model._require_compiled()
    x = model._as_x(x)
    y = model._as_y(y, len(x))
    # The model's own training pass, minus the optimizer step (Sequential has
    # no public "gradients only" call; this mirrors Sequential._train_step's
    # layer-by-layer path, under the model's lock where it has one).
    with getattr(model, "_lock", None) or contextlib.nullcontext():
        for layer in model._rng_layers:
            layer.step = model.optimizer.iterations
        model._set_logits(True)
        try:
            out = model._forward(x, True)
            _, dy = model._loss(y, out, True)
            for layer in reversed(model.layers):
                dy = layer.backward(dy)
        finally:
            model._set_logits(False)
        if model._regularization():
            for layer in model.layers:
                layer.add_regularization_grads()
    norms: Dict[str, float] = {}
    for layer in model.layers:
        grads = getattr(layer, "grads", None) or {}
        if not grads:
            continue
        if per_parameter:
            for name, g in grads.items():
                norms[f"{layer.name}/{name}"] = float(np.sqrt(np.square(g, dtype=np.float64).sum()))
        else:
            total = sum(float(np.square(g, dtype=np.float64).sum()) for g in grads.values())
            norms[layer.name] = float(np.sqrt(total))
    return norms
