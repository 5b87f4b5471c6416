"""The batch-normalisation kernels (nncore._core.batchnorm_forward/backward)
against a float64 NumPy reference, at every ISA level and thread count."""
import numpy as np
import pytest

from nncore import _core


def _reference(x, gamma, beta, mm, mv, momentum, eps, training, dy):
    x = x.astype(np.float64).reshape(-1, x.shape[-1])
    dy = dy.astype(np.float64).reshape(x.shape)
    g = np.ones(x.shape[1]) if gamma is None else gamma.astype(np.float64)
    b = np.zeros(x.shape[1]) if beta is None else beta.astype(np.float64)
    if training:
        mean, var = x.mean(axis=0), x.var(axis=0)
        mm = momentum * mm + (1 - momentum) * mean
        mv = momentum * mv + (1 - momentum) * var
    else:
        mean, var = mm.astype(np.float64), mv.astype(np.float64)
    inv_std = 1 / np.sqrt(var + eps)
    xhat = (x - mean) * inv_std
    y = g * xhat + b
    dbeta, dgamma = dy.sum(axis=0), (dy * xhat).sum(axis=0)
    if training:
        dx = g * inv_std * (dy - dbeta / len(x) - xhat * dgamma / len(x))
    else:
        dx = g * inv_std * dy
    return y, xhat, mm, mv, dx, dgamma, dbeta


def _case(rng, shape, dtype, offset=0.0):
    c = shape[-1]
    x = (rng.normal(offset, 2.0, size=shape)).astype(dtype)
    return (x, rng.normal(size=c).astype(dtype), rng.normal(size=c).astype(dtype),
            rng.normal(size=c).astype(dtype), rng.uniform(0.5, 2, size=c).astype(dtype),
            rng.normal(size=shape).astype(dtype))


@pytest.mark.parametrize("isa", _core.isa_available())
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1, 1), (7, 3), (300, 65), (2, 5, 5, 130), (1000, 16)])
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("affine", [True, False])
def test_batchnorm_matches_float64_reference(isa, dtype, shape, training, affine):
    old = _core.get_isa()
    _core.set_isa(isa)
    try:
        rng = np.random.default_rng(sum(shape))
        x, gamma, beta, mm, mv, dy = _case(rng, shape, dtype)
        if not affine:
            gamma = beta = None
        ref = _reference(x, gamma, beta, mm.copy(), mv.copy(), 0.9, 1e-3, training, dy)
        y, xhat, mean, inv_std = _core.batchnorm_forward(x, gamma, beta, mm, mv, 0.9, 1e-3,
                                                         training)
        dx, dgamma, dbeta = _core.batchnorm_backward(dy, xhat, inv_std, gamma, training)
    finally:
        _core.set_isa(old)
    tol = dict(rtol=2e-4, atol=2e-4) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-10)
    assert y.shape == x.shape and y.dtype == dtype and dx.dtype == dtype
    for got, want in zip((y, xhat, mm, mv, dx, dgamma, dbeta), ref):
        np.testing.assert_allclose(got.reshape(want.shape), want, **tol)


def test_float32_statistics_keep_their_digits_far_from_zero():
    # values around 1000 with spread 0.01: one-pass E[x^2] - E[x]^2 in float32
    # would lose every digit of the variance
    rng = np.random.default_rng(3)
    x = (1000 + 0.01 * rng.standard_normal((50000, 4))).astype(np.float32)
    mm, mv = np.zeros(4, np.float32), np.ones(4, np.float32)
    _core.batchnorm_forward(x, None, None, mm, mv, 0.0, 1e-12, True)
    np.testing.assert_allclose(mm, x.astype(np.float64).mean(axis=0), rtol=1e-7)
    np.testing.assert_allclose(mv, x.astype(np.float64).var(axis=0), rtol=1e-3)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_batchnorm_is_bit_identical_at_any_thread_count(dtype):
    rng = np.random.default_rng(4)
    results = []
    old = _core.get_num_threads()
    try:
        for threads in (1, 2, 3):
            _core.set_num_threads(threads)
            x, gamma, beta, mm, mv, dy = _case(np.random.default_rng(4), (4096, 200), dtype)
            y, xhat, _, s = _core.batchnorm_forward(x, gamma, beta, mm, mv, 0.99, 1e-3, True)
            results.append((y, mm, mv) + _core.batchnorm_backward(dy, xhat, s, gamma, True))
    finally:
        _core.set_num_threads(old)
    for other in results[1:]:
        for a, b in zip(results[0], other):
            assert np.array_equal(a, b)
    del rng


def test_batchnorm_agrees_with_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    x, gamma, beta, _, _, dy = _case(rng, (64, 8, 8, 16), np.float64)
    mm, mv = np.zeros(16), np.ones(16)
    bn = torch.nn.BatchNorm2d(16, eps=1e-3, momentum=0.1, dtype=torch.float64)
    with torch.no_grad():
        bn.weight.copy_(torch.from_numpy(gamma))
        bn.bias.copy_(torch.from_numpy(beta))
    xt = torch.from_numpy(x.transpose(0, 3, 1, 2).copy()).requires_grad_()
    yt = bn(xt)
    yt.backward(torch.from_numpy(dy.transpose(0, 3, 1, 2).copy()))
    y, xhat, _, s = _core.batchnorm_forward(x, gamma, beta, mm, mv, 0.9, 1e-3, True)
    dx, dgamma, dbeta = _core.batchnorm_backward(dy, xhat, s, gamma, True)
    np.testing.assert_allclose(y, yt.detach().numpy().transpose(0, 2, 3, 1), atol=1e-10)
    np.testing.assert_allclose(dx, xt.grad.numpy().transpose(0, 2, 3, 1), atol=1e-10)
    np.testing.assert_allclose(dgamma, bn.weight.grad.numpy(), rtol=1e-10)
    np.testing.assert_allclose(dbeta, bn.bias.grad.numpy(), rtol=1e-10)
    np.testing.assert_allclose(mm, bn.running_mean.numpy(), atol=1e-12)
    # torch's running variance is the unbiased one; Keras' (and nncore's) is biased
    n = x.size // 16
    np.testing.assert_allclose(mv, 0.9 + 0.1 * x.reshape(-1, 16).var(axis=0), rtol=1e-12)
    np.testing.assert_allclose(bn.running_var.numpy(), 0.9 + 0.1 * x.reshape(-1, 16).var(axis=0)
                               * n / (n - 1), rtol=1e-12)


def test_batchnorm_refuses_bad_arguments():
    x = np.zeros((4, 3), np.float32)
    mm, mv = np.zeros(3, np.float32), np.ones(3, np.float32)
    with pytest.raises(ValueError, match=r"gamma has shape \(2,\)"):
        _core.batchnorm_forward(x, np.ones(2, np.float32), None, mm, mv, 0.9, 1e-3, True)
    with pytest.raises(TypeError, match="moving_mean is float64"):
        _core.batchnorm_forward(x, None, None, np.zeros(3), mv, 0.9, 1e-3, True)
    with pytest.raises(ValueError, match="epsilon"):
        _core.batchnorm_forward(x, None, None, mm, mv, 0.9, 0.0, True)
    with pytest.raises(ValueError, match="momentum"):
        _core.batchnorm_forward(x, None, None, mm, mv, 1.5, 1e-3, True)
    with pytest.raises(ValueError, match="0 samples"):
        _core.batchnorm_forward(x[:0], None, None, mm, mv, 0.9, 1e-3, True)
    with pytest.raises(ValueError, match="updated in place"):
        _core.batchnorm_forward(x, None, None, mm[::-1], mv, 0.9, 1e-3, True)
    with pytest.raises(ValueError, match="overlaps"):
        _core.batchnorm_forward(x, None, None, mm, mm, 0.9, 1e-3, True)
    with pytest.raises(ValueError, match="overlaps"):
        _core.batchnorm_forward(x, None, None, mm, mv, 0.9, 1e-3, True, out=x)
    y, xhat, _, s = _core.batchnorm_forward(x + 1, None, None, mm, mv, 0.9, 1e-3, True)
    with pytest.raises(ValueError, match="xhat has shape"):
        _core.batchnorm_backward(np.zeros((4, 3), np.float32), xhat[:2], s, None, True)
