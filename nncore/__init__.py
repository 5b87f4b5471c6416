"""nncore: a fast neural-network core.

A C engine with SIMD kernels under a thin Python API: NumPy arrays in and out,
Keras' names and conventions.

- :class:`Sequential` with :mod:`nncore.layers`, ``compile``/``fit``, and
  :func:`load_model`: the model API.
- :mod:`nncore.ops`: the functional API (products, dense layers, activations,
  losses, metrics) for embedding.
- :mod:`nncore.activations`, :mod:`nncore.losses`, :mod:`nncore.metrics`,
  :mod:`nncore.callbacks`, :mod:`nncore.regularizers`: Keras-style pieces.
- :mod:`nncore.optimizers`, :mod:`nncore.initializers`: Keras-style optimizers
  (one fused step over a flat buffer), schedules and initializers.
- :mod:`nncore.random`, :func:`set_seed`: the counter-based generator.
- :func:`set_num_threads`, :func:`get_num_threads`: the engine's thread limit
  (default: the CPUs this process may use, or ``NNCORE_NUM_THREADS``); results
  are bit-identical at any thread count. threadpoolctl, when installed, sees
  and limits the engine's threads as user_api "nncore".
- :mod:`nncore.estimators` (scikit-learn style MLPClassifier, MLPRegressor,
  Perceptron), :mod:`nncore.ensemble` (bagging, voting, stacking),
  :mod:`nncore.diagnostics` (per-layer gradient norms).
- :func:`show_config`: version, build, kernel level and threads.
"""
from nncore._version import __version__
from nncore import (activations, callbacks, data, datasets, initializers, layers, losses, metrics, ops,
                    optimizers, random, regularizers)
from nncore import _threadpool
from nncore import diagnostics, ensemble, estimators, rbm
from nncore._config import show_config
from nncore._core import get_num_threads, set_num_threads
from nncore.io import load_model
from nncore.model import Sequential
from nncore.random import set_seed

_threadpool.register()

__all__ = ["__version__", "Sequential", "load_model", "activations", "callbacks", "data", "datasets",
           "initializers", "layers", "losses", "metrics", "ops", "optimizers", "random",
           "regularizers", "estimators", "ensemble", "diagnostics", "set_seed", "show_config", "get_num_threads", "set_num_threads"]
