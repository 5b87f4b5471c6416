"""Optimizers: against a NumPy transcription of each formula, against PyTorch
(where installed), clipping, schedules, state round trips and bad input.

Every run trains the same small problem: least squares 0.5 * mean((A w - b)^2)
whose gradient is computed with NumPy from the optimizer's own weights at each
step, as a real training loop would.
"""
import json

import numpy as np
import pytest

import nncore
from nncore import _core, optimizers

N_PARAMS = 37  # not a multiple of any vector width: the loops' tails run too
STEPS = 10


def problem(dtype, seed=0):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((24, N_PARAMS))
    b = rng.standard_normal(24)
    w0 = rng.uniform(0.5, 1.5, N_PARAMS) * rng.choice([-1, 1], N_PARAMS)

    def grad(w):
        w64 = w.astype(np.float64)
        return (A.T @ (A @ w64 - b) / len(b)).astype(dtype)

    return w0.astype(dtype), grad


# (class name, Keras-style arguments); learning rates large enough to move
CASES = [
    ("SGD", {"learning_rate": 0.05}),
    ("SGD", {"learning_rate": 0.05, "momentum": 0.9}),
    ("SGD", {"learning_rate": 0.05, "momentum": 0.9, "nesterov": True}),
    ("SGD", {"learning_rate": 0.05, "momentum": 0.5, "weight_decay": 0.1}),
    ("Adagrad", {"learning_rate": 0.1}),
    ("Adagrad", {"learning_rate": 0.1, "initial_accumulator_value": 0.0, "epsilon": 1e-10,
                 "weight_decay": 0.05}),
    ("Adadelta", {"learning_rate": 1.0}),
    ("Adadelta", {"learning_rate": 1.0, "rho": 0.9, "epsilon": 1e-6, "weight_decay": 0.1}),
    ("RMSprop", {"learning_rate": 0.01}),
    ("RMSprop", {"learning_rate": 0.01, "momentum": 0.9}),
    ("RMSprop", {"learning_rate": 0.01, "centered": True}),
    ("RMSprop", {"learning_rate": 0.01, "centered": True, "momentum": 0.5, "rho": 0.8,
                 "weight_decay": 0.1}),
    ("Adam", {"learning_rate": 0.05}),
    ("Adam", {"learning_rate": 0.05, "amsgrad": True}),
    ("Adam", {"learning_rate": 0.05, "beta_1": 0.8, "beta_2": 0.99, "epsilon": 1e-3,
              "weight_decay": 0.1}),
    ("Adam", {"learning_rate": 0.05, "epsilon_hat": True, "epsilon": 1e-3}),
    ("Adam", {"learning_rate": 0.05, "amsgrad": True, "epsilon_hat": True}),
    ("AdamW", {"learning_rate": 0.05}),
    ("AdamW", {"learning_rate": 0.05, "weight_decay": 0.1, "amsgrad": True}),
    ("Nadam", {"learning_rate": 0.05}),
    ("Nadam", {"learning_rate": 0.05, "beta_1": 0.8, "momentum_decay": 0.01,
               "weight_decay": 0.1}),
    ("Adam", {"learning_rate": 0.05, "clipnorm": 0.5}),
    ("SGD", {"learning_rate": 0.05, "momentum": 0.9, "clipvalue": 0.1}),
    ("RMSprop", {"learning_rate": 0.01, "clipnorm": 0.3, "clipvalue": 0.05}),
    ("Nadam", {"learning_rate": 0.05, "clipnorm": 0.2}),
]
IDS = [f"{c}-{'-'.join(f'{k}={v}' for k, v in a.items())}" for c, a in CASES]


def run_nncore(cls_name, kwargs, dtype, steps=STEPS):
    w, grad = problem(dtype)
    opt = getattr(optimizers, cls_name)(**kwargs)
    for _ in range(steps):
        opt.apply(w, grad(w))
    return w


# --------------------------------------------------------------------------
# A NumPy transcription of each formula (float64), independent of the C code
# --------------------------------------------------------------------------

def run_numpy(cls_name, kw, steps=STEPS):
    w, grad = problem(np.float64)
    lr = kw.get("learning_rate")
    wd = kw.get("weight_decay", 0.004 if cls_name == "AdamW" else 0.0) or 0.0
    eps = kw.get("epsilon", 1e-7)
    b1, b2 = kw.get("beta_1", 0.9), kw.get("beta_2", 0.999)
    mom = kw.get("momentum", 0.0)
    s = {}
    zeros = np.zeros_like(w)
    for t in range(1, steps + 1):
        g = grad(w)
        if kw.get("clipnorm"):
            g = g * min(1.0, kw["clipnorm"] / (np.sqrt(np.sum(g * g)) + 1e-6))
        if kw.get("clipvalue"):
            g = np.clip(g, -kw["clipvalue"], kw["clipvalue"])
        if cls_name != "AdamW":
            g = g + wd * w
        if cls_name == "SGD":
            if mom:
                s["b"] = mom * s.get("b", zeros) + g
                d = g + mom * s["b"] if kw.get("nesterov") else s["b"]
            else:
                d = g
            w = w - lr * d
        elif cls_name == "Adagrad":
            s["a"] = s.get("a", zeros + kw.get("initial_accumulator_value", 0.1)) + g * g
            w = w - lr * g / (np.sqrt(s["a"]) + eps)
        elif cls_name == "Adadelta":
            rho = kw.get("rho", 0.95)
            s["a"] = rho * s.get("a", zeros) + (1 - rho) * g * g
            d = np.sqrt(s.get("u", zeros) + eps) / np.sqrt(s["a"] + eps) * g
            s["u"] = rho * s.get("u", zeros) + (1 - rho) * d * d
            w = w - lr * d
        elif cls_name == "RMSprop":
            rho = kw.get("rho", 0.9)
            s["a"] = rho * s.get("a", zeros) + (1 - rho) * g * g
            if kw.get("centered"):
                s["m"] = rho * s.get("m", zeros) + (1 - rho) * g
                den = np.sqrt(s["a"] - s["m"] ** 2) + eps
            else:
                den = np.sqrt(s["a"]) + eps
            if mom:
                s["b"] = mom * s.get("b", zeros) + g / den
                w = w - lr * s["b"]
            else:
                w = w - lr * g / den
        elif cls_name in ("Adam", "AdamW"):
            w = w * (1 - lr * wd) if cls_name == "AdamW" else w
            s["m"] = b1 * s.get("m", zeros) + (1 - b1) * g
            s["v"] = b2 * s.get("v", zeros) + (1 - b2) * g * g
            v = s["v"]
            if kw.get("amsgrad"):
                s["vmax"] = np.maximum(s.get("vmax", zeros), v)
                v = s["vmax"]
            if kw.get("epsilon_hat"):  # Keras' and scikit-learn's form
                w = w - lr * np.sqrt(1 - b2 ** t) / (1 - b1 ** t) * s["m"] / (np.sqrt(v) + eps)
            else:
                w = w - lr / (1 - b1 ** t) * s["m"] / (np.sqrt(v) / np.sqrt(1 - b2 ** t) + eps)
        elif cls_name == "Nadam":
            psi = kw.get("momentum_decay", 0.004)
            mu = b1 * (1 - 0.5 * 0.96 ** (t * psi))
            mu_next = b1 * (1 - 0.5 * 0.96 ** ((t + 1) * psi))
            s["prod"] = s.get("prod", 1.0) * mu
            s["m"] = b1 * s.get("m", zeros) + (1 - b1) * g
            s["v"] = b2 * s.get("v", zeros) + (1 - b2) * g * g
            den = np.sqrt(s["v"] / (1 - b2 ** t)) + eps
            w = (w - lr * (1 - mu) / (1 - s["prod"]) * g / den
                 - lr * mu_next / (1 - s["prod"] * mu_next) * s["m"] / den)
    return w


@pytest.mark.parametrize("cls_name, kwargs", CASES, ids=IDS)
def test_matches_numpy_formula_float64(cls_name, kwargs):
    got = run_nncore(cls_name, kwargs, np.float64)
    want = run_numpy(cls_name, kwargs)
    w0, _ = problem(np.float64)
    assert np.max(np.abs(want - w0)) > 1e-3  # the weights did move
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("cls_name, kwargs", CASES, ids=IDS)
def test_float32_follows_float64(cls_name, kwargs):
    got = run_nncore(cls_name, kwargs, np.float32)
    assert got.dtype == np.float32
    want = run_numpy(cls_name, kwargs)
    np.testing.assert_allclose(got, want, rtol=2e-4, atol=2e-4 * np.max(np.abs(want)))


# --------------------------------------------------------------------------
# PyTorch as the second oracle
# --------------------------------------------------------------------------

def run_torch(cls_name, kw, dtype, steps=STEPS):
    torch = pytest.importorskip("torch")
    w, grad = problem(dtype)
    p = torch.tensor(w.copy())
    wd = kw.get("weight_decay", 0.004 if cls_name == "AdamW" else 0.0) or 0.0
    eps = kw.get("epsilon", 1e-7)
    betas = (kw.get("beta_1", 0.9), kw.get("beta_2", 0.999))
    common = {"lr": kw["learning_rate"], "weight_decay": wd, "foreach": False}
    o = torch.optim
    if cls_name == "SGD":
        opt = o.SGD([p], momentum=kw.get("momentum", 0.0), nesterov=kw.get("nesterov", False),
                    **common)
    elif cls_name == "Adagrad":
        opt = o.Adagrad([p], eps=eps,
                        initial_accumulator_value=kw.get("initial_accumulator_value", 0.1),
                        **common)
    elif cls_name == "Adadelta":
        opt = o.Adadelta([p], rho=kw.get("rho", 0.95), eps=eps, **common)
    elif cls_name == "RMSprop":
        opt = o.RMSprop([p], alpha=kw.get("rho", 0.9), eps=eps, momentum=kw.get("momentum", 0),
                        centered=kw.get("centered", False), **common)
    elif cls_name == "Adam":
        opt = o.Adam([p], betas=betas, eps=eps, amsgrad=kw.get("amsgrad", False), **common)
    elif cls_name == "AdamW":
        opt = o.AdamW([p], betas=betas, eps=eps, amsgrad=kw.get("amsgrad", False), **common)
    elif cls_name == "Nadam":
        opt = o.NAdam([p], betas=betas, eps=eps, momentum_decay=kw.get("momentum_decay", 0.004),
                      **common)
    for _ in range(steps):
        p.grad = torch.from_numpy(grad(p.numpy()))
        if kw.get("clipnorm"):
            torch.nn.utils.clip_grad_norm_([p], kw["clipnorm"])
        if kw.get("clipvalue"):
            torch.nn.utils.clip_grad_value_([p], kw["clipvalue"])
        opt.step()
    return p.numpy()


@pytest.mark.parametrize("dtype, rtol", [(np.float32, 1e-5), (np.float64, 1e-10)])
@pytest.mark.parametrize("cls_name, kwargs", CASES, ids=IDS)
def test_matches_torch(cls_name, kwargs, dtype, rtol):
    torch = pytest.importorskip("torch")
    if kwargs.get("epsilon_hat"):
        pytest.skip("torch has no epsilon-hat Adam (the NumPy transcription checks it)")
    old = torch.get_default_dtype()
    # torch keeps Nadam's mu_product in the default dtype; make it the params'
    torch.set_default_dtype(torch.float64 if dtype == np.float64 else torch.float32)
    try:
        want = run_torch(cls_name, kwargs, dtype)
    finally:
        torch.set_default_dtype(old)
    got = run_nncore(cls_name, kwargs, dtype)
    # relative to the weights' scale (a weight passing near 0 has no relative error)
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * np.max(np.abs(want)))


# --------------------------------------------------------------------------
# Clipping
# --------------------------------------------------------------------------

def test_clipnorm_uses_the_global_norm_and_leaves_grads_alone():
    w = np.zeros(4)
    g = np.array([3.0, 4.0, 0.0, 0.0])  # norm 5
    g_before = g.copy()
    optimizers.SGD(learning_rate=1.0, clipnorm=1.0).apply(w, g)
    np.testing.assert_allclose(w, -g_before / (5 + 1e-6), rtol=1e-15)
    np.testing.assert_array_equal(g, g_before)


def test_clipnorm_below_the_limit_is_exact_identity():
    w1, w2 = np.ones(5, np.float32), np.ones(5, np.float32)
    g = np.linspace(-0.1, 0.1, 5).astype(np.float32)
    optimizers.Adam(clipnorm=10.0).apply(w1, g)
    optimizers.Adam().apply(w2, g)
    np.testing.assert_array_equal(w1, w2)


def test_clipvalue_clamps_each_element():
    w = np.zeros(4)
    g = np.array([-2.0, -0.1, 0.1, 5.0])
    optimizers.SGD(learning_rate=1.0, clipvalue=0.5).apply(w, g)
    np.testing.assert_array_equal(w, [0.5, 0.1, -0.1, -0.5])


def test_nan_gradient_propagates_through_clipping():
    w = np.ones(3)
    optimizers.SGD(clipvalue=1.0, clipnorm=1.0).apply(w, np.array([np.nan, 0.0, 1.0]))
    assert np.isnan(w).all()  # the global norm is NaN, so every scaled element is


def test_sum_squares_in_double_fixed_order():
    x = np.random.default_rng(1).standard_normal(1001).astype(np.float32)
    assert _core.sum_squares(x) == pytest.approx(np.sum(x.astype(np.float64) ** 2), rel=1e-14)
    # the same bits however often it is asked, and for a copy elsewhere in memory
    assert _core.sum_squares(x) == _core.sum_squares(x.copy())


# --------------------------------------------------------------------------
# Schedules
# --------------------------------------------------------------------------

def test_schedules_values():
    e = optimizers.ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5)
    assert e(0) == 0.1 and e(10) == pytest.approx(0.05) and e(5) == pytest.approx(0.1 * 0.5 ** 0.5)
    s = optimizers.ExponentialDecay(0.1, 10, 0.5, staircase=True)
    assert s(9) == 0.1 and s(10) == pytest.approx(0.05)
    it = optimizers.InverseTimeDecay(0.1, 10, 1.0)
    assert it(10) == pytest.approx(0.05)
    pc = optimizers.PiecewiseConstantDecay([3, 6], [1.0, 0.5, 0.1])
    assert [pc(t) for t in (0, 3, 4, 6, 7, 100)] == [1.0, 1.0, 0.5, 0.5, 0.1, 0.1]
    c = optimizers.CosineDecay(1.0, decay_steps=10, alpha=0.1)
    assert c(0) == 1.0 and c(10) == pytest.approx(0.1) and c(20) == pytest.approx(0.1)
    assert c(5) == pytest.approx(0.55)
    cw = optimizers.CosineDecay(0.0, decay_steps=10, warmup_target=1.0, warmup_steps=4)
    assert cw(2) == pytest.approx(0.5) and cw(4) == 1.0 and cw(14) == pytest.approx(0.0)


def test_optimizer_follows_its_schedule():
    sched = optimizers.PiecewiseConstantDecay([1], [0.5, 0.25])
    opt = optimizers.SGD(learning_rate=sched)
    w = np.zeros(2)
    g = np.ones(2)
    lrs = []
    for _ in range(3):
        lrs.append(opt.learning_rate)
        opt.apply(w, g)
    assert lrs == [0.5, 0.5, 0.25]  # the schedule sees completed steps: 0, 1, 2
    np.testing.assert_array_equal(w, [-1.25, -1.25])


def test_schedule_rejects_bad_values():
    with pytest.raises(ValueError):
        optimizers.ExponentialDecay(0.1, decay_steps=0, decay_rate=0.5)
    with pytest.raises(ValueError):
        optimizers.PiecewiseConstantDecay([1, 2], [1.0])
    with pytest.raises(ValueError):
        optimizers.PiecewiseConstantDecay([2, 1], [1.0, 2.0, 3.0])


# --------------------------------------------------------------------------
# Configuration, state, names
# --------------------------------------------------------------------------

@pytest.mark.parametrize("cls_name, kwargs", CASES, ids=IDS)
def test_state_round_trip_continues_bit_for_bit(cls_name, kwargs):
    cls = getattr(optimizers, cls_name)
    w, grad = problem(np.float32)
    straight = cls(**kwargs)
    w_straight = w.copy()
    for _ in range(2 * 5):
        straight.apply(w_straight, grad(w_straight))

    first = cls(**kwargs)
    for _ in range(5):
        first.apply(w, grad(w))
    saved = {k: v.copy() for k, v in first.get_state().items()}
    cfg = json.loads(json.dumps(optimizers.serialize(first)))
    second = optimizers.deserialize(cfg)
    second.set_state(saved)  # before build: applied when the first step builds it
    for _ in range(5):
        second.apply(w, grad(w))
    assert second.iterations == 10
    np.testing.assert_array_equal(w, w_straight)
    np.testing.assert_array_equal(second.get_state()["state"], straight.get_state()["state"])


def test_config_round_trip_with_schedule():
    opt = optimizers.Adam(learning_rate=optimizers.CosineDecay(0.01, 100), amsgrad=True,
                          clipnorm=1.0)
    cfg = json.loads(json.dumps(optimizers.serialize(opt)))
    back = optimizers.deserialize(cfg)
    assert isinstance(back, optimizers.Adam) and back.amsgrad and back.clipnorm == 1.0
    assert isinstance(back._learning_rate, optimizers.CosineDecay)
    assert back.get_config() == opt.get_config()


@pytest.mark.parametrize("name, cls", [("sgd", "SGD"), ("adam", "Adam"), ("adamw", "AdamW"),
                                       ("nadam", "Nadam"), ("rmsprop", "RMSprop"),
                                       ("adagrad", "Adagrad"), ("adadelta", "Adadelta")])
def test_get_by_keras_name(name, cls):
    opt = optimizers.get(name)
    assert type(opt).__name__ == cls
    assert optimizers.get(opt) is opt
    assert type(optimizers.get(cls)).__name__ == cls


def test_keras_defaults():
    assert optimizers.SGD().learning_rate == 0.01
    a = optimizers.Adam()
    assert (a.learning_rate, a.beta_1, a.beta_2, a.epsilon) == (0.001, 0.9, 0.999, 1e-7)
    assert optimizers.AdamW().weight_decay == 0.004
    assert optimizers.Adagrad().initial_accumulator_value == 0.1
    assert optimizers.Adadelta().rho == 0.95 and optimizers.RMSprop().rho == 0.9


def test_state_layout_sizes():
    n = 10
    sizes = {
        ("sgd", ()): 0, ("sgd", (("momentum", 0.9),)): n, ("adagrad", ()): n,
        ("adadelta", ()): 2 * n, ("rmsprop", ()): n,
        ("rmsprop", (("centered", True), ("momentum", 0.5))): 3 * n,
        ("adam", ()): 2 * n, ("adam", (("amsgrad", True),)): 3 * n, ("nadam", ()): 2 * n + 1,
    }
    for (kind, hp), size in sizes.items():
        assert _core.optim_state_size(kind, dict(hp), n) == size
    s = _core.optim_state_init("adagrad", {"initial_accumulator_value": 0.3}, n, np.float64)
    np.testing.assert_array_equal(s, 0.3)
    assert _core.optim_state_init("nadam", {}, n, np.float32)[-1] == 1.0


def test_thread_count_does_not_change_the_step():
    w, grad = problem(np.float32)
    big = np.tile(w, 5000)
    g = np.tile(grad(w), 5000)
    out = []
    before = nncore.get_num_threads()
    try:
        for threads in (1, 2, 3):
            nncore.set_num_threads(threads)
            ww = big.copy()
            opt = optimizers.Adam(clipnorm=1.0)
            opt.apply(ww, g)
            opt.apply(ww, g)
            out.append(ww)
    finally:
        nncore.set_num_threads(before)
    for o in out[1:]:
        np.testing.assert_array_equal(o, out[0])


# --------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------

@pytest.mark.parametrize("cls_name, kwargs", [
    ("SGD", {"learning_rate": -0.1}),
    ("SGD", {"learning_rate": float("nan")}),
    ("SGD", {"momentum": 1.0}),
    ("SGD", {"momentum": -0.5}),
    ("SGD", {"nesterov": True}),
    ("Adam", {"beta_1": 1.0}),
    ("Adam", {"beta_2": -0.1}),
    ("Adam", {"epsilon": float("inf")}),
    ("Adam", {"clipnorm": -1.0}),
    ("Adam", {"clipvalue": float("nan")}),
    ("Adam", {"weight_decay": -0.01}),
    ("RMSprop", {"rho": 1.5}),
    ("Adadelta", {"epsilon": 0.0}),
    ("Adagrad", {"initial_accumulator_value": -1.0}),
    ("Adam", {"clipnorm": 1.0, "global_clipnorm": 1.0}),
])
def test_bad_hyperparameters(cls_name, kwargs):
    with pytest.raises(ValueError):
        getattr(optimizers, cls_name)(**kwargs)


def test_bad_arrays():
    opt = optimizers.Adam()
    w = np.ones(6, np.float32)
    with pytest.raises(TypeError):
        opt.apply(w, np.ones(6, np.float64))
    with pytest.raises(ValueError):
        opt.apply(w, np.ones(5, np.float32))
    with pytest.raises(ValueError):
        optimizers.Adam().apply(np.ones(12, np.float32)[::2], np.ones(6, np.float32))
    with pytest.raises(TypeError):
        optimizers.Adam().apply(np.ones(6, np.int32), np.ones(6, np.int32))
    with pytest.raises(ValueError):
        optimizers.Adam().apply(w, w)  # grads overlapping params
    opt.apply(w, np.ones(6, np.float32))
    with pytest.raises(ValueError):  # built for 6 float32 parameters
        opt.apply(np.ones(7, np.float32), np.ones(7, np.float32))
    with pytest.raises(ValueError):
        opt.set_state({"iterations": np.array(1), "state": np.zeros(5, np.float32)})
    with pytest.raises(ValueError):
        _core.optim_step("adam", {}, w, np.ones(6, np.float32), np.zeros(11, np.float32), 1)
    with pytest.raises(ValueError):
        _core.optim_step("adam", {}, w, np.ones(6, np.float32), np.zeros(12, np.float32), 0)
    with pytest.raises(ValueError):
        _core.optim_step("adam", {"beta3": 0.5}, w, np.ones(6, np.float32),
                         np.zeros(12, np.float32), 1)
    with pytest.raises(ValueError):
        optimizers.get("adamax")


def test_schedule_reaching_a_bad_rate_is_caught():
    opt = optimizers.SGD(learning_rate=lambda step: -1.0 if step else 0.1)
    w = np.ones(3)
    opt.apply(w, np.ones(3))
    with pytest.raises(ValueError, match="learning_rate"):
        opt.apply(w, np.ones(3))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cls_name, kwargs", CASES, ids=IDS)
def test_every_isa_level_gives_the_same_bits(cls_name, kwargs, dtype):
    levels = _core.isa_available()
    before = _core.get_isa()
    w0, grad = problem(dtype)
    # long enough for full vectors and a tail at every width
    w0 = np.tile(w0, 30)
    g = np.tile(grad(problem(dtype)[0]), 30)
    out = {}
    try:
        for level in levels:
            _core.set_isa(level)
            w = w0.copy()
            opt = getattr(optimizers, cls_name)(**kwargs)
            for _ in range(3):
                opt.apply(w, g)
            out[level] = (w, opt.get_state()["state"])
    finally:
        _core.set_isa(before)
    for level in levels:
        np.testing.assert_array_equal(out[level][0], out["ref"][0], err_msg=level)
        np.testing.assert_array_equal(out[level][1], out["ref"][1], err_msg=level)


# ---- a step with weight penalties on the fly (optim_step(..., penalties)) ----

PENALTY_RUNS = [  # (offset, count, l1, l2) over 140,000 parameters: gaps, a run of
    (5, 69990, 0.0, 1e-3),       # two blocks (65,536 elements each), an L1-only run,
    (70003, 1001, 2e-3, 0.0),    # one with both, one ending at the buffer's end
    (71100, 31, 1e-3, 5e-4),
    (139000, 1000, 0.0, 0.25),
]


def _bits(a):
    """a's bytes with every NaN made the one NaN: IEEE 754 leaves open which of
    two NaN operands an operation returns, so a NaN's sign and payload follow
    the compiler's choice of operand order (GCC's and the hand-written
    kernels' differ); where the NaNs are, and every other bit, must agree."""
    a = a.copy()
    a[np.isnan(a)] = np.nan
    return a.tobytes()


def _check_penalized_step_is_penalty_then_step(kind, hp, w0, runs, grads, rng):
    """At every level, steps from w0 with each gradient of grads(rng) in turn:
    the penalized step leaves its gradient unread and gives the bits of
    penalty() over the runs then optim_step(), NaN where it has NaN."""
    n, dtype = w0.size, w0.dtype
    levels = _core.isa_available()
    before = _core.get_isa()
    try:
        for level in levels:
            _core.set_isa(level)
            w_sep, w_fused = w0.copy(), w0.copy()
            s_sep = _core.optim_state_init(kind, hp, n, dtype)
            s_fused = s_sep.copy()
            for step, g in enumerate(grads(rng), start=1):
                g_sep = g.copy()
                want = [_core.penalty(w_sep[o:o + c], g_sep[o:o + c], l1, l2)
                        for o, c, l1, l2 in runs]
                _core.optim_step(kind, hp, w_sep, g_sep, s_sep, step)
                g_seen = g.copy()
                got = _core.optim_step(kind, hp, w_fused, g, s_fused, step, runs)
                assert g.tobytes() == g_seen.tobytes()  # grads only read
                np.testing.assert_equal(got, want, err_msg=level)  # the same bits
                assert _bits(w_fused) == _bits(w_sep), level
                assert _bits(s_fused) == _bits(s_sep), level
    finally:
        _core.set_isa(before)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cls_name, kwargs", [c for c in CASES if "clipnorm" not in c[1]],
                         ids=[i for c, i in zip(CASES, IDS) if "clipnorm" not in c[1]])
def test_penalized_step_is_penalty_then_step_bit_for_bit(cls_name, kwargs, dtype):
    opt = getattr(optimizers, cls_name)(**kwargs)
    rng = np.random.default_rng(3)
    n = 140000
    w0 = rng.normal(scale=0.5, size=n).astype(dtype)
    w0[::97] = 0.0  # sign(0) = 0
    _check_penalized_step_is_penalty_then_step(
        opt._kind, opt._hyper(opt.learning_rate), w0, PENALTY_RUNS,
        lambda rng: (rng.normal(size=n).astype(dtype) for _ in range(3)), rng)


@pytest.mark.parametrize("kwargs", [
    {"learning_rate": 0.05},
    {"learning_rate": 0.05, "epsilon_hat": True, "clipvalue": 0.3},
    {"learning_rate": 0.05, "weight_decay": 0.1, "clipvalue": 1.5},
], ids=["plain", "hat-clipvalue", "decay-clipvalue"])
def test_penalized_adam_keeps_special_values_as_the_separate_passes(kwargs):
    # the float Adam step with a penalty has a hand-vectorised form (AVX-512):
    # NaN, inf and signed zeros in weights and gradients, through the clip,
    # the sign and the sums, must come out as penalty-then-step's at each level
    opt = optimizers.Adam(**kwargs)
    rng = np.random.default_rng(8)
    n = 1000
    special = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-30, -3.0], np.float32)

    def with_specials(rng, a):
        a[rng.integers(0, n, 40)] = rng.choice(special, 40)
        return a

    w0 = with_specials(rng, rng.normal(size=n).astype(np.float32))
    _check_penalized_step_is_penalty_then_step(
        opt._kind, opt._hyper(opt.learning_rate), w0, [(0, 700, 0.0, 1e-2), (700, 290, 3e-3, 1e-3)],
        lambda rng: (with_specials(rng, rng.normal(size=n).astype(np.float32)) for _ in range(2)),
        rng)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_penalty_value_is_the_same_at_every_level_and_near_the_exact_sum(dtype):
    rng = np.random.default_rng(4)
    w = rng.normal(size=200003).astype(dtype)  # three blocks and a tail
    exact = 0.3 * np.abs(w.astype(np.float64)).sum() + 0.7 * np.square(w.astype(np.float64)).sum()
    levels = _core.isa_available()
    before = _core.get_isa()
    values = {}
    try:
        for level in levels:
            _core.set_isa(level)
            values[level] = _core.penalty(w, None, 0.3, 0.7)
    finally:
        _core.set_isa(before)
    assert len(set(values.values())) == 1, values
    assert values["ref"] == pytest.approx(exact, rel=1e-13)


@pytest.mark.parametrize("cls_name", sorted({c for c, _ in CASES} | {"AdamW"}))
def test_an_option_that_is_off_leaves_its_arithmetic_out(isa, cls_name):
    # as torch: no weight decay and no clipping add no term to the gradient,
    # so an infinite weight stays infinite and its slot's state finite (with
    # weight_decay 0 taken as + 0 * w, it had become NaN, state included)
    kwargs = {"weight_decay": 0.1} if cls_name == "AdamW" else {}
    opt = getattr(optimizers, cls_name)(learning_rate=0.01, **kwargs)
    w = np.array([np.inf, -np.inf, 1.0], np.float32)
    for _ in range(2):
        opt.apply(w, np.array([0.5, -0.5, 0.5], np.float32))
    assert w[0] == np.inf and w[1] == -np.inf and np.isfinite(w[2])
    state = opt.get_state()
    slots = [np.asarray(a) for a in (state.values() if isinstance(state, dict) else state)]
    assert all(np.isfinite(a).all() for a in slots if a.dtype.kind == "f"), state
    # with a clip on, the same weights still step as the clip says
    clipped = getattr(optimizers, cls_name)(learning_rate=0.01, clipvalue=0.1, **kwargs)
    w2 = np.array([0.0, 0.0, 1.0], np.float32)
    clipped.apply(w2, np.array([5.0, -5.0, 0.5], np.float32))
    assert np.all(np.isfinite(w2))


def test_a_zero_coefficient_leaves_its_term_out():
    w = np.array([np.inf, 1.0], dtype=np.float32)
    assert _core.penalty(w, None, 0.5, 0.0) == np.inf  # not inf + 0 * inf = nan
    assert _core.penalty(w, None, 0.0, 0.5) == np.inf


def test_penalized_step_rejects_bad_runs():
    n = 100
    w, g = np.zeros(n, np.float32), np.zeros(n, np.float32)
    hp = {"learning_rate": 0.1}
    s = _core.optim_state_init("adam", hp, n, np.float32)
    for runs in ([(50, 60, 0.0, 0.1)], [(0, 10, 0.0, 0.1), (5, 10, 0.0, 0.1)],
                 [(0, -1, 0.0, 0.1)]):
        with pytest.raises(ValueError, match="sorted, disjoint"):
            _core.optim_step("adam", hp, w, g, s, 1, runs)
    with pytest.raises(ValueError, match="l1 and l2"):
        _core.optim_step("adam", hp, w, g, s, 1, [(0, 10, -1.0, 0.1)])
    with pytest.raises(TypeError, match="offset, count"):
        _core.optim_step("adam", hp, w, g, s, 1, [(0, 10)])
    with pytest.raises(ValueError, match="clipnorm"):
        _core.optim_step("adam", dict(hp, clipnorm=1.0), w, g, s, 1, [(0, 10, 0.0, 0.1)])
    assert _core.optim_step("adam", hp, w, g, s, 1, []) == []


def test_epsilon_hat_adam_is_scikit_learns():
    """Adam(epsilon_hat=True) is scikit-learn's MLP Adam (which MLPClassifier and
    MLPRegressor use) to rounding."""
    stochastic = pytest.importorskip("sklearn.neural_network._stochastic_optimizers")
    w, grad = problem(np.float64)
    theirs = [w.copy()]
    sk = stochastic.AdamOptimizer(theirs, learning_rate_init=0.05, beta_1=0.8, beta_2=0.99,
                                  epsilon=1e-3)
    opt = optimizers.Adam(learning_rate=0.05, beta_1=0.8, beta_2=0.99, epsilon=1e-3,
                          epsilon_hat=True)
    for _ in range(STEPS):
        sk.update_params(theirs, [grad(theirs[0])])
        opt.apply(w, grad(w))
    assert not np.allclose(w, problem(np.float64)[0])
    np.testing.assert_allclose(w, theirs[0], rtol=1e-12, atol=1e-14)
