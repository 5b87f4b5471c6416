#!/usr/bin/env python3
"""Fuzz nncore.load_model with mutated model files.

Each input edits a valid saved model (one with BatchNormalization, Dropout and
an Adam state, or a plain Dense one) in one of three ways:

  raw      byte edits anywhere (flips, overwrites, inserts, cuts), the file's
           SHA-256 left as it is (so almost all must be refused by the checksum)
  resealed the same edits, then the checksum recomputed: the prefix, the
           header length, the JSON and the array table are parsed for real
  header   structured edits of the JSON header (values replaced by hostile ones,
           keys removed, arrays replaced) written back as a well-formed file

load_model must return a model (that then predicts) or raise. By default the
exceptions it raises today are accepted (ModelFileError, and the ValueError,
TypeError, KeyError, OverflowError and MemoryError that escape it: see the
xfail tests in tests/test_fuzz.py); --strict accepts ModelFileError only.
The address space is capped (--max-gb, default 4) so that a file asking for a
huge model gives MemoryError instead of the OOM killer.

    python tools/fuzz/fuzz_model_file.py -n 5000 [--no-atheris] [--strict]
"""
import copy
import hashlib
import json
import os
import sys
import tempfile
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import Provider, instrumented, run  # noqa: E402

import numpy as np  # noqa: E402

warnings.simplefilter("ignore")

with instrumented():
    import nncore  # noqa: E402
    from nncore import io as nio  # noqa: E402
    from nncore.layers import BatchNormalization, Dense, Dropout  # noqa: E402

STRICT = "--strict" in sys.argv
if STRICT:
    sys.argv.remove("--strict")
MAX_GB = 4.0
if "--max-gb" in sys.argv:
    i = sys.argv.index("--max-gb")
    MAX_GB = float(sys.argv[i + 1])
    del sys.argv[i:i + 2]
try:
    import resource
    resource.setrlimit(resource.RLIMIT_AS, (int(MAX_GB * 2**30), resource.RLIM_INFINITY))
except (ImportError, ValueError, OSError):
    pass

ALLOWED = (nio.ModelFileError,) if STRICT else (ValueError, TypeError, KeyError, OverflowError,
                                                 MemoryError)
TMP = tempfile.mkdtemp(prefix="nncore-fuzz-mf-",
                       dir="/dev/shm" if os.access("/dev/shm", os.W_OK) else None)


def _base(bn: bool) -> bytes:
    layers = [Dense(4, activation="relu", input_dim=3)] + ([BatchNormalization(), Dropout(0.2)]
                                                          if bn else []) \
        + [Dense(2, activation="softmax")]
    model = nncore.Sequential(layers, seed=1)
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(np.ones((4, 3), np.float32), [0, 1, 0, 1], verbose=0)
    path = os.path.join(TMP, "base.nncore")
    model.save(path)
    with open(path, "rb") as f:
        return f.read()


BASES = [_base(True), _base(False)]
HOSTILE = [None, -1, 0, 1, 3, 2**31, 2**63, 2**64, 10**30, 1e300, -1.5, float("nan"), "", "x",
           "float16", "float64", "Dense", "Sequential", [], [-1], [0], [3], [10**6], {},
           {"a": 1}, [[]], True, False, "sparse_categorical_crossentropy", "adam", "<f8", "<i8"]


def _paths(obj, prefix=()):
    if prefix:
        yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _paths(v, prefix + (i,))


def _byte_edits(p: Provider, blob: bytes) -> bytes:
    b = bytearray(blob)
    for _ in range(p.int(1, 6)):
        op = p.int(0, 3)
        i = p.int(0, max(0, len(b) - 1))
        if op == 0 and b:
            b[i] ^= p.int(1, 255)
        elif op == 1:
            b[i:i + 8] = p.bytes(8)
        elif op == 2:
            b[i:i] = p.bytes(p.int(1, 16))
        else:
            del b[i:i + p.int(1, 64)]
    return bytes(b)


def one_input(data: bytes) -> None:
    p = Provider(data)
    base = BASES[p.int(0, 1)]
    mode = p.int(0, 2)
    path = os.path.join(TMP, "input.nncore")
    if mode == 0:
        blob = _byte_edits(p, base)
    elif mode == 1:
        body = _byte_edits(p, base[:-32])
        blob = body + hashlib.sha256(body).digest()
    else:
        header, arrays = _read(base)
        header = copy.deepcopy(header)
        table = header.pop("arrays")
        paths = sorted(_paths(header), key=str)
        for _ in range(p.int(1, 4)):
            target = p.pick(paths)
            node = header
            try:
                for key in target[:-1]:
                    node = node[key]
                if p.int(0, 7) == 0 and isinstance(node, dict):
                    node.pop(target[-1], None)
                else:
                    node[target[-1]] = p.pick(HOSTILE)
            except (KeyError, IndexError, TypeError):
                pass
        arrays = dict(arrays)
        if p.bool():
            name = p.pick(sorted(arrays))
            a = arrays[name]
            arrays[name] = p.pick([a.reshape(-1)[:0], np.concatenate([a.reshape(-1), [1.0]]),
                                   a.astype(np.float64), np.full(a.shape, np.nan),
                                   np.zeros((2, 3), np.int64), a.reshape(-1)[::-1].copy()])
        if p.int(0, 9) == 0:
            arrays.pop(p.pick(sorted(arrays)), None)
        del table
        try:
            nio.write_file(path, header, arrays)
        except (TypeError, ValueError):  # the header itself is not JSON-able
            return
        blob = None
    if blob is not None:
        with open(path, "wb") as f:
            f.write(blob)
    model = nncore.load_model(path, compile=p.int(0, 3) != 0)
    out = model.predict(np.ones((2,) + model.input_shape, model.dtype))
    assert out.shape == (2,) + model.output_shape


_read_cache = {}


def _read(blob: bytes):
    if blob not in _read_cache:
        path = os.path.join(TMP, "read.nncore")
        with open(path, "wb") as f:
            f.write(blob)
        _read_cache[blob] = nio.read_file(path)
    return _read_cache[blob]


SEEDS = [bytes([b, m]) + bytes(range(i, i + 40)) for b in (0, 1) for m in (0, 1, 2)
         for i in (0, 50, 100)]

if __name__ == "__main__":
    try:
        sys.exit(run(one_input, "fuzz_model_file", SEEDS, ALLOWED))
    finally:
        import shutil
        shutil.rmtree(TMP, ignore_errors=True)
