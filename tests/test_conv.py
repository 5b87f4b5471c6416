"""Conv2D: the engine kernel against a float64 NumPy reference (every kernel
level), finite-difference gradients of every option, PyTorch parity, odd
sizes, clear errors, thread bit-identity, and the layer in a model."""
from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

import nncore
from nncore import _core
from nncore.layers import Conv2D, Flatten, Dense, Input
from tests.conftest import fd_grad


# --------------------------------------------------------------------------
# A float64 reference, written from the definition: pad by Keras' rule, then
# add up one shifted, strided slice of the image per kernel tap.
# --------------------------------------------------------------------------

def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def keras_pads(size, k, s, d, padding):
    """(out, before, after) by Keras' rule, computed independently here."""
    eff = (k - 1) * d + 1
    if padding == "valid":
        return (size - eff) // s + 1, 0, 0
    out = -(-size // s)
    total = max((out - 1) * s + eff - size, 0)
    return out, total // 2, total - total // 2


def ref_conv(x, w, b=None, strides=1, padding="valid", dilation=1):
    x, w = np.asarray(x, np.float64), np.asarray(w, np.float64)
    (sh, sw), (dh, dw) = _pair(strides), _pair(dilation)
    kh, kw = w.shape[:2]
    oh, pt, pb = keras_pads(x.shape[1], kh, sh, dh, padding)
    ow, pl, pr = keras_pads(x.shape[2], kw, sw, dw, padding)
    xp = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    y = np.zeros((x.shape[0], oh, ow, w.shape[3]))
    for ky, kx in itertools.product(range(kh), range(kw)):
        patch = xp[:, ky * dh: ky * dh + (oh - 1) * sh + 1: sh,
                   kx * dw: kx * dw + (ow - 1) * sw + 1: sw, :]
        y += patch @ w[ky, kx]
    if b is not None:
        y += b
    return y


CASES = [
    # (n, h, w, c), (kh, kw, f), strides, padding, dilation
    ((2, 7, 6, 3), (3, 3, 4), 1, "valid", 1),
    ((2, 7, 6, 3), (3, 3, 4), 1, "same", 1),
    ((2, 7, 6, 3), (2, 2, 4), 1, "same", 1),        # even kernel: extra pad bottom/right
    ((2, 8, 7, 2), (3, 2, 3), (2, 3), "same", 1),   # even/odd strides
    ((2, 8, 9, 2), (3, 3, 3), 2, "valid", 1),
    ((2, 9, 9, 2), (3, 3, 2), 1, "valid", 2),       # dilation
    ((2, 9, 8, 2), (2, 3, 2), 1, "same", (2, 1)),
    ((3, 5, 5, 4), (1, 1, 3), 1, "valid", 1),       # pointwise: x read in place
    ((2, 5, 5, 3), (1, 1, 2), 2, "valid", 1),       # 1x1 strided: needs columns
    ((2, 4, 5, 2), (4, 5, 3), 1, "valid", 1),       # kernel as large as the input
    ((2, 7, 7, 2), (2, 2, 3), 3, "valid", 1),       # stride larger than the kernel
    ((2, 1, 1, 3), (1, 1, 2), 1, "valid", 1),       # 1 x 1 images
    ((2, 1, 1, 3), (3, 3, 2), 1, "same", 1),        # 1 x 1 images, 3x3 kernel, same
    ((1, 3, 3, 1), (3, 3, 1), 4, "same", 1),
]
IDS = [f"{x}-{k}-s{s}-{p}-d{d}" for x, k, s, p, d in CASES]


def _data(xs, ks, dtype, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(xs).astype(dtype)
    w = rng.standard_normal(ks[:2] + (xs[3], ks[2])).astype(dtype)
    b = rng.standard_normal(ks[2]).astype(dtype)
    return x, w, b


def _close(a, ref, rel):
    """Max error relative to the reference's largest magnitude."""
    a, ref = np.asarray(a, np.float64), np.asarray(ref, np.float64)
    assert a.shape == ref.shape
    scale = max(np.abs(ref).max(initial=0.0), 1e-30)
    err = np.abs(a - ref).max(initial=0.0) / scale
    assert err <= rel, f"relative error {err:.3g} > {rel:.3g}"


_ADJOINTS = {}


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_forward_backward_against_reference(case, dtype, isa):
    xs, ks, s, p, d = case
    x, w, b = _data(xs, ks, dtype)
    y, cols = _core.conv2d_forward(x, w, b, s, p, d)
    ref = ref_conv(x, w, b, s, p, d)
    rel = 1e-5 if dtype == np.float32 else 1e-12
    _close(y, ref, rel)
    assert y.dtype == dtype
    # backward against the adjoint of the reference: <dz, conv(x)> is linear
    # in x and in w, so its exact gradient is checked with a random dz
    dz = np.random.default_rng(1).standard_normal(y.shape).astype(dtype)
    dx, dw, db = _core.conv2d_backward(x, w, dz, cols, s, p, d)
    key = (CASES.index(case), np.dtype(dtype).name)
    if key not in _ADJOINTS:  # the reference does not depend on the kernel level
        _ADJOINTS[key] = (fd_grad(lambda v: np.sum(ref_conv(v, w, None, s, p, d) * dz), x, h=1.0),
                          fd_grad(lambda v: np.sum(ref_conv(x, v, None, s, p, d) * dz), w, h=1.0))
    gx, gw = _ADJOINTS[key]
    _close(dx, gx, rel * 10)
    _close(dw, gw, rel * 10)
    _close(db, dz.astype(np.float64).sum((0, 1, 2)), rel * 10)


@pytest.mark.parametrize("case", CASES, ids=IDS)
@pytest.mark.parametrize("act", ["identity", "tanh", "sigmoid", "elu"])
def test_finite_differences(case, act):
    """dL/dx, dL/dw, dL/db of L = sum(r * f(conv(x, w) + b)) in float64."""
    xs, ks, s, p, d = case
    x, w, b = _data(xs, ks, np.float64, seed=2)
    r = np.random.default_rng(3).standard_normal(_core.conv2d_forward(x, w, b, s, p, d)[0].shape)
    code, param = _core.ACTIVATIONS[act], 1.0 if act == "elu" else 0.0

    def loss(x_, w_, b_):
        y, _ = _core.conv2d_forward(x_, w_, b_, s, p, d, code, param)
        return float(np.sum(r * y))

    y, cols = _core.conv2d_forward(x, w, b, s, p, d, code, param)
    dz = _core.act_backward(code, param, y, r)
    dx, dw, db = _core.conv2d_backward(x, w, dz, cols, s, p, d)
    np.testing.assert_allclose(dx, fd_grad(lambda v: loss(v, w, b), x), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(dw, fd_grad(lambda v: loss(x, v, b), w), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(db, fd_grad(lambda v: loss(x, w, v), b), rtol=1e-6, atol=1e-7)


def test_keras_same_padding_puts_the_extra_row_bottom_right():
    # a 2x2 kernel of ones on a 3x3 image, "same": Keras pads one row and one
    # column, both after, so y[i, j] = x[i:i+2, j:j+2].sum() clipped at the end
    x = np.arange(9, dtype=np.float64).reshape(1, 3, 3, 1)
    y, _ = _core.conv2d_forward(x, np.ones((2, 2, 1, 1)), None, 1, "same")
    expect = np.array([[0 + 1 + 3 + 4, 1 + 2 + 4 + 5, 2 + 5],
                       [3 + 4 + 6 + 7, 4 + 5 + 7 + 8, 5 + 8],
                       [6 + 7, 7 + 8, 8]], np.float64)
    np.testing.assert_array_equal(y[0, :, :, 0], expect)
    assert _core.conv2d_output_shape((3, 3), 2, 1, "same") == (3, 3, 0, 0)
    assert _core.conv2d_output_shape((5, 6), 4, 1, "same") == (5, 6, 1, 1)  # 3 pads: 1 + 2
    assert _core.conv2d_output_shape((7, 7), 3, 2, "same") == (4, 4, 1, 1)
    assert _core.conv2d_output_shape((8, 8), 3, 2, "same") == (4, 4, 0, 0)  # 1 pad: after


# --------------------------------------------------------------------------
# PyTorch as a second oracle (NCHW, (out, in, kh, kw), explicit asymmetric pad)
# --------------------------------------------------------------------------

@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_parity_with_torch_float32(case):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    xs, ks, s, p, d = case
    x, w, b = _data(xs, ks, np.float32, seed=4)
    (sh, sw), (dh, dw) = _pair(s), _pair(d)
    oh, pt, pb = keras_pads(xs[1], ks[0], sh, dh, p)
    ow, pl, pr = keras_pads(xs[2], ks[1], sw, dw, p)
    xt = torch.tensor(x).permute(0, 3, 1, 2).contiguous().requires_grad_()
    wt = torch.tensor(w).permute(3, 2, 0, 1).contiguous().requires_grad_()
    bt = torch.tensor(b).requires_grad_()
    yt = F.conv2d(F.pad(xt, (pl, pr, pt, pb)), wt, bt, stride=(sh, sw), dilation=(dh, dw))
    dz = np.random.default_rng(5).standard_normal((xs[0], oh, ow, ks[2])).astype(np.float32)
    yt.backward(torch.tensor(dz).permute(0, 3, 1, 2))
    y, cols = _core.conv2d_forward(x, w, b, s, p, d)
    dx, dwt, db = _core.conv2d_backward(x, w, dz, cols, s, p, d)
    _close(y, yt.detach().permute(0, 2, 3, 1).numpy(), 1e-5)
    _close(dx, xt.grad.permute(0, 2, 3, 1).numpy(), 1e-5)
    _close(dwt, wt.grad.permute(2, 3, 1, 0).numpy(), 1e-5)
    _close(db, bt.grad.numpy(), 1e-5)


# --------------------------------------------------------------------------
# Errors, buffers, threads
# --------------------------------------------------------------------------

def test_shapes_that_cannot_work_are_named():
    x = np.zeros((2, 4, 4, 3), np.float32)
    with pytest.raises(ValueError, match=r"5 x 5 kernel.*4 x 4 images"):
        _core.conv2d_forward(x, np.zeros((5, 5, 3, 2), np.float32))
    with pytest.raises(ValueError, match=r"kernel.*4 x 4 images"):
        _core.conv2d_forward(x, np.zeros((3, 3, 3, 2), np.float32), dilation_rate=2)
    with pytest.raises(ValueError, match=r"\(2, 4, 4, 3\).*3 channels.*\(3, 3, 2, 2\)"):
        _core.conv2d_forward(x, np.zeros((3, 3, 2, 2), np.float32))
    with pytest.raises(ValueError, match="must be 4-D"):
        _core.conv2d_forward(x[0], np.zeros((3, 3, 3, 2), np.float32))
    with pytest.raises(ValueError, match="padding"):
        _core.conv2d_forward(x, np.zeros((3, 3, 3, 2), np.float32), padding="full")
    with pytest.raises(ValueError, match="strides must be positive"):
        _core.conv2d_forward(x, np.zeros((3, 3, 3, 2), np.float32), strides=0)
    with pytest.raises(ValueError, match=r"b has shape \(3,\)"):
        _core.conv2d_forward(x, np.zeros((3, 3, 3, 2), np.float32), np.zeros(3, np.float32))
    with pytest.raises(TypeError, match="float64"):
        _core.conv2d_forward(x, np.zeros((3, 3, 3, 2)))
    with pytest.raises(ValueError, match="softmax"):
        _core.conv2d_forward(x, np.zeros((3, 3, 3, 2), np.float32), act=_core.ACTIVATIONS["softmax"])
    with pytest.raises(ValueError, match="cols has 3 elements"):
        _core.conv2d_forward(x, np.zeros((3, 3, 3, 2), np.float32), cols=np.zeros(3, np.float32))
    with pytest.raises(ValueError, match=r"dz has shape \(2, 4, 4, 2\)"):
        _core.conv2d_backward(x, np.zeros((3, 3, 3, 2), np.float32), np.zeros((2, 4, 4, 2), np.float32))
    with pytest.raises(ValueError, match=r"layer 'c'.*3 x 3 kernel.*2 x 2 images"):
        Conv2D(2, 3, name="c").build((2, 2, 1))
    with pytest.raises(ValueError, match="Conv2D takes"):
        Conv2D(2, 3).build((8, 8))


def test_backward_recomputes_columns_and_can_keep_them():
    x, w, b = _data((2, 6, 6, 2), (3, 3, 3), np.float64)
    y, cols = _core.conv2d_forward(x, w, b, 1, "same")
    dz = np.ones_like(y)
    keep = cols.copy()
    dcols = np.empty_like(cols)
    a = _core.conv2d_backward(x, w, dz, cols, 1, "same", dcols=dcols)
    np.testing.assert_array_equal(cols, keep)            # a separate dcols spares cols
    c = _core.conv2d_backward(x, w, dz, None, 1, "same")  # recomputed from x
    for u, v in zip(a, c):
        np.testing.assert_array_equal(u, v)


def test_bit_identical_at_any_thread_count():
    x, w, b = _data((9, 12, 11, 4), (3, 3, 8), np.float32)
    dz = np.random.default_rng(6).standard_normal((9, 6, 6, 8)).astype(np.float32)
    before = _core.get_num_threads()
    results = []
    try:
        for t in (1, 2, 3):
            _core.set_num_threads(t)
            y, cols = _core.conv2d_forward(x, w, b, 2, "same", act=_core.ACTIVATIONS["relu"])
            results.append((y,) + _core.conv2d_backward(x, w, dz, cols, 2, "same"))
    finally:
        _core.set_num_threads(before)
    for other in results[1:]:
        for u, v in zip(results[0], other):
            np.testing.assert_array_equal(u, v)


# --------------------------------------------------------------------------
# The direct (implicit-GEMM) path: float32, stride 1, dilation 1, c >= 4 on
# AVX-512 machines (elsewhere these run the im2col path, checked the same).
# Shapes pick the kernels' edges: 14-pixel tiles with a ragged tail, 32-
# channel strips with a tail, dW tiles of 6/8/12 rows and 64 columns plus a
# narrow strip, even kernels (Keras' extra pad bottom/right).
# --------------------------------------------------------------------------

DIRECT_CASES = [
    ((2, 9, 17, 5), (3, 3, 7), "same"),
    ((2, 6, 30, 8), (2, 4, 40), "same"),
    ((2, 8, 8, 6), (5, 5, 16), "valid"),
    ((1, 5, 6, 33), (3, 3, 70), "same"),
    ((3, 4, 15, 4), (3, 1, 20), "valid"),
]


def ref_backward(x, w, dz, padding):
    """dx, dw of a stride-1, dilation-1 convolution from the definition."""
    x, w, dz = (np.asarray(v, np.float64) for v in (x, w, dz))
    kh, kw = w.shape[:2]
    oh, pt, pb = keras_pads(x.shape[1], kh, 1, 1, padding)
    ow, pl, pr = keras_pads(x.shape[2], kw, 1, 1, padding)
    xp = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    dxp, dw = np.zeros_like(xp), np.zeros_like(w)
    for ky, kx in itertools.product(range(kh), range(kw)):
        dw[ky, kx] = np.einsum("nhwc,nhwf->cf", xp[:, ky:ky + oh, kx:kx + ow], dz)
        dxp[:, ky:ky + oh, kx:kx + ow] += dz @ w[ky, kx].T
    return dxp[:, pt:pt + x.shape[1], pl:pl + x.shape[2]], dw


@pytest.mark.parametrize("case", DIRECT_CASES, ids=[str(c) for c in DIRECT_CASES])
@pytest.mark.parametrize("act", ["identity", "relu"])
def test_direct_path_against_reference(case, act, isa):
    xs, ks, p = case
    x, w, b = _data(xs, ks, np.float32)
    code = _core.ACTIVATIONS[act]
    y, cols = _core.conv2d_forward(x, w, b, 1, p, 1, code)
    ref = ref_conv(x, w, b, 1, p, 1)
    _close(y, np.maximum(ref, 0) if act == "relu" else ref, 1e-5)
    dz = np.random.default_rng(1).standard_normal(y.shape).astype(np.float32)
    gx, gw = ref_backward(x, w, dz, p)
    keep = cols.copy()
    dx, dw, db = _core.conv2d_backward(x, w, dz, cols, 1, p, 1, dcols=np.empty_like(cols))
    np.testing.assert_array_equal(cols, keep)
    _close(dx, gx, 1e-5)
    _close(dw, gw, 1e-5)
    _close(db, dz.astype(np.float64).sum((0, 1, 2)), 1e-5)
    # dcols = cols (the layer's way): dx's work must not spoil what dW reads
    dx2, dw2, db2 = _core.conv2d_backward(x, w, dz, cols, 1, p, 1)
    np.testing.assert_array_equal(dx2, dx)
    np.testing.assert_array_equal(dw2, dw)


def test_direct_path_bit_identical_at_any_thread_count():
    # 11 samples: dW's fixed sample chunks come out ragged
    x, w, b = _data((11, 12, 19, 8), (3, 3, 70), np.float32)
    dz = np.random.default_rng(6).standard_normal((11, 12, 19, 70)).astype(np.float32)
    before = _core.get_num_threads()
    results = []
    try:
        for t in (1, 2, 3):
            _core.set_num_threads(t)
            y, cols = _core.conv2d_forward(x, w, b, 1, "same", act=_core.ACTIVATIONS["relu"])
            results.append((y,) + _core.conv2d_backward(x, w, dz, cols, 1, "same"))
    finally:
        _core.set_num_threads(before)
    for other in results[1:]:
        for u, v in zip(results[0], other):
            np.testing.assert_array_equal(u, v)


def test_empty_batch():
    x = np.zeros((0, 5, 5, 2), np.float32)
    w = np.ones((3, 3, 2, 4), np.float32)
    y, cols = _core.conv2d_forward(x, w, None, 1, "same")
    assert y.shape == (0, 5, 5, 4)
    dx, dw, db = _core.conv2d_backward(x, w, y, cols, 1, "same")
    assert dx.shape == x.shape and not dw.any() and not db.any()


# --------------------------------------------------------------------------
# The layer
# --------------------------------------------------------------------------

@pytest.mark.parametrize("act", ["relu", "tanh", "softmax", None])
def test_layer_matches_reference_and_gradients(act):
    layer = Conv2D(3, (3, 2), strides=(1, 2), padding="same", activation=act, dtype="float64")
    x = np.random.default_rng(7).standard_normal((2, 5, 6, 2))
    y = layer(x)
    assert y.shape == (2,) + layer.output_shape == (2, 5, 3, 3)
    z = ref_conv(x, layer.kernel, layer.bias, (1, 2), "same")
    if act == "relu":
        z = np.maximum(z, 0)
    elif act == "tanh":
        z = np.tanh(z)
    elif act == "softmax":
        z = np.exp(z - z.max(-1, keepdims=True))
        z /= z.sum(-1, keepdims=True)
    np.testing.assert_allclose(y, z, rtol=1e-12, atol=1e-12)
    r = np.random.default_rng(8).standard_normal(y.shape)
    layer.forward(x, training=True)
    dx = layer.backward(r).copy()
    dw = layer.grads["kernel"].copy()
    dx2 = layer.backward(r)  # a second backward of the same forward: same answer
    np.testing.assert_array_equal(dx, dx2)
    np.testing.assert_array_equal(dw, layer.grads["kernel"])
    if act != "relu":  # relu's kink makes differences unreliable
        kernel = layer.params["kernel"]

        def loss_w(v):
            kernel[...] = v
            return float(np.sum(r * layer.forward(x)))

        w0 = kernel.copy()
        gw = fd_grad(loss_w, w0)
        kernel[...] = w0
        gx = fd_grad(lambda v: float(np.sum(r * layer.forward(v))), x)
        np.testing.assert_allclose(dw, gw, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(dx, gx, rtol=1e-6, atol=1e-7)


def test_layer_config_round_trip_and_keras_weight_layout():
    layer = Conv2D(4, 3, strides=2, padding="same", dilation_rate=1, activation="relu",
                   use_bias=False, input_shape=(8, 8, 2), name="conv_a")
    config = json.loads(json.dumps(layer.get_config()))
    again = Conv2D(**config)
    again.build((8, 8, 2))
    layer.build((8, 8, 2))
    assert again.output_shape == layer.output_shape == (4, 4, 4)
    assert [s.shape for s in again.param_specs] == [(3, 3, 2, 4)]  # Keras' (kh, kw, in, out)


def test_in_a_model_trains_saves_and_loads(tmp_path):
    rng = np.random.default_rng(9)
    x = rng.standard_normal((64, 8, 8, 1)).astype(np.float32)
    y = (x[:, 2:6, 2:6, 0].mean((1, 2)) > 0).astype(np.int64)
    model = nncore.Sequential([Input((8, 8, 1)), Conv2D(4, 3, activation="relu", padding="same"),
                               Conv2D(2, 1), Flatten(), Dense(2, activation="softmax")], seed=3)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    first = model.evaluate(x, y)
    model.fit(x, y, epochs=30, batch_size=16, verbose=0)
    assert model.evaluate(x, y) < first
    path = str(tmp_path / "conv.nncore")
    model.save(path)
    loaded = nncore.load_model(path)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
