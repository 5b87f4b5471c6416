"""nncore: a fast neural-network core.

A C engine with SIMD kernels under a thin Python API: NumPy arrays in and out,
Keras' names and conventions.

- :mod:`nncore.ops`: the functional API (products, dense layers, activations,
  losses, metrics) for embedding.
- :mod:`nncore.activations`, :mod:`nncore.losses`: Keras-style look-ups by name.
- :mod:`nncore.optimizers`, :mod:`nncore.initializers`: Keras-style optimizers
  (one fused step over a flat buffer), schedules and initializers.
- :mod:`nncore.random`, :func:`set_seed`: the counter-based generator.
- :func:`show_config`: version, build, kernel level and threads.
"""
from nncore._version import __version__
from nncore import activations, losses, ops
from nncore._config import show_config
from nncore._core import get_num_threads, set_num_threads
from nncore import initializers, optimizers, random
from nncore.random import set_seed

__all__ = ["__version__", "activations", "losses", "ops", "show_config",
           "get_num_threads", "set_num_threads",
           "initializers", "optimizers", "random", "set_seed"]
