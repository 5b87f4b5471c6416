"""SimpleRNN, LSTM and GRU: forward against a float64 NumPy reference written
from the textbook equations (at every kernel level), backward through time by
finite differences, PyTorch as a second oracle, masking, go_backwards,
initial state, recurrent dropout, clipping, and the vanishing gradient."""
import numpy as np
import pytest

import nncore
from nncore import _core
from nncore.layers import GRU, LSTM, Dense, SimpleRNN

from conftest import fd_grad

def _gru_reset_before(units, **kw):
    return GRU(units, reset_after=False, **kw)


# "gru_rb": Keras' GRU(reset_after=False), the reset gate before the product
CELLS = {"simple": SimpleRNN, "lstm": LSTM, "gru": GRU, "gru_rb": _gru_reset_before}
GATES = {"simple": 1, "lstm": 4, "gru": 3, "gru_rb": 3}


def _sigmoid(v):
    return np.exp(-np.logaddexp(0.0, -v))


def ref_rnn(cell, x, W, R, b, h0=None, c0=None, mask=None, rmask=None, go_backwards=False,
            act=np.tanh):
    """(y_seq, h_last, c_last) in float64, step by step from the equations."""
    x = np.asarray(x, np.float64)
    n, T, _ = x.shape
    U = R.shape[0]
    h = np.zeros((n, U)) if h0 is None else np.array(h0, np.float64)
    c = np.zeros((n, U)) if c0 is None else np.array(c0, np.float64)
    ys = []
    order = range(T - 1, -1, -1) if go_backwards else range(T)
    for t in order:
        hr = h if rmask is None else h * rmask
        if cell == "simple":
            hn, cn = act(x[:, t] @ W + hr @ R + (0 if b is None else b)), c
        elif cell == "lstm":
            a = x[:, t] @ W + hr @ R + (0 if b is None else b)
            i, f = _sigmoid(a[:, :U]), _sigmoid(a[:, U:2 * U])
            g, o = np.tanh(a[:, 2 * U:3 * U]), _sigmoid(a[:, 3 * U:])
            cn = f * c + i * g
            hn = o * np.tanh(cn)
        elif cell == "gru_rb":  # Keras' reset_after=False: one bias, r * h before R_h
            ax = x[:, t] @ W + (0 if b is None else b)
            ah = hr @ R[:, :2 * U]
            z = _sigmoid(ax[:, :U] + ah[:, :U])
            r = _sigmoid(ax[:, U:2 * U] + ah[:, U:])
            hh = np.tanh(ax[:, 2 * U:] + (r * hr) @ R[:, 2 * U:])
            hn, cn = z * h + (1 - z) * hh, c
        else:
            bx, bh = (0, 0) if b is None else (b[0], b[1])
            ax, ah = x[:, t] @ W + bx, hr @ R + bh
            z = _sigmoid(ax[:, :U] + ah[:, :U])
            r = _sigmoid(ax[:, U:2 * U] + ah[:, U:2 * U])
            hh = np.tanh(ax[:, 2 * U:] + r * ah[:, 2 * U:])
            hn, cn = z * h + (1 - z) * hh, c
        if mask is not None:
            keep = np.asarray(mask[:, t], bool)[:, None]
            hn, cn = np.where(keep, hn, h), np.where(keep, cn, c)
            ys.append(np.where(keep, hn, 0.0))
        else:
            ys.append(hn)
        h, c = hn, cn
    return np.stack(ys, axis=1), h, c


def _weights(cell, I, U, rng, scale=0.5):
    G = GATES[cell]
    W = rng.normal(0, scale, (I, G * U))
    R = rng.normal(0, scale, (U, G * U))
    b = rng.normal(0, 0.3, (2, G * U) if cell == "gru" else (G * U,))
    return W, R, b


def _layer(cell, U, I, T, dtype, weights, **kw):
    layer = CELLS[cell](U, **kw)
    layer.build((T, I))
    layer.ensure_storage(dtype)
    layer.set_weights([w.astype(dtype) for w in weights][:len(layer.param_specs)])
    return layer


# ---------------------------------------------------------------------------
# forward against the reference, every level, both dtypes
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("cell", sorted(CELLS))
@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("masked", [False, True])
def test_forward_matches_reference(isa, dtype, cell, go_backwards, masked):
    rng = np.random.default_rng(1)
    n, T, I, U = 4, 6, 5, 7
    x = rng.normal(size=(n, T, I))
    weights = _weights(cell, I, U, rng)
    h0 = rng.normal(size=(n, U))
    c0 = rng.normal(size=(n, U))
    mask = rng.random((n, T)) > 0.3 if masked else None
    state = (h0, c0) if cell == "lstm" else h0
    layer = _layer(cell, U, I, T, dtype, weights, return_sequences=True,
                   go_backwards=go_backwards)
    cast = (lambda a: a.astype(dtype))
    st = tuple(map(cast, state)) if cell == "lstm" else cast(state)
    y = layer.forward(cast(x), initial_state=st, mask=mask)
    ry, rh, rc = ref_rnn(cell, cast(x), *[cast(w) for w in weights], h0=cast(h0),
                         c0=cast(c0), mask=mask, go_backwards=go_backwards)
    tol = 2e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(y, ry, rtol=tol, atol=tol)
    final = layer.final_state
    np.testing.assert_allclose(final[0] if cell == "lstm" else final, rh, rtol=tol, atol=tol)
    if cell == "lstm":
        np.testing.assert_allclose(final[1], rc, rtol=tol, atol=tol)


@pytest.mark.parametrize("cell", sorted(CELLS))
def test_simple_last_output_equals_last_of_sequence(cell):
    rng = np.random.default_rng(2)
    x = rng.normal(size=(3, 5, 4))
    weights = _weights(cell, 4, 6, rng)
    seq = _layer(cell, 6, 4, 5, np.float64, weights, return_sequences=True)
    last = _layer(cell, 6, 4, 5, np.float64, weights)
    np.testing.assert_array_equal(seq.forward(x)[:, -1], last.forward(x))
    assert seq.output_shape == (5, 6) and last.output_shape == (6,)


@pytest.mark.parametrize("act", ["relu", "sigmoid", "linear", "elu"])
def test_simple_rnn_other_activations(act):
    from conftest import ref_act
    rng = np.random.default_rng(3)
    x = rng.normal(size=(3, 4, 2))
    weights = _weights("simple", 2, 5, rng)
    layer = _layer("simple", 5, 2, 4, np.float64, weights, activation=act)
    ry, _, _ = ref_rnn("simple", x, *weights, act=lambda v: ref_act(act, v))
    np.testing.assert_allclose(layer.forward(x), ry[:, -1], rtol=1e-12, atol=1e-13)
    with pytest.raises(ValueError, match="element-wise"):
        SimpleRNN(3, activation="softmax")


# ---------------------------------------------------------------------------
# backward through time by finite differences (float64)
# ---------------------------------------------------------------------------

def _check_gradients(cell, n=2, T=4, I=3, U=3, seed=0, rel=1e-6, **opts):
    """Every gradient of L = sum(gy * y) + sum(gs * final state) against central
    differences: dx, dkernel, drecurrent, dbias and the initial state's."""
    rng = np.random.default_rng(seed)
    return_sequences = opts.pop("return_sequences", False)
    with_state = opts.pop("with_state", True)
    mask = opts.pop("mask", None)
    rmask = opts.pop("rmask", None)
    x = rng.normal(size=(n, T, I))
    weights = _weights(cell, I, U, rng)
    layer = _layer(cell, U, I, T, np.float64, weights, return_sequences=return_sequences,
                   **opts)
    if rmask is not None:  # a fixed dropout mask, installed by hand
        layer.recurrent_dropout = 0.5
    lstm = cell == "lstm"
    h0, c0 = rng.normal(size=(n, U)), rng.normal(size=(n, U))
    state = ((h0, c0) if lstm else h0) if with_state else None
    gy = rng.normal(size=(n, T, U) if return_sequences else (n, U))
    gs = (rng.normal(size=(n, U)), rng.normal(size=(n, U))) if lstm else rng.normal(size=(n, U))

    def run(xv, st=state):
        if rmask is not None:
            # forward draws a mask when training; pin it to the given one
            y = _forward_with_rmask(layer, xv, st, mask, rmask)
        else:
            y = layer.forward(xv, initial_state=st, mask=mask)
        fs = layer.final_state
        loss = float((gy * y).sum())
        loss += float((gs[0] * fs[0]).sum() + (gs[1] * fs[1]).sum()) if lstm \
            else float((gs * fs).sum())
        return loss

    run(x)
    dx = layer.backward(gy, final_state_grad=gs).copy()
    grads = {k: v.copy() for k, v in layer.grads.items()}
    dstate = layer.initial_state_grad
    dstate = tuple(a.copy() for a in dstate) if lstm and with_state else (
        None if dstate is None else dstate.copy())

    def close(a, b, what):
        err = np.abs(a - b).max() / max(np.abs(b).max(), 1e-3)
        assert err < rel, f"{cell} {what}: relative error {err:.2e}"

    close(dx, fd_grad(run, x), "dx")
    for name in layer.params:
        p = layer.params[name]
        saved = p.copy()

        def f(v, name=name):
            layer.params[name][...] = v
            return run(x)

        num = fd_grad(f, saved)
        p[...] = saved
        close(grads[name], num, name)
    if with_state:
        if lstm:
            close(dstate[0], fd_grad(lambda v: run(x, (v, c0)), h0), "dh0")
            close(dstate[1], fd_grad(lambda v: run(x, (h0, v)), c0), "dc0")
        else:
            close(dstate, fd_grad(lambda v: run(x, v), h0), "dh0")


def _forward_with_rmask(layer, x, state, mask, rmask):
    """forward(training=True) with a chosen recurrent dropout mask."""
    from nncore import random as nrandom
    saved = nrandom.dropout_mask

    def fixed(shape, rate, dtype, seed=None, stream=None, out=None, offset=0):
        out[...] = rmask
        return out

    import nncore.layers.recurrent as rec
    rec.random.dropout_mask = fixed
    try:
        return layer.forward(x, training=True, initial_state=state, mask=mask)
    finally:
        rec.random.dropout_mask = saved


@pytest.mark.parametrize("cell", sorted(CELLS))
@pytest.mark.parametrize("return_sequences", [False, True])
def test_gradients_finite_differences(cell, return_sequences):
    _check_gradients(cell, return_sequences=return_sequences)


@pytest.mark.parametrize("cell", sorted(CELLS))
def test_gradients_go_backwards_and_mask(cell):
    mask = np.array([[1, 0, 1, 1], [0, 1, 1, 0]], bool)
    _check_gradients(cell, return_sequences=True, go_backwards=True, mask=mask, seed=4)


@pytest.mark.parametrize("cell", sorted(CELLS))
def test_gradients_recurrent_dropout(cell):
    rmask = np.array([[2.0, 0.0, 2.0], [0.0, 2.0, 2.0]])
    _check_gradients(cell, return_sequences=True, rmask=rmask, seed=5)


@pytest.mark.parametrize("cell", sorted(CELLS))
def test_gradients_no_bias_no_state(cell):
    _check_gradients(cell, use_bias=False, with_state=False, seed=6)


@pytest.mark.parametrize("cell", sorted(CELLS))
@pytest.mark.parametrize("n,T", [(1, 1), (1, 5), (3, 1)])
def test_gradients_batch_one_and_one_step(cell, n, T):
    _check_gradients(cell, n=n, T=T, return_sequences=True, seed=7)


def test_simple_rnn_relu_gradient():
    _check_gradients("simple", activation="elu", seed=8)


def test_masked_steps_carry_state_and_output_zero():
    rng = np.random.default_rng(9)
    x = rng.normal(size=(2, 5, 3))
    layer = _layer("lstm", 4, 3, 5, np.float64, _weights("lstm", 3, 4, rng),
                   return_sequences=True)
    mask = np.ones((2, 5), bool)
    mask[0, 2:] = False
    y = layer.forward(x, mask=mask)
    assert np.all(y[0, 2:] == 0)
    # a sequence padded at the end ends in the state of its last real step
    short = _layer("lstm", 4, 3, 2, np.float64, layer.get_weights())
    np.testing.assert_allclose(layer.final_state[0][0], short.forward(x[:1, :2])[0],
                               rtol=1e-13)
    # mask_value: the fused Masking layer
    xm = x.copy()
    xm[0, 2:] = 0.0
    masking = _layer("lstm", 4, 3, 5, np.float64, layer.get_weights(), return_sequences=True,
                     mask_value=0.0)
    np.testing.assert_array_equal(masking.forward(xm), layer.forward(xm, mask=mask))


# ---------------------------------------------------------------------------
# PyTorch as a second oracle (float32, gate order converted)
# ---------------------------------------------------------------------------

def _torch_module(torch, cell, I, U, W, R, b):
    def gru_perm(a):  # Keras z, r, h  <->  torch r, z, n (an involution)
        return np.concatenate([a[..., U:2 * U], a[..., :U], a[..., 2 * U:]], axis=-1)

    if cell == "lstm":  # Keras i, f, c, o == torch i, f, g, o
        m = torch.nn.LSTM(I, U, batch_first=True)
        wi, wh, bi, bh = W, R, b, np.zeros_like(b)
    elif cell == "gru":
        m = torch.nn.GRU(I, U, batch_first=True)
        wi, wh, bi, bh = gru_perm(W), gru_perm(R), gru_perm(b[0]), gru_perm(b[1])
    else:
        m = torch.nn.RNN(I, U, batch_first=True)
        wi, wh, bi, bh = W, R, b, np.zeros_like(b)
    with torch.no_grad():
        m.weight_ih_l0.copy_(torch.from_numpy(np.ascontiguousarray(wi.T)))
        m.weight_hh_l0.copy_(torch.from_numpy(np.ascontiguousarray(wh.T)))
        m.bias_ih_l0.copy_(torch.from_numpy(np.ascontiguousarray(bi)))
        m.bias_hh_l0.copy_(torch.from_numpy(np.ascontiguousarray(bh)))
    grads = lambda: (gru_perm(m.weight_ih_l0.grad.numpy().T) if cell == "gru"  # noqa: E731
                     else m.weight_ih_l0.grad.numpy().T,
                     gru_perm(m.weight_hh_l0.grad.numpy().T) if cell == "gru"
                     else m.weight_hh_l0.grad.numpy().T,
                     np.stack([gru_perm(m.bias_ih_l0.grad.numpy()),
                               gru_perm(m.bias_hh_l0.grad.numpy())]) if cell == "gru"
                     else m.bias_ih_l0.grad.numpy())
    return m, grads


def _rel(a, b):
    return float(np.linalg.norm(np.asarray(a, np.float64) - b) / np.linalg.norm(b))


@pytest.mark.parametrize("cell", sorted(set(CELLS) - {"gru_rb"}))  # torch: reset after only
def test_parity_with_torch_float32(isa, cell):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(10)
    n, T, I, U = 8, 12, 6, 16
    x = rng.normal(size=(n, T, I)).astype(np.float32)
    W, R, b = (w.astype(np.float32) for w in _weights(cell, I, U, rng, scale=0.3))
    h0 = rng.normal(size=(n, U)).astype(np.float32)
    c0 = rng.normal(size=(n, U)).astype(np.float32)
    gy = rng.normal(size=(n, T, U)).astype(np.float32)

    m, tgrads = _torch_module(torch, cell, I, U, W, R, b)
    xt = torch.from_numpy(x).requires_grad_(True)
    h0t = torch.from_numpy(h0[None]).requires_grad_(True)
    c0t = torch.from_numpy(c0[None]).requires_grad_(True)
    yt, _ = m(xt, (h0t, c0t)) if cell == "lstm" else m(xt, h0t)
    (yt * torch.from_numpy(gy)).sum().backward()

    layer = _layer(cell, U, I, T, np.float32, (W, R, b), return_sequences=True)
    y = layer.forward(x, initial_state=(h0, c0) if cell == "lstm" else h0)
    dx = layer.backward(gy)
    assert _rel(y, yt.detach().numpy().astype(np.float64)) < 1e-5
    assert _rel(dx, xt.grad.numpy().astype(np.float64)) < 1e-5
    for name, tg in zip(("kernel", "recurrent_kernel", "bias"), tgrads()):
        assert _rel(layer.grads[name], tg.astype(np.float64)) < 1e-5, name
    dstate = layer.initial_state_grad
    dh0 = dstate[0] if cell == "lstm" else dstate
    assert _rel(dh0, h0t.grad.numpy()[0].astype(np.float64)) < 1e-5
    if cell == "lstm":
        assert _rel(dstate[1], c0t.grad.numpy()[0].astype(np.float64)) < 1e-5


# ---------------------------------------------------------------------------
# inside models: training, clipping, saving, threads
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("cell", sorted(CELLS))
def test_clipnorm_applies_to_recurrent_gradients(cell):
    rng = np.random.default_rng(11)
    x = rng.normal(size=(8, 6, 3)).astype(np.float32)
    y = rng.normal(size=(8, 1)).astype(np.float32) * 10
    model = nncore.Sequential([CELLS[cell](5, input_shape=(6, 3)), Dense(1)], seed=1,
                              dtype="float64")
    clip, lr = 0.05, 0.1
    model.compile(optimizer=nncore.optimizers.SGD(learning_rate=lr, clipnorm=clip), loss="mse")
    model.build()
    before = model.get_flat_weights().copy()
    model.train_on_batch(x, y)
    g = model._grads.astype(np.float64)
    norm = np.linalg.norm(g)
    assert norm > clip  # the clip is active
    step = before - model.get_flat_weights()
    np.testing.assert_allclose(step, lr * g * clip / (norm + 1e-6), rtol=1e-9, atol=1e-15)
    assert np.linalg.norm(step) == pytest.approx(lr * clip, rel=1e-6)


@pytest.mark.parametrize("cell", sorted(CELLS))
def test_model_trains_saves_and_loads(tmp_path, cell):
    rng = np.random.default_rng(12)
    x = rng.normal(size=(64, 8, 2)).astype(np.float32)
    y = x[:, :, 0].sum(axis=1, keepdims=True) / 4  # a running sum: needs memory
    kw = {"recurrent_dropout": 0.1} if cell == "lstm" else {}
    model = nncore.Sequential([CELLS[cell](12, input_shape=(8, 2), **kw), Dense(1)], seed=3)
    model.compile(optimizer="adam", loss="mse")
    first = model.evaluate(x, y, verbose=0)
    model.fit(x, y, epochs=30, batch_size=16, verbose=0)
    assert model.evaluate(x, y, verbose=0) < 0.5 * first
    path = tmp_path / "m.nncore"
    model.save(path)
    again = nncore.load_model(path)
    np.testing.assert_array_equal(again.predict(x), model.predict(x))
    shapes = [w.shape for w in model.get_weights()[:3]]
    g = GATES[cell]
    assert shapes == [(2, g * 12), (12, g * 12), (2, g * 12) if cell == "gru" else (g * 12,)]


def test_initializers_keras_defaults():
    layer = LSTM(6)
    layer.build((3, 2))
    layer.ensure_storage(np.float64)
    R = layer.params["recurrent_kernel"]
    np.testing.assert_allclose(R @ R.T, np.eye(6), atol=1e-12)  # orthogonal rows
    np.testing.assert_array_equal(layer.params["bias"],
                                  np.r_[np.zeros(6), np.ones(6), np.zeros(12)])


@pytest.mark.parametrize("cell", sorted(CELLS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_threads_give_identical_results(cell, dtype):
    """Big enough steps (64 x 128 units) that the fused pass splits its rows
    over two threads: the same bits as one thread, and right."""
    rng = np.random.default_rng(13)
    n, T, I, U = 64, 5, 8, 128
    x = rng.normal(size=(n, T, I)).astype(dtype)
    weights = _weights(cell, I, U, rng, 0.1)
    mask = rng.random((n, T)) > 0.2
    layer = _layer(cell, U, I, T, dtype, weights, return_sequences=True)
    old = nncore._core.get_num_threads()
    outs = []
    try:
        for threads in (1, 2):
            nncore._core.set_num_threads(threads)
            y = layer.forward(x, mask=mask).copy()
            dx = layer.backward(np.ones_like(y)).copy()
            outs.append((y, dx, {k: v.copy() for k, v in layer.grads.items()}))
    finally:
        nncore._core.set_num_threads(old)
    np.testing.assert_array_equal(outs[0][0], outs[1][0])
    np.testing.assert_array_equal(outs[0][1], outs[1][1])
    for k in outs[0][2]:
        np.testing.assert_array_equal(outs[0][2][k], outs[1][2][k])
    ry, _, _ = ref_rnn(cell, x, *[w.astype(dtype) for w in weights], mask=mask)
    tol = 2e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(outs[1][0], ry, rtol=tol, atol=tol)


# ---------------------------------------------------------------------------
# the boundary
# ---------------------------------------------------------------------------

def test_boundary_rejects_bad_arguments():
    x = np.zeros((2, 3, 4), np.float32)
    W, R = np.zeros((4, 20), np.float32), np.zeros((5, 20), np.float32)
    lstm = _core.RNN_CELLS["lstm"]
    with pytest.raises(ValueError, match="kernel"):
        _core.rnn_forward(lstm, x, W[:3], R)
    with pytest.raises(TypeError, match="dtype"):
        _core.rnn_forward(lstm, x, W.astype(np.float64), R)
    with pytest.raises(ValueError, match="bias"):
        _core.rnn_forward(lstm, x, W, R, np.zeros(19, np.float32))
    with pytest.raises(ValueError, match="mask"):
        _core.rnn_forward(lstm, x, W, R, mask=np.ones((2, 4), bool))
    with pytest.raises(ValueError, match="cell state"):
        _core.rnn_forward(_core.RNN_CELLS["gru"], x, np.zeros((4, 15), np.float32),
                          np.zeros((5, 15), np.float32), c0=np.zeros((2, 5), np.float32))
    with pytest.raises(ValueError, match="at least one"):
        _core.rnn_forward(lstm, x[:, :0], W, R)
    with pytest.raises(ValueError, match="cache"):
        _core.rnn_backward(lstm, x, W, R, np.zeros(3, np.float32))
    with pytest.raises(ValueError, match="sequences"):
        LSTM(3).build((4,))
    with pytest.raises(ValueError, match="bias"):  # reset_after=False: one (3 u,) bias
        _core.rnn_forward(_core.RNN_CELLS["gru_reset_before"], x, np.zeros((4, 15), np.float32),
                          np.zeros((5, 15), np.float32), np.zeros((2, 15), np.float32))
    with pytest.raises(ValueError, match="units"):
        LSTM(0)


# ---------------------------------------------------------------------------
# the vanishing gradient
# ---------------------------------------------------------------------------

def first_input_gradient_norm(cell, steps, forget_bias=None, units=32, seed=0):
    """||dL/dx_0|| for L = sum of the final state, after Keras' default
    initialisation (with the LSTM's forget-gate bias set to forget_bias)."""
    rng = np.random.default_rng(seed)
    layer = CELLS[cell](units)
    model = nncore.Sequential([layer], seed=seed, dtype="float64")
    model.build((steps, 4))
    if forget_bias is not None:
        layer.params["bias"][units:2 * units] = forget_bias
    layer.need_input_grad = True
    x = rng.normal(size=(8, steps, 4))
    y = layer.forward(x)
    dx = layer.backward(np.ones_like(y))
    return float(np.linalg.norm(dx[:, 0]))


def test_simple_rnn_gradient_vanishes_where_lstm_does_not():
    """The gradient reaching the first step of a T-step sequence. SimpleRNN's
    is multiplied by R^T diag(tanh') at every step and falls by orders of
    magnitude; LSTM's travels the additive cell path, scaled only by the
    forget gate: with a remembering forget gate (bias 3, f ~ 0.95) it does
    not vanish at all, and even at Keras' initial bias of 1 it decays far
    more slowly than SimpleRNN's."""
    lengths = (5, 20, 50, 100)
    simple = [first_input_gradient_norm("simple", T) for T in lengths]
    lstm = [first_input_gradient_norm("lstm", T, forget_bias=3.0) for T in lengths]
    lstm_default = [first_input_gradient_norm("lstm", T) for T in lengths]
    assert all(a > b for a, b in zip(simple, simple[1:]))
    assert simple[-1] / simple[0] < 1e-6
    assert min(lstm) / lstm[0] > 0.5
    assert lstm_default[-1] / lstm_default[0] > 100 * simple[-1] / simple[0]


@pytest.mark.parametrize("cell", sorted(CELLS))
def test_input_dropout_one_mask_per_sequence(cell):
    rng = np.random.default_rng(14)
    n, T, I, U = 6, 4, 5, 3
    x = rng.normal(size=(n, T, I))
    weights = _weights(cell, I, U, rng)
    layer = _layer(cell, U, I, T, np.float64, weights, return_sequences=True, dropout=0.5,
                   seed=7)
    plain = _layer(cell, U, I, T, np.float64, weights, return_sequences=True)
    gy = rng.normal(size=(n, T, U))
    y = layer.forward(x, training=True).copy()
    dx = layer.backward(gy).copy()
    xmask = layer._xmask.copy()
    assert xmask.shape == (n, 1, I) and set(np.unique(xmask)) <= {0.0, 2.0}
    assert 0 < np.count_nonzero(xmask) < xmask.size
    np.testing.assert_allclose(y, plain.forward(x * xmask), rtol=1e-13)
    np.testing.assert_allclose(dx, plain.backward(gy) * xmask, rtol=1e-13)
    for k in layer.grads:
        np.testing.assert_allclose(layer.grads[k], plain.grads[k], rtol=1e-12)
    # inference: no dropout
    np.testing.assert_array_equal(layer.forward(x), plain.forward(x))
    # the next update draws a new mask; the same step, the same mask
    layer.step = 0
    layer.forward(x, training=True)
    np.testing.assert_array_equal(layer._xmask, xmask)
    layer.forward(x, training=True)
    assert not np.array_equal(layer._xmask, xmask)


def test_sigmoid_simple_rnn_as_output_layer_is_not_fused_into_the_loss():
    """The model fuses a sigmoid output layer into binary cross-entropy by its
    `activation`; a SimpleRNN's activation is its cell's, applied every step,
    so the loss must see the real outputs."""
    rng = np.random.default_rng(15)
    x = rng.normal(size=(8, 4, 3))
    y = (rng.random((8, 1)) > 0.5).astype(np.float64)
    model = nncore.Sequential([SimpleRNN(1, activation="sigmoid", input_shape=(4, 3))],
                              seed=0, dtype="float64")
    model.compile(optimizer="sgd", loss="binary_crossentropy")
    p = model.predict(x)
    expected = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
    assert model.evaluate(x, y, verbose=0) == pytest.approx(expected, rel=1e-9)


def test_gru_reset_before_is_keras_layout_and_differs_from_reset_after():
    """GRU(reset_after=False): Keras' weight shapes, config round trip, and a
    different function from reset_after=True on the same kernels."""
    rng = np.random.default_rng(15)
    layer = GRU(4, reset_after=False)
    layer.build((3, 2))
    assert [s.shape for s in layer.param_specs] == [(2, 12), (4, 12), (12,)]
    config = layer.get_config()
    assert config["reset_after"] is False
    again = GRU(**config)
    assert again.reset_after is False and again._cell == "gru_reset_before"
    assert GRU(4).get_config()["reset_after"] is True
    W, R, b = _weights("gru_rb", 2, 4, rng)
    x = rng.normal(size=(2, 3, 2))
    before = _layer("gru_rb", 4, 2, 3, np.float64, (W, R, b))
    after = _layer("gru", 4, 2, 3, np.float64, (W, R, np.stack([b, np.zeros_like(b)])))
    assert np.abs(before.forward(x) - after.forward(x)).max() > 1e-3


@pytest.mark.parametrize("cell", sorted(CELLS))
def test_threads_split_odd_batch_with_state_dropout_and_go_backwards(cell):
    """The time loop split over threads by batch rows (an odd batch: uneven
    parts), with an initial state and its gradient, recurrent dropout and
    go_backwards: the same bits as one thread."""
    rng = np.random.default_rng(16)
    n, T, I, U = 5, 6, 4, 96
    x = rng.normal(size=(n, T, I))
    weights = _weights(cell, I, U, rng, 0.1)
    h0, c0 = rng.normal(size=(n, U)), rng.normal(size=(n, U))
    state = (h0, c0) if cell == "lstm" else h0
    rmask = np.where(rng.random((n, U)) < 0.5, 0.0, 2.0)
    layer = _layer(cell, U, I, T, np.float64, weights, return_sequences=True,
                   go_backwards=True)
    layer.recurrent_dropout = 0.5
    old = nncore._core.get_num_threads()
    outs = []
    try:
        for threads in (1, 2):
            nncore._core.set_num_threads(threads)
            y = _forward_with_rmask(layer, x, state, None, rmask).copy()
            dx = layer.backward(np.ones_like(y)).copy()
            ds = layer.initial_state_grad
            ds = [a.copy() for a in ds] if cell == "lstm" else [ds.copy()]
            outs.append([y, dx, *ds] + [layer.grads[k].copy() for k in sorted(layer.grads)])
    finally:
        nncore._core.set_num_threads(old)
    for a, b in zip(*outs):
        np.testing.assert_array_equal(a, b)
    ry, _, _ = ref_rnn(cell, x, *weights, h0=h0, c0=c0, rmask=rmask, go_backwards=True)
    np.testing.assert_allclose(outs[1][0], ry, rtol=1e-12, atol=1e-12)
