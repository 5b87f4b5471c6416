"""Saving and loading models, in a format that runs no code when loaded.

File layout (all integers little-endian)::

    magic        8 bytes   b"\\x89NNCORE\\n"
    version      4 bytes   uint32, the format version (FORMAT_VERSION)
    header_len   8 bytes   uint64
    header       JSON, UTF-8: architecture, compile settings, array table
    payload      the arrays' raw little-endian bytes, each 64-byte aligned
    checksum     32 bytes  SHA-256 of everything before it

The checksum is verified before anything is parsed, so a truncated or
altered file is refused with a clear error; the header is plain JSON and the
arrays are raw numbers (no pickle), and every class a file names must be one
of nncore's own. Files are written to a temporary file in the same folder and
renamed into place, so a crash mid-save never leaves a broken file.
"""
from __future__ import annotations

import hashlib
import json
import os
import struct
import tempfile
from typing import Dict, List, Tuple

import numpy as np

MAGIC = b"\x89NNCORE\n"
FORMAT_VERSION = 1
_ALIGN = 64
_DTYPES = {"<f4": np.float32, "<f8": np.float64, "<i8": np.int64}
_PREFIX = struct.Struct("<8sIQ")


class ModelFileError(ValueError):
    """A model file that cannot be read: not nncore's, damaged, or too new."""


# ---------------------------------------------------------------------- write
def _write_atomic(path: str, chunks: List[bytes]) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".nncore-", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            for chunk in chunks:
                f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def write_file(path, header: dict, arrays: Dict[str, np.ndarray]) -> None:
    """Write a header and named arrays in the format above."""
    table, parts, offset = [], [], 0
    for name, arr in arrays.items():
        arr = np.asarray(arr)  # (ascontiguousarray would turn a 0-d array into 1-d)
        key = arr.dtype.newbyteorder("<").str
        if key not in _DTYPES:
            raise TypeError(f"cannot save array {name!r} of dtype {arr.dtype}")
        data = arr.astype(key, copy=False).tobytes(order="C")
        pad = -offset % _ALIGN
        parts.append(b"\0" * pad)
        offset += pad
        table.append({"name": name, "dtype": key, "shape": list(arr.shape),
                      "offset": offset, "nbytes": len(data)})
        parts.append(data)
        offset += len(data)
    header = dict(header, arrays=table)
    head = json.dumps(header, sort_keys=True).encode("utf-8")
    chunks = [_PREFIX.pack(MAGIC, FORMAT_VERSION, len(head)), head] + parts
    digest = hashlib.sha256()
    for chunk in chunks:
        digest.update(chunk)
    _write_atomic(os.fspath(path), chunks + [digest.digest()])


# ----------------------------------------------------------------------- read
def read_file(path) -> Tuple[dict, Dict[str, np.ndarray]]:
    """Read and verify a file; returns (header, arrays). Raises ModelFileError."""
    path = os.fspath(path)
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < _PREFIX.size + 32:
        raise ModelFileError(f"{path}: too short to be an nncore model file "
                             f"({len(blob)} bytes)")
    magic, version, head_len = _PREFIX.unpack_from(blob)
    if magic != MAGIC:
        raise ModelFileError(f"{path}: not an nncore model file")
    if version > FORMAT_VERSION:
        raise ModelFileError(f"{path}: written in format version {version} by a newer "
                             f"nncore; this one reads up to version {FORMAT_VERSION} "
                             f"(upgrade nncore)")
    if version < 1:
        raise ModelFileError(f"{path}: unknown format version {version}")
    body, checksum = blob[:-32], blob[-32:]
    if hashlib.sha256(body).digest() != checksum:
        raise ModelFileError(f"{path}: checksum mismatch: the file is truncated or altered")
    start = _PREFIX.size
    if head_len > len(body) - start:
        raise ModelFileError(f"{path}: header length {head_len} runs past the end")
    try:
        header = json.loads(body[start:start + head_len].decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise ModelFileError(f"{path}: the header is not valid JSON ({e})") from None
    if not isinstance(header, dict) or not isinstance(header.get("arrays"), list):
        raise ModelFileError(f"{path}: the header lacks its array table")
    payload = memoryview(body)[start + head_len:]
    arrays = {}
    for entry in header["arrays"]:
        try:
            name, key = str(entry["name"]), entry["dtype"]
            shape = tuple(int(d) for d in entry["shape"])
            offset, nbytes = int(entry["offset"]), int(entry["nbytes"])
        except (KeyError, TypeError, ValueError):
            raise ModelFileError(f"{path}: a malformed array entry {entry!r}") from None
        if key not in _DTYPES or any(d < 0 for d in shape):
            raise ModelFileError(f"{path}: array {name!r} has dtype {key!r}, shape {shape}")
        itemsize = np.dtype(key).itemsize
        if (nbytes != int(np.prod(shape, dtype=np.int64)) * itemsize or offset < 0
                or offset + nbytes > len(payload)):
            raise ModelFileError(f"{path}: array {name!r} does not fit the file")
        arrays[name] = np.frombuffer(payload[offset:offset + nbytes], dtype=key).reshape(
            shape).astype(_DTYPES[key], copy=True)
    return header, arrays


# --------------------------------------------------------------------- models
def _layer_classes() -> dict:
    from nncore import layers
    return {name: getattr(layers, name) for name in layers.__all__ if name != "Layer"}


def save_model(model, path) -> None:
    """Save architecture, weights, seed, and (when compiled) loss, metrics and
    optimizer with its state."""
    from nncore import __version__
    model._ensure_built()
    header = {
        "nncore_version": __version__,
        "model": {
            "class_name": type(model).__name__,
            "name": model.name,
            "dtype": model.dtype.name,
            "seed": model._seed,
            "input_shape": list(model.input_shape),
            "layers": [{"class_name": type(layer).__name__, "config": layer.get_config()}
                       for layer in model.layers],
        },
    }
    arrays = {"params": model._params, "states": model._states}
    if model.optimizer is not None and model.loss is not None:
        opt = model.optimizer
        header["compile"] = {
            "optimizer": {"class_name": type(opt).__name__, "config": opt.get_config()},
            "loss": model.loss.get_config(),
            "metrics": [m if isinstance(m, str) else m.name for m in model._metric_specs],
        }
        if getattr(model, "_prepared", False):
            header["compile"]["optimizer_state"] = True
            for key, value in opt.get_state().items():
                arrays[f"optimizer/{key}"] = value
    write_file(path, header, arrays)


def load_model(path, compile: bool = True):
    """Load a model saved by ``model.save``; with ``compile``, ready to go on training."""
    from nncore import losses, optimizers
    from nncore.model import Sequential
    header, arrays = read_file(path)
    spec = header.get("model")
    classes = _layer_classes()
    try:
        if spec["class_name"] != "Sequential":
            raise ModelFileError(f"{path}: unknown model class {spec['class_name']!r}")
        model = Sequential(name=spec["name"], seed=spec["seed"], dtype=spec["dtype"])
        for entry in spec["layers"]:
            cls = classes.get(entry["class_name"])
            if cls is None:
                raise ModelFileError(f"{path}: unknown layer class {entry['class_name']!r}")
            model.add(cls.from_config(dict(entry["config"])))
        saved = (arrays["params"].size if "params" in arrays else -1,
                 arrays["states"].size if "states" in arrays else -1)
        model.build(spec["input_shape"], _expect_sizes=saved)
    except ModelFileError:
        raise
    except (KeyError, TypeError, ValueError, OverflowError, RecursionError, MemoryError) as e:
        raise ModelFileError(f"{path}: the architecture cannot be rebuilt ({e})") from None
    for key, flat in (("params", model._params), ("states", model._states)):
        saved = arrays.get(key)
        if saved is None or saved.shape != flat.shape or saved.dtype != model.dtype:
            raise ModelFileError(f"{path}: the {key} do not fit the architecture")
        flat[...] = saved
    comp = header.get("compile")
    if compile and comp is not None:
        try:
            opt = optimizers.get(comp["optimizer"])
            model.compile(optimizer=opt, loss=losses.get_loss(comp["loss"]),
                          metrics=comp["metrics"])
            if comp.get("optimizer_state"):
                state = {key[len("optimizer/"):]: arr for key, arr in arrays.items()
                         if key.startswith("optimizer/")}
                opt.set_state(state)
        except (KeyError, TypeError, ValueError, OverflowError, AttributeError) as e:
            raise ModelFileError(f"{path}: the compile settings cannot be restored "
                                 f"({type(e).__name__}: {e})") from None
    return model
