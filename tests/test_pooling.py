"""Pooling and Reshape: the engine kernels against float64 NumPy references
(every kernel level), finite differences, PyTorch parity, Keras' "same" rule,
odd sizes, errors, thread bit-identity, and the layers in a model."""
from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

import nncore
from nncore import _core
from nncore.layers import (AveragePooling2D, Dense, Flatten, GlobalAveragePooling2D,
                           GlobalMaxPooling2D, Input, MaxPooling2D, Reshape)
from tests.conftest import fd_grad


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def keras_pads(size, k, s, padding):
    if padding == "valid":
        return (size - k) // s + 1, 0, 0
    out = -(-size // s)
    total = max((out - 1) * s + k - size, 0)
    return out, total // 2, total - total // 2


def ref_pool(mode, x, pool, strides=None, padding="valid"):
    """Keras' pooling in float64: max ignores the padding (-inf), average
    divides by the number of real pixels in each window."""
    x = np.asarray(x, np.float64)
    (ph, pw) = _pair(pool)
    (sh, sw) = _pair(pool if strides is None else strides)
    oh, pt, pb = keras_pads(x.shape[1], ph, sh, padding)
    ow, pl, pr = keras_pads(x.shape[2], pw, sw, padding)
    pads = ((0, 0), (pt, pb), (pl, pr), (0, 0))
    fill = -np.inf if mode == "max" else 0.0
    xp = np.pad(x, pads, constant_values=fill)
    ones = np.pad(np.ones_like(x), pads)
    out = np.full((x.shape[0], oh, ow, x.shape[3]), fill)
    count = np.zeros_like(out)
    for ky, kx in itertools.product(range(ph), range(pw)):
        sl = (slice(None), slice(ky, ky + (oh - 1) * sh + 1, sh),
              slice(kx, kx + (ow - 1) * sw + 1, sw))
        if mode == "max":
            out = np.maximum(out, xp[sl])
        else:
            out = out + xp[sl]
            count += ones[sl]
    return out if mode == "max" else out / count


CASES = [
    # (n, h, w, c), pool, strides, padding
    ((2, 6, 6, 3), 2, None, "valid"),
    ((2, 7, 5, 3), 2, None, "valid"),          # leftover rows dropped
    ((2, 7, 5, 3), 2, None, "same"),           # extra padding bottom/right
    ((2, 7, 7, 2), 3, 2, "valid"),             # overlapping windows
    ((2, 7, 8, 2), 3, 2, "same"),
    ((2, 6, 9, 2), (2, 3), (1, 2), "same"),
    ((2, 8, 8, 1), 2, 3, "valid"),             # stride larger than the pool
    ((2, 5, 5, 2), 5, None, "valid"),          # pool as large as the input
    ((2, 1, 1, 3), 1, None, "valid"),          # 1 x 1 images
    ((2, 1, 1, 3), 2, None, "same"),           # 1 x 1 images, 2x2 pool, same
    ((1, 3, 2, 2), 4, 1, "same"),              # pool larger than the input, same
]
IDS = [f"{x}-p{p}-s{s}-{pad}" for x, p, s, pad in CASES]


def _x(shape, dtype, seed=0):
    # distinct values: no ties, so the max's gradient is well defined
    rng = np.random.default_rng(seed)
    return rng.permutation(np.prod(shape)).reshape(shape).astype(dtype) / 7 - 3


_GRADS = {}


@pytest.mark.parametrize("mode", ["max", "avg"])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_against_reference(mode, case, dtype, isa):
    xs, pool, s, pad = case
    x = _x(xs, dtype)
    y, argmax = _core.pool2d_forward(mode, x, pool, s, pad)
    rtol = 1e-6 if dtype == np.float32 else 1e-14
    np.testing.assert_allclose(y, ref_pool(mode, x, pool, s, pad), rtol=rtol, atol=rtol)
    assert y.dtype == dtype and (argmax is None) == (mode == "avg")
    dy = np.random.default_rng(1).standard_normal(y.shape).astype(dtype)
    dx = _core.pool2d_backward(mode, x.shape, dy, pool, s, pad, argmax=argmax)
    # the exact gradient of <dy, pool(x)> (piecewise linear in x; h is well
    # inside the gaps between distinct values)
    key = (mode, CASES.index(case), np.dtype(dtype).name)
    if key not in _GRADS:  # the reference does not depend on the kernel level
        _GRADS[key] = fd_grad(lambda v: np.sum(ref_pool(mode, v, pool, s, pad) * dy), x, h=1e-3)
    np.testing.assert_allclose(dx, _GRADS[key], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_parity_with_torch_float32(case):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    xs, pool, s, pad = case
    (ph, pw), (sh, sw) = _pair(pool), _pair(pool if s is None else s)
    _, pt, pb = keras_pads(xs[1], ph, sh, pad)
    _, pl, pr = keras_pads(xs[2], pw, sw, pad)
    x = _x(xs, np.float32, seed=2)
    xt = torch.tensor(x).permute(0, 3, 1, 2).contiguous().requires_grad_()
    # max: pad with -inf (never wins); avg: sum over zero padding / real pixels
    ymax = F.max_pool2d(F.pad(xt, (pl, pr, pt, pb), value=-float("inf")), (ph, pw), (sh, sw))
    ones = F.pad(torch.ones_like(xt[:1, :1]), (pl, pr, pt, pb))
    count = F.avg_pool2d(ones, (ph, pw), (sh, sw), divisor_override=1)
    yavg = F.avg_pool2d(F.pad(xt, (pl, pr, pt, pb)), (ph, pw), (sh, sw), divisor_override=1) / count
    dy = np.random.default_rng(3).standard_normal(tuple(ymax.permute(0, 2, 3, 1).shape))
    dy = dy.astype(np.float32)
    for mode, yt in (("max", ymax), ("avg", yavg)):
        xt.grad = None
        yt.backward(torch.tensor(dy).permute(0, 3, 1, 2))
        y, argmax = _core.pool2d_forward(mode, x, pool, s, pad)
        dx = _core.pool2d_backward(mode, x.shape, dy, pool, s, pad, argmax=argmax)
        np.testing.assert_allclose(y, yt.detach().permute(0, 2, 3, 1).numpy(), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(dx, xt.grad.permute(0, 2, 3, 1).numpy(), rtol=1e-5, atol=1e-6)


def test_max_ties_go_to_the_first_and_nan_wins():
    x = np.zeros((1, 2, 2, 2))
    x[0, 1, 0, 1] = np.nan
    y, argmax = _core.pool2d_forward("max", x, 2)
    assert y[0, 0, 0, 0] == 0 and np.isnan(y[0, 0, 0, 1])
    assert argmax[0, 0, 0, 0] == 0 and argmax[0, 0, 0, 1] == 2  # pixel (1, 0)
    dx = _core.pool2d_backward("max", x.shape, np.ones((1, 1, 1, 2)), 2, argmax=argmax)
    assert dx[0, 0, 0, 0] == 1 and dx[0, 1, 0, 1] == 1 and dx.sum() == 2


def test_errors_name_the_shapes():
    x = np.zeros((2, 3, 3, 1), np.float32)
    with pytest.raises(ValueError, match=r"4 x 4 pool cannot slide over 3 x 3 images"):
        _core.pool2d_forward("max", x, 4)
    with pytest.raises(ValueError, match=r"\(batch, height, width, channels\).*\(3, 3\)"):
        _core.pool2d_forward("avg", x[0, :, :, 0], 2)
    with pytest.raises(ValueError, match="mode"):
        _core.pool2d_forward("min", x, 2)
    with pytest.raises(ValueError, match="padding"):
        _core.pool2d_forward("max", x, 2, padding="full")
    with pytest.raises(ValueError, match=r"dy has shape \(2, 2, 2, 1\)"):
        _core.pool2d_backward("avg", x.shape, np.zeros((2, 2, 2, 1), np.float32), 2)
    with pytest.raises(ValueError, match="argmax"):
        _core.pool2d_backward("max", x.shape, np.zeros((2, 1, 1, 1), np.float32), 2)
    bad = np.full((2, 1, 1, 1), 9, np.int32)
    with pytest.raises(ValueError, match="outside the 3 x 3 images"):
        _core.pool2d_backward("max", x.shape, np.zeros((2, 1, 1, 1), np.float32), 2, argmax=bad)
    with pytest.raises(ValueError, match=r"layer 'p'.*3 x 3 pool.*2 x 2 images"):
        MaxPooling2D(3, name="p").build((2, 2, 1))
    with pytest.raises(ValueError, match="cannot reshape"):
        Reshape((5, -1)).build((3, 3))
    with pytest.raises(ValueError, match="at most one -1"):
        Reshape((-1, -1))


def test_bit_identical_at_any_thread_count():
    x = _x((40, 12, 12, 8), np.float32)
    dy = np.random.default_rng(4).standard_normal((40, 6, 6, 8)).astype(np.float32)
    before = _core.get_num_threads()
    out = []
    try:
        for t in (1, 2, 3):
            _core.set_num_threads(t)
            row = []
            for mode in ("max", "avg"):
                y, a = _core.pool2d_forward(mode, x, 3, 2, "same")
                row += [y, _core.pool2d_backward(mode, x.shape, dy, 3, 2, "same", argmax=a)]
            out.append(row)
    finally:
        _core.set_num_threads(before)
    for other in out[1:]:
        for u, v in zip(out[0], other):
            np.testing.assert_array_equal(u, v)


@pytest.mark.parametrize("cls,mode", [(GlobalAveragePooling2D, "avg"), (GlobalMaxPooling2D, "max")])
def test_global_pooling_layers(cls, mode):
    x = _x((3, 4, 5, 2), np.float64)
    layer = cls()
    y = layer(x)
    assert y.shape == (3, 2) and layer.output_shape == (2,)
    ref = x.mean((1, 2)) if mode == "avg" else x.max((1, 2))
    np.testing.assert_allclose(y, ref, rtol=1e-14)
    dy = np.random.default_rng(5).standard_normal((3, 2))
    dx = layer.backward(dy)
    g = fd_grad(lambda v: np.sum(dy * (v.mean((1, 2)) if mode == "avg" else v.max((1, 2)))),
                x, h=1e-3)
    np.testing.assert_allclose(dx, g, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("cls,mode", [(MaxPooling2D, "max"), (AveragePooling2D, "avg")])
def test_pooling_layers(cls, mode):
    layer = cls((2, 3), strides=(2, 1), padding="same")
    x = _x((2, 5, 5, 3), np.float32)
    y = layer(x)
    assert y.shape == (2,) + layer.output_shape == (2, 3, 5, 3)
    np.testing.assert_allclose(y, ref_pool(mode, x, (2, 3), (2, 1), "same"), rtol=1e-6)
    config = json.loads(json.dumps(layer.get_config()))
    again = cls(**config)
    again.build((5, 5, 3))
    assert again.output_shape == layer.output_shape
    assert cls().strides == (2, 2)  # strides default to the pool size


def test_reshape_layer():
    layer = Reshape((-1, 2))
    x = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    y = layer(x)
    assert y.shape == (2, 6, 2) and layer.output_shape == (6, 2)
    np.testing.assert_array_equal(y, x.reshape(2, 6, 2))
    assert layer.backward(y).shape == (2, 3, 4)
    assert Reshape(**json.loads(json.dumps(layer.get_config()))).target_shape == (-1, 2)


def test_in_a_model_trains_saves_and_loads(tmp_path):
    rng = np.random.default_rng(6)
    x = rng.standard_normal((64, 64)).astype(np.float32)
    y = (x[:, :16].mean(1) > 0).astype(np.int64)
    model = nncore.Sequential([
        Input((64,)), Reshape((8, 8, 1)), MaxPooling2D(2, padding="same"),
        AveragePooling2D(2, strides=1), GlobalAveragePooling2D(), Reshape((1,)),
        Dense(2, activation="softmax")], seed=1)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(x, y, epochs=2, batch_size=16, verbose=0)
    model2 = nncore.Sequential([Input((8, 8, 2)), GlobalMaxPooling2D(), Flatten(),
                                Dense(2, activation="softmax")], seed=1)
    model2.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    model2.fit(x.reshape(32, 8, 8, 2)[:, :, :, :], y[:32], epochs=1, verbose=0)
    path = str(tmp_path / "pool.nncore")
    model.save(path)
    np.testing.assert_array_equal(nncore.load_model(path).predict(x), model.predict(x))
