"""PyTorch as a second, independent oracle: activations (forward, and backward via
autograd), losses and their gradients, and a dense layer's three gradients."""
import numpy as np
import pytest

from nncore import ops

torch = pytest.importorskip("torch")
F = torch.nn.functional

TORCH_DTYPE = {np.float32: torch.float32, np.float64: torch.float64}


def _tol(dtype):
    return dict(rtol=2e-5, atol=2e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-13)


def _t(a, grad=False):
    return torch.tensor(np.asarray(a), requires_grad=grad)


TORCH_ACT = {
    "linear": lambda x: x * 1,
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "relu": F.relu,
    "leaky_relu": lambda x: F.leaky_relu(x, 0.2),
    "elu": lambda x: F.elu(x, 1.0),
    "softplus": F.softplus,
    "softmax": lambda x: F.softmax(x, dim=-1),
    "log_softmax": lambda x: F.log_softmax(x, dim=-1),
}


@pytest.mark.parametrize("name", list(TORCH_ACT))
def test_activation_forward_and_backward(isa, dtype, name):
    rng = np.random.default_rng(len(name))
    x = (rng.standard_normal((8, 13)) * 4).astype(dtype)
    x[np.abs(x) < 1e-3] = 0.5
    dy = rng.standard_normal(x.shape).astype(dtype)
    xt = _t(x, grad=True)
    yt = TORCH_ACT[name](xt)
    yt.backward(_t(dy))
    y = ops.activation_forward(x, name)
    dx = ops.activation_backward(y, dy, name)
    np.testing.assert_allclose(y, yt.detach().numpy(), **_tol(dtype))
    np.testing.assert_allclose(dx, xt.grad.numpy(), **_tol(dtype))


def test_step_matches_heaviside(isa, dtype):
    x = np.array([-3, -1e-20, 0, 1e-20, 2], dtype)  # (NaN: nncore propagates, torch gives 0)
    want = torch.heaviside(_t(x), torch.tensor(0, dtype=TORCH_DTYPE[dtype])).numpy()
    np.testing.assert_array_equal(ops.activation_forward(x, "step"), want)


@pytest.mark.parametrize("slope", [0.0, 0.01, 0.3])
def test_leaky_relu_and_elu_parameters(isa, dtype, slope):
    x = np.linspace(-5, 5, 41).astype(dtype)
    x[x == 0] = 0.1
    np.testing.assert_allclose(ops.activation_forward(x, "leaky_relu", slope),
                               F.leaky_relu(_t(x), slope).numpy(), **_tol(dtype))
    alpha = slope * 5
    np.testing.assert_allclose(ops.activation_forward(x, "elu", alpha),
                               F.elu(_t(x), alpha).numpy(), **_tol(dtype))


def _loss_case(rng, dtype):
    n, k = 9, 5
    p = rng.uniform(0.05, 0.95, (n, k)).astype(dtype)
    t = rng.integers(0, 2, (n, k)).astype(dtype)
    z = (rng.standard_normal((n, k)) * 3).astype(dtype)
    r = rng.standard_normal((n, k)).astype(dtype)
    labels = rng.integers(0, k, n)
    return n, k, p, t, z, r, labels


def _autograd(fn, arr):
    at = _t(arr, grad=True)
    out = fn(at)
    out.backward()
    return out.item(), at.grad.numpy()


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_losses_against_torch(isa, dtype, reduction):
    rng = np.random.default_rng(1)
    n, k, p, t, z, r, labels = _loss_case(rng, dtype)
    tol = _tol(dtype)
    # nncore's per-sample MSE/MAE/BCE is the mean over outputs (Keras); torch's 'sum'
    # adds every element, so the sum reductions differ by the factor k
    per_el = k if reduction == "sum" else 1
    cases = [
        ("mse", False, r, t, lambda a: F.mse_loss(a, _t(t), reduction=reduction) / per_el),
        ("mae", False, r, t, lambda a: F.l1_loss(a, _t(t), reduction=reduction) / per_el),
        ("bce", False, p, t, lambda a: F.binary_cross_entropy(a, _t(t), reduction=reduction) / per_el),
        ("bce", True, z, t, lambda a: F.binary_cross_entropy_with_logits(
            a, _t(t), reduction=reduction) / per_el),
    ]
    for name, logits, pred, target, tfn in cases:
        want, want_g = _autograd(tfn, pred)
        got, g = ops.loss_and_grad(target, pred, name, logits, reduction)
        assert got == pytest.approx(want, rel=tol["rtol"]), name
        np.testing.assert_allclose(g, want_g, **tol, err_msg=f"{name} logits={logits}")


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_against_torch(isa, dtype, reduction):
    rng = np.random.default_rng(2)
    n, k, p, t, z, r, labels = _loss_case(rng, dtype)
    tol = _tol(dtype)
    onehot = np.eye(k, dtype=dtype)[labels]
    soft = np.exp(rng.standard_normal((n, k))).astype(dtype)
    soft /= soft.sum(-1, keepdims=True)
    probs = ops.activation_forward(z, "softmax")

    def check(got, g, tfn, arr):
        at = _t(arr, grad=True)
        out = tfn(at)
        (out.sum() if reduction == "none" else out).backward()
        np.testing.assert_allclose(got, out.detach().numpy(), **tol)
        np.testing.assert_allclose(g, at.grad.numpy(), **tol)

    lab_t = torch.tensor(labels)
    # fused softmax cross-entropy from logits: class indices, one-hot and soft targets
    check(*ops.loss_and_grad(labels, z, "sparse_categorical_crossentropy", True, reduction),
          lambda a: F.cross_entropy(a, lab_t, reduction=reduction), z)
    check(*ops.loss_and_grad(onehot, z, "categorical_crossentropy", True, reduction),
          lambda a: F.cross_entropy(a, _t(onehot), reduction=reduction), z)
    check(*ops.loss_and_grad(soft, z, "categorical_crossentropy", True, reduction),
          lambda a: F.cross_entropy(a, _t(soft), reduction=reduction), z)
    # from probabilities: NLL of their log
    check(*ops.loss_and_grad(labels, probs, "sparse_categorical_crossentropy", False, reduction),
          lambda a: F.nll_loss(torch.log(a), lab_t, reduction=reduction), probs)
    check(*ops.loss_and_grad(onehot, probs, "categorical_crossentropy", False, reduction),
          lambda a: -(_t(onehot) * torch.log(a)).sum(-1).mean() if reduction == "mean" else
          (-(_t(onehot) * torch.log(a)).sum(-1).sum() if reduction == "sum"
           else -(_t(onehot) * torch.log(a)).sum(-1)), probs)


def test_cross_entropy_log_probs_nll(isa, dtype):
    """Our log_softmax + NLL pipeline equals torch's, value and gradient w.r.t. logits."""
    rng = np.random.default_rng(3)
    z = (rng.standard_normal((6, 4)) * 2).astype(dtype)
    labels = rng.integers(0, 4, 6)
    ls = ops.activation_forward(z, "log_softmax")
    # NLL picks -ls[label]; its gradient w.r.t. ls is -onehot / n
    dls = -np.eye(4, dtype=dtype)[labels] / 6
    dz = ops.activation_backward(ls, dls, "log_softmax")
    zt = _t(z, grad=True)
    out = F.nll_loss(F.log_softmax(zt, -1), torch.tensor(labels))
    out.backward()
    assert float(-ls[np.arange(6), labels].astype(np.float64).mean()) == pytest.approx(
        out.item(), rel=_tol(dtype)["rtol"])
    np.testing.assert_allclose(dz, zt.grad.numpy(), **_tol(dtype))


@pytest.mark.parametrize("m,k,n", [(1, 1, 1), (7, 5, 3), (32, 64, 32), (1, 256, 64), (50, 3, 70)])
def test_dense_gradients_against_torch(isa, dtype, m, k, n):
    rng = np.random.default_rng(m + k + n)
    x = rng.standard_normal((m, k)).astype(dtype)
    w = rng.standard_normal((k, n)).astype(dtype)
    b = rng.standard_normal(n).astype(dtype)
    dz = rng.standard_normal((m, n)).astype(dtype)
    xt, wt, bt = _t(x, True), _t(w, True), _t(b, True)
    zt = xt @ wt + bt
    zt.backward(_t(dz))
    tol = dict(rtol=1e-4, atol=1e-4 * np.sqrt(max(k, m, n))) if dtype == np.float32 else \
        dict(rtol=1e-11, atol=1e-11)
    np.testing.assert_allclose(ops.dense_forward(x, w, b), zt.detach().numpy(), **tol)
    dx, dw, db = ops.dense_backward(x, w, dz)
    np.testing.assert_allclose(dx, xt.grad.numpy(), **tol)
    np.testing.assert_allclose(dw, wt.grad.numpy(), **tol)
    np.testing.assert_allclose(db, bt.grad.numpy(), **tol)


@pytest.mark.parametrize("activation,loss,logits", [
    ("sigmoid", "binary_crossentropy", False), ("linear", "categorical_crossentropy", True),
    ("softmax", "categorical_crossentropy", False), ("tanh", "mse", False),
    ("relu", "mae", False), ("elu", "mse", False),
])
def test_dense_layer_with_loss_against_torch(isa, dtype, activation, loss, logits):
    rng = np.random.default_rng(9)
    m, k, n = 16, 10, 4
    x = rng.standard_normal((m, k)).astype(dtype)
    w = (rng.standard_normal((k, n)) * 0.5).astype(dtype)
    b = (rng.standard_normal(n) * 0.1).astype(dtype)
    labels = rng.integers(0, n, m)
    if loss == "binary_crossentropy":
        t = rng.integers(0, 2, (m, n)).astype(dtype)
    elif loss == "categorical_crossentropy":
        t = np.eye(n, dtype=dtype)[labels]
    else:
        t = rng.standard_normal((m, n)).astype(dtype)
    y = ops.dense_forward(x, w, b, activation)
    val, dy = ops.loss_and_grad(t, y, loss, logits)
    dz = ops.activation_backward(y, dy, activation)
    dx, dw, db = ops.dense_backward(x, w, dz)

    xt, wt, bt = _t(x, True), _t(w, True), _t(b, True)
    zt = xt @ wt + bt
    yt = zt if activation == "linear" else TORCH_ACT[activation](zt)
    tt = _t(t)
    if loss == "binary_crossentropy":
        lt = F.binary_cross_entropy(yt, tt)
    elif loss == "categorical_crossentropy":
        lt = F.cross_entropy(yt, tt) if logits else -(tt * torch.log(yt)).sum(-1).mean()
    elif loss == "mse":
        lt = F.mse_loss(yt, tt)
    else:
        lt = F.l1_loss(yt, tt)
    lt.backward()
    tol = dict(rtol=1e-4, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-12)
    assert val == pytest.approx(lt.item(), rel=tol["rtol"])
    np.testing.assert_allclose(dx, xt.grad.numpy(), **tol)
    np.testing.assert_allclose(dw, wt.grad.numpy(), **tol)
    np.testing.assert_allclose(db, bt.grad.numpy(), **tol)
