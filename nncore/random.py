"""Seeds and random draws from the engine's counter-based generator.

Every draw comes from Philox-4x32-10 keyed by a ``seed`` and a ``stream``:
element ``i`` of a draw is a pure function of ``(seed, stream, offset + i)``,
so it is reproduced bit for bit whatever the thread count or the way the work
is split.

Seeding follows Keras: an explicit ``seed=`` always gives the same values;
without one, draws use the global seed (:func:`set_seed`) and a fresh stream
for every call, so ``set_seed(s)`` followed by the same sequence of calls
reproduces the same values.

>>> import nncore
>>> nncore.set_seed(42)
>>> a = nncore.random.uniform((3,))
>>> nncore.set_seed(42)
>>> bool((a == nncore.random.uniform((3,))).all())
True
"""
import itertools
import threading

import numpy as np

from nncore import _core

__all__ = ["set_seed", "get_seed", "next_key", "uniform", "normal", "truncated_normal",
           "dropout_mask", "permutation"]

_DEFAULT_SEED = 1337
_lock = threading.Lock()
_state = {"seed": _DEFAULT_SEED, "streams": itertools.count(1)}

# Streams at or above this are the automatic ones; explicit seeds use stream 0
# unless told otherwise, so the two never meet under one key.
_AUTO_STREAM_BASE = 1 << 62


def _check_seed(seed):
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"a seed is an integer, got {seed!r}")
    seed = int(seed)
    if not 0 <= seed < 2 ** 64:
        raise ValueError(f"a seed must be in [0, 2**64), got {seed}")
    return seed


def set_seed(seed):
    """Set the global seed and restart the sequence of automatic streams."""
    seed = _check_seed(seed)
    with _lock:
        _state["seed"] = seed
        _state["streams"] = itertools.count(1)


def get_seed():
    """The global seed."""
    return _state["seed"]


def next_key(seed=None, stream=None):
    """The (seed, stream) a draw should use.

    With an explicit seed: (seed, stream or 0), the same every call. Without
    one: the global seed and the next automatic stream.
    """
    if seed is not None:
        return _check_seed(seed), (0 if stream is None else _check_seed(stream))
    with _lock:
        return _state["seed"], _AUTO_STREAM_BASE + next(_state["streams"])


def uniform(shape, minval=0.0, maxval=1.0, dtype="float32", seed=None, stream=None):
    """Uniform values in [minval, maxval)."""
    s, t = next_key(seed, stream)
    return _core.rand_uniform(s, t, shape, minval, maxval, dtype)


def normal(shape, mean=0.0, stddev=1.0, dtype="float32", seed=None, stream=None):
    """Normal values (Box-Muller, computed in double)."""
    s, t = next_key(seed, stream)
    return _core.rand_normal(s, t, shape, mean, stddev, dtype)


def truncated_normal(shape, mean=0.0, stddev=1.0, dtype="float32", seed=None, stream=None):
    """Normal values truncated to [mean - 2 stddev, mean + 2 stddev], as Keras'.

    ``stddev`` is the parameter of the untruncated normal; the values' own
    standard deviation is about 0.88 times it.
    """
    s, t = next_key(seed, stream)
    return _core.rand_normal(s, t, shape, mean, stddev, dtype, truncated=True)


def dropout_mask(shape, rate, dtype="float32", seed=None, stream=None, offset=0, out=None):
    """Inverted-dropout mask: 0 with probability ``rate``, else 1 / (1 - rate)."""
    if not 0 <= rate < 1:
        raise ValueError(f"the dropout rate must be in [0, 1), got {rate}")
    s, t = next_key(seed, stream)
    return _core.dropout_mask(s, t, shape, 1.0 - rate, dtype, offset=offset, out=out)


def permutation(n, seed=None, stream=None):
    """A random permutation of ``0 .. n-1`` (int64), e.g. to shuffle samples."""
    s, t = next_key(seed, stream)
    return _core.permutation(s, t, int(n))
