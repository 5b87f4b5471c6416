"""Restricted Boltzmann machines and deep belief networks (nncore/rbm.py, csrc/rbm_impl.h).

The update is checked against a NumPy transcription of the algorithm that
draws the same Philox words (through the engine's philox4x32_10 binding), at
every kernel level; the learning behaviour on subsets of digits16.
"""
import numpy as np
import pytest

import nncore
from nncore import _core
from nncore.rbm import DBN, BernoulliRBM, GaussianBernoulliRBM

ISAS = _core.isa_available()


@pytest.fixture(params=ISAS)
def isa(request):
    before = _core.get_isa()
    _core.set_isa(request.param)
    yield request.param
    _core.set_isa(before)


@pytest.fixture(scope="module")
def digits():
    (x, y), (xt, yt) = nncore.datasets.load_digits16()
    return x.reshape(len(x), -1), y, xt.reshape(len(xt), -1), yt


# ---------------------------------------------------------------- reference
def words(seed, stream, n):
    """32-bit draws 0 .. n-1 of (seed, stream): block i // 4, word i % 4."""
    out = []
    for blk in range((n + 3) // 4):
        ctr = (blk & 0xFFFFFFFF, blk >> 32, stream & 0xFFFFFFFF, stream >> 32)
        out.extend(_core.philox4x32_10(ctr, (seed & 0xFFFFFFFF, seed >> 32)))
    return np.array(out[:n], dtype=np.float64)


def bernoulli(seed, stream, p):
    return (words(seed, stream, p.size).reshape(p.shape) < p * 2.0 ** 32).astype(np.float64)


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def reference_update(v0, w, bv, bh, seed, step, k=1, persistent=False, chain=None, lr=0.1,
                     momentum=0.0, weight_decay=0.0, vel=None, gaussian=False):
    """One CD-k / PCD-k update written out in float64; returns the new state."""
    v0, w, bv, bh = (np.asarray(a, np.float64) for a in (v0, w, bv, bh))
    m = v0.shape[0]
    base = step << 16
    h0 = sigmoid(v0 @ w + bh)
    hs = bernoulli(seed, base, h0)
    recon = (hs @ w.T + bv) if gaussian else sigmoid(hs @ w.T + bv)
    err = float(((v0 - recon) ** 2).sum())
    if persistent:
        hs = np.asarray(chain, np.float64)
    for t in range(1, k + 1):
        vm = hs @ w.T + bv
        vn = vm if gaussian else bernoulli(seed, base | (2 * t - 1), sigmoid(vm))
        hn = sigmoid(vn @ w + bh)
        if t < k:
            hs = bernoulli(seed, base | (2 * t), hn)
    new_chain = bernoulli(seed, base | (2 * k), hn) if persistent else None
    gw = (v0.T @ h0 - vn.T @ hn) / m
    gbv = (v0 - vn).sum(0) / m
    gbh = (h0 - hn).sum(0) / m
    if momentum:
        vw, vbv, vbh = (np.asarray(a, np.float64) for a in vel)
        vw = momentum * vw + lr * (gw - weight_decay * w)
        vbv = momentum * vbv + lr * gbv
        vbh = momentum * vbh + lr * gbh
        return w + vw, bv + vbv, bh + vbh, new_chain, err, (vw, vbv, vbh)
    return (1 - lr * weight_decay) * w + lr * gw, bv + lr * gbv, bh + lr * gbh, new_chain, err, None


def tiny(dtype, nv=5, nh=3, m=4, seed=3, density=0.5, shift=0.0):
    """A small RBM; low density and a negative shift of the biases make the data
    and the samples sparse (the engine's row-adding products)."""
    rng = np.random.default_rng(seed)
    v0 = (rng.random((m, nv)) < density).astype(dtype)
    w = rng.normal(0, 0.5, (nv, nh)).astype(dtype)
    bv = (rng.normal(0, 0.1, nv) + shift).astype(dtype)
    bh = (rng.normal(0, 0.1, nh) + shift).astype(dtype)
    return v0, w, bv, bh


def engine_update(v0, w, bv, bh, seed, step, **kw):
    w, bv, bh = w.copy(), bv.copy(), bh.copy()
    work = np.empty(_core.rbm_work_size(v0.shape[0], *w.shape), w.dtype)
    err = _core.rbm_update(v0, w, bv, bh, work, step, seed, **kw)
    return w, bv, bh, err


# ------------------------------------------------------------------ the update
def test_cd1_matches_hand_computation_tiny():
    """A 2x2 RBM, one sample, CD-1, computed by hand from the drawn words."""
    v0 = np.array([[1.0, 0.0]])
    w = np.array([[0.5, -1.0], [2.0, 0.25]])
    bv = np.array([0.1, -0.2])
    bh = np.array([0.0, 0.3])
    seed, step = 7, 1
    u = words(seed, step << 16, 2)          # h0 sample
    h0 = np.array([sigmoid(0.5), sigmoid(-1.0 + 0.3)])
    hs = (u < h0 * 2 ** 32).astype(float)
    pv = np.array([sigmoid(0.5 * hs[0] - 1.0 * hs[1] + 0.1),
                   sigmoid(2.0 * hs[0] + 0.25 * hs[1] - 0.2)])
    uv = words(seed, step << 16 | 1, 2)     # visible sample
    vn = (uv < pv * 2 ** 32).astype(float)
    hn = np.array([sigmoid(0.5 * vn[0] + 2.0 * vn[1]), sigmoid(-1.0 * vn[0] + 0.25 * vn[1] + 0.3)])
    lr = 0.5
    want_w = w + lr * (np.outer(v0[0], h0) - np.outer(vn, hn))
    want_bv = bv + lr * (v0[0] - vn)
    want_bh = bh + lr * (h0 - hn)
    got_w, got_bv, got_bh, err = engine_update(v0, w, bv, bh, seed, step, learning_rate=lr)
    np.testing.assert_allclose(got_w, want_w, rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(got_bv, want_bv, rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(got_bh, want_bh, rtol=1e-14, atol=1e-15)
    assert err == pytest.approx(((v0[0] - pv) ** 2).sum(), rel=1e-14)


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-12), (np.float32, 2e-5)])
@pytest.mark.parametrize("case", [
    dict(),
    dict(k=3),
    dict(persistent=True),
    dict(persistent=True, k=2, momentum=0.9, weight_decay=0.01),
    dict(momentum=0.5, weight_decay=0.1),
    dict(gaussian=True, k=2),
    dict(sparse=True),
    dict(sparse=True, k=2, persistent=True, momentum=0.5, weight_decay=0.01),
    dict(sparse=True, graded=True),
])
def test_update_matches_reference(isa, dtype, tol, case):
    if case.get("sparse"):
        # mostly-zero data and samples: the products that add up rows
        v0, w, bv, bh = tiny(dtype, nv=40, nh=24, m=6, density=0.1, shift=-3.0)
        if case.get("graded"):  # nonzeros that are not 1
            v0 *= np.random.default_rng(4).random(v0.shape).astype(dtype)
        assert (v0 != 0).mean() < 0.35
    else:
        v0, w, bv, bh = tiny(dtype, nv=7, nh=5, m=6)
    if case.get("gaussian"):
        v0 = np.random.default_rng(1).normal(size=v0.shape).astype(dtype)
    seed, step = 12345678901, 9
    chain = (np.random.default_rng(2).random((6, w.shape[1])) < 0.2).astype(dtype)
    vel = tuple(np.random.default_rng(3).normal(0, 0.01, a.shape).astype(dtype)
                for a in (w, bv, bh))
    mom = case.get("momentum", 0.0)
    want = reference_update(v0, w, bv, bh, seed, step, k=case.get("k", 1),
                            persistent=case.get("persistent", False), chain=chain, lr=0.2,
                            momentum=mom, weight_decay=case.get("weight_decay", 0.0), vel=vel,
                            gaussian=case.get("gaussian", False))
    ch = chain.copy()
    velc = tuple(a.copy() for a in vel)
    got = engine_update(v0, w, bv, bh, seed, step, cd_k=case.get("k", 1),
                        persistent=case.get("persistent", False), chain=ch, learning_rate=0.2,
                        momentum=mom, weight_decay=case.get("weight_decay", 0.0),
                        vel_w=velc[0], vel_bv=velc[1], vel_bh=velc[2],
                        visible="gaussian" if case.get("gaussian") else "bernoulli")
    for g, r in zip(got[:3], want[:3]):
        assert g.dtype == dtype
        np.testing.assert_allclose(g, r, rtol=tol, atol=tol)
    assert got[3] == pytest.approx(want[4], rel=tol * 10)
    if case.get("persistent"):
        # a float32 probability within rounding of a draw could flip; none does here
        np.testing.assert_array_equal(ch, want[3])
    if mom:
        for g, r in zip(velc, want[5]):
            np.testing.assert_allclose(g, r, rtol=tol, atol=tol)


def test_bernoulli_draws_are_the_philox_words():
    """p(h)=0.5 everywhere: the samples are exactly the top bits of the documented words."""
    nv, nh, m, seed, step = 4, 45, 3, 99, 5  # 135 draws: two full SIMD rounds and a tail
    w = np.zeros((nv, nh))
    v0 = np.zeros((m, nv))
    chain = np.zeros((m, nh))
    work = np.empty(_core.rbm_work_size(m, nv, nh))
    _core.rbm_update(v0, w, np.zeros(nv), np.zeros(nh), work, step, seed, persistent=True,
                     chain=chain, learning_rate=1e-300)
    want = (words(seed, step << 16 | 2, m * nh) < 2 ** 31).reshape(m, nh)
    np.testing.assert_array_equal(chain, want)
    assert 0 < chain.mean() < 1


def test_boundary_validation():
    v0, w, bv, bh = tiny(np.float64)
    work = np.empty(_core.rbm_work_size(4, 5, 3))
    with pytest.raises(ValueError, match="work"):
        _core.rbm_update(v0, w, bv, bh, work[:10], 1, 0)
    with pytest.raises(ValueError, match="columns"):
        _core.rbm_update(v0[:, :4], w, bv, bh, work, 1, 0)
    with pytest.raises(ValueError, match="chain"):
        _core.rbm_update(v0, w, bv, bh, work, 1, 0, persistent=True)
    with pytest.raises(ValueError, match="velocity"):
        _core.rbm_update(v0, w, bv, bh, work, 1, 0, momentum=0.5)
    with pytest.raises(ValueError, match="cd_k"):
        _core.rbm_update(v0, w, bv, bh, work, 1, 0, cd_k=0)
    with pytest.raises(TypeError, match="dtype"):
        _core.rbm_update(v0.astype(np.float32), w, bv, bh, work, 1, 0)
    with pytest.raises(ValueError, match="overlaps"):
        _core.rbm_update(v0, w, bv, bh, work, 1, 0, persistent=True,
                         chain=work[:12].reshape(4, 3))
    with pytest.raises(ValueError, match="visible"):
        _core.rbm_update(v0, w, bv, bh, work, 1, 0, visible="poisson")
    with pytest.raises(ValueError, match="bv"):
        _core.rbm_update(v0, w, bh, bh, work, 1, 0)


def test_free_energy_matches_formula(isa):
    v0, w, bv, bh = tiny(np.float64, nv=6, nh=4, m=5)
    want = -v0 @ bv - np.logaddexp(0, v0 @ w + bh).sum(1)
    np.testing.assert_allclose(_core.rbm_free_energy(v0, w, bv, bh), want, rtol=1e-13)
    want_g = 0.5 * ((v0 - bv) ** 2).sum(1) - np.logaddexp(0, v0 @ w + bh).sum(1)
    np.testing.assert_allclose(_core.rbm_free_energy(v0, w, bv, bh, "gaussian"), want_g,
                               rtol=1e-13)


def test_gibbs_matches_reference():
    v0, w, bv, bh = tiny(np.float64, nv=6, nh=4, m=5)
    seed, stream = 5, 1 << 20
    h = bernoulli(seed, stream, sigmoid(v0 @ w + bh))
    v1 = bernoulli(seed, stream + 1, sigmoid(h @ w.T + bv))
    h = bernoulli(seed, stream + 2, sigmoid(v1 @ w + bh))
    v2 = bernoulli(seed, stream + 3, sigmoid(h @ w.T + bv))
    np.testing.assert_array_equal(_core.rbm_gibbs(v0, w, bv, bh, seed, stream, 1), v1)
    np.testing.assert_array_equal(_core.rbm_gibbs(v0, w, bv, bh, seed, stream, 2), v2)
    np.testing.assert_array_equal(_core.rbm_gibbs(v0, w, bv, bh, seed, stream, 0), v0)


# ------------------------------------------------------------- the estimator
def test_seed_reproduces_bit_for_bit_at_any_thread_count(digits):
    x = digits[0][:640]
    before = nncore.get_num_threads()
    try:
        runs = []
        for threads in (1, 2, 1):
            nncore.set_num_threads(threads)
            r = BernoulliRBM(48, batch_size=32, n_iter=2, random_state=11, momentum=0.5,
                             cd_k=2).fit(x)
            runs.append((r.W_.copy(), r.intercept_hidden_.copy(), r.h_samples_.copy(),
                         r.gibbs(x[:10])))
    finally:
        nncore.set_num_threads(before)
    for other in runs[1:]:
        for a, b in zip(runs[0], other):
            np.testing.assert_array_equal(a, b)
    r2 = BernoulliRBM(48, batch_size=32, n_iter=2, random_state=12, momentum=0.5,
                      cd_k=2).fit(x)
    assert not np.array_equal(r2.W_, runs[0][0])


@pytest.mark.parametrize("persistent", [False, True])
def test_reconstruction_error_falls_over_epochs(digits, persistent):
    x = digits[0][:3000]
    r = BernoulliRBM(64, batch_size=20, n_iter=5, learning_rate=0.05, random_state=0,
                     persistent=persistent, momentum=0.5).fit(x)
    err = r.reconstruction_errors_
    assert len(err) == 5
    assert err[-1] < 0.8 * err[0]
    assert all(b < a * 1.02 for a, b in zip(err, err[1:]))


def test_samples_look_like_digits(digits):
    x = digits[0][:3000].astype(np.float32)
    r = BernoulliRBM(100, batch_size=20, n_iter=30, learning_rate=0.05, random_state=1,
                     persistent=True).fit(x)
    rng = np.random.default_rng(0)
    density = x.mean()
    noise = (rng.random((50, x.shape[1])) < density).astype(np.float32)
    samples = r.gibbs(noise, n_steps=200)

    def nearest_hamming(s):
        # |a - b| for 0/1 vectors: a.a + b.b - 2 a.b
        d = s.sum(1)[:, None] + x.sum(1)[None, :] - 2 * s @ x.T
        return d.min(1).mean()

    assert 0.5 * density < samples.mean() < 2 * density
    assert nearest_hamming(samples) < 0.5 * nearest_hamming(noise)
    # and the model prefers them: lower free energy than the noise they started from
    assert r._free_energy(samples).mean() < r._free_energy(noise).mean() - 20


def test_sklearn_conventions(digits):
    x = digits[0][:500]
    r = BernoulliRBM(32, batch_size=50, n_iter=1, random_state=0)
    assert r.get_params()["n_components"] == 32
    r.set_params(n_iter=2)
    assert r.n_iter == 2
    with pytest.raises(ValueError, match="invalid parameter"):
        r.set_params(bogus=1)
    with pytest.raises(RuntimeError, match="not fitted"):
        r.transform(x)
    assert r.fit(x) is r
    assert r.components_.shape == (32, 256)
    assert r.transform(x[:7]).shape == (7, 32)
    np.testing.assert_allclose(r.transform(x[:7]),
                               sigmoid(x[:7].astype(np.float64) @ r.components_.T.astype(np.float64)
                                       + r.intercept_hidden_), rtol=1e-5, atol=1e-6)
    assert r.fit_transform(x).shape == (500, 32)
    with pytest.raises(ValueError, match="features"):
        r.transform(x[:, :10])
    with pytest.raises(ValueError, match="n_components"):
        BernoulliRBM(0).fit(x)
    n = r.n_updates_
    r.partial_fit(x[:30])
    assert r.n_updates_ == n + 1
    s = r.score_samples(x[:100])
    assert s.shape == (100,) and np.all(s <= 0)
    f64 = BernoulliRBM(16, n_iter=1, dtype="float64", random_state=0).fit(x)
    assert f64.W_.dtype == np.float64 and f64.transform(x[:2]).dtype == np.float64


def test_partial_fit_from_scratch_grows_the_chain(digits):
    x = digits[0][:200]
    r = BernoulliRBM(16, batch_size=10, random_state=0)
    r.partial_fit(x[:10]).partial_fit(x[:50])
    assert r.h_samples_.shape == (50, 16)
    assert np.isfinite(r.W_).all()


def test_pseudo_likelihood_comparable_with_sklearn(digits):
    sk = pytest.importorskip("sklearn.neural_network")
    x = digits[0][:4000].astype(np.float64)
    settings = dict(n_components=64, learning_rate=0.05, batch_size=20, n_iter=5, random_state=0)
    ours = BernoulliRBM(**settings, dtype="float64").fit(x)
    theirs = sk.BernoulliRBM(**settings).fit(x)
    # the same scores for the same weights (each flips its own random bits: averages)
    mine = np.mean([ours.score_samples(x).mean() for _ in range(3)])
    theirs_pl = np.mean([theirs.score_samples(x).mean() for _ in range(3)])
    assert mine == pytest.approx(theirs_pl, rel=0.15)
    # and our scoring of scikit-learn's weights agrees with scikit-learn's
    ours.components_ = theirs.components_
    ours.intercept_hidden_[...] = theirs.intercept_hidden_
    ours.intercept_visible_[...] = theirs.intercept_visible_
    np.testing.assert_allclose(ours._free_energy(x[:100]), theirs._free_energy(x[:100]),
                               rtol=1e-10)
    assert np.mean([ours.score_samples(x).mean() for _ in range(3)]) == pytest.approx(
        theirs_pl, rel=0.05)


def test_gaussian_rbm_learns_real_valued_data():
    rng = np.random.default_rng(0)
    # two clusters in 20 dimensions, standardised
    centers = rng.normal(0, 2, (2, 20))
    x = centers[rng.integers(0, 2, 2000)] + rng.normal(0, 0.5, (2000, 20))
    x = (x - x.mean(0)) / x.std(0)
    r = GaussianBernoulliRBM(16, batch_size=20, n_iter=10, learning_rate=0.005,
                             random_state=0, momentum=0.5).fit(x)
    err = r.reconstruction_errors_
    assert err[-1] < 0.7 * err[0]
    assert r.score_samples(x[:5]).shape == (5,)
    s = r.gibbs(x[:50], n_steps=3)
    assert s.shape == (50, 20) and np.isfinite(s).all() and not np.array_equal(s, x[:50])


# ----------------------------------------------------------------------- DBN
def test_dbn_greedy_pretraining_and_to_sequential(digits):
    x, y = digits[0][:1000].reshape(-1, 16, 16), digits[1][:1000]
    dbn = DBN((64, 32), batch_size=20, n_iter=2, learning_rate=0.05, random_state=0).fit(x)
    assert [r.n_components for r in dbn.rbms_] == [64, 32]
    assert dbn.rbms_[1].n_features_in_ == 64
    # layer 2 was trained on layer 1's hidden probabilities
    np.testing.assert_allclose(dbn.transform(x[:5]),
                               dbn.rbms_[1].transform(dbn.rbms_[0].transform(x[:5])))
    model = dbn.to_sequential(10, seed=0)
    dense = [layer for layer in model.layers if type(layer).__name__ == "Dense"]
    assert len(dense) == 3
    np.testing.assert_array_equal(dense[0].params["kernel"], dbn.rbms_[0].W_)
    np.testing.assert_array_equal(dense[0].params["bias"], dbn.rbms_[0].intercept_hidden_)
    np.testing.assert_array_equal(dense[1].params["kernel"], dbn.rbms_[1].W_)
    # the MLP's last hidden layer is the DBN's features
    h = x[:5].astype(np.float32)
    for layer in model.layers[:-1]:
        h = layer.forward(h, training=False)
    np.testing.assert_allclose(h, dbn.transform(x[:5]), rtol=1e-5, atol=1e-6)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    hist = model.fit(x, y, batch_size=32, epochs=3, verbose=0)
    assert hist.history["loss"][-1] < hist.history["loss"][0]


# ------------------------------------------------- binary-left products (rbm_bin.h)
@pytest.fixture
def bin_mode():
    """Set the products' path (0 chosen, 1 dense, 2 binary when binary); restored after."""
    before = _core._rbm_binary_mode()
    yield lambda mode: _core._rbm_binary_mode(mode)
    _core._rbm_binary_mode(before)


def binary_case(dtype, nv, nh, m, density, seed=0):
    rng = np.random.default_rng(seed)
    v0 = (rng.random((m, nv)) < density).astype(dtype)
    w = rng.normal(0, 0.3, (nv, nh)).astype(dtype)
    bv = (rng.normal(0, 0.1, nv) - 1.5).astype(dtype)
    bh = (rng.normal(0, 0.1, nh) - 1.5).astype(dtype)
    chain = (rng.random((m, nh)) < 0.2).astype(dtype)
    vel = tuple(rng.normal(0, 0.01, a.shape).astype(dtype) for a in (w, bv, bh))
    return v0, w, bv, bh, chain, vel


def run_update(case, **kw):
    v0, w, bv, bh, chain, vel = case
    ch, velc = chain.copy(), tuple(a.copy() for a in vel)
    got = engine_update(v0, w, bv, bh, 77, 3, chain=ch, vel_w=velc[0], vel_bv=velc[1],
                        vel_bh=velc[2], learning_rate=0.3, **kw)
    return got[:3] + (ch,) + velc + (got[3],)


# shapes aimed at the kernels' column blocks: 256 / 128 / 16 (AVX-512), 64 / 8 (AVX2),
# masked tails, and one row
SHAPES = [(40, 24, 6), (37, 300, 5), (256, 256, 64), (19, 129, 1), (300, 17, 9)]


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-12), (np.float32, 3e-5)])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("kw", [dict(), dict(persistent=True, cd_k=2),
                                dict(persistent=True, momentum=0.5, weight_decay=0.01)])
def test_binary_products_match_dense(isa, bin_mode, dtype, tol, shape, kw):
    """The same update through the dense GEMM and through the row sums: equal to
    rounding, with the same samples; and the row sums did run (double: only at the
    portable level, by design)."""
    nv, nh, m = shape
    case = binary_case(dtype, nv, nh, m, 0.15)
    bin_mode(1)
    dense = run_update(case, **kw)
    bin_mode(2)
    before = _core._rbm_binary_count()
    binary = run_update(case, **kw)
    ran = _core._rbm_binary_count() - before
    if dtype == np.float32 or isa == "ref":
        assert ran >= 3  # v0 W, the chain's W^T, v- W (and the gradient)
    else:
        assert ran == 0
    for g, r in zip(binary[:-1], dense[:-1]):
        assert g.dtype == dtype
        np.testing.assert_allclose(g, r, rtol=tol, atol=tol)
    np.testing.assert_array_equal(binary[3], dense[3])  # the new chain
    assert binary[-1] == pytest.approx(dense[-1], rel=tol * 10)


def test_non_binary_or_dense_operands_take_the_gemm(bin_mode):
    """Data that is not 0/1 (or NaN) falls back to the dense product, and so do
    dense binary operands when the path is chosen by density."""
    v0, w, bv, bh, chain, vel = binary_case(np.float32, 64, 48, 16, 0.15)
    case = (v0 * np.float32(0.5), w, bv, bh, chain, vel)
    bin_mode(1)
    dense = run_update(case)
    bin_mode(2)
    before = _core._rbm_binary_count()
    got = run_update(case)
    # v0 is graded: v0 W and the gradient go dense; h's sample W^T and v- W are binary
    assert _core._rbm_binary_count() - before == 2
    for g, r in zip(got[:3], dense[:3]):
        np.testing.assert_allclose(g, r, rtol=3e-5, atol=3e-5)
    bad = v0.copy()
    bad[3, 5] = np.nan
    before = _core._rbm_binary_count()
    run_update((bad, w, bv, bh, chain, vel))
    assert _core._rbm_binary_count() - before == 2
    bin_mode(0)
    full = binary_case(np.float32, 64, 48, 16, 0.9)
    before = _core._rbm_binary_count()
    run_update((full[0],) + full[1:])
    ran = _core._rbm_binary_count() - before
    bin_mode(2)
    before = _core._rbm_binary_count()
    run_update((full[0],) + full[1:])
    assert _core._rbm_binary_count() - before > ran


def test_binary_products_bit_for_bit_at_any_thread_count(bin_mode):
    """Big enough for the row sums to split between threads: the same bits."""
    bin_mode(2)
    case = binary_case(np.float32, 256, 256, 64, 0.2, seed=5)
    before = nncore.get_num_threads()
    try:
        runs = []
        for threads in (1, 2):
            nncore.set_num_threads(threads)
            runs.append(run_update(case, persistent=True, cd_k=2))
    finally:
        nncore.set_num_threads(before)
    for a, b in zip(*runs):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("m,nh", [(3, 45), (4, 64), (5, 77)])
def test_bernoulli_draws_float32_are_the_philox_words(isa, m, nh):
    """float32 at every level (AVX-512 compares in float, in registers): p = 0.5
    everywhere gives exactly the top bits of the documented words, over whole
    64-draw rounds and tails."""
    nv, seed, step = 4, 2 ** 40 + 99, 5
    w = np.zeros((nv, nh), np.float32)
    chain = np.zeros((m, nh), np.float32)
    work = np.empty(_core.rbm_work_size(m, nv, nh), np.float32)
    _core.rbm_update(np.zeros((m, nv), np.float32), w, np.zeros(nv, np.float32),
                     np.zeros(nh, np.float32), work, step, seed, persistent=True, chain=chain,
                     learning_rate=1e-30)
    want = (words(seed, step << 16 | 2, m * nh) < 2 ** 31).reshape(m, nh)
    np.testing.assert_array_equal(chain, want)
