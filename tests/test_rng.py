"""The counter-based generator: Philox known answers, independence from
chunking and threads, and the statistics of every fill."""
import math

import numpy as np
import pytest

import nncore
from nncore import _core
from nncore import random as nrandom

# Random123's tests/kat_vectors, the three "philox4x32 10" lines:
# counter (4 words), key (2 words) -> output (4 words)
KAT = [
    ((0, 0, 0, 0), (0, 0), (0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8)),
    ((0xffffffff,) * 4, (0xffffffff,) * 2, (0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd)),
    ((0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344), (0xa4093822, 0x299f31d0),
     (0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1)),
]


@pytest.mark.parametrize("ctr, key, want", KAT)
def test_philox_known_answers(ctr, key, want):
    assert _core.philox4x32_10(ctr, key) == want


def philox_words(seed, stream, blocks):
    """The raw words of the first `blocks` blocks, by the documented counter layout."""
    key = (seed & 0xffffffff, seed >> 32)
    return np.array([_core.philox4x32_10((b & 0xffffffff, b >> 32, stream & 0xffffffff,
                                          stream >> 32), key) for b in range(blocks)],
                    dtype=np.uint64).ravel()


def test_float32_uniform_is_the_documented_function_of_the_words():
    seed, stream = 0x1234567890, 7
    w = philox_words(seed, stream, 8)
    got = _core.rand_uniform(seed, stream, 32, 0.0, 1.0, np.float32)
    np.testing.assert_array_equal(got, (w >> 8).astype(np.float32) * np.float32(2.0 ** -24))


def test_float64_uniform_is_the_documented_function_of_the_words():
    seed, stream = 99, 2 ** 40 + 3
    w = philox_words(seed, stream, 8).reshape(-1, 2)
    bits = ((w[:, 1] << 32) | w[:, 0]) >> 11
    got = _core.rand_uniform(seed, stream, 16, 0.0, 1.0, np.float64)
    np.testing.assert_array_equal(got, bits.astype(np.float64) * 2.0 ** -53)


def test_dropout_mask_is_the_documented_function_of_the_words():
    w = philox_words(5, 0, 16)
    got = _core.dropout_mask(5, 0, 64, 0.3, np.float64)
    np.testing.assert_array_equal(got, np.where(w < 0.3 * 2.0 ** 32, 1 / 0.3, 0.0))


FILLS = [
    ("uniform32", lambda o, n: _core.rand_uniform(3, 1, n, -2.0, 5.0, np.float32, offset=o)),
    ("uniform64", lambda o, n: _core.rand_uniform(3, 1, n, -2.0, 5.0, np.float64, offset=o)),
    ("normal32", lambda o, n: _core.rand_normal(3, 1, n, 1.0, 2.0, np.float32, offset=o)),
    ("normal64", lambda o, n: _core.rand_normal(3, 1, n, 1.0, 2.0, np.float64, offset=o)),
    ("trunc32", lambda o, n: _core.rand_normal(3, 1, n, 0.0, 1.0, np.float32, True, offset=o)),
    ("trunc64", lambda o, n: _core.rand_normal(3, 1, n, 0.0, 1.0, np.float64, True, offset=o)),
    ("mask32", lambda o, n: _core.dropout_mask(3, 1, n, 0.7, np.float32, offset=o)),
    ("mask64", lambda o, n: _core.dropout_mask(3, 1, n, 0.7, np.float64, offset=o)),
]


@pytest.mark.parametrize("name, fill", FILLS, ids=[f[0] for f in FILLS])
def test_any_chunking_gives_the_same_bits(name, fill):
    n = 40_000  # spans several engine tasks
    whole = fill(0, n)
    rng = np.random.default_rng(0)
    cuts = np.sort(rng.choice(np.arange(1, n), size=25, replace=False))
    bounds = [0, *cuts.tolist(), n]
    pieces = [fill(a, b - a) for a, b in zip(bounds, bounds[1:])]
    np.testing.assert_array_equal(np.concatenate(pieces), whole)
    # and element by element at odd offsets
    for i in (1, 2, 3, 5, 12_345, n - 1):
        np.testing.assert_array_equal(fill(i, 1), whole[i:i + 1])


@pytest.mark.parametrize("name, fill", FILLS, ids=[f[0] for f in FILLS])
def test_thread_count_gives_the_same_bits(name, fill):
    before = nncore.get_num_threads()
    try:
        outs = []
        for t in (1, 2, 4):
            nncore.set_num_threads(t)
            outs.append(fill(17, 50_001))
    finally:
        nncore.set_num_threads(before)
    for o in outs[1:]:
        np.testing.assert_array_equal(o, outs[0])


def test_seeds_and_streams_differ():
    a = _core.rand_uniform(1, 0, 1000)
    assert not np.array_equal(a, _core.rand_uniform(2, 0, 1000))
    assert not np.array_equal(a, _core.rand_uniform(1, 1, 1000))
    assert not np.array_equal(a, _core.rand_uniform(2 ** 32 + 1, 0, 1000))  # high key word
    np.testing.assert_array_equal(a, _core.rand_uniform(1, 0, 1000))


N = 1_000_000


def _mean_var_ok(x, mean, var, fourth=None):
    """Sample mean and variance within 6 standard errors of the truth."""
    x = x.astype(np.float64)
    n = x.size
    assert abs(x.mean() - mean) < 6 * math.sqrt(var / n)
    # var of the sample variance ~ (mu4 - var^2) / n
    mu4 = fourth if fourth is not None else 3 * var * var
    assert abs(x.var() - var) < 6 * math.sqrt((mu4 - var * var) / n)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_uniform_statistics(dtype):
    x = _core.rand_uniform(11, 0, N, -1.0, 3.0, dtype)
    assert x.dtype == dtype
    assert x.min() >= -1.0 and x.max() < 3.0
    _mean_var_ok(x, 1.0, 16 / 12, fourth=4 ** 4 / 80)
    # every tenth of the range holds about a tenth of the draws
    counts = np.histogram(x, bins=10, range=(-1, 3))[0]
    assert np.all(np.abs(counts - N / 10) < 6 * math.sqrt(N * 0.1 * 0.9))


def test_uniform_never_reaches_high_in_float32():
    # a range where low + (high - low) * u rounds up to high for u near 1
    x = _core.rand_uniform(0, 0, 200_000, 1.0, 1.0000001, np.float32)
    assert np.all(x < np.float32(1.0000001)) and np.all(x >= 1.0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_normal_statistics(dtype):
    x = _core.rand_normal(12, 0, N, 0.5, 2.0, dtype)
    assert x.dtype == dtype and np.all(np.isfinite(x))
    _mean_var_ok(x, 0.5, 4.0)
    z = (x.astype(np.float64) - 0.5) / 2.0
    # tails: P(|z| > 2) = 0.0455
    frac = np.mean(np.abs(z) > 2)
    assert abs(frac - 0.0455) < 6 * math.sqrt(0.0455 * 0.9545 / N)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_truncated_normal_statistics(dtype):
    x = _core.rand_normal(13, 0, N, 1.0, 0.5, dtype, truncated=True)
    assert x.min() >= 1.0 - 2 * 0.5 and x.max() <= 1.0 + 2 * 0.5
    # moments of a standard normal truncated to [-a, a], a = 2
    a, phi = 2.0, math.exp(-2.0) / math.sqrt(2 * math.pi)
    mass = math.erf(a / math.sqrt(2))
    m2 = 1 - 2 * a * phi / mass
    m4 = 3 * m2 - 2 * a ** 3 * phi / mass
    assert math.sqrt(m2) == pytest.approx(0.87962566103423978, rel=1e-12)
    _mean_var_ok(x, 1.0, 0.25 * m2, fourth=0.5 ** 4 * m4)
    # P(|z| < 1 | |z| < 2) = 0.6827 / 0.9545
    z = (x.astype(np.float64) - 1.0) / 0.5
    p = 0.682689492 / 0.954499736
    assert abs(np.mean(np.abs(z) < 1) - p) < 6 * math.sqrt(p * (1 - p) / N)


@pytest.mark.parametrize("keep", [0.1, 0.5, 0.9, 1.0])
def test_dropout_mask_keep_rate(keep):
    m = _core.dropout_mask(21, 4, N, keep, np.float32)
    kept = m != 0
    assert np.all(m[kept] == np.float32(1 / np.float32(keep)))
    assert abs(kept.mean() - keep) <= 6 * math.sqrt(keep * (1 - keep) / N)
    # inverted dropout keeps the expectation
    assert abs(m.astype(np.float64).mean() - 1) < 0.01


def test_permutation_is_a_permutation_and_uniform():
    for n in (0, 1, 2, 17, 10_000):
        p = _core.permutation(3, 0, n)
        assert p.dtype == np.int64
        np.testing.assert_array_equal(np.sort(p), np.arange(n))
    np.testing.assert_array_equal(_core.permutation(3, 0, 1000), _core.permutation(3, 0, 1000))
    assert not np.array_equal(_core.permutation(3, 0, 1000), _core.permutation(3, 1, 1000))
    # where element 0 lands, over many streams, is uniform over 5 places
    where = np.array([np.argmax(_core.permutation(8, s, 5) == 0) for s in range(5000)])
    counts = np.bincount(where, minlength=5)
    assert np.all(np.abs(counts - 1000) < 6 * math.sqrt(5000 * 0.2 * 0.8))


def test_global_seed_reproduces_call_sequences():
    nncore.set_seed(123)
    a = [nrandom.uniform((4,)), nrandom.normal((3, 2)), nrandom.permutation(6)]
    nncore.set_seed(123)
    b = [nrandom.uniform((4,)), nrandom.normal((3, 2)), nrandom.permutation(6)]
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    # successive unseeded calls differ; explicit seeds repeat
    assert not np.array_equal(nrandom.uniform((8,)), nrandom.uniform((8,)))
    np.testing.assert_array_equal(nrandom.uniform((8,), seed=5), nrandom.uniform((8,), seed=5))
    nncore.set_seed(124)
    assert not np.array_equal(nrandom.uniform((4,)), a[0])
    assert nncore.random.get_seed() == 124


def test_out_and_shapes():
    out = np.empty((3, 5), np.float32)
    r = _core.rand_uniform(1, 0, (3, 5), out=out)
    assert r is out
    np.testing.assert_array_equal(out.ravel(), _core.rand_uniform(1, 0, 15))
    m = nrandom.dropout_mask((4, 4), rate=0.25, seed=2)
    assert m.shape == (4, 4) and set(np.unique(m)) <= {0.0, np.float32(1 / np.float32(0.75))}


@pytest.mark.parametrize("call", [
    lambda: _core.rand_uniform(-1, 0, 3),
    lambda: _core.rand_uniform(2 ** 64, 0, 3),
    lambda: _core.rand_uniform(1, 0, 3, 2.0, 1.0),
    lambda: _core.rand_uniform(1, 0, 3, 0.0, float("inf")),
    lambda: _core.rand_uniform(1, 0, (3, -1)),
    lambda: _core.rand_uniform(1, 0, 3, offset=2 ** 64 - 2),
    lambda: _core.rand_normal(1, 0, 3, 0.0, -1.0),
    lambda: _core.dropout_mask(1, 0, 3, 0.0),
    lambda: _core.dropout_mask(1, 0, 3, 1.5),
    lambda: nrandom.dropout_mask(3, rate=1.0),
    lambda: _core.permutation(1, 0, -1),
    lambda: _core.philox4x32_10((0, 0, 0, 2 ** 32), (0, 0)),
    lambda: nncore.set_seed(-3),
])
def test_bad_arguments(call):
    with pytest.raises(ValueError):
        call()


def test_bad_types():
    with pytest.raises(TypeError):
        _core.rand_uniform(1, 0, 3, dtype=np.int32)
    with pytest.raises(TypeError):
        nncore.set_seed(1.5)
    with pytest.raises(TypeError):
        _core.rand_uniform(1, 0, 3, out=np.empty(3, np.float64))
