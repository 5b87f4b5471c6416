#!/usr/bin/env python3
"""Fuzz the Cython boundary (nncore._core) and nncore.ops with decoded calls.

Each input picks an entry point and builds its arguments from the bytes:
arrays of any dtype (float32/64 and the ones that must be refused), shape
(including zero-sized and huge-but-empty), layout (Fortran, strided,
byte-swapped, misaligned, read-only), values (NaN, infinities, any bit
pattern), out= arrays that may alias an input, raw activation / loss /
reduction codes and parameters, optimizer names and hyper-parameters, seeds,
streams and shapes for the generators, and engine plans. A call must return,
or raise TypeError / ValueError / OverflowError; matmul results are also
checked against NumPy. A crash, a hang or any other exception is a finding.

    python tools/fuzz/fuzz_boundary.py -n 20000          # atheris if installed
    python tools/fuzz/fuzz_boundary.py -n 20000 --no-atheris --seed 3
    python tools/fuzz/fuzz_boundary.py --replay /tmp/nncore-fuzz-$UID/fuzz_boundary/current.bin
"""
import os
import sys
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import Provider, instrumented, run  # noqa: E402

import numpy as np  # noqa: E402

warnings.simplefilter("ignore")  # NumPy casts of huge values warn; not findings

with instrumented():
    from nncore import _core, ops  # noqa: E402

# MemoryError: a result that really is too big, e.g. (3, 0) @ (0, 2**40) -> (3, 2**40)
ALLOWED = (TypeError, ValueError, OverflowError, MemoryError)
DTYPES = [np.float32, np.float64, np.float32, np.float64, np.float16, np.int32, np.int64,
          np.uint8, np.bool_, np.complex64, object]
N_ACT = len(_core.ACTIVATIONS)
N_LOSS = len(_core.LOSSES)


def array(p: Provider, shape=None, dtype=None):
    if dtype is None:
        dtype = p.pick(DTYPES)
    if shape is None:
        ndim = p.int(0, 3)
        shape = tuple(p.int(0, 5) for _ in range(ndim))
        if shape and 0 in shape and p.int(0, 7) == 0:  # empty, with a huge other axis
            i = p.int(0, len(shape) - 1)
            if shape[i] != 0:
                shape = shape[:i] + (2**40,) + shape[i + 1:]
    size = int(np.prod(shape, dtype=np.int64)) if shape else 1
    vals = np.array([p.float() for _ in range(min(size, 64))] or [0.0])
    vals = np.resize(vals, size).reshape(shape) if size < 2**31 else np.empty(shape)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        arr = vals.astype(dtype) if np.dtype(dtype).kind != "b" else vals > 0
    layout = p.int(0, 7)
    if layout == 1 and arr.ndim >= 2:
        arr = np.asfortranarray(arr)
    elif layout == 2 and arr.ndim >= 1 and arr.size:
        big = np.zeros(arr.shape[:-1] + (arr.shape[-1] * 2,), arr.dtype)
        big[..., ::2] = arr
        arr = big[..., ::2]
    elif layout == 3 and arr.dtype.itemsize > 1 and arr.dtype != object:
        arr = arr.astype(arr.dtype.newbyteorder())
    elif layout == 4 and arr.dtype != object and arr.size and arr.size < 2**20:
        buf = np.zeros(arr.nbytes + arr.itemsize, np.uint8)
        v = buf[1:1 + arr.nbytes].view(arr.dtype).reshape(arr.shape)
        v[...] = arr
        arr = v
    elif layout == 5:
        arr = arr.copy()
        arr.setflags(write=False)
    return arr


def out_arg(p: Provider, inputs):
    k = p.int(0, 3)
    if k == 0:
        return None
    if k == 1 and inputs:
        return p.pick(inputs)  # aliasing an input: must be refused or exact in place
    return array(p)


def act_code(p: Provider):
    return p.pick(list(range(N_ACT)) + [-1, N_ACT, 2**31 - 1])


def check_matmul(a, b, ta, tb, got):
    a64 = np.asarray(a, np.float64)
    b64 = np.asarray(b, np.float64)
    a64 = a64.T if ta else a64
    b64 = b64.T if tb else b64
    with np.errstate(all="ignore"):
        want = a64 @ b64
        mag = np.abs(a64) @ np.abs(b64)
    eps = np.finfo(got.dtype).eps
    ok = np.isfinite(want) & (mag < np.finfo(got.dtype).max / 4)
    err = np.abs(got[ok] - want[ok])
    assert np.all(err <= 2 * (a64.shape[1] + 1) * eps * mag[ok] + np.finfo(got.dtype).tiny), \
        "matmul differs from NumPy"


def one_input(data: bytes) -> None:
    p = Provider(data)
    which = p.int(0, 17)
    if which == 0:
        a, b = array(p), array(p)
        ta, tb = p.bool(), p.bool()
        got = ops.matmul(a, b, ta, tb, out=out_arg(p, [a, b]))
        check_matmul(a, b, ta, tb, got)
    elif which == 1:
        a, b = array(p), array(p)
        _core.gemm(a, b, p.bool(), p.bool(), out_arg(p, [a, b]), alpha=p.float(), beta=p.float())
    elif which == 2:
        x, w = array(p), array(p)
        b = array(p) if p.bool() else None
        _core.dense_forward(x, w, b, act_code(p), p.float(), out_arg(p, [x, w]))
    elif which == 3:
        x, w, dz = array(p), array(p), array(p)
        _core.dense_backward(x, w, dz, p.bool(), p.bool(), p.bool(), out_arg(p, [x, w, dz]),
                             out_arg(p, [x, w, dz]), out_arg(p, [x, w, dz]), p.float())
    elif which == 4:
        x = array(p)
        _core.act_forward(act_code(p), p.float(), x, out_arg(p, [x]))
    elif which == 5:
        y, dy = array(p), array(p)
        _core.act_backward(act_code(p), p.float(), y, dy, out_arg(p, [y, dy]))
    elif which == 6:
        t, y = array(p), array(p)
        _core.loss(p.pick(list(range(N_LOSS)) + [-1, N_LOSS]), p.int(-1, 3), t, y, p.bool(),
                   p.bool(), out_arg(p, [t, y]))
    elif which == 7:
        lab, y = array(p), array(p)
        _core.loss_sparse(p.pick(list(range(N_LOSS)) + [-1]), p.int(-1, 3), lab, y, p.bool(),
                          p.bool(), out_arg(p, [lab, y]))
    elif which == 8:
        t, y = array(p), array(p)
        p.pick([_core.accuracy_argmax, _core.accuracy_sparse])(t, y)
    elif which == 9:
        _core.accuracy_threshold(array(p), array(p), p.float())
    elif which == 10:
        kind = p.pick(sorted(_core.OPTIMIZERS) + ["sgdx", ""])
        keys = ["learning_rate", "momentum", "rho", "beta_1", "beta_2", "epsilon",
                "weight_decay", "clipnorm", "clipvalue", "nesterov", "amsgrad", "centered",
                "initial_accumulator_value", "momentum_decay", "bogus"]
        hp = {p.pick(keys): p.pick([p.float(), None, True, "x", p.int(-2, 2)])
              for _ in range(p.int(0, 4))}
        n = p.int(0, 40)
        dt = p.pick([np.float32, np.float64])
        try:
            state = _core.optim_state_init(kind, hp, n if p.int(0, 5) else p.int(0, 80), dt)
        except ALLOWED:
            state = array(p)
        params = array(p, (n,), dt) if p.int(0, 3) else array(p)
        grads = array(p, (n,), dt) if p.int(0, 3) else array(p)
        _core.optim_step(kind, hp, params, grads, state, p.pick([1, 2, 0, -1, 2**62]))
    elif which == 11:
        _core.sum_squares(array(p))
    elif which == 12:
        seed = p.pick([0, 1, 2**64 - 1, 2**64, -1, None, 1.5, "x"])
        stream = p.pick([0, 7, 2**64 - 1, 2**64, -1, None])
        shape = p.pick([(), (3,), (0,), (2, 3), (-1,), (2**40, 0), 5, (1, -2)])
        f = p.int(0, 2)
        if f == 0:
            _core.rand_uniform(seed, stream, shape, p.float(), p.float(),
                               p.pick([np.float32, np.float64, np.int32]))
        elif f == 1:
            _core.rand_normal(seed, stream, shape, p.float(), p.float(),
                              p.pick([np.float32, np.float64, np.float16]))
        else:
            _core.dropout_mask(seed, stream, shape, p.float(), p.pick([np.float32, np.float64]),
                               p.pick([0, 2**64 - 1, -1, 10]), None)
    elif which == 13:
        _core.permutation(p.pick([0, 1, 2**64 - 1, -1]), p.pick([0, 3, -1]),
                          p.pick([0, 1, 5, 1000, -1, -(2**62)]))
    elif which == 14:
        dt = p.pick([np.float32, np.float64])
        steps = []
        width = p.int(0, 5)
        for _ in range(p.int(0, 3)):
            if p.bool():
                n_out = p.int(0, 5)
                w = array(p, (width, n_out), dt) if p.int(0, 5) else array(p)
                b = (array(p, (n_out,), dt) if p.int(0, 5) else array(p)) if p.bool() else None
                steps.append(("dense", w, b, act_code(p), p.float()))
                width = n_out
            else:
                steps.append(("activation", p.pick([width, width + 1, 0, -1]), act_code(p),
                              p.float()))
        if p.int(0, 9) == 0:
            steps.append((p.pick(["bogus", "dense"]),))
        plan = _core.Plan(steps, p.pick([dt, np.float16]))
        x = array(p, (p.int(0, 4), plan.n_in), dt) if p.int(0, 3) else array(p)
        plan.run(x, out_arg(p, [x]))
    elif which == 15:
        x = array(p)
        _core.vmath(p.pick(list(_core.VMATH_FUNCTIONS) + ["bogus"]), x, out_arg(p, [x]))
    elif which == 16:
        x, y = array(p), array(p)
        name = p.pick(["mse", "mae", "binary_crossentropy", "categorical_crossentropy",
                       "sparse_categorical_crossentropy", "hinge"])
        ops.loss_and_grad(x, y, name, p.bool(), p.pick(["mean", "sum", "none", "max"]))
    else:
        x = array(p)
        name = p.pick(["relu", "elu", "leaky_relu", "softmax", "linear", "swish", None])
        alpha = p.pick([None, p.float()])
        y = ops.activation_forward(x, name, alpha)
        ops.activation_backward(y, array(p), name, alpha)


SEEDS = [bytes(range(i, i + 96)) for i in range(0, 160, 9)] + [b"\0" * 64, b"\xff" * 64]

if __name__ == "__main__":
    sys.exit(run(one_input, "fuzz_boundary", SEEDS, ALLOWED))
