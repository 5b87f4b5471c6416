"""Shared parts of nncore's fuzz harnesses: the byte decoder and the driver.

Every harness is a function ``one_input(data: bytes)`` that decodes the bytes
into a call and makes it; an exception from ``ALLOWED`` is a correct refusal,
anything else (another exception, a wrong answer caught by an assertion, or a
crash of the process) is a finding.

The driver runs a harness either under atheris (coverage-guided, libFuzzer;
``pip install atheris``) or, where atheris is absent or ``--no-atheris`` is
given, as a seeded random-mutation loop over the same harness: reproducible
(the seed is printed), no coverage feedback. Both run a fixed number of inputs
(``-n``). Before each input the driver writes it to ``<out>/current.bin``, so
that a crash leaves its reproducer behind; a finding that raises is saved as
``<out>/finding-<sha1>.bin``. ``--replay FILE`` runs one saved input.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import random
import struct
import sys
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
if ROOT not in sys.path:  # the worktree's nncore (built in place)
    sys.path.insert(0, ROOT)


def instrumented():
    """Import nncore inside this: under atheris its Python modules are then
    instrumented for coverage (the compiled extension is not: that would need a
    clang -fsanitize=fuzzer-no-link build, so its branches give no feedback)."""
    import contextlib
    if "--no-atheris" in sys.argv or "--replay" in sys.argv:
        return contextlib.nullcontext()
    try:
        import atheris
    except ImportError:
        return contextlib.nullcontext()
    return atheris.instrument_imports(include=["nncore"])


class Provider:
    """Decodes values from fuzz bytes, like atheris.FuzzedDataProvider but in pure
    Python (so the harness decodes the same way with or without atheris). When the
    bytes run out, every method returns its smallest value."""

    def __init__(self, data: bytes):
        self.data = memoryview(bytes(data))
        self.pos = 0

    def remaining(self) -> int:
        return len(self.data) - self.pos

    def bytes(self, n: int) -> bytes:
        n = max(0, min(n, self.remaining()))
        out = bytes(self.data[self.pos:self.pos + n])
        self.pos += n
        return out

    def int(self, lo: int, hi: int) -> int:
        """An integer in [lo, hi]."""
        if hi <= lo:
            return lo
        span = hi - lo + 1
        nbytes = (span.bit_length() + 7) // 8
        raw = int.from_bytes(self.bytes(nbytes).ljust(nbytes, b"\0"), "little")
        return lo + raw % span

    def bool(self) -> bool:
        return self.int(0, 1) == 1

    def pick(self, seq):
        return seq[self.int(0, len(seq) - 1)]

    def float(self) -> float:
        """Any double: mostly ordinary numbers, often special ones."""
        kind = self.int(0, 7)
        if kind == 0:
            return struct.unpack("<d", self.bytes(8).ljust(8, b"\0"))[0]  # any bit pattern
        if kind == 1:
            return self.pick([0.0, -0.0, float("nan"), float("inf"), float("-inf"), 1e-310,
                              3.4e38, 1e300, -1e300, 1.0, -1.0, 0.5, 88.7, -104.0])
        return (self.int(0, 2**16) - 2**15) / 2**self.int(0, 12)


def run(one_input, name: str, seeds, allowed, argv=None) -> int:
    """The command line of a harness: atheris or the seeded mutation loop."""
    ap = argparse.ArgumentParser(prog=name)
    ap.add_argument("-n", "--runs", type=int, default=10000, help="inputs to run")
    ap.add_argument("--seed", type=int, default=0, help="seed of the mutation loop")
    ap.add_argument("--no-atheris", action="store_true", help="use the mutation loop")
    ap.add_argument("--out", default=os.environ.get("NNCORE_FUZZ_OUT",
                                                    f"/tmp/nncore-fuzz-{os.getuid()}/{name}"))
    ap.add_argument("--replay", help="run one saved input and exit")
    ap.add_argument("--max-len", type=int, default=4096)
    args, rest = ap.parse_known_args(argv)
    os.makedirs(args.out, exist_ok=True)
    current = open(os.path.join(args.out, "current.bin"), "wb", buffering=0)

    def guarded(data: bytes) -> None:
        current.seek(0)
        current.write(data)
        current.truncate()
        try:
            one_input(data)
        except allowed:
            pass
        except BaseException:
            path = os.path.join(args.out, f"finding-{hashlib.sha1(data).hexdigest()[:12]}.bin")
            with open(path, "wb") as f:
                f.write(data)
            sys.stderr.write(f"\n{name}: finding saved to {path}\n")
            raise

    if args.replay:
        with open(args.replay, "rb") as f:
            guarded(f.read())
        print(f"{name}: {args.replay} runs cleanly")
        return 0

    seeds = [bytes(s) for s in seeds]
    try:
        import atheris  # noqa: F401
        have_atheris = not args.no_atheris
    except ImportError:
        have_atheris = False

    if have_atheris:
        import atheris
        corpus = os.path.join(args.out, "corpus")
        os.makedirs(corpus, exist_ok=True)
        for s in seeds:
            with open(os.path.join(corpus, hashlib.sha1(s).hexdigest()), "wb") as f:
                f.write(s)
        print(f"{name}: atheris, {args.runs} runs, corpus {corpus}", flush=True)
        one_input = atheris.instrument_func(one_input)  # the harness's own branches

        atheris.Setup([sys.argv[0], f"-runs={args.runs}", f"-max_len={args.max_len}",
                       f"-seed={args.seed or 1}", "-print_final_stats=1", corpus] + rest,
                      guarded)
        atheris.Fuzz()  # exits the process
        return 0

    rng = random.Random(args.seed)
    print(f"{name}: seeded mutation loop (atheris {'not installed' if not args.no_atheris else 'off'}), "
          f"{args.runs} runs, seed {args.seed}", flush=True)
    pool = list(seeds)
    for i in range(args.runs):
        data = mutate(rng.choice(pool), rng, pool, args.max_len)
        guarded(data)
        if len(pool) < 256 and rng.random() < 0.05:
            pool.append(data)  # keep some mutants, so that mutations stack up
    print(f"{name}: {args.runs} inputs, no findings")
    return 0


def mutate(data: bytes, rng: random.Random, pool, max_len: int) -> bytes:
    """A few random byte-level edits of data (libFuzzer's usual kinds)."""
    b = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        op = rng.randrange(8)
        i = rng.randrange(len(b) + 1)
        if op == 0 and b:
            b[min(i, len(b) - 1)] ^= 1 << rng.randrange(8)
        elif op == 1 and b:
            b[min(i, len(b) - 1)] = rng.randrange(256)
        elif op == 2:
            b[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        elif op == 3 and b:
            del b[i:i + rng.randint(1, 8)]
        elif op == 4 and b:
            j = rng.randrange(len(b))
            b[i:i] = b[j:j + rng.randint(1, 16)]  # repeat a piece
        elif op == 5:
            other = rng.choice(pool)
            j = rng.randrange(len(other) + 1)
            b = b[:i] + bytearray(other[j:])  # splice
        elif op == 6 and len(b) >= 8:
            j = rng.randrange(len(b) - 7)
            b[j:j + 8] = struct.pack("<d", rng.choice([0.0, -1.0, 1e308, float("nan"),
                                                       float("inf"), 2.0**63, -2.0**31]))
        elif op == 7 and len(b) >= 4:
            j = rng.randrange(len(b) - 3)
            b[j:j + 4] = struct.pack("<I", rng.choice([0, 1, 2**31 - 1, 2**31, 2**32 - 1]))
    return bytes(b[:max_len])


def report_unexpected(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc))
