"""nncore: a fast neural-network core.

A C engine with SIMD kernels under a thin Python API: NumPy arrays in and out,
Keras' names and conventions.

- :mod:`nncore.ops`: the functional API (products, dense layers, activations,
  losses, metrics) for embedding.
- :mod:`nncore.activations`, :mod:`nncore.losses`: Keras-style look-ups by name.
- :func:`set_num_threads`, :func:`get_num_threads`: the engine's thread limit
  (default: the CPUs this process may use, or ``NNCORE_NUM_THREADS``); results
  are bit-identical at any thread count. threadpoolctl, when installed, sees
  and limits the engine's threads as user_api "nncore".
"""
from nncore._version import __version__
from nncore import activations, losses, ops
from nncore._core import get_num_threads, set_num_threads
from nncore import _threadpool

_threadpool.register()

__all__ = ["__version__", "activations", "losses", "ops", "get_num_threads", "set_num_threads"]
